"""pyrunc.plan.cgroups: resources -> v1/v2 writes, checked against golden files.

Each tests/unit/golden/cgroups/*.json holds {"resources": ...} and the expected
"v1"/"v2" results: a list of [controller, file, value] writes (with flags),
plus "warnings", or {"error": message}.  Regenerate with
PYRUNC_UPDATE_GOLDEN=1 and review the diff by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan import cgroups as C

GOLDEN = Path(__file__).parent / "golden" / "cgroups"
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))


def _render(resources: dict[str, Any], version: str) -> dict[str, Any]:
    devices = None
    if "devices" in resources:
        devices = C.cgroup_device_rules(resources["devices"])
    try:
        plan = C.plan_resources(resources, version, devices)
    except ConfigError as e:
        return {"error": str(e)}
    writes = []
    for w in plan.writes:
        row: list[Any] = [w.controller, w.filename, w.value]
        flags: dict[str, Any] = {}
        if w.optional:
            flags["optional"] = True
        if w.fallback:
            flags["fallback"] = list(w.fallback)
        if w.retry_after_next:
            flags["retry_after_next"] = True
        if flags:
            row.append(flags)
        writes.append(row)
    out: dict[str, Any] = {"writes": writes, "warnings": plan.warnings}
    if plan.memory_check_limit is not None:
        out["memory_check_limit"] = plan.memory_check_limit
    if plan.devices is not None and version == C.V2:
        out["device_rules"] = [r.v1_line() + (" allow" if r.allow else " deny") for r in plan.devices]
    return out


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    path = GOLDEN / f"{name}.json"
    data = json.loads(path.read_text())
    got = {v: _render(data["resources"], v) for v in (C.V1, C.V2)}
    if os.environ.get("PYRUNC_UPDATE_GOLDEN"):
        data.update(got)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert got[C.V1] == data[C.V1]
    assert got[C.V2] == data[C.V2]


@pytest.mark.parametrize(("shares", "weight"), [
    (0, 0), (1, 1), (2, 1), (3, 2), (512, 59), (1024, 100), (2048, 174),
    (262143, 10000), (262144, 10000), (500000, 10000),
])
def test_cpu_weight(shares: int, weight: int) -> None:
    assert C.cpu_shares_to_weight(shares) == weight


def test_cpu_weight_linear_legacy() -> None:
    assert C.cpu_shares_to_weight_linear(1024) == 39
    assert C.cpu_shares_to_weight_linear(2) == 1
    assert C.cpu_shares_to_weight_linear(262144) == 10000


@pytest.mark.parametrize(("blkio", "io"), [(0, 0), (10, 1), (500, 4950), (1000, 10000)])
def test_io_weight(blkio: int, io: int) -> None:
    assert C.blkio_weight_to_io_weight(blkio) == io


@pytest.mark.parametrize(("swap", "memory", "expected"), [
    (0, -1, -1), (-1, 100, -1), (0, 100, 0), (500, -1, 500), (300, 100, 200), (100, 100, 0),
])
def test_swap_conversion(swap: int, memory: int, expected: int) -> None:
    assert C.memory_swap_to_v2(swap, memory) == expected


@pytest.mark.parametrize(("swap", "memory", "message"), [
    (100, 0, "without memory limit"), (100, -5, "invalid memory value"), (50, 100, "should be >="),
])
def test_swap_conversion_errors(swap: int, memory: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        C.memory_swap_to_v2(swap, memory)


def test_cpu_max() -> None:
    assert C.cpu_max(0, 0) == ""
    assert C.cpu_max(-1, 0) == ""
    assert C.cpu_max(0, 5000) == "max 5000"
    assert C.cpu_max(20000, 0) == "20000 100000"
    assert C.cpu_max(20000, 50000) == "20000 50000"


def test_pids_value() -> None:
    assert C.pids_value(0) == "0"
    assert C.pids_value(-1) == "max"
    assert C.pids_value(-7) == "max"
    assert C.pids_value(42) == "42"


def test_default_devices_match_runc() -> None:
    lines = [d.rule.v1_line() for d in C.default_allowed_devices()]
    assert lines == [
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
        "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
    ]
    assert all(d.rule.allow for d in C.default_allowed_devices())


def test_device_rules_user_first_and_dedup_by_linux_devices() -> None:
    rules = C.cgroup_device_rules(
        [{"allow": False, "access": "rwm"}],
        [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}],
    )
    assert rules[0] == C.DeviceRule("a", -1, -1, "rwm", False)
    lines = [r.v1_line() for r in rules]
    assert "c 1:3 rwm" not in lines
    assert "c 1:5 rwm" in lines


def test_device_access_ignores_other_letters_as_runc() -> None:
    rule = C.normalize_device_rule({"allow": True, "type": "c", "major": 1, "minor": 3,
                                    "access": "arwa"}, 0)
    assert rule.access == "rw"
    assert C.normalize_device_rule({"allow": True, "access": "mrwx"}, 0).access == "rwm"


@pytest.mark.parametrize(("rule", "message"), [
    ({"allow": True, "type": "x", "access": "r"}, "invalid cgroup device type"),
    ({"allow": True, "type": "c", "access": ""}, "cannot be empty"),
    ({"allow": True, "type": "c", "access": "xa"}, "invalid device access 'xa' \\(none of r, w, m\\)"),
    ({"allow": True, "type": "c", "major": "1", "access": "r"}, "invalid device number"),
])
def test_device_rule_errors(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        C.normalize_device_rule(rule, 3)


def test_device_rule_normalises_access_order() -> None:
    assert C.normalize_device_rule({"type": "c", "major": 4, "access": "mwr", "allow": True}).access == "rwm"


def test_unified_rejected_on_v1() -> None:
    with pytest.raises(ConfigError, match="cannot use unified on cgroup v1"):
        C.plan_v1({"unified": {"memory.high": "1"}})


@pytest.mark.parametrize("key", ["../x.max", "memory", ".x", "a/b.max"])
def test_unified_bad_keys(key: str) -> None:
    with pytest.raises(ConfigError, match="invalid key"):
        C.plan_v2({"unified": {key: "1"}})


def test_swappiness_range() -> None:
    with pytest.raises(ConfigError, match="valid range is 0-100"):
        C.plan_v1({"memory": {"swappiness": 101}})
    with pytest.raises(ConfigError, match="valid range is 0-100"):
        C.plan_v1({"memory": {"swappiness": (1 << 64) - 2}})


def test_swappiness_go_minus_one_is_unset() -> None:
    # Go engines write -1 as a uint64 for "unset"; runc leaves swappiness alone.
    assert not [w for w in C.plan_v1({"memory": {"swappiness": (1 << 64) - 1}}).writes
                if "swappiness" in w.filename]


def test_resources_for_filters_by_controller() -> None:
    res = {"memory": {"limit": 1}, "hugepageLimits": [], "pids": {"limit": 1}}
    assert C.resources_for(res, {"hugetlb"}) == {"hugepageLimits": []}


def test_empty_resources_write_nothing() -> None:
    assert C.plan_v1({}).writes == []
    assert C.plan_v2({}).writes == []
