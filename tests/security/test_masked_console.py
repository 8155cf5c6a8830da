"""Attack class 5: the mask source and the console, substituted in the image.

CVEs: CVE-2025-31133 (maskedPaths are masked by binding the container's
/dev/null; an image whose /dev/null is a symlink to core_pattern got that
file bound read-write), youki CVE-2025-62161 (same), CVE-2025-52565
(/dev/pts/N or /dev/console swapped for a symlink while the console is set
up: the pty peer must come from the master fd, /dev/console be bound by fd).

/dev is NOT a tmpfs in these configs, so the image's own /dev is used.
Host canary: /proc/sys/kernel/core_pattern (read before, compared after,
restored if it ever changed so the host is left as it was).
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from tests.conftest import needs_root, pyrunc_only
from tests.security.conftest import config_for, one_error_line

pytestmark = needs_root

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")
# Masked by default (`pyrunc spec`) and present on this kernel.
MASKED_FILES = tuple(p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list",
                                 "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats")
                     if os.path.exists(p)) or ("/proc/keys",)


@pytest.fixture
def core_pattern():
    before = CORE_PATTERN.read_bytes()
    yield before
    after = CORE_PATTERN.read_bytes()
    if after != before:
        CORE_PATTERN.write_bytes(before)
    assert after == before, f"host core_pattern changed: {after!r}"


def image_dev_config(root: Path, args: list[str], **process) -> dict:
    cfg = config_for(root, args, **process)
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/dev"]
    return cfg


ATTACK = ("for f in " + " ".join(MASKED_FILES) + "; do "
          "echo \"$f $(stat -L -c %F:%t:%T $f 2>&1) [$(head -c 200 $f 2>&1 | tr -d '\\n')]\"; "
          "{ echo '|/tmp/pyrunc-canary-hijack' > $f; } 2>/dev/null; done; true")


@pytest.mark.parametrize("kind", ["absolute", "relative", "regular", "fifo"])
@pyrunc_only("runc 1.1.5 has CVE-2025-31133: the attack would rewrite the host's core_pattern")
def test_dev_null_substituted(runtime, bundle, private_rootfs, core_pattern, kind):
    null = private_rootfs / "dev" / "null"
    null.parent.mkdir(exist_ok=True)
    if null.exists() or null.is_symlink():
        null.unlink()
    if kind == "absolute":
        os.symlink("/proc/sys/kernel/core_pattern", null)
    elif kind == "relative":
        os.symlink("../proc/sys/kernel/core_pattern", null)
    elif kind == "regular":
        null.write_text("")
    else:
        os.mkfifo(null)
    cfg = image_dev_config(private_rootfs, ["sh", "-c", ATTACK])
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("null"))
    out = proc.stdout.decode(errors="replace")
    assert core_pattern.decode().strip() not in out or not core_pattern.strip(), out
    if proc.returncode != 0:
        assert "null device" in one_error_line(proc.stderr)
    else:
        for line in out.splitlines():
            assert "character special file:1:3 []" in line, out


def test_real_dev_null_masks(runtime, bundle, private_rootfs, core_pattern):
    """Control: an image /dev/null that is the null device is used for the masks."""
    null = private_rootfs / "dev" / "null"
    null.parent.mkdir(exist_ok=True)
    if null.exists() or null.is_symlink():
        null.unlink()
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    cfg = image_dev_config(private_rootfs, ["sh", "-c", ATTACK])
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("null"))
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == len(MASKED_FILES), lines
    for line in lines:
        assert "character special file:1:3 []" in line, lines


class ConsoleSocket:
    """A console socket that accepts one connection and keeps the master fd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.master: int | None = None
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.server.settimeout(30)
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
            if fds:
                self.master = fds[0]

    def read_all(self, timeout: float = 10) -> bytes:
        import select

        assert self.master is not None
        data = b""
        while True:
            ready, _, _ = select.select([self.master], [], [], timeout)
            if not ready:
                return data
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return data
            if not chunk:
                return data
            data += chunk

    def close(self) -> None:
        self.server.close()
        if self.master is not None:
            os.close(self.master)


@pytest.mark.parametrize("link", ["console", "pts", "ptmx"])
def test_console_targets_substituted(runtime, bundle, private_rootfs, tmp_path, core_pattern, link):
    """/dev/console, /dev/pts or /dev/ptmx in the image point at core_pattern."""
    dev = private_rootfs / "dev"
    dev.mkdir(exist_ok=True)
    os.mknod(dev / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    target = "/proc/sys/kernel/core_pattern"
    if link == "console":
        os.symlink(target, dev / "console")
    elif link == "pts":
        os.symlink("/proc/sys/kernel", dev / "pts")
    else:
        os.symlink(target, dev / "ptmx")
    cfg = image_dev_config(private_rootfs, [
        "sh", "-c", "stat -L -c 'console=%F:%t' /dev/console; "
        "echo '|/tmp/pyrunc-canary-hijack' > /dev/console; tty"], terminal=True)
    sock = ConsoleSocket(tmp_path / "console.sock")
    cid = runtime.new_id("console")
    try:
        proc = runtime("create", "--console-socket", str(sock.path), "-b",
                       str(bundle(config=cfg)), cid)
        if b"not supported" in proc.stderr:
            pytest.skip("create --console-socket is not implemented yet")
        if proc.returncode != 0:
            one_error_line(proc.stderr)
            return
        sock.thread.join(10)
        assert sock.master is not None, "no console master received"
        runtime("start", cid, check=True)
        out = sock.read_all().decode(errors="replace")
        assert "console=character special file:88" in out, out
    finally:
        sock.close()
