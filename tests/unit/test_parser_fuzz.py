"""Property-based fuzzing of the parsers pyrunc owns (pure, no root).

Each parser, given any input, either returns a valid value or raises the
project's one-line error (a PyruncError subclass, or ValueError where that
is its documented contract); never another exception, never a multi-line
message, never a hang.
"""

from __future__ import annotations

import copy
import struct

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pyrunc.cli.update_cmd import _memory, ram_in_bytes
from pyrunc.errors import PyruncError
from pyrunc.linux.cgroups.stats import _cpu_list
from pyrunc.linux.idmap import format_map
from pyrunc.plan import protocol as P
from pyrunc.plan.mounts import MountOptions, parse_options
from pyrunc.plan.process import parse_user
from pyrunc.plan.signals import SIGRTMAX, parse_signal
from tests.conftest import BASE_CONFIG

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# Text that looks like the real thing often enough to get past the first check.
ALPHABET = st.sampled_from(list("0123456789+-:., _xkKmMgGtTpPbBiIeE\t\n\0") + ["SIG", "RTMIN",
                           "RTMAX", "KILL", "TERM", "USR1", "é", "٣", "𝟙", "1e308", "nan", "inf"])
shaped = st.lists(ALPHABET, max_size=12).map("".join)
any_text = st.one_of(st.text(max_size=40), shaped)


def one_line(e: BaseException, given: object = "") -> None:
    """A non-empty message whose only line breaks are echoed input (the CLI
    escapes those when it prints the error: see test_cli_error_is_one_line)."""
    text = str(e)
    assert text and text.count("\n") <= str(given).count("\n"), repr(text)


@FUZZ
@given(any_text)
@example("RTMIN+99999999999999999999")
@example("9" * 5000)
@example("sig")
def test_parse_signal(text):
    try:
        n = parse_signal(text)
    except PyruncError as e:
        one_line(e, text)
        return
    assert isinstance(n, int) and 0 <= n <= SIGRTMAX


@FUZZ
@given(any_text)
@example("4294967295")
@example("1:" + "9" * 5000)
@example("+1")
@example("1_0")
@example(" 1")
def test_parse_user(text):
    try:
        uid, gid = parse_user(text)
    except PyruncError as e:
        one_line(e, text)
        return
    assert 0 <= uid <= 0xFFFFFFFE and (gid is None or 0 <= gid <= 0xFFFFFFFE)
    assert int(text.partition(":")[0]) == uid  # digits only: never a name taken for an id


OPTION_WORDS = st.sampled_from([
    "ro", "rw", "bind", "rbind", "nosuid", "suid", "nodev", "noexec", "private", "rslave",
    "shared", "unbindable", "rro", "rrw", "rnoatime", "ratime", "tmpcopyup", "idmap", "ridmap",
    "mode=755", "size=1k", "uid=0", "", ",", "=", "x-foo", "idmap=uids=0-1-1", "nosymfollow",
    "rnosymfollow", "strictatime", "norelatime", "remount", "\0",
])


@FUZZ
@given(st.lists(st.one_of(OPTION_WORDS, st.text(max_size=12)), max_size=8))
def test_parse_options(options):
    try:
        parsed = parse_options(options)
    except PyruncError as e:
        one_line(e, options)
        return
    assert isinstance(parsed, MountOptions)
    assert parsed.flags >= 0


CPU_WORDS = st.sampled_from(["0", "1", "7", "-", ",", "0-3", "3-0", "99999999999999", " ",
                             "\n", "a", "0-99999999999999", "1-", "-1"])


@FUZZ
@given(st.one_of(st.lists(CPU_WORDS, max_size=8).map("".join), st.text(max_size=30), st.none()))
@example("0-99999999999999")
@example("0-4096,0-4096,0-4096")
@example("¹")
def test_cpu_list(text):
    """The reader of cpuset.cpus(.effective) text: a bounded list of cpu numbers."""
    out = _cpu_list(text)
    assert all(isinstance(n, int) and 0 <= n for n in out)
    assert len(out) <= 1 << 20


@FUZZ
@given(any_text)
@example("1e308p")
@example("1e300t")
@example("9" * 400 + "g")
@example("-1")
@example("1.5GiB")
@example(".")
@example("")
def test_update_memory_units(text):
    try:
        n = ram_in_bytes(text)
    except ValueError as e:  # documented: ValueError, which _memory turns into a PyruncError
        one_line(e, text)
    else:
        assert isinstance(n, int) and n >= 0
    try:
        m = _memory("--memory", text)
    except PyruncError as e:
        one_line(e, text)
    else:
        assert isinstance(m, int) and m >= -1


@FUZZ
@given(any_text)
@example("¹")
@example("1" * 5000)
@example("-٣")
def test_update_integer_flags(text):
    from pyrunc.cli.update_cmd import _signed, _unsigned

    for parse in (_signed, _unsigned):
        try:
            n = parse("--cpu-period", text)
        except PyruncError as e:
            one_line(e, text)
        else:
            assert isinstance(n, int)


@FUZZ
@given(st.binary(max_size=P.SYNC_MSG.size + 8))
def test_decode_sync_any_bytes(data):
    try:
        kind, index, err, value, text = P.decode_sync(data)
    except ValueError as e:
        one_line(e)
        assert len(data) != P.SYNC_MSG.size
        return
    assert len(data) == P.SYNC_MSG.size
    assert isinstance(text, str) and "\0" not in text


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1),
       st.integers(-2**31, 2**31 - 1), st.binary(max_size=600))
def test_decode_sync_well_sized(kind, index, err, value, text):
    raw = P.SYNC_MSG.pack(kind, index, err, value, text[:P.SYNC_MSG.size])
    try:
        got = P.decode_sync(raw)
    except (ValueError, struct.error) as e:
        pytest.fail(f"well-sized message refused: {e}")
    assert got[0] == kind


# ---- id mappings: schema + semantic checks, then the uid_map text ---------------

ID = st.one_of(st.integers(0, 2**32 + 2), st.integers(-5, 5), st.sampled_from([2**32 - 1, 2**63]),
               st.floats(allow_nan=True), st.text(max_size=3), st.none())
MAPPING = st.fixed_dictionaries({}, optional={"containerID": ID, "hostID": ID, "size": ID,
                                              "extra": st.integers()})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MAPPING, max_size=4), st.lists(MAPPING, max_size=4), st.booleans())
def test_id_mappings(uids, gids, userns):
    from pyrunc.spec.semantic import check_config
    from pyrunc.spec.validate import validate_config

    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["root"]["path"] = "rootfs"
    cfg["linux"]["uidMappings"] = uids
    cfg["linux"]["gidMappings"] = gids
    if userns:
        cfg["linux"]["namespaces"].append({"type": "user"})
    try:
        validate_config(cfg)
        check_config(cfg, "/bundle")
    except PyruncError as e:
        one_line(e, cfg)
        return
    for maps in (uids, gids):
        text = format_map(maps).decode()
        assert text.count("\n") == len(maps)
        for line in text.splitlines():
            c, h, s = (int(x) for x in line.split())
            assert 0 <= c <= 2**32 - 1 and 0 <= h <= 2**32 - 1 and 0 <= s <= 2**32 - 1


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="0123456789\n\r xk.-", min_size=1, max_size=8))
def test_cli_error_is_one_line(value):
    """The CLI prints any error, echoed newlines included, as exactly one line."""
    import io
    from contextlib import redirect_stderr

    from pyrunc.cli import _log_error

    err = io.StringIO()
    with redirect_stderr(err):
        _log_error(None, f"invalid value for --memory: {value}")
    assert err.getvalue().count("\n") == 1 and err.getvalue().endswith("\n")
