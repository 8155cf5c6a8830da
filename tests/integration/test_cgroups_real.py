"""pyrunc.linux.cgroups on the real host (root): limits, freeze, kill, OOM, cleanup.

Every cgroup is named pyrunc-test-<random> and is relative: below this
process's own cgroup in v1 hierarchies (so a memory cgroup nests under any
limit we already run in), beside it on cgroup2 (runc's rule).  Limits are
applied before any process joins, processes are trivial, and everything is removed in ``finally``; the last check walks
every mounted hierarchy for leftovers.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrunc.errors import CgroupError
from pyrunc.linux import cgroups as cg
from tests.helpers import cgroupfs

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup"), reason="needs root and cgroupfs")


def _mounts() -> list[str]:
    layout = cg.detect()
    mps = {m.mountpoint for m in layout.v1.values()}
    if layout.unified is not None:
        mps.add(layout.unified.mountpoint)
    return sorted(mps)


def _leftovers(name: str) -> list[str]:
    found: list[str] = []
    for mp in _mounts():
        for dirpath, dirnames, _ in os.walk(mp):
            found.extend(os.path.join(dirpath, d) for d in dirnames if d.startswith(name))
    return found


@pytest.fixture
def name() -> Iterator[str]:
    n = f"pyrunc-test-{uuid.uuid4().hex[:10]}"
    yield n
    assert _leftovers(n) == []


@pytest.fixture
def manager(name: str) -> Iterator[cg.Manager]:
    m = cg.manager_for(name, "unused")
    try:
        yield m
    finally:
        try:
            m.kill_all(signal.SIGKILL)
        except CgroupError:
            pass
        for _ in range(100):
            if not m.pids():
                break
            os.sched_yield()
        m.destroy()


def _sleep() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL)


def _read(m: cg.Manager, controller: str, filename: str) -> str:
    d = m.path(controller)
    assert d is not None
    return Path(d, filename).read_text().strip()


def _proc_state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def test_detects_this_host() -> None:
    layout = cg.detect()
    assert layout.mode in ("v1", "hybrid", "v2")
    m = cg.manager_for("x", "y")
    assert m.mode == layout.mode


def test_limits_freeze_kill_destroy(manager: cg.Manager) -> None:
    cgroupfs.require("cpuset")
    manager.create()
    warnings = manager.apply({
        "memory": {"limit": 32 << 20, "swap": 32 << 20},
        "pids": {"limit": 16},
        "cpu": {"cpus": "0", "mems": "0", "shares": 512, "quota": 20000, "period": 100000},
    })
    assert not [w for w in warnings if "memory" in w or "pids" in w]
    proc = _sleep()
    try:
        manager.add_pid(proc.pid)
        assert manager.pids() == [proc.pid]
        if manager.mode == "v2":
            assert _read(manager, "", "memory.max") == str(32 << 20)
            assert _read(manager, "", "memory.swap.max") == "0"
            assert _read(manager, "", "pids.max") == "16"
            assert _read(manager, "", "cpu.max") == "20000 100000"
        else:
            assert _read(manager, "memory", "memory.limit_in_bytes") == str(32 << 20)
            assert _read(manager, "pids", "pids.max") == "16"
            assert _read(manager, "cpuset", "cpuset.cpus") == "0"
            assert _read(manager, "cpu", "cpu.cfs_quota_us") == "20000"
            assert _read(manager, "cpu", "cpu.shares") == "512"
            own = Path(f"/proc/{proc.pid}/cgroup").read_text()
            assert manager.path("memory").rsplit("/", 1)[1] in own  # type: ignore[union-attr]

        manager.freeze()
        assert manager.state() == "frozen"
        if manager.mode != "v2" and manager.path("freezer"):
            assert _read(manager, "freezer", "freezer.state") == "FROZEN"
            assert _proc_state(proc.pid) == "D"
        manager.thaw()
        assert manager.state() == "thawed"
        assert _proc_state(proc.pid) in ("S", "R")

        stats = manager.stats()
        assert stats["pids"]["current"] == 1
        assert stats["memory"]["usage"]["limit"] == 32 << 20

        manager.kill_all(signal.SIGKILL)
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_kill_all_other_signal_freezes_around(manager: cg.Manager) -> None:
    manager.create()
    manager.apply({"pids": {"limit": 8}})
    procs = [_sleep(), _sleep()]
    try:
        for p in procs:
            manager.add_pid(p.pid)
        manager.kill_all(signal.SIGTERM)
        assert [p.wait(5) for p in procs] == [-signal.SIGTERM, -signal.SIGTERM]
        assert manager.state() == "thawed"
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_rejected_value_names_file_and_errno(manager: cg.Manager) -> None:
    cgroupfs.require("cpuset")
    manager.create()
    with pytest.raises(CgroupError) as e:
        manager.apply({"cpu": {"cpus": "999"}})
    d = manager.path("cpuset") if manager.mode != "v2" else manager.path("")
    code = e.value.errno  # type: ignore[attr-defined]
    assert code in (errno.EINVAL, errno.ERANGE)
    assert str(e.value) == f'write {d}/cpuset.cpus: "999": {os.strerror(code)}'


def test_hugetlb_in_hybrid_unified(manager: cg.Manager) -> None:
    if manager.mode != "hybrid":
        pytest.skip("hybrid host only")
    manager.create()
    warnings = manager.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})
    unified = manager.path("")
    assert unified is not None
    if os.path.exists(os.path.join(unified, "hugetlb.2MB.max")):
        assert warnings == []
        assert _read(manager, "", "hugetlb.2MB.max") == "0"


def test_oom_event(manager: cg.Manager) -> None:
    manager.create()
    limit = 16 << 20
    manager.apply({"memory": {"limit": limit, "swap": limit}, "pids": {"limit": 4}})
    code = "import sys; sys.stdin.read(1); b = bytearray(128 << 20); b[::4096] = b'x' * len(b[::4096])"
    proc = subprocess.Popen([sys.executable, "-S", "-c", code], stdin=subprocess.PIPE)
    try:
        manager.add_pid(proc.pid)
        with manager.oom_events() as events:
            assert proc.stdin is not None
            proc.stdin.write(b"x")
            proc.stdin.flush()
            assert events.wait(10)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_destroy_missing_is_fine(name: str) -> None:
    m = cg.manager_for(name, "unused")
    m.destroy()
    assert not m.exists()
    m.create()
    try:
        assert m.exists()
        again = cg.manager_from_state(m.to_state())
        assert again.dirs() == m.dirs()
    finally:
        m.destroy()
    assert not m.exists()


def test_destroy_removes_nested_sub_cgroups(manager: cg.Manager, name: str) -> None:
    """A container may make sub-cgroups (exec --cgroup, systemd inside): the
    first rmdir fails with EBUSY and destroy then removes them deepest first."""
    manager.create()
    for d in manager.dirs():
        os.makedirs(os.path.join(d, "sub", "deeper"))
    manager.destroy()
    assert not manager.exists()
    assert _leftovers(name) == []
