"""The runtime never changes its caller's cgroup.

A container without ``linux.cgroupsPath`` gets a cgroup of its own.  On
cgroup2 the caller's cgroup holds processes, so it cannot hand controllers
to a child: had the runtime enabled controllers there, the kernel would have
accepted the threaded ones and turned the caller's cgroup (a systemd
service's, on most hosts) into a threaded root for good.  runc places such a
container beside its caller (/system.slice/<id> for a caller in
/system.slice/<unit>.service).  Checked in every hierarchy after each
command: the caller's cgroup.type, cgroup.subtree_control and membership.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import cgroup_dirs_named, cgroupfs_driver_only, needs_root
from tests.helpers.cgroupfs import CgroupFiles, own_state

pytestmark = needs_root


def detached(rt, *args: str) -> None:
    """create / run -d without pipes (the container keeps its stdio)."""
    with tempfile.TemporaryFile() as err:
        proc = rt(*args, stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        assert proc.returncode == 0, f"{args} failed ({proc.returncode}): {err.read()!r}"


def _below(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


def test_default_cgroup_leaves_callers_cgroup_alone(runtime, bundle) -> None:
    before = own_state()
    mine = CgroupFiles(os.getpid())
    cid = runtime.new_id("caller")
    cfg = bundle.config(["sleep", "1000"])
    cfg["linux"].pop("cgroupsPath", None)
    cfg["linux"]["resources"] = {"pids": {"limit": 100}}
    b = bundle(config=cfg)

    steps = []

    def check(step: str) -> None:
        steps.append(step)
        assert own_state() == before, f"caller's cgroup changed by {steps}"

    detached(runtime, "create", "-b", str(b), cid)
    check("create")
    pid = runtime.state(cid)["pid"]
    theirs = CgroupFiles(pid)
    assert theirs.dirs, "the container's cgroups are unknown"
    for key, d in theirs.dirs.items():
        assert d != mine.dirs.get(key), f"container put in the caller's {key or 'cgroup2'} cgroup {d}"
    own_v2 = [line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines()
              if line.startswith("0::")]
    if "" in theirs.dirs and "" in mine.dirs and own_v2 != ["/"]:
        # cgroup2: beside the caller, as runc does, never below it (a caller
        # in the root cgroup has its containers below it, necessarily).
        assert not _below(theirs.dirs[""], mine.dirs[""]), (theirs.dirs[""], mine.dirs[""])
    runtime("start", cid, check=True)
    check("start")
    runtime("exec", cid, "true", check=True)
    check("exec")
    runtime("update", "--pids-limit", "50", cid, check=True)
    check("update")
    runtime("pause", cid, check=True)
    check("pause")
    runtime("resume", cid, check=True)
    check("resume")
    runtime("kill", cid, "KILL", check=True)
    check("kill")
    runtime("delete", "--force", cid, check=True)
    check("delete")
    assert cgroup_dirs_named(cid) == []


def test_run_without_cgroups_path_leaves_callers_cgroup_alone(runtime, bundle) -> None:
    before = own_state()
    cid = runtime.new_id("caller")
    cfg = bundle.config(["sh", "-c", "echo ran"])
    cfg["linux"].pop("cgroupsPath", None)
    proc = runtime("run", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"ran\n"
    assert own_state() == before
    assert cgroup_dirs_named(cid) == []


@cgroupfs_driver_only("a relative cgroupsPath is a cgroupfs form (below the caller's cgroup); "
                      "the systemd driver takes only slice:prefix:name")
def test_relative_cgroups_path_leaves_callers_cgroup_alone(runtime, bundle) -> None:
    before = own_state()
    cid = runtime.new_id("caller")
    cfg = bundle.config(["sh", "-c", "echo ran"])
    cfg["linux"]["cgroupsPath"] = f"{cid}-parent/{cid}"
    proc = runtime("run", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode == 0, proc.stderr
    assert own_state() == before
    # The parent the path created stays (as with runc); it is ours to remove.
    for d in cgroup_dirs_named(f"{cid}-parent"):
        Path(d).rmdir()
