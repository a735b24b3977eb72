/*
 * mlfs-mksnap - make a snapshot of a directory in a workspace, for tests
 * (runs cannot be submitted yet). Usage: mlfs-mksnap WORKSPACE SOURCE.
 * Prints the snapshot id, or a message on stderr and exits 1.
 */
#include <stdio.h>

#include "mlfs/snapshot.h"

int main(int argc, char **argv)
{
	struct snapshot_info info;
	char err[1024] = "";
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: mlfs-mksnap WORKSPACE SOURCE\n");
		return 2;
	}
	rc = snapshot_build(argv[1], argv[2], NULL, &info, err, sizeof(err));
	if (rc != STORE_OK) {
		fprintf(stderr, "mlfs-mksnap: %s\n",
			err[0] ? err : store_strerror(rc));
		return 1;
	}
	printf("%s\n", info.id);
	return 0;
}
