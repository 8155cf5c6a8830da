"""Attack class 6: procfs write redirection.

CVEs: CVE-2019-16884 (a fake /proc in the image took the LSM label writes),
CVE-2025-52881 (shared-mount races redirected the runtime's /proc writes,
sysctls included, to other files), youki CVE-2025-62596.

What pyrunc does: pyrunc-init makes one procfs handle at startup (a private,
detached procfs instance: fsopen + fsmount, with fallbacks; see
test_procfs_handle.py), checks it is procfs, and opens every file it writes
(sysctls, oom_score_adj, timens_offsets, exec.fifo) beneath that handle with
openat2(RESOLVE_BENEATH...) and an fstatfs(PROC_SUPER_MAGIC) check.  The
parent's uid_map/gid_map writes check fstatfs too.  The planner refuses
mounts over /proc paths, and pyrunc-init refuses a mount target that
reaches procfs through a symlink in the image.

The tests put a fake `sys/net/ipv4/ip_forward` (a file in a temp dir) in
front of the real one every way they can, ask for the sysctl, and check
that the fake stayed as it was.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pyrunc.linux import idmap
from pyrunc.plan.protocol import (
    MOUNT_F_BIND_SOURCE,
    MOUNT_F_MKDIR,
    MOUNT_F_PROC_OK,
    OP_MOUNT,
    OP_WRITE_PROC,
    step,
)
from tests.conftest import OTHER_RUNTIME, needs_root, runc_differs
from tests.integration.test_init_protocol import (  # noqa: F401  (fixtures)
    MS_BIND,
    container,
    root,
    run,
    subreaper,
)
from tests.security.conftest import config_for, one_error_line

pytestmark = needs_root

FAKE_TEXT = "fake-sysctl\n"
SYSCTL = {"net.ipv4.ip_forward": "1"}


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    """A temp dir that looks like /proc: sys/net/ipv4/ip_forward holds FAKE_TEXT."""
    top = tmp_path / "fake-proc"
    (top / "sys" / "net" / "ipv4").mkdir(parents=True)
    (top / "sys" / "net" / "ipv4" / "ip_forward").write_text(FAKE_TEXT)
    top.chmod(0o755)
    return top


def fake_untouched(fake_proc: Path) -> None:
    assert (fake_proc / "sys" / "net" / "ipv4" / "ip_forward").read_text() == FAKE_TEXT


# ---- the planner keeps every fake /proc/sys out -------------------------------


@pytest.mark.parametrize("dest,kind", [
    ("/proc/sys", "tmpfs"), ("/proc/sys", "bind"), ("/proc/sys/net", "bind"),
    ("/proc", "tmpfs"), ("/proc", "bind"),
    pytest.param("/proc/self/attr", "tmpfs", marks=runc_differs("runc 1.1.5 mounts a tmpfs over /proc/self/attr")),
    ("/proc/./sys", "tmpfs"), ("/proc/../proc/sys", "bind"),
])
def test_planner_refuses_fake_proc_sys(runtime, bundle, rootfs, fake_proc, dest, kind):
    cfg = config_for(rootfs, ["true"])
    cfg["root"]["readonly"] = True
    source = str(fake_proc if dest == "/proc" else fake_proc / "sys")
    cfg["mounts"].append({"destination": dest, "type": kind,
                          "source": source if kind == "bind" else "tmpfs",
                          "options": ["bind"] if kind == "bind" else []})
    cfg["linux"]["sysctl"] = dict(SYSCTL)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("fakeproc"))
    assert proc.returncode == 1
    line = one_error_line(proc.stderr)
    assert "/proc" in line, line
    fake_untouched(fake_proc)


@pytest.mark.parametrize("link", ["/proc/sys", "../proc/sys", "/proc", "proc/./sys/.."])
@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
def test_symlinked_destination_into_proc_refused(runtime, bundle, private_rootfs, fake_proc,
                                                 link, kind):
    """A destination that is a symlink in the image pointing into /proc.

    The planner only sees "/foo"; pyrunc-init finds that the target it
    opened is on procfs and refuses (before the fix this put the fake
    /proc/sys in front of the container's, read-only remount included).
    """
    os.symlink(link, private_rootfs / "foo")
    cfg = config_for(private_rootfs, ["cat", "/proc/sys/net/ipv4/ip_forward"])
    source = str(fake_proc if link == "/proc" else fake_proc / "sys")
    cfg["mounts"].append({"destination": "/foo", "type": kind,
                          "source": source if kind == "bind" else "tmpfs",
                          "options": ["bind"] if kind == "bind" else []})
    cfg["linux"]["sysctl"] = dict(SYSCTL)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("procsym"))
    assert proc.returncode == 1, proc.stdout
    # runc 1.1.5 refuses in its own words ("... is inside /proc", "... is not of type proc").
    line = one_error_line(proc.stderr)
    assert "/proc" in line if OTHER_RUNTIME else "resolves into /proc" in line, line
    fake_untouched(fake_proc)


def test_sysctl_reaches_the_container_netns(runtime, bundle, rootfs):
    """Control: the same config without the fake applies the sysctl."""
    cfg = config_for(rootfs, ["cat", "/proc/sys/net/ipv4/ip_forward"])
    cfg["root"]["readonly"] = True
    cfg["linux"]["sysctl"] = dict(SYSCTL)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("sysctl"))
    assert (proc.returncode, proc.stdout) == (0, b"1\n"), proc.stderr


# ---- pyrunc-init writes through its startup procfs handle ---------------------


def test_write_proc_ignores_a_fake_proc(root: Path, fake_proc: Path) -> None:  # noqa: F811
    """A hand-made plan binds the fake over the container's /proc, then asks
    for the sysctl after pivot_root, where a path-based write would land
    in the fake.  The real sysctl (read from a fresh procfs of the
    container's netns at /mnt) must change, the fake must not."""
    steps = container(
        root,
        "cat /proc/sys/net/ipv4/ip_forward /mnt/sys/net/ipv4/ip_forward",
        before_pivot=[
            step(OP_MOUNT, 0, MOUNT_F_MKDIR, 0o555, strs=["proc", "/mnt", "proc", ""],
                 what="real proc on /mnt"),
            step(OP_MOUNT, MS_BIND, MOUNT_F_BIND_SOURCE | MOUNT_F_PROC_OK, 0,
                 strs=[str(fake_proc), "/proc", "", ""], what="fake /proc"),
        ],
        after_pivot=[step(OP_WRITE_PROC, strs=["sys/net/ipv4/ip_forward", "1"], what="sysctl")])
    res = run(steps)
    assert res.status == 0, res.stderr
    assert res.stdout == FAKE_TEXT + "1\n", res.stdout
    fake_untouched(fake_proc)


# ---- the parent's uid_map / gid_map writes ------------------------------------


def test_id_maps_refuse_a_file_not_on_procfs(tmp_path: Path, monkeypatch) -> None:
    """write_id_maps opens the map file and checks fstatfs before writing."""
    pid = os.getpid()
    fake = tmp_path / str(pid)
    fake.mkdir()
    for name in ("uid_map", "gid_map"):
        (fake / name).write_bytes(b"")
    monkeypatch.setattr(idmap, "PROC_ROOT", str(tmp_path))
    maps = [{"containerID": 0, "hostID": 100000, "size": 1}]
    with pytest.raises(OSError) as info:
        idmap.write_id_maps(pid, maps, maps)
    assert info.value.errno == errno.EXDEV
    assert "not on procfs" in str(info.value)
    assert (fake / "uid_map").read_bytes() == b""
    assert (fake / "gid_map").read_bytes() == b""


def test_id_maps_refuse_a_symlink(tmp_path: Path, monkeypatch) -> None:
    pid = os.getpid()
    fake = tmp_path / str(pid)
    fake.mkdir()
    target = tmp_path / "canary"
    target.write_bytes(b"")
    os.symlink(target, fake / "uid_map")
    monkeypatch.setattr(idmap, "PROC_ROOT", str(tmp_path))
    with pytest.raises(OSError) as info:
        idmap.write_id_maps(pid, [{"containerID": 0, "hostID": 0, "size": 1}], [])
    assert info.value.errno == errno.ELOOP
    assert target.read_bytes() == b""


def test_id_maps_written_on_real_procfs() -> None:
    """Control: the real /proc passes the check (a new user namespace gets maps)."""
    fd = idmap.userns_fd([{"containerID": 0, "hostID": 100000, "size": 10}],
                         [{"containerID": 0, "hostID": 100000, "size": 10}])
    try:
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("user:[")
    finally:
        os.close(fd)


def test_container_with_user_namespace_runs(runtime, bundle, root):  # noqa: F811
    """Control through the CLI: the uid_map/gid_map writes still succeed."""
    dest = root  # a private copy under a 0755 path
    cfg = config_for(dest, ["cat", "/proc/self/uid_map"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("userns"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [b"0", b"100000", b"65536"]
