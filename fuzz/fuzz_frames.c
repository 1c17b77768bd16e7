/* libFuzzer target for link framing (src/mosaik/frame.h): the bytes a
 * peer's TLS session hands us after decryption.
 *
 * Input: two bytes choosing max_frame, one byte seeding how the stream is
 * cut into reads, then the stream. The stream is parsed twice, whole with
 * mk__frame_parse and read by read through mk__frame_in as a link does;
 * both must yield the same frames and stop at the same error. Every close
 * frame is decoded, and a decodable one must re-encode to the same bytes.
 * The receive buffer must stay within one frame plus a read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/codec.h"
#include "mosaik/error.h"
#include "mosaik/frame.h"

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c))                                                             \
            abort();                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_close(const uint8_t *hdr, const mk__frame *f)
{
    uint32_t code;
    const uint8_t *reason;
    size_t rlen;
    if (mk__close_decode(f->data, f->len, &code, &reason, &rlen) != 0)
        return;
    if (rlen > MK__CLOSE_REASON_MAX || memchr(reason, '\0', rlen))
        return; /* encode would cut it or stop at the NUL */
    char *s = malloc(rlen + 1);
    CHECK(s);
    memcpy(s, reason, rlen);
    s[rlen] = '\0';
    mk_buf b;
    mk_buf_init(&b);
    mk__close_encode(&b, code, s);
    CHECK(b.err == 0);
    /* The codec admits one encoding per value, so decode∘encode is the
     * identity on anything that decodes. */
    CHECK(b.len == MK__FRAME_HDR + f->len);
    CHECK(memcmp(b.data, hdr, b.len) == 0);
    mk_buf_free(&b);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t max_frame = ((size_t)data[0] << 8 | data[1]) * 16; /* ≤ ~1 MiB */
    uint32_t cut = data[2] * 2654435761u + 1;
    const uint8_t *p = data + 3;
    size_t n = size - 3;

    /* Whole: the reference sequence. */
    size_t at = 0, nframes = 0;
    int end = 0;
    for (;;) {
        mk__frame f;
        int r = mk__frame_parse(p + at, n - at, max_frame, &f);
        if (r != 1) {
            end = r;
            break;
        }
        if (f.close)
            check_close(p + at, &f);
        at += MK__FRAME_HDR + f.len;
        nframes++;
    }
    CHECK(end == 0 || end == MK_EMSGSIZE || end == MK_EPROTO);

    /* Read by read, as a link receives it. */
    mk__frame_in in;
    mk__frame_in_init(&in, max_frame);
    size_t fed = 0, got = 0, ref = 0;
    int err = 0;
    size_t bound = 2 * ((max_frame > MK__CLOSE_MAX ? max_frame : MK__CLOSE_MAX) +
                        MK__FRAME_HDR + MK__FRAME_IN_CHUNK);
    while (err == 0) {
        mk__frame f = {NULL, 0, false}; /* set when r == 1 */
        int r = mk__frame_in_next(&in, &f);
        if (r == 1) {
            /* Same frame as the whole parse found at this offset. */
            mk__frame g;
            CHECK(got < nframes);
            CHECK(mk__frame_parse(p + ref, n - ref, max_frame, &g) == 1);
            CHECK(g.len == f.len && g.close == f.close);
            CHECK(f.len == 0 || memcmp(g.data, f.data, f.len) == 0);
            ref += MK__FRAME_HDR + f.len;
            got++;
            continue;
        }
        if (r < 0) {
            err = r;
            break;
        }
        if (fed == n)
            break;
        size_t avail;
        uint8_t *dst = mk__frame_in_space(&in, &avail);
        CHECK(dst && avail >= MK__FRAME_IN_CHUNK);
        CHECK(in.cap <= bound);
        cut = cut * 1103515245u + 12345u;
        size_t k = 1 + (cut >> 8) % 40000;
        if (k > avail)
            k = avail;
        if (k > n - fed)
            k = n - fed;
        memcpy(dst, p + fed, k);
        mk__frame_in_commit(&in, k);
        fed += k;
    }
    CHECK(got == nframes);
    CHECK(err == end);
    mk__frame_in_free(&in);

    /* The raw input as a close payload too. */
    uint32_t code;
    const uint8_t *reason;
    size_t rlen;
    (void)mk__close_decode(p, n, &code, &reason, &rlen);
    return 0;
}
