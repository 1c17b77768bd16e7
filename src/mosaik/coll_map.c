/* Map: a replicated map of unique byte-string keys to byte-string values
 * (mosaik.md §6.2), kept in key order so snapshots and iteration are the
 * same bytes on every replica.
 *
 * Every apply() decodes and validates the whole command, allocates what
 * it needs (new items, room for the result), and only then links and
 * unlinks items, which cannot fail; so a command either happens entirely
 * or not at all.
 */
#include <stdlib.h>
#include <string.h>

#include "coll_internal.h"
#include "mosaik/error.h"

enum {
    OP_CLEAR = MK__CMD(MK__KIND_MAP, 0),
    OP_INSERT = MK__CMD(MK__KIND_MAP, 1),
    OP_CAS = MK__CMD(MK__KIND_MAP, 2),
    OP_REMOVE_MANY = MK__CMD(MK__KIND_MAP, 3),
    OP_EXTEND = MK__CMD(MK__KIND_MAP, 4),
    Q_LEN = MK__QUERY(MK__KIND_MAP, 0),
    Q_GET = MK__QUERY(MK__KIND_MAP, 1),
    Q_CONTAINS = MK__QUERY(MK__KIND_MAP, 2),
    Q_PAGE = MK__QUERY(MK__KIND_MAP, 3),
};

struct mk_map {
    struct mk_fsm fsm;
    mk__tree tree;
    size_t bytes; /* key and value bytes held: sizes the snapshot */
};

/* ---- commands ------------------------------------------------------------ */

int mk_map_cmd_insert(mk_buf *out, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    mk_put_u8(out, OP_INSERT);
    mk_put_bytes(out, key, klen);
    mk_put_bytes(out, val, vlen);
    return out->err;
}

int mk_map_cmd_cas(mk_buf *out, const void *key, size_t klen,
                   const mk_coll_bytes *expected, const mk_coll_bytes *desired)
{
    mk_put_u8(out, OP_CAS);
    mk_put_bytes(out, key, klen);
    mk__put_opt(out, expected);
    mk__put_opt(out, desired);
    return out->err;
}

int mk_map_cmd_remove(mk_buf *out, const void *key, size_t klen)
{
    mk_put_u8(out, OP_REMOVE_MANY);
    mk_put_varint(out, 1);
    mk_put_bytes(out, key, klen);
    return out->err;
}

int mk_map_cmd_remove_many(mk_buf *out, const mk_coll_item *keys, size_t n)
{
    mk_put_u8(out, OP_REMOVE_MANY);
    mk_put_varint(out, n);
    for (size_t i = 0; i < n; i++)
        mk_put_bytes(out, keys[i].key, keys[i].key_len);
    return out->err;
}

int mk_map_cmd_extend(mk_buf *out, const mk_coll_item *entries, size_t n)
{
    mk_put_u8(out, OP_EXTEND);
    mk_put_varint(out, n);
    for (size_t i = 0; i < n; i++) {
        mk_put_bytes(out, entries[i].key, entries[i].key_len);
        mk_put_bytes(out, entries[i].val, entries[i].val_len);
    }
    return out->err;
}

int mk_map_cmd_clear(mk_buf *out)
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
    out->val = mk__kv_val(kv);
    out->val_len = kv->vlen;
}

/* Links `kv`, replacing (and freeing) an entry with the same key. */
static void link_kv(mk_map *m, mk__kv *kv)
{
    mk__probe p = {mk__kv_key(kv), kv->klen};
    mk__node *old = mk__tree_put(&m->tree, &p, &kv->node);
    m->bytes += kv->klen + kv->vlen;
    if (old) {
        mk__kv *o = mk__kv_of(old);
        m->bytes -= o->klen + o->vlen;
        free(o);
    }
}

static bool unlink_key(mk_map *m, const uint8_t *key, size_t klen)
{
    mk__probe p = {key, klen};
    mk__node *n = mk__tree_remove(&m->tree, &p);
    if (!n)
        return false;
    mk__kv *kv = mk__kv_of(n);
    m->bytes -= kv->klen + kv->vlen;
    free(kv);
    return true;
}

static void clear_all(mk_map *m)
{
    mk__tree_drain(&m->tree, mk__kv_drop);
    m->bytes = 0;
}

static int apply_insert(mk_map *m, mk_reader *r, mk_buf *res)
{
    size_t klen, vlen;
    const uint8_t *key = mk_get_bytes(r, &klen, SIZE_MAX);
    const uint8_t *val = mk_get_bytes(r, &vlen, SIZE_MAX);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    mk__kv *kv = mk__kv_new(key, klen, val, vlen);
    if (!kv || mk__outcome_reserve(res, 0) != 0) {
        free(kv);
        return MK_ENOMEM;
    }
    link_kv(m, kv);
    mk__put_outcome(res, 1, 0, NULL, 0);
    return 0;
}

static int apply_cas(mk_map *m, mk_reader *r, mk_buf *res)
{
    size_t klen, elen, dlen;
    bool has_exp, has_des;
    const uint8_t *key = mk_get_bytes(r, &klen, SIZE_MAX);
    const uint8_t *exp = mk__get_opt(r, &has_exp, &elen);
    const uint8_t *des = mk__get_opt(r, &has_des, &dlen);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    mk__probe p = {key, klen};
    mk__node *n = mk__tree_find(&m->tree, &p);
    bool match;
    if (!has_exp) {
        match = n == NULL;
    } else {
        const mk__kv *cur = n ? mk__kv_of(n) : NULL;
        /* Values are compared as the encoded bytes the callers wrote. */
        match = cur && mk__bytes_cmp(mk__kv_val(cur), cur->vlen, exp,
                                     elen) == 0;
    }
    mk__kv *kv = NULL;
    if (match && has_des && !(kv = mk__kv_new(key, klen, des, dlen)))
        return MK_ENOMEM;
    if (mk__outcome_reserve(res, 0) != 0) {
        free(kv);
        return MK_ENOMEM;
    }
    if (match) {
        if (kv)
            link_kv(m, kv);
        else
            unlink_key(m, key, klen); /* None -> None is a no-op here */
    }
    mk__put_outcome(res, match ? 1 : 0, 0, NULL, 0);
    return 0;
}

static int apply_remove_many(mk_map *m, mk_reader *r, mk_buf *res)
{
    size_t n = mk_get_count(r, SIZE_MAX, 1);
    size_t at = r->at;
    size_t klen;
    for (size_t i = 0; i < n && !r->err; i++)
        mk_get_bytes(r, &klen, SIZE_MAX);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    /* Validated: read the keys again, now removing. */
    r->at = at;
    uint64_t removed = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *key = mk_get_bytes(r, &klen, SIZE_MAX);
        removed += unlink_key(m, key, klen);
    }
    mk__put_outcome(res, removed, 0, NULL, 0);
    return 0;
}

static int apply_extend(mk_map *m, mk_reader *r, mk_buf *res)
{
    size_t n = mk_get_count(r, SIZE_MAX, 2);
    size_t at = r->at;
    size_t klen, vlen;
    for (size_t i = 0; i < n && !r->err; i++) {
        mk_get_bytes(r, &klen, SIZE_MAX);
        mk_get_bytes(r, &vlen, SIZE_MAX);
    }
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    if (n == 0) {
        if (mk__outcome_reserve(res, 0) != 0)
            return MK_ENOMEM;
        mk__put_outcome(res, 0, 0, NULL, 0);
        return 0;
    }
    /* Allocate every entry first so that linking cannot fail halfway. */
    mk__kv **kvs = calloc(n, sizeof *kvs);
    if (!kvs)
        return MK_ENOMEM;
    r->at = at;
    size_t made = 0;
    for (; made < n; made++) {
        const uint8_t *key = mk_get_bytes(r, &klen, SIZE_MAX);
        const uint8_t *val = mk_get_bytes(r, &vlen, SIZE_MAX);
        if (!(kvs[made] = mk__kv_new(key, klen, val, vlen)))
            break;
    }
    if (made < n || mk__outcome_reserve(res, 0) != 0) {
        for (size_t i = 0; i < made; i++)
            free(kvs[i]);
        free(kvs);
        return MK_ENOMEM;
    }
    /* In order, so a later duplicate key wins, as separate inserts would. */
    for (size_t i = 0; i < n; i++)
        link_kv(m, kvs[i]);
    free(kvs);
    mk__put_outcome(res, n, 0, NULL, 0);
    return 0;
}

static int map_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                     mk_buf *res)
{
    mk_map *m = fsm->data;
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    uint8_t op = mk_get_u8(&r);
    if (r.err)
        return r.err;
    switch (op) {
    case OP_INSERT:
        return apply_insert(m, &r, res);
    case OP_CAS:
        return apply_cas(m, &r, res);
    case OP_REMOVE_MANY:
        return apply_remove_many(m, &r, res);
    case OP_EXTEND:
        return apply_extend(m, &r, res);
    case OP_CLEAR: {
        int rc = mk_reader_done(&r);
        if (rc)
            return rc;
        if (mk__outcome_reserve(res, 0) != 0)
            return MK_ENOMEM;
        uint64_t n = m->tree.len;
        clear_all(m);
        mk__put_outcome(res, n, 0, NULL, 0);
        return 0;
    }
    default:
        return MK_EDECODE;
    }
}

/* ---- snapshots ----------------------------------------------------------
 *
 * u8 tag, u8 version, varint count, count × (bytes key, bytes value) in
 * strictly increasing key order. restore() insists on that order, so any
 * snapshot it accepts is the one snapshot() would write for that state.
 */

static int snap_entry(mk__node *n, void *data)
{
    mk_buf *out = data;
    const mk__kv *kv = mk__kv_of(n);
    mk_put_bytes(out, mk__kv_key(kv), kv->klen);
    mk_put_bytes(out, mk__kv_val(kv), kv->vlen);
    return 0;
}

static int map_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    mk_map *m = fsm->data;
    /* One reservation for the whole snapshot: at most two 10-byte length
     * prefixes per entry. */
    if (m->tree.len > (SIZE_MAX - m->bytes - 16) / 20 ||
        mk_buf_reserve(out, 16 + m->bytes + 20 * m->tree.len) != 0)
        return MK_ENOMEM;
    mk__put_snap_header(out, MK__KIND_MAP);
    mk_put_varint(out, m->tree.len);
    mk__tree_walk(&m->tree, false, snap_entry, out);
    return out->err;
}

static int map_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    mk_map *m = fsm->data;
    mk_reader r;
    mk_reader_init(&r, snap, len);
    mk__get_snap_header(&r, MK__KIND_MAP);
    size_t n = mk_get_count(&r, SIZE_MAX, 2);
    if (r.err)
        return r.err;
    mk__node **nodes = n ? calloc(n, sizeof *nodes) : NULL;
    if (n && !nodes)
        return MK_ENOMEM;
    /* Build the new state aside; the old one stays until all is well. */
    int rc = 0;
    size_t made = 0, bytes = 0;
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (; made < n; made++) {
        size_t klen, vlen;
        const uint8_t *key = mk_get_bytes(&r, &klen, SIZE_MAX);
        const uint8_t *val = mk_get_bytes(&r, &vlen, SIZE_MAX);
        if (r.err) {
            rc = r.err;
            break;
        }
        if (made && mk__bytes_cmp(prev, prev_len, key, klen) >= 0) {
            rc = MK_EDECODE; /* unsorted or duplicate */
            break;
        }
        mk__kv *kv = mk__kv_new(key, klen, val, vlen);
        if (!kv) {
            rc = MK_ENOMEM;
            break;
        }
        nodes[made] = &kv->node;
        bytes += klen + vlen;
        prev = key;
        prev_len = klen;
    }
    if (!rc)
        rc = mk_reader_done(&r);
    if (rc) {
        for (size_t i = 0; i < made; i++)
            mk__kv_drop(nodes[i]);
        free(nodes);
        return rc;
    }
    clear_all(m);
    mk__tree_build(&m->tree, nodes, n);
    m->bytes = bytes;
    free(nodes);
    return 0;
}

/* ---- queries ------------------------------------------------------------- */

int mk_map_query_get(mk_buf *out, const void *key, size_t klen)
{
    mk_put_u8(out, Q_GET);
    mk_put_bytes(out, key, klen);
    return out->err;
}

int mk_map_query_contains(mk_buf *out, const void *key, size_t klen)
{
    mk_put_u8(out, Q_CONTAINS);
    mk_put_bytes(out, key, klen);
    return out->err;
}

int mk_map_query_len(mk_buf *out)
{
    mk_put_u8(out, Q_LEN);
    return out->err;
}

int mk_map_query_page(mk_buf *out, const mk_coll_bytes *after,
                      uint32_t limit)
{
    mk_put_u8(out, Q_PAGE);
    mk__put_opt(out, after);
    mk_put_varint(out, limit);
    return out->err;
}

static int map_query(struct mk_fsm *fsm, const uint8_t *q, size_t len,
                     mk_buf *out)
{
    const mk_map *m = fsm->data;
    mk_reader r;
    mk_reader_init(&r, q, len);
    uint8_t op = mk_get_u8(&r);
    mk_coll_item it;
    size_t klen;
    const uint8_t *key;
    int rc;
    switch (op) {
    case Q_LEN:
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        mk__put_len_reply(out, m->tree.len);
        return out->err;
    case Q_GET:
    case Q_CONTAINS: {
        key = mk_get_bytes(&r, &klen, SIZE_MAX);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        bool found = mk_map_get(m, key, klen, &it);
        unsigned fields = op == Q_GET ? MK__ITEM_KEY | MK__ITEM_VAL : 0;
        mk__put_item(out, found ? MK__ITEM_FOUND | fields : 0, &it);
        return out->err;
    }
    case Q_PAGE: {
        bool has_after;
        key = mk__get_opt(&r, &has_after, &klen);
        uint64_t limit = mk_get_varint(&r);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        mk__page pg;
        mk__page_begin(&pg, out, MK__ITEM_KEY | MK__ITEM_VAL, limit);
        bool more = false;
        bool ok = has_after ? mk_map_next(m, key, klen, &it)
                            : mk_map_first(m, &it);
        while (ok) {
            if (!mk__page_add(&pg, &it)) {
                more = true;
                break;
            }
            ok = mk_map_next(m, it.key, it.key_len, &it);
        }
        return mk__page_end(&pg, more);
    }
    default:
        return MK_EDECODE;
    }
}

/* ---- local reads --------------------------------------------------------- */

size_t mk_map_len(const mk_map *m)
{
    return m->tree.len;
}

bool mk_map_get(const mk_map *m, const void *key, size_t klen,
                mk_coll_item *out)
{
    mk__probe p = {key, klen};
    mk__node *n = mk__tree_find(&m->tree, &p);
    if (!n) {
        memset(out, 0, sizeof *out);
        return false;
    }
    fill(mk__kv_of(n), out);
    return true;
}

bool mk_map_contains(const mk_map *m, const void *key, size_t klen)
{
    mk__probe p = {key, klen};
    return mk__tree_find(&m->tree, &p) != NULL;
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

bool mk_map_first(const mk_map *m, mk_coll_item *out)
{
    return found(mk__tree_first(&m->tree), out);
}

bool mk_map_next(const mk_map *m, const void *after, size_t alen,
                 mk_coll_item *out)
{
    mk__probe p = {after, alen};
    return found(mk__tree_seek(&m->tree, &p, MK__GT), out);
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

int mk_map_foreach(const mk_map *m, mk_coll_visit_cb cb, void *data)
{
    visit v = {cb, data};
    return mk__tree_walk(&m->tree, false, visit_node, &v);
}

/* ---- lifetime ------------------------------------------------------------ */

int mk_map_new(const mk_coll_config *cfg, mk_map **out)
{
    mk_map *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m)
        return MK_ENOMEM;
    mk__tree_init(&m->tree, mk__kv_cmp);
    m->fsm.version = MK_FSM_VERSION;
    m->fsm.data = m;
    mk__coll_signature(&m->fsm.signature, "map", cfg, false);
    m->fsm.apply = map_apply;
    m->fsm.snapshot = map_snapshot;
    m->fsm.restore = map_restore;
    m->fsm.query = map_query;
    *out = m;
    return 0;
}

void mk_map_free(mk_map *m)
{
    if (!m)
        return;
    clear_all(m);
    free(m);
}

struct mk_fsm *mk_map_fsm(mk_map *m)
{
    return &m->fsm;
}
