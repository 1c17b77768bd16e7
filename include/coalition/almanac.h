/* Almanac: the coalition's shared clock (SPEC §4).
 *
 * The committee commits a tick at the cadence its content names
 * ("almanac/v1;cadence_ms=1000"); each tick's seq is exactly one more
 * than the last, across every leader change. Members' wall-clock stamps
 * ride along and are advisory only. Integrators follow ticks with
 * co_almanac_ticks; confluences key cross-citizen facts by tick seq.
 */
#ifndef CO_ALMANAC_H
#define CO_ALMANAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/config.h"
#include "coalition/module.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"

#define CO_ALMANAC_MAX_STAMPS CO_MODULE_MAX_COMMITTEE
#define CO_ALMANAC_DEFAULT_CADENCE_MS 1000

typedef struct co_almanac_stamp {
    mk_peer_id member;
    int64_t unix_ms;
} co_almanac_stamp;

typedef struct co_almanac_tick {
    uint64_t seq; /* 0: no tick yet */
    co_almanac_stamp stamps[CO_ALMANAC_MAX_STAMPS];
    size_t n_stamps;
} co_almanac_tick;

typedef struct co_almanac_reader co_almanac_reader;

/* status 0 with `tick` for each new tick (every seq in order, none
 * skipped while the reader is online; on resuming after a gap the reader
 * reports the latest and `missed` says how many it did not see), or a
 * negative status as for co_atlas_cb (tick NULL). Stamps added to the
 * latest tick are reported again with the same seq and missed 0. */
typedef void (*co_almanac_cb)(co_almanac_reader *r, int status,
                              const co_almanac_tick *tick, uint64_t missed,
                              void *data);

int co_almanac_ticks(mk_node *net, const co_coalition_config *cfg,
                     uint32_t timeout_ms, co_almanac_cb cb, void *data,
                     co_almanac_reader **out, char *err);
void co_almanac_close(co_almanac_reader *r, mk_close_cb done, void *data);

/* The latest tick held (seq 0 before any). */
const co_almanac_tick *co_almanac_latest(const co_almanac_reader *r);
void co_almanac_retirement(const co_almanac_reader *r, co_retirement *out);

/* The cadence the coalition's Almanac content names, in ms. */
int co_almanac_cadence_ms(const co_coalition_config *cfg, uint64_t *out,
                          char *err);

#endif /* CO_ALMANAC_H */
