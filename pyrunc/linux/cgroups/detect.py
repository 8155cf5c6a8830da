"""Cgroup layout detection from mountinfo: v1, hybrid or pure v2.

Both inputs (mountinfo text and /proc/self/cgroup text) can be passed in, so
tests can describe a fake cgroupfs living in a temporary directory.
"""

from __future__ import annotations

import errno
import posixpath

from pyrunc.plan.record import FrozenRecord

MODE_V1 = "v1"
MODE_HYBRID = "hybrid"
MODE_V2 = "v2"

# The v1 hierarchies runc joins (controllers plus the systemd named one).
V1_CONTROLLERS = (
    "cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
    "net_cls", "net_prio", "perf_event", "freezer", "rdma", "misc", "name=systemd",
)


class CgroupMount(FrozenRecord):
    """One cgroup or cgroup2 mount: where it is and what it carries."""

    __slots__ = ("mountpoint", "root", "fstype", "controllers")

    def __init__(self, mountpoint: str, root: str, fstype: str, controllers: tuple[str, ...]) -> None:
        self.mountpoint = mountpoint
        self.root = root
        self.fstype = fstype
        self.controllers = controllers


class Layout(FrozenRecord):
    """The host's cgroup layout below ``root``.

    ``v1`` maps each v1 controller (and ``name=systemd``) to its mount;
    ``unified`` is the cgroup2 mount (at ``root`` in v2 mode, usually
    ``root/unified`` in hybrid mode).
    """

    __slots__ = ("mode", "root", "v1", "unified")

    def __init__(self, mode: str, root: str, v1: dict[str, CgroupMount],
                 unified: CgroupMount | None) -> None:
        self.mode = mode
        self.root = root
        self.v1 = v1
        self.unified = unified


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        digits = field[i + 1:i + 4]
        if field[i] == "\\" and len(digits) == 3 and digits.isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """Every cgroup/cgroup2 mount in mountinfo ``text``, in order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        if len(fields) < sep + 4 or sep < 6:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        controllers: tuple[str, ...] = ()
        if fstype == "cgroup":
            opts = fields[sep + 3].split(",")
            controllers = tuple(o for o in opts if o in V1_CONTROLLERS or o.startswith("name="))
        mounts.append(CgroupMount(_unescape(fields[4]), _unescape(fields[3]), fstype, controllers))
    return mounts


def read_text(path: str) -> str:
    """Read a small text file (procfs/cgroupfs)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def detect(root: str = "/sys/fs/cgroup", mountinfo: str | None = None) -> Layout:
    """Detect the layout below ``root`` from mountinfo (default /proc/self/mountinfo).

    v2: a cgroup2 mount at ``root`` itself.  hybrid: v1 mounts plus a cgroup2
    mount below ``root``.  v1: only v1 mounts.  Raises OSError(ENOENT) when
    no cgroup filesystem is mounted below ``root``.
    """
    if mountinfo is None:
        mountinfo = read_text("/proc/self/mountinfo")
    root = posixpath.normpath(root)
    v1: dict[str, CgroupMount] = {}
    unified: CgroupMount | None = None
    for m in parse_mountinfo(mountinfo):
        if not _under(m.mountpoint, root):
            continue
        if m.fstype == "cgroup2":
            # Prefer a cgroup2 mount at root itself; later mounts shadow earlier ones.
            if unified is None or m.mountpoint == root or unified.mountpoint != root:
                unified = m
            continue
        for c in m.controllers:
            v1[c] = m
    if unified is not None and unified.mountpoint == root:
        return Layout(MODE_V2, root, {}, unified)
    if v1:
        return Layout(MODE_HYBRID if unified is not None else MODE_V1, root, v1, unified)
    if unified is not None:
        return Layout(MODE_V2, root, {}, unified)
    raise OSError(errno.ENOENT, f"no cgroup filesystem mounted under {root}")


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup -> {controller: path}; the v2 entry has key ""."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[1] == "":
            result[""] = parts[2]
            continue
        for c in parts[1].split(","):
            result[c] = parts[2]
    return result


def clean_path(path: str) -> str:
    """Lexically clean a cgroupsPath so it can never climb above its base.

    Absolute stays absolute, relative stays relative ("" when empty).
    """
    if not path:
        return ""
    cleaned = posixpath.normpath("/" + path)
    if path.startswith("/"):
        return cleaned
    return cleaned.lstrip("/")


def hierarchy_dir(mount: CgroupMount, inner: str, own: str | None, beside_own: bool = False) -> str:
    """The directory for cgroup ``inner`` in ``mount``'s hierarchy.

    Absolute ``inner`` is below the hierarchy root.  Relative ``inner`` is
    below ``own`` (pyrunc's own cgroup in that hierarchy, from
    /proc/self/cgroup, translated through the mount's root), or with
    ``beside_own`` below own's parent: runc's rule for cgroup2, where the
    caller's cgroup holds processes and so cannot hand controllers to a
    child (the container lands beside its caller, e.g. /system.slice/<id>
    for a caller in /system.slice/<unit>.service).
    """
    if inner.startswith("/"):
        return posixpath.join(mount.mountpoint, inner.lstrip("/")).rstrip("/")
    base = own or "/"
    if mount.root != "/" and _under(base, mount.root):
        base = base[len(mount.root.rstrip("/")):] or "/"
    if beside_own:
        base = posixpath.dirname(base.rstrip("/")) or "/"
    return posixpath.join(mount.mountpoint, base.lstrip("/"), inner).rstrip("/")


def available_controllers(directory: str, mount: str) -> tuple[str, frozenset[str]]:
    """The controllers cgroup2 ``directory`` offers, from its ``cgroup.controllers``.

    While ``directory`` does not exist yet, its nearest existing ancestor
    below ``mount`` answers.  Returns (the directory read, the controllers);
    an unreadable file counts as no controllers.
    """
    mount = posixpath.normpath(mount)
    d = posixpath.normpath(directory)
    while not posixpath.isdir(d) and _under(d, mount) and d != mount:
        d = posixpath.dirname(d)
    try:
        text = read_text(posixpath.join(d, "cgroup.controllers"))
    except OSError:
        text = ""
    return d, frozenset(text.split())
