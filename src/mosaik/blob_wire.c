/* The blob protocol's messages (blob_internal.h): one encoding each, and
 * decoders that refuse every other byte string, since both come from
 * peers we do not trust. */
#include "blob_internal.h"

#include "mosaik/error.h"

void mk__blob_get_encode(mk_buf *b, const mk__blob_get *g)
{
    mk_put_u8(b, MK__BLOB_GET);
    mk_put_id(b, &g->hash);
    mk_put_varint(b, g->offset);
    mk_put_u8(b, g->flags);
}

int mk__blob_get_decode(const uint8_t *p, size_t n, mk__blob_get *g)
{
    mk_reader r;
    mk_reader_init(&r, p, n);
    if (mk_get_u8(&r) != MK__BLOB_GET)
        return MK_EDECODE;
    mk_get_id(&r, &g->hash);
    g->offset = mk_get_varint(&r);
    g->flags = mk_get_u8(&r);
    /* The codec refuses overlong varints, so this is the one spelling. */
    if (mk_reader_done(&r) != 0 || (g->flags & ~MK__BLOB_WANT_TREE) ||
        g->offset > MK_BLOB_MAX_SIZE)
        return MK_EDECODE;
    return 0;
}

void mk__blob_header_encode(mk_buf *b, const mk__blob_header *h)
{
    mk_put_u8(b, MK__BLOB_HEADER);
    mk_put_u8(b, h->status);
    mk_put_varint(b, h->size);
    mk_put_u8(b, h->shift);
    mk_put_varint(b, h->n_cvs);
    if (h->n_cvs)
        mk_put_raw(b, h->cvs, (size_t)h->n_cvs * 32);
}

int mk__blob_header_decode(const uint8_t *p, size_t n, mk__blob_header *h)
{
    mk_reader r;
    mk_reader_init(&r, p, n);
    if (mk_get_u8(&r) != MK__BLOB_HEADER)
        return MK_EDECODE;
    h->status = mk_get_u8(&r);
    h->size = mk_get_varint(&r);
    h->shift = mk_get_u8(&r);
    h->n_cvs = mk_get_count(&r, (size_t)mk__blob_segments(MK_BLOB_MAX_SIZE),
                            32);
    h->cvs = h->n_cvs ? mk_get_raw(&r, (size_t)h->n_cvs * 32) : NULL;
    if (mk_reader_done(&r) != 0 || h->status > MK__BLOB_BAD_REQUEST ||
        h->size > MK_BLOB_MAX_SIZE || h->shift != MK_BLOB_SEGMENT_SHIFT)
        return MK_EDECODE;
    uint64_t segs = mk__blob_segments(h->size);
    if (h->n_cvs != 0 && (segs < 2 || h->n_cvs != segs))
        return MK_EDECODE;
    return 0;
}
