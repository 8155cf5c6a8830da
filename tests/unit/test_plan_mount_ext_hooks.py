"""Planner units for hooks and the mount extensions (no root needed)."""

from __future__ import annotations

import json

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan import hooks as H
from pyrunc.plan import protocol as P
from pyrunc.plan.mounts import (
    MOUNT_ATTR__ATIME,
    MOUNT_ATTR_NOATIME,
    MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_STRICTATIME,
    MountContext,
    finalize_readonly_steps,
    idmap_prepare_steps,
    idmap_requests,
    mount_steps,
    recursive_attributes,
)

CTX = MountContext(bundle="/b", source_kinds={"/src": "dir"})


def test_recursive_attributes_later_options_win() -> None:
    assert recursive_attributes(["rro"]) == (MOUNT_ATTR_RDONLY, 0)
    assert recursive_attributes(["rro", "rrw"]) == (0, MOUNT_ATTR_RDONLY)
    assert recursive_attributes(["rsuid", "rnosuid"]) == (MOUNT_ATTR_NOSUID, 0)
    assert recursive_attributes(["rnoatime"]) == (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME)
    assert recursive_attributes(["rnoatime", "rstrictatime"]) == (MOUNT_ATTR_STRICTATIME,
                                                                  MOUNT_ATTR__ATIME)
    assert recursive_attributes(["rnoatime", "ratime"]) == (0, MOUNT_ATTR__ATIME)


def test_recursive_options_become_one_setattr_step_after_the_mount() -> None:
    steps = mount_steps({"destination": "/m", "type": "bind", "source": "/src",
                         "options": ["rbind", "rro", "rnosuid", "rprivate"]}, CTX)
    assert [s.op for s in steps] == [P.OP_MOUNT, P.OP_MOUNT, P.OP_MOUNT_SETATTR]
    assert steps[-1].ints[:3] == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0)
    assert steps[-1].strs == (b"/m",)


def test_tmpcopyup_tmpfs_is_filled_then_made_read_only() -> None:
    m = {"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
         "options": ["ro", "nosuid", "tmpcopyup", "size=1m"]}
    steps = mount_steps(m, CTX)
    assert len(steps) == 1
    assert steps[0].ints[1] & P.MOUNT_F_TMPCOPYUP
    assert not steps[0].ints[0] & 0x1  # MS_RDONLY comes with the final remount
    (remount,) = finalize_readonly_steps([m])
    assert remount.ints[0] & 0x1 and remount.strs[1] == b"/etc"


def test_tmpcopyup_is_ignored_for_other_types_and_idmap_is_refused() -> None:
    steps = mount_steps({"destination": "/x", "type": "bind", "source": "/src",
                         "options": ["bind", "tmpcopyup"]}, CTX)
    assert not any(s.ints[1] & P.MOUNT_F_TMPCOPYUP for s in steps)
    with pytest.raises(ConfigError, match="idmap"):
        mount_steps({"destination": "/x", "type": "bind", "source": "/src",
                     "options": ["bind", "idmap"]}, CTX)


def test_idmap_requests_and_steps() -> None:
    maps = [{"containerID": 0, "hostID": 1000, "size": 10}]
    cfg = {"linux": {"uidMappings": maps, "gidMappings": maps},
           "mounts": [{"destination": "/a", "type": "tmpfs"},
                      {"destination": "/b", "type": "bind", "source": "/src",
                       "options": ["rbind", "idmap"]},
                      {"destination": "/c", "type": "bind", "source": "rel", "options": ["ridmap"],
                       "uidMappings": maps[:0] or [{"containerID": 5, "hostID": 6, "size": 1}],
                       "gidMappings": maps}]}
    reqs = idmap_requests(cfg, "/bundle")
    assert [(r.index, r.slot, r.source, r.recursive) for r in reqs] == [
        (1, 0, "/src", True), (2, 1, "/bundle/rel", True)]
    assert reqs[1].uid_mappings[0]["hostID"] == 6
    prep = idmap_prepare_steps(reqs, {1: 11, 2: 12})
    assert [s.ints for s in prep] == [(11, P.MOUNT_F_IDMAP_RECURSIVE, 0),
                                      (12, P.MOUNT_F_IDMAP_RECURSIVE, 1)]
    ctx = MountContext(bundle="/bundle", source_kinds={"/src": "dir"}, idmap_slots={1: 0})
    step = mount_steps(cfg["mounts"][1], ctx, 1)[0]
    assert step.ints[1] & P.MOUNT_F_DETACHED and step.ints[3] == 0
    with pytest.raises(ConfigError, match="needs uidMappings"):
        idmap_requests({"mounts": cfg["mounts"][1:2]}, "/b")
    with pytest.raises(ConfigError, match="only supported on bind"):
        idmap_requests({"linux": cfg["linux"],
                        "mounts": [{"destination": "/t", "type": "tmpfs", "options": ["idmap"]}]},
                       "/b")


def _config(**hooks: list[dict[str, object]]) -> dict[str, object]:
    return {"hooks": hooks}


def test_no_hooks_no_steps() -> None:
    assert H.before_root_change_steps({}) == []
    exec_step = P.step(P.OP_EXEC, 1, 0, strs=("true",))
    assert H.with_start_hooks({}, [exec_step], False) == [exec_step]
    # exec.fifo is always held until just before exec, hooks or not, so that
    # `start` hears of any failure in between.
    release, last = H.with_start_hooks({}, [exec_step], True)
    assert release.op == P.OP_WAIT_START and release.ints[1] == P.WAIT_F_RELEASE
    assert last == exec_step
    assert H.wait_start_steps({}, 7)[0].ints[:2] == (7, P.WAIT_F_HOLD)


def test_create_hooks_sync_then_container_hooks() -> None:
    cfg = _config(createRuntime=[{"path": "/a"}],
                  createContainer=[{"path": "/b", "args": ["b", "1"], "env": ["X=1"],
                                    "timeout": 5}])
    sync, hook = H.before_root_change_steps(cfg)
    assert sync.op == P.OP_SYNC and sync.ints[:2] == (P.SYNC_HOOKS, P.HOOK_STATE_SLOTS)
    assert hook.op == P.OP_HOOK
    assert hook.ints == (5, 2, 1, 0, P.HOOK_CREATE_CONTAINER, 0)
    assert hook.strs == (b"/b", b"b", b"1", b"X=1")


def test_start_hooks_hold_the_fifo_and_go_last_before_exec() -> None:
    cfg = _config(startContainer=[{"path": "/s"}])
    assert H.wait_start_steps(cfg, 9)[0].ints[:2] == (9, P.WAIT_F_HOLD)
    steps = H.with_start_hooks(cfg, [P.step(P.OP_SETID, 0, 0), P.step(P.OP_EXEC, 1, 0,
                                                                      strs=("x",))], True)
    assert [s.op for s in steps] == [P.OP_SETID, P.OP_HOOK, P.OP_WAIT_START, P.OP_EXEC]
    assert steps[1].ints[3] == 1 and steps[2].ints[1] == P.WAIT_F_RELEASE


def test_state_documents() -> None:
    states = [json.loads(s) for s in H.container_states("1.3.0", "c", 42, "/b", {"k": "v"})]
    assert [s["status"] for s in states] == ["creating", "created"]
    assert states[0] == {"ociVersion": "1.3.0", "id": "c", "status": "creating", "pid": 42,
                         "bundle": "/b", "annotations": {"k": "v"}}
    assert "pid" not in H.state_document("1.3.0", "c", "stopped", 0, "/b", None)
    assert len(P.encode_hook_state(b"{}")) == 6


def test_mount_mappings_alone_mean_idmap() -> None:
    maps = [{"containerID": 0, "hostID": 1000, "size": 10}]
    cfg = {"mounts": [{"destination": "/a", "type": "bind", "source": "/src", "options": ["bind"],
                       "uidMappings": maps, "gidMappings": maps},
                      {"destination": "/b", "type": "bind", "source": "/src", "options": ["bind"]}]}
    (req,) = idmap_requests(cfg, "/bundle")
    assert (req.index, req.recursive, req.uid_mappings[0]["hostID"]) == (0, False, 1000)
    with pytest.raises(ConfigError, match="needs uidMappings and gidMappings"):
        idmap_requests({"mounts": [{**cfg["mounts"][0], "gidMappings": None}]}, "/bundle")
    with pytest.raises(ConfigError, match="only supported on bind"):
        idmap_requests({"mounts": [{"destination": "/t", "type": "tmpfs", "uidMappings": maps,
                                    "gidMappings": maps}]}, "/bundle")
