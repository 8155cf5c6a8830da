"""containerd 1.6 (containerd-shim-runc-v2) driving the runtime under test through `ctr`.

ctr is a plain containerd client: the runtime binary is chosen per container
with `ctr run --runc-binary PATH` (it lands in the runc.v2 options as
BinaryName).  The CRI plugin's `runtimes.runc.options.BinaryName` in
config.toml is only read by CRI clients (kubelet, crictl); the fixture writes
it anyway and a test checks containerd parsed it.
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
    DAEMON_START_TIMEOUT,
    HOG,
    IMAGE,
    IMAGE_USER,
    IMAGE_USER_ID,
    RUN_TAG,
    PtySession,
    RuntimeBin,
    Sandbox,
    answers,
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

CONFIG = """\
version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = "{binary}"
"""


class Containerd:
    def __init__(self, sandbox: Sandbox, sock: Path, namespace: str, rt: RuntimeBin,
                 fifo_dir: Path, config: Path) -> None:
        self.sandbox = sandbox
        self.sock = sock
        self.ns = namespace
        self.rt = rt
        self.fifo_dir = fifo_dir
        self.config = config

    def ctr_argv(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.sock), "--namespace", self.ns, *args]

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return run(self.ctr_argv(*args), timeout=timeout, env=engine_env())

    def run_argv(self, name: str, *cmd: str, opts: tuple[str, ...] = (), image: str = IMAGE,
                 rm: bool = True) -> list[str]:
        return self.ctr_argv("run", *(["--rm"] if rm else []), "--runc-binary", str(self.rt.path),
                             "--fifo-dir", str(self.fifo_dir), *opts, image, name, *cmd)

    def run(self, *cmd: str, opts: tuple[str, ...] = (), image: str = IMAGE,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return run(self.run_argv(new_name(), *cmd, opts=opts, image=image), timeout=timeout,
                   env=engine_env())

    def task_status(self, name: str) -> tuple[int, str] | None:
        proc = self.ctr("task", "ls")
        for line in proc.stdout.decode().splitlines()[1:]:
            parts = line.split()
            if parts and parts[0] == name:
                return int(parts[1]), parts[2]
        return None


@pytest.fixture(scope="module")
def containerd(engine_runtime: RuntimeBin, image_archive: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    require_root()
    skip_unless_binaries("containerd", "ctr", "containerd-shim-runc-v2", "unshare", "nsenter")
    base = tmp_path_factory.mktemp("containerd")
    sock = base / "containerd.sock"
    config = base / "config.toml"
    config.write_text(CONFIG.format(root=base / "root", state=base / "state", sock=sock,
                                    binary=engine_runtime.path))
    fifo_dir = base / "fifo"
    fifo_dir.mkdir()
    try:
        sb = Sandbox(base, "containerd", ["containerd", "--config", str(config)])
    except RuntimeError as e:
        pytest.skip(f"containerd cannot start here: {e}")
    cd = Containerd(sb, sock, RUN_TAG, engine_runtime, fifo_dir, config)
    try:
        ok = wait_until(lambda: not sb.alive() or (sock.exists() and answers(lambda: cd.ctr("version", timeout=10))),
                        DAEMON_START_TIMEOUT)
        if not ok or not sb.alive():
            log = sb.log_tail()
            pytest.skip(f"containerd did not answer on its socket: {log}")
        imp = cd.ctr("images", "import", str(image_archive))
        assert imp.returncode == 0, explain(imp) + sb.log_tail()
        yield cd
    finally:
        finish_sandbox(sb)


# ----------------------------------------------------------------------------- tests

def test_config_binaryname_is_parsed(containerd: Containerd) -> None:
    """containerd reads the CRI runtime options (what kubelet/crictl would use)."""
    dump = run(["containerd", "--config", str(containerd.config), "config", "dump"])
    assert dump.returncode == 0, explain(dump)
    assert f'BinaryName = "{containerd.rt.path}"' in dump.stdout.decode()


def test_run_prints_output(containerd: Containerd) -> None:
    mark = containerd.rt.mark()
    proc = containerd.run("echo", "hello from the container")
    assert proc.returncode == 0, explain(proc, containerd.rt, mark)
    assert proc.stdout == b"hello from the container\n"
    calls = containerd.rt.calls_since(mark)
    # The shim always passes these global flags.
    assert "--log-format json" in calls and " create " in calls, calls


def test_exit_code_propagates(containerd: Containerd) -> None:
    proc = containerd.run("sh", "-c", "exit 7")
    assert proc.returncode == 7, explain(proc, containerd.rt)


def test_env_workdir_and_user(containerd: Containerd) -> None:
    script = 'echo "$FOO|$IMGVAR|$PWD|$(id -u):$(id -g)"'
    proc = containerd.run("sh", "-c", script, opts=("--env", "FOO=bar"), image=IMAGE_USER)
    assert proc.returncode == 0, explain(proc, containerd.rt)
    assert proc.stdout.decode() == f"bar|from-image|/tmp|{IMAGE_USER_ID}\n"
    proc = containerd.run("sh", "-c", 'echo "$PWD|$(id -u)"', opts=("--cwd", "/etc"))
    assert proc.returncode == 0, explain(proc, containerd.rt)
    assert proc.stdout == b"/etc|0\n"


def test_detached_exec_ps_stop_remove(containerd: Containerd) -> None:
    rt = containerd.rt
    mark = rt.mark()
    name = new_name("det")
    script = "trap 'exit 42' TERM; while true; do sleep 0.1; done"
    start = run(containerd.run_argv(name, "sh", "-c", script, opts=("--detach",), rm=False),
                env=engine_env())
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        st = wait_until(lambda: (s := containerd.task_status(name)) and s[1] == "RUNNING" and s, 20)
        assert st, explain(containerd.ctr("task", "ls"), rt, mark)
        init_pid = st[0]

        ex = containerd.ctr("task", "exec", "--exec-id", "e1", "--fifo-dir", str(containerd.fifo_dir),
                            name, "sh", "-c", "echo from-exec $(id -u)")
        assert ex.returncode == 0, explain(ex, rt, mark)
        assert ex.stdout == b"from-exec 0\n"
        ex = containerd.ctr("task", "exec", "--exec-id", "e2", "--fifo-dir", str(containerd.fifo_dir),
                            "--user", "4321", name, "sh", "-c", "id -u; exit 5")
        assert ex.returncode == 5 and ex.stdout == b"4321\n", explain(ex, rt, mark)

        bg = subprocess.Popen(containerd.ctr_argv("task", "exec", "--exec-id", "e3", "--fifo-dir",
                                                  str(containerd.fifo_dir), name, "sleep", "300"),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            def pids() -> list[int]:
                out = containerd.ctr("task", "ps", name).stdout.decode().splitlines()[1:]
                return [int(line.split()[0]) for line in out if line.strip()]
            # ctr lists pids as seen in containerd's (the sandbox's) pid namespace.
            def cmdlines() -> dict[int, bytes]:
                return {p: run(containerd.sandbox.nsenter_argv(["cat", f"/proc/{p}/cmdline"])).stdout
                        for p in pids()}
            seen = wait_until(lambda: b"sleep\x00300\x00" in (c := cmdlines()).values() and c, 20)
            assert seen and init_pid in seen, explain(containerd.ctr("task", "ps", name), rt, mark)
        finally:
            bg.kill()
            bg.wait()

        kill = containerd.ctr("task", "kill", name)          # SIGTERM by default
        assert kill.returncode == 0, explain(kill, rt, mark)
        assert wait_until(lambda: (s := containerd.task_status(name)) and s[1] == "STOPPED", 20), \
            explain(containerd.ctr("task", "ls"), rt, mark)
        rm = containerd.ctr("task", "delete", name)
        # SIGTERM reached PID 1: its trap's exit status is what containerd reaped.
        assert b"exit with non-zero exit code 42" in rm.stderr, explain(rm, rt, mark)
    finally:
        containerd.ctr("task", "delete", "--force", name)
        rmc = containerd.ctr("container", "rm", name)
    assert rmc.returncode == 0, explain(rmc, rt, mark)
    assert name not in containerd.ctr("container", "ls", "-q").stdout.decode().split()
    assert "--root " in rt.calls_since(mark)


def _counter(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def test_pause_resume(containerd: Containerd, hostdir: Path) -> None:
    rt = containerd.rt
    mark = rt.mark()
    name = new_name("pause")
    counter = hostdir / "n"
    script = "i=0; while true; do i=$((i+1)); echo $i > /data/n; sleep 0.05; done"
    start = run(containerd.run_argv(name, "sh", "-c", script, rm=False,
                                    opts=("--detach", "--mount",
                                          f"type=bind,src={hostdir},dst=/data,options=rbind:rw")),
                env=engine_env())
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        assert wait_until(lambda: _counter(counter) > 2, 20), explain(start, rt, mark)
        p = containerd.ctr("task", "pause", name)
        assert p.returncode == 0, explain(p, rt, mark)
        assert containerd.task_status(name)[1] == "PAUSED"   # type: ignore[index]
        before = _counter(counter)
        time.sleep(0.6)
        assert _counter(counter) == before, "counter moved while paused"
        r = containerd.ctr("task", "resume", name)
        assert r.returncode == 0, explain(r, rt, mark)
        assert wait_until(lambda: _counter(counter) > before + 2, 10), "counter did not move after resume"
        assert containerd.task_status(name)[1] == "RUNNING"  # type: ignore[index]
    finally:
        containerd.ctr("task", "kill", "--signal", "SIGKILL", name)
        wait_until(lambda: (s := containerd.task_status(name)) is None or s[1] == "STOPPED", 20)
        containerd.ctr("task", "delete", "--force", name)
        containerd.ctr("container", "rm", name)


def test_memory_limit_oom_kills_hog(containerd: Containerd) -> None:
    proc = containerd.run("sh", "-c", HOG, opts=("--memory-limit", str(16 * 1024 * 1024)))
    assert b"survived" not in proc.stdout, explain(proc, containerd.rt)
    assert proc.returncode == 137, explain(proc, containerd.rt)


def test_read_only_rootfs(containerd: Containerd) -> None:
    proc = containerd.run("sh", "-c", "touch /newfile; echo rc=$?", opts=("--read-only",))
    assert proc.stdout == b"rc=1\n", explain(proc, containerd.rt)
    assert b"Read-only file system" in proc.stderr


def test_bind_mount_written_inside_read_on_host(containerd: Containerd, hostdir: Path) -> None:
    proc = containerd.run("sh", "-c", "echo written-inside > /data/out",
                          opts=("--mount", f"type=bind,src={hostdir},dst=/data,options=rbind:rw"))
    assert proc.returncode == 0, explain(proc, containerd.rt)
    assert (hostdir / "out").read_text() == "written-inside\n"


def test_interactive_tty(containerd: Containerd) -> None:
    mark = containerd.rt.mark()
    sess = PtySession(containerd.run_argv(new_name("tty"), "sh", opts=("--tty",)), env=engine_env())
    sess.converse("tty", b"/dev/", 3, lambda: containerd.rt.calls_since(mark))
    assert "--console-socket" in containerd.rt.calls_since(mark)


def test_interactive_exec_tty(containerd: Containerd) -> None:
    rt = containerd.rt
    mark = rt.mark()
    name = new_name("xtty")
    start = run(containerd.run_argv(name, "sleep", "300", opts=("--detach",), rm=False), env=engine_env())
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        assert wait_until(lambda: (s := containerd.task_status(name)) and s[1] == "RUNNING", 20)
        sess = PtySession(containerd.ctr_argv("task", "exec", "--tty", "--exec-id", "t1", "--fifo-dir",
                                              str(containerd.fifo_dir), name, "sh"), env=engine_env())
        sess.converse("exec", b"/dev/pts/", 4, lambda: rt.calls_since(mark))
    finally:
        containerd.ctr("task", "kill", "--signal", "SIGKILL", name)
        wait_until(lambda: (s := containerd.task_status(name)) is None or s[1] == "STOPPED", 20)
        containerd.ctr("task", "delete", "--force", name)
        containerd.ctr("container", "rm", name)
    rt.assert_exec_got_console_socket(mark)


def test_missing_executable(containerd: Containerd) -> None:
    proc = containerd.run("/no/such/binary")
    err = proc.stderr.decode()
    assert proc.returncode == 1, explain(proc, containerd.rt)
    assert "OCI runtime create failed" in err and "no such file or directory" in err, err
    proc = containerd.run("nosuchcommand")
    err = proc.stderr.decode()
    assert proc.returncode == 1, explain(proc, containerd.rt)
    assert 'exec: "nosuchcommand": executable file not found in $PATH' in err, err


def test_create_failure_shows_the_runtimes_log_message(containerd: Containerd, direct_rootfs: Path,
                                                        tmp_path: Path) -> None:
    """The shim reports the msg of the last "error" line of <bundle>/log.json.

    The bundle is gone once ctr returns, so the runtime is first run by hand the
    shim's way (--log FILE --log-format json create) on the same failure, and its
    message must then be the one containerd shows, in the shim's wrapping.
    """
    direct, log = direct_create_failure(containerd.rt, direct_rootfs, tmp_path, ["/no/such/binary"])
    assert direct.returncode != 0, explain(direct)
    errors = [json.loads(line) for line in log.splitlines() if line.strip()]
    errors = [e for e in errors if e.get("level") == "error"]
    assert errors, f"no error line in the log file: {log!r}"
    msg = errors[-1]["msg"]
    assert "/no/such/binary" in msg and "no such file or directory" in msg, msg

    mark = containerd.rt.mark()
    proc = containerd.run("/no/such/binary")
    assert proc.returncode == 1, explain(proc, containerd.rt, mark)
    # "unknown" closes the shim's message only when it came from log.json.
    assert f"OCI runtime create failed: {msg}: unknown" in proc.stderr.decode(), \
        explain(proc, containerd.rt, mark)


def test_features_output(engine_runtime: RuntimeBin) -> None:
    """containerd 1.6's shim never calls `features` (the shim's Info() that does is
    newer); check the output a newer containerd would parse instead."""
    proc = run([str(engine_runtime.path), "features"])
    assert proc.returncode == 0, explain(proc)
    feats = json.loads(proc.stdout)
    assert feats["ociVersionMin"].startswith("1.")
    assert feats["ociVersionMax"] >= feats["ociVersionMin"]
    assert isinstance(feats.get("mountOptions", []), list)


def test_no_stray_tasks(containerd: Containerd) -> None:
    """Runs last: every test removed its task."""
    assert containerd.ctr("task", "ls", "-q").stdout.strip() == b""
    assert shutil.which("ctr") and os.path.exists(containerd.sock)
