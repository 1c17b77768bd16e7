/* The Compute part of `coalition demo` (tools/cmd_demo.c): two providers
 * and one small workload, end to end.
 *
 * How the demo calls it, all on its loop:
 *
 *   demo_compute_start(&d->loop, d->bin_dir, d->dir, &DEMO_COALITION,
 *                      "PEERID@HOST:PORT", 60000, NULL, NULL, &d->compute)
 *       once the committee is up (any running member as bootstrap);
 *   demo_compute_get(d->compute, &r)
 *       whenever it wants the figures (the JSON's "compute" object);
 *   demo_compute_stop(d->compute, NULL, NULL)
 *       first thing when the demo stops, while the committee still runs:
 *       the providers depart, then exit; every handle it made closes by
 *       itself, so the demo's loop simply runs until they have.
 *
 * It spawns two `coalitiond --provider` processes (keys, data and logs
 * "compute-provider<N>.*" under dir), waits until both registered, then
 * serves a shell-script image from a listening node of its own (the
 * bearer pointer) and submits it, follows the grant and the committed
 * output, and checks the final log: committed, from the granted
 * provider, and carrying that provider's valid signature
 * (co_compute_log_verify).
 */
#ifndef CO_TOOLS_DEMO_COMPUTE_H
#define CO_TOOLS_DEMO_COMPUTE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "coalition/config.h"

typedef struct demo_compute demo_compute;

typedef struct demo_compute_result {
    int providers;     /* registered and alive */
    bool granted;      /* a grant was committed */
    bool done;         /* the final log is in */
    int exit;          /* the workload's exit status (-1 until done) */
    bool verified_log; /* log committed, from the granted provider,
                          signature verifies, output arrived */
    char provider[65]; /* the granted provider ("" before) */
    char output[128];  /* the workload's first line of output */
    char reason[200];  /* what went wrong, if anything */
} demo_compute_result;

/* Starts; 0, or a negative code with nothing left running. `cfg` and
 * the strings are borrowed until demo_compute_stop's callback. `done`
 * (may be NULL) runs once, when the workload's log is in or when
 * timeout_ms passed. */
int demo_compute_start(uv_loop_t *loop, const char *bin_dir, const char *dir,
                       const co_coalition_config *cfg, const char *bootstrap,
                       uint32_t timeout_ms,
                       void (*done)(const demo_compute_result *r, void *data),
                       void *data, demo_compute **out);

void demo_compute_get(const demo_compute *dc, demo_compute_result *out);

/* Stops the providers (SIGTERM; SIGKILL after 5 s) and the node; frees
 * everything, then calls `cb` (may be NULL). */
void demo_compute_stop(demo_compute *dc, void (*cb)(void *data), void *data);

#endif
