/* A Compute provider's lifecycle: which grants run, exactly once each,
 * on an executor the embedder supplies (docs/compute.md, "Executors").
 *
 * co_compute_provider (compute.h) speaks the protocol: card, heartbeat,
 * grants, output, logs. The runner sits on top of it and owns every
 * decision about a grant: it writes the grant's run record, checks the
 * bearer pointer, fetches the image as a verified blob, copies it into a
 * fresh working directory hashing the copy, refuses to run anything that
 * is not the grant's image, kills at valid_to and on revocation, builds
 * the final log and commits it. What it does not know is how to run a
 * workload: that is the executor, a small table of calls (a process with
 * rlimits and cgroups in coalitiond, a shell command or a function in
 * examples/provider.c).
 *
 * The run-once rule. Before anything is fetched, the runner appends
 * "accepted" to DATA/compute/runs/<request hex>.<attempt> and fsyncs it;
 * a grant whose record exists is never started again, by this process or
 * a later one. The record also keeps the executor's handle once started
 * and the final log before it is committed. So after a restart a grant
 * still assigned here is, per its record:
 *   - final log saved: that log is committed again (never re-run);
 *   - no final log: reported CO_COMPUTE_LOST ("it is never run twice"),
 *     after the executor's `orphan` was asked to end whatever the earlier
 *     process started (the handle it recorded);
 * and a crash before the record reached the disk means nothing ran.
 * Records older than any grant can live are pruned at start.
 *
 * Everything runs on the node's loop; callbacks arrive there; nothing is
 * thread-safe.
 */
#ifndef CO_COMPUTE_RUNNER_H
#define CO_COMPUTE_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/compute.h"
#include "coalition/config.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"

/* Longest executor handle kept in a run record. */
#define CO_COMPUTE_HANDLE_LEN 127

/* One grant being run. Owned by the runner from the grant until the
 * executor's `release` (or, for a job never started, until it ends); the
 * executor reads the first three fields and owns `handle` and `data`. */
typedef struct co_compute_job {
    const co_compute_grant *grant; /* what was granted */
    const char *work_dir; /* fresh, 0700, removed once the job ends */
    const char *image;    /* work_dir/image: its bytes hash to
                             grant->image_hash (checked as copied) */
    /* Written by `start`: text naming the workload for a later process
     * (coalitiond: pid and start time); "" names nothing. */
    char handle[CO_COMPUTE_HANDLE_LEN + 1];
    void *data; /* the executor's, NULL until it sets it */
} co_compute_job;

/* How a workload ended, as its executor saw it. */
typedef struct co_compute_outcome {
    int exit;     /* CO_COMPUTE_EXITED (code: status) or
                     CO_COMPUTE_SIGNALED (code: the signal) */
    int32_t code;
    uint64_t cpu_ms;       /* user + system; 0 when unknown */
    uint64_t peak_rss_kib; /* 0 when unknown */
    const char *note; /* borrowed, may be NULL: words for the reason,
                         such as "CPU time limit" */
} co_compute_outcome;

/* What the embedder supplies: the calls that actually run a workload.
 * Borrowed by the runner; must outlive it. `data` is passed to each. */
typedef struct co_compute_executor {
    /* Starts job's workload (work_dir and image are ready). Returns 0
     * once it runs, then reports output with co_compute_job_output and
     * its end, exactly once, with co_compute_job_exited, both later from
     * the loop (never from inside start). Or a negative code with the
     * reason in `err` (CO_COMPUTE_REASON_LEN + 1 bytes): the grant is
     * logged CO_COMPUTE_FAILED and never tried again. */
    int (*start)(co_compute_job *job, char *err, void *data);
    /* Ends the workload now (valid_to, revoked, stopping): may act
     * asynchronously and be called more than once; the executor still
     * reports the end with co_compute_job_exited. */
    void (*kill)(co_compute_job *job, void *data);
    /* The runner is done with a job `start` accepted: after its end was
     * reported, or when the runner stops before it was. Free what start
     * took (synchronously); `job` is invalid afterwards and reports for
     * it are no longer accepted. */
    void (*release)(co_compute_job *job, void *data);
    /* May be NULL. After a restart: `handle` (borrowed, during the call)
     * is what an earlier process's `start` wrote for a grant that did
     * not finish; end that workload if it still runs. */
    void (*orphan)(const char *handle, void *data);
    void *data;
} co_compute_executor;

/* Output of a started job (copied): stream 1 stdout, 2 stderr. Committed
 * in order up to the Compute's output_max; everything is counted. */
void co_compute_job_output(co_compute_job *job, int stream,
                           const void *bytes, size_t len);

/* The end of a started job (`o` read during the call). The runner builds
 * the signed log from it (a kill it asked for decides the exit kind:
 * deadline or revoked), saves it in the record, then commits it. */
void co_compute_job_exited(co_compute_job *job, const co_compute_outcome *o);

typedef struct co_compute_runner co_compute_runner;

typedef struct co_compute_runner_config {
    mk_node *node; /* borrowed; its key is the ProviderId. The runner
                      serves the node's blobs (mk_blobs) from
                      data_dir/blobs, so nothing else on it may */
    const co_coalition_config *coalition; /* borrowed; outlives it */
    const char *data_dir; /* copied; records under compute/runs, work
                             directories under compute/work */
    co_compute_resources capacity;
    const char *const *regions; /* copied */
    size_t n_regions;
    bool tdx_capable;
    const co_compute_executor *executor; /* borrowed; outlives it */
    /* May be NULL: a run's final log was answered: status 0 committed,
     * CO_ECONFIG refused (the grant moved on). `log` during the call. */
    void (*on_logged)(const co_compute_log *log, int status, void *data);
    /* May be NULL: progress and problems, one line each. */
    void (*log)(const char *level, const char *line, void *data);
    void *data;
} co_compute_runner_config;

/* Starts providing: the directories, the blob service, then
 * co_compute_provider_open. Returns 0 and `*out`, or a negative code
 * with err (CO_ERRMSG_SIZE): CO_ENOTSHIPPED, CO_ECONFIG (capacity,
 * regions, no executor), MK_EIO (a directory it cannot create),
 * MK_EEXIST (the node already serves blobs), MK_ENOMEM. */
int co_compute_runner_start(const co_compute_runner_config *cfg,
                            co_compute_runner **out, char *err);

/* Kills what runs, departs (so the committee re-matches that work at
 * once), releases every job, closes its blob service (mk_blobs_close:
 * MK_ALPN_BLOBS is no longer served), frees, then calls `cb` (may be
 * NULL). No log is committed for what was killed here; the record keeps
 * one if its end was reported. Call it before the node's mk_node_close
 * (the departure needs the node); the node may keep running after. */
void co_compute_runner_close(co_compute_runner *r, mk_close_cb cb,
                             void *data);

#endif /* CO_COMPUTE_RUNNER_H */
