"""Mount behaviours where runc's users rely on runc's exact rules (issue 16).

Each test runs the same config under pyrunc and, with PYRUNC_TEST_RUNTIME=runc,
under runc; where runc 1.1.5 and newer runc differ the test follows newer runc
and says so (docs/spec-conformance.md lists the differences).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import needs_root, runtime_argv
from tests.integration.test_namespaces import public_rootfs as public_rootfs  # fixture
from tests.integration.test_namespaces import userns_config

pytestmark = needs_root

RUNC_1_1 = "runc" in os.path.basename(runtime_argv()[0])


def run(runtime: Any, bundle: Any, cfg: dict[str, Any]) -> subprocess.CompletedProcess:
    return runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())


def run_ok(runtime: Any, bundle: Any, cfg: dict[str, Any]) -> str:
    proc = run(runtime, bundle, cfg)
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
    return proc.stdout.decode()


def mount_options(proc_mounts: str, mountpoint: str) -> set[str]:
    """Options of the last mount on mountpoint in /proc/mounts text."""
    found = None
    for line in proc_mounts.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == mountpoint:
            found = set(fields[3].split(","))
    assert found is not None, f"{mountpoint} not mounted:\n{proc_mounts}"
    return found


def set_options(cfg: dict[str, Any], destination: str, *extra: str) -> None:
    for m in cfg["mounts"]:
        if m["destination"] == destination:
            m["options"] = [*m.get("options", []), *extra]
            return
    raise AssertionError(destination)


# --- read-only tmpfs and /dev: made read-only last -------------------------------

def test_read_only_dev_still_gets_devpts_and_device_nodes(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "cat /proc/mounts; test -c /dev/null && echo null-ok; "
                                     "touch /dev/new 2>/dev/null || echo dev-is-ro"])
    set_options(cfg, "/dev", "ro")
    out = run_ok(runtime, bundle, cfg)
    assert "ro" in mount_options(out, "/dev")
    assert "rw" in mount_options(out, "/dev/pts")
    assert "null-ok" in out and "dev-is-ro" in out


def test_read_only_tmpfs_can_hold_later_mounts(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "cat /proc/mounts; touch /tmp/sub/x && echo sub-rw; "
                                     "touch /tmp/y 2>/dev/null || echo tmp-is-ro"])
    set_options(cfg, "/tmp", "ro")
    cfg["mounts"].append({"destination": "/tmp/sub", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=1m"]})
    out = run_ok(runtime, bundle, cfg)
    assert "ro" in mount_options(out, "/tmp") and "rw" in mount_options(out, "/tmp/sub")
    assert "sub-rw" in out and "tmp-is-ro" in out


# --- createContainer hooks run in the rootfs -------------------------------------

def test_create_container_hook_runs_with_the_rootfs_as_cwd(runtime, bundle, rootfs, tmp_path):
    out = tmp_path / "hook-cwd"
    cfg = bundle.config(["true"])
    cfg["hooks"] = {"createContainer": [{
        "path": "/bin/sh", "args": ["sh", "-c", f'readlink /proc/self/cwd > "{out}"']}]}
    run_ok(runtime, bundle, cfg)
    assert out.read_text().strip() == str(rootfs)



# --- tmpfs modes ------------------------------------------------------------------

@pytest.fixture
def own_rootfs(rootfs: Path, tmp_path: Path) -> Path:
    """A copy of the rootfs this test may change."""
    copy = tmp_path / "own-rootfs"
    shutil.copytree(rootfs, copy, symlinks=True)
    return copy


def modes(out: str) -> dict[str, str]:
    return dict(line.split() for line in out.splitlines())


def tmpfs(dest: str, *options: str) -> dict[str, Any]:
    return {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": list(options)}


def test_tmpfs_takes_the_mode_of_the_directory_it_covers(runtime, bundle, own_rootfs):
    for name, mode in (("private", 0o700), ("sticky", 0o1777)):
        (own_rootfs / name).mkdir()
        (own_rootfs / name).chmod(mode)
    cfg = bundle.config(["stat", "-c", "%n %a", "/private", "/sticky", "/made"])
    cfg["root"]["path"] = str(own_rootfs)
    cfg["mounts"] += [tmpfs("/private"), tmpfs("/sticky", "size=1m"), tmpfs("/made")]
    # A directory made for the mount leaves the tmpfs at its default, 1777.
    assert modes(run_ok(runtime, bundle, cfg)) == {
        "/private": "700", "/sticky": "1777", "/made": "1777"}


@pytest.mark.xfail(RUNC_1_1, reason="runc 1.1.5 chmods the tmpfs to the directory's mode "
                   "after the mount, over mode=; runc 1.2 puts the directory's mode first in "
                   "the data, so mode= wins", strict=True)
def test_tmpfs_mode_option_wins_over_the_directory(runtime, bundle, own_rootfs):
    # The shared rootfs may already hold /data: runtimes make mount targets.
    (own_rootfs / "data").mkdir(exist_ok=True)
    (own_rootfs / "data").chmod(0o755)
    cfg = bundle.config(["stat", "-c", "%n %a", "/data", "/tmp"])
    cfg["root"]["path"] = str(own_rootfs)
    cfg["mounts"].append(tmpfs("/data", "mode=1750"))
    set_options(cfg, "/tmp", "mode=0700")  # after the config's own mode=1777
    assert modes(run_ok(runtime, bundle, cfg)) == {"/data": "1750", "/tmp": "700"}


# --- bind sources inside the rootfs ------------------------------------------------

def test_bind_source_inside_the_rootfs_is_looked_up_when_mounted(runtime, bundle, own_rootfs):
    cfg = bundle.config(["sh", "-c", "echo in-b > /b/file; cat /a/x/file; ls -d /c; cat /d"])
    cfg["root"]["path"] = str(own_rootfs)
    cfg["mounts"] += [
        tmpfs("/a", "size=1m"), tmpfs("/a/x", "size=1m"),
        # /a/x exists only once the mounts above are made.
        {"destination": "/b", "type": "bind", "source": str(own_rootfs / "a" / "x"),
         "options": ["bind"]},
        {"destination": "/c", "type": "bind", "source": str(own_rootfs / "a" / "x"),
         "options": ["rbind", "ro"]},
        # A file source makes a file target.
        {"destination": "/d", "type": "bind", "source": str(own_rootfs / "etc" / "hostname"),
         "options": ["bind"]},
    ]
    out = run_ok(runtime, bundle, cfg)
    assert out.splitlines() == ["in-b", "/c", "pyrunc"]
    assert not (own_rootfs / "a" / "x" / "file").exists()
    assert (own_rootfs / "d").is_file()


def test_bind_source_is_a_dangling_symlink(runtime, bundle, tmp_path):
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    cfg = bundle.config(["true"])
    cfg["mounts"].append({"destination": "/mnt/dangling-target", "type": "bind",
                          "source": str(link), "options": ["bind"]})
    cid = runtime.new_id()
    proc = runtime("run", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert str(link) in err and "no such file or directory" in err, err
    assert not (runtime.root / cid).exists()
    assert not (Path(cfg["root"]["path"]) / "mnt" / "dangling-target").exists()


# --- locked mount flags in a user namespace --------------------------------------

@pytest.fixture
def locked_source() -> Iterator[Path]:
    """A host tmpfs mounted nosuid,nodev,noexec, on a path every uid can traverse."""
    top = Path(tempfile.mkdtemp(prefix="pyrunc-locked-"))
    top.chmod(0o755)
    mnt = top / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,nodev,noexec,size=1m,mode=755",
                    "pyrunc-locked", str(mnt)], check=True)
    try:
        (mnt / "file").write_text("locked\n")
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)
        shutil.rmtree(top)


@pytest.mark.xfail(RUNC_1_1, reason="runc 1.1.5 fails the remount with EPERM; runc 1.2 "
                   "retries it with the locked flags", strict=True)
def test_read_only_bind_of_a_nosuid_mount_in_a_user_namespace(runtime, bundle, public_rootfs,
                                                              locked_source):
    cfg = userns_config(bundle, ["sh", "-c", "cat /proc/mounts; cat /tmp/locked/file"],
                        rootfs=public_rootfs)
    cfg["mounts"].append({"destination": "/tmp/locked", "type": "bind",
                          "source": str(locked_source),
                          "options": ["bind", "ro"]})
    out = run_ok(runtime, bundle, cfg)
    assert {"ro", "nosuid", "nodev", "noexec"} <= mount_options(out, "/tmp/locked")
    assert out.endswith("locked\n")


def test_bind_asking_to_clear_a_locked_flag_fails(runtime, bundle, public_rootfs, locked_source):
    cfg = userns_config(bundle, ["true"], rootfs=public_rootfs)
    cfg["mounts"].append({"destination": "/tmp/locked", "type": "bind",
                          "source": str(locked_source),
                          "options": ["bind", "ro", "suid"]})
    cid = runtime.new_id()
    proc = runtime("run", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode == 1
    assert "operation not permitted" in proc.stderr.decode().lower()
    assert not (runtime.root / cid).exists()


# --- idmapped mounts ---------------------------------------------------------------

@pytest.mark.xfail(RUNC_1_1, reason="runc 1.1.5 has no idmapped mounts and ignores a mount's "
                   "uidMappings/gidMappings; runc 1.2 takes them to mean idmap", strict=True)
def test_mount_mappings_without_the_idmap_option_make_an_idmapped_mount(runtime, bundle, tmp_path):
    src = tmp_path / "owned"
    src.mkdir()
    (src / "u1000").write_text("x")
    os.chown(src / "u1000", 1000, 1000)
    maps = [{"containerID": 1000, "hostID": 2000, "size": 10}]
    cfg = bundle.config(["stat", "-c", "%u %g", "/mnt/u1000"])
    cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(src),
                          "options": ["bind"], "uidMappings": maps, "gidMappings": maps})
    assert run_ok(runtime, bundle, cfg) == "2000 2000\n"
    assert (src / "u1000").stat().st_uid == 1000


# --- bind sources the container's root cannot reach ------------------------------

def test_bind_source_only_host_root_can_reach_in_a_user_namespace(runtime, bundle, public_rootfs,
                                                                 tmp_path):
    # Opened by the host's root in the container's mount namespace (runc's
    # way), then bound by the container's root.
    hidden = tmp_path / "private"  # pytest's tmp is 0700: uid 100000 cannot pass it
    (hidden / "data").mkdir(parents=True)
    hidden.chmod(0o700)
    (hidden / "data" / "file").write_text("reached\n")
    # No fd of the opening reaches the process: only stdio and ls's own.
    cfg = userns_config(bundle, ["sh", "-c", "cat /tmp/data/file; ls /proc/self/fd"],
                        rootfs=public_rootfs)
    cfg["mounts"].append({"destination": "/tmp/data", "type": "bind",
                          "source": str(hidden / "data"), "options": ["bind"]})
    assert run_ok(runtime, bundle, cfg).split() == ["reached", "0", "1", "2", "3"]


# --- --no-pivot and a fresh procfs -------------------------------------------------

def own_mountinfo() -> list[str]:
    """The test process's mount table, without the per-boot mount ids."""
    return sorted(" ".join(line.split()[2:]) for line in
                  Path("/proc/self/mountinfo").read_text().splitlines())


@pytest.mark.parametrize("userns", [False, True], ids=["host-userns", "userns"])
@pytest.mark.parametrize("no_pivot", [False, True], ids=["pivot", "no-pivot"])
def test_nested_user_namespace_cannot_mount_a_fresh_proc(runtime, bundle, public_rootfs,
                                                         no_pivot, userns):
    # The kernel lets a user namespace mount procfs or sysfs only where one
    # is already fully visible (no locked mounts over it) in its mount
    # namespace. The container's own /proc and /sys carry the masks, so a
    # user namespace made inside the container cannot mount unmasked ones.
    # With MS_MOVE and chroot the host's /proc and /sys would still be in
    # the container's mount namespace, outside its root: the runtime detaches
    # them first (as runc does), and the mount fails as with pivot_root. In
    # a user namespace they are locked (cannot be detached) and get covered.
    # The user is not root: mapping host uid 0 into a new user namespace
    # takes CAP_SETFCAP, which the container lacks.
    script = ("mkdir -p /tmp/p /tmp/s; "
              "unshare -U -r -m -p -f sh -c 'mount -t proc proc /tmp/p; echo proc=$?; "
              "mount -t sysfs sysfs /tmp/s; echo sysfs=$?' 2>&1; "
              "head -1 /proc/self/status")
    if userns:
        cfg = userns_config(bundle, ["sh", "-c", script], rootfs=public_rootfs)
    else:
        cfg = bundle.config(["sh", "-c", script])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    before = own_mountinfo()
    proc = runtime("run", *(["--no-pivot"] if no_pivot else []), "-b", str(bundle(config=cfg)),
                   runtime.new_id())
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
    out = proc.stdout.decode().splitlines()
    assert out[-1] == "Name:\thead", out  # the container's own /proc still works
    assert "proc=0" not in out and "sysfs=0" not in out, out
    assert "proc=1" in out and "sysfs=1" in out, out
    assert "mount: permission denied (are you root?)" in out
    assert own_mountinfo() == before
