/*
 * fs_internal.h - what the files of the FUSE layer share.
 *
 * The tree is served through libfuse's low-level API. Every name the
 * kernel has looked up is a node in the inode table (inode.c). A node has a
 * kind (struct fs_kind): the table of operations for one sort of file or
 * directory, e.g. "a run directory" or "a metric's CSV". Directories list
 * their fixed children from tables of struct fs_entry, which also generate
 * the mount's README.
 *
 * Caching (content.c)
 *  Each node depends on one object: the workspace's experiment list, an
 *  experiment, a run, a metric, or the event log. The object's version
 *  counter is bumped whenever it changes (by this process right after the
 *  store call, or by the watcher thread reading the store's change feed).
 *  A node's rendered content and attributes are kept with the version they
 *  were made from, so getattr and read are served from memory until the
 *  object changes, and re-rendered once after it does.
 */
#ifndef MLFS_FS_INTERNAL_H
#define MLFS_FS_INTERNAL_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "mlfs/datastores.h"
#include "mlfs/fs.h"
#include "mlfs/http.h"
#include "mlfs/snapshot.h"
#include "mlfs/store.h"
#include "mlfs/strbuf.h"

struct compute_local;
struct fs_ctx;
struct fs_node;
struct fs_handle;

/* ---- versions: what a node's cached state depends on ----------------- */

enum dep_kind {
	DEP_NONE,		/* never changes while mounted */
	DEP_EXPERIMENTS,	/* the list of experiments */
	DEP_EXPERIMENT,		/* an experiment and everything in its runs */
	DEP_RUN,		/* a run, its tags, properties and metric list */
	DEP_METRIC,		/* one metric's points */
	DEP_EVENTS,		/* the event log */
	DEP_COMPUTES,		/* compute targets and their queues */
	DEP_SNAPSHOTS,		/* the list of snapshots (bumped by watch.c) */
	DEP_MODELS,		/* the list of models */
	DEP_MODEL,		/* a model, its versions, tags and aliases */
	DEP_DATASTORES,		/* the datastores (and the paths datasets use) */
	DEP_DATASETS,		/* datasets and their versions */
};

uint64_t version_get(struct fs_ctx *ctx, enum dep_kind kind, int64_t id);
/* The newest version handed out so far (versions are one global clock). */
uint64_t version_clock(struct fs_ctx *ctx);
void version_bump(struct fs_ctx *ctx, enum dep_kind kind, int64_t id);
/*
 * Bumps like version_bump and returns the new version if the old one was
 * @expected (nothing else changed the object since), else 0.
 */
uint64_t version_bump_from(struct fs_ctx *ctx, enum dep_kind kind, int64_t id,
			   uint64_t expected);
/* Bumps what a store change makes stale (shared by writers and watcher). */
void version_bump_change(struct fs_ctx *ctx, const struct store_change *ch);

/* ---- rendered content --------------------------------------------------- */

/*
 * A node's bytes: in memory while small, in an unlinked temporary file in
 * the workspace's cache/ once larger than CONTENT_SPILL_BYTES, so a large
 * metric costs the daemon no resident memory and is served by splice.
 */
#define CONTENT_SPILL_BYTES (256 * 1024)

struct content {
	int rendered;
	uint64_t ver;		/* dep version it was made from */
	uint64_t kernel_ver;	/* version the kernel's page cache holds */
	int64_t mtime_ms;
	int64_t aux;		/* renderer's own: e.g. points rendered */
	struct strbuf mem;	/* the bytes, or the tail not yet spilled */
	int fd;			/* >= 0 once spilled */
	size_t fd_len;		/* bytes in the spill file */
	size_t len;		/* total bytes, valid once rendered */
};

/*
 * Streaming target for renderers: add bytes to *sink->sb, call sink_spill()
 * now and then, and sink_end() once. With @append the new bytes extend what
 * the content holds (series that only grow); without, they replace it.
 */
struct sink {
	struct fs_ctx *ctx;
	struct content *c;
	struct strbuf *sb;
};
void sink_begin(struct sink *s, struct fs_ctx *ctx, struct content *c,
		int append);
/* Moves sb to the spill file once it is large; 0 or -errno. */
int sink_spill(struct sink *s);
/* Finishes rendering into c; 0 or -errno (then c is left unrendered). */
int sink_end(struct sink *s);
void content_release(struct content *c);
/*
 * A reader's view of rendered content (ops.c): @view becomes a copy of
 * @c (its spill file shared), unless it already holds that version.
 * content_extends: @c is @view with bytes added at its end. 0 / -errno;
 * 1 or 0.
 */
int content_view_take(struct content *view, const struct content *c);
int content_extends(const struct content *c, const struct content *view);
/*
 * Fills c with the target of the symlink opened O_PATH as @fd, and its
 * mtime (mirrored trees: a run's outputs, a datastore). 0 or -errno.
 */
int content_from_link(struct fs_ctx *ctx, int fd, struct content *c);
/* Replies to a read of @size bytes at @off from the content. */
void content_reply_read(fuse_req_t req, struct content *c, size_t size,
			off_t off);

/* ---- kinds and nodes ---------------------------------------------------- */

/* What a name refers to; filled by lookups, kept by nodes. */
struct fs_ident {
	const struct fs_kind *kind;
	int64_t exp_id;
	int64_t run_id;
	int64_t obj_id;		/* metric id; 0 for a file not yet stored */
	const char *key;	/* tag/property key, metric name (borrowed) */
};

/* A fixed child of a directory kind; the README is made from these. */
struct fs_entry {
	const char *name;
	const struct fs_kind *kind;
	const char *help;	/* one line for the README; NULL to omit */
};

/*
 * The largest read of a backing file that is spliced to the kernel. A
 * spliced reply goes through a pipe that must hold the data and three
 * pages more (libfuse), and a pipe cannot grow past
 * /proc/sys/fs/pipe-max-size (1 MiB) without CAP_SYS_RESOURCE, which
 * root in a container often lacks. Larger reads (the kernel asks for up
 * to 1 MiB) are copied through the thread's read buffer (ops.c).
 */
#define FS_SPLICE_MAX (1024 * 1024 - 4 * 4096)

/*
 * The st_blksize of remote files: the largest read the kernel sends in
 * one request. Buffered readers (stdio, Python's open(), cp) size their
 * reads by it, and a read of a remote file may be a round trip to us
 * (-o http_direct=1).
 */
#define FS_READ_BLKSIZE (1024 * 1024)

/* One directory entry for readdir; attributes optional. */
struct dir_entry {
	char *name;
	struct fs_ident id;	/* key points into name when needed */
	int64_t mtime_ms;	/* > 0 when known, saves a lookup query */
	/* What the kind keeps for the node (its kind_cache), when the
	 * listing knew it: readdirplus then answers the file's attributes
	 * without a query per file. Owned; freed by the kind's cache_free
	 * unless a node took it. */
	void *cache;
};

struct dirlist {
	struct dir_entry *v;
	size_t n, alloc;
};
/*
 * Adds @name with @id. A key equal to @name is copied with it; any other
 * key is borrowed and must outlive the listing (e.g. the listed
 * directory's own key, which its handle keeps).
 */
int dirlist_add(struct dirlist *dl, const char *name, const struct fs_ident *id,
		int64_t mtime_ms);
/*
 * The node's kind_cache, made by @fill on first use (under the node's
 * lock) unless a listing already gave it one. Borrowed for the node's
 * life: once set, a node's cache is never replaced. NULL and *err
 * (-errno from @fill) on failure; *err = 0 otherwise.
 */
const void *node_cache_get(struct fs_ctx *ctx, struct fs_node *node,
			   int (*fill)(struct fs_ctx *ctx,
				       struct fs_node *node, void **out),
			   int *err);

/* dirlist_add with the node's @cache (see dir_entry), taken even on error. */
int dirlist_add_cached(struct dirlist *dl, const char *name,
		       const struct fs_ident *id, int64_t mtime_ms, void *cache);
void dirlist_release(struct dirlist *dl);

/* What mkdir and create ask for. */
struct fs_make {
	mode_t mode;		/* permission bits, the caller's umask applied */
	int flags;		/* create: open(2) flags */
	int fd;			/* create: the kind's open descriptor of the new
				 * file, or -1 (open then calls backing_open) */
};

struct fs_kind {
	const char *name;	/* for logs */
	mode_t mode;		/* type and permission bits */
	enum dep_kind dep;
	/* Directory kinds */
	const struct fs_entry *entries;	/* fixed children, NULL-terminated */
	int (*lookup)(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		      struct fs_ident *out);
	int (*list)(struct fs_ctx *ctx, struct fs_node *dir, struct dirlist *dl);
	int (*mkdir)(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		     struct fs_make *mk, struct fs_ident *out);
	int (*rmdir)(struct fs_ctx *ctx, struct fs_node *dir, const char *name);
	int (*create)(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		      struct fs_make *mk, struct fs_ident *out);
	int (*unlink)(struct fs_ctx *ctx, struct fs_node *dir, const char *name);
	/* ln -s @target @name in this directory (e.g. a model alias). */
	int (*symlink)(struct fs_ctx *ctx, struct fs_node *dir,
		       const char *target, const char *name,
		       struct fs_ident *out);
	/*
	 * Optional: rename @name to @newname within this directory (e.g.
	 * "ln -sf", which makes a temporary link and renames it over the
	 * old one). @flags are rename(2)'s RENAME_* flags.
	 */
	int (*rename)(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		      const char *newname, unsigned int flags);
	/*
	 * Optional, for trees that mirror a real directory: rename(2) of
	 * @dir/@name to @newdir/@newname. ops.c answers EXDEV unless
	 * @newdir has the same move hook and the same exp_id (the same
	 * datastore). Used instead of rename when set. The inode table
	 * follows the move (node_move).
	 */
	int (*move)(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		    struct fs_node *newdir, const char *newname,
		    unsigned int flags);
	/* Optional: a hard link to @node named @dir/@name. */
	int (*link)(struct fs_ctx *ctx, struct fs_node *node,
		    struct fs_node *dir, const char *name, struct fs_ident *out);
	/*
	 * Optional: setattr(2) as the kind does it, all of it (chmod, chown,
	 * utimens, truncate); @h is the open file's handle or NULL.
	 */
	int (*setattr)(struct fs_ctx *ctx, struct fs_node *node,
		       const struct stat *attr, int to_set,
		       struct fs_handle *h);
	/*
	 * Fill c: the bytes of a file, the target of a symlink, and mtime_ms
	 * for every kind. NULL for directories whose times never change.
	 */
	int (*render)(struct fs_ctx *ctx, struct fs_node *node, struct content *c);
	/* Writable files: act on the bytes written so far (see handle). */
	int (*write)(struct fs_ctx *ctx, struct fs_handle *h, const char *buf,
		     size_t len, off_t off);
	/* flush runs at every close of a descriptor (dup'd ones too). */
	int (*flush)(struct fs_ctx *ctx, struct fs_handle *h);
	/* release runs once, when the last descriptor of an open is gone. */
	void (*release)(struct fs_ctx *ctx, struct fs_handle *h);
	int (*truncate)(struct fs_ctx *ctx, struct fs_node *node, off_t size);
	/* Setting times (touch): make the object if it does not exist. */
	int (*touch)(struct fs_ctx *ctx, struct fs_node *node);
	/*
	 * Backing files: kinds whose bytes are a file on disk (a snapshot's
	 * zip, a run's log). backing_open() opens it read-only and gives
	 * its descriptor in *fd (the caller closes it), or returns -errno.
	 * Then open keeps that descriptor in the handle (h->backing_fd),
	 * read replies straight from it (splice, no copy through us),
	 * getattr reports its fstat size and mtime unless the kind has
	 * stat(), and render is never called. The kernel keeps its cached
	 * pages across opens for DEP_NONE and append_only kinds; other
	 * backing files are re-read at each open. Writes need write().
	 * @flags are open(2)'s (O_RDONLY for getattr's use).
	 */
	int (*backing_open)(struct fs_ctx *ctx, struct fs_node *node, int flags,
			    int *fd);
	/*
	 * Optional: size and mtime of a file without rendering it (e.g. from
	 * an index), so that getattr and "ls -l" stay cheap. Fills only
	 * st_size and st_mtim of @st; 0 or -errno.
	 */
	int (*stat)(struct fs_ctx *ctx, struct fs_node *node, struct stat *st);
	/*
	 * stat() fills every field (type and mode, owner, links, times):
	 * the node mirrors a real file whose attributes are its own.
	 */
	int stat_full;
	/*
	 * Hooks act with the caller's identity (fsuid, fsgid, groups), so the
	 * real filesystem checks permissions and owns new files by the
	 * caller, as it would without the mount (ops.c).
	 */
	int as_caller;
	/* Optional: statvfs(3) of the real filesystem under the node. */
	int (*statfs)(struct fs_ctx *ctx, struct fs_node *node,
		      struct statvfs *sv);
	/* Optional: fsync of an open file (else: nothing to do). */
	int (*fsync)(struct fs_ctx *ctx, struct fs_handle *h, int datasync);
	/*
	 * Optional: the bytes of a read, for files served neither from
	 * rendered content nor a backing descriptor (an HTTP file). Returns
	 * the count (short only at end of file) or -errno.
	 */
	ssize_t (*read)(struct fs_ctx *ctx, struct fs_handle *h, char *buf,
			size_t size, off_t off);
	/* Frees node->kind_cache when the node goes. */
	void (*cache_free)(void *cache);
	/* Optional: called at open, after the handle is made. 0 or -errno. */
	int (*opened)(struct fs_ctx *ctx, struct fs_handle *h);
	/*
	 * Optional: called before each read from a backing descriptor; a
	 * -errno fails the read (a pinned source changed while open).
	 */
	int (*read_check)(struct fs_ctx *ctx, struct fs_handle *h);
	/*
	 * Optional: whether the kernel may read this open's backing file by
	 * itself (fuse_ext.c): PASS_NO; PASS_ALWAYS, bytes that can never
	 * change; PASS_LEASED, a file others may write, read by the kernel
	 * only while a read lease keeps writers out. Every open of one node
	 * must answer the same.
	 */
	int (*passthrough)(struct fs_ctx *ctx, struct fs_handle *h);
	/*
	 * Optional, for kinds with read(): 1 when this open's reads should
	 * go around the page cache (direct I/O: every read reaches read(),
	 * and nothing of it is kept), 0 when the kernel may cache them.
	 * Asked once per open, after opened().
	 */
	int (*read_direct)(struct fs_ctx *ctx, struct fs_handle *h);
	/*
	 * Directories whose entries change outside the store (a run's
	 * outputs/): the kernel never caches their listing.
	 */
	int listing_live;
	/* Kinds whose content only ever grows: keep the kernel's pages. */
	int append_only;
	/*
	 * Read-only parts of the tree (snapshots, later model versions and
	 * finished runs' outputs): every change to the node, or to the
	 * entries of a directory of this kind, fails with EROFS (DESIGN:
	 * "immutable stays immutable"). Checked in ops.c for every kind.
	 */
	int erofs;
	/*
	 * Files whose every change is a write through this very file: the
	 * kernel drops their attributes itself after each write, so they can
	 * be cached for live_timeout like directories (changes made outside
	 * the mount still show within that time).
	 */
	int attr_cached;
	/*
	 * Objects that, once made, are never removed or renamed (a dataset:
	 * versions are only ever added): the kernel may keep the name as
	 * long as an immutable one, so a path walk through it costs no
	 * lookup. Its attributes stay live.
	 */
	int name_stays;
	/*
	 * Fixed entries that only some objects have (a child run's parent
	 * link): 0 hides the entry of the directory identified by @dir.
	 */
	int (*present)(struct fs_ctx *ctx, const struct fs_ident *dir);
	/*
	 * Special files (special.c): one request per open, acted on inside
	 * write() once complete (a JSON document when request_json, else
	 * any bytes), or at flush. @act returns 0 with the result in h->reply,
	 * or -errno with the message in h->reply (special.c records the
	 * refusal). Reads return h->reply.
	 */
	int (*act)(struct fs_ctx *ctx, struct fs_handle *h, const char *req,
		   size_t len);
	int request_json;
	/* Requests may hold secrets: refusals never quote them. */
	int request_secret;
	/* For the README: the children a directory lists from the store. */
	const char *dyn_name;	/* placeholder, e.g. "ID" */
	const struct fs_kind *dyn_kind;
	const char *dyn_help;
};

struct fs_node {
	fuse_ino_t ino;
	struct fs_ident id;
	char *key_owned;	/* id.key points here */
	char *name;
	struct fs_node *parent;
	uint64_t nlookup;	/* kernel references */
	uint64_t refs;		/* ours: children, handles, requests */
	int unhashed;		/* replaced or deleted: no longer found by name */
	int fixed;		/* a fixed entry of its directory, always there:
				 * its name is kept as long as the directory's */
	int carrying;		/* handles holding a line without its newline */
	int list_cached;	/* the kernel caches our listing of list_ver */
	uint64_t list_ver;
	struct fs_node *ino_next;
	struct fs_node *name_next;
	pthread_mutex_t lock;	/* protects content and kind_cache */
	struct content content;
	/* The kind's own state for this node, set once under lock (e.g. a
	 * dataset file's pin) and freed with the node by kind->cache_free. */
	void *kind_cache;
	/* fuse_ext.c, under lock: the kernel reads backing id pt_id for
	 * pt_opens open files; own_opens are read through us (never both).
	 * With pt_leased, pt_lease_fd holds the read lease on the backing
	 * file that keeps writers waiting while the kernel reads it. */
	int pt_id;
	unsigned int pt_opens;
	unsigned int own_opens;
	int pt_leased;
	int pt_lease_fd;
	/* A direct-I/O read of it came back short: it was read to its end
	 * (ops.c, read_by_kind; read_direct hooks decide by it). */
	atomic_int read_to_end;
};

enum pt_mode { PT_NONE, PT_KERNEL, PT_DAEMON };

/* Per-open state. */
struct fs_handle {
	struct fs_node *node;
	int flags;
	int wrote;		/* a write arrived */
	int truncated;		/* opened with O_TRUNC */
	int created;		/* made by this open (create) */
	struct strbuf buf;	/* bytes written (values) or partial line */
	struct dirlist dl;	/* directories: listing taken at first readdir */
	int listed;
	uint64_t list_clock;	/* version clock before the listing query */
	/* Special files: */
	struct fuse_ctx writer;	/* who wrote last: pid (for its cwd), uid */
	int acted;		/* the request was acted on (or refused) */
	int act_err;		/* models/NAME drops: the write error, 0 if none */
	struct strbuf reply;	/* what a read returns: result or message */
	size_t reply_pos;	/* how much of it was read */
	int backing_fd;		/* kinds with backing_open: the file; else -1 */
	void *kind_data;	/* the kind's own per-open state; its release
				 * hook frees it */
	pid_t closer;		/* the thread of the last flush (a close) */
	enum pt_mode pt_mode;	/* who reads it: counted in the node */
	int direct;		/* reads go around the page cache (read_direct) */
	/* Readers of rendered files that change by replacement: the
	 * version this open reads (ops.c, read_view). */
	int viewing;
	struct content view;
};

/* ---- the mount ------------------------------------------------------- */

struct inode_table {
	pthread_mutex_t lock;
	struct fs_node **by_ino;
	struct fs_node **by_name;
	size_t nbuckets;
	size_t count;
	fuse_ino_t next_ino;
	struct fs_node *root;
};

struct version_map;
struct snap_trees;
struct ds_roots;
struct blockcache;

struct fs_ctx {
	struct store *st;
	struct fuse_session *se;
	struct inode_table itable;
	struct version_map *versions;
	char *cache_dir;
	double live_timeout;	/* seconds: attr/entry timeout of live things */
	double static_timeout;	/* seconds: things that never change */
	pthread_t watcher;
	int watcher_running;
	volatile int stopping;
	/* Read-ahead: the mount's "MAJ:MIN" ("" unknown); set once the
	 * kernel has taken our INIT reply, which resets it (watch.c). */
	char bdi[32];
	atomic_int inited;
	int read_ahead_set;
	int64_t change_seq;
	int64_t mount_ms;
	pthread_mutex_t carry_lock;	/* fs_node.carrying */
	pthread_cond_t carry_done;
	struct compute_local *compute;	/* starts supervisors */
	struct snapshot_limits snap_limits;
	uid_t uid;
	gid_t gid;
	struct snap_trees *snap_trees;	/* snapshots.c: open snapshot trees */
	/*
	 * models: held from a registration's blob put to its store commit,
	 * and from a version delete to the removal of its orphaned blobs.
	 */
	pthread_mutex_t model_lock;
	struct ds_roots *ds_roots;	/* datastores.c: roots by id */
	struct http_options http_opt;	/* HTTP datastores' timeouts */
	struct blockcache *blockcache;	/* HTTP blocks; NULL: none */
	int http_direct;		/* -o http_direct=1 (datastore_http.c) */
	pthread_mutex_t prefetch_lock;	/* starting the prefetcher */
	struct prefetcher *prefetch;	/* prefetch.c; NULL until first used */
	struct {			/* fuse_ext.c */
		int wanted;		/* -o passthrough=1 (the default) */
		atomic_int init_seen;
		atomic_int init_replied;
		uint64_t init_unique;	/* the INIT request */
		uint32_t kernel_flags2;	/* what its kernel offers */
		atomic_int ready;	/* passthrough asked for; off if refused */
		atomic_int dio_mmap;	/* direct-I/O files can be mapped shared */
	} pt;
};

/* inode.c */
int itable_init(struct inode_table *t, const struct fs_kind *root_kind);
void itable_release(struct inode_table *t);
/* The node for @ino with a reference taken, or NULL. */
struct fs_node *node_get(struct fs_ctx *ctx, fuse_ino_t ino);
void node_put(struct fs_ctx *ctx, struct fs_node *n);
/*
 * The child @name of @dir identified by @id: an existing node when its
 * identity matches, else a new one replacing it. Takes one kernel lookup
 * reference (the caller replies with an entry) and returns the node.
 */
struct fs_node *node_lookup_ref(struct fs_ctx *ctx, struct fs_node *dir,
				const char *name, const struct fs_ident *id);
void node_forget(struct fs_ctx *ctx, fuse_ino_t ino, uint64_t nlookup);
/* Stops @dir/@name from being found (after unlink/rmdir). */
void node_unhash_child(struct fs_ctx *ctx, struct fs_node *dir,
		       const char *name);
/*
 * A writer's unterminated last line is logged at release, which the kernel
 * sends after close() returned: a reader that comes right after must wait
 * for it. node_carry_update() counts handles holding such a line;
 * node_wait_carry() waits (briefly: a live writer may hold one for long)
 * until none does, and returns 1 if there was anything to wait for.
 */
void node_carry_update(struct fs_ctx *ctx, struct fs_node *n, int had,
		       int has);
int node_wait_carry(struct fs_ctx *ctx, struct fs_node *n);
/* The hashed child @name of @dir with a reference, or NULL. */
struct fs_node *node_child_get(struct fs_ctx *ctx, struct fs_node *dir,
			       const char *name);
/* A file made by create() is stored at its first write: record its id. */
void node_set_obj_id(struct fs_ctx *ctx, struct fs_node *n, int64_t obj_id);
/* Path of the node relative to the mount root, for messages. */
int node_path(struct fs_ctx *ctx, struct fs_node *n, struct strbuf *out);
/*
 * Path of @n below its nearest ancestor of kind @top ("." for @top
 * itself) into @buf: 0, -ENAMETOOLONG, or -EIO if there is none. Safe
 * against concurrent node_move().
 */
int node_path_below(struct fs_ctx *ctx, const struct fs_node *n,
		    const struct fs_kind *top, char *buf, size_t len);
/*
 * As node_path_below, but "" for @top itself, and @name (may be NULL)
 * appended as a last segment: "dir/name".
 */
int node_path_join(struct fs_ctx *ctx, const struct fs_node *n,
		   const struct fs_kind *top, const char *name, char *buf,
		   size_t len);
/*
 * After a rename(2) in a mirrored tree: @dir/@name is now known as
 * @newdir/@newname (a node there before is unhashed).
 */
void node_move(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
	       struct fs_node *newdir, const char *newname);

/* content.c */
int version_map_new(struct version_map **out);
void version_map_free(struct version_map *m);
/* The id of the object @n depends on (its kind's dep). */
int64_t node_dep_id(const struct fs_node *n);
/* Brings node->content up to date; caller holds node->lock. 0 or -errno. */
int node_refresh(struct fs_ctx *ctx, struct fs_node *n);
/* Fills @st for @n (refreshing if needed). 0 or -errno. */
int node_stat(struct fs_ctx *ctx, struct fs_node *n, struct stat *st);
/*
 * How long the kernel may trust a node's attributes and its name. Files
 * that can change are re-checked on every access (0): their size must be
 * exact the moment they change; directories are trusted for live_timeout.
 * Names that never go (immutable parts, a directory's fixed entries) are
 * trusted for static_timeout: a path walk re-asks only for the names that
 * can change.
 */
double node_attr_timeout(struct fs_ctx *ctx, const struct fs_node *n);
double node_entry_timeout(struct fs_ctx *ctx, const struct fs_node *n);

/* ops.c */
/*
 * Adds a write's bytes to h->buf: in order, a write at offset 0 starting
 * over. 0, or -EFBIG past @cap bytes.
 */
int handle_accumulate(struct fs_handle *h, const char *buf, size_t len,
		      off_t off, size_t cap);

/* special.c: the write/flush/render/truncate of every special kind. */
int special_write(struct fs_ctx *ctx, struct fs_handle *h, const char *buf,
		  size_t len, off_t off);
int special_flush(struct fs_ctx *ctx, struct fs_handle *h);
int special_render(struct fs_ctx *ctx, struct fs_node *node, struct content *c);
int special_truncate(struct fs_ctx *ctx, struct fs_node *node, off_t size);
/* Replies to a read of a special file's handle. */
void special_reply_read(fuse_req_t req, struct fs_handle *h, size_t size,
			off_t off);
/* The working directory of the request's writer into @buf: 0 or -errno. */
int special_writer_cwd(const struct fs_handle *h, char *buf, size_t len);
/*
 * May the request's writer read @st (and enter it, a directory)? The
 * daemon runs as root and could read anything: this keeps a user from
 * snapshotting or registering what they cannot read themselves (a mount
 * shared with allow_other). Checks the writer's uid and primary gid.
 */
int special_writer_may_read(const struct fs_handle *h, const struct stat *st);
/*
 * Request fields (jansson values): a string of at most @max bytes without
 * NUL; a name (name_is_valid). 0, or -EINVAL with the message naming
 * @field in h->reply.
 */
struct json_t;
/*
 * The request as a JSON object into *out (set even when it is not an
 * object: the caller decrefs it). 0 or -EINVAL with the message.
 */
int special_parse_object(struct fs_handle *h, const char *text, size_t len,
			 struct json_t **out);
int special_want_string(struct fs_handle *h, struct json_t *v,
			const char *field, size_t max);
int special_want_name(struct fs_handle *h, struct json_t *v, const char *field);
/* Sets h->reply to a message and returns -err (for act callbacks). */
int special_fail(struct fs_handle *h, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* errors.c */
int fs_errno(int store_rc);
/*
 * fs_refuse - record a refusal in the event log ("refused OP PATH: REASON
 * (ENAME)") and return -err. @node/@name locate the path (name may be NULL).
 */
int fs_refuse(struct fs_ctx *ctx, const char *op, struct fs_node *node,
	      const char *name, int err, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* watch.c */
int watcher_start(struct fs_ctx *ctx);
/* mount.c: "MAJ:MIN" of the newest mount at absolute @mountpoint. */
int mount_device(const char *mountpoint, char *dev, size_t devlen);
void watcher_stop(struct fs_ctx *ctx);

/*
 * prefetch.c: a listed version's files warmed by background threads (the
 * bounds and the reasons are in prefetch.c). A kind's list collects the
 * version's files in path order with prefetch_list_add or _add_open
 * (which keep to the bounds), then hands them over with prefetch_version,
 * which always releases @pl. @key names the version (models: its id;
 * datasets: minus its id): a version listed again soon is not warmed
 * twice.
 */
struct prefetch_item {
	char hex[65];		/* the blob (BLOB_HEX_LEN digits), or "" */
	int64_t size;		/* bytes to ask for; 0: open only */
	/* a file that is not a blob: opened by @open(@arg); @arg is freed
	 * with free() once done */
	int (*open)(const void *arg, int *fd);
	void *arg;
};
struct prefetch_list {
	struct prefetch_item *v;
	size_t n, alloc;
	int64_t bytes;
};
int prefetch_list_add(struct prefetch_list *pl, const char *hex, int64_t size);
/* Adds a file @open opens from @arg (taken, even on error; freed with free()). */
int prefetch_list_add_open(struct prefetch_list *pl,
			   int (*open)(const void *arg, int *fd), void *arg,
			   int64_t size);
void prefetch_list_release(struct prefetch_list *pl);
void prefetch_version(struct fs_ctx *ctx, int64_t key, struct prefetch_list *pl);
/* At unmount: stops the threads; queued work is dropped. */
void prefetch_stop(struct fs_ctx *ctx);

/*
 * fuse_ext.c: opens of kinds with a passthrough hook may be read by the
 * kernel straight from their backing file (Linux 6.9+, CAP_SYS_ADMIN).
 * fuse_ext_attach, after fuse_session_mount: installs the device hooks
 * that ask for it at INIT (if ctx->pt.wanted), and for shared mmap of
 * direct-I/O files (Linux 6.6+). passthrough_begin, once an
 * open's handle is made: the backing id its reply should carry, 0 (read
 * through us), or -EIO when a writer waits for the node's kernel readers
 * (PASS_LEASED: the open is refused, with an events line); passthrough_reply_open sends that reply. passthrough_end,
 * as the handle goes: drops the node's backing id with its last open.
 */
int fuse_ext_attach(struct fs_ctx *ctx);
enum { PASS_NO, PASS_ALWAYS, PASS_LEASED };
/* A kind's passthrough hook for files that are all blobs. */
int passthrough_always(struct fs_ctx *ctx, struct fs_handle *h);
int passthrough_begin(struct fs_ctx *ctx, struct fs_handle *h);
int passthrough_reply_open(fuse_req_t req, struct fuse_file_info *fi, int id);
void passthrough_end(struct fs_ctx *ctx, struct fs_handle *h);

/* snapshots.c */
int snapshots_ctx_init(struct fs_ctx *ctx);
void snapshots_ctx_release(struct fs_ctx *ctx);
/* Called by the watcher: bumps DEP_SNAPSHOTS when snapshots/ changed. */
void snapshots_watch(struct fs_ctx *ctx);

/* datastores.c: the root of a datastore the mount has looked up. */
struct ds_root {
	int64_t id;
	enum datastore_type type;
	char *name;
	char *path;		/* local: its directory */
	char *url;		/* http: its base URL */
	pthread_mutex_t lock;	/* dirfd, http */
	int dirfd;		/* local: O_PATH of path once opened; else -1 */
	struct http_source *http;	/* http: made at first use */
};
int datastores_ctx_init(struct fs_ctx *ctx);
void datastores_ctx_release(struct fs_ctx *ctx);
/* The root of datastore @id (the exp_id of its nodes), or NULL. */
struct ds_root *datastore_root(struct fs_ctx *ctx, int64_t id);
/* A local root's directory descriptor (borrowed): 0 or -errno. */
int datastore_root_fd(struct ds_root *r, int *fd);
/* An HTTP root's source (borrowed), made with its secret headers. */
int datastore_http(struct fs_ctx *ctx, struct ds_root *r,
		   struct http_source **out);
/* The root of datastore @name if its id is still @id: 0 or -errno. */
int datastore_root_named(struct fs_ctx *ctx, const char *name, int64_t id,
			 struct ds_root **out);

/* datastore_http.c: reads of an open HTTP file (h->kind_data). */
ssize_t http_handle_read(struct fs_ctx *ctx, struct fs_handle *h, char *buf,
			 size_t size, off_t off);
int http_handle_direct(struct fs_ctx *ctx, struct fs_handle *h);
void http_handle_release(struct fs_ctx *ctx, struct fs_handle *h);

/* The kinds, defined by the file that serves each area. */
extern const struct fs_kind kind_root;
extern const struct fs_kind kind_experiments;
extern const struct fs_kind kind_experiment;
extern const struct fs_kind kind_runs;
extern const struct fs_kind kind_run;
extern const struct fs_kind kind_run_tags;
extern const struct fs_kind kind_run_properties;
extern const struct fs_kind kind_run_metrics;
extern const struct fs_kind kind_submit;
extern const struct fs_kind kind_computes;
extern const struct fs_kind kind_run_cancel;
extern const struct fs_kind kind_run_config;
extern const struct fs_kind kind_run_snapshot_link;
extern const struct fs_kind kind_run_parent_link;
extern const struct fs_kind kind_run_children;
extern const struct fs_kind kind_run_area;
extern const struct fs_kind kind_snapshots;
extern const struct fs_kind kind_models;
extern const struct fs_kind kind_model_register;
extern const struct fs_kind kind_model_version_tags;	/* annotations.c */
extern const struct fs_kind kind_datastores;
extern const struct fs_kind kind_ds_root;	/* datastore_files.c */
extern const struct fs_kind kind_ds_http_root;	/* datastore_http.c */
extern const struct fs_kind kind_datasets;	/* datasets.c */
extern const struct fs_kind kind_dataset_register;	/* dataset_register.c */

/* models.c: a version number as the tree spells it ("3"); 0 or -EINVAL. */
int model_version_parse(const char *s, int64_t *out);
/*
 * At mount, before serving: removes blobs no model version refers to
 * (older than an hour). The number removed, or -errno.
 */
int models_mount_cleanup(struct fs_ctx *ctx);
/*
 * After a failed registration: removes those of the @n blobs it made
 * (@hex) that nothing committed refers to. Another process's put may
 * have found one of them stored meanwhile and committed a version naming
 * it, so the caller's shared put lock *@hold is given up (*hold = -1) and
 * the lock taken exclusively for the check. Call under ctx->model_lock.
 */
void models_unput(struct fs_ctx *ctx, int *hold, const char *const *hex,
		  size_t n);

/* Directory times: when their entries last changed. */
int experiments_dir_render(struct fs_ctx *ctx, struct fs_node *node,
			   struct content *c);
int experiment_render(struct fs_ctx *ctx, struct fs_node *node,
		      struct content *c);
int run_dir_render(struct fs_ctx *ctx, struct fs_node *node, struct content *c);

/* readme.c: every fixed entry under every directory kind, for README. */
int readme_render(struct fs_ctx *ctx, struct fs_node *node, struct content *c);

#endif
