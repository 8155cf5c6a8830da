"""cgroup v2 (unified) manager: one directory, controllers enabled top-down."""

from __future__ import annotations

import errno
import os

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
            # As runc: inside a user namespace bpf(2) is out of reach, and
            # device nodes are then off limits to the container anyway.
            if not devices_bpf.in_user_namespace():
                raise
            warnings.append(f"device rules not enforced in a user namespace: {e}")

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


class V2OOMNotifier(base.OOMNotifier):
    """Polls memory.events (kernfs raises POLLPRI on change) for oom_kill."""

    def __init__(self, d: str) -> None:
        """Open ``d``/memory.events and remember the current oom_kill count."""
        self._path = os.path.join(d, "memory.events")
        self._parent_path = os.path.join(os.path.dirname(d.rstrip("/")), "memory.events")
        self._parent_mark: int | None = None
        try:
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise base.cgroup_error("open", self._path, e) from None
        self._count, self._limit_hits = self._read()

    def _read(self) -> tuple[int, int]:
        """(oom_kill, max + oom) of this cgroup's memory.events."""
        try:
            data = os.pread(self._fd, 4096, 0).decode()
        except OSError as e:
            if e.errno == errno.ENODEV:
                raise EOFError("cgroup removed") from None
            raise
        from pyrunc.linux.cgroups.stats import parse_kv

        counts = parse_kv(data)
        return counts.get("oom_kill", 0), counts.get("max", 0) + counts.get("oom", 0)

    def _parent_oom_kills(self) -> int | None:
        from pyrunc.linux.cgroups.stats import parse_kv

        try:
            with open(self._parent_path) as f:
                return parse_kv(f.read()).get("oom_kill", 0)
        except (OSError, ValueError):
            return None

    def fileno(self) -> int:
        """The memory.events descriptor (poll for POLLPRI)."""
        return self._fd

    def wait(self, timeout: float | None = None) -> bool:
        """True once oom_kill increased, False when ``timeout`` seconds pass
        without that; EOFError when the cgroup is removed.

        Other changes of memory.events wake the poll too (the ``max`` counter
        moves about 10 ms before ``oom_kill`` on every OOM kill): they are
        read and waited past, up to the deadline.
        """
        try:
            return self._wait(timeout)
        except EOFError:
            if self._oom_killed_on_the_way_out():
                return True
            raise

    def _oom_killed_on_the_way_out(self) -> bool:
        # systemd removes a scope's cgroup as soon as an OOM-killed init
        # leaves it empty, which can be before the new oom_kill count here is
        # read.  The parent's memory.events counts its children's kills: one
        # there since this cgroup last reported hitting its limit is taken as
        # this cgroup's.
        mark, self._parent_mark = self._parent_mark, None
        if mark is None:
            return False
        now = self._parent_oom_kills()
        return now is not None and now > mark

    def _wait(self, timeout: float | None) -> bool:
        import select  # an extension module: only `events` waits
        import time

        poller = select.poll()
        poller.register(self._fd, select.POLLPRI | select.POLLERR)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ms = None
            if deadline is not None:
                ms = max(0, int((deadline - time.monotonic()) * 1000 + 0.999))
            woke = poller.poll(ms)
            # Read even after a timeout: the count may have moved just now.
            # Reading first: a removed cgroup's file answers ENODEV.
            count, limit_hits = self._read()
            if count > self._count:
                self._count = count
                self._parent_mark = None
                return True
            if limit_hits > self._limit_hits:
                self._limit_hits = limit_hits
                self._parent_mark = self._parent_oom_kills()
            if woke and not os.path.exists(self._path):
                raise EOFError("cgroup removed")
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

