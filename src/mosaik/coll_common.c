/* What every collection shares: byte ordering, key/value items, the
 * signature chain, and the outcome and reply encodings with their public
 * decoders (collections.h, coll_internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll_internal.h"
#include "mosaik/error.h"

int mk__bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                  size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    /* memcmp wants valid pointers even for n == 0, and an empty string
     * may arrive as NULL, so it is not called then. */
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* ---- key/value items ----------------------------------------------------- */

mk__kv *mk__kv_new(const uint8_t *key, size_t klen, const uint8_t *val,
                   size_t vlen)
{
    if (vlen > SIZE_MAX - sizeof(mk__kv) ||
        klen > SIZE_MAX - sizeof(mk__kv) - vlen)
        return NULL;
    mk__kv *kv = malloc(sizeof *kv + klen + vlen);
    if (!kv)
        return NULL;
    kv->klen = klen;
    kv->vlen = vlen;
    if (klen)
        memcpy(kv->bytes, key, klen);
    if (vlen)
        memcpy(kv->bytes + klen, val, vlen);
    return kv;
}

int mk__kv_cmp(const void *probe, const mk__node *n)
{
    const mk__probe *p = probe;
    const mk__kv *kv = mk__kv_of(n);
    return mk__bytes_cmp(p->p, p->len, mk__kv_key(kv), kv->klen);
}

void mk__kv_drop(mk__node *n)
{
    free(mk__kv_of(n));
}

/* ---- optional values ------------------------------------------------------ */

int mk__value_set(mk__value *v, const uint8_t *p, size_t len)
{
    uint8_t *copy = NULL;
    if (len) {
        if (!(copy = malloc(len)))
            return MK_ENOMEM;
        memcpy(copy, p, len);
    }
    free(v->p);
    v->p = copy;
    v->len = len;
    v->set = true;
    return 0;
}

void mk__value_clear(mk__value *v)
{
    free(v->p);
    v->p = NULL;
    v->len = 0;
    v->set = false;
}

bool mk__value_get(const mk__value *v, mk_coll_item *out)
{
    static const uint8_t empty[1];
    memset(out, 0, sizeof *out);
    if (!v->set)
        return false;
    /* A present empty value still gets a non-NULL pointer. */
    out->val = v->p ? v->p : empty;
    out->val_len = v->len;
    return true;
}

int mk__value_snapshot(const mk__value *v, int kind, mk_buf *out)
{
    mk__put_snap_header(out, kind);
    mk_put_u8(out, v->set ? 1 : 0);
    if (v->set)
        mk_put_bytes(out, v->p, v->len);
    return out->err;
}

int mk__value_restore(mk__value *v, int kind, const uint8_t *snap,
                      size_t len)
{
    mk_reader r;
    mk_reader_init(&r, snap, len);
    mk__get_snap_header(&r, kind);
    uint8_t set = mk_get_u8(&r);
    const uint8_t *p = NULL;
    size_t n = 0;
    if (!r.err && set > 1)
        r.err = MK_EDECODE;
    if (set == 1)
        p = mk_get_bytes(&r, &n, SIZE_MAX);
    int rc = mk_reader_done(&r);
    if (rc)
        return rc;
    if (!set) {
        mk__value_clear(v);
        return 0;
    }
    return mk__value_set(v, p, n);
}

/* ---- signatures ---------------------------------------------------------- */

void mk__coll_signature(mk_id *out, const char *kind,
                        const mk_coll_config *cfg, bool with_capacity)
{
    char name[64];
    int n = snprintf(name, sizeof name, "mosaik_collections_%s", kind);
    mk_id_from_strn(out, name, (size_t)n);
    mk_id_derive(out, out, cfg->store.b, MK_ID_LEN);
    if (cfg->type && cfg->type[0])
        mk_id_derive_str(out, out, cfg->type);
    if (with_capacity) {
        /* mosaik folds CAP in as u64 little-endian, u64::MAX unbounded. */
        uint64_t cap = cfg->capacity ? cfg->capacity : UINT64_MAX;
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(cap >> (8 * i));
        mk_id_derive(out, out, le, sizeof le);
    }
}

/* ---- encodings ----------------------------------------------------------- */

void mk__put_opt(mk_buf *b, const mk_coll_bytes *v)
{
    if (!v) {
        mk_put_u8(b, 0);
        return;
    }
    mk_put_u8(b, 1);
    mk_put_bytes(b, v->p, v->len);
}

const uint8_t *mk__get_opt(mk_reader *r, bool *present, size_t *len)
{
    static const uint8_t empty[1];
    *len = 0;
    *present = false;
    uint8_t tag = mk_get_u8(r);
    if (r->err)
        return NULL;
    if (tag == 0)
        return empty;
    if (tag != 1) {
        r->err = MK_EDECODE;
        return NULL;
    }
    *present = true;
    return mk_get_bytes(r, len, SIZE_MAX);
}

void mk__put_item(mk_buf *b, unsigned flags, const mk_coll_item *it)
{
    if (!(flags & MK__ITEM_FOUND))
        flags = 0;
    mk_put_u8(b, (uint8_t)flags);
    if (flags & MK__ITEM_PRIO)
        mk_put_bytes(b, it->prio, it->prio_len);
    if (flags & MK__ITEM_KEY)
        mk_put_bytes(b, it->key, it->key_len);
    if (flags & MK__ITEM_VAL)
        mk_put_bytes(b, it->val, it->val_len);
}

/* Reads the fields `flags` names into `it` (the others {NULL, 0}). */
static void get_fields(mk_reader *r, unsigned flags, mk_coll_item *it)
{
    memset(it, 0, sizeof *it);
    if (flags & MK__ITEM_PRIO)
        it->prio = mk_get_bytes(r, &it->prio_len, SIZE_MAX);
    if (flags & MK__ITEM_KEY)
        it->key = mk_get_bytes(r, &it->key_len, SIZE_MAX);
    if (flags & MK__ITEM_VAL)
        it->val = mk_get_bytes(r, &it->val_len, SIZE_MAX);
}

static bool valid_flags(unsigned flags, bool found_bit)
{
    unsigned fields = MK__ITEM_PRIO | MK__ITEM_KEY | MK__ITEM_VAL;
    if (flags & ~(fields | MK__ITEM_FOUND))
        return false;
    /* Fields only come with a found item; one encoding per reply. */
    if (found_bit && !(flags & MK__ITEM_FOUND) && (flags & fields))
        return false;
    return true;
}

static void get_item(mk_reader *r, bool *found, mk_coll_item *it)
{
    unsigned flags = mk_get_u8(r);
    memset(it, 0, sizeof *it);
    *found = false;
    if (r->err)
        return;
    if (!valid_flags(flags, true)) {
        r->err = MK_EDECODE;
        return;
    }
    *found = flags & MK__ITEM_FOUND;
    get_fields(r, flags, it);
}

int mk__outcome_reserve(mk_buf *b, size_t item_bytes)
{
    if (!b)
        return 0;
    /* Two varints, flags, and up to three length prefixes. */
    return mk_buf_reserve(b, 10 + 10 + 1 + 3 * 10 + item_bytes);
}

void mk__put_outcome(mk_buf *b, uint64_t changed, uint64_t evicted,
                     const mk_coll_item *item, unsigned fields)
{
    if (!b)
        return;
    mk_put_varint(b, changed);
    mk_put_varint(b, evicted);
    mk__put_item(b, item ? MK__ITEM_FOUND | fields : 0, item);
}

int mk_coll_outcome_decode(const void *res, size_t len, mk_coll_outcome *out)
{
    mk_reader r;
    mk_reader_init(&r, res, len);
    memset(out, 0, sizeof *out);
    out->changed = mk_get_varint(&r);
    out->evicted = mk_get_varint(&r);
    get_item(&r, &out->has_item, &out->item);
    int rc = mk_reader_done(&r);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

void mk__put_len_reply(mk_buf *b, uint64_t n)
{
    mk_put_varint(b, n);
}

int mk_coll_reply_len(const void *res, size_t len, uint64_t *n)
{
    mk_reader r;
    mk_reader_init(&r, res, len);
    *n = mk_get_varint(&r);
    int rc = mk_reader_done(&r);
    if (rc)
        *n = 0;
    return rc;
}

int mk_coll_reply_item(const void *res, size_t len, bool *found,
                       mk_coll_item *out)
{
    mk_reader r;
    mk_reader_init(&r, res, len);
    get_item(&r, found, out);
    int rc = mk_reader_done(&r);
    if (rc) {
        *found = false;
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ---- pages --------------------------------------------------------------- */

void mk__page_begin(mk__page *pg, mk_buf *b, unsigned fields, uint64_t limit)
{
    pg->b = b;
    pg->start = b->len;
    pg->fields = fields;
    pg->count = 0;
    pg->limit = mk__page_limit(limit);
    mk_put_u8(b, (uint8_t)fields);
    pg->count_at = b->len;
    mk_put_u32be(b, 0);
}

bool mk__page_add(mk__page *pg, const mk_coll_item *it)
{
    if (pg->count >= pg->limit || pg->b->len - pg->start > MK_COLL_PAGE_BYTES)
        return false;
    if (pg->fields & MK__ITEM_PRIO)
        mk_put_bytes(pg->b, it->prio, it->prio_len);
    if (pg->fields & MK__ITEM_KEY)
        mk_put_bytes(pg->b, it->key, it->key_len);
    if (pg->fields & MK__ITEM_VAL)
        mk_put_bytes(pg->b, it->val, it->val_len);
    pg->count++;
    return true;
}

int mk__page_end(mk__page *pg, bool more)
{
    mk_put_u8(pg->b, more ? 1 : 0);
    if (pg->b->err)
        return pg->b->err;
    uint8_t *p = pg->b->data + pg->count_at;
    uint32_t n = (uint32_t)pg->count;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    return 0;
}

int mk_coll_reply_page(const void *res, size_t len, mk_coll_visit_cb cb,
                       void *data, bool *more)
{
    mk_reader r;
    mk_reader_init(&r, res, len);
    *more = false;
    unsigned fields = mk_get_u8(&r);
    uint32_t count = mk_get_u32be(&r);
    if (!r.err && (fields & MK__ITEM_FOUND || !valid_flags(fields, false)))
        r.err = MK_EDECODE;
    /* Each field takes at least its one-byte length. */
    size_t per = (fields & MK__ITEM_PRIO ? 1 : 0) +
                 (fields & MK__ITEM_KEY ? 1 : 0) +
                 (fields & MK__ITEM_VAL ? 1 : 0);
    if (!r.err && per && count > (r.len - r.at) / per)
        r.err = MK_EDECODE;
    if (!r.err && !per && count)
        r.err = MK_EDECODE; /* items with no fields carry nothing */
    size_t items_at = r.at;
    /* Validate everything before the first callback. */
    mk_coll_item it;
    for (uint32_t i = 0; i < count && !r.err; i++)
        get_fields(&r, fields, &it);
    uint8_t m = mk_get_u8(&r);
    if (!r.err && m > 1)
        r.err = MK_EDECODE;
    int rc = mk_reader_done(&r);
    if (rc)
        return rc;
    *more = m == 1;
    r.at = items_at;
    for (uint32_t i = 0; i < count; i++) {
        get_fields(&r, fields, &it);
        if ((rc = cb(&it, data)) != 0)
            return rc;
    }
    return 0;
}

/* ---- snapshots ----------------------------------------------------------- */

void mk__put_snap_header(mk_buf *b, int kind)
{
    mk_put_u8(b, MK__SNAP_TAG(kind));
    mk_put_u8(b, MK__SNAP_VERSION);
}

void mk__get_snap_header(mk_reader *r, int kind)
{
    uint8_t tag = mk_get_u8(r);
    uint8_t ver = mk_get_u8(r);
    if (!r->err && (tag != MK__SNAP_TAG(kind) || ver != MK__SNAP_VERSION))
        r->err = MK_EDECODE;
}
