"""The VM lane's guest is the host it claims to be (runs only inside the guest).

tests/vm/lane.py sets PYRUNC_VM_GUEST=1 in the job it runs; elsewhere these
tests skip.  They check what the lane exists for: systemd as PID 1, a pure
cgroup v2 hierarchy with every controller, the tests running in a systemd
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


def test_pure_cgroup2_with_every_controller() -> None:
    mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    cgroup_mounts = [(m[1], m[2]) for m in mounts if m[2] in ("cgroup", "cgroup2")]
    assert cgroup_mounts == [("/sys/fs/cgroup", "cgroup2")]
    controllers = Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
    for c in ("cpuset", "cpu", "io", "memory", "hugetlb", "pids"):
        assert c in controllers


def test_runs_in_a_system_service_cgroup() -> None:
    assert Path("/proc/self/cgroup").read_text() == "0::/system.slice/pyrunc-job.service\n"


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
