/* The Atlas, Almanac and Chronicle state machines, driven directly:
 * every rule that makes their facts trustworthy, and determinism
 * (replicas fed the same commands hold the same bytes). */
#include <stdlib.h>
#include <string.h>

#include "../../src/coalition/modules_internal.h"
#include "coalition/card.h"
#include "mosaik/error.h"
#include "testutil.h"

static mk_keypair members[3], outsider;
static co_module_info info;

static int setup(void **state)
{
    memset(&info, 0, sizeof info);
    for (int i = 0; i < 3; i++) {
        uint8_t seed[32];
        memset(seed, 0x10 + i, sizeof seed);
        mk_keypair_from_seed(&members[i], seed);
        info.committee[i] = members[i].pub;
    }
    info.n_committee = 3;
    uint8_t seed[32];
    memset(seed, 0x99, sizeof seed);
    mk_keypair_from_seed(&outsider, seed);
    return 0;
}

/* Applies one command and returns apply()'s status; the result's first
 * byte (the "took effect" flag) lands in *flag when not NULL. */
static int apply(struct mk_fsm *f, mk_buf *cmd, int *flag)
{
    mk_buf res;
    mk_buf_init(&res);
    assert_int_equal(cmd->err, 0);
    int rc = f->apply(f, cmd->data, cmd->len, &res);
    if (flag)
        *flag = res.len ? res.data[0] : -1;
    mk_buf_free(&res);
    mk_buf_reset(cmd);
    return rc;
}

static void same_snapshot(struct mk_fsm *a, struct mk_fsm *b)
{
    mk_buf x, y;
    mk_buf_init(&x);
    mk_buf_init(&y);
    assert_int_equal(a->snapshot(a, &x), 0);
    assert_int_equal(b->snapshot(b, &y), 0);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    mk_buf_free(&x);
    mk_buf_free(&y);
}

static void card_bytes(mk_buf *out, const char *role, const char *hint)
{
    const char *hints[] = {hint};
    uint8_t pin[1][CO_MRTD_LEN] = {{7}};
    co_citizen_card c = {.role = role,
                         .endpoint_hints = hints,
                         .n_endpoint_hints = 1,
                         .mrtd_pins = (const uint8_t(*)[CO_MRTD_LEN])pin,
                         .n_mrtd_pins = 1,
                         .schema_version = CO_CARD_SCHEMA_VERSION};
    mk_id_from_str(&c.citizen_id, "price-feed.eur");
    mk_id_from_str(&c.ticket_issuance_root, "tickets");
    assert_int_equal(co_card_encode(&c, out), 0);
}

static void card_round_trip_and_strictness(void **state)
{
    mk_buf b;
    mk_buf_init(&b);
    card_bytes(&b, "oracle", "127.0.0.1:7000");
    co_card c;
    assert_int_equal(co_card_decode(&c, b.data, b.len), 0);
    assert_string_equal(c.card.role, "oracle");
    assert_string_equal(c.card.endpoint_hints[0], "127.0.0.1:7000");
    assert_int_equal(c.card.mrtd_pins[0][0], 7);
    co_card_free(&c);
    /* Trailing bytes, truncation and an empty role are refused. */
    mk_put_u8(&b, 0);
    assert_int_equal(co_card_decode(&c, b.data, b.len), MK_EDECODE);
    assert_int_equal(co_card_decode(&c, b.data, b.len - 3), MK_EDECODE);
    co_citizen_card empty = {.role = ""};
    mk_buf_reset(&b);
    assert_int_equal(co_card_encode(&empty, &b), CO_ECONFIG);
    mk_buf_free(&b);
}

static void atlas_needs_a_majority(void **state)
{
    struct mk_fsm f, g;
    assert_int_equal(co__atlas_fsm_init(&f, &info), 0);
    assert_int_equal(co__atlas_fsm_init(&g, &info), 0);
    mk_buf card, cmd;
    mk_buf_init(&card);
    mk_buf_init(&cmd);
    card_bytes(&card, "oracle", "a:1");
    int flag;
    co__atlas_cmd_publish(&cmd, card.data, card.len, &members[1]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 1);
    co__atlas_cmd_publish(&cmd, card.data, card.len, &members[1]); /* same bytes again */
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 2);
    assert_int_equal(co__atlas_count(&f), 1);
    const co__atlas_item *it = co__atlas_at(&f, 0);
    assert_int_equal(it->n_sigs, 1); /* the publishing member's */
    assert_false(co__atlas_verified(&f, it));

    /* Nobody outside the committee may publish. */
    mk_buf other;
    mk_buf_init(&other);
    card_bytes(&other, "intruder", "x:1");
    co__atlas_cmd_publish(&cmd, other.data, other.len, &outsider);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(co__atlas_count(&f), 1);
    mk_buf_free(&other);

    /* An outsider's signature and a tampered one are not kept. */
    co__atlas_cmd_sign(&cmd, it, &outsider);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    co__atlas_cmd_sign(&cmd, it, &members[0]);
    cmd.data[cmd.len - 1] ^= 1;
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    mk_buf_reset(&cmd);

    co__atlas_cmd_sign(&cmd, it, &members[1]); /* the publisher again */
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    assert_false(co__atlas_verified(&f, it)); /* 1 of 3 */
    co__atlas_cmd_sign(&cmd, it, &members[0]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 1);
    assert_true(co__atlas_verified(&f, it)); /* 2 of 3 */
    /* Signatures are stored in committee order, whatever the arrival. */
    assert_true(mk_id_eq(&it->sigs[0].member, &members[0].pub));

    /* A replica restored from a snapshot holds the same state. */
    mk_buf snap;
    mk_buf_init(&snap);
    assert_int_equal(f.snapshot(&f, &snap), 0);
    assert_int_equal(g.restore(&g, snap.data, snap.len), 0);
    same_snapshot(&f, &g);
    assert_true(co__atlas_verified(&g, co__atlas_at(&g, 0)));

    /* A new version of the card starts unsigned; old signatures for the
     * previous bytes are refused. */
    mk_buf card2;
    mk_buf_init(&card2);
    card_bytes(&card2, "oracle", "b:2");
    mk_buf stale;
    mk_buf_init(&stale);
    co__atlas_cmd_sign(&stale, co__atlas_at(&f, 0), &members[1]);
    co__atlas_cmd_publish(&cmd, card2.data, card2.len, &members[1]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(co__atlas_count(&f), 1);
    assert_false(co__atlas_verified(&f, co__atlas_at(&f, 0)));
    assert_int_equal(apply(&f, &stale, &flag), 0);
    assert_int_equal(flag, 0);
    mk_buf_free(&stale);

    /* A malformed command is refused — alike on every replica, and without
     * halting the group, since anyone can reach a module. A malformed
     * snapshot is an error. Neither changes anything. */
    mk_buf before;
    mk_buf_init(&before);
    assert_int_equal(f.snapshot(&f, &before), 0);
    uint8_t junk[] = {CO__ATLAS_SIGN, 1, 2}, unknown[] = {0x42};
    mk_buf res;
    mk_buf_init(&res);
    assert_int_equal(f.apply(&f, junk, sizeof junk, &res), 0);
    assert_int_equal(res.len, 1);
    assert_int_equal(res.data[0], 0);
    mk_buf_reset(&res);
    assert_int_equal(f.apply(&f, unknown, sizeof unknown, &res), 0);
    assert_int_equal(res.data[0], 0);
    assert_int_equal(g.restore(&g, junk, sizeof junk), MK_EDECODE);
    mk_buf after;
    mk_buf_init(&after);
    assert_int_equal(f.snapshot(&f, &after), 0);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, after.len);
    mk_buf_free(&before);
    mk_buf_free(&after);
    mk_buf_free(&res);

    /* Only a member may retire it, and only for this module. */
    co__cmd_retire(&cmd, &f.signature, "hostile", NULL, &outsider);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    mk_id other_module;
    mk_id_from_str(&other_module, "coalition.almanac/1");
    co__cmd_retire(&cmd, &other_module, "replayed", NULL, &members[2]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    assert_false(co__atlas_retirement(&f)->retired);

    /* Retired: the marker stands, later publishes change nothing. */
    co__cmd_retire(&cmd, &f.signature, "superseded", &info.root, &members[2]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_true(co__atlas_retirement(&f)->retired);
    assert_string_equal(co__atlas_retirement(&f)->reason, "superseded");
    co__atlas_cmd_publish(&cmd, card.data, card.len, &members[1]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);

    mk_buf_free(&snap);
    mk_buf_free(&card);
    mk_buf_free(&card2);
    mk_buf_free(&cmd);
    co__atlas_fsm_free(&f);
    co__atlas_fsm_free(&g);
}

static void almanac_never_repeats_or_skips(void **state)
{
    struct mk_fsm f, g;
    assert_int_equal(co__almanac_fsm_init(&f, &info), 0);
    assert_int_equal(co__almanac_fsm_init(&g, &info), 0);
    mk_buf cmd;
    mk_buf_init(&cmd);
    int flag;
    for (uint64_t s = 1; s <= 5; s++) {
        co__almanac_cmd(&cmd, CO__ALMANAC_TICK, s, &members[s % 3].pub,
                        1000 * (int64_t)s);
        assert_int_equal(apply(&f, &cmd, &flag), 0);
        assert_int_equal(flag, 1);
    }
    /* A deposed leader's late proposal for 5 and a jump to 7 are refused. */
    co__almanac_cmd(&cmd, CO__ALMANAC_TICK, 5, &members[0].pub, 1);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    co__almanac_cmd(&cmd, CO__ALMANAC_TICK, 7, &members[0].pub, 1);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    co__almanac_cmd(&cmd, CO__ALMANAC_TICK, 6, &outsider.pub, 1);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(co__almanac_latest(&f)->seq, 5);

    /* Stamps: one per member, for the latest tick only. */
    co__almanac_cmd(&cmd, CO__ALMANAC_STAMP, 5, &members[0].pub, 5001);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 1);
    co__almanac_cmd(&cmd, CO__ALMANAC_STAMP, 5, &members[0].pub, 5002);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    co__almanac_cmd(&cmd, CO__ALMANAC_STAMP, 4, &members[1].pub, 5002);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(co__almanac_latest(&f)->n_stamps, 2);

    mk_buf snap;
    mk_buf_init(&snap);
    assert_int_equal(f.snapshot(&f, &snap), 0);
    assert_int_equal(g.restore(&g, snap.data, snap.len), 0);
    same_snapshot(&f, &g);
    mk_buf_free(&snap);
    mk_buf_free(&cmd);
    co__almanac_fsm_free(&f);
    co__almanac_fsm_free(&g);
}

static void chronicle_chains_and_dedups(void **state)
{
    struct mk_fsm f, g;
    assert_int_equal(co__chronicle_fsm_init(&f, &info), 0);
    assert_int_equal(co__chronicle_fsm_init(&g, &info), 0);
    mk_buf cmd;
    mk_buf_init(&cmd);
    int flag;
    mk_id subject;
    mk_id_from_str(&subject, "coalition-id");
    const char *cfg = "{\"name\":\"x\"}";
    co__chronicle_cmd_append(&cmd, "config", &subject,
                             (const uint8_t *)cfg, strlen(cfg), true,
                             &members[0]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 1);
    /* The same member restarting with the same config adds nothing. */
    co__chronicle_cmd_append(&cmd, "config", &subject,
                             (const uint8_t *)cfg, strlen(cfg), true,
                             &members[0]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    co__chronicle_cmd_append(&cmd, "rotation", &subject,
                             (const uint8_t *)"mrtd v2", 7, false,
                             &members[1]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(co__chronicle_count(&f), 2);

    const co__chronicle_entry *e1 = co__chronicle_at(&f, 0),
                              *e2 = co__chronicle_at(&f, 1);
    assert_int_equal(e2->seq, 2);
    assert_true(mk_id_eq(&e2->prev, &e1->hash));
    mk_id again;
    co__chronicle_entry_hash(e2->seq, e2->kind, &e2->subject, e2->body,
                             e2->body_len, &e2->prev, &again);
    assert_true(mk_id_eq(&again, &e2->hash));

    /* Only members write the record. */
    co__chronicle_cmd_append(&cmd, "rotation", &subject,
                             (const uint8_t *)"forged", 6, false, &outsider);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(co__chronicle_count(&f), 2);

    /* A bad kind is a malformed command: refused, nothing appended. */
    co__chronicle_cmd_append(&cmd, "has space", &subject, NULL, 0, false,
                             &members[0]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(co__chronicle_count(&f), 2);

    for (int m = 0; m < 2; m++) {
        co__chronicle_cmd_sign(&cmd, co__chronicle_at(&f, 1), &members[m]);
        assert_int_equal(apply(&f, &cmd, &flag), 0);
        assert_int_equal(flag, 1);
    }
    co__chronicle_cmd_sign(&cmd, co__chronicle_at(&f, 1), &outsider);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    e2 = co__chronicle_at(&f, 1);
    assert_true(co_majority_signed(info.committee, 3, e2->sigs, e2->n_sigs,
                                   e2->hash.b, 32, co__chronicle_verify_sig));

    /* Retirement is recorded as the log's last entry. */
    co__cmd_retire(&cmd, &f.signature, "moved", NULL, &members[0]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(co__chronicle_count(&f), 3);
    assert_string_equal(co__chronicle_at(&f, 2)->kind, "retired");

    mk_buf snap;
    mk_buf_init(&snap);
    assert_int_equal(f.snapshot(&f, &snap), 0);
    assert_int_equal(g.restore(&g, snap.data, snap.len), 0);
    same_snapshot(&f, &g);
    assert_true(mk_id_eq(&co__chronicle_at(&g, 2)->hash,
                         &co__chronicle_at(&f, 2)->hash));
    mk_buf_free(&snap);
    mk_buf_free(&cmd);
    co__chronicle_fsm_free(&f);
    co__chronicle_fsm_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(card_round_trip_and_strictness),
        cmocka_unit_test(atlas_needs_a_majority),
        cmocka_unit_test(almanac_never_repeats_or_skips),
        cmocka_unit_test(chronicle_chains_and_dedups),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
