/*
 * fileio.h - system call wrappers that finish the job.
 */
#ifndef MLFS_FILEIO_H
#define MLFS_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/*
 * pwrite_all - write all @len bytes of @buf at offset @off of @fd,
 * retrying short writes and EINTR. Returns 0, or -errno (some bytes may
 * have been written: callers only count the range once this returns 0).
 * Thread-safe as pwrite(2) is.
 */
int pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

#endif
