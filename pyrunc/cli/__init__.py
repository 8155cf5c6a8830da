"""pyrunc's command line: global flags, dispatch, and the one place that prints errors.

Each command lives in its own module ``pyrunc.cli.<name>`` exporting
``SYNOPSIS``, ``SUMMARY``, ``OPTIONS`` (a list of :class:`~pyrunc.cli.args.Opt`)
and ``run(ctx, values, args) -> int``.  Modules are imported only when their
command is used.
"""

from __future__ import annotations

import os
import sys

from pyrunc import OCI_VERSION, __version__
from pyrunc.cli.args import Opt, opt, parse, usage
from pyrunc.errors import PyruncError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

COMMANDS = {
    "checkpoint": "checkpoint a running container",
    "create": "create a container",
    "delete": "delete any resources held by the container often used with detached container",
    "events": "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
    "exec": "execute new process inside the container",
    "features": "show the enabled features",
    "kill": "kill sends the specified signal (default: SIGTERM) to the container's init process",
    "list": "lists containers started by pyrunc with the given root",
    "pause": "pause suspends all processes inside the container",
    "ps": "ps displays the processes running inside a container",
    "restore": "restore a container from a previous checkpoint",
    "resume": "resumes all processes that have been previously paused",
    "run": "create and run a container",
    "spec": "create a new specification file",
    "start": "executes the user defined process in a created container",
    "state": "output the state of a container",
    "update": "update container resource constraints",
}

GLOBAL_OPTIONS = [
    opt("debug", "--debug", help="enable debug logging"),
    opt("log", "--log", value=True, default="", help="set the log file to write pyrunc logs to (default is '/dev/stderr')"),
    opt("log_format", "--log-format", value=True, default="text", help="set the log format ('text' (default), or 'json')"),
    opt("root", "--root", value=True, default="", help="root directory for storage of container state (default: \"/run/pyrunc\" or \"$XDG_RUNTIME_DIR/pyrunc\" for rootless containers)"),
    opt("criu", "--criu", value=True, default="criu", help="(obsolete, ignored)"),
    opt("systemd_cgroup", "--systemd-cgroup", help="enable systemd cgroup support"),
    opt("rootless", "--rootless", value=True, default="auto", help="ignore cgroup permission errors ('true', 'false', or 'auto')"),
    opt("help", "--help", "-h", help="show help"),
    opt("version", "--version", "-v", help="print the version"),
]


class Context:
    """Global flags, shared by every command."""

    __slots__ = ("root", "log", "log_format", "debug", "systemd_cgroup", "rootless")

    def __init__(self, root: str, log: str, log_format: str, debug: bool,
                 systemd_cgroup: bool, rootless: str) -> None:
        self.root = root
        self.log = log
        self.log_format = log_format
        self.debug = debug
        self.systemd_cgroup = systemd_cgroup
        self.rootless = rootless

    def __repr__(self) -> str:
        return "Context(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    def store(self):  # type: ignore[no-untyped-def]
        """The state store under --root."""
        from pyrunc.state.store import Store

        return Store(self.root)


def version_text() -> str:
    """runc's three-line version shape."""
    return f"pyrunc version {__version__}\ncommit: v{__version__}\nspec: {OCI_VERSION}\n"


def main_help() -> str:
    """Top-level help text."""
    lines = ["NAME:", "   pyrunc - Open Container Initiative runtime", "",
             "USAGE:", "   pyrunc [global options] command [command options] [arguments...]", "",
             "COMMANDS:"]
    lines += [f"   {name:<12}{text}" for name, text in sorted(COMMANDS.items())]
    lines += ["", "GLOBAL OPTIONS:"]
    for o in GLOBAL_OPTIONS:
        lines.append(f"   {', '.join(o.names):<20} {o.help}")
    return "\n".join(lines) + "\n"


_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


def _log_error(ctx: Context | None, message: str) -> None:
    """Print the error once on stderr and, with --log, append it to the log file."""
    # One line whatever the message echoes back (a flag value, a file name).
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    sys.stderr.write(message + "\n")
    if ctx is None or not ctx.log:
        return
    from pyrunc.logs import format_line

    try:
        fd = os.open(ctx.log, _LOG_FLAGS, 0o644)
    except OSError:
        return
    try:
        os.write(fd, format_line("error", message, ctx.log_format).encode())
    finally:
        os.close(fd)


def _create_log(path: str) -> None:
    """Create the --log file (empty) on every call, as runc does.

    Engines look for the file after each call; an unusable path is not an
    error in itself (messages then go to stderr).
    """
    try:
        os.close(os.open(path, _LOG_FLAGS, 0o644))
    except OSError:
        pass


# How many arguments each command takes, as runc's checkArgs counts them:
# (minimum, maximum), None for no bound.
ARITY: dict[str, tuple[int, int | None]] = {
    "checkpoint": (1, 1), "create": (1, 1), "delete": (1, 1), "events": (1, 1),
    "exec": (1, None), "features": (0, 0), "kill": (1, 2), "list": (0, 0), "pause": (1, 1),
    "ps": (1, None), "restore": (1, 1), "resume": (1, 1), "run": (1, 1), "spec": (0, 0),
    "start": (1, 1), "state": (1, 1), "update": (1, 1),
}


def arity_error(name: str, count: int) -> str | None:
    """runc's wording when ``count`` arguments do not fit command ``name``."""
    low, high = ARITY.get(name, (0, None))
    if low == high and count != low:
        return f'pyrunc: "{name}" requires exactly {low} argument(s)'
    if count < low:
        return f'pyrunc: "{name}" requires a minimum of {low} argument(s)'
    if high is not None and count > high:
        return f'pyrunc: "{name}" requires a maximum of {high} argument(s)'
    return None


def run_command(argv: Sequence[str]) -> int:
    """Parse argv (without the program name) and run the command; returns the exit status."""
    ctx: Context | None = None
    try:
        values, rest = parse(GLOBAL_OPTIONS, argv)
        root = values["root"]
        if not root:
            if os.geteuid() == 0 and not os.environ.get("XDG_RUNTIME_DIR"):
                root = "/run/pyrunc"
            else:
                from pyrunc.cli.rootless import default_root

                root = default_root()
        ctx = Context(root, values["log"], values["log_format"], values["debug"],
                      values["systemd_cgroup"], values["rootless"])
        if ctx.log_format not in ("text", "json"):
            raise UsageError(f"invalid log-format: {ctx.log_format}")
        if ctx.log:
            _create_log(ctx.log)
        if ctx.debug:
            from pyrunc.cli.logmsg import install_debug

            install_debug(ctx)
        if values["version"]:
            sys.stdout.write(version_text())
            return 0
        if values["help"] or not rest or rest[0] == "help":
            sys.stdout.write(main_help())
            return 0
        name, cmd_argv = rest[0], rest[1:]
        if name not in COMMANDS:
            raise UsageError(f"No help topic for '{name}'")
        # __import__ rather than importlib.import_module: the importlib package
        # (and the warnings module it loads) would be one more import per call.
        module_name = f"pyrunc.cli.{name.replace('-', '_')}_cmd"
        __import__(module_name)
        module = sys.modules[module_name]
        options: list[Opt] = [*module.OPTIONS, opt("help", "--help", "-h", help="show help")]
        # runc's exec, ps and kill stop at their first argument (the rest is
        # the process's command line, ps's options or a signal such as -9).
        cmd_values, cmd_args = parse(options, cmd_argv,
                                     interspersed=not getattr(module, "STOP_AT_FIRST_ARG", False))
        asked = cmd_values.pop("help")
        wrong = None if asked else arity_error(name, len(cmd_args))
        if asked or wrong is not None:
            help_text = f"{COMMANDS[name]}\n\n" + usage(name, module.SYNOPSIS, options)
            if wrong is None:
                sys.stdout.write(help_text)
                return 0
            # As runc: the command's help on stdout, the error on stderr/--log.
            sys.stdout.write("Incorrect Usage.\n\n" + help_text)
            raise UsageError(wrong)
        return int(module.run(ctx, cmd_values, cmd_args))
    except PyruncError as e:
        _log_error(ctx, str(e))
        return e.exit_status
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        # Anything unexpected still ends in one line, errno and path kept.
        _log_error(ctx, str(e))
        return 1


def main() -> None:
    """Console entry point."""
    sys.exit(run_command(sys.argv[1:]))
