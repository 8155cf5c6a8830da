"""pyrunc's exception types: each carries a one-line, user-facing message.

The CLI prints ``str(error)`` once and exits 1; lower layers add context on
the way up with :func:`with_context` instead of printing.
"""

from __future__ import annotations


class PyruncError(Exception):
    """Base class of every error pyrunc reports to the user."""

    #: The CLI's exit status when this error ends a command.
    exit_status = 1


class ConfigError(PyruncError):
    """config.json is invalid (schema or semantic rule)."""


class ContainerError(PyruncError):
    """An operation on a container failed (state, lifecycle)."""


class CgroupError(PyruncError):
    """A cgroup operation failed; the message names the file and value."""


class UsageError(PyruncError):
    """The command line is wrong."""


class ExecFailed(PyruncError):
    """`exec` failed after its arguments were accepted: runc reports that
    with an "exec failed: " prefix and exit status 255, which engines rely
    on to tell it from the exit status of the exec'd process."""

    exit_status = 255


def with_context(context: str, error: BaseException) -> PyruncError:
    """Return a PyruncError reading ``context: error`` (errno kept when present)."""
    wrapped = PyruncError(f"{context}: {error}")
    wrapped.errno = getattr(error, "errno", None)  # type: ignore[attr-defined]
    return wrapped
