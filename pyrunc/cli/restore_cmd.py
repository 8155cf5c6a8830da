"""pyrunc restore: not supported (CRIU is not usable on this platform).

It must fail, including for ``--help``: podman offers restoreing when
``<runtime> restore --help`` exits 0.
"""

from __future__ import annotations

from typing import Any

from pyrunc.errors import PyruncError

SYNOPSIS = "[command options] <container-id>"
OPTIONS: list[Any] = []
NOT_SUPPORTED = True


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Always fails."""
    raise PyruncError("restore is not supported by pyrunc")
