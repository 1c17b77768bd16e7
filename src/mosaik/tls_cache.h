/* Internal: the TLS sessions a transport may resume, one per remote key.
 *
 * A full handshake signs and verifies with both nodes' Ed25519 keys; a
 * resumed one proves the same identities with the secret the two sides
 * shared at the end of an earlier full handshake, which is far cheaper.
 * The cache is keyed by the PeerId a dialer *expected* when it got the
 * session, so a session is only ever offered to a dial that names that
 * same key (tls.c checks the session's certificate against it again before
 * offering, and the link checks the resumed peer once more).
 *
 * Bounded: past MK__TLS_CACHE_MAX peers the oldest entry goes. Not
 * thread-safe, like everything on a loop.
 */
#ifndef MK_TLS_CACHE_H
#define MK_TLS_CACHE_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/key.h"

/* A node dials far fewer distinct peers than this at once; a miss only
 * costs one full handshake. */
#define MK__TLS_CACHE_MAX 256

typedef struct mk__tls_cache_entry {
    mk_peer_id peer;
    SSL_SESSION *sess; /* one reference, owned by the cache */
    uint64_t stamp;    /* when it was stored: the oldest is evicted */
} mk__tls_cache_entry;

typedef struct mk__tls_cache {
    mk__tls_cache_entry *e;
    size_t n, cap;
    uint64_t clock;
} mk__tls_cache;

void mk__tls_cache_init(mk__tls_cache *c);

/* Releases every session and the table. */
void mk__tls_cache_free(mk__tls_cache *c);

/* Stores `sess` as the one to resume with `peer`, replacing any earlier
 * one. Takes the caller's reference to `sess` in every case (on
 * allocation failure it is released and nothing is stored). */
void mk__tls_cache_put(mk__tls_cache *c, const mk_peer_id *peer,
                       SSL_SESSION *sess);

/* The session stored for `peer`, borrowed (valid until the next put or
 * drop), or NULL. */
SSL_SESSION *mk__tls_cache_get(const mk__tls_cache *c, const mk_peer_id *peer);

/* Forgets `peer`'s session, if any. */
void mk__tls_cache_drop(mk__tls_cache *c, const mk_peer_id *peer);

#endif /* MK_TLS_CACHE_H */
