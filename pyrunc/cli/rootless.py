"""Global rootless decisions of the CLI: the default --root and what --rootless means.

Both follow runc: an unprivileged caller keeps its state in
``$XDG_RUNTIME_DIR/pyrunc`` (runc uses ``$XDG_RUNTIME_DIR/runc``), and
``--rootless auto`` means "rootless when not root".
"""

from __future__ import annotations

import os

from pyrunc.errors import PyruncError, UsageError
from pyrunc.linux.userns import in_user_namespace as running_in_userns

SYSTEM_ROOT = "/run/pyrunc"


def honor_xdg_runtime_dir() -> bool:
    """runc's rule: $XDG_RUNTIME_DIR is used, unless by the real root (or root named
    "root" inside a user namespace), who keeps the system directory."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        return False
    if os.geteuid() != 0:
        return True
    if not running_in_userns():
        return False
    return os.environ.get("USER") != "root"


def default_root() -> str:
    """The --root used when none is given; the XDG one is made (0700, sticky) as runc does.

    Without $XDG_RUNTIME_DIR an unprivileged caller gets the system
    directory too, which it usually cannot create: runc fails the same way.
    """
    if not honor_xdg_runtime_dir():
        return SYSTEM_ROOT
    root = os.path.join(os.environ["XDG_RUNTIME_DIR"], "pyrunc")
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise PyruncError(f"the path in $XDG_RUNTIME_DIR must be writable by the user: "
                          f"mkdir {root}: {e.strerror}") from None
    # Opened without following a symlink and checked to be our own directory:
    # whatever another user may have put there is refused, not used.
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise PyruncError(f"open {root}: {e.strerror}") from None
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            raise PyruncError(f"{root} is not owned by uid {os.geteuid()}")
        # XDG's rule: the sticky bit keeps the directory from being pruned.
        os.fchmod(fd, 0o700 | 0o1000)
    except OSError as e:
        raise PyruncError(f"you should check permission of the path in $XDG_RUNTIME_DIR: "
                          f"chmod {root}: {e.strerror}") from None
    finally:
        os.close(fd)
    return root


def rootless_mode(value: str) -> bool:
    """What --rootless asks for: "true"/"false" as given; "auto" means rootless
    cgroups when not root, and for root inside a user namespace (e.g. under
    rootless podman), where the cgroupfs may not be ours either (runc's rule
    for its cgroupfs driver)."""
    # Go's strconv.ParseBool spellings, which runc accepts.
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    if value != "auto":
        raise UsageError(f'invalid --rootless value: parsing "{value}": invalid syntax')
    return os.geteuid() != 0 or running_in_userns()
