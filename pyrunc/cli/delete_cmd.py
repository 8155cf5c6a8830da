"""pyrunc delete: remove a container and everything it holds."""

from __future__ import annotations

from pyrunc.cli.args import opt
from pyrunc.cli.common import one_id, warner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYNOPSIS = "[command options] <container-id>"
OPTIONS = [opt("force", "--force", "-f", help="Forcibly deletes the container if it is still running (uses SIGKILL)")]


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Delete the container named by args[0]."""
    from pyrunc import runtime

    runtime.delete(ctx.store(), one_id(args, "delete"), values["force"],
                   warn=warner(ctx))
    return 0
