"""pyrunc.plan.devices_bpf: device rules -> cgroup v2 BPF program (no root, no kernel).

The generated program is executed by the module's interpreter and compared
with two references: the emulated filter's own verdict and, independently,
a literal model of the v1 devices controller written here (an exception
list, exact-match removal, full/partial access matching).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyrunc.errors import ConfigError
from pyrunc.plan import cgroups as C
from pyrunc.plan import devices_bpf as B
from pyrunc.plan.cgroups import DeviceRule

R, W, M = B.ACC_READ, B.ACC_WRITE, B.ACC_MKNOD
CHAR, BLOCK = B.DEV_CHAR, B.DEV_BLOCK


def rule(text: str) -> DeviceRule:
    """``"allow c 1:3 rwm"`` -> DeviceRule."""
    verdict, dtype, numbers, access = text.split()
    major, minor = (-1 if n == "*" else int(n) for n in numbers.split(":"))
    return DeviceRule(dtype, major, minor, access, verdict == "allow")


def verdict(rules: list[DeviceRule], dev_type: int, major: int, minor: int, access: int) -> bool:
    prog = B.device_filter_program(rules)
    return B.run(prog, dev_type, major, minor, access) == 1


# ------------------------------------------------------------ v1 reference


@dataclass
class _Exc:
    type: str
    major: int
    minor: int
    access: int


def v1_model(rules: list[DeviceRule]) -> tuple[bool, list[_Exc]]:
    """The devices controller's state after writing each rule, kernel style."""
    allow_all = False
    excs: list[_Exc] = []
    for r in rules:
        mask = B.access_mask(r.access)
        if r.type == "a":
            allow_all, excs = r.allow, []
            continue
        same = [e for e in excs if (e.type, e.major, e.minor) == (r.type, r.major, r.minor)]
        if r.allow != allow_all:
            if same:
                same[0].access |= mask
            else:
                excs.append(_Exc(r.type, r.major, r.minor, mask))
        else:
            for e in same:
                e.access &= ~mask
            excs = [e for e in excs if e.access]
    return allow_all, excs


def v1_check(state: tuple[bool, list[_Exc]], dev_type: int, major: int, minor: int, access: int) -> bool:
    allow_all, excs = state

    def hit(e: _Exc) -> bool:
        return (B.DEVICE_TYPES[e.type] == dev_type and e.major in (-1, major) and e.minor in (-1, minor))

    if allow_all:
        return not any(hit(e) and access & e.access for e in excs)
    return any(hit(e) and access & ~e.access == 0 for e in excs)


# -------------------------------------------------------------- encoding


def test_encoding_matches_struct_bpf_insn() -> None:
    assert B.Insn(B.EXIT).encode() == bytes.fromhex("9500000000000000")
    # ldxw r2, [r1+0]: dst in the low nibble, src in the high one
    assert B.Insn(B.LDX_W, 2, 1, 0).encode() == bytes.fromhex("6112000000000000")
    assert B.Insn(B.LDX_W, 4, 1, 4).encode() == bytes.fromhex("6114040000000000")
    assert B.Insn(B.JNE_K, 2, off=5, imm=1).encode() == bytes.fromhex("5502050001000000")
    assert B.Insn(B.MOV32_K, 1, imm=-1).encode() == bytes.fromhex("b4010000ffffffff")
    assert B.Insn(B.JNE_X, 1, 3, 2).encode() == bytes.fromhex("5d31020000000000")


def test_encode_decode_roundtrip() -> None:
    prog = B.device_filter_program(C.cgroup_device_rules([{"allow": False, "access": "rwm"}]))
    data = B.encode(prog)
    assert len(data) == 8 * len(prog)
    assert B.decode(data) == prog
    with pytest.raises(ValueError):
        B.decode(b"\0" * 9)


def test_prologue_and_default_tail() -> None:
    prog = B.device_filter_program([])
    text = B.disassemble(prog)
    assert [line.split(": ", 1)[1] for line in text] == [
        "ldxw r2, [r1+0]", "and32 r2, 0xffff", "ldxw r3, [r1+0]", "rsh32 r3, 0x10",
        "ldxw r4, [r1+4]", "ldxw r5, [r1+8]", "mov32 r0, 0x0", "exit"]


# -------------------------------------------------------------- emulator


def test_empty_rules_deny_everything() -> None:
    assert B.effective_rules([]) == B.DeviceFilter(False, ())
    assert not verdict([], CHAR, 1, 3, R)


def test_wildcard_resets_and_drops_exceptions() -> None:
    f = B.effective_rules([rule("allow c 1:3 rwm"), rule("allow a *:* r")])
    assert f == B.DeviceFilter(True, ())
    f = B.effective_rules([rule("allow a *:* rwm"), rule("deny c 1:3 w"), rule("deny a 5:5 r")])
    assert f == B.DeviceFilter(False, ())


def test_access_merges_and_removes_exactly() -> None:
    f = B.effective_rules([rule("allow c 1:3 r"), rule("allow c 1:3 w"), rule("allow c 1:3 m"),
                           rule("deny c 1:3 m")])
    assert f.exceptions == (B.DeviceException("c", 1, 3, R | W),)
    f = B.effective_rules([rule("allow c 1:3 rw"), rule("deny c 1:3 rwm")])
    assert f.exceptions == ()


def test_exceptions_are_sorted_like_runc() -> None:
    f = B.effective_rules([rule("allow c 5:1 r"), rule("allow b 1:3 r"), rule("allow c 1:3 r"),
                           rule("allow c *:* m")])
    assert [e.line() for e in f.exceptions] == ["c *:* m", "b 1:3 r", "c 1:3 r", "c 5:1 r"]


@pytest.mark.parametrize("rules", [
    ["allow c *:* rw", "deny c 1:3 w"],
    ["allow c *:3 r", "deny c 1:3 rw"],
    ["allow c 1:* m", "deny c 1:3 m"],
    ["allow a *:* rwm", "deny b *:* r", "allow b 8:0 r"],
])
def test_punching_a_hole_in_a_wildcard_is_refused(rules: list[str]) -> None:
    with pytest.raises(ConfigError, match="cannot punch a hole in the wildcard rule"):
        B.device_filter_program([rule(r) for r in rules])


def test_removal_without_overlap_is_fine() -> None:
    # The wildcard grants only m, so taking r from 1:3 leaves nothing to punch.
    f = B.effective_rules([rule("allow c *:* m"), rule("allow c 1:3 rw"), rule("deny c 1:3 r")])
    assert [e.line() for e in f.exceptions] == ["c *:* m", "c 1:3 w"]


@pytest.mark.parametrize(("raw", "message"), [
    (DeviceRule("c", 1 << 32, 3, "r", True), "invalid device major"),
    (DeviceRule("c", 1, -2, "r", True), "invalid device minor"),
    (DeviceRule("x", 1, 3, "r", True), "invalid cgroup device type"),
    (DeviceRule("c", 1, 3, "rx", True), "invalid device access"),
])
def test_invalid_rules(raw: DeviceRule, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        B.device_filter_program([raw])


# ------------------------------------------------------- program verdicts


def _container_rules(spec: list[dict[str, Any]]) -> list[DeviceRule]:
    return C.cgroup_device_rules(spec)


def test_default_container_rules() -> None:
    rules = _container_rules([{"allow": False, "access": "rwm"}])
    assert verdict(rules, CHAR, 1, 3, R | W)          # /dev/null
    assert verdict(rules, CHAR, 1, 9, R)              # /dev/urandom
    assert verdict(rules, CHAR, 136, 7, R | W)        # /dev/pts/7
    assert verdict(rules, CHAR, 10, 200, R | W)       # /dev/net/tun
    assert verdict(rules, CHAR, 4, 1, M)              # mknod of any char device
    assert verdict(rules, BLOCK, 8, 0, M)             # mknod of any block device
    assert not verdict(rules, BLOCK, 8, 0, R)         # but no /dev/sda access
    assert not verdict(rules, CHAR, 4, 1, R | W)      # nor /dev/tty1
    assert not verdict(rules, CHAR, 1, 1, R)          # nor /dev/mem


def test_spec_rules_come_before_defaults() -> None:
    rules = _container_rules([{"allow": False, "access": "rwm"},
                              {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"}])
    assert verdict(rules, BLOCK, 8, 0, R)
    assert not verdict(rules, BLOCK, 8, 0, W)
    assert not verdict(rules, BLOCK, 8, 0, R | W)
    assert not verdict(rules, BLOCK, 8, 1, R)


def test_allow_needs_every_requested_bit() -> None:
    rules = [rule("deny a *:* rwm"), rule("allow c 1:3 r")]
    assert verdict(rules, CHAR, 1, 3, R)
    assert not verdict(rules, CHAR, 1, 3, R | W)
    rules.append(rule("allow c 1:3 w"))  # merged into one rw exception
    assert verdict(rules, CHAR, 1, 3, R | W)


def test_deny_list_refuses_any_shared_bit() -> None:
    rules = [rule("allow a *:* rwm"), rule("deny c 1:3 w")]
    assert verdict(rules, CHAR, 1, 3, R)
    assert not verdict(rules, CHAR, 1, 3, W)
    assert not verdict(rules, CHAR, 1, 3, R | W)  # v1 semantics (runc would allow)
    assert verdict(rules, CHAR, 1, 5, R | W)
    assert verdict(rules, BLOCK, 1, 3, W)


def test_deny_everything_then_allow_one() -> None:
    rules = [rule("deny a *:* rwm"), rule("allow c 1:3 rwm")]
    prog = B.device_filter_program(rules)
    assert B.run(prog, CHAR, 1, 3, R | W) == 1
    assert B.run(prog, CHAR, 1, 5, R) == 0
    assert B.run(prog, BLOCK, 1, 3, R) == 0


@pytest.mark.parametrize("number", [0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
def test_numbers_above_two_to_the_31(number: int) -> None:
    rules = [rule(f"allow c {number}:{number} r")]
    assert verdict(rules, CHAR, number, number, R)
    assert not verdict(rules, CHAR, number - 1, number, R)
    assert not verdict(rules, CHAR, number, number - 1, R)


def test_every_block_ends_in_exit_and_jumps_forward() -> None:
    rules = _container_rules([{"allow": False, "access": "rwm"},
                              {"allow": True, "type": "c", "major": 0x90000000, "access": "rw"}])
    prog = B.device_filter_program(rules)
    assert prog[-1] == B.Insn(B.EXIT)
    for pc, ins in enumerate(prog):
        if ins.code & 0x07 == 0x05 and ins.code != B.EXIT:
            assert 0 < pc + ins.off + 1 < len(prog)


# ------------------------------------------------------------ interpreter


def test_interpreter_refuses_what_the_verifier_would() -> None:
    with pytest.raises(B.BPFError, match="R0"):
        B.run([B.Insn(B.EXIT)], CHAR, 1, 3, R)
    with pytest.raises(B.BPFError, match="backward"):
        B.run([B.Insn(B.MOV32_K, 0, imm=0), B.Insn(B.JNE_K, 0, off=-2, imm=1), B.Insn(B.EXIT)], CHAR, 1, 3, R)
    with pytest.raises(B.BPFError, match="outside"):
        B.run([B.Insn(B.MOV32_K, 0, imm=0)], CHAR, 1, 3, R)
    with pytest.raises(B.BPFError, match="R1"):
        B.run([B.Insn(B.MOV32_X, 0, 1), B.Insn(B.EXIT)], CHAR, 1, 3, R)
    with pytest.raises(B.BPFError, match="opcode"):
        B.run([B.Insn(0x07)], CHAR, 1, 3, R)


# -------------------------------------------------------------- property


NUMBERS = [-1, 1, 3, 0x80000001]
REQUEST_NUMBERS = [1, 3, 4, 0x80000001]

rules_st = st.lists(
    st.builds(
        DeviceRule,
        type=st.sampled_from(["a", "b", "c", "c"]),
        major=st.sampled_from(NUMBERS),
        minor=st.sampled_from(NUMBERS),
        access=st.sampled_from(["r", "w", "m", "rw", "rm", "wm", "rwm"]),
        allow=st.booleans(),
    ),
    max_size=10,
)
requests_st = st.lists(
    st.tuples(st.sampled_from([CHAR, BLOCK]), st.sampled_from(REQUEST_NUMBERS),
              st.sampled_from(REQUEST_NUMBERS), st.integers(1, 7)),
    min_size=1, max_size=12,
)


@settings(max_examples=600, deadline=None)
@given(rules=rules_st, requests=requests_st)
def test_program_matches_v1_semantics(rules: list[DeviceRule], requests: list[tuple[int, int, int, int]]) -> None:
    try:
        filt = B.effective_rules(rules)
    except ConfigError:
        assume(False)
        raise
    prog = B.generate(filt)
    state = v1_model(rules)
    for dev_type, major, minor, access in requests:
        expected = v1_check(state, dev_type, major, minor, access)
        assert B.allows(filt, dev_type, major, minor, access) == expected
        got = B.run(prog, dev_type, major, minor, access)
        assert got == int(expected), "\n".join(B.disassemble(prog))


@settings(max_examples=200, deadline=None)
@given(rules=rules_st)
def test_refusal_only_when_a_wildcard_keeps_the_access(rules: list[DeviceRule]) -> None:
    """The emulator refuses exactly when v1 would keep a wider exception's access."""
    emu = B.DeviceEmulator()
    for r in rules:
        before_allow, before = emu.default_allow, dict(emu.rules)
        try:
            emu.apply(r)
        except ConfigError:
            assert r.type != "a" and r.allow == before_allow
            wider = [(r.type, -1, r.minor), (r.type, r.major, -1), (r.type, -1, -1)]
            assert any(w != (r.type, r.major, r.minor) and before.get(w, 0) & B.access_mask(r.access)
                       for w in wider)
            return
