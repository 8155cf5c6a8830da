"""Terminals: console sockets (as containerd and conmon use them) and the foreground pty."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time
from pathlib import Path

from tests.conftest import OTHER_RUNTIME, error_line, needs_root, pyrunc_only, runc_differs, runtime_env
from tests.helpers.recvtty import ConsoleReceiver

pytestmark = needs_root


def tty_config(bundle, args, size=None):
    cfg = bundle.config(args)
    cfg["process"]["terminal"] = True
    if size:
        cfg["process"]["consoleSize"] = {"height": size[0], "width": size[1]}
    return cfg


PROBE = ("read p c s pp pg sid ttynr rest < /proc/$$/stat; echo sid=$sid pid=$$ tty=$ttynr;"
         " tty; stty size; ls -lL /dev/console /proc/self/fd/0 | cut -c1-45; ")


@runc_differs("runc 1.1.5 names the master /dev/ptmx in the console socket message")
def test_create_sends_the_master_on_the_console_socket(runtime, bundle, tmp_path):
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    cid = runtime.new_id()
    b = bundle(config=tty_config(bundle, ["sh", "-c", PROBE + "read x; echo got:$x"], (33, 101)))
    try:
        runtime("create", "-b", str(b), "--console-socket", str(receiver.path), cid, check=True)
        receiver.wait_master()  # also checks the framing go-runc expects
        assert receiver.name.startswith("/dev/pts/")
        runtime("start", cid, check=True)
        receiver.write(b"typed\n")
        out = receiver.wait_output(b"got:typed").decode().replace("\r", "")
    finally:
        receiver.close()
    lines = out.splitlines()
    assert "sid=1 pid=1" in lines[0] and "tty=0" not in lines[0]  # session leader with a ctty
    assert receiver.name in lines  # `tty` names the pty the master belongs to
    assert "33 101" in lines       # consoleSize
    console, stdin = [ln.split() for ln in lines if ln.startswith("c")][:2]
    # /dev/console is the same pty (same major/minor) as the process's stdio.
    assert console[4:6] == stdin[4:6] and console[0].startswith("c")


@runc_differs("runc 1.1.5 names the master /dev/ptmx in the console socket message")
def test_exec_tty_with_console_socket(runtime, bundle, tmp_path):
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(["sleep", "1000"])), cid, check=True)
    receiver = ConsoleReceiver(tmp_path / "exec.sock")
    try:
        pid_file = tmp_path / "exec.pid"
        proc = runtime("exec", "-t", "-d", "--console-socket", str(receiver.path), "--pid-file",
                       str(pid_file), cid, "sh", "-c", PROBE + "read x; echo got:$x")
        assert proc.returncode == 0, proc.stderr
        receiver.wait_master()
        receiver.write(b"hi\n")
        out = receiver.wait_output(b"got:hi").decode().replace("\r", "")
    finally:
        receiver.close()
    first = out.splitlines()[0]
    assert "tty=0" not in first and first.split()[0] == first.split()[1].replace("pid", "sid")
    assert receiver.name in out


def test_console_socket_that_nobody_listens_on(runtime, bundle, tmp_path):
    cid = runtime.new_id()
    b = bundle(config=tty_config(bundle, ["true"]))
    sock = str(tmp_path / "none.sock")
    proc = runtime("create", "-b", str(b), "--console-socket", sock, cid)
    assert proc.returncode == 1
    # runc 1.1.5: "dial unix PATH: connect: ..."; pyrunc also names the console socket.
    line = error_line(proc)
    assert sock in line and "connect" in line, line
    assert OTHER_RUNTIME or "console socket" in line, line
    assert not (runtime.root / cid).exists()


def test_terminal_without_console_socket_is_refused_for_create(runtime, bundle):
    b = bundle(config=tty_config(bundle, ["true"]))
    proc = runtime("create", "-b", str(b), runtime.new_id())
    assert proc.returncode == 1 and b"cannot allocate tty" in proc.stderr


def test_console_socket_without_terminal_is_refused(runtime, bundle, tmp_path):
    proc = runtime("create", "-b", str(bundle(["true"])), "--console-socket",
                   str(tmp_path / "x.sock"), runtime.new_id())
    assert proc.returncode == 1 and b"cannot use console socket" in proc.stderr


@pyrunc_only("pyrunc relays a foreground terminal through pipes; runc 1.1.5 needs a controlling tty")
def test_run_terminal_with_pipes(runtime, bundle):
    # No console socket in the foreground: pyrunc relays; "\n" stays "\n" (runc clears ONLCR).
    b = bundle(config=tty_config(bundle, ["sh", "-c", "tty >/dev/null && echo is-a-tty"]))
    proc = runtime("run", "-b", str(b), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"is-a-tty\n"


class PtySession:
    """pyrunc in the foreground under a real pseudo-terminal (its controlling tty)."""

    def __init__(self, argv: list[str], rows: int = 24, cols: int = 80) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child execs at once
            os.execvpe(argv[0], argv, runtime_env())
        self.resize(rows, cols)
        self.out = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def expect(self, needle: bytes, timeout: float = 15) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not seen in {self.out!r}")
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    raise AssertionError(f"EOF before {needle!r}: {self.out!r}") from None
        return self.out

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                if select.select([self.fd], [], [], 0.1)[0]:
                    self.out += os.read(self.fd, 4096)
            except OSError:
                time.sleep(0.05)
        raise AssertionError("pyrunc did not exit")


def test_interactive_run_under_a_real_pty(runtime, bundle):
    b = bundle(config=tty_config(bundle, ["sh"]))
    session = PtySession(runtime.argv("run", "-b", str(b), runtime.new_id()), 30, 90)
    session.expect(b"# ")
    session.send(b"echo hel''lo; stty size\n")
    session.expect(b"hello")
    session.expect(b"30 90")
    # A window-size change of the caller's terminal reaches the container's pty.
    session.resize(41, 123)
    time.sleep(0.3)
    session.send(b"stty size\n")
    session.expect(b"41 123")
    session.send(b"exit 3\n")
    assert session.wait() == 3


def test_terminal_is_restored_after_run(runtime, bundle):
    b = bundle(config=tty_config(bundle, ["sh", "-c", "exit 0"]))
    script = ("import subprocess, sys, termios\n"
              "before = termios.tcgetattr(0)\n"
              "rc = subprocess.call(sys.argv[1:])\n"
              "after = termios.tcgetattr(0)\n"
              "print('restored' if before == after else 'changed', rc)\n")
    import sys

    session = PtySession([sys.executable, "-c", script,
                          *runtime.argv("run", "-b", str(b), runtime.new_id())])
    session.expect(b"restored 0")
    assert session.wait() == 0


def test_interactive_exec_under_a_real_pty(runtime, bundle):
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(["sleep", "1000"])), cid, check=True)
    session = PtySession(runtime.argv("exec", "-t", cid, "sh"), 25, 70)
    session.expect(b"# ")
    session.send(b"echo ab''cd; tty; stty size\n")
    session.expect(b"abcd")
    session.expect(b"/dev/pts/")
    session.expect(b"25 70")
    session.send(b"kill -KILL $$\n")
    assert session.wait() == 128 + 9
    assert not Path(f"/proc/{session.pid}").exists()


def test_terminal_belongs_to_the_containers_user(runtime, bundle):
    # runc chowns the pty to process.user.uid (the devpts group and mode stay),
    # so a non-root shell can reopen and use its own terminal.
    script = "stat -c 'owner=%u:%g mode=%a' $(tty); echo reopened > $(tty) && echo done"
    cfg = tty_config(bundle, ["sh", "-c", script])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    session = PtySession(runtime.argv("run", "-b", str(bundle(config=cfg)), runtime.new_id()))
    assert session.wait() == 0, session.out
    out = session.out.replace(b"\r", b"")
    assert out == b"owner=1000:5 mode=620\nreopened\ndone\n"
