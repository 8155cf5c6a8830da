"""pyrunc state: print a container's OCI state document."""

from __future__ import annotations

from pyrunc.cli.common import one_id, print_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYNOPSIS = "<container-id>"
OPTIONS: list[Any] = []


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Print the state of args[0]."""
    from pyrunc import runtime

    print_json(runtime.state(ctx.store(), one_id(args, "state")))
    return 0
