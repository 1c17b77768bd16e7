/* What co_chronicle_verify_entries vouches for, on chains built in memory
 * with real Ed25519 keys.
 *
 * The hash formula is public, so a forger can always build a chain whose
 * hashes and links are perfect. Only a head signed by a majority of the
 * committee makes entries verified: these tests forge chains the ways a
 * forger would (signatures stripped, a rewrite re-signed by an outsider,
 * a minority, nothing at all) and check each is refused with a reason,
 * and that an honest head vouches for exactly the entries it covers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/coalition/modules_internal.h"
#include "coalition/chronicle.h"
#include "coalition/chronicle_record.h"
#include "coalition/error.h"
#include "mosaik/blake3.h"
#include "testutil.h"

#define MAX_ENTRIES 8
#define MAX_SIGS 6

static mk_keypair members[3], outsider;
static mk_peer_id committee[3];

/* A chain the test owns: entries point into bodies and sigs. */
typedef struct chain {
    co_chronicle_entry v[MAX_ENTRIES];
    char bodies[MAX_ENTRIES][32];
    co_member_sig sigs[MAX_ENTRIES][MAX_SIGS];
    size_t n;
} chain;

static int setup(void **state)
{
    for (int i = 0; i < 3; i++) {
        uint8_t seed[32];
        memset(seed, 0x21 + i, sizeof seed);
        mk_keypair_from_seed(&members[i], seed);
        committee[i] = members[i].pub;
    }
    uint8_t seed[32];
    memset(seed, 0x77, sizeof seed);
    mk_keypair_from_seed(&outsider, seed);
    return 0;
}

/* Recomputes every hash and link from entry `from` on, as a forger who
 * knows the formula would; signatures are left as they are. */
static void rehash(chain *c, size_t from)
{
    for (size_t i = from; i < c->n; i++) {
        co_chronicle_entry *e = &c->v[i];
        if (i > 0)
            e->prev = c->v[i - 1].hash;
        co__chronicle_entry_hash(e->seq, e->kind, &e->subject, e->body,
                                 e->body_len, &e->prev, &e->hash);
    }
}

static void sign(chain *c, size_t i, const mk_keypair *kp)
{
    co_chronicle_entry *e = &c->v[i];
    assert_true(e->n_sigs < MAX_SIGS);
    co_member_sig *s = &c->sigs[i][e->n_sigs++];
    s->member = kp->pub;
    assert_int_equal(co__chronicle_sign_hash(kp, &e->hash, s->sig), 0);
}

static void strip(chain *c, size_t i)
{
    c->v[i].n_sigs = 0;
}

/* `n` entries, entry i signed by the first signers[i] members. */
static void build(chain *c, size_t n, const int *signers)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        co_chronicle_entry *e = &c->v[i];
        snprintf(c->bodies[i], sizeof c->bodies[i], "record %zu", i + 1);
        e->seq = i + 1;
        e->kind = i == 0 ? "config" : "rotation";
        mk_id_from_str(&e->subject, "feed.alpha");
        e->body = (const uint8_t *)c->bodies[i];
        e->body_len = strlen(c->bodies[i]);
        e->sigs = c->sigs[i];
    }
    rehash(c, 0);
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < signers[i]; m++)
            sign(c, i, &members[m]);
}

static void verify(const chain *c, co_chronicle_check *out)
{
    co_chronicle_verify_entries(c->v, c->n, committee, 3, out);
}

static void assert_refused(const co_chronicle_check *k, int status,
                           const char *why)
{
    assert_false(k->ok);
    assert_false(k->complete);
    assert_int_equal(k->status, status);
    assert_int_equal(k->signed_head, 0);
    assert_int_equal(k->head_signers, 0);
    if (!strstr(k->why, why))
        fail_msg("wanted \"%s\" in: %s", why, k->why);
}

static void valid_chain_is_verified(void **state)
{
    chain c;
    build(&c, 3, (const int[]){3, 2, 3});
    co_chronicle_check k;
    verify(&c, &k);
    assert_true(k.ok);
    assert_true(k.complete);
    assert_int_equal(k.status, 0);
    assert_int_equal(k.entries, 3);
    assert_int_equal(k.signed_head, 3);
    assert_int_equal(k.head_signers, 3);
    assert_int_equal(k.committee, 3);
    assert_int_equal(k.needed, 2);
    assert_true(mk_id_eq(&k.head_hash, &c.v[2].hash));
    assert_string_equal(k.why, "");

    /* An honest head vouches for earlier entries whatever they carry. */
    strip(&c, 0);
    strip(&c, 1);
    verify(&c, &k);
    assert_true(k.ok && k.complete);
    assert_int_equal(k.signed_head, 3);
}

static void stripped_signatures_are_refused(void **state)
{
    chain c;
    build(&c, 3, (const int[]){3, 3, 3});
    for (size_t i = 0; i < c.n; i++)
        strip(&c, i);
    co_chronicle_check k;
    verify(&c, &k);
    assert_refused(&k, CO_EUNVERIFIED, "no signed head");
    assert_non_null(strstr(k.why, "the most is 0"));

    /* The forger's real aim: rewrite a body, recompute every hash. */
    snprintf(c.bodies[1], sizeof c.bodies[1], "forged");
    c.v[1].body_len = strlen(c.bodies[1]);
    rehash(&c, 1);
    verify(&c, &k);
    assert_refused(&k, CO_EUNVERIFIED, "no signed head");
    assert_int_equal(k.entries, 3);
}

static void rewrite_resigned_by_outsider_is_refused(void **state)
{
    chain c;
    build(&c, 3, (const int[]){3, 3, 3});
    snprintf(c.bodies[0], sizeof c.bodies[0], "forged");
    c.v[0].body_len = strlen(c.bodies[0]);
    rehash(&c, 0);
    for (size_t i = 0; i < c.n; i++)
        strip(&c, i);
    sign(&c, 2, &outsider);
    co_chronicle_check k;
    verify(&c, &k);
    assert_refused(&k, CO_ECHAIN, "outside the committee");
    assert_int_equal(k.first_bad, 3);

    /* The outsider's signature filed under a member's key. */
    strip(&c, 2);
    sign(&c, 2, &outsider);
    sign(&c, 2, &outsider);
    c.sigs[2][0].member = members[0].pub;
    c.sigs[2][1].member = members[1].pub;
    verify(&c, &k);
    assert_refused(&k, CO_ECHAIN, "signature does not verify");
    assert_int_equal(k.first_bad, 3);
    assert_non_null(strstr(k.why, "signature 1 of 2"));
}

static void minority_head_is_refused(void **state)
{
    chain c;
    build(&c, 3, (const int[]){0, 0, 1});
    co_chronicle_check k;
    verify(&c, &k);
    assert_refused(&k, CO_EUNVERIFIED, "no signed head");
    assert_non_null(strstr(k.why, "2 of the 3 committee members"));
    assert_non_null(strstr(k.why, "the most is 1, on entry 3"));

    /* One member signing twice is still one member. */
    sign(&c, 2, &members[0]);
    assert_int_equal(c.v[2].n_sigs, 2);
    verify(&c, &k);
    assert_refused(&k, CO_EUNVERIFIED, "the most is 1, on entry 3");
}

static void empty_log_is_refused(void **state)
{
    co_chronicle_check k;
    co_chronicle_verify_entries(NULL, 0, committee, 3, &k);
    assert_refused(&k, CO_EUNVERIFIED, "empty");
    assert_int_equal(k.entries, 0);
}

static void head_covers_only_what_precedes_it(void **state)
{
    chain c;
    build(&c, 4, (const int[]){3, 2, 1, 0});
    co_chronicle_check k;
    verify(&c, &k);
    assert_true(k.ok);
    assert_false(k.complete);
    assert_int_equal(k.status, 0);
    assert_int_equal(k.entries, 4);
    assert_int_equal(k.signed_head, 2);
    assert_int_equal(k.head_signers, 2);
    assert_true(mk_id_eq(&k.head_hash, &c.v[1].hash));
    assert_string_equal(k.why, "entries 3..4 are present but not covered "
                               "by a signed head");

    /* Entries forged after an honest head are not vouched for either. */
    build(&c, 3, (const int[]){3, 3, 0});
    snprintf(c.bodies[2], sizeof c.bodies[2], "appended by a forger");
    c.v[2].body_len = strlen(c.bodies[2]);
    rehash(&c, 2);
    verify(&c, &k);
    assert_true(k.ok);
    assert_false(k.complete);
    assert_int_equal(k.signed_head, 2);
    assert_string_equal(k.why, "entry 3 is present but not covered by a "
                               "signed head");
}

static void chain_defects_are_named(void **state)
{
    chain c;
    co_chronicle_check k;

    /* A chain that does not start at 1: the first entry dropped. */
    build(&c, 3, (const int[]){3, 3, 3});
    memmove(&c.v[0], &c.v[1], 2 * sizeof c.v[0]);
    c.n = 2;
    verify(&c, &k);
    assert_refused(&k, CO_ECHAIN, "starts at seq 2");
    assert_int_equal(k.first_bad, 1);

    /* A signature after the head is checked too. */
    build(&c, 3, (const int[]){3, 3, 1});
    c.sigs[2][0].sig[5] ^= 1;
    verify(&c, &k);
    assert_refused(&k, CO_ECHAIN, "signature does not verify");
    assert_int_equal(k.first_bad, 3);

    /* A body changed without recomputing its hash. */
    build(&c, 3, (const int[]){3, 3, 3});
    c.bodies[1][0] ^= 1;
    verify(&c, &k);
    assert_refused(&k, CO_ECHAIN, "hash does not match");
    assert_int_equal(k.first_bad, 2);

    /* A committee that repeats a key would let one member count twice. */
    build(&c, 1, (const int[]){1});
    mk_peer_id twice[3] = {members[0].pub, members[0].pub, members[1].pub};
    co_chronicle_verify_entries(c.v, c.n, twice, 3, &k);
    assert_refused(&k, CO_ECONFIG, "repeats");
    co_chronicle_verify_entries(c.v, c.n, committee, 0, &k);
    assert_refused(&k, CO_ECONFIG, "1 to");
}

/* The kinds members record are entries like any other: the verifier
 * knows no kind, so a chain of each verifies, and a flipped byte in a
 * record's body is named like any tampering. */
static void every_record_kind_verifies(void **state)
{
    uint8_t card[CO_RECORD_CARD_LEN], card2[CO_RECORD_CARD_LEN],
        rot[CO_RECORD_ROTATION_LEN];
    co_record_card rc = {.publication = 12};
    mk_id_from_str(&rc.card, "card v1");
    mk_id_from_str(&rc.citizen, "feed.alpha");
    co_record_card_encode(&rc, card);
    co_record_card rc2 = rc;
    rc2.publication = 15;
    rc2.replaced = true;
    rc2.previous = rc.card;
    mk_id_from_str(&rc2.card, "card v2");
    co_record_card_encode(&rc2, card2);
    co_record_rotation rr = {.has_new = true};
    mk_id_from_str(&rr.new_hash, "feed.alpha/content-v2");
    co_record_rotation_encode(&rr, rot);

    /* Round trips, and a second encoding of the same fact is refused. */
    co_record_card dc;
    assert_int_equal(co_record_card_decode(card2, sizeof card2, &dc), 0);
    assert_true(dc.replaced && dc.publication == 15);
    assert_true(mk_id_eq(&dc.previous, &rc.card));
    assert_true(mk_id_eq(&dc.citizen, &rc.citizen));
    card[100] ^= 1; /* bytes where no replaced card is named */
    assert_int_equal(co_record_card_decode(card, sizeof card, &dc),
                     MK_EDECODE);
    card[100] ^= 1;
    assert_int_equal(co_record_card_decode(card, sizeof card - 1, &dc),
                     MK_EDECODE);
    co_record_rotation dr;
    assert_int_equal(co_record_rotation_decode(rot, sizeof rot, &dr), 0);
    assert_true(!dr.has_old && dr.has_new);
    assert_true(mk_id_eq(&dr.new_hash, &rr.new_hash));
    rot[1] = 4;
    assert_int_equal(co_record_rotation_decode(rot, sizeof rot, &dr),
                     MK_EDECODE);
    rot[1] = 2;

    const char *cfg = "{\"name\": \"x\"}", *reason = "moved";
    struct {
        const char *kind;
        const char *subject;
        const uint8_t *body;
        size_t len;
    } rows[] = {
        {CO_RECORD_CONFIG, "coalition", (const uint8_t *)cfg, strlen(cfg)},
        {CO_RECORD_ATLAS_CARD, "feed.alpha", card, sizeof card},
        {CO_RECORD_ATLAS_CARD, "feed.alpha", card2, sizeof card2},
        {CO_RECORD_ROTATION, "feed.alpha", rot, sizeof rot},
        {CO_RECORD_RETIRED, "successor", (const uint8_t *)reason,
         strlen(reason)},
    };
    enum { N = 5 };
    co_chronicle_entry v[N];
    co_member_sig sigs[N][3];
    memset(v, 0, sizeof v);
    for (size_t i = 0; i < N; i++) {
        v[i].seq = i + 1;
        v[i].kind = rows[i].kind;
        mk_id_from_str(&v[i].subject, rows[i].subject);
        v[i].body = rows[i].body;
        v[i].body_len = rows[i].len;
        if (i > 0)
            v[i].prev = v[i - 1].hash;
        co__chronicle_entry_hash(v[i].seq, v[i].kind, &v[i].subject,
                                 v[i].body, v[i].body_len, &v[i].prev,
                                 &v[i].hash);
    }
    for (int m = 0; m < 3; m++) {
        sigs[N - 1][m].member = members[m].pub;
        co__chronicle_sign_hash(&members[m], &v[N - 1].hash,
                                sigs[N - 1][m].sig);
    }
    v[N - 1].sigs = sigs[N - 1];
    v[N - 1].n_sigs = 3;
    co_chronicle_check k;
    co_chronicle_verify_entries(v, N, committee, 3, &k);
    assert_true(k.ok && k.complete);
    assert_int_equal(k.signed_head, N);

    uint8_t forged[CO_RECORD_CARD_LEN];
    memcpy(forged, card2, sizeof forged);
    forged[80] ^= 1; /* the card it replaced */
    v[2].body = forged;
    co_chronicle_verify_entries(v, N, committee, 3, &k);
    assert_false(k.ok);
    assert_int_equal(k.status, CO_ECHAIN);
    assert_int_equal(k.first_bad, 3);
    assert_non_null(strstr(k.why, "hash does not match"));
}

/* An operator's signed request, built from the formula in
 * docs/groups.md rather than the library's own code: blake3 of
 * "mosaik/group/assign/1" ‖ GroupId ‖ member ‖ role ‖ signer ‖ u64le ms. */
static void operator_signs(const mk_id *gid, mk_group_member_event *ev,
                           const mk_keypair *kp, uint8_t role)
{
    uint8_t at[8];
    for (int i = 0; i < 8; i++)
        at[i] = (uint8_t)(ev->at_unix_ms >> (8 * i));
    ev->by_operator = true;
    ev->by = kp->pub;
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, "mosaik/group/assign/1", 21);
    mk_blake3_update(&h, gid->b, MK_ID_LEN);
    mk_blake3_update(&h, ev->member.b, MK_ID_LEN);
    mk_blake3_update(&h, &role, 1);
    mk_blake3_update(&h, kp->pub.b, MK_ID_LEN);
    mk_blake3_update(&h, at, sizeof at);
    uint8_t digest[32];
    mk_blake3_final(&h, digest, sizeof digest);
    mk_sign(kp, digest, sizeof digest, ev->sig);
}

/* Entries 1..n hashed and chained, the last signed by the committee. */
static void chain_and_sign(co_chronicle_entry *v, size_t n,
                           co_member_sig sigs[3])
{
    for (size_t i = 0; i < n; i++) {
        v[i].seq = i + 1;
        v[i].prev = i ? v[i - 1].hash : (mk_id){{0}};
        co__chronicle_entry_hash(v[i].seq, v[i].kind, &v[i].subject,
                                 v[i].body, v[i].body_len, &v[i].prev,
                                 &v[i].hash);
        v[i].n_sigs = 0;
    }
    for (int m = 0; m < 3; m++) {
        sigs[m].member = members[m].pub;
        co__chronicle_sign_hash(&members[m], &v[n - 1].hash, sigs[m].sig);
    }
    v[n - 1].sigs = sigs;
    v[n - 1].n_sigs = 3;
}

/* committee.change records: one encoding per fact, and a record of an
 * operator's change must carry that operator's signature for that
 * group, even under a head the whole committee signed. */
static void committee_changes_verify(void **state)
{
    mk_id gid, other;
    mk_id_from_str(&gid, "the almanac's group");
    mk_id_from_str(&other, "another group");
    co_record_committee op = {.module = 1}, auto_ = {.module = 1};
    op.ev.index = 41;
    op.ev.change = MK_MEMBER_PROMOTED;
    op.ev.at_unix_ms = 1700000000123;
    mk_id_from_str(&op.ev.member, "the new key");
    operator_signs(&gid, &op.ev, &members[0], 1);
    auto_.ev.index = 57;
    auto_.ev.change = MK_MEMBER_DEMOTED;
    auto_.ev.member = op.ev.member;
    auto_.ev.by = members[1].pub;
    assert_int_equal(mk_group_assign_verify(&gid, &op.ev), 0);
    assert_int_equal(mk_group_assign_verify(&other, &op.ev),
                     MK_EBAD_SIGNATURE);
    assert_int_equal(mk_group_assign_verify(&gid, &auto_.ev), MK_EINVAL);

    uint8_t b1[CO_RECORD_COMMITTEE_LEN], b2[CO_RECORD_COMMITTEE_LEN];
    co_record_committee_encode(&op, b1);
    co_record_committee_encode(&auto_, b2);
    co_record_committee d;
    assert_int_equal(co_record_committee_decode(b1, sizeof b1, &d), 0);
    assert_true(d.ev.by_operator && d.ev.index == 41 && d.module == 1);
    assert_int_equal(d.ev.change, MK_MEMBER_PROMOTED);
    assert_true(mk_id_eq(&d.ev.by, &members[0].pub));
    assert_int_equal(d.ev.at_unix_ms, 1700000000123);
    assert_memory_equal(d.ev.sig, op.ev.sig, MK_SIG_LEN);
    assert_int_equal(co_record_committee_decode(b2, sizeof b2, &d), 0);
    assert_false(d.ev.by_operator);
    /* The leader's change carries no time and no signature. */
    b2[100] = 1;
    assert_int_equal(co_record_committee_decode(b2, sizeof b2, &d),
                     MK_EDECODE);
    b2[100] = 0;
    b2[2] = 5; /* no such change */
    assert_int_equal(co_record_committee_decode(b2, sizeof b2, &d),
                     MK_EDECODE);
    b2[2] = MK_MEMBER_DEMOTED;
    assert_int_equal(co_record_committee_decode(b2, sizeof b2 - 1, &d),
                     MK_EDECODE);

    const char *cfg = "{\"name\": \"x\"}";
    co_chronicle_entry v[3];
    co_member_sig sigs[3];
    memset(v, 0, sizeof v);
    v[0].kind = CO_RECORD_CONFIG;
    v[0].body = (const uint8_t *)cfg;
    v[0].body_len = strlen(cfg);
    v[1].kind = v[2].kind = CO_RECORD_COMMITTEE;
    v[1].subject = v[2].subject = gid;
    v[1].body = b1;
    v[2].body = b2;
    v[1].body_len = v[2].body_len = CO_RECORD_COMMITTEE_LEN;
    chain_and_sign(v, 3, sigs);
    co_chronicle_check k;
    co_chronicle_verify_entries(v, 3, committee, 3, &k);
    assert_true(k.ok && k.complete);

    /* The committee signs a record whose operator never asked: refused
     * at that entry, whatever signed the head. */
    uint8_t forged[CO_RECORD_COMMITTEE_LEN];
    memcpy(forged, b1, sizeof forged);
    forged[2] = MK_MEMBER_DEMOTED; /* the operator promoted */
    v[1].body = forged;
    chain_and_sign(v, 3, sigs);
    co_chronicle_verify_entries(v, 3, committee, 3, &k);
    assert_false(k.ok);
    assert_int_equal(k.status, CO_ECHAIN);
    assert_int_equal(k.first_bad, 2);
    if (!strstr(k.why, "operator's signature"))
        fail_msg("wanted the operator's signature named in: %s", k.why);
    /* Another group's change, or one that does not decode. */
    v[1].body = b1;
    v[1].subject = other;
    chain_and_sign(v, 3, sigs);
    co_chronicle_verify_entries(v, 3, committee, 3, &k);
    assert_int_equal(k.first_bad, 2);
    v[1].subject = gid;
    v[1].body_len = CO_RECORD_COMMITTEE_LEN - 1;
    chain_and_sign(v, 3, sigs);
    co_chronicle_verify_entries(v, 3, committee, 3, &k);
    assert_int_equal(k.first_bad, 2);
    assert_non_null(strstr(k.why, "does not decode"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_chain_is_verified),
        cmocka_unit_test(stripped_signatures_are_refused),
        cmocka_unit_test(rewrite_resigned_by_outsider_is_refused),
        cmocka_unit_test(minority_head_is_refused),
        cmocka_unit_test(empty_log_is_refused),
        cmocka_unit_test(head_covers_only_what_precedes_it),
        cmocka_unit_test(chain_defects_are_named),
        cmocka_unit_test(every_record_kind_verifies),
        cmocka_unit_test(committee_changes_verify),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
