"""Seccomp profiles as tools write them: allow-lists older than the kernel.

Two things make an old allow-list work (issue 15, runc's behaviour):

* the filter is loaded last, so it governs the container's program and not
  pyrunc-init's own set-up (which uses openat2, faccessat2, close_range...);
* a syscall newer than every syscall the profile names fails with ENOSYS, not
  the default errno, so that glibc falls back as it would on an older kernel
  (clone3 -> clone, faccessat2 -> faccessat, ...).

A static glibc probe reports what the kernel answered, from inside.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import OTHER_RUNTIME, BundleFactory, Runtime, needs_root
from tests.helpers.seccomp_probe import build_static_probe, config_with, run

pytestmark = needs_root


PROBE_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int raw(const char *name)
{
	if (!strcmp(name, "openat2")) return SYS_openat2;
	if (!strcmp(name, "clone3")) return SYS_clone3;
	if (!strcmp(name, "faccessat2")) return SYS_faccessat2;
	if (!strcmp(name, "close_range")) return SYS_close_range;
	if (!strcmp(name, "mount_setattr")) return SYS_mount_setattr;
	if (!strcmp(name, "mincore")) return SYS_mincore;
	if (!strcmp(name, "getpid")) return SYS_getpid;
	return -1;
}

/* i386 numbers, for calls through int 0x80 (audit arch I386 on x86_64). */
static int raw32(const char *name)
{
	if (!strcmp(name, "openat2")) return 437;
	if (!strcmp(name, "clone3")) return 435;
	if (!strcmp(name, "mincore")) return 218;
	if (!strcmp(name, "getpid")) return 20;
	return -1;
}

static long int80(long nr)
{
#if defined(__x86_64__)
	long ret;

	__asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(0), "c"(0), "d"(0) : "memory");
	return ret;
#else
	(void)nr;
	return -1000;
#endif
}

/* probe raw NAME: the raw syscall with zero arguments -> "NAME errno=E"
 * probe raw32 NAME: the same through the i386 entry (x86_64 only)
 * probe spawn: posix_spawn of `sh -c "exit 7"` (glibc tries clone3 first)
 * probe access PATH: faccessat(AT_EACCESS) (glibc tries faccessat2 first)
 * probe cat PATH: open and read a file */
int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "raw")) {
		long nr = raw(argv[2]), ret;

		if (nr < 0)
			return 2;
		errno = 0;
		ret = syscall(nr, 0, 0, 0, 0);
		printf("%s errno=%d\n", argv[2], ret < 0 ? errno : 0);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "raw32")) {
		long nr = raw32(argv[2]), ret;

		if (nr < 0)
			return 2;
		ret = int80(nr);
		printf("%s errno=%ld\n", argv[2], ret < 0 && ret > -4096 ? -ret : 0);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "spawn")) {
		char *args[] = { "sh", "-c", "exit 7", NULL };
		pid_t pid;
		int status = 0, rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, args, environ);

		if (rc) {
			printf("spawn failed errno=%d\n", rc);
			return 0;
		}
		waitpid(pid, &status, 0);
		printf("spawn status=%d\n", WEXITSTATUS(status));
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "access")) {
		int rc = faccessat(AT_FDCWD, argv[2], X_OK, AT_EACCESS);

		printf("access rc=%d errno=%d\n", rc, rc ? errno : 0);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "cat")) {
		char buf[256];
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));

		printf("cat %s\n", n < 0 ? strerror(errno) : "ok");
		return 0;
	}
	return 2;
}
"""

# A docker-style allow-list from before openat2 and friends (Linux 5.3-5.8):
# no clone3, close_range, openat2, faccessat2, execveat, pidfd_*, fsopen,
# fsmount, open_tree, move_mount, mount_setattr, epoll_pwait2...  The newest
# syscall it names is rseq (334 on x86_64).
OLD_ALLOW_LIST = [
    "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "clock_getres", "clock_gettime", "clock_nanosleep", "clone",
    "close", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait", "eventfd", "eventfd2", "execve",
    "exit", "exit_group", "faccessat", "fadvise64", "fallocate", "fchdir", "fchmod",
    "fchmodat", "fchown", "fchownat", "fcntl", "fdatasync", "flock", "fork", "fstat",
    "fstatfs", "fsync", "ftruncate", "futex", "getcwd", "getdents", "getdents64", "getegid",
    "geteuid", "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp",
    "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit",
    "getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid",
    "getxattr", "inotify_add_watch", "inotify_init1", "ioctl", "kill", "lchown", "link",
    "linkat", "listen", "lseek", "lstat", "madvise", "memfd_create", "mkdir", "mkdirat",
    "mknodat", "mmap", "mprotect", "mremap", "munmap", "nanosleep", "newfstatat", "open",
    "openat", "pause", "pipe", "pipe2", "poll", "ppoll", "prctl", "pread64", "preadv",
    "prlimit64", "pselect6", "pwrite64", "pwritev", "read", "readlink", "readlinkat", "readv",
    "recvfrom", "recvmsg", "rename", "renameat", "renameat2", "restart_syscall", "rmdir",
    "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "sched_getaffinity", "sched_yield",
    "select", "sendfile", "sendmmsg", "sendmsg", "sendto", "set_robust_list",
    "set_tid_address", "setgid", "setgroups", "setitimer", "setpgid", "setresgid",
    "setresuid", "setsid", "setsockopt", "setuid", "shutdown", "sigaltstack", "socket",
    "socketpair", "stat", "statfs", "statx", "symlink", "symlinkat", "sysinfo", "tgkill",
    "time", "times", "umask", "uname", "unlink", "unlinkat", "utimensat", "vfork", "wait4",
    "waitid", "write", "writev",
]
NEWER = ["openat2", "clone3", "faccessat2", "close_range", "mount_setattr"]

OLD_PROFILE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [{"names": OLD_ALLOW_LIST, "action": "SCMP_ACT_ALLOW"}],
}


@pytest.fixture(scope="session")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static glibc probe, to be bind-mounted at /tmp/probe."""
    return build_static_probe(tmp_path_factory, "glibcprobe", PROBE_SOURCE, "-Wall", "-Werror")


@pytest.mark.parametrize("nnp", [True, False])
@pytest.mark.parametrize("args,expected", [
    (["echo", "hello"], "hello\n"),
    (["ls", "/etc/hostname"], "/etc/hostname\n"),
    (["sh", "-c", "cat /etc/hostname > /tmp/copy && cat /tmp/copy | wc -l; (echo sub)"],
     "1\nsub\n"),
])
def test_old_allow_list_runs_busybox(runtime: Runtime, bundle: BundleFactory, args: list[str],
                                     expected: str, nnp: bool) -> None:
    status, out, err = run(runtime, bundle, config_with(bundle, args, OLD_PROFILE, nnp=nnp))
    assert (status, out) == (0, expected), err


@pytest.mark.parametrize("nnp", [True, False])
def test_old_allow_list_runs_glibc(runtime: Runtime, bundle: BundleFactory, probe_dir: Path,
                                   nnp: bool) -> None:
    # glibc 2.34+ tries clone3 for posix_spawn and faccessat2 for AT_EACCESS
    # and falls back only on ENOSYS.
    script = ("/tmp/probe/probe spawn; /tmp/probe/probe access /bin/sh; "
              "/tmp/probe/probe cat /etc/hostname")
    status, out, err = run(runtime, bundle, config_with(bundle, ["sh", "-c", script],
                                                        OLD_PROFILE, probe_dir, nnp))
    assert status == 0, err
    assert out.splitlines() == ["spawn status=7", "access rc=0 errno=0", "cat ok"]


@pytest.mark.parametrize("nnp", [True, False])
def test_newer_syscalls_are_enosys(runtime: Runtime, bundle: BundleFactory, probe_dir: Path,
                                   nnp: bool) -> None:
    script = "; ".join(f"/tmp/probe/probe raw {n}" for n in [*NEWER, "mincore"])
    status, out, err = run(runtime, bundle, config_with(bundle, ["sh", "-c", script],
                                                        OLD_PROFILE, probe_dir, nnp))
    assert status == 0, err
    # Newer than the profile: ENOSYS; older but not listed: the default errno.
    assert out.splitlines() == [f"{n} errno={errno.ENOSYS}" for n in NEWER] + \
        [f"mincore errno={errno.EPERM}"]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="int 0x80 is x86_64's i386 entry")
def test_enosys_per_architecture(runtime: Runtime, bundle: BundleFactory,
                                 probe_dir: Path) -> None:
    # The same profile through the i386 entry: compared with the largest i386
    # number the profile names (rseq, 386), not the x86_64 one.
    script = "; ".join(f"/tmp/probe/probe raw32 {n}" for n in ["openat2", "clone3", "mincore",
                                                             "getpid"])
    status, out, err = run(runtime, bundle, config_with(bundle, ["sh", "-c", script],
                                                        OLD_PROFILE, probe_dir))
    assert status == 0, err
    assert out.splitlines() == [f"openat2 errno={errno.ENOSYS}", f"clone3 errno={errno.ENOSYS}",
                                f"mincore errno={errno.EPERM}", "getpid errno=0"]


@pytest.mark.parametrize("default,errno_ret,stub", [
    ("SCMP_ACT_ERRNO", errno.EACCES, True),
    ("SCMP_ACT_KILL_PROCESS", None, True),
    ("SCMP_ACT_LOG", None, False),   # permissive defaults get no stub (runc)
    ("SCMP_ACT_ALLOW", None, False),
])
def test_enosys_stub_follows_the_default_action(runtime: Runtime, bundle: BundleFactory,
                                                probe_dir: Path, default: str,
                                                errno_ret: int | None, stub: bool) -> None:
    profile: dict[str, Any] = {**OLD_PROFILE, "defaultAction": default}
    if errno_ret is not None:
        profile["defaultErrnoRet"] = errno_ret
    if default in ("SCMP_ACT_LOG", "SCMP_ACT_ALLOW"):
        profile["syscalls"] = [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]
    status, out, err = run(runtime, bundle, config_with(
        bundle, ["/tmp/probe/probe", "raw", "mount_setattr"], profile, probe_dir))
    assert status == 0, err
    if stub:
        assert out == f"mount_setattr errno={errno.ENOSYS}\n"
    else:
        # Reaches the kernel, which refuses the empty arguments.
        assert out.startswith("mount_setattr errno=") and \
            int(out.split("=")[1]) not in (0, errno.ENOSYS, errno.EPERM), out


def test_enosys_without_architectures(runtime: Runtime, bundle: BundleFactory,
                                      probe_dir: Path) -> None:
    # No "architectures": the filter still governs the native one (runc since
    # 1.1.15/1.2; 1.1.5 puts no stub in front then and returns EPERM).
    if OTHER_RUNTIME:
        pytest.xfail("runc 1.1.5 builds the ENOSYS stub for listed architectures only")
    profile = {k: v for k, v in OLD_PROFILE.items() if k != "architectures"}
    status, out, err = run(runtime, bundle, config_with(
        bundle, ["/tmp/probe/probe", "raw", "openat2"], profile, probe_dir))
    assert status == 0, err
    assert out == f"openat2 errno={errno.ENOSYS}\n"


@pytest.mark.parametrize("nnp", [True, False])
def test_getcwd_denied_still_starts(runtime: Runtime, bundle: BundleFactory, nnp: bool) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}
    cfg = config_with(bundle, ["echo", "started"], profile, nnp=nnp)
    cfg["process"]["cwd"] = "/tmp"
    if OTHER_RUNTIME and not nnp:
        pytest.xfail("runc verifies the cwd under the filter without noNewPrivileges")
    status, out, err = run(runtime, bundle, cfg)
    assert (status, out) == (0, "started\n"), err


@pytest.mark.parametrize("nnp", [True, False])
def test_what_the_init_needs_is_denied(runtime: Runtime, bundle: BundleFactory, nnp: bool) -> None:
    # Everything pyrunc-init uses for itself, denied with an errno that is
    # not ENOSYS (so no fallback hides a use): the container still starts.
    names = ["openat2", "faccessat2", "execveat", "close_range", "getcwd", "statx", "fstat",
             "newfstatat", "fcntl", "getdents64", "openat", "open", "readlink", "readlinkat",
             "prctl", "setresuid", "setresgid", "setgroups", "chdir", "umask", "memfd_create",
             "pidfd_open", "poll", "ppoll", "pipe2", "clone", "clone3",
             "access", "faccessat", "stat", "lstat"]
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno.EACCES}]}
    if nnp:
        # capset only runs under the filter without no_new_privs.
        profile["syscalls"][0]["names"].append("capset")
    cfg = config_with(bundle, ["echo", "started"], profile, nnp=nnp)
    cfg["process"]["user"] = {"uid": 65534, "gid": 65534}
    cfg["process"]["cwd"] = "/tmp"
    if OTHER_RUNTIME:
        pytest.xfail("runc runs Go code (and its fd sweep, caps, ids, chdir) under the filter")
    status, out, err = run(runtime, bundle, cfg)
    assert (status, out) == (0, "started\n"), err


# What runs under the filter, after it is loaded, besides the container's
# program: the execve of it, and without noNewPrivileges the capset that
# drops the CAP_SYS_ADMIN loading the filter needed.  (With a listener: one
# sendmsg and closes; with startContainer hooks: the hooks, as in runc.)
AFTER_THE_FILTER = {True: ["execve"], False: ["execve", "capset"]}
# The static glibc probe's own needs, found with strace.
PROBE_NEEDS = ["arch_prctl", "brk", "set_tid_address", "set_robust_list", "rseq",
               "prlimit64", "readlink", "readlinkat", "getrandom", "mprotect", "getpid", "fstat",
               "newfstatat", "write", "exit_group"]


@pytest.mark.parametrize("nnp", [True, False])
def test_minimal_allow_list(runtime: Runtime, bundle: BundleFactory, probe_dir: Path,
                            nnp: bool) -> None:
    profile = {"defaultAction": "SCMP_ACT_KILL_PROCESS",
               "syscalls": [{"names": AFTER_THE_FILTER[nnp] + PROBE_NEEDS,
                             "action": "SCMP_ACT_ALLOW"}]}
    cfg = config_with(bundle, ["/tmp/probe/probe", "raw", "getpid"], profile, probe_dir, nnp)
    cfg["process"]["user"] = {"uid": 65534, "gid": 65534}
    if OTHER_RUNTIME:
        pytest.xfail("runc runs Go code and its fifo handshake under the filter")
    status, out, err = run(runtime, bundle, cfg)
    assert (status, out) == (0, "getpid errno=0\n"), err


@pytest.mark.parametrize("nnp", [True, False])
def test_start_container_hook_runs_under_the_filter(runtime: Runtime, bundle: BundleFactory,
                                                    tmp_path: Path, nnp: bool) -> None:
    # runc loads the filter before the startContainer hooks, with and without
    # noNewPrivileges: a hook the profile blocks fails, and the container's
    # process never runs.
    shared = tmp_path / "shared"
    shared.mkdir()
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    cfg = config_with(bundle, ["sh", "-c", "echo ran > /shared/ran"], profile, nnp=nnp)
    cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                          "options": ["rbind"]})
    cfg["hooks"] = {"startContainer": [{"path": "/bin/mkdir", "args": ["mkdir", "/tmp/h"]}]}
    cid = runtime.new_id("sp")
    res = runtime("create", "--bundle", str(bundle(config=cfg)), cid)
    assert res.returncode == 0, res.stderr.decode()
    res = runtime("start", cid)
    if not OTHER_RUNTIME:
        # pyrunc reports the hook's failure from `start`; runc 1.1.5 answers
        # `start` before its hooks run, and the container just dies
        # (docs/spec-conformance.md, "Hooks").
        assert res.returncode == 1, (res.stdout, res.stderr)
        lines = res.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "startContainer hook #0 (/bin/mkdir): exit status 1" \
            in lines[0], lines
    # The init is dead or dying: wait for it (a generous bound, not a timing).
    for _ in range(600):
        if runtime.state(cid)["status"] == "stopped":
            break
        time.sleep(0.05)
    assert runtime.state(cid)["status"] == "stopped"
    assert not (shared / "ran").exists()


@pytest.mark.parametrize("profile", [
    OLD_PROFILE,
    {"defaultAction": "SCMP_ACT_ALLOW",
     "syscalls": [{"names": ["pidfd_open"], "action": "SCMP_ACT_ERRNO"}]},
], ids=["old-allow-list", "pidfd_open-denied"])
def test_start_container_hook_under_an_old_profile(runtime: Runtime, bundle: BundleFactory,
                                                   tmp_path: Path,
                                                   profile: dict[str, Any]) -> None:
    # The hook runner works with what such a profile allows (no pidfd_open:
    # it falls back to waitpid), and the hook's effect is there.
    shared = tmp_path / "shared"
    shared.mkdir()
    cfg = config_with(bundle, ["sh", "-c", "cat /shared/hook"], profile)
    cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                          "options": ["rbind"]})
    cfg["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo from-hook > /shared/hook"]}]}
    status, out, err = run(runtime, bundle, cfg)
    assert (status, out) == (0, "from-hook\n"), err
