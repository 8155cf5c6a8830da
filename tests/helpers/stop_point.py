"""Killing a runtime command at a chosen point: the command stops itself
(SIGSTOP, state "T") where a test hook asks it to, and the test kills it there."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def proc_state(pid: int) -> str:
    """The one-letter state of /proc/<pid>/stat, or "gone"."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat.rsplit(")", 1)[1].split()[0]


def kill_at_stop_point(proc: subprocess.Popen[bytes], output: Path, timeout: float) -> None:
    """Wait until proc has stopped itself, then SIGKILL it; never leave it running.

    output is the command's combined output, shown when it exits before stopping."""
    try:
        deadline = time.monotonic() + timeout
        while proc_state(proc.pid) != "T":
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "pyrunc never reached the stop point"
            time.sleep(0.01)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
