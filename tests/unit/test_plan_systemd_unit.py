"""pyrunc.plan.systemd_unit: cgroupsPath parsing, slice expansion, unit properties."""

from __future__ import annotations

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan import systemd_unit as S
from pyrunc.plan.cgroups import cgroup_device_rules

INF = S.UINT64_MAX


@pytest.mark.parametrize("name, path", [
    ("system.slice", "/system.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
    ("user-1000.slice", "/user.slice/user-1000.slice"),
    ("-.slice", "/"),
])
def test_expand_slice(name: str, path: str) -> None:
    assert S.expand_slice(name) == path


@pytest.mark.parametrize("name", ["", ".slice", "a--b.slice", "-a.slice", "a-.slice", "a.scope",
                                  "system.slice/x.slice", "slice"])
def test_expand_slice_refuses(name: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid slice name: {name}$"):
        S.expand_slice(name)


def test_parse_defaults() -> None:
    t = S.parse_cgroups_path("", "abc")
    assert (t.unit, t.slice, t.cgroup, t.is_slice) == ("pyrunc-abc.scope", "system.slice",
                                                       "/system.slice/pyrunc-abc.scope", False)
    t = S.parse_cgroups_path(None, "abc", rootless=True)
    assert (t.unit, t.slice, t.cgroup, t.user) == ("pyrunc-abc.scope", "user.slice",
                                                   "/user.slice/pyrunc-abc.scope", True)


def test_parse_engine_paths() -> None:
    # docker: "system.slice:docker:<id>"; kubelet: "kubepods-burstable-pod1.slice:cri-containerd:<id>".
    t = S.parse_cgroups_path("system.slice:docker:1234", "x")
    assert (t.unit, t.cgroup) == ("docker-1234.scope", "/system.slice/docker-1234.scope")
    t = S.parse_cgroups_path("kubepods-burstable-pod1.slice:cri-containerd:c1", "x")
    assert t.cgroup == "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-c1.scope"
    t = S.parse_cgroups_path(":libpod:c2", "x")
    assert (t.slice, t.unit) == ("system.slice", "libpod-c2.scope")
    t = S.parse_cgroups_path("-:p:n", "x")
    assert (t.slice, t.cgroup) == ("-.slice", "/p-n.scope")


def test_parse_slice_unit() -> None:
    t = S.parse_cgroups_path("system.slice:ignored:system-mine.slice", "x")
    assert (t.unit, t.is_slice, t.cgroup) == ("system-mine.slice", True, "/system.slice/system-mine.slice")


@pytest.mark.parametrize("path", ["/k8s.io/abc", "a:b", "a:b:c:d", "system.slice"])
def test_parse_refuses_non_systemd_path(path: str) -> None:
    with pytest.raises(ConfigError) as e:
        S.parse_cgroups_path(path, "x")
    assert str(e.value) == ('linux.cgroupsPath: expected cgroupsPath to be of format "slice:prefix:name" '
                            f'for systemd cgroups, got "{path}" instead')


@pytest.mark.parametrize("path, message", [
    ("system.slice:p:", "no unit name"),
    ("system.slice:p:a/b", "invalid systemd unit name"),
    ("bad:p:n", "invalid slice name: bad"),
    ("a/b.slice:p:n", "invalid slice name"),
])
def test_parse_refuses_bad_parts(path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        S.parse_cgroups_path(path, "x")


def test_range_to_bits() -> None:
    assert S.range_to_bits("0", "f") == b"\x01"
    assert S.range_to_bits("0-3,8", "f") == b"\x0f\x01"
    assert S.range_to_bits("9", "f") == b"\x00\x02"
    for bad in ("", "a", "3-1", "-1"):
        with pytest.raises(ConfigError, match="^f: "):
            S.range_to_bits(bad, "f")


def test_cpu_quota_properties() -> None:
    assert S.cpu_quota_properties(50000, 100000, 250) == [
        ("CPUQuotaPeriodUSec", ("t", 100000)), ("CPUQuotaPerSecUSec", ("t", 500000))]
    # 1.5 % of a CPU is rounded up to whole percent, as systemd keeps it.
    assert S.cpu_quota_properties(1500, 0, 250) == [("CPUQuotaPerSecUSec", ("t", 20000))]
    assert S.cpu_quota_properties(-1, 50000, 241) == [("CPUQuotaPerSecUSec", ("t", INF))]
    assert S.cpu_quota_properties(0, 0, 250) == []


def _props(resources: dict, version: str = "v2", sd: int = 252) -> dict:
    props, _ = S.resource_properties(resources, version, sd)
    return dict(props)


def test_resource_properties_v2() -> None:
    p = _props({"memory": {"limit": 1 << 20, "reservation": 4096, "swap": 2 << 20},
                "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "cpus": "0-1", "mems": "0"},
                "pids": {"limit": 10}})
    assert p == {"MemoryMax": ("t", 1 << 20), "MemoryLow": ("t", 4096), "MemorySwapMax": ("t", 1 << 20),
                 "CPUWeight": ("t", 100), "CPUQuotaPeriodUSec": ("t", 100000),
                 "CPUQuotaPerSecUSec": ("t", 200000), "TasksMax": ("t", 10),
                 "AllowedCPUs": ("ay", b"\x03"), "AllowedMemoryNodes": ("ay", b"\x01")}


def test_resource_properties_limits_and_versions() -> None:
    assert _props({"memory": {"limit": -1}, "pids": {"limit": -1}}) == {
        "MemoryMax": ("t", INF), "MemorySwapMax": ("t", INF), "TasksMax": ("t", INF)}
    # pids.limit 0 is a real limit on the files, but runc leaves TasksMax alone.
    assert _props({"pids": {"limit": 0}}) == {}
    # systemd < 244 has no AllowedCPUs: the cpuset files still get the value.
    assert _props({"cpu": {"cpus": "0"}}, sd=243) == {}
    assert _props({"memory": {"limit": 4096}, "cpu": {"shares": 512}, "blockIO": {"weight": 300}}, "v1") == {
        "MemoryLimit": ("t", 4096), "CPUShares": ("t", 512), "BlockIOWeight": ("t", 300)}


def test_resource_properties_unified() -> None:
    p = _props({"unified": {"memory.high": "max", "memory.min": "100", "cpu.max": "max 50000",
                            "cpu.weight": "7", "pids.max": "20", "io.weight": "50"}})
    assert p == {"MemoryHigh": ("t", INF), "MemoryMin": ("t", 100), "CPUQuotaPeriodUSec": ("t", 50000),
                 "CPUQuotaPerSecUSec": ("t", INF), "CPUWeight": ("t", 7), "TasksMax": ("t", 20)}
    with pytest.raises(ConfigError, match=r"^linux.resources.unified.memory.max: invalid value 'lots'$"):
        _props({"unified": {"memory.max": "lots"}})


def test_swap_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="swap limit without memory limit"):
        _props({"memory": {"swap": 100}})


def test_device_properties_default_allow_list() -> None:
    rules = cgroup_device_rules([{"allow": False, "access": "rwm"}])
    props, warnings = S.device_properties(rules)
    assert warnings == []
    assert props[0] == ("DevicePolicy", ("s", "strict"))
    assert props[1] == ("DeviceAllow", ("a(ss)", [
        ("char-*", "m"), ("block-*", "m"), ("/dev/char/1:3", "rwm"), ("/dev/char/1:8", "rwm"),
        ("/dev/char/1:7", "rwm"), ("/dev/char/5:0", "rwm"), ("/dev/char/1:5", "rwm"),
        ("/dev/char/1:9", "rwm"), ("char-136", "rwm"), ("/dev/char/5:2", "rwm"), ("/dev/char/10:200", "rwm")]))


def test_device_properties_allow_all_and_deny_list() -> None:
    allow_all = cgroup_device_rules([{"allow": True, "access": "rwm"}])
    assert S.device_properties(allow_all)[0] == [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
    deny_list = cgroup_device_rules([{"allow": True, "access": "rwm"},
                                     {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    props, warnings = S.device_properties(deny_list[:2])
    assert props == [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]
    assert "blacklist" in warnings[0]
    # A denied access is taken back from an earlier allow.
    rules = cgroup_device_rules([{"allow": False, "access": "rwm"},
                                 {"allow": True, "type": "c", "major": 4, "minor": 1, "access": "rwm"},
                                 {"allow": False, "type": "c", "major": 4, "minor": 1, "access": "w"},
                                 {"allow": True, "type": "c", "minor": 2, "access": "r"}])
    props, warnings = S.device_properties(rules[:4])
    assert props[1] == ("DeviceAllow", ("a(ss)", [("/dev/char/4:1", "rm")]))
    assert "'*:n'" in warnings[0]


def test_start_properties_scope() -> None:
    target = S.parse_cgroups_path("system.slice:docker:c1", "c1")
    props, _ = S.start_properties(target, "c1", 4242, {"memory": {"limit": 8192}}, "v2", 252,
                                  annotations={"org.systemd.property.CollectMode": "'inactive-or-failed'",
                                               "other": "x"})
    names = [name for name, _ in props]
    assert props[:4] == [("Description", ("s", "pyrunc container c1")), ("Slice", ("s", "system.slice")),
                         ("PIDs", ("au", [4242])), ("Delegate", ("b", True))]
    for accounting in ("MemoryAccounting", "CPUAccounting", "IOAccounting", "TasksAccounting"):
        assert (accounting, ("b", True)) in props
    assert ("DefaultDependencies", ("b", False)) in props
    assert ("MemoryMax", ("t", 8192)) in props
    assert names[-1] == "CollectMode" and props[-1][1] == ("s", "inactive-or-failed")


def test_start_properties_slice_and_v1() -> None:
    target = S.parse_cgroups_path("system.slice:p:system-x.slice", "c1")
    props, _ = S.start_properties(target, "c1", 1, {}, "v1", 252)
    names = [name for name, _ in props]
    assert ("Wants", ("as", ["system.slice"])) in props
    assert "PIDs" not in names and "Delegate" not in names and "Slice" not in names
    assert "BlockIOAccounting" in names and "IOAccounting" not in names


@pytest.mark.parametrize("text, expected", [
    ("uint64 123456789", ("t", 123456789)),
    ("'inactive-or-failed'", ("s", "inactive-or-failed")),
    ('"x\\"y"', ("s", 'x"y')),
    ("true", ("b", True)),
    ("5", ("i", 5)),
    ("1.5", ("d", 1.5)),
    ("int64 -3", ("x", -3)),
    ("['a', 'b']", ("as", ["a", "b"])),
    ("@as []", ("as", [])),
    ("[uint32 1, 2]", ("au", [1, 2])),
    ("[('/dev/null', 'rwm')]", ("a(ss)", [("/dev/null", "rwm")])),
])
def test_parse_gvariant(text: str, expected: tuple) -> None:
    assert S.parse_gvariant(text) == expected


@pytest.mark.parametrize("text", ["", "'open", "[1, 'a']", "[]", "uint32 -1", "byte 256", "1 2", "nope"])
def test_parse_gvariant_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        S.parse_gvariant(text)


def test_annotation_properties() -> None:
    props = S.annotation_properties({
        "org.systemd.property.TimeoutStopSec": "uint64 2",
        "org.systemd.property.RuntimeMaxSec": "1.5",
        "org.systemd.property.CPUQuotaPerSecUSec": "uint64 1000",
        "org.systemd.property.Delegate": "false",
        "io.kubernetes.x": "ignored",
    })
    assert props == [("CPUQuotaPerSecUSec", ("t", 1000)), ("Delegate", ("b", False)),
                     ("RuntimeMaxUSec", ("t", 1500000)), ("TimeoutStopUSec", ("t", 2000000))]


@pytest.mark.parametrize("annotations, message", [
    ({"org.systemd.property.Ab": "1"}, "annotation org.systemd.property.Ab name incorrect: too short"),
    ({"org.systemd.property.Ab1": "1"}, "contains non-alphabetic character"),
    ({"org.systemd.property.Foo": "[1,"}, r"annotation org.systemd.property.Foo=\[1, value parse error"),
    ({"org.systemd.property.TimeoutSec": "'x'"}, "value parse error: not a number"),
])
def test_annotation_properties_refused(annotations: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        S.annotation_properties(annotations)
