/* Collections on the real group layer, in one process: two nodes on
 * loopback (real TLS links, libraft with its disk log in a temporary
 * directory), a writer that is the group's one voter (mk_group with one
 * of our machines), and late readers (mk_replica on the other node, with
 * a fresh machine of the same kind) that must catch up through the
 * member's commit feed: a snapshot, then every committed command.
 *
 * Scenarios (mosaik.md §11.6): a late reader after many items, writes
 * while it syncs, a big extend right after it subscribed, clear and
 * repopulate after convergence; plus outcomes (CAS) through
 * mk_group_execute and strong reads through mk_group_query.
 *
 * Waits scale with TIME_FACTOR; nothing asserts on speed. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <uv.h>

#include "coll_util.h"
#include "mosaik/clock.h"
#include "mosaik/group.h"
#include "mosaik/key.h"
#include "mosaik/node.h"

enum { K_MAP, K_VEC, K_PQ };
static const char *const kind_names[] = {"map", "vec", "pq"};

typedef struct machine {
    int kind;
    void *obj;
    struct mk_fsm *f;
} machine;

static machine machine_new(int kind)
{
    mk_coll_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mk_id_from_str(&cfg.store, "live-store");
    machine m = {.kind = kind};
    switch (kind) {
    case K_MAP:
        assert_int_equal(mk_map_new(&cfg, (mk_map **)&m.obj), 0);
        m.f = mk_map_fsm(m.obj);
        break;
    case K_VEC:
        assert_int_equal(mk_vec_new(&cfg, (mk_vec **)&m.obj), 0);
        m.f = mk_vec_fsm(m.obj);
        break;
    default:
        assert_int_equal(mk_pq_new(&cfg, (mk_pq **)&m.obj), 0);
        m.f = mk_pq_fsm(m.obj);
    }
    return m;
}

static void machine_free(machine *m)
{
    switch (m->kind) {
    case K_MAP:
        mk_map_free(m->obj);
        break;
    case K_VEC:
        mk_vec_free(m->obj);
        break;
    default:
        mk_pq_free(m->obj);
    }
}

static size_t machine_len(const machine *m)
{
    switch (m->kind) {
    case K_MAP:
        return mk_map_len(m->obj);
    case K_VEC:
        return mk_vec_len(m->obj);
    default:
        return mk_pq_len(m->obj);
    }
}

typedef struct live {
    uv_loop_t loop;
    uv_timer_t pulse; /* keeps UV_RUN_ONCE from blocking for long */
    double tf;
    char dir[256];
    mk_keypair ka, kb;
    mk_node *a, *b;
    machine w; /* the writer's machine */
    mk_group *g;
    /* Commands in flight and what they answered. */
    size_t pending;
    int failures;
    uint64_t last_changed;
} live;

static int ms(const live *l, int base)
{
    return (int)(base * l->tf);
}

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static void spin(live *l, int for_ms)
{
    tu_spin(&l->loop, for_ms);
}

static bool wait_until(live *l, bool (*pred)(live *, void *), void *arg,
                       int timeout_ms)
{
    int64_t end = mk_mono_ms() + timeout_ms;
    while (mk_mono_ms() < end) {
        if (pred(l, arg))
            return true;
        spin(l, 10);
    }
    return pred(l, arg);
}

static bool group_online(live *l, void *arg)
{
    (void)arg;
    mk_group_status st;
    mk_group_status_get(l->g, &st);
    return st.online && st.is_leader;
}

static void live_open(live *l, int kind)
{
    memset(l, 0, sizeof *l);
    const char *tf = getenv("TIME_FACTOR");
    l->tf = tf ? atof(tf) : 1.0;
    if (l->tf < 1.0)
        l->tf = 1.0;
    snprintf(l->dir, sizeof l->dir, "/tmp/mk-coll-live-XXXXXX");
    assert_non_null(mkdtemp(l->dir));
    assert_int_equal(uv_loop_init(&l->loop), 0);
    uv_timer_init(&l->loop, &l->pulse);
    uv_timer_start(&l->pulse, on_pulse, 5, 5);
    assert_int_equal(mk_keypair_generate(&l->ka), 0);
    assert_int_equal(mk_keypair_generate(&l->kb), 0);

    char err[MK_ERRMSG_SIZE];
    mk_node_config na = {.loop = &l->loop, .key = &l->ka,
                         .listen = "127.0.0.1:0"};
    assert_int_equal(mk_node_new(&na, &l->a, err), 0);
    assert_int_equal(mk_node_start(l->a), 0);
    char boot[256], hex[MK_ID_HEX_LEN + 1];
    snprintf(boot, sizeof boot, "%s@%s", mk_id_hex(&l->ka.pub, hex),
             mk_node_addr(l->a));
    const char *bp[1] = {boot};
    mk_node_config nb = {.loop = &l->loop, .key = &l->kb,
                         .bootstrap = bp, .n_bootstrap = 1};
    assert_int_equal(mk_node_new(&nb, &l->b, err), 0);
    assert_int_equal(mk_node_start(l->b), 0);

    l->w = machine_new(kind);
    char data[300];
    snprintf(data, sizeof data, "%s/writer", l->dir);
    mk_group_config gc = {
        .node = l->a,
        .fsm = l->w.f,
        .voters = &l->ka.pub,
        .n_voters = 1,
        .data_dir = data,
        /* Short timers and frequent snapshots: the log is compacted well
         * before any reader arrives. */
        .params = {.election_timeout_ms = 300, .heartbeat_ms = 30,
                   .snapshot_threshold = 64},
    };
    mk_id_from_str(&gc.root, "live-root");
    if (mk_group_open(&gc, &l->g, err) != 0)
        fail_msg("mk_group_open: %s", err);
    if (!wait_until(l, group_online, NULL, ms(l, 15000)))
        fail_msg("the writer never led its group");
}

static void live_close(live *l)
{
    mk_group_close(l->g, NULL, NULL);
    mk_node_close(l->a, NULL, NULL);
    mk_node_close(l->b, NULL, NULL);
    spin(l, 700); /* departure windows */
    uv_close((uv_handle_t *)&l->pulse, NULL);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&l->loop), 0);
    machine_free(&l->w);
    tu_rm_tree(l->dir);
}

/* ---- writing ------------------------------------------------------------- */

static void on_result(int status, uint64_t applied, const uint8_t *res,
                      size_t len, void *data)
{
    live *l = data;
    (void)applied;
    l->pending--;
    mk_coll_outcome o;
    if (status != 0 || mk_coll_outcome_decode(res, len, &o) != 0) {
        l->failures++;
        return;
    }
    l->last_changed = o.changed;
}

static bool drained(live *l, void *arg)
{
    (void)arg;
    return l->pending == 0;
}

/* Submits the command in `cmd` (and resets it); waits for the window to
 * drain every 128 commands so the group's in-flight bound is respected. */
static void exec(live *l, mk_buf *cmd)
{
    assert_int_equal(cmd->err, 0);
    if (l->pending >= 128 &&
        !wait_until(l, drained, NULL, ms(l, 30000)))
        fail_msg("commands did not complete");
    int rc = mk_group_execute(l->g, cmd->data, cmd->len, (uint32_t)ms(l, 20000),
                              on_result, l);
    assert_int_equal(rc, 0);
    l->pending++;
    mk_buf_reset(cmd);
}

static void exec_wait(live *l)
{
    if (!wait_until(l, drained, NULL, ms(l, 30000)))
        fail_msg("commands did not complete");
    assert_int_equal(l->failures, 0);
}

static void put_one(const live *l, mk_buf *cmd, uint32_t i, uint32_t gen)
{
    uint8_t k[4], p[4], v[8];
    cu_be32(k, i * 2654435761u);
    cu_be32(p, i % 13);
    cu_be32(v, i);
    cu_be32(v + 4, gen);
    switch (l->w.kind) {
    case K_MAP:
        mk_map_cmd_insert(cmd, k, 4, v, 8);
        break;
    case K_VEC:
        mk_vec_cmd_push_back(cmd, v, 8);
        break;
    default:
        mk_pq_cmd_insert(cmd, p, 4, k, 4, v, 8);
    }
}

static void put_many(const live *l, mk_buf *cmd, uint32_t from, uint32_t n)
{
    uint8_t *bytes = malloc((size_t)n * 16);
    mk_coll_item *items = malloc((size_t)n * sizeof *items);
    for (uint32_t j = 0; j < n; j++) {
        uint8_t *k = bytes + 16 * j, *p = k + 4, *v = k + 8;
        cu_be32(k, (from + j) * 2654435761u);
        cu_be32(p, (from + j) % 13);
        cu_be32(v, from + j);
        cu_be32(v + 4, 0);
        items[j] = (mk_coll_item){p, 4, k, 4, v, 8};
    }
    switch (l->w.kind) {
    case K_MAP:
        mk_map_cmd_extend(cmd, items, n);
        break;
    case K_VEC:
        mk_vec_cmd_extend(cmd, items, n);
        break;
    default:
        mk_pq_cmd_extend(cmd, items, n);
    }
    free(bytes);
    free(items);
}

static void clear_cmd(const live *l, mk_buf *cmd)
{
    switch (l->w.kind) {
    case K_MAP:
        mk_map_cmd_clear(cmd);
        break;
    case K_VEC:
        mk_vec_cmd_clear(cmd);
        break;
    default:
        mk_pq_cmd_clear(cmd);
    }
}

/* ---- reading ------------------------------------------------------------- */

typedef struct reader {
    machine m;
    mk_replica *r;
    unsigned restores; /* applied counts that jumped (a snapshot) */
    uint64_t seen;
} reader;

static void on_replica(mk_replica *r, void *data)
{
    reader *rd = data;
    uint64_t a = mk_replica_applied(r);
    if (a > rd->seen + 1)
        rd->restores++;
    rd->seen = a;
}

static void reader_open(live *l, reader *rd)
{
    memset(rd, 0, sizeof *rd);
    rd->m = machine_new(l->w.kind);
    mk_replica_config rc = {.node = l->b, .group = *mk_group_id(l->g),
                            .fsm = rd->m.f};
    assert_int_equal(mk_replica_open(&rc, &rd->r), 0);
    assert_int_equal(mk_replica_watch(rd->r, on_replica, rd), 0);
}

static void reader_close(live *l, reader *rd)
{
    mk_replica_close(rd->r, NULL, NULL);
    spin(l, 50);
    machine_free(&rd->m);
}

typedef struct caught {
    reader *rd;
    uint64_t applied;
} caught;

static bool caught_up(live *l, void *arg)
{
    (void)l;
    const caught *c = arg;
    return mk_replica_applied(c->rd->r) >= c->applied;
}

/* Waits until the reader applied what the writer has, then compares
 * snapshots byte for byte. */
static void converge(live *l, reader *rd)
{
    mk_group_status st;
    mk_group_status_get(l->g, &st);
    caught c = {rd, st.applied};
    if (!wait_until(l, caught_up, &c, ms(l, 30000)))
        fail_msg("%s reader stuck at %llu of %llu", kind_names[l->w.kind],
                 (unsigned long long)mk_replica_applied(rd->r),
                 (unsigned long long)st.applied);
    assert_int_equal(mk_replica_applied(rd->r), st.applied);
    cu_assert_same(l->w.f, rd->m.f);
}

/* ---- scenarios ------------------------------------------------------------ */

static void live_sync(void **state)
{
    for (int k = K_MAP; k <= K_PQ; k++) {
        live l;
        live_open(&l, k);
        mk_buf cmd;
        mk_buf_init(&cmd);
        /* Many items, one command each and one big extend. For the map,
         * more commands than the member's feed keeps (8192), so the late
         * reader must start from a snapshot; the others replay the feed. */
        uint32_t each = k == K_MAP ? 8400 : 600;
        for (uint32_t i = 0; i < each; i++) {
            put_one(&l, &cmd, i, 0);
            exec(&l, &cmd);
        }
        put_many(&l, &cmd, 1000, 10000);
        exec(&l, &cmd);
        exec_wait(&l);

        /* A late reader gets it all. */
        reader r1;
        reader_open(&l, &r1);
        converge(&l, &r1);
        if (k == K_MAP)
            assert_true(r1.restores >= 1);

        /* Writes while a second late reader syncs, and a big extend right
         * after it subscribed. */
        reader r2;
        reader_open(&l, &r2);
        for (uint32_t i = 0; i < 300; i++) {
            put_one(&l, &cmd, 20000 + i, 1);
            exec(&l, &cmd);
        }
        put_many(&l, &cmd, 30000, 5000);
        exec(&l, &cmd);
        exec_wait(&l);
        converge(&l, &r1); /* followed along command by command */
        converge(&l, &r2);

        /* Clear and repopulate after convergence. */
        clear_cmd(&l, &cmd);
        exec(&l, &cmd);
        exec_wait(&l);
        converge(&l, &r1);
        for (uint32_t i = 0; i < 100; i++) {
            put_one(&l, &cmd, 90000 + i, 2);
            exec(&l, &cmd);
        }
        exec_wait(&l);
        converge(&l, &r1);
        converge(&l, &r2);
        mk_group_status st;
        mk_group_status_get(l.g, &st);
        print_message("%s: %llu commands applied, %zu items; late readers "
                      "jumped by snapshot %u and %u times\n",
                      kind_names[k], (unsigned long long)st.applied,
                      machine_len(&l.w), r1.restores, r2.restores);
        reader_close(&l, &r1);
        reader_close(&l, &r2);
        mk_buf_free(&cmd);
        live_close(&l);
    }
}

typedef struct qwait {
    bool done;
    int status;
    mk_buf reply;
} qwait;

static void on_query(int status, uint64_t applied, const uint8_t *res,
                     size_t len, void *data)
{
    qwait *q = data;
    (void)applied;
    q->done = true;
    q->status = status;
    mk_buf_reset(&q->reply);
    mk_put_raw(&q->reply, res, len);
}

static bool query_done(live *l, void *arg)
{
    (void)l;
    return ((const qwait *)arg)->done;
}

static void query(live *l, mk_buf *q, qwait *w)
{
    w->done = false;
    assert_int_equal(mk_group_query(l->g, q->data, q->len, MK_STRONG,
                                    (uint32_t)ms(l, 10000), on_query, w),
                     0);
    mk_buf_reset(q);
    assert_true(wait_until(l, query_done, w, ms(l, 15000)));
    assert_int_equal(w->status, 0);
}

static int count_items(const mk_coll_item *it, void *data)
{
    (void)it;
    (*(size_t *)data)++;
    return 0;
}

static void live_cas_and_queries(void **state)
{
    live l;
    live_open(&l, K_MAP);
    mk_buf cmd;
    mk_buf_init(&cmd);
    mk_coll_bytes v1 = {"1", 1}, v2 = {"2", 1};
    /* The submitter learns whether each CAS took effect. */
    mk_map_cmd_cas(&cmd, S("k"), NULL, &v1);
    exec(&l, &cmd);
    exec_wait(&l);
    assert_int_equal(l.last_changed, 1);
    mk_map_cmd_cas(&cmd, S("k"), &v2, &v1);
    exec(&l, &cmd);
    exec_wait(&l);
    assert_int_equal(l.last_changed, 0);
    mk_map_cmd_cas(&cmd, S("k"), &v1, &v2);
    exec(&l, &cmd);
    exec_wait(&l);
    assert_int_equal(l.last_changed, 1);
    put_many(&l, &cmd, 0, 50);
    exec(&l, &cmd);
    exec_wait(&l);

    /* Strong reads. */
    qwait w;
    mk_buf_init(&w.reply);
    bool found, more;
    mk_coll_item it;
    uint64_t n;
    mk_map_query_get(&cmd, S("k"));
    query(&l, &cmd, &w);
    assert_int_equal(mk_coll_reply_item(w.reply.data, w.reply.len, &found,
                                        &it),
                     0);
    assert_true(found);
    cu_assert_bytes(it.val, it.val_len, "2");
    mk_map_query_len(&cmd);
    query(&l, &cmd, &w);
    assert_int_equal(mk_coll_reply_len(w.reply.data, w.reply.len, &n), 0);
    assert_int_equal(n, 51);
    size_t seen = 0;
    mk_map_query_page(&cmd, NULL, 0);
    query(&l, &cmd, &w);
    assert_int_equal(mk_coll_reply_page(w.reply.data, w.reply.len,
                                        count_items, &seen, &more),
                     0);
    assert_int_equal(seen, 51);
    assert_false(more);
    /* A malformed query is refused, not answered. */
    w.done = false;
    assert_int_equal(mk_group_query(l.g, "\x91", 1, MK_STRONG,
                                    (uint32_t)ms(&l, 10000), on_query, &w),
                     0);
    assert_true(wait_until(&l, query_done, &w, ms(&l, 15000)));
    assert_int_equal(w.status, MK_EDECODE);
    mk_buf_free(&w.reply);
    mk_buf_free(&cmd);
    live_close(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(live_cas_and_queries),
        cmocka_unit_test(live_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
