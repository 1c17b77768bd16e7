/* PriorityQueue: a replicated double-ended priority queue over unique
 * keys (mosaik.md §6.2, "depq"), optionally bounded.
 *
 * Each entry (prio, key, val) sits in two trees at once: by key, for
 * upserts, updates and removals by key; and by (prio, key), for min, max,
 * ordered iteration, range removal and eviction. Ordering by (prio, key)
 * rather than by prio alone makes every choice mosaik leaves arbitrary
 * (which entry of the extreme bucket get_min/get_max return, which one a
 * bounded queue evicts) the same on every replica.
 *
 * Every apply() decodes and validates, allocates any new entry and room
 * for the result, and only then relinks; so it happens entirely or not at
 * all. (mosaik's CompareExchangeValue also miscounts a mismatched CAS in
 * its batch, shifting the next snapshot's anchor, Appendix D.4; here a
 * command is one apply() with no counter to get wrong.)
 */
#include <stdlib.h>
#include <string.h>

#include "coll_internal.h"
#include "mosaik/error.h"

enum {
    OP_CLEAR = MK__CMD(MK__KIND_PQ, 0),
    OP_INSERT = MK__CMD(MK__KIND_PQ, 1),
    OP_EXTEND = MK__CMD(MK__KIND_PQ, 2),
    OP_UPDATE_PRIORITY = MK__CMD(MK__KIND_PQ, 3),
    OP_UPDATE_VALUE = MK__CMD(MK__KIND_PQ, 4),
    OP_CAS_VALUE = MK__CMD(MK__KIND_PQ, 5),
    OP_REMOVE_KEYS = MK__CMD(MK__KIND_PQ, 6),
    OP_REMOVE_RANGE = MK__CMD(MK__KIND_PQ, 7),
    Q_LEN = MK__QUERY(MK__KIND_PQ, 0),
    Q_GET = MK__QUERY(MK__KIND_PQ, 1),
    Q_MIN = MK__QUERY(MK__KIND_PQ, 2),
    Q_MAX = MK__QUERY(MK__KIND_PQ, 3),
    Q_PAGE = MK__QUERY(MK__KIND_PQ, 4),
};

/* Range bounds on the wire. */
enum { BOUND_NONE = 0, BOUND_INCL = 1, BOUND_EXCL = 2 };

typedef struct entry {
    mk__node by_key;
    mk__node by_prio;
    size_t mark; /* scratch for snapshot() and restore() */
    size_t plen, klen, vlen;
    uint8_t bytes[]; /* prio, key, value */
} entry;

struct mk_pq {
    struct mk_fsm fsm;
    mk__tree by_key;
    mk__tree by_prio;
    uint64_t cap;  /* 0: unbounded */
    size_t bytes;  /* prio, key and value bytes held: sizes the snapshot */
};

static const uint8_t *prio_of(const entry *e)
{
    return e->bytes;
}

static const uint8_t *key_of(const entry *e)
{
    return e->bytes + e->plen;
}

static const uint8_t *val_of(const entry *e)
{
    return e->bytes + e->plen + e->klen;
}

static entry *entry_new(const uint8_t *p, size_t plen, const uint8_t *k,
                        size_t klen, const uint8_t *v, size_t vlen)
{
    size_t room = SIZE_MAX - sizeof(entry);
    if (plen > room || klen > room - plen || vlen > room - plen - klen)
        return NULL;
    entry *e = malloc(sizeof *e + plen + klen + vlen);
    if (!e)
        return NULL;
    e->mark = 0;
    e->plen = plen;
    e->klen = klen;
    e->vlen = vlen;
    if (plen)
        memcpy(e->bytes, p, plen);
    if (klen)
        memcpy(e->bytes + plen, k, klen);
    if (vlen)
        memcpy(e->bytes + plen + klen, v, vlen);
    return e;
}

static entry *by_key_entry(const mk__node *n)
{
    return MK__CONTAINER_OF(n, entry, by_key);
}

static entry *by_prio_entry(const mk__node *n)
{
    return MK__CONTAINER_OF(n, entry, by_prio);
}

/* A probe in (prio, key) order; `key_inf` -1 or +1 stands for a key below
 * or above every key, so a probe can sit just before or after a whole
 * priority bucket. */
typedef struct pk_probe {
    const uint8_t *prio;
    size_t plen;
    const uint8_t *key;
    size_t klen;
    int key_inf;
} pk_probe;

static int cmp_key(const void *probe, const mk__node *n)
{
    const mk__probe *p = probe;
    const entry *e = by_key_entry(n);
    return mk__bytes_cmp(p->p, p->len, key_of(e), e->klen);
}

static int cmp_prio(const void *probe, const mk__node *n)
{
    const pk_probe *p = probe;
    const entry *e = by_prio_entry(n);
    int c = mk__bytes_cmp(p->prio, p->plen, prio_of(e), e->plen);
    if (c)
        return c;
    if (p->key_inf)
        return p->key_inf;
    return mk__bytes_cmp(p->key, p->klen, key_of(e), e->klen);
}

static pk_probe probe_of(const entry *e)
{
    pk_probe p = {prio_of(e), e->plen, key_of(e), e->klen, 0};
    return p;
}

static void fill(const entry *e, mk_coll_item *out)
{
    out->prio = prio_of(e);
    out->prio_len = e->plen;
    out->key = key_of(e);
    out->key_len = e->klen;
    out->val = val_of(e);
    out->val_len = e->vlen;
}

static entry *find(const mk_pq *q, const uint8_t *key, size_t klen)
{
    mk__probe p = {key, klen};
    mk__node *n = mk__tree_find(&q->by_key, &p);
    return n ? by_key_entry(n) : NULL;
}

/* ---- linking (cannot fail) ----------------------------------------------- */

static void link_entry(mk_pq *q, entry *e)
{
    mk__probe kp = {key_of(e), e->klen};
    pk_probe pp = probe_of(e);
    mk__tree_put(&q->by_key, &kp, &e->by_key);
    mk__tree_put(&q->by_prio, &pp, &e->by_prio);
    q->bytes += e->plen + e->klen + e->vlen;
}

static void unlink_entry(mk_pq *q, entry *e)
{
    mk__probe kp = {key_of(e), e->klen};
    pk_probe pp = probe_of(e);
    mk__tree_remove(&q->by_key, &kp);
    mk__tree_remove(&q->by_prio, &pp);
    q->bytes -= e->plen + e->klen + e->vlen;
}

static void drop_entry(mk_pq *q, entry *e)
{
    unlink_entry(q, e);
    free(e);
}

/* Puts `e` in place of `old` (same key). */
static void replace(mk_pq *q, entry *old, entry *e)
{
    drop_entry(q, old);
    link_entry(q, e);
}

/* While over capacity, evicts the minimum: the smallest key of the lowest
 * priority. Returns how many went. */
static uint64_t evict(mk_pq *q)
{
    uint64_t n = 0;
    while (q->cap && q->by_prio.len > q->cap) {
        drop_entry(q, by_prio_entry(mk__tree_first(&q->by_prio)));
        n++;
    }
    return n;
}

/* Upserts `e`; returns how many entries the bound evicted. */
static uint64_t upsert(mk_pq *q, entry *e)
{
    entry *old = find(q, key_of(e), e->klen);
    if (old) {
        replace(q, old, e);
        return 0; /* same length: an upsert of a present key never evicts */
    }
    link_entry(q, e);
    return evict(q);
}

static void free_by_key(mk__node *n)
{
    free(by_key_entry(n));
}

static void clear_all(mk_pq *q)
{
    /* Every entry is in both trees: forget one, free through the other. */
    mk__tree_init(&q->by_prio, cmp_prio);
    mk__tree_drain(&q->by_key, free_by_key);
    q->bytes = 0;
}

/* ---- commands ------------------------------------------------------------ */

int mk_pq_cmd_insert(mk_buf *out, const void *prio, size_t plen,
                     const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    mk_put_u8(out, OP_INSERT);
    mk_put_bytes(out, prio, plen);
    mk_put_bytes(out, key, klen);
    mk_put_bytes(out, val, vlen);
    return out->err;
}

int mk_pq_cmd_extend(mk_buf *out, const mk_coll_item *entries, size_t n)
{
    mk_put_u8(out, OP_EXTEND);
    mk_put_varint(out, n);
    for (size_t i = 0; i < n; i++) {
        mk_put_bytes(out, entries[i].prio, entries[i].prio_len);
        mk_put_bytes(out, entries[i].key, entries[i].key_len);
        mk_put_bytes(out, entries[i].val, entries[i].val_len);
    }
    return out->err;
}

int mk_pq_cmd_update_priority(mk_buf *out, const void *key, size_t klen,
                              const void *prio, size_t plen)
{
    mk_put_u8(out, OP_UPDATE_PRIORITY);
    mk_put_bytes(out, key, klen);
    mk_put_bytes(out, prio, plen);
    return out->err;
}

int mk_pq_cmd_update_value(mk_buf *out, const void *key, size_t klen,
                           const void *val, size_t vlen)
{
    mk_put_u8(out, OP_UPDATE_VALUE);
    mk_put_bytes(out, key, klen);
    mk_put_bytes(out, val, vlen);
    return out->err;
}

int mk_pq_cmd_cas_value(mk_buf *out, const void *key, size_t klen,
                        const void *expected, size_t elen,
                        const mk_coll_bytes *desired)
{
    mk_put_u8(out, OP_CAS_VALUE);
    mk_put_bytes(out, key, klen);
    mk_put_bytes(out, expected, elen);
    mk__put_opt(out, desired);
    return out->err;
}

int mk_pq_cmd_remove(mk_buf *out, const void *key, size_t klen)
{
    mk_put_u8(out, OP_REMOVE_KEYS);
    mk_put_varint(out, 1);
    mk_put_bytes(out, key, klen);
    return out->err;
}

int mk_pq_cmd_remove_keys(mk_buf *out, const mk_coll_item *keys, size_t n)
{
    mk_put_u8(out, OP_REMOVE_KEYS);
    mk_put_varint(out, n);
    for (size_t i = 0; i < n; i++)
        mk_put_bytes(out, keys[i].key, keys[i].key_len);
    return out->err;
}

static void put_bound(mk_buf *out, const mk_pq_bound *b)
{
    if (!b) {
        mk_put_u8(out, BOUND_NONE);
        return;
    }
    mk_put_u8(out, b->inclusive ? BOUND_INCL : BOUND_EXCL);
    mk_put_bytes(out, b->prio, b->len);
}

int mk_pq_cmd_remove_range(mk_buf *out, const mk_pq_bound *lo,
                           const mk_pq_bound *hi)
{
    mk_put_u8(out, OP_REMOVE_RANGE);
    put_bound(out, lo);
    put_bound(out, hi);
    return out->err;
}

int mk_pq_cmd_clear(mk_buf *out)
{
    mk_put_u8(out, OP_CLEAR);
    return out->err;
}

/* ---- apply ----------------------------------------------------------------- */

static int nothing(mk_buf *res)
{
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    mk__put_outcome(res, 0, 0, NULL, 0);
    return 0;
}

static int apply_insert(mk_pq *q, mk_reader *r, mk_buf *res)
{
    size_t plen, klen, vlen;
    const uint8_t *p = mk_get_bytes(r, &plen, SIZE_MAX);
    const uint8_t *k = mk_get_bytes(r, &klen, SIZE_MAX);
    const uint8_t *v = mk_get_bytes(r, &vlen, SIZE_MAX);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    entry *e = entry_new(p, plen, k, klen, v, vlen);
    if (!e || mk__outcome_reserve(res, 0) != 0) {
        free(e);
        return MK_ENOMEM;
    }
    uint64_t evicted = upsert(q, e);
    mk__put_outcome(res, 1, evicted, NULL, 0);
    return 0;
}

static int apply_extend(mk_pq *q, mk_reader *r, mk_buf *res)
{
    size_t n = mk_get_count(r, SIZE_MAX, 3);
    size_t at = r->at, plen, klen, vlen;
    for (size_t i = 0; i < n && !r->err; i++) {
        mk_get_bytes(r, &plen, SIZE_MAX);
        mk_get_bytes(r, &klen, SIZE_MAX);
        mk_get_bytes(r, &vlen, SIZE_MAX);
    }
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    if (n == 0)
        return nothing(res);
    entry **es = calloc(n, sizeof *es);
    if (!es)
        return MK_ENOMEM;
    r->at = at;
    size_t made = 0;
    for (; made < n; made++) {
        const uint8_t *p = mk_get_bytes(r, &plen, SIZE_MAX);
        const uint8_t *k = mk_get_bytes(r, &klen, SIZE_MAX);
        const uint8_t *v = mk_get_bytes(r, &vlen, SIZE_MAX);
        if (!(es[made] = entry_new(p, plen, k, klen, v, vlen)))
            break;
    }
    if (made < n || mk__outcome_reserve(res, 0) != 0) {
        for (size_t i = 0; i < made; i++)
            free(es[i]);
        free(es);
        return MK_ENOMEM;
    }
    /* One insert after another, evicting after each: the same state as n
     * separate inserts. */
    uint64_t evicted = 0;
    for (size_t i = 0; i < n; i++)
        evicted += upsert(q, es[i]);
    free(es);
    mk__put_outcome(res, n, evicted, NULL, 0);
    return 0;
}

/* update_priority, update_value and cas_value: replace a present entry by
 * a new one built from it. */
static int apply_update(mk_pq *q, mk_reader *r, uint8_t op, mk_buf *res)
{
    size_t klen, alen, dlen = 0;
    bool has_des = true;
    const uint8_t *k = mk_get_bytes(r, &klen, SIZE_MAX);
    const uint8_t *a = mk_get_bytes(r, &alen, SIZE_MAX);
    const uint8_t *d = NULL;
    if (op == OP_CAS_VALUE)
        d = mk__get_opt(r, &has_des, &dlen);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    entry *old = find(q, k, klen);
    if (!old)
        return nothing(res);
    if (op == OP_CAS_VALUE &&
        mk__bytes_cmp(val_of(old), old->vlen, a, alen) != 0)
        return nothing(res);
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    if (!has_des) {
        drop_entry(q, old); /* CAS to None removes the entry */
        mk__put_outcome(res, 1, 0, NULL, 0);
        return 0;
    }
    entry *e;
    if (op == OP_UPDATE_PRIORITY)
        e = entry_new(a, alen, k, klen, val_of(old), old->vlen);
    else if (op == OP_UPDATE_VALUE)
        e = entry_new(prio_of(old), old->plen, k, klen, a, alen);
    else
        e = entry_new(prio_of(old), old->plen, k, klen, d, dlen);
    if (!e)
        return MK_ENOMEM;
    replace(q, old, e);
    mk__put_outcome(res, 1, 0, NULL, 0);
    return 0;
}

static int apply_remove_keys(mk_pq *q, mk_reader *r, mk_buf *res)
{
    size_t n = mk_get_count(r, SIZE_MAX, 1);
    size_t at = r->at, klen;
    for (size_t i = 0; i < n && !r->err; i++)
        mk_get_bytes(r, &klen, SIZE_MAX);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    r->at = at;
    uint64_t removed = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k = mk_get_bytes(r, &klen, SIZE_MAX);
        entry *e = find(q, k, klen);
        if (e) {
            drop_entry(q, e);
            removed++;
        }
    }
    mk__put_outcome(res, removed, 0, NULL, 0);
    return 0;
}

typedef struct bound {
    uint8_t kind;
    const uint8_t *p;
    size_t len;
} bound;

static void get_bound(mk_reader *r, bound *b)
{
    b->kind = mk_get_u8(r);
    b->p = NULL;
    b->len = 0;
    if (r->err)
        return;
    if (b->kind > BOUND_EXCL)
        r->err = MK_EDECODE;
    else if (b->kind != BOUND_NONE)
        b->p = mk_get_bytes(r, &b->len, SIZE_MAX);
}

/* True when `e`'s priority is not past the upper bound. */
static bool below(const bound *hi, const entry *e)
{
    if (hi->kind == BOUND_NONE)
        return true;
    int c = mk__bytes_cmp(prio_of(e), e->plen, hi->p, hi->len);
    return hi->kind == BOUND_INCL ? c <= 0 : c < 0;
}

static int apply_remove_range(mk_pq *q, mk_reader *r, mk_buf *res)
{
    bound lo, hi;
    get_bound(r, &lo);
    get_bound(r, &hi);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    /* An inverted range removes nothing (Rust's BTreeMap::range would
     * panic on it). The loop needs no check for that: its first
     * candidate, at or above `lo`, is already past `hi`. */
    pk_probe start = {lo.p, lo.len, NULL, 0,
                      lo.kind == BOUND_EXCL ? 1 : -1};
    uint64_t removed = 0;
    for (;;) {
        /* Seek afresh after each removal: O(log n) each, no allocation. */
        mk__node *n = lo.kind == BOUND_NONE
                          ? mk__tree_first(&q->by_prio)
                          : mk__tree_seek(&q->by_prio, &start, MK__GT);
        if (!n || !below(&hi, by_prio_entry(n)))
            break;
        drop_entry(q, by_prio_entry(n));
        removed++;
    }
    mk__put_outcome(res, removed, 0, NULL, 0);
    return 0;
}

static int pq_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                    mk_buf *res)
{
    mk_pq *q = fsm->data;
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    uint8_t op = mk_get_u8(&r);
    if (r.err)
        return r.err;
    switch (op) {
    case OP_INSERT:
        return apply_insert(q, &r, res);
    case OP_EXTEND:
        return apply_extend(q, &r, res);
    case OP_UPDATE_PRIORITY:
    case OP_UPDATE_VALUE:
    case OP_CAS_VALUE:
        return apply_update(q, &r, op, res);
    case OP_REMOVE_KEYS:
        return apply_remove_keys(q, &r, res);
    case OP_REMOVE_RANGE:
        return apply_remove_range(q, &r, res);
    case OP_CLEAR: {
        int rc = mk_reader_done(&r);
        if (rc)
            return rc;
        if (mk__outcome_reserve(res, 0) != 0)
            return MK_ENOMEM;
        uint64_t n = q->by_key.len;
        clear_all(q);
        mk__put_outcome(res, n, 0, NULL, 0);
        return 0;
    }
    default:
        return MK_EDECODE;
    }
}

/* ---- snapshots ----------------------------------------------------------
 *
 * u8 tag, u8 version, varint count,
 *   count × (bytes prio, bytes key, bytes value) in strictly increasing
 *           (prio, key) order,
 *   count × varint: for each entry in key order, its position above.
 *
 * The permutation costs a few bytes per entry and lets restore() build
 * both trees from sorted runs in O(n) instead of sorting. restore()
 * checks both orders are strict and the permutation is one, so the
 * snapshot of a state is unique.
 */

typedef struct snap_ctx {
    mk_buf *out;
    size_t next;
} snap_ctx;

static int snap_entry(mk__node *n, void *data)
{
    snap_ctx *c = data;
    entry *e = by_prio_entry(n);
    e->mark = c->next++;
    mk_put_bytes(c->out, prio_of(e), e->plen);
    mk_put_bytes(c->out, key_of(e), e->klen);
    mk_put_bytes(c->out, val_of(e), e->vlen);
    return 0;
}

static int snap_perm(mk__node *n, void *data)
{
    snap_ctx *c = data;
    mk_put_varint(c->out, by_key_entry(n)->mark);
    return 0;
}

static int pq_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    mk_pq *q = fsm->data;
    size_t n = q->by_key.len;
    if (n > (SIZE_MAX - q->bytes - 16) / 40 ||
        mk_buf_reserve(out, 16 + q->bytes + 40 * n) != 0)
        return MK_ENOMEM;
    mk__put_snap_header(out, MK__KIND_PQ);
    mk_put_varint(out, n);
    snap_ctx c = {out, 0};
    mk__tree_walk(&q->by_prio, false, snap_entry, &c);
    mk__tree_walk(&q->by_key, false, snap_perm, &c);
    return out->err;
}

static int pq_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    mk_pq *q = fsm->data;
    mk_reader r;
    mk_reader_init(&r, snap, len);
    mk__get_snap_header(&r, MK__KIND_PQ);
    /* Each entry takes at least three length bytes and one index byte. */
    size_t n = mk_get_count(&r, SIZE_MAX, 4);
    if (!r.err && q->cap && n > q->cap)
        r.err = MK_EDECODE; /* more than a bounded queue can hold */
    if (r.err)
        return r.err;
    entry **es = NULL;
    mk__node **prio_nodes = NULL, **key_nodes = NULL;
    size_t made = 0;
    int rc = 0;
    if (n) {
        es = calloc(n, sizeof *es);
        prio_nodes = calloc(n, sizeof *prio_nodes);
        key_nodes = calloc(n, sizeof *key_nodes);
        if (!es || !prio_nodes || !key_nodes) {
            rc = MK_ENOMEM;
            goto out;
        }
    }
    for (; made < n; made++) {
        size_t plen, klen, vlen;
        const uint8_t *p = mk_get_bytes(&r, &plen, SIZE_MAX);
        const uint8_t *k = mk_get_bytes(&r, &klen, SIZE_MAX);
        const uint8_t *v = mk_get_bytes(&r, &vlen, SIZE_MAX);
        if (r.err) {
            rc = r.err;
            goto out;
        }
        if (made) {
            pk_probe pp = {p, plen, k, klen, 0};
            if (cmp_prio(&pp, &es[made - 1]->by_prio) <= 0) {
                rc = MK_EDECODE;
                goto out;
            }
        }
        if (!(es[made] = entry_new(p, plen, k, klen, v, vlen))) {
            rc = MK_ENOMEM;
            goto out;
        }
        prio_nodes[made] = &es[made]->by_prio;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t j = mk_get_varint(&r);
        if (r.err || j >= n || es[j]->mark) {
            rc = MK_EDECODE; /* out of range or used twice */
            goto out;
        }
        es[j]->mark = 1;
        key_nodes[i] = &es[j]->by_key;
        if (i) {
            const entry *prev = by_key_entry(key_nodes[i - 1]);
            mk__probe kp = {key_of(prev), prev->klen};
            if (cmp_key(&kp, key_nodes[i]) >= 0) {
                rc = MK_EDECODE; /* keys out of order or repeated */
                goto out;
            }
        }
    }
    if ((rc = mk_reader_done(&r)) != 0)
        goto out;
    clear_all(q);
    mk__tree_build(&q->by_prio, prio_nodes, n);
    mk__tree_build(&q->by_key, key_nodes, n);
    q->bytes = 0;
    for (size_t i = 0; i < n; i++)
        q->bytes += es[i]->plen + es[i]->klen + es[i]->vlen;
    made = 0; /* the entries are the state's now */
out:
    for (size_t i = 0; i < made; i++)
        free(es[i]);
    free(es);
    free(prio_nodes);
    free(key_nodes);
    return rc;
}

/* ---- queries ------------------------------------------------------------- */

int mk_pq_query_get(mk_buf *out, const void *key, size_t klen)
{
    mk_put_u8(out, Q_GET);
    mk_put_bytes(out, key, klen);
    return out->err;
}

int mk_pq_query_min(mk_buf *out)
{
    mk_put_u8(out, Q_MIN);
    return out->err;
}

int mk_pq_query_max(mk_buf *out)
{
    mk_put_u8(out, Q_MAX);
    return out->err;
}

int mk_pq_query_len(mk_buf *out)
{
    mk_put_u8(out, Q_LEN);
    return out->err;
}

int mk_pq_query_page(mk_buf *out, const mk_coll_item *after,
                     bool descending, uint32_t limit)
{
    mk_put_u8(out, Q_PAGE);
    mk_put_u8(out, after ? 1 : 0);
    if (after) {
        mk_put_bytes(out, after->prio, after->prio_len);
        mk_put_bytes(out, after->key, after->key_len);
    }
    mk_put_u8(out, descending ? 1 : 0);
    mk_put_varint(out, limit);
    return out->err;
}

static int pq_query(struct mk_fsm *fsm, const uint8_t *qb, size_t len,
                    mk_buf *out)
{
    const mk_pq *q = fsm->data;
    mk_reader r;
    mk_reader_init(&r, qb, len);
    uint8_t op = mk_get_u8(&r);
    mk_coll_item it;
    const unsigned all = MK__ITEM_PRIO | MK__ITEM_KEY | MK__ITEM_VAL;
    bool found;
    int rc;
    switch (op) {
    case Q_LEN:
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        mk__put_len_reply(out, q->by_key.len);
        return out->err;
    case Q_GET: {
        size_t klen;
        const uint8_t *k = mk_get_bytes(&r, &klen, SIZE_MAX);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        found = mk_pq_get(q, k, klen, &it);
        mk__put_item(out, found ? MK__ITEM_FOUND | all : 0, &it);
        return out->err;
    }
    case Q_MIN:
    case Q_MAX:
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        found = op == Q_MIN ? mk_pq_min(q, &it) : mk_pq_max(q, &it);
        mk__put_item(out, found ? MK__ITEM_FOUND | all : 0, &it);
        return out->err;
    case Q_PAGE: {
        uint8_t has_after = mk_get_u8(&r);
        mk_coll_item after;
        memset(&after, 0, sizeof after);
        if (!r.err && has_after > 1)
            return MK_EDECODE;
        if (has_after) {
            after.prio = mk_get_bytes(&r, &after.prio_len, SIZE_MAX);
            after.key = mk_get_bytes(&r, &after.key_len, SIZE_MAX);
        }
        uint8_t desc = mk_get_u8(&r);
        uint64_t limit = mk_get_varint(&r);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        if (desc > 1)
            return MK_EDECODE;
        mk__page pg;
        mk__page_begin(&pg, out, all, limit);
        bool more = false;
        bool ok = mk_pq_next(q, has_after ? &after : NULL, desc, &it);
        while (ok) {
            if (!mk__page_add(&pg, &it)) {
                more = true;
                break;
            }
            after = it;
            ok = mk_pq_next(q, &after, desc, &it);
        }
        return mk__page_end(&pg, more);
    }
    default:
        return MK_EDECODE;
    }
}

/* ---- local reads --------------------------------------------------------- */

size_t mk_pq_len(const mk_pq *q)
{
    return q->by_key.len;
}

uint64_t mk_pq_capacity(const mk_pq *q)
{
    return q->cap;
}

static bool found_entry(const entry *e, mk_coll_item *out)
{
    if (!e) {
        memset(out, 0, sizeof *out);
        return false;
    }
    fill(e, out);
    return true;
}

bool mk_pq_get(const mk_pq *q, const void *key, size_t klen,
               mk_coll_item *out)
{
    return found_entry(find(q, key, klen), out);
}

bool mk_pq_contains(const mk_pq *q, const void *key, size_t klen)
{
    return find(q, key, klen) != NULL;
}

static bool found_node(const mk__node *n, mk_coll_item *out)
{
    return found_entry(n ? by_prio_entry(n) : NULL, out);
}

bool mk_pq_min(const mk_pq *q, mk_coll_item *out)
{
    return found_node(mk__tree_first(&q->by_prio), out);
}

bool mk_pq_max(const mk_pq *q, mk_coll_item *out)
{
    return found_node(mk__tree_last(&q->by_prio), out);
}

bool mk_pq_next(const mk_pq *q, const mk_coll_item *after, bool descending,
                mk_coll_item *out)
{
    if (!after)
        return descending ? mk_pq_max(q, out) : mk_pq_min(q, out);
    pk_probe p = {after->prio, after->prio_len, after->key, after->key_len,
                  0};
    return found_node(
        mk__tree_seek(&q->by_prio, &p, descending ? MK__LT : MK__GT), out);
}

typedef struct visit {
    mk_coll_visit_cb cb;
    void *data;
} visit;

static int visit_node(mk__node *n, void *data)
{
    const visit *v = data;
    mk_coll_item it;
    fill(by_prio_entry(n), &it);
    return v->cb(&it, v->data);
}

int mk_pq_foreach(const mk_pq *q, bool descending, mk_coll_visit_cb cb,
                  void *data)
{
    visit v = {cb, data};
    return mk__tree_walk(&q->by_prio, descending, visit_node, &v);
}

/* ---- lifetime ------------------------------------------------------------ */

int mk_pq_new(const mk_coll_config *cfg, mk_pq **out)
{
    mk_pq *q = calloc(1, sizeof *q);
    *out = NULL;
    if (!q)
        return MK_ENOMEM;
    mk__tree_init(&q->by_key, cmp_key);
    mk__tree_init(&q->by_prio, cmp_prio);
    q->cap = cfg->capacity;
    q->fsm.version = MK_FSM_VERSION;
    q->fsm.data = q;
    mk__coll_signature(&q->fsm.signature, "depq", cfg, true);
    q->fsm.apply = pq_apply;
    q->fsm.snapshot = pq_snapshot;
    q->fsm.restore = pq_restore;
    q->fsm.query = pq_query;
    *out = q;
    return 0;
}

void mk_pq_free(mk_pq *q)
{
    if (!q)
        return;
    clear_all(q);
    free(q);
}

struct mk_fsm *mk_pq_fsm(mk_pq *q)
{
    return &q->fsm;
}
