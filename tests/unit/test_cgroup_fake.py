"""pyrunc.linux.cgroups against fake cgroupfs trees in a temp dir (no root needed).

A fake tree is plain directories and files, with a matching fake mountinfo.
Since a plain mkdir does not populate control files, :func:`populate` adds
them after ``create()``; since plain rmdir refuses non-empty directories,
``rmdir`` is patched to remove the fake files too.
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from pyrunc.errors import CgroupError, ConfigError
from pyrunc.linux import cgroups as cg
from pyrunc.linux.cgroups import base
from pyrunc.linux.cgroups.detect import CgroupMount, detect, hierarchy_dir

V1_CTRLS = ["cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd"]

FILES: dict[str, list[str]] = {
    "cpu": ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.idle", "cpu.stat"],
    "cpuacct": ["cpuacct.usage", "cpuacct.stat"],
    "cpuset": ["cpuset.cpus", "cpuset.mems"],
    "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
               "memory.swappiness", "memory.oom_control", "memory.usage_in_bytes", "memory.stat"],
    "devices": ["devices.allow", "devices.deny"],
    "freezer": ["freezer.state"],
    "blkio": ["blkio.bfq.weight", "blkio.throttle.read_bps_device"],
    "pids": ["pids.max", "pids.current"],
    "": ["cgroup.freeze", "cgroup.kill", "cgroup.controllers", "cgroup.subtree_control",
         "memory.max", "memory.swap.max", "memory.low", "memory.current", "pids.max", "cpu.max",
         "cpu.weight", "io.weight", "io.max", "cpuset.cpus", "cpuset.mems", "hugetlb.2MB.max",
         "memory.events", "cpu.stat", "memory.stat", "pids.current"],
}


def _line(n: int, mountpoint: Path, fstype: str, opts: str, root: str = "/") -> str:
    return f"{n} 1 0:{n} {root} {mountpoint} rw,relatime - {fstype} {fstype} {opts}"


def make_tree(tmp: Path, mode: str) -> tuple[Path, str, str]:
    """Build a fake cgroupfs; returns (root, mountinfo text, /proc/self/cgroup text)."""
    root = tmp / "cgroup"
    lines = ["1 0 8:1 / / rw - ext4 /dev/sda1 rw", f"2 1 0:2 / {root} rw - tmpfs tmpfs rw"]
    proc = []
    n = 10
    if mode in ("v1", "hybrid"):
        for i, ctrl in enumerate(V1_CTRLS):
            name = ctrl.replace("name=", "")
            mp = root / name
            mp.mkdir(parents=True)
            (mp / "cgroup.procs").write_text("")
            for c in ctrl.split(","):
                for f in FILES.get(c, []):
                    (mp / f).write_text("")
            if ctrl == "cpuset":
                (mp / "cpuset.cpus").write_text("0-3\n")
                (mp / "cpuset.mems").write_text("0\n")
            lines.append(_line(n + i, mp, "cgroup", "rw," + ctrl))
            proc.append(f"{i + 1}:{ctrl}:/" + ("user.slice" if ctrl == "memory" else ""))
    if mode in ("hybrid", "v2"):
        mp = root / "unified" if mode == "hybrid" else root
        mp.mkdir(parents=True, exist_ok=True)
        for f in ("cgroup.procs", "cgroup.subtree_control"):
            (mp / f).write_text("")
        controllers = "hugetlb\n" if mode == "hybrid" else "cpuset cpu io memory pids hugetlb\n"
        (mp / "cgroup.controllers").write_text(controllers)
        lines.append(_line(40, mp, "cgroup2", "rw"))
        proc.append("0::/" + ("system.slice/test.service" if mode == "v2" else "user.slice/s.scope"))
    return root, "\n".join(lines) + "\n", "\n".join(proc) + "\n"


def populate(m: cg.Manager) -> None:
    """Add the control files a real cgroupfs would create."""
    if isinstance(m, cg.V2Manager):
        targets = [(m.cg_path, "")]
    else:
        assert isinstance(m, cg.V1Manager)
        targets = [(d, c) for c, d in m.paths.items()]
        if m.unified:
            targets.append((m.unified, ""))
    for d, ctrl in targets:
        Path(d, "cgroup.procs").touch()
        if ctrl == "":
            # What the parent delegates; the fake mount delegates everything.
            mount = m.mount if isinstance(m, cg.V2Manager) else m.unified_mount
            assert mount is not None
            Path(d, "cgroup.controllers").write_text(Path(mount, "cgroup.controllers").read_text())
        for c in ctrl.split(","):
            for f in FILES.get(c, []):
                p = Path(d, f)
                if not p.exists():
                    p.write_text("")


@pytest.fixture(autouse=True)
def fake_rmdir(monkeypatch: pytest.MonkeyPatch) -> None:
    real = base.rmdir

    def rmdir(path: str) -> None:
        for name in os.listdir(path):
            p = os.path.join(path, name)
            if not os.path.isdir(p):
                os.unlink(p)
        real(path)

    monkeypatch.setattr(base, "rmdir", rmdir)


def manager(tmp: Path, mode: str, cgroups_path: str | None = "/pod/ctr", cid: str = "ctr") -> cg.Manager:
    root, mi, proc = make_tree(tmp, mode)
    return cg.manager_for(cgroups_path, cid, str(root), mountinfo=mi, proc_self_cgroup=proc)


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize("mode", ["v1", "hybrid", "v2"])
def test_detect_modes(tmp_path: Path, mode: str) -> None:
    root, mi, _ = make_tree(tmp_path, mode)
    layout = detect(str(root), mi)
    assert layout.mode == mode
    if mode != "v2":
        assert layout.v1["cpu"] is layout.v1["cpuacct"]
        assert "name=systemd" in layout.v1
    else:
        assert layout.v1 == {}


def test_detect_real_host_text_shapes() -> None:
    text = (
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    layout = detect("/sys/fs/cgroup", text)
    assert layout.mode == "hybrid"
    assert layout.unified is not None and layout.unified.mountpoint == "/sys/fs/cgroup/unified"
    v2 = detect("/sys/fs/cgroup", "30 1 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    assert v2.mode == "v2"


def test_detect_ignores_mounts_elsewhere_and_unescapes() -> None:
    text = (
        "32 31 0:29 / /other/cpu rw - cgroup cgroup rw,cpu\n"
        "33 31 0:30 / /cg/my\\040mem rw - cgroup cgroup rw,memory\n"
    )
    layout = detect("/cg", text)
    assert layout.mode == "v1"
    assert list(layout.v1) == ["memory"]
    assert layout.v1["memory"].mountpoint == "/cg/my mem"


def test_detect_nothing_mounted() -> None:
    with pytest.raises(OSError) as e:
        detect("/cg", "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n")
    assert e.value.errno == errno.ENOENT


# ---------------------------------------------------------------- path rules


def test_default_path_is_id_relative_to_own_cgroup(tmp_path: Path) -> None:
    m = manager(tmp_path, "v1", None, "abc")
    assert isinstance(m, cg.V1Manager)
    root = tmp_path / "cgroup"
    assert m.paths["memory"] == str(root / "memory/user.slice/abc")
    assert m.paths["pids"] == str(root / "pids/abc")
    assert m.paths["name=systemd"] == str(root / "systemd/abc")


def test_absolute_path_is_below_hierarchy_root(tmp_path: Path) -> None:
    m = manager(tmp_path, "v2", "/a/b", "x")
    assert m.dirs() == [str(tmp_path / "cgroup/a/b")]


def test_relative_path_v2_is_beside_own_cgroup(tmp_path: Path) -> None:
    # runc's cgroup2 rule: below the parent of the caller's (populated) cgroup.
    m = manager(tmp_path, "v2", "a/b", "x")
    assert m.dirs() == [str(tmp_path / "cgroup/system.slice/a/b")]
    m = manager(tmp_path / "default", "v2", None, "abc")
    assert m.dirs() == [str(tmp_path / "default/cgroup/system.slice/abc")]


def test_hybrid_default_path_v1_below_own_unified_beside_own(tmp_path: Path) -> None:
    m = manager(tmp_path, "hybrid", None, "abc")
    assert isinstance(m, cg.V1Manager)
    root = tmp_path / "cgroup"
    assert m.paths["memory"] == str(root / "memory/user.slice/abc")
    assert m.unified == str(root / "unified/user.slice/abc")


def test_beside_own_at_the_root_stays_at_the_root() -> None:
    mount = CgroupMount("/sys/fs/cgroup", "/", "cgroup2", ())
    assert hierarchy_dir(mount, "ctr", "/", beside_own=True) == "/sys/fs/cgroup/ctr"
    ns = CgroupMount("/sys/fs/cgroup", "/docker/abc", "cgroup2", ())
    assert hierarchy_dir(ns, "ctr", "/docker/abc", beside_own=True) == "/sys/fs/cgroup/ctr"
    assert hierarchy_dir(ns, "ctr", "/docker/abc/a/b", beside_own=True) == "/sys/fs/cgroup/a/ctr"


@pytest.mark.parametrize(("given", "expected"), [
    ("/../../etc", "etc"), ("../../x", "x"), ("/a/./b/../c", "a/c"), ("a//b/", "a/b"),
])
def test_path_cannot_escape(tmp_path: Path, given: str, expected: str) -> None:
    m = manager(tmp_path, "v1", given)
    assert isinstance(m, cg.V1Manager)
    pids_root = tmp_path / "cgroup/pids"
    assert m.paths["pids"] == str(pids_root / expected)


def test_mount_root_translation() -> None:
    mount = CgroupMount("/sys/fs/cgroup", "/docker/abc", "cgroup2", ())
    assert hierarchy_dir(mount, "ctr", "/docker/abc/sub") == "/sys/fs/cgroup/sub/ctr"
    assert hierarchy_dir(mount, "/x", "/whatever") == "/sys/fs/cgroup/x"


def test_hybrid_has_unified_path(tmp_path: Path) -> None:
    m = manager(tmp_path, "hybrid")
    assert isinstance(m, cg.V1Manager)
    assert m.mode == "hybrid"
    assert m.unified == str(tmp_path / "cgroup/unified/pod/ctr")


# ---------------------------------------------------------------- lifecycle


@pytest.mark.parametrize("mode", ["v1", "hybrid", "v2"])
def test_create_add_pid_destroy(tmp_path: Path, mode: str) -> None:
    m = manager(tmp_path, mode)
    assert not m.exists()
    m.create()
    populate(m)
    assert m.exists()
    assert all(os.path.isdir(d) for d in m.dirs())
    m.add_pid(4242)
    for d in m.dirs():
        assert Path(d, "cgroup.procs").read_text() == "4242"
    m.destroy()
    assert not m.exists()
    assert all(not os.path.exists(d) for d in m.dirs())
    # parents stay; destroying again is fine
    assert all(os.path.isdir(os.path.dirname(d)) for d in m.dirs())
    m.destroy()


def test_v1_create_copies_cpuset_from_parents(tmp_path: Path) -> None:
    root, mi, proc = make_tree(tmp_path, "v1")
    m = cg.manager_for("/pod/ctr", "ctr", str(root), mountinfo=mi, proc_self_cgroup=proc)
    assert isinstance(m, cg.V1Manager)
    cpuset = Path(m.paths["cpuset"])
    # what the kernel does: new cpuset dirs start with empty cpus/mems
    for d in (cpuset.parent, cpuset):
        d.mkdir(exist_ok=True)
        (d / "cpuset.cpus").write_text("")
        (d / "cpuset.mems").write_text("")
    m.create()
    assert (cpuset / "cpuset.cpus").read_text() == "0-3"
    assert (cpuset.parent / "cpuset.mems").read_text() == "0"


def test_v2_create_enables_controllers_in_ancestors(tmp_path: Path) -> None:
    m = manager(tmp_path, "v2", "/pod/ctr")
    root = tmp_path / "cgroup"
    (root / "pod").mkdir()
    (root / "pod/cgroup.controllers").write_text("cpu memory pids\n")
    (root / "pod/cgroup.subtree_control").write_text("")
    m.create()
    assert (root / "cgroup.subtree_control").read_text() == "+cpuset +cpu +io +memory +pids +hugetlb"
    assert (root / "pod/cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert not (root / "pod/ctr/cgroup.subtree_control").exists()


@pytest.mark.parametrize(("kind", "procs"), [
    ("domain", "4242\n"), ("domain threaded", ""), ("threaded", ""), ("domain invalid", ""),
])
def test_v2_create_leaves_populated_or_threaded_ancestors_alone(
        tmp_path: Path, kind: str, procs: str) -> None:
    # A populated cgroup (the caller's own, say) would accept the threaded
    # controllers and turn into a threaded root: it must not be written.
    m = manager(tmp_path, "v2", "/busy/ctr")
    root = tmp_path / "cgroup"
    busy = root / "busy"
    busy.mkdir()
    (busy / "cgroup.controllers").write_text("cpuset cpu memory pids\n")
    (busy / "cgroup.subtree_control").write_text("")
    (busy / "cgroup.type").write_text(kind + "\n")
    (busy / "cgroup.procs").write_text(procs)
    m.create()
    assert (busy / "cgroup.subtree_control").read_text() == ""
    assert (busy / "cgroup.type").read_text() == kind + "\n"
    assert (root / "cgroup.subtree_control").read_text() != ""   # the root still delegates


def test_v2_create_delegates_from_an_empty_domain(tmp_path: Path) -> None:
    m = manager(tmp_path, "v2", "/idle/ctr")
    idle = tmp_path / "cgroup/idle"
    idle.mkdir()
    (idle / "cgroup.controllers").write_text("cpu memory\n")
    (idle / "cgroup.subtree_control").write_text("")
    (idle / "cgroup.type").write_text("domain\n")
    (idle / "cgroup.procs").write_text("")
    m.create()
    assert (idle / "cgroup.subtree_control").read_text() == "+cpu +memory"


def test_to_state_roundtrip(tmp_path: Path) -> None:
    for mode in ("v1", "hybrid", "v2"):
        sub = tmp_path / mode
        sub.mkdir()
        m = manager(sub, mode)
        state = json.loads(json.dumps(m.to_state()))
        again = cg.manager_from_state(state)
        assert type(again) is type(m)
        assert again.to_state() == m.to_state()
        assert again.dirs() == m.dirs()
        assert again.mode == mode
    with pytest.raises(CgroupError):
        cg.manager_from_state({"mode": "v3"})


# ---------------------------------------------------------------- apply


RES: dict[str, Any] = {
    "memory": {"limit": 1048576, "swap": 2097152, "reservation": 524288},
    "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "1", "mems": "0"},
    "pids": {"limit": 32},
    "blockIO": {"weight": 100},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
    "devices": [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
}


def _read(d: str | None, name: str) -> str:
    assert d is not None
    return Path(d, name).read_text()


def test_apply_v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = manager(tmp_path, "v1")
    m.create()
    populate(m)
    # cpu.shares reads back what was written on a plain file, as the kernel would.
    v1_res = {k: v for k, v in RES.items() if k != "hugepageLimits"}
    warnings = m.apply(v1_res)
    assert _read(m.path("memory"), "memory.limit_in_bytes") == "1048576"
    assert _read(m.path("memory"), "memory.memsw.limit_in_bytes") == "2097152"
    assert _read(m.path("memory"), "memory.soft_limit_in_bytes") == "524288"
    assert _read(m.path("cpu"), "cpu.cfs_quota_us") == "50000"
    assert _read(m.path("cpuset"), "cpuset.cpus") == "1"
    assert _read(m.path("pids"), "pids.max") == "32"
    # blkio.weight does not exist here: the BFQ fallback is used
    assert _read(m.path("blkio"), "blkio.bfq.weight") == "100"
    # last write wins on a plain file: the final default rule
    assert _read(m.path("devices"), "devices.allow") == "c 10:200 rwm"
    assert warnings == []


def test_apply_v1_refuses_a_limit_without_its_controller(tmp_path: Path) -> None:
    # No hugetlb hierarchy in this v1 tree: refused before any write, naming the field.
    m = manager(tmp_path, "v1")
    m.create()
    populate(m)
    with pytest.raises(ConfigError, match=r"^linux\.resources\.hugepageLimits\[0\]: .*hugetlb"):
        m.apply(RES)
    assert _read(m.path("memory"), "memory.limit_in_bytes") == ""


def test_apply_hybrid_puts_hugetlb_in_unified(tmp_path: Path) -> None:
    m = manager(tmp_path, "hybrid")
    m.create()
    populate(m)
    warnings = m.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}], "pids": {"limit": 5}})
    assert warnings == []
    assert _read(m.path(""), "hugetlb.2MB.max") == "4194304"
    assert _read(m.path("pids"), "pids.max") == "5"


def test_apply_v2(tmp_path: Path) -> None:
    m = manager(tmp_path, "v2")
    m.create()
    populate(m)
    m.apply({**RES, "unified": {"memory.low": "4096"}})
    d = m.path()
    assert _read(d, "memory.max") == "1048576"
    assert _read(d, "memory.swap.max") == "1048576"
    assert _read(d, "memory.low") == "4096"  # unified overrides, written last
    assert _read(d, "cpu.weight") == "100"
    assert _read(d, "cpu.max") == "50000 100000"
    assert _read(d, "io.weight") == "910"  # io.bfq.weight absent: converted value
    assert _read(d, "hugetlb.2MB.max") == "0"
    assert _read(d, "pids.max") == "32"


def test_apply_error_names_file_value_and_keeps_errno(tmp_path: Path) -> None:
    m = manager(tmp_path, "v2")
    m.create()
    populate(m)
    d = m.path()
    assert d is not None
    os.unlink(os.path.join(d, "pids.max"))
    os.mkdir(os.path.join(d, "pids.max"))  # writing a directory fails with EISDIR
    with pytest.raises(CgroupError) as e:
        m.apply({"pids": {"limit": 123}})
    assert str(e.value) == f'write {d}/pids.max: "123": Is a directory'
    assert e.value.errno == errno.EISDIR  # type: ignore[attr-defined]
    os.rmdir(os.path.join(d, "pids.max"))


def test_apply_missing_file_is_enoent(tmp_path: Path) -> None:
    # The controller is there but the kernel lacks the file: refused naming the field.
    m = manager(tmp_path, "v2")
    m.create()
    populate(m)
    d = m.path()
    assert d is not None
    os.unlink(os.path.join(d, "memory.max"))
    with pytest.raises(CgroupError) as e:
        m.apply({"memory": {"limit": 1000}})
    assert e.value.errno == errno.ENOENT  # type: ignore[attr-defined]
    assert str(e.value) == (f"linux.resources.memory.limit: cannot set memory.max: {d}/memory.max "
                            "does not exist (not supported by this kernel)")


def test_apply_retries_pairs_on_einval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = manager(tmp_path, "v1")
    m.create()
    populate(m)
    real = base.write_file
    order: list[str] = []
    failed = [False]

    def write(path: str, value: str) -> None:
        name = os.path.basename(path)
        if name == "memory.limit_in_bytes" and not failed[0]:
            failed[0] = True
            err = OSError(errno.EINVAL, "Invalid argument")
            raise base.cgroup_error("write", path, err, value)
        order.append(name)
        real(path, value)

    monkeypatch.setattr(base, "write_file", write)
    m.apply({"memory": {"limit": 1048576, "swap": 2097152}}, devices=False)
    assert order == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_check_before_update(tmp_path: Path) -> None:
    m = manager(tmp_path, "v2")
    m.create()
    populate(m)
    Path(m.path() or "", "memory.current").write_text("5000000\n")
    with pytest.raises(CgroupError, match="below current usage"):
        m.apply({"memory": {"limit": 1000000, "checkBeforeUpdate": True}})
    m.apply({"memory": {"limit": 9000000, "checkBeforeUpdate": True}})


def test_plan_is_exposed_without_effects(tmp_path: Path) -> None:
    m = manager(tmp_path, "v1")
    p = m.plan({"pids": {"limit": 1}}, devices=False)
    assert [(w.controller, w.filename, w.value) for w in p.writes] == [("pids", "pids.max", "1")]
    assert not m.exists()


# ---------------------------------------------------------------- freezer, pids, kill, stats


def test_freeze_v1(tmp_path: Path) -> None:
    m = manager(tmp_path, "v1")
    m.create()
    populate(m)
    assert m.state() == "thawed"
    m.freeze()
    assert _read(m.path("freezer"), "freezer.state") == "FROZEN"
    assert m.state() == "frozen"
    m.thaw()
    assert m.state() == "thawed"


def test_freeze_v2_waits_for_events(tmp_path: Path) -> None:
    m = manager(tmp_path, "v2")
    m.create()
    populate(m)
    d = m.path() or ""
    Path(d, "cgroup.events").write_text("populated 1\nfrozen 0\n")
    m.freeze_timeout = 0.05
    with pytest.raises(CgroupError, match="timed out") as e:
        m.freeze()
    assert e.value.errno == errno.ETIMEDOUT  # type: ignore[attr-defined]
    assert _read(d, "cgroup.freeze") == "0"  # rolled back
    Path(d, "cgroup.events").write_text("populated 1\nfrozen 1\n")
    m.freeze()
    assert m.state() == "frozen"


def test_pids_recursive(tmp_path: Path) -> None:
    m = manager(tmp_path, "v2")
    m.create()
    populate(m)
    d = m.path() or ""
    Path(d, "cgroup.procs").write_text("10\n11\n")
    Path(d, "sub").mkdir()
    Path(d, "sub", "cgroup.procs").write_text("12\n")
    assert sorted(m.pids()) == [10, 11, 12]
    m.destroy()
    assert not os.path.exists(d)


def test_kill_all_uses_cgroup_kill(tmp_path: Path) -> None:
    for mode in ("v2", "hybrid"):
        sub = tmp_path / mode
        sub.mkdir()
        m = manager(sub, mode)
        m.create()
        populate(m)
        m.kill_all(signal.SIGKILL)
        kill_dir = m.path("")
        assert _read(kill_dir, "cgroup.kill") == "1"


def test_kill_all_signals_each_pid_frozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = manager(tmp_path, "v1")
    m.create()
    populate(m)
    Path(m.path("freezer") or "", "cgroup.procs").write_text("77\n78\n")
    sent: list[tuple[int, int, str]] = []

    def kill(pid: int, sig: int) -> None:
        sent.append((pid, sig, _read(m.path("freezer"), "freezer.state")))
        if pid == 78:
            raise ProcessLookupError

    monkeypatch.setattr(os, "kill", kill)
    m.kill_all(signal.SIGTERM)
    assert sent == [(77, signal.SIGTERM, "FROZEN"), (78, signal.SIGTERM, "FROZEN")]
    assert m.state() == "thawed"


def test_stats_v2_shape(tmp_path: Path) -> None:
    m = manager(tmp_path, "v2")
    m.create()
    populate(m)
    d = m.path() or ""
    Path(d, "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\n")
    Path(d, "memory.current").write_text("4096\n")
    Path(d, "memory.max").write_text("max\n")
    Path(d, "memory.events").write_text("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n")
    Path(d, "memory.stat").write_text("anon 4096\nfile 8192\n")
    Path(d, "pids.current").write_text("3\n")
    Path(d, "pids.max").write_text("max\n")
    s = m.stats()
    assert set(s) == {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"}
    assert s["cpu"]["usage"] == {"total": 1500000, "user": 1000000, "kernel": 500000}
    assert s["cpu"]["throttling"] == {"periods": 3}
    assert s["memory"]["usage"] == {"limit": 2**64 - 1, "usage": 4096, "failcnt": 2}
    assert s["memory"]["cache"] == 8192
    assert s["memory"]["raw"] == {"anon": 4096, "file": 8192}
    assert s["memory"]["event_count"]["oom_kill"] == 1
    assert s["pids"] == {"current": 3}
    assert s["hugetlb"] == {"2MB": {"failcnt": 0}}
    json.dumps(s)


def test_stats_v1_shape(tmp_path: Path) -> None:
    m = manager(tmp_path, "v1")
    m.create()
    populate(m)
    Path(m.path("cpuacct") or "", "cpuacct.usage").write_text("123\n")
    Path(m.path("cpuacct") or "", "cpuacct.stat").write_text("user 2\nsystem 1\n")
    Path(m.path("memory") or "", "memory.limit_in_bytes").write_text("1048576\n")
    Path(m.path("memory") or "", "memory.stat").write_text("cache 10\nrss 20\n")
    Path(m.path("pids") or "", "pids.current").write_text("2\n")
    Path(m.path("pids") or "", "pids.max").write_text("10\n")
    Path(m.path("cpuset") or "", "cpuset.cpus").write_text("0-1,3\n")
    s = m.stats()
    assert s["cpu"]["usage"]["total"] == 123
    assert s["cpu"]["usage"]["user"] == 20_000_000
    assert s["cpu"]["usage"]["kernel"] == 10_000_000
    assert s["memory"]["usage"]["limit"] == 1048576
    assert s["memory"]["cache"] == 10
    assert s["pids"] == {"current": 2, "limit": 10}
    assert s["cpuset"]["cpus"] == [0, 1, 3]


def test_destroy_reports_rmdir_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = manager(tmp_path, "v2")
    m.create()

    def busy(path: str) -> None:
        raise base.cgroup_error("rmdir", path, OSError(errno.EBUSY, "busy"))

    monkeypatch.setattr(base, "rmdir", busy)
    monkeypatch.setattr(base, "try_rmdir", lambda _path: False)
    with pytest.raises(CgroupError, match="rmdir .*: Device or resource busy"):
        m.destroy()
    monkeypatch.undo()
    shutil.rmtree(m.dirs()[0])


class _StagedPoller:
    """Stands in for select.poll on a fake memory.events: each poll writes the
    next stage of the file and reports a change (kernfs's POLLPRI); once the
    stages run out it times out."""

    def __init__(self, path: Path, stages: list[str]) -> None:
        self.path, self.stages, self.polls = path, list(stages), 0

    def register(self, fd: int, mask: int) -> None:
        self.fd = fd

    def poll(self, ms: int | None) -> list[tuple[int, int]]:
        self.polls += 1
        if not self.stages:
            if ms is not None:
                time.sleep(ms / 1000)
            return []
        self.path.write_text(self.stages.pop(0))
        return [(self.fd, select.POLLPRI)]


@pytest.mark.parametrize("timeout", [5.0, None])
def test_v2_oom_wait_passes_other_memory_events_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timeout: float | None) -> None:
    # What the kernel does on an OOM kill: `max` (and `oom`) move first,
    # `oom_kill` about 10 ms later; the first wake-up is not the event.
    from pyrunc.linux.cgroups.fs_v2 import V2OOMNotifier

    events = tmp_path / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
    poller = _StagedPoller(events, [
        "low 0\nhigh 0\nmax 1\noom 0\noom_kill 0\n",
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n",
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    ])
    monkeypatch.setattr(select, "poll", lambda: poller)
    with V2OOMNotifier(str(tmp_path)) as n:
        assert n.wait(timeout) is True
        assert poller.polls == 3
        if timeout is not None:
            assert n.wait(0.05) is False   # nothing more: the deadline ends the wait


def test_v2_oom_wait_times_out_without_oom_kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyrunc.linux.cgroups.fs_v2 import V2OOMNotifier

    events = tmp_path / "memory.events"
    events.write_text("max 0\noom_kill 0\n")
    poller = _StagedPoller(events, ["max 1\noom_kill 0\n", "max 2\noom_kill 0\n"])
    monkeypatch.setattr(select, "poll", lambda: poller)
    with V2OOMNotifier(str(tmp_path)) as n:
        assert n.wait(0.2) is False
        assert poller.polls == 3


class _CgroupTreePoller:
    """Stands in for select.poll on a fake cgroup ``parent/child`` and its
    siblings.  Each stage first writes ``changes`` (paths below the parent:
    its own memory.events, the siblings') and then either writes the child's
    memory.events and reports a change, or, for ``None``, removes the child
    (systemd removing an emptied scope) and reports nothing: kernfs wakes no
    poller on removal.  Once the stages run out, polls time out (a
    notifier that never notices the removal fails the test)."""

    def __init__(self, parent: Path, child: Path, stages: list[tuple[str | None, dict[str, str]]]) -> None:
        self.parent, self.child, self.stages, self.polls = parent, child, list(stages), 0

    def register(self, fd: int, mask: int) -> None:
        self.fd = fd

    def poll(self, ms: int | None) -> list[tuple[int, int]]:
        self.polls += 1
        assert self.polls < 100, "the notifier never noticed the removal"
        if not self.stages:
            time.sleep((ms or 0) / 1000)
            return []
        own, changes = self.stages.pop(0)
        for rel, text in changes.items():
            (self.parent / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.parent / rel).write_text(text)
        if own is None:
            (self.child / "memory.events").unlink()
            return []
        (self.child / "memory.events").write_text(own)
        return [(self.fd, select.POLLPRI)]


def _kills(n: int) -> str:
    return f"low 0\nmax {n}\noom {n}\noom_kill {n}\n"


AT_LIMIT = "low 0\nmax 1\noom 1\noom_kill 0\n"


@pytest.mark.parametrize(("stages", "events"), [
    # removed without a wake-up while the parent counts one more kill: ours
    ([(None, {"memory.events": _kills(4)})], 1),
    # seen at its limit first, then the same
    ([(AT_LIMIT, {}), (None, {"memory.events": _kills(4)})], 1),
    # removed, no kill anywhere below the parent
    ([(AT_LIMIT, {}), (None, {})], 0),
    # the parent's new kill is a sibling's
    ([(None, {"memory.events": _kills(4), "a/memory.events": _kills(2)})], 0),
    # two new kills, one a sibling's
    ([(None, {"memory.events": _kills(5), "a/memory.events": _kills(2)})], 1),
    # the kill is in a sibling that appeared meanwhile
    ([(None, {"memory.events": _kills(4), "b/memory.events": _kills(1)})], 0),
    # ... or in one that was removed and made again under the same name
    ([(None, {"memory.events": _kills(4), "a/memory.events": _kills(0), "c/memory.events": _kills(1)})], 0),
    # the cgroup's own kill, seen and reported, is not reported again at removal
    ([(_kills(1), {"memory.events": _kills(4)}), (None, {})], 1),
])
def test_v2_oom_kill_counted_by_the_parent_when_the_cgroup_goes_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        stages: list[tuple[str | None, dict[str, str]]], events: int) -> None:
    from pyrunc.linux.cgroups.fs_v2 import V2OOMNotifier

    (tmp_path / "memory.events").write_text(_kills(3))
    for name, count in (("a", 1), ("c", 2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "memory.events").write_text(_kills(count))
    child = tmp_path / "child"
    child.mkdir()
    (child / "memory.events").write_text(_kills(0))
    poller = _CgroupTreePoller(tmp_path, child, stages)
    monkeypatch.setattr(select, "poll", lambda: poller)
    seen = 0
    with V2OOMNotifier(str(child)) as n:
        with pytest.raises(EOFError):
            while True:
                seen += n.wait(None)
    assert seen == events


def test_v2_oom_removal_below_a_parent_without_memory_events(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The root cgroup has no memory.events: removal just ends the wait.
    from pyrunc.linux.cgroups.fs_v2 import V2OOMNotifier

    child = tmp_path / "child"
    child.mkdir()
    (child / "memory.events").write_text(_kills(0))
    poller = _CgroupTreePoller(tmp_path, child, [(None, {})])
    monkeypatch.setattr(select, "poll", lambda: poller)
    with V2OOMNotifier(str(child)) as n, pytest.raises(EOFError):
        n.wait(None)
