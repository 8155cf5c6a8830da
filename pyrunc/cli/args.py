"""A small runc-compatible option parser (urfave/cli conventions).

Accepted forms: ``--flag value``, ``--flag=value``, ``-f value``, ``-f=value``;
boolean flags take no value or ``=true``/``=false``.  As in runc (urfave/cli
v3), a command's flags may also follow its arguments (``update ID
--pids-limit 10``) unless the command stops at its first argument
(``exec ID cmd -x``, ``ps ID -ef``, ``kill ID KILL``); ``--`` always ends the
flags.  argparse is not used because its import and setup cost more than the
rest of a `state` call.
"""

from __future__ import annotations

from pyrunc.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class Opt:
    """One command-line option (a plain class: dataclasses costs more to import than a `state` call)."""

    __slots__ = ("dest", "names", "takes_value", "default", "multi", "help")

    def __init__(self, dest: str, names: tuple[str, ...], takes_value: bool = False,
                 default: Any = None, multi: bool = False, help: str = "") -> None:
        self.dest = dest
        self.names = names
        self.takes_value = takes_value
        self.default = default
        self.multi = multi
        self.help = help

    def _key(self) -> tuple[Any, ...]:
        return (self.dest, self.names, self.takes_value, self.default, self.multi, self.help)

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Opt) else NotImplemented

    def __hash__(self) -> int:
        return hash((self.dest, self.names))

    def __repr__(self) -> str:
        return "Opt(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def opt(dest: str, *names: str, value: bool = False, default: Any = None,
        multi: bool = False, help: str = "") -> Opt:
    """Shorthand constructor for :class:`Opt`."""
    if default is None and not value:
        default = False
    if multi and default is None:
        default = []
    return Opt(dest, names, value, default, multi, help)


_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


def parse(options: Sequence[Opt], argv: Sequence[str],
          interspersed: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Parse argv; returns (values by dest, remaining positional arguments).

    Without ``interspersed`` the flags end at the first positional argument,
    which starts the remainder; with it, flags are taken from anywhere before
    ``--`` and the positional arguments are collected in order.
    """
    by_name = {name: o for o in options for name in o.names}
    values: dict[str, Any] = {o.dest: (list(o.default) if o.multi else o.default) for o in options}
    positional: list[str] = []
    i = 0
    args = list(argv)
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return values, positional + args[i + 1:]
        if not arg.startswith("-") or arg == "-":
            if not interspersed:
                return values, args[i:]
            positional.append(arg)
            i += 1
            continue
        name, eq, inline = arg.partition("=")
        o = by_name.get(name)
        if o is None:
            raise UsageError(f"flag provided but not defined: {name}")
        if o.takes_value:
            if eq:
                value = inline
            else:
                i += 1
                if i >= len(args):
                    raise UsageError(f"flag needs an argument: {name}")
                value = args[i]
            if o.multi:
                values[o.dest].append(value)
            else:
                values[o.dest] = value
        elif eq:
            if inline.lower() in _TRUE:
                values[o.dest] = True
            elif inline.lower() in _FALSE:
                values[o.dest] = False
            else:
                raise UsageError(f"invalid boolean value {inline!r} for flag {name}")
        else:
            values[o.dest] = True
        i += 1
    return values, positional


def int_value(name: str, value: str) -> int:
    """An integer flag value, with runc's kind of error."""
    try:
        return int(value, 0)
    except ValueError:
        raise UsageError(f"invalid value {value!r} for flag {name}: parse error") from None


def usage(command: str, synopsis: str, options: Sequence[Opt]) -> str:
    """Help text for a command."""
    lines = [f"Usage: pyrunc {command} {synopsis}".rstrip(), "", "Options:"]
    for o in options:
        names = ", ".join(o.names)
        if o.takes_value:
            names += " value"
        lines.append(f"   {names:<28} {o.help}")
    return "\n".join(lines) + "\n"
