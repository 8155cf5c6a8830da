"""pyrunc restore: not supported (CRIU is not usable on this platform)."""

from __future__ import annotations

from typing import Any

from pyrunc.errors import PyruncError

SYNOPSIS = "[command options] <container-id>"
OPTIONS: list[Any] = []
UNSUPPORTED = True


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Always fails."""
    raise PyruncError("restore is not supported by pyrunc")
