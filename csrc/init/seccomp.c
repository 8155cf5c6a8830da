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
#include <stddef.h>
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
				     SECCOMP_F_WAIT_KILLABLE_RECV | SECCOMP_F_ENOSYS))
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

/* ---- the ENOSYS stub ---------------------------------------------------
 * runc's answer to profiles older than the kernel: a syscall whose number is
 * above every syscall the profile names, for the architecture it is made
 * in, fails with ENOSYS instead of meeting the default action, so programs
 * fall back as on an older kernel (glibc: clone3 -> clone, faccessat2 ->
 * faccessat).  The planner decides whether (SECCOMP_F_ENOSYS); here the
 * numbers come from the linked libseccomp, per architecture of the filter
 * (the native one and those listed).  x32 shares x86_64's audit arch and is
 * told apart by the x32 bit of the syscall number. */

#define X32_SYSCALL_BIT 0x40000000u
#define STUB_MAX_ARCHS 32
#define STUB_MAX_LEN (4 + 6 * STUB_MAX_ARCHS)

struct arch_max {
	uint32_t audit_arch; /* the value seccomp_data.arch carries */
	uint32_t max;        /* largest syscall number named, 0 = none */
	uint32_t max_x32;    /* x86_64 group only: largest x32 number named */
};

static struct arch_max *arch_slot(struct arch_max *a, unsigned *n, uint32_t audit_arch)
{
	for (unsigned i = 0; i < *n; i++)
		if (a[i].audit_arch == audit_arch)
			return &a[i];
	if (*n == STUB_MAX_ARCHS)
		return NULL;
	a[*n] = (struct arch_max){ .audit_arch = audit_arch };
	return &a[(*n)++];
}

static void arch_largest(const struct step *s, uint32_t arch, struct arch_max *slot)
{
	char name[NAME_MAX_LEN + 1];
	size_t pos = 0;
	struct rule r;

	while (next_rule(&s->strs[1], &pos, &r) > 0) {
		int nr;

		memcpy(name, r.name, r.name_len);
		name[r.name_len] = '\0';
		/* Unknown names and pseudo-syscalls (negative) do not count. */
		nr = seccomp_syscall_resolve_name_arch(arch, name);
		if (nr < 0)
			continue;
		if (arch == SCMP_ARCH_X32) {
			if ((uint32_t)nr > slot->max_x32)
				slot->max_x32 = (uint32_t)nr;
		} else if ((uint32_t)nr > slot->max) {
			slot->max = (uint32_t)nr;
		}
	}
}

/* The largest named syscall of each architecture of the filter. */
static unsigned stub_archs(const struct step *s, struct arch_max *a)
{
	const char *list = s->strs[0].s;
	uint32_t archs[STUB_MAX_ARCHS + 1];
	unsigned narchs = 0, n = 0;
	char name[64];

	archs[narchs++] = seccomp_arch_native();
	while (*list && narchs <= STUB_MAX_ARCHS) {
		size_t len = strcspn(list, ",");

		if (len && len < sizeof(name)) {
			memcpy(name, list, len);
			name[len] = '\0';
			archs[narchs] = seccomp_arch_resolve_name(name);
			if (archs[narchs])
				narchs++;
		}
		list += len + (list[len] == ',');
	}
	for (unsigned i = 0; i < narchs; i++) {
		/* libseccomp's arch tokens are the audit values, except that x32
		 * system calls arrive as x86_64 ones. */
		uint32_t audit = archs[i] == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : archs[i];
		struct arch_max *slot = arch_slot(a, &n, audit);

		if (slot)
			arch_largest(s, archs[i], slot);
	}
	return n;
}

static struct sock_filter insn(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	return (struct sock_filter){ .code = code, .jt = jt, .jf = jf, .k = k };
}

/* Build the stub into out (STUB_MAX_LEN entries); returns its length.
 * Layout: load arch; per architecture "not this one? skip; load nr; above
 * the largest? ENOSYS : main"; then "ja main", "ret ENOSYS", and the main
 * program follows. */
struct stub_jump {
	unsigned at;   /* index of the jump to patch */
	int field;     /* 0: jt, 1: jf, 2: k (BPF_JA) */
	int to_enosys; /* else to the main program */
};

struct stub {
	struct sock_filter *out;
	unsigned len;
	struct stub_jump fix[2 * STUB_MAX_ARCHS * 2];
	unsigned nfix;
};

/* One ABI's test on the loaded syscall number: "above max? ENOSYS : main",
 * or straight to the main program when the profile names nothing of it
 * (max 0). */
static void emit_above_max(struct stub *st, uint32_t max)
{
	unsigned at = st->len;

	if (max) {
		st->out[st->len++] = insn(BPF_JMP | BPF_JGT | BPF_K, max, 0, 0);
		st->fix[st->nfix++] = (struct stub_jump){ at, 0, 1 };
		st->fix[st->nfix++] = (struct stub_jump){ at, 1, 0 };
	} else {
		st->out[st->len++] = insn(BPF_JMP | BPF_JA, 0, 0, 0);
		st->fix[st->nfix++] = (struct stub_jump){ at, 2, 0 };
	}
}

static unsigned build_stub(const struct arch_max *a, unsigned n, struct sock_filter *out)
{
	struct stub st = { .out = out };
	unsigned enosys, main_at;

	out[st.len++] = insn(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	for (unsigned i = 0; i < n; i++) {
		unsigned skip_at;

		if (!a[i].max && !a[i].max_x32)
			continue;
		skip_at = st.len;
		out[st.len++] = insn(BPF_JMP | BPF_JEQ | BPF_K, a[i].audit_arch, 0, 0);
		out[st.len++] = insn(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
		if (a[i].audit_arch == SCMP_ARCH_X86_64) {
			/* x32 numbers carry the x32 bit: each ABI is compared with
			 * its own largest. */
			out[st.len++] = insn(BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, 0, 1);
			emit_above_max(&st, a[i].max_x32);
		}
		emit_above_max(&st, a[i].max);
		/* Not this architecture: on to the next block. */
		out[skip_at].jf = (uint8_t)(st.len - (skip_at + 1));
	}
	if (st.len == 1)
		return 0; /* nothing named for any architecture: no stub */
	out[st.len++] = insn(BPF_JMP | BPF_JA, 1, 0, 0); /* no block matched: main */
	enosys = st.len;
	out[st.len++] = insn(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA), 0, 0);
	main_at = st.len;
	for (unsigned i = 0; i < st.nfix; i++) {
		const struct stub_jump *j = &st.fix[i];
		unsigned off = (j->to_enosys ? enosys : main_at) - (j->at + 1);

		if (j->field == 0)
			out[j->at].jt = (uint8_t)off;
		else if (j->field == 1)
			out[j->at].jf = (uint8_t)off;
		else
			out[j->at].k = off;
	}
	return st.len;
}

/* Export the filter as BPF (with the stub in front when asked) and release
 * libseccomp's context: everything that allocates or opens happens before
 * the filter is loaded. */
static int export_program(scmp_filter_ctx f, const struct step *s, struct sock_fprog *prog)
{
	struct sock_filter stub[STUB_MAX_LEN];
	struct arch_max archs[STUB_MAX_ARCHS];
	unsigned stub_len = 0;
	unsigned char *bpf, *all;
	size_t len;
	int fd, rc;

	if (s->ints[2] & SECCOMP_F_ENOSYS)
		stub_len = build_stub(archs, stub_archs(s, archs), stub);
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
	if (len % sizeof(struct sock_filter) ||
	    len / sizeof(struct sock_filter) + stub_len > BPF_MAXINSNS) {
		free(bpf);
		return fail(EINVAL, "seccomp program of %zu instructions",
			    len / sizeof(struct sock_filter) + stub_len);
	}
	all = malloc(len + stub_len * sizeof(struct sock_filter));
	if (!all) {
		free(bpf);
		return fail(ENOMEM, "seccomp program");
	}
	memcpy(all, stub, stub_len * sizeof(struct sock_filter));
	memcpy(all + stub_len * sizeof(struct sock_filter), bpf, len);
	free(bpf);
	prog->len = (unsigned short)(len / sizeof(struct sock_filter) + stub_len);
	prog->filter = (struct sock_filter *)all;
	return 0;
}

/* Install the program; returns the listener fd (or 0).  The program is not
 * freed: from here on every syscall meets the filter, and the exec follows. */
static int load(const struct sock_fprog *prog, unsigned long flags)
{
	int rc = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog);

	if (rc < 0)
		return fail(errno, "seccomp(SET_MODE_FILTER, %#lx)", flags);
	return (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) ? rc : 0;
}

/* One sendmsg: the state JSON as data, the notify fd as SCM_RIGHTS (runc's
 * format for the listener), then the rest of the data if it was cut short. */
static int send_listener(int sock, const unsigned char *data, size_t len, int notify_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg;
	struct cmsghdr *c;
	struct iovec iov;
	size_t sent = 0;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	memset(&control, 0, sizeof(control));
	iov.iov_base = (void *)data;
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
	unsigned char *state = NULL;
	size_t state_len = 0;
	struct sock_fprog prog;
	scmp_filter_ctx f;
	int rc, notify_fd;

	/* The state the listener gets is read now: the parent wrote it before
	 * `start` (create) or at OP_SYNC(SYNC_SECCOMP) (exec). */
	if (listener) {
		rc = read_all(state_fd, &state, &state_len, STATE_MAX, "seccomp listener state");
		if (rc < 0)
			return rc;
	}
	f = seccomp_init(default_action);
	if (!f)
		return fail(EINVAL, "seccomp_init");
	rc = build(f, s, default_action);
	if (rc == 0)
		rc = export_program(f, s, &prog);
	seccomp_release(f);
	if (rc == 0)
		rc = load(&prog, kernel_flags(s->ints[2], listener));
	if (rc < 0 || !listener)
		return rc < 0 ? rc : 0;
	/* From here on the filter applies to us too: only a sendmsg and closes.
	 * The listener's copy of the notify fd is the only one that must live. */
	notify_fd = rc;
	rc = send_listener(sock, state, state_len, notify_fd);
	close(notify_fd);
	close(sock);
	close(state_fd);
	return rc;
}
