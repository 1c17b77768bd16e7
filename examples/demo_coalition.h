/* The demo coalition, "demo.euro-fx", as an integrator compiles it in.
 *
 * Two standalone price-feed organisms are its citizens; it ships the
 * Atlas, Almanac (a tick every 500 ms), Chronicle and Compute modules,
 * each run by the same three-member committee, a ticket issuer, and
 * references one confluence, fx-correlator, run by that committee too.
 * The Almanac lists a fourth member but takes three voters (voters=3), so
 * that member stands by: `coalition demo` rotates it in midway. The
 * committee's keys are derived from fixed seeds (`coalition keygen --seed
 * coalition.demo/member/N`), so the fingerprint is the same on every
 * machine; examples/demo.json is the same coalition as the JSON file
 * operators publish. Never use seeded keys outside a demo.
 */
#ifndef EXAMPLES_DEMO_COALITION_H
#define EXAMPLES_DEMO_COALITION_H

#include "coalition/config.h"

#define DEMO_MEMBER_0                                                         \
    "1b14535712c8ba83a74b89c7ae62cd176c3aba87b08759cb7ec72ad8d1ba6c08"
#define DEMO_MEMBER_1                                                         \
    "1fb765a5e78895d7029ed37818391c68eb5a0a2bed6829cbb709cc632a76b577"
#define DEMO_MEMBER_2                                                         \
    "1a49a50935af4190b93551b40cb409a1617dfbabd7d32317607bc410d8e28ff3"
/* The Almanac's standby: its PeerId sorts after the three above, so they
 * are the voters a fresh committee starts with. */
#define DEMO_MEMBER_3                                                         \
    "b59fe8d6c63084b4e5fb0d8a31f5ac5463de98293897797a050f24725ac71662"
#define DEMO_TICKET_KEY                                                       \
    "1aa6c693b9ade9e2a20aed2b20016e4d193b008113a0a40fa306bce9a13355db"

static const co_organism_ref DEMO_FEED_EUR = {
    .role = "oracle", .instance = "price-feed.eur"};
static const co_organism_ref DEMO_FEED_USD = {
    .role = "oracle", .instance = "price-feed.usd"};

static const char *const DEMO_COMMITTEE[] = {DEMO_MEMBER_0, DEMO_MEMBER_1,
                                             DEMO_MEMBER_2};

static const co_citizen_ref DEMO_ATLAS_ORGANISMS[] = {
    {.organism = &DEMO_FEED_EUR},
    {.organism = &DEMO_FEED_USD},
};
static const co_confluence_config DEMO_ATLAS = {
    .name = "atlas",
    CO_LIST(organisms, DEMO_ATLAS_ORGANISMS),
    .content = "atlas/v1",
    .acl = {CO_LIST(issuers, DEMO_COMMITTEE)},
};
static const char *const DEMO_ALMANAC_COMMITTEE[] = {
    DEMO_MEMBER_0, DEMO_MEMBER_1, DEMO_MEMBER_2, DEMO_MEMBER_3};
static const co_confluence_config DEMO_ALMANAC = {
    .name = "almanac",
    .content = "almanac/v1;cadence_ms=500;voters=3",
    .acl = {CO_LIST(issuers, DEMO_ALMANAC_COMMITTEE)},
};
static const co_confluence_config DEMO_CHRONICLE = {
    .name = "chronicle",
    .content = "chronicle/v1",
    .acl = {CO_LIST(issuers, DEMO_COMMITTEE)},
};

/* The fx-correlator confluence (coalition/fx_correlator.h): one spread
 * between the two feeds per Almanac tick, committed by the same three
 * members. Its identity folds the two feeds in this order and its content,
 * never this coalition: any coalition listing the same config names the
 * same committee and log. It aligns to this coalition's Almanac (clock=),
 * and commits partial spreads once a feed is silent for 4 ticks. */
static const co_citizen_ref DEMO_FX_FEEDS[] = {
    {.organism = &DEMO_FEED_EUR},
    {.organism = &DEMO_FEED_USD},
};
static const co_confluence_config DEMO_FX_CORRELATOR = {
    .name = "fx-correlator",
    CO_LIST(organisms, DEMO_FX_FEEDS),
    .content = "fx-correlator/v1;clock=demo.euro-fx;stall=partial;"
               "bound_ticks=4",
    .acl = {CO_LIST(issuers, DEMO_COMMITTEE)},
};

/* The Compute module (coalition/compute.h): the same committee schedules
 * workloads onto the providers that register with it (the demo starts
 * two, `coalitiond --provider`). Its clock is committed every 250 ms and
 * a provider silent for 4 heartbeats of 500 ms is given up on. */
static const co_confluence_config DEMO_COMPUTE = {
    .name = "compute",
    .content = "compute/v1;clock_ms=250;heartbeat_ms=500;missed=4",
    .acl = {CO_LIST(issuers, DEMO_COMMITTEE)},
};

static const char *const DEMO_TICKET_KEYS[] = {DEMO_TICKET_KEY};
static const co_ticket_issuer_config DEMO_TICKETS = {
    .name = "demo-tickets",
    .acl = {CO_LIST(issuers, DEMO_TICKET_KEYS)},
};

static const co_organism_ref *const DEMO_ORGANISMS[] = {&DEMO_FEED_EUR,
                                                        &DEMO_FEED_USD};
static const co_confluence_config *const DEMO_CONFLUENCES[] = {
    &DEMO_ATLAS,         &DEMO_ALMANAC, &DEMO_CHRONICLE,
    &DEMO_FX_CORRELATOR, &DEMO_COMPUTE};

static const co_coalition_config DEMO_COALITION = {
    .name = "demo.euro-fx",
    CO_LIST(organisms, DEMO_ORGANISMS),
    CO_LIST(confluences, DEMO_CONFLUENCES),
    .ticket_issuer = &DEMO_TICKETS,
};

#endif
