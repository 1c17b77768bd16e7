/* BLAKE3: the hash every id in the system is made of.
 *
 * When Meson finds a system libblake3 through pkg-config this wraps it;
 * otherwise it is the project's own implementation: portable C plus SSE4.1,
 * AVX2 and AVX-512 paths chosen once at run time from the CPU's features
 * (MK_BLAKE3_IMPL=portable|sse41|avx2|avx512 in the environment asks for a
 * narrower one). Both produce the standard BLAKE3 output, checked against
 * `b3sum`.
 *
 * A hasher lives in caller memory, needs no cleanup and may be copied (a
 * copy continues independently from the same state). Hashers are not shared
 * between threads; distinct hashers may be used from any threads at once.
 */
#ifndef MK_BLAKE3_H
#define MK_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

#define MK_BLAKE3_OUT_LEN 32
#define MK_BLAKE3_KEY_LEN 32
#define MK_BLAKE3_BLOCK_LEN 64
#define MK_BLAKE3_CHUNK_LEN 1024
/* Enough chaining values for 2^54 chunks: any input a size_t can hold. */
#define MK_BLAKE3_MAX_DEPTH 54

/* Private fields: use only the functions below. The two back ends keep
 * different state in the same space; `sys` is sized for libblake3's own
 * hasher (1912 bytes in the 1.x series, checked when that back end is
 * built). */
typedef struct mk_blake3_hasher {
    union {
        struct {
            uint32_t key[8];
            uint32_t cv[8];    /* of the open chunk, after blocks_done */
            uint64_t counter;  /* index of the open chunk */
            uint8_t buf[MK_BLAKE3_BLOCK_LEN];
            uint8_t buf_len;
            uint8_t blocks_done;
            uint8_t flags;     /* 0 or KEYED_HASH, for every node */
            uint8_t stack_len;
            uint8_t stack[(MK_BLAKE3_MAX_DEPTH + 1) * MK_BLAKE3_OUT_LEN];
        };
        uint64_t sys[240];
    };
} mk_blake3_hasher;

/* Plain hash mode. Cannot fail. */
void mk_blake3_init(mk_blake3_hasher *h);

/* Keyed hash mode with a 32-byte key (copied). Cannot fail. */
void mk_blake3_init_keyed(mk_blake3_hasher *h,
                          const uint8_t key[MK_BLAKE3_KEY_LEN]);

/* Absorbs `len` bytes; any split of an input gives the same hash. */
void mk_blake3_update(mk_blake3_hasher *h, const void *data, size_t len);

/* Writes `out_len` bytes of output (the extendable output: any length, the
 * first 32 bytes being the hash). Does not change `h`: more input may follow. */
void mk_blake3_final(const mk_blake3_hasher *h, uint8_t *out, size_t out_len);

/* One-shot: out = blake3(data). */
void mk_blake3(const void *data, size_t len, uint8_t out[MK_BLAKE3_OUT_LEN]);

/* Name of the implementation in use: "libblake3", "avx512", "avx2",
 * "sse41" or "portable". */
const char *mk_blake3_impl(void);

#endif /* MK_BLAKE3_H */
