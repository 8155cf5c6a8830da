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
    assert step.ints[:3] == (P.SECCOMP_ACT_KILL_THREAD, 0, 0)
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


def test_last_before_exec_with_nnp() -> None:
    ops = [s.op for s in build_create_plan(_config(True, ALLOW), FACTS)]
    assert ops[-2:] == [P.OP_SECCOMP, P.OP_EXEC]
    assert ops.index(P.OP_WAIT_START) < ops.index(P.OP_SECCOMP)
    for op in (P.OP_SETID, P.OP_CAPS, P.OP_NO_NEW_PRIVS, P.OP_CHDIR, P.OP_CLOSE_FDS):
        assert max(i for i, o in enumerate(ops) if o == op) < ops.index(P.OP_SECCOMP)


def test_before_the_uid_change_without_nnp() -> None:
    ops = [s.op for s in build_create_plan(_config(False, ALLOW), FACTS)]
    assert ops.index(P.OP_SECCOMP) + 1 == ops.index(P.OP_SETID)
    assert ops.index(P.OP_WAIT_START) < ops.index(P.OP_SECCOMP)


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
