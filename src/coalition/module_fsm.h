/* Internal: pieces every module state machine shares — retirement and
 * the per-item lists of committee signatures. */
#ifndef CO_MODULE_FSM_H
#define CO_MODULE_FSM_H

#include "modules_internal.h"
#include "mosaik/codec.h"
#include "mosaik/sig_cache.h"

/* Every machine splits a command's checks in two, so that what a member
 * can refuse at the door (mk_fsm.admit) is refused there, before the
 * command costs every member a log write:
 *
 *  - a check of the command alone and the configuration the machine was
 *    built with (it decodes completely; every signature it carries
 *    verifies under the key it names; a signer that must be a committee
 *    member is one). admit() runs it; apply() runs the very same
 *    function first, because a member with an older build may have
 *    admitted what this one refuses;
 *  - what needs the state (sequence numbers, what is already held),
 *    which only apply() can decide.
 *
 * The check answers 0, MK_EDECODE (malformed), MK_ENOT_ALLOWED (a signer
 * the configuration does not allow), MK_EBAD_SIGNATURE or MK_ENOMEM. */

/* Decodes a RETIRE body (after its kind byte) into `next` and checks it:
 * signed by a committee member of `m` for the module `module_sig`.
 * `verified` as for co__member_check. */
int co__retire_check(mk_reader *r, const co_module_info *m,
                     mk__sig_cache *verified, const mk_id *module_sig,
                     co_retirement *next);

/* Applies a marker that passed co__retire_check: the first one wins,
 * later ones change nothing. Writes the result byte (1 accepted, 0 not)
 * and returns 0 or the result buffer's error. */
int co__retire_apply(co_retirement *ret, const co_retirement *next,
                     mk_buf *result);

/* Turns a malformed command (MK_EDECODE, decided before any change) into
 * a refusal: every replica refuses it alike, and the group keeps running.
 * Anyone can reach a module through a member, so a garbage command must
 * cost its sender an error, not the coalition its Atlas. */
int co__refuse_malformed(int rc, mk_buf *result);

/* That `member` is on the committee (else MK_ENOT_ALLOWED) and signed
 * `digest` (else MK_EBAD_SIGNATURE). Membership first: it costs nothing,
 * and a flood from outsiders should not cost a verify each. `verified`
 * (may be NULL) is the machine's memo of signatures it has already found
 * valid: admit() and apply() check the same command on a leader, and the
 * second check is then a lookup (sig_cache.h). */
int co__member_check(const co_module_info *m, mk__sig_cache *verified,
                     const mk_peer_id *member, const uint8_t digest[32],
                     const uint8_t *sig);
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
