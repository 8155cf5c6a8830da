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
            P.OP_CHECK_EXEC: 2, P.OP_EXEC: 1, P.OP_HOOK: 1, P.OP_MOUNT_SETATTR: 1,
            P.OP_MOUNT_IDMAP: 1}
BINARY = {P.OP_WRITE_PROC: {1}, P.OP_SETGROUPS: {0}}
STEP_HEADER = struct.Struct("<HHI" + "Q" * P.STEP_NINTS)


def _step_ok(op: int, ints: tuple[int, ...], strs: list[bytes]) -> bool:
    if op not in KNOWN_OPS or len(strs) < MIN_STRS.get(op, 0):
        return False
    if op == P.OP_EXEC:
        argc, envc = ints[0], ints[1]
        if argc < 1 or argc > len(strs) or envc > len(strs) - argc:
            return False
        return not any(b"\0" in s for s in strs)
    if op == P.OP_SETGROUPS and len(strs[0]) % 4:
        return False
    if op == P.OP_SYNC and ints[1] > P.HOOK_STATE_SLOTS:
        return False
    if op == P.OP_HOOK:
        argc, envc = ints[1], ints[2]
        if argc > len(strs) - 1 or envc > len(strs) - 1 - argc or ints[3] >= P.HOOK_STATE_SLOTS:
            return False
        if not strs[0].startswith(b"/"):
            return False
        return not any(b"\0" in s for s in strs)
    binary = BINARY.get(op, set())
    return not any(b"\0" in s for i, s in enumerate(strs) if i < 8 and i not in binary)


def reference_valid(data: bytes) -> bool:
    if len(data) < 16 or len(data) > P.PLAN_MAX_LEN:
        return False
    magic, version, reserved, total, nsteps = struct.unpack_from("<IHHII", data)
    if (magic, version, reserved, total) != (P.PLAN_MAGIC, P.PLAN_VERSION, 0, len(data)):
        return False
    if nsteps > (len(data) - 16) // STEP_HEADER.size:
        return False
    pos = 16
    for _ in range(nsteps):
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
        s(P.OP_READY),
    ])


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
                struct.pack_into("<H", buf, pos, rng.randrange(48))
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
