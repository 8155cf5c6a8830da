"""pyrunc.linux.dbus's wire format: byte layouts derived by hand from the D-Bus
specification ("Type System", "Message Format"), round trips over generated
signatures and values, header and error-reply parsing, addresses and match rules."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrunc.linux import dbus
from pyrunc.linux.dbus import MarshalError, Message, marshal, outside_uid, split_signature, unmarshal

# --- byte layouts, each derived by hand from the specification's alignment rules --------

LAYOUTS: list[tuple[str, list[Any], bytes]] = [
    ("y", [0x12], b"\x12"),
    ("b", [True], b"\x01\0\0\0"),
    ("n", [-2], b"\xfe\xff"),
    ("q", [0x1234], b"\x34\x12"),
    ("i", [-1], b"\xff\xff\xff\xff"),
    ("u", [0x01020304], b"\x04\x03\x02\x01"),
    ("x", [-2], b"\xfe" + b"\xff" * 7),
    ("t", [1 << 40], b"\0\0\0\0\0\x01\0\0"),
    ("d", [1.0], struct.pack("<d", 1.0)),
    # byte, then 3 bytes of padding to the uint32
    ("yu", [1, 2], b"\x01\0\0\0\x02\0\0\0"),
    # byte, then 7 bytes of padding to the uint64
    ("yt", [1, 2], b"\x01" + b"\0" * 7 + b"\x02" + b"\0" * 7),
    # int16 after a byte is aligned to 2
    ("yn", [1, 2], b"\x01\0\x02\0"),
    # string: uint32 length, bytes, NUL (not counted)
    ("s", ["abc"], b"\x03\0\0\0abc\0"),
    ("o", ["/a"], b"\x02\0\0\0/a\0"),
    # signature: one length byte, no alignment
    ("g", ["ai"], b"\x02ai\0"),
    ("yg", [7, "u"], b"\x07\x01u\0"),
    ("ys", [1, "a"], b"\x01\0\0\0\x01\0\0\0a\0"),
    # empty array of uint64: the length (0), then padding to 8 is still there
    ("at", [[]], b"\0" * 8),
    # one uint64: length 8 excludes the 4 bytes of padding before the element
    ("at", [[5]], b"\x08\0\0\0" + b"\0" * 4 + b"\x05" + b"\0" * 7),
    ("ai", [[1, 2]], b"\x08\0\0\0\x01\0\0\0\x02\0\0\0"),
    ("ay", [[1, 2, 3]], b"\x03\0\0\0\x01\x02\x03"),
    # a struct starts on an 8-byte boundary
    ("y(y)", [1, (2,)], b"\x01" + b"\0" * 7 + b"\x02"),
    ("(yu)", [(1, 2)], b"\x01\0\0\0\x02\0\0\0"),
    # array of structs: length excludes the padding to the first (8-aligned) struct
    ("a(y)", [[(1,), (2,)]], b"\x09\0\0\0" + b"\0" * 4 + b"\x01" + b"\0" * 7 + b"\x02"),
    # empty array of structs: padding to 8 even though there is no element
    ("ya(y)", [1, []], b"\x01\0\0\0" + b"\0\0\0\0"),
    ("ya(y)y", [1, [], 9], b"\x01\0\0\0" + b"\0\0\0\0" + b"\x09"),
    ("a(y)", [[]], b"\0\0\0\0\0\0\0\0"),
    # variant: the signature, then the value at its own alignment
    ("v", [("u", 7)], b"\x01u\0\0\x07\0\0\0"),
    ("v", [("s", "x")], b"\x01s\0\0\x01\0\0\0x\0"),
    ("v", [("y", 3)], b"\x01y\0\x03"),
    ("v", [("v", ("y", 3))], b"\x01v\0\x01y\0\x03"),
    # dict {"a": <uint32 1>}: length 16; entry at 8: "a" (8..13), signature "u" (14..16),
    # padding (17..19), uint32 at 20
    ("a{sv}", [{"a": ("u", 1)}],
     b"\x10\0\0\0" + b"\0" * 4 + b"\x01\0\0\0a\0" + b"\x01u\0" + b"\0" * 3 + b"\x01\0\0\0"),
    ("a{yy}", [{1: 2, 3: 4}], b"\x0a\0\0\0" + b"\0" * 4 + b"\x01\x02" + b"\0" * 6 + b"\x03\x04"),
]


@pytest.mark.parametrize(("sig", "values", "wire"), LAYOUTS, ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(LAYOUTS)])
def test_known_layouts(sig: str, values: list[Any], wire: bytes) -> None:
    assert marshal(sig, values) == wire
    assert unmarshal(sig, wire) == values


def test_big_endian_is_read() -> None:
    assert unmarshal("yu", b"\x01\0\0\0\x01\x02\x03\x04", order=">") == [1, 0x01020304]
    assert unmarshal("at", b"\0\0\0\x08" + b"\0" * 4 + b"\0" * 7 + b"\x05", order=">") == [[5]]


def test_dict_accepts_pairs_and_returns_dict() -> None:
    assert unmarshal("a{sv}", marshal("a{sv}", [[("k", ("b", True))]])) == [{"k": ("b", True)}]


def test_systemd_property_list_layout() -> None:
    """StartTransientUnit's a(sv): every struct 8-aligned, each variant value at its own alignment."""
    props = [("Delegate", ("b", True)), ("PIDs", ("au", [1234])), ("MemoryMax", ("t", 1 << 30))]
    wire = marshal("a(sv)", [props])
    assert unmarshal("a(sv)", wire) == [props]
    # Entry 1 at 8: "Delegate" 8..20, "b" 21..23, bool at 24..28; entry 2 at 32.
    assert wire[8:12] == b"\x08\0\0\0" and wire[12:21] == b"Delegate\0"
    assert wire[21:24] == b"\x01b\0" and wire[24:28] == b"\x01\0\0\0"
    assert wire[32:36] == b"\x04\0\0\0" and wire[36:41] == b"PIDs\0"


# --- refusals ---------------------------------------------------------------------------

@pytest.mark.parametrize(("sig", "value"), [
    ("y", 256), ("y", -1), ("n", 1 << 15), ("q", -1), ("i", 1 << 31), ("u", -1), ("t", 1 << 64),
    ("x", 1 << 63), ("b", 2), ("u", True), ("u", "1"), ("d", "x"), ("s", "a\0b"), ("s", 1),
    ("o", "a/b"), ("o", "/a/"), ("o", "/a//b"), ("o", "/a-b"), ("g", "a"), ("g", "{ss}"),
    ("v", "x"), ("v", ("ss", "a")), ("ai", "abc"), ("(ii)", (1,)), ("as", {"a": 1}),
])
def test_values_that_do_not_fit_are_refused(sig: str, value: Any) -> None:
    with pytest.raises(MarshalError):
        marshal(sig, [value])


@pytest.mark.parametrize("sig", ["a", "(", "()", "(i", "a{}", "a{i}", "a{iii}", "a{vi}", "{ss}", "z", "i)",
                                 "a" * 70 + "i"])
def test_bad_signatures(sig: str) -> None:
    with pytest.raises(MarshalError):
        split_signature(sig)


def test_signature_split() -> None:
    assert split_signature("sa{sv}(ii)av") == ["s", "a{sv}", "(ii)", "av"]
    assert split_signature("ssa(sv)a(sa(sv))") == ["s", "s", "a(sv)", "a(sa(sv))"]
    assert split_signature("") == []


@pytest.mark.parametrize(("sig", "wire"), [
    ("u", b"\x01\0\0"),                      # truncated
    ("s", b"\x05\0\0\0ab\0"),                # length past the end
    ("s", b"\x01\0\0\0ab"),                  # no NUL terminator
    ("s", b"\x02\0\0\0\xff\xfe\0"),          # not UTF-8
    ("b", b"\x02\0\0\0"),                    # boolean other than 0/1
    ("ai", b"\x03\0\0\0\x01\0\0\0"),         # length not a multiple of the element
    ("ai", b"\x10\0\0\0\x01\0\0\0"),         # array past the end
    ("v", b"\x02ii\0"),                      # variant of two types
    ("y", b"\x01\x02"),                      # bytes left over
])
def test_bad_bytes_are_refused(sig: str, wire: bytes) -> None:
    with pytest.raises(MarshalError):
        unmarshal(sig, wire)


def test_nesting_bomb_is_refused() -> None:
    # A variant holding a variant holding ... 100 deep, each level 3 bytes.
    wire = b"\x01v\0" * 100 + b"\x01y\0\x01"
    with pytest.raises(MarshalError):
        unmarshal("v", wire)


# --- generated round trips --------------------------------------------------------------

_BASIC_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "y": st.integers(0, 255), "b": st.booleans(), "n": st.integers(-(1 << 15), (1 << 15) - 1),
    "q": st.integers(0, 0xFFFF), "i": st.integers(-(1 << 31), (1 << 31) - 1), "u": st.integers(0, 0xFFFFFFFF),
    "x": st.integers(-(1 << 63), (1 << 63) - 1), "t": st.integers(0, (1 << 64) - 1),
    "d": st.floats(allow_nan=False), "h": st.integers(0, 0xFFFFFFFF),
    "s": st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=12),
    "o": st.lists(st.text("abcXYZ_09", min_size=1, max_size=5), max_size=3).map(lambda p: "/" + "/".join(p)),
}
_KEYS = sorted(_BASIC_VALUES)

signatures: st.SearchStrategy[str] = st.recursive(
    st.sampled_from([*_KEYS, "g", "v"]),
    lambda inner: st.one_of(
        inner.map(lambda t: "a" + t),
        st.lists(inner, min_size=1, max_size=4).map(lambda ts: "(" + "".join(ts) + ")"),
        st.tuples(st.sampled_from(_KEYS), inner).map(lambda kv: "a{" + kv[0] + kv[1] + "}"),
    ),
    max_leaves=6,
)


@st.composite
def value_for(draw: st.DrawFn, sig: str, depth: int = 0) -> Any:
    c = sig[0]
    if c in _BASIC_VALUES:
        return draw(_BASIC_VALUES[c])
    if c == "g":
        return "".join(draw(st.lists(signatures, max_size=3)))[:200] if depth < 2 else "i"
    if c == "v":
        inner = draw(signatures) if depth < 3 else "u"
        return (inner, draw(value_for(inner, depth + 1)))
    if c == "(":
        return tuple(draw(value_for(t, depth + 1)) for t in split_signature(sig[1:-1]))
    if sig.startswith("a{"):
        key_t, val_t = sig[2], sig[3:-1]
        keys = draw(st.lists(_BASIC_VALUES[key_t], max_size=3, unique=True))
        return {k: draw(value_for(val_t, depth + 1)) for k in keys}
    return draw(st.lists(value_for(sig[1:], depth + 1), max_size=3))


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[str, list[Any]]:
    types = draw(st.lists(signatures, min_size=1, max_size=3))
    sig = "".join(types)
    if len(sig) > 255 or any(not _valid(t) for t in types):
        return "y", [0]
    return sig, [draw(value_for(t)) for t in types]


def _valid(t: str) -> bool:
    try:
        split_signature(t)
    except MarshalError:
        return False
    return True


@given(typed_values(), st.integers(0, 7))
def test_round_trip_at_every_offset(case: tuple[str, list[Any]], offset: int) -> None:
    sig, values = case
    prefix = [1] * offset
    wire = marshal("y" * offset + sig, [*prefix, *values])
    assert unmarshal("y" * offset + sig, wire) == [*prefix, *values]


@given(typed_values())
def test_round_trip_inside_a_variant(case: tuple[str, list[Any]]) -> None:
    sig, values = case
    wrapped = [(t, v) for t, v in zip(split_signature(sig), values)]
    assert unmarshal("v" * len(wrapped), marshal("v" * len(wrapped), wrapped)) == wrapped


@given(typed_values())
def test_round_trip_in_a_message(case: tuple[str, list[Any]]) -> None:
    sig, values = case
    msg = Message(dbus.METHOD_CALL, serial=3, path="/a/b", interface="x.Y", member="Z", destination="x.Y",
                  signature=sig, body=values)
    back = Message.from_bytes(msg.to_bytes())
    assert (back.type, back.serial, back.path, back.interface, back.member, back.destination) == \
        (dbus.METHOD_CALL, 3, "/a/b", "x.Y", "Z", "x.Y")
    assert back.signature == sig and back.body == values


# --- headers ----------------------------------------------------------------------------

# A signal, no body: path "/", interface "a.b", member "C", serial 7, NO_REPLY_EXPECTED.
# Fields array at 16 (length 42): field 1 at 16..26, field 2 at 32..44, field 3 at 48..58;
# then padding to 64, where the (empty) body would start.
SIGNAL_WIRE = (b"l\x04\x01\x01" + b"\0\0\0\0" + b"\x07\0\0\0" + b"\x2a\0\0\0"
               + b"\x01\x01o\0" + b"\x01\0\0\0/\0" + b"\0" * 6
               + b"\x02\x01s\0" + b"\x03\0\0\0a.b\0" + b"\0" * 4
               + b"\x03\x01s\0" + b"\x01\0\0\0C\0" + b"\0" * 6)


def test_signal_header_layout() -> None:
    msg = Message(dbus.SIGNAL, serial=7, flags=dbus.NO_REPLY_EXPECTED, path="/", interface="a.b", member="C")
    assert msg.to_bytes() == SIGNAL_WIRE
    assert len(SIGNAL_WIRE) == 64 and dbus.message_size(SIGNAL_WIRE[:16]) == 64
    back = Message.from_bytes(SIGNAL_WIRE)
    assert (back.type, back.flags, back.serial, back.path, back.interface, back.member, back.body) == \
        (dbus.SIGNAL, 1, 7, "/", "a.b", "C", [])


# An error reply to serial 5: error name "x.Y", signature "s", body "no" (7 bytes).
# Fields at 16 (length 31): field 4 at 16..28, field 5 at 32..40, field 8 at 40..47; pad to 48.
ERROR_WIRE = (b"l\x03\x01\x01" + b"\x07\0\0\0" + b"\x02\0\0\0" + b"\x1f\0\0\0"
              + b"\x04\x01s\0" + b"\x03\0\0\0x.Y\0" + b"\0" * 4
              + b"\x05\x01u\0" + b"\x05\0\0\0"
              + b"\x08\x01g\0" + b"\x01s\0" + b"\0"
              + b"\x02\0\0\0no\0")


def test_error_reply_parsing() -> None:
    msg = Message.from_bytes(ERROR_WIRE)
    assert (msg.type, msg.reply_serial, msg.error_name, msg.signature, msg.body) == \
        (dbus.ERROR, 5, "x.Y", "s", ["no"])
    err = dbus.error_of(msg)
    assert (err.name, err.message, str(err)) == ("x.Y", "no", "x.Y: no")
    out = Message(dbus.ERROR, serial=2, flags=1, error_name="x.Y", reply_serial=5, signature="s", body=["no"])
    assert out.to_bytes() == ERROR_WIRE


def test_error_reply_without_text() -> None:
    msg = Message(dbus.ERROR, serial=2, error_name="a.B", reply_serial=1)
    err = dbus.error_of(Message.from_bytes(msg.to_bytes()))
    assert (err.name, err.message, str(err)) == ("a.B", "", "a.B")


def test_big_endian_message() -> None:
    # SIGNAL_WIRE with every uint32 swapped and 'B' as the byte-order mark.
    def be(n: int) -> bytes:
        return n.to_bytes(4, "big")
    wire = (b"B\x04\x01\x01" + be(0) + be(7) + be(42)
            + b"\x01\x01o\0" + be(1) + b"/\0" + b"\0" * 6
            + b"\x02\x01s\0" + be(3) + b"a.b\0" + b"\0" * 4
            + b"\x03\x01s\0" + be(1) + b"C\0" + b"\0" * 6)
    msg = Message.from_bytes(wire)
    assert (msg.serial, msg.path, msg.interface, msg.member) == (7, "/", "a.b", "C")


@pytest.mark.parametrize("wire", [
    b"x" + SIGNAL_WIRE[1:],                              # byte order mark
    SIGNAL_WIRE[:3] + b"\x02" + SIGNAL_WIRE[4:],         # protocol version
    SIGNAL_WIRE[:8] + b"\0\0\0\0" + SIGNAL_WIRE[12:],    # serial 0
    SIGNAL_WIRE[:48] + b"\0" * 16,                       # signal without a member
    SIGNAL_WIRE[:16] + b"\x01\x01s\0" + SIGNAL_WIRE[20:],  # path field typed as a string
    SIGNAL_WIRE[:4] + b"\xff\xff\xff\x7f" + SIGNAL_WIRE[8:],  # body length past the limit
])
def test_bad_headers_are_refused(wire: bytes) -> None:
    with pytest.raises(MarshalError):
        Message.from_bytes(wire)


def test_unknown_header_fields_are_ignored() -> None:
    msg = Message(dbus.SIGNAL, serial=1, path="/", interface="a.b", member="C")
    raw = bytearray(msg.to_bytes())
    # Append a field with code 200 (struct at 64: 200, "y", value 1) and grow the array.
    (n,) = struct.unpack_from("<I", raw, 12)
    fields = bytes(raw[16:16 + n]) + b"\0" * (-(16 + n) % 8) + b"\xc8\x01y\0\x01"
    wire = raw[:12] + struct.pack("<I", len(fields)) + fields
    wire += b"\0" * (-len(wire) % 8)
    back = Message.from_bytes(bytes(wire))
    assert back.member == "C"


# --- addresses and match rules ----------------------------------------------------------

def test_parse_address() -> None:
    assert dbus.parse_address("unix:path=/run/dbus/system_bus_socket") == [
        ("unix", {"path": "/run/dbus/system_bus_socket"})]
    assert dbus.parse_address("unix:abstract=/tmp/dbus-X,guid=ab;unix:path=/a%2cb") == [
        ("unix", {"abstract": "/tmp/dbus-X", "guid": "ab"}), ("unix", {"path": "/a,b"})]
    with pytest.raises(MarshalError):
        dbus.parse_address("nocolon")


def test_bus_addresses_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)
    assert dbus.system_bus_address() == "unix:path=/var/run/dbus/system_bus_socket"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/x")
    assert dbus.system_bus_address() == "unix:path=/x"
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert dbus.session_bus_address() == "unix:path=/run/user/1000/bus"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    with pytest.raises(dbus.DBusConnectionError):
        dbus.session_bus_address()


def test_match_rules() -> None:
    rule = dbus.parse_match_rule("type='signal',interface='a.B',member='C',path='/x',arg0='it''s'")
    assert rule == {"type": "signal", "interface": "a.B", "member": "C", "path": "/x", "arg0": "its"}
    assert dbus.parse_match_rule(r"arg0='a',arg1=\'") == {"arg0": "a", "arg1": "'"}
    sig = Message(dbus.SIGNAL, serial=1, path="/x", interface="a.B", member="C", signature="s", body=["its"])
    assert dbus.rule_matches(rule, sig)
    sig.member = "D"
    assert not dbus.rule_matches(rule, sig)
    assert dbus.rule_matches({"path_namespace": "/x"}, Message(dbus.SIGNAL, serial=1, path="/x/y"))
    assert not dbus.rule_matches({"path_namespace": "/x"}, Message(dbus.SIGNAL, serial=1, path="/xy"))


def test_connection_error_text_names_the_socket(tmp_path: Any) -> None:
    missing = tmp_path / "nobus"
    with pytest.raises(dbus.DBusConnectionError) as info:
        dbus.Connection.open(f"unix:path={missing}")
    assert str(info.value) == f"connect {missing}: No such file or directory"
    assert info.value.errno == 2 and info.value.path == str(missing)


@pytest.mark.parametrize(("uid_map", "uid", "expected"), [
    ("         0          0 4294967295\n", 0, 0),          # the initial namespace
    ("         0       1000          1\n", 0, 1000),       # rootless: root is its owner
    ("         0       1000          1\n         1     100000      65536\n", 5, 100004),
    ("         0       1000          1\n", 7, 7),          # unmapped: left as it is
])
def test_outside_uid_maps_through_the_uid_map(tmp_path: Path, uid_map: str, uid: int, expected: int) -> None:
    path = tmp_path / "uid_map"
    path.write_text(uid_map)
    assert outside_uid(uid, str(path)) == expected


def test_outside_uid_without_a_uid_map_is_the_uid(tmp_path: Path) -> None:
    assert outside_uid(42, str(tmp_path / "missing")) == 42
