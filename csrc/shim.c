/* Implementation of csrc/shim.h; see the contracts there. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sched.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define RET(expr) do { long r_ = (expr); return r_ < 0 ? -errno : (int)r_; } while (0)

int pyrunc_spawn(int exe_fd, char *const argv[], char *const envp[])
{
	sigset_t all, old;
	pid_t pid;
	int err;

	/* The vfork child shares our memory: no signal handler may run in it. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0) {
		syscall(SYS_execveat, exe_fd, "", argv, envp, AT_EMPTY_PATH);
		_exit(127);
	}
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -err : pid;
}

int pyrunc_set_child_subreaper(int on)
{
	RET(prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0));
}

int pyrunc_setns(int fd, int nstype)
{
	RET(setns(fd, nstype));
}

int pyrunc_mount(const char *source, const char *target, const char *fstype,
		 unsigned long flags, const char *data)
{
	RET(mount(source, target, fstype, flags, data));
}

int pyrunc_umount2(const char *target, int flags)
{
	RET(umount2(target, flags));
}

int pyrunc_ptpeer(int master_fd, int flags)
{
	RET(ioctl(master_fd, TIOCGPTPEER, flags));
}
