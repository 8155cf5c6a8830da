"""Install a cgroup v2 device filter (BPF_CGROUP_DEVICE program) on a cgroup.

The program comes from :mod:`pyrunc.plan.devices_bpf`; here it is loaded,
attached with BPF_F_ALLOW_MULTI, and any filter attached before (an earlier
apply, or someone else's) is replaced: atomically with BPF_F_REPLACE when
there was exactly one, else by detaching the old ones after the new one is
in place.  Every descriptor is closed before returning: an attached program
stays alive for as long as the cgroup does.
"""

from __future__ import annotations

import errno
import os
import resource
from typing import Any

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import base
from pyrunc.plan import devices_bpf as bpf_plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_REPLACE = 1 << 2
CGROUP2_SUPER_MAGIC = 0x63677270
# The kernel attaches at most 64 programs per cgroup and attach type.
_MAX_PROGS = 64
_LOG_SIZE = 1 << 16


def _error(op: str, path: str, rc: int, detail: str = "") -> CgroupError:
    err = base.cgroup_error(op, path, OSError(-rc, os.strerror(-rc)))
    if detail:
        err.args = (f"{err.args[0]}\n{detail}",)
    return err


def _lib() -> tuple[Any, Any]:
    # Imported on use: the hot path only pays for the shim when it is needed.
    from pyrunc._shim import ffi, lib

    return ffi, lib


def _open_cgroup_dir(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise base.cgroup_error("open", path, e) from None


def is_cgroup2(path: str) -> bool:
    """Whether ``path`` is a directory on a cgroup2 filesystem."""
    ffi, lib = _lib()
    fd = _open_cgroup_dir(path)
    try:
        ftype = ffi.new("long *")
        rc = lib.pyrunc_fstatfs_type(fd, ftype)
        if rc < 0:
            raise _error("fstatfs", path, rc)
        return bool(ftype[0] == CGROUP2_SUPER_MAGIC)
    finally:
        os.close(fd)


def in_user_namespace() -> bool:
    """True unless this process sees the initial user namespace's full uid map."""
    try:
        with open("/proc/self/uid_map") as f:
            fields = f.read().split()
    except OSError:
        return False
    return fields != ["0", "0", "4294967295"]


def load_program(insns: Sequence[bpf_plan.Insn], path: str) -> int:
    """BPF_PROG_LOAD the device filter; returns the program fd.

    A refused program is loaded again with a verifier log, which the error
    then carries.  On EPERM the memlock limit (what pre-5.11 kernels charge
    programs to) is lifted for the retry and restored afterwards, so nothing
    started later inherits it.
    """
    ffi, lib = _lib()
    code = bpf_plan.encode(insns)
    buf = ffi.from_buffer(code)
    rc = lib.pyrunc_bpf_prog_load_cgroup_device(buf, len(insns), ffi.NULL, 0)
    if rc == -errno.EPERM:
        old = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (OSError, ValueError):
            pass
        else:
            try:
                rc = lib.pyrunc_bpf_prog_load_cgroup_device(buf, len(insns), ffi.NULL, 0)
            finally:
                resource.setrlimit(resource.RLIMIT_MEMLOCK, old)
    if rc >= 0:
        return int(rc)
    log = ffi.new("char[]", _LOG_SIZE)
    again = lib.pyrunc_bpf_prog_load_cgroup_device(buf, len(insns), log, _LOG_SIZE)
    if again >= 0:
        os.close(again)
    detail = ffi.string(log).decode(errors="replace").strip()
    raise _error("bpf(BPF_PROG_LOAD) device filter for", path, rc, detail)


def attached_program_ids(cgroup_fd: int, path: str) -> list[int]:
    """Ids of the BPF_CGROUP_DEVICE programs attached directly to the cgroup."""
    ffi, lib = _lib()
    size = _MAX_PROGS
    for _ in range(4):
        ids = ffi.new("uint32_t[]", size)
        count = ffi.new("uint32_t *", size)
        rc = lib.pyrunc_bpf_prog_query(cgroup_fd, BPF_CGROUP_DEVICE, ffi.NULL, ids, count)
        if rc == -errno.ENOSPC:
            size = max(int(count[0]), size * 2)
            continue
        if rc < 0:
            raise _error("bpf(BPF_PROG_QUERY) device filters of", path, rc)
        return [int(ids[i]) for i in range(min(int(count[0]), size))]
    raise _error("bpf(BPF_PROG_QUERY) device filters of", path, -errno.ENOSPC)


def _open_programs(ids: Sequence[int], path: str) -> list[int]:
    _ffi, lib = _lib()
    fds = []
    try:
        for prog_id in ids:
            fd = lib.pyrunc_bpf_prog_get_fd_by_id(prog_id)
            if fd in (-errno.ENOENT, -errno.EPERM, -errno.EACCES):
                # Gone meanwhile, or hidden from us by an LSM: a program we
                # cannot open can only restrict further, so leave it.
                continue
            if fd < 0:
                raise _error(f"bpf(BPF_PROG_GET_FD_BY_ID {prog_id}) device filter of", path, fd)
            fds.append(int(fd))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def install(path: str, insns: Sequence[bpf_plan.Insn]) -> None:
    """Load ``insns`` and make it the only device filter of cgroup ``path``."""
    _ffi, lib = _lib()
    dfd = _open_cgroup_dir(path)
    try:
        old = _open_programs(attached_program_ids(dfd, path), path)
        try:
            prog = load_program(insns, path)
            try:
                _attach_replacing(lib, prog, dfd, old, path)
            finally:
                os.close(prog)
        finally:
            for fd in old:
                os.close(fd)
    finally:
        os.close(dfd)


def _attach_replacing(lib: Any, prog: int, dfd: int, old: Sequence[int], path: str) -> None:
    attach = lib.pyrunc_bpf_prog_attach
    detach = lib.pyrunc_bpf_prog_detach2
    if len(old) == 1:
        rc = attach(prog, dfd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI | BPF_F_REPLACE, old[0])
        if rc == 0:
            return
        if rc != -errno.EINVAL:
            raise _error("bpf(BPF_PROG_ATTACH BPF_F_REPLACE) device filter to", path, rc)
        # EINVAL: a kernel before 5.6 without BPF_F_REPLACE; attach, then detach.
    rc = attach(prog, dfd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, -1)
    if rc < 0:
        raise _error("bpf(BPF_PROG_ATTACH BPF_F_ALLOW_MULTI) device filter to", path, rc)
    for fd in old:
        rc = detach(fd, dfd, BPF_CGROUP_DEVICE)
        if rc < 0 and rc != -errno.ENOENT:
            raise _error("bpf(BPF_PROG_DETACH) old device filter from", path, rc)
