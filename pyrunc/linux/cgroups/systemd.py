"""The systemd cgroup driver (``--systemd-cgroup``): a transient unit per container.

:class:`SystemdManager` is a cgroup :class:`~pyrunc.linux.cgroups.base.Manager`
whose cgroup belongs to a systemd unit (a scope, or a slice when
``cgroupsPath`` names one).  The unit is started through systemd's D-Bus API
with the init's pid, before the init is given its plan, so no container
process ever runs outside it.  The resources become unit properties
(:mod:`pyrunc.plan.systemd_unit`), and then, as runc does, everything is also
written to the unit's cgroup files by the cgroupfs manager inside
(``inner``): systemd covers only part of ``linux.resources``.  Freezing,
listing, killing, stats and OOM events are the cgroupfs manager's.

Deleting stops the unit (waiting for the job), resets a failed state and
removes what directories are left.  The D-Bus client is imported only here,
and only when a container uses this driver: the cgroupfs path never loads it.
"""

from __future__ import annotations

import os
import posixpath

from pyrunc.errors import CgroupError, PyruncError
from pyrunc.linux.cgroups import base

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from pyrunc.linux.cgroups.detect import Layout
    from pyrunc.plan import cgroups as plan
    from pyrunc.plan.systemd_unit import UnitTarget

SCOPE_INTERFACE = "org.freedesktop.systemd1.Scope"
SLICE_INTERFACE = "org.freedesktop.systemd1.Slice"


def _fs_manager(layout: Layout, cgroup: str) -> base.Manager:
    """The cgroupfs manager for unit cgroup ``cgroup`` (absolute, below each hierarchy root)."""
    from pyrunc.linux.cgroups.detect import MODE_V2, hierarchy_dir
    from pyrunc.linux.cgroups.fs_v1 import V1Manager
    from pyrunc.linux.cgroups.fs_v2 import V2Manager

    if layout.mode == MODE_V2:
        assert layout.unified is not None
        return V2Manager(hierarchy_dir(layout.unified, cgroup, None), layout.unified.mountpoint)
    paths = {c: hierarchy_dir(m, cgroup, None) for c, m in layout.v1.items()}
    unified = mount = None
    if layout.unified is not None:
        unified = hierarchy_dir(layout.unified, cgroup, None)
        mount = layout.unified.mountpoint
    return V1Manager(paths, unified, mount)


def _fs_from_state(state: Mapping[str, Any]) -> base.Manager:
    from pyrunc.linux.cgroups.detect import MODE_V2
    from pyrunc.linux.cgroups.fs_v1 import V1Manager
    from pyrunc.linux.cgroups.fs_v2 import V2Manager

    if state.get("mode") == MODE_V2:
        return V2Manager(str(state["path"]), str(state["mount"]))
    return V1Manager(dict(state.get("paths") or {}), state.get("unified"), state.get("unified_mount"))


class SystemdManager(base.Manager):
    """A container cgroup owned by systemd unit ``target.unit``."""

    def __init__(self, target: UnitTarget, inner: base.Manager, container_id: str,
                 annotations: Mapping[str, str] | None = None, started: bool = False,
                 layout: Layout | None = None) -> None:
        self.target = target
        self.inner = inner
        self.mode = inner.mode
        self.container_id = container_id
        self.annotations = dict(annotations or {})
        self.started = started
        self.layout = layout
        self._bus: Any = None
        self._pending: tuple[Mapping[str, Any], Sequence[Mapping[str, Any]] | None, bool] | None = None

    # ------------------------------------------------------------- systemd

    @property
    def unit(self) -> str:
        """The unit's name."""
        return self.target.unit

    def bus(self) -> Any:
        """The connection to systemd (system manager, or the user's for a rootless container)."""
        if self._bus is None:
            from pyrunc.linux.systemd_manager import SystemdManager as Bus

            try:
                self._bus = Bus.connect(user=self.target.user)
            except PyruncError as e:
                raise PyruncError(f'unable to start unit "{self.unit}": {e}') from None
        return self._bus

    def _version(self) -> str:
        from pyrunc.linux.cgroups.detect import MODE_V2

        return "v2" if self.inner.mode == MODE_V2 else "v1"

    def _resource_properties(self, resources: Mapping[str, Any], devices: bool,
                             linux_devices: Sequence[Mapping[str, Any]] | None) -> tuple[list[Any], list[str]]:
        from pyrunc.plan.systemd_unit import resource_properties

        rules = self.device_rules(resources, linux_devices, devices)
        return resource_properties(resources, self._version(), self.bus().version(), rules)

    def _start_properties(self, pid: int) -> tuple[list[Any], list[str]]:
        from pyrunc.plan.systemd_unit import start_properties

        resources, linux_devices, devices = self._pending or ({}, None, True)
        rules = self.device_rules(resources, linux_devices, devices)
        return start_properties(self.target, self.container_id, pid, resources, self._version(),
                                self.bus().version(), rules, self.annotations)

    def _start(self, pid: int) -> None:
        props, _warnings = self._start_properties(pid)
        bus = self.bus()
        # A leftover failed unit of the same name is reset first, as runc
        # retries after UnitExists; an active one is refused by systemd.
        try:
            bus.reset_failed_unit(self.unit)
        except PyruncError:
            pass
        bus.start_transient_unit(self.unit, props)
        self.started = True
        self._follow_control_group()

    def _follow_control_group(self) -> None:
        """Use the cgroup systemd reports for the unit when it differs from the computed one."""
        if self.layout is None:
            return
        iface = SLICE_INTERFACE if self.target.is_slice else SCOPE_INTERFACE
        try:
            cgroup = self.bus().get_unit_property(self.unit, iface, "ControlGroup")
        except PyruncError:
            return
        if isinstance(cgroup, str) and cgroup.startswith("/") and cgroup != self.target.cgroup:
            from pyrunc.plan.systemd_unit import UnitTarget

            self.target = UnitTarget(self.target.unit, self.target.slice, cgroup, self.target.user)
            self.inner = _fs_manager(self.layout, cgroup)

    # ---------------------------------------------------------- Manager API

    @property
    def paths(self) -> dict[str, str] | None:
        """The per-controller directories on v1 and hybrid hosts (None on v2), as V1Manager's."""
        paths = getattr(self.inner, "paths", None)
        return dict(paths) if paths is not None else None

    def dirs(self) -> list[str]:
        """The unit's cgroup directories (one per hierarchy on v1)."""
        return self.inner.dirs()

    def path(self, controller: str = "") -> str | None:
        """The unit's directory for ``controller``."""
        return self.inner.path(controller)

    def create(self) -> None:
        """Nothing yet: systemd makes the cgroup when the unit starts (:meth:`add_pid`)."""
        if self.started:
            self.inner.create()

    def add_pid(self, pid: int) -> None:
        """Start the unit with ``pid`` in it (first call), then apply the resources.

        Later calls (and controllers systemd does not manage on v1) go
        through cgroupfs.
        """
        if not self.started:
            self._start(pid)
            # The hierarchies systemd leaves alone on v1, and controllers to
            # enable below the slice on v2, as with cgroupfs.
            self.inner.create()
            self.inner.add_pid(pid)
            if self._pending is not None:
                resources, linux_devices, devices = self._pending
                self._pending = None
                self.inner.apply(resources, linux_devices, devices)
            return
        self.inner.add_pid(pid)

    def plan(self, resources: Mapping[str, Any],
             linux_devices: Sequence[Mapping[str, Any]] | None = None,
             devices: bool = True) -> plan.CgroupPlan:
        """The cgroupfs plan (properties are checked as they are made)."""
        return self.inner.plan(resources, linux_devices, devices)

    def apply(self, resources: Mapping[str, Any],
              linux_devices: Sequence[Mapping[str, Any]] | None = None,
              devices: bool = True) -> list[str]:
        """Set ``resources``: unit properties (runtime, so a daemon-reload keeps
        them), then the cgroup files.

        Before the unit exists (create), everything is checked now (the
        cgroupfs plan, the properties, the connection to systemd) and applied
        when the unit starts with the init's pid.
        """
        if not self.started:
            self.inner.plan(resources, linux_devices, devices)
            self._pending = (resources, linux_devices, devices)
            _props, warnings = self._start_properties(0)
            return warnings
        props, warnings = self._resource_properties(resources, devices, linux_devices)
        if props:
            try:
                self.bus().set_unit_properties(self.unit, True, props)
            except PyruncError as e:
                raise CgroupError(f"unable to set unit properties: {e}") from None
        return warnings + self.inner.apply(resources, linux_devices, devices)

    def kill_all(self, sig: int) -> None:
        """Signal every process of the unit (nothing before this create started it:
        a unit of the same name is someone else's)."""
        if self.started:
            super().kill_all(sig)

    def destroy(self) -> None:
        """Stop the unit (waiting for it), reset its failed state, remove leftover directories.

        A manager whose create never got the unit started leaves it alone:
        a unit of that name belongs to someone else.
        """
        if not self.started:
            return
        bus = self.bus()
        try:
            bus.stop_unit(self.unit)
        finally:
            try:
                bus.reset_failed_unit(self.unit)
            except PyruncError:
                pass
        # Normally systemd has removed it: this is for v1 hierarchies systemd
        # does not manage, and a cgroup still busy when the unit stopped.
        self.inner.destroy()

    def freeze(self) -> None:
        """Freeze through cgroupfs."""
        self.inner.freeze()

    def thaw(self) -> None:
        """Thaw through cgroupfs."""
        self.inner.thaw()

    def state(self) -> str:
        """"frozen" or "thawed"."""
        return self.inner.state()

    def pids(self) -> list[int]:
        """Every PID in the unit's cgroup."""
        return self.inner.pids()

    def _kill_file(self) -> str | None:
        return self.inner._kill_file()

    def stats(self) -> dict[str, Any]:
        """runc ``events --stats`` data from the cgroup files."""
        return self.inner.stats()

    def oom_events(self) -> base.OOMNotifier:
        """OOM notifier on the unit's cgroup (it also tells a kill systemd's
        removal of the emptied scope hid: see V2OOMNotifier)."""
        return self.inner.oom_events()

    def exists(self) -> bool:
        """Whether the unit's cgroup exists."""
        return self.inner.exists()

    def check_fit(self) -> None:
        """Nothing: systemd itself refuses a unit that exists (UnitExists), with
        its own error, and this create never touches a unit it did not start."""

    def to_state(self) -> dict[str, Any]:
        """The cgroupfs manager's state plus ``systemd``: unit, slice, cgroup, user."""
        doc = self.inner.to_state()
        doc["systemd"] = {"unit": self.unit, "slice": self.target.slice, "cgroup": self.target.cgroup,
                          "user": self.target.user}
        return doc


def manager_for(cgroups_path: str | None, container_id: str, *, rootless: bool = False,
                annotations: Mapping[str, str] | None = None, root: str = "/sys/fs/cgroup") -> SystemdManager:
    """The systemd-driven manager for a new container (nothing started yet).

    Refuses a host where systemd is not the init (runc checks
    /run/systemd/system the same way), a ``cgroupsPath`` that is not
    ``slice:prefix:name``, and, as runc does, a user's manager on a v1 or
    hybrid host: systemd delegates no v1 controller to a user.
    """
    from pyrunc.linux.cgroups.detect import MODE_V2, detect
    from pyrunc.plan.systemd_unit import parse_cgroups_path

    target = parse_cgroups_path(cgroups_path, container_id, rootless=rootless)
    if not os.path.isdir("/run/systemd/system"):
        raise PyruncError(f'unable to start unit "{target.unit}": systemd not running on this host, '
                          "cannot use systemd cgroups manager")
    layout = detect(root)
    if rootless and layout.mode != MODE_V2:
        raise PyruncError(f'unable to start unit "{target.unit}": cannot use rootless systemd cgroups manager '
                          "on cgroup v1")
    cgroup = target.cgroup
    if rootless:
        # The user manager's units live below its own cgroup.
        cgroup = posixpath.join(_user_manager_cgroup(), cgroup.lstrip("/"))
        from pyrunc.plan.systemd_unit import UnitTarget

        target = UnitTarget(target.unit, target.slice, cgroup, True)
    return SystemdManager(target, _fs_manager(layout, cgroup), container_id, annotations, layout=layout)


def use_user_manager(*, unprivileged: bool, rootless: bool) -> bool:
    """Whether the container's unit belongs to the user's systemd instance.

    An unprivileged caller always uses its own manager.  Root in a user
    namespace that rootless mode applies to (rootless podman runs the
    runtime so) uses the manager of the namespace's owner, unless that owner
    is the host's root (runc asks the user bus for its owner the same way).
    """
    if unprivileged:
        return True
    from pyrunc.linux.dbus import outside_uid

    return rootless and outside_uid(os.geteuid()) != 0


def _user_manager_cgroup() -> str:
    """The cgroup of the calling user's systemd instance (user@UID.service)."""
    from pyrunc.linux.dbus import outside_uid

    uid = outside_uid(os.getuid())
    from pyrunc.linux.cgroups.detect import parse_proc_cgroup, read_text

    own = parse_proc_cgroup(read_text("/proc/self/cgroup")).get("", "")
    marker = f"/user@{uid}.service"
    if marker in own:
        return own[:own.index(marker) + len(marker)]
    return f"/user.slice/user-{uid}.slice/user@{uid}.service"


def manager_from_state(state: Mapping[str, Any]) -> SystemdManager:
    """Rebuild the manager of a recorded container (its unit was started)."""
    from pyrunc.plan.systemd_unit import UnitTarget

    sd = state["systemd"]
    target = UnitTarget(str(sd["unit"]), str(sd.get("slice") or ""), str(sd.get("cgroup") or ""),
                        bool(sd.get("user")))
    return SystemdManager(target, _fs_from_state(state), "", started=True)
