/* The BLAKE3 batch kernel, written once for every SIMD width.
 *
 * Not an ordinary header: each SIMD back end (blake3_sse41.c,
 * blake3_avx2.c, blake3_avx512.c) includes it once, after defining for
 * its own register type:
 *
 *   LANES                 lanes per register
 *   vec                   the register type, 32-bit lanes
 *   vadd, vxor            lane-wise add and xor
 *   vset1(x)              x in every lane
 *   vload(p)              LANES words from p
 *   rot16 rot12 rot8 rot7 lane-wise rotation right by that many bits
 *   load_msg(in, off, m)  m[j] lane l = word j of the block at in[l] + off
 *   store_cvs(h, out)     lane l of h[0..7] to out + 32 * l
 *   MANY                  the name of the kernel to define
 *
 * State vector i holds word i of every lane's compression, so a round is
 * the scalar round with each operation widened; lanes never need to be
 * shuffled against each other between the column and diagonal steps. The
 * cost is the transposes in load_msg and store_cvs.
 */

MK__BLAKE3_INLINE void g(vec v[16], int a, int b, int c, int d, vec x, vec y)
{
    v[a] = vadd(vadd(v[a], v[b]), x);
    v[d] = rot16(vxor(v[d], v[a]));
    v[c] = vadd(v[c], v[d]);
    v[b] = rot12(vxor(v[b], v[c]));
    v[a] = vadd(vadd(v[a], v[b]), y);
    v[d] = rot8(vxor(v[d], v[a]));
    v[c] = vadd(v[c], v[d]);
    v[b] = rot7(vxor(v[b], v[c]));
}

/* Called with a constant r, so the schedule lookups fold away. */
MK__BLAKE3_INLINE void round_r(vec v[16], const vec m[16], int r)
{
    const uint8_t *o = mk__blake3_schedule[r];
    g(v, 0, 4, 8, 12, m[o[0]], m[o[1]]);
    g(v, 1, 5, 9, 13, m[o[2]], m[o[3]]);
    g(v, 2, 6, 10, 14, m[o[4]], m[o[5]]);
    g(v, 3, 7, 11, 15, m[o[6]], m[o[7]]);
    g(v, 0, 5, 10, 15, m[o[8]], m[o[9]]);
    g(v, 1, 6, 11, 12, m[o[10]], m[o[11]]);
    g(v, 2, 7, 8, 13, m[o[12]], m[o[13]]);
    g(v, 3, 4, 9, 14, m[o[14]], m[o[15]]);
}

/* One group of LANES lanes, all their blocks. `next`, when not NULL, is
 * the next group's input, fetched into cache while this one computes. */
static void hash_group(const mk__blake3_batch *b,
                       const uint8_t *const in[LANES],
                       const uint64_t ctr[LANES], const uint8_t *next,
                       uint8_t *out)
{
    vec h[8];
    for (int i = 0; i < 8; i++)
        h[i] = vset1(b->key[i]);
    uint32_t lo[LANES], hi[LANES];
    for (int l = 0; l < LANES; l++) {
        lo[l] = (uint32_t)ctr[l];
        hi[l] = (uint32_t)(ctr[l] >> 32);
    }
    vec ctr_lo = vload(lo), ctr_hi = vload(hi);

    for (size_t k = 0; k < b->blocks; k++) {
        uint8_t flags = b->flags;
        if (k == 0)
            flags |= b->first_flags;
        if (k + 1 == b->blocks)
            flags |= b->last_flags;
        if (next != NULL && k < LANES) {
            const uint8_t *p = next + k * b->stride;
            for (size_t off = 0; off < 64 * b->blocks; off += 64)
                _mm_prefetch((const char *)(p + off), _MM_HINT_T0);
        }
        vec m[16];
        load_msg(in, 64 * k, m);
        vec v[16] = {
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
            vset1(MK__BLAKE3_IV0), vset1(MK__BLAKE3_IV1),
            vset1(MK__BLAKE3_IV2), vset1(MK__BLAKE3_IV3),
            ctr_lo, ctr_hi, vset1(MK_BLAKE3_BLOCK_LEN), vset1(flags),
        };
        round_r(v, m, 0);
        round_r(v, m, 1);
        round_r(v, m, 2);
        round_r(v, m, 3);
        round_r(v, m, 4);
        round_r(v, m, 5);
        round_r(v, m, 6);
        for (int i = 0; i < 8; i++)
            h[i] = vxor(v[i], v[i + 8]);
    }
    store_cvs(h, out);
}

void MANY(const mk__blake3_batch *b, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i += LANES) {
        /* A last, partial group repeats its last real lane; only the real
         * lanes' output is kept. */
        size_t live = n - i < LANES ? n - i : LANES;
        const uint8_t *in[LANES];
        uint64_t ctr[LANES];
        for (size_t l = 0; l < LANES; l++) {
            size_t j = i + (l < live ? l : live - 1);
            in[l] = b->in + j * b->stride;
            ctr[l] = b->counter + j * b->counter_step;
        }
        /* Prefetching pays for chunks, which stream from memory; parents
         * were just written and are in cache. */
        const uint8_t *next = NULL;
        if (b->blocks > 1 && i + 2 * LANES <= n)
            next = b->in + (i + LANES) * b->stride;
        if (live == LANES) {
            hash_group(b, in, ctr, next, out + 32 * i);
        } else {
            uint8_t tmp[LANES * 32];
            hash_group(b, in, ctr, NULL, tmp);
            memcpy(out + 32 * i, tmp, 32 * live);
        }
    }
}
