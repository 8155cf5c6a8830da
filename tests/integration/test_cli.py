"""CLI contracts engines rely on: features, version, help, logs, error lines."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import SHARED, error_line, needs_root, runc_differs


def official_validator(name: str):
    jsonschema = pytest.importorskip("jsonschema")
    schema_dir = SHARED / "oci-runtime-spec" / "schema"
    if not schema_dir.exists():
        pytest.skip("official schemas not available")
    from referencing import Registry
    from referencing.jsonschema import DRAFT4

    base = schema_dir.as_uri() + "/"
    registry = Registry().with_resources(
        (base + p.name, DRAFT4.create_resource(json.loads(p.read_text())))
        for p in schema_dir.glob("*.json"))
    schema = json.loads((schema_dir / name).read_text())
    schema["id"] = base + name
    return jsonschema.Draft4Validator(schema, registry=registry)


def test_features_validates_against_official_schema(runtime):
    proc = runtime("features", check=True)
    doc = json.loads(proc.stdout)
    official_validator("features-schema.json").validate(doc)
    assert "rbind" in doc["mountOptions"]
    assert set(doc["linux"]["namespaces"]) >= {"pid", "mount", "user", "cgroup"}


@runc_differs("runc 1.1.5 implements runtime-spec 1.0.2-dev: features and spec say so, no time namespace")
def test_features_and_spec_report_runtime_spec_1_3(runtime, tmp_path):
    doc = json.loads(runtime("features", check=True).stdout)
    assert doc["ociVersionMax"] == "1.3.0"
    assert "time" in doc["linux"]["namespaces"]
    runtime("spec", "-b", str(tmp_path), check=True)
    assert json.loads((tmp_path / "config.json").read_text())["ociVersion"] == "1.3.0"


@pytest.mark.parametrize("command", ["checkpoint", "restore"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_checkpoint_and_restore_help_work_without_criu(runtime, command, flag):
    # runc prints the help whether or not CRIU can run; only the command fails.
    proc = runtime(command, flag)
    assert proc.returncode == 0, proc.stderr
    assert b"--image-path value" in proc.stdout and b"--work-path value" in proc.stdout
    proc = runtime(command, "--image-path", "/nonexistent", "missing-container")
    assert proc.returncode == 1 and proc.stderr.count(b"\n") == 1, proc.stderr


def test_unknown_command_fails(runtime):
    proc = runtime("frobnicate")
    assert proc.returncode != 0 and proc.stderr.count(b"\n") == 1


def test_error_goes_to_json_log_as_last_error_line(runtime, tmp_path):
    log = tmp_path / "log.json"
    proc = runtime("state", "missing", log=str(log))
    assert proc.returncode == 1
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[-1]["level"] == "error"
    assert lines[-1]["msg"] == "container does not exist"
    assert set(lines[-1]) == {"level", "msg", "time"}


def test_flags_accept_both_forms(runtime, tmp_path):
    assert runtime(f"--root={tmp_path}", "list", "--format=json").stdout.strip() == b"null"
    assert runtime("--root", str(tmp_path), "list", "-f", "json").stdout.strip() == b"null"


def test_spec_writes_a_valid_config(runtime, tmp_path):
    runtime("spec", "-b", str(tmp_path), check=True)
    doc = json.loads((tmp_path / "config.json").read_text())
    official_validator("config-schema.json").validate(doc)
    proc = runtime("spec", "-b", str(tmp_path))
    assert proc.returncode == 1 and b"exists" in proc.stderr


def test_unsupported_global_modes_fail_clearly(runtime, bundle):
    b = bundle(["true"])
    if not os.path.isdir("/run/systemd/system"):
        proc = runtime("--systemd-cgroup", "create", "-b", str(b), "x1")
        assert proc.returncode == 1
        assert b"systemd not running on this host, cannot use systemd cgroups manager" in proc.stderr
    proc = runtime("--rootless", "maybe", "run", "-b", str(b), "x2")
    assert proc.returncode == 1 and '"maybe": invalid syntax' in error_line(proc)
    assert not (runtime.root / "x1").exists() and not (runtime.root / "x2").exists()


@needs_root
@pytest.mark.parametrize("flag", ["true", "1", "false", "auto"])
def test_root_runs_with_any_rootless_flag(runtime, bundle, flag):
    # Rootless cgroups only skip what root could not make anyway: root's run is unchanged.
    b = bundle(["true"])
    proc = runtime("--rootless", flag, "run", "-b", str(b), runtime.new_id())
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("argv, wording", [
    (["state"], '"state" requires exactly 1 argument(s)'),
    (["delete", "a", "b"], '"delete" requires exactly 1 argument(s)'),
    (["start"], '"start" requires exactly 1 argument(s)'),
    (["exec"], '"exec" requires a minimum of 1 argument(s)'),
    (["kill"], '"kill" requires a minimum of 1 argument(s)'),
    (["kill", "a", "KILL", "extra"], '"kill" requires a maximum of 2 argument(s)'),
    (["ps"], '"ps" requires a minimum of 1 argument(s)'),
    (["list", "extra"], '"list" requires exactly 0 argument(s)'),
    (["features", "extra"], '"features" requires exactly 0 argument(s)'),
])
def test_wrong_argument_count_is_runcs_incorrect_usage(runtime, tmp_path, argv, wording):
    """runc's checkArgs: "Incorrect Usage." and the command's help on stdout,
    one error line naming the command and the count, exit status 1."""
    proc = runtime("--root", str(tmp_path), *argv)
    assert proc.returncode == 1
    assert proc.stdout.startswith(b"Incorrect Usage.\n\n"), proc.stdout[:200]
    err = proc.stderr.decode().replace('\\"', '"')
    assert len(err.splitlines()) == 1 and f': {wording}' in err, err


@pytest.mark.parametrize("command", ["state", "exec", "kill", "list"])
def test_help_wins_over_the_argument_count(runtime, command):
    proc = runtime(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout and not proc.stdout.startswith(b"Incorrect Usage."), proc.stdout[:200]
