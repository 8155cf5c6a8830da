"""Shared cgroupfs effects: file I/O with runc-style errors, the write executor,
directory removal, freezing waits, and the :class:`Manager` interface."""

from __future__ import annotations

# The C module under `signal`, without its Signals enums (~5 ms of imports on
# every `delete`); only the numbers are needed here.
import _signal as signal
import errno
import os
import time

from pyrunc.errors import CgroupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from typing import TypeAlias

    DirFor: TypeAlias = Callable[[str], "str | None"]
    from typing import Any, Self

    from pyrunc.plan import cgroups as plan
    from pyrunc.plan.cgroups import DeviceRule

PROCS = "cgroup.procs"


def cgroup_error(op: str, path: str, err: OSError, value: str | None = None) -> CgroupError:
    """CgroupError reading ``op path: "value": strerror`` with errno kept."""
    code = err.errno or 0
    reason = os.strerror(code) if code else str(err)
    quoted = f" {value.strip()!r}".replace("'", '"') + ":" if value is not None else ""
    e = CgroupError(f"{op} {path}:{quoted} {reason}")
    e.errno = code  # type: ignore[attr-defined]
    e.filename = path  # type: ignore[attr-defined]
    e.op = op  # type: ignore[attr-defined]
    return e


def write_file(path: str, value: str) -> None:
    """Write ``value`` to a cgroup file (one write, like the kernel wants)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise cgroup_error("write", path, e, value) from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise cgroup_error("write", path, e, value) from None
    finally:
        os.close(fd)


def read_file(path: str) -> str:
    """Read a cgroup file; CgroupError names the path."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise cgroup_error("read", path, e) from None
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")
    except OSError as e:
        raise cgroup_error("read", path, e) from None
    finally:
        os.close(fd)


def read_optional(path: str) -> str | None:
    """The file's content, or None when it does not exist or cannot be read."""
    try:
        return read_file(path)
    except CgroupError:
        return None


def mkdir_p(path: str) -> list[str]:
    """mkdir -p; returns the directories created, outermost first."""
    missing = []
    p = path
    while p and p != "/" and not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    missing.reverse()
    for d in missing:
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            pass
        except OSError as e:
            raise cgroup_error("mkdir", d, e) from None
    return missing


def rmdir(path: str) -> None:
    """rmdir one cgroup, retrying EBUSY briefly (exiting tasks); ENOENT is fine."""
    delay = 0.001
    for attempt in range(12):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno == errno.EBUSY and attempt < 11:
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            raise cgroup_error("rmdir", path, e) from None


def try_rmdir(path: str) -> bool:
    """One rmdir attempt: True once ``path`` is gone.  The common case, a leaf
    cgroup with no tasks left, then needs no listing of its many files."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # EBUSY: sub-cgroups, or tasks still exiting
    return True


def remove_cgroup(path: str) -> None:
    """Remove cgroup ``path`` and any sub-cgroups below it (deepest first)."""
    if try_rmdir(path):
        return
    if not os.path.isdir(path):
        return
    for dirpath, dirnames, _files in os.walk(path, topdown=False):
        for name in dirnames:
            rmdir(os.path.join(dirpath, name))
    rmdir(path)


def read_procs(path: str) -> list[int]:
    """PIDs listed in ``path``/cgroup.procs (missing dir -> [])."""
    text = read_optional(os.path.join(path, PROCS))
    if text is None:
        return []
    return [int(x) for x in text.split() if x.isdigit()]


def read_procs_recursive(path: str) -> list[int]:
    """PIDs in ``path`` and every sub-cgroup, in walk order."""
    pids: list[int] = []
    if not os.path.isdir(path):
        return pids
    for dirpath, _dirs, _files in os.walk(path):
        pids.extend(read_procs(dirpath))
    return pids


def frozen_dir(path: str) -> bool:
    """Whether an existing cgroup directory freezes what joins it.

    v1: freezer.state FROZEN or FREEZING (it reads so when an ancestor is
    frozen too).  cgroup2: cgroup.freeze 1, or cgroup.events "frozen 1" (a
    frozen ancestor).  A directory without these files is not frozen.
    """
    state = read_optional(os.path.join(path, "freezer.state"))
    if state is not None and state.strip() in ("FROZEN", "FREEZING"):
        return True
    if (read_optional(os.path.join(path, "cgroup.freeze")) or "").strip() == "1":
        return True
    events = read_optional(os.path.join(path, "cgroup.events")) or ""
    return any(line.split() == ["frozen", "1"] for line in events.splitlines())


def add_pid_to(path: str, pid: int) -> None:
    """Write ``pid`` to ``path``/cgroup.procs; EINVAL retried (task still in TASK_NEW)."""
    target = os.path.join(path, PROCS)
    for attempt in range(5):
        try:
            write_file(target, str(pid))
            return
        except CgroupError as e:
            if getattr(e, "errno", None) != errno.EINVAL or attempt == 4:
                raise
            time.sleep(0.03)


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll ``check`` with a short backoff until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)




def _resolve(w: plan.Write, directory: str) -> tuple[str, str] | None:
    path = os.path.join(directory, w.filename)
    if (w.optional or w.fallback) and not os.path.exists(path):
        if w.fallback is not None:
            return os.path.join(directory, w.fallback[0]), w.fallback[1]
        return None
    return path, w.value


def _check_shares(path: str, value: str) -> None:
    got = read_optional(path)
    if got is None or not got.strip().isdigit():
        return
    wanted, actual = int(value), int(got)
    if wanted > actual:
        raise CgroupError(f"the maximum allowed cpu-shares is {actual}")
    if wanted < actual:
        raise CgroupError(f"the minimum allowed cpu-shares is {actual}")


def execute_writes(writes: Sequence[plan.Write], dir_for: DirFor, warnings: list[str]) -> None:
    """Carry out ``writes`` in order.

    ``dir_for(controller)`` gives the directory for a controller, or None when
    the controller is not available, which is refused: a limit that was
    asked for is never dropped.  A missing file is refused naming the field.
    """
    def one(w: plan.Write) -> None:
        directory = dir_for(w.controller)
        if directory is None:
            # The plan's controller check normally refuses this first.
            raise CgroupError(f"{w.field}: cannot set {w.filename}: "
                              f"the {w.controller} cgroup controller is not available")
        target = _resolve(w, directory)
        if target is None:
            return
        try:
            write_file(*target)
        except CgroupError as e:
            if getattr(e, "errno", None) != errno.ENOENT:
                raise
            # The controller is there but not this file: an interface the
            # kernel lacks (a config option, BFQ, swap accounting).
            err = CgroupError(f"{w.field}: cannot set {w.filename}: {target[0]} does not exist "
                              "(not supported by this kernel)")
            err.errno = errno.ENOENT  # type: ignore[attr-defined]
            err.filename = target[0]  # type: ignore[attr-defined]
            raise err from None
        if w.filename == "cpu.shares":
            _check_shares(target[0], target[1])

    i = 0
    while i < len(writes):
        w = writes[i]
        try:
            one(w)
        except CgroupError as e:
            if not (w.retry_after_next and getattr(e, "errno", None) == errno.EINVAL and i + 1 < len(writes)):
                raise
            one(writes[i + 1])
            one(w)
            i += 1
        i += 1


def check_memory_usage(usage_path: str, limit: int) -> None:
    """memory.checkBeforeUpdate: refuse a limit below the current usage."""
    text = read_optional(usage_path)
    if text is None or not text.strip().isdigit():
        return
    usage = int(text)
    if usage > limit:
        raise CgroupError(
            f"rejecting memory limit {limit} below current usage {usage} ({usage_path})")


class Manager:
    """A container's cgroup(s): create, join, limit, freeze, kill, remove.

    Concrete managers: :class:`~pyrunc.linux.cgroups.fs_v1.V1Manager` (v1 and
    hybrid) and :class:`~pyrunc.linux.cgroups.fs_v2.V2Manager`.
    """

    mode: str = ""
    freeze_timeout: float = 5.0

    def dirs(self) -> list[str]:
        """Every directory this manager owns, without duplicates."""
        raise NotImplementedError

    def path(self, controller: str = "") -> str | None:
        """Directory for ``controller`` ("" = the v2/unified one)."""
        raise NotImplementedError

    def create(self) -> None:
        """Create the container's cgroup directories (with parents)."""
        raise NotImplementedError

    def add_pid(self, pid: int) -> None:
        """Move ``pid`` into the container's cgroup in every hierarchy."""
        for d in self.dirs():
            add_pid_to(d, pid)

    def plan(self, resources: Mapping[str, Any],
             linux_devices: Sequence[Mapping[str, Any]] | None = None,
             devices: bool = True) -> plan.CgroupPlan:
        """The plan :meth:`apply` would carry out (no effects)."""
        raise NotImplementedError

    @staticmethod
    def device_rules(resources: Mapping[str, Any],
                     linux_devices: Sequence[Mapping[str, Any]] | None,
                     devices: bool) -> list[DeviceRule] | None:
        """The device rules a plan carries, or None when devices are left alone."""
        if not devices:
            return None
        from pyrunc.plan.cgroups import cgroup_device_rules

        return cgroup_device_rules(resources.get("devices"), linux_devices or ())

    def apply(self, resources: Mapping[str, Any],
              linux_devices: Sequence[Mapping[str, Any]] | None = None,
              devices: bool = True) -> list[str]:
        """Apply OCI ``linux.resources``; returns warnings (ignored settings).

        With ``devices`` the device rules (spec rules + runc's default
        allow-list, minus defaults that ``linux_devices`` redefines) are
        installed: as devices.allow/deny writes on v1 and hybrid hosts, as an
        eBPF device filter (BPF_CGROUP_DEVICE) on pure v2 hosts.
        Raises CgroupError naming the file and value on the first failure.
        """
        raise NotImplementedError

    def destroy(self) -> None:
        """Remove the container's own cgroup directories (missing is fine)."""
        errors: list[CgroupError] = []
        for d in self.dirs():
            try:
                remove_cgroup(d)
            except CgroupError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def exists(self) -> bool:
        """Whether any of the container's cgroup directories exists."""
        return any(os.path.isdir(d) for d in self.dirs())

    def preexisting_frozen(self) -> bool:
        """Whether one of the container's directories already exists frozen.

        A process that joins a frozen cgroup stops in the kernel before it
        can report anything, and no signal reaches it until the cgroup thaws.
        """
        for d in self.dirs():
            if frozen_dir(d):
                return True
        return False

    def check_fit(self) -> None:
        """Refuse a pre-existing cgroup that is frozen or has processes (newer runc).

        Called before anything is made: a refused cgroup is someone else's
        and is left exactly as it was.
        """
        if not self.exists():
            return
        if self.preexisting_frozen():
            raise CgroupError("container's cgroup unexpectedly frozen")
        try:
            pids = self.pids()
        except (CgroupError, OSError):
            pids = []  # a cgroup removed under us is an empty one
        if pids:
            raise CgroupError(f"container's cgroup is not empty: {len(pids)} process(es) found")

    def freeze(self) -> None:
        """Freeze every task; returns once the kernel reports frozen."""
        raise NotImplementedError

    def thaw(self) -> None:
        """Thaw every task."""
        raise NotImplementedError

    def state(self) -> str:
        """"frozen" or "thawed"."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Every PID in the container's cgroup and its sub-cgroups."""
        raise NotImplementedError

    def _kill_file(self) -> str | None:
        return None

    def kill_all(self, sig: int) -> None:
        """Send ``sig`` to every process: cgroup.kill for SIGKILL when there is
        one, else freeze, signal each PID, thaw (so nothing forks in between)."""
        try:
            paused = self.state() == "frozen"
        except (CgroupError, OSError):
            paused = False
        kill_file = self._kill_file()
        if sig == signal.SIGKILL and kill_file is not None and os.path.exists(kill_file):
            write_file(kill_file, "1")
            if paused:
                # A task frozen by the v1 freezer only dies once thawed (as runc does).
                self.thaw()
            return
        frozen = False
        try:
            self.freeze()
            frozen = True
        except CgroupError:
            pass
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            # A paused container stays paused, except that SIGKILL must be
            # able to take effect.
            if frozen and (not paused or sig == signal.SIGKILL):
                self.thaw()

    def stats(self) -> dict[str, Any]:
        """Statistics in the shape of runc's ``events --stats`` data."""
        raise NotImplementedError

    def oom_events(self) -> OOMNotifier:
        """A notifier that fires on each OOM kill in the container's cgroup."""
        raise NotImplementedError

    def to_state(self) -> dict[str, Any]:
        """JSON-able description from which :func:`manager_from_state` rebuilds us."""
        raise NotImplementedError


class OOMNotifier:
    """Waits for OOM events; ``fileno()`` is pollable, iteration yields per event.

    Iteration ends when the cgroup goes away.
    """

    def fileno(self) -> int:
        """A file descriptor that becomes readable/priority on an event."""
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> bool:
        """Block until an OOM event (True), timeout (False) or cgroup removal (EOFError)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the descriptors."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[None]:
        try:
            while True:
                try:
                    self.wait(None)
                except EOFError:
                    return
                yield None
        finally:
            self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
