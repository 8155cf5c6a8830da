"""Resource control on real containers: limits, pause/resume, update, ps, events, kill --all.

Every container gets ``linux.cgroupsPath = /pyrunc-test/<id>``, so its
cgroup directories can be found (and checked for leaks) by the id.  Memory
hogs cap themselves at 128 MiB whatever the limit: the test VMs have no swap.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    OTHER_RUNTIME,
    SYSTEMD_CGROUP,
    cgroup_dirs_named,
    cgroups_path_for,
    error_line,
    needs_root,
    runtime_env,
)
from tests.helpers import cgroupfs
from tests.helpers.cgroupfs import CgroupFiles

pytestmark = needs_root

MiB = 1 << 20

# Doubles a string until it holds 128 MiB (or the shell is killed first).
HOG = "s=xxxxxxxxxxxxxxxx; while [ ${#s} -lt 134217728 ]; do s=$s$s; done; echo survived"
BUSY = "while :; do :; done"

CGROUP_MOUNT = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}




def make(rt, bundle, args: list[str], resources: dict[str, Any] | None = None,
         cgroup_mount: bool = False) -> tuple[str, Path]:
    """A new container id and a bundle whose cgroup is /pyrunc-test/<id>."""
    cid = rt.new_id("res")
    cfg = bundle.config(args)
    cfg["linux"]["cgroupsPath"] = cgroups_path_for("pyrunc-test", cid)[0]
    if resources is not None:
        cfg["linux"]["resources"] = resources
    if cgroup_mount:
        cfg["mounts"].append(CGROUP_MOUNT)
    return cid, bundle(config=cfg)


def cg(cid: str) -> CgroupFiles:
    """The container's cgroup files (v1, hybrid or v2), by its cgroupsPath."""
    return CgroupFiles.of_path(cgroups_path_for("pyrunc-test", cid)[1])


def read_cg(controller: str, cid: str, name: str) -> str:
    """A file whose name is the same on v1 and v2 (pids.max, cgroup.procs, ...)."""
    return cg(cid).read(controller, name)


def procs_empty(cid: str) -> bool:
    """No process left in the container's cgroup.  With the systemd driver a
    missing cgroup counts too: systemd removes a scope as soon as it is empty."""
    try:
        return read_cg("pids", cid, "cgroup.procs") == ""
    except FileNotFoundError:
        if SYSTEMD_CGROUP:
            return True
        raise


def runc_115() -> bool:
    """runc 1.1.5 converts cpu shares to weight linearly (newer runc, pyrunc: quadratic)."""
    other = (OTHER_RUNTIME or "")
    if not other:
        return False
    out = subprocess.run([*other.split(), "--version"], capture_output=True, text=True).stdout
    return "version 1.1." in out or "version 1.0." in out


def expect_cpu_shares(cid: str, shares: int) -> None:
    name, value = cg(cid).cpu_shares_file()
    if name == "cpu.shares":
        assert value == shares
    else:
        assert value == cgroupfs.expected_cpu_weight(shares, runc_115()), (name, value, shares)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def wait_for(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def detached(rt, *args: str) -> None:
    """create / run -d: the container keeps the stdio it inherits, so no pipes
    (a captured stdout would stay open until the container exits)."""
    import tempfile

    with tempfile.TemporaryFile() as err:
        proc = rt(*args, stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        assert proc.returncode == 0, f"{args} failed ({proc.returncode}): {err.read()!r}"


def start_detached(rt, bundle, args: list[str], **kw: Any) -> tuple[str, int]:
    cid, b = make(rt, bundle, args, **kw)
    detached(rt, "run", "-d", "-b", str(b), cid)
    return cid, rt.state(cid)["pid"]


def stored_resources(rt, cid: str) -> dict[str, Any] | None:
    """The resources pyrunc recorded in state.json (None for another runtime,
    whose state.json is its own business)."""
    if OTHER_RUNTIME:
        return None
    record = json.loads((rt.root / cid / "state.json").read_text())
    return record["config"]["linux"]["resources"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ limits


def test_memory_limit_kills_hog_with_137(rt, bundle):
    cid, b = make(rt, bundle, ["sh", "-c", HOG], {"memory": {"limit": 16 * MiB}})
    proc = rt("run", "-b", str(b), cid)
    assert proc.returncode == 137, proc.stderr
    assert b"survived" not in proc.stdout


def test_events_reports_oom_and_ends_with_the_container(rt, bundle):
    if runc_115():
        pytest.xfail("runc 1.1.5's events keeps polling after the container stops; pyrunc's ends")
    cid, b = make(rt, bundle, ["sh", "-c", HOG], {"memory": {"limit": 16 * MiB}})
    detached(rt, "create", "-b", str(b), cid)
    events = subprocess.Popen(rt.argv("events", "--interval", "200ms", cid),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runtime_env())
    try:
        # The first stats line proves the OOM watch is registered.
        first = json.loads(events.stdout.readline())
        assert first["type"] == "stats" and first["id"] == cid
        rt("start", cid, check=True)
        out, err = events.communicate(timeout=30)
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
    docs = [json.loads(line) for line in out.splitlines()]
    _xfail_lost_oom_under_systemd({"type": "oom", "id": cid} in docs)
    assert {"type": "oom", "id": cid} in docs, (docs, err)
    assert events.returncode == 0, err
    # Nothing on stderr: a stats read that found the cgroup gone with the
    # container (systemd removes an emptied scope) is the end, not an error.
    assert err.strip() == b"", err
    assert rt.state(cid)["status"] == "stopped"


def test_pids_limit_makes_fork_fail(rt, bundle):
    script = "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; echo all-forked"
    cid, b = make(rt, bundle, ["sh", "-c", script], {"pids": {"limit": 4}})
    proc = rt("run", "-b", str(b), cid, timeout=60)
    assert b"all-forked" not in proc.stdout
    assert b"fork" in proc.stderr, proc.stderr
    assert proc.returncode != 0


def test_cpuset_pins_the_process(rt, bundle):
    cgroupfs.require("cpuset")
    cpu = "1" if (os.cpu_count() or 1) > 1 else "0"
    cid, b = make(rt, bundle, ["grep", "Cpus_allowed_list", "/proc/self/status"],
                  {"cpu": {"cpus": cpu}})
    proc = rt("run", "-b", str(b), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split() == ["Cpus_allowed_list:", cpu]


# ------------------------------------------------------------ pause/resume


def test_pause_stops_the_process_and_resume_restarts_it(rt, bundle):
    cid, pid = start_detached(rt, bundle, ["sh", "-c", BUSY])
    assert wait_for(lambda: cpu_ticks(pid) > 0)
    rt("pause", cid, check=True)
    assert rt.state(cid)["status"] == "paused"
    assert cg(cid).frozen()
    before = cpu_ticks(pid)
    time.sleep(0.5)
    assert cpu_ticks(pid) == before
    rt("resume", cid, check=True)
    assert rt.state(cid)["status"] == "running"
    assert wait_for(lambda: cpu_ticks(pid) > before + 5, timeout=5)


def test_pause_and_resume_errors_use_runc_wording(rt, bundle):
    cid, _pid = start_detached(rt, bundle, ["sleep", "1000"])
    proc = rt("resume", cid)
    assert proc.returncode == 1 and error_line(proc) == "container not paused"
    rt("pause", cid, check=True)
    proc = rt("pause", cid)
    assert proc.returncode == 1 and error_line(proc) == "container not running"
    rt("resume", cid, check=True)
    rt("kill", cid, "KILL", check=True)
    assert wait_for(lambda: rt.state(cid)["status"] == "stopped")
    proc = rt("pause", cid)
    assert proc.returncode == 1 and error_line(proc) == "container not running"
    proc = rt("pause", "no-such-container")
    assert proc.returncode == 1 and error_line(proc) == "container does not exist"


def test_a_created_container_can_be_paused_resumed_and_started(rt, bundle):
    cid, b = make(rt, bundle, ["sh", "-c", BUSY])
    detached(rt, "create", "-b", str(b), cid)
    rt("pause", cid, check=True)
    assert cg(cid).frozen()
    rt("resume", cid, check=True)
    assert not cg(cid).frozen()
    rt("start", cid, check=True)
    assert rt.state(cid)["status"] == "running"


def test_delete_force_of_a_paused_container_leaves_nothing(rt, bundle):
    cid, pid = start_detached(rt, bundle, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    rt("pause", cid, check=True)
    rt("delete", "--force", cid, check=True)
    assert not Path(f"/proc/{pid}").exists() or wait_for(lambda: not Path(f"/proc/{pid}").exists())
    assert cgroup_dirs_named(cid) == []


# ------------------------------------------------------------------ update


def test_update_changes_a_running_containers_memory_limit(rt, bundle):
    cid, _pid = start_detached(rt, bundle, ["sleep", "1000"], resources={"memory": {"limit": 32 * MiB}},
                               cgroup_mount=True)
    assert cg(cid).memory_limit() == 32 * MiB
    rt("update", "--memory", "64m", cid, check=True)
    assert cg(cid).memory_limit() == 64 * MiB
    v1 = cgroupfs.version_of("memory") == "v1"
    limit_file = cgroupfs.inside_path("memory", "memory.limit_in_bytes" if v1 else "memory.max")
    inside = rt("exec", cid, "cat", limit_file, check=True)
    assert inside.stdout.strip() == str(64 * MiB).encode()
    stored = stored_resources(rt, cid)
    assert stored is None or stored["memory"]["limit"] == 64 * MiB
    try:
        cg(cid).memory_swap_limit()
    except cgroupfs.Unavailable as e:
        pytest.skip(f"memory and swap limit not checked: {e}")
    rt("update", "--memory", "48M", "--memory-swap", "96MiB", cid, check=True)
    assert cg(cid).memory_limit() == 48 * MiB
    assert cg(cid).memory_swap_limit() == 96 * MiB


def test_update_cpu_and_pids_flags(rt, bundle):
    cgroupfs.require("cpuset")
    cid, _pid = start_detached(rt, bundle, ["sleep", "1000"])
    rt("update", "--cpu-share", "512", "--cpu-period", "100000", "--cpu-quota", "50000",
       "--pids-limit", "42", "--cpuset-cpus", "0", cid, check=True)
    expect_cpu_shares(cid, 512)
    if cg(cid).version("cpu") == "v1":
        assert read_cg("cpu", cid, "cpu.cfs_period_us") == "100000"
        assert read_cg("cpu", cid, "cpu.cfs_quota_us") == "50000"
    else:
        assert read_cg("cpu", cid, "cpu.max") == "50000 100000"
    assert read_cg("pids", cid, "pids.max") == "42"
    assert read_cg("cpuset", cid, "cpuset.cpus") == "0"
    stored = stored_resources(rt, cid)
    if stored is not None:
        assert stored["cpu"] == {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0"}
        assert stored["pids"] == {"limit": 42}


def test_update_flags_may_follow_the_container_id(rt, bundle):
    # urfave/cli, as runc uses it, takes a command's flags after its arguments too.
    cid, _pid = start_detached(rt, bundle, ["sleep", "1000"], cgroup_mount=True)
    rt("update", cid, "--cpu-period", "50000", "--pids-limit=42", check=True)
    if cgroupfs.version_of("cpu") == "v1":
        period = [cgroupfs.inside_path("cpu", "cpu.cfs_period_us")]
        expected = [b"50000"]
    else:
        period = [cgroupfs.inside_path("cpu", "cpu.max")]
        expected = [b"max", b"50000"]
    inside = rt("exec", cid, "cat", *period, cgroupfs.inside_path("pids", "pids.max"), check=True)
    assert inside.stdout.split() == [*expected, b"42"]


def test_update_resources_json_from_stdin_and_file(rt, bundle, tmp_path):
    cid, _pid = start_detached(rt, bundle, ["sleep", "1000"], resources={"memory": {"limit": 32 * MiB}})
    doc = {"memory": {"limit": 48 * MiB}, "cpu": {"shares": 256}, "pids": {"limit": 20}}
    rt("update", "-r", "-", cid, input=json.dumps(doc).encode(), check=True)
    assert cg(cid).memory_limit() == 48 * MiB
    expect_cpu_shares(cid, 256)
    assert read_cg("pids", cid, "pids.max") == "20"
    # A later partial update keeps what the earlier one set.
    f = tmp_path / "res.json"
    f.write_text(json.dumps({"pids": {"limit": 30}}))
    rt("update", "--resources", str(f), cid, check=True)
    assert read_cg("pids", cid, "pids.max") == "30"
    stored = stored_resources(rt, cid)
    assert stored is None or (stored["memory"]["limit"] == 48 * MiB and stored["cpu"]["shares"] == 256)


def test_update_rejects_bad_values_with_one_line(rt, bundle, tmp_path):
    cgroupfs.require("cpuset")
    cid, _pid = start_detached(rt, bundle, ["sleep", "1000"], resources={"memory": {"limit": 32 * MiB}})
    proc = rt("update", "--memory", "12x", cid)
    # runc 1.1.5's older go-units words it "invalid size: '12x'".
    wording = "invalid size: '12x'" if runc_115() else "invalid suffix: 'x'"
    assert proc.returncode == 1 and error_line(proc) == f"invalid value for memory: {wording}"
    proc = rt("update", "--cpu-share", "lots", cid)
    assert proc.returncode == 1 and "cpu-share" in error_line(proc)
    proc = rt("update", "-r", str(tmp_path / "missing.json"), cid)
    assert proc.returncode == 1 and "missing.json" in error_line(proc)
    proc = rt("update", "-r", "-", cid, input=b'{"memory": {"limit": "big"}}')
    assert proc.returncode == 1 and "memory.limit" in error_line(proc)
    proc = rt("update", "--cpuset-cpus", "63", cid)
    assert proc.returncode == 1 and "cpuset.cpus" in error_line(proc)
    # Nothing of the rejected updates was kept.
    assert cg(cid).memory_limit() == 32 * MiB
    assert stored_resources(rt, cid) in (None, {"memory": {"limit": 32 * MiB}})


def test_update_a_stopped_container_fails(rt, bundle):
    cid, b = make(rt, bundle, ["true"])
    detached(rt, "create", "-b", str(b), cid)
    rt("kill", cid, "KILL", check=True)
    assert wait_for(lambda: rt.state(cid)["status"] == "stopped")
    proc = rt("update", "--memory", "64m", cid)
    assert proc.returncode == 1 and error_line(proc) == "container not running"


# ---------------------------------------------------------------------- ps


def test_ps_json_lists_the_containers_pids(rt, bundle):
    cid, pid = start_detached(rt, bundle, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    assert wait_for(lambda: len(read_cg("pids", cid, "cgroup.procs").split()) == 3)
    proc = rt("ps", "--format", "json", cid, check=True)
    pids = json.loads(proc.stdout)
    assert isinstance(pids, list) and all(isinstance(p, int) for p in pids)
    assert pid in pids and len(pids) == 3
    assert sorted(pids) == sorted(int(p) for p in read_cg("pids", cid, "cgroup.procs").split())
    assert proc.stdout == (json.dumps(sorted(pids), separators=(",", ":")) + "\n").encode()


def test_ps_table_filters_host_ps_output(rt, bundle):
    cid, pid = start_detached(rt, bundle, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    assert wait_for(lambda: len(read_cg("pids", cid, "cgroup.procs").split()) == 3)
    for extra in ([], ["-ef"], ["-o", "user,pid,args"], ["aux"]):
        proc = rt("ps", cid, *extra, check=True)
        lines = proc.stdout.decode().splitlines()
        header = lines[0].split()
        assert "PID" in header, lines
        column = header.index("PID")
        shown = sorted(int(line.split()[column]) for line in lines[1:])
        assert pid in shown and len(shown) == 3, (extra, lines)
    proc = rt("ps", cid, "-o", "comm")
    assert proc.returncode == 1 and error_line(proc) == "couldn't find PID field in ps output"
    proc = rt("ps", "-f", "yaml", cid)
    assert proc.returncode == 1 and error_line(proc) == "invalid format option"


# ------------------------------------------------------------------ events


def test_events_stats_prints_one_runc_shaped_document(rt, bundle):
    if runc_115():
        pytest.xfail("runc 1.1.5's stats have no memory event_count")
    cid, _pid = start_detached(rt, bundle, ["sleep", "1000"],
                               resources={"memory": {"limit": 32 * MiB}, "pids": {"limit": 50}})
    proc = rt("events", "--stats", cid, check=True, timeout=10)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert list(doc) == ["type", "id", "data"]
    assert doc["type"] == "stats" and doc["id"] == cid
    data = doc["data"]
    for key in ("cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"):
        assert key in data
    assert {"kernel", "user"} <= set(data["cpu"]["usage"])
    assert data["memory"]["usage"]["limit"] == 32 * MiB
    assert data["memory"]["usage"]["usage"] > 0
    assert set(data["memory"]["event_count"]) == {"low", "high", "max", "oom", "oom_kill"}
    assert data["pids"] == {"current": 1, "limit": 50}


def test_events_streams_stats_until_the_container_stops(rt, bundle):
    if runc_115():
        pytest.xfail("runc 1.1.5's events keeps polling after the container stops; pyrunc's ends")
    cid, _pid = start_detached(rt, bundle, ["sleep", "1000"])
    events = subprocess.Popen(rt.argv("events", "--interval", "300ms", cid),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runtime_env())
    try:
        docs = [json.loads(events.stdout.readline()) for _ in range(2)]
        rt("kill", cid, "KILL", check=True)
        out, err = events.communicate(timeout=30)
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
    docs += [json.loads(line) for line in out.splitlines()]
    assert events.returncode == 0, err
    assert all(d["type"] == "stats" and d["id"] == cid for d in docs), docs


def test_events_errors(rt, bundle):
    cid, b = make(rt, bundle, ["true"])
    detached(rt, "create", "-b", str(b), cid)
    proc = rt("events", "--interval", "0s", cid)
    assert proc.returncode == 1 and error_line(proc) == "duration interval must be greater than 0"
    proc = rt("events", "--interval", "soon", cid)
    assert proc.returncode == 1 and "soon" in error_line(proc)
    rt("kill", cid, "KILL", check=True)
    assert wait_for(lambda: rt.state(cid)["status"] == "stopped")
    proc = rt("events", "--stats", cid)
    assert proc.returncode == 1 and error_line(proc) == f"container with id {cid} is not running"


# ---------------------------------------------------------------- kill --all


@pytest.mark.parametrize("sig", ["KILL", "TERM"])
def test_kill_all_signals_every_process(rt, bundle, sig):
    cid, pid = start_detached(rt, bundle, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    assert wait_for(lambda: len(read_cg("pids", cid, "cgroup.procs").split()) == 3)
    children = [int(p) for p in read_cg("pids", cid, "cgroup.procs").split() if int(p) != pid]
    rt("kill", "--all", cid, sig, check=True)
    assert wait_for(lambda: procs_empty(cid))
    for child in children:
        assert not Path(f"/proc/{child}/stat").exists() or \
            Path(f"/proc/{child}/stat").read_text().split(")")[1].split()[0] in ("Z", "X")
    assert wait_for(lambda: rt.state(cid)["status"] == "stopped")


def test_kill_all_with_signal_0_only_checks(rt, bundle):
    # `kill --all ID 0` (signal 0: "does it exist") succeeds and kills nothing.
    cid, _pid = start_detached(rt, bundle, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    assert wait_for(lambda: len(read_cg("pids", cid, "cgroup.procs").split()) == 3)
    rt("kill", "--all", cid, "0", check=True)
    rt("kill", cid, "0", check=True)
    inside = rt("exec", cid, "sh", "-c", "echo $(pidof sleep | wc -w)", check=True)
    assert inside.stdout.strip() == b"2"
    assert rt.state(cid)["status"] == "running"


def test_kill_all_term_keeps_a_paused_container_paused(rt, bundle):
    if runc_115():
        pytest.xfail("runc 1.1.5 thaws a paused container on kill --all TERM; pyrunc keeps it paused")
    script = "trap 'echo got-term > /dev/null' TERM; sleep 1000 & sleep 1000 & wait"
    cid, _pid = start_detached(rt, bundle, ["sh", "-c", script])
    assert wait_for(lambda: len(read_cg("pids", cid, "cgroup.procs").split()) == 3)
    rt("pause", cid, check=True)
    rt("kill", "--all", cid, "TERM", check=True)
    assert rt.state(cid)["status"] == "paused"
    rt("resume", cid, check=True)
    assert wait_for(lambda: procs_empty(cid))


def test_kill_all_sigkill_reaches_a_paused_container(rt, bundle):
    cid, _pid = start_detached(rt, bundle, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    assert wait_for(lambda: len(read_cg("pids", cid, "cgroup.procs").split()) == 3)
    rt("pause", cid, check=True)
    rt("kill", "--all", cid, "KILL", check=True)
    assert wait_for(lambda: procs_empty(cid))
    assert wait_for(lambda: rt.state(cid)["status"] == "stopped")


# ---------------------------------------------------------------- cleanup


def test_failed_create_leaves_no_cgroup(rt, bundle):
    cgroupfs.require("cpuset")
    cid, b = make(rt, bundle, ["true"], {"cpu": {"cpus": "63"}})
    proc = rt("create", "-b", str(b), cid)
    assert proc.returncode == 1
    assert "cpuset.cpus" in error_line(proc)
    assert cgroup_dirs_named(cid) == []
    assert not (rt.root / cid).exists()


def _oom_events(rt, bundle) -> tuple[str, list[dict[str, Any]]]:
    """Run the hog under events; the container's id and the events seen up
    to its oom event (or the end of the stream)."""
    cid, b = make(rt, bundle, ["sh", "-c", HOG], {"memory": {"limit": 16 * MiB}})
    detached(rt, "create", "-b", str(b), cid)
    events = subprocess.Popen(rt.argv("events", "--interval", "200ms", cid),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=runtime_env())
    seen = []
    try:
        first = json.loads(events.stdout.readline())
        assert first["type"] == "stats" and first["id"] == cid
        rt("start", cid, check=True)
        for line in events.stdout:
            seen.append(json.loads(line))
            if seen[-1]["type"] == "oom" or len(seen) > 200:
                break
    finally:
        events.kill()
        events.wait()
    return cid, seen


def test_events_reports_an_oom_kill(rt, bundle):
    # The oom event alone (runc 1.1.5 goes on streaming stats after the
    # container stops, so the end of the stream is not awaited here).
    cid, seen = _oom_events(rt, bundle)
    _xfail_lost_oom_under_systemd({"type": "oom", "id": cid} in seen)
    assert {"type": "oom", "id": cid} in seen, seen


def test_events_reports_every_oom_kill_of_an_init(rt, bundle):
    # With the systemd driver, systemd removes the scope's cgroup as soon as
    # the OOM-killed init leaves it empty; in the VM lane that came before
    # the kill could be read from memory.events in 46 of 80 runs. Ten in a
    # row must all be reported.
    lost = []
    for _ in range(10):
        cid, seen = _oom_events(rt, bundle)
        if {"type": "oom", "id": cid} not in seen:
            lost.append(cid)
        rt("delete", "--force", cid, check=True)
    _xfail_lost_oom_under_systemd(not lost)
    assert not lost, f"no oom event for {len(lost)} of 10 OOM-killed inits"


def _xfail_lost_oom_under_systemd(reported: bool) -> None:
    """runc 1.1.5 reads only the cgroup's own memory.events, which systemd
    can remove with the emptied scope before the new oom_kill count is read;
    pyrunc also counts the parent's (the test asserts that for pyrunc)."""
    if OTHER_RUNTIME and SYSTEMD_CGROUP and not reported:
        pytest.xfail("runc lost the OOM event: systemd removed the emptied scope first (a race)")


def test_delete_force_succeeds_when_the_cgroup_cannot_be_removed(rt, bundle):
    # Host pid namespace, init gone, and a process the kill cannot reach
    # (held in a frozen sub-cgroup) keeps the container's cgroup busy:
    # runc warns, removes the container and exits 0.
    freezer = Path("/sys/fs/cgroup/freezer")
    if not (freezer / "freezer.state").exists() and not (freezer / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 freezer hierarchy")
    cid, b = make(rt, bundle, ["sleep", "1000"])
    cfg = json.loads((b / "config.json").read_text())
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "pid"]
    (b / "config.json").write_text(json.dumps(cfg))
    detached(rt, "run", "-d", "-b", str(b), cid)
    init = rt.state(cid)["pid"]
    stuck = cg(cid).dir("freezer") / "stuck"
    stuck.mkdir()
    holder = subprocess.Popen(["sleep", "1000"])
    try:
        (stuck / "cgroup.procs").write_text(str(holder.pid))
        (stuck / "freezer.state").write_text("FROZEN")
        os.kill(init, 9)
        assert wait_for(lambda: rt.state(cid)["status"] == "stopped")
        proc = rt("delete", "--force", cid)
        assert proc.returncode == 0, proc.stderr
        assert b"/freezer/" in proc.stderr  # the warning names what was left
        assert not (rt.root / cid).exists()
        assert rt("state", cid).returncode == 1
    finally:
        (stuck / "freezer.state").write_text("THAWED")
        holder.kill()
        holder.wait()
        for d in sorted(cgroup_dirs_named(cid), key=len, reverse=True):
            for sub in sorted(Path(d).glob("**/"), key=lambda p: len(str(p)), reverse=True):
                try:
                    sub.rmdir()
                except OSError:
                    pass
