/* The binary codec (include/mosaik/codec.h). */
#include "mosaik/codec.h"

#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"

void mk_buf_init(mk_buf *b)
{
    memset(b, 0, sizeof *b);
}

void mk_buf_free(mk_buf *b)
{
    free(b->data);
    mk_buf_init(b);
}

void mk_buf_reset(mk_buf *b)
{
    b->len = 0;
    b->err = 0;
}

int mk_buf_reserve(mk_buf *b, size_t extra)
{
    if (b->err)
        return b->err;
    if (extra > SIZE_MAX - b->len) {
        b->err = MK_ENOMEM;
        return b->err;
    }
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->err = MK_ENOMEM;
        return b->err;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

uint8_t *mk_buf_detach(mk_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    *len = b->len;
    mk_buf_init(b);
    return p;
}

void mk_put_raw(mk_buf *b, const void *p, size_t n)
{
    if (n == 0 || mk_buf_reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void mk_put_u8(mk_buf *b, uint8_t v)
{
    mk_put_raw(b, &v, 1);
}

void mk_put_u32be(mk_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    mk_put_raw(b, x, 4);
}

void mk_put_varint(mk_buf *b, uint64_t v)
{
    uint8_t x[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        x[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    mk_put_raw(b, x, n);
}

void mk_put_i64(mk_buf *b, int64_t v)
{
    mk_put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void mk_put_bytes(mk_buf *b, const void *p, size_t n)
{
    mk_put_varint(b, n);
    mk_put_raw(b, p, n);
}

void mk_put_str(mk_buf *b, const char *s)
{
    mk_put_bytes(b, s, strlen(s));
}

void mk_put_id(mk_buf *b, const mk_id *id)
{
    mk_put_raw(b, id->b, MK_ID_LEN);
}

/* ---- reading ------------------------------------------------------------ */

void mk_reader_init(mk_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->at = 0;
    r->err = 0;
}

static int fail(mk_reader *r)
{
    r->err = MK_EDECODE;
    return r->err;
}

const uint8_t *mk_get_raw(mk_reader *r, size_t n)
{
    if (r->err)
        return NULL;
    if (n > r->len - r->at) {
        fail(r);
        return NULL;
    }
    const uint8_t *p = r->p + r->at;
    r->at += n;
    return p;
}

uint8_t mk_get_u8(mk_reader *r)
{
    const uint8_t *p = mk_get_raw(r, 1);
    return p ? p[0] : 0;
}

uint32_t mk_get_u32be(mk_reader *r)
{
    const uint8_t *p = mk_get_raw(r, 4);
    if (!p)
        return 0;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

uint64_t mk_get_varint(mk_reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        const uint8_t *p = mk_get_raw(r, 1);
        if (!p)
            return 0;
        /* The tenth byte may only carry the top bit of a u64. */
        if (shift == 63 && *p > 1) {
            fail(r);
            return 0;
        }
        v |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80)) {
            /* Refuse overlong forms so every value has one encoding. */
            if (*p == 0 && shift > 0) {
                fail(r);
                return 0;
            }
            return v;
        }
    }
    fail(r);
    return 0;
}

int64_t mk_get_i64(mk_reader *r)
{
    uint64_t z = mk_get_varint(r);
    return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

const uint8_t *mk_get_bytes(mk_reader *r, size_t *n, size_t max)
{
    uint64_t len = mk_get_varint(r);
    *n = 0;
    if (r->err)
        return NULL;
    if (len > max || len > r->len - r->at) {
        fail(r);
        return NULL;
    }
    *n = (size_t)len;
    return mk_get_raw(r, (size_t)len);
}

char *mk_get_strdup(mk_reader *r, size_t max)
{
    size_t n;
    const uint8_t *p = mk_get_bytes(r, &n, max);
    if (!p)
        return NULL;
    if (memchr(p, '\0', n)) {
        fail(r);
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        r->err = MK_ENOMEM;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void mk_get_id(mk_reader *r, mk_id *out)
{
    const uint8_t *p = mk_get_raw(r, MK_ID_LEN);
    if (p)
        memcpy(out->b, p, MK_ID_LEN);
    else
        memset(out->b, 0, MK_ID_LEN);
}

size_t mk_get_count(mk_reader *r, size_t max, size_t min_item)
{
    uint64_t n = mk_get_varint(r);
    if (r->err)
        return 0;
    size_t left = r->len - r->at;
    if (n > max || (min_item && n > left / min_item)) {
        fail(r);
        return 0;
    }
    return (size_t)n;
}

int mk_reader_done(const mk_reader *r)
{
    if (r->err)
        return r->err;
    return r->at == r->len ? 0 : MK_EDECODE;
}

void mk_store_le64(uint8_t p[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t mk_load_le64(const uint8_t p[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
