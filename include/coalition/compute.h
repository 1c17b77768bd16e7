/* Compute: the coalition's scheduler and registry for workloads named by
 * image hash (SPEC §4).
 *
 * The Compute committee runs a deterministic state machine with four
 * surfaces: `providers` (Map<ProviderId, ProviderCard>, each card signed
 * by the provider's key), `requests` (every ComputeRequest, signed by its
 * submitter), `grants` (Map<RequestId, ComputeGrant>, the committed
 * matches) and `logs` (provider-signed output chunks and one final
 * ComputeLog per grant: usage and exit). Providers run the work
 * off-module and must refuse an image whose bytes do not hash to the
 * grant's image_hash. The module supplies the scheduling commit, the
 * image fingerprint and signed settlement evidence; it does not supply
 * compute, payment or provider honesty.
 *
 * Identities: a ProviderId is the provider node's PeerId (its Ed25519
 * key); a RequestId is 32 bytes the submitter chooses
 * (co_compute_request_id derives a fresh one); an image hash is the
 * BLAKE3 of the executable's bytes (what b3sum prints), fetched as a blob
 * (mosaik/blob.h) from the grant's bearer pointer: the submitter's PeerId
 * and the same hash.
 *
 * Time. apply() never reads a clock: the leader commits a CLOCK command
 * (its Unix ms, signed by a committee member) every clock_ms, and the
 * committed value is the machine's "now" (it only moves forward). Grant
 * deadlines, queue deadlines and provider liveness are all judged against
 * it, so every replica decides them identically, at the same command.
 *
 * Matching (deterministic): a request may go to a provider that is
 * alive, is TDX-capable when the request asks for TDX, and has free
 * capacity (capacity minus what its live grants reserve) of at least the
 * request's minimums in all of cpu, ram and storage. Among those the
 * best fit wins: the smallest free cpu left after the grant, then the
 * smallest free ram, then free storage, ties to the smallest ProviderId.
 * The grant reserves exactly the minimums, so a provider is never
 * over-committed: the sum of its live reservations never exceeds its
 * capacity (a card that would shrink capacity below what is reserved is
 * refused). Pending requests are matched oldest first whenever capacity
 * appears (an exit, an expiry, a provider registering or re-matching); a
 * request no alive provider's capacity could ever hold is rejected at
 * once with the reason, and one that waits longer than queue_ms is
 * rejected with that reason.
 *
 * Liveness. Providers heartbeat every heartbeat_ms. At each committed
 * CLOCK, a provider whose last heartbeat is at least missed × heartbeat_ms
 * old (committed time) AND that has missed at least that many clock
 * commits since is declared gone (so a committee outage, which stops
 * clocks and heartbeats alike, does not condemn everyone at once). Its
 * unfinished grants return to the queue with a new attempt number and
 * are re-matched; its late records for old attempts are refused. A
 * DEPART command does the same at once.
 *
 * Parameters ride in the module's content string (folded into every
 * fingerprint): "compute/v1;clock_ms=500;heartbeat_ms=1000;missed=3;
 * queue_ms=60000;output_max=32768;keep=256".
 *
 * Everything runs on the node's loop; callbacks arrive there.
 */
#ifndef CO_COMPUTE_H
#define CO_COMPUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/config.h"
#include "coalition/module.h"
#include "mosaik/key.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"

#define CO_COMPUTE_MAX_REGIONS 8
#define CO_COMPUTE_MAX_REGION_LEN 63
#define CO_COMPUTE_REASON_LEN 200
/* Output bytes in one committed chunk. */
#define CO_COMPUTE_CHUNK_MAX 4096

typedef struct co_compute_params {
    uint64_t clock_ms;     /* [500] the leader commits the clock */
    uint64_t heartbeat_ms; /* [1000] providers heartbeat */
    uint64_t missed;       /* [3] heartbeats missed before "gone" */
    uint64_t queue_ms;     /* [60000] longest wait for a match */
    uint64_t output_max;   /* [32768] committed output bytes per attempt */
    uint64_t keep;         /* [256] finished requests kept */
} co_compute_params;

/* The coalition's Compute parameters. 0, CO_ENOTSHIPPED, or CO_ECONFIG
 * (a parameter out of range, named in err). */
int co_compute_params_get(const co_coalition_config *cfg,
                          co_compute_params *out, char *err);

/* What a provider offers or a request needs. */
typedef struct co_compute_resources {
    uint64_t cpu_millis;  /* thousandths of a core */
    uint64_t ram_mib;
    uint64_t storage_mib;
} co_compute_resources;

typedef struct co_provider_card {
    mk_peer_id provider; /* the ProviderId: the key that signs the card */
    co_compute_resources capacity;
    char regions[CO_COMPUTE_MAX_REGIONS][CO_COMPUTE_MAX_REGION_LEN + 1];
    size_t n_regions;
    bool tdx_capable;
    int64_t nonce; /* the provider's Unix ms at signing: newer wins */
} co_provider_card;

typedef struct co_compute_request {
    mk_id request_id;
    mk_id image_hash; /* BLAKE3 of the executable (the pre-hash) */
    co_compute_resources min;
    bool tdx;
    uint64_t valid_for_ms; /* how long a grant runs: 1 s to 7 days */
} co_compute_request;

/* Where the image is: a peer serving it as a blob, and its hash. */
typedef struct co_bearer_pointer {
    mk_peer_id peer;
    mk_id hash;
} co_bearer_pointer;

typedef struct co_compute_grant {
    mk_id request_id;
    mk_peer_id provider;
    mk_id image_hash;
    int64_t valid_to_ms; /* committed time; the provider kills it then */
    co_bearer_pointer bearer;
    uint32_t attempt;    /* 1, then one more per re-match */
    int64_t granted_ms;
    co_compute_resources reserved; /* the request's minimums */
} co_compute_grant;

typedef enum co_compute_exit {
    CO_COMPUTE_EXITED = 1,   /* code: its exit status */
    CO_COMPUTE_SIGNALED = 2, /* code: the signal that ended it */
    CO_COMPUTE_DEADLINE = 3, /* killed at valid_to */
    CO_COMPUTE_REFUSED = 4,  /* never run: the image did not match */
    CO_COMPUTE_FAILED = 5,   /* never run: no image, cannot start */
    CO_COMPUTE_LOST = 6,     /* the provider restarted while it ran */
    CO_COMPUTE_REVOKED = 7,  /* killed: the grant left this provider */
} co_compute_exit;

typedef struct co_compute_usage {
    uint64_t cpu_ms;       /* user + system */
    uint64_t peak_rss_kib;
    uint64_t wall_ms;
    uint64_t output_bytes; /* stdout + stderr produced */
    bool output_truncated; /* more than the committed budget */
} co_compute_usage;

/* The final record of one attempt, signed by its provider. */
typedef struct co_compute_log {
    mk_id request_id;
    uint32_t attempt;
    mk_peer_id provider;
    uint8_t exit; /* co_compute_exit */
    int32_t code;
    co_compute_usage usage;
    char reason[CO_COMPUTE_REASON_LEN + 1]; /* what happened, in words */
    uint8_t sig[MK_SIG_LEN];
} co_compute_log;

typedef enum co_compute_state {
    CO_COMPUTE_PENDING = 1,  /* waiting for capacity (or the clock) */
    CO_COMPUTE_GRANTED = 2,  /* matched; running */
    CO_COMPUTE_DONE = 3,     /* its provider's log is committed */
    CO_COMPUTE_EXPIRED = 4,  /* valid_to passed before a log (one may
                                still arrive and is then recorded) */
    CO_COMPUTE_REJECTED = 5, /* never matched; `reason` says why */
} co_compute_state;

/* "pending", "granted", …; "?" for anything else. */
const char *co_compute_state_name(int state);
/* "exited", "signaled", "deadline", "refused", "failed", "lost",
 * "revoked"; "?" for anything else. */
const char *co_compute_exit_name(int exit);

/* Everything the committee holds about one request. */
typedef struct co_compute_status {
    co_compute_request request;
    mk_peer_id submitter;
    uint64_t seq;          /* submission order, from 1 */
    uint8_t state;         /* co_compute_state */
    char reason[CO_COMPUTE_REASON_LEN + 1];
    int64_t submitted_ms;
    bool granted;          /* `grant` holds the current or last grant */
    co_compute_grant grant;
    bool logged;           /* `log` holds the final record */
    co_compute_log log;
    uint64_t output_bytes; /* committed output of the current attempt */
    size_t output_chunks;
} co_compute_status;

typedef struct co_compute_provider_info {
    co_provider_card card;
    co_compute_resources used; /* reserved by its live grants */
    bool alive;
    int64_t last_seen_ms;      /* committed time of its last heartbeat */
    uint32_t running;          /* its live grants */
    char reason[CO_COMPUTE_REASON_LEN + 1]; /* why it is gone */
} co_compute_provider_info;

/* A fresh RequestId: blake3("coalition/compute/request-id/1" ‖ submitter
 * ‖ image ‖ u64le(nonce)). Cannot fail. */
void co_compute_request_id(const mk_peer_id *submitter, const mk_id *image,
                           uint64_t nonce, mk_id *out);

/* ---- reading ---------------------------------------------------------------- */

typedef struct co_compute_reader co_compute_reader;

/* status 0 when up to date (first call) or changed; MK_ECONNECT_TIMEOUT
 * or CO_ERETIRED as for co_atlas_cb. */
typedef void (*co_compute_cb)(co_compute_reader *r, int status, void *data);

/* Follows the coalition's Compute (a read-only replica). Returns 0 and
 * `*out`, or CO_ENOTSHIPPED, CO_ECONFIG (err), MK_ENOMEM, never calling
 * back then. `cfg` is read during the call only. */
int co_compute_read(mk_node *net, const co_coalition_config *cfg,
                    uint32_t timeout_ms, co_compute_cb cb, void *data,
                    co_compute_reader **out, char *err);
void co_compute_close(co_compute_reader *r, mk_close_cb done, void *data);

/* The committed clock (0 before the first CLOCK). */
int64_t co_compute_now(const co_compute_reader *r);

/* Providers in ProviderId order (gone ones too); stop by returning false. */
size_t co_compute_provider_count(const co_compute_reader *r);
void co_compute_providers_foreach(const co_compute_reader *r,
                                  bool (*fn)(const co_compute_provider_info *p,
                                             void *data),
                                  void *data);

/* The request's status: 0, or MK_ENOENT (unknown, or pruned long after
 * it finished). */
int co_compute_status_get(const co_compute_reader *r, const mk_id *request_id,
                          co_compute_status *out);

/* Requests held, in RequestId order. */
size_t co_compute_request_count(const co_compute_reader *r);
void co_compute_requests_foreach(const co_compute_reader *r,
                                 bool (*fn)(const co_compute_status *s,
                                            void *data),
                                 void *data);

/* Calls `fn` for the committed output chunks of a request's current
 * attempt from index `from` on (stream 1 stdout, 2 stderr); returns the
 * number of chunks held. Bytes are valid during the call only. */
size_t co_compute_output(const co_compute_reader *r, const mk_id *request_id,
                         size_t from,
                         void (*fn)(int stream, const uint8_t *bytes,
                                    size_t len, void *data),
                         void *data);

void co_compute_retirement(const co_compute_reader *r, co_retirement *out);

/* Settlement evidence anyone can audit without trusting the committee:
 * 0 when `log` (as held by a reader) carries its provider's signature,
 * made for this coalition's Compute, over exactly these fields;
 * MK_EBAD_SIGNATURE otherwise; CO_ENOTSHIPPED or CO_ECONFIG (err) for
 * the config. The committee only accepts a log from the provider the
 * grant names, so a verifying log with log->provider equal to the
 * grant's is that provider's own account of the run. */
int co_compute_log_verify(const co_coalition_config *cfg,
                          const co_compute_log *log, char *err);

/* ---- submitting ------------------------------------------------------------- */

typedef struct co_compute_answer {
    uint8_t outcome; /* 1 taken, 2 already known (the same request), 0
                        refused */
    uint8_t state;   /* the request's state after it (0 when refused) */
    char reason[CO_COMPUTE_REASON_LEN + 1];
} co_compute_answer;

/* Submits `req` (copied), signed by `submitter`, whose PeerId becomes
 * the bearer pointer: providers fetch the image from that node, which
 * must serve it as a blob (mk_blobs_serve_file). `done` gets 0 and the
 * committee's answer, or MK_ECONNECT_TIMEOUT. Returns 0 (done follows)
 * or a negative code, never calling done: CO_ENOTSHIPPED, CO_ECONFIG,
 * MK_ENOMEM. Submitting the same request again is harmless (outcome 2). */
int co_compute_submit(mk_node *net, const co_coalition_config *cfg,
                      const co_compute_request *req,
                      const mk_keypair *submitter, uint32_t timeout_ms,
                      void (*done)(int status, const co_compute_answer *a,
                                   void *data),
                      void *data, char *err);

/* ---- providing -------------------------------------------------------------- */

typedef struct co_compute_provider co_compute_provider;

typedef struct co_compute_provider_config {
    mk_node *node;                       /* borrowed; its key is the
                                            ProviderId and signs */
    const co_coalition_config *coalition; /* borrowed; outlives it */
    co_compute_resources capacity;
    const char *const *regions;          /* copied */
    size_t n_regions;
    bool tdx_capable;
    /* A grant for this provider appeared: run it. Called once per
     * (request, attempt) per process: the caller keeps what it started
     * across restarts (a grant must never run twice). `g` is valid during
     * the call. */
    void (*on_grant)(co_compute_provider *p, const co_compute_grant *g,
                     void *data);
    /* A grant this provider was told about is no longer its to run: it
     * expired, moved to another provider, or was logged. `why` is a
     * co_compute_exit (CO_COMPUTE_DEADLINE or CO_COMPUTE_REVOKED) or 0
     * when it is simply finished. Kill what still runs. */
    void (*on_revoke)(co_compute_provider *p, const mk_id *request_id,
                      uint32_t attempt, int why, void *data);
    /* Progress and problems, one line each (may be NULL). */
    void (*log)(const char *level, const char *line, void *data);
    void *data;
} co_compute_provider_config;

/* Starts providing: follows the Compute, registers the card once the
 * replica is up (again whenever the committed card differs), heartbeats
 * every heartbeat_ms, and reports grants. Returns 0 and `*out`, or a
 * negative code with err (CO_ERRMSG_SIZE): CO_ENOTSHIPPED, CO_ECONFIG
 * (a capacity of zero cpu or ram, too many or too long regions). */
int co_compute_provider_open(const co_compute_provider_config *cfg,
                             co_compute_provider **out, char *err);

/* Commits output of a run (copied): batched into chunks of at most
 * CO_COMPUTE_CHUNK_MAX bytes, sent in order, until the committed budget
 * (output_max) is spent; what does not fit is counted but not sent.
 * Returns the bytes accepted for sending (maybe fewer than len), or
 * MK_ENOENT when this provider holds no such grant. */
long co_compute_provider_output(co_compute_provider *p,
                                const mk_id *request_id, uint32_t attempt,
                                int stream, const void *bytes, size_t len);

/* Commits the final record of a run after its queued output: `log`
 * (copied; provider and signature are filled in here). `done` (may be
 * NULL) gets 0 once committed (or when it had been already), CO_ECONFIG
 * when the committee refused it (the grant moved on), MK_ECANCELED when
 * the provider stopped first. Retries through leader changes. */
int co_compute_provider_finish(co_compute_provider *p,
                               const co_compute_log *log,
                               void (*done)(int status, void *data),
                               void *data);

/* Stops: when `depart`, first commits a DEPART (waiting at most
 * timeout_ms), so the committee re-matches this provider's unfinished
 * grants at once instead of after missed heartbeats. Then frees and
 * calls `cb` (may be NULL). */
void co_compute_provider_close(co_compute_provider *p, bool depart,
                               uint32_t timeout_ms, mk_close_cb cb,
                               void *data);

#endif /* CO_COMPUTE_H */
