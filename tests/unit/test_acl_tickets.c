/* Ticket-gated ACLs (co_acl_tickets) against tests/data/vectors/
 * acl_tickets.json, whose values acl_tickets.py computed with b3sum over
 * preimages it built by hand: the fingerprints, a coalition whose Atlas
 * committee is ticket-gated (its id, TICKETS_ROOT, the committee's
 * GroupId), the JSON form round trip, and the strict loader's errors. */
#include <stdlib.h>
#include <string.h>

#include "coalition/config_file.h"
#include "coalition/identity.h"
#include "coalition/module.h"
#include "mosaik/group.h"
#include "testutil.h"

#define SEED "5eed111111111111111111111111111111111111111111111111111111111111"
#define KEY1 "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define KEY2 "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
#define MRTD                                                                  \
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223" \
    "2425262728292a2b2c2d2e2f"

static json_t *vec;

static int setup(void **state)
{
    vec = tu_load_vectors("acl_tickets.json");
    return vec ? 0 : -1;
}

static int teardown(void **state)
{
    json_decref(vec);
    return 0;
}

static const char *const SEEDS[] = {SEED};
static const char *const MRTDS[] = {MRTD};
static const char *const KEYS[] = {KEY1, KEY2};
static const co_acl_tickets OWN = {.issuer = CO_ACL_TICKETS_COALITION,
                                   .audience = "atlas-committee",
                                   .max_lifetime_s = 86400};
static const co_acl_tickets OTHER = {.issuer = "other-issuer",
                                     CO_LIST(keys, KEYS)};

static void fingerprints_from_static_const(void **state)
{
    char err[CO_ERRMSG_SIZE];
    co_acl own = {CO_LIST(issuers, SEEDS), .tickets = &OWN};
    co_acl other = {CO_LIST(issuers, SEEDS), CO_LIST(mrtds, MRTDS),
                    .tickets = &OTHER};
    co_acl plain = {CO_LIST(issuers, SEEDS)};
    mk_id fp, other_fp;
    assert_int_equal(co_acl_fingerprint(&own, &fp, err), 0);
    assert_id_hex(&fp, tu_json_str(vec, "acl_coalition_issuer.acl_fp"));
    assert_int_equal(co_acl_fingerprint(&other, &other_fp, err), 0);
    assert_id_hex(&other_fp, tu_json_str(vec, "acl_other_issuer.acl_fp"));
    /* Without tickets: the plain form, as it always was. */
    assert_int_equal(co_acl_fingerprint(&plain, &fp, err), 0);
    assert_id_hex(&fp, tu_json_str(vec, "acl_plain.acl_fp"));

    /* Every field of the ticket form is folded. */
    mk_id base, moved;
    assert_int_equal(co_acl_fingerprint(&own, &base, err), 0);
    co_acl_tickets t = OWN;
    own.tickets = &t;
    t.audience = NULL;
    assert_int_equal(co_acl_fingerprint(&own, &moved, err), 0);
    assert_false(mk_id_eq(&base, &moved));
    t = OWN;
    t.max_lifetime_s = 0;
    assert_int_equal(co_acl_fingerprint(&own, &moved, err), 0);
    assert_false(mk_id_eq(&base, &moved));
    co_acl_tickets o = OTHER;
    other.tickets = &o;
    o.n_keys = 1;
    assert_int_equal(co_acl_fingerprint(&other, &moved, err), 0);
    assert_false(mk_id_eq(&moved, &other_fp));
}

static co_config_file *load_coalition(json_t *cfg)
{
    char err[CO_ERRMSG_SIZE];
    char *text = json_dumps(cfg, 0);
    co_config_file *f;
    if (co_config_file_parse(text, strlen(text), "ticketed.json", &f, err) <
        0)
        fail_msg("%s", err);
    free(text);
    return f;
}

static void check_coalition(const co_coalition_config *c)
{
    char err[CO_ERRMSG_SIZE];
    mk_id id;
    assert_int_equal(co_coalition_validate(c, err), 0);
    assert_int_equal(co_confluence_fingerprint(co_coalition_atlas(c), &id,
                                               err),
                     0);
    assert_id_hex(&id, tu_json_str(vec, "coalition.atlas_fingerprint"));
    assert_int_equal(co_coalition_id(c, &id, err), 0);
    assert_id_hex(&id, tu_json_str(vec, "coalition.coalition_id"));
    assert_int_equal(co_tickets_root(c, &id, err), 0);
    assert_id_hex(&id, tu_json_str(vec, "coalition.tickets_root"));

    co_module_info m;
    if (co_module_info_get(c, CO_MODULE_ATLAS, &m, err) != 0)
        fail_msg("%s", err);
    assert_id_hex(&m.root, tu_json_str(vec, "coalition.atlas_root"));
    assert_id_hex(&m.committee_root,
                  tu_json_str(vec, "coalition.atlas_committee_root"));
    assert_true(m.ticketed);
    assert_int_equal(m.n_committee, 1);
    assert_int_equal(m.tickets.n_keys, 1);
    assert_string_equal(m.tickets.issuer,
                        tu_json_str(vec, "coalition.tickets_root"));
    assert_string_equal(m.tickets.audience, "atlas-committee");
    assert_int_equal(m.tickets.max_lifetime_s, 86400);

    /* The committee's GroupId folds the policy, never a member list. */
    struct mk_fsm shape = {.version = MK_FSM_VERSION};
    mk_id_from_str(&shape.signature, "coalition.atlas/1");
    co_module_group_id(&m, &shape, &id);
    assert_id_hex(&id, tu_json_str(vec, "coalition.atlas_group_id"));
}

static void coalition_from_json_and_back(void **state)
{
    json_t *cfg = json_object_get(json_object_get(vec, "coalition"),
                                  "config");
    co_config_file *f = load_coalition(cfg);
    check_coalition(co_config_file_coalition(f));

    /* Written back, the form loads to the same ids. */
    char err[CO_ERRMSG_SIZE], *text;
    assert_int_equal(co_config_to_json(co_config_file_coalition(f), &text,
                                       err),
                     0);
    co_config_file *g;
    assert_int_equal(
        co_config_file_parse(text, strlen(text), "back.json", &g, err), 0);
    check_coalition(co_config_file_coalition(g));
    free(text);
    co_config_file_free(g);
    co_config_file_free(f);
}

/* Loads the vector coalition with its Atlas acl.tickets replaced by
 * `tickets` (JSON text; NULL removes the ticket_issuer instead) and
 * expects an error containing each of `want` (NULL-terminated). */
static void refused(const char *tickets, const char *const *want)
{
    char err[CO_ERRMSG_SIZE];
    json_t *cfg = json_deep_copy(
        json_object_get(json_object_get(vec, "coalition"), "config"));
    json_t *acl = json_object_get(
        json_array_get(json_object_get(cfg, "confluences"), 0), "acl");
    if (tickets) {
        json_error_t je;
        json_t *t = json_loads(tickets, 0, &je);
        assert_non_null(t);
        json_object_set_new(acl, "tickets", t);
    } else {
        json_object_set_new(cfg, "ticket_issuer", json_null());
    }
    char *text = json_dumps(cfg, 0);
    co_config_file *f = NULL;
    int rc = co_config_file_parse(text, strlen(text), "bad.json", &f, err);
    if (rc == 0)
        fail_msg("accepted %s", tickets ? tickets : "(no ticket_issuer)");
    assert_int_equal(rc, CO_ECONFIG);
    for (; *want; want++)
        if (!strstr(err, *want))
            fail_msg("error \"%s\" does not say \"%s\"", err, *want);
    free(text);
    json_decref(cfg);
}

#define REFUSED(t, ...)                                                       \
    refused((t), (const char *const[]){__VA_ARGS__, NULL})

static void strict_json_names_the_problem(void **state)
{
    REFUSED("{\"issuer\": \"coalition\", \"key\": []}",
            "confluences[0].acl.tickets.key", "unknown key \"key\"");
    REFUSED("{\"keys\": [\"" KEY1 "\"]}", "confluences[0].acl.tickets.issuer",
            "missing field \"issuer\"");
    REFUSED("{\"issuer\": \"coalition\", \"keys\": [\"" KEY1 "\"]}",
            "confluences[0].acl.tickets.keys", "give no keys");
    REFUSED("{\"issuer\": \"other-issuer\"}",
            "confluences[0].acl.tickets.keys", "1 to 16 signing keys");
    REFUSED("{\"issuer\": \"other-issuer\", \"keys\": [\"k1\"]}",
            "confluences[0].acl.tickets.keys[0]", "64 hex");
    REFUSED("{\"issuer\": \"other-issuer\", \"keys\": [\"" KEY1 "\", \"" KEY1
            "\"]}",
            "confluences[0].acl.tickets.keys[1]", "repeats");
    REFUSED("{\"issuer\": \"coalition\", \"max_lifetime_s\": -1}",
            "confluences[0].acl.tickets.max_lifetime_s", "integer");
    REFUSED("{\"issuer\": \"coalition\", \"max_lifetime_s\": \"1d\"}",
            "confluences[0].acl.tickets.max_lifetime_s", "integer");
    REFUSED("{\"issuer\": \"coalition\", \"audience\": \"a,b\"}",
            "confluences[0].acl.tickets.audience", "without ','");
    REFUSED("{\"issuer\": \"\"}", "confluences[0].acl.tickets.issuer",
            "must not be empty");
    REFUSED("[\"coalition\"]", "confluences[0].acl.tickets",
            "expected an object");
    REFUSED(NULL, "confluences[0].acl.tickets.issuer", "no ticket_issuer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fingerprints_from_static_const),
        cmocka_unit_test(coalition_from_json_and_back),
        cmocka_unit_test(strict_json_names_the_problem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
