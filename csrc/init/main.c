/*
 * pyrunc-init: executes one plan (see protocol.h) received on the sync
 * socket, then execs the container process.
 *
 * main.c: process start-up and the step loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"

struct init_ctx ctx = { .sync_fd = -1, .proc_fd = -1, .root_fd = -1 };

int fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx.errtext, sizeof(ctx.errtext), fmt, ap);
	va_end(ap);
	return -err;
}

/* Unused once every reserved op has its handler; kept for the next one. */
static __attribute__((unused)) int op_reserved(const struct step *s)
{
	(void)s;
	return fail(ENOSYS, "operation not implemented");
}

static const step_fn handlers[OP_MAX] = {
	[OP_SETNS] = op_setns,
	[OP_UNSHARE_USER] = op_unshare_user,
	[OP_UNSHARE] = op_unshare,
	[OP_TIMENS_OFFSETS] = op_timens_offsets,
	[OP_FORK] = op_fork,
	[OP_SET_ROOT] = op_set_root,
	[OP_MOUNT] = op_mount,
	[OP_MKDIR] = op_mkdir,
	[OP_MKNOD] = op_mknod,
	[OP_SYMLINK] = op_symlink,
	[OP_PIVOT_ROOT] = op_pivot_root,
	[OP_CHROOT] = op_chroot,
	[OP_MASK_PATH] = op_mask_path,
	[OP_READONLY_PATH] = op_readonly_path,
	[OP_WRITE_PROC] = op_write_proc,
	[OP_SETHOSTNAME] = op_sethostname,
	[OP_SETDOMAINNAME] = op_setdomainname,
	[OP_SYNC] = op_sync,
	[OP_READY] = op_ready,
	[OP_WAIT_START] = op_wait_start,
	[OP_RLIMIT] = op_rlimit,
	[OP_UMASK] = op_umask,
	[OP_SETGROUPS] = op_setgroups,
	[OP_SETID] = op_setid,
	[OP_CAPS] = op_caps,
	[OP_NO_NEW_PRIVS] = op_no_new_privs,
	[OP_CHDIR] = op_chdir,
	[OP_CLOSE_FDS] = op_close_fds,
	[OP_CHECK_EXEC] = op_check_exec,
	[OP_EXEC] = op_exec,
	[OP_OOM_SCORE_ADJ] = op_oom_score_adj,
	[OP_SETSID] = op_setsid,
	[OP_SECCOMP] = op_seccomp,
	[OP_CONSOLE] = op_console,
	[OP_HOOK] = op_hook,
	[OP_LOOPBACK_UP] = op_loopback_up,
	[OP_MOUNT_SETATTR] = op_mount_setattr,
	[OP_MOUNT_IDMAP] = op_mount_idmap,
	[OP_PERSONALITY] = op_personality,
	[OP_SCHEDULER] = op_scheduler,
	[OP_IOPRIO] = op_ioprio,
	[OP_CPU_AFFINITY] = op_cpu_affinity,
	[OP_MEMPOLICY] = op_mempolicy,
	[OP_NETDEV] = op_netdev,
	[OP_APPARMOR] = op_apparmor,
	[OP_SELINUX_LABEL] = op_selinux_label,
	[OP_KEYRING] = op_keyring,
	[OP_BIND_SOURCES_FORK] = op_bind_sources_fork,
	[OP_BIND_SOURCES_OPEN] = op_bind_sources_open,
};

static __attribute__((noreturn)) void die(int step, int err, const char *text)
{
	/* After `start` the parent is gone: the held exec.fifo is the way out. */
	sync_report_start_failure(text, err);
	/* The parent may already be gone; nothing more useful can be done then. */
	sync_send(MSG_ERROR, step, err, 0, text);
	_exit(1);
}

/* The spawner blocks every signal around vfork and the mask survives exec;
 * a container process must not start with signals blocked or ignored. */
static void reset_signals(void)
{
	struct sigaction dfl;
	sigset_t none;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int sync_fd_from_env(void)
{
	const char *v = getenv("PYRUNC_SYNC_FD");
	char *end;
	long fd;

	if (!v || !*v)
		return -1;
	errno = 0;
	fd = strtol(v, &end, 10);
	if (errno || *end || fd < 0 || fd > 1 << 20)
		return -1;
	if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)
		return -1;
	return (int)fd;
}

static void startup(void)
{
	const char *no2 = getenv("PYRUNC_INIT_NO_OPENAT2");

	reset_signals();
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	ctx.no_openat2 = no2 && *no2 && strcmp(no2, "0") != 0;
	ctx.sync_fd = sync_fd_from_env();
	if (ctx.sync_fd < 0) {
		static const char msg[] = "pyrunc-init: PYRUNC_SYNC_FD is not a valid fd\n";
		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* nothing else to report to */
		}
		_exit(1);
	}
	/* Still in the host's pid namespace here: the handle's "self" and
	 * "<pid>" entries name us as the parent sees us (see paths.c). */
	ctx.proc_fd = proc_handle_open(getenv("PYRUNC_INIT_PROCFS"));
	if (ctx.proc_fd < 0)
		die(-1, -ctx.proc_fd, ctx.errtext);
	/* Modes in the plan are exact; OP_UMASK sets the container's umask. */
	umask(0);
}

int main(void)
{
	struct plan plan;
	int err;

	startup();
	err = plan_receive(ctx.sync_fd, &plan);
	if (err < 0)
		die(-1, -err, ctx.errtext);
	for (uint32_t i = 0; i < plan.nsteps; i++) {
		const struct step *s = &plan.steps[i];

		ctx.errtext[0] = '\0';
		ctx.skip_steps = 0;
		err = handlers[s->op] ? handlers[s->op](s) : fail(ENOSYS, "op %u", s->op);
		if (err < 0)
			die((int32_t)i, -err, ctx.errtext);
		/* parse_plan checked that the skipped steps exist. */
		i += ctx.skip_steps;
	}
	return 0;
}
