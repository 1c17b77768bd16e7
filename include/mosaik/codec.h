/* The compact binary codec every wire message uses.
 *
 * Varints are unsigned LEB128 (at most 10 bytes), signed integers are
 * zigzag varints, byte strings and strings are a varint length then the
 * bytes, ids are their 32 raw bytes. Both sides keep a sticky error so a
 * message is written or read as straight-line code and checked once.
 *
 * Every read is bounded: a length or count larger than the bytes left (or
 * than the caller's maximum) fails with MK_EDECODE instead of allocating.
 */
#ifndef MK_CODEC_H
#define MK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "mosaik/id.h"

/* A growable output buffer. `err` becomes MK_ENOMEM on the first failed
 * growth; later puts are ignored. */
typedef struct mk_buf {
    uint8_t *data;
    size_t len, cap;
    int err;
} mk_buf;

void mk_buf_init(mk_buf *b);
void mk_buf_free(mk_buf *b);          /* frees data; b can be reused */
void mk_buf_reset(mk_buf *b);         /* len = 0, keeps memory, clears err */
int mk_buf_reserve(mk_buf *b, size_t extra);
/* Hands the bytes to the caller (free() them); b is left empty. */
uint8_t *mk_buf_detach(mk_buf *b, size_t *len);

void mk_put_u8(mk_buf *b, uint8_t v);
void mk_put_u32be(mk_buf *b, uint32_t v);
void mk_put_varint(mk_buf *b, uint64_t v);
void mk_put_i64(mk_buf *b, int64_t v);                   /* zigzag */
void mk_put_raw(mk_buf *b, const void *p, size_t n);     /* no length */
void mk_put_bytes(mk_buf *b, const void *p, size_t n);   /* varint len */
void mk_put_str(mk_buf *b, const char *s);               /* varint len */
void mk_put_id(mk_buf *b, const mk_id *id);

/* 64-bit little-endian fields at fixed offsets (log envelopes, notes,
 * records, the durable watermark): no buffer, no error to carry. */
void mk_store_le64(uint8_t p[8], uint64_t v);
uint64_t mk_load_le64(const uint8_t p[8]);

/* A bounded cursor over received bytes. `err` becomes MK_EDECODE on the
 * first malformed or out-of-bounds read; later gets return zeroes. */
typedef struct mk_reader {
    const uint8_t *p;
    size_t len, at;
    int err;
} mk_reader;

void mk_reader_init(mk_reader *r, const void *p, size_t len);
uint8_t mk_get_u8(mk_reader *r);
uint32_t mk_get_u32be(mk_reader *r);
uint64_t mk_get_varint(mk_reader *r);
int64_t mk_get_i64(mk_reader *r);
/* `n` raw bytes (a pointer into the input), or NULL. */
const uint8_t *mk_get_raw(mk_reader *r, size_t n);
/* A length-prefixed byte string of at most `max` bytes (pointer into the
 * input, length in *n), or NULL. */
const uint8_t *mk_get_bytes(mk_reader *r, size_t *n, size_t max);
/* A length-prefixed string of at most `max` bytes with no NUL inside,
 * copied and NUL-terminated into malloc'd memory (caller frees), or NULL. */
char *mk_get_strdup(mk_reader *r, size_t max);
void mk_get_id(mk_reader *r, mk_id *out);
/* A count of items that each take at least `min_item` bytes: refuses a
 * count above `max` or above what the remaining bytes could hold. */
size_t mk_get_count(mk_reader *r, size_t max, size_t min_item);
/* 0 when every byte was read without error, else MK_EDECODE. */
int mk_reader_done(const mk_reader *r);

#endif /* MK_CODEC_H */
