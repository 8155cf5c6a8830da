"""OCI ``linux.resources`` -> ordered cgroup file writes, for v1 and v2 (pure).

Nothing here touches the kernel: :func:`plan_v1` and :func:`plan_v2` turn a
resources dict into a :class:`CgroupPlan` (an ordered list of
:class:`Write`, the device rules, and warnings) that
``pyrunc.linux.cgroups`` executes.  Conversions follow runc (opencontainers
cgroups): value 0 means "unset" for most fields, -1 means "max".
"""

from __future__ import annotations

from pyrunc.errors import ConfigError
from pyrunc.plan.record import FrozenRecord, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

V1 = "v1"
V2 = "v2"

# Resource key -> the cgroup controllers that key can write to.
RESOURCE_CONTROLLERS: dict[str, tuple[str, ...]] = {
    "memory": ("memory",),
    "cpu": ("cpu", "cpuset"),
    "pids": ("pids",),
    "blockIO": ("blkio", "io"),
    "hugepageLimits": ("hugetlb",),
    "network": ("net_cls", "net_prio"),
    "rdma": ("rdma",),
    "devices": ("devices",),
}

CPU_SHARES_MIN = 2
CPU_SHARES_MAX = 262144
CPU_WEIGHT_MAX = 10000
DEFAULT_CPU_PERIOD = 100000


class Write(FrozenRecord):
    """One write of ``value`` to ``filename`` in the ``controller`` hierarchy.

    ``optional``: skip silently when the file does not exist (e.g. hugetlb
    rsvd files on old kernels).  ``fallback``: (filename, value) to write
    instead when ``filename`` does not exist (blkio/io BFQ vs CFQ files).
    ``retry_after_next``: when this write fails with EINVAL, write the next
    entry first and then retry this one (memory/memsw, period/quota pairs
    whose valid order depends on the values already set).  ``field``: the
    config field the value comes from, named when it cannot be applied.
    """

    __slots__ = ("controller", "filename", "value", "optional", "fallback", "retry_after_next", "field")

    def __init__(self, controller: str, filename: str, value: str, optional: bool = False,
                 fallback: tuple[str, str] | None = None, retry_after_next: bool = False,
                 field: str = "linux.resources") -> None:
        self.controller = controller
        self.filename = filename
        self.value = value
        self.optional = optional
        self.fallback = fallback
        self.retry_after_next = retry_after_next
        self.field = field


class DeviceRule(FrozenRecord):
    """A normalised device cgroup rule: type a/b/c, -1 for a wildcard number."""

    __slots__ = ("type", "major", "minor", "access", "allow")

    def __init__(self, type: str, major: int, minor: int, access: str, allow: bool) -> None:
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access
        self.allow = allow

    def v1_line(self) -> str:
        """The ``devices.allow``/``devices.deny`` line, e.g. ``c 1:3 rwm``."""
        major = "*" if self.major < 0 else str(self.major)
        minor = "*" if self.minor < 0 else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


class DefaultDevice(FrozenRecord):
    """A device runc always allows (and creates, when it has a path)."""

    __slots__ = ("path", "rule", "file_mode")

    def __init__(self, path: str | None, rule: DeviceRule, file_mode: int = 0o666) -> None:
        self.path = path
        self.rule = rule
        self.file_mode = file_mode


class CgroupPlan(Record):
    """What to write, in order, plus device rules and non-fatal warnings.

    ``memory_check_limit`` is the new memory limit when
    ``memory.checkBeforeUpdate`` asks to refuse a limit below current usage.
    """

    __slots__ = ("version", "writes", "devices", "warnings", "memory_check_limit")

    def __init__(self, version: str, writes: list[Write] | None = None,
                 devices: list[DeviceRule] | None = None, warnings: list[str] | None = None,
                 memory_check_limit: int | None = None) -> None:
        self.version = version
        self.writes: list[Write] = [] if writes is None else writes
        self.devices = devices
        self.warnings: list[str] = [] if warnings is None else warnings
        self.memory_check_limit = memory_check_limit

    def controllers(self) -> list[str]:
        """The controllers this plan writes to, in first-use order."""
        seen: list[str] = []
        for w in self.writes:
            if w.controller not in seen:
                seen.append(w.controller)
        return seen


# ---------------------------------------------------------------- conversions


def cpu_shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000]; 0 stays 0.

    runc >= 1.3.2 (opencontainers/cgroups) maps on a log scale through a
    quadratic so the v1 default 1024 lands on the v2 default 100, instead
    of the older linear ``1 + (shares-2)*9999/262142`` (1024 -> 39).
    """
    if shares == 0:
        return 0
    if shares <= CPU_SHARES_MIN:
        return 1
    if shares >= CPU_SHARES_MAX:
        return CPU_WEIGHT_MAX
    import math  # an extension module to load: only v2 cpu weights need it

    lg = math.log2(shares)
    exponent = (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0
    return math.ceil(10**exponent)


def cpu_shares_to_weight_linear(shares: int) -> int:
    """The pre-1.3.2 runc conversion ``1 + (shares-2)*9999/262142`` (0 -> 0)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000] linearly; 0 stays 0."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def memory_swap_to_v2(swap: int, memory: int) -> int:
    """OCI swap (memory+swap) -> memory.swap.max (swap only); 0 = unset, -1 = max.

    Raises ConfigError for combinations runc rejects.
    """
    if memory == -1 and swap == 0:
        # Unlimited memory and unset swap means "both unlimited", as on v1.
        return -1
    if swap in (-1, 0):
        return swap
    if memory == -1:
        return swap
    if memory == 0:
        raise ConfigError("linux.resources.memory.swap: unable to set swap limit without memory limit")
    if memory < 0:
        raise ConfigError(f"linux.resources.memory.limit: invalid memory value: {memory}")
    if swap < memory:
        raise ConfigError("linux.resources.memory.swap: memory+swap limit should be >= memory limit")
    return swap - memory


def cpu_max(quota: int, period: int) -> str:
    """cpu.max for quota/period (0 = unset); "" when neither is set."""
    if quota <= 0 and period == 0:
        return ""
    if period == 0:
        period = DEFAULT_CPU_PERIOD
    if quota <= 0:
        return f"max {period}"
    return f"{quota} {period}"


def _num_v2(value: int) -> str:
    """v2 numeric file value: 0 -> "" (unset), negative -> "max"."""
    if value == 0:
        return ""
    if value < 0:
        return "max"
    return str(value)


def pids_value(limit: int) -> str:
    """pids.max for an OCI pids.limit (runc 1.4 / spec 1.3: 0 is a real limit, <0 is max)."""
    return "max" if limit < 0 else str(limit)


# --------------------------------------------------------------------- devices

_WILDCARD = -1


def _char(major: int, minor: int, access: str = "rwm") -> DeviceRule:
    return DeviceRule("c", major, minor, access, True)


def default_allowed_devices() -> list[DefaultDevice]:
    """runc's AllowedDevices, in runc's order (mknod-any, std devices, pts, ptmx, tun)."""
    return [
        DefaultDevice(None, _char(_WILDCARD, _WILDCARD, "m")),
        DefaultDevice(None, DeviceRule("b", _WILDCARD, _WILDCARD, "m", True)),
        DefaultDevice("/dev/null", _char(1, 3)),
        DefaultDevice("/dev/random", _char(1, 8)),
        DefaultDevice("/dev/full", _char(1, 7)),
        DefaultDevice("/dev/tty", _char(5, 0)),
        DefaultDevice("/dev/zero", _char(1, 5)),
        DefaultDevice("/dev/urandom", _char(1, 9)),
        DefaultDevice(None, _char(136, _WILDCARD)),  # /dev/pts/*
        DefaultDevice(None, _char(5, 2)),  # /dev/ptmx
        DefaultDevice(None, _char(10, 200)),  # /dev/net/tun, kept for compatibility
    ]


def normalize_device_rule(rule: Mapping[str, Any], index: int = 0) -> DeviceRule:
    """One ``linux.resources.devices`` entry -> DeviceRule (raises ConfigError)."""
    where = f"linux.resources.devices[{index}]"
    dtype = rule.get("type") or "a"
    if dtype not in ("a", "b", "c"):
        raise ConfigError(f"{where}.type: invalid cgroup device type {dtype!r}")
    access = rule.get("access") or ""
    if not access:
        raise ConfigError(f"{where}.access: device access at {index} field cannot be empty")
    # As runc on cgroup v1: letters other than r, w, m are ignored ("rwa" is
    # "rw"); an access left with none of them is refused.
    access = "".join(ch for ch in "rwm" if ch in access)
    if not access:
        raise ConfigError(f"{where}.access: invalid device access {rule.get('access')!r} "
                          "(none of r, w, m)")
    numbers = []
    for key in ("major", "minor"):
        value = rule.get(key)
        if value is None:
            numbers.append(_WILDCARD)
        elif isinstance(value, bool) or not isinstance(value, int) or value < _WILDCARD:
            raise ConfigError(f"{where}.{key}: invalid device number {value!r}")
        else:
            numbers.append(value)
    return DeviceRule(dtype, numbers[0], numbers[1], access, bool(rule.get("allow", False)))


def normalize_device_rules(rules: Sequence[Mapping[str, Any]] | None) -> list[DeviceRule]:
    """All ``linux.resources.devices`` entries, in order."""
    return [normalize_device_rule(r, i) for i, r in enumerate(rules or ())]


def cgroup_device_rules(
    rules: Sequence[Mapping[str, Any]] | None,
    linux_devices: Iterable[Mapping[str, Any]] = (),
) -> list[DeviceRule]:
    """The rule list runc installs: the spec's rules, then the default allow-list.

    A default device whose path also appears in ``linux.devices`` is dropped
    (the spec's entry takes priority), exactly as runc does.
    """
    spec_paths = {d.get("path") for d in linux_devices}
    result = normalize_device_rules(rules)
    for dev in default_allowed_devices():
        if dev.path is not None and dev.path in spec_paths:
            continue
        result.append(dev.rule)
    return result


def device_writes_v1(rules: Sequence[DeviceRule]) -> list[Write]:
    """v1: deny everything, then each rule in order."""
    field = "linux.resources.devices"
    writes = [Write("devices", "devices.deny", "a", field=field)]
    for r in rules:
        writes.append(Write("devices", "devices.allow" if r.allow else "devices.deny", r.v1_line(),
                            field=field))
    return writes


# ---------------------------------------------------------------- helpers


def _int(section: Mapping[str, Any], key: str, where: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{key}: expected an integer, got {value!r}")
    return value


def resources_section(resources: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """linux.resources.<key> as an object ({} when absent); anything else is refused."""
    value = resources.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"linux.resources.{key}: expected an object")
    return value


def _cpuset_writes(cpu: Mapping[str, Any], w: list[Write]) -> None:
    for key in ("cpus", "mems"):
        if cpu.get(key):
            w.append(Write("cpuset", f"cpuset.{key}", str(cpu[key]), field=f"linux.resources.cpu.{key}"))


def _kernel_memory_warning(mem: Mapping[str, Any], plan: CgroupPlan) -> None:
    if mem.get("kernel") is not None or mem.get("kernelTCP") is not None:
        plan.warnings.append("Kernel memory settings are ignored and will be removed")


def _use_hierarchy(mem: Mapping[str, Any]) -> None:
    # Every kernel since 5.16 (and every v2 host) is hierarchical, without
    # a switch; asking for the opposite cannot be honoured.
    if mem.get("useHierarchy") is False:
        raise ConfigError("linux.resources.memory.useHierarchy: cannot turn off hierarchical memory "
                          "accounting: the kernel's memory controller is always hierarchical")


def _v1_only(field: str, v1_file: str) -> None:
    raise ConfigError(f"{field}: cannot be applied on cgroup v2: only cgroup v1 has {v1_file}")


def _check_before_update(mem: Mapping[str, Any], limit: int, plan: CgroupPlan) -> None:
    if mem.get("checkBeforeUpdate") and limit > 0:
        plan.memory_check_limit = limit


def _rdma_writes(resources: Mapping[str, Any]) -> list[Write]:
    writes = []
    rdma = resources_section(resources, "rdma")
    for device in sorted(rdma):
        limits = rdma[device] or {}
        parts = [device]
        handles = limits.get("hcaHandles")
        objects = limits.get("hcaObjects")
        if handles is not None:
            parts.append(f"hca_handle={handles}")
        if objects is not None:
            parts.append(f"hca_object={objects}")
        if len(parts) > 1:
            writes.append(Write("rdma", "rdma.max", " ".join(parts), field=f"linux.resources.rdma.{device}"))
    return writes


def _pids_writes(resources: Mapping[str, Any]) -> list[Write]:
    pids = resources_section(resources, "pids")
    limit = _int(pids, "limit", "linux.resources.pids")
    if limit is None:
        return []
    return [Write("pids", "pids.max", pids_value(limit), field="linux.resources.pids.limit")]


def _hugetlb_writes(resources: Mapping[str, Any], version: str) -> list[Write]:
    writes = []
    for i, entry in enumerate(resources.get("hugepageLimits") or ()):
        size = entry.get("pageSize")
        if not isinstance(size, str) or not size or "/" in size:
            raise ConfigError(f"linux.resources.hugepageLimits[{i}].pageSize: invalid page size {size!r}")
        limit = _int(entry, "limit", f"linux.resources.hugepageLimits[{i}]")
        value = str(limit if limit is not None else 0)
        field = f"linux.resources.hugepageLimits[{i}]"
        if version == V1:
            writes.append(Write("hugetlb", f"hugetlb.{size}.limit_in_bytes", value, field=field))
            writes.append(Write("hugetlb", f"hugetlb.{size}.rsvd.limit_in_bytes", value, optional=True,
                                field=field))
        else:
            value = "max" if limit is not None and limit < 0 else value
            writes.append(Write("hugetlb", f"hugetlb.{size}.max", value, field=field))
            writes.append(Write("hugetlb", f"hugetlb.{size}.rsvd.max", value, optional=True, field=field))
    return writes


def _throttles(blkio: Mapping[str, Any]) -> list[tuple[str, str, int, int, int, str]]:
    """(v1 file, v2 key, major, minor, rate, field) for every throttle entry."""
    out = []
    for key, v1file, v2key in (
        ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
        ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
        ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
        ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"),
    ):
        for i, dev in enumerate(blkio.get(key) or ()):
            where = f"linux.resources.blockIO.{key}[{i}]"
            major = _int(dev, "major", where)
            minor = _int(dev, "minor", where)
            rate = _int(dev, "rate", where)
            if major is None or minor is None:
                raise ConfigError(f"{where}: major and minor are required")
            out.append((v1file, v2key, major, minor, rate or 0, where))
    return out


# ------------------------------------------------------------------------ v1


def plan_v1(
    resources: Mapping[str, Any],
    devices: Sequence[DeviceRule] | None = None,
) -> CgroupPlan:
    """cgroup v1 writes for ``resources``, in runc's subsystem order.

    ``devices``: the full device rule list to install (see
    :func:`cgroup_device_rules`); None leaves the devices cgroup alone.
    """
    plan = CgroupPlan(V1)
    if resources.get("unified"):
        raise ConfigError("linux.resources.unified: invalid configuration: cannot use unified on cgroup v1")
    w = plan.writes
    cpu = resources_section(resources, "cpu")
    where = "linux.resources.cpu"
    _cpuset_writes(cpu, w)
    # devices
    if devices is not None:
        w.extend(device_writes_v1(devices))
    # memory
    mem = resources_section(resources, "memory")
    mwhere = "linux.resources.memory"
    limit = _int(mem, "limit", mwhere) or 0
    swap = _int(mem, "swap", mwhere) or 0
    if limit == -1 and swap == 0:
        swap = -1
    _check_before_update(mem, limit, plan)
    lim = ("memory.limit_in_bytes", str(limit), f"{mwhere}.limit")
    # Unlimited memsw is a no-op where swap accounting is off, so optional.
    memsw = ("memory.memsw.limit_in_bytes", str(swap), f"{mwhere}.swap")
    if limit != 0 and swap != 0:
        # Growing needs memsw first, shrinking memory first; the EINVAL
        # retry covers the order we cannot know without reading the file.
        first, second = (memsw, lim) if swap == -1 else (lim, memsw)
        w.append(Write("memory", first[0], first[1], retry_after_next=True, field=first[2]))
        w.append(Write("memory", second[0], second[1], field=second[2]))
    elif limit != 0:
        w.append(Write("memory", lim[0], lim[1], field=lim[2]))
    elif swap != 0:
        w.append(Write("memory", memsw[0], memsw[1], optional=swap == -1, field=memsw[2]))
    _kernel_memory_warning(mem, plan)
    _use_hierarchy(mem)
    reservation = _int(mem, "reservation", mwhere) or 0
    if reservation != 0:
        w.append(Write("memory", "memory.soft_limit_in_bytes", str(reservation), field=f"{mwhere}.reservation"))
    if mem.get("disableOOMKiller"):
        w.append(Write("memory", "memory.oom_control", "1", field=f"{mwhere}.disableOOMKiller"))
    swappiness = _int(mem, "swappiness", mwhere)
    # -1, or -1 as a uint64 (what Go engines write for "unset"): left alone, as runc.
    if swappiness is not None and swappiness not in (-1, (1 << 64) - 1):
        if not 0 <= swappiness <= 100:
            raise ConfigError(f"{mwhere}.swappiness: invalid memory swappiness value: {swappiness} "
                              "(valid range is 0-100)")
        w.append(Write("memory", "memory.swappiness", str(swappiness), field=f"{mwhere}.swappiness"))
    # cpu
    rt_period = _int(cpu, "realtimePeriod", where) or 0
    rt_runtime = _int(cpu, "realtimeRuntime", where) or 0
    if rt_period:
        w.append(Write("cpu", "cpu.rt_period_us", str(rt_period), retry_after_next=bool(rt_runtime),
                       field=f"{where}.realtimePeriod"))
    if rt_runtime:
        w.append(Write("cpu", "cpu.rt_runtime_us", str(rt_runtime), field=f"{where}.realtimeRuntime"))
    shares = _int(cpu, "shares", where) or 0
    if shares:
        w.append(Write("cpu", "cpu.shares", str(shares), field=f"{where}.shares"))
    period = _int(cpu, "period", where) or 0
    quota = _int(cpu, "quota", where) or 0
    if period:
        w.append(Write("cpu", "cpu.cfs_period_us", str(period), retry_after_next=bool(quota),
                       field=f"{where}.period"))
    if quota:
        w.append(Write("cpu", "cpu.cfs_quota_us", str(quota), field=f"{where}.quota"))
    burst = _int(cpu, "burst", where)
    if burst is not None:
        w.append(Write("cpu", "cpu.cfs_burst_us", str(burst), field=f"{where}.burst"))
    idle = _int(cpu, "idle", where)
    if idle is not None:
        w.append(Write("cpu", "cpu.idle", str(idle), field=f"{where}.idle"))
    # pids
    w.extend(_pids_writes(resources))
    # blkio
    blkio = resources_section(resources, "blockIO")
    bwhere = "linux.resources.blockIO"
    weight = _int(blkio, "weight", bwhere) or 0
    if weight:
        w.append(Write("blkio", "blkio.weight", str(weight), fallback=("blkio.bfq.weight", str(weight)),
                       field=f"{bwhere}.weight"))
    leaf = _int(blkio, "leafWeight", bwhere) or 0
    if leaf:
        w.append(Write("blkio", "blkio.leaf_weight", str(leaf), field=f"{bwhere}.leafWeight"))
    for i, dev in enumerate(blkio.get("weightDevice") or ()):
        dwhere = f"{bwhere}.weightDevice[{i}]"
        major, minor = _int(dev, "major", dwhere), _int(dev, "minor", dwhere)
        if major is None or minor is None:
            raise ConfigError(f"{dwhere}: major and minor are required")
        dw = _int(dev, "weight", dwhere) or 0
        dl = _int(dev, "leafWeight", dwhere) or 0
        if dw:
            line = f"{major}:{minor} {dw}"
            w.append(Write("blkio", "blkio.weight_device", line, fallback=("blkio.bfq.weight_device", line),
                           field=f"{dwhere}.weight"))
        if dl:
            w.append(Write("blkio", "blkio.leaf_weight_device", f"{major}:{minor} {dl}",
                           field=f"{dwhere}.leafWeight"))
    for v1file, _v2key, major, minor, rate, twhere in _throttles(blkio):
        w.append(Write("blkio", v1file, f"{major}:{minor} {rate}", field=twhere))
    # hugetlb
    w.extend(_hugetlb_writes(resources, V1))
    # net_cls / net_prio
    net = resources_section(resources, "network")
    classid = _int(net, "classID", "linux.resources.network")
    if classid is not None:
        w.append(Write("net_cls", "net_cls.classid", str(classid), field="linux.resources.network.classID"))
    for i, prio in enumerate(net.get("priorities") or ()):
        w.append(Write("net_prio", "net_prio.ifpriomap", f"{prio.get('name', '')} {prio.get('priority', 0)}",
                       field=f"linux.resources.network.priorities[{i}]"))
    # rdma
    w.extend(_rdma_writes(resources))
    plan.devices = list(devices) if devices is not None else None
    return plan


# ------------------------------------------------------------------------ v2


def _unified_controller(key: str) -> str:
    return key.split(".", 1)[0]


def plan_v2(
    resources: Mapping[str, Any],
    devices: Sequence[DeviceRule] | None = None,
) -> CgroupPlan:
    """cgroup v2 writes for ``resources``; ``unified`` entries come last.

    Device rules are only carried in ``plan.devices`` (v2 needs an eBPF
    program, installed elsewhere).  A setting only cgroup v1 has (swappiness,
    the OOM killer switch, realtime, leaf weights, net_cls/net_prio) is
    refused: nothing on v2 could apply it.
    """
    plan = CgroupPlan(V2, devices=list(devices) if devices is not None else None)
    w = plan.writes
    cpu = resources_section(resources, "cpu")
    where = "linux.resources.cpu"
    _cpuset_writes(cpu, w)
    # memory
    mem = resources_section(resources, "memory")
    mwhere = "linux.resources.memory"
    limit = _int(mem, "limit", mwhere) or 0
    swap = _int(mem, "swap", mwhere) or 0
    swap_v2 = memory_swap_to_v2(swap, limit)
    swap_str = _num_v2(swap_v2)
    if swap_str == "" and swap_v2 == 0 and swap > 0:
        swap_str = "0"  # swap == limit: no swap at all
    _check_before_update(mem, limit, plan)
    if swap_str:
        w.append(Write("memory", "memory.swap.max", swap_str, field=f"{mwhere}.swap"))
    if limit:
        w.append(Write("memory", "memory.max", _num_v2(limit), field=f"{mwhere}.limit"))
    _kernel_memory_warning(mem, plan)
    _use_hierarchy(mem)
    reservation = _int(mem, "reservation", mwhere) or 0
    if reservation:
        w.append(Write("memory", "memory.low", _num_v2(reservation), field=f"{mwhere}.reservation"))
    if mem.get("swappiness") not in (None, -1):
        _v1_only(f"{mwhere}.swappiness", "memory.swappiness")
    if mem.get("disableOOMKiller"):
        _v1_only(f"{mwhere}.disableOOMKiller", "memory.oom_control")
    # cpu
    if _int(cpu, "realtimePeriod", where):
        _v1_only(f"{where}.realtimePeriod", "cpu.rt_period_us")
    if _int(cpu, "realtimeRuntime", where):
        _v1_only(f"{where}.realtimeRuntime", "cpu.rt_runtime_us")
    idle = _int(cpu, "idle", where)
    if idle is not None:
        w.append(Write("cpu", "cpu.idle", str(idle), field=f"{where}.idle"))
    shares = _int(cpu, "shares", where) or 0
    if shares:
        w.append(Write("cpu", "cpu.weight", str(cpu_shares_to_weight(shares)), field=f"{where}.shares"))
    burst = _int(cpu, "burst", where)
    quota = _int(cpu, "quota", where) or 0
    cmax = cpu_max(quota, _int(cpu, "period", where) or 0)
    if cmax:
        w.append(Write("cpu", "cpu.max", cmax, retry_after_next=burst is not None,
                       field=f"{where}.quota" if quota else f"{where}.period"))
    if burst is not None:
        w.append(Write("cpu", "cpu.max.burst", str(burst), field=f"{where}.burst"))
    # pids
    w.extend(_pids_writes(resources))
    # io
    blkio = resources_section(resources, "blockIO")
    bwhere = "linux.resources.blockIO"
    weight = _int(blkio, "weight", bwhere) or 0
    if weight:
        # BFQ takes the blkio value itself; io.weight needs the conversion.
        w.append(Write("io", "io.bfq.weight", str(weight),
                       fallback=("io.weight", str(blkio_weight_to_io_weight(weight))), field=f"{bwhere}.weight"))
    if _int(blkio, "leafWeight", bwhere):
        _v1_only(f"{bwhere}.leafWeight", "blkio.leaf_weight")
    for i, dev in enumerate(blkio.get("weightDevice") or ()):
        dwhere = f"{bwhere}.weightDevice[{i}]"
        major, minor = _int(dev, "major", dwhere), _int(dev, "minor", dwhere)
        if major is None or minor is None:
            raise ConfigError(f"{dwhere}: major and minor are required")
        dw = _int(dev, "weight", dwhere) or 0
        if dw:
            w.append(Write("io", "io.bfq.weight", f"{major}:{minor} {dw}", field=f"{dwhere}.weight"))
        if _int(dev, "leafWeight", dwhere):
            _v1_only(f"{dwhere}.leafWeight", "blkio.leaf_weight_device")
    for _v1file, v2key, major, minor, rate, twhere in _throttles(blkio):
        w.append(Write("io", "io.max", f"{major}:{minor} {v2key}={rate}", field=twhere))
    # hugetlb
    w.extend(_hugetlb_writes(resources, V2))
    # network: net_cls and net_prio exist only in v1
    net = resources_section(resources, "network")
    if _int(net, "classID", "linux.resources.network"):
        _v1_only("linux.resources.network.classID", "net_cls.classid")
    if net.get("priorities"):
        _v1_only("linux.resources.network.priorities", "net_prio.ifpriomap")
    # rdma
    w.extend(_rdma_writes(resources))
    # unified
    unified = resources.get("unified") or {}
    if not isinstance(unified, dict):
        raise ConfigError("linux.resources.unified: expected an object")
    for key in sorted(unified):
        if not key or "/" in key or key.startswith(".") or "." not in key:
            raise ConfigError(f"linux.resources.unified: invalid key {key!r}")
        w.append(Write(_unified_controller(key), key, str(unified[key]), field=f"linux.resources.unified.{key}"))
    return plan


def plan_resources(
    resources: Mapping[str, Any],
    version: str,
    devices: Sequence[DeviceRule] | None = None,
) -> CgroupPlan:
    """Dispatch to :func:`plan_v1` or :func:`plan_v2` by ``version``."""
    if version == V1:
        return plan_v1(resources, devices)
    if version == V2:
        return plan_v2(resources, devices)
    raise ValueError(f"unknown cgroup version {version!r}")


def resources_for(resources: Mapping[str, Any], controllers: Iterable[str]) -> dict[str, Any]:
    """The subset of ``resources`` whose keys feed any of ``controllers``."""
    wanted = set(controllers)
    return {
        key: value
        for key, value in resources.items()
        if set(RESOURCE_CONTROLLERS.get(key, ())) & wanted
    }


# ------------------------------------------------------- what the host can apply


class ControllerFacts(FrozenRecord):
    """The controllers a container's cgroup can use, as found on the host.

    ``mode``: "v1", "hybrid" or "v2".  ``v1``: the controllers of the
    mounted v1 hierarchies.  ``unified``: the controllers the container's
    cgroup2 directory offers (its ``cgroup.controllers``), found in
    ``unified_dir``; empty on a v1 host.
    """

    __slots__ = ("mode", "v1", "unified", "unified_dir")

    def __init__(self, mode: str, v1: Iterable[str] = (), unified: Iterable[str] = (),
                 unified_dir: str | None = None) -> None:
        self.mode = mode
        self.v1 = frozenset(v1)
        self.unified = frozenset(unified)
        self.unified_dir = unified_dir

    def has(self, controller: str) -> bool:
        """Whether a write to ``controller`` has somewhere to go."""
        return controller in self.v1 or controller in self.unified


def _missing(controller: str, facts: ControllerFacts) -> str:
    where = f"{facts.unified_dir}/cgroup.controllers" if facts.unified_dir else "the cgroup2 mount"
    if facts.mode == "v1":
        return f"no cgroup v1 hierarchy of the {controller} controller is mounted"
    if facts.mode == "v2":
        return f"the {controller} controller is not available (not in {where})"
    return (f"no cgroup v1 hierarchy of the {controller} controller is mounted, "
            f"and it is not available in cgroup2 (not in {where})")


def check_controllers(plan: CgroupPlan, facts: ControllerFacts) -> None:
    """Refuse ``plan`` when one of its writes needs a controller the host lacks.

    A limit that was asked for is never dropped: the ConfigError names the
    config field and the missing controller.  ``cgroup.*`` files (core
    interface files of cgroup2, e.g. from ``unified``) need no controller.
    """
    for w in plan.writes:
        if w.controller == "cgroup" or facts.has(w.controller):
            continue
        raise ConfigError(f"{w.field}: cannot set {w.filename}: {_missing(w.controller, facts)}")


def plan_for_host(
    resources: Mapping[str, Any],
    facts: ControllerFacts,
    devices: Sequence[DeviceRule] | None = None,
) -> CgroupPlan:
    """The writes for ``resources`` on a host with ``facts``, or ConfigError.

    v2: :func:`plan_v2`.  v1 and hybrid: :func:`plan_v1`, except that a
    controller only the cgroup2 mount has (hugetlb on a hybrid host) gets
    the v2 writes.  Then every write must have its controller
    (:func:`check_controllers`).
    """
    if facts.mode == V2:
        plan = plan_v2(resources, devices)
    else:
        plan = plan_v1(resources, devices)
        v2_only = {w.controller for w in plan.writes if w.controller not in facts.v1} & facts.unified
        if v2_only:
            p2 = plan_v2(resources_for(resources, v2_only))
            plan.writes = [w for w in plan.writes if w.controller not in v2_only]
            plan.writes.extend(w for w in p2.writes if w.controller in v2_only)
    check_controllers(plan, facts)
    return plan
