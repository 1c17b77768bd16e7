/* Cell: a replicated optional value (mosaik.md §6.2): write, clear, and a
 * compare-and-swap on the encoded bytes that tells its submitter whether
 * it matched. */
#include <stdlib.h>
#include <string.h>

#include "coll_internal.h"
#include "mosaik/error.h"

enum {
    OP_CLEAR = MK__CMD(MK__KIND_CELL, 0),
    OP_WRITE = MK__CMD(MK__KIND_CELL, 1),
    OP_CAS = MK__CMD(MK__KIND_CELL, 2),
    Q_GET = MK__QUERY(MK__KIND_CELL, 0),
};

struct mk_cell {
    struct mk_fsm fsm;
    mk__value value;
};

int mk_cell_cmd_write(mk_buf *out, const void *val, size_t len)
{
    mk_put_u8(out, OP_WRITE);
    mk_put_bytes(out, val, len);
    return out->err;
}

int mk_cell_cmd_cas(mk_buf *out, const mk_coll_bytes *expected,
                    const mk_coll_bytes *desired)
{
    mk_put_u8(out, OP_CAS);
    mk__put_opt(out, expected);
    mk__put_opt(out, desired);
    return out->err;
}

int mk_cell_cmd_clear(mk_buf *out)
{
    mk_put_u8(out, OP_CLEAR);
    return out->err;
}

static int cell_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                      mk_buf *res)
{
    mk_cell *c = fsm->data;
    mk__value *v = &c->value;
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    uint8_t op = mk_get_u8(&r);
    const uint8_t *p = NULL, *exp = NULL;
    size_t plen = 0, elen = 0;
    bool has_exp = false, has_des = false;
    switch (op) {
    case OP_CLEAR:
        break;
    case OP_WRITE:
        p = mk_get_bytes(&r, &plen, SIZE_MAX);
        has_des = true;
        break;
    case OP_CAS:
        exp = mk__get_opt(&r, &has_exp, &elen);
        p = mk__get_opt(&r, &has_des, &plen);
        break;
    default:
        if (!r.err)
            r.err = MK_EDECODE;
    }
    int rc = mk_reader_done(&r);
    if (rc)
        return rc;
    bool match = true;
    if (op == OP_CAS) {
        if (!has_exp)
            match = !v->set;
        else
            match = v->set && mk__bytes_cmp(v->p, v->len, exp, elen) == 0;
    }
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    uint64_t changed = match;
    if (match && has_des) {
        /* mk__value_set leaves the value alone when it fails. */
        if (mk__value_set(v, p, plen) != 0)
            return MK_ENOMEM;
    } else if (match) {
        if (op == OP_CLEAR)
            changed = v->set; /* clearing an empty cell changes nothing */
        mk__value_clear(v);
    }
    mk__put_outcome(res, changed, 0, NULL, 0);
    return 0;
}

static int cell_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    const mk_cell *c = fsm->data;
    return mk__value_snapshot(&c->value, MK__KIND_CELL, out);
}

static int cell_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    mk_cell *c = fsm->data;
    return mk__value_restore(&c->value, MK__KIND_CELL, snap, len);
}

int mk_cell_query_get(mk_buf *out)
{
    mk_put_u8(out, Q_GET);
    return out->err;
}

static int cell_query(struct mk_fsm *fsm, const uint8_t *q, size_t len,
                      mk_buf *out)
{
    const mk_cell *c = fsm->data;
    mk_reader r;
    mk_reader_init(&r, q, len);
    if (mk_get_u8(&r) != Q_GET && !r.err)
        return MK_EDECODE;
    int rc = mk_reader_done(&r);
    if (rc)
        return rc;
    mk_coll_item it;
    bool found = mk_cell_get(c, &it);
    mk__put_item(out, found ? MK__ITEM_FOUND | MK__ITEM_VAL : 0, &it);
    return out->err;
}

bool mk_cell_get(const mk_cell *c, mk_coll_item *out)
{
    return mk__value_get(&c->value, out);
}

int mk_cell_new(const mk_coll_config *cfg, mk_cell **out)
{
    mk_cell *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return MK_ENOMEM;
    c->fsm.version = MK_FSM_VERSION;
    c->fsm.data = c;
    mk__coll_signature(&c->fsm.signature, "cell", cfg, false);
    c->fsm.apply = cell_apply;
    c->fsm.snapshot = cell_snapshot;
    c->fsm.restore = cell_restore;
    c->fsm.query = cell_query;
    *out = c;
    return 0;
}

void mk_cell_free(mk_cell *c)
{
    if (!c)
        return;
    mk__value_clear(&c->value);
    free(c);
}

struct mk_fsm *mk_cell_fsm(mk_cell *c)
{
    return &c->fsm;
}
