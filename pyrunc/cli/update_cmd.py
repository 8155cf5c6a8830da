"""pyrunc update: change a container's resource limits (flags or a LinuxResources JSON)."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from pyrunc.cli.args import int_value, opt
from pyrunc.cli.common import one_id
from pyrunc.errors import PyruncError

SYNOPSIS = "[command options] <container-id>"
OPTIONS = [
    opt("resources", "--resources", "-r", value=True, default="",
        help="path to the file containing the resources to update or '-' to read from the standard input"),
    opt("blkio_weight", "--blkio-weight", value=True, help="Specifies per cgroup weight, range is from 10 to 1000"),
    opt("cpu_period", "--cpu-period", value=True,
        help="CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
    opt("cpu_quota", "--cpu-quota", value=True, help="CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    opt("cpu_burst", "--cpu-burst", value=True,
        help="CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period"),
    opt("cpu_share", "--cpu-share", value=True, help="CPU shares (relative weight vs. other containers)"),
    opt("cpu_rt_period", "--cpu-rt-period", value=True,
        help="CPU realtime period to be used for hardcapping (in usecs). 0 to use system default"),
    opt("cpu_rt_runtime", "--cpu-rt-runtime", value=True,
        help="CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
    opt("cpuset_cpus", "--cpuset-cpus", value=True, help="CPU(s) to use"),
    opt("cpuset_mems", "--cpuset-mems", value=True, help="Memory node(s) to use"),
    opt("kernel_memory", "--kernel-memory", value=True, help="(obsoleted; do not use)"),
    opt("kernel_memory_tcp", "--kernel-memory-tcp", value=True, help="(obsoleted; do not use)"),
    opt("memory", "--memory", value=True, help="Memory limit (in bytes)"),
    opt("cpu_idle", "--cpu-idle", value=True, help="set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
    opt("memory_reservation", "--memory-reservation", value=True, help="Memory reservation or soft_limit (in bytes)"),
    opt("memory_swap", "--memory-swap", value=True,
        help="Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    opt("pids_limit", "--pids-limit", value=True, help="Maximum number of pids allowed in the container"),
    opt("l3_cache_schema", "--l3-cache-schema", value=True, default="", help="The string of Intel RDT/CAT L3 cache schema"),
    opt("mem_bw_schema", "--mem-bw-schema", value=True, default="", help="The string of Intel RDT/MBA memory bandwidth schema"),
]


_BINARY_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """A memory size such as "16m", "1.5GiB", "512 kb" or "1024" in bytes.

    Units are binary and case-insensitive; "b", "<u>b" and "<u>ib" spellings
    are all accepted, like the docker units package runc uses.
    """
    cut = max(text.rfind(c) for c in "0123456789. ")
    if cut < 0:
        raise ValueError(f"invalid size: '{text}'")
    number, suffix = (text[:cut], text[cut + 1:]) if text[cut] == " " else (text[:cut + 1], text[cut + 1:])
    try:
        size = float(number)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{number}": invalid syntax') from None
    if size < 0 or math.isnan(size) or math.isinf(size):
        raise ValueError(f"invalid size: '{text}'")
    unit = suffix.lower()
    if unit in ("", "b"):
        return int(size)
    if len(unit) > 3 or unit[0] not in _BINARY_UNITS or unit[1:] not in ("", "b", "ib"):
        raise ValueError(f"invalid suffix: '{unit}'")
    total = size * _BINARY_UNITS[unit[0]]
    if math.isinf(total):
        raise ValueError(f"invalid size: '{text}'")
    return int(total)


def _unsigned(name: str, text: str) -> int:
    # "¹".isdigit() is True; int() refuses more than 4300 digits.
    if not (text.isascii() and text.isdigit()) or len(text) > 40:
        raise PyruncError(f'invalid value for {name}: strconv.ParseUint: parsing "{text}": invalid syntax')
    return int(text)


def _signed(name: str, text: str) -> int:
    body = text[1:] if text[:1] in "+-" else text
    if not (body.isascii() and body.isdigit()) or len(body) > 40:
        raise PyruncError(f'invalid value for {name}: strconv.ParseInt: parsing "{text}": invalid syntax')
    return int(text)


def _memory(name: str, text: str) -> int:
    if text == "-1":
        return -1
    try:
        return ram_in_bytes(text)
    except ValueError as e:
        raise PyruncError(f"invalid value for {name}: {e}") from None


def resources_from_flags(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A LinuxResources delta from the flags that were given, plus warnings."""
    cpu: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    delta: dict[str, Any] = {}
    warnings = []
    if values["blkio_weight"] is not None:
        weight = int_value("--blkio-weight", values["blkio_weight"])
        if weight:
            delta["blockIO"] = {"weight": weight}
    if values["cpuset_cpus"]:
        cpu["cpus"] = values["cpuset_cpus"]
    if values["cpuset_mems"]:
        cpu["mems"] = values["cpuset_mems"]
    if values["cpu_idle"]:
        cpu["idle"] = _signed("cpu-idle", values["cpu_idle"])
    for flag, key in (("cpu-burst", "burst"), ("cpu-period", "period"),
                      ("cpu-rt-period", "realtimePeriod"), ("cpu-share", "shares")):
        text = values[flag.replace("-", "_")]
        if text:
            cpu[key] = _unsigned(flag, text)
    for flag, key in (("cpu-quota", "quota"), ("cpu-rt-runtime", "realtimeRuntime")):
        text = values[flag.replace("-", "_")]
        if text:
            cpu[key] = _signed(flag, text)
    for flag, key in (("memory", "limit"), ("memory-swap", "swap"), ("memory-reservation", "reservation")):
        text = values[flag.replace("-", "_")]
        if text:
            memory[key] = _memory(flag, text)
    for flag in ("kernel-memory", "kernel-memory-tcp"):
        if values[flag.replace("-", "_")]:
            warnings.append(f"Setting --{flag} is ignored and will be removed")
    if values["pids_limit"] is not None:
        delta["pids"] = {"limit": int_value("--pids-limit", values["pids_limit"])}
    if cpu:
        delta["cpu"] = cpu
    if memory:
        delta["memory"] = memory
    return delta, warnings


def _read_resources(source: str) -> Any:
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source) as f:
                text = f.read()
    except OSError as e:
        raise PyruncError(f"open {source}: {e.strerror.lower() if e.strerror else e}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        where = "stdin" if source == "-" else source
        raise PyruncError(f"invalid resources JSON in {where}: {e}") from None


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Update the resources of args[0]."""
    from pyrunc import runtime_resources
    from pyrunc.cli.logmsg import log

    container_id = one_id(args, "update")
    if values["resources"]:
        # As in runc, the other resource flags are ignored with -r.
        delta, warnings = _read_resources(values["resources"]), []
        if not isinstance(delta, dict):
            raise PyruncError("invalid resources JSON: expected an object")
    else:
        delta, warnings = resources_from_flags(values)
    for message in warnings:
        log(ctx, "warning", message)
    for message in runtime_resources.update(ctx.store(), container_id, delta,
                                            values["l3_cache_schema"], values["mem_bw_schema"]):
        log(ctx, "warning", message)
    return 0
