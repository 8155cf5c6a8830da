"""Attacks on linux.namespaces[i].path of a joined mount namespace (issue 15).

A path that is not a mount namespace file (a regular file, a directory, a
FIFO, a device, a symlink to something else, a namespace of another type, a
dangling path) is refused with one line naming the field, exit 1, and
nothing left behind; a FIFO never blocks create.  A path swapped after the
runtime checked it is refused by pyrunc-init when it joins, never joined.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    OTHER_RUNTIME,
    cgroup_dirs_named,
    held_mount_namespace,
    mounts_under,
    needs_root,
    processes_with,
    pyrunc_only,
    runtime_env,
)

pytestmark = needs_root



def mount_index(cfg: dict) -> int:
    return next(i for i, ns in enumerate(cfg["linux"]["namespaces"]) if ns["type"] == "mount")


def config_with_path(bundle, path: str, marker: str) -> tuple[dict, int]:
    cfg = bundle.config(["sleep", marker])
    i = mount_index(cfg)
    cfg["linux"]["namespaces"][i]["path"] = path
    cfg["linux"]["cgroupsPath"] = f"/pyrunc-test/{marker.replace('.', '-')}"
    return cfg, i


def error_line(stderr: bytes) -> str:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    if line.startswith("time=") and ' msg="' in line:  # runc's logrus line
        line = json.loads(line.split(" msg=", 1)[1].split('" ', 1)[0].rstrip('"') + '"')
    return line


def assert_nothing_left(runtime, cid: str, marker: str, rootfs: Path) -> None:
    assert not (runtime.root / cid).exists(), "state dir left behind"
    assert cgroup_dirs_named(marker.replace(".", "-")) == [], "cgroup left behind"
    assert processes_with(f"sleep {marker}") == [], "process left behind"
    assert mounts_under(str(rootfs)) == [], "mount left behind"


@pytest.fixture
def mnt_ns(tmp_path: Path) -> Iterator[Path]:
    """A valid mount namespace file, held by a bind mount in the test's temp dir."""
    with held_mount_namespace(tmp_path) as ns_file:
        yield ns_file


def _regular(tmp: Path) -> str:
    (tmp / "file").write_text("not a namespace\n")
    return str(tmp / "file")


def _directory(tmp: Path) -> str:
    (tmp / "dir").mkdir()
    return str(tmp / "dir")


def _fifo(tmp: Path) -> str:
    os.mkfifo(tmp / "fifo")
    return str(tmp / "fifo")


def _symlink_to_file(tmp: Path) -> str:
    (tmp / "link").symlink_to(_regular(tmp))
    return str(tmp / "link")


def _symlink_to_netns(tmp: Path) -> str:
    (tmp / "netlink").symlink_to("/proc/self/ns/net")
    return str(tmp / "netlink")


def _dangling(tmp: Path) -> str:
    (tmp / "dangling").symlink_to(tmp / "nowhere")
    return str(tmp / "dangling")


BAD = {
    "regular-file": (_regular, "not a namespace file"),
    "directory": (_directory, "not a namespace file"),
    "fifo": (_fifo, "not a namespace file"),
    "dev-null": (lambda tmp: "/dev/null", "not a namespace file"),
    "symlink-to-file": (_symlink_to_file, "not a namespace file"),
    "proc-self-ns-net": (lambda tmp: "/proc/self/ns/net", "is a network namespace, not a mount namespace"),
    "symlink-to-netns": (_symlink_to_netns, "is a network namespace, not a mount namespace"),
    "missing": (lambda tmp: str(tmp / "missing"), "No such file or directory"),
    "dangling-symlink": (_dangling, "No such file or directory"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_mount_namespace_path_is_refused(runtime, bundle, rootfs, tmp_path, case):
    if OTHER_RUNTIME and case == "fifo":
        pytest.skip("runc 1.1.5 opens the path O_RDONLY and blocks forever on a FIFO "
                    "(its init is left behind)")
    make, reason = BAD[case]
    path = make(tmp_path)
    marker = f"{uuid.uuid4().int % 10**8}.25"
    cfg, i = config_with_path(bundle, path, marker)
    cid = runtime.new_id("badns")
    # A FIFO must not block: the timeout fails the test instead of hanging it.
    proc = runtime("create", "-b", str(bundle(config=cfg)), cid, timeout=60)
    assert proc.returncode == 1, proc.stderr
    if not OTHER_RUNTIME:  # runc 1.1.5: "can't get final child's PID from pipe: EOF" and the like
        line = error_line(proc.stderr)
        assert line.startswith(f"linux.namespaces[{i}].path: "), line
        assert reason in line, line
    assert_nothing_left(runtime, cid, marker, rootfs)


def test_a_valid_path_through_a_symlink_is_joined(runtime, bundle, tmp_path, mnt_ns):
    link = tmp_path / "ns-link"
    link.symlink_to(mnt_ns)
    cfg = bundle.config(["readlink", "/proc/self/ns/mnt"])
    cfg["linux"]["namespaces"][mount_index(cfg)]["path"] = str(link)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("nslink"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == f"mnt:[{os.stat(mnt_ns).st_ino}]"


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


@pyrunc_only("needs pyrunc's PYRUNC_TEST_STOP_AT hook to swap the path mid-create")
@pytest.mark.parametrize("target", ["file", "netns", "fifo"])
def test_path_swapped_after_the_check_is_refused_by_the_init(runtime, bundle, rootfs, tmp_path,
                                                             mnt_ns, target):
    """The symlink names a real mount namespace while the runtime checks it and
    is swapped before pyrunc-init opens it: pyrunc-init refuses, never joins."""
    link = tmp_path / "ns-link"
    link.symlink_to(mnt_ns)
    marker = f"{uuid.uuid4().int % 10**8}.75"
    cfg, i = config_with_path(bundle, str(link), marker)
    cid = runtime.new_id("swap")
    env = runtime_env()
    env["PYRUNC_TEST_STOP_AT"] = "reserved"  # after the path check, before pyrunc-init runs
    out = tmp_path / "out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(runtime.argv("create", "-b", str(bundle(config=cfg)), cid), env=env,
                                stdin=subprocess.DEVNULL, stdout=f, stderr=f)
    try:
        deadline = time.monotonic() + 60
        while _proc_state(proc.pid) != "T":
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, "create never reached the stop point"
            time.sleep(0.01)
        swapped = tmp_path / "swapped"
        if target == "file":
            swapped.write_text("x")
        elif target == "fifo":
            os.mkfifo(swapped)
        else:
            swapped.symlink_to("/proc/self/ns/net")
        tmp_link = tmp_path / "ns-link.new"
        tmp_link.symlink_to(swapped)
        os.replace(tmp_link, link)
        os.kill(proc.pid, 18)  # SIGCONT
        assert proc.wait(60) == 1, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    line = error_line(out.read_bytes())
    assert line.startswith(f"unable to start container process: linux.namespaces[{i}].path: "), line
    assert "not a namespace file" in line or "namespace of another type" in line, line
    assert_nothing_left(runtime, cid, marker, rootfs)
