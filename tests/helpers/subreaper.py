"""A stand-in for containerd's shim, to check the process model engines rely on.

Like containerd-shim-runc-v2 it makes itself a child subreaper, gives the
runtime pipes as the container's stdio, runs create/start/exec --detach/
kill/delete, and learns exit statuses only by reaping the processes the
runtime leaves behind (they are re-parented to it when the runtime exits).

Run it as a program; it prints one JSON report on stdout::

    python -m tests.helpers.subreaper RUNTIME_JSON ROOT BUNDLE ID WORKDIR
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER, 1) through libc."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_CHILD_SUBREAPER")


def parent_of(pid: int) -> int:
    """The ppid field of /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def reap(pid: int, timeout: float = 20) -> int:
    """Wait for pid (our child by re-parenting); its exit status as a shell reports it."""
    deadline = time.monotonic() + timeout
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            if os.WIFSIGNALED(status):
                return 128 + os.WTERMSIG(status)
            return os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            raise TimeoutError(f"pid {pid} was not reaped")
        time.sleep(0.01)


class Shim:
    """Drives one container the way the shim does."""

    def __init__(self, runtime: list[str], root: str, workdir: Path) -> None:
        self.base = [*runtime, "--root", root]
        self.workdir = workdir
        self.report: dict[str, object] = {"self": os.getpid()}

    def runtime(self, *args: str, stdio: tuple[int, int, int] | None = None) -> int:
        """Run one runtime command; with stdio, those fds become its 0, 1, 2."""
        err_path = self.workdir / f"err-{args[0]}-{time.monotonic_ns()}"
        with open(err_path, "wb") as err:
            if stdio is None:
                proc = subprocess.run([*self.base, *args], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=err)
            else:
                proc = subprocess.run([*self.base, *args], stdin=stdio[0], stdout=stdio[1],
                                      stderr=stdio[2])
        if proc.returncode != 0:
            self.report.setdefault("errors", []).append(  # type: ignore[union-attr]
                f"{args[0]}: {proc.returncode}: {err_path.read_text().strip()}")
        return proc.returncode

    def pipes(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(fds for the container, our ends): stdin, stdout, stderr as pipes."""
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        return (in_r, out_w, err_w), (in_w, out_r, err_r)


def read_all(fd: int) -> str:
    """Everything until EOF (every writer gone)."""
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks).decode()


def scenario(shim: Shim, bundle: str, cid: str) -> None:
    """create -> start -> exec --detach -> kill -> delete, reaping as a shim does."""
    report = shim.report
    theirs, ours = shim.pipes()
    init_pid_file = shim.workdir / "init.pid"
    report["create"] = shim.runtime("create", "--bundle", bundle, "--pid-file",
                                    str(init_pid_file), cid, stdio=theirs)
    for fd in theirs:
        os.close(fd)
    init_pid = int(init_pid_file.read_text())
    report["init_parent"] = parent_of(init_pid)
    report["start"] = shim.runtime("start", cid)
    os.write(ours[0], b"from-shim\n")
    os.close(ours[0])

    exec_theirs, exec_ours = shim.pipes()
    exec_pid_file = shim.workdir / "exec.pid"
    report["exec"] = shim.runtime("exec", "--detach", "--pid-file", str(exec_pid_file), cid,
                                  "sh", "-c", "read l; echo exec-got:$l; exit 7", stdio=exec_theirs)
    for fd in exec_theirs:
        os.close(fd)
    exec_pid = int(exec_pid_file.read_text())
    report["exec_parent"] = parent_of(exec_pid)
    os.write(exec_ours[0], b"ping\n")
    os.close(exec_ours[0])
    report["exec_status"] = reap(exec_pid)
    report["exec_stdout"] = read_all(exec_ours[1])
    os.close(exec_ours[2])

    # The init echoes its stdin, then waits to be killed.
    out = b""
    while b"\n" not in out:
        chunk = os.read(ours[1], 4096)
        if not chunk:
            break
        out += chunk
    report["init_first_line"] = out.decode().split("\n")[0]
    report["kill"] = shim.runtime("kill", cid, str(int(signal.SIGKILL)))
    report["init_status"] = reap(init_pid)
    os.close(ours[1])
    os.close(ours[2])
    report["delete"] = shim.runtime("delete", cid)


def main(argv: list[str]) -> int:
    """Run the scenario and print the report."""
    runtime, root, bundle, cid, workdir = json.loads(argv[0]), argv[1], argv[2], argv[3], argv[4]
    become_subreaper()
    shim = Shim(runtime, root, Path(workdir))
    try:
        scenario(shim, bundle, cid)
    except Exception as e:  # noqa: BLE001 - reported, the test decides
        shim.report["exception"] = repr(e)
    print(json.dumps(shim.report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
