"""pyrunc-init driven directly with hand-written plans (needs root).

Each test runs a real pyrunc-init in fresh namespaces and looks at what the
container process printed or at how the step failed.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import struct
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from pyrunc.linux.initproc import InitError, Launched, run_encoded, run_init
from pyrunc.plan.protocol import (
    CAPS_F_BOUNDING_ONLY,
    CAPS_F_NO_BOUNDING,
    CHDIR_F_RETRY,
    CHDIR_F_TRY,
    MOUNT_F_BIND_SOURCE,
    MOUNT_F_LABEL,
    MOUNT_F_MKDIR,
    MOUNT_F_NO_SOURCE,
    MOUNT_F_NOSYMLINK_DST,
    MOUNT_F_OR_ELSE,
    MOUNT_F_TARGET_HOST,
    OP_CAPS,
    OP_CHDIR,
    OP_CHECK_EXEC,
    OP_CHROOT,
    OP_CLOSE_FDS,
    OP_EXEC,
    OP_FORK,
    OP_LOOPBACK_UP,
    OP_MASK_PATH,
    OP_MKDIR,
    OP_MKNOD,
    OP_MOUNT,
    OP_NO_NEW_PRIVS,
    OP_OOM_SCORE_ADJ,
    OP_PIVOT_ROOT,
    OP_READONLY_PATH,
    OP_READY,
    OP_RLIMIT,
    OP_SECCOMP,
    OP_SET_ROOT,
    OP_SETDOMAINNAME,
    OP_SETGROUPS,
    OP_SETHOSTNAME,
    OP_SETID,
    OP_SETSID,
    OP_SYMLINK,
    OP_SYNC,
    OP_TIMENS_OFFSETS,
    OP_UMASK,
    OP_UNSHARE,
    OP_UNSHARE_USER,
    OP_WAIT_START,
    OP_WRITE_PROC,
    PLAN_MAX_LEN,
    Step,
    encode_plan,
    step,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
RLIMIT_NOFILE = 7
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
CAP_CHOWN = 0
CAP_KILL = 5
CAP_NET_BIND_SERVICE = 10
CAP_SETPCAP = 8

NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET
PATH_ENV = "PATH=/bin:/usr/bin"


@pytest.fixture(scope="module", autouse=True)
def subreaper() -> Iterator[None]:
    """Make the test process the reaper of container inits (stage B)."""
    from pyrunc._shim import lib

    lib.pyrunc_set_child_subreaper(1)
    yield
    lib.pyrunc_set_child_subreaper(0)


@pytest.fixture
def root(rootfs: Path) -> Iterator[Path]:
    """A private, writable copy of the busybox rootfs under a 0755 path, so
    that uids of a user namespace can reach it too."""
    base = Path(tempfile.mkdtemp(prefix="pyrunc-init-test-", dir="/tmp"))
    base.chmod(0o755)
    dest = base / "rootfs"
    shutil.copytree(rootfs, dest, symlinks=True)
    try:
        yield dest
    finally:
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str


def namespaces(root: Path, flags: int = NAMESPACES) -> list[Step]:
    """Stage A and the start of stage B: new namespaces, the rootfs as a mount."""
    return [
        step(OP_UNSHARE, flags, what="unshare namespaces"),
        step(OP_FORK, what="fork the container init"),
        step(OP_MOUNT, MS_REC | MS_SLAVE, MOUNT_F_TARGET_HOST | MOUNT_F_NO_SOURCE,
             strs=["", "/", "", ""], what='make "/" rslave'),
        step(OP_SET_ROOT, strs=[str(root)], what=f'rootfs "{root}"'),
        step(OP_MOUNT, MS_BIND | MS_REC, MOUNT_F_BIND_SOURCE, strs=[str(root), "/", "", ""],
             what="bind the rootfs onto itself"),
    ]


def proc_and_dev() -> list[Step]:
    return [
        step(OP_MOUNT, MS_NOSUID | MS_NODEV | MS_NOEXEC, MOUNT_F_MKDIR | MOUNT_F_NOSYMLINK_DST,
             0o555, strs=["proc", "/proc", "proc", ""], what='mount "proc" on "/proc"'),
        step(OP_MOUNT, MS_NOSUID, MOUNT_F_MKDIR, 0o755, strs=["tmpfs", "/dev", "tmpfs", "mode=755"],
             what='mount "tmpfs" on "/dev"'),
        step(OP_MKNOD, stat.S_IFCHR | 0o666, 1, 3, 0, 0, strs=["/dev/null"],
             what='mknod "/dev/null"'),
    ]


def shell(script: str, *env: str) -> Step:
    return step(OP_EXEC, 3, 1 + len(env), strs=["sh", "-c", script, PATH_ENV, *env],
                what="exec sh")


def container(root: Path, script: str, *, before_pivot: Sequence[Step] = (),
              after_pivot: Sequence[Step] = ()) -> list[Step]:
    return [
        *namespaces(root), *proc_and_dev(), *before_pivot,
        step(OP_PIVOT_ROOT, what="pivot_root"),
        *after_pivot,
        step(OP_CHDIR, strs=["/"], what='chdir "/"'),
        step(OP_READY, what="ready"),
        step(OP_CLOSE_FDS, 3, what="close fds"),
        shell(script),
    ]


def launch(steps: Sequence[Step], **kwargs) -> tuple[Launched, IO[bytes], IO[bytes]]:
    """run_init with the container's stdout and stderr going to files
    (closed by finish())."""
    out = tempfile.TemporaryFile()  # noqa: SIM115
    err = tempfile.TemporaryFile()  # noqa: SIM115
    saved = os.dup(1), os.dup(2)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    try:
        launched = run_init(steps, **kwargs)
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    return launched, out, err


def finish(launched: Launched, out: IO[bytes], err: IO[bytes]) -> Result:
    launched.sock.close()
    _, status = os.waitpid(launched.pid, 0)
    texts = []
    for f in (out, err):
        f.seek(0)
        texts.append(f.read().decode())
        f.close()
    return Result(os.waitstatus_to_exitcode(status), *texts)


def run(steps: Sequence[Step], **kwargs) -> Result:
    return finish(*launch(steps, **kwargs))


def fails(steps: Sequence[Step], **kwargs) -> InitError:
    with pytest.raises(InitError) as info:
        launched, out, err = launch(steps, **kwargs)
        finish(launched, out, err)
    return info.value


# ---- happy paths ------------------------------------------------------------


def test_container_hostname_pid1_caps(root: Path) -> None:
    caps = (1 << CAP_CHOWN) | (1 << CAP_KILL)
    steps = container(
        root, "hostname; echo $$; grep -E '^Cap(Eff|Bnd)' /proc/self/status",
        after_pivot=[
            step(OP_SETHOSTNAME, strs=["box"], what="sethostname"),
            step(OP_CAPS, caps, caps, caps, 0, 0, what="capabilities"),
        ])
    res = run(steps)
    assert res.status == 0, res.stderr
    lines = res.stdout.split("\n")
    assert lines[0] == "box"
    assert lines[1] == "1"
    assert lines[2].split() == ["CapEff:", "0000000000000021"]
    assert lines[3].split() == ["CapBnd:", "0000000000000021"]


@pytest.mark.parametrize("phased", [True, False])
def test_user_and_ambient_caps(root: Path, phased: bool) -> None:
    keep = (1 << CAP_NET_BIND_SERVICE)
    if phased:  # as the planner emits it: bounding set first, as root
        caps = [step(OP_CAPS, keep, 0, 0, 0, 0, CAPS_F_BOUNDING_ONLY, what="bounding set"),
                step(OP_SETID, 1000, 1000, what="uid/gid"),
                step(OP_CAPS, keep, keep, keep, keep, keep, CAPS_F_NO_BOUNDING, what="caps")]
    else:  # one OP_CAPS after the uid change still manages the bounding set
        caps = [step(OP_SETID, 1000, 1000, what="uid/gid"),
                step(OP_CAPS, keep, keep, keep, keep, keep, what="capabilities")]
    steps = container(root, "id -u; id -g; grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status",
                      after_pivot=caps)
    res = run(steps)
    assert res.status == 0, res.stderr
    assert res.stdout.split("\n")[:5] == [
        "1000", "1000", "CapEff:\t0000000000000400", "CapBnd:\t0000000000000400",
        "CapAmb:\t0000000000000400"]


def test_loopback_up(root: Path) -> None:
    steps = container(root, "ip -o link show lo",
                      after_pivot=[step(OP_LOOPBACK_UP, what='bring "lo" up')])
    res = run(steps)
    assert res.status == 0, res.stderr
    assert ",UP" in res.stdout


def stray_inheritable_fd() -> int:
    """An inheritable fd the plan does not name: pyrunc-init must never pass it on
    (a harness's fds reaching the container is the CVE-2024-21626 class)."""
    fd = os.open("/dev/null", os.O_RDONLY)
    os.set_inheritable(fd, True)
    return fd


def listed_fds(res: Result, expected: set[int]) -> set[int]:
    """The fds `ls /proc/self/fd` printed, minus the one ls opened itself
    (the lowest number not in EXPECTED)."""
    seen = {int(x) for x in res.stdout.split()}
    own = min(set(range(len(expected) + 1)) - expected)
    assert own in seen
    return seen - {own}


def test_no_fds_leak_but_inherited_ones(root: Path) -> None:
    stray = stray_inheritable_fd()
    r, w = os.pipe()
    try:
        steps = container(root, "exec ls /proc/self/fd")
        steps[-2] = step(OP_CLOSE_FDS, w + 1, what="close fds")
        res = run(steps, inherit_fds=[w])
    finally:
        for fd in (r, w, stray):
            os.close(fd)
    assert res.status == 0, res.stderr
    expected = {0, 1, 2, w}
    assert listed_fds(res, expected) == expected


def test_no_fds_leak_without_close_fds(root: Path) -> None:
    """pyrunc-init's own fds (sync socket, procfs handle, root) and the
    caller's inheritable ones are all gone even without OP_CLOSE_FDS."""
    steps = container(root, "exec ls /proc/self/fd")
    del steps[-2]
    expected = {0, 1, 2}
    stray = stray_inheritable_fd()
    try:
        res = run(steps)
    finally:
        os.close(stray)
    assert res.status == 0, res.stderr
    assert listed_fds(res, expected) == expected


def test_wait_start_blocks_until_fifo_opened(root: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo, 0o600)
    fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
    steps = container(root, "echo started")
    steps.insert(-2, step(OP_WAIT_START, fd, what="wait for start"))
    launched, out, err = launch(steps, inherit_fds=[fd])
    os.close(fd)
    time.sleep(0.2)
    assert os.waitpid(launched.pid, os.WNOHANG) == (0, 0), "ran before start"
    out.seek(0)
    assert out.read() == b""
    reader = os.open(fifo, os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert os.read(reader, 1) == b"0"
    finally:
        os.close(reader)
    res = finish(launched, out, err)
    assert (res.status, res.stdout) == (0, "started\n"), res.stderr


def test_user_namespace_with_idmap(root: Path) -> None:
    seen = []

    def idmap(pid: int) -> None:
        seen.append(pid)
        Path(f"/proc/{pid}/uid_map").write_text("0 100000 65536\n")
        Path(f"/proc/{pid}/setgroups").write_text("deny\n")
        Path(f"/proc/{pid}/gid_map").write_text("0 100000 65536\n")

    steps = [step(OP_UNSHARE_USER, what="new user namespace"),
             *namespaces(root),
             step(OP_MOUNT, MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  MOUNT_F_MKDIR | MOUNT_F_NOSYMLINK_DST, 0o555,
                  strs=["proc", "/proc", "proc", ""], what='mount "proc"'),
             step(OP_PIVOT_ROOT, what="pivot_root"),
             step(OP_READY, what="ready"),
             shell("id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox")]
    res = run(steps, on_idmap=idmap)
    assert res.status == 0, res.stderr
    out = res.stdout.split("\n")
    assert out[0] == "0"
    assert out[1].split() == ["0", "100000", "65536"]
    assert out[2] == "65534"  # host root is not mapped
    assert len(seen) == 1


def test_sync_callback_and_abort(root: Path) -> None:
    calls = []
    steps = [*namespaces(root), step(OP_SYNC, 7, what="sync 7"), step(OP_READY, what="ready"),
             shell("true")]
    res = run(steps, on_sync=lambda n, pid: calls.append((n, pid)))
    assert res.status == 0
    assert calls and calls[0][0] == 7

    def boom(n: int, pid: int) -> None:
        calls.append(pid)
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        launch(steps, on_sync=boom)
    pid = calls[-1]
    # The init was told to abort and killed; as its subreaper we reap it.
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) in (1, -9)


def test_mask_and_readonly_paths(root: Path) -> None:
    steps = container(
        root,
        "wc -c < /proc/timer_list; ls /proc/irq | wc -l; "
        "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo ro",
        after_pivot=[
            step(OP_MASK_PATH, strs=["/proc/timer_list"], what='mask "/proc/timer_list"'),
            step(OP_MASK_PATH, strs=["/proc/irq"], what='mask "/proc/irq"'),
            step(OP_MASK_PATH, strs=["/proc/does-not-exist"], what="mask missing"),
            step(OP_READONLY_PATH, strs=["/proc/sys"], what='read-only "/proc/sys"'),
            step(OP_READONLY_PATH, strs=["/nope"], what="read-only missing"),
        ])
    res = run(steps)
    assert res.status == 0, res.stderr
    assert res.stdout.split() == ["0", "0", "ro"]


def test_mount_or_else_runs_the_alternative_only_on_refusal(root: Path) -> None:
    """A second cgroup2 mount on the first one is refused (EBUSY: the same filesystem
    on the same mount point), so its alternative runs; a mount that works skips its own."""
    def tmpfs(dest: str, or_else: int = 0) -> Step:
        return step(OP_MOUNT, MS_NOSUID, MOUNT_F_MKDIR | (MOUNT_F_OR_ELSE if or_else else 0),
                    0o755, 0, or_else, strs=["tmpfs", dest, "tmpfs", ""], what=f"tmpfs {dest}")

    cgroup2 = ["cgroup2", "/cg", "cgroup2", ""]
    steps = container(
        root, "for d in cg alt1 alt2 ok skipped; do "
              "grep -c \" /$d \" /proc/self/mountinfo; done; ls -d /skipped",
        before_pivot=[
            step(OP_MOUNT, MS_NOSUID, MOUNT_F_MKDIR, 0o755, strs=cgroup2, what="cgroup2 /cg"),
            step(OP_MOUNT, MS_NOSUID, MOUNT_F_MKDIR | MOUNT_F_OR_ELSE, 0o755, 0, 2, strs=cgroup2,
                 what="cgroup2 /cg again"),
            tmpfs("/alt1"), tmpfs("/alt2"),
            tmpfs("/ok", or_else=1), tmpfs("/skipped"),
        ])
    res = run(steps)
    assert res.stdout.split() == ["1", "1", "1", "1", "0"], res
    assert "No such file" in res.stderr


@pytest.mark.skipif(os.path.exists("/sys/fs/selinux/enforce"), reason="the host has SELinux")
def test_mount_label_failure_names_label_and_path(root: Path) -> None:
    """Without SELinux the kernel has no security.selinux to set on the new mqueue
    mount: the step fails after the mount, naming the label and the target."""
    label = "system_u:object_r:pyrunc_test_t:s0"
    steps = [*namespaces(root), *proc_and_dev(),
             step(OP_MOUNT, MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  MOUNT_F_MKDIR | MOUNT_F_NOSYMLINK_DST | MOUNT_F_LABEL, 0o755,
                  strs=["mqueue", "/dev/mqueue", "mqueue", "", label],
                  what='mount "mqueue" on "/dev/mqueue"'),
             step(OP_READY, what="ready")]
    e = fails(steps)
    assert e.index == len(steps) - 2
    assert e.errno in (errno.EOPNOTSUPP, errno.EPERM)
    assert f'set SELinux label "{label}" on /dev/mqueue' in str(e)
    assert "\n" not in str(e), str(e)


def test_mask_path_refuses_fake_dev_null(root: Path) -> None:
    (root / "dev").mkdir(exist_ok=True)
    for name in os.listdir(root / "dev"):
        os.unlink(root / "dev" / name)
    os.symlink("/proc/sys/kernel/core_pattern", root / "dev" / "null")
    steps = [*namespaces(root), *proc_and_dev()[:1],
             step(OP_MASK_PATH, strs=["/proc/timer_list"], what='mask "/proc/timer_list"'),
             step(OP_READY, what="ready")]
    e = fails(steps)
    assert e.index == len(steps) - 2
    assert e.errno == errno.EPERM
    assert "null" in e.text


def test_mknod_symlink_mkdir_modes(root: Path) -> None:
    (root / "dev").mkdir(exist_ok=True)
    steps = container(
        root, "stat -c '%a %u:%g %F' /dev/zero /data/a/b; readlink /link; cat /link",
        after_pivot=[],
        before_pivot=[
            step(OP_MKNOD, stat.S_IFCHR | 0o640, 1, 5, 12, 34, strs=["/dev/zero"], what="mknod"),
            step(OP_MKNOD, stat.S_IFCHR | 0o600, 1, 5, 0, 0, strs=["/dev/zero"],
                 what="mknod again"),
            step(OP_MKDIR, 0o700, strs=["/data/a/b"], what="mkdir"),
            step(OP_SYMLINK, strs=["/etc/passwd", "/link"], what="symlink"),
            step(OP_SYMLINK, strs=["/elsewhere", "/link"], what="symlink again"),
        ])
    res = run(steps)
    assert res.status == 0, res.stderr
    lines = res.stdout.split("\n")
    assert lines[0] == "600 0:0 character special file"
    assert lines[1] == "700 0:0 directory"
    assert lines[2] == "/etc/passwd"
    assert lines[3].startswith("root:")


@pytest.mark.parametrize("no_openat2", ["", "1"])
def test_symlinks_resolve_inside_root(root: Path, no_openat2: str) -> None:
    escape = "../../../../../../.."
    os.symlink(escape, root / "up")
    os.symlink("/", root / "abs")
    host_marker = Path("/pyrunc-init-escape-check")
    assert not host_marker.exists()
    steps = container(
        root, "ls -d /pyrunc-init-escape-check /pyrunc-x/y",
        before_pivot=[
            step(OP_MOUNT, 0, MOUNT_F_MKDIR, 0o755,
                 strs=["tmpfs", "up/pyrunc-init-escape-check", "tmpfs", ""], what="mount 1"),
            step(OP_MKDIR, 0o755, strs=["abs/pyrunc-x/../pyrunc-x/y"], what="mkdir"),
        ])
    res = run(steps, env={"PYRUNC_INIT_NO_OPENAT2": no_openat2})
    assert res.status == 0, res.stderr
    assert not host_marker.exists()
    assert (root / "pyrunc-init-escape-check").is_dir()
    assert (root / "pyrunc-x" / "y").is_dir()


def test_chroot_instead_of_pivot(root: Path) -> None:
    steps = [*namespaces(root), *proc_and_dev(), step(OP_CHROOT, what="chroot"),
             step(OP_CHDIR, strs=["/"], what="chdir"), step(OP_READY, what="ready"),
             shell("cat /etc/hostname 2>/dev/null; ls /bin/busybox")]
    res = run(steps)
    assert res.status == 0, res.stderr
    assert res.stdout.strip().endswith("/bin/busybox")


def test_process_attributes(root: Path) -> None:
    script = ("umask; ulimit -n; cat /proc/self/oom_score_adj; cat /proc/sys/kernel/domainname; "
              "grep -E '^(NoNewPrivs|Groups)' /proc/self/status; cut -d' ' -f6 /proc/1/stat")
    steps = container(root, script, after_pivot=[
        step(OP_UMASK, 0o027, what="umask"),
        step(OP_RLIMIT, RLIMIT_NOFILE, 321, 654, what="rlimit"),
        step(OP_OOM_SCORE_ADJ, 123, what="oom_score_adj"),
        step(OP_SETDOMAINNAME, strs=["example.test"], what="setdomainname"),
        step(OP_SETGROUPS, strs=[struct.pack("<3I", 10, 20, 30)], what="setgroups"),
        step(OP_NO_NEW_PRIVS, what="no_new_privs"),
        step(OP_SETSID, what="setsid"),
    ])
    res = run(steps)
    assert res.status == 0, res.stderr
    assert [line.split() for line in res.stdout.splitlines()] == [
        ["0027"], ["321"], ["123"], ["example.test"], ["Groups:", "10", "20", "30"],
        ["NoNewPrivs:", "1"], ["1"]]


def test_time_namespace_offsets(root: Path) -> None:
    steps = container(root, "cut -d. -f1 /proc/uptime")
    steps[0:1] = [step(OP_UNSHARE, NAMESPACES | CLONE_NEWTIME, what="unshare"),
                  step(OP_TIMENS_OFFSETS, 0, 0, 10 * 86400, 0, what="time offsets")]
    res = run(steps)
    assert res.status == 0, res.stderr
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert int(res.stdout) >= 10 * 86400 + int(host_uptime) - 5


def test_write_proc(root: Path) -> None:
    steps = container(root, "cat /proc/sys/net/ipv4/ip_forward",
                      before_pivot=[step(OP_WRITE_PROC, strs=["sys/net/ipv4/ip_forward", "1"],
                                         what="sysctl")])
    res = run(steps)
    assert (res.status, res.stdout) == (0, "1\n"), res.stderr


# ---- failures ---------------------------------------------------------------


def test_mount_on_symlink_refused(root: Path) -> None:
    shutil.rmtree(root / "proc")
    os.symlink("/tmp", root / "proc")
    steps = [*namespaces(root), *proc_and_dev(), step(OP_READY, what="ready")]
    e = fails(steps)
    assert e.index == len(namespaces(root))
    assert e.errno == errno.ELOOP
    assert "/proc" in e.text
    assert str(e).startswith('mount "proc" on "/proc": ')
    assert str(e).endswith(os.strerror(errno.ELOOP))


@pytest.mark.parametrize("prog,path,err", [
    ("no-such-program", "", errno.ENOENT),
    ("/bin/no-such-program", "", errno.ENOENT),
    ("passwd", "/etc", errno.EACCES),
    ("/etc/passwd", "", errno.EACCES),
    ("etc", "/", errno.EACCES),
])
def test_check_exec(root: Path, prog: str, path: str, err: int) -> None:
    steps = container(root, "true")
    index = len(steps) - 3
    steps.insert(index, step(OP_CHECK_EXEC, strs=[prog, path], what=f'exec "{prog}"'))
    e = fails(steps)
    assert (e.index, e.errno) == (index, err)
    assert e.step is steps[index]
    assert str(e) == f'exec "{prog}": {os.strerror(err)}'


def test_check_exec_finds_program(root: Path) -> None:
    steps = container(root, "true")
    steps.insert(-3, step(OP_CHECK_EXEC, strs=["sh", ""], what="check sh"))
    steps.insert(-3, step(OP_CHECK_EXEC, strs=["busybox", "/nope:/bin"], what="check"))
    assert run(steps).status == 0


def test_exec_failure_exit_codes(root: Path) -> None:
    steps = container(root, "true")
    steps[-1] = step(OP_EXEC, 1, 1, strs=["/no/such", PATH_ENV], what="exec")
    res = run(steps)
    assert res.status == 127
    assert res.stderr == "exec /no/such: no such file or directory\n"
    steps[-1] = step(OP_EXEC, 1, 1, strs=["/etc/passwd", PATH_ENV], what="exec")
    assert run(steps).status == 126


def test_cwd_outside_root_refused(root: Path) -> None:
    outside = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
    try:
        steps = container(root, "pwd")
        chdir_index = next(i for i, s in enumerate(steps) if s.op == OP_CHDIR)
        steps[chdir_index] = step(OP_CHDIR, strs=[f"/proc/self/fd/{outside}"], what="chdir")
        e = fails(steps, inherit_fds=[outside])
    finally:
        os.close(outside)
    assert e.index == chdir_index
    assert e.errno == errno.ENOENT


@pytest.mark.parametrize("table", [
    b"\x07\x00",                                  # record header cut short
    b"\x07\x00\x05\x00\x00\x00\x00\x00getp",      # name runs past the table
    b"\x09\x00\x06\x00\x00\x00\x00\x00getpid",    # unknown action
    b"\x07\x07\x06\x00\x00\x00\x00\x00getpid",    # more than six arguments
])
def test_bad_seccomp_table_rejected(root: Path, table: bytes) -> None:
    steps = [*namespaces(root), step(OP_SECCOMP, 7, 0, 0, -1, -1, strs=["", table])]
    e = fails(steps)
    assert (e.index, e.errno) == (-1, errno.EBADMSG)


@pytest.mark.parametrize("plan", [
    b"",
    b"garbage",
    encode_plan([step(OP_READY)])[:-1],
    encode_plan([step(OP_READY)]).replace(b"PYRI", b"PYRX"),
    encode_plan([step(99)]),
    encode_plan([step(OP_MOUNT, strs=["a"])]),
    encode_plan([step(OP_SETHOSTNAME, strs=["a\0b"])]),
    encode_plan([step(OP_EXEC, 2, 0, strs=["a"])]),
    # an alternative of no steps, or of steps past the end
    encode_plan([step(OP_MOUNT, 0, MOUNT_F_OR_ELSE, 0, 0, 0, strs=["a", "b", "c", ""]),
                 step(OP_READY)]),
    encode_plan([step(OP_MOUNT, 0, MOUNT_F_OR_ELSE, 0, 0, 2, strs=["a", "b", "c", ""]),
                 step(OP_READY)]),
    # a mount to label without a label, or with an empty one
    encode_plan([step(OP_MOUNT, 0, MOUNT_F_LABEL, strs=["a", "b", "c", ""])]),
    encode_plan([step(OP_MOUNT, 0, MOUNT_F_LABEL, strs=["a", "b", "c", "", ""])]),
])
def test_bad_plan_rejected(plan: bytes) -> None:
    if not plan:
        plan = b"\0"  # an empty SEQPACKET message cannot carry a header either
    with pytest.raises(InitError) as info:
        run_encoded(plan)
    e = info.value
    assert (e.index, e.errno, e.step) == (-1, errno.EBADMSG, None)
    assert str(e).startswith("pyrunc-init: invalid plan: ")


def test_oversized_plan_rejected() -> None:
    with pytest.raises(InitError) as info:
        run_encoded(b"\0" * (PLAN_MAX_LEN + 1))
    assert (info.value.index, info.value.errno) == (-1, errno.EBADMSG)


def test_large_plan_accepted() -> None:
    filler = step(OP_UMASK, 0o22)
    count = (PLAN_MAX_LEN - 16) // len(encode_plan([filler])[16:]) - 1
    launched = run_init([filler] * count + [step(OP_READY)])
    launched.sock.close()
    _, status = os.waitpid(launched.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_bad_plan_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "made"
    steps = [step(OP_MKDIR, 0o755, strs=[str(marker)]), step(99)]
    with pytest.raises(InitError):
        run_init(steps)
    assert not marker.exists()


def test_idmap_callback_failure_kills_init(root: Path) -> None:
    pids = []

    def idmap(pid: int) -> None:
        pids.append(pid)
        raise OSError(errno.EPERM, "no maps")

    with pytest.raises(OSError):
        run_init([step(OP_UNSHARE_USER), *namespaces(root)], on_idmap=idmap)
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


def test_plan_without_fork_runs_in_stage_a(tmp_path: Path) -> None:
    launched = run_init([step(OP_READY)])
    launched.sock.close()
    _, status = os.waitpid(launched.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_eof_reports_exit_status() -> None:
    # MSG_ABORT while stage A waits for the maps: it exits 1 without a report.
    launched_steps = [step(OP_UNSHARE_USER)]

    def idmap(pid: int) -> None:
        os.kill(pid, 9)

    with pytest.raises(InitError) as info:
        run_init(launched_steps, on_idmap=idmap)
    assert "exited unexpectedly" in str(info.value)
    assert info.value.status == -9



@pytest.mark.parametrize("uid,gid", [(0xFFFFFFFF, 0), (0, 0xFFFFFFFF), (1 << 32, 1 << 32)])
def test_setid_refuses_ids_that_wrap(uid: int, gid: int) -> None:
    # (uid_t)-1 would leave setresuid's ids unchanged (still root); 1 << 32
    # would wrap around to 0.  Runs in stage A: nothing to set up.
    with pytest.raises(InitError) as info:
        run_init([step(OP_SETID, uid, gid), step(OP_READY)])
    assert (info.value.index, info.value.errno) == (0, errno.EINVAL)


def test_child_pid_always_precedes_the_childs_first_message(root: Path) -> None:
    # Stage A and stage B share the sync socket; without the fork gate the
    # child's MSG_SYNC could overtake MSG_CHILD_PID and the parent would hand
    # callbacks a pid it does not know yet.
    steps = [*namespaces(root), step(OP_SYNC, 3, what="sync 3"), step(OP_READY, what="ready"),
             shell("true")]
    for _ in range(30):
        seen: list[int] = []
        launched, out, err = launch(steps, on_sync=lambda n, pid, seen=seen: seen.append(pid))
        assert finish(launched, out, err).status == 0
        assert seen == [launched.pid]


@pytest.mark.parametrize("retry", [True, False])
def test_chdir_refused_to_root_is_retried_as_the_user(root: Path, retry: bool) -> None:
    # root without CAP_DAC_* is refused a 0700 directory of uid 1000: the
    # CHDIR_F_TRY step defers, and the CHDIR_F_RETRY step after the uid
    # change gets there (as runc's finalizeNamespace does).
    mine = root / "mine"
    mine.mkdir()
    os.chown(mine, 1000, 1000)
    mine.chmod(0o700)
    ids = (1 << 6) | (1 << 7)  # CAP_SETGID, CAP_SETUID
    steps = [
        *namespaces(root), *proc_and_dev(), step(OP_PIVOT_ROOT, what="pivot_root"),
        step(OP_CAPS, 0, ids, ids, 0, 0, CAPS_F_NO_BOUNDING, what="root without DAC caps"),
        step(OP_CHDIR, CHDIR_F_TRY, strs=["/mine"], what="chdir, as root"),
        step(OP_SETID, 1000, 1000, what="uid/gid"),
        *([step(OP_CHDIR, CHDIR_F_RETRY, strs=["/mine"], what="chdir, as the user")]
          if retry else []),
        step(OP_READY, what="ready"),
        step(OP_CLOSE_FDS, 3, what="close fds"),
        shell("pwd; id -u"),
    ]
    res = run(steps)
    assert res.status == 0, res.stderr
    assert res.stdout.split() == (["/mine", "1000"] if retry else ["/", "1000"])
    # Any other error is not deferred.
    steps[steps.index(next(s for s in steps if s.op == OP_CHDIR))] = \
        step(OP_CHDIR, CHDIR_F_TRY, strs=["/missing"], what="chdir, as root")
    e = fails(steps)
    assert e.errno == errno.ENOENT
