"""SystemdManager against a real systemd (PID 1): the VM lane's guest, or any host where
systemd runs and the tests are root.

Every unit is checked with systemd's own tools (``systemctl show``) and the cgroup
filesystem (through tests/helpers/cgroupfs: pure v2 or, `lane.py run --cgroup hybrid`,
systemd's hybrid layout), and every test leaves no unit behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrunc.linux.dbus import Connection
from pyrunc.linux.systemd_manager import SystemdError, SystemdManager
from tests.conftest import REPO
from tests.helpers import cgroupfs
from tests.helpers.cgroupfs import CgroupFiles

pytestmark = [
    pytest.mark.skipif(not os.path.isdir("/run/systemd/system"), reason="systemd is not PID 1 here (VM lane)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the system manager's private socket)"),
]

SCOPE = "org.freedesktop.systemd1.Scope"
UNIT = "org.freedesktop.systemd1.Unit"


def show(unit: str, *props: str) -> dict[str, str]:
    out = subprocess.run(["systemctl", "show", "-p", ",".join(props), unit], capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def our_units() -> list[str]:
    out = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "pyrunc-dbus-*"],
                         capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def gone(unit: str) -> bool:
    return show(unit, "LoadState")["LoadState"] == "not-found"


@pytest.fixture
def manager() -> Iterator[SystemdManager]:
    before = our_units()
    with SystemdManager.connect(timeout=60) as m:
        yield m
    assert our_units() == before


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def name(kind: str = "scope") -> str:
    return f"pyrunc-dbus-{uuid.uuid4().hex[:12]}.{kind}"


def test_connects_to_the_private_socket(manager: SystemdManager) -> None:
    assert manager.conn.path == "/run/systemd/private" and not manager.conn.bus
    first = subprocess.run(["systemctl", "--version"], capture_output=True, text=True, check=True).stdout.split()
    assert manager.version() == int(first[1])  # "systemd 252 (252.x-...)"


def test_transient_scope_lifecycle(manager: SystemdManager, sleeper: subprocess.Popen[bytes]) -> None:
    unit = name()
    props = [("Description", ("s", "pyrunc dbus test")), ("Slice", ("s", "system.slice")),
             ("PIDs", ("au", [sleeper.pid])), ("Delegate", ("b", True)), ("MemoryMax", ("t", 64 << 20)),
             ("TasksMax", ("t", 50))]
    try:
        manager.start_transient_unit(unit, props)
        cgroup = f"/system.slice/{unit}"
        assert manager.get_unit_property(unit, SCOPE, "ControlGroup") == cgroup
        assert manager.get_unit_property(unit, UNIT, "ActiveState") == "active"
        assert show(unit, "ControlGroup", "Delegate", "MemoryMax", "TasksMax", "ActiveState") == {
            "ControlGroup": cgroup, "Delegate": "yes", "MemoryMax": str(64 << 20), "TasksMax": "50",
            "ActiveState": "active"}
        # The process is in the scope (on v1, in systemd's own hierarchies and
        # those of the controllers it manages), and systemd wrote the limit
        # (on v1 to memory.limit_in_bytes).
        own = cgroupfs.own_cgroups(sleeper.pid)
        if cgroupfs.mode() == "v2":
            assert own == {"": cgroup}
        else:
            assert own["name=systemd"] == own["memory"] == own["pids"] == cgroup
        files = CgroupFiles(sleeper.pid)
        assert files.memory_limit() == 64 << 20

        manager.set_unit_properties(unit, True, [("MemoryMax", ("t", 128 << 20))])
        assert show(unit, "MemoryMax") == {"MemoryMax": str(128 << 20)}
        assert files.memory_limit() == 128 << 20

        manager.stop_unit(unit)
        assert sleeper.wait(timeout=30) == -signal.SIGTERM
        assert gone(unit)
        assert not CgroupFiles.of_path(cgroup).exists()
        with pytest.raises(SystemdError) as info:
            manager.get_unit_property(unit, UNIT, "ActiveState")
        assert info.value.dbus_name == "org.freedesktop.systemd1.NoSuchUnit"
        manager.stop_unit(unit)  # already gone: quiet
        manager.reset_failed_unit(unit)
    finally:
        manager.stop_unit(unit)


def test_unit_exists(manager: SystemdManager, sleeper: subprocess.Popen[bytes]) -> None:
    unit = name()
    try:
        manager.start_transient_unit(unit, [("PIDs", ("au", [sleeper.pid]))])
        with pytest.raises(SystemdError) as info:
            manager.start_transient_unit(unit, [("PIDs", ("au", [sleeper.pid]))])
        # systemd's text varies by version ("already exists.", 252: "was already loaded or has a fragment file.")
        assert str(info.value).startswith(f"start unit {unit}: org.freedesktop.systemd1.UnitExists: Unit {unit} ")
        assert info.value.dbus_name == "org.freedesktop.systemd1.UnitExists" and info.value.unit == unit
        assert show(unit, "ActiveState") == {"ActiveState": "active"}
    finally:
        manager.stop_unit(unit)
    assert gone(unit)


def test_failing_job(manager: SystemdManager) -> None:
    """A transient service of Type=exec whose binary does not exist: its start job fails."""
    unit = name("service")
    props = [("Type", ("s", "exec")),
             ("ExecStart", ("a(sasb)", [("/nonexistent/pyrunc", ["/nonexistent/pyrunc"], False)]))]
    try:
        with pytest.raises(SystemdError) as info:
            manager.start_transient_unit(unit, props)
        assert str(info.value) == f"start unit {unit}: job failed: failed"
        assert show(unit, "ActiveState") == {"ActiveState": "failed"}
    finally:
        manager.reset_failed_unit(unit)
    assert gone(unit)


def test_scope_without_processes_is_refused(manager: SystemdManager) -> None:
    unit = name()
    try:
        with pytest.raises(SystemdError) as info:
            manager.start_transient_unit(unit, [("Delegate", ("b", True))])
        assert str(info.value).startswith(f"start unit {unit}: ")
        assert "\n" not in str(info.value)
    finally:
        manager.stop_unit(unit)
        manager.reset_failed_unit(unit)
    assert gone(unit)


def test_kill_unit(manager: SystemdManager, sleeper: subprocess.Popen[bytes]) -> None:
    unit = name()
    try:
        manager.start_transient_unit(unit, [("PIDs", ("au", [sleeper.pid]))])
        manager.kill_unit(unit, "all", signal.SIGKILL)
        assert sleeper.wait(timeout=30) == -signal.SIGKILL
        # An empty scope ends by itself.
        for _ in range(100):
            if gone(unit):
                break
            time.sleep(0.1)
    finally:
        manager.stop_unit(unit)
        manager.reset_failed_unit(unit)
    assert gone(unit)


def test_survives_daemon_reexec(manager: SystemdManager, sleeper: subprocess.Popen[bytes]) -> None:
    """The same manager goes on working across a re-execution of systemd.  (systemd 252
    keeps private-socket connections open over it; where a connection is dropped, the
    client connects again: tests/integration/test_dbus_client.py drives that path.)"""
    unit = name()
    try:
        manager.start_transient_unit(unit, [("PIDs", ("au", [sleeper.pid])), ("Delegate", ("b", True))])
        subprocess.run(["systemctl", "daemon-reexec"], check=True, timeout=300)
        # The new systemd answers calls only once it has deserialized its state,
        # which on a loaded software CPU took over a minute once; wait for it
        # here, so the manager's own 60 s call timeout is not what is tested.
        subprocess.run(["systemctl", "show", "--property=Version"], check=True, capture_output=True,
                       timeout=600)
        assert manager.get_unit_property(unit, UNIT, "ActiveState") == "active"
        manager.set_unit_properties(unit, True, [("TasksMax", ("t", 40))])
        assert show(unit, "TasksMax") == {"TasksMax": "40"}
        manager.stop_unit(unit)
        assert gone(unit)
    finally:
        manager.stop_unit(unit)


@pytest.mark.skipif(not os.path.exists("/run/dbus/system_bus_socket"), reason="no system bus here")
def test_through_the_system_bus(sleeper: subprocess.Popen[bytes]) -> None:
    """The same over dbus-daemon: Hello, AddMatch, JobRemoved routed by the bus."""
    unit = name()
    with SystemdManager.on(Connection.system(), timeout=60) as m:
        assert m.conn.bus and m.conn.unique_name
        try:
            m.start_transient_unit(unit, [("PIDs", ("au", [sleeper.pid])), ("Delegate", ("b", True))])
            assert m.get_unit_property(unit, SCOPE, "ControlGroup").endswith(f"/{unit}")
            m.stop_unit(unit)
            assert gone(unit)
        finally:
            m.stop_unit(unit)
    assert our_units() == []


USER_SCRIPT = r"""
import json, subprocess, sys
sys.path.insert(0, sys.argv[2])
from pyrunc.linux.systemd_manager import SystemdError, SystemdManager
unit = sys.argv[1]
sleeper = subprocess.Popen(["sleep", "600"])
out = {}
try:
    with SystemdManager.connect(user=True, timeout=60) as m:
        out["path"], out["bus"] = m.conn.path, m.conn.bus
        m.start_transient_unit(unit, [("PIDs", ("au", [sleeper.pid])), ("Delegate", ("b", True))])
        out["cgroup"] = m.get_unit_property(unit, "org.freedesktop.systemd1.Scope", "ControlGroup")
        out["pid"] = sleeper.pid
        print(json.dumps(out), flush=True)
        sys.stdin.readline()  # the test checks the scope from outside meanwhile
        m.stop_unit(unit)
        out["rc"] = sleeper.wait(timeout=30)
        try:
            m.get_unit_property(unit, "org.freedesktop.systemd1.Unit", "ActiveState")
        except SystemdError as e:
            out["after"] = e.dbus_name
finally:
    sleeper.kill()
print(json.dumps(out), flush=True)
"""


# The system's interpreter: the user may not be able to enter the test venv (stdlib is enough here).
USER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


@pytest.fixture
def lingering_user() -> Iterator[tuple[str, int]]:
    """A throw-away user with a running systemd user manager (lingering)."""
    user = f"pyrunc-dbus-{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", user], check=True)
    uid = int(subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True).stdout)
    try:
        subprocess.run(["loginctl", "enable-linger", user], check=True)
        private = Path(f"/run/user/{uid}/systemd/private")
        for _ in range(600):
            if private.exists():
                break
            time.sleep(0.2)
        assert private.exists(), "the user manager did not start"
        yield user, uid
    finally:
        subprocess.run(["loginctl", "disable-linger", user], check=False)
        subprocess.run(["systemctl", "stop", f"user@{uid}.service"], check=False)
        subprocess.run(["userdel", "--remove", user], check=False, stderr=subprocess.DEVNULL)


def test_user_manager(lingering_user: tuple[str, int]) -> None:
    """user=True: the user's own manager over $XDG_RUNTIME_DIR/systemd/private, a scope in its tree."""
    user, uid = lingering_user
    unit = name()
    env = {"PATH": os.environ["PATH"], "XDG_RUNTIME_DIR": f"/run/user/{uid}"}
    # -B: no bytecode written into the checkout; -s: no user site; the checkout is put
    # first on sys.path by the script itself.
    proc = subprocess.Popen(["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                             USER_PYTHON, "-B", "-s", "-c", USER_SCRIPT, unit, str(REPO)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = proc.stdout.readline()
        assert first, proc.stderr.read() if proc.stderr else ""
        started = json.loads(first)
        assert started["path"] == f"/run/user/{uid}/systemd/private" and started["bus"] is False
        cgroup = started["cgroup"]
        assert cgroup.startswith(f"/user.slice/user-{uid}.slice/user@{uid}.service/") and cgroup.endswith(unit)
        # From outside: the kernel has the process in that cgroup.
        assert started["pid"] in CgroupFiles.of_path(cgroup).members()
        proc.stdin.write("\n")
        proc.stdin.flush()
        done = json.loads(proc.stdout.readline())
        assert done["rc"] == -signal.SIGTERM
        assert done["after"] == "org.freedesktop.systemd1.NoSuchUnit"
        assert not CgroupFiles.of_path(cgroup).exists()
    finally:
        proc.kill()
        proc.communicate(timeout=30)
