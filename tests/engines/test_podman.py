"""podman 4 (conmon) driving the runtime under test.

podman is daemonless, so every podman command runs inside the sandbox's
namespaces (nsenter); conmon and the containers stay there.  The runtime is
declared the way docs/engines.md tells users to: a containers.conf that names
it in [engine.runtimes], makes it the default and lists it in
runtime_supports_json (so podman passes `--log ... --log-format=json`).

The scenarios about cgroups run with both cgroup managers: ``cgroupfs`` and
``systemd`` (``cgroup_manager = "systemd"``, with ``--cgroup-parent`` the
run's slice; see tests/engines/conftest.py for that sandbox).  The systemd
variant is skipped where systemd is not PID 1.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import cli_scenarios as S
from tests.engines.conftest import (
    DRIVERS,
    IMAGE,
    RUN_TAG,
    RuntimeBin,
    Sandbox,
    engine_env,
    engine_per_driver,
    explain,
    finish_sandbox,
    new_name,
    require_root,
    run,
    skip_unless_binaries,
    skip_unless_systemd,
)

CONTAINERS_CONF = """\
[containers]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "{driver}"
events_logger = "file"
runtime = "{name}"
runtime_supports_json = ["{name}", "pyrunc", "runc", "crun"]

[engine.runtimes]
{name} = ["{path}"]
"""


class Podman:
    def __init__(self, sandbox: Sandbox, base: Path, rt: RuntimeBin, conf: Path) -> None:
        self.sandbox = sandbox
        self.base = base
        self.rt = rt
        self.conf = conf
        self.driver = sandbox.driver
        if self.driver == "systemd":
            self.cgroup_parent = sandbox.slice
        else:
            self.cgroup_parent = f"/{RUN_TAG}-podman"

    def scope(self, container_id: str) -> str:
        """The scope unit of a container (systemd driver)."""
        return f"libpod-{container_id}.scope"

    def argv(self, *args: str) -> list[str]:
        return self.sandbox.nsenter_argv([
            "env", f"CONTAINERS_CONF={self.conf}",
            "podman", "--root", str(self.base / "storage"), "--runroot", str(self.base / "runroot"),
            "--tmpdir", str(self.base / "libpod"), "--storage-driver", "vfs",
            "--cgroup-manager", self.driver, "--events-backend", "file", *args])

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return run(self.argv(*args), timeout=timeout, env=engine_env())

    def run_argv(self, *args: str, image: str = IMAGE, opts: tuple[str, ...] = ()) -> list[str]:
        return self.argv("run", "--network", "none", "--cgroup-parent", self.cgroup_parent,
                         *opts, image, *args)

    def run(self, *args: str, image: str = IMAGE, opts: tuple[str, ...] = ("--rm",),
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return run(self.run_argv(*args, image=image, opts=opts), timeout=timeout, env=engine_env())

    def status(self, name: str) -> str:
        return self("inspect", "--format", "{{.State.Status}}", name).stdout.decode().strip()


@pytest.fixture(scope="module")
def podman(engine_runtime: RuntimeBin, image_archive: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    yield from _podman(engine_runtime, image_archive, tmp_path_factory, "cgroupfs")


@pytest.fixture(scope="module")
def podman_systemd(engine_runtime: RuntimeBin, image_archive: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    skip_unless_systemd()
    yield from _podman(engine_runtime, image_archive, tmp_path_factory, "systemd")


@pytest.fixture(params=DRIVERS)
def pm(request: pytest.FixtureRequest) -> Iterator[Podman]:
    """podman with each cgroup manager; with systemd, the test must leave no scope."""
    yield from engine_per_driver(request, "podman")


def _podman(engine_runtime: RuntimeBin, image_archive: Path,
            tmp_path_factory: pytest.TempPathFactory, driver: str) -> Iterator[Podman]:
    require_root()
    skip_unless_binaries("podman", "conmon", "unshare", "nsenter")
    base = tmp_path_factory.mktemp({"cgroupfs": "pm-fs", "systemd": "pm-sd"}[driver])  # runroot < 50 chars
    conf = base / "containers.conf"
    conf.write_text(CONTAINERS_CONF.format(name=engine_runtime.name, path=engine_runtime.path,
                                           driver=driver))
    try:
        sb = Sandbox(base, "podman", driver=driver)
    except RuntimeError as e:
        pytest.skip(f"cannot make a sandbox for podman: {e}")
    eng = Podman(sb, base, engine_runtime, conf)
    try:
        info = eng("info", "--format", "{{.Host.OCIRuntime.Path}}")
        if info.returncode != 0:
            pytest.skip(f"podman cannot run here: {explain(info)}")
        load = eng("load", "--input", str(image_archive))
        assert load.returncode == 0, explain(load)
        yield eng
    finally:
        if sb.alive():
            eng("rm", "--all", "--force", "--time", "0", timeout=60)
        finish_sandbox(sb)


def test_runtime_is_the_one_configured(podman: Podman) -> None:
    info = podman("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}")
    assert info.stdout.decode().split() == [podman.rt.name, str(podman.rt.path)], explain(info)


def _flavor(podman: Podman) -> S.Flavor:
    # podman reads /proc itself for `top` and passes "--log-format=json".
    return S.Flavor(rm=("rm", "--force", "--time", "0"), top=("pid", "args"),
                    detached_calls={"exec", "kill", "delete"}, log_format_word="--log-format=json",
                    records_oom=False, pty_env=engine_env())


def test_run_prints_output(pm: Podman) -> None:
    S.run_prints_output(pm, _flavor(pm))


def test_limits_seen_by_the_driver(pm: Podman) -> None:
    S.limits_seen_by_the_driver(pm, _flavor(pm))


def test_exit_code_propagates(podman: Podman) -> None:
    S.exit_code_propagates(podman)


def test_env_workdir_and_user(podman: Podman) -> None:
    S.env_workdir_and_user(podman)


def test_detached_exec_top_stop_remove(pm: Podman) -> None:
    S.detached_exec_top_stop_remove(pm, _flavor(pm))


def test_pause_unpause(pm: Podman, hostdir: Path) -> None:
    S.pause_unpause(pm, _flavor(pm), hostdir)


def test_memory_limit_oom_kills_hog(pm: Podman) -> None:
    S.memory_limit_oom_kills_hog(pm, _flavor(pm))


def test_restart_after_oom_kill(pm: Podman) -> None:
    S.restart_after_oom_kill(pm, _flavor(pm))


def test_read_only_rootfs(podman: Podman) -> None:
    S.read_only_rootfs(podman)


def test_bind_mount_written_inside_read_on_host(podman: Podman, hostdir: Path) -> None:
    S.bind_mount_written_inside_read_on_host(podman, hostdir)


def test_interactive_tty(podman: Podman) -> None:
    S.interactive_tty(podman, _flavor(podman))


def test_interactive_exec_tty(podman: Podman) -> None:
    S.interactive_exec_tty(podman, _flavor(podman))


def test_missing_executable(podman: Podman) -> None:
    S.missing_executable(podman)


def test_create_failure_log_is_one_json_object(podman: Podman) -> None:
    """podman json-decodes the whole oci-log (not line by line) to get the runtime's
    error: after a failed create it must hold exactly one JSON object."""
    rt = podman.rt
    mark = rt.mark()
    name = new_name("fail")
    proc = podman.run("nosuchcommand", opts=("--name", name))
    try:
        assert proc.returncode == 127, explain(proc, rt, mark)
        cid = podman("inspect", "--format", "{{.Id}}", name).stdout.decode().strip()
        assert cid, explain(proc, rt, mark)
        creates = [line.split() for line in rt.calls_since(mark).splitlines()
                   if " create " in line and line.split()[-1] == cid]
        assert creates and "--log" in creates[0], rt.calls_since(mark)
        oci_log = creates[0][creates[0].index("--log") + 1]
        text = run(podman.sandbox.nsenter_argv(["cat", oci_log])).stdout.decode()
        assert text.count("\n") == 1 and text.endswith("\n"), repr(text)
        entry = json.loads(text)
        assert entry["level"] == "error", entry
        assert 'exec: "nosuchcommand": executable file not found in $PATH' in entry["msg"], entry
        # podman passed that msg on (prefixed with the runtime's name).
        assert entry["msg"] in proc.stderr.decode(), explain(proc, rt, mark)
    finally:
        podman("rm", "--force", "--time", "0", name)
