/* Vec: a replicated sequence of byte strings (mosaik.md §6.2).
 *
 * The elements sit in a ring buffer of pointers (power-of-two capacity),
 * so both ends are O(1) and indexing is O(1); an insert or remove in the
 * middle moves the shorter side, at most len/2 pointers.
 *
 * Out-of-range operations change nothing and report changed 0. mosaik
 * panics inside apply() on insert past the end, on every replica at once
 * (Appendix D.3); a replicated machine must never do that, and clamping
 * would silently put an element where the writer did not ask, so we drop
 * the command's effect instead.
 *
 * apply() is all-or-nothing: it decodes, allocates the element and room in
 * the ring and in the result, and only then moves pointers.
 */
#include <stdlib.h>
#include <string.h>

#include "coll_internal.h"
#include "mosaik/error.h"

enum {
    OP_CLEAR = MK__CMD(MK__KIND_VEC, 0),
    OP_PUSH_BACK = MK__CMD(MK__KIND_VEC, 1),
    OP_PUSH_FRONT = MK__CMD(MK__KIND_VEC, 2),
    OP_POP_BACK = MK__CMD(MK__KIND_VEC, 3),
    OP_POP_FRONT = MK__CMD(MK__KIND_VEC, 4),
    OP_INSERT = MK__CMD(MK__KIND_VEC, 5),
    OP_REMOVE = MK__CMD(MK__KIND_VEC, 6),
    OP_SWAP = MK__CMD(MK__KIND_VEC, 7),
    OP_TRUNCATE = MK__CMD(MK__KIND_VEC, 8),
    OP_EXTEND = MK__CMD(MK__KIND_VEC, 9),
    OP_SET = MK__CMD(MK__KIND_VEC, 10),
    Q_LEN = MK__QUERY(MK__KIND_VEC, 0),
    Q_GET = MK__QUERY(MK__KIND_VEC, 1),
    Q_PAGE = MK__QUERY(MK__KIND_VEC, 2),
};

typedef struct elem {
    size_t len;
    uint8_t bytes[];
} elem;

struct mk_vec {
    struct mk_fsm fsm;
    elem **ring;
    size_t cap; /* 0 or a power of two */
    size_t head, len;
    size_t bytes; /* element bytes held: sizes the snapshot */
};

static elem **slot(const mk_vec *v, size_t i)
{
    return &v->ring[(v->head + i) & (v->cap - 1)];
}

static elem *elem_new(const uint8_t *p, size_t len)
{
    if (len > SIZE_MAX - sizeof(elem))
        return NULL;
    elem *e = malloc(sizeof *e + len);
    if (!e)
        return NULL;
    e->len = len;
    if (len)
        memcpy(e->bytes, p, len);
    return e;
}

/* Makes room for `extra` more elements; the contents stay the same. */
static int reserve(mk_vec *v, size_t extra)
{
    if (extra > SIZE_MAX - v->len)
        return MK_ENOMEM;
    size_t need = v->len + extra;
    if (need <= v->cap)
        return 0;
    size_t cap = v->cap ? v->cap : 8;
    while (cap < need) {
        if (cap > SIZE_MAX / 2 / sizeof(elem *))
            return MK_ENOMEM;
        cap *= 2;
    }
    elem **ring = malloc(cap * sizeof *ring);
    if (!ring)
        return MK_ENOMEM;
    for (size_t i = 0; i < v->len; i++)
        ring[i] = *slot(v, i);
    free(v->ring);
    v->ring = ring;
    v->cap = cap;
    v->head = 0;
    return 0;
}

static void clear_all(mk_vec *v)
{
    for (size_t i = 0; i < v->len; i++)
        free(*slot(v, i));
    free(v->ring);
    v->ring = NULL;
    v->cap = v->head = v->len = v->bytes = 0;
}

static void fill(const elem *e, mk_coll_item *out)
{
    memset(out, 0, sizeof *out);
    out->val = e->bytes;
    out->val_len = e->len;
}

/* ---- commands ------------------------------------------------------------ */

static int put_elem_cmd(mk_buf *out, uint8_t op, const void *p, size_t len)
{
    mk_put_u8(out, op);
    mk_put_bytes(out, p, len);
    return out->err;
}

int mk_vec_cmd_push_back(mk_buf *out, const void *elem_p, size_t len)
{
    return put_elem_cmd(out, OP_PUSH_BACK, elem_p, len);
}

int mk_vec_cmd_push_front(mk_buf *out, const void *elem_p, size_t len)
{
    return put_elem_cmd(out, OP_PUSH_FRONT, elem_p, len);
}

int mk_vec_cmd_pop_back(mk_buf *out)
{
    mk_put_u8(out, OP_POP_BACK);
    return out->err;
}

int mk_vec_cmd_pop_front(mk_buf *out)
{
    mk_put_u8(out, OP_POP_FRONT);
    return out->err;
}

int mk_vec_cmd_set(mk_buf *out, uint64_t index, const void *elem_p,
                   size_t len)
{
    mk_put_u8(out, OP_SET);
    mk_put_varint(out, index);
    mk_put_bytes(out, elem_p, len);
    return out->err;
}

int mk_vec_cmd_insert(mk_buf *out, uint64_t index, const void *elem_p,
                      size_t len)
{
    mk_put_u8(out, OP_INSERT);
    mk_put_varint(out, index);
    mk_put_bytes(out, elem_p, len);
    return out->err;
}

int mk_vec_cmd_remove(mk_buf *out, uint64_t index)
{
    mk_put_u8(out, OP_REMOVE);
    mk_put_varint(out, index);
    return out->err;
}

int mk_vec_cmd_swap(mk_buf *out, uint64_t i, uint64_t j)
{
    mk_put_u8(out, OP_SWAP);
    mk_put_varint(out, i);
    mk_put_varint(out, j);
    return out->err;
}

int mk_vec_cmd_truncate(mk_buf *out, uint64_t len)
{
    mk_put_u8(out, OP_TRUNCATE);
    mk_put_varint(out, len);
    return out->err;
}

int mk_vec_cmd_extend(mk_buf *out, const mk_coll_item *elems, size_t n)
{
    mk_put_u8(out, OP_EXTEND);
    mk_put_varint(out, n);
    for (size_t i = 0; i < n; i++)
        mk_put_bytes(out, elems[i].val, elems[i].val_len);
    return out->err;
}

int mk_vec_cmd_clear(mk_buf *out)
{
    mk_put_u8(out, OP_CLEAR);
    return out->err;
}

/* ---- state changes --------------------------------------------------------- */

/* Links a new element at `index` <= len (room reserved). */
static void link_at(mk_vec *v, size_t index, elem *e)
{
    if (index < v->len - index) {
        /* Nearer the front: move the first `index` elements one left. */
        v->head = (v->head - 1) & (v->cap - 1);
        for (size_t k = 0; k < index; k++)
            *slot(v, k) = *slot(v, k + 1);
    } else {
        for (size_t k = v->len; k > index; k--)
            *slot(v, k) = *slot(v, k - 1);
    }
    *slot(v, index) = e;
    v->len++;
    v->bytes += e->len;
}

/* Unlinks and returns the element at `index` < len. */
static elem *unlink_at(mk_vec *v, size_t index)
{
    elem *e = *slot(v, index);
    if (index < v->len - 1 - index) {
        for (size_t k = index; k > 0; k--)
            *slot(v, k) = *slot(v, k - 1);
        v->head = (v->head + 1) & (v->cap - 1);
    } else {
        for (size_t k = index; k + 1 < v->len; k++)
            *slot(v, k) = *slot(v, k + 1);
    }
    v->len--;
    v->bytes -= e->len;
    return e;
}

/* Takes out the element at `index` and reports it in the outcome. */
static int take(mk_vec *v, size_t index, mk_buf *res)
{
    if (mk__outcome_reserve(res, (*slot(v, index))->len) != 0)
        return MK_ENOMEM;
    elem *e = unlink_at(v, index);
    mk_coll_item it;
    fill(e, &it);
    mk__put_outcome(res, 1, 0, &it, MK__ITEM_VAL);
    free(e);
    return 0;
}

static int nothing(mk_buf *res)
{
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    mk__put_outcome(res, 0, 0, NULL, 0);
    return 0;
}

/* Decodes an element and an optional leading index, then inserts. */
static int apply_insert(mk_vec *v, mk_reader *r, uint8_t op, mk_buf *res)
{
    uint64_t index = op == OP_INSERT ? mk_get_varint(r) : 0;
    size_t len;
    const uint8_t *p = mk_get_bytes(r, &len, SIZE_MAX);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    if (op == OP_PUSH_BACK)
        index = v->len;
    if (index > v->len)
        return nothing(res);
    elem *e = elem_new(p, len);
    if (!e || reserve(v, 1) != 0 || mk__outcome_reserve(res, 0) != 0) {
        free(e);
        return MK_ENOMEM;
    }
    link_at(v, (size_t)index, e);
    mk__put_outcome(res, 1, 0, NULL, 0);
    return 0;
}

/* Replaces the element at an index < len in place: the new element and
 * room for the old one in the outcome are allocated first. */
static int apply_set(mk_vec *v, mk_reader *r, mk_buf *res)
{
    uint64_t index = mk_get_varint(r);
    size_t len;
    const uint8_t *p = mk_get_bytes(r, &len, SIZE_MAX);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    if (index >= v->len)
        return nothing(res);
    elem **at = slot(v, (size_t)index);
    elem *e = elem_new(p, len);
    if (!e || mk__outcome_reserve(res, (*at)->len) != 0) {
        free(e);
        return MK_ENOMEM;
    }
    elem *old = *at;
    *at = e;
    v->bytes = v->bytes - old->len + len;
    mk_coll_item it;
    fill(old, &it);
    mk__put_outcome(res, 1, 0, &it, MK__ITEM_VAL);
    free(old);
    return 0;
}

static int apply_extend(mk_vec *v, mk_reader *r, mk_buf *res)
{
    size_t n = mk_get_count(r, SIZE_MAX, 1);
    size_t at = r->at, len;
    for (size_t i = 0; i < n && !r->err; i++)
        mk_get_bytes(r, &len, SIZE_MAX);
    int rc = mk_reader_done(r);
    if (rc)
        return rc;
    if (reserve(v, n) != 0 || mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    /* New elements go straight into the reserved slots past the end; the
     * length moves only once all of them exist. */
    r->at = at;
    size_t i = 0, bytes = 0;
    for (; i < n; i++) {
        const uint8_t *p = mk_get_bytes(r, &len, SIZE_MAX);
        elem *e = elem_new(p, len);
        if (!e)
            break;
        *slot(v, v->len + i) = e;
        bytes += len;
    }
    if (i < n) {
        while (i--)
            free(*slot(v, v->len + i));
        return MK_ENOMEM;
    }
    v->len += n;
    v->bytes += bytes;
    mk__put_outcome(res, n, 0, NULL, 0);
    return 0;
}

static int apply_truncate(mk_vec *v, uint64_t to, mk_buf *res)
{
    if (to >= v->len)
        return nothing(res);
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    uint64_t removed = v->len - to;
    while (v->len > to) {
        elem *e = *slot(v, v->len - 1);
        v->bytes -= e->len;
        v->len--;
        free(e);
    }
    mk__put_outcome(res, removed, 0, NULL, 0);
    return 0;
}

static int vec_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                     mk_buf *res)
{
    mk_vec *v = fsm->data;
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    uint8_t op = mk_get_u8(&r);
    if (r.err)
        return r.err;
    uint64_t a, b;
    int rc;
    switch (op) {
    case OP_PUSH_BACK:
    case OP_PUSH_FRONT:
    case OP_INSERT:
        return apply_insert(v, &r, op, res);
    case OP_EXTEND:
        return apply_extend(v, &r, res);
    case OP_SET:
        return apply_set(v, &r, res);
    case OP_POP_BACK:
    case OP_POP_FRONT:
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        if (v->len == 0)
            return nothing(res);
        return take(v, op == OP_POP_BACK ? v->len - 1 : 0, res);
    case OP_REMOVE:
        a = mk_get_varint(&r);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        if (a >= v->len)
            return nothing(res);
        return take(v, (size_t)a, res);
    case OP_SWAP:
        a = mk_get_varint(&r);
        b = mk_get_varint(&r);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        if (a >= v->len || b >= v->len || a == b)
            return nothing(res);
        if (mk__outcome_reserve(res, 0) != 0)
            return MK_ENOMEM;
        {
            elem *t = *slot(v, (size_t)a);
            *slot(v, (size_t)a) = *slot(v, (size_t)b);
            *slot(v, (size_t)b) = t;
        }
        mk__put_outcome(res, 1, 0, NULL, 0);
        return 0;
    case OP_TRUNCATE:
        a = mk_get_varint(&r);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        return apply_truncate(v, a, res);
    case OP_CLEAR: {
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        if (mk__outcome_reserve(res, 0) != 0)
            return MK_ENOMEM;
        uint64_t n = v->len;
        clear_all(v);
        mk__put_outcome(res, n, 0, NULL, 0);
        return 0;
    }
    default:
        return MK_EDECODE;
    }
}

/* ---- snapshots ----------------------------------------------------------
 *
 * u8 tag, u8 version, varint count, count × bytes in sequence order.
 */

static int vec_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    mk_vec *v = fsm->data;
    if (v->len > (SIZE_MAX - v->bytes - 16) / 10 ||
        mk_buf_reserve(out, 16 + v->bytes + 10 * v->len) != 0)
        return MK_ENOMEM;
    mk__put_snap_header(out, MK__KIND_VEC);
    mk_put_varint(out, v->len);
    for (size_t i = 0; i < v->len; i++) {
        const elem *e = *slot(v, i);
        mk_put_bytes(out, e->bytes, e->len);
    }
    return out->err;
}

static int vec_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    mk_vec *v = fsm->data;
    mk_reader r;
    mk_reader_init(&r, snap, len);
    mk__get_snap_header(&r, MK__KIND_VEC);
    size_t n = mk_get_count(&r, SIZE_MAX, 1);
    if (r.err)
        return r.err;
    /* Build the new ring aside, then swap it in. */
    mk_vec nv;
    memset(&nv, 0, sizeof nv);
    if (reserve(&nv, n) != 0)
        return MK_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        size_t elen;
        const uint8_t *p = mk_get_bytes(&r, &elen, SIZE_MAX);
        if (r.err) {
            rc = r.err;
            break;
        }
        elem *e = elem_new(p, elen);
        if (!e) {
            rc = MK_ENOMEM;
            break;
        }
        nv.ring[nv.len++] = e;
        nv.bytes += elen;
    }
    if (!rc)
        rc = mk_reader_done(&r);
    if (rc) {
        clear_all(&nv);
        return rc;
    }
    clear_all(v);
    v->ring = nv.ring;
    v->cap = nv.cap;
    v->head = 0;
    v->len = nv.len;
    v->bytes = nv.bytes;
    return 0;
}

/* ---- queries ------------------------------------------------------------- */

int mk_vec_query_get(mk_buf *out, uint64_t index)
{
    mk_put_u8(out, Q_GET);
    mk_put_varint(out, index);
    return out->err;
}

int mk_vec_query_len(mk_buf *out)
{
    mk_put_u8(out, Q_LEN);
    return out->err;
}

int mk_vec_query_page(mk_buf *out, uint64_t start, uint32_t limit)
{
    mk_put_u8(out, Q_PAGE);
    mk_put_varint(out, start);
    mk_put_varint(out, limit);
    return out->err;
}

static int vec_query(struct mk_fsm *fsm, const uint8_t *q, size_t len,
                     mk_buf *out)
{
    const mk_vec *v = fsm->data;
    mk_reader r;
    mk_reader_init(&r, q, len);
    uint8_t op = mk_get_u8(&r);
    mk_coll_item it;
    uint64_t a, limit;
    int rc;
    switch (op) {
    case Q_LEN:
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        mk__put_len_reply(out, v->len);
        return out->err;
    case Q_GET: {
        a = mk_get_varint(&r);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        bool found = mk_vec_get(v, a, &it);
        mk__put_item(out, found ? MK__ITEM_FOUND | MK__ITEM_VAL : 0, &it);
        return out->err;
    }
    case Q_PAGE: {
        a = mk_get_varint(&r);
        limit = mk_get_varint(&r);
        if ((rc = mk_reader_done(&r)) != 0)
            return rc;
        mk__page pg;
        mk__page_begin(&pg, out, MK__ITEM_VAL, limit);
        bool more = false;
        for (uint64_t i = a; i < v->len; i++) {
            fill(*slot(v, (size_t)i), &it);
            if (!mk__page_add(&pg, &it)) {
                more = true;
                break;
            }
        }
        return mk__page_end(&pg, more);
    }
    default:
        return MK_EDECODE;
    }
}

/* ---- local reads --------------------------------------------------------- */

size_t mk_vec_len(const mk_vec *v)
{
    return v->len;
}

bool mk_vec_get(const mk_vec *v, uint64_t index, mk_coll_item *out)
{
    if (index >= v->len) {
        memset(out, 0, sizeof *out);
        return false;
    }
    fill(*slot(v, (size_t)index), out);
    return true;
}

bool mk_vec_front(const mk_vec *v, mk_coll_item *out)
{
    return mk_vec_get(v, 0, out);
}

bool mk_vec_back(const mk_vec *v, mk_coll_item *out)
{
    return mk_vec_get(v, v->len ? v->len - 1 : 0, out);
}

bool mk_vec_index_of(const mk_vec *v, const void *p, size_t len,
                     uint64_t *index)
{
    for (size_t i = 0; i < v->len; i++) {
        const elem *e = *slot(v, i);
        if (mk__bytes_cmp(e->bytes, e->len, p, len) == 0) {
            *index = i;
            return true;
        }
    }
    return false;
}

bool mk_vec_contains(const mk_vec *v, const void *p, size_t len)
{
    uint64_t i;
    return mk_vec_index_of(v, p, len, &i);
}

int mk_vec_foreach(const mk_vec *v, mk_coll_visit_cb cb, void *data)
{
    mk_coll_item it;
    for (size_t i = 0; i < v->len; i++) {
        fill(*slot(v, i), &it);
        int rc = cb(&it, data);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- lifetime ------------------------------------------------------------ */

int mk_vec_new(const mk_coll_config *cfg, mk_vec **out)
{
    mk_vec *v = calloc(1, sizeof *v);
    *out = NULL;
    if (!v)
        return MK_ENOMEM;
    v->fsm.version = MK_FSM_VERSION;
    v->fsm.data = v;
    mk__coll_signature(&v->fsm.signature, "vec", cfg, false);
    v->fsm.apply = vec_apply;
    v->fsm.snapshot = vec_snapshot;
    v->fsm.restore = vec_restore;
    v->fsm.query = vec_query;
    *out = v;
    return 0;
}

void mk_vec_free(mk_vec *v)
{
    if (!v)
        return;
    clear_all(v);
    free(v);
}

struct mk_fsm *mk_vec_fsm(mk_vec *v)
{
    return &v->fsm;
}
