"""pyrunc/plan/seccomp.py: the OP_SECCOMP encoding, its place in the plans, and
every validation message."""

from __future__ import annotations

import errno
import json
import struct
from typing import Any

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan import protocol as P
from pyrunc.plan import seccomp as S
from pyrunc.plan.builder import HostFacts, build_create_plan, build_exec_plan

U64 = (1 << 64) - 1


def records(table: bytes) -> list[tuple[int, int, int, bytes, list[tuple[int, int, int, int]]]]:
    """Decode a rule table: (action, value, nargs, name, args)."""
    out = []
    pos = 0
    while pos < len(table):
        action, nargs, name_len, value = struct.unpack_from("<BBHI", table, pos)
        pos += 8
        name = table[pos:pos + name_len]
        pos += name_len
        args = [struct.unpack_from("<IIQQ", table, pos + 24 * i) for i in range(nargs)]
        pos += 24 * nargs
        out.append((action, value, nargs, name, args))
    return out


def test_encoding() -> None:
    step = S.seccomp_step({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [
            {"names": ["getpid", "getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": 0xFF,
                       "valueTwo": 8}]},
            {"names": ["read"], "action": "SCMP_ACT_TRACE"},
        ]})
    assert step.op == P.OP_SECCOMP
    # defaultErrnoRet ENOSYS: the ENOSYS stub would change nothing.
    assert step.ints == (P.SECCOMP_ACT_ERRNO, 38, P.SECCOMP_F_LOG | P.SECCOMP_F_TSYNC, U64, U64)
    assert step.strs[0] == b"x86_64,x86"
    assert records(step.strs[1]) == [
        (P.SECCOMP_ACT_ERRNO, 42, 0, b"getpid", []),
        (P.SECCOMP_ACT_ERRNO, 42, 0, b"getppid", []),
        (P.SECCOMP_ACT_ALLOW, 0, 1, b"personality", [(0, P.SECCOMP_CMP_MASKED_EQ, 0xFF, 8)]),
        (P.SECCOMP_ACT_TRACE, errno.EPERM, 0, b"read", []),
    ]
    assert step.what == "load the seccomp filter (4 rules)"


def test_defaults_and_aliases() -> None:
    step = S.seccomp_step({"defaultAction": "SCMP_ACT_KILL"})
    assert step.ints[:3] == (P.SECCOMP_ACT_KILL_THREAD, 0, P.SECCOMP_F_ENOSYS)
    assert step.strs == (b"", b"")
    assert S.seccomp_step({"defaultAction": "SCMP_ACT_ERRNO"}).ints[1] == errno.EPERM


def test_names_no_libseccomp_can_know_are_dropped() -> None:
    step = S.seccomp_step({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["x" * 256, "getpid"], "action": "SCMP_ACT_ERRNO"}]})
    assert [r[3] for r in records(step.strs[1])] == [b"getpid"]


@pytest.mark.parametrize("seccomp,message", [
    ({"defaultAction": "SCMP_ACT_FOO"},
     'linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"'),
    ({"defaultAction": "SCMP_ACT_NOTIFY"},
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
     "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW takes no errno (only SCMP_ACT_ERRNO and "
     "SCMP_ACT_TRACE do)"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000},
     "linux.seccomp.defaultErrnoRet: 70000 is not in 0..65535"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_SH"]},
     'linux.seccomp.architectures[0]: architecture "SCMP_ARCH_SH" is not supported'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
     'linux.seccomp.flags[0]: seccomp flag "SECCOMP_FILTER_FLAG_NOPE" is not known to pyrunc'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["b"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["c"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["d"], "action": "SCMP_ACT_FOO"}]},
     'linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid", ""], "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names[1]: empty string is not a valid syscall"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["write"], "action": "SCMP_ACT_NOTIFY"}], "listenerPath": "/x"},
     "linux.seccomp.syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for the write syscall"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.listenerPath: seccomp listenerPath is not set (SCMP_ACT_NOTIFY is used)"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]},
     "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL takes no errno"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 1},
                  {"index": 9, "op": "SCMP_CMP_EQ", "value": 1}]}]},
     "linux.seccomp.syscalls[0].args[1].index: 9 is not a syscall argument index (0..5)"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "op": "SCMP_CMP_ABOUT", "value": 1}]}]},
     'linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_ABOUT"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": -1}]}]},
     "linux.seccomp.syscalls[0].args[0].value: -1 is not a 64-bit unsigned integer"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": i, "op": "SCMP_CMP_EQ", "value": 1} for i in range(7)]}]},
     "linux.seccomp.syscalls[0].args: 7 argument rules; a syscall has at most 6 arguments"),
])
def test_validation_messages(seccomp: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        S.seccomp_step(seccomp)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_listener_fds_only_with_notify() -> None:
    notify = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    assert S.uses_listener(notify)
    assert S.seccomp_step(notify, (7, 8)).ints[3:5] == (7, 8)
    with pytest.raises(ValueError):
        S.seccomp_step(notify)
    plain = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}
    assert not S.uses_listener(plain) and not S.uses_listener(None)
    assert S.seccomp_step(plain, (7, 8)).ints[3:5] == (U64, U64)


def _config(nnp: bool, seccomp: dict[str, Any] | None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "ociVersion": "1.3.0",
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 1000, "gid": 1000},
                    "noNewPrivileges": nnp},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]},
    }
    if seccomp is not None:
        cfg["linux"]["seccomp"] = seccomp
    return cfg


FACTS = HostFacts(rootfs="/r", bundle="/b", fifo_fd=5)
ALLOW = {"defaultAction": "SCMP_ACT_ALLOW"}


@pytest.mark.parametrize("default,errno_ret,stub", [
    ("SCMP_ACT_ERRNO", None, True), ("SCMP_ACT_ERRNO", 1, True), ("SCMP_ACT_ERRNO", 38, False),
    ("SCMP_ACT_KILL", None, True), ("SCMP_ACT_KILL_PROCESS", None, True),
    ("SCMP_ACT_TRAP", None, True), ("SCMP_ACT_ALLOW", None, False), ("SCMP_ACT_LOG", None, False),
    ("SCMP_ACT_TRACE", None, False), ("SCMP_ACT_TRACE", 38, False),
])
def test_enosys_stub_policy(default: str, errno_ret: int | None, stub: bool) -> None:
    # runc's rule: newer syscalls get ENOSYS unless the default is permissive
    # or already ENOSYS.
    sc: dict[str, Any] = {"defaultAction": default}
    if errno_ret is not None:
        sc["defaultErrnoRet"] = errno_ret
    assert bool(S.seccomp_step(sc).ints[2] & P.SECCOMP_F_ENOSYS) is stub


# After the filter only these may run (besides the container's program).
AFTER_FILTER = {P.OP_CAPS, P.OP_HOOK, P.OP_WAIT_START, P.OP_EXEC}


def _hooked(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg["hooks"] = {"startContainer": [{"path": "/bin/true"}]}
    return cfg


@pytest.mark.parametrize("nnp", [True, False])
@pytest.mark.parametrize("hooks", [False, True])
def test_loaded_after_everything_the_init_does_for_itself(nnp: bool, hooks: bool) -> None:
    cfg = _config(nnp, ALLOW)
    cfg["process"]["apparmorProfile"] = "p"
    steps = build_create_plan(_hooked(cfg) if hooks else cfg, FACTS)
    ops = [s.op for s in steps]
    load = ops.index(P.OP_SECCOMP)
    # The filter may deny the write of the AppArmor profile: that comes first.
    assert ops.count(P.OP_APPARMOR) == 1
    assert set(ops[load + 1:]) <= AFTER_FILTER and ops[-1] == P.OP_EXEC
    # Hooks run under the filter (runc), and exec.fifo is answered after them.
    assert (P.OP_HOOK in ops[load:]) is hooks
    assert ops[-2] == P.OP_WAIT_START and steps[-2].ints[1] == P.WAIT_F_RELEASE
    # The program is resolved (and kept for OP_EXEC) right before the load.
    check = steps[load - 1]
    assert check.op == P.OP_CHECK_EXEC and check.ints[0] == P.CHECK_EXEC_F_KEEP
    assert check.ints[1] == steps[-1].ints[0] + steps[-1].ints[1]
    for op in (P.OP_SETID, P.OP_SETGROUPS, P.OP_NO_NEW_PRIVS, P.OP_CHDIR, P.OP_CLOSE_FDS,
               P.OP_UMASK, P.OP_RLIMIT, P.OP_APPARMOR):
        assert all(i < load for i, o in enumerate(ops) if o == op), op
    caps_after = [s for s in steps[load:] if s.op == P.OP_CAPS]
    assert len(caps_after) == (0 if nnp else 1)


def test_without_nnp_cap_sys_admin_is_kept_for_the_load() -> None:
    steps = build_create_plan(_config(False, ALLOW), FACTS)
    ops = [s.op for s in steps]
    load = ops.index(P.OP_SECCOMP)
    final = [s for s in steps[:load] if s.op == P.OP_CAPS][-1]
    after = steps[load + 1]
    admin = 1 << S.CAP_SYS_ADMIN
    assert final.ints[1] & admin and final.ints[2] & admin
    assert after.op == P.OP_CAPS and \
        after.ints[5] == P.CAPS_F_NO_BOUNDING | P.CAPS_F_CAPSET_ONLY
    assert (after.ints[1], after.ints[2]) == (final.ints[1] & ~admin, final.ints[2] & ~admin)
    # A process that keeps CAP_SYS_ADMIN anyway needs no extra step.
    cfg = _config(False, ALLOW)
    cfg["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN"] for k in
                                      ("bounding", "effective", "permitted")}
    ops = [s.op for s in build_create_plan(cfg, FACTS)]
    assert P.OP_CAPS not in ops[ops.index(P.OP_SECCOMP):]


def test_no_seccomp_no_step() -> None:
    ops = [s.op for s in build_create_plan(_config(True, None), FACTS)]
    assert P.OP_SECCOMP not in ops


def test_exec_plan_syncs_for_the_listener_state() -> None:
    notify = {**ALLOW, "listenerPath": "/a.sock",
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    cfg = _config(True, notify)
    steps = build_exec_plan(cfg, 42, cfg["process"], 3, seccomp_fds=(9, 10))
    ops = [s.op for s in steps]
    sync = ops.index(P.OP_SYNC)
    assert steps[sync].ints[0] == P.SYNC_SECCOMP and ops[sync + 1] == P.OP_READY
    assert steps[-2].op == P.OP_SECCOMP and steps[-2].ints[3:5] == (9, 10)
    assert steps[-3].op == P.OP_CHECK_EXEC and steps[-3].ints[0] == P.CHECK_EXEC_F_KEEP
    # create needs no sync point: its filter loads after `start`.
    facts = HostFacts(rootfs="/r", bundle="/b", fifo_fd=5, seccomp_fds=(9, 10))
    create_syncs = [s for s in build_create_plan(cfg, facts) if s.op == P.OP_SYNC]
    assert all(s.ints[0] != P.SYNC_SECCOMP for s in create_syncs)


def test_listener_state_shape() -> None:
    data = S.listener_state({"listenerMetadata": "m"}, container_id="c", status="creating",
                            init_pid=10, process_pid=10, bundle="/b",
                            annotations={"k": "v"}, oci_version="1.3.0")
    assert json.loads(data) == {
        "ociVersion": "1.3.0", "fds": ["seccompFd"], "pid": 10, "metadata": "m",
        "state": {"ociVersion": "1.3.0", "id": "c", "status": "creating", "pid": 10,
                  "bundle": "/b", "annotations": {"k": "v"}}}
    bare = json.loads(S.listener_state({}, container_id="c", status="running", init_pid=10,
                                       process_pid=11, bundle="/b", annotations={},
                                       oci_version="1.3.0"))
    assert "metadata" not in bare and "annotations" not in bare["state"]
    assert (bare["pid"], bare["state"]["pid"]) == (11, 10)
