/* libFuzzer target for what discovery decodes from the network: signed
 * peer entries, departures and catalog snapshot chunks. Anything accepted
 * must re-encode to the very bytes that were signed (one encoding per
 * entry) and be no larger than MK_ENTRY_MAX_WIRE, which anything larger
 * is refused for before it is parsed; a departure that verifies must
 * re-encode byte for byte. An input starting with the SNAPSHOT kind byte
 * is also read as a sync chunk, the way a node reads one (network, tier,
 * count, then each entry within the size bound). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/codec.h"
#include "mosaik/entry.h"
#include "mosaik/error.h"
#include "mosaik/node_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const uint8_t *data, size_t size)
{
    mk_peer_entry e;
    int rc = mk_entry_decode(&e, data, size);
    if (size > MK_ENTRY_MAX_WIRE && rc != MK_EMSGSIZE)
        abort();
    if (rc != 0)
        return;
    if (e.wire_len != size || memcmp(e.wire, data, size) != 0)
        abort();
    /* A copy carries the same signed bytes. */
    mk_peer_entry c;
    if (mk_entry_copy(&c, &e) == 0) {
        if (c.wire_len != e.wire_len ||
            memcmp(c.wire, e.wire, e.wire_len) != 0)
            abort();
        mk_entry_free(&c);
    }
    mk_entry_free(&e);
}

static void check_chunk(const uint8_t *data, size_t size)
{
    mk_reader r;
    mk_id net;
    uint8_t tier;
    size_t count;
    mk_reader_init(&r, data, size);
    if (mk__snapshot_chunk_open(&r, &net, &tier, &count) != 0)
        return;
    if (tier > 2 || count > MK__SNAPSHOT_CHUNK_ENTRIES_IN)
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
        if (n > MK_ENTRY_MAX_WIRE)
            abort();
        check_entry(w, n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_entry(data, size);
    mk_departure d;
    if (mk_departure_decode(&d, data, size) == 0) {
        uint8_t w[MK_DEPARTURE_WIRE_LEN];
        mk_departure_encode(&d, w);
        if (size != sizeof w || memcmp(w, data, size) != 0)
            abort();
    }
    if (size > 0 && data[0] == MK__MSG_SNAPSHOT)
        check_chunk(data + 1, size - 1);
    return 0;
}
