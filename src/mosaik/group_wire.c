/* The messages of the group protocols (group_internal.h describes the
 * exchange). Everything is mk_codec: varints, raw ids, length-prefixed
 * bytes; decoders are bounded and refuse trailing bytes, so one message has
 * one encoding and a malformed one is a protocol violation, never a guess.
 */
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/error.h"
#include "mosaik/group_internal.h"

void mk__hello_encode(mk_buf *b, const mk__hello *h)
{
    mk_put_u8(b, MK__G_HELLO);
    mk_put_u8(b, h->kind);
    mk_put_id(b, &h->network);
    mk_put_id(b, &h->group);
    mk_put_varint(b, h->raft_id);
}

int mk__hello_decode(const uint8_t *p, size_t n, mk__hello *h)
{
    mk_reader r;
    mk_reader_init(&r, p, n);
    if (mk_get_u8(&r) != MK__G_HELLO)
        return MK_EDECODE;
    h->kind = mk_get_u8(&r);
    mk_get_id(&r, &h->network);
    mk_get_id(&r, &h->group);
    h->raft_id = mk_get_varint(&r);
    if (mk_reader_done(&r) != 0 ||
        (h->kind != MK__LINK_RAFT && h->kind != MK__LINK_RPC))
        return MK_EDECODE;
    return 0;
}

void mk__req_encode(mk_buf *b, const mk__req *r)
{
    mk_put_u8(b, MK__G_REQ);
    mk_put_varint(b, r->id);
    mk_put_u8(b, r->op);
    mk_put_varint(b, r->timeout_ms);
    switch (r->op) {
    case MK__OP_EXEC:
        mk_put_raw(b, r->session, MK__SESSION_LEN);
        mk_put_varint(b, r->seq);
        mk_put_varint(b, r->ack);
        mk_put_bytes(b, r->body, r->len);
        break;
    case MK__OP_QUERY:
        mk_put_u8(b, r->level);
        mk_put_bytes(b, r->body, r->len);
        break;
    case MK__OP_ASSIGN:
        mk_put_bytes(b, r->body, r->len);
        break;
    default:
        mk_put_u8(b, r->flags);
    }
}

int mk__req_decode(const uint8_t *p, size_t n, mk__req *r)
{
    mk_reader rd;
    memset(r, 0, sizeof *r);
    mk_reader_init(&rd, p, n);
    if (mk_get_u8(&rd) != MK__G_REQ)
        return MK_EDECODE;
    r->id = mk_get_varint(&rd);
    r->op = mk_get_u8(&rd);
    uint64_t t = mk_get_varint(&rd);
    if (t > UINT32_MAX)
        return MK_EDECODE;
    r->timeout_ms = (uint32_t)t;
    const uint8_t *s;
    switch (r->op) {
    case MK__OP_EXEC:
        s = mk_get_raw(&rd, MK__SESSION_LEN);
        if (s)
            memcpy(r->session, s, MK__SESSION_LEN);
        r->seq = mk_get_varint(&rd);
        r->ack = mk_get_varint(&rd);
        r->body = mk_get_bytes(&rd, &r->len, MK__CMD_MAX);
        if (r->seq == 0 || r->ack >= r->seq)
            return MK_EDECODE;
        break;
    case MK__OP_QUERY:
        r->level = mk_get_u8(&rd);
        r->body = mk_get_bytes(&rd, &r->len, MK__CMD_MAX);
        if (r->level > MK_STRONG)
            return MK_EDECODE;
        break;
    case MK__OP_STATUS:
        r->flags = mk_get_u8(&rd);
        break;
    case MK__OP_ASSIGN:
        r->body = mk_get_bytes(&rd, &r->len, MK__ASSIGN_LEN);
        if (!r->body || r->len != MK__ASSIGN_LEN || r->body[MK_ID_LEN] > 2)
            return MK_EDECODE;
        break;
    default:
        return MK_EDECODE;
    }
    return mk_reader_done(&rd);
}

/* What an ASSIGN's signer signs: a domain, the GroupId (a signature for
 * one group is worth nothing in another), and the body up to the
 * signature. */
void mk__assign_digest(const mk_id *group, const uint8_t *body,
                       uint8_t out[32])
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, "mosaik/group/assign/1", 21);
    mk_blake3_update(&h, group->b, MK_ID_LEN);
    mk_blake3_update(&h, body, MK__ASSIGN_LEN - MK_SIG_LEN);
    mk_blake3_final(&h, out, 32);
}

void mk__resp_encode(mk_buf *b, const mk__resp *r)
{
    mk_put_u8(b, MK__G_RESP);
    mk_put_varint(b, r->id);
    mk_put_u8(b, r->op);
    mk_put_i64(b, r->status);
    mk_put_varint(b, r->applied);
    if (r->op == MK__OP_EXEC) {
        mk_put_raw(b, r->session, MK__SESSION_LEN);
        mk_put_varint(b, r->seq);
    }
    mk_put_u8(b, r->has_leader);
    if (r->has_leader)
        mk_put_id(b, &r->leader);
    mk_put_bytes(b, r->body, r->len);
}

int mk__resp_decode(const uint8_t *p, size_t n, mk__resp *r)
{
    mk_reader rd;
    memset(r, 0, sizeof *r);
    mk_reader_init(&rd, p, n);
    if (mk_get_u8(&rd) != MK__G_RESP)
        return MK_EDECODE;
    r->id = mk_get_varint(&rd);
    r->op = mk_get_u8(&rd);
    int64_t st = mk_get_i64(&rd);
    if (st > 0 || st < INT32_MIN)
        return MK_EDECODE;
    r->status = (int)st;
    r->applied = mk_get_varint(&rd);
    if (r->op == MK__OP_EXEC) {
        const uint8_t *s = mk_get_raw(&rd, MK__SESSION_LEN);
        if (s)
            memcpy(r->session, s, MK__SESSION_LEN);
        r->seq = mk_get_varint(&rd);
    } else if (r->op != MK__OP_QUERY && r->op != MK__OP_STATUS &&
               r->op != MK__OP_ASSIGN) {
        return MK_EDECODE;
    }
    uint8_t hl = mk_get_u8(&rd);
    if (hl > 1)
        return MK_EDECODE;
    r->has_leader = hl;
    if (hl)
        mk_get_id(&rd, &r->leader);
    r->body = mk_get_bytes(&rd, &r->len, MK__CMD_MAX);
    return mk_reader_done(&rd);
}

/* The role byte's values (group_internal.h). */
enum { WIRE_UNAVAILABLE, WIRE_FOLLOWER, WIRE_CANDIDATE, WIRE_LEADER };

static uint8_t role_to_wire(mk_member_role r)
{
    switch (r) {
    case MK_MEMBER_FOLLOWER: return WIRE_FOLLOWER;
    case MK_MEMBER_CANDIDATE: return WIRE_CANDIDATE;
    case MK_MEMBER_LEADER: return WIRE_LEADER;
    default: return WIRE_UNAVAILABLE;
    }
}

static mk_member_role role_of_wire(uint8_t b)
{
    switch (b) {
    case WIRE_FOLLOWER: return MK_MEMBER_FOLLOWER;
    case WIRE_CANDIDATE: return MK_MEMBER_CANDIDATE;
    case WIRE_LEADER: return MK_MEMBER_LEADER;
    default: return MK_MEMBER_UNAVAILABLE;
    }
}

void mk__status_encode(mk_buf *b, const mk_member_status *s)
{
    const mk_group_status *st = &s->st;
    mk_put_id(b, &s->self);
    mk_put_u8(b, (uint8_t)(st->online | st->is_leader << 1 |
                           st->has_leader << 2 | st->storage_failed << 3 |
                           st->is_voter << 4));
    mk_put_id(b, &st->leader);
    mk_put_u8(b, role_to_wire(s->role));
    mk_put_varint(b, st->term);
    mk_put_varint(b, st->commit_index);
    mk_put_varint(b, st->applied_index);
    mk_put_varint(b, st->applied);
    mk_put_varint(b, st->n_voters);
    for (size_t i = 0; i < st->n_voters && i < 64; i++)
        mk_put_id(b, &s->voters[i]);
    mk_put_u8(b, s->has_hash);
    if (s->has_hash)
        mk_put_id(b, &s->hash);
    mk_put_varint(b, s->entries_proposed);
    mk_put_varint(b, s->commands_proposed);
    mk_put_varint(b, st->n_members);
}

int mk__status_decode(const uint8_t *p, size_t n, mk_member_status *s)
{
    mk_reader r;
    memset(s, 0, sizeof *s);
    mk_reader_init(&r, p, n);
    mk_get_id(&r, &s->self);
    uint8_t f = mk_get_u8(&r);
    if (f > 31)
        return MK_EDECODE;
    s->st.online = f & 1;
    s->st.is_leader = f >> 1 & 1;
    s->st.has_leader = f >> 2 & 1;
    s->st.storage_failed = f >> 3 & 1;
    s->st.is_voter = f >> 4 & 1;
    mk_get_id(&r, &s->st.leader);
    s->role = role_of_wire(mk_get_u8(&r));
    s->st.term = mk_get_varint(&r);
    s->st.commit_index = mk_get_varint(&r);
    s->st.applied_index = mk_get_varint(&r);
    s->st.applied = mk_get_varint(&r);
    s->st.n_voters = mk_get_count(&r, 64, MK_ID_LEN);
    for (size_t i = 0; i < s->st.n_voters; i++)
        mk_get_id(&r, &s->voters[i]);
    uint8_t hh = mk_get_u8(&r);
    if (hh > 1)
        return MK_EDECODE;
    s->has_hash = hh;
    if (s->has_hash)
        mk_get_id(&r, &s->hash);
    s->entries_proposed = mk_get_varint(&r);
    s->commands_proposed = mk_get_varint(&r);
    s->st.n_members = (size_t)mk_get_varint(&r);
    if (s->st.n_members > 64)
        return MK_EDECODE;
    return mk_reader_done(&r);
}

bool mk__status_retryable(int status)
{
    return status == MK_ENOT_LEADER || status == MK_EOFFLINE ||
           status == MK_EAGAIN || status == MK_ECONNECT_TIMEOUT ||
           status == MK_ECLOSED || status == MK_ECANCELED ||
           status == MK_EBUSY;
}
