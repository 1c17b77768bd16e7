/* Tickets: opaque credentials a peer carries, and the validators that judge them.
 *
 * A ticket is a class (what kind of credential: a JWT, a TDX quote, ...)
 * and bytes. Tickets travel inside a peer's signed discovery entry, so a
 * third party cannot add or alter them. A component that needs
 * authorisation (a group bond, a stream producer or consumer) names a list
 * of validators. Each validator looks only at the tickets of its own class.
 * The list says yes when every validator does, and the answer carries the
 * instant it stops being true, so the component can re-check or disconnect
 * then (reference/mosaik.md §7.1, §7.3).
 *
 * Times are Unix milliseconds. An expiry of MK_TICKET_NEVER (INT64_MAX) means
 * "does not expire".
 */
#ifndef MK_TICKET_H
#define MK_TICKET_H

#include <stddef.h>
#include <stdint.h>

#include "mosaik/id.h"
#include "mosaik/key.h"

#define MK_TICKET_NEVER INT64_MAX

/* The version this header describes; validators must set it. */
#define MK_TICKET_VALIDATOR_VERSION 1

/* entry.h declares the same struct under the same guard, so headers that
 * need both (group.h) compile. */
#ifndef MK_TICKET_T_DEFINED
#define MK_TICKET_T_DEFINED
typedef struct mk_ticket {
    mk_id class;
    uint8_t *data; /* owned: mk_ticket_free() releases it */
    size_t len;
} mk_ticket;
#endif

/* Copies `len` bytes of `data` (may be NULL when len is 0) into a new
 * ticket of `class`. Returns 0, or MK_ENOMEM with `t` zeroed. The copy is
 * NUL-terminated one byte past `len` so text tickets can be read as
 * strings; `len` does not count that byte. */
int mk_ticket_init(mk_ticket *t, const mk_id *class, const void *data,
                   size_t len);

/* Frees t->data; `t` is left empty and may be reused. NULL is fine. */
void mk_ticket_free(mk_ticket *t);

/* id = blake3(class ‖ data), the key of a peer entry's ticket map: adding
 * the same ticket twice changes nothing. Cannot fail. */
void mk_ticket_id(const mk_ticket *t, mk_id *out);

/* A validator for one class of tickets (a versioned vtable, in the style of
 * Canonical raft's struct raft_fsm).
 *
 * Version 1 fields:
 *   version    MK_TICKET_VALIDATOR_VERSION; 0 (unset) or an unknown version
 *              is refused by every mk_ticket_validate* call.
 *   data       the implementation's state (constructors set it).
 *   class      which tickets this validator reads.
 *   signature  a fingerprint of the whole policy: two validators that
 *              accept different tickets have different signatures. It goes
 *              into group ids, so peers with different policies never
 *              share a group.
 *   validate   judges one ticket's bytes for `peer` at `now_ms`. Returns 0
 *              and sets *expires_ms (MK_TICKET_NEVER: never), or a negative
 *              MK_E* code with a one-line reason in `why` (MK_ERRMSG_SIZE
 *              bytes, may be NULL). MK_ENOMEM means "could not decide";
 *              any other code means "this ticket is not valid". It must not
 *              keep pointers to `ticket_data` or `peer`.
 *   free       releases what the constructor acquired (typically `data`),
 *              never the struct itself, whose memory is the caller's.
 *              May be NULL when there is nothing to release.
 *
 * A validator is immutable once built: validate() may be called from any
 * number of places, but the struct must outlive those calls.
 */
struct mk_ticket_validator {
    int version;
    void *data;
    mk_id class;
    mk_id signature;
    int (*validate)(const struct mk_ticket_validator *v,
                    const uint8_t *ticket_data, size_t len,
                    const mk_peer_id *peer, int64_t now_ms,
                    int64_t *expires_ms, char *why);
    void (*free)(struct mk_ticket_validator *v);
};

/* Calls v->free when set, then zeroes `v`. NULL is fine. */
void mk_ticket_validator_free(struct mk_ticket_validator *v);

/* One validator across a peer's tickets: every ticket of v->class is
 * judged, the others are skipped. Returns 0 with *expires_ms = the latest
 * expiry among the valid ones (a peer holding an old and a renewed ticket
 * is good until the renewed one ends). When none is valid returns
 * MK_ENOT_ALLOWED and says why: "no ticket of class …" or the reason the
 * last candidate was refused. MK_ENOMEM from the validator is passed up as
 * is, since nothing was decided. MK_EINVAL for a validator of an unknown
 * version or without validate(). `tickets` may be NULL when n is 0;
 * `expires_ms` and `why` may be NULL. */
int mk_ticket_validate(const struct mk_ticket_validator *v,
                       const mk_ticket *tickets, size_t n,
                       const mk_peer_id *peer, int64_t now_ms,
                       int64_t *expires_ms, char *why);

/* Every validator in `vs` (AND): returns 0 with *expires_ms = the earliest
 * expiry among them, since the peer stops being allowed as soon as any one
 * of its tickets ends. An empty list (nv == 0) asks for nothing: 0 and
 * MK_TICKET_NEVER. Otherwise the first refusal is returned, its reason
 * prefixed with the validator's index ("validator 1: ..."), with the same
 * codes as mk_ticket_validate(). */
int mk_ticket_validate_all(const struct mk_ticket_validator *const *vs,
                           size_t nv, const mk_ticket *tickets, size_t n,
                           const mk_peer_id *peer, int64_t now_ms,
                           int64_t *expires_ms, char *why);

#endif /* MK_TICKET_H */
