/*
 * paths.c: path resolution that cannot leave the container's root, and
 * opens below the procfs handle.
 *
 * Root paths go through openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).
 * Where openat2 is missing (or PYRUNC_INIT_NO_OPENAT2 is set) a component
 * walk with O_PATH|O_NOFOLLOW fds does the same job in user space: ".." is
 * applied to our own stack of fds (never asked of the kernel) and symlink
 * texts are re-resolved from the root, so neither can climb out of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "init.h"


#define WALK_MAX_DEPTH 256
#define WALK_MAX_LINKS 40

static int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how how = { .flags = flags, .mode = 0, .resolve = resolve };
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

void fd_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

int root_fd_get(void)
{
	if (ctx.root_fd < 0) {
		/* No OP_SET_ROOT: root paths are relative to our current root
		 * (e.g. after joining a container's mount namespace). */
		ctx.root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (ctx.root_fd < 0)
			return -errno;
		snprintf(ctx.root_path, sizeof(ctx.root_path), "/");
	}
	return ctx.root_fd;
}

/* An O_PATH fd pins the directory it was opened on, not a mount stacked on
 * it later; after mounting over the root itself the root fd must be
 * reopened to see the new mount. */
int root_reopen(void)
{
	int fd = open(ctx.root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ctx.root_fd >= 0)
		close(ctx.root_fd);
	ctx.root_fd = fd;
	return 0;
}

int root_same_as_root(int fd)
{
	struct stat a, b;
	int root = root_fd_get();

	if (root < 0 || fstat(fd, &a) < 0 || fstat(root, &b) < 0)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* ---- component walk (no openat2) ---------------------------------------- */

struct walk {
	int fds[WALK_MAX_DEPTH + 1]; /* fds[0] is the root fd, not owned */
	int depth;
	int links;
	char rest[2 * PATH_MAX];
};

static void walk_pop_to(struct walk *w, int depth)
{
	while (w->depth > depth)
		close(w->fds[w->depth--]);
}

/* Replace the consumed part of the path with a symlink's text. */
static int walk_follow(struct walk *w, int linkfd, const char *remaining)
{
	char target[PATH_MAX + 1], tmp[sizeof(w->rest)];
	ssize_t n = readlinkat(linkfd, "", target, sizeof(target) - 1);

	if (n < 0)
		return -errno;
	if (++w->links > WALK_MAX_LINKS)
		return -ELOOP;
	target[n] = '\0';
	if (snprintf(tmp, sizeof(tmp), "%s/%s", target, remaining) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if (target[0] == '/')
		walk_pop_to(w, 0);
	memcpy(w->rest, tmp, sizeof(tmp));
	return 0;
}

/* Take one component off w->rest and apply it.  Returns 1 when done. */
static int walk_step(struct walk *w, int nofollow)
{
	char name[NAME_MAX + 1], *p = w->rest, *end;
	struct stat st;
	size_t len;
	int fd, last, err;

	while (*p == '/')
		p++;
	if (!*p)
		return 1;
	end = strchrnul(p, '/');
	len = (size_t)(end - p);
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name, p, len);
	name[len] = '\0';
	last = *end == '\0';
	memmove(w->rest, end, strlen(end) + 1);

	if (!strcmp(name, "."))
		return 0;
	if (!strcmp(name, "..")) {
		walk_pop_to(w, w->depth > 0 ? w->depth - 1 : 0);
		return 0;
	}
	fd = openat(w->fds[w->depth], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (S_ISLNK(st.st_mode) && !(last && nofollow)) {
		err = walk_follow(w, fd, w->rest);
		close(fd);
		return err;
	}
	if (!last && !S_ISDIR(st.st_mode)) {
		close(fd);
		return -ENOTDIR;
	}
	if (w->depth == WALK_MAX_DEPTH) {
		close(fd);
		return -ENAMETOOLONG;
	}
	w->fds[++w->depth] = fd;
	return 0;
}

static int walk_in_root(int root, const char *path, int nofollow)
{
	static struct walk w;
	int err, fd;

	if (strlen(path) >= sizeof(w.rest))
		return -ENAMETOOLONG;
	w.fds[0] = root;
	w.depth = 0;
	w.links = 0;
	strcpy(w.rest, path);
	while ((err = walk_step(&w, nofollow)) == 0)
		;
	if (err < 0) {
		walk_pop_to(&w, 0);
		return err;
	}
	if (w.depth == 0) {
		fd = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	fd = w.fds[w.depth--];
	walk_pop_to(&w, 0);
	return fd;
}

/* ---- root paths ---------------------------------------------------------- */

int root_open(const char *path, int nofollow)
{
	int root = root_fd_get();
	int fd = -ENOSYS;

	if (root < 0)
		return root;
	if (!ctx.no_openat2) {
		/* EAGAIN: a concurrent rename made the kernel give up; retry. */
		for (int i = 0; i < 32; i++) {
			fd = sys_openat2(root, path,
					 O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0),
					 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
			if (fd != -EAGAIN)
				break;
		}
		if (fd != -ENOSYS)
			return fd;
		ctx.no_openat2 = 1;
	}
	return walk_in_root(root, path, nofollow);
}

/* Split PATH into its parent (opened inside the root; created when CREATE)
 * and its last component, copied to BASE. */
int root_open_parent(const char *path, char *base, size_t basesz, int create)
{
	char dir[PATH_MAX];
	char *slash;
	size_t len = strlen(path);
	struct stat st;
	int fd;

	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, len + 1);
	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = '\0';
	slash = strrchr(dir, '/');
	if (snprintf(base, basesz, "%s", slash ? slash + 1 : dir) >= (int)basesz)
		return -ENAMETOOLONG;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EINVAL;
	if (slash)
		slash[1] = '\0';
	else
		strcpy(dir, ".");
	fd = create ? root_mkdir_p(dir, 0755) : root_open(dir, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return -ENOTDIR;
	}
	return fd;
}

/* Open (creating when missing) one prefix of a path being made. */
static int mkdir_prefix(char *prefix, int parent, const char *name, unsigned mode)
{
	struct stat st;
	int fd = root_open(prefix, 0);

	if (fd == -ENOENT && parent >= 0) {
		/* mkdirat never follows a symlink in NAME; whatever is there
		 * afterwards is resolved inside the root by root_open. */
		if (mkdirat(parent, name, mode) < 0 && errno != EEXIST)
			return -errno;
		fd = root_open(prefix, 0);
	}
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return -ENOTDIR;
	}
	return fd;
}

static int only_slashes(const char *p)
{
	while (*p == '/')
		p++;
	return *p == '\0';
}

/* mkdir -p inside the root; returns an O_PATH fd of the directory.  Each
 * prefix is resolved from the root again, so a symlink in the image steers
 * the creation only to places inside the root.  MODE applies to the last
 * component, parents get 0755. */
int root_mkdir_p(const char *path, unsigned mode)
{
	char buf[PATH_MAX], name[NAME_MAX + 1];
	size_t len = strlen(path), i = 0;
	int parent;

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	parent = root_open("/", 0);
	while (parent >= 0) {
		size_t start;
		char saved;
		int fd;

		while (buf[i] == '/')
			i++;
		if (!buf[i])
			break;
		start = i;
		while (buf[i] && buf[i] != '/')
			i++;
		if (i - start > NAME_MAX) {
			close(parent);
			return -ENAMETOOLONG;
		}
		memcpy(name, buf + start, i - start);
		name[i - start] = '\0';
		saved = buf[i];
		buf[i] = '\0';
		fd = mkdir_prefix(buf, parent, name,
				  saved && !only_slashes(buf + i + 1) ? 0755 : mode);
		buf[i] = saved;
		close(parent);
		parent = fd;
	}
	return parent;
}

/* ---- procfs -------------------------------------------------------------- */

/*
 * The procfs handle.  Every /proc write pyrunc-init makes (sysctls,
 * oom_score_adj, timens_offsets, cap_last_cap, the exec.fifo reopen) is an
 * open beneath ctx.proc_fd, so the handle is what decides where they land.
 *
 * An fd of the host's "/proc" pins that mount, but a lookup below it still
 * crosses whatever is mounted on its subdirectories in the host's mount
 * namespace, at the time of the lookup: a bind of one procfs file over
 * another (CVE-2025-52881) passes the fstatfs check and redirects the
 * write.  So, as runc/crun/youki now do, the handle is a procfs that no
 * mount table holds:
 *
 *  1. fsopen("proc") + FSCONFIG_CMD_CREATE + fsmount: a fresh procfs
 *     instance on a detached mount (nosuid, nodev, noexec).  Nothing can be
 *     mounted under it, it shows in no mountinfo, and it is freed when the
 *     fd is closed (O_CLOEXEC: at exec at the latest).  Made in stage A,
 *     still in the host's pid namespace, so it is the procfs of that
 *     namespace: "self" and "<pid>" name this process (and the container
 *     init after OP_FORK into a new pid namespace, a descendant) as the
 *     parent sees them, exactly as the host's /proc did.
 *  2. If the kernel refuses (no fsopen, no CAP_SYS_ADMIN over the mount
 *     namespace, a user namespace where procfs is not fully visible):
 *     open_tree("/proc", OPEN_TREE_CLONE), a detached copy of the host's
 *     proc mount without its submounts.  Same superblock as /proc, but
 *     again no mount can be placed below it.
 *  3. If that is refused too: open("/proc"), the previous behaviour.
 *
 * Whatever the kind, the handle must be procfs (fstatfs), and so must every
 * file opened below it; openat2 adds RESOLVE_NO_XDEV and the mount id of
 * the result is compared with the handle's, so with the host's /proc a
 * mount stacked below it is refused (EXDEV) rather than written through.
 * Sysctl files resolve per the namespaces of the task doing the lookup,
 * not per the procfs instance, so net.* still lands in the container's net
 * namespace.  PYRUNC_INIT_PROCFS=clone|host starts at step 2 or 3 (tests).
 */

#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSCONFIG_CMD_CREATE
#define FSCONFIG_CMD_CREATE 6
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef MOUNT_ATTR_NOEXEC
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

static int procfs_fsmount(void)
{
	int fsfd, mfd;

	fsfd = (int)syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return -errno;
	if (syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int err = -errno;

		close(fsfd);
		return err;
	}
	mfd = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC,
			   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (mfd < 0)
		mfd = -errno;
	close(fsfd);
	return mfd;
}

static int procfs_clone(void)
{
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc",
			      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* The mount id of FD, or 0 when the kernel does not report one. */
static uint64_t mount_id_of(int fd)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID))
		return 0;
	return stx.stx_mnt_id;
}

int proc_handle_open(const char *want)
{
	struct statfs sfs;
	int kind = PROC_HANDLE_FSMOUNT, fd = -ENOSYS;

	if (want && !strcmp(want, "clone"))
		kind = PROC_HANDLE_CLONE;
	else if (want && !strcmp(want, "host"))
		kind = PROC_HANDLE_HOST;
	else if (want && *want && strcmp(want, "private"))
		return fail(EINVAL, "PYRUNC_INIT_PROCFS=%s: not private, clone or host", want);
	/* Any refusal moves on to the next kind: each is at least as safe as
	 * the last one, the host's /proc, which has always been used. */
	if (kind == PROC_HANDLE_FSMOUNT) {
		fd = procfs_fsmount();
		if (fd < 0)
			kind = PROC_HANDLE_CLONE;
	}
	if (kind == PROC_HANDLE_CLONE) {
		fd = procfs_clone();
		if (fd < 0)
			kind = PROC_HANDLE_HOST;
	}
	if (kind == PROC_HANDLE_HOST) {
		fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return fail(errno, "/proc");
	}
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC) {
		close(fd);
		return fail(EXDEV, "/proc is not procfs");
	}
	ctx.proc_kind = kind;
	ctx.proc_mnt_id = mount_id_of(fd);
	return fd;
}

int proc_open(const char *path, int flags, enum proc_resolve how)
{
	static const uint64_t resolve[] = {
		[PROC_STRICT] = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
		[PROC_SELF] = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
		/* The kernel refuses magic-link jumps in scoped lookups: no
		 * flags, and the result is the link's target, off procfs. */
		[PROC_MAGIC] = 0,
	};
	struct statfs sfs;
	int fd = -ENOSYS;

	if (!ctx.no_openat2)
		fd = sys_openat2(ctx.proc_fd, path, (uint64_t)flags | O_CLOEXEC, resolve[how]);
	if (fd == -ENOSYS) {
		fd = openat(ctx.proc_fd, path,
			    flags | O_CLOEXEC | (how == PROC_STRICT ? O_NOFOLLOW : 0));
		if (fd < 0)
			fd = -errno;
	}
	if (fd < 0 || how == PROC_MAGIC)
		return fd;
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC ||
	    (ctx.proc_mnt_id && mount_id_of(fd) != ctx.proc_mnt_id)) {
		close(fd);
		return -EXDEV;
	}
	return fd;
}
