/* libFuzzer target for what a blob fetcher or server reads from a peer
 * (src/mosaik/blob_internal.h): the GET a server decodes, the HEADER a
 * fetcher decodes, and the chaining values a HEADER carries, which the
 * fetcher folds into a root before trusting any of them.
 *
 * Input: one byte choosing the decoder, then its bytes. A message that
 * decodes must encode back to exactly its bytes (one spelling each); a
 * HEADER's chaining values must lie inside the input; folding any list
 * of chaining values, and hashing a segment from any bytes at any index,
 * must not crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/blob_internal.h"
#include "mosaik/error.h"

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c))                                                             \
            abort();                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const mk_buf *b, const uint8_t *p, size_t n)
{
    CHECK(!b->err && b->len == n && (n == 0 || memcmp(b->data, p, n) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    mk_buf b;
    mk_buf_init(&b);
    switch (data[0] % 4) {
    case 0: {
        mk__blob_get g;
        if (mk__blob_get_decode(p, n, &g) == 0) {
            CHECK(g.offset <= MK_BLOB_MAX_SIZE);
            mk__blob_get_encode(&b, &g);
            same(&b, p, n);
        }
        break;
    }
    case 1: {
        mk__blob_header h;
        if (mk__blob_header_decode(p, n, &h) == 0) {
            CHECK(h.size <= MK_BLOB_MAX_SIZE);
            if (h.n_cvs) {
                CHECK(h.n_cvs == mk__blob_segments(h.size));
                CHECK(h.cvs >= p && h.cvs + h.n_cvs * 32 <= p + n);
                mk_id root;
                mk__blob_root(h.cvs, h.n_cvs, &root);
            }
            mk__blob_header_encode(&b, &h);
            same(&b, p, n);
        }
        break;
    }
    case 2: {
        /* Any run of chaining values folds. */
        if (n >= 64) {
            mk_id root;
            mk__blob_root(p, n / 32, &root);
        }
        break;
    }
    default: {
        /* A segment at any index, of any length up to a segment. */
        if (n < 8)
            break;
        uint64_t index = 0;
        for (int i = 0; i < 8; i++)
            index = index << 8 | p[i];
        size_t len = n - 8 < MK_BLOB_SEGMENT ? n - 8 : (size_t)MK_BLOB_SEGMENT;
        uint8_t cv[32];
        mk__blob_segment_cv(p + 8, len, index % (1u << 20), cv);
        break;
    }
    }
    mk_buf_free(&b);
    return 0;
}
