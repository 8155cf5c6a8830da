"""The create plan: order and content of the steps (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan import flags as F
from pyrunc.plan import protocol as P
from pyrunc.plan.builder import HostFacts, build_create_plan, capability_mask, namespace_steps

BASE = json.loads((Path(__file__).resolve().parents[2] / "bundles/busybox/config.json").read_text())


def plan(config=None, **facts):
    cfg = json.loads(json.dumps(config or BASE))
    return build_create_plan(cfg, HostFacts(rootfs="/r", bundle="/b", fifo_fd=9, **facts))


def ops(steps):
    return [s.op for s in steps]


def test_stage_a_order_joins_user_first():
    linux = {"namespaces": [{"type": "network", "path": "/proc/1/ns/net"}, {"type": "pid"},
                            {"type": "user", "path": "/proc/1/ns/user"}, {"type": "mount"}]}
    steps = namespace_steps(linux)
    assert ops(steps) == [P.OP_SETNS, P.OP_SETNS, P.OP_UNSHARE, P.OP_FORK]
    assert steps[0].ints[0] == F.CLONE_NEWUSER and steps[1].ints[0] == F.CLONE_NEWNET
    assert steps[2].ints[0] == F.CLONE_NEWPID | F.CLONE_NEWNS


def test_new_user_namespace_comes_before_the_others():
    steps = namespace_steps({"namespaces": [{"type": "mount"}, {"type": "user"}]})
    assert ops(steps) == [P.OP_UNSHARE_USER, P.OP_UNSHARE, P.OP_FORK]


def test_time_offsets():
    steps = namespace_steps({"namespaces": [{"type": "time"}],
                             "timeOffsets": {"monotonic": {"secs": -5, "nanosecs": 1}}})
    t = [s for s in steps if s.op == P.OP_TIMENS_OFFSETS][0]
    assert t.ints[0] == (-5) & ((1 << 64) - 1) and t.ints[1] == 1


def test_whole_plan_order():
    o = ops(plan())
    assert o.index(P.OP_FORK) < o.index(P.OP_SET_ROOT) < o.index(P.OP_PIVOT_ROOT)
    assert o.index(P.OP_PIVOT_ROOT) < o.index(P.OP_SETHOSTNAME) < o.index(P.OP_READONLY_PATH)
    assert o.index(P.OP_READONLY_PATH) < o.index(P.OP_MASK_PATH) < o.index(P.OP_CHECK_EXEC)
    assert o.index(P.OP_CHECK_EXEC) < o.index(P.OP_READY) < o.index(P.OP_WAIT_START)
    assert o.index(P.OP_WAIT_START) < o.index(P.OP_RLIMIT) < o.index(P.OP_SETID)
    assert o[-4:] == [P.OP_CHDIR, P.OP_CLOSE_FDS, P.OP_WAIT_START, P.OP_EXEC]
    # exec.fifo is held from the wait until just before exec, then answered.
    wait, release = [s for s in plan() if s.op == P.OP_WAIT_START]
    assert wait.ints[1] == P.WAIT_F_HOLD and release.ints[1] == P.WAIT_F_RELEASE
    caps = [s for s in plan() if s.op == P.OP_CAPS]
    assert caps[0].ints[5] == P.CAPS_F_BOUNDING_ONLY and caps[1].ints[5] == P.CAPS_F_NO_BOUNDING
    assert o.index(P.OP_CAPS) < o.index(P.OP_SETID) < len(o) - 1 - o[::-1].index(P.OP_CAPS)


def test_devices_created_when_dev_is_tmpfs():
    steps = plan()
    nodes = {s.strs[0].decode(): s for s in steps if s.op == P.OP_MKNOD}
    assert set(nodes) >= {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                          "/dev/urandom", "/dev/tty"}
    null = nodes["/dev/null"]
    assert null.ints[0] == F.S_IFCHR | 0o666 and null.ints[1:3] == (1, 3)
    links = {s.strs[1].decode(): s.strs[0].decode() for s in steps if s.op == P.OP_SYMLINK}
    assert links["/dev/fd"] == "/proc/self/fd" and links["/dev/ptmx"] == "pts/ptmx"


def test_devices_are_bind_mounted_in_a_user_namespace():
    cfg = json.loads(json.dumps(BASE))
    cfg["linux"]["namespaces"].append({"type": "user"})
    steps = plan(cfg)
    assert not [s for s in steps if s.op == P.OP_MKNOD]
    binds = [s for s in steps if s.op == P.OP_MOUNT and s.strs[1] == b"/dev/null"]
    assert binds and binds[0].ints[1] & P.MOUNT_F_MKFILE


def test_config_devices_are_created_with_their_mode_and_owner():
    cfg = json.loads(json.dumps(BASE))
    cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                "fileMode": 0o600, "uid": 7, "gid": 8}]
    fuse = [s for s in plan(cfg) if s.op == P.OP_MKNOD and s.strs[0] == b"/dev/fuse"][0]
    assert fuse.ints[:5] == (F.S_IFCHR | 0o600, 10, 229, 7, 8)


def test_loopback_only_for_a_new_network_namespace():
    assert P.OP_LOOPBACK_UP in ops(plan())
    cfg = json.loads(json.dumps(BASE))
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    assert P.OP_LOOPBACK_UP not in ops(plan(cfg))


def test_no_pivot_uses_chroot():
    o = ops(plan(no_pivot=True))
    assert P.OP_CHROOT in o and P.OP_PIVOT_ROOT not in o


def test_mount_namespace_is_required():
    cfg = json.loads(json.dumps(BASE))
    cfg["linux"]["namespaces"] = [{"type": "pid"}]
    with pytest.raises(ConfigError, match="mount namespace"):
        plan(cfg)


def test_sysctl_becomes_proc_write():
    cfg = json.loads(json.dumps(BASE))
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    w = [s for s in plan(cfg) if s.op == P.OP_WRITE_PROC][0]
    assert w.strs == (b"sys/net/ipv4/ip_forward", b"1")


def test_capability_mask_ignores_unknown_names():
    assert capability_mask(["CAP_CHOWN", "CAP_KILL", "CAP_NOPE"]) == (1 << 0) | (1 << 5)


def test_exec_step_carries_args_env_and_home():
    ex = plan()[-1]
    argc, envc = ex.ints[0], ex.ints[1]
    assert argc == len(BASE["process"]["args"])
    assert ex.strs[argc:][-1] == b"HOME=/"
    assert envc == len(BASE["process"]["env"]) + 1


def test_plan_encodes_within_limits():
    data = P.encode_plan(plan())
    assert data[:4] == (P.PLAN_MAGIC).to_bytes(4, "little")
    assert int.from_bytes(data[8:12], "little") == len(data)


@pytest.mark.parametrize("word,flags", [
    ("rshared", F.MS_SHARED | F.MS_REC), ("rslave", F.MS_SLAVE | F.MS_REC),
    ("rprivate", F.MS_PRIVATE | F.MS_REC), ("runbindable", F.MS_UNBINDABLE | F.MS_REC),
    ("shared", F.MS_SHARED), ("unbindable", F.MS_UNBINDABLE)])
def test_rootfs_propagation_words(word, flags):
    cfg = json.loads(json.dumps(BASE))
    cfg["linux"]["rootfsPropagation"] = word
    steps = plan(cfg)
    o = ops(steps)
    root = [i for i, s in enumerate(steps) if s.op == P.OP_MOUNT and s.strs[1] == b"/"
            and s.ints[1] & P.MOUNT_F_NO_SOURCE and not s.ints[0] & F.MS_REMOUNT]
    first, last = steps[root[0]], steps[root[-1]]
    if flags & (F.MS_SHARED | F.MS_UNBINDABLE):
        # Set on the container's "/" after the root change; the host-side "/"
        # of the new namespace only turns into a recursive slave.
        assert first.ints[0] == F.MS_SLAVE | F.MS_REC and last.ints[0] == flags
        assert root[-1] > o.index(P.OP_PIVOT_ROOT)
    else:
        assert root == [root[0]] and first.ints[0] == flags
    if flags & F.MS_UNBINDABLE:
        # ...and after the bind mounts of readonlyPaths and maskedPaths.
        assert root[-1] > max(i for i, op in enumerate(o)
                              if op in (P.OP_READONLY_PATH, P.OP_MASK_PATH))


def test_read_only_dev_is_remounted_after_devpts_devices_and_console():
    cfg = json.loads(json.dumps(BASE))
    cfg["process"]["terminal"] = True
    for m in cfg["mounts"]:
        if m["destination"] == "/dev":
            m["options"].append("ro")
    steps = plan(cfg, console_fd=7)
    mounts = [(i, s) for i, s in enumerate(steps) if s.op == P.OP_MOUNT and s.strs[1] == b"/dev"]
    (first, mount), (last, remount) = mounts
    assert not mount.ints[0] & F.MS_RDONLY and remount.ints[0] & F.MS_RDONLY
    o = ops(steps)
    devpts = next(i for i, s in enumerate(steps) if s.op == P.OP_MOUNT and s.strs[1] == b"/dev/pts")
    assert first < devpts < o.index(P.OP_MKNOD) < o.index(P.OP_CONSOLE) < last
    assert last < o.index(P.OP_SETHOSTNAME)


def test_joined_mount_namespace_gets_the_same_rootfs_steps_as_a_new_one():
    """runc's semantics: a mount namespace joined by path is joined last (the
    other paths still resolve in the runtime's), and the rootfs is then set
    up in it exactly as in a new one (propagation, bind, pivot_root, masks)."""
    cfg = json.loads(json.dumps(BASE))
    i = next(n for n, ns in enumerate(cfg["linux"]["namespaces"]) if ns["type"] == "mount")
    cfg["linux"]["namespaces"][i]["path"] = "/run/ns/mnt"
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = "/run/ns/net"
    joined = plan(cfg)
    setns = [s for s in joined if s.op == P.OP_SETNS]
    assert [s.ints[0] for s in setns] == [F.CLONE_NEWNET, F.CLONE_NEWNS]
    assert setns[1].what.startswith(f'linux.namespaces[{i}].path: join mount namespace "/run/ns/mnt"')
    unshare = [s for s in joined if s.op == P.OP_UNSHARE][0]
    assert not unshare.ints[0] & F.CLONE_NEWNS
    del cfg["linux"]["namespaces"][i]["path"]
    new = plan(cfg)
    assert ops(joined)[ops(joined).index(P.OP_FORK):] == ops(new)[ops(new).index(P.OP_FORK):]


def test_cwd_is_entered_before_the_user_switch_and_retried_after():
    # runc: chdir while still root, again as the user only if root was refused.
    steps = plan()
    o = ops(steps)
    chdirs = [i for i, op in enumerate(o) if op == P.OP_CHDIR]
    assert len(chdirs) == 2
    assert chdirs[0] < o.index(P.OP_CAPS) < o.index(P.OP_SETID) < chdirs[1]
    assert steps[chdirs[0]].ints[0] == P.CHDIR_F_TRY
    assert steps[chdirs[1]].ints[0] == P.CHDIR_F_RETRY


@pytest.mark.parametrize("terminal", [False, True])
def test_stdio_is_given_to_the_user_and_the_pty_only_with_a_terminal(terminal):
    cfg = json.loads(json.dumps(BASE))
    cfg["process"]["terminal"] = terminal
    setid = [s for s in plan(cfg) if s.op == P.OP_SETID][0]
    assert setid.ints[2] == P.SETID_F_STDIO | (P.SETID_F_STDIO_TTY if terminal else 0)


def test_session_keyring_right_after_setsid_with_the_process_label():
    cfg = json.loads(json.dumps(BASE))
    cfg["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    steps = plan(cfg, container_id="c1", new_keyring=True)
    at = ops(steps).index(P.OP_KEYRING)
    assert steps[at - 1].op == P.OP_SETSID and ops(steps).index(P.OP_FORK) < at
    assert steps[at].strs == (b"_ses.c1", b"system_u:system_r:container_t:s0")
    assert P.OP_KEYRING not in ops(plan(cfg, container_id="c1", new_keyring=False))


def test_exec_joins_the_container_keyring_by_name_without_changing_it():
    from pyrunc.plan.builder import build_exec_plan

    cfg = json.loads(json.dumps(BASE))
    steps = build_exec_plan(cfg, 42, {**cfg["process"], "selinuxLabel": "x_t"}, 3,
                            container_id="c1", new_keyring=True)
    (key,) = [s for s in steps if s.op == P.OP_KEYRING]
    assert key.strs == (b"_ses.c1", b"x_t") and key.ints[1] == 0
    assert P.OP_KEYRING not in ops(build_exec_plan(cfg, 42, cfg["process"], 3, container_id="c1"))


def with_userns_and_bind(source: str = "/host/data") -> dict:
    cfg = json.loads(json.dumps(BASE))
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": source,
                          "options": ["bind"]})
    cfg["mounts"].append({"destination": "/inside", "type": "bind", "source": "/r/etc",
                          "options": ["bind"]})
    return cfg


def test_bind_sources_are_opened_by_a_helper_in_a_new_user_namespace():
    steps = plan(with_userns_and_bind())
    o = ops(steps)
    fork = steps[o.index(P.OP_BIND_SOURCES_FORK)]
    opened = steps[o.index(P.OP_BIND_SOURCES_OPEN)]
    # Forked while still the host's root; asked once the mount namespace exists.
    assert o.index(P.OP_BIND_SOURCES_FORK) == o.index(P.OP_UNSHARE_USER) - 1
    assert o.index(P.OP_BIND_SOURCES_OPEN) == o.index(P.OP_UNSHARE) + 1 < o.index(P.OP_FORK)
    binds = [s for s in steps if s.op == P.OP_MOUNT and s.ints[1] & P.MOUNT_F_SOURCE_FD]
    assert [s.strs[0] for s in binds] == list(fork.strs)
    assert [s.ints[3] for s in binds] == list(range(len(binds))) and opened.ints[0] == len(binds)
    assert b"/host/data" in fork.strs and b"/dev/null" in fork.strs
    # A source inside the rootfs is looked up in the root, when it is mounted.
    assert b"/etc" not in fork.strs and b"/r/etc" not in fork.strs


def test_no_bind_source_helper_without_a_new_user_namespace():
    cfg = with_userns_and_bind()
    cfg["linux"]["namespaces"].remove({"type": "user"})
    o = ops(plan(cfg))
    assert P.OP_BIND_SOURCES_FORK not in o and P.OP_BIND_SOURCES_OPEN not in o


def _cgroup_steps(cgroupns: bool):
    from pyrunc.plan.builder import CgroupHierarchy

    cfg = json.loads(json.dumps(BASE))
    cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    if cgroupns:
        cfg["linux"]["namespaces"].append({"type": "cgroup"})
    steps = plan(cfg, cgroup_hierarchies=[
        CgroupHierarchy("", "cgroup2", "", "/sys/fs/cgroup/app.slice/c1")])
    return [s for s in steps if s.op == P.OP_MOUNT and s.strs[1] == b"/sys/fs/cgroup"]


def test_cgroup2_mount_falls_back_to_binding_the_containers_cgroup():
    """runc's rule: a refused cgroup2 mount (EPERM, or EBUSY on the host's own cgroup2
    mount that a rootless /sys rbind brings in) becomes a bind of the container's dir."""
    mount, bind, remount = _cgroup_steps(cgroupns=True)
    assert mount.strs[2] == b"cgroup2"
    assert mount.ints[1] & P.MOUNT_F_OR_ELSE and mount.ints[4] == 2
    assert bind.strs[0] == b"/sys/fs/cgroup/app.slice/c1"
    assert bind.ints[0] & F.MS_BIND and bind.ints[1] & P.MOUNT_F_BIND_SOURCE
    assert remount.ints[0] & F.MS_REMOUNT and remount.ints[0] & F.MS_RDONLY
    assert remount.ints[1] & P.MOUNT_F_KEEP_LOCKED


def test_cgroup2_without_a_cgroup_namespace_is_a_bind_only():
    bind, remount = _cgroup_steps(cgroupns=False)
    assert bind.strs[0] == b"/sys/fs/cgroup/app.slice/c1" and bind.ints[1] & P.MOUNT_F_BIND_SOURCE
    assert not bind.ints[1] & P.MOUNT_F_OR_ELSE
    assert remount.ints[0] & F.MS_REMOUNT
