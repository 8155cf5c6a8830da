/*
 * probe: the attacker's side of the security tests, run inside containers.
 * Built static by tests/security/conftest.py so it needs nothing from the
 * image.  Every finding is one line on stdout, written with write(2).
 *
 *   probe scan SECONDS        look at every process visible in /proc and try to
 *                             reach pyrunc ones: readlink/open /proc/<pid>/exe
 *                             (read and write), every map_files entry, PTRACE_SEIZE
 *                             (CVE-2019-5736, CVE-2016-9962)
 *   probe exchange SECONDS A B   renameat2(RENAME_EXCHANGE) A and B in a loop
 *                             (CVE-2021-30465, CVE-2024-45310)
 *   probe ids                 print real and effective ids (setuid checks)
 *   probe fds                 print this process's open fds (leak checks)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(1, buf, (size_t)n) < 0)
		_exit(3);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0' || buf[i] == '\n')
			buf[i] = ' ';
	buf[n] = '\0';
	return 0;
}

/* A process of pyrunc's: its command line names pyrunc or python, or it
 * is a re-execution of /proc/self/exe. */
static int interesting(const char *cmdline)
{
	return strstr(cmdline, "pyrunc") || strstr(cmdline, "python") ||
	       strstr(cmdline, "/proc/self/exe");
}

/* What an fd really names (the file the kernel opened, not a path). */
static void fd_target(int fd, char *out, size_t size)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, size - 1);
	if (n < 0)
		n = 0;
	out[n] = '\0';
}

static void try_file(const char *kind, long pid, const char *path)
{
	char target[4096];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	int fd;

	if (n >= 0) {
		target[n] = '\0';
		say("READLINK %s %ld %s -> %s", kind, pid, path, target);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		fd_target(fd, target, sizeof(target));
		say("OPENR %s %ld %s -> %s", kind, pid, path, target);
		close(fd);
	}
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		fd_target(fd, target, sizeof(target));
		say("OPENW %s %ld %s -> %s", kind, pid, path, target);
		close(fd);
	}
}

/* Whether the tracee pid is reported dead within half a second. */
static int exits_soon(pid_t pid)
{
	int status;

	for (int i = 0; i < 50; i++) {
		pid_t r = waitpid(pid, &status, __WALL | WNOHANG);

		if (r < 0 || (r == pid && (WIFEXITED(status) || WIFSIGNALED(status))))
			return 1;
		usleep(10000);
	}
	return 0;
}

static void attack(long pid)
{
	char path[256], entry[512];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
	try_file("exe", pid, path);
	snprintf(path, sizeof(path), "/proc/%ld/map_files", pid);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(entry, sizeof(entry), "%s/%s", path, de->d_name);
			try_file("map", pid, entry);
		}
		closedir(d);
	}
	if (ptrace(PTRACE_SEIZE, (pid_t)pid, 0, 0) == 0) {
		/* Name what was attached to: a pyrunc-init that has exec'd
		 * the container process in the meantime is not a finding.
		 * The tracee is stopped first, so it cannot exit between the
		 * attach and the readlink (an exiting task has no exe left,
		 * which would look like an unnamed hit). */
		char target[4096];
		ssize_t n;
		int status = 0;

		snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
		ptrace(PTRACE_INTERRUPT, (pid_t)pid, 0, 0);
		if (waitpid((pid_t)pid, &status, __WALL) < 0 ||
		    WIFEXITED(status) || WIFSIGNALED(status)) {
			say("PTRACE ptrace %ld %s -> (exited)", pid, path);
			return;
		}
		n = readlink(path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		/* Even a stopped tracee dies on SIGKILL (delete --force). */
		if (n < 0 && exits_soon((pid_t)pid)) {
			say("PTRACE ptrace %ld %s -> (exited)", pid, path);
			return;
		}
		say("PTRACE ptrace %ld %s -> %s", pid, path, n < 0 ? "?" : target);
		ptrace(PTRACE_DETACH, (pid_t)pid, 0, 0);
	}
}

static int scan(double seconds)
{
	double end = now() + seconds;
	long self = (long)getpid();
	static char seen[1 << 22];
	unsigned long rounds = 0;

	while (now() < end) {
		DIR *d = opendir("/proc");
		struct dirent *de;

		if (!d) {
			say("ERROR opendir /proc: %s", strerror(errno));
			return 1;
		}
		while ((de = readdir(d))) {
			char path[256], cmdline[1024] = "";
			long pid;

			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			pid = strtol(de->d_name, NULL, 10);
			if (pid == self || pid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
			if (read_small(path, cmdline, sizeof(cmdline)) < 0 || !interesting(cmdline))
				continue;
			if (pid < (long)sizeof(seen) && !seen[pid]) {
				seen[pid] = 1;
				say("SEEN %ld %s", pid, cmdline);
			}
			attack(pid);
		}
		closedir(d);
		rounds++;
	}
	say("DONE %lu", rounds);
	return 0;
}

static int exchange(double seconds, const char *a, const char *b)
{
	double end = now() + seconds;
	unsigned long n = 0;

	while (now() < end) {
		for (int i = 0; i < 256; i++)
			if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
				n++;
	}
	say("EXCHANGED %lu", n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "scan"))
		return scan(atof(argv[2]));
	if (argc >= 5 && !strcmp(argv[1], "exchange"))
		return exchange(atof(argv[2]), argv[3], argv[4]);
	if (argc >= 2 && !strcmp(argv[1], "ids")) {
		uid_t r, e, s;
		gid_t rg, eg, sg;

		getresuid(&r, &e, &s);
		getresgid(&rg, &eg, &sg);
		say("uid=%u euid=%u suid=%u gid=%u egid=%u", r, e, s, rg, eg);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "fds")) {
		DIR *d = opendir("/proc/self/fd");
		struct dirent *de;
		char line[1024] = "FDS=";

		if (!d)
			return 1;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d) &&
			    strlen(line) + strlen(de->d_name) + 2 < sizeof(line)) {
				strcat(line, de->d_name);
				strcat(line, " ");
			}
		closedir(d);
		say("%s", line);
		return 0;
	}
	say("usage: probe scan SECONDS | exchange SECONDS A B | ids | fds");
	return 2;
}
