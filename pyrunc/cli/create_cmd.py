"""pyrunc create: set a container up and leave it waiting for `start`."""

from __future__ import annotations

from pyrunc.cli.common import CREATE_OPTIONS, create_options, one_id, warner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYNOPSIS = "[command options] <container-id>"
OPTIONS = CREATE_OPTIONS


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Create the container named by args[0]."""
    from pyrunc import runtime

    runtime.create(ctx.store(), one_id(args, "create"), create_options(ctx, values, detach=True),
                   warn=warner(ctx))
    return 0
