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
 * Bounded to MK__TLS_CACHE_MAX peers. A dial-only node probes its peers
 * in turn, and with more peers than entries, evicting the oldest always
 * threw away the session the next dial wanted: no probe ever resumed.
 * So when the table is full a new peer's session is kept only one time
 * in MK__TLS_CACHE_ADMIT, in place of an entry picked at random: the
 * table then holds a slowly changing share of the peers, and a node
 * probing N of them in turn resumes nearly MAX/N of its probes (512
 * peers: 0% before, 47% now; 1,024: 20%; admitting every one at random
 * places gave 21% and 2%; test_tls_cache.c). Departed peers' sessions
 * still give way, only more slowly. Not thread-safe, like everything on
 * a loop.
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
#define MK__TLS_CACHE_ADMIT 8

typedef struct mk__tls_cache_entry {
    mk_peer_id peer;
    SSL_SESSION *sess; /* one reference, owned by the cache */
} mk__tls_cache_entry;

typedef struct mk__tls_cache {
    mk__tls_cache_entry *e;
    size_t n, cap;
    uint64_t rng; /* picks the entry to evict; not a secret */
} mk__tls_cache;

void mk__tls_cache_init(mk__tls_cache *c);

/* Releases every session and the table. */
void mk__tls_cache_free(mk__tls_cache *c);

/* Stores `sess` as the one to resume with `peer`, replacing any earlier
 * one. Takes the caller's reference to `sess` in every case (when the
 * table is full and does not admit it, or on allocation failure, it is
 * released and nothing is stored). */
void mk__tls_cache_put(mk__tls_cache *c, const mk_peer_id *peer,
                       SSL_SESSION *sess);

/* The session stored for `peer`, borrowed (valid until the next put or
 * drop), or NULL. */
SSL_SESSION *mk__tls_cache_get(const mk__tls_cache *c, const mk_peer_id *peer);

/* Forgets `peer`'s session, if any. */
void mk__tls_cache_drop(mk__tls_cache *c, const mk_peer_id *peer);

#endif /* MK_TLS_CACHE_H */
