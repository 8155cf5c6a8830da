"""The example config.json that ``pyrunc spec`` writes (runc's ``spec`` output, for 1.3.0)."""

from __future__ import annotations

import os
from typing import Any

OCI_VERSION = "1.3.0"

# Only bounding/effective/permitted: giving the process inheritable (and so
# ambient) capabilities let unprivileged execs of file-capable binaries gain
# them (CVE-2022-29162).
DEFAULT_CAPABILITIES = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")

DEFAULT_MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/tpm",
)

DEFAULT_READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

_NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"]


def _mount(destination: str, fstype: str, source: str, *options: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"destination": destination, "type": fstype, "source": source}
    if options:
        entry["options"] = list(options)
    return entry


def _default_mounts(rootless: bool) -> list[dict[str, Any]]:
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        # A rootless container maps only the caller's gid, so gid 5 (tty) does not exist.
        devpts.append("gid=5")
    if rootless:
        # Without a network namespace of its own the container may not mount sysfs.
        sys_mount = _mount("/sys", "none", "/sys", "rbind", *_NOSUID_NOEXEC_NODEV, "ro")
    else:
        sys_mount = _mount("/sys", "sysfs", "sysfs", *_NOSUID_NOEXEC_NODEV, "ro")
    return [
        _mount("/proc", "proc", "proc"),
        _mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        _mount("/dev/pts", "devpts", "devpts", *devpts),
        _mount("/dev/shm", "tmpfs", "shm", *_NOSUID_NOEXEC_NODEV, "mode=1777", "size=65536k"),
        _mount("/dev/mqueue", "mqueue", "mqueue", *_NOSUID_NOEXEC_NODEV),
        sys_mount,
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", *_NOSUID_NOEXEC_NODEV, "relatime", "ro"),
    ]


def default_spec(
    rootless: bool = False,
    *,
    cgroupns: bool = True,
    uid: int | None = None,
    gid: int | None = None,
) -> dict[str, Any]:
    """Return a fresh example config, shaped and valued like runc's ``spec``.

    ``cgroupns`` adds a cgroup namespace (runc adds one on cgroup v2 hosts; the
    caller, which may look at the host, decides).  The rootless variant runs in
    a new user namespace mapping container root to ``uid``/``gid`` (default: the
    caller's effective ids), keeps the host network and bind-mounts /sys.
    """
    caps = list(DEFAULT_CAPABILITIES)
    namespaces = ["pid", "network", "ipc", "uts", "mount"]
    if cgroupns:
        namespaces.append("cgroup")
    linux: dict[str, Any] = {
        "maskedPaths": list(DEFAULT_MASKED_PATHS),
        "readonlyPaths": list(DEFAULT_READONLY_PATHS),
    }
    if rootless:
        namespaces = [ns for ns in namespaces if ns != "network"] + ["user"]
        host_uid = os.geteuid() if uid is None else uid
        host_gid = os.getegid() if gid is None else gid
        linux["uidMappings"] = [{"containerID": 0, "hostID": host_uid, "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": host_gid, "size": 1}]
    else:
        # An unprivileged user cannot set up a device cgroup, so only the
        # privileged variant denies all devices by default.
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    linux["namespaces"] = [{"type": ns} for ns in namespaces]

    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": list(caps),
                "effective": list(caps),
                "permitted": list(caps),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": _default_mounts(rootless),
        "linux": linux,
    }
