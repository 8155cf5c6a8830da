"""The hot path imports nothing heavy (design.md section 5).

Each case runs in a fresh interpreter: a small wrapper runs a real CLI command (or
the validation prelude of ``create``) and, whatever happens, writes the sorted
``sys.modules`` to a file.  Modules a bare interpreter already has at startup
(site hooks) are not counted against pyrunc.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "bundles" / "busybox" / "config.json"

# Top-level packages the hot path must not load: jsonschema and referencing (the
# schema check is compiled), pyroute2 (netlink), and stdlib packages that are slow
# to import and have no business in a runtime's fast path.
FORBIDDEN = ("jsonschema", "referencing", "pyroute2", "argparse", "logging", "asyncio",
             "email", "http", "xml", "ctypes")

# Stdlib modules that cost milliseconds each at import (dataclasses alone, with inspect,
# ast and tokenize, about 20 ms) and that the light commands do not need.  These are
# checked in interpreters started with -S, like the installed launcher: with `site`,
# a .pth file of the test machine already loads several of them.
SLOW_STDLIB = ("dataclasses", "typing", "inspect", "ast", "enum", "re", "pathlib", "socket",
               "subprocess", "importlib", "warnings")

WRAPPER = r"""
import sys
out, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
status = None
try:
    if mode == "bare":
        pass
    elif mode == "json":
        import json
    elif mode == "cli":
        from pyrunc.cli import run_command
        status = run_command(args)
    elif mode == "validate":
        import pyrunc.spec.validate as v
        doc = v.load_config(args[0])
        v.validate_config(doc)
        status = "ok"
    elif mode == "invalid":
        import pyrunc.spec.validate as v
        doc = v.load_config(args[0])
        doc["process"]["args"] = []
        try:
            v.validate_config(doc)
        except v.ConfigError as e:
            status = str(e)
    elif mode == "create-prelude":
        # What runtime.create imports and runs before anything needs root.
        from pyrunc import runtime
        from pyrunc.linux import facts
        from pyrunc.linux.cgroups import manager_for
        from pyrunc.linux.idmap import write_id_maps
        from pyrunc.linux.initproc import InitError, run_init
        from pyrunc.plan.builder import build_create_plan
        from pyrunc.spec.semantic import check_config, check_console
        from pyrunc.spec.validate import load_config, validate_config
        import pyrunc.cli.create_cmd, pyrunc.cli.exec_cmd, pyrunc.cli.run_cmd
        import pyrunc.plan.process
        doc = load_config(args[0])
        validate_config(doc)
        check_config(doc, args[0])
        status = "ok"
    elif mode == "create-plan":
        # The create path up to the encoded plan, with made-up host facts.
        from pyrunc.plan.builder import HostFacts, build_create_plan
        from pyrunc.plan.protocol import encode_plan
        from pyrunc.spec.semantic import check_config
        from pyrunc.spec.validate import load_config, validate_config
        doc = load_config(args[0])
        validate_config(doc)
        check_config(doc, args[0])
        facts = HostFacts(rootfs=args[0] + "/rootfs", bundle=args[0], fifo_fd=9)
        status = len(encode_plan(build_create_plan(doc, facts)))
    elif mode == "create-modules":
        # Every pyrunc module create, run and exec may import, the optional
        # ones (seccomp agent, netDevices, hooks, console) included.
        import pyrunc.cli.create_cmd
        import pyrunc.cli.exec_cmd
        import pyrunc.cli.run_cmd
        import pyrunc.linux.hooks
        import pyrunc.linux.netdevs
        import pyrunc.linux.seccomp_listener
        import pyrunc.linux.tty
        import pyrunc.plan.process
        import pyrunc.plan.seccomp
        from pyrunc import runtime
        from pyrunc.linux import cgroups, facts, idmap, initproc
        from pyrunc.plan import builder, protocol
        from pyrunc.spec import semantic, validate
        status = "ok"
    elif mode == "cgroupfs-state":
        # What delete, kill, pause, ps and events do with a cgroupfs container's state.
        from pyrunc.linux.cgroups import manager_from_state
        m = manager_from_state({"mode": "v2", "path": "/sys/fs/cgroup/x", "mount": "/sys/fs/cgroup"})
        m1 = manager_from_state({"mode": "hybrid", "paths": {"memory": "/sys/fs/cgroup/memory/x"}})
        status = type(m).__name__ + "," + type(m1).__name__
finally:
    modules = sorted(sys.modules)  # before the wrapper's own json import
    import json
    with open(out, "w") as f:
        json.dump({"modules": modules, "status": status}, f)
"""


def _modules(tmp_path: Path, mode: str, *args: str, no_site: bool = False) -> tuple[set[str], Any]:
    script = tmp_path / "wrapper.py"
    script.write_text(WRAPPER)
    out = tmp_path / f"modules-{mode}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONSTARTUP", None)
    flags = []
    if no_site:
        # As the -S launcher does: the repo plus site-packages, no .pth files.
        flags = ["-S"]
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *site.getsitepackages()])
    proc = subprocess.run([sys.executable, *flags, str(script), str(out), mode, *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert out.exists(), proc.stderr
    result = json.loads(out.read_text())
    return set(result["modules"]), result["status"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    modules, _ = _modules(tmp_path_factory.mktemp("bare"), "bare")
    # A site hook that already loads one of these would hide it from every case.
    assert not [m for m in modules if m.split(".")[0] in FORBIDDEN]
    return modules


@pytest.fixture(scope="module")
def bare_s(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """Modules of a bare `python -S`, and what `import json` adds to them."""
    tmp = tmp_path_factory.mktemp("bare-s")
    modules, _ = _modules(tmp, "bare", no_site=True)
    assert not [m for m in modules if m.split(".")[0] in SLOW_STDLIB]
    with_json, _ = _modules(tmp, "json", no_site=True)
    return modules, with_json - modules


def _slow(modules: set[str], bare_s: tuple[set[str], set[str]]) -> list[str]:
    """SLOW_STDLIB modules loaded beyond a bare -S interpreter.

    json is needed (state.json) and loads re (its scanner) and enum (re's
    flags); those count only when json is not loaded.
    """
    baseline, json_needs = bare_s
    loaded = modules - baseline
    if "json" in loaded:
        loaded -= json_needs
    return sorted(m for m in loaded if m.split(".")[0] in SLOW_STDLIB)


def _heavy(modules: set[str], baseline: set[str]) -> list[str]:
    loaded = modules - baseline
    return sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle"
    (path / "rootfs").mkdir(parents=True)
    shutil.copy(DEMO_CONFIG, path / "config.json")
    return path


CLI_CASES = {
    "version": ["--version"],
    "state": ["state", "nosuch"],
    "start": ["start", "nosuch"],
    "kill": ["kill", "nosuch", "KILL"],
    "delete": ["delete", "nosuch"],
    "list": ["list"],
}

# Heavy imports found in code owned by others; each names the offending chain.
KNOWN_HEAVY: dict[str, str] = {}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_commands_stay_light(name: str, tmp_path: Path, baseline: set[str]) -> None:
    if name in KNOWN_HEAVY:
        pytest.xfail(KNOWN_HEAVY[name])
    root = tmp_path / "root"
    root.mkdir()
    modules, status = _modules(tmp_path, "cli", "--root", str(root), *CLI_CASES[name])
    assert "pyrunc.cli" in modules
    if name in ("state", "start", "kill", "delete"):
        assert status == 1  # the container does not exist
    assert _heavy(modules, baseline) == []


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_commands_skip_slow_stdlib(name: str, tmp_path: Path,
                                       bare_s: tuple[set[str], set[str]]) -> None:
    """No dataclasses, typing, pathlib, socket... under the -S launcher's conditions."""
    root = tmp_path / "root"
    root.mkdir()
    modules, status = _modules(tmp_path, "cli", "--root", str(root), *CLI_CASES[name], no_site=True)
    assert "pyrunc.cli" in modules
    if name in ("state", "start", "kill", "delete"):
        assert status == 1  # the container does not exist
    assert _slow(modules, bare_s) == []
    assert "pyrunc.linux.cgroups" not in modules


def test_version_does_not_even_load_json(tmp_path: Path,
                                         bare_s: tuple[set[str], set[str]]) -> None:
    modules, status = _modules(tmp_path, "cli", "--version", no_site=True)
    assert status == 0
    assert "json" not in modules
    assert _slow(modules, bare_s) == []


def test_validating_a_valid_config_stays_light(bundle: Path, tmp_path: Path,
                                               baseline: set[str]) -> None:
    modules, status = _modules(tmp_path, "validate", str(bundle))
    assert status == "ok"
    assert "pyrunc.spec._compiled_schema" in modules
    assert _heavy(modules, baseline) == []


def test_create_prelude_stays_light(bundle: Path, tmp_path: Path,
                                    baseline: set[str]) -> None:
    if "create" in KNOWN_HEAVY:
        pytest.xfail(KNOWN_HEAVY["create"])
    modules, status = _modules(tmp_path, "create-prelude", str(bundle))
    assert status == "ok"
    assert "pyrunc.runtime" in modules
    assert _heavy(modules, baseline) == []


# What create may still import (socket: console and seccomp sockets), but not the
# code generator of dataclasses, pathlib or typing (annotations only, TYPE_CHECKING).
CREATE_FORBIDDEN = ("dataclasses", "inspect", "ast", "pathlib", "typing")


def test_create_plan_skips_dataclasses_and_pathlib(bundle: Path, tmp_path: Path,
                                                   bare_s: tuple[set[str], set[str]]) -> None:
    modules, status = _modules(tmp_path, "create-plan", str(bundle), no_site=True)
    assert isinstance(status, int) and status > 0
    assert "pyrunc.plan.builder" in modules
    assert sorted(m for m in modules - bare_s[0] if m.split(".")[0] in CREATE_FORBIDDEN) == []


def test_create_prelude_skips_dataclasses_and_pathlib(bundle: Path, tmp_path: Path,
                                                      bare_s: tuple[set[str], set[str]]) -> None:
    """Everything runtime.create imports (initproc, cgroups, facts...), under -S."""
    modules, status = _modules(tmp_path, "create-prelude", str(bundle), no_site=True)
    assert status == "ok"
    assert "pyrunc.linux.initproc" in modules
    assert sorted(m for m in modules - bare_s[0] if m.split(".")[0] in CREATE_FORBIDDEN) == []


# Beyond CREATE_FORBIDDEN, what every create, run and exec would otherwise pay for:
# json's scanner loads re, re loads enum (about 8 ms together), copy loads weakref;
# math and select are shared objects to map, needed only by v2 weights and `events`.
CREATE_PATH_FORBIDDEN = (*CREATE_FORBIDDEN, "json", "re", "enum", "copy", "weakref",
                         "collections", "functools", "math", "select")


def test_create_and_exec_paths_skip_json_re_enum(bundle: Path, tmp_path: Path,
                                                 bare_s: tuple[set[str], set[str]]) -> None:
    """The modules every create/run/exec loads, running a real config's checks, under -S;
    only optional features (hooks, a console, netDevices) may load more."""
    modules, status = _modules(tmp_path, "create-prelude", str(bundle), no_site=True)
    assert status == "ok"
    assert "pyrunc.plan.process" in modules and "pyrunc.spec._compiled_schema" in modules
    loaded = modules - bare_s[0]
    assert sorted(m for m in loaded if m.split(".")[0] in CREATE_PATH_FORBIDDEN) == []


def test_create_run_exec_modules_skip_typing(tmp_path: Path,
                                             bare_s: tuple[set[str], set[str]]) -> None:
    """All of create/run/exec's modules, optional ones included, under -S."""
    modules, status = _modules(tmp_path, "create-modules", no_site=True)
    assert status == "ok"
    assert "pyrunc.linux.seccomp_listener" in modules
    assert sorted(m for m in modules - bare_s[0] if m.split(".")[0] in CREATE_FORBIDDEN) == []


# The systemd cgroup driver's D-Bus client: loaded only when --systemd-cgroup is used.
SYSTEMD_MODULES = ("pyrunc.linux.dbus", "pyrunc.linux.systemd_manager")


@pytest.mark.parametrize("mode", ["create-prelude", "create-modules"])
def test_cgroupfs_create_path_skips_the_dbus_client(mode: str, bundle: Path, tmp_path: Path) -> None:
    args = [str(bundle)] if mode == "create-prelude" else []
    modules, status = _modules(tmp_path, mode, *args, no_site=True)
    assert status == "ok"
    assert "pyrunc.linux.cgroups" in modules
    assert sorted(set(SYSTEMD_MODULES) & modules) == []


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_commands_skip_the_dbus_client(name: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    modules, _ = _modules(tmp_path, "cli", "--root", str(root), *CLI_CASES[name], no_site=True)
    assert "pyrunc.cli" in modules
    assert sorted(set(SYSTEMD_MODULES) & modules) == []


def test_rejection_imports_jsonschema_to_explain(bundle: Path, tmp_path: Path,
                                                 baseline: set[str]) -> None:
    """The detector works: an invalid config does pull jsonschema in, for the message."""
    modules, status = _modules(tmp_path, "invalid", str(bundle))
    assert status == "process.args: [] is too short"
    assert "jsonschema" in _heavy(modules, baseline)


@pytest.mark.parametrize("command", [["state", "c1"], ["list"], ["list", "-f", "json"], ["kill", "c1", "KILL"]])
def test_light_commands_read_state_without_json_or_re(command: list[str], tmp_path: Path,
                                                      bare_s: tuple[set[str], set[str]]) -> None:
    """With a real state.json to read and JSON to print, still no json, re or enum.

    pyrunc.jsonio uses the _json accelerator directly; `signal` is replaced by
    _signal in the runtime.  Together that is ~12 ms off every light command.
    """
    from pyrunc.state.store import ContainerRecord

    root = tmp_path / "root"
    (root / "c1").mkdir(parents=True)
    record = ContainerRecord(id="c1", bundle="/b", rootfs="/b/rootfs", created="2026-01-01T00:00:00Z")
    (root / "c1" / "state.json").write_text(record.to_json())
    modules, status = _modules(tmp_path, "cli", "--root", str(root), *command, no_site=True)
    assert "pyrunc.state.store" in modules
    baseline, _ = bare_s
    loaded = modules - baseline
    assert sorted(m for m in loaded if m.split(".")[0] in ("json", "re", "enum", "signal")) == []
    assert _slow(modules, bare_s) == []


def test_cgroup_manager_without_the_planner(tmp_path: Path) -> None:
    """delete, kill, pause and ps rebuild the manager from state.json and remove,
    signal or freeze: the resources-to-files planner is loaded only to apply."""
    code = ("import sys\nfrom pyrunc.linux.cgroups import manager_from_state\n"
            "m = manager_from_state({'mode': 'v1', 'paths': {'pids': '/nonexistent/x'}})\n"
            "m.pids(); m.destroy()\n"
            "print('pyrunc.plan.cgroups' in sys.modules)\n"
            "m.plan({'pids': {'limit': 5}}, devices=False)\n"
            "print('pyrunc.plan.cgroups' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.stdout.split() == ["False", "True"], proc.stderr


def test_log_file_is_created_without_loading_the_log_writer(tmp_path: Path) -> None:
    """--log creates the file on every call; the formatter loads only to write a line."""
    log = tmp_path / "log.json"
    root = tmp_path / "root"
    root.mkdir()
    modules, status = _modules(tmp_path, "cli", "--root", str(root), "--log", str(log),
                               "--log-format", "json", "list", no_site=True)
    assert status == 0
    assert log.exists() and log.read_text() == ""
    assert not {"pyrunc.logs", "pyrunc.cli.logmsg"} & modules
    modules, status = _modules(tmp_path, "cli", "--root", str(root), "--log", str(log),
                               "--debug", "list", no_site=True)
    assert status == 0
    assert "pyrunc.cli.logmsg" in modules


# The systemd cgroup driver and its D-Bus client: loaded only for a container that uses it.
SYSTEMD_DRIVER = ("pyrunc.linux.systemd_manager", "pyrunc.linux.dbus", "pyrunc.linux.cgroups.systemd",
                  "pyrunc.plan.systemd_unit")


@pytest.mark.parametrize("mode", ["create-prelude", "create-modules", "cgroupfs-state"])
def test_cgroupfs_path_does_not_load_the_systemd_driver(mode: str, bundle: Path, tmp_path: Path) -> None:
    modules, status = _modules(tmp_path, mode, str(bundle))
    assert status in ("ok", "V2Manager,V1Manager")
    assert sorted(m for m in modules if m in SYSTEMD_DRIVER) == []
