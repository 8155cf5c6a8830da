"""The parent side of the pyrunc-init channel.

:func:`run_init` starts pyrunc-init from a sealed memfd copy, hands it the
encoded plan on a SOCK_SEQPACKET socketpair and answers its status messages
until the plan reports MSG_READY (or fails).  The wire format is
csrc/protocol.h, mirrored by :mod:`pyrunc.plan.protocol`.

This is on the hot path of every ``create``: keep the imports light.
"""

from __future__ import annotations

# The C modules under `signal` and `socket`: their Python wrappers exist to
# offer enums, which cost ~5 ms of imports on every create; the raw objects
# have everything used here.
import _signal as signal
import _socket as socket
import fcntl
import os

import pyrunc
from pyrunc import trace
from pyrunc.plan.protocol import (
    MSG_ABORT,
    MSG_ACK,
    MSG_CHILD_PID,
    MSG_ERROR,
    MSG_IDMAP_REQ,
    MSG_READY,
    MSG_SYNC,
    OP_READY,
    SYNC_MSG,
    Step,
    decode_sync,
    encode_plan,
    encode_sync,
)
from pyrunc.plan.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

# PYRUNC_INIT_BINARY replaces the packaged binary (tests run a sanitizer
# build of pyrunc-init this way); it is still copied into a sealed memfd.
INIT_PATH = os.environ.get("PYRUNC_INIT_BINARY") or \
    os.path.join(os.path.dirname(pyrunc.__file__), "libexec", "pyrunc-init")

F_SEAL_EXEC = 0x20  # Linux 6.3; older kernels reject it with EINVAL
_BASE_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
_PASSED_ENV = ("PYRUNC_INIT_NO_OPENAT2", "PYRUNC_INIT_PROCFS", "ASAN_OPTIONS", "UBSAN_OPTIONS")
_SNDBUF_SLACK = 64 << 10


class InitError(Exception):
    """pyrunc-init reported a failure, or died without reporting one."""

    def __init__(self, index: int, step: Step | None, errno: int, text: str,
                 status: int | None = None):
        self.index = index
        self.step = step
        self.errno = errno
        self.text = text
        self.status = status
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.status is not None or (self.index == -1 and not self.errno):
            return self.text
        reason = os.strerror(self.errno)
        if self.index == -1:
            return f"pyrunc-init: invalid plan: {self.text + ': ' if self.text else ''}{reason}"
        what = self.step.what if self.step is not None and self.step.what else \
            f"step {self.index}" + (f" (op {self.step.op})" if self.step is not None else "")
        detail = f"{self.text}: " if self.text and self.text not in what else ""
        return f"{what}: {detail}{reason}"


class Launched(Record):
    """A container init that finished its plan up to MSG_READY."""

    __slots__ = ("pid", "sock")

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid  # host pid of the container init (stage B)
        self.sock = sock  # parent end of the sync socket; the caller closes it


def _sealed_copy(path: str = INIT_PATH) -> int:
    """A sealed, close-on-exec memfd holding a copy of pyrunc-init."""
    fd = os.memfd_create("pyrunc-init", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        with open(path, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            copied = 0
            while copied < size:
                n = os.sendfile(fd, src.fileno(), copied, size - copied)
                if n == 0:
                    raise OSError(f"{path}: short read")
                copied += n
        try:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _BASE_SEALS | F_SEAL_EXEC)
        except OSError:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _BASE_SEALS)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _default_env() -> dict[str, str]:
    return {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}


def _spawn(exe_fd: int, sync_fd: int, inherit_fds: Sequence[int],
           env: Mapping[str, str] | None) -> int:
    from pyrunc._shim import ffi, lib

    full_env = dict(_default_env() if env is None else env)
    full_env["PYRUNC_SYNC_FD"] = str(sync_fd)
    keep = [ffi.new("char[]", b"pyrunc-init")]
    keep += [ffi.new("char[]", f"{k}={v}".encode()) for k, v in full_env.items()]
    argv = ffi.new("char *[]", [keep[0], ffi.NULL])
    envp = ffi.new("char *[]", keep[1:] + [ffi.NULL])

    fds = [sync_fd, *inherit_fds]
    before = [os.get_inheritable(fd) for fd in fds]
    try:
        for fd in fds:
            os.set_inheritable(fd, True)
        passed = sorted(set(fds))
        pid = lib.pyrunc_spawn(exe_fd, argv, envp, ffi.new("int[]", passed), len(passed))
    finally:
        for fd, was in zip(fds, before):
            os.set_inheritable(fd, was)
    if pid < 0:
        raise OSError(-pid, f"spawning pyrunc-init: {os.strerror(-pid)}")
    return pid


# SO_SNDBUFFORCE from <asm-generic/socket.h>; Python's socket module lacks it.
_SO_SNDBUFFORCE = 32


def _send_plan(sock: socket.socket, plan: bytes) -> None:
    # A SEQPACKET message must fit in the sender's buffer in one piece.
    need = len(plan) + _SNDBUF_SLACK
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < need:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, need)
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < need:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE, need)
            except OSError:
                pass  # send() reports EMSGSIZE if it still does not fit
    sock.sendall(plan)


class _Session:
    """Bookkeeping of one launch: which processes exist and their state."""

    def __init__(self, steps: Sequence[Step], sock: socket.socket, pid_a: int):
        self.steps = steps
        self.sock = sock
        self.pid_a = pid_a
        self.a_status: int | None = None
        self.child: int | None = None
        self.child_pidfd: int | None = None
        self.talked = False  # a message came from pyrunc-init

    def reap_a(self) -> int | None:
        if self.a_status is None:
            try:
                _, status = os.waitpid(self.pid_a, 0)
            except ChildProcessError:
                return None
            self.a_status = os.waitstatus_to_exitcode(status)
        return self.a_status

    def got_child(self, pid: int) -> None:
        self.child = pid
        try:
            self.child_pidfd = os.pidfd_open(pid)
        except OSError:
            self.child_pidfd = None
        self.reap_a()

    def ack(self) -> None:
        self.send(encode_sync(MSG_ACK))

    def send(self, message: bytes) -> None:
        try:
            _send_plan(self.sock, message)
        except ConnectionError:
            raise self.eof_error() from None

    def recv(self) -> bytes:
        try:
            return self.sock.recv(SYNC_MSG.size * 2)
        except ConnectionError:
            return b""

    def step_of(self, index: int) -> Step | None:
        return self.steps[index] if 0 <= index < len(self.steps) else None

    def eof_error(self) -> InitError:
        status = self.reap_a() if self.child is None else self.reap_child()
        shown = "unknown" if status is None else str(status)
        if status in (126, 127) and self.child is None and not self.talked:
            # pyrunc_spawn's child exits 127 when execveat itself fails, 126
            # when it could not close the fds pyrunc-init must not get.
            shown += ": pyrunc-init could not be executed"
        return InitError(-1, None, 0, f"container init exited unexpectedly (status {shown})",
                         status=-1 if status is None else status)

    def reap_child(self) -> int | None:
        """Reap the container init when it is our child (we are its subreaper)."""
        try:
            _, status = os.waitpid(self.child, 0)
        except ChildProcessError:
            return None
        return os.waitstatus_to_exitcode(status)

    def abort(self) -> None:
        """Stop whatever is still running after a failure on our side."""
        try:
            self.sock.send(encode_sync(MSG_ABORT), socket.MSG_DONTWAIT)
        except OSError:
            pass
        if self.child_pidfd is not None:
            try:
                signal.pidfd_send_signal(self.child_pidfd, signal.SIGKILL)
            except OSError:
                pass
        if self.a_status is None:
            try:
                os.kill(self.pid_a, signal.SIGKILL)
            except OSError:
                pass
        self.reap_a()

    def close(self) -> None:
        if self.child_pidfd is not None:
            os.close(self.child_pidfd)
            self.child_pidfd = None


def _report_done(s: _Session, pid: int) -> None:
    """--debug: the steps pyrunc-init carried out before it reported ready."""
    ready = next((i for i, st in enumerate(s.steps) if st.op == OP_READY), len(s.steps))
    for i, st in enumerate(s.steps[:ready]):
        trace.debug(f"pyrunc-init[{pid}]: step {i}: {st.what or f'op {st.op}'}: done")
    trace.debug(f"pyrunc-init[{pid}]: ready; {max(len(s.steps) - ready - 1, 0)} step(s) left "
                "for the process start")


def _converse(s: _Session, on_idmap, on_sync) -> Launched:
    while True:
        data = s.recv()
        if not data:
            raise s.eof_error()
        kind, index, err, value, text = decode_sync(data)
        s.talked = True
        if trace.sink is not None:
            _trace_message(s, kind, index, value)
        if kind == MSG_IDMAP_REQ:
            if on_idmap is not None:
                on_idmap(value)
            s.ack()
        elif kind == MSG_CHILD_PID:
            s.got_child(value)
        elif kind == MSG_SYNC:
            replies = on_sync(value, s.child if s.child is not None else s.pid_a) \
                if on_sync is not None else None
            for reply in replies or ():
                s.send(reply)
            s.ack()
        elif kind == MSG_READY:
            return Launched(s.child if s.child is not None else s.pid_a, s.sock)
        elif kind == MSG_ERROR:
            if s.child is None:
                s.reap_a()
            else:
                s.reap_child()
            raise InitError(index, s.step_of(index), err, text)
        else:
            raise InitError(-1, None, 0, f"pyrunc-init: unexpected message type {kind}")


def await_exec(launched: Launched, steps: Sequence[Step] = ()) -> None:
    """After MSG_READY of a plan without a start wait (exec): block until the init
    execs the user's program (its end of the socket closes) or fails a last step.

    A failure is raised as InitError naming the step: without this wait the
    init's report would go to a closed socket and the caller learn nothing.
    """
    while True:
        try:
            data = launched.sock.recv(SYNC_MSG.size * 2)
        except ConnectionError:
            return
        if not data:
            return
        kind, index, err, _value, text = decode_sync(data)
        if kind == MSG_ERROR:
            try:
                os.waitpid(launched.pid, 0)
            except ChildProcessError:
                pass
            step = steps[index] if 0 <= index < len(steps) else None
            raise InitError(index, step, err, text)


def _trace_message(s: _Session, kind: int, index: int, value: int) -> None:
    """--debug: one line per message from pyrunc-init (runc forwards nsexec's)."""
    pid = s.child if s.child is not None else s.pid_a
    if kind == MSG_IDMAP_REQ:
        trace.debug(f"pyrunc-init[{value}]: new user namespace, asks for its uid/gid maps")
    elif kind == MSG_CHILD_PID:
        trace.debug(f"pyrunc-init[{s.pid_a}]: forked the container init, pid {value}")
    elif kind == MSG_SYNC:
        trace.debug(f"pyrunc-init[{pid}]: sync point {value}")
    elif kind == MSG_READY:
        _report_done(s, pid)
    elif kind == MSG_ERROR:
        step = s.step_of(index)
        trace.debug(f"pyrunc-init[{pid}]: step {index}"
                    f"{': ' + step.what if step is not None and step.what else ''}: failed")


def run_encoded(plan: bytes, steps: Sequence[Step] = (), *,
                inherit_fds: Sequence[int] = (),
                before_plan: Callable[[int], None] | None = None,
                on_idmap: Callable[[int], None] | None = None,
                on_sync: Callable[[int, int], Sequence[bytes] | None] | None = None,
                env: Mapping[str, str] | None = None) -> Launched:
    """:func:`run_init` for an already encoded (possibly hand-made) plan.

    STEPS only serve to word errors; they need not match PLAN.
    """
    exe_fd = _sealed_copy()
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        pid_a = _spawn(exe_fd, child.fileno(), inherit_fds, env)
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
        os.close(exe_fd)
    session = _Session(steps, parent, pid_a)
    trace.debug(f"pyrunc-init[{pid_a}]: started from a sealed memfd; plan of {len(steps)} "
                f"step(s), {len(plan)} bytes")
    try:
        if before_plan is not None:
            before_plan(pid_a)
        try:
            _send_plan(parent, plan)
        except ConnectionError:
            raise session.eof_error() from None
        launched = _converse(session, on_idmap, on_sync)
    except InitError:
        session.close()
        parent.close()
        raise
    except BaseException:
        session.abort()
        session.close()
        parent.close()
        raise
    session.close()
    return launched


def run_init(steps: Sequence[Step], *,
             inherit_fds: Sequence[int] = (),
             before_plan: Callable[[int], None] | None = None,
             on_idmap: Callable[[int], None] | None = None,
             on_sync: Callable[[int, int], Sequence[bytes] | None] | None = None,
             env: Mapping[str, str] | None = None) -> Launched:
    """Start pyrunc-init, run STEPS up to MSG_READY and return the init.

    Callbacks: ``before_plan(pid)`` right after the spawn (join cgroups),
    ``on_idmap(pid)`` when a user namespace needs its uid/gid maps,
    ``on_sync(n, pid)`` at each OP_SYNC (the messages it returns are sent
    before the ACK: MSG_HOOK_STATE for the hooks sync).  When one raises, the init is
    told to abort and killed, and the exception propagates.
    """
    return run_encoded(encode_plan(steps), steps, inherit_fds=inherit_fds,
                       before_plan=before_plan, on_idmap=on_idmap, on_sync=on_sync, env=env)


__all__ = ["INIT_PATH", "InitError", "Launched", "await_exec", "run_encoded", "run_init"]
