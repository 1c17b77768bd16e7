/* BLAKE3 batch kernel for SSE4.1: four lanes per 128-bit register.
 *
 * The vector primitives blake3_lanes.h needs. Rotations by 16 and 8 are
 * byte shuffles (pshufb, SSSE3); those by 12 and 7, two shifts and an or.
 *
 * Built with -msse4.1; only called once the dispatcher has seen the CPU
 * support it.
 */
#include "blake3_impl.h"

#include <immintrin.h>
#include <string.h>

#define LANES 4
#define MANY mk__blake3_many_sse41

typedef __m128i vec;

MK__BLAKE3_INLINE vec vadd(vec a, vec b)
{
    return _mm_add_epi32(a, b);
}

MK__BLAKE3_INLINE vec vxor(vec a, vec b)
{
    return _mm_xor_si128(a, b);
}

MK__BLAKE3_INLINE vec vset1(uint32_t x)
{
    return _mm_set1_epi32((int)x);
}

MK__BLAKE3_INLINE vec vload(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

MK__BLAKE3_INLINE vec rot16(vec x)
{
    return _mm_shuffle_epi8(x, _mm_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11,
                                             8, 9, 14, 15, 12, 13));
}

MK__BLAKE3_INLINE vec rot12(vec x)
{
    return _mm_or_si128(_mm_srli_epi32(x, 12), _mm_slli_epi32(x, 20));
}

MK__BLAKE3_INLINE vec rot8(vec x)
{
    return _mm_shuffle_epi8(x, _mm_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10,
                                             11, 8, 13, 14, 15, 12));
}

MK__BLAKE3_INLINE vec rot7(vec x)
{
    return _mm_or_si128(_mm_srli_epi32(x, 7), _mm_slli_epi32(x, 25));
}

/* Rows in, columns out: r[i] word j becomes c[j] lane i. */
MK__BLAKE3_INLINE void transpose(vec r0, vec r1, vec r2, vec r3, vec c[4])
{
    vec t0 = _mm_unpacklo_epi32(r0, r1);
    vec t1 = _mm_unpackhi_epi32(r0, r1);
    vec t2 = _mm_unpacklo_epi32(r2, r3);
    vec t3 = _mm_unpackhi_epi32(r2, r3);
    c[0] = _mm_unpacklo_epi64(t0, t2);
    c[1] = _mm_unpackhi_epi64(t0, t2);
    c[2] = _mm_unpacklo_epi64(t1, t3);
    c[3] = _mm_unpackhi_epi64(t1, t3);
}

/* A block is four quarters of four words: one 4x4 transpose each. */
MK__BLAKE3_INLINE void load_msg(const uint8_t *const in[LANES], size_t off,
                                vec m[16])
{
    for (int q = 0; q < 4; q++)
        transpose(vload(in[0] + off + 16 * q), vload(in[1] + off + 16 * q),
                  vload(in[2] + off + 16 * q), vload(in[3] + off + 16 * q),
                  m + 4 * q);
}

MK__BLAKE3_INLINE void store_cvs(const vec h[8], uint8_t *out)
{
    vec lo[4], hi[4];
    transpose(h[0], h[1], h[2], h[3], lo);
    transpose(h[4], h[5], h[6], h[7], hi);
    for (int l = 0; l < LANES; l++) {
        _mm_storeu_si128((__m128i *)(void *)(out + 32 * l), lo[l]);
        _mm_storeu_si128((__m128i *)(void *)(out + 32 * l + 16), hi[l]);
    }
}

#include "blake3_lanes.h"
