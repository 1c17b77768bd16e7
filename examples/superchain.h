/* The ethereum.superchain coalition as an integrator compiles it in: the
 * same coalition as ../shared/vectors/ethereum.superchain.json, written as
 * static consts. Nothing is computed here; co_coalition_id() derives the
 * fingerprints at run time from exactly these bytes. */
#ifndef EXAMPLES_SUPERCHAIN_H
#define EXAMPLES_SUPERCHAIN_H

#include "coalition/config.h"

static const co_lattice_config ETH_MAINNET = {
    .name = "ethereum.mainnet", .chain_id = 1};
static const co_lattice_config UNICHAIN_MAINNET = {
    .name = "unichain.mainnet", .chain_id = 130};
static const co_lattice_config BASE_MAINNET = {
    .name = "base.mainnet", .chain_id = 8453};

static const co_organism_ref EUR_PRICE_FEED = {
    .role = "oracle",
    .instance = "price-feed.eur",
    .content_hash = "price-feed.eur/content-v1",
};

/* The Atlas spans every citizen. It names the price feed by its published
 * stable id rather than by pointer, as a confluence written by a third
 * party would. */
static const co_citizen_ref SUPERCHAIN_ATLAS_LATTICES[] = {
    {.lattice = &ETH_MAINNET},
    {.lattice = &UNICHAIN_MAINNET},
    {.lattice = &BASE_MAINNET},
};
static const co_citizen_ref SUPERCHAIN_ATLAS_ORGANISMS[] = {
    {.stable_id =
         "3fec36213c5196c06109ad480c9d6cc989aa2e45913c919d51b1e85ed7caf8c7"},
};
static const co_confluence_config SUPERCHAIN_ATLAS = {
    .name = "atlas",
    CO_LIST(lattices, SUPERCHAIN_ATLAS_LATTICES),
    CO_LIST(organisms, SUPERCHAIN_ATLAS_ORGANISMS),
    .content = "atlas/content-v1",
};

static const co_citizen_ref INTENTS_ROUTER_LATTICES[] = {
    {.lattice = &ETH_MAINNET},
    {.lattice = &UNICHAIN_MAINNET},
};
static const co_confluence_config INTENTS_ROUTER = {
    .name = "intents-router",
    CO_LIST(lattices, INTENTS_ROUTER_LATTICES),
    .content = "intents-router/content-v1",
};

static const co_lattice_config *const SUPERCHAIN_LATTICES[] = {
    &ETH_MAINNET, &UNICHAIN_MAINNET, &BASE_MAINNET};
static const co_organism_ref *const SUPERCHAIN_ORGANISMS[] = {
    &EUR_PRICE_FEED};
static const co_confluence_config *const SUPERCHAIN_CONFLUENCES[] = {
    &SUPERCHAIN_ATLAS, &INTENTS_ROUTER};

static const co_coalition_config ETH_SUPERCHAIN = {
    .name = "ethereum.superchain",
    CO_LIST(lattices, SUPERCHAIN_LATTICES),
    CO_LIST(organisms, SUPERCHAIN_ORGANISMS),
    CO_LIST(confluences, SUPERCHAIN_CONFLUENCES),
    .ticket_issuer = NULL,
};

#endif
