/* The Raft transport: libraft's messages carried by authenticated links.
 *
 * libraft's stock TCP transport authenticates nothing: an unauthenticated
 * socket sending a forged RequestVote with a higher term deposes the
 * leader (reference/raft-probe.md, hazard 2). So libraft never sends
 * itself: the storage wrapper (group_io.c) hands every message it sends to
 * this bridge, which encodes it (raft_wire.c) and writes it as frames on an
 * mk_link (TLS 1.3, both ends authenticated by their node keys, ALPN
 * MK_ALPN_GROUPS) to the member it names; what arrives on those links is
 * decoded and handed back to libraft. The sender of a received message is
 * the member the link authenticated, never what the bytes say.
 *
 * An earlier bridge gave libraft one end of a socketpair per connection
 * and pumped the other end to the link. Every message then crossed the
 * loop twice more on each side (libraft's write, our read, the link; the
 * link, our write, libraft's read): four more wake-ups and eight more
 * system calls per commit round trip, which was most of the latency a
 * committee paid over raw libraft. Carrying messages, not bytes, also
 * frees the receiver from reparsing libraft's stream.
 *
 * Links. As raft_uv does, each member dials every member it sends to and
 * sends only on that link; a link it accepts is only read. A dial needs
 * HELLO (kind RAFT) answered by WELCOME before anything is sent. Until
 * then up to PENDING_MAX messages wait, encoded (a RequestVote sent at the
 * start of an election goes out once the link is up instead of being
 * lost); older ones are answered RAFT_NOCONNECTION. After a failed dial the
 * member is not dialled again for retry_ms, and sends to it fail at once.
 *
 * Framing. Each frame starts with a byte: WHOLE (a whole message follows),
 * FIRST (varint total length, then its first bytes) or MORE (the next
 * bytes of the message being assembled). Messages up to FRAG_MAX go whole;
 * bigger ones (a long catch-up, a snapshot) go in FRAG_MAX pieces, and the
 * receiver grows its buffer only as bytes arrive, so a lying total costs
 * the liar, not us. A message over MSG_MAX, a piece out of order or a
 * message that does not decode closes the link as a protocol violation.
 *
 * Backpressure. When a link holds more than LINK_HIGH unsent bytes, a big
 * send fails with RAFT_NOCONNECTION, as a broken connection would: libraft
 * drops that follower back to probing and resends from its match index at
 * the next heartbeat, so a slow member bounds the leader's memory instead
 * of growing it. Small messages (votes, results, heartbeats) still go up
 * to LINK_HARD, so a busy link does not cost an election. LINK_HIGH is
 * set well above what a healthy follower lags by: probing resends once
 * per heartbeat, and at 8 MiB, eight clients with 4,096 writes in flight
 * each tipped a committee into it now and then, and its writes/s fell by
 * four (bench/committee.sh).
 *
 * Callbacks. libraft expects a send's callback after send returns (it
 * reads its request after the call), so answered sends wait on `done` and
 * the bridge's timer, started at 0 ms, makes the callbacks on the next
 * turn of the loop. When libraft closes the storage every send still held
 * is answered RAFT_CANCELED at once (mk__gio's sender.cancel).
 *
 * Lifetimes. libraft's close of raft_uv calls the transport's close; links
 * are then detached (they finish on their own and never touch the bridge
 * again) and the timer's close completes it. A dial in flight keeps its
 * record until its link's close callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_internal.h"

#define FRAG_MAX (1u << 20)
#define MSG_MAX ((size_t)1 << 30)
#define ASM_FIRST (1u << 20) /* reassembly starts this big, grows by 2x */
#define LINK_HIGH (32u << 20)
#define LINK_HARD (64u << 20)
#define SMALL_MSG 4096
#define PENDING_MAX 3
#define IOV_STACK 16

enum { F_WHOLE = 0, F_FIRST = 1, F_MORE = 2 };

/* A send libraft made that is not yet answered. */
struct mk__rsend {
    mk__rsend *next;
    struct raft_io_send *req;
    raft_io_send_cb cb;
    int status;
    uint8_t *msg; /* encoded, while it waits for a link */
    size_t len;
};

/* A link with a member, dialled (we send on it) or accepted (we read). */
struct mk__rlink {
    mk__rlink *prev, *next;
    mk__bridge *b;  /* NULL once detached */
    mk_link *link;  /* NULL until dialled, and after its close callback */
    mk__rpeer *out; /* dialled for this member; NULL when accepted */
    mk_node *node;
    raft_id id;
    mk_peer_id peer;
    bool welcomed;
    uint8_t *asm_buf; /* a message arriving in pieces */
    size_t asm_len, asm_want, asm_cap;
    mk__bond bond;
    bool bonded;
};

/* A member we send to. */
struct mk__rpeer {
    mk__rpeer *prev, *next;
    raft_id id;
    mk__rlink *link; /* dialling or welcomed; NULL when none */
    int64_t retry_at; /* mono ms before which no dial is made */
    mk__rsend *pend_head, *pend_tail;
    size_t n_pend;
};

/* ---- lists ---------------------------------------------------------------- */

#define LIST_PUSH(head, x)                                                    \
    do {                                                                      \
        (x)->prev = NULL;                                                     \
        (x)->next = (head);                                                   \
        if (head)                                                             \
            (head)->prev = (x);                                               \
        (head) = (x);                                                         \
    } while (0)

#define LIST_REMOVE(head, x)                                                  \
    do {                                                                      \
        if ((x)->prev)                                                        \
            (x)->prev->next = (x)->next;                                      \
        else                                                                  \
            (head) = (x)->next;                                               \
        if ((x)->next)                                                        \
            (x)->next->prev = (x)->prev;                                      \
        (x)->prev = (x)->next = NULL;                                         \
    } while (0)

/* ---- answering sends ------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

/* Answers `s` on the next turn of the loop. */
static void answer(mk__bridge *b, mk__rsend *s, int status)
{
    free(s->msg);
    s->msg = NULL;
    s->status = status;
    s->next = NULL;
    if (b->done_tail)
        b->done_tail->next = s;
    else
        b->done_head = s;
    b->done_tail = s;
    if (!uv_is_closing((uv_handle_t *)&b->timer))
        uv_timer_start(&b->timer, on_timer, 0, 0);
}

static void answer_all(mk__bridge *b)
{
    while (b->done_head) {
        mk__rsend *s = b->done_head;
        b->done_head = s->next;
        if (!b->done_head)
            b->done_tail = NULL;
        struct raft_io_send *req = s->req;
        raft_io_send_cb cb = s->cb;
        int status = s->status;
        free(s);
        cb(req, status);
    }
}

static void on_timer(uv_timer_t *t)
{
    answer_all(t->data);
}

static void fail_pending(mk__bridge *b, mk__rpeer *p, int status)
{
    while (p->pend_head) {
        mk__rsend *s = p->pend_head;
        p->pend_head = s->next;
        answer(b, s, status);
    }
    p->pend_tail = NULL;
    p->n_pend = 0;
}

/* ---- sending ---------------------------------------------------------------- */

/* One encoded message (no frame byte), `len` bytes held by the `n`
 * pieces of `msg`, as frames: whole, or FRAG_MAX pieces each sent from
 * the caller's buffers (a frame's iov points into them: nothing is
 * copied before encryption). */
static int send_iov(mk_link *link, const mk_iov *msg, size_t n, size_t len)
{
    uint8_t lead = F_WHOLE;
    mk_iov stack[IOV_STACK], *iov = stack;
    if (n + 1 > IOV_STACK && !(iov = malloc((n + 1) * sizeof *iov)))
        return MK_ENOMEM;
    int rc = 0;
    if (len < FRAG_MAX) {
        iov[0] = (mk_iov){&lead, 1};
        memcpy(iov + 1, msg, n * sizeof *msg);
        rc = mk_link_sendv(link, iov, n + 1);
        goto out;
    }
    uint8_t first[1 + 10];
    mk_buf fb = {.data = first, .cap = sizeof first}; /* never grows */
    mk_put_u8(&fb, F_FIRST);
    mk_put_varint(&fb, len);
    lead = F_MORE;
    size_t i = 0, off = 0; /* where the next piece starts in msg */
    for (size_t sent = 0; sent < len && rc == 0;) {
        size_t k = 0, want = len - sent < FRAG_MAX ? len - sent : FRAG_MAX;
        iov[k++] = sent ? (mk_iov){&lead, 1} : (mk_iov){first, fb.len};
        for (size_t got = 0; got < want; k++) {
            size_t take = msg[i].len - off;
            if (take > want - got)
                take = want - got;
            iov[k] = (mk_iov){(const uint8_t *)msg[i].base + off, take};
            got += take;
            off += take;
            if (off == msg[i].len)
                i++, off = 0;
        }
        rc = mk_link_sendv(link, iov, k);
        sent += want;
    }
out:
    if (iov != stack)
        free(iov);
    return rc;
}

static int send_bytes(mk_link *link, const uint8_t *msg, size_t len)
{
    mk_iov one = {msg, len};
    return send_iov(link, &one, 1, len);
}

/* Encodes `m` whole: the head and everything it points at. */
static int encode_flat(const struct raft_message *m, uint8_t **out,
                       size_t *len)
{
    mk_buf b;
    mk__rmsg_parts parts;
    mk_buf_init(&b);
    int rc = mk__rmsg_encode(m, &b, &parts);
    if (rc == 0) {
        for (unsigned i = 0; i < parts.n; i++)
            mk_put_raw(&b, parts.entries[i].buf.base,
                       parts.entries[i].buf.len);
        if (parts.data_len)
            mk_put_raw(&b, parts.data, parts.data_len);
        rc = b.err;
    }
    if (rc != 0) {
        mk_buf_free(&b);
        return rc;
    }
    *out = mk_buf_detach(&b, len);
    return 0;
}

/* Writes `m` on a welcomed link; a RAFT_* status. The frames are made
 * from the message's own pieces, without a copy of the payloads. */
static int transmit(mk__bridge *b, mk_link *link,
                    const struct raft_message *m)
{
    mk_buf *head = &b->scratch;
    mk__rmsg_parts parts;
    mk_buf_reset(head);
    mk_put_u8(head, F_WHOLE);
    int rc = mk__rmsg_encode(m, head, &parts);
    size_t total = head->len - 1 + parts.payload;
    size_t queued = mk_link_queued(link);
    if (rc == 0 && (queued > LINK_HARD ||
                    (queued > LINK_HIGH && total > SMALL_MSG)))
        rc = MK_EBUSY;
    if (rc == 0) {
        mk_iov stack[IOV_STACK], *iov = stack;
        size_t n = 1 + parts.n + (parts.data_len ? 1 : 0);
        if (n > IOV_STACK && !(iov = malloc(n * sizeof *iov)))
            rc = MK_ENOMEM;
        if (rc == 0) {
            size_t k = 0;
            iov[k++] = (mk_iov){head->data + 1, head->len - 1};
            for (unsigned i = 0; i < parts.n; i++)
                iov[k++] = (mk_iov){parts.entries[i].buf.base,
                                    parts.entries[i].buf.len};
            if (parts.data_len)
                iov[k++] = (mk_iov){parts.data, parts.data_len};
            rc = send_iov(link, iov, k, total);
        }
        if (iov != stack)
            free(iov);
    }
    /* A scratch buffer that grew for a long head shrinks back. */
    if (head->cap > 64 * 1024)
        mk_buf_free(head);
    return rc == 0 ? 0 : rc == MK_ENOMEM ? RAFT_NOMEM : RAFT_NOCONNECTION;
}

static mk__rpeer *peer_find(mk__bridge *b, raft_id id)
{
    for (mk__rpeer *p = b->peers; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static int dial(mk__bridge *b, mk__rpeer *p);

static int b_send(void *data, struct raft_io_send *req,
                  const struct raft_message *m, raft_io_send_cb cb)
{
    mk__bridge *b = data;
    if (b->closing || b->cancelled)
        return RAFT_CANCELED;
    mk__rsend *s = calloc(1, sizeof *s);
    if (!s)
        return RAFT_NOMEM;
    s->req = req;
    s->cb = cb;
    mk__rpeer *p = peer_find(b, m->server_id);
    if (!p && mk__group_voter_by_id(b->g, m->server_id)) {
        p = calloc(1, sizeof *p);
        if (!p) {
            free(s);
            return RAFT_NOMEM;
        }
        p->id = m->server_id;
        LIST_PUSH(b->peers, p);
    }
    if (!p) {
        answer(b, s, RAFT_NOCONNECTION); /* not a member we know */
        return 0;
    }
    if (p->link && p->link->welcomed) {
        answer(b, s, transmit(b, p->link->link, m));
        return 0;
    }
    if (!p->link && (mk_mono_ms() < p->retry_at || dial(b, p) != 0)) {
        answer(b, s, RAFT_NOCONNECTION);
        return 0;
    }
    /* Dialling: wait for WELCOME, encoded (libraft may free `m`'s
     * entries once answered, so nothing of it is kept). */
    int rc = encode_flat(m, &s->msg, &s->len);
    if (rc != 0) {
        answer(b, s, RAFT_NOMEM);
        return 0;
    }
    if (p->pend_tail)
        p->pend_tail->next = s;
    else
        p->pend_head = s;
    p->pend_tail = s;
    if (++p->n_pend > PENDING_MAX) {
        mk__rsend *old = p->pend_head;
        p->pend_head = old->next;
        p->n_pend--;
        answer(b, old, RAFT_NOCONNECTION);
    }
    return 0;
}

static void flush_pending(mk__bridge *b, mk__rpeer *p)
{
    mk_link *link = p->link->link;
    while (p->pend_head) {
        mk__rsend *s = p->pend_head;
        p->pend_head = s->next;
        int rc = send_bytes(link, s->msg, s->len);
        answer(b, s, rc == 0 ? 0 : RAFT_NOCONNECTION);
    }
    p->pend_tail = NULL;
    p->n_pend = 0;
}

/* ---- links ------------------------------------------------------------------- */

static void rlink_detach(mk__rlink *r)
{
    mk__bridge *b = r->b;
    if (!b)
        return;
    if (r->bonded) {
        mk__group_bond_remove(b->g, &r->bond);
        r->bonded = false;
    }
    if (r->out) {
        mk__rpeer *p = r->out;
        p->link = NULL;
        fail_pending(b, p, b->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
        if (!r->welcomed)
            p->retry_at = mk_mono_ms() + b->retry_ms;
        r->out = NULL;
    }
    LIST_REMOVE(b->links, r);
    r->b = NULL;
}

static void rlink_free(mk__rlink *r)
{
    free(r->asm_buf);
    free(r);
}

static void rlink_end(mk__rlink *r, uint32_t code, const char *why)
{
    rlink_detach(r);
    if (r->link)
        mk_link_close(r->link, code, why);
}

static void bond(mk__rlink *r)
{
    r->bond.link = r->link;
    r->bond.peer = r->peer;
    r->bond.voter = true;
    r->bond.expires_ms = MK_TICKET_NEVER;
    mk__group_admit(r->b->g, &r->peer, true, &r->bond.expires_ms, NULL);
    mk__group_bond_add(r->b->g, &r->bond);
    r->bonded = true;
}

/* One whole message from the member `r` authenticated. */
static void deliver(mk__rlink *r, const uint8_t *p, size_t len)
{
    mk__bridge *b = r->b;
    struct raft_message m;
    if (mk__rmsg_decode(p, len, &m) != 0) {
        rlink_end(r, MK_CLOSE_PROTOCOL_VIOLATION, "bad raft message");
        return;
    }
    const mk__voter *v = mk__group_voter_by_id(b->g, r->id);
    if (!v || (m.type == RAFT_IO_REQUEST_VOTE &&
               m.request_vote.candidate_id != r->id)) {
        mk__rmsg_free(&m);
        rlink_end(r, MK_CLOSE_PROTOCOL_VIOLATION, "vote for another id");
        return;
    }
    /* A second leader in the term we lead. libraft holds it impossible
     * (one leader per term) and, built without asserts, takes the sender
     * as its leader while still leading, writing follower fields over its
     * leader state: one such message from a listed voter crashed the
     * leader. Only a liar sends it. */
    raft_term term = m.type == RAFT_IO_APPEND_ENTRIES ? m.append_entries.term
                     : m.type == RAFT_IO_INSTALL_SNAPSHOT
                         ? m.install_snapshot.term
                         : 0;
    if (term != 0 && term == b->g->raft.current_term &&
        raft_state(&b->g->raft) == RAFT_LEADER) {
        mk__rmsg_free(&m);
        rlink_end(r, MK_CLOSE_PROTOCOL_VIOLATION, "leader in our term");
        return;
    }
    m.server_id = r->id;
    m.server_address = v->addr;
    if (!b->gio || !mk__gio_deliver(b->gio, &m))
        mk__rmsg_free(&m);
}

/* A piece of a message too big for one frame. */
static void assemble(mk__rlink *r, uint8_t kind, const uint8_t *f,
                     size_t len)
{
    if (kind == F_FIRST) {
        mk_reader rd;
        mk_reader_init(&rd, f, len);
        uint64_t want = mk_get_varint(&rd);
        if (r->asm_want || rd.err || want > MSG_MAX ||
            want <= len - rd.at) {
            rlink_end(r, MK_CLOSE_PROTOCOL_VIOLATION, "bad first piece");
            return;
        }
        r->asm_want = (size_t)want;
        r->asm_len = 0;
        f += rd.at;
        len -= rd.at;
    } else if (!r->asm_want || len > r->asm_want - r->asm_len) {
        rlink_end(r, MK_CLOSE_PROTOCOL_VIOLATION, "piece out of order");
        return;
    }
    if (r->asm_len + len > r->asm_cap) {
        size_t cap = r->asm_cap ? r->asm_cap : ASM_FIRST;
        while (cap < r->asm_len + len)
            cap *= 2;
        if (cap > r->asm_want)
            cap = r->asm_want;
        uint8_t *nb = realloc(r->asm_buf, cap);
        if (!nb) {
            rlink_end(r, MK_CLOSE_CANCELLED, "out of memory");
            return;
        }
        r->asm_buf = nb;
        r->asm_cap = cap;
    }
    memcpy(r->asm_buf + r->asm_len, f, len);
    r->asm_len += len;
    if (r->asm_len < r->asm_want)
        return;
    uint8_t *msg = r->asm_buf;
    size_t n = r->asm_len;
    r->asm_buf = NULL;
    r->asm_len = r->asm_want = r->asm_cap = 0;
    deliver(r, msg, n);
    free(msg);
}

static void on_welcomed(mk__rlink *r)
{
    r->welcomed = true;
    bond(r);
    flush_pending(r->b, r->out);
}

static void on_frame(mk_link *link, const uint8_t *f, size_t len, void *data)
{
    mk__rlink *r = data;
    (void)link;
    if (!r->b)
        return;
    if (!r->welcomed) {
        if (len != 1 || f[0] != MK__G_WELCOME)
            rlink_end(r, MK_CLOSE_PROTOCOL_VIOLATION, "expected WELCOME");
        else
            on_welcomed(r);
        return;
    }
    if (len == 0) {
        rlink_end(r, MK_CLOSE_PROTOCOL_VIOLATION, "empty frame");
        return;
    }
    if (f[0] == F_WHOLE && !r->asm_want)
        deliver(r, f + 1, len - 1);
    else if (f[0] == F_FIRST || f[0] == F_MORE)
        assemble(r, f[0], f + 1, len - 1);
    else
        rlink_end(r, MK_CLOSE_PROTOCOL_VIOLATION, "bad frame kind");
}

static void on_close(mk_link *link, uint32_t code, int status, void *data)
{
    mk__rlink *r = data;
    (void)link;
    (void)status;
    r->link = NULL;
    /* The acceptor does not know us yet: exchange catalogs, so the next
     * dial (after the retry delay) is welcomed. */
    if (code == MK_CLOSE_UNKNOWN_PEER && r->b)
        mk_node_sync_with(r->node, &r->peer, NULL);
    rlink_detach(r);
    rlink_free(r);
}

/* ---- accepting ------------------------------------------------------------ */

void mk__bridge_accept(mk__bridge *b, mk_link *link, raft_id id)
{
    const mk__voter *v = mk__group_voter_by_id(b->g, id);
    if (!b->listening || b->closing || !v) {
        mk_link_close(link, MK_CLOSE_GROUP_NOT_FOUND, "not serving yet");
        return;
    }
    mk__rlink *r = calloc(1, sizeof *r);
    uint8_t welcome = MK__G_WELCOME;
    if (!r) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    if (mk_link_send(link, &welcome, 1) != 0) {
        free(r);
        return; /* closing already */
    }
    r->b = b;
    r->link = link;
    r->node = b->g->node;
    r->id = id;
    r->peer = v->peer;
    r->welcomed = true;
    LIST_PUSH(b->links, r);
    bond(r);
    mk_link_set_callbacks(link, on_frame, on_close, r);
}

/* ---- dialling ---------------------------------------------------------------- */

static void on_dialled(mk_link *link, int status, void *data)
{
    mk__rlink *r = data;
    if (status < 0) {
        rlink_detach(r);
        rlink_free(r);
        return;
    }
    r->link = link;
    mk_link_set_callbacks(link, on_frame, on_close, r);
    if (!r->b) {
        mk_link_close(link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
        return;
    }
    mk_group *g = r->b->g;
    mk__hello h = {.kind = MK__LINK_RAFT,
                   .network = *mk_node_network(g->node),
                   .group = g->id,
                   .raft_id = g->voters[g->self].id};
    mk_buf hb;
    mk_buf_init(&hb);
    mk__hello_encode(&hb, &h);
    if (hb.err || mk_link_send(link, hb.data, hb.len) != 0)
        rlink_end(r, MK_CLOSE_CANCELLED, NULL);
    mk_buf_free(&hb);
}

/* Starts a dial to member `p`: 0, or non-zero when none can be made now
 * (not a voter any more, refused by the validators, no route). */
static int dial(mk__bridge *b, mk__rpeer *p)
{
    mk_group *g = b->g;
    const mk__voter *v = mk__group_voter_by_id(g, p->id);
    if (!v)
        return MK_EINVAL;
    int64_t expires;
    uint32_t code = mk__group_admit(g, &v->peer, true, &expires, NULL);
    if (code != 0) {
        if (code == MK_CLOSE_UNKNOWN_PEER)
            mk_node_sync_with(g->node, &v->peer, NULL);
        p->retry_at = mk_mono_ms() + b->retry_ms;
        return MK_EINVAL;
    }
    mk__rlink *r = calloc(1, sizeof *r);
    if (!r)
        return MK_ENOMEM;
    r->b = b;
    r->out = p;
    r->node = g->node;
    r->id = p->id;
    r->peer = v->peer;
    int rc = mk_node_dial(g->node, &v->peer, MK_ALPN_GROUPS, on_dialled, r);
    if (rc != 0) {
        free(r);
        p->retry_at = mk_mono_ms() + b->retry_ms;
        return rc;
    }
    LIST_PUSH(b->links, r);
    p->link = r;
    return 0;
}

/* ---- closing ------------------------------------------------------------------ */

/* Answers every send held, now: libraft is closing the storage. */
static void b_cancel(void *data)
{
    mk__bridge *b = data;
    b->cancelled = true;
    b->gio = NULL;
    for (mk__rpeer *p = b->peers; p; p = p->next)
        fail_pending(b, p, RAFT_CANCELED);
    answer_all(b);
    if (!uv_is_closing((uv_handle_t *)&b->timer))
        uv_timer_stop(&b->timer);
}

static void on_bridge_timer_closed(uv_handle_t *h)
{
    mk__bridge *b = h->data;
    /* Anything answered after the cancel (a link closing under us). */
    answer_all(b);
    if (b->close_cb)
        b->close_cb(&b->t);
    mk__group_bridge_closed(b->g);
}

static void shut(mk__bridge *b)
{
    b->closing = true;
    b->listening = false;
    b->gio = NULL;
    while (b->links)
        rlink_end(b->links, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
    while (b->peers) {
        mk__rpeer *p = b->peers;
        fail_pending(b, p, RAFT_CANCELED);
        LIST_REMOVE(b->peers, p);
        free(p);
    }
    answer_all(b);
    mk_buf_free(&b->scratch);
    uv_close((uv_handle_t *)&b->timer, on_bridge_timer_closed);
}

void mk__bridge_close_unused(mk__bridge *b)
{
    shut(b);
}

/* ---- the raft_uv_transport vtable ----------------------------------------- */

/* raft_uv still wants a transport: it listens through it (we accept on
 * the group hub instead) and would connect through it to send, which it
 * never does, as its sends are taken before they reach it. */
static int t_init(struct raft_uv_transport *t, raft_id id,
                  const char *address)
{
    (void)t;
    (void)id;
    (void)address;
    return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    mk__bridge *b = t->impl;
    (void)cb;
    b->listening = true;
    return 0;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                     raft_id id, const char *address, raft_uv_connect_cb cb)
{
    (void)req;
    (void)id;
    (void)address;
    (void)cb;
    snprintf(t->errmsg, sizeof t->errmsg, "raft_uv does not dial here");
    return RAFT_NOCONNECTION;
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    mk__bridge *b = t->impl;
    b->close_cb = cb;
    shut(b);
}

void mk__bridge_attach(mk__bridge *b, mk__gio *gio, uint32_t retry_ms)
{
    b->gio = gio;
    b->retry_ms = retry_ms;
    gio->sender.send = b_send;
    gio->sender.cancel = b_cancel;
    gio->sender.data = b;
}

void mk__bridge_init(mk__bridge *b, mk_group *g, uv_loop_t *loop)
{
    memset(b, 0, sizeof *b);
    b->g = g;
    b->loop = loop;
    b->t.impl = b;
    b->t.init = t_init;
    b->t.listen = t_listen;
    b->t.connect = t_connect;
    b->t.close = t_close;
    mk_buf_init(&b->scratch);
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
}
