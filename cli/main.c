/*
 * main.c - the mlfs command: init, mount, submit, --help, --version.
 */
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mlfs/fs.h"
#include "mlfs/parse.h"
#include "mlfs/store.h"
#include "mlfs_config.h"

static const char usage[] =
	"usage: mlfs init WORKSPACE\n"
	"       mlfs mount WORKSPACE MOUNTPOINT [-f] [-d] [-s] [-o OPT[,OPT...]]\n"
	"       mlfs submit EXPERIMENT_DIR REQUEST.json [--wait]\n"
	"       mlfs --help | --version\n"
	"\n"
	"Mount a machine learning workspace as a file system: experiments,\n"
	"runs, tags, properties and metrics as directories and files.\n"
	"\n"
	"  init     create WORKSPACE (a directory holding workspace.db)\n"
	"  mount    serve WORKSPACE at MOUNTPOINT, creating WORKSPACE if missing;\n"
	"           unmount with 'fusermount3 -u MOUNTPOINT' (or SIGINT/SIGTERM)\n"
	"  submit   write REQUEST.json (\"-\": stdin) to EXPERIMENT_DIR/submit in a\n"
	"           mount and print the run id; --wait prints status changes to\n"
	"           stderr and the run's log to stdout until it ends, and exits 0\n"
	"           only if it completed\n"
	"\n"
	"mount options:\n"
	"  -f       stay in the foreground\n"
	"  -d       debug: log every request (implies -f)\n"
	"  -s       serve requests in a single thread\n"
	"  -o OPT   FUSE mount options, e.g. allow_other, ro, default_permissions,\n"
	"           and mlfs's own:\n"
	"             max_concurrent_runs=N  runs at once on compute 'local'\n"
	"                                    (default: the number of CPUs)\n"
	"             snapshot_max_bytes=N   largest source snapshot (default 300M;\n"
	"                                    suffixes K, M, G)\n"
	"             snapshot_max_files=N   most files in a snapshot (default 2000)\n"
	"             cache_dir=DIR          block cache of HTTP datastores\n"
	"                                    (default WORKSPACE/cache/http)\n"
	"             cache_max=N            its largest size (default 10G)\n"
	"             cache_free_min=N       free space it never takes (default 1G)\n"
	"             passthrough=0          read model and dataset files through\n"
	"                                    mlfs, not straight from their blobs\n"
	"                                    and sources (default 1: Linux 6.9+,\n"
	"                                    as root)\n"
	"             http_direct=1          read remote files over 4 MiB around\n"
	"                                    the page cache until read whole:\n"
	"                                    faster large reads on fast networks,\n"
	"                                    slower small ones (default 0)\n"
	"\n"
	"The mount's README lists every file and what writing to it does.\n"
	"See mlfs(1).\n";

static int cmd_init(int argc, char **argv)
{
	struct store *st = NULL;
	char err[512] = "";
	int rc;

	if (argc != 3) {
		fputs(usage, stderr);
		return 2;
	}
	rc = store_open(argv[2], STORE_CREATE, &st, err, sizeof(err));
	if (rc != STORE_OK) {
		fprintf(stderr, "mlfs: cannot create workspace '%s': %s\n",
			argv[2], err[0] ? err : store_strerror(rc));
		return 1;
	}
	printf("workspace ready at %s\n", store_dir(st));
	store_close(st);
	return 0;
}

enum mount_key {
	KEY_MAX_RUNS, KEY_SNAP_BYTES, KEY_SNAP_FILES, KEY_CACHE_DIR,
	KEY_CACHE_MAX, KEY_CACHE_FREE_MIN, KEY_PASSTHROUGH, KEY_HTTP_DIRECT,
};

static const struct fuse_opt mlfs_opts[] = {
	FUSE_OPT_KEY("max_concurrent_runs=", KEY_MAX_RUNS),
	FUSE_OPT_KEY("snapshot_max_bytes=", KEY_SNAP_BYTES),
	FUSE_OPT_KEY("snapshot_max_files=", KEY_SNAP_FILES),
	FUSE_OPT_KEY("cache_dir=", KEY_CACHE_DIR),
	FUSE_OPT_KEY("cache_max=", KEY_CACHE_MAX),
	FUSE_OPT_KEY("cache_free_min=", KEY_CACHE_FREE_MIN),
	FUSE_OPT_KEY("passthrough=", KEY_PASSTHROUGH),
	FUSE_OPT_KEY("http_direct=", KEY_HTTP_DIRECT),
	FUSE_OPT_END
};

/* Takes mlfs's own -o options out of the list libfuse sees. */
static int mount_opt(void *data, const char *arg, int key,
		     struct fuse_args *outargs)
{
	struct fs_mount_options *opt = data;
	const char *v = strchr(arg, '=');
	uint64_t n = 0;
	int64_t i = 0;

	(void)outargs;
	if (key == FUSE_OPT_KEY_OPT || key == FUSE_OPT_KEY_NONOPT)
		return 1;	/* not ours: keep it */
	v = v ? v + 1 : "";
	if (key == KEY_MAX_RUNS) {
		if (parse_int64(v, strlen(v), &i) != 0 || i < 0 || i > 4096)
			goto out_bad;
		opt->max_concurrent_runs = (int)i;
		return 0;
	}
	if (key == KEY_PASSTHROUGH || key == KEY_HTTP_DIRECT) {
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			goto out_bad;
		if (key == KEY_PASSTHROUGH)
			opt->passthrough = v[0] == '1';
		else
			opt->http_direct = v[0] == '1';
		return 0;
	}
	if (key == KEY_CACHE_DIR) {
		/* @arg may be libfuse's temporary copy of an -o list */
		free(opt->cache_dir);
		opt->cache_dir = *v ? strdup(v) : NULL;
		if (!opt->cache_dir)
			goto out_bad;
		return 0;
	}
	if (parse_size(v, strlen(v), &n) != 0 ||
	    (n == 0 && key != KEY_CACHE_FREE_MIN))
		goto out_bad;
	if (key == KEY_SNAP_BYTES)
		opt->snapshot_max_bytes = n;
	else if (key == KEY_SNAP_FILES)
		opt->snapshot_max_files = n;
	else if (key == KEY_CACHE_MAX)
		opt->cache_max = n;
	else
		opt->cache_free_min = n ? n : 1;	/* 0: none, not default */
	return 0;
out_bad:
	fprintf(stderr, "mlfs: invalid mount option '%s'\n", arg);
	return -1;
}

/* A relative cache_dir is the caller's: daemonizing moves us to "/". */
static int absolute_cache_dir(struct fs_mount_options *opt)
{
	char cwd[PATH_MAX], *abs;

	if (!opt->cache_dir || opt->cache_dir[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)) ||
	    asprintf(&abs, "%s/%s", cwd, opt->cache_dir) < 0)
		return -1;
	free(opt->cache_dir);
	opt->cache_dir = abs;
	return 0;
}

static int cmd_mount(int argc, char **argv)
{
	struct fs_mount_options opt = { 0 };
	struct fuse_cmdline_opts cl = { 0 };
	char *mountpoint = NULL;
	struct fuse_args args;
	int ret = 2;

	if (argc < 4 || argv[2][0] == '-') {
		fputs(usage, stderr);
		return 2;
	}
	opt.workspace = argv[2];
	/* libfuse parses the rest as "PROG MOUNTPOINT [options]". */
	argv[2] = argv[0];
	args = (struct fuse_args)FUSE_ARGS_INIT(argc - 2, argv + 2);
	opt.max_concurrent_runs = -1;
	opt.passthrough = 1;
	if (fuse_opt_parse(&args, &opt, mlfs_opts, mount_opt) != 0)
		goto out_args;
	if (fuse_parse_cmdline(&args, &cl) != 0)
		goto out_args;
	if (cl.show_help || cl.show_version || !cl.mountpoint) {
		fputs(usage, cl.mountpoint ? stdout : stderr);
		ret = cl.mountpoint ? 0 : 2;
		goto out_mountpoint;
	}
	/* Runs get MLFS_RUN_DIR under it: make it absolute before
	 * daemonizing moves us to "/". */
	mountpoint = realpath(cl.mountpoint, NULL);
	opt.mountpoint = mountpoint ? mountpoint : cl.mountpoint;
	opt.foreground = cl.foreground || cl.debug;
	opt.debug = cl.debug;
	opt.single_thread = cl.singlethread;
	if (absolute_cache_dir(&opt) < 0) {
		fprintf(stderr, "mlfs: cannot resolve cache_dir\n");
		goto out_mountpoint;
	}
	ret = fs_mount(&opt, &args);
out_mountpoint:
	free(mountpoint);
	free(cl.mountpoint);
out_args:
	free(opt.cache_dir);
	fuse_opt_free_args(&args);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
			  strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("mlfs %s\n", MLFS_VERSION);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return cmd_init(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "mount") == 0)
		return cmd_mount(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "submit") == 0)
		return cmd_submit(argc, argv);
	if (argc >= 2)
		fprintf(stderr, "mlfs: unknown command '%s'\n", argv[1]);
	fputs(usage, stderr);
	return 2;
}
