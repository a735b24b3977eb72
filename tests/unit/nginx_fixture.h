/*
 * nginx_fixture.h - a private nginx for tests: Debian's /usr/sbin/nginx on
 * 127.0.0.1 and a free port, serving the directory www/ of a temporary
 * directory that also holds its config, pid file, logs and temp paths.
 *
 * Locations besides plain files under www/:
 *   /err500        always 500
 *   /secret/...    401 unless "Authorization: Bearer " NGINX_SECRET
 *   /noranges/...  files, Range headers ignored (200 with the whole body)
 *
 * The access log (dir/access.log) has one line per request: the
 * connection's serial number and the status, so tests can count
 * connections.
 *
 * nginx runs in the foreground (daemon off, master_process off) as a
 * child of the test process, dies with it (PR_SET_PDEATHSIG), and is
 * stopped by pid. Call nginx_fixture_destroy() from a Criterion .fini so
 * it is stopped also when a test fails.
 */
#ifndef MLFS_TEST_NGINX_FIXTURE_H
#define MLFS_TEST_NGINX_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

#define NGINX_SECRET "s3cr3t-token"

struct nginx_fixture {
	char dir[256];		/* the temporary directory */
	char www[300];		/* dir/www: the document root */
	char base_url[64];	/* http://127.0.0.1:PORT */
	int port;
	pid_t pid;		/* 0 while stopped */
};

/* Makes the directory and config and starts nginx; 0 or -1 (a message
 * on stderr). */
int nginx_fixture_start(struct nginx_fixture *nx);

/* Stops nginx (SIGTERM, then SIGKILL after 2 s) and reaps it. */
void nginx_fixture_stop(struct nginx_fixture *nx);

/* Starts nginx again on the same port and directory; 0 or -1. */
int nginx_fixture_restart(struct nginx_fixture *nx);

/* Stops nginx and removes the directory. Safe to call twice. */
void nginx_fixture_destroy(struct nginx_fixture *nx);

/* Writes @len bytes at @data to www/@rel (directories made); 0 or -1. */
int nginx_fixture_write(struct nginx_fixture *nx, const char *rel,
			const void *data, size_t len);

#endif /* MLFS_TEST_NGINX_FIXTURE_H */
