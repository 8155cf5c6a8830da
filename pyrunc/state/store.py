"""The container state store under ``--root``.

Layout: ``<root>/<id>/state.json`` (pyrunc's own record, written atomically)
and ``<root>/<id>/exec.fifo`` (present between create and start).  Creating
the ``<id>`` directory is the lock that reserves an id: mkdir is atomic, so
of two concurrent creates exactly one wins.
"""

from __future__ import annotations

import errno
import os

from pyrunc import jsonio
from pyrunc.errors import ContainerError, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATE_FILE = "state.json"
FIFO_NAME = "exec.fifo"


class ContainerRecord:
    """What pyrunc remembers about one container.

    A plain class, not a dataclass: importing dataclasses (with inspect, ast,
    enum) cost more than the rest of `pyrunc state`.  ``FIELDS`` is the order
    of the keys in state.json.
    """

    FIELDS = ("id", "bundle", "rootfs", "created", "pid", "pid_start", "owner",
              "annotations", "cgroup", "config", "started", "no_new_keyring")
    __slots__ = FIELDS

    def __init__(self, id: str, bundle: str, rootfs: str, created: str, pid: int = 0,
                 pid_start: int = 0,  # starttime of pid (field 22 of /proc/pid/stat)
                 owner: str = "", annotations: dict[str, str] | None = None,
                 cgroup: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                 started: bool = False, no_new_keyring: bool = False) -> None:
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.pid = pid
        self.pid_start = pid_start
        self.owner = owner
        self.annotations: dict[str, str] = {} if annotations is None else annotations
        self.cgroup: dict[str, Any] = {} if cgroup is None else cgroup
        self.config: dict[str, Any] = {} if config is None else config
        self.started = started
        # Created with --no-new-keyring: exec processes join no session keyring either.
        self.no_new_keyring = no_new_keyring

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContainerRecord):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass was

    def __repr__(self) -> str:
        return "ContainerRecord(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.FIELDS) + ")"

    def to_json(self) -> str:
        """Serialise for state.json."""
        return jsonio.dumps_compact({k: getattr(self, k) for k in self.FIELDS})

    @classmethod
    def from_json(cls, text: str) -> ContainerRecord:
        """Parse state.json (unknown keys are ignored)."""
        data = jsonio.loads(text)
        known = {k: v for k, v in data.items() if k in cls.FIELDS}
        return cls(**known)


def write_atomic(path: str, data: str | bytes, mode: int = 0o644) -> None:
    """Write a file by writing a hidden sibling and renaming it over the target."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class Store:
    """Access to the containers under one root directory."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, container_id: str, *parts: str) -> str:
        """Path inside a container's state directory."""
        return os.path.join(self.root, container_id, *parts)

    def reserve(self, container_id: str) -> str:
        """Create the container's directory; fails if the id is taken."""
        try:
            # Private, as runc makes it: another user cannot list the ids.
            os.makedirs(self.root, mode=0o700, exist_ok=True)
        except OSError as e:
            raise PyruncError(f"mkdir {self.root}: {e.strerror}") from e
        directory = self.path(container_id)
        try:
            os.mkdir(directory, 0o711)
        except FileExistsError:
            raise ContainerError("container with given ID already exists") from None
        except OSError as e:
            raise PyruncError(f"mkdir {directory}: {e.strerror}") from e
        return directory

    def save(self, record: ContainerRecord) -> None:
        """Write the record atomically."""
        try:
            # The record holds the whole config (env, mounts): owner-only, as runc's.
            write_atomic(self.path(record.id, STATE_FILE), record.to_json(), 0o600)
        except OSError as e:
            raise PyruncError(f"write state of {record.id}: {e.strerror}") from e

    def load(self, container_id: str) -> ContainerRecord:
        """Read a container's record; ContainerError when it does not exist."""
        try:
            with open(self.path(container_id, STATE_FILE)) as f:
                return ContainerRecord.from_json(f.read())
        except FileNotFoundError:
            raise ContainerError("container does not exist") from None
        except NotADirectoryError:
            raise ContainerError("container does not exist") from None
        except (OSError, ValueError, TypeError) as e:
            raise PyruncError(f"read state of {container_id}: {e}") from e

    def exists(self, container_id: str) -> bool:
        """True when the container's directory exists (complete or not)."""
        return os.path.isdir(self.path(container_id))

    def ids(self) -> list[str]:
        """Ids of every container directory, sorted."""
        try:
            return sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        except FileNotFoundError:
            return []

    def remove(self, container_id: str) -> None:
        """Remove the container's directory and everything in it."""
        directory = self.path(container_id)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(directory)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise PyruncError(f"remove {directory}: {e.strerror}") from e
