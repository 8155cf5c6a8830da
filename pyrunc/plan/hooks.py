"""OCI hooks -> plan steps and the state documents hooks read (pure).

Where each kind runs (runtime-spec config.md "POSIX-platform Hooks" and
runtime.md "Lifecycle"), in runc's places:

  prestart, createRuntime   parent, runtime namespaces: at the OP_SYNC(SYNC_HOOKS)
                            that comes after the container's mounts and before
                            the root change (hooks such as GPU or network
                            set-up need the container's /dev and mounts to exist)
  createContainer           OP_HOOK steps right after that sync, in the container's
                            namespaces, before pivot_root (the path resolves in the
                            container's mount namespace, still showing host paths)
  startContainer            OP_HOOK steps after `start` opened exec.fifo, last before
                            exec (see with_start_hooks); the init answers the fifo
                            after them, so `start` can report a failure
  poststart                 parent, after `start` saw the process go on to exec
  poststop                  parent, at `delete`, after the container was destroyed

The init's host pid is only known once it exists, so the state documents of
createContainer ("creating") and startContainer ("created") are sent to
pyrunc-init at the sync (protocol.h, "Hooks").
"""

from __future__ import annotations

from pyrunc.jsonio import dumps_compact
from pyrunc.plan import protocol as P

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence

RUNTIME_KINDS = ("prestart", "createRuntime")
CONTAINER_KINDS = ("createContainer", "startContainer")

_SLOT = {"createContainer": 0, "startContainer": 1}
_KIND_CODE = {"createContainer": P.HOOK_CREATE_CONTAINER,
              "startContainer": P.HOOK_START_CONTAINER}


def hooks_of(config: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    """The hooks of one kind in a config, in order."""
    return list((config.get("hooks") or {}).get(kind) or ())


def hook_argv(hook: Mapping[str, Any]) -> list[str]:
    """argv of a hook: its args, or just its path when it has none (as exec does)."""
    return [str(a) for a in hook.get("args") or ()] or [str(hook["path"])]


def hook_step(hook: Mapping[str, Any], kind: str, index: int) -> P.Step:
    """One OP_HOOK for a createContainer or startContainer hook."""
    path = str(hook["path"])
    args = [str(a) for a in hook.get("args") or ()]
    env = [str(e) for e in hook.get("env") or ()]
    return P.step(P.OP_HOOK, int(hook.get("timeout") or 0), len(args), len(env), _SLOT[kind],
                  _KIND_CODE[kind], index, strs=(path, *args, *env),
                  what=f'run {kind} hook #{index} "{path}"')


def needs_hook_sync(config: Mapping[str, Any]) -> bool:
    """Whether the plan needs the hooks sync point (any hook before the process starts)."""
    return any(hooks_of(config, k) for k in (*RUNTIME_KINDS, *CONTAINER_KINDS))


def before_root_change_steps(config: Mapping[str, Any]) -> list[P.Step]:
    """The hooks sync and the createContainer hooks; placed just before pivot_root."""
    if not needs_hook_sync(config):
        return []
    steps = [P.step(P.OP_SYNC, P.SYNC_HOOKS, P.HOOK_STATE_SLOTS,
                    what="run prestart and createRuntime hooks")]
    steps += [hook_step(h, "createContainer", i)
              for i, h in enumerate(hooks_of(config, "createContainer"))]
    return steps


def wait_start_steps(config: Mapping[str, Any], fifo_fd: int) -> list[P.Step]:
    """Waiting for `start`; the fifo stays unanswered until the process is about to exec.

    Holding it means a failure of any later step (a hook, setgroups, the
    capabilities, the cwd...) reaches `start` as an error line instead of the
    container just exiting 1 with nobody told why.
    """
    del config  # the same for every config; kept for the call sites' symmetry
    return [P.step(P.OP_WAIT_START, fifo_fd, P.WAIT_F_HOLD, what="wait for start (exec.fifo)")]


def with_start_hooks(config: Mapping[str, Any], process_steps: Sequence[P.Step],
                     fifo_held: bool) -> list[P.Step]:
    """process_steps with the startContainer hooks (and the fifo answer) put last before exec.

    As in runc they run with the process's ids, capabilities and
    no_new_privs (the program comes from the container's root), under the
    seccomp filter that plan/seccomp.py places right before them.  Until
    the fifo is answered any failure, theirs or an earlier step's, is
    reported by `start`.
    """
    hooks = [hook_step(h, "startContainer", i)
             for i, h in enumerate(hooks_of(config, "startContainer"))]
    if not hooks and not fifo_held:
        return list(process_steps)
    if fifo_held:
        hooks.append(P.step(P.OP_WAIT_START, 0, P.WAIT_F_RELEASE,
                            what="answer start (exec.fifo)"))
    steps = list(process_steps)
    at = next((i for i, s in enumerate(steps) if s.op == P.OP_EXEC), len(steps))
    return steps[:at] + hooks + steps[at:]


def state_document(oci_version: str, container_id: str, status: str, pid: int, bundle: str,
                   annotations: Mapping[str, str] | None) -> dict[str, Any]:
    """The runtime-spec state a hook reads on stdin (pid left out when 0, as runc does)."""
    doc: dict[str, Any] = {"ociVersion": oci_version, "id": container_id, "status": status}
    if pid:
        doc["pid"] = pid
    doc["bundle"] = bundle
    if annotations:
        doc["annotations"] = dict(annotations)
    return doc


def encode_state(doc: Mapping[str, Any]) -> bytes:
    """The state as the bytes a hook reads."""
    return dumps_compact(doc).encode()


def container_states(oci_version: str, container_id: str, pid: int, bundle: str,
                     annotations: Mapping[str, str] | None) -> Sequence[bytes]:
    """The MSG_HOOK_STATE payloads of the hooks sync, by slot."""
    return [encode_state(state_document(oci_version, container_id, status, pid, bundle,
                                        annotations))
            for status in ("creating", "created")]
