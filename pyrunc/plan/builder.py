"""A validated config.json + host facts -> the ordered steps of container creation.

This is where the order of everything that happens inside the container is
decided; pyrunc-init only executes it.  The order follows runc's, which the
runtime-spec leaves open in many places:

  stage A (host side): join namespaces by path (user first), new user
  namespace (the parent writes the id maps), the other new namespaces, time
  offsets, fork into the new pid namespace;
  stage B (container init): oom_score_adj, rootfs propagation and bind, the
  config's mounts in order, /dev nodes and links, pivot_root, loopback,
  hostname, sysctls, readonly and masked paths, read-only root, the
  executable check, READY, wait for `start`, rlimits, bounding set, ids,
  capabilities, no_new_privs, cwd, fd hygiene, exec.
"""

from __future__ import annotations

import posixpath

from pyrunc.errors import ConfigError
from pyrunc.plan import flags as F
from pyrunc.plan import hooks as H
from pyrunc.plan import procattrs as PA
from pyrunc.plan import protocol as P
from pyrunc.plan import seccomp as S
from pyrunc.plan.mounts import (
    MountContext,
    clean_destination,
    finalize_readonly_steps,
    idmap_prepare_steps,
    idmap_requests,
    mount_steps,
    parse_options,
    with_bind_source_fds,
)
from pyrunc.plan.record import FrozenRecord, Record
from pyrunc.spec.semantic import sysctl_proc_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Device nodes every container gets (runc's defaults): path, major, minor.
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)

_DEV_LINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
)

_PROPAGATION = {
    "private": F.MS_PRIVATE, "rprivate": F.MS_PRIVATE | F.MS_REC,
    "slave": F.MS_SLAVE, "rslave": F.MS_SLAVE | F.MS_REC,
    "shared": F.MS_SHARED, "rshared": F.MS_SHARED | F.MS_REC,
    "unbindable": F.MS_UNBINDABLE, "runbindable": F.MS_UNBINDABLE | F.MS_REC,
}

# rootfsPropagation values applied to the container's "/" after pivot_root.
_AFTER_ROOT_CHANGE = F.MS_SHARED | F.MS_UNBINDABLE


class CgroupHierarchy(FrozenRecord):
    """One mounted cgroup hierarchy of the host, as the container should see it."""

    __slots__ = ("name", "fstype", "options", "host_path")

    def __init__(self, name: str, fstype: str, options: str, host_path: str) -> None:
        self.name = name            # directory name under /sys/fs/cgroup ("cpu,cpuacct", "unified")
        self.fstype = fstype        # "cgroup" or "cgroup2"
        self.options = options      # super options for a new mount ("cpu,cpuacct", "name=systemd")
        self.host_path = host_path  # the container's cgroup directory in this hierarchy


class HostFacts(Record):
    """What the planner needs to know about the host (gathered by linux/)."""

    __slots__ = ("rootfs", "bundle", "fifo_fd", "first_closed_fd", "source_kinds",
                 "cgroup_hierarchies", "has_kcore", "no_pivot", "passwd_home", "net_addresses",
                 "console_fd", "seccomp_fds", "idmap_userns_fds", "setgroups_denied",
                 "in_user_namespace", "container_id", "new_keyring", "selinux_enabled")

    def __init__(self, rootfs: str, bundle: str, fifo_fd: int = -1, first_closed_fd: int = 3,
                 source_kinds: Mapping[str, str] | None = None,
                 cgroup_hierarchies: Sequence[CgroupHierarchy] = (), has_kcore: bool = True,
                 no_pivot: bool = False, passwd_home: str | None = None,
                 net_addresses: Mapping[str, Sequence[PA.NetAddress]] | None = None,
                 console_fd: int = -1, seccomp_fds: tuple[int, int] = (-1, -1),
                 idmap_userns_fds: Mapping[int, int] | None = None,
                 setgroups_denied: bool = False, in_user_namespace: bool = False,
                 container_id: str = "", new_keyring: bool = False,
                 selinux_enabled: bool = False) -> None:
        self.rootfs = rootfs                      # absolute host path
        self.bundle = bundle
        self.fifo_fd = fifo_fd                    # O_PATH fd of exec.fifo (-1: run without wait)
        self.first_closed_fd = first_closed_fd    # fds >= this are closed at exec
        self.source_kinds: Mapping[str, str] = {} if source_kinds is None else source_kinds
        self.cgroup_hierarchies = cgroup_hierarchies
        self.has_kcore = has_kcore
        self.no_pivot = no_pivot
        self.passwd_home = passwd_home            # HOME of process.user.uid from the image
        # linux.netDevices: host device name -> addresses to restore after the move
        self.net_addresses: Mapping[str, Sequence[PA.NetAddress]] = \
            {} if net_addresses is None else net_addresses
        self.console_fd = console_fd              # connected console socket (-1: no terminal)
        self.seccomp_fds = seccomp_fds            # seccomp listener socket, state file
        # mount index -> userns fd
        self.idmap_userns_fds: Mapping[int, int] = {} if idmap_userns_fds is None else idmap_userns_fds
        # The user namespace has setgroups "deny" (a rootless gid map written directly).
        self.setgroups_denied = setgroups_denied
        # The runtime itself runs in a (non-initial) user namespace, e.g. rootless
        # podman's: what the kernel refuses there is refused to the container too.
        self.in_user_namespace = in_user_namespace
        self.container_id = container_id
        # A session keyring of the container's own (runc's default; not with
        # --no-new-keyring).
        self.new_keyring = new_keyring
        # SELinux is enabled on the host (runc labels mqueue mounts only then).
        self.selinux_enabled = selinux_enabled


def namespace_steps(linux: Mapping[str, Any], name_fields: bool = False) -> list[P.Step]:
    """Stage A: join, create and fork into the container's namespaces.

    Paths are joined in NAMESPACE_JOIN_ORDER: user first (it owns the
    others), mount last (every other path is still resolved in the
    runtime's mount namespace).  ``name_fields``: a failure to join names
    the config field (``linux.namespaces[i].path``).
    """
    entries = list(linux.get("namespaces") or ())
    namespaces = {ns["type"]: ns.get("path") or "" for ns in entries}
    index = {ns["type"]: i for i, ns in enumerate(entries)}
    steps: list[P.Step] = []
    for ns_type in F.NAMESPACE_JOIN_ORDER:
        path = namespaces.get(ns_type)
        if path:
            field = f"linux.namespaces[{index[ns_type]}].path: " if name_fields else ""
            steps.append(P.step(P.OP_SETNS, F.NAMESPACE_FLAGS[ns_type], strs=(path,),
                                what=f'{field}join {ns_type} namespace "{path}"'))
    if namespaces.get("user") == "":
        steps.append(P.step(P.OP_UNSHARE_USER, what="create user namespace"))
    new = 0
    for ns_type, path in namespaces.items():
        if path == "" and ns_type != "user":
            new |= F.NAMESPACE_FLAGS[ns_type]
    if new:
        names = ",".join(sorted(t for t, p in namespaces.items() if p == "" and t != "user"))
        steps.append(P.step(P.OP_UNSHARE, new, what=f"create namespaces ({names})"))
    offsets = linux.get("timeOffsets") or {}
    if namespaces.get("time") == "" and offsets:
        mono = offsets.get("monotonic") or {}
        boot = offsets.get("boottime") or {}
        steps.append(P.step(P.OP_TIMENS_OFFSETS, int(mono.get("secs", 0)),
                            int(mono.get("nanosecs", 0)), int(boot.get("secs", 0)),
                            int(boot.get("nanosecs", 0)), what="set time namespace offsets"))
    steps.append(P.step(P.OP_FORK, what="fork the container init"))
    return steps


def _has_ns(linux: Mapping[str, Any], ns_type: str, new_only: bool = False) -> bool:
    for ns in linux.get("namespaces") or ():
        if ns["type"] == ns_type:
            return not (new_only and ns.get("path"))
    return False


def _cgroup_mount_steps(m: Mapping[str, Any], facts: HostFacts, cgroupns: bool) -> list[P.Step]:
    """A `cgroup` mount: the container's own hierarchies (runc's layout)."""
    dest = clean_destination(str(m["destination"]))
    opts = parse_options(list(m.get("options") or ()))
    flags = opts.flags | F.MS_NOSUID | F.MS_NODEV | F.MS_NOEXEC
    readonly = flags & F.MS_RDONLY
    hierarchies = list(facts.cgroup_hierarchies)
    steps: list[P.Step] = []
    v2_only = len(hierarchies) == 1 and hierarchies[0].fstype == "cgroup2" and \
        hierarchies[0].name == ""
    if v2_only:
        h = hierarchies[0]
        if cgroupns:
            # With the host's /sys bound in (rootless, no network namespace)
            # the destination is the host's cgroup2 mount, and the kernel
            # refuses the same filesystem on top of it (EBUSY); as runc, the
            # container's cgroup directory is then bound instead, which shows
            # what the namespace would.
            steps.append(P.step(P.OP_MOUNT, flags,
                                P.MOUNT_F_MKDIR | P.MOUNT_F_NOSYMLINK_DST | P.MOUNT_F_OR_ELSE,
                                0o755, 0, 2, strs=("cgroup2", dest, "cgroup2", ""),
                                what=f'mount cgroup2 on "{dest}" ({F.mount_flag_names(flags)})'))
        bind = F.MS_BIND | F.MS_REC
        steps.append(P.step(P.OP_MOUNT, bind, P.MOUNT_F_BIND_SOURCE | P.MOUNT_F_MKDIR, 0o755,
                            strs=(h.host_path, dest, "", ""),
                            what=f'bind {h.host_path} on "{dest}"'))
        remount = (flags & ~F.MS_REC) | F.MS_BIND | F.MS_REMOUNT
        # In a user namespace the bound cgroup2 mount's flags are locked.
        steps.append(P.step(P.OP_MOUNT, remount, P.MOUNT_F_NO_SOURCE | P.MOUNT_F_KEEP_LOCKED, 0,
                            strs=("", dest, "", ""), what=f'remount "{dest}"'))
        return steps
    tmpfs_flags = (flags & ~F.MS_RDONLY)
    steps.append(P.step(P.OP_MOUNT, tmpfs_flags, P.MOUNT_F_MKDIR | P.MOUNT_F_NOSYMLINK_DST, 0o755,
                        strs=("tmpfs", dest, "tmpfs", "mode=755"),
                        what=f'mount tmpfs on "{dest}" ({F.mount_flag_names(tmpfs_flags)})'))
    for h in hierarchies:
        sub = posixpath.join(dest, h.name)
        sub_flags = flags & ~F.MS_RDONLY if h.fstype == "cgroup" and not readonly else flags
        if cgroupns:
            steps.append(P.step(P.OP_MOUNT, sub_flags, P.MOUNT_F_MKDIR | P.MOUNT_F_NOSYMLINK_DST,
                                0o755, strs=(h.fstype, sub, h.fstype, h.options),
                                what=f'mount {h.fstype} ({h.options}) on "{sub}"'))
        else:
            steps.append(P.step(P.OP_MOUNT, F.MS_BIND | F.MS_REC,
                                P.MOUNT_F_BIND_SOURCE | P.MOUNT_F_MKDIR, 0o755,
                                strs=(h.host_path, sub, "", ""), what=f'bind {h.host_path} on "{sub}"'))
            remount = sub_flags | F.MS_BIND | F.MS_REMOUNT
            steps.append(P.step(P.OP_MOUNT, remount, P.MOUNT_F_NO_SOURCE, 0,
                                strs=("", sub, "", ""), what=f'remount "{sub}"'))
        if "," in h.name:
            for alias in h.name.split(","):
                steps.append(P.step(P.OP_SYMLINK, strs=(h.name, posixpath.join(dest, alias)),
                                    what=f'symlink "{posixpath.join(dest, alias)}"'))
    if readonly:
        remount = flags | F.MS_REMOUNT
        steps.append(P.step(P.OP_MOUNT, remount, P.MOUNT_F_NO_SOURCE, 0, strs=("", dest, "", ""),
                            what=f'remount "{dest}" read-only'))
    return steps


def device_steps(linux: Mapping[str, Any], facts: HostFacts, userns: bool) -> list[P.Step]:
    """Device nodes (config + defaults) and the standard /dev links."""
    devices: list[dict[str, Any]] = [dict(d) for d in linux.get("devices") or ()]
    listed = {clean_destination(d["path"]) for d in devices}
    for path, major, minor in DEFAULT_DEVICES:
        if path not in listed:
            devices.append({"path": path, "type": "c", "major": major, "minor": minor,
                            "fileMode": 0o666, "uid": 0, "gid": 0})
    steps: list[P.Step] = []
    for d in devices:
        path = clean_destination(d["path"])
        if userns:
            # mknod is not allowed in a user namespace: bind the host's node instead.
            steps.append(P.step(P.OP_MOUNT, F.MS_BIND, P.MOUNT_F_BIND_SOURCE | P.MOUNT_F_MKFILE,
                                0o755, strs=(path, path, "", ""), what=f'bind device "{path}"'))
            continue
        kind = {"c": F.S_IFCHR, "u": F.S_IFCHR, "b": F.S_IFBLK, "p": F.S_IFIFO}[d["type"]]
        mode = kind | (int(d.get("fileMode", 0o666)) & 0o7777)
        steps.append(P.step(P.OP_MKNOD, mode, int(d.get("major", 0)), int(d.get("minor", 0)),
                            int(d.get("uid", 0)), int(d.get("gid", 0)), strs=(path,),
                            what=f'mknod "{path}"'))
    links = list(_DEV_LINKS)
    if facts.has_kcore:
        links.append(("/proc/kcore", "/dev/core"))
    links.append(("pts/ptmx", "/dev/ptmx"))
    for target, link in links:
        steps.append(P.step(P.OP_SYMLINK, strs=(target, link), what=f'symlink "{link}"'))
    return steps


def rootfs_steps(config: Mapping[str, Any], facts: HostFacts) -> list[P.Step]:
    """Mount namespace setup up to and including the root change."""
    linux = config.get("linux") or {}
    userns = _has_ns(linux, "user")
    # No mknod, no fresh sysfs without an own netns: in the container's user
    # namespace, or in the one the runtime runs in.
    unprivileged_ns = userns or facts.in_user_namespace
    cgroupns = _has_ns(linux, "cgroup")
    propagation = _PROPAGATION.get(linux.get("rootfsPropagation") or "", F.MS_SLAVE | F.MS_REC)
    steps = [
        # Nothing mounted for the container may propagate back to the host.
        P.step(P.OP_MOUNT, F.MS_SLAVE | F.MS_REC if propagation & _AFTER_ROOT_CHANGE
               else propagation,
               P.MOUNT_F_TARGET_HOST | P.MOUNT_F_NO_SOURCE, 0, strs=("", "/", "", ""),
               what='set propagation of "/"'),
        P.step(P.OP_MOUNT, F.MS_BIND | F.MS_REC, P.MOUNT_F_TARGET_HOST, 0,
               strs=(facts.rootfs, facts.rootfs, "", ""), what=f'bind rootfs "{facts.rootfs}"'),
        P.step(P.OP_SET_ROOT, strs=(facts.rootfs,), what=f'open rootfs "{facts.rootfs}"'),
    ]
    ctx = MountContext(bundle=facts.bundle, source_kinds=facts.source_kinds, user_namespace=userns,
                       idmap_slots={r.index: r.slot for r in idmap_requests(config, facts.bundle)},
                       rootfs=facts.rootfs)
    setup_dev = False
    for index, entry in enumerate(config.get("mounts") or ()):
        m = entry
        dest = clean_destination(str(m["destination"]))
        if m.get("type") == "cgroup":
            steps.extend(_cgroup_mount_steps(m, facts, cgroupns))
            continue
        if m.get("type") == "sysfs" and unprivileged_ns and not _has_ns(linux, "network"):
            # The kernel refuses a fresh sysfs in a user namespace that does not
            # own the network namespace; runc then binds the host's /sys.
            m = {**entry, "type": "bind", "source": "/sys",
                 "options": ["rbind", *(o for o in entry.get("options") or () if o != "bind")]}
        if dest == "/dev":
            setup_dev = not parse_options(list(m.get("options") or ())).is_bind \
                and m.get("type") not in ("bind", "rbind")
        steps.extend(mount_steps(m, ctx, index))
    if setup_dev:
        steps.extend(device_steps(linux, facts, unprivileged_ns))
    steps += H.before_root_change_steps(config)
    if facts.no_pivot:
        steps.append(P.step(P.OP_CHROOT, what=f'move rootfs "{facts.rootfs}" to / and chroot'))
    else:
        steps.append(P.step(P.OP_PIVOT_ROOT, what=f'pivot_root "{facts.rootfs}"'))
    cwd = clean_destination(str((config.get("process") or {}).get("cwd") or "/"))
    if cwd != "/":
        # runc creates a missing cwd (inside the new root, before it may turn
        # read-only); a chdir failing after `start` could not be reported.
        steps.append(P.step(P.OP_MKDIR, 0o755, strs=(cwd,), what=f'mkdir cwd "{cwd}"'))
    if propagation & F.MS_SHARED:
        # Only after the root change: pivot_root(2) refuses a shared new root
        # (EINVAL), and "/" is then the container's root, not the host's.
        steps.append(_rootfs_propagation_step(propagation))
    return steps


def _rootfs_propagation_step(propagation: int) -> P.Step:
    return P.step(P.OP_MOUNT, propagation, P.MOUNT_F_TARGET_HOST | P.MOUNT_F_NO_SOURCE,
                  0, strs=("", "/", "", ""), what="set rootfs propagation")


def late_propagation_steps(config: Mapping[str, Any]) -> list[P.Step]:
    """An unbindable rootfsPropagation, applied once nothing needs to bind any more.

    An unbindable "/" cannot be bound as the rootfs, and "runbindable" makes
    every mount unbindable, so the bind mounts of readonlyPaths and
    maskedPaths must come first (runc applies it before them and fails).
    """
    propagation = _PROPAGATION.get((config.get("linux") or {}).get("rootfsPropagation") or "", 0)
    return [_rootfs_propagation_step(propagation)] if propagation & F.MS_UNBINDABLE else []


def environment_steps(config: Mapping[str, Any]) -> list[P.Step]:
    """Network, names, sysctls and path restrictions, after the root change."""
    linux = config.get("linux") or {}
    steps: list[P.Step] = []
    if _has_ns(linux, "network", new_only=True):
        steps.append(P.step(P.OP_LOOPBACK_UP, what='bring up interface "lo"'))
    # An empty name is left alone (runc): the new namespace keeps the inherited one.
    if config.get("hostname") and _has_ns(linux, "uts"):
        steps.append(P.step(P.OP_SETHOSTNAME, strs=(config["hostname"],),
                            what=f'sethostname "{config["hostname"]}"'))
    if config.get("domainname") and _has_ns(linux, "uts"):
        steps.append(P.step(P.OP_SETDOMAINNAME, strs=(config["domainname"],),
                            what=f'setdomainname "{config["domainname"]}"'))
    for key, value in (linux.get("sysctl") or {}).items():
        path = "sys/" + sysctl_proc_path(key)
        steps.append(P.step(P.OP_WRITE_PROC, strs=(path, str(value)),
                            what=f'write sysctl "{key}" = "{value}"'))
    for path in linux.get("readonlyPaths") or ():
        steps.append(P.step(P.OP_READONLY_PATH, strs=(path,), what=f'make "{path}" read-only'))
    for path in linux.get("maskedPaths") or ():
        steps.append(P.step(P.OP_MASK_PATH, strs=(path,), what=f'mask "{path}"'))
    root = config.get("root") or {}
    if root.get("readonly"):
        flags = F.MS_BIND | F.MS_REMOUNT | F.MS_RDONLY
        steps.append(P.step(P.OP_MOUNT, flags, P.MOUNT_F_TARGET_HOST | P.MOUNT_F_NO_SOURCE, 0,
                            strs=("", "/", "", ""), what='remount "/" read-only'))
    return steps


def capability_mask(names: Sequence[str] | None) -> int:
    """Bit mask of capability names; names this kernel table lacks are ignored (runc)."""
    mask = 0
    for name in names or ():
        bit = F.CAPABILITY_BITS.get(name)
        if bit is not None:
            mask |= 1 << bit
    return mask


def env_path(env: Sequence[str]) -> str:
    """The PATH value of an environment list, or "" when it has none."""
    for item in env:
        if item.startswith("PATH="):
            return item[5:]
    return ""


def process_steps(process: Mapping[str, Any], first_closed_fd: int,
                  home: str | None = None, setgroups_denied: bool = False) -> list[P.Step]:
    """Everything from rlimits to exec, in runc's order (seccomp: see plan/seccomp.py).

    With ``setgroups_denied`` (a user namespace whose gid map an unprivileged
    user wrote itself) the supplementary groups cannot be set: none are, and
    asking for some is refused, as runc does.
    """
    steps: list[P.Step] = []
    for rl in process.get("rlimits") or ():
        resource = F.RLIMIT_NAMES.get(rl["type"])
        if resource is None:
            raise ConfigError(f"process.rlimits: unknown rlimit type {rl['type']!r}")
        steps.append(P.step(P.OP_RLIMIT, resource, int(rl["soft"]), int(rl["hard"]),
                            what=f"setrlimit {rl['type']} ({rl['soft']}, {rl['hard']})"))
    user = process.get("user") or {}
    caps = process.get("capabilities") or {}
    bounding = capability_mask(caps.get("bounding"))
    # As runc: into the cwd while still root (a directory only root can
    # reach works), and again as the user if root was refused (a directory
    # only the user can reach, e.g. on a root-squashed volume).
    cwd = process.get("cwd") or "/"
    steps.append(P.step(P.OP_CHDIR, P.CHDIR_F_TRY, strs=(cwd,),
                        what=f'chdir to cwd ("{cwd}") set in config.json'))
    steps.append(P.step(P.OP_CAPS, bounding, 0, 0, 0, 0, P.CAPS_F_BOUNDING_ONLY,
                        what="drop capabilities from the bounding set"))
    gids = user.get("additionalGids") or ()
    if setgroups_denied:
        if gids:
            raise ConfigError("process.user.additionalGids: cannot set any additional groups "
                              "in a rootless container")
    else:
        packed = b"".join(int(g).to_bytes(4, "little") for g in gids)
        steps.append(P.step(P.OP_SETGROUPS, strs=(packed,),
                            what=f"setgroups {list(gids)}"))
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    # runc gives the process's stdio (its pty, pipes, sockets) to its user.
    stdio = P.SETID_F_STDIO | (P.SETID_F_STDIO_TTY if process.get("terminal") else 0)
    steps.append(P.step(P.OP_SETID, uid, gid, stdio, what=f"set uid {uid} gid {gid}"))
    steps.append(P.step(P.OP_CAPS, bounding, capability_mask(caps.get("effective")),
                        capability_mask(caps.get("permitted")),
                        capability_mask(caps.get("inheritable")),
                        capability_mask(caps.get("ambient")), P.CAPS_F_NO_BOUNDING,
                        what="set capabilities"))
    umask = user.get("umask")
    steps.append(P.step(P.OP_UMASK, 0o022 if umask is None else int(umask), what="umask"))
    if process.get("noNewPrivileges"):
        steps.append(P.step(P.OP_NO_NEW_PRIVS, what="set no_new_privs"))
    steps.append(P.step(P.OP_CHDIR, P.CHDIR_F_RETRY, strs=(cwd,),
                        what=f'chdir to cwd ("{cwd}") set in config.json'))
    steps.append(P.step(P.OP_CLOSE_FDS, first_closed_fd, what="close inherited fds"))
    args = list(process.get("args") or ())
    env = list(process.get("env") or ())
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home or '/'}")
    steps.append(P.step(P.OP_EXEC, len(args), len(env), strs=tuple(args + env),
                        what=f'exec "{args[0]}"'))
    return steps


def session_step() -> P.Step:
    """setsid, first thing in the container process (runc always does it)."""
    return P.step(P.OP_SETSID, what="setsid")


def console_step(process: Mapping[str, Any], socket_fd: int, dev_console: bool) -> P.Step:
    """The pty of a `terminal: true` process, its master sent on the console socket.

    dev_console: also bind the pty onto /dev/console (create does, exec does not).
    """
    size = process.get("consoleSize") or {}
    rows, cols = int(size.get("height", 0)), int(size.get("width", 0))
    return P.step(P.OP_CONSOLE, socket_fd, rows, cols, P.CONSOLE_F_MOUNT if dev_console else 0,
                  what="set up the console")


def build_create_plan(config: Mapping[str, Any], facts: HostFacts) -> list[P.Step]:
    """The whole plan of `create` (and `run`) for a validated config."""
    linux = config.get("linux") or {}
    process = config.get("process") or {}
    if not _has_ns(linux, "mount"):
        raise ConfigError("linux.namespaces: a mount namespace is required")
    # Idmapped trees are cloned first, with the host's mounts and privileges.
    steps = idmap_prepare_steps(idmap_requests(config, facts.bundle), facts.idmap_userns_fds)
    # A joined mount namespace gets the same rootfs set-up as a new one
    # (runc's semantics): its "/" turns slave, the rootfs is bound and
    # pivoted into, and the mounts stay there as long as it lives.
    steps += namespace_steps(linux, name_fields=True)
    steps.append(session_step())
    if facts.new_keyring and facts.container_id:
        steps.append(PA.keyring_step(facts.container_id, process.get("selinuxLabel") or "",
                                     user_namespace=_has_ns(linux, "user")))
    if process.get("oomScoreAdj") is not None:
        steps.append(P.step(P.OP_OOM_SCORE_ADJ, int(process["oomScoreAdj"]),
                            what=f"set oom_score_adj {process['oomScoreAdj']}"))
    steps += rootfs_steps(config, facts)
    if process.get("terminal") and facts.console_fd >= 0:
        # After the mounts (the container's devpts) and before the root
        # may turn read-only, as runc orders it.
        steps.append(console_step(process, facts.console_fd, dev_console=True))
    steps += finalize_readonly_steps(config.get("mounts") or ())
    steps += environment_steps(config)
    steps += late_propagation_steps(config)
    args = list(process.get("args") or ())
    steps.append(P.step(P.OP_CHECK_EXEC, strs=(args[0], env_path(process.get("env") or ())),
                        what=f'exec: "{args[0]}"'))
    steps.append(P.step(P.OP_READY, what="report ready"))
    if facts.fifo_fd >= 0:
        steps += H.wait_start_steps(config, facts.fifo_fd)
    steps += H.with_start_hooks(config, process_steps(process, facts.first_closed_fd,
                                                      facts.passwd_home, facts.setgroups_denied),
                                facts.fifo_fd >= 0)
    steps = PA.finish_create_plan(steps, config, facts.net_addresses,
                                  selinux_enabled=facts.selinux_enabled)
    steps = with_bind_source_fds(steps)
    return S.with_seccomp(steps, linux.get("seccomp"), bool(process.get("noNewPrivileges")),
                          facts.seccomp_fds)


# /proc/<pid>/ns/<name> for each OCI namespace type.
NS_PROC_NAMES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
                 "user": "user", "cgroup": "cgroup", "time": "time"}


def build_exec_plan(config: Mapping[str, Any], init_pid: int, process: Mapping[str, Any],
                    first_closed_fd: int, home: str | None = None,
                    console_fd: int = -1,
                    seccomp_fds: tuple[int, int] = (-1, -1),
                    setgroups_denied: bool = False, container_id: str = "",
                    new_keyring: bool = False) -> list[P.Step]:
    """The plan of `exec`: join every namespace of the container's init, then run process.

    Namespaces are joined through the init's /proc/<pid>/ns links, in the
    same order as `create` joins namespaces given by path (user first); the
    fork that follows puts the process into the container's pid namespace.
    With new_keyring the process joins the container's session keyring
    (by name, as runc does).
    """
    linux = config.get("linux") or {}
    joined = {"namespaces": [
        {"type": ns["type"], "path": f"/proc/{init_pid}/ns/{NS_PROC_NAMES[ns['type']]}"}
        for ns in linux.get("namespaces") or ()]}
    steps = [s for s in namespace_steps(joined)]
    steps.append(session_step())
    if new_keyring and container_id:
        steps.append(PA.keyring_step(container_id, PA.exec_selinux_label(config, process),
                                     user_namespace=_has_ns(linux, "user"), set_perms=False))
    if process.get("terminal") and console_fd >= 0:
        steps.append(console_step(process, console_fd, dev_console=False))
    if process.get("oomScoreAdj") is not None:
        steps.append(P.step(P.OP_OOM_SCORE_ADJ, int(process["oomScoreAdj"]),
                            what=f"set oom_score_adj {process['oomScoreAdj']}"))
    args = list(process.get("args") or ())
    steps.append(P.step(P.OP_CHECK_EXEC, strs=(args[0], env_path(process.get("env") or ())),
                        what=f'exec: "{args[0]}"'))
    steps.append(P.step(P.OP_READY, what="report ready"))
    steps += process_steps(process, first_closed_fd, home, setgroups_denied)
    steps = PA.finish_exec_plan(steps, config, process)
    # The container's filter applies to every process of it, as with runc.
    return S.with_seccomp(steps, linux.get("seccomp"), bool(process.get("noNewPrivileges")),
                          seccomp_fds, sync=True)
