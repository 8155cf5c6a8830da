/*
 * hooks.c: createContainer and startContainer hooks (OP_HOOK) and the
 * states they read on stdin (protocol.h, "Hooks").
 *
 * A hook is a host-chosen program run with the init's credentials in the
 * container's namespaces, so it gets nothing of the init but what the spec
 * gives it: the state on stdin, its own argv and env.  Its output goes to a
 * pipe (never to the container's stdio) and the tail of it explains a
 * failure.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

#define OUTPUT_TAIL 256

static struct {
	char *data;
	size_t len;
} states[HOOK_STATE_SLOTS];

/* One MSG_HOOK_STATE into slot i; MSG_ABORT (or EOF) ends the init. */
static int receive_state(unsigned slot)
{
	ssize_t n;
	char *buf;
	uint32_t type;

	do
		n = recv(ctx.sync_fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(errno, "waiting for the container state");
	if (n == 0)
		_exit(1);
	if ((size_t)n < sizeof(type) || (size_t)n > sizeof(type) + HOOK_STATE_MAX)
		return fail(EBADMSG, "state message of %zd bytes", n);
	buf = malloc((size_t)n + 1);
	if (!buf)
		return fail(ENOMEM, "state message of %zd bytes", n);
	if (recv(ctx.sync_fd, buf, (size_t)n, 0) != n) {
		free(buf);
		return fail(EBADMSG, "short state message");
	}
	memcpy(&type, buf, sizeof(type));
	type = le32toh(type);
	if (type == MSG_ABORT)
		_exit(1);
	if (type != MSG_HOOK_STATE) {
		free(buf);
		return fail(EBADMSG, "unexpected message %u instead of a state", type);
	}
	free(states[slot].data);
	states[slot].len = (size_t)n - sizeof(type);
	memmove(buf, buf + sizeof(type), states[slot].len);
	states[slot].data = buf;
	return 0;
}

int hooks_receive_states(uint64_t count)
{
	if (count > HOOK_STATE_SLOTS)
		return fail(EINVAL, "%llu hook states", (unsigned long long)count);
	for (unsigned i = 0; i < count; i++) {
		int err = receive_state(i);
		if (err)
			return err;
	}
	return 0;
}

static const char *kind_name(uint64_t kind)
{
	switch (kind) {
	case HOOK_CREATE_CONTAINER:
		return "createContainer";
	case HOOK_START_CONTAINER:
		return "startContainer";
	default:
		return "unknown";
	}
}

static void close_from(int first)
{
	if (syscall(SYS_close_range, (unsigned)first, ~0u, 0) == 0)
		return;
	for (int fd = first; fd < 4096; fd++)
		close(fd);
}

/* In the forked child.  pyrunc-init is single-threaded, so allocating here
 * is safe. */
static __attribute__((noreturn)) void hook_child(const struct step *s, int in_fd, int out_fd)
{
	const char *path = s->strs[0].s;
	uint64_t argc = s->ints[1], envc = s->ints[2];
	char *argv_one[2] = { (char *)path, NULL };
	char **argv = argv_one, **envp;
	static const char msg[] = "pyrunc-init: cannot execute the hook: ";
	const char *why;
	sigset_t none;

	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(127);
	/* runc runs createContainer hooks from the container's rootfs (its
	 * init changes into it right before them); the others keep the
	 * init's working directory. */
	if (s->ints[4] == HOOK_CREATE_CONTAINER && fchdir(root_fd_get()) < 0) {
		static const char chdir_msg[] = "pyrunc-init: cannot change into the rootfs: ";

		why = strerror(errno);
		if (write(2, chdir_msg, sizeof(chdir_msg) - 1) < 0 || write(2, why, strlen(why)) < 0) {
			/* nothing else to report to */
		}
		_exit(127);
	}
	/* Its own process group: a timeout kills what the hook started too. */
	setpgid(0, 0);
	close_from(3);
	/* An ignored signal stays ignored across execve. */
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(022);
	envp = calloc(envc + 1, sizeof(*envp));
	if (argc) {
		argv = calloc(argc + 1, sizeof(*argv));
		if (!argv)
			_exit(127);
		for (uint64_t i = 0; i < argc; i++)
			argv[i] = (char *)s->strs[1 + i].s;
	}
	if (!envp)
		_exit(127);
	for (uint64_t i = 0; i < envc; i++)
		envp[i] = (char *)s->strs[1 + argc + i].s;
	execve(path, argv, envp);
	why = strerror(errno);
	if (write(2, msg, sizeof(msg) - 1) < 0 || write(2, why, strlen(why)) < 0) {
		/* nothing else to report to */
	}
	_exit(127);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct tail {
	char buf[OUTPUT_TAIL];
	size_t len;
};

static void tail_add(struct tail *t, const char *p, size_t n)
{
	if (n >= sizeof(t->buf)) {
		memcpy(t->buf, p + n - sizeof(t->buf), sizeof(t->buf));
		t->len = sizeof(t->buf);
		return;
	}
	if (t->len + n > sizeof(t->buf)) {
		size_t drop = t->len + n - sizeof(t->buf);
		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

/* Read what the hook wrote so far; returns 0 at EOF, 1 otherwise. */
static int drain(int fd, struct tail *t)
{
	char chunk[4096];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n > 0) {
			tail_add(t, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n == 0 ? 0 : 1;
	}
}

/* The tail as one line: control characters become spaces, trimmed. */
static const char *tail_text(struct tail *t)
{
	size_t start = 0;

	for (size_t i = 0; i < t->len; i++)
		if ((unsigned char)t->buf[i] < 0x20 || t->buf[i] == 0x7f)
			t->buf[i] = ' ';
	while (t->len && t->buf[t->len - 1] == ' ')
		t->len--;
	while (start < t->len && t->buf[start] == ' ')
		start++;
	t->buf[t->len < sizeof(t->buf) ? t->len : sizeof(t->buf) - 1] = '\0';
	return t->buf + start;
}

/* Without a pidfd (pidfd_open denied: a startContainer hook runs under the
 * container's seccomp filter, and an allow-list may predate pidfd_open), the
 * exit is looked for with waitpid(WNOHANG) at this interval. */
#define NO_PIDFD_POLL_MS 20

struct run {
	pid_t pid;
	int status, reaped;
	int pidfd, in_w, out_r;
	const char *state;
	size_t state_len, sent;
	struct tail out;
};

/* Feed stdin, collect output, until the hook exits or the deadline passes.
 * Returns 1 when it exited, 0 on timeout, -errno on failure. */
static int supervise(struct run *r, long long deadline)
{
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = r->pidfd, .events = POLLIN },
			{ .fd = r->out_r, .events = POLLIN },
			{ .fd = r->in_w, .events = POLLOUT },
		};
		int timeout = -1, n;

		if (deadline) {
			long long left = deadline - now_ms();
			if (left <= 0)
				return 0;
			timeout = left > 0x7fffffff ? 0x7fffffff : (int)left;
		}
		if (r->pidfd < 0) {
			if (waitpid(r->pid, &r->status, WNOHANG) == r->pid) {
				r->reaped = 1;
				return 1;
			}
			if (timeout < 0 || timeout > NO_PIDFD_POLL_MS)
				timeout = NO_PIDFD_POLL_MS;
		}
		n = poll(p, r->in_w >= 0 ? 3 : 2, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (p[1].revents)
			drain(r->out_r, &r->out);
		if (r->in_w >= 0 && p[2].revents) {
			ssize_t w = -1;
			int again = 0;

			if (p[2].revents & POLLOUT) {
				w = write(r->in_w, r->state + r->sent, r->state_len - r->sent);
				again = w < 0 && (errno == EAGAIN || errno == EINTR);
			}
			if (w > 0)
				r->sent += (size_t)w;
			/* Done, or the hook closed its stdin (EPIPE): stop feeding it. */
			if (!again && (w <= 0 || r->sent == r->state_len)) {
				close(r->in_w);
				r->in_w = -1;
			}
		}
		if (p[0].revents)
			return 1;
	}
}

static int make_pipes(int in[2], int out[2])
{
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		int err = -errno;
		close(in[0]);
		close(in[1]);
		return err;
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	return 0;
}

static int describe_exit(const struct step *s, const char *label, int status, struct tail *out)
{
	const char *text = tail_text(out);
	const char *sep = *text ? ": " : "";

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		return fail(ECANCELED, "%s (%s): killed by signal %d%s%s", label, s->strs[0].s,
			    WTERMSIG(status), sep, text);
	return fail(ECANCELED, "%s (%s): exit status %d%s%s", label, s->strs[0].s,
		    WEXITSTATUS(status), sep, text);
}

int op_hook(const struct step *s)
{
	struct run r = { .pid = -1, .pidfd = -1, .in_w = -1, .out_r = -1, .reaped = 0 };
	char label[64];
	int in[2], out[2], err, status = 0, exited;
	long long deadline = 0;
	uint64_t slot = s->ints[3];

	snprintf(label, sizeof(label), "%s hook #%llu", kind_name(s->ints[4]),
		 (unsigned long long)s->ints[5]);
	if (slot >= HOOK_STATE_SLOTS || !states[slot].data)
		return fail(EINVAL, "%s: no container state was received", label);
	r.state = states[slot].data;
	r.state_len = states[slot].len;
	err = make_pipes(in, out);
	if (err)
		return fail(-err, "%s: pipes", label);
	/* A hook that exits without reading its stdin must not kill the init
	 * with SIGPIPE: the write fails with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	r.pid = fork();
	if (r.pid == 0)
		hook_child(s, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	r.in_w = in[1];
	r.out_r = out[0];
	if (r.pid < 0) {
		err = fail(errno, "%s: fork", label);
		goto out;
	}
	/* Both sides set the group, so a kill of it cannot come first. */
	setpgid(r.pid, r.pid);
	r.pidfd = (int)syscall(SYS_pidfd_open, r.pid, 0);
	if (s->ints[0])
		deadline = now_ms() + (long long)(s->ints[0] > 86400 * 365 ? 86400 * 365 : s->ints[0]) * 1000;
	exited = supervise(&r, deadline);
	if (exited <= 0)
		kill(-r.pid, SIGKILL);
	if (r.reaped)
		status = r.status;
	else
		while (waitpid(r.pid, &status, 0) < 0 && errno == EINTR)
			;
	drain(r.out_r, &r.out);
	if (exited == 0)
		err = fail(ETIMEDOUT, "%s (%s): timed out after %llu s", label, s->strs[0].s,
			   (unsigned long long)s->ints[0]);
	else if (exited < 0)
		err = fail(-exited, "%s (%s): waiting for it", label, s->strs[0].s);
	else
		err = describe_exit(s, label, status, &r.out);
out:
	signal(SIGPIPE, SIG_DFL);
	if (r.pidfd >= 0)
		close(r.pidfd);
	if (r.in_w >= 0)
		close(r.in_w);
	close(r.out_r);
	return err;
}
