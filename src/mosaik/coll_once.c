/* Once: a replicated value that can be written once (mosaik.md §6.2).
 * Later writes still commit (they are in the log like any command) but
 * change nothing; the outcome tells each writer whether its write was the
 * one that took, which mosaik leaves the caller to find out by reading. */
#include <stdlib.h>
#include <string.h>

#include "coll_internal.h"
#include "mosaik/error.h"

enum {
    OP_WRITE = MK__CMD(MK__KIND_ONCE, 1),
    Q_GET = MK__QUERY(MK__KIND_ONCE, 0),
};

struct mk_once {
    struct mk_fsm fsm;
    mk__value value;
};

int mk_once_cmd_write(mk_buf *out, const void *val, size_t len)
{
    mk_put_u8(out, OP_WRITE);
    mk_put_bytes(out, val, len);
    return out->err;
}

static int once_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                      mk_buf *res)
{
    mk_once *o = fsm->data;
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    if (mk_get_u8(&r) != OP_WRITE && !r.err)
        return MK_EDECODE;
    size_t plen;
    const uint8_t *p = mk_get_bytes(&r, &plen, SIZE_MAX);
    int rc = mk_reader_done(&r);
    if (rc)
        return rc;
    if (mk__outcome_reserve(res, 0) != 0)
        return MK_ENOMEM;
    bool take = !o->value.set;
    if (take && mk__value_set(&o->value, p, plen) != 0)
        return MK_ENOMEM;
    mk__put_outcome(res, take ? 1 : 0, 0, NULL, 0);
    return 0;
}

static int once_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    const mk_once *o = fsm->data;
    return mk__value_snapshot(&o->value, MK__KIND_ONCE, out);
}

static int once_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    mk_once *o = fsm->data;
    return mk__value_restore(&o->value, MK__KIND_ONCE, snap, len);
}

int mk_once_query_get(mk_buf *out)
{
    mk_put_u8(out, Q_GET);
    return out->err;
}

static int once_query(struct mk_fsm *fsm, const uint8_t *q, size_t len,
                      mk_buf *out)
{
    const mk_once *o = fsm->data;
    mk_reader r;
    mk_reader_init(&r, q, len);
    if (mk_get_u8(&r) != Q_GET && !r.err)
        return MK_EDECODE;
    int rc = mk_reader_done(&r);
    if (rc)
        return rc;
    mk_coll_item it;
    bool found = mk_once_get(o, &it);
    mk__put_item(out, found ? MK__ITEM_FOUND | MK__ITEM_VAL : 0, &it);
    return out->err;
}

bool mk_once_get(const mk_once *o, mk_coll_item *out)
{
    return mk__value_get(&o->value, out);
}

int mk_once_new(const mk_coll_config *cfg, mk_once **out)
{
    mk_once *o = calloc(1, sizeof *o);
    *out = NULL;
    if (!o)
        return MK_ENOMEM;
    o->fsm.version = MK_FSM_VERSION;
    o->fsm.data = o;
    mk__coll_signature(&o->fsm.signature, "once", cfg, false);
    o->fsm.apply = once_apply;
    o->fsm.snapshot = once_snapshot;
    o->fsm.restore = once_restore;
    o->fsm.query = once_query;
    *out = o;
    return 0;
}

void mk_once_free(mk_once *o)
{
    if (!o)
        return;
    mk__value_clear(&o->value);
    free(o);
}

struct mk_fsm *mk_once_fsm(mk_once *o)
{
    return &o->fsm;
}
