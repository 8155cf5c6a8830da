"""The host side of SCMP_ACT_NOTIFY: the listener socket and the process state.

listenerPath is a host path, so the parent connects to it before pyrunc-init
starts and passes the connected socket down.  The state that goes with the
notify fd names the container process's host pid, known only once the init
has forked; the parent writes it into a memfd at OP_SYNC(SYNC_SECCOMP), and
pyrunc-init sends its bytes with the notify fd in one message as soon as the
filter is loaded (the way runc's parent does it, data and fd together).
"""

from __future__ import annotations

import fcntl
import os

from pyrunc.errors import PyruncError
from pyrunc.plan.protocol import SYNC_SECCOMP

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping, Sequence

    SyncHandler = Callable[[int, int], "Sequence[bytes] | None"]


class Listener:
    """A connection to the seccomp agent plus the state file pyrunc-init reads."""

    def __init__(self, path: str, lowest_fd: int):
        import socket  # only configs with a listener pay for it

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            raise PyruncError(f"linux.seccomp.listenerPath: failed to connect with seccomp agent "
                              f"\"{path}\": {e.strerror}") from None
        state = os.memfd_create("seccomp-state", os.MFD_CLOEXEC)
        try:
            # Above the fds the container keeps, so the final fd sweep covers them.
            self.sock_fd = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, lowest_fd)
            self.state_fd = fcntl.fcntl(state, fcntl.F_DUPFD_CLOEXEC, lowest_fd)
        finally:
            sock.close()
            os.close(state)

    @property
    def fds(self) -> tuple[int, int]:
        """(listener socket, state file) as inherited by pyrunc-init."""
        return self.sock_fd, self.state_fd

    def write_state(self, data: bytes) -> None:
        """Replace the state file's content."""
        os.ftruncate(self.state_fd, 0)
        os.pwrite(self.state_fd, data, 0)

    def sync_handler(self, state_for: Callable[[int], bytes],
                     other: SyncHandler | None) -> SyncHandler:
        """An on_sync callback: SYNC_SECCOMP is ours, every other point goes to OTHER."""
        def on_sync(point: int, pid: int) -> Sequence[bytes] | None:
            if point == SYNC_SECCOMP:
                self.write_state(state_for(pid))
                return None
            return other(point, pid) if other is not None else None
        return on_sync

    def close(self) -> None:
        """Our copies only: pyrunc-init holds its own until it has sent the fd."""
        for fd in self.fds:
            os.close(fd)


def open_listener(seccomp: Mapping[str, Any] | None, lowest_fd: int) -> Listener | None:
    """A Listener when the profile has SCMP_ACT_NOTIFY rules, else None."""
    from pyrunc.plan.seccomp import uses_listener

    if not seccomp or not uses_listener(seccomp):
        return None
    return Listener(str(seccomp["listenerPath"]), lowest_fd)
