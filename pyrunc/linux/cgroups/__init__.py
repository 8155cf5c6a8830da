"""Container cgroups on v1, hybrid and pure v2 hosts (cgroupfs driver).

Entry points: :func:`manager_for` (a new container) and
:func:`manager_from_state` (a container recorded in state.json).
"""

from __future__ import annotations

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups.base import Manager, OOMNotifier
from pyrunc.linux.cgroups.detect import (
    MODE_HYBRID,
    MODE_V1,
    MODE_V2,
    Layout,
    clean_path,
    detect,
    hierarchy_dir,
    parse_proc_cgroup,
    read_text,
)
from pyrunc.linux.cgroups.fs_v1 import V1Manager
from pyrunc.linux.cgroups.fs_v2 import V2Manager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MODE_HYBRID", "MODE_V1", "MODE_V2", "Layout", "Manager", "OOMNotifier",
    "V1Manager", "V2Manager", "detect", "manager_for", "manager_from_state",
]


def manager_for(
    cgroups_path: str | None,
    container_id: str,
    root: str = "/sys/fs/cgroup",
    *,
    mountinfo: str | None = None,
    proc_self_cgroup: str | None = None,
    layout: Layout | None = None,
) -> Manager:
    """The manager for a container's cgroup, as runc's cgroupfs driver places it.

    An absent/empty ``cgroups_path`` means ``<container_id>``, relative.
    Absolute paths are below each hierarchy's root.  Relative ones are below
    pyrunc's own cgroup (from /proc/self/cgroup) in each v1 hierarchy, and
    below its parent in the cgroup2 one (pure v2, or hybrid's unified
    mount), as runc does: the caller's own cgroup is never given children
    that need controllers.  The path is cleaned lexically so ``..`` can
    never climb out.  ``mountinfo`` and
    ``proc_self_cgroup`` (file contents) default to the running process's.
    """
    if layout is None:
        layout = detect(root, mountinfo)
    inner = clean_path(cgroups_path or "") or clean_path(container_id)
    if inner in ("", "/"):
        raise CgroupError(f"invalid cgroup path {cgroups_path!r} for container {container_id!r}")
    own = parse_proc_cgroup(proc_self_cgroup if proc_self_cgroup is not None
                            else read_text("/proc/self/cgroup"))
    if layout.mode == MODE_V2:
        assert layout.unified is not None
        return V2Manager(hierarchy_dir(layout.unified, inner, own.get(""), beside_own=True),
                         layout.unified.mountpoint)
    paths = {c: hierarchy_dir(m, inner, own.get(c)) for c, m in layout.v1.items()}
    unified = None
    mount = None
    if layout.unified is not None:
        unified = hierarchy_dir(layout.unified, inner, own.get(""), beside_own=True)
        mount = layout.unified.mountpoint
    return V1Manager(paths, unified, mount)


def manager_from_state(state: dict[str, Any]) -> Manager:
    """Rebuild a manager from :meth:`Manager.to_state` output (no detection)."""
    if state.get("systemd"):
        from pyrunc.linux.cgroups import systemd

        return systemd.manager_from_state(state)
    mode = state.get("mode")
    if mode == MODE_V2:
        return V2Manager(str(state["path"]), str(state["mount"]))
    if mode in (MODE_V1, MODE_HYBRID):
        return V1Manager(dict(state.get("paths") or {}), state.get("unified"), state.get("unified_mount"))
    raise CgroupError(f"unknown cgroup manager state mode {mode!r}")
