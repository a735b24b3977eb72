/*
 * ws_fixture.h - one temporary workspace per test, for the unit tests
 * that need a store but not test_store.c's whole kit (test_metrics_log.c,
 * test_ingest.c).
 *
 * Use as a suite's .init/.fini: ws_setup() makes a fresh directory with
 * mkdtemp() under /tmp, ws_teardown() removes it with everything in it.
 */
#ifndef MLFS_TEST_WS_FIXTURE_H
#define MLFS_TEST_WS_FIXTURE_H

#include <limits.h>
#include <stdint.h>

#include "mlfs/store.h"

extern char ws_root[PATH_MAX];	/* the mkdtemp directory, resolved */

void ws_setup(void);
void ws_teardown(void);

/* ws_root/@rel into @out (PATH_MAX bytes). */
void ws_path(char *out, const char *rel);

/* A store created in ws_root; asserts it opened. */
struct store *ws_open(void);

/* Experiment @exp (made if missing) and a new interactive run @run in it. */
int64_t ws_make_run(struct store *st, const char *exp, const char *run);

#endif
