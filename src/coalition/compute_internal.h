/* Internal: the Compute state machine (compute_fsm.c), its commands and
 * what the handles (compute.c, compute_provider.c), the module host
 * (compute_host.c) and the tests reach inside it. */
#ifndef CO_COMPUTE_INTERNAL_H
#define CO_COMPUTE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/compute.h"
#include "mosaik/codec.h"
#include "mosaik/group.h"

/* Must match the name co_module_committee_group knows Compute by. */
#define CO__COMPUTE_SIGNATURE "coalition.compute/1"

/* Bounds that keep the state (and so every snapshot, which a replica
 * receives in one link frame) well under 16 MiB. */
#define CO__COMPUTE_MAX_PROVIDERS 1024
#define CO__COMPUTE_MAX_ACTIVE 4096   /* pending + granted requests */
#define CO__COMPUTE_OUTPUT_TOTAL (8u << 20)
#define CO__COMPUTE_MIN_VALID_MS 1000
#define CO__COMPUTE_MAX_VALID_MS (7ull * 24 * 3600 * 1000)

/* Command kinds. Every command but RETIRE ends with an Ed25519 signature
 * by its signer (named inside it) over
 *   blake3("coalition/compute/cmd/1" ‖ module root ‖ every byte before
 *   the signature),
 * so a command signed for one coalition's Compute means nothing to
 * another's, and no kind can be replayed as another.
 *
 *   REGISTER  u8 1, card                                 signer: provider
 *   HEARTBEAT u8 2, provider, i64 nonce                  signer: provider
 *   DEPART    u8 3, provider, i64 nonce                  signer: provider
 *   SUBMIT    u8 4, request, submitter                   signer: submitter
 *   OUTPUT    u8 5, request_id, varint attempt, provider, varint seq,
 *             u8 stream, bytes                           signer: provider
 *   LOG       u8 6, log (without its signature)          signer: provider
 *   CLOCK     u8 7, i64 unix ms, member                  signer: member
 *   RETIRE    u8 0x7f (modules_internal.h)
 *
 * card:    provider, varint cpu, ram, storage, varint n, n × str region,
 *          u8 tdx, i64 nonce
 * request: request_id, image_hash, varint cpu, ram, storage, u8 tdx,
 *          varint valid_for_ms
 * log:     request_id, varint attempt, provider, u8 exit, i64 code,
 *          varint cpu_ms, peak_rss_kib, wall_ms, output_bytes,
 *          u8 truncated, str reason
 *
 * Every result starts with u8 outcome (0 refused, 1 done, 2 already done
 * or stale: nothing changed) and str reason; SUBMIT adds u8 state.
 */
/* The largest command the Compute takes at the door (its group's
 * max_command_bytes; modules_internal.h says how the sums go). OUTPUT is
 * the largest: kind, request_id, attempt (a u32: 5), provider, seq (a
 * u64: 10), stream, a chunk of at most CO_COMPUTE_CHUNK_MAX (2-byte
 * length), signature: 4243 bytes. The others are smaller: REGISTER 649
 * (8 regions of 1 + 63), LOG 386 (a reason of 2 + 200), RETIRE 387,
 * SUBMIT 202. */
#define CO__COMPUTE_MAX_COMMAND                                               \
    (1 + 32 + 5 + 32 + 10 + 1 + (2 + CO_COMPUTE_CHUNK_MAX) + 64)

enum {
    CO__COMPUTE_REGISTER = 1,
    CO__COMPUTE_HEARTBEAT = 2,
    CO__COMPUTE_DEPART = 3,
    CO__COMPUTE_SUBMIT = 4,
    CO__COMPUTE_OUTPUT = 5,
    CO__COMPUTE_LOG = 6,
    CO__COMPUTE_CLOCK = 7,
};

/* ---- canonical bytes ------------------------------------------------------ */

void co__compute_card_put(mk_buf *b, const co_provider_card *c);
/* Reads a card; the reader's error is set on anything malformed (too
 * many regions, an empty or over-long region, a NUL inside). */
void co__compute_card_get(mk_reader *r, co_provider_card *c);
void co__compute_request_put(mk_buf *b, const co_compute_request *q);
void co__compute_request_get(mk_reader *r, co_compute_request *q);
void co__compute_log_put(mk_buf *b, const co_compute_log *l);
void co__compute_log_get(mk_reader *r, co_compute_log *l);

/* ---- commands (each appends one whole signed command) ---------------------- */

void co__compute_cmd_register(mk_buf *out, const mk_id *root,
                              const co_provider_card *card,
                              const mk_keypair *provider);
void co__compute_cmd_heartbeat(mk_buf *out, const mk_id *root, uint8_t kind,
                               int64_t nonce, const mk_keypair *provider);
void co__compute_cmd_submit(mk_buf *out, const mk_id *root,
                            const co_compute_request *q,
                            const mk_keypair *submitter);
void co__compute_cmd_output(mk_buf *out, const mk_id *root,
                            const mk_id *request_id, uint32_t attempt,
                            uint64_t seq, uint8_t stream, const void *bytes,
                            size_t len, const mk_keypair *provider);
void co__compute_cmd_log(mk_buf *out, const mk_id *root,
                         const co_compute_log *log,
                         const mk_keypair *provider);
void co__compute_cmd_clock(mk_buf *out, const mk_id *root, int64_t unix_ms,
                           const mk_keypair *member);

/* 0 when log->sig is log->provider's signature of the LOG command that
 * carried it to the Compute of module root `root`, else
 * MK_EBAD_SIGNATURE (or MK_ENOMEM). */
int co__compute_log_verify(const mk_id *root, const co_compute_log *log);

/* Decodes a command's result. 0 or MK_EDECODE. */
int co__compute_answer_decode(uint8_t kind, const uint8_t *res, size_t len,
                              co_compute_answer *out);
/* A command's outcome as its submitter sees it: the committee's answer
 * when `status` is 0, and a refusal (outcome 0, the reason) when a member
 * refused it at its door (co__door_refused), since that is the same
 * verdict given earlier. Returns 0, MK_EDECODE (an unreadable answer) or
 * `status`. */
int co__compute_answer_of(int status, uint8_t kind, const uint8_t *res,
                          size_t len, co_compute_answer *out);

/* The committee GroupId of the coalition's Compute (and its module info),
 * after checking its parameters. 0, CO_ENOTSHIPPED or CO_ECONFIG (err). */
int co__compute_group(const co_coalition_config *cfg, co_module_info *m,
                      mk_id *group, char *err);

/* ---- the machine ------------------------------------------------------------ */

int co__compute_fsm_init(struct mk_fsm *fsm, const co_module_info *m);
void co__compute_fsm_free(struct mk_fsm *fsm);
const co_retirement *co__compute_retirement(const struct mk_fsm *fsm);
const co_compute_params *co__compute_params(const struct mk_fsm *fsm);
const co_module_info *co__compute_module(const struct mk_fsm *fsm);

/* The parameters a module's content names (defaults filled in). */
int co__compute_params_of(const co_module_info *m, co_compute_params *out,
                          char *err);

int64_t co__compute_now(const struct mk_fsm *fsm);
/* Bumped (locally, not replicated) whenever a request, grant or
 * provider changes, so watchers rescan only then. */
uint64_t co__compute_epoch(const struct mk_fsm *fsm);

size_t co__compute_provider_count(const struct mk_fsm *fsm);
void co__compute_provider_at(const struct mk_fsm *fsm, size_t i,
                             co_compute_provider_info *out);
bool co__compute_provider_find(const struct mk_fsm *fsm, const mk_peer_id *p,
                               co_compute_provider_info *out);

size_t co__compute_request_count(const struct mk_fsm *fsm);
void co__compute_request_at(const struct mk_fsm *fsm, size_t i,
                            co_compute_status *out);
bool co__compute_request_find(const struct mk_fsm *fsm, const mk_id *id,
                              co_compute_status *out);
size_t co__compute_output(const struct mk_fsm *fsm, const mk_id *id,
                          size_t from,
                          void (*fn)(int stream, const uint8_t *bytes,
                                     size_t len, void *data),
                          void *data);

/* Test and invariant support: checks that every provider's `used` is the
 * sum of its live reservations and within its capacity, and that the
 * pending queue holds exactly the pending requests in submission order.
 * Returns NULL or what is wrong. */
const char *co__compute_check(const struct mk_fsm *fsm);

/* ---- the module host's duty (compute_host.c) --------------------------------- */

/* The host's "a CLOCK is in flight" flag, kept beside the machine (not
 * replicated). */
bool *co__compute_clock_flag(struct mk_fsm *fsm);

/* While this member leads the committee group `g`, commits the clock
 * (one CLOCK in flight at most). Called every clock_ms by the host. */
void co__compute_host_duty(mk_group *g, struct mk_fsm *fsm,
                           const mk_keypair *member);

#endif
