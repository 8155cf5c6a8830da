"""podman 4 (conmon) driving the runtime under test.

podman is daemonless, so every podman command runs inside the sandbox's
namespaces (nsenter); conmon and the containers stay there.  The runtime is
declared the way docs/engines.md tells users to: a containers.conf that names
it in [engine.runtimes], makes it the default and lists it in
runtime_supports_json (so podman passes `--log ... --log-format=json`).
"""

from __future__ import annotations

import json
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
    engine_env,
    explain,
    finish_sandbox,
    new_name,
    require_root,
    run,
    skip_unless_binaries,
    wait_until,
)

CONTAINERS_CONF = """\
[containers]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
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
        self.cgroup_parent = f"/{RUN_TAG}-podman"

    def argv(self, *args: str) -> list[str]:
        return self.sandbox.nsenter_argv([
            "env", f"CONTAINERS_CONF={self.conf}",
            "podman", "--root", str(self.base / "storage"), "--runroot", str(self.base / "runroot"),
            "--tmpdir", str(self.base / "libpod"), "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args])

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
    require_root()
    skip_unless_binaries("podman", "conmon", "unshare", "nsenter")
    base = tmp_path_factory.mktemp("podman")
    conf = base / "containers.conf"
    conf.write_text(CONTAINERS_CONF.format(name=engine_runtime.name, path=engine_runtime.path))
    try:
        sb = Sandbox(base, "podman")
    except RuntimeError as e:
        pytest.skip(f"cannot make a sandbox for podman: {e}")
    pm = Podman(sb, base, engine_runtime, conf)
    try:
        info = pm("info", "--format", "{{.Host.OCIRuntime.Path}}")
        if info.returncode != 0:
            pytest.skip(f"podman cannot run here: {explain(info)}")
        load = pm("load", "--input", str(image_archive))
        assert load.returncode == 0, explain(load)
        yield pm
    finally:
        if sb.alive():
            pm("rm", "--all", "--force", "--time", "0", timeout=60)
        finish_sandbox(sb)


def test_runtime_is_the_one_configured(podman: Podman) -> None:
    info = podman("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}")
    assert info.stdout.decode().split() == [podman.rt.name, str(podman.rt.path)], explain(info)


def test_run_prints_output(podman: Podman) -> None:
    mark = podman.rt.mark()
    proc = podman.run("echo", "hello from the container")
    assert proc.returncode == 0, explain(proc, podman.rt, mark)
    assert proc.stdout == b"hello from the container\n"
    calls = podman.rt.calls_since(mark)
    assert "create" in calls.split() and "--log-format=json" in calls.split(), calls


def test_exit_code_propagates(podman: Podman) -> None:
    proc = podman.run("sh", "-c", "exit 7")
    assert proc.returncode == 7, explain(proc, podman.rt)


def test_env_workdir_and_user(podman: Podman) -> None:
    script = 'echo "$FOO|$IMGVAR|$PWD|$(id -u):$(id -g)"'
    proc = podman.run("sh", "-c", script, image=IMAGE_USER, opts=("--rm", "--env", "FOO=bar"))
    assert proc.returncode == 0, explain(proc, podman.rt)
    assert proc.stdout.decode() == f"bar|from-image|/tmp|{IMAGE_USER_ID}\n"
    proc = podman.run("sh", "-c", script, opts=("--rm", "-e", "FOO=baz", "--workdir", "/etc",
                                                "--user", "4321:99"))
    assert proc.returncode == 0, explain(proc, podman.rt)
    assert proc.stdout == b"baz||/etc|4321:99\n"


def test_detached_exec_top_stop_remove(podman: Podman) -> None:
    rt = podman.rt
    mark = rt.mark()
    name = new_name("det")
    script = "trap 'exit 42' TERM; while true; do sleep 0.1; done"
    start = podman.run("sh", "-c", script, opts=("--detach", "--name", name))
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        assert wait_until(lambda: podman.status(name) == "running", 20), explain(start, rt, mark)
        ex = podman("exec", name, "sh", "-c", "echo from-exec $(id -u)")
        assert ex.returncode == 0 and ex.stdout == b"from-exec 0\n", explain(ex, rt, mark)
        ex = podman("exec", "--user", "4321", name, "sh", "-c", "id -u; exit 5")
        assert ex.returncode == 5 and ex.stdout == b"4321\n", explain(ex, rt, mark)
        top = podman("top", name, "pid", "args")
        assert top.returncode == 0, explain(top, rt, mark)
        assert "trap" in top.stdout.decode(), top.stdout
        stop = podman("stop", "--time", "20", name)                  # SIGTERM, then wait
        assert stop.returncode == 0, explain(stop, rt, mark)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == b"42", explain(stop, rt, mark)                 # the trap ran in PID 1
    finally:
        rm = podman("rm", "--force", "--time", "0", name)
    assert rm.returncode == 0, explain(rm, rt, mark)
    assert name not in podman("ps", "--all", "--format", "{{.Names}}").stdout.decode().split()
    calls = rt.calls_since(mark)
    assert {"exec", "kill", "delete"} <= set(calls.split()), calls


def _counter(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def test_pause_unpause(podman: Podman, hostdir: Path) -> None:
    rt = podman.rt
    mark = rt.mark()
    name = new_name("pause")
    counter = hostdir / "n"
    script = "i=0; while true; do i=$((i+1)); echo $i > /data/n; sleep 0.05; done"
    start = podman.run("sh", "-c", script,
                       opts=("--detach", "--name", name, "--volume", f"{hostdir}:/data"))
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        assert wait_until(lambda: _counter(counter) > 2, 20), explain(start, rt, mark)
        p = podman("pause", name)
        assert p.returncode == 0, explain(p, rt, mark)
        assert podman.status(name) == "paused"
        before = _counter(counter)
        time.sleep(0.6)
        assert _counter(counter) == before, "counter moved while paused"
        u = podman("unpause", name)
        assert u.returncode == 0, explain(u, rt, mark)
        assert wait_until(lambda: _counter(counter) > before + 2, 10), "no progress after unpause"
        assert podman.status(name) == "running"
    finally:
        podman("rm", "--force", "--time", "0", name)


def test_memory_limit_oom_kills_hog(podman: Podman) -> None:
    proc = podman.run("sh", "-c", HOG, opts=("--rm", "--memory", "16m"))
    assert b"survived" not in proc.stdout, explain(proc, podman.rt)
    assert proc.returncode == 137, explain(proc, podman.rt)


def test_read_only_rootfs(podman: Podman) -> None:
    proc = podman.run("sh", "-c", "touch /newfile; echo rc=$?", opts=("--rm", "--read-only"))
    assert proc.stdout == b"rc=1\n", explain(proc, podman.rt)
    assert b"Read-only file system" in proc.stderr


def test_bind_mount_written_inside_read_on_host(podman: Podman, hostdir: Path) -> None:
    proc = podman.run("sh", "-c", "echo written-inside > /data/out",
                      opts=("--rm", "--volume", f"{hostdir}:/data"))
    assert proc.returncode == 0, explain(proc, podman.rt)
    assert (hostdir / "out").read_text() == "written-inside\n"


def test_interactive_tty(podman: Podman) -> None:
    mark = podman.rt.mark()
    sess = PtySession(podman.run_argv("sh", opts=("--rm", "--interactive", "--tty")),
                      env=engine_env())
    try:
        sess.send(b"echo tty-$((6*7)); tty\n")
        assert sess.read_until(b"tty-42", 30), sess.output + podman.rt.calls_since(mark).encode()
        assert sess.read_until(b"/dev/pts/", 10), sess.output
        sess.send(b"exit 3\n")
        assert sess.wait(30) == 3, sess.output
    finally:
        sess.close()
    assert "--console-socket" in podman.rt.calls_since(mark)


def test_interactive_exec_tty(podman: Podman) -> None:
    rt = podman.rt
    mark = rt.mark()
    name = new_name("xtty")
    start = podman.run("sleep", "300", opts=("--detach", "--name", name))
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        assert wait_until(lambda: podman.status(name) == "running", 20), explain(start, rt, mark)
        sess = PtySession(podman.argv("exec", "--interactive", "--tty", name, "sh"), env=engine_env())
        try:
            sess.send(b"echo exec-$((6*7)); tty\n")
            assert sess.read_until(b"exec-42", 30), sess.output + rt.calls_since(mark).encode()
            assert sess.read_until(b"/dev/pts/", 10), sess.output
            sess.send(b"exit 4\n")
            assert sess.wait(30) == 4, sess.output
        finally:
            sess.close()
    finally:
        podman("rm", "--force", "--time", "0", name)
    execs = [line for line in rt.calls_since(mark).splitlines() if " exec " in f" {line} "]
    assert execs and "--console-socket" in execs[0], rt.calls_since(mark)


def test_missing_executable(podman: Podman) -> None:
    proc = podman.run("nosuchcommand")
    err = proc.stderr.decode()
    assert proc.returncode == 127, explain(proc, podman.rt)
    assert 'exec: "nosuchcommand": executable file not found in $PATH' in err, err
    proc = podman.run("/no/such/binary")
    err = proc.stderr.decode()
    assert proc.returncode == 127, explain(proc, podman.rt)
    assert "no such file or directory" in err, err


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
