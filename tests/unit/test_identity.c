/* Coalition identity (SPEC §2) against the golden vectors, from the C
 * static const and from the JSON file, plus the properties the spec
 * promises: order matters, content rotations do not move coalition_id,
 * confluences are coalition-independent, unshipped modules are absent. */
#include <stdlib.h>
#include <string.h>

#include "../../examples/superchain.h"
#include "coalition/config_file.h"
#include "coalition/identity.h"
#include "mosaik/blake3.h"
#include "testutil.h"

static json_t *vec;

static int setup(void **state)
{
    vec = tu_load_vectors("identity.json");
    return vec ? 0 : -1;
}

static int teardown(void **state)
{
    json_decref(vec);
    return 0;
}

static const char *expect(const char *path)
{
    return tu_json_str(vec, path);
}

/* Every value of identity.json's "expected" section. */
static void check_superchain(const co_coalition_config *c)
{
    char err[CO_ERRMSG_SIZE], path[128], cid[41];
    mk_id id, content;
    co_citizen_id citizen;

    assert_int_equal(co_coalition_validate(c, err), 0);
    co_coalition_seed(c, &id);
    assert_id_hex(&id, expect("expected.coalition"));
    assert_int_equal(co_coalition_id(c, &id, err), 0);
    assert_id_hex(&id, expect("expected.coalition_id"));

    assert_int_equal(c->n_lattices, 3);
    for (size_t i = 0; i < c->n_lattices; i++) {
        snprintf(path, sizeof path, "expected.lattices[%zu].name", i);
        assert_string_equal(c->lattices[i]->name, expect(path));
        assert_int_equal(co_lattice_stable_id(c->lattices[i], &id, err), 0);
        snprintf(path, sizeof path, "expected.lattices[%zu].stable_id", i);
        assert_id_hex(&id, expect(path));
        co_citizen_id_of(&id, &citizen);
        mk_hex_encode(citizen.b, sizeof citizen.b, cid);
        snprintf(path, sizeof path, "expected.lattices[%zu].citizen_id", i);
        assert_string_equal(cid, expect(path));
    }

    assert_int_equal(c->n_organisms, 1);
    const co_organism_ref *o = c->organisms[0];
    assert_string_equal(o->instance, expect("expected.organisms[0].instance"));
    assert_int_equal(co_organism_stable_id(o, &id, err), 0);
    assert_id_hex(&id, expect("expected.organisms[0].stable_id"));
    assert_int_equal(co_organism_content_hash(o, &content), 1);
    assert_id_hex(&content, expect("expected.organisms[0].content_hash"));
    co_citizen_ref pinned = {.organism = o, .pin = true};
    assert_int_equal(co_citizen_ref_fold(&pinned, &id, err), 0);
    assert_id_hex(&id, expect("expected.organisms[0].pinned_ref"));

    co_acl none = {0};
    assert_int_equal(co_acl_fingerprint(&none, &id, err), 0);
    assert_id_hex(&id, expect("expected.acl_fp(empty)"));

    assert_int_equal(c->n_confluences, 2);
    for (size_t i = 0; i < c->n_confluences; i++) {
        snprintf(path, sizeof path, "expected.confluences[%zu].name", i);
        assert_string_equal(c->confluences[i]->name, expect(path));
        assert_int_equal(
            co_confluence_fingerprint(c->confluences[i], &id, err), 0);
        snprintf(path, sizeof path, "expected.confluences[%zu].fingerprint",
                 i);
        assert_id_hex(&id, expect(path));
        assert_int_equal(co_confluence_committee(c->confluences[i], &id, err),
                         0);
        snprintf(path, sizeof path, "expected.confluences[%zu].committee", i);
        assert_id_hex(&id, expect(path));
    }

    assert_ptr_equal(co_coalition_atlas(c), c->confluences[0]);
    assert_int_equal(co_module_root(c, CO_MODULE_ATLAS, &id, err), 0);
    assert_id_hex(&id, expect("expected.modules.atlas"));
    assert_id_hex(&id, expect("expected.confluences[0].module_root"));
    assert_null(co_coalition_almanac(c));
    assert_null(co_coalition_chronicle(c));
    assert_null(co_coalition_compute(c));
    for (int k = CO_MODULE_ALMANAC; k < CO_MODULE_COUNT; k++)
        assert_int_equal(co_module_root(c, (co_module_kind)k, &id, err),
                         CO_ENOTSHIPPED);
    assert_int_equal(co_tickets_root(c, &id, err), CO_ENOTSHIPPED);
}

static void superchain_from_static_const(void **state)
{
    check_superchain(&ETH_SUPERCHAIN);
}

static void superchain_from_json_file(void **state)
{
    char err[CO_ERRMSG_SIZE];
    co_config_file *f;
    int rc = co_config_file_load(tu_vector_path("ethereum.superchain.json"),
                                 &f, err);
    if (rc < 0)
        fail_msg("%s", err);
    check_superchain(co_config_file_coalition(f));
    co_config_file_free(f);
}

static const char *const ISSUER_KEYS[] = {"issuer-key-1", "issuer-key-2"};
static const char *const ISSUER_MRTDS[] = {
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f"};
static const co_ticket_issuer_config SUPERCHAIN_TICKETS = {
    .name = "superchain-tickets",
    .acl = {CO_LIST(issuers, ISSUER_KEYS), CO_LIST(mrtds, ISSUER_MRTDS)},
};

static void check_with_issuer(const co_coalition_config *c)
{
    char err[CO_ERRMSG_SIZE];
    mk_id id;
    assert_int_equal(co_acl_fingerprint(&c->ticket_issuer->acl, &id, err), 0);
    assert_id_hex(&id, expect("with_ticket_issuer.acl_fp"));
    assert_int_equal(co_ticket_issuer_fingerprint(c->ticket_issuer, &id, err),
                     0);
    assert_id_hex(&id, expect("with_ticket_issuer.issuer_fp"));
    assert_int_equal(co_coalition_id(c, &id, err), 0);
    assert_id_hex(&id, expect("with_ticket_issuer.coalition_id"));
    assert_int_equal(co_tickets_root(c, &id, err), 0);
    assert_id_hex(&id, expect("with_ticket_issuer.tickets_root"));
    assert_int_equal(co_module_root(c, CO_MODULE_ATLAS, &id, err), 0);
    assert_id_hex(&id, expect("with_ticket_issuer.atlas_module_root"));
}

static void ticket_issuer_built_at_run_time(void **state)
{
    co_coalition_config c = ETH_SUPERCHAIN;
    c.ticket_issuer = &SUPERCHAIN_TICKETS;
    check_with_issuer(&c);
}

static void ticket_issuer_from_json(void **state)
{
    char err[CO_ERRMSG_SIZE];
    json_t *cfg = tu_load_vectors("ethereum.superchain.json");
    json_object_set(cfg, "ticket_issuer",
                    json_object_get(json_object_get(vec, "with_ticket_issuer"),
                                    "ticket_issuer"));
    char *text = json_dumps(cfg, 0);
    co_config_file *f;
    int rc = co_config_file_parse(text, strlen(text), "issuer.json", &f, err);
    if (rc < 0)
        fail_msg("%s", err);
    check_with_issuer(co_config_file_coalition(f));
    co_config_file_free(f);
    free(text);
    json_decref(cfg);
}

/* An independent computation of COALITION_ROOT: the concatenation written
 * into one buffer and hashed once, rather than streamed. */
static void root_by_hand(const char *name, const mk_id *ids, size_t n,
                         mk_id *out)
{
    uint8_t buf[4096];
    size_t len = (size_t)snprintf((char *)buf, sizeof buf, "coalition|%c|%s",
                                  1, name);
    mk_id seed;
    mk_blake3(buf, len, seed.b);
    memcpy(buf, seed.b, 32);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 32 * (i + 1), ids[i].b, 32);
    mk_blake3(buf, 32 * (n + 1), out->b);
}

static void mixed_compositions(void **state)
{
    char err[CO_ERRMSG_SIZE];
    mk_id eth, base, feed, router, got, want;
    co_lattice_stable_id(&ETH_MAINNET, &eth, NULL);
    co_lattice_stable_id(&BASE_MAINNET, &base, NULL);
    co_organism_stable_id(&EUR_PRICE_FEED, &feed, NULL);
    co_confluence_fingerprint(&INTENTS_ROUTER, &router, NULL);

    static const co_lattice_config *const lat[] = {&ETH_MAINNET,
                                                   &BASE_MAINNET};
    static const co_organism_ref *const org[] = {&EUR_PRICE_FEED};
    static const co_confluence_config *const conf[] = {&INTENTS_ROUTER};

    /* No lattices: organisms only. */
    co_coalition_config c = {.name = "signals.euro-fx",
                             CO_LIST(organisms, org)};
    assert_int_equal(co_coalition_id(&c, &got, err), 0);
    root_by_hand("signals.euro-fx", &feed, 1, &want);
    assert_true(mk_id_eq(&got, &want));

    /* No organisms: lattices and a confluence. */
    co_coalition_config d = {.name = "chains", CO_LIST(lattices, lat),
                             CO_LIST(confluences, conf)};
    mk_id ids[4] = {eth, base, router};
    assert_int_equal(co_coalition_id(&d, &got, err), 0);
    root_by_hand("chains", ids, 3, &want);
    assert_true(mk_id_eq(&got, &want));

    /* Both. */
    co_coalition_config e = {.name = "both", CO_LIST(lattices, lat),
                             CO_LIST(organisms, org),
                             CO_LIST(confluences, conf)};
    mk_id ids2[4] = {eth, base, feed, router};
    assert_int_equal(co_coalition_validate(&e, err), 0);
    assert_int_equal(co_coalition_id(&e, &got, err), 0);
    root_by_hand("both", ids2, 4, &want);
    assert_true(mk_id_eq(&got, &want));

    /* Nothing at all is a valid coalition with zero services. */
    co_coalition_config empty = {.name = "empty"};
    assert_int_equal(co_coalition_validate(&empty, err), 0);
    assert_int_equal(co_coalition_id(&empty, &got, err), 0);
    root_by_hand("empty", NULL, 0, &want);
    assert_true(mk_id_eq(&got, &want));
}

/* A citizen and a confluence are the same bytes whether one, two or three
 * coalitions reference them, and each coalition folds exactly those. */
static void citizens_are_coalition_independent(void **state)
{
    static const co_lattice_config *const one[] = {&ETH_MAINNET};
    static const co_lattice_config *const two[] = {&BASE_MAINNET,
                                                   &ETH_MAINNET};
    static const co_confluence_config *const conf[] = {&INTENTS_ROUTER};
    const co_coalition_config coalitions[3] = {
        {.name = "a", CO_LIST(lattices, one), CO_LIST(confluences, conf)},
        {.name = "b", CO_LIST(lattices, two), CO_LIST(confluences, conf)},
        {.name = "c", CO_LIST(lattices, one)},
    };
    mk_id eth, base, router, got, want;
    co_lattice_stable_id(&ETH_MAINNET, &eth, NULL);
    co_lattice_stable_id(&BASE_MAINNET, &base, NULL);
    co_confluence_fingerprint(&INTENTS_ROUTER, &router, NULL);
    assert_id_hex(&router, expect("expected.confluences[1].fingerprint"));

    mk_id a[] = {eth, router}, b[] = {base, eth, router}, c[] = {eth};
    const mk_id *folds[] = {a, b, c};
    size_t counts[] = {2, 3, 1};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(co_coalition_id(&coalitions[i], &got, NULL), 0);
        root_by_hand(coalitions[i].name, folds[i], counts[i], &want);
        assert_true(mk_id_eq(&got, &want));
        /* Referencing it changed nothing about the citizen. */
        mk_id again;
        co_lattice_stable_id(coalitions[i].lattices[0], &again, NULL);
        assert_true(mk_id_eq(&again, i == 1 ? &base : &eth));
        co_confluence_fingerprint(&INTENTS_ROUTER, &again, NULL);
        assert_true(mk_id_eq(&again, &router));
    }
}

static void assert_differs(const co_coalition_config *a,
                           const co_coalition_config *b)
{
    mk_id x, y;
    assert_int_equal(co_coalition_id(a, &x, NULL), 0);
    assert_int_equal(co_coalition_id(b, &y, NULL), 0);
    assert_false(mk_id_eq(&x, &y));
}

static void reordering_any_list_changes_fingerprints(void **state)
{
    static const co_lattice_config *const swapped_lat[] = {
        &UNICHAIN_MAINNET, &ETH_MAINNET, &BASE_MAINNET};
    static const co_confluence_config *const swapped_conf[] = {
        &INTENTS_ROUTER, &SUPERCHAIN_ATLAS};
    static const co_organism_ref FEED_USD = {.role = "oracle",
                                             .instance = "price-feed.usd"};
    static const co_organism_ref *const orgs[] = {&EUR_PRICE_FEED,
                                                  &FEED_USD};
    static const co_organism_ref *const orgs_swapped[] = {&FEED_USD,
                                                          &EUR_PRICE_FEED};

    co_coalition_config c = ETH_SUPERCHAIN;
    c.lattices = swapped_lat;
    assert_differs(&ETH_SUPERCHAIN, &c);

    c = ETH_SUPERCHAIN;
    c.confluences = swapped_conf;
    assert_differs(&ETH_SUPERCHAIN, &c);

    co_coalition_config o1 = {.name = "x", CO_LIST(organisms, orgs)};
    co_coalition_config o2 = {.name = "x", CO_LIST(organisms, orgs_swapped)};
    assert_differs(&o1, &o2);

    /* Inside a confluence: spanned citizens and ACL entries. */
    mk_id f1, f2;
    co_citizen_ref refs[2] = {{.lattice = &ETH_MAINNET},
                              {.lattice = &UNICHAIN_MAINNET}};
    co_confluence_config cf = INTENTS_ROUTER;
    cf.lattices = refs;
    co_confluence_fingerprint(&cf, &f1, NULL);
    co_citizen_ref tmp = refs[0];
    refs[0] = refs[1];
    refs[1] = tmp;
    co_confluence_fingerprint(&cf, &f2, NULL);
    assert_false(mk_id_eq(&f1, &f2));

    const char *iss[2] = {"k1", "k2"}, *iss_swapped[2] = {"k2", "k1"};
    co_acl acl1 = {.issuers = iss, .n_issuers = 2};
    co_acl acl2 = {.issuers = iss_swapped, .n_issuers = 2};
    co_acl_fingerprint(&acl1, &f1, NULL);
    co_acl_fingerprint(&acl2, &f2, NULL);
    assert_false(mk_id_eq(&f1, &f2));

    const char *m[2] = {ISSUER_MRTDS[0],
                        "ff0102030405060708090a0b0c0d0e0f101112131415161718191"
                        "a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"};
    const char *m_swapped[2] = {m[1], m[0]};
    co_acl acl3 = {.mrtds = m, .n_mrtds = 2};
    co_acl acl4 = {.mrtds = m_swapped, .n_mrtds = 2};
    assert_int_equal(co_acl_fingerprint(&acl3, &f1, NULL), 0);
    assert_int_equal(co_acl_fingerprint(&acl4, &f2, NULL), 0);
    assert_false(mk_id_eq(&f1, &f2));

    /* Moving a reference between the lattice and organism lists too. */
    co_citizen_ref as_lattice[1] = {{.stable_id = "s"}};
    co_confluence_config l = {.name = "q", .content = "c",
                              CO_LIST(lattices, as_lattice)};
    co_confluence_config o = {.name = "q", .content = "c",
                              CO_LIST(organisms, as_lattice)};
    co_confluence_fingerprint(&l, &f1, NULL);
    co_confluence_fingerprint(&o, &f2, NULL);
    /* Same bytes folded in the same place: the lists are concatenated, so
     * only their order, not which list, shapes the fingerprint. */
    assert_true(mk_id_eq(&f1, &f2));
}

/* A content rotation (new MR_TD, new ACL) never moves coalition_id; a
 * confluence that pins the citizen re-derives, one that does not stays. */
static void pinning_changes_confluence_not_coalition_folding(void **state)
{
    co_organism_ref rotated = EUR_PRICE_FEED;
    rotated.content_hash = "price-feed.eur/content-v2";
    const co_organism_ref *before[] = {&EUR_PRICE_FEED};
    const co_organism_ref *after[] = {&rotated};

    co_citizen_ref unpinned_b[] = {{.organism = &EUR_PRICE_FEED}};
    co_citizen_ref unpinned_a[] = {{.organism = &rotated}};
    co_citizen_ref pinned_b[] = {{.organism = &EUR_PRICE_FEED, .pin = true}};
    co_citizen_ref pinned_a[] = {{.organism = &rotated, .pin = true}};
    co_confluence_config cu_b = {.name = "corr", .content = "c",
                                 CO_LIST(organisms, unpinned_b)};
    co_confluence_config cu_a = cu_b, cp_b = cu_b, cp_a = cu_b;
    cu_a.organisms = unpinned_a;
    cp_b.organisms = pinned_b;
    cp_a.organisms = pinned_a;

    mk_id x, y;
    co_confluence_fingerprint(&cu_b, &x, NULL);
    co_confluence_fingerprint(&cu_a, &y, NULL);
    assert_true(mk_id_eq(&x, &y)); /* unpinned survives the rotation */
    co_confluence_fingerprint(&cp_b, &x, NULL);
    co_confluence_fingerprint(&cp_a, &y, NULL);
    assert_false(mk_id_eq(&x, &y)); /* pinned redeploys */
    co_confluence_fingerprint(&cu_b, &y, NULL);
    assert_false(mk_id_eq(&x, &y)); /* pinning itself re-derives */

    /* The coalition folds the citizen by stable id only. */
    const co_confluence_config *cb[] = {&cu_b}, *ca[] = {&cu_a};
    co_coalition_config kb = {.name = "k", .organisms = before,
                              .n_organisms = 1, .confluences = cb,
                              .n_confluences = 1};
    co_coalition_config ka = {.name = "k", .organisms = after,
                              .n_organisms = 1, .confluences = ca,
                              .n_confluences = 1};
    assert_int_equal(co_coalition_id(&kb, &x, NULL), 0);
    assert_int_equal(co_coalition_id(&ka, &y, NULL), 0);
    assert_true(mk_id_eq(&x, &y));
}

static void lattice_content_hash_and_network(void **state)
{
    char err[CO_ERRMSG_SIZE];
    co_lattice_config l = ETH_MAINNET;
    mk_id got, want, stable, part;
    assert_int_equal(co_lattice_content_hash(&l, &got, err), 0);

    l.organisms = (co_lattice_organisms){"z", "u", "o", "a", "r", "t"};
    assert_int_equal(co_lattice_content_hash(&l, &got, err), 1);
    co_lattice_stable_id(&l, &stable, NULL);
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, stable.b, 32);
    const char *names[] = {"z", "u", "o", "a", "r", "t"};
    for (int i = 0; i < 6; i++) {
        mk_id_from_str(&part, names[i]);
        mk_blake3_update(&h, part.b, 32);
    }
    mk_blake3_final(&h, want.b, 32);
    assert_true(mk_id_eq(&got, &want));

    l.organisms.relay = NULL;
    assert_int_equal(co_lattice_content_hash(&l, &got, err), CO_ECONFIG);
    assert_non_null(strstr(err, "5 of the six"));

    /* A published stable id is taken as given. */
    co_lattice_config published = {.name = "x", .stable_id = "my-lattice"};
    assert_int_equal(co_lattice_stable_id(&published, &got, err), 0);
    mk_id_from_str(&want, "my-lattice");
    assert_true(mk_id_eq(&got, &want));
    published.chain_id = 5;
    assert_int_equal(co_lattice_stable_id(&published, &got, err), CO_ECONFIG);

    /* Leaving the universe moves an organism's stable id. */
    co_organism_ref o = EUR_PRICE_FEED;
    co_organism_stable_id(&o, &want, NULL);
    o.network = "testnet";
    co_organism_stable_id(&o, &got, NULL);
    assert_false(mk_id_eq(&got, &want));
    o.network = NULL;
    o.stable_id = "x";
    assert_int_equal(co_organism_stable_id(&o, &got, err), CO_ECONFIG);
}

static void validation_of_compiled_configs(void **state)
{
    char err[CO_ERRMSG_SIZE];
    static const co_lattice_config L = {.name = "l", .chain_id = 1};
    static const co_lattice_config L_AGAIN = {.name = "l", .chain_id = 2};
    static const co_organism_ref NO_CONTENT = {.role = "r", .instance = "i"};

    /* Pinning a citizen that has no content hash. */
    co_citizen_ref pin[] = {{.organism = &NO_CONTENT, .pin = true}};
    co_confluence_config cf = {.name = "c", .content = "x",
                               CO_LIST(organisms, pin)};
    const co_confluence_config *confs[] = {&cf};
    co_coalition_config c = {.name = "k", .confluences = confs,
                             .n_confluences = 1};
    assert_int_equal(co_coalition_validate(&c, err), CO_ECONFIG);
    assert_non_null(strstr(err, "confluences[0].organisms[0]"));
    assert_non_null(strstr(err, "no content hash"));

    /* Duplicate citizen names. */
    const co_lattice_config *dup[] = {&L, &L_AGAIN};
    co_coalition_config d = {.name = "k", .lattices = dup, .n_lattices = 2};
    assert_int_equal(co_coalition_validate(&d, err), CO_ECONFIG);
    assert_non_null(strstr(err, "lattices[1]: duplicate citizen"));

    /* Two modules of one kind. */
    const co_confluence_config *atlases[] = {&SUPERCHAIN_ATLAS,
                                             &SUPERCHAIN_ATLAS};
    co_coalition_config a = {.name = "k", .confluences = atlases,
                             .n_confluences = 2};
    assert_int_equal(co_coalition_validate(&a, err), CO_ECONFIG);
    assert_non_null(strstr(err, "two modules of one kind"));

    /* A reference must name exactly one thing, of the right kind. */
    co_citizen_ref both[] = {{.lattice = &L, .stable_id = "s"}};
    cf.organisms = NULL;
    cf.n_organisms = 0;
    cf.lattices = both;
    cf.n_lattices = 1;
    assert_int_equal(co_coalition_validate(&c, err), CO_ECONFIG);
    assert_non_null(strstr(err, "exactly one"));
    co_citizen_ref wrong[] = {{.organism = &NO_CONTENT}};
    cf.lattices = wrong;
    assert_int_equal(co_coalition_validate(&c, err), CO_ECONFIG);
    assert_non_null(strstr(err, "organism cannot be referenced as a lattice"));

    /* MR_TDs are 48 bytes of hex. */
    const char *bad_mrtd[] = {"00ff"};
    co_ticket_issuer_config t = {.name = "t", .acl = {.mrtds = bad_mrtd,
                                                      .n_mrtds = 1}};
    co_coalition_config ti = {.name = "k", .ticket_issuer = &t};
    assert_int_equal(co_coalition_validate(&ti, err), CO_ECONFIG);
    assert_non_null(strstr(err, "ticket_issuer.acl.mrtds[0]: bad hex"));

    co_coalition_config unnamed = {.name = ""};
    assert_int_equal(co_coalition_validate(&unnamed, err), CO_ECONFIG);
    mk_id id;
    assert_int_equal(co_coalition_id(&unnamed, &id, err), CO_ECONFIG);
}

static void module_names(void **state)
{
    assert_string_equal(co_module_name(CO_MODULE_CHRONICLE), "chronicle");
    assert_null(co_module_name(CO_MODULE_COUNT));
    assert_int_equal(co_module_kind_of("compute"), CO_MODULE_COMPUTE);
    assert_int_equal(co_module_kind_of("Atlas"), -1);
    mk_id root, committee, surface;
    mk_id_from_str(&root, "r");
    co_committee_id(&root, &committee);
    co_surface_id(&root, "cards", &surface);
    mk_id want;
    mk_id_derive(&want, &root, "committee", 9);
    assert_true(mk_id_eq(&committee, &want));
    mk_id_derive(&want, &root, "cards", 5);
    assert_true(mk_id_eq(&surface, &want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(superchain_from_static_const),
        cmocka_unit_test(superchain_from_json_file),
        cmocka_unit_test(ticket_issuer_built_at_run_time),
        cmocka_unit_test(ticket_issuer_from_json),
        cmocka_unit_test(mixed_compositions),
        cmocka_unit_test(citizens_are_coalition_independent),
        cmocka_unit_test(reordering_any_list_changes_fingerprints),
        cmocka_unit_test(pinning_changes_confluence_not_coalition_folding),
        cmocka_unit_test(lattice_content_hash_and_network),
        cmocka_unit_test(validation_of_compiled_configs),
        cmocka_unit_test(module_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
