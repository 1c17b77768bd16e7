/* Internal: link framing (include/mosaik/link.h), without any socket.
 *
 * A frame is a u32 big-endian header and a payload. The header's top bit
 * marks a close frame (payload: varint close code, varint-length reason);
 * otherwise the low 31 bits are the length of a data frame, at most the
 * link's max_frame. The parser is split from the link so the fuzzer can
 * drive the very code a link runs on decrypted bytes.
 */
#ifndef MK_FRAME_H
#define MK_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/codec.h"
#include "mosaik/error.h"

#define MK__FRAME_HDR 4
#define MK__FRAME_CLOSE_BIT 0x80000000u
/* The largest length a header can carry; max_frame is clamped to it. */
#define MK__FRAME_LEN_MAX 0x7fffffffu
/* A close frame is a code and a short reason: anything longer is a
 * protocol violation, and the bound keeps a hostile peer from making us
 * buffer megabytes just to read why it is leaving. */
#define MK__CLOSE_MAX 1024
/* Reasons we send are cut to this (the receiver has no use for more). */
#define MK__CLOSE_REASON_MAX 512

typedef struct mk__frame {
    const uint8_t *data; /* payload, points into the parser's buffer */
    size_t len;
    bool close;
} mk__frame;

/* Decodes one frame at the start of p[0..len): returns 1 and fills `f`
 * (the frame takes MK__FRAME_HDR + f->len bytes), 0 when more bytes are
 * needed, MK_EMSGSIZE when the header announces a data frame longer than
 * `max_frame`, or MK_EPROTO for a close frame longer than MK__CLOSE_MAX.
 * Errors are known from the header alone, before any payload arrives.
 * Inline, as the other per-frame steps here: a link receiving 64-byte
 * frames spent more on calls between files than on parsing. */
static inline int mk__frame_parse(const uint8_t *p, size_t len,
                                  size_t max_frame, mk__frame *f)
{
    if (len < MK__FRAME_HDR)
        return 0;
    uint32_t h = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                 (uint32_t)p[2] << 8 | p[3];
    bool close = (h & MK__FRAME_CLOSE_BIT) != 0;
    size_t n = h & MK__FRAME_LEN_MAX;
    /* Judge the header before waiting for the payload: a peer must not be
     * able to make us buffer what we would refuse anyway. */
    if (close && n > MK__CLOSE_MAX)
        return MK_EPROTO;
    if (!close && n > max_frame)
        return MK_EMSGSIZE;
    if (len - MK__FRAME_HDR < n)
        return 0;
    f->data = p + MK__FRAME_HDR;
    f->len = n;
    f->close = close;
    return 1;
}

/* The header of a data frame of `len` bytes (len <= MK__FRAME_LEN_MAX).
 * Inline: a link writes one per frame sent. */
static inline void mk__frame_header(uint8_t out[MK__FRAME_HDR], size_t len)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

/* Appends a whole close frame. `reason` may be NULL; it is cut to
 * MK__CLOSE_REASON_MAX bytes. */
void mk__close_encode(mk_buf *b, uint32_t code, const char *reason);

/* Decodes a close frame's payload: 0 with the code and the reason (a
 * pointer into `p`, not NUL-terminated), or MK_EPROTO when the code does
 * not fit 32 bits, the reason overruns, or bytes are left over. */
int mk__close_decode(const uint8_t *p, size_t len, uint32_t *code,
                     const uint8_t **reason, size_t *reason_len);

/* The receive side's buffer of decrypted bytes, parsed in place so that a
 * frame which arrived whole is delivered without a copy. It holds at most
 * one frame plus one read's worth, so its size is bounded by max_frame,
 * and it grows only as bytes arrive, never ahead of them. */
typedef struct mk__frame_in {
    uint8_t *buf;
    size_t off; /* start of unparsed bytes */
    size_t len; /* end of received bytes */
    size_t cap;
    size_t max_frame;
} mk__frame_in;

/* Room a read should be offered: the bytes received so far plus this much
 * always fits (one TLS record's plaintext). */
#define MK__FRAME_IN_CHUNK (16u * 1024u)

void mk__frame_in_init(mk__frame_in *in, size_t max_frame);
void mk__frame_in_free(mk__frame_in *in);

/* Where to put newly received bytes: returns a pointer to at least
 * MK__FRAME_IN_CHUNK free bytes (about as many as are held already, while
 * a large frame is arriving) and their count in *avail, or NULL on
 * MK_ENOMEM. Moves unparsed
 * bytes to the front, so any frame pointer handed out earlier is dead. */
uint8_t *mk__frame_in_space(mk__frame_in *in, size_t *avail);

/* Records that `n` bytes were written at the pointer space() returned. */
void mk__frame_in_commit(mk__frame_in *in, size_t n);

/* Gives back a buffer grown past what is kept while nothing is pending
 * (frame.c); mk__frame_in_next's slow step. Returns 0. */
int mk__frame_in_release(mk__frame_in *in);

/* The next complete frame, consumed: 1 and `f`, 0 when more bytes are
 * needed, or mk__frame_parse's errors. `f` is valid until the next call to
 * any mk__frame_in function. */
static inline int mk__frame_in_next(mk__frame_in *in, mk__frame *f)
{
    if (in->off == in->len)
        return mk__frame_in_release(in);
    int r = mk__frame_parse(in->buf + in->off, in->len - in->off,
                            in->max_frame, f);
    if (r == 1)
        in->off += MK__FRAME_HDR + f->len;
    return r;
}

/* Bytes received but not yet returned as frames. */
static inline size_t mk__frame_in_buffered(const mk__frame_in *in)
{
    return in->len - in->off;
}

#endif /* MK_FRAME_H */
