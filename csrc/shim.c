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
