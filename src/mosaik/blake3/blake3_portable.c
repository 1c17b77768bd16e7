/* BLAKE3 compression in plain C: the reference every SIMD back end must
 * match, the path for CPUs without them, and the single compressions the
 * hasher does itself (a partial chunk, a few parents, the root).
 */
#include "blake3_impl.h"

#include <string.h>

MK__BLAKE3_INLINE uint32_t rotr(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

MK__BLAKE3_INLINE uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

MK__BLAKE3_INLINE void store32(uint8_t *p, uint32_t w)
{
    p[0] = (uint8_t)w;
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)(w >> 16);
    p[3] = (uint8_t)(w >> 24);
}

MK__BLAKE3_INLINE void g(uint32_t *s, int a, int b, int c, int d, uint32_t x,
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

/* Called with a constant r, so the schedule lookups fold away and the
 * message stays in registers. */
MK__BLAKE3_INLINE void round_r(uint32_t s[16], const uint32_t m[16], int r)
{
    const uint8_t *o = mk__blake3_schedule[r];
    g(s, 0, 4, 8, 12, m[o[0]], m[o[1]]);
    g(s, 1, 5, 9, 13, m[o[2]], m[o[3]]);
    g(s, 2, 6, 10, 14, m[o[4]], m[o[5]]);
    g(s, 3, 7, 11, 15, m[o[6]], m[o[7]]);
    g(s, 0, 5, 10, 15, m[o[8]], m[o[9]]);
    g(s, 1, 6, 11, 12, m[o[10]], m[o[11]]);
    g(s, 2, 7, 8, 13, m[o[12]], m[o[13]]);
    g(s, 3, 4, 9, 14, m[o[14]], m[o[15]]);
}

/* The seven rounds over state `s`; leaves s[0..7] ^ s[8..15] to the
 * caller, which needs either that half alone or both. */
MK__BLAKE3_INLINE void rounds(uint32_t s[16], const uint32_t cv[8],
                              const uint8_t block[64], uint8_t block_len,
                              uint64_t counter, uint8_t flags)
{
    uint32_t m[16];
    for (int i = 0; i < 16; i++)
        m[i] = load32(block + 4 * i);
    memcpy(s, cv, 32);
    s[8] = MK__BLAKE3_IV0;
    s[9] = MK__BLAKE3_IV1;
    s[10] = MK__BLAKE3_IV2;
    s[11] = MK__BLAKE3_IV3;
    s[12] = (uint32_t)counter;
    s[13] = (uint32_t)(counter >> 32);
    s[14] = block_len;
    s[15] = flags;
    round_r(s, m, 0);
    round_r(s, m, 1);
    round_r(s, m, 2);
    round_r(s, m, 3);
    round_r(s, m, 4);
    round_r(s, m, 5);
    round_r(s, m, 6);
}

void mk__blake3_compress(const uint32_t cv[8], const uint8_t block[64],
                         uint8_t block_len, uint64_t counter, uint8_t flags,
                         uint32_t out[16])
{
    uint32_t s[16];
    rounds(s, cv, block, block_len, counter, flags);
    for (int i = 0; i < 8; i++) {
        out[i] = s[i] ^ s[i + 8];
        out[i + 8] = s[i + 8] ^ cv[i];
    }
}

/* One lane at a time: the fallback kernel, and the one the dispatcher
 * uses for a lane or two left over by a wide kernel. */
void mk__blake3_many_portable(const mk__blake3_batch *b, size_t n,
                              uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *in = b->in + i * b->stride;
        uint64_t counter = b->counter + i * b->counter_step;
        uint32_t cv[8], s[16];
        memcpy(cv, b->key, 32);
        for (size_t k = 0; k < b->blocks; k++) {
            uint8_t flags = b->flags;
            if (k == 0)
                flags |= b->first_flags;
            if (k + 1 == b->blocks)
                flags |= b->last_flags;
            rounds(s, cv, in + 64 * k, MK_BLAKE3_BLOCK_LEN, counter, flags);
            for (int w = 0; w < 8; w++)
                cv[w] = s[w] ^ s[w + 8];
        }
        for (int w = 0; w < 8; w++)
            store32(out + 32 * i + 4 * w, cv[w]);
    }
}
