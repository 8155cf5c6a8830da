"""Cgroup statistics in the JSON shape of runc's ``events --stats`` (types.Stats).

Go's ``omitempty`` is reproduced: zero numbers, empty lists/maps and nil
pointers are left out where runc's struct tags say so; nested structs are
always present.
"""

from __future__ import annotations

import os

from pyrunc.linux.cgroups.base import read_optional

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_UINT64 = 2**64 - 1
USER_HZ = 100
NS = 1_000_000_000


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is Go's zero value (omitempty)."""
    if value:
        d[key] = value


def _read(directory: str, name: str) -> str | None:
    return read_optional(os.path.join(directory, name))


def _uint(directory: str, name: str) -> int:
    text = _read(directory, name)
    if text is None:
        return 0
    text = text.strip()
    if text == "max":
        return MAX_UINT64
    try:
        return int(text)
    except ValueError:
        return 0


def _kv(directory: str, name: str) -> dict[str, int]:
    return parse_kv(_read(directory, name) or "")


def parse_kv(text: str) -> dict[str, int]:
    """The ``key value`` lines of a flat-keyed cgroup file (memory.events, ...)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _cpu_list(text: str | None) -> list[int]:
    out: list[int] = []
    for part in (text or "").strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        # Bounded: the kernel never lists more cpus than this, and a bogus
        # range must not eat the memory of the reader.
        if (lo + hi).isascii() and lo.isdigit() and (not hi or hi.isdigit()) \
                and len(lo) < 8 and len(hi) < 8:
            out.extend(range(int(lo), min(int(hi or lo), int(lo) + 65536) + 1))
    return out


def _psi(directory: str, name: str) -> dict[str, Any] | None:
    text = _read(directory, name)
    if text is None:
        return None
    psi: dict[str, Any] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] not in ("some", "full"):
            continue
        data: dict[str, Any] = {}
        for kv in parts[1:]:
            k, _, v = kv.partition("=")
            data[k] = int(v) if k == "total" else float(v)
        psi[parts[0]] = data
    return psi


def _empty() -> dict[str, Any]:
    return {
        "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
        "cpuset": {
            "cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
            "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
            "memory_pressure": 0, "sched_load_balance": 0, "sched_relax_domain_level": 0,
        },
        "memory": {
            "usage": {"limit": 0, "failcnt": 0},
            "swap": {"limit": 0, "failcnt": 0},
            "kernel": {"limit": 0, "failcnt": 0},
            "kernelTCP": {"limit": 0, "failcnt": 0},
            "event_count": {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0},
        },
        "pids": {},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def _mem_entry(limit: int, usage: int, peak: int, failcnt: int) -> dict[str, Any]:
    e: dict[str, Any] = {"limit": limit}
    _put(e, "usage", usage)
    _put(e, "max", peak)
    e["failcnt"] = failcnt
    return e


def _blkio_entries(directory: str, name: str) -> list[dict[str, Any]]:
    entries = []
    for line in (_read(directory, name) or "").splitlines():
        parts = line.split()
        if len(parts) < 2 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        if not (major.isdigit() and minor.isdigit()):
            continue
        e: dict[str, Any] = {}
        _put(e, "major", int(major))
        _put(e, "minor", int(minor))
        if len(parts) == 3:
            _put(e, "op", parts[1])
            value = parts[2]
        else:
            value = parts[1]
        _put(e, "value", int(value) if value.isdigit() else 0)
        entries.append(e)
    return entries


def stats_v1(paths: dict[str, str], unified: str | None = None) -> dict[str, Any]:
    """Stats from v1 hierarchies (``paths``: controller -> directory)."""
    s = _empty()
    cpu = s["cpu"]
    if "cpuacct" in paths:
        d = paths["cpuacct"]
        usage = cpu["usage"]
        _put(usage, "total", _uint(d, "cpuacct.usage"))
        _put(usage, "percpu", [int(x) for x in (_read(d, "cpuacct.usage_percpu") or "").split()])
        all_lines = (_read(d, "cpuacct.usage_all") or "").splitlines()[1:]
        _put(usage, "percpu_kernel", [int(ln.split()[2]) for ln in all_lines if len(ln.split()) == 3])
        _put(usage, "percpu_user", [int(ln.split()[1]) for ln in all_lines if len(ln.split()) == 3])
        st = _kv(d, "cpuacct.stat")
        usage["kernel"] = st.get("system", 0) * NS // USER_HZ
        usage["user"] = st.get("user", 0) * NS // USER_HZ
    if "cpu" in paths:
        st = _kv(paths["cpu"], "cpu.stat")
        thr = cpu["throttling"]
        _put(thr, "periods", st.get("nr_periods", 0))
        _put(thr, "throttledPeriods", st.get("nr_throttled", 0))
        _put(thr, "throttledTime", st.get("throttled_time", 0))
    if "cpuset" in paths:
        d = paths["cpuset"]
        cs = s["cpuset"]
        _put(cs, "cpus", _cpu_list(_read(d, "cpuset.cpus")))
        _put(cs, "mems", _cpu_list(_read(d, "cpuset.mems")))
        for key in ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate",
                    "memory_spread_page", "memory_spread_slab", "memory_pressure",
                    "sched_load_balance", "sched_relax_domain_level"):
            text = (_read(d, f"cpuset.{key}") or "0").strip()
            cs[key] = int(text) if text.lstrip("-").isdigit() else 0
    if "memory" in paths:
        d = paths["memory"]
        mem = s["memory"]
        raw = _kv(d, "memory.stat")
        _put(mem, "cache", raw.get("total_cache", raw.get("cache", 0)))
        for key, prefix in (("usage", "memory"), ("swap", "memory.memsw"),
                            ("kernel", "memory.kmem"), ("kernelTCP", "memory.kmem.tcp")):
            mem[key] = _mem_entry(_uint(d, f"{prefix}.limit_in_bytes"), _uint(d, f"{prefix}.usage_in_bytes"),
                                  _uint(d, f"{prefix}.max_usage_in_bytes"), _uint(d, f"{prefix}.failcnt"))
        _put(mem, "raw", raw)
        oom = _kv(d, "memory.oom_control")
        mem["event_count"]["oom_kill"] = oom.get("oom_kill", 0)
    if "pids" in paths:
        d = paths["pids"]
        _put(s["pids"], "current", _uint(d, "pids.current"))
        limit = _uint(d, "pids.max")
        _put(s["pids"], "limit", 0 if limit == MAX_UINT64 else limit)
    if "blkio" in paths:
        d = paths["blkio"]
        blk = s["blkio"]
        prefix = "blkio."
        if not _blkio_entries(d, "blkio.io_serviced_recursive"):
            prefix = "blkio.bfq." if os.path.exists(os.path.join(d, "blkio.bfq.io_serviced_recursive")) else ""
        if prefix:
            for key, name in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                              ("ioServicedRecursive", "io_serviced_recursive"),
                              ("ioQueueRecursive", "io_queued_recursive"),
                              ("ioServiceTimeRecursive", "io_service_time_recursive"),
                              ("ioWaitTimeRecursive", "io_wait_time_recursive"),
                              ("ioMergedRecursive", "io_merged_recursive"),
                              ("ioTimeRecursive", "time_recursive"),
                              ("sectorsRecursive", "sectors_recursive")):
                _put(blk, key, _blkio_entries(d, prefix + name))
        if not blk:
            _put(blk, "ioServiceBytesRecursive", _blkio_entries(d, "blkio.throttle.io_service_bytes_recursive"))
            _put(blk, "ioServicedRecursive", _blkio_entries(d, "blkio.throttle.io_serviced_recursive"))
    if "hugetlb" in paths:
        d = paths["hugetlb"]
        for size in _hugetlb_sizes(d, ".limit_in_bytes"):
            entry: dict[str, Any] = {}
            _put(entry, "usage", _uint(d, f"hugetlb.{size}.usage_in_bytes"))
            _put(entry, "max", _uint(d, f"hugetlb.{size}.max_usage_in_bytes"))
            entry["failcnt"] = _uint(d, f"hugetlb.{size}.failcnt")
            s["hugetlb"][size] = entry
    elif unified is not None:
        _hugetlb_v2(unified, s)
    return s


def _hugetlb_sizes(directory: str, suffix: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    sizes = set()
    for n in names:
        if n.startswith("hugetlb.") and n.endswith(suffix) and ".rsvd." not in n:
            sizes.add(n[len("hugetlb."):-len(suffix)])
    return sorted(sizes)


def _hugetlb_v2(d: str, s: dict[str, Any]) -> None:
    for size in _hugetlb_sizes(d, ".max"):
        entry: dict[str, Any] = {}
        _put(entry, "usage", _uint(d, f"hugetlb.{size}.current"))
        entry["failcnt"] = _kv(d, f"hugetlb.{size}.events").get("max", 0)
        s["hugetlb"][size] = entry


def stats_v2(d: str) -> dict[str, Any]:
    """Stats from one cgroup v2 directory."""
    s = _empty()
    st = _kv(d, "cpu.stat")
    usage = s["cpu"]["usage"]
    _put(usage, "total", st.get("usage_usec", 0) * 1000)
    usage["user"] = st.get("user_usec", 0) * 1000
    usage["kernel"] = st.get("system_usec", 0) * 1000
    thr = s["cpu"]["throttling"]
    _put(thr, "periods", st.get("nr_periods", 0))
    _put(thr, "throttledPeriods", st.get("nr_throttled", 0))
    _put(thr, "throttledTime", st.get("throttled_usec", 0) * 1000)
    psi = _psi(d, "cpu.pressure")
    if psi is not None:
        s["cpu"]["psi"] = psi
    cs = s["cpuset"]
    _put(cs, "cpus", _cpu_list(_read(d, "cpuset.cpus.effective")))
    _put(cs, "mems", _cpu_list(_read(d, "cpuset.mems.effective")))
    mem = s["memory"]
    raw = _kv(d, "memory.stat")
    _put(mem, "cache", raw.get("file", 0))
    events = _kv(d, "memory.events")
    m_usage, m_limit = _uint(d, "memory.current"), _uint(d, "memory.max")
    mem["usage"] = _mem_entry(m_limit, m_usage, _uint(d, "memory.peak"), events.get("max", 0))
    s_usage, s_limit = _uint(d, "memory.swap.current"), _uint(d, "memory.swap.max")
    # v1 reports memory+swap as "swap"; keep that meaning for consumers.
    if os.path.exists(os.path.join(d, "memory.swap.current")):
        limit = s_limit if s_limit == MAX_UINT64 else min(MAX_UINT64, s_limit + m_limit)
        mem["swap"] = _mem_entry(limit, s_usage + m_usage, 0, _kv(d, "memory.swap.events").get("max", 0))
    _put(mem, "raw", raw)
    psi = _psi(d, "memory.pressure")
    if psi is not None:
        mem["psi"] = psi
    for key in ("low", "high", "max", "oom", "oom_kill"):
        mem["event_count"][key] = events.get(key, 0)
    _put(s["pids"], "current", _uint(d, "pids.current"))
    limit = _uint(d, "pids.max")
    _put(s["pids"], "limit", 0 if limit == MAX_UINT64 else limit)
    blk = s["blkio"]
    rbytes: list[dict[str, Any]] = []
    rios: list[dict[str, Any]] = []
    for line in (_read(d, "io.stat") or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        for kv in parts[1:]:
            k, _, v = kv.partition("=")
            op = {"rbytes": "Read", "wbytes": "Write", "rios": "Read", "wios": "Write"}.get(k)
            if op is None or not v.isdigit():
                continue
            e: dict[str, Any] = {}
            _put(e, "major", int(major))
            _put(e, "minor", int(minor))
            e["op"] = op
            _put(e, "value", int(v))
            (rbytes if k.endswith("bytes") else rios).append(e)
    _put(blk, "ioServiceBytesRecursive", rbytes)
    _put(blk, "ioServicedRecursive", rios)
    psi = _psi(d, "io.pressure")
    if psi is not None:
        blk["psi"] = psi
    _hugetlb_v2(d, s)
    return s
