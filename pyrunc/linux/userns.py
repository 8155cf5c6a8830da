"""An unprivileged caller's user namespace: which host ids it may map, and how.

The kernel lets an unprivileged process write a child's uid_map (gid_map)
only with one line mapping its own euid (egid), and gid_map only after
"deny" went into setgroups.  Anything wider goes through the setuid
``newuidmap``/``newgidmap`` helpers, which allow the user's own id and the
ranges /etc/subuid and /etc/subgid give it -- as runc does.  The maps are
always written from outside, by the parent, while the child waits.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"


def in_user_namespace(uid_map: str = "/proc/self/uid_map") -> bool:
    """True unless this process sees the initial user namespace's full identity map."""
    try:
        with open(uid_map) as f:
            fields = f.read().split()
    except OSError:
        return False
    return fields != ["0", "0", "4294967295"]


def parse_subid(text: str, name: str, own_id: int) -> list[tuple[int, int]]:
    """(start, count) ranges of a subid file for the user called name (or numbered own_id)."""
    ranges = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0].startswith("#"):
            continue
        if fields[0] != name and fields[0] != str(own_id):
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if start >= 0 and count > 0:
            ranges.append((start, count))
    return ranges


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _covered(start: int, size: int, allowed: Sequence[tuple[int, int]]) -> bool:
    """Whether [start, start+size) lies inside the union of the allowed ranges."""
    pos, end = start, start + size
    for lo, count in sorted(allowed):
        if lo <= pos < lo + count:
            pos = lo + count
            if pos >= end:
                return True
    return pos >= end


def own_only(mappings: Sequence[Mapping[str, Any]], own_id: int) -> bool:
    """True for the one mapping the kernel lets an unprivileged user write itself."""
    return len(mappings) == 1 and int(mappings[0]["hostID"]) == own_id \
        and int(mappings[0]["size"]) == 1


def check_mappings(linux: Mapping[str, Any], uid: int | None = None, gid: int | None = None,
                   subuid: str | None = None, subgid: str | None = None,
                   name: str | None = None) -> None:
    """Refuse, naming the field, a rootless config that is not in a new user
    namespace or maps host ids the caller does not own."""
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    namespaces = linux.get("namespaces") or ()
    if not any(ns.get("type") == "user" for ns in namespaces):
        raise ConfigError("rootless container requires user namespaces")
    if any(ns.get("type") == "user" and ns.get("path") for ns in namespaces):
        return  # an existing namespace: its maps were written by whoever made it
    name = _user_name(uid) if name is None else name
    for field, own, path, text in (
            ("uidMappings", uid, SUBUID, subuid), ("gidMappings", gid, SUBGID, subgid)):
        mappings = linux.get(field) or ()
        if not mappings:
            raise ConfigError(f"linux.{field}: rootless containers require at least one mapping")
        if own_only(mappings, own):
            continue
        allowed = [(own, 1), *parse_subid(_read(path) if text is None else text, name, own)]
        for m in mappings:
            host, size = int(m["hostID"]), int(m["size"])
            if not _covered(host, size, allowed):
                last = host + size - 1
                raise ConfigError(
                    f"linux.{field}: host ids {host}-{last} are outside what user {name} may map "
                    f"(its own id {own} and its ranges in {path})")


def _run_helper(helper: str, pid: int, mappings: Sequence[Mapping[str, Any]]) -> None:
    import subprocess

    argv = [helper, str(pid)]
    for m in mappings:
        argv += [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, check=False)
    except OSError as e:
        raise PyruncError(f"{helper}: {e.strerror} (install the uidmap package)") from None
    if proc.returncode != 0:
        detail = " ".join(proc.stdout.decode(errors="replace").split())
        raise PyruncError(f"{helper} {pid}: exit status {proc.returncode}: {detail}")


def write_unprivileged(pid: int, uid_mappings: Sequence[Mapping[str, Any]],
                       gid_mappings: Sequence[Mapping[str, Any]]) -> bool:
    """Write a child's maps as an unprivileged user; True when setgroups was denied.

    A single mapping of the caller's own id is written directly (gid_map
    after setgroups "deny", as the kernel requires); anything else by the
    setuid helpers.
    """
    from pyrunc.linux.idmap import _write_proc, format_map

    if uid_mappings:
        if own_only(uid_mappings, os.geteuid()):
            _write_proc(pid, "uid_map", format_map(uid_mappings))
        else:
            _run_helper("newuidmap", pid, uid_mappings)
    denied = False
    if gid_mappings:
        if own_only(gid_mappings, os.getegid()):
            _write_proc(pid, "setgroups", b"deny")
            denied = True
            _write_proc(pid, "gid_map", format_map(gid_mappings))
        else:
            _run_helper("newgidmap", pid, gid_mappings)
    return denied


def setgroups_denied(linux: Mapping[str, Any]) -> bool:
    """Whether a rootless container's user namespace will have setgroups "deny"."""
    return bool(linux.get("gidMappings")) and \
        own_only(linux.get("gidMappings") or (), os.getegid())
