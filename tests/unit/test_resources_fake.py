"""pause/resume/update/ps/stats use cases on fake cgroupfs trees (no root needed).

The container's "init" is this test process (alive, with its real start
time), so the status logic sees a running container; the cgroup is a plain
directory tree from tests.unit.test_cgroup_fake.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyrunc import runtime_resources as rr
from pyrunc.errors import ConfigError, ContainerError
from pyrunc.runtime import status_of
from pyrunc.state.procs import start_time
from pyrunc.state.store import ContainerRecord, Store
from tests.unit.test_cgroup_fake import manager, populate


def _container(tmp: Path, mode: str, resources: dict) -> tuple[Store, ContainerRecord, object]:
    m = manager(tmp, mode)
    m.create()
    populate(m)
    store = Store(str(tmp / "state"))
    store.reserve("ctr")
    record = ContainerRecord(id="ctr", bundle=str(tmp), rootfs=str(tmp), created="now",
                             pid=os.getpid(), pid_start=start_time(os.getpid()),
                             cgroup=m.to_state(), config={"linux": {"resources": resources}})
    store.save(record)
    return store, record, m


def _read(d: str | None, name: str) -> str:
    return Path(d or "", name).read_text().strip()


@pytest.mark.parametrize("mode", ["v1", "v2"])
def test_pause_resume_on_fake_tree(tmp_path: Path, mode: str) -> None:
    store, _record, m = _container(tmp_path, mode, {})
    rr.pause(store, "ctr")
    assert m.state() == "frozen"
    assert status_of(store, store.load("ctr")) == "paused"
    with pytest.raises(ContainerError, match="^container not running$"):
        rr.pause(store, "ctr")
    rr.resume(store, "ctr")
    assert m.state() == "thawed"
    with pytest.raises(ContainerError, match="^container not paused$"):
        rr.resume(store, "ctr")


def test_update_v2_writes_and_records(tmp_path: Path) -> None:
    store, _record, m = _container(tmp_path, "v2", {"memory": {"limit": 1 << 24}, "pids": {"limit": 9}})
    rr.update(store, "ctr", {"memory": {"limit": 1 << 25}, "cpu": {"shares": 1024, "quota": 50000}})
    d = m.path("")
    assert _read(d, "memory.max") == str(1 << 25)
    assert _read(d, "cpu.weight") == "100"
    assert _read(d, "cpu.max") == "50000 100000"
    assert _read(d, "pids.max") == "9"
    assert store.load("ctr").config["linux"]["resources"] == {
        "memory": {"limit": 1 << 25}, "pids": {"limit": 9}, "cpu": {"shares": 1024, "quota": 50000}}


def test_update_v1_memory_swap_pair(tmp_path: Path) -> None:
    store, _record, m = _container(tmp_path, "v1", {})
    rr.update(store, "ctr", {"memory": {"limit": 1 << 24, "swap": 1 << 25}})
    assert _read(m.path("memory"), "memory.limit_in_bytes") == str(1 << 24)
    assert _read(m.path("memory"), "memory.memsw.limit_in_bytes") == str(1 << 25)


def test_rejected_update_changes_nothing(tmp_path: Path) -> None:
    store, _record, m = _container(tmp_path, "v2", {"memory": {"limit": 1 << 24}})
    with pytest.raises(ConfigError, match="memory.limit"):
        rr.update(store, "ctr", {"memory": {"limit": "lots"}})
    assert _read(m.path(""), "memory.max") == ""
    assert store.load("ctr").config["linux"]["resources"] == {"memory": {"limit": 1 << 24}}


def test_ps_pids_and_stats_event(tmp_path: Path) -> None:
    store, _record, m = _container(tmp_path, "v2", {})
    Path(m.path("") or "", "cgroup.procs").write_text("12\n11\n")
    assert rr.ps_pids(store, "ctr") == [11, 12]
    doc = rr.stats(store, "ctr")
    assert list(doc) == ["type", "id", "data"] and doc["type"] == "stats" and doc["id"] == "ctr"


def test_stopped_container_errors(tmp_path: Path) -> None:
    store, record, _m = _container(tmp_path, "v2", {})
    record.pid_start += 1   # a different process: the container has stopped
    store.save(record)
    with pytest.raises(ContainerError, match="^container not running$"):
        rr.update(store, "ctr", {"pids": {"limit": 3}})
    with pytest.raises(ContainerError, match="^container with id ctr is not running$"):
        rr.stats(store, "ctr")
    with pytest.raises(ContainerError, match="^container not running$"):
        rr.pause(store, "ctr")
