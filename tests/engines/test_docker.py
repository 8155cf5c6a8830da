"""dockerd 20.10 (with the containerd it starts itself) driving the runtime under test.

The runtime is registered the documented way, a daemon.json "runtimes" entry,
and chosen per container with `docker run --runtime NAME`.  dockerd hands it
to containerd as runc.v2 options (BinaryName), so the runtime sees the same
command lines as under containerd.  The docker client runs on the host and
talks to the sandboxed daemon through its unix socket.

The scenarios about cgroups run with both cgroup drivers: dockerd's
``native.cgroupdriver=cgroupfs`` and ``native.cgroupdriver=systemd`` (with
``--cgroup-parent`` the run's slice; see tests/engines/conftest.py for that
sandbox).  The systemd variant is skipped where systemd is not PID 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import cli_scenarios as S
from tests.engines.conftest import (
    DAEMON_START_TIMEOUT,
    DRIVERS,
    IMAGE,
    RUN_TAG,
    RuntimeBin,
    Sandbox,
    answers,
    direct_create_failure,
    engine_env,
    engine_per_driver,
    explain,
    finish_sandbox,
    new_name,
    require_root,
    run,
    run_slice,
    skip_unless_binaries,
    skip_unless_systemd,
    wait_until,
)


def docker_runtime_name(rt: RuntimeBin) -> str:
    # dockerd reserves the name "runc" for its built-in runtime.
    return rt.name if rt.name != "runc" else "runc-under-test"


def docker_client() -> str | None:
    # Debian's client matches Debian's daemon; another `docker` may sit earlier on PATH.
    if os.path.exists("/usr/bin/docker"):
        return "/usr/bin/docker"
    return shutil.which("docker")


class Docker:
    def __init__(self, sandbox: Sandbox, sock: Path, rt: RuntimeBin, config_dir: Path) -> None:
        self.sandbox = sandbox
        self.sock = sock
        self.rt = rt
        self.env = engine_env({"DOCKER_CONFIG": str(config_dir), "DOCKER_HOST": f"unix://{sock}"})
        self.client = docker_client() or "docker"
        self.runtime_name = docker_runtime_name(rt)
        self.driver = sandbox.driver

    def scope(self, container_id: str) -> str:
        """The scope unit of a container (systemd driver)."""
        return f"docker-{container_id}.scope"

    def argv(self, *args: str) -> list[str]:
        return [self.client, "--host", f"unix://{self.sock}", *args]

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return run(self.argv(*args), timeout=timeout, env=self.env)

    def run_argv(self, *args: str, image: str = IMAGE, opts: tuple[str, ...] = ()) -> list[str]:
        return self.argv("run", "--runtime", self.runtime_name, "--network", "none", *opts, image, *args)

    def run(self, *args: str, image: str = IMAGE, opts: tuple[str, ...] = ("--rm",),
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return run(self.run_argv(*args, image=image, opts=opts), timeout=timeout, env=self.env)

    def status(self, name: str) -> str:
        return self("inspect", "--format", "{{.State.Status}}", name).stdout.decode().strip()


@pytest.fixture(scope="module")
def docker(engine_runtime: RuntimeBin, image_archive: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    yield from _docker(engine_runtime, image_archive, tmp_path_factory, "cgroupfs")


@pytest.fixture(scope="module")
def docker_systemd(engine_runtime: RuntimeBin, image_archive: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    skip_unless_systemd()
    yield from _docker(engine_runtime, image_archive, tmp_path_factory, "systemd")


@pytest.fixture(params=DRIVERS)
def dk(request: pytest.FixtureRequest) -> Iterator[Docker]:
    """dockerd with each cgroup driver; with systemd, the test must leave no scope."""
    yield from engine_per_driver(request, "docker")


def _docker(engine_runtime: RuntimeBin, image_archive: Path,
            tmp_path_factory: pytest.TempPathFactory, driver: str) -> Iterator[Docker]:
    require_root()
    skip_unless_binaries("dockerd", "containerd", "unshare", "nsenter")
    if docker_client() is None:
        pytest.skip("not installed: docker client")
    base = tmp_path_factory.mktemp(f"docker-{driver}")
    sock = base / "docker.sock"
    daemon_json = base / "daemon.json"
    runtimes = {docker_runtime_name(engine_runtime): {"path": str(engine_runtime.path)}}
    daemon_json.write_text(json.dumps({"runtimes": runtimes}, indent=2))
    (base / "client").mkdir()
    argv = ["dockerd", "--config-file", str(daemon_json),
            "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
            "--pidfile", str(base / "docker.pid"), "--host", f"unix://{sock}",
            "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            "--storage-driver", "vfs", "--userland-proxy=false"]
    sb_name = "dockerd"
    if driver == "systemd":
        argv += ["--exec-opt", "native.cgroupdriver=systemd", "--cgroup-parent", run_slice(sb_name)]
    else:
        argv += ["--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", f"/{RUN_TAG}-docker"]
    try:
        sb = Sandbox(base, sb_name, argv, driver=driver)
    except RuntimeError as e:
        pytest.skip(f"dockerd cannot start here: {e}")
    eng = Docker(sb, sock, engine_runtime, base / "client")
    try:
        if not wait_until(lambda: not sb.alive() or (sock.exists() and answers(lambda: eng("version", timeout=10))),
                          DAEMON_START_TIMEOUT) or not sb.alive():
            pytest.skip(f"dockerd did not answer on its socket: {sb.log_tail()}")
        load = eng("load", "--input", str(image_archive))
        assert load.returncode == 0, explain(load) + sb.log_tail()
        yield eng
    finally:
        if sb.alive():
            names = eng("ps", "--all", "--quiet").stdout.decode().split()
            if names:
                eng("rm", "--force", *names, timeout=60)
        finish_sandbox(sb)


def test_runtime_is_registered(docker: Docker) -> None:
    info = docker("info", "--format", "{{json .Runtimes}}")
    assert info.returncode == 0, explain(info)
    runtimes = json.loads(info.stdout)
    assert runtimes[docker.runtime_name]["path"] == str(docker.rt.path)


def _flavor(docker: Docker) -> S.Flavor:
    # dockerd's shim runs `<rt> ps` for `docker top` and passes "--log-format json";
    # docker records OOM kills in the container state.
    return S.Flavor(rm=("rm", "--force"), top=(), detached_calls={"exec", "ps", "kill", "delete"},
                    log_format_word="--log-format", records_oom=True, pty_env=docker.env)


def test_run_prints_output(dk: Docker) -> None:
    S.run_prints_output(dk, _flavor(dk))


def test_limits_seen_by_the_driver(dk: Docker) -> None:
    S.limits_seen_by_the_driver(dk, _flavor(dk))


def test_update_survives_daemon_reload(dk: Docker) -> None:
    S.update_survives_daemon_reload(dk, _flavor(dk))


def test_cpu_shares_and_cpuset(dk: Docker) -> None:
    S.cpu_shares_and_cpuset(dk, _flavor(dk))


def test_exit_code_propagates(docker: Docker) -> None:
    S.exit_code_propagates(docker)


def test_env_workdir_and_user(docker: Docker) -> None:
    S.env_workdir_and_user(docker)


def test_detached_exec_top_stop_remove(dk: Docker) -> None:
    S.detached_exec_top_stop_remove(dk, _flavor(dk))


def test_pause_unpause(dk: Docker, hostdir: Path) -> None:
    S.pause_unpause(dk, _flavor(dk), hostdir)


def test_memory_limit_oom_kills_hog(dk: Docker) -> None:
    S.memory_limit_oom_kills_hog(dk, _flavor(dk))


def test_restart_after_oom_kill(dk: Docker) -> None:
    S.restart_after_oom_kill(dk, _flavor(dk))


def test_read_only_rootfs(docker: Docker) -> None:
    S.read_only_rootfs(docker)


def test_bind_mount_written_inside_read_on_host(docker: Docker, hostdir: Path) -> None:
    S.bind_mount_written_inside_read_on_host(docker, hostdir)


def test_interactive_tty(docker: Docker) -> None:
    S.interactive_tty(docker, _flavor(docker))


def test_interactive_exec_tty(docker: Docker) -> None:
    S.interactive_exec_tty(docker, _flavor(docker))


def test_missing_executable(docker: Docker) -> None:
    S.missing_executable(docker)


def test_create_failure_shows_the_runtimes_log_message(docker: Docker, direct_rootfs: Path,
                                                        tmp_path: Path) -> None:
    """dockerd's containerd shim reports the msg of the last "error" line of
    <bundle>/log.json; compare with the runtime run by hand on the same failure."""
    direct, log = direct_create_failure(docker.rt, direct_rootfs, tmp_path, ["nosuchcommand"])
    assert direct.returncode != 0, explain(direct)
    errors = [e for e in map(json.loads, filter(str.strip, log.splitlines())) if e.get("level") == "error"]
    assert errors, f"no error line in the log file: {log!r}"
    msg = errors[-1]["msg"]
    assert '"nosuchcommand": executable file not found' in msg, msg
    proc = docker.run("nosuchcommand")
    assert proc.returncode == 127, explain(proc, docker.rt)
    assert f"OCI runtime create failed: {msg}: unknown" in proc.stderr.decode(), explain(proc, docker.rt)


def _apparmor_enabled() -> bool:
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False


# The label of the shell, then whether a mount (denied by docker-default even
# with CAP_SYS_ADMIN) succeeds.
_AA_PROBE = ("cat /proc/self/attr/current; echo; mkdir -p /aa-mnt; "
             "if mount -t tmpfs none /aa-mnt; then echo mounted; else echo denied; fi")


@pytest.mark.skipif(not _apparmor_enabled(), reason="AppArmor is not enabled on this host "
                    "(runs in the VM lane: tests/vm/lane.py)")
def test_apparmor_docker_default_confines_run_and_exec(docker: Docker) -> None:
    """dockerd sends apparmorProfile docker-default; the runtime applies it to run and exec."""
    rt = docker.rt
    mark = rt.mark()
    opts = ("--rm", "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined")
    confined = docker.run("sh", "-c", _AA_PROBE, opts=opts)
    out = confined.stdout.decode().split()
    assert confined.returncode == 0 and out[:2] == ["docker-default", "(enforce)"], explain(confined, rt, mark)
    assert out[-1] == "denied", explain(confined, rt, mark)
    free = docker.run("sh", "-c", _AA_PROBE, opts=(*opts, "--security-opt", "apparmor=unconfined"))
    out = free.stdout.decode().split()
    assert free.returncode == 0 and out == ["unconfined", "mounted"], explain(free, rt, mark)
    name = new_name("aa")
    start = docker.run("sleep", "1000", opts=("--detach", "--name", name))
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        ex = docker("exec", name, "cat", "/proc/self/attr/current")
        assert ex.returncode == 0, explain(ex, rt, mark)
        assert ex.stdout.decode().split() == ["docker-default", "(enforce)"], explain(ex, rt, mark)
    finally:
        docker("rm", "--force", name)
