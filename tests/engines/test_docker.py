"""dockerd 20.10 (with the containerd it starts itself) driving the runtime under test.

The runtime is registered the documented way, a daemon.json "runtimes" entry,
and chosen per container with `docker run --runtime NAME`.  dockerd hands it
to containerd as runc.v2 options (BinaryName), so the runtime sees the same
command lines as under containerd.  The docker client runs on the host and
talks to the sandboxed daemon through its unix socket.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines.conftest import (
    HOG,
    IMAGE,
    IMAGE_USER,
    IMAGE_USER_ID,
    RUN_TAG,
    PtySession,
    RuntimeBin,
    Sandbox,
    direct_create_failure,
    engine_env,
    explain,
    finish_sandbox,
    new_name,
    require_root,
    run,
    skip_unless_binaries,
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
    require_root()
    skip_unless_binaries("dockerd", "containerd", "unshare", "nsenter")
    if docker_client() is None:
        pytest.skip("not installed: docker client")
    base = tmp_path_factory.mktemp("docker")
    sock = base / "docker.sock"
    daemon_json = base / "daemon.json"
    runtimes = {docker_runtime_name(engine_runtime): {"path": str(engine_runtime.path)}}
    daemon_json.write_text(json.dumps({"runtimes": runtimes}, indent=2))
    (base / "client").mkdir()
    argv = ["dockerd", "--config-file", str(daemon_json),
            "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
            "--pidfile", str(base / "docker.pid"), "--host", f"unix://{sock}",
            "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            "--storage-driver", "vfs", "--exec-opt", "native.cgroupdriver=cgroupfs",
            "--cgroup-parent", f"/{RUN_TAG}-docker", "--userland-proxy=false"]
    try:
        sb = Sandbox(base, "dockerd", argv)
    except RuntimeError as e:
        pytest.skip(f"dockerd cannot start here: {e}")
    dk = Docker(sb, sock, engine_runtime, base / "client")
    try:
        if not wait_until(lambda: not sb.alive() or (sock.exists() and dk("version", timeout=10).returncode == 0),
                          60) or not sb.alive():
            pytest.skip(f"dockerd did not answer on its socket: {sb.log_tail()}")
        load = dk("load", "--input", str(image_archive))
        assert load.returncode == 0, explain(load) + sb.log_tail()
        yield dk
    finally:
        if sb.alive():
            names = dk("ps", "--all", "--quiet").stdout.decode().split()
            if names:
                dk("rm", "--force", *names, timeout=60)
        finish_sandbox(sb)


def test_runtime_is_registered(docker: Docker) -> None:
    info = docker("info", "--format", "{{json .Runtimes}}")
    assert info.returncode == 0, explain(info)
    runtimes = json.loads(info.stdout)
    assert runtimes[docker.runtime_name]["path"] == str(docker.rt.path)


def test_run_prints_output(docker: Docker) -> None:
    mark = docker.rt.mark()
    proc = docker.run("echo", "hello from the container")
    assert proc.returncode == 0, explain(proc, docker.rt, mark)
    assert proc.stdout == b"hello from the container\n"
    words = docker.rt.calls_since(mark).split()
    assert "create" in words and "--log-format" in words, docker.rt.calls_since(mark)


def test_exit_code_propagates(docker: Docker) -> None:
    proc = docker.run("sh", "-c", "exit 7")
    assert proc.returncode == 7, explain(proc, docker.rt)


def test_env_workdir_and_user(docker: Docker) -> None:
    script = 'echo "$FOO|$IMGVAR|$PWD|$(id -u):$(id -g)"'
    proc = docker.run("sh", "-c", script, image=IMAGE_USER, opts=("--rm", "--env", "FOO=bar"))
    assert proc.returncode == 0, explain(proc, docker.rt)
    assert proc.stdout.decode() == f"bar|from-image|/tmp|{IMAGE_USER_ID}\n"
    proc = docker.run("sh", "-c", script, opts=("--rm", "-e", "FOO=baz", "--workdir", "/etc",
                                                "--user", "4321:99"))
    assert proc.returncode == 0, explain(proc, docker.rt)
    assert proc.stdout == b"baz||/etc|4321:99\n"


def test_detached_exec_top_stop_remove(docker: Docker) -> None:
    rt = docker.rt
    mark = rt.mark()
    name = new_name("det")
    script = "trap 'exit 42' TERM; while true; do sleep 0.1; done"
    start = docker.run("sh", "-c", script, opts=("--detach", "--name", name))
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        assert wait_until(lambda: docker.status(name) == "running", 20), explain(start, rt, mark)
        ex = docker("exec", name, "sh", "-c", "echo from-exec $(id -u)")
        assert ex.returncode == 0 and ex.stdout == b"from-exec 0\n", explain(ex, rt, mark)
        ex = docker("exec", "--user", "4321", name, "sh", "-c", "id -u; exit 5")
        assert ex.returncode == 5 and ex.stdout == b"4321\n", explain(ex, rt, mark)
        top = docker("top", name)                          # the shim runs `<rt> ps --format json`
        assert top.returncode == 0, explain(top, rt, mark)
        assert "trap" in top.stdout.decode(), top.stdout
        stop = docker("stop", "--time", "20", name)        # SIGTERM, then wait
        assert stop.returncode == 0, explain(stop, rt, mark)
        code = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == b"42", explain(stop, rt, mark)       # the trap ran in PID 1
    finally:
        rm = docker("rm", "--force", name)
    assert rm.returncode == 0, explain(rm, rt, mark)
    assert name not in docker("ps", "--all", "--format", "{{.Names}}").stdout.decode().split()
    assert {"exec", "ps", "kill", "delete"} <= set(rt.calls_since(mark).split())


def _counter(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def test_pause_unpause(docker: Docker, hostdir: Path) -> None:
    rt = docker.rt
    mark = rt.mark()
    name = new_name("pause")
    counter = hostdir / "n"
    script = "i=0; while true; do i=$((i+1)); echo $i > /data/n; sleep 0.05; done"
    start = docker.run("sh", "-c", script,
                       opts=("--detach", "--name", name, "--volume", f"{hostdir}:/data"))
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        assert wait_until(lambda: _counter(counter) > 2, 20), explain(start, rt, mark)
        p = docker("pause", name)
        assert p.returncode == 0, explain(p, rt, mark)
        assert docker.status(name) == "paused"
        before = _counter(counter)
        time.sleep(0.6)
        assert _counter(counter) == before, "counter moved while paused"
        u = docker("unpause", name)
        assert u.returncode == 0, explain(u, rt, mark)
        assert wait_until(lambda: _counter(counter) > before + 2, 10), "no progress after unpause"
        assert docker.status(name) == "running"
    finally:
        docker("rm", "--force", name)


def test_memory_limit_oom_kills_hog(docker: Docker) -> None:
    name = new_name("oom")
    proc = docker.run("sh", "-c", HOG, opts=("--name", name, "--memory", "16m"))
    try:
        assert b"survived" not in proc.stdout, explain(proc, docker.rt)
        assert proc.returncode == 137, explain(proc, docker.rt)
        assert docker("inspect", "--format", "{{.State.OOMKilled}}", name).stdout.strip() == b"true"
    finally:
        docker("rm", "--force", name)


def test_read_only_rootfs(docker: Docker) -> None:
    proc = docker.run("sh", "-c", "touch /newfile; echo rc=$?", opts=("--rm", "--read-only"))
    assert proc.stdout == b"rc=1\n", explain(proc, docker.rt)
    assert b"Read-only file system" in proc.stderr


def test_bind_mount_written_inside_read_on_host(docker: Docker, hostdir: Path) -> None:
    proc = docker.run("sh", "-c", "echo written-inside > /data/out",
                      opts=("--rm", "--volume", f"{hostdir}:/data"))
    assert proc.returncode == 0, explain(proc, docker.rt)
    assert (hostdir / "out").read_text() == "written-inside\n"


def test_interactive_tty(docker: Docker) -> None:
    mark = docker.rt.mark()
    sess = PtySession(docker.run_argv("sh", opts=("--rm", "--interactive", "--tty")), env=docker.env)
    try:
        sess.send(b"echo tty-$((6*7)); tty\n")
        assert sess.read_until(b"tty-42", 30), sess.output + docker.rt.calls_since(mark).encode()
        assert sess.read_until(b"/dev/pts/", 10), sess.output
        sess.send(b"exit 3\n")
        assert sess.wait(30) == 3, sess.output
    finally:
        sess.close()
    assert "--console-socket" in docker.rt.calls_since(mark)


def test_interactive_exec_tty(docker: Docker) -> None:
    rt = docker.rt
    mark = rt.mark()
    name = new_name("xtty")
    start = docker.run("sleep", "300", opts=("--detach", "--name", name))
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        assert wait_until(lambda: docker.status(name) == "running", 20), explain(start, rt, mark)
        sess = PtySession(docker.argv("exec", "--interactive", "--tty", name, "sh"), env=docker.env)
        try:
            sess.send(b"echo exec-$((6*7)); tty\n")
            assert sess.read_until(b"exec-42", 30), sess.output + rt.calls_since(mark).encode()
            assert sess.read_until(b"/dev/pts/", 10), sess.output
            sess.send(b"exit 4\n")
            assert sess.wait(30) == 4, sess.output
        finally:
            sess.close()
    finally:
        docker("rm", "--force", name)
    execs = [line for line in rt.calls_since(mark).splitlines() if " exec " in f" {line} "]
    assert execs and "--console-socket" in execs[0], rt.calls_since(mark)


def test_missing_executable(docker: Docker) -> None:
    proc = docker.run("nosuchcommand")
    err = proc.stderr.decode()
    assert proc.returncode == 127, explain(proc, docker.rt)
    assert 'exec: "nosuchcommand": executable file not found in $PATH' in err, err
    proc = docker.run("/no/such/binary")
    err = proc.stderr.decode()
    assert proc.returncode == 127, explain(proc, docker.rt)
    assert "no such file or directory" in err, err


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
