"""pyrunc.linux.cgroups.systemd without systemd: paths per layout, state round trip, safety.

The D-Bus side is exercised against the real systemd in the VM lane
(tests/integration/test_systemd_cgroup.py); these checks need no bus.
"""

from __future__ import annotations

from pyrunc.linux.cgroups import manager_from_state
from pyrunc.linux.cgroups import systemd as sd
from pyrunc.linux.cgroups.detect import detect
from pyrunc.plan.systemd_unit import parse_cgroups_path

V2_MOUNTINFO = "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
HYBRID_MOUNTINFO = (
    "30 1 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    "31 1 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    "32 1 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    "33 1 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
)


def _manager(mountinfo: str, path: str = "system.slice:docker:c1") -> sd.SystemdManager:
    target = parse_cgroups_path(path, "c1")
    layout = detect("/sys/fs/cgroup", mountinfo)
    return sd.SystemdManager(target, sd._fs_manager(layout, target.cgroup), "c1", layout=layout)


def test_v2_scope_path_and_state_round_trip() -> None:
    m = _manager(V2_MOUNTINFO)
    assert m.dirs() == ["/sys/fs/cgroup/system.slice/docker-c1.scope"]
    state = m.to_state()
    assert state == {"mode": "v2", "path": "/sys/fs/cgroup/system.slice/docker-c1.scope",
                     "mount": "/sys/fs/cgroup",
                     "systemd": {"unit": "docker-c1.scope", "slice": "system.slice",
                                 "cgroup": "/system.slice/docker-c1.scope", "user": False}}
    again = manager_from_state(state)
    assert isinstance(again, sd.SystemdManager) and again.started
    assert again.to_state() == state and again.unit == "docker-c1.scope"


def test_hybrid_scope_is_in_every_hierarchy() -> None:
    m = _manager(HYBRID_MOUNTINFO, "kube-pods.slice:cri:c2")
    assert sorted(m.dirs()) == [
        "/sys/fs/cgroup/cpu,cpuacct/kube.slice/kube-pods.slice/cri-c2.scope",
        "/sys/fs/cgroup/memory/kube.slice/kube-pods.slice/cri-c2.scope",
        "/sys/fs/cgroup/systemd/kube.slice/kube-pods.slice/cri-c2.scope",
        "/sys/fs/cgroup/unified/kube.slice/kube-pods.slice/cri-c2.scope",
    ]
    state = m.to_state()
    assert state["mode"] == "hybrid" and state["systemd"]["unit"] == "cri-c2.scope"
    assert manager_from_state(state).dirs() == m.dirs()


def test_a_unit_this_create_did_not_start_is_never_touched() -> None:
    # A unit of that name (UnitExists) is someone else's: the failed create's
    # clean-up must neither signal its processes nor stop it.  Neither call
    # may even need the bus.
    m = _manager(V2_MOUNTINFO)
    assert not m.started
    m.kill_all(9)
    m.destroy()
    assert m._bus is None
