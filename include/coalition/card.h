/* CitizenCard: what the Atlas says about one citizen (SPEC §4).
 *
 * A card is valid to a reader when a majority of the Atlas committee's
 * keys signed its canonical bytes. The canonical bytes are the card's one
 * encoding (mk_codec): citizen_id[32], role, endpoint_hints, the ticket
 * issuance root[32], MR_TD pins (48 bytes each), schema_version — lists
 * in the order given. A signature is Ed25519 over
 * "coalition/atlas/card/1" ‖ canonical bytes, the prefix keeping a card
 * signature from ever meaning anything else.
 */
#ifndef CO_CARD_H
#define CO_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/config.h"
#include "coalition/identity.h"
#include "mosaik/codec.h"
#include "mosaik/key.h"

#define CO_CARD_MAX_HINTS 16
#define CO_CARD_MAX_PINS 16
#define CO_CARD_MAX_STR 255
#define CO_CARD_SCHEMA_VERSION 1

/* A card as an operator writes it; every pointer is borrowed. */
typedef struct co_citizen_card {
    mk_id citizen_id; /* the full 32-byte stable id */
    const char *role;
    const char *const *endpoint_hints;
    size_t n_endpoint_hints;
    mk_id ticket_issuance_root;
    const uint8_t (*mrtd_pins)[CO_MRTD_LEN];
    size_t n_mrtd_pins;
    uint32_t schema_version;
} co_citizen_card;

/* A decoded card that owns its memory (co_card_free). */
typedef struct co_card {
    co_citizen_card card;
    uint8_t *bytes; /* the canonical bytes it was decoded from */
    size_t len;
    mk_id hash;     /* blake3(canonical bytes) */
} co_card;

/* Canonical bytes of `c`. 0, CO_ECONFIG (empty role, too many hints or
 * pins, a string over 255 bytes) or MK_ENOMEM (in out->err). */
int co_card_encode(const co_citizen_card *c, mk_buf *out);

/* Decodes canonical bytes, refusing anything co_card_encode would not
 * produce. 0, MK_EDECODE or MK_ENOMEM. */
int co_card_decode(co_card *out, const uint8_t *bytes, size_t len);
void co_card_free(co_card *c);

/* The message a committee member signs for a card. */
int co_card_sign(const mk_keypair *kp, const uint8_t *bytes, size_t len,
                 uint8_t sig[MK_SIG_LEN]);
int co_card_verify(const mk_peer_id *member, const uint8_t *bytes,
                   size_t len, const uint8_t sig[MK_SIG_LEN]);

/* One committee signature. */
typedef struct co_member_sig {
    mk_peer_id member;
    uint8_t sig[MK_SIG_LEN];
} co_member_sig;

/* True when signatures from more than half of `committee` (distinct
 * members of it, each verifying over `bytes` with `verify`) are present.
 * Signatures by non-members and repeats are ignored, never counted. */
bool co_majority_signed(const mk_peer_id *committee, size_t n_committee,
                        const co_member_sig *sigs, size_t n_sigs,
                        const uint8_t *bytes, size_t len,
                        int (*verify)(const mk_peer_id *, const uint8_t *,
                                      size_t, const uint8_t *));

#endif /* CO_CARD_H */
