"""Attack class 2: leaked fds and a cwd outside the container.

CVEs: CVE-2024-21626 ("Leaky Vessels": process.cwd=/proc/self/fd/N or
`exec --cwd` through a leaked host directory fd gives a host-side cwd),
CVE-2016-9962 (host fds reachable from the container during exec).

Host canary: a file with a random secret in a temp dir.  Through a leaked
handle on the host's /proc (or any host directory) the container process
could read it as ./1/root/<path>; the secret must never appear in its output.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.conftest import needs_root, runtime_env
from tests.security.conftest import config_for

pytestmark = needs_root

FDS = range(3, 65)


def script(canary: str) -> str:
    # The cwd may be a host /proc, a /proc/<pid> or a host directory.
    return (f"cat ./1/root{canary} ./root{canary} .{canary} 2>/dev/null; "
            "echo CWD=$(/bin/pwd -P); echo FDS=$(ls /proc/$$/fd | sort -n | tr '\\n' ' ')")


@pytest.fixture
def canary(tmp_path):
    secret = f"secret-{uuid.uuid4().hex}"
    path = tmp_path / "canary.txt"
    path.write_text(secret)
    return str(path), secret


def check_escape(proc, secret: str, allowed_fds: set[int]) -> None:
    out = proc.stdout.decode(errors="replace")
    assert secret not in out, f"host file read through the cwd: {out}"
    if proc.returncode != 0:
        # Refused, either by pyrunc (one error line) or by pyrunc-init after
        # start, when the container's own exit status is all there is. A
        # refused exec exits 255, runc's "exec failed" status.
        assert proc.returncode in (1, 255), (proc.returncode, proc.stderr)
        assert b"Traceback" not in proc.stderr
        assert len(proc.stderr.splitlines()) <= 1, proc.stderr
        return
    lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert lines["CWD"].startswith("/") and "unreachable" not in lines["CWD"], out
    fds = {int(x) for x in lines["FDS"].split()}
    assert fds <= allowed_fds, f"fds visible in the container: {sorted(fds)} ({out})"


def test_process_cwd_through_proc_self_fd(runtime, bundle, private_rootfs, canary):
    path, secret = canary
    failures = []
    for n in FDS:
        cfg = config_for(private_rootfs, ["sh", "-c", script(path)], cwd=f"/proc/self/fd/{n}")
        proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("cwd"))
        try:
            check_escape(proc, secret, {0, 1, 2})
        except AssertionError as e:
            failures.append(f"fd {n}: {e}")
    assert not failures, "\n".join(failures[:10])


def test_exec_cwd_through_proc_self_fd(runtime, bundle, private_rootfs, canary):
    path, secret = canary
    cid = runtime.new_id("execcwd")
    cfg = config_for(private_rootfs, ["sleep", "120"])
    runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True)
    failures = []
    for n in FDS:
        proc = runtime("exec", "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c", script(path))
        try:
            check_escape(proc, secret, {0, 1, 2})
        except AssertionError as e:
            failures.append(f"fd {n}: {e}")
    assert not failures, "\n".join(failures[:10])


def test_only_stdio_preserved_and_listen_fds(runtime, bundle, private_rootfs, tmp_path):
    """With --preserve-fds 2 and LISTEN_FDS=1 the process has 0-5 and nothing else."""
    files = [open(tmp_path / f"extra{i}", "w") for i in range(3)]
    try:
        fds = [f.fileno() for f in files]
        # Put them at 3, 4, 5 in the child, as the caller of a runtime would.
        def place() -> None:
            for want, fd in zip((3, 4, 5), fds):
                os.dup2(fd, want)

        cfg = config_for(private_rootfs, ["/probe", "fds"])
        # LISTEN_PID must name the runtime's own pid: set it from a shell that execs it.
        argv = ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
                *runtime.argv("run", "--preserve-fds", "2", "-b", str(bundle(config=cfg)),
                              runtime.new_id("fds"))]
        proc = subprocess.run(argv, env=runtime_env(), preexec_fn=place, pass_fds=(3, 4, 5),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        seen = {int(x) for x in proc.stdout.decode().strip().split("=", 1)[1].split()}
        assert seen == {0, 1, 2, 3, 4, 5}, seen
    finally:
        for f in files:
            f.close()


# --- Caller fds at every entry point ------------------------------------------------
#
# A harness such as bats keeps fds 3 and 4 open while it runs the runtime,
# often under script(1) for a terminal.  Nothing the caller has open above 2
# (beyond --preserve-fds) may reach the container: not the container's
# process, not an exec'd process, and not the runtime's own init while it
# sits in the container between `create` and `start`.

CALLER_FDS = (3, 4, 5, 200)


class CallerFds:
    """Marker files the runtime's caller keeps open at CALLER_FDS."""

    def __init__(self, directory) -> None:
        self.paths = {n: str(directory / f"caller-fd-{n}") for n in CALLER_FDS}
        self.files = {}
        for n, path in self.paths.items():
            with open(path, "w") as f:
                f.write(f"caller fd {n}\n")

    def place(self) -> None:
        """preexec_fn: open the markers at their numbers in the runtime's process."""
        for n, path in self.paths.items():
            fd = os.open(path, os.O_RDONLY)
            if fd != n:
                os.dup2(fd, n)
                os.close(fd)

    def run(self, argv, stdout=None, timeout: float = 120):
        """Run argv (a runtime command line) with the caller's fds open.

        Output goes through temp files, not pipes: a detached container keeps
        the runtime's stdio open.
        """
        import tempfile

        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            # close_fds=False: the markers only exist once place() has run in
            # the child (pass_fds would check them before); Python's own fds
            # are close-on-exec anyway.
            proc = subprocess.run(argv, env=runtime_env(), preexec_fn=self.place,
                                  close_fds=False, stdin=subprocess.DEVNULL,
                                  stdout=out if stdout is None else stdout, stderr=err,
                                  timeout=timeout)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        return proc

    def held_by(self, pid: int) -> dict[int, str]:
        """The fds of host process pid that are the caller's markers, seen from the host."""
        held = {}
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            return held
        for name in names:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{name}")
            except FileNotFoundError:
                continue
            if target in self.paths.values():
                held[int(name)] = target
        return held


@pytest.fixture
def caller_fds(tmp_path):
    return CallerFds(tmp_path)


def fds_line(text: str) -> set[int]:
    """The fd numbers of the probe's `FDS=...` line."""
    for line in text.replace("\r", "").splitlines():
        if "FDS=" in line:
            return {int(x) for x in line.split("FDS=", 1)[1].split()}
    raise AssertionError(f"no FDS= line in {text!r}")


def console_fds(receiver) -> set[int]:
    """The probe's FDS= line, once it has fully arrived on the console."""
    import time

    deadline = time.monotonic() + 120
    receiver.wait_output(b"FDS=", timeout=120)
    while b"\n" not in bytes(receiver.output).split(b"FDS=", 1)[1]:
        assert time.monotonic() < deadline, bytes(receiver.output)
        receiver.wait_output(b"FDS=", timeout=1)  # re-raises if the console went away
        time.sleep(0.02)
    return fds_line(bytes(receiver.output).decode(errors="replace"))


def wait_exit(pid: int, timeout: float = 120) -> None:
    """Wait for a process that is not our child to exit (pidfd polling, no sleeps)."""
    import select

    if pid <= 0:
        return
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        assert ready, f"process {pid} did not exit"
    finally:
        os.close(pidfd)


def init_pid(runtime, cid: str) -> int:
    """The container's init pid (0 once it has stopped)."""
    return int(runtime.state(cid).get("pid") or 0)


def probe_config(root, args=None, terminal=False):
    cfg = config_for(root, args or ["/probe", "fds"])
    cfg["process"]["terminal"] = terminal
    return cfg


def test_run_foreground(runtime, bundle, private_rootfs, caller_fds):
    b = bundle(config=probe_config(private_rootfs))
    proc = caller_fds.run(runtime.argv("run", "-b", str(b), runtime.new_id("fg")))
    assert proc.returncode == 0, proc.stderr
    assert fds_line(proc.stdout.decode()) == {0, 1, 2}


def test_run_foreground_with_preserve_fds(runtime, bundle, private_rootfs, caller_fds):
    b = bundle(config=probe_config(private_rootfs))
    proc = caller_fds.run(runtime.argv("run", "--preserve-fds", "2", "-b", str(b),
                                       runtime.new_id("pfg")))
    assert proc.returncode == 0, proc.stderr
    assert fds_line(proc.stdout.decode()) == {0, 1, 2, 3, 4}


def test_run_detached(runtime, bundle, private_rootfs, caller_fds, tmp_path):
    cid = runtime.new_id("det")
    out = tmp_path / "detached.out"
    with open(out, "wb") as f:
        proc = caller_fds.run(runtime.argv("run", "-d", "-b",
                                           str(bundle(config=probe_config(private_rootfs))), cid),
                              stdout=f)
    assert proc.returncode == 0, proc.stderr
    wait_exit(init_pid(runtime, cid))
    assert fds_line(out.read_text()) == {0, 1, 2}


def test_create_then_start(runtime, bundle, private_rootfs, caller_fds, tmp_path):
    """The init waiting in the container between create and start holds no caller fd."""
    cid = runtime.new_id("cs")
    out = tmp_path / "created.out"
    with open(out, "wb") as f:
        proc = caller_fds.run(runtime.argv("create", "-b",
                                           str(bundle(config=probe_config(private_rootfs))), cid),
                              stdout=f)
    assert proc.returncode == 0, proc.stderr
    pid = init_pid(runtime, cid)
    # The bats report: the harness's fds showed up in the created container.
    assert caller_fds.held_by(pid) == {}
    proc = caller_fds.run(runtime.argv("start", cid))
    assert proc.returncode == 0, proc.stderr
    wait_exit(pid)
    assert fds_line(out.read_text()) == {0, 1, 2}


def test_create_with_preserve_fds(runtime, bundle, private_rootfs, caller_fds, tmp_path):
    cid = runtime.new_id("csp")
    out = tmp_path / "created.out"
    with open(out, "wb") as f:
        proc = caller_fds.run(runtime.argv("create", "--preserve-fds", "1", "-b",
                                           str(bundle(config=probe_config(private_rootfs))), cid),
                              stdout=f)
    assert proc.returncode == 0, proc.stderr
    pid = init_pid(runtime, cid)
    assert set(caller_fds.held_by(pid)) <= {3}
    runtime("start", cid, check=True)
    wait_exit(pid)
    assert fds_line(out.read_text()) == {0, 1, 2, 3}


def test_create_with_console_socket(runtime, bundle, private_rootfs, caller_fds, tmp_path):
    from tests.helpers.recvtty import ConsoleReceiver

    cid = runtime.new_id("ccs")
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    try:
        b = bundle(config=probe_config(private_rootfs, terminal=True))
        proc = caller_fds.run(runtime.argv("create", "--console-socket", str(receiver.path),
                                           "-b", str(b), cid))
        assert proc.returncode == 0, proc.stderr
        pid = init_pid(runtime, cid)
        assert caller_fds.held_by(pid) == {}
        proc = caller_fds.run(runtime.argv("start", cid))
        assert proc.returncode == 0, proc.stderr
        assert console_fds(receiver) == {0, 1, 2}
    finally:
        receiver.close()


def test_run_detached_with_console_socket(runtime, bundle, private_rootfs, caller_fds, tmp_path):
    from tests.helpers.recvtty import ConsoleReceiver

    cid = runtime.new_id("dcs")
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    try:
        b = bundle(config=probe_config(private_rootfs, ["sh", "-c", "/probe fds; read x"],
                                       terminal=True))
        proc = caller_fds.run(runtime.argv("run", "-d", "--console-socket", str(receiver.path),
                                           "-b", str(b), cid))
        assert proc.returncode == 0, proc.stderr
        assert console_fds(receiver) == {0, 1, 2}
        assert caller_fds.held_by(init_pid(runtime, cid)) == {}
    finally:
        receiver.close()


@pytest.mark.parametrize("terminal", [False, True], ids=["no-tty", "tty"])
def test_run_under_script_like_bats(runtime, bundle, private_rootfs, caller_fds, terminal):
    """bats: `script -qec 'runtime run ...' /dev/null` with the harness's fds 3 and 4 open."""
    import shlex

    b = bundle(config=probe_config(private_rootfs, terminal=terminal))
    command = shlex.join(runtime.argv("run", "-b", str(b), runtime.new_id("bats")))
    proc = caller_fds.run(["script", "-qec", command, "/dev/null"])
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert fds_line(proc.stdout.decode(errors="replace")) == {0, 1, 2}


@pytest.fixture
def sleeper(runtime, bundle, private_rootfs, caller_fds):
    """A running container (started with the caller's fds open) and its init pid."""
    cid = runtime.new_id("sleeper")
    proc = caller_fds.run(runtime.argv("run", "-d", "-b",
                                       str(bundle(config=probe_config(private_rootfs,
                                                                      ["sleep", "1000"]))), cid))
    assert proc.returncode == 0, proc.stderr
    pid = init_pid(runtime, cid)
    assert caller_fds.held_by(pid) == {}
    return cid, pid


def test_exec_foreground(runtime, caller_fds, sleeper):
    cid, pid = sleeper
    proc = caller_fds.run(runtime.argv("exec", cid, "/probe", "fds"))
    assert proc.returncode == 0, proc.stderr
    assert fds_line(proc.stdout.decode()) == {0, 1, 2}
    assert caller_fds.held_by(pid) == {}


def test_exec_with_preserve_fds(runtime, caller_fds, sleeper):
    cid, _ = sleeper
    proc = caller_fds.run(runtime.argv("exec", "--preserve-fds", "3", cid, "/probe", "fds"))
    assert proc.returncode == 0, proc.stderr
    assert fds_line(proc.stdout.decode()) == {0, 1, 2, 3, 4, 5}


def test_exec_detached(runtime, caller_fds, sleeper, tmp_path):
    cid, _ = sleeper
    out, pid_file = tmp_path / "exec.out", tmp_path / "exec.pid"
    with open(out, "wb") as f:
        proc = caller_fds.run(runtime.argv("exec", "-d", "--pid-file", str(pid_file), cid,
                                           "/probe", "fds"), stdout=f)
    assert proc.returncode == 0, proc.stderr
    wait_exit(int(pid_file.read_text()))
    assert fds_line(out.read_text()) == {0, 1, 2}


def test_exec_tty_with_console_socket(runtime, caller_fds, sleeper, tmp_path):
    from tests.helpers.recvtty import ConsoleReceiver

    cid, _ = sleeper
    receiver = ConsoleReceiver(tmp_path / "exec.sock")
    try:
        proc = caller_fds.run(runtime.argv("exec", "-t", "-d", "--console-socket",
                                           str(receiver.path), cid, "sh", "-c",
                                           "/probe fds; read x"))
        assert proc.returncode == 0, proc.stderr
        assert console_fds(receiver) == {0, 1, 2}
    finally:
        receiver.close()


def test_exec_tty_under_script(runtime, caller_fds, sleeper):
    import shlex

    cid, _ = sleeper
    command = shlex.join(runtime.argv("exec", "-t", cid, "/probe", "fds"))
    proc = caller_fds.run(["script", "-qec", command, "/dev/null"])
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert fds_line(proc.stdout.decode(errors="replace")) == {0, 1, 2}
