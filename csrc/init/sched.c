/*
 * sched.c: per-process execution attributes of the container process:
 * personality, scheduler, I/O priority, CPU affinity and NUMA memory policy.
 * All of them survive execve(2), so they are set by pyrunc-init on itself
 * just before the exec.  Every value was checked and translated to kernel
 * numbers by the planner; these handlers only make the system calls.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

/* The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER0: 48 bytes). */
struct kernel_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_SHIFT 13

int op_personality(const struct step *s)
{
	/* personality(0xffffffff) only queries; the planner never sends it. */
	if (personality((unsigned long)s->ints[0]) < 0)
		return fail(errno, "personality %#llx", (unsigned long long)s->ints[0]);
	return 0;
}

int op_scheduler(const struct step *s)
{
	struct kernel_sched_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.sched_policy = (uint32_t)(s->ints[0] & 0xffffffffu);
	attr.sched_flags = s->ints[0] >> 32;
	attr.sched_nice = (int32_t)s->ints[1];
	attr.sched_priority = (uint32_t)s->ints[2];
	attr.sched_runtime = s->ints[3];
	attr.sched_deadline = s->ints[4];
	attr.sched_period = s->ints[5];
	if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0)
		return fail(errno, "sched_setattr policy %u", attr.sched_policy);
	return 0;
}

int op_ioprio(const struct step *s)
{
	long prio = (long)((s->ints[0] << IOPRIO_CLASS_SHIFT) | (s->ints[1] & 0x1fff));

	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) < 0)
		return fail(errno, "ioprio_set class %llu priority %llu",
			    (unsigned long long)s->ints[0], (unsigned long long)s->ints[1]);
	return 0;
}

int op_cpu_affinity(const struct step *s)
{
	/* The mask arrives in the kernel's own layout (little-endian longs). */
	if (syscall(SYS_sched_setaffinity, 0, (size_t)s->strs[0].len, s->strs[0].s) < 0)
		return fail(errno, "sched_setaffinity (%u-byte mask)", s->strs[0].len);
	return 0;
}

int op_mempolicy(const struct step *s)
{
	const void *mask = s->strs[0].len ? s->strs[0].s : NULL;

	if (syscall(SYS_set_mempolicy, (int)s->ints[0], mask, (unsigned long)s->ints[1]) < 0)
		return fail(errno, "set_mempolicy mode %#llx", (unsigned long long)s->ints[0]);
	return 0;
}
