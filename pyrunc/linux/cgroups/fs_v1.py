"""cgroup v1 (and hybrid) manager: one directory per mounted hierarchy.

In hybrid mode the container also gets a directory in the cgroup2 mount
(``root/unified``): its pid goes there too, so ``cgroup.kill`` works, and
controllers that exist only there (hugetlb on Debian's layout) are set with
v2 rules.
"""

from __future__ import annotations

import errno
import itertools
import os

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import base

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from pyrunc.plan import cgroups as plan

# Where to look for the task list, in order of preference.
_PIDS_ORDER = ("freezer", "pids", "devices", "memory", "cpu", "name=systemd")


class V1Manager(base.Manager):
    """Manager for cgroup v1 hierarchies, plus the unified dir in hybrid mode."""

    def __init__(self, paths: Mapping[str, str], unified: str | None = None,
                 unified_mount: str | None = None) -> None:
        """``paths``: controller -> container directory; ``unified``: the
        container's dir in the hybrid cgroup2 mount at ``unified_mount``."""
        self.paths = dict(paths)
        self.unified = unified
        self.unified_mount = unified_mount
        self.mode = "hybrid" if unified else "v1"

    def dirs(self) -> list[str]:
        """Every distinct container directory (v1 ones, then unified)."""
        seen: list[str] = []
        for d in self.paths.values():
            if d not in seen:
                seen.append(d)
        if self.unified and self.unified not in seen:
            seen.append(self.unified)
        return seen

    def path(self, controller: str = "") -> str | None:
        """Directory for a v1 controller, or the unified one for ""."""
        if controller == "":
            return self.unified
        return self.paths.get(controller)

    def create(self) -> None:
        """mkdir -p in every hierarchy; fill empty cpuset.cpus/mems from parents."""
        for d in self.dirs():
            base.mkdir_p(d)
        cpuset = self.paths.get("cpuset")
        if cpuset:
            self._init_cpuset(cpuset)
        if self.unified and self.unified_mount:
            from pyrunc.linux.cgroups.fs_v2 import enable_controllers

            enable_controllers(self.unified_mount, self.unified)

    @staticmethod
    def _init_cpuset(path: str) -> None:
        # A v1 cpuset cgroup starts with empty cpus/mems and refuses tasks
        # until they are set; inherit them from the nearest ancestor, top down.
        chain = []
        p = path
        while os.path.exists(os.path.join(p, "cpuset.cpus")):
            chain.append(p)
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
        chain.reverse()
        for parent, child in itertools.pairwise(chain):
            for name in ("cpuset.cpus", "cpuset.mems"):
                current = base.read_optional(os.path.join(child, name))
                if current is not None and not current.strip():
                    value = base.read_file(os.path.join(parent, name)).strip()
                    if value:
                        base.write_file(os.path.join(child, name), value)

    def _unified_controllers(self) -> set[str]:
        if not self.unified or not self.unified_mount:
            return set()
        from pyrunc.linux.cgroups.detect import available_controllers

        return set(available_controllers(self.unified, self.unified_mount)[1])

    def controller_facts(self) -> plan.ControllerFacts:
        """The controllers the container's cgroups can use (mounted v1 ones, cgroup2 ones)."""
        from pyrunc.linux.cgroups.detect import available_controllers
        from pyrunc.plan.cgroups import ControllerFacts

        v1 = [c for c in self.paths if not c.startswith("name=")]
        if not self.unified or not self.unified_mount:
            return ControllerFacts(self.mode, v1)
        where, unified = available_controllers(self.unified, self.unified_mount)
        return ControllerFacts(self.mode, v1, unified, where)

    def plan(self, resources: Mapping[str, Any],
             linux_devices: Sequence[Mapping[str, Any]] | None = None,
             devices: bool = True) -> plan.CgroupPlan:
        """v1 plan; controllers only present in the hybrid cgroup2 mount get v2
        writes; a write no hierarchy can take is refused (ConfigError)."""
        from pyrunc.plan import cgroups as plan

        return plan.plan_for_host(resources, self.controller_facts(),
                                  self.device_rules(resources, linux_devices, devices))

    def _dir_for(self, controller: str) -> str | None:
        d = self.paths.get(controller)
        if d is None and self.unified and controller in self._unified_controllers():
            return self.unified
        return d

    def apply(self, resources: Mapping[str, Any],
              linux_devices: Sequence[Mapping[str, Any]] | None = None,
              devices: bool = True) -> list[str]:
        """Apply ``resources`` (see :meth:`Manager.apply`)."""
        p = self.plan(resources, linux_devices, devices)
        if p.memory_check_limit is not None and "memory" in self.paths:
            base.check_memory_usage(os.path.join(self.paths["memory"], "memory.usage_in_bytes"),
                                    p.memory_check_limit)
        warnings = list(p.warnings)
        base.execute_writes(p.writes, self._dir_for, warnings)
        return warnings

    # -- freezer ---------------------------------------------------------

    def _freezer(self) -> tuple[str, str]:
        if "freezer" in self.paths:
            return "v1", self.paths["freezer"]
        if self.unified and os.path.exists(os.path.join(self.unified, "cgroup.freeze")):
            return "v2", self.unified
        raise CgroupError("freeze: no freezer cgroup (v1 freezer not mounted, no cgroup.freeze)")

    def freeze(self) -> None:
        """Write FROZEN and wait until freezer.state reads FROZEN."""
        kind, d = self._freezer()
        if kind == "v2":
            from pyrunc.linux.cgroups.fs_v2 import set_frozen

            set_frozen(d, True, self.freeze_timeout)
            return
        state = os.path.join(d, "freezer.state")
        tries = [0]

        def frozen() -> bool:
            tries[0] += 1
            if tries[0] % 10 == 1:
                # Re-writing nudges tasks that were mid-fork on the last pass.
                base.write_file(state, "FROZEN")
            return base.read_file(state).strip() == "FROZEN"

        if not base.wait_until(frozen, self.freeze_timeout):
            base.write_file(state, "THAWED")
            err = CgroupError(f"freeze {state}: timed out waiting for FROZEN")
            err.errno = errno.ETIMEDOUT  # type: ignore[attr-defined]
            raise err

    def thaw(self) -> None:
        """Write THAWED and wait until freezer.state reads THAWED."""
        kind, d = self._freezer()
        if kind == "v2":
            from pyrunc.linux.cgroups.fs_v2 import set_frozen

            set_frozen(d, False, self.freeze_timeout)
            return
        state = os.path.join(d, "freezer.state")
        base.write_file(state, "THAWED")
        base.wait_until(lambda: base.read_file(state).strip() == "THAWED", self.freeze_timeout)

    def state(self) -> str:
        """"frozen" when freezer.state is FROZEN (or cgroup.freeze is 1)."""
        kind, d = self._freezer()
        if kind == "v2":
            return "frozen" if (base.read_optional(os.path.join(d, "cgroup.freeze")) or "").strip() == "1" \
                else "thawed"
        text = base.read_optional(os.path.join(d, "freezer.state"))
        return "frozen" if (text or "").strip() == "FROZEN" else "thawed"

    # -- processes ---------------------------------------------------------

    def pids(self) -> list[int]:
        """All PIDs below the container's dir in the first suitable hierarchy."""
        for c in _PIDS_ORDER:
            if c in self.paths:
                return base.read_procs_recursive(self.paths[c])
        if self.unified:
            return base.read_procs_recursive(self.unified)
        return []

    def _kill_file(self) -> str | None:
        return os.path.join(self.unified, "cgroup.kill") if self.unified else None

    def stats(self) -> dict[str, Any]:
        """runc ``events --stats`` data from the v1 hierarchies."""
        from pyrunc.linux.cgroups import stats as cgstats

        return cgstats.stats_v1(self.paths, self.unified)

    def oom_events(self) -> base.OOMNotifier:
        """eventfd registered on memory.oom_control via cgroup.event_control."""
        d = self.paths.get("memory")
        if d is None:
            raise CgroupError("oom events: memory cgroup not mounted")
        return V1OOMNotifier(d)

    def to_state(self) -> dict[str, Any]:
        """{"mode", "paths", "unified", "unified_mount"}."""
        return {"mode": self.mode, "paths": dict(self.paths), "unified": self.unified,
                "unified_mount": self.unified_mount}


class V1OOMNotifier(base.OOMNotifier):
    """cgroup v1 OOM notification through an eventfd."""

    def __init__(self, memory_dir: str) -> None:
        """Register an eventfd for memory.oom_control in ``memory_dir``."""
        self._dir = memory_dir
        self._efd = os.eventfd(0, os.EFD_CLOEXEC)
        ctl = os.path.join(memory_dir, "memory.oom_control")
        try:
            self._ofd = os.open(ctl, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            os.close(self._efd)
            raise base.cgroup_error("open", ctl, e) from None
        try:
            base.write_file(os.path.join(memory_dir, "cgroup.event_control"), f"{self._efd} {self._ofd}")
        except CgroupError:
            self.close()
            raise

    def fileno(self) -> int:
        """The eventfd."""
        return self._efd

    def wait(self, timeout: float | None = None) -> bool:
        """True on OOM; EOFError once the cgroup is gone (the kernel also
        signals the eventfd on removal)."""
        import select  # an extension module: only `events` waits

        r, _, _ = select.select([self._efd], [], [], timeout)
        if not r:
            return False
        os.eventfd_read(self._efd)
        if not os.path.exists(os.path.join(self._dir, "cgroup.event_control")):
            raise EOFError("cgroup removed")
        return True

    def close(self) -> None:
        """Close both descriptors (idempotent)."""
        for name in ("_efd", "_ofd"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
