/* The Atlas, Almanac and Chronicle state machines, driven directly:
 * every rule that makes their facts trustworthy, and determinism
 * (replicas fed the same commands hold the same bytes). */
#include <stdlib.h>
#include <string.h>

#include "../../src/coalition/module_ops.h"
#include "../../src/coalition/modules_internal.h"
#include "coalition/error.h"
#include "coalition/card.h"
#include "coalition/confluence.h"
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

/* The door: admit() refuses `cmd` with `want`, and apply() refuses the
 * very same bytes (a first result byte of 0) and changes nothing, as a
 * member that did not run admit() must. */
static void refused_alike(struct mk_fsm *f, const uint8_t *cmd, size_t len,
                          int want)
{
    assert_non_null(f->admit);
    assert_int_equal(f->admit(f, cmd, len), want);
    mk_buf before, after, res;
    mk_buf_init(&before);
    mk_buf_init(&after);
    mk_buf_init(&res);
    assert_int_equal(f->snapshot(f, &before), 0);
    assert_int_equal(f->apply(f, cmd, len, &res), 0);
    assert_true(res.len >= 1);
    assert_int_equal(res.data[0], 0);
    assert_int_equal(f->snapshot(f, &after), 0);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, after.len);
    mk_buf_free(&before);
    mk_buf_free(&after);
    mk_buf_free(&res);
}

/* Every proper prefix of a valid command, and the command with one byte
 * more, is malformed: at the door and in apply(). */
static void cuts_refused(struct mk_fsm *f, const mk_buf *cmd)
{
    for (size_t n = 0; n < cmd->len; n++)
        refused_alike(f, cmd->data, n, MK_EDECODE);
    uint8_t *longer = malloc(cmd->len + 1);
    assert_non_null(longer);
    memcpy(longer, cmd->data, cmd->len);
    longer[cmd->len] = 0;
    refused_alike(f, longer, cmd->len + 1, MK_EDECODE);
    free(longer);
}

/* Seeded garbage of a few lengths, each with every kind byte: refused at
 * the door and in apply(). */
static void garbage_refused(struct mk_fsm *f)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    static const size_t lens[] = {1, 2, 9, 41, 120, 180, 300};
    uint8_t g[300];
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
        for (int kind = 0; kind < 3; kind++) {
            for (size_t i = 0; i < lens[l]; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                g[i] = (uint8_t)x;
            }
            g[0] = kind == 2 ? CO__CMD_RETIRE : (uint8_t)(kind + 1);
            assert_int_not_equal(f->admit(f, g, lens[l]), 0);
            refused_alike(f, g, lens[l], f->admit(f, g, lens[l]));
        }
}

/* Applies one command and returns apply()'s status; the result's first
 * byte (the "took effect" flag) lands in *flag when not NULL. Whatever
 * admit() refuses, apply() must refuse alike: checked on every command
 * the tests build. */
static int apply(struct mk_fsm *f, mk_buf *cmd, int *flag)
{
    mk_buf res;
    mk_buf_init(&res);
    assert_int_equal(cmd->err, 0);
    assert_non_null(f->admit);
    int door = f->admit(f, cmd->data, cmd->len);
    if (door != 0)
        refused_alike(f, cmd->data, cmd->len, door);
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


/* ---- the door ------------------------------------------------------------- */

/* A card at the limits of co_card_decode (CO__CARD_MAX_BYTES). */
/* `never said` drops a fact any earlier entry of its kind and subject
 * stated, where `once` looks at the latest only: a lagging member's
 * record of an older publication must not land after a newer one. */
static void chronicle_never_said(void **state)
{
    struct mk_fsm f;
    assert_int_equal(co__chronicle_fsm_init(&f, &info), 0);
    mk_buf cmd;
    mk_buf_init(&cmd);
    int flag;
    mk_id subject;
    mk_id_from_str(&subject, "feed.alpha");
    const char *facts[] = {"A", "B", "A", "B", "C"};
    const int never_said[] = {1, 1, 0, 0, 1}, once[] = {1, 1, 1, 1, 1};
    for (size_t i = 0; i < 5; i++) {
        co__chronicle_cmd_append(&cmd, "atlas.card", &subject,
                                 (const uint8_t *)facts[i], 1,
                                 CO__APPEND_NEVER_SAID, &members[i % 3]);
        assert_int_equal(apply(&f, &cmd, &flag), 0);
        assert_int_equal(flag, never_said[i]);
    }
    assert_int_equal(co__chronicle_count(&f), 3);
    /* The same facts with `once` (the latest differs each time). */
    mk_id other;
    mk_id_from_str(&other, "feed.beta");
    for (size_t i = 0; i < 5; i++) {
        co__chronicle_cmd_append(&cmd, "atlas.card", &other,
                                 (const uint8_t *)facts[i], 1,
                                 CO__APPEND_ONCE, &members[0]);
        assert_int_equal(apply(&f, &cmd, &flag), 0);
        assert_int_equal(flag, once[i]);
    }
    assert_int_equal(co__chronicle_count(&f), 8);
    /* A mode this build does not know is malformed: refused, nothing
     * added. */
    co__chronicle_cmd_append(&cmd, "atlas.card", &other,
                             (const uint8_t *)"D", 1, 3, &members[0]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(co__chronicle_count(&f), 8);
    mk_buf_free(&cmd);
    co__chronicle_fsm_free(&f);
}

/* The Atlas tells its publish hook which card a publication replaced. */
typedef struct seen_publish {
    int calls;
    bool had;
    mk_id card, replaced;
} seen_publish;

static void on_publish_seen(const co__atlas_item *it, const mk_id *replaced,
                            void *data)
{
    seen_publish *s = data;
    s->calls++;
    s->card = it->card.hash;
    s->had = replaced != NULL;
    if (replaced)
        s->replaced = *replaced;
}

static void atlas_names_replaced_card(void **state)
{
    struct mk_fsm f;
    assert_int_equal(co__atlas_fsm_init(&f, &info), 0);
    seen_publish s = {0};
    co__atlas_on_publish(&f, on_publish_seen, &s);
    mk_buf card, card2, cmd;
    mk_buf_init(&card);
    mk_buf_init(&card2);
    mk_buf_init(&cmd);
    card_bytes(&card, "oracle", "10.0.0.1:1");
    card_bytes(&card2, "oracle", "10.0.0.2:1");
    co__atlas_cmd_publish(&cmd, card.data, card.len, &members[0]);
    assert_int_equal(apply(&f, &cmd, NULL), 0);
    assert_int_equal(s.calls, 1);
    assert_false(s.had);
    mk_id first = s.card;
    co__atlas_cmd_publish(&cmd, card2.data, card2.len, &members[1]);
    assert_int_equal(apply(&f, &cmd, NULL), 0);
    assert_int_equal(s.calls, 2);
    assert_true(s.had);
    assert_true(mk_id_eq(&s.replaced, &first));
    assert_false(mk_id_eq(&s.card, &first));
    /* The same bytes again change nothing and are not a publication. */
    co__atlas_cmd_publish(&cmd, card2.data, card2.len, &members[2]);
    assert_int_equal(apply(&f, &cmd, NULL), 0);
    assert_int_equal(s.calls, 2);
    mk_buf_free(&card);
    mk_buf_free(&card2);
    mk_buf_free(&cmd);
    co__atlas_fsm_free(&f);
}

static void largest_card(mk_buf *out)
{
    static char s[17][CO_CARD_MAX_STR + 1];
    const char *hints[CO_CARD_MAX_HINTS];
    for (int i = 0; i < 17; i++) {
        memset(s[i], 'a' + i, CO_CARD_MAX_STR);
        s[i][CO_CARD_MAX_STR] = '\0';
        if (i < CO_CARD_MAX_HINTS)
            hints[i] = s[i + 1];
    }
    static uint8_t pins[CO_CARD_MAX_PINS][CO_MRTD_LEN];
    memset(pins, 7, sizeof pins);
    co_citizen_card c = {.role = s[0],
                         .endpoint_hints = hints,
                         .n_endpoint_hints = CO_CARD_MAX_HINTS,
                         .mrtd_pins = (const uint8_t(*)[CO_MRTD_LEN])pins,
                         .n_mrtd_pins = CO_CARD_MAX_PINS,
                         .schema_version = UINT32_MAX};
    mk_id_from_str(&c.citizen_id, "largest");
    mk_id_from_str(&c.ticket_issuance_root, "tickets");
    assert_int_equal(co_card_encode(&c, out), 0);
    assert_int_equal(out->len, CO__CARD_MAX_BYTES);
}

static void atlas_door(void **state)
{
    struct mk_fsm f;
    assert_int_equal(co__atlas_fsm_init(&f, &info), 0);
    mk_buf card, cmd;
    mk_buf_init(&card);
    mk_buf_init(&cmd);
    card_bytes(&card, "oracle", "a:1");

    /* A member's publication passes; its cuts and a flipped byte of its
     * signature or of the card it signed do not. */
    co__atlas_cmd_publish(&cmd, card.data, card.len, &members[0]);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    cuts_refused(&f, &cmd);
    cmd.data[cmd.len - 1] ^= 1;
    refused_alike(&f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    cmd.data[cmd.len - 1] ^= 1;
    cmd.data[10] ^= 1; /* inside the card */
    refused_alike(&f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    mk_buf_reset(&cmd);
    /* An outsider's, however well signed. */
    co__atlas_cmd_publish(&cmd, card.data, card.len, &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    /* A member's signature over bytes that are no card. */
    mk_put_u8(&card, 0);
    co__atlas_cmd_publish(&cmd, card.data, card.len, &members[0]);
    refused_alike(&f, cmd.data, cmd.len, MK_EDECODE);
    mk_buf_reset(&cmd);
    card.len--;

    /* SIGN: the signature covers the card the state holds, so the door
     * checks the signer only; apply() checks the signature. */
    int flag;
    co__atlas_cmd_publish(&cmd, card.data, card.len, &members[0]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 1);
    const co__atlas_item *it = co__atlas_at(&f, 0);
    co__atlas_cmd_sign(&cmd, it, &members[1]);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    cuts_refused(&f, &cmd);
    mk_buf_reset(&cmd);
    co__atlas_cmd_sign(&cmd, it, &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);

    /* RETIRE: a member's, for this module. */
    co__cmd_retire(&cmd, &f.signature, "r", &info.root, &members[2]);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    cuts_refused(&f, &cmd);
    cmd.data[cmd.len - 5] ^= 1;
    refused_alike(&f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    mk_buf_reset(&cmd);
    co__cmd_retire(&cmd, &f.signature, "r", NULL, &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    mk_id almanac;
    mk_id_from_str(&almanac, CO__ALMANAC_SIGNATURE);
    co__cmd_retire(&cmd, &almanac, "r", NULL, &members[2]);
    refused_alike(&f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    mk_buf_reset(&cmd);
    garbage_refused(&f);

    /* The largest card there is passes, and is the Atlas's limit. */
    mk_buf_reset(&card);
    largest_card(&card);
    co__atlas_cmd_publish(&cmd, card.data, card.len, &members[0]);
    assert_int_equal(cmd.len, CO__ATLAS_MAX_COMMAND);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 1);
    char reason[256];
    memset(reason, 'r', 255);
    reason[255] = '\0';
    co__cmd_retire(&cmd, &f.signature, reason, &info.root, &members[2]);
    assert_int_equal(cmd.len, CO__RETIRE_MAX_COMMAND);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    assert_true(CO__RETIRE_MAX_COMMAND <= CO__ATLAS_MAX_COMMAND);
    mk_buf_free(&card);
    mk_buf_free(&cmd);
    co__atlas_fsm_free(&f);
}

static void almanac_door(void **state)
{
    struct mk_fsm f;
    assert_int_equal(co__almanac_fsm_init(&f, &info), 0);
    mk_buf cmd;
    mk_buf_init(&cmd);
    /* Ticks carry no signature: the door checks that a member is named;
     * whether the seq is the next one is state (apply's). */
    co__almanac_cmd(&cmd, CO__ALMANAC_TICK, 9, &members[1].pub, 1000);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    cuts_refused(&f, &cmd);
    mk_buf_reset(&cmd);
    co__almanac_cmd(&cmd, CO__ALMANAC_STAMP, 1, &outsider.pub, 1000);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    co__almanac_cmd(&cmd, 3, 1, &members[1].pub, 1000);
    refused_alike(&f, cmd.data, cmd.len, MK_EDECODE);
    mk_buf_reset(&cmd);
    co__cmd_retire(&cmd, &f.signature, "r", NULL, &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    co__cmd_retire(&cmd, &f.signature, "r", NULL, &members[0]);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    assert_true(cmd.len <= CO__ALMANAC_MAX_COMMAND);
    garbage_refused(&f);
    mk_buf_free(&cmd);
    co__almanac_fsm_free(&f);
}

static void chronicle_door(void **state)
{
    struct mk_fsm f;
    assert_int_equal(co__chronicle_fsm_init(&f, &info), 0);
    mk_buf cmd;
    mk_buf_init(&cmd);
    mk_id subject;
    mk_id_from_str(&subject, "s");
    co__chronicle_cmd_append(&cmd, "note", &subject, (const uint8_t *)"hi", 2,
                             false, &members[1]);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    cuts_refused(&f, &cmd);
    cmd.data[cmd.len - 1] ^= 1; /* the signature */
    refused_alike(&f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    cmd.data[cmd.len - 1] ^= 1;
    cmd.data[cmd.len - 64 - 32 - 1 - 1] ^= 1; /* the body's last byte */
    refused_alike(&f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    mk_buf_reset(&cmd);
    co__chronicle_cmd_append(&cmd, "note", &subject, (const uint8_t *)"hi", 2,
                             false, &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    co__chronicle_cmd_append(&cmd, "has space", &subject, NULL, 0, false,
                             &members[1]);
    refused_alike(&f, cmd.data, cmd.len, MK_EDECODE);
    mk_buf_reset(&cmd);

    /* The largest body passes and one byte more does not. */
    size_t big = CO_CHRONICLE_MAX_BODY + 1;
    uint8_t *body = calloc(1, big);
    assert_non_null(body);
    char kind[CO_CHRONICLE_MAX_KIND + 1];
    memset(kind, 'k', CO_CHRONICLE_MAX_KIND);
    kind[CO_CHRONICLE_MAX_KIND] = '\0';
    co__chronicle_cmd_append(&cmd, kind, &subject, body, big - 1, true,
                             &members[1]);
    assert_int_equal(cmd.len, CO__CHRONICLE_MAX_COMMAND);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    mk_buf_reset(&cmd);
    co__chronicle_cmd_append(&cmd, kind, &subject, body, big, true,
                             &members[1]);
    refused_alike(&f, cmd.data, cmd.len, MK_EDECODE);
    mk_buf_reset(&cmd);
    free(body);

    /* SIGN: membership at the door, the signature (over an entry the
     * state holds) in apply. */
    int flag;
    co__chronicle_cmd_append(&cmd, "note", &subject, (const uint8_t *)"hi", 2,
                             false, &members[1]);
    assert_int_equal(apply(&f, &cmd, &flag), 0);
    assert_int_equal(flag, 1);
    co__chronicle_cmd_sign(&cmd, co__chronicle_at(&f, 0), &members[2]);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    cuts_refused(&f, &cmd);
    mk_buf_reset(&cmd);
    co__chronicle_cmd_sign(&cmd, co__chronicle_at(&f, 0), &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    co__cmd_retire(&cmd, &f.signature, "r", NULL, &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    garbage_refused(&f);
    mk_buf_free(&cmd);
    co__chronicle_fsm_free(&f);
}

/* The table of module kinds: every kind has a row whose signature is the
 * one its machine carries (so a committee id computed without a machine
 * names the group members run), and whose machine takes the retirement
 * signed for it: the retire path covers every module, Compute included. */
static void every_kind_retires(void **state)
{
    assert_null(co__module_ops_of(CO_MODULE_COUNT));
    for (int k = 0; k < CO_MODULE_COUNT; k++) {
        const co__module_ops *ops = co__module_ops_of((co_module_kind)k);
        assert_non_null(ops);
        assert_true(ops->max_command > 0);
        /* Compute reads its parameters from the content string. */
        static const co_confluence_config plain = {.content = "module/v1"};
        co_module_info m = info;
        m.kind = (co_module_kind)k;
        m.config = &plain;
        struct mk_fsm f;
        assert_int_equal(ops->fsm_init(&f, &m), 0);
        mk_id sig;
        mk_id_from_str(&sig, ops->signature);
        assert_true(mk_id_eq(&sig, &f.signature));
        assert_false(ops->retirement(&f)->retired);
        mk_buf cmd;
        mk_buf_init(&cmd);
        int flag;
        co__cmd_retire(&cmd, &sig, "folded", NULL, &members[1]);
        assert_true(cmd.len <= ops->max_command);
        assert_int_equal(apply(&f, &cmd, &flag), 0);
        assert_int_equal(flag, 1);
        assert_true(ops->retirement(&f)->retired);
        assert_string_equal(ops->retirement(&f)->reason, "folded");
        mk_buf_free(&cmd);
        ops->fsm_free(&f);
    }
    /* Refused before anything is sent (no node is needed to see it). */
    char err[CO_ERRMSG_SIZE];
    assert_int_equal(co_module_retire(NULL, NULL, CO_MODULE_COUNT, "x", NULL,
                                      &members[0], 1000, NULL, NULL, err),
                     CO_ENOTSHIPPED);
    assert_int_equal(co_module_retire(NULL, NULL, CO_MODULE_ATLAS, "", NULL,
                                      &members[0], 1000, NULL, NULL, err),
                     MK_EINVAL);
}

/* A module's voters=N: an odd number from 1 to 15 or a clear CO_ECONFIG.
 * It caps the voters of the committee's group, which then names another
 * GroupId, but only when more members are listed than it lets vote. */
static void voters_param(void **state)
{
    char hex[4][MK_ID_HEX_LEN + 1];
    const char *issuers[4];
    for (int i = 0; i < 4; i++)
        issuers[i] = mk_id_hex(i < 3 ? &members[i].pub : &outsider.pub,
                               hex[i]);
    co_confluence_config alm = {.name = "almanac",
                                .acl = {.issuers = issuers, .n_issuers = 4}};
    const co_confluence_config *confs[] = {&alm};
    co_coalition_config c = {.name = "t.voters", CO_LIST(confluences, confs)};
    co_module_info m;
    char err[CO_ERRMSG_SIZE];
    const char *bad[] = {"almanac/v1;voters=2", "almanac/v1;voters=0",
                         "almanac/v1;voters=17", "almanac/v1;voters=x",
                         "almanac/v1;voters=3x",
                         /* Past UINT64_MAX: once read as the largest
                          * value, which means "absent" here. */
                         "almanac/v1;voters=18446744073709551617"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        alm.content = bad[i];
        err[0] = '\0';
        assert_int_equal(co_module_info_get(&c, CO_MODULE_ALMANAC, &m, err),
                         CO_ECONFIG);
        assert_non_null(strstr(err, "voters must be an odd number"));
    }

    /* Any content change is a fingerprint change, so the cap is compared
     * with the same module's group without it. */
    struct mk_fsm shape = {.version = MK_FSM_VERSION};
    mk_group_config gc;
    mk_id with, without;
    alm.content = "almanac/v1";
    assert_int_equal(co_module_info_get(&c, CO_MODULE_ALMANAC, &m, err), 0);
    co_module_group_config(&m, &shape, &gc);
    assert_int_equal(gc.params.max_voters, 0); /* the group's default */
    alm.content = "almanac/v1;cadence_ms=500;voters=3";
    assert_int_equal(co_module_info_get(&c, CO_MODULE_ALMANAC, &m, err), 0);
    co_module_group_config(&m, &shape, &gc);
    assert_int_equal(gc.params.max_voters, 3);
    mk_group_id_of(&gc, &with);
    gc.params.max_voters = 0;
    mk_group_id_of(&gc, &without);
    assert_false(mk_id_eq(&with, &without));
    co_module_group_id(&m, &shape, &without);
    assert_true(mk_id_eq(&with, &without)); /* what readers name */
    /* Five may vote: nobody stands by, and the cap shapes nothing. */
    alm.content = "almanac/v1;voters=5";
    assert_int_equal(co_module_info_get(&c, CO_MODULE_ALMANAC, &m, err), 0);
    co_module_group_config(&m, &shape, &gc);
    mk_group_id_of(&gc, &with);
    gc.params.max_voters = 0;
    mk_group_id_of(&gc, &without);
    assert_true(mk_id_eq(&with, &without));
}

/* A module's content parameters and a confluence's are one syntax: the
 * two readers agree on every value, at the edges of a u64 too. */
static void params_read_alike(void **state)
{
    (void)state;
    static const struct {
        const char *content;
        int rc;
        uint64_t v;
    } cases[] = {
        {"x/v1;n=7", 0, 7},
        {"x/v1", 0, 42},
        {"x/v1;n=", -1, 42},
        {"x/v1;n=-1", -1, 42},
        {"x/v1;n= 1", -1, 42},
        {"x/v1;n=18446744073709551615", 0, UINT64_MAX},
        {"x/v1;n=18446744073709551616", -1, 42},
        {"x/v1;n=99999999999999999999999", -1, 42},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        co_confluence_config cc = {.content = cases[i].content};
        co_module_info m = {.config = &cc};
        uint64_t a = 0, b = 0;
        assert_int_equal(co_module_param_u64(&m, "n", 42, &a), cases[i].rc);
        assert_int_equal(co_confluence_param_u64(&cc, "n", 42, &b),
                         cases[i].rc);
        if (cases[i].rc == 0) {
            assert_true(a == cases[i].v);
            assert_true(b == cases[i].v);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(card_round_trip_and_strictness),
        cmocka_unit_test(atlas_needs_a_majority),
        cmocka_unit_test(almanac_never_repeats_or_skips),
        cmocka_unit_test(chronicle_chains_and_dedups),
        cmocka_unit_test(chronicle_never_said),
        cmocka_unit_test(atlas_names_replaced_card),
        cmocka_unit_test(atlas_door),
        cmocka_unit_test(almanac_door),
        cmocka_unit_test(chronicle_door),
        cmocka_unit_test(every_kind_retires),
        cmocka_unit_test(voters_param),
        cmocka_unit_test(params_read_alike),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
