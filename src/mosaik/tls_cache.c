/* Resumable TLS sessions by remote key (src/mosaik/tls_cache.h).
 *
 * A flat array searched linearly: comparing a few hundred 32-byte keys
 * costs microseconds, a handshake costs hundreds of them, and a table
 * this small needs no hashing or links to keep consistent.
 */
#include "mosaik/tls_cache.h"

#include <stdlib.h>
#include <string.h>

#include "mosaik/id.h"

void mk__tls_cache_init(mk__tls_cache *c)
{
    memset(c, 0, sizeof *c);
    c->rng = 0x9e3779b97f4a7c15u;
}

/* xorshift64: which sessions stay needs to be spread, not unpredictable. */
static uint64_t next_random(mk__tls_cache *c)
{
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return c->rng = x;
}

void mk__tls_cache_free(mk__tls_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        SSL_SESSION_free(c->e[i].sess);
    free(c->e);
    mk__tls_cache_init(c);
}

static mk__tls_cache_entry *find(const mk__tls_cache *c, const mk_peer_id *peer)
{
    for (size_t i = 0; i < c->n; i++)
        if (mk_id_eq(&c->e[i].peer, peer))
            return &c->e[i];
    return NULL;
}

void mk__tls_cache_put(mk__tls_cache *c, const mk_peer_id *peer,
                       SSL_SESSION *sess)
{
    mk__tls_cache_entry *e = find(c, peer);
    if (!e && c->n < MK__TLS_CACHE_MAX) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 8;
            if (cap > MK__TLS_CACHE_MAX)
                cap = MK__TLS_CACHE_MAX;
            mk__tls_cache_entry *p = realloc(c->e, cap * sizeof *p);
            if (!p) {
                SSL_SESSION_free(sess);
                return;
            }
            c->e = p;
            c->cap = cap;
        }
        e = &c->e[c->n++];
        e->sess = NULL;
    } else if (!e) {
        uint64_t r = next_random(c);
        if (r % MK__TLS_CACHE_ADMIT != 0) {
            SSL_SESSION_free(sess);
            return;
        }
        e = &c->e[(r / MK__TLS_CACHE_ADMIT) % c->n];
    }
    SSL_SESSION_free(e->sess); /* NULL-safe */
    e->peer = *peer;
    e->sess = sess;
}

SSL_SESSION *mk__tls_cache_get(const mk__tls_cache *c, const mk_peer_id *peer)
{
    const mk__tls_cache_entry *e = find(c, peer);
    return e ? e->sess : NULL;
}

void mk__tls_cache_drop(mk__tls_cache *c, const mk_peer_id *peer)
{
    mk__tls_cache_entry *e = find(c, peer);
    if (!e)
        return;
    SSL_SESSION_free(e->sess);
    *e = c->e[--c->n]; /* order does not matter */
}
