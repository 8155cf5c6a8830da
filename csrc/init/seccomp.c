/*
 * seccomp.c: OP_SECCOMP (format in protocol.h, "Seccomp").
 *
 * libseccomp turns the rule table into BPF; the program is then loaded with
 * seccomp(2) directly rather than with seccomp_load(), because libseccomp
 * 2.5 cannot ask for SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV and always
 * leaves the flag choice to itself.  Loading it ourselves keeps every flag
 * the config asks for under our control, and it never sets no_new_privs.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

#define NAME_MAX_LEN 255
#define STATE_MAX (4u << 20)
#define NO_FD UINT64_MAX

_Static_assert(SECCOMP_CMP_NE == SCMP_CMP_NE && SECCOMP_CMP_LT == SCMP_CMP_LT &&
	       SECCOMP_CMP_LE == SCMP_CMP_LE && SECCOMP_CMP_EQ == SCMP_CMP_EQ &&
	       SECCOMP_CMP_GE == SCMP_CMP_GE && SECCOMP_CMP_GT == SCMP_CMP_GT &&
	       SECCOMP_CMP_MASKED_EQ == SCMP_CMP_MASKED_EQ,
	       "SECCOMP_CMP_* must be libseccomp's numbers");

struct rule {
	uint8_t action;
	uint8_t nargs;
	uint16_t name_len;
	uint32_t value;
	const unsigned char *name;
	const unsigned char *args;
};

/* The next record at *pos: 1 when one was read, 0 at the end, -1 when the
 * table does not parse. */
static int next_rule(const struct pstr *table, size_t *pos, struct rule *r)
{
	const unsigned char *base = (const unsigned char *)table->s;
	size_t left = table->len - *pos;

	if (left == 0)
		return 0;
	if (left < SECCOMP_RULE_LEN)
		return -1;
	r->action = base[*pos];
	r->nargs = base[*pos + 1];
	r->name_len = le_get16(base + *pos + 2);
	r->value = le_get32(base + *pos + 4);
	left -= SECCOMP_RULE_LEN;
	if (r->nargs > SECCOMP_MAX_ARGS ||
	    left < r->name_len + (size_t)r->nargs * SECCOMP_ARG_LEN)
		return -1;
	r->name = base + *pos + SECCOMP_RULE_LEN;
	r->args = r->name + r->name_len;
	*pos += SECCOMP_RULE_LEN + r->name_len + (size_t)r->nargs * SECCOMP_ARG_LEN;
	return 1;
}

static int valid_action(uint64_t action, uint64_t value)
{
	if (action < SECCOMP_ACT_KILL_THREAD || action > SECCOMP_ACT_NOTIFY)
		return 0;
	if (action == SECCOMP_ACT_ERRNO || action == SECCOMP_ACT_TRACE)
		return value <= 0xffff;
	return value == 0;
}

static int valid_fd(uint64_t fd)
{
	return fd == NO_FD || fd <= INT_MAX;
}

const char *seccomp_plan_error(const struct step *s)
{
	size_t pos = 0;
	struct rule r;
	int got;

	if (!valid_action(s->ints[0], s->ints[1]) || s->ints[0] == SECCOMP_ACT_NOTIFY)
		return "bad seccomp default action";
	if (s->ints[2] & ~(uint64_t)(SECCOMP_F_LOG | SECCOMP_F_SPEC_ALLOW | SECCOMP_F_TSYNC |
				     SECCOMP_F_WAIT_KILLABLE_RECV))
		return "unknown seccomp flags";
	if (!valid_fd(s->ints[3]) || !valid_fd(s->ints[4]) ||
	    (s->ints[3] == NO_FD) != (s->ints[4] == NO_FD))
		return "bad seccomp listener fds";
	while ((got = next_rule(&s->strs[1], &pos, &r)) > 0) {
		if (!valid_action(r.action, r.value))
			return "bad seccomp rule action";
		if (r.action == SECCOMP_ACT_NOTIFY && s->ints[3] == NO_FD)
			return "seccomp notify rule without a listener";
		if (r.name_len == 0 || r.name_len > NAME_MAX_LEN || memchr(r.name, 0, r.name_len))
			return "bad seccomp syscall name";
		for (unsigned i = 0; i < r.nargs; i++) {
			const unsigned char *a = r.args + i * SECCOMP_ARG_LEN;
			uint32_t op = le_get32(a + 4);

			if (le_get32(a) >= SECCOMP_MAX_ARGS || op < SECCOMP_CMP_NE ||
			    op > SECCOMP_CMP_MASKED_EQ)
				return "bad seccomp argument rule";
		}
	}
	return got < 0 ? "seccomp rule table does not parse" : NULL;
}

/* libseccomp's action value; the plan was checked by seccomp_plan_error(). */
static uint32_t scmp_action(uint64_t action, uint64_t value)
{
	switch (action) {
	case SECCOMP_ACT_KILL_THREAD: return SCMP_ACT_KILL_THREAD;
	case SECCOMP_ACT_KILL_PROCESS: return SCMP_ACT_KILL_PROCESS;
	case SECCOMP_ACT_TRAP: return SCMP_ACT_TRAP;
	case SECCOMP_ACT_ERRNO: return SCMP_ACT_ERRNO((uint32_t)value);
	case SECCOMP_ACT_TRACE: return SCMP_ACT_TRACE((uint32_t)value);
	case SECCOMP_ACT_LOG: return SCMP_ACT_LOG;
	case SECCOMP_ACT_NOTIFY: return SCMP_ACT_NOTIFY;
	default: return SCMP_ACT_ALLOW;
	}
}

static int add_archs(scmp_filter_ctx f, const char *list)
{
	char name[64];

	while (*list) {
		size_t len = strcspn(list, ",");
		uint32_t arch;
		int rc;

		if (len == 0 || len >= sizeof(name))
			return fail(EINVAL, "seccomp architecture list \"%s\"", list);
		memcpy(name, list, len);
		name[len] = '\0';
		arch = seccomp_arch_resolve_name(name);
		if (arch == 0)
			return fail(EINVAL, "seccomp architecture \"%s\" is unknown to libseccomp",
				    name);
		rc = seccomp_arch_add(f, arch);
		if (rc < 0 && rc != -EEXIST)
			return fail(-rc, "seccomp_arch_add %s", name);
		list += len + (list[len] == ',');
	}
	return 0;
}

static int add_rule(scmp_filter_ctx f, uint32_t default_action, const struct rule *r)
{
	uint32_t action = scmp_action(r->action, r->value);
	struct scmp_arg_cmp cmp[SECCOMP_MAX_ARGS];
	unsigned count[SECCOMP_MAX_ARGS] = { 0 };
	char name[NAME_MAX_LEN + 1];
	int nr, rc = 0, repeated = 0;

	/* libseccomp refuses a rule that repeats the default action. */
	if (action == default_action)
		return 0;
	memcpy(name, r->name, r->name_len);
	name[r->name_len] = '\0';
	nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not a syscall this libseccomp knows: ignored, as runc does */
	for (unsigned i = 0; i < r->nargs; i++) {
		const unsigned char *a = r->args + i * SECCOMP_ARG_LEN;

		cmp[i].arg = le_get32(a);
		cmp[i].op = (enum scmp_compare)le_get32(a + 4);
		cmp[i].datum_a = le_get64(a + 8);
		cmp[i].datum_b = le_get64(a + 16);
		if (++count[cmp[i].arg] > 1)
			repeated = 1;
	}
	if (!repeated) {
		rc = seccomp_rule_add_array(f, action, nr, r->nargs, cmp);
	} else {
		for (unsigned i = 0; i < r->nargs && rc == 0; i++)
			rc = seccomp_rule_add_array(f, action, nr, 1, &cmp[i]);
	}
	return rc < 0 ? fail(-rc, "seccomp rule for \"%s\"", name) : 0;
}

static int read_all(int fd, unsigned char **out, size_t *len, size_t max, const char *what)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;

	if (fstat(fd, &st) < 0)
		return fail(errno, "%s", what);
	if (st.st_size <= 0 || (uint64_t)st.st_size > max)
		return fail(st.st_size <= 0 ? ENODATA : E2BIG, "%s (%lld bytes)", what,
			    (long long)st.st_size);
	buf = malloc((size_t)st.st_size);
	if (!buf)
		return fail(ENOMEM, "%s", what);
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return fail(n < 0 ? errno : EIO, "%s", what);
		}
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	return 0;
}

/* Export the filter as BPF and install it; returns the listener fd (or 0). */
static int load(scmp_filter_ctx f, unsigned long flags)
{
	struct sock_fprog prog;
	unsigned char *bpf;
	size_t len;
	int fd, rc;

	fd = (int)syscall(SYS_memfd_create, "seccomp-bpf", MFD_CLOEXEC);
	if (fd < 0)
		return fail(errno, "memfd for the seccomp program");
	rc = seccomp_export_bpf(f, fd);
	if (rc < 0) {
		close(fd);
		return fail(-rc, "seccomp_export_bpf");
	}
	rc = read_all(fd, &bpf, &len, 0xffffu * sizeof(struct sock_filter), "seccomp program");
	close(fd);
	if (rc < 0)
		return rc;
	if (len % sizeof(struct sock_filter)) {
		free(bpf);
		return fail(EINVAL, "seccomp program of %zu bytes", len);
	}
	prog.len = (unsigned short)(len / sizeof(struct sock_filter));
	prog.filter = (struct sock_filter *)bpf;
	rc = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	free(bpf);
	if (rc < 0)
		return fail(errno, "seccomp(SET_MODE_FILTER, %#lx)", flags);
	return (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) ? rc : 0;
}

/* One sendmsg: the state JSON as data, the notify fd as SCM_RIGHTS (runc's
 * format for the listener), then the rest of the data if it was cut short. */
static int send_listener(int sock, int state_fd, int notify_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg;
	struct cmsghdr *c;
	struct iovec iov;
	unsigned char *data;
	size_t len, sent = 0;
	ssize_t n;
	int rc = read_all(state_fd, &data, &len, STATE_MAX, "seccomp listener state");

	if (rc < 0)
		return rc;
	memset(&msg, 0, sizeof(msg));
	memset(&control, 0, sizeof(control));
	iov.iov_base = data;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &notify_fd, sizeof(int));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	while (n >= 0 && (sent += (size_t)n) < len)
		n = send(sock, data + sent, len - sent, MSG_NOSIGNAL);
	free(data);
	return n < 0 ? fail(errno, "sending the seccomp fd to the listener") : 0;
}

static unsigned long kernel_flags(uint64_t bits, int listener)
{
	unsigned long flags = 0;

	if (bits & SECCOMP_F_TSYNC)
		flags |= SECCOMP_FILTER_FLAG_TSYNC;
	if (bits & SECCOMP_F_LOG)
		flags |= SECCOMP_FILTER_FLAG_LOG;
	if (bits & SECCOMP_F_SPEC_ALLOW)
		flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
	if (listener) {
		flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
		/* The kernel refuses TSYNC with a listener unless TSYNC_ESRCH says
		 * how a TSYNC failure is to be told apart from the listener fd. */
		if (flags & SECCOMP_FILTER_FLAG_TSYNC)
			flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
		if (bits & SECCOMP_F_WAIT_KILLABLE_RECV)
			flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	}
	return flags;
}

static int build(scmp_filter_ctx f, const struct step *s, uint32_t default_action)
{
	size_t pos = 0;
	unsigned n = 0;
	struct rule r;
	int rc;

	rc = seccomp_attr_set(f, SCMP_FLTATR_CTL_NNP, 0);
	if (rc < 0)
		return fail(-rc, "seccomp: leave no_new_privs alone");
	rc = add_archs(f, s->strs[0].s);
	if (rc < 0)
		return rc;
	while (next_rule(&s->strs[1], &pos, &r) > 0)
		n++;
	/* A binary tree pays off for long lists; its absence only costs speed. */
	if (n > 32)
		(void)seccomp_attr_set(f, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	pos = 0;
	while (next_rule(&s->strs[1], &pos, &r) > 0) {
		rc = add_rule(f, default_action, &r);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int op_seccomp(const struct step *s)
{
	uint32_t default_action = scmp_action(s->ints[0], s->ints[1]);
	int listener = s->ints[3] != NO_FD;
	int sock = listener ? (int)s->ints[3] : -1, state_fd = listener ? (int)s->ints[4] : -1;
	scmp_filter_ctx f = seccomp_init(default_action);
	int rc, notify_fd;

	if (!f)
		return fail(EINVAL, "seccomp_init");
	rc = build(f, s, default_action);
	if (rc == 0)
		rc = load(f, kernel_flags(s->ints[2], listener));
	seccomp_release(f);
	if (rc < 0 || !listener)
		return rc < 0 ? rc : 0;
	/* From here on the filter applies to us too: only a sendmsg and closes.
	 * The listener's copy of the notify fd is the only one that must live. */
	notify_fd = rc;
	rc = send_listener(sock, state_fd, notify_fd);
	close(notify_fd);
	close(sock);
	close(state_fd);
	return rc;
}
