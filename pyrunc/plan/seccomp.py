"""linux.seccomp -> one OP_SECCOMP step (format: "Seccomp" in csrc/protocol.h).

Pure: names are checked and translated here, with one-line errors that name
the field; pyrunc-init only builds the filter with libseccomp and loads it.
What runc does is the reference where the spec leaves room:

- a syscall name libseccomp does not know is ignored (pyrunc-init skips it,
  since only the linked libseccomp can tell);
- a rule whose action equals the default action is redundant and skipped;
- SCMP_ACT_NOTIFY is refused as the default action and for ``write`` (the
  init could then never hand the notify fd over), and needs ``listenerPath``;
- ``errnoRet`` defaults to EPERM for SCMP_ACT_ERRNO and SCMP_ACT_TRACE.

Where the filter goes in the plan (:func:`with_seccomp`): as late as
possible, so that the profile governs the container's program and not
pyrunc-init's own set-up (an allow-list written before openat2, faccessat2 or
close_range existed must not break the start).  Everything the init needs to
open, check or verify -- ids, capabilities, cwd, the fd sweep, the program's
path -- is done first; after the load only these run:

- the startContainer hooks and the answer on exec.fifo (one write), as in
  runc, whose init runs its hooks under the filter too;
- without no_new_privs, and when the process keeps no CAP_SYS_ADMIN, one
  capset(2): loading a filter then needs CAP_SYS_ADMIN, so the final
  capability step keeps it and a capset drops it after the load;
- with a listener, the sendmsg of the notify fd and three closes;
- the execve(2) of the program, resolved beforehand (OP_CHECK_EXEC keeps it).

A syscall newer than every syscall the profile names returns ENOSYS instead
of the default action (runc's rule: not for a permissive default --
SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_TRACE -- nor when the default already
returns ENOSYS); pyrunc-init finds the numbers with libseccomp, for the
native architecture and every listed one (as runc does since 1.1.15/1.2).
"""

from __future__ import annotations

import errno
import struct

from pyrunc.errors import ConfigError
from pyrunc.plan import protocol as P

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence

FIELD = "linux.seccomp"

ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": P.SECCOMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": P.SECCOMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": P.SECCOMP_ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": P.SECCOMP_ACT_TRAP,
    "SCMP_ACT_ERRNO": P.SECCOMP_ACT_ERRNO,
    "SCMP_ACT_TRACE": P.SECCOMP_ACT_TRACE,
    "SCMP_ACT_LOG": P.SECCOMP_ACT_LOG,
    "SCMP_ACT_ALLOW": P.SECCOMP_ACT_ALLOW,
    "SCMP_ACT_NOTIFY": P.SECCOMP_ACT_NOTIFY,
}

OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": P.SECCOMP_CMP_NE,
    "SCMP_CMP_LT": P.SECCOMP_CMP_LT,
    "SCMP_CMP_LE": P.SECCOMP_CMP_LE,
    "SCMP_CMP_EQ": P.SECCOMP_CMP_EQ,
    "SCMP_CMP_GE": P.SECCOMP_CMP_GE,
    "SCMP_CMP_GT": P.SECCOMP_CMP_GT,
    "SCMP_CMP_MASKED_EQ": P.SECCOMP_CMP_MASKED_EQ,
}

# OCI name -> libseccomp name, for the architectures libseccomp 2.5 (the one
# pyrunc-init links) knows.  The spec also lists LOONGARCH64, M68K, SH and
# SHEB, which only later libseccomp releases know: refused, and not reported
# by `features`.
ARCHITECTURES: dict[str, str] = {
    "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips", "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel", "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc", "SCMP_ARCH_PPC64": "ppc64", "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390", "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc", "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64",
}

FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": P.SECCOMP_F_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": P.SECCOMP_F_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": P.SECCOMP_F_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": P.SECCOMP_F_WAIT_KILLABLE_RECV,
}

_WITH_VALUE = (P.SECCOMP_ACT_ERRNO, P.SECCOMP_ACT_TRACE)
_NAME_MAX = 255
_RULE = struct.Struct("<BBHI")
_ARG = struct.Struct("<IIQQ")
_U64 = (1 << 64) - 1


def _action(name: object, errno_ret: object, where: str, errno_field: str) -> tuple[int, int]:
    """(action code, value) of an action name and its optional errnoRet."""
    code = ACTIONS.get(name) if isinstance(name, str) else None
    if code is None:
        raise ConfigError(f"{where}: unknown action {_quote(name)}")
    if errno_ret is None:
        return code, errno.EPERM if code in _WITH_VALUE else 0
    if code not in _WITH_VALUE:
        raise ConfigError(f"{errno_field}: {name} takes no errno (only SCMP_ACT_ERRNO and "
                          "SCMP_ACT_TRACE do)")
    if not isinstance(errno_ret, int) or isinstance(errno_ret, bool) or \
            not 0 <= errno_ret <= 0xFFFF:
        raise ConfigError(f"{errno_field}: {errno_ret!r} is not in 0..65535")
    return code, errno_ret


def _quote(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _uint64(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _U64:
        raise ConfigError(f"{where}: {value!r} is not a 64-bit unsigned integer")
    return value


def _args(args: Sequence[Mapping[str, Any]], where: str) -> bytes:
    if len(args) > P.SECCOMP_MAX_ARGS:
        raise ConfigError(f"{where}: {len(args)} argument rules; a syscall has at most 6 arguments")
    out = b""
    for k, arg in enumerate(args):
        here = f"{where}[{k}]"
        index = arg.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or \
                not 0 <= index < P.SECCOMP_MAX_ARGS:
            raise ConfigError(f"{here}.index: {index!r} is not a syscall argument index (0..5)")
        op_name = arg.get("op")
        op = OPERATORS.get(op_name) if isinstance(op_name, str) else None
        if op is None:
            raise ConfigError(f"{here}.op: unknown operator {_quote(op_name)}")
        value = _uint64(arg.get("value", 0), f"{here}.value")
        value_two = _uint64(arg.get("valueTwo", 0), f"{here}.valueTwo")
        out += _ARG.pack(index, op, value, value_two)
    return out


def _name(name: object, where: str) -> bytes | None:
    """The name as bytes; None for names no libseccomp can know (ignored, as runc)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: empty string is not a valid syscall")
    if "\0" in name:
        raise ConfigError(f"{where}: syscall name contains a NUL byte")
    data = name.encode()
    return data if len(data) <= _NAME_MAX else None


def _rules(syscalls: Sequence[Mapping[str, Any]]) -> tuple[bytes, bool, int]:
    """(rule table, any SCMP_ACT_NOTIFY, number of records)."""
    table = b""
    notify = False
    count = 0
    for i, rule in enumerate(syscalls):
        where = f"{FIELD}.syscalls[{i}]"
        action, value = _action(rule.get("action"), rule.get("errnoRet"), f"{where}.action",
                                f"{where}.errnoRet")
        names = rule.get("names") or ()
        args = _args(list(rule.get("args") or ()), f"{where}.args")
        nargs = len(args) // _ARG.size
        for j, name in enumerate(names):
            data = _name(name, f"{where}.names[{j}]")
            if action == P.SECCOMP_ACT_NOTIFY and name == "write":
                raise ConfigError(f"{where}.names[{j}]: SCMP_ACT_NOTIFY cannot be used for the "
                                  "write syscall")
            if data is None:
                continue
            table += _RULE.pack(action, nargs, len(data), value) + data + args
            count += 1
        notify = notify or action == P.SECCOMP_ACT_NOTIFY
    return table, notify, count


def uses_listener(seccomp: Mapping[str, Any] | None) -> bool:
    """Whether the profile needs the notify listener (validates the whole profile)."""
    if not seccomp:
        return False
    return _check(seccomp)[1]


def _check(seccomp: Mapping[str, Any]) -> tuple[tuple[int, ...], bool, bytes, bytes, int]:
    """Validate and translate: (ints, notify, architectures, rule table, records)."""
    default, default_value = _action(seccomp.get("defaultAction"), seccomp.get("defaultErrnoRet"),
                                     f"{FIELD}.defaultAction", f"{FIELD}.defaultErrnoRet")
    if default == P.SECCOMP_ACT_NOTIFY:
        raise ConfigError(f"{FIELD}.defaultAction: SCMP_ACT_NOTIFY cannot be used as default "
                          "action")
    archs: list[str] = []
    for i, arch in enumerate(seccomp.get("architectures") or ()):
        name = ARCHITECTURES.get(arch) if isinstance(arch, str) else None
        if name is None:
            raise ConfigError(f"{FIELD}.architectures[{i}]: architecture {_quote(arch)} is not "
                              "supported")
        if name not in archs:
            archs.append(name)
    bits = 0
    for i, flag in enumerate(seccomp.get("flags") or ()):
        bit = FLAGS.get(flag) if isinstance(flag, str) else None
        if bit is None:
            raise ConfigError(f"{FIELD}.flags[{i}]: seccomp flag {_quote(flag)} is not known "
                              "to pyrunc")
        bits |= bit
    table, notify, count = _rules(list(seccomp.get("syscalls") or ()))
    if notify and not seccomp.get("listenerPath"):
        raise ConfigError(f"{FIELD}.listenerPath: seccomp listenerPath is not set "
                          "(SCMP_ACT_NOTIFY is used)")
    return (default, default_value, bits), notify, ",".join(archs).encode(), table, count


_PERMISSIVE = (P.SECCOMP_ACT_ALLOW, P.SECCOMP_ACT_LOG, P.SECCOMP_ACT_TRACE)
CAP_SYS_ADMIN = 21


def wants_enosys_stub(default: int, value: int) -> bool:
    """Whether syscalls newer than the profile get ENOSYS (runc's rule)."""
    if default in _PERMISSIVE:
        return False
    return not (default == P.SECCOMP_ACT_ERRNO and value == errno.ENOSYS)


def seccomp_step(seccomp: Mapping[str, Any], listener_fds: tuple[int, int] = (-1, -1)) -> P.Step:
    """The OP_SECCOMP step; listener_fds = (connected listener socket, state file)."""
    (default, value, bits), notify, archs, table, nrules = _check(seccomp)
    if wants_enosys_stub(default, value):
        bits |= P.SECCOMP_F_ENOSYS
    sock, state = listener_fds if notify else (-1, -1)
    if notify and (sock < 0 or state < 0):
        raise ValueError("a SCMP_ACT_NOTIFY profile needs the listener socket and state fds")
    return P.step(P.OP_SECCOMP, default, value, bits, sock, state, strs=(archs, table),
                  what=f"load the seccomp filter ({nrules} rules)")


def with_seccomp(steps: Sequence[P.Step], seccomp: Mapping[str, Any] | None,
                 no_new_privs: bool, listener_fds: tuple[int, int] = (-1, -1),
                 sync: bool = False) -> list[P.Step]:
    """STEPS (a whole create or exec plan) with the filter put in its place.

    The load goes right after the fd sweep, behind a second OP_CHECK_EXEC
    that keeps the resolved program for OP_EXEC (see the module docstring).

    sync: with a listener, put OP_SYNC(SYNC_SECCOMP) right before OP_READY,
    where the parent knows the process's pid and writes the state the init
    sends with the notify fd.  `exec` needs it; `create` does not, since its
    filter only loads after `start` and the parent writes the state first.
    """
    out = list(steps)
    if not seccomp:
        return out
    load = seccomp_step(seccomp, listener_fds)
    ops = [s.op for s in out]
    at = len(ops) - 1 - ops[::-1].index(P.OP_CLOSE_FDS) + 1
    exec_step = out[len(ops) - 1 - ops[::-1].index(P.OP_EXEC)]
    argc, envc = exec_step.ints[0], exec_step.ints[1]
    program = exec_step.strs[0].decode()
    path = _env_path(exec_step.strs[argc:argc + envc])
    late = [P.step(P.OP_CHECK_EXEC, P.CHECK_EXEC_F_KEEP, argc + envc,
                   strs=(program, path), what=f'exec: "{program}"'), load]
    caps_at = len(ops) - 1 - ops[::-1].index(P.OP_CAPS)
    caps = out[caps_at]
    admin = 1 << CAP_SYS_ADMIN
    if not no_new_privs and not caps.ints[1] & admin:
        # Loading needs CAP_SYS_ADMIN without no_new_privs: keep it through
        # the load, then one capset leaves the configured sets.
        out[caps_at] = P.step(P.OP_CAPS, caps.ints[0], caps.ints[1] | admin,
                              caps.ints[2] | admin, *caps.ints[3:6], what=caps.what)
        late.append(P.step(P.OP_CAPS, 0, caps.ints[1], caps.ints[2], caps.ints[3], 0,
                           P.CAPS_F_NO_BOUNDING | P.CAPS_F_CAPSET_ONLY,
                           what="drop CAP_SYS_ADMIN kept for the seccomp filter"))
    out[at:at] = late
    if sync and load.ints[3] != _U64:
        ready = [s.op for s in out].index(P.OP_READY)
        out.insert(ready, P.step(P.OP_SYNC, P.SYNC_SECCOMP, 0,
                                 what="hand the seccomp listener its state"))
    return out


def _env_path(env: Sequence[bytes]) -> str:
    for item in env:
        if item.startswith(b"PATH="):
            return item[5:].decode()
    return ""


def listener_state(seccomp: Mapping[str, Any], *, container_id: str, status: str, init_pid: int,
                   process_pid: int, bundle: str, annotations: Mapping[str, str],
                   oci_version: str) -> bytes:
    """The container process state sent with the notify fd (runc's shape).

    A `specs.ContainerProcessState`: the process's pid, the name of the fd
    that travels with it, the profile's listenerMetadata and the container
    state (status "creating" during create, the container's own during exec).
    """
    from pyrunc.jsonio import dumps_compact

    state: dict[str, Any] = {"ociVersion": oci_version, "id": container_id, "status": status,
                             "pid": init_pid, "bundle": bundle}
    if annotations:
        state["annotations"] = dict(annotations)
    doc: dict[str, Any] = {"ociVersion": oci_version, "fds": ["seccompFd"], "pid": process_pid}
    if seccomp.get("listenerMetadata"):
        doc["metadata"] = seccomp["listenerMetadata"]
    doc["state"] = state
    return dumps_compact(doc).encode()
