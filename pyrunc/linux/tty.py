"""Console sockets and the foreground terminal relay.

pyrunc-init creates the pty inside the container and sends its master over
a unix stream socket (OP_CONSOLE).  With ``--console-socket`` that socket
belongs to the caller (containerd's shim, conmon, recvtty); pyrunc only
connects to the path, on the host, and hands the connected fd down.  In the
foreground (``run``/``exec`` with a terminal and no socket) pyrunc keeps the
other end of a socketpair, receives the master itself and copies between it
and its own stdio, like runc.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios

from pyrunc.errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NAME_MAX = 4096
# After the process exits, the pty may still hold output the kernel has not
# pushed to the master yet; wait this long for more before giving up.
_DRAIN_IDLE = 0.2


def connect_console_socket(path: str) -> socket.socket:
    """Connect to the caller's console socket (a host path; reachable only from here)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise PyruncError(f"connect to console socket {path}: {e.strerror}") from None
    return sock


def fd_at_or_above(sock: socket.socket, lowest: int) -> int:
    """A close-on-exec duplicate of sock's fd numbered >= lowest (clear of preserved fds)."""
    return fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, lowest)


def recv_master(sock: socket.socket) -> tuple[int, str]:
    """Receive (master fd, pty name) as go-runc and recvtty read it."""
    try:
        name, fds, _flags, _addr = socket.recv_fds(sock, _NAME_MAX, 1)
    except OSError as e:
        raise PyruncError(f"receive the console master: {e.strerror}") from None
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise PyruncError("receive the console master: no file descriptor received")
    return fds[0], name.decode(errors="replace")


def clear_onlcr(fd: int) -> None:
    """Stop the pty turning "\\n" into "\\r\\n" (runc does this on the master)."""
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _host_terminal() -> int | None:
    for fd in (0, 1, 2):
        if os.isatty(fd):
            return fd
    return None


def copy_winsize(src: int, dst: int) -> None:
    """Give dst the window size of the terminal src."""
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except OSError:
            return False
        view = view[n:]
    return True


class TerminalRelay:
    """Copy between pyrunc's stdio and a pty master until the process exits.

    While it runs, the caller's terminal (if stdin is one) is in raw mode and
    SIGWINCH resizes the pty instead of being forwarded; :meth:`close`
    restores both.
    """

    def __init__(self, master: int) -> None:
        self.master = master
        self.host = _host_terminal()
        self.saved: list[Any] | None = None
        self.old_winch: Any = None

    def start(self) -> None:
        """Raw mode, initial window size, SIGWINCH handler."""
        import tty

        clear_onlcr(self.master)
        if self.host is not None:
            copy_winsize(self.host, self.master)
        self.old_winch = signal.signal(signal.SIGWINCH, self._on_winch)
        if os.isatty(0):
            self.saved = termios.tcgetattr(0)
            tty.setraw(0, termios.TCSANOW)

    def _on_winch(self, _signum: int, _frame: Any) -> None:
        if self.host is not None:
            copy_winsize(self.host, self.master)

    def pump(self, pid: int) -> None:
        """Copy both ways until pid exits, then drain what the pty still holds."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            pidfd = -1
        os.set_blocking(self.master, False)
        stdin_open = True
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        poller.register(0, select.POLLIN)
        if pidfd >= 0:
            poller.register(pidfd, select.POLLIN)
        try:
            while True:
                events = dict(poller.poll())
                if self.master in events and not self._from_master():
                    poller.unregister(self.master)
                    if pidfd < 0:
                        return
                if stdin_open and 0 in events:
                    stdin_open = self._from_stdin()
                    if not stdin_open:
                        poller.unregister(0)
                if pidfd < 0 or pidfd in events:
                    self._drain()
                    return
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    def _from_master(self) -> bool:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return True
        except OSError as e:
            if e.errno == errno.EIO:  # every peer is closed
                return False
            raise
        return bool(data) and _write_all(1, data)

    def _from_stdin(self) -> bool:
        try:
            data = os.read(0, 65536)
        except OSError:
            return False
        if not data:
            return False
        return _write_all(self.master, data)

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], _DRAIN_IDLE)
            if not ready:
                return
            try:
                data = os.read(self.master, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data or not _write_all(1, data):
                return

    def close(self) -> None:
        """Restore the caller's terminal and SIGWINCH; close the master."""
        if self.saved is not None:
            try:
                termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass
            self.saved = None
        if self.old_winch is not None:
            signal.signal(signal.SIGWINCH, self.old_winch)
            self.old_winch = None
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
