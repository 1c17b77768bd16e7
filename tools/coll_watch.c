/* `coalition KIND watch`: follow a collection with a replica and print
 * each change as it is applied (coll_cli.h).
 *
 * The replica runs a machine of the same kind (with the queue's capacity,
 * so it evicts as the members do) wrapped in a thin fsm that notes when
 * a command changed something. The collections do not say which items a
 * command touched, and their command encoding is theirs alone, so the
 * change is found by comparing the state with a copy of the previous
 * one: keyed kinds by key, positional ones by their common prefix and
 * suffix. That costs O(n) per changing command, fine for a human
 * watching a collection, not for following a large one at full rate
 * (a program should run its own mk_replica).
 *
 * A new replica first replays history (or starts from a snapshot); what
 * it applies before it has caught up with the member that welcomed it is
 * the starting point, not news, so printing starts there (a line
 * "watching ..." on stderr says when). A later reconnection is diffed as
 * one change.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coll_cli.h"
#include "mosaik/error.h"

/* An item we own: one allocation holding its bytes. */
typedef struct owned {
    mk_coll_item it;
    uint8_t *mem;
} owned;

typedef struct items {
    mk_coll_item *v;
    size_t n, cap;
} items;

typedef struct watcher {
    coll_run *r;
    const coll_kind_def *k;
    void *coll; /* mk_map *, mk_set *, ... */
    struct mk_fsm *inner;
    struct mk_fsm outer;
    mk_replica *rep;
    uv_signal_t sigint, sigterm;
    uv_timer_t deadline;
    owned *old;
    size_t n_old;
    bool baselined, dirty, done, closed;
    int apply_err;
    uint64_t count, seen, applied;
    int exit;
} watcher;

/* ---- the wrapped machine ----------------------------------------------------- */

static int w_apply(struct mk_fsm *f, const uint8_t *cmd, size_t len,
                   mk_buf *res)
{
    watcher *w = f->data;
    size_t at = res ? res->len : 0;
    int rc = w->inner->apply(w->inner, cmd, len, res);
    if (rc != 0) {
        w->apply_err = rc;
        return rc;
    }
    mk_coll_outcome oc;
    if (!res || mk_coll_outcome_decode(res->data + at, res->len - at, &oc) ||
        oc.changed || oc.evicted)
        w->dirty = true;
    return 0;
}

static int w_snapshot(struct mk_fsm *f, mk_buf *out)
{
    watcher *w = f->data;
    return w->inner->snapshot(w->inner, out);
}

static int w_restore(struct mk_fsm *f, const uint8_t *snap, size_t len)
{
    watcher *w = f->data;
    int rc = w->inner->restore(w->inner, snap, len);
    if (rc == 0)
        w->dirty = true;
    return rc;
}

static int w_query(struct mk_fsm *f, const uint8_t *q, size_t len,
                   mk_buf *res)
{
    watcher *w = f->data;
    return w->inner->query(w->inner, q, len, res);
}

static int make_coll(watcher *w)
{
    mk_coll_config cc = {.capacity = w->r->capacity};
    int rc = MK_EINVAL;
    switch (w->k->kind) {
#define MAKE(kind, t)                                                          \
    case kind: {                                                               \
        mk_##t *c;                                                             \
        if ((rc = mk_##t##_new(&cc, &c)) == 0) {                               \
            w->coll = c;                                                       \
            w->inner = mk_##t##_fsm(c);                                        \
        }                                                                      \
        break;                                                                 \
    }
        MAKE(COLL_MAP, map)
        MAKE(COLL_SET, set)
        MAKE(COLL_VEC, vec)
        MAKE(COLL_CELL, cell)
        MAKE(COLL_ONCE, once)
        MAKE(COLL_PQ, pq)
#undef MAKE
    }
    if (rc != 0)
        return rc;
    w->outer = (struct mk_fsm){
        .version = w->inner->version,
        .data = w,
        .signature = w->inner->signature,
        .apply = w_apply,
        .snapshot = w_snapshot,
        .restore = w_restore,
        .query = w->inner->query ? w_query : NULL,
    };
    return 0;
}

static void free_coll(watcher *w)
{
    switch (w->k->kind) {
    case COLL_MAP: mk_map_free(w->coll); break;
    case COLL_SET: mk_set_free(w->coll); break;
    case COLL_VEC: mk_vec_free(w->coll); break;
    case COLL_CELL: mk_cell_free(w->coll); break;
    case COLL_ONCE: mk_once_free(w->coll); break;
    case COLL_PQ: mk_pq_free(w->coll); break;
    }
}

/* ---- the state as a list ------------------------------------------------------ */

static int collect(const mk_coll_item *it, void *data)
{
    items *l = data;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        mk_coll_item *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return MK_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *it;
    return 0;
}

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static int by_key(const void *a, const void *b)
{
    const mk_coll_item *x = a, *y = b;
    return bytes_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* The current state, borrowed (valid until the next apply): keyed kinds
 * in key order. */
static int current(watcher *w, items *l)
{
    mk_coll_item one;
    switch (w->k->kind) {
    case COLL_MAP: return mk_map_foreach(w->coll, collect, l);
    case COLL_SET: return mk_set_foreach(w->coll, collect, l);
    case COLL_VEC: return mk_vec_foreach(w->coll, collect, l);
    case COLL_CELL:
        return mk_cell_get(w->coll, &one) ? collect(&one, l) : 0;
    case COLL_ONCE:
        return mk_once_get(w->coll, &one) ? collect(&one, l) : 0;
    case COLL_PQ: {
        int rc = mk_pq_foreach(w->coll, false, collect, l);
        if (rc == 0 && l->n > 1)
            qsort(l->v, l->n, sizeof *l->v, by_key);
        return rc;
    }
    }
    return MK_EINVAL;
}

static void drop_old(watcher *w)
{
    for (size_t i = 0; i < w->n_old; i++)
        free(w->old[i].mem);
    free(w->old);
    w->old = NULL;
    w->n_old = 0;
}

/* Replaces the copy of the previous state by `l`. */
static int keep(watcher *w, const items *l)
{
    owned *o = calloc(l->n ? l->n : 1, sizeof *o);
    if (!o)
        return MK_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        const mk_coll_item *it = &l->v[i];
        size_t n = it->prio_len + it->key_len + it->val_len;
        uint8_t *m = malloc(n ? n : 1);
        if (!m) {
            while (i--)
                free(o[i].mem);
            free(o);
            return MK_ENOMEM;
        }
        if (it->prio_len)
            memcpy(m, it->prio, it->prio_len);
        if (it->key_len)
            memcpy(m + it->prio_len, it->key, it->key_len);
        if (it->val_len)
            memcpy(m + it->prio_len + it->key_len, it->val, it->val_len);
        o[i].mem = m;
        o[i].it = (mk_coll_item){
            .prio = m, .prio_len = it->prio_len,
            .key = m + it->prio_len, .key_len = it->key_len,
            .val = m + it->prio_len + it->key_len, .val_len = it->val_len,
        };
    }
    drop_old(w);
    w->old = o;
    w->n_old = l->n;
    return 0;
}

/* ---- printing changes ----------------------------------------------------------- */

static void event(watcher *w, const char *op, const mk_coll_item *it,
                  uint64_t index, unsigned fields)
{
    if (w->done)
        return;
    const coll_out *o = &w->r->out;
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "op", json_string(op));
        json_object_set_new(j, "applied", json_integer((json_int_t)w->applied));
        if (fields & COLL_F_INDEX)
            json_object_set_new(j, "index", json_integer((json_int_t)index));
        if (fields & COLL_F_PRIO)
            coll_json_bytes(o, j, "prio", it->prio, it->prio_len);
        if (fields & COLL_F_KEY)
            coll_json_bytes(o, j, o->k->key_name, it->key, it->key_len);
        if (fields & COLL_F_VAL)
            coll_json_bytes(o, j, "value", it->val, it->val_len);
        coll_print_json(j);
    } else {
        coll_print_item(o, op, it, index, fields);
    }
    if (w->count && ++w->seen >= w->count) {
        w->done = true;
        w->exit = CLI_OK;
    }
}

static bool same(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static void diff_keyed(watcher *w, const items *l)
{
    bool is_set = w->k->kind == COLL_SET;
    const char *put = is_set ? "add" : "put", *del = is_set ? "remove" : "del";
    unsigned all = w->k->fields;
    size_t i = 0, j = 0;
    while (i < w->n_old || j < l->n) {
        const mk_coll_item *a = i < w->n_old ? &w->old[i].it : NULL;
        const mk_coll_item *b = j < l->n ? &l->v[j] : NULL;
        int c = !a ? 1 : !b ? -1
                            : bytes_cmp(a->key, a->key_len, b->key,
                                        b->key_len);
        if (c < 0) {
            event(w, del, a, 0, COLL_F_KEY);
            i++;
        } else if (c > 0) {
            event(w, put, b, 0, all);
            j++;
        } else {
            if (!same(a->val, a->val_len, b->val, b->val_len) ||
                !same(a->prio, a->prio_len, b->prio, b->prio_len))
                event(w, put, b, 0, all);
            i++;
            j++;
        }
    }
}

static void diff_positional(watcher *w, const items *l)
{
    size_t p = 0, s = 0, no = w->n_old, nn = l->n;
    while (p < no && p < nn &&
           same(w->old[p].it.val, w->old[p].it.val_len, l->v[p].val,
                l->v[p].val_len))
        p++;
    while (s < no - p && s < nn - p &&
           same(w->old[no - 1 - s].it.val, w->old[no - 1 - s].it.val_len,
                l->v[nn - 1 - s].val, l->v[nn - 1 - s].val_len))
        s++;
    if (w->k->kind != COLL_VEC) {
        if (nn > 0 && p == 0)
            event(w, "set", &l->v[0], 0, COLL_F_VAL);
        else if (nn == 0 && no > 0)
            event(w, "clear", &w->old[0].it, 0, 0);
        return;
    }
    /* Removals from the last, so each index is where the item was. */
    for (size_t i = no - s; i-- > p;)
        event(w, "remove", &w->old[i].it, i, COLL_F_INDEX | COLL_F_VAL);
    for (size_t i = p; i < nn - s; i++)
        event(w, "insert", &l->v[i], i, COLL_F_INDEX | COLL_F_VAL);
}

static void stop(watcher *w, int exit)
{
    if (!w->done) {
        w->done = true;
        w->exit = exit;
    }
}

static void on_replica(mk_replica *rep, void *data)
{
    watcher *w = data;
    if (w->apply_err) {
        stop(w, cli_error(CLI_FAIL,
                          "watch: a command did not apply here (%s); is the "
                          "group a %s%s?",
                          mk_err_name(w->apply_err), w->k->name,
                          w->k->kind == COLL_PQ ? " of that capacity" : ""));
        return;
    }
    if (mk_replica_error(rep) == MK_EMSGSIZE && !w->done) {
        char hex[MK_ID_HEX_LEN + 1];
        stop(w, cli_error(CLI_FAIL,
                          "watch: the state of %s is larger than one link "
                          "frame (16 MiB), so no member can send it whole, "
                          "and this watch is behind the recent commands "
                          "they keep: it cannot start",
                          mk_id_hex(&w->r->gid, hex)));
        return;
    }
    if (w->done || !mk_replica_caught_up(rep))
        return;
    w->applied = mk_replica_applied(rep);
    if (w->baselined && !w->dirty)
        return;
    items l = {0};
    int rc = current(w, &l);
    if (rc == 0 && w->baselined) {
        if (w->k->kind == COLL_VEC || w->k->kind == COLL_CELL ||
            w->k->kind == COLL_ONCE)
            diff_positional(w, &l);
        else
            diff_keyed(w, &l);
    }
    if (rc == 0)
        rc = keep(w, &l);
    free(l.v);
    if (rc != 0) {
        stop(w, cli_error(CLI_FAIL, "watch: %s", mk_strerror(rc)));
        return;
    }
    w->dirty = false;
    if (!w->baselined) {
        char hex[MK_ID_HEX_LEN + 1];
        w->baselined = true;
        uv_timer_stop(&w->deadline);
        fprintf(stderr, "coalition: watching %s %s from applied %llu\n",
                w->k->name, mk_id_hex(&w->r->gid, hex),
                (unsigned long long)w->applied);
    }
}

static void on_signal(uv_signal_t *h, int sig)
{
    (void)sig;
    stop(h->data, CLI_OK);
}

static void on_deadline(uv_timer_t *t)
{
    watcher *w = t->data;
    char hex[MK_ID_HEX_LEN + 1];
    stop(w, cli_error(CLI_TIMEOUT, "watch: no member of %s answered",
                      mk_id_hex(&w->r->gid, hex)));
}

static void on_replica_closed(void *data)
{
    watcher *w = data;
    w->closed = true;
}

int coll_watch(coll_run *r, uint64_t count)
{
    watcher w = {.r = r, .k = r->out.k, .count = count};
    if (make_coll(&w) != 0)
        return cli_error(CLI_FAIL, "watch: out of memory");
    mk_replica_config rc = {.node = r->s.node, .group = r->gid,
                            .fsm = &w.outer};
    if (mk_replica_open(&rc, &w.rep) != 0) {
        free_coll(&w);
        return cli_error(CLI_FAIL, "watch: cannot open a replica");
    }
    mk_replica_watch(w.rep, on_replica, &w);
    uv_signal_init(&r->s.loop, &w.sigint);
    uv_signal_init(&r->s.loop, &w.sigterm);
    w.sigint.data = w.sigterm.data = &w;
    uv_signal_start(&w.sigint, on_signal, SIGINT);
    uv_signal_start(&w.sigterm, on_signal, SIGTERM);
    uv_timer_init(&r->s.loop, &w.deadline);
    w.deadline.data = &w;
    uv_timer_start(&w.deadline, on_deadline, r->timeout_ms, 0);
    while (!w.done)
        uv_run(&r->s.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&w.sigint, NULL);
    uv_close((uv_handle_t *)&w.sigterm, NULL);
    uv_close((uv_handle_t *)&w.deadline, NULL);
    mk_replica_close(w.rep, on_replica_closed, &w);
    while (!w.closed)
        uv_run(&r->s.loop, UV_RUN_ONCE);
    free_coll(&w);
    drop_old(&w);
    return w.exit;
}
