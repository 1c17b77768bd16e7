/* Signed peer entries and departures (include/mosaik/entry.h).
 *
 * Lists are kept sorted and unique in memory, so encoding is canonical and
 * decoding can refuse any other order: a peer cannot produce two
 * different byte strings for one entry, and every node stores exactly
 * what was signed.
 */
#include "mosaik/entry.h"

#include <stdlib.h>
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/codec.h"
#include "mosaik/error.h"

#define ENTRY_FORMAT 1

void mk_entry_init(mk_peer_entry *e, const mk_id *network,
                   const mk_peer_id *peer, int64_t start_ms)
{
    memset(e, 0, sizeof *e);
    e->network = *network;
    e->peer = *peer;
    e->start_ms = e->update_ms = start_ms;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void mk_entry_free(mk_peer_entry *e)
{
    free_strs(e->addrs, e->n_addrs);
    free_strs(e->tags, e->n_tags);
    free(e->streams);
    free(e->groups);
    for (size_t i = 0; i < e->n_tickets; i++)
        free(e->tickets[i].data);
    free(e->tickets);
    free(e->wire);
    memset(e, 0, sizeof *e);
}

/* ---- sorted string and id sets ----------------------------------------- */

static int str_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MK_ENTRY_MAX_STR)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    return 1;
}

/* Index where `s` is or would go; *found set when present. */
static size_t str_find(char **v, size_t n, const char *s, int *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(v[mid], s);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static int str_add(char ***v, size_t *n, size_t max, const char *s)
{
    if (!str_valid(s))
        return MK_EINVAL;
    int found;
    size_t at = str_find(*v, *n, s, &found);
    if (found)
        return 0;
    if (*n >= max)
        return MK_EFULL;
    char *copy = strdup(s);
    char **grown = realloc(*v, (*n + 1) * sizeof **v);
    if (!copy || !grown) {
        free(copy);
        if (grown)
            *v = grown;
        return MK_ENOMEM;
    }
    *v = grown;
    memmove(grown + at + 1, grown + at, (*n - at) * sizeof *grown);
    grown[at] = copy;
    (*n)++;
    return 1;
}

static int str_remove(char **v, size_t *n, const char *s)
{
    int found;
    size_t at = str_find(v, *n, s, &found);
    if (!found)
        return 0;
    free(v[at]);
    memmove(v + at, v + at + 1, (*n - at - 1) * sizeof *v);
    (*n)--;
    return 1;
}

static size_t id_find(const mk_id *v, size_t n, const mk_id *id, int *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = mk_id_cmp(&v[mid], id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static int id_add(mk_id **v, size_t *n, const mk_id *id)
{
    int found;
    size_t at = id_find(*v, *n, id, &found);
    if (found)
        return 0;
    if (*n >= MK_ENTRY_MAX_IDS)
        return MK_EFULL;
    mk_id *grown = realloc(*v, (*n + 1) * sizeof **v);
    if (!grown)
        return MK_ENOMEM;
    *v = grown;
    memmove(grown + at + 1, grown + at, (*n - at) * sizeof *grown);
    grown[at] = *id;
    (*n)++;
    return 1;
}

static int id_remove(mk_id *v, size_t *n, const mk_id *id)
{
    int found;
    size_t at = id_find(v, *n, id, &found);
    if (!found)
        return 0;
    memmove(v + at, v + at + 1, (*n - at - 1) * sizeof *v);
    (*n)--;
    return 1;
}

int mk_entry_add_addr(mk_peer_entry *e, const char *addr)
{
    return str_add(&e->addrs, &e->n_addrs, MK_ENTRY_MAX_ADDRS, addr);
}

int mk_entry_add_tag(mk_peer_entry *e, const char *tag)
{
    return str_add(&e->tags, &e->n_tags, MK_ENTRY_MAX_TAGS, tag);
}

int mk_entry_remove_tag(mk_peer_entry *e, const char *tag)
{
    return str_remove(e->tags, &e->n_tags, tag);
}

bool mk_entry_has_tag(const mk_peer_entry *e, const char *tag)
{
    int found;
    str_find(e->tags, e->n_tags, tag, &found);
    return found;
}

int mk_entry_add_stream(mk_peer_entry *e, const mk_id *s)
{
    return id_add(&e->streams, &e->n_streams, s);
}

int mk_entry_remove_stream(mk_peer_entry *e, const mk_id *s)
{
    return id_remove(e->streams, &e->n_streams, s);
}

bool mk_entry_has_stream(const mk_peer_entry *e, const mk_id *s)
{
    int found;
    id_find(e->streams, e->n_streams, s, &found);
    return found;
}

int mk_entry_add_group(mk_peer_entry *e, const mk_id *g)
{
    return id_add(&e->groups, &e->n_groups, g);
}

int mk_entry_remove_group(mk_peer_entry *e, const mk_id *g)
{
    return id_remove(e->groups, &e->n_groups, g);
}

bool mk_entry_has_group(const mk_peer_entry *e, const mk_id *g)
{
    int found;
    id_find(e->groups, e->n_groups, g, &found);
    return found;
}

/* Tickets are ordered by their id, blake3(class ‖ data). */
static void ticket_id(const mk_ticket *t, mk_id *out)
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, t->class.b, MK_ID_LEN);
    mk_blake3_update(&h, t->data, t->len);
    mk_blake3_final(&h, out->b, MK_ID_LEN);
}

int mk_entry_add_ticket(mk_peer_entry *e, const mk_ticket *t)
{
    if (t->len > MK_ENTRY_MAX_TICKET)
        return MK_EINVAL;
    mk_id id, other;
    ticket_id(t, &id);
    size_t at = 0;
    for (; at < e->n_tickets; at++) {
        ticket_id(&e->tickets[at], &other);
        int c = mk_id_cmp(&other, &id);
        if (c == 0)
            return 0;
        if (c > 0)
            break;
    }
    if (e->n_tickets >= MK_ENTRY_MAX_TICKETS)
        return MK_EFULL;
    uint8_t *data = malloc(t->len ? t->len : 1);
    mk_ticket *grown = realloc(e->tickets, (e->n_tickets + 1) * sizeof *grown);
    if (!data || !grown) {
        free(data);
        if (grown)
            e->tickets = grown;
        return MK_ENOMEM;
    }
    e->tickets = grown;
    memcpy(data, t->data, t->len);
    memmove(grown + at + 1, grown + at, (e->n_tickets - at) * sizeof *grown);
    grown[at] = (mk_ticket){.class = t->class, .data = data, .len = t->len};
    e->n_tickets++;
    return 1;
}

int mk_entry_remove_tickets_of(mk_peer_entry *e, const mk_id *cls)
{
    size_t kept = 0;
    for (size_t i = 0; i < e->n_tickets; i++) {
        if (mk_id_eq(&e->tickets[i].class, cls))
            free(e->tickets[i].data);
        else
            e->tickets[kept++] = e->tickets[i];
    }
    int changed = kept != e->n_tickets;
    e->n_tickets = kept;
    return changed;
}

int mk_entry_copy(mk_peer_entry *dst, const mk_peer_entry *src)
{
    mk_peer_entry e;
    mk_entry_init(&e, &src->network, &src->peer, src->start_ms);
    e.update_ms = src->update_ms;
    int rc = 0;
    for (size_t i = 0; i < src->n_addrs && rc >= 0; i++)
        rc = mk_entry_add_addr(&e, src->addrs[i]);
    for (size_t i = 0; i < src->n_tags && rc >= 0; i++)
        rc = mk_entry_add_tag(&e, src->tags[i]);
    for (size_t i = 0; i < src->n_streams && rc >= 0; i++)
        rc = mk_entry_add_stream(&e, &src->streams[i]);
    for (size_t i = 0; i < src->n_groups && rc >= 0; i++)
        rc = mk_entry_add_group(&e, &src->groups[i]);
    for (size_t i = 0; i < src->n_tickets && rc >= 0; i++)
        rc = mk_entry_add_ticket(&e, &src->tickets[i]);
    if (rc >= 0 && src->wire) {
        e.wire = malloc(src->wire_len);
        if (!e.wire)
            rc = MK_ENOMEM;
        else
            memcpy(e.wire, src->wire, e.wire_len = src->wire_len);
    }
    if (rc < 0) {
        mk_entry_free(&e);
        return rc;
    }
    *dst = e;
    return 0;
}

void mk_entry_bump(mk_peer_entry *e, int64_t now_ms)
{
    e->update_ms = (now_ms > e->update_ms ? now_ms : e->update_ms) + 1;
}

int mk_entry_version_cmp(const mk_peer_entry *a, const mk_peer_entry *b)
{
    if (a->start_ms != b->start_ms)
        return a->start_ms < b->start_ms ? -1 : 1;
    if (a->update_ms != b->update_ms)
        return a->update_ms < b->update_ms ? -1 : 1;
    return 0;
}

/* ---- wire form ----------------------------------------------------------- */

static void encode_body(const mk_peer_entry *e, mk_buf *b)
{
    mk_put_u8(b, ENTRY_FORMAT);
    mk_put_id(b, &e->network);
    mk_put_id(b, &e->peer);
    mk_put_i64(b, e->start_ms);
    mk_put_i64(b, e->update_ms);
    mk_put_varint(b, e->n_addrs);
    for (size_t i = 0; i < e->n_addrs; i++)
        mk_put_str(b, e->addrs[i]);
    mk_put_varint(b, e->n_tags);
    for (size_t i = 0; i < e->n_tags; i++)
        mk_put_str(b, e->tags[i]);
    mk_put_varint(b, e->n_streams);
    for (size_t i = 0; i < e->n_streams; i++)
        mk_put_id(b, &e->streams[i]);
    mk_put_varint(b, e->n_groups);
    for (size_t i = 0; i < e->n_groups; i++)
        mk_put_id(b, &e->groups[i]);
    mk_put_varint(b, e->n_tickets);
    for (size_t i = 0; i < e->n_tickets; i++) {
        mk_put_id(b, &e->tickets[i].class);
        mk_put_bytes(b, e->tickets[i].data, e->tickets[i].len);
    }
}

int mk_entry_sign(mk_peer_entry *e, const mk_keypair *kp)
{
    if (!mk_id_eq(&kp->pub, &e->peer))
        return MK_EINVAL;
    mk_buf b;
    mk_buf_init(&b);
    encode_body(e, &b);
    uint8_t digest[32], sig[MK_SIG_LEN];
    if (b.err) {
        mk_buf_free(&b);
        return MK_ENOMEM;
    }
    if (b.len + MK_SIG_LEN > MK_ENTRY_MAX_WIRE) {
        /* Peers would refuse it: say so here rather than have it dropped
         * silently everywhere else. */
        mk_buf_free(&b);
        return MK_EMSGSIZE;
    }
    mk_blake3(b.data, b.len, digest);
    mk_sign(kp, digest, sizeof digest, sig);
    mk_put_raw(&b, sig, sizeof sig);
    if (b.err) {
        mk_buf_free(&b);
        return MK_ENOMEM;
    }
    free(e->wire);
    e->wire = mk_buf_detach(&b, &e->wire_len);
    return 0;
}

static int decode_strs(mk_reader *r, mk_peer_entry *e, size_t max,
                       int (*add)(mk_peer_entry *, const char *))
{
    size_t n = mk_get_count(r, max, 1);
    for (size_t i = 0; i < n && !r->err; i++) {
        char *s = mk_get_strdup(r, MK_ENTRY_MAX_STR);
        if (!s)
            return MK_EDECODE;
        /* Strictly ascending: one encoding per entry. */
        size_t before = (add == mk_entry_add_addr) ? e->n_addrs : e->n_tags;
        char *last = before ? ((add == mk_entry_add_addr) ? e->addrs
                                                          : e->tags)[before - 1]
                            : NULL;
        int rc = (last && strcmp(last, s) >= 0) ? MK_EDECODE : add(e, s);
        free(s);
        if (rc < 0)
            return rc == MK_ENOMEM ? rc : MK_EDECODE;
    }
    return r->err ? MK_EDECODE : 0;
}

static int decode_ids(mk_reader *r, mk_id **v, size_t *n)
{
    size_t count = mk_get_count(r, MK_ENTRY_MAX_IDS, MK_ID_LEN);
    for (size_t i = 0; i < count && !r->err; i++) {
        mk_id id;
        mk_get_id(r, &id);
        if (*n && mk_id_cmp(&(*v)[*n - 1], &id) >= 0)
            return MK_EDECODE;
        int rc = id_add(v, n, &id);
        if (rc < 0)
            return rc;
    }
    return r->err ? MK_EDECODE : 0;
}

int mk_entry_decode(mk_peer_entry *out, const uint8_t *wire, size_t len)
{
    if (len > MK_ENTRY_MAX_WIRE)
        return MK_EMSGSIZE;
    if (len < MK_SIG_LEN + 1)
        return MK_EDECODE;
    size_t body_len = len - MK_SIG_LEN;
    mk_reader r;
    mk_reader_init(&r, wire, body_len);
    mk_peer_entry e;
    memset(&e, 0, sizeof e);
    int rc = 0;
    if (mk_get_u8(&r) != ENTRY_FORMAT)
        rc = MK_EDECODE;
    mk_get_id(&r, &e.network);
    mk_get_id(&r, &e.peer);
    e.start_ms = mk_get_i64(&r);
    e.update_ms = mk_get_i64(&r);
    if (rc == 0)
        rc = decode_strs(&r, &e, MK_ENTRY_MAX_ADDRS, mk_entry_add_addr);
    if (rc == 0)
        rc = decode_strs(&r, &e, MK_ENTRY_MAX_TAGS, mk_entry_add_tag);
    if (rc == 0)
        rc = decode_ids(&r, &e.streams, &e.n_streams);
    if (rc == 0)
        rc = decode_ids(&r, &e.groups, &e.n_groups);
    if (rc == 0) {
        size_t n = mk_get_count(&r, MK_ENTRY_MAX_TICKETS, MK_ID_LEN + 1);
        for (size_t i = 0; i < n && rc == 0 && !r.err; i++) {
            mk_ticket t;
            const uint8_t *data;
            mk_get_id(&r, &t.class);
            data = mk_get_bytes(&r, &t.len, MK_ENTRY_MAX_TICKET);
            if (!data)
                break;
            t.data = (uint8_t *)data;
            /* Strictly ascending by ticket id, like every other list. */
            if (e.n_tickets) {
                mk_id last, id;
                ticket_id(&e.tickets[e.n_tickets - 1], &last);
                ticket_id(&t, &id);
                if (mk_id_cmp(&last, &id) >= 0) {
                    rc = MK_EDECODE;
                    break;
                }
            }
            rc = mk_entry_add_ticket(&e, &t);
            rc = rc < 0 ? (rc == MK_ENOMEM ? rc : MK_EDECODE) : 0;
        }
    }
    if (rc == 0 && mk_reader_done(&r) != 0)
        rc = MK_EDECODE;
    if (rc == 0) {
        uint8_t digest[32];
        mk_blake3(wire, body_len, digest);
        rc = mk_verify(&e.peer, digest, sizeof digest, wire + body_len);
    }
    if (rc == 0) {
        e.wire = malloc(len);
        if (!e.wire)
            rc = MK_ENOMEM;
        else
            memcpy(e.wire, wire, e.wire_len = len);
    }
    if (rc < 0) {
        mk_entry_free(&e);
        return rc;
    }
    *out = e;
    return 0;
}

/* ---- departures -------------------------------------------------------- */

static void departure_digest(const mk_departure *d, uint8_t out[32])
{
    mk_buf b;
    uint8_t stack[128];
    mk_buf_init(&b);
    b.data = stack;
    b.cap = sizeof stack; /* fits: never grows, never freed */
    mk_put_raw(&b, "mosaik.departure", 16);
    mk_put_id(&b, &d->network);
    mk_put_id(&b, &d->peer);
    for (int i = 0; i < 3; i++) {
        int64_t v = i == 0 ? d->start_ms : i == 1 ? d->update_ms : d->at_ms;
        uint8_t be[8];
        for (int k = 0; k < 8; k++)
            be[k] = (uint8_t)((uint64_t)v >> (56 - 8 * k));
        mk_put_raw(&b, be, 8);
    }
    mk_blake3(b.data, b.len, out);
}

void mk_departure_make(mk_departure *d, const mk_peer_entry *last,
                       const mk_keypair *kp, int64_t now_ms)
{
    uint8_t digest[32];
    d->network = last->network;
    d->peer = last->peer;
    d->start_ms = last->start_ms;
    d->update_ms = last->update_ms;
    d->at_ms = now_ms;
    departure_digest(d, digest);
    mk_sign(kp, digest, sizeof digest, d->sig);
}

static void put_i64be(uint8_t *p, int64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)((uint64_t)v >> (56 - 8 * k));
}

static int64_t get_i64be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | p[k];
    return (int64_t)v;
}

void mk_departure_encode(const mk_departure *d,
                         uint8_t out[MK_DEPARTURE_WIRE_LEN])
{
    memcpy(out, d->network.b, 32);
    memcpy(out + 32, d->peer.b, 32);
    put_i64be(out + 64, d->start_ms);
    put_i64be(out + 72, d->update_ms);
    put_i64be(out + 80, d->at_ms);
    memcpy(out + 88, d->sig, MK_SIG_LEN);
}

int mk_departure_decode(mk_departure *d, const uint8_t *wire, size_t len)
{
    if (len != MK_DEPARTURE_WIRE_LEN)
        return MK_EDECODE;
    memcpy(d->network.b, wire, 32);
    memcpy(d->peer.b, wire + 32, 32);
    d->start_ms = get_i64be(wire + 64);
    d->update_ms = get_i64be(wire + 72);
    d->at_ms = get_i64be(wire + 80);
    memcpy(d->sig, wire + 88, MK_SIG_LEN);
    uint8_t digest[32];
    departure_digest(d, digest);
    return mk_verify(&d->peer, digest, sizeof digest, d->sig);
}
