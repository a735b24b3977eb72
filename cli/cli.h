/*
 * cli.h - the mlfs subcommands that live outside main.c.
 *
 * Each takes main()'s argc and argv unchanged (argv[1] is the command
 * name), prints its own messages and returns the process exit status:
 * 0 success, 1 failure, 2 usage error, 130 interrupted.
 */
#ifndef MLFS_CLI_H
#define MLFS_CLI_H

/*
 * cmd_submit - mlfs submit EXPERIMENT_DIR REQUEST.json [--wait]
 *
 * Writes the request to EXPERIMENT_DIR/submit with plain file operations
 * (the protocol of DESIGN.md, "Special files") and prints the run id;
 * with --wait, follows the run through its files until it ends. Details
 * at the top of submit.c.
 */
int cmd_submit(int argc, char **argv);

#endif /* MLFS_CLI_H */
