"""pyrunc run: create and start a container, then wait for it (unless -d)."""

from __future__ import annotations

from pyrunc.cli.args import opt
from pyrunc.cli.common import CREATE_OPTIONS, create_options, one_id, warner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYNOPSIS = "[command options] <container-id>"
OPTIONS = [
    *CREATE_OPTIONS,
    opt("detach", "--detach", "-d", help="detach from the container's process"),
    opt("keep", "--keep", help="do not delete the container after it exits"),
    opt("no_subreaper", "--no-subreaper", help="disable the use of the subreaper used to reap reparented processes"),
]


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Run the container named by args[0]; returns its exit status."""
    from pyrunc import runtime

    container_id = one_id(args, "run")
    return runtime.run(ctx.store(), container_id, create_options(ctx, values, detach=values["detach"]),
                       keep=values["keep"], warn=warner(ctx))
