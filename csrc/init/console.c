/*
 * console.c: the container's terminal (OP_CONSOLE).
 *
 * The pty comes from the container's own devpts (/dev/ptmx as the process
 * sees it after the root change or after joining the mount namespace).  Its
 * peer is obtained from the master with TIOCGPTPEER, never by opening
 * /dev/pts/N: that path belongs to the container and could be swapped for a
 * symlink (CVE-2025-52565).  The master goes to whoever listens on the
 * console socket, in the framing go-runc and conmon read: one sendmsg whose
 * data is the pty name and whose control data is one SCM_RIGHTS fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "init.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define PTMX_MAJOR 5
#define PTMX_MINOR 2
#define CONSOLE_FD_PATH_LEN 32

static int open_master(void)
{
	struct stat st;
	int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return fail(errno, "/dev/ptmx");
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
	    major(st.st_rdev) != PTMX_MAJOR || minor(st.st_rdev) != PTMX_MINOR) {
		close(fd);
		return fail(ENOTTY, "/dev/ptmx is not the pty multiplexer");
	}
	return fd;
}

/* /dev/console must be a plain file or a device we created or found there;
 * O_NOFOLLOW plus the type check refuse a symlink, fifo or directory. */
static int open_console_target(void)
{
	char base[256];
	struct stat st;
	int dirfd, fd;

	dirfd = root_open_parent("/dev/console", base, sizeof(base), 0);
	if (dirfd < 0)
		return fail(-dirfd, "/dev");
	fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
		    0666);
	if (fd < 0 && errno == EEXIST)
		fd = openat(dirfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		close(dirfd);
		return fail(err, "/dev/console");
	}
	close(dirfd);
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
		close(fd);
		return fail(EINVAL, "/dev/console is neither a file nor a device");
	}
	return fd;
}

/* Bind by fd on both sides: no path the container controls is looked up. */
static int mount_console(int peer)
{
	char src[CONSOLE_FD_PATH_LEN], dst[CONSOLE_FD_PATH_LEN];
	int target = open_console_target(), err = 0;

	if (target < 0)
		return target;
	fd_path(src, sizeof(src), peer);
	fd_path(dst, sizeof(dst), target);
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		err = fail(errno, "bind the pty onto /dev/console");
	close(target);
	return err;
}

static int send_master(int sock, int master, const char *name)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *c;
	ssize_t n;

	memset(&control, 0, sizeof(control));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(errno, "sending the pty master on the console socket");
	if ((size_t)n != iov.iov_len)
		return fail(EIO, "short write on the console socket");
	return 0;
}

static int check_socket(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return fail(errno, "console socket fd %d", fd);
	if (!S_ISSOCK(st.st_mode))
		return fail(ENOTSOCK, "console socket fd %d", fd);
	return 0;
}

/* Everything after the master exists, so the caller can close it on error. */
static int setup_peer(int master, const struct step *s, int *peer_out)
{
	char name[32];
	unsigned unlock = 0, ptn = 0;
	int peer;

	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return fail(errno, "unlocking the pty");
	if (ioctl(master, TIOCGPTN, &ptn) < 0)
		return fail(errno, "reading the pty number");
	peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (peer < 0)
		return fail(errno, "opening the pty peer (TIOCGPTPEER)");
	*peer_out = peer;
	if (s->ints[1] || s->ints[2]) {
		struct winsize ws = { .ws_row = (unsigned short)s->ints[1],
				      .ws_col = (unsigned short)s->ints[2] };

		if (ioctl(peer, TIOCSWINSZ, &ws) < 0)
			return fail(errno, "setting the console size");
	}
	if (s->ints[3] & CONSOLE_F_MOUNT) {
		int err = mount_console(peer);

		if (err)
			return err;
	}
	snprintf(name, sizeof(name), "/dev/pts/%u", ptn);
	return send_master((int)s->ints[0], master, name);
}

int op_console(const struct step *s)
{
	int sock = (int)s->ints[0], master, peer = -1, err;

	err = check_socket(sock);
	if (err)
		return err;
	master = open_master();
	if (master < 0)
		return master;
	err = setup_peer(master, s, &peer);
	close(master);
	if (err) {
		if (peer >= 0)
			close(peer);
		return err;
	}
	close(sock);
	/* The caller made us a session leader (OP_SETSID); now the pty
	 * becomes the controlling terminal and the process's stdio. */
	if (ioctl(peer, TIOCSCTTY, 0) < 0) {
		err = fail(errno, "TIOCSCTTY");
		close(peer);
		return err;
	}
	for (int fd = 0; fd < 3; fd++)
		if (dup2(peer, fd) < 0) {
			err = fail(errno, "dup2 pty to fd %d", fd);
			close(peer);
			return err;
		}
	if (peer > 2)
		close(peer);
	return 0;
}
