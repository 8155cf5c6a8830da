"""containerd 1.6 (containerd-shim-runc-v2) driving the runtime under test through `ctr`.

ctr is a plain containerd client: the runtime binary is chosen per container
with `ctr run --runc-binary PATH` (it lands in the runc.v2 options as
BinaryName).  The CRI plugin's `runtimes.runc.options.BinaryName` in
config.toml is only read by CRI clients (kubelet, crictl); the fixture writes
it anyway and a test checks containerd parsed it.

The scenarios about cgroups run with both cgroup drivers: ``cgroupfs`` and
``systemd`` (the runc.v2 option ``SystemdCgroup = true``, which ctr sets with
``--runc-systemd-cgroup`` and a ``--cgroup slice:ctr:<name>`` in the run's
slice; see tests/engines/conftest.py for that sandbox).  The systemd variant
is skipped where systemd is not PID 1.
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
    DRIVERS,
    HOG,
    IMAGE,
    IMAGE_USER,
    IMAGE_USER_ID,
    RUN_TAG,
    PtySession,
    RuntimeBin,
    Sandbox,
    answers,
    cgroup_pids,
    check_limits,
    direct_create_failure,
    engine_env,
    engine_per_driver,
    explain,
    finish_sandbox,
    new_name,
    require_root,
    run,
    scope_units,
    skip_unless_binaries,
    skip_unless_systemd,
    unit_cgroup,
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
  SystemdCgroup = {systemd}
"""


class Containerd:
    def __init__(self, sandbox: Sandbox, sock: Path, namespace: str, rt: RuntimeBin,
                 fifo_dir: Path, config: Path) -> None:
        self.sandbox = sandbox
        self.driver = sandbox.driver
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
        driver: tuple[str, ...] = ()
        if self.driver == "systemd":
            driver = ("--runc-systemd-cgroup", "--cgroup", f"{self.sandbox.slice}:ctr:{name}")
        return self.ctr_argv("run", *(["--rm"] if rm else []), "--runc-binary", str(self.rt.path),
                             "--fifo-dir", str(self.fifo_dir), *driver, *opts, image, name, *cmd)

    def scope(self, name: str) -> str:
        """The scope unit of container ``name`` (systemd driver)."""
        return f"ctr-{name}.scope"

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
    yield from _containerd(engine_runtime, image_archive, tmp_path_factory, "cgroupfs")


@pytest.fixture(scope="module")
def containerd_systemd(engine_runtime: RuntimeBin, image_archive: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    skip_unless_systemd()
    yield from _containerd(engine_runtime, image_archive, tmp_path_factory, "systemd")


@pytest.fixture(params=DRIVERS)
def cd(request: pytest.FixtureRequest) -> Iterator[Containerd]:
    """containerd with each cgroup driver; with systemd, the test must leave no scope."""
    yield from engine_per_driver(request, "containerd")


def _containerd(engine_runtime: RuntimeBin, image_archive: Path,
                tmp_path_factory: pytest.TempPathFactory, driver: str) -> Iterator[Containerd]:
    require_root()
    skip_unless_binaries("containerd", "ctr", "containerd-shim-runc-v2", "unshare", "nsenter")
    base = tmp_path_factory.mktemp(f"containerd-{driver}")
    sock = base / "containerd.sock"
    config = base / "config.toml"
    config.write_text(CONFIG.format(root=base / "root", state=base / "state", sock=sock,
                                    binary=engine_runtime.path,
                                    systemd=str(driver == "systemd").lower()))
    fifo_dir = base / "fifo"
    fifo_dir.mkdir()
    try:
        sb = Sandbox(base, "containerd", ["containerd", "--config", str(config)], driver=driver)
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

def test_config_binaryname_is_parsed(cd: Containerd) -> None:
    """containerd reads the CRI runtime options (what kubelet/crictl would use)."""
    dump = run(["containerd", "--config", str(cd.config), "config", "dump"])
    assert dump.returncode == 0, explain(dump)
    assert f'BinaryName = "{cd.rt.path}"' in dump.stdout.decode()
    systemd = "true" if cd.driver == "systemd" else "false"
    assert f"SystemdCgroup = {systemd}" in dump.stdout.decode()


def test_run_prints_output(cd: Containerd) -> None:
    mark = cd.rt.mark()
    proc = cd.run("echo", "hello from the container")
    assert proc.returncode == 0, explain(proc, cd.rt, mark)
    assert proc.stdout == b"hello from the container\n"
    calls = cd.rt.calls_since(mark)
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


def test_detached_exec_ps_stop_remove(cd: Containerd) -> None:
    rt = cd.rt
    mark = rt.mark()
    name = new_name("det")
    script = "trap 'exit 42' TERM; while true; do sleep 0.1; done"
    start = run(cd.run_argv(name, "sh", "-c", script, opts=("--detach",), rm=False),
                env=engine_env())
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        st = wait_until(lambda: (s := cd.task_status(name)) and s[1] == "RUNNING" and s, 20)
        assert st, explain(cd.ctr("task", "ls"), rt, mark)
        init_pid = st[0]

        ex = cd.ctr("task", "exec", "--exec-id", "e1", "--fifo-dir", str(cd.fifo_dir),
                            name, "sh", "-c", "echo from-exec $(id -u)")
        assert ex.returncode == 0, explain(ex, rt, mark)
        assert ex.stdout == b"from-exec 0\n", explain(ex, rt, mark)
        ex = cd.ctr("task", "exec", "--exec-id", "e2", "--fifo-dir", str(cd.fifo_dir),
                            "--user", "4321", name, "sh", "-c", "id -u; exit 5")
        assert ex.returncode == 5 and ex.stdout == b"4321\n", explain(ex, rt, mark)

        bg = subprocess.Popen(cd.ctr_argv("task", "exec", "--exec-id", "e3", "--fifo-dir",
                                                  str(cd.fifo_dir), name, "sleep", "300"),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            def pids() -> list[int]:
                out = cd.ctr("task", "ps", name).stdout.decode().splitlines()[1:]
                return [int(line.split()[0]) for line in out if line.strip()]
            # ctr lists pids as seen in containerd's (the sandbox's) pid namespace.
            def cmdlines() -> dict[int, bytes]:
                return {p: run(cd.sandbox.nsenter_argv(["cat", f"/proc/{p}/cmdline"])).stdout
                        for p in pids()}
            seen = wait_until(lambda: b"sleep\x00300\x00" in (c := cmdlines()).values() and c, 20)
            assert seen and init_pid in seen, explain(cd.ctr("task", "ps", name), rt, mark)
            if cd.driver == "systemd":
                # The exec'd process joined the container's scope (the loop's
                # short-lived `sleep 0.1`s may come and go meanwhile).
                sleeper = [p for p, c in seen.items() if c == b"sleep\x00300\x00"]
                in_scope = cgroup_pids(unit_cgroup(cd.scope(name)))
                assert {init_pid, *sleeper} <= set(in_scope), (seen, in_scope)
        finally:
            bg.kill()
            bg.wait()

        kill = cd.ctr("task", "kill", name)          # SIGTERM by default
        assert kill.returncode == 0, explain(kill, rt, mark)
        assert wait_until(lambda: (s := cd.task_status(name)) and s[1] == "STOPPED", 20), \
            explain(cd.ctr("task", "ls"), rt, mark)
        rm = cd.ctr("task", "delete", name)
        # SIGTERM reached PID 1: its trap's exit status is what containerd reaped.
        assert b"exit with non-zero exit code 42" in rm.stderr, explain(rm, rt, mark)
    finally:
        cd.ctr("task", "delete", "--force", name)
        rmc = cd.ctr("container", "rm", name)
    assert rmc.returncode == 0, explain(rmc, rt, mark)
    assert name not in cd.ctr("container", "ls", "-q").stdout.decode().split()
    assert "--root " in rt.calls_since(mark)
    if cd.driver == "systemd":
        assert "--systemd-cgroup" in rt.calls_since(mark)
        assert wait_until(lambda: cd.scope(name) not in scope_units(), 10), cd.scope(name)


def test_limits_seen_by_the_driver(cd: Containerd) -> None:
    """Memory and CPU quota in the container's cgroup files and, with the systemd
    driver, in `systemctl show` of its scope; after delete no cgroup/scope is left."""
    rt = cd.rt
    mark = rt.mark()
    name = new_name("lim")
    start = run(cd.run_argv(name, "sleep", "300", rm=False,
                            opts=("--detach", "--memory-limit", str(16 << 20), "--cpus", "0.5")),
                env=engine_env())
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        st = wait_until(lambda: (s := cd.task_status(name)) and s[1] == "RUNNING" and s, 20)
        assert st, explain(cd.ctr("task", "ls"), rt, mark)
        seen = check_limits(cd.driver, cd.scope(name), cd.sandbox.host_pid(st[0]),
                            memory=16 << 20, cpu_quota="500ms")
    finally:
        cd.ctr("task", "kill", "--signal", "SIGKILL", name)
        wait_until(lambda: (s := cd.task_status(name)) is None or s[1] == "STOPPED", 20)
        cd.ctr("task", "delete", "--force", name)
        cd.ctr("container", "rm", name)
    assert wait_until(seen.gone, 10), (seen.dirs, seen.scope)


def _counter(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def test_pause_resume(cd: Containerd, hostdir: Path) -> None:
    rt = cd.rt
    mark = rt.mark()
    name = new_name("pause")
    counter = hostdir / "n"
    script = "i=0; while true; do i=$((i+1)); echo $i > /data/n; sleep 0.05; done"
    start = run(cd.run_argv(name, "sh", "-c", script, rm=False,
                                    opts=("--detach", "--mount",
                                          f"type=bind,src={hostdir},dst=/data,options=rbind:rw")),
                env=engine_env())
    assert start.returncode == 0, explain(start, rt, mark)
    try:
        assert wait_until(lambda: _counter(counter) > 2, 20), explain(start, rt, mark)
        p = cd.ctr("task", "pause", name)
        assert p.returncode == 0, explain(p, rt, mark)
        assert cd.task_status(name)[1] == "PAUSED"   # type: ignore[index]
        before = _counter(counter)
        time.sleep(0.6)
        assert _counter(counter) == before, "counter moved while paused"
        r = cd.ctr("task", "resume", name)
        assert r.returncode == 0, explain(r, rt, mark)
        assert wait_until(lambda: _counter(counter) > before + 2, 10), "counter did not move after resume"
        assert cd.task_status(name)[1] == "RUNNING"  # type: ignore[index]
    finally:
        cd.ctr("task", "kill", "--signal", "SIGKILL", name)
        wait_until(lambda: (s := cd.task_status(name)) is None or s[1] == "STOPPED", 20)
        cd.ctr("task", "delete", "--force", name)
        cd.ctr("container", "rm", name)


def test_memory_limit_oom_kills_hog(cd: Containerd) -> None:
    proc = cd.run("sh", "-c", HOG, opts=("--memory-limit", str(16 * 1024 * 1024)))
    assert b"survived" not in proc.stdout, explain(proc, cd.rt)
    assert proc.returncode == 137, explain(proc, cd.rt)


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


def test_no_stray_tasks(cd: Containerd) -> None:
    """Runs last: every test removed its task."""
    assert cd.ctr("task", "ls", "-q").stdout.strip() == b""
    assert shutil.which("ctr") and os.path.exists(cd.sock)
