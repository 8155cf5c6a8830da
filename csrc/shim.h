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
 * the child's pid.  Async-signal-safe child; fds are inherited as they are. */
int pyrunc_spawn(int exe_fd, char *const argv[], char *const envp[]);
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
/* CDEF END */

#endif
