"""A pre-existing cgroup unfit for a new container: frozen, or with processes in it.

A process that joins a frozen cgroup stops in the kernel before it can say
anything and no signal moves it until the cgroup thaws: a runtime that does
not check hangs, holding its caller's pipes.  runc refuses such a cgroup
("container's cgroup unexpectedly frozen"); newer runc also refuses one that
already has processes ("container's cgroup is not empty: N process(es)
found"), where runc 1.1.5 only warned.  pyrunc follows newer runc.

Every test makes its own cgroup (``/pyrunc-test-fit-<random>``) and the
fixture thaws, empties and removes it in every hierarchy, even on failure.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrunc.linux import cgroups as cg
from tests.conftest import OTHER_RUNTIME, cgroup_dirs_named, cgroupfs_driver_only, needs_root

pytestmark = [
    needs_root,
    cgroupfs_driver_only("a cgroup directory made beforehand and named by an absolute cgroupsPath; "
                         "the systemd driver makes a new unit and refuses one that exists "
                         "(test_systemd_cgroup.py::test_unit_that_exists_is_refused_and_kept)"),
]



def _layout():
    try:
        return cg.detect()
    except Exception as e:  # noqa: BLE001 - no cgroupfs at all
        pytest.skip(f"no cgroup layout: {e}")


def _thaw_and_empty(d: str) -> None:
    for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
        try:
            Path(d, name).write_text(value)
        except OSError:
            pass
    for _ in range(3):
        try:
            pids = [int(p) for p in Path(d, "cgroup.procs").read_text().split()]
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def cgroup_name() -> Iterator[str]:
    """A fresh cgroup name; afterwards every directory of that name is thawed,
    emptied and removed (deepest first), whatever the test did."""
    name = f"pyrunc-test-fit-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        dirs = sorted(cgroup_dirs_named(name), key=len, reverse=True)
        for d in dirs:
            _thaw_and_empty(d)
        for d in dirs:
            for sub, _, _ in sorted(os.walk(d), key=lambda w: len(w[0]), reverse=True):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


def _config(bundle, name: str, args: list[str]):
    cfg = bundle.config(args)
    cfg["linux"]["cgroupsPath"] = f"/{name}"
    return cfg


def _check_refused(runtime, proc, cid: str, wording: bytes) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and wording in lines[0], proc.stderr
    assert runtime("state", cid).returncode != 0
    assert not (runtime.root / cid).exists()


def _frozen_create_refused(runtime, bundle, name: str, frozen_dir: str) -> None:
    for command in (["run", "-d"], ["create"]):
        cid = runtime.new_id("frozen")
        b = bundle(config=_config(bundle, name, ["true"]))
        # A runtime that joins the frozen cgroup never comes back: the timeout
        # turns that hang into a failure (the fixture then thaws the cgroup).
        proc = runtime(*command, "-b", str(b), cid, timeout=120)
        _check_refused(runtime, proc, cid, b"container's cgroup unexpectedly frozen")
        # Nothing joined it, and it is still the caller's frozen cgroup.
        assert Path(frozen_dir, "cgroup.procs").read_text().split() == []
        assert os.path.isdir(frozen_dir)
        # No other hierarchy got a directory for the refused container.
        assert cgroup_dirs_named(name) == [frozen_dir]


def test_frozen_v1_freezer_cgroup_is_refused(runtime, bundle, cgroup_name):
    layout = _layout()
    freezer = layout.v1.get("freezer")
    if freezer is None:
        pytest.skip("no cgroup v1 freezer hierarchy")
    d = os.path.join(freezer.mountpoint, cgroup_name)
    os.mkdir(d)
    Path(d, "freezer.state").write_text("FROZEN")
    assert Path(d, "freezer.state").read_text().strip() == "FROZEN"
    _frozen_create_refused(runtime, bundle, cgroup_name, d)


def test_frozen_cgroup2_is_refused(runtime, bundle, cgroup_name):
    layout = _layout()
    if layout.unified is None:
        pytest.skip("no cgroup2 hierarchy")
    if OTHER_RUNTIME and layout.mode != "v2":
        pytest.skip("runc 1.1.5 reads only the v1 freezer on hybrid hosts and hangs in a "
                    "frozen unified cgroup")
    d = os.path.join(layout.unified.mountpoint, cgroup_name)
    os.mkdir(d)
    if not os.path.exists(os.path.join(d, "cgroup.freeze")):
        pytest.skip("cgroup2 without cgroup.freeze")
    Path(d, "cgroup.freeze").write_text("1")
    _frozen_create_refused(runtime, bundle, cgroup_name, d)


def test_cgroup_with_processes_is_refused(runtime, bundle, cgroup_name):
    first = runtime.new_id("owner")
    runtime("run", "-d", "-b", str(bundle(config=_config(bundle, cgroup_name, ["sleep", "1000"]))),
            first, check=True)
    owner_pid = runtime.state(first)["pid"]
    for command in (["run", "-d"], ["create"]):
        cid = runtime.new_id("second")
        b = bundle(config=_config(bundle, cgroup_name, ["true"]))
        proc = runtime(*command, "-b", str(b), cid, timeout=120)
        wording = b"container's cgroup is not empty: 1 process(es) found"
        if OTHER_RUNTIME:
            # runc 1.1.5 only warns (and runs the container); newer runc and
            # pyrunc refuse (docs/spec-conformance.md).
            assert wording in proc.stderr, proc.stderr
            runtime("delete", "--force", cid)
            continue
        _check_refused(runtime, proc, cid, wording)
        # The refused create left the owner alone: running, in its cgroup.
        assert runtime.state(first)["status"] == "running"
        assert runtime.state(first)["pid"] == owner_pid
        assert [d for d in cgroup_dirs_named(cgroup_name)
                if str(owner_pid) in Path(d, "cgroup.procs").read_text().split()]


def test_existing_empty_cgroup_is_used(runtime, bundle, cgroup_name):
    """An existing cgroup that is neither frozen nor busy is fine, as in runc."""
    layout = _layout()
    mount = layout.unified.mountpoint if layout.mode == "v2" else \
        next(iter(layout.v1.values())).mountpoint
    os.mkdir(os.path.join(mount, cgroup_name))
    proc = runtime("run", "-b", str(bundle(config=_config(bundle, cgroup_name, ["true"]))),
                   runtime.new_id("empty"))
    assert proc.returncode == 0, proc.stderr
    assert b"not empty" not in proc.stderr and b"frozen" not in proc.stderr
