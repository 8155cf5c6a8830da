"""cgroup v2 (unified) manager: one directory, controllers enabled top-down."""

from __future__ import annotations

import errno
import os
import time

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import base

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from pyrunc.plan import cgroups as plan
    from pyrunc.plan.cgroups import DeviceRule


def _may_delegate(d: str) -> bool:
    """Whether controllers may be enabled in ``d``'s subtree_control.

    Not in a cgroup that holds processes itself (the caller's own cgroup is
    one): the kernel refuses domain controllers there (EBUSY) but accepts the
    threaded ones (cpu, cpuset, pids, perf_event), which silently turns that
    cgroup into a threaded root ("domain threaded") whose new children refuse
    processes.  Not in a threaded or invalid cgroup either.  The real root has
    no cgroup.type and may always delegate.
    """
    kind = base.read_optional(os.path.join(d, "cgroup.type"))
    if kind is None:
        return True
    if kind.strip() != "domain":
        return False
    procs = base.read_optional(os.path.join(d, base.PROCS))
    return procs is not None and not procs.split()


def enable_controllers(mount: str, path: str) -> None:
    """Enable every available controller in each ancestor's subtree_control,
    from the mount down to ``path``'s parent, as runc does, but never in a
    cgroup where that would change more than its children (see
    :func:`_may_delegate`): such a cgroup is left exactly as it is.

    Errors are ignored per controller: a controller the parent cannot
    delegate just stays off, and the write that needs it later reports the
    problem with its own file name.
    """
    mount = mount.rstrip("/")
    rel = os.path.relpath(path, mount)
    if rel.startswith(".."):
        return
    current = mount
    parts = [] if rel == "." else rel.split("/")
    for part in parts:
        control = os.path.join(current, "cgroup.subtree_control")
        available = (base.read_optional(os.path.join(current, "cgroup.controllers")) or "").split()
        enabled = set((base.read_optional(control) or "").split())
        wanted = [c for c in available if c not in enabled]
        if wanted and _may_delegate(current):
            try:
                base.write_file(control, " ".join("+" + c for c in wanted))
            except CgroupError:
                for c in wanted:
                    try:
                        base.write_file(control, "+" + c)
                    except CgroupError:
                        pass
        current = os.path.join(current, part)


def _events_frozen(d: str) -> bool | None:
    text = base.read_optional(os.path.join(d, "cgroup.events"))
    if text is None:
        return None
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == "frozen":
            return v.strip() == "1"
    return None


def set_frozen(d: str, frozen: bool, timeout: float) -> None:
    """Write cgroup.freeze and wait for cgroup.events to report it."""
    base.write_file(os.path.join(d, "cgroup.freeze"), "1" if frozen else "0")
    if base.wait_until(lambda: _events_frozen(d) in (frozen, None), timeout):
        return
    if frozen:
        base.write_file(os.path.join(d, "cgroup.freeze"), "0")
    err = CgroupError(f"freeze {d}/cgroup.events: timed out waiting for frozen {int(frozen)}")
    err.errno = errno.ETIMEDOUT  # type: ignore[attr-defined]
    raise err


class V2Manager(base.Manager):
    """Manager for a cgroup in the unified hierarchy mounted at ``mount``."""

    mode = "v2"

    def __init__(self, path_: str, mount: str) -> None:
        """``path_``: the container's directory; ``mount``: the cgroup2 mountpoint."""
        self.cg_path = path_
        self.mount = mount

    def dirs(self) -> list[str]:
        """The single container directory."""
        return [self.cg_path]

    def path(self, controller: str = "") -> str | None:
        """The container directory (every controller lives there)."""
        return self.cg_path

    def create(self) -> None:
        """mkdir -p, then enable the controllers in every ancestor."""
        base.mkdir_p(self.cg_path)
        enable_controllers(self.mount, self.cg_path)

    def plan(self, resources: Mapping[str, Any],
             linux_devices: Sequence[Mapping[str, Any]] | None = None,
             devices: bool = True) -> plan.CgroupPlan:
        """The v2 plan (device rules carried, not written); a write whose
        controller the cgroup does not offer is refused (ConfigError)."""
        from pyrunc.linux.cgroups.detect import available_controllers
        from pyrunc.plan import cgroups as plan

        where, controllers = available_controllers(self.cg_path, self.mount)
        return plan.plan_for_host(resources, plan.ControllerFacts(self.mode, (), controllers, where),
                                  self.device_rules(resources, linux_devices, devices))

    def apply(self, resources: Mapping[str, Any],
              linux_devices: Sequence[Mapping[str, Any]] | None = None,
              devices: bool = True) -> list[str]:
        """Apply ``resources`` (see :meth:`Manager.apply`); device rules become
        an eBPF device filter attached to the cgroup, replacing any earlier one."""
        p = self.plan(resources, linux_devices, devices)
        if p.memory_check_limit is not None:
            base.check_memory_usage(os.path.join(self.cg_path, "memory.current"), p.memory_check_limit)
        warnings = list(p.warnings)
        if p.devices is not None:
            self._set_devices(p.devices, warnings)
        base.execute_writes(p.writes, lambda _c: self.cg_path, warnings)
        return warnings

    def _set_devices(self, rules: Sequence[DeviceRule], warnings: list[str]) -> None:
        from pyrunc.linux.cgroups import devices_bpf
        from pyrunc.plan import devices_bpf as bpf_plan

        # Built first so that a rule v1 would refuse fails before any effect.
        program = bpf_plan.device_filter_program(rules)
        if not devices_bpf.is_cgroup2(self.cg_path):
            warnings.append(f"{self.cg_path} is not on a cgroup2 filesystem; device rules not enforced")
            return
        try:
            devices_bpf.install(self.cg_path, program)
        except CgroupError as e:
            # As runc for a rootless container: bpf(2) is out of reach of an
            # unprivileged user and inside a user namespace, and device
            # nodes are then off limits to the container anyway.  (The
            # systemd driver as a user applies device rules too.)
            if os.geteuid() == 0 and not devices_bpf.in_user_namespace():
                raise
            warnings.append(f"device rules not enforced for a rootless container: {e}")

    def freeze(self) -> None:
        """cgroup.freeze = 1, wait for ``frozen 1`` in cgroup.events."""
        set_frozen(self.cg_path, True, self.freeze_timeout)

    def thaw(self) -> None:
        """cgroup.freeze = 0, wait for ``frozen 0``."""
        set_frozen(self.cg_path, False, self.freeze_timeout)

    def state(self) -> str:
        """"frozen" when cgroup.freeze is 1."""
        text = base.read_optional(os.path.join(self.cg_path, "cgroup.freeze"))
        return "frozen" if (text or "").strip() == "1" else "thawed"

    def pids(self) -> list[int]:
        """All PIDs in the cgroup and its sub-cgroups."""
        return base.read_procs_recursive(self.cg_path)

    def _kill_file(self) -> str | None:
        return os.path.join(self.cg_path, "cgroup.kill")

    def stats(self) -> dict[str, Any]:
        """runc ``events --stats`` data."""
        from pyrunc.linux.cgroups import stats as cgstats

        return cgstats.stats_v2(self.cg_path)

    def oom_events(self) -> base.OOMNotifier:
        """Notifier on the ``oom_kill`` counter of memory.events."""
        return V2OOMNotifier(self.cg_path)

    def to_state(self) -> dict[str, Any]:
        """{"mode": "v2", "path", "mount"}."""
        return {"mode": "v2", "path": self.cg_path, "mount": self.mount}


# How often a waiting OOM notifier looks at its cgroup without a wake-up:
# kernfs wakes no poller when the cgroup is removed (nor delivers a change
# that was still pending then), so removal is noticed by reading.
_OOM_CHECK_INTERVAL = 0.2
# How old the record of the kills around the cgroup may grow (see
# V2OOMNotifier._kills_around); it is also renewed after each reported kill.
_AROUND_REFRESH = 2.0


class V2OOMNotifier(base.OOMNotifier):
    """Polls memory.events (kernfs raises POLLPRI on change) for oom_kill.

    A cgroup can be removed before its new oom_kill count is read: systemd
    removes a scope's cgroup as soon as an OOM-killed init leaves it empty.
    The kill is still counted in the parent's (hierarchical) memory.events,
    so the notifier keeps a record of the parent's count and of every
    sibling's; at removal, kills the parent gained that no sibling did are
    this cgroup's.
    """

    def __init__(self, d: str) -> None:
        """Open ``d``/memory.events and remember the current oom_kill count."""
        d = d.rstrip("/")
        self._path = os.path.join(d, "memory.events")
        self._parent, self._name = os.path.split(d)
        try:
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise base.cgroup_error("open", self._path, e) from None
        self._around = self._kills_around()
        self._count = self._read()
        self._around_at = time.monotonic()

    def _read(self) -> int:
        """oom_kill of this cgroup's memory.events; EOFError once it is removed."""
        try:
            data = os.pread(self._fd, 4096, 0).decode()
        except OSError as e:
            if e.errno == errno.ENODEV:
                raise EOFError("cgroup removed") from None
            raise
        if not os.path.exists(self._path):
            raise EOFError("cgroup removed")
        return _oom_kills(data)

    def _kills_around(self) -> tuple[int, dict[str, int]] | None:
        """The parent's oom_kill and each sibling's, or None when the parent
        has no readable memory.events (the root has none)."""
        siblings: dict[str, int] = {}
        try:
            entries = list(os.scandir(self._parent))
        except OSError:
            return None
        # Siblings before the parent: a kill between the two reads then
        # hides one of this cgroup's rather than passing for one.
        for entry in entries:
            if entry.name != self._name and entry.is_dir(follow_symlinks=False):
                count = _read_oom_kills(os.path.join(entry.path, "memory.events"))
                if count is not None:
                    siblings[entry.name] = count
        parent = _read_oom_kills(os.path.join(self._parent, "memory.events"))
        return None if parent is None else (parent, siblings)

    def fileno(self) -> int:
        """The memory.events descriptor (poll for POLLPRI)."""
        return self._fd

    def wait(self, timeout: float | None = None) -> bool:
        """True once oom_kill increased, False when ``timeout`` seconds pass
        without that; EOFError when the cgroup is removed (True first, once,
        if it was removed with an OOM kill not yet reported).

        Other changes of memory.events wake the poll too (the ``max`` counter
        moves about 10 ms before ``oom_kill`` on every OOM kill): they are
        read and waited past, up to the deadline.
        """
        try:
            return self._wait(timeout)
        except EOFError:
            if self._killed_on_the_way_out():
                return True
            raise

    def _killed_on_the_way_out(self) -> bool:
        before, self._around = self._around, None
        if before is None:
            return False
        now = self._kills_around()
        if now is None:
            return False
        (parent_then, siblings_then), (parent_now, siblings_now) = before, now
        theirs = 0
        for name, count in siblings_now.items():
            then = siblings_then.get(name, 0)
            # A lower count is a new cgroup of the same name: all its kills are new.
            theirs += count - then if count >= then else count
        return parent_now - parent_then - theirs > 0

    def _wait(self, timeout: float | None) -> bool:
        import select  # an extension module: only `events` waits

        poller = select.poll()
        poller.register(self._fd, select.POLLPRI | select.POLLERR)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = _OOM_CHECK_INTERVAL
            if deadline is not None:
                step = min(step, max(0.0, deadline - time.monotonic()))
            poller.poll(int(step * 1000 + 0.999))
            # A renewed record is taken before this cgroup's own count is
            # read: a kill the read does not show is then one the record does
            # not count either.  Renewed only now and then, not on every
            # wake-up: memory.events can change many times a second (high,
            # max) and the record reads every sibling's file.
            around = None
            if time.monotonic() - self._around_at >= _AROUND_REFRESH:
                around = self._kills_around()
            # Read even after a timeout: the count may have moved just now,
            # and a removed cgroup's file answers ENODEV.
            count = self._read()
            if count > self._count:
                self._count = count
                self._around, self._around_at = self._kills_around(), time.monotonic()
                return True
            if around is not None:
                self._around, self._around_at = around, time.monotonic()
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1


def _oom_kills(memory_events: str) -> int:
    from pyrunc.linux.cgroups.stats import parse_kv

    return parse_kv(memory_events).get("oom_kill", 0)


def _read_oom_kills(path: str) -> int | None:
    """oom_kill of the memory.events at ``path``, or None if it cannot be read."""
    try:
        with open(path) as f:
            return _oom_kills(f.read())
    except (OSError, ValueError):
        return None

