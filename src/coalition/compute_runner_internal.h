/* Internal: the runner (compute_runner.c) with its protocol side cut
 * off, so tests/unit/test_compute_runner.c can drive the run-once rule,
 * the checks and the records in-process, with no committee: grants go
 * in by hand, and output and logs come out through a sink instead of
 * co_compute_provider_output/_finish, whose contracts the sink keeps. */
#ifndef CO_COMPUTE_RUNNER_INTERNAL_H
#define CO_COMPUTE_RUNNER_INTERNAL_H

#include "coalition/compute_runner.h"

typedef struct co__runner_sink {
    long (*output)(void *ctx, const mk_id *request_id, uint32_t attempt,
                   int stream, const void *bytes, size_t len);
    /* As co_compute_provider_finish: 0 and `done` later, or negative. */
    int (*finish)(void *ctx, const co_compute_log *log,
                  void (*done)(int status, void *data), void *data);
    void *ctx;
} co__runner_sink;

/* co_compute_runner_start without the provider: cfg->coalition is not
 * read. `sink` is copied. */
int co__compute_runner_open(const co_compute_runner_config *cfg,
                            const co__runner_sink *sink,
                            co_compute_runner **out, char *err);

/* What co_compute_provider reports: a grant (`g` read during the call)
 * and a revocation (why as in co_compute_provider_config.on_revoke). */
void co__compute_runner_grant(co_compute_runner *r,
                              const co_compute_grant *g);
void co__compute_runner_revoke(co_compute_runner *r, const mk_id *id,
                               uint32_t attempt, int why);

#endif
