"""File descriptors that reach the container process, and the ones that must not."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from tests.conftest import needs_root, runtime_env

pytestmark = needs_root

# ls opens /proc/self/fd itself; that entry is the only one it adds.
LIST_FDS = ["ls", "-l", "/proc/self/fd"]


def fds_in(output: bytes) -> dict[int, str]:
    """fd -> link target from `ls -l /proc/self/fd`, without ls's own directory fd."""
    found = {}
    for line in output.decode().splitlines():
        m = re.search(r"\s(\d+) -> (.*)$", line)
        if m and not re.fullmatch(r"/proc/\d+/fd", m.group(2)):
            found[int(m.group(1))] = m.group(2)
    return found


def fd_wrapper(moves: dict[int, int], listen_fds: int | None = None) -> list[str]:
    """argv prefix that moves fds (src -> dst) and optionally claims LISTEN_FDS, then execs."""
    code = ("import os, sys\n"
            f"for src, dst in {sorted(moves.items())!r}:\n"
            "    os.dup2(src, dst); os.close(src)\n")
    if listen_fds is not None:
        code += (f"os.environ['LISTEN_FDS'] = '{listen_fds}'\n"
                 "os.environ['LISTEN_PID'] = str(os.getpid())\n")
    code += "os.execvp(sys.argv[1], sys.argv[1:])\n"
    return [sys.executable, "-c", code]


def leaky_fd() -> int:
    """An inheritable fd the test passes to pyrunc without asking to preserve it."""
    r, w = os.pipe()
    os.close(w)
    os.set_inheritable(r, True)
    return r


def test_create_start_only_stdio(runtime, bundle, tmp_path):
    cid = runtime.new_id()
    out = tmp_path / "out"
    leak = leaky_fd()
    try:
        with open(out, "wb") as f:
            runtime("create", "-b", str(bundle(LIST_FDS)), cid, stdout=f, pass_fds=(leak,),
                    check=True)
        runtime("start", cid, check=True)
    finally:
        os.close(leak)
    # start returns once the process runs; let it write its list before the delete.
    deadline = time.monotonic() + 20
    while runtime.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    runtime("delete", "--force", cid)
    assert sorted(fds_in(out.read_bytes())) == [0, 1, 2], out.read_text()


def test_run_only_stdio(runtime, bundle):
    leak = leaky_fd()
    try:
        proc = runtime("run", "-b", str(bundle(LIST_FDS)), runtime.new_id(), pass_fds=(leak,))
    finally:
        os.close(leak)
    assert sorted(fds_in(proc.stdout)) == [0, 1, 2], proc.stdout


def test_run_preserve_fds(runtime, bundle):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    extra = [os.dup2(r1, 3 + 40), os.dup2(r2, 3 + 41)]
    try:
        # The preserved fds must be 3 and 4 in pyrunc; dup them there in a wrapper.
        wrapper = fd_wrapper({43: 3, 44: 4})
        proc = subprocess.run(wrapper + runtime.argv("run", "--preserve-fds", "2", "-b",
                                                     str(bundle(LIST_FDS)), runtime.new_id()),
                              pass_fds=extra, env=runtime_env(), capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    finally:
        for fd in (r1, w1, r2, w2, *extra):
            os.close(fd)
    fds = fds_in(proc.stdout)
    assert sorted(fds) == [0, 1, 2, 3, 4], (proc.stdout, proc.stderr)
    assert fds[3].startswith("pipe:") and fds[4].startswith("pipe:")


def test_listen_fds_reach_the_process_with_listen_pid_1(runtime, bundle):
    r1, w1 = os.pipe()
    extra = os.dup2(r1, 50)
    cmd = ["sh", "-c", "ls -l /proc/self/fd; echo $LISTEN_FDS $LISTEN_PID"]
    try:
        proc = subprocess.run([*fd_wrapper({50: 3}, listen_fds=1),
                               *runtime.argv("run", "-b", str(bundle(cmd)), runtime.new_id())],
                              pass_fds=(extra,), env=runtime_env(), capture_output=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    finally:
        for fd in (r1, w1, extra):
            os.close(fd)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[-1] == "1 1"
    # `ls` in a shell: the shell's fds 0-3 are inherited by ls.
    assert 3 in fds_in(proc.stdout) and fds_in(proc.stdout)[3].startswith("pipe:")


def test_listen_fds_for_another_pid_are_ignored(runtime, bundle):
    script = 'export LISTEN_FDS=2 LISTEN_PID=1; exec "$@"'
    proc = subprocess.run(["sh", "-c", script, "sh",
                           *runtime.argv("run", "-b", str(bundle(LIST_FDS)), runtime.new_id())],
                          env=runtime_env(), capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert sorted(fds_in(proc.stdout)) == [0, 1, 2], proc.stdout


def test_exec_only_stdio_and_preserved(runtime, bundle):
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(["sleep", "1000"])), cid, check=True)
    leak = leaky_fd()
    try:
        proc = runtime("exec", cid, *LIST_FDS, pass_fds=(leak,))
        assert sorted(fds_in(proc.stdout)) == [0, 1, 2], proc.stdout
        r, w = os.pipe()
        moved = os.dup2(r, 60)
        done = subprocess.run([*fd_wrapper({60: 3}),
                               *runtime.argv("exec", "--preserve-fds", "1", cid, *LIST_FDS)],
                              pass_fds=(moved, leak), env=runtime_env(), capture_output=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        for fd in (r, w, moved):
            os.close(fd)
    finally:
        os.close(leak)
    fds = fds_in(done.stdout)
    assert sorted(fds) == [0, 1, 2, 3], (done.stdout, done.stderr)
    assert fds[3].startswith("pipe:")


def test_tty_exec_leaves_no_console_socket_behind(runtime, bundle, tmp_path):
    from tests.helpers.recvtty import ConsoleReceiver

    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(["sleep", "1000"])), cid, check=True)
    # The shell prints an end marker once ls has written the whole listing, so
    # everything before the marker is the complete listing, however late it
    # arrives.  The marker is computed by the shell: the command line itself
    # does not contain it.
    end = b"end-of-fd-listing-42"
    receiver = ConsoleReceiver(tmp_path / "c.sock")
    try:
        runtime("exec", "-t", "-d", "--console-socket", str(receiver.path), cid,
                "sh", "-c", "ls -l /proc/self/fd; echo end-of-fd-listing-$((6*7)); sleep 1",
                check=True)
        receiver.wait_master(20)
        out = receiver.wait_output(end, timeout=20).replace(b"\r", b"")
    finally:
        receiver.close()
    listing = out.split(end, 1)[0]
    fds = fds_in(listing)
    assert sorted(fds) == [0, 1, 2] and all(t.startswith("/dev/pts/") for t in fds.values()), out
