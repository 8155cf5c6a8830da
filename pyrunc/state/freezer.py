"""Is a recorded container frozen?  Answered from its state record alone.

``status_of`` (state, start, kill, delete, list) only needs to know whether
a container is paused.  Asking a cgroup manager meant importing the whole
cgroup package (managers, the cgroup planner, detection) on every one of
those commands, so this module reads the freezer file named in the dict that
:meth:`pyrunc.linux.cgroups.base.Manager.to_state` stored, with nothing but
``os``, and gives the answer ``manager_from_state(d).state()`` would:

* v2 (``{"mode": "v2", "path": ...}``): ``<path>/cgroup.freeze`` reads 1;
* v1 and hybrid (``{"mode": "v1"|"hybrid", "paths": ..., "unified": ...}``):
  ``freezer.state`` of the v1 freezer hierarchy reads FROZEN; without a v1
  freezer, ``cgroup.freeze`` of the unified directory reads 1.

Whatever cannot be read or is not understood counts as "thawed", which is
what ``status_of`` made of the manager's errors.  It lives outside
``pyrunc.linux.cgroups`` because importing anything there runs that
package's ``__init__``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _read(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 4096).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _freeze_is_set(directory: str) -> bool:
    return (_read(os.path.join(directory, "cgroup.freeze")) or "").strip() == "1"


def freezer_state(cgroup: dict[str, Any]) -> str:
    """"frozen" or "thawed" for a cgroup dict of a state record."""
    mode = cgroup.get("mode")
    if mode == "v2":
        path = cgroup.get("path")
        return "frozen" if isinstance(path, str) and _freeze_is_set(path) else "thawed"
    if mode in ("v1", "hybrid"):
        paths = cgroup.get("paths") or {}
        freezer = paths.get("freezer") if isinstance(paths, dict) else None
        if isinstance(freezer, str):
            text = _read(os.path.join(freezer, "freezer.state")) or ""
            return "frozen" if text.strip() == "FROZEN" else "thawed"
        unified = cgroup.get("unified")
        if isinstance(unified, str) and unified and _freeze_is_set(unified):
            return "frozen"
    return "thawed"
