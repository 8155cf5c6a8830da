"""A small D-Bus client: one connection over a unix socket, written from the D-Bus specification.

Only what pyrunc's systemd cgroup driver needs: the unix transport (``unix:path=``,
``unix:abstract=``), SASL ``EXTERNAL`` authentication, method calls with their replies,
signals (match rules, a queue), and answering method calls (the tests use that to play
a service).  Both a message bus (``Hello`` is sent) and a peer (systemd's private
socket, no ``Hello``) can be on the other end.

Values, in both directions:

====================  ===========================================================
D-Bus type            Python
====================  ===========================================================
y n q i u x t h       int (range-checked when sent)
b                     bool
d                     float
s o g                 str
``a<T>``              list
``a{KV}``             dict (a list of (key, value) pairs is accepted when sending)
``(...)``             tuple
v                     ``(signature, value)`` tuple, signature one complete type
====================  ===========================================================

Messages are sent little-endian; both byte orders are read.  Unix fd passing is not
supported (an ``h`` is only its index).  Nothing here is imported by the cgroupfs
driver: the systemd driver loads it on first use.
"""

from __future__ import annotations

# _socket, not socket: socket loads enum, selectors and more (about 10 ms) for
# nothing a unix stream needs; typing is not loaded at run time either.
import _socket
import os
import struct
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

# Message types and flags (specification, "Message Format").
METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 0x1
NO_AUTO_START = 0x2

# Header field codes and the type of each field's value.
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE, UNIX_FDS = range(1, 10)
_FIELD_NAMES = {PATH: "path", INTERFACE: "interface", MEMBER: "member", ERROR_NAME: "error_name",
                REPLY_SERIAL: "reply_serial", DESTINATION: "destination", SENDER: "sender",
                SIGNATURE: "signature", UNIX_FDS: "unix_fds"}
_FIELD_TYPES = {PATH: "o", INTERFACE: "s", MEMBER: "s", ERROR_NAME: "s", REPLY_SERIAL: "u",
                DESTINATION: "s", SENDER: "s", SIGNATURE: "g", UNIX_FDS: "u"}

MAX_MESSAGE = 1 << 27      # 128 MiB, the specification's limit for a whole message
MAX_ARRAY = 1 << 26        # 64 MiB for one array's data
MAX_SIGNATURE = 255
MAX_DEPTH = 64             # arrays (32) plus structs (32); variants count too

BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"
DEFAULT_SYSTEM_BUS = "unix:path=/var/run/dbus/system_bus_socket"
DISCONNECTED = "org.freedesktop.DBus.Error.Disconnected"
DEFAULT_TIMEOUT = 25.0     # what libdbus and sd-bus wait for a reply by default

# Fixed-size types: (alignment, struct code).
_FIXED = {"y": (1, "B"), "b": (4, "I"), "n": (2, "h"), "q": (2, "H"), "i": (4, "i"), "u": (4, "I"),
          "x": (8, "q"), "t": (8, "Q"), "d": (8, "d"), "h": (4, "I")}
_RANGES = {"y": (0, 0xFF), "n": (-(1 << 15), (1 << 15) - 1), "q": (0, 0xFFFF), "i": (-(1 << 31), (1 << 31) - 1),
           "u": (0, 0xFFFFFFFF), "x": (-(1 << 63), (1 << 63) - 1), "t": (0, (1 << 64) - 1), "h": (0, 0xFFFFFFFF)}
_BASIC = frozenset("ybnqiuxtdhsog")
_ALIGN = {**{t: a for t, (a, _) in _FIXED.items()}, "s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1}


class DBusError(Exception):
    """An error from the bus or the peer: ``name`` is the D-Bus error name
    (``org.freedesktop.systemd1.UnitExists``), ``message`` its text."""

    errno: int | None = None
    path: str | None = None

    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(name, message)
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


class DBusConnectionError(DBusError):
    """The connection could not be made or was lost; ``errno`` and ``path`` (the socket)
    are kept when the system gave them.  Its text is the message alone:
    ``connect /run/systemd/private: No such file or directory``."""

    def __init__(self, name: str, message: str, *, errno: int | None = None, path: str | None = None) -> None:
        super().__init__(name, message)
        self.errno = errno
        self.path = path

    def __str__(self) -> str:
        return self.message


class MarshalError(ValueError):
    """A value does not fit its signature, or received bytes are not a valid message."""


# --- signatures -------------------------------------------------------------------------

def _type_end(sig: str, i: int, depth: int = 0) -> int:
    """Index just past the complete type that starts at ``sig[i]``."""
    if depth > MAX_DEPTH:
        raise MarshalError(f"signature {sig!r} nests too deeply")
    if i >= len(sig):
        raise MarshalError(f"signature {sig!r} ends inside a type")
    c = sig[i]
    if c in _BASIC or c == "v":
        return i + 1
    if c == "a":
        if sig[i + 1:i + 2] == "{":
            j = i + 2
            if j >= len(sig) or sig[j] not in _BASIC:
                raise MarshalError(f"signature {sig!r}: a dict key must be a basic type")
            j = _type_end(sig, j + 1, depth + 1)
            if sig[j:j + 1] != "}":
                raise MarshalError(f"signature {sig!r}: a dict entry holds exactly two types")
            return j + 1
        return _type_end(sig, i + 1, depth + 1)
    if c == "(":
        j = i + 1
        if sig[j:j + 1] == ")":
            raise MarshalError(f"signature {sig!r}: empty struct")
        while sig[j:j + 1] != ")":
            j = _type_end(sig, j, depth + 1)
        return j + 1
    raise MarshalError(f"signature {sig!r}: unexpected {c!r}")


def split_signature(sig: str) -> list[str]:
    """The complete types of a signature: ``"sa{sv}(ii)"`` -> ``["s", "a{sv}", "(ii)"]``."""
    if len(sig.encode()) > MAX_SIGNATURE:
        raise MarshalError(f"signature longer than {MAX_SIGNATURE} bytes")
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _struct_members(t: str) -> list[str]:
    return split_signature(t[1:-1])


# --- marshalling ------------------------------------------------------------------------

def _check_object_path(p: str) -> None:
    ok = p == "/" or (p.startswith("/") and not p.endswith("/") and
                      all(e and all(c.isascii() and (c.isalnum() or c == "_") for c in e)
                          for e in p[1:].split("/")))
    if not ok:
        raise MarshalError(f"invalid object path {p!r}")


class _Writer:
    """Appends values to a buffer whose offset 0 is 8-aligned in the message."""

    def __init__(self, order: str = "<") -> None:
        self.buf = bytearray()
        self.order = order

    def pad(self, n: int) -> None:
        self.buf.extend(b"\0" * (-len(self.buf) % n))

    def write(self, t: str, v: Any, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise MarshalError("value nests too deeply")
        c = t[0]
        if c in _FIXED:
            align, code = _FIXED[c]
            if c == "b":
                if not isinstance(v, (bool, int)) or v not in (0, 1):
                    raise MarshalError(f"{v!r} is not a boolean")
                v = int(v)
            elif c == "d":
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise MarshalError(f"{v!r} is not a double")
                v = float(v)
            else:
                lo, hi = _RANGES[c]
                if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                    raise MarshalError(f"{v!r} does not fit D-Bus type {c!r}")
            self.pad(align)
            self.buf.extend(struct.pack(self.order + code, v))
        elif c in "sog":
            if not isinstance(v, str):
                raise MarshalError(f"{v!r} is not a string")
            data = v.encode()
            if b"\0" in data:
                raise MarshalError(f"{v!r} contains a NUL byte")
            if c == "o":
                _check_object_path(v)
            if c == "g":
                split_signature(v)
                self.buf.append(len(data))
            else:
                self.pad(4)
                self.buf.extend(struct.pack(self.order + "I", len(data)))
            self.buf.extend(data)
            self.buf.append(0)
        elif c == "v":
            if not (isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str)):
                raise MarshalError(f"a variant is a (signature, value) tuple, not {v!r}")
            sig, inner = v
            if len(split_signature(sig)) != 1:
                raise MarshalError(f"a variant holds one complete type, not {sig!r}")
            self.write("g", sig)
            self.write(sig, inner, depth + 1)
        elif c == "a":
            elem = t[1:]
            self.pad(4)
            at = len(self.buf)
            self.buf.extend(b"\0\0\0\0")
            # The padding to the first element is there even for an empty array,
            # and is not counted in the length.
            self.pad(_ALIGN[elem[0]])
            start = len(self.buf)
            if elem[0] == "{":
                key_t, val_t = _struct_members("(" + elem[1:-1] + ")")
                items = v.items() if isinstance(v, dict) else v
                for pair in items:
                    k, val = pair
                    self.pad(8)
                    self.write(key_t, k, depth + 1)
                    self.write(val_t, val, depth + 1)
            else:
                if isinstance(v, (str, bytes, dict)) and not (elem == "y" and isinstance(v, bytes)):
                    raise MarshalError(f"{v!r} is not a list for D-Bus type {t!r}")
                if elem == "y" and isinstance(v, (bytes, bytearray)):
                    self.buf.extend(v)
                else:
                    for item in v:
                        self.write(elem, item, depth + 1)
            size = len(self.buf) - start
            if size > MAX_ARRAY:
                raise MarshalError(f"array of {size} bytes is larger than D-Bus allows")
            struct.pack_into(self.order + "I", self.buf, at, size)
        elif c == "(":
            members = _struct_members(t)
            if not isinstance(v, (tuple, list)) or len(v) != len(members):
                raise MarshalError(f"{v!r} does not fit struct {t!r}")
            self.pad(8)
            for mt, mv in zip(members, v):
                self.write(mt, mv, depth + 1)
        else:
            raise MarshalError(f"cannot marshal D-Bus type {t!r}")


def marshal(signature: str, args: Sequence[Any], *, order: str = "<") -> bytes:
    """The body bytes for ``args`` of ``signature``, as at an 8-aligned offset."""
    types = split_signature(signature)
    if len(types) != len(args):
        raise MarshalError(f"signature {signature!r} has {len(types)} values, got {len(args)}")
    w = _Writer(order)
    for t, v in zip(types, args):
        w.write(t, v)
    return bytes(w.buf)


class _Reader:
    def __init__(self, data: bytes | memoryview, pos: int, end: int, order: str) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.order = order
        self.base = pos  # alignment is relative to the start of the message or body

    def align(self, n: int) -> None:
        self.pos += -(self.pos - self.base) % n
        if self.pos > self.end:
            raise MarshalError("message truncated (padding)")

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise MarshalError("message truncated")
        b = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return b

    def read(self, t: str, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise MarshalError("value nests too deeply")
        c = t[0]
        if c in _FIXED:
            align, code = _FIXED[c]
            self.align(align)
            (v,) = struct.unpack(self.order + code, self.take(struct.calcsize(code)))
            if c == "b":
                if v > 1:
                    raise MarshalError(f"boolean value {v}")
                return bool(v)
            return v
        if c in "so":
            self.align(4)
            (n,) = struct.unpack(self.order + "I", self.take(4))
            data = self.take(n + 1)
            if data[-1] != 0:
                raise MarshalError("string not NUL-terminated")
            try:
                return data[:-1].decode()
            except UnicodeDecodeError as e:
                raise MarshalError(f"string is not UTF-8: {e}") from None
        if c == "g":
            n = self.take(1)[0]
            data = self.take(n + 1)
            if data[-1] != 0:
                raise MarshalError("signature not NUL-terminated")
            sig = data[:-1].decode("ascii", "replace")
            split_signature(sig)
            return sig
        if c == "v":
            sig = self.read("g")
            if len(split_signature(sig)) != 1:
                raise MarshalError(f"variant signature {sig!r} is not one complete type")
            return (sig, self.read(sig, depth + 1))
        if c == "a":
            elem = t[1:]
            self.align(4)
            (n,) = struct.unpack(self.order + "I", self.take(4))
            if n > MAX_ARRAY:
                raise MarshalError(f"array length {n} exceeds the limit")
            self.align(_ALIGN[elem[0]])
            stop = self.pos + n
            if stop > self.end:
                raise MarshalError("array runs past the message")
            if elem == "y":
                return list(self.take(n))
            if elem[0] == "{":
                key_t, val_t = _struct_members("(" + elem[1:-1] + ")")
                d: dict[Any, Any] = {}
                while self.pos < stop:
                    self.align(8)
                    k = self.read(key_t, depth + 1)
                    d[k] = self.read(val_t, depth + 1)
                if self.pos != stop:
                    raise MarshalError("array length does not match its elements")
                return d
            items = []
            while self.pos < stop:
                items.append(self.read(elem, depth + 1))
            if self.pos != stop:
                raise MarshalError("array length does not match its elements")
            return items
        if c == "(":
            self.align(8)
            return tuple(self.read(mt, depth + 1) for mt in _struct_members(t))
        raise MarshalError(f"cannot unmarshal D-Bus type {t!r}")


def unmarshal(signature: str, data: bytes, *, order: str = "<") -> list[Any]:
    """The values of ``signature`` in ``data`` (a body starting at an 8-aligned offset)."""
    r = _Reader(data, 0, len(data), order)
    out = [r.read(t) for t in split_signature(signature)]
    if r.pos != len(data):
        raise MarshalError(f"{len(data) - r.pos} bytes left after the body's values")
    return out


# --- messages ---------------------------------------------------------------------------

class Message:
    """One D-Bus message: its type, flags, serial, header fields and body values."""

    __slots__ = ("type", "flags", "serial", "path", "interface", "member", "error_name", "reply_serial",
                 "destination", "sender", "signature", "unix_fds", "body")

    def __init__(self, type: int, *, serial: int = 0, flags: int = 0, path: str | None = None,
                 interface: str | None = None, member: str | None = None, error_name: str | None = None,
                 reply_serial: int | None = None, destination: str | None = None, sender: str | None = None,
                 signature: str = "", body: Sequence[Any] = (), unix_fds: int | None = None) -> None:
        self.type = type
        self.flags = flags
        self.serial = serial
        self.path = path
        self.interface = interface
        self.member = member
        self.error_name = error_name
        self.reply_serial = reply_serial
        self.destination = destination
        self.sender = sender
        self.signature = signature
        self.unix_fds = unix_fds
        self.body = list(body)

    def __repr__(self) -> str:
        kind = {METHOD_CALL: "call", METHOD_RETURN: "return", ERROR: "error", SIGNAL: "signal"}.get(self.type)
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__[3:] if getattr(self, k))
        return f"<Message {kind} #{self.serial} {fields}>"

    def to_bytes(self) -> bytes:
        """The message on the wire, little-endian."""
        if self.serial == 0:
            raise MarshalError("a message needs a non-zero serial")
        body = marshal(self.signature, self.body)
        fields = []
        for code, name in _FIELD_NAMES.items():
            value = getattr(self, name)
            if code == SIGNATURE:
                if value:
                    fields.append((code, ("g", value)))
            elif value is not None:
                fields.append((code, (_FIELD_TYPES[code], value)))
        w = _Writer("<")
        for t, v in (("y", ord("l")), ("y", self.type), ("y", self.flags), ("y", 1),
                     ("u", len(body)), ("u", self.serial), ("a(yv)", fields)):
            w.write(t, v)
        w.pad(8)
        if len(w.buf) + len(body) > MAX_MESSAGE:
            raise MarshalError("message larger than D-Bus allows")
        return bytes(w.buf) + body

    @classmethod
    def from_bytes(cls, data: bytes) -> Message:
        """Parse one whole message (``data`` is exactly its bytes)."""
        total = message_size(data[:16])
        if total != len(data):
            raise MarshalError(f"message is {len(data)} bytes, its header says {total}")
        order = "<" if data[0:1] == b"l" else ">"
        r = _Reader(data, 0, len(data), order)
        _, mtype, flags, version = r.take(4)
        body_len, serial = struct.unpack(order + "II", r.take(8))
        if serial == 0:
            raise MarshalError("message serial is 0")
        fields = r.read("a(yv)")
        r.align(8)
        msg = cls(mtype, serial=serial, flags=flags)
        for code, (sig, value) in fields:
            if code in _FIELD_NAMES:  # unknown fields are ignored, as the specification says
                if sig != _FIELD_TYPES[code]:
                    raise MarshalError(f"header field {code} has type {sig!r}")
                setattr(msg, _FIELD_NAMES[code], value)
        msg.signature = msg.signature or ""
        body = data[r.pos:r.pos + body_len]
        msg.body = unmarshal(msg.signature, body, order=order)
        for need, names in ((METHOD_CALL, ("path", "member")), (SIGNAL, ("path", "interface", "member")),
                            (ERROR, ("error_name", "reply_serial")), (METHOD_RETURN, ("reply_serial",))):
            if mtype == need and any(getattr(msg, n) is None for n in names):
                raise MarshalError(f"message of type {mtype} lacks a required header field")
        return msg


def message_size(head: bytes) -> int:
    """The whole size of a message from its first 16 bytes."""
    if len(head) < 16:
        raise MarshalError("message header truncated")
    if head[0:1] not in (b"l", b"B"):
        raise MarshalError(f"bad byte order {head[0:1]!r}")
    if head[3] != 1:
        raise MarshalError(f"unsupported protocol version {head[3]}")
    order = "<" if head[0:1] == b"l" else ">"
    body_len, _, fields_len = struct.unpack(order + "III", head[4:16])
    header = 16 + fields_len
    total = header + (-header % 8) + body_len
    if total > MAX_MESSAGE:
        raise MarshalError(f"message of {total} bytes is larger than D-Bus allows")
    return int(total)


def error_of(msg: Message) -> DBusError:
    """The DBusError an error reply carries (its first body value, when a string, is the text)."""
    text = msg.body[0] if msg.body and isinstance(msg.body[0], str) else ""
    return DBusError(msg.error_name or "org.freedesktop.DBus.Error.Failed", text)


# --- match rules ------------------------------------------------------------------------

def parse_match_rule(rule: str) -> dict[str, str]:
    """``"type='signal',member='X'"`` -> ``{"type": "signal", "member": "X"}``."""
    out: dict[str, str] = {}
    i = 0
    while i < len(rule):
        eq = rule.find("=", i)
        if eq < 0:
            raise MarshalError(f"match rule {rule!r}: expected key=value")
        key = rule[i:eq].strip().lstrip(",").strip()
        j, value = eq + 1, []
        quoted = False
        while j < len(rule) and (quoted or rule[j] != ","):
            if rule[j] == "'":
                quoted = not quoted
            elif rule[j] == "\\" and not quoted and rule[j + 1:j + 2] == "'":
                value.append("'")
                j += 1
            else:
                value.append(rule[j])
            j += 1
        out[key] = "".join(value)
        i = j + 1
    return out


_TYPE_NAMES = {"method_call": METHOD_CALL, "method_return": METHOD_RETURN, "error": ERROR, "signal": SIGNAL}


def rule_matches(rule: dict[str, str], msg: Message) -> bool:
    """Whether ``msg`` fits a parsed match rule.

    ``sender`` is not compared: a bus resolves a well-known name to the owner's unique
    name before it delivers, and a peer does not send one.
    """
    for key, want in rule.items():
        if key == "type":
            if _TYPE_NAMES.get(want) != msg.type:
                return False
        elif key in ("interface", "member", "path", "destination"):
            if getattr(msg, key) != want:
                return False
        elif key == "path_namespace":
            p = msg.path or ""
            if not (p == want or p.startswith(want.rstrip("/") + "/")):
                return False
        elif key.startswith("arg") and key[3:].isdigit():
            n = int(key[3:])
            if n >= len(msg.body) or msg.body[n] != want:
                return False
    return True


# --- addresses --------------------------------------------------------------------------

def _unescape(value: str) -> str:
    out = bytearray()
    i = 0
    raw = value.encode()
    while i < len(raw):
        if raw[i:i + 1] == b"%":
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode()


def parse_address(address: str) -> list[tuple[str, dict[str, str]]]:
    """``"unix:path=/a;unix:abstract=b"`` -> ``[("unix", {"path": "/a"}), ("unix", {"abstract": "b"})]``."""
    out = []
    for part in address.split(";"):
        if not part:
            continue
        transport, sep, rest = part.partition(":")
        if not sep:
            raise MarshalError(f"D-Bus address {address!r}: no transport")
        opts = {}
        for kv in rest.split(",") if rest else []:
            k, sep, v = kv.partition("=")
            if not sep:
                raise MarshalError(f"D-Bus address {address!r}: {kv!r} is not key=value")
            opts[k] = _unescape(v)
        out.append((transport, opts))
    return out


def system_bus_address() -> str:
    """$DBUS_SYSTEM_BUS_ADDRESS, else the specification's default."""
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_BUS


def session_bus_address() -> str:
    """$DBUS_SESSION_BUS_ADDRESS, else ``$XDG_RUNTIME_DIR/bus`` (where systemd --user puts it)."""
    addr = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if addr:
        return addr
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime:
        raise DBusConnectionError("org.freedesktop.DBus.Error.NoServer",
                                  "no session bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set")
    return "unix:path=" + os.path.join(runtime, "bus")


# --- the connection ---------------------------------------------------------------------


def outside_uid(uid: int, uid_map: str = "/proc/self/uid_map") -> int:
    """uid as the parent user namespace sees it (itself outside a user namespace)."""
    try:
        with open(uid_map) as f:
            lines = f.read().splitlines()
    except OSError:
        return uid
    for line in lines:
        fields = line.split()
        if len(fields) == 3:
            inside, outside, count = (int(x) for x in fields)
            if inside <= uid < inside + count:
                return outside + (uid - inside)
    return uid


class Connection:
    """One authenticated D-Bus connection.

    Not thread-safe; one call at a time.  Messages that arrive while a reply is awaited
    are kept: signals that fit a rule given to :meth:`add_match`, and method calls for
    :meth:`next_message`.
    """

    MAX_QUEUED = 4096
    #: Seconds without the first reply on a peer-to-peer connection before a nudge (see _nudge).
    NUDGE_AFTER = 1.0

    def __init__(self, sock: _socket.socket, *, bus: bool, path: str = "") -> None:
        self.sock = sock
        self.bus = bus
        self.path = path
        #: The one address this connection was made to (to open it again).
        self.address = ("unix:abstract=" + path[1:] if path.startswith("@") else "unix:path=" + path) if path else ""
        self.unique_name: str | None = None
        self.guid = ""
        self._serial = 0
        self._rx = bytearray()
        self._rules: list[tuple[str, dict[str, str]]] = []
        self._queue: list[Message] = []
        #: Whether the peer has answered a call yet (until then a slow reply is nudged).
        self._answered = False

    # opening and closing

    @classmethod
    def open(cls, address: str, *, bus: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Connection:
        """Connect to the first reachable unix address in ``address`` and authenticate.

        ``bus=True`` (a message bus) sends ``Hello``; ``bus=False`` is a peer-to-peer
        connection (systemd's private socket), which has no bus to greet.
        """
        errors: list[DBusConnectionError] = []
        for transport, opts in parse_address(address):
            if transport != "unix":
                errors.append(DBusConnectionError("org.freedesktop.DBus.Error.BadAddress",
                                                  f"D-Bus transport {transport!r} is not supported"))
                continue
            if "path" in opts:
                path, target = opts["path"], opts["path"]
            elif "abstract" in opts:
                path, target = "@" + opts["abstract"], "\0" + opts["abstract"]
            else:
                errors.append(DBusConnectionError("org.freedesktop.DBus.Error.BadAddress",
                                                  f"D-Bus address {address!r}: unix needs path= or abstract="))
                continue
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
            sock.settimeout(timeout)
            try:
                sock.connect(target)
            except OSError as e:
                sock.close()
                errors.append(DBusConnectionError("org.freedesktop.DBus.Error.NoServer",
                                                  f"connect {path}: {os.strerror(e.errno) if e.errno else e}",
                                                  errno=e.errno, path=path))
                continue
            conn = cls(sock, bus=bus, path=path)
            try:
                conn._authenticate(time.monotonic() + timeout)
                if bus:
                    conn.unique_name = conn.call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello", timeout=timeout)[0]
            except BaseException:
                conn.close()
                raise
            return conn
        if not errors:
            raise DBusConnectionError("org.freedesktop.DBus.Error.BadAddress", f"empty D-Bus address {address!r}")
        raise errors[0]

    @classmethod
    def system(cls, timeout: float = DEFAULT_TIMEOUT) -> Connection:
        """The system bus."""
        return cls.open(system_bus_address(), timeout=timeout)

    @classmethod
    def session(cls, timeout: float = DEFAULT_TIMEOUT) -> Connection:
        """The session bus of the calling user."""
        return cls.open(session_bus_address(), timeout=timeout)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    # authentication (specification, "Authentication Protocol")

    def _authenticate(self, deadline: float) -> None:
        # The server checks the uid against the socket's credentials as its own
        # namespace sees them: root of a rootless user namespace is its owner.
        uid = str(outside_uid(os.geteuid())).encode().hex()
        # The first byte must be NUL (it carries credentials on some systems).
        self._send_raw(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n", deadline)
        line = self._read_line(deadline)
        if not line.startswith(b"OK "):
            raise DBusConnectionError("org.freedesktop.DBus.Error.AuthFailed",
                                      f"authenticate on {self.path}: server answered {line.decode(errors='replace')!r}",
                                      path=self.path)
        self.guid = line[3:].decode(errors="replace").strip()
        self._send_raw(b"BEGIN\r\n", deadline)

    def _read_line(self, deadline: float) -> bytes:
        while b"\r\n" not in self._rx:
            if len(self._rx) > 16384:
                raise DBusConnectionError("org.freedesktop.DBus.Error.AuthFailed",
                                          f"authenticate on {self.path}: line too long", path=self.path)
            self._recv_some(deadline)
        line, _, rest = bytes(self._rx).partition(b"\r\n")
        self._rx[:] = rest
        return line

    # raw I/O with a deadline

    def _lost(self, what: str, e: OSError | None = None) -> DBusConnectionError:
        """``send on /path: Broken pipe``; with no error, the peer closed the connection."""
        if e is None:
            text = f"{what} {self.path}: connection closed by the other end"
        else:
            text = f"{what} {self.path}: {os.strerror(e.errno) if e.errno else e}"
        return DBusConnectionError(DISCONNECTED, text, errno=e.errno if e is not None else None, path=self.path)

    def _send_raw(self, data: bytes, deadline: float) -> None:
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            self.sock.sendall(data)
        except _socket.timeout:
            raise DBusConnectionError("org.freedesktop.DBus.Error.Timeout",
                                      f"send on {self.path}: timed out", path=self.path) from None
        except OSError as e:
            raise self._lost("send on", e) from None

    def _recv_some(self, deadline: float) -> bool:
        """Read what is there, waiting until ``deadline``; False when it passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except _socket.timeout:
            return False
        except OSError as e:
            raise self._lost("receive on", e) from None
        if not data:
            raise self._lost("receive on")
        self._rx.extend(data)
        return True

    def _read_message(self, deadline: float) -> Message | None:
        """The next message off the socket, or None when ``deadline`` passed first."""
        while True:
            if len(self._rx) >= 16:
                try:
                    size = message_size(bytes(self._rx[:16]))
                    if len(self._rx) >= size:
                        data = bytes(self._rx[:size])
                        del self._rx[:size]
                        return Message.from_bytes(data)
                except MarshalError as e:
                    self.close()
                    raise DBusConnectionError("org.freedesktop.DBus.Error.InvalidArgs",
                                              f"bad message on {self.path}: {e}", path=self.path) from None
            if not self._recv_some(deadline):
                return None

    # sending

    def _next_serial(self) -> int:
        self._serial = self._serial % 0xFFFFFFFF + 1
        return self._serial

    def send(self, msg: Message, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Send ``msg`` with a fresh serial; return the serial."""
        msg.serial = self._next_serial()
        self._send_raw(msg.to_bytes(), time.monotonic() + timeout)
        return msg.serial

    def _nudge(self, deadline: float) -> None:
        """Send a Ping that wants no answer, so that a peer reads its socket again.

        systemd's sd-bus reads past ``BEGIN`` while it authenticates; a first
        call that arrived in the same read then waits, unparsed, until more
        bytes come in (seen on loaded machines as a 25-30 s stall before the
        reply to the first call on /run/systemd/private).
        """
        self.send(Message(METHOD_CALL, flags=NO_REPLY_EXPECTED | NO_AUTO_START, path="/",
                          interface="org.freedesktop.DBus.Peer", member="Ping"),
                  max(deadline - time.monotonic(), 0.001))

    def _keep(self, msg: Message) -> None:
        if msg.type == METHOD_CALL or (msg.type == SIGNAL and any(rule_matches(r, msg) for _, r in self._rules)):
            if len(self._queue) >= self.MAX_QUEUED:
                del self._queue[0]  # a peer flooding signals nobody waits for: drop the oldest
            self._queue.append(msg)
        # Other replies (to calls given up on) and unmatched signals are dropped.

    def call(self, destination: str | None, path: str, interface: str | None, member: str,
             signature: str = "", args: Sequence[Any] = (), timeout: float = DEFAULT_TIMEOUT,
             flags: int = 0) -> list[Any]:
        """Call a method and return its reply's values; an error reply raises DBusError."""
        deadline = time.monotonic() + timeout
        msg = Message(METHOD_CALL, flags=flags, path=path, interface=interface, member=member,
                      destination=destination, signature=signature, body=args)
        serial = self.send(msg, timeout)
        while True:
            wait_until = deadline
            if not self.bus and not self._answered:
                wait_until = min(deadline, time.monotonic() + self.NUDGE_AFTER)
            reply = self._read_message(wait_until)
            if reply is None:
                if wait_until < deadline:
                    self._nudge(deadline)
                    continue
                raise DBusError("org.freedesktop.DBus.Error.NoReply",
                                f"{interface}.{member}: no reply within {timeout:g} s")
            if reply.type in (METHOD_RETURN, ERROR):
                self._answered = True
            if reply.type in (METHOD_RETURN, ERROR) and reply.reply_serial == serial:
                if reply.type == ERROR:
                    raise error_of(reply)
                return reply.body
            self._keep(reply)

    # signals

    def add_match(self, rule: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Keep signals that fit ``rule`` (D-Bus match rule syntax).  On a bus the rule is
        also given to the bus (AddMatch), which then routes them here; a peer sends
        its signals anyway and the rule only filters."""
        parsed = parse_match_rule(rule)
        if self.bus:
            self.call(BUS_NAME, BUS_PATH, BUS_NAME, "AddMatch", "s", [rule], timeout=timeout)
        self._rules.append((rule, parsed))

    def remove_match(self, rule: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Undo one :meth:`add_match` of the same rule."""
        for i, (text, _) in enumerate(self._rules):
            if text == rule:
                del self._rules[i]
                if self.bus:
                    self.call(BUS_NAME, BUS_PATH, BUS_NAME, "RemoveMatch", "s", [rule], timeout=timeout)
                return

    def wait_signal(self, predicate: Callable[[Message], bool], timeout: float) -> Message | None:
        """The first kept signal (queued or arriving within ``timeout`` s) for which
        ``predicate`` is true, removed from the queue; None on timeout."""
        for queued in self._queue:
            if queued.type == SIGNAL and predicate(queued):
                self._queue.remove(queued)
                return queued
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            if msg is None:
                return None
            if msg.type == SIGNAL and any(rule_matches(r, msg) for _, r in self._rules) and predicate(msg):
                return msg
            self._keep(msg)

    def pending(self) -> list[Message]:
        """The queued messages (signals kept and method calls not yet taken), oldest first."""
        return list(self._queue)

    # serving (what a service does; the tests play one)

    def next_message(self, timeout: float) -> Message | None:
        """The next queued or incoming method call or kept signal; None on timeout."""
        if self._queue:
            return self._queue.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            if msg is None:
                return None
            self._keep(msg)
            if self._queue:
                return self._queue.pop(0)

    def reply(self, call: Message, signature: str = "", args: Sequence[Any] = ()) -> None:
        """Answer a method call."""
        if call.flags & NO_REPLY_EXPECTED:
            return
        self.send(Message(METHOD_RETURN, flags=NO_REPLY_EXPECTED, reply_serial=call.serial,
                          destination=call.sender, signature=signature, body=args))

    def reply_error(self, call: Message, name: str, text: str = "") -> None:
        """Answer a method call with an error."""
        if call.flags & NO_REPLY_EXPECTED:
            return
        self.send(Message(ERROR, flags=NO_REPLY_EXPECTED, reply_serial=call.serial, error_name=name,
                          destination=call.sender, signature="s" if text else "", body=[text] if text else []))

    def emit_signal(self, path: str, interface: str, member: str, signature: str = "",
                    args: Sequence[Any] = (), destination: str | None = None) -> None:
        """Broadcast a signal (or send it to ``destination``)."""
        self.send(Message(SIGNAL, flags=NO_REPLY_EXPECTED, path=path, interface=interface, member=member,
                          destination=destination, signature=signature, body=args))

    def request_name(self, name: str, flags: int = 0x4, timeout: float = DEFAULT_TIMEOUT) -> int:
        """RequestName on the bus (default flag DO_NOT_QUEUE); returns the bus's answer
        (1 primary owner, 2 in queue, 3 exists, 4 already owner)."""
        return int(self.call(BUS_NAME, BUS_PATH, BUS_NAME, "RequestName", "su", [name, flags], timeout=timeout)[0])

