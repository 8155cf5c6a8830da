"""pyrunc.state.freezer against fake cgroupfs trees: the same answer as the managers.

``status_of`` reads the freezer from the cgroup dict of the state record
instead of importing the cgroup package; every case here compares that
answer with ``manager_from_state(dict).state()`` on the same fake tree (an
error of the manager counting as "thawed", as ``status_of`` treated it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyrunc.errors import PyruncError
from pyrunc.linux import cgroups as cg
from pyrunc.state.freezer import freezer_state
from tests.unit import test_cgroup_fake as fake


def _manager_answer(state: dict[str, Any]) -> str:
    try:
        return cg.manager_from_state(state).state()
    except (OSError, PyruncError):
        return "thawed"


def _recorded(m: cg.Manager) -> dict[str, Any]:
    """The cgroup dict as it comes back from state.json."""
    result: dict[str, Any] = json.loads(json.dumps(m.to_state()))
    return result


def _both(state: dict[str, Any]) -> str:
    ours = freezer_state(state)
    assert ours == _manager_answer(state), state
    return ours


def _freeze_files(m: cg.Manager, v1: str, v2: str) -> None:
    """Write the freezer files directly (what the kernel would report)."""
    if isinstance(m, cg.V2Manager):
        Path(m.cg_path, "cgroup.freeze").write_text(v2)
        return
    assert isinstance(m, cg.V1Manager)
    if "freezer" in m.paths:
        Path(m.paths["freezer"], "freezer.state").write_text(v1)
    if m.unified:
        Path(m.unified, "cgroup.freeze").write_text(v2)


@pytest.mark.parametrize("mode", ["v1", "hybrid", "v2"])
def test_same_answer_as_the_manager(tmp_path: Path, mode: str) -> None:
    m = fake.manager(tmp_path, mode)
    state = _recorded(m)
    assert _both(state) == "thawed"  # not created yet: nothing to read
    m.create()
    fake.populate(m)
    assert _both(state) == "thawed"
    _freeze_files(m, "FROZEN\n", "1\n")
    assert _both(state) == "frozen"
    _freeze_files(m, "FREEZING\n", "0\n")
    assert _both(state) == "thawed"
    _freeze_files(m, "THAWED\n", "0\n")
    assert _both(state) == "thawed"


def test_real_freeze_and_thaw_v1(tmp_path: Path) -> None:
    m = fake.manager(tmp_path, "v1")
    m.create()
    fake.populate(m)
    m.freeze()
    assert _both(_recorded(m)) == "frozen"
    m.thaw()
    assert _both(_recorded(m)) == "thawed"


def test_hybrid_without_v1_freezer_uses_cgroup_freeze(tmp_path: Path) -> None:
    m = fake.manager(tmp_path, "hybrid")
    m.create()
    fake.populate(m)
    assert isinstance(m, cg.V1Manager) and m.unified
    state = _recorded(m)
    del state["paths"]["freezer"]
    assert state["mode"] == "hybrid"
    assert _both(state) == "thawed"
    Path(m.unified, "cgroup.freeze").write_text("1\n")
    assert _both(state) == "frozen"
    # The v1 freezer, when there is one, is the one that counts.
    assert _both(_recorded(m)) == "thawed"
    Path(m.unified, "cgroup.freeze").unlink()
    assert _both(state) == "thawed"


def test_v1_without_freezer(tmp_path: Path) -> None:
    m = fake.manager(tmp_path, "v1")
    m.create()
    fake.populate(m)
    state = _recorded(m)
    Path(state["paths"]["freezer"], "freezer.state").write_text("FROZEN")
    del state["paths"]["freezer"]
    assert _both(state) == "thawed"


@pytest.mark.parametrize("state", [
    {"mode": "v3"}, {"mode": "v2", "path": "/nonexistent/cg", "mount": "/nonexistent"},
    {"mode": "v1", "paths": {}, "unified": None, "unified_mount": None},
    {"mode": "hybrid", "paths": {"freezer": "/nonexistent/f"}, "unified": "/nonexistent/u"},
])
def test_unknown_or_missing_is_thawed(state: dict[str, Any]) -> None:
    assert _both(state) == "thawed"
