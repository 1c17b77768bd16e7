/* libFuzzer target for announce 1.1's anti-entropy frames, read the way
 * a neighbour reads them (discovery.c): DIGEST, WANT and REPAIR, chosen
 * by the kind byte that starts every discovery frame. A DIGEST that is
 * read whole lists its items strictly ascending inside its range [lo,
 * hi) and re-encodes to the very bytes read (one encoding per value);
 * counts never pass their bounds, whatever the input claims; a REPAIR's
 * entries are each within MK_ENTRY_MAX_WIRE, and those that decode
 * re-encode to their signed bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/codec.h"
#include "mosaik/entry.h"
#include "mosaik/error.h"
#include "mosaik/node_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_digest(const uint8_t *data, size_t size)
{
    mk_reader r;
    uint8_t flags;
    mk_peer_id lo, hi, prev, id;
    bool hi_end;
    size_t count;
    mk_reader_init(&r, data, size);
    if (mk__digest_open(&r, &flags, &lo, &hi, &hi_end, &count) != 0)
        return;
    if (flags > 3 || count > MK__DIGEST_ITEMS_IN ||
        hi_end != ((flags & 2) != 0))
        abort();
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, flags);
    mk_put_id(&b, &lo);
    mk_put_id(&b, &hi);
    mk_put_varint(&b, count);
    size_t i;
    for (i = 0; i < count; i++) {
        int64_t start, update;
        if (mk__digest_item(&r, &lo, hi_end ? NULL : &hi, i ? &prev : NULL,
                            &id, &start, &update) != 0)
            break;
        if (mk_id_cmp(&id, &lo) < 0 || (!hi_end && mk_id_cmp(&id, &hi) >= 0) ||
            (i && mk_id_cmp(&id, &prev) <= 0))
            abort();
        prev = id;
        mk_put_id(&b, &id);
        mk_put_i64(&b, start);
        mk_put_i64(&b, update);
    }
    /* Read whole: what was read is exactly what a sender would write. */
    if (i == count && !b.err &&
        (b.len != r.at || memcmp(b.data, data, b.len) != 0))
        abort();
    mk_buf_free(&b);
}

static void check_want(const uint8_t *data, size_t size)
{
    mk_reader r;
    size_t count;
    mk_reader_init(&r, data, size);
    if (mk__want_open(&r, &count) != 0)
        return;
    /* The count is checked against the bytes left: the ids are there. */
    if (count > MK__DIGEST_ITEMS_IN || count * 32 > size - r.at)
        abort();
    for (size_t i = 0; i < count; i++) {
        mk_peer_id id;
        mk_get_id(&r, &id);
        if (r.err)
            abort();
    }
}

static void check_repair(const uint8_t *data, size_t size)
{
    mk_reader r;
    size_t count;
    mk_reader_init(&r, data, size);
    if (mk__repair_open(&r, &count) != 0)
        return;
    if (count > MK__SNAPSHOT_CHUNK_ENTRIES_IN)
        abort();
    for (size_t i = 0; i < count; i++) {
        const uint8_t *w;
        size_t n;
        int rc = mk__discovery_read_entry(&r, &w, &n);
        if (rc < 0) {
            if (rc == MK_EMSGSIZE && n <= MK_ENTRY_MAX_WIRE)
                abort();
            return;
        }
        mk_peer_entry e;
        if (mk_entry_decode(&e, w, n) == 0) {
            if (e.wire_len != n || memcmp(e.wire, w, n) != 0)
                abort();
            mk_entry_free(&e);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0]) {
    case MK__MSG_DIGEST: check_digest(data + 1, size - 1); break;
    case MK__MSG_WANT: check_want(data + 1, size - 1); break;
    case MK__MSG_REPAIR: check_repair(data + 1, size - 1); break;
    default: break;
    }
    return 0;
}
