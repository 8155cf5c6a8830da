"""pyrunc ps: the processes of a container, as a `ps` table or a JSON list of pids."""

from __future__ import annotations

import json
import sys
from typing import Any

from pyrunc.cli.args import opt
from pyrunc.errors import UsageError

STOP_AT_FIRST_ARG = True
SYNOPSIS = "[command options] <container-id> [ps options]"
OPTIONS = [
    opt("format", "--format", "-f", value=True, default="table",
        help='select one of: table or json (default: "table")'),
]


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Print the processes of args[0]; the remaining args go to the host's ps."""
    from pyrunc import runtime_resources

    container_id, ps_args = args[0], args[1:]
    pids = runtime_resources.ps_pids(ctx.store(), container_id)
    fmt = values["format"]
    if fmt == "json":
        # Compact, as Go's json.Encoder writes it; containerd parses this.
        sys.stdout.write(json.dumps(pids, separators=(",", ":")) + "\n")
        return 0
    if fmt != "table":
        raise UsageError("invalid format option")
    lines = runtime_resources.ps_table(pids, ps_args)
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0
