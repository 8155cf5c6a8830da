/*
 * pyrunc plan protocol, version 1.
 *
 * The Python side (pyrunc/plan/protocol.py) decides everything and encodes it
 * as one "plan" message; pyrunc-init (csrc/init/) executes it step by step.
 * Both sides must agree on every number in this file: pyrunc/plan/protocol.py
 * mirrors it and tests/unit/test_protocol_header.py checks that they match.
 *
 * Transport: a SOCK_SEQPACKET socketpair ("sync socket").  pyrunc-init finds
 * its end as the fd number in the environment variable PYRUNC_SYNC_FD, and
 * an O_PATH fd of nothing else; everything else arrives in the plan.
 *
 * All integers are little-endian, unaligned (read them with memcpy).
 *
 * Plan message (parent -> init, the first message on the socket):
 *
 *   struct plan_header  (16 bytes)
 *     u32 magic      PLAN_MAGIC
 *     u16 version    PLAN_VERSION
 *     u16 reserved   0
 *     u32 total_len  bytes of the whole message including this header
 *     u32 nsteps
 *   then nsteps steps, each:
 *   struct step_header  (8 + 8*STEP_NINTS bytes = 56 bytes)
 *     u16 op         one of OP_*
 *     u16 nstrs      number of byte strings that follow the ints
 *     u32 step_len   bytes of this step including its header and strings
 *     u64 ints[STEP_NINTS]
 *   then nstrs strings, each:
 *     u32 len, then len bytes (no terminator; the reader adds one)
 *
 * The reader checks the whole message before any step runs and rejects it
 * (EBADMSG, step index = -1) when:
 *   - the magic or version differ, reserved is not 0, total_len differs from
 *     the bytes received (at most PLAN_MAX_LEN), or nsteps step headers
 *     cannot fit in the message;
 *   - a step_len is below the step header size or runs past the end, a
 *     string length runs past its step, bytes are left inside a step after
 *     its strings or after the nsteps-th step;
 *   - an op is unknown, or gets fewer strings than it needs (the minimum is
 *     the highest strN its comment below names; "str1.." lists may be
 *     empty);
 *   - a string used as a C string holds a NUL byte.  Binary strings, which
 *     may: OP_WRITE_PROC str1, OP_SETGROUPS str0, OP_SECCOMP str1,
 *     OP_CPU_AFFINITY str0, OP_MEMPOLICY str0, OP_NETDEV str1 onwards.
 *     Only str0..str7 are checked, except for OP_EXEC and OP_HOOK, whose
 *     strings are all C strings and are all checked;
 *   - an op's own rules, given with the op below and collected here:
 *     OP_SETGROUPS list length not a multiple of 4; OP_EXEC argc < 1 or
 *     argc + envc > nstrs; OP_HOOK 1 + argc + envc > nstrs, slot int3 >=
 *     HOOK_STATE_SLOTS or str0 not starting with '/'; OP_SYNC int1 >
 *     HOOK_STATE_SLOTS; OP_CONSOLE fd above INT_MAX, rows or columns above
 *     65535, or unknown CONSOLE_F_* bits; OP_SECCOMP as "Seccomp" below
 *     says; OP_MOUNT with MOUNT_F_DETACHED and int3 >= MOUNT_IDMAP_SLOTS, or
 *     with MOUNT_F_SOURCE_FD and int3 >= MOUNT_SOURCE_SLOTS;
 *     OP_BIND_SOURCES_FORK with more than MOUNT_SOURCE_SLOTS strings or a
 *     NUL in any; OP_BIND_SOURCES_OPEN int0 > MOUNT_SOURCE_SLOTS;
 *     OP_MOUNT with MOUNT_F_OR_ELSE and int4 < 1 or past the last step;
 *     OP_MOUNT with MOUNT_F_LABEL and no str4, or a str4 of 0 or more than
 *     PATH_MAX bytes;
 *     OP_MOUNT_IDMAP fd above INT_MAX or slot >= MOUNT_IDMAP_SLOTS;
 *     OP_IOPRIO class outside 1-3 or level above 7; an OP_CPU_AFFINITY or
 *     OP_MEMPOLICY mask whose length is not a multiple of 8; OP_MEMPOLICY
 *     int0 above INT_MAX, or a non-empty mask with maxnode > 8 * length + 1
 *     (the kernel would read past the mask); OP_NETDEV with a name of 0 or
 *     more than 15 bytes, or an address that is not 6 bytes of AF_INET (2)
 *     with prefix <= 32 or 18 bytes of AF_INET6 (10) with prefix <= 128;
 *     OP_APPARMOR with a profile of 0 or more than PATH_MAX bytes;
 *     OP_SELINUX_LABEL with a label of 0 or more than PATH_MAX bytes;
 *     OP_KEYRING with a name of 0 or more than 255 bytes, or a label of
 *     more than PATH_MAX bytes.
 * It never trusts a length before checking it.  Other ints are only checked
 * where the step runs (a failing step, not EBADMSG).
 *
 * Status messages (both directions after the plan) are struct sync_msg.
 */
#ifndef PYRUNC_PROTOCOL_H
#define PYRUNC_PROTOCOL_H

#include <stdint.h>

#define PLAN_MAGIC 0x49525950u /* "PYRI" little-endian */
#define PLAN_VERSION 1
#define PLAN_MAX_LEN (4u << 20)
#define STEP_NINTS 6
#define SYNC_TEXT_MAX 512

/* ---- steps ----------------------------------------------------------------
 * "root path" = a path resolved inside the current root fd (OP_SET_ROOT, or
 * "/" after OP_PIVOT_ROOT/OP_CHROOT) with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS); ".." and absolute symlinks never leave the root.
 * "host path" = an ordinary absolute path in the init's current view.
 * str[i] / int[i] below name the step's strings and ints.
 */
enum plan_op {
	/* Stage A: runs in the host namespaces, before the fork. */
	OP_SETNS = 1,       /* str0 host path of a namespace file; int0 CLONE_NEW* type */
	OP_UNSHARE_USER = 2,/* no args: unshare(CLONE_NEWUSER), send MSG_IDMAP_REQ, wait
	                     * MSG_ACK */
	OP_UNSHARE = 3,     /* int0 CLONE_NEW* flags (not user) */
	OP_TIMENS_OFFSETS = 4, /* int0 monotonic secs, int1 nsecs, int2 boottime secs, int3 nsecs
	                        * (signed, two's complement); written to /proc/self/timens_offsets */
	OP_FORK = 5,        /* no args: fork; the parent stage sends MSG_CHILD_PID and exits 0;
	                     * the child (PID 1 of a new pid ns) runs the following steps */

	/* Stage B: container init, in the container's namespaces. */
	OP_SET_ROOT = 10,   /* str0 host path of the rootfs: becomes the root fd */
	OP_MOUNT = 11,      /* mount(2). str0 source, str1 target, str2 fstype, str3 data,
	                     * str4 label with MOUNT_F_LABEL;
	                     * int0 MS_* flags; int1 MOUNT_F_* bits; int2 mode for created dirs;
	                     * int3 idmap slot (< MOUNT_IDMAP_SLOTS) with MOUNT_F_DETACHED;
	                     * int4 number of alternative steps with MOUNT_F_OR_ELSE */
	OP_MKDIR = 12,      /* str0 root path; int0 mode; parents created (0755) */
	OP_MKNOD = 13,      /* str0 root path; int0 mode incl. S_IFCHR/S_IFBLK/S_IFIFO;
	                     * int1 major; int2 minor; int3 uid; int4 gid
	                     * (existing file is replaced when it is not a directory) */
	OP_SYMLINK = 14,    /* str0 link target (verbatim), str1 root path of the link;
	                     * an existing entry is left alone (EEXIST ignored) */
	OP_PIVOT_ROOT = 15, /* no args: pivot_root into the root fd, detach the old root */
	OP_CHROOT = 16,     /* no args; --no-pivot: MS_MOVE the root onto "/", chroot(".") */
	OP_MASK_PATH = 17,  /* str0 root path: dir -> read-only tmpfs, else bind of the
	                     * root's /dev/null (verified char 1:3); ENOENT is ignored */
	OP_READONLY_PATH = 18, /* str0 root path: rbind onto itself, remount read-only,
	                        * keeping nosuid/nodev/noexec; ENOENT is ignored */
	OP_WRITE_PROC = 19, /* str0 path below /proc (e.g. "sys/net/ipv4/ip_forward"),
	                     * str1 data; opened beneath the init's private procfs handle,
	                     * verified PROC_SUPER_MAGIC, no symlinks */
	OP_SETHOSTNAME = 20,   /* str0 */
	OP_SETDOMAINNAME = 21, /* str0 */
	OP_SYNC = 22,       /* send MSG_SYNC(int0 as an int32: SYNC_HOOKS, SYNC_SECCOMP,
	                     * SYNC_NETDEV or a value of the caller's own); then receive int1 (<= HOOK_STATE_SLOTS)
	                     * MSG_HOOK_STATE messages, the i-th filling state slot i; then
	                     * wait for MSG_ACK (MSG_ABORT -> exit 1).  See "Hooks" below. */
	OP_READY = 23,      /* no args: send MSG_READY: create is done */
	OP_WAIT_START = 24, /* int0 fd (O_PATH) of exec.fifo: open it O_WRONLY through the
	                     * procfs handle (blocks until `start` opens it), write "0"; an fd
	                     * above INT_MAX fails the step.
	                     * int1 WAIT_F_HOLD: open it but keep it unwritten (startContainer
	                     * hooks run next); WAIT_F_RELEASE: write "0" to the kept fd
	                     * (int0 unused).  See "Hooks" below. */
	OP_RLIMIT = 25,     /* int0 resource, int1 soft, int2 hard (UINT64_MAX = infinity) */
	OP_UMASK = 26,      /* int0 (only its 0777 bits count) */
	OP_SETGROUPS = 27,  /* str0 packed u32 gids (may be empty: clears groups) */
	OP_SETID = 28,      /* int0 uid, int1 gid, int2 SETID_F_*: PR_SET_KEEPCAPS, setresgid,
	                     * setresuid */
	OP_CAPS = 29,       /* int0 bounding, int1 effective, int2 permitted, int3 inheritable,
	                     * int4 ambient (bit n = capability n); int5 CAPS_F_* bits.
	                     * Default: drops the bounding set, capset(), raises ambient,
	                     * clears PR_SET_KEEPCAPS.  The planner emits it twice, as runc
	                     * orders it: CAPS_F_BOUNDING_ONLY before OP_SETID (dropping the
	                     * bounding set needs CAP_SETPCAP, which a non-root uid loses),
	                     * then CAPS_F_NO_BOUNDING after it. */
	OP_NO_NEW_PRIVS = 30, /* no args: prctl(PR_SET_NO_NEW_PRIVS) */
	OP_CHDIR = 31,      /* str0 cwd (after the root change); must stay inside the root;
	                     * int0 CHDIR_F_* (0: change now, any error fails) */
	OP_CLOSE_FDS = 32,  /* int0 first fd: every fd >= int0 gets FD_CLOEXEC (above INT_MAX:
	                     * none) */
	OP_CHECK_EXEC = 33, /* str0 program (args[0]), str1 PATH value: resolve like execvp;
	                     * ENOENT/EACCES are reported as the step's error; int0
	                     * CHECK_EXEC_F_* bits, int1 pointers to reserve (CHECK_EXEC_F_KEEP) */
	OP_EXEC = 34,       /* int0 argc, int1 envc; str0..: argv then env; the program kept by
	                     * the last OP_CHECK_EXEC(CHECK_EXEC_F_KEEP), else a PATH lookup with
	                     * the env's PATH; on failure prints to stderr, exits 127/126 */
	OP_OOM_SCORE_ADJ = 35, /* int0 value (signed) -> /proc/self/oom_score_adj */
	OP_SETSID = 36,     /* no args: setsid() */
	OP_SECCOMP = 37,    /* load a seccomp filter: int0-int4, str0 and the binary str1;
	                     * see "Seccomp" below */
	OP_CONSOLE = 38,    /* int0 fd of a connected SOCK_STREAM console socket; int1 rows,
	                     * int2 columns (TIOCSWINSZ unless both are 0); int3 CONSOLE_F_*.
	                     * Opens /dev/ptmx in the current root (must be char 5:2), takes
	                     * the peer with TIOCGPTPEER (no path lookup), sends the master
	                     * in one sendmsg (data: "/dev/pts/N", one SCM_RIGHTS fd), closes
	                     * the socket and the master, makes the peer the controlling
	                     * terminal (TIOCSCTTY: OP_SETSID must come first) and fds 0-2. */
	OP_HOOK = 39,       /* run one hook in the current namespaces and root.  int0 timeout
	                     * in seconds (0 = none), int1 argc, int2 envc, int3 state slot,
	                     * int4 HOOK_* kind, int5 index of the hook within its kind;
	                     * str0 path (absolute, resolved in the current mount namespace
	                     * and root), str1.. argc args (argv; argc 0 means {path}), then
	                     * envc env entries (the whole environment).  See "Hooks". */
	OP_LOOPBACK_UP = 40,/* no args: bring "lo" up (SIOCSIFFLAGS IFF_UP) in the current net ns */
	OP_MOUNT_SETATTR = 41, /* mount_setattr(2) with AT_RECURSIVE on the mount at str0 (root
	                        * path): int0 MOUNT_ATTR_* to set, int1 to clear, int2
	                        * propagation (MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, 0
	                        * = unchanged) */
	OP_MOUNT_IDMAP = 42,   /* stage A, before any namespace change: an idmapped copy of a
	                        * host tree: open_tree(str0 host path, OPEN_TREE_CLONE [|
	                        * AT_RECURSIVE if int1 & MOUNT_F_IDMAP_RECURSIVE]), then
	                        * mount_setattr(MOUNT_ATTR_IDMAP) with the user namespace fd
	                        * int0 (inherited, closed here).  The detached mount is kept
	                        * in slot int2 (< MOUNT_IDMAP_SLOTS) for an OP_MOUNT with
	                        * MOUNT_F_DETACHED. */
	/* Execution attributes (sched.c); each survives execve, so they are applied
	 * to pyrunc-init itself late in the plan.  Binary strings: OP_CPU_AFFINITY
	 * str0, OP_MEMPOLICY str0 and OP_NETDEV str1 onwards may hold NUL bytes. */
	OP_PERSONALITY = 43,  /* int0 persona for personality(2): PER_LINUX (0) or PER_LINUX32 (8)
	                       * (the kernel judges the value) */
	OP_SCHEDULER = 44,    /* sched_setattr(2) on self: int0 low 32 bits policy (SCHED_*),
	                       * high 32 bits SCHED_FLAG_*; int1 nice (signed); int2 rt priority;
	                       * int3 runtime, int4 deadline, int5 period (ns); the kernel
	                       * judges the values */
	OP_IOPRIO = 45,       /* ioprio_set(IOPRIO_WHO_PROCESS, self): int0 class (1 RT, 2 BE,
	                       * 3 IDLE), int1 level 0-7 (the reader refuses other values) */
	OP_CPU_AFFINITY = 46, /* sched_setaffinity(self): str0 the cpu mask, bit n = cpu n, as
	                       * little-endian 64-bit words (length a multiple of 8; binary) */
	OP_MEMPOLICY = 47,    /* set_mempolicy(2): int0 MPOL_* mode | MPOL_F_* flags (<= INT_MAX);
	                       * int1 maxnode (<= 8 * mask length + 1 with a mask); str0 node
	                       * mask like OP_CPU_AFFINITY's (binary; empty: NULL mask) */
	OP_NETDEV = 48,       /* str0 name (1-15 bytes) of a device the parent moved into this
	                       * net ns at OP_SYNC(SYNC_NETDEV); str1.. addresses to add, binary:
	                       * u8 family (AF_INET 2 or AF_INET6 10), u8 prefix length (<= 32
	                       * or 128), 4 or 16 address bytes; then the device is brought up */
	OP_APPARMOR = 49,     /* str0 AppArmor profile (1..PATH_MAX bytes) to take effect at the
	                       * next execve: "exec <str0>" written to /proc/self/attr/apparmor/exec,
	                       * or /proc/self/attr/exec on kernels before 5.8, through the
	                       * procfs handle (proc.c) */
	OP_SELINUX_LABEL = 50, /* str0 SELinux label (1..PATH_MAX bytes) for the next execve:
	                        * written to /proc/thread-self/attr/exec through the procfs
	                        * handle (proc.c) */
	OP_KEYRING = 51,      /* a new session keyring: str1, when not empty (<= PATH_MAX
	                       * bytes), is first written to /proc/thread-self/attr/keycreate
	                       * (the keyring's SELinux label); then
	                       * keyctl(KEYCTL_JOIN_SESSION_KEYRING, str0 name, 1..255 bytes),
	                       * ENOSYS ignored (no keyrings); then, if int1 is not 0, the
	                       * keyring's permissions become (perm & int0) | int1 */
	OP_BIND_SOURCES_FORK = 52, /* stage A, before OP_UNSHARE_USER: fork a helper (still the
	                        * host's root) for str0.. (1..MOUNT_SOURCE_SLOTS host paths,
	                        * the bind sources in slot order; see bindsrc.c) */
	OP_BIND_SOURCES_OPEN = 53, /* stage A, after the mount namespace is made: the helper
	                        * joins it and opens each source O_PATH; int0 (<=
	                        * MOUNT_SOURCE_SLOTS) fds are kept in slots 0.. for OP_MOUNT
	                        * with MOUNT_F_SOURCE_FD (a source it cannot open: no fd) */
	OP_MAX
};

/* OP_MOUNT int1 bits */
#define MOUNT_F_TARGET_HOST   0x01 /* str1 is a host path, not a root path */
#define MOUNT_F_SOURCE_ROOT   0x02 /* str0 is a root path (else host path or fs name) */
#define MOUNT_F_BIND_SOURCE   0x04 /* open str0 O_PATH first and mount from that fd */
#define MOUNT_F_MKDIR         0x08 /* create the target (and parents) as a directory */
#define MOUNT_F_MKFILE        0x10 /* create the target as an empty regular file */
#define MOUNT_F_NOSYMLINK_DST 0x20 /* refuse when the target (before resolution) is a
                                    * symlink; for proc, sysfs and the like */
#define MOUNT_F_NO_SOURCE     0x40 /* pass NULL as source (remount, propagation) */
#define MOUNT_F_TMPCOPYUP     0x80 /* tmpfs: copy what the target directory held (files,
                                    * dirs, symlinks, nodes; modes, owners, times) into
                                    * the new mount, through fds opened before it */
#define MOUNT_F_IDMAP_RECURSIVE 0x100 /* OP_MOUNT_IDMAP: clone the whole tree (rbind) */
#define MOUNT_F_DETACHED      0x200 /* str0 unused: move_mount the tree kept by
                                    * OP_MOUNT_IDMAP in slot int3 onto the target */
#define MOUNT_F_PROC_OK       0x400 /* the destination was checked to be /proc or an
                                    * allow-listed file below it; without this bit a
                                    * target that resolves onto procfs is refused
                                    * (a symlink in the image, CVE-2019-19921 class) */
#define MOUNT_F_DIR_MODE      0x800 /* tmpfs: when the target already exists, its mode
                                    * goes first in the data ("mode=0700,<str3>"), so the
                                    * mount keeps the directory's mode unless str3 sets
                                    * one (runc) */
#define MOUNT_F_KIND_OF_SOURCE 0x1000 /* with MOUNT_F_BIND_SOURCE: open the source
                                    * before the target and create a missing target as
                                    * a directory or a file, like the source */
#define MOUNT_F_KEEP_LOCKED   0x2000 /* MS_REMOUNT|MS_BIND: on EPERM, retry once with
                                    * the lockable flags the mount already has (ro,
                                    * nosuid, nodev, noexec, atime) added, unless int3
                                    * (MS_* bits the config clears) names one of them or
                                    * a requested atime mode differs (runc 1.2) */
#define MOUNT_F_SOURCE_FD     0x4000 /* with MOUNT_F_BIND_SOURCE: mount from the fd
                                    * OP_BIND_SOURCES_OPEN kept in slot int3
                                    * (< MOUNT_SOURCE_SLOTS); without one, open str0 */
#define MOUNT_F_OR_ELSE       0x8000 /* the next int4 steps (at least 1) are this
                                    * mount's alternative: they run only when the mount
                                    * fails with EPERM or EBUSY and are skipped when it
                                    * succeeds (runc's cgroup2 fallback to a bind: the
                                    * kernel refuses cgroup2 on top of the host's cgroup2
                                    * mount that a rootless /sys rbind brings in) */
#define MOUNT_F_LABEL         0x10000 /* after the mount, set the SELinux label str4 on the
                                    * mounted directory (security.selinux): mqueue, which
                                    * takes no context= option (runc's mountLabel) */
#define MOUNT_IDMAP_SLOTS 64
#define MOUNT_SOURCE_SLOTS 64

/* OP_CONSOLE int3 bits */
#define CONSOLE_F_MOUNT 0x01 /* bind the peer onto the root's /dev/console, created as an
                              * empty file with O_NOFOLLOW and mounted by fd on both sides
                              * (CVE-2025-52565) */

/* OP_WAIT_START int1 values */
#define WAIT_F_HOLD    0x01
#define WAIT_F_RELEASE 0x02

/* ---- Hooks -----------------------------------------------------------------
 * prestart and createRuntime hooks run in the parent (runtime namespaces);
 * createContainer and startContainer hooks run as OP_HOOK steps here.  Hooks
 * get the runtime-spec state JSON on stdin, which holds the init's *host* pid:
 * unknown when the plan is encoded, so the states travel later.  Just before
 * the root change the plan has OP_SYNC(SYNC_HOOKS, 2): the parent runs the
 * prestart and createRuntime hooks, sends two MSG_HOOK_STATE messages (slot
 * 0: status "creating", for createContainer; slot 1: status "created", for
 * startContainer) and then MSG_ACK.  OP_HOOK int3 picks the slot.
 *
 * OP_HOOK: fork; the child gets the state on a pipe as stdin, stdout and
 * stderr on one pipe whose last bytes go into the error text, every other
 * fd closed, umask 022, default signals; execve(path, argv, env).  The init
 * waits for it (pidfd; waitpid(WNOHANG) at short intervals where pidfd_open
 * is refused, as under an older seccomp allow-list), SIGKILLs it at the timeout.  Non-zero exit, death by
 * a signal, a failed exec (exit 127) or the timeout fail the step; the text
 * is complete ("startContainer hook #0 (/x): exit status 2: <output>").
 *
 * startContainer hooks run after `start` opened exec.fifo and before the
 * init answers it: OP_WAIT_START(WAIT_F_HOLD), the process's steps, (with a
 * profile: OP_CHECK_EXEC(KEEP), OP_SECCOMP, maybe OP_CAPS(CAPSET_ONLY),) the
 * OP_HOOK steps, OP_WAIT_START(WAIT_F_RELEASE), OP_EXEC.  While
 * the fifo fd is held, a failing step writes "E" + its text there (one
 * write, < PIPE_BUF) so that `start` can report it; "0" means the process
 * is about to be exec'd.
 */
#define SYNC_HOOKS 1               /* OP_SYNC int0 of the hooks point */
#define SYNC_NETDEV 0x4E4554       /* OP_SYNC int0: move linux.netDevices into the net ns */
#define HOOK_STATE_SLOTS 2
#define HOOK_STATE_MAX (1u << 20)  /* bytes of one state JSON */
#define HOOK_CREATE_CONTAINER 1    /* OP_HOOK int4 */
#define HOOK_START_CONTAINER 2

/* ---- Seccomp ---------------------------------------------------------------
 * OP_SECCOMP builds a filter with libseccomp and loads it with seccomp(2).
 *   int0 default action (SECCOMP_ACT_*, not NOTIFY), int1 its errno (ERRNO) or
 *   message (TRACE), at most 65535, and 0 for every other action;
 *   int2 SECCOMP_F_* bits; int3 fd of a socket connected to the notify listener
 *   (listenerPath), int4 fd of a file holding the container process state JSON
 *   (both -1 = none; set together, only when some rule is SECCOMP_ACT_NOTIFY);
 *   str0 extra architectures: libseccomp names joined by ',' ("" = native only;
 *   a C string);
 *   str1 the rule table (binary): records, each
 *     u8 action (SECCOMP_ACT_*), u8 nargs (<= 6), u16 name_len (1-255),
 *     u32 value (errno or trace message, as int1), name_len bytes of syscall
 *     name (no NUL),
 *     then nargs times { u32 index (< 6), u32 op (SECCOMP_CMP_*), u64 value,
 *     u64 value_two }.
 * A name libseccomp cannot resolve is skipped, as is a rule whose action is
 * the default action (runc does both).  Arguments with distinct indexes make
 * one rule (all must match); when an index repeats, each argument makes a
 * rule of its own (any may match), as runc does.  The filter never sets
 * no_new_privs itself.  With a listener: after loading, one sendmsg on int3
 * with the state file's bytes as data and the notify fd as SCM_RIGHTS; then
 * int3, int4 and the notify fd are closed.  The parent fills the state file
 * at OP_SYNC(SYNC_SECCOMP), before OP_READY, once it knows the pid.
 * The plan reader rejects (EBADMSG) a table that does not parse exactly, an
 * unknown action, op or SECCOMP_F_* bit, a value out of range for its action,
 * a NOTIFY default action, a NOTIFY rule without a listener, a bad name
 * length or a NUL in a name, an index >= 6, an fd > INT_MAX, and int3/int4
 * where only one of them is -1.
 */
#define SECCOMP_ACT_KILL_THREAD  1
#define SECCOMP_ACT_KILL_PROCESS 2
#define SECCOMP_ACT_TRAP         3
#define SECCOMP_ACT_ERRNO        4
#define SECCOMP_ACT_TRACE        5
#define SECCOMP_ACT_LOG          6
#define SECCOMP_ACT_ALLOW        7
#define SECCOMP_ACT_NOTIFY       8
#define SECCOMP_CMP_NE        1 /* the numbers of libseccomp's enum scmp_compare */
#define SECCOMP_CMP_LT        2
#define SECCOMP_CMP_LE        3
#define SECCOMP_CMP_EQ        4
#define SECCOMP_CMP_GE        5
#define SECCOMP_CMP_GT        6
#define SECCOMP_CMP_MASKED_EQ 7 /* (arg & value) == value_two */
#define SECCOMP_F_LOG                0x01
#define SECCOMP_F_SPEC_ALLOW         0x02
#define SECCOMP_F_TSYNC              0x04
#define SECCOMP_F_WAIT_KILLABLE_RECV 0x08 /* only applied with a listener (kernel rule) */
#define SECCOMP_F_ENOSYS             0x10 /* not a kernel flag: prepend the ENOSYS stub */
#define SECCOMP_RULE_LEN 8u   /* fixed part of a rule record */
#define SECCOMP_ARG_LEN 24u
#define SECCOMP_MAX_ARGS 6
#define SYNC_SECCOMP 2        /* OP_SYNC int0: fill the seccomp state file */

/* OP_CAPS int5 bits */
#define CAPS_F_BOUNDING_ONLY 0x01 /* only drop the bounding set */
#define CAPS_F_NO_BOUNDING   0x02 /* leave the bounding set alone */
#define CAPS_F_CAPSET_ONLY   0x04 /* with CAPS_F_NO_BOUNDING: one capset(2) of int1-int3 and
                                   * nothing else (no /proc, no prctl): the step that may
                                   * follow the seccomp filter */

/* OP_CHECK_EXEC int0 bits */
#define CHECK_EXEC_F_KEEP 0x01 /* keep the resolved path for OP_EXEC and reserve int1
                                * argv/envp pointers, so that OP_EXEC needs no lookup and
                                * no allocation: just execve(2) */

/* OP_SETID int2 bits.  As runc's fixStdioPermissions: before the uid
 * changes, stdio that is an anonymous pipe, a socket or (with the flag
 * below) the container's pty gets int0 as its owner (group kept), so the
 * user can reopen it and use its terminal.  /dev/null, files and other
 * devices (a host tty passed as stdio) are left alone. */
#define SETID_F_STDIO    0x01 /* chown pipes and sockets on fds 0-2 */
#define SETID_F_STDIO_TTY 0x02 /* also a character device on fds 0-2: the process's pty */

/* OP_CHDIR int0 bits.  runc changes into the cwd before dropping privileges
 * and, if that is refused (EACCES/EPERM), once more as the container's user. */
#define CHDIR_F_TRY      0x01 /* EACCES/EPERM is not an error: left to CHDIR_F_RETRY */
#define CHDIR_F_RETRY    0x02 /* only if the CHDIR_F_TRY step did not get there */

/* ---- status messages ------------------------------------------------------ */
enum sync_type {
	MSG_ACK = 1,         /* parent -> init: go on */
	MSG_ABORT = 2,       /* parent -> init: stop, exit 1 */
	MSG_IDMAP_REQ = 3,   /* init -> parent: write my uid/gid maps (value = my pid) */
	MSG_CHILD_PID = 4,   /* init -> parent: value = pid of the container init */
	MSG_SYNC = 5,        /* init -> parent: value = OP_SYNC's int0 */
	MSG_READY = 6,       /* init -> parent: setup done, waiting for start */
	MSG_ERROR = 7,       /* init -> parent: step failed: step, err (errno), text */
	MSG_HOOK_STATE = 8,  /* parent -> init, only inside OP_SYNC: u32 type, then the state
	                      * JSON (at most HOOK_STATE_MAX bytes, no terminator); not a
	                      * struct sync_msg */
};

struct sync_msg {
	uint32_t type;
	int32_t step;   /* index of the failing step, -1 for the plan itself */
	int32_t err;    /* errno */
	int32_t value;
	char text[SYNC_TEXT_MAX]; /* NUL-terminated detail (resolved path, ...) */
};

#endif
