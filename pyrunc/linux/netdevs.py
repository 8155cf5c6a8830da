"""linux.netDevices from the host side, and host facts about LSMs and RDT.

The move uses one RTM_NEWLINK per device, sent from the runtime's own
network namespace with IFLA_NET_NS_FD (an fd of the init's
/proc/<pid>/ns/net) and IFLA_IFNAME (the container-side name): the kernel
moves the device and renames it inside the target namespace in the same
request.  No pyrunc process enters the container's namespace for it
(pyroute2's NetNS would fork a Python helper that calls setns, so it is not
used); re-adding the addresses and bringing the device up happen in
pyrunc-init (OP_NETDEV).  Devices are not moved back on delete: the
runtime-spec forbids it, and the kernel returns physical devices to the
initial namespace when the container's namespace goes away.

pyroute2 is imported only when a config has netDevices.
"""

from __future__ import annotations

import os

# inet_pton without the socket module's enums (imported on every create).
from _socket import inet_pton

from pyrunc.errors import PyruncError
from pyrunc.plan.procattrs import NETDEV_SYNC, NetAddress, check_security_fields, parse_apparmor_profiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping, Sequence

    SyncCallback = Callable[[int, int], Sequence[bytes] | None]

_IFA_F_PERMANENT = 0x80
_RT_SCOPE_UNIVERSE = 0


def apparmor_enabled() -> bool:
    """AppArmor is on when securityfs has it and the module says Y (runc's test)."""
    if not os.path.exists("/sys/kernel/security/apparmor"):
        return False
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read(1) == "Y"
    except OSError:
        return False


def apparmor_profiles() -> frozenset[str] | None:
    """Names of the loaded AppArmor profiles, or None when securityfs cannot say."""
    try:
        with open("/sys/kernel/security/apparmor/profiles") as f:
            text = f.read()
    except OSError:
        return None
    return parse_apparmor_profiles(text)


def selinux_enabled() -> bool:
    """SELinux is on when selinuxfs is mounted (the usual test)."""
    return os.path.exists("/sys/fs/selinux/enforce")


def resctrl_mounted() -> bool:
    """Whether a resctrl filesystem is mounted in this mount namespace."""
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split(" - ", 1)[-1].startswith("resctrl ") for line in f)
    except OSError:
        return False


def check_host_support(config: Mapping[str, Any], process: Mapping[str, Any]) -> None:
    """Refuse LSM and RDT fields this host (or pyrunc) cannot honour, as runc words it."""
    aa = apparmor_enabled()
    profiles = apparmor_profiles() if aa and process.get("apparmorProfile") else None
    check_security_fields(config, process, apparmor_enabled=aa, apparmor_profiles=profiles,
                          selinux_enabled=selinux_enabled(), resctrl_mounted=resctrl_mounted())


def _ipr() -> Any:
    try:
        from pyroute2 import IPRoute
    except ImportError:
        raise PyruncError("linux.netDevices needs the pyroute2 package") from None
    return IPRoute()


def collect_addresses(linux: Mapping[str, Any]) -> dict[str, list[NetAddress]]:
    """Permanent global addresses of each host device named in linux.netDevices."""
    devices = linux.get("netDevices") or {}
    if not devices:
        return {}
    out: dict[str, list[NetAddress]] = {}
    with _ipr() as ipr:
        for name in devices:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise PyruncError(f'linux.netDevices: network device "{name}" does not exist '
                                  f"in the runtime network namespace")
            addrs = []
            for msg in ipr.get_addr(index=found[0]):
                flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
                if msg["scope"] != _RT_SCOPE_UNIVERSE or not flags & _IFA_F_PERMANENT:
                    continue
                text = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
                family = msg["family"]
                addrs.append(NetAddress(family, msg["prefixlen"], inet_pton(family, text)))
            out[name] = addrs
    return out


def move_devices(linux: Mapping[str, Any], pid: int) -> None:
    """Move (and rename) every device of linux.netDevices into pid's network namespace."""
    devices = linux.get("netDevices") or {}
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _ipr() as ipr:
            for host_name, dev in devices.items():
                new = (dev or {}).get("name") or host_name
                found = ipr.link_lookup(ifname=host_name)
                if not found:
                    raise PyruncError(f'linux.netDevices: network device "{host_name}" '
                                      f"does not exist")
                try:
                    ipr.link("set", index=found[0], net_ns_fd=fd, ifname=new)
                except Exception as e:  # pyroute2's NetlinkError carries the errno
                    code = getattr(e, "code", 0)
                    reason = os.strerror(code) if code else str(e)
                    raise PyruncError(f'linux.netDevices: move "{host_name}" to "{new}" in the '
                                      f"container network namespace: {reason}") from None
    finally:
        os.close(fd)


def with_netdev_sync(linux: Mapping[str, Any],
                     inner: SyncCallback | None = None) -> SyncCallback | None:
    """An on_sync callback that moves the devices at NETDEV_SYNC and defers the rest."""
    if not linux.get("netDevices"):
        return inner

    def on_sync(value: int, pid: int) -> Sequence[bytes] | None:
        if value == NETDEV_SYNC:
            move_devices(linux, pid)
            return None
        return inner(value, pid) if inner is not None else None

    return on_sync
