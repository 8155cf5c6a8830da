"""runtime.md (state, lifecycle, errors, operations) and the config.md rules that are
about accepting or refusing a bundle, driven through the CLI from outside.

Only the MUSTs not already exercised by tests/integration are here; the map is
docs/spec-conformance.md.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import pyrunc_only


def wait_stopped(runtime, cid: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = json.loads(runtime("state", cid, check=True).stdout)
        if st["status"] == "stopped" or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete", "create"])
def test_operation_without_id_is_an_error(runtime, command):
    """query-state/start/kill/delete/create: no container ID -> error."""
    assert runtime(command).returncode != 0


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete"])
def test_operation_on_missing_container_is_an_error(runtime, command):
    """query-state/start/kill/delete: an unknown container -> error."""
    assert runtime(command, "pyrunc-conformance-missing").returncode != 0


def test_create_does_not_run_user_code_and_start_does(runtime, bundle, tmp_path):
    """lifecycle step 2 / create: resources made, user code not run; start runs it."""
    out = tmp_path / "out"
    out.mkdir()
    cfg = bundle.config(["sh", "-c", "echo ran > /out/mark"])
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                          "options": ["rbind", "rw"]})
    cid = runtime.new_id()
    runtime("create", "-b", str(bundle(config=cfg)), cid, check=True)
    assert json.loads(runtime("state", cid).stdout)["status"] == "created"
    time.sleep(0.2)
    assert not (out / "mark").exists()
    runtime("start", cid, check=True)
    wait_stopped(runtime, cid)
    assert (out / "mark").read_text() == "ran\n"


def test_config_changes_after_create_have_no_effect(runtime, bundle, tmp_path):
    """create: later edits of config.json do not affect the container."""
    out = tmp_path / "out"
    out.mkdir()
    cfg = bundle.config(["sh", "-c", "hostname > /out/name"])
    cfg["hostname"] = "before"
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                          "options": ["rbind", "rw"]})
    path = bundle(config=cfg)
    cid = runtime.new_id()
    runtime("create", "-b", str(path), cid, check=True)
    cfg["hostname"] = "after"
    cfg["process"]["args"] = ["sh", "-c", "echo changed > /out/name"]
    (path / "config.json").write_text(json.dumps(cfg))
    runtime("start", cid, check=True)
    wait_stopped(runtime, cid)
    assert (out / "name").read_text() == "before\n"


def test_kill_of_stopped_container_is_an_error_without_effect(runtime, bundle):
    """kill: not running -> error, and the container is left as it was."""
    cid = runtime.new_id()
    runtime("create", "-b", str(bundle(["true"])), cid, check=True)
    runtime("start", cid, check=True)
    before = wait_stopped(runtime, cid)
    assert runtime("kill", cid, "KILL").returncode != 0
    assert json.loads(runtime("state", cid).stdout) == before


def test_stopped_after_kill(runtime, bundle):
    """kill: the signal reaches the process; status becomes stopped."""
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(["sleep", "1000"])), cid, check=True)
    # SIGKILL: as PID 1 of its namespace, sleep has no default action for TERM.
    runtime("kill", cid, "KILL", check=True)
    assert wait_stopped(runtime, cid)["status"] == "stopped"


def test_delete_keeps_what_the_container_did_not_create(runtime, bundle, tmp_path):
    """delete: resources not created by the container (a bind source) are kept."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep").write_text("x")
    cfg = bundle.config(["true"])
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                          "options": ["rbind", "ro"]})
    cid = runtime.new_id()
    runtime("run", "-b", str(bundle(config=cfg)), cid, check=True)
    runtime("delete", "--force", cid)
    assert (data / "keep").read_text() == "x"
    assert runtime("state", cid).returncode != 0


def test_state_has_the_required_properties(runtime, bundle):
    """state: ociVersion, id, status, pid, bundle, annotations."""
    cfg = bundle.config(["sleep", "1000"])
    cfg["annotations"] = {"org.example.key": "value"}
    path = bundle(config=cfg)
    cid = runtime.new_id()
    runtime("create", "-b", str(path), cid, check=True)
    st = json.loads(runtime("state", cid).stdout)
    assert st["id"] == cid and st["status"] == "created" and st["pid"] > 0
    assert st["bundle"] == str(path) and st["ociVersion"]
    assert st["annotations"] == {"org.example.key": "value"}


def test_unknown_properties_and_annotations_are_ignored(runtime, bundle):
    """config extensibility: unknown properties and annotation keys are no error."""
    cfg = bundle.config(["true"])
    cfg["org.example.unknown"] = {"a": 1}
    cfg["process"]["org.example.field"] = True
    cfg["linux"]["org.example.linux"] = [1, 2]
    cfg["annotations"] = {"org.example.whatever": "1"}
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda c: c["process"].update(cwd="relative/dir"), id="cwd-not-absolute"),
    pytest.param(lambda c: c["process"].update(args=[]), id="args-empty"),
    pytest.param(lambda c: c["root"].update(path="/nonexistent-pyrunc-root"), id="root-missing"),
    pytest.param(lambda c: c["linux"]["namespaces"].append({"type": "pid"}), id="duplicate-ns"),
    pytest.param(lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), id="unknown-ns"),
    pytest.param(lambda c: c["process"].update(
        rlimits=[{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]), id="unknown-rlimit"),
    pytest.param(lambda c: c["linux"]["namespaces"].__setitem__(
        1, {"type": "network", "path": "/proc/self/ns/uts"}), id="ns-path-wrong-type"),
    pytest.param(lambda c: c["linux"]["namespaces"].__setitem__(
        1, {"type": "network", "path": "proc/self/ns/net"}), id="ns-path-relative"),
])
def test_invalid_config_is_an_error_and_leaves_nothing(runtime, bundle, mutate):
    """Configs the spec says MUST be refused; the failed create leaves no container."""
    cfg = bundle.config(["true"])
    mutate(cfg)
    cid = runtime.new_id()
    proc = runtime("create", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode != 0
    assert runtime("state", cid).returncode != 0


def test_relative_mount_destination_is_under_root(runtime, bundle):
    """configMounts (1.2): a relative destination is taken relative to "/"."""
    cfg = bundle.config(["sh", "-c", "grep -c ' /mnt ' /proc/self/mountinfo"])
    cfg["mounts"].append({"destination": "mnt", "type": "tmpfs", "source": "tmpfs"})
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == b"1"


def test_console_size_ignored_without_terminal(runtime, bundle):
    """configProcess: consoleSize is ignored when terminal is false."""
    cfg = bundle.config(["true"])
    cfg["process"]["consoleSize"] = {"height": 10, "width": 40}
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr


def test_namespace_not_listed_is_inherited(runtime, bundle):
    """configLinuxNamespaces: a type left out is the runtime's namespace."""
    import os

    cfg = bundle.config(["readlink", "/proc/self/ns/ipc"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "ipc"]
    cfg["linux"]["sysctl"] = {}
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == os.readlink("/proc/self/ns/ipc")


@pyrunc_only("pyrunc's own wording")
def test_unsupported_platform_value_is_an_error(runtime, bundle):
    """Valid values: an unknown capability name is refused, not silently dropped."""
    cfg = bundle.config(["true"])
    cfg["process"]["capabilities"]["bounding"].append("CAP_BOGUS")
    proc = runtime("create", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode != 0
