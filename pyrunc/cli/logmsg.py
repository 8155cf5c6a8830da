"""Non-fatal log lines (warnings, errors while streaming) for commands that go on.

Fatal errors are printed by :func:`pyrunc.cli.run_command`; this is for the
messages runc sends through logrus and then continues: to the --log file
when there is one, else to stderr, in the chosen --log-format.
"""

from __future__ import annotations

import os
import sys

from pyrunc.logs import format_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def log(ctx: Any, level: str, message: str) -> None:
    """Write one log line at ``level`` ("warning", "error", ...)."""
    line = format_line(level, message, ctx.log_format)
    if not ctx.log:
        sys.stderr.write(line)
        sys.stderr.flush()
        return
    try:
        fd = os.open(ctx.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError:
        sys.stderr.write(line)
        return
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def install_debug(ctx: Any) -> None:
    """--debug: send :func:`pyrunc.trace.debug` lines to the log (or stderr)."""
    from pyrunc import trace

    def sink(message: str) -> None:
        log(ctx, "debug", message)

    trace.sink = sink
