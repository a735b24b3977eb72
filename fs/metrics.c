/*
 * metrics.c - a run's metrics/: NAME (one value per line; append to log),
 * NAME.csv and NAME.svg.
 *
 * Writing
 *  Appending "VALUE" or "VALUE STEP" lines logs points. Each write's
 *  complete lines are validated first and stored in one transaction before
 *  write() returns, so a write either logs all its lines or none (EINVAL).
 *  A line split across writes (buffered writers cut anywhere) waits in the
 *  open file's handle for its newline; an unterminated last line is logged
 *  as if it had one when the file is released. Blank lines are skipped.
 *
 * Reading
 *  NAME and NAME.csv only ever grow, so they are rendered incrementally:
 *  a change renders just the chunks logged since the last render.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"
#include "mlfs/chart.h"
#include "mlfs/csv.h"
#include "mlfs/parse.h"
#include "mlfs/timefmt.h"

#define METRIC_LINE_MAX 4096	/* a carried partial line, at most */

static const struct fs_kind kind_metric_values;
static const struct fs_kind kind_metric_csv;
static const struct fs_kind kind_metric_svg;

static int has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len > n && memcmp(s + len - n, suffix, n) == 0;
}

/* Splits "loss.csv" into the metric name and the file kind. */
static const struct fs_kind *metric_file_kind(const char *name, size_t *base)
{
	size_t len = strlen(name);

	*base = len;
	if (has_suffix(name, len, ".csv")) {
		*base = len - 4;
		return &kind_metric_csv;
	}
	if (has_suffix(name, len, ".svg")) {
		*base = len - 4;
		return &kind_metric_svg;
	}
	return &kind_metric_values;
}

/* ---- the directory ------------------------------------------------------- */

static int metrics_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			  const char *name, struct fs_ident *out)
{
	char base[NAME_MAX_LEN + 1];
	size_t blen;
	int rc;

	out->kind = metric_file_kind(name, &blen);
	if (blen > NAME_MAX_LEN)
		return -ENOENT;
	memcpy(base, name, blen);
	base[blen] = '\0';
	rc = store_metric_find(ctx->st, dir->id.run_id, base, &out->obj_id);
	return -fs_errno(rc);
}

struct list_ctx {
	struct dirlist *dl;
	const struct fs_node *dir;
	int err;
};

static int metric_entries(void *arg, const struct store_metric *m)
{
	static const struct { const char *suffix; const struct fs_kind *kind; }
	files[] = {
		{ "", &kind_metric_values },
		{ ".csv", &kind_metric_csv },
		{ ".svg", &kind_metric_svg },
	};
	struct list_ctx *lc = arg;
	char name[NAME_MAX_LEN + 8];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct fs_ident id = lc->dir->id;

		id.kind = files[i].kind;
		id.obj_id = m->id;
		snprintf(name, sizeof(name), "%s%s", m->name, files[i].suffix);
		lc->err = dirlist_add(lc->dl, name, &id, m->updated_ms);
		if (lc->err < 0)
			return 1;
	}
	return 0;
}

static int metrics_list(struct fs_ctx *ctx, struct fs_node *dir,
			struct dirlist *dl)
{
	struct list_ctx lc = { dl, dir, 0 };
	int rc = store_metric_list(ctx->st, dir->id.run_id, metric_entries, &lc);

	return rc != STORE_OK ? -fs_errno(rc) : lc.err;
}

static int metrics_create(struct fs_ctx *ctx, struct fs_node *dir,
			  const char *name, struct fs_make *mk,
			  struct fs_ident *out)
{
	size_t blen;

	(void)mk;
	if (!name_is_valid(name, strlen(name)) ||
	    metric_file_kind(name, &blen) != &kind_metric_values)
		return fs_refuse(ctx, "create", dir, name, EINVAL,
				 "invalid metric name: use 1-255 of "
				 "[A-Za-z0-9._-], not starting with '.' and "
				 "not ending in .csv or .svg");
	out->kind = &kind_metric_values;
	out->key = name;
	out->obj_id = 0;	/* stored at the first point */
	return 0;
}

static int metrics_unlink(struct fs_ctx *ctx, struct fs_node *dir,
			  const char *name)
{
	return fs_refuse(ctx, "unlink", dir, name, EPERM,
			 "metrics are kept with their run and cannot be "
			 "removed");
}

/* ---- reading ------------------------------------------------------------ */

/* The metric behind @n, looking it up by name while not yet stored. */
static int node_metric(struct fs_ctx *ctx, struct fs_node *n,
		       struct store_metric *m)
{
	int rc;

	if (n->id.obj_id)
		rc = store_metric_get_by_id(ctx->st, n->id.obj_id, m);
	else
		rc = store_metric_get(ctx->st, n->id.run_id, n->name, m);
	if (rc == STORE_OK && !n->id.obj_id)
		node_set_obj_id(ctx, n, m->id);
	return rc;
}

struct series_render {
	struct sink *s;
	int csv;
	int err;
	int64_t next_seq;	/* after the last point rendered */
};

static int values_chunk(void *arg, const struct metric_chunk *ch)
{
	struct series_render *sr = arg;

	strbuf_add(sr->s->sb, ch->text, ch->text_len);
	sr->next_seq = ch->first_seq + ch->n;
	sr->err = sink_spill(sr->s);
	return sr->err < 0;
}

/* One "step,value,timestamp" row per point of the chunk. */
static int csv_chunk(void *arg, const struct metric_chunk *ch)
{
	struct series_render *sr = arg;
	const char *p = ch->text, *end = ch->text + ch->text_len;
	char ts[32];
	size_t tslen = time_format_iso(ch->ts_ms, ts);

	for (int64_t i = 0; i < ch->n && p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int64_t step = ch->steps ? ch->steps[i] : ch->first_seq + i;

		strbuf_addf(sr->s->sb, "%lld,", (long long)step);
		strbuf_add(sr->s->sb, p, len);
		strbuf_addch(sr->s->sb, ',');
		strbuf_add(sr->s->sb, ts, tslen);
		strbuf_addch(sr->s->sb, '\n');
		p += len + 1;
	}
	sr->next_seq = ch->first_seq + ch->n;
	sr->err = sink_spill(sr->s);
	return sr->err < 0;
}

/*
 * NAME and NAME.csv: c->aux counts the points already rendered; only the
 * chunks after them are read and appended.
 */
static int series_render(struct fs_ctx *ctx, struct fs_node *node,
			 struct content *c, int csv)
{
	struct store_metric m = { 0 };
	struct sink s;
	struct series_render sr = { &s, csv, 0, 0 };
	int append, rc;

	rc = node_metric(ctx, node, &m);
	if (rc == STORE_NOT_FOUND && !node->id.obj_id) {
		m.count = 0;	/* created, no point yet */
		m.updated_ms = ctx->mount_ms;
	} else if (rc != STORE_OK) {
		return -fs_errno(rc);
	}
	append = c->rendered && c->aux <= m.count;
	sink_begin(&s, ctx, c, append);
	if (!append) {
		c->aux = 0;
		if (csv)
			strbuf_addstr(s.sb, "step,value,timestamp\n");
	}
	/*
	 * Points appended after m was read may come too: what was rendered,
	 * not m.count, says where the next render starts.
	 */
	sr.next_seq = c->aux;
	if (m.count > c->aux) {
		rc = store_metric_read(ctx->st, m.id, c->aux,
				       csv ? csv_chunk : values_chunk, &sr);
		if (rc != STORE_OK || sr.err < 0) {
			store_metric_release(&m);
			content_release(c);
			return rc != STORE_OK ? -fs_errno(rc) : sr.err;
		}
	}
	c->aux = sr.next_seq;
	c->mtime_ms = m.updated_ms;
	store_metric_release(&m);
	return sink_end(&s);
}

static int values_render(struct fs_ctx *ctx, struct fs_node *node,
			 struct content *c)
{
	return series_render(ctx, node, c, 0);
}

static int csv_render(struct fs_ctx *ctx, struct fs_node *node,
		      struct content *c)
{
	return series_render(ctx, node, c, 1);
}

static int chart_chunk(void *arg, const struct metric_chunk *ch)
{
	struct chart *chart = arg;
	const char *p = ch->text, *end = ch->text + ch->text_len;

	for (int64_t i = 0; i < ch->n && p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		double v;

		/* The text was validated when logged; skip it if not. */
		if (parse_double(p, len, &v) == 0 &&
		    chart_add(chart, ch->steps ? ch->steps[i] : ch->first_seq + i,
			      v) < 0)
			return 1;
		p += len + 1;
	}
	return 0;
}

static int svg_render(struct fs_ctx *ctx, struct fs_node *node,
		      struct content *c)
{
	struct store_metric m = { 0 };
	struct store_run r = { 0 };
	struct chart *chart = NULL;
	struct sink s;
	int rc;

	rc = node_metric(ctx, node, &m);
	if (rc == STORE_OK)
		rc = store_run_get(ctx->st, node->id.run_id, &r);
	if (rc != STORE_OK)
		goto out_release;
	rc = STORE_NOMEM;
	chart = chart_new(m.name, r.name);
	if (!chart)
		goto out_release;
	rc = store_metric_read(ctx->st, m.id, 0, chart_chunk, chart);
	if (rc != STORE_OK)
		goto out_release;
	sink_begin(&s, ctx, c, 0);
	chart_render_svg(chart, s.sb);
	c->mtime_ms = m.updated_ms;
out_release:
	chart_free(chart);
	store_run_release(&r);
	store_metric_release(&m);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	return sink_end(&s);
}

/* ---- writing ----------------------------------------------------------------- */

struct parsed {
	struct metric_point *pts;
	size_t n;
};

/*
 * Parses every complete line of @text (which ends with '\n') into points
 * whose text points into @text. 0, or -EINVAL with *bad_line set.
 */
static int parse_lines(const char *text, size_t len, struct parsed *out,
		       size_t *bad_line, size_t *bad_off)
{
	size_t lines = 0, line_no = 0;
	const char *p = text, *end = text + len;

	for (const char *q = text; q < end; q++)
		lines += *q == '\n';
	out->pts = calloc(lines ? lines : 1, sizeof(*out->pts));
	out->n = 0;
	if (!out->pts)
		return -ENOMEM;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t llen = (size_t)(nl - p);
		struct metric_line ml;
		int rc = parse_metric_line(p, llen, &ml);

		line_no++;
		if (rc < 0) {
			*bad_line = line_no;
			*bad_off = (size_t)(p - text);
			free(out->pts);
			out->pts = NULL;
			return -EINVAL;
		}
		if (rc == 0) {
			struct metric_point *pt = &out->pts[out->n++];

			pt->value = ml.value;
			pt->step = ml.step;
			pt->has_step = ml.has_step;
			pt->text = p + ml.value_off;
			pt->text_len = ml.value_len;
		}
		p = nl + 1;
	}
	return 0;
}

/*
 * The metric's id, creating it at the first point of a file just made;
 * *created tells whether this call made it.
 */
static int metric_id_for_write(struct fs_ctx *ctx, struct fs_node *n,
			       int64_t *id, int *created)
{
	int rc;

	*created = 0;
	if (n->id.obj_id) {
		*id = n->id.obj_id;
		return 0;
	}
	rc = store_metric_ensure(ctx->st, n->id.run_id, n->name, id, created);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "write", n, NULL, fs_errno(rc),
				 "cannot create metric '%s': %s", n->name,
				 store_strerror(rc));
	node_set_obj_id(ctx, n, *id);
	version_bump(ctx, DEP_RUN, n->id.run_id);	/* a new name in metrics/ */
	return 0;
}

/*
 * The NAME file is the values as logged, one per line: when its content
 * was current before this append, extend it here with the same text the
 * store will hold, so a reader right after a large append needs neither
 * the journal merge nor a render. Caller holds n->lock.
 */
static void values_content_extend(struct fs_ctx *ctx, struct fs_node *n,
				  const struct parsed *pp, uint64_t ver,
				  int64_t ts_ms)
{
	struct content *c = &n->content;
	struct sink s;

	sink_begin(&s, ctx, c, 1);
	for (size_t i = 0; i < pp->n; i++) {
		strbuf_add(s.sb, pp->pts[i].text, pp->pts[i].text_len);
		strbuf_addch(s.sb, '\n');
		if ((i & 4095) == 4095 && sink_spill(&s) < 0)
			break;
	}
	if (sink_end(&s) < 0)
		return;	/* released: the next read renders from the store */
	c->rendered = 1;
	c->ver = ver;
	c->aux += (int64_t)pp->n;
	c->mtime_ms = ts_ms;	/* the store's updated_ms: NAME.csv agrees */
}

/* Logs the points in @pp through node @n. Caller holds n->lock. */
static int log_points(struct fs_ctx *ctx, struct fs_node *n,
		      const struct parsed *pp)
{
	struct content *c = &n->content;
	int64_t metric_id = 0, now = time_now_ms();
	uint64_t before, after;
	int created = 0;
	int rc;

	rc = metric_id_for_write(ctx, n, &metric_id, &created);
	if (rc < 0)
		return rc;
	before = version_get(ctx, DEP_METRIC, metric_id);
	if (created && !c->rendered) {
		/* A new metric's NAME file is empty: no render needed. */
		content_release(c);
		c->rendered = 1;
		c->ver = before;
		c->mtime_ms = now;
	}
	rc = store_metric_append(ctx->st, metric_id, pp->pts, pp->n, now);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "write", n, NULL, fs_errno(rc),
				 "cannot log metric points: %s",
				 store_strerror(rc));
	after = version_bump_from(ctx, DEP_METRIC, metric_id, before);
	version_bump(ctx, DEP_RUN, n->id.run_id);
	version_bump(ctx, DEP_EXPERIMENT, n->id.exp_id);
	if (after && c->rendered && c->ver == before)
		values_content_extend(ctx, n, pp, after, now);
	return 0;
}

/* Logs the complete lines in @text; refusals name the file and the line. */
static int log_lines(struct fs_ctx *ctx, struct fs_node *n, const char *text,
		     size_t len)
{
	struct parsed pp = { 0 };
	size_t bad_line = 0, bad_off = 0;
	int rc;

	rc = parse_lines(text, len, &pp, &bad_line, &bad_off);
	if (rc == -EINVAL) {
		const char *line = text + bad_off;
		const char *nl = memchr(line, '\n', len - bad_off);
		int show = (int)(nl - line) > 80 ? 80 : (int)(nl - line);

		return fs_refuse(ctx, "write", n, NULL, EINVAL,
				 "line %zu '%.*s' is not 'VALUE' or 'VALUE STEP' "
				 "(a finite decimal number and an integer step); "
				 "nothing from this write was logged",
				 bad_line, show, line);
	}
	if (rc < 0)
		return rc;
	if (pp.n) {
		/* One writer at a time: the file's text keeps the log's order. */
		pthread_mutex_lock(&n->lock);
		rc = log_points(ctx, n, &pp);
		pthread_mutex_unlock(&n->lock);
	}
	free(pp.pts);
	return rc;
}

static int values_write_lines(struct fs_ctx *ctx, struct fs_handle *h,
			      const char *buf, size_t len)
{
	const char *last_nl = memrchr(buf, '\n', len);
	size_t complete = last_nl ? (size_t)(last_nl - buf) + 1 : 0;
	int rc = 0;

	h->wrote = 1;
	if (complete) {
		if (h->buf.len) {
			/* Finish the carried line: log carry + this write's lines. */
			strbuf_add(&h->buf, buf, complete);
			rc = h->buf.err ? h->buf.err
					: log_lines(ctx, h->node, h->buf.buf,
						    h->buf.len);
		} else {
			rc = log_lines(ctx, h->node, buf, complete);
		}
		strbuf_reset(&h->buf);
		if (rc < 0)
			return rc;
	}
	if (h->buf.len + (len - complete) > METRIC_LINE_MAX) {
		strbuf_reset(&h->buf);
		return fs_refuse(ctx, "write", h->node, NULL, EINVAL,
				 "a metric line is longer than %d bytes",
				 METRIC_LINE_MAX);
	}
	strbuf_add(&h->buf, buf + complete, len - complete);
	return h->buf.err ? h->buf.err : (int)len;
}

static int values_write(struct fs_ctx *ctx, struct fs_handle *h,
			const char *buf, size_t len, off_t off)
{
	int had = h->buf.len > 0;
	int rc;

	(void)off;	/* metrics only append, whatever the offset */
	rc = values_write_lines(ctx, h, buf, len);
	node_carry_update(ctx, h->node, had, h->buf.len > 0);
	return rc;
}

/*
 * A last line without its newline is logged when the file is released,
 * right after its last close. Not at flush: a FLUSH round trip at every
 * close would double the cost of "echo V >> NAME", and a shell closes a
 * dup of the file before it writes.
 */
static void values_release(struct fs_ctx *ctx, struct fs_handle *h)
{
	if (!h->buf.len)
		return;
	strbuf_addch(&h->buf, '\n');
	if (!h->buf.err)
		log_lines(ctx, h->node, h->buf.buf, h->buf.len);
	strbuf_reset(&h->buf);
	node_carry_update(ctx, h->node, 1, 0);
}

static int values_truncate(struct fs_ctx *ctx, struct fs_node *node,
			   off_t size)
{
	struct store_metric m = { 0 };
	int rc = node_metric(ctx, node, &m);

	if (rc == STORE_NOT_FOUND || (rc == STORE_OK && m.count == 0 &&
				      size == 0)) {
		store_metric_release(&m);
		return 0;	/* "> metrics/new": nothing to lose */
	}
	if (rc == STORE_OK && size == m.text_bytes) {
		store_metric_release(&m);
		return 0;
	}
	store_metric_release(&m);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	return fs_refuse(ctx, "truncate", node, NULL, EPERM,
			 "metrics are append-only: use >> to log points");
}

static const struct fs_kind kind_metric_values = {
	.name = "metric",
	.mode = S_IFREG | 0644,
	.dep = DEP_METRIC,
	.render = values_render,
	.write = values_write,
	.release = values_release,
	.truncate = values_truncate,
	.append_only = 1,
	.attr_cached = 1,
};

static const struct fs_kind kind_metric_csv = {
	.name = "metric.csv",
	.mode = S_IFREG | 0444,
	.dep = DEP_METRIC,
	.render = csv_render,
	.append_only = 1,
};

static const struct fs_kind kind_metric_svg = {
	.name = "metric.svg",
	.mode = S_IFREG | 0444,
	.dep = DEP_METRIC,
	.render = svg_render,
};

const struct fs_kind kind_run_metrics = {
	.name = "metrics",
	.mode = S_IFDIR | 0755,
	.dep = DEP_RUN,
	.render = run_dir_render,
	.lookup = metrics_lookup,
	.list = metrics_list,
	.create = metrics_create,
	.unlink = metrics_unlink,
	.dyn_name = "NAME",
	.dyn_kind = &kind_metric_values,
	.dyn_help = "one value per line in logging order; append \"VALUE\" or \"VALUE STEP\" lines to log (NAME.csv: step,value,timestamp; NAME.svg: a chart)",
};
