"""pyrunc resume: thaw a paused container."""

from __future__ import annotations

from typing import Any

from pyrunc.cli.common import one_id

SYNOPSIS = "<container-id>"
OPTIONS: list[Any] = []


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Resume the container named by args[0]."""
    from pyrunc import runtime_resources

    runtime_resources.resume(ctx.store(), one_id(args, "resume"))
    return 0
