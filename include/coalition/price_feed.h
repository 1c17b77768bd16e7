/* PriceUpdate: the datum of the price-feed organism's one public surface.
 *
 * A price feed is a standalone organism (examples/price_feed.c): one
 * process, one key, publishing a typed stream named
 * derive(stable_id, "prices"), where stable_id is its SPEC §2 organism
 * stable id (co_organism_stable_id of {instance, network}). Each datum is
 * one PriceUpdate. Consumers (the fx-correlator confluence, integrators,
 * tests) decode it with this header; nothing here touches the network.
 *
 * Wire form (mosaik/codec.h), one encoding per value:
 *   u8 version (1) ‖ varint epoch_ms ‖ varint seq (≥ 1) ‖ zigzag unix_ms ‖
 *   string pair (1–15 of [A-Z0-9./_-]) ‖ zigzag price_micro
 * The decoder refuses every other byte string (trailing bytes, overlong
 * varints, a bad pair), so blake3 of the bytes names exactly one update:
 * confluence evidence pointers rely on that.
 */
#ifndef CO_PRICE_FEED_H
#define CO_PRICE_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "coalition/config.h"
#include "mosaik/codec.h"
#include "mosaik/id.h"
#include "mosaik/stream.h"

#define CO_PRICE_SURFACE "prices"
#define CO_PRICE_PAIR_MAX 15
#define CO_PRICE_UPDATE_VERSION 1
/* The longest encoding: 1 + 10 + 10 + 10 + 1 + 15 + 10. */
#define CO_PRICE_UPDATE_MAX 64

typedef struct co_price_update {
    /* When this feed process started (Unix ms): seq restarts at 1 with
     * every start, so (epoch_ms, seq) is the feed's clock event and a
     * restart is never mistaken for a replay. */
    int64_t epoch_ms;
    uint64_t seq;        /* 1, 2, 3, … within the epoch */
    int64_t unix_ms;     /* the feed's wall clock when it published */
    char pair[CO_PRICE_PAIR_MAX + 1]; /* e.g. "EURUSD", NUL-terminated */
    int64_t price_micro; /* price × 10^6 */
} co_price_update;

/* Appends the wire form of `u` to `out`. Returns 0, MK_EINVAL (a negative
 * epoch, seq 0, or a pair that is empty, too long or has other
 * characters) with nothing appended, or out->err (MK_ENOMEM). */
int co_price_update_encode(const co_price_update *u, mk_buf *out);

/* Decodes exactly `len` bytes into `u`. Returns 0 or MK_EDECODE (`u` is
 * then unspecified). Allocates nothing. */
int co_price_update_decode(co_price_update *u, const uint8_t *bytes,
                           size_t len);

/* mk_datum_codec for co_price_update values (no allocation, no clear):
 * producers send with mk_producer_send, consumers get decoded values. */
extern const mk_datum_codec co_price_update_codec;

/* The feed's StreamId: derive(stable_id(o), "prices"). 0 or CO_ECONFIG
 * (reason in err, CO_ERRMSG_SIZE, may be NULL). */
int co_price_feed_stream(const co_organism_ref *o, mk_id *out, char *err);

#endif /* CO_PRICE_FEED_H */
