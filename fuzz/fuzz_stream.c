/* libFuzzer target for what a stream peer decodes from the other side
 * before trusting anything (src/mosaik/stream_internal.h): the consumer's
 * handshake (read by the producer's node), the producer's StartStream
 * (read by the consumer), and the string datum codec.
 *
 * Any input is either refused with MK_EDECODE or decodes; whatever decodes
 * must encode back to exactly the input (every message has one spelling,
 * so two peers can never disagree about what was said). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/codec.h"
#include "mosaik/error.h"
#include "mosaik/stream.h"
#include "mosaik/stream_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const mk_buf *b, const uint8_t *data, size_t size)
{
    if (b->err || b->len != size || (size && memcmp(b->data, data, size)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mk_buf b;
    mk_buf_init(&b);

    mk__stream_hello h;
    int rc = mk__stream_handshake_decode(data, size, &h);
    if (rc == 0) {
        if (h.criteria_len > MK_STREAM_CRITERIA_MAX ||
            h.criteria + h.criteria_len > data + size)
            abort();
        if (mk__stream_handshake_encode(&b, &h.network, &h.stream,
                                        h.criteria, h.criteria_len) != 0)
            abort();
        same(&b, data, size);
    } else if (rc != MK_EDECODE) {
        abort();
    }

    mk_id net, stream;
    rc = mk__stream_start_decode(data, size, &net, &stream);
    if (rc == 0) {
        mk_buf_reset(&b);
        mk__stream_start_encode(&b, &net, &stream);
        same(&b, data, size);
    } else if (rc != MK_EDECODE) {
        abort();
    }

    char *s = NULL;
    rc = mk_datum_codec_string.decode(data, size, &s);
    if (rc == 0) {
        mk_buf_reset(&b);
        if (mk_datum_codec_string.encode(&s, &b) != 0)
            abort();
        same(&b, data, size);
        mk_datum_codec_string.clear(&s);
        if (s)
            abort();
    } else if (rc != MK_EDECODE || s) {
        abort();
    }

    mk_buf_free(&b);
    return 0;
}
