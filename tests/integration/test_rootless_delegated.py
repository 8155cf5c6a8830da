"""Rootless containers in a systemd user session: the cgroup v2 subtree systemd
delegates to the user is used, and the limits are enforced.

This is how rootless containers get limits on today's distributions: logind
starts the user's own systemd (user@UID.service, here through
``loginctl enable-linger``), which owns a cgroup v2 subtree; a command started
in a scope with ``Delegate=yes`` sits in that subtree, and the runtime, run
by the user with ``--rootless auto``, makes the container's cgroup beside the
scope (runc's rule for a relative cgroup on cgroup2) and writes its limits.

Every runtime call here runs as the tests' own user (tests/helpers/rootless.py)
through ``systemd-run --user --scope -p Delegate=yes``, with the session's
$XDG_RUNTIME_DIR (/run/user/UID) and bus.  The fixture ends the session
(linger off, user manager stopped) and checks that none of the user's
processes is left before the user is removed.  Skipped where no user manager
can be started (no systemd as PID 1, or not pure cgroup v2).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import cgroup_dirs_named, needs_root, processes_with
from tests.helpers.rootless import RootlessRuntime, rootless_runtime_argv, runtime_name, user_pids

if TYPE_CHECKING:  # (a Test* name at module level would be collected by pytest)
    from tests.helpers.rootless import TestUser

pytestmark = needs_root

#: The memory limit the hog runs into; the hog asks for 64 MiB once and stops
#: (the VM has no swap: an unenforced limit must not eat it).
LIMIT = 32 << 20
HOG = "dd if=/dev/zero of=/dev/null bs=64M count=1"


def _session_unavailable() -> str | None:
    """Why no systemd user session can delegate a cgroup here, or None."""
    if not Path("/run/systemd/system").is_dir():
        return "systemd is not PID 1 here: no user manager to delegate a cgroup subtree"
    if not Path("/sys/fs/cgroup/cgroup.subtree_control").exists():
        return "not a pure cgroup v2 host: systemd delegates no cgroup subtree to users"
    for tool in ("loginctl", "systemd-run", "systemctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _wait_for(what: str, check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class UserSession:
    """The test user's running systemd user manager (lingering, no login)."""

    def __init__(self, user: TestUser) -> None:
        self.user = user
        self.runtime_dir = Path(f"/run/user/{user.uid}")
        self.unit = f"user@{user.uid}.service"

    @property
    def cgroup(self) -> Path:
        """The subtree the user manager owns."""
        return (Path("/sys/fs/cgroup/user.slice") / f"user-{self.user.uid}.slice" / self.unit)

    def env(self) -> dict[str, str]:
        return {"XDG_RUNTIME_DIR": str(self.runtime_dir),
                "DBUS_SESSION_BUS_ADDRESS": f"unix:path={self.runtime_dir}/bus"}

    def in_scope(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        """argv running ARGS as the user in a new delegated scope of its manager."""
        return self.user.argv("systemd-run", "--user", "--scope", "--quiet",
                              "-p", "Delegate=yes", "--", *args,
                              env={**self.env(), **(env or {})})

    def start(self) -> None:
        subprocess.run(["loginctl", "enable-linger", self.user.name], check=True,
                       capture_output=True, timeout=60)
        private = self.runtime_dir / "systemd" / "private"
        _wait_for(str(private), private.exists)
        # The manager answers (and has set up its slices) once it is running.
        subprocess.run(self.user.argv("systemctl", "--user", "is-system-running", "--wait",
                                      env=self.env()),
                       capture_output=True, timeout=180, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        """Linger off, the manager and the runtime dir stopped, nothing of the user left."""
        subprocess.run(["loginctl", "disable-linger", self.user.name], capture_output=True,
                       timeout=60)
        subprocess.run(["systemctl", "stop", self.unit, f"user-runtime-dir@{self.user.uid}.service"],
                       capture_output=True, timeout=180)
        subprocess.run(["loginctl", "terminate-user", self.user.name], capture_output=True,
                       timeout=60)
        _wait_for(f"the processes of uid {self.user.uid} to end",
                  lambda: not user_pids(self.user.uid), timeout=60)
        assert not self.cgroup.exists()
        assert not self.runtime_dir.exists()
        linger = Path("/var/lib/systemd/linger") / self.user.name
        assert not linger.exists()


@pytest.fixture(scope="module")
def session(rootless_user: TestUser) -> Iterator[UserSession]:
    why = _session_unavailable()
    if why:
        pytest.skip(why)
    s = UserSession(rootless_user)
    try:
        s.start()
        yield s
    finally:
        s.stop()


class DelegatedRuntime(RootlessRuntime):
    """The runtime under test, each call as the user in a delegated scope."""

    def __init__(self, session: UserSession, workdir: Path) -> None:
        super().__init__(session.user, workdir)
        self.session = session

    @property
    def root(self) -> Path:
        return self.session.runtime_dir / runtime_name()

    timeout = 120

    def command_argv(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        return self.session.in_scope(*rootless_runtime_argv(self.user), *args, env=env)


@pytest.fixture
def delegated(session: UserSession) -> Iterator[DelegatedRuntime]:
    work = Path(tempfile.mkdtemp(dir=session.user.base))
    session.user.chown_tree(work)
    rt = DelegatedRuntime(session, work)
    try:
        yield rt
    finally:
        rt.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        for cid in rt.ids:
            assert cgroup_dirs_named(cid) == [], f"cgroup of {cid} left behind"
            assert not (rt.root / cid).exists()
            assert processes_with(cid) == []


def _container_cgroup(rt: DelegatedRuntime, cid: str) -> Path:
    """The container's one cgroup, which must lie in the user's delegated subtree."""
    (found,) = cgroup_dirs_named(cid)
    path = Path(found)
    assert rt.session.cgroup in path.parents, path
    return path


def test_scope_is_in_the_users_delegated_subtree(session):
    """What the rest relies on: a scope of the user's manager, beside which the
    user may make cgroups with the memory and pids controllers."""
    proc = subprocess.run(session.in_scope("cat", "/proc/self/cgroup"), capture_output=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.decode().split()
    own = Path("/sys/fs/cgroup") / line.split("::", 1)[1].lstrip("/")
    assert session.cgroup in own.parents and own.name.endswith(".scope"), own
    parent = own.parent
    assert parent.stat().st_uid == session.user.uid
    assert {"memory", "pids"} <= set((parent / "cgroup.controllers").read_text().split())


def test_memory_limit_is_enforced(delegated):
    """32 MiB: seen as memory.max from inside; a 64 MiB hog is OOM-killed."""
    cfg = delegated.config(["sh", "-c", f"cat /sys/fs/cgroup/memory.max; {HOG}; echo rc=$?; "
                                        "grep oom_kill /sys/fs/cgroup/memory.events"])
    cfg["linux"]["resources"] = {"memory": {"limit": LIMIT}}
    cid = delegated.new_id()
    proc = delegated("run", "-b", str(delegated.bundle(cfg)), cid)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode().split("\n")
    assert out[0] == str(LIMIT), out
    assert "rc=137" in out, out
    kills = [line for line in out if line.startswith("oom_kill ")]
    assert kills and int(kills[0].split()[1]) >= 1, out
    assert cgroup_dirs_named(cid) == []


def test_pids_limit_pause_resume_ps_events_delete(delegated):
    cid = delegated.new_id()
    cfg = delegated.config(["sleep", "300"])
    cfg["linux"]["resources"] = {"pids": {"limit": 16}, "memory": {"limit": 64 << 20}}
    delegated.ok("run", "-d", "-b", str(delegated.bundle(cfg)), cid)
    cg = _container_cgroup(delegated, cid)
    assert cg.stat().st_uid == delegated.user.uid
    assert (cg / "pids.max").read_text().strip() == "16"
    assert (cg / "memory.max").read_text().strip() == str(64 << 20)
    init = delegated.state(cid)["pid"]
    assert str(init) in (cg / "cgroup.procs").read_text().split()

    # Forks past the limit fail inside the container.  Detached: runc 1.1.5's exec,
    # a subreaper, would wait for the orphaned sleeps too.
    delegated.ok("exec", "-d", cid, "sh", "-c", "for i in $(seq 30); do sleep 120 & done")
    _wait_for("forks refused by pids.max",
              lambda: int((cg / "pids.events").read_text().split()[-1]) > 0, timeout=60)
    assert int((cg / "pids.current").read_text()) <= 16

    delegated.ok("pause", cid)
    assert delegated.state(cid)["status"] == "paused"
    assert "frozen 1" in (cg / "cgroup.events").read_text()
    delegated.ok("resume", cid)
    assert delegated.state(cid)["status"] == "running"
    assert "frozen 0" in (cg / "cgroup.events").read_text()

    pids = json.loads(delegated.ok("ps", "-f", "json", cid).stdout)
    assert init in pids

    stats = json.loads(delegated.ok("events", "--stats", cid).stdout)
    assert stats["type"] == "stats" and stats["id"] == cid
    assert stats["data"]["pids"]["current"] >= 1
    assert stats["data"]["memory"]["usage"]["usage"] > 0

    delegated.ok("delete", "--force", cid)
    assert not cg.exists()
    assert not (delegated.root / cid).exists()
    assert processes_with(cid) == []


def test_systemd_driver_in_the_users_manager(delegated):
    """`--systemd-cgroup` run by the user: the container's scope is a unit of
    the user's own manager (in its user.slice), with limits and device rules
    (which an unprivileged user cannot install as eBPF: runc leaves them
    unenforced then, and so does pyrunc, without failing), and goes with it."""
    cid = delegated.new_id()
    cfg = delegated.config(["sleep", "300"])
    cfg["linux"]["resources"] = {"pids": {"limit": 16}, "memory": {"limit": 64 << 20}}
    delegated.ok("--systemd-cgroup", "run", "-d", "-b", str(delegated.bundle(cfg)), cid)
    init = delegated.state(cid)["pid"]
    (line,) = Path(f"/proc/{init}/cgroup").read_text().split()
    scope = delegated.session.cgroup / "user.slice" / f"{runtime_name()}-{cid}.scope"
    assert scope.is_dir(), line
    assert str(init) in (scope / "cgroup.procs").read_text().split()
    assert (scope / "memory.max").read_text().strip() == str(64 << 20)
    assert (scope / "pids.max").read_text().strip() == "16"
    delegated.ok("--systemd-cgroup", "delete", "--force", cid)
    assert not scope.exists()
    assert not (delegated.root / cid).exists()


# --------------------------------------------------------------------- rootless podman

PODMAN_PROBE = (f"cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; {HOG}; "
                "echo rc=$?")


@pytest.fixture(scope="module")
def scoped_podman(session: UserSession) -> Iterator[Any]:
    """Rootless podman (tests/engines/test_podman_rootless.py's setup) run as the
    user in a delegated scope of its session, with the runtime under test."""
    from tests.engines.conftest import IMAGE, build_docker_archive, skip_unless_binaries
    from tests.engines.test_podman_rootless import RootlessPodman

    skip_unless_binaries("podman", "conmon")

    class ScopedPodman(RootlessPodman):
        manager = "cgroupfs"

        def argv(self, *args: str) -> list[str]:
            b = self.base
            return session.in_scope(
                "podman", "--root", str(b / "storage"), "--runroot", str(b / "runroot"),
                "--tmpdir", str(b / "libpod"), "--storage-driver", "vfs",
                "--cgroup-manager", self.manager, "--events-backend", "file", *args,
                env={"CONTAINERS_CONF": str(self.conf), "TMPDIR": str(b / "tmp"),
                     "XDG_CONFIG_HOME": str(b / "config"), "XDG_DATA_HOME": str(b / "data")})

    # Short: podman refuses a run root path longer than 50 characters.
    base = session.user.base / "pm"
    base.mkdir()
    session.user.chown_tree(base)
    pm = ScopedPodman(session.user, base)
    pm.image = IMAGE
    try:
        archive = build_docker_archive(base / "image.tar", session.user.rootfs)
        session.user.chown_tree(archive)
        pm.ok("load", "--input", str(archive))
        yield pm
    finally:
        pm("rm", "--all", "--force", "--time", "0", timeout=120)
        # The rest (podman's pause process) ends with the session.
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("manager", ["cgroupfs", "systemd"])
def test_podman_limits_are_enforced(scoped_podman, manager):
    """`podman run --memory 32m --pids-limit 20` through the runtime: the limits are
    the container's own cgroup files, the hog is OOM-killed, nothing is left."""
    pm = scoped_podman
    pm.manager = manager
    cidfile = pm.base / f"cid-{manager}"
    proc = pm("run", "--rm", "--network", "none", "--cidfile", str(cidfile), "--memory", "32m",
              "--pids-limit", "20", pm.image, "sh", "-c", PODMAN_PROBE, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    out = proc.stdout.decode().split()
    assert out[:2] == [str(LIMIT), "20"], out
    assert "rc=137" in out, out
    cid = cidfile.read_text().strip()
    assert cgroup_dirs_named(f"libpod-{cid}") == [] and \
        cgroup_dirs_named(f"libpod-{cid}.scope") == []
    assert processes_with(cid) == []
