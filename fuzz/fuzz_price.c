/* libFuzzer target for the PriceUpdate decoder (coalition/price_feed.h):
 * what every consumer of a price feed, and the fx-correlator confluence's
 * surface decoder, runs on bytes from the network.
 *
 * A decodable input must re-encode to exactly the same bytes: one
 * encoding per update is what lets an evidence pointer name a fact by the
 * hash of its bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/price_feed.h"

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c))                                                             \
            abort();                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    co_price_update u;
    if (co_price_update_decode(&u, data, size) != 0)
        return 0;
    CHECK(size <= CO_PRICE_UPDATE_MAX);
    mk_buf b;
    mk_buf_init(&b);
    CHECK(co_price_update_encode(&u, &b) == 0);
    CHECK(b.len == size && memcmp(b.data, data, size) == 0);
    /* The datum codec is the same decoder. */
    co_price_update v;
    CHECK(co_price_update_codec.decode(data, size, &v) == 0);
    CHECK(v.seq == u.seq && v.price_micro == u.price_micro &&
          strcmp(v.pair, u.pair) == 0);
    mk_buf_free(&b);
    return 0;
}
