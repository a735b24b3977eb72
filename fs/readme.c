/*
 * readme.c - the mount's README, generated from the same entry tables the
 * code serves, so it can never describe a file that does not exist.
 */
#include <stdio.h>
#include <string.h>

#include "fs_internal.h"

static const char intro[] =
	"mlfs: this machine learning workspace, as files\n"
	"\n"
	"Every object is a directory, every attribute a file; writing a few\n"
	"files acts. Upper-case path parts stand for names you choose (E, ID,\n"
	"KEY, NAME): 1-255 bytes of [A-Za-z0-9._-], not starting with '.'.\n"
	"A refused request fails with an errno and leaves a line in 'events'.\n"
	"\n"
	"Try:\n"
	"  mkdir experiments/demo experiments/demo/runs/try1\n"
	"  echo 0.5 >> experiments/demo/runs/try1/metrics/loss\n"
	"  echo baseline > experiments/demo/runs/try1/tags/note\n"
	"  echo Completed > experiments/demo/runs/try1/status\n"
	"  cat experiments/demo/runs.csv experiments/demo/runs/try1/run.json\n"
	"  printf '{\"source_directory\": \"/src\", \"script\": \"train.py\"}' \\\n"
	"    > experiments/demo/submit    # a run of /src/train.py; or: mlfs submit\n"
	"\n";

static const char *kind_word(const struct fs_kind *k)
{
	mode_t mode = k->mode;

	if (k->act)
		return "special";
	if (S_ISDIR(mode))
		return "dir";
	if (S_ISLNK(mode))
		return "link";
	switch (mode & 0777) {
	case 0444: return "read";
	case 0644: return "read/write";
	case 0222: return "write";
	case 0666: return "read/write";
	}
	return "file";
}

static void readme_line(struct strbuf *sb, const char *path,
			const struct fs_kind *k, const char *help)
{
	size_t pad = strlen(path) < 44 ? 44 - strlen(path) : 1;

	strbuf_addstr(sb, path);
	if (S_ISDIR(k->mode)) {
		strbuf_addch(sb, '/');
		pad = pad > 1 ? pad - 1 : 1;
	}
	strbuf_addf(sb, "%*s%-11s%s\n", (int)pad, "", kind_word(k),
		    help ? help : "");
}

static void readme_walk(struct strbuf *sb, const struct fs_kind *k,
			const char *prefix, int depth)
{
	char path[512];

	if (depth > 16)
		return;	/* the kinds form a tree; this only guards typos */
	for (const struct fs_entry *e = k->entries; e && e->name; e++) {
		snprintf(path, sizeof(path), "%s%s", prefix, e->name);
		if (e->help)
			readme_line(sb, path, e->kind, e->help);
		if (S_ISDIR(e->kind->mode)) {
			snprintf(path, sizeof(path), "%s%s/", prefix, e->name);
			readme_walk(sb, e->kind, path, depth + 1);
		}
	}
	if (k->dyn_kind) {
		snprintf(path, sizeof(path), "%s%s", prefix, k->dyn_name);
		readme_line(sb, path, k->dyn_kind, k->dyn_help);
		if (S_ISDIR(k->dyn_kind->mode)) {
			snprintf(path, sizeof(path), "%s%s/", prefix, k->dyn_name);
			readme_walk(sb, k->dyn_kind, path, depth + 1);
		}
	}
}

int readme_render(struct fs_ctx *ctx, struct fs_node *node, struct content *c)
{
	struct sink s;

	(void)node;
	sink_begin(&s, ctx, c, 0);
	strbuf_addstr(s.sb, intro);
	strbuf_addf(s.sb, "%-44s%-11s%s\n", "PATH", "KIND", "WHAT");
	readme_walk(s.sb, &kind_root, "", 0);
	c->mtime_ms = ctx->mount_ms;
	return sink_end(&s);
}
