"""configLinuxPersonality, process scheduler / ioPriority / execCPUAffinity and
configLinuxMemoryPolicy, observed from inside (create and exec) with the probe.

Debian's runc 1.1.5 predates all of these fields (spec 1.2/1.3) and ignores
them, so under PYRUNC_TEST_RUNTIME=runc these tests show that difference.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.conformance.conftest import INSIDE, parse_attrs
from tests.conftest import runc_differs

# Every test here fails under runc 1.1.5, which ignores these fields; docs/spec-conformance.md
# "Fields added in runtime-spec 1.2/1.3".
pytestmark = runc_differs(
    "runc 1.1.5 ignores personality, scheduler, ioPriority, execCPUAffinity, memoryPolicy")


def test_personality_linux32(runtime, bundle):
    """configLinuxPersonality: LINUX32 makes uname report a 32-bit machine."""
    cfg = bundle.config(["uname", "-m"])
    cfg["linux"]["personality"] = {"domain": "LINUX32"}
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() in ("i686", "i386", "armv7l", "armv8l")


def test_scheduler_ioprio_mempolicy(probe, bundle):
    """process.scheduler (policy, nice, flags), process.ioPriority, linux.memoryPolicy."""
    cfg = bundle.config()
    cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7,
                                   "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 3}
    cfg["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    attrs = probe.attrs(cfg)
    # SCHED_RESET_ON_FORK shows up as 0x40000000 in the policy.
    assert int(attrs["policy"]) & 0xff == 3
    assert attrs["nice"] == "7"
    assert attrs["ioprio"] == "2 3"
    mode, mask = attrs["mempolicy"].split()
    assert mode == "2" and int(mask, 16) == 1


@pytest.mark.parametrize("field,value,words", [
    ("scheduler", {"policy": "SCHED_OTHER", "priority": 5}, "priority"),
    ("scheduler", {"policy": "SCHED_OTHER", "runtime": 10}, "runtime"),
    ("scheduler", {"policy": "SCHED_BATCH", "nice": 40}, "nice"),
    ("ioPriority", {"class": "IOPRIO_CLASS_BE", "priority": 8}, "priority"),
])
def test_bad_process_attrs_fail_create(runtime, bundle, field, value, words):
    """Values runc rejects are rejected before anything runs (runtime.md errors)."""
    cfg = bundle.config(["true"])
    cfg["process"][field] = value
    cid = runtime.new_id()
    proc = runtime("create", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode != 0
    assert words in proc.stderr.decode()
    assert runtime("state", cid).returncode != 0


def test_memory_policy_on_missing_node_fails(runtime, bundle):
    """linux.memoryPolicy: a node the host does not have is an error, not ignored."""
    cfg = bundle.config(["true"])
    cfg["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "63"}
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode != 0


@pytest.mark.skipif(os.cpu_count() is None or os.cpu_count() < 2, reason="needs 2 CPUs")
def test_exec_cpu_affinity_final(runtime, bundle, probe, tmp_path):
    """process.execCPUAffinity: the exec'd process runs with the final mask."""
    path, cfg = probe.prepare(bundle.config(), ["attrs"])
    cfg["process"]["args"] = ["sleep", "30"]
    (path / "config.json").write_text(json.dumps(cfg))
    cid = runtime.new_id()
    assert runtime("run", "-d", "-b", str(path), cid).returncode == 0
    spec = dict(cfg["process"], args=[f"{INSIDE}/probe", "attrs"],
                execCPUAffinity={"initial": "0", "final": "1"})
    pfile = tmp_path / "process.json"
    pfile.write_text(json.dumps(spec))
    proc = runtime("exec", "--process", str(pfile), cid)
    assert proc.returncode == 0, proc.stderr
    assert parse_attrs(proc.stdout.decode())["cpus"] == "1"


def test_exec_gets_personality_and_scheduler(runtime, bundle, probe, tmp_path):
    """runc applies personality and scheduler in exec too."""
    path, cfg = probe.prepare(bundle.config(), ["attrs"])
    cfg["process"]["args"] = ["sleep", "30"]
    cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 3}
    cfg["linux"]["personality"] = {"domain": "LINUX32"}
    (path / "config.json").write_text(json.dumps(cfg))
    cid = runtime.new_id()
    assert runtime("run", "-d", "-b", str(path), cid).returncode == 0
    time.sleep(0.1)
    proc = runtime("exec", cid, f"{INSIDE}/probe", "attrs")
    assert proc.returncode == 0, proc.stderr
    attrs = parse_attrs(proc.stdout.decode())
    assert attrs["personality"] == "0x8"
    assert attrs["policy"] == "3" and attrs["nice"] == "3"
