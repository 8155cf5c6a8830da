/*
 * sync.c: status messages on the sync socket and the create/start
 * rendezvous on exec.fifo.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"

int sync_send(uint32_t type, int32_t step, int32_t err, int32_t value, const char *text)
{
	struct sync_msg m;
	ssize_t n;

	memset(&m, 0, sizeof(m));
	m.type = htole32(type);
	m.step = (int32_t)htole32((uint32_t)step);
	m.err = (int32_t)htole32((uint32_t)err);
	m.value = (int32_t)htole32((uint32_t)value);
	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	do
		n = send(ctx.sync_fd, &m, sizeof(m), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(m) ? 0 : -EPIPE;
}

/* Wait for the parent's verdict: 0 on MSG_ACK.  MSG_ABORT and a vanished
 * parent end this process quietly: the parent already knows. */
int sync_wait_ack(void)
{
	struct sync_msg m;
	ssize_t n;

	do
		n = recv(ctx.sync_fd, &m, sizeof(m), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(errno, "waiting for the parent");
	if (n == 0)
		_exit(1);
	if (n != (ssize_t)sizeof(m))
		return fail(EBADMSG, "sync message of %zd bytes", n);
	switch (le32toh(m.type)) {
	case MSG_ACK:
		return 0;
	case MSG_ABORT:
		_exit(1);
	default:
		return fail(EBADMSG, "unexpected sync message %u", le32toh(m.type));
	}
}

int op_sync(const struct step *s)
{
	int err = sync_send(MSG_SYNC, -1, 0, (int32_t)s->ints[0], NULL);

	if (err)
		return fail(-err, "sending MSG_SYNC");
	err = hooks_receive_states(s->ints[1]);
	return err ? err : sync_wait_ack();
}

int op_ready(const struct step *s)
{
	int err = sync_send(MSG_READY, -1, 0, 0, NULL);

	(void)s;
	return err ? fail(-err, "sending MSG_READY") : 0;
}

/* exec.fifo opened for writing and not answered yet (WAIT_F_HOLD). */
static int held_fifo = -1;

static int answer_start(int fd, const char *answer, size_t len)
{
	ssize_t n = write(fd, answer, len);

	close(fd);
	if (n != (ssize_t)len)
		return fail(n < 0 ? errno : EIO, "exec.fifo");
	return 0;
}

/* The "go" answer, the step that may follow the seccomp filter: one write.
 * The fd is O_CLOEXEC, so the exec closes it; `start` reads the byte and
 * does not wait for the end of file. */
static int answer_go(int fd)
{
	ssize_t n = write(fd, "0", 1);

	return n == 1 ? 0 : fail(n < 0 ? errno : EIO, "exec.fifo");
}

void sync_report_start_failure(const char *text, int err)
{
	char answer[1024];
	int n;

	if (held_fifo < 0)
		return;
	/* ECANCELED marks a message that already says everything (a hook's
	 * exit status and output); other failures gain their errno's text. */
	if (err && err != ECANCELED)
		n = snprintf(answer, sizeof(answer), "E%s: %s", text, strerror(err));
	else
		n = snprintf(answer, sizeof(answer), "E%s", text);
	if (n < 0)
		return;
	answer_start(held_fifo, answer, (size_t)n < sizeof(answer) ? (size_t)n : sizeof(answer) - 1);
	held_fifo = -1;
}

/* Opening a FIFO for writing blocks until a reader appears: `pyrunc start`
 * opening exec.fifo is what releases the container. */
int op_wait_start(const struct step *s)
{
	char path[32];
	struct stat st;
	int fd, o_path_fd = (int)s->ints[0];

	if (s->ints[1] & WAIT_F_RELEASE) {
		fd = held_fifo;
		held_fifo = -1;
		return fd < 0 ? fail(EBADF, "exec.fifo is not held") : answer_go(fd);
	}
	if (s->ints[0] > 0x7fffffff)
		return fail(EBADF, "exec.fifo fd %llu", (unsigned long long)s->ints[0]);
	if (fstat(o_path_fd, &st) < 0)
		return fail(errno, "exec.fifo fd %d", o_path_fd);
	if (!S_ISFIFO(st.st_mode))
		return fail(EINVAL, "exec.fifo fd %d is not a fifo", o_path_fd);
	snprintf(path, sizeof(path), "self/fd/%d", o_path_fd);
	do
		fd = proc_open(path, O_WRONLY | O_CLOEXEC, PROC_MAGIC);
	while (fd == -EINTR);
	if (fd < 0)
		return fail(-fd, "exec.fifo");
	close(o_path_fd);
	if (s->ints[1] & WAIT_F_HOLD) {
		held_fifo = fd;
		return 0;
	}
	return answer_start(fd, "0", 1);
}
