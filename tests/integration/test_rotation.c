/* Issue 14's rotation under load: the four members of the demo coalition
 * (examples/demo.json) run as real coalitiond processes while this test,
 * as an integrator with a node of its own, keeps publishing an Atlas card
 * and appending to the Chronicle, and follows the Almanac. Meanwhile an
 * operator rotates each of the Almanac's three original voters out, one
 * at a time, the previous one back in (out x1 / in m3, out x2 / in x1,
 * out x3 / in x2). Afterwards: every acknowledged append is in the
 * Chronicle, the latest acknowledged card is in the Atlas, the ticks the
 * reader saw have no gap and no repeat, the coalition's and modules' ids
 * never changed, and the verified Chronicle holds exactly the six
 * operator changes made, in order.
 *
 * A voter that leads cannot be demoted (mk_group_client_assign): when the
 * one left to rotate out leads, the test restarts it so leadership moves,
 * which is what an operator would do.
 */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "coalition/almanac.h"
#include "coalition/atlas.h"
#include "coalition/chronicle.h"
#include "coalition/chronicle_record.h"
#include "coalition/config_file.h"
#include "coalition/error.h"
#include "coalition/identity.h"
#include "coalition/module.h"
#include "daemon.h"
#include "demo_coalition.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"
#include "mosaik/node.h"

#define N 4
#define MAX_WRITES 4096
#define WRITE_KIND "test.write"

typedef struct rig {
    char dir[512], coalition[1024];
    daemon_proc d[N];
    mk_keypair keys[N];
    uv_loop_t loop;
    mk_keypair me;
    mk_node *node;
    co_almanac_reader *alm;
    co_atlas_reader *atlas;
    co_chronicle_reader *chr;
    mk_group_client *almc;
    mk_id alm_group, ids[3], coalition_id;
    /* The ticks seen. */
    uint64_t first_seq, last_seq, ticks, gaps, repeats;
    /* The writes: appends "w<N>" and cards whose hint ends in ":<N>". */
    bool writing, append_busy, publish_busy;
    uint64_t next_append, next_card, last_card_acked;
    uint64_t acked[MAX_WRITES];
    size_t n_acked;
    uint64_t append_failed, publish_failed;
    int restarts; /* leaders restarted so leadership moved */
    int64_t next_write_ms;
} rig;

static rig R;

static int ms(int base)
{
    return (int)(base * time_factor());
}

/* ---- the integrator ------------------------------------------------------- */

static void on_tick(co_almanac_reader *r, int status, const co_almanac_tick *t,
                    uint64_t missed, void *data)
{
    rig *g = data;
    if (status < 0 || !t || t->seq == 0)
        return;
    if (t->seq == g->last_seq && missed == 0)
        return; /* more stamps on the latest tick */
    if (g->first_seq == 0) {
        g->first_seq = t->seq;
    } else if (t->seq <= g->last_seq) {
        g->repeats++;
        return;
    } else if (t->seq != g->last_seq + 1 || missed) {
        g->gaps++;
    }
    g->last_seq = t->seq;
    g->ticks++;
}

static void on_atlas(co_atlas_reader *r, int status, void *data) {}
static void on_chronicle(co_chronicle_reader *r, int status, void *data) {}

typedef struct write {
    rig *g;
    uint64_t n;
} write;

static void on_appended(int status, void *data)
{
    write *w = data;
    w->g->append_busy = false;
    if (status == 0 && w->g->n_acked < MAX_WRITES)
        w->g->acked[w->g->n_acked++] = w->n;
    else if (status != 0)
        w->g->append_failed++;
    free(w);
}

static void on_published(int status, void *data)
{
    write *w = data;
    w->g->publish_busy = false;
    if (status == 0 && w->n > w->g->last_card_acked)
        w->g->last_card_acked = w->n;
    else if (status != 0)
        w->g->publish_failed++;
    free(w);
}

static const mk_id *write_subject(void)
{
    static mk_id s;
    mk_id_from_str(&s, "coalition.test/rotation/writes");
    return &s;
}

/* One append and one card in flight at a time, a new one every 100 ms,
 * each signed by member 1's key (on both the Chronicle's and the Atlas's
 * committee). A write refused or timed out while a member restarts is
 * not acknowledged, and only acknowledged ones are checked. */
static void drive_writes(rig *g)
{
    if (!g->writing || mk_mono_ms() < g->next_write_ms)
        return;
    g->next_write_ms = mk_mono_ms() + 100;
    char err[CO_ERRMSG_SIZE];
    if (!g->append_busy) {
        write *w = malloc(sizeof *w);
        assert_non_null(w);
        *w = (write){g, ++g->next_append};
        char body[32];
        int len = snprintf(body, sizeof body, "w%llu",
                           (unsigned long long)w->n);
        if (co_chronicle_append(g->node, &DEMO_COALITION, WRITE_KIND,
                                write_subject(), body, (size_t)len, false,
                                &g->keys[1], (uint32_t)ms(5000), on_appended,
                                w, err) == 0)
            g->append_busy = true;
        else
            free(w);
    }
    if (!g->publish_busy) {
        write *w = malloc(sizeof *w);
        assert_non_null(w);
        *w = (write){g, ++g->next_card};
        char hint[64];
        snprintf(hint, sizeof hint, "127.0.0.1:%llu",
                 (unsigned long long)(10000 + w->n));
        const char *h = hint;
        co_citizen_card card = {.role = DEMO_FEED_EUR.role,
                                .endpoint_hints = &h,
                                .n_endpoint_hints = 1,
                                .schema_version = CO_CARD_SCHEMA_VERSION};
        co_organism_stable_id(&DEMO_FEED_EUR, &card.citizen_id, NULL);
        co_tickets_root(&DEMO_COALITION, &card.ticket_issuance_root, NULL);
        if (co_atlas_publish(g->node, &DEMO_COALITION, &card, &g->keys[1],
                             (uint32_t)ms(5000), on_published, w, err) == 0)
            g->publish_busy = true;
        else
            free(w);
    }
}

/* Turns the loop (and the writes) until pred holds or ms pass. */
static bool until(rig *g, bool (*pred)(rig *g, void *a), void *a, int wait)
{
    int64_t end = mk_mono_ms() + wait;
    while (!(pred && pred(g, a))) {
        if (mk_mono_ms() > end)
            return false;
        drive_writes(g);
        uv_run(&g->loop, UV_RUN_NOWAIT);
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

static void pump(rig *g, int wait)
{
    until(g, NULL, NULL, wait);
}

/* ---- the members ---------------------------------------------------------- */

static int start_member(rig *g, int i)
{
    char boot[160];
    const char *args[8] = {"--coalition", g->coalition, "--quiet", NULL};
    for (int j = 0; j < N; j++)
        if (j != i && g->d[j].pid > 0) {
            args[3] = "--bootstrap";
            args[4] = daemon_bootstrap(&g->d[j], boot, sizeof boot);
            args[5] = NULL;
            break;
        }
    return daemon_start(&g->d[i], args);
}

static int member_of(const rig *g, const mk_peer_id *p)
{
    for (int i = 0; i < N; i++)
        if (mk_id_eq(&g->keys[i].pub, p))
            return i;
    return -1;
}

typedef struct ask {
    bool done;
    int status;
    mk_member_status st;
} ask;

static void on_status(int status, const mk_member_status *st, void *data)
{
    ask *a = data;
    a->status = status;
    if (st)
        a->st = *st;
    a->done = true;
}

static bool ask_done(rig *g, void *a)
{
    return ((ask *)a)->done;
}

/* The Almanac's view from a running member: its leader (-1: none) and
 * which members vote. */
static int almanac_view(rig *g, int *leader, bool voter[N])
{
    for (int i = 0; i < N; i++) {
        if (g->d[i].pid <= 0)
            continue;
        ask a = {0};
        if (mk_group_client_status(g->almc, &g->keys[i].pub, false,
                                   (uint32_t)ms(2000), on_status, &a) < 0)
            continue;
        until(g, ask_done, &a, ms(3000));
        if (!a.done || a.status < 0 || !a.st.st.has_leader)
            continue;
        *leader = member_of(g, &a.st.st.leader);
        for (int j = 0; j < N; j++)
            voter[j] = false;
        for (size_t v = 0; v < a.st.st.n_voters && v < N; v++) {
            int m = member_of(g, &a.st.voters[v]);
            if (m >= 0)
                voter[m] = true;
        }
        return 0;
    }
    return -1;
}

typedef struct res {
    bool done;
    int status;
} res;

static void on_res(int status, uint64_t applied, const uint8_t *b, size_t len,
                   void *data)
{
    res *r = data;
    r->status = status;
    r->done = true;
}

static bool res_done(rig *g, void *a)
{
    return ((res *)a)->done;
}

/* Makes member i a voter or a standby, signed by member 0's operator key,
 * retrying until the view says it is done; never asks twice for a change
 * already made, so each lands once. */
static int assign(rig *g, int i, bool voter)
{
    int64_t end = mk_mono_ms() + ms(60000);
    while (mk_mono_ms() < end) {
        int leader = -1;
        bool v[N];
        if (almanac_view(g, &leader, v) < 0 || leader < 0) {
            pump(g, 500);
            continue;
        }
        if (v[i] == voter)
            return 0;
        if (!voter && leader == i) {
            /* Leadership moves off it while it restarts. */
            if (daemon_signal_wait(&g->d[i], SIGTERM, ms(10000)) < 0)
                return -1;
            g->d[i].pid = 0;
            g->restarts++;
            int l2 = i;
            int64_t lend = mk_mono_ms() + ms(20000);
            while ((l2 == i || l2 < 0) && mk_mono_ms() < lend) {
                pump(g, 300);
                if (almanac_view(g, &l2, v) < 0)
                    l2 = -1;
            }
            if (start_member(g, i) < 0)
                return -1;
            pump(g, ms(2000));
            continue;
        }
        res r = {0};
        mk_group_client_via(g->almc, &g->keys[leader].pub);
        if (mk_group_client_assign(g->almc, &g->keys[i].pub, voter,
                                   &g->keys[0], (uint32_t)ms(5000), on_res,
                                   &r) < 0)
            return -1;
        until(g, res_done, &r, ms(8000));
        if (!r.done)
            return -1; /* the callback still points at r */
        if (r.status == 0)
            return 0;
        pump(g, 500);
    }
    return -1;
}

static bool ticked(rig *g, void *a)
{
    return g->ticks >= *(uint64_t *)a;
}

/* ---- the test ------------------------------------------------------------- */

/* The coalition_id and the three modules' GroupIds of the file the
 * members run, which must be those of the compiled-in demo coalition. */
static void ids_now(rig *g, mk_id *coalition, mk_id groups[3])
{
    char err[CO_ERRMSG_SIZE];
    co_config_file *f = NULL;
    if (co_config_file_load(g->coalition, &f, err) < 0)
        fail_msg("%s", err);
    const co_coalition_config *cfg = co_config_file_coalition(f);
    mk_id compiled;
    co_coalition_id(cfg, coalition, NULL);
    co_coalition_id(&DEMO_COALITION, &compiled, NULL);
    assert_true(mk_id_eq(coalition, &compiled));
    for (int m = 0; m < 3; m++) {
        co_module_info info;
        assert_int_equal(co_module_committee_group(cfg, (co_module_kind)m,
                                                   &info, &groups[m], NULL),
                         0);
    }
    co_config_file_free(f);
}

/* Whether member i answers as a member of `group`. */
static bool serves(rig *g, int i, const mk_id *group)
{
    mk_group_client *c;
    if (mk_group_client_open(g->node, group, &c) < 0)
        return false;
    ask a = {0};
    bool ok = false;
    if (mk_group_client_status(c, &g->keys[i].pub, false, (uint32_t)ms(3000),
                               on_status, &a) == 0) {
        until(g, ask_done, &a, ms(5000));
        ok = a.done && a.status == 0 && mk_id_eq(&a.st.self, &g->keys[i].pub);
    }
    mk_group_client_close(c, NULL, NULL);
    if (!a.done) /* the callback would outlive `a` */
        fail_msg("status from m%d never answered", i);
    return ok;
}

static bool chronicle_has_all(rig *g, void *a)
{
    co_chronicle_check c;
    co_chronicle_verify(g->chr, &c);
    return c.ok && c.complete && c.signed_head >= *(uint64_t *)a;
}

static void rotate_three_under_load(void **state)
{
    rig *g = &R;
    const char *src = getenv("SOURCE_DIR");
    snprintf(g->coalition, sizeof g->coalition, "%s/examples/demo.json",
             src ? src : ".");
    assert_non_null(daemon_tmpdir(g->dir, sizeof g->dir));
    const char *hexes[N] = {DEMO_MEMBER_0, DEMO_MEMBER_1, DEMO_MEMBER_2,
                            DEMO_MEMBER_3};
    for (int i = 0; i < N; i++) {
        char seed[64], hex[65];
        mk_id s;
        snprintf(seed, sizeof seed, "coalition.demo/member/%d", i);
        mk_id_from_str(&s, seed);
        mk_keypair_from_seed(&g->keys[i], s.b);
        assert_string_equal(mk_id_hex(&g->keys[i].pub, hex), hexes[i]);
        daemon_proc *d = &g->d[i];
        snprintf(d->name, sizeof d->name, "m%d", i);
        /* A copy: GCC cannot tell g->dir from the daemon's own buffers. */
        char dir[sizeof g->dir];
        memcpy(dir, g->dir, sizeof dir);
        snprintf(d->key, sizeof d->key, "%.400s/m%d.key", dir, i);
        snprintf(d->data, sizeof d->data, "%.400s/m%d.data", dir, i);
        snprintf(d->log, sizeof d->log, "%.400s/m%d.log", dir, i);
        memcpy(d->peer_id, hex, sizeof d->peer_id);
        assert_int_equal(mk_keypair_save(&g->keys[i], d->key, NULL), 0);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(start_member(g, i), 0);

    mk_id coalition0, groups0[3];
    ids_now(g, &coalition0, groups0);
    assert_int_equal(uv_loop_init(&g->loop), 0);
    char err[CO_ERRMSG_SIZE], boot[160];
    const char *boots[1] = {daemon_bootstrap(&g->d[0], boot, sizeof boot)};
    mk_keypair_generate(&g->me);
    mk_node_config nc = {.loop = &g->loop, .key = &g->me, .bootstrap = boots,
                         .n_bootstrap = 1};
    assert_int_equal(mk_node_new(&nc, &g->node, err), 0);
    mk_node_start(g->node);
    assert_int_equal(co_almanac_ticks(g->node, &DEMO_COALITION,
                                      (uint32_t)ms(20000), on_tick, g,
                                      &g->alm, err),
                     0);
    assert_int_equal(co_atlas_read(g->node, &DEMO_COALITION,
                                   (uint32_t)ms(20000), on_atlas, g,
                                   &g->atlas, err),
                     0);
    assert_int_equal(co_chronicle_read(g->node, &DEMO_COALITION,
                                       (uint32_t)ms(20000), on_chronicle, g,
                                       &g->chr, err),
                     0);
    co_module_info info;
    assert_int_equal(co_module_committee_group(&DEMO_COALITION,
                                               CO_MODULE_ALMANAC, &info,
                                               &g->alm_group, NULL),
                     0);
    assert_int_equal(mk_group_client_open(g->node, &g->alm_group, &g->almc),
                     0);

    /* The Almanac ticks, the writes go on. */
    uint64_t want = 3;
    assert_true(until(g, ticked, &want, ms(30000)));
    g->writing = true;
    pump(g, ms(2000));

    /* Three rotations: each original voter out once, not while it leads
     * unless there is no other left; the one out before comes back in. */
    bool rotated[3] = {false, false, false};
    int in = 3;
    int changes[6][2], n_changes = 0; /* {member, voter} in order */
    for (int step = 0; step < 3; step++) {
        int leader = -1;
        bool v[N];
        int64_t end = mk_mono_ms() + ms(20000);
        while (almanac_view(g, &leader, v) < 0 && mk_mono_ms() < end)
            pump(g, 300);
        int out = -1;
        for (int i = 0; i < 3; i++)
            if (!rotated[i] && (out < 0 || leader == out))
                out = i;
        assert_true(out >= 0);
        if (assign(g, out, false) < 0 || assign(g, in, true) < 0)
            fail_msg("rotation %d (out m%d, in m%d) did not complete",
                     step + 1, out, in);
        changes[n_changes][0] = out;
        changes[n_changes++][1] = 0;
        changes[n_changes][0] = in;
        changes[n_changes++][1] = 1;
        rotated[out] = true;
        in = out;
        /* Settled: the Almanac ticks on under its new committee. */
        uint64_t after = g->ticks + 3;
        assert_true(until(g, ticked, &after, ms(30000)));
    }
    int leader = -1;
    bool v[N];
    assert_int_equal(almanac_view(g, &leader, v), 0);
    /* The voters now: all but the last one rotated out. */
    for (int i = 0; i < N; i++)
        assert_int_equal(v[i], i != in);

    /* A last acknowledged write of each kind, then stop writing and let
     * the Chronicle's signatures catch up. */
    uint64_t acked = g->n_acked, card = g->last_card_acked;
    int64_t end = mk_mono_ms() + ms(20000);
    while ((g->n_acked == acked || g->last_card_acked == card) &&
           mk_mono_ms() < end)
        pump(g, 100);
    g->writing = false;
    while ((g->append_busy || g->publish_busy) && mk_mono_ms() < end)
        pump(g, 100);
    assert_true(g->n_acked > acked && g->last_card_acked > card);

    uint64_t need = co_chronicle_count(g->chr);
    if (!until(g, chronicle_has_all, &need, ms(20000))) {
        co_chronicle_check c;
        co_chronicle_verify(g->chr, &c);
        fail_msg("chronicle does not verify: %s", c.why);
    }

    /* Every acknowledged append is in the verified Chronicle, once. */
    size_t n = co_chronicle_count(g->chr);
    for (size_t k = 0; k < g->n_acked; k++) {
        char body[32];
        int len = snprintf(body, sizeof body, "w%llu",
                           (unsigned long long)g->acked[k]);
        int found = 0;
        for (size_t i = 0; i < n; i++) {
            co_chronicle_entry e;
            if (co_chronicle_at(g->chr, i, &e) &&
                strcmp(e.kind, WRITE_KIND) == 0 &&
                e.body_len == (size_t)len && memcmp(e.body, body, len) == 0)
                found++;
        }
        if (found != 1)
            fail_msg("acknowledged append %s found %d times", body, found);
    }
    /* The Chronicle holds the six operator changes, in order, and no
     * other (a skipped or doubled step shows here). */
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        co_chronicle_entry e;
        co_record_committee rec;
        if (!co_chronicle_at(g->chr, i, &e) ||
            strcmp(e.kind, CO_RECORD_COMMITTEE) != 0 ||
            !mk_id_eq(&e.subject, &g->alm_group) ||
            co_record_committee_decode(e.body, e.body_len, &rec) != 0 ||
            !rec.ev.by_operator)
            continue;
        assert_true(seen < 6);
        assert_true(mk_id_eq(&rec.ev.by, &g->keys[0].pub));
        assert_int_equal(member_of(g, &rec.ev.member), changes[seen][0]);
        assert_int_equal(rec.ev.change, changes[seen][1]
                                            ? MK_MEMBER_PROMOTED
                                            : MK_MEMBER_DEMOTED);
        assert_int_equal(mk_group_assign_verify(&g->alm_group, &rec.ev), 0);
        seen++;
    }
    assert_int_equal(seen, n_changes);
    assert_int_equal(seen, 6);

    /* The latest acknowledged card (or a later one) is in the Atlas. */
    mk_id eur;
    co_organism_stable_id(&DEMO_FEED_EUR, &eur, NULL);
    const co_card *c = NULL;
    end = mk_mono_ms() + ms(20000);
    uint64_t held = 0;
    while (mk_mono_ms() < end) {
        if (co_atlas_get(g->atlas, &eur, &c) == 0 &&
            c->card.n_endpoint_hints == 1) {
            const char *colon = strrchr(c->card.endpoint_hints[0], ':');
            held = colon ? strtoull(colon + 1, NULL, 10) - 10000 : 0;
            if (held >= g->last_card_acked)
                break;
        }
        pump(g, 100);
    }
    assert_true(held >= g->last_card_acked);

    /* The clock: no gap, no repeat, across all of it. */
    if (g->gaps || g->repeats)
        fail_msg("ticks %llu..%llu: %llu gaps, %llu repeats",
                 (unsigned long long)g->first_seq,
                 (unsigned long long)g->last_seq,
                 (unsigned long long)g->gaps,
                 (unsigned long long)g->repeats);
    assert_int_equal(g->last_seq - g->first_seq + 1, g->ticks);
    /* The ids: the committee changed, the coalition did not. */
    mk_id coalition1, groups1[3];
    ids_now(g, &coalition1, groups1);
    assert_true(mk_id_eq(&coalition0, &coalition1));
    for (int m = 0; m < 3; m++)
        assert_true(mk_id_eq(&groups0[m], &groups1[m]));
    assert_true(mk_id_eq(&groups0[CO_MODULE_ALMANAC], &g->alm_group));
    /* and every member still answers for the GroupIds it started with
     * (the Almanac's on all four, the others' on the first three). */
    for (int m = 0; m < 3; m++)
        for (int i = 0; i < (m == CO_MODULE_ALMANAC ? N : 3); i++)
            if (!serves(g, i, &groups0[m]))
                fail_msg("m%d does not answer for module %d's group", i, m);
    print_message("rotation: %llu ticks (%llu..%llu), %zu appends and %llu "
                  "cards acknowledged (%llu / %llu not), 6 changes, %d "
                  "leader restarts\n",
                  (unsigned long long)g->ticks,
                  (unsigned long long)g->first_seq,
                  (unsigned long long)g->last_seq, g->n_acked,
                  (unsigned long long)g->last_card_acked,
                  (unsigned long long)g->append_failed,
                  (unsigned long long)g->publish_failed, g->restarts);
}

/* Stops everything; with ROTATION_LOGS set it prints the members' logs. */
static int teardown(void **state)
{
    rig *g = &R;
    bool dump = getenv("ROTATION_LOGS") != NULL;
    for (int i = 0; i < N; i++) {
        daemon_kill(&g->d[i]);
        if (dump)
            daemon_dump_log(&g->d[i]);
    }
    if (g->node) {
        g->writing = false;
        if (g->almc)
            mk_group_client_close(g->almc, NULL, NULL);
        if (g->alm)
            co_almanac_close(g->alm, NULL, NULL);
        if (g->atlas)
            co_atlas_close(g->atlas, NULL, NULL);
        if (g->chr)
            co_chronicle_close(g->chr, NULL, NULL);
        mk_node_close(g->node, NULL, NULL);
        for (int k = 0; k < 200; k++)
            uv_run(&g->loop, UV_RUN_NOWAIT);
        uv_run(&g->loop, UV_RUN_DEFAULT);
        uv_loop_close(&g->loop);
    }
    if (g->dir[0])
        daemon_rmtree(g->dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(rotate_three_under_load, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
