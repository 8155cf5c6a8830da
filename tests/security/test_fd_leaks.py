"""Attack class 2: leaked fds and a cwd outside the container.

CVEs: CVE-2024-21626 ("Leaky Vessels": process.cwd=/proc/self/fd/N or
`exec --cwd` through a leaked host directory fd gives a host-side cwd),
CVE-2016-9962 (host fds reachable from the container during exec).

Host canary: a file with a random secret in a temp dir.  Through a leaked
handle on the host's /proc (or any host directory) the container process
could read it as ./1/root/<path>; the secret must never appear in its output.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.conftest import needs_root, runtime_env
from tests.security.conftest import config_for

pytestmark = needs_root

FDS = range(3, 65)


def script(canary: str) -> str:
    # The cwd may be a host /proc, a /proc/<pid> or a host directory.
    return (f"cat ./1/root{canary} ./root{canary} .{canary} 2>/dev/null; "
            "echo CWD=$(/bin/pwd -P); echo FDS=$(ls /proc/$$/fd | sort -n | tr '\\n' ' ')")


@pytest.fixture
def canary(tmp_path):
    secret = f"secret-{uuid.uuid4().hex}"
    path = tmp_path / "canary.txt"
    path.write_text(secret)
    return str(path), secret


def check_escape(proc, secret: str, allowed_fds: set[int]) -> None:
    out = proc.stdout.decode(errors="replace")
    assert secret not in out, f"host file read through the cwd: {out}"
    if proc.returncode != 0:
        # Refused, either by pyrunc (one error line) or by pyrunc-init after
        # start, when the container's own exit status is all there is.
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        assert b"Traceback" not in proc.stderr
        assert len(proc.stderr.splitlines()) <= 1, proc.stderr
        return
    lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert lines["CWD"].startswith("/") and "unreachable" not in lines["CWD"], out
    fds = {int(x) for x in lines["FDS"].split()}
    assert fds <= allowed_fds, f"fds visible in the container: {sorted(fds)} ({out})"


def test_process_cwd_through_proc_self_fd(runtime, bundle, private_rootfs, canary):
    path, secret = canary
    failures = []
    for n in FDS:
        cfg = config_for(private_rootfs, ["sh", "-c", script(path)], cwd=f"/proc/self/fd/{n}")
        proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("cwd"))
        try:
            check_escape(proc, secret, {0, 1, 2})
        except AssertionError as e:
            failures.append(f"fd {n}: {e}")
    assert not failures, "\n".join(failures[:10])


def test_exec_cwd_through_proc_self_fd(runtime, bundle, private_rootfs, canary):
    path, secret = canary
    cid = runtime.new_id("execcwd")
    cfg = config_for(private_rootfs, ["sleep", "120"])
    runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True)
    failures = []
    for n in FDS:
        proc = runtime("exec", "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c", script(path))
        try:
            check_escape(proc, secret, {0, 1, 2})
        except AssertionError as e:
            failures.append(f"fd {n}: {e}")
    assert not failures, "\n".join(failures[:10])


def test_only_stdio_preserved_and_listen_fds(runtime, bundle, private_rootfs, tmp_path):
    """With --preserve-fds 2 and LISTEN_FDS=1 the process has 0-5 and nothing else."""
    files = [open(tmp_path / f"extra{i}", "w") for i in range(3)]
    try:
        fds = [f.fileno() for f in files]
        # Put them at 3, 4, 5 in the child, as the caller of a runtime would.
        def place() -> None:
            for want, fd in zip((3, 4, 5), fds):
                os.dup2(fd, want)

        cfg = config_for(private_rootfs, ["/probe", "fds"])
        # LISTEN_PID must name the runtime's own pid: set it from a shell that execs it.
        argv = ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
                *runtime.argv("run", "--preserve-fds", "2", "-b", str(bundle(config=cfg)),
                              runtime.new_id("fds"))]
        proc = subprocess.run(argv, env=runtime_env(), preexec_fn=place, pass_fds=(3, 4, 5),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        seen = {int(x) for x in proc.stdout.decode().strip().split("=", 1)[1].split()}
        assert seen == {0, 1, 2, 3, 4, 5}, seen
    finally:
        for f in files:
            f.close()
