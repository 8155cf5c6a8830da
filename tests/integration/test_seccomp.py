"""linux.seccomp in real containers: actions, argument filters, flags, a
docker-shaped profile, the notify listener, and where the filter is loaded.

A tiny static probe (compiled here with gcc -static) makes raw syscalls and
prints what came back, so a result is never a shell's interpretation.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import OTHER_RUNTIME, BundleFactory, Runtime, error_line, needs_root, runc_differs
from tests.helpers import seccomp_probe
from tests.helpers.seccomp_probe import build_static_probe, run

pytestmark = needs_root

PROBE_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* probe NAME [ARG0]: call the syscall raw, print "ret=R errno=E". */
int main(int argc, char **argv)
{
	long nr = -1, ret;
	unsigned long a0 = argc > 2 ? strtoul(argv[2], NULL, 0) : 0;

	if (argc < 2)
		return 2;
	if (!strcmp(argv[1], "getpid")) nr = SYS_getpid;
	else if (!strcmp(argv[1], "personality")) nr = SYS_personality;
	else if (!strcmp(argv[1], "getppid")) nr = SYS_getppid;
	else if (!strcmp(argv[1], "mkdir")) nr = SYS_mkdir;
	if (nr < 0)
		return 2;
	errno = 0;
	if (nr == SYS_mkdir)
		ret = syscall(nr, argv[2], 0755);
	else
		ret = syscall(nr, a0);
	printf("ret=%ld errno=%d\n", ret, ret < 0 ? errno : 0);
	return 0;
}
"""

ALLOW_LIST = [
    # What busybox sh and its applets need, plus what runs between the filter
    # and the user process (the exec path lookup and execve itself).
    "access", "arch_prctl", "brk", "capget", "capset", "chdir", "close", "close_range",
    "dup", "dup2", "dup3", "execve", "execveat", "exit", "exit_group", "faccessat",
    "faccessat2", "fcntl", "fstat", "fstatfs", "futex", "getcwd", "getdents64", "getegid",
    "geteuid", "getgid", "getpgrp", "getpid", "getppid", "getrandom", "getrlimit",
    "getuid", "ioctl", "lseek", "lstat", "madvise", "mkdir", "mkdirat", "mmap", "mprotect",
    "munmap", "newfstatat", "open", "openat", "openat2", "pipe", "pipe2", "poll", "prctl", "pread64",
    "prlimit64", "read", "readlink", "readlinkat", "rseq", "rt_sigaction",
    "rt_sigprocmask", "rt_sigreturn", "sched_getaffinity", "sendfile", "set_robust_list",
    "set_tid_address", "setgid", "setgroups", "setresgid", "setresuid", "setsid", "setuid",
    "sigaltstack", "stat", "statfs", "statx", "sysinfo", "umask", "uname", "unlink",
    "unlinkat", "vfork", "clone", "clone3", "wait4", "write", "writev",
    "no_such_syscall_in_any_kernel",
]


@pytest.fixture(scope="session")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static probe, to be bind-mounted at /tmp/probe."""
    return build_static_probe(tmp_path_factory, "probe", PROBE_SOURCE)


# Every config here has a writable root (a test makes a directory in it).
config_with = functools.partial(seccomp_probe.config_with, writable_root=True)


def probe(runtime: Runtime, bundle: BundleFactory, probe_dir: Path, seccomp: dict[str, Any],
          *args: str, nnp: bool = True) -> str:
    status, out, err = run(runtime, bundle,
                           config_with(bundle, ["/tmp/probe/probe", *args], seccomp, probe_dir, nnp))
    assert status == 0, err
    return out.strip()


ALLOW = {"defaultAction": "SCMP_ACT_ALLOW"}


def test_mkdir_eperm(runtime: Runtime, bundle: BundleFactory) -> None:
    sc = {**ALLOW, "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    status, out, err = run(runtime, bundle,
                           config_with(bundle, ["sh", "-c", "mkdir /tmp/x; echo rc=$?"], sc))
    assert status == 0, err
    assert "Operation not permitted" in err or "Operation not permitted" in out
    assert "rc=1" in out


def test_getpid_errno_42(runtime: Runtime, bundle: BundleFactory, probe_dir: Path) -> None:
    sc = {**ALLOW, "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                                 "errnoRet": 42}]}
    assert probe(runtime, bundle, probe_dir, sc, "getpid") == "ret=-1 errno=42"
    # getppid is untouched.
    assert probe(runtime, bundle, probe_dir, sc, "getppid") == "ret=0 errno=0"


def test_default_errno_with_allow_list(runtime: Runtime, bundle: BundleFactory,
                                       probe_dir: Path) -> None:
    names = [n for n in ALLOW_LIST if n != "getppid"]
    sc = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS,
          "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}
    assert probe(runtime, bundle, probe_dir, sc, "getppid") == f"ret=-1 errno={errno.ENOSYS}"
    assert probe(runtime, bundle, probe_dir, sc, "getpid") == "ret=1 errno=0"


@pytest.mark.parametrize("op,value,value_two,arg,denied", [
    ("SCMP_CMP_EQ", 0x0008, 0, 0x0008, True),
    ("SCMP_CMP_EQ", 0x0008, 0, 0x0000, False),
    ("SCMP_CMP_NE", 0xFFFFFFFF, 0, 0x0008, True),
    ("SCMP_CMP_NE", 0x0008, 0, 0x0008, False),
    ("SCMP_CMP_GT", 0x0008, 0, 0x0009, True),
    ("SCMP_CMP_GE", 0x0008, 0, 0x0008, True),
    ("SCMP_CMP_LT", 0x0008, 0, 0x0007, True),
    ("SCMP_CMP_LE", 0x0008, 0, 0x0009, False),
    ("SCMP_CMP_MASKED_EQ", 0x00FF, 0x0008, 0x0408, True),
    ("SCMP_CMP_MASKED_EQ", 0x00FF, 0x0008, 0x0409, False),
])
def test_argument_filters(runtime: Runtime, bundle: BundleFactory, probe_dir: Path, op: str,
                          value: int, value_two: int, arg: int, denied: bool) -> None:
    rule = {"index": 0, "op": op, "value": value, "valueTwo": value_two}
    sc = {**ALLOW, "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                 "errnoRet": 33, "args": [rule]}]}
    out = probe(runtime, bundle, probe_dir, sc, "personality", hex(arg))
    assert (out == "ret=-1 errno=33") is denied, out


def test_repeated_index_means_any(runtime: Runtime, bundle: BundleFactory,
                                  probe_dir: Path) -> None:
    # Two conditions on one argument: each its own rule (runc), so either matches.
    rules = [{"index": 0, "op": "SCMP_CMP_EQ", "value": 1},
             {"index": 0, "op": "SCMP_CMP_EQ", "value": 2}]
    sc = {**ALLOW, "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                 "errnoRet": 33, "args": rules}]}
    assert probe(runtime, bundle, probe_dir, sc, "personality", "2") == "ret=-1 errno=33"
    assert probe(runtime, bundle, probe_dir, sc, "personality", "1") == "ret=-1 errno=33"
    assert probe(runtime, bundle, probe_dir, sc, "personality", "0xffffffff") != \
        "ret=-1 errno=33"


def test_kill_process_is_sigsys(runtime: Runtime, bundle: BundleFactory,
                                probe_dir: Path) -> None:
    sc = {**ALLOW, "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    status, _, _ = run(runtime, bundle,
                       config_with(bundle, ["/tmp/probe/probe", "getppid"], sc, probe_dir))
    assert status == 128 + signal.SIGSYS


@pytest.mark.parametrize("action", ["SCMP_ACT_TRAP", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"])
def test_trap_and_kill_thread(runtime: Runtime, bundle: BundleFactory, probe_dir: Path,
                              action: str) -> None:
    sc = {**ALLOW, "syscalls": [{"names": ["getppid"], "action": action}]}
    status, _, _ = run(runtime, bundle,
                       config_with(bundle, ["/tmp/probe/probe", "getppid"], sc, probe_dir))
    # TRAP raises SIGSYS; killing the only thread kills the process with SIGSYS.
    assert status == 128 + signal.SIGSYS


@runc_differs("runc 1.1.5 refuses every seccomp flag (seccomp flags are not yet supported by runc)")
def test_log_allows(runtime: Runtime, bundle: BundleFactory, probe_dir: Path) -> None:
    sc = {**ALLOW, "flags": ["SECCOMP_FILTER_FLAG_LOG"],
          "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"}]}
    assert probe(runtime, bundle, probe_dir, sc, "getppid") == "ret=0 errno=0"


def test_trace_without_tracer_is_enosys(runtime: Runtime, bundle: BundleFactory,
                                        probe_dir: Path) -> None:
    sc = {**ALLOW, "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRACE",
                                 "errnoRet": 7}]}
    # No tracer attached: the kernel fails the syscall with ENOSYS.
    assert probe(runtime, bundle, probe_dir, sc, "getppid") == f"ret=-1 errno={errno.ENOSYS}"


@runc_differs("runc 1.1.5 refuses every seccomp flag (seccomp flags are not yet supported by runc)")
def test_flags_and_architectures(runtime: Runtime, bundle: BundleFactory,
                                 probe_dir: Path) -> None:
    sc = {**ALLOW, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
          "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_LOG"],
          "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]}
    assert probe(runtime, bundle, probe_dir, sc, "getpid") == "ret=-1 errno=42"


def test_unknown_syscall_names_ignored(runtime: Runtime, bundle: BundleFactory,
                                       probe_dir: Path) -> None:
    sc = {**ALLOW, "syscalls": [
        {"names": ["no_such_syscall", "getpid", "x" * 300], "action": "SCMP_ACT_ERRNO",
         "errnoRet": 42}]}
    assert probe(runtime, bundle, probe_dir, sc, "getpid") == "ret=-1 errno=42"


DOCKER_SHAPED = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ALLOW_LIST, "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
    ],
}


def test_docker_shaped_profile(runtime: Runtime, bundle: BundleFactory) -> None:
    script = ("echo hello > /tmp/f && cat /tmp/f && ls / >/dev/null && mkdir -p /tmp/a/b && "
              "(echo sub) && echo $(echo nested) && id -u && "
              "if chroot / true 2>/dev/null; then echo chroot-allowed; fi; echo done")
    status, out, err = run(runtime, bundle, config_with(bundle, ["sh", "-c", script],
                                                        DOCKER_SHAPED, nnp=False))
    assert status == 0, (out, err)
    assert out.split() == ["hello", "sub", "nested", "0", "done"]


def test_filter_loaded_after_setup_with_nnp(runtime: Runtime, bundle: BundleFactory) -> None:
    # Denying what the init itself uses (ids, caps, chdir, fd sweep) must not
    # break the start: with no_new_privs the filter is the last step.
    sc = {**ALLOW, "syscalls": [{"names": ["setresuid", "setresgid", "setgroups", "capset",
                                           "chdir", "close_range", "umask"],
                                 "action": "SCMP_ACT_ERRNO"}]}
    cfg = config_with(bundle, ["sh", "-c", "cd /tmp || echo denied"], sc)
    cfg["process"]["user"] = {"uid": 65534, "gid": 65534}
    cfg["process"]["cwd"] = "/tmp"
    status, out, err = run(runtime, bundle, cfg)
    assert status == 0, err
    assert "denied" in out


def test_without_nnp_filter_loads_while_privileged(runtime: Runtime, bundle: BundleFactory,
                                                   probe_dir: Path) -> None:
    # No CAP_SYS_ADMIN for the container process: the filter must still load.
    sc = {**ALLOW, "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                                 "errnoRet": 42}]}
    cfg = config_with(bundle, ["/tmp/probe/probe", "getpid"], sc, probe_dir, nnp=False)
    cfg["process"]["user"] = {"uid": 65534, "gid": 65534}
    status, out, err = run(runtime, bundle, cfg)
    assert status == 0, err
    assert out.strip() == "ret=-1 errno=42"


def test_exec_gets_the_filter(runtime: Runtime, bundle: BundleFactory, probe_dir: Path) -> None:
    sc = {**ALLOW, "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                                 "errnoRet": 42}]}
    cid = runtime.new_id("sc")
    cfg = config_with(bundle, ["sleep", "30"], sc, probe_dir)
    runtime("run", "-d", "--bundle", str(bundle(config=cfg)), cid, check=True)
    res = runtime("exec", cid, "/tmp/probe/probe", "getpid", check=True)
    assert res.stdout.decode().strip() == "ret=-1 errno=42"


@pytest.mark.parametrize("change,message,runc_message", [
    ({"defaultAction": "SCMP_ACT_NOTIFY"},
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action",
     "SCMP_ACT_NOTIFY cannot be used as default action"),
    pytest.param({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
                 "linux.seccomp.listenerPath: seccomp listenerPath is not set (SCMP_ACT_NOTIFY is used)",
                 None, marks=runc_differs("runc 1.1.5's create hangs with SCMP_ACT_NOTIFY and no listenerPath")),
    pytest.param({"syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "errnoRet": 3}]},
                 "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_ALLOW takes no errno",
                 None, marks=runc_differs("runc 1.1.5 accepts errnoRet on SCMP_ACT_ALLOW")),
    ({"syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index: 6 is not a syscall argument index (0..5)",
     "syscalls only have up to 6 arguments"),
    ({"listenerPath": "/nonexistent/agent.sock",
      "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.listenerPath: failed to connect with seccomp agent",
     "failed to connect with seccomp agent"),
])
def test_bad_profiles_leave_nothing(runtime: Runtime, bundle: BundleFactory, change: dict[str, Any],
                                    message: str, runc_message: str | None) -> None:
    cfg = config_with(bundle, ["true"], {**ALLOW, **change})
    cid = runtime.new_id("sc")
    res = runtime("create", "--bundle", str(bundle(config=cfg)), cid, timeout=30)
    assert res.returncode == 1
    # runc words these errors its own way, without the JSON field.
    assert (runc_message if OTHER_RUNTIME else message) in error_line(res), res.stderr
    assert not (runtime.root / cid).exists()


# ---- the notify listener ------------------------------------------------------

class _NotifSizes(ctypes.Structure):
    _fields_ = [("seccomp_notif", ctypes.c_uint16), ("seccomp_notif_resp", ctypes.c_uint16),
                ("seccomp_data", ctypes.c_uint16)]


class _Data(ctypes.Structure):
    _fields_ = [("nr", ctypes.c_int), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6)]


class _Notif(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("data", _Data)]


class _Resp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64), ("error", ctypes.c_int32),
                ("flags", ctypes.c_uint32)]


def _iowr(nr: int, size: int) -> int:
    # _IOWR('!', nr, size) as <linux/seccomp.h> defines SECCOMP_IOCTL_NOTIF_*.
    return (3 << 30) | (size << 16) | (ord("!") << 8) | nr


NOTIF_RECV = _iowr(0, ctypes.sizeof(_Notif))
NOTIF_SEND = _iowr(1, ctypes.sizeof(_Resp))
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1


class Agent:
    """A seccomp agent: accepts one connection, keeps the state, answers notifications.

    mkdir(2) is answered with success (0) without being done; everything
    else notified is let through (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.state: dict[str, Any] = {}
        self.seen: list[int] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            conn, _ = self.server.accept()
            with conn:
                data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 4)
            self.state = json.loads(data)
            assert len(fds) == 1
            notify_fd = fds[0]
            import select

            while True:
                ready, _, _ = select.select([notify_fd], [], [], 30)
                if not ready:
                    return
                req = _Notif()
                if libc.ioctl(notify_fd, NOTIF_RECV, ctypes.byref(req)) < 0:
                    return  # the filter's last user is gone
                self.seen.append(req.data.nr)
                resp = _Resp(id=req.id)
                if req.data.nr == 83:  # mkdir on x86_64: pretend it worked
                    resp.val, resp.error = 0, 0
                else:
                    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE
                libc.ioctl(notify_fd, NOTIF_SEND, ctypes.byref(resp))
        except BaseException as e:  # reported by the test
            self.error = e

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    if os.uname().machine != "x86_64":
        pytest.skip("the agent decodes x86_64 syscall numbers")
    a = Agent(tmp_path / "agent.sock")
    yield a
    a.close()


@runc_differs("runc 1.1.5 refuses every seccomp flag (seccomp flags are not yet supported by runc)")
def test_notify_listener_answers(runtime: Runtime, bundle: BundleFactory, agent: Agent) -> None:
    # TSYNC with a listener needs TSYNC_ESRCH; WAIT_KILLABLE_RECV needs the listener.
    sc = {**ALLOW, "listenerPath": str(agent.path), "listenerMetadata": "hello agent",
          "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    cfg = config_with(bundle, ["sh", "-c", "mkdir /faked && echo made; ls -d /faked || "
                                           "echo not-there"], sc)
    cfg["annotations"] = {"org.example/key": "value"}
    cid = runtime.new_id("sc")
    b = bundle(config=cfg)
    res = runtime("run", "--bundle", str(b), cid, timeout=60)
    agent.thread.join(10)
    assert agent.error is None, agent.error
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().split() == ["made", "not-there"]
    assert 83 in agent.seen
    st = agent.state
    assert st["fds"] == ["seccompFd"]
    assert st["metadata"] == "hello agent"
    assert st["pid"] > 0 and st["state"]["pid"] == st["pid"]
    assert st["state"]["id"] == cid
    assert st["state"]["status"] == "creating"
    assert st["state"]["bundle"] == str(b)
    assert st["state"]["annotations"] == {"org.example/key": "value"}
    assert "ociVersion" in st and "ociVersion" in st["state"]


def test_notify_listener_for_exec(runtime: Runtime, bundle: BundleFactory,
                                  tmp_path: Path) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("the agent decodes x86_64 syscall numbers")
    first = Agent(tmp_path / "agent.sock")
    try:
        sc = {**ALLOW, "listenerPath": str(first.path),
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
        cid = runtime.new_id("sc")
        runtime("run", "-d", "--bundle", str(bundle(config=config_with(bundle, ["sleep", "30"],
                                                                         sc))), cid, check=True)
        first.thread.join(0.5)
        init_pid = runtime.state(cid)["pid"]
    finally:
        first.close()
    # The exec'd process gets the same filter and a listener connection of its own.
    os.unlink(first.path)
    second = Agent(first.path)
    try:
        res = runtime("exec", cid, "sh", "-c", "mkdir /faked2 && echo made", timeout=60)
        second.thread.join(10)
        assert second.error is None, second.error
        assert res.returncode == 0, res.stderr
        assert res.stdout.decode().split() == ["made"]
        st = second.state
        assert st["state"]["status"] == "running"
        assert st["state"]["pid"] == init_pid
        assert st["pid"] != init_pid
    finally:
        second.close()
