"""OCI mount entries -> pyrunc-init mount steps (pure).

Option parsing follows the table in the runtime-spec (config.md, "Mounts"):
flag options set or clear ``MS_*`` bits, propagation options become a
separate propagation step, and anything unknown is passed to the filesystem
as mount data.
"""

from __future__ import annotations

import posixpath

from pyrunc.errors import ConfigError
from pyrunc.plan import flags as F
from pyrunc.plan import protocol as P
from pyrunc.plan.record import FrozenRecord, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

# option -> (clear?, flag)
_FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "async": (True, F.MS_SYNCHRONOUS),
    "atime": (True, F.MS_NOATIME),
    "bind": (False, F.MS_BIND),
    "defaults": (False, 0),
    "dev": (True, F.MS_NODEV),
    "diratime": (True, F.MS_NODIRATIME),
    "dirsync": (False, F.MS_DIRSYNC),
    "exec": (True, F.MS_NOEXEC),
    "iversion": (False, F.MS_I_VERSION),
    "lazytime": (False, F.MS_LAZYTIME),
    "loud": (True, F.MS_SILENT),
    "mand": (False, F.MS_MANDLOCK),
    "noatime": (False, F.MS_NOATIME),
    "nodev": (False, F.MS_NODEV),
    "nodiratime": (False, F.MS_NODIRATIME),
    "noexec": (False, F.MS_NOEXEC),
    "noiversion": (True, F.MS_I_VERSION),
    "nolazytime": (True, F.MS_LAZYTIME),
    "nomand": (True, F.MS_MANDLOCK),
    "norelatime": (True, F.MS_RELATIME),
    "nostrictatime": (True, F.MS_STRICTATIME),
    "nosuid": (False, F.MS_NOSUID),
    "nosymfollow": (False, F.MS_NOSYMFOLLOW),
    "rbind": (False, F.MS_BIND | F.MS_REC),
    "relatime": (False, F.MS_RELATIME),
    "remount": (False, F.MS_REMOUNT),
    "ro": (False, F.MS_RDONLY),
    "rw": (True, F.MS_RDONLY),
    "silent": (False, F.MS_SILENT),
    "strictatime": (False, F.MS_STRICTATIME),
    "suid": (True, F.MS_NOSUID),
    "symfollow": (True, F.MS_NOSYMFOLLOW),
    "sync": (False, F.MS_SYNCHRONOUS),
}

PROPAGATION_OPTIONS = {
    "private": F.MS_PRIVATE,
    "rprivate": F.MS_PRIVATE | F.MS_REC,
    "shared": F.MS_SHARED,
    "rshared": F.MS_SHARED | F.MS_REC,
    "slave": F.MS_SLAVE,
    "rslave": F.MS_SLAVE | F.MS_REC,
    "unbindable": F.MS_UNBINDABLE,
    "runbindable": F.MS_UNBINDABLE | F.MS_REC,
}

# Recursive mount attributes (mount_setattr(2) with AT_RECURSIVE).
RECURSIVE_OPTIONS = frozenset({
    "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
    "rnodiratime", "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime",
    "rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow",
})

# mount_setattr(2) attributes (linux/mount.h).
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# recursive option -> (clear?, attribute)
_RECURSIVE_FLAGS: dict[str, tuple[bool, int]] = {
    "rro": (False, MOUNT_ATTR_RDONLY), "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID), "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV), "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC), "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME), "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}
# The atime mode is one value, not bits.  Undoing noatime or strictatime (and
# "norelatime", which mount(2) also turns into relatime) means relatime.
_RECURSIVE_ATIME = {
    "rrelatime": MOUNT_ATTR_RELATIME, "rnoatime": MOUNT_ATTR_NOATIME,
    "rstrictatime": MOUNT_ATTR_STRICTATIME, "ratime": MOUNT_ATTR_RELATIME,
    "rnostrictatime": MOUNT_ATTR_RELATIME, "rnorelatime": MOUNT_ATTR_RELATIME,
}

# Options pyrunc understands but handles outside mount(2).
SPECIAL_OPTIONS = frozenset({"tmpcopyup", "idmap", "ridmap"})

# Files below /proc that may be mounted over (what lxcfs provides); anything
# else below /proc is refused, as runc does (CVE-2019-19921 class).
PROC_MOUNT_ALLOWLIST = frozenset({
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid", "/proc/pressure",
})

# Filesystems that must be mounted on a real directory, never through a symlink.
_NO_SYMLINK_TYPES = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "mqueue", "devpts"})


class MountOptions(FrozenRecord):
    """Parsed mount options."""

    __slots__ = ("flags", "propagation", "data", "recursive", "special", "cleared")

    def __init__(self, flags: int = 0, propagation: tuple[int, ...] = (), data: tuple[str, ...] = (),
                 recursive: tuple[str, ...] = (), special: tuple[str, ...] = (),
                 cleared: int = 0) -> None:
        self.flags = flags
        self.propagation = propagation
        self.data = data
        self.recursive = recursive
        self.special = special
        self.cleared = cleared  # MS_* bits an option ("rw", "suid", ...) asks to clear

    @property
    def is_bind(self) -> bool:
        """True for bind and rbind mounts."""
        return bool(self.flags & F.MS_BIND)


def parse_options(options: list[str] | tuple[str, ...]) -> MountOptions:
    """Split OCI mount options into flags, propagation, data and the rest."""
    flags = cleared = 0
    propagation: list[int] = []
    data: list[str] = []
    recursive: list[str] = []
    special: list[str] = []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            clear, bit = _FLAG_OPTIONS[opt]
            flags = flags & ~bit if clear else flags | bit
            cleared = cleared | bit if clear else cleared & ~bit
        elif opt in PROPAGATION_OPTIONS:
            propagation.append(PROPAGATION_OPTIONS[opt])
        elif opt in RECURSIVE_OPTIONS:
            recursive.append(opt)
        elif opt in SPECIAL_OPTIONS:
            special.append(opt)
        else:
            data.append(opt)
    return MountOptions(flags, tuple(propagation), tuple(data), tuple(recursive),
                        tuple(special), cleared)


def recursive_attributes(names: tuple[str, ...] | list[str]) -> tuple[int, int]:
    """(attr_set, attr_clr) for mount_setattr(2) from recursive options, later ones winning."""
    attr_set = attr_clr = 0
    for name in names:
        if name in _RECURSIVE_ATIME:
            attr_clr |= MOUNT_ATTR__ATIME
            attr_set = (attr_set & ~MOUNT_ATTR__ATIME) | _RECURSIVE_ATIME[name]
            continue
        clear, bit = _RECURSIVE_FLAGS[name]
        if clear:
            attr_set &= ~bit
            attr_clr |= bit
        else:
            attr_set |= bit
            attr_clr &= ~bit
    return attr_set, attr_clr


def clean_destination(dest: str) -> str:
    """Absolute, normalised destination; relative ones are taken from "/" (runc 1.2+)."""
    return posixpath.normpath(posixpath.join("/", dest))


class MountContext(Record):
    """Host facts the mount planner needs."""

    __slots__ = ("bundle", "source_kinds", "user_namespace", "idmap_slots", "rootfs")

    def __init__(self, bundle: str, source_kinds: Mapping[str, str] | None = None,
                 user_namespace: bool = False, idmap_slots: Mapping[int, int] | None = None,
                 rootfs: str = "") -> None:
        self.bundle = bundle
        self.rootfs = rootfs  # host path of the rootfs ("" when unknown)
        # path -> "dir"|"file"|"missing"
        self.source_kinds: Mapping[str, str] = {} if source_kinds is None else source_kinds
        self.user_namespace = user_namespace
        # mount index -> detached slot
        self.idmap_slots: Mapping[int, int] = {} if idmap_slots is None else idmap_slots


class IdmapRequest(FrozenRecord):
    """An idmapped bind mount: what to clone and the user namespace it needs."""

    __slots__ = ("index", "slot", "source", "recursive", "uid_mappings", "gid_mappings")

    def __init__(self, index: int, slot: int, source: str, recursive: bool,
                 uid_mappings: tuple[Mapping[str, int], ...],
                 gid_mappings: tuple[Mapping[str, int], ...]) -> None:
        self.index = index  # position in config["mounts"]
        self.slot = slot  # OP_MOUNT_IDMAP slot
        self.source = source
        self.recursive = recursive
        self.uid_mappings = uid_mappings
        self.gid_mappings = gid_mappings


def idmap_requests(config: Mapping[str, Any], bundle: str) -> list[IdmapRequest]:
    """The idmapped mounts of a config, in order.

    A mount is idmapped when its options hold idmap or ridmap (ridmap, or
    an rbind, clones the whole tree), or when it has uidMappings or
    gidMappings of its own (runc 1.2: they mean "idmap").  Its own mappings
    are used, else the container's user namespace mappings (runc's rule).
    """
    linux = config.get("linux") or {}
    out: list[IdmapRequest] = []
    for index, m in enumerate(config.get("mounts") or ()):
        options = list(m.get("options") or ())
        if not is_idmapped(m):
            continue
        dest = clean_destination(str(m["destination"]))
        opts = parse_options(options + (["rbind"] if m.get("type") == "rbind" else []))
        if not opts.is_bind and m.get("type") not in ("bind", "rbind"):
            raise ConfigError(f"mounts: {dest}: idmap is only supported on bind mounts")
        uid = tuple(m.get("uidMappings") or linux.get("uidMappings") or ())
        gid = tuple(m.get("gidMappings") or linux.get("gidMappings") or ())
        if not uid or not gid:
            raise ConfigError(f"mounts: {dest}: idmap needs uidMappings and gidMappings "
                              "(on the mount or in linux)")
        if len(out) >= P.MOUNT_IDMAP_SLOTS:
            raise ConfigError(f"mounts: more than {P.MOUNT_IDMAP_SLOTS} idmapped mounts")
        recursive = "ridmap" in options or bool(opts.flags & F.MS_REC)
        out.append(IdmapRequest(index, len(out), bind_source(m, bundle), recursive, uid, gid))
    return out


def is_idmapped(m: Mapping[str, Any]) -> bool:
    """True when a mount entry asks for an idmapped mount (option or mappings)."""
    options = set(m.get("options") or ())
    return bool({"idmap", "ridmap"} & options or m.get("uidMappings") is not None
                or m.get("gidMappings") is not None)


def idmap_prepare_steps(requests: list[IdmapRequest], userns_fds: Mapping[int, int]) -> list[P.Step]:
    """Stage A: clone and idmap each source tree with its user namespace fd."""
    return [P.step(P.OP_MOUNT_IDMAP, userns_fds[r.index],
                   P.MOUNT_F_IDMAP_RECURSIVE if r.recursive else 0, r.slot, strs=(r.source,),
                   what=f'idmap "{r.source}"') for r in requests]


def _describe(m: Mapping[str, Any], dest: str, flags: int) -> str:
    src = m.get("source") or m.get("type") or "none"
    return f'mount {src!s} on "{dest}" ({F.mount_flag_names(flags)})'


def check_destination(dest: str, mount_type: str) -> None:
    """Refuse mounts below /proc other than the allow-listed ones."""
    if dest.startswith("/proc/") and dest not in PROC_MOUNT_ALLOWLIST:
        raise ConfigError(f"mounts: {dest} cannot be mounted because it is inside /proc")
    if dest == "/proc" and mount_type not in ("proc", ""):
        raise ConfigError(f"mounts: /proc cannot be mounted with type {mount_type!r}")


def root_path_of(source: str, rootfs: str) -> str | None:
    """source as a path inside the rootfs, or None when it lies outside."""
    if not rootfs:
        return None
    source = posixpath.normpath(source)
    rootfs = posixpath.normpath(rootfs)
    if source == rootfs:
        return "/"
    if source.startswith(rootfs.rstrip("/") + "/"):
        return source[len(rootfs.rstrip("/")):]
    return None


def bind_source(m: Mapping[str, Any], bundle: str) -> str:
    """Host path of a bind mount's source (relative ones are relative to the bundle)."""
    source = str(m.get("source", ""))
    if not source:
        raise ConfigError(f"mounts: bind mount on {m.get('destination')} has no source")
    return source if source.startswith("/") else posixpath.join(bundle, source)


def mount_steps(m: Mapping[str, Any], ctx: MountContext, index: int = -1) -> list[P.Step]:
    """Steps for one OCI mount entry (config["mounts"][index]), in the order pyrunc-init runs them."""
    dest = clean_destination(str(m["destination"]))
    mtype = str(m.get("type") or "")
    opts = parse_options(list(m.get("options") or ()))
    if mtype in ("bind", "rbind") and not opts.is_bind:
        opts = parse_options(list(m.get("options") or ()) + ["rbind" if mtype == "rbind" else "bind"])
    check_destination(dest, mtype if not opts.is_bind else "")
    idmapped = is_idmapped(m)
    if idmapped and index not in ctx.idmap_slots:
        raise ConfigError(f"mounts: {dest}: idmapped mount without a user namespace")
    data = ",".join(opts.data)
    steps: list[P.Step] = []
    if opts.is_bind:
        source = bind_source(m, ctx.bundle)
        kind = ctx.source_kinds.get(source, "dir")
        if dest == "/proc" and kind != "procfs":
            # A fake /proc would hide the real one from the container and from
            # anything that trusts /proc in it (CVE-2019-16884/19921 class).
            raise ConfigError(f"mounts: {source} cannot be bind-mounted on /proc: it is not procfs")
        in_root = root_path_of(source, ctx.rootfs) if not idmapped else None
        if kind == "missing" and in_root is None:
            # Checked before anything runs (runc stats the source first): the
            # init would otherwise create the target in the rootfs, then fail.
            raise ConfigError(f'error mounting "{source}" to rootfs at "{dest}": '
                              f"stat {source}: no such file or directory")
        make = P.MOUNT_F_MKFILE if kind == "file" else P.MOUNT_F_MKDIR
        base = opts.flags & (F.MS_BIND | F.MS_REC)
        if idmapped:
            steps.append(P.step(P.OP_MOUNT, base, P.MOUNT_F_DETACHED | make, 0o755,
                                ctx.idmap_slots[index], strs=(source, dest, "", ""),
                                what=_describe(m, dest, base) + " idmapped"))
        elif in_root is not None:
            # Inside the rootfs, the source may be what an earlier mount put
            # there (runc looks at it when it mounts it): it is resolved in
            # the root at that point, and the target made like it.
            bits = P.MOUNT_F_BIND_SOURCE | P.MOUNT_F_SOURCE_ROOT | P.MOUNT_F_KIND_OF_SOURCE
            steps.append(P.step(P.OP_MOUNT, base, bits, 0o755, strs=(in_root, dest, "", ""),
                                what=_describe(m, dest, base)))
        else:
            steps.append(P.step(P.OP_MOUNT, base, P.MOUNT_F_BIND_SOURCE | make, 0o755,
                                strs=(source, dest, "", ""), what=_describe(m, dest, base)))
        extra = opts.flags & ~(F.MS_BIND | F.MS_REC | F.MS_REMOUNT)
        if extra or opts.cleared:
            # Bind mounts ignore other flags; they take effect on a remount,
            # which sets exactly the flags asked for (runc 1.2), keeping
            # those the kernel locked if it must.
            remount = extra | F.MS_BIND | F.MS_REMOUNT
            steps.append(P.step(P.OP_MOUNT, remount, P.MOUNT_F_NO_SOURCE | P.MOUNT_F_KEEP_LOCKED,
                                0, opts.cleared, strs=("", dest, "", ""),
                                what=_describe(m, dest, remount)))
    else:
        source = str(m.get("source") or mtype or "none")
        mflags = opts.flags
        bits = P.MOUNT_F_MKDIR
        if mtype == "tmpfs":
            # A tmpfs keeps the mode of the directory it covers unless the
            # data sets one (runc 1.2).
            bits |= P.MOUNT_F_DIR_MODE
        if mtype in _NO_SYMLINK_TYPES:
            bits |= P.MOUNT_F_NOSYMLINK_DST
        # As runc: tmpcopyup only means something for tmpfs and is ignored elsewhere.
        copyup = mtype == "tmpfs" and "tmpcopyup" in opts.special
        if copyup:
            bits |= P.MOUNT_F_TMPCOPYUP
        if defers_readonly(m):
            # Made read-only by finalize_readonly_steps, once what goes into
            # it (devices, devpts, submounts, the copy-up) is there.
            mflags &= ~F.MS_RDONLY
        what = _describe(m, dest, mflags) + (" with tmpcopyup" if copyup else "")
        steps.append(P.step(P.OP_MOUNT, mflags, bits, 0o755,
                            strs=(source, dest, mtype, data), what=what))
    for prop in opts.propagation:
        steps.append(P.step(P.OP_MOUNT, prop, P.MOUNT_F_NO_SOURCE, 0,
                            strs=("", dest, "", ""), what=f'set propagation of "{dest}" ({F.mount_flag_names(prop)})'))
    if opts.recursive:
        attr_set, attr_clr = recursive_attributes(opts.recursive)
        steps.append(P.step(P.OP_MOUNT_SETATTR, attr_set, attr_clr, 0, strs=(dest,),
                            what=f'set recursive attributes of "{dest}" '
                                 f'({",".join(opts.recursive)})'))
    if dest == "/proc" or dest.startswith("/proc/"):
        # check_destination let it through: pyrunc-init may mount onto procfs here.
        steps = [s.replace(ints=(s.ints[0], s.ints[1] | P.MOUNT_F_PROC_OK, *s.ints[2:]))
                 if s.op == P.OP_MOUNT else s for s in steps]
    return steps


def defers_readonly(m: Mapping[str, Any]) -> bool:
    """True for mounts made read-only only at the end of the rootfs set-up.

    runc mounts every tmpfs and whatever is on /dev read-write and remounts
    the read-only ones once the mounts, device nodes and console are in
    place, so that e.g. /dev/pts can be mounted in a read-only /dev.
    """
    if m.get("type") == "cgroup":
        return False
    return m.get("type") == "tmpfs" or clean_destination(str(m["destination"])) == "/dev"


def finalize_readonly_steps(mounts: Sequence[Mapping[str, Any]]) -> list[P.Step]:
    """The deferred read-only remounts (see defers_readonly), in the config's order."""
    steps: list[P.Step] = []
    for m in mounts:
        opts = parse_options(list(m.get("options") or ()))
        if not defers_readonly(m) or not opts.flags & F.MS_RDONLY:
            continue
        dest = clean_destination(str(m["destination"]))
        # A bind remount only changes the per-mount flags, which the
        # container's root may do in a user namespace as well.
        flags = (opts.flags & ~F.MS_REC) | F.MS_REMOUNT | F.MS_BIND | F.MS_RDONLY
        steps.append(P.step(P.OP_MOUNT, flags, P.MOUNT_F_NO_SOURCE | P.MOUNT_F_KEEP_LOCKED, 0,
                            opts.cleared, strs=("", dest, "", ""),
                            what=f'remount "{dest}" read-only ({F.mount_flag_names(flags)})'))
    return steps


def with_bind_source_fds(steps: list[P.Step]) -> list[P.Step]:
    """In a new user and mount namespace, bind sources are opened by the host's root.

    The container's root may be unable to reach a host bind source (a
    0700 directory of the host's root on the way).  As runc does, a helper
    forked while pyrunc-init is still the host's root joins the new mount
    namespace and opens each source; the mounts use those fds.  Sources
    inside the rootfs, idmapped trees and mounts after the root change
    keep their own lookup; past MOUNT_SOURCE_SLOTS sources, the rest too.
    """
    ops = [s.op for s in steps]
    newns = F.NAMESPACE_FLAGS["mount"]
    unshare = next((i for i, s in enumerate(steps)
                    if s.op == P.OP_UNSHARE and s.ints and s.ints[0] & newns), None)
    if P.OP_UNSHARE_USER not in ops or unshare is None:
        return steps
    end = next((i for i, op in enumerate(ops) if op in (P.OP_PIVOT_ROOT, P.OP_CHROOT)), len(steps))
    out: list[P.Step] = []
    sources: list[bytes] = []
    skip = P.MOUNT_F_SOURCE_ROOT | P.MOUNT_F_DETACHED | P.MOUNT_F_TARGET_HOST
    for i, s in enumerate(steps):
        mflags = s.ints[1] if s.op == P.OP_MOUNT and len(s.ints) > 1 else 0
        if (i < end and mflags & P.MOUNT_F_BIND_SOURCE and not mflags & skip
                and len(sources) < P.MOUNT_SOURCE_SLOTS):
            ints = (*s.ints, 0, 0, 0, 0)
            out.append(s.replace(ints=(ints[0], mflags | P.MOUNT_F_SOURCE_FD, ints[2],
                                       len(sources), *s.ints[4:])))
            sources.append(s.strs[0])
        else:
            out.append(s)
    if not sources:
        return steps
    user = ops.index(P.OP_UNSHARE_USER)
    fork = P.step(P.OP_BIND_SOURCES_FORK, strs=sources, what="fork the bind source opener")
    opened = P.step(P.OP_BIND_SOURCES_OPEN, len(sources),
                    what="open bind sources in the container's mount namespace")
    return [*out[:user], fork, *out[user:unshare + 1], opened, *out[unshare + 1:]]
