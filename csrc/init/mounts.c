/*
 * mounts.c: the root fd, mounts, files created inside the root, and the
 * switch into the root (pivot_root / chroot).
 *
 * Every mount target is opened first (inside the root) and the mount goes
 * through /proc/self/fd/N of that O_PATH fd, so the path the kernel acts on
 * is the object we checked, not whatever a symlink swapped into the image
 * points at by the time mount(2) runs (CVE-2021-30465).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "init.h"

#define FD_PATH_LEN 32


static const char *opt_str(const struct pstr *p)
{
	return p->len ? p->s : NULL;
}

int op_set_root(const struct step *s)
{
	int fd = open(s->strs[0].s, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fail(errno, "%s", s->strs[0].s);
	if (s->strs[0].len >= sizeof(ctx.root_path)) {
		close(fd);
		return fail(ENAMETOOLONG, "%s", s->strs[0].s);
	}
	if (ctx.root_fd >= 0)
		close(ctx.root_fd);
	ctx.root_fd = fd;
	memcpy(ctx.root_path, s->strs[0].s, s->strs[0].len + 1);
	return 0;
}

/* Create the mount target when asked: a directory or an empty file. */
static int create_target(const char *path, uint64_t mflags, unsigned mode)
{
	char base[NAME_MAX + 1];
	int fd;

	if (mflags & MOUNT_F_MKDIR) {
		fd = root_mkdir_p(path, mode ? mode : 0755);
		if (fd >= 0)
			close(fd);
		return fd < 0 ? fd : 0;
	}
	fd = root_open_parent(path, base, sizeof(base), 1);
	if (fd < 0)
		return fd;
	/* mknodat never follows an existing symlink; EEXIST leaves it for
	 * the open (and the symlink checks) that come next. */
	if (mknodat(fd, base, S_IFREG | (mode ? mode : 0644), 0) < 0 && errno != EEXIST) {
		int err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	return 0;
}

static int open_host(const char *path, int nofollow)
{
	int fd = open(path, O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));

	return fd < 0 ? -errno : fd;
}

/* Open the target per the MOUNT_F_* bits; refuse a symlink when asked. */
static int open_target(const struct step *s, const char *path, uint64_t mflags)
{
	int nosym = !!(mflags & MOUNT_F_NOSYMLINK_DST);
	struct stat st = { 0 };
	int fd, err;

	if ((mflags & (MOUNT_F_MKDIR | MOUNT_F_MKFILE)) && !(mflags & MOUNT_F_TARGET_HOST)) {
		err = create_target(path, mflags, (unsigned)s->ints[2]);
		/* A file where a directory should be: worded by the check below. */
		if (err && !(nosym && err == -ENOTDIR))
			return fail(-err, "%s", path);
	}
	fd = mflags & MOUNT_F_TARGET_HOST ? open_host(path, nosym) : root_open(path, nosym);
	if (fd < 0)
		return fail(-fd, "%s", path);
	if (nosym && (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))) {
		/* runc's words; its tests match "must be mounted on ordinary directory". */
		err = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
		close(fd);
		return fail(err, "filesystem \"%s\" must be mounted on ordinary directory (%s)",
			    s->strs[2].s, path);
	}
	return fd;
}

static int open_source(const char *path, uint64_t mflags)
{
	int fd = mflags & MOUNT_F_SOURCE_ROOT ? root_open(path, 0) : open_host(path, 0);

	return fd < 0 ? fail(-fd, "%s", path) : fd;
}

static int on_procfs(int fd)
{
	struct statfs sfs;

	return fstatfs(fd, &sfs) < 0 || sfs.f_type == PROC_SUPER_MAGIC;
}

static unsigned long kept_flags(unsigned long st_flags)
{
	static const struct { unsigned long st, ms; } map[] = {
		{ ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV },
		{ ST_NOEXEC, MS_NOEXEC }, { ST_NOATIME, MS_NOATIME },
		{ ST_NODIRATIME, MS_NODIRATIME }, { ST_RELATIME, MS_RELATIME },
		{ ST_SYNCHRONOUS, MS_SYNCHRONOUS }, { ST_MANDLOCK, MS_MANDLOCK },
	};
	unsigned long ms = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (st_flags & map[i].st)
			ms |= map[i].ms;
	return ms;
}

/* Flags the kernel locks on mounts inherited from a more privileged user
 * namespace (MNT_LOCK_*): a remount must keep them. */
#define LOCKABLE_ATIME (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)
#define ATIME_FLAGS (LOCKABLE_ATIME | MS_NODIRATIME)
#define LOCKABLE_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | ATIME_FLAGS)

/* The mount's flags as MS_* bits, read-only and the atime mode included
 * (no ST_ bit stands for strictatime: it is what is left). */
static int mount_flags_of(int fd, unsigned long *out)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return -errno;
	*out = kept_flags(sv.f_flag) | (sv.f_flag & ST_RDONLY ? MS_RDONLY : 0);
	if (!(*out & LOCKABLE_ATIME))
		*out |= MS_STRICTATIME;
	return 0;
}

/* A bind remount refused with EPERM: the mount may carry locked flags.
 * Try once more with them, as runc does, unless the config asked to clear
 * one of them or for another atime mode (the result would not be what it
 * asked for). */
static int remount_keeping_locked(const struct step *s, int dst_fd, const char *dst_path)
{
	unsigned long want = (unsigned long)s->ints[0], cleared = (unsigned long)s->ints[3], have = 0;
	int err = mount_flags_of(dst_fd, &have);

	if (err)
		return err;
	if (have & cleared & LOCKABLE_FLAGS)
		return -EPERM;
	if ((want & ATIME_FLAGS) && (want & ATIME_FLAGS) != (have & ATIME_FLAGS))
		return -EPERM;
	want |= have & LOCKABLE_FLAGS;
	return mount(NULL, dst_path, NULL, want, NULL) < 0 ? -errno : 0;
}

/* tmpfs data with the mode of the directory it covers first (runc): an
 * explicit mode= later in the data still wins.  *out is malloc'd or NULL. */
static int dir_mode_data(const char *dst, const struct pstr *data, char **out)
{
	struct stat st;
	size_t size = data->len + 16;
	int fd = root_open(dst, 0);

	*out = NULL;
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (fstat(fd, &st) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	*out = malloc(size);
	if (!*out)
		return -ENOMEM;
	snprintf(*out, size, "mode=%04o%s%s", (unsigned)(st.st_mode & 07777),
		 data->len ? "," : "", data->len ? data->s : "");
	return 0;
}

/* MOUNT_F_LABEL: the root of what was just mounted on DST gets LABEL as its
 * SELinux file label.  The target is opened again, so the path resolves to
 * the new mount and not to the directory it covers. */
static int label_mounted(const char *dst, uint64_t mflags, const struct pstr *label)
{
	char path[FD_PATH_LEN];
	int err = 0, fd = mflags & MOUNT_F_TARGET_HOST ? open_host(dst, 0) : root_open(dst, 0);

	if (fd < 0)
		return fail(-fd, "%s", dst);
	fd_path(path, sizeof(path), fd);
	/* The label without a NUL, as runc writes it; the kernel takes both. */
	if (setxattr(path, "security.selinux", label->s, label->len, 0) < 0)
		err = fail(errno, "set SELinux label \"%s\" on %s", label->s, dst);
	close(fd);
	return err;
}

int op_mount(const struct step *s)
{
	const char *src = s->strs[0].s, *dst = s->strs[1].s, *data = opt_str(&s->strs[3]);
	uint64_t mflags = s->ints[1];
	char src_path[FD_PATH_LEN], dst_path[FD_PATH_LEN], *mode_data = NULL;
	int dst_fd, src_fd = -1, copy_fd = -1, err = 0, on_root, fell_back = 0;

	if ((mflags & MOUNT_F_DIR_MODE) && (err = dir_mode_data(dst, &s->strs[3], &mode_data)) < 0)
		return fail(-err, "%s", dst);
	if (mode_data)
		data = mode_data;
	if ((mflags & MOUNT_F_KIND_OF_SOURCE) && (mflags & MOUNT_F_BIND_SOURCE)) {
		/* As runc: the source is looked at first, then the target is
		 * made like it. */
		struct stat st;

		src_fd = open_source(src, mflags);
		if (src_fd < 0)
			return src_fd;
		if (fstat(src_fd, &st) < 0) {
			err = fail(errno, "%s", src);
			close(src_fd);
			return err;
		}
		mflags &= ~(uint64_t)(MOUNT_F_MKDIR | MOUNT_F_MKFILE);
		mflags |= S_ISDIR(st.st_mode) ? MOUNT_F_MKDIR : MOUNT_F_MKFILE;
	}
	dst_fd = open_target(s, dst, mflags);
	if (dst_fd < 0) {
		if (src_fd >= 0)
			close(src_fd);
		free(mode_data);
		return dst_fd;
	}
	if (!(mflags & (MOUNT_F_TARGET_HOST | MOUNT_F_PROC_OK)) && on_procfs(dst_fd)) {
		/* The planner only lets /proc and a few files below it through;
		 * a destination that reaches procfs through a symlink in the
		 * image is the CVE-2019-19921 class. */
		close(dst_fd);
		return fail(EPERM, "%s resolves into /proc", dst);
	}
	if ((mflags & MOUNT_F_TMPCOPYUP) && (copy_fd = copyup_open_source(dst_fd)) < 0) {
		close(dst_fd);
		return fail(-copy_fd, "%s", dst);
	}
	if (mflags & MOUNT_F_DETACHED) {
		src_fd = mount_take_detached(s->ints[3]);
		if (src_fd < 0) {
			close(dst_fd);
			free(mode_data);
			return fail(-src_fd, "no idmapped tree for %s", dst);
		}
	} else if (mflags & MOUNT_F_BIND_SOURCE) {
		if (src_fd < 0 && (mflags & MOUNT_F_SOURCE_FD))
			src_fd = bind_source_take(s->ints[3]);
		if (src_fd < 0)
			src_fd = open_source(src, mflags);
		if (src_fd < 0) {
			close(dst_fd);
			free(mode_data);
			return src_fd;
		}
		fd_path(src_path, sizeof(src_path), src_fd);
		src = src_path;
	} else if (mflags & MOUNT_F_NO_SOURCE) {
		src = NULL;
	}
	fd_path(dst_path, sizeof(dst_path), dst_fd);
	on_root = !(mflags & MOUNT_F_TARGET_HOST) && root_same_as_root(dst_fd);
	if (mflags & MOUNT_F_DETACHED) {
		if ((err = mount_move_detached(src_fd, dst_fd)) < 0)
			err = fail(-err, "%s", dst);
	} else if (mount(src, dst_path, opt_str(&s->strs[2]), (unsigned long)s->ints[0], data) < 0) {
		err = errno;
		if (err == EPERM && (mflags & MOUNT_F_KEEP_LOCKED) &&
		    (s->ints[0] & (MS_REMOUNT | MS_BIND)) == (MS_REMOUNT | MS_BIND) &&
		    remount_keeping_locked(s, dst_fd, dst_path) == 0)
			err = 0;
		if ((err == EPERM || err == EBUSY) && (mflags & MOUNT_F_OR_ELSE)) {
			/* Not mounted: the alternative steps that follow run instead. */
			fell_back = 1;
			err = 0;
		}
		if (err)
			err = fail(err, "%s", dst);
	}
	if (!err && !fell_back && (mflags & MOUNT_F_OR_ELSE))
		ctx.skip_steps = (uint32_t)s->ints[4];
	free(mode_data);
	if (src_fd >= 0)
		close(src_fd);
	close(dst_fd);
	if (copy_fd >= 0) {
		if (!err)
			err = copyup_fill(copy_fd, dst);
		close(copy_fd);
	}
	if (!err && !fell_back && (mflags & MOUNT_F_LABEL))
		err = label_mounted(dst, mflags, &s->strs[4]);
	if (!err && on_root && (err = root_reopen()) < 0)
		err = fail(-err, "%s", ctx.root_path);
	return err;
}

int op_mkdir(const struct step *s)
{
	int fd = root_mkdir_p(s->strs[0].s, (unsigned)s->ints[0]);

	if (fd < 0)
		return fail(-fd, "%s", s->strs[0].s);
	close(fd);
	return 0;
}

/* Make room for a new node: anything but a directory is removed. */
static int clear_entry(int dirfd, const char *base)
{
	struct stat st;

	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	return unlinkat(dirfd, base, 0) < 0 ? -errno : 0;
}

int op_mknod(const struct step *s)
{
	const char *path = s->strs[0].s;
	char base[NAME_MAX + 1];
	int dirfd, err;

	dirfd = root_open_parent(path, base, sizeof(base), 1);
	if (dirfd < 0)
		return fail(-dirfd, "%s", path);
	err = clear_entry(dirfd, base);
	if (!err && mknodat(dirfd, base, (mode_t)s->ints[0],
			    makedev((unsigned)s->ints[1], (unsigned)s->ints[2])) < 0)
		err = -errno;
	if (!err && fchownat(dirfd, base, (uid_t)s->ints[3], (gid_t)s->ints[4],
			     AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	close(dirfd);
	return err ? fail(-err, "%s", path) : 0;
}

int op_symlink(const struct step *s)
{
	const char *path = s->strs[1].s;
	char base[NAME_MAX + 1];
	int dirfd, err = 0;

	dirfd = root_open_parent(path, base, sizeof(base), 1);
	if (dirfd < 0)
		return fail(-dirfd, "%s", path);
	if (symlinkat(s->strs[0].s, dirfd, base) < 0 && errno != EEXIST)
		err = -errno;
	close(dirfd);
	return err ? fail(-err, "%s", path) : 0;
}

/* After the root change our root and cwd are the container's "/". */
static int root_is_now_slash(void)
{
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fail(errno, "/");
	if (ctx.root_fd >= 0)
		close(ctx.root_fd);
	ctx.root_fd = fd;
	snprintf(ctx.root_path, sizeof(ctx.root_path), "/");
	return 0;
}

int op_pivot_root(const struct step *s)
{
	int root = root_fd_get(), old_root;

	(void)s;
	if (root < 0)
		return fail(-root, "%s", ctx.root_path);
	old_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (old_root < 0)
		return fail(errno, "/");
	if (fchdir(root) < 0) {
		close(old_root);
		return fail(errno, "%s", ctx.root_path);
	}
	/* pivot_root(".", ".") stacks the old root on top of the new one. */
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		close(old_root);
		return fail(errno, "pivot_root %s", ctx.root_path);
	}
	/* The cwd is still the new root's mount (mount(2) does not step onto
	 * what is stacked on it): go to the old root explicitly, or rslave
	 * would hit the container's own mounts (losing "shared" ones) and
	 * leave a shared old root to carry the detach back to the host. */
	if (fchdir(old_root) < 0) {
		close(old_root);
		return fail(errno, "fchdir to the old root");
	}
	close(old_root);
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return fail(errno, "making the old root rslave");
	if (umount2(".", MNT_DETACH) < 0)
		return fail(errno, "detaching the old root");
	if (chdir("/") < 0)
		return fail(errno, "/");
	return root_is_now_slash();
}

/* Undo mountinfo's octal escapes (\040 for a space, ...) in place. */
static void mountinfo_unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Whether path is dir or lies below it. */
static int path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1 && dir[0] == '/')
		return 1;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The whole of /proc/self/mountinfo, NUL-terminated, or NULL (errno set). */
static char *read_mountinfo(void)
{
	size_t cap = 16384, len = 0;
	char *buf = malloc(cap), *bigger;
	int fd = proc_open("self/mountinfo", O_RDONLY, PROC_SELF);
	ssize_t n;

	if (fd < 0 || !buf) {
		errno = fd < 0 ? -fd : ENOMEM;
		goto err;
	}
	for (;;) {
		if (cap - len < 4096) {
			bigger = realloc(buf, cap * 2);
			if (!bigger) {
				errno = ENOMEM;
				goto err;
			}
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
err:
	n = errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	errno = (int)n;
	return NULL;
}

/* One mountinfo line: its root and mount point (unescaped, in place) and
 * fstype, or -1 when the line does not parse. */
static int mountinfo_fields(char *line, char **root, char **point, char **fstype)
{
	char *f[5], *sep, *save = NULL;
	int i;

	sep = strstr(line, " - ");
	if (!sep)
		return -1;
	*sep = '\0';
	for (i = 0; i < 5; i++) {
		f[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!f[i])
			return -1;
	}
	*fstype = strtok_r(sep + 3, " ", &save);
	if (!*fstype)
		return -1;
	*root = f[3];
	*point = f[4];
	mountinfo_unescape(*root);
	mountinfo_unescape(*point);
	return 0;
}

/*
 * Before MS_MOVE + chroot: every whole procfs or sysfs mount outside the new
 * root goes. pivot_root detaches the old root and with it these; chroot
 * leaves them in the mount namespace, where the kernel counts them as
 * "fully visible" and so lets a user namespace made in the container mount
 * a fresh, unmasked procfs or sysfs. Each is made rslave first (the detach
 * must not propagate to the host); one that cannot be detached (locked, in
 * a user namespace) is covered with a tmpfs, which the kernel's check also
 * counts as hiding it.
 */
static int detach_proc_and_sys_outside_root(void)
{
	char *buf = read_mountinfo(), *line, *next, *root, *point, *fstype;
	int err = 0;

	if (!buf)
		return fail(errno, "reading /proc/self/mountinfo");
	for (line = buf; line && *line && !err; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (mountinfo_fields(line, &root, &point, &fstype) < 0)
			continue;
		if (strcmp(root, "/") != 0 || (strcmp(fstype, "proc") != 0 &&
					       strcmp(fstype, "sysfs") != 0) ||
		    path_within(point, ctx.root_path))
			continue;
		if (mount(NULL, point, NULL, MS_SLAVE | MS_REC, NULL) < 0) {
			/* Gone with a parent detached before it. */
			if (errno == ENOENT)
				continue;
			err = fail(errno, "making %s rslave", point);
		} else if (umount2(point, MNT_DETACH) < 0) {
			if (errno != EINVAL && errno != EPERM)
				err = fail(errno, "detaching %s", point);
			else if (mount("tmpfs", point, "tmpfs", 0, NULL) < 0)
				err = fail(errno, "covering %s with a tmpfs", point);
		}
	}
	free(buf);
	return err;
}

int op_chroot(const struct step *s)
{
	int root = root_fd_get(), err;

	(void)s;
	if (root < 0)
		return fail(-root, "%s", ctx.root_path);
	err = detach_proc_and_sys_outside_root();
	if (err)
		return err;
	if (fchdir(root) < 0)
		return fail(errno, "%s", ctx.root_path);
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		return fail(errno, "moving %s to /", ctx.root_path);
	if (chroot(".") < 0)
		return fail(errno, "chroot %s", ctx.root_path);
	if (chdir("/") < 0)
		return fail(errno, "/");
	return root_is_now_slash();
}

/* The root's /dev/null, only if it really is the null device: a symlink or
 * another node there would make the mask a bind of something else, e.g. a
 * writable /proc file (CVE-2025-31133). */
static int open_dev_null(void)
{
	struct stat st;
	int fd = root_open("/dev/null", 1);

	if (fd < 0)
		return fail(-fd, "/dev/null");
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
		close(fd);
		return fail(EPERM, "/dev/null is not the null device");
	}
	return fd;
}

int op_mask_path(const struct step *s)
{
	const char *path = s->strs[0].s;
	char dst[FD_PATH_LEN], src[FD_PATH_LEN];
	struct stat st;
	int fd, null_fd, err = 0;

	fd = root_open(path, 0);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fail(-fd, "%s", path);
	fd_path(dst, sizeof(dst), fd);
	if (fstat(fd, &st) < 0) {
		err = fail(errno, "%s", path);
	} else if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", dst, "tmpfs", MS_RDONLY, NULL) < 0)
			err = fail(errno, "%s", path);
	} else if ((null_fd = open_dev_null()) < 0) {
		err = null_fd;
	} else {
		fd_path(src, sizeof(src), null_fd);
		if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
			err = fail(errno, "%s", path);
		close(null_fd);
	}
	close(fd);
	return err;
}

/* Remount read-only.  In a user namespace the kernel refuses a remount
 * that would clear locked flags, so the current ones are carried over. */
static int remount_ro(const char *path)
{
	char p[FD_PATH_LEN];
	struct statvfs sv;
	int fd = root_open(path, 0), err = 0;

	if (fd < 0)
		return fail(-fd, "%s", path);
	fd_path(p, sizeof(p), fd);
	if (fstatvfs(fd, &sv) < 0)
		err = fail(errno, "%s", path);
	else if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC |
		       kept_flags(sv.f_flag), NULL) < 0)
		err = fail(errno, "%s", path);
	close(fd);
	return err;
}

int op_readonly_path(const struct step *s)
{
	const char *path = s->strs[0].s;
	char p[FD_PATH_LEN];
	int fd = root_open(path, 0), err = 0;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fail(-fd, "%s", path);
	fd_path(p, sizeof(p), fd);
	if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
		err = fail(errno, "%s", path);
	close(fd);
	/* The old fd still names the covered directory: the remount needs
	 * the new bind mount, so the path is resolved again. */
	return err ? err : remount_ro(path);
}
