/* Atlas: the coalition's directory of citizen cards (SPEC §4).
 *
 * Integrators read it with co_atlas_read: a read-only replica of the Atlas
 * committee's state, derived entirely from the coalition config they
 * compiled in. A card counts only when a majority of the committee (the
 * module's acl.issuers) signed its canonical bytes; anything else is
 * reported as unverified, never as a card. Operators publish with
 * co_atlas_publish (or `coalition atlas publish`); the committee members
 * then sign it.
 *
 * Everything runs on the node's loop; callbacks arrive there.
 */
#ifndef CO_ATLAS_H
#define CO_ATLAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/card.h"
#include "coalition/config.h"
#include "coalition/module.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"

typedef struct co_atlas_reader co_atlas_reader;

/* status 0: the reader is up to date (first call) or its cards changed
 * (later calls). MK_ECONNECT_TIMEOUT: no Atlas member answered by the
 * deadline (a wrong name, order or citizen in the config derives another
 * group, which surfaces exactly so); the reader keeps trying and may
 * still call with 0 later. CO_ERETIRED: the Atlas retired
 * (co_atlas_retirement says why and names any successor). */
typedef void (*co_atlas_cb)(co_atlas_reader *r, int status, void *data);

/* Binds to the coalition's Atlas. Returns 0 and `*out` (the callback
 * follows), or a negative code and never calls it: CO_ENOTSHIPPED (the
 * coalition has no Atlas), CO_ECONFIG (reason in err), MK_ENOMEM. `cfg`
 * is read during the call only. */
int co_atlas_read(mk_node *net, const co_coalition_config *cfg,
                  uint32_t timeout_ms, co_atlas_cb cb, void *data,
                  co_atlas_reader **out, char *err);

/* Stops following; `done` (may be NULL) runs once it is freed. */
void co_atlas_close(co_atlas_reader *r, mk_close_cb done, void *data);

/* Cards held, verified or not. */
size_t co_atlas_count(const co_atlas_reader *r);
size_t co_atlas_verified_count(const co_atlas_reader *r);

/* The card of a citizen (by its 32-byte stable id). Returns 0 with a
 * majority-signed card (valid until the next callback), CO_EUNVERIFIED
 * when it is held but not yet signed by a majority (still filled in), or
 * MK_ENOENT. */
int co_atlas_get(const co_atlas_reader *r, const mk_id *stable_id,
                 const co_card **out);

/* Calls `fn` for every card in citizen-id order with whether it is
 * verified; stop early by returning false. */
void co_atlas_foreach(const co_atlas_reader *r,
                      bool (*fn)(const co_card *card, bool verified,
                                 void *data),
                      void *data);

/* Retirement state (retired false while active). */
void co_atlas_retirement(const co_atlas_reader *r, co_retirement *out);

/* Publishes a card (copied) to the coalition's Atlas committee, signed
 * by `member`, whose key must be on the committee (the module's
 * acl.issuers): only committee operators put cards in the directory, and
 * their signature is the first of the majority. `done` gets 0 once the
 * committee committed it (the other members' signatures follow shortly),
 * MK_ECONNECT_TIMEOUT, or CO_ECONFIG when the Atlas refused it (not a
 * member, retired, malformed). Returns 0 (done follows) or a negative
 * code (done is never called). */
int co_atlas_publish(mk_node *net, const co_coalition_config *cfg,
                     const co_citizen_card *card, const mk_keypair *member,
                     uint32_t timeout_ms,
                     void (*done)(int status, void *data), void *data,
                     char *err);

#endif /* CO_ATLAS_H */
