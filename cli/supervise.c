/*
 * supervise.c - mlfs-supervise, the run supervisor's own small binary.
 *
 * The mount starts one per submitted run (compute/local.c). It is not the
 * mlfs binary itself because that one links libfuse, libgit2 and their
 * dozen libraries: loading them cost about 9 ms per run on this kind of
 * machine, a fifth of the submit-to-Completed time of a short run.
 *
 * usage: mlfs-supervise WORKSPACE COMPUTE [MOUNTPOINT]
 */
#include <stdio.h>

#include "mlfs/compute.h"

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fputs("usage: mlfs-supervise WORKSPACE COMPUTE [MOUNTPOINT]\n"
		      "(started by 'mlfs mount' for each submitted run)\n",
		      stderr);
		return 2;
	}
	return supervise_main(argv[1], argv[2], argc == 4 ? argv[3] : NULL);
}
