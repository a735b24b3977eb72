/*
 * test_blob.c - the content-addressed blob store: puts from paths and
 * pipes, dedup, reading back, refusals, removal, and what a crash in the
 * middle of a put leaves (nothing under a final name; named temporaries
 * that blob_cleanup() removes once their process is gone).
 *
 * Each test makes its own temporary directory holding source files and a
 * workspace (ws/). Hashes are checked against the sha256sum command.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlfs/blob.h"

#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char tmp[256], ws[512];
static char err[512];

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/mlfs-blob-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(ws, sizeof(ws), "%s/ws", tmp);
	cr_assert_eq(mkdir(ws, 0755), 0);
	err[0] = '\0';
	blob_test_force_named_tmp(0);
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(blob, .init = setup, .fini = teardown, .timeout = 120);

/* tmp/@name into @out (PATH_MAX bytes). */
static void src_path(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", tmp, name);
}

/* Writes @len bytes at @data to tmp/@name; returns the path in @out. */
static void write_src(char *out, const char *name, const void *data,
		      size_t len)
{
	FILE *f;

	src_path(out, name);
	f = fopen(out, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* @len random bytes, malloc'd. */
static unsigned char *random_bytes(size_t len)
{
	unsigned char *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	for (size_t off = 0; off < len;) {
		ssize_t n = getrandom(p + off, len - off, 0);

		cr_assert_gt(n, 0);
		off += (size_t)n;
	}
	return p;
}

/* The hex sha256 of @path as the sha256sum command prints it. */
static void sha256sum(const char *path, char hex[BLOB_HEX_LEN + 1])
{
	char cmd[PATH_MAX + 32], line[256];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(line, sizeof(line), p));
	cr_assert_eq(pclose(p), 0);
	memcpy(hex, line, BLOB_HEX_LEN);
	hex[BLOB_HEX_LEN] = '\0';
}

/* 1 if files @a and @b hold the same bytes (the cmp command). */
static int same_bytes(const char *a, const char *b)
{
	char cmd[2 * PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	return system(cmd) == 0;
}

/* Regular files below @dir, recursively, skipping @skip (a name). */
static int count_files(const char *dir, const char *skip)
{
	char sub[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (skip && !strcmp(de->d_name, skip)))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		cr_assert_eq(lstat(sub, &st), 0);
		n += S_ISDIR(st.st_mode) ? count_files(sub, skip)
					 : S_ISREG(st.st_mode);
	}
	closedir(d);
	return n;
}

/* Blob files under ws/blobs/ (not temporaries under blobs/tmp/). */
static int count_blobs(void)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/blobs", ws);
	return count_files(dir, "tmp");
}

/* Puts @path, asserts STORE_OK, that the hash is sha256sum's and that
 * the blob holds the same bytes with mode 0444. */
static void put_and_check(const char *path, struct blob_ref *ref)
{
	char hex[BLOB_HEX_LEN + 1], bpath[PATH_MAX];
	struct stat st;

	cr_assert_eq(blob_put_path(ws, path, ref, err, sizeof(err)), STORE_OK,
		     "%s", err);
	sha256sum(path, hex);
	cr_assert_str_eq(ref->hex, hex);
	cr_assert_eq(blob_path(ws, ref->hex, bpath, sizeof(bpath)), STORE_OK);
	cr_assert_eq(stat(bpath, &st), 0, "no blob at %s", bpath);
	cr_assert_eq(st.st_mode & 07777, 0444);
	cr_assert_eq((uint64_t)st.st_size, ref->size);
	cr_assert(same_bytes(path, bpath));
}

Test(blob, put_stores_file_named_by_its_sha256)
{
	char path[PATH_MAX], bpath[PATH_MAX];
	struct blob_ref ref;

	write_src(path, "a.bin", "hello, blobs\n", 13);
	put_and_check(path, &ref);
	cr_assert_eq(ref.size, 13);
	cr_assert_eq(ref.existed, 0);
	cr_assert_eq(blob_path(ws, ref.hex, bpath, sizeof(bpath)), STORE_OK);
	/* blobs/AB/CDEF...: the first two digits name the directory */
	cr_assert(strstr(bpath, "/blobs/") != NULL);
	cr_assert_eq(strncmp(strstr(bpath, "/blobs/") + 7, ref.hex, 2), 0);
	cr_assert_str_eq(strrchr(bpath, '/') + 1, ref.hex + 2);
	cr_assert_eq(count_blobs(), 1);
}

Test(blob, same_content_twice_is_stored_once)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct blob_ref ra, rb;

	write_src(a, "a.bin", "same bytes", 10);
	write_src(b, "b.bin", "same bytes", 10);
	put_and_check(a, &ra);
	put_and_check(b, &rb);
	cr_assert_eq(ra.existed, 0);
	cr_assert_eq(rb.existed, 1);
	cr_assert_str_eq(ra.hex, rb.hex);
	cr_assert_eq(count_blobs(), 1);
}

Test(blob, same_content_twice_through_named_temporaries)
{
	char a[PATH_MAX], tdir[PATH_MAX];
	struct blob_ref ra, rb;

	blob_test_force_named_tmp(1);
	write_src(a, "a.bin", "named", 5);
	put_and_check(a, &ra);
	put_and_check(a, &rb);
	cr_assert_eq(rb.existed, 1);
	cr_assert_eq(count_blobs(), 1);
	snprintf(tdir, sizeof(tdir), "%s/blobs/tmp", ws);
	cr_assert_eq(count_files(tdir, NULL), 0, "a temporary was left");
}

Test(blob, empty_file_is_a_blob)
{
	char path[PATH_MAX];
	struct blob_ref ref;

	write_src(path, "empty", "", 0);
	put_and_check(path, &ref);
	cr_assert_str_eq(ref.hex, EMPTY_SHA256);
	cr_assert_eq(ref.size, 0);
}

Test(blob, random_20mb_file)
{
	size_t len = 20u * 1000 * 1000 + 7;	/* not a multiple of a chunk */
	unsigned char *data = random_bytes(len);
	char path[PATH_MAX];
	struct blob_ref ref;

	write_src(path, "big.bin", data, len);
	free(data);
	put_and_check(path, &ref);
	cr_assert_eq(ref.size, len);
}

Test(blob, random_20mb_file_through_named_temporary)
{
	size_t len = 20u * 1000 * 1000 + 7;
	unsigned char *data = random_bytes(len);
	char path[PATH_MAX];
	struct blob_ref ref;

	blob_test_force_named_tmp(1);
	write_src(path, "big.bin", data, len);
	free(data);
	put_and_check(path, &ref);
	cr_assert_eq(ref.size, len);
}

Test(blob, put_fd_starts_at_the_current_offset)
{
	char path[PATH_MAX], rest[PATH_MAX], hex[BLOB_HEX_LEN + 1];
	struct blob_ref ref;
	int fd;

	write_src(path, "a.bin", "headerPAYLOAD", 13);
	write_src(rest, "rest.bin", "PAYLOAD", 7);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(lseek(fd, 6, SEEK_SET), 6);
	cr_assert_eq(blob_put_fd(ws, fd, &ref, err, sizeof(err)), STORE_OK,
		     "%s", err);
	close(fd);
	sha256sum(rest, hex);
	cr_assert_str_eq(ref.hex, hex);
	cr_assert_eq(ref.size, 7);
}

/* Forks a child writing @len bytes of @data into a pipe, @slow_us
 * microseconds between 64 KiB pieces; returns the read end. */
static int feed_pipe(const unsigned char *data, size_t len, int slow_us,
		     pid_t *child)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	*child = fork();
	cr_assert_geq(*child, 0);
	if (*child == 0) {
		close(p[0]);
		for (size_t off = 0; off < len;) {
			size_t n = len - off < 65536 ? len - off : 65536;
			ssize_t w = write(p[1], data + off, n);

			if (w <= 0)
				_exit(1);
			off += (size_t)w;
			if (slow_us)
				usleep((useconds_t)slow_us);
		}
		_exit(0);
	}
	close(p[1]);
	return p[0];
}

Test(blob, put_from_a_pipe)
{
	size_t len = 3u * 1024 * 1024 + 123;
	unsigned char *data = random_bytes(len);
	char path[PATH_MAX], bpath[PATH_MAX], hex[BLOB_HEX_LEN + 1];
	struct blob_ref ref;
	pid_t child;
	int status, fd;

	write_src(path, "piped.bin", data, len);
	fd = feed_pipe(data, len, 0, &child);
	cr_assert_eq(blob_put_fd(ws, fd, &ref, err, sizeof(err)), STORE_OK,
		     "%s", err);
	close(fd);
	cr_assert_eq(waitpid(child, &status, 0), child);
	free(data);
	sha256sum(path, hex);
	cr_assert_str_eq(ref.hex, hex);
	cr_assert_eq(ref.size, len);
	cr_assert_eq(blob_path(ws, ref.hex, bpath, sizeof(bpath)), STORE_OK);
	cr_assert(same_bytes(path, bpath));
}

Test(blob, open_gives_a_descriptor_for_pread_and_mmap)
{
	size_t len = 100000;
	unsigned char *data = random_bytes(len), buf[1000];
	char path[PATH_MAX];
	struct blob_ref ref;
	void *map;
	int fd = -1;

	write_src(path, "m.bin", data, len);
	put_and_check(path, &ref);
	cr_assert_eq(blob_open(ws, ref.hex, &fd), STORE_OK);
	cr_assert_eq(pread(fd, buf, sizeof(buf), 5000), (ssize_t)sizeof(buf));
	cr_assert_eq(memcmp(buf, data + 5000, sizeof(buf)), 0);
	map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(memcmp(map, data, len), 0);
	munmap(map, len);
	/* read-only: the blob cannot be written through it */
	cr_assert_eq(write(fd, "x", 1), -1);
	cr_assert_eq(errno, EBADF);
	close(fd);
	free(data);
}

Test(blob, open_of_a_missing_blob_is_not_found)
{
	int fd = -1;

	cr_assert_eq(blob_open(ws, EMPTY_SHA256, &fd), STORE_NOT_FOUND);
	cr_assert_eq(fd, -1);
}

Test(blob, directory_is_refused)
{
	char dir[PATH_MAX];
	struct blob_ref ref;
	int fd;

	src_path(dir, "d");
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(blob_put_path(ws, dir, &ref, err, sizeof(err)),
		     STORE_INVALID);
	cr_assert(strstr(err, "not a regular file") != NULL, "%s", err);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(blob_put_fd(ws, fd, &ref, err, sizeof(err)),
		     STORE_INVALID);
	close(fd);
	cr_assert_eq(count_blobs(), 0);
}

Test(blob, fifo_is_refused_without_blocking)
{
	char fifo[PATH_MAX];
	struct blob_ref ref;

	src_path(fifo, "fifo");
	cr_assert_eq(mkfifo(fifo, 0644), 0);
	/* opening a fifo with no writer would block: the suite's timeout
	 * catches that */
	cr_assert_eq(blob_put_path(ws, fifo, &ref, err, sizeof(err)),
		     STORE_INVALID);
	cr_assert_eq(count_blobs(), 0);
}

Test(blob, symlink_is_refused_not_followed)
{
	char target[PATH_MAX], link[PATH_MAX];
	struct blob_ref ref;

	write_src(target, "target.bin", "real", 4);
	src_path(link, "link");
	cr_assert_eq(symlink(target, link), 0);
	cr_assert_eq(blob_put_path(ws, link, &ref, err, sizeof(err)),
		     STORE_INVALID);
	cr_assert(strstr(err, link) != NULL, "%s", err);
	cr_assert_eq(count_blobs(), 0);
}

Test(blob, missing_source_is_not_found)
{
	char path[PATH_MAX], want[PATH_MAX + 64];
	struct blob_ref ref;

	src_path(path, "nope");
	cr_assert_eq(blob_put_path(ws, path, &ref, err, sizeof(err)),
		     STORE_NOT_FOUND);
	snprintf(want, sizeof(want), "cannot read '%s': no such file", path);
	cr_assert(strstr(err, want) == err, "%s", err);
}

Test(blob, unreadable_source_is_denied)
{
	char path[PATH_MAX];
	struct blob_ref ref;

	if (geteuid() == 0) {
		teardown();	/* a skipped test does not run .fini */
		cr_skip_test("root reads any file");
	}
	write_src(path, "secret", "x", 1);
	cr_assert_eq(chmod(path, 0), 0);
	cr_assert_eq(blob_put_path(ws, path, &ref, err, sizeof(err)),
		     STORE_DENIED);
	cr_assert(strstr(err, "permission denied") != NULL, "%s", err);
}

Test(blob, remove_present_and_absent)
{
	char path[PATH_MAX], bpath[PATH_MAX];
	struct blob_ref ref;
	int fd = -1;

	write_src(path, "a.bin", "to remove", 9);
	put_and_check(path, &ref);
	cr_assert_eq(blob_open(ws, ref.hex, &fd), STORE_OK);
	cr_assert_eq(blob_remove(ws, ref.hex), STORE_OK);
	cr_assert_eq(blob_path(ws, ref.hex, bpath, sizeof(bpath)), STORE_OK);
	cr_assert_eq(access(bpath, F_OK), -1);
	cr_assert_eq(count_blobs(), 0);
	/* an open descriptor keeps working */
	{
		char buf[16];

		cr_assert_eq(pread(fd, buf, sizeof(buf), 0), 9);
		cr_assert_eq(memcmp(buf, "to remove", 9), 0);
	}
	close(fd);
	cr_assert_eq(blob_remove(ws, ref.hex), STORE_OK);
	cr_assert_eq(blob_open(ws, ref.hex, &fd), STORE_NOT_FOUND);
	/* and it can be stored again */
	put_and_check(path, &ref);
	cr_assert_eq(ref.existed, 0);
}

Test(blob, malformed_hex_is_refused)
{
	static const char *bad[] = {
		"",
		"abc",
		/* upper case */
		"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
		/* 63 digits */
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
		/* 65 digits */
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
		/* a path */
		"../../../../../../../../../../../../../../../../../../etc/passwd",
		/* not hex */
		"g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	};
	char buf[PATH_MAX];
	int fd;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_eq(blob_path(ws, bad[i], buf, sizeof(buf)),
			     STORE_INVALID, "%s", bad[i]);
		cr_assert_eq(blob_open(ws, bad[i], &fd), STORE_INVALID);
		cr_assert_eq(blob_remove(ws, bad[i]), STORE_INVALID);
	}
	cr_assert_eq(blob_path(ws, NULL, buf, sizeof(buf)), STORE_INVALID);
	cr_assert_eq(blob_path(ws, EMPTY_SHA256, buf, 10), STORE_TOO_BIG);
}

/*
 * Forks a child that puts a pipe (with the named-temporary fallback when
 * @named) which this process feeds slowly; after 25 MiB, which the child
 * must have read for the writes to return, kills it with SIGKILL in the
 * middle of the put and reaps it. Returns the dead child's pid.
 */
static pid_t put_and_kill(int named)
{
	size_t piece = 256 * 1024, pieces = 200;
	unsigned char *data = random_bytes(piece);
	struct blob_ref ref;
	int p[2], status;
	pid_t child;

	cr_assert_eq(pipe(p), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		close(p[1]);
		blob_test_force_named_tmp(named);
		blob_put_fd(ws, p[0], &ref, err, sizeof(err));
		_exit(0);	/* not reached: killed while reading */
	}
	close(p[0]);
	/* feed half the data, slowly, so the child is mid-put */
	for (size_t i = 0; i < pieces / 2; i++) {
		size_t off = 0;

		while (off < piece) {
			ssize_t w = write(p[1], data + off, piece - off);

			cr_assert_gt(w, 0);
			off += (size_t)w;
		}
		usleep(1000);
	}
	cr_assert_eq(kill(child, SIGKILL), 0);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(p[1]);
	free(data);
	return child;
}

Test(blob, kill_mid_put_leaves_nothing_with_o_tmpfile)
{
	char blobs[PATH_MAX];
	int removed = -1;

	put_and_kill(0);
	cr_assert_eq(count_blobs(), 0);
	snprintf(blobs, sizeof(blobs), "%s/blobs", ws);
	/* O_TMPFILE: no file at all, not even a temporary (where the
	 * filesystem supports it, as /tmp's does on the test machines) */
	cr_assert_eq(count_files(blobs, NULL), 0);
	cr_assert_eq(blob_cleanup(ws, &removed), STORE_OK);
	cr_assert_eq(removed, 0);
}

Test(blob, kill_mid_put_named_temp_is_cleaned_live_ones_kept)
{
	char tdir[PATH_MAX], live[PATH_MAX + 64], junk[PATH_MAX + 64];
	int removed = -1, fd;
	pid_t dead;

	dead = put_and_kill(1);
	cr_assert_eq(count_blobs(), 0, "a partial blob under a final name");
	snprintf(tdir, sizeof(tdir), "%s/blobs/tmp", ws);
	cr_assert_eq(count_files(tdir, NULL), 1, "no temporary of pid %d",
		     (int)dead);

	/* a temporary of a live process (our parent, the test runner) and a
	 * file that is not ours must stay */
	snprintf(live, sizeof(live), "%s/.tmp-%ld-0000000000000001", tdir,
		 (long)getppid());
	fd = open(live, O_WRONLY | O_CREAT | O_EXCL, 0444);
	cr_assert_geq(fd, 0);
	close(fd);
	snprintf(junk, sizeof(junk), "%s/.tmp-notapid-1", tdir);
	fd = open(junk, O_WRONLY | O_CREAT | O_EXCL, 0444);
	cr_assert_geq(fd, 0);
	close(fd);

	cr_assert_eq(blob_cleanup(ws, &removed), STORE_OK);
	cr_assert_eq(removed, 1);
	cr_assert_eq(count_files(tdir, NULL), 2);
	cr_assert_eq(access(live, F_OK), 0, "a live process's temp went");
	cr_assert_eq(access(junk, F_OK), 0);
	cr_assert_eq(blob_cleanup(ws, &removed), STORE_OK);
	cr_assert_eq(removed, 0);
}

Test(blob, cleanup_without_blobs_directory)
{
	int removed = -1;

	cr_assert_eq(blob_cleanup(ws, &removed), STORE_OK);
	cr_assert_eq(removed, 0);
}

/* ---- a temporary written in place ------------------------------------------ */

/* Writes @len bytes of @data into a new blob temporary and adopts it. */
static int adopt_bytes(const void *data, size_t len, struct blob_ref *ref)
{
	struct blob_tmp t;

	cr_assert_eq(blob_tmp_open(ws, &t), STORE_OK);
	cr_assert_eq(pwrite(t.fd, data, len, 0), (ssize_t)len);
	return blob_tmp_adopt(ws, &t, ref, err, sizeof(err));
}

static void check_adopt_matches_put(void)
{
	unsigned char *data = random_bytes(3 * 1024 * 1024 + 7);
	char path[PATH_MAX], hex[BLOB_HEX_LEN + 1], bpath[PATH_MAX];
	struct blob_ref a, b;

	write_src(path, "r.bin", data, 3 * 1024 * 1024 + 7);
	cr_assert_eq(adopt_bytes(data, 3 * 1024 * 1024 + 7, &a), STORE_OK,
		     "%s", err);
	sha256sum(path, hex);
	cr_expect_str_eq(a.hex, hex);
	cr_expect_eq(a.size, 3 * 1024 * 1024 + 7);
	cr_expect_eq(a.existed, 0);
	cr_assert_eq(blob_path(ws, a.hex, bpath, sizeof(bpath)), STORE_OK);
	cr_expect(same_bytes(path, bpath), "the blob holds other bytes");
	cr_assert_eq(adopt_bytes(data, 3 * 1024 * 1024 + 7, &b), STORE_OK);
	cr_expect_eq(b.existed, 1, "the same bytes again are stored once");
	cr_expect_eq(count_blobs(), 1);
	free(data);
}

Test(blob, a_temporary_written_in_place_is_adopted)
{
	check_adopt_matches_put();
}

Test(blob, a_temporary_written_in_place_through_named_temporaries)
{
	char tdir[PATH_MAX];
	struct blob_tmp t;

	blob_test_force_named_tmp(1);
	check_adopt_matches_put();
	cr_assert_eq(blob_tmp_open(ws, &t), STORE_OK);
	cr_assert_eq(write(t.fd, "gone", 4), 4);
	blob_tmp_discard(ws, &t);
	snprintf(tdir, sizeof(tdir), "%s/blobs/tmp", ws);
	cr_expect_eq(count_files(tdir, NULL), 0, "a temporary was left");
	cr_expect_eq(count_blobs(), 1, "a discarded temporary became a blob");
}

/* ---- the put lock ------------------------------------------------------------ */

Test(blob, puts_quiet_only_when_no_put_window_is_open)
{
	int a = -1, b = -1, q = -1;

	cr_assert_eq(blob_puts_hold(ws, &a), STORE_OK);
	cr_assert_eq(blob_puts_hold(ws, &b), STORE_OK, "holds share the lock");
	cr_expect_eq(blob_puts_quiet(ws, &q), STORE_IN_USE);
	blob_puts_release(a);
	cr_expect_eq(blob_puts_quiet(ws, &q), STORE_IN_USE, "one still open");
	blob_puts_release(b);
	cr_assert_eq(blob_puts_quiet(ws, &q), STORE_OK);
	blob_puts_release(q);
	blob_puts_release(-1);	/* a no-op */
}

Test(blob, puts_exclusive_waits_for_the_open_window)
{
	int fds[2], q = -1;
	char c;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int h;

		if (blob_puts_hold(ws, &h) != STORE_OK ||
		    write(fds[1], "h", 1) != 1)
			_exit(1);
		usleep(200 * 1000);
		/* "r" is in the pipe before the lock goes */
		if (write(fds[1], "r", 1) != 1)
			_exit(1);
		blob_puts_release(h);
		_exit(0);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &c, 1), 1);
	cr_assert_eq(c, 'h');
	cr_assert_eq(blob_puts_exclusive(ws, &q), STORE_OK);
	cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	cr_expect_eq(read(fds[0], &c, 1), 1, "got the lock while it was held");
	cr_expect_eq(c, 'r');
	close(fds[0]);
	blob_puts_release(q);
	waitpid(pid, NULL, 0);
}

Test(blob, a_dead_holder_leaves_the_workspace_quiet)
{
	int fds[2], q = -1;
	char c;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int h;

		if (blob_puts_hold(ws, &h) != STORE_OK)
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	cr_expect_eq(blob_puts_quiet(ws, &q), STORE_IN_USE, "a live holder");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_eq(blob_puts_quiet(ws, &q), STORE_OK, "the kernel dropped it");
	blob_puts_release(q);
}
