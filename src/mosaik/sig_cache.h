/* Internal: a memo of Ed25519 signatures already found valid.
 *
 * A module's state machine checks a command's signature twice on the
 * member that leads: once at the door (mk_fsm.admit), so an outsider's
 * forgery never reaches the log, and again in apply(), because a command
 * admitted by another member (an older build, a deposed leader) must be
 * judged the same way on every replica. Each check is a verify of some
 * 40 us, on the one loop that also runs Raft: two per command made the
 * leader's loop, not the disk or the network, what bounded Chronicle
 * appends.
 *
 * So the first successful verify of a (signer, message, signature) triple
 * is remembered under its BLAKE3 hash, and the second check of the same
 * bytes is a lookup. Only successes are kept: a valid signature stays
 * valid, while failures are what a flood is made of. The table is
 * direct-mapped and bounded; a triple pushed out is simply verified again.
 * One cache per state machine; a mutex around each slot lets a group's
 * prepare worker fill it while the loop reads it (verifies run unlocked,
 * so two threads may verify the same triple once each: harmless). */
#ifndef MK_SIG_CACHE_H
#define MK_SIG_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "mosaik/key.h"

typedef struct mk__sig_cache mk__sig_cache;

/* A cache of `slots` entries (rounded up to a power of two; 32 bytes
 * each). NULL when out of memory: callers then verify every time. */
mk__sig_cache *mk__sig_cache_new(size_t slots);
void mk__sig_cache_free(mk__sig_cache *c);

/* mk_verify, answered from the cache when these exact bytes verified
 * before. `c` may be NULL (no cache). */
int mk__sig_cache_verify(mk__sig_cache *c, const mk_peer_id *signer,
                         const void *msg, size_t len,
                         const uint8_t sig[MK_SIG_LEN]);

/* Lookups answered from the cache, and verifies done, since creation. */
void mk__sig_cache_stats(mk__sig_cache *c, uint64_t *hits,
                         uint64_t *verifies);

#endif /* MK_SIG_CACHE_H */
