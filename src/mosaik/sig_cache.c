/* A bounded memo of verified signatures (sig_cache.h). */
#include "sig_cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/error.h"

#define KEY_LEN 32

struct mk__sig_cache {
    /* A group's prepare worker fills it while the loop reads it
     * (group_prepare.h); held only around a slot, never a verify. */
    pthread_mutex_t lock;
    size_t mask;
    uint64_t hits, verifies;
    uint8_t (*keys)[KEY_LEN]; /* all zero: empty */
};

mk__sig_cache *mk__sig_cache_new(size_t slots)
{
    size_t n = 1;
    while (n < slots)
        n <<= 1;
    mk__sig_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    /* calloc: pages no triple has reached yet cost no memory. */
    c->keys = calloc(n, sizeof c->keys[0]);
    if (!c->keys) {
        free(c);
        return NULL;
    }
    c->mask = n - 1;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void mk__sig_cache_free(mk__sig_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->keys);
    free(c);
}

/* The triple's name: lengths are fixed but the message's, which comes
 * last, so no two triples share an encoding. */
static void triple_key(const mk_peer_id *signer, const void *msg, size_t len,
                       const uint8_t sig[MK_SIG_LEN], uint8_t key[KEY_LEN])
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, signer->b, MK_ID_LEN);
    mk_blake3_update(&h, sig, MK_SIG_LEN);
    mk_blake3_update(&h, msg, len);
    mk_blake3_final(&h, key, KEY_LEN);
    key[0] |= 1; /* never all zero: that marks an empty slot */
}

int mk__sig_cache_verify(mk__sig_cache *c, const mk_peer_id *signer,
                         const void *msg, size_t len,
                         const uint8_t sig[MK_SIG_LEN])
{
    if (!c)
        return mk_verify(signer, msg, len, sig);
    uint8_t key[KEY_LEN];
    triple_key(signer, msg, len, sig, key);
    size_t slot = 0;
    for (int i = 0; i < 8; i++)
        slot = slot << 8 | key[i];
    uint8_t *at = c->keys[slot & c->mask];
    pthread_mutex_lock(&c->lock);
    bool hit = memcmp(at, key, KEY_LEN) == 0;
    if (hit)
        c->hits++;
    else
        c->verifies++;
    pthread_mutex_unlock(&c->lock);
    if (hit)
        return 0;
    int rc = mk_verify(signer, msg, len, sig);
    if (rc == 0) {
        pthread_mutex_lock(&c->lock);
        memcpy(at, key, KEY_LEN);
        pthread_mutex_unlock(&c->lock);
    }
    return rc;
}

void mk__sig_cache_stats(mk__sig_cache *c, uint64_t *hits,
                         uint64_t *verifies)
{
    *hits = *verifies = 0;
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *verifies = c->verifies;
    pthread_mutex_unlock(&c->lock);
}
