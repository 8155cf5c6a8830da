"""runc's log line formats (--log-format text|json)."""

from __future__ import annotations

import time

from pyrunc import jsonio


def _timestamp() -> str:
    t = time.time()
    local = time.localtime(t)
    offset = time.strftime("%z", local)
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{int((t % 1) * 1e9):09d}" + \
        (offset[:3] + ":" + offset[3:] if offset not in ("+0000", "-0000") else "Z")


def format_line(level: str, msg: str, fmt: str) -> str:
    """One log line: JSON ``{"level","msg","time"}`` or logrus-style text."""
    if fmt == "json":
        return jsonio.dumps({"level": level, "msg": msg, "time": _timestamp()}) + "\n"
    return f'time="{_timestamp()}" level={level} msg={jsonio.dumps(msg)}\n'
