/* Test helper for tests/integration/test_modules.c: the module tests'
 * coalition (tests/data/modules.json) run by three real coalitiond
 * members with seeded keys, and the programs that talk to it (the CLI,
 * the integrator built against tests/data/modules_coalition.h).
 *
 * Keys are seeded (`coalition keygen --seed coalition.test/modules/…`)
 * because the committee is part of the coalition's fingerprint: the
 * JSON file and the compiled-in header name these very keys.
 */
#ifndef CO_TEST_MODULES_ENV_H
#define CO_TEST_MODULES_ENV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon.h"
#include "mosaik/key.h"
#include "proc.h"

#define MENV_MEMBERS 3

typedef struct menv {
    char dir[512];
    char coalition[1024]; /* tests/data/modules.json */
    char reordered[1024]; /* the same with two citizens swapped */
    daemon_proc d[MENV_MEMBERS];
    char node_cfg[MENV_MEMBERS][600];
    char outsider_key[600]; /* a key on no committee */
    char holder_key[600];   /* the one peer the issuer's policy allows */
    char holder_hex[65];
    char tickets_key[600];  /* the ticket issuer's signing key */
} menv;

/* Seed strings of the committee members' keys, by index. */
const char *menv_member_seed(int i);

/* Writes the key derived from id(seed) to `path` (0600) and its PeerId in
 * `hex` (may be NULL). 0 or -1. */
int menv_seeded_key(const char *path, const char *seed, char hex[65]);

/* Fresh temporary dir, member keys and node files (member 0 also runs
 * the ticket issuer, allowing only the holder key). 0 or -1. */
int menv_init(menv *e);

/* Starts member i (bootstrapping through any running member). 0 or -1. */
int menv_start(menv *e, int i);

/* SIGTERM (graceful) or SIGKILL member i and reap it. */
void menv_stop(menv *e, int i, bool kill9);

bool menv_running(const menv *e, int i);

/* "PEERID@HOST:PORT" of a running member other than `not` (-1: any). */
const char *menv_boot(const menv *e, int not, char *buf, size_t len);

/* Kills everything, prints logs when `dump`, removes the directory. */
void menv_free(menv *e, bool dump);

/* While menv_cli and menv_integrator wait for their program, they call
 * `idle` (NULL: sleep) about every 20 ms: a test with nodes of its own
 * keeps its loop running, so a member living in the test process is not
 * frozen while a CLI talks to it. */
void menv_set_idle(void (*idle)(void));

/* Runs build/coalition with the NULL-terminated arguments. 0 or -1. */
int menv_cli(proc_result *r, ...) __attribute__((sentinel));
int menv_cliv(proc_result *r, const char *const *args);

/* Runs the test-built integrator (integrator_modules) with the
 * NULL-terminated arguments and parses its JSON report (NULL when it
 * printed none). *status gets its exit status. */
json_t *menv_integrator(int *status, ...) __attribute__((sentinel));

#endif
