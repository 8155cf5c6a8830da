"""The plan wire format shared with pyrunc-init (mirror of csrc/protocol.h).

A plan is an ordered list of :class:`Step`; :func:`encode_plan` turns it into
the single binary message pyrunc-init executes.  Each step also carries a
human description used to word errors that come back from the child.
"""

from __future__ import annotations

import struct

from pyrunc.plan.record import FrozenRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

PLAN_MAGIC = 0x49525950
PLAN_VERSION = 1
PLAN_MAX_LEN = 4 << 20
STEP_NINTS = 6
SYNC_TEXT_MAX = 512

# Ops (keep in step with enum plan_op).
OP_SETNS = 1
OP_UNSHARE_USER = 2
OP_UNSHARE = 3
OP_TIMENS_OFFSETS = 4
OP_FORK = 5
OP_SET_ROOT = 10
OP_MOUNT = 11
OP_MKDIR = 12
OP_MKNOD = 13
OP_SYMLINK = 14
OP_PIVOT_ROOT = 15
OP_CHROOT = 16
OP_MASK_PATH = 17
OP_READONLY_PATH = 18
OP_WRITE_PROC = 19
OP_SETHOSTNAME = 20
OP_SETDOMAINNAME = 21
OP_SYNC = 22
OP_READY = 23
OP_WAIT_START = 24
OP_RLIMIT = 25
OP_UMASK = 26
OP_SETGROUPS = 27
OP_SETID = 28
OP_CAPS = 29
OP_NO_NEW_PRIVS = 30
OP_CHDIR = 31
OP_CLOSE_FDS = 32
OP_CHECK_EXEC = 33
OP_EXEC = 34
OP_OOM_SCORE_ADJ = 35
OP_SETSID = 36
OP_SECCOMP = 37
OP_CONSOLE = 38
OP_HOOK = 39
OP_LOOPBACK_UP = 40
OP_MOUNT_SETATTR = 41
OP_MOUNT_IDMAP = 42
OP_PERSONALITY = 43
OP_SCHEDULER = 44
OP_IOPRIO = 45
OP_CPU_AFFINITY = 46
OP_MEMPOLICY = 47
OP_NETDEV = 48
OP_APPARMOR = 49
OP_SELINUX_LABEL = 50
OP_KEYRING = 51
OP_BIND_SOURCES_FORK = 52
OP_BIND_SOURCES_OPEN = 53

CONSOLE_F_MOUNT = 0x01

WAIT_F_HOLD = 0x01
WAIT_F_RELEASE = 0x02

# Hooks (see "Hooks" in protocol.h).
SYNC_HOOKS = 1
SYNC_NETDEV = 0x4E4554
HOOK_STATE_SLOTS = 2
HOOK_STATE_MAX = 1 << 20
HOOK_CREATE_CONTAINER = 1
HOOK_START_CONTAINER = 2

# Seccomp (see "Seccomp" in protocol.h).
SECCOMP_ACT_KILL_THREAD = 1
SECCOMP_ACT_KILL_PROCESS = 2
SECCOMP_ACT_TRAP = 3
SECCOMP_ACT_ERRNO = 4
SECCOMP_ACT_TRACE = 5
SECCOMP_ACT_LOG = 6
SECCOMP_ACT_ALLOW = 7
SECCOMP_ACT_NOTIFY = 8
SECCOMP_CMP_NE = 1
SECCOMP_CMP_LT = 2
SECCOMP_CMP_LE = 3
SECCOMP_CMP_EQ = 4
SECCOMP_CMP_GE = 5
SECCOMP_CMP_GT = 6
SECCOMP_CMP_MASKED_EQ = 7
SECCOMP_F_LOG = 0x01
SECCOMP_F_SPEC_ALLOW = 0x02
SECCOMP_F_TSYNC = 0x04
SECCOMP_F_WAIT_KILLABLE_RECV = 0x08
SECCOMP_F_ENOSYS = 0x10
SECCOMP_RULE_LEN = 8
SECCOMP_ARG_LEN = 24
SECCOMP_MAX_ARGS = 6
SYNC_SECCOMP = 2

CAPS_F_BOUNDING_ONLY = 0x01
CAPS_F_NO_BOUNDING = 0x02
CAPS_F_CAPSET_ONLY = 0x04

CHECK_EXEC_F_KEEP = 0x01

SETID_F_STDIO = 0x01
SETID_F_STDIO_TTY = 0x02

CHDIR_F_TRY = 0x01
CHDIR_F_RETRY = 0x02

MOUNT_F_TARGET_HOST = 0x01
MOUNT_F_SOURCE_ROOT = 0x02
MOUNT_F_BIND_SOURCE = 0x04
MOUNT_F_MKDIR = 0x08
MOUNT_F_MKFILE = 0x10
MOUNT_F_NOSYMLINK_DST = 0x20
MOUNT_F_NO_SOURCE = 0x40
MOUNT_F_TMPCOPYUP = 0x80
MOUNT_F_IDMAP_RECURSIVE = 0x100
MOUNT_F_DETACHED = 0x200
MOUNT_F_PROC_OK = 0x400
MOUNT_F_DIR_MODE = 0x800
MOUNT_F_KIND_OF_SOURCE = 0x1000
MOUNT_F_KEEP_LOCKED = 0x2000
MOUNT_F_SOURCE_FD = 0x4000
MOUNT_F_OR_ELSE = 0x8000
MOUNT_F_LABEL = 0x10000
MOUNT_IDMAP_SLOTS = 64
MOUNT_SOURCE_SLOTS = 64

MSG_ACK = 1
MSG_ABORT = 2
MSG_IDMAP_REQ = 3
MSG_CHILD_PID = 4
MSG_SYNC = 5
MSG_READY = 6
MSG_ERROR = 7
MSG_HOOK_STATE = 8

_HEADER = struct.Struct("<IHHII")
_STEP = struct.Struct("<HHI" + "Q" * STEP_NINTS)
_STR_LEN = struct.Struct("<I")
SYNC_MSG = struct.Struct(f"<Iiii{SYNC_TEXT_MAX}s")

_U64 = (1 << 64) - 1


class Step(FrozenRecord):
    """One instruction for pyrunc-init plus the words used when it fails.

    ``extra`` (planner notes) takes no part in equality or hashing.
    """

    __slots__ = ("op", "ints", "strs", "what", "extra")

    def __init__(self, op: int, ints: tuple[int, ...] = (), strs: tuple[bytes, ...] = (),
                 what: str = "", extra: dict[str, object] | None = None) -> None:
        self.op = op
        self.ints = ints
        self.strs = strs
        self.what = what
        self.extra: dict[str, object] = {} if extra is None else extra

    def _key(self) -> tuple[object, ...]:
        return (self.op, self.ints, self.strs, self.what)

    def replace(self, *, ints: tuple[int, ...] | None = None, strs: tuple[bytes, ...] | None = None,
                what: str | None = None) -> Step:
        """A copy with some fields changed (``extra`` is shared, as dataclasses.replace did)."""
        return Step(self.op, self.ints if ints is None else ints, self.strs if strs is None else strs,
                    self.what if what is None else what, self.extra)


def _b(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def step(op: int, *ints: int, strs: Sequence[str | bytes] = (), what: str = "") -> Step:
    """Build a :class:`Step`; negative ints are stored as two's complement."""
    if len(ints) > STEP_NINTS:
        raise ValueError(f"op {op}: too many ints")
    return Step(op, tuple(i & _U64 for i in ints), tuple(_b(s) for s in strs), what)


def encode_step(s: Step) -> bytes:
    """Encode one step with its strings."""
    ints = list(s.ints) + [0] * (STEP_NINTS - len(s.ints))
    body = b"".join(_STR_LEN.pack(len(x)) + x for x in s.strs)
    return _STEP.pack(s.op, len(s.strs), _STEP.size + len(body), *ints) + body


def encode_plan(steps: Sequence[Step]) -> bytes:
    """Encode a whole plan message; raises ValueError when it is too large."""
    body = b"".join(encode_step(s) for s in steps)
    total = _HEADER.size + len(body)
    if total > PLAN_MAX_LEN:
        raise ValueError(f"plan too large ({total} bytes)")
    return _HEADER.pack(PLAN_MAGIC, PLAN_VERSION, 0, total, len(steps)) + body


def encode_sync(msg_type: int, value: int = 0) -> bytes:
    """Encode a parent -> init status message."""
    return SYNC_MSG.pack(msg_type, -1, 0, value, b"")


def encode_hook_state(state_json: bytes) -> bytes:
    """Encode a parent -> init MSG_HOOK_STATE message carrying one state JSON."""
    if len(state_json) > HOOK_STATE_MAX:
        raise ValueError(f"container state too large for hooks ({len(state_json)} bytes)")
    return struct.pack("<I", MSG_HOOK_STATE) + state_json


def decode_sync(data: bytes) -> tuple[int, int, int, int, str]:
    """Decode an init -> parent status message: (type, step, errno, value, text)."""
    if len(data) != SYNC_MSG.size:
        raise ValueError(f"bad sync message length {len(data)}")
    kind, step_index, err, value, text = SYNC_MSG.unpack(data)
    return kind, step_index, err, value, text.split(b"\0", 1)[0].decode(errors="replace")
