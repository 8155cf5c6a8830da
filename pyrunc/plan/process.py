"""Building the process of `exec` from runc's flags or a process.json (pure)."""

from __future__ import annotations

import posixpath

from pyrunc.errors import UsageError
from pyrunc.jsonio import clone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence


def parse_user(text: str) -> tuple[int, int | None]:
    """``uid[:gid]``, both numeric (a user name is never taken for an id)."""
    uid_text, sep, gid_text = text.partition(":")
    try:
        uid = int(uid_text, 10)
        gid = int(gid_text, 10) if sep else None
    except ValueError:
        raise UsageError(f"invalid user {text!r}: expected <uid>[:<gid>] as numbers") from None
    if uid < 0 or uid > 0xFFFFFFFE or (gid is not None and not 0 <= gid <= 0xFFFFFFFE):
        raise UsageError(f"invalid user {text!r}: out of range")
    if not uid_text.isdigit() or (sep and not gid_text.isdigit()):
        raise UsageError(f"invalid user {text!r}: expected <uid>[:<gid>] as numbers")
    return uid, gid


def _merge_env(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """runc's rule: a variable given with -e replaces the one of the same name."""
    names = {e.split("=", 1)[0] for e in extra}
    return [e for e in base if e.split("=", 1)[0] not in names] + list(extra)


def exec_process_from_flags(base: Mapping[str, Any], args: Sequence[str], *,
                            env: Sequence[str] = (), cwd: str = "", user: str = "",
                            additional_gids: Sequence[str] = (), caps: Sequence[str] = (),
                            no_new_privs: bool = False, tty: bool = False) -> dict[str, Any]:
    """The exec'd process: the container's process with the command-line overrides."""
    if not args:
        raise UsageError("process args cannot be empty")
    process: dict[str, Any] = clone(dict(base))
    process["args"] = list(args)
    process["terminal"] = tty
    process.pop("consoleSize", None)
    process["env"] = _merge_env(process.get("env") or [], env)
    if cwd:
        process["cwd"] = cwd
    proc_user = process.setdefault("user", {"uid": 0, "gid": 0})
    if user:
        # runc: "-u 1" changes only the uid; the gid stays the process spec's.
        uid, gid = parse_user(user)
        proc_user["uid"] = uid
        if gid is not None:
            proc_user["gid"] = gid
    if additional_gids:
        try:
            extra = [int(g, 10) for g in additional_gids]
        except ValueError:
            raise UsageError("invalid --additional-gids value") from None
        if any(g < 0 for g in extra):
            raise UsageError("additional-gids must be a positive number")
        too_big = [g for g in extra if g > 0xFFFFFFFF]
        if too_big:
            # runc 1.1.5 truncates such a gid to 32 bits and runs with another group.
            raise UsageError(f"invalid --additional-gids value {too_big[0]}: a gid is 32 bits")
        proc_user["additionalGids"] = list(proc_user.get("additionalGids") or []) + extra
    if caps:
        pcaps = process.setdefault("capabilities", {})
        # --cap never grants inheritable capabilities (CVE-2022-29162); ambient
        # only where the process spec already allows it through inheritable.
        for name in caps:
            cap = name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper()
            for kind in ("bounding", "effective", "permitted"):
                pcaps.setdefault(kind, [])
                if cap not in pcaps[kind]:
                    pcaps[kind].append(cap)
            if cap in (pcaps.get("inheritable") or ()):
                pcaps.setdefault("ambient", [])
                if cap not in pcaps["ambient"]:
                    pcaps["ambient"].append(cap)
    if no_new_privs:
        process["noNewPrivileges"] = True
    return process


def parse_sub_cgroups(args: Sequence[str]) -> dict[str, str]:
    """``--cgroup`` values: ``path`` (alone) or ``ctrl[,ctrl...]:path`` -> {controller: path}.

    The empty controller stands for every hierarchy.  Paths are relative to
    the container's cgroup ("/" or "" is the container's cgroup itself) and
    may not climb out of it, worded as runc words it.
    """
    subs: dict[str, str] = {}
    for arg in args:
        parts = arg.split(":")
        if len(parts) > 2:
            raise UsageError(f"invalid --cgroup argument: {arg}")
        if len(parts) == 1:
            if len(args) != 1:
                raise UsageError(f"invalid --cgroup argument: {arg} (missing <controller>: prefix)")
            controllers, path = [""], parts[0]
        else:
            controllers, path = parts[0].split(","), parts[1]
        clean = posixpath.normpath(path.lstrip("/") or ".")
        if clean == ".." or clean.startswith("../"):
            raise UsageError(f"unable to create new parent process: {path} is not a sub cgroup path")
        for controller in controllers:
            subs[controller] = "" if clean == "." else clean
    return subs
