"""The systemd cgroup driver (``--systemd-cgroup``), checked with systemd itself.

Each container's cgroup is a transient unit; `systemctl show` tells its
properties, its ControlGroup and whether it still exists; the cgroup files
are read through tests/helpers/cgroupfs, so the same tests check a pure v2
host and a hybrid one (`lane.py run --cgroup hybrid`), where systemd makes the
scope only in the hierarchies it manages and the runtime must make and join
it in the other v1 ones (cpuset, freezer, net_cls, ...).  Runs where systemd
is PID 1 (the VM lane); elsewhere the module is skipped.  PYRUNC_TEST_RUNTIME=runc
runs the same tests against runc (whose default unit prefix is "runc"; the
tests that stop pyrunc at a given stage of create are pyrunc's own).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from tests.conftest import SYSTEMD_CGROUP, runtime_argv, runtime_env
from tests.helpers import cgroupfs
from tests.helpers.cgroupfs import CgroupFiles
from tests.helpers.stop_point import kill_at_stop_point

pytestmark = [
    pytest.mark.skipif(not os.path.isdir("/run/systemd/system"),
                       reason="systemd is not PID 1 here (the VM lane runs these)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

IS_PYRUNC = "pyrunc" in " ".join(runtime_argv())
DEFAULT_PREFIX = "pyrunc" if IS_PYRUNC else "runc"
V1 = cgroupfs.mode() != "v2"
MiB = 1 << 20
# The flag, unless PYRUNC_TEST_SYSTEMD_CGROUP already adds it to every command.
FLAG: tuple[str, ...] = () if SYSTEMD_CGROUP else ("--systemd-cgroup",)


def show(unit: str, *props: str) -> dict[str, str]:
    """`systemctl show UNIT -p A -p B` as a dict."""
    args = ["systemctl", "show", unit]
    for p in props:
        args += ["-p", p]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit_gone(unit: str) -> bool:
    """No such unit loaded (`list-units --all` does not list it)."""
    out = subprocess.run(["systemctl", "list-units", "--all", "--no-legend", "--plain", unit],
                         capture_output=True, text=True).stdout
    return unit not in out


def wait_gone(unit: str, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while not unit_gone(unit):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def scopes_named(text: str) -> list[str]:
    out = subprocess.run(["systemctl", "list-units", "--all", "--no-legend", "--plain", "*.scope"],
                         capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if text in line]


def no_dirs_left(unit: str) -> list[str]:
    """The unit's cgroup directories still present in any hierarchy (v1 ones included)."""
    return cgroupfs.dirs_named(unit)


@pytest.fixture
def sd(runtime):
    """The runtime fixture, every command with --systemd-cgroup; checks no unit is left."""

    class SD:
        root = runtime.root
        ids = runtime.ids
        new_id = runtime.new_id
        units: list[str] = []

        def __call__(self, *args: str, **kw):
            return runtime(*FLAG, *args, **kw)

        def state(self, cid: str):
            return runtime.state(cid)

    s = SD()
    yield s
    for cid in sorted(runtime.ids):
        runtime(*FLAG, "delete", "--force", cid, timeout=60)
    for unit in s.units:
        assert wait_gone(unit), f"unit {unit} left behind"
        assert no_dirs_left(unit) == []
    for cid in runtime.ids:
        assert not (runtime.root / cid).exists()
        assert scopes_named(cid) == []


def config_with(bundle, args, path: str | None = None, resources=None, annotations=None):
    cfg = bundle.config(args)
    if path is not None:
        cfg["linux"]["cgroupsPath"] = path
    if resources is not None:
        cfg["linux"]["resources"] = {**cfg["linux"].get("resources", {}), **resources}
    if annotations:
        cfg["annotations"] = annotations
    return bundle(config=cfg)


def procs_of(cgroup: str) -> list[int]:
    """The pids systemd counts in a unit's cgroup; [] once it is gone (systemd
    removes an emptied scope)."""
    try:
        return CgroupFiles.of_path(cgroup).members()
    except FileNotFoundError:
        return []


def assert_joined_everywhere(pid: int, cgroup: str) -> None:
    """``pid`` is in ``cgroup`` in every hierarchy: on v1 also in those systemd
    leaves alone, which the runtime must create and join itself."""
    own = cgroupfs.own_cgroups(pid)
    mounted = {c for m in cgroupfs.mounts() for c in (m.controllers if m.fstype == "cgroup" else ("",))}
    if not IS_PYRUNC:
        # runc 1.1.5 knows no misc controller (kernel 5.13); pyrunc joins every mounted hierarchy.
        mounted.discard("misc")
    assert {c: own.get(c) for c in mounted if own.get(c) != cgroup} == {}


def test_scope_unit_carries_the_container(sd, bundle):
    cid = sd.new_id("sd")
    unit = f"pyrunc-test-{cid}.scope"
    sd.units.append(unit)
    resources = {"memory": {"limit": 64 * MiB}, "pids": {"limit": 50},
                 "cpu": {"quota": 50000, "period": 100000, "shares": 512, "cpus": "0"}}
    if V1:
        # net_cls: a v1 hierarchy systemd never manages.
        resources["network"] = {"classID": 0x100001}
    else:
        resources["unified"] = {"memory.oom.group": "1"}
    b = config_with(bundle, ["sleep", "600"], f"system.slice:pyrunc-test:{cid}", resources=resources,
                    annotations={"org.systemd.property.CollectMode": "'inactive-or-failed'"})
    res = sd("create", "-b", str(b), cid)
    assert res.returncode == 0, res.stderr
    pid = sd.state(cid)["pid"]
    # v1: the runtime asks for MemoryLimit and CPUShares, v2 for MemoryMax and CPUWeight.
    memory, cpu = ("MemoryLimit", "CPUShares") if V1 else ("MemoryMax", "CPUWeight")
    props = show(unit, "ActiveState", "Delegate", "Slice", "ControlGroup", memory, "TasksMax",
                 "CPUQuotaPerSecUSec", cpu, "CollectMode", "DefaultDependencies", "MemoryAccounting")
    assert props["ActiveState"] == "active"
    assert props["Delegate"] == "yes"
    assert props["Slice"] == "system.slice"
    assert props["ControlGroup"] == f"/system.slice/{unit}"
    assert props[memory] == str(64 * MiB)
    if V1:
        assert props["CPUShares"] == "512"
    assert props["TasksMax"] == "50"
    assert props["CPUQuotaPerSecUSec"] == "500ms"
    assert props["CollectMode"] == "inactive-or-failed"
    assert props["DefaultDependencies"] == "no"
    assert props["MemoryAccounting"] == "yes"
    # The created (not yet started) init is in the unit's cgroup in every
    # hierarchy, and the files systemd has no property for (or, on v1, no
    # controller: cpuset) are written too.
    assert procs_of(props["ControlGroup"]) == [pid]
    assert_joined_everywhere(pid, props["ControlGroup"])
    files = CgroupFiles(pid)
    assert files.memory_limit() == 64 * MiB
    assert files.pids_max() == 50
    assert files.cpu_quota() == (50000, 100000)
    assert files.read("cpuset", "cpuset.cpus") == "0"
    if V1:
        assert files.read("net_cls", "net_cls.classid") == str(0x100001)
    else:
        assert files.read("memory", "memory.oom.group") == "1"
    assert sd("start", cid).returncode == 0


def test_default_path_is_prefix_id_scope_in_system_slice(sd, bundle):
    cid = sd.new_id("sd")
    unit = f"{DEFAULT_PREFIX}-{cid}.scope"
    sd.units.append(unit)
    res = sd("run", "-d", "-b", str(bundle(["sleep", "600"])), cid)
    assert res.returncode == 0, res.stderr
    props = show(unit, "ActiveState", "ControlGroup")
    assert props == {"ActiveState": "active", "ControlGroup": f"/system.slice/{unit}"}
    res = sd("delete", "--force", cid)
    assert res.returncode == 0, res.stderr
    assert wait_gone(unit, 5)
    assert no_dirs_left(unit) == []


def test_commands_on_a_systemd_container(sd, bundle):
    cid = sd.new_id("sd")
    unit = f"pyrunc-test-{cid}.scope"
    sd.units.append(unit)
    b = config_with(bundle, ["sleep", "600"], f"system.slice:pyrunc-test:{cid}",
                    resources={"memory": {"limit": 64 * MiB}})
    assert sd("run", "-d", "-b", str(b), cid).returncode == 0
    cg = CgroupFiles.of_path(f"/system.slice/{unit}")
    # exec joins the scope's cgroup.
    assert sd("exec", "-d", cid, "sleep", "300").returncode == 0
    ps = json.loads(sd("ps", "--format", "json", cid, check=True).stdout)
    assert len(ps) == 2 and sorted(ps) == sorted(procs_of(f"/system.slice/{unit}"))
    # pause / resume through the cgroup's freezer.
    assert sd("pause", cid).returncode == 0
    assert sd.state(cid)["status"] == "paused"
    assert cg.frozen()
    assert sd("resume", cid).returncode == 0
    assert sd.state(cid)["status"] == "running"
    # update sets the unit property too, so a daemon-reload keeps the new limit.
    res = sd("update", "--memory", str(128 * MiB), cid)
    assert res.returncode == 0, res.stderr
    memory = "MemoryLimit" if V1 else "MemoryMax"
    assert show(unit, memory)[memory] == str(128 * MiB)
    assert cg.memory_limit() == 128 * MiB
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    assert cg.memory_limit() == 128 * MiB
    # events --stats reads the scope's files.
    stats = json.loads(sd("events", "--stats", cid, check=True).stdout)
    assert stats["type"] == "stats" and stats["data"]["memory"]["usage"]["limit"] == 128 * MiB
    # kill --all reaches the exec'd process too.
    assert sd("kill", "--all", cid, "KILL").returncode == 0
    deadline = time.monotonic() + 10
    while procs_of(f"/system.slice/{unit}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs_of(f"/system.slice/{unit}") == []
    assert sd("delete", cid).returncode == 0
    assert wait_gone(unit)
    assert not cg.exists()
    assert no_dirs_left(unit) == []


def test_a_slice_name_creates_a_slice(sd, bundle):
    cid = sd.new_id("sd")
    name = f"system-pyrunctest{uuid.uuid4().hex[:8]}.slice"
    sd.units.append(name)
    b = config_with(bundle, ["sleep", "600"], f"system.slice:ignored:{name}")
    res = sd("run", "-d", "-b", str(b), cid)
    if not IS_PYRUNC and res.returncode != 0:
        pytest.xfail(f"this runc does not put a process into a slice unit: {res.stderr!r}")
    assert res.returncode == 0, res.stderr
    props = show(name, "ActiveState", "ControlGroup")
    assert props == {"ActiveState": "active", "ControlGroup": f"/system.slice/{name}"}
    pid = sd.state(cid)["pid"]
    assert pid in procs_of(props["ControlGroup"])
    assert sd("delete", "--force", cid).returncode == 0
    assert wait_gone(name)


def _assert_refused(sd, cid: str, res, *needles: str) -> None:
    assert res.returncode == 1, res.stderr
    lines = [ln for ln in res.stderr.decode().splitlines() if ln.strip()]
    if IS_PYRUNC:
        assert len(lines) == 1, lines
    # runc logs in logfmt (quotes escaped) and may warn before its error line.
    last = lines[-1].replace('\\"', '"')
    for needle in needles:
        assert needle in last, last
    assert not (sd.root / cid).exists()
    assert scopes_named(cid) == []


def test_unit_that_exists_is_refused_and_kept(sd, bundle):
    first, second = sd.new_id("sd"), sd.new_id("sd")
    path = f"system.slice:pyrunc-test:{first}"
    unit = f"pyrunc-test-{first}.scope"
    sd.units.append(unit)
    assert sd("run", "-d", "-b", str(config_with(bundle, ["sleep", "600"], path)), first).returncode == 0
    pid = sd.state(first)["pid"]
    res = sd("run", "-d", "-b", str(config_with(bundle, ["sleep", "600"], path)), second)
    if not IS_PYRUNC and res.returncode == 0:
        pytest.xfail("runc 1.1.5 puts a second container into an existing scope (newer runc refuses)")
    assert res.returncode == 1
    assert unit in res.stderr.decode() and "exists" in res.stderr.decode().lower()
    assert not (sd.root / second).exists()
    # The other container's unit is untouched.
    assert show(unit, "ActiveState")["ActiveState"] == "active"
    assert pid in procs_of(f"/system.slice/{unit}")


def test_failed_job_names_unit_and_systemd_error(sd, bundle):
    cid = sd.new_id("sd")
    b = config_with(bundle, ["true"], f"system.slice:pyrunc-test:{cid}",
                    annotations={"org.systemd.property.NoSuchPropertyAtAll": "true"})
    res = sd("run", "-b", str(b), cid)
    unit = f"pyrunc-test-{cid}.scope"
    last = ([ln for ln in res.stderr.decode().splitlines() if ln.strip()] or [""])[-1]
    if not IS_PYRUNC and V1 and unit not in last:
        _assert_refused(sd, cid, res, "NoSuchPropertyAtAll")
        pytest.xfail("runc 1.1.5's v1 systemd manager does not name the unit in this error (its v2 one does)")
    _assert_refused(sd, cid, res, unit, "NoSuchPropertyAtAll")


def test_cgroupfs_path_is_refused_with_runc_wording(sd, bundle):
    cid = sd.new_id("sd")
    res = sd("run", "-b", str(config_with(bundle, ["true"], "/foo/bar")), cid)
    _assert_refused(sd, cid, res, 'expected cgroupsPath to be of format "slice:prefix:name" for systemd '
                                  'cgroups, got "/foo/bar" instead')


def test_bad_slice_is_refused(sd, bundle):
    cid = sd.new_id("sd")
    res = sd("run", "-b", str(config_with(bundle, ["true"], f"bad--name.slice:p:{cid}")), cid)
    _assert_refused(sd, cid, res, "invalid slice name: bad--name.slice")


@pytest.mark.skipif(not V1, reason="a user's manager is refused on cgroup v1 and hybrid hosts only")
def test_rootless_on_v1_is_refused(rootless):
    """As runc: systemd delegates no v1 controller to a user, so an unprivileged
    caller's container cannot have a unit of the user's manager there."""
    cid = rootless.new_id()
    res = rootless(*FLAG, "run", "-b", str(rootless.bundle(rootless.config(["true"]))), cid)
    assert res.returncode == 1, res.stderr
    lines = [ln for ln in res.stderr.decode().splitlines() if ln.strip()]
    if IS_PYRUNC:
        assert len(lines) == 1, lines
    assert "cannot use rootless systemd cgroups manager on cgroup v1" in lines[-1], lines
    assert not (rootless.root / cid).exists()
    assert scopes_named(cid) == []
    assert cgroupfs.dirs_named(cid, suffix=f"-{cid}.scope") == []


STAGES = ["reserved", "cgroup", "spawned", "ready"]


@pytest.mark.skipif(not IS_PYRUNC, reason="PYRUNC_TEST_STOP_AT is pyrunc's own test hook")
@pytest.mark.parametrize("stage", STAGES)
def test_kill_9_at_each_stage_leaves_no_unit(sd, bundle, tmp_path, stage):
    before = set(scopes_named(""))
    cid = sd.new_id(f"k{stage}")
    unit = f"pyrunc-test-{cid}.scope"
    sd.units.append(unit)
    b = config_with(bundle, ["sleep", "600"], f"system.slice:pyrunc-test:{cid}")
    env = runtime_env()
    env["PYRUNC_TEST_STOP_AT"] = stage
    argv = [*runtime_argv(), "--root", str(sd.root), *FLAG, "create", "-b", str(b), cid]
    with open(tmp_path / "out", "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    kill_at_stop_point(proc, tmp_path / "out", timeout=60)
    if stage == "spawned":
        # The init dies with its parent's socket, the scope empties and
        # systemd collects it, even before any delete.
        assert wait_gone(unit), show(unit, "ActiveState", "SubState")
    res = sd("delete", "--force", cid)
    assert res.returncode == 0, res.stderr
    assert wait_gone(unit)
    assert not (sd.root / cid).exists()
    assert set(scopes_named("")) - before == set()
