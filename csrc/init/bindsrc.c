/*
 * bindsrc.c: bind-mount sources opened by the host's root in the
 * container's mount namespace.
 *
 * In a new user namespace the container's root may be unable to reach a
 * bind source (a 0700 directory of the host's root on the way). As runc
 * does, the source is opened by a process that is still the host's root,
 * after it has joined the container's new mount namespace: the O_PATH fd
 * then names the copy of the source mount in that namespace, which the
 * container's root may bind (a bind of a mount from another namespace
 * fails with EINVAL), and the flags the kernel locked on the copy stay
 * locked.
 *
 * OP_BIND_SOURCES_FORK (stage A, before OP_UNSHARE_USER) forks that helper;
 * OP_BIND_SOURCES_OPEN (stage A, after OP_UNSHARE made the mount namespace)
 * hands it our mount namespace and takes one fd (or errno) per source back.
 * The fds are O_CLOEXEC and each OP_MOUNT with MOUNT_F_SOURCE_FD takes and
 * closes its own; OP_CLOSE_FDS covers any left over.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

static int sources[MOUNT_SOURCE_SLOTS] = { [0 ... MOUNT_SOURCE_SLOTS - 1] = -1 };
static int helper_sock = -1;
static pid_t helper_pid = -1;

/* One message: an int32 (0 or an errno) and, with 0, one SCM_RIGHTS fd. */
static int send_fd(int sock, int32_t err, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &err, .iov_len = sizeof(err) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (fd >= 0) {
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

/* The counterpart of send_fd: *fd is -1 unless an fd came with a 0. */
static int recv_fd(int sock, int32_t *err, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = err, .iov_len = sizeof(*err) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n != sizeof(*err))
		return -EPROTO;
	c = CMSG_FIRSTHDR(&msg);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	if ((*err == 0) != (*fd >= 0)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EPROTO;
	}
	return 0;
}

/* The helper: wait for the mount namespace, join it, open each source. */
static __attribute__((noreturn)) void helper_main(int sock, const struct step *s)
{
	int32_t err;
	int ns;

	if (recv_fd(sock, &err, &ns) < 0 || ns < 0)
		_exit(0); /* the init went away, or sent no namespace */
	if (setns(ns, CLONE_NEWNS) < 0)
		err = errno;
	close(ns);
	for (unsigned i = 0; i < s->nstrs; i++) {
		int fd = err ? (errno = err, -1) : open(s->strs[i].s, O_PATH | O_CLOEXEC);

		if (send_fd(sock, fd < 0 ? errno : 0, fd) < 0)
			_exit(1);
		if (fd >= 0)
			close(fd);
	}
	_exit(0);
}

int op_bind_sources_fork(const struct step *s)
{
	int sv[2];
	pid_t pid;

	if (helper_sock >= 0)
		return fail(EBUSY, "bind source helper");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(errno, "socketpair for the bind source helper");
	pid = fork();
	if (pid < 0) {
		int err = errno;

		close(sv[0]);
		close(sv[1]);
		return fail(err, "fork of the bind source helper");
	}
	if (pid == 0) {
		close(sv[0]);
		close(ctx.sync_fd);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		helper_main(sv[1], s);
	}
	close(sv[1]);
	helper_sock = sv[0];
	helper_pid = pid;
	return 0;
}

static void helper_reap(void)
{
	if (helper_sock >= 0)
		close(helper_sock);
	helper_sock = -1;
	if (helper_pid > 0)
		while (waitpid(helper_pid, NULL, 0) < 0 && errno == EINTR)
			;
	helper_pid = -1;
}

int op_bind_sources_open(const struct step *s)
{
	uint64_t count = s->ints[0];
	int ns, err, fd;
	int32_t e;

	if (helper_sock < 0)
		return fail(ENOTCONN, "bind source helper");
	ns = proc_open("thread-self/ns/mnt", O_RDONLY, PROC_MAGIC);
	if (ns < 0) {
		helper_reap();
		return fail(-ns, "/proc/thread-self/ns/mnt");
	}
	err = send_fd(helper_sock, 0, ns);
	close(ns);
	for (uint64_t i = 0; !err && i < count && i < MOUNT_SOURCE_SLOTS; i++) {
		err = recv_fd(helper_sock, &e, &fd);
		/* e != 0: a source the host's root cannot open either (or the
		 * helper could not join us): its OP_MOUNT opens it itself and
		 * reports that error with the path. */
		if (!err && fd >= 0)
			sources[i] = fd;
	}
	helper_reap();
	return err ? fail(-err, "receiving bind sources from the helper") : 0;
}

int bind_source_take(uint64_t slot)
{
	int fd;

	if (slot >= MOUNT_SOURCE_SLOTS || sources[slot] < 0)
		return -EBADF;
	fd = sources[slot];
	sources[slot] = -1;
	return fd;
}
