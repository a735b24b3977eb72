/*
 * nginx_fixture.c - a private nginx for tests (see nginx_fixture.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nginx_fixture.h"

#define NGINX "/usr/sbin/nginx"

static const char conf_fmt[] =
	"user root;\n"
	"daemon off;\n"
	"master_process off;\n"
	"worker_processes 1;\n"
	"pid %1$s/nginx.pid;\n"
	"error_log %1$s/error.log warn;\n"
	"events { worker_connections 256; }\n"
	"http {\n"
	"  log_format conn '$connection $status $body_bytes_sent';\n"
	"  access_log %1$s/access.log conn;\n"
	"  client_body_temp_path %1$s/tmp/body;\n"
	"  proxy_temp_path %1$s/tmp/proxy;\n"
	"  fastcgi_temp_path %1$s/tmp/fastcgi;\n"
	"  uwsgi_temp_path %1$s/tmp/uwsgi;\n"
	"  scgi_temp_path %1$s/tmp/scgi;\n"
	"  default_type application/octet-stream;\n"
	"  keepalive_requests 100000;\n"
	"  server {\n"
	"    listen 127.0.0.1:%2$d;\n"
	"    root %1$s/www;\n"
	"    location /err500 { return 500; }\n"
	"    location /noranges/ { max_ranges 0; }\n"
	"    location /secret/ {\n"
	"      if ($http_authorization != \"Bearer " NGINX_SECRET "\") {\n"
	"        return 401;\n"
	"      }\n"
	"    }\n"
	"  }\n"
	"}\n";

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int answers(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (fd < 0)
		return 0;
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static int write_conf(struct nginx_fixture *nx)
{
	char path[PATH_MAX];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/nginx.conf", nx->dir);
	if (!(f = fopen(path, "w")))
		return -1;
	fprintf(f, conf_fmt, nx->dir, nx->port);
	rc = fclose(f);
	return rc == 0 ? 0 : -1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Forks nginx and waits up to 5 s for it to accept connections. */
static int spawn(struct nginx_fixture *nx)
{
	char conf[PATH_MAX], log[PATH_MAX], prefix[PATH_MAX];
	pid_t pid;
	int status;

	snprintf(conf, sizeof(conf), "%s/nginx.conf", nx->dir);
	snprintf(log, sizeof(log), "%s/error.log", nx->dir);
	snprintf(prefix, sizeof(prefix), "%s/", nx->dir);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* never outlive the test */
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(NGINX, "nginx", "-p", prefix, "-c", conf, "-e", log,
		      (char *)NULL);
		_exit(127);
	}
	nx->pid = pid;
	for (int i = 0; i < 100; i++) {
		if (answers(nx->port))
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			nx->pid = 0;
			return -1;
		}
		sleep_ms(50);
	}
	nginx_fixture_stop(nx);
	return -1;
}

int nginx_fixture_start(struct nginx_fixture *nx)
{
	char path[PATH_MAX];

	memset(nx, 0, sizeof(*nx));
	snprintf(nx->dir, sizeof(nx->dir), "/tmp/mlfs-nginx-XXXXXX");
	if (!mkdtemp(nx->dir))
		return -1;
	snprintf(nx->www, sizeof(nx->www), "%s/www", nx->dir);
	snprintf(path, sizeof(path), "%s/tmp", nx->dir);
	if (mkdir(nx->www, 0755) < 0 || mkdir(path, 0755) < 0)
		return -1;
	for (int tries = 0; tries < 5; tries++) {
		if ((nx->port = free_port()) < 0 || write_conf(nx) < 0)
			return -1;
		snprintf(nx->base_url, sizeof(nx->base_url),
			 "http://127.0.0.1:%d", nx->port);
		if (spawn(nx) == 0)
			return 0;	/* else the port was taken meanwhile */
	}
	fprintf(stderr, "nginx_fixture: nginx did not start, see %s/error.log\n",
		nx->dir);
	return -1;
}

void nginx_fixture_stop(struct nginx_fixture *nx)
{
	int status;

	if (nx->pid <= 0)
		return;
	kill(nx->pid, SIGCONT);	/* a test may have frozen it */
	kill(nx->pid, SIGTERM);
	for (int i = 0; i < 40; i++) {
		if (waitpid(nx->pid, &status, WNOHANG) == nx->pid) {
			nx->pid = 0;
			return;
		}
		sleep_ms(50);
	}
	kill(nx->pid, SIGKILL);
	waitpid(nx->pid, &status, 0);
	nx->pid = 0;
}

int nginx_fixture_restart(struct nginx_fixture *nx)
{
	nginx_fixture_stop(nx);
	return spawn(nx);
}

void nginx_fixture_destroy(struct nginx_fixture *nx)
{
	char cmd[PATH_MAX + 16];

	nginx_fixture_stop(nx);
	if (!nx->dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", nx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "nginx_fixture: cannot remove %s\n", nx->dir);
	nx->dir[0] = '\0';
}

/* mkdir -p of the directories above @path. */
static int make_parents(char *path)
{
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return 0;
}

int nginx_fixture_write(struct nginx_fixture *nx, const char *rel,
			const void *data, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/%s", nx->www, rel);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (make_parents(path) < 0 || !(f = fopen(tmp, "wb")))
		return -1;
	if (fwrite(data, 1, len, f) == len)
		rc = 0;
	if (fclose(f) != 0)
		rc = -1;
	/* A rename, so nginx never serves a half-written file. */
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	return rc;
}
