/* Implementation of csrc/shim.h; see the contracts there. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sched.h>
#include <stdint.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define RET(expr) do { long r_ = (expr); return r_ < 0 ? -errno : (int)r_; } while (0)

/* Every fd >= 3 that is not in keep[] (sorted, ascending) becomes
 * close-on-exec.  Runs in the vfork child: raw syscalls only, no allocation. */
static int cloexec_all_but(const int *keep, int nkeep)
{
	unsigned int from = 3;

	for (int i = 0; i <= nkeep; i++) {
		unsigned int upto = i < nkeep ? (unsigned int)keep[i] : ~0u;

		if (i < nkeep && keep[i] < (int)from)
			continue;
		if (upto > from &&
		    syscall(SYS_close_range, from, upto - 1, CLOSE_RANGE_CLOEXEC) < 0)
			return -errno;
		if (i < nkeep)
			from = (unsigned int)keep[i] + 1;
	}
	return 0;
}

/* The fallback for kernels without close_range (< 5.11): walk /proc/self/fd
 * with getdents64 into a stack buffer. */
static int cloexec_by_listing(const int *keep, int nkeep)
{
	char buf[4096];
	int dfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
			       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n;

	if (dfd < 0)
		return -errno;
	while ((n = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n; ) {
			struct { uint64_t ino; int64_t off; unsigned short reclen;
				 unsigned char type; char name[]; } *d = (void *)(buf + off);
			int fd = 0, kept = 0;
			const char *c = d->name;

			off += d->reclen;
			if (*c < '0' || *c > '9')
				continue;
			for (; *c >= '0' && *c <= '9'; c++)
				fd = fd * 10 + (*c - '0');
			for (int i = 0; i < nkeep; i++)
				kept |= keep[i] == fd;
			if (fd >= 3 && fd != dfd && !kept)
				syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
		}
	}
	syscall(SYS_close, dfd);
	return n < 0 ? -errno : 0;
}

int pyrunc_spawn(int exe_fd, char *const argv[], char *const envp[],
		 const int *keep, int nkeep)
{
	sigset_t all, old;
	pid_t pid;
	int err;

	/* The vfork child shares our memory: no signal handler may run in it. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0) {
		/* The child has its own fd table (no CLONE_FILES): what the caller
		 * of pyrunc left open (a test harness's fds 3 and 4...) must not
		 * reach pyrunc-init, which lives in the container from `create`
		 * to `start` (CVE-2024-21626 class). */
		if (cloexec_all_but(keep, nkeep) < 0 && cloexec_by_listing(keep, nkeep) < 0)
			_exit(126);
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

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	RET(syscall(SYS_bpf, cmd, attr, sizeof(*attr)));
}

int pyrunc_bpf_prog_load_cgroup_device(const void *insns, int n, char *log, int log_size)
{
	static const char license[] = "Apache-2.0";
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)n;
	attr.license = (uint64_t)(uintptr_t)license;
	if (log != NULL && log_size > 0) {
		log[0] = '\0';
		attr.log_buf = (uint64_t)(uintptr_t)log;
		attr.log_size = (uint32_t)log_size;
		attr.log_level = 1;
	}
	/* The kernel truncates a longer name; 15 chars fit in BPF_OBJ_NAME_LEN. */
	strncpy(attr.prog_name, "pyrunc_devices", sizeof(attr.prog_name) - 1);
	return sys_bpf(BPF_PROG_LOAD, &attr);
}

int pyrunc_bpf_prog_attach(int prog_fd, int cgroup_fd, int attach_type, unsigned flags, int replace_fd)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)cgroup_fd;
	attr.attach_bpf_fd = (uint32_t)prog_fd;
	attr.attach_type = (uint32_t)attach_type;
	attr.attach_flags = flags;
	if (flags & BPF_F_REPLACE)
		attr.replace_bpf_fd = (uint32_t)replace_fd;
	return sys_bpf(BPF_PROG_ATTACH, &attr);
}

int pyrunc_bpf_prog_detach2(int prog_fd, int cgroup_fd, int attach_type)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)cgroup_fd;
	attr.attach_bpf_fd = (uint32_t)prog_fd;
	attr.attach_type = (uint32_t)attach_type;
	return sys_bpf(BPF_PROG_DETACH, &attr);
}

int pyrunc_bpf_prog_query(int cgroup_fd, int attach_type, unsigned *attach_flags,
			  uint32_t *ids, uint32_t *count)
{
	union bpf_attr attr;
	int r;

	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)cgroup_fd;
	attr.query.attach_type = (uint32_t)attach_type;
	attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
	attr.query.prog_cnt = *count;
	r = sys_bpf(BPF_PROG_QUERY, &attr);
	if (r == 0 || r == -ENOSPC) {
		*count = attr.query.prog_cnt;
		if (attach_flags != NULL)
			*attach_flags = attr.query.attach_flags;
	}
	return r;
}

int pyrunc_bpf_prog_get_fd_by_id(uint32_t id)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_id = id;
	attr.open_flags = 0;
	return sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
}

int pyrunc_fstatfs_type(int fd, long *type)
{
	struct statfs st;

	if (fstatfs(fd, &st) < 0)
		return -errno;
	*type = (long)st.f_type;
	return 0;
}
