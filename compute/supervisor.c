/*
 * supervisor.c - mlfs-supervise: carries claimed runs from Preparing to
 * their end. The same management code will run on every compute target.
 *
 * For one run (supervise_run):
 *
 *   Preparing   make WORKSPACE/runs/ID (the working directory) with
 *               outputs/, logs/user_logs/, logs/system_logs/; extract the
 *               snapshot into it; build argv and the environment
 *   Running     fork the command in its own process group, stdout and
 *               stderr to logs/user_logs/std_log.txt; every tick (100 ms,
 *               or at once when a child exits) ingest new lines of
 *               $MLFS_METRICS, look for a cancel, check the time limit
 *   Finalizing  the command ended: ingest the rest of the metrics, stop
 *               whatever the command left running
 *   end         Completed (exit 0), Canceled (a cancel was asked for),
 *               Failed (anything else: exit code, signal, time-out, an
 *               error of mlfs) with the reason and the log's last lines
 *
 * Invariants
 *  1. The supervisor is a child subreaper: processes the command leaves
 *     behind are re-parented to it, reaped by it and killed at the end,
 *     so a finished run leaves no process behind.
 *  2. The run's status is only moved by the store calls named in
 *     store/run_lifecycle.c; a store error while recording the end is
 *     retried by the next mount, which finds the supervisor gone.
 *  3. Everything mlfs did for the run goes to logs/system_logs/mlfs.log.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlfs/compute.h"
#include "mlfs/ingest.h"
#include "mlfs/parse.h"
#include "mlfs/snapshot.h"
#include "mlfs/strbuf.h"
#include "mlfs/timefmt.h"

#define TICK_MS 100
#define LOG_TAIL_LINES 10
#define LOG_TAIL_BYTES 4096

struct supervisor {
	const char *workspace;
	const char *compute;
	const char *mountpoint;
	struct store *st;
	struct proc_id self;
	char boot[40];
};

/* One run being carried. */
struct job {
	struct supervisor *sv;
	struct store_run run;
	char *experiment;
	char dir[PATH_MAX - 64];	/* the working directory */
	char metrics[PATH_MAX];
	char std_log[PATH_MAX];
	FILE *log;			/* logs/system_logs/mlfs.log */
	json_t *config;
	pid_t pid;			/* the command, leader of its group */
	int exited;
	int wstatus;
	int64_t started_ms;
	int64_t term_sent_ms;		/* 0 until SIGTERM went to the group */
	int cancel_seen;
	int timed_out;
	struct ingest *ingest;
	uint64_t points;
	uint64_t skipped;
};

/* ---- the run's system log ----------------------------------------------- */

static void job_log(struct job *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void job_log(struct job *j, const char *fmt, ...)
{
	char ts[32];
	va_list ap;

	if (!j->log)
		return;
	time_format_iso(time_now_ms(), ts);
	fprintf(j->log, "%s ", ts);
	va_start(ap, fmt);
	vfprintf(j->log, fmt, ap);
	va_end(ap);
	fputc('\n', j->log);
	fflush(j->log);
}

static void skipped_metric_line(void *ctx, uint64_t line_no, const char *line,
				size_t len, const char *reason)
{
	struct job *j = ctx;

	j->skipped++;
	job_log(j, "metrics line %llu skipped: %s: '%.*s'",
		(unsigned long long)line_no, reason,
		(int)(len > 200 ? 200 : len), line);
}

/* ---- preparing ---------------------------------------------------------- */

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int job_paths(struct job *j)
{
	const char *ws = j->sv->workspace;
	const char *id = j->run.name;
	static const char *const subdirs[] = {
		"outputs", "logs/user_logs", "logs/system_logs", ".mlfs",
	};
	char path[PATH_MAX];
	int rc;

	if ((size_t)snprintf(j->dir, sizeof(j->dir), "%s/runs/%s", ws, id) >=
	    sizeof(j->dir))
		return -ENAMETOOLONG;
	snprintf(j->metrics, sizeof(j->metrics), "%s/.mlfs/metrics", j->dir);
	snprintf(j->std_log, sizeof(j->std_log),
		 "%s/logs/user_logs/std_log.txt", j->dir);
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", j->dir, subdirs[i]);
		rc = mkdir_p(path, 0755);
		if (rc < 0)
			return rc;
	}
	snprintf(path, sizeof(path), "%s/logs/system_logs/mlfs.log", j->dir);
	j->log = fopen(path, "ae");
	return j->log ? 0 : -errno;
}

/* Loads run, experiment and config; makes the directories; extracts. */
static int job_prepare(struct job *j, struct strbuf *why)
{
	struct store_experiment exp = { 0 };
	char err[512] = "";
	json_error_t jerr;
	int rc;

	rc = store_experiment_get_by_id(j->sv->st, j->run.experiment_id, &exp);
	if (rc != STORE_OK)
		return strbuf_addf(why, "cannot read the experiment: %s",
				   store_strerror(rc)), -EIO;
	j->experiment = exp.name;
	exp.name = NULL;
	store_experiment_release(&exp);
	rc = job_paths(j);
	if (rc < 0)
		return strbuf_addf(why, "cannot make '%s': %s", j->dir,
				   strerror(-rc)), rc;
	job_log(j, "claimed by supervisor %lld on compute '%s'",
		(long long)j->sv->self.pid, j->sv->compute);
	j->config = json_loads(j->run.config ? j->run.config : "{}", 0, &jerr);
	if (!j->config || !json_is_object(j->config))
		return strbuf_addf(why, "the run's config is not a JSON object: %s",
				   jerr.text), -EINVAL;
	if (j->run.snapshot) {
		rc = snapshot_extract(j->sv->workspace, j->run.snapshot, j->dir,
				      err, sizeof(err));
		if (rc != STORE_OK)
			return strbuf_addf(why, "cannot extract snapshot %s: %s",
					   j->run.snapshot,
					   err[0] ? err : store_strerror(rc)),
			       -EIO;
		job_log(j, "extracted snapshot %s into %s", j->run.snapshot,
			j->dir);
	}
	return 0;
}

/* ---- the command line and its environment -------------------------------- */

static int argv_add(char ***argv, size_t *n, const char *s)
{
	char **v = realloc(*argv, (*n + 2) * sizeof(**argv));

	if (!v)
		return -ENOMEM;
	*argv = v;
	v[*n] = strdup(s);
	if (!v[*n])
		return -ENOMEM;
	v[++*n] = NULL;
	return 0;
}

static void argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/*
 * "command" as given; else "script": a .py file with the environment's
 * interpreter (python3 by default), anything else executed directly.
 * "arguments" follow either.
 */
static int build_argv(json_t *config, char ***out)
{
	json_t *cmd = json_object_get(config, "command");
	json_t *args = json_object_get(config, "arguments");
	const char *script = json_string_value(json_object_get(config, "script"));
	const char *interp = json_string_value(
		json_object_get(json_object_get(config, "environment"),
				"interpreter"));
	char path[PATH_MAX];
	char **argv = NULL;
	size_t n = 0, i;
	json_t *v;
	int rc = 0;

	if (json_is_array(cmd)) {
		json_array_foreach(cmd, i, v)
			if (rc == 0)
				rc = argv_add(&argv, &n, json_string_value(v));
	} else if (script) {
		if (!interp)
			interp = "python3";
		if (ends_with(script, ".py"))
			rc = argv_add(&argv, &n, interp);
		if (rc == 0 && !strchr(script, '/') && !ends_with(script, ".py")) {
			snprintf(path, sizeof(path), "./%s", script);
			script = path;
		}
		if (rc == 0)
			rc = argv_add(&argv, &n, script);
	}
	json_array_foreach(args, i, v)
		if (rc == 0)
			rc = argv_add(&argv, &n, json_string_value(v));
	if (rc == 0 && n == 0)
		rc = -EINVAL;
	if (rc < 0) {
		argv_free(argv);
		return rc;
	}
	*out = argv;
	return 0;
}

/*
 * Is an mlfs mount still at @mnt? Read from /proc/self/mounts rather
 * than by a stat through the mount, which would hang on a stopped daemon.
 * Mount points with spaces are escaped there (\040): those just get no
 * MLFS_RUN_DIR.
 */
static int mount_is_live(const char *mnt)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char *line = NULL;
	size_t cap = 0, len = strlen(mnt);
	int live = 0;

	if (!f)
		return 0;
	while (!live && getline(&line, &cap, f) > 0) {
		const char *p = strchr(line, ' ');

		live = p && strncmp(p + 1, mnt, len) == 0 &&
		       strncmp(p + 1 + len, " fuse", 5) == 0;
	}
	free(line);
	fclose(f);
	return live;
}

static void set_run_environment(struct job *j)
{
	json_t *vars = json_object_get(
		json_object_get(j->config, "environment"), "variables");
	char path[PATH_MAX];
	const char *key;
	json_t *v;

	setenv("PYTHONUNBUFFERED", "1", 1);	/* a live log by default */
	setenv("MLFS_RUN_ID", j->run.name, 1);
	setenv("MLFS_EXPERIMENT", j->experiment, 1);
	setenv("MLFS_WORKSPACE", j->sv->workspace, 1);
	snprintf(path, sizeof(path), "%s/outputs", j->dir);
	setenv("MLFS_OUTPUTS", path, 1);
	setenv("MLFS_METRICS", j->metrics, 1);
	unsetenv("MLFS_RUN_DIR");
	if (j->sv->mountpoint && mount_is_live(j->sv->mountpoint)) {
		snprintf(path, sizeof(path), "%s/experiments/%s/runs/%s",
			 j->sv->mountpoint, j->experiment, j->run.name);
		setenv("MLFS_RUN_DIR", path, 1);
	}
	json_object_foreach(vars, key, v)
		if (json_is_string(v))
			setenv(key, json_string_value(v), 1);
}

/* ---- running ------------------------------------------------------------ */

/* In the child: never returns. Reports exec's errno through @fd. */
static void exec_command(struct job *j, char **argv, int fd)
{
	sigset_t none;
	int log, null, err;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	setpgid(0, 0);
	log = open(j->std_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (log < 0 || null < 0 || chdir(j->dir) < 0)
		goto fail;
	if (dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
		goto fail;
	set_run_environment(j);
	execvp(argv[0], argv);
fail:
	err = errno;
	if (write(fd, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

/*
 * Forks the command; 0 when it was exec'd, else -errno of exec (the
 * child is then reaped here).
 */
static int start_command(struct job *j, char **argv)
{
	int pipefd[2];
	int err = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return -err;
	}
	if (pid == 0) {
		close(pipefd[0]);
		exec_command(j, argv, pipefd[1]);
	}
	setpgid(pid, pid);	/* either side may get there first */
	close(pipefd[1]);
	do
		n = read(pipefd[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n == (ssize_t)sizeof(err)) {
		waitpid(pid, NULL, 0);
		return -err;
	}
	j->pid = pid;
	return 0;
}

/* Reaps every ended child; notes the command's own status. */
static void reap_children(struct job *j)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == j->pid) {
			j->exited = 1;
			j->wstatus = status;
		}
	}
}

static int group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0;
}

/* SIGTERM the group once, SIGKILL after the grace period. */
static void stop_group(struct job *j, int64_t now)
{
	if (!j->term_sent_ms) {
		j->term_sent_ms = now;
		job_log(j, "sending SIGTERM to process group %d", (int)j->pid);
		kill(-j->pid, SIGTERM);
	} else if (now - j->term_sent_ms >= COMPUTE_KILL_GRACE_MS &&
		   group_alive(j->pid)) {
		job_log(j, "sending SIGKILL to process group %d", (int)j->pid);
		kill(-j->pid, SIGKILL);
	}
}

/* Waits up to one tick for a child to change state. */
static void wait_tick(void)
{
	struct timespec ts = { 0, TICK_MS * 1000000L };
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigtimedwait(&chld, NULL, &ts);
}

static void ingest_now(struct job *j, int final)
{
	uint64_t logged = 0;
	int rc;

	if (!j->ingest)
		return;
	rc = final ? ingest_finish(j->ingest, j->sv->st, j->run.id,
				   skipped_metric_line, j, &logged)
		   : ingest_poll(j->ingest, j->sv->st, j->run.id,
				 skipped_metric_line, j, &logged);
	j->points += logged;
	if (logged)
		store_notify(j->sv->st);
	if (rc < 0)
		job_log(j, "cannot log metrics: %s", strerror(-rc));
}

static void check_cancel_and_time(struct job *j, int64_t now)
{
	struct store_run cur;

	if (!j->cancel_seen &&
	    store_run_get(j->sv->st, j->run.id, &cur) == STORE_OK) {
		if (cur.status == RUN_CANCEL_REQUESTED) {
			j->cancel_seen = 1;
			job_log(j, "cancel requested");
		}
		store_run_release(&cur);
	}
	if (!j->timed_out && j->run.max_duration_s > 0 &&
	    now - j->started_ms >= j->run.max_duration_s * 1000) {
		j->timed_out = 1;
		job_log(j, "time limit of %lld s reached",
			(long long)j->run.max_duration_s);
	}
	if (j->cancel_seen || j->timed_out)
		stop_group(j, now);
}

/* Runs the command to its end, ingesting metrics as it goes. */
static void job_watch(struct job *j)
{
	while (!j->exited) {
		wait_tick();
		reap_children(j);
		ingest_now(j, 0);
		if (!j->exited)
			check_cancel_and_time(j, time_now_ms());
	}
}

/*
 * Our children: the command if not yet reaped, and every process of the
 * run that lost its parent (we are a subreaper), wherever its group or
 * session. From /proc/thread-self/children (the supervisor has one
 * thread). Returns how many pids went into @out.
 */
static size_t list_children(pid_t *out, size_t max)
{
	char buf[4096];
	const char *p = buf;
	size_t n = 0;
	ssize_t len;
	int64_t pid;
	int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	while (*p && n < max) {
		size_t w = strcspn(p, " \n");

		if (w && parse_int64(p, w, &pid) == 0 && pid > 0)
			out[n++] = (pid_t)pid;
		p += w;
		p += strspn(p, " \n");
	}
	return n;
}

static void signal_leftovers(struct job *j, int sig)
{
	pid_t kids[256];
	size_t n = list_children(kids, 256);

	kill(-j->pid, sig);
	for (size_t i = 0; i < n; i++)
		kill(kids[i], sig);
}

/*
 * What the command left running: its group, and processes that left the
 * group (setsid, double fork) and were re-parented to us. SIGTERM, then
 * SIGKILL after LEFTOVER_GRACE_MS, until none is left.
 */
#define LEFTOVER_GRACE_MS 2000

static void stop_leftovers(struct job *j)
{
	int64_t start = time_now_ms();
	int term_sent = 0, kill_sent = 0;
	pid_t kids[1];

	for (;;) {
		reap_children(j);
		if (!group_alive(j->pid) && list_children(kids, 1) == 0)
			break;
		if (!term_sent) {
			job_log(j, "stopping processes the command left running");
			signal_leftovers(j, SIGTERM);
			term_sent = 1;
		} else if (time_now_ms() - start >= LEFTOVER_GRACE_MS) {
			if (kill_sent >= 50) {
				job_log(j, "processes of the run would not die");
				break;
			}
			signal_leftovers(j, SIGKILL);
			kill_sent++;
		}
		wait_tick();
	}
}

/* ---- the end ------------------------------------------------------------ */

/* The last lines of std_log.txt, for the error of a failed run. */
static void log_tail(const struct job *j, struct strbuf *out)
{
	char buf[LOG_TAIL_BYTES + 1];
	const char *p;
	struct stat sb;
	ssize_t n;
	int lines = 0;
	int fd = open(j->std_log, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fstat(fd, &sb) < 0 || sb.st_size == 0)
		goto out_close;
	n = pread(fd, buf, LOG_TAIL_BYTES,
		  sb.st_size > LOG_TAIL_BYTES ? sb.st_size - LOG_TAIL_BYTES : 0);
	if (n <= 0)
		goto out_close;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	p = buf + n;
	while (p > buf && lines < LOG_TAIL_LINES) {
		p--;
		if (*p == '\n')
			lines++;
	}
	if (*p == '\n')
		p++;
	strbuf_addf(out, "; last lines of logs/user_logs/std_log.txt:\n%s", p);
out_close:
	close(fd);
}

static void job_end(struct job *j, enum run_status status, int has_code,
		    int code, const char *error)
{
	int rc = store_run_finish(j->sv->st, j->run.id, status, has_code, code,
				  error);

	store_notify(j->sv->st);

	job_log(j, "run ended %s%s%s", run_status_name(status),
		error ? ": " : "", error ? error : "");
	if (rc != STORE_OK)
		job_log(j, "cannot record the end of the run: %s",
			store_strerror(rc));
}

/* Decides how a command that ran ends, from its wait status. */
static void job_conclude(struct job *j)
{
	struct store_run cur = { 0 };
	struct strbuf why = STRBUF_INIT;
	int canceled = j->cancel_seen;
	int code = 0, has_code = 0;

	if (store_run_get(j->sv->st, j->run.id, &cur) == STORE_OK) {
		canceled |= cur.status == RUN_CANCEL_REQUESTED;
		store_run_release(&cur);
	}
	if (WIFEXITED(j->wstatus)) {
		has_code = 1;
		code = WEXITSTATUS(j->wstatus);
	}
	job_log(j, "command ended: %s %d; %llu metric points logged, %llu lines skipped",
		has_code ? "exit code" : "signal",
		has_code ? code : WTERMSIG(j->wstatus),
		(unsigned long long)j->points, (unsigned long long)j->skipped);
	if (canceled) {
		job_end(j, RUN_CANCELED, has_code, code, NULL);
	} else if (j->timed_out) {
		strbuf_addf(&why, "timed out after %lld s",
			    (long long)j->run.max_duration_s);
		job_end(j, RUN_FAILED, has_code, code, strbuf_str(&why));
	} else if (has_code && code == 0) {
		job_end(j, RUN_COMPLETED, 1, 0, NULL);
	} else {
		if (has_code)
			strbuf_addf(&why, "exited with code %d", code);
		else
			strbuf_addf(&why, "killed by signal %d (%s)",
				    WTERMSIG(j->wstatus),
				    strsignal(WTERMSIG(j->wstatus)));
		log_tail(j, &why);
		job_end(j, RUN_FAILED, has_code, code, strbuf_str(&why));
	}
	strbuf_release(&why);
}

/* Starts the command and records Running; 0, or -1 when the run ended. */
static int job_start(struct job *j, struct strbuf *why)
{
	struct proc_id child;
	char boot[40];
	char **argv = NULL;
	int rc;

	rc = build_argv(j->config, &argv);
	if (rc < 0)
		return strbuf_addf(why, "the request names no command to run"), -1;
	rc = ingest_open(j->metrics, &j->ingest);
	if (rc < 0) {
		argv_free(argv);
		return strbuf_addf(why, "cannot follow '%s': %s", j->metrics,
				   strerror(-rc)), -1;
	}
	rc = start_command(j, argv);
	if (rc < 0) {
		strbuf_addf(why, "cannot run '%s': %s", argv[0], strerror(-rc));
		argv_free(argv);
		return -1;
	}
	job_log(j, "started '%s' as process %d", argv[0], (int)j->pid);
	argv_free(argv);
	j->started_ms = time_now_ms();
	if (proc_id_of(j->pid, &child, boot) < 0) {
		child.pid = j->pid;
		child.start = 0;
		child.boot_id = NULL;
	}
	rc = store_run_started(j->sv->st, j->run.id, &child);
	store_notify(j->sv->st);
	if (rc == STORE_DENIED) {
		/* canceled while preparing: stop it right away */
		j->cancel_seen = 1;
		stop_group(j, j->started_ms);
	}
	return 0;
}

static void job_release(struct job *j)
{
	ingest_free(j->ingest);
	json_decref(j->config);
	free(j->experiment);
	store_run_release(&j->run);
	if (j->log)
		fclose(j->log);
}

static void supervise_run(struct supervisor *sv, int64_t run_id)
{
	struct strbuf why = STRBUF_INIT;
	struct job j = { .sv = sv };
	struct store_run cur = { 0 };

	store_notify(sv->st);	/* claimed: Preparing */
	if (store_run_get(sv->st, run_id, &j.run) != STORE_OK)
		return;	/* vanished: nothing to carry */
	if (job_prepare(&j, &why) < 0 || job_start(&j, &why) < 0) {
		int canceled = store_run_get(sv->st, run_id, &cur) == STORE_OK &&
			       cur.status == RUN_CANCEL_REQUESTED;

		store_run_release(&cur);
		job_end(&j, canceled ? RUN_CANCELED : RUN_FAILED, 0, 0,
			canceled ? NULL : strbuf_str(&why));
		goto out;
	}
	job_watch(&j);
	store_run_finalizing(sv->st, run_id);
	store_notify(sv->st);
	ingest_now(&j, 1);
	stop_leftovers(&j);
	job_conclude(&j);
out:
	strbuf_release(&why);
	job_release(&j);
}

/* ---- the process -------------------------------------------------------- */

/* Detached from the mount: own session, no terminal, no inherited fds. */
static void become_daemon(const char *workspace)
{
	char path[PATH_MAX];
	sigset_t chld;
	int fd;

	setsid();
	close_range(3, ~0U, 0);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (fd > 1)
			close(fd);
	}
	snprintf(path, sizeof(path), "%s/supervisor.log", workspace);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	/* SIGCHLD is taken with sigtimedwait, never delivered */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

int supervise_main(const char *workspace, const char *compute,
		   const char *mountpoint)
{
	struct supervisor sv = {
		.workspace = workspace,
		.compute = compute,
		.mountpoint = mountpoint,
	};
	char err[512] = "";
	int64_t run_id;
	int rc;

	become_daemon(workspace);
	rc = store_open(workspace, 0, &sv.st, err, sizeof(err));
	if (rc != STORE_OK) {
		fprintf(stderr, "mlfs-supervise: cannot open workspace '%s': %s\n",
			workspace, err[0] ? err : store_strerror(rc));
		return 1;
	}
	if (proc_id_of(getpid(), &sv.self, sv.boot) < 0) {
		fprintf(stderr, "mlfs-supervise: cannot read /proc/self/stat\n");
		store_close(sv.st);
		return 1;
	}
	while ((rc = store_run_claim(sv.st, compute, compute_cpus(), &sv.self,
				     &run_id)) == STORE_OK)
		supervise_run(&sv, run_id);
	if (rc != STORE_NOT_FOUND)
		fprintf(stderr, "mlfs-supervise: cannot claim a run: %s\n",
			store_strerror(rc));
	store_close(sv.st);
	return rc == STORE_NOT_FOUND ? 0 : 1;
}
