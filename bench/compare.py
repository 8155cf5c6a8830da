#!/usr/bin/env python3
"""Compare pyrunc with runc (or any runc-compatible CLI), side by side.

    sudo python3 bench/compare.py --runtime runc --runtime pyrunc [--quick] [--json out.json]

`--runtime` takes a command (`runc`, `/usr/local/bin/pyrunc`, `"python3 -m pyrunc"`)
or NAME=COMMAND; the first one is the baseline every ratio is taken against.
Each runtime is called as `COMMAND --root DIR SUBCOMMAND ...` with a private
state directory under a temporary work directory, which also holds a busybox
bundle built by bundles/make-rootfs.sh (read-only rootfs, shared by all).

All runtimes run in this one process and take turns: within every iteration
each runtime does the same step once, and the order rotates from one iteration
to the next, so slow phases of the machine hit all of them.  The metrics are
defined as in the project's yardstick (shared tools/bench.py):

  run       wall time of `run` of a container whose process is `true`, and the
            CPU time (user+sys) of the CLI and the children it reaped
  cycle     create -> start -> process exit -> delete: the whole cycle and each
            step; "exit" is from `start` returning to the container's init (pid
            from --pid-file) having exited, watched through a pidfd
  memory    after `create`: Rss and Pss (smaps_rollup) summed over every process
            the CLI left behind (new descendants of this process, which is a
            child subreaper), their count, and how many are alive after delete
  tput      N cycles (default 100) one after the other, and with P (default 8)
            threads: seconds per batch
  exec      `exec ID true` into a running container (process `sleep`)
  state     `state ID` and `list` while M (default 50) containers run
  maxrss    peak RSS of the CLI of `run`, `create` and `exec`, from GNU time's %M
  memlimit  the smallest linux.resources.memory.limit with which `run` of `true`
            still succeeds, found by bisection (per runtime, probes interleaved)

Every container created is removed at the end (also after an error or Ctrl-C),
and any process still descending from this one is killed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import secrets
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_ROOTFS = os.path.join(HERE, "..", "bundles", "make-rootfs.sh")
UNIFIED = "/sys/fs/cgroup/unified"
METRICS = ("run", "cycle", "memory", "exec", "state", "maxrss", "tput", "memlimit")
KIB = 1024


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- process control

class Children:
    """Spawns CLIs and waits for them; reaps every other child (orphaned
    container processes re-parented to us) in a background thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mine: set[int] = set()         # CLI pids some thread will wait4() for
        threading.Thread(target=self._sweep, daemon=True).start()

    def _sweep(self) -> None:
        while True:
            time.sleep(0.02)
            while True:
                with self.lock:
                    try:
                        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                    except ChildProcessError:
                        info = None
                    if info is None or info.si_pid in self.mine:
                        break
                    try:
                        os.waitpid(info.si_pid, os.WNOHANG)
                    except ChildProcessError:
                        pass

    def call(self, argv: list[str], timeout: float) -> dict:
        """Run argv; {rc, wall, cpu, out, err, t0, t1}.  rc None = timed out."""
        out = tempfile.TemporaryFile()
        err = tempfile.TemporaryFile()
        null = os.open(os.devnull, os.O_RDONLY)
        acts = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        with self.lock:
            t0 = time.perf_counter()
            try:
                pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=acts)
            except OSError as e:
                os.close(null)
                return {"rc": 127, "wall": 0, "cpu": 0, "out": "", "err": str(e), "t0": t0, "t1": t0}
            self.mine.add(pid)
        os.close(null)
        timer = threading.Timer(timeout, lambda: _kill_quiet(pid))
        timer.start()
        try:
            _, status, ru = os.wait4(pid, 0)
        finally:
            t1 = time.perf_counter()
            timer.cancel()
            with self.lock:
                self.mine.discard(pid)
        rc = os.waitstatus_to_exitcode(status)
        res = {"rc": rc if rc != -signal.SIGKILL or t1 - t0 < timeout else None,
               "wall": t1 - t0, "cpu": ru.ru_utime + ru.ru_stime, "t0": t0, "t1": t1}
        for name, f in (("out", out), ("err", err)):
            f.seek(0)
            res[name] = f.read(1 << 20).decode(errors="replace")
            f.close()
        return res


def _kill_quiet(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def proc_tree() -> dict[tuple[int, int], tuple[str, str]]:
    """{(pid, starttime): (comm, state)} of every descendant of this process."""
    parent: dict[int, int] = {}
    info: dict[int, tuple[int, str, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        close = raw.rfind(b")")
        rest = raw[close + 2:].split()
        pid = int(name)
        parent[pid] = int(rest[1])
        info[pid] = (int(rest[19]), raw[raw.find(b"(") + 1:close].decode(errors="replace"),
                     rest[0].decode())
    me, found = os.getpid(), {}
    for pid in info:
        p, seen = pid, 0
        while p in parent and p != me and seen < 64:
            p, seen = parent[p], seen + 1
        if p == me and pid != me:
            start, comm, state = info[pid]
            found[(pid, start)] = (comm, state)
    return found


def rss_pss_kib(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    vals = {ln.split(":")[0]: int(ln.split()[1]) for ln in lines if ln.startswith(("Rss:", "Pss:"))}
    return vals.get("Rss", 0), vals.get("Pss", 0)


def _poll_in(fd: int, timeout: float) -> bool:
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(int(timeout * 1000)))


# ---------------------------------------------------------------- bundle

def make_config(rootfs: str, args: list[str], drop_ambient: bool,
                memory_limit: int | None = None) -> dict:
    """runc 1.1's `runc spec` document with terminal off, a read-only root and
    the given process (the same container the yardstick runs)."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    capsets = ("bounding", "effective", "permitted") + (() if drop_ambient else ("ambient",))
    resources: dict = {"devices": [{"allow": False, "access": "rwm"}]}
    if memory_limit is not None:
        resources["memory"] = {"limit": memory_limit}
    nosuid = ["nosuid", "noexec", "nodev"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/",
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "capabilities": {k: list(caps) for k in capsets},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": nosuid + ["mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nosuid},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": nosuid + ["ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": nosuid + ["relatime", "ro"]},
        ],
        "linux": {
            "resources": resources,
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def write_bundle(path: str, config: dict) -> str:
    """A bundle directory holding only config.json (root.path is absolute)."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return path


# ---------------------------------------------------------------- runtimes

class Runtime:
    def __init__(self, idx: int, spec: str, work: str) -> None:
        name, eq, cmd = spec.partition("=")
        if not eq:
            cmd, name = spec, ""
        argv = shlex.split(cmd)
        exe = argv[0] if "/" in argv[0] else shutil.which(argv[0])
        if not exe or not os.access(exe, os.X_OK):
            raise SystemExit(f"runtime {spec!r}: {argv[0]} is not an executable")
        self.name = name or os.path.basename(argv[0])
        self.argv = [os.path.abspath(exe)] + argv[1:]
        self.idx = idx
        self.root = os.path.join(work, f"root-{idx}")
        self.pids = os.path.join(work, f"pids-{idx}")
        os.makedirs(self.root)
        os.makedirs(self.pids)
        self.live: set[str] = set()
        self.lock = threading.Lock()
        self.version = "?"


# ---------------------------------------------------------------- statistics

def p90(xs: list[float]) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * 0.9
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Compare:
    def __init__(self, a: argparse.Namespace, work: str) -> None:
        self.a = a
        self.work = work
        self.kids = Children()
        self.rts = [Runtime(i, s, work) for i, s in enumerate(a.runtime)]
        if len({r.name for r in self.rts}) != len(self.rts):
            raise SystemExit("give the runtimes different names (NAME=COMMAND)")
        self.tag = "cmp" + secrets.token_hex(3)
        self.n = 0
        self.nlock = threading.Lock()
        self.data: dict[str, dict[str, dict[int, float]]] = {}
        self.errors: list[str] = []
        self.notes: dict[str, object] = {}
        self.stop = threading.Event()

    # -- plumbing

    def cid(self, rt: Runtime, kind: str) -> str:
        with self.nlock:
            self.n += 1
            return f"{self.tag}-{rt.idx}{kind}{self.n}"

    def cli(self, rt: Runtime, *args: str, prefix: list[str] | None = None) -> dict:
        r = self.kids.call((prefix or []) + rt.argv + ["--root", rt.root, *args], self.a.timeout)
        r["what"] = f"{rt.name} {args[0]}"
        return r

    def ok(self, r: dict, where: str) -> bool:
        if r["rc"] == 0:
            return True
        why = "timed out" if r["rc"] is None else f"exit {r['rc']}"
        tail = " | ".join((r["err"].strip() or r["out"].strip()).splitlines()[-2:])[:240]
        msg = f"{where}: `{r['what']}` {why}" + (f": {tail}" if tail else "")
        self.errors.append(msg)
        log("  FAILED", msg)
        return False

    def put(self, key: str, rt: Runtime, i: int, v: float) -> None:
        if i >= 0:
            self.data.setdefault(key, {}).setdefault(rt.name, {})[i] = v

    def turns(self, n: int):
        for i in range(-self.a.warmup, n):
            if self.stop.is_set():
                return
            k = i % len(self.rts)
            for rt in self.rts[k:] + self.rts[:k]:
                yield i, rt

    def remove(self, rt: Runtime, cid: str) -> None:
        self.kids.call(rt.argv + ["--root", rt.root, "kill", cid, "KILL"], self.a.timeout)
        r = self.kids.call(rt.argv + ["--root", rt.root, "delete", "--force", cid], self.a.timeout)
        gone = r["rc"] == 0 or self.kids.call(
            rt.argv + ["--root", rt.root, "state", cid], self.a.timeout)["rc"] != 0
        if gone:
            with rt.lock:
                rt.live.discard(cid)
        else:
            self.errors.append(f"cleanup: {rt.name} container {cid} could not be removed")

    def create(self, rt: Runtime, cid: str, bundle: str, where: str,
               prefix: list[str] | None = None) -> tuple[dict, int | None]:
        pidfile = os.path.join(rt.pids, cid)
        with rt.lock:
            rt.live.add(cid)
        r = self.cli(rt, "create", "--bundle", bundle, "--pid-file", pidfile, cid, prefix=prefix)
        if not self.ok(r, where):
            self.remove(rt, cid)
            return r, None
        try:
            with open(pidfile) as f:
                pid = int(f.read())
            os.unlink(pidfile)
        except (OSError, ValueError) as e:
            self.errors.append(f"{where}: {rt.name} create left no usable pid file ({e})")
            self.remove(rt, cid)
            return r, None
        return r, pid

    def cycle(self, rt: Runtime, cid: str, where: str, after_create=None,
              prefix: list[str] | None = None) -> dict | None:
        t0 = time.perf_counter()
        rc, pid = self.create(rt, cid, self.b_true, where, prefix)
        if pid is None:
            return None
        pidfd = os.pidfd_open(pid) if _alive(pid) else None
        try:
            if after_create:
                after_create(pid)
            rs = self.cli(rt, "start", cid)
            if not self.ok(rs, where):
                self.remove(rt, cid)
                return None
            if pidfd is not None and not _poll_in(pidfd, self.a.timeout):
                self.errors.append(f"{where}: {rt.name} container {cid} still running after start")
                self.remove(rt, cid)
                return None
            t_exit = time.perf_counter()
        finally:
            if pidfd is not None:
                os.close(pidfd)
        rd = self.cli(rt, "delete", cid)
        if not self.ok(rd, where):
            self.remove(rt, cid)
            return None
        with rt.lock:
            rt.live.discard(cid)
        return {"total": rd["t1"] - t0, "create": rc["wall"], "start": rs["wall"],
                "exit": t_exit - rs["t1"], "delete": rd["wall"],
                "cpu": rc["cpu"] + rs["cpu"] + rd["cpu"]}

    def sleepers(self, rt: Runtime, n: int, where: str) -> list[str]:
        out = []
        for _ in range(n):
            cid = self.cid(rt, "s")
            _, pid = self.create(rt, cid, self.b_sleep, where)
            if pid is None:
                continue
            if self.ok(self.cli(rt, "start", cid), where):
                out.append(cid)
            else:
                self.remove(rt, cid)
        return out

    # -- metrics

    def m_run(self) -> None:
        log(f"run: {self.a.iterations} iterations")
        for i, rt in self.turns(self.a.iterations):
            cid = self.cid(rt, "r")
            with rt.lock:
                rt.live.add(cid)
            r = self.cli(rt, "run", "--bundle", self.b_true, cid)
            if self.ok(r, "run"):
                with rt.lock:
                    rt.live.discard(cid)
                self.put("run.wall", rt, i, r["wall"])
                self.put("run.cpu", rt, i, r["cpu"])
            else:
                self.remove(rt, cid)

    def m_cycle(self) -> None:
        log(f"cycle: {self.a.iterations} iterations")
        for i, rt in self.turns(self.a.iterations):
            c = self.cycle(rt, self.cid(rt, "c"), "cycle")
            for k, v in (c or {}).items():
                self.put("cycle." + k, rt, i, v)

    def m_memory(self) -> None:
        log(f"memory: {self.a.mem_iterations} iterations")
        seen: dict[str, dict[str, int]] = {}
        for i, rt in self.turns(self.a.mem_iterations):
            before = proc_tree()
            got: dict = {}

            def sample(init_pid: int, before=before, got=got) -> None:
                time.sleep(self.a.settle)
                new = {k: v for k, v in proc_tree().items() if k not in before and v[1] != "Z"}
                rows = []
                for (pid, _start), (comm, _st) in sorted(new.items()):
                    m = rss_pss_kib(pid)
                    if m:
                        rows.append((comm, m[0], m[1]))
                got["keys"], got["rows"] = set(new), rows
                got["init_seen"] = any(k[0] == init_pid for k in new)

            if self.cycle(rt, self.cid(rt, "m"), "memory", after_create=sample) is None:
                continue
            time.sleep(self.a.settle)
            after = proc_tree()
            alive = [k for k in after if k not in before and after[k][1] != "Z"]
            if alive:
                self.errors.append(f"memory: {rt.name}: {len(alive)} process(es) alive after delete")
            rows = got.get("rows", [])
            self.put("mem.rss", rt, i, sum(r[1] for r in rows) * KIB)
            self.put("mem.pss", rt, i, sum(r[2] for r in rows) * KIB)
            self.put("mem.procs", rt, i, len(rows))
            self.put("mem.leaked", rt, i, len(alive))
            if i >= 0:
                d = seen.setdefault(rt.name, {})
                for comm, _r, _p in rows:
                    d[comm] = d.get(comm, 0) + 1
                if not got.get("init_seen"):
                    d["(init pid not among them)"] = d.get("(init pid not among them)", 0) + 1
        self.notes["processes left by create"] = seen

    def m_exec(self) -> None:
        log(f"exec: {self.a.iterations} iterations")
        target = {rt.name: (self.sleepers(rt, 1, "exec") or [None])[0] for rt in self.rts}
        try:
            for i, rt in self.turns(self.a.iterations):
                if target[rt.name] is None:
                    continue
                r = self.cli(rt, "exec", target[rt.name], "true")
                if self.ok(r, "exec"):
                    self.put("exec.wall", rt, i, r["wall"])
                    self.put("exec.cpu", rt, i, r["cpu"])
        finally:
            for rt in self.rts:
                if target[rt.name]:
                    self.remove(rt, target[rt.name])

    def m_state(self) -> None:
        m = self.a.containers
        log(f"state/list: {self.a.iterations} iterations with {m} containers each")
        ids = {}
        try:
            for rt in self.rts:
                ids[rt.name] = self.sleepers(rt, m, "state")
            for i, rt in self.turns(self.a.iterations):
                mine = ids[rt.name]
                if not mine:
                    continue
                cid = mine[i % len(mine)]
                r = self.cli(rt, "state", cid)
                if self.ok(r, "state"):
                    try:
                        doc = json.loads(r["out"])
                        good = doc.get("id") == cid and doc.get("status") == "running"
                    except ValueError:
                        good = False
                    if good:
                        self.put("state.wall", rt, i, r["wall"])
                    else:
                        self.errors.append(f"state: {rt.name}: wrong output {r['out'][:120]!r}")
                r = self.cli(rt, "list")
                if self.ok(r, "list"):
                    listed = set(r["out"].split())
                    if all(c in listed for c in mine):
                        self.put("list.wall", rt, i, r["wall"])
                    else:
                        self.errors.append(f"list: {rt.name}: running containers missing")
        finally:
            for rt in self.rts:
                for cid in ids.get(rt.name, []):
                    self.remove(rt, cid)

    def m_maxrss(self) -> None:
        gnu_time = shutil.which("time") or "/usr/bin/time"
        if not os.access(gnu_time, os.X_OK):
            self.notes["maxrss"] = "skipped: GNU time not found"
            return
        log(f"maxrss: {self.a.mem_iterations} iterations")
        out = os.path.join(self.work, "maxrss")
        prefix = [gnu_time, "-o", out, "-f", "%M"]

        def kib() -> int | None:
            try:
                with open(out) as f:
                    v = int(f.read().split()[-1])
                os.unlink(out)
                return v
            except (OSError, ValueError, IndexError):
                return None

        target = {rt.name: (self.sleepers(rt, 1, "maxrss") or [None])[0] for rt in self.rts}
        try:
            for i, rt in self.turns(self.a.mem_iterations):
                cid = self.cid(rt, "p")
                with rt.lock:
                    rt.live.add(cid)
                r = self.cli(rt, "run", "--bundle", self.b_true, cid, prefix=prefix)
                v = kib()
                if self.ok(r, "maxrss run") and v:
                    with rt.lock:
                        rt.live.discard(cid)
                    self.put("run.maxrss", rt, i, v * KIB)
                else:
                    self.remove(rt, cid)
                if self.cycle(rt, self.cid(rt, "q"), "maxrss create", prefix=prefix) and (v := kib()):
                    self.put("create.maxrss", rt, i, v * KIB)
                if target[rt.name]:
                    r = self.cli(rt, "exec", target[rt.name], "true", prefix=prefix)
                    v = kib()
                    if self.ok(r, "maxrss exec") and v:
                        self.put("exec.maxrss", rt, i, v * KIB)
        finally:
            for rt in self.rts:
                if target[rt.name]:
                    self.remove(rt, target[rt.name])

    def m_tput(self) -> None:
        count, par = self.a.tput_count, self.a.parallel
        log(f"tput: {count} cycles sequential and {par}-parallel, {self.a.tput_reps} rep(s)")
        for key, workers in (("tput.seq", 1), ("tput.par", par)):
            for rep in range(self.a.tput_reps):
                k = rep % len(self.rts)
                for rt in self.rts[k:] + self.rts[:k]:
                    if self.stop.is_set():
                        return
                    todo = [self.cid(rt, "t") for _ in range(count)]
                    failed = []
                    lock = threading.Lock()

                    def work(todo=todo, failed=failed, lock=lock, rt=rt, key=key) -> None:
                        while not self.stop.is_set():
                            with lock:
                                if not todo:
                                    return
                                cid = todo.pop()
                            if self.cycle(rt, cid, key) is None:
                                with lock:
                                    failed.append(cid)

                    threads = [threading.Thread(target=work) for _ in range(workers)]
                    t0 = time.perf_counter()
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    wall = time.perf_counter() - t0
                    log(f"  {key} {rt.name}: {wall:.2f}s" + (f", {len(failed)} failed" if failed else ""))
                    if not failed:
                        self.put(key, rt, rep, wall)

    def m_memlimit(self) -> None:
        """Bisect the smallest memory limit at which `run true` succeeds."""
        lo_hi = {rt.name: [0, self.a.memlimit_max] for rt in self.rts}
        bundles: dict[int, str] = {}
        log(f"memlimit: bisection to {self.a.memlimit_step // KIB} KiB")

        def bundle(limit: int) -> str:
            if limit not in bundles:
                bundles[limit] = write_bundle(
                    os.path.join(self.work, f"b-mem-{limit}"),
                    make_config(self.rootfs, ["true"], self.a.no_ambient, memory_limit=limit))
            return bundles[limit]

        def probe(rt: Runtime, limit: int) -> bool:
            cid = self.cid(rt, "l")
            with rt.lock:
                rt.live.add(cid)
            r = self.cli(rt, "run", "--bundle", bundle(limit), cid)
            self.remove(rt, cid)                # also after success: cheap, certain
            return r["rc"] == 0

        for rt in self.rts:                     # the upper bound must work
            if not probe(rt, lo_hi[rt.name][1]):
                self.errors.append(f"memlimit: {rt.name} cannot run `true` even with "
                                   f"{self.a.memlimit_max // KIB // KIB} MiB")
                lo_hi[rt.name] = [0, 0]
        step = 0
        while any(hi - lo > self.a.memlimit_step and hi for lo, hi in lo_hi.values()):
            k = step % len(self.rts)
            step += 1
            for rt in self.rts[k:] + self.rts[:k]:
                lo, hi = lo_hi[rt.name]
                if not hi or hi - lo <= self.a.memlimit_step:
                    continue
                mid = (lo + hi) // 2 // 4096 * 4096
                # a limit that works must work twice: no lucky probe
                if probe(rt, mid) and probe(rt, mid):
                    lo_hi[rt.name][1] = mid
                else:
                    lo_hi[rt.name][0] = mid
        for rt in self.rts:
            if lo_hi[rt.name][1]:
                self.put("memlimit", rt, 0, lo_hi[rt.name][1])

    # -- driving

    def setup(self) -> None:
        self.rootfs = os.path.join(self.work, "rootfs")
        env = dict(os.environ, BUSYBOX=self.a.busybox) if self.a.busybox else None
        subprocess.run(["sh", MAKE_ROOTFS, self.rootfs], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        self.b_true = write_bundle(os.path.join(self.work, "b-true"),
                                   make_config(self.rootfs, ["true"], self.a.no_ambient))
        self.b_sleep = write_bundle(os.path.join(self.work, "b-sleep"),
                                    make_config(self.rootfs, ["sleep", "3600"], self.a.no_ambient))
        for rt in self.rts:
            v = self.kids.call(rt.argv + ["--version"], self.a.timeout)
            rt.version = (v["out"].splitlines() or ["?"])[0]
            log(f"{rt.name}: {' '.join(rt.argv)} ({rt.version})")

    def cleanup(self) -> None:
        for rt in self.rts:
            for cid in sorted(rt.live):
                self.remove(rt, cid)
            r = self.kids.call(rt.argv + ["--root", rt.root, "list", "-q"], 15)
            for cid in r["out"].split() if r["rc"] == 0 else []:
                if cid.startswith(self.tag):
                    self.remove(rt, cid)
        time.sleep(0.2)
        stray = [k for k, v in proc_tree().items() if v[1] != "Z"]
        if stray:
            self.notes["stray processes killed"] = len(stray)
        for pid, _start in stray:
            _kill_quiet(pid)
        deadline = time.monotonic() + 5
        while proc_tree() and time.monotonic() < deadline:
            time.sleep(0.05)

    def results(self) -> dict:
        base = self.rts[0].name
        res = {}
        for key, per in self.data.items():
            row = {}
            b = per.get(base, {})
            for rt in self.rts:
                xs = per.get(rt.name, {})
                if not xs:
                    continue
                vals = list(xs.values())
                e = {"n": len(vals), "median": statistics.median(vals), "p90": p90(vals),
                     "samples": [xs[i] for i in sorted(xs)]}
                if b and statistics.median(b.values()):
                    e["ratio"] = e["median"] / statistics.median(b.values())
                pairs = [xs[i] / b[i] for i in xs if b.get(i)]
                if pairs:
                    e["paired_ratio"] = statistics.median(pairs)
                row[rt.name] = e
            res[key] = row
        return res


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


ROWS = [
    ("run.wall", "run `true`", "ms"), ("run.cpu", "run `true`, CPU", "ms"),
    ("cycle.total", "create>start>exit>delete", "ms"), ("cycle.create", "  create", "ms"),
    ("cycle.start", "  start", "ms"), ("cycle.exit", "  start returned > exited", "ms"),
    ("cycle.delete", "  delete", "ms"), ("cycle.cpu", "  CPU of the 3 CLIs", "ms"),
    ("tput.seq", "{count} cycles sequential", "s"), ("tput.par", "{count} cycles, {par} parallel", "s"),
    ("exec.wall", "exec `true`", "ms"), ("exec.cpu", "exec `true`, CPU", "ms"),
    ("state.wall", "state ({m} running)", "ms"), ("list.wall", "list ({m} running)", "ms"),
    ("mem.rss", "RSS left by create", "MiB"), ("mem.pss", "PSS left by create", "MiB"),
    ("mem.procs", "processes left by create", "n"), ("mem.leaked", "processes alive after delete", "n"),
    ("run.maxrss", "peak RSS, `run` CLI", "MiB"), ("create.maxrss", "peak RSS, `create` CLI", "MiB"),
    ("exec.maxrss", "peak RSS, `exec` CLI", "MiB"),
    ("memlimit", "smallest memory.limit for `run true`", "MiB"),
]


def shown(v: float, unit: str) -> str:
    v = v * 1000 if unit == "ms" else v / KIB / KIB if unit == "MiB" else v
    return f"{v:.0f}" if unit == "n" else f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def table(cmp: Compare, res: dict, meta: dict) -> str:
    a, base = cmp.a, cmp.rts[0].name
    others = [rt.name for rt in cmp.rts]
    head = ["metric", "unit"] + [f"{n} median (p90)" for n in others] + \
        [f"{n}/{base}" for n in others[1:]]
    lines = [f"Run {meta['date']} on {meta['host']}; {meta['settings']}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, title, unit in ROWS:
        if key not in res:
            continue
        row = res[key]
        cells = [title.format(count=a.tput_count, par=a.parallel, m=a.containers), unit]
        for n in others:
            e = row.get(n)
            cells.append(f"{shown(e['median'], unit)} ({shown(e['p90'], unit)})" if e
                         else "n/a")
        for n in others[1:]:
            e = row.get(n)
            cells.append(f"{e['ratio']:.2f}" if e and "ratio" in e else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    for what, v in cmp.notes.items():
        lines += ["", f"{what}: {json.dumps(v)}"]
    if cmp.errors:
        uniq: dict[str, int] = {}
        for e in cmp.errors:
            uniq[e] = uniq.get(e, 0) + 1
        lines += ["", f"Failures ({len(cmp.errors)}):"]
        lines += [f"- {e}" + (f" (x{n})" if n > 1 else "") for e, n in list(uniq.items())[:15]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def private_mount_ns() -> None:
    """unshare a mount namespace and drop the hybrid cgroup2 mount (as the yardstick does)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0 or \
            libc.mount(b"none", b"/", None, 0x4000 | (1 << 18), None) != 0:
        raise OSError(ctypes.get_errno(), "private mount namespace")
    with open("/proc/self/mountinfo") as f:
        if any(ln.split()[4] == UNIFIED and " - cgroup2 " in ln for ln in f):
            if libc.umount2(UNIFIED.encode(), 2) != 0:
                raise OSError(ctypes.get_errno(), f"umount {UNIFIED}")


def is_hybrid() -> bool:
    with open("/proc/self/mountinfo") as f:
        types = {ln.split()[4]: ln.split(" - ")[1].split()[0] for ln in f}
    return types.get(UNIFIED) == "cgroup2" and types.get("/sys/fs/cgroup") != "cgroup2"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", action="append", required=True, metavar="[NAME=]COMMAND")
    p.add_argument("--quick", action="store_true", help="5 latency / 3 memory iterations, 1 batch")
    p.add_argument("-n", "--iterations", type=int)
    p.add_argument("--mem-iterations", type=int)
    p.add_argument("--tput-reps", type=int)
    p.add_argument("--tput-count", type=int, default=100)
    p.add_argument("--parallel", type=int, default=8)
    p.add_argument("--containers", type=int, default=50, help="running during state/list")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--settle", type=float, default=0.1, help="seconds after create before reading memory")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--only", default=",".join(METRICS), help="comma list of " + ",".join(METRICS))
    p.add_argument("--memlimit-max", type=int, default=64 << 20, help="bytes (64 MiB)")
    p.add_argument("--memlimit-step", type=int, default=64 << 10, help="resolution, bytes (64 KiB)")
    p.add_argument("--no-ambient", action="store_true",
                   help="leave out process.capabilities.ambient (for a runtime that cannot raise them)")
    p.add_argument("--busybox", help="static busybox for the rootfs")
    p.add_argument("--mountns", choices=("auto", "yes", "no"), default="auto")
    p.add_argument("--json", help="write samples and summaries here")
    a = p.parse_args()
    a.iterations = a.iterations or (5 if a.quick else 30)
    a.mem_iterations = a.mem_iterations or (3 if a.quick else 10)
    a.tput_reps = a.tput_reps or (1 if a.quick else 3)
    only = [m.strip() for m in a.only.split(",") if m.strip()]
    bad = [m for m in only if m not in METRICS]
    if bad:
        p.error(f"unknown metric(s) {bad}")
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    private = a.mountns == "yes" or (a.mountns == "auto" and is_hybrid())
    if private:                 # before any thread starts
        private_mount_ns()
    import ctypes
    if ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) != 0:   # PR_SET_CHILD_SUBREAPER
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")

    work = tempfile.mkdtemp(prefix="pyrunc-compare-")
    os.chmod(work, 0o755)
    cmp = Compare(a, work)

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    interrupted = False
    try:
        cmp.setup()
        for m in METRICS:
            if m in only and not cmp.stop.is_set():
                getattr(cmp, "m_" + m)()
    except KeyboardInterrupt:
        interrupted = True
        cmp.stop.set()
        log("interrupted; cleaning up")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cmp.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    res = cmp.results()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    meta = {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "host": f"{platform.node()}, Linux {platform.release()}, {os.cpu_count()} x {cpu}, "
                    f"load {load} at end",
            "settings": f"{a.iterations} latency iterations, {a.mem_iterations} memory, "
                        f"{a.tput_reps} batch rep(s), {a.warmup} warm-up; "
                        + ("private mount ns without the cgroup2 'unified' mount; " if private else "")
                        + ("ambient capabilities left out; " if a.no_ambient else "")
                        + f"took {time.monotonic() - t0:.0f}s"
                        + ("; INTERRUPTED" if interrupted else ""),
            "runtimes": {rt.name: {"argv": rt.argv, "version": rt.version} for rt in cmp.rts}}
    sys.stdout.write(table(cmp, res, meta))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "baseline": cmp.rts[0].name, "results": res,
                       "notes": cmp.notes, "errors": cmp.errors}, f, indent=1)
    return 1 if interrupted or cmp.errors else 0


if __name__ == "__main__":
    sys.exit(main())
