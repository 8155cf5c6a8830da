/*
 * ids_caps.c: identity and privilege steps: rlimits, umask, groups,
 * uid/gid, capabilities, no_new_privs.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#define GROUPS_MAX 65536

/* Names for messages only: rlimits fail after `start`, where the planner's
 * step descriptions are out of reach and `start` shows this text. */
static const char *const rlimit_names[] = {
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
	"RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
	"RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
	"RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

int op_rlimit(const struct step *s)
{
	struct rlimit rl = { .rlim_cur = s->ints[1], .rlim_max = s->ints[2] };
	uint64_t res = s->ints[0];

	if (res > 0x7fffffff)
		return fail(EINVAL, "setrlimit resource %llu", (unsigned long long)res);
	if (setrlimit((int)res, &rl) < 0)
		return fail(errno, "setrlimit %s (%llu, %llu)",
			    res < sizeof(rlimit_names) / sizeof(rlimit_names[0]) ? rlimit_names[res] : "?",
			    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
	return 0;
}

int op_umask(const struct step *s)
{
	umask((mode_t)(s->ints[0] & 0777));
	return 0;
}

int op_setgroups(const struct step *s)
{
	size_t n = s->strs[0].len / 4;
	gid_t *gids;
	int err = 0;

	if (n > GROUPS_MAX)
		return fail(EINVAL, "%zu groups", n);
	gids = calloc(n ? n : 1, sizeof(*gids));
	if (!gids)
		return fail(ENOMEM, "%zu groups", n);
	for (size_t i = 0; i < n; i++) {
		uint32_t g;

		memcpy(&g, s->strs[0].s + 4 * i, 4);
		gids[i] = (gid_t)le32toh(g);
	}
	if (setgroups(n, gids) < 0)
		err = fail(errno, "%zu groups", n);
	free(gids);
	return err;
}

#ifndef PIPEFS_MAGIC
#define PIPEFS_MAGIC 0x50495045
#endif
#ifndef SOCKFS_MAGIC
#define SOCKFS_MAGIC 0x534F434B
#endif

/* See SETID_F_STDIO.  Errors that mean "not ours to change" (EINVAL: unmapped
 * id, EPERM: owner outside our user namespace, EROFS) are ignored, as in runc. */
static int chown_stdio(uid_t uid, uint64_t flags)
{
	struct stat null_st, st;
	struct statfs sfs;

	if (stat("/dev/null", &null_st) < 0)
		null_st.st_rdev = 0;
	for (int fd = 0; fd < 3; fd++) {
		int ours;

		if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0)
			continue;
		if (S_ISCHR(st.st_mode))
			ours = (flags & SETID_F_STDIO_TTY) && st.st_rdev != null_st.st_rdev;
		else
			ours = (S_ISFIFO(st.st_mode) && sfs.f_type == PIPEFS_MAGIC) ||
			       (S_ISSOCK(st.st_mode) && sfs.f_type == SOCKFS_MAGIC);
		if (!ours || st.st_uid == uid)
			continue;
		if (fchown(fd, uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM &&
		    errno != EROFS)
			return fail(errno, "chown fd %d to uid %u", fd, uid);
	}
	return 0;
}

int op_setid(const struct step *s)
{
	uid_t uid = (uid_t)s->ints[0];
	gid_t gid = (gid_t)s->ints[1];

	/* (uid_t)-1 means "leave unchanged" to setresuid: the process would
	 * stay root.  Larger values would wrap around to some other id. */
	if (s->ints[0] >= 0xffffffffu || s->ints[1] >= 0xffffffffu)
		return fail(EINVAL, "uid %llu gid %llu", (unsigned long long)s->ints[0],
			    (unsigned long long)s->ints[1]);
	/* Keep the permitted set across the uid change; OP_CAPS then decides
	 * what the process really keeps and clears the flag again. */
	if (s->ints[2] & (SETID_F_STDIO | SETID_F_STDIO_TTY)) {
		int err = chown_stdio(uid, s->ints[2]);

		if (err)
			return err;
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return fail(errno, "PR_SET_KEEPCAPS");
	if (setresgid(gid, gid, gid) < 0)
		return fail(errno, "gid %u", gid);
	if (setresuid(uid, uid, uid) < 0)
		return fail(errno, "uid %u", uid);
	return 0;
}

int op_no_new_privs(const struct step *s)
{
	(void)s;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(errno, "PR_SET_NO_NEW_PRIVS");
	return 0;
}

/* The running kernel's highest capability; masks may name newer ones.
 * Read once: a later OP_CAPS may run under the container's seccomp filter. */
static int last_cap(void)
{
	static int cached = -1;
	char buf[16] = "";
	int fd;
	ssize_t n;

	if (cached >= 0)
		return cached;
	fd = proc_open("sys/kernel/cap_last_cap", O_RDONLY, PROC_STRICT);
	if (fd < 0)
		return fd;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	cached = atoi(buf);
	return cached;
}

static int cap_set(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(eff >> (32 * i));
		data[i].permitted = (uint32_t)(perm >> (32 * i));
		data[i].inheritable = (uint32_t)(inh >> (32 * i));
	}
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

static int cap_get(uint64_t *perm, uint64_t *inh)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	*perm = data[0].permitted | (uint64_t)data[1].permitted << 32;
	*inh = data[0].inheritable | (uint64_t)data[1].inheritable << 32;
	return 0;
}

static int drop_bounding(uint64_t keep, int last)
{
	for (int cap = 0; cap <= last; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return fail(errno, "dropping capability %d from the bounding set", cap);
	}
	return 0;
}

/* The kernel only raises an ambient capability that is both permitted and
 * inheritable.  Configs in the wild (runc's own older `spec` template among
 * them) list ambient capabilities without the inheritable ones; runc goes on
 * without them, so EPERM here is not fatal either. */
static int raise_ambient(uint64_t ambient, int last)
{
	for (int cap = 0; cap <= last; cap++) {
		if (!(ambient & (1ULL << cap)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EPERM)
			return fail(errno, "raising ambient capability %d", cap);
	}
	return 0;
}

/* Dropping from the bounding set needs CAP_SETPCAP in the effective set,
 * which a uid change away from root has cleared while leaving it permitted
 * (PR_SET_KEEPCAPS): make the permitted set effective first. */
static int bounding_phase(uint64_t keep, int last)
{
	uint64_t perm = 0, inh = 0;
	int err = cap_get(&perm, &inh);

	if (!err)
		err = cap_set(perm, perm, inh);
	if (err)
		return fail(-err, "capget/capset");
	return drop_bounding(keep, last);
}

int op_caps(const struct step *s)
{
	uint64_t flags = s->ints[5], mask;
	int last, err;

	/* After the seccomp filter: only the capset the filter load needed to
	 * postpone (CAP_SYS_ADMIN out of the sets); the planner made every bit a
	 * subset of what the previous OP_CAPS set. */
	if (flags & CAPS_F_CAPSET_ONLY) {
		err = cap_set(s->ints[1], s->ints[2], s->ints[3]);
		return err ? fail(-err, "capset") : 0;
	}
	last = last_cap();

	if (last < 0)
		return fail(-last, "/proc/sys/kernel/cap_last_cap");
	if (last > 63)
		last = 63;
	mask = last == 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
	if (!(flags & CAPS_F_NO_BOUNDING)) {
		err = bounding_phase(s->ints[0], last);
		if (err || (flags & CAPS_F_BOUNDING_ONLY))
			return err;
	}
	err = cap_set(s->ints[1] & mask, s->ints[2] & mask, s->ints[3] & mask);
	if (err)
		return fail(-err, "capset");
	err = raise_ambient(s->ints[4] & mask, last);
	if (err)
		return err;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return fail(errno, "PR_SET_KEEPCAPS");
	return 0;
}
