"""Rules on config.json that a JSON Schema cannot express.

These run after :func:`pyrunc.spec.validate.validate_config`, so they rely on the
document having the schema's shape.  They are pure: nothing here looks at the
host, and the one host-dependent question (is a namespace path the host's own
network namespace?) is asked through a callback the caller may supply.
Each failure is a ConfigError whose single line starts with the offending field.
"""

from __future__ import annotations

import posixpath

from pyrunc.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import TypeAlias

    HostNetnsCheck: TypeAlias = Callable[[str], bool]
    from typing import Any

# Indexed by capability number (linux/capability.h), up to CAP_CHECKPOINT_RESTORE.
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAPABILITY_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(CAPABILITIES)}

# Resource numbers from asm-generic/resource.h (x86, arm, riscv... share them).
RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

# (uid_t)-1 means "leave unchanged" to setresuid(2), so it can never be a real id.
MAX_ID = 2**32 - 2

# runc's ID rule, the regexp [\w+-.]+ with ASCII \w.  Inside the class "+-." is
# a range (+ , - .), so a comma is accepted too, exactly as in runc.
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+,-.")

_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)



def valid_container_id(container_id: str) -> bool:
    """Return whether ``container_id`` is acceptable as a container ID (runc's rule).

    Callers report a rejection as ``invalid container ID format: <id>``.
    """
    return (bool(container_id) and _ID_CHARS.issuperset(container_id)
            and container_id not in (".", ".."))


def _fail(field: str, rule: str) -> None:
    raise ConfigError(f"{field}: {rule}")


def _namespaces(doc: dict[str, Any]) -> dict[str, str]:
    """Map namespace type -> path ("" for a new namespace), checking the list."""
    out: dict[str, str] = {}
    linux = doc.get("linux") or {}
    for i, ns in enumerate(linux.get("namespaces") or []):
        kind = ns["type"]
        path = ns.get("path") or ""
        if kind in out:
            _fail(f"linux.namespaces[{i}].type", f"duplicated namespace {kind!r}")
        if path and not posixpath.isabs(path):
            _fail(f"linux.namespaces[{i}].path", f"{path!r} is not an absolute path")
        out[kind] = path
    return out


def _check_root(doc: dict[str, Any], bundle_dir: str) -> None:
    root = doc.get("root")
    path = root.get("path") if isinstance(root, dict) else None
    if not path:
        _fail("root.path", "must be specified")
    assert isinstance(path, str)
    if posixpath.isabs(path):
        # runc takes an absolute rootfs as given; the effects layer resolves it.
        return
    # Lexical only: symlinks inside the bundle are the effects layer's business.
    base = posixpath.normpath(posixpath.join("/", bundle_dir or "."))
    joined = posixpath.normpath(posixpath.join(base, path))
    if joined != base and not joined.startswith(base.rstrip("/") + "/"):
        _fail("root.path", f"{path!r} resolves outside the bundle directory")


def _ids_mapped(ids: Iterable[int], mappings: list[dict[str, int]]) -> int | None:
    """Return the first id not covered by ``mappings``, or None."""
    for value in ids:
        if not any(
            m["containerID"] <= value < m["containerID"] + m["size"] for m in mappings
        ):
            return value
    return None


def _check_process(doc: dict[str, Any], namespaces: dict[str, str]) -> None:
    process = doc.get("process")
    if not isinstance(process, dict):
        _fail("process", "must be specified to create a container")
    assert isinstance(process, dict)
    if not process.get("args"):
        _fail("process.args", "must not be empty")
    cwd = process.get("cwd", "")
    if not posixpath.isabs(cwd):
        _fail("process.cwd", f"{cwd!r} is not an absolute path")

    user = process.get("user") or {}
    for key in ("uid", "gid"):
        value = user.get(key, 0)
        if not 0 <= value <= MAX_ID:
            _fail(f"process.user.{key}", f"{value} is out of range (0-{MAX_ID})")
    for i, gid in enumerate(user.get("additionalGids") or []):
        if not 0 <= gid <= MAX_ID:
            _fail(f"process.user.additionalGids[{i}]", f"{gid} is out of range (0-{MAX_ID})")
    linux = doc.get("linux") or {}
    if "user" in namespaces and not namespaces["user"]:
        # In a new user namespace only mapped ids exist; setresuid would fail with EINVAL.
        uid_maps = linux.get("uidMappings") or []
        gid_maps = linux.get("gidMappings") or []
        if uid_maps and _ids_mapped([user.get("uid", 0)], uid_maps) is not None:
            _fail("process.user.uid", f"{user.get('uid', 0)} is not mapped in linux.uidMappings")
        gids = [user.get("gid", 0), *(user.get("additionalGids") or [])]
        missing = _ids_mapped(gids, gid_maps) if gid_maps else None
        if missing is not None:
            field = "process.user.gid"
            if missing != user.get("gid", 0):
                field = "process.user.additionalGids"
            _fail(field, f"{missing} is not mapped in linux.gidMappings")

    seen: dict[str, int] = {}
    for i, rlimit in enumerate(process.get("rlimits") or []):
        kind = rlimit["type"]
        if kind not in RLIMITS:
            _fail(f"process.rlimits[{i}].type", f"unknown resource limit {kind!r}")
        if kind in seen:
            _fail(
                f"process.rlimits[{i}].type",
                f"{kind!r} is duplicated (first at process.rlimits[{seen[kind]}])",
            )
        seen[kind] = i
        if rlimit["soft"] > rlimit["hard"]:
            _fail(
                f"process.rlimits[{i}]",
                f"soft limit {rlimit['soft']} exceeds hard limit {rlimit['hard']}",
            )

    caps = process.get("capabilities") or {}
    for kind in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        for i, name in enumerate(caps.get(kind) or []):
            if name not in CAPABILITY_NUMBERS:
                _fail(f"process.capabilities.{kind}[{i}]", f"unknown capability {name!r}")


def _check_namespace_users(doc: dict[str, Any], namespaces: dict[str, str]) -> None:
    linux = doc.get("linux") or {}
    for field in ("hostname", "domainname"):
        # Like runc, a joined UTS namespace counts: CRI engines set the pod's
        # hostname in containers that join the sandbox's namespace.
        if doc.get(field) and "uts" not in namespaces:
            _fail(field, f"cannot set the {field} without a private UTS namespace")

    uid_maps = linux.get("uidMappings")
    gid_maps = linux.get("gidMappings")
    if "user" in namespaces:
        if not namespaces["user"] and not (uid_maps or gid_maps):
            _fail(
                "linux.uidMappings",
                "a new user namespace needs uid/gid mappings (or a namespace path to join)",
            )
        if not namespaces["user"] and not (uid_maps and gid_maps):
            missing = "linux.gidMappings" if uid_maps else "linux.uidMappings"
            _fail(missing, "a new user namespace needs both uidMappings and gidMappings")
    elif uid_maps or gid_maps:
        field = "linux.uidMappings" if uid_maps else "linux.gidMappings"
        _fail(field, "user namespace mappings specified, but no user namespace is configured")

    offsets = linux.get("timeOffsets")
    if offsets:
        if "time" not in namespaces:
            _fail("linux.timeOffsets", "offsets specified, but no time namespace is configured")
        if namespaces["time"]:
            _fail("linux.timeOffsets", "time offsets cannot be applied to a joined time namespace")


def sysctl_dotted(name: str) -> str:
    """A sysctl name in its dotted form; "/" separators are accepted too (sysctl(8), runc).

    In the slash form dots belong to the names ("net/ipv4/conf/eth0.100/forwarding"),
    so the two characters swap roles, as sysctl(8) does.
    """
    first = next((c for c in name if c in "./"), ".")
    if first == ".":
        return name
    return name.translate(str.maketrans("./", "/."))


def sysctl_proc_path(name: str) -> str:
    """The file of a sysctl below /proc/sys ("net/ipv4/ip_forward")."""
    return sysctl_dotted(name).translate(str.maketrans("./", "/."))


def _check_sysctls(
    doc: dict[str, Any], namespaces: dict[str, str], is_host_netns: HostNetnsCheck | None
) -> None:
    linux = doc.get("linux") or {}
    for original in linux.get("sysctl") or {}:
        field = f"linux.sysctl[{original!r}]"
        name = sysctl_dotted(original)
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if "ipc" not in namespaces:
                _fail(field, "not allowed in the host's IPC namespace")
            continue
        if name.startswith("net."):
            if "network" not in namespaces:
                _fail(field, "not allowed in the host's network namespace")
            path = namespaces["network"]
            if path and is_host_netns is not None and is_host_netns(path):
                _fail(field, f"not allowed in the host's network namespace (joined via {path})")
            continue
        if "uts" in namespaces:
            if name == "kernel.domainname":
                continue
            if name == "kernel.hostname":
                _fail(field, 'conflicts with the "hostname" field; set that instead')
        _fail(field, "is not in a separate kernel namespace")


def normalize_destination(destination: str) -> str:
    """Return a mount destination as a clean absolute path inside the container.

    Relative destinations are taken relative to "/", as runc 1.2 and later do.
    """
    clean = posixpath.normpath(posixpath.join("/", destination))
    # normpath keeps a leading "//" (POSIX allows it to be special); we do not.
    return "/" + clean.lstrip("/")


def _check_mounts(doc: dict[str, Any]) -> None:
    for i, mount in enumerate(doc.get("mounts") or []):
        dest = mount["destination"]
        if not dest:
            _fail(f"mounts[{i}].destination", "must not be empty")
        mount["destination"] = normalize_destination(dest)


def check_config(
    doc: dict[str, Any],
    bundle_dir: str,
    *,
    is_host_netns: HostNetnsCheck | None = None,
) -> None:
    """Apply the semantic rules for creating a container from ``doc``.

    ``doc`` must already satisfy the schema.  Mount destinations are normalised
    in place (relative ones resolved against "/").  ``is_host_netns``, when
    given, tells whether a namespace path is the runtime's own network
    namespace, which makes ``net.*`` sysctls unsafe to apply.
    Raises ConfigError naming the first offending field.
    """
    _check_root(doc, bundle_dir)
    namespaces = _namespaces(doc)
    _check_process(doc, namespaces)
    _check_namespace_users(doc, namespaces)
    _check_sysctls(doc, namespaces, is_host_netns)
    _check_mounts(doc)


def check_console(
    doc: dict[str, Any], console_socket: str | None, *, detach: bool = True
) -> None:
    """Check that the terminal setting and ``--console-socket`` go together.

    ``create`` always detaches; ``run`` detaches only with ``--detach``.
    """
    terminal = bool((doc.get("process") or {}).get("terminal"))
    if detach and terminal and not console_socket:
        raise ConfigError(
            "cannot allocate tty if pyrunc will detach without setting console socket"
        )
    if console_socket and (not detach or not terminal):
        raise ConfigError(
            "cannot use console socket if pyrunc will not detach or allocate tty"
        )
