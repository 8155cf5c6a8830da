"""Faults: pyrunc killed half-way, a full or read-only --root, many at once.

`kill -9` of `pyrunc create` at each stage (held there by the
PYRUNC_TEST_STOP_AT hook of pyrunc/runtime.py) followed by `delete --force`
leaves nothing: no process, cgroup, mount or state dir.  A container whose
init dies between create and start reads `stopped`: that is
tests/integration/test_lifecycle.py (test_init_killed_before_start_is_stopped
and friends), not repeated here.
"""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import (
    cgroup_dirs_named,
    mounts_under,
    needs_root,
    pyrunc_only,
    runc_differs,
    runtime_argv,
    runtime_env,
)
from tests.helpers.stop_point import kill_at_stop_point, proc_state
from tests.security.conftest import one_error_line

pytestmark = needs_root

STAGES = ["reserved", "cgroup", "spawned", "ready"]


def pids_in_cgroups_named(cid: str) -> list[int]:
    """Processes whose /proc/<pid>/cgroup names the container's cgroup."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"/{cid}" in (entry / "cgroup").read_text():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def live_pids_in_cgroups_named(cid: str) -> list[int]:
    """As above, without zombies (dead, waiting for the host's PID 1 to reap them)."""
    return [p for p in pids_in_cgroups_named(cid) if proc_state(p) not in ("Z", "X", "gone")]


def assert_nothing_left(runtime, cid: str, rootfs: Path) -> None:
    assert not (runtime.root / cid).exists(), os.listdir(runtime.root / cid)
    assert cgroup_dirs_named(cid) == []
    deadline = time.monotonic() + 5
    while live_pids_in_cgroups_named(cid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_pids_in_cgroups_named(cid) == []
    assert mounts_under(str(rootfs)) == []
    assert mounts_under(str(runtime.root)) == []


@pytest.mark.parametrize("stage", STAGES)
@pyrunc_only("needs pyrunc's PYRUNC_TEST_STOP_AT hook")
def test_kill_9_at_each_stage_then_delete_force(runtime, bundle, rootfs, tmp_path, stage):
    cid = runtime.new_id(f"kill-{stage}")
    b = bundle(["sleep", "60"])
    env = runtime_env()
    env["PYRUNC_TEST_STOP_AT"] = stage
    with open(tmp_path / "out", "wb") as out:
        proc = subprocess.Popen(runtime.argv("create", "-b", str(b), cid), env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    kill_at_stop_point(proc, tmp_path / "out", timeout=30)
    assert (runtime.root / cid).exists()
    if stage == "ready":
        assert runtime.state(cid)["status"] == "created"
    res = runtime("delete", "--force", cid)
    assert res.returncode == 0, res.stderr
    assert_nothing_left(runtime, cid, rootfs)
    # The id can be used again.
    assert runtime("run", "-b", str(bundle(["true"])), cid).returncode == 0


def test_stop_hook_unset_costs_nothing_visible(runtime, bundle):
    """Without the variable create runs straight through."""
    cid = runtime.new_id("nohook")
    assert runtime("run", "-b", str(bundle(["true"])), cid).returncode == 0


@pytest.fixture
def small_root(tmp_path: Path):
    """A 64 KiB tmpfs under the test's temp dir, unmounted after."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)],
                   check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> None:
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def run_with_root(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*runtime_argv(), "--root", str(root), *args], capture_output=True,
                          env=runtime_env(), stdin=subprocess.DEVNULL, timeout=60)


@runc_differs("runc 1.1.5 loses the errno: unable to store init state: %!w(<nil>)")
def test_full_disk_root(small_root, bundle, rootfs):
    fill(small_root)
    cid = f"full-{os.getpid()}"
    proc = run_with_root(small_root, "create", "-b", str(bundle(["true"])), cid)
    try:
        assert proc.returncode == 1, proc.stdout
        line = one_error_line(proc.stderr)
        assert "No space left on device" in line or "Disk quota" in line, line
        assert not (small_root / cid).exists()
        assert cgroup_dirs_named(cid) == []
    finally:
        run_with_root(small_root, "delete", "--force", cid)


def test_read_only_root(small_root, bundle):
    subprocess.run(["mount", "-o", "remount,ro", str(small_root)], check=True)
    cid = f"ro-{os.getpid()}"
    proc = run_with_root(small_root, "create", "-b", str(bundle(["true"])), cid)
    try:
        assert proc.returncode == 1, proc.stdout
        assert "read-only file system" in one_error_line(proc.stderr).lower()  # runc: lower case
        assert cgroup_dirs_named(cid) == []
    finally:
        run_with_root(small_root, "delete", "--force", cid)


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def test_fifty_in_parallel_leave_nothing(runtime, bundle, rootfs):
    b = bundle(["true"])
    ids = [runtime.new_id("par") for _ in range(50)]
    fds_before = open_fds()
    mounts_before = Path("/proc/self/mountinfo").read_text().count("\n")

    # The test is about leaks, not speed: eight at once in a loaded software-CPU guest
    # took over the default 60 s per command; a hang still fails here.
    def one(cid: str) -> tuple[int, int, bytes]:
        c = runtime("create", "-b", str(b), cid, timeout=300)
        d = runtime("delete", "--force", cid, timeout=300)
        return c.returncode, d.returncode, c.stderr + d.stderr

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, ids))
    assert all(r[:2] == (0, 0) for r in results), [r for r in results if r[:2] != (0, 0)][:3]
    assert open_fds() - fds_before == set()
    assert Path("/proc/self/mountinfo").read_text().count("\n") <= mounts_before
    for cid in ids:
        assert not (runtime.root / cid).exists()
        assert cgroup_dirs_named(cid) == []
    # Zombies (already dead, waiting for the host's PID 1 to reap them) hold nothing.
    left = [p for cid in ids for p in pids_in_cgroups_named(cid) if proc_state(p) not in ("Z", "X", "gone")]
    assert left == [], [(proc_state(p), _cmdline(Path(f"/proc/{p}"))) for p in left[:3]]
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                 and str(runtime.root).encode() in _cmdline(p)]
    assert leftovers == [], [_cmdline(p) for p in leftovers][:3]


def _cmdline(p: Path) -> bytes:
    try:
        return (p / "cmdline").read_bytes()
    except OSError:
        return b""

