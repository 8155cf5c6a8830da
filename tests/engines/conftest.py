"""Engine harness: real containerd / podman / docker driving a runtime binary.

The runtime under test is PYRUNC_ENGINE_RUNTIME (any runc-compatible binary,
e.g. /usr/sbin/runc); by default it is pyrunc from this checkout, through a
wrapper script the harness writes.  Either way the engines are given a small
wrapper called after the runtime's basename (podman's `runtime_supports_json`
matches on it) that appends each invocation to a log, then execs the runtime.

Every daemon runs in a Sandbox: private mount, PID and network namespaces made
by unshare(1), a tmpfs on /run, and temp dirs bound over the engines' default
state dirs, so nothing reaches the host outside the test's temp dirs (except the
containers' cgroups, which are named after a per-run prefix and removed at the
end).  Clients talk to the daemon over its unix socket path (docker, ctr) or run
inside the sandbox (podman, which is daemonless).

With the systemd cgroup driver (``Sandbox(..., driver="systemd")``) the
sandbox keeps the host's PID namespace, since the runtime hands systemd the
container's pid as it sees it, and binds /run/systemd and /run/dbus back into
its /run; it runs in a transient scope of a slice named after the run
(``run_slice``), where the engine is also told to put its containers, and its
clean-up stops that scope and that slice instead of killing a PID 1.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

IMAGE = "localhost/pyrunc-busybox:latest"
IMAGE_USER = "localhost/pyrunc-busybox:user"   # same layer; config sets User/Env/WorkingDir
IMAGE_USER_ID = "1234:5678"

#: A per-run prefix for everything the engines create on the host (cgroups).
RUN_TAG = f"pyrunc-eng-{uuid.uuid4().hex[:8]}"

#: The cgroup drivers the driver-dependent scenarios run with.
DRIVERS = ["cgroupfs", "systemd"]

#: The shell snippet every memory test runs: doubles a variable up to 64 MiB
#: and stops there.  The last doubling holds the old and the new value, so the
#: shell peaks at about 128 MiB (measured: 130 MiB RSS with busybox sh), far
#: above the tests' 16 MiB limit, yet a missing limit cannot eat the swapless VM.
HOG = ('x=0123456789abcdef; while [ "${#x}" -lt 67108864 ]; do x="$x$x"; done; '
       'echo survived ${#x}')


def _target() -> str | None:
    return os.environ.get("PYRUNC_ENGINE_RUNTIME") or None


def testing_pyrunc() -> bool:
    target = _target()
    return target is None or "pyrunc" in os.path.basename(target)


def pyrunc_pending(reason: str) -> pytest.MarkDecorator:
    """xfail(strict=False) for a pyrunc feature not done yet; nothing for other runtimes."""
    return pytest.mark.xfail(testing_pyrunc(), strict=False,
                             reason=f"pyrunc: {reason}")


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("engine tests need root")


# --------------------------------------------------------------------------- runtime

class RuntimeBin:
    """The wrapper the engines are configured with."""

    def __init__(self, base: Path) -> None:
        base.mkdir(parents=True, exist_ok=True)
        target = _target()
        self.calls = base / "runtime-calls.log"
        self.calls.touch()
        bindir = base / "bin"
        bindir.mkdir(exist_ok=True)
        if target is None:
            self.name = "pyrunc"
            self.exec_line = (f'PYTHONPATH={_sh_quote(str(REPO))} '
                              f'exec {_sh_quote(sys.executable)} -m pyrunc "$@"')
            self.direct = [sys.executable, "-m", "pyrunc"]
        else:
            resolved = shutil.which(target) or target
            self.name = os.path.basename(resolved)
            self.exec_line = f'exec {_sh_quote(resolved)} "$@"'
            self.direct = [resolved]
        self.path = bindir / self.name
        self.path.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "$*" >> {_sh_quote(str(self.calls))}\n'
            f"{self.exec_line}\n")
        self.path.chmod(0o755)

    def calls_since(self, mark: int) -> str:
        return self.calls.read_text()[mark:]

    def assert_exec_got_console_socket(self, mark: int) -> None:
        """The engine's first `exec` since mark passed a --console-socket."""
        calls = self.calls_since(mark)
        execs = [line for line in calls.splitlines() if " exec " in f" {line} "]
        assert execs and "--console-socket" in execs[0], calls

    def mark(self) -> int:
        return len(self.calls.read_text())

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


@pytest.fixture(scope="session")
def engine_runtime(tmp_path_factory: pytest.TempPathFactory) -> RuntimeBin:
    rt = RuntimeBin(tmp_path_factory.mktemp("engine-runtime"))
    probe = subprocess.run([str(rt.path), "--version"], capture_output=True, timeout=60,
                           check=False)
    if probe.returncode != 0:
        pytest.fail(f"runtime under test does not run: {rt.exec_line}: {probe.stderr!r}")
    return rt


# --------------------------------------------------------------------------- image

def _tar_rootfs(rootfs: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted(p for p in rootfs.rglob("*"))
        for p in paths:
            info = tar.gettarinfo(str(p), arcname=str(p.relative_to(rootfs)))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            if info.isfile():
                with open(p, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def build_docker_archive(dest: Path, rootfs: Path) -> Path:
    """A docker-archive tarball (what `docker save` writes) with two tags on one layer.

    containerd (`ctr images import`), podman (`podman load`) and docker
    (`docker load`) all read this format.
    """
    layer = _tar_rootfs(rootfs)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    def config(extra: dict[str, Any]) -> bytes:
        cfg: dict[str, Any] = {"Env": [path_env], "Cmd": ["sh"], "WorkingDir": "/"}
        cfg.update(extra)
        body = {
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "pyrunc tests: busybox-static"}],
        }
        return json.dumps(body, sort_keys=True).encode()

    configs = {
        IMAGE: config({}),
        IMAGE_USER: config({"User": IMAGE_USER_ID, "WorkingDir": "/tmp",
                            "Env": [path_env, "IMGVAR=from-image"]}),
    }
    layer_name = diff_id.split(":")[1] + "/layer.tar"
    manifest = []
    files: dict[str, bytes] = {layer_name: layer}
    for tag, cfg in configs.items():
        name = hashlib.sha256(cfg).hexdigest() + ".json"
        files[name] = cfg
        manifest.append({"Config": name, "RepoTags": [tag], "Layers": [layer_name]})
    files["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(dest, "w") as tar:
        dirs = sorted({n.split("/")[0] for n in files if "/" in n})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return dest


@pytest.fixture(scope="session")
def image_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("image")
    rootfs = base / "rootfs"
    subprocess.run([str(REPO / "bundles" / "make-rootfs.sh"), str(rootfs)], check=True,
                   stdout=subprocess.DEVNULL)
    archive = build_docker_archive(base / "busybox.tar", rootfs)
    shutil.rmtree(rootfs)
    return archive


@pytest.fixture(scope="session")
def direct_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox rootfs for running the runtime by hand (no engine)."""
    rootfs = tmp_path_factory.mktemp("direct") / "rootfs"
    subprocess.run([str(REPO / "bundles" / "make-rootfs.sh"), str(rootfs)], check=True,
                   stdout=subprocess.DEVNULL)
    return rootfs


def direct_create_failure(rt: RuntimeBin, rootfs: Path, base: Path,
                          args: Sequence[str]) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """Run `<rt> --log F --log-format json create` (the engines' way) on a bundle whose
    process is ``args``, expecting it to fail; returns the process and F's raw text.

    The bundle comes from the runtime's own `spec`, with no terminal and a cgroup
    under RUN_TAG (removed with the rest at the end).
    """
    bundle = base / "bundle"
    bundle.mkdir()
    shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)   # runc refuses a symlinked rootfs
    spec = run([str(rt.path), "spec", "--bundle", str(bundle)])
    assert spec.returncode == 0, explain(spec)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = list(args)
    config["process"]["terminal"] = False
    container_id = f"{RUN_TAG}-direct-{uuid.uuid4().hex[:6]}"
    config["linux"]["cgroupsPath"] = f"/{RUN_TAG}-direct/{container_id}"
    (bundle / "config.json").write_text(json.dumps(config))
    root = base / "state"
    log = base / "log.json"
    proc = run([str(rt.path), "--root", str(root), "--log", str(log), "--log-format", "json",
                "create", "--bundle", str(bundle), "--pid-file", str(base / "pid"), container_id],
               timeout=60)
    run([str(rt.path), "--root", str(root), "delete", "--force", container_id], timeout=60)
    return proc, log.read_text() if log.exists() else ""


# --------------------------------------------------------------------------- sandbox

#: Host dirs the engines write to by default (podman's blob cache in /var/lib/containers,
#: network locks in /etc/containers and /etc/cni, ...).  Inside the sandbox each gets
#: an overlay whose upper layer is a temp dir, so such writes never reach the host.
OVERLAID = ["/etc", "/var/lib", "/var/tmp", "/var/log", "/var/cache", "/root"]


def _ns_inode(pid: int, ns: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{ns}").st_ino
    except OSError:
        return None


def _status_field(pid: int, key: str) -> list[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return [int(v) for v in line.split()[1:]]
    except OSError:
        pass
    return []


def _nspids(pid: int) -> list[int]:
    """NSpid of /proc/PID/status: the pid in each PID namespace, ours first."""
    return _status_field(pid, "NSpid")


def _pids_in_pidns(inode: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _ns_inode(int(entry), "pid") == inode:
            found.append(int(entry))
    return found


class Sandbox:
    """Private mount/PID/net namespaces with an optional daemon under a small PID 1.

    ``driver="systemd"``: private mount/net namespaces only, in a transient
    scope of ``run_slice(name)`` (see the module's docstring).
    """

    def __init__(self, base: Path, name: str, daemon: Sequence[str] = (),
                 driver: str = "cgroupfs") -> None:
        self.base = base
        self.name = name
        self.driver = driver
        self.slice = run_slice(name) if driver == "systemd" else ""
        self.scope = f"{self.slice[:-len('.slice')]}-sandbox.scope" if self.slice else ""
        self.scopes_before = scope_units() if self.slice else set()
        self.units_left: list[str] = []
        self.dirs_left: list[str] = []
        self.log = base / f"{name}.log"
        overlays = []
        for host in OVERLAID:
            if os.path.isdir(host) and not os.path.islink(host):
                tmp = base / "overlay" / host.strip("/").replace("/", "_")
                (tmp / "upper").mkdir(parents=True)
                (tmp / "work").mkdir()
                overlays.append([host, str(tmp / "upper"), str(tmp / "work")])
        ready = base / f"{name}.ready"
        setup = base / f"{name}.setup.json"
        conf: dict[str, Any] = {"ready": str(ready), "overlay": overlays}
        if driver == "systemd":
            # The engines look for /run/systemd/system; the runtime and podman
            # talk to systemd through /run/systemd/private or the system bus.
            conf["keep_run"] = [d for d in ("/run/systemd", "/run/dbus") if os.path.isdir(d)]
            conf["stage"] = str(base / "run-stage")
            conf["pid1"] = False
            argv = ["systemd-run", "--scope", "--quiet", "--collect", "--unit", self.scope,
                    "--slice", self.slice, "--property", "TimeoutStopSec=20",
                    "unshare", "--mount", "--net", "--propagation", "private", "--",
                    sys.executable, str(HERE / "nsinit.py"), str(setup)]
        else:
            argv = ["unshare", "--mount", "--pid", "--net", "--fork", "--mount-proc",
                    "--propagation", "private", "--",
                    sys.executable, str(HERE / "nsinit.py"), str(setup)]
        setup.write_text(json.dumps(conf))
        if daemon:
            argv += ["--", *daemon]
        self.logf = open(self.log, "ab")  # noqa: SIM115  (closed in stop())
        self.tmpdir = base / "tmp"      # TMPDIR for the daemon and its shims/runtimes
        self.tmpdir.mkdir(exist_ok=True)
        self.home = base / "home"
        self.home.mkdir(exist_ok=True)
        env = engine_env({"TMPDIR": str(self.tmpdir), "HOME": str(self.home)})
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf, env=env,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.init_pid = 0
        self.pidns: int | None = None
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox {name} did not come up: {self.log_tail()}")
            time.sleep(0.02)
        if driver == "systemd":
            # systemd-run --scope and unshare (without --fork) exec: nsinit has
            # the pid systemd-run started with.
            self.init_pid = self.proc.pid
        else:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            self.init_pid = int(children[0])
            self.pidns = _ns_inode(self.init_pid, "pid")

    def host_pid(self, pid: int) -> int:
        """The host's pid of the process an engine in the sandbox reports as ``pid``."""
        if self.pidns is None:
            return pid
        level = len(_nspids(self.init_pid)) - 1
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                ns = _nspids(int(entry))
                if len(ns) > level and ns[level] == pid and self._descends(int(entry)):
                    return int(entry)
        raise LookupError(f"pid {pid} of sandbox {self.name} not found")

    def _descends(self, pid: int) -> bool:
        """Whether ``pid`` is the sandbox's PID 1 or below it (orphans there are
        reparented to it, so the chain of parents always reaches it)."""
        while pid > 1:
            if pid == self.init_pid:
                return True
            ppid = _status_field(pid, "PPid")
            pid = ppid[0] if ppid else 0
        return False

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def nsenter_argv(self, argv: Sequence[str]) -> list[str]:
        namespaces = ["--mount", "--net"] if self.driver == "systemd" else ["--mount", "--pid", "--net"]
        return ["env", f"TMPDIR={self.tmpdir}", f"HOME={self.home}",
                "nsenter", "--target", str(self.init_pid), *namespaces, "--", *argv]

    def stop(self) -> list[int]:
        """Stop the daemon, kill the namespace's PID 1; returns leftover pids (should be [])."""
        if self.proc.poll() is None and self.init_pid:
            try:
                os.kill(self.init_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            if self.init_pid:
                try:
                    os.kill(self.init_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.logf.close()
        leftovers: list[int] = []
        if self.driver == "systemd":
            return self._stop_units()
        if self.pidns is not None:
            deadline = time.monotonic() + 10
            while True:
                leftovers = _pids_in_pidns(self.pidns)
                if not leftovers or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        return leftovers


    def _stop_units(self) -> list[int]:
        """Stop the sandbox's scope (what the daemon left: shims, conmons) and its
        slice; returns the pids that outlived the stop (should be [])."""
        cgroup = unit_cgroup(self.scope)
        run(["systemctl", "stop", self.scope], timeout=60)
        leftovers = cgroup_pids(cgroup)
        self.units_left = sorted(u for u in scope_units() - self.scopes_before - {self.scope}
                                 if unit_properties(u, "Slice").get("Slice") == self.slice)
        run(["systemctl", "stop", self.slice], timeout=60)
        run(["systemctl", "reset-failed", self.slice, *self.units_left], timeout=60)
        self.dirs_left = self._remove_slice_dirs()
        return leftovers

    def _remove_slice_dirs(self) -> list[str]:
        """Remove the slice's directories in the v1 hierarchies systemd does not
        manage (a hybrid host's freezer, cpuset, perf_event, ...); returns the
        container cgroups found below them (should be []).

        There the runtime, not systemd, made each container's cgroup, and its
        parents with it; delete removes the container's own directory, and the
        slice's stays, empty, with runc as with pyrunc: it is the run's, and
        removed here.  Stopping the slice removed it everywhere else.
        """
        from tests.helpers.cgroupfs import dirs_named

        left: list[str] = []
        for top in dirs_named(self.slice, max_depth=1):
            left += [str(p) for p in Path(top).rglob("*") if p.is_dir()]
            _rmdir_tree(Path(top))
        return left


# --------------------------------------------------------------------------- systemd

def systemd_unavailable() -> str | None:
    """Why the systemd cgroup driver cannot be tested here, or None."""
    if not os.path.isdir("/run/systemd/system"):
        return ("systemd is not PID 1 here: the systemd cgroup driver needs it "
                "(these variants run in the VM lane, tests/vm/lane.py)")
    if shutil.which("systemctl") is None or shutil.which("systemd-run") is None:
        return "systemctl/systemd-run are not installed"
    return None


def skip_unless_systemd() -> None:
    why = systemd_unavailable()
    if why:
        pytest.skip(why)


def run_slice(name: str) -> str:
    """The slice an engine's sandbox and containers go to: one per engine and run.

    Underscores, not dashes: a dash in a slice name means a parent slice.
    """
    return f"{RUN_TAG.replace('-', '_')}_{name}.slice"


def scope_units() -> set[str]:
    """Every scope unit systemd has loaded (`systemctl list-units --all '*.scope'`)."""
    proc = run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "--full", "*.scope"],
               timeout=60)
    return {line.split()[0] for line in proc.stdout.decode().splitlines() if line.strip()}


def unit_properties(unit: str, *names: str) -> dict[str, str]:
    """`systemctl show -p NAME... UNIT` as a dict."""
    args = [a for n in names for a in ("--property", n)]
    proc = run(["systemctl", "show", *args, unit], timeout=60)
    props = {}
    for line in proc.stdout.decode().splitlines():
        key, _, value = line.partition("=")
        props[key] = value
    return props


def unit_cgroup(unit: str) -> Path | None:
    """The unit's cgroup directory in the hierarchy systemd tracks units in
    (name=systemd on v1 and hybrid hosts, the cgroup2 one on pure v2), or None."""
    from tests.helpers.cgroupfs import unified_mount, v1_mount

    group = unit_properties(unit, "ControlGroup").get("ControlGroup", "")
    if not group:
        return None
    for mount in (v1_mount("name=systemd"), unified_mount()):
        if mount is None:
            continue
        path = Path(mount.mountpoint, group.lstrip("/"))
        if (path / "cgroup.procs").exists():
            return path
    return None


def oom_kills_in_unit(unit: str) -> int | None:
    """The ``oom_kill`` count of a unit's cgroup v2 ``memory.events`` (hierarchical:
    a slice counts its scopes' kills, also of scopes already removed), or None
    where the unit has no such file (memory is a v1 controller, or no unit)."""
    from tests.helpers.cgroupfs import oom_kill_count

    group = unit_cgroup(unit)
    if group is None or not (group / "memory.events").exists():
        return None
    return oom_kill_count((group / "memory.events").read_text())


class LimitsSeen:
    """What a test checked of a running container's cgroup (see check_limits)."""

    def __init__(self, driver: str, scope: str, dirs: list[Path]) -> None:
        self.driver = driver
        self.scope = scope
        self.dirs = dirs

    def gone(self) -> bool:
        """The container's cgroup (and with systemd its scope unit) no longer exists."""
        if any(d.is_dir() for d in self.dirs):
            return False
        return self.driver != "systemd" or self.scope not in scope_units()


def memory_limit_property(files: Any) -> str:
    """The unit property a runtime sets for the memory limit: MemoryMax where the
    memory controller is cgroup v2, MemoryLimit where it is v1 (a hybrid host;
    runc's v1 systemd driver sets that one, and systemd shows MemoryMax
    ``infinity`` there)."""
    return "MemoryLimit" if files.version("memory") == "v1" else "MemoryMax"


def check_limits(driver: str, scope: str, pid: int, *, memory: int, pids: int | None = None,
                 cpu_quota: str | None = None) -> LimitsSeen:
    """Assert the limits of the container whose init is ``pid``: in its cgroup's
    files and, with the systemd driver, in ``systemctl show`` of ``scope`` (the
    unit is active and its ControlGroup is the init's cgroup).

    ``cpu_quota`` is systemd's CPUQuotaPerSecUSec text (e.g. "500ms").  The
    memory property is MemoryMax or, where memory is a v1 controller,
    MemoryLimit (see memory_limit_property).
    """
    from tests.helpers.cgroupfs import CgroupFiles, hierarchies

    files = CgroupFiles(pid)
    assert files.memory_limit() == memory, files.dirs
    if pids is not None:
        assert files.pids_max() == pids, files.dirs
    if driver == "systemd":
        memory_property = memory_limit_property(files)
        props = unit_properties(scope, "ActiveState", memory_property, "TasksMax",
                                "CPUQuotaPerSecUSec", "ControlGroup", "Delegate")
        assert props.get("ActiveState") == "active", props
        assert props.get("Delegate") == "yes", props
        assert props.get(memory_property) == str(memory), props
        if pids is not None:
            assert props.get("TasksMax") == str(pids), props
        if cpu_quota is not None:
            assert props.get("CPUQuotaPerSecUSec") == cpu_quota, props
        cgroup = unit_cgroup(scope)
        assert cgroup is not None and pid in cgroup_pids(cgroup), (props, cgroup)
    # A hierarchy's root is no container cgroup: runc 1.1.5 leaves its
    # containers at the root of the v1 misc hierarchy, which it does not know.
    roots = set(hierarchies())
    return LimitsSeen(driver, scope, sorted({d for d in files.dirs.values() if d not in roots}))


def cgroup_pids(cgroup: Path | None) -> list[int]:
    """The pids in ``cgroup`` and below it ([] for None or a cgroup that is gone)."""
    if cgroup is None:
        return []
    pids = []
    for procs in [cgroup / "cgroup.procs", *cgroup.rglob("*/cgroup.procs")]:
        try:
            pids += [int(p) for p in procs.read_text().split()]
        except OSError:
            pass
    return pids


def _rmdir_tree(top: Path) -> bool:
    """rmdir a cgroup and its children, deepest first; True once it is gone."""
    for sub in sorted(top.rglob("*"), key=lambda p: -len(p.parts)):
        if sub.is_dir():
            try:
                sub.rmdir()
            except OSError:
                pass
    try:
        top.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def remove_run_cgroups() -> list[str]:
    """rmdir every cgroup named after RUN_TAG (bottom-up); returns the ones that stayed.

    Only mounted hierarchies hold cgroups.  Podman's cgroupfs driver also
    makes plain directories for controllers the host has not mounted
    (/sys/fs/cgroup/hugetlb, net_cls, ... on the tmpfs of a hybrid host) and
    writes files into them: the run's own ones are removed quietly, as the
    files they are, and are no leak.
    """
    from tests.helpers.cgroupfs import hierarchies

    stayed = []
    tops = hierarchies()
    for hierarchy in tops:
        for dirpath, dirnames, _ in os.walk(hierarchy):
            for d in list(dirnames):
                if d.startswith(RUN_TAG):
                    top = Path(dirpath) / d
                    if not _rmdir_tree(top):
                        stayed.append(str(top))
                    dirnames.remove(d)
            if dirpath.count("/") > 7:
                dirnames.clear()
    root = Path("/sys/fs/cgroup")
    if root not in tops and root.is_dir():
        for plain in root.iterdir():
            if plain.is_dir() and plain not in tops and not plain.is_symlink():
                for junk in plain.glob(f"{RUN_TAG}*"):
                    shutil.rmtree(junk, ignore_errors=True)
    return stayed


def finish_sandbox(sb: Sandbox) -> None:
    leftovers = sb.stop()
    stayed = remove_run_cgroups()
    shutil.rmtree(sb.base, ignore_errors=True)
    assert not leftovers, f"processes left in sandbox {sb.name}: {leftovers}"
    assert not stayed, f"cgroups left behind: {stayed}"
    if sb.driver == "systemd":
        assert not sb.units_left, f"scope units left behind (now stopped): {sb.units_left}"
        assert not sb.dirs_left, f"container cgroups left behind (now removed): {sb.dirs_left}"


# --------------------------------------------------------------------------- helpers

def run(argv: Sequence[str], timeout: float = 120, input: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, env=env, check=False)


def answers(call: Any) -> bool:
    """True when a client call to a daemon succeeds; a call that times out is "not yet"
    (a daemon in a slow guest can take longer than one probe to answer)."""
    try:
        return bool(call().returncode == 0)
    except subprocess.TimeoutExpired:
        return False


#: How long a daemon may take to answer on its socket (a loaded software-CPU guest is slow).
DAEMON_START_TIMEOUT = 180


def engine_per_driver(request: pytest.FixtureRequest, fixture: str) -> Iterator[Any]:
    """The body of a fixture parametrized over DRIVERS: the module's engine fixture
    ``fixture`` (cgroupfs) or ``<fixture>_systemd``; with systemd the test must
    leave no scope unit behind."""
    if request.param == "cgroupfs":
        yield request.getfixturevalue(fixture)
        return
    eng = request.getfixturevalue(f"{fixture}_systemd")
    before = scope_units()
    yield eng
    assert wait_until(lambda: not (scope_units() - before), 20), \
        f"scope units left by the test: {sorted(scope_units() - before)}"


def wait_until(pred: Any, timeout: float = 20, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def explain(proc: subprocess.CompletedProcess[bytes], rt: RuntimeBin | None = None,
            mark: int = 0) -> str:
    text = (f"rc={proc.returncode}\nstdout={proc.stdout.decode(errors='replace')[-2000:]}\n"
            f"stderr={proc.stderr.decode(errors='replace')[-2000:]}")
    if rt is not None:
        text += "\nruntime calls:\n" + rt.calls_since(mark)[-3000:]
    return text


class PtySession:
    """A client command run on a pseudo-terminal (for `run -t` / `-it`)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        self.proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, env=env,
                                     preexec_fn=lambda: _set_ctty(0))  # noqa: PLW1509
        os.close(slave)
        self.output = b""

    def read_until(self, needle: bytes, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    return needle in self.output
                if not chunk:
                    return needle in self.output
                self.output += chunk
        return True

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read_until(b"\x00never\x00", timeout=0.2)
        try:
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            self.read_until(b"\x00never\x00", timeout=0.2)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)


    def converse(self, tag: str, tty_prefix: bytes, code: int,
                 context: Callable[[], str] = lambda: "") -> None:
        """Echo a computed tag, print the tty, exit with code; assert each answer, then close.

        ``context`` is called only on failure (e.g. the runtime calls so far).
        """
        try:
            self.send(f"echo {tag}-$((6*7)); tty\n".encode())
            assert self.read_until(f"{tag}-42".encode(), 30), self.output + context().encode()
            assert self.read_until(tty_prefix, 10), self.output
            self.send(f"exit {code}\n".encode())
            assert self.wait(30) == code, self.output
        finally:
            self.close()


def _set_ctty(fd: int) -> None:
    import fcntl
    import termios
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


@pytest.fixture
def hostdir(tmp_path: Path) -> Path:
    d = tmp_path / "hostdir"
    d.mkdir()
    d.chmod(0o777)   # our own temp dir: let the image's non-root user write too
    return d


def new_name(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def engine_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra or {})
    return env


def skip_unless_binaries(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None and not os.path.exists(n)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


__all__ = [
    "DRIVERS",
    "HOG",
    "IMAGE",
    "IMAGE_USER",
    "IMAGE_USER_ID",
    "LimitsSeen",
    "RUN_TAG",
    "Iterator",
    "PtySession",
    "RuntimeBin",
    "cgroup_pids",
    "check_limits",
    "Sandbox",
    "direct_create_failure",
    "engine_env",
    "explain",
    "finish_sandbox",
    "new_name",
    "pyrunc_pending",
    "require_root",
    "run",
    "run_slice",
    "scope_units",
    "skip_unless_binaries",
    "skip_unless_systemd",
    "systemd_unavailable",
    "unit_cgroup",
    "unit_properties",
    "testing_pyrunc",
    "wait_until",
]
