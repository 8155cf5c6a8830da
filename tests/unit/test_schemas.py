"""pyrunc's schemas against the official runtime-spec schemas and samples (the oracle).

Our schemas are Linux-only: the non-Linux platform sections (freebsd, zos, ...) are
accepted as any object, so the official *bad* samples that only break a non-Linux
section are skipped.  Deliberate differences from the official schemas, all where the
spec text says more than its schema does:

* ``process.args`` must have at least one entry (config.md: REQUIRED on non-Windows).
* annotation keys must not be empty (config.md: keys MUST NOT be an empty string).

and one documented extension, where runc and crun accept more than the schema:

* ``linux.rootfsPropagation`` also takes the recursive words ``rprivate``, ``rshared``,
  ``rslave`` and ``runbindable`` (containerd's CRI plugin writes them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyrunc.errors import ConfigError
from pyrunc.spec import validate
from pyrunc.spec.template import default_spec

ORACLE = Path(__file__).resolve().parents[2].parent / "shared" / "oci-runtime-spec" / "schema"
if not ORACLE.is_dir():
    pytest.skip("official runtime-spec schemas not available", allow_module_level=True)

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SAMPLES = ORACLE / "test"
NON_LINUX_PREFIXES = ("freebsd-", "zos-", "windows-", "solaris-", "vm-")


def _official(name: str) -> Draft4Validator:
    resources = []
    for path in ORACLE.glob("*.json"):
        contents = json.loads(path.read_text())
        resources.append((path.as_uri(), Resource.from_contents(contents, DRAFT4)))
    registry: Registry[Any] = Registry().with_resources(resources)
    return Draft4Validator({"$ref": (ORACLE / name).as_uri()}, registry=registry)


OFFICIAL = {
    "config": _official("config-schema.json"),
    "state": _official("state-schema.json"),
    "features": _official("features-schema.json"),
}
OURS = {
    "config": validate.validate_config,
    "state": validate.validate_state,
    "features": validate.validate_features,
}


SCHEMA_FILES = {
    "config": validate.CONFIG_SCHEMA,
    "state": validate.STATE_SCHEMA,
    "features": validate.FEATURES_SCHEMA,
}


def ours_accepts(kind: str, doc: object) -> bool:
    """Verdict of the public entry point (one line, or an exception)."""
    try:
        OURS[kind](doc)
    except ConfigError as e:
        assert "\n" not in str(e)
        return False
    return True


def ours_is_valid(kind: str, doc: object) -> bool:
    """Same verdict, without best_match's full error walk (the generator makes many)."""
    return bool(validate._validator(SCHEMA_FILES[kind]).is_valid(doc))


def official_accepts(kind: str, doc: object) -> bool:
    return bool(OFFICIAL[kind].is_valid(doc))


def _samples(kind: str, verdict: str) -> list[Path]:
    return sorted((SAMPLES / kind / verdict).glob("*.json"))


def _parse(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


@pytest.mark.parametrize("kind", ["config", "state", "features"])
def test_good_samples_accepted(kind: str) -> None:
    paths = _samples(kind, "good")
    assert paths
    for path in paths:
        doc = _parse(path)
        assert official_accepts(kind, doc), path
        assert ours_accepts(kind, doc), path


@pytest.mark.parametrize("kind", ["config", "state", "features"])
def test_bad_samples_rejected(kind: str, tmp_path: Path) -> None:
    checked = 0
    for path in _samples(kind, "bad"):
        if path.name.startswith(NON_LINUX_PREFIXES):
            continue
        doc = _parse(path)
        if doc is None:
            # Not JSON at all: rejected by the loader, before any schema.
            if kind == "config":
                (tmp_path / "config.json").write_bytes(path.read_bytes())
                with pytest.raises(ConfigError, match="invalid JSON"):
                    validate.load_config(str(tmp_path))
            checked += 1
            continue
        assert not official_accepts(kind, doc), path
        assert not ours_accepts(kind, doc), path
        checked += 1
    assert checked


# --- generated configs: both schemas must give the same verdict ------------------

ENUM_FIELDS = {
    ("linux", "rootfsPropagation"),
    ("linux", "seccomp", "defaultAction"),
    ("linux", "namespaces", 0, "type"),
    ("linux", "personality", "domain"),
    ("linux", "memoryPolicy", "mode"),
    ("process", "ioPriority", "class"),
    ("process", "scheduler", "policy"),
    ("linux", "devices", 0, "type"),
    ("linux", "seccomp", "architectures", 0),
    ("linux", "seccomp", "syscalls", 0, "action"),
    ("linux", "seccomp", "syscalls", 0, "args", 0, "op"),
}


def _rich_config() -> dict[str, Any]:
    """A config touching most of the schema, including the 1.2/1.3 additions."""
    doc = json.loads((SAMPLES / "config" / "good" / "spec-example.json").read_text())
    linux = doc["linux"]
    linux["seccomp"]["flags"] = ["SECCOMP_FILTER_FLAG_LOG"]
    linux["seccomp"]["defaultErrnoRet"] = 1
    linux["seccomp"]["listenerPath"] = "/run/seccomp.sock"
    linux["seccomp"]["syscalls"].append(
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}
    )
    linux["personality"] = {"domain": "LINUX", "flags": []}
    linux["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]}
    linux["intelRdt"] = {"closID": "guaranteed", "l3CacheSchema": "L3:0=7f",
                         "memBwSchema": "MB:0=20", "enableMonitoring": True}
    linux["netDevices"] = {"eth0": {"name": "ctr0"}}
    linux["resources"]["rdma"] = {"mlx5_1": {"hcaHandles": 3}}
    linux["resources"]["unified"] = {"memory.high": "1G"}
    doc["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    doc["process"]["scheduler"] = {"policy": "SCHED_OTHER", "nice": 1, "flags": []}
    doc["process"]["execCPUAffinity"] = {"initial": "0-1", "final": "0"}
    return doc


def _base_configs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [default_spec(), default_spec(rootless=True), _rich_config()]
    for path in _samples("config", "good"):
        # spec-example.json is already inside the rich config.
        if not path.name.startswith(NON_LINUX_PREFIXES) and path.name != "spec-example.json":
            docs.append(json.loads(path.read_text()))
    return docs


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _wrong(value: Any) -> Any:
    if isinstance(value, bool):
        return "true"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return 7
    if isinstance(value, list):
        return {"0": value}
    return [value]


def _mutations(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in _paths(doc):
        parent, last = path[:-1], path[-1]
        if isinstance(last, str):
            mutated = copy.deepcopy(doc)
            del _get(mutated, parent)[last]
            yield f"delete {path}", mutated
        mutated = copy.deepcopy(doc)
        _get(mutated, parent)[last] = _wrong(_get(doc, path))
        yield f"retype {path}", mutated
        value = _get(doc, path)
        if isinstance(value, int) and not isinstance(value, bool):
            for bad in (-1, 2**64):
                mutated = copy.deepcopy(doc)
                _get(mutated, parent)[last] = bad
                yield f"{bad} at {path}", mutated
    for path in ENUM_FIELDS:
        try:
            _get(doc, path)
        except (KeyError, IndexError, TypeError):
            continue
        mutated = copy.deepcopy(doc)
        _get(mutated, path[:-1])[path[-1]] = "BOGUS"
        yield f"enum {path}", mutated


def _expected_deviation(doc: dict[str, Any]) -> bool:
    """True where our schema is stricter on purpose (see the module docstring)."""
    process = doc.get("process")
    return isinstance(process, dict) and process.get("args") == []


RECURSIVE_PROPAGATION = ["rprivate", "rshared", "rslave", "runbindable"]


@pytest.mark.parametrize("word", RECURSIVE_PROPAGATION)
def test_recursive_rootfs_propagation_is_an_extension(word: str) -> None:
    doc = default_spec()
    doc["linux"]["rootfsPropagation"] = word
    assert not official_accepts("config", doc)
    assert ours_is_valid("config", doc)
    validate.validate_config(doc)


@pytest.mark.parametrize("word", ["rbogus", "Rshared", "rec", "r", "", "rshared ", "srprivate"])
def test_other_rootfs_propagation_words_stay_refused(word: str) -> None:
    doc = default_spec()
    doc["linux"]["rootfsPropagation"] = word
    assert not ours_is_valid("config", doc)
    with pytest.raises(ConfigError, match="rootfsPropagation"):
        validate.validate_config(doc)


def test_generated_configs_agree_with_official() -> None:
    total = rejected = 0
    disagreements = []
    for base in _base_configs():
        for label, doc in _mutations(base):
            total += 1
            theirs = official_accepts("config", doc)
            mine = ours_is_valid("config", doc)
            rejected += not theirs
            if theirs != mine and not _expected_deviation(doc):
                disagreements.append(f"{label}: official={theirs} ours={mine}")
    assert not disagreements, "\n".join(disagreements[:20])
    # The generator must actually exercise both verdicts.
    assert total > 500 and 100 < rejected < total - 100


@pytest.mark.parametrize("kind", ["state", "features"])
def test_generated_state_and_features_agree(kind: str) -> None:
    total = 0
    for path in _samples(kind, "good"):
        for label, doc in _mutations(json.loads(path.read_text())):
            total += 1
            assert official_accepts(kind, doc) == ours_is_valid(kind, doc), label
    assert total > 10


def test_deliberate_deviations() -> None:
    doc = default_spec()
    doc["process"]["args"] = []
    assert official_accepts("config", doc) and not ours_accepts("config", doc)
    doc = default_spec()
    doc["annotations"] = {"": "x"}
    assert official_accepts("config", doc) and not ours_accepts("config", doc)


def test_template_accepted_by_both() -> None:
    for rootless in (False, True):
        doc = default_spec(rootless=rootless)
        assert official_accepts("config", doc)
        assert ours_accepts("config", doc)


def test_namespace_time_and_v13_fields_accepted() -> None:
    doc = _rich_config()
    assert official_accepts("config", doc)
    assert ours_accepts("config", doc)
