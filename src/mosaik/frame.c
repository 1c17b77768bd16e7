/* Link framing without a socket (src/mosaik/frame.h). */
#include "mosaik/frame.h"

#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"

/* Once a burst of large frames has passed, a receive buffer bigger than
 * this is given back rather than kept for the life of the link. */
#define IN_KEEP_MAX (256u * 1024u)

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void mk__close_encode(mk_buf *b, uint32_t code, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > MK__CLOSE_REASON_MAX)
        rlen = MK__CLOSE_REASON_MAX;
    size_t plen = varint_len(code) + varint_len(rlen) + rlen;
    mk_put_u32be(b, MK__FRAME_CLOSE_BIT | (uint32_t)plen);
    mk_put_varint(b, code);
    mk_put_bytes(b, reason, rlen);
}

int mk__close_decode(const uint8_t *p, size_t len, uint32_t *code,
                     const uint8_t **reason, size_t *reason_len)
{
    /* The smallest close payload is a one-byte code and an empty reason. */
    if (len < 2)
        return MK_EPROTO;
    mk_reader r;
    mk_reader_init(&r, p, len);
    uint64_t c = mk_get_varint(&r);
    size_t n = 0;
    const uint8_t *s = mk_get_bytes(&r, &n, MK__CLOSE_MAX);
    if (mk_reader_done(&r) != 0 || c > UINT32_MAX)
        return MK_EPROTO;
    *code = (uint32_t)c;
    *reason = s;
    *reason_len = n;
    return 0;
}

void mk__frame_in_init(mk__frame_in *in, size_t max_frame)
{
    memset(in, 0, sizeof *in);
    in->max_frame = max_frame > MK__FRAME_LEN_MAX ? MK__FRAME_LEN_MAX
                                                  : max_frame;
}

void mk__frame_in_free(mk__frame_in *in)
{
    free(in->buf);
    mk__frame_in_init(in, in->max_frame);
}

/* Bytes the frame at the front will occupy once whole, when its header has
 * arrived and passes; otherwise just the header. */
static size_t front_need(const mk__frame_in *in)
{
    size_t have = in->len - in->off;
    if (have < MK__FRAME_HDR)
        return MK__FRAME_HDR;
    const uint8_t *p = in->buf + in->off;
    uint32_t h = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                 (uint32_t)p[2] << 8 | p[3];
    size_t n = h & MK__FRAME_LEN_MAX;
    /* A header next() will refuse needs no room: the caller sees the
     * error before reading more. */
    if ((h & MK__FRAME_CLOSE_BIT) ? n > MK__CLOSE_MAX : n > in->max_frame)
        return MK__FRAME_HDR;
    return MK__FRAME_HDR + n;
}

uint8_t *mk__frame_in_space(mk__frame_in *in, size_t *avail)
{
    size_t have = in->len - in->off;
    size_t need = front_need(in);
    /* The front frame must end up whole where it starts (it is delivered in
     * place), so it moves to the front when it would not fit after its
     * start, or when the buffer is about to grow anyway. */
    if (in->off > 0 &&
        (in->cap - in->off < need || in->cap - in->len < MK__FRAME_IN_CHUNK)) {
        memmove(in->buf, in->buf + in->off, have);
        in->off = 0;
        in->len = have;
    }
    /* Room grows with the bytes that actually arrived, a read's worth at a
     * time, not with the length a header announces: a peer could announce
     * max_frame and send nothing more, and a few such headers would pin
     * that much memory each. Doubling keeps the copying linear; the frame
     * known to be coming bounds it, so the last step does not overshoot. */
    if (in->cap - in->len < MK__FRAME_IN_CHUNK) {
        size_t want = in->len + MK__FRAME_IN_CHUNK;
        size_t bound = in->off + need + MK__FRAME_IN_CHUNK;
        size_t cap = in->cap ? in->cap : MK__FRAME_IN_CHUNK * 2;
        while (cap < want)
            cap *= 2;
        if (need > have && cap > bound)
            cap = bound > want ? bound : want;
        uint8_t *p = realloc(in->buf, cap);
        if (!p)
            return NULL;
        in->buf = p;
        in->cap = cap;
    }
    *avail = in->cap - in->len;
    return in->buf + in->len;
}

void mk__frame_in_commit(mk__frame_in *in, size_t n)
{
    in->len += n;
}

int mk__frame_in_release(mk__frame_in *in)
{
    if (in->cap > IN_KEEP_MAX) {
        /* Nothing is pending, and the frame handed out by the previous
         * call is dead by now: give a grown buffer back. */
        free(in->buf);
        in->buf = NULL;
        in->cap = in->off = in->len = 0;
    }
    return 0;
}
