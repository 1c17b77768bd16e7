/* The membership logic of a group (group_members.h). */
#include "mosaik/group_members.h"

#include <string.h>

#include "mosaik/error.h"
#include "mosaik/group_internal.h"

/* ---- when ------------------------------------------------------------- */

raft_term mk__members_term_at(const struct raft *r, raft_index index)
{
    const struct raft_log *l = &r->log;
    if (index == 0)
        return 0;
    if (index == l->snapshot.last_index)
        return l->snapshot.last_term;
    size_t n = l->back >= l->front ? l->back - l->front
                                   : l->size - l->front + l->back;
    if (index <= l->offset || index > l->offset + n)
        return 0;
    size_t slot = (l->front + (size_t)(index - l->offset - 1)) % l->size;
    return l->entries[slot].term;
}

bool mk__members_may_change(const struct raft *r)
{
    if (raft_state((struct raft *)r) != RAFT_LEADER ||
        r->configuration_uncommitted_index != 0)
        return false;
    return mk__members_term_at(r, r->commit_index) == r->current_term;
}

/* ---- what ------------------------------------------------------------- */

mk__mplan mk__members_plan(mk__mstate *st, const mk__mview *v, size_t n,
                           const mk__mparams *p, int64_t now)
{
    mk__mplan none = {.member = -1};
    if (!st->leading_since)
        st->leading_since = now;
    if (now - st->leading_since < p->replace_after_ms)
        return none;
    int silent = -1, standby = -1;
    size_t voters = 0, members = 0;
    for (size_t i = 0; i < n; i++) {
        members += v[i].role == RAFT_VOTER || v[i].role == RAFT_STANDBY;
        if (v[i].role == RAFT_VOTER) {
            voters++;
            if (!v[i].self && silent < 0 &&
                now - v[i].heard_ms >= p->replace_after_ms)
                silent = (int)i;
        } else if (v[i].role == RAFT_STANDBY &&
                   now - v[i].heard_ms < p->alive_ms &&
                   (standby < 0 || v[i].heard_ms > v[standby].heard_ms)) {
            standby = (int)i;
        }
    }
    /* Short of voters for another reason (an operator's demote, the first
     * of a two-step rotation): the operator gets replace_after_ms to
     * finish before the leader fills the place itself. Short of what the
     * members can fill: a committee of three under max_voters 5 is not
     * short while all three vote, so a demote starts the clock. */
    size_t want = members < p->max_voters ? members : p->max_voters;
    if (voters >= want)
        st->short_since = 0;
    else if (!st->short_since)
        st->short_since = now;
    if (standby < 0)
        return none;
    /* Demoting first keeps the voters at most max_voters, and demoting a
     * silent voter takes no live one from the quorum. */
    if (silent >= 0)
        return (mk__mplan){.member = silent, .role = RAFT_STANDBY};
    if (voters < p->max_voters &&
        (st->refill || now - st->short_since >= p->replace_after_ms))
        return (mk__mplan){.member = standby, .role = RAFT_VOTER};
    return none;
}

void mk__members_planned(mk__mstate *st, const mk__mplan *plan, bool started)
{
    if (plan->member < 0)
        return;
    if (plan->role == RAFT_STANDBY)
        st->refill = started; /* the promotion it owes */
    else if (started)
        st->refill = false;
}

int mk__members_assign_check(const mk__mview *v, size_t n, size_t i,
                             int role, unsigned max_voters)
{
    if (i >= n)
        return MK_EINVAL;
    if (v[i].role == role)
        return 1;
    size_t voters = 0;
    for (size_t k = 0; k < n; k++)
        voters += v[k].role == RAFT_VOTER;
    if (v[i].role < 0 || v[i].self)
        return MK_EINVAL;
    if (role < 0)
        return v[i].role == RAFT_STANDBY ? 0 : MK_EINVAL;
    if (role == RAFT_VOTER)
        return voters < max_voters ? 0 : MK_EINVAL;
    return voters > 1 ? 0 : MK_EINVAL;
}

/* ---- the note ------------------------------------------------------------ */

void mk__note_encode(const mk_group_member_event *ev,
                     uint8_t out[MK__NOTE_LEN])
{
    out[0] = MK__NOTE_VERSION;
    out[1] = (uint8_t)ev->change;
    out[2] = ev->by_operator ? 1 : 0;
    out[3] = 0;
    mk_store_le64(out + 4, ev->index);
    memcpy(out + 12, ev->member.b, MK_ID_LEN);
    memcpy(out + 44, ev->by.b, MK_ID_LEN);
    /* The leader signs nothing here: its word is the log itself. */
    mk_store_le64(out + 76, ev->by_operator ? ev->at_unix_ms : 0);
    if (ev->by_operator)
        memcpy(out + 84, ev->sig, MK_SIG_LEN);
    else
        memset(out + 84, 0, MK_SIG_LEN);
}

int mk__note_decode(const uint8_t *body, size_t len,
                    mk_group_member_event *out)
{
    memset(out, 0, sizeof *out);
    if (len != MK__NOTE_LEN || body[0] != MK__NOTE_VERSION ||
        body[1] < MK_MEMBER_PROMOTED || body[1] > MK_MEMBER_REMOVED ||
        body[2] > 1 || body[3] != 0)
        return MK_EDECODE;
    out->change = (mk_member_change)body[1];
    out->by_operator = body[2] == 1;
    out->index = mk_load_le64(body + 4);
    memcpy(out->member.b, body + 12, MK_ID_LEN);
    memcpy(out->by.b, body + 44, MK_ID_LEN);
    out->at_unix_ms = mk_load_le64(body + 76);
    memcpy(out->sig, body + 84, MK_SIG_LEN);
    if (!out->by_operator) {
        /* One encoding per fact: what the leader does carries no time
         * and no signature. */
        if (out->at_unix_ms)
            return MK_EDECODE;
        for (size_t i = 0; i < MK_SIG_LEN; i++)
            if (out->sig[i])
                return MK_EDECODE;
    } else if (mk__note_assign_role(out->change) < 0) {
        return MK_EDECODE;
    }
    return 0;
}

int mk__note_assign_role(mk_member_change change)
{
    switch (change) {
    case MK_MEMBER_PROMOTED:
        return 1;
    case MK_MEMBER_DEMOTED:
        return 0;
    case MK_MEMBER_REMOVED:
        return 2;
    default:
        return -1;
    }
}

int mk_group_assign_verify(const mk_id *group, const mk_group_member_event *ev)
{
    int role = mk__note_assign_role(ev->change);
    if (!ev->by_operator || role < 0)
        return MK_EINVAL;
    /* The body the operator sent, rebuilt (group_client.c). */
    uint8_t body[MK__ASSIGN_LEN];
    memcpy(body, ev->member.b, MK_ID_LEN);
    body[MK_ID_LEN] = (uint8_t)role;
    memcpy(body + MK_ID_LEN + 1, ev->by.b, MK_ID_LEN);
    mk_store_le64(body + 2 * MK_ID_LEN + 1, ev->at_unix_ms);
    memcpy(body + MK__ASSIGN_LEN - MK_SIG_LEN, ev->sig, MK_SIG_LEN);
    uint8_t digest[32];
    mk__assign_digest(group, body, digest);
    return mk_verify(&ev->by, digest, sizeof digest, ev->sig) == 0
               ? 0
               : MK_EBAD_SIGNATURE;
}
