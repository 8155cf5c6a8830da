"""runc's "rootless cgroups": a cgroup is used when the caller may make it, skipped when not.

Without an explicit ``linux.cgroupsPath``, a cgroup the caller has no
permission to create is skipped (the container runs in the caller's own
cgroup), unless the config asks for resource limits, which then cannot be
enforced: that is refused, naming the controller, as runc does.  With an
explicit path (a delegated subtree) every failure is an error.  Device rules
are never installed: an unprivileged user cannot restrict devices, and the
container can only reach the nodes it is given by bind mounts anyway.
"""

from __future__ import annotations

import errno

from pyrunc.errors import CgroupError, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from pyrunc.linux.cgroups.base import Manager
    from pyrunc.state.store import ContainerRecord, Store

_NOT_PERMITTED = (errno.EACCES, errno.EPERM, errno.EROFS)


def limited_controller(manager: Manager, resources: Mapping[str, Any]) -> str | None:
    """The first controller the resources would write to (device rules aside), or None."""
    writes = manager.plan(resources, devices=False).writes
    return writes[0].controller if writes else None


def prepare(manager: Manager, linux: Mapping[str, Any], record: ContainerRecord,
            store: Store) -> Manager | None:
    """Create and configure the container's cgroup, or skip it; returns the manager or None.

    A skipped cgroup is taken out of the state record (saved again) so that
    nothing later looks for it.
    """
    resources = linux.get("resources") or {}
    try:
        manager.create()
    except CgroupError as e:
        if linux.get("cgroupsPath") or getattr(e, "errno", None) not in _NOT_PERMITTED:
            raise
        try:
            manager.destroy()
        except (OSError, PyruncError):
            pass
        controller = limited_controller(manager, resources)
        if controller is not None:
            raise PyruncError(_refusal(manager, controller, e)) from None
        record.cgroup = {}
        store.save(record)
        return None
    manager.apply(resources, devices=False)
    return manager


def _refusal(manager: Manager, controller: str, error: CgroupError) -> str:
    """runc's words for limits it cannot enforce: its cgroup2 manager and its v1
    manager (also on hybrid hosts) each have their own."""
    from pyrunc.linux.cgroups.detect import MODE_V2

    if manager.mode == MODE_V2:
        return ("rootless needs no limits + no cgrouppath when no permission is granted "
                f"for cgroups: {error}")
    return f"cannot set {controller} limit: container could not join or create cgroup: {error}"


def own_cgroup_dirs() -> list[str]:
    """This process's cgroup directory in each mounted hierarchy (where a container
    whose cgroup was skipped lives)."""
    from pyrunc.linux.cgroups.detect import (
        MODE_V2,
        detect,
        hierarchy_dir,
        parse_proc_cgroup,
        read_text,
    )

    layout = detect()
    own = parse_proc_cgroup(read_text("/proc/self/cgroup"))
    mounts = [] if layout.mode == MODE_V2 else [(c, m) for c, m in layout.v1.items()]
    if layout.unified is not None:
        mounts.append(("", layout.unified))
    dirs = []
    for controller, mount in mounts:
        d = hierarchy_dir(mount, "", own.get(controller))
        if d not in dirs:
            dirs.append(d)
    return dirs
