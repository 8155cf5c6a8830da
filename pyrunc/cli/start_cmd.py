"""pyrunc start: run the user process of a created container."""

from __future__ import annotations

from pyrunc.cli.common import one_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYNOPSIS = "<container-id>"
OPTIONS: list[Any] = []


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Start the container named by args[0]."""
    from pyrunc import runtime

    runtime.start(ctx.store(), one_id(args, "start"))
    return 0
