/*
 * Private interfaces of pyrunc-init.  The wire format lives in protocol.h;
 * this header only describes how the modules of the program talk to each
 * other.
 *
 * Conventions: functions return 0 (or an fd) on success and -errno on
 * failure.  A failing step handler may record a detail (usually the path it
 * was working on) with fail(); the step loop sends it to the parent.
 */
#ifndef PYRUNC_INIT_H
#define PYRUNC_INIT_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocol.h"

/* Constants that older kernel and libc headers lack, used by more than one
 * file (OPEN_TREE_CLOEXEC expands where <fcntl.h> is included). */
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif

/* Little-endian, possibly unaligned integers of the plan (protocol.h). */
static inline uint16_t le_get16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t le_get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t le_get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* One decoded step.  Strings point into the plan buffer and are
 * NUL-terminated there; len excludes the terminator. */
struct pstr {
	const char *s;
	uint32_t len;
};

struct step {
	uint16_t op;
	uint16_t nstrs;
	uint64_t ints[STEP_NINTS];
	const struct pstr *strs;
};

struct plan {
	uint32_t nsteps;
	struct step *steps;
};

/* Process-wide state.  pyrunc-init is single-threaded. */
struct init_ctx {
	int sync_fd;     /* sync socket (SOCK_SEQPACKET) */
	int proc_fd;     /* the procfs handle: a private, detached procfs (see paths.c) */
	int proc_kind;   /* enum proc_handle_kind: how proc_fd was made */
	uint64_t proc_mnt_id; /* its mount id; 0 = unknown (no STATX_MNT_ID) */
	int root_fd;     /* current root for "root paths"; -1 = open "/" lazily */
	int no_openat2;  /* force the O_PATH component-walk resolver */
	char root_path[4096]; /* host path the root fd was opened from */
	uint32_t skip_steps; /* set by a step: how many of the following steps not to run */
	char errtext[SYNC_TEXT_MAX];
};

extern struct init_ctx ctx;

/* main.c */
int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* plan.c */
int plan_receive(int fd, struct plan *out);

/* sync.c */
int sync_send(uint32_t type, int32_t step, int32_t err, int32_t value, const char *text);
int sync_wait_ack(void);
void sync_report_start_failure(const char *text, int err);

/* hooks.c */
int hooks_receive_states(uint64_t count);
int op_hook(const struct step *s);

/* paths.c */
int root_fd_get(void);
int root_reopen(void);
int root_open(const char *path, int nofollow);
int root_open_parent(const char *path, char *base, size_t basesz, int create);
int root_mkdir_p(const char *path, unsigned mode);
int root_same_as_root(int fd);

/* How proc_open() may resolve its path below the procfs handle. */
enum proc_resolve {
	PROC_STRICT, /* no symlinks at all; the file must be on procfs */
	PROC_SELF,   /* ordinary symlinks ("self"), never magic links; on procfs */
	PROC_MAGIC,  /* magic links too ("self/fd/N"): the result is the target */
};
int proc_open(const char *path, int flags, enum proc_resolve how);

/* How the procfs handle was made, strongest first (see paths.c). */
enum proc_handle_kind {
	PROC_HANDLE_FSMOUNT, /* fsopen("proc") + fsmount: a new, detached instance */
	PROC_HANDLE_CLONE,   /* open_tree(OPEN_TREE_CLONE) of /proc: a detached copy */
	PROC_HANDLE_HOST,    /* open("/proc"): the host's mount itself */
};
int proc_handle_open(const char *want);
void fd_path(char *buf, size_t size, int fd);

/* Step handlers, one per op; each returns 0 or -errno. */
typedef int (*step_fn)(const struct step *s);

/* ns.c (stage A) */
int op_setns(const struct step *s);
int op_unshare_user(const struct step *s);
int op_unshare(const struct step *s);
int op_timens_offsets(const struct step *s);
int op_fork(const struct step *s);

/* mounts.c */
int op_set_root(const struct step *s);
int op_mount(const struct step *s);
int op_mkdir(const struct step *s);
int op_mknod(const struct step *s);
int op_symlink(const struct step *s);
int op_pivot_root(const struct step *s);
int op_chroot(const struct step *s);
int op_mask_path(const struct step *s);
int op_readonly_path(const struct step *s);

/* mount_ext.c */
int op_mount_setattr(const struct step *s);
int op_mount_idmap(const struct step *s);
int mount_take_detached(uint64_t slot);
int mount_move_detached(int tree, int target);
int copyup_open_source(int target_fd);
int copyup_fill(int src, const char *path);

/* ids_caps.c */
int op_rlimit(const struct step *s);
int op_umask(const struct step *s);
int op_setgroups(const struct step *s);
int op_setid(const struct step *s);
int op_caps(const struct step *s);
int op_no_new_privs(const struct step *s);

/* proc.c */
int op_write_proc(const struct step *s);
int op_oom_score_adj(const struct step *s);
int op_sethostname(const struct step *s);
int op_setdomainname(const struct step *s);
int op_setsid(const struct step *s);
int op_chdir(const struct step *s);
int op_close_fds(const struct step *s);
int op_check_exec(const struct step *s);
int op_exec(const struct step *s);

/* console.c */
int op_console(const struct step *s);

/* net.c */
int op_loopback_up(const struct step *s);

/* seccomp.c */
const char *seccomp_plan_error(const struct step *s);
int op_seccomp(const struct step *s);

/* sched.c */
int op_personality(const struct step *s);
int op_scheduler(const struct step *s);
int op_ioprio(const struct step *s);
int op_cpu_affinity(const struct step *s);
int op_mempolicy(const struct step *s);

/* netdev.c */
int op_netdev(const struct step *s);

/* bindsrc.c */
int op_bind_sources_fork(const struct step *s);
int op_bind_sources_open(const struct step *s);
int bind_source_take(uint64_t slot);

/* proc.c: LSM */
int op_apparmor(const struct step *s);
int op_selinux_label(const struct step *s);
int op_keyring(const struct step *s);

/* sync.c */
int op_sync(const struct step *s);
int op_ready(const struct step *s);
int op_wait_start(const struct step *s);

#endif
