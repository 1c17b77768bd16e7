/* A non-member's handle on a group (mosaik/group_client.h).
 *
 * The same exactly-once discipline as a member's handle (group.c): one
 * random session, sequence numbers in submission order, the watermark
 * `ack` = (lowest unanswered seq) - 1. Commands are pipelined: a window of
 * them in flight on one link, answers matched by (session, seq). A failed
 * command is sent again on its own (after a jittered backoff when the
 * member was busy); the ones sent after it stay where they are, since the
 * leader holds a session's later commands until the missing one arrives
 * (group.c, leader_take) instead of refusing them. Only a link that went
 * down re-sends what was on it, and a command whose predecessor was
 * refused at a door (release_held), since that one never arrives. So a
 * command reaches the log once per leader term, and an overloaded
 * committee sees fewer requests, not more.
 *
 * A member answers every request within its attempt (ATTEMPT_MS), if only
 * to say it timed out, so a link on which a request has waited past
 * SILENT_MS with nothing at all coming back is held by a member that is
 * stopped, wedged or cut off with its connection still up: it is dropped
 * as if it had closed (what was sent on it goes elsewhere) and the member
 * avoided for a while. Before, such a link kept its commands until their
 * deadline while the rest of the committee, with a new leader, was there
 * to take them.
 */
#include "mosaik/group_client.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_internal.h"

/* The tick runs every TICK_MS while a command or query waits to be
 * routed (a backoff, no member known yet), and every IDLE_TICK_MS when
 * all there is to watch is deadlines: a client with its window in flight
 * would otherwise wake its loop a hundred times a second for nothing,
 * and 64 such clients beside a committee on two cores are felt. */
#define TICK_MS 10
#define IDLE_TICK_MS 250
#define DEFAULT_TIMEOUT_MS 10000
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 250
#define AVOID_MS 1000
/* A member holds a request at most this long: one with no leader (cut
 * off, or not a real voter) must not keep a command until its deadline
 * when another member could take it. */
#define ATTEMPT_MS 3000
/* Twice the attempt: a member late only by its loop's load says
 * something before that. */
#define SILENT_MS (2 * ATTEMPT_MS)
#define SILENT_AVOID_MS 10000
#define MAX_AVOID 16
/* The congestion window: commands sent and not answered. It starts below
 * what a member takes from one link (group.c, MAX_LINK_OPS), grows by one
 * per answer and halves when a member says it is busy, so a caller's
 * window of any size meets a committee's capacity without a storm of
 * refusals and resends (additive increase, multiplicative decrease). */
#define CWND_START 16384
#define CWND_MIN 64
#define CWND_MAX (1u << 20)

enum { IDLE, SENT, DONE }; /* DONE: counted as neither */

typedef struct conn {
    struct conn *next;
    mk__rpc *rpc;
    int64_t heard; /* the last WELCOME or answer on it (mono ms) */
} conn;

typedef struct cop {
    struct cop *next; /* ascending seq */
    uint64_t seq;
    uint8_t *cmd;
    size_t len;
    int64_t deadline, not_before;
    int64_t sent_at; /* when its request went on `on` */
    uint32_t backoff;
    int state;
    conn *on;
    uint64_t req_id;
    uint64_t sent_ack; /* the ack its last request carried */
    bool after_gap;    /* the command before it was refused at a door */
    mk_group_result_cb cb;
    void *data;
} cop;

typedef struct cq {
    struct cq *next;
    uint8_t op; /* MK__OP_QUERY, MK__OP_STATUS or MK__OP_ASSIGN */
    uint8_t level, flags;
    bool fixed; /* STATUS: only `member` */
    mk_peer_id member;
    uint8_t *q;
    size_t len;
    int64_t deadline, not_before;
    int64_t sent_at;
    uint32_t backoff;
    int state;
    conn *on;
    uint64_t req_id;
    mk_group_result_cb cb;
    mk_group_client_status_cb scb;
    void *data;
} cq;

struct mk_group_client {
    mk_node *node;
    mk_id gid;
    uint8_t session[MK__SESSION_LEN];
    uint64_t next_seq, next_req, rr;
    cop *ops, *tail;
    /* Pending commands by seq: slot seq & mask. Pending seqs span less
     * than the slots (they are consecutive from the oldest pending one),
     * so answers find their command without a walk. */
    cop **slots;
    size_t mask;
    size_t idle;     /* ops in IDLE */
    cop *first_idle; /* the lowest-seq one: routing starts there */
    size_t sent;     /* ops in SENT */
    size_t cwnd;     /* at most this many SENT (see CWND_START) */
    cq *qs;
    conn *conns;
    bool has_via, has_leader, closing;
    mk_peer_id via, leader;
    /* The voters, once a member proved them (group_proof.c): from then
     * on only they are asked. */
    size_t n_voters;
    mk_peer_id voters[MK__MAX_VOTERS];
    struct {
        mk_peer_id peer;
        int64_t until;
    } avoid[MAX_AVOID];
    size_t n_avoid;
    uv_timer_t tick;
    bool tick_fast; /* at TICK_MS, not IDLE_TICK_MS */
    /* No command's or query's deadline comes before this (mono ms): the
     * tick walks them only then, not every 10 ms, since a window can hold
     * tens of thousands. 0: unknown, walk at the next tick. */
    int64_t expire_at;
    int64_t silence_at; /* the next look for silent links */
    uint64_t gap_resends; /* release_held */
    void (*close_cb)(void *data);
    void *close_data;
};

static void route_all(mk_group_client *c);

static uint32_t next_backoff(uint32_t b)
{
    if (b < BACKOFF_MIN_MS)
        return BACKOFF_MIN_MS;
    return b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b * 2;
}

static void avoid_for(mk_group_client *c, const mk_peer_id *p, int64_t ms)
{
    int64_t now = mk_mono_ms();
    size_t kept = 0;
    for (size_t i = 0; i < c->n_avoid; i++)
        if (c->avoid[i].until > now && !mk_id_eq(&c->avoid[i].peer, p))
            c->avoid[kept++] = c->avoid[i];
    c->n_avoid = kept;
    if (kept < MAX_AVOID) {
        c->avoid[kept].peer = *p;
        c->avoid[kept].until = now + ms;
        c->n_avoid++;
    }
}

static void avoid(mk_group_client *c, const mk_peer_id *p)
{
    avoid_for(c, p, AVOID_MS);
}

static bool avoided(const mk_group_client *c, const mk_peer_id *p)
{
    int64_t now = mk_mono_ms();
    for (size_t i = 0; i < c->n_avoid; i++)
        if (c->avoid[i].until > now && mk_id_eq(&c->avoid[i].peer, p))
            return true;
    return false;
}

static bool is_voter(const mk_group_client *c, const mk_peer_id *p)
{
    for (size_t i = 0; i < c->n_voters; i++)
        if (mk_id_eq(&c->voters[i], p))
            return true;
    return false;
}

typedef struct members_ctx {
    const mk_group_client *c;
    mk_peer_id *out;
    size_t max, n;
} members_ctx;

static bool collect(const mk_peer_info *p, void *data)
{
    members_ctx *m = data;
    const mk_group_client *c = m->c;
    /* Entries are self-signed claims: until a member proved the voter set
     * every claimant is a candidate (its WELCOME is checked before it sees
     * anything); afterwards only the proven voters are. */
    if (mk_entry_has_group(p->entry, &c->gid) && p->entry->n_addrs &&
        (c->n_voters == 0 || is_voter(c, &p->entry->peer)) && m->n < m->max)
        m->out[m->n++] = p->entry->peer;
    return m->n < m->max;
}

size_t mk_group_client_members(mk_group_client *c, mk_peer_id *out,
                               size_t max)
{
    members_ctx m = {c, out, max, 0};
    mk_node_peers_foreach(c->node, collect, &m);
    return m.n;
}

/* Where the next request goes. False when no member is known. */
static bool pick(mk_group_client *c, mk_peer_id *out)
{
    if (c->has_via) {
        *out = c->via;
        return true;
    }
    if (c->has_leader && !avoided(c, &c->leader)) {
        *out = c->leader;
        return true;
    }
    mk_peer_id ms[64];
    size_t n = mk_group_client_members(c, ms, 64);
    if (n == 0)
        return false;
    for (size_t k = 0; k < n; k++) {
        const mk_peer_id *p = &ms[(c->rr + k) % n];
        if (!avoided(c, p)) {
            c->rr += k + 1;
            *out = *p;
            return true;
        }
    }
    *out = ms[c->rr++ % n];
    return true;
}

/* ---- links ---------------------------------------------------------------- */

static void on_welcome(void *data, mk__rpc *rpc, const mk__proof *p);
static void on_reply(void *data, mk__rpc *rpc, const mk__resp *r);
static void on_down(void *data, mk__rpc *rpc);

static conn *conn_get(mk_group_client *c, const mk_peer_id *peer)
{
    for (conn *k = c->conns; k; k = k->next)
        if (mk_id_eq(mk__rpc_peer(k->rpc), peer))
            return k;
    conn *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    mk__rpc_events ev = {on_welcome, on_reply, on_down, c};
    k->rpc = mk__rpc_open(c->node, &c->gid, peer, &ev);
    if (!k->rpc) {
        free(k);
        return NULL;
    }
    k->heard = mk_mono_ms();
    k->next = c->conns;
    c->conns = k;
    return k;
}

static conn *conn_of(mk_group_client *c, const mk__rpc *rpc)
{
    for (conn *k = c->conns; k; k = k->next)
        if (k->rpc == rpc)
            return k;
    return NULL;
}

static int send_req(mk_group_client *c, conn *k, mk__req *req)
{
    mk_buf b;
    mk_buf_init(&b);
    req->id = ++c->next_req;
    mk__req_encode(&b, req);
    int rc = b.err ? b.err : mk__rpc_send(k->rpc, b.data, b.len);
    mk_buf_free(&b);
    return rc;
}

static uint32_t remaining(int64_t deadline)
{
    int64_t left = deadline - mk_mono_ms();
    if (left > ATTEMPT_MS)
        left = ATTEMPT_MS;
    return left < 1 ? 1 : (uint32_t)left;
}

/* A member could not get the request committed in time: prefer others
 * for a while (unless told to use that one). */
static void shun(mk_group_client *c, mk__rpc *rpc, int status)
{
    if (status != MK_ECONNECT_TIMEOUT && status != MK_EOFFLINE)
        return;
    const mk_peer_id *p = mk__rpc_peer(rpc);
    if (!c->has_via)
        avoid(c, p);
    if (c->has_leader && mk_id_eq(&c->leader, p))
        c->has_leader = false;
}

/* ---- commands -------------------------------------------------------------- */

/* Every state change goes through here, keeping the count of IDLE ops and
 * the first of them, so routing never walks the commands already sent (a
 * window of tens of thousands made that quadratic). */
static void op_state(mk_group_client *c, cop *o, int state)
{
    if (o->state == state)
        return;
    if (o->state == IDLE)
        c->idle--;
    else if (o->state == SENT)
        c->sent--;
    o->state = state;
    if (state == SENT)
        c->sent++;
    if (state == IDLE) {
        c->idle++;
        if (!c->first_idle || o->seq < c->first_idle->seq)
            c->first_idle = o;
    } else if (c->first_idle == o) {
        cop *x = c->idle ? o->next : NULL;
        while (x && x->state != IDLE)
            x = x->next;
        c->first_idle = x;
    }
}

static cop *op_by_seq(const mk_group_client *c, uint64_t seq)
{
    cop *o = c->slots ? c->slots[seq & c->mask] : NULL;
    return o && o->seq == seq ? o : NULL;
}

/* Makes room for `seq` in the slots. 0 or MK_ENOMEM. */
static int slots_fit(mk_group_client *c, uint64_t seq)
{
    uint64_t lo = c->ops ? c->ops->seq : seq;
    size_t cap = c->slots ? c->mask + 1 : 0;
    if (cap && seq - lo < cap)
        return 0;
    size_t want = cap ? cap : 64;
    while (seq - lo >= want)
        want *= 2;
    cop **grown = calloc(want, sizeof *grown);
    if (!grown)
        return MK_ENOMEM;
    for (cop *o = c->ops; o; o = o->next)
        grown[o->seq & (want - 1)] = o;
    free(c->slots);
    c->slots = grown;
    c->mask = want - 1;
    return 0;
}

static void op_remove(mk_group_client *c, cop *o)
{
    if (c->slots && c->slots[o->seq & c->mask] == o)
        c->slots[o->seq & c->mask] = NULL;
    cop *prev = NULL;
    for (cop **pp = &c->ops; *pp; prev = *pp, pp = &(*pp)->next)
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    if (c->tail == o)
        c->tail = prev;
    op_state(c, o, DONE); /* out of the counts and of first_idle */
    free(o->cmd);
    free(o);
}

static void op_finish(mk_group_client *c, cop *o, int status,
                      uint64_t applied, const uint8_t *res, size_t len)
{
    mk_group_result_cb cb = o->cb;
    void *data = o->data;
    op_remove(c, o);
    cb(status, applied, res, len, data);
}

/* A backoff drawn from [b/2, b]: clients turned away together must not
 * come back together. */
static uint32_t jitter(uint32_t b)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint32_t)mk_mono_ms();
    return b / 2 + (b ? r % (b / 2 + 1) : 0);
}

/* Sends `o` again (now, or after a backoff). */
static void on_tick(uv_timer_t *t);

/* Sets the tick's pace by whether anything waits to be routed. */
static void tick_pace(mk_group_client *c)
{
    bool fast = c->idle > 0;
    for (cq *q = c->qs; q && !fast; q = q->next)
        fast = q->state == IDLE;
    if (fast == c->tick_fast || c->closing)
        return;
    c->tick_fast = fast;
    uint64_t ms = fast ? TICK_MS : IDLE_TICK_MS;
    uv_timer_start(&c->tick, on_tick, ms, ms);
}

static void retry(mk_group_client *c, cop *o, bool fast)
{
    op_state(c, o, IDLE);
    o->on = NULL;
    if (!fast)
        o->backoff = next_backoff(o->backoff);
    o->not_before = mk_mono_ms() + (fast ? 0 : jitter(o->backoff));
    tick_pace(c);
}

static bool route_op(mk_group_client *c, cop *o)
{
    mk_peer_id m;
    conn *k = NULL;
    if (c->sent >= c->cwnd)
        return false; /* waits for an answer, not for a backoff */
    if (pick(c, &m))
        k = conn_get(c, &m);
    if (k) {
        mk__req req = {.op = MK__OP_EXEC,
                       .timeout_ms = remaining(o->deadline),
                       .seq = o->seq,
                       .ack = c->ops->seq - 1, /* lowest pending - 1 */
                       .body = o->cmd,
                       .len = o->len};
        memcpy(req.session, c->session, MK__SESSION_LEN);
        if (send_req(c, k, &req) == 0) {
            op_state(c, o, SENT);
            o->sent_at = mk_mono_ms();
            o->on = k;
            o->req_id = req.id;
            o->sent_ack = req.ack;
            return true;
        }
    } else if (c->has_leader && !c->has_via) {
        avoid(c, &c->leader);
    }
    o->backoff = next_backoff(o->backoff);
    o->not_before = mk_mono_ms() + jitter(o->backoff);
    return false;
}

/* ---- queries and status ---------------------------------------------------- */

static void q_finish(mk_group_client *c, cq *q, int status, uint64_t applied,
                     const uint8_t *res, size_t len)
{
    for (cq **pp = &c->qs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    if (q->op == MK__OP_QUERY || q->op == MK__OP_ASSIGN) {
        q->cb(status, applied, res, len, q->data);
    } else {
        mk_member_status ms;
        if (status == 0 && mk__status_decode(res, len, &ms) != 0)
            status = MK_EDECODE;
        q->scb(status, status == 0 ? &ms : NULL, q->data);
    }
    free(q->q);
    free(q);
}

static void q_retry(mk_group_client *c, cq *q)
{
    q->state = IDLE;
    q->on = NULL;
    q->backoff = next_backoff(q->backoff);
    q->not_before = mk_mono_ms() + q->backoff;
    tick_pace(c);
}

static void route_q(mk_group_client *c, cq *q)
{
    mk_peer_id m = q->member;
    conn *k = NULL;
    if (q->fixed || pick(c, &m))
        k = conn_get(c, &m);
    if (k) {
        mk__req req = {.op = q->op, .timeout_ms = remaining(q->deadline),
                       .level = q->level, .flags = q->flags, .body = q->q,
                       .len = q->len};
        if (send_req(c, k, &req) == 0) {
            q->state = SENT;
            q->sent_at = mk_mono_ms();
            q->on = k;
            q->req_id = req.id;
            return;
        }
    }
    q_retry(c, q);
}

/* ---- answers ----------------------------------------------------------------- */

static void on_welcome(void *data, mk__rpc *rpc, const mk__proof *p)
{
    mk_group_client *c = data;
    conn *k = conn_of(c, rpc);
    if (k)
        k->heard = mk_mono_ms();
    /* Every proof of one GroupId lists the same voters (the id folds
     * them), so the first one is the set. A ticket-gated group's members
     * change: its proofs narrow nothing. */
    if (c->n_voters == 0 && !p->tickets) {
        memcpy(c->voters, p->voters, p->n * sizeof *p->voters);
        c->n_voters = p->n;
    }
}

/* A command refused at a member's door (answered final, applied 0) never
 * reaches the log, while the leader holds the one after it until its
 * predecessor is in the log or the ack says it is settled: the request it
 * holds carries the ack of when it was sent. Once everything before that
 * successor is answered, it is sent again with the ack that settles the
 * gap, instead of waiting out its attempt (ATTEMPT_MS) at the leader. */
static void note_gap(mk_group_client *c, uint64_t refused)
{
    cop *next = op_by_seq(c, refused + 1);
    if (next)
        next->after_gap = true;
}

static void release_held(mk_group_client *c)
{
    cop *o = c->ops; /* the lowest pending: everything before is answered */
    if (o && o->after_gap && o->state == SENT && o->sent_ack + 1 < o->seq) {
        c->gap_resends++;
        retry(c, o, true);
    }
}

uint64_t mk__group_client_gap_resends(const mk_group_client *c)
{
    return c->gap_resends;
}

static void on_reply(void *data, mk__rpc *rpc, const mk__resp *r)
{
    mk_group_client *c = data;
    if (c->closing)
        return;
    conn *k = conn_of(c, rpc);
    if (k)
        k->heard = mk_mono_ms();
    if (r->has_leader && !mk_id_eq(&r->leader, mk_node_id(c->node))) {
        c->has_leader = true;
        c->leader = r->leader;
    }
    if (r->op == MK__OP_EXEC) {
        if (memcmp(r->session, c->session, MK__SESSION_LEN) != 0)
            return;
        cop *o = op_by_seq(c, r->seq);
        if (!o)
            return;
        if (!mk__status_retryable(r->status)) {
            if (c->cwnd < CWND_MAX)
                c->cwnd++;
            uint64_t seq = o->seq;
            bool refused = r->status != 0 && r->applied == 0;
            op_finish(c, o, r->status, r->applied, r->body, r->len);
            if (c->closing)
                return; /* closed from the callback */
            if (refused)
                note_gap(c, seq);
            release_held(c);
            route_all(c); /* room in the window */
            return;
        }
        if (o->state != SENT || o->req_id != r->id)
            return; /* about an earlier attempt */
        if (r->status == MK_EBUSY && c->cwnd > CWND_MIN) {
            c->cwnd = c->sent / 2 > CWND_MIN ? c->sent / 2 : CWND_MIN;
        }
        if (r->status == MK_ENOT_LEADER && !r->has_leader)
            c->has_leader = false;
        shun(c, rpc, r->status);
        retry(c, o, r->status == MK_EAGAIN || r->status == MK_ENOT_LEADER);
        route_all(c);
        return;
    }
    for (cq *q = c->qs; q; q = q->next) {
        if (q->state != SENT || q->req_id != r->id || q->on->rpc != rpc)
            continue;
        if (r->op == MK__OP_STATUS && r->status == 0 && q->op == MK__OP_STATUS) {
            mk_member_status ms;
            if (mk__status_decode(r->body, r->len, &ms) == 0 &&
                ms.st.has_leader) {
                c->has_leader = true;
                c->leader = ms.st.leader;
            }
        }
        if (mk__status_retryable(r->status)) {
            shun(c, rpc, r->status);
            q_retry(c, q);
        } else
            q_finish(c, q, r->status, r->applied, r->body, r->len);
        return;
    }
}

/* `k` is gone: what was sent on it goes elsewhere. `avoid_ms` keeps its
 * member aside that long (0: not at all). */
static void conn_lost(mk_group_client *c, conn *k, int64_t avoid_ms)
{
    for (conn **pp = &c->conns; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    const mk_peer_id *peer = mk__rpc_peer(k->rpc);
    if (avoid_ms > 0) {
        avoid_for(c, peer, avoid_ms);
        if (c->has_leader && mk_id_eq(&c->leader, peer))
            c->has_leader = false;
    }
    for (cop *o = c->ops; o; o = o->next)
        if (o->state == SENT && o->on == k)
            retry(c, o, false);
    for (cq *q = c->qs; q; q = q->next)
        if (q->state == SENT && q->on == k)
            q_retry(c, q);
    free(k);
}

static void on_down(void *data, mk__rpc *rpc)
{
    mk_group_client *c = data;
    conn *k = conn_of(c, rpc);
    if (!k)
        return;
    /* A member that did not know us yet is being told now (group_rpc.c
     * syncs catalogs on UNKNOWN_PEER): try it again soon rather than
     * shunning it, or a fresh client waits out AVOID_MS on every member
     * before its first command. */
    bool unknown = mk__rpc_close_code(rpc) == MK_CLOSE_UNKNOWN_PEER;
    conn_lost(c, k, unknown ? 0 : AVOID_MS);
}

/* A link where a request has waited SILENT_MS since it went, and nothing
 * came back since, is let go (see the top of the file). Looked for twice
 * a second: the walk covers the window, which may be long. */
static void drop_silent(mk_group_client *c, int64_t now)
{
    if (now < c->silence_at || !c->conns)
        return;
    c->silence_at = now + 500;
    conn *silent = NULL;
    for (cop *o = c->ops; o && !silent; o = o->next)
        if (o->state == SENT && now - o->sent_at > SILENT_MS &&
            o->on->heard < o->sent_at)
            silent = o->on;
    for (cq *q = c->qs; q && !silent; q = q->next)
        if (q->state == SENT && now - q->sent_at > SILENT_MS &&
            q->on->heard < q->sent_at)
            silent = q->on;
    if (!silent)
        return;
    mk__rpc *rpc = silent->rpc;
    conn_lost(c, silent, SILENT_AVOID_MS); /* frees `silent` */
    mk__rpc_close(rpc); /* its `down` is not called after this */
}

/* ---- the tick ------------------------------------------------------------- */

static void route_all(mk_group_client *c)
{
    int64_t now = mk_mono_ms();
    for (cop *o = c->first_idle, *next; o && c->idle; o = next) {
        next = o->next;
        if (o->state != IDLE)
            continue;
        if (o->not_before > now || !route_op(c, o))
            break; /* keep the order */
    }
    for (cq *q = c->qs; q; q = q->next)
        if (q->state == IDLE && q->not_before <= now)
            route_q(c, q);
    tick_pace(c);
}

static void on_tick(uv_timer_t *t)
{
    mk_group_client *c = t->data;
    int64_t now = mk_mono_ms();
    if (!c->expire_at || now >= c->expire_at) {
        int64_t at = INT64_MAX;
        for (cop *o = c->ops, *next; o && !c->closing; o = next) {
            next = o->next;
            if (o->deadline <= now)
                op_finish(c, o, MK_ECONNECT_TIMEOUT, 0, NULL, 0);
            else if (o->deadline < at)
                at = o->deadline;
        }
        for (cq *q = c->qs, *next; q && !c->closing; q = next) {
            next = q->next;
            if (q->deadline <= now)
                q_finish(c, q, MK_ECONNECT_TIMEOUT, 0, NULL, 0);
            else if (q->deadline < at)
                at = q->deadline;
        }
        c->expire_at = at;
    }
    if (!c->closing)
        drop_silent(c, now);
    if (!c->closing)
        route_all(c);
}

/* ---- the handle ---------------------------------------------------------- */

int mk_group_client_open(mk_node *node, const mk_id *group,
                         mk_group_client **out)
{
    mk_group_client *c = calloc(1, sizeof *c);
    if (!c)
        return MK_ENOMEM;
    if (getrandom(c->session, sizeof c->session, 0) !=
        (ssize_t)sizeof c->session) {
        free(c);
        return MK_EIO;
    }
    c->node = node;
    c->gid = *group;
    c->cwnd = CWND_START;
    uv_timer_init(mk_node_loop(node), &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, IDLE_TICK_MS, IDLE_TICK_MS);
    *out = c;
    return 0;
}

void mk_group_client_via(mk_group_client *c, const mk_peer_id *member)
{
    c->has_via = member != NULL;
    if (member)
        c->via = *member;
}

int mk_group_client_execute(mk_group_client *c, const void *cmd, size_t len,
                            uint32_t timeout_ms, mk_group_result_cb cb,
                            void *data)
{
    if (c->closing)
        return MK_ECLOSED;
    if (len > MK__CMD_MAX)
        return MK_EMSGSIZE;
    cop *o = calloc(1, sizeof *o);
    uint8_t *copy = malloc(len ? len : 1);
    if (!o || !copy) {
        free(o);
        free(copy);
        return MK_ENOMEM;
    }
    if (len)
        memcpy(copy, cmd, len);
    if (slots_fit(c, c->next_seq + 1) != 0) {
        free(o);
        free(copy);
        return MK_ENOMEM;
    }
    o->seq = ++c->next_seq;
    o->cmd = copy;
    o->len = len;
    o->cb = cb;
    o->data = data;
    o->deadline = mk_mono_ms() + (timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
    if (c->expire_at && o->deadline < c->expire_at)
        c->expire_at = o->deadline;
    o->state = DONE; /* op_state below makes it IDLE, and counts it */
    if (c->tail)
        c->tail->next = o;
    else
        c->ops = o;
    c->tail = o;
    c->slots[o->seq & c->mask] = o;
    op_state(c, o, IDLE);
    route_all(c); /* from the first waiting one: this one, usually */
    return 0;
}

static int add_q(mk_group_client *c, cq *q, const void *body, size_t len,
                 uint32_t timeout_ms)
{
    if (c->closing) {
        free(q);
        return MK_ECLOSED;
    }
    q->q = malloc(len ? len : 1);
    if (!q->q) {
        free(q);
        return MK_ENOMEM;
    }
    if (len)
        memcpy(q->q, body, len);
    q->len = len;
    q->deadline = mk_mono_ms() + (timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
    if (c->expire_at && q->deadline < c->expire_at)
        c->expire_at = q->deadline;
    q->next = c->qs;
    c->qs = q;
    route_q(c, q);
    return 0;
}

int mk_group_client_query(mk_group_client *c, const void *query, size_t len,
                          mk_consistency level, uint32_t timeout_ms,
                          mk_group_result_cb cb, void *data)
{
    if (len > MK__CMD_MAX)
        return MK_EMSGSIZE;
    cq *q = calloc(1, sizeof *q);
    if (!q)
        return MK_ENOMEM;
    q->op = MK__OP_QUERY;
    q->level = (uint8_t)level;
    q->cb = cb;
    q->data = data;
    return add_q(c, q, query, len, timeout_ms);
}

const char *mk_member_role_name(mk_member_role role)
{
    switch (role) {
    case MK_MEMBER_FOLLOWER: return "follower";
    case MK_MEMBER_CANDIDATE: return "candidate";
    case MK_MEMBER_LEADER: return "leader";
    default: return "unavailable";
    }
}

int mk_group_client_status(mk_group_client *c, const mk_peer_id *member,
                           bool hash, uint32_t timeout_ms,
                           mk_group_client_status_cb cb, void *data)
{
    cq *q = calloc(1, sizeof *q);
    if (!q)
        return MK_ENOMEM;
    q->op = MK__OP_STATUS;
    q->flags = hash ? MK__STATUS_WANT_HASH : 0;
    q->fixed = true;
    q->member = *member;
    q->scb = cb;
    q->data = data;
    return add_q(c, q, NULL, 0, timeout_ms);
}

/* ASSIGN with role byte 1 (voter), 0 (standby) or 2 (out). */
static int assign(mk_group_client *c, const mk_peer_id *member, uint8_t role,
                  const mk_keypair *signer, uint32_t timeout_ms,
                  mk_group_result_cb cb, void *data)
{
    cq *q = calloc(1, sizeof *q);
    if (!q)
        return MK_ENOMEM;
    uint8_t body[MK__ASSIGN_LEN], *p = body;
    memcpy(p, member->b, MK_ID_LEN);
    p += MK_ID_LEN;
    *p++ = role;
    memcpy(p, signer->pub.b, MK_ID_LEN);
    p += MK_ID_LEN;
    uint64_t now = (uint64_t)mk_now_ms();
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(now >> (8 * i));
    uint8_t digest[32];
    mk__assign_digest(&c->gid, body, digest);
    mk_sign(signer, digest, sizeof digest, p);
    q->op = MK__OP_ASSIGN;
    q->cb = cb;
    q->data = data;
    return add_q(c, q, body, sizeof body, timeout_ms);
}

int mk_group_client_assign(mk_group_client *c, const mk_peer_id *member,
                           bool voter, const mk_keypair *signer,
                           uint32_t timeout_ms, mk_group_result_cb cb,
                           void *data)
{
    return assign(c, member, voter ? 1 : 0, signer, timeout_ms, cb, data);
}

int mk_group_client_remove(mk_group_client *c, const mk_peer_id *member,
                           const mk_keypair *signer, uint32_t timeout_ms,
                           mk_group_result_cb cb, void *data)
{
    return assign(c, member, 2, signer, timeout_ms, cb, data);
}

static void on_tick_closed(uv_handle_t *h)
{
    mk_group_client *c = h->data;
    void (*cb)(void *) = c->close_cb;
    void *data = c->close_data;
    free(c->slots);
    free(c);
    if (cb)
        cb(data);
}

void mk_group_client_close(mk_group_client *c, mk_close_cb cb, void *data)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    while (c->ops)
        op_finish(c, c->ops, MK_ECANCELED, 0, NULL, 0);
    while (c->qs)
        q_finish(c, c->qs, MK_ECANCELED, 0, NULL, 0);
    while (c->conns) {
        conn *k = c->conns;
        c->conns = k->next;
        mk__rpc_close(k->rpc);
        free(k);
    }
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
}
