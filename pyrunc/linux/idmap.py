"""Writing a child's uid/gid maps (and setgroups) through a verified procfs fd."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence


def format_map(mappings: Sequence[Mapping[str, Any]]) -> bytes:
    """The uid_map/gid_map text for OCI idmap entries."""
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings).encode()


def _write_proc(pid: int, name: str, data: bytes) -> None:
    # The target process is ours and has not entered any container mount
    # namespace yet, and /proc here is the host's, so the path cannot be
    # redirected by the container (CVE-2019-16884 class); O_NOFOLLOW refuses
    # a symlink in the last component anyway.
    path = f"/proc/{pid}/{name}"
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.write(fd, data)
    except OSError as e:
        raise OSError(e.errno, f"write {path}: {e.strerror}") from None
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
