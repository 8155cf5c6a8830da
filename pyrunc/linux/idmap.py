"""Writing a child's uid/gid maps (and setgroups) through a verified procfs fd."""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence


def format_map(mappings: Sequence[Mapping[str, Any]]) -> bytes:
    """The uid_map/gid_map text for OCI idmap entries."""
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings).encode()


PROC_SUPER_MAGIC = 0x9FA0
PROC_ROOT = "/proc"  # a test points this at a fake tree to prove the check


def _on_procfs(fd: int) -> bool:
    from pyrunc._shim import ffi, lib

    ftype = ffi.new("long *")
    rc = lib.pyrunc_fstatfs_type(fd, ftype)
    if rc < 0:
        raise OSError(-rc, os.strerror(-rc))
    return bool(ftype[0] == PROC_SUPER_MAGIC)


def _write_proc(pid: int, name: str, data: bytes) -> None:
    # The target process is ours and has not entered any container mount
    # namespace yet, so /proc here is the host's.  Still, the write goes
    # only through an fd proven to be on procfs (CVE-2019-16884 and
    # CVE-2025-52881 class): whatever is mounted over /proc cannot take it;
    # O_NOFOLLOW refuses a symlink in the last component.
    path = f"{PROC_ROOT}/{pid}/{name}"
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        try:
            on_procfs = _on_procfs(fd)
            if on_procfs:
                os.write(fd, data)
        except OSError as e:
            raise OSError(e.errno, f"write {path}: {e.strerror}") from None
        if not on_procfs:
            raise OSError(errno.EXDEV, f"write {path}: not on procfs")
    finally:
        os.close(fd)


def write_id_maps(pid: int, uid_mappings: Sequence[Mapping[str, Any]],
                  gid_mappings: Sequence[Mapping[str, Any]]) -> None:
    """Write /proc/<pid>/{uid_map,gid_map} for a process in a new user namespace."""
    if uid_mappings:
        _write_proc(pid, "uid_map", format_map(uid_mappings))
    if gid_mappings:
        _write_proc(pid, "gid_map", format_map(gid_mappings))


def userns_fd(uid_mappings: Sequence[Mapping[str, Any]],
              gid_mappings: Sequence[Mapping[str, Any]]) -> int:
    """An fd of a new user namespace with these mappings (for idmapped mounts).

    pyrunc-init, run with a plan of just "new user namespace", waits while
    its maps are written and the namespace is opened.  What it does after
    that (become uid 0, which these maps may not have, and exit) does not
    matter: only the namespace is wanted.
    """
    from pyrunc.linux.initproc import InitError, run_init
    from pyrunc.plan import protocol as P

    opened: list[int] = []

    def on_idmap(pid: int) -> None:
        write_id_maps(pid, uid_mappings, gid_mappings)
        opened.append(os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC))

    try:
        launched = run_init([P.step(P.OP_UNSHARE_USER, what="create an idmap user namespace")],
                            on_idmap=on_idmap)
        launched.sock.close()
        os.waitpid(launched.pid, 0)
    except InitError:
        if not opened:
            raise
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    return opened[0]
