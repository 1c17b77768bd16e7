/* PeerEntry: what a node says about itself, signed with its key.
 *
 * An entry carries the node's network, a version of two millisecond clocks
 * (start: when the process started; update: bumped on every change), the
 * addresses it listens on, its tags, the streams it produces, the groups
 * it belongs to and the tickets it holds. Entries travel by gossip and
 * catalog sync and are only ever kept when their signature verifies, so a
 * third party can neither forge nor alter one.
 *
 * Wire form (mk_codec): format byte 1, network[32], peer[32], start i64,
 * update i64, addrs, tags (strings), streams, groups (ids), tickets
 * ({class[32], data}) — every list sorted and without duplicates, so one
 * entry has exactly one encoding — then the 64-byte Ed25519 signature of
 * blake3(everything before it).
 */
#ifndef MK_ENTRY_H
#define MK_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/key.h"
#include "mosaik/ticket.h" /* tickets travel in entries */

#define MK_ENTRY_MAX_ADDRS 16
#define MK_ENTRY_MAX_TAGS 32
#define MK_ENTRY_MAX_IDS 256     /* streams, and groups, each */
#define MK_ENTRY_MAX_TICKETS 16
#define MK_ENTRY_MAX_STR 255     /* an address or a tag */
#define MK_ENTRY_MAX_TICKET 8192 /* bytes of one ticket's data */

/* The largest signed entry (wire form, signature included) anyone signs or
 * accepts. What an honest entry holds: a few addresses (a wildcard
 * listener lists every interface, ~50 bytes each), a few tags, the ids of
 * the streams and groups the node takes part in (32 bytes each; a node
 * in a hundred of them is 3 KiB) and a ticket or two (an EdDSA JWT is
 * under 1 KiB; an attestation quote up to MK_ENTRY_MAX_TICKET). That is
 * well under 16 KiB, while the per-list limits above would allow ~160
 * KiB: without this bound a flood of maximal entries made catalogs of
 * tens of megabytes. Catalog budgets (node.h) are counted in these. */
#define MK_ENTRY_MAX_WIRE (16u << 10)

typedef struct mk_peer_entry {
    mk_id network;
    mk_peer_id peer;
    int64_t start_ms, update_ms;
    char **addrs;
    size_t n_addrs;
    char **tags;
    size_t n_tags;
    mk_id *streams;
    size_t n_streams;
    mk_id *groups;
    size_t n_groups;
    mk_ticket *tickets;
    size_t n_tickets;
    /* The signed wire form, kept so the entry can be forwarded as is. */
    uint8_t *wire;
    size_t wire_len;
} mk_peer_entry;

/* An empty entry for `peer` on `network`, version (start, start). */
void mk_entry_init(mk_peer_entry *e, const mk_id *network,
                   const mk_peer_id *peer, int64_t start_ms);

/* Frees every list and the wire form; `e` can be re-initialised. */
void mk_entry_free(mk_peer_entry *e);

/* A deep copy; MK_ENOMEM on failure (dst untouched then). */
int mk_entry_copy(mk_peer_entry *dst, const mk_peer_entry *src);

/* Set-like mutators: return 1 when the entry changed, 0 when it already
 * was so, or a negative code (MK_ENOMEM, MK_EINVAL for a bad string,
 * MK_EFULL past a MK_ENTRY_MAX_*). They do not touch the version. */
int mk_entry_add_addr(mk_peer_entry *e, const char *addr);
int mk_entry_add_tag(mk_peer_entry *e, const char *tag);
int mk_entry_remove_tag(mk_peer_entry *e, const char *tag);
int mk_entry_add_stream(mk_peer_entry *e, const mk_id *stream);
int mk_entry_remove_stream(mk_peer_entry *e, const mk_id *stream);
int mk_entry_add_group(mk_peer_entry *e, const mk_id *group);
int mk_entry_remove_group(mk_peer_entry *e, const mk_id *group);
int mk_entry_add_ticket(mk_peer_entry *e, const mk_ticket *t);
int mk_entry_remove_tickets_of(mk_peer_entry *e, const mk_id *cls);

bool mk_entry_has_tag(const mk_peer_entry *e, const char *tag);
bool mk_entry_has_stream(const mk_peer_entry *e, const mk_id *stream);
bool mk_entry_has_group(const mk_peer_entry *e, const mk_id *group);

/* update = max(update, now) + 1: strictly newer than any earlier version. */
void mk_entry_bump(mk_peer_entry *e, int64_t now_ms);

/* Lexicographic (start, update): <0 when a is older than b. */
int mk_entry_version_cmp(const mk_peer_entry *a, const mk_peer_entry *b);

/* Encodes and signs with `kp` (whose public key must be e->peer), storing
 * the result in e->wire. 0, MK_EINVAL (key mismatch), MK_EMSGSIZE (the
 * signed entry would be larger than MK_ENTRY_MAX_WIRE; e->wire is left
 * as it was) or MK_ENOMEM. */
int mk_entry_sign(mk_peer_entry *e, const mk_keypair *kp);

/* Decodes a signed entry and verifies its signature. Returns 0 and fills
 * `e` (free it), MK_EMSGSIZE for more than MK_ENTRY_MAX_WIRE bytes (refused
 * before anything is parsed), MK_EDECODE for malformed bytes (including
 * unsorted or duplicate list items), or MK_EBAD_SIGNATURE. */
int mk_entry_decode(mk_peer_entry *e, const uint8_t *wire, size_t len);

/* ---- graceful departure ------------------------------------------------ */

/* "I am leaving": names the last version the peer published, signed, so
 * nobody can evict a peer on its behalf nor replay an old departure
 * against a newer incarnation. */
typedef struct mk_departure {
    mk_id network;
    mk_peer_id peer;
    int64_t start_ms, update_ms, at_ms;
    uint8_t sig[MK_SIG_LEN];
} mk_departure;

void mk_departure_make(mk_departure *d, const mk_peer_entry *last,
                       const mk_keypair *kp, int64_t now_ms);
/* Wire form (fixed size) and its checked decoding (MK_EDECODE,
 * MK_EBAD_SIGNATURE). */
#define MK_DEPARTURE_WIRE_LEN (32 + 32 + 3 * 8 + MK_SIG_LEN)
void mk_departure_encode(const mk_departure *d,
                         uint8_t out[MK_DEPARTURE_WIRE_LEN]);
int mk_departure_decode(mk_departure *d, const uint8_t *wire, size_t len);

#endif /* MK_ENTRY_H */
