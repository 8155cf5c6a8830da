"""--debug lines from any layer: the CLI installs a sink, the rest calls :func:`debug`.

Nothing is imported here, so the layers below the CLI can report what they do
at no cost when --debug is off (the sink is None).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

sink: Callable[[str], None] | None = None


def enabled() -> bool:
    """Whether debug lines go anywhere (skip building costly messages if not)."""
    return sink is not None


def debug(message: str) -> None:
    """Write one ``level=debug`` line when --debug is on."""
    if sink is not None:
        sink(message)
