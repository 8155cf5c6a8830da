"""pyrunc features: print the features document (containerd runs it with no flags)."""

from __future__ import annotations

from typing import Any

from pyrunc.cli.common import print_json

SYNOPSIS = ""
OPTIONS: list[Any] = []


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Print the features JSON."""
    from pyrunc.features import features

    print_json(features())
    return 0
