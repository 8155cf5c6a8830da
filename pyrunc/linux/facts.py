"""Gathering the host facts the planner needs (reads only, never writes)."""

from __future__ import annotations

import os
import stat

from pyrunc.errors import ConfigError
from pyrunc.linux.netdevs import selinux_enabled
from pyrunc.plan.builder import CgroupHierarchy, HostFacts
from pyrunc.plan.mounts import bind_source, parse_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence


def parse_mountinfo(text: str) -> list[dict[str, str]]:
    """Entries of /proc/self/mountinfo: mountpoint, fstype, source, super options."""
    entries = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        entries.append({
            "mountpoint": fields[4].replace("\\040", " "),
            "root": fields[3],
            "fstype": rfields[0],
            "source": rfields[1],
            "super": rfields[2],
        })
    return entries


def cgroup_hierarchies(mountinfo: str, container_dirs: Sequence[str]) -> list[CgroupHierarchy]:
    """The host's cgroup hierarchies under /sys/fs/cgroup with the container's dirs.

    ``container_dirs`` are the container's cgroup directories; each belongs to
    the hierarchy whose mountpoint it lies under.  Hierarchies without one are
    shown at their root.
    """
    result = []
    for e in parse_mountinfo(mountinfo):
        if e["fstype"] not in ("cgroup", "cgroup2"):
            continue
        mp = e["mountpoint"]
        if mp != "/sys/fs/cgroup" and not mp.startswith("/sys/fs/cgroup/"):
            continue
        name = "" if mp == "/sys/fs/cgroup" else mp[len("/sys/fs/cgroup/"):]
        opts = [o for o in e["super"].split(",") if o not in ("rw", "ro")]
        if e["fstype"] == "cgroup2":
            opts = [o for o in opts if o in ("nsdelegate", "memory_recursiveprot")]
        own = [d for d in container_dirs if d == mp or d.startswith(mp + "/")]
        result.append(CgroupHierarchy(name=name, fstype=e["fstype"], options=",".join(opts),
                                      host_path=own[0] if own else mp))
    return result


def _kind(path: str) -> str:
    """ "missing", "procfs" (a directory of the host's procfs), "dir" or "file"."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    if stat.S_ISDIR(st.st_mode):
        try:
            return "procfs" if st.st_dev == os.stat("/proc").st_dev else "dir"
        except OSError:
            return "dir"
    return "file"


def _open_image_file(rootfs: str, relpath: str, limit: int) -> bytes | None:
    """Read a small regular file of the image without following any symlink.

    Every component is opened O_NOFOLLOW below the rootfs, and only a regular
    file is read (a fifo would block, a symlink could point at the host).
    """
    fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        parts = [p for p in relpath.split("/") if p]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_RDONLY | os.O_NONBLOCK if last else
                                                     os.O_PATH | os.O_DIRECTORY)
            nfd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nfd
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def passwd_home(rootfs: str, uid: int) -> str | None:
    """HOME of uid from the image's /etc/passwd, or None."""
    data = _open_image_file(rootfs, "etc/passwd", 1 << 20)
    if data is None:
        return None
    for line in data.decode(errors="replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 6 and parts[2] == str(uid):
            return parts[5] or None
    return None


def resolve_rootfs(bundle: str, root: str) -> str:
    """The rootfs's absolute path; like runc, refuse one reached through a symlink.

    The rootfs is mounted and pivoted into by path; a symlink in it (or in
    the bundle path) would make that path mean something else later.
    """
    rootfs = os.path.normpath(root if root.startswith("/") else os.path.join(bundle, root))
    try:
        st = os.stat(rootfs)
    except OSError as e:
        raise ConfigError(f"invalid rootfs: stat {rootfs}: {e.strerror.lower()}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"invalid rootfs: {rootfs}: not a directory")
    if os.path.realpath(rootfs) != rootfs:
        raise ConfigError("invalid rootfs: not an absolute path, or a symlink")
    return rootfs


def gather(config: Mapping[str, Any], bundle: str, rootfs: str, *, fifo_fd: int,
           first_closed_fd: int, no_pivot: bool,
           container_cgroup_dirs: Sequence[str]) -> HostFacts:
    """Collect HostFacts for one create (rootfs as :func:`resolve_rootfs` gave it)."""
    kinds = {}
    for m in config.get("mounts") or ():
        mtype = m.get("type")
        if mtype in ("bind", "rbind") or parse_options(m.get("options") or ()).is_bind:
            source = bind_source(m, bundle)
            kinds[source] = _kind(source)
    with open("/proc/self/mountinfo") as f:
        mountinfo = f.read()
    user = (config.get("process") or {}).get("user") or {}
    return HostFacts(
        rootfs=rootfs, bundle=bundle, fifo_fd=fifo_fd, first_closed_fd=first_closed_fd,
        source_kinds=kinds,
        cgroup_hierarchies=cgroup_hierarchies(mountinfo, container_cgroup_dirs),
        has_kcore=os.path.exists("/proc/kcore"), no_pivot=no_pivot,
        passwd_home=passwd_home(rootfs, int(user.get("uid", 0))),
        selinux_enabled=selinux_enabled(),
    )
