"""pyrunc exec: run a new process inside a container."""

from __future__ import annotations

from pyrunc.cli.args import int_value, opt
from pyrunc.errors import ConfigError, ExecFailed, PyruncError
from pyrunc.jsonio import loads_file_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STOP_AT_FIRST_ARG = True
SYNOPSIS = "[command options] <container-id> <command> [command options]  || -p process.json <container-id>"
OPTIONS = [
    opt("console_socket", "--console-socket", value=True, default="", help="path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    opt("pidfd_socket", "--pidfd-socket", value=True, default="", help="path to an AF_UNIX socket which will receive the pidfd of the process"),
    opt("cwd", "--cwd", value=True, default="", help="current working directory in the container"),
    opt("env", "--env", "-e", value=True, multi=True, help="set environment variables"),
    opt("tty", "--tty", "-t", help="allocate a pseudo-TTY"),
    opt("user", "--user", "-u", value=True, default="", help="UID (format: <uid>[:<gid>])"),
    opt("additional_gids", "--additional-gids", "-g", value=True, multi=True, help="additional gids"),
    opt("process", "--process", "-p", value=True, default="", help="path to the process.json"),
    opt("detach", "--detach", "-d", help="detach from the container's process"),
    opt("pid_file", "--pid-file", value=True, default="", help="specify the file to write the process id to"),
    opt("process_label", "--process-label", value=True, default="", help="set the asm process label for the process commonly used with selinux"),
    opt("apparmor", "--apparmor", value=True, default="", help="set the apparmor profile for the process"),
    opt("no_new_privs", "--no-new-privs", help="set the no new privileges value for the process"),
    opt("cap", "--cap", "-c", value=True, multi=True, help="add a capability to the bounding set for the process"),
    opt("preserve_fds", "--preserve-fds", value=True, default="0", help="Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
    opt("cgroup", "--cgroup", value=True, multi=True, help="run the process in an (existing) sub-cgroup(s)"),
    opt("ignore_paused", "--ignore-paused", help="allow exec in a paused container"),
]


def _load_process(path: str) -> dict[str, Any]:
    from pyrunc.spec.validate import validate_config

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"open {path}: {e.strerror}") from None
    try:
        process = loads_file_bytes(raw)
    except ValueError as e:
        raise ConfigError(f"{path}: invalid JSON: {e}") from None
    # Validate as the process of a minimal config, so errors read "process.args: ...".
    validate_config({"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "process": process})
    # runc's validateProcessSpec, beyond the schema.
    if not process.get("args"):
        raise ConfigError(f"{path}: args must not be empty")
    if not str(process.get("cwd", "")).startswith("/"):
        raise ConfigError(f"{path}: cwd must be an absolute path")
    return process  # type: ignore[no-any-return]


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Exec into the container named by args[0]; any failure past the
    argument count exits 255 with "exec failed: ", as runc's does."""
    try:
        return _exec(ctx, values, args[0], args[1:])
    except (PyruncError, OSError) as e:
        raise ExecFailed(f"exec failed: {e}") from None


def _exec(ctx: Any, values: dict[str, Any], container_id: str, command: list[str]) -> int:
    from pyrunc import runtime
    from pyrunc.plan.process import exec_process_from_flags

    store = ctx.store()
    if not values["process"] and not command:
        # runc reports the container's state first.
        runtime.exec_target(store, container_id, values["ignore_paused"])
        raise ConfigError("process args cannot be empty")
    if values["process"]:
        process = _load_process(values["process"])
    else:
        record = store.load(container_id)
        process = exec_process_from_flags(
            record.config.get("process") or {}, command, env=values["env"], cwd=values["cwd"],
            user=values["user"], additional_gids=values["additional_gids"], caps=values["cap"],
            no_new_privs=values["no_new_privs"], tty=values["tty"])
    # As runc: the flags override the process spec; a profile or label this host
    # cannot apply is then refused instead of being dropped.
    if values["apparmor"]:
        process["apparmorProfile"] = values["apparmor"]
    if values["process_label"]:
        process["selinuxLabel"] = values["process_label"]
    opts = runtime.ExecOptions(
        detach=values["detach"], pid_file=values["pid_file"] or None,
        preserve_fds=int_value("--preserve-fds", values["preserve_fds"]),
        ignore_paused=values["ignore_paused"], console_socket=values["console_socket"] or None,
        cgroup=list(values["cgroup"] or ()), pidfd_socket=values["pidfd_socket"] or None)
    return runtime.exec_process(store, container_id, process, opts)
