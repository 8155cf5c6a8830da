"""pyrunc's exception types: each carries a one-line, user-facing message.

The CLI prints ``str(error)`` once and exits 1; lower layers add context on
the way up with :func:`with_context` instead of printing.
"""

from __future__ import annotations


class PyruncError(Exception):
    """Base class of every error pyrunc reports to the user."""


class ConfigError(PyruncError):
    """config.json is invalid (schema or semantic rule)."""


class ContainerError(PyruncError):
    """An operation on a container failed (state, lifecycle)."""


class CgroupError(PyruncError):
    """A cgroup operation failed; the message names the file and value."""


class UsageError(PyruncError):
    """The command line is wrong."""


def with_context(context: str, error: BaseException) -> PyruncError:
    """Return a PyruncError reading ``context: error`` (errno kept when present)."""
    wrapped = PyruncError(f"{context}: {error}")
    wrapped.errno = getattr(error, "errno", None)  # type: ignore[attr-defined]
    return wrapped
