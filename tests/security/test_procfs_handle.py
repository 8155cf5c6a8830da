"""pyrunc-init's procfs handle is a private, detached procfs (CVE-2025-52881).

At startup pyrunc-init makes its procfs handle with fsopen("proc") +
fsmount, a procfs instance on a mount that no mount namespace holds; if the
kernel refuses, a detached OPEN_TREE_CLONE copy of /proc; if that is refused
too, the host's /proc itself.  PYRUNC_INIT_PROCFS=clone|host selects a
fallback directly, and every test here runs with each kind:

* the handle shows up in no mountinfo (host, test process, container);
* a bind of another procfs file over a sysctl in the mount namespace
  pyrunc-init starts in does not redirect the sysctl write (with the
  private handles the write reaches the real sysctl; with the host's /proc
  the mount is noticed and the write refused, never redirected);
* what goes through the handle keeps working: sysctls, timens_offsets in a
  new pid namespace, oom_score_adj, the exec.fifo reopen of create/start.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from pyrunc.linux.initproc import InitError
from pyrunc.plan.protocol import OP_TIMENS_OFFSETS, OP_UNSHARE, OP_WRITE_PROC, step
from tests.conftest import needs_root, pyrunc_only
from tests.integration.test_init_protocol import (  # noqa: F401  (fixtures)
    CLONE_NEWTIME,
    NAMESPACES,
    container,
    root,
    run,
    subreaper,
)
from tests.security.conftest import config_for

pytestmark = needs_root

PROC_SUPER_MAGIC = 0x9FA0
O_PATH = 0o10000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
CLONE_NEWNS = 0x00020000
KINDS = ["private", "clone", "host"]

_libc = ctypes.CDLL(None, use_errno=True)


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 112)]


def fs_type(path: str) -> int:
    buf = _Statfs()
    if _libc.statfs(path.encode(), ctypes.byref(buf)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    return int(buf.f_type) & 0xFFFFFFFF


@pytest.fixture(params=KINDS)
def kind(request, monkeypatch) -> str:
    """PYRUNC_INIT_PROCFS for pyrunc-init, both for run_init and the CLI."""
    monkeypatch.setenv("PYRUNC_INIT_PROCFS", request.param)
    return str(request.param)


def mount_ids(mountinfo: str) -> set[int]:
    return {int(line.split()[0]) for line in Path(mountinfo).read_text().splitlines()}


def proc_mounts(mountinfo: str) -> list[str]:
    return [line.split(" - ")[0].split()[4] for line in Path(mountinfo).read_text().splitlines()
            if line.split(" - ")[1].split()[0] == "proc"]


def procfs_handles(pid: int) -> list[int]:
    """Mount ids of the O_PATH fds of PID that are procfs directories."""
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        info = Path(f"/proc/{pid}/fdinfo/{name}").read_text()
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        if not int(fields["flags"].strip(), 8) & O_PATH:
            continue
        link = f"/proc/{pid}/fd/{name}"
        try:
            if fs_type(link) == PROC_SUPER_MAGIC and os.path.isdir(link):
                found.append(int(fields["mnt_id"]))
        except OSError:
            continue
    return found


# ---- (a) the handle is in no mount table ------------------------------------


@pyrunc_only("looks for pyrunc-init's procfs handle fd; runc 1.1.5 holds none")
def test_handle_is_in_no_mount_table(runtime, bundle, rootfs, kind):
    cfg = config_for(rootfs, ["true"])
    cid = runtime.new_id("prochandle")
    runtime("create", "-b", str(bundle(config=cfg)), cid, check=True)
    pid = runtime.state(cid)["pid"]
    handles = procfs_handles(pid)
    assert len(handles) == 1, handles
    tables = {f"/proc/{p}/mountinfo" for p in (1, os.getpid(), pid)}
    seen = set().union(*(mount_ids(t) for t in tables))
    if kind == "host":
        # Control: the previous handle is the host's /proc mount.
        assert handles[0] in seen
    else:
        assert handles[0] not in seen
    # The container has the proc mount of its config (and the read-only
    # re-binds of its subdirectories) and nothing more.
    points = proc_mounts(f"/proc/{pid}/mountinfo")
    assert points.count("/proc") == 1, points
    assert all(p.startswith("/proc/") for p in points if p != "/proc"), points
    runtime("start", cid, check=True)


# ---- (b) a bind over the host's /proc does not redirect the write -----------


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _run_in_own_mount_ns(steps, decoy: str, target: str) -> dict:
    """Fork; the child gets a private mount namespace, binds DECOY over
    TARGET there (never in the test's own namespace) and runs STEPS with
    pyrunc-init starting in that namespace.  Returns what happened."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        out: dict = {}
        try:
            from pyrunc._shim import lib

            lib.pyrunc_set_child_subreaper(1)
            _check(_libc.unshare(CLONE_NEWNS), "unshare")
            _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make-rprivate")
            _check(_libc.mount(decoy.encode(), target.encode(), None, MS_BIND, None), "bind")
            try:
                res = run(steps)
                out = {"status": res.status, "stdout": res.stdout, "stderr": res.stderr}
            except InitError as exc:
                out = {"init_error": str(exc), "errno": exc.errno}
        except BaseException as exc:  # noqa: BLE001
            out = {"exception": repr(exc)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def test_bind_over_host_proc_does_not_redirect_sysctl(root: Path, kind: str) -> None:  # noqa: F811
    """The CVE-2025-52881 shape: another procfs file (here the
    oom_score_adj of a sleeping process of ours, so a redirected write is
    harmless and easy to see) is bound over /proc/sys/kernel/hostname in the mount namespace
    pyrunc-init starts in.  It passes an fstatfs check, so only the handle
    decides where the write lands.  (kernel.hostname is one file for every
    UTS namespace; a net.* sysctl would not do: the container's net
    namespace has its own dentries, and the bind is not on them.)"""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        decoy = f"/proc/{sleeper.pid}/oom_score_adj"
        before = Path(decoy).read_text()
        steps = container(root, "hostname", after_pivot=[
            step(OP_WRITE_PROC, strs=["sys/kernel/hostname", "777"], what="sysctl")])
        out = _run_in_own_mount_ns(steps, decoy, "/proc/sys/kernel/hostname")
        after = Path(decoy).read_text()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert after == before != "777\n", (after, out)
    assert "exception" not in out, out
    if kind == "host":
        # The host's /proc sees the bind: the write is refused, not redirected.
        assert out.get("errno") == errno.EXDEV, out
    else:
        # Nothing is mounted below the private handle: the container's
        # UTS namespace got the name.
        assert (out.get("status"), out.get("stdout")) == (0, "777\n"), out


# ---- (c) every use of the handle works with each kind -----------------------


def test_sysctl_and_timens_in_new_pid_namespace(root: Path, kind: str) -> None:  # noqa: F811
    """timens_offsets and a sysctl through a handle made in the host's pid
    namespace, by a process that then forks into a new one."""
    steps = container(root, "cut -d. -f1 /proc/uptime; cat /proc/sys/net/ipv4/ip_forward; echo $$",
                      before_pivot=[step(OP_WRITE_PROC, strs=["sys/net/ipv4/ip_forward", "1"],
                                         what="sysctl")])
    steps[0:1] = [step(OP_UNSHARE, NAMESPACES | CLONE_NEWTIME, what="unshare"),
                  step(OP_TIMENS_OFFSETS, 0, 0, 10 * 86400, 0, what="time offsets")]
    res = run(steps)
    assert res.status == 0, res.stderr
    uptime, forward, pid = res.stdout.split()
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert int(uptime) >= 10 * 86400 + int(host_uptime) - 5
    assert (forward, pid) == ("1", "1")


def test_create_start_oom_score_and_sysctl(runtime, bundle, rootfs, kind):
    """exec.fifo reopen (self/fd/N), oom_score_adj and a sysctl via the CLI."""
    cfg = config_for(rootfs, ["sh", "-c", "cat /proc/self/oom_score_adj "
                              "/proc/sys/net/ipv4/ip_forward; sleep 5"], oomScoreAdj=123)
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cid = runtime.new_id("prockind")
    out = Path(runtime.root.parent / f"{cid}.out")
    with open(out, "wb") as f:
        runtime("create", "-b", str(bundle(config=cfg)), cid, check=True, stdout=f)
    assert runtime.state(cid)["status"] == "created"
    runtime("start", cid, check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(out.read_bytes().split()) < 2:
        time.sleep(0.05)
    assert out.read_bytes().split() == [b"123", b"1"]
    runtime("kill", cid, "KILL")
