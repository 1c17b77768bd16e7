/* The Compute state machine, driven directly: matching (best fit, TDX,
 * never over-committing), idempotent and unsatisfiable requests, output
 * and logs only from the granted provider, expiry at valid_to, providers
 * declared gone by committed clocks and their work re-matched, malformed
 * commands refused without a change, and determinism: replaying the
 * committed commands reproduces every grant, byte for byte, as does a
 * snapshot. A seeded property test (the seed is printed; COMPUTE_SEED=N
 * replays one) throws random workloads and capacities at it and checks
 * the invariants after every command. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/coalition/compute_internal.h"
#include "../../src/coalition/modules_internal.h"
#include "mosaik/error.h"
#include "testutil.h"

#define NPROV 6

static mk_keypair members[3], provs[NPROV], users[2];
static co_module_info info;
static const co_confluence_config COMPUTE_CFG = {
    .name = "compute",
    .content = "compute/v1;clock_ms=100;heartbeat_ms=200;missed=3;"
               "queue_ms=5000;output_max=64;keep=8",
};

static void seed_key(mk_keypair *kp, int tag)
{
    uint8_t seed[32];
    memset(seed, tag, sizeof seed);
    mk_keypair_from_seed(kp, seed);
}

static int setup(void **state)
{
    memset(&info, 0, sizeof info);
    info.kind = CO_MODULE_COMPUTE;
    info.config = &COMPUTE_CFG;
    mk_id_from_str(&info.root, "compute-root");
    for (int i = 0; i < 3; i++) {
        seed_key(&members[i], 0x10 + i);
        info.committee[i] = members[i].pub;
    }
    info.n_committee = 3;
    for (int i = 0; i < NPROV; i++)
        seed_key(&provs[i], 0x40 + i);
    seed_key(&users[0], 0x70);
    seed_key(&users[1], 0x71);
    return 0;
}

/* A machine plus the log of every command applied to it. */
typedef struct machine {
    struct mk_fsm f;
    mk_buf log;   /* u32 length, command, ... */
    int64_t now;  /* the clock the test commits */
} machine;

static void machine_init(machine *m)
{
    memset(m, 0, sizeof *m);
    assert_int_equal(co__compute_fsm_init(&m->f, &info), 0);
    mk_buf_init(&m->log);
    m->now = 1700000000000;
}

static void machine_free(machine *m)
{
    co__compute_fsm_free(&m->f);
    mk_buf_free(&m->log);
}

/* The door: admit() refuses `cmd` with `want`, and apply() refuses the
 * very same bytes (outcome 0) and changes nothing, as a member that did
 * not run admit() must. */
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
    co_compute_answer a;
    assert_int_equal(co__compute_answer_decode(len ? cmd[0] : 0, res.data,
                                               res.len, &a),
                     0);
    assert_int_equal(a.outcome, 0);
    assert_int_equal(f->snapshot(f, &after), 0);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, after.len);
    mk_buf_free(&before);
    mk_buf_free(&after);
    mk_buf_free(&res);
}

/* Applies `cmd` (then resets it) and returns the answer. Whatever admit()
 * refuses, apply() must refuse alike: checked on every command. */
static co_compute_answer run(machine *m, mk_buf *cmd)
{
    assert_int_equal(cmd->err, 0);
    assert_non_null(m->f.admit);
    int door = m->f.admit(&m->f, cmd->data, cmd->len);
    if (door != 0)
        refused_alike(&m->f, cmd->data, cmd->len, door);
    mk_buf res;
    mk_buf_init(&res);
    assert_int_equal(m->f.apply(&m->f, cmd->data, cmd->len, &res), 0);
    co_compute_answer a;
    assert_int_equal(co__compute_answer_decode(cmd->data[0], res.data,
                                               res.len, &a),
                     0);
    uint8_t len[4] = {(uint8_t)(cmd->len >> 24), (uint8_t)(cmd->len >> 16),
                      (uint8_t)(cmd->len >> 8), (uint8_t)cmd->len};
    mk_put_raw(&m->log, len, 4);
    mk_put_raw(&m->log, cmd->data, cmd->len);
    mk_buf_free(&res);
    mk_buf_reset(cmd);
    const char *bad = co__compute_check(&m->f);
    if (bad)
        fail_msg("invariant broken: %s", bad);
    return a;
}

static co_compute_answer tick(machine *m, int64_t ms)
{
    mk_buf cmd;
    mk_buf_init(&cmd);
    m->now += ms;
    co__compute_cmd_clock(&cmd, &info.root, m->now, &members[0]);
    co_compute_answer a = run(m, &cmd);
    mk_buf_free(&cmd);
    return a;
}

static co_compute_answer reg(machine *m, int p, uint64_t cpu, uint64_t ram,
                             uint64_t storage, bool tdx, int64_t nonce)
{
    co_provider_card c = {.provider = provs[p].pub,
                          .capacity = {cpu, ram, storage},
                          .tdx_capable = tdx,
                          .nonce = nonce,
                          .n_regions = 1};
    strcpy(c.regions[0], "eu-west");
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_register(&cmd, &info.root, &c, &provs[p]);
    co_compute_answer a = run(m, &cmd);
    mk_buf_free(&cmd);
    return a;
}

static co_compute_answer beat(machine *m, int p, uint8_t kind, int64_t nonce)
{
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_heartbeat(&cmd, &info.root, kind, nonce, &provs[p]);
    co_compute_answer a = run(m, &cmd);
    mk_buf_free(&cmd);
    return a;
}

static co_compute_request request(uint64_t nonce, uint64_t cpu, uint64_t ram,
                                  uint64_t storage, bool tdx,
                                  uint64_t valid_for)
{
    co_compute_request q = {.min = {cpu, ram, storage},
                            .tdx = tdx,
                            .valid_for_ms = valid_for};
    mk_id_from_str(&q.image_hash, "image");
    co_compute_request_id(&users[0].pub, &q.image_hash, nonce, &q.request_id);
    return q;
}

static co_compute_answer submit(machine *m, const co_compute_request *q,
                                int user)
{
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_submit(&cmd, &info.root, q, &users[user]);
    co_compute_answer a = run(m, &cmd);
    mk_buf_free(&cmd);
    return a;
}

static co_compute_status status(machine *m, const mk_id *id)
{
    co_compute_status s;
    assert_true(co__compute_request_find(&m->f, id, &s));
    return s;
}

static co_compute_answer logit(machine *m, const mk_id *id, uint32_t attempt,
                               int signer, int named, int code)
{
    co_compute_log l = {.request_id = *id,
                        .attempt = attempt,
                        .provider = provs[named].pub,
                        .exit = CO_COMPUTE_EXITED,
                        .code = code,
                        .usage = {.cpu_ms = 5, .wall_ms = 9}};
    strcpy(l.reason, "exited");
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_log(&cmd, &info.root, &l, &provs[signer]);
    co_compute_answer a = run(m, &cmd);
    mk_buf_free(&cmd);
    return a;
}

static co_compute_answer out(machine *m, const mk_id *id, uint32_t attempt,
                             uint64_t seq, int signer, const char *text)
{
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_output(&cmd, &info.root, id, attempt, seq, 1, text,
                           strlen(text), &provs[signer]);
    co_compute_answer a = run(m, &cmd);
    mk_buf_free(&cmd);
    return a;
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

/* Replays m's committed commands into a fresh machine and a snapshot of
 * it into a third: all three must hold the same bytes. */
static void replay_matches(machine *m)
{
    struct mk_fsm g, h;
    assert_int_equal(co__compute_fsm_init(&g, &info), 0);
    assert_int_equal(co__compute_fsm_init(&h, &info), 0);
    for (size_t at = 0; at + 4 <= m->log.len;) {
        const uint8_t *p = m->log.data + at;
        size_t len = (size_t)p[0] << 24 | (size_t)p[1] << 16 |
                     (size_t)p[2] << 8 | p[3];
        mk_buf res;
        mk_buf_init(&res);
        assert_int_equal(g.apply(&g, p + 4, len, &res), 0);
        mk_buf_free(&res);
        at += 4 + len;
    }
    same_snapshot(&m->f, &g);
    mk_buf snap;
    mk_buf_init(&snap);
    assert_int_equal(m->f.snapshot(&m->f, &snap), 0);
    assert_int_equal(h.restore(&h, snap.data, snap.len), 0);
    same_snapshot(&m->f, &h);
    /* And the grants, one by one. */
    for (size_t i = 0; i < co__compute_request_count(&m->f); i++) {
        co_compute_status a, b;
        co__compute_request_at(&m->f, i, &a);
        co__compute_request_at(&g, i, &b);
        assert_true(mk_id_eq(&a.request.request_id, &b.request.request_id));
        assert_int_equal(a.state, b.state);
        assert_int_equal(a.granted, b.granted);
        if (a.granted) {
            assert_true(mk_id_eq(&a.grant.provider, &b.grant.provider));
            assert_int_equal(a.grant.attempt, b.grant.attempt);
            assert_int_equal(a.grant.valid_to_ms, b.grant.valid_to_ms);
        }
    }
    mk_buf_free(&snap);
    co__compute_fsm_free(&g);
    co__compute_fsm_free(&h);
}

/* ---- scenarios ------------------------------------------------------------------ */

static void matching_is_best_fit(void **state)
{
    machine m;
    machine_init(&m);
    /* Before the first clock a request waits (no time, no deadlines). */
    assert_int_equal(reg(&m, 0, 4000, 4096, 1000, false, 1).outcome, 1);
    co_compute_request early = request(1, 1000, 512, 0, false, 10000);
    co_compute_answer a = submit(&m, &early, 0);
    assert_int_equal(a.outcome, 1);
    assert_int_equal(a.state, CO_COMPUTE_PENDING);
    assert_int_equal(tick(&m, 100).outcome, 1);
    co_compute_status s = status(&m, &early.request_id);
    assert_int_equal(s.state, CO_COMPUTE_GRANTED);
    assert_true(mk_id_eq(&s.grant.provider, &provs[0].pub));
    assert_int_equal(s.grant.attempt, 1);
    assert_int_equal(s.grant.valid_to_ms, m.now + 10000);
    assert_true(mk_id_eq(&s.grant.bearer.peer, &users[0].pub));
    assert_true(mk_id_eq(&s.grant.bearer.hash, &early.image_hash));

    /* Two more providers: provider 1 is a tighter fit for 2000m. */
    assert_int_equal(reg(&m, 1, 2000, 2048, 1000, false, 1).outcome, 1);
    assert_int_equal(reg(&m, 2, 8000, 8192, 1000, true, 1).outcome, 1);
    co_compute_request q2 = request(2, 2000, 1024, 0, false, 10000);
    assert_int_equal(submit(&m, &q2, 0).state, CO_COMPUTE_GRANTED);
    s = status(&m, &q2.request_id);
    assert_true(mk_id_eq(&s.grant.provider, &provs[1].pub));
    /* TDX only where TDX is offered, even when others fit better. */
    co_compute_request q3 = request(3, 500, 128, 0, true, 10000);
    assert_int_equal(submit(&m, &q3, 0).state, CO_COMPUTE_GRANTED);
    s = status(&m, &q3.request_id);
    assert_true(mk_id_eq(&s.grant.provider, &provs[2].pub));

    /* The same request again changes nothing; another under its id is
     * refused. */
    a = submit(&m, &q2, 0);
    assert_int_equal(a.outcome, 2);
    assert_int_equal(a.state, CO_COMPUTE_GRANTED);
    co_compute_request clash = q2;
    clash.min.cpu_millis = 1;
    assert_int_equal(submit(&m, &clash, 0).outcome, 0);
    assert_int_equal(submit(&m, &q2, 1).outcome, 0); /* another submitter */

    /* Nothing could ever hold 64 cores: answered now, with the reason. */
    co_compute_request huge = request(4, 64000, 128, 0, false, 10000);
    a = submit(&m, &huge, 0);
    assert_int_equal(a.outcome, 1);
    assert_int_equal(a.state, CO_COMPUTE_REJECTED);
    assert_non_null(strstr(a.reason, "no provider offers cpu >= 64000m"));

    /* Best fit: 3000m leaves nothing on provider 0 (but 4500m on 2). */
    co_compute_request q5 = request(5, 3000, 128, 0, false, 10000);
    assert_int_equal(submit(&m, &q5, 0).state, CO_COMPUTE_GRANTED);
    s = status(&m, &q5.request_id);
    assert_true(mk_id_eq(&s.grant.provider, &provs[0].pub));
    co_compute_request q6 = request(6, 4000, 128, 0, false, 10000);
    assert_int_equal(submit(&m, &q6, 0).state, CO_COMPUTE_GRANTED);
    /* Now 3500m is the most any provider has free: 4000m waits. */
    co_compute_request q7 = request(7, 4000, 128, 0, false, 10000);
    a = submit(&m, &q7, 0);
    assert_int_equal(a.state, CO_COMPUTE_PENDING);
    assert_non_null(strstr(a.reason, "waiting for free capacity"));
    /* A log signed by anyone but the granted provider is refused. */
    assert_int_equal(logit(&m, &early.request_id, 1, 1, 0, 0).outcome, 0);
    assert_int_equal(logit(&m, &early.request_id, 1, 1, 1, 0).outcome, 0);
    assert_int_equal(logit(&m, &early.request_id, 1, 0, 0, 7).outcome, 1);
    s = status(&m, &early.request_id);
    assert_int_equal(s.state, CO_COMPUTE_DONE);
    assert_int_equal(s.log.code, 7);
    assert_int_equal(logit(&m, &early.request_id, 1, 0, 0, 7).outcome, 2);
    assert_int_equal(status(&m, &q7.request_id).state, CO_COMPUTE_PENDING);
    /* Provider 0's second exit frees 4000m there: the queue moves. */
    assert_int_equal(logit(&m, &q5.request_id, 1, 0, 0, 0).outcome, 1);
    s = status(&m, &q7.request_id);
    assert_int_equal(s.state, CO_COMPUTE_GRANTED);
    assert_true(mk_id_eq(&s.grant.provider, &provs[0].pub));
    replay_matches(&m);
    machine_free(&m);
}

static void output_and_logs_only_from_the_grant(void **state)
{
    machine m;
    machine_init(&m);
    tick(&m, 100);
    reg(&m, 0, 1000, 1024, 0, false, 1);
    co_compute_request q = request(1, 1000, 64, 0, false, 10000);
    submit(&m, &q, 0);
    const mk_id *id = &q.request_id;
    assert_int_equal(out(&m, id, 1, 0, 0, "hello ").outcome, 1);
    assert_int_equal(out(&m, id, 1, 0, 0, "hello ").outcome, 2); /* retry */
    assert_int_equal(out(&m, id, 1, 2, 0, "gap").outcome, 0);
    assert_int_equal(out(&m, id, 1, 1, 1, "forged").outcome, 0);
    assert_int_equal(out(&m, id, 2, 1, 0, "wrong attempt").outcome, 0);
    assert_int_equal(out(&m, id, 1, 1, 0, "world").outcome, 1);
    /* The budget (64 bytes here) is a hard bound. */
    char big[60];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(out(&m, id, 1, 2, 0, big).outcome, 0);
    co_compute_status s = status(&m, id);
    assert_int_equal(s.output_chunks, 2);
    assert_int_equal(s.output_bytes, 11);

    /* A log a stranger signed naming the provider is refused, as is one
     * the provider signed naming someone else. */
    assert_int_equal(logit(&m, id, 1, 3, 0, 0).outcome, 0);
    assert_int_equal(logit(&m, id, 1, 0, 3, 0).outcome, 0);
    assert_int_equal(status(&m, id).state, CO_COMPUTE_GRANTED);
    assert_int_equal(logit(&m, id, 1, 0, 0, 0).outcome, 1);
    /* After the log nothing more is taken. */
    assert_int_equal(out(&m, id, 1, 2, 0, "late").outcome, 0);
    replay_matches(&m);
    machine_free(&m);
}

static void expiry_and_silence(void **state)
{
    machine m;
    machine_init(&m);
    tick(&m, 100);
    reg(&m, 0, 1000, 1024, 0, false, 1);
    reg(&m, 1, 1000, 1024, 0, false, 1);
    beat(&m, 0, CO__COMPUTE_HEARTBEAT, 10);
    beat(&m, 1, CO__COMPUTE_HEARTBEAT, 10);
    co_compute_request q = request(1, 1000, 64, 0, false, 1000);
    submit(&m, &q, 0);
    co_compute_status s = status(&m, &q.request_id);
    int first = mk_id_eq(&s.grant.provider, &provs[0].pub) ? 0 : 1;
    /* Ties go to the smaller ProviderId. */
    assert_true(mk_id_cmp(&provs[first].pub, &provs[1 - first].pub) < 0);

    /* The first provider falls silent; the other keeps beating. A clock
     * jump alone (an outage) condemns nobody: it takes enough clocks. */
    tick(&m, 5000);
    assert_int_equal(status(&m, &q.request_id).state, CO_COMPUTE_EXPIRED);
    co_compute_request q2 = request(2, 1000, 64, 0, false, 60000);
    submit(&m, &q2, 0);
    s = status(&m, &q2.request_id);
    int holder = mk_id_eq(&s.grant.provider, &provs[0].pub) ? 0 : 1;
    co_compute_provider_info pi;
    assert_true(co__compute_provider_find(&m.f, &provs[holder].pub, &pi));
    assert_true(pi.alive);
    int64_t nonce = 100;
    beat(&m, holder, CO__COMPUTE_HEARTBEAT, 50);
    for (int i = 0; i < 5; i++) {
        beat(&m, 1 - holder, CO__COMPUTE_HEARTBEAT, nonce++);
        tick(&m, 100);
    }
    assert_true(co__compute_provider_find(&m.f, &provs[holder].pub, &pi));
    assert_true(pi.alive); /* 5 clocks of 100 ms: under 3 × 200 ms */
    for (int i = 0; i < 3; i++) {
        beat(&m, 1 - holder, CO__COMPUTE_HEARTBEAT, nonce++);
        tick(&m, 100);
    }
    assert_true(co__compute_provider_find(&m.f, &provs[holder].pub, &pi));
    assert_false(pi.alive);
    assert_int_equal(pi.running, 0);
    s = status(&m, &q2.request_id);
    assert_int_equal(s.state, CO_COMPUTE_GRANTED);
    assert_int_equal(s.grant.attempt, 2);
    assert_true(mk_id_eq(&s.grant.provider, &provs[1 - holder].pub));
    /* The silent provider's late records for attempt 1 are refused. */
    assert_int_equal(logit(&m, &q2.request_id, 1, holder, holder, 0).outcome,
                     0);
    /* Back with a heartbeat, it is alive again; a replayed (older)
     * heartbeat changes nothing. */
    assert_int_equal(beat(&m, holder, CO__COMPUTE_HEARTBEAT, 60).outcome, 1);
    assert_int_equal(beat(&m, holder, CO__COMPUTE_HEARTBEAT, 60).outcome, 2);
    assert_true(co__compute_provider_find(&m.f, &provs[holder].pub, &pi));
    assert_true(pi.alive);
    /* DEPART re-matches at once: provider holder takes it back. */
    assert_int_equal(beat(&m, 1 - holder, CO__COMPUTE_DEPART, nonce++)
                         .outcome,
                     1);
    s = status(&m, &q2.request_id);
    assert_int_equal(s.grant.attempt, 3);
    assert_true(mk_id_eq(&s.grant.provider, &provs[holder].pub));

    /* The expired request's late log is still recorded. */
    assert_int_equal(logit(&m, &q.request_id, 1, first, first, 137).outcome,
                     1);
    s = status(&m, &q.request_id);
    assert_int_equal(s.state, CO_COMPUTE_DONE);
    replay_matches(&m);
    machine_free(&m);
}

static void refusals_change_nothing(void **state)
{
    machine m;
    machine_init(&m);
    tick(&m, 100);
    reg(&m, 0, 1000, 1024, 0, false, 1);
    mk_buf before, after, res;
    mk_buf_init(&before);
    mk_buf_init(&after);
    mk_buf_init(&res);
    assert_int_equal(m.f.snapshot(&m.f, &before), 0);
    const uint8_t junk[][4] = {{0}, {1, 2, 3}, {7, 1}, {0x42}, {4, 0, 0, 0}};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        mk_buf_reset(&res);
        assert_int_equal(m.f.apply(&m.f, junk[i], sizeof junk[i], &res), 0);
        assert_true(res.len >= 1);
        assert_int_equal(res.data[0], 0);
    }
    /* A clock from outside the committee, a card signed by another key,
     * an older card, a stale clock. */
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_clock(&cmd, &info.root, m.now + 5, &users[0]);
    assert_int_equal(run(&m, &cmd).outcome, 0);
    co_provider_card c = {.provider = provs[1].pub,
                          .capacity = {1, 1, 0},
                          .nonce = 5};
    co__compute_cmd_register(&cmd, &info.root, &c, &provs[2]);
    assert_int_equal(run(&m, &cmd).outcome, 0);
    assert_int_equal(reg(&m, 0, 1000, 1024, 0, false, 1).outcome, 2);
    co__compute_cmd_clock(&cmd, &info.root, m.now, &members[1]);
    assert_int_equal(run(&m, &cmd).outcome, 2);
    /* Signed for another coalition's Compute: meaningless here. */
    mk_id other;
    mk_id_from_str(&other, "another root");
    co__compute_cmd_clock(&cmd, &other, m.now + 9, &members[1]);
    assert_int_equal(run(&m, &cmd).outcome, 0);
    mk_buf_free(&cmd);
    assert_int_equal(m.f.snapshot(&m.f, &after), 0);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, after.len);
    /* A corrupt snapshot is refused and leaves the state alone. */
    after.data[after.len / 2] ^= 0xff;
    struct mk_fsm g;
    assert_int_equal(co__compute_fsm_init(&g, &info), 0);
    int rc = g.restore(&g, after.data, after.len - 1);
    assert_true(rc == MK_EDECODE);
    co__compute_fsm_free(&g);
    mk_buf_free(&before);
    mk_buf_free(&after);
    mk_buf_free(&res);
    machine_free(&m);
}

/* ---- canonical snapshots ------------------------------------------------------------ */

/* An empty Compute snapshot around the retirement bytes `ret`. */
static void empty_snapshot(mk_buf *b, const uint8_t *ret, size_t n)
{
    mk_buf_reset(b);
    mk_put_raw(b, "CMP1", 4);
    mk_put_raw(b, ret, n);
    mk_put_i64(b, -2);   /* now */
    mk_put_varint(b, 3); /* clocks */
    mk_put_varint(b, 0); /* next_seq */
    mk_put_varint(b, 0); /* finish_seq */
    mk_put_varint(b, 0); /* providers */
    mk_put_varint(b, 0); /* requests */
    mk_put_varint(b, 0); /* pending */
}

/* Restore accepts exactly the bytes snapshot writes: anything it would
 * normalise (a reason cut at an embedded NUL, the fuzzer's find, or a
 * flag other than 0/1) is refused, or replicas restored from different
 * bytes would agree on state but not on their next snapshot. */
static void restore_refuses_noncanonical_retirement(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t ret[8];
        size_t n;
        int rc;
    } C[] = {
        {"not retired", {0}, 1, 0},
        {"retired, reason \"ab\"", {1, 2, 'a', 'b', 0}, 5, 0},
        {"retired, empty reason", {1, 0, 0}, 3, 0},
        {"reason \"\\0\"", {1, 1, 0, 0}, 4, MK_EDECODE},
        {"reason \"a\\0b\"", {1, 3, 'a', 0, 'b', 0}, 6, MK_EDECODE},
        {"retired flag 2", {2, 0, 0}, 3, MK_EDECODE},
        {"retired flag 0xff", {0xff}, 1, MK_EDECODE},
        {"successor flag 2", {1, 0, 2}, 3, MK_EDECODE},
    };
    mk_buf snap, again;
    mk_buf_init(&snap);
    mk_buf_init(&again);
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        struct mk_fsm g;
        assert_int_equal(co__compute_fsm_init(&g, &info), 0);
        empty_snapshot(&snap, C[i].ret, C[i].n);
        int rc = g.restore(&g, snap.data, snap.len);
        if (rc != C[i].rc)
            fail_msg("%s: restore gave %d, want %d", C[i].what, rc, C[i].rc);
        if (rc == 0) {
            mk_buf_reset(&again);
            assert_int_equal(g.snapshot(&g, &again), 0);
            assert_int_equal(again.len, snap.len);
            assert_memory_equal(again.data, snap.data, snap.len);
        } else {
            assert_false(co__compute_retirement(&g)->retired);
        }
        co__compute_fsm_free(&g);
    }
    mk_buf_free(&snap);
    mk_buf_free(&again);
}

/* The RETIRE command has the same hole: a reason "a\0b" used to be
 * stored, and verified, as "a", so a signature over "a" retired the
 * module through other bytes than the ones signed. Now malformed. */
static void retire_refuses_reason_with_nul(void **state)
{
    (void)state;
    machine m;
    machine_init(&m);
    mk_buf good, bad, res;
    mk_buf_init(&good);
    mk_buf_init(&bad);
    mk_buf_init(&res);
    co__cmd_retire(&good, &m.f.signature, "a", NULL, &members[0]);
    /* kind, 1 'a', has 0, member, sig -> kind, 3 'a' 0 'b', the rest. */
    assert_int_equal(good.data[1], 1);
    mk_put_u8(&bad, good.data[0]);
    mk_put_bytes(&bad, "a\0b", 3);
    mk_put_raw(&bad, good.data + 3, good.len - 3);
    assert_int_equal(m.f.apply(&m.f, bad.data, bad.len, &res), 0);
    assert_true(res.len >= 1);
    assert_int_equal(res.data[0], 0);
    assert_false(co__compute_retirement(&m.f)->retired);
    /* The honest command still retires it. */
    mk_buf_reset(&res);
    assert_int_equal(m.f.apply(&m.f, good.data, good.len, &res), 0);
    assert_int_equal(res.data[0], 1);
    assert_true(co__compute_retirement(&m.f)->retired);
    assert_string_equal(co__compute_retirement(&m.f)->reason, "a");
    mk_buf_free(&good);
    mk_buf_free(&bad);
    mk_buf_free(&res);
    machine_free(&m);
}

/* ---- the property test -------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t pick(uint64_t *s, uint64_t n)
{
    return rng_next(s) % n;
}

/* Random providers (capacities, TDX), requests (sizes, TDX, lifetimes),
 * logs, heartbeats, departures and clocks, concurrently in any order: the
 * machine's own check (no provider over-committed, used = the sum of its
 * live grants, the queue exact) holds after every command, and a replay
 * reproduces the state. */
static void never_over_commits(void **state)
{
    uint64_t seed = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
    const char *env = getenv("COMPUTE_SEED");
    if (env)
        seed = strtoull(env, NULL, 10);
    printf("never_over_commits: COMPUTE_SEED=%" PRIu64 "\n", seed);
    fflush(stdout);
    for (int round = 0; round < 20; round++) {
        uint64_t s = seed + (uint64_t)round * 7919 + 1;
        machine m;
        machine_init(&m);
        int64_t nonces[NPROV] = {0};
        uint64_t next = 1;
        mk_id ids[256];
        size_t n_ids = 0;
        size_t granted = 0, waited = 0;
        tick(&m, 100);
        for (int p = 0; p < NPROV; p++)
            reg(&m, p, 1000 + pick(&s, 8) * 1000, 512 + pick(&s, 8) * 512,
                pick(&s, 4) * 1000, p % 3 == 0, ++nonces[p]);
        for (int step = 0; step < 400; step++) {
            switch (pick(&s, 8)) {
            case 0: { /* a provider (re)registers */
                int p = (int)pick(&s, NPROV);
                reg(&m, p, 500 + pick(&s, 8) * 500, 256 + pick(&s, 8) * 256,
                    pick(&s, 4) * 1000, pick(&s, 3) == 0, ++nonces[p]);
                break;
            }
            case 1:
            case 2: { /* a request */
                co_compute_request q = request(
                    next++, 250 + pick(&s, 8) * 250, 64 + pick(&s, 8) * 64,
                    pick(&s, 3) * 500, pick(&s, 5) == 0,
                    1000 + pick(&s, 20) * 500);
                uint8_t st = submit(&m, &q, 0).state;
                granted += st == CO_COMPUTE_GRANTED;
                waited += st == CO_COMPUTE_PENDING;
                if (n_ids < 256)
                    ids[n_ids++] = q.request_id;
                break;
            }
            case 3: { /* some granted request's provider logs it */
                if (!n_ids)
                    break;
                co_compute_status st;
                if (!co__compute_request_find(&m.f, &ids[pick(&s, n_ids)],
                                              &st) ||
                    !st.granted)
                    break;
                int p = 0;
                while (p < NPROV && !mk_id_eq(&provs[p].pub,
                                              &st.grant.provider))
                    p++;
                logit(&m, &st.request.request_id, st.grant.attempt, p, p,
                      (int)pick(&s, 3));
                break;
            }
            case 4: { /* heartbeats, or a departure */
                int p = (int)pick(&s, NPROV);
                beat(&m, p,
                     pick(&s, 10) == 0 ? CO__COMPUTE_DEPART
                                       : CO__COMPUTE_HEARTBEAT,
                     ++nonces[p]);
                break;
            }
            default:
                tick(&m, (int64_t)(50 + pick(&s, 300)));
                break;
            }
        }
        if (round == 0)
            printf("never_over_commits: round 0: of %" PRIu64
                   " requests %zu granted at once, %zu queued\n",
                   next - 1, granted, waited);
        replay_matches(&m);
        machine_free(&m);
    }
}


/* ---- the door ------------------------------------------------------------------------- */

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
    machine m;
    machine_init(&m);
    tick(&m, 100);
    reg(&m, 0, 4000, 4096, 0, false, 1);
    co_compute_request q = request(1, 1000, 512, 0, false, 10000);
    assert_int_equal(submit(&m, &q, 0).state, CO_COMPUTE_GRANTED);
    mk_buf cmd;
    mk_buf_init(&cmd);

    /* Every kind, valid: admitted; cut or extended: malformed; with its
     * signature's last byte flipped: a bad signature. */
    co_provider_card c = {.provider = provs[1].pub,
                          .capacity = {1000, 1024, 0},
                          .n_regions = 1,
                          .nonce = 1};
    strcpy(c.regions[0], "eu");
    co_compute_log l = {.request_id = q.request_id,
                        .attempt = 1,
                        .provider = provs[0].pub,
                        .exit = CO_COMPUTE_EXITED};
    for (int kind = CO__COMPUTE_REGISTER; kind <= CO__CMD_RETIRE; kind++) {
        switch (kind) {
        case CO__COMPUTE_REGISTER:
            co__compute_cmd_register(&cmd, &info.root, &c, &provs[1]);
            break;
        case CO__COMPUTE_HEARTBEAT:
        case CO__COMPUTE_DEPART:
            co__compute_cmd_heartbeat(&cmd, &info.root, (uint8_t)kind, 7,
                                      &provs[0]);
            break;
        case CO__COMPUTE_SUBMIT:
            co__compute_cmd_submit(&cmd, &info.root, &q, &users[1]);
            break;
        case CO__COMPUTE_OUTPUT:
            co__compute_cmd_output(&cmd, &info.root, &q.request_id, 1, 0, 2,
                                   "out", 3, &provs[0]);
            break;
        case CO__COMPUTE_LOG:
            co__compute_cmd_log(&cmd, &info.root, &l, &provs[0]);
            break;
        case CO__COMPUTE_CLOCK:
            co__compute_cmd_clock(&cmd, &info.root, m.now + 1, &members[2]);
            break;
        case CO__CMD_RETIRE:
            co__cmd_retire(&cmd, &m.f.signature, "r", NULL, &members[2]);
            break;
        default:
            continue;
        }
        cuts_refused(&m.f, &cmd);
        cmd.data[cmd.len - 1] ^= 1;
        refused_alike(&m.f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
        mk_buf_reset(&cmd);
    }

    /* Signed by another key than the one named, or for another
     * coalition's Compute. */
    co__compute_cmd_register(&cmd, &info.root, &c, &provs[2]);
    refused_alike(&m.f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    mk_buf_reset(&cmd);
    l.provider = provs[1].pub;
    co__compute_cmd_log(&cmd, &info.root, &l, &provs[0]);
    refused_alike(&m.f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    mk_buf_reset(&cmd);
    mk_id other;
    mk_id_from_str(&other, "another root");
    co__compute_cmd_submit(&cmd, &other, &q, &users[0]);
    refused_alike(&m.f, cmd.data, cmd.len, MK_EBAD_SIGNATURE);
    mk_buf_reset(&cmd);
    /* Clocks and retirements come from the committee only. */
    co__compute_cmd_clock(&cmd, &info.root, m.now + 1, &users[0]);
    refused_alike(&m.f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    co__cmd_retire(&cmd, &m.f.signature, "r", NULL, &provs[0]);
    refused_alike(&m.f, cmd.data, cmd.len, MK_ENOT_ALLOWED);
    mk_buf_reset(&cmd);
    /* Well signed but malformed: a stream that is neither 1 nor 2, a
     * chunk over CO_COMPUTE_CHUNK_MAX. */
    co__compute_cmd_output(&cmd, &info.root, &q.request_id, 1, 0, 3, "x", 1,
                           &provs[0]);
    refused_alike(&m.f, cmd.data, cmd.len, MK_EDECODE);
    mk_buf_reset(&cmd);
    static uint8_t chunk[CO_COMPUTE_CHUNK_MAX + 1];
    co__compute_cmd_output(&cmd, &info.root, &q.request_id, UINT32_MAX,
                           UINT64_MAX, 1, chunk, sizeof chunk, &provs[0]);
    refused_alike(&m.f, cmd.data, cmd.len, MK_EDECODE);
    mk_buf_reset(&cmd);
    /* The largest command is the Compute's limit, and it passes. */
    co__compute_cmd_output(&cmd, &info.root, &q.request_id, UINT32_MAX,
                           UINT64_MAX, 1, chunk, CO_COMPUTE_CHUNK_MAX,
                           &provs[0]);
    assert_int_equal(cmd.len, CO__COMPUTE_MAX_COMMAND);
    assert_int_equal(m.f.admit(&m.f, cmd.data, cmd.len), 0);
    mk_buf_reset(&cmd);
    c.n_regions = CO_COMPUTE_MAX_REGIONS;
    for (size_t i = 0; i < c.n_regions; i++) {
        memset(c.regions[i], 'r', CO_COMPUTE_MAX_REGION_LEN);
        c.regions[i][CO_COMPUTE_MAX_REGION_LEN] = '\0';
    }
    c.capacity = (co_compute_resources){UINT64_MAX, UINT64_MAX, UINT64_MAX};
    co__compute_cmd_register(&cmd, &info.root, &c, &provs[1]);
    assert_true(cmd.len <= CO__COMPUTE_MAX_COMMAND);
    assert_int_equal(m.f.admit(&m.f, cmd.data, cmd.len), 0);
    mk_buf_reset(&cmd);
    memset(l.reason, 'x', CO_COMPUTE_REASON_LEN);
    l.reason[CO_COMPUTE_REASON_LEN] = '\0';
    l.provider = provs[0].pub;
    co__compute_cmd_log(&cmd, &info.root, &l, &provs[0]);
    assert_true(cmd.len <= CO__COMPUTE_MAX_COMMAND);
    assert_int_equal(m.f.admit(&m.f, cmd.data, cmd.len), 0);
    mk_buf_reset(&cmd);

    /* Seeded garbage behind every kind byte. */
    uint64_t x = 0x2545f4914f6cdd1dull;
    uint8_t g[200];
    for (int kind = 0; kind <= 8; kind++)
        for (size_t len = 1; len <= sizeof g; len += 33) {
            for (size_t i = 0; i < len; i++)
                g[i] = (uint8_t)rng_next(&x);
            g[0] = kind == 8 ? CO__CMD_RETIRE : (uint8_t)kind;
            int rc = m.f.admit(&m.f, g, len);
            assert_int_not_equal(rc, 0);
            refused_alike(&m.f, g, len, rc);
        }

    /* To a submitter, a refusal at the door is a refusal like apply's. */
    co_compute_answer a;
    assert_int_equal(co__compute_answer_of(MK_EBAD_SIGNATURE,
                                           CO__COMPUTE_SUBMIT, NULL, 0, &a),
                     0);
    assert_int_equal(a.outcome, 0);
    assert_non_null(strstr(a.reason, "signature"));
    assert_int_equal(co__compute_answer_of(MK_ECONNECT_TIMEOUT,
                                           CO__COMPUTE_SUBMIT, NULL, 0, &a),
                     MK_ECONNECT_TIMEOUT);
    mk_buf_free(&cmd);
    machine_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matching_is_best_fit),
        cmocka_unit_test(output_and_logs_only_from_the_grant),
        cmocka_unit_test(expiry_and_silence),
        cmocka_unit_test(refusals_change_nothing),
        cmocka_unit_test(restore_refuses_noncanonical_retirement),
        cmocka_unit_test(retire_refuses_reason_with_nul),
        cmocka_unit_test(never_over_commits),
        cmocka_unit_test(door_refuses_what_apply_refuses),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
