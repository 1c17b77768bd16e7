/* The shapes a coalition is published in (SPEC §2–§3).
 *
 * A CoalitionConfig names citizens (lattices and standalone organisms),
 * confluences (modules among them) and an optional ticket issuer. It holds
 * no state and runs nothing; everything a coalition "is" is the fingerprint
 * folded from these structs (coalition/identity.h).
 *
 * Every struct here can be written as a `static const` initialiser, which
 * is how an integrator compiles a coalition in:
 *
 *     static const co_lattice_config ETH_MAINNET = {
 *         .name = "ethereum.mainnet", .chain_id = 1 };
 *     static const co_lattice_config *const LATTICES[] = { &ETH_MAINNET };
 *     static const co_coalition_config SUPERCHAIN = {
 *         .name = "ethereum.superchain", CO_LIST(lattices, LATTICES) };
 *
 * Id-like fields are strings, exactly as in the JSON form: a string of 64
 * hex characters is taken as the id's bytes, any other string is hashed
 * (mk_id_from_str). Nothing is copied; the config only points at caller
 * memory, which must outlive every use of it.
 */
#ifndef CO_CONFIG_H
#define CO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sets `field` and `n_field` from a true array (not a pointer). */
#define CO_COUNT(arr) (sizeof(arr) / sizeof((arr)[0]))
#define CO_LIST(field, arr) .field = (arr), .n_##field = CO_COUNT(arr)

#define CO_SCHEMA_VERSION 1
#define CO_MRTD_LEN 48

/* The six organism Config fingerprints of a builder lattice. All six or
 * none: together they give the lattice's content hash. */
typedef struct co_lattice_organisms {
    const char *zipnet;
    const char *unseal;
    const char *offer;
    const char *atelier;
    const char *relay;
    const char *tally;
} co_lattice_organisms;

/* A block-building lattice, referenced by its stable id. Give `chain_id`
 * (the stable id is derived from name and chain) or `stable_id` (the one its
 * operator publishes), not both. `name` is always required: confluences in
 * the same file refer to the lattice by it. */
typedef struct co_lattice_config {
    const char *name;
    uint64_t chain_id;
    const char *stable_id;         /* optional, id() string */
    co_lattice_organisms organisms; /* optional, all six or none */
} co_lattice_config;

/* A standalone organism: `instance` (and `network`, default the universe)
 * derive its stable id, or `stable_id` gives the published one. */
typedef struct co_organism_ref {
    const char *role;         /* required, e.g. "oracle" */
    const char *instance;     /* e.g. "price-feed.eur" */
    const char *network;      /* optional with `instance`, id() string */
    const char *stable_id;    /* instead of `instance`, id() string */
    const char *content_hash; /* optional, id() string: ACL, MR_TDs, policy */
} co_organism_ref;

/* One spanned citizen of a confluence. Either points at a declared citizen
 * (`lattice` or `organism`; `pin` also folds its content hash, which it
 * must then have), or gives the reference directly (`stable_id`, pinned
 * when `content_hash` is set). */
typedef struct co_citizen_ref {
    const co_lattice_config *lattice;
    const co_organism_ref *organism;
    bool pin;
    const char *stable_id;
    const char *content_hash;
} co_citizen_ref;

/* The issuer a ticket-gated ACL names for the coalition's own ticket
 * issuer (its TICKETS_ROOT and acl keys). Another issuer whose root is
 * id("coalition") is written as that root's 64 hex. */
#define CO_ACL_TICKETS_COALITION "coalition"
#define CO_ACL_TICKET_KEYS 16

/* Ticket-gated admission: besides the keys listed in acl.issuers, any
 * node holding a valid ticket from the named issuer is admitted (for a
 * committee: it may join as a standby, docs/modules.md). */
typedef struct co_acl_tickets {
    /* CO_ACL_TICKETS_COALITION, or another issuer's root as an id()
     * string: its tickets' iss is the root's 64 lowercase hex. */
    const char *issuer;
    /* Another issuer's Ed25519 signing keys (64 hex each, 1 to
     * CO_ACL_TICKET_KEYS); none with the coalition's, whose keys are
     * ticket_issuer.acl.issuers. */
    const char *const *keys;
    size_t n_keys;
    const char *audience;    /* optional: the aud tickets must carry */
    uint32_t max_lifetime_s; /* refuse longer-lived tickets; 0: no limit */
} co_acl_tickets;

/* Who may be admitted: ticket issuer roots or signer keys (id() strings),
 * TDX measurements (96 hex characters each), and optionally by ticket.
 * An ACL without `tickets` has the fingerprint it always had. */
typedef struct co_acl {
    const char *const *issuers;
    size_t n_issuers;
    const char *const *mrtds;
    size_t n_mrtds;
    const co_acl_tickets *tickets; /* NULL: admission by the lists only */
} co_acl;

/* An organism whose identity folds two or more citizen references. Its
 * fingerprint does not depend on any coalition that references it. */
typedef struct co_confluence_config {
    const char *name;
    const co_citizen_ref *lattices;
    size_t n_lattices;
    const co_citizen_ref *organisms;
    size_t n_organisms;
    const char *content; /* id() string: the state machine's parameters */
    co_acl acl;
} co_confluence_config;

/* The optional coalition-scoped ticket issuer; acl.issuers are the Ed25519
 * public keys allowed to sign its tickets. */
typedef struct co_ticket_issuer_config {
    const char *name;
    co_acl acl;
} co_ticket_issuer_config;

/* A coalition: a name and ordered references. Order matters everywhere. */
typedef struct co_coalition_config {
    const char *name;
    const co_lattice_config *const *lattices;
    size_t n_lattices;
    const co_organism_ref *const *organisms;
    size_t n_organisms;
    const co_confluence_config *const *confluences;
    size_t n_confluences;
    const co_ticket_issuer_config *ticket_issuer; /* NULL: none */
} co_coalition_config;

#endif /* CO_CONFIG_H */
