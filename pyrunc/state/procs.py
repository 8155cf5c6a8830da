"""Process liveness as the state store needs it: pid plus start time."""

from __future__ import annotations


def read_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of a process from /proc/<pid>/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def start_time(pid: int) -> int:
    """Start time (clock ticks since boot) of pid, 0 when it does not exist."""
    st = read_stat(pid)
    return st[1] if st else 0


def is_alive(pid: int, expected_start: int) -> bool:
    """True when pid runs, is not a zombie, and is the process we started."""
    if pid <= 0:
        return False
    st = read_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return expected_start == 0 or st[1] == expected_start
