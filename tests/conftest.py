"""Shared fixtures: a busybox rootfs, bundles, and a runtime driven through its CLI.

The runtime under test is pyrunc from this checkout (``python -m pyrunc``);
set PYRUNC_TEST_RUNTIME to another runc-compatible binary (e.g. ``runc``) to
run the same tests against it.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import settings

# Property tests check verdicts, not speed: on a loaded 2-core machine one
# example can take longer than hypothesis's default 200 ms deadline, and a
# deadline miss would fail a test whose property held.
settings.register_profile("pyrunc", deadline=None)
settings.load_profile("pyrunc")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# PYRUNC_TEST_RUNTIME=runc (or another runc-compatible binary): the same tests run
# against that runtime, to show that they check runc-compatible behaviour.
OTHER_RUNTIME: str | None = os.environ.get("PYRUNC_TEST_RUNTIME") or None


def runc_differs(reason: str, *, when: bool = True) -> pytest.MarkDecorator:
    """A deliberate difference from runc 1.1.5 (pyrunc follows newer runc or the
    runtime-spec): under another runtime the test must fail (strict xfail), under
    pyrunc it runs and asserts as written.  ``reason`` names runc 1.1.5's behaviour."""
    return pytest.mark.xfail(bool(OTHER_RUNTIME) and when, reason=reason, strict=True)


def pyrunc_only(reason: str) -> pytest.MarkDecorator:
    """A pyrunc-only feature or test hook: skipped under another runtime."""
    return pytest.mark.skipif(bool(OTHER_RUNTIME), reason=reason)


# PYRUNC_TEST_SYSTEMD_CGROUP=1: every command runs with --systemd-cgroup (the systemd
# cgroup driver; needs systemd as PID 1), and tests that name a cgroupsPath use
# cgroups_path_for() to get the driver's "slice:prefix:name" form.
SYSTEMD_CGROUP = os.environ.get("PYRUNC_TEST_SYSTEMD_CGROUP") == "1"


def cgroupfs_driver_only(reason: str) -> pytest.MarkDecorator:
    """A test of the cgroupfs driver's own semantics (pre-existing cgroup
    directories, relative or rootless cgroupfs paths, ...): skipped under
    PYRUNC_TEST_SYSTEMD_CGROUP.  ``reason`` says why it has no systemd-driver
    counterpart."""
    return pytest.mark.skipif(SYSTEMD_CGROUP, reason=f"cgroupfs driver only: {reason}")


_LOGRUS_MSG = re.compile(r' msg="((?:[^"\\]|\\.)*)"')


def error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The single error line; a logrus ``msg="..."`` wrapper (runc) is
    unwrapped, and runc's ``level=warning`` lines are no errors."""
    lines = [ln for ln in proc.stderr.decode().strip().splitlines()
             if not (ln.startswith("time=") and " level=warning " in ln)]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    m = _LOGRUS_MSG.search(line)
    if line.startswith("time=") and m:
        line = json.loads('"' + m.group(1) + '"')
    return line


def runtime_argv() -> list[str]:
    """The command that runs the runtime under test."""
    argv = shlex.split(OTHER_RUNTIME) if OTHER_RUNTIME else [sys.executable, "-m", "pyrunc"]
    return [*argv, "--systemd-cgroup"] if SYSTEMD_CGROUP else argv


def cgroups_path_for(group: str, cid: str) -> tuple[str, str]:
    """(``linux.cgroupsPath``, the cgroup below the hierarchy root) for container ``cid``
    in test group ``group``: ``/group/cid`` with cgroupfs, the scope
    ``group-cid.scope`` in system.slice with the systemd driver."""
    if SYSTEMD_CGROUP:
        return f"system.slice:{group}:{cid}", f"/system.slice/{group}-{cid}.scope"
    return f"/{group}/{cid}", f"/{group}/{cid}"


def runtime_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


BASE_CONFIG: dict[str, Any] = json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root filesystem shared (read-only) by the tests."""
    dest = tmp_path_factory.mktemp("rootfs") / "rootfs"
    subprocess.run([str(REPO / "bundles" / "make-rootfs.sh"), str(dest)], check=True,
                   stdout=subprocess.DEVNULL)
    return dest


class Runtime:
    """A runtime binary with its own --root, driven through the CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids: set[str] = set()

    def argv(self, *args: str, log: str | None = None) -> list[str]:
        extra = ["--log", log, "--log-format", "json"] if log else []
        return [*runtime_argv(), "--root", str(self.root), *extra, *args]

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 60,
                 check: bool = False, log: str | None = None,
                 **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        """Run a command; stdout and stderr are captured unless overridden.

        They are captured through temporary files, not pipes: a container
        started by `create` or `run -d` inherits them and may hold them open
        long after the CLI has exited.
        """
        import tempfile

        if input is None and "stdin" not in kwargs:
            kwargs["stdin"] = subprocess.DEVNULL
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kwargs.setdefault("stdout", out)
            kwargs.setdefault("stderr", err)
            proc = subprocess.run(self.argv(*args, log=log), input=input, timeout=timeout,
                                  env=runtime_env(), **kwargs)
            if kwargs["stdout"] is out:
                out.seek(0)
                proc.stdout = out.read()
            if kwargs["stderr"] is err:
                err.seek(0)
                proc.stderr = err.read()
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr!r}")
        return proc

    def state(self, cid: str) -> dict[str, Any]:
        proc = self("state", cid, check=True)
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def new_id(self, prefix: str = "t") -> str:
        cid = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.ids.add(cid)
        return cid

    def cleanup(self) -> None:
        for cid in sorted(self.ids):
            self("delete", "--force", cid, timeout=30)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """The runtime under test with a private state root; containers are removed after."""
    rt = Runtime(tmp_path / "state")
    try:
        yield rt
    finally:
        rt.cleanup()


@pytest.fixture
def rt(runtime: Runtime) -> Iterator[Runtime]:
    """The runtime fixture, plus a leak check once every container is deleted:
    no cgroup, no state directory and, under the systemd driver, no unit."""
    yield runtime
    runtime.cleanup()
    for cid in runtime.ids:
        assert cgroup_dirs_named(cid) == [], f"cgroup of {cid} left behind"
        assert systemd_units_named(cid) == [], f"systemd unit of {cid} left behind"
        assert not (runtime.root / cid).exists()


@pytest.fixture
def dir_with_submount(tmp_path: Path) -> Iterator[Path]:
    """A host dir in our temp dir: a file "top", and a tmpfs on "sub" holding "inner"."""
    top = tmp_path / "tree"
    (top / "sub").mkdir(parents=True)
    (top / "top").write_text("top\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "pyrunc-test", str(top / "sub")],
                   check=True)
    try:
        (top / "sub" / "inner").write_text("inner\n")
        yield top
    finally:
        subprocess.run(["umount", "-l", str(top / "sub")], check=True)


class BundleFactory:
    """Makes bundles around the shared rootfs."""

    def __init__(self, base: Path, rootfs: Path) -> None:
        self.base = base
        self.rootfs = rootfs
        self.count = 0

    def config(self, args: list[str] | None = None) -> dict[str, Any]:
        cfg = copy.deepcopy(BASE_CONFIG)
        cfg["root"]["path"] = str(self.rootfs)
        if args is not None:
            cfg["process"]["args"] = args
        return cfg

    def __call__(self, args: list[str] | None = None, config: dict[str, Any] | None = None,
                 raw: str | None = None) -> Path:
        self.count += 1
        path = self.base / f"bundle{self.count}"
        path.mkdir(parents=True)
        text = raw if raw is not None else json.dumps(config or self.config(args))
        (path / "config.json").write_text(text)
        return path


@pytest.fixture
def bundle(tmp_path: Path, rootfs: Path) -> BundleFactory:
    """Factory: bundle(args=[...]) or bundle(config=dict) -> bundle directory."""
    return BundleFactory(tmp_path / "bundles", rootfs)


def cgroup_dirs_named(name: str) -> list[str]:
    """Every cgroup called `name` in any mounted cgroup hierarchy (leak check);
    with PYRUNC_TEST_SYSTEMD_CGROUP also every `<prefix>-<name>.scope`, the
    cgroup the systemd driver gives container `name`.

    Only mounted hierarchies count (from the mount table): plain directories
    on the /sys/fs/cgroup tmpfs, which podman's cgroupfs driver makes for
    controllers the host has not mounted, are no cgroups.
    """
    from tests.helpers.cgroupfs import dirs_named

    return dirs_named(name, suffix=f"-{name}.scope" if SYSTEMD_CGROUP else None)


def systemd_units_named(name: str, settle: float = 10.0) -> list[str]:
    """Units systemd still has loaded (in any state) whose name contains
    `name`, after waiting up to `settle` seconds for them to go (leak check:
    systemd unloads a stopped transient scope on its own time); [] without
    PYRUNC_TEST_SYSTEMD_CGROUP, where the runtime makes no units."""
    if not SYSTEMD_CGROUP:
        return []
    deadline = time.monotonic() + settle
    while True:
        out = subprocess.run(["systemctl", "list-units", "--all", "--no-legend", "--plain"],
                             capture_output=True, text=True, check=True).stdout
        units = [fields[0] for fields in map(str.split, out.splitlines())
                 if fields and name in fields[0]]
        if not units or time.monotonic() > deadline:
            return units
        time.sleep(0.1)


def processes_with(text: str) -> list[int]:
    """Pids whose command line contains text (leak check)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if text.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def mounts_under(path: str) -> list[str]:
    """Mount points at or below path in this mount namespace (leak check)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                out.append(mp)
    return out


@pytest.fixture(scope="session")
def rootless_user(rootfs: Path) -> Iterator[Any]:
    """An unprivileged user of the tests' own, with subuid/subgid ranges (removed after)."""
    from tests.helpers.rootless import make_test_user

    user, why, cleanup = make_test_user(rootfs)
    if user is None:
        pytest.skip(why)
    try:
        yield user
    finally:
        cleanup()


@pytest.fixture
def rootless(rootless_user: Any) -> Iterator[Any]:
    """The runtime under test run by the rootless test user; its containers removed after."""
    import tempfile

    from tests.helpers.rootless import RootlessRuntime

    work = Path(tempfile.mkdtemp(dir=rootless_user.base))
    rootless_user.chown_tree(work)
    rt = RootlessRuntime(rootless_user, work)
    try:
        yield rt
    finally:
        rt.cleanup()
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def held_mount_namespace(tmp_path: Path) -> Iterator[Path]:
    """A new, empty-handed mount namespace held by a bind mount on a file in tmp_path.

    The namespace file can only be bound below a private mount, so the holder
    dir is bound onto itself and made private first; both are unmounted after.
    """
    holder = tmp_path / "nsholder"
    holder.mkdir()
    subprocess.run(["mount", "--bind", str(holder), str(holder)], check=True)
    try:
        subprocess.run(["mount", "--make-private", str(holder)], check=True)
        ns_file = holder / "mnt"
        ns_file.touch()
        subprocess.run(["unshare", f"--mount={ns_file}", "--propagation", "private", "true"],
                       check=True)
        try:
            yield ns_file
        finally:
            subprocess.run(["umount", "-l", str(ns_file)], check=False)
    finally:
        subprocess.run(["umount", "-l", str(holder)], check=False)
