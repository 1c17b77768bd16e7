/* PriceUpdate, the price-feed organism's datum (coalition/price_feed.h).
 *
 * The encoding is canonical on purpose: a confluence's evidence pointer
 * names a fact by blake3 of its bytes, so two encodings of one update
 * would let the same fact carry two names (and a verifier reject a true
 * commit). mk_codec's varints are already canonical; the decoder adds the
 * rest (version, seq ≥ 1, the pair's alphabet, no trailing bytes).
 */
#include "coalition/price_feed.h"

#include <stdio.h>
#include <string.h>

#include "coalition/error.h"
#include "coalition/identity.h"
#include "mosaik/error.h"

static bool pair_ok(const char *p, size_t n)
{
    if (n == 0 || n > CO_PRICE_PAIR_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '/' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int co_price_update_encode(const co_price_update *u, mk_buf *out)
{
    size_t n = strnlen(u->pair, sizeof u->pair);
    if (u->epoch_ms < 0 || u->seq == 0 || n == sizeof u->pair ||
        !pair_ok(u->pair, n))
        return MK_EINVAL;
    mk_put_u8(out, CO_PRICE_UPDATE_VERSION);
    mk_put_varint(out, (uint64_t)u->epoch_ms);
    mk_put_varint(out, u->seq);
    mk_put_i64(out, u->unix_ms);
    mk_put_bytes(out, u->pair, n);
    mk_put_i64(out, u->price_micro);
    return out->err;
}

int co_price_update_decode(co_price_update *u, const uint8_t *bytes,
                           size_t len)
{
    mk_reader r;
    mk_reader_init(&r, bytes, len);
    memset(u, 0, sizeof *u);
    uint8_t v = mk_get_u8(&r);
    uint64_t epoch = mk_get_varint(&r);
    u->seq = mk_get_varint(&r);
    u->unix_ms = mk_get_i64(&r);
    size_t n;
    const uint8_t *pair = mk_get_bytes(&r, &n, CO_PRICE_PAIR_MAX);
    u->price_micro = mk_get_i64(&r);
    if (mk_reader_done(&r) != 0 || v != CO_PRICE_UPDATE_VERSION ||
        epoch > INT64_MAX || u->seq == 0 || !pair ||
        !pair_ok((const char *)pair, n))
        return MK_EDECODE;
    u->epoch_ms = (int64_t)epoch;
    memcpy(u->pair, pair, n);
    u->pair[n] = '\0';
    return 0;
}

static int codec_encode(const void *value, mk_buf *out)
{
    return co_price_update_encode(value, out);
}

static int codec_decode(const uint8_t *bytes, size_t len, void *out)
{
    return co_price_update_decode(out, bytes, len);
}

const mk_datum_codec co_price_update_codec = {
    .size = sizeof(co_price_update),
    .encode = codec_encode,
    .decode = codec_decode,
    .clear = NULL,
};

int co_price_feed_stream(const co_organism_ref *o, mk_id *out, char *err)
{
    mk_id stable;
    int rc = co_organism_stable_id(o, &stable, err);
    if (rc < 0)
        return rc;
    mk_stream_id(&stable, CO_PRICE_SURFACE, out);
    return 0;
}
