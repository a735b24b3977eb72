/*
 * fuse_ext.c - FUSE protocol features newer than libfuse 3.14: reads of
 * immutable files served by the kernel itself (passthrough), and shared
 * mmap of direct-I/O files.
 *
 * Linux 6.9 and later can serve the reads and mmap of an open FUSE file
 * from a backing file the daemon names when it answers the open ("FUSE
 * passthrough"): no request per read, no copy through the daemon, and the
 * page cache is the backing file's own. A model's blob, a dataset's copy
 * and a snapshot's zip never change, so their files are opened this way;
 * so is a local dataset source, under a read lease that makes a writer
 * wait until the kernel's readers are gone.
 *
 * libfuse 3.14 (Debian 12) predates the feature; its custom I/O hooks let
 * us add the protocol steps it lacks, without forking it:
 *  - the INIT reply asks for FUSE_PASSTHROUGH (in flags2) and names the
 *    deepest stack of file systems a backing file may sit on, and for
 *    FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6), so that the files a reader
 *    reads through us one version at a time (direct I/O, ops.c) can
 *    still be mapped shared;
 *  - an OPEN reply carries FOPEN_PASSTHROUGH and the backing id, got
 *    from the FUSE_DEV_IOC_BACKING_OPEN ioctl (which needs CAP_SYS_ADMIN).
 *
 * The kernel wants every open of one inode to agree: all passthrough with
 * the same backing id, or none (else the open fails with EIO). So a node
 * keeps one backing id while any of its opens uses it, and an open that
 * finds the node's other opens served by us is served by us too.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs_internal.h"

/*
 * Protocol 7.40 (Linux 6.9), newer than Debian 12's <linux/fuse.h> and
 * libfuse's copy of it: defined here by their published values.
 */
#define PT_FLAGS2_PASSTHROUGH	(1u << (37 - 32))	/* FUSE_PASSTHROUGH */
#define PT_FLAGS2_DIO_MMAP	(1u << (36 - 32))	/* FUSE_DIRECT_IO_ALLOW_MMAP */
#define PT_FOPEN_PASSTHROUGH	(1u << 7)		/* FOPEN_PASSTHROUGH */
/* The only open flags allowed beside it (FOPEN_PASSTHROUGH_MASK): a
 * passthrough file has no page cache of its own to keep. */
#define PT_FOPEN_ALLOWED	((1u << 0) | (1u << 5) | (1u << 6))
#ifndef FUSE_INIT_EXT
#define FUSE_INIT_EXT		(1u << 30)
#endif
#define PT_INIT_EXT		FUSE_INIT_EXT

struct pt_backing_map {		/* struct fuse_backing_map */
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};

#define PT_DEV_IOC_MAGIC	229
#define PT_DEV_IOC_BACKING_OPEN	_IOW(PT_DEV_IOC_MAGIC, 1, struct pt_backing_map)
#define PT_DEV_IOC_BACKING_CLOSE _IOW(PT_DEV_IOC_MAGIC, 2, uint32_t)

struct pt_init_in {		/* struct fuse_init_in since 7.36 */
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint32_t flags2;
	uint32_t unused[11];
};

struct pt_init_out {		/* struct fuse_init_out since 7.40 */
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint16_t max_background;
	uint16_t congestion_threshold;
	uint32_t max_write;
	uint32_t time_gran;
	uint16_t max_pages;
	uint16_t map_alignment;
	uint32_t flags2;
	uint32_t max_stack_depth;
	uint32_t unused[6];
};

struct pt_open_out {		/* struct fuse_open_out since 7.40 */
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

_Static_assert(sizeof(struct pt_init_out) == 64, "fuse_init_out is 64 bytes");
_Static_assert(sizeof(struct pt_open_out) == 16, "fuse_open_out is 16 bytes");

/*
 * Backing files may sit on a stacked file system themselves (a workspace
 * on overlayfs, as in a container): allow the kernel's deepest stack. The
 * price is that nothing can stack on this mount.
 */
#define PT_MAX_STACK_DEPTH 2

/* The backing id an OPEN reply being sent by this thread should carry. */
static _Thread_local int reply_backing_id;

/* ---- the device hooks ---------------------------------------------------- */

static void pt_note_init(struct fs_ctx *ctx, const void *buf, size_t len)
{
	const struct fuse_in_header *in = buf;
	const struct pt_init_in *arg;

	if (len < sizeof(*in) + offsetof(struct pt_init_in, unused) ||
	    in->opcode != FUSE_INIT)
		return;
	arg = (const struct pt_init_in *)(in + 1);
	ctx->pt.init_unique = in->unique;
	if (arg->major == 7 && arg->minor >= 36 && (arg->flags & PT_INIT_EXT))
		ctx->pt.kernel_flags2 = arg->flags2;
}

static ssize_t pt_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fs_ctx *ctx = userdata;
	ssize_t n = read(fd, buf, len);

	/* INIT comes first and once: read, never spliced (no want yet). */
	if (n > 0 && !atomic_load(&ctx->pt.init_seen)) {
		pt_note_init(ctx, buf, (size_t)n);
		atomic_store(&ctx->pt.init_seen, 1);
	}
	return n;
}

/* The flags2 bits to ask for, of those the kernel offers. */
static uint32_t init_wants(struct fs_ctx *ctx, const struct pt_init_out *arg)
{
	uint32_t offered = ctx->pt.kernel_flags2, want = 0;

	if (ctx->pt.wanted && (offered & PT_FLAGS2_PASSTHROUGH) &&
	    !(arg->flags & FUSE_WRITEBACK_CACHE))
		want |= PT_FLAGS2_PASSTHROUGH;
	if (offered & PT_FLAGS2_DIO_MMAP)
		want |= PT_FLAGS2_DIO_MMAP;
	return want;
}

/* The INIT reply with what libfuse cannot ask for: a patched copy. */
static ssize_t pt_write_init(struct fs_ctx *ctx, int fd, struct iovec *iov,
			     int count)
{
	struct fuse_out_header out;
	struct pt_init_out arg;
	struct iovec v[2];
	uint32_t want;

	if (count != 2 || iov[0].iov_len != sizeof(out) ||
	    iov[1].iov_len != sizeof(arg))
		return writev(fd, iov, count);
	memcpy(&out, iov[0].iov_base, sizeof(out));
	memcpy(&arg, iov[1].iov_base, sizeof(arg));
	want = init_wants(ctx, &arg);
	if (out.error != 0 || !want)
		return writev(fd, iov, count);
	arg.flags |= PT_INIT_EXT;
	arg.flags2 |= want;
	if (want & PT_FLAGS2_PASSTHROUGH)
		arg.max_stack_depth = PT_MAX_STACK_DEPTH;
	v[0] = (struct iovec){ &out, sizeof(out) };
	v[1] = (struct iovec){ &arg, sizeof(arg) };
	atomic_store(&ctx->pt.ready, (want & PT_FLAGS2_PASSTHROUGH) != 0);
	atomic_store(&ctx->pt.dio_mmap, (want & PT_FLAGS2_DIO_MMAP) != 0);
	return writev(fd, v, 2);
}

/* An OPEN reply naming this thread's backing id. */
static ssize_t pt_write_open(int fd, struct iovec *iov, int count, int id)
{
	struct fuse_out_header out;
	struct pt_open_out arg;
	struct iovec v[2];

	if (count != 2 || iov[0].iov_len != sizeof(out) ||
	    iov[1].iov_len != sizeof(arg))
		return writev(fd, iov, count);
	memcpy(&out, iov[0].iov_base, sizeof(out));
	memcpy(&arg, iov[1].iov_base, sizeof(arg));
	arg.open_flags = (arg.open_flags & PT_FOPEN_ALLOWED) |
			 PT_FOPEN_PASSTHROUGH;
	arg.backing_id = id;
	v[0] = (struct iovec){ &out, sizeof(out) };
	v[1] = (struct iovec){ &arg, sizeof(arg) };
	return writev(fd, v, 2);
}

static ssize_t pt_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fs_ctx *ctx = userdata;
	const struct fuse_out_header *out = iov[0].iov_base;

	if (reply_backing_id > 0)
		return pt_write_open(fd, iov, count, reply_backing_id);
	if (ctx->pt.init_unique && iov[0].iov_len >= sizeof(*out) &&
	    out->unique == ctx->pt.init_unique &&
	    !atomic_exchange(&ctx->pt.init_replied, 1))
		return pt_write_init(ctx, fd, iov, count);
	return writev(fd, iov, count);
}

static ssize_t pt_splice_receive(int fdin, off_t *offin, int fdout,
				 off_t *offout, size_t len, unsigned int flags,
				 void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t pt_splice_send(int fdin, off_t *offin, int fdout,
			      off_t *offout, size_t len, unsigned int flags,
			      void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int fuse_ext_attach(struct fs_ctx *ctx)
{
	static const struct fuse_custom_io io = {
		.read = pt_read,
		.writev = pt_writev,
		.splice_receive = pt_splice_receive,
		.splice_send = pt_splice_send,
	};
	int rc;

	rc = fuse_session_custom_io(ctx->se, &io, fuse_session_fd(ctx->se));
	if (rc < 0)
		fprintf(stderr, "mlfs: passthrough reads and shared mmap of "
			"direct-I/O files off: %s\n", strerror(-rc));
	return 0;	/* without them every read still works */
}

/* ---- opens ------------------------------------------------------------ */

/* A backing id for @fd, or -errno; turns passthrough off if refused. */
static int backing_open(struct fs_ctx *ctx, int fd)
{
	struct pt_backing_map map = { .fd = fd };
	int id = ioctl(fuse_session_fd(ctx->se), PT_DEV_IOC_BACKING_OPEN, &map);

	if (id > 0)
		return id;
	id = id < 0 ? -errno : -EIO;
	/* EPERM: no CAP_SYS_ADMIN; ENOTTY, EOPNOTSUPP: an older kernel. */
	if (id == -EPERM || id == -ENOTTY || id == -EOPNOTSUPP) {
		atomic_store(&ctx->pt.ready, 0);
		fprintf(stderr, "mlfs: passthrough reads off: the kernel "
			"refused a backing file: %s\n", strerror(-id));
	}
	return id;
}

static void backing_close(struct fs_ctx *ctx, int id)
{
	uint32_t v = (uint32_t)id;

	if (ioctl(fuse_session_fd(ctx->se), PT_DEV_IOC_BACKING_CLOSE, &v) < 0)
		fprintf(stderr, "mlfs: cannot close backing file %d: %s\n",
			id, strerror(errno));
}

/* The kind's PASS_* answer for this open, PASS_NO if it cannot pass. */
static int may_pass(struct fs_ctx *ctx, struct fs_handle *h)
{
	const struct fs_kind *k = h->node->id.kind;

	if (h->backing_fd < 0 || !k->passthrough ||
	    !atomic_load(&ctx->pt.ready))
		return PASS_NO;
	return k->passthrough(ctx, h);
}

int passthrough_always(struct fs_ctx *ctx, struct fs_handle *h)
{
	(void)ctx;
	(void)h;
	return PASS_ALWAYS;
}

/*
 * A read lease on @fd's file, held by a descriptor of our own in
 * *@lease_fd: 0, or -errno (EAGAIN: a writer has the file open). While it
 * is held a process that opens the file for writing, or truncates it,
 * waits until we let go (at most the kernel's lease-break-time): so a
 * file the kernel reads for us cannot change under a reader. Not on @fd's
 * own open file: the kernel keeps that one while readers have the file
 * open, even after the daemon died, and a dead mount must not keep
 * writers waiting. No owner: the break is noticed at the next open
 * (lease_held), not by SIGIO.
 */
static int lease_take(int fd, int *lease_fd)
{
	char path[64];
	int lfd, rc = 0;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((lfd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return -errno;
	if (fcntl(lfd, F_SETLEASE, F_RDLCK) < 0 ||
	    fcntl(lfd, F_SETOWN, 0) < 0) {
		rc = -errno;
		close(lfd);	/* lets go of a lease just taken */
		return rc;
	}
	*lease_fd = lfd;
	return 0;
}

/* Whether the lease is still whole: not broken by a waiting writer. */
static int lease_held(int lease_fd)
{
	return fcntl(lease_fd, F_GETLEASE) == F_RDLCK;
}

/* Lets a waiting writer in at once, whoever still holds the file. */
static void lease_drop(int lease_fd)
{
	fcntl(lease_fd, F_SETLEASE, F_UNLCK);
	close(lease_fd);
}

/* A new backing id for @h's file, leased if @pass says so; under lock. */
static int backing_start(struct fs_ctx *ctx, struct fs_handle *h, int pass)
{
	struct fs_node *n = h->node;
	int lease_fd = -1, id;

	if (pass == PASS_LEASED && lease_take(h->backing_fd, &lease_fd) < 0)
		return 0;	/* a writer has it open: read through us */
	id = backing_open(ctx, h->backing_fd);
	if (id > 0) {
		n->pt_id = id;
		n->pt_leased = lease_fd >= 0;
		n->pt_lease_fd = lease_fd;
	} else if (lease_fd >= 0) {
		lease_drop(lease_fd);
	}
	return id > 0 ? id : 0;
}

int passthrough_begin(struct fs_ctx *ctx, struct fs_handle *h)
{
	struct fs_node *n = h->node;
	int id = 0, pass, writer = 0, leased = 0, rc;
	unsigned int readers = 0;

	if (!h->node->id.kind->passthrough)
		return 0;
	pass = may_pass(ctx, h);	/* the kind's hook may take n->lock */
	pthread_mutex_lock(&n->lock);
	if (n->own_opens == 0 && n->pt_id > 0) {
		/* A writer waiting for the kernel's readers: a new reader
		 * would keep it waiting, and then see its bytes. */
		if (n->pt_leased && !lease_held(n->pt_lease_fd)) {
			writer = 1;
			readers = n->pt_opens;
		} else {
			id = n->pt_id;
		}
	} else if (n->own_opens == 0 && pass != PASS_NO) {
		id = backing_start(ctx, h, pass);
	}
	if (id > 0) {
		n->pt_opens++;
		h->pt_mode = PT_KERNEL;
		leased = n->pt_opens == 1 && n->pt_leased;
	} else if (!writer) {
		n->own_opens++;
		h->pt_mode = PT_DAEMON;
	}
	pthread_mutex_unlock(&n->lock);
	if (writer)
		return fs_refuse(ctx, "open", n, NULL, EIO, "its source is "
				 "being opened for writing; the writer waits "
				 "until %u open reader%s close%s it", readers,
				 readers == 1 ? "" : "s", readers == 1 ? "s" : "");
	/* The pin once more, now that no writer can come: the file may have
	 * changed between the open's check and the lease. */
	if (leased && h->node->id.kind->read_check &&
	    (rc = h->node->id.kind->read_check(ctx, h)) < 0) {
		passthrough_end(ctx, h);
		return rc;
	}
	return id;
}

void passthrough_end(struct fs_ctx *ctx, struct fs_handle *h)
{
	struct fs_node *n = h->node;
	int close_id = 0, lease_fd = -1;

	if (h->pt_mode == PT_NONE)
		return;
	pthread_mutex_lock(&n->lock);
	if (h->pt_mode == PT_KERNEL && --n->pt_opens == 0) {
		close_id = n->pt_id;
		n->pt_id = 0;
		if (n->pt_leased)
			lease_fd = n->pt_lease_fd;
		n->pt_leased = 0;
	} else if (h->pt_mode == PT_DAEMON) {
		n->own_opens--;
	}
	pthread_mutex_unlock(&n->lock);
	h->pt_mode = PT_NONE;
	/* The kernel's open files hold the backing file on their own. */
	if (close_id > 0)
		backing_close(ctx, close_id);
	if (lease_fd >= 0)
		lease_drop(lease_fd);
}

int passthrough_reply_open(fuse_req_t req, struct fuse_file_info *fi, int id)
{
	int rc;

	reply_backing_id = id;
	rc = fuse_reply_open(req, fi);
	reply_backing_id = 0;
	return rc;
}
