"""pyrunc state: print a container's OCI state document."""

from __future__ import annotations

import sys

from pyrunc.cli.common import one_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYNOPSIS = "<container-id>"
OPTIONS: list[Any] = []


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Print the state of args[0] as runc does: Go's MarshalIndent, no final newline."""
    from pyrunc import jsonio, runtime

    sys.stdout.write(jsonio.dumps_go_indent(runtime.state(ctx.store(), one_id(args, "state"))))
    return 0
