"""The root filesystem and the config's mounts, observed from inside real containers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import OTHER_RUNTIME, cgroups_path_for, mounts_under, needs_root, runc_differs

pytestmark = needs_root


def run(runtime, bundle_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return runtime("run", *extra, "-b", str(bundle_dir), runtime.new_id())


def run_ok(runtime, bundle, cfg, *extra: str) -> str:
    proc = run(runtime, bundle(config=cfg), *extra)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def mount_entry(proc_mounts: str, mountpoint: str) -> tuple[str, set[str]]:
    """(fstype, options) of the last mount on mountpoint in /proc/mounts text."""
    found = None
    for line in proc_mounts.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == mountpoint:
            found = (fields[2], set(fields[3].split(",")))
    assert found is not None, f"{mountpoint} not mounted:\n{proc_mounts}"
    return found


def mountinfo_entry(mountinfo: str, mountpoint: str) -> list[str]:
    """Fields of the last mountinfo line for mountpoint."""
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == mountpoint:
            found = fields
    assert found is not None, f"{mountpoint} not in mountinfo:\n{mountinfo}"
    return found


def optional_fields(fields: list[str]) -> list[str]:
    return fields[6:fields.index("-")]


# --- root -------------------------------------------------------------------

def test_relative_root_path_copied_into_bundle_writable(runtime, bundle, rootfs):
    cfg = bundle.config(["sh", "-c", "echo written-inside > /root/note; cat /etc/hostname"])
    cfg["root"] = {"path": "rootfs", "readonly": False}
    b = bundle(config=cfg)
    shutil.copytree(rootfs, b / "rootfs", symlinks=True)
    proc = run(runtime, b)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"pyrunc\n"
    assert (b / "rootfs" / "root" / "note").read_text() == "written-inside\n"


def test_readonly_root(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "touch /made-inside 2>&1; echo rc=$?; grep ' / ' /proc/mounts"])
    cfg["root"]["readonly"] = True
    out = run_ok(runtime, bundle, cfg)
    assert "Read-only file system" in out
    assert "rc=1" in out
    _, opts = mount_entry(out, "/")
    assert "ro" in opts
    assert not (Path(cfg["root"]["path"]) / "made-inside").exists()


def test_readonly_root_keeps_tmpfs_mounts_writable(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "echo ok > /tmp/f && cat /tmp/f"])
    cfg["root"]["readonly"] = True
    assert run_ok(runtime, bundle, cfg) == "ok\n"


# --- bind mounts ------------------------------------------------------------

def test_bind_file_read_inside(runtime, bundle, tmp_path):
    src = tmp_path / "hostfile"
    src.write_text("from the host\n")
    cfg = bundle.config(["cat", "/tmp/hostfile"])
    cfg["mounts"].append({"destination": "/tmp/hostfile", "type": "bind", "source": str(src),
                          "options": ["bind", "ro"]})
    assert run_ok(runtime, bundle, cfg) == "from the host\n"


def test_bind_dir_written_inside_read_on_host(runtime, bundle, tmp_path):
    src = tmp_path / "shared"
    src.mkdir()
    cfg = bundle.config(["sh", "-c", "echo from-inside > /tmp/shared/out"])
    cfg["mounts"].append({"destination": "/tmp/shared", "type": "bind", "source": str(src),
                          "options": ["rbind", "rw"]})
    run_ok(runtime, bundle, cfg)
    assert (src / "out").read_text() == "from-inside\n"


def test_bind_ro_refuses_writes(runtime, bundle, tmp_path):
    src = tmp_path / "shared"
    src.mkdir()
    cfg = bundle.config(["sh", "-c", "(echo x > /tmp/shared/out) 2>&1; echo rc=$?; cat /proc/mounts"])
    cfg["mounts"].append({"destination": "/tmp/shared", "type": "bind", "source": str(src),
                          "options": ["bind", "ro", "nosuid", "nodev", "noexec"]})
    out = run_ok(runtime, bundle, cfg)
    assert "Read-only file system" in out and "rc=1" in out
    _, opts = mount_entry(out, "/tmp/shared")
    assert {"ro", "nosuid", "nodev", "noexec"} <= opts
    assert not (src / "out").exists()


def test_relative_bind_source_is_taken_from_the_bundle(runtime, bundle):
    cfg = bundle.config(["cat", "/tmp/data/file"])
    cfg["mounts"].append({"destination": "/tmp/data", "type": "bind", "source": "data",
                          "options": ["rbind"]})
    b = bundle(config=cfg)
    (b / "data").mkdir()
    (b / "data" / "file").write_text("in the bundle\n")
    proc = run(runtime, b)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"in the bundle\n"


@pytest.mark.parametrize("kind,seen", [("rbind", "inner"), ("bind", "missing")])
def test_rbind_includes_submounts_and_bind_does_not(runtime, bundle, dir_with_submount,
                                                   kind, seen):
    cfg = bundle.config(["sh", "-c", ("cat /tmp/tree/top; cat /tmp/tree/sub/inner 2>/dev/null"
                         " || echo missing")])
    cfg["mounts"].append({"destination": "/tmp/tree", "type": "bind",
                          "source": str(dir_with_submount), "options": [kind]})
    assert run_ok(runtime, bundle, cfg).split() == ["top", seen]


# --- filesystems ------------------------------------------------------------

def test_base_filesystems_are_mounted(runtime, bundle):
    out = run_ok(runtime, bundle, bundle.config(["cat", "/proc/mounts"]))
    assert mount_entry(out, "/proc")[0] == "proc"
    assert mount_entry(out, "/sys")[0] == "sysfs"
    assert "ro" in mount_entry(out, "/sys")[1]
    assert mount_entry(out, "/dev")[0] == "tmpfs"
    assert mount_entry(out, "/dev/pts")[0] == "devpts"
    assert mount_entry(out, "/dev/shm")[0] == "tmpfs"
    assert mount_entry(out, "/dev/mqueue")[0] == "mqueue"


def test_tmpfs_mode_and_size(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "cat /proc/mounts; stat -c %a /tmp/small"])
    cfg["mounts"].append({"destination": "/tmp/small", "type": "tmpfs", "source": "tmpfs",
                          "options": ["mode=700", "size=2m"]})
    out = run_ok(runtime, bundle, cfg)
    fstype, opts = mount_entry(out, "/tmp/small")
    assert fstype == "tmpfs"
    assert {"mode=700", "size=2048k"} <= opts
    assert out.splitlines()[-1] == "700"


def test_proc_is_the_containers(runtime, bundle):
    out = run_ok(runtime, bundle, bundle.config(["sh", "-c", "ls /proc/1/exe; cat /proc/1/comm"]))
    assert out.splitlines()[-1] == "cat"


def test_sysfs_and_mqueue_work(runtime, bundle):
    cfg = bundle.config(["sh", "-c", ("cat /sys/kernel/ostype 2>/dev/null || ls /sys/class;"
                         " ls -d /dev/mqueue; touch /sys/x 2>&1; echo rc=$?")])
    out = run_ok(runtime, bundle, cfg)
    assert "/dev/mqueue" in out
    assert "rc=1" in out


def test_devpts_is_a_new_instance(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "ls /dev/pts; grep devpts /proc/mounts"])
    out = run_ok(runtime, bundle, cfg)
    names = out.splitlines()[0].split()
    assert names == ["ptmx"]
    _, opts = mount_entry(out, "/dev/pts")
    assert {"mode=620", "ptmxmode=666", "gid=5"} <= opts


CGROUP_MOUNT = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}


@pytest.mark.parametrize("cgroupns", [True, False])
def test_cgroup_mount_shows_the_containers_own_cgroup(runtime, bundle, cgroupns, request):
    cid = runtime.new_id()
    from tests.helpers.cgroupfs import inside_path, mode

    if not cgroupns and mode() == "v2":
        request.applymarker(runc_differs("runc 1.1.5 on cgroup v2 without a cgroup namespace mounts a "
                                         "cgroup that holds processes outside the container"))

    procs, new = inside_path("pids", "cgroup.procs"), inside_path("pids", "x")
    cfg = bundle.config(["sh", "-c", (f"cat {procs};"
                         f" grep -c cgroup /proc/mounts; touch {new} 2>&1;"
                         " echo rc=$?")])
    cfg["linux"]["cgroupsPath"] = cgroups_path_for("pyrunc-test", cid)[0]
    cfg["mounts"].append(CGROUP_MOUNT)
    if not cgroupns:
        cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"]
                                      if ns["type"] != "cgroup"]
    proc = run(runtime, bundle(config=cfg))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode().splitlines()
    # Only the container's processes: its own cgroup, not the host's root.
    assert out[0] == "1"
    # v1 and hybrid: a tmpfs and each hierarchy; pure v2: one cgroup2 mount.
    assert int(out[1]) >= (1 if mode() == "v2" else 2)
    assert "rc=1" in out


# --- options ----------------------------------------------------------------

@pytest.mark.parametrize("options,present,absent", [
    (["ro", "nosuid", "nodev", "noexec"], {"ro", "nosuid", "nodev", "noexec"}, {"rw"}),
    (["rw", "suid", "dev", "exec"], {"rw"}, {"ro", "nosuid", "nodev", "noexec"}),
    (["noatime"], {"noatime"}, {"relatime"}),
    (["relatime"], {"relatime"}, {"noatime"}),
    (["strictatime"], set(), {"relatime", "noatime"}),
    (["nodiratime"], {"nodiratime"}, set()),
    (["sync", "dirsync"], {"sync", "dirsync"}, set()),
    (["ro", "rw"], {"rw"}, {"ro"}),
])
def test_mount_option_flags(runtime, bundle, options, present, absent):
    cfg = bundle.config(["cat", "/proc/mounts"])
    cfg["mounts"].append({"destination": "/tmp/opt", "type": "tmpfs", "source": "tmpfs",
                          "options": options})
    _, opts = mount_entry(run_ok(runtime, bundle, cfg), "/tmp/opt")
    assert present <= opts, opts
    assert not absent & opts, opts


def test_noexec_mount_refuses_exec(runtime, bundle):
    cfg = bundle.config(["sh", "-c", ("cp /bin/busybox /tmp/x/bb && /tmp/x/bb true 2>&1;"
                         " echo rc=$?")])
    cfg["mounts"].append({"destination": "/tmp/x", "type": "tmpfs", "source": "tmpfs",
                          "options": ["noexec"]})
    out = run_ok(runtime, bundle, cfg)
    assert "Permission denied" in out and "rc=126" in out


@pytest.mark.parametrize("option,tag", [("shared", "shared:"), ("rshared", "shared:"),
                                        ("private", None), ("unbindable", "unbindable")])
def test_mount_propagation_option(runtime, bundle, tmp_path, option, tag):
    src = tmp_path / "prop"
    src.mkdir()
    cfg = bundle.config(["cat", "/proc/self/mountinfo"])
    cfg["mounts"].append({"destination": "/tmp/prop", "type": "bind", "source": str(src),
                          "options": ["rbind", option]})
    fields = optional_fields(mountinfo_entry(run_ok(runtime, bundle, cfg), "/tmp/prop"))
    if tag is None:
        assert fields == []
    else:
        assert any(f.startswith(tag) for f in fields), fields


_RUNC_PROPAGATION = runc_differs("runc 1.1.5 applies rootfsPropagation to the host's / before it binds the "
                                 "rootfs: shared never reaches the container's /, unbindable fails the bind")


@pytest.mark.parametrize("propagation,tag", [
    pytest.param("shared", "shared:", marks=_RUNC_PROPAGATION), ("private", None),
    ("slave", None), pytest.param("unbindable", "unbindable", marks=_RUNC_PROPAGATION)])
def test_rootfs_propagation(runtime, bundle, propagation, tag):
    cfg = bundle.config(["cat", "/proc/self/mountinfo"])
    cfg["linux"]["rootfsPropagation"] = propagation
    fields = optional_fields(mountinfo_entry(run_ok(runtime, bundle, cfg), "/"))
    if tag is None:
        assert not any(f.startswith("shared:") for f in fields), fields
    else:
        assert any(f.startswith(tag) for f in fields), fields


def _tags_by_mountpoint(mountinfo: str) -> dict[str, list[str]]:
    tags = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        tags[fields[4]] = optional_fields(fields)
    return tags


@pytest.mark.parametrize("propagation", ["rshared", "rslave", "rprivate", "runbindable",
                                         "shared", "unbindable"])
def test_recursive_rootfs_propagation(runtime, bundle, propagation):
    # The recursive words (runc's and crun's extension of the spec's enum, written
    # by containerd's CRI plugin for Kubernetes mount propagation) apply to every
    # mount of the container, the plain ones to "/" alone.
    if OTHER_RUNTIME and propagation not in ("rslave", "rprivate"):
        # runc 1.1.5 applies rootfsPropagation to the host's "/" before it binds
        # the rootfs and makes the rootfs's parent private: shared words never
        # reach the container's mounts, unbindable ones fail its rootfs bind.
        pytest.xfail("runc 1.1.5 does not apply shared/unbindable rootfsPropagation")
    cfg = bundle.config(["cat", "/proc/self/mountinfo"])
    cfg["linux"]["rootfsPropagation"] = propagation
    tags = _tags_by_mountpoint(run_ok(runtime, bundle, cfg))
    below = {m: t for m, t in tags.items() if m in ("/proc", "/dev", "/sys", "/dev/pts")}
    assert len(below) == 4, tags
    if propagation in ("rshared", "runbindable"):
        tag = propagation[1:].replace("shared", "shared:")
        assert all(any(f.startswith(tag) for f in t) for t in tags.values()), tags
    elif propagation in ("shared", "unbindable"):
        tag = propagation.replace("shared", "shared:")
        assert any(f.startswith(tag) for f in tags["/"]), tags
        assert not any(f.startswith(tag) for t in below.values() for f in t), tags
    else:
        assert not any(f.startswith("shared:") for t in tags.values() for f in t), tags


# --- the root change --------------------------------------------------------

@pytest.mark.parametrize("no_pivot", [False, True])
def test_pivot_root_and_no_pivot(runtime, bundle, rootfs, no_pivot):
    cfg = bundle.config(["sh", "-c", "cat /etc/hostname; ls /; grep -c . /proc/self/mountinfo"])
    extra = ("--no-pivot",) if no_pivot else ()
    out = run_ok(runtime, bundle, cfg, *extra).splitlines()
    assert out[0] == "pyrunc"
    assert "bin" in out[1:] and "etc" in out[1:]
    assert mounts_under(str(rootfs)) == []


def test_pivot_root_leaves_no_host_mount_reachable(runtime, bundle):
    # After pivot_root the old root is detached: the container's mount table
    # holds only what the config asked for.
    cfg = bundle.config(["cat", "/proc/self/mountinfo"])
    out = run_ok(runtime, bundle, cfg)
    mountpoints = [line.split()[4] for line in out.splitlines()]
    expected = {"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/tmp"}
    assert expected <= set(mountpoints)
    assert not [m for m in mountpoints if m.startswith("/mnt") or m == "/sys/fs/cgroup"]


def test_nothing_mounted_on_the_host(runtime, bundle, rootfs):
    run_ok(runtime, bundle, bundle.config(["true"]))
    assert mounts_under(str(rootfs)) == []
    assert os.listdir(rootfs)


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_proc_must_be_mounted_on_an_ordinary_directory(runtime, bundle, rootfs, kind):
    # An image whose /proc is a symlink (or a file): runc refuses with these
    # words (its "mask paths [prohibit symlink /proc]" test matches them).
    cfg = bundle.config(["true"])
    cfg["root"] = {"path": "rootfs", "readonly": False}
    b = bundle(config=cfg)
    shutil.copytree(rootfs, b / "rootfs", symlinks=True)
    (b / "rootfs" / "elsewhere").mkdir()
    os.rmdir(b / "rootfs" / "proc")
    if kind == "symlink":
        os.symlink("/elsewhere", b / "rootfs" / "proc")
    else:
        (b / "rootfs" / "proc").write_text("")
    cid = runtime.new_id()
    proc = runtime("run", "-b", str(b), cid)
    assert proc.returncode == 1
    assert proc.stderr.count(b"\n") == 1, proc.stderr
    assert b"must be mounted on ordinary directory" in proc.stderr, proc.stderr
    assert not (runtime.root / cid).exists()
    assert list((b / "rootfs" / "elsewhere").iterdir()) == []
