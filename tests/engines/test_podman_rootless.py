"""Rootless podman (conmon, slirp4netns, cgroupfs, no limits) driving the runtime under test.

podman runs as the rootless tests' own user (tests/helpers/rootless.py) with
every directory it uses in that user's private temp dir: storage, run root,
$HOME, $XDG_RUNTIME_DIR, its temp dir.  It makes its own user namespace from
the user's subuid/subgid ranges; the runtime runs in it as uid 0, as with
runc.  On this host (cgroup v1, no systemd) podman asks for no cgroup
limits; the runtime's rootless cgroup handling skips the cgroup.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.engines.conftest import IMAGE, build_docker_archive, skip_unless_binaries
from tests.helpers.rootless import user_pids

CONF = """\
[containers]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
image_copy_tmp_dir = "{tmp}"
runtime = "{name}"
runtime_supports_json = ["{name}"]

[engine.runtimes]
{name} = ["{path}"]
"""


def _target(user) -> tuple[str, str]:
    """(name, exec line) of the runtime under test, as the user runs it."""
    other = os.environ.get("PYRUNC_ENGINE_RUNTIME") or os.environ.get("PYRUNC_TEST_RUNTIME")
    if other:
        return os.path.basename(other.split()[0]), other
    return "pyrunc", f"env PYTHONPATH={REPO} {user.python} -m pyrunc"


class RootlessPodman:
    def __init__(self, user, base: Path) -> None:
        self.user = user
        self.base = base
        name, line = _target(user)
        self.name = name
        wrapper = base / name
        wrapper.write_text(f'#!/bin/sh\nexec {line} "$@"\n')
        wrapper.chmod(0o755)
        (base / "tmp").mkdir()
        self.conf = base / "containers.conf"
        self.conf.write_text(CONF.format(name=name, path=wrapper, tmp=base / "tmp"))
        user.chown_tree(base)

    def argv(self, *args: str) -> list[str]:
        b = self.base
        return self.user.argv(
            "podman", "--root", str(b / "storage"), "--runroot", str(b / "runroot"),
            "--tmpdir", str(b / "libpod"), "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args,
            env={"CONTAINERS_CONF": str(self.conf), "TMPDIR": str(b / "tmp"),
                 "XDG_CONFIG_HOME": str(b / "config"), "XDG_DATA_HOME": str(b / "data")})

    def __call__(self, *args: str, timeout: float = 120,
                 input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.argv(*args), capture_output=True, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def ok(self, *args: str, **kwargs) -> subprocess.CompletedProcess[bytes]:
        proc = self(*args, **kwargs)
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc


@pytest.fixture(scope="module")
def podman(rootless_user, tmp_path_factory) -> Iterator[RootlessPodman]:
    skip_unless_binaries("podman", "conmon", "slirp4netns")
    base = Path(str(rootless_user.base)) / f"podman-{os.getpid()}"
    base.mkdir()
    pm = RootlessPodman(rootless_user, base)
    try:
        info = pm("info", "--format", "{{.Host.OCIRuntime.Name}}")
        if info.returncode != 0:
            pytest.skip(f"rootless podman cannot run here: {info.stderr.decode()[-500:]}")
        archive = build_docker_archive(base / "image.tar", rootless_user.rootfs)
        rootless_user.chown_tree(archive)
        pm.ok("load", "--input", str(archive))
        yield pm
    finally:
        pm("rm", "--all", "--force", "--time", "0", timeout=60)
        # podman keeps a pause process (its user namespace) and conmons: every
        # process of the tests' own user is ours to end.
        for pid in user_pids(rootless_user.uid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(base, ignore_errors=True)


def test_the_runtime_is_the_one_configured(podman):
    info = podman.ok("info", "--format", "{{.Host.OCIRuntime.Name}}")
    assert info.stdout.decode().strip() == podman.name


def test_run_output_and_exit_code(podman):
    proc = podman("run", "--rm", "--network", "none", IMAGE, "sh", "-c",
                  "echo hello; cat /proc/self/uid_map; exit 7")
    assert proc.returncode == 7, proc.stderr
    out = proc.stdout.decode()
    assert "hello" in out
    # podman's user namespace: the user's own uid as 0, then its subuid range.
    assert f"0 {podman.user.uid} 1" in " ".join(out.split())


def test_volume_is_read_and_written(podman):
    vol = podman.base / "vol"
    vol.mkdir()
    (vol / "in").write_text("from host\n")
    podman.user.chown_tree(vol)
    out = podman.ok("run", "--rm", "--network", "none", "-v", f"{vol}:/data", IMAGE,
                    "sh", "-c", "cat /data/in; echo from container > /data/out").stdout
    assert b"from host" in out
    assert (vol / "out").read_text() == "from container\n"
    assert (vol / "out").stat().st_uid == podman.user.uid


def test_detached_exec_top_stop_remove(podman):
    name = f"c{os.getpid()}"
    podman.ok("run", "-d", "--name", name, "--network", "none", IMAGE, "sleep", "300")
    assert podman.ok("exec", name, "sh", "-c", "echo in-exec; id -u").stdout.split() == \
        [b"in-exec", b"0"]
    top = podman.ok("top", name, "pid", "args").stdout.decode()
    assert "sleep 300" in top
    started = time.monotonic()
    podman.ok("stop", "--time", "2", name)
    assert time.monotonic() - started < 60
    status = podman.ok("inspect", "--format", "{{.State.Status}}", name).stdout.decode().strip()
    assert status == "exited"
    podman.ok("rm", name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_port_forwarding(podman):
    port = _free_port()
    name = f"web{os.getpid()}"
    podman.ok("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", IMAGE, "sh", "-c",
              "mkdir -p /www && echo served-by-container > /www/index.html && "
              "exec httpd -f -p 8080 -h /www")
    try:
        body = b""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"served-by-container\n"
    finally:
        podman("rm", "--force", "--time", "0", name, timeout=60)
