"""Joining an existing mount namespace by path (issue 15, item 2).

Each test makes its own mount namespace: held by a bind mount of
/proc/<pid>/ns/mnt on a file in the test's temp dir, or by a sleeping
process.  In it, a tmpfs "marker" is mounted on the rootfs's /home.  As
with runc, the container's rootfs and mounts are set up *in* the joined
namespace (its "/" turns slave, the rootfs is bound and pivoted into), so
the marker is visible to the container and the host's mount table never
sees any of it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import held_mount_namespace, mounts_under, needs_root

pytestmark = needs_root


def with_mount_path(cfg: dict, path: str) -> dict:
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "mount":
            ns["path"] = path
    return cfg


def mount_marker(ns_path: str, rootfs: Path, text: str) -> None:
    """A tmpfs on <rootfs>/home holding a file "marker", inside the namespace only."""
    subprocess.run(["nsenter", f"--mount={ns_path}", "sh", "-c",
                    f'mount -t tmpfs pyrunc-marker "{rootfs}/home" && '
                    f'echo {text} > "{rootfs}/home/marker"'], check=True)


@pytest.fixture
def held_ns(tmp_path: Path, rootfs: Path) -> Iterator[tuple[str, str]]:
    """(path of a mount namespace held by a bind mount, the marker text)."""
    with held_mount_namespace(tmp_path) as ns_file:
        text = uuid.uuid4().hex
        mount_marker(str(ns_file), rootfs, text)
        yield str(ns_file), text


def ns_inode(path: str) -> int:
    return os.stat(path).st_ino


def test_container_runs_in_the_joined_namespace_and_sees_its_mounts(runtime, bundle, rootfs, held_ns):
    ns_file, text = held_ns
    before = mounts_under(str(rootfs))
    cfg = with_mount_path(bundle.config(["sh", "-c", "cat /home/marker; readlink /proc/self/ns/mnt; "
                                         "exec ls /proc/self/fd"]), ns_file)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("mntjoin"))
    assert proc.returncode == 0, proc.stderr.decode()
    marker, ns, *fds = proc.stdout.decode().split()
    assert marker == text
    assert ns == f"mnt:[{ns_inode(ns_file)}]"
    # stdio and ls's own directory: no host fd came along.
    assert sorted(fds) == ["0", "1", "2", "3"], fds
    # Nothing of the container (its rootfs bind, /proc, /dev, the marker) reached the host.
    assert mounts_under(str(rootfs)) == before == []


def test_namespace_held_by_a_sleeping_process(runtime, bundle, rootfs):
    sleeper = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "600"])
    try:
        ns_path = f"/proc/{sleeper.pid}/ns/mnt"
        # unshare has exec'd sleep once the namespace differs from ours.
        for _ in range(500):
            if os.readlink(ns_path) != os.readlink("/proc/self/ns/mnt"):
                break
            subprocess.run(["sleep", "0.01"], check=True)
        text = uuid.uuid4().hex
        mount_marker(ns_path, rootfs, text)
        cfg = with_mount_path(bundle.config(["cat", "/home/marker"]), ns_path)
        proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("mntjoin"))
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode().strip() == text
        assert mounts_under(str(rootfs)) == []
    finally:
        sleeper.kill()
        sleeper.wait()


def test_exec_joins_the_same_namespace(runtime, bundle, held_ns):
    ns_file, text = held_ns
    cid = runtime.new_id("mntjoin")
    cfg = with_mount_path(bundle.config(["sleep", "300"]), ns_file)
    proc = runtime("run", "-d", "-b", str(bundle(config=cfg)), cid,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.returncode == 0
    out = runtime("exec", cid, "sh", "-c", "cat /home/marker; readlink /proc/self/ns/mnt")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == [text, f"mnt:[{ns_inode(ns_file)}]"]


def test_masked_and_readonly_paths_apply_in_the_joined_namespace(runtime, bundle, held_ns):
    ns_file, _ = held_ns
    cfg = with_mount_path(bundle.config(["sh", "-c", "cat /proc/kcore | wc -c; "
                                         "grep ' /proc/sys ' /proc/self/mountinfo; echo done"]), ns_file)
    cfg["linux"]["maskedPaths"] = ["/proc/kcore"]
    cfg["linux"]["readonlyPaths"] = ["/proc/sys"]
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("mntjoin"))
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[0].strip() == "0"
    assert lines[1].split()[5].split(",")[0] == "ro", lines[1]
    assert lines[-1] == "done"


def test_no_python_in_the_joined_namespace(runtime, bundle, held_ns):
    """Between create and start, the only process in the namespace is the
    container's init, and it is not a Python interpreter."""
    ns_file, _ = held_ns
    cid = runtime.new_id("mntjoin")
    cfg = with_mount_path(bundle.config(["true"]), ns_file)
    proc = runtime("create", "-b", str(bundle(config=cfg)), cid,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.returncode == 0
    inode = f"mnt:[{ns_inode(ns_file)}]"
    inside = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "mnt") == inode:
                inside.append((int(entry.name), os.readlink(entry / "exe")))
        except OSError:
            continue
    init = runtime.state(cid)["pid"]
    assert [pid for pid, _ in inside] == [init], inside
    assert "python" not in inside[0][1], inside
    started = runtime("start", cid)
    assert started.returncode == 0, started.stderr
