/* fx-correlator: the example confluence (docs/confluences.md).
 *
 * It spans two price-feed organisms (coalition/price_feed.h), in order,
 * reads their "prices" surfaces, aligns them to the ticks of a
 * coalition's Almanac, and commits one spread per tick:
 *
 *   {tick seq, price of feed 0, price of feed 1, spread = price0 - price1}
 *
 * keyed by (citizen_id of feed 0, tick), with evidence pointers to the
 * price update of each feed it used: the latest one folded at or before
 * the tick (in the confluence's log order). A feed whose latest update is
 * more than bound_ticks ticks old (counted from the last tick before it
 * arrived) is stalled; the content string says what then happens:
 *
 *   "fx-correlator/v1;clock=demo.euro-fx;stall=partial;bound_ticks=4"
 *
 *   clock=NAME        the coalition whose Almanac gives the ticks
 *                     (required; by name, since the Almanac's own ids fold
 *                     the coalition root, which folds this confluence)
 *   stall=partial     commit with the prices of the feeds still delivering
 *                     (the spread is then absent); the default
 *   stall=halt        commit nothing while a feed is stalled
 *   bound_ticks=N     1..1000, default 4
 *
 * Every parameter is part of the content string, hence of the
 * fingerprint: two committees that would fold differently never meet.
 */
#ifndef CO_FX_CORRELATOR_H
#define CO_FX_CORRELATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "coalition/confluence.h"
#include "coalition/price_feed.h"

#define CO_FX_NAME "fx-correlator"
#define CO_FX_SIGNATURE "fx-correlator/1"
#define CO_FX_DEFAULT_BOUND 4

/* The committed fact. */
typedef struct co_fx_spread {
    uint64_t tick;
    bool has_price[2];
    int64_t price_micro[2];
    bool has_spread; /* both prices, and their difference fits an i64 */
    int64_t spread_micro;
} co_fx_spread;

/* Wire form: u8 version (1) ‖ varint tick ‖ u8 flags (bit0 price0, bit1
 * price1, bit2 spread) ‖ the present fields as zigzag varints, in that
 * order. Decoding refuses anything else (including a spread that is not
 * price0 - price1). */
int co_fx_spread_encode(const co_fx_spread *s, mk_buf *out);
int co_fx_spread_decode(co_fx_spread *s, const uint8_t *bytes, size_t len);

/* The implementation, for co_confluence_define / hosts. */
extern const co_confluence_impl co_fx_correlator_impl;

/* Fills `out` from a config whose content starts "fx-correlator/".
 * 0 or CO_ECONFIG (err). */
int co_fx_correlator_define(const co_confluence_config *cfg,
                            co_confluence_def *out, char *err);

/* The consumer-side verifier: given a commit of the confluence and the
 * feeds' own data (their PriceUpdates as each feed published them, any
 * number and order), recomputes the commit and accepts it (0) or rejects
 * it: evidence that does not match the upstream fact
 * (MK_EHASH_MISMATCH), evidence for a fact not among `facts` (MK_ENOENT),
 * or a body that is not what those facts give — wrong key, prices,
 * spread, or presence that disagrees with the evidence (CO_EUNVERIFIED,
 * MK_EDECODE). `why` (CO_ERRMSG_SIZE, may be NULL) says what. Whether the
 * facts were the latest at the tick is a property of the log order: a
 * replay of the log (co_confluence_fsm_init) checks that. */
int co_fx_verify(const co_confluence_def *def, const co_confluence_commit *c,
                 const co_upstream_fact *facts, size_t n, char *why);

#endif /* CO_FX_CORRELATOR_H */
