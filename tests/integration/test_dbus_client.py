"""pyrunc.linux.dbus against a real message bus, and SystemdManager's job handling
against a peer that speaks systemd's Manager protocol.

A private ``dbus-daemon`` (the reference bus) is started for each test in a temp dir and
stopped after it: one Connection owns a name and answers calls, another calls it, so
every value goes through the daemon's own validation and routing.  Real systemd is
tested in the VM lane (tests/vm/test_systemd_manager.py); here a small peer on a unix
socket (no bus, as on /run/systemd/private) plays it, to drive the orderings systemd
can produce but a test cannot force there: JobRemoved before the reply, jobs that
never finish.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from pyrunc.linux import dbus
from pyrunc.linux.dbus import METHOD_CALL, Connection, DBusError, Message
from pyrunc.linux.systemd_manager import SystemdError, SystemdJobTimeout, SystemdManager
from tests.unit.test_dbus_marshal import typed_values

pytestmark = pytest.mark.skipif(shutil.which("dbus-daemon") is None,
                                reason="dbus-daemon is not installed (make test-deps installs it)")

NAME = "org.pyrunc.Test"
PATH = "/org/pyrunc/Test"


# --- a private bus ----------------------------------------------------------------------

class Bus:
    def __init__(self, tmp: Path) -> None:
        self.socket = tmp / "bus"
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", f"--address=unix:path={self.socket}", "--print-address"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().strip()
        assert self.address.startswith(f"unix:path={self.socket},guid="), self.address
        self.guid = self.address.rsplit("guid=", 1)[1]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Bus]:
    b = Bus(tmp_path)
    try:
        yield b
    finally:
        b.stop()
    # Nothing left: the daemon is gone.
    assert b.proc.returncode is not None


class Service(threading.Thread):
    """Owns NAME on the bus and answers: Echo (any signature), Fail, SignalFirst, Silent."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.conn = Connection.open(address)
        assert self.conn.request_name(NAME) == 1
        self.done = threading.Event()
        self.calls: list[Message] = []

    def run(self) -> None:
        while not self.done.is_set():
            msg = self.conn.next_message(0.05)
            if msg is None or msg.type != METHOD_CALL:
                continue
            self.calls.append(msg)
            if msg.member == "Echo":
                self.conn.reply(msg, msg.signature, msg.body)
            elif msg.member == "Fail":
                self.conn.reply_error(msg, "org.pyrunc.Test.Error.Refused", "refused on purpose")
            elif msg.member == "SignalFirst":
                # Signals sent before the reply: the caller must keep the matched one.
                self.conn.emit_signal(PATH, NAME, "Other", "s", ["not matched"])
                self.conn.emit_signal(PATH, NAME, "Ping", "s", msg.body)
                self.conn.reply(msg, "u", [42])
            elif msg.member == "Silent":
                pass
            else:
                self.conn.reply_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", f"no {msg.member}")

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)
        self.conn.close()


@pytest.fixture
def service(bus: Bus) -> Iterator[Service]:
    s = Service(bus.address)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_hello_names_and_bus_id(bus: Bus) -> None:
    with Connection.open(bus.address) as a, Connection.open(bus.address) as b:
        assert a.unique_name and a.unique_name.startswith(":") and a.unique_name != b.unique_name
        names = a.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "ListNames")[0]
        assert {"org.freedesktop.DBus", a.unique_name, b.unique_name} <= set(names)
        # The server guid sent in "OK" is the one the daemon printed for its address.
        assert a.guid == b.guid == bus.guid
        (bus_id,) = a.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "GetId")
        assert len(bus_id) == 32 and int(bus_id, 16) >= 0


def test_round_trip_of_containers_through_the_bus(bus: Bus, service: Service) -> None:
    sig = "a{sv}(ius)asvaya(sa(sv))tdbnqxyo"
    props = [("Delegate", ("b", True)), ("PIDs", ("au", [1, 2])), ("MemoryMax", ("t", (1 << 64) - 1)),
             ("ExecStart", ("a(sasb)", [("/bin/true", ["true", "-x"], False)]))]
    args = [{"a": ("s", "x"), "b": ("ai", []), "c": ("a{ss}", {"k": "v"})}, (-5, 7, "st"), ["", "é", "x" * 300],
            ("v", ("(yd)", (1, 2.5))), [0, 255], [("slice", props), ("empty", [])], 1 << 63, -0.5, False,
            -32768, 65535, -(1 << 63), 0, "/org/pyrunc/Test"]
    with Connection.open(bus.address) as c:
        assert c.call(NAME, PATH, NAME, "Echo", sig, args) == args
    echo = service.calls[-1]
    assert (echo.path, echo.interface, echo.member, echo.signature) == (PATH, NAME, "Echo", sig)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=typed_values())
def test_generated_values_survive_the_bus(bus: Bus, service: Service, case: tuple[str, list[Any]]) -> None:
    """dbus-daemon validates every message it routes: generated bodies must pass it and come back equal."""
    sig, values = case
    with Connection.open(bus.address) as c:
        assert c.call(NAME, PATH, NAME, "Echo", sig, values) == values


def test_error_replies(bus: Bus, service: Service) -> None:
    with Connection.open(bus.address) as c:
        with pytest.raises(DBusError) as info:
            c.call(NAME, PATH, NAME, "Fail")
        assert (info.value.name, info.value.message) == ("org.pyrunc.Test.Error.Refused", "refused on purpose")
        assert str(info.value) == "org.pyrunc.Test.Error.Refused: refused on purpose"
        # An error from the bus itself: nobody owns the name.
        with pytest.raises(DBusError) as info:
            c.call("org.pyrunc.Nobody", PATH, NAME, "Echo", flags=dbus.NO_AUTO_START)
        assert info.value.name == "org.freedesktop.DBus.Error.NameHasNoOwner"
        # The connection is still usable after errors.
        assert c.call(NAME, PATH, NAME, "Echo", "s", ["ok"]) == ["ok"]


def test_signal_sent_before_the_reply_is_queued(bus: Bus, service: Service) -> None:
    with Connection.open(bus.address) as c:
        c.add_match(f"type='signal',interface='{NAME}',member='Ping'")
        assert c.call(NAME, PATH, NAME, "SignalFirst", "s", ["hello"]) == [42]
        queued = c.pending()
        assert [(m.member, m.body) for m in queued] == [("Ping", ["hello"])]  # "Other" was not kept
        assert queued[0].sender == service.conn.unique_name
        got = c.wait_signal(lambda m: m.member == "Ping", timeout=0)
        assert got is not None and got.body == ["hello"] and c.pending() == []
        # Nothing more comes.
        assert c.wait_signal(lambda m: True, timeout=0.2) is None


def test_signal_waited_for(bus: Bus, service: Service) -> None:
    with Connection.open(bus.address) as c, Connection.open(bus.address) as emitter:
        c.add_match(f"type='signal',path='{PATH}',member='Ping'")
        emitter.emit_signal(PATH, NAME, "Ping", "s", ["late"])
        got = c.wait_signal(lambda m: m.body == ["late"], timeout=5)
        assert got is not None and got.sender == emitter.unique_name
        c.remove_match(f"type='signal',path='{PATH}',member='Ping'")
        emitter.emit_signal(PATH, NAME, "Ping", "s", ["unwanted"])
        assert c.wait_signal(lambda m: True, timeout=0.3) is None


def test_no_reply_times_out(bus: Bus, service: Service) -> None:
    with Connection.open(bus.address) as c:
        with pytest.raises(DBusError) as info:
            c.call(NAME, PATH, NAME, "Silent", timeout=0.3)
        assert info.value.name == "org.freedesktop.DBus.Error.NoReply"
        assert c.call(NAME, PATH, NAME, "Echo", "u", [1]) == [1]


def test_connect_errors_name_the_socket(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    with pytest.raises(dbus.DBusConnectionError) as info:
        Connection.open(f"unix:path={missing}")
    assert str(info.value) == f"connect {missing}: No such file or directory" and info.value.errno == 2
    # A socket nobody listens on any more.
    dead = tmp_path / "dead"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(dead))
    s.close()
    with pytest.raises(dbus.DBusConnectionError) as info:
        Connection.open(f"unix:path={dead}")
    assert str(info.value) == f"connect {dead}: Connection refused"
    # The first reachable address of a list is used.
    with pytest.raises(dbus.DBusConnectionError, match="not supported"):
        Connection.open("tcp:host=localhost,port=1")


def test_bus_stopping_is_an_error_not_a_hang(bus: Bus) -> None:
    with Connection.open(bus.address) as c:
        bus.stop()
        with pytest.raises(dbus.DBusConnectionError) as info:
            c.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "GetId", timeout=5)
        assert info.value.name == "org.freedesktop.DBus.Error.Disconnected"
        assert str(bus.socket) in str(info.value)


# --- a peer speaking systemd's Manager protocol -----------------------------------------

MANAGER = "org.freedesktop.systemd1.Manager"
MANAGER_PATH = "/org/freedesktop/systemd1"


def _escape(unit: str) -> str:
    return unit.replace(".", "_2e").replace("-", "_2d")


class FakeManager(threading.Thread):
    """Serves connections on a unix socket the way systemd's private socket does: SASL
    EXTERNAL, no bus, every JobRemoved sent to every client.  ``results`` gives a unit's
    job result ("hang": none is sent); ``early`` units get JobRemoved before the reply."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(address)
        self.listener.listen()
        self.listener.settimeout(0.05)
        self.units: dict[str, list[Any]] = {}
        self.results: dict[str, str] = {}
        self.early: set[str] = set()
        # unit -> when the connection is closed (as a restarted bus or manager does):
        # "after-reply" (no JobRemoved), "before-reply" (unit made), "unheard" (call lost)
        self.drop: dict[str, str] = {}
        self.states: dict[str, str] = {}
        self.connections = 0
        self.members: list[str] = []
        self.set_calls: list[list[Any]] = []
        self.jobs = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            try:
                self.serve(sock)
            except (DBusError, OSError):
                pass
            finally:
                sock.close()

    def serve(self, sock: socket.socket) -> None:
        sock.settimeout(5)
        data = b""
        while b"BEGIN\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
            if data.startswith(b"\0AUTH EXTERNAL ") and data.endswith(b"\r\n") and b"OK" not in data:
                uid = bytes.fromhex(data.split(b" ")[2].strip().decode()).decode()
                assert uid == str(os.geteuid())
                sock.sendall(b"OK " + uuid.uuid4().hex.encode() + b"\r\n")
                data += b"OK"
        self.connections += 1
        conn = Connection(sock, bus=False, path="fake")
        conn._rx.extend(data.split(b"BEGIN\r\n", 1)[1])
        while not self.done.is_set():
            msg = conn.next_message(0.05)
            if msg is not None and msg.type == METHOD_CALL:
                self.members.append(msg.member or "")
                if self.answer(conn, msg) == "close":
                    return

    def job_removed(self, conn: Connection, job: str, unit: str, result: str) -> None:
        conn.emit_signal(MANAGER_PATH, MANAGER, "JobRemoved", "uoss", [int(job.rsplit("/", 1)[1]), job, unit, result])

    def answer(self, conn: Connection, msg: Message) -> str | None:
        m, body = msg.member, msg.body
        if m == "Subscribe":
            conn.reply(msg)
        elif m == "StartTransientUnit":
            name = body[0]
            if name in self.units:
                conn.reply_error(msg, "org.freedesktop.systemd1.UnitExists", f"Unit {name} already exists.")
                return None
            drop = self.drop.pop(name, None)
            if drop == "unheard":
                return "close"
            self.units[name] = body[2]
            if drop == "before-reply":
                return "close"
            self.jobs += 1
            job = f"{MANAGER_PATH}/job/{self.jobs}"
            result = self.results.get(name, "done")
            self.job_removed(conn, f"{MANAGER_PATH}/job/{1000 + self.jobs}", "other.service", "failed")
            if name in self.early and result != "hang":
                self.job_removed(conn, job, name, result)
            conn.reply(msg, "o", [job])
            if drop == "after-reply":
                return "close"
            if name not in self.early and result != "hang":
                self.job_removed(conn, job, name, result)
        elif m == "StopUnit":
            if body[0] not in self.units:
                conn.reply_error(msg, "org.freedesktop.systemd1.NoSuchUnit", f"Unit {body[0]} not loaded.")
                return
            del self.units[body[0]]
            self.jobs += 1
            job = f"{MANAGER_PATH}/job/{self.jobs}"
            conn.reply(msg, "o", [job])
            self.job_removed(conn, job, body[0], "done")
        elif m in ("ResetFailedUnit", "GetUnit") and body[0] not in self.units:
            conn.reply_error(msg, "org.freedesktop.systemd1.NoSuchUnit", f"Unit {body[0]} not loaded.")
        elif m == "ResetFailedUnit":
            conn.reply(msg)
        elif m == "GetUnit":
            conn.reply(msg, "o", [f"{MANAGER_PATH}/unit/" + _escape(body[0])])
        elif m == "SetUnitProperties":
            self.set_calls.append(body)
            conn.reply(msg)
        elif m == "Get" and msg.path == MANAGER_PATH:
            conn.reply(msg, "v", [("s", "252.22-1~deb12u1")])
        elif m == "Get" and body[1] == "ActiveState":
            unit = next(u for u in self.units if msg.path and msg.path.endswith(_escape(u)))
            conn.reply(msg, "v", [("s", self.states.get(unit, "active"))])
        elif m == "Get":
            conn.reply(msg, "v", [("s", "/system.slice/" + msg.path.rsplit("/", 1)[1])] if msg.path else [])
        else:
            conn.reply_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", f"Unknown method {m}.")
        return None

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)
        self.listener.close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeManager]:
    f = FakeManager(str(tmp_path / "private"))
    f.start()
    try:
        yield f
    finally:
        f.stop()


def _manager(fake: FakeManager, tmp_path: Path, timeout: float = 5) -> SystemdManager:
    return SystemdManager.on(Connection.open(f"unix:path={tmp_path / 'private'}", bus=False), timeout=timeout)


PROPS = [("PIDs", ("au", [os.getpid()])), ("Delegate", ("b", True)), ("MemoryMax", ("t", 1 << 30))]


@pytest.mark.parametrize("early", [False, True], ids=["reply-first", "signal-first"])
def test_transient_unit_waits_for_its_own_job(fake: FakeManager, tmp_path: Path, early: bool) -> None:
    if early:
        fake.early.add("a.scope")
    with _manager(fake, tmp_path) as m:
        m.start_transient_unit("a.scope", PROPS, aux=[("x.slice", [("Description", ("s", "x"))])])
        assert fake.units["a.scope"] == PROPS
        # Peer-to-peer: no Hello, no AddMatch on a bus that is not there.
        assert fake.members[:2] == ["Subscribe", "StartTransientUnit"]
        assert m.get_unit_property("a.scope", "org.freedesktop.systemd1.Scope", "ControlGroup") == \
            "/system.slice/a_2escope"
        m.stop_unit("a.scope")
        assert "a.scope" not in fake.units
        # The unrelated JobRemoved signals are kept, bounded, not mistaken for ours.
        assert all(msg.body[2] == "other.service" for msg in m.conn.pending())


@pytest.mark.parametrize("early", [False, True], ids=["reply-first", "signal-first"])
def test_failed_job_is_one_line(fake: FakeManager, tmp_path: Path, early: bool) -> None:
    fake.results["f.scope"] = "failed"
    if early:
        fake.early.add("f.scope")
    with _manager(fake, tmp_path) as m, pytest.raises(SystemdError) as info:
        m.start_transient_unit("f.scope", PROPS)
    assert str(info.value) == "start unit f.scope: job failed: failed"
    assert info.value.unit == "f.scope"


def test_unit_exists_names_systemd_error(fake: FakeManager, tmp_path: Path) -> None:
    with _manager(fake, tmp_path) as m:
        m.start_transient_unit("e.scope", PROPS)
        with pytest.raises(SystemdError) as info:
            m.start_transient_unit("e.scope", PROPS)
    assert str(info.value) == ("start unit e.scope: org.freedesktop.systemd1.UnitExists: "
                               "Unit e.scope already exists.")
    assert info.value.dbus_name == "org.freedesktop.systemd1.UnitExists"


def test_job_that_never_finishes_times_out(fake: FakeManager, tmp_path: Path) -> None:
    fake.results["h.scope"] = "hang"
    with _manager(fake, tmp_path, timeout=0.5) as m, pytest.raises(SystemdJobTimeout) as info:
        m.start_transient_unit("h.scope", PROPS)
    assert str(info.value) == f"start unit h.scope: timed out waiting for job {MANAGER_PATH}/job/1"


def test_missing_units_are_quiet_where_they_should_be(fake: FakeManager, tmp_path: Path) -> None:
    with _manager(fake, tmp_path) as m:
        m.stop_unit("gone.scope")
        m.reset_failed_unit("gone.scope")
        with pytest.raises(SystemdError) as info:
            m.get_unit_property("gone.scope", "org.freedesktop.systemd1.Unit", "ActiveState")
        assert str(info.value) == ("get unit gone.scope: org.freedesktop.systemd1.NoSuchUnit: "
                                   "Unit gone.scope not loaded.")
        m.set_unit_properties("gone.scope", True, [("CPUWeight", ("t", 100))])
        assert fake.set_calls == [["gone.scope", True, [("CPUWeight", ("t", 100))]]]
        assert m.version() == 252


def test_user_manager_private_socket(fake: FakeManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """user=True finds $XDG_RUNTIME_DIR/systemd/private, served by the caller's own uid."""
    runtime = tmp_path / "runtime"
    (runtime / "systemd").mkdir(parents=True)
    (runtime / "systemd" / "private").symlink_to(tmp_path / "private")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    with SystemdManager.connect(user=True, timeout=5) as m:
        assert not m.conn.bus and m.conn.path == str(runtime / "systemd" / "private")
        assert m.version() == 252


def test_user_manager_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(SystemdError) as info:
        SystemdManager.connect(user=True, timeout=5)
    assert str(info.value) == (f"cannot connect to systemd user manager: connect {tmp_path}/systemd/private: "
                               f"No such file or directory; connect {tmp_path}/bus: No such file or directory")
    assert info.value.errno == 2 and info.value.path == f"{tmp_path}/systemd/private"


@pytest.mark.skipif(os.path.exists("/run/systemd/private"), reason="systemd runs here: tested in the VM lane")
def test_system_manager_absent(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    """No systemd: the private socket is missing and the bus (ours) has no org.freedesktop.systemd1."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
    with pytest.raises(SystemdError) as info:
        SystemdManager.connect(timeout=5)
    text = str(info.value)
    assert "\n" not in text
    if os.geteuid() == 0:
        assert "connect /run/systemd/private: No such file or directory; " in text
    # Never activated through the bus (the session daemon has a service file for it).
    assert f"; {bus.socket}: org.freedesktop.DBus.Error.NameHasNoOwner: " in text
    running = os.path.isdir("/run/systemd/system")
    assert text.startswith("cannot connect to systemd: " if running else "systemd is not running: ")


@pytest.mark.parametrize("when", ["after-reply", "before-reply", "unheard"])
def test_connection_lost_while_starting(fake: FakeManager, tmp_path: Path, when: str) -> None:
    """A connection lost mid-start (bus or manager restarted): the client connects again and
    learns the job's outcome from the unit, or asks again if the call was never heard."""
    fake.drop["r.scope"] = when
    with _manager(fake, tmp_path) as m:
        m.start_transient_unit("r.scope", PROPS)
        assert fake.connections == 2 and "r.scope" in fake.units
        assert fake.members.count("StartTransientUnit") == (2 if when == "unheard" else 1)
        m.stop_unit("r.scope")
        assert "r.scope" not in fake.units


def test_connection_lost_and_unit_failed(fake: FakeManager, tmp_path: Path) -> None:
    fake.drop["r.scope"] = "after-reply"
    fake.states["r.scope"] = "failed"
    with _manager(fake, tmp_path) as m, pytest.raises(SystemdError) as info:
        m.start_transient_unit("r.scope", PROPS)
    assert str(info.value) == "start unit r.scope: job failed: unit is failed"


def test_connection_lost_and_unit_stuck(fake: FakeManager, tmp_path: Path) -> None:
    fake.drop["r.scope"] = "after-reply"
    fake.states["r.scope"] = "activating"
    with _manager(fake, tmp_path, timeout=1) as m, pytest.raises(SystemdJobTimeout) as info:
        m.start_transient_unit("r.scope", PROPS)
    assert str(info.value) == "start unit r.scope: timed out waiting for it to settle (now activating)"
