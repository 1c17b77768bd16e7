/* Replicated collections, randomized: every kind against a naive model
 * (outcomes and contents after every command), determinism (replicas fed
 * the same commands write the same snapshots; a replica restored midway
 * passes through the same states), snapshot round trips at sizes 0, 1,
 * 1000 and 100k, and the AVL tree's invariants.
 *
 * Each randomized test prints its seed; COLL_SEED=<n> replays it. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "mosaik/coll_internal.h"
#include "coll_util.h"

static uint64_t test_seed(const char *name)
{
    const char *env = getenv("COLL_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0)
                        : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    print_message("%s: seed %llu (COLL_SEED=%llu replays)\n", name,
                  (unsigned long long)seed, (unsigned long long)seed);
    return seed;
}

enum { K_MAP, K_SET, K_VEC, K_CELL, K_ONCE, K_PQ, N_KINDS };
static const char *const kind_names[] = {"map",  "set",  "vec",
                                         "cell", "once", "pq"};

/* ---- machines --------------------------------------------------------------- */

typedef struct machine {
    int kind;
    void *obj;
    struct mk_fsm *f;
} machine;

static machine machine_new(int kind, uint64_t cap)
{
    mk_coll_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mk_id_from_str(&cfg.store, "props");
    cfg.capacity = cap;
    machine m = {.kind = kind};
    switch (kind) {
    case K_MAP:
        assert_int_equal(mk_map_new(&cfg, (mk_map **)&m.obj), 0);
        m.f = mk_map_fsm(m.obj);
        break;
    case K_SET:
        assert_int_equal(mk_set_new(&cfg, (mk_set **)&m.obj), 0);
        m.f = mk_set_fsm(m.obj);
        break;
    case K_VEC:
        assert_int_equal(mk_vec_new(&cfg, (mk_vec **)&m.obj), 0);
        m.f = mk_vec_fsm(m.obj);
        break;
    case K_CELL:
        assert_int_equal(mk_cell_new(&cfg, (mk_cell **)&m.obj), 0);
        m.f = mk_cell_fsm(m.obj);
        break;
    case K_ONCE:
        assert_int_equal(mk_once_new(&cfg, (mk_once **)&m.obj), 0);
        m.f = mk_once_fsm(m.obj);
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
    case K_SET:
        mk_set_free(m->obj);
        break;
    case K_VEC:
        mk_vec_free(m->obj);
        break;
    case K_CELL:
        mk_cell_free(m->obj);
        break;
    case K_ONCE:
        mk_once_free(m->obj);
        break;
    default:
        mk_pq_free(m->obj);
    }
}

static size_t machine_len(const machine *m)
{
    mk_coll_item it;
    switch (m->kind) {
    case K_MAP:
        return mk_map_len(m->obj);
    case K_SET:
        return mk_set_len(m->obj);
    case K_VEC:
        return mk_vec_len(m->obj);
    case K_CELL:
        return mk_cell_get(m->obj, &it);
    case K_ONCE:
        return mk_once_get(m->obj, &it);
    default:
        return mk_pq_len(m->obj);
    }
}

static int machine_foreach(const machine *m, mk_coll_visit_cb cb, void *data)
{
    mk_coll_item it;
    switch (m->kind) {
    case K_MAP:
        return mk_map_foreach(m->obj, cb, data);
    case K_SET:
        return mk_set_foreach(m->obj, cb, data);
    case K_VEC:
        return mk_vec_foreach(m->obj, cb, data);
    case K_CELL:
        return mk_cell_get(m->obj, &it) ? cb(&it, data) : 0;
    case K_ONCE:
        return mk_once_get(m->obj, &it) ? cb(&it, data) : 0;
    default:
        return mk_pq_foreach(m->obj, false, cb, data);
    }
}

/* ---- the model ----------------------------------------------------------------
 *
 * Arrays and linear scans: obviously right, and slow enough that it only
 * runs over small key spaces. Map/Set items are kept sorted by key, PQ
 * items by (prio, key), Vec items in sequence, Cell/Once hold 0 or 1. */

#define MB_MAX 6
#define MODEL_MAX 8192

typedef struct mb {
    uint8_t b[MB_MAX];
    size_t n;
} mb;

typedef struct mitem {
    mb p, k, v;
} mitem;

typedef struct model {
    mitem *it;
    size_t n;
    uint64_t cap; /* PQ bound, 0 = none */
} model;

/* What the model says a command's outcome is. */
typedef struct expect {
    uint64_t changed, evicted;
    bool has_item;
    mb item;
} expect;

typedef struct gen {
    cu_rng rng;
    int key_alpha, key_max; /* key space: lengths 0..key_max over alpha */
} gen;

static int mb_cmp(const mb *a, const mb *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    int c = n ? memcmp(a->b, b->b, n) : 0;
    if (c)
        return c;
    return a->n < b->n ? -1 : a->n > b->n;
}

static int pk_cmp(const mitem *a, const mitem *b)
{
    int c = mb_cmp(&a->p, &b->p);
    return c ? c : mb_cmp(&a->k, &b->k);
}

static mb rand_mb(cu_rng *r, int alpha, int maxlen)
{
    mb x;
    memset(&x, 0, sizeof x);
    x.n = (size_t)cu_below(r, (uint64_t)maxlen + 1);
    for (size_t i = 0; i < x.n; i++)
        x.b[i] = (uint8_t)('a' + cu_below(r, (uint64_t)alpha));
    return x;
}

static mb rand_key(gen *g)
{
    return rand_mb(&g->rng, g->key_alpha, g->key_max);
}

static mb rand_val(gen *g)
{
    mb v = rand_mb(&g->rng, 4, 4);
    if (cu_below(&g->rng, 8) == 0 && v.n) /* binary bytes too */
        v.b[0] = (uint8_t)cu_below(&g->rng, 256);
    return v;
}

static mb rand_prio(gen *g)
{
    /* Mostly one byte over five buckets, sometimes empty or longer, so
     * prefixes and the empty priority take part. */
    mb p;
    uint64_t r = cu_below(&g->rng, 20);
    p.n = r == 0 ? 0 : r == 1 ? 2 : 1;
    for (size_t i = 0; i < p.n; i++)
        p.b[i] = (uint8_t)('0' + cu_below(&g->rng, 5));
    return p;
}

static long model_find_key(const model *m, const mb *k)
{
    for (size_t i = 0; i < m->n; i++)
        if (mb_cmp(&m->it[i].k, k) == 0)
            return (long)i;
    return -1;
}

static void model_remove_at(model *m, size_t i)
{
    memmove(&m->it[i], &m->it[i + 1], (m->n - i - 1) * sizeof(mitem));
    m->n--;
}

static void model_insert_at(model *m, size_t i, const mitem *x)
{
    assert_true(m->n < MODEL_MAX);
    memmove(&m->it[i + 1], &m->it[i], (m->n - i) * sizeof(mitem));
    m->it[i] = *x;
    m->n++;
}

/* Map/Set: upsert keeping key order; true when the key was new. */
static bool model_put_key(model *m, const mitem *x)
{
    size_t i = 0;
    while (i < m->n && mb_cmp(&m->it[i].k, &x->k) < 0)
        i++;
    if (i < m->n && mb_cmp(&m->it[i].k, &x->k) == 0) {
        m->it[i] = *x;
        return false;
    }
    model_insert_at(m, i, x);
    return true;
}

/* PQ: upsert keeping (prio, key) order, then the bound; returns evictions. */
static uint64_t model_pq_put(model *m, const mitem *x)
{
    long old = model_find_key(m, &x->k);
    if (old >= 0)
        model_remove_at(m, (size_t)old);
    size_t i = 0;
    while (i < m->n && pk_cmp(&m->it[i], x) < 0)
        i++;
    model_insert_at(m, i, x);
    uint64_t ev = 0;
    while (old < 0 && m->cap && m->n > m->cap) {
        model_remove_at(m, 0);
        ev++;
    }
    return ev;
}

static mk_coll_item as_item(const mitem *x)
{
    mk_coll_item it = {x->p.b, x->p.n, x->k.b, x->k.n, x->v.b, x->v.n};
    return it;
}

/* An expected value for a CAS: none, the current one, or a random one. */
static const mb *pick_expected(gen *g, const mb *current, mb *scratch)
{
    uint64_t r = cu_below(&g->rng, 3);
    if (r == 0)
        return NULL;
    if (r == 1 && current)
        return current;
    *scratch = rand_val(g);
    return scratch;
}

static mk_coll_bytes as_bytes(const mb *x)
{
    mk_coll_bytes b = {x->b, x->n};
    return b;
}

/* ---- one random command per kind: encode it and run it on the model ---- */

static void step_map(gen *g, mk_buf *cmd, model *m, expect *e)
{
    uint64_t op = cu_below(&g->rng, 100);
    mitem x = {.k = rand_key(g), .v = rand_val(g)};
    if (op < 35) {
        mk_map_cmd_insert(cmd, x.k.b, x.k.n, x.v.b, x.v.n);
        model_put_key(m, &x);
        e->changed = 1;
    } else if (op < 50) {
        long at = model_find_key(m, &x.k);
        mb scratch;
        const mb *exp = pick_expected(g, at >= 0 ? &m->it[at].v : NULL,
                                      &scratch);
        bool des = cu_below(&g->rng, 4) != 0;
        mk_coll_bytes eb = exp ? as_bytes(exp) : (mk_coll_bytes){0};
        mk_coll_bytes db = as_bytes(&x.v);
        mk_map_cmd_cas(cmd, x.k.b, x.k.n, exp ? &eb : NULL, des ? &db : NULL);
        bool match = exp ? at >= 0 && mb_cmp(&m->it[at].v, exp) == 0
                         : at < 0;
        e->changed = match;
        if (match && des)
            model_put_key(m, &x);
        else if (match && at >= 0)
            model_remove_at(m, (size_t)at);
    } else if (op < 65) {
        size_t n = (size_t)cu_below(&g->rng, 4);
        mitem ks[3];
        memset(ks, 0, sizeof ks);
        mk_coll_item items[3];
        memset(items, 0, sizeof items);
        for (size_t i = 0; i < n; i++) {
            ks[i].k = rand_key(g);
            items[i] = as_item(&ks[i]);
        }
        mk_map_cmd_remove_many(cmd, items, n);
        for (size_t i = 0; i < n; i++) {
            long at = model_find_key(m, &ks[i].k);
            if (at >= 0) {
                model_remove_at(m, (size_t)at);
                e->changed++;
            }
        }
    } else if (op < 90) {
        size_t n = (size_t)cu_below(&g->rng, 5);
        mitem xs[4];
        memset(xs, 0, sizeof xs);
        mk_coll_item items[4];
        memset(items, 0, sizeof items);
        for (size_t i = 0; i < n; i++) {
            xs[i].k = rand_key(g);
            xs[i].v = rand_val(g);
            items[i] = as_item(&xs[i]);
        }
        mk_map_cmd_extend(cmd, items, n);
        for (size_t i = 0; i < n; i++)
            model_put_key(m, &xs[i]);
        e->changed = n;
    } else if (op < 98) {
        mk_map_cmd_remove(cmd, x.k.b, x.k.n);
        long at = model_find_key(m, &x.k);
        if (at >= 0) {
            model_remove_at(m, (size_t)at);
            e->changed = 1;
        }
    } else {
        mk_map_cmd_clear(cmd);
        e->changed = m->n;
        m->n = 0;
    }
}

static void step_set(gen *g, mk_buf *cmd, model *m, expect *e)
{
    uint64_t op = cu_below(&g->rng, 100);
    mitem x = {.k = rand_key(g)};
    if (op < 35) {
        mk_set_cmd_insert(cmd, x.k.b, x.k.n);
        e->changed = model_put_key(m, &x);
    } else if (op < 60 || op >= 98) {
        size_t n = op >= 98 ? 0 : (size_t)cu_below(&g->rng, 5);
        mitem xs[4];
        memset(xs, 0, sizeof xs);
        mk_coll_item items[4];
        memset(items, 0, sizeof items);
        for (size_t i = 0; i < n; i++) {
            xs[i].k = rand_key(g);
            items[i] = as_item(&xs[i]);
        }
        mk_set_cmd_extend(cmd, items, n);
        for (size_t i = 0; i < n; i++)
            e->changed += model_put_key(m, &xs[i]);
    } else if (op < 80) {
        size_t n = (size_t)cu_below(&g->rng, 4);
        mitem ks[3];
        memset(ks, 0, sizeof ks);
        mk_coll_item items[3];
        memset(items, 0, sizeof items);
        for (size_t i = 0; i < n; i++) {
            ks[i].k = rand_key(g);
            items[i] = as_item(&ks[i]);
        }
        mk_set_cmd_remove_many(cmd, items, n);
        for (size_t i = 0; i < n; i++) {
            long at = model_find_key(m, &ks[i].k);
            if (at >= 0) {
                model_remove_at(m, (size_t)at);
                e->changed++;
            }
        }
    } else if (op < 96) {
        mk_set_cmd_remove(cmd, x.k.b, x.k.n);
        long at = model_find_key(m, &x.k);
        if (at >= 0) {
            model_remove_at(m, (size_t)at);
            e->changed = 1;
        }
    } else {
        mk_set_cmd_clear(cmd);
        e->changed = m->n;
        m->n = 0;
    }
}

static void model_take(model *m, size_t i, expect *e)
{
    e->changed = 1;
    e->has_item = true;
    e->item = m->it[i].v;
    model_remove_at(m, i);
}

static void step_vec(gen *g, mk_buf *cmd, model *m, expect *e)
{
    uint64_t op = cu_below(&g->rng, 100);
    /* Keep it from growing without bound: a long vec mostly shrinks. */
    if (m->n > 300 && op < 50)
        op = 60 + op % 20;
    mitem x = {.v = rand_val(g)};
    uint64_t len = m->n;
    /* Indices up to two past the end, and now and then a huge one. */
    uint64_t i = cu_below(&g->rng, 10) == 0 ? UINT64_MAX - cu_below(&g->rng, 2)
                                            : cu_below(&g->rng, len + 3);
    uint64_t j = cu_below(&g->rng, len + 2);
    if (op < 20) {
        mk_vec_cmd_push_back(cmd, x.v.b, x.v.n);
        model_insert_at(m, m->n, &x);
        e->changed = 1;
    } else if (op < 35) {
        mk_vec_cmd_push_front(cmd, x.v.b, x.v.n);
        model_insert_at(m, 0, &x);
        e->changed = 1;
    } else if (op < 47) {
        mk_vec_cmd_insert(cmd, i, x.v.b, x.v.n);
        if (i <= len) {
            model_insert_at(m, (size_t)i, &x);
            e->changed = 1;
        }
    } else if (op < 55) {
        size_t n = (size_t)cu_below(&g->rng, 4);
        mitem xs[3];
        memset(xs, 0, sizeof xs);
        mk_coll_item items[3];
        memset(items, 0, sizeof items);
        for (size_t k = 0; k < n; k++) {
            xs[k].v = rand_val(g);
            items[k] = as_item(&xs[k]);
            model_insert_at(m, m->n, &xs[k]);
        }
        mk_vec_cmd_extend(cmd, items, n);
        e->changed = n;
    } else if (op < 63) {
        mk_vec_cmd_pop_back(cmd);
        if (len)
            model_take(m, m->n - 1, e);
    } else if (op < 71) {
        mk_vec_cmd_pop_front(cmd);
        if (len)
            model_take(m, 0, e);
    } else if (op < 80) {
        mk_vec_cmd_remove(cmd, i);
        if (i < len)
            model_take(m, (size_t)i, e);
    } else if (op < 92) {
        mk_vec_cmd_swap(cmd, i, j);
        if (i < len && j < len && i != j) {
            mitem t = m->it[i];
            m->it[i] = m->it[j];
            m->it[j] = t;
            e->changed = 1;
        }
    } else if (op < 98) {
        uint64_t to = len > 3 ? len - cu_below(&g->rng, 4) : i;
        mk_vec_cmd_truncate(cmd, to);
        if (to < len) {
            e->changed = len - to;
            m->n = (size_t)to;
        }
    } else {
        mk_vec_cmd_clear(cmd);
        e->changed = m->n;
        m->n = 0;
    }
}

static void step_cell(gen *g, mk_buf *cmd, model *m, expect *e)
{
    uint64_t op = cu_below(&g->rng, 10);
    mitem x = {.v = rand_val(g)};
    if (op < 4) {
        mk_cell_cmd_write(cmd, x.v.b, x.v.n);
        m->it[0] = x;
        m->n = 1;
        e->changed = 1;
    } else if (op < 9) {
        mb scratch;
        const mb *exp = pick_expected(g, m->n ? &m->it[0].v : NULL, &scratch);
        bool des = cu_below(&g->rng, 4) != 0;
        mk_coll_bytes eb = exp ? as_bytes(exp) : (mk_coll_bytes){0};
        mk_coll_bytes db = as_bytes(&x.v);
        mk_cell_cmd_cas(cmd, exp ? &eb : NULL, des ? &db : NULL);
        bool match = exp ? m->n && mb_cmp(&m->it[0].v, exp) == 0 : !m->n;
        e->changed = match;
        if (match) {
            m->it[0] = x;
            m->n = des;
        }
    } else {
        mk_cell_cmd_clear(cmd);
        e->changed = m->n;
        m->n = 0;
    }
}

static void step_once(gen *g, mk_buf *cmd, model *m, expect *e)
{
    mitem x = {.v = rand_val(g)};
    mk_once_cmd_write(cmd, x.v.b, x.v.n);
    e->changed = !m->n;
    if (!m->n) {
        m->it[0] = x;
        m->n = 1;
    }
}

/* A random range bound over the priority alphabet, or none. */
static bool rand_bound(gen *g, mb *p, bool *incl)
{
    if (cu_below(&g->rng, 4) == 0)
        return false;
    *p = rand_prio(g);
    *incl = cu_below(&g->rng, 2);
    return true;
}

static bool in_range(const mb *p, bool has_lo, const mb *lo, bool lo_incl,
                     bool has_hi, const mb *hi, bool hi_incl)
{
    if (has_lo) {
        int c = mb_cmp(p, lo);
        if (c < 0 || (c == 0 && !lo_incl))
            return false;
    }
    if (has_hi) {
        int c = mb_cmp(p, hi);
        if (c > 0 || (c == 0 && !hi_incl))
            return false;
    }
    return true;
}

static void step_pq(gen *g, mk_buf *cmd, model *m, expect *e)
{
    uint64_t op = cu_below(&g->rng, 100);
    mitem x = {.p = rand_prio(g), .k = rand_key(g), .v = rand_val(g)};
    long at = model_find_key(m, &x.k);
    if (op < 30) {
        mk_pq_cmd_insert(cmd, x.p.b, x.p.n, x.k.b, x.k.n, x.v.b, x.v.n);
        e->changed = 1;
        e->evicted = model_pq_put(m, &x);
    } else if (op < 40) {
        size_t n = (size_t)cu_below(&g->rng, 4);
        mitem xs[3];
        memset(xs, 0, sizeof xs);
        mk_coll_item items[3];
        memset(items, 0, sizeof items);
        for (size_t i = 0; i < n; i++) {
            xs[i] = (mitem){rand_prio(g), rand_key(g), rand_val(g)};
            items[i] = as_item(&xs[i]);
        }
        mk_pq_cmd_extend(cmd, items, n);
        for (size_t i = 0; i < n; i++)
            e->evicted += model_pq_put(m, &xs[i]);
        e->changed = n;
    } else if (op < 50) {
        mk_pq_cmd_update_priority(cmd, x.k.b, x.k.n, x.p.b, x.p.n);
        if (at >= 0) {
            mitem y = m->it[at];
            y.p = x.p;
            model_pq_put(m, &y);
            e->changed = 1;
        }
    } else if (op < 60) {
        mk_pq_cmd_update_value(cmd, x.k.b, x.k.n, x.v.b, x.v.n);
        if (at >= 0) {
            m->it[at].v = x.v;
            e->changed = 1;
        }
    } else if (op < 75) {
        mb exp = at >= 0 && cu_below(&g->rng, 3) ? m->it[at].v : rand_val(g);
        bool des = cu_below(&g->rng, 4) != 0;
        mk_coll_bytes db = as_bytes(&x.v);
        mk_pq_cmd_cas_value(cmd, x.k.b, x.k.n, exp.b, exp.n,
                            des ? &db : NULL);
        if (at >= 0 && mb_cmp(&m->it[at].v, &exp) == 0) {
            e->changed = 1;
            if (des)
                m->it[at].v = x.v;
            else
                model_remove_at(m, (size_t)at);
        }
    } else if (op < 85) {
        size_t n = (size_t)cu_below(&g->rng, 4);
        mitem ks[3];
        memset(ks, 0, sizeof ks);
        mk_coll_item items[3];
        memset(items, 0, sizeof items);
        for (size_t i = 0; i < n; i++) {
            ks[i].k = rand_key(g);
            items[i] = as_item(&ks[i]);
        }
        if (n == 1 && cu_below(&g->rng, 2))
            mk_pq_cmd_remove(cmd, ks[0].k.b, ks[0].k.n);
        else
            mk_pq_cmd_remove_keys(cmd, items, n);
        for (size_t i = 0; i < n; i++) {
            long k = model_find_key(m, &ks[i].k);
            if (k >= 0) {
                model_remove_at(m, (size_t)k);
                e->changed++;
            }
        }
    } else if (op < 98) {
        mb lo = {{0}, 0}, hi = {{0}, 0};
        bool li = false, hi_incl = false;
        bool hl = rand_bound(g, &lo, &li), hh = rand_bound(g, &hi, &hi_incl);
        mk_pq_bound lb = {lo.b, lo.n, li}, hb = {hi.b, hi.n, hi_incl};
        mk_pq_cmd_remove_range(cmd, hl ? &lb : NULL, hh ? &hb : NULL);
        for (size_t i = m->n; i-- > 0;) {
            if (in_range(&m->it[i].p, hl, &lo, li, hh, &hi, hi_incl)) {
                model_remove_at(m, i);
                e->changed++;
            }
        }
    } else {
        mk_pq_cmd_clear(cmd);
        e->changed = m->n;
        m->n = 0;
    }
}

static void step(int kind, gen *g, mk_buf *cmd, model *m, expect *e)
{
    memset(e, 0, sizeof *e);
    switch (kind) {
    case K_MAP:
        step_map(g, cmd, m, e);
        break;
    case K_SET:
        step_set(g, cmd, m, e);
        break;
    case K_VEC:
        step_vec(g, cmd, m, e);
        break;
    case K_CELL:
        step_cell(g, cmd, m, e);
        break;
    case K_ONCE:
        step_once(g, cmd, m, e);
        break;
    default:
        step_pq(g, cmd, m, e);
    }
    assert_int_equal(cmd->err, 0);
}

/* ---- comparing a machine with the model ------------------------------------ */

typedef struct cmp_ctx {
    const model *m;
    int kind;
    size_t at;
} cmp_ctx;

static bool field_is(const uint8_t *p, size_t n, const mb *x)
{
    return n == x->n && (n == 0 || memcmp(p, x->b, n) == 0);
}

static int cmp_item(const mk_coll_item *it, void *data)
{
    cmp_ctx *c = data;
    if (c->at >= c->m->n)
        return 1; /* the machine has more */
    const mitem *x = &c->m->it[c->at++];
    bool key = c->kind == K_MAP || c->kind == K_SET || c->kind == K_PQ;
    bool val = c->kind != K_SET;
    if (key && !field_is(it->key, it->key_len, &x->k))
        return 2;
    if (val && !field_is(it->val, it->val_len, &x->v))
        return 3;
    if (c->kind == K_PQ && !field_is(it->prio, it->prio_len, &x->p))
        return 4;
    return 0;
}

static void assert_matches(const machine *mc, const model *m, uint64_t seed,
                           size_t stepno)
{
    cmp_ctx c = {m, mc->kind, 0};
    int rc = machine_foreach(mc, cmp_item, &c);
    if (rc || c.at != m->n || machine_len(mc) != m->n)
        fail_msg("%s differs from the model after step %zu (seed %llu): "
                 "item %zu, code %d, len %zu vs %zu",
                 kind_names[mc->kind], stepno, (unsigned long long)seed,
                 c.at, rc, machine_len(mc), m->n);
}

static void assert_outcome(const mk_coll_outcome *o, const expect *e,
                           int kind, uint64_t seed, size_t stepno)
{
    bool ok = o->changed == e->changed && o->evicted == e->evicted &&
              o->has_item == e->has_item;
    if (ok && e->has_item)
        ok = field_is(o->item.val, o->item.val_len, &e->item);
    if (!ok)
        fail_msg("%s outcome at step %zu (seed %llu): changed %llu/%llu "
                 "evicted %llu/%llu item %d/%d",
                 kind_names[kind], stepno, (unsigned long long)seed,
                 (unsigned long long)o->changed,
                 (unsigned long long)e->changed,
                 (unsigned long long)o->evicted,
                 (unsigned long long)e->evicted, o->has_item, e->has_item);
}

/* Reads the whole collection back through paged queries (pages of 3) and
 * compares with the model. */
static void assert_pages(const machine *mc, const model *m)
{
    if (mc->kind == K_CELL || mc->kind == K_ONCE)
        return;
    mk_buf q, res;
    mk_buf_init(&q);
    mk_buf_init(&res);
    cmp_ctx c = {m, mc->kind, 0};
    bool more = true;
    mk_coll_item last;
    memset(&last, 0, sizeof last);
    mb lastp = {{0}, 0}, lastk = {{0}, 0}; /* the cursor */
    bool first = true;
    while (more) {
        mk_buf_reset(&q);
        mk_coll_bytes after = {lastk.b, lastk.n};
        mk_coll_item pafter = {lastp.b, lastp.n, lastk.b, lastk.n, NULL, 0};
        switch (mc->kind) {
        case K_MAP:
            mk_map_query_page(&q, first ? NULL : &after, 3);
            break;
        case K_SET:
            mk_set_query_page(&q, first ? NULL : &after, 3);
            break;
        case K_VEC:
            mk_vec_query_page(&q, c.at, 3);
            break;
        default:
            mk_pq_query_page(&q, first ? NULL : &pafter, false, 3);
        }
        mk_buf_reset(&res);
        assert_int_equal(mc->f->query(mc->f, q.data, q.len, &res), 0);
        size_t before = c.at;
        assert_int_equal(
            mk_coll_reply_page(res.data, res.len, cmp_item, &c, &more), 0);
        assert_true(c.at - before <= 3);
        if (c.at > before) {
            lastk = m->it[c.at - 1].k;
            lastp = m->it[c.at - 1].p;
        }
        first = false;
    }
    assert_int_equal(c.at, m->n);
    mk_buf_free(&q);
    mk_buf_free(&res);
}

/* ---- model tests ------------------------------------------------------------- */

static void run_model(int kind, uint64_t cap, uint64_t seed, size_t steps)
{
    machine mc = machine_new(kind, cap);
    model m = {calloc(MODEL_MAX, sizeof(mitem)), 0, cap};
    gen g = {{seed}, 3, 2};
    cu_harness h;
    cu_init(&h, mc.f);
    expect e;
    for (size_t s = 0; s < steps; s++) {
        step(kind, &g, &h.cmd, &m, &e);
        cu_run(&h, 0);
        assert_outcome(&h.out, &e, kind, seed, s);
        assert_matches(&mc, &m, seed, s);
        if (s % 64 == 0)
            assert_pages(&mc, &m);
    }
    cu_fini(&h);
    free(m.it);
    machine_free(&mc);
}

static void model_all_kinds(void **state)
{
    uint64_t seed = test_seed("model_all_kinds");
    for (int k = 0; k < N_KINDS; k++)
        run_model(k, 0, seed + (uint64_t)k, 4000);
    /* Bounded queues, tight and roomy. */
    run_model(K_PQ, 1, seed + 10, 2000);
    run_model(K_PQ, 4, seed + 11, 4000);
}

/* ---- determinism and the reader property ----------------------------------------
 *
 * A writer and a twin apply the same commands; each command's outcome
 * bytes and the snapshot after it must match. Readers start from the
 * writer's snapshot at several points (as mk_replica does: restore(),
 * then every later command) and must pass through exactly the writer's
 * states from there on. */

typedef struct trace {
    mk_buf cmds;    /* every command, back to back */
    size_t *ends;   /* cmds.data + ends[i] ends command i */
    mk_id *states;  /* hash of the writer's snapshot after command i */
    mk_id *outcomes; /* hash of the outcome bytes of command i */
    mk_buf *snaps;  /* the writer's snapshot at the reader start points */
} trace;

static mk_id snap_hash(struct mk_fsm *f, mk_buf *scratch)
{
    cu_snap(f, scratch);
    mk_id id;
    mk_id_hash(&id, scratch->data, scratch->len);
    return id;
}

static void apply_i(struct mk_fsm *f, const trace *t, size_t i, mk_buf *res)
{
    size_t start = i ? t->ends[i - 1] : 0;
    mk_buf_reset(res);
    assert_int_equal(
        f->apply(f, t->cmds.data + start, t->ends[i] - start, res), 0);
}

static void run_determinism(int kind, uint64_t cap, uint64_t seed,
                            size_t steps)
{
    enum { N_READERS = 4 };
    size_t starts[N_READERS] = {0, steps / 3, steps / 2, steps - 1};
    machine w = machine_new(kind, cap), twin = machine_new(kind, cap);
    model m = {calloc(MODEL_MAX, sizeof(mitem)), 0, cap};
    /* A wider key space than the model tests: more state, deeper trees. */
    gen g = {{seed}, 8, 4};
    trace t;
    mk_buf_init(&t.cmds);
    t.ends = calloc(steps, sizeof *t.ends);
    t.states = calloc(steps, sizeof *t.states);
    t.outcomes = calloc(steps, sizeof *t.outcomes);
    t.snaps = calloc(N_READERS, sizeof *t.snaps);
    mk_buf res, scratch;
    mk_buf_init(&res);
    mk_buf_init(&scratch);
    expect e;
    size_t next_reader = 0;
    for (size_t i = 0; i < steps; i++) {
        /* The snapshot a reader starting before command i would get. */
        while (next_reader < N_READERS && starts[next_reader] == i) {
            mk_buf_init(&t.snaps[next_reader]);
            cu_snap(w.f, &t.snaps[next_reader]);
            next_reader++;
        }
        step(kind, &g, &t.cmds, &m, &e);
        t.ends[i] = t.cmds.len;
        apply_i(w.f, &t, i, &res);
        mk_id_hash(&t.outcomes[i], res.data, res.len);
        apply_i(twin.f, &t, i, &res);
        mk_id o;
        mk_id_hash(&o, res.data, res.len);
        assert_true(mk_id_eq(&o, &t.outcomes[i]));
        t.states[i] = snap_hash(w.f, &scratch);
    }
    cu_assert_same(w.f, twin.f);

    for (size_t r = 0; r < N_READERS; r++) {
        machine rd = machine_new(kind, cap);
        /* Give the reader stale state first: restore must replace it. */
        cu_harness hr;
        cu_init(&hr, rd.f);
        gen junk = {{seed ^ 0x5555}, 8, 4};
        model jm = {calloc(MODEL_MAX, sizeof(mitem)), 0, cap};
        for (int j = 0; j < 50; j++) {
            step(kind, &junk, &hr.cmd, &jm, &e);
            cu_run(&hr, 0);
        }
        free(jm.it);
        cu_fini(&hr);
        assert_int_equal(
            rd.f->restore(rd.f, t.snaps[r].data, t.snaps[r].len), 0);
        for (size_t i = starts[r]; i < steps; i++) {
            apply_i(rd.f, &t, i, &res);
            mk_id o, s;
            mk_id_hash(&o, res.data, res.len);
            s = snap_hash(rd.f, &scratch);
            if (!mk_id_eq(&o, &t.outcomes[i]) || !mk_id_eq(&s, &t.states[i]))
                fail_msg("%s reader from %zu diverged at command %zu "
                         "(seed %llu)",
                         kind_names[kind], starts[r], i,
                         (unsigned long long)seed);
        }
        machine_free(&rd);
        mk_buf_free(&t.snaps[r]);
    }
    mk_buf_free(&res);
    mk_buf_free(&scratch);
    mk_buf_free(&t.cmds);
    free(t.ends);
    free(t.states);
    free(t.outcomes);
    free(t.snaps);
    free(m.it);
    machine_free(&w);
    machine_free(&twin);
}

static void determinism(void **state)
{
    uint64_t seed = test_seed("determinism");
    for (int k = 0; k < N_KINDS; k++)
        run_determinism(k, 0, seed + (uint64_t)k, 3000);
    run_determinism(K_PQ, 16, seed + 10, 3000);
}

/* ---- snapshot round trips at size --------------------------------------------- */

/* Fills `mc` with n items: one extend command (oneshot) or one command per
 * item. Keys come in a scrambled order so the trees are built by real
 * rebalancing; PQ priorities repeat (buckets). */
static void fill(machine *mc, size_t n, bool oneshot)
{
    cu_harness h;
    cu_init(&h, mc->f);
    mk_coll_item *items = calloc(n ? n : 1, sizeof *items);
    uint8_t *bytes = calloc(n ? n : 1, 12);
    for (size_t i = 0; i < n; i++) {
        uint8_t *k = bytes + 12 * i, *p = k + 4, *v = k + 8;
        cu_be32(k, (uint32_t)(i * 2654435761u)); /* distinct, scrambled */
        cu_be32(p, (uint32_t)(i % 97));
        cu_be32(v, (uint32_t)i);
        items[i] = (mk_coll_item){p, 4, k, 4, v, 4};
        if (oneshot)
            continue;
        switch (mc->kind) {
        case K_MAP:
            cu_run(&h, mk_map_cmd_insert(&h.cmd, k, 4, v, 4));
            break;
        case K_SET:
            cu_run(&h, mk_set_cmd_insert(&h.cmd, k, 4));
            break;
        case K_VEC:
            /* Both ends, so the ring wraps. */
            cu_run(&h, i % 2 ? mk_vec_cmd_push_front(&h.cmd, v, 4)
                             : mk_vec_cmd_push_back(&h.cmd, v, 4));
            break;
        case K_CELL:
            cu_run(&h, mk_cell_cmd_write(&h.cmd, v, 4));
            break;
        case K_ONCE:
            cu_run(&h, mk_once_cmd_write(&h.cmd, v, 4));
            break;
        default:
            cu_run(&h, mk_pq_cmd_insert(&h.cmd, p, 4, k, 4, v, 4));
        }
    }
    if (oneshot) {
        switch (mc->kind) {
        case K_MAP:
            cu_run(&h, mk_map_cmd_extend(&h.cmd, items, n));
            break;
        case K_SET:
            cu_run(&h, mk_set_cmd_extend(&h.cmd, items, n));
            break;
        case K_VEC:
            cu_run(&h, mk_vec_cmd_extend(&h.cmd, items, n));
            break;
        case K_PQ:
            cu_run(&h, mk_pq_cmd_extend(&h.cmd, items, n));
            break;
        default:
            if (n)
                cu_run(&h, mk_cell_cmd_write(&h.cmd, "x", 1));
        }
        assert_int_equal(h.out.changed, n);
    }
    free(items);
    free(bytes);
    cu_fini(&h);
}

static void round_trip(int kind, size_t n, bool oneshot)
{
    machine a = machine_new(kind, 0), b = machine_new(kind, 0);
    if (kind == K_ONCE && oneshot) {
        cu_harness h;
        cu_init(&h, a.f);
        if (n)
            cu_run(&h, mk_once_cmd_write(&h.cmd, S("x")));
        cu_fini(&h);
    } else {
        fill(&a, n, oneshot);
    }
    size_t want = kind == K_CELL || kind == K_ONCE ? (n > 0) : n;
    assert_int_equal(machine_len(&a), want);
    mk_buf s1, s2;
    mk_buf_init(&s1);
    mk_buf_init(&s2);
    cu_snap(a.f, &s1);
    assert_int_equal(b.f->restore(b.f, s1.data, s1.len), 0);
    cu_snap(b.f, &s2);
    assert_int_equal(s1.len, s2.len);
    assert_memory_equal(s1.data, s2.data, s1.len);
    assert_int_equal(machine_len(&b), want);
    /* Equal snapshots mean equal state only if reads agree too. */
    mk_coll_item x, y;
    if (kind == K_MAP && n) {
        uint8_t k[4];
        cu_be32(k, (uint32_t)((n / 2) * 2654435761u));
        assert_true(mk_map_get(b.obj, k, 4, &y));
        assert_int_equal(cu_get_be32(y.val), n / 2);
    }
    if (kind == K_PQ && n) {
        assert_true(mk_pq_min(a.obj, &x));
        assert_true(mk_pq_min(b.obj, &y));
        assert_int_equal(x.key_len, y.key_len);
        assert_memory_equal(x.key, y.key, x.key_len);
        assert_true(mk_pq_max(b.obj, &y));
        assert_int_equal(cu_get_be32(y.prio), n < 97 ? n - 1 : 96);
    }
    if (kind == K_VEC && n) {
        assert_true(mk_vec_back(a.obj, &x));
        assert_true(mk_vec_back(b.obj, &y));
        assert_memory_equal(x.val, y.val, 4);
    }
    /* Restoring over a non-empty machine replaces everything. */
    assert_int_equal(a.f->restore(a.f, s1.data, s1.len), 0);
    cu_assert_same(a.f, b.f);
    mk_buf_free(&s1);
    mk_buf_free(&s2);
    machine_free(&a);
    machine_free(&b);
}

static void round_trips(void **state)
{
    const size_t sizes[] = {0, 1, 1000, 100000};
    for (int k = 0; k < N_KINDS; k++) {
        for (size_t s = 0; s < 4; s++) {
            if ((k == K_CELL || k == K_ONCE) && sizes[s] > 1)
                continue;
            round_trip(k, sizes[s], true);
            if (sizes[s] <= 1000)
                round_trip(k, sizes[s], false);
        }
    }
    /* Per-command filling at 100k for the PQ (the permutation at size). */
    round_trip(K_PQ, 100000, false);
}

/* ---- the AVL tree ------------------------------------------------------------ */

typedef struct inode {
    mk__node node;
    int key;
} inode;

static int icmp(const void *probe, const mk__node *n)
{
    int a = *(const int *)probe;
    int b = MK__CONTAINER_OF(n, inode, node)->key;
    return (a > b) - (a < b);
}

/* Checks order, heights and balance; returns the height. */
static int check(const mk__node *n, const int *lo, const int *hi,
                 size_t *count)
{
    if (!n)
        return 0;
    int k = MK__CONTAINER_OF(n, inode, node)->key;
    if (lo)
        assert_true(k > *lo);
    if (hi)
        assert_true(k < *hi);
    int l = check(n->kid[0], lo, &k, count);
    int r = check(n->kid[1], &k, hi, count);
    assert_true(l - r <= 1 && r - l <= 1);
    assert_int_equal(n->height, 1 + (l > r ? l : r));
    (*count)++;
    return n->height;
}

static void check_tree(const mk__tree *t)
{
    size_t count = 0;
    check(t->root, NULL, NULL, &count);
    assert_int_equal(count, t->len);
}

static void drop_inode(mk__node *n)
{
    free(MK__CONTAINER_OF(n, inode, node));
}

static void tree_invariants(void **state)
{
    uint64_t seed = test_seed("tree_invariants");
    cu_rng r = {seed};
    enum { KEYS = 600 };
    bool present[KEYS] = {false};
    mk__tree t;
    mk__tree_init(&t, icmp);
    for (int s = 0; s < 40000; s++) {
        int k = (int)cu_below(&r, KEYS);
        if (cu_below(&r, 2)) {
            inode *n = malloc(sizeof *n);
            n->key = k;
            mk__node *old = mk__tree_put(&t, &k, &n->node);
            assert_true((old != NULL) == present[k]);
            if (old)
                drop_inode(old);
            present[k] = true;
        } else {
            mk__node *n = mk__tree_remove(&t, &k);
            assert_true((n != NULL) == present[k]);
            if (n)
                drop_inode(n);
            present[k] = false;
        }
        if (s % 97 == 0) {
            check_tree(&t);
            /* Seeks against brute force, probes between keys included. */
            int p = (int)cu_below(&r, KEYS + 2) - 1;
            int gt = -1, ge = -1, lt = -1, le = -1;
            for (int i = KEYS - 1; i >= 0; i--)
                if (present[i] && i > p)
                    gt = i;
            for (int i = KEYS - 1; i >= 0; i--)
                if (present[i] && i >= p)
                    ge = i;
            for (int i = 0; i < KEYS; i++)
                if (present[i] && i < p)
                    lt = i;
            for (int i = 0; i < KEYS; i++)
                if (present[i] && i <= p)
                    le = i;
            const int want[4] = {gt, ge, lt, le};
            const mk__seek how[4] = {MK__GT, MK__GE, MK__LT, MK__LE};
            for (int i = 0; i < 4; i++) {
                mk__node *n = mk__tree_seek(&t, &p, how[i]);
                int got = n ? MK__CONTAINER_OF(n, inode, node)->key : -1;
                assert_int_equal(got, want[i]);
            }
        }
    }
    check_tree(&t);
    mk__tree_drain(&t, drop_inode);
    assert_null(t.root);

    /* Built trees are balanced at every size; sequential inserts stay
     * within the AVL height bound (1.44 log2 n). */
    for (int n = 0; n < 70; n++) {
        mk__node *nodes[70];
        for (int i = 0; i < n; i++) {
            inode *x = malloc(sizeof *x);
            x->key = i;
            nodes[i] = &x->node;
        }
        mk__tree_init(&t, icmp);
        mk__tree_build(&t, nodes, (size_t)n);
        check_tree(&t);
        mk__tree_drain(&t, drop_inode);
    }
    mk__tree_init(&t, icmp);
    for (int i = 0; i < 1 << 16; i++) {
        inode *x = malloc(sizeof *x);
        x->key = i;
        assert_null(mk__tree_put(&t, &i, &x->node));
    }
    check_tree(&t);
    assert_true(t.root->height <= 23); /* 1.44 * 16 */
    mk__tree_drain(&t, drop_inode);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_all_kinds),
        cmocka_unit_test(determinism),
        cmocka_unit_test(round_trips),
        cmocka_unit_test(tree_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
