/* Collections under consensus, deterministically: libraft's in-memory
 * cluster fixture (raft/fixture.h) with each server's state machine being
 * the group layer's exactly-once adapter (group_fsm.h) around one of our
 * collections, exactly as mk_group runs them, on simulated time.
 *
 * The scenarios are the snapshot-sync ones of mosaik.md §11.6: a writer
 * (the one voter) and a reader (a standby: it replicates and applies but
 * never votes, like a mosaik observer) are populated, then a late reader
 * joins after the log was compacted and must be brought up by a snapshot
 * (InstallSnapshot -> our restore()):
 *   frozen                a snapshot of many items, nothing moving
 *   writes_during_sync    the writer keeps writing while it catches up
 *   extend_during_sync    a big multi-item command lands right after the
 *                         snapshot anchor
 *   clear_and_repopulate  a destructive change after convergence
 * Every replica must end with identical snapshot bytes, and the late one
 * must really have restored (not replayed the whole log). Outcomes (a CAS
 * that does or does not take effect) reach the submitter through the
 * adapter. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>

#include "coll_util.h"
#include "mosaik/group_fsm.h"

#define MAX_SERVERS 4
/* Small thresholds so a few hundred commands already compact the log. */
#define SNAP_THRESHOLD 64
#define SNAP_TRAILING 16

enum { K_MAP, K_SET, K_VEC, K_PQ };
static const char *const kind_names[] = {"map", "set", "vec", "pq"};

typedef struct server {
    int kind;
    void *obj;
    struct mk_fsm *user;
    mk__gfsm gfsm;
    unsigned restores;    /* snapshots installed */
    uint64_t last_changed; /* outcome of the last command applied */
} server;

typedef struct cluster {
    struct raft_fixture f;
    server s[MAX_SERVERS];
    unsigned n;
    int kind;
    uint8_t session[MK__SESSION_LEN];
    uint64_t seq;
    raft_index last; /* log index of the last proposal */
} cluster;

static void on_applied(void *data, const mk__apply_event *ev)
{
    server *s = data;
    if (ev->kind != MK__APPLY_NEW && ev->kind != MK__APPLY_DUP)
        fail_msg("%s: command %llu applied as kind %d", kind_names[s->kind],
                 (unsigned long long)ev->seq, (int)ev->kind);
    mk_coll_outcome o;
    assert_int_equal(mk_coll_outcome_decode(ev->result, ev->result_len, &o),
                     0);
    s->last_changed = o.changed;
}

static void on_restored(void *data)
{
    server *s = data;
    s->restores++;
}

static void server_init(server *s, int kind)
{
    mk_coll_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mk_id_from_str(&cfg.store, "group-test");
    memset(s, 0, sizeof *s);
    s->kind = kind;
    switch (kind) {
    case K_MAP:
        assert_int_equal(mk_map_new(&cfg, (mk_map **)&s->obj), 0);
        s->user = mk_map_fsm(s->obj);
        break;
    case K_SET:
        assert_int_equal(mk_set_new(&cfg, (mk_set **)&s->obj), 0);
        s->user = mk_set_fsm(s->obj);
        break;
    case K_VEC:
        assert_int_equal(mk_vec_new(&cfg, (mk_vec **)&s->obj), 0);
        s->user = mk_vec_fsm(s->obj);
        break;
    default:
        assert_int_equal(mk_pq_new(&cfg, (mk_pq **)&s->obj), 0);
        s->user = mk_pq_fsm(s->obj);
    }
    mk__gfsm_hooks hooks = {on_applied, on_restored, s, NULL};
    mk__gfsm_init(&s->gfsm, s->user, &hooks);
}

static void server_free(server *s)
{
    mk__gfsm_free(&s->gfsm);
    switch (s->kind) {
    case K_MAP:
        mk_map_free(s->obj);
        break;
    case K_SET:
        mk_set_free(s->obj);
        break;
    case K_VEC:
        mk_vec_free(s->obj);
        break;
    default:
        mk_pq_free(s->obj);
    }
}

static void tune(struct raft *r)
{
    raft_set_snapshot_threshold(r, SNAP_THRESHOLD);
    raft_set_snapshot_trailing(r, SNAP_TRAILING);
}

/* Server 0 votes (the writer), server 1 is a standby (a reader). */
static cluster *cluster_new(int kind)
{
    cluster *c = calloc(1, sizeof *c);
    c->kind = kind;
    memset(c->session, 0x5a, sizeof c->session);
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < 2; i++) {
        server_init(&c->s[i], kind);
        assert_int_equal(raft_fixture_grow(&c->f, &c->s[i].gfsm.raft), 0);
        tune(raft_fixture_get(&c->f, i));
    }
    c->n = 2;
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    struct raft *r0 = raft_fixture_get(&c->f, 0);
    struct raft *r1 = raft_fixture_get(&c->f, 1);
    assert_int_equal(raft_configuration_add(&conf, r0->id, r0->address,
                                            RAFT_VOTER),
                     0);
    assert_int_equal(raft_configuration_add(&conf, r1->id, r1->address,
                                            RAFT_STANDBY),
                     0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&c->f), 0);
    assert_true(raft_fixture_step_until_has_leader(&c->f, 10000));
    assert_int_equal(raft_fixture_leader_index(&c->f), 0);
    return c;
}

static void cluster_free(cluster *c)
{
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < c->n; i++)
        server_free(&c->s[i]);
    free(c);
}

static void on_apply_done(struct raft_apply *req, int status, void *result)
{
    (void)status;
    (void)result;
    free(req);
}

/* Proposes the command in `cmd` (then resets it) on the leader, wrapped in
 * the group layer's envelope exactly as mk_group_execute sends it. */
static void propose(cluster *c, mk_buf *cmd)
{
    assert_int_equal(cmd->err, 0);
    mk__envelope e;
    memcpy(e.session, c->session, sizeof e.session);
    e.seq = ++c->seq;
    e.ack = e.seq - 1;
    e.cmd = cmd->data;
    e.len = cmd->len;
    struct raft_buffer buf;
    buf.len = mk__env_size(cmd->len);
    buf.base = raft_malloc(buf.len);
    assert_non_null(buf.base);
    mk__env_write(buf.base, &e);
    struct raft_apply *req = malloc(sizeof *req);
    struct raft *leader =
        raft_fixture_get(&c->f, raft_fixture_leader_index(&c->f));
    assert_int_equal(raft_apply(leader, req, &buf, 1, on_apply_done), 0);
    c->last = req->index;
    mk_buf_reset(cmd);
}

/* Steps until every server applied everything proposed. */
static void settle(cluster *c)
{
    if (!raft_fixture_step_until_applied(&c->f, c->n, c->last, 60000))
        fail_msg("%s: the cluster did not apply index %llu",
                 kind_names[c->kind], (unsigned long long)c->last);
}

/* Item i of a deterministic stream: scrambled keys, repeating priorities;
 * `gen` makes rewrites of the same keys carry different values. */
static void put_one(cluster *c, mk_buf *cmd, uint32_t i, uint32_t gen)
{
    uint8_t k[4], p[4], v[8];
    cu_be32(k, i * 2654435761u);
    cu_be32(p, i % 13);
    cu_be32(v, i);
    cu_be32(v + 4, gen);
    switch (c->kind) {
    case K_MAP:
        mk_map_cmd_insert(cmd, k, 4, v, 8);
        break;
    case K_SET:
        mk_set_cmd_insert(cmd, k, 4);
        break;
    case K_VEC:
        mk_vec_cmd_push_back(cmd, v, 8);
        break;
    default:
        mk_pq_cmd_insert(cmd, p, 4, k, 4, v, 8);
    }
}

/* Commands that change nothing (a missing key, an index out of range),
 * enough of them to make every server compact its log. */
static void pad(cluster *c, mk_buf *cmd)
{
    for (uint32_t i = 0; i < 2 * SNAP_THRESHOLD; i++) {
        switch (c->kind) {
        case K_MAP:
            mk_map_cmd_remove(cmd, S("absent"));
            break;
        case K_SET:
            mk_set_cmd_remove(cmd, S("absent"));
            break;
        case K_VEC:
            mk_vec_cmd_swap(cmd, UINT64_MAX, 0);
            break;
        default:
            mk_pq_cmd_update_value(cmd, S("absent"), S("v"));
        }
        propose(c, cmd);
    }
}

/* One command holding items [from, from + n). */
static void put_many(cluster *c, mk_buf *cmd, uint32_t from, uint32_t n,
                     uint32_t gen)
{
    uint8_t *bytes = malloc((size_t)n * 16);
    mk_coll_item *items = malloc((size_t)n * sizeof *items);
    for (uint32_t j = 0; j < n; j++) {
        uint8_t *k = bytes + 16 * j, *p = k + 4, *v = k + 8;
        uint32_t i = from + j;
        cu_be32(k, i * 2654435761u);
        cu_be32(p, i % 13);
        cu_be32(v, i);
        cu_be32(v + 4, gen);
        items[j] = (mk_coll_item){p, 4, k, 4, v, 8};
    }
    switch (c->kind) {
    case K_MAP:
        mk_map_cmd_extend(cmd, items, n);
        break;
    case K_SET:
        mk_set_cmd_extend(cmd, items, n);
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

static void on_change(struct raft_change *req, int status)
{
    *(int *)req->data = status == 0 ? 1 : -1;
}

static bool change_done(struct raft_fixture *f, void *arg)
{
    (void)f;
    return *(int *)arg != 0;
}

/* Starts a pristine server and makes it a standby (a late reader). */
static unsigned add_reader(cluster *c)
{
    unsigned i = c->n;
    server_init(&c->s[i], c->kind);
    assert_int_equal(raft_fixture_grow(&c->f, &c->s[i].gfsm.raft), 0);
    c->n++;
    struct raft *r = raft_fixture_get(&c->f, i);
    tune(r);
    assert_int_equal(raft_start(r), 0);
    struct raft *leader = raft_fixture_get(&c->f, 0);
    struct raft_change req;
    int done = 0;
    req.data = &done;
    assert_int_equal(raft_add(leader, &req, r->id, r->address, on_change), 0);
    assert_true(raft_fixture_step_until(&c->f, change_done, &done, 10000));
    assert_int_equal(done, 1);
    done = 0;
    assert_int_equal(
        raft_assign(leader, &req, r->id, RAFT_STANDBY, on_change), 0);
    assert_true(raft_fixture_step_until(&c->f, change_done, &done, 10000));
    assert_int_equal(done, 1);
    return i;
}

static size_t user_len(const server *s)
{
    switch (s->kind) {
    case K_MAP:
        return mk_map_len(s->obj);
    case K_SET:
        return mk_set_len(s->obj);
    case K_VEC:
        return mk_vec_len(s->obj);
    default:
        return mk_pq_len(s->obj);
    }
}

/* Every server holds the same state (and the same adapter state: the
 * applied count and the session table ride in the same snapshot). */
static void assert_converged(cluster *c, size_t want_len)
{
    mk_buf a, b;
    mk_buf_init(&a);
    mk_buf_init(&b);
    assert_int_equal(mk__gfsm_snapshot(&c->s[0].gfsm, &a), 0);
    for (unsigned i = 0; i < c->n; i++) {
        assert_int_equal(user_len(&c->s[i]), want_len);
        cu_assert_same(c->s[0].user, c->s[i].user);
        mk_buf_reset(&b);
        assert_int_equal(mk__gfsm_snapshot(&c->s[i].gfsm, &b), 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        assert_int_equal(c->s[i].gfsm.applied, c->seq);
    }
    mk_buf_free(&a);
    mk_buf_free(&b);
}

/* ---- scenarios ------------------------------------------------------------ */

/* mosaik's frozen[(size, oneshot)]: `n` items, one command each or one
 * extend; then a late reader. */
static void frozen(int kind, uint32_t n, bool oneshot)
{
    cluster *c = cluster_new(kind);
    mk_buf cmd;
    mk_buf_init(&cmd);
    if (oneshot) {
        put_many(c, &cmd, 0, n, 0);
        propose(c, &cmd);
        /* Push the extend behind a snapshot: compaction needs entries. */
        for (uint32_t i = 0; i < 2 * SNAP_THRESHOLD; i++) {
            put_one(c, &cmd, i, 1); /* overwrites (appends for the vec) */
            propose(c, &cmd);
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            put_one(c, &cmd, i, 0);
            propose(c, &cmd);
            if (i % 128 == 127)
                settle(c);
        }
    }
    pad(c, &cmd);
    settle(c);
    size_t len = user_len(&c->s[0]);
    assert_true(len >= n);
    unsigned late = add_reader(c);
    settle(c);
    assert_true(c->s[late].restores >= 1); /* caught up by a snapshot */
    assert_int_equal(c->s[1].restores, 0); /* the early reader replayed */
    assert_converged(c, len);
    mk_buf_free(&cmd);
    cluster_free(c);
}

static void group_frozen(void **state)
{
    for (int k = K_MAP; k <= K_PQ; k++) {
        frozen(k, 1, false);
        frozen(k, 300, false);
        frozen(k, 2000, false);
        frozen(k, 10000, true);
    }
}

/* The writer keeps writing while the late reader is brought up. */
static void group_writes_during_sync(void **state)
{
    for (int k = K_MAP; k <= K_PQ; k++) {
        cluster *c = cluster_new(k);
        mk_buf cmd;
        mk_buf_init(&cmd);
        put_many(c, &cmd, 0, 5000, 0);
        propose(c, &cmd);
        for (uint32_t i = 0; i < 200; i++) {
            put_one(c, &cmd, 5000 + i, 0);
            propose(c, &cmd);
        }
        settle(c);
        /* Start the late reader but do not wait for it: interleave new
         * commands with a few steps of the cluster each. */
        unsigned late = add_reader(c);
        for (uint32_t i = 0; i < 400; i++) {
            put_one(c, &cmd, 10000 + i, 0);
            propose(c, &cmd);
            for (int s = 0; s < 3; s++)
                raft_fixture_step(&c->f);
        }
        settle(c);
        assert_true(c->s[late].restores >= 1);
        assert_converged(c, user_len(&c->s[0]));
        assert_true(user_len(&c->s[0]) >= 5600);
        mk_buf_free(&cmd);
        cluster_free(c);
    }
}

/* A multi-item command right after the snapshot anchor: the handover
 * from snapshot to log must neither lose nor repeat it. */
static void group_extend_during_sync(void **state)
{
    for (int k = K_MAP; k <= K_PQ; k++) {
        cluster *c = cluster_new(k);
        mk_buf cmd;
        mk_buf_init(&cmd);
        for (uint32_t i = 0; i < 1000; i++) {
            put_one(c, &cmd, i, 0);
            propose(c, &cmd);
            if (i % 128 == 127)
                settle(c);
        }
        settle(c);
        unsigned late = add_reader(c);
        put_many(c, &cmd, 1000, 5000, 0);
        propose(c, &cmd);
        put_many(c, &cmd, 500, 1000, 7); /* overlaps the first batch */
        propose(c, &cmd);
        settle(c);
        assert_true(c->s[late].restores >= 1);
        size_t want = k == K_VEC ? 7000 : 6000;
        assert_converged(c, want);
        mk_buf_free(&cmd);
        cluster_free(c);
    }
}

/* After convergence, clear everything and write a different state. */
static void group_clear_and_repopulate(void **state)
{
    for (int k = K_MAP; k <= K_PQ; k++) {
        cluster *c = cluster_new(k);
        mk_buf cmd;
        mk_buf_init(&cmd);
        put_many(c, &cmd, 0, 3000, 0);
        propose(c, &cmd);
        for (uint32_t i = 0; i < 2 * SNAP_THRESHOLD; i++) {
            put_one(c, &cmd, i, 1);
            propose(c, &cmd);
        }
        settle(c);
        add_reader(c);
        settle(c);
        assert_converged(c, user_len(&c->s[0]));
        switch (k) {
        case K_MAP:
            mk_map_cmd_clear(&cmd);
            break;
        case K_SET:
            mk_set_cmd_clear(&cmd);
            break;
        case K_VEC:
            mk_vec_cmd_clear(&cmd);
            break;
        default:
            mk_pq_cmd_clear(&cmd);
        }
        propose(c, &cmd);
        settle(c);
        assert_converged(c, 0);
        for (uint32_t i = 0; i < 100; i++) {
            put_one(c, &cmd, 90000 + i, 2);
            propose(c, &cmd);
        }
        settle(c);
        assert_converged(c, 100);
        mk_buf_free(&cmd);
        cluster_free(c);
    }
}

/* A CAS's outcome reaches every replica's adapter (and so the submitter)
 * as applied, whether or not it took effect. */
static void group_cas_outcomes(void **state)
{
    cluster *c = cluster_new(K_MAP);
    mk_buf cmd;
    mk_buf_init(&cmd);
    mk_coll_bytes v1 = {"1", 1}, v2 = {"2", 1};
    mk_map_cmd_cas(&cmd, S("k"), NULL, &v1);
    propose(c, &cmd);
    settle(c);
    for (unsigned i = 0; i < c->n; i++)
        assert_int_equal(c->s[i].last_changed, 1);
    mk_map_cmd_cas(&cmd, S("k"), &v2, &v1); /* mismatch */
    propose(c, &cmd);
    settle(c);
    for (unsigned i = 0; i < c->n; i++)
        assert_int_equal(c->s[i].last_changed, 0);
    mk_map_cmd_cas(&cmd, S("k"), &v1, &v2);
    propose(c, &cmd);
    settle(c);
    for (unsigned i = 0; i < c->n; i++) {
        mk_coll_item it;
        assert_int_equal(c->s[i].last_changed, 1);
        assert_true(mk_map_get(c->s[i].obj, S("k"), &it));
        cu_assert_bytes(it.val, it.val_len, "2");
    }
    assert_converged(c, 1);
    mk_buf_free(&cmd);
    cluster_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(group_cas_outcomes),
        cmocka_unit_test(group_frozen),
        cmocka_unit_test(group_writes_during_sync),
        cmocka_unit_test(group_extend_during_sync),
        cmocka_unit_test(group_clear_and_repopulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
