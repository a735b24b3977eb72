/*
 * proc.c - telling a live process from a dead one, across pid reuse and
 * reboots: pid + start time (/proc/PID/stat field 22) + boot id.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mlfs/compute.h"
#include "mlfs/parse.h"

static int read_small_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int saved;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	saved = errno;
	close(fd);
	if (n < 0)
		return -saved;
	buf[n] = '\0';
	return (int)n;
}

static int boot_id(char boot[40])
{
	char buf[64];
	int n = read_small_file("/proc/sys/kernel/random/boot_id", buf,
				sizeof(buf));

	if (n < 0)
		return n;
	buf[strcspn(buf, "\n")] = '\0';
	buf[39] = '\0';	/* a UUID is 36 characters */
	memcpy(boot, buf, 40);
	return 0;
}

/*
 * State letter and start time from /proc/PID/stat. The command name in
 * field 2 may hold spaces and parentheses, so fields are counted from
 * the last ')'.
 */
static int proc_stat(int64_t pid, char *state, int64_t *start)
{
	char path[64], buf[1024];
	const char *p;
	int field = 2;
	int n;

	snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : n;
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	while (*p && field < 22) {
		while (*p == ' ')
			p++;
		field++;
		if (field == 3)
			*state = *p;
		if (field == 22)
			break;
		p += strcspn(p, " ");
	}
	if (field != 22)
		return -EIO;
	return parse_int64(p, strcspn(p, " "), start) == 0 ? 0 : -EIO;
}

int proc_id_of(int64_t pid, struct proc_id *out, char boot[40])
{
	char state = '?';
	int rc = proc_stat(pid, &state, &out->start);

	if (rc < 0)
		return rc;
	rc = boot_id(boot);
	if (rc < 0)
		return rc;
	out->pid = pid;
	out->boot_id = boot;
	return 0;
}

int proc_id_alive(const struct proc_id *p)
{
	char boot[40];
	char state = '?';
	int64_t start = 0;

	if (p->pid <= 0)
		return 0;
	if (boot_id(boot) < 0 || !p->boot_id || strcmp(boot, p->boot_id) != 0)
		return 0;
	if (proc_stat(p->pid, &state, &start) < 0)
		return 0;
	return start == p->start && state != 'Z' && state != 'X';
}

int compute_cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}
