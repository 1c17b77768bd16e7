/* The replicated collections (include/mosaik/collections.h) under
 * simulation: Map, Set, Vec, Cell, Once and a bounded PriorityQueue, each
 * against a model written from the header's contract alone (eight
 * one-byte keys, one-byte values), fed the same committed commands.
 *
 * The key space is tiny on purpose: collisions (an upsert of a present
 * key, a compare-and-swap that fails, a Vec index just past the end, an
 * eviction from the full queue) are where a collection and its contract
 * part ways, and they should happen often. Now and then a client sends
 * bytes no encoder would write: the machine must refuse them (the adapter
 * answers MK_EDECODE) without touching its state, so they never reach
 * the history or the model. */
#include <stdlib.h>
#include <string.h>

#include "mosaik/collections.h"
#include "sim.h"

#define KEYS 8
#define PQ_CAP 6
#define VEC_MAX 64

enum { K_MAP, K_SET, K_VEC, K_CELL, K_ONCE, K_PQ };

/* Operations, per kind (sim_op.kind). */
enum {
    OP_INSERT, OP_REMOVE, OP_CAS, OP_CLEAR, OP_EXTEND, /* map, set */
    OP_PUSH_BACK, OP_PUSH_FRONT, OP_POP_BACK, OP_POP_FRONT, OP_VINSERT,
    OP_VREMOVE, OP_SWAP, OP_TRUNCATE,                   /* vec */
    OP_WRITE,                                           /* cell, once */
    OP_PRIO, OP_VALUE,                                  /* pq */
};

typedef struct model {
    bool has[KEYS];
    uint8_t val[KEYS], prio[KEYS];
    uint8_t v[VEC_MAX * 4];
    size_t n;
} model;

typedef struct coll {
    int kind;
    model m;
    void *h[8]; /* per replica: the typed handle */
} coll;

static void *coll_setup(int kind)
{
    coll *c = calloc(1, sizeof *c);
    if (c)
        c->kind = kind;
    return c;
}

static void *map_setup(const sim_env *e, sim_rng *r) { return coll_setup(K_MAP); }
static void *set_setup(const sim_env *e, sim_rng *r) { return coll_setup(K_SET); }
static void *vec_setup(const sim_env *e, sim_rng *r) { return coll_setup(K_VEC); }
static void *cell_setup(const sim_env *e, sim_rng *r) { return coll_setup(K_CELL); }
static void *once_setup(const sim_env *e, sim_rng *r) { return coll_setup(K_ONCE); }
static void *pq_setup(const sim_env *e, sim_rng *r) { return coll_setup(K_PQ); }

static void coll_teardown(void *ctx)
{
    free(ctx);
}

static struct mk_fsm *coll_new(void *ctx, unsigned index)
{
    coll *c = ctx;
    mk_coll_config cfg = {.capacity = c->kind == K_PQ ? PQ_CAP : 0};
    mk_id_from_str(&cfg.store, "sim");
    switch (c->kind) {
    case K_MAP:
        return mk_map_new(&cfg, (mk_map **)&c->h[index]) ? NULL
                                                         : mk_map_fsm(c->h[index]);
    case K_SET:
        return mk_set_new(&cfg, (mk_set **)&c->h[index]) ? NULL
                                                         : mk_set_fsm(c->h[index]);
    case K_VEC:
        return mk_vec_new(&cfg, (mk_vec **)&c->h[index]) ? NULL
                                                         : mk_vec_fsm(c->h[index]);
    case K_CELL:
        return mk_cell_new(&cfg, (mk_cell **)&c->h[index])
                   ? NULL
                   : mk_cell_fsm(c->h[index]);
    case K_ONCE:
        return mk_once_new(&cfg, (mk_once **)&c->h[index])
                   ? NULL
                   : mk_once_fsm(c->h[index]);
    default:
        return mk_pq_new(&cfg, (mk_pq **)&c->h[index]) ? NULL
                                                       : mk_pq_fsm(c->h[index]);
    }
}

static void coll_free(void *ctx, struct mk_fsm *f)
{
    coll *c = ctx;
    for (unsigned i = 0; i < 8; i++) {
        if (!c->h[i])
            continue;
        struct mk_fsm *g;
        switch (c->kind) {
        case K_MAP: g = mk_map_fsm(c->h[i]); break;
        case K_SET: g = mk_set_fsm(c->h[i]); break;
        case K_VEC: g = mk_vec_fsm(c->h[i]); break;
        case K_CELL: g = mk_cell_fsm(c->h[i]); break;
        case K_ONCE: g = mk_once_fsm(c->h[i]); break;
        default: g = mk_pq_fsm(c->h[i]); break;
        }
        if (g != f)
            continue;
        switch (c->kind) {
        case K_MAP: mk_map_free(c->h[i]); break;
        case K_SET: mk_set_free(c->h[i]); break;
        case K_VEC: mk_vec_free(c->h[i]); break;
        case K_CELL: mk_cell_free(c->h[i]); break;
        case K_ONCE: mk_once_free(c->h[i]); break;
        default: mk_pq_free(c->h[i]); break;
        }
        c->h[i] = NULL;
    }
}

/* ---- commands ------------------------------------------------------------- */

static uint8_t key_of(int64_t k)
{
    return (uint8_t)('a' + k);
}

static void coll_next(void *ctx, sim_rng *g, const sim_env *env,
                      struct mk_fsm *view, unsigned session, mk_buf *out,
                      sim_op *op)
{
    coll *c = ctx;
    /* Garbage: a kind byte no encoder writes, then noise. */
    if (sim_chance(g, 1, 40)) {
        op->kind = -1;
        mk_put_u8(out, 0xee);
        mk_put_u8(out, (uint8_t)sim_next(g));
        return;
    }
    op->a = (int64_t)sim_below(g, KEYS);
    op->b = 'A' + (int64_t)sim_below(g, 26);
    op->c = (int64_t)sim_below(g, KEYS);
    op->d = (int64_t)sim_below(g, 3); /* cas: 0 absent, 1 value, 2 other */
    uint8_t k = key_of(op->a), v = (uint8_t)op->b, k2 = key_of(op->c);
    uint8_t e = (uint8_t)('A' + sim_below(g, 26));
    mk_coll_bytes exp = {&e, 1}, des = {&v, 1};
    int rc = 0;
    switch (c->kind) {
    case K_MAP:
    case K_SET: {
        static const int ops[] = {OP_INSERT, OP_INSERT, OP_INSERT, OP_REMOVE,
                                  OP_CAS,    OP_CAS,    OP_CLEAR,  OP_EXTEND};
        op->kind = ops[sim_below(g, c->kind == K_MAP ? 8 : 8)];
        if (c->kind == K_SET && op->kind == OP_CAS)
            op->kind = OP_REMOVE;
        /* Expectations that match the model more often than chance. */
        if (op->kind == OP_CAS) {
            op->d = (int64_t)sim_below(g, 2);   /* expected absent? */
            op->c = (int64_t)sim_below(g, 2);   /* desired absent? */
            e = c->m.has[op->a] && sim_chance(g, 1, 2) ? c->m.val[op->a] : e;
            op->b = (int64_t)v | (int64_t)e << 8;
        }
        mk_coll_item two[2] = {{.key = &k, .key_len = 1, .val = &v,
                                .val_len = 1},
                               {.key = &k2, .key_len = 1, .val = &v,
                                .val_len = 1}};
        if (c->kind == K_MAP) {
            switch (op->kind) {
            case OP_INSERT: rc = mk_map_cmd_insert(out, &k, 1, &v, 1); break;
            case OP_REMOVE: rc = mk_map_cmd_remove(out, &k, 1); break;
            case OP_CAS:
                rc = mk_map_cmd_cas(out, &k, 1, op->d ? NULL : &exp,
                                    op->c ? NULL : &des);
                break;
            case OP_CLEAR: rc = mk_map_cmd_clear(out); break;
            default: rc = mk_map_cmd_extend(out, two, 2); break;
            }
        } else {
            switch (op->kind) {
            case OP_INSERT: rc = mk_set_cmd_insert(out, &k, 1); break;
            case OP_REMOVE: rc = mk_set_cmd_remove(out, &k, 1); break;
            case OP_CLEAR: rc = mk_set_cmd_clear(out); break;
            default: rc = mk_set_cmd_extend(out, two, 2); break;
            }
        }
        break;
    }
    case K_VEC: {
        op->kind = OP_PUSH_BACK + (int)sim_below(g, 9);
        if (op->kind > OP_TRUNCATE)
            op->kind = OP_CLEAR;
        if (c->m.n > VEC_MAX && op->kind <= OP_PUSH_FRONT)
            op->kind = OP_POP_FRONT;
        /* Indexes around the end, where the contract has its edges. */
        op->a = (int64_t)sim_below(g, c->m.n + 3);
        op->c = (int64_t)sim_below(g, c->m.n + 3);
        switch (op->kind) {
        case OP_PUSH_BACK: rc = mk_vec_cmd_push_back(out, &v, 1); break;
        case OP_PUSH_FRONT: rc = mk_vec_cmd_push_front(out, &v, 1); break;
        case OP_POP_BACK: rc = mk_vec_cmd_pop_back(out); break;
        case OP_POP_FRONT: rc = mk_vec_cmd_pop_front(out); break;
        case OP_VINSERT:
            rc = mk_vec_cmd_insert(out, (uint64_t)op->a, &v, 1);
            break;
        case OP_VREMOVE: rc = mk_vec_cmd_remove(out, (uint64_t)op->a); break;
        case OP_SWAP:
            rc = mk_vec_cmd_swap(out, (uint64_t)op->a, (uint64_t)op->c);
            break;
        case OP_TRUNCATE:
            rc = mk_vec_cmd_truncate(out, (uint64_t)op->a);
            break;
        default: rc = mk_vec_cmd_clear(out); break;
        }
        break;
    }
    case K_CELL:
    case K_ONCE:
        if (c->kind == K_ONCE) {
            op->kind = OP_WRITE;
            rc = mk_once_cmd_write(out, &v, 1);
            break;
        }
        op->kind = (int[]){OP_WRITE, OP_WRITE, OP_CAS, OP_CLEAR}[sim_below(g, 4)];
        if (op->kind == OP_CAS) {
            op->d = (int64_t)sim_below(g, 2);
            op->c = (int64_t)sim_below(g, 2);
            e = c->m.has[0] && sim_chance(g, 1, 2) ? c->m.val[0] : e;
            op->b = (int64_t)v | (int64_t)e << 8;
            rc = mk_cell_cmd_cas(out, op->d ? NULL : &exp,
                                 op->c ? NULL : &des);
        } else if (op->kind == OP_WRITE) {
            rc = mk_cell_cmd_write(out, &v, 1);
        } else {
            rc = mk_cell_cmd_clear(out);
        }
        break;
    default: { /* pq: prio in op->c (a byte), key op->a, val op->b */
        op->kind = (int[]){OP_INSERT, OP_INSERT, OP_INSERT, OP_PRIO,
                           OP_VALUE,  OP_REMOVE, OP_CLEAR}[sim_below(g, 7)];
        if (op->kind == OP_CLEAR && sim_chance(g, 2, 3))
            op->kind = OP_INSERT;
        uint8_t p = (uint8_t)op->c;
        switch (op->kind) {
        case OP_INSERT: rc = mk_pq_cmd_insert(out, &p, 1, &k, 1, &v, 1); break;
        case OP_PRIO: rc = mk_pq_cmd_update_priority(out, &k, 1, &p, 1); break;
        case OP_VALUE: rc = mk_pq_cmd_update_value(out, &k, 1, &v, 1); break;
        case OP_REMOVE: rc = mk_pq_cmd_remove(out, &k, 1); break;
        default: rc = mk_pq_cmd_clear(out); break;
        }
        break;
    }
    }
    if (rc != 0)
        out->err = rc;
}

/* ---- the models ------------------------------------------------------------ */

/* Compare-and-swap on one slot, as the header says: expected NULL means
 * absent, desired NULL means remove. */
static void model_cas(bool *has, uint8_t *val, const sim_op *op)
{
    uint8_t v = (uint8_t)(op->b & 0xff), e = (uint8_t)(op->b >> 8);
    bool match = op->d ? !*has : (*has && *val == e);
    if (!match)
        return;
    if (op->c) {
        *has = false;
    } else {
        *has = true;
        *val = v;
    }
}

/* The bounded queue evicts its minimum, (prio, key) order, when an insert
 * grows it past capacity. */
static void pq_evict(model *m)
{
    size_t n = 0;
    int min = -1;
    for (int k = 0; k < KEYS; k++) {
        if (!m->has[k])
            continue;
        n++;
        if (min < 0 || m->prio[k] < m->prio[min])
            min = k;
    }
    if (n > PQ_CAP)
        m->has[min] = false;
}

static void coll_model(void *ctx, const sim_op *op, const uint8_t *cmd,
                       size_t len)
{
    coll *c = ctx;
    model *m = &c->m;
    int k = (int)op->a;
    uint8_t v = (uint8_t)op->b;
    switch (c->kind) {
    case K_MAP:
    case K_SET:
        switch (op->kind) {
        case OP_INSERT: m->has[k] = true; m->val[k] = v; break;
        case OP_REMOVE: m->has[k] = false; break;
        case OP_CAS: model_cas(&m->has[k], &m->val[k], op); break;
        case OP_CLEAR: memset(m->has, 0, sizeof m->has); break;
        case OP_EXTEND:
            m->has[k] = m->has[op->c] = true;
            m->val[k] = m->val[op->c] = v;
            break;
        }
        break;
    case K_VEC: {
        size_t i = (size_t)op->a, j = (size_t)op->c;
        switch (op->kind) {
        case OP_PUSH_BACK: m->v[m->n++] = v; break;
        case OP_PUSH_FRONT:
            memmove(m->v + 1, m->v, m->n++);
            m->v[0] = v;
            break;
        case OP_POP_BACK: if (m->n) m->n--; break;
        case OP_POP_FRONT:
            if (m->n)
                memmove(m->v, m->v + 1, --m->n);
            break;
        case OP_VINSERT:
            if (i <= m->n) {
                memmove(m->v + i + 1, m->v + i, m->n - i);
                m->v[i] = v;
                m->n++;
            }
            break;
        case OP_VREMOVE:
            if (i < m->n) {
                memmove(m->v + i, m->v + i + 1, m->n - i - 1);
                m->n--;
            }
            break;
        case OP_SWAP:
            if (i < m->n && j < m->n) {
                uint8_t t = m->v[i];
                m->v[i] = m->v[j];
                m->v[j] = t;
            }
            break;
        case OP_TRUNCATE: if (i < m->n) m->n = i; break;
        default: m->n = 0; break;
        }
        break;
    }
    case K_CELL:
        if (op->kind == OP_WRITE) {
            m->has[0] = true;
            m->val[0] = v;
        } else if (op->kind == OP_CAS) {
            model_cas(&m->has[0], &m->val[0], op);
        } else {
            m->has[0] = false;
        }
        break;
    case K_ONCE:
        if (!m->has[0]) {
            m->has[0] = true;
            m->val[0] = v;
        }
        break;
    default:
        switch (op->kind) {
        case OP_INSERT: {
            bool grew = !m->has[k];
            m->has[k] = true;
            m->prio[k] = (uint8_t)op->c;
            m->val[k] = v;
            if (grew)
                pq_evict(m);
            break;
        }
        case OP_PRIO: if (m->has[k]) m->prio[k] = (uint8_t)op->c; break;
        case OP_VALUE: if (m->has[k]) m->val[k] = v; break;
        case OP_REMOVE: m->has[k] = false; break;
        default: memset(m->has, 0, sizeof m->has); break;
        }
        break;
    }
}

/* ---- the check --------------------------------------------------------------- */

static bool one(const mk_coll_item *it, bool found, bool want, uint8_t val,
                const char *what, int k, char *why)
{
    if (found != want)
        return sim_fail(why, "%s %c: %s, the model says %s", what,
                        'a' + k, found ? "present" : "absent",
                        want ? "present" : "absent");
    if (found && (it->val_len != 1 || it->val[0] != val))
        return sim_fail(why, "%s %c: value %.*s, the model says %c", what,
                        'a' + k, (int)it->val_len, (const char *)it->val,
                        val);
    return true;
}

static bool coll_check(void *ctx, unsigned index, struct mk_fsm *f,
                       bool at_head, char *why)
{
    coll *c = ctx;
    model *m = &c->m;
    if (!at_head)
        return true;
    mk_coll_item it;
    size_t n = 0;
    for (int k = 0; k < KEYS; k++)
        n += m->has[k];
    switch (c->kind) {
    case K_MAP:
        if (mk_map_len(c->h[index]) != n)
            return sim_fail(why, "map has %zu entries, the model %zu",
                            mk_map_len(c->h[index]), n);
        for (int k = 0; k < KEYS; k++) {
            uint8_t key = key_of(k);
            bool found = mk_map_get(c->h[index], &key, 1, &it);
            if (!one(&it, found, m->has[k], m->val[k], "map key", k, why))
                return false;
        }
        return true;
    case K_SET:
        if (mk_set_len(c->h[index]) != n)
            return sim_fail(why, "set has %zu elements, the model %zu",
                            mk_set_len(c->h[index]), n);
        for (int k = 0; k < KEYS; k++) {
            uint8_t key = key_of(k);
            if (mk_set_contains(c->h[index], &key, 1) != m->has[k])
                return sim_fail(why, "set element %c differs", key);
        }
        return true;
    case K_VEC:
        if (mk_vec_len(c->h[index]) != m->n)
            return sim_fail(why, "vec has %zu elements, the model %zu",
                            mk_vec_len(c->h[index]), m->n);
        for (size_t i = 0; i < m->n; i++) {
            if (!mk_vec_get(c->h[index], i, &it) || it.val_len != 1 ||
                it.val[0] != m->v[i])
                return sim_fail(why, "vec[%zu] differs from the model's %c",
                                i, m->v[i]);
        }
        return true;
    case K_CELL: {
        bool found = mk_cell_get(c->h[index], &it);
        return one(&it, found, m->has[0], m->val[0], "cell", 0, why);
    }
    case K_ONCE: {
        bool found = mk_once_get(c->h[index], &it);
        return one(&it, found, m->has[0], m->val[0], "once", 0, why);
    }
    default:
        if (mk_pq_len(c->h[index]) != n)
            return sim_fail(why, "pq has %zu entries, the model %zu",
                            mk_pq_len(c->h[index]), n);
        for (int k = 0; k < KEYS; k++) {
            uint8_t key = key_of(k);
            bool found = mk_pq_get(c->h[index], &key, 1, &it);
            if (!one(&it, found, m->has[k], m->val[k], "pq key", k, why))
                return false;
            if (found && (it.prio_len != 1 || it.prio[0] != m->prio[k]))
                return sim_fail(why, "pq key %c: priority %u, the model %u",
                                key, it.prio_len ? it.prio[0] : 0,
                                m->prio[k]);
        }
        return true;
    }
}

#define COLL(var, label, setup_fn)                                         \
    const sim_machine var = {                                              \
        .name = label,                                                     \
        .setup = setup_fn,                                                 \
        .teardown = coll_teardown,                                         \
        .fsm_new = coll_new,                                               \
        .fsm_free = coll_free,                                             \
        .next_cmd = coll_next,                                             \
        .model_apply = coll_model,                                         \
        .check = coll_check,                                               \
    }

COLL(sim_map, "map", map_setup);
COLL(sim_set, "set", set_setup);
COLL(sim_vec, "vec", vec_setup);
COLL(sim_cell, "cell", cell_setup);
COLL(sim_once, "once", once_setup);
COLL(sim_pq, "pq", pq_setup);
