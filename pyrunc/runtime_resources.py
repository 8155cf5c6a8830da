"""Resource-control use cases: pause, resume, update, ps, events.

Like :mod:`pyrunc.runtime`, everything here raises PyruncError subclasses
with one-line messages and prints nothing; the CLI modules format output.
The wording of errors follows runc (``container not running``,
``container not paused``, ``container with id X is not running``).
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

from pyrunc.errors import CgroupError, ContainerError, PyruncError
from pyrunc.runtime import CREATED, PAUSED, RUNNING, STOPPED, _cgroup_manager, status_of
from pyrunc.state.procs import is_alive
from pyrunc.state.store import ContainerRecord, Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

RESCTRL = "/sys/fs/resctrl"

# How often the event loop looks at the init while waiting, and how long it
# keeps listening for an OOM notification once the init has gone (the
# victim's exit can be seen slightly before the OOM counter moves); longer
# when the cgroup was removed with the init (systemd removes an emptied
# scope): the OOM watch then reports a kill the removal hid, and ends, a
# check interval later.
_LIVENESS_POLL = 0.2
_OOM_GRACE = 0.5
_REMOVED_OOM_GRACE = 3.0


def _manager(record: ContainerRecord) -> Any:
    manager = _cgroup_manager(record)
    if manager is None:
        raise ContainerError(f"container {record.id} has no cgroup")
    return manager


def container_status(store: Store, record: ContainerRecord) -> str:
    """``runtime.status_of``, except that a frozen created container is paused.

    runc lets a created container be paused; status_of checks the exec fifo
    before the freezer, so without this a paused-before-start container
    could never be resumed.
    """
    status = status_of(store, record)
    if status == CREATED:
        manager = _cgroup_manager(record)
        if manager is not None:
            try:
                if manager.state() == "frozen":
                    return PAUSED
            except (OSError, PyruncError):
                pass
    return status


def pause(store: Store, container_id: str) -> None:
    """Freeze every process of a created or running container."""
    record = store.load(container_id)
    if container_status(store, record) not in (RUNNING, CREATED):
        raise ContainerError("container not running")
    _manager(record).freeze()


def resume(store: Store, container_id: str) -> None:
    """Thaw a paused container."""
    record = store.load(container_id)
    if container_status(store, record) != PAUSED:
        raise ContainerError("container not paused")
    _manager(record).thaw()


# ----------------------------------------------------------------- update

# Sections of linux.resources that update merges key by key.  "devices" is
# left alone, as runc does: update cannot change device rules.
_MERGED_SECTIONS = ("memory", "cpu", "blockIO", "pids", "network", "unified")
_REPLACED_KEYS = ("hugepageLimits", "rdma")


def merge_resources(current: Mapping[str, Any] | None, delta: Mapping[str, Any]) -> dict[str, Any]:
    """linux.resources with ``delta`` (a LinuxResources document) merged in.

    Keys whose value is null mean "unchanged" (Go's nil pointers).  A memory
    limit of -1 without a swap value also lifts the swap limit, as runc does.
    """
    if not isinstance(delta, dict):
        raise PyruncError("update: resources must be a JSON object")
    merged = copy.deepcopy(dict(current or {}))
    for key in _MERGED_SECTIONS:
        section = delta.get(key)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise PyruncError(f"update: resources.{key} must be a JSON object")
        target = dict(merged.get(key) or {})
        target.update({k: v for k, v in section.items() if v is not None})
        merged[key] = target
    for key in _REPLACED_KEYS:
        if delta.get(key) is not None:
            merged[key] = copy.deepcopy(delta[key])
    mem = delta.get("memory") or {}
    if mem.get("limit") == -1 and mem.get("swap") is None:
        merged["memory"]["swap"] = -1
    return merged


def _rdt_enabled(kind: str) -> bool:
    """Whether resctrl is mounted and offers ``kind`` ("L3" or "MB")."""
    return os.path.isdir(os.path.join(RESCTRL, "info", kind))


def update(store: Store, container_id: str, delta: Mapping[str, Any],
           l3_cache_schema: str = "", mem_bw_schema: str = "") -> list[str]:
    """Merge ``delta`` into the container's resources, apply, and record them.

    Returns warnings (settings the host cannot honour).  On a write failure
    the previous resources are put back and the record is left unchanged.
    """
    record = store.load(container_id)
    if container_status(store, record) == STOPPED:
        raise ContainerError("container not running")
    if l3_cache_schema and not _rdt_enabled("L3"):
        raise PyruncError("Intel RDT/CAT: l3 cache schema is not enabled")
    if mem_bw_schema and not _rdt_enabled("MB"):
        raise PyruncError("Intel RDT/MBA: memory bandwidth schema is not enabled")
    if l3_cache_schema or mem_bw_schema:
        raise PyruncError("update: Intel RDT schemas are not supported by pyrunc yet")
    config = record.config
    linux = config.setdefault("linux", {})
    old = linux.get("resources") or {}
    merged = merge_resources(old, delta)
    manager = _manager(record)
    manager.plan(merged, devices=False)  # validates every value before any write
    try:
        warnings = manager.apply(merged, devices=False)
    except CgroupError:
        try:
            manager.apply(old, devices=False)
        except (OSError, PyruncError):
            pass
        raise
    mem = merged.get("memory") or {}
    if mem.get("kernel") is not None or mem.get("kernelTCP") is not None:
        # Obsolete settings: warned about once, never stored.
        mem.pop("kernel", None)
        mem.pop("kernelTCP", None)
    linux["resources"] = merged
    store.save(record)
    return warnings


# --------------------------------------------------------------------- ps


def ps_pids(store: Store, container_id: str) -> list[int]:
    """Host PIDs of every process in the container's cgroup."""
    record = store.load(container_id)
    if _cgroup_manager(record) is None and _own_pid_namespace(record):
        # A rootless container whose cgroup was skipped: its processes are
        # those of its pid namespace (runc's ps fails here).
        return _pid_namespace_members(record)
    return sorted(set(_manager(record).pids()))


def _own_pid_namespace(record: ContainerRecord) -> bool:
    linux = record.config.get("linux") or {}
    return any(ns.get("type") == "pid" and not ns.get("path")
               for ns in linux.get("namespaces") or ())


def _pid_namespace_members(record: ContainerRecord) -> list[int]:
    """Host pids of the processes in the pid namespace of the container's init."""
    if not is_alive(record.pid, record.pid_start):
        return []
    try:
        st = os.stat(f"/proc/{record.pid}/ns/pid")
    except OSError:
        return []
    wanted = (st.st_dev, st.st_ino)
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            other = os.stat(f"/proc/{name}/ns/pid")
        except OSError:
            continue  # gone, or not ours to look at
        if (other.st_dev, other.st_ino) == wanted:
            pids.append(int(name))
    return sorted(pids)


def pid_column(header: str) -> int:
    """Index of the PID column in a ``ps`` header line."""
    titles = header.split()
    if "PID" not in titles:
        raise PyruncError("couldn't find PID field in ps output")
    return titles.index("PID")


def filter_ps_output(output: str, pids: list[int]) -> list[str]:
    """The header plus the lines of ``ps`` output whose PID is one of ``pids``."""
    lines = output.split("\n")
    index = pid_column(lines[0])
    wanted = set(pids)
    kept = [lines[0]]
    for line in lines[1:]:
        if not line:
            continue
        fields = line.split()
        try:
            pid = int(fields[index])
        except (IndexError, ValueError):
            raise PyruncError(f"unable to parse pid: {line.strip()!r}") from None
        if pid in wanted:
            kept.append(line)
    return kept


def ps_table(pids: list[int], ps_args: list[str]) -> list[str]:
    """Run the host's ``ps`` (default ``-ef``) and keep the lines of ``pids``."""
    import subprocess

    argv = ["ps", *(ps_args or ["-ef"])]
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False)
    except OSError as e:
        raise PyruncError(f"exec: \"ps\": {e.strerror}") from None
    output = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        detail = " ".join(output.split())
        raise PyruncError(f"exit status {proc.returncode}: {detail}")
    return filter_ps_output(output, pids)


# ----------------------------------------------------------------- events


def stats_event(container_id: str, manager: Any) -> dict[str, Any]:
    """``{"type": "stats", "id": ..., "data": ...}`` from the manager's stats."""
    return {"type": "stats", "id": container_id, "data": manager.stats()}


def oom_event(container_id: str) -> dict[str, Any]:
    """``{"type": "oom", "id": ...}`` (runc omits the empty data)."""
    return {"type": "oom", "id": container_id}


def stats(store: Store, container_id: str) -> dict[str, Any]:
    """One stats event for a container that is not stopped."""
    record = store.load(container_id)
    if container_status(store, record) == STOPPED:
        raise ContainerError(f"container with id {container_id} is not running")
    return stats_event(container_id, _manager(record))


def events(store: Store, container_id: str, interval: float,
           emit: Callable[[dict[str, Any]], None],
           on_error: Callable[[str], None] | None = None) -> None:
    """Emit a stats event every ``interval`` seconds and an OOM event on each
    OOM kill, until the container's init exits or its cgroup is removed."""
    if interval <= 0:
        raise PyruncError("duration interval must be greater than 0")
    record = store.load(container_id)
    if container_status(store, record) == STOPPED:
        raise ContainerError(f"container with id {container_id} is not running")
    import queue
    import threading

    manager = _manager(record)
    notifier = manager.oom_events()
    inbox: queue.Queue[str] = queue.Queue()

    def watch_oom() -> None:
        try:
            for _ in notifier:
                inbox.put("oom")
        except (OSError, PyruncError):
            pass
        inbox.put("gone")

    def drain() -> None:
        _drain_oom(inbox, container_id, emit, removed=lambda: not manager.exists())

    threading.Thread(target=watch_oom, name="oom", daemon=True).start()
    next_stats = time.monotonic() + interval
    while True:
        now = time.monotonic()
        if now >= next_stats:
            try:
                emit(stats_event(container_id, manager))
            except (OSError, PyruncError) as e:
                if not is_alive(record.pid, record.pid_start):
                    # The container ended and took its cgroup along (systemd
                    # removes an emptied scope): an end, not an error.
                    drain()
                    return
                if on_error is not None:
                    on_error(str(e))
            next_stats += interval
            if next_stats <= now:
                next_stats = now + interval
            continue
        try:
            item = inbox.get(timeout=min(next_stats - now, _LIVENESS_POLL))
        except queue.Empty:
            if not is_alive(record.pid, record.pid_start):
                drain()
                return
            continue
        if item == "gone":
            return
        emit(oom_event(container_id))


def _drain_oom(inbox: Any, container_id: str, emit: Callable[[dict[str, Any]], None],
               removed: Callable[[], bool]) -> None:
    import queue

    start = time.monotonic()
    while True:
        grace = _REMOVED_OOM_GRACE if removed() else _OOM_GRACE
        remaining = start + grace - time.monotonic()
        if remaining <= 0:
            return
        try:
            item = inbox.get(timeout=min(remaining, _LIVENESS_POLL))
        except queue.Empty:
            continue
        if item == "gone":
            return
        emit(oom_event(container_id))
