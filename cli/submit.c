/*
 * submit.c - mlfs submit EXPERIMENT_DIR REQUEST.json [--wait]
 *
 * A helper over the submit special file: everything it does can be done
 * with a shell, and it touches the workspace only through the mount.
 *
 *  1. Read the request (a file, or stdin for "-"), at most
 *     SUBMIT_REQUEST_MAX bytes; an empty request is refused here.
 *  2. open(EXPERIMENT_DIR/submit, O_RDWR), write the whole request (short
 *     writes continue). The daemon acts inside write():
 *       - success: a read on the same descriptor gives "RUN_ID\n";
 *       - refusal: write fails with an errno and a read on the same
 *         descriptor gives the reason, printed as
 *         "mlfs: submit refused: REASON (strerror)".
 *  3. Without --wait, print the run id on stdout and exit 0.
 *  4. With --wait, stdout carries only the run's log and the id shows in
 *     the status lines on stderr. Every POLL_MS: read runs/ID/status and
 *     print "ID: STATUS" when it changed; copy new bytes of
 *     runs/ID/logs/user_logs/std_log.txt (it may appear late and only
 *     grows) to stdout. At a terminal status drain the log, then exit 0
 *     for Completed, or print "mlfs: run ID STATUS: ERROR (exit code N)"
 *     from runs/ID/run.json and exit 1. SIGINT stops the waiting, not the
 *     run: say how to cancel it and exit 130.
 *
 * Exit status: 0 success, 1 failure or refusal, 2 usage, 130 SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "mlfs/strbuf.h"

#define SUBMIT_REQUEST_MAX (1u << 20)	/* bytes of a request */
#define SUBMIT_REPLY_MAX 65536		/* bytes of a run id or refusal */
#define STATUS_MAX 64			/* bytes of a status word */
#define POLL_MS 100
#define STATUS_MISSING_POLLS 50		/* a run dir missing this long is an error */

static const char submit_usage[] =
	"usage: mlfs submit EXPERIMENT_DIR REQUEST.json [--wait]\n"
	"\n"
	"Write REQUEST.json (\"-\" reads stdin) to EXPERIMENT_DIR/submit and\n"
	"print the new run's id. --wait follows the run: status changes go to\n"
	"stderr, its log to stdout; exit 0 if it completed, 1 otherwise.\n";

struct submit_args {
	const char *exp_dir;
	const char *request;
	int wait;
};

/* Set by SIGINT while waiting; the one global, as signal handlers need. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Fills @a from argv; -1 (after printing the usage) for a usage error. */
static int parse_args(int argc, char **argv, struct submit_args *a)
{
	const char *pos[2];
	int npos = 0, i;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--wait") == 0) {
			a->wait = 1;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "mlfs: unknown option '%s'\n", argv[i]);
			goto out_usage;
		} else if (npos < 2) {
			pos[npos++] = argv[i];
		} else {
			fprintf(stderr, "mlfs: too many arguments\n");
			goto out_usage;
		}
	}
	if (npos != 2)
		goto out_usage;
	a->exp_dir = pos[0];
	a->request = pos[1];
	return 0;
out_usage:
	fputs(submit_usage, stderr);
	return -1;
}

/* Appends what @fd holds until EOF; 0 or -errno (-EFBIG past the cap). */
static int read_to_eof(int fd, struct strbuf *sb)
{
	char chunk[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if (strbuf_add(sb, chunk, (size_t)n) < 0)
			return sb->err;
	}
}

/* Reads the request into @req; 0, or -1 after printing why. */
static int read_request(const char *name, struct strbuf *req)
{
	int fd = STDIN_FILENO, rc;

	if (strcmp(name, "-") != 0) {
		fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "mlfs: cannot read request '%s': %s\n",
				name, strerror(errno));
			return -1;
		}
	}
	rc = read_to_eof(fd, req);
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc == -EFBIG)
		fprintf(stderr, "mlfs: request '%s' is larger than %u bytes\n",
			name, SUBMIT_REQUEST_MAX);
	else if (rc < 0)
		fprintf(stderr, "mlfs: cannot read request '%s': %s\n", name,
			strerror(-rc));
	else if (req->len == 0)
		fprintf(stderr, "mlfs: request '%s' is empty\n", name);
	return rc < 0 || req->len == 0 ? -1 : 0;
}

/* Writes all of @buf, continuing short writes; 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Reads the daemon's reply (a run id or a refusal) from @fd into @out:
 * up to the first newline, which is dropped, or EOF. Returns 0 or -errno.
 */
static int read_reply(int fd, struct strbuf *out)
{
	char chunk[4096];
	ssize_t n;

	strbuf_init(out, SUBMIT_REPLY_MAX);
	while (!memchr(strbuf_str(out), '\n', out->len)) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if (strbuf_add(out, chunk, (size_t)n) < 0)
			return out->err;
	}
	if (out->len > 0)
		out->len = strcspn(out->buf, "\n");
	if (out->buf)
		out->buf[out->len] = '\0';
	return 0;
}

/* A run id is a name: 1-255 bytes of [A-Za-z0-9._-], not starting '.'. */
static int valid_run_id(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= 255 && s[0] != '.' &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/* The refusal for a write that failed with @err: the daemon's message. */
static void report_refusal(int fd, int err)
{
	struct strbuf msg = STRBUF_INIT;

	if (read_reply(fd, &msg) == 0 && msg.len > 0)
		fprintf(stderr, "mlfs: submit refused: %s (%s)\n",
			strbuf_str(&msg), strerror(err));
	else
		fprintf(stderr, "mlfs: submit refused: %s\n", strerror(err));
	strbuf_release(&msg);
}

/*
 * Opens @path and submits @req through it. On success the run id is in
 * @id (the caller releases it) and 0 is returned; otherwise -1 after
 * printing why.
 */
static int send_request(const char *exp_dir, const char *path,
			const struct strbuf *req, struct strbuf *id)
{
	int fd, rc = -1, err;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fprintf(stderr, "mlfs: cannot open '%s': %s (is '%s' an "
			"experiment directory of an mlfs mount?)\n", path,
			strerror(ENOENT), exp_dir);
		return -1;
	}
	if (fd < 0) {
		fprintf(stderr, "mlfs: cannot open '%s': %s\n", path,
			strerror(errno));
		return -1;
	}
	err = -write_all(fd, req->buf, req->len);
	if (err) {
		report_refusal(fd, err);
		goto out_close;
	}
	err = -read_reply(fd, id);
	if (err) {
		fprintf(stderr, "mlfs: cannot read the run id from '%s': %s\n",
			path, strerror(err));
		goto out_close;
	}
	if (id->len == 0) {
		/* Not acted on in write(): the daemon acts at close instead. */
		err = close(fd) < 0 ? errno : 0;
		fd = -1;
		if (err)
			fprintf(stderr, "mlfs: submit refused: %s\n", strerror(err));
		else
			fprintf(stderr, "mlfs: '%s' gave no run id\n", path);
		goto out_close;
	}
	if (!valid_run_id(strbuf_str(id))) {
		fprintf(stderr, "mlfs: '%s' gave an unexpected reply '%s'\n",
			path, strbuf_str(id));
		goto out_close;
	}
	rc = 0;
out_close:
	/* The request took effect inside write(); a close error is moot. */
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- --wait ---------------------------------------------------------- */

struct run_watch {
	const char *exp_dir;
	const char *id;
	struct strbuf status_path;
	struct strbuf log_path;
	struct strbuf json_path;
	char status[STATUS_MAX];	/* last status seen; "" before the first */
	int missing_polls;		/* polls that found no status file */
	int log_fd;			/* -1 until the log exists */
};

static int watch_init(struct run_watch *w, const char *exp_dir,
		      const char *id)
{
	w->exp_dir = exp_dir;
	w->id = id;
	strbuf_init(&w->status_path, SIZE_MAX);
	strbuf_init(&w->log_path, SIZE_MAX);
	strbuf_init(&w->json_path, SIZE_MAX);
	w->status[0] = '\0';
	w->missing_polls = 0;
	w->log_fd = -1;
	strbuf_addf(&w->status_path, "%s/runs/%s/status", exp_dir, id);
	strbuf_addf(&w->log_path, "%s/runs/%s/logs/user_logs/std_log.txt",
		    exp_dir, id);
	strbuf_addf(&w->json_path, "%s/runs/%s/run.json", exp_dir, id);
	if (w->status_path.err || w->log_path.err || w->json_path.err) {
		fprintf(stderr, "mlfs: out of memory\n");
		return -1;
	}
	return 0;
}

static void watch_release(struct run_watch *w)
{
	strbuf_release(&w->status_path);
	strbuf_release(&w->log_path);
	strbuf_release(&w->json_path);
	if (w->log_fd >= 0)
		close(w->log_fd);
	w->log_fd = -1;
}

/*
 * Reads the status word into @out (size STATUS_MAX): 1 when read, 0 when
 * the file is not there (yet) or was interrupted, -errno otherwise.
 */
static int read_status(const char *path, char *out)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len;
	int fd, rc;

	strbuf_init(&sb, STATUS_MAX - 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT || errno == EINTR ? 0 : -errno;
		goto out_release;
	}
	rc = read_to_eof(fd, &sb);
	close(fd);
	if (rc < 0) {
		rc = rc == -EINTR ? 0 : rc;
		goto out_release;
	}
	len = strcspn(strbuf_str(&sb), " \t\r\n");
	memcpy(out, strbuf_str(&sb), len);
	out[len] = '\0';
	rc = len > 0;
out_release:
	strbuf_release(&sb);
	return rc;
}

/* Polls the status; prints it when it changed. 0, or -1 after a message. */
static int poll_status(struct run_watch *w)
{
	char now[STATUS_MAX];
	int rc = read_status(strbuf_str(&w->status_path), now);

	if (rc < 0) {
		fprintf(stderr, "mlfs: cannot read '%s': %s\n",
			strbuf_str(&w->status_path), strerror(-rc));
		return -1;
	}
	if (rc == 0 && ++w->missing_polls >= STATUS_MISSING_POLLS) {
		fprintf(stderr, "mlfs: cannot read '%s': %s\n",
			strbuf_str(&w->status_path), strerror(ENOENT));
		return -1;
	}
	if (rc > 0 && strcmp(now, w->status) != 0) {
		memcpy(w->status, now, sizeof(now));
		fprintf(stderr, "%s: %s\n", w->id, w->status);
	}
	return 0;
}

/*
 * Copies the log's new bytes to stdout, opening it once it exists.
 * Returns 0 (also when it does not exist yet), or -1 after a message.
 */
static int pump_log(struct run_watch *w)
{
	char chunk[65536];
	ssize_t n;
	int rc;

	if (w->log_fd < 0) {
		w->log_fd = open(strbuf_str(&w->log_path), O_RDONLY | O_CLOEXEC);
		if (w->log_fd < 0 && (errno == ENOENT || errno == EINTR))
			return 0;
		if (w->log_fd < 0)
			goto out_read_error;
	}
	for (;;) {
		n = read(w->log_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			return 0;	/* the caller looks at the flag */
		if (n < 0)
			goto out_read_error;
		if (n == 0)
			return 0;
		rc = write_all(STDOUT_FILENO, chunk, (size_t)n);
		if (rc < 0) {
			fprintf(stderr, "mlfs: cannot write the log to stdout: %s\n",
				strerror(-rc));
			return -1;
		}
	}
out_read_error:
	fprintf(stderr, "mlfs: cannot read '%s': %s\n",
		strbuf_str(&w->log_path), strerror(errno));
	return -1;
}

static int is_terminal(const char *status)
{
	return strcmp(status, "Completed") == 0 ||
	       strcmp(status, "Failed") == 0 ||
	       strcmp(status, "Canceled") == 0;
}

/* The "error" of run.json: a string, or an object's "message"; or NULL. */
static const char *json_error_text(const json_t *run)
{
	const json_t *e = json_object_get(run, "error");

	if (json_is_object(e))
		e = json_object_get(e, "message");
	return json_is_string(e) ? json_string_value(e) : NULL;
}

/* Prints why the run did not complete, from its run.json. */
static void report_unsuccessful(const struct run_watch *w)
{
	const char *status = w->status, *error;
	const json_t *code;
	json_error_t jerr;
	json_t *run;

	run = json_load_file(strbuf_str(&w->json_path), 0, &jerr);
	if (!run) {
		fprintf(stderr, "mlfs: run %s %s (cannot read '%s': %s)\n",
			w->id, status, strbuf_str(&w->json_path), jerr.text);
		return;
	}
	if (json_is_string(json_object_get(run, "status")))
		status = json_string_value(json_object_get(run, "status"));
	error = json_error_text(run);
	code = json_object_get(run, "exit_code");
	fprintf(stderr, "mlfs: run %s %s", w->id, status);
	if (error)
		fprintf(stderr, ": %s", error);
	if (json_is_integer(code))
		fprintf(stderr, " (exit code %" JSON_INTEGER_FORMAT ")",
			json_integer_value(code));
	fputc('\n', stderr);
	json_decref(run);
}

static void sleep_poll(void)
{
	struct timespec ts = { 0, POLL_MS * 1000000L };

	nanosleep(&ts, NULL);	/* EINTR: SIGINT, seen by the caller */
}

static int install_sigint(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: wake the sleep and reads */
	return sigaction(SIGINT, &sa, NULL);
}

/* Follows run @id of @exp_dir to its end; returns the exit status. */
static int wait_run(const char *exp_dir, const char *id)
{
	struct run_watch w;
	int ended = 0, ret = 1;

	if (watch_init(&w, exp_dir, id) < 0)
		goto out_release;
	if (install_sigint() < 0) {
		fprintf(stderr, "mlfs: cannot catch SIGINT: %s\n",
			strerror(errno));
		goto out_release;
	}
	while (!interrupted && !ended) {
		if (poll_status(&w) < 0 || pump_log(&w) < 0)
			goto out_release;
		ended = is_terminal(w.status);
		if (!ended)
			sleep_poll();
	}
	if (!ended) {
		fprintf(stderr,
			"mlfs: stopped waiting; run %s continues "
			"(cancel it with: echo > '%s/runs/%s/cancel')\n",
			id, exp_dir, id);
		ret = 130;
		goto out_release;
	}
	/* The run has ended: its log is complete. Drain it. */
	if (pump_log(&w) < 0)
		goto out_release;
	ret = 0;
	if (strcmp(w.status, "Completed") != 0) {
		report_unsuccessful(&w);
		ret = 1;
	}
out_release:
	watch_release(&w);
	return ret;
}

int cmd_submit(int argc, char **argv)
{
	struct submit_args a = { NULL, NULL, 0 };
	struct strbuf req = STRBUF_INIT, path = STRBUF_INIT, id = STRBUF_INIT;
	int ret = 2;

	if (parse_args(argc, argv, &a) < 0)
		return 2;
	ret = 1;
	strbuf_init(&req, SUBMIT_REQUEST_MAX);
	if (read_request(a.request, &req) < 0)
		goto out_release;
	if (strbuf_addf(&path, "%s/submit", a.exp_dir) < 0) {
		fprintf(stderr, "mlfs: out of memory\n");
		goto out_release;
	}
	if (send_request(a.exp_dir, strbuf_str(&path), &req, &id) < 0)
		goto out_release;
	if (!a.wait) {
		printf("%s\n", strbuf_str(&id));
		ret = fflush(stdout) == 0 ? 0 : 1;
		goto out_release;
	}
	ret = wait_run(a.exp_dir, strbuf_str(&id));
out_release:
	strbuf_release(&id);
	strbuf_release(&path);
	strbuf_release(&req);
	return ret;
}
