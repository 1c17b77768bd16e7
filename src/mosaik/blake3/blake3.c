/* BLAKE3, portable C: the compression function, the chunk state and the
 * Merkle tree of chaining values (include/mosaik/blake3.h).
 *
 * The hasher keeps the last chunk open until more input arrives, because
 * only the final node of the tree may carry the ROOT flag: a lone chunk is
 * its own root, a longer input's root is the last parent.
 */
#include "mosaik/blake3.h"

#include <string.h>

enum {
    CHUNK_START = 1 << 0,
    CHUNK_END = 1 << 1,
    PARENT = 1 << 2,
    ROOT = 1 << 3,
    KEYED_HASH = 1 << 4,
};

static const uint32_t IV[8] = {
    0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
    0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u,
};

/* Message word order for each of the seven rounds: the permutation applied
 * 0..6 times, written out so rounds need no shuffling. */
static const uint8_t SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t rotr(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static inline uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void store32(uint8_t *p, uint32_t w)
{
    p[0] = (uint8_t)w;
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)(w >> 16);
    p[3] = (uint8_t)(w >> 24);
}

static inline void g(uint32_t *s, int a, int b, int c, int d, uint32_t x,
                     uint32_t y)
{
    s[a] = s[a] + s[b] + x;
    s[d] = rotr(s[d] ^ s[a], 16);
    s[c] = s[c] + s[d];
    s[b] = rotr(s[b] ^ s[c], 12);
    s[a] = s[a] + s[b] + y;
    s[d] = rotr(s[d] ^ s[a], 8);
    s[c] = s[c] + s[d];
    s[b] = rotr(s[b] ^ s[c], 7);
}

/* The full 16-word output of one compression. */
static void compress(const uint32_t cv[8], const uint8_t block[64],
                     uint8_t block_len, uint64_t counter, uint8_t flags,
                     uint32_t out[16])
{
    uint32_t m[16], s[16];
    for (int i = 0; i < 16; i++)
        m[i] = load32(block + 4 * i);
    memcpy(s, cv, 32);
    memcpy(s + 8, IV, 16);
    s[12] = (uint32_t)counter;
    s[13] = (uint32_t)(counter >> 32);
    s[14] = block_len;
    s[15] = flags;
    for (int r = 0; r < 7; r++) {
        const uint8_t *o = SCHEDULE[r];
        g(s, 0, 4, 8, 12, m[o[0]], m[o[1]]);
        g(s, 1, 5, 9, 13, m[o[2]], m[o[3]]);
        g(s, 2, 6, 10, 14, m[o[4]], m[o[5]]);
        g(s, 3, 7, 11, 15, m[o[6]], m[o[7]]);
        g(s, 0, 5, 10, 15, m[o[8]], m[o[9]]);
        g(s, 1, 6, 11, 12, m[o[10]], m[o[11]]);
        g(s, 2, 7, 8, 13, m[o[12]], m[o[13]]);
        g(s, 3, 4, 9, 14, m[o[14]], m[o[15]]);
    }
    for (int i = 0; i < 8; i++) {
        out[i] = s[i] ^ s[i + 8];
        out[i + 8] = s[i + 8] ^ cv[i];
    }
}

static void compress_cv(uint32_t cv[8], const uint8_t block[64],
                        uint8_t block_len, uint64_t counter, uint8_t flags)
{
    uint32_t out[16];
    compress(cv, block, block_len, counter, flags, out);
    memcpy(cv, out, 32);
}

static void chunk_reset(mk_blake3_chunk *c, const uint32_t key[8],
                        uint64_t counter, uint8_t flags)
{
    memcpy(c->cv, key, 32);
    c->counter = counter;
    c->buf_len = 0;
    c->blocks_done = 0;
    c->flags = flags;
}

static size_t chunk_len(const mk_blake3_chunk *c)
{
    return (size_t)c->blocks_done * MK_BLAKE3_BLOCK_LEN + c->buf_len;
}

static uint8_t chunk_start_flag(const mk_blake3_chunk *c)
{
    return c->blocks_done == 0 ? CHUNK_START : 0;
}

static void chunk_update(mk_blake3_chunk *c, const uint8_t *in, size_t len)
{
    while (len > 0) {
        /* A full buffer is compressed only once more input exists, so the
         * chunk's last block is always left for the output step. */
        if (c->buf_len == MK_BLAKE3_BLOCK_LEN) {
            compress_cv(c->cv, c->buf, MK_BLAKE3_BLOCK_LEN, c->counter,
                        c->flags | chunk_start_flag(c));
            c->blocks_done++;
            c->buf_len = 0;
        }
        size_t take = MK_BLAKE3_BLOCK_LEN - c->buf_len;
        if (take > len)
            take = len;
        memcpy(c->buf + c->buf_len, in, take);
        c->buf_len = (uint8_t)(c->buf_len + take);
        in += take;
        len -= take;
    }
}

/* The node whose compression is still pending: a chunk's last block or a
 * parent, compressed later either for its chaining value or as the root. */
typedef struct node {
    uint32_t cv[8];
    uint8_t block[64];
    uint8_t block_len;
    uint64_t counter;
    uint8_t flags;
} node;

static void chunk_node(const mk_blake3_chunk *c, node *n)
{
    memcpy(n->cv, c->cv, 32);
    memset(n->block, 0, 64);
    memcpy(n->block, c->buf, c->buf_len);
    n->block_len = c->buf_len;
    n->counter = c->counter;
    n->flags = c->flags | chunk_start_flag(c) | CHUNK_END;
}

static void parent_node(const uint8_t left[32], const uint8_t right[32],
                        const uint32_t key[8], uint8_t flags, node *n)
{
    memcpy(n->cv, key, 32);
    memcpy(n->block, left, 32);
    memcpy(n->block + 32, right, 32);
    n->block_len = MK_BLAKE3_BLOCK_LEN;
    n->counter = 0;
    n->flags = flags | PARENT;
}

static void node_cv(const node *n, uint8_t out[32])
{
    uint32_t w[16];
    compress(n->cv, n->block, n->block_len, n->counter, n->flags, w);
    for (int i = 0; i < 8; i++)
        store32(out + 4 * i, w[i]);
}

static void hasher_init(mk_blake3_hasher *h, const uint32_t key[8], uint8_t flags)
{
    memcpy(h->key, key, 32);
    chunk_reset(&h->chunk, key, 0, flags);
    h->cv_stack_len = 0;
    h->sys = NULL;
}

void mk_blake3_init(mk_blake3_hasher *h)
{
    hasher_init(h, IV, 0);
}

void mk_blake3_init_keyed(mk_blake3_hasher *h, const uint8_t key[MK_BLAKE3_KEY_LEN])
{
    uint32_t k[8];
    for (int i = 0; i < 8; i++)
        k[i] = load32(key + 4 * i);
    hasher_init(h, k, KEYED_HASH);
}

/* Pushes a finished chunk's chaining value, first merging every completed
 * subtree: after `total` chunks, the stack holds one entry per set bit. */
static void push_chunk_cv(mk_blake3_hasher *h, uint8_t cv[32], uint64_t total)
{
    while ((total & 1) == 0) {
        node n;
        h->cv_stack_len--;
        parent_node(h->cv_stack + 32 * h->cv_stack_len, cv, h->key,
                    h->chunk.flags, &n);
        node_cv(&n, cv);
        total >>= 1;
    }
    memcpy(h->cv_stack + 32 * h->cv_stack_len, cv, 32);
    h->cv_stack_len++;
}

void mk_blake3_update(mk_blake3_hasher *h, const void *data, size_t len)
{
    const uint8_t *in = data;
    while (len > 0) {
        if (chunk_len(&h->chunk) == MK_BLAKE3_CHUNK_LEN) {
            node n;
            uint8_t cv[32];
            chunk_node(&h->chunk, &n);
            node_cv(&n, cv);
            uint64_t total = h->chunk.counter + 1;
            push_chunk_cv(h, cv, total);
            chunk_reset(&h->chunk, h->key, total, h->chunk.flags);
        }
        size_t take = MK_BLAKE3_CHUNK_LEN - chunk_len(&h->chunk);
        if (take > len)
            take = len;
        chunk_update(&h->chunk, in, take);
        in += take;
        len -= take;
    }
}

void mk_blake3_final(const mk_blake3_hasher *h, uint8_t *out, size_t out_len)
{
    node n;
    chunk_node(&h->chunk, &n);
    for (size_t i = h->cv_stack_len; i > 0; i--) {
        uint8_t cv[32];
        node_cv(&n, cv);
        parent_node(h->cv_stack + 32 * (i - 1), cv, h->key, h->chunk.flags,
                    &n);
    }
    uint64_t block = 0;
    while (out_len > 0) {
        uint32_t w[16];
        uint8_t bytes[64];
        compress(n.cv, n.block, n.block_len, block++, n.flags | ROOT, w);
        for (int i = 0; i < 16; i++)
            store32(bytes + 4 * i, w[i]);
        size_t take = out_len < 64 ? out_len : 64;
        memcpy(out, bytes, take);
        out += take;
        out_len -= take;
    }
}

void mk_blake3(const void *data, size_t len, uint8_t out[MK_BLAKE3_OUT_LEN])
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, data, len);
    mk_blake3_final(&h, out, MK_BLAKE3_OUT_LEN);
}

const char *mk_blake3_impl(void)
{
    return "portable";
}
