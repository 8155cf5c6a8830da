"""--pidfd-socket: hand a pidfd of the container process to the caller.

The receiver (go-runc's pidfd socket, for instance) reads one message whose
data is a name and whose control data is exactly one SCM_RIGHTS fd, the
same framing as the console socket.
"""

from __future__ import annotations

import os
import socket

from pyrunc.errors import PyruncError


def send_pidfd(path: str, pid: int) -> None:
    """Connect to the unix socket at path and send a pidfd of pid over it."""
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    except OSError as e:
        raise PyruncError(f"pidfd socket: {e.strerror}") from None
    try:
        try:
            sock.connect(path)
        except OSError as e:
            raise PyruncError(f"connect to pidfd socket {path}: {e.strerror}") from None
        try:
            pidfd = os.pidfd_open(pid)
        except OSError as e:
            raise PyruncError(f"pidfd_open {pid}: {e.strerror}") from None
        try:
            socket.send_fds(sock, [b"pidfd"], [pidfd])
        except OSError as e:
            raise PyruncError(f"send pidfd to {path}: {e.strerror}") from None
        finally:
            os.close(pidfd)
    finally:
        sock.close()
