/* Internal: pieces every module state machine shares — retirement and
 * the per-item lists of committee signatures. */
#ifndef CO_MODULE_FSM_H
#define CO_MODULE_FSM_H

#include "modules_internal.h"
#include "mosaik/codec.h"

/* Applies a RETIRE command body (after its kind byte): accepted only when
 * signed by a committee member of `m` for the module `module_sig`; the
 * first accepted one wins, later ones change nothing. Returns 0 or
 * MK_EDECODE. */
int co__retire_apply(mk_reader *r, const co_module_info *m,
                     const mk_id *module_sig, co_retirement *ret,
                     mk_buf *result);

/* Turns a malformed command (MK_EDECODE, decided before any change) into
 * a refusal: every replica refuses it alike, and the group keeps running.
 * Anyone can reach a module through a member, so a garbage command must
 * cost its sender an error, not the coalition its Atlas. */
int co__refuse_malformed(int rc, mk_buf *result);

/* Verifies that `member` is on the committee and signed `digest`. */
bool co__member_signed(const co_module_info *m, const mk_peer_id *member,
                       const uint8_t digest[32], const uint8_t *sig);
void co__retirement_put(mk_buf *b, const co_retirement *ret);
void co__retirement_get(mk_reader *r, co_retirement *ret);

/* Adds a signature when `member` is on the committee, has not signed yet
 * and the signature verifies over `bytes`. Returns 1 added, 0 refused,
 * MK_ENOMEM. Keeps the list in committee order so every replica stores
 * the same bytes. */
int co__sigs_add(co_member_sig **sigs, size_t *n, const co_module_info *m,
                 const co_member_sig *s, const uint8_t *bytes, size_t len,
                 int (*verify)(const mk_peer_id *, const uint8_t *, size_t,
                               const uint8_t *));
void co__sigs_put(mk_buf *b, const co_member_sig *sigs, size_t n);
/* Decodes a list written by co__sigs_put (NULL with *n 0 when empty). */
co_member_sig *co__sigs_get(mk_reader *r, size_t *n);

#endif
