/* Tickets and validator composition: ticket ids, the vtable contract, the
 * maximum expiry within one class, the earliest across validators, and the
 * same rules with real JWT validators (mosaik's multiple-validator tests,
 * reference/mosaik.md §11.4).
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/jwt.h"
#include "mosaik/ticket.h"
#include "testutil.h"

#define NOW_S 1700000000LL
#define NOW_MS (NOW_S * 1000)

/* ---- a scripted validator ----------------------------------------------- */

/* Judges a ticket by its text: "ok:<ms>" valid until ms, "never" valid
 * forever, "oom" cannot decide, anything else refused. Counts its calls
 * and frees. */
typedef struct script {
    int calls, frees;
} script;

static int script_validate(const struct mk_ticket_validator *v,
                           const uint8_t *data, size_t len,
                           const mk_peer_id *peer, int64_t now_ms,
                           int64_t *expires_ms, char *why)
{
    script *s = v->data;
    s->calls++;
    char text[64];
    snprintf(text, sizeof text, "%.*s", (int)len, (const char *)data);
    if (strncmp(text, "ok:", 3) == 0) {
        *expires_ms = strtoll(text + 3, NULL, 10);
        return 0;
    }
    if (strcmp(text, "never") == 0) {
        *expires_ms = MK_TICKET_NEVER;
        return 0;
    }
    if (strcmp(text, "oom") == 0)
        return MK_ENOMEM;
    snprintf(why, MK_ERRMSG_SIZE, "script refuses '%s'", text);
    return MK_EDECODE;
}

static void script_free(struct mk_ticket_validator *v)
{
    ((script *)v->data)->frees++;
}

static struct mk_ticket_validator scripted(script *s, const char *class_name)
{
    struct mk_ticket_validator v = {
        .version = MK_TICKET_VALIDATOR_VERSION,
        .data = s,
        .validate = script_validate,
        .free = script_free,
    };
    mk_id_from_str(&v.class, class_name);
    mk_id_from_str(&v.signature, class_name);
    return v;
}

static mk_ticket ticket(const char *class_name, const char *text)
{
    mk_ticket t;
    mk_id c;
    mk_id_from_str(&c, class_name);
    assert_int_equal(mk_ticket_init(&t, &c, text, strlen(text)), 0);
    return t;
}

static void free_all(mk_ticket *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mk_ticket_free(&t[i]);
}

/* ---- tickets ------------------------------------------------------------ */

static void ticket_id_and_copy(void **state)
{
    char buf[4] = "abc";
    mk_ticket t;
    assert_int_equal(mk_ticket_init(&t, &MK_JWT_CLASS, buf, 3), 0);
    buf[0] = 'X'; /* the ticket holds a copy */
    assert_int_equal(t.len, 3);
    assert_memory_equal(t.data, "abc", 3);
    assert_int_equal(t.data[3], '\0');
    mk_id id;
    mk_ticket_id(&t, &id);
    /* reference/mosaik.md §1.8 V12 */
    assert_id_hex(&id,
                  "64d60144722a7586c65f51de4af0dbb1f9189e6cea1266a0bd416d85709d1518");
    mk_ticket_free(&t);
    assert_null(t.data);
    assert_int_equal(t.len, 0);
    mk_ticket_free(&t); /* twice is harmless */
    mk_ticket_free(NULL);

    /* an empty ticket is blake3(class) */
    assert_int_equal(mk_ticket_init(&t, &MK_JWT_CLASS, NULL, 0), 0);
    mk_id want;
    mk_ticket_id(&t, &id);
    mk_id_hash(&want, MK_JWT_CLASS.b, MK_ID_LEN);
    assert_true(mk_id_eq(&id, &want));
    mk_ticket_free(&t);
}

/* ---- one validator across tickets --------------------------------------- */

static void latest_expiry_within_a_class(void **state)
{
    script s = {0};
    struct mk_ticket_validator v = scripted(&s, "class-a");
    mk_peer_id peer;
    mk_id_from_str(&peer, "peer");
    mk_ticket t[] = {
        ticket("class-a", "ok:5000"),  ticket("class-a", "bad"),
        ticket("class-b", "ok:99999"), /* another class: never consulted */
        ticket("class-a", "ok:7000"),  ticket("class-a", "ok:6000"),
    };
    char why[MK_ERRMSG_SIZE] = "untouched";
    int64_t exp = 0;
    assert_int_equal(mk_ticket_validate(&v, t, 5, &peer, NOW_MS, &exp, why),
                     0);
    assert_true(exp == 7000);
    assert_int_equal(s.calls, 4);
    assert_string_equal(why, "untouched"); /* success leaves why alone */

    /* Never is the greatest */
    mk_ticket_free(&t[1]);
    t[1] = ticket("class-a", "never");
    assert_int_equal(mk_ticket_validate(&v, t, 5, &peer, NOW_MS, &exp, why),
                     0);
    assert_true(exp == MK_TICKET_NEVER);

    /* expires_ms and why may be NULL */
    assert_int_equal(mk_ticket_validate(&v, t, 5, &peer, NOW_MS, NULL, NULL),
                     0);
    free_all(t, 5);
}

static void no_valid_ticket(void **state)
{
    script s = {0};
    struct mk_ticket_validator v = scripted(&s, "class-a");
    mk_peer_id peer;
    mk_id_from_str(&peer, "peer");
    char why[MK_ERRMSG_SIZE];
    int64_t exp = 42;

    /* none of the class */
    mk_ticket other[] = {ticket("class-b", "ok:1")};
    assert_int_equal(
        mk_ticket_validate(&v, other, 1, &peer, NOW_MS, &exp, why),
        MK_ENOT_ALLOWED);
    assert_non_null(strstr(why, "no ticket of class"));
    assert_true(exp == 42); /* untouched on failure */
    assert_int_equal(s.calls, 0);
    assert_int_equal(mk_ticket_validate(&v, NULL, 0, &peer, NOW_MS, &exp, why),
                     MK_ENOT_ALLOWED);
    free_all(other, 1);

    /* some of the class, all refused: the last reason is given */
    mk_ticket t[] = {ticket("class-a", "first"), ticket("class-a", "second")};
    assert_int_equal(mk_ticket_validate(&v, t, 2, &peer, NOW_MS, &exp, why),
                     MK_ENOT_ALLOWED);
    assert_non_null(strstr(why, "2 refused"));
    assert_non_null(strstr(why, "script refuses 'second'"));
    free_all(t, 2);

    /* "could not decide" is not "no": MK_ENOMEM is passed up */
    mk_ticket oom[] = {ticket("class-a", "bad"), ticket("class-a", "oom"),
                       ticket("class-a", "ok:1")};
    assert_int_equal(mk_ticket_validate(&v, oom, 3, &peer, NOW_MS, &exp, why),
                     MK_ENOMEM);
    free_all(oom, 3);
}

static void validator_versions(void **state)
{
    script s = {0};
    mk_peer_id peer;
    mk_id_from_str(&peer, "peer");
    mk_ticket t[] = {ticket("class-a", "ok:1")};
    char why[MK_ERRMSG_SIZE];

    struct mk_ticket_validator v = scripted(&s, "class-a");
    v.version = 0; /* unset */
    assert_int_equal(mk_ticket_validate(&v, t, 1, &peer, NOW_MS, NULL, why),
                     MK_EINVAL);
    assert_non_null(strstr(why, "version 0"));
    v.version = MK_TICKET_VALIDATOR_VERSION + 1;
    assert_int_equal(mk_ticket_validate(&v, t, 1, &peer, NOW_MS, NULL, why),
                     MK_EINVAL);
    v.version = MK_TICKET_VALIDATOR_VERSION;
    v.validate = NULL;
    assert_int_equal(mk_ticket_validate(&v, t, 1, &peer, NOW_MS, NULL, why),
                     MK_EINVAL);
    assert_int_equal(mk_ticket_validate(NULL, t, 1, &peer, NOW_MS, NULL, why),
                     MK_EINVAL);
    assert_int_equal(s.calls, 0);

    /* free() runs once, and the struct is zeroed */
    v = scripted(&s, "class-a");
    mk_ticket_validator_free(&v);
    assert_int_equal(s.frees, 1);
    assert_null(v.validate);
    mk_ticket_validator_free(&v);
    assert_int_equal(s.frees, 1);
    mk_ticket_validator_free(NULL);
    free_all(t, 1);
}

/* ---- validators together ------------------------------------------------ */

static void earliest_expiry_across_validators(void **state)
{
    script sa = {0}, sb = {0}, sc = {0};
    struct mk_ticket_validator a = scripted(&sa, "class-a"),
                               b = scripted(&sb, "class-b"),
                               c = scripted(&sc, "class-c");
    mk_peer_id peer;
    mk_id_from_str(&peer, "peer");
    mk_ticket t[] = {ticket("class-a", "ok:9000"), ticket("class-b", "never"),
                     ticket("class-c", "ok:3000"), ticket("class-c", "bad")};
    char why[MK_ERRMSG_SIZE];
    int64_t exp = 0;

    const struct mk_ticket_validator *ab[] = {&a, &b};
    assert_int_equal(
        mk_ticket_validate_all(ab, 2, t, 4, &peer, NOW_MS, &exp, why), 0);
    assert_true(exp == 9000); /* min(9000, Never) */
    const struct mk_ticket_validator *abc[] = {&a, &b, &c};
    assert_int_equal(
        mk_ticket_validate_all(abc, 3, t, 4, &peer, NOW_MS, &exp, why), 0);
    assert_true(exp == 3000);
    const struct mk_ticket_validator *bb[] = {&b, &b};
    assert_int_equal(
        mk_ticket_validate_all(bb, 2, t, 4, &peer, NOW_MS, &exp, why), 0);
    assert_true(exp == MK_TICKET_NEVER);

    /* empty list: nothing asked, never expires */
    exp = 0;
    assert_int_equal(
        mk_ticket_validate_all(NULL, 0, t, 4, &peer, NOW_MS, &exp, why), 0);
    assert_true(exp == MK_TICKET_NEVER);
    assert_int_equal(
        mk_ticket_validate_all(NULL, 0, NULL, 0, &peer, NOW_MS, &exp, why), 0);

    /* one refusal refuses all, naming the validator */
    mk_ticket_free(&t[1]);
    t[1] = ticket("class-b", "bad");
    exp = 77;
    assert_int_equal(
        mk_ticket_validate_all(abc, 3, t, 4, &peer, NOW_MS, &exp, why),
        MK_ENOT_ALLOWED);
    assert_true(exp == 77);
    assert_non_null(strstr(why, "validator 1: no valid ticket"));
    assert_int_equal(sc.calls, 2); /* c ran in the earlier calls only */

    /* a bad validator anywhere is an error, not a refusal */
    c.version = 0;
    const struct mk_ticket_validator *ac[] = {&a, &c};
    assert_int_equal(
        mk_ticket_validate_all(ac, 2, t, 4, &peer, NOW_MS, &exp, why),
        MK_EINVAL);
    assert_non_null(strstr(why, "validator 1:"));
    free_all(t, 4);
}

/* Two issuers, a peer must hold tickets from both (AND); a renewed ticket
 * extends access and an expired one next to it does no harm. */
static void jwt_validators_compose(void **state)
{
    mk_keypair ka, kb;
    uint8_t seed[MK_SEED_LEN];
    memset(seed, 1, sizeof seed);
    mk_keypair_from_seed(&ka, seed);
    memset(seed, 2, sizeof seed);
    mk_keypair_from_seed(&kb, seed);
    mk_id root_a, root_b;
    mk_id_from_str(&root_a, "coalition-a/tickets");
    mk_id_from_str(&root_b, "coalition-b/tickets");
    char ha[MK_ID_HEX_LEN + 1], hb[MK_ID_HEX_LEN + 1], why[MK_ERRMSG_SIZE];
    mk_id_hex(&root_a, ha);
    mk_id_hex(&root_b, hb);
    mk_peer_id peer, stranger;
    mk_id_from_str(&peer, "peer");
    mk_id_from_str(&stranger, "stranger");

    struct mk_ticket_validator va, vb;
    assert_int_equal(mk_jwt_recognise_issuer(&root_a, &ka.pub, 1, &va, why),
                     0);
    assert_int_equal(mk_jwt_recognise_issuer(&root_b, &kb.pub, 1, &vb, why),
                     0);
    assert_false(mk_id_eq(&va.signature, &vb.signature));

    mk_jwt_claims old_a = {.iss = ha, .iat = NOW_S - 7200,
                           .exp = NOW_S - 3600}; /* expired */
    mk_jwt_claims new_a = {.iss = ha, .iat = NOW_S, .exp = NOW_S + 600};
    mk_jwt_claims mid_a = {.iss = ha, .iat = NOW_S, .exp = NOW_S + 300};
    mk_jwt_claims only_b = {.iss = hb, .iat = NOW_S, .exp = NOW_S + 120};
    mk_ticket t[5];
    assert_int_equal(mk_jwt_issue_ticket(&t[0], &ka, &peer, &old_a, why), 0);
    assert_int_equal(mk_jwt_issue_ticket(&t[1], &ka, &peer, &new_a, why), 0);
    assert_int_equal(mk_jwt_issue_ticket(&t[2], &ka, &peer, &mid_a, why), 0);
    assert_int_equal(mk_jwt_issue_ticket(&t[3], &kb, &peer, &only_b, why), 0);
    /* b's root signed with a's key: refused by both */
    mk_jwt_claims forged = {.iss = hb, .iat = NOW_S, .exp = NOW_S + 9999};
    assert_int_equal(mk_jwt_issue_ticket(&t[4], &ka, &peer, &forged, why), 0);

    int64_t exp = 0;
    assert_int_equal(mk_ticket_validate(&va, t, 5, &peer, NOW_MS, &exp, why),
                     0);
    assert_true(exp == (NOW_S + 600) * 1000); /* the renewed one */
    assert_int_equal(mk_ticket_validate(&vb, t, 5, &peer, NOW_MS, &exp, why),
                     0);
    assert_true(exp == (NOW_S + 120) * 1000); /* not the forged 9999 */

    const struct mk_ticket_validator *both[] = {&va, &vb};
    assert_int_equal(
        mk_ticket_validate_all(both, 2, t, 5, &peer, NOW_MS, &exp, why), 0);
    assert_true(exp == (NOW_S + 120) * 1000);

    /* a subset of the tickets is not enough */
    assert_int_equal(
        mk_ticket_validate_all(both, 2, t, 3, &peer, NOW_MS, &exp, why),
        MK_ENOT_ALLOWED);
    assert_non_null(strstr(why, "validator 1:"));
    /* past b's expiry the pair fails even though a's ticket lives on */
    assert_int_equal(mk_ticket_validate_all(both, 2, t, 5, &peer,
                                            (NOW_S + 120) * 1000, &exp, why),
                     MK_ENOT_ALLOWED);
    assert_non_null(strstr(why, "validator 1: no valid ticket"));
    assert_non_null(strstr(why, "5 refused")); /* all five are JWTs */
    /* the same (unexpired) tickets presented by someone else */
    assert_int_equal(mk_ticket_validate_all(both, 2, &t[1], 2, &stranger,
                                            NOW_MS, &exp, why),
                     MK_ENOT_ALLOWED);
    assert_non_null(strstr(why, "validator 0:"));
    assert_non_null(strstr(why, "sub"));

    free_all(t, 5);
    mk_ticket_validator_free(&va);
    mk_ticket_validator_free(&vb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ticket_id_and_copy),
        cmocka_unit_test(latest_expiry_within_a_class),
        cmocka_unit_test(no_valid_ticket),
        cmocka_unit_test(validator_versions),
        cmocka_unit_test(earliest_expiry_across_validators),
        cmocka_unit_test(jwt_validators_compose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
