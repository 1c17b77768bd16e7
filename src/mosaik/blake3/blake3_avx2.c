/* BLAKE3 batch kernel for AVX2: eight lanes per 256-bit register.
 *
 * The vector primitives blake3_lanes.h needs, as in blake3_sse41.c at
 * twice the width. The message transpose works on 8x8 words: 32-bit and
 * 64-bit interleaves inside each 128-bit half, then a swap of halves
 * between registers (AVX2 unpacks never cross halves).
 *
 * Built with -mavx2; only called once the dispatcher has seen the CPU
 * support it.
 */
#include "blake3_impl.h"

#include <immintrin.h>
#include <string.h>

#define LANES 8
#define MANY mk__blake3_many_avx2

typedef __m256i vec;

MK__BLAKE3_INLINE vec vadd(vec a, vec b)
{
    return _mm256_add_epi32(a, b);
}

MK__BLAKE3_INLINE vec vxor(vec a, vec b)
{
    return _mm256_xor_si256(a, b);
}

MK__BLAKE3_INLINE vec vset1(uint32_t x)
{
    return _mm256_set1_epi32((int)x);
}

MK__BLAKE3_INLINE vec vload(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

MK__BLAKE3_INLINE vec rot16(vec x)
{
    return _mm256_shuffle_epi8(
        x, _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12,
                            13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15,
                            12, 13));
}

MK__BLAKE3_INLINE vec rot12(vec x)
{
    return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}

MK__BLAKE3_INLINE vec rot8(vec x)
{
    return _mm256_shuffle_epi8(
        x, _mm256_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15,
                            12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14,
                            15, 12));
}

MK__BLAKE3_INLINE vec rot7(vec x)
{
    return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25));
}

/* Rows in, columns out, in place: r[i] word j becomes r[j] lane i. */
MK__BLAKE3_INLINE void transpose(vec r[8])
{
    /* Pairs of rows interleaved: within each half, words 2k, 2k+1 of rows
     * 2p and 2p+1. */
    vec t0 = _mm256_unpacklo_epi32(r[0], r[1]);
    vec t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    vec t2 = _mm256_unpacklo_epi32(r[2], r[3]);
    vec t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    vec t4 = _mm256_unpacklo_epi32(r[4], r[5]);
    vec t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    vec t6 = _mm256_unpacklo_epi32(r[6], r[7]);
    vec t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    /* Quads: one word of rows 0-3 (or 4-7), low half word j, high j+4. */
    vec u0 = _mm256_unpacklo_epi64(t0, t2);
    vec u1 = _mm256_unpackhi_epi64(t0, t2);
    vec u2 = _mm256_unpacklo_epi64(t1, t3);
    vec u3 = _mm256_unpackhi_epi64(t1, t3);
    vec u4 = _mm256_unpacklo_epi64(t4, t6);
    vec u5 = _mm256_unpackhi_epi64(t4, t6);
    vec u6 = _mm256_unpacklo_epi64(t5, t7);
    vec u7 = _mm256_unpackhi_epi64(t5, t7);
    /* Join the halves holding rows 0-3 and 4-7 of the same word. */
    r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* A block is two halves of eight words: one 8x8 transpose each. */
MK__BLAKE3_INLINE void load_msg(const uint8_t *const in[LANES], size_t off,
                                vec m[16])
{
    for (int q = 0; q < 2; q++) {
        for (int l = 0; l < LANES; l++)
            m[8 * q + l] = vload(in[l] + off + 32 * q);
        transpose(m + 8 * q);
    }
}

MK__BLAKE3_INLINE void store_cvs(const vec h[8], uint8_t *out)
{
    vec c[8];
    memcpy(c, h, sizeof c);
    transpose(c);
    for (int l = 0; l < LANES; l++)
        _mm256_storeu_si256((__m256i *)(void *)(out + 32 * l), c[l]);
}

#include "blake3_lanes.h"
