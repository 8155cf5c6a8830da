"""Planning of process attributes, netDevices, mountLabel and the LSM/RDT fields (pure)."""

from __future__ import annotations

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan import procattrs as PA
from pyrunc.plan import protocol as P


def ops(steps):
    return [s.op for s in steps]


def test_id_lists_and_masks():
    assert PA.parse_id_list("0-2, 5,7-7", "f") == [0, 1, 2, 5, 7]
    assert PA.bit_mask([0, 65]) == (1 | 1 << 65).to_bytes(16, "little")
    for bad in ("", "3-1", "x", "9000"):
        with pytest.raises(ConfigError):
            PA.parse_id_list(bad, "f")


def test_scheduler_encoding_and_runc_rules():
    step = PA.scheduler_step({"scheduler": {"policy": "SCHED_DEADLINE", "runtime": 1,
                                            "deadline": 2, "period": 3,
                                            "flags": ["SCHED_FLAG_RESET_ON_FORK"]}})
    assert step is not None and step.ints == (6 | 1 << 32, 0, 0, 1, 2, 3)
    for bad in ({"policy": "SCHED_OTHER", "priority": 1}, {"policy": "SCHED_FIFO", "period": 1},
                {"policy": "SCHED_BATCH", "nice": 20}, {"policy": ""}):
        with pytest.raises(ConfigError):
            PA.scheduler_step({"scheduler": bad})


def test_mempolicy_rules():
    step = PA.mempolicy_step({"memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-1",
                                               "flags": ["MPOL_F_STATIC_NODES"]}})
    assert step is not None and step.ints == (3 | 1 << 15, 65) and step.strs == (b"\3" + b"\0" * 7,)
    assert PA.mempolicy_step({"memoryPolicy": {"mode": "MPOL_LOCAL"}}).ints == (4, 0)
    for bad in ({"mode": "MPOL_BIND"}, {"mode": "MPOL_DEFAULT", "nodes": "0"},
                {"mode": "MPOL_BIND", "nodes": "0",
                 "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}):
        with pytest.raises(ConfigError):
            PA.mempolicy_step({"memoryPolicy": bad})


BASE = [P.step(P.OP_UNSHARE, 1), P.step(P.OP_FORK),
        P.step(P.OP_MOUNT, 0, 0, 0, strs=("tmpfs", "/dev", "tmpfs", "mode=755")),
        P.step(P.OP_MOUNT, 0, 0, 0, strs=("proc", "/proc", "proc", "")),
        P.step(P.OP_READY), P.step(P.OP_CAPS), P.step(P.OP_EXEC, 1, 0, strs=("x",))]


def test_create_plan_order():
    cfg = {"process": {"ioPriority": {"class": "IOPRIO_CLASS_IDLE"}},
           "linux": {"personality": {"domain": "LINUX32"}, "mountLabel": "l",
                     "namespaces": [{"type": "network"}], "netDevices": {"veth0": {"name": "e0"}}}}
    addr = PA.NetAddress(2, 24, bytes([10, 0, 0, 1]))
    out = PA.finish_create_plan(BASE, cfg, {"veth0": [addr]})
    assert ops(out) == [P.OP_UNSHARE, P.OP_FORK, P.OP_SYNC, P.OP_NETDEV, P.OP_MOUNT, P.OP_MOUNT,
                        P.OP_IOPRIO, P.OP_PERSONALITY, P.OP_READY, P.OP_CAPS, P.OP_EXEC]
    assert out[2].ints[0] == PA.NETDEV_SYNC
    assert out[3].strs == (b"e0", b"\x02\x18\x0a\x00\x00\x01")
    assert out[4].strs[3] == b'mode=755,context="l"' and out[5].strs[3] == b""


def test_exec_plan_affinity():
    process = {"execCPUAffinity": {"initial": "0", "final": "1"}}
    out = PA.finish_exec_plan(BASE, {"linux": {}}, process)
    assert out[0].op == P.OP_CPU_AFFINITY and out[0].strs == ((1).to_bytes(8, "little"),)
    ready = ops(out).index(P.OP_READY)
    assert out[ready - 1].op == P.OP_CPU_AFFINITY and out[ready - 1].strs[0][0] == 2


def test_net_devices_need_a_network_namespace_and_good_names():
    with pytest.raises(ConfigError, match="network namespace"):
        PA.check_net_devices({"netDevices": {"eth0": {}}, "namespaces": []})
    with pytest.raises(ConfigError, match="invalid name"):
        PA.check_net_devices({"netDevices": {"eth0": {"name": "a/b"}},
                              "namespaces": [{"type": "network"}]})


def test_security_fields_without_the_features():
    def check(config, process=None, **host):
        facts = {"apparmor_enabled": False, "selinux_enabled": False, "resctrl_mounted": False}
        facts.update(host)
        PA.check_security_fields(config, process or {}, **facts)

    with pytest.raises(ConfigError, match="write /proc/self/attr/exec: invalid argument"):
        check({}, {"apparmorProfile": "p"})
    with pytest.raises(ConfigError, match="selinux is disabled"):
        check({}, {"selinuxLabel": "l"})
    with pytest.raises(ConfigError, match="Intel RDT/MBA is not enabled"):
        check({"linux": {"intelRdt": {"memBwSchema": "MB:0=10"}}})
    with pytest.raises(ConfigError, match="invalid intelRdt.ClosID"):
        check({"linux": {"intelRdt": {"closID": "a/b"}}})
    check({"linux": {"mountLabel": "l"}})  # the mount itself fails later, as with runc


def test_personality():
    assert PA.personality_step({"personality": {"domain": "LINUX32"}}).ints == (8,)
    assert PA.personality_step({}) is None
    with pytest.raises(ConfigError, match="unsupported flags"):
        PA.personality_step({"personality": {"domain": "LINUX", "flags": ["X"]}})


def test_apparmor_profile_checks():
    def check(profile, enabled=True, loaded=frozenset({"pyrunc-test", "docker-default"})):
        PA.check_security_fields({}, {"apparmorProfile": profile}, apparmor_enabled=enabled,
                                 selinux_enabled=False, resctrl_mounted=False,
                                 apparmor_profiles=loaded)

    check("docker-default")
    check("unconfined")  # the kernel's own label, never listed
    check("other", loaded=None)  # the list is unreadable: the kernel judges
    check("a//&b")  # a stack: the kernel judges
    with pytest.raises(ConfigError) as e:
        check("missing")
    assert str(e.value) == 'process.apparmorProfile: AppArmor profile "missing" is not loaded'
    with pytest.raises(ConfigError, match="invalid AppArmor profile name"):
        check("a\nb")
    with pytest.raises(ConfigError, match="write /proc/self/attr/exec: invalid argument"):
        check("docker-default", enabled=False)


def test_parse_apparmor_profiles():
    text = ("docker-default (enforce)\n/usr/bin/man (enforce)\nman_groff (complain)\n"
            "with space (enforce)\nnonsense\n")
    assert PA.parse_apparmor_profiles(text) == {"docker-default", "/usr/bin/man", "man_groff",
                                                "with space"}


def test_apparmor_step_placement():
    out = PA.finish_create_plan(BASE, {"process": {"apparmorProfile": "p"}}, {})
    ready = ops(out).index(P.OP_READY)
    assert out[ready - 1].op == P.OP_APPARMOR and out[ready - 1].strs == (b"p",)
    assert ops(PA.finish_create_plan(BASE, {"process": {}}, {})).count(P.OP_APPARMOR) == 0
    # exec: the process's own profile, else the container's (as runc)
    cfg = {"process": {"apparmorProfile": "box"}, "linux": {}}
    for process, want in (({}, b"box"), ({"apparmorProfile": "mine"}, b"mine")):
        out = PA.finish_exec_plan(BASE, cfg, process)
        assert [s.strs for s in out if s.op == P.OP_APPARMOR] == [(want,)]
        assert ops(out).index(P.OP_APPARMOR) < ops(out).index(P.OP_READY)


LABEL = "system_u:system_r:container_t:s0:c1,c2"


def test_selinux_label_checks():
    def check(config, process, enabled=True):
        PA.check_security_fields(config, process, apparmor_enabled=False,
                                 selinux_enabled=enabled, resctrl_mounted=False)

    check({}, {"selinuxLabel": LABEL})  # the kernel judges the context itself
    check({"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}, {})
    with pytest.raises(ConfigError) as e:
        check({}, {"selinuxLabel": LABEL}, enabled=False)
    assert str(e.value) == PA.SELINUX_UNAVAILABLE
    with pytest.raises(ConfigError, match="process.selinuxLabel: invalid SELinux label"):
        check({}, {"selinuxLabel": "a\nb"})
    with pytest.raises(ConfigError, match="linux.mountLabel: invalid SELinux label"):
        check({"linux": {"mountLabel": 'a",rw'}}, {}, enabled=False)


def test_selinux_label_goes_with_the_process_attributes_before_ready():
    cfg = {"process": {"selinuxLabel": LABEL, "apparmorProfile": "p"}, "linux": {}}
    out = PA.finish_create_plan(BASE, cfg, {})
    ready = ops(out).index(P.OP_READY)
    assert ops(out)[ready - 2:ready] == [P.OP_APPARMOR, P.OP_SELINUX_LABEL]
    assert out[ready - 1].strs == (LABEL.encode(),)


def test_exec_label_is_the_process_own_else_the_container_one():
    cfg = {"process": {"selinuxLabel": LABEL}, "linux": {}}
    for process, want in [({}, LABEL), ({"selinuxLabel": "other_t"}, "other_t")]:
        out = PA.finish_exec_plan(BASE, cfg, process)
        assert [s.strs for s in out if s.op == P.OP_SELINUX_LABEL] == [(want.encode(),)]
    assert P.OP_SELINUX_LABEL not in ops(PA.finish_exec_plan(BASE, {"linux": {}}, {}))


def test_keyring_step_as_runc_makes_it():
    step = PA.keyring_step("c1", LABEL, user_namespace=False)
    assert step.strs == (b"_ses.c1", LABEL.encode())
    assert step.ints[:2] == (0xFFFFFFFF, 0x80000)  # keep all, add "possessor uid: search"
    assert PA.keyring_step("c1", "", user_namespace=True).ints[1] == 0x8  # "other: search"
    assert PA.keyring_step("c1", "", user_namespace=False, set_perms=False).ints[1] == 0


def test_mount_label_only_on_the_mounts_runc_labels():
    def mount(fstype, data="", flags=0):
        return P.step(P.OP_MOUNT, flags, 0, 0, strs=(fstype, "/x", fstype, data))

    steps = [mount("tmpfs", "mode=755"), mount("devpts", "newinstance"), mount("proc"),
             mount("sysfs"), mount("mqueue"), mount("cgroup2"),
             mount("none", "", 0x1000),  # a bind mount: data is ignored by the kernel
             P.step(P.OP_MKDIR, strs=("/x",))]
    out = PA.apply_mount_label(steps, "system_u:object_r:container_file_t:s0")
    ctx = b'context="system_u:object_r:container_file_t:s0"'
    assert [s.strs[3] for s in out[:7]] == [b"mode=755," + ctx, b"newinstance," + ctx, b"", b"",
                                            b"", b"", b""]
    assert out[7] is steps[7]
    assert PA.apply_mount_label(steps, "") == steps
    # mqueue takes no context=: without SELinux it is left alone (runc skips it too)
    assert all(not s.ints[1] & P.MOUNT_F_LABEL for s in out if s.op == P.OP_MOUNT)


def test_mount_label_relabels_mqueue_with_selinux():
    """mqueue: MOUNT_F_LABEL and the label as str4; every other step as without SELinux."""
    label = "system_u:object_r:container_file_t:s0"
    steps = [P.step(P.OP_MOUNT, flags, P.MOUNT_F_NOSYMLINK_DST, 0o755,
                    strs=(fstype, "/x", fstype, ""), what=f"mount {fstype}")
             for fstype, flags in [("mqueue", 0xE), ("tmpfs", 0), ("proc", 0), ("sysfs", 0),
                                   ("none", 0x1000)]]
    out = PA.apply_mount_label(steps, label, selinux_enabled=True)
    assert out[0].ints == (0xE, P.MOUNT_F_NOSYMLINK_DST | P.MOUNT_F_LABEL, 0o755)
    assert out[0].strs == (b"mqueue", b"/x", b"mqueue", b"", label.encode())
    assert label in out[0].what
    assert out[1:] == PA.apply_mount_label(steps, label)[1:]
    assert all(not s.ints[1] & P.MOUNT_F_LABEL for s in out[1:])
    assert PA.apply_mount_label(steps, "", selinux_enabled=True) == steps
    cfg = {"linux": {"mountLabel": label}, "process": {}}
    for enabled in (True, False):
        plan = PA.finish_create_plan(steps, cfg, {}, selinux_enabled=enabled)
        assert bool(plan[0].ints[1] & P.MOUNT_F_LABEL) is enabled
