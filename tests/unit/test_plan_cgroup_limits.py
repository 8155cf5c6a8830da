"""A limit the host cannot apply is refused, never dropped (pyrunc.plan.cgroups).

Every field of ``linux.resources`` against five host layouts, as
:class:`ControllerFacts` describe them: v1 with every controller, v1 with
only the common ones, hybrid like the Debian test VMs (hugetlb only in the
cgroup2 mount), v2 with every controller, and v2 where only memory and pids
were delegated.  Each cell is "ok" or what the one-line error must say
besides the field: the missing controller, or "cgroup v2" for a setting
only cgroup v1 has.
"""

from __future__ import annotations

from typing import Any

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan import cgroups as C

V1_COMMON = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
LAYOUTS = {
    "v1": C.ControllerFacts("v1", (*V1_COMMON, "hugetlb", "net_cls", "net_prio", "rdma")),
    "v1-min": C.ControllerFacts("v1", V1_COMMON),
    "hybrid": C.ControllerFacts("hybrid", V1_COMMON, ("hugetlb",), "/sys/fs/cgroup/unified/c"),
    "v2": C.ControllerFacts("v2", (), ("cpuset", "cpu", "io", "memory", "pids", "hugetlb", "rdma", "misc"),
                            "/sys/fs/cgroup/c"),
    "v2-min": C.ControllerFacts("v2", (), ("memory", "pids"), "/sys/fs/cgroup/c"),
}
COLUMNS = tuple(LAYOUTS)

OK = "ok"
V2 = "cgroup v2"  # a v1-only setting on a v2 host
V1U = "cannot use unified on cgroup v1"
DEV = {"major": 8, "minor": 0}

# (field named in the error, resources, expected for v1, v1-min, hybrid, v2, v2-min)
TABLE: list[tuple[str, dict[str, Any], tuple[str, str, str, str, str]]] = [
    ("memory.limit", {"memory": {"limit": 1 << 26}}, (OK, OK, OK, OK, OK)),
    ("memory.reservation", {"memory": {"reservation": 1 << 25}}, (OK, OK, OK, OK, OK)),
    ("memory.swap", {"memory": {"limit": 1 << 26, "swap": 1 << 27}}, (OK, OK, OK, OK, OK)),
    ("memory.swappiness", {"memory": {"swappiness": 10}}, (OK, OK, OK, V2, V2)),
    ("memory.disableOOMKiller", {"memory": {"disableOOMKiller": True}}, (OK, OK, OK, V2, V2)),
    # Deprecated by the spec and gone from the kernel: ignored with a warning, as runc does.
    ("memory.kernel", {"memory": {"kernel": 1 << 26}}, (OK, OK, OK, OK, OK)),
    ("memory.kernelTCP", {"memory": {"kernelTCP": 1 << 26}}, (OK, OK, OK, OK, OK)),
    ("memory.useHierarchy", {"memory": {"useHierarchy": False}},
     ("always hierarchical",) * 5),  # type: ignore[list-item]
    ("memory.useHierarchy", {"memory": {"useHierarchy": True}}, (OK, OK, OK, OK, OK)),
    ("memory.checkBeforeUpdate", {"memory": {"checkBeforeUpdate": True}}, (OK, OK, OK, OK, OK)),
    ("cpu.shares", {"cpu": {"shares": 512}}, (OK, OK, OK, OK, "cpu")),
    ("cpu.quota", {"cpu": {"quota": 50000}}, (OK, OK, OK, OK, "cpu")),
    ("cpu.period", {"cpu": {"period": 50000}}, (OK, OK, OK, OK, "cpu")),
    ("cpu.burst", {"cpu": {"burst": 1000}}, (OK, OK, OK, OK, "cpu")),
    ("cpu.idle", {"cpu": {"idle": 1}}, (OK, OK, OK, OK, "cpu")),
    ("cpu.realtimeRuntime", {"cpu": {"realtimeRuntime": 1000}}, (OK, OK, OK, V2, V2)),
    ("cpu.realtimePeriod", {"cpu": {"realtimePeriod": 100000}}, (OK, OK, OK, V2, V2)),
    ("cpu.cpus", {"cpu": {"cpus": "0"}}, (OK, OK, OK, OK, "cpuset")),
    ("cpu.mems", {"cpu": {"mems": "0"}}, (OK, OK, OK, OK, "cpuset")),
    ("blockIO.weight", {"blockIO": {"weight": 100}}, (OK, OK, OK, OK, "io")),
    ("blockIO.leafWeight", {"blockIO": {"leafWeight": 100}}, (OK, OK, OK, V2, V2)),
    ("blockIO.weightDevice[0].weight", {"blockIO": {"weightDevice": [{**DEV, "weight": 100}]}},
     (OK, OK, OK, OK, "io")),
    ("blockIO.weightDevice[0].leafWeight", {"blockIO": {"weightDevice": [{**DEV, "leafWeight": 100}]}},
     (OK, OK, OK, V2, V2)),
    ("blockIO.throttleReadBpsDevice[0]", {"blockIO": {"throttleReadBpsDevice": [{**DEV, "rate": 1}]}},
     (OK, OK, OK, OK, "io")),
    ("blockIO.throttleWriteBpsDevice[0]", {"blockIO": {"throttleWriteBpsDevice": [{**DEV, "rate": 1}]}},
     (OK, OK, OK, OK, "io")),
    ("blockIO.throttleReadIOPSDevice[0]", {"blockIO": {"throttleReadIOPSDevice": [{**DEV, "rate": 1}]}},
     (OK, OK, OK, OK, "io")),
    ("blockIO.throttleWriteIOPSDevice[0]", {"blockIO": {"throttleWriteIOPSDevice": [{**DEV, "rate": 1}]}},
     (OK, OK, OK, OK, "io")),
    ("pids.limit", {"pids": {"limit": 10}}, (OK, OK, OK, OK, OK)),
    ("hugepageLimits[0]", {"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 22}]},
     (OK, "hugetlb", OK, OK, "hugetlb")),
    ("network.classID", {"network": {"classID": 5}}, (OK, "net_cls", "net_cls", V2, V2)),
    ("network.priorities", {"network": {"priorities": [{"name": "lo", "priority": 1}]}},
     (OK, "net_prio", "net_prio", V2, V2)),
    ("rdma.mlx5_0", {"rdma": {"mlx5_0": {"hcaHandles": 3}}}, (OK, "rdma", "rdma", OK, "rdma")),
    ("unified", {"unified": {"memory.high": "1000000"}}, (V1U, V1U, V1U, OK, OK)),
    ("unified", {"unified": {"cgroup.max.depth": "3"}}, (V1U, V1U, V1U, OK, OK)),
    ("unified", {"unified": {"misc.max": "res 1"}}, (V1U, V1U, V1U, OK, "misc")),
    ("unified", {"unified": {"io.max": "8:0 rbps=1"}}, (V1U, V1U, V1U, OK, "io")),
]

CASES = [
    pytest.param(field, resources, layout, expected[i], id=f"{field}={resources}-{layout}")
    for field, resources, expected in TABLE
    for i, layout in enumerate(COLUMNS)
]


@pytest.mark.parametrize(("field", "resources", "layout", "expected"), CASES)
def test_limit_on_layout(field: str, resources: dict[str, Any], layout: str, expected: str) -> None:
    facts = LAYOUTS[layout]
    if expected == OK:
        plan = C.plan_for_host(resources, facts)
        for w in plan.writes:
            assert facts.has(w.controller) or w.controller == "cgroup"
        return
    with pytest.raises(ConfigError) as e:
        C.plan_for_host(resources, facts)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("linux.resources." + field.split(".")[0] if expected == V1U
                          else "linux.resources." + field), msg
    assert expected in msg, msg
    if expected not in (V2, V1U, "always hierarchical"):
        assert f"the {expected} controller" in msg or f"of the {expected} controller" in msg, msg


def test_table_covers_every_resource_field() -> None:
    """Every property the spec's schema gives linux.resources (and its objects) has a row."""
    import json
    from pathlib import Path

    schema = json.loads((Path(__file__).parents[2] / "schemas" / "config-linux.json").read_text())
    resources = schema["properties"]["resources"]["properties"]
    assert {"memory", "cpu", "blockIO", "pids", "hugepageLimits", "network", "rdma", "unified"} <= set(resources)
    covered = {field.split("[")[0] for field, _, _ in TABLE}
    covered |= {f.split(".")[0] for f in covered}
    for key, prop in resources.items():
        if key == "devices":
            continue  # test_devices_need_the_devices_controller
        sub = prop.get("properties") or {}
        if sub:
            for name in sub:
                assert f"{key}.{name}" in covered, f"{key}.{name} has no row"
        else:
            assert key in covered, f"{key} has no row"


def test_kernel_memory_is_a_warning() -> None:
    plan = C.plan_for_host({"memory": {"kernel": 1 << 26}}, LAYOUTS["v1"])
    assert plan.writes == [] and plan.warnings


@pytest.mark.parametrize("layout", COLUMNS)
def test_devices_need_the_devices_controller(layout: str) -> None:
    rules = C.cgroup_device_rules([{"allow": False, "access": "rwm"}])
    facts = LAYOUTS[layout]
    C.plan_for_host({}, facts, rules)  # every layout here has them (v2: an eBPF program)
    if facts.mode == "v2":
        return
    without = C.ControllerFacts(facts.mode, facts.v1 - {"devices"}, facts.unified, facts.unified_dir)
    with pytest.raises(ConfigError, match=r"^linux\.resources\.devices: .*devices controller"):
        C.plan_for_host({}, without, rules)


def test_first_missing_controller_wins_and_names_the_directory() -> None:
    with pytest.raises(ConfigError) as e:
        C.plan_for_host({"pids": {"limit": 3}, "cpu": {"shares": 2}}, LAYOUTS["v2-min"])
    assert str(e.value) == ("linux.resources.cpu.shares: cannot set cpu.weight: the cpu controller is "
                            "not available (not in /sys/fs/cgroup/c/cgroup.controllers)")
