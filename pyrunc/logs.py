"""runc's log line formats (--log-format text|json), as logrus writes them."""

from __future__ import annotations

import time

from pyrunc import jsonio


def _timestamp() -> str:
    """RFC 3339 local time to the second, as logrus's default formatters print it."""
    local = time.localtime()
    offset = time.strftime("%z", local)
    zone = "Z" if offset in ("+0000", "-0000") else offset[:3] + ":" + offset[3:]
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + zone


def _text_value(value: str) -> str:
    # logrus leaves a value bare when every character is one of these.
    if value and all(c.isascii() and (c.isalnum() or c in "-._/@^+") for c in value):
        return value
    return jsonio.dumps(value)


def format_line(level: str, msg: str, fmt: str) -> str:
    """One log line: JSON ``{"level","msg","time"}`` (keys sorted, compact, Go's
    escaping) or logrus's text ``time="..." level=... msg=...``."""
    if fmt == "json":
        return jsonio.dumps_go({"level": level, "msg": msg, "time": _timestamp()}) + "\n"
    return f'time="{_timestamp()}" level={level} msg={_text_value(msg)}\n'
