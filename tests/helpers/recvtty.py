"""A console-socket receiver for tests, in the spirit of runc's recvtty.

It listens on a unix stream socket, accepts one connection, reads the one
message a runtime sends (the pty name as data, exactly one SCM_RIGHTS fd)
and checks the framing go-runc relies on.  Then, depending on the mode, it
copies the master's output to a file, and optionally writes some input.

Use it in-process (:class:`ConsoleReceiver`) or as a program::

    python -m tests.helpers.recvtty SOCKET OUTPUT [--input TEXT]
"""

from __future__ import annotations

import array
import os
import select
import socket
import sys
import threading
import time
from pathlib import Path


class ReceiveError(Exception):
    """The runtime sent something go-runc would not accept."""


def receive_master(conn: socket.socket) -> tuple[int, str]:
    """Read one message the way go-runc's recvFd does and check its framing."""
    fds = array.array("i")
    want_oob = socket.CMSG_SPACE(fds.itemsize)
    data, ancdata, flags, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
    if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
        raise ReceiveError(f"truncated message (flags {flags:#x})")
    if len(ancdata) != 1:
        raise ReceiveError(f"{len(ancdata)} control messages, want exactly 1")
    level, kind, payload = ancdata[0]
    if (level, kind) != (socket.SOL_SOCKET, socket.SCM_RIGHTS):
        raise ReceiveError(f"control message {level}/{kind} is not SCM_RIGHTS")
    if len(payload) != fds.itemsize:
        for i in range(0, len(payload) - len(payload) % fds.itemsize, fds.itemsize):
            os.close(int.from_bytes(payload[i:i + fds.itemsize], sys.byteorder))
        raise ReceiveError(f"{len(payload) // fds.itemsize} fds, want exactly 1")
    # go-runc compares oobn with CMSG_SPACE(4); recvmsg gives the payload
    # only, so check that what arrived fits that space exactly.
    if socket.CMSG_SPACE(len(payload)) != want_oob:
        raise ReceiveError("control data is not CMSG_SPACE(4)")
    fds.frombytes(payload)
    return fds[0], data.decode()


class ConsoleReceiver:
    """Listen on a console socket; accept and receive the master in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.bind(str(self.path))
        self.sock.listen(1)
        self.master = -1
        self.name = ""
        self.error: Exception | None = None
        self.output = bytearray()
        self._got = threading.Event()
        self._eof = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                self.master, self.name = receive_master(conn)
                # Nothing more may follow: go-runc reads one message only.
                conn.settimeout(0.2)
                try:
                    extra = conn.recv(1)
                except (TimeoutError, socket.timeout):
                    extra = b""
                if extra:
                    raise ReceiveError("bytes after the master message")
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.error = e
            self._got.set()
            self._eof.set()
            return
        self._got.set()
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.5)
                if not ready:
                    continue
                data = os.read(self.master, 65536)
            except OSError:
                break
            if not data:
                break
            self.output += data
        self._eof.set()

    def wait_master(self, timeout: float = 10) -> int:
        """The master fd, once received (raises what went wrong)."""
        if not self._got.wait(timeout):
            raise TimeoutError("no console master received")
        if self.error is not None:
            raise self.error
        return self.master

    def write(self, data: bytes) -> None:
        """Type into the terminal."""
        os.write(self.wait_master(), data)

    def wait_output(self, needle: bytes, timeout: float = 10) -> bytes:
        """Wait until the output contains needle; returns all output so far."""
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            if time.monotonic() > deadline or self._eof.is_set() and needle not in self.output:
                raise AssertionError(f"{needle!r} not in console output {bytes(self.output)!r}")
            time.sleep(0.02)
        return bytes(self.output)

    def wait_eof(self, timeout: float = 10) -> bytes:
        """Wait until every peer of the pty is closed; returns the output."""
        self._eof.wait(timeout)
        return bytes(self.output)

    def close(self) -> None:
        """Stop listening; the master is closed by the reader thread's owner."""
        self.sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def main(argv: list[str]) -> int:
    """recvtty SOCKET OUTPUT [--input TEXT]: receive, write input, save output at EOF."""
    path, out = Path(argv[0]), Path(argv[1])
    receiver = ConsoleReceiver(path)
    receiver.wait_master(60)
    if len(argv) > 3 and argv[2] == "--input":
        receiver.write(argv[3].encode())
    out.write_bytes(receiver.wait_eof(60))
    receiver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
