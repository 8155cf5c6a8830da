"""The part of systemd's Manager D-Bus API the systemd cgroup driver needs.

Object ``/org/freedesktop/systemd1``, interface ``org.freedesktop.systemd1.Manager``:
transient units started and stopped with their jobs waited for, unit properties set
and read.  Each failure is one :class:`SystemdError` line naming the unit and
systemd's own error name and text, e.g.
``start unit pyrunc-x.scope: org.freedesktop.systemd1.UnitExists: Unit pyrunc-x.scope already exists.``

Unit properties are given as ``(Name, (signature, value))`` pairs, the value in
:mod:`pyrunc.linux.dbus`'s representation: ``("PIDs", ("au", [1234]))``,
``("Delegate", ("b", True))``, ``("MemoryMax", ("t", 1 << 30))``.
"""

from __future__ import annotations

import _socket
import os
import struct
import time

from pyrunc.errors import PyruncError
from pyrunc.linux.dbus import (
    DISCONNECTED,
    NO_AUTO_START,
    SIGNAL,
    Connection,
    DBusConnectionError,
    DBusError,
    Message,
    session_bus_address,
    system_bus_address,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    #: A unit property: (Name, (D-Bus signature, value)), e.g. ("MemoryMax", ("t", 1 << 30)).
    Property = tuple[str, tuple[str, Any]]

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
PROPERTIES = "org.freedesktop.DBus.Properties"
NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
SYSTEM_PRIVATE = "/run/systemd/private"
JOB_REMOVED_RULE = (f"type='signal',sender='{SYSTEMD}',path='{MANAGER_PATH}',"
                    f"interface='{MANAGER}',member='JobRemoved'")
DEFAULT_TIMEOUT = 30.0

class SystemdError(PyruncError):
    """A systemd operation failed.  ``dbus_name`` is systemd's error name when it gave
    one (``org.freedesktop.systemd1.UnitExists``); ``unit`` the unit concerned;
    ``errno`` and ``path`` are kept for a connection failure."""

    def __init__(self, message: str, *, unit: str | None = None, dbus_name: str | None = None,
                 errno: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.unit = unit
        self.dbus_name = dbus_name
        self.errno = errno
        self.path = path


class SystemdJobTimeout(SystemdError):
    """A job did not finish in time (the unit may still be starting or stopping)."""


def _describe(e: DBusError) -> str:
    return str(e) if isinstance(e, DBusConnectionError) else f"{e.name}: {e.message}" if e.message else e.name


def _peer_uid(conn: Connection) -> int:
    creds = conn.sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class SystemdManager:
    """A connection to a systemd manager (the system's, or the calling user's)."""

    def __init__(self, conn: Connection, *, user: bool = False, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.conn = conn
        self.user = user
        self.timeout = timeout
        self._version: int | None = None

    # connecting

    @classmethod
    def connect(cls, user: bool = False, timeout: float = DEFAULT_TIMEOUT) -> SystemdManager:
        """Connect and subscribe to job signals.

        The system manager: its private socket ``/run/systemd/private`` when root (as
        systemctl does: no dbus-daemon needed), else, or when that fails, the system
        bus.  ``user=True``: ``$XDG_RUNTIME_DIR/systemd/private``, then the session bus.
        """
        attempts: list[tuple[str, bool]] = []
        if user:
            runtime = os.environ.get("XDG_RUNTIME_DIR")
            if runtime:
                attempts.append(("unix:path=" + os.path.join(runtime, "systemd", "private"), False))
            try:
                attempts.append((session_bus_address(), True))
            except DBusError:
                pass
            what, expected_uid = "systemd user manager", os.geteuid()
        else:
            if os.geteuid() == 0:
                attempts.append(("unix:path=" + SYSTEM_PRIVATE, False))
            attempts.append((system_bus_address(), True))
            what, expected_uid = "systemd", 0
        errors: list[DBusError] = []
        for address, bus in attempts:
            try:
                conn = Connection.open(address, bus=bus, timeout=timeout)
            except DBusError as e:
                errors.append(e)
                continue
            try:
                # A private socket is systemd's only if it runs as the manager's user.
                if not bus and _peer_uid(conn) != expected_uid:
                    raise DBusConnectionError("org.freedesktop.DBus.Error.AccessDenied",
                                              f"{conn.path} is not served by uid {expected_uid}", path=conn.path)
                return cls.on(conn, user=user, timeout=timeout)
            except DBusError as e:
                conn.close()
                if not isinstance(e, DBusConnectionError):
                    # Reached a socket, but not systemd on it: say which socket.
                    e = DBusConnectionError(e.name, f"{conn.path}: {_describe(e)}", path=conn.path)
                errors.append(e)
            except BaseException:
                conn.close()
                raise
        running = user or os.path.isdir("/run/systemd/system")
        head = f"cannot connect to {what}" if running else f"{what} is not running"
        detail = "; ".join(_describe(e) for e in errors) or "no D-Bus address to try"
        first = errors[0] if errors else None
        raise SystemdError(f"{head}: {detail}", dbus_name=first.name if first else None,
                           errno=first.errno if first else None, path=first.path if first else None)

    @classmethod
    def on(cls, conn: Connection, *, user: bool = False, timeout: float = DEFAULT_TIMEOUT) -> SystemdManager:
        """A manager on an open connection (to systemd, or to something that speaks as it
        does), subscribed to job signals."""
        manager = cls(conn, user=user, timeout=timeout)
        manager.subscribe()
        return manager

    def subscribe(self) -> None:
        """Ask for JobRemoved signals: the match rule first, so none is missed, then Subscribe."""
        self.conn.add_match(JOB_REMOVED_RULE, timeout=self.timeout)
        try:
            self.conn.call(SYSTEMD, MANAGER_PATH, MANAGER, "Subscribe", timeout=self.timeout, flags=NO_AUTO_START)
        except DBusError as e:
            if e.name != "org.freedesktop.systemd1.AlreadySubscribed":
                raise

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> SystemdManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # calls

    def _reopen(self) -> None:
        """Connect again to the same socket, waiting up to the timeout for it to come
        back (a restarted dbus-daemon, a manager that dropped its clients)."""
        self.conn.close()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn = Connection.open(self.conn.address, bus=self.conn.bus, timeout=self.timeout)
                break
            except DBusConnectionError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
        self.conn = conn
        self.subscribe()

    def _error(self, op: str, unit: str | None, e: DBusError) -> SystemdError:
        where = f"{op} unit {unit}" if unit else op
        return SystemdError(f"{where}: {_describe(e)}", unit=unit, dbus_name=e.name, errno=e.errno, path=e.path)

    def _call(self, op: str, unit: str | None, member: str, signature: str = "", args: Sequence[Any] = (),
              *, path: str = MANAGER_PATH, interface: str = MANAGER, timeout: float | None = None,
              retry: bool = True) -> list[Any]:
        for attempt in (1, 2):
            try:
                # systemd is PID 1 or absent: never ask a bus to activate it.
                return self.conn.call(SYSTEMD, path, interface, member, signature, args,
                                      timeout=self.timeout if timeout is None else timeout, flags=NO_AUTO_START)
            except DBusError as e:
                if e.name != DISCONNECTED or not retry or attempt == 2 or not self.conn.address:
                    raise self._error(op, unit, e) from None
                try:
                    self._reopen()
                except DBusError as again:
                    raise self._error(op, unit, again) from None
        raise AssertionError("unreachable")

    def _active_state(self, op: str, unit: str) -> str | None:
        try:
            return str(self.get_unit_property(unit, UNIT, "ActiveState"))
        except SystemdError as e:
            if e.dbus_name == NO_SUCH_UNIT:
                return None
            raise

    def _settle(self, op: str, unit: str, deadline: float) -> None:
        """After a lost connection: the job's outcome from the unit's state, polled."""
        while True:
            state = self._active_state(op, unit)
            if op == "start" and state == "active":
                return
            if op == "stop" and state in (None, "inactive", "failed"):
                return
            if op == "start" and state in (None, "inactive", "failed"):
                raise SystemdError(f"{op} unit {unit}: job failed: unit is {state or 'gone'}", unit=unit)
            if time.monotonic() >= deadline:
                raise SystemdJobTimeout(f"{op} unit {unit}: timed out waiting for it to settle (now {state})",
                                        unit=unit)
            time.sleep(0.1)

    def _wait_job(self, op: str, unit: str, job: str, deadline: float) -> None:
        def is_ours(msg: Message) -> bool:
            return (msg.type == SIGNAL and msg.member == "JobRemoved" and msg.interface == MANAGER
                    and msg.signature == "uoss" and msg.body[1] == job)

        try:
            signal = self.conn.wait_signal(is_ours, max(deadline - time.monotonic(), 0.0))
        except DBusError as e:
            if e.name != DISCONNECTED or not self.conn.address:
                raise SystemdError(f"{op} unit {unit}: waiting for job {job}: {_describe(e)}", unit=unit,
                                   dbus_name=e.name, errno=e.errno, path=e.path) from None
            # The JobRemoved signal may be lost with the connection: ask for the unit's state.
            try:
                self._reopen()
            except DBusError as again:
                raise self._error(op, unit, again) from None
            self._settle(op, unit, deadline)
            return
        if signal is None:
            raise SystemdJobTimeout(f"{op} unit {unit}: timed out waiting for job {job}", unit=unit)
        result = signal.body[3]
        if result != "done":
            raise SystemdError(f"{op} unit {unit}: job failed: {result}", unit=unit)

    def start_transient_unit(self, name: str, properties: Sequence[Property],
                             aux: Sequence[tuple[str, Sequence[Property]]] = (), *, mode: str = "replace",
                             timeout: float | None = None) -> None:
        """StartTransientUnit and wait for its job; a job whose result is not "done" is an error."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        args = [name, mode, list(properties), [(n, list(p)) for n, p in aux]]
        try:
            (job,) = self._call("start", name, "StartTransientUnit", "ssa(sv)a(sa(sv))", args, timeout=timeout,
                                retry=False)
        except SystemdError as e:
            if e.dbus_name != DISCONNECTED or not self.conn.address:
                raise
            # Lost before the reply: systemd may or may not have the unit.  Ask it
            # again; a unit that exists now is the one just asked for.
            try:
                self._reopen()
            except DBusError as again:
                raise self._error("start", name, again) from None
            if self._active_state("start", name) is not None:
                self._settle("start", name, deadline)
                return
            (job,) = self._call("start", name, "StartTransientUnit", "ssa(sv)a(sa(sv))", args, timeout=timeout)
        self._wait_job("start", name, job, deadline)

    def stop_unit(self, name: str, *, mode: str = "replace", timeout: float | None = None) -> None:
        """StopUnit and wait for its job; a unit systemd does not know is already gone."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        try:
            (job,) = self._call("stop", name, "StopUnit", "ss", [name, mode], timeout=timeout)
        except SystemdError as e:
            if e.dbus_name == NO_SUCH_UNIT:
                return
            raise
        self._wait_job("stop", name, job, deadline)

    def set_unit_properties(self, name: str, runtime: bool, properties: Sequence[Property]) -> None:
        """SetUnitProperties: ``runtime=True`` keeps the change until reboot only."""
        self._call("set properties of", name, "SetUnitProperties", "sba(sv)", [name, runtime, list(properties)])

    def reset_failed_unit(self, name: str) -> None:
        """ResetFailedUnit; a unit systemd does not know is ignored."""
        try:
            self._call("reset failed", name, "ResetFailedUnit", "s", [name])
        except SystemdError as e:
            if e.dbus_name != NO_SUCH_UNIT:
                raise

    def kill_unit(self, name: str, who: str, signal: int) -> None:
        """KillUnit: ``who`` is "main", "control" or "all"."""
        self._call("kill", name, "KillUnit", "ssi", [name, who, signal])

    def unit_path(self, name: str) -> str:
        """The object path of a loaded unit (GetUnit); NoSuchUnit is an error."""
        return str(self._call("get", name, "GetUnit", "s", [name])[0])

    def get_unit_property(self, name: str, interface: str, prop: str) -> Any:
        """One property of a loaded unit, its value unwrapped from the variant:
        ``get_unit_property("x.scope", "org.freedesktop.systemd1.Scope", "ControlGroup")``."""
        path = self.unit_path(name)
        (value,) = self._call(f"get {prop} of", name, "Get", "ss", [interface, prop], path=path,
                              interface=PROPERTIES)
        return value[1]

    def manager_property(self, prop: str) -> Any:
        """One property of the manager itself, unwrapped."""
        (value,) = self._call(f"get manager property {prop}", None, "Get", "ss", [MANAGER, prop],
                              interface=PROPERTIES)
        return value[1]

    def version(self) -> int:
        """systemd's major version (the Manager's ``Version``, e.g. "252.22-1~deb12u1" -> 252)."""
        if self._version is None:
            text = str(self.manager_property("Version")).strip().lstrip("v")
            digits = ""
            for c in text:
                if not c.isdigit():
                    break
                digits += c
            if not digits:
                raise SystemdError(f"systemd version {text!r} does not start with a number")
            self._version = int(digits)
        return self._version
