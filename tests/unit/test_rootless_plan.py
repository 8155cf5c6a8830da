"""Rootless decisions without the kernel: subordinate id ranges, mapping checks,
the sysfs fallback and setgroups in the plan, the --rootless flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyrunc.cli.rootless import rootless_mode
from pyrunc.errors import ConfigError, UsageError
from pyrunc.linux.userns import check_mappings, in_user_namespace, own_only, parse_subid
from pyrunc.plan import flags as F
from pyrunc.plan import protocol as P
from pyrunc.plan.builder import HostFacts, build_create_plan
from pyrunc.spec.template import default_spec

SUBUID = "# comment\nalice:100000:65536\n1001:300000:10\nbob:200000:65536\nbad:x:1\n"


def test_parse_subid_by_name_and_by_uid():
    assert parse_subid(SUBUID, "alice", 1001) == [(100000, 65536), (300000, 10)]
    assert parse_subid(SUBUID, "carol", 1003) == []


def _linux(uids, gids=None):
    return {"namespaces": [{"type": "user"}, {"type": "mount"}],
            "uidMappings": [{"containerID": c, "hostID": h, "size": s} for c, h, s in uids],
            "gidMappings": [{"containerID": c, "hostID": h, "size": s}
                            for c, h, s in (gids if gids is not None else uids)]}


def check(linux):
    check_mappings(linux, uid=1001, gid=1001, subuid=SUBUID, subgid=SUBUID, name="alice")


@pytest.mark.parametrize("uids", [
    [(0, 1001, 1)],
    [(0, 1001, 1), (1, 100000, 65536)],
    [(0, 100000, 65536), (65536, 300000, 10)],
    [(0, 1001, 1), (1, 300000, 5), (6, 300005, 5)],
])
def test_owned_mappings_pass(uids):
    check(_linux(uids))


@pytest.mark.parametrize("uids, named", [
    ([(0, 0, 1)], "0-0"),
    ([(0, 1001, 1), (1, 200000, 10)], "200000-200009"),
    ([(0, 1001, 2)], "1001-1002"),
    ([(0, 100000, 65537)], "100000-165536"),
    ([(0, 300000, 11)], "300000-300010"),
])
def test_foreign_ids_are_refused_naming_the_field(uids, named):
    with pytest.raises(ConfigError, match=f"^linux.uidMappings: host ids {named} "):
        check(_linux(uids, [(0, 1001, 1)]))


def test_gid_mappings_are_checked_against_subgid():
    with pytest.raises(ConfigError, match="^linux.gidMappings: host ids 5-5 "):
        check(_linux([(0, 1001, 1)], [(0, 1001, 1), (1, 5, 1)]))


def test_a_user_namespace_is_required():
    with pytest.raises(ConfigError, match="^rootless container requires user namespaces$"):
        check({"namespaces": [{"type": "mount"}]})


def test_a_mapping_is_required():
    with pytest.raises(ConfigError, match="^linux.uidMappings: rootless containers require"):
        check({"namespaces": [{"type": "user"}], "gidMappings": [{"containerID": 0,
                                                                 "hostID": 1001, "size": 1}]})


def test_own_only_is_the_kernels_unprivileged_case():
    assert own_only([{"containerID": 0, "hostID": 7, "size": 1}], 7)
    assert not own_only([{"containerID": 0, "hostID": 7, "size": 2}], 7)
    assert not own_only([{"containerID": 0, "hostID": 7, "size": 1}] * 2, 7)


def _rootless_plan(network: bool, setgroups_denied: bool = False, gids=()):
    cfg = default_spec(rootless=True, uid=1001, gid=1001)
    cfg["process"]["terminal"] = False
    cfg["process"]["user"]["additionalGids"] = list(gids)
    for m in cfg["mounts"]:
        if m["destination"] == "/sys":
            m.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])
    if network:
        cfg["linux"]["namespaces"].append({"type": "network"})
    return build_create_plan(json.loads(json.dumps(cfg)),
                             HostFacts(rootfs="/r", bundle="/b", fifo_fd=9,
                                       setgroups_denied=setgroups_denied))


def _sys_steps(steps):
    return [s for s in steps if s.op == P.OP_MOUNT and s.strs[1] == b"/sys"]


def test_sysfs_without_a_network_namespace_binds_the_hosts():
    first, *rest = _sys_steps(_rootless_plan(network=False))
    assert first.strs[0] == b"/sys" and first.ints[0] & (F.MS_BIND | F.MS_REC) == \
        F.MS_BIND | F.MS_REC
    assert rest and rest[0].ints[0] & F.MS_RDONLY and rest[0].ints[0] & F.MS_REMOUNT


def test_sysfs_with_a_network_namespace_is_fresh():
    (step,) = _sys_steps(_rootless_plan(network=True))
    assert step.strs[2] == b"sysfs" and not step.ints[0] & F.MS_BIND


def test_setgroups_is_skipped_where_denied():
    assert [s for s in _rootless_plan(False) if s.op == P.OP_SETGROUPS]
    assert not [s for s in _rootless_plan(False, setgroups_denied=True) if s.op == P.OP_SETGROUPS]
    with pytest.raises(ConfigError, match="^process.user.additionalGids: cannot set any "):
        _rootless_plan(False, setgroups_denied=True, gids=[0])


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("1", True), ("T", True), ("false", False), ("0", False), ("F", False)])
def test_rootless_flag_spellings(value, expected):
    assert rootless_mode(value) is expected


def test_rootless_flag_rejects_others():
    with pytest.raises(UsageError, match='parsing "yes": invalid syntax'):
        rootless_mode("yes")


@pytest.mark.parametrize("text, inside", [
    ("         0          0 4294967295\n", False),
    ("         0       1000          1\n", True),
    ("         0     100000      65536\n", True),
])
def test_running_in_userns_reads_the_map(tmp_path: Path, text, inside):
    (tmp_path / "uid_map").write_text(text)
    assert in_user_namespace(str(tmp_path / "uid_map")) is inside


def test_a_runtime_in_a_user_namespace_binds_devices_and_sysfs():
    """Rootless podman's case: no user namespace in the config, but the runtime runs in one."""
    cfg = json.loads(json.dumps(default_spec()))
    cfg["process"]["terminal"] = False
    steps = build_create_plan(cfg, HostFacts(rootfs="/r", bundle="/b", fifo_fd=9,
                                             in_user_namespace=True))
    assert not [s for s in steps if s.op == P.OP_MKNOD]
    plain = build_create_plan(cfg, HostFacts(rootfs="/r", bundle="/b", fifo_fd=9))
    assert [s for s in plain if s.op == P.OP_MKNOD]
