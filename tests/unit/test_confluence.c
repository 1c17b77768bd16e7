/* The confluence SDK and fx-correlator, driven directly: ids that do not
 * depend on any coalition and move with every order and parameter; the
 * state machine's dedup, signatures, stall behaviours, evidence and
 * retirement; determinism (replaying the same commands into a fresh
 * machine gives the same commit bytes, and snapshots round-trip); the
 * consumer-side verifier; and the PriceUpdate and commit codecs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/config_file.h"
#include "coalition/confluence.h"
#include "coalition/fx_correlator.h"
#include "coalition/price_feed.h"
#include "demo_coalition.h"
#include "mosaik/error.h"
#include "testutil.h"

static mk_keypair members[3], outsider;
static char member_hex[3][MK_ID_HEX_LEN + 1];
static const char *committee[3];

static const co_organism_ref FEED_A = {.role = "oracle",
                                       .instance = "price-feed.eur"};
static const co_organism_ref FEED_B = {.role = "oracle",
                                       .instance = "price-feed.usd"};
static const co_citizen_ref AB[] = {{.organism = &FEED_A},
                                    {.organism = &FEED_B}};
static const co_citizen_ref BA[] = {{.organism = &FEED_B},
                                    {.organism = &FEED_A}};

static co_confluence_config partial_cfg, halt_cfg;

static int setup(void **state)
{
    for (int i = 0; i < 3; i++) {
        uint8_t seed[32];
        memset(seed, 0x40 + i, sizeof seed);
        mk_keypair_from_seed(&members[i], seed);
        mk_id_hex(&members[i].pub, member_hex[i]);
        committee[i] = member_hex[i];
    }
    uint8_t seed[32];
    memset(seed, 0x99, sizeof seed);
    mk_keypair_from_seed(&outsider, seed);
    partial_cfg = (co_confluence_config){
        .name = "fx-correlator",
        CO_LIST(organisms, AB),
        .content = "fx-correlator/v1;clock=test;stall=partial;bound_ticks=2",
        .acl = {.issuers = committee, .n_issuers = 3},
    };
    halt_cfg = partial_cfg;
    halt_cfg.content = "fx-correlator/v1;clock=test;stall=halt;bound_ticks=2";
    return 0;
}

static void define(const co_confluence_config *c, co_confluence_def *def)
{
    char err[CO_ERRMSG_SIZE] = "";
    int rc = co_confluence_define(c, NULL, 0, def, err);
    if (rc != 0)
        fail_msg("define: %s", err);
}

static void price(mk_buf *out, int64_t epoch, uint64_t seq, int64_t p)
{
    co_price_update u = {.epoch_ms = epoch, .seq = seq, .unix_ms = epoch + 1,
                         .price_micro = p};
    strcpy(u.pair, "EURUSD");
    mk_buf_reset(out);
    assert_int_equal(co_price_update_encode(&u, out), 0);
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

/* Applies one command; returns the "folded" byte (or -1 for none).
 * Whatever admit() refuses, apply() must refuse alike: checked on every
 * command the tests build. */
static int apply(struct mk_fsm *f, mk_buf *cmd)
{
    mk_buf res;
    mk_buf_init(&res);
    assert_int_equal(cmd->err, 0);
    assert_non_null(f->admit);
    int door = f->admit(f, cmd->data, cmd->len);
    if (door != 0)
        refused_alike(f, cmd->data, cmd->len, door);
    assert_int_equal(f->apply(f, cmd->data, cmd->len, &res), 0);
    int flag = res.len ? res.data[0] : -1;
    mk_buf_free(&res);
    mk_buf_reset(cmd);
    return flag;
}

static int fact(struct mk_fsm *f, size_t src, int64_t epoch, uint64_t seq,
                int64_t p, const mk_keypair *who)
{
    mk_buf b, cmd;
    mk_buf_init(&b);
    mk_buf_init(&cmd);
    price(&b, epoch, seq, p);
    co_confluence_cmd_fact(&cmd, co_confluence_fsm_info(f), src, b.data,
                           b.len, 1000, who);
    int flag = apply(f, &cmd);
    mk_buf_free(&b);
    mk_buf_free(&cmd);
    return flag;
}

static int tick(struct mk_fsm *f, uint64_t seq, const mk_keypair *who)
{
    mk_buf cmd;
    mk_buf_init(&cmd);
    co_confluence_cmd_tick(&cmd, co_confluence_fsm_info(f), seq, 5000, who);
    int flag = apply(f, &cmd);
    mk_buf_free(&cmd);
    return flag;
}

static const co_confluence_commit *last(struct mk_fsm *f)
{
    const co_confluence_commit *c = NULL;
    assert_int_equal(
        co_confluence_fsm_get(f, co_confluence_fsm_count(f), &c), 0);
    return c;
}

static void snapshot(struct mk_fsm *f, mk_buf *out)
{
    mk_buf_reset(out);
    assert_int_equal(f->snapshot(f, out), 0);
}

/* Every commit's canonical bytes, concatenated. */
static void log_bytes(struct mk_fsm *f, mk_buf *out)
{
    mk_buf_reset(out);
    for (uint64_t i = 1; i <= co_confluence_fsm_count(f); i++) {
        const co_confluence_commit *c;
        assert_int_equal(co_confluence_fsm_get(f, i, &c), 0);
        assert_int_equal(co_confluence_commit_encode(c, out), 0);
    }
}

/* ---- codecs ------------------------------------------------------------ */

static void price_update_is_canonical(void **state)
{
    mk_buf b;
    mk_buf_init(&b);
    price(&b, 1700000000000, 7, -5);
    co_price_update u;
    assert_int_equal(co_price_update_decode(&u, b.data, b.len), 0);
    assert_int_equal(u.epoch_ms, 1700000000000);
    assert_int_equal(u.seq, 7);
    assert_int_equal(u.price_micro, -5);
    assert_string_equal(u.pair, "EURUSD");
    /* Trailing bytes, truncation, another version: refused. */
    mk_put_u8(&b, 0);
    assert_int_equal(co_price_update_decode(&u, b.data, b.len), MK_EDECODE);
    assert_int_equal(co_price_update_decode(&u, b.data, b.len - 2),
                     MK_EDECODE);
    b.data[0] = 2;
    assert_int_equal(co_price_update_decode(&u, b.data, b.len - 1),
                     MK_EDECODE);
    /* What the encoder refuses. */
    co_price_update bad = {.epoch_ms = 1, .seq = 0};
    strcpy(bad.pair, "EURUSD");
    mk_buf_reset(&b);
    assert_int_equal(co_price_update_encode(&bad, &b), MK_EINVAL);
    bad.seq = 1;
    strcpy(bad.pair, "eur usd");
    assert_int_equal(co_price_update_encode(&bad, &b), MK_EINVAL);
    bad.pair[0] = '\0';
    assert_int_equal(co_price_update_encode(&bad, &b), MK_EINVAL);
    assert_int_equal(b.len, 0);
    /* An overlong varint (seq 1 as 0x81 0x00) has another hash: refused. */
    const uint8_t overlong[] = {1, 1, 0x81, 0x00, 0, 1, 'A', 0};
    assert_int_equal(co_price_update_decode(&u, overlong, sizeof overlong),
                     MK_EDECODE);
    mk_buf_free(&b);
}

static void spread_and_commit_codecs(void **state)
{
    co_fx_spread s = {.tick = 9, .has_price = {true, true},
                      .price_micro = {1000, 400}, .has_spread = true,
                      .spread_micro = 600}, t;
    mk_buf b;
    mk_buf_init(&b);
    assert_int_equal(co_fx_spread_encode(&s, &b), 0);
    assert_int_equal(co_fx_spread_decode(&t, b.data, b.len), 0);
    assert_int_equal(t.spread_micro, 600);
    /* A spread that is not price0 - price1 has no valid encoding. */
    s.spread_micro = 601;
    mk_buf_reset(&b);
    co_fx_spread_encode(&s, &b);
    assert_int_equal(co_fx_spread_decode(&t, b.data, b.len), MK_EDECODE);
    /* Nor has a spread without both prices. */
    s = (co_fx_spread){.tick = 9, .has_price = {true, false},
                       .price_micro = {1, 0}, .has_spread = true};
    mk_buf_reset(&b);
    co_fx_spread_encode(&s, &b);
    assert_int_equal(co_fx_spread_decode(&t, b.data, b.len), MK_EDECODE);

    co_confluence_commit c = {.index = 3, .kind = CO_COMMIT_FACT,
                              .partial = true,
                              .key_event = {0, 9},
                              .body = (const uint8_t *)"xyz",
                              .body_len = 3, .n_evidence = 1};
    memset(c.key_citizen.b, 7, CO_CITIZEN_ID_LEN);
    c.evidence[0].event = (co_clock_event){5, 6};
    mk_id_from_str(&c.evidence[0].hash, "h");
    mk_buf_reset(&b);
    assert_int_equal(co_confluence_commit_encode(&c, &b), 0);
    co_confluence_commit d;
    assert_int_equal(co_confluence_commit_decode(&d, b.data, b.len), 0);
    assert_int_equal(d.index, 3);
    assert_true(d.partial);
    assert_int_equal(d.evidence[0].event.seq, 6);
    assert_memory_equal(d.body, "xyz", 3);
    mk_put_u8(&b, 0);
    assert_int_equal(co_confluence_commit_decode(&d, b.data, b.len),
                     MK_EDECODE);
    mk_buf_free(&b);
}

/* ---- identity ---------------------------------------------------------- */

static void ids_follow_the_config_only(void **state)
{
    co_confluence_def def, other;
    co_confluence_info a, b;
    define(&partial_cfg, &def);
    assert_int_equal(co_confluence_info_get(&def, &a, NULL), 0);

    /* The fingerprint is SPEC §2's; the committee root derives from it. */
    mk_id fp, committee_root;
    assert_int_equal(co_confluence_fingerprint(&partial_cfg, &fp, NULL), 0);
    assert_true(mk_id_eq(&fp, &a.fingerprint));
    assert_int_equal(co_confluence_committee(&partial_cfg, &committee_root,
                                             NULL),
                     0);
    assert_true(mk_id_eq(&committee_root, &a.committee_root));
    mk_id commits;
    co_surface_id(&fp, "commits", &commits);
    assert_true(mk_id_eq(&commits, &a.commits));
    /* Upstream surfaces: derive(stable id, "prices"). */
    mk_id stream;
    assert_int_equal(co_price_feed_stream(&FEED_A, &stream, NULL), 0);
    assert_true(mk_id_eq(&stream, &a.src[0].stream));

    /* Swapping the spanned citizens: a disjoint committee. */
    co_confluence_config swapped = partial_cfg;
    swapped.organisms = BA;
    define(&swapped, &other);
    assert_int_equal(co_confluence_info_get(&other, &b, NULL), 0);
    assert_false(mk_id_eq(&a.fingerprint, &b.fingerprint));
    assert_false(mk_id_eq(&a.group, &b.group));

    /* Another stall mode: another content, another group. */
    define(&halt_cfg, &other);
    assert_int_equal(co_confluence_info_get(&other, &b, NULL), 0);
    assert_false(mk_id_eq(&a.group, &b.group));

    /* The same content with a machine that folds differently (here: the
     * bound changed behind the content's back) never shares a group. */
    other = def;
    other.bound_ticks = 3;
    assert_int_equal(co_confluence_info_get(&other, &b, NULL), 0);
    assert_true(mk_id_eq(&a.fingerprint, &b.fingerprint));
    assert_false(mk_id_eq(&a.group, &b.group));

    /* Misdeclarations are refused with a reason. */
    char err[CO_ERRMSG_SIZE];
    co_confluence_config one = partial_cfg;
    one.n_organisms = 1;
    assert_int_equal(co_confluence_define(&one, NULL, 0, &other, err),
                     CO_ECONFIG);
    const char *bad_acl[] = {"not-a-peer"};
    co_confluence_config acl = partial_cfg;
    acl.acl.issuers = bad_acl;
    acl.acl.n_issuers = 1;
    define(&acl, &other);
    assert_int_equal(co_confluence_info_get(&other, &b, err), CO_ECONFIG);
    co_confluence_config unknown = partial_cfg;
    unknown.content = "shared-ledger/v1";
    assert_int_equal(co_confluence_define(&unknown, NULL, 0, &other, err),
                     MK_ENOENT);
    co_confluence_config noclock = partial_cfg;
    noclock.content = "fx-correlator/v1;stall=partial";
    assert_int_equal(co_confluence_define(&noclock, NULL, 0, &other, err),
                     CO_ECONFIG);
}

/* Two coalitions that reference the same confluence config: one
 * committee, one GroupId — and the demo's static const agrees with the
 * JSON file operators publish. */
static void demo_config_and_two_coalitions(void **state)
{
    char err[CO_ERRMSG_SIZE], path[4096];
    const char *src = getenv("SOURCE_DIR");
    snprintf(path, sizeof path, "%s/examples/demo.json", src ? src : ".");
    co_config_file *f;
    if (co_config_file_load(path, &f, err) != 0)
        fail_msg("%s", err);
    const co_coalition_config *file = co_config_file_coalition(f);
    mk_id a, b;
    assert_int_equal(co_coalition_id(&DEMO_COALITION, &a, err), 0);
    assert_int_equal(co_coalition_id(file, &b, err), 0);
    assert_true(mk_id_eq(&a, &b));

    const co_confluence_config *fx =
        co_coalition_confluence(&DEMO_COALITION, "fx-correlator");
    const co_confluence_config *fx_file =
        co_coalition_confluence(file, "fx-correlator");
    assert_non_null(fx);
    assert_non_null(fx_file);
    co_confluence_def d1, d2;
    co_confluence_info i1, i2;
    define(fx, &d1);
    define(fx_file, &d2);
    assert_int_equal(co_confluence_info_get(&d1, &i1, NULL), 0);
    assert_int_equal(co_confluence_info_get(&d2, &i2, NULL), 0);
    assert_true(mk_id_eq(&i1.group, &i2.group));
    assert_string_equal(d1.clock, "demo.euro-fx");
    assert_int_equal(d1.stall, CO_STALL_PARTIAL);
    assert_int_equal(d1.bound_ticks, 4);

    /* Another coalition, same citizens, same confluence: another
     * coalition id, the same confluence group. */
    static const co_organism_ref *const ORGS[] = {&DEMO_FEED_USD,
                                                  &DEMO_FEED_EUR};
    static const co_confluence_config *const CONFS[] = {&DEMO_FX_CORRELATOR};
    const co_coalition_config other = {
        .name = "demo.analytics", CO_LIST(organisms, ORGS),
        CO_LIST(confluences, CONFS)};
    mk_id c;
    assert_int_equal(co_coalition_validate(&other, err), 0);
    assert_int_equal(co_coalition_id(&other, &c, err), 0);
    assert_false(mk_id_eq(&a, &c));
    co_confluence_def d3;
    co_confluence_info i3;
    define(co_coalition_confluence(&other, "fx-correlator"), &d3);
    assert_int_equal(co_confluence_info_get(&d3, &i3, NULL), 0);
    assert_true(mk_id_eq(&i1.group, &i3.group));
    co_config_file_free(f);
}

/* ---- the state machine ------------------------------------------------- */

static void folds_dedups_and_commits_with_evidence(void **state)
{
    co_confluence_def def;
    define(&partial_cfg, &def);
    struct mk_fsm f;
    assert_int_equal(co_confluence_fsm_init(&f, &def, NULL), 0);
    const co_confluence_info *info = co_confluence_fsm_info(&f);

    assert_int_equal(fact(&f, 0, 100, 1, 1085000, &members[0]), 1);
    assert_int_equal(fact(&f, 1, 200, 1, 880000, &members[1]), 1);
    /* Not newer than what was folded: refused (a re-proposal). */
    assert_int_equal(fact(&f, 0, 100, 1, 1085000, &members[2]), 0);
    assert_int_equal(fact(&f, 0, 99, 50, 1, &members[0]), 0);
    /* Nobody outside the committee proposes. */
    assert_int_equal(fact(&f, 0, 100, 2, 1, &outsider), 0);
    /* A newer epoch (the feed restarted) is newer whatever its seq. */
    assert_int_equal(fact(&f, 0, 101, 1, 1085010, &members[0]), 1);
    assert_int_equal(co_confluence_fsm_count(&f), 0); /* facts commit nothing */

    assert_int_equal(tick(&f, 1, &outsider), 0);
    assert_int_equal(tick(&f, 1, &members[2]), 1);
    assert_int_equal(tick(&f, 1, &members[2]), 0); /* not newer */
    assert_int_equal(co_confluence_fsm_count(&f), 1);
    const co_confluence_commit *c = last(&f);
    assert_int_equal(c->kind, CO_COMMIT_FACT);
    assert_false(c->partial);
    assert_memory_equal(c->key_citizen.b, info->src[0].citizen.b,
                        CO_CITIZEN_ID_LEN);
    assert_int_equal(c->key_event.seq, 1);
    co_fx_spread s;
    assert_int_equal(co_fx_spread_decode(&s, c->body, c->body_len), 0);
    assert_int_equal(s.price_micro[0], 1085010);
    assert_int_equal(s.price_micro[1], 880000);
    assert_int_equal(s.spread_micro, 205010);
    /* Evidence: full stable ids, the surfaces, the events, the hashes. */
    assert_int_equal(c->n_evidence, 2);
    mk_buf b;
    mk_buf_init(&b);
    price(&b, 101, 1, 1085010);
    mk_id h;
    mk_id_hash(&h, b.data, b.len);
    assert_true(mk_id_eq(&c->evidence[0].hash, &h));
    assert_true(mk_id_eq(&c->evidence[0].citizen, &info->src[0].stable_id));
    assert_true(mk_id_eq(&c->evidence[0].surface, &info->src[0].stream));
    assert_int_equal(c->evidence[0].event.epoch, 101);
    assert_int_equal(c->evidence[1].event.epoch, 200);

    /* Malformed commands: refused, the group keeps running. */
    mk_buf res;
    mk_buf_init(&res);
    const uint8_t junk[] = {CO_CONFLUENCE_CMD_FACT, 9, 9};
    assert_int_equal(f.apply(&f, junk, sizeof junk, &res), 0);
    assert_int_equal(res.data[0], 0);
    mk_buf_reset(&res);
    const uint8_t unknown[] = {0x42};
    assert_int_equal(f.apply(&f, unknown, sizeof unknown, &res), 0);
    assert_int_equal(res.data[0], 0);
    /* A valid command with a fact its surface refuses. */
    mk_buf cmd;
    mk_buf_init(&cmd);
    co_confluence_cmd_fact(&cmd, info, 0, (const uint8_t *)"nope", 4, 0,
                           &members[0]);
    assert_int_equal(apply(&f, &cmd), 0);
    /* A signature for one confluence does not hold in another. */
    co_confluence_def hdef;
    define(&halt_cfg, &hdef);
    co_confluence_info hinfo;
    co_confluence_info_get(&hdef, &hinfo, NULL);
    co_confluence_cmd_tick(&cmd, &hinfo, 2, 0, &members[0]);
    assert_int_equal(apply(&f, &cmd), 0);

    co_confluence_status st;
    co_confluence_fsm_status(&f, 2000, &st);
    assert_int_equal(st.tick, 1);
    assert_int_equal(st.commits, 1);
    assert_int_equal(st.lag[0].facts, 2);
    assert_int_equal(st.lag[0].age_ms, 1000);
    assert_true(st.lag[1].live);
    mk_buf_free(&res);
    mk_buf_free(&cmd);
    mk_buf_free(&b);
    co_confluence_fsm_free(&f);
}

static void stall_partial_then_recover(void **state)
{
    co_confluence_def def;
    define(&partial_cfg, &def); /* bound 2 */
    struct mk_fsm f;
    assert_int_equal(co_confluence_fsm_init(&f, &def, NULL), 0);
    /* Before any fact nothing counts: nothing committed. */
    assert_int_equal(tick(&f, 1, &members[0]), 1);
    assert_int_equal(co_confluence_fsm_count(&f), 0);
    assert_int_equal(fact(&f, 0, 1, 1, 100, &members[0]), 1);
    assert_int_equal(fact(&f, 1, 1, 1, 40, &members[0]), 1);
    assert_int_equal(tick(&f, 2, &members[0]), 1);
    assert_false(last(&f)->partial);
    /* Feed 1 falls silent after tick 1; feed 0 goes on. Its last fact is
     * 2 ticks old at tick 3: within the bound, its last price still
     * counts. */
    uint64_t seq = 2;
    assert_int_equal(fact(&f, 0, 1, ++seq, 103, &members[0]), 1);
    assert_int_equal(tick(&f, 3, &members[0]), 1);
    assert_false(last(&f)->partial);
    assert_int_equal(last(&f)->n_evidence, 2);
    /* 3 ticks old at tick 4: past the bound. A partial commit with feed
     * 0's evidence only. */
    assert_int_equal(fact(&f, 0, 1, ++seq, 105, &members[0]), 1);
    assert_int_equal(tick(&f, 4, &members[0]), 1);
    const co_confluence_commit *c = last(&f);
    assert_true(c->partial);
    assert_int_equal(c->n_evidence, 1);
    co_fx_spread s;
    assert_int_equal(co_fx_spread_decode(&s, c->body, c->body_len), 0);
    assert_true(s.has_price[0]);
    assert_false(s.has_price[1]);
    assert_false(s.has_spread);
    co_confluence_status st;
    co_confluence_fsm_status(&f, 0, &st);
    assert_true(st.stalled);
    assert_int_equal(st.stalled_since, 4);
    assert_false(st.lag[1].live);
    assert_int_equal(st.partial_commits, 1);
    /* It comes back: full commits again. */
    assert_int_equal(fact(&f, 1, 1, 2, 41, &members[0]), 1);
    assert_int_equal(tick(&f, 5, &members[0]), 1);
    assert_false(last(&f)->partial);
    co_confluence_fsm_status(&f, 0, &st);
    assert_false(st.stalled);
    co_confluence_fsm_free(&f);
}

static void stall_halt_commits_nothing(void **state)
{
    co_confluence_def def;
    define(&halt_cfg, &def);
    struct mk_fsm f;
    assert_int_equal(co_confluence_fsm_init(&f, &def, NULL), 0);
    assert_int_equal(fact(&f, 0, 1, 1, 100, &members[0]), 1);
    assert_int_equal(fact(&f, 1, 1, 1, 40, &members[0]), 1);
    assert_int_equal(tick(&f, 1, &members[0]), 1);
    assert_int_equal(co_confluence_fsm_count(&f), 1);
    for (uint64_t t = 2; t <= 6; t++) {
        assert_int_equal(fact(&f, 0, 1, t, 100, &members[0]), 1);
        assert_int_equal(tick(&f, t, &members[0]), 1);
    }
    /* Feed 1's fact is 2 ticks old at tick 2 (it came before tick 1):
     * committed; at ticks 3 to 6 it is past the bound: halted. */
    assert_int_equal(co_confluence_fsm_count(&f), 2);
    co_confluence_status st;
    co_confluence_fsm_status(&f, 0, &st);
    assert_true(st.stalled);
    assert_int_equal(st.halted_ticks, 4);
    assert_int_equal(st.partial_commits, 0);
    assert_int_equal(fact(&f, 1, 1, 2, 41, &members[0]), 1);
    assert_int_equal(tick(&f, 7, &members[0]), 1);
    assert_int_equal(co_confluence_fsm_count(&f), 3);
    assert_false(last(&f)->partial);
    co_confluence_fsm_free(&f);
}

/* Determinism: the same commands give the same commits, byte for byte;
 * a snapshot restores the same state, which then goes on alike. */
static void replay_reproduces_commits(void **state)
{
    co_confluence_def def;
    define(&partial_cfg, &def);
    struct mk_fsm a, b, c;
    assert_int_equal(co_confluence_fsm_init(&a, &def, NULL), 0);
    assert_int_equal(co_confluence_fsm_init(&b, &def, NULL), 0);
    assert_int_equal(co_confluence_fsm_init(&c, &def, NULL), 0);
    const co_confluence_info *info = co_confluence_fsm_info(&a);
    /* A recorded log: facts from both feeds at uneven rates, one feed
     * silent for a while, ticks, re-proposals and refusals mixed in. */
    mk_buf cmd, fb, sa, sb, la, lb;
    mk_buf_init(&cmd);
    mk_buf_init(&fb);
    mk_buf_init(&sa);
    mk_buf_init(&sb);
    mk_buf_init(&la);
    mk_buf_init(&lb);
    uint64_t seq[2] = {0, 0}, t = 0, rng = 12345;
    for (int step = 0; step < 3000; step++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(rng >> 33) % 10;
        if (r < 3 || (r < 6 && (step / 400) % 2 == 0)) {
            size_t s = r < 3 ? 0 : 1;
            price(&fb, 10 + (int64_t)s, ++seq[s],
                  1000000 + (int64_t)(rng >> 50));
            co_confluence_cmd_fact(&cmd, info, s, fb.data, fb.len, step,
                                   &members[step % 3]);
        } else if (r < 9) {
            co_confluence_cmd_tick(&cmd, info, ++t, step, &members[0]);
        } else {
            co_confluence_cmd_tick(&cmd, info, t, step, &members[1]); /* dup */
        }
        mk_buf res;
        mk_buf_init(&res);
        assert_int_equal(a.apply(&a, cmd.data, cmd.len, &res), 0);
        mk_buf_reset(&res);
        assert_int_equal(b.apply(&b, cmd.data, cmd.len, &res), 0);
        if (step > 1500) {
            /* c, restored mid-way, follows the rest of the log. */
            mk_buf_reset(&res);
            assert_int_equal(c.apply(&c, cmd.data, cmd.len, &res), 0);
        }
        mk_buf_free(&res);
        mk_buf_reset(&cmd);
        if (step == 1500) {
            snapshot(&a, &sa);
            assert_int_equal(c.restore(&c, sa.data, sa.len), 0);
            snapshot(&c, &sb);
            assert_int_equal(sa.len, sb.len);
            assert_memory_equal(sa.data, sb.data, sa.len);
        }
    }
    log_bytes(&a, &la);
    log_bytes(&b, &lb);
    assert_true(co_confluence_fsm_count(&a) > 500);
    assert_int_equal(la.len, lb.len);
    assert_memory_equal(la.data, lb.data, la.len);
    snapshot(&a, &sa);
    snapshot(&b, &sb);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    snapshot(&c, &sb);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    co_confluence_status st;
    co_confluence_fsm_status(&a, 0, &st);
    assert_true(st.partial_commits > 0); /* feed 1 went silent */

    /* A restored replica holds the same bytes. */
    struct mk_fsm d;
    assert_int_equal(co_confluence_fsm_init(&d, &def, NULL), 0);
    assert_int_equal(d.restore(&d, sa.data, sa.len), 0);
    snapshot(&d, &sb);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    /* A corrupt snapshot is refused and changes nothing. */
    sa.data[sa.len / 2] ^= 0x55;
    (void)d.restore(&d, sa.data, sa.len);
    assert_int_equal(d.restore(&d, sa.data, 10), MK_EDECODE);
    snapshot(&d, &lb);
    assert_int_equal(lb.len, sb.len);
    assert_memory_equal(lb.data, sb.data, sb.len);

    co_confluence_fsm_free(&a);
    co_confluence_fsm_free(&b);
    co_confluence_fsm_free(&c);
    co_confluence_fsm_free(&d);
    mk_buf_free(&cmd);
    mk_buf_free(&fb);
    mk_buf_free(&sa);
    mk_buf_free(&sb);
    mk_buf_free(&la);
    mk_buf_free(&lb);
}

static void keeps_the_last_commits(void **state)
{
    co_confluence_def def;
    define(&partial_cfg, &def);
    struct mk_fsm f, g;
    assert_int_equal(co_confluence_fsm_init(&f, &def, NULL), 0);
    assert_int_equal(co_confluence_fsm_init(&g, &def, NULL), 0);
    assert_int_equal(fact(&f, 0, 1, 1, 100, &members[0]), 1);
    assert_int_equal(fact(&f, 1, 1, 1, 50, &members[0]), 1);
    uint64_t n = CO_CONFLUENCE_KEEP + 100;
    mk_buf cmd;
    mk_buf_init(&cmd);
    for (uint64_t t = 1; t <= n; t++) {
        /* Keep both feeds live: bound 2. */
        if (t % 2 == 0) {
            assert_int_equal(fact(&f, 0, 1, t, 100, &members[0]), 1);
            assert_int_equal(fact(&f, 1, 1, t, 50, &members[0]), 1);
        }
        co_confluence_cmd_tick(&cmd, co_confluence_fsm_info(&f), t, 0,
                               &members[0]);
        assert_int_equal(apply(&f, &cmd), 1);
    }
    assert_int_equal(co_confluence_fsm_count(&f), n);
    const co_confluence_commit *c;
    assert_int_equal(co_confluence_fsm_get(&f, 100, &c), MK_ENOENT);
    assert_int_equal(co_confluence_fsm_get(&f, 101, &c), 0);
    assert_int_equal(c->index, 101);
    assert_int_equal(co_confluence_fsm_get(&f, n, &c), 0);
    assert_int_equal(c->key_event.seq, n);
    mk_buf s, t2;
    mk_buf_init(&s);
    mk_buf_init(&t2);
    snapshot(&f, &s);
    assert_int_equal(g.restore(&g, s.data, s.len), 0);
    assert_int_equal(co_confluence_fsm_get(&g, 101, &c), 0);
    assert_int_equal(c->index, 101);
    snapshot(&g, &t2);
    assert_int_equal(s.len, t2.len);
    assert_memory_equal(s.data, t2.data, s.len);
    mk_buf_free(&s);
    mk_buf_free(&t2);
    mk_buf_free(&cmd);
    co_confluence_fsm_free(&f);
    co_confluence_fsm_free(&g);
}

static void retirement_marker_is_last(void **state)
{
    co_confluence_def def;
    define(&partial_cfg, &def);
    struct mk_fsm f;
    assert_int_equal(co_confluence_fsm_init(&f, &def, NULL), 0);
    const co_confluence_info *info = co_confluence_fsm_info(&f);
    assert_int_equal(fact(&f, 0, 1, 1, 100, &members[0]), 1);
    assert_int_equal(fact(&f, 1, 1, 1, 50, &members[0]), 1);
    assert_int_equal(tick(&f, 1, &members[0]), 1);
    mk_buf cmd;
    mk_buf_init(&cmd);
    mk_id succ;
    mk_id_from_str(&succ, "fx-correlator-v2");
    co_confluence_cmd_retire(&cmd, info, "moved", &succ, &outsider);
    assert_int_equal(apply(&f, &cmd), 0);
    co_confluence_cmd_retire(&cmd, info, "moved", &succ, &members[2]);
    assert_int_equal(apply(&f, &cmd), 1);
    co_confluence_cmd_retire(&cmd, info, "again", NULL, &members[1]);
    assert_int_equal(apply(&f, &cmd), 0); /* the first marker stands */
    const co_confluence_commit *c = last(&f);
    assert_int_equal(c->kind, CO_COMMIT_RETIRED);
    assert_int_equal(c->index, 2);
    co_confluence_retirement r;
    assert_int_equal(co_confluence_retirement_of(c, &r), 0);
    assert_true(mk_id_eq(&r.component, &info->fingerprint));
    assert_string_equal(r.reason, "moved");
    assert_true(r.has_successor);
    assert_true(mk_id_eq(&r.successor, &succ));
    co_confluence_retirement r2;
    co_confluence_fsm_retirement(&f, &r2);
    assert_true(r2.retired);
    assert_true(mk_id_eq(&r2.successor, &succ));
    /* Nothing is folded after it. */
    assert_int_equal(fact(&f, 0, 1, 2, 100, &members[0]), 0);
    assert_int_equal(tick(&f, 2, &members[0]), 0);
    assert_int_equal(co_confluence_fsm_count(&f), 2);
    mk_buf_free(&cmd);
    co_confluence_fsm_free(&f);
}

/* ---- the door ---------------------------------------------------------- */

/* Every proper prefix of a valid command, and the command with one byte
 * more, is malformed: at the door and in apply(). */
static void cuts_refused(struct mk_fsm *f, const mk_buf *cmd)
{
    assert_int_equal(f->admit(f, cmd->data, cmd->len), 0);
    for (size_t n = 0; n < cmd->len; n++)
        refused_alike(f, cmd->data, n, MK_EDECODE);
    uint8_t *longer = malloc(cmd->len + 1);
    assert_non_null(longer);
    memcpy(longer, cmd->data, cmd->len);
    longer[cmd->len] = 0;
    refused_alike(f, longer, cmd->len + 1, MK_EDECODE);
    free(longer);
}

static void door_refuses_what_apply_refuses(void **state)
{
    co_confluence_def def;
    define(&partial_cfg, &def);
    struct mk_fsm f;
    assert_int_equal(co_confluence_fsm_init(&f, &def, NULL), 0);
    const co_confluence_info *info = co_confluence_fsm_info(&f);
    assert_int_equal(fact(&f, 0, 100, 5, 1085000, &members[0]), 1);
    mk_buf b, cmd;
    mk_buf_init(&b);
    mk_buf_init(&cmd);

    /* FACT: a member's, for a spanned source, that its surface reads. A
     * stale one passes the door: whether it is newer is state. */
    price(&b, 100, 1, 1085000);
    co_confluence_cmd_fact(&cmd, info, 1, b.data, b.len, 1000, &members[1]);
    cuts_refused(&f, &cmd);
    cmd.data[cmd.len - 1] ^= 1;
    refused_alike(&f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    mk_buf_reset(&cmd);
    co_confluence_cmd_fact(&cmd, info, 0, b.data, b.len, 1000, &members[1]);
    assert_int_equal(f.admit(&f, cmd.data, cmd.len), 0);
    assert_int_equal(apply(&f, &cmd), 0);
    co_confluence_cmd_fact(&cmd, info, 0, b.data, b.len, 1000, &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    co_confluence_cmd_fact(&cmd, info, 2, b.data, b.len, 1000, &members[1]);
    refused_alike(&f, cmd.data, cmd.len, MK_EDECODE);
    mk_buf_reset(&cmd);
    co_confluence_cmd_fact(&cmd, info, 0, (const uint8_t *)"nope", 4, 0,
                           &members[0]);
    refused_alike(&f, cmd.data, cmd.len, MK_EDECODE);
    mk_buf_reset(&cmd);

    /* TICK, and a tick signed for another confluence. */
    co_confluence_cmd_tick(&cmd, info, 1, 5000, &members[2]);
    cuts_refused(&f, &cmd);
    mk_buf_reset(&cmd);
    co_confluence_cmd_tick(&cmd, info, 1, 5000, &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    co_confluence_def hdef;
    define(&halt_cfg, &hdef);
    co_confluence_info hinfo;
    co_confluence_info_get(&hdef, &hinfo, NULL);
    co_confluence_cmd_tick(&cmd, &hinfo, 1, 5000, &members[2]);
    refused_alike(&f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    mk_buf_reset(&cmd);

    /* RETIRE. */
    co_confluence_cmd_retire(&cmd, info, "moved", NULL, &members[1]);
    cuts_refused(&f, &cmd);
    mk_buf_reset(&cmd);
    co_confluence_cmd_retire(&cmd, info, "moved", NULL, &outsider);
    refused_alike(&f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);

    /* The largest fact fits the committee's limit; garbage does not
     * pass. */
    static uint8_t big[CO_CONFLUENCE_MAX_FACT + 1];
    co_confluence_cmd_fact(&cmd, info, 1, big, CO_CONFLUENCE_MAX_FACT,
                           INT64_MIN, &members[1]);
    assert_true(cmd.len <= CO_CONFLUENCE_MAX_COMMAND);
    mk_buf_reset(&cmd);
    co_confluence_cmd_fact(&cmd, info, 1, big, sizeof big, 0, &members[1]);
    refused_alike(&f, cmd.data, cmd.len, MK_EDECODE);
    mk_buf_reset(&cmd);
    uint64_t x = 0x853c49e6748fea9bull;
    uint8_t g[160];
    for (int kind = 0; kind < 3; kind++)
        for (size_t len = 1; len <= sizeof g; len += 31) {
            for (size_t i = 0; i < len; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                g[i] = (uint8_t)x;
            }
            g[0] = kind == 2 ? CO_CONFLUENCE_CMD_RETIRE : (uint8_t)(kind + 1);
            int rc = f.admit(&f, g, len);
            assert_int_not_equal(rc, 0);
            refused_alike(&f, g, len, rc);
        }
    mk_buf_free(&b);
    mk_buf_free(&cmd);
    co_confluence_fsm_free(&f);
}

/* ---- the verifier ------------------------------------------------------ */

static void verifier_rejects_what_does_not_match(void **state)
{
    co_confluence_def def;
    define(&partial_cfg, &def);
    struct mk_fsm f;
    assert_int_equal(co_confluence_fsm_init(&f, &def, NULL), 0);
    /* The feeds' own data, as a consumer recorded it. */
    mk_buf a1, a2, b1, forged;
    mk_buf_init(&a1);
    mk_buf_init(&a2);
    mk_buf_init(&b1);
    mk_buf_init(&forged);
    price(&a1, 7, 1, 1000);
    price(&a2, 7, 2, 1010);
    price(&b1, 8, 1, 990);
    price(&forged, 7, 2, 1500); /* same event as a2, another price */
    assert_int_equal(fact(&f, 0, 7, 1, 1000, &members[0]), 1);
    assert_int_equal(fact(&f, 1, 8, 1, 990, &members[0]), 1);
    assert_int_equal(fact(&f, 0, 7, 2, 1010, &members[0]), 1);
    assert_int_equal(tick(&f, 1, &members[0]), 1);
    const co_confluence_commit *c = last(&f);
    co_upstream_fact data[] = {{0, a1.data, a1.len},
                               {0, a2.data, a2.len},
                               {1, b1.data, b1.len}};
    char why[CO_ERRMSG_SIZE];
    assert_int_equal(co_fx_verify(&def, c, data, 3, why), 0);

    /* The feed's data says something else at that event. */
    co_upstream_fact tampered[] = {{0, forged.data, forged.len},
                                   {1, b1.data, b1.len}};
    assert_int_equal(co_fx_verify(&def, c, tampered, 2, why),
                     MK_EHASH_MISMATCH);
    /* The data lacks the fact the evidence names. */
    assert_int_equal(co_fx_verify(&def, c, data + 2, 1, why), MK_ENOENT);

    /* A forged commit: the evidence hash altered. */
    co_confluence_commit bad = *c;
    bad.evidence[1].hash.b[0] ^= 1;
    assert_int_equal(co_fx_verify(&def, &bad, data, 3, why),
                     MK_EHASH_MISMATCH);
    /* Evidence naming a citizen the confluence does not span. */
    bad = *c;
    mk_id_from_str(&bad.evidence[0].citizen, "someone else");
    assert_int_equal(co_fx_verify(&def, &bad, data, 3, why), CO_EUNVERIFIED);
    /* A body whose spread is not the feeds' difference. */
    co_fx_spread s;
    assert_int_equal(co_fx_spread_decode(&s, c->body, c->body_len), 0);
    s.price_micro[0] += 1;
    s.spread_micro += 1;
    mk_buf body;
    mk_buf_init(&body);
    co_fx_spread_encode(&s, &body);
    bad = *c;
    bad.body = body.data;
    bad.body_len = body.len;
    assert_int_equal(co_fx_verify(&def, &bad, data, 3, why), CO_EUNVERIFIED);
    /* A complete spread claimed with one feed's evidence removed. */
    bad = *c;
    bad.n_evidence = 1;
    assert_int_equal(co_fx_verify(&def, &bad, data, 3, why), CO_EUNVERIFIED);

    mk_buf_free(&body);
    mk_buf_free(&a1);
    mk_buf_free(&a2);
    mk_buf_free(&b1);
    mk_buf_free(&forged);
    co_confluence_fsm_free(&f);
}

static void content_parameters(void **state)
{
    co_confluence_config c = {.content = "x/v1;a=12;b=hello;c=;d=99x"};
    char buf[8];
    uint64_t v;
    assert_int_equal(co_confluence_param(&c, "b", buf, sizeof buf), 1);
    assert_string_equal(buf, "hello");
    assert_int_equal(co_confluence_param(&c, "z", buf, sizeof buf), 0);
    assert_int_equal(co_confluence_param(&c, "b", buf, 3), -1);
    assert_int_equal(co_confluence_param_u64(&c, "a", 5, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(co_confluence_param_u64(&c, "z", 5, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(co_confluence_param_u64(&c, "c", 5, &v), -1);
    assert_int_equal(co_confluence_param_u64(&c, "d", 5, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(price_update_is_canonical),
        cmocka_unit_test(spread_and_commit_codecs),
        cmocka_unit_test(ids_follow_the_config_only),
        cmocka_unit_test(demo_config_and_two_coalitions),
        cmocka_unit_test(folds_dedups_and_commits_with_evidence),
        cmocka_unit_test(stall_partial_then_recover),
        cmocka_unit_test(stall_halt_commits_nothing),
        cmocka_unit_test(replay_reproduces_commits),
        cmocka_unit_test(keeps_the_last_commits),
        cmocka_unit_test(retirement_marker_is_last),
        cmocka_unit_test(verifier_rejects_what_does_not_match),
        cmocka_unit_test(content_parameters),
        cmocka_unit_test(door_refuses_what_apply_refuses),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
