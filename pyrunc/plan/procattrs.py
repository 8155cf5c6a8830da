"""Execution attributes of the container process, planned as pyrunc-init steps.

Covers process.scheduler, process.ioPriority, process.execCPUAffinity,
linux.personality, linux.memoryPolicy, the in-namespace half of
linux.netDevices, process.apparmorProfile, process.selinuxLabel (and the
session keyring it labels), linux.mountLabel, plus the Intel RDT fields that
pyrunc treats the way runc does on a host without resctrl.  Everything here
is pure:
host facts (is AppArmor on, which addresses a device has) come in as
arguments.  Validation messages follow runc's where runc has one.
"""

from __future__ import annotations

from pyrunc.errors import ConfigError
from pyrunc.plan import protocol as P
from pyrunc.plan.record import FrozenRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}

SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}

IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}

MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
              "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_STATIC_NODES": 1 << 15, "MPOL_F_RELATIVE_NODES": 1 << 14,
              "MPOL_F_NUMA_BALANCING": 1 << 13}
# Modes that take no node mask, and modes that need one.
_MPOL_NO_NODES = {"MPOL_DEFAULT", "MPOL_LOCAL"}
_MPOL_NEED_NODES = {"MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY",
                    "MPOL_WEIGHTED_INTERLEAVE"}

# The highest CPU or node number accepted in a list (the kernel's limit is lower).
MAX_LIST_BIT = 8191

# runc's wording for an AppArmor profile on a host without AppArmor: the
# kernel refuses the write of "exec <profile>" to /proc/self/attr/exec.
APPARMOR_UNAVAILABLE = ("unable to apply apparmor profile: apparmor failed to apply profile: "
                        "write /proc/self/attr/exec: invalid argument")



def parse_id_list(text: str, field: str) -> list[int]:
    """``"0-3, 7"`` -> [0, 1, 2, 3, 7]; the Linux list format of cpus and nodes."""
    ids: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first = int(lo, 10)
            last = int(hi, 10) if sep else first
        except ValueError:
            raise ConfigError(f"{field}: invalid list {text!r}") from None
        if last < first or last > MAX_LIST_BIT:
            raise ConfigError(f"{field}: invalid range {part!r}")
        ids.update(range(first, last + 1))
    if not ids:
        raise ConfigError(f"{field}: empty list {text!r}")
    return sorted(ids)


def bit_mask(ids: Sequence[int]) -> bytes:
    """A kernel bitmap (cpu_set_t, nodemask) as little-endian 64-bit words."""
    value = 0
    for i in ids:
        value |= 1 << i
    words = max(ids) // 64 + 1 if ids else 1
    return value.to_bytes(8 * words, "little")


def personality_step(linux: Mapping[str, Any]) -> P.Step | None:
    """linux.personality -> OP_PERSONALITY (no flags are defined by the spec yet)."""
    pers = linux.get("personality")
    if pers is None:
        return None
    domain = pers.get("domain")
    if domain not in PERSONALITY_DOMAINS:
        raise ConfigError(f"linux.personality.domain: unknown domain {domain!r}")
    if pers.get("flags"):
        raise ConfigError(f"linux.personality.flags: unsupported flags {pers['flags']!r}")
    return P.step(P.OP_PERSONALITY, PERSONALITY_DOMAINS[domain],
                  what=f"set personality {domain}")


def scheduler_step(process: Mapping[str, Any]) -> P.Step | None:
    """process.scheduler -> OP_SCHEDULER, checked with runc's rules."""
    sched = process.get("scheduler")
    if sched is None:
        return None
    policy = sched.get("policy") or ""
    if not policy:
        raise ConfigError("process.scheduler: scheduler policy is required")
    if policy not in SCHED_POLICIES:
        raise ConfigError(f"process.scheduler.policy: unknown policy {policy!r}")
    nice = int(sched.get("nice", 0))
    priority = int(sched.get("priority", 0))
    if policy in ("SCHED_OTHER", "SCHED_BATCH") and not -20 <= nice <= 19:
        raise ConfigError(f"process.scheduler.nice: invalid scheduler.nice: {nice} "
                          f"when scheduler.policy is {policy}")
    if priority and policy not in ("SCHED_FIFO", "SCHED_RR"):
        raise ConfigError("process.scheduler.priority: can only be specified for "
                          "SchedFIFO or SchedRR policy")
    timing = [int(sched.get(k, 0)) for k in ("runtime", "deadline", "period")]
    if policy != "SCHED_DEADLINE" and any(timing):
        raise ConfigError("process.scheduler: runtime/deadline/period can only be "
                          "specified for SchedDeadline policy")
    flags = 0
    for name in sched.get("flags") or ():
        if name not in SCHED_FLAGS:
            raise ConfigError(f"process.scheduler.flags: unknown flag {name!r}")
        flags |= SCHED_FLAGS[name]
    return P.step(P.OP_SCHEDULER, SCHED_POLICIES[policy] | (flags << 32), nice, priority,
                  *timing, what=f"sched_setattr {policy}")


def ioprio_step(process: Mapping[str, Any]) -> P.Step | None:
    """process.ioPriority -> OP_IOPRIO (runc: the level must be 0-7)."""
    io = process.get("ioPriority")
    if io is None:
        return None
    cls = io.get("class")
    if cls not in IOPRIO_CLASSES:
        raise ConfigError(f"process.ioPriority.class: unknown class {cls!r}")
    level = int(io.get("priority", 0))
    if not 0 <= level <= 7:
        raise ConfigError(f"process.ioPriority.priority: invalid ioPriority.Priority: {level}")
    return P.step(P.OP_IOPRIO, IOPRIO_CLASSES[cls], level,
                  what=f"ioprio_set {cls} priority {level}")


def affinity_step(text: str, field: str) -> P.Step:
    """A CPU list -> OP_CPU_AFFINITY."""
    cpus = parse_id_list(text, field)
    return P.step(P.OP_CPU_AFFINITY, strs=(bit_mask(cpus),),
                  what=f'set cpu affinity "{text}" ({field})')


def exec_affinity_steps(process: Mapping[str, Any]) -> tuple[P.Step | None, P.Step | None]:
    """process.execCPUAffinity -> (initial step, final step); either may be None."""
    aff = process.get("execCPUAffinity") or {}
    initial = aff.get("initial")
    final = aff.get("final")
    return (affinity_step(initial, "process.execCPUAffinity.initial") if initial else None,
            affinity_step(final, "process.execCPUAffinity.final") if final else None)


def mempolicy_step(linux: Mapping[str, Any]) -> P.Step | None:
    """linux.memoryPolicy -> OP_MEMPOLICY."""
    pol = linux.get("memoryPolicy")
    if pol is None:
        return None
    mode = pol.get("mode")
    if mode not in MPOL_MODES:
        raise ConfigError(f"linux.memoryPolicy.mode: unknown mode {mode!r}")
    flags = 0
    for name in pol.get("flags") or ():
        if name not in MPOL_FLAGS:
            raise ConfigError(f"linux.memoryPolicy.flags: unknown flag {name!r}")
        flags |= MPOL_FLAGS[name]
    static_relative = MPOL_FLAGS["MPOL_F_STATIC_NODES"] | MPOL_FLAGS["MPOL_F_RELATIVE_NODES"]
    if flags & static_relative == static_relative:
        raise ConfigError("linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and "
                          "MPOL_F_RELATIVE_NODES are mutually exclusive")
    nodes_text = (pol.get("nodes") or "").strip()
    if nodes_text and mode in _MPOL_NO_NODES:
        raise ConfigError(f"linux.memoryPolicy.nodes: must be empty for {mode}")
    if not nodes_text and mode in _MPOL_NEED_NODES:
        raise ConfigError(f"linux.memoryPolicy.nodes: {mode} needs at least one node")
    mask = bit_mask(parse_id_list(nodes_text, "linux.memoryPolicy.nodes")) if nodes_text else b""
    maxnode = 8 * len(mask) + 1 if mask else 0
    return P.step(P.OP_MEMPOLICY, MPOL_MODES[mode] | flags, maxnode, strs=(mask,),
                  what=f'set_mempolicy {mode} nodes "{nodes_text}"')


def process_attr_steps(process: Mapping[str, Any], linux: Mapping[str, Any]) -> list[P.Step]:
    """Steps taken while still privileged (before ids and capabilities change).

    As runc does, the scheduler is set before capabilities are dropped (a
    real-time policy needs CAP_SYS_NICE); the I/O priority and the memory
    policy go with it for the same reason.
    """
    found = [scheduler_step(process), ioprio_step(process), mempolicy_step(linux)]
    return [s for s in found if s is not None]


def check_net_devices(linux: Mapping[str, Any]) -> None:
    """linux.netDevices needs a network namespace and valid container-side names."""
    devices = linux.get("netDevices") or {}
    if not devices:
        return
    if not any(ns.get("type") == "network" for ns in linux.get("namespaces") or ()):
        raise ConfigError("linux.netDevices: a network namespace is required")
    seen: dict[str, str] = {}
    for host_name, dev in devices.items():
        new = (dev or {}).get("name") or host_name
        for label, name in (("host name", host_name), ("name", new)):
            if not name or len(name) > 15 or name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
                raise ConfigError(f"linux.netDevices[{host_name!r}]: invalid {label} {name!r}")
        if new in seen and "%d" not in new:
            raise ConfigError(f"linux.netDevices[{host_name!r}]: name {new!r} is also used "
                              f"by {seen[new]!r}")
        seen[new] = host_name


class NetAddress(FrozenRecord):
    """One permanent, global address of a device, recorded before the move."""

    __slots__ = ("family", "prefixlen", "address")

    def __init__(self, family: int, prefixlen: int, address: bytes) -> None:
        self.family = family        # AF_INET (2) or AF_INET6 (10)
        self.prefixlen = prefixlen
        self.address = address      # 4 or 16 bytes

    def encode(self) -> bytes:
        """The OP_NETDEV string form: family, prefix length, address bytes."""
        return bytes((self.family, self.prefixlen)) + self.address


def netdev_step(name: str, addresses: Sequence[NetAddress]) -> P.Step:
    """OP_NETDEV: re-add the device's addresses and bring it up, in the namespace."""
    return P.step(P.OP_NETDEV, strs=(name, *(a.encode() for a in addresses)),
                  what=f'set up network device "{name}"')


def check_security_fields(config: Mapping[str, Any], process: Mapping[str, Any], *,
                          apparmor_enabled: bool, selinux_enabled: bool,
                          resctrl_mounted: bool,
                          apparmor_profiles: frozenset[str] | None = None) -> None:
    """LSM and Intel RDT fields against what the host has.

    An AppArmor profile on a host with AppArmor must be loaded
    (apparmor_profiles: the names the host lists, None when unknown); on a
    host without AppArmor it fails as runc fails.  An SELinux label on a host
    without SELinux is runc's error; with SELinux, the kernel judges the label
    when pyrunc-init writes it.  Intel RDT is not implemented: without resctrl
    pyrunc fails where runc fails and ignores what runc ignores; with it, it
    refuses rather than silently ignoring the field.
    """
    profile = process.get("apparmorProfile") or ""
    if profile:
        if not apparmor_enabled:
            raise ConfigError(APPARMOR_UNAVAILABLE)
        check_apparmor_profile(profile, apparmor_profiles)
    label = process.get("selinuxLabel") or ""
    if label:
        if not selinux_enabled:
            raise ConfigError(SELINUX_UNAVAILABLE)
        check_selinux_label(label, "process.selinuxLabel")
    linux = config.get("linux") or {}
    if linux.get("mountLabel"):
        check_selinux_label(linux["mountLabel"], "linux.mountLabel")
    rdt = linux.get("intelRdt")
    if rdt is not None:
        clos = rdt.get("closID") or ""
        if clos in (".", "..") or "/" in clos:
            raise ConfigError(f"invalid intelRdt.ClosID {clos!r}")
        if rdt.get("l3CacheSchema"):
            raise ConfigError("intelRdt.l3CacheSchema is specified in config, but Intel "
                              "RDT/CAT is not enabled")
        if rdt.get("memBwSchema"):
            raise ConfigError("intelRdt.memBwSchema is specified in config, but Intel "
                              "RDT/MBA is not enabled")
        if not resctrl_mounted:
            raise ConfigError("intelRdt is specified in config, but Intel RDT is not "
                              "supported or enabled (no resctrl filesystem is mounted)")
        raise ConfigError("linux.intelRdt: Intel RDT is not supported by pyrunc yet")


# Profile names the kernel knows without a loaded profile of that name.
_APPARMOR_BUILTIN = frozenset({"unconfined"})


def check_apparmor_profile(profile: str, loaded: frozenset[str] | None) -> None:
    """A profile that is not among the LOADED ones (None: unknown) is an error.

    Names the list cannot show (a stack "a//&b", a namespaced ":ns:name")
    are left to the kernel, whose refusal of the write is reported the same way.
    """
    if "\0" in profile or "\n" in profile or len(profile.encode()) > 4096:
        raise ConfigError(f"process.apparmorProfile: invalid AppArmor profile name {profile!r}")
    if loaded is None or profile in _APPARMOR_BUILTIN or "//&" in profile or profile.startswith(":"):
        return
    if profile not in loaded:
        raise ConfigError(apparmor_not_loaded(profile))


def apparmor_not_loaded(profile: str) -> str:
    """The one line for a profile the kernel does not have."""
    return f'process.apparmorProfile: AppArmor profile "{profile}" is not loaded'


def parse_apparmor_profiles(text: str) -> frozenset[str]:
    """Names in securityfs's apparmor/profiles ("name (mode)" per line)."""
    names = set()
    for line in text.splitlines():
        name, sep, mode = line.rstrip().rpartition(" ")
        if sep and mode.startswith("(") and mode.endswith(")"):
            names.add(name)
    return frozenset(names)


def apparmor_step(profile: str) -> P.Step:
    """OP_APPARMOR: PROFILE takes effect at the container process's execve."""
    return P.step(P.OP_APPARMOR, strs=(profile,),
                  what=f'apply AppArmor profile "{profile}" (process.apparmorProfile)')


# runc's wording for process.selinuxLabel on a host without SELinux (its
# config validation, before anything is created).
SELINUX_UNAVAILABLE = ("selinux label is specified in config, but selinux is disabled "
                       "or not supported")


def check_selinux_label(label: str, field: str) -> None:
    """A label must be one line of text the kernel can be given; it judges the rest.

    A quote would end the ``context="..."`` mount option early, so a mount
    label may not hold one (an SELinux context never does).
    """
    if any(c in label for c in '\0\n"') or len(label.encode()) > 4096:
        raise ConfigError(f"{field}: invalid SELinux label {label!r}")


def selinux_label_step(label: str, field: str = "process.selinuxLabel") -> P.Step:
    """OP_SELINUX_LABEL: LABEL takes effect at the container process's execve."""
    return P.step(P.OP_SELINUX_LABEL, strs=(label,),
                  what=f'set SELinux label "{label}" for the process ({field})')


# runc keeps every permission the kernel gives a new session keyring and adds
# "search" for the possessor's uid, or for everyone in a user namespace (the
# container's uids are not the keyring owner's there).
KEY_PERM_KEEP = 0xFFFFFFFF
KEY_USR_SEARCH = 0x00080000
KEY_OTH_SEARCH = 0x00000008


def keyring_step(container_id: str, label: str, *, user_namespace: bool,
                 set_perms: bool = True) -> P.Step:
    """OP_KEYRING: a session keyring "_ses.<id>" of the container's own.

    ``create`` makes it (set_perms: make it searchable, as runc does); ``exec``
    joins the same name.  LABEL (process.selinuxLabel) labels the keyring.
    """
    name = f"_ses.{container_id}"
    add = (KEY_OTH_SEARCH if user_namespace else KEY_USR_SEARCH) if set_perms else 0
    what = f'join session keyring "{name}"'
    if label:
        what += f' labelled "{label}" (process.selinuxLabel)'
    return P.step(P.OP_KEYRING, KEY_PERM_KEEP, add, strs=(name, label), what=what)


# Filesystem types whose mounts runc labels with mountLabel (context=...).
_UNLABELLED_TYPES = frozenset({"", "proc", "sysfs", "mqueue", "cgroup", "cgroup2", "bind"})
# Filesystem types runc labels after mounting instead (no context= option).
_RELABELLED_TYPES = frozenset({"mqueue"})


def apply_mount_label(steps: Sequence[P.Step], label: str, *,
                      selinux_enabled: bool = False) -> list[P.Step]:
    """Give the mounts runc labels the mount label.

    Most get ``context="<label>"`` in their data: on a host without SELinux
    the kernel rejects the option (EINVAL), so the mount fails exactly as it
    does under runc.  mqueue takes no such option; runc sets the label on the
    mounted directory instead (MOUNT_F_LABEL), and only when SELinux is
    enabled (without it runc skips the step, and so does this).
    """
    if not label:
        return list(steps)
    out: list[P.Step] = []
    for s in steps:
        bind = len(s.ints) > 0 and s.ints[0] & 0x1000  # MS_BIND
        fstype = s.strs[2].decode() if s.op == P.OP_MOUNT and len(s.strs) == 4 else ""
        if fstype and not bind and fstype not in _UNLABELLED_TYPES:
            data = s.strs[3]
            extra = f'context="{label}"'.encode()
            data = data + b"," + extra if data else extra
            out.append(P.Step(s.op, s.ints, (*s.strs[:3], data), s.what, s.extra))
        elif fstype in _RELABELLED_TYPES and not bind and selinux_enabled:
            ints = list(s.ints) + [0] * (2 - len(s.ints))
            ints[1] |= P.MOUNT_F_LABEL
            out.append(P.Step(s.op, tuple(ints), (*s.strs, label.encode()),
                              f'{s.what} labelled "{label}" (linux.mountLabel)', s.extra))
        else:
            out.append(s)
    return out


# OP_SYNC value at which the parent moves linux.netDevices into the new
# network namespace (between this module and linux/netdevs.py; pyrunc-init
# only echoes it).
NETDEV_SYNC = P.SYNC_NETDEV


def netdev_steps(linux: Mapping[str, Any],
                 addresses: Mapping[str, Sequence[NetAddress]]) -> list[P.Step]:
    """The sync point for the move, then one OP_NETDEV per device (container names)."""
    devices = linux.get("netDevices") or {}
    if not devices:
        return []
    steps = [P.step(P.OP_SYNC, NETDEV_SYNC, what="move network devices into the container")]
    for host_name, dev in devices.items():
        new = (dev or {}).get("name") or host_name
        steps.append(netdev_step(new, addresses.get(host_name, ())))
    return steps


def _insert_before_last(steps: list[P.Step], op: int, extra: Sequence[P.Step]) -> list[P.Step]:
    for i in range(len(steps) - 1, -1, -1):
        if steps[i].op == op:
            return steps[:i] + list(extra) + steps[i:]
    return steps + list(extra)


def finish_create_plan(steps: Sequence[P.Step], config: Mapping[str, Any],
                       addresses: Mapping[str, Sequence[NetAddress]], *,
                       selinux_enabled: bool = False) -> list[P.Step]:
    """Add this module's steps to a create plan.

    Network devices are moved right after the fork (the namespace exists and
    nothing has been mounted yet); the process attributes go just before
    READY, so a bad value fails `create` as it does with runc, and before
    seccomp, which always comes last.
    """
    linux = config.get("linux") or {}
    process = config.get("process") or {}
    check_net_devices(linux)
    out = apply_mount_label(steps, linux.get("mountLabel") or "", selinux_enabled=selinux_enabled)
    net = netdev_steps(linux, addresses)
    if net:
        fork = next((i for i, s in enumerate(out) if s.op == P.OP_FORK), len(out) - 1)
        out = out[:fork + 1] + net + out[fork + 1:]
    attrs = process_attr_steps(process, linux)
    pers = personality_step(linux)
    if pers is not None:
        attrs.append(pers)
    if process.get("apparmorProfile"):
        attrs.append(apparmor_step(process["apparmorProfile"]))
    if process.get("selinuxLabel"):
        attrs.append(selinux_label_step(process["selinuxLabel"]))
    return _insert_before_last(out, P.OP_READY, attrs)


def finish_exec_plan(steps: Sequence[P.Step], config: Mapping[str, Any],
                     process: Mapping[str, Any]) -> list[P.Step]:
    """Add this module's steps to an exec plan.

    execCPUAffinity applies only here (not to the container's init): the
    initial mask is the first step, while pyrunc-init joins the namespaces,
    and the final one is set once everything else is done.
    """
    linux = config.get("linux") or {}
    initial, final = exec_affinity_steps(process)
    attrs = process_attr_steps(process, linux)
    pers = personality_step(linux)
    if pers is not None:
        attrs.append(pers)
    # As runc: an exec process without a profile of its own gets the container's.
    profile = (process.get("apparmorProfile")
               or (config.get("process") or {}).get("apparmorProfile"))
    if profile:
        attrs.append(apparmor_step(profile))
    label = exec_selinux_label(config, process)
    if label:
        attrs.append(selinux_label_step(label))
    if final is not None:
        attrs.append(final)
    out = _insert_before_last(list(steps), P.OP_READY, attrs)
    return [initial, *out] if initial is not None else out


def exec_selinux_label(config: Mapping[str, Any], process: Mapping[str, Any]) -> str:
    """The label of an exec process: its own (--process-label, exec -p), else the container's.

    As runc: a process without a label of its own runs with the container's.
    """
    return str(process.get("selinuxLabel")
               or (config.get("process") or {}).get("selinuxLabel") or "")
