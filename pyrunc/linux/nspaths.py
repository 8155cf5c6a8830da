"""Check ``linux.namespaces[i].path`` on the host before anything is created.

A path must name a namespace file (nsfs: ``/proc/<pid>/ns/<type>`` or a
bind mount of one) of the entry's own type.  This gives one-line errors
naming the field for the common mistakes; pyrunc-init checks the file again
when it joins it (a path swapped in between is refused there, never joined).
"""

from __future__ import annotations

import os
import stat

from pyrunc.errors import ConfigError
from pyrunc.plan.flags import NAMESPACE_FLAGS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

NSFS_MAGIC = 0x6E736673
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)

_TYPE_NAMES = {flag: name for name, flag in NAMESPACE_FLAGS.items()}


def namespace_type(path: str) -> int:
    """The CLONE_NEW* type of namespace file ``path`` (symlinks followed).

    Raises OSError (errno and path kept) when it cannot be opened, and
    ValueError when it is not a namespace file.  Opened with O_PATH first,
    so a FIFO, a device or a socket is never really opened.
    """
    import fcntl

    pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        st = os.fstat(pfd)
        if not stat.S_ISREG(st.st_mode) or _fs_type(pfd) != NSFS_MAGIC:
            raise ValueError("not a namespace file")
        fd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(pfd)
    try:
        if _fs_type(fd) != NSFS_MAGIC:
            raise ValueError("not a namespace file")
        return fcntl.ioctl(fd, NS_GET_NSTYPE)
    finally:
        os.close(fd)


def _fs_type(fd: int) -> int:
    from pyrunc._shim import ffi, lib

    out = ffi.new("long *")
    err = lib.pyrunc_fstatfs_type(fd, out)
    if err < 0:
        raise OSError(-err, os.strerror(-err))
    return int(out[0])


def check_namespace_paths(linux: Mapping[str, Any]) -> None:
    """Refuse a namespace path that is missing or not a namespace of its type."""
    for i, ns in enumerate(linux.get("namespaces") or ()):
        path = ns.get("path")
        if not path:
            continue
        field = f"linux.namespaces[{i}].path"
        kind = ns["type"]
        try:
            got = namespace_type(path)
        except ValueError as e:
            raise ConfigError(f'{field}: "{path}" is {e}') from None
        except OSError as e:
            raise ConfigError(f'{field}: "{path}": {os.strerror(e.errno or 0)}') from None
        if got != NAMESPACE_FLAGS[kind]:
            other = _TYPE_NAMES.get(got, f"{got:#x}")
            raise ConfigError(f'{field}: "{path}" is a {other} namespace, not a {kind} namespace')
