"""pyrunc events: container statistics and OOM notifications as JSON lines."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pyrunc.cli.args import opt
from pyrunc.cli.common import one_id
from pyrunc.errors import UsageError

SYNOPSIS = "[command options] <container-id>"
OPTIONS = [
    opt("interval", "--interval", value=True, default="5s", help="set the stats collection interval (default: 5s)"),
    opt("stats", "--stats", help="display the container's stats then exit"),
]

_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
          "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d*\.?\d*)([a-z\u00b5\u03bc]+)")


def parse_duration(text: str) -> float:
    """A Go duration ("5s", "1m30s", "250ms", "0") in seconds."""
    bad = UsageError(f'invalid value "{text}" for flag -interval: time: invalid duration "{text}"')
    body = text
    sign = 1.0
    if body[:1] in "+-" and body:
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise bad
    total = 0.0
    pos = 0
    while pos < len(body):
        m = _PART.match(body, pos)
        if m is None or m.group(1) in ("", ".") or m.group(2) not in _UNITS:
            raise bad
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def _emit(doc: dict[str, Any]) -> None:
    # One compact document per line, flushed: consumers read line by line.
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Print one stats event (--stats) or stream events until the container stops."""
    from pyrunc import runtime_resources
    from pyrunc.cli.logmsg import log

    container_id = one_id(args, "events")
    interval = parse_duration(values["interval"])
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")
    store = ctx.store()
    if values["stats"]:
        _emit(runtime_resources.stats(store, container_id))
        return 0
    runtime_resources.events(store, container_id, interval, _emit,
                             on_error=lambda msg: log(ctx, "error", msg))
    return 0
