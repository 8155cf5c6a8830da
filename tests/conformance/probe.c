/*
 * probe: runs inside a container and checks its environment against the
 * container's config.json, printing TAP-like lines ("ok N - what" /
 * "not ok N - what: detail") and a final "1..N".  Modelled on the idea of
 * runtime-tools' runtimetest, written for pyrunc's conformance suite.
 *
 *   probe check CONFIG   every check the config allows
 *   probe attrs          personality, scheduler, ioprio, mempolicy, affinity
 *
 * Built with gcc -static by the tests; it needs nothing from the image.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- a small JSON reader ------------------------------------------------ */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct json {
	enum jtype type;
	double num;
	int boolean;
	char *str;          /* J_STR value */
	char *key;          /* member name when inside an object */
	struct json *child; /* first element / member */
	struct json *next;  /* next sibling */
};

static const char *jp;

static void skip_ws(void)
{
	while (*jp && isspace((unsigned char)*jp))
		jp++;
}

static char *parse_string(void)
{
	size_t cap = 64, n = 0;
	char *out = malloc(cap);

	jp++; /* opening quote */
	while (*jp && *jp != '"') {
		char c = *jp++;

		if (c == '\\') {
			c = *jp++;
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned v = 0;

				for (int i = 0; i < 4 && *jp; i++, jp++)
					v = v * 16 + (unsigned)(isdigit((unsigned char)*jp) ? *jp - '0'
						: (tolower((unsigned char)*jp) - 'a' + 10));
				c = v < 0x80 ? (char)v : '?';
				break;
			}
			default: break;
			}
		}
		if (n + 2 > cap)
			out = realloc(out, cap *= 2);
		out[n++] = c;
	}
	if (*jp == '"')
		jp++;
	out[n] = '\0';
	return out;
}

static struct json *parse_value(void)
{
	struct json *v = calloc(1, sizeof(*v));

	skip_ws();
	if (*jp == '{' || *jp == '[') {
		char close = *jp == '{' ? '}' : ']';
		struct json **tail = &v->child;

		v->type = *jp == '{' ? J_OBJ : J_ARR;
		jp++;
		for (;;) {
			char *key = NULL;
			struct json *item;

			skip_ws();
			if (*jp == close) {
				jp++;
				break;
			}
			if (!*jp)
				break;
			if (v->type == J_OBJ) {
				key = parse_string();
				skip_ws();
				if (*jp == ':')
					jp++;
			}
			item = parse_value();
			item->key = key;
			*tail = item;
			tail = &item->next;
			skip_ws();
			if (*jp == ',')
				jp++;
		}
	} else if (*jp == '"') {
		v->type = J_STR;
		v->str = parse_string();
	} else if (!strncmp(jp, "true", 4) || !strncmp(jp, "false", 5)) {
		v->type = J_BOOL;
		v->boolean = *jp == 't';
		jp += v->boolean ? 4 : 5;
	} else if (!strncmp(jp, "null", 4)) {
		jp += 4;
	} else {
		char *end;

		v->type = J_NUM;
		v->num = strtod(jp, &end);
		jp = end > jp ? end : jp + 1;
	}
	return v;
}

static struct json *get(const struct json *obj, const char *key)
{
	if (!obj || obj->type != J_OBJ)
		return NULL;
	for (struct json *m = obj->child; m; m = m->next)
		if (!strcmp(m->key, key))
			return m;
	return NULL;
}

static const char *get_str(const struct json *obj, const char *key)
{
	const struct json *v = get(obj, key);

	return v && v->type == J_STR ? v->str : NULL;
}

static int get_num(const struct json *obj, const char *key, double *out)
{
	const struct json *v = get(obj, key);

	if (!v || v->type != J_NUM)
		return 0;
	*out = v->num;
	return 1;
}

/* ---- TAP output ---------------------------------------------------------- */

static int count, failed;

static void result(int ok, const char *what, const char *fmt, ...)
{
	char detail[512] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	count++;
	if (!ok)
		failed++;
	printf("%sok %d - %s%s%s\n", ok ? "" : "not ", count, what, ok || !*detail ? "" : ": ",
	       ok ? "" : detail);
}

static char *read_file(const char *path)
{
	static char buf[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (fd < 0)
		return NULL;
	while ((n = read(fd, buf + total, sizeof(buf) - 1 - (size_t)total)) > 0)
		total += n;
	close(fd);
	buf[total] = '\0';
	return buf;
}

/* Value of "Key:\t..." in /proc/self/status, as a string. */
static int status_field(const char *key, char *out, size_t size)
{
	char *text = read_file("/proc/self/status"), *p;
	size_t klen = strlen(key);

	if (!text)
		return 0;
	for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			char *v = p + klen + 1, *e;

			while (*v == '\t' || *v == ' ')
				v++;
			e = strchr(v, '\n');
			snprintf(out, size, "%.*s", e ? (int)(e - v) : (int)strlen(v), v);
			return 1;
		}
	}
	return 0;
}

/* ---- checks -------------------------------------------------------------- */

static const char *const CAPS[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

static uint64_t cap_mask(const struct json *list)
{
	uint64_t mask = 0;

	for (const struct json *e = list ? list->child : NULL; e; e = e->next)
		for (unsigned i = 0; i < sizeof(CAPS) / sizeof(CAPS[0]); i++)
			if (e->type == J_STR && !strcmp(e->str, CAPS[i]))
				mask |= 1ull << i;
	return mask;
}

static void check_caps(const struct json *process)
{
	static const char *const sets[][2] = {
		{ "bounding", "CapBnd" }, { "effective", "CapEff" }, { "permitted", "CapPrm" },
		{ "inheritable", "CapInh" }, { "ambient", "CapAmb" },
	};
	const struct json *caps = get(process, "capabilities");
	char text[64], what[96];

	if (!caps)
		return;
	for (unsigned i = 0; i < 5; i++) {
		uint64_t want = cap_mask(get(caps, sets[i][0])), have;
		/* Bits this kernel does not know cannot be held. */
		uint64_t known = (2ull << 40) - 1;

		if (!status_field(sets[i][1], text, sizeof(text)))
			continue;
		have = strtoull(text, NULL, 16);
		snprintf(what, sizeof(what), "process.capabilities.%s", sets[i][0]);
		result((have & known) == (want & known), what, "have %#llx want %#llx",
		       (unsigned long long)have, (unsigned long long)want);
	}
}

static const char *const RLIMITS[] = {
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
	"RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
	"RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO",
	"RLIMIT_RTTIME",
};

static void check_rlimits(const struct json *process)
{
	const struct json *list = get(process, "rlimits");

	for (const struct json *e = list ? list->child : NULL; e; e = e->next) {
		const char *type = get_str(e, "type");
		double soft = 0, hard = 0;
		struct rlimit rl;
		char what[96];

		get_num(e, "soft", &soft);
		get_num(e, "hard", &hard);
		for (int r = 0; type && r < 16; r++) {
			if (strcmp(type, RLIMITS[r]))
				continue;
			snprintf(what, sizeof(what), "process.rlimits %s", type);
			getrlimit(r, &rl);
			result((double)rl.rlim_cur == soft && (double)rl.rlim_max == hard, what,
			       "have %llu/%llu", (unsigned long long)rl.rlim_cur,
			       (unsigned long long)rl.rlim_max);
		}
	}
}

static void check_user(const struct json *process)
{
	const struct json *user = get(process, "user");
	double uid = 0, gid = 0, umask_v;
	uid_t r, e, s;
	gid_t gr, ge, gs, groups[256];
	int n, ok = 1;
	const struct json *add = get(user, "additionalGids");

	get_num(user, "uid", &uid);
	get_num(user, "gid", &gid);
	getresuid(&r, &e, &s);
	result(r == (uid_t)uid && e == (uid_t)uid && s == (uid_t)uid, "process.user.uid",
	       "have %u", (unsigned)e);
	getresgid(&gr, &ge, &gs);
	result(gr == (gid_t)gid && ge == (gid_t)gid && gs == (gid_t)gid, "process.user.gid",
	       "have %u", (unsigned)ge);
	n = getgroups(256, groups);
	for (const struct json *g = add ? add->child : NULL; g; g = g->next) {
		int found = 0;

		for (int i = 0; i < n; i++)
			found |= groups[i] == (gid_t)g->num;
		ok &= found;
	}
	result(ok, "process.user.additionalGids", "%d groups", n);
	if (get_num(user, "umask", &umask_v)) {
		mode_t old = umask(0);

		umask(old);
		result(old == (mode_t)umask_v, "process.user.umask", "have %#o", (unsigned)old);
	}
}

static void check_process(const struct json *process, char **envp)
{
	const struct json *env = get(process, "env");
	const char *cwd = get_str(process, "cwd");
	char buf[4096];
	double adj;

	if (cwd) {
		result(getcwd(buf, sizeof(buf)) && !strcmp(buf, cwd), "process.cwd", "have %s", buf);
	}
	for (const struct json *e = env ? env->child : NULL; e; e = e->next) {
		int found = 0;

		for (char **p = envp; *p; p++)
			found |= !strcmp(*p, e->str);
		snprintf(buf, sizeof(buf), "process.env %.200s", e->str);
		result(found, buf, NULL);
	}
	check_user(process);
	check_rlimits(process);
	check_caps(process);
	{
		const struct json *nnp = get(process, "noNewPrivileges");
		int want = nnp && nnp->type == J_BOOL && nnp->boolean;

		result(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == want, "process.noNewPrivileges",
		       NULL);
	}
	if (get_num(process, "oomScoreAdj", &adj)) {
		char *t = read_file("/proc/self/oom_score_adj");

		result(t && atoi(t) == (int)adj, "process.oomScoreAdj", "have %s", t ? t : "?");
	}
}

/* The mountinfo line of the mount point at path (the last one wins). */
static int mount_entry(const char *path, char *fstype, size_t fsize, char *opts, size_t osize)
{
	char *text = read_file("/proc/self/mountinfo"), *line, *save = NULL;
	int found = 0;

	if (!text)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char mp[4096], mopts[1024], *sep = strstr(line, " - ");

		if (sscanf(line, "%*s %*s %*s %*s %4095s %1023s", mp, mopts) != 2 || !sep)
			continue;
		if (strcmp(mp, path))
			continue;
		found = 1;
		sscanf(sep + 3, "%63s", fstype);
		snprintf(opts, osize, "%s", mopts);
		(void)fsize;
	}
	return found;
}

static void check_mounts(const struct json *mounts)
{
	for (const struct json *m = mounts ? mounts->child : NULL; m; m = m->next) {
		const char *dest = get_str(m, "destination"), *type = get_str(m, "type");
		char fstype[64] = "", opts[1024] = "", what[512];
		int bind = type && (!strcmp(type, "bind") || !strcmp(type, "rbind"));
		const struct json *o = get(m, "options");

		for (const struct json *e = o ? o->child : NULL; e; e = e->next)
			bind |= e->type == J_STR && (!strcmp(e->str, "bind") || !strcmp(e->str, "rbind"));
		const struct json *later;

		if (!dest)
			continue;
		/* Only the last mount on a destination is visible there. */
		for (later = m->next; later; later = later->next)
			if (get_str(later, "destination") && !strcmp(get_str(later, "destination"), dest))
				break;
		if (later)
			continue;
		snprintf(what, sizeof(what), "mounts %s", dest);
		if (!mount_entry(dest, fstype, sizeof(fstype), opts, sizeof(opts))) {
			result(0, what, "not a mount point");
			continue;
		}
		if (!bind && type && strcmp(type, "cgroup"))
			result(!strcmp(fstype, type), what, "type %s", fstype);
		else
			result(1, what, NULL);
		for (const struct json *e = o ? o->child : NULL; e; e = e->next) {
			if (e->type == J_STR && (!strcmp(e->str, "ro") || !strcmp(e->str, "nosuid") ||
						 !strcmp(e->str, "nodev") || !strcmp(e->str, "noexec"))) {
				snprintf(what, sizeof(what), "mounts %s option %s", dest, e->str);
				result(strstr(opts, e->str) != NULL, what, "have %s", opts);
			}
		}
	}
}

static void check_devices(const struct json *linux_)
{
	static const struct { const char *path; unsigned maj, min; } defaults[] = {
		{ "/dev/null", 1, 3 }, { "/dev/zero", 1, 5 }, { "/dev/full", 1, 7 },
		{ "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
	};
	const struct json *devs = get(linux_, "devices");
	struct stat st;
	char what[512];

	for (unsigned i = 0; i < 6; i++) {
		snprintf(what, sizeof(what), "default device %s", defaults[i].path);
		result(stat(defaults[i].path, &st) == 0 && S_ISCHR(st.st_mode) &&
		       major(st.st_rdev) == defaults[i].maj && minor(st.st_rdev) == defaults[i].min,
		       what, NULL);
	}
	result(lstat("/dev/ptmx", &st) == 0, "default device /dev/ptmx", NULL);
	for (const struct json *d = devs ? devs->child : NULL; d; d = d->next) {
		const char *path = get_str(d, "path"), *type = get_str(d, "type");
		double maj = 0, min = 0, mode;
		int ok;

		if (!path || !type)
			continue;
		get_num(d, "major", &maj);
		get_num(d, "minor", &min);
		snprintf(what, sizeof(what), "linux.devices %s", path);
		ok = stat(path, &st) == 0;
		if (ok && *type == 'p')
			ok = S_ISFIFO(st.st_mode);
		else if (ok)
			ok = (*type == 'b' ? S_ISBLK(st.st_mode) : S_ISCHR(st.st_mode)) &&
			     major(st.st_rdev) == (unsigned)maj && minor(st.st_rdev) == (unsigned)min;
		if (ok && get_num(d, "fileMode", &mode))
			ok = (st.st_mode & 07777) == ((unsigned)mode & 07777);
		result(ok, what, NULL);
	}
}

static void check_paths(const struct json *linux_)
{
	const struct json *masked = get(linux_, "maskedPaths"), *ro = get(linux_, "readonlyPaths");
	char what[512], buf[16];

	for (const struct json *p = masked ? masked->child : NULL; p; p = p->next) {
		struct stat st;
		int ok = 1;

		snprintf(what, sizeof(what), "linux.maskedPaths %s", p->str);
		if (stat(p->str, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				struct statvfs vfs;

				ok = statvfs(p->str, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
			} else {
				int fd = open(p->str, O_RDONLY | O_CLOEXEC);

				ok = fd < 0 || read(fd, buf, sizeof(buf)) <= 0;
				if (fd >= 0)
					close(fd);
			}
		}
		result(ok, what, NULL);
	}
	for (const struct json *p = ro ? ro->child : NULL; p; p = p->next) {
		struct statvfs vfs;

		snprintf(what, sizeof(what), "linux.readonlyPaths %s", p->str);
		result(statvfs(p->str, &vfs) != 0 || (vfs.f_flag & ST_RDONLY), what, NULL);
	}
}

static void check_sysctl(const struct json *linux_)
{
	const struct json *sys = get(linux_, "sysctl");

	for (const struct json *s = sys ? sys->child : NULL; s; s = s->next) {
		char path[512], what[512], *text;
		size_t n;

		snprintf(path, sizeof(path), "/proc/sys/%s", s->key);
		for (char *c = path + 10; *c; c++)
			if (*c == '.')
				*c = '/';
		text = read_file(path);
		n = text ? strlen(text) : 0;
		while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
			text[--n] = '\0';
		snprintf(what, sizeof(what), "linux.sysctl %s", s->key);
		result(text && s->type == J_STR && !strcmp(text, s->str), what, "have %s",
		       text ? text : "?");
	}
}

static void check_config(const char *path, char **envp)
{
	char *text = read_file(path);
	struct json *cfg, *process, *linux_, *root;
	const char *hostname, *domainname;
	char buf[256];
	struct stat st;

	if (!text) {
		result(0, "read config.json", "%s", strerror(errno));
		return;
	}
	jp = strdup(text);
	cfg = parse_value();
	process = get(cfg, "process");
	linux_ = get(cfg, "linux");
	root = get(cfg, "root");
	result(getpid() == 1, "the process is PID 1 of its pid namespace", "pid %d", getpid());
	check_process(process, envp);
	hostname = get_str(cfg, "hostname");
	if (hostname && *hostname) {
		gethostname(buf, sizeof(buf));
		result(!strcmp(buf, hostname), "hostname", "have %s", buf);
	}
	domainname = get_str(cfg, "domainname");
	if (domainname && *domainname) {
		getdomainname(buf, sizeof(buf));
		result(!strcmp(buf, domainname), "domainname", "have %s", buf);
	}
	{
		const struct json *ro = get(root, "readonly");
		struct statvfs vfs;
		int want = ro && ro->type == J_BOOL && ro->boolean;

		result(statvfs("/", &vfs) == 0 && !!(vfs.f_flag & ST_RDONLY) == want,
		       "root.readonly", NULL);
	}
	check_mounts(get(cfg, "mounts"));
	check_devices(linux_);
	check_paths(linux_);
	check_sysctl(linux_);
	{
		static const char *const links[][2] = {
			{ "/dev/fd", "/proc/self/fd" }, { "/dev/stdin", "/proc/self/fd/0" },
			{ "/dev/stdout", "/proc/self/fd/1" }, { "/dev/stderr", "/proc/self/fd/2" },
		};
		for (unsigned i = 0; i < 4; i++) {
			char target[256] = "", what[64];
			ssize_t n = readlink(links[i][0], target, sizeof(target) - 1);

			if (n > 0)
				target[n] = '\0';
			snprintf(what, sizeof(what), "dev symlink %s", links[i][0]);
			result(n > 0 && !strcmp(target, links[i][1]), what, "have %s", target);
		}
	}
	result(lstat("/proc/self", &st) == 0, "procfs is usable", NULL);
}

/* ---- attrs ---------------------------------------------------------------- */

static void print_attrs(void)
{
	unsigned long mask[16] = { 0 };
	int mode = -1;
	long prio;
	char text[256];

	printf("personality %#x\n", personality(0xffffffff) & 0xff);
	prio = syscall(SYS_ioprio_get, 1, 0);
	printf("ioprio %ld %ld\n", prio < 0 ? -1 : prio >> 13, prio < 0 ? -1 : prio & 0x1fff);
	if (syscall(SYS_get_mempolicy, &mode, mask, 8 * sizeof(mask), NULL, 0) < 0)
		printf("mempolicy error %d\n", errno);
	else
		printf("mempolicy %d %#lx\n", mode, mask[0]);
	if (status_field("Cpus_allowed_list", text, sizeof(text)))
		printf("cpus %s\n", text);
	printf("policy %d\n", sched_getscheduler(0));
	printf("nice %d\n", getpriority(PRIO_PROCESS, 0));
}

int main(int argc, char **argv, char **envp)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "attrs")) {
		print_attrs();
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "check")) {
		check_config(argv[2], envp);
		printf("1..%d\n", count);
		return failed ? 1 : 0;
	}
	fprintf(stderr, "usage: probe check CONFIG | probe attrs\n");
	return 2;
}
