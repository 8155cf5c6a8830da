/*
 * ns.c: stage A, run in the host's namespaces: join or create namespaces,
 * then fork the container init.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>

#include "init.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#ifndef NS_GET_NSTYPE
#define NS_GET_NSTYPE _IO(0xb7, 0x3)
#endif

/*
 * Join the namespace file at ints[0]'s type.  The path is opened O_PATH
 * (a FIFO, device or socket swapped in is never really opened, so nothing
 * blocks and no driver runs), must be on nsfs, is reopened through the
 * procfs handle, and must be a namespace of the planned type: a path that
 * was swapped after the runtime checked it is refused, never joined.
 */
int op_setns(const struct step *s)
{
	const char *path = s->strs[0].s;
	struct statfs sfs;
	char link[32];
	int pfd, fd, got, err = 0;

	if (s->ints[0] == 0 || s->ints[0] > 0xffffffffu)
		return fail(EINVAL, "namespace type %#llx", (unsigned long long)s->ints[0]);
	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return fail(errno, "%s", path);
	if (fstatfs(pfd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC) {
		close(pfd);
		return fail(EINVAL, "not a namespace file");
	}
	snprintf(link, sizeof(link), "self/fd/%d", pfd);
	fd = proc_open(link, O_RDONLY, PROC_MAGIC);
	close(pfd);
	if (fd < 0)
		return fail(-fd, "%s", path);
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC) {
		err = fail(EINVAL, "not a namespace file");
	} else if ((got = ioctl(fd, NS_GET_NSTYPE)) < 0) {
		err = fail(errno, "%s: NS_GET_NSTYPE", path);
	} else if (got != (int)s->ints[0]) {
		err = fail(EINVAL, "a namespace of another type (%#x)", got);
	} else if (setns(fd, got) < 0) {
		err = fail(errno, "%s", path);
	}
	close(fd);
	return err;
}

int op_unshare_user(const struct step *s)
{
	/* An unprivileged parent (rootless) can only open our /proc/<pid>/
	 * {uid_map,gid_map,setgroups}, and newuidmap only accepts us, while
	 * those files are owned by our uid, i.e. while we are dumpable: be so
	 * just for the time the maps are written (as runc does). */
	int rootless = geteuid() != 0;
	int err;

	(void)s;
	if (unshare(CLONE_NEWUSER) < 0)
		return fail(errno, "unshare(CLONE_NEWUSER)");
	if (rootless && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		return fail(errno, "prctl(PR_SET_DUMPABLE, 1)");
	err = sync_send(MSG_IDMAP_REQ, -1, 0, getpid(), NULL);
	if (err)
		return fail(-err, "sending MSG_IDMAP_REQ");
	err = sync_wait_ack();
	if (rootless && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 && !err)
		return fail(errno, "prctl(PR_SET_DUMPABLE, 0)");
	if (err)
		return err;
	/* The maps exist now; become the namespace's root so that what
	 * follows (mounts, mknod, hostname) runs as uid/gid 0 there. */
	if (setresgid(0, 0, 0) < 0)
		return fail(errno, "setresgid(0)");
	if (setresuid(0, 0, 0) < 0)
		return fail(errno, "setresuid(0)");
	return 0;
}

int op_unshare(const struct step *s)
{
	if (s->ints[0] > 0xffffffffu)
		return fail(EINVAL, "unshare(%#llx)", (unsigned long long)s->ints[0]);
	if (unshare((int)s->ints[0]) < 0)
		return fail(errno, "unshare(%#llx)", (unsigned long long)s->ints[0]);
	return 0;
}

/* The offsets can only be written before any process lives in the new
 * time namespace, i.e. between unshare(CLONE_NEWTIME) and OP_FORK. */
int op_timens_offsets(const struct step *s)
{
	char buf[128];
	int fd, len;
	ssize_t n;

	len = snprintf(buf, sizeof(buf), "monotonic %lld %lld\nboottime %lld %lld\n",
		       (long long)s->ints[0], (long long)s->ints[1],
		       (long long)s->ints[2], (long long)s->ints[3]);
	fd = proc_open("self/timens_offsets", O_WRONLY, PROC_SELF);
	if (fd < 0)
		return fail(-fd, "/proc/self/timens_offsets");
	n = write(fd, buf, (size_t)len);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n != len)
		return fail(n < 0 ? (int)-n : EIO, "/proc/self/timens_offsets");
	return 0;
}

int op_fork(const struct step *s)
{
	int gate[2], err;
	ssize_t n;
	char c = 0;
	pid_t pid;

	(void)s;
	/* Both stages write to the one sync socket: the child waits at this
	 * gate until MSG_CHILD_PID is out, or its first message (MSG_SYNC,
	 * MSG_READY...) could reach the parent before the pid it refers to. */
	if (pipe2(gate, O_CLOEXEC) < 0)
		return fail(errno, "pipe2");
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(gate[0]);
		close(gate[1]);
		return fail(err, "fork");
	}
	if (pid == 0) {
		close(gate[1]);
		do
			n = read(gate[0], &c, 1);
		while (n < 0 && errno == EINTR);
		close(gate[0]);
		/* EOF without the byte: the parent stage failed and kills us. */
		if (n != 1)
			_exit(1);
		return 0;
	}
	close(gate[0]);
	err = sync_send(MSG_CHILD_PID, -1, 0, pid, NULL);
	if (err) {
		/* Nobody would learn the child's pid: do not leave it behind. */
		kill(pid, SIGKILL);
		_exit(1);
	}
	while (write(gate[1], &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}
