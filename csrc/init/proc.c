/*
 * proc.c: /proc writes, host/domain names, session, cwd, fd hygiene and
 * the final exec of the container process.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int write_proc_file(const char *path, enum proc_resolve how,
			   const char *data, size_t len)
{
	int fd = proc_open(path, O_WRONLY | O_TRUNC, how);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = write(fd, data, len);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int op_write_proc(const struct step *s)
{
	const char *path = s->strs[0].s;
	int err;

	while (*path == '/')
		path++;
	err = write_proc_file(path, PROC_STRICT, s->strs[1].s, s->strs[1].len);
	return err ? fail(-err, "/proc/%s", path) : 0;
}

/*
 * AppArmor's change_onexec: the profile named in str0 takes effect at the
 * next execve (the container process's).  The LSM-stacking file
 * (attr/apparmor/exec, kernel >= 5.8) is preferred; attr/exec is the older
 * one.  Both are opened below the procfs handle, checked to be on procfs, so
 * a mount over /proc cannot take the write.  It must come before the seccomp
 * filter is loaded, which may deny the write.
 */
int op_apparmor(const struct step *s)
{
	static const char *const files[] = { "self/attr/apparmor/exec", "self/attr/exec" };
	char buf[PATH_MAX + 8];
	int len = snprintf(buf, sizeof(buf), "exec %s", s->strs[0].s);
	const char *used = files[0];
	ssize_t n;
	int fd;

	if (len < 0 || (size_t)len >= sizeof(buf))
		return fail(ENAMETOOLONG, "AppArmor profile");
	fd = proc_open(files[0], O_WRONLY, PROC_SELF);
	if (fd == -ENOENT) {
		used = files[1];
		fd = proc_open(files[1], O_WRONLY, PROC_SELF);
	}
	if (fd < 0)
		return fail(-fd, "open /proc/%s", used);
	n = write(fd, buf, (size_t)len);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return fail((int)-n, "write /proc/%s", used);
	return n == len ? 0 : fail(EIO, "write /proc/%s", used);
}

/* Write LEN bytes of LABEL to /proc/thread-self/attr/NAME (an SELinux
 * process attribute), below the procfs handle like op_apparmor.  LEN 0
 * resets the attribute. */
static int write_selinux_attr(const char *name, const char *label, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "thread-self/attr/%s", name);
	fd = proc_open(path, O_WRONLY, PROC_SELF);
	if (fd < 0)
		return fail(-fd, "open /proc/%s", path);
	n = write(fd, label, len);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return fail((int)-n, "write /proc/%s", path);
	return (size_t)n == len ? 0 : fail(EIO, "write /proc/%s", path);
}

/*
 * SELinux's setexeccon: the label takes effect at the next execve (the
 * container process's) and is reset by it.  Like the AppArmor step it comes
 * before the seccomp filter, which may deny the write.
 */
int op_selinux_label(const struct step *s)
{
	return write_selinux_attr("exec", s->strs[0].s, s->strs[0].len);
}

#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_DESCRIBE 6
#define KEYCTL_SETPERM 5
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif

/* The permission mask of KEY: the fourth field of KEYCTL_DESCRIBE's
 * "type;uid;gid;perm;description", in hex. */
static int key_perm(long key, uint32_t *perm)
{
	char desc[512];
	const char *p = desc;
	long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, key, desc, sizeof(desc) - 1);
	char *end;

	if (n < 0)
		return -errno;
	desc[n < (long)sizeof(desc) ? n : (long)sizeof(desc) - 1] = 0;
	for (int field = 0; field < 3; field++) {
		p = strchr(p, ';');
		if (!p)
			return -EINVAL;
		p++;
	}
	errno = 0;
	*perm = (uint32_t)strtoul(p, &end, 16);
	return (errno || end == p || *end != ';') ? -EINVAL : 0;
}

/*
 * A session keyring of the container's own, as runc makes it, so the
 * container does not share its caller's.  With a label, the keyring is
 * created with it (attr/keycreate, reset afterwards); a kernel without
 * keyrings (ENOSYS) is not an error.
 */
int op_keyring(const struct step *s)
{
	const char *label = s->strs[1].s;
	uint32_t perm;
	long key;
	int err;

	if (s->strs[1].len) {
		err = write_selinux_attr("keycreate", label, s->strs[1].len);
		if (err)
			return err;
	}
	key = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, s->strs[0].s);
	err = key < 0 ? errno : 0;
	if (s->strs[1].len) {
		int reset = write_selinux_attr("keycreate", "", 0);

		if (reset)
			return reset;
	}
	if (err == ENOSYS)
		return 0;
	if (err)
		return fail(err, "join session keyring \"%s\"", s->strs[0].s);
	if (!s->ints[1])
		return 0;
	err = key_perm(key, &perm);
	if (err)
		return fail(-err, "describe session keyring \"%s\"", s->strs[0].s);
	perm = (perm & (uint32_t)s->ints[0]) | (uint32_t)s->ints[1];
	if (syscall(SYS_keyctl, KEYCTL_SETPERM, key, perm) < 0)
		return fail(errno, "set permissions of session keyring \"%s\"", s->strs[0].s);
	return 0;
}

int op_oom_score_adj(const struct step *s)
{
	char buf[24];
	/* All 64 bits: the kernel refuses what is out of range, nothing wraps. */
	int len = snprintf(buf, sizeof(buf), "%lld", (long long)(int64_t)s->ints[0]);
	int err = write_proc_file("self/oom_score_adj", PROC_SELF, buf, (size_t)len);

	return err ? fail(-err, "/proc/self/oom_score_adj") : 0;
}

int op_sethostname(const struct step *s)
{
	if (sethostname(s->strs[0].s, s->strs[0].len) < 0)
		return fail(errno, "%s", s->strs[0].s);
	return 0;
}

int op_setdomainname(const struct step *s)
{
	if (setdomainname(s->strs[0].s, s->strs[0].len) < 0)
		return fail(errno, "%s", s->strs[0].s);
	return 0;
}

int op_setsid(const struct step *s)
{
	(void)s;
	if (setsid() < 0)
		return fail(errno, "setsid");
	return 0;
}

/* A cwd inherited from outside the root (a leaked directory fd, or a path
 * that resolves through one) reads back as "(unreachable)/..."
 * (CVE-2024-21626). */
int op_chdir(const struct step *s)
{
	static int deferred;
	char cwd[PATH_MAX];

	if ((s->ints[0] & CHDIR_F_RETRY) && !deferred)
		return 0;
	if (chdir(s->strs[0].s) < 0) {
		if ((s->ints[0] & CHDIR_F_TRY) && (errno == EACCES || errno == EPERM)) {
			deferred = 1;
			return 0;
		}
		return fail(errno, "%s", s->strs[0].s);
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return fail(errno, "%s", s->strs[0].s);
	if (cwd[0] != '/')
		return fail(ENOENT, "%s is outside the container (%s)", s->strs[0].s, cwd);
	return 0;
}

static int cloexec_from_listing(unsigned first)
{
	int dfd = proc_open("self/fd", O_RDONLY | O_DIRECTORY, PROC_SELF);
	struct dirent *de;
	DIR *dir;

	if (dfd < 0)
		return dfd;
	dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return -errno;
	}
	while ((de = readdir(dir))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (*end || de->d_name[0] == '.' || fd < (long)first || fd == dfd)
			continue;
		fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(dir);
	return 0;
}

int op_close_fds(const struct step *s)
{
	unsigned first = s->ints[0] > 0x7fffffff ? 0x7fffffff : (unsigned)s->ints[0];
	int err;

	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	err = cloexec_from_listing(first);
	return err ? fail(-err, "/proc/self/fd") : 0;
}

/* 0 if PATH names a regular file we may execute, else -errno. */
static int check_candidate(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0 ? -errno : 0;
}

/* execvp's search: a name with a '/' is used as is, otherwise each PATH
 * entry is tried (an empty entry is the cwd).  As execvp does, EACCES from
 * any candidate wins over ENOENT when nothing is found. */
static int find_program(const char *name, const char *search, char *out, size_t size)
{
	int seen_eacces = 0;

	if (!*name)
		return -ENOENT;
	if (strchr(name, '/')) {
		if (snprintf(out, size, "%s", name) >= (int)size)
			return -ENAMETOOLONG;
		return check_candidate(out);
	}
	if (!search || !*search)
		search = DEFAULT_PATH;
	for (const char *p = search;; ) {
		const char *colon = strchrnul(p, ':');
		int dirlen = (int)(colon - p), err;

		if (snprintf(out, size, "%.*s%s%s", dirlen, p, dirlen ? "/" : "", name) < (int)size) {
			err = check_candidate(out);
			if (!err)
				return 0;
			if (err == -EACCES)
				seen_eacces = 1;
		}
		if (!*colon)
			break;
		p = colon + 1;
	}
	return seen_eacces ? -EACCES : -ENOENT;
}

/* What OP_CHECK_EXEC(CHECK_EXEC_F_KEEP) prepared for OP_EXEC: after the
 * seccomp filter is loaded, the exec needs nothing but execve(2) (a profile
 * may deny faccessat2, newfstatat, brk...; runc resolves the path before too). */
static char kept_path[PATH_MAX];
static char **kept_ptrs;
static uint64_t kept_count;

int op_check_exec(const struct step *s)
{
	char path[PATH_MAX];
	int err = find_program(s->strs[0].s, s->strs[1].s, path, sizeof(path));

	if (err)
		return fail(-err, "%s", s->strs[0].s);
	if (!(s->ints[0] & CHECK_EXEC_F_KEEP))
		return 0;
	/* Each string takes at least its 4-byte length in the plan. */
	if (s->ints[1] > PLAN_MAX_LEN / 4)
		return fail(E2BIG, "%llu exec arguments", (unsigned long long)s->ints[1]);
	free(kept_ptrs);
	kept_ptrs = calloc((size_t)s->ints[1] + 2, sizeof(char *));
	if (!kept_ptrs)
		return fail(ENOMEM, "%llu exec arguments", (unsigned long long)s->ints[1]);
	kept_count = s->ints[1];
	memcpy(kept_path, path, sizeof(kept_path));
	return 0;
}

static const char *env_path(char *const *envp)
{
	for (; *envp; envp++)
		if (!strncmp(*envp, "PATH=", 5))
			return *envp + 5;
	return NULL;
}

/* runc's words, which engines and users match on: "exec PATH: no such file
 * or directory" (Go's lower-case errno text), on the process's stderr. */
static __attribute__((noreturn)) void exec_failed(const char *prog, int err)
{
	const char *text = strerror(err);

	dprintf(2, "exec %s: %c%s\n", prog,
		(text[0] >= 'A' && text[0] <= 'Z') ? text[0] - 'A' + 'a' : text[0], text + 1);
	_exit(err == ENOENT ? 127 : 126);
}

int op_exec(const struct step *s)
{
	size_t argc = (size_t)s->ints[0], envc = (size_t)s->ints[1];
	int kept = kept_ptrs && argc + envc <= kept_count;
	char **argv = kept ? kept_ptrs : calloc(argc + envc + 2, sizeof(char *));
	char **envp = argv + argc + 1;
	char path[PATH_MAX];
	int err;

	if (!argv)
		exec_failed(s->strs[0].s, ENOMEM);
	for (size_t i = 0; i < argc; i++)
		argv[i] = (char *)s->strs[i].s;
	argv[argc] = NULL;
	for (size_t i = 0; i < envc; i++)
		envp[i] = (char *)s->strs[argc + i].s;
	envp[envc] = NULL;
	if (!kept) {
		err = find_program(argv[0], env_path(envp), path, sizeof(path));
		if (err)
			exec_failed(argv[0], -err);
	}
	execve(kept ? kept_path : path, argv, envp);
	exec_failed(kept ? kept_path : path, errno);
}
