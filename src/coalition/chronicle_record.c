/* Encodings of the Chronicle entries members record
 * (coalition/chronicle_record.h). */
#include "coalition/chronicle_record.h"

#include <string.h>

#include "mosaik/error.h"

static void put_id(uint8_t *at, bool present, const mk_id *id)
{
    if (present)
        memcpy(at, id->b, MK_ID_LEN);
    else
        memset(at, 0, MK_ID_LEN);
}

/* Absent ids must be zeros: any other bytes would be a second encoding
 * of the same fact, and `once` compares bytes. */
static bool get_id(const uint8_t *at, bool present, mk_id *id)
{
    memcpy(id->b, at, MK_ID_LEN);
    if (present)
        return true;
    for (size_t i = 0; i < MK_ID_LEN; i++)
        if (at[i])
            return false;
    return true;
}

void co_record_card_encode(const co_record_card *r,
                           uint8_t out[CO_RECORD_CARD_LEN])
{
    out[0] = CO_RECORD_VERSION;
    out[1] = r->replaced ? 1 : 0;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(r->publication >> (8 * i));
    memcpy(out + 10, r->card.b, MK_ID_LEN);
    memcpy(out + 42, r->citizen.b, MK_ID_LEN);
    put_id(out + 74, r->replaced, &r->previous);
}

int co_record_card_decode(const uint8_t *body, size_t len,
                          co_record_card *out)
{
    memset(out, 0, sizeof *out);
    if (len != CO_RECORD_CARD_LEN || body[0] != CO_RECORD_VERSION ||
        body[1] > 1)
        return MK_EDECODE;
    out->replaced = body[1] == 1;
    for (int i = 0; i < 8; i++)
        out->publication |= (uint64_t)body[2 + i] << (8 * i);
    memcpy(out->card.b, body + 10, MK_ID_LEN);
    memcpy(out->citizen.b, body + 42, MK_ID_LEN);
    return get_id(body + 74, out->replaced, &out->previous) ? 0 : MK_EDECODE;
}

void co_record_rotation_encode(const co_record_rotation *r,
                               uint8_t out[CO_RECORD_ROTATION_LEN])
{
    out[0] = CO_RECORD_VERSION;
    out[1] = (uint8_t)((r->has_old ? 1 : 0) | (r->has_new ? 2 : 0));
    put_id(out + 2, r->has_old, &r->old_hash);
    put_id(out + 34, r->has_new, &r->new_hash);
}

int co_record_rotation_decode(const uint8_t *body, size_t len,
                              co_record_rotation *out)
{
    memset(out, 0, sizeof *out);
    if (len != CO_RECORD_ROTATION_LEN || body[0] != CO_RECORD_VERSION ||
        body[1] > 3)
        return MK_EDECODE;
    out->has_old = body[1] & 1;
    out->has_new = (body[1] & 2) != 0;
    return get_id(body + 2, out->has_old, &out->old_hash) &&
                   get_id(body + 34, out->has_new, &out->new_hash)
               ? 0
               : MK_EDECODE;
}

void co_record_committee_encode(const co_record_committee *r,
                                uint8_t out[CO_RECORD_COMMITTEE_LEN])
{
    const mk_group_member_event *e = &r->ev;
    out[0] = CO_RECORD_VERSION;
    out[1] = r->module;
    out[2] = (uint8_t)e->change;
    out[3] = e->by_operator ? 1 : 0;
    out[4] = 0;
    mk_store_le64(out + 5, e->index);
    memcpy(out + 13, e->member.b, MK_ID_LEN);
    memcpy(out + 45, e->by.b, MK_ID_LEN);
    mk_store_le64(out + 77, e->by_operator ? e->at_unix_ms : 0);
    if (e->by_operator)
        memcpy(out + 85, e->sig, MK_SIG_LEN);
    else
        memset(out + 85, 0, MK_SIG_LEN);
}

int co_record_committee_decode(const uint8_t *body, size_t len,
                               co_record_committee *out)
{
    memset(out, 0, sizeof *out);
    mk_group_member_event *e = &out->ev;
    if (len != CO_RECORD_COMMITTEE_LEN || body[0] != CO_RECORD_VERSION ||
        body[2] < MK_MEMBER_PROMOTED || body[2] > MK_MEMBER_REMOVED ||
        body[3] > 1 || body[4] != 0)
        return MK_EDECODE;
    out->module = body[1];
    e->change = (mk_member_change)body[2];
    e->by_operator = body[3] == 1;
    e->index = mk_load_le64(body + 5);
    memcpy(e->member.b, body + 13, MK_ID_LEN);
    memcpy(e->by.b, body + 45, MK_ID_LEN);
    e->at_unix_ms = mk_load_le64(body + 77);
    memcpy(e->sig, body + 85, MK_SIG_LEN);
    if (e->by_operator)
        return 0;
    /* What the leader does carries no time and no signature: zeros, so
     * one fact has one encoding. */
    if (e->at_unix_ms)
        return MK_EDECODE;
    for (size_t i = 0; i < MK_SIG_LEN; i++)
        if (e->sig[i])
            return MK_EDECODE;
    return 0;
}
