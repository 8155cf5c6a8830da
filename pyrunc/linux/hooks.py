"""Hooks that run in the runtime namespaces: prestart, createRuntime, poststart, poststop.

Each hook gets the container's state JSON on stdin, exactly its own argv and
environment, no inherited fds beyond stdio, and its output is kept (in
files, not pipes: a hook that leaves a daemon behind holding its stdout must
not hang the runtime) to explain a failure.  Imported only by the commands
that run hooks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile

from pyrunc.errors import PyruncError
from pyrunc.plan.hooks import hook_argv

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping, Sequence

_OUTPUT_TAIL = 256


class HookError(PyruncError):
    """A hook could not be run, failed or timed out."""


def _tail(data: bytes) -> str:
    text = data[-_OUTPUT_TAIL:].decode(errors="replace")
    return " ".join(text.split())


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_hook(hook: Mapping[str, Any], kind: str, index: int, state: bytes) -> None:
    """Run one hook to completion; raises HookError when it does not succeed."""
    path = str(hook["path"])
    label = f"error running {kind} hook #{index} ({path})"
    env = {}
    for item in hook.get("env") or ():
        key, _, value = str(item).partition("=")
        env[key] = value
    timeout = hook.get("timeout")
    with tempfile.TemporaryFile() as out:
        try:
            # Its own process group: a timeout kills what the hook started too.
            proc = subprocess.Popen(hook_argv(hook), executable=path, stdin=subprocess.PIPE,
                                    stdout=out, stderr=out, env=env, close_fds=True,
                                    start_new_session=True)
        except OSError as e:
            raise HookError(f"{label}: {e.strerror or e}") from None
        try:
            proc.communicate(state, timeout=timeout or None)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise HookError(f"{label}: timed out after {timeout} s") from None
        except BaseException:
            _kill_group(proc)
            raise
        if proc.returncode == 0:
            return
        out.seek(0)
        detail = _tail(out.read())
    how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
           else f"exit status {proc.returncode}")
    raise HookError(f"{label}: {how}" + (f": {detail}" if detail else ""))


def run_hooks(hooks: Sequence[Mapping[str, Any]], kind: str, state: bytes) -> None:
    """Run hooks of one kind in order; the first failure stops them (HookError)."""
    for index, hook in enumerate(hooks):
        run_hook(hook, kind, index, state)


def run_hooks_warning(hooks: Sequence[Mapping[str, Any]], kind: str, state: bytes) -> list[str]:
    """Run every hook of one kind; failures become messages (poststop: warn, go on)."""
    problems = []
    for index, hook in enumerate(hooks):
        try:
            run_hook(hook, kind, index, state)
        except HookError as e:
            problems.append(str(e))
    return problems


def _state(config: Mapping[str, Any], container_id: str, status: str, pid: int,
           bundle: str) -> bytes:
    from pyrunc import OCI_VERSION
    from pyrunc.plan.hooks import encode_state, state_document

    return encode_state(state_document(OCI_VERSION, container_id, status, pid, bundle,
                                       config.get("annotations")))


def create_sync(config: Mapping[str, Any], container_id: str,
                bundle: str) -> Callable[[int, int], list[bytes] | None]:
    """The on_sync callback of `create`: prestart and createRuntime hooks, then the states."""
    from pyrunc import OCI_VERSION
    from pyrunc.plan.hooks import container_states, hooks_of
    from pyrunc.plan.protocol import SYNC_HOOKS, encode_hook_state

    def on_sync(value: int, pid: int) -> list[bytes] | None:
        if value != SYNC_HOOKS:
            return None
        creating = _state(config, container_id, "creating", pid, bundle)
        for kind in ("prestart", "createRuntime"):
            run_hooks(hooks_of(config, kind), kind, creating)
        return [encode_hook_state(s) for s in container_states(
            OCI_VERSION, container_id, pid, bundle, config.get("annotations"))]

    return on_sync


def poststart(config: Mapping[str, Any], container_id: str, pid: int, bundle: str) -> None:
    """The poststart hooks of a started container (HookError on the first failure)."""
    from pyrunc.plan.hooks import hooks_of

    hooks = hooks_of(config, "poststart")
    if hooks:
        run_hooks(hooks, "poststart", _state(config, container_id, "running", pid, bundle))


def poststop(config: Mapping[str, Any], container_id: str, bundle: str) -> list[str]:
    """Run every poststop hook; returns the failures as warning messages."""
    from pyrunc.plan.hooks import hooks_of

    hooks = hooks_of(config, "poststop")
    if not hooks:
        return []
    return run_hooks_warning(hooks, "poststop", _state(config, container_id, "stopped", 0, bundle))
