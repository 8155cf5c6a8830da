"""cgroup v2 device filters on the real kernel (root).

Each test makes its own cgroup2 directory <cgroup2 mount>/pyrunc-test-<random>
(no other cgroup is written to: the V2Manager is built by hand and its
create(), which would enable controllers in the parent, is not called),
attaches a filter, moves a short-lived probe process into it, and checks
which device opens and mknods the kernel lets through.  The directory is
removed afterwards; its programs go with it.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrunc.errors import ConfigError
from pyrunc.linux.cgroups import base
from pyrunc.linux.cgroups import devices_bpf as L
from pyrunc.linux.cgroups.fs_v2 import V2Manager
from pyrunc.plan import devices_bpf as P
from pyrunc.plan.cgroups import DeviceRule


def _unified() -> str:
    from tests.helpers.cgroupfs import unified_mount

    m = unified_mount()
    return m.mountpoint if m is not None else "/sys/fs/cgroup/unified"


UNIFIED = _unified()

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.isdir(UNIFIED) or not L.is_cgroup2(UNIFIED),
    reason="needs root and a cgroup2 mount at " + UNIFIED)

DENY_ALL = {"allow": False, "access": "rwm"}

PROBE = r"""
import json, os, sys
with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
out = {}
for spec in sys.argv[2:]:
    op, arg = spec.split(" ", 1)
    try:
        if op == "mknod":
            path, major, minor = arg.split(",")
            os.mknod(path, 0o600 | 0o020000, os.makedev(int(major), int(minor)))
            os.unlink(path)
        else:
            flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[op]
            os.close(os.open(arg, flags | os.O_NONBLOCK | os.O_CLOEXEC))
        out[spec] = 0
    except OSError as e:
        out[spec] = e.errno
print(json.dumps(out))
"""


@pytest.fixture
def cgdir() -> Iterator[str]:
    d = os.path.join(UNIFIED, f"pyrunc-test-{uuid.uuid4().hex[:10]}")
    os.mkdir(d)
    try:
        yield d
    finally:
        for pid in base.read_procs(d):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        base.rmdir(d)
    assert not os.path.exists(d)


def probe(d: str, *specs: str) -> dict[str, int]:
    """Run the probe inside cgroup ``d``; errno (0 = success) per operation."""
    r = subprocess.run([sys.executable, "-I", "-c", PROBE, d, *specs],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    result: dict[str, int] = json.loads(r.stdout)
    return result


def attached(d: str) -> list[int]:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return L.attached_program_ids(fd, d)
    finally:
        os.close(fd)


def test_deny_all_allow_null(cgdir: str, tmp_path: Path) -> None:
    prog = P.device_filter_program([DeviceRule("a", -1, -1, "rwm", False), DeviceRule("c", 1, 3, "rwm", True)])
    L.install(cgdir, prog)
    assert len(attached(cgdir)) == 1
    got = probe(cgdir, "r /dev/zero", "w /dev/null", "rw /dev/null", "r /dev/null",
                f"mknod {tmp_path}/null,1,3", f"mknod {tmp_path}/zero,1,5")
    assert got == {
        "r /dev/zero": errno.EPERM,
        "w /dev/null": 0,
        "rw /dev/null": 0,
        "r /dev/null": 0,
        f"mknod {tmp_path}/null,1,3": 0,
        f"mknod {tmp_path}/zero,1,5": errno.EPERM,
    }


def test_shell_child_as_in_the_issue(cgdir: str) -> None:
    L.install(cgdir, P.device_filter_program([DeviceRule("a", -1, -1, "rwm", False),
                                              DeviceRule("c", 1, 3, "rwm", True)]))
    script = (f"echo $$ > {cgdir}/cgroup.procs; head -c1 /dev/zero >/dev/null; echo zero=$?; "
              "echo x > /dev/null; echo null=$?")
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["zero=1", "null=0"]
    assert "Operation not permitted" in r.stderr


def test_reinstall_replaces_the_filter(cgdir: str) -> None:
    L.install(cgdir, P.device_filter_program([DeviceRule("a", -1, -1, "rwm", False)]))
    first = attached(cgdir)
    assert probe(cgdir, "w /dev/null") == {"w /dev/null": errno.EPERM}
    L.install(cgdir, P.device_filter_program([DeviceRule("a", -1, -1, "rwm", True)]))
    second = attached(cgdir)
    assert len(first) == len(second) == 1 and first != second
    assert probe(cgdir, "w /dev/null") == {"w /dev/null": 0}


def test_reinstall_detaches_several_old_filters(cgdir: str) -> None:
    # Two filters attached side by side (as a second manager might leave them).
    deny_zero = P.device_filter_program([DeviceRule("a", -1, -1, "rwm", True), DeviceRule("c", 1, 5, "r", False)])
    _ffi, lib = L._lib()
    fd = os.open(cgdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for _ in range(2):
            prog = L.load_program(deny_zero, cgdir)
            try:
                assert lib.pyrunc_bpf_prog_attach(prog, fd, L.BPF_CGROUP_DEVICE, L.BPF_F_ALLOW_MULTI, -1) == 0
            finally:
                os.close(prog)
    finally:
        os.close(fd)
    assert len(attached(cgdir)) == 2
    L.install(cgdir, P.device_filter_program([DeviceRule("a", -1, -1, "rwm", True)]))
    assert len(attached(cgdir)) == 1
    assert probe(cgdir, "r /dev/zero") == {"r /dev/zero": 0}


def test_manager_apply_installs_and_updates(cgdir: str) -> None:
    m = V2Manager(cgdir, UNIFIED)
    assert attached(cgdir) == []
    warnings = m.apply({"devices": [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]},
                       linux_devices=[{"path": "/dev/zero", "type": "c", "major": 1, "minor": 5}])
    assert warnings == []
    assert len(attached(cgdir)) == 1
    # /dev/zero's default rule is dropped (the spec defines that device);
    # /dev/urandom keeps it; /dev/kmsg (c 1:11) was never allowed.
    assert probe(cgdir, "r /dev/zero", "rw /dev/null", "r /dev/urandom", "r /dev/kmsg") == {
        "r /dev/zero": errno.EPERM, "rw /dev/null": 0, "r /dev/urandom": 0, "r /dev/kmsg": errno.EPERM}
    # An update replaces the filter rather than stacking a second one.
    m.apply({"devices": [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]})
    assert len(attached(cgdir)) == 1
    assert probe(cgdir, "r /dev/kmsg", "r /dev/zero", "w /dev/kmsg") == {
        "r /dev/kmsg": 0, "r /dev/zero": 0, "w /dev/kmsg": errno.EPERM}


def test_manager_refuses_a_hole_punch_without_touching_the_filter(cgdir: str) -> None:
    m = V2Manager(cgdir, UNIFIED)
    m.apply({"devices": [DENY_ALL]})
    before = attached(cgdir)
    with pytest.raises(ConfigError, match="punch a hole"):
        m.apply({"devices": [{"allow": True, "type": "c", "access": "rw"},
                             {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]})
    assert attached(cgdir) == before


def test_manager_without_devices_attaches_nothing(cgdir: str) -> None:
    m = V2Manager(cgdir, UNIFIED)
    assert m.apply({"devices": [DENY_ALL]}, devices=False) == []
    assert attached(cgdir) == []
    assert probe(cgdir, "r /dev/kmsg") == {"r /dev/kmsg": 0}


def test_not_cgroup2_is_reported(tmp_path: Path) -> None:
    m = V2Manager(str(tmp_path), str(tmp_path))
    warnings = m.apply({"devices": [DENY_ALL]})
    assert any("not on a cgroup2 filesystem" in w for w in warnings)
    assert stat.S_ISDIR(os.stat(tmp_path).st_mode)


def test_errors_name_the_operation_and_keep_errno(tmp_path: Path) -> None:
    # A plain directory is no cgroup: the query fails with EBADF.
    with pytest.raises(Exception) as info:
        L.install(str(tmp_path), P.device_filter_program([]))
    assert getattr(info.value, "errno", None) == errno.EBADF
    assert "bpf(BPF_PROG_QUERY)" in str(info.value) and str(tmp_path) in str(info.value)
