"""A process's cgroup files for tests, on v1, hybrid and pure cgroup v2 hosts.

Everything is found from the mount table (cgroup and cgroup2 mounts in
/proc/self/mountinfo) and /proc/<pid>/cgroup, never from fixed paths or an
assumed depth: a container's cgroup is wherever the runtime put it.

``CgroupFiles(pid)`` resolves the process's directory for each controller;
its readers give the same meaning on every host (``memory_limit`` reads
memory.limit_in_bytes on v1 and memory.max on v2, ``frozen`` reads
freezer.state or cgroup.freeze, ...).  A controller the host lacks raises
:class:`Unavailable`, which tests turn into a skip naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pyrunc.linux.cgroups.detect import V1_CONTROLLERS

#: v1 "unlimited" values are the largest page-aligned long; anything this big means no limit.
_V1_UNLIMITED = 1 << 62


class Unavailable(Exception):
    """The host has no hierarchy carrying what a test wants to read."""


@dataclass(frozen=True)
class Mount:
    """One cgroup or cgroup2 mount."""

    mountpoint: str
    root: str
    fstype: str
    controllers: tuple[str, ...]   # v1 options naming controllers (and name=...)


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts(mountinfo: str | None = None) -> list[Mount]:
    """Every cgroup/cgroup2 mount of this mount namespace, in mount order."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    out = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        ctrls: tuple[str, ...] = ()
        if fstype == "cgroup":
            ctrls = tuple(o for o in fields[sep + 3].split(",")
                          if o in V1_CONTROLLERS or o.startswith("name="))
        out.append(Mount(_unescape(fields[4]), _unescape(fields[3]), fstype, ctrls))
    return out


def unified_mount() -> Mount | None:
    """The cgroup2 mount below /sys/fs/cgroup (the whole tree on pure v2)."""
    found = [m for m in mounts() if m.fstype == "cgroup2" and
             (m.mountpoint + "/").startswith("/sys/fs/cgroup/")]
    return found[-1] if found else None


def v1_mount(controller: str) -> Mount | None:
    """The v1 mount carrying ``controller`` (or ``name=systemd``)."""
    found = [m for m in mounts() if m.fstype == "cgroup" and controller in m.controllers]
    return found[-1] if found else None


def mode() -> str:
    """"v2" (cgroup2 at /sys/fs/cgroup), "hybrid" (v1 plus cgroup2) or "v1"."""
    unified = unified_mount()
    if unified is not None and unified.mountpoint == "/sys/fs/cgroup":
        return "v2"
    has_v1 = any(m.fstype == "cgroup" for m in mounts())
    return "hybrid" if has_v1 and unified is not None else "v1" if has_v1 else "v2"


def unified_controllers() -> set[str]:
    """Controllers the cgroup2 hierarchy offers at its root."""
    unified = unified_mount()
    if unified is None:
        return set()
    try:
        return set(Path(unified.mountpoint, "cgroup.controllers").read_text().split())
    except OSError:
        return set()


def version_of(controller: str) -> str | None:
    """"v1" or "v2": where a container's ``controller`` files live (v1 wins, as
    pyrunc and runc use a mounted v1 controller); None when neither has it."""
    if v1_mount(controller) is not None:
        return "v1"
    if controller in unified_controllers():
        return "v2"
    return None


def hierarchies() -> list[Path]:
    """The mountpoints of every mounted cgroup hierarchy (each once).

    Plain directories on the /sys/fs/cgroup tmpfs are not hierarchies: podman
    with the cgroupfs driver creates some (hugetlb, net_cls, ...) on hybrid
    hosts where those controllers are not mounted, and fills them with files.
    """
    seen: list[Path] = []
    for m in mounts():
        p = Path(m.mountpoint)
        if p not in seen and p.is_dir():
            seen.append(p)
    return seen


def dirs_named(name: str, max_depth: int = 8, suffix: str | None = None) -> list[str]:
    """Every cgroup called ``name`` (or, given ``suffix``, whose name ends
    with it) in any mounted hierarchy (leak checks)."""
    found = []
    for top in hierarchies():
        base_depth = len(top.parts)
        for dirpath, dirnames, _ in os.walk(top):
            found += [os.path.join(dirpath, d) for d in dirnames
                      if d == name or (suffix is not None and d.endswith(suffix))]
            if len(Path(dirpath).parts) - base_depth >= max_depth:
                dirnames.clear()
    return found


def _dir_in(mount: Mount, path: str) -> Path:
    if mount.root != "/" and (path == mount.root or path.startswith(mount.root.rstrip("/") + "/")):
        path = path[len(mount.root.rstrip("/")):] or "/"
    return Path(mount.mountpoint, path.lstrip("/"))


def path_dir(cgroups_path: str, controller: str) -> Path:
    """The directory of an absolute ``linux.cgroupsPath`` for ``controller``
    ("" = the cgroup2 one); usable after the container is gone."""
    assert cgroups_path.startswith("/"), cgroups_path
    if controller:
        mount = v1_mount(controller)
        if mount is not None:
            return Path(mount.mountpoint, cgroups_path.lstrip("/"))
        if controller not in unified_controllers():
            raise Unavailable(f"no cgroup hierarchy carries the {controller} controller")
    unified = unified_mount()
    if unified is None:
        raise Unavailable("no cgroup2 hierarchy mounted")
    return Path(unified.mountpoint, cgroups_path.lstrip("/"))


def own_cgroups(pid: int) -> dict[str, str]:
    """/proc/<pid>/cgroup as {controller: cgroup}: one entry per v1 controller
    (``name=systemd`` included), "" for the cgroup2 hierarchy."""
    own: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in (ctrls.split(",") if ctrls else [""]):
            own[c] = path
    return own


class CgroupFiles:
    """The cgroup files of process ``pid``, whatever the host's layout.

    Directories are resolved once, at construction (the process must be
    alive then); the files can be read after it exits, until the cgroup is
    removed.  ``dirs`` maps a controller (or "" for cgroup2) to its directory.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.dirs: dict[str, Path] = {}
        own = own_cgroups(pid)
        for m in mounts():
            if m.fstype == "cgroup2":
                if "" in own and (m.mountpoint + "/").startswith("/sys/fs/cgroup/"):
                    self.dirs[""] = _dir_in(m, own[""])
                continue
            for c in m.controllers:
                if c in own:
                    self.dirs[c] = _dir_in(m, own[c])

    @classmethod
    def at(cls, dirs: dict[str, Path]) -> CgroupFiles:
        """Files of known directories (no process needed)."""
        files = cls.__new__(cls)
        files.pid = 0
        files.dirs = dict(dirs)
        return files

    @classmethod
    def of_path(cls, cgroups_path: str) -> CgroupFiles:
        """The files of an absolute ``linux.cgroupsPath``."""
        dirs = {}
        for m in mounts():
            if m.fstype == "cgroup":
                for c in m.controllers:
                    dirs[c] = Path(m.mountpoint, cgroups_path.lstrip("/"))
        unified = unified_mount()
        if unified is not None:
            dirs[""] = Path(unified.mountpoint, cgroups_path.lstrip("/"))
        return cls.at(dirs)

    def version(self, controller: str) -> str:
        """"v1" or "v2" for ``controller``; Unavailable when neither carries it."""
        if controller in self.dirs:
            return "v1"
        if "" in self.dirs and (controller in unified_controllers() or
                                controller in ("", "freezer", "kill")):
            return "v2"
        raise Unavailable(f"no cgroup hierarchy carries the {controller} controller")

    def dir(self, controller: str = "") -> Path:
        """The directory holding ``controller``'s files."""
        if self.version(controller) == "v1":
            return self.dirs[controller]
        return self.dirs[""]

    def read(self, controller: str, name: str) -> str:
        """The stripped content of ``name`` in ``controller``'s directory."""
        return (self.dir(controller) / name).read_text().strip()

    def write(self, controller: str, name: str, value: str) -> None:
        """Write ``value`` to ``name`` in ``controller``'s directory."""
        (self.dir(controller) / name).write_text(value)

    def exists(self) -> bool:
        """Whether any of the directories still exists."""
        return any(d.is_dir() for d in self.dirs.values())

    # -- meanings that differ between v1 and v2 -----------------------------

    def memory_limit(self) -> int | None:
        """The memory limit in bytes (None: unlimited)."""
        if self.version("memory") == "v1":
            value = int(self.read("memory", "memory.limit_in_bytes"))
            return None if value >= _V1_UNLIMITED else value
        text = self.read("memory", "memory.max")
        return None if text == "max" else int(text)

    def memory_swap_limit(self) -> int | None:
        """Memory plus swap in bytes, as OCI's memory.swap means it (None:
        unlimited); Unavailable when the host has no swap accounting."""
        if self.version("memory") == "v1":
            f = self.dir("memory") / "memory.memsw.limit_in_bytes"
            if not f.exists():
                raise Unavailable("no swap accounting (memory.memsw.limit_in_bytes)")
            value = int(f.read_text())
            return None if value >= _V1_UNLIMITED else value
        f = self.dir("memory") / "memory.swap.max"
        if not f.exists():
            raise Unavailable("no swap accounting (memory.swap.max)")
        swap, mem = f.read_text().strip(), self.memory_limit()
        return None if swap == "max" or mem is None else mem + int(swap)

    def cpu_shares_file(self) -> tuple[str, int]:
        """("cpu.shares", shares) on v1, ("cpu.weight", weight) on v2."""
        if self.version("cpu") == "v1":
            return "cpu.shares", int(self.read("cpu", "cpu.shares"))
        return "cpu.weight", int(self.read("cpu", "cpu.weight"))

    def pids_max(self) -> int | None:
        """pids.max (None: "max")."""
        text = self.read("pids", "pids.max")
        return None if text == "max" else int(text)

    def frozen(self) -> bool:
        """Whether the freezer reports the cgroup frozen (freezer.state FROZEN
        on v1; cgroup.freeze 1 and ``frozen 1`` in cgroup.events on v2)."""
        if self.version("freezer") == "v1":
            return self.read("freezer", "freezer.state") == "FROZEN"
        if self.read("", "cgroup.freeze") != "1":
            return False
        events = dict(line.split(" ", 1) for line in self.read("", "cgroup.events").splitlines())
        return events.get("frozen") == "1"

    def procs(self, controller: str = "pids") -> list[int]:
        """The PIDs in the cgroup itself (not its children)."""
        try:
            d = self.dir(controller)
        except Unavailable:
            d = self.dir("")
        return [int(p) for p in (d / "cgroup.procs").read_text().split()]

    def members(self) -> list[int]:
        """The PIDs systemd counts as the cgroup's (not its children's): its
        named hierarchy on v1 and hybrid hosts, the cgroup2 one on pure v2."""
        d = self.dirs["name=systemd"] if "name=systemd" in self.dirs else self.dirs[""]
        return [int(p) for p in (d / "cgroup.procs").read_text().split()]

    def cpu_quota(self) -> tuple[int, int]:
        """(quota, period) in microseconds; quota -1 means none (v1
        cpu.cfs_quota_us/cfs_period_us, v2 cpu.max)."""
        if self.version("cpu") == "v1":
            return int(self.read("cpu", "cpu.cfs_quota_us")), int(self.read("cpu", "cpu.cfs_period_us"))
        quota, period = self.read("cpu", "cpu.max").split()
        return (-1 if quota == "max" else int(quota)), int(period)

    def oom_kills(self) -> int:
        """How many OOM kills the cgroup saw (v2 memory.events oom_kill, v1
        memory.oom_control oom_kill)."""
        name = "memory.oom_control" if self.version("memory") == "v1" else "memory.events"
        count = oom_kill_count(self.read("memory", name))
        if count is None:
            raise Unavailable(f"no oom_kill counter in {name}")
        return count


def oom_kill_count(text: str) -> int | None:
    """The ``oom_kill`` line's value in the text of memory.events (v2) or
    memory.oom_control (v1), or None without one."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return None


def expected_cpu_weight(shares: int, runc_115: bool = False) -> int:
    """cpu.weight for ``shares`` as pyrunc and newer runc convert it (runc
    1.1.5 maps linearly)."""
    from pyrunc.plan.cgroups import cpu_shares_to_weight, cpu_shares_to_weight_linear

    return cpu_shares_to_weight_linear(shares) if runc_115 else cpu_shares_to_weight(shares)


def own_state(pid: int | None = None) -> dict[str, tuple[str, str, bool]]:
    """For each hierarchy, the process's cgroup: path -> (cgroup.type,
    cgroup.subtree_control, whether ``pid`` is listed in its cgroup.procs);
    v1 hierarchies have neither file ("" each).  Compared before and after
    runtime calls, it shows whether the runtime changed its caller's cgroup
    or moved its caller."""
    pid = pid or os.getpid()
    files = CgroupFiles(pid)
    out: dict[str, tuple[str, str, bool]] = {}
    for d in {str(p) for p in files.dirs.values()}:
        def opt(name: str, d: str = d) -> str:
            try:
                return Path(d, name).read_text().strip()
            except OSError:
                return ""
        out[d] = (opt("cgroup.type"), opt("cgroup.subtree_control"), str(pid) in opt("cgroup.procs").split())
    return out


def inside_path(controller: str, name: str) -> str:
    """Where a container whose config mounts ``cgroup`` on /sys/fs/cgroup
    (with a cgroup namespace) sees ``name`` of ``controller``."""
    if version_of(controller) == "v1":
        mount = v1_mount(controller)
        assert mount is not None
        return f"{mount.mountpoint}/{name}"
    unified = unified_mount()
    if unified is None:
        raise Unavailable(f"no cgroup hierarchy carries the {controller} controller")
    return f"{unified.mountpoint}/{name}"


def require(*controllers: str) -> None:
    """Skip the calling test, naming them, when the host lacks any of
    ``controllers`` (cpuset under User-Mode Linux, for one)."""
    missing = [c for c in controllers if version_of(c) is None]
    if missing:
        import pytest

        pytest.skip(f"this host's cgroups have no {', '.join(missing)} controller")
