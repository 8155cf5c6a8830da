"""Attacks on and from a rootless container: it gains nothing its user did not have
outside, and the rootless runtime is not steered by other users' symlinks.

The runtime runs as the tests' own unprivileged user (tests/helpers/rootless.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cgroup_dirs_named, processes_with
from tests.helpers.rootless import runtime_name

RUNC = runtime_name() != "pyrunc"


def _lines(stderr: bytes) -> list[str]:
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text, text
    return [line for line in text.splitlines() if line.strip()]


def _root_owned_files(rootless) -> Path:
    """A root-owned dir (0755) holding root-owned files: one world-readable, one secret."""
    d = rootless.workdir / "host-files"
    d.mkdir()
    (d / "public").write_text("original\n")
    (d / "secret").write_text("secret\n")
    os.chmod(d / "public", 0o644)
    os.chmod(d / "secret", 0o600)
    os.chmod(d, 0o755)
    return d


@pytest.mark.parametrize("maps", ["single", "multi"])
def test_container_root_is_not_host_root(rootless, maps):
    """uid 0 in the container cannot write a root-owned host file bound in rw,
    read a root-only one, or chown its way around that."""
    d = _root_owned_files(rootless)
    user = rootless.user
    cfg = rootless.config(
        ["sh", "-c", "echo pwned > /host/public; echo write=$?; cat /host/secret; "
                     "echo read=$?; chown 0:0 /host/public; echo chown=$?; "
                     "rm -f /host/public; echo rm=$?"],
        maps=user.single_maps() if maps == "single" else user.multi_maps())
    cfg["mounts"].append({"destination": "/host", "type": "bind", "source": str(d),
                          "options": ["rbind", "rw"]})
    proc = rootless("run", "-b", str(rootless.bundle(cfg)), rootless.new_id())
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr
    for what in ("write", "read", "chown", "rm"):
        assert f"{what}=0" not in out, out
    assert "secret" not in out.replace("/host/secret", "")
    assert (d / "public").read_text() == "original\n"
    assert (d / "public").stat().st_uid == 0


def test_mapping_host_root_is_refused(rootless):
    """A config that maps host uid 0 (not the user's to give) never runs."""
    user = rootless.user
    maps = user.multi_maps()
    maps["uidMappings"][1] = {"containerID": 1, "hostID": 0, "size": 1}
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(rootless.config(["true"], maps=maps))), cid)
    assert proc.returncode == 1
    if not RUNC:
        (line,) = _lines(proc.stderr)
        assert line.startswith("linux.uidMappings: host ids 0-0 ")
    assert not (rootless.root / cid).exists()
    assert processes_with(cid) == [] and cgroup_dirs_named(cid) == []


def test_gid_mapping_outside_subgid_is_refused(rootless):
    user = rootless.user
    maps = user.multi_maps()
    maps["gidMappings"][1] = {"containerID": 1, "hostID": user.subgid[0] + user.subgid[1],
                              "size": 1}
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(rootless.config(["true"], maps=maps))), cid)
    assert proc.returncode == 1
    if not RUNC:
        (line,) = _lines(proc.stderr)
        assert line.startswith("linux.gidMappings: ")
    assert not (rootless.root / cid).exists()


def _shared_runtime_dir(rootless) -> Path:
    """A world-writable sticky dir (a misconfigured $XDG_RUNTIME_DIR, /tmp-like)."""
    shared = rootless.workdir / "shared-xdg"
    shared.mkdir()
    os.chmod(rootless.workdir, 0o755)
    os.chmod(shared, 0o1777)
    return shared


def test_symlinked_state_root_in_xdg_runtime_dir_is_refused(rootless):
    """Another user's symlink where the default --root would go is not followed: not
    even to a directory of the victim's own, which it could chmod and fill."""
    shared = _shared_runtime_dir(rootless)
    trap = rootless.workdir / "victims-dir"
    trap.mkdir()
    os.chmod(trap, 0o755)
    os.chown(trap, rootless.user.uid, rootless.user.gid)
    name = runtime_name()
    os.symlink(trap, shared / name)
    os.lchown(shared / name, 65534, 65534)  # made by "nobody"
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(rootless.config(["true"]))), cid,
                    env={"XDG_RUNTIME_DIR": str(shared)})
    if RUNC and proc.returncode == 0:
        pytest.xfail("runc 1.1.5 follows the symlink (chmods and uses the victim's dir)")
    assert proc.returncode != 0
    if not RUNC:
        (line,) = _lines(proc.stderr)
        assert str(shared / name) in line
    assert list(trap.iterdir()) == []
    assert os.stat(trap).st_mode & 0o7777 == 0o755  # not chmod'ed through the link


def test_foreign_state_root_in_xdg_runtime_dir_is_refused(rootless):
    """A directory another user made there (open to all) is not used for state."""
    shared = _shared_runtime_dir(rootless)
    name = runtime_name()
    foreign = shared / name
    foreign.mkdir()
    os.chmod(foreign, 0o777)
    os.chown(foreign, 65534, 65534)
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(rootless.config(["true"]))), cid,
                    env={"XDG_RUNTIME_DIR": str(shared)})
    assert proc.returncode != 0
    if not RUNC:
        (line,) = _lines(proc.stderr)
        assert str(foreign) in line
    assert list(foreign.iterdir()) == []


def test_symlinked_rootfs_in_bundle_is_refused(rootless):
    """A rootfs path that is another user's symlink is refused, not followed."""
    bundle = rootless.workdir / "linked-bundle"
    bundle.mkdir()
    os.chown(bundle, rootless.user.uid, rootless.user.gid)
    os.symlink(rootless.user.rootfs, bundle / "rootfs")
    os.lchown(bundle / "rootfs", 65534, 65534)
    cfg = rootless.config(["true"])
    cfg["root"] = {"path": "rootfs"}
    import json

    (bundle / "config.json").write_text(json.dumps(cfg))
    os.chown(bundle / "config.json", rootless.user.uid, rootless.user.gid)
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(bundle), cid)
    if RUNC and proc.returncode == 0:
        pytest.xfail("runc 1.1.5 follows a symlinked rootfs")
    assert proc.returncode == 1
    assert "rootfs" in _lines(proc.stderr)[-1]
    assert not (rootless.root / cid).exists()


def test_bind_source_symlink_gives_no_more_than_the_user_has(rootless):
    """A bind source that is a symlink to a root-only file: bound, but unreadable inside."""
    d = _root_owned_files(rootless)
    link = rootless.workdir / "link-to-secret"
    os.symlink(d / "secret", link)
    cfg = rootless.config(["sh", "-c", "cat /s; echo read=$?"])
    cfg["mounts"].append({"destination": "/s", "type": "bind", "source": str(link),
                          "options": ["bind", "ro"]})
    proc = rootless("run", "-b", str(rootless.bundle(cfg)), rootless.new_id())
    out = proc.stdout.decode()
    assert "secret" not in out.replace("/s:", "")
    assert "read=0" not in out


def test_state_is_not_readable_by_other_users(rootless):
    """The state (the whole config, env included) is the owner's alone."""
    cid = rootless.new_id()
    cfg = rootless.config(["sleep", "60"], env=["PATH=/bin", "TOKEN=hunter2"])
    rootless.ok("run", "-d", "-b", str(rootless.bundle(cfg)), cid)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    leaked = subprocess.run(nobody + ["grep", "-r", "hunter2", str(rootless.user.xdg)],
                            capture_output=True, timeout=30)
    assert b"hunter2" not in leaked.stdout
    for path in rootless.root.rglob("*"):
        if path.is_file() and path.name != "exec.fifo":
            assert path.stat().st_mode & 0o077 == 0, path
