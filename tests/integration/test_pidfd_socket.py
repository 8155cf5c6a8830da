"""--pidfd-socket: the caller receives a pidfd of the container's init (or exec'd process)."""

from __future__ import annotations

import os
import select
import signal
import socket
import threading

from tests.conftest import needs_root, runc_differs

pytestmark = needs_root


class PidfdReceiver:
    """Listens on a unix socket and keeps the one pidfd it is sent."""

    def __init__(self, path: str) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.name = b""
        self.fds: list[int] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            self.name, self.fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)

    def pidfd(self) -> int:
        self.thread.join(10)
        self.server.close()
        assert len(self.fds) == 1, self.fds
        return self.fds[0]


@runc_differs("runc 1.1.5 has no --pidfd-socket (runc 1.2)")
def test_create_sends_a_pidfd_of_the_init(runtime, bundle, tmp_path):
    receiver = PidfdReceiver(str(tmp_path / "pidfd.sock"))
    cid = runtime.new_id()
    runtime("create", "-b", str(bundle(["sleep", "1000"])), "--pidfd-socket",
            str(tmp_path / "pidfd.sock"), cid, check=True)
    pidfd = receiver.pidfd()
    assert receiver.name == b"pidfd"
    try:
        pid = runtime.state(cid)["pid"]
        # The fd refers to the init: its fdinfo names the pid, and it can kill it.
        fdinfo = open(f"/proc/self/fdinfo/{pidfd}").read()
        assert f"Pid:\t{pid}" in fdinfo
        runtime("start", cid, check=True)
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        assert select.select([pidfd], [], [], 10)[0], "the init did not exit"
    finally:
        os.close(pidfd)


@runc_differs("runc 1.1.5 has no --pidfd-socket (runc 1.2)")
def test_exec_sends_a_pidfd_of_the_process(runtime, bundle, tmp_path):
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(["sleep", "1000"])), cid, check=True)
    receiver = PidfdReceiver(str(tmp_path / "exec.sock"))
    pid_file = tmp_path / "exec.pid"
    runtime("exec", "-d", "--pid-file", str(pid_file), "--pidfd-socket", str(tmp_path / "exec.sock"),
            cid, "sleep", "999", check=True)
    pidfd = receiver.pidfd()
    try:
        assert f"Pid:\t{int(pid_file.read_text())}" in open(f"/proc/self/fdinfo/{pidfd}").read()
    finally:
        os.close(pidfd)


@runc_differs("runc 1.1.5 has no --pidfd-socket (runc 1.2)")
def test_unreachable_pidfd_socket_fails_and_leaves_nothing(runtime, bundle, tmp_path):
    cid = runtime.new_id()
    proc = runtime("create", "-b", str(bundle(["true"])), "--pidfd-socket",
                   str(tmp_path / "nobody.sock"), cid)
    assert proc.returncode == 1
    assert proc.stderr.count(b"\n") == 1 and b"pidfd socket" in proc.stderr
    assert not (runtime.root / cid).exists()
