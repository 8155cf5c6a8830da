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
SUPPORTED_HOOKS: list[str] = []
# Recursive mount attributes and other special options, once implemented.
EXTRA_MOUNT_OPTIONS: list[str] = []


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
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": True},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
            "netDevices": {"enabled": True},
            "memoryPolicy": {"modes": sorted(MPOL_MODES), "flags": sorted(MPOL_FLAGS)},
        },
        "annotations": {
            "io.github.pyrunc.version": __version__,
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }
