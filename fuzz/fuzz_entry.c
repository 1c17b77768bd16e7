/* libFuzzer target for what discovery decodes from the network: signed
 * peer entries and departures. Anything accepted must re-encode to the
 * very bytes that were signed (one encoding per entry), and a departure
 * that verifies must re-encode byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mk_peer_entry e;
    if (mk_entry_decode(&e, data, size) == 0) {
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
    mk_departure d;
    if (mk_departure_decode(&d, data, size) == 0) {
        uint8_t w[MK_DEPARTURE_WIRE_LEN];
        mk_departure_encode(&d, w);
        if (size != sizeof w || memcmp(w, data, size) != 0)
            abort();
    }
    return 0;
}
