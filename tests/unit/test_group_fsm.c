/* The group log envelope, the exactly-once adapter and the test machines;
 * then the adapter inside libraft's deterministic in-memory cluster
 * (raft/fixture.h): replication, duplicates, snapshots and their install. */
#include <raft.h>
#include <pthread.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mosaik/error.h"
#include "mosaik/jwt.h"
#include "mosaik/testing/fsm_test.h"
#include "mosaik/group_fsm.h"
#include "mosaik/group_internal.h"
#include "mosaik/group_prepare.h"
#include "testutil.h"

/* ---- helpers --------------------------------------------------------------- */

typedef struct recorder {
    mk__apply_kind kinds[256];
    int status[256];
    uint64_t applied[256];
    char results[256][64];
    size_t n;
    int restored;
} recorder;

static void rec_applied(void *data, const mk__apply_event *ev)
{
    recorder *r = data;
    if (r->n == 256)
        return;
    r->kinds[r->n] = ev->kind;
    r->status[r->n] = ev->status;
    r->applied[r->n] = ev->applied;
    size_t l = ev->result_len < 63 ? ev->result_len : 63;
    if (l)
        memcpy(r->results[r->n], ev->result, l);
    r->results[r->n][l] = '\0';
    r->n++;
}

static void rec_restored(void *data)
{
    ((recorder *)data)->restored++;
}

static void session_of(uint8_t s[MK__SESSION_LEN], uint8_t b)
{
    memset(s, b, MK__SESSION_LEN);
}

/* An envelope in malloc'd (raft_malloc'd) memory. */
static void *env(const uint8_t *session, uint64_t seq, uint64_t ack,
                 const char *cmd, size_t *len)
{
    mk__envelope e = {.seq = seq, .ack = ack, .cmd = (const uint8_t *)cmd,
                      .len = strlen(cmd)};
    memcpy(e.session, session, MK__SESSION_LEN);
    *len = mk__env_size(e.len);
    void *p = raft_malloc(*len);
    assert_non_null(p);
    mk__env_write(p, &e);
    return p;
}

static void apply_env(mk__gfsm *a, const uint8_t *session, uint64_t seq,
                      uint64_t ack, const char *cmd)
{
    size_t len;
    void *p = env(session, seq, ack, cmd, &len);
    assert_int_equal(mk__gfsm_apply(a, p, len), 0);
    raft_free(p);
}

static void snap_of(mk__gfsm *a, mk_buf *b)
{
    mk_buf_init(b);
    assert_int_equal(mk__gfsm_snapshot(a, b), 0);
}

/* ---- the envelope ---------------------------------------------------------- */

static void envelope_is_padded(void **state)
{
    uint8_t s[MK__SESSION_LEN];
    session_of(s, 7);
    char cmd[80];
    memset(cmd, 'x', sizeof cmd);
    for (size_t n = 0; n < sizeof cmd; n++) {
        cmd[n] = '\0';
        size_t len;
        uint8_t *p = env(s, n + 1, n, cmd, &len);
        assert_int_equal(len % 8, 0);
        assert_true(len >= MK__ENV_HDR + n && len < MK__ENV_HDR + n + 8);
        mk__envelope e;
        assert_int_equal(mk__env_parse(p, len, &e), 0);
        assert_int_equal(e.len, n);
        assert_int_equal(e.seq, n + 1);
        assert_int_equal(e.ack, n);
        assert_memory_equal(e.session, s, MK__SESSION_LEN);
        if (n)
            assert_memory_equal(e.cmd, cmd, n);
        for (size_t i = MK__ENV_HDR + n; i < len; i++)
            assert_int_equal(p[i], 0);
        /* Anything not a multiple of 8, or claiming more than it holds. */
        assert_int_equal(mk__env_parse(p, len - 1, &e), MK_EDECODE);
        assert_int_equal(mk__env_parse(p, len - 8, &e), MK_EDECODE);
        p[0] = 2;
        assert_int_equal(mk__env_parse(p, len, &e), MK_EDECODE);
        raft_free(p);
        cmd[n] = 'x';
    }
}

/* ---- the adapter, driven directly ---------------------------------------- */

static void dedup_and_order(void **state)
{
    struct mk_fsm *c = mk_fsm_test_new("counter");
    recorder rec = {0};
    mk__gfsm_hooks hooks = {rec_applied, rec_restored, &rec, NULL};
    mk__gfsm a;
    mk__gfsm_init(&a, c, &hooks);
    uint8_t s1[16], s2[16];
    session_of(s1, 1);
    session_of(s2, 2);

    apply_env(&a, s1, 1, 0, "5");  /* new */
    apply_env(&a, s1, 1, 0, "5");  /* retry: same answer, not re-applied */
    apply_env(&a, s1, 3, 0, "100"); /* 2 is missing */
    apply_env(&a, s1, 2, 0, "10"); /* new */
    apply_env(&a, s2, 1, 0, "1");  /* another session */
    apply_env(&a, s1, 3, 1, "100"); /* new; the client has 1's answer */
    apply_env(&a, s1, 1, 1, "5");  /* at or below ack: stale, not applied */
    apply_env(&a, s1, 2, 1, "10"); /* still cached (above ack) */

    assert_int_equal(rec.n, 8);
    mk__apply_kind want[] = {MK__APPLY_NEW, MK__APPLY_DUP,   MK__APPLY_GAP,
                             MK__APPLY_NEW, MK__APPLY_NEW,   MK__APPLY_NEW,
                             MK__APPLY_STALE, MK__APPLY_DUP};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(rec.kinds[i], want[i]);
    assert_string_equal(rec.results[0], "5");
    assert_string_equal(rec.results[1], "5");
    assert_int_equal(rec.applied[1], 1);
    assert_string_equal(rec.results[3], "15");
    assert_int_equal(rec.applied[3], 2);
    assert_string_equal(rec.results[4], "16");
    assert_string_equal(rec.results[5], "116");
    assert_int_equal(rec.applied[5], 4);
    assert_string_equal(rec.results[7], "15");
    assert_int_equal(rec.applied[7], 2);
    assert_int_equal(a.applied, 4);

    /* Abandoned commands: the client gave up on 4 and 5 (ack 5), so 6 is
     * next, and a late copy of 4 is never applied. */
    apply_env(&a, s1, 6, 5, "1000");
    apply_env(&a, s1, 4, 3, "7");
    assert_int_equal(rec.kinds[8], MK__APPLY_NEW);
    assert_int_equal(rec.kinds[9], MK__APPLY_STALE);
    assert_int_equal(a.applied, 5);

    /* Not an envelope: ignored the same way everywhere. */
    uint8_t junk[12] = {1, 1};
    assert_int_equal(mk__gfsm_apply(&a, junk, sizeof junk), 0);
    assert_int_equal(rec.kinds[10], MK__APPLY_BAD);
    assert_int_equal(a.applied, 5);

    mk_buf q;
    mk_buf_init(&q);
    c->query(c, NULL, 0, &q);
    assert_int_equal(q.len, 4);
    assert_memory_equal(q.data, "1116", 4);
    mk_buf_free(&q);
    mk__gfsm_free(&a);
    mk_fsm_test_free(c);
}

/* A batch entry of envelopes (raft_malloc'd). */
static uint8_t *batch_of(size_t n, void *const envs[], const size_t lens[],
                         size_t *len)
{
    *len = MK__BATCH_HDR;
    for (size_t i = 0; i < n; i++)
        *len += lens[i];
    uint8_t *p = raft_malloc(*len);
    assert_non_null(p);
    mk__batch_header_write(p, (uint32_t)n);
    size_t at = MK__BATCH_HDR;
    for (size_t i = 0; i < n; i++) {
        memcpy(p + at, envs[i], lens[i]);
        at += lens[i];
    }
    return p;
}

/* Group commit: one entry carries many commands, each keeping its own
 * session and sequence number, applied in order with the same outcomes
 * as if each had been an entry; a malformed batch is skipped whole. */
/* The prepare worker sees every command of every entry handed to it, in
 * order, on another thread; a malformed entry yields none. */
typedef struct prep_seen {
    pthread_mutex_t lock;
    char text[256];
    size_t n;
    pthread_t thread;
    bool other_thread;
} prep_seen;

static void count_prepare(struct mk_fsm *fsm, const uint8_t *cmd, size_t len)
{
    prep_seen *s = fsm->data;
    pthread_mutex_lock(&s->lock);
    s->other_thread |= !pthread_equal(pthread_self(), s->thread);
    size_t at = strlen(s->text);
    snprintf(s->text + at, sizeof s->text - at, "%.*s;", (int)len,
             (const char *)cmd);
    s->n++;
    pthread_mutex_unlock(&s->lock);
}

static void prepare_worker(void **state)
{
    (void)state;
    prep_seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    seen.thread = pthread_self();
    struct mk_fsm f = {.version = MK_FSM_VERSION, .data = &seen,
                       .prepare = count_prepare};
    struct mk_fsm none = {.version = MK_FSM_VERSION};
    assert_null(mk__prep_start(&none, false)); /* no prepare(): no thread */
    mk__prep *p = mk__prep_start(&f, false);
    assert_non_null(p);
    uint8_t s1[16];
    session_of(s1, 1);
    void *e[2];
    size_t l[2], len, one_len;
    e[0] = env(s1, 1, 0, "a", &l[0]);
    e[1] = env(s1, 2, 0, "bb", &l[1]);
    uint8_t *b = batch_of(2, e, l, &len);
    void *one = env(s1, 3, 0, "ccc", &one_len);
    mk__prep_push(p, b, len);
    mk__prep_push(p, one, one_len);
    mk__prep_push(p, "garbage!", 8); /* not an envelope */
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&seen.lock);
        size_t n = seen.n;
        pthread_mutex_unlock(&seen.lock);
        if (n >= 3)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    mk__prep_stop(p);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.text, "a;bb;ccc;");
    assert_true(seen.other_thread);
    raft_free(b);
    raft_free(one);
    for (int i = 0; i < 2; i++)
        raft_free(e[i]);
}

static void batches(void **state)
{
    struct mk_fsm *c = mk_fsm_test_new("counter");
    recorder rec = {0};
    mk__gfsm_hooks hooks = {rec_applied, rec_restored, &rec, NULL};
    mk__gfsm a;
    mk__gfsm_init(&a, c, &hooks);
    uint8_t s1[16], s2[16];
    session_of(s1, 1);
    session_of(s2, 2);
    void *e[5];
    size_t l[5];
    e[0] = env(s1, 1, 0, "5", &l[0]);
    e[1] = env(s2, 1, 0, "7", &l[1]);
    e[2] = env(s1, 2, 0, "10", &l[2]);
    e[3] = env(s1, 1, 0, "5", &l[3]);  /* a retry inside the batch */
    e[4] = env(s1, 4, 0, "99", &l[4]); /* 3 is missing */
    size_t len;
    uint8_t *b = batch_of(5, e, l, &len);
    assert_int_equal(len % 8, 0);
    assert_int_equal(mk__gfsm_apply(&a, b, len), 0);
    assert_int_equal(rec.n, 5);
    mk__apply_kind want[] = {MK__APPLY_NEW, MK__APPLY_NEW, MK__APPLY_NEW,
                             MK__APPLY_DUP, MK__APPLY_GAP};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(rec.kinds[i], want[i]);
    assert_string_equal(rec.results[2], "22");
    assert_int_equal(rec.applied[2], 3);
    assert_string_equal(rec.results[3], "5");
    assert_int_equal(a.applied, 3);

    /* The leader's view before proposing: next, gap, or already applied
     * (with its outcome). */
    const mk__gresult *res;
    assert_int_equal(mk__gfsm_next(&a, s1, 3, 0, &res), 1);
    assert_int_equal(mk__gfsm_next(&a, s1, 4, 0, &res), 0);
    assert_int_equal(mk__gfsm_next(&a, s1, 4, 3, &res), 1); /* 3 given up */
    assert_int_equal(mk__gfsm_next(&a, s1, 2, 0, &res), -1);
    assert_non_null(res);
    int st;
    uint64_t ap;
    const uint8_t *d;
    size_t dl;
    mk__gresult_get(res, &st, &ap, &d, &dl);
    assert_int_equal(st, 0);
    assert_int_equal(ap, 3);
    assert_int_equal(dl, 2);
    assert_memory_equal(d, "22", 2);
    uint8_t s3[16];
    session_of(s3, 3);
    assert_int_equal(mk__gfsm_next(&a, s3, 1, 0, &res), 1);
    assert_int_equal(mk__gfsm_next(&a, s3, 2, 0, &res), 0);

    /* Malformed anywhere: nothing of it is applied. A bad count, a
     * truncated last envelope, trailing bytes, an empty batch. */
    size_t before = rec.n;
    uint64_t applied = a.applied;
    void *f[2];
    size_t fl[2];
    f[0] = env(s2, 2, 0, "1", &fl[0]);
    f[1] = env(s2, 3, 0, "1", &fl[1]);
    uint8_t *g = batch_of(2, f, fl, &len);
    g[4] = 3; /* count says 3, holds 2 */
    assert_int_equal(mk__gfsm_apply(&a, g, len), 0);
    g[4] = 2;
    assert_int_equal(mk__gfsm_apply(&a, g, len - 8), 0);
    uint8_t *h = raft_malloc(len + 8);
    memcpy(h, g, len);
    memset(h + len, 0, 8);
    assert_int_equal(mk__gfsm_apply(&a, h, len + 8), 0);
    uint8_t empty[8];
    mk__batch_header_write(empty, 0);
    assert_int_equal(mk__gfsm_apply(&a, empty, sizeof empty), 0);
    assert_int_equal(rec.n, before + 4);
    for (size_t i = before; i < rec.n; i++)
        assert_int_equal(rec.kinds[i], MK__APPLY_BAD);
    assert_int_equal(a.applied, applied);
    /* And the well-formed one applies both. */
    assert_int_equal(mk__gfsm_apply(&a, g, len), 0);
    assert_int_equal(a.applied, applied + 2);

    raft_free(h);
    raft_free(g);
    raft_free(b);
    for (size_t i = 0; i < 5; i++)
        raft_free(e[i]);
    raft_free(f[0]);
    raft_free(f[1]);
    mk__gfsm_free(&a);
    mk_fsm_test_free(c);
}

/* A counter that refuses commands starting with 'X' as malformed. */
static int picky_apply(struct mk_fsm *f, const uint8_t *cmd, size_t len,
                       mk_buf *result)
{
    struct mk_fsm *inner = f->data;
    if (len && cmd[0] == 'X')
        return MK_EDECODE;
    return inner->apply(inner, cmd, len, result);
}

static int picky_snapshot(struct mk_fsm *f, mk_buf *out)
{
    struct mk_fsm *inner = f->data;
    return inner->snapshot(inner, out);
}

static int picky_restore(struct mk_fsm *f, const uint8_t *s, size_t len)
{
    struct mk_fsm *inner = f->data;
    return inner->restore(inner, s, len);
}

static void malformed_is_rejected(void **state)
{
    struct mk_fsm *c = mk_fsm_test_new("counter"), *c2 = mk_fsm_test_new("counter");
    struct mk_fsm p = {.version = MK_FSM_VERSION, .data = c,
                       .apply = picky_apply, .snapshot = picky_snapshot,
                       .restore = picky_restore};
    struct mk_fsm p2 = p;
    p2.data = c2;
    recorder rec = {0};
    mk__gfsm_hooks hooks = {rec_applied, NULL, &rec, NULL};
    mk__gfsm a, b;
    mk__gfsm_init(&a, &p, &hooks);
    mk__gfsm_init(&b, &p2, NULL);
    uint8_t s[16];
    session_of(s, 4);
    apply_env(&a, s, 1, 0, "5");
    apply_env(&a, s, 2, 0, "Xgarbage"); /* refused, not fatal */
    apply_env(&a, s, 2, 0, "Xgarbage"); /* the retry gets the same answer */
    apply_env(&a, s, 3, 0, "1");        /* the session goes on */
    assert_int_equal(a.fatal, 0);
    assert_int_equal(a.applied, 2);
    assert_int_equal(rec.kinds[1], MK__APPLY_NEW);
    assert_int_equal(rec.applied[1], 0);
    assert_int_equal(rec.status[1], MK_EDECODE);
    assert_int_equal(rec.kinds[2], MK__APPLY_DUP);
    assert_int_equal(rec.status[2], MK_EDECODE);
    assert_int_equal(rec.applied[3], 2);
    assert_string_equal(rec.results[3], "6");
    /* The rejection is remembered across a snapshot. */
    mk_buf sa;
    snap_of(&a, &sa);
    assert_int_equal(mk__gfsm_restore(&b, sa.data, sa.len), 0);
    mk_buf_free(&sa);
    recorder r2 = {0};
    b.hooks = (mk__gfsm_hooks){rec_applied, NULL, &r2, NULL};
    apply_env(&b, s, 2, 0, "Xgarbage");
    assert_int_equal(r2.kinds[0], MK__APPLY_DUP);
    assert_int_equal(b.applied, 2);
    mk__gfsm_free(&a);
    mk__gfsm_free(&b);
    mk_fsm_test_free(c);
    mk_fsm_test_free(c2);
}

static void snapshot_restore_equal(void **state)
{
    struct mk_fsm *c1 = mk_fsm_test_new("log"), *c2 = mk_fsm_test_new("log");
    recorder r1 = {0}, r2 = {0};
    mk__gfsm_hooks h1 = {rec_applied, rec_restored, &r1, NULL};
    mk__gfsm_hooks h2 = {rec_applied, rec_restored, &r2, NULL};
    mk__gfsm a, b;
    mk__gfsm_init(&a, c1, &h1);
    mk__gfsm_init(&b, c2, &h2);
    uint8_t s[16];
    for (uint8_t k = 1; k <= 5; k++) {
        session_of(s, k);
        for (uint64_t q = 1; q <= k; q++) {
            char cmd[16];
            snprintf(cmd, sizeof cmd, "s%u-%llu", k, (unsigned long long)q);
            apply_env(&a, s, q, q > 2 ? q - 2 : 0, cmd);
        }
    }
    mk_buf sa, sb;
    snap_of(&a, &sa);
    assert_int_equal(mk__gfsm_restore(&b, sa.data, sa.len), 0);
    assert_int_equal(r2.restored, 1);
    assert_int_equal(b.applied, a.applied);
    snap_of(&b, &sb);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);

    mk_id ha, hb;
    assert_int_equal(mk__fsm_state_hash(c1, a.applied, &ha), 0);
    assert_int_equal(mk__fsm_state_hash(c2, b.applied, &hb), 0);
    assert_true(mk_id_eq(&ha, &hb));

    /* The restored table remembers results: a retry is a duplicate on both. */
    session_of(s, 5);
    apply_env(&a, s, 5, 3, "s5-5");
    apply_env(&b, s, 5, 3, "s5-5");
    assert_int_equal(r1.kinds[r1.n - 1], MK__APPLY_DUP);
    assert_int_equal(r2.kinds[r2.n - 1], MK__APPLY_DUP);
    assert_int_equal(r1.applied[r1.n - 1], r2.applied[r2.n - 1]);

    /* A damaged snapshot changes nothing. */
    uint64_t before = b.applied;
    assert_int_equal(mk__gfsm_restore(&b, sa.data, sa.len - 1), MK_EDECODE);
    sa.data[0] = 'X';
    assert_int_equal(mk__gfsm_restore(&b, sa.data, sa.len), MK_EDECODE);
    assert_int_equal(b.applied, before);

    mk_buf_free(&sa);
    mk_buf_free(&sb);
    mk__gfsm_free(&a);
    mk__gfsm_free(&b);
    mk_fsm_test_free(c1);
    mk_fsm_test_free(c2);
}

static void bounded_tables(void **state)
{
    struct mk_fsm *c1 = mk_fsm_test_new("counter"),
                  *c2 = mk_fsm_test_new("counter");
    recorder rec = {0};
    mk__gfsm_hooks hooks = {rec_applied, NULL, &rec, NULL};
    mk__gfsm a, b;
    mk__gfsm_init(&a, c1, &hooks);
    mk__gfsm_init(&b, c2, NULL);
    a.max_sessions = b.max_sessions = 3;
    a.max_results = b.max_results = 2;
    uint8_t s[16];
    /* Sessions 1..4: the fourth evicts the least recently touched (2,
     * since 1 was touched again). */
    for (int pass = 0; pass < 2; pass++) {
        mk__gfsm *x = pass ? &b : &a;
        session_of(s, 1);
        apply_env(x, s, 1, 0, "1");
        session_of(s, 2);
        apply_env(x, s, 1, 0, "1");
        session_of(s, 3);
        apply_env(x, s, 1, 0, "1");
        session_of(s, 1);
        apply_env(x, s, 2, 0, "1");
        session_of(s, 4);
        apply_env(x, s, 1, 0, "1");
        session_of(s, 1);
        apply_env(x, s, 3, 0, "1"); /* session 1 keeps 2 results: 2, 3 */
    }
    assert_int_equal(a.n_sessions, 3);
    mk_buf sa, sb;
    snap_of(&a, &sa);
    snap_of(&b, &sb);
    assert_int_equal(sa.len, sb.len); /* same history, same bytes */
    assert_memory_equal(sa.data, sb.data, sa.len);
    size_t n = rec.n;
    session_of(s, 1);
    apply_env(&a, s, 1, 0, "1"); /* result evicted: stale, not re-applied */
    apply_env(&a, s, 2, 0, "1"); /* kept: duplicate */
    assert_int_equal(rec.kinds[n], MK__APPLY_STALE);
    assert_int_equal(rec.kinds[n + 1], MK__APPLY_DUP);
    assert_int_equal(a.applied, 6);
    mk_buf_free(&sa);
    mk_buf_free(&sb);
    mk__gfsm_free(&a);
    mk__gfsm_free(&b);
    mk_fsm_test_free(c1);
    mk_fsm_test_free(c2);
}

/* ---- the test machines ---------------------------------------------------- */

static void run(struct mk_fsm *f, const char *cmd, const char *want)
{
    mk_buf r;
    mk_buf_init(&r);
    assert_int_equal(f->apply(f, (const uint8_t *)cmd, strlen(cmd), &r), 0);
    assert_int_equal(r.len, strlen(want));
    if (r.len)
        assert_memory_equal(r.data, want, r.len);
    mk_buf_free(&r);
}

static void ask(struct mk_fsm *f, const char *q, const char *want)
{
    mk_buf r;
    mk_buf_init(&r);
    assert_int_equal(f->query(f, (const uint8_t *)q, strlen(q), &r), 0);
    assert_int_equal(r.len, strlen(want));
    if (r.len)
        assert_memory_equal(r.data, want, r.len);
    mk_buf_free(&r);
}

static void round_trip(struct mk_fsm *f, const char *kind)
{
    struct mk_fsm *g = mk_fsm_test_new(kind);
    mk_buf a, b;
    mk_buf_init(&a);
    mk_buf_init(&b);
    assert_int_equal(f->snapshot(f, &a), 0);
    assert_int_equal(g->restore(g, a.data, a.len), 0);
    assert_int_equal(g->snapshot(g, &b), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_not_equal(g->restore(g, a.data, a.len + 1), 0);
    mk_buf_free(&a);
    mk_buf_free(&b);
    mk_fsm_test_free(g);
}

static void test_machines(void **state)
{
    assert_null(mk_fsm_test_new("nope"));
    struct mk_fsm *c = mk_fsm_test_new("counter");
    run(c, "5", "5");
    run(c, "-7", "-2");
    run(c, "x", "ERR");
    run(c, "", "ERR");
    run(c, "9223372036854775807", "9223372036854775805"); /* wraps */
    ask(c, "", "9223372036854775805");
    round_trip(c, "counter");

    struct mk_fsm *r = mk_fsm_test_new("register");
    run(r, "a", "");
    run(r, "bb", "a");
    ask(r, "", "bb");
    round_trip(r, "register");

    struct mk_fsm *l = mk_fsm_test_new("log");
    ask(l, "len", "0");
    run(l, "one", "1");
    run(l, "two", "2");
    ask(l, "len", "2");
    ask(l, "get 2", "two");
    ask(l, "get 3", "");
    ask(l, "all", "one\ntwo");
    round_trip(l, "log");
    mk_id sc, sr;
    mk_id_from_str(&sc, "mosaik.test.counter/1");
    mk_id_from_str(&sr, "mosaik.test.register/1");
    assert_true(mk_id_eq(&c->signature, &sc));
    assert_true(mk_id_eq(&r->signature, &sr));
    mk_fsm_test_free(c);
    mk_fsm_test_free(r);
    mk_fsm_test_free(l);
}

/* ---- the GroupId ------------------------------------------------------------ */

static void group_id_derivation(void **state)
{
    struct mk_fsm *c = mk_fsm_test_new("counter"), *r = mk_fsm_test_new("log");
    mk_peer_id vs[3];
    mk_id_from_str(&vs[0], "voter-a");
    mk_id_from_str(&vs[1], "voter-b");
    mk_id_from_str(&vs[2], "voter-c");
    mk_group_config cfg = {.fsm = c, .voters = vs, .n_voters = 2};
    mk_id_from_str(&cfg.root, "committee");
    mk_id got, want, other;
    mk_group_id_of(&cfg, &got);

    /* g0 = blake3(root), g1 = derive(g0, "libraft/1" ‖ u32le(election) ‖
     * u32le(heartbeat)) with the defaults 1000 and 50, g2 = derive(g1,
     * signature), then the voters: derive(g2, "voters" ‖ u32le(n) ‖ the
     * PeerIds in ascending byte order). */
    uint8_t label[17] = {'l', 'i', 'b', 'r', 'a', 'f', 't', '/', '1',
                         0xe8, 0x03, 0, 0, 50, 0, 0, 0};
    mk_id base;
    mk_id_hash(&base, cfg.root.b, MK_ID_LEN);
    mk_id_derive(&base, &base, label, sizeof label);
    mk_id_derive(&base, &base, c->signature.b, MK_ID_LEN);
    uint8_t vl[10 + 2 * MK_ID_LEN] = {'v', 'o', 't', 'e', 'r', 's', 2, 0, 0, 0};
    bool a_first = memcmp(vs[0].b, vs[1].b, MK_ID_LEN) < 0;
    memcpy(vl + 10, vs[a_first ? 0 : 1].b, MK_ID_LEN);
    memcpy(vl + 10 + MK_ID_LEN, vs[a_first ? 1 : 0].b, MK_ID_LEN);
    mk_id_derive(&want, &base, vl, sizeof vl);
    assert_true(mk_id_eq(&got, &want));

    /* The voter set is a set: order does not matter, membership does, and
     * a repeated voter folds to nothing a member could prove. */
    mk_peer_id swapped_vs[2] = {vs[1], vs[0]};
    cfg.voters = swapped_vs;
    mk_group_id_of(&cfg, &other);
    assert_true(mk_id_eq(&got, &other));
    cfg.voters = vs;
    cfg.n_voters = 3;
    mk_group_id_of(&cfg, &other);
    assert_false(mk_id_eq(&got, &other));
    mk_peer_id twice[2] = {vs[0], vs[0]};
    cfg.voters = twice;
    cfg.n_voters = 2;
    assert_int_equal(mk__group_fold_voters(&base, twice, 2, &other),
                     MK_EINVAL);
    cfg.voters = vs;

    /* A proof: the base and the sorted list fold to the id, and name the
     * member; any other member, base or id is refused. */
    mk__proof pf = {.base = base, .n = 2};
    pf.voters[0] = vs[a_first ? 0 : 1];
    pf.voters[1] = vs[a_first ? 1 : 0];
    assert_int_equal(mk__proof_check(&pf, &got, &vs[0]), 0);
    assert_int_equal(mk__proof_check(&pf, &got, &vs[1]), 0);
    assert_int_equal(mk__proof_check(&pf, &got, &vs[2]), MK_ENOT_ALLOWED);
    mk__proof forged = pf;
    forged.voters[1] = vs[2]; /* an outsider writes itself in */
    assert_int_equal(mk__proof_check(&forged, &got, &vs[2]),
                     MK_ENOT_ALLOWED);
    forged = pf;
    forged.base.b[0] ^= 1;
    assert_int_equal(mk__proof_check(&forged, &got, &vs[0]),
                     MK_ENOT_ALLOWED);
    /* The wire form is canonical: unsorted or repeated lists are refused. */
    mk_buf b;
    mk_buf_init(&b);
    mk__proof_encode(&b, &pf);
    mk_reader rd;
    mk__proof back;
    mk_reader_init(&rd, b.data, b.len);
    assert_int_equal(mk__proof_decode(&rd, &back), 0);
    assert_int_equal(mk_reader_done(&rd), 0);
    assert_int_equal(mk__proof_check(&back, &got, &vs[1]), 0);
    memcpy(b.data + b.len - MK_ID_LEN, pf.voters[0].b, MK_ID_LEN);
    mk_reader_init(&rd, b.data, b.len);
    assert_int_equal(mk__proof_decode(&rd, &back), MK_EDECODE);
    mk_buf_free(&b);

    /* Local choices do not change it; timing, machine and root do. */
    cfg.params = (mk_group_params){.election_timeout_ms = 1000,
                                   .heartbeat_ms = 50,
                                   .snapshot_threshold = 7,
                                   .max_in_flight = 3};
    mk_group_id_of(&cfg, &other);
    assert_true(mk_id_eq(&got, &other));
    cfg.params.election_timeout_ms = 1001;
    mk_group_id_of(&cfg, &other);
    assert_false(mk_id_eq(&got, &other));
    cfg.params.election_timeout_ms = 1000;
    cfg.params.heartbeat_ms = 49;
    mk_group_id_of(&cfg, &other);
    assert_false(mk_id_eq(&got, &other));
    cfg.params.heartbeat_ms = 50;
    cfg.fsm = r;
    mk_group_id_of(&cfg, &other);
    assert_false(mk_id_eq(&got, &other));
    cfg.fsm = c;

    /* Validators: each one, in order, derives the id further. */
    mk_keypair k1, k2;
    assert_int_equal(mk_keypair_generate(&k1), 0);
    assert_int_equal(mk_keypair_generate(&k2), 0);
    struct mk_ticket_validator v1, v2;
    mk_jwt_config j1 = {.keys = &k1.pub, .n_keys = 1};
    mk_jwt_config j2 = {.keys = &k2.pub, .n_keys = 1};
    assert_int_equal(mk_jwt_validator_init(&v1, &j1, NULL), 0);
    assert_int_equal(mk_jwt_validator_init(&v2, &j2, NULL), 0);
    const struct mk_ticket_validator *one[] = {&v1};
    const struct mk_ticket_validator *both[] = {&v1, &v2};
    const struct mk_ticket_validator *swapped[] = {&v2, &v1};
    mk_id with1, with12, with21;
    cfg.validators = one;
    cfg.n_validators = 1;
    mk_group_id_of(&cfg, &with1);
    mk_id_derive(&want, &base, v1.signature.b, MK_ID_LEN);
    mk__group_fold_voters(&want, vs, 2, &want);
    assert_true(mk_id_eq(&with1, &want));
    cfg.validators = both;
    cfg.n_validators = 2;
    mk_group_id_of(&cfg, &with12);
    cfg.validators = swapped;
    mk_group_id_of(&cfg, &with21);
    assert_false(mk_id_eq(&with1, &got));
    assert_false(mk_id_eq(&with12, &with1));
    assert_false(mk_id_eq(&with12, &with21));
    mk_ticket_validator_free(&v1);
    mk_ticket_validator_free(&v2);
    mk_fsm_test_free(c);
    mk_fsm_test_free(r);
}

/* ---- inside libraft's in-memory cluster ----------------------------------- */

#define N 3

typedef struct cluster {
    struct raft_fixture f;
    struct mk_fsm *user[N + 1];
    mk__gfsm ad[N + 1];
    recorder rec[N + 1];
    unsigned n;
} cluster;

static void cluster_add(cluster *c)
{
    unsigned i = c->n++;
    c->user[i] = mk_fsm_test_new("log");
    mk__gfsm_hooks h = {rec_applied, rec_restored, &c->rec[i], NULL};
    mk__gfsm_init(&c->ad[i], c->user[i], &h);
    assert_int_equal(raft_fixture_grow(&c->f, &c->ad[i].raft), 0);
}

static void cluster_init(cluster *c, unsigned threshold)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < N; i++)
        cluster_add(c);
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&c->f, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    for (unsigned i = 0; i < N; i++) {
        if (threshold) {
            raft_set_snapshot_threshold(raft_fixture_get(&c->f, i), threshold);
            raft_set_snapshot_trailing(raft_fixture_get(&c->f, i), 2);
        }
    }
    assert_int_equal(raft_fixture_start(&c->f), 0);
    raft_fixture_elect(&c->f, 0);
}

static void cluster_close(cluster *c)
{
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < c->n; i++) {
        mk__gfsm_free(&c->ad[i]);
        mk_fsm_test_free(c->user[i]);
    }
}

typedef struct proposal {
    struct raft_apply req;
    int status;
    bool done;
} proposal;

static void on_applied(struct raft_apply *req, int status, void *result)
{
    proposal *p = req->data;
    p->status = status;
    p->done = true;
}

/* Proposes one envelope on the leader and steps until every live server
 * applied it. */
static void propose(cluster *c, proposal *p, const uint8_t *session,
                    uint64_t seq, uint64_t ack, const char *cmd)
{
    unsigned leader = raft_fixture_leader_index(&c->f);
    assert_true(leader < c->n);
    struct raft *r = raft_fixture_get(&c->f, leader);
    struct raft_buffer buf;
    buf.base = env(session, seq, ack, cmd, &buf.len);
    memset(p, 0, sizeof *p);
    p->req.data = p;
    assert_int_equal(raft_apply(r, &p->req, &buf, 1, on_applied), 0);
    raft_index idx = raft_last_index(r);
    for (unsigned i = 0; i < c->n; i++)
        if (raft_fixture_alive(&c->f, i))
            assert_true(raft_fixture_step_until_applied(&c->f, i, idx, 10000));
    assert_true(p->done);
    assert_int_equal(p->status, 0);
}

static void assert_same_state(cluster *c)
{
    mk_id h0, hi;
    assert_int_equal(mk__fsm_state_hash(c->user[0], c->ad[0].applied, &h0), 0);
    for (unsigned i = 1; i < c->n; i++) {
        assert_int_equal(c->ad[i].applied, c->ad[0].applied);
        assert_int_equal(mk__fsm_state_hash(c->user[i], c->ad[i].applied, &hi),
                         0);
        assert_true(mk_id_eq(&h0, &hi));
        mk_buf a, b;
        snap_of(&c->ad[0], &a);
        snap_of(&c->ad[i], &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        mk_buf_free(&a);
        mk_buf_free(&b);
    }
}

static void fixture_replicates_exactly_once(void **state)
{
    cluster c;
    cluster_init(&c, 0);
    uint8_t s[16];
    session_of(s, 9);
    proposal p;
    propose(&c, &p, s, 1, 0, "a");
    propose(&c, &p, s, 2, 0, "bb");
    propose(&c, &p, s, 2, 0, "bb"); /* a retry after a lost answer */
    propose(&c, &p, s, 4, 1, "dddd"); /* gap */
    propose(&c, &p, s, 3, 1, "ccc");
    propose(&c, &p, s, 4, 2, "dddd");
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(c.ad[i].applied, 4);
        assert_int_equal(c.rec[i].n, 6);
        assert_int_equal(c.rec[i].kinds[2], MK__APPLY_DUP);
        assert_int_equal(c.rec[i].kinds[3], MK__APPLY_GAP);
    }
    ask(c.user[1], "all", "a\nbb\nccc\ndddd");
    assert_same_state(&c);

    /* A new leader keeps the table: the same retry is still a duplicate. */
    raft_fixture_depose(&c.f);
    assert_true(raft_fixture_step_until_has_leader(&c.f, 10000));
    propose(&c, &p, s, 4, 2, "dddd");
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(c.rec[i].kinds[c.rec[i].n - 1], MK__APPLY_DUP);
    assert_same_state(&c);
    cluster_close(&c);
}

static void fixture_snapshot_install(void **state)
{
    cluster c;
    cluster_init(&c, 8);
    uint8_t s[16];
    session_of(s, 3);
    proposal p;
    uint64_t seq = 0;
    char cmd[32];
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof cmd, "e%llu", (unsigned long long)++seq);
        propose(&c, &p, s, seq, seq - 1, cmd);
    }
    /* Server 2 misses enough entries that the leader only has a snapshot
     * for it. */
    raft_fixture_kill(&c.f, 2);
    for (int i = 0; i < 40; i++) {
        snprintf(cmd, sizeof cmd, "e%llu", (unsigned long long)++seq);
        propose(&c, &p, s, seq, seq - 1, cmd);
    }
    raft_fixture_revive(&c.f, 2);
    snprintf(cmd, sizeof cmd, "e%llu", (unsigned long long)++seq);
    propose(&c, &p, s, seq, seq - 1, cmd);
    assert_true(c.rec[2].restored >= 1);
    assert_int_equal(c.ad[2].applied, seq);
    assert_same_state(&c);
    /* The installed session table still knows the latest results. */
    propose(&c, &p, s, seq, seq - 1, cmd);
    assert_int_equal(c.rec[2].kinds[c.rec[2].n - 1], MK__APPLY_DUP);
    assert_int_equal(c.ad[2].applied, seq);
    cluster_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(envelope_is_padded),
        cmocka_unit_test(dedup_and_order),
        cmocka_unit_test(batches),
        cmocka_unit_test(prepare_worker),
        cmocka_unit_test(malformed_is_rejected),
        cmocka_unit_test(snapshot_restore_equal),
        cmocka_unit_test(bounded_tables),
        cmocka_unit_test(test_machines),
        cmocka_unit_test(group_id_derivation),
        cmocka_unit_test(fixture_replicates_exactly_once),
        cmocka_unit_test(fixture_snapshot_install),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
