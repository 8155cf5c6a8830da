"""Device cgroup rules -> a BPF_PROG_TYPE_CGROUP_DEVICE program (pure).

cgroup v2 has no devices controller: access to device nodes is decided by an
eBPF program attached to the cgroup (attach type BPF_CGROUP_DEVICE).  The
kernel runs it with a ``struct bpf_cgroup_dev_ctx`` (``u32 access_type`` =
access bits << 16 | device type, ``u32 major``, ``u32 minor``) and allows
the access when it returns 1.

The rules keep the cgroup v1 meaning, as runc does: they are first replayed
through :class:`DeviceEmulator`, a model of the v1 devices controller (an
``a`` rule resets the default and drops every exception; other rules add
to or take away from an exact-match exception list), and the program tests
the resulting exceptions, which all carry the verdict opposite to the
default.  A request is allowed

* in default-deny mode when one allow exception matches the device and
  holds every requested access bit (v1 ``match_exception``);
* in default-allow mode unless one deny exception matches the device and
  shares any requested access bit (v1 ``match_exception_partial``).  runc's
  program asks for every bit here too, which lets ``O_RDWR`` through a
  ``w``-only deny rule that v1 refuses; we keep the stricter v1 verdict.

:func:`run` is a small interpreter for the handful of instructions the
generator emits, so the program itself is unit-tested without a kernel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pyrunc.errors import ConfigError
from pyrunc.plan.cgroups import DeviceRule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

# struct bpf_cgroup_dev_ctx values (include/uapi/linux/bpf.h).
DEV_BLOCK = 1
DEV_CHAR = 2
ACC_MKNOD = 1
ACC_READ = 2
ACC_WRITE = 4
ACC_ALL = ACC_MKNOD | ACC_READ | ACC_WRITE

DEVICE_TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}
ACCESS_BITS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

U32_MAX = 0xFFFFFFFF
_S32_MAX = 0x7FFFFFFF
_U64 = (1 << 64) - 1

# Instruction classes, operations and sources (include/uapi/linux/bpf_common.h).
_LDX, _ALU, _JMP = 0x01, 0x04, 0x05
_MEM_W = 0x60 | 0x00
_K, _X = 0x00, 0x08
_AND, _RSH, _MOV = 0x50, 0x70, 0xB0
_JA, _JEQ, _JNE, _EXIT = 0x00, 0x10, 0x50, 0x90

LDX_W = _LDX | _MEM_W
AND32_K = _ALU | _AND | _K
RSH32_K = _ALU | _RSH | _K
MOV32_K = _ALU | _MOV | _K
MOV32_X = _ALU | _MOV | _X
JA = _JMP | _JA
JEQ_K = _JMP | _JEQ | _K
JEQ_X = _JMP | _JEQ | _X
JNE_K = _JMP | _JNE | _K
JNE_X = _JMP | _JNE | _X
EXIT = _JMP | _EXIT

# Register roles in the generated program.  R1 holds the context pointer on
# entry and is reused as scratch once the fields are loaded.
R0, R1, R2, R3, R4, R5 = 0, 1, 2, 3, 4, 5
_CTX, _TYPE, _ACCESS, _MAJOR, _MINOR, _TMP = R1, R2, R3, R4, R5, R1

INSN_SIZE = 8


@dataclass(frozen=True)
class Insn:
    """One ``struct bpf_insn``: opcode, dst/src registers, offset, immediate."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        """The 8 little-endian bytes the kernel expects (dst in the low nibble)."""
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, self.imm)


def encode(insns: Iterable[Insn]) -> bytes:
    """Concatenated ``struct bpf_insn`` array for BPF_PROG_LOAD."""
    return b"".join(i.encode() for i in insns)


def decode(data: bytes) -> list[Insn]:
    """Inverse of :func:`encode` (for tests and diagnostics)."""
    if len(data) % INSN_SIZE:
        raise ValueError(f"BPF program length {len(data)} is not a multiple of {INSN_SIZE}")
    out = []
    for pos in range(0, len(data), INSN_SIZE):
        code, regs, off, imm = struct.unpack_from("<BBhi", data, pos)
        out.append(Insn(code, regs & 0x0F, regs >> 4, off, imm))
    return out


# ------------------------------------------------------------------ emulator


@dataclass(frozen=True)
class DeviceException:
    """One exception of the emulated v1 cgroup: device match and access bits."""

    type: str
    major: int
    minor: int
    access: int

    def line(self) -> str:
        """``c 1:3 rw``-style text."""
        major = "*" if self.major < 0 else str(self.major)
        minor = "*" if self.minor < 0 else str(self.minor)
        return f"{self.type} {major}:{minor} {access_text(self.access)}"


@dataclass(frozen=True)
class DeviceFilter:
    """The emulated cgroup state: a default verdict and its exceptions."""

    default_allow: bool
    exceptions: tuple[DeviceException, ...] = ()


def access_mask(access: str) -> int:
    """``"rwm"``-style text -> BPF_DEVCG_ACC_* bits."""
    mask = 0
    for ch in access:
        if ch not in ACCESS_BITS:
            raise ConfigError(f"linux.resources.devices: invalid device access {access!r} (only r, w, m)")
        mask |= ACCESS_BITS[ch]
    return mask


def access_text(mask: int) -> str:
    """BPF_DEVCG_ACC_* bits -> text in ``rwm`` order."""
    return "".join(ch for ch in "rwm" if mask & ACCESS_BITS[ch])


def _rule_text(rule: DeviceRule) -> str:
    return f"{'allow' if rule.allow else 'deny'} {rule.v1_line()}"


@dataclass
class DeviceEmulator:
    """A model of the cgroup v1 devices controller fed one rule at a time.

    Starts in default-deny mode (runc starts from an empty emulator, and
    pyrunc's v1 path writes ``devices.deny a`` first).
    """

    default_allow: bool = False
    rules: dict[tuple[str, int, int], int] = field(default_factory=dict)

    def apply(self, rule: DeviceRule) -> None:
        """Apply one rule; ConfigError for a rule v1 would silently ignore."""
        if rule.type not in ("a", "b", "c"):
            raise ConfigError(f"linux.resources.devices: invalid cgroup device type {rule.type!r}")
        mask = access_mask(rule.access)
        if rule.type == "a":
            # v1 ignores the numbers and access of an "a" line: it only resets.
            self.default_allow = rule.allow
            self.rules = {}
            return
        for what, number in (("major", rule.major), ("minor", rule.minor)):
            if number < -1 or number > U32_MAX:
                raise ConfigError(f"linux.resources.devices: invalid device {what} {number} in {_rule_text(rule)!r}")
        key = (rule.type, rule.major, rule.minor)
        if rule.allow != self.default_allow:
            self.rules[key] = self.rules.get(key, 0) | mask
            return
        self._remove(key, mask, rule)

    def _remove(self, key: tuple[str, int, int], mask: int, rule: DeviceRule) -> None:
        dtype, major, minor = key
        # v1 only removes exact matches; a wider exception would keep the
        # access the user meant to take away, so refuse instead (as runc).
        for wider in ((dtype, -1, minor), (dtype, major, -1), (dtype, -1, -1)):
            if wider != key and self.rules.get(wider, 0) & mask:
                held = DeviceException(*wider, self.rules[wider])
                raise ConfigError(
                    f"linux.resources.devices: rule {_rule_text(rule)!r} cannot punch a hole in the "
                    f"wildcard rule {held.line()!r} (not supported by the devices cgroup)")
        left = self.rules.get(key, 0) & ~mask
        if left:
            self.rules[key] = left
        else:
            self.rules.pop(key, None)

    def result(self) -> DeviceFilter:
        """The state as a DeviceFilter, exceptions sorted by (major, minor, type)."""
        ordered = sorted(self.rules.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0]))
        return DeviceFilter(self.default_allow, tuple(DeviceException(*k, v) for k, v in ordered))


def effective_rules(rules: Sequence[DeviceRule]) -> DeviceFilter:
    """Replay ``rules`` in order through :class:`DeviceEmulator`."""
    emu = DeviceEmulator()
    for rule in rules:
        emu.apply(rule)
    return emu.result()


def _matches_device(exc: DeviceException, dev_type: int, major: int, minor: int) -> bool:
    return (DEVICE_TYPES[exc.type] == dev_type
            and exc.major in (-1, major)
            and exc.minor in (-1, minor))


def allows(filt: DeviceFilter, dev_type: int, major: int, minor: int, access: int) -> bool:
    """Reference verdict for one request (``access`` non-zero, as the kernel sends)."""
    for exc in filt.exceptions:
        if not _matches_device(exc, dev_type, major, minor):
            continue
        if filt.default_allow and access & exc.access:
            return False
        if not filt.default_allow and access & ~exc.access == 0:
            return True
    return filt.default_allow


# ----------------------------------------------------------------- generator


def _prologue() -> list[Insn]:
    return [
        Insn(LDX_W, _TYPE, _CTX, 0),
        Insn(AND32_K, _TYPE, imm=0xFFFF),
        Insn(LDX_W, _ACCESS, _CTX, 0),
        Insn(RSH32_K, _ACCESS, imm=16),
        Insn(LDX_W, _MAJOR, _CTX, 4),
        Insn(LDX_W, _MINOR, _CTX, 8),
    ]


def _s32(value: int) -> int:
    return value - (1 << 32) if value > _S32_MAX else value


def _block(exc: DeviceException, default_allow: bool) -> list[Insn]:
    """Instructions for one exception; ``off=-1`` marks "skip to the next block"."""
    skip = -1
    out = [Insn(JNE_K, _TYPE, off=skip, imm=DEVICE_TYPES[exc.type])]
    if default_allow:
        # Deny on any shared bit; with rwm every (non-zero) request shares one.
        if exc.access != ACC_ALL:
            out += [Insn(MOV32_X, _TMP, _ACCESS), Insn(AND32_K, _TMP, imm=exc.access),
                    Insn(JEQ_K, _TMP, off=skip, imm=0)]
    elif exc.access != ACC_ALL:
        # Allow only when the rule holds every requested bit.
        out += [Insn(MOV32_X, _TMP, _ACCESS), Insn(AND32_K, _TMP, imm=exc.access),
                Insn(JNE_X, _TMP, _ACCESS, off=skip)]
    for reg, number in ((_MAJOR, exc.major), (_MINOR, exc.minor)):
        if number < 0:
            continue
        if number <= _S32_MAX:
            out.append(Insn(JNE_K, reg, off=skip, imm=number))
        else:
            # A 64-bit compare sign-extends the immediate, so a number above
            # 2^31 goes through a zero-extending 32-bit move first.
            out += [Insn(MOV32_K, _TMP, imm=_s32(number)), Insn(JNE_X, reg, _TMP, off=skip)]
    out += [Insn(MOV32_K, R0, imm=0 if default_allow else 1), Insn(EXIT)]
    n = len(out)
    return [Insn(i.code, i.dst, i.src, n - pos - 1, i.imm) if i.off == skip else i
            for pos, i in enumerate(out)]


def generate(filt: DeviceFilter) -> list[Insn]:
    """The program for an emulated filter: one block per exception, then the default."""
    insns = _prologue()
    for exc in filt.exceptions:
        insns.extend(_block(exc, filt.default_allow))
    insns += [Insn(MOV32_K, R0, imm=1 if filt.default_allow else 0), Insn(EXIT)]
    return insns


def device_filter_program(rules: Sequence[DeviceRule]) -> list[Insn]:
    """Ordered device rules -> the BPF_CGROUP_DEVICE program enforcing them."""
    return generate(effective_rules(rules))


# --------------------------------------------------------------- interpreter


class BPFError(Exception):
    """The interpreter met an instruction the kernel verifier would refuse."""


_MAX_STEPS = 1 << 16


def run(insns: Sequence[Insn], dev_type: int, major: int, minor: int, access: int) -> int:
    """Execute ``insns`` on one request and return R0 (1 = allow, 0 = deny).

    Knows only the instructions :func:`generate` emits; reading an unset
    register, a backward or out-of-range jump, or running off the end
    raises BPFError, as the verifier would refuse such a program.
    """
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    regs: dict[int, int] = {R1: 0}
    pointers = {R1}

    def reg(r: int) -> int:
        if r not in regs or r in pointers:
            raise BPFError(f"R{r} is not a readable scalar")
        return regs[r]

    pc = 0
    for _ in range(_MAX_STEPS):
        if not 0 <= pc < len(insns):
            raise BPFError(f"pc {pc} outside the program")
        ins = insns[pc]
        code = ins.code
        if code == LDX_W:
            if ins.src not in pointers or ins.off not in (0, 4, 8):
                raise BPFError(f"insn {pc}: bad context load {ins}")
            regs[ins.dst] = struct.unpack_from("<I", ctx, ins.off)[0]
            pointers.discard(ins.dst)
        elif code & 0x07 == _ALU:
            src = ins.imm & U32_MAX if code & _X == 0 else reg(ins.src) & U32_MAX
            op = code & 0xF0
            if op == _MOV:
                value = src
            elif op == _AND:
                value = reg(ins.dst) & src
            elif op == _RSH:
                value = (reg(ins.dst) & U32_MAX) >> (src & 31)
            else:
                raise BPFError(f"insn {pc}: unsupported ALU op {code:#x}")
            regs[ins.dst] = value & U32_MAX
            pointers.discard(ins.dst)
        elif code == EXIT:
            return reg(R0)
        elif code & 0x07 == _JMP:
            op = code & 0xF0
            if op == _JA:
                taken = True
            else:
                rhs = ins.imm & _U64 if code & _X == 0 else reg(ins.src)
                if op == _JEQ:
                    taken = reg(ins.dst) == rhs
                elif op == _JNE:
                    taken = reg(ins.dst) != rhs
                else:
                    raise BPFError(f"insn {pc}: unsupported jump {code:#x}")
            if ins.off < 0:
                raise BPFError(f"insn {pc}: backward jump")
            pc += ins.off if taken else 0
        else:
            raise BPFError(f"insn {pc}: unsupported opcode {code:#x}")
        pc += 1
    raise BPFError("step limit reached")


def disassemble(insns: Sequence[Insn]) -> list[str]:
    """One readable line per instruction (for test failures and debugging)."""
    names = {LDX_W: "ldxw", AND32_K: "and32", RSH32_K: "rsh32", MOV32_K: "mov32", MOV32_X: "mov32",
             JA: "ja", JEQ_K: "jeq", JEQ_X: "jeq", JNE_K: "jne", JNE_X: "jne", EXIT: "exit"}
    lines = []
    for pc, i in enumerate(insns):
        name = names.get(i.code, f"op{i.code:#04x}")
        if i.code == LDX_W:
            text = f"{name} r{i.dst}, [r{i.src}{i.off:+d}]"
        elif i.code == EXIT:
            text = name
        elif i.code & 0x07 == _JMP:
            rhs = f"r{i.src}" if i.code & _X else str(i.imm)
            text = f"{name} r{i.dst}, {rhs}, +{i.off} -> {pc + i.off + 1}"
        else:
            rhs = f"r{i.src}" if i.code & _X else hex(i.imm & U32_MAX)
            text = f"{name} r{i.dst}, {rhs}"
        lines.append(f"{pc:4d}: {text}")
    return lines
