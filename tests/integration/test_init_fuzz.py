"""Fuzz pyrunc-init's plan reader with mutated and random messages.

Properties: pyrunc-init never dies from a signal; every message that the
reference reader below rejects is answered with MSG_ERROR step -1 EBADMSG
and exit status 1; every message it accepts gets past the reader.

A mutation can turn a harmless plan into a valid one that does something
(pivot_root, sethostname, ...), so the cases run in a worker process inside
throw-away mount/uts/ipc/net/pid namespaces (``unshare``).
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyrunc.plan import protocol as P

CASES = int(os.environ.get("PYRUNC_FUZZ_CASES", "600"))
SEED = int(os.environ.get("PYRUNC_FUZZ_SEED", "20240601"))

# ---- reference reader (mirrors csrc/init/plan.c) ----------------------------

KNOWN_OPS = {v for k, v in vars(P).items() if k.startswith("OP_") and isinstance(v, int)}
MIN_STRS = {P.OP_SETNS: 1, P.OP_SET_ROOT: 1, P.OP_MOUNT: 4, P.OP_MKDIR: 1, P.OP_MKNOD: 1,
            P.OP_SYMLINK: 2, P.OP_MASK_PATH: 1, P.OP_READONLY_PATH: 1, P.OP_WRITE_PROC: 2,
            P.OP_SETHOSTNAME: 1, P.OP_SETDOMAINNAME: 1, P.OP_SETGROUPS: 1, P.OP_CHDIR: 1,
            P.OP_CHECK_EXEC: 2, P.OP_EXEC: 1, P.OP_SECCOMP: 2, P.OP_HOOK: 1,
            P.OP_MOUNT_SETATTR: 1, P.OP_MOUNT_IDMAP: 1, P.OP_CPU_AFFINITY: 1,
            P.OP_MEMPOLICY: 1, P.OP_NETDEV: 1, P.OP_APPARMOR: 1,
            P.OP_SELINUX_LABEL: 1, P.OP_KEYRING: 2, P.OP_BIND_SOURCES_FORK: 1}
# Strings that may hold NUL bytes (only the first 8 strings of a step are checked).
BINARY = {P.OP_WRITE_PROC: {1}, P.OP_SETGROUPS: {0}, P.OP_SECCOMP: {1},
          P.OP_CPU_AFFINITY: {0}, P.OP_MEMPOLICY: {0}, P.OP_NETDEV: set(range(1, 8))}
STEP_HEADER = struct.Struct("<HHI" + "Q" * P.STEP_NINTS)
INT_MAX, NO_FD = 0x7FFFFFFF, (1 << 64) - 1
AF_INET, AF_INET6, IFNAMSIZ, PATH_MAX = 2, 10, 16, 4096
SECCOMP_RULE, SECCOMP_ARG = struct.Struct("<BBHI"), struct.Struct("<IIQQ")
SECCOMP_FLAGS = (P.SECCOMP_F_LOG | P.SECCOMP_F_SPEC_ALLOW | P.SECCOMP_F_TSYNC
                 | P.SECCOMP_F_WAIT_KILLABLE_RECV)
assert SECCOMP_RULE.size == P.SECCOMP_RULE_LEN and SECCOMP_ARG.size == P.SECCOMP_ARG_LEN


def _seccomp_action_ok(action: int, value: int) -> bool:
    if not P.SECCOMP_ACT_KILL_THREAD <= action <= P.SECCOMP_ACT_NOTIFY:
        return False
    if action in (P.SECCOMP_ACT_ERRNO, P.SECCOMP_ACT_TRACE):
        return value <= 0xFFFF
    return value == 0


def _seccomp_ok(ints: tuple[int, ...], table: bytes) -> bool:
    if not _seccomp_action_ok(ints[0], ints[1]) or ints[0] == P.SECCOMP_ACT_NOTIFY:
        return False
    if ints[2] & ~SECCOMP_FLAGS:
        return False
    listener, state = ints[3], ints[4]
    if any(fd != NO_FD and fd > INT_MAX for fd in (listener, state)):
        return False
    if (listener == NO_FD) != (state == NO_FD):
        return False
    pos = 0
    while pos < len(table):
        if len(table) - pos < SECCOMP_RULE.size:
            return False
        action, nargs, name_len, value = SECCOMP_RULE.unpack_from(table, pos)
        pos += SECCOMP_RULE.size
        if nargs > P.SECCOMP_MAX_ARGS or len(table) - pos < name_len + nargs * SECCOMP_ARG.size:
            return False
        if not _seccomp_action_ok(action, value):
            return False
        if action == P.SECCOMP_ACT_NOTIFY and listener == NO_FD:
            return False
        name = table[pos:pos + name_len]
        if not 1 <= name_len <= 255 or b"\0" in name:
            return False
        pos += name_len
        for _ in range(nargs):
            index, cmp, _, _ = SECCOMP_ARG.unpack_from(table, pos)
            pos += SECCOMP_ARG.size
            if index >= P.SECCOMP_MAX_ARGS or not P.SECCOMP_CMP_NE <= cmp <= P.SECCOMP_CMP_MASKED_EQ:
                return False
    return True


def _netdev_addr_ok(a: bytes) -> bool:
    if a[:1] == bytes([AF_INET]):
        return len(a) == 6 and a[1] <= 32
    if a[:1] == bytes([AF_INET6]):
        return len(a) == 18 and a[1] <= 128
    return False


def _op_rules_ok(op: int, ints: tuple[int, ...], strs: list[bytes]) -> bool:
    """The per-op rules beyond string counts and NUL bytes."""
    if op == P.OP_SETGROUPS:
        return len(strs[0]) % 4 == 0
    if op == P.OP_SECCOMP:
        return _seccomp_ok(ints, strs[1])
    if op == P.OP_CONSOLE:
        return (ints[0] <= INT_MAX and ints[1] <= 0xFFFF and ints[2] <= 0xFFFF
                and not ints[3] & ~P.CONSOLE_F_MOUNT)
    if op == P.OP_HOOK:
        argc, envc = ints[1], ints[2]
        if argc > len(strs) - 1 or envc > len(strs) - 1 - argc or ints[3] >= P.HOOK_STATE_SLOTS:
            return False
        return strs[0].startswith(b"/") and not any(b"\0" in s for s in strs)
    if op == P.OP_MOUNT:
        return ((not ints[1] & P.MOUNT_F_DETACHED or ints[3] < P.MOUNT_IDMAP_SLOTS)
                and (not ints[1] & P.MOUNT_F_SOURCE_FD or ints[3] < P.MOUNT_SOURCE_SLOTS)
                and (not ints[1] & P.MOUNT_F_LABEL
                     or (len(strs) >= 5 and 1 <= len(strs[4]) <= PATH_MAX)))
    if op == P.OP_BIND_SOURCES_FORK:
        return len(strs) <= P.MOUNT_SOURCE_SLOTS and not any(b"\0" in s for s in strs)
    if op == P.OP_BIND_SOURCES_OPEN:
        return ints[0] <= P.MOUNT_SOURCE_SLOTS
    if op == P.OP_MOUNT_IDMAP:
        return ints[0] <= INT_MAX and ints[2] < P.MOUNT_IDMAP_SLOTS
    if op == P.OP_IOPRIO:
        return 1 <= ints[0] <= 3 and ints[1] <= 7
    if op == P.OP_CPU_AFFINITY:
        return len(strs[0]) % 8 == 0
    if op == P.OP_MEMPOLICY:
        mask = strs[0]
        return (len(mask) % 8 == 0 and ints[0] <= INT_MAX
                and (not mask or ints[1] <= 8 * len(mask) + 1))
    if op == P.OP_NETDEV:
        return 1 <= len(strs[0]) < IFNAMSIZ and all(_netdev_addr_ok(a) for a in strs[1:])
    if op in (P.OP_APPARMOR, P.OP_SELINUX_LABEL):
        return 1 <= len(strs[0]) <= PATH_MAX
    if op == P.OP_KEYRING:
        return 1 <= len(strs[0]) <= 255 and len(strs[1]) <= PATH_MAX
    if op == P.OP_SYNC:
        return ints[1] <= P.HOOK_STATE_SLOTS
    if op == P.OP_EXEC:
        argc, envc = ints[0], ints[1]
        if argc < 1 or argc > len(strs) or envc > len(strs) - argc:
            return False
        return not any(b"\0" in s for s in strs)
    return True


def _step_ok(op: int, ints: tuple[int, ...], strs: list[bytes]) -> bool:
    if op not in KNOWN_OPS or len(strs) < MIN_STRS.get(op, 0):
        return False
    binary = BINARY.get(op, set())
    if any(b"\0" in s for i, s in enumerate(strs) if i < 8 and i not in binary):
        return False
    return _op_rules_ok(op, ints, strs)


def reference_valid(data: bytes) -> bool:
    if len(data) < 16 or len(data) > P.PLAN_MAX_LEN:
        return False
    magic, version, reserved, total, nsteps = struct.unpack_from("<IHHII", data)
    if (magic, version, reserved, total) != (P.PLAN_MAGIC, P.PLAN_VERSION, 0, len(data)):
        return False
    if nsteps > (len(data) - 16) // STEP_HEADER.size:
        return False
    pos = 16
    for i in range(nsteps):
        if len(data) - pos < STEP_HEADER.size:
            return False
        op, nstrs, step_len, *ints = STEP_HEADER.unpack_from(data, pos)
        if step_len < STEP_HEADER.size or step_len > len(data) - pos:
            return False
        end, pos = pos + step_len, pos + STEP_HEADER.size
        strs = []
        for _ in range(nstrs):
            if end - pos < 4:
                return False
            (n,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if n > end - pos:
                return False
            strs.append(data[pos:pos + n])
            pos += n
        if pos != end or not _step_ok(op, tuple(ints), strs):
            return False
        # a fallback mount names how many of the following steps are its alternative
        if op == P.OP_MOUNT and ints[1] & P.MOUNT_F_OR_ELSE and not 1 <= ints[4] < nsteps - i:
            return False
    return pos == len(data)


# ---- case generation --------------------------------------------------------

MS_REC, MS_PRIVATE = 0x4000, 1 << 18


def base_plan() -> bytes:
    s = P.step
    return P.encode_plan([
        s(P.OP_UMASK, 0o22),
        s(P.OP_SETHOSTNAME, strs=["fuzz-host"]),
        s(P.OP_RLIMIT, 7, 1024, 1024),
        s(P.OP_MOUNT, MS_REC | MS_PRIVATE, P.MOUNT_F_TARGET_HOST | P.MOUNT_F_NO_SOURCE,
          strs=["", "/", "", ""]),
        s(P.OP_SETGROUPS, strs=[b""]),
        s(P.OP_CHECK_EXEC, strs=["sh", "/bin:/usr/bin"]),
        s(P.OP_SYNC, 3),
        # Never run (the sync above is answered with MSG_ABORT) but read and
        # checked: mutations of them exercise the per-op rules.
        s(P.OP_SECCOMP, P.SECCOMP_ACT_ALLOW, 0, P.SECCOMP_F_LOG, -1, -1,
          strs=["", _seccomp_rule(P.SECCOMP_ACT_ERRNO, 1, b"fuzz_nosuchcall",
                                  (0, P.SECCOMP_CMP_EQ, 7, 0))
                + _seccomp_rule(P.SECCOMP_ACT_LOG, 0, b"getppid")]),
        s(P.OP_CONSOLE, 1000, 24, 80, 0),
        s(P.OP_HOOK, 1, 1, 1, 0, P.HOOK_CREATE_CONTAINER, 0,
          strs=["/nonexistent/hook", "hook", "A=1"]),
        s(P.OP_MOUNT_IDMAP, 1000, P.MOUNT_F_IDMAP_RECURSIVE, 1, strs=["/nonexistent"]),
        s(P.OP_MOUNT, 0, P.MOUNT_F_NOSYMLINK_DST | P.MOUNT_F_LABEL, 0o755,
          strs=["mqueue", "/nonexistent", "mqueue", "", "system_u:object_r:fuzz_t:s0"]),
        s(P.OP_IOPRIO, 2, 4),
        s(P.OP_CPU_AFFINITY, strs=[(1).to_bytes(8, "little")]),
        s(P.OP_MEMPOLICY, 1, 65, strs=[(1).to_bytes(8, "little")]),
        s(P.OP_NETDEV, strs=["fuzz0", bytes([AF_INET, 24, 10, 0, 0, 2]),
                             bytes([AF_INET6, 64]) + bytes(15) + b"\1"]),
        s(P.OP_READY),
    ])


def _seccomp_rule(action: int, value: int, name: bytes, *args: tuple[int, int, int, int]) -> bytes:
    return (SECCOMP_RULE.pack(action, len(args), len(name), value) + name
            + b"".join(SECCOMP_ARG.pack(*a) for a in args))


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:  # flip a few bytes anywhere
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:  # truncate, keeping total_len honest half of the time
        buf = buf[:rng.randrange(len(buf))]
        if rng.random() < 0.5 and len(buf) >= 12:
            struct.pack_into("<I", buf, 8, len(buf))
    elif kind == 2:  # append garbage with a matching total_len
        buf += rng.randbytes(rng.randint(1, 80))
        struct.pack_into("<I", buf, 8, len(buf))
    elif kind == 3:  # smash a 32-bit length-like field near a step boundary
        pos = rng.randrange(16, len(buf) - 4)
        struct.pack_into("<I", buf, pos, rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF,
                                                      rng.randrange(1 << 32)]))
    elif kind == 4:  # random nsteps
        struct.pack_into("<I", buf, 12, rng.choice([0, 1, 9, 0xFFFFFFFF, rng.randrange(64)]))
    else:  # random op codes
        pos = 16
        while pos + 8 <= len(buf):
            if rng.random() < 0.5:
                struct.pack_into("<H", buf, pos, rng.randrange(max(KNOWN_OPS) + 2))
            step_len = struct.unpack_from("<I", buf, pos + 4)[0]
            if step_len == 0:
                break
            pos += step_len
    return bytes(buf)


def random_plan(rng: random.Random) -> bytes:
    body = rng.randbytes(rng.randint(0, 300))
    return struct.pack("<IHHII", P.PLAN_MAGIC, P.PLAN_VERSION, 0, 16 + len(body),
                       rng.randrange(8)) + body


def cases(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    base = base_plan()
    out = [base, base[:15], b"\0", rng.randbytes(100)]
    while len(out) < count:
        out.append(random_plan(rng) if rng.random() < 0.25 else mutate(rng, base))
    return out


# ---- worker (runs inside the sandbox namespaces) ----------------------------

def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            return os.waitstatus_to_exitcode(status), False
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), True


def run_case(exe_fd: int, plan: bytes) -> dict:
    from pyrunc.linux.initproc import _spawn

    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        pid = _spawn(exe_fd, child.fileno(), (), {})
    finally:
        child.close()
    result: dict = {"valid_ref": reference_valid(plan), "kind": None}
    with parent:
        parent.settimeout(5)
        try:
            parent.send(plan)
            data = parent.recv(P.SYNC_MSG.size)
            if data:
                kind, index, err, _, text = P.decode_sync(data)
                result.update(kind=kind, step=index, errno=err, text=text)
                if kind in (P.MSG_SYNC, P.MSG_IDMAP_REQ):
                    parent.send(P.encode_sync(P.MSG_ABORT))
        except (OSError, ValueError) as e:
            result["comm_error"] = repr(e)
    result["status"], result["hung"] = _wait(pid, 5)
    # Stage B of a valid plan with OP_FORK is re-parented to us (pid 1 here).
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    return result


def worker(seed: int, count: int) -> None:
    from pyrunc.linux.initproc import _sealed_copy

    exe_fd = _sealed_copy()
    for plan in cases(seed, count):
        print(json.dumps(run_case(exe_fd, plan)), flush=True)


# ---- the test ---------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_plan_reader_fuzz() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        ["unshare", "--mount", "--uts", "--ipc", "--net", "--pid", "--fork",
         "--propagation", "private", sys.executable, __file__, str(SEED), str(CASES)],
        check=False, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == CASES
    invalid = [r for r in results if not r["valid_ref"]]
    assert len(invalid) > CASES // 2  # the generator mostly makes broken plans
    for i, r in enumerate(results):
        assert not r["hung"], (i, r)
        assert r["status"] >= 0, f"case {i} killed by signal {-r['status']}: {r}"
        rejected = r["kind"] == P.MSG_ERROR and r.get("step") == -1
        if r["valid_ref"]:
            assert not rejected, (i, r)
        else:
            assert rejected and r["errno"] == errno.EBADMSG and r["status"] == 1, (i, r)


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]))
