/*
 * mlfs-blobput - store files as blobs of a workspace and print, per file,
 * "HEX SIZE existed=N SECONDS". For scripts/bench and for trying the blob
 * store by hand; the mount never runs it.
 *
 *   mlfs-blobput WORKSPACE FILE...     (FILE "-": standard input)
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mlfs/blob.h"

int main(int argc, char **argv)
{
	char err[512];
	int status = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: mlfs-blobput WORKSPACE FILE...\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		struct blob_ref ref;
		struct timespec t0, t1;
		int rc;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = strcmp(argv[i], "-") == 0
			     ? blob_put_fd(argv[1], 0, &ref, err, sizeof(err))
			     : blob_put_path(argv[1], argv[i], &ref, err,
					     sizeof(err));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rc != STORE_OK) {
			fprintf(stderr, "mlfs-blobput: %s\n", err);
			status = 1;
			continue;
		}
		printf("%s %llu existed=%d %.3f\n", ref.hex,
		       (unsigned long long)ref.size, ref.existed,
		       (double)(t1.tv_sec - t0.tv_sec) +
			       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	return status;
}
