/* The module tests' coalition, "test.modules", as an integrator compiles
 * it in: the same coalition as tests/data/modules.json (the test checks
 * that both derive one coalition_id). examples/integrator.c is built a
 * second time against this header for tests/integration/test_modules.c,
 * so that test never depends on the demo coalition.
 *
 * One lattice and three organisms; the Atlas, Almanac (a tick every
 * 250 ms) and Chronicle, each run by the same three members, and a ticket
 * issuer. Keys come from fixed seeds (`coalition keygen --seed
 * coalition.test/modules/member/N`, `.../tickets`): test identities,
 * never to be used for anything else.
 */
#ifndef TESTS_DATA_MODULES_COALITION_H
#define TESTS_DATA_MODULES_COALITION_H

#include "coalition/config.h"

#define TEST_MEMBER_0                                                         \
    "74a7aa117f93245ffea7480c708d0713c7641bb950a31a52a940e13adc5c52ba"
#define TEST_MEMBER_1                                                         \
    "f1c062ad34338dfe615ef23e0dd46fbfec7153b7c458c2d335b3f0d09e051b09"
#define TEST_MEMBER_2                                                         \
    "364d5f2a6541b208ddb0b22d863ac7c9578e7df8dd50ad6055a2974694d1237f"
#define TEST_TICKET_KEY                                                       \
    "57d931418cf0cd7c2cec127ea76a57913f12304f5d3bda08494bcaa200b30dcc"

static const co_lattice_config TEST_ALPHA_NET = {.name = "testnet.alpha",
                                                 .chain_id = 7};
static const co_organism_ref TEST_FEED_ALPHA = {.role = "oracle",
                                                .instance = "feed.alpha"};
static const co_organism_ref TEST_FEED_BETA = {.role = "oracle",
                                               .instance = "feed.beta"};
static const co_organism_ref TEST_SEQ_GAMMA = {.role = "sequencer",
                                               .instance = "seq.gamma"};

static const char *const TEST_COMMITTEE[] = {TEST_MEMBER_0, TEST_MEMBER_1,
                                             TEST_MEMBER_2};

static const co_citizen_ref TEST_ATLAS_LATTICES[] = {
    {.lattice = &TEST_ALPHA_NET},
};
static const co_citizen_ref TEST_ATLAS_ORGANISMS[] = {
    {.organism = &TEST_FEED_ALPHA},
    {.organism = &TEST_FEED_BETA},
    {.organism = &TEST_SEQ_GAMMA},
};
static const co_confluence_config TEST_ATLAS = {
    .name = "atlas",
    CO_LIST(lattices, TEST_ATLAS_LATTICES),
    CO_LIST(organisms, TEST_ATLAS_ORGANISMS),
    .content = "atlas/v1",
    .acl = {CO_LIST(issuers, TEST_COMMITTEE)},
};
static const co_confluence_config TEST_ALMANAC = {
    .name = "almanac",
    .content = "almanac/v1;cadence_ms=250",
    .acl = {CO_LIST(issuers, TEST_COMMITTEE)},
};
static const co_confluence_config TEST_CHRONICLE = {
    .name = "chronicle",
    .content = "chronicle/v1",
    .acl = {CO_LIST(issuers, TEST_COMMITTEE)},
};

static const char *const TEST_TICKET_KEYS[] = {TEST_TICKET_KEY};
static const co_ticket_issuer_config TEST_TICKETS = {
    .name = "test-tickets",
    .acl = {CO_LIST(issuers, TEST_TICKET_KEYS)},
};

static const co_lattice_config *const TEST_LATTICES[] = {&TEST_ALPHA_NET};
static const co_organism_ref *const TEST_ORGANISMS[] = {
    &TEST_FEED_ALPHA, &TEST_FEED_BETA, &TEST_SEQ_GAMMA};
static const co_confluence_config *const TEST_CONFLUENCES[] = {
    &TEST_ATLAS, &TEST_ALMANAC, &TEST_CHRONICLE};

static const co_coalition_config TEST_COALITION = {
    .name = "test.modules",
    CO_LIST(lattices, TEST_LATTICES),
    CO_LIST(organisms, TEST_ORGANISMS),
    CO_LIST(confluences, TEST_CONFLUENCES),
    .ticket_issuer = &TEST_TICKETS,
};

/* What examples/integrator.c compiles in when built for the tests. */
#define INTEGRATOR_COALITION TEST_COALITION

#endif
