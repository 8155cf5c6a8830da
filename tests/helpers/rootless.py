"""An unprivileged test user with subordinate ids, and the runtime driven as that user.

The one host change the rootless tests make: they add their own user (a
unique name) with /etc/subuid and /etc/subgid ranges, and remove the user
and the ranges again when the session ends, even after failures.  Everything
the user works with lives in a private temp dir owned by it: its
$XDG_RUNTIME_DIR, a copy of the busybox rootfs, the bundles.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import OTHER_RUNTIME, REPO, runtime_argv

SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"


def user_pids(uid: int) -> list[int]:
    """Pids of the processes a host uid owns (what a test user left running)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _ranges(path: str, name: str) -> list[tuple[int, int]]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split(":")
        if len(fields) == 3 and fields[0] == name:
            out.append((int(fields[1]), int(fields[2])))
    return out


def _free_start(size: int) -> int:
    """A start for a new subordinate range that overlaps no existing one."""
    end = 100000
    for path in (SUBUID, SUBGID):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                end = max(end, int(fields[1]) + int(fields[2]))
    return -(-end // size) * size


def _drop_own_lines(path: str, name: str) -> None:
    """Remove the lines of our own user only (a fallback if userdel left them)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return
    kept = [line for line in text.splitlines(keepends=True) if not line.startswith(name + ":")]
    if len(kept) != len(text.splitlines()):
        Path(path).write_text("".join(kept))


class TestUser:
    """The unprivileged user the rootless tests run as."""

    def __init__(self, name: str, uid: int, gid: int, subuid: tuple[int, int],
                 subgid: tuple[int, int], base: Path, python: str) -> None:
        self.name = name
        self.uid = uid
        self.gid = gid
        self.subuid = subuid  # (start, count)
        self.subgid = subgid
        self.base = base      # private dir owned by the user (0700)
        self.python = python  # an interpreter the user may run, with _cffi_backend

    @property
    def xdg(self) -> Path:
        return self.base / "xdg"

    @property
    def rootfs(self) -> Path:
        return self.base / "rootfs"

    def argv(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        """argv running ARGS as this user (no supplementary groups) with a clean env."""
        full = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "USER": self.name,
                "HOME": str(self.base), "XDG_RUNTIME_DIR": str(self.xdg),
                "PYTHONPATH": str(REPO), "SHELL": "/bin/sh"}
        full.update(env or {})
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--reset-env", "env", *(f"{k}={v}" for k, v in full.items()), *args]

    def run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.argv(*args), **kwargs)

    def chown_tree(self, path: Path) -> None:
        subprocess.run(["chown", "-R", "-h", f"{self.uid}:{self.gid}", str(path)], check=True)

    def single_maps(self) -> dict[str, list[dict[str, int]]]:
        return {"uidMappings": [{"containerID": 0, "hostID": self.uid, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": self.gid, "size": 1}]}

    def multi_maps(self, size: int = 65536) -> dict[str, list[dict[str, int]]]:
        return {"uidMappings": [{"containerID": 0, "hostID": self.uid, "size": 1},
                                {"containerID": 1, "hostID": self.subuid[0], "size": size}],
                "gidMappings": [{"containerID": 0, "hostID": self.gid, "size": 1},
                                {"containerID": 1, "hostID": self.subgid[0], "size": size}]}


def _user_python(user_argv: Any) -> str | None:
    """The test interpreter if the user can run it with cffi, else the system python3."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        proc = subprocess.run(user_argv(candidate, "-c", "import _cffi_backend, pyrunc._shim"),
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        if proc.returncode == 0:
            return candidate
    return None


def make_test_user(rootfs: Path) -> tuple[TestUser | None, str, Any]:
    """Create the user; returns (user or None, why not, cleanup)."""
    if os.geteuid() != 0:
        return None, "needs root to add the test user", lambda: None
    for tool in ("useradd", "userdel", "usermod", "setpriv", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            return None, f"{tool} is not installed (packages passwd, util-linux, uidmap)", \
                lambda: None
    name = f"pyrl{uuid.uuid4().hex[:10]}"
    base = Path(tempfile.mkdtemp(prefix="pyrunc-rootless-"))
    created = False

    def cleanup() -> None:
        shutil.rmtree(base, ignore_errors=True)
        if created:
            for flag, ranges in (("--del-subuids", _ranges(SUBUID, name)),
                                 ("--del-subgids", _ranges(SUBGID, name))):
                for start, count in ranges:
                    subprocess.run(["usermod", flag, f"{start}-{start + count - 1}", name],
                                   capture_output=True)
            subprocess.run(["userdel", name], capture_output=True)
            _drop_own_lines(SUBUID, name)
            _drop_own_lines(SUBGID, name)

    try:
        subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--user-group", name],
                       check=True, capture_output=True)
        created = True
        size = 65536
        if not _ranges(SUBUID, name) or not _ranges(SUBGID, name):
            start = _free_start(size)
            span = f"{start}-{start + size - 1}"
            subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, name],
                           check=True, capture_output=True)
        import pwd

        entry = pwd.getpwnam(name)
        user = TestUser(name, entry.pw_uid, entry.pw_gid, _ranges(SUBUID, name)[0],
                        _ranges(SUBGID, name)[0], base, "")
        (base / "xdg").mkdir(mode=0o700)
        shutil.copytree(rootfs, base / "rootfs", symlinks=True)
        user.chown_tree(base)
        base.chmod(0o700)  # our own temp dir: only the user (and root) may enter
        python = _user_python(user.argv)
        if python is None:
            cleanup()
            return None, "no Python the test user can run with cffi and this checkout", \
                lambda: None
        user.python = python
        return user, "", cleanup
    except BaseException:
        cleanup()
        raise


def rootless_runtime_argv(user: TestUser) -> list[str]:
    """The runtime under test as the user runs it (no --root: the XDG default)."""
    argv = runtime_argv()
    if not OTHER_RUNTIME:
        argv = [user.python, *argv[1:]]
    return argv


def runtime_name() -> str:
    """The runtime's name under $XDG_RUNTIME_DIR: "pyrunc", or the other binary's."""
    other = OTHER_RUNTIME
    return os.path.basename(shlex.split(other)[0]) if other else "pyrunc"


class RootlessRuntime:
    """The runtime under test, run by the test user; containers removed after."""

    def __init__(self, user: TestUser, workdir: Path) -> None:
        self.user = user
        self.workdir = workdir  # owned by the user
        self.ids: set[str] = set()
        self.count = 0
        # Run (as root) before dropping to the user: e.g. moving into a cgroup.
        self.prefix: list[str] = []

    @property
    def root(self) -> Path:
        return self.user.xdg / runtime_name()

    #: Seconds a command may take unless the call says otherwise.
    timeout: float = 60

    def command_argv(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        """The argv that runs a runtime command as the user."""
        return self.prefix + self.user.argv(*rootless_runtime_argv(self.user), *args, env=env)

    def __call__(self, *args: str, input: bytes | None = None, timeout: float | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a runtime command as the user; output through temp files (see tests/conftest)."""
        argv = self.command_argv(*args, env=env)
        timeout = self.timeout if timeout is None else timeout
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(argv, input=input, timeout=timeout, stdout=out, stderr=err,
                                  stdin=None if input is not None else subprocess.DEVNULL)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        return proc

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        proc = self(*args, **kwargs)
        assert proc.returncode == 0, f"{args}: {proc.stderr.decode(errors='replace')}"
        return proc

    def state(self, cid: str) -> dict[str, Any]:
        return json.loads(self.ok("state", cid).stdout)  # type: ignore[no-any-return]

    def new_id(self) -> str:
        cid = f"rl-{uuid.uuid4().hex[:10]}"
        self.ids.add(cid)
        return cid

    def config(self, args: list[str], maps: dict[str, Any] | None = None,
               **process: Any) -> dict[str, Any]:
        """pyrunc's `spec --rootless` template on the user's rootfs copy, running ARGS."""
        from pyrunc.spec.template import default_spec

        cfg = default_spec(rootless=True, uid=self.user.uid, gid=self.user.gid)
        cfg["root"] = {"path": str(self.user.rootfs), "readonly": True}
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = args
        cfg["process"].update(process)
        cfg["linux"].update(copy.deepcopy(maps or self.user.single_maps()))
        return cfg

    def bundle(self, config: dict[str, Any]) -> Path:
        self.count += 1
        path = self.workdir / f"bundle{self.count}"
        path.mkdir()
        (path / "config.json").write_text(json.dumps(config))
        self.user.chown_tree(path)
        return path

    def cleanup(self) -> None:
        for cid in sorted(self.ids):
            self("delete", "--force", cid, timeout=30)
