/* BLAKE3 batch kernel for AVX-512: sixteen lanes per 512-bit register.
 *
 * The vector primitives blake3_lanes.h needs, as in blake3_sse41.c at four
 * times the width. AVX-512F has a rotate instruction (vprord), so every
 * rotation is one operation, and its thirty-two registers hold the whole
 * state and message. One block of sixteen lanes is a 16x16 word
 * transpose: interleaves of 32 and 64 bits inside each 128-bit quarter,
 * then two rounds of quarter shuffles between registers.
 *
 * Built with -mavx512f -mavx512vl; only called once the dispatcher has
 * seen the CPU (and the OS) support both.
 */
#include "blake3_impl.h"

#include <immintrin.h>
#include <string.h>

#define LANES 16
#define MANY mk__blake3_many_avx512

typedef __m512i vec;

MK__BLAKE3_INLINE vec vadd(vec a, vec b)
{
    return _mm512_add_epi32(a, b);
}

MK__BLAKE3_INLINE vec vxor(vec a, vec b)
{
    return _mm512_xor_si512(a, b);
}

MK__BLAKE3_INLINE vec vset1(uint32_t x)
{
    return _mm512_set1_epi32((int)x);
}

MK__BLAKE3_INLINE vec vload(const void *p)
{
    return _mm512_loadu_si512(p);
}

MK__BLAKE3_INLINE vec rot16(vec x)
{
    return _mm512_ror_epi32(x, 16);
}

MK__BLAKE3_INLINE vec rot12(vec x)
{
    return _mm512_ror_epi32(x, 12);
}

MK__BLAKE3_INLINE vec rot8(vec x)
{
    return _mm512_ror_epi32(x, 8);
}

MK__BLAKE3_INLINE vec rot7(vec x)
{
    return _mm512_ror_epi32(x, 7);
}

/* Treating each register as four 128-bit quarters, y[k] quarter i is
 * x[i] quarter k: the 4x4 transpose of quarters. */
MK__BLAKE3_INLINE void transpose_quarters(vec x0, vec x1, vec x2, vec x3,
                                          vec y[4])
{
    /* 0x44 takes quarters 0,1 of each source; 0xEE quarters 2,3. */
    vec p = _mm512_shuffle_i32x4(x0, x1, 0x44);
    vec q = _mm512_shuffle_i32x4(x0, x1, 0xEE);
    vec r = _mm512_shuffle_i32x4(x2, x3, 0x44);
    vec s = _mm512_shuffle_i32x4(x2, x3, 0xEE);
    /* 0x88 takes the even quarters of each source, 0xDD the odd ones. */
    y[0] = _mm512_shuffle_i32x4(p, r, 0x88);
    y[1] = _mm512_shuffle_i32x4(p, r, 0xDD);
    y[2] = _mm512_shuffle_i32x4(q, s, 0x88);
    y[3] = _mm512_shuffle_i32x4(q, s, 0xDD);
}

/* Sixteen rows (one lane's block each) in, sixteen columns (one message
 * word of every lane each) out: lane l's word j becomes m[j] lane l. */
MK__BLAKE3_INLINE void load_msg(const uint8_t *const in[LANES], size_t off,
                                vec m[16])
{
    vec r[16], t[16], u[16];
    for (int l = 0; l < LANES; l++)
        r[l] = vload(in[l] + off);
    /* t[2p], t[2p+1]: rows 2p and 2p+1 interleaved; in quarter k, words
     * 4k, 4k+1 (even t) or 4k+2, 4k+3 (odd t). */
    for (int p = 0; p < 8; p++) {
        t[2 * p] = _mm512_unpacklo_epi32(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_epi32(r[2 * p], r[2 * p + 1]);
    }
    /* u[4g + j]: quarter k holds word 4k + j of rows 4g..4g+3. */
    for (int gr = 0; gr < 4; gr++) {
        u[4 * gr + 0] = _mm512_unpacklo_epi64(t[4 * gr], t[4 * gr + 2]);
        u[4 * gr + 1] = _mm512_unpackhi_epi64(t[4 * gr], t[4 * gr + 2]);
        u[4 * gr + 2] = _mm512_unpacklo_epi64(t[4 * gr + 1], t[4 * gr + 3]);
        u[4 * gr + 3] = _mm512_unpackhi_epi64(t[4 * gr + 1], t[4 * gr + 3]);
    }
    /* Word 4k + j of all rows: quarter k of u[j], u[4 + j], u[8 + j],
     * u[12 + j]. */
    for (int j = 0; j < 4; j++) {
        vec y[4];
        transpose_quarters(u[j], u[4 + j], u[8 + j], u[12 + j], y);
        m[j] = y[0];
        m[4 + j] = y[1];
        m[8 + j] = y[2];
        m[12 + j] = y[3];
    }
}

/* The eight chaining-value words of sixteen lanes back into sixteen
 * contiguous 32-byte values. */
MK__BLAKE3_INLINE void store_cvs(const vec h[8], uint8_t *out)
{
    /* a[j] (words 0-3) and b[j] (words 4-7): quarter k belongs to lane
     * 4k + j. */
    vec t[8], a[4], b[4];
    for (int p = 0; p < 4; p++) {
        t[2 * p] = _mm512_unpacklo_epi32(h[2 * p], h[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_epi32(h[2 * p], h[2 * p + 1]);
    }
    a[0] = _mm512_unpacklo_epi64(t[0], t[2]);
    a[1] = _mm512_unpackhi_epi64(t[0], t[2]);
    a[2] = _mm512_unpacklo_epi64(t[1], t[3]);
    a[3] = _mm512_unpackhi_epi64(t[1], t[3]);
    b[0] = _mm512_unpacklo_epi64(t[4], t[6]);
    b[1] = _mm512_unpackhi_epi64(t[4], t[6]);
    b[2] = _mm512_unpacklo_epi64(t[5], t[7]);
    b[3] = _mm512_unpackhi_epi64(t[5], t[7]);
    /* Lanes 4k, 4k+1 are quarter k of a[0], b[0], a[1], b[1]; lanes 4k+2,
     * 4k+3 the same of a[2], b[2], a[3], b[3]. */
    vec y[4], z[4];
    transpose_quarters(a[0], b[0], a[1], b[1], y);
    transpose_quarters(a[2], b[2], a[3], b[3], z);
    for (int k = 0; k < 4; k++) {
        _mm512_storeu_si512((void *)(out + 128 * k), y[k]);
        _mm512_storeu_si512((void *)(out + 128 * k + 64), z[k]);
    }
}

#include "blake3_lanes.h"
