#ifndef MLFS_IGNORE_H
#define MLFS_IGNORE_H

/*
 * ignore: which paths of a source directory a snapshot leaves out, with
 * the semantics of gitignore(5).
 *
 * A `struct ignore` is a stack of rule sets, one per directory the caller
 * has entered, for a depth-first walk of the tree:
 *
 *	ig = ignore_new();
 *	ignore_push_dir(ig, root_fd, "");
 *	for each entry E of a directory D (relative path "D/E"):
 *		if (ignore_match(ig, "D/E", is_dir)) skip it;
 *		else if E is a directory:
 *			ignore_push_dir(ig, E_fd, "D/E"); walk it; ignore_pop_dir(ig);
 *	ignore_pop_dir(ig);
 *	ignore_free(ig);
 *
 * Rules files: a directory's rules come from `.amlignore` when that file
 * exists there, otherwise from `.gitignore` (never both). Rules apply to
 * paths below the directory holding the file. Deeper files take
 * precedence over shallower ones; within a file the last matching line
 * wins. Two default rules sit below everything else: `.git/` and
 * `__pycache__/`.
 *
 * Pattern syntax is git's: blank lines and lines starting with '#' are
 * skipped; unescaped trailing spaces are trimmed; a leading '!' negates;
 * a trailing '/' matches directories only; a '/' at the start or in the
 * middle anchors the pattern to the rules file's directory, otherwise it
 * matches the last path component at any depth; '*' and '?' never match
 * '/'; '[...]' classes take ranges, '!' or '^' negation and [:name:]
 * classes; leading `**` + '/', trailing '/' + `**` and a middle `/` +
 * `**` + '/' match any number of directories; '\' escapes the next
 * character. As in git, a path below an excluded directory is excluded
 * and no negation can re-include it.
 *
 * Matching runs in O(pattern length * path length) time per rule with no
 * recursion and no allocation. Lines longer than IGNORE_PATTERN_MAX bytes
 * never match; a rules file larger than IGNORE_FILE_MAX gives -EFBIG.
 *
 * Paths ("rel") are relative to the walk's root, use '/' separators and
 * have no leading or trailing '/'. The root itself is "".
 *
 * Thread safety: none inside. ignore_match() only reads, so concurrent
 * ignore_match() calls on one `struct ignore` are safe as long as no
 * thread pushes, pops or frees it meanwhile.
 */

#define IGNORE_PATTERN_MAX 4096
#define IGNORE_FILE_MAX (1u << 20)

struct ignore;

/*
 * Allocate an empty stack holding only the default rules. The caller
 * owns the result and frees it with ignore_free(). Returns NULL (errno
 * ENOMEM) when out of memory.
 */
struct ignore *ignore_new(void);

/*
 * Enter the directory open as @dir_fd, whose path relative to the root
 * is @rel ("" for the root): load its `.amlignore`, or if there is none
 * its `.gitignore`, and push the rules as the deepest set. @dir_fd stays
 * the caller's. A missing rules file, or one that is not a regular file
 * (a symlink, a directory), pushes an empty set; either way every
 * successful push is undone by one ignore_pop_dir().
 *
 * Returns 0, or a negative errno and pushes nothing:
 *   -ENOMEM  out of memory
 *   -EFBIG   the rules file is larger than IGNORE_FILE_MAX
 *   -EINVAL  @rel is NULL or starts or ends with '/'
 *   other    errors from openat(2), fstat(2) or read(2) (e.g. -EACCES)
 */
int ignore_push_dir(struct ignore *ig, int dir_fd, const char *rel);

/*
 * Leave the deepest directory entered with ignore_push_dir(), dropping
 * its rules. Does nothing when no directory is entered (the default
 * rules always stay).
 */
void ignore_pop_dir(struct ignore *ig);

/*
 * 1 if @rel is ignored, 0 if not. @is_dir is nonzero when @rel is a
 * directory (rules ending in '/' only match those). A path is ignored
 * when one of its parent directories is, or when the last matching rule
 * of the deepest rules set that has one is not a negation. Rules sets
 * only apply to paths below their directory, so the answer only makes
 * sense for paths below the deepest directory entered. The empty path
 * (the root) is never ignored.
 */
int ignore_match(const struct ignore *ig, const char *rel, int is_dir);

/* Free @ig and all its rules. NULL is allowed. */
void ignore_free(struct ignore *ig);

#endif /* MLFS_IGNORE_H */
