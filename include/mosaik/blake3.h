/* BLAKE3: the hash every id in the system is made of.
 *
 * When Meson finds a system libblake3 through pkg-config this wraps it;
 * otherwise it is the project's own implementation: portable C plus SSE4.1,
 * AVX2 and AVX-512 paths chosen once at run time from the CPU's features.
 * Both produce the standard BLAKE3 output (checked against `b3sum`).
 *
 * A hasher lives in caller memory, needs no cleanup and may be copied (a
 * copy continues independently from the same state).
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

typedef struct mk_blake3_chunk {
    uint32_t cv[8];
    uint64_t counter;
    uint8_t buf[MK_BLAKE3_BLOCK_LEN];
    uint8_t buf_len;
    uint8_t blocks_done;
    uint8_t flags;
} mk_blake3_chunk;

/* Private fields: use only the functions below. */
typedef struct mk_blake3_hasher {
    uint32_t key[8];
    mk_blake3_chunk chunk;
    uint8_t cv_stack_len;
    uint8_t cv_stack[(MK_BLAKE3_MAX_DEPTH + 1) * MK_BLAKE3_OUT_LEN];
    void *sys; /* system libblake3 hasher when that backend is in use */
    uint8_t sys_mem[1920];
} mk_blake3_hasher;

/* Plain hash mode. Cannot fail. */
void mk_blake3_init(mk_blake3_hasher *h);

/* Keyed hash mode with a 32-byte key (copied). Cannot fail. */
void mk_blake3_init_keyed(mk_blake3_hasher *h, const uint8_t key[MK_BLAKE3_KEY_LEN]);

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
