/*
 * ignore.c - gitignore(5) rules for snapshotting a source directory.
 *
 * Design
 *  1. A `struct ignore` is a stack of rule sets. sets[0] holds the default
 *     rules and is never popped; ignore_push_dir() adds one set per
 *     directory entered (empty when it has no rules file), ignore_pop_dir()
 *     drops it, so pushes and pops always pair up.
 *  2. A set applies only to paths strictly below its directory (`base`).
 *     ignore_match() first asks whether any parent directory of the path
 *     is excluded (git never looks into an excluded directory, so nothing
 *     below one can be re-included), then asks about the path itself.
 *     Each question scans sets deepest first and each set's rules last
 *     first; the first rule that matches decides.
 *  3. Patterns are compiled once into a token array and matched by a
 *     Thompson-style simulation: a set of token positions advanced one
 *     text byte at a time. Time is O(tokens * text), memory is two byte
 *     arrays on the stack, and there is no backtracking to blow up on
 *     patterns like "*a*a*a*a*b". The semantics are those of git's
 *     wildmatch() with WM_PATHNAME.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlfs/ignore.h"

enum tok_kind {
	TOK_LIT,	/* the byte `ch` */
	TOK_ANY,	/* '?': one byte but '/' */
	TOK_CLASS,	/* '[...]': one byte but '/' in `cls` (xor `ch`) */
	TOK_STAR,	/* '*': zero or more bytes but '/' */
	TOK_SSLASH,	/* leading or middle double star + '/': (.* '/')? */
	TOK_SSEND,	/* trailing double star after '/': anything */
};

struct tok {
	unsigned char kind;
	unsigned char ch;	/* TOK_LIT byte; TOK_CLASS negated flag;
				   TOK_SSLASH: 1 = zero dirs not allowed */
	unsigned char cls[32];	/* TOK_CLASS bitmap */
};

#define RULE_NEGATE	0x1u	/* leading '!' */
#define RULE_DIRONLY	0x2u	/* trailing '/' */
#define RULE_BASENAME	0x4u	/* no '/': match the last component */

struct rule {
	struct tok *toks;
	size_t ntoks;
	unsigned flags;
};

struct ruleset {
	char *base;		/* directory, "" for the root */
	size_t baselen;
	struct rule *rules;
	size_t nrules;
	size_t alloc;
};

struct ignore {
	struct ruleset *sets;	/* sets[0]: the defaults */
	size_t nsets;
	size_t alloc;
};

static const char *const default_rules = ".git/\n__pycache__/\n";

/* Pattern compilation */

static void cls_set(unsigned char *cls, unsigned c)
{
	cls[c >> 3] |= (unsigned char)(1u << (c & 7));
}

static int cls_has(const unsigned char *cls, unsigned c)
{
	return (cls[c >> 3] >> (c & 7)) & 1;
}

/* Add every byte of the POSIX class @name (@len bytes). -1 if unknown. */
static int cls_add_named(unsigned char *cls, const char *name, size_t len)
{
	static const struct {
		const char *name;
		int (*test)(int);
	} classes[] = {
		{ "alnum", isalnum }, { "alpha", isalpha }, { "blank", isblank },
		{ "cntrl", iscntrl }, { "digit", isdigit }, { "graph", isgraph },
		{ "lower", islower }, { "print", isprint }, { "punct", ispunct },
		{ "space", isspace }, { "upper", isupper }, { "xdigit", isxdigit },
	};
	size_t i;
	unsigned c;

	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (strlen(classes[i].name) != len ||
		    memcmp(classes[i].name, name, len) != 0)
			continue;
		for (c = 0; c < 128; c++)
			if (classes[i].test((int)c))
				cls_set(cls, c);
		return 0;
	}
	return -1;
}

/*
 * Parse the class starting at p[*ip] == '[' into @t, as git's wildmatch
 * reads it. On success *ip is just past the closing ']'. Returns -1 when
 * the class is unterminated or names an unknown [:class:] (git then
 * never matches).
 */
static int parse_class(const char *p, size_t len, size_t *ip, struct tok *t)
{
	size_t i = *ip + 1, s, k;
	unsigned prev = 0, cur, c, hi;
	int first = 1;

	t->kind = TOK_CLASS;
	if (i < len && (p[i] == '!' || p[i] == '^')) {
		t->ch = 1;
		i++;
	}
	for (;; i++, prev = cur, first = 0) {
		if (i >= len)
			return -1;
		cur = (unsigned char)p[i];
		if (cur == ']' && !first)
			break;
		if (cur == '\\') {
			if (++i >= len)
				return -1;
			cur = (unsigned char)p[i];
			cls_set(t->cls, cur);
		} else if (cur == '-' && prev && i + 1 < len && p[i + 1] != ']') {
			hi = (unsigned char)p[++i];
			if (hi == '\\') {
				if (++i >= len)
					return -1;
				hi = (unsigned char)p[i];
			}
			for (c = prev; c <= hi; c++)
				cls_set(t->cls, c);
			cur = 0;
		} else if (cur == '[' && i + 1 < len && p[i + 1] == ':') {
			s = i + 2;
			for (k = s; k < len && p[k] != ']'; k++)
				;
			if (k >= len)
				return -1;
			if (k < s + 1 || p[k - 1] != ':') {
				cls_set(t->cls, '[');	/* no ":]": a plain '[' */
				continue;
			}
			if (cls_add_named(t->cls, p + s, k - 1 - s) < 0)
				return -1;
			i = k;
			cur = 0;
		} else {
			cls_set(t->cls, cur);
		}
	}
	*ip = i + 1;
	return 0;
}

/*
 * Compile a run of stars starting at p[*ip]. A double star (or longer)
 * that fills a whole path component is special; anything else is '*'.
 * Returns the number of tokens written to @t (1 or 2).
 */
static size_t compile_stars(const char *p, size_t len, size_t *ip,
			    struct tok *t)
{
	size_t i = *ip, j = i;

	while (j < len && p[j] == '*')
		j++;
	*ip = j;
	if (j - i < 2 || (i > 0 && p[i - 1] != '/')) {
		t[0].kind = TOK_STAR;
		return 1;
	}
	if (j == len) {
		t[0].kind = TOK_SSEND;
		return 1;
	}
	if (p[j] == '/' || (p[j] == '\\' && j + 1 < len && p[j + 1] == '/')) {
		t[0].kind = TOK_SSLASH;
		t[0].ch = p[j] == '\\';	/* git skips the zero-dir try here */
		t[1].kind = TOK_LIT;
		t[1].ch = '/';
		*ip = j + (p[j] == '\\' ? 2 : 1);
		return 2;
	}
	t[0].kind = TOK_STAR;
	return 1;
}

/*
 * Compile pattern @p (@len bytes, at most IGNORE_PATTERN_MAX) into
 * r->toks. Returns 0, 1 when the pattern can never match (dropped), or
 * -ENOMEM.
 */
static int compile_pattern(const char *p, size_t len, struct rule *r)
{
	struct tok *t;
	size_t i = 0, n = 0;

	t = calloc(len + 1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	while (i < len) {
		switch (p[i]) {
		case '\\':
			if (i + 1 >= len)
				goto out_never;
			t[n].kind = TOK_LIT;
			t[n++].ch = (unsigned char)p[i + 1];
			i += 2;
			break;
		case '?':
			t[n++].kind = TOK_ANY;
			i++;
			break;
		case '[':
			if (parse_class(p, len, &i, &t[n++]) < 0)
				goto out_never;
			break;
		case '*':
			n += compile_stars(p, len, &i, &t[n]);
			break;
		default:
			t[n].kind = TOK_LIT;
			t[n++].ch = (unsigned char)p[i++];
			break;
		}
	}
	r->toks = t;
	r->ntoks = n;
	return 0;

out_never:
	free(t);
	return 1;
}

/* Matching */

/* Follow the moves that consume no text, in place (they only go forward). */
static void close_states(const struct rule *r, unsigned char *st)
{
	size_t s;

	for (s = 0; s < r->ntoks; s++) {
		if (!st[s])
			continue;
		switch (r->toks[s].kind) {
		case TOK_STAR:
		case TOK_SSEND:
			st[s + 1] = 1;
			break;
		case TOK_SSLASH:
			st[s + 1] = 1;
			if (!r->toks[s].ch)
				st[s + 2] = 1;
			break;
		default:
			break;
		}
	}
}

/* Advance the states @cur over byte @c into @nxt. Returns 1 if any live. */
static int step_states(const struct rule *r, const unsigned char *cur,
		       unsigned char *nxt, unsigned c)
{
	const struct tok *t;
	size_t s;
	int live = 0;

	memset(nxt, 0, r->ntoks + 1);
	for (s = 0; s < r->ntoks; s++) {
		if (!cur[s])
			continue;
		t = &r->toks[s];
		switch (t->kind) {
		case TOK_LIT:
			if (c == t->ch)
				live = nxt[s + 1] = 1;
			break;
		case TOK_ANY:
			if (c != '/')
				live = nxt[s + 1] = 1;
			break;
		case TOK_CLASS:
			if (c != '/' && cls_has(t->cls, c) != t->ch)
				live = nxt[s + 1] = 1;
			break;
		case TOK_STAR:
			if (c != '/')
				live = nxt[s] = 1;
			break;
		default:	/* TOK_SSLASH, TOK_SSEND: any byte */
			live = nxt[s] = 1;
			break;
		}
	}
	close_states(r, nxt);
	return live;
}

/* 1 if the whole of @text (@len bytes) matches the rule's pattern. */
static int pattern_match(const struct rule *r, const char *text, size_t len)
{
	unsigned char a[IGNORE_PATTERN_MAX + 2], b[IGNORE_PATTERN_MAX + 2];
	unsigned char *cur = a, *nxt = b, *tmp;
	size_t i;

	memset(cur, 0, r->ntoks + 1);
	cur[0] = 1;
	close_states(r, cur);
	for (i = 0; i < len; i++) {
		if (!step_states(r, cur, nxt, (unsigned char)text[i]))
			return 0;
		tmp = cur;
		cur = nxt;
		nxt = tmp;
	}
	return cur[r->ntoks];
}

/* 1 if rule @r of a set whose rules apply to @rel matches it. */
static int rule_match(const struct rule *r, const struct ruleset *set,
		      const char *rel, size_t len, int is_dir)
{
	const char *name;

	if ((r->flags & RULE_DIRONLY) && !is_dir)
		return 0;
	if (r->flags & RULE_BASENAME) {
		name = memrchr(rel, '/', len);
		name = name ? name + 1 : rel;
		return pattern_match(r, name, len - (size_t)(name - rel));
	}
	if (set->baselen == 0)
		return pattern_match(r, rel, len);
	return pattern_match(r, rel + set->baselen + 1,
			     len - set->baselen - 1);
}

/* 1 if the rules of @set apply to @rel: it lies below the set's directory. */
static int set_applies(const struct ruleset *set, const char *rel, size_t len)
{
	if (set->baselen == 0)
		return 1;
	return len > set->baselen && rel[set->baselen] == '/' &&
	       memcmp(rel, set->base, set->baselen) == 0;
}

/* 1 excluded, 0 re-included by a negation, -1 no rule matches. */
static int match_path(const struct ignore *ig, const char *rel, size_t len,
		      int is_dir)
{
	const struct ruleset *set;
	const struct rule *r;
	size_t s, i;

	for (s = ig->nsets; s-- > 0;) {
		set = &ig->sets[s];
		if (!set_applies(set, rel, len))
			continue;
		for (i = set->nrules; i-- > 0;) {
			r = &set->rules[i];
			if (rule_match(r, set, rel, len, is_dir))
				return !(r->flags & RULE_NEGATE);
		}
	}
	return -1;
}

int ignore_match(const struct ignore *ig, const char *rel, int is_dir)
{
	size_t len = strlen(rel), i;

	for (i = 0; i < len; i++)
		if (rel[i] == '/' && match_path(ig, rel, i, 1) == 1)
			return 1;
	return len > 0 && match_path(ig, rel, len, is_dir) == 1;
}

/* Parsing rules files */

/* git's trim_trailing_spaces(): drop trailing ' ' not escaped by '\'. */
static size_t trim_trailing_spaces(const char *s, size_t len)
{
	size_t i, last_space = len;

	for (i = 0; i < len; i++) {
		if (s[i] == ' ') {
			if (last_space == len)
				last_space = i;
			continue;
		}
		if (s[i] == '\\' && ++i >= len)
			return len;
		last_space = len;
	}
	return last_space;
}

static int set_add_rule(struct ruleset *set, const struct rule *r)
{
	struct rule *rules;
	size_t alloc;

	if (set->nrules == set->alloc) {
		alloc = set->alloc ? set->alloc * 2 : 8;
		rules = realloc(set->rules, alloc * sizeof(*rules));
		if (!rules)
			return -ENOMEM;
		set->rules = rules;
		set->alloc = alloc;
	}
	set->rules[set->nrules++] = *r;
	return 0;
}

/* Parse one line (no '\n') into a rule of @set. 0 or -ENOMEM. */
static int parse_line(struct ruleset *set, const char *line, size_t len)
{
	struct rule r = { NULL, 0, 0 };
	const char *nul = memchr(line, '\0', len);
	int rc;

	if (nul)
		len = (size_t)(nul - line);	/* git reads C strings */
	if (len && line[len - 1] == '\r')
		len--;
	if (len == 0 || line[0] == '#')
		return 0;
	len = trim_trailing_spaces(line, len);
	if (len && line[0] == '!') {
		r.flags |= RULE_NEGATE;
		line++;
		len--;
	}
	if (len && line[len - 1] == '/') {
		r.flags |= RULE_DIRONLY;
		len--;
	}
	if (len == 0 || len > IGNORE_PATTERN_MAX)
		return 0;
	if (!memchr(line, '/', len))
		r.flags |= RULE_BASENAME;
	else if (line[0] == '/') {
		line++;
		len--;
	}
	rc = compile_pattern(line, len, &r);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	rc = set_add_rule(set, &r);
	if (rc < 0)
		free(r.toks);
	return rc;
}

static int parse_rules(struct ruleset *set, const char *buf, size_t len)
{
	const char *end = buf + len, *nl;
	int rc;

	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		buf += 3;	/* git skips a UTF-8 BOM */
	while (buf < end) {
		nl = memchr(buf, '\n', (size_t)(end - buf));
		if (!nl)
			nl = end;
		rc = parse_line(set, buf, (size_t)(nl - buf));
		if (rc < 0)
			return rc;
		buf = nl + 1;
	}
	return 0;
}

/* Read all of @fd into a malloc'd buffer of at most IGNORE_FILE_MAX. */
static int read_all(int fd, char **out, size_t *outlen)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	ssize_t n;
	int rc;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 1;
	buf = malloc(IGNORE_FILE_MAX + 1);
	rc = -ENOMEM;
	if (!buf)
		goto out;
	for (;;) {
		n = read(fd, buf + len, IGNORE_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		rc = -errno;
		if (n < 0)
			goto out_free_buf;
		if (n == 0)
			break;
		len += (size_t)n;
		rc = -EFBIG;
		if (len > IGNORE_FILE_MAX)
			goto out_free_buf;
	}
	*out = buf;
	*outlen = len;
	return 0;

out_free_buf:
	free(buf);
out:
	return rc;
}

/*
 * Open the directory's rules file: .amlignore, else .gitignore.
 * Returns an fd, -ENOENT when there is none (or it is a symlink), or
 * another negative errno.
 */
static int open_rules_file(int dir_fd)
{
	static const char *const names[] = { ".amlignore", ".gitignore" };
	size_t i;
	int fd;

	for (i = 0; i < 2; i++) {
		fd = openat(dir_fd, names[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
			    O_NONBLOCK);
		if (fd >= 0)
			return fd;
		if (errno != ENOENT && errno != ELOOP)
			return -errno;
	}
	return -ENOENT;
}

/* Load the rules of @dir_fd into @set. 0 or a negative errno. */
static int load_rules(struct ruleset *set, int dir_fd)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, rc;

	fd = open_rules_file(dir_fd);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	rc = read_all(fd, &buf, &len);
	close(fd);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	rc = parse_rules(set, buf, len);
	free(buf);
	return rc;
}

/* Life cycle */

static void ruleset_release(struct ruleset *set)
{
	size_t i;

	for (i = 0; i < set->nrules; i++)
		free(set->rules[i].toks);
	free(set->rules);
	free(set->base);
	memset(set, 0, sizeof(*set));
}

/* Make room for one more set. 0 or -ENOMEM. */
static int ignore_grow(struct ignore *ig)
{
	struct ruleset *sets;
	size_t alloc;

	if (ig->nsets < ig->alloc)
		return 0;
	alloc = ig->alloc ? ig->alloc * 2 : 8;
	sets = realloc(ig->sets, alloc * sizeof(*sets));
	if (!sets)
		return -ENOMEM;
	ig->sets = sets;
	ig->alloc = alloc;
	return 0;
}

struct ignore *ignore_new(void)
{
	struct ignore *ig;
	struct ruleset *set;

	ig = calloc(1, sizeof(*ig));
	if (!ig)
		goto out;
	if (ignore_grow(ig) < 0)
		goto out_free_ig;
	set = &ig->sets[0];
	memset(set, 0, sizeof(*set));
	ig->nsets = 1;
	set->base = strdup("");
	if (!set->base)
		goto out_free_ig;
	if (parse_rules(set, default_rules, strlen(default_rules)) < 0)
		goto out_free_ig;
	return ig;

out_free_ig:
	ignore_free(ig);
out:
	errno = ENOMEM;
	return NULL;
}

int ignore_push_dir(struct ignore *ig, int dir_fd, const char *rel)
{
	struct ruleset set = { NULL, 0, NULL, 0, 0 };
	size_t len;
	int rc;

	rc = -EINVAL;
	if (!rel)
		goto out;
	len = strlen(rel);
	if (len && (rel[0] == '/' || rel[len - 1] == '/'))
		goto out;
	rc = ignore_grow(ig);
	if (rc < 0)
		goto out;
	rc = -ENOMEM;
	set.base = strdup(rel);
	if (!set.base)
		goto out;
	set.baselen = len;
	rc = load_rules(&set, dir_fd);
	if (rc < 0)
		goto out_release;
	ig->sets[ig->nsets++] = set;
	return 0;

out_release:
	ruleset_release(&set);
out:
	return rc;
}

void ignore_pop_dir(struct ignore *ig)
{
	if (ig->nsets <= 1)
		return;
	ruleset_release(&ig->sets[--ig->nsets]);
}

void ignore_free(struct ignore *ig)
{
	size_t i;

	if (!ig)
		return;
	for (i = 0; i < ig->nsets; i++)
		ruleset_release(&ig->sets[i]);
	free(ig->sets);
	free(ig);
}
