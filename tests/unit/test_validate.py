"""One-line schema error messages and config.json loading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pyrunc.errors import ConfigError
from pyrunc.spec.template import default_spec
from pyrunc.spec.validate import (
    load_config,
    validate_config,
    validate_features,
    validate_state,
)


def _error(doc: object) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(doc)
    message = str(info.value)
    assert "\n" not in message
    return message


def _spec(**changes: Any) -> dict[str, Any]:
    doc = default_spec()
    doc.update(changes)
    return doc


def test_valid_template_passes() -> None:
    validate_config(default_spec())
    validate_config(default_spec(rootless=True))


def test_missing_top_level_property() -> None:
    assert _error({}) == "config.json: 'ociVersion' is a required property"


def test_top_level_not_an_object() -> None:
    assert _error([]) == "config.json: [] is not of type 'object'"


def test_empty_args() -> None:
    doc = default_spec()
    doc["process"]["args"] = []
    assert _error(doc) == "process.args: [] is too short"


def test_bad_namespace_type_names_the_index() -> None:
    doc = default_spec()
    doc["linux"]["namespaces"][2]["type"] = "foo"
    assert _error(doc) == (
        "linux.namespaces[2].type: 'foo' is not one of "
        "['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts']"
    )


def test_missing_nested_required() -> None:
    doc = default_spec()
    del doc["process"]["cwd"]
    assert _error(doc) == "process: 'cwd' is a required property"


def test_wrong_type() -> None:
    doc = default_spec()
    doc["linux"]["resources"]["memory"] = {"limit": "1G"}
    assert _error(doc) == "linux.resources.memory.limit: '1G' is not of type 'integer'"


def test_negative_uid() -> None:
    doc = default_spec()
    doc["process"]["user"]["uid"] = -1
    assert _error(doc) == "process.user.uid: -1 is less than the minimum of 0"


def test_mount_without_destination() -> None:
    doc = _spec(mounts=[{"source": "proc", "type": "proc"}])
    assert _error(doc) == "mounts[0]: 'destination' is a required property"


def test_hugepage_size_pattern() -> None:
    doc = default_spec()
    doc["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "64kB", "limit": 1}]
    assert _error(doc) == (
        "linux.resources.hugepageLimits[0].pageSize: '64kB' does not match '^[1-9][0-9]*[KMG]B$'"
    )


def test_seccomp_needs_default_action() -> None:
    doc = default_spec()
    doc["linux"]["seccomp"] = {"syscalls": []}
    assert _error(doc) == "linux.seccomp: 'defaultAction' is a required property"


def test_annotation_values_are_strings() -> None:
    assert _error(_spec(annotations={"a": 1})) == "annotations.a: 1 is not of type 'string'"


def test_state_messages() -> None:
    state = {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": 4, "bundle": "/b"}
    validate_state(state)
    with pytest.raises(ConfigError, match=r"^status: 'paused' is not one of "):
        validate_state({**state, "status": "paused"})
    with pytest.raises(ConfigError, match=r"^state: 'bundle' is a required property$"):
        validate_state({k: v for k, v in state.items() if k != "bundle"})


def test_features_messages() -> None:
    validate_features({"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"})
    with pytest.raises(ConfigError, match=r"^features: 'ociVersionMax' is a required property$"):
        validate_features({"ociVersionMin": "1.0.0"})
    with pytest.raises(ConfigError, match=r"^linux\.namespaces\[0\]: 'bogus' is not one of"):
        validate_features({"ociVersionMin": "1", "ociVersionMax": "1", "linux": {"namespaces": ["bogus"]}})


def test_load_config_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path))
    assert str(info.value) == "JSON specification file config.json not found"


def test_load_config_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{]")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path))
    assert str(info.value).startswith("config.json: invalid JSON: ")
    assert "\n" not in str(info.value)


def test_load_config_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[1]")
    with pytest.raises(ConfigError, match="^config.json: invalid JSON: top level must be an object"):
        load_config(str(tmp_path))


def test_load_config_unreadable(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ConfigError, match="^open config.json: "):
        load_config(str(tmp_path))


def test_load_config_reads_document(tmp_path: Path) -> None:
    doc = default_spec()
    (tmp_path / "config.json").write_text(json.dumps(doc))
    assert load_config(str(tmp_path)) == doc


def test_null_members_read_as_absent(tmp_path: Path) -> None:
    # As runc (Go) and crun (libocispec) read them.
    doc = default_spec()
    doc["hooks"] = None
    doc["process"]["capabilities"] = None
    doc["process"]["user"]["additionalGids"] = None
    doc["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm", "type": None}],
                                 "memory": None}
    doc["mounts"][0]["options"] = None
    (tmp_path / "config.json").write_text(json.dumps(doc))
    loaded = load_config(str(tmp_path))
    validate_config(loaded)
    assert "hooks" not in loaded and "capabilities" not in loaded["process"]
    assert loaded["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert "options" not in loaded["mounts"][0]


def test_null_array_items_stay_refused(tmp_path: Path) -> None:
    doc = default_spec()
    doc["process"]["args"] = ["sh", None]
    (tmp_path / "config.json").write_text(json.dumps(doc))
    assert "process.args[1]" in _error(load_config(str(tmp_path)))


def test_jsonschema_not_imported_by_spec_modules() -> None:
    code = (
        "import sys, pyrunc.spec.validate, pyrunc.spec.semantic, pyrunc.spec.template;"
        "print('jsonschema' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
