/*
 * mount_ext.c: mount extensions beyond mount(2): recursive attributes
 * (mount_setattr), tmpcopyup and idmapped bind mounts.
 *
 * As in mounts.c, targets are resolved inside the root and acted on through
 * fds; the copy-up walks the image directory with *at() calls and
 * O_NOFOLLOW, so a symlink in the image is copied as a symlink and never
 * followed out of the tree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif

#define COPY_MAX_DEPTH 256

struct pyrunc_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

static int setattr_fd(int fd, unsigned flags, const struct pyrunc_mount_attr *a)
{
	return syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | flags, a, sizeof(*a)) < 0 ?
		-errno : 0;
}

int op_mount_setattr(const struct step *s)
{
	struct pyrunc_mount_attr a = { .attr_set = s->ints[0], .attr_clr = s->ints[1],
				       .propagation = s->ints[2] };
	int fd = root_open(s->strs[0].s, 0), err;

	if (fd < 0)
		return fail(-fd, "%s", s->strs[0].s);
	err = setattr_fd(fd, AT_RECURSIVE, &a);
	close(fd);
	return err ? fail(-err, "%s", s->strs[0].s) : 0;
}

/* ---- tmpcopyup ------------------------------------------------------------ */

static int copy_tree(int src, int dst, int depth);

static int copy_data(int in, int out)
{
	char buf[65536];

	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n > 0)
			continue;
		if (n == 0)
			return 0;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		break;
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf)), w = 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		while (w < n) {
			ssize_t m = write(out, buf + w, (size_t)(n - w));
			if (m < 0 && errno == EINTR)
				continue;
			if (m < 0)
				return -errno;
			w += m;
		}
	}
}

/* Owner, mode and times of one copied entry (the mode after the owner:
 * chown clears set-id bits). */
static int copy_meta(int dir, const char *name, const struct stat *st)
{
	struct timespec times[2] = { st->st_atim, st->st_mtim };

	if (fchownat(dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st->st_mode) && fchmodat(dir, name, st->st_mode & 07777, 0) < 0)
		return -errno;
	return utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int copy_file(int src, int dst, const char *name, const struct stat *st)
{
	int in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY), out, err;

	if (in < 0)
		return -errno;
	out = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		err = -errno;
		close(in);
		return err;
	}
	err = copy_data(in, out);
	close(in);
	close(out);
	return err ? err : copy_meta(dst, name, st);
}

static int copy_link(int src, int dst, const char *name, const struct stat *st)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(src, name, target, sizeof(target) - 1);

	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (symlinkat(target, dst, name) < 0)
		return -errno;
	return copy_meta(dst, name, st);
}

static int copy_dir(int src, int dst, const char *name, const struct stat *st, int depth)
{
	int in, out, err;

	if (depth >= COPY_MAX_DEPTH)
		return -ELOOP;
	if (mkdirat(dst, name, 0700) < 0)
		return -errno;
	in = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0) {
		err = -errno;
		close(in);
		return err;
	}
	err = copy_tree(in, out, depth + 1);
	close(out);
	close(in);
	/* Last, so that a read-only directory could still be filled. */
	return err ? err : copy_meta(dst, name, st);
}

static int copy_entry(int src, int dst, const char *name, int depth)
{
	struct stat st;

	if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		return copy_dir(src, dst, name, &st, depth);
	case S_IFREG:
		return copy_file(src, dst, name, &st);
	case S_IFLNK:
		return copy_link(src, dst, name, &st);
	case S_IFSOCK:
		return 0; /* a socket is not content */
	default:
		if (mknodat(dst, name, st.st_mode & (S_IFMT | 07777), st.st_rdev) < 0)
			return -errno;
		return copy_meta(dst, name, &st);
	}
}

/* Copy the entries of directory src into directory dst. */
static int copy_tree(int src, int dst, int depth)
{
	int fd = dup(src), err = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while (!err && (errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		err = copy_entry(src, dst, de->d_name, depth);
		if (err)
			fail(-err, "%s", de->d_name);
	}
	if (!err && errno)
		err = -errno;
	closedir(d);
	return err;
}

/* The directory a tmpcopyup mount is about to cover, opened for reading
 * (the fd keeps seeing it after the mount). */
int copyup_open_source(int target_fd)
{
	char p[32];
	int fd;

	fd_path(p, sizeof(p), target_fd);
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* After the mount: copy from src into the new mount's root at path. */
int copyup_fill(int src, const char *path)
{
	int dst = root_open(path, 0), rw, err;
	char p[32];

	if (dst < 0)
		return fail(-dst, "%s", path);
	fd_path(p, sizeof(p), dst);
	rw = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(dst);
	if (rw < 0)
		return fail(errno, "%s", path);
	ctx.errtext[0] = '\0';
	err = copy_tree(src, rw, 0);
	close(rw);
	if (err) {
		char entry[SYNC_TEXT_MAX];

		snprintf(entry, sizeof(entry), "%s", ctx.errtext);
		return fail(-err, "tmpcopyup into %s: %s", path, entry);
	}
	return 0;
}

/* ---- idmapped bind mounts ---------------------------------------------------- */

/* Detached idmapped trees, from stage A to their OP_MOUNT. */
static int detached[MOUNT_IDMAP_SLOTS] = { [0 ... MOUNT_IDMAP_SLOTS - 1] = -1 };

int op_mount_idmap(const struct step *s)
{
	const char *src = s->strs[0].s;
	struct pyrunc_mount_attr a = { .attr_set = MOUNT_ATTR_IDMAP };
	unsigned clone = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
	unsigned recursive = (s->ints[1] & MOUNT_F_IDMAP_RECURSIVE) ? AT_RECURSIVE : 0;
	int userns = (int)s->ints[0], tree, err;

	if (s->ints[0] > 0x7fffffff || s->ints[2] >= MOUNT_IDMAP_SLOTS)
		return fail(EBADF, "idmap fd %llu slot %llu", (unsigned long long)s->ints[0],
			    (unsigned long long)s->ints[2]);
	a.userns_fd = (uint64_t)userns;
	tree = (int)syscall(SYS_open_tree, AT_FDCWD, src, clone | recursive);
	if (tree < 0) {
		err = fail(errno, "open_tree %s", src);
	} else if ((err = setattr_fd(tree, recursive, &a)) < 0) {
		err = fail(-err, "idmapping %s", src);
		close(tree);
	} else {
		if (detached[s->ints[2]] >= 0)
			close(detached[s->ints[2]]);
		detached[s->ints[2]] = tree;
	}
	close(userns);
	return err;
}

int mount_take_detached(uint64_t slot)
{
	int fd;

	if (slot >= MOUNT_IDMAP_SLOTS || detached[slot] < 0)
		return -EBADF;
	fd = detached[slot];
	detached[slot] = -1;
	return fd;
}

int mount_move_detached(int tree, int target)
{
	return syscall(SYS_move_mount, tree, "", target, "",
		       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0 ? -errno : 0;
}
