"""pyrunc pause: freeze every process of a container."""

from __future__ import annotations

from typing import Any

from pyrunc.cli.common import one_id

SYNOPSIS = "<container-id>"
OPTIONS: list[Any] = []


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Pause the container named by args[0]."""
    from pyrunc import runtime_resources

    runtime_resources.pause(ctx.store(), one_id(args, "pause"))
    return 0
