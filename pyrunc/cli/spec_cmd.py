"""pyrunc spec: write a default config.json into the bundle."""

from __future__ import annotations

import json
import os
from typing import Any

from pyrunc.cli.args import opt
from pyrunc.errors import PyruncError

SYNOPSIS = "[command options]"
OPTIONS = [
    opt("bundle", "--bundle", "-b", value=True, default="", help="path to the root of the bundle directory"),
    opt("rootless", "--rootless", help="generate a configuration for a rootless container"),
]


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Write config.json; refuses to overwrite an existing one (as runc)."""
    from pyrunc.spec.template import default_spec

    path = os.path.join(values["bundle"] or ".", "config.json")
    if os.path.exists(path):
        raise PyruncError("File config.json exists. Remove it first")
    doc = default_spec(rootless=values["rootless"])
    try:
        with open(path, "x") as f:
            f.write(json.dumps(doc, indent="\t") + "\n")
    except OSError as e:
        raise PyruncError(f"open {path}: {e.strerror}") from None
    return 0
