"""pyrunc list: the containers under --root, as a table, JSON or ids."""

from __future__ import annotations

import sys

from pyrunc.cli.args import opt
from pyrunc.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYNOPSIS = "[command options]"
OPTIONS = [
    opt("format", "--format", "-f", value=True, default="table", help="select one of: table or json (default: \"table\")"),
    opt("quiet", "--quiet", "-q", help="display only container IDs"),
]


def table(rows: list[list[str]], min_width: int = 12, padding: int = 3) -> str:
    """Columns padded like Go's tabwriter(minwidth 12, padding 3)."""
    widths = [max(min_width, *(len(r[i]) + padding for r in rows)) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths)] + [r[-1]]
        out.append("".join(cells))
    return "\n".join(out) + "\n"


def _owner(directory: str) -> str:
    """The user owning a container's state directory, as runc's list shows it."""
    import os
    import pwd

    try:
        uid = os.stat(directory).st_uid
    except OSError:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """List containers."""
    from pyrunc import runtime

    store = ctx.store()
    states = runtime.list_states(store)
    for s in states:
        s["owner"] = _owner(store.path(s["id"]))
    if values["quiet"]:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
        return 0
    if values["format"] == "json":
        # runc encodes a nil slice: "null" when there are no containers.
        # Compact, as Go's json.Encoder writes it.
        from pyrunc import jsonio

        sys.stdout.write(jsonio.dumps_go(states or None) + "\n")
        return 0
    if values["format"] != "table":
        raise UsageError(f"invalid format option: {values['format']}")
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    for s in states:
        rows.append([s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]])
    sys.stdout.write(table(rows))
    return 0
