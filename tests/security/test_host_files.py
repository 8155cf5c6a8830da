"""Attack class 10: host files stay untouched.

Creating and running a container never changes the owner, mode or content
of a host file: not the host's device nodes bound into a user-namespaced
container (a runtime that chowns or chmods the node to the device entry's
uid/fileMode changes the host's /dev), not the parent directories of a
bind-mounted volume, and nothing a symlink in the image points at.

Host device nodes are only stat'ed, never changed; every other canary lives
in a temp dir.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import needs_root, runc_differs
from tests.security.conftest import config_for, host_stat, one_error_line, tree_snapshot

pytestmark = needs_root

USERNS = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
          "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}


def full_stat(path: str | Path) -> tuple[int, ...]:
    """host_stat plus size and mtime/ctime (ns): any change to the inode shows."""
    st = os.lstat(path)
    return (*host_stat(str(path)), st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@pytest.fixture
def public_rootfs(rootfs: Path, probe_binary: Path) -> Iterator[Path]:
    """A private rootfs copy under a 0755 temp dir (reachable from a user namespace)."""
    top = Path(tempfile.mkdtemp(prefix="pyrunc-hostfiles-"))
    top.chmod(0o755)
    try:
        shutil.copytree(rootfs, top / "rootfs", symlinks=True)
        shutil.copy2(probe_binary, top / "rootfs" / "probe")
        yield top / "rootfs"
    finally:
        shutil.rmtree(top, ignore_errors=True)


DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")


@pytest.mark.parametrize("userns", [True, False])
def test_host_device_nodes_untouched(runtime, bundle, public_rootfs, userns, request):
    """Device entries ask for another owner and mode; the host nodes keep theirs."""
    if userns and os.statvfs("/dev/null").f_flag & (os.ST_NOSUID | os.ST_NOEXEC):
        request.applymarker(runc_differs("runc 1.1.5 fails the ro remount of a bind from a nosuid/noexec "
                                         "/dev in a user namespace (EPERM); runc 1.2 keeps the locked flags"))
    before = {d: full_stat(d) for d in DEVICES if os.path.exists(d)}
    # The container itself changes nothing: a root container could chmod a
    # host node it is given (runc's too); the point is what pyrunc does.
    cfg = config_for(public_rootfs, ["sh", "-c", "ls -ln /dev/zero /dev/full /dev/mynull"])
    cfg["linux"]["devices"] = [
        {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600,
         "uid": 1, "gid": 1},
        {"path": "/dev/full", "type": "c", "major": 1, "minor": 7, "fileMode": 0o640,
         "uid": 0, "gid": 0},
    ]
    cfg["mounts"].append({"destination": "/dev/mynull", "type": "bind", "source": "/dev/null",
                          "options": ["bind", "ro"]})
    if userns:
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"].update(USERNS)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("dev"))
    assert proc.returncode == 0, proc.stderr
    after = {d: full_stat(d) for d in before}
    for d in before:
        # mtime/ctime of a char device change when it is written; compare the rest.
        assert before[d][:5] == after[d][:5], f"host {d} changed: {before[d]} -> {after[d]}"
        assert before[d][-1] == after[d][-1] or d in ("/dev/null", "/dev/tty"), \
            f"host {d} ctime changed (chmod/chown?)"


def test_volume_parents_untouched(runtime, bundle, public_rootfs, tmp_path):
    """Binding parent/a/b/vol (and a file beside it) deep into the container."""
    parent = tmp_path / "parent"
    vol = parent / "a" / "b" / "vol"
    vol.mkdir(parents=True)
    (vol / "data").write_text("volume data\n")
    (parent / "a" / "b" / "file").write_text("file data\n")
    for i, d in enumerate([parent, parent / "a", parent / "a" / "b", vol]):
        d.chmod([0o711, 0o750, 0o701, 0o770][i])
        os.chown(d, 1234 + i, 4321 + i)  # temp dirs of the test, not host files
    watched = [parent, parent / "a", parent / "a" / "b", vol, vol / "data",
               parent / "a" / "b" / "file"]
    before = {p: full_stat(p) for p in watched}
    snap = tree_snapshot(parent)
    cfg = config_for(public_rootfs, ["sh", "-c", "cat /deep/x/vol/data /deep/file; ls -ld /deep"])
    cfg["mounts"] += [
        {"destination": "/deep/x/vol", "type": "bind", "source": str(vol), "options": ["rbind", "ro"]},
        {"destination": "/deep/file", "type": "bind", "source": str(parent / "a" / "b" / "file"),
         "options": ["bind", "ro"]},
    ]
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"].update(USERNS)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("vol"))
    # Whether or not the user namespace can reach the volume, nothing changes.
    if proc.returncode == 0:
        assert b"volume data" in proc.stdout
    assert {p: full_stat(p) for p in watched} == before
    assert tree_snapshot(parent) == snap


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    c = tmp_path / "canary"
    (c / "etc").mkdir(parents=True)
    (c / "etc" / "hosts").write_text("canary hosts\n")
    (c / "dir").mkdir()
    (c / "dir" / "file").write_text("canary file\n")
    (c / "file").write_text("canary\n")
    c.chmod(0o755)
    yield c


LINKS = {
    # image path -> link target (absolute host paths of the canary, and relative ones)
    "mnt/abs": "{canary}/dir",
    "mnt/rel": "../../../../../../../../{canary}/dir",
    "mnt/file": "{canary}/file",
    "srv": "{canary}/dir",
    "etc/hosts": "{canary}/etc/hosts",
    "home": "{canary}",
}


@pytest.mark.parametrize("inside", [False, True])
def test_symlinks_in_the_image_reach_no_host_file(runtime, bundle, public_rootfs, canary, inside):
    """Mount targets, masked/readonly paths, the cwd and /etc/hosts are
    symlinks to the canary; whatever pyrunc does, it does inside the rootfs.

    inside=False: the links dangle inside the rootfs (pyrunc may refuse);
    inside=True: the rootfs holds a copy of the canary tree at the same
    path, so the links resolve inside it and the container must run.
    """
    if inside:
        shutil.copytree(canary, public_rootfs / str(canary).lstrip("/"), symlinks=True)
    for rel, target in LINKS.items():
        p = public_rootfs / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        os.symlink(target.format(canary=str(canary).lstrip("/") if target.startswith("..")
                                 else canary), p)
    before = tree_snapshot(canary)
    stats = {p: full_stat(p) for p in [canary, *canary.rglob("*")]}
    src = canary.parent / "src"
    src.mkdir()
    (src / "f").write_text("from the volume\n")
    srcfile = canary.parent / "srcfile"
    srcfile.write_text("bound file\n")
    cfg = config_for(public_rootfs, ["sh", "-c",
                                     "pwd; ls /mnt/abs /mnt/rel /srv; cat /mnt/file; "
                                     "echo pwned > /mnt/abs/new 2>/dev/null; "
                                     "echo pwned > /etc/hosts 2>/dev/null; true"],
                     cwd="/home/dir")
    cfg["mounts"] += [
        {"destination": "/mnt/abs", "type": "bind", "source": str(src), "options": ["rbind"]},
        {"destination": "/mnt/rel", "type": "tmpfs", "source": "tmpfs", "options": []},
        {"destination": "/mnt/file", "type": "bind", "source": str(srcfile), "options": ["bind"]},
        {"destination": "/srv", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]},
        {"destination": "/etc/hosts", "type": "bind", "source": str(srcfile),
         "options": ["bind", "ro"]},
        {"destination": "/home/new/dir", "type": "tmpfs", "source": "tmpfs", "options": []},
    ]
    if inside:  # the canary copy lives under the image's /tmp: keep it visible
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/tmp"]
    cfg["linux"]["maskedPaths"] = ["/mnt/file", "/home/dir", "/home/file"]
    cfg["linux"]["readonlyPaths"] = ["/home/etc", "/mnt/abs"]
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("links"))
    if inside:
        assert proc.returncode == 0, proc.stderr
        # /home/dir is masked after the binds, and it is the same directory
        # as /mnt/abs inside the rootfs; /mnt/file is masked too.
        assert b"bound file" not in proc.stdout and b"canary" not in proc.stdout.split(b"\n", 1)[1]
    elif proc.returncode != 0:
        one_error_line(proc.stderr)
    assert tree_snapshot(canary) == before, proc.stdout
    assert {p: full_stat(p) for p in stats} == stats
    assert not (canary / "new").exists() and not (canary / "home").exists()
