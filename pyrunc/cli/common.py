"""Pieces shared by several commands."""

from __future__ import annotations

import sys

from pyrunc.cli.args import Opt, int_value, opt
from pyrunc.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

CREATE_OPTIONS: list[Opt] = [
    opt("bundle", "--bundle", "-b", value=True, default="",
        help="path to the root of the bundle directory, defaults to the current directory"),
    opt("console_socket", "--console-socket", value=True, default="",
        help="path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    opt("pid_file", "--pid-file", value=True, default="", help="specify the file to write the process id to"),
    opt("no_pivot", "--no-pivot", help="do not use pivot root to jail process inside rootfs"),
    opt("no_new_keyring", "--no-new-keyring", help="do not create a new session keyring for the container"),
    opt("preserve_fds", "--preserve-fds", value=True, default="0",
        help="Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
    opt("pidfd_socket", "--pidfd-socket", value=True, default="", help="path to an AF_UNIX socket which will receive the pidfd of the container's init"),
]


def one_id(args: list[str], command: str) -> str:
    """The single container-id argument of a command (counted by the CLI's ARITY)."""
    if len(args) != 1:
        raise UsageError(f'pyrunc: "{command}" requires exactly 1 argument(s)')
    return args[0]


def check_supported_modes(ctx: Any) -> bool:
    """Returns whether to run rootless (``--rootless``)."""
    from pyrunc.cli.rootless import rootless_mode

    return rootless_mode(ctx.rootless)


def create_options(ctx: Any, values: dict[str, Any], detach: bool) -> Any:
    """CreateOptions from parsed create/run flags."""
    import os

    from pyrunc.runtime import CreateOptions

    rootless = check_supported_modes(ctx)
    return CreateOptions(
        bundle=values["bundle"] or os.getcwd(),
        pid_file=values["pid_file"] or None,
        console_socket=values["console_socket"] or None,
        no_pivot=values["no_pivot"],
        no_new_keyring=values["no_new_keyring"],
        preserve_fds=int_value("--preserve-fds", values["preserve_fds"]),
        detach=detach,
        pidfd_socket=values["pidfd_socket"] or None,
        rootless=rootless,
        systemd_cgroup=bool(ctx.systemd_cgroup),
    )


def print_json(doc: Any) -> None:
    """Pretty JSON on stdout, as runc prints state."""
    from pyrunc import jsonio

    sys.stdout.write(jsonio.dumps(doc, indent=2) + "\n")


def warner(ctx: Any) -> Callable[[str], None]:
    """The ``warn`` callback of a command: a warning line in the --log format.

    The log writer is imported when a warning is written, which is rare.
    """
    def warn(message: str) -> None:
        from pyrunc.cli.logmsg import log

        log(ctx, "warning", message)

    return warn
