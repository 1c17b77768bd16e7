/* BLAKE3 internals shared by the hasher (blake3.c), the compression back
 * ends (blake3_portable.c; blake3_sse41.c, blake3_avx2.c, blake3_avx512.c,
 * which share blake3_lanes.h) and the run-time choice between them
 * (blake3_dispatch.c).
 *
 * Speed comes from one operation: compressing many independent inputs at
 * once, one per SIMD lane. A batch is either whole chunks (16 blocks each,
 * consecutive chunk counters) or parent nodes (one block each: the two
 * chaining values of its children). Either way its inputs sit at a fixed
 * stride in memory, so a back end only needs base, stride and lane count.
 */
#ifndef MK_BLAKE3_IMPL_H
#define MK_BLAKE3_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "mosaik/blake3.h"

/* For the compression loops' helpers. GCC finds a whole round too big to
 * inline, and a round that is a call passes the state through memory:
 * half the speed. Forced only when optimising; at -O0 (the sanitizer
 * build) inlining would just make the frames bigger and slower. */
#ifdef __OPTIMIZE__
#define MK__BLAKE3_INLINE static inline __attribute__((always_inline))
#else
#define MK__BLAKE3_INLINE static inline
#endif

/* Domain flags: what kind of node a compression is for. */
enum {
    MK__BLAKE3_CHUNK_START = 1 << 0,
    MK__BLAKE3_CHUNK_END = 1 << 1,
    MK__BLAKE3_PARENT = 1 << 2,
    MK__BLAKE3_ROOT = 1 << 3,
    MK__BLAKE3_KEYED_HASH = 1 << 4,
};

/* The IV is SHA-256's; it also keys plain (unkeyed) hashing. */
#define MK__BLAKE3_IV0 0x6A09E667u
#define MK__BLAKE3_IV1 0xBB67AE85u
#define MK__BLAKE3_IV2 0x3C6EF372u
#define MK__BLAKE3_IV3 0xA54FF53Au
#define MK__BLAKE3_IV4 0x510E527Fu
#define MK__BLAKE3_IV5 0x9B05688Cu
#define MK__BLAKE3_IV6 0x1F83D9ABu
#define MK__BLAKE3_IV7 0x5BE0CD19u

/* Message word order for each of the seven rounds: the specification's
 * permutation applied 0..6 times, written out so a round only indexes.
 * Static so that every back end's compiler sees constant indices and keeps
 * the message in registers. */
static const uint8_t mk__blake3_schedule[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

/* A set of independent compressions, one per lane. Lane i reads `blocks`
 * 64-byte blocks from in + i * stride, starts from `key` and uses counter
 * `counter + i * counter_step`; its first block adds `first_flags`, its
 * last `last_flags`, every block `flags`. It yields a 32-byte chaining
 * value at out + 32 * i. */
typedef struct mk__blake3_batch {
    const uint8_t *in;
    size_t stride;
    size_t blocks;
    const uint32_t *key;
    uint64_t counter;
    uint8_t counter_step;
    uint8_t flags;
    uint8_t first_flags;
    uint8_t last_flags;
} mk__blake3_batch;

/* Compresses lanes 0..n-1 of `b` (any n >= 1; a back end pads its last
 * group of lanes by repeating a real one). Each group of lanes reads all
 * its input before writing its output, so a parent batch may reduce in
 * place: `out` equal to `b->in` with stride 64. */
typedef void mk__blake3_many_fn(const mk__blake3_batch *b, size_t n,
                                uint8_t *out);

/* One compression, all 16 output words: the first 8 are the chaining
 * value, all 16 a root output block. For the open chunk, parents merged
 * one at a time, and the root. Portable C on every back end: a single
 * block is a chain of dependent steps, and in SIMD registers that chain
 * is no shorter (measured: plain C was faster than SSE4.1 rows). */
void mk__blake3_compress(const uint32_t cv[8], const uint8_t block[64],
                         uint8_t block_len, uint64_t counter, uint8_t flags,
                         uint32_t out[16]);

mk__blake3_many_fn mk__blake3_many_portable;
#ifdef MK_BLAKE3_X86
mk__blake3_many_fn mk__blake3_many_sse41;
mk__blake3_many_fn mk__blake3_many_avx2;
mk__blake3_many_fn mk__blake3_many_avx512;
#endif

/* Runs a batch on the chosen back end's kernel, a lane or two left over
 * on the portable one. */
void mk__blake3_hash_many(const mk__blake3_batch *b, size_t n, uint8_t *out);

/* Name of the chosen back end. */
const char *mk__blake3_backend(void);

/* Forgets the choice so that the next call makes it again, reading
 * MK_BLAKE3_IMPL anew: for tests that run every back end in one process.
 * Harmless to hashing in other threads: all back ends agree. */
void mk__blake3_reset(void);

#endif /* MK_BLAKE3_IMPL_H */
