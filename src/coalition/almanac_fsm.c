/* The Almanac state machine: the coalition's shared clock.
 *
 * A TICK names the sequence number it claims, and is accepted only when
 * that is exactly the last one plus one, from a committee member. Whoever
 * leads proposes last+1 at the cadence; a deposed leader's late proposal
 * and a new leader's proposal for the same number cannot both land, so
 * the sequence never repeats, never skips and never goes back, across
 * any number of leader changes. Members then STAMP the latest tick with
 * their own clock: the stamps are advisory (SPEC §4), the sequence is the
 * fact.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "module_fsm.h"

typedef struct almanac {
    co_module_info m;
    co_almanac_tick latest;
    co_retirement ret;
    co__almanac_tick_cb on_tick;
    void *on_tick_data;
} almanac;

/* A command, decoded. */
typedef struct almanac_cmd {
    uint8_t kind;
    uint64_t seq;         /* TICK, STAMP */
    co_almanac_stamp s;   /* TICK, STAMP */
    co_retirement retire; /* RETIRE */
} almanac_cmd;

/* Decodes a whole command and checks what needs no state
 * (module_fsm.h): the member a TICK or STAMP names is on the committee.
 * They carry no signature; whether the seq is the next one is state. */
static int almanac_check(const almanac *a, const mk_id *module_sig,
                         const uint8_t *cmd, size_t len, almanac_cmd *out)
{
    memset(out, 0, sizeof *out);
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    out->kind = mk_get_u8(&r);
    if (out->kind == CO__CMD_RETIRE)
        return co__retire_check(&r, &a->m, NULL, module_sig, &out->retire);
    if (out->kind != CO__ALMANAC_TICK && out->kind != CO__ALMANAC_STAMP)
        return MK_EDECODE;
    out->seq = mk_get_varint(&r);
    mk_get_id(&r, &out->s.member);
    out->s.unix_ms = mk_get_i64(&r);
    if (mk_reader_done(&r) != 0)
        return MK_EDECODE;
    return co_module_is_member(&a->m, &out->s.member) ? 0 : MK_ENOT_ALLOWED;
}

static int almanac_admit(struct mk_fsm *fsm, const uint8_t *cmd, size_t len)
{
    almanac_cmd c;
    return almanac_check(fsm->data, &fsm->signature, cmd, len, &c);
}

static int almanac_apply_cmd(struct mk_fsm *fsm, const uint8_t *cmd,
                             size_t len, mk_buf *result)
{
    almanac *a = fsm->data;
    almanac_cmd c;
    int rc = almanac_check(a, &fsm->signature, cmd, len, &c);
    if (rc == MK_EDECODE || (rc < 0 && c.kind == CO__CMD_RETIRE))
        return MK_EDECODE;
    if (c.kind == CO__CMD_RETIRE)
        return co__retire_apply(&a->ret, &c.retire, result);

    bool ok = rc == 0 && !a->ret.retired;
    const co_almanac_stamp *s = &c.s;
    if (ok && c.kind == CO__ALMANAC_TICK) {
        ok = c.seq == a->latest.seq + 1;
        if (ok) {
            a->latest.seq = c.seq;
            a->latest.stamps[0] = *s;
            a->latest.n_stamps = 1;
        }
    } else if (ok) {
        ok = c.seq == a->latest.seq && a->latest.seq > 0 &&
             a->latest.n_stamps < CO_ALMANAC_MAX_STAMPS;
        for (size_t i = 0; ok && i < a->latest.n_stamps; i++)
            ok = !mk_id_eq(&a->latest.stamps[i].member, &s->member);
        if (ok)
            a->latest.stamps[a->latest.n_stamps++] = *s;
    }
    mk_put_u8(result, ok);
    mk_put_varint(result, a->latest.seq);
    if (ok && a->on_tick)
        a->on_tick(&a->latest, c.kind == CO__ALMANAC_STAMP, a->on_tick_data);
    return 0;
}

static int almanac_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                         mk_buf *result)
{
    int rc = almanac_apply_cmd(fsm, cmd, len, result);
    return co__refuse_malformed(rc, result);
}

static int almanac_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    almanac *a = fsm->data;
    co__retirement_put(out, &a->ret);
    mk_put_varint(out, a->latest.seq);
    mk_put_varint(out, a->latest.n_stamps);
    for (size_t i = 0; i < a->latest.n_stamps; i++) {
        mk_put_id(out, &a->latest.stamps[i].member);
        mk_put_i64(out, a->latest.stamps[i].unix_ms);
    }
    return out->err;
}

static int almanac_restore(struct mk_fsm *fsm, const uint8_t *snap,
                           size_t len)
{
    almanac *a = fsm->data;
    co_almanac_tick t;
    co_retirement ret;
    memset(&t, 0, sizeof t);
    mk_reader r;
    mk_reader_init(&r, snap, len);
    co__retirement_get(&r, &ret);
    t.seq = mk_get_varint(&r);
    t.n_stamps = mk_get_count(&r, CO_ALMANAC_MAX_STAMPS, MK_ID_LEN + 1);
    for (size_t i = 0; i < t.n_stamps; i++) {
        mk_get_id(&r, &t.stamps[i].member);
        t.stamps[i].unix_ms = mk_get_i64(&r);
    }
    if (mk_reader_done(&r) != 0)
        return MK_EDECODE;
    a->latest = t;
    a->ret = ret;
    return 0;
}

int co__almanac_fsm_init(struct mk_fsm *fsm, const co_module_info *m)
{
    almanac *a = calloc(1, sizeof *a);
    if (!a)
        return MK_ENOMEM;
    a->m = *m;
    memset(fsm, 0, sizeof *fsm);
    fsm->version = MK_FSM_VERSION;
    fsm->data = a;
    mk_id_from_str(&fsm->signature, CO__ALMANAC_SIGNATURE);
    fsm->apply = almanac_apply;
    fsm->snapshot = almanac_snapshot;
    fsm->restore = almanac_restore;
    fsm->admit = almanac_admit;
    return 0;
}

void co__almanac_fsm_free(struct mk_fsm *fsm)
{
    free(fsm->data);
    fsm->data = NULL;
}

void co__almanac_on_tick(struct mk_fsm *fsm, co__almanac_tick_cb cb,
                         void *data)
{
    almanac *a = fsm->data;
    a->on_tick = cb;
    a->on_tick_data = data;
}

const co_almanac_tick *co__almanac_latest(const struct mk_fsm *fsm)
{
    return &((const almanac *)fsm->data)->latest;
}

const co_retirement *co__almanac_retirement(const struct mk_fsm *fsm)
{
    return &((const almanac *)fsm->data)->ret;
}

void co__almanac_cmd(mk_buf *out, uint8_t kind, uint64_t seq,
                     const mk_peer_id *member, int64_t unix_ms)
{
    mk_put_u8(out, kind);
    mk_put_varint(out, seq);
    mk_put_id(out, member);
    mk_put_i64(out, unix_ms);
}
