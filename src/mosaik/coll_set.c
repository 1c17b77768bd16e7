/* Set: a replicated set of unique byte-string elements (mosaik.md §6.2),
 * kept in order so snapshots and iteration are the same bytes on every
 * replica. Elements are key/value items with no value (coll_internal.h);
 * apply() is all-or-nothing as in coll_map.c.
 */
#include <stdlib.h>
#include <string.h>

#include "coll_internal.h"
#include "mosaik/error.h"

enum {
    OP_CLEAR = MK__CMD(MK__KIND_SET, 0),
    OP_INSERT = MK__CMD(MK__KIND_SET, 1),
    OP_REMOVE_MANY = MK__CMD(MK__KIND_SET, 2),
    OP_EXTEND = MK__CMD(MK__KIND_SET, 3),
    Q_LEN = MK__QUERY(MK__KIND_SET, 0),
    Q_CONTAINS = MK__QUERY(MK__KIND_SET, 1),
    Q_PAGE = MK__QUERY(MK__KIND_SET, 2),
};

struct mk_set {
    struct mk_fsm fsm;
    mk__tree tree;
    size_t bytes; /* element bytes held: sizes the snapshot */
};

/* ---- commands ------------------------------------------------------------ */

int mk_set_cmd_insert(mk_buf *out, const void *elem, size_t len)
{
    mk_put_u8(out, OP_INSERT);
    mk_put_bytes(out, elem, len);
    return out->err;
}

static void put_many(mk_buf *out, uint8_t op, const mk_coll_item *elems,
                     size_t n)
{
    mk_put_u8(out, op);
    mk_put_varint(out, n);
    for (size_t i = 0; i < n; i++)
        mk_put_bytes(out, elems[i].key, elems[i].key_len);
}

int mk_set_cmd_remove(mk_buf *out, const void *elem, size_t len)
{
    mk_coll_item it = {.key = elem, .key_len = len};
    put_many(out, OP_REMOVE_MANY, &it, 1);
    return out->err;
}

int mk_set_cmd_remove_many(mk_buf *out, const mk_coll_item *elems, size_t n)
{
    put_many(out, OP_REMOVE_MANY, elems, n);
    return out->err;
}

int mk_set_cmd_extend(mk_buf *out, const mk_coll_item *elems, size_t n)
{
    put_many(out, OP_EXTEND, elems, n);
    return out->err;
}

int mk_set_cmd_clear(mk_buf *out)
{
    mk_put_u8(out, OP_CLEAR);
    return out->err;
}

/* ---- state changes --------------------------------------------------------- */

static void fill(const mk__kv *kv, mk_coll_item *out)
{
    memset(out, 0, sizeof *out);
    out->key = mk__kv_key(kv);
    out->key_len = kv->klen;
}

static void clear_all(mk_set *s)
{
    mk__tree_drain(&s->tree, mk__kv_drop);
    s->bytes = 0;
}

/* Reads `n` elements from `r` (at the start of the list) and checks that
 * the command ends there. */
static int validate_list(mk_reader *r, size_t n)
{
    size_t len;
    for (size_t i = 0; i < n && !r->err; i++)
        mk_get_bytes(r, &len, SIZE_MAX);
    return mk_reader_done(r);
}

static int apply_add(mk_set *s, mk_reader *r, size_t n, mk_buf *res)
{
    size_t at = r->at, len;
    int rc = validate_list(r, n);
    if (rc)
        return rc;
    /* Allocate the elements that are new (first occurrence only) before
     * linking any, so the command cannot fail halfway. */
    mk__kv **kvs = n ? calloc(n, sizeof *kvs) : NULL;
    if (n && !kvs)
        return MK_ENOMEM;
    r->at = at;
    size_t i = 0;
    for (; i < n; i++) {
        const uint8_t *e = mk_get_bytes(r, &len, SIZE_MAX);
        mk__probe p = {e, len};
        if (mk__tree_find(&s->tree, &p))
            continue; /* present: nothing to allocate */
        if (!(kvs[i] = mk__kv_new(e, len, NULL, 0)))
            break;
    }
    if (i < n || mk__outcome_reserve(res, 0) != 0) {
        for (size_t j = 0; j < n; j++)
            free(kvs[j]);
        free(kvs);
        return MK_ENOMEM;
    }
    uint64_t added = 0;
    for (i = 0; i < n; i++) {
        if (!kvs[i])
            continue;
        mk__probe p = {mk__kv_key(kvs[i]), kvs[i]->klen};
        /* A duplicate within the batch: the first one is in already. */
        if (mk__tree_find(&s->tree, &p)) {
            free(kvs[i]);
            continue;
        }
        mk__tree_put(&s->tree, &p, &kvs[i]->node);
        s->bytes += kvs[i]->klen;
        added++;
    }
    free(kvs);
    mk__put_outcome(res, added, 0, NULL, 0);
    return 0;
}

static int apply_remove(mk_set *s, mk_reader *r, size_t n, mk_buf *res)
{
    size_t at = r->at, len;
    int rc = validate_list(r, n);
    if (rc)
        return rc;
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    r->at = at;
    uint64_t removed = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = mk_get_bytes(r, &len, SIZE_MAX);
        mk__probe p = {e, len};
        mk__node *node = mk__tree_remove(&s->tree, &p);
        if (node) {
            s->bytes -= len;
            mk__kv_drop(node);
            removed++;
        }
    }
    mk__put_outcome(res, removed, 0, NULL, 0);
    return 0;
}

static int set_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                     mk_buf *res)
{
    mk_set *s = fsm->data;
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    uint8_t op = mk_get_u8(&r);
    if (r.err)
        return r.err;
    switch (op) {
    case OP_INSERT:
        /* One element is a list of one without the count. */
        return apply_add(s, &r, 1, res);
    case OP_EXTEND:
        return apply_add(s, &r, mk_get_count(&r, SIZE_MAX, 1), res);
    case OP_REMOVE_MANY:
        return apply_remove(s, &r, mk_get_count(&r, SIZE_MAX, 1), res);
    case OP_CLEAR: {
        int rc = mk_reader_done(&r);
        if (rc)
            return rc;
        if (mk__outcome_reserve(res, 0) != 0)
            return MK_ENOMEM;
        uint64_t n = s->tree.len;
        clear_all(s);
        mk__put_outcome(res, n, 0, NULL, 0);
        return 0;
    }
    default:
        return MK_EDECODE;
    }
}

/* ---- snapshots ----------------------------------------------------------
 *
 * u8 tag, u8 version, varint count, count × bytes in strictly increasing
 * order (so accepted snapshots are canonical, as the Map's).
 */

static int snap_elem(mk__node *n, void *data)
{
    const mk__kv *kv = mk__kv_of(n);
    mk_put_bytes(data, mk__kv_key(kv), kv->klen);
    return 0;
}

static int set_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    mk_set *s = fsm->data;
    if (s->tree.len > (SIZE_MAX - s->bytes - 16) / 10 ||
        mk_buf_reserve(out, 16 + s->bytes + 10 * s->tree.len) != 0)
        return MK_ENOMEM;
    mk__put_snap_header(out, MK__KIND_SET);
    mk_put_varint(out, s->tree.len);
    mk__tree_walk(&s->tree, false, snap_elem, out);
    return out->err;
}

static int set_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    mk_set *s = fsm->data;
    mk_reader r;
    mk_reader_init(&r, snap, len);
    mk__get_snap_header(&r, MK__KIND_SET);
    size_t n = mk_get_count(&r, SIZE_MAX, 1);
    if (r.err)
        return r.err;
    mk__node **nodes = n ? calloc(n, sizeof *nodes) : NULL;
    if (n && !nodes)
        return MK_ENOMEM;
    int rc = 0;
    size_t made = 0, bytes = 0, prev_len = 0;
    const uint8_t *prev = NULL;
    for (; made < n; made++) {
        size_t elen;
        const uint8_t *e = mk_get_bytes(&r, &elen, SIZE_MAX);
        if (r.err) {
            rc = r.err;
            break;
        }
        if (made && mk__bytes_cmp(prev, prev_len, e, elen) >= 0) {
            rc = MK_EDECODE;
            break;
        }
        mk__kv *kv = mk__kv_new(e, elen, NULL, 0);
        if (!kv) {
            rc = MK_ENOMEM;
            break;
        }
        nodes[made] = &kv->node;
        bytes += elen;
        prev = e;
        prev_len = elen;
    }
    if (!rc)
        rc = mk_reader_done(&r);
    if (rc) {
        for (size_t i = 0; i < made; i++)
            mk__kv_drop(nodes[i]);
        free(nodes);
        return rc;
    }
    clear_all(s);
    mk__tree_build(&s->tree, nodes, n);
    s->bytes = bytes;
    free(nodes);
    return 0;
}

/* ---- queries ------------------------------------------------------------- */

int mk_set_query_contains(mk_buf *out, const void *elem, size_t len)
{
    mk_put_u8(out, Q_CONTAINS);
    mk_put_bytes(out, elem, len);
    return out->err;
}

int mk_set_query_len(mk_buf *out)
{
    mk_put_u8(out, Q_LEN);
    return out->err;
}

int mk_set_query_page(mk_buf *out, const mk_coll_bytes *after,
                      uint32_t limit)
{
    mk_put_u8(out, Q_PAGE);
    mk__put_opt(out, after);
    mk_put_varint(out, limit);
    return out->err;
}

static int set_query(struct mk_fsm *fsm, const uint8_t *q, size_t len,
                     mk_buf *out)
{
    const mk_set *s = fsm->data;
    mk_reader r;
    mk_reader_init(&r, q, len);
    uint8_t op = mk_get_u8(&r);
    size_t elen;
    const uint8_t *e;
    int rc;
    switch (op) {
    case Q_LEN:
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        mk__put_len_reply(out, s->tree.len);
        return out->err;
    case Q_CONTAINS:
        e = mk_get_bytes(&r, &elen, SIZE_MAX);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        mk__put_item(out, mk_set_contains(s, e, elen) ? MK__ITEM_FOUND : 0,
                     NULL);
        return out->err;
    case Q_PAGE: {
        bool has_after;
        e = mk__get_opt(&r, &has_after, &elen);
        uint64_t limit = mk_get_varint(&r);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        mk__page pg;
        mk_coll_item it;
        mk__page_begin(&pg, out, MK__ITEM_KEY, limit);
        bool more = false;
        bool ok = has_after ? mk_set_next(s, e, elen, &it)
                            : mk_set_first(s, &it);
        while (ok) {
            if (!mk__page_add(&pg, &it)) {
                more = true;
                break;
            }
            ok = mk_set_next(s, it.key, it.key_len, &it);
        }
        return mk__page_end(&pg, more);
    }
    default:
        return MK_EDECODE;
    }
}

/* ---- local reads --------------------------------------------------------- */

size_t mk_set_len(const mk_set *s)
{
    return s->tree.len;
}

bool mk_set_contains(const mk_set *s, const void *elem, size_t len)
{
    mk__probe p = {elem, len};
    return mk__tree_find(&s->tree, &p) != NULL;
}

static bool found(const mk__node *n, mk_coll_item *out)
{
    if (!n) {
        memset(out, 0, sizeof *out);
        return false;
    }
    fill(mk__kv_of(n), out);
    return true;
}

bool mk_set_first(const mk_set *s, mk_coll_item *out)
{
    return found(mk__tree_first(&s->tree), out);
}

bool mk_set_next(const mk_set *s, const void *after, size_t alen,
                 mk_coll_item *out)
{
    mk__probe p = {after, alen};
    return found(mk__tree_seek(&s->tree, &p, MK__GT), out);
}

typedef struct visit {
    mk_coll_visit_cb cb;
    void *data;
} visit;

static int visit_node(mk__node *n, void *data)
{
    const visit *v = data;
    mk_coll_item it;
    fill(mk__kv_of(n), &it);
    return v->cb(&it, v->data);
}

int mk_set_foreach(const mk_set *s, mk_coll_visit_cb cb, void *data)
{
    visit v = {cb, data};
    return mk__tree_walk(&s->tree, false, visit_node, &v);
}

static int in_other(mk__node *n, void *data)
{
    const mk_set *b = data;
    const mk__kv *kv = mk__kv_of(n);
    return mk_set_contains(b, mk__kv_key(kv), kv->klen) ? 0 : 1;
}

bool mk_set_is_subset(const mk_set *a, const mk_set *b)
{
    if (a->tree.len > b->tree.len)
        return false;
    return mk__tree_walk(&a->tree, false, in_other, (void *)b) == 0;
}

/* ---- lifetime ------------------------------------------------------------ */

int mk_set_new(const mk_coll_config *cfg, mk_set **out)
{
    mk_set *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return MK_ENOMEM;
    mk__tree_init(&s->tree, mk__kv_cmp);
    s->fsm.version = MK_FSM_VERSION;
    s->fsm.data = s;
    mk__coll_signature(&s->fsm.signature, "set", cfg, false);
    s->fsm.apply = set_apply;
    s->fsm.snapshot = set_snapshot;
    s->fsm.restore = set_restore;
    s->fsm.query = set_query;
    *out = s;
    return 0;
}

void mk_set_free(mk_set *s)
{
    if (!s)
        return;
    clear_all(s);
    free(s);
}

struct mk_fsm *mk_set_fsm(mk_set *s)
{
    return &s->fsm;
}
