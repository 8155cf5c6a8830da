/*
 * pyrunc._shim: the few syscalls Python 3.9-3.11 lacks, for pyrunc/linux/.
 *
 * Every function returns >= 0 on success or -errno on failure and never
 * touches Python objects.  pyrunc_spawn is the only one that forks; its
 * child runs nothing but execveat(2).
 */
#ifndef PYRUNC_SHIM_H
#define PYRUNC_SHIM_H

#include <stdint.h>

/* CDEF BEGIN */
/* vfork + execveat(exe_fd, "", argv, envp, AT_EMPTY_PATH) with every signal
 * blocked around the vfork (so no Python handler runs in the child).  Returns
 * the child's pid.  Async-signal-safe child.  The child inherits fds 0-2 and
 * the nkeep fds in keep[] (sorted ascending, not close-on-exec); every other
 * fd is made close-on-exec in the child first (it exits 126 if that fails). */
int pyrunc_spawn(int exe_fd, char *const argv[], char *const envp[],
                 const int *keep, int nkeep);
/* prctl(PR_SET_CHILD_SUBREAPER, on). */
int pyrunc_set_child_subreaper(int on);
/* setns(fd, nstype). */
int pyrunc_setns(int fd, int nstype);
/* mount(2) and umount2(2), used by tests and cleanup. */
int pyrunc_mount(const char *source, const char *target, const char *fstype,
                 unsigned long flags, const char *data);
int pyrunc_umount2(const char *target, int flags);
/* ioctl(fd, TIOCGPTPEER, flags): the pty peer without a path lookup. */
int pyrunc_ptpeer(int master_fd, int flags);

/* cgroup v2 device filters (bpf(2)).  Each is one syscall and allocates
 * nothing (async-signal-safe).  attach_type is BPF_CGROUP_DEVICE (6) for
 * device filters; flags are BPF_F_* values. */
/* BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program from n struct
 * bpf_insn (8 bytes each), license "Apache-2.0" (such programs call no
 * GPL-only helper).  When log is non-NULL the verifier writes its log there
 * (log_size bytes, NUL-terminated).  Returns the new program fd
 * (O_CLOEXEC). */
int pyrunc_bpf_prog_load_cgroup_device(const void *insns, int n, char *log, int log_size);
/* BPF_PROG_ATTACH prog_fd to the cgroup directory cgroup_fd.  With
 * BPF_F_REPLACE in flags, replace_fd names the attached program to swap out
 * atomically; otherwise pass -1.  Returns 0. */
int pyrunc_bpf_prog_attach(int prog_fd, int cgroup_fd, int attach_type, unsigned flags, int replace_fd);
/* BPF_PROG_DETACH of the program prog_fd from cgroup_fd.  Returns 0. */
int pyrunc_bpf_prog_detach2(int prog_fd, int cgroup_fd, int attach_type);
/* BPF_PROG_QUERY: ids of the programs attached directly to cgroup_fd.
 * *count is the capacity of ids on entry and the number attached on return
 * (also on -ENOSPC, when ids was too small).  *attach_flags gets the
 * BPF_F_* flags they were attached with.  Returns 0. */
int pyrunc_bpf_prog_query(int cgroup_fd, int attach_type, unsigned *attach_flags,
                          uint32_t *ids, uint32_t *count);
/* BPF_PROG_GET_FD_BY_ID.  Returns a new program fd (O_CLOEXEC). */
int pyrunc_bpf_prog_get_fd_by_id(uint32_t id);
/* fstatfs(fd).f_type into *type (e.g. CGROUP2_SUPER_MAGIC). Returns 0. */
int pyrunc_fstatfs_type(int fd, long *type);
/* CDEF END */

#endif
