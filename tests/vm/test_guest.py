"""The VM lane's guest is the host it claims to be (runs only inside the guest).

tests/vm/lane.py sets PYRUNC_VM_GUEST=1 in the job it runs; elsewhere these
tests skip.  They check what the lane exists for: systemd as PID 1, a pure
cgroup v2 hierarchy with every controller (or, when the lane booted it with
--cgroup hybrid, systemd's hybrid layout), the tests running in a systemd
service's cgroup as a real caller does, and AppArmor enabled (or SELinux
enforcing, when the lane booted it with --lsm selinux).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("PYRUNC_VM_GUEST") != "1",
                                reason="runs only in the VM lane's guest (make vm-test)")


def test_pid1_is_systemd() -> None:
    assert os.path.realpath("/proc/1/exe") == "/usr/lib/systemd/systemd"
    assert Path("/run/systemd/system").is_dir()


# The cgroup layout the lane booted the guest with (tests/vm/lane.py --cgroup).
CGROUP = os.environ.get("PYRUNC_VM_CGROUP", "v2")

# What systemd 252 mounts in hybrid mode on Debian 12's kernel: one hierarchy
# per v1 controller (cpu,cpuacct and net_cls,net_prio co-mounted), its own
# named hierarchy, and a cgroup2 mount that carries no controllers.
HYBRID_V1 = {
    "/sys/fs/cgroup/systemd": {"name=systemd"},
    "/sys/fs/cgroup/cpu,cpuacct": {"cpu", "cpuacct"},
    "/sys/fs/cgroup/net_cls,net_prio": {"net_cls", "net_prio"},
    **{f"/sys/fs/cgroup/{c}": {c} for c in (
        "cpuset", "memory", "devices", "freezer", "blkio", "pids", "perf_event", "hugetlb", "rdma", "misc")},
}


def _cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    """(mountpoint, fstype, the controllers among its options) of each cgroup mount."""
    known = {line.split()[0] for line in Path("/proc/cgroups").read_text().splitlines()[1:]}
    mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [(m[1], m[2], {o for o in m[3].split(",") if o in known or o.startswith("name=")})
            for m in mounts if m[2] in ("cgroup", "cgroup2")]


@pytest.mark.skipif(CGROUP != "v2", reason=f"the guest was booted with the {CGROUP} cgroup layout")
def test_pure_cgroup2_with_every_controller() -> None:
    assert [(m, t) for m, t, _ in _cgroup_mounts()] == [("/sys/fs/cgroup", "cgroup2")]
    controllers = Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
    for c in ("cpuset", "cpu", "io", "memory", "hugetlb", "pids"):
        assert c in controllers


@pytest.mark.skipif(CGROUP != "hybrid", reason=f"the guest was booted with the {CGROUP} cgroup layout")
def test_hybrid_layout() -> None:
    mounts = _cgroup_mounts()
    assert ("/sys/fs/cgroup/unified", "cgroup2", set()) in mounts
    assert not any(m == "/sys/fs/cgroup" for m, _, _ in mounts)
    v1 = {m: opts for m, t, opts in mounts if t == "cgroup"}
    assert v1 == HYBRID_V1
    # Every controller is a v1 one: the cgroup2 hierarchy has none to give.
    assert Path("/sys/fs/cgroup/unified/cgroup.controllers").read_text().split() == []


def test_runs_in_a_system_service_cgroup() -> None:
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    if CGROUP == "v2":
        assert lines == ["0::/system.slice/pyrunc-job.service"]
        return
    # Hybrid: systemd places the service in its own hierarchies (name=systemd
    # and the cgroup2 one) and in those of the controllers it manages.
    own = {c: path for _, ctrls, path in (line.split(":", 2) for line in lines) for c in ctrls.split(",")}
    assert own[""] == own["name=systemd"] == "/system.slice/pyrunc-job.service"
    for c in ("memory", "pids", "devices"):
        assert own[c] == "/system.slice/pyrunc-job.service", c


# The LSM the lane booted the guest with (tests/vm/lane.py --lsm).
LSM = os.environ.get("PYRUNC_VM_LSM", "apparmor")


@pytest.mark.skipif(LSM != "apparmor", reason=f"the guest was booted with {LSM}")
def test_apparmor_enabled() -> None:
    assert Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    assert "apparmor" in Path("/sys/kernel/security/lsm").read_text().split(",")


@pytest.mark.skipif(LSM != "selinux", reason=f"the guest was booted with {LSM}")
def test_selinux_enforcing() -> None:
    assert "selinux" in Path("/sys/kernel/security/lsm").read_text().split(",")
    assert Path("/sys/fs/selinux/enforce").read_text().strip() == "1"


def test_runtimes_and_engines_installed() -> None:
    for name in ("runc", "crun", "containerd", "podman", "dockerd", "busybox"):
        assert shutil.which(name), name
