/* Raft messages as bytes on a group link (raft_bridge.c carries them).
 *
 * libraft's own encoding lives inside raft_uv and is not exported, and it
 * trusts what it reads: a length field decides an allocation. Ours is the
 * project's varint codec, and every count and length is checked against
 * the bytes actually there before anything is allocated, so a voter that
 * sends garbage costs at most the memory of what it sent.
 *
 * One message, all integers varints:
 *
 *   u8 type (RAFT_IO_*), then by type:
 *   APPEND_ENTRIES         term prev_index prev_term commit n
 *                          n x (term, u8 entry type, len)  then the n
 *                          entry payloads, back to back
 *   APPEND_ENTRIES_RESULT  term rejected last_log_index
 *   REQUEST_VOTE           term candidate last_index last_term u8 flags
 *                          (bit 0 disrupt_leader, bit 1 pre_vote)
 *   REQUEST_VOTE_RESULT    term u8 granted u8 pre_vote (raft_tribool)
 *   INSTALL_SNAPSHOT       term last_index last_term conf_index n
 *                          n x (id, u8 role, address) len, then len bytes
 *   TIMEOUT_NOW            term last_index last_term
 *
 * The sender's id and address are never on the wire: the receiver takes
 * them from the authenticated link.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/group_internal.h"

#define MAX_SERVERS 1024
#define MAX_ADDRESS 256
#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

int mk__rmsg_encode(const struct raft_message *m, mk_buf *head,
                    mk__rmsg_parts *parts)
{
    parts->n = 0;
    parts->entries = NULL;
    parts->data = NULL;
    parts->data_len = 0;
    parts->payload = 0;
    mk_put_u8(head, (uint8_t)m->type);
    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES: {
        const struct raft_append_entries *a = &m->append_entries;
        mk_put_varint(head, a->term);
        mk_put_varint(head, a->prev_log_index);
        mk_put_varint(head, a->prev_log_term);
        mk_put_varint(head, a->leader_commit);
        mk_put_varint(head, a->n_entries);
        for (unsigned i = 0; i < a->n_entries; i++) {
            mk_put_varint(head, a->entries[i].term);
            mk_put_u8(head, (uint8_t)a->entries[i].type);
            mk_put_varint(head, a->entries[i].buf.len);
            parts->payload += a->entries[i].buf.len;
        }
        parts->entries = a->entries;
        parts->n = a->n_entries;
        break;
    }
    case RAFT_IO_APPEND_ENTRIES_RESULT: {
        const struct raft_append_entries_result *a = &m->append_entries_result;
        mk_put_varint(head, a->term);
        mk_put_varint(head, a->rejected);
        mk_put_varint(head, a->last_log_index);
        break;
    }
    case RAFT_IO_REQUEST_VOTE: {
        const struct raft_request_vote *v = &m->request_vote;
        mk_put_varint(head, v->term);
        mk_put_varint(head, v->candidate_id);
        mk_put_varint(head, v->last_log_index);
        mk_put_varint(head, v->last_log_term);
        mk_put_u8(head, (uint8_t)((v->disrupt_leader ? 1 : 0) |
                                  (v->pre_vote ? 2 : 0)));
        break;
    }
    case RAFT_IO_REQUEST_VOTE_RESULT: {
        const struct raft_request_vote_result *v = &m->request_vote_result;
        mk_put_varint(head, v->term);
        mk_put_u8(head, v->vote_granted ? 1 : 0);
        mk_put_u8(head, (uint8_t)v->pre_vote);
        break;
    }
    case RAFT_IO_INSTALL_SNAPSHOT: {
        const struct raft_install_snapshot *s = &m->install_snapshot;
        mk_put_varint(head, s->term);
        mk_put_varint(head, s->last_index);
        mk_put_varint(head, s->last_term);
        mk_put_varint(head, s->conf_index);
        mk_put_varint(head, s->conf.n);
        for (unsigned i = 0; i < s->conf.n; i++) {
            mk_put_varint(head, s->conf.servers[i].id);
            mk_put_u8(head, (uint8_t)s->conf.servers[i].role);
            mk_put_str(head, s->conf.servers[i].address);
        }
        mk_put_varint(head, s->data.len);
        parts->data = s->data.base;
        parts->data_len = s->data.len;
        parts->payload = s->data.len;
        break;
    }
    case RAFT_IO_TIMEOUT_NOW: {
        const struct raft_timeout_now *t = &m->timeout_now;
        mk_put_varint(head, t->term);
        mk_put_varint(head, t->last_log_index);
        mk_put_varint(head, t->last_log_term);
        break;
    }
    default:
        return MK_EINVAL;
    }
    return head->err;
}

void mk__rmsg_free(struct raft_message *m)
{
    if (m->type == RAFT_IO_APPEND_ENTRIES) {
        struct raft_append_entries *a = &m->append_entries;
        if (a->n_entries > 0)
            raft_free(a->entries[0].batch);
        raft_free(a->entries);
        a->entries = NULL;
        a->n_entries = 0;
    } else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
        raft_configuration_close(&m->install_snapshot.conf);
        raft_free(m->install_snapshot.data.base);
        m->install_snapshot.data.base = NULL;
    }
}

/* The entries of an AppendEntries: headers from `r`, payloads after them.
 * One raft_malloc'd batch holds every payload (8-byte aligned, as
 * raft_uv lays them out), so libraft frees it the way it frees its own. */
static int decode_entries(mk_reader *r, struct raft_append_entries *a)
{
    size_t n = mk_get_count(r, UINT32_MAX, 3);
    if (r->err)
        return MK_EDECODE;
    a->n_entries = 0;
    a->entries = NULL;
    if (n == 0)
        return 0;
    struct raft_entry *e = raft_calloc(n, sizeof *e);
    if (!e)
        return MK_ENOMEM;
    size_t total = 0, room = 0;
    for (size_t i = 0; i < n; i++) {
        e[i].term = mk_get_varint(r);
        uint8_t type = mk_get_u8(r);
        uint64_t len = mk_get_varint(r);
        if (r->err || (type != RAFT_COMMAND && type != RAFT_BARRIER &&
                       type != RAFT_CHANGE) ||
            len > r->len - r->at) {
            raft_free(e);
            return MK_EDECODE;
        }
        e[i].type = type;
        e[i].buf.len = (size_t)len;
        total += (size_t)len;
        room += ALIGN8((size_t)len);
    }
    if (total != r->len - r->at) {
        raft_free(e);
        return MK_EDECODE;
    }
    uint8_t *batch = raft_malloc(room ? room : 8);
    if (!batch) {
        raft_free(e);
        return MK_ENOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        e[i].batch = batch;
        e[i].buf.base = e[i].buf.len ? batch + at : NULL;
        memcpy(batch + at, mk_get_raw(r, e[i].buf.len), e[i].buf.len);
        at += ALIGN8(e[i].buf.len);
    }
    a->entries = e;
    a->n_entries = (unsigned)n;
    return 0;
}

static int decode_snapshot(mk_reader *r, struct raft_install_snapshot *s)
{
    s->term = mk_get_varint(r);
    s->last_index = mk_get_varint(r);
    s->last_term = mk_get_varint(r);
    s->conf_index = mk_get_varint(r);
    raft_configuration_init(&s->conf);
    s->data.base = NULL;
    s->data.len = 0;
    size_t n = mk_get_count(r, MAX_SERVERS, 3);
    int rc = r->err ? MK_EDECODE : 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        raft_id id = mk_get_varint(r);
        uint8_t role = mk_get_u8(r);
        char *addr = mk_get_strdup(r, MAX_ADDRESS);
        if (!addr || r->err || id == 0 ||
            (role != RAFT_VOTER && role != RAFT_STANDBY &&
             role != RAFT_SPARE) ||
            raft_configuration_add(&s->conf, id, addr, role) != 0)
            rc = MK_EDECODE;
        free(addr);
    }
    uint64_t len = mk_get_varint(r);
    if (rc == 0 && (r->err || len != r->len - r->at))
        rc = MK_EDECODE;
    if (rc == 0) {
        s->data.base = raft_malloc(len ? (size_t)len : 1);
        if (!s->data.base)
            rc = MK_ENOMEM;
        else {
            s->data.len = (size_t)len;
            memcpy(s->data.base, mk_get_raw(r, (size_t)len), (size_t)len);
        }
    }
    if (rc != 0)
        raft_configuration_close(&s->conf);
    return rc;
}

int mk__rmsg_decode(const uint8_t *p, size_t len, struct raft_message *m)
{
    mk_reader r;
    mk_reader_init(&r, p, len);
    memset(m, 0, sizeof *m);
    m->type = mk_get_u8(&r);
    int rc = 0;
    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES: {
        struct raft_append_entries *a = &m->append_entries;
        a->term = mk_get_varint(&r);
        a->prev_log_index = mk_get_varint(&r);
        a->prev_log_term = mk_get_varint(&r);
        a->leader_commit = mk_get_varint(&r);
        /* Consumes the rest: nothing may follow the payloads. */
        return decode_entries(&r, a);
    }
    case RAFT_IO_APPEND_ENTRIES_RESULT: {
        struct raft_append_entries_result *a = &m->append_entries_result;
        a->term = mk_get_varint(&r);
        a->rejected = mk_get_varint(&r);
        a->last_log_index = mk_get_varint(&r);
        break;
    }
    case RAFT_IO_REQUEST_VOTE: {
        struct raft_request_vote *v = &m->request_vote;
        v->term = mk_get_varint(&r);
        v->candidate_id = mk_get_varint(&r);
        v->last_log_index = mk_get_varint(&r);
        v->last_log_term = mk_get_varint(&r);
        uint8_t flags = mk_get_u8(&r);
        if (flags & ~3u)
            return MK_EDECODE;
        v->disrupt_leader = flags & 1;
        v->pre_vote = (flags & 2) != 0;
        break;
    }
    case RAFT_IO_REQUEST_VOTE_RESULT: {
        struct raft_request_vote_result *v = &m->request_vote_result;
        v->term = mk_get_varint(&r);
        uint8_t granted = mk_get_u8(&r), pre = mk_get_u8(&r);
        if (granted > 1 || pre > raft_tribool_false)
            return MK_EDECODE;
        v->vote_granted = granted;
        v->pre_vote = (raft_tribool)pre;
        break;
    }
    case RAFT_IO_INSTALL_SNAPSHOT:
        return decode_snapshot(&r, &m->install_snapshot);
    case RAFT_IO_TIMEOUT_NOW: {
        struct raft_timeout_now *t = &m->timeout_now;
        t->term = mk_get_varint(&r);
        t->last_log_index = mk_get_varint(&r);
        t->last_log_term = mk_get_varint(&r);
        break;
    }
    default:
        return MK_EDECODE;
    }
    if (rc == 0 && mk_reader_done(&r) != 0)
        rc = MK_EDECODE;
    return rc;
}
