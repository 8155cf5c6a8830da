"""Hostile input: generated config.json files through `pyrunc run`.

Configs come from a valid one, mutated (keys dropped, values replaced by
arbitrary JSON, lists emptied or repeated), and from the schema (every
field config-linux.json names under "linux", set to arbitrary JSON).
Whatever the config, pyrunc either runs the container (process `true`) or
prints exactly one error line and exits 1; it never prints a traceback and
never leaves a state dir, cgroup, mount or process behind.

Guard rails, so a generated config cannot touch the host: the cgroup path
is always a fresh one of the test's own, hooks are removed, namespace
paths are dropped, and the rootfs is a private copy.
"""

from __future__ import annotations

import copy
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BASE_CONFIG, REPO, cgroup_dirs_named, mounts_under, needs_root, runc_differs
from tests.security.test_faults import live_pids_in_cgroups_named

pytestmark = needs_root

HOSTILE = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])

LINUX_FIELDS = sorted(json.loads((REPO / "pyrunc" / "schemas" / "config-linux.json").read_text())
                      ["properties"])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["/", "/proc", "..", "bind", "tmpfs", "/dev/null"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12)


def leaf_paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += leaf_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += leaf_paths(v, (*prefix, i))
    return out


BASE = copy.deepcopy(BASE_CONFIG)
BASE["process"]["args"] = ["true"]
BASE["process"]["terminal"] = False
PATHS = leaf_paths(BASE)


@st.composite
def mutated(draw) -> dict[str, Any]:
    cfg = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = cfg
        try:
            for key in path[:-1]:
                parent = parent[key]
            last = path[-1]
            action = draw(st.sampled_from(["drop", "replace", "dup", "empty"]))
            if action == "drop":
                del parent[last]
            elif action == "replace":
                parent[last] = draw(json_values)
            elif action == "dup" and isinstance(parent[last], list):
                parent[last] = parent[last] * 2
            elif action == "empty":
                parent[last] = type(parent[last])() if isinstance(parent[last], (list, dict, str)) \
                    else 0
        except (KeyError, IndexError, TypeError):
            continue
    return cfg


@st.composite
def from_schema(draw) -> dict[str, Any]:
    cfg = copy.deepcopy(BASE)
    for name in draw(st.lists(st.sampled_from(LINUX_FIELDS), min_size=1, max_size=3, unique=True)):
        cfg["linux"][name] = draw(json_values)
    return cfg


def guard(cfg: Any, rootfs: Path, cgroup: str) -> Any:
    """Keep a generated config away from the host (see the module doc)."""
    if not isinstance(cfg, dict):
        return cfg
    cfg.pop("hooks", None)
    root = cfg.get("root")
    if isinstance(root, dict) and "path" in root:
        root["path"] = str(rootfs)
    linux = cfg.get("linux")
    if isinstance(linux, dict):
        linux["cgroupsPath"] = cgroup
        if isinstance(linux.get("namespaces"), list):
            for ns in linux["namespaces"]:
                if isinstance(ns, dict):
                    ns.pop("path", None)
        if isinstance(linux.get("seccomp"), dict):
            linux["seccomp"].pop("listenerPath", None)
    return cfg


@pytest.fixture(scope="module")
def hostile_rootfs(rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("hostile") / "rootfs"
    shutil.copytree(rootfs, dest, symlinks=True)
    return dest


def check_one(runtime, tmp_path: Path, rootfs: Path, cfg: dict[str, Any]) -> None:
    cid = f"hostile-{uuid.uuid4().hex[:10]}"
    cgroup = f"/pyrunc-test-{cid}"
    cfg = guard(cfg, rootfs, cgroup)
    b = tmp_path / "bundles" / cid
    b.mkdir(parents=True)
    (b / "config.json").write_text(json.dumps(cfg))
    proc = runtime("run", "-b", str(b), cid, timeout=60)
    try:
        err = proc.stderr.decode(errors="replace")
        assert "Traceback" not in err, err
        if proc.returncode != 0:
            lines = [line for line in err.splitlines() if line.strip()]
            assert proc.returncode == 1 and len(lines) == 1, (proc.returncode, err, cfg)
        else:
            assert err.strip() == "" or len(err.strip().splitlines()) <= 2, err
    finally:
        runtime("delete", "--force", cid, timeout=30)
    assert not (runtime.root / cid).exists(), cfg
    assert cgroup_dirs_named(cgroup.lstrip("/")) == [], cfg
    assert live_pids_in_cgroups_named(cid) == [], cfg
    assert mounts_under(str(rootfs)) == [], cfg


@HOSTILE
@given(cfg=mutated())
@runc_differs("runc 1.1.5 prints warning lines before its error for some mutated configs")
def test_mutated_configs(runtime, tmp_path, hostile_rootfs, cfg):
    check_one(runtime, tmp_path, hostile_rootfs, cfg)


@HOSTILE
@given(cfg=from_schema())
def test_schema_fields_with_any_value(runtime, tmp_path, hostile_rootfs, cfg):
    check_one(runtime, tmp_path, hostile_rootfs, cfg)


@HOSTILE
@given(raw=st.one_of(st.binary(max_size=64), json_values.map(json.dumps),
                     st.sampled_from(["", "{", "[]", "null", '{"ociVersion": 1}', "\ufeff{}"])))
@runc_differs("runc 1.1.5 panics (nil pointer dereference) on some non-configs")
def test_not_even_a_config(runtime, tmp_path, raw):
    cid = f"hostile-{uuid.uuid4().hex[:10]}"
    b = tmp_path / "raw" / cid
    b.mkdir(parents=True)
    (b / "config.json").write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    proc = runtime("run", "-b", str(b), cid)
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    assert proc.returncode == 1 and len(err.strip().splitlines()) == 1, err
    assert not (runtime.root / cid).exists()
