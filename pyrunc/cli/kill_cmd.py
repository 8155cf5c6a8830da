"""pyrunc kill: send a signal to a container's init (or all its processes)."""

from __future__ import annotations

from pyrunc.cli.args import opt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STOP_AT_FIRST_ARG = True
SYNOPSIS = "[command options] <container-id> [signal]"
OPTIONS = [
    opt("all", "--all", "-a", help="send the specified signal to all processes inside the container"),
    opt("signal", "--signal", "-s", value=True, default="", help="signal to send (runtime-tools CLI form)"),
]


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Signal the container named by args[0]."""
    from pyrunc import runtime
    from pyrunc.plan.signals import parse_signal

    name = args[1] if len(args) == 2 else (values["signal"] or "SIGTERM")
    runtime.kill(ctx.store(), args[0], parse_signal(name), values["all"])
    return 0
