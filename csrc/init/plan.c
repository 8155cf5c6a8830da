/*
 * plan.c: receive the plan message and validate all of it before any step
 * runs (rules in protocol.h).  Nothing here trusts a length it has not
 * checked against the bytes actually received.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "init.h"

#define HEADER_LEN 16u
#define STEP_HEADER_LEN (8u + 8u * STEP_NINTS)

/* What each op needs from the plan.  binary: bit i set when str[i] may hold
 * NUL bytes; every other string is a C string and must not. */
struct op_rule {
	uint8_t known;
	uint8_t min_strs;
	uint8_t binary;
};

static const struct op_rule rules[OP_MAX] = {
	[OP_SETNS] = { 1, 1, 0 },
	[OP_UNSHARE_USER] = { 1, 0, 0 },
	[OP_UNSHARE] = { 1, 0, 0 },
	[OP_TIMENS_OFFSETS] = { 1, 0, 0 },
	[OP_FORK] = { 1, 0, 0 },
	[OP_SET_ROOT] = { 1, 1, 0 },
	[OP_MOUNT] = { 1, 4, 0 },
	[OP_MKDIR] = { 1, 1, 0 },
	[OP_MKNOD] = { 1, 1, 0 },
	[OP_SYMLINK] = { 1, 2, 0 },
	[OP_PIVOT_ROOT] = { 1, 0, 0 },
	[OP_CHROOT] = { 1, 0, 0 },
	[OP_MASK_PATH] = { 1, 1, 0 },
	[OP_READONLY_PATH] = { 1, 1, 0 },
	[OP_WRITE_PROC] = { 1, 2, 0x2 },
	[OP_SETHOSTNAME] = { 1, 1, 0 },
	[OP_SETDOMAINNAME] = { 1, 1, 0 },
	[OP_SYNC] = { 1, 0, 0 },
	[OP_READY] = { 1, 0, 0 },
	[OP_WAIT_START] = { 1, 0, 0 },
	[OP_RLIMIT] = { 1, 0, 0 },
	[OP_UMASK] = { 1, 0, 0 },
	[OP_SETGROUPS] = { 1, 1, 0x1 },
	[OP_SETID] = { 1, 0, 0 },
	[OP_CAPS] = { 1, 0, 0 },
	[OP_NO_NEW_PRIVS] = { 1, 0, 0 },
	[OP_CHDIR] = { 1, 1, 0 },
	[OP_CLOSE_FDS] = { 1, 0, 0 },
	[OP_CHECK_EXEC] = { 1, 2, 0 },
	[OP_EXEC] = { 1, 1, 0 },
	[OP_OOM_SCORE_ADJ] = { 1, 0, 0 },
	[OP_SETSID] = { 1, 0, 0 },
	[OP_SECCOMP] = { 1, 2, 0x2 },
	[OP_CONSOLE] = { 1, 0, 0 },
	[OP_HOOK] = { 1, 1, 0 },
	[OP_LOOPBACK_UP] = { 1, 0, 0 },
	[OP_MOUNT_SETATTR] = { 1, 1, 0 },
	[OP_MOUNT_IDMAP] = { 1, 1, 0 },
	[OP_PERSONALITY] = { 1, 0, 0 },
	[OP_SCHEDULER] = { 1, 0, 0 },
	[OP_IOPRIO] = { 1, 0, 0 },
	[OP_CPU_AFFINITY] = { 1, 1, 0x1 },
	[OP_MEMPOLICY] = { 1, 1, 0x1 },
	[OP_NETDEV] = { 1, 1, 0xfe },
	[OP_APPARMOR] = { 1, 1, 0 },
	[OP_SELINUX_LABEL] = { 1, 1, 0 },
	[OP_KEYRING] = { 1, 2, 0 },
	[OP_BIND_SOURCES_FORK] = { 1, 1, 0 },
	[OP_BIND_SOURCES_OPEN] = { 1, 0, 0 },
};

/* +1: room for the terminator of the last string (see terminate_strings). */
static unsigned char buf[PLAN_MAX_LEN + 1];

#define bad(...) fail(EBADMSG, __VA_ARGS__)

/* OP_NETDEV str1..: u8 family, u8 prefix length, 4 or 16 address bytes. */
static int netdev_addr_ok(const struct pstr *a)
{
	unsigned char family = a->len ? (unsigned char)a->s[0] : 0;

	if (family == AF_INET)
		return a->len == 6 && (unsigned char)a->s[1] <= 32;
	if (family == AF_INET6)
		return a->len == 18 && (unsigned char)a->s[1] <= 128;
	return 0;
}

static int check_op(uint32_t idx, const struct step *s)
{
	const struct op_rule *r = s->op < OP_MAX ? &rules[s->op] : NULL;

	if (!r || !r->known)
		return bad("step %u: unknown op %u", idx, s->op);
	if (s->nstrs < r->min_strs)
		return bad("step %u: too few strings (%u)", idx, s->nstrs);
	for (unsigned i = 0; i < s->nstrs && i < 8; i++) {
		int binary = (r->binary >> i) & 1;

		if (!binary && memchr(s->strs[i].s, 0, s->strs[i].len))
			return bad("step %u: string %u contains a NUL byte", idx, i);
	}
	if (s->op == OP_SETGROUPS && s->strs[0].len % 4)
		return bad("step %u: group list length %u", idx, s->strs[0].len);
	if (s->op == OP_SECCOMP && seccomp_plan_error(s))
		return bad("step %u: %s", idx, seccomp_plan_error(s));
	if (s->op == OP_CONSOLE &&
	    (s->ints[0] > 0x7fffffff || s->ints[1] > 0xffff || s->ints[2] > 0xffff ||
	     (s->ints[3] & ~(uint64_t)CONSOLE_F_MOUNT)))
		return bad("step %u: bad console arguments", idx);
	if (s->op == OP_HOOK) {
		uint64_t argc = s->ints[1], envc = s->ints[2];

		if (argc > s->nstrs - 1u || envc > s->nstrs - 1u - argc ||
		    s->ints[3] >= HOOK_STATE_SLOTS)
			return bad("step %u: bad hook argc/envc/slot for %u strings", idx, s->nstrs);
		if (!s->strs[0].len || s->strs[0].s[0] != '/')
			return bad("step %u: hook path is not absolute", idx);
		for (unsigned i = 0; i < s->nstrs; i++)
			if (memchr(s->strs[i].s, 0, s->strs[i].len))
				return bad("step %u: string %u contains a NUL byte", idx, i);
	}
	if (s->op == OP_MOUNT && (s->ints[1] & MOUNT_F_DETACHED) &&
	    s->ints[3] >= MOUNT_IDMAP_SLOTS)
		return bad("step %u: idmap slot %llu", idx, (unsigned long long)s->ints[3]);
	if (s->op == OP_MOUNT && (s->ints[1] & MOUNT_F_SOURCE_FD) &&
	    s->ints[3] >= MOUNT_SOURCE_SLOTS)
		return bad("step %u: bind source slot %llu", idx, (unsigned long long)s->ints[3]);
	if (s->op == OP_MOUNT && (s->ints[1] & MOUNT_F_LABEL) &&
	    (s->nstrs < 5 || !s->strs[4].len || s->strs[4].len > PATH_MAX))
		return bad("step %u: bad mount label", idx);
	if (s->op == OP_BIND_SOURCES_FORK) {
		if (s->nstrs > MOUNT_SOURCE_SLOTS)
			return bad("step %u: %u bind sources", idx, s->nstrs);
		for (unsigned i = 0; i < s->nstrs; i++)
			if (memchr(s->strs[i].s, 0, s->strs[i].len))
				return bad("step %u: string %u contains a NUL byte", idx, i);
	}
	if (s->op == OP_BIND_SOURCES_OPEN && s->ints[0] > MOUNT_SOURCE_SLOTS)
		return bad("step %u: %llu bind sources", idx, (unsigned long long)s->ints[0]);
	if (s->op == OP_MOUNT_IDMAP &&
	    (s->ints[0] > 0x7fffffff || s->ints[2] >= MOUNT_IDMAP_SLOTS))
		return bad("step %u: bad idmap fd or slot", idx);
	if (s->op == OP_IOPRIO && (s->ints[0] < 1 || s->ints[0] > 3 || s->ints[1] > 7))
		return bad("step %u: bad I/O priority", idx);
	if ((s->op == OP_CPU_AFFINITY || s->op == OP_MEMPOLICY) && s->strs[0].len % 8)
		return bad("step %u: mask length %u", idx, s->strs[0].len);
	/* set_mempolicy reads maxnode - 1 bits from the mask: never past it. */
	if (s->op == OP_MEMPOLICY &&
	    (s->ints[0] > 0x7fffffff ||
	     (s->strs[0].len && s->ints[1] > 8 * (uint64_t)s->strs[0].len + 1)))
		return bad("step %u: bad memory policy mode or maxnode", idx);
	if (s->op == OP_NETDEV) {
		if (!s->strs[0].len || s->strs[0].len > IFNAMSIZ - 1)
			return bad("step %u: network device name of %u bytes", idx, s->strs[0].len);
		for (unsigned i = 1; i < s->nstrs; i++)
			if (!netdev_addr_ok(&s->strs[i]))
				return bad("step %u: bad address %u", idx, i);
	}
	if (s->op == OP_APPARMOR && (!s->strs[0].len || s->strs[0].len > PATH_MAX))
		return bad("step %u: AppArmor profile name of %u bytes", idx, s->strs[0].len);
	if (s->op == OP_SELINUX_LABEL && (!s->strs[0].len || s->strs[0].len > PATH_MAX))
		return bad("step %u: SELinux label of %u bytes", idx, s->strs[0].len);
	if (s->op == OP_KEYRING &&
	    (!s->strs[0].len || s->strs[0].len > 255 || s->strs[1].len > PATH_MAX))
		return bad("step %u: keyring name of %u or label of %u bytes", idx,
			   s->strs[0].len, s->strs[1].len);
	if (s->op == OP_SYNC && s->ints[1] > HOOK_STATE_SLOTS)
		return bad("step %u: %llu hook states", idx, (unsigned long long)s->ints[1]);
	if (s->op == OP_EXEC) {
		uint64_t argc = s->ints[0], envc = s->ints[1];

		if (argc < 1 || argc > s->nstrs || envc > s->nstrs - argc)
			return bad("step %u: bad argc/envc for %u strings", idx, s->nstrs);
		for (unsigned i = 0; i < s->nstrs; i++)
			if (memchr(s->strs[i].s, 0, s->strs[i].len))
				return bad("step %u: string %u contains a NUL byte", idx, i);
	}
	return 0;
}

/* Parse the strings of one step starting at *pos, bounded by end. */
static int parse_strings(uint32_t idx, struct step *s, struct pstr *strs,
			 size_t *pos, size_t end)
{
	for (unsigned i = 0; i < s->nstrs; i++) {
		uint32_t len;

		if (end - *pos < 4)
			return bad("step %u: string %u header runs past the step", idx, i);
		len = le_get32(buf + *pos);
		*pos += 4;
		if (len > end - *pos)
			return bad("step %u: string %u runs past the step", idx, i);
		strs[i].s = (const char *)buf + *pos;
		strs[i].len = len;
		*pos += len;
	}
	s->strs = strs;
	return 0;
}

static int parse_step(uint32_t idx, struct step *s, struct pstr *strs,
		      size_t *pos, size_t total)
{
	uint32_t step_len;
	size_t end;
	int err;

	if (total - *pos < STEP_HEADER_LEN)
		return bad("step %u: header runs past the plan (%u)", idx, (uint32_t)*pos);
	s->op = le_get16(buf + *pos);
	s->nstrs = le_get16(buf + *pos + 2);
	step_len = le_get32(buf + *pos + 4);
	if (step_len < STEP_HEADER_LEN || step_len > total - *pos)
		return bad("step %u: bad length %u", idx, step_len);
	for (int i = 0; i < STEP_NINTS; i++)
		s->ints[i] = le_get64(buf + *pos + 8 + 8 * i);
	end = *pos + step_len;
	*pos += STEP_HEADER_LEN;
	err = parse_strings(idx, s, strs, pos, end);
	if (err)
		return err;
	if (*pos != end)
		return bad("step %u: %u trailing bytes", idx, (uint32_t)(end - *pos));
	return check_op(idx, s);
}

static int check_header(size_t got, uint32_t *nsteps)
{
	uint32_t total;

	if (got < HEADER_LEN)
		return bad("message too short (%u bytes)", (uint32_t)got);
	if (le_get32(buf) != PLAN_MAGIC)
		return bad("bad magic %#x", le_get32(buf));
	if (le_get16(buf + 4) != PLAN_VERSION || le_get16(buf + 6) != 0)
		return bad("unsupported version %u.%u", le_get16(buf + 4), le_get16(buf + 6));
	total = le_get32(buf + 8);
	if (total != got)
		return bad("length %u, received %u", total, (uint32_t)got);
	*nsteps = le_get32(buf + 12);
	/* Each step takes at least a header: bounds the allocations below. */
	if (*nsteps > (got - HEADER_LEN) / STEP_HEADER_LEN)
		return bad("%u steps cannot fit in %u bytes", *nsteps, (uint32_t)got);
	return 0;
}

/* Strings are only terminated after every length has been read: the byte
 * after a string is the first byte of the next length field or header. */
static void terminate_strings(const struct plan *p)
{
	for (uint32_t i = 0; i < p->nsteps; i++)
		for (unsigned j = 0; j < p->steps[i].nstrs; j++) {
			const struct pstr *str = &p->steps[i].strs[j];
			((char *)str->s)[str->len] = '\0';
		}
}

static int parse_plan(size_t got, struct plan *out)
{
	size_t pos = HEADER_LEN, max_strs = (got - HEADER_LEN) / 4;
	struct pstr *strs, *next;
	uint32_t nsteps = 0;
	int err = check_header(got, &nsteps);

	if (err)
		return err;
	out->steps = calloc(nsteps ? nsteps : 1, sizeof(*out->steps));
	strs = calloc(max_strs ? max_strs : 1, sizeof(*strs));
	if (!out->steps || !strs)
		return fail(ENOMEM, "plan of %u steps", nsteps);
	next = strs;
	for (uint32_t i = 0; i < nsteps; i++) {
		err = parse_step(i, &out->steps[i], next, &pos, got);
		if (err)
			return err;
		next += out->steps[i].nstrs;
	}
	for (uint32_t i = 0; i < nsteps; i++) {
		const struct step *s = &out->steps[i];

		if (s->op == OP_MOUNT && (s->ints[1] & MOUNT_F_OR_ELSE) &&
		    (s->ints[4] < 1 || s->ints[4] >= nsteps - i))
			return bad("step %u: %llu alternative steps of %u", i,
				   (unsigned long long)s->ints[4], nsteps);
	}
	if (pos != got)
		return bad("%u bytes after step %u", (uint32_t)(got - pos), nsteps);
	out->nsteps = nsteps;
	terminate_strings(out);
	return 0;
}

int plan_receive(int fd, struct plan *out)
{
	ssize_t got;

	do
		got = recv(fd, buf, PLAN_MAX_LEN, MSG_TRUNC);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return fail(errno, "receiving the plan");
	if (got == 0)
		return fail(EBADMSG, "no plan received");
	if ((size_t)got > PLAN_MAX_LEN)
		return bad("plan of %u bytes exceeds the limit %u", (uint32_t)got, PLAN_MAX_LEN);
	return parse_plan((size_t)got, out);
}
