"""The `features` document: what this build of pyrunc really supports.

Keep it truthful: containerd decides on rro mounts, user namespaces and
idmapped mounts from it, so list a feature only once it works and is tested.
"""

from __future__ import annotations

from typing import Any

from pyrunc import OCI_VERSION, __version__
from pyrunc.plan import mounts
from pyrunc.plan.flags import CAPABILITY_NAMES, NAMESPACE_FLAGS
from pyrunc.plan.procattrs import MPOL_FLAGS, MPOL_MODES

# Hooks run at the points the runtime-spec gives (see pyrunc/linux/hooks.py).
SUPPORTED_HOOKS: list[str] = ["prestart", "createRuntime", "createContainer", "startContainer",
                              "poststart", "poststop"]
# Recursive mount attributes (mount_setattr) and options handled outside mount(2).
EXTRA_MOUNT_OPTIONS: list[str] = [*sorted(mounts.RECURSIVE_OPTIONS), "tmpcopyup", "idmap", "ridmap"]


# seccomp(2) numbers where pyrunc has been tried; elsewhere no flag is claimed.
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
_KERNEL_FLAG_BITS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    # Only valid together with NEW_LISTENER (8), so it is probed with it.
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32 | 8,
}


def _kernel_accepts(bits: int) -> bool:
    """Whether seccomp(SET_MODE_FILTER, bits, NULL) gets past the flag check.

    The kernel checks the flags before it reads the program, so EFAULT (the
    NULL program) means the flags are known; EINVAL means they are not.
    Nothing is ever installed.
    """
    import ctypes
    import errno
    import os

    nr = _SYS_SECCOMP.get(os.uname().machine)
    if nr is None:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(nr), ctypes.c_long(1), ctypes.c_ulong(bits),
                    ctypes.c_void_p(None)) == 0:
        return True
    return ctypes.get_errno() == errno.EFAULT


def seccomp_features() -> dict[str, Any]:
    """What pyrunc-init's filter supports: every action, operator and flag of the
    spec, the architectures libseccomp 2.5 knows; supportedFlags asks the kernel."""
    from pyrunc.plan import seccomp

    return {
        "enabled": True,
        "actions": sorted(seccomp.ACTIONS),
        "operators": sorted(seccomp.OPERATORS),
        "archs": sorted(seccomp.ARCHITECTURES),
        "knownFlags": list(seccomp.FLAGS),
        "supportedFlags": [f for f in seccomp.FLAGS if _kernel_accepts(_KERNEL_FLAG_BITS[f])],
    }


def features() -> dict[str, Any]:
    """The runtime-spec features document for this pyrunc."""
    options = sorted({*mounts._FLAG_OPTIONS, *mounts.PROPAGATION_OPTIONS, *EXTRA_MOUNT_OPTIONS})
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(SUPPORTED_HOOKS),
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(NAMESPACE_FLAGS),
            "capabilities": list(CAPABILITY_NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": True,
                       "rdma": True},
            "seccomp": seccomp_features(),
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
            "memoryPolicy": {"modes": sorted(MPOL_MODES), "flags": sorted(MPOL_FLAGS)},
        },
        "annotations": {
            "io.github.pyrunc.version": __version__,
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }
