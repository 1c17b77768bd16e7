/* Ids: the 32-byte fingerprints that name everything on a mosaik universe.
 *
 * Networks, streams, groups, stores, organisms, confluences and coalitions
 * are all addressed by an mk_id made from names and configs with unkeyed
 * BLAKE3, never looked up in a registry. Two parties that start from the
 * same published config derive the same bytes; a typo derives different
 * ones.
 */
#ifndef MK_ID_H
#define MK_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MK_ID_LEN 32
#define MK_ID_HEX_LEN 64

typedef struct mk_id {
    uint8_t b[MK_ID_LEN];
} mk_id;

/* The universe every coalition lives on: id("mosaik.universe"). */
extern const mk_id MK_UNIVERSE;

/* id(s): a string of exactly 64 hex characters (either case) is decoded;
 * any other string (including "0x…", 63 or 65 characters) is hashed with
 * BLAKE3. `s` is NUL-terminated. Cannot fail. */
void mk_id_from_str(mk_id *out, const char *s);

/* id() over `len` bytes that need not be NUL-terminated. */
void mk_id_from_strn(mk_id *out, const char *s, size_t len);

/* out = blake3(data). */
void mk_id_hash(mk_id *out, const void *data, size_t len);

/* derive(x, label) = blake3(x ‖ label): plain hash mode, id first.
 * `out` may alias `x`. */
void mk_id_derive(mk_id *out, const mk_id *x, const void *label, size_t len);

/* derive() with a NUL-terminated string label (its bytes, no terminator). */
void mk_id_derive_str(mk_id *out, const mk_id *x, const char *label);

/* Writes 64 lowercase hex characters and a NUL into `out`. Returns `out`. */
char *mk_id_hex(const mk_id *id, char out[MK_ID_HEX_LEN + 1]);

/* Decodes exactly 64 hex characters (either case) from `hex` (no NUL
 * needed). Returns 0, or MK_EINVAL with `out` untouched. */
int mk_id_from_hex(mk_id *out, const char *hex, size_t len);

/* True when `s` (of `len` bytes) is exactly 64 hex characters. */
bool mk_id_is_hex(const char *s, size_t len);

/* memcmp order over the 32 bytes: <0, 0, >0. */
int mk_id_cmp(const mk_id *a, const mk_id *b);

static inline bool mk_id_eq(const mk_id *a, const mk_id *b)
{
    return mk_id_cmp(a, b) == 0;
}

/* Generic hex helpers: encode `len` bytes as 2*len lowercase characters plus
 * a NUL; decode exactly 2*len hex characters (returns 0 or MK_EINVAL). */
void mk_hex_encode(const void *bytes, size_t len, char *out);
int mk_hex_decode(void *out, size_t len, const char *hex, size_t hex_len);

#endif /* MK_ID_H */
