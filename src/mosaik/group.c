/* Groups (include/mosaik/group.h): a fixed committee of voters running one
 * deterministic state machine through Canonical raft.
 *
 * Identity. GroupId = g0 = blake3(root); g1 = derive(g0, "libraft/1" ‖
 * u32le(election_timeout_ms) ‖ u32le(heartbeat_ms)); g2 = derive(g1,
 * fsm signature); then g = derive(g, validator signature) for each
 * validator in order; last GroupId = derive(g, "voters" ‖ u32le n ‖ the
 * voters' PeerIds in ascending byte order). Unlike mosaik (§1.5) the timing
 * parameters that decide liveness are in the id, so members that would
 * disagree on them never meet; snapshot_threshold and max_in_flight are
 * local choices and are not. The voter set is folded last so that a member
 * can prove it is one (group_proof.c): without that, any peer listing the
 * GroupId in its entry could answer for the committee.
 *
 * Consensus is libraft with its durable libuv storage in the data dir; the
 * voters' Raft ids are the first 8 bytes of their PeerIds (big-endian) and
 * their Raft addresses the PeerIds in hex. libraft's connections go through
 * raft_bridge.c (authenticated links only, reference/raft-probe.md hazard 2).
 *
 * Commands are exactly-once (group_fsm.h): every command carries a session
 * (16 random bytes per handle, or the remote client's) and a sequence
 * number, and is retried with the same pair until it is answered or its
 * deadline passes. A command lives here as an mk__op with its waiters (the
 * local caller, and/or requesters on RPC links) until the state machine
 * applies it (here or, for a forwarded one, on the leader, whose answer
 * arrives over the RPC link: whichever comes first answers). Its states:
 *
 *   IDLE       to be routed (now, or after a backoff)
 *   QUEUED     leader: waiting for room in the in-flight window
 *   PROPOSED   leader: in a raft_apply of the current term
 *   FORWARDED  follower: sent to the leader over an RPC link
 *
 * A session's commands are routed in sequence order, and any failure (a
 * lost leadership, a broken link, a NOT_LEADER answer, a gap) re-routes
 * that command and every later one of its session, in order: duplicates
 * are harmless (the adapter answers them from its table), reordering is
 * not (the adapter refuses gaps).
 *
 * The leader proposes queued commands just before the loop polls (a
 * prepare handle), as one raft_apply with many buffers, never letting more
 * than max_in_flight entries wait between append and apply: unbounded
 * proposals collapse libraft's throughput (hazard 3), and batching is what
 * makes it fast.
 *
 * Strong queries on the leader wait for a raft_barrier issued after they
 * arrived (one barrier serves every query waiting for it), so they see
 * every write acknowledged before they were asked and are answered only by
 * a leader a majority still follows. Followers forward them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/fsdir.h"
#include "mosaik/group_internal.h"
#include "mosaik/jwt.h"
#include "group_prepare.h"

#define DEFAULT_TIMEOUT_MS 10000
#define MAX_REMOTE_TIMEOUT_MS 120000
/* A batch entry is closed at this many bytes (a single larger command
 * still gets an entry of its own). Large enough that one fsync carries
 * thousands of small commands, small enough that followers get it in
 * one go. */
#define ENTRY_MAX_BYTES (1u << 20)
/* Bytes proposed but not yet applied, beyond which the leader waits:
 * what a slow follower or disk can make the leader hold. */
#define MAX_INFLIGHT_BYTES (64u << 20)
/* What libraft may keep of the log in memory between snapshots. It counts
 * entries, not bytes, and a batch entry can hold a megabyte, so the
 * threshold follows the size entries have had lately (size_log). */
#define LOG_MEM_TARGET (64u << 20)
#define SIZE_LOG_EVERY_MS 1000
/* With snapshot_threshold left to the group, a snapshot is taken once the
 * log since the last one holds LOG_PER_SNAPSHOT times as many bytes as
 * that snapshot did (at least LOG_MIN_BYTES and AUTO_MIN_ENTRIES
 * entries), so the work of snapshotting stays proportional to what is
 * written whatever the state's size: serialising it cost a Map's leader
 * as much CPU as applying the writes at 1×, half that at 2×. A fixed count made a 20 MiB map serialise and fsync itself every
 * few MiB of writes: the committee's p99 at 1 KiB commands fell from 52 ms
 * to 16 ms without it (bench/committee.sh, 8 clients, window 1). */
#define LOG_PER_SNAPSHOT 2
#define LOG_MIN_BYTES (1u << 20)
#define AUTO_MIN_ENTRIES 1024
#define TICK_MS 20
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 250
#define BOND_CHECK_MS 1000
/* Commands from requesters held here at once (and their bytes): beyond,
 * new ones are refused with MK_EBUSY (the requester retries later), so a
 * flood of requests cannot grow a member's memory without bound. */
#define MAX_REMOTE_OPS 65536
#define MAX_REMOTE_BYTES (256u << 20)
/* And from one requester link: a single client cannot take them all. */
#define MAX_LINK_OPS 32768
/* Commands larger than this are refused at the door unless the group's
 * params say otherwise (mk_group_params.max_command_bytes). */
#define DEFAULT_MAX_COMMAND (1u << 20)

/* Storage (see "storage" below). FAILED: gio tripped, raft_close not yet
 * issued; STOPPING: issued; STOPPED: closed, probing the disk; REFUSED:
 * the log lost entries, never restarted. */
enum { DISK_OK, DISK_FAILED, DISK_STOPPING, DISK_STOPPED, DISK_REFUSED };
#define DISK_RETRY_MS 1000
/* What a probe must allocate before Raft restarts: two of raft_uv's 8 MiB
 * segments (one being written, one prepared), so a disk with a few bytes
 * free does not bounce between restart and failure. */
#define DISK_PROBE_BYTES (16 << 20)
/* How often the durable watermark may be rewritten. */
#define MARK_EVERY_MS 200

enum { OP_IDLE, OP_QUEUED, OP_PROPOSED, OP_FORWARDED };
enum { Q_IDLE, Q_WAIT, Q_BARRIER, Q_FORWARDED };

typedef struct mk__waiter {
    struct mk__waiter *next;
    int64_t deadline; /* mono ms */
    int64_t since_us; /* mono, when a command was taken: its latency;
                         0 when not timed (metrics off) */
    mk_group_result_cb cb; /* local caller, or NULL */
    void *data;
    mk__srv *srv; /* remote requester, or NULL */
    uint64_t req_id;
} mk__waiter;

struct mk__op {
    mk__op *next, *sprev;  /* in its session, ascending seq */
    mk__op *qprev, *qnext; /* in the proposal queue */
    mk__sess *sess;
    uint64_t seq, ack;
    uint8_t *cmd;
    size_t len;
    int state;
    int64_t not_before;
    uint32_t backoff;
    raft_term term;  /* PROPOSED */
    mk__fwd *fwd;    /* FORWARDED */
    uint64_t fwd_req;
    mk__waiter *waiters;
};

struct mk__sess {
    mk__sess *next;
    uint8_t id[MK__SESSION_LEN];
    bool local;
    mk__op *ops, *tail; /* ascending seq */
    size_t idle;        /* ops in OP_IDLE */
    mk__op *first_idle; /* the lowest-seq one of them: routing starts here */
};

struct mk__qop {
    mk__qop *next;
    uint8_t *q;
    size_t len;
    int state;
    uint64_t gen;
    int64_t not_before;
    uint32_t backoff;
    mk__fwd *fwd;
    uint64_t fwd_req;
    mk__waiter w;
};

struct mk__fwd {
    mk__fwd *next;
    mk__rpc *rpc;
};

struct mk__srv {
    mk__srv *prev, *next;
    mk_group *g; /* NULL once detached */
    mk_link *link;
    mk__bond bond;
    bool bonded;
    bool voter; /* the requester is a voter: its door admitted already */
    bool told_leader; /* `leader` was named to this requester */
    mk_peer_id leader;
    int refs;   /* waiters pointing here: its commands and queries held */
};

struct mk__done {
    mk__done *next;
    mk_group_result_cb cb;
    void *data;
    int status;
    uint64_t applied;
    size_t len;
    uint8_t result[];
};

struct mk__gwatch {
    mk__gwatch *next;
    mk_group_change_cb cb;
    void *data;
};

typedef struct batch {
    struct raft_apply req;
    mk_group *g;
    size_t bytes; /* counted in g->inflight_bytes */
    size_t n;
    struct {
        uint8_t session[MK__SESSION_LEN];
        uint64_t seq;
    } keys[];
} batch;

static void route_idle(mk_group *g);
static void route_q(mk_group *g, mk__qop *q);
static void schedule_flush(mk_group *g);
static void door_drain(mk_group *g);
static int peer_cmp(const void *a, const void *b);

/* ---- identity ------------------------------------------------------------ */

raft_id mk__raft_id_of(const mk_peer_id *peer)
{
    raft_id id = 0;
    for (int i = 0; i < 8; i++)
        id = id << 8 | peer->b[i];
    return id;
}

static void params_defaults(mk_group_params *p)
{
    if (!p->election_timeout_ms)
        p->election_timeout_ms = 1000;
    if (!p->heartbeat_ms)
        p->heartbeat_ms = 50;
    /* Entries, not commands: each may be a batch of thousands. A short
     * window makes batches grow under load instead of entries. */
    if (!p->max_in_flight)
        p->max_in_flight = 64;
    if (!p->max_command_bytes)
        p->max_command_bytes = DEFAULT_MAX_COMMAND;
    if (p->max_command_bytes > MK_GROUP_COMMAND_MAX)
        p->max_command_bytes = MK_GROUP_COMMAND_MAX;
    if (!p->max_voters)
        p->max_voters = 5;
    if (!p->replace_after_ms)
        p->replace_after_ms = 10000;
}

/* Everything but the voter set: what a member shows in its proof. */
static void base_id(const mk_group_config *cfg, mk_id *out)
{
    mk_group_params p = cfg->params;
    params_defaults(&p);
    mk_id g;
    mk_id_hash(&g, cfg->root.b, MK_ID_LEN);
    uint8_t label[9 + 8];
    memcpy(label, "libraft/1", 9);
    for (int i = 0; i < 4; i++) {
        label[9 + i] = (uint8_t)(p.election_timeout_ms >> (8 * i));
        label[13 + i] = (uint8_t)(p.heartbeat_ms >> (8 * i));
    }
    mk_id_derive(&g, &g, label, sizeof label);
    mk_id_derive(&g, &g, cfg->fsm->signature.b, MK_ID_LEN);
    for (size_t i = 0; i < cfg->n_validators; i++)
        mk_id_derive(&g, &g, cfg->validators[i]->signature.b, MK_ID_LEN);
    /* Which members start as voters depends on max_voters only when there
     * are more members than that: only then must they agree on it. A
     * ticket-gated group folds it with its policy (mk_group_id_of). */
    if (!cfg->tickets && cfg->n_voters > p.max_voters) {
        uint8_t mv[10 + 4];
        memcpy(mv, "max_voters", 10);
        for (int i = 0; i < 4; i++)
            mv[10 + i] = (uint8_t)(p.max_voters >> (8 * i));
        mk_id_derive(&g, &g, mv, sizeof mv);
    }
    *out = g;
}

/* The proof a ticket-gated member shows (and the fields its GroupId
 * folds): the seeds and the policy. MK_EINVAL for a policy that cannot
 * be one (no key, too many, a string too long or with a ','). */
static int tickets_proof(const mk_group_config *cfg, const mk_id *base,
                         mk__proof *p)
{
    mk_group_params prm = cfg->params;
    params_defaults(&prm);
    memset(p, 0, sizeof *p);
    p->base = *base;
    if (cfg->n_voters == 0 || cfg->n_voters > MK__MAX_VOTERS)
        return MK_EINVAL;
    p->n = cfg->n_voters;
    memcpy(p->voters, cfg->voters, cfg->n_voters * sizeof *cfg->voters);
    qsort(p->voters, p->n, sizeof *p->voters, peer_cmp);
    p->tickets = true;
    p->max_voters = prm.max_voters;
    p->policy = *cfg->tickets;
    return 0;
}

/* The ticket-gated GroupId (docs/groups.md, "Ticket-gated members"). */
static int tickets_id(const mk_group_config *cfg, const mk_id *base,
                      mk__proof *p, mk_id *out)
{
    struct mk_ticket_validator v;
    int rc = tickets_proof(cfg, base, p);
    if (rc == 0)
        rc = mk__proof_validator(p, &v);
    if (rc != 0)
        return rc;
    rc = mk__group_fold_tickets(p, &v.signature, out);
    mk_ticket_validator_free(&v);
    return rc;
}

void mk_group_id_of(const mk_group_config *cfg, mk_id *out)
{
    mk_id base;
    base_id(cfg, &base);
    /* A list that cannot be folded (none, repeats, too many) leaves the
     * base: no member can prove that id, so it names no group. */
    if (cfg->tickets) {
        mk__proof p;
        if (tickets_id(cfg, &base, &p, out) != 0)
            *out = base;
        return;
    }
    if (mk__group_fold_voters(&base, cfg->voters, cfg->n_voters, out) != 0)
        *out = base;
}

static int peer_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(mk_peer_id));
}

const mk_id *mk_group_id(const mk_group *g)
{
    return &g->id;
}

bool mk__group_voter(const mk_group *g, const mk_peer_id *peer, raft_id *id)
{
    for (size_t i = 0; i < g->n_voters; i++)
        if (mk_id_eq(&g->voters[i].peer, peer)) {
            if (id)
                *id = g->voters[i].id;
            return true;
        }
    return false;
}

const mk__voter *mk__group_voter_by_id(const mk_group *g, raft_id id)
{
    for (size_t i = 0; i < g->n_voters; i++)
        if (g->voters[i].id == id)
            return &g->voters[i];
    return NULL;
}

/* ---- admission and bonds -------------------------------------------------- */

uint32_t mk__group_admit(mk_group *g, const mk_peer_id *peer, bool voter,
                         int64_t *expires_ms, char *why)
{
    char tmp[MK_ERRMSG_SIZE];
    if (!why)
        why = tmp;
    why[0] = '\0';
    *expires_ms = MK_TICKET_NEVER;
    mk_peer_info info;
    if (!mk_node_peer(g->node, peer, &info)) {
        snprintf(why, MK_ERRMSG_SIZE, "peer not in the catalog");
        return MK_CLOSE_UNKNOWN_PEER;
    }
    int64_t member_exp = MK_TICKET_NEVER;
    if (voter && g->tickets) {
        /* Ticket-gated: a Raft link is a member's while its ticket
         * passes, whatever the table says (group_tickets.c). */
        if (mk__member_ticket(g, peer, &member_exp, why) != 0)
            return MK_CLOSE_GROUP_NOT_ALLOWED;
    } else if (voter && !mk__group_voter(g, peer, NULL)) {
        snprintf(why, MK_ERRMSG_SIZE, "not a voter of this group");
        return MK_CLOSE_GROUP_NOT_ALLOWED;
    }
    int rc = mk_ticket_validate_all(g->validators, g->n_validators,
                                    info.entry->tickets, info.entry->n_tickets,
                                    peer, mk_now_ms(), expires_ms, why);
    if (rc != 0)
        return MK_CLOSE_GROUP_NOT_ALLOWED;
    if (member_exp < *expires_ms)
        *expires_ms = member_exp;
    if (voter && g->tickets && !mk__member_note(g, peer)) {
        snprintf(why, MK_ERRMSG_SIZE,
                 "no room for the member, or its raft id is another's");
        return MK_CLOSE_GROUP_NOT_ALLOWED;
    }
    return 0;
}

void mk__group_bond_add(mk_group *g, mk__bond *b)
{
    b->prev = &g->bonds;
    b->next = g->bonds.next;
    g->bonds.next->prev = b;
    g->bonds.next = b;
}

void mk__group_bond_remove(mk_group *g, mk__bond *b)
{
    (void)g;
    if (!b->next)
        return;
    b->prev->next = b->next;
    b->next->prev = b->prev;
    b->prev = b->next = NULL;
}

/* Re-judges the bonds of `peer` (every bond when NULL, or only those past
 * their expiry when `expired_only`), closing those that fail now. */
static void recheck_bonds(mk_group *g, const mk_peer_id *peer,
                          bool expired_only)
{
    int64_t now = mk_now_ms();
    for (mk__bond *b = g->bonds.next; b != &g->bonds; b = b->next) {
        if (peer && !mk_id_eq(&b->peer, peer))
            continue;
        if (expired_only && b->expires_ms > now)
            continue;
        char why[MK_ERRMSG_SIZE];
        int64_t exp;
        uint32_t code = mk__group_admit(g, &b->peer, b->voter, &exp, why);
        if (code == MK_CLOSE_UNKNOWN_PEER)
            continue; /* purged from the catalog: the link itself decides */
        if (code != 0)
            mk_link_close(b->link, MK_CLOSE_GROUP_NOT_ALLOWED, why);
        else
            b->expires_ms = exp;
    }
}

static void on_peer_event(mk_node *node, mk_peer_event ev,
                          const mk_peer_entry *e, void *data)
{
    mk_group *g = data;
    if (ev == MK_PEER_UPDATED && !g->closing)
        recheck_bonds(g, &e->peer, false);
}

/* ---- deferred completions -------------------------------------------------- */

static void done_push(mk_group *g, mk_group_result_cb cb, void *data,
                      int status, uint64_t applied, const uint8_t *res,
                      size_t len)
{
    mk__done *d = malloc(sizeof *d + len);
    if (!d) {
        /* Cannot defer: answer now, without the result. */
        cb(status ? status : MK_ENOMEM, applied, NULL, 0, data);
        return;
    }
    d->next = NULL;
    d->cb = cb;
    d->data = data;
    d->status = status;
    d->applied = applied;
    d->len = len;
    if (len)
        memcpy(d->result, res, len);
    if (g->done_tail)
        g->done_tail->next = d;
    else
        g->done_head = d;
    g->done_tail = d;
}

static void done_deliver(mk_group *g)
{
    while (g->done_head) {
        mk__done *d = g->done_head;
        g->done_head = d->next;
        if (!g->done_head)
            g->done_tail = NULL;
        d->cb(d->status, d->applied, d->len ? d->result : NULL, d->len,
              d->data);
        free(d);
    }
}

/* ---- answering requesters ---------------------------------------------- */

static void srv_maybe_free(mk__srv *s)
{
    if (!s->g && !s->link && s->refs == 0)
        free(s);
}

static void srv_send(mk__srv *s, const mk__resp *r)
{
    if (!s->link)
        return;
    mk_buf b;
    mk_buf_init(&b);
    mk__resp_encode(&b, r);
    if (!b.err)
        mk_link_send(s->link, b.data, b.len);
    mk_buf_free(&b);
}

/* Answers one waiter and frees it. */
static void waiter_finish(mk_group *g, mk__waiter *w, uint8_t op,
                          const uint8_t *session, uint64_t seq, int status,
                          uint64_t applied, const uint8_t *res, size_t len)
{
    if (op == MK__OP_EXEC && status == 0 && w->since_us)
        mk__group_metrics_latency(g, mk__group_metrics_clock(g) - w->since_us);
    if (w->cb) {
        done_push(g, w->cb, w->data, status, applied, res, len);
    } else if (w->srv) {
        mk__resp r = {.id = w->req_id, .op = op, .status = status,
                      .applied = applied, .seq = seq, .body = res,
                      .len = len};
        if (session)
            memcpy(r.session, session, MK__SESSION_LEN);
        /* Say who leads on NOT_LEADER, and on any answer whenever this
         * requester has not heard it from us yet: a client that learns it
         * goes to the leader directly instead of through a forwarding
         * follower (two more hops and two more TLS records a command). */
        mk_group_status st;
        mk_group_status_get(g, &st);
        if (st.has_leader &&
            (status == MK_ENOT_LEADER || !w->srv->told_leader ||
             !mk_id_eq(&w->srv->leader, &st.leader))) {
            r.has_leader = true;
            r.leader = st.leader;
            w->srv->told_leader = true;
            w->srv->leader = st.leader;
        }
        srv_send(w->srv, &r);
        w->srv->refs--;
        srv_maybe_free(w->srv);
    }
}

/* ---- sessions and commands --------------------------------------------- */

static mk__sess *sess_find(mk_group *g, const uint8_t *id)
{
    for (mk__sess *s = g->sessions; s; s = s->next)
        if (memcmp(s->id, id, MK__SESSION_LEN) == 0)
            return s;
    return NULL;
}

static mk__op *op_find(mk__sess *s, uint64_t seq)
{
    /* Arrivals are new (past the tail), answers old (near the head). */
    if (!s->tail || seq > s->tail->seq)
        return NULL;
    if (seq == s->tail->seq)
        return s->tail;
    for (mk__op *o = s->ops; o && o->seq <= seq; o = o->next)
        if (o->seq == seq)
            return o;
    return NULL;
}

static void queue_remove(mk_group *g, mk__op *o)
{
    if (o->qprev)
        o->qprev->qnext = o->qnext;
    else
        g->queue_head = o->qnext;
    if (o->qnext)
        o->qnext->qprev = o->qprev;
    else
        g->queue_tail = o->qprev;
    o->qprev = o->qnext = NULL;
    g->queued--;
}

/* Every state change goes through here: a session counts its IDLE ops so
 * that routing skips sessions with nothing to route (a window of tens of
 * thousands of commands must not be walked on every arrival). */
static void op_set_state(mk__op *o, int state)
{
    mk__sess *s = o->sess;
    if (o->state == state)
        return;
    if (o->state == OP_IDLE)
        s->idle--;
    o->state = state;
    if (state == OP_IDLE) {
        s->idle++;
        if (!s->first_idle || o->seq < s->first_idle->seq)
            s->first_idle = o;
    } else if (s->first_idle == o) {
        /* The next one waiting, if any: found by walking forward, which
         * the routing that follows walks anyway. */
        mk__op *x = s->idle ? o->next : NULL;
        while (x && x->state != OP_IDLE)
            x = x->next;
        s->first_idle = x;
    }
}

static void queue_push(mk_group *g, mk__op *o)
{
    o->qnext = NULL;
    o->qprev = g->queue_tail;
    if (g->queue_tail)
        g->queue_tail->qnext = o;
    else
        g->queue_head = o;
    g->queue_tail = o;
    g->queued++;
    op_set_state(o, OP_QUEUED);
}

/* Takes `o` out of its session and out of the queue, and frees it. Its
 * waiters must be gone. A remote session left empty stays until the next
 * sweep (sessions_sweep): callers may be walking it. */
static void op_free(mk_group *g, mk__op *o)
{
    mk__sess *s = o->sess;
    if (o->state == OP_QUEUED)
        queue_remove(g, o);
    /* Any state but IDLE: keeps the session's count and first waiting
     * one right as it goes. */
    op_set_state(o, OP_PROPOSED);
    if (!s->local) {
        g->remote_ops--;
        g->remote_bytes -= o->len;
    }
    if (o->sprev)
        o->sprev->next = o->next;
    else
        s->ops = o->next;
    if (o->next)
        o->next->sprev = o->sprev;
    else
        s->tail = o->sprev;
    free(o->cmd);
    free(o);
}

/* Frees the remote sessions that have no command left. */
static void sessions_sweep(mk_group *g)
{
    for (mk__sess **pp = &g->sessions; *pp;) {
        mk__sess *s = *pp;
        if (!s->ops && !s->local) {
            *pp = s->next;
            free(s);
        } else {
            pp = &s->next;
        }
    }
}

/* Answers every waiter of `o` and frees it. */
static void op_complete(mk_group *g, mk__op *o, int status, uint64_t applied,
                        const uint8_t *res, size_t len)
{
    mk__waiter *w = o->waiters;
    o->waiters = NULL;
    uint8_t session[MK__SESSION_LEN];
    memcpy(session, o->sess->id, MK__SESSION_LEN);
    uint64_t seq = o->seq;
    op_free(g, o);
    while (w) {
        mk__waiter *next = w->next;
        waiter_finish(g, w, MK__OP_EXEC, session, seq, status, applied, res,
                      len);
        free(w);
        w = next;
    }
}

static uint32_t next_backoff(uint32_t b)
{
    if (b < BACKOFF_MIN_MS)
        return BACKOFF_MIN_MS;
    return b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b * 2;
}

/* `o` failed where it was: route it and every later command of its
 * session again, in order (after a backoff unless `fast`). */
static void retry_from(mk_group *g, mk__op *o, bool fast)
{
    int64_t now = mk_mono_ms();
    for (mk__op *x = o; x; x = x->next) {
        if (x->state == OP_QUEUED)
            queue_remove(g, x);
        if (x->state != OP_IDLE || x == o) {
            op_set_state(x, OP_IDLE);
            x->fwd = NULL;
            if (!fast)
                x->backoff = next_backoff(x->backoff);
            x->not_before = fast ? now : now + x->backoff;
        }
    }
}

static int64_t op_deadline(const mk__op *o)
{
    int64_t d = 0;
    for (const mk__waiter *w = o->waiters; w; w = w->next)
        if (w->deadline > d)
            d = w->deadline;
    return d;
}

/* Membership (below): the roles Raft's configuration gives members. */
static bool starts_as_voter(const mk_group *g, size_t i);
static int role_of(const mk_group *g, raft_id id);
static size_t count_voters(const mk_group *g);
static void serve_assign(mk_group *g, mk__srv *s, const mk__req *q);

static bool leader_now(mk_group *g)
{
    return g->raft_started && raft_state(&g->raft) == RAFT_LEADER;
}

bool mk__group_leading(mk_group *g)
{
    return leader_now(g);
}

/* The current leader when it is another voter, else NULL. */
static const mk__voter *other_leader(mk_group *g)
{
    if (!g->raft_started)
        return NULL;
    raft_id id;
    const char *addr;
    raft_leader(&g->raft, &id, &addr);
    if (id == 0 || id == g->voters[g->self].id)
        return NULL;
    return mk__group_voter_by_id(g, id);
}

/* ---- forwarding to the leader -------------------------------------------- */

static void fwd_reply(void *data, mk__rpc *c, const mk__resp *r);
static void fwd_down(void *data, mk__rpc *c);

static mk__fwd *fwd_get(mk_group *g, const mk_peer_id *peer)
{
    for (mk__fwd *f = g->fwds; f; f = f->next)
        if (mk_id_eq(mk__rpc_peer(f->rpc), peer))
            return f;
    mk__fwd *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    mk__rpc_events ev = {NULL, fwd_reply, fwd_down, g};
    f->rpc = mk__rpc_open(g->node, &g->id, peer, &ev);
    if (!f->rpc) {
        free(f);
        return NULL;
    }
    f->next = g->fwds;
    g->fwds = f;
    return f;
}

static mk__fwd *fwd_of_rpc(mk_group *g, mk__rpc *c)
{
    for (mk__fwd *f = g->fwds; f; f = f->next)
        if (f->rpc == c)
            return f;
    return NULL;
}

static int forward(mk_group *g, mk__fwd *f, mk__req *req)
{
    mk_buf b;
    mk_buf_init(&b);
    req->id = ++g->next_req_id;
    mk__req_encode(&b, req);
    int rc = b.err ? b.err : mk__rpc_send(f->rpc, b.data, b.len);
    mk_buf_free(&b);
    return rc;
}

/* A waiter with this deadline was added (expire_waiters). */
static void note_deadline(mk_group *g, int64_t deadline)
{
    if (g->expire_at && deadline < g->expire_at)
        g->expire_at = deadline;
}

static uint32_t remaining_ms(int64_t deadline)
{
    int64_t left = deadline - mk_mono_ms();
    if (left < 1)
        return 1;
    return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}

static uint64_t sess_ack(mk__sess *s, const mk__op *o)
{
    /* Local session: every seq below the lowest still pending has its
     * outcome here (answered or given up). Remote: what it told us. */
    if (s->local)
        return s->ops->seq - 1;
    return o->ack;
}

enum { ROUTED, HELD, ANSWERED };

/* On the leader: whether `o` may be proposed now. A command is proposed
 * only when it is the next its session needs, or when the one before it
 * is already on its way into this term's log (queued, or proposed in this
 * term), so the log never holds a session's commands out of order: a gap
 * would make the adapter refuse it and everything after it, and every one
 * of those would be proposed again. One that is already applied (or given
 * up) is answered from the adapter's table and never proposed twice. */
static int leader_take(mk_group *g, mk__op *o, const mk__op *prev)
{
    const mk__gresult *res;
    int next = mk__gfsm_next(&g->gfsm, o->sess->id, o->seq,
                             sess_ack(o->sess, o), &res);
    if (next < 0) {
        int status = MK_ESTALE;
        uint64_t applied = 0;
        const uint8_t *data = NULL;
        size_t len = 0;
        if (res)
            mk__gresult_get(res, &status, &applied, &data, &len);
        op_complete(g, o, status, applied, data, len);
        return ANSWERED;
    }
    if (next == 0 &&
        !(prev && prev->seq + 1 == o->seq &&
          (prev->state == OP_QUEUED ||
           (prev->state == OP_PROPOSED &&
            prev->term == g->raft.current_term))))
        return HELD;
    queue_push(g, o);
    schedule_flush(g);
    return ROUTED;
}

/* Routes one IDLE command (`prev` is the one before it in its session, or
 * NULL). HELD leaves it IDLE; ANSWERED freed it. */
static int route(mk_group *g, mk__op *o, const mk__op *prev)
{
    if (g->closing || g->gfsm.fatal)
        return HELD;
    if (leader_now(g))
        return leader_take(g, o, prev);
    const mk__voter *v = other_leader(g);
    if (!v)
        return HELD;
    mk__fwd *f = fwd_get(g, &v->peer);
    if (!f)
        goto backoff;
    mk__req req = {.op = MK__OP_EXEC,
                   .timeout_ms = remaining_ms(op_deadline(o)),
                   .seq = o->seq,
                   .ack = sess_ack(o->sess, o),
                   .body = o->cmd,
                   .len = o->len};
    memcpy(req.session, o->sess->id, MK__SESSION_LEN);
    if (forward(g, f, &req) != 0)
        goto backoff;
    op_set_state(o, OP_FORWARDED);
    o->fwd = f;
    o->fwd_req = req.id;
    return ROUTED;
backoff:
    o->backoff = next_backoff(o->backoff);
    o->not_before = mk_mono_ms() + o->backoff;
    return HELD;
}

static void route_session(mk_group *g, mk__sess *s)
{
    int64_t now = mk_mono_ms();
    if (!s->first_idle)
        return;
    const mk__op *prev = s->first_idle->sprev;
    for (mk__op *o = s->first_idle, *next; o && s->idle; o = next) {
        next = o->next;
        if (o->state != OP_IDLE) {
            prev = o;
            continue;
        }
        /* Later commands wait for this one: order is what matters. */
        if (o->not_before > now)
            return;
        int r = route(g, o, prev);
        if (r == HELD)
            return;
        if (r == ROUTED)
            prev = o;
    }
}

static void route_idle(mk_group *g)
{
    for (mk__sess *s = g->sessions; s; s = s->next)
        route_session(g, s);
    int64_t now = mk_mono_ms();
    for (mk__qop *q = g->qops; q; q = q->next)
        if (q->state == Q_IDLE && q->not_before <= now)
            route_q(g, q);
}

/* ---- strong queries ------------------------------------------------------ */

static void qop_complete(mk_group *g, mk__qop *q, int status,
                         uint64_t applied, const uint8_t *res, size_t len)
{
    for (mk__qop **pp = &g->qops; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    waiter_finish(g, &q->w, MK__OP_QUERY, NULL, 0, status, applied, res,
                  len);
    free(q->q);
    free(q);
}

/* Answers a query from this member's state. */
static void answer_query(mk_group *g, const uint8_t *q, size_t len,
                         mk__waiter *w)
{
    mk_buf r;
    mk_buf_init(&r);
    int rc = MK_EUNSUPPORTED;
    if (g->fsm->query) {
        rc = g->fsm->query(g->fsm, q, len, &r);
        if (rc == 0 && r.err)
            rc = r.err;
        if (rc > 0)
            rc = MK_EIO;
    }
    waiter_finish(g, w, MK__OP_QUERY, NULL, 0, rc, g->gfsm.applied,
                  rc == 0 ? r.data : NULL, rc == 0 ? r.len : 0);
    mk_buf_free(&r);
}

static void route_q(mk_group *g, mk__qop *q)
{
    if (g->closing)
        return;
    if (leader_now(g)) {
        q->state = Q_WAIT;
        schedule_flush(g);
        return;
    }
    const mk__voter *v = other_leader(g);
    if (!v)
        return;
    mk__fwd *f = fwd_get(g, &v->peer);
    mk__req req = {.op = MK__OP_QUERY, .level = MK_STRONG,
                   .timeout_ms = remaining_ms(q->w.deadline), .body = q->q,
                   .len = q->len};
    if (!f || forward(g, f, &req) != 0) {
        q->backoff = next_backoff(q->backoff);
        q->not_before = mk_mono_ms() + q->backoff;
        return;
    }
    q->state = Q_FORWARDED;
    q->fwd = f;
    q->fwd_req = req.id;
}

static void qop_retry(mk__qop *q, bool fast)
{
    q->state = Q_IDLE;
    q->fwd = NULL;
    if (!fast)
        q->backoff = next_backoff(q->backoff);
    q->not_before = mk_mono_ms() + (fast ? 0 : q->backoff);
}

static void on_barrier(struct raft_barrier *req, int status)
{
    mk_group *g = req->data;
    uint64_t gen = g->barrier_gen;
    g->barrier_busy = false;
    if (g->closing)
        return;
    for (mk__qop *q = g->qops, *next; q; q = next) {
        next = q->next;
        if (q->state != Q_BARRIER || q->gen != gen)
            continue;
        if (status == 0) {
            mk__waiter w = q->w;
            q->w.cb = NULL;
            q->w.srv = NULL;
            answer_query(g, q->q, q->len, &w);
            qop_complete(g, q, 0, 0, NULL, 0);
        } else {
            qop_retry(q, true);
        }
    }
    route_idle(g);
    schedule_flush(g);
}

/* ---- proposing (the leader) ---------------------------------------------- */

static void on_batch_applied(struct raft_apply *req, int status, void *result)
{
    batch *bt = req->data;
    mk_group *g = bt->g;
    (void)result;
    g->inflight_bytes -= bt->bytes;
    if (status != 0 && !g->closing) {
        /* None of the batch is known to be committed: retry them (the
         * adapter answers any that was, after all, from its table). */
        for (size_t i = 0; i < bt->n; i++) {
            mk__sess *s = sess_find(g, bt->keys[i].session);
            mk__op *o = s ? op_find(s, bt->keys[i].seq) : NULL;
            if (o && o->state == OP_PROPOSED)
                retry_from(g, o, true); /* and the rest of its session */
        }
        route_idle(g);
    }
    if (g->queued && !g->closing)
        schedule_flush(g); /* room again */
    free(bt);
}

/* How many queued commands, from `o` on, go into one entry. */
static size_t entry_span(const mk__op *o, size_t *bytes)
{
    size_t n = 0, b = 0;
    for (; o && n < MK__BATCH_MAX; o = o->qnext) {
        size_t sz = mk__env_size(o->len);
        if (n > 0 && MK__BATCH_HDR + b + sz > ENTRY_MAX_BYTES)
            break;
        b += sz;
        n++;
    }
    *bytes = n > 1 ? MK__BATCH_HDR + b : b;
    return n;
}

/* Writes the `n` queued commands from `o` on as one entry of `bytes`:
 * a plain envelope for one, a batch for more. */
static void entry_write(mk_group *g, const mk__op *o, size_t n,
                        uint8_t *out, batch *bt)
{
    size_t at = 0;
    if (n > 1) {
        mk__batch_header_write(out, (uint32_t)n);
        at = MK__BATCH_HDR;
    }
    for (size_t i = 0; i < n; i++, o = o->qnext) {
        mk__envelope e = {.seq = o->seq, .ack = sess_ack(o->sess, o),
                          .cmd = o->cmd, .len = o->len};
        memcpy(e.session, o->sess->id, MK__SESSION_LEN);
        mk__env_write(out + at, &e);
        at += mk__env_size(o->len);
        memcpy(bt->keys[bt->n].session, e.session, MK__SESSION_LEN);
        bt->keys[bt->n].seq = o->seq;
        bt->n++;
    }
    (void)g;
}

/* Group commit: everything queued since the last pass goes into as few
 * entries as fit, proposed with one raft_apply, so one append and one
 * fsync carry them all. The window bounds entries and bytes between append
 * and apply (hazard 3). */
static void propose_batch(mk_group *g)
{
    raft_index in_flight = raft_last_index(&g->raft) -
                           raft_last_applied(&g->raft);
    size_t room = in_flight >= g->params.max_in_flight
                      ? 0
                      : g->params.max_in_flight - (size_t)in_flight;
    if (room == 0 || g->queued == 0 ||
        g->inflight_bytes >= MAX_INFLIGHT_BYTES)
        return;
    size_t n_entries = 0, n_ops = 0, total = 0;
    for (const mk__op *o = g->queue_head; o && n_entries < room &&
                                          total < MAX_INFLIGHT_BYTES;) {
        size_t bytes, n = entry_span(o, &bytes);
        n_entries++;
        n_ops += n;
        total += bytes;
        while (n--)
            o = o->qnext;
    }
    batch *bt = malloc(sizeof *bt + n_ops * sizeof bt->keys[0]);
    struct raft_buffer *bufs = calloc(n_entries, sizeof *bufs);
    size_t built = 0;
    if (!bt || !bufs)
        goto fail;
    bt->n = 0;
    const mk__op *o = g->queue_head;
    for (; built < n_entries; built++) {
        size_t bytes, n = entry_span(o, &bytes);
        bufs[built].len = bytes;
        bufs[built].base = raft_malloc(bytes);
        if (!bufs[built].base)
            goto fail;
        entry_write(g, o, n, bufs[built].base, bt);
        while (n--)
            o = o->qnext;
    }
    bt->g = g;
    bt->bytes = total;
    bt->req.data = bt;
    int rc = raft_apply(&g->raft, &bt->req, bufs, (unsigned)n_entries,
                        on_batch_applied);
    if (rc != 0) {
        snprintf(g->errmsg, sizeof g->errmsg, "raft_apply: %s",
                 raft_errmsg(&g->raft));
        /* libraft 0.15 owns the buffers once they are in its log: a
         * failure after the append (the disk write could not start)
         * discards the entries and frees them itself. Only NOT_LEADER is
         * known to come before; after an ambiguous NOMEM we would rather
         * leak than free twice. */
        if (rc != RAFT_NOTLEADER)
            built = 0;
        goto fail;
    }
    free(bufs);
    g->inflight_bytes += total;
    g->entries_proposed += n_entries;
    g->commands_proposed += n_ops;
    raft_term term = g->raft.current_term;
    for (size_t i = 0; i < n_ops; i++) {
        mk__op *x = g->queue_head;
        queue_remove(g, x);
        op_set_state(x, OP_PROPOSED);
        x->term = term;
    }
    return;
fail:
    if (bufs)
        for (size_t i = 0; i < built; i++)
            raft_free(bufs[i].base);
    free(bufs);
    free(bt);
    /* Back to routing after a pause: leadership may have just gone. */
    while (g->queue_head)
        retry_from(g, g->queue_head, false);
}

static void issue_barrier(mk_group *g)
{
    if (g->barrier_busy)
        return;
    bool any = false;
    for (mk__qop *q = g->qops; q; q = q->next)
        any |= q->state == Q_WAIT;
    if (!any)
        return;
    g->barrier.data = g;
    if (raft_barrier(&g->raft, &g->barrier, on_barrier) != 0) {
        for (mk__qop *q = g->qops; q; q = q->next)
            if (q->state == Q_WAIT)
                qop_retry(q, false);
        return;
    }
    g->barrier_busy = true;
    g->barrier_gen++;
    for (mk__qop *q = g->qops; q; q = q->next)
        if (q->state == Q_WAIT) {
            q->state = Q_BARRIER;
            q->gen = g->barrier_gen;
        }
}

static void on_prepare(uv_prepare_t *h)
{
    mk_group *g = h->data;
    uv_prepare_stop(h);
    if (g->closing)
        return;
    door_drain(g);
    if (!leader_now(g)) {
        while (g->queue_head)
            retry_from(g, g->queue_head, true);
        for (mk__qop *q = g->qops; q; q = q->next)
            if (q->state == Q_WAIT)
                qop_retry(q, true);
        route_idle(g);
        return;
    }
    if (g->queued)
        propose_batch(g);
    issue_barrier(g);
}

static void schedule_flush(mk_group *g)
{
    if (!g->closing)
        uv_prepare_start(&g->prepare, on_prepare);
}

/* ---- what the state machine applied --------------------------------------- */

static void on_applied(void *data, const mk__apply_event *ev)
{
    mk_group *g = data;
    if (ev->kind == MK__APPLY_NEW && ev->status == 0)
        mk__feed_push(&g->feed, ev->applied, ev->cmd, ev->cmd_len);
    if (g->queued)
        schedule_flush(g); /* the window has room again */
    if (ev->kind == MK__APPLY_BAD)
        return;
    mk__sess *s = sess_find(g, ev->session);
    mk__op *o = s ? op_find(s, ev->seq) : NULL;
    if (!o)
        return;
    switch (ev->kind) {
    case MK__APPLY_NEW:
    case MK__APPLY_DUP:
        op_complete(g, o, ev->status, ev->applied, ev->result,
                    ev->result_len);
        break;
    case MK__APPLY_STALE:
        op_complete(g, o, MK_ESTALE, 0, NULL, 0);
        break;
    case MK__APPLY_GAP:
        if (o->state != OP_PROPOSED)
            break; /* someone else's proposal: its proposer handles it */
        /* Requesters resend in order themselves; our own wait for the
         * predecessor and go again. */
        for (mk__waiter **pp = &o->waiters; *pp;) {
            mk__waiter *w = *pp;
            if (w->srv) {
                *pp = w->next;
                waiter_finish(g, w, MK__OP_EXEC, o->sess->id, o->seq,
                              MK_EAGAIN, 0, NULL, 0);
                free(w);
            } else {
                pp = &w->next;
            }
        }
        if (!o->waiters)
            op_free(g, o);
        else
            retry_from(g, o, false);
        break;
    default:
        break;
    }
}

static void on_restored(void *data)
{
    mk_group *g = data;
    mk__feed_reset(&g->feed);
}

/* ---- forwarded answers ----------------------------------------------------- */

static void fwd_reply(void *data, mk__rpc *c, const mk__resp *r)
{
    mk_group *g = data;
    if (g->closing)
        return;
    if (r->op == MK__OP_EXEC) {
        mk__sess *s = sess_find(g, r->session);
        mk__op *o = s ? op_find(s, r->seq) : NULL;
        if (!o)
            return;
        if (!mk__status_retryable(r->status)) {
            op_complete(g, o, r->status, r->applied, r->body, r->len);
            return;
        }
        /* A failure of an earlier attempt says nothing about this one. */
        if (o->state != OP_FORWARDED || o->fwd_req != r->id)
            return;
        /* Only this one goes again: those forwarded after it wait at the
         * leader for it (leader_take), and sending them again would only
         * add copies. */
        op_set_state(o, OP_IDLE);
        o->fwd = NULL;
        if (r->status != MK_EAGAIN)
            o->backoff = next_backoff(o->backoff);
        o->not_before = mk_mono_ms() + (r->status == MK_EAGAIN ? 0 : o->backoff);
        route_idle(g);
        return;
    }
    for (mk__qop *q = g->qops; q; q = q->next) {
        if (q->state != Q_FORWARDED || q->fwd_req != r->id ||
            q->fwd != fwd_of_rpc(g, c))
            continue;
        if (mk__status_retryable(r->status))
            qop_retry(q, false);
        else
            qop_complete(g, q, r->status, r->applied, r->body, r->len);
        return;
    }
}

static void fwd_down(void *data, mk__rpc *c)
{
    mk_group *g = data;
    mk__fwd *f = fwd_of_rpc(g, c);
    if (!f)
        return;
    for (mk__fwd **pp = &g->fwds; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    for (mk__sess *s = g->sessions; s; s = s->next)
        for (mk__op *o = s->ops; o; o = o->next)
            if (o->state == OP_FORWARDED && o->fwd == f) {
                retry_from(g, o, false);
                break;
            }
    for (mk__qop *q = g->qops; q; q = q->next)
        if (q->state == Q_FORWARDED && q->fwd == f)
            qop_retry(q, false);
    free(f);
    /* Routed again from the tick, after the backoff. */
}

/* ---- serving requesters ------------------------------------------------- */

static mk__waiter *waiter_remote(mk__srv *s, uint64_t req_id,
                                 uint32_t timeout_ms)
{
    mk__waiter *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (timeout_ms == 0)
        timeout_ms = DEFAULT_TIMEOUT_MS;
    if (timeout_ms > MAX_REMOTE_TIMEOUT_MS)
        timeout_ms = MAX_REMOTE_TIMEOUT_MS;
    w->deadline = mk_mono_ms() + timeout_ms;
    note_deadline(s->g, w->deadline);
    w->since_us = mk__group_metrics_clock(s->g);
    w->srv = s;
    w->req_id = req_id;
    s->refs++;
    return w;
}

static mk__sess *sess_get(mk_group *g, const uint8_t *id)
{
    mk__sess *s = sess_find(g, id);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    memcpy(s->id, id, MK__SESSION_LEN);
    s->next = g->sessions;
    g->sessions = s;
    return s;
}

/* Inserts a new command into its session in seq order. */
static mk__op *op_new(mk__sess *s, uint64_t seq, uint64_t ack,
                      const void *cmd, size_t len)
{
    mk__op *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->cmd = malloc(len ? len : 1);
    if (!o->cmd) {
        free(o);
        return NULL;
    }
    if (len)
        memcpy(o->cmd, cmd, len);
    o->len = len;
    o->seq = seq;
    o->ack = ack;
    o->sess = s;
    o->state = OP_FORWARDED; /* op_set_state below counts it as IDLE */
    /* Commands arrive in order almost always: append without a walk. */
    if (!s->tail || s->tail->seq < seq) {
        o->sprev = s->tail;
        if (s->tail)
            s->tail->next = o;
        else
            s->ops = o;
        s->tail = o;
    } else {
        mk__op *at = s->ops;
        while (at->seq < seq)
            at = at->next; /* stops before the tail at the latest */
        o->next = at;
        o->sprev = at->sprev;
        if (at->sprev)
            at->sprev->next = o;
        else
            s->ops = o;
        at->sprev = o;
    }
    op_set_state(o, OP_IDLE);
    return o;
}

static void srv_answer(mk__srv *s, const mk__req *q, int status,
                       uint64_t applied, const uint8_t *res, size_t len)
{
    mk__resp r = {.id = q->id, .op = q->op, .status = status,
                  .applied = applied, .seq = q->seq, .body = res,
                  .len = len};
    memcpy(r.session, q->session, MK__SESSION_LEN);
    srv_send(s, &r);
}

static void sess_gc(mk_group *g, mk__sess *s)
{
    if (!s || s->ops || s->local)
        return;
    for (mk__sess **pp = &g->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    free(s);
}

/* Whether a command may enter at all: what can be refused without the
 * log is refused here, before it costs every member a write. */
static int door(mk_group *g, const uint8_t *cmd, size_t len, bool trusted)
{
    if (len > g->params.max_command_bytes)
        return MK_EMSGSIZE;
    if (!trusted && g->fsm->admit) {
        int rc = g->fsm->admit(g->fsm, cmd, len);
        if (rc != 0)
            return rc < 0 ? rc : MK_EINVAL;
    }
    return 0;
}

/* ---- the door, two cores wide ------------------------------------------- */

/* A requester's new command waiting for its door check. A client's window
 * arrives as a burst of requests in one read; checked one after the other
 * on the loop (a signature each, ~60 us here), a burst of 16 kept the
 * leader from proposing anything for a millisecond while the other core
 * idled. So requests that need admit() wait here until the loop's end,
 * where door_drain hands the burst to door_help newest first and checks
 * it on the loop oldest first: each check either side does lands in the
 * fsm's memo (prepare() and admit() are the same check), so the loop's
 * admit() of what the helper reached first is a lookup. Nothing is
 * proposed before the loop itself has had admit() say yes, and the
 * requests go through serve_exec in their order of arrival. */
typedef struct mk__door_wait {
    struct mk__door_wait *next;
    mk__srv *srv; /* held: refs */
    mk__req q;    /* q.body points at body */
    uint8_t body[];
} door_wait;

static void serve_exec(mk_group *g, mk__srv *s, const mk__req *q);

static bool door_defer(mk_group *g, mk__srv *s, const mk__req *q)
{
    if (!g->door_help || g->door_draining || s->voter ||
        q->len > g->params.max_command_bytes ||
        g->door_bytes + q->len > MAX_REMOTE_BYTES ||
        s->refs >= MAX_LINK_OPS)
        return false;
    door_wait *d = malloc(sizeof *d + q->len);
    if (!d)
        return false;
    d->srv = s;
    d->q = *q;
    if (q->len)
        memcpy(d->body, q->body, q->len);
    d->q.body = d->body;
    d->next = g->door_q;
    g->door_q = d;
    g->door_n++;
    g->door_bytes += q->len;
    s->refs++;
    schedule_flush(g);
    return true;
}

static void door_drain(mk_group *g)
{
    door_wait *d = g->door_q, *oldest = NULL;
    if (!d)
        return;
    bool help = g->door_n > 1;
    g->door_q = NULL;
    g->door_n = g->door_bytes = 0;
    /* Newest first to the helper, all but the oldest (the loop's first),
     * while the list turns around into the order of arrival. */
    while (d) {
        door_wait *next = d->next;
        if (help && next)
            mk__prep_push_cmd(g->door_help, d->q.body, d->q.len);
        d->next = oldest;
        oldest = d;
        d = next;
    }
    g->door_draining = true;
    for (d = oldest; d; d = oldest) {
        oldest = d->next;
        mk__srv *s = d->srv;
        s->refs--; /* before serve_exec, which counts its own */
        if (s->g == g && !g->closing)
            serve_exec(g, s, &d->q);
        srv_maybe_free(s);
        free(d);
    }
    g->door_draining = false;
    if (help)
        mk__prep_drop(g->door_help); /* what it has not begun, we did */
}

static void door_forget(mk_group *g)
{
    while (g->door_q) {
        door_wait *d = g->door_q;
        g->door_q = d->next;
        d->srv->refs--;
        srv_maybe_free(d->srv);
        free(d);
    }
    g->door_n = g->door_bytes = 0;
}

static void serve_exec(mk_group *g, mk__srv *s, const mk__req *q)
{
    mk__sess *sess = sess_get(g, q->session);
    mk__op *o = sess ? op_find(sess, q->seq) : NULL;
    bool fresh = false;
    if (sess && sess->local) {
        /* Our own session id from someone else: refuse, never mix. */
        srv_answer(s, q, MK_EINVAL, 0, NULL, 0);
        return;
    }
    if (sess && !o) {
        if (door_defer(g, s, q)) {
            sess_gc(g, sess);
            return;
        }
        /* A voter forwarding has checked at its own door already. */
        int rc = door(g, q->body, q->len, s->voter);
        if (rc != 0) {
            sess_gc(g, sess);
            srv_answer(s, q, rc, 0, NULL, 0);
            return;
        }
        /* Full: refuse with EBUSY (the requester backs off), except the
         * command its session needs next, which alone can release the
         * ones held behind it (leader_take): a cap filled with held
         * successors must not lock their predecessors out. */
        const mk__gresult *res;
        bool head = mk__gfsm_next(&g->gfsm, q->session, q->seq, q->ack,
                                  &res) > 0;
        if (!head && (g->remote_ops >= MAX_REMOTE_OPS ||
                      g->remote_bytes + q->len > MAX_REMOTE_BYTES ||
                      s->refs >= MAX_LINK_OPS)) {
            sess_gc(g, sess);
            srv_answer(s, q, MK_EBUSY, 0, NULL, 0);
            return;
        }
        o = op_new(sess, q->seq, q->ack, q->body, q->len);
        fresh = o != NULL;
        if (fresh) {
            g->remote_ops++;
            g->remote_bytes += q->len;
        }
    }
    mk__waiter *w = o ? waiter_remote(s, q->id, q->timeout_ms) : NULL;
    if (!w) {
        if (fresh)
            op_free(g, o);
        sess_gc(g, sess);
        srv_answer(s, q, MK_ENOMEM, 0, NULL, 0);
        return;
    }
    bool settled = q->ack > o->ack; /* may release it (leader_take) */
    if (settled)
        o->ack = q->ack;
    w->next = o->waiters;
    o->waiters = w;
    if (fresh || (settled && o->state == OP_IDLE))
        route_session(g, sess); /* from its first waiting: no walk */
}

static void serve_query(mk_group *g, mk__srv *s, const mk__req *q)
{
    if (q->level == MK_WEAK) {
        mk__waiter w = {.srv = s, .req_id = q->id};
        s->refs++;
        answer_query(g, q->body, q->len, &w);
        return;
    }
    mk__qop *qo = calloc(1, sizeof *qo);
    mk__waiter *w = waiter_remote(s, q->id, q->timeout_ms);
    uint8_t *copy = malloc(q->len ? q->len : 1);
    if (!qo || !w || !copy) {
        free(qo);
        free(copy);
        if (w) {
            s->refs--;
            free(w);
        }
        srv_answer(s, q, MK_ENOMEM, 0, NULL, 0);
        return;
    }
    if (q->len)
        memcpy(copy, q->body, q->len);
    qo->q = copy;
    qo->len = q->len;
    qo->w = *w;
    free(w);
    qo->next = g->qops;
    g->qops = qo;
    route_q(g, qo);
}

static mk_member_role member_role(mk_group *g)
{
    if (!g->raft_started)
        return MK_MEMBER_UNAVAILABLE;
    switch (raft_state(&g->raft)) {
    case RAFT_FOLLOWER: return MK_MEMBER_FOLLOWER;
    case RAFT_CANDIDATE: return MK_MEMBER_CANDIDATE;
    case RAFT_LEADER: return MK_MEMBER_LEADER;
    default: return MK_MEMBER_UNAVAILABLE;
    }
}

static void member_status(mk_group *g, bool hash, mk_member_status *ms)
{
    memset(ms, 0, sizeof *ms);
    ms->self = g->voters[g->self].peer;
    mk_group_status_get(g, &ms->st);
    ms->role = member_role(g);
    /* The voters as of now (st.n_voters of them), in listing order. */
    size_t n = 0;
    for (size_t i = 0; i < g->n_voters && n < 64; i++) {
        bool votes = g->raft_started && !g->raft_closed
                         ? role_of(g, g->voters[i].id) == RAFT_VOTER
                         : starts_as_voter(g, i);
        if (votes)
            ms->voters[n++] = g->voters[i].peer;
    }
    ms->st.n_voters = n;
    if (hash && mk__fsm_state_hash(g->fsm, g->gfsm.applied, &ms->hash) == 0)
        ms->has_hash = true;
    ms->entries_proposed = g->entries_proposed;
    ms->commands_proposed = g->commands_proposed;
}

static void serve_status(mk_group *g, mk__srv *s, const mk__req *q)
{
    mk_member_status ms;
    member_status(g, q->flags & MK__STATUS_WANT_HASH, &ms);
    mk_buf b;
    mk_buf_init(&b);
    mk__status_encode(&b, &ms);
    srv_answer(s, q, b.err, ms.st.applied, b.data, b.len);
    mk_buf_free(&b);
}

static void on_srv_frame(mk_link *link, const uint8_t *f, size_t len,
                         void *data)
{
    mk__srv *s = data;
    mk_group *g = s->g;
    if (!g || g->closing)
        return;
    mk__req q;
    if (mk__req_decode(f, len, &q) != 0) {
        mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION, "bad request");
        return;
    }
    switch (q.op) {
    case MK__OP_EXEC:
        serve_exec(g, s, &q);
        break;
    case MK__OP_QUERY:
        serve_query(g, s, &q);
        break;
    case MK__OP_ASSIGN:
        serve_assign(g, s, &q);
        break;
    default:
        serve_status(g, s, &q);
    }
}

static void srv_detach(mk__srv *s)
{
    mk_group *g = s->g;
    if (!g)
        return;
    if (g->assign_srv == s)
        g->assign_srv = NULL; /* the change goes on; no one to tell */
    if (s->bonded) {
        mk__group_bond_remove(g, &s->bond);
        s->bonded = false;
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        g->srvs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->g = NULL;
}

static void on_srv_close(mk_link *link, uint32_t code, int status,
                         void *data)
{
    mk__srv *s = data;
    s->link = NULL;
    srv_detach(s);
    srv_maybe_free(s);
}

void mk__group_accept_rpc(mk_group *g, mk_link *link)
{
    mk__srv *s = calloc(1, sizeof *s);
    if (!s) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    s->g = g;
    s->link = link;
    s->next = g->srvs;
    if (g->srvs)
        g->srvs->prev = s;
    g->srvs = s;
    s->bond.link = link;
    s->bond.peer = *mk_link_peer(link);
    s->voter = mk__group_voter(g, &s->bond.peer, NULL);
    mk__group_admit(g, &s->bond.peer, false, &s->bond.expires_ms, NULL);
    mk__group_bond_add(g, &s->bond);
    s->bonded = true;
    mk_link_set_callbacks(link, on_srv_frame, on_srv_close, s);
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__G_WELCOME);
    mk__proof_encode(&b, &g->proof);
    if (b.err || mk_link_send(link, b.data, b.len) != 0)
        mk_link_close(link, MK_CLOSE_CANCELLED, NULL);
    mk_buf_free(&b);
}

/* ---- watching the group's state ----------------------------------------- */

void mk_group_status_get(const mk_group *cg, mk_group_status *out)
{
    mk_group *g = (mk_group *)cg; /* libraft's getters take non-const */
    memset(out, 0, sizeof *out);
    out->n_members = g->n_seeds;
    out->applied = g->gfsm.applied;
    out->storage_failed = g->disk != DISK_OK;
    if (!g->raft_started || g->raft_closed) {
        /* Not running Raft: the roles it would start with. */
        for (size_t i = 0; i < g->n_seeds; i++)
            out->n_voters += starts_as_voter(g, i);
        out->is_voter = starts_as_voter(g, g->self);
        return;
    }
    out->n_voters = count_voters(g);
    out->is_voter = role_of(g, g->voters[g->self].id) == RAFT_VOTER;
    if (g->tickets)
        out->n_members = mk__members_in_config(g);
    int state = raft_state(&g->raft);
    raft_id id;
    const char *addr;
    raft_leader(&g->raft, &id, &addr);
    const mk__voter *v = id ? mk__group_voter_by_id(g, id) : NULL;
    out->term = g->raft.current_term;
    out->commit_index = g->raft.commit_index;
    out->applied_index = raft_last_applied(&g->raft);
    out->is_leader = state == RAFT_LEADER;
    out->has_leader = v != NULL;
    if (v)
        out->leader = v->peer;
    out->online = v && (out->is_leader || state == RAFT_FOLLOWER);
}

int mk_group_watch(mk_group *g, mk_group_change_cb cb, void *data)
{
    mk__gwatch *w = calloc(1, sizeof *w);
    if (!w)
        return MK_ENOMEM;
    w->cb = cb;
    w->data = data;
    w->next = g->watches;
    g->watches = w;
    return 0;
}

static bool status_changed(const mk_group_status *a, const mk_group_status *b)
{
    return a->online != b->online || a->is_leader != b->is_leader ||
           a->has_leader != b->has_leader ||
           !mk_id_eq(&a->leader, &b->leader) || a->term != b->term ||
           a->applied != b->applied;
}

/* After every batch of I/O: react to leadership changes, deliver what was
 * answered, tell watchers. */
static void on_check(uv_check_t *h)
{
    mk_group *g = h->data;
    mk__group_metrics_tick(g);
    if (g->closing)
        return;
    mk_group_status st;
    mk_group_status_get(g, &st);
    raft_id lid = 0;
    const char *addr;
    if (g->raft_started)
        raft_leader(&g->raft, &lid, &addr);
    bool moved = false;
    if (st.is_leader != g->was_leader || st.term != g->seen_term) {
        /* What we proposed may be lost with our leadership (a step-down
         * need not change the term; a re-election does): retry it wherever
         * the group goes next (duplicates are answered from the table). */
        for (mk__sess *s = g->sessions; s; s = s->next)
            for (mk__op *o = s->ops; o; o = o->next)
                if ((o->state == OP_PROPOSED &&
                     (!st.is_leader || o->term != st.term)) ||
                    (!st.is_leader && o->state == OP_QUEUED)) {
                    retry_from(g, o, true);
                    break;
                }
        moved = true;
    }
    g->seen_term = st.term;
    if (lid != g->last_leader) {
        /* Forwarded to a leader that is no longer the leader. */
        for (mk__sess *s = g->sessions; s; s = s->next)
            for (mk__op *o = s->ops; o; o = o->next)
                if (o->state == OP_FORWARDED) {
                    retry_from(g, o, true);
                    break;
                }
        for (mk__qop *q = g->qops; q; q = q->next)
            if (q->state == Q_FORWARDED)
                qop_retry(q, true);
        moved = true;
    }
    g->was_leader = st.is_leader;
    g->last_leader = lid;
    if (moved || st.has_leader != g->last.has_leader)
        route_idle(g);
    if (g->gfsm.fatal && !g->errmsg[0])
        snprintf(g->errmsg, sizeof g->errmsg,
                 "state machine failed (%s): group stopped",
                 mk_strerror(g->gfsm.fatal));
    done_deliver(g);
    if (g->closing)
        return;
    mk__feed_leader(&g->feed, &st);
    if (status_changed(&st, &g->last)) {
        g->last = st;
        for (mk__gwatch *w = g->watches; w && !g->closing; w = w->next)
            w->cb(g, w->data);
    }
}

/* ---- the tick: deadlines, retries, expiries ---------------------------- */

static void expire_waiters(mk_group *g, int64_t now)
{
    if (g->expire_at && now < g->expire_at)
        return;
    int64_t next = INT64_MAX;
    for (mk__sess *s = g->sessions, *snext; s; s = snext) {
        snext = s->next;
        for (mk__op *o = s->ops, *onext; o; o = onext) {
            onext = o->next;
            for (mk__waiter **pp = &o->waiters; *pp;) {
                mk__waiter *w = *pp;
                if (w->deadline > now) {
                    if (w->deadline < next)
                        next = w->deadline;
                    pp = &w->next;
                    continue;
                }
                *pp = w->next;
                waiter_finish(g, w, MK__OP_EXEC, s->id, o->seq,
                              MK_ECONNECT_TIMEOUT, 0, NULL, 0);
                free(w);
            }
            if (!o->waiters) {
                /* Given up: if it was proposed it may still be applied
                 * (exactly once); the session's ack moves past it. */
                op_free(g, o);
            }
        }
    }
    for (mk__qop *q = g->qops, *qnext; q; q = qnext) {
        qnext = q->next;
        if (q->w.deadline <= now)
            qop_complete(g, q, MK_ECONNECT_TIMEOUT, 0, NULL, 0);
        else if (q->w.deadline < next)
            next = q->w.deadline;
    }
    g->expire_at = next;
}

/* The snapshot threshold in entries, which is all libraft takes: what
 * the params ask, or else room for LOG_PER_SNAPSHOT times the last
 * snapshot's bytes of log;
 * either way never more than LOG_MEM_TARGET of log in memory, at entries
 * of `avg` bytes, nor fewer than 16 entries. */
static uint64_t pick_log_threshold(const mk_group *g, uint64_t avg)
{
    uint64_t t = g->params.snapshot_threshold;
    if (!t) {
        uint64_t want = LOG_PER_SNAPSHOT * g->gfsm.snapshot_bytes;
        if (want < LOG_MIN_BYTES)
            want = LOG_MIN_BYTES;
        t = want / avg > AUTO_MIN_ENTRIES ? want / avg : AUTO_MIN_ENTRIES;
    }
    if (t > LOG_MEM_TARGET / avg)
        t = LOG_MEM_TARGET / avg;
    return t < 16 ? 16 : t;
}

static void set_log_threshold(mk_group *g, unsigned t)
{
    g->log_threshold = t;
    raft_set_snapshot_threshold(&g->raft, t);
    raft_set_snapshot_trailing(&g->raft, t / 2 > 128 ? 128 : (t + 1) / 2);
}

/* Follows the size entries have had over the last second, and the size
 * of a snapshot as soon as one is taken (pick_log_threshold); when idle,
 * keeps what fitted the last traffic. */
static void size_log(mk_group *g, int64_t now)
{
    if (!g->raft_started || g->raft_closed)
        return;
    if (now >= g->next_size_log) {
        g->next_size_log = now + SIZE_LOG_EVERY_MS;
        uint64_t n = g->gfsm.raft_entries - g->sized_entries;
        uint64_t bytes = g->gfsm.raft_bytes - g->sized_bytes;
        g->sized_entries = g->gfsm.raft_entries;
        g->sized_bytes = g->gfsm.raft_bytes;
        if (n > 0)
            g->sized_avg = bytes / n ? bytes / n : 1;
    } else if (g->gfsm.snapshots == g->sized_snapshots) {
        return;
    }
    g->sized_snapshots = g->gfsm.snapshots;
    uint64_t avg = g->sized_avg;
    if (!avg && g->gfsm.raft_entries)
        avg = g->gfsm.raft_bytes / g->gfsm.raft_entries;
    if (!avg)
        return; /* nothing applied yet: nothing to size by */
    uint64_t t = pick_log_threshold(g, avg);
    if (t != g->log_threshold)
        set_log_threshold(g, (unsigned)t);
}

/* ---- membership ------------------------------------------------------------ *
 *
 * The listed members are fixed by the GroupId; which of them vote is Raft's
 * configuration, which the leader changes one step at a time with
 * raft_assign: a voter it has not heard from for replace_after_ms is
 * demoted to standby once a standby it hears from can take its place, and
 * then that standby is promoted (libraft catches it up first). Demoting
 * first keeps the voters at most max_voters, and demoting a silent voter
 * takes no live one from the quorum. Nothing changes while a change is in
 * flight, while this member's storage is failing, or in the first
 * replace_after_ms of a term: a new leader has heard from no one yet. */

/* Whether listed member `i` is a voter in the bootstrap configuration:
 * the first max_voters in ascending PeerId order, so every member
 * computes the same configuration whatever order its list is in. */
static bool starts_as_voter(const mk_group *g, size_t i)
{
    size_t below = 0;
    if (i >= g->n_seeds)
        return false; /* ticket-gated: a holder joins as a standby */
    for (size_t j = 0; j < g->n_seeds; j++)
        below += memcmp(g->voters[j].peer.b, g->voters[i].peer.b,
                        MK_ID_LEN) < 0;
    return below < g->params.max_voters;
}

/* Commands on their way to this member's log: their state-free work
 * (signature checks) can start on the worker now. */
static void on_entries_written(mk__gio *io, const struct raft_entry *entries,
                               unsigned n)
{
    mk_group *g = io->data;
    for (unsigned i = 0; i < n && g->prep; i++)
        if (entries[i].type == RAFT_COMMAND)
            mk__prep_push(g->prep, entries[i].buf.base, entries[i].buf.len);
}

static void on_heard(mk__gio *io, raft_id from)
{
    mk_group *g = io->data;
    for (size_t i = 0; i < g->n_voters; i++)
        if (g->voters[i].id == from) {
            g->voters[i].heard_ms = mk_mono_ms();
            return;
        }
}

/* The role `id` has in the current configuration, or -1. */
static int role_of(const mk_group *g, raft_id id)
{
    if (!g->raft_started)
        return -1;
    const struct raft_configuration *c = &g->raft.configuration;
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return c->servers[i].role;
    return -1;
}

static size_t count_voters(const mk_group *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_voters; i++)
        n += role_of(g, g->voters[i].id) == RAFT_VOTER;
    return n;
}

static int raft_code(int rv);
static void srv_answer(mk__srv *s, const mk__req *q, int status,
                       uint64_t applied, const uint8_t *res, size_t len);

/* ---- membership notes (group_members.h) ---------------------------------- */

typedef struct note_req {
    struct raft_apply req;
    mk_group *g;
} note_req;

static void on_note_done(struct raft_apply *req, int status, void *result)
{
    note_req *n = req->data;
    (void)result;
    if (status != 0 && !n->g->closing) {
        char hex[MK_ID_HEX_LEN + 1];
        fprintf(stderr, "mosaik: group %s: a membership note was lost: %s\n",
                mk_id_hex(&n->g->id, hex), raft_strerror(status));
    }
    free(n);
}

/* The leader's word on the change that just committed, into the log. */
static void note_propose(mk_group *g)
{
    uint8_t body[MK__NOTE_LEN];
    mk__note_encode(&g->note, body);
    note_req *n = calloc(1, sizeof *n);
    struct raft_buffer buf = {.len = mk__note_entry_size(sizeof body)};
    buf.base = n ? raft_malloc(buf.len) : NULL;
    if (!buf.base) {
        free(n);
        return;
    }
    mk__note_entry_write(buf.base, body, sizeof body);
    n->g = g;
    n->req.data = n;
    int rv = raft_apply(&g->raft, &n->req, &buf, 1, on_note_done);
    if (rv != 0) {
        /* libraft 0.15 keeps the buffer only when it appended it
         * (sim.c, propose). */
        if (rv == RAFT_NOTLEADER)
            raft_free(buf.base);
        free(n);
    }
}

static void on_note(void *data, const uint8_t *body, size_t len)
{
    mk_group *g = data;
    mk_group_member_event ev;
    if (mk__note_decode(body, len, &ev) != 0 || !g->member_cb)
        return;
    g->member_cb(g, &ev, g->member_data);
}

int mk_group_watch_members(mk_group *g, mk_group_member_cb cb, void *data)
{
    g->member_cb = cb;
    g->member_data = cb ? data : NULL;
    return 0;
}

void mk__group_change_done(struct raft_change *req, int status)
{
    mk_group *g = req->data;
    g->change_busy = false;
    if (g->assign_srv) {
        srv_answer(g->assign_srv, &g->assign_req,
                   status == 0 ? 0 : raft_code(status), 0, NULL, 0);
        g->assign_srv = NULL;
    }
    if (status == 0 && !g->closing && g->note.change != 0) {
        /* Committed, and nothing else could start meanwhile: the latest
         * committed configuration is this change's entry (a promotion's
         * is appended only once libraft caught the standby up, so its
         * index is not known when the change starts). */
        g->note.index = g->raft.configuration_index;
        note_propose(g);
    }
    if (status != 0 && !g->closing) {
        char hex[MK_ID_HEX_LEN + 1];
        fprintf(stderr, "mosaik: group %s: a membership change failed: %s\n",
                mk_id_hex(&g->id, hex), raft_strerror(status));
    }
}

void mk__group_note_leader_change(mk_group *g, const mk_peer_id *member,
                                  int change)
{
    memset(&g->note, 0, sizeof g->note);
    if (!change)
        return;
    g->note.member = *member;
    g->note.change = (mk_member_change)change;
    g->note.by = g->voters[g->self].peer;
}

/* Starts moving `v` to `role` (-1: out of the configuration), on the word
 * of the operator whose ASSIGN body is `assign`, or NULL: the leader's. */
static void change_role(mk_group *g, const mk__voter *v, int role,
                        const uint8_t *assign)
{
    char hex[MK_ID_HEX_LEN + 1], peer[MK_ID_HEX_LEN + 1];
    if (!mk__members_may_change(&g->raft))
        return; /* a change still pending, or no entry of this term yet */
    g->change.data = g;
    int rv = role < 0 ? raft_remove(&g->raft, &g->change, v->id,
                                    mk__group_change_done)
                      : raft_assign(&g->raft, &g->change, v->id, role,
                                    mk__group_change_done);
    if (rv != 0)
        return; /* a change libraft is still finishing: next time */
    g->change_busy = true;
    mk_group_member_event *n = &g->note;
    memset(n, 0, sizeof *n);
    n->member = v->peer;
    n->change = role < 0               ? MK_MEMBER_REMOVED
                : role == RAFT_VOTER   ? MK_MEMBER_PROMOTED
                                       : MK_MEMBER_DEMOTED;
    n->by_operator = assign != NULL;
    if (assign) {
        memcpy(n->by.b, assign + MK_ID_LEN + 1, MK_ID_LEN);
        for (int i = 0; i < 8; i++)
            n->at_unix_ms |= (uint64_t)assign[2 * MK_ID_LEN + 1 + i]
                             << (8 * i);
        memcpy(n->sig, assign + MK__ASSIGN_LEN - MK_SIG_LEN, MK_SIG_LEN);
    } else {
        n->by = g->voters[g->self].peer;
    }
    fprintf(stderr, "mosaik: group %s: %s %s\n", mk_id_hex(&g->id, hex),
            role < 0                ? "removing standby"
            : role == RAFT_VOTER    ? "promoting standby"
                                    : "demoting voter",
            mk_id_hex(&v->peer, peer));
}

/* The listed members as the membership logic sees them. */
static size_t member_views(const mk_group *g, mk__mview v[MK__MAX_VOTERS])
{
    size_t n = g->n_voters < MK__MAX_VOTERS ? g->n_voters : MK__MAX_VOTERS;
    for (size_t i = 0; i < n; i++)
        v[i] = (mk__mview){.role = role_of(g, g->voters[i].id),
                           .heard_ms = g->voters[i].heard_ms,
                           .self = i == g->self};
    return n;
}

/* Whether an ASSIGN body is signed by a member, recently. A listed member
 * an operator removed from the configuration is no longer one. */
static bool assign_signed(const mk_group *g, const uint8_t *body)
{
    mk_peer_id signer;
    raft_id sid;
    memcpy(signer.b, body + MK_ID_LEN + 1, MK_ID_LEN);
    if (!mk__group_voter(g, &signer, &sid) || role_of(g, sid) < 0)
        return false;
    int64_t exp;
    if (g->tickets && mk__member_ticket(g, &signer, &exp, NULL) != 0)
        return false; /* ticket-gated: a member only while it holds one */
    uint64_t at = 0;
    for (int i = 0; i < 8; i++)
        at |= (uint64_t)body[2 * MK_ID_LEN + 1 + i] << (8 * i);
    int64_t skew = mk_now_ms() - (int64_t)at;
    if (skew > MK__ASSIGN_SKEW_MS || skew < -MK__ASSIGN_SKEW_MS)
        return false;
    uint8_t digest[32];
    mk__assign_digest(&g->id, body, digest);
    return mk_verify(&signer, digest, sizeof digest,
                     body + MK__ASSIGN_LEN - MK_SIG_LEN) == 0;
}

/* An operator's ASSIGN {member, voter / standby / removed}: answered when
 * the change is committed, or at once when it is refused. Only a member
 * may ask (it signs the request: the time in it bounds a replay to a
 * minute), only the leader does it, and the limits hold as for automatic
 * changes: at most max_voters voters, at least one, and the leader stays
 * a voter (move leadership first). Only a standby is removed (demote
 * first), and a removed member stays out: the member list is fixed by
 * the GroupId, so nothing adds it back. */
static void serve_assign(mk_group *g, mk__srv *s, const mk__req *q)
{
    /* Only the leader judges: a member still catching up (a ticket holder
     * just added, whose configuration lacks the signer yet) would refuse
     * a good request for good, where the client retries at the leader. */
    if (!leader_now(g)) {
        srv_answer(s, q, MK_ENOT_LEADER, 0, NULL, 0);
        return;
    }
    if (!assign_signed(g, q->body)) {
        srv_answer(s, q, MK_ENOT_ALLOWED, 0, NULL, 0);
        return;
    }
    mk_peer_id peer;
    memcpy(peer.b, q->body, MK_ID_LEN);
    raft_id id;
    if (!mk__group_voter(g, &peer, &id)) {
        srv_answer(s, q, MK_EINVAL, 0, NULL, 0);
        return;
    }
    uint8_t want = q->body[MK_ID_LEN];
    int role = want == 2 ? -1 : want ? RAFT_VOTER : RAFT_STANDBY;
    mk__mview v[MK__MAX_VOTERS];
    size_t n = member_views(g, v);
    size_t i = 0;
    while (i < n && g->voters[i].id != id)
        i++;
    int rc = mk__members_assign_check(v, n, i, role, g->params.max_voters);
    if (rc != 0) {
        srv_answer(s, q, rc > 0 ? 0 : rc, 0, NULL, 0);
        return;
    }
    if (g->change_busy) {
        srv_answer(s, q, MK_EBUSY, 0, NULL, 0);
        return;
    }
    change_role(g, &g->voters[i], role, q->body);
    if (!g->change_busy) {
        srv_answer(s, q, MK_EBUSY, 0, NULL, 0);
        return;
    }
    g->assign_srv = s;
    g->assign_req = *q;
    g->assign_req.body = NULL;
    g->assign_req.len = 0;
}

static void membership_check(mk_group *g, int64_t now)
{
    if (!leader_now(g)) {
        memset(&g->mstate, 0, sizeof g->mstate);
        return;
    }
    if (!g->mstate.leading_since)
        g->mstate.leading_since = now;
    if (g->change_busy || g->disk != DISK_OK)
        return;
    /* Ticket-gated members first: a ticket that ended matters most. */
    if (mk__members_check(g, now))
        return;
    if (!mk__members_may_change(&g->raft))
        return;
    mk__mview v[MK__MAX_VOTERS];
    size_t n = member_views(g, v);
    /* Alive: heard within two election timeouts (a standby that answers
     * the leader's heartbeats). */
    mk__mparams p = {.max_voters = g->params.max_voters,
                     .replace_after_ms = g->params.replace_after_ms,
                     .alive_ms = 2 * (int64_t)g->params.election_timeout_ms};
    mk__mplan plan = mk__members_plan(&g->mstate, v, n, &p, now);
    if (plan.member < 0)
        return;
    change_role(g, &g->voters[plan.member], plan.role, NULL);
    mk__members_planned(&g->mstate, &plan, g->change_busy);
}

static void on_tick(uv_timer_t *h)
{
    mk_group *g = h->data;
    if (g->closing)
        return;
    int64_t now = mk_mono_ms();
    if (g->disk == DISK_OK && g->store)
        mk__gio_flush_mark(&g->store->gio, MARK_EVERY_MS);
    expire_waiters(g, now);
    sessions_sweep(g);
    size_log(g, now);
    route_idle(g);
    mk__feed_tick(&g->feed, now);
    mk__members_sync(g);
    membership_check(g, now);
    if (now >= g->next_bond_check) {
        g->next_bond_check = now + BOND_CHECK_MS;
        recheck_bonds(g, NULL, true);
    }
    done_deliver(g);
}

/* ---- commands and queries ------------------------------------------------- */

int mk_group_execute(mk_group *g, const void *cmd, size_t len,
                     uint32_t timeout_ms, mk_group_result_cb cb, void *data)
{
    if (g->closing)
        return MK_ECLOSED;
    int rc = door(g, cmd, len, false);
    if (rc != 0)
        return rc;
    mk__sess *s = sess_find(g, g->session);
    mk__waiter *w = calloc(1, sizeof *w);
    mk__op *o = w ? op_new(s, g->next_seq + 1, 0, cmd, len) : NULL;
    if (!o) {
        free(w);
        return MK_ENOMEM;
    }
    g->next_seq++;
    w->cb = cb;
    w->data = data;
    w->deadline = mk_mono_ms() + (timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
    note_deadline(g, w->deadline);
    w->since_us = mk__group_metrics_clock(g);
    o->waiters = w;
    route_session(g, s);
    return 0;
}

int mk_group_query(mk_group *g, const void *q, size_t len,
                   mk_consistency level, uint32_t timeout_ms,
                   mk_group_result_cb cb, void *data)
{
    if (g->closing)
        return MK_ECLOSED;
    if (len > MK__CMD_MAX)
        return MK_EMSGSIZE;
    if (level == MK_WEAK) {
        mk__waiter w = {.cb = cb, .data = data};
        answer_query(g, q, len, &w); /* delivered on the next check */
        return 0;
    }
    mk__qop *qo = calloc(1, sizeof *qo);
    uint8_t *copy = malloc(len ? len : 1);
    if (!qo || !copy) {
        free(qo);
        free(copy);
        return MK_ENOMEM;
    }
    if (len)
        memcpy(copy, q, len);
    qo->q = copy;
    qo->len = len;
    qo->w.cb = cb;
    qo->w.data = data;
    qo->w.deadline =
        mk_mono_ms() + (timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
    note_deadline(g, qo->w.deadline);
    qo->next = g->qops;
    g->qops = qo;
    route_q(g, qo);
    return 0;
}

/* ---- joining ------------------------------------------------------------ */


static int raft_code(int rv)
{
    switch (rv) {
    case RAFT_NOMEM:
        return MK_ENOMEM;
    case RAFT_NOTLEADER:
        return MK_ENOT_LEADER;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return MK_ECANCELED;
    case RAFT_NAMETOOLONG:
    case RAFT_NOTFOUND:
    case RAFT_INVALID:
    case RAFT_IOERR:
    case RAFT_CORRUPT:
    case RAFT_NOSPACE:
    case RAFT_UNAUTHORIZED:
        return MK_EIO;
    default:
        return MK_EINVAL;
    }
}

static void maybe_finish(mk_group *g)
{
    if (g->open_handles > 0 || (g->raft_inited && !g->raft_closed))
        return;
    void (*cb)(void *) = g->close_cb;
    void *data = g->close_data;
    while (g->sessions) { /* only a failed join leaves any */
        mk__sess *s = g->sessions;
        g->sessions = s->next;
        free(s);
    }
    mk__prep_stop(g->prep);
    mk__prep_stop(g->door_help);
    mk__gfsm_free(&g->gfsm);
    free(g->initial);
    free(g->data_dir);
    while (g->watches) {
        mk__gwatch *w = g->watches;
        g->watches = w->next;
        free(w);
    }
    mk_ticket_validator_free(&g->member_v);
    free(g->voters);
    free(g->validators);
    free(g);
    if (cb)
        cb(data);
}

static void on_handle_closed(uv_handle_t *h)
{
    mk_group *g = h->data;
    g->open_handles--;
    maybe_finish(g);
}

void mk__group_bridge_closed(mk_group *g)
{
    g->open_handles--;
    maybe_finish(g);
}

static void on_disk_timer(uv_timer_t *t);
static void on_storage_failed(mk__gio *io, const char *op, int rv,
                              const char *msg);

/* libraft 0.15 may fire raft_uv's close callback while a segment writer
 * is still closing (uv_append.c takes the segment off its queue before
 * closing the writer), and calls it again when the writer is done; freeing
 * raft_uv's state from the first call made that second call read freed
 * memory (a crash at shutdown, now and then, in the tests). So the store
 * is freed STORE_REAP_MS later, on a timer of its own, and gio answers
 * only the first close. */
#define STORE_REAP_MS 500

static void on_store_reaped(uv_handle_t *h)
{
    free(h->data);
}

static void on_store_reap(uv_timer_t *t)
{
    mk__store *st = t->data;
    raft_uv_close(&st->io);
    uv_close((uv_handle_t *)&st->reap, on_store_reaped);
}

static void store_reap(mk_group *g)
{
    mk__store *st = g->store;
    g->store = NULL;
    if (!st)
        return;
    uv_timer_init(g->loop, &st->reap);
    st->reap.data = st;
    uv_timer_start(&st->reap, on_store_reap, STORE_REAP_MS, 0);
}

static void on_raft_closed(struct raft *r)
{
    mk_group *g = r->data;
    bool lost = g->store && g->store->gio.lost;
    store_reap(g);
    g->raft_closed = true;
    /* libraft's close normally closed the transport (and so the bridge's
     * timer) already; if it did not, do it now. */
    if (!uv_is_closing((uv_handle_t *)&g->bridge.timer))
        mk__bridge_close_unused(&g->bridge);
    if (!g->closing && g->disk == DISK_STOPPING) {
        /* Stopped for its storage: the group lives on, probing. */
        g->disk = lost ? DISK_REFUSED : DISK_STOPPED;
        if (g->disk == DISK_STOPPED)
            uv_timer_start(&g->disk_timer, on_disk_timer, DISK_RETRY_MS, 0);
        return;
    }
    maybe_finish(g);
}

/* Frees everything that does not wait for libuv or libraft, then closes
 * the handles and libraft; maybe_finish frees the rest. */
static void teardown(mk_group *g)
{
    g->closing = true;
    uv_close((uv_handle_t *)&g->check, on_handle_closed);
    uv_close((uv_handle_t *)&g->prepare, on_handle_closed);
    uv_close((uv_handle_t *)&g->tick, on_handle_closed);
    uv_close((uv_handle_t *)&g->disk_timer, on_handle_closed);
    if (g->raft_inited && !g->raft_closed) {
        /* libraft's close closes its transport, the bridge. A close already
         * under way (storage) finishes the group when it is done. */
        if (g->disk != DISK_STOPPING) {
            g->raft.data = g;
            raft_close(&g->raft, on_raft_closed);
        }
    } else if (!g->raft_inited) {
        mk__bridge_close_unused(&g->bridge);
    }
}

/* Opens libraft on the data dir: raft_uv wrapped in gio, the bridge as
 * transport; bootstraps (a log already there keeps its own) and starts.
 * On failure `err` says why; when g->raft_inited is then set the caller
 * must raft_close, otherwise close the bridge unused. */
static int raft_open(mk_group *g, char *err)
{
    char detail[MK_ERRMSG_SIZE];
    const mk__voter *me = &g->voters[g->self];
    const mk_group_params *p = &g->params;
    g->raft_inited = g->raft_started = g->raft_closed = false;
    size_t dlen = strlen(g->data_dir) + 1;
    mk__store *st = calloc(1, sizeof *st + dlen);
    if (!st)
        return mk_errf(err, MK_ENOMEM, "out of memory");
    memcpy(st->dir, g->data_dir, dlen);
    int rv = raft_uv_init(&st->io, g->loop, st->dir, &g->bridge.t);
    if (rv != 0) {
        snprintf(detail, sizeof detail, "%s", st->io.errmsg);
        free(st);
        return mk_errf(err, raft_code(rv), "raft storage: %s", detail);
    }
    /* A corrupt segment stops the start (with libraft's message naming
     * it) instead of being renamed away with entries this member had. */
    raft_uv_set_auto_recovery(&st->io, false);
    mk__gio_init(&st->gio, &st->io, st->dir, on_storage_failed, g);
    st->gio.on_heard = on_heard;
    st->gio.on_append = on_entries_written;
    mk__bridge_attach(&g->bridge, &st->gio,
                      p->heartbeat_ms * 2 < 50 ? 50 : p->heartbeat_ms * 2);
    rv = raft_init(&g->raft, &st->gio.io, &g->gfsm.raft, me->id, me->addr);
    if (rv != 0) {
        snprintf(detail, sizeof detail, "%s", raft_errmsg(&g->raft));
        raft_uv_close(&st->io);
        free(st);
        return mk_errf(err, raft_code(rv), "raft: %s", detail);
    }
    g->store = st;
    g->raft_inited = true;
    g->raft.data = g;
    raft_set_election_timeout(&g->raft, p->election_timeout_ms);
    raft_set_heartbeat_timeout(&g->raft, p->heartbeat_ms);
    /* size_log adjusts it once entries are seen. */
    set_log_threshold(g, p->snapshot_threshold ? p->snapshot_threshold
                                               : AUTO_MIN_ENTRIES);
    /* Pre-vote: a member cut off for a while (SIGSTOP, a partition) does
     * not depose a healthy leader with its inflated term when it returns. */
    raft_set_pre_vote(&g->raft, true);

    /* Every member bootstraps the same configuration: the first
     * max_voters members in ascending PeerId order vote, the others stand
     * by. A data dir that already holds a log refuses
     * (RAFT_CANTBOOTSTRAP) and keeps its own, with whatever changes it
     * has committed since. */
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    rv = 0;
    /* A ticket holder that is not a seed bootstraps nothing: it starts
     * with an empty configuration (it never campaigns) until the leader
     * adds it and its log arrives (group_tickets.c). */
    if (g->self >= g->n_seeds)
        rv = RAFT_CANTBOOTSTRAP;
    for (size_t i = 0; i < g->n_seeds && rv == 0; i++)
        rv = raft_configuration_add(&conf, g->voters[i].id, g->voters[i].addr,
                                    starts_as_voter(g, i) ? RAFT_VOTER
                                                          : RAFT_STANDBY);
    if (rv == 0)
        rv = raft_bootstrap(&g->raft, &conf);
    else
        rv = 0;
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP)
        return mk_errf(err, raft_code(rv), "raft bootstrap: %s",
                       raft_errmsg(&g->raft));
    rv = raft_start(&g->raft);
    if (rv != 0)
        return mk_errf(err, raft_code(rv), "raft start: %s",
                       raft_errmsg(&g->raft));
    g->raft_started = true;
    return 0;
}

/* ---- storage ---------------------------------------------------------------
 *
 * gio (group_io.h) reports the first storage failure and from then on
 * keeps libraft from acknowledging or voting. Here the member leaves
 * consensus: Raft is closed on the next turn (never from inside raft_uv's
 * callback), the group handle stays, its status says storage_failed, and
 * every DISK_RETRY_MS a probe tries to allocate room in the data dir. When
 * it succeeds, Raft is started again from the durable log, exactly as a
 * restarted process would: the state machine goes back to its initial
 * state and libraft applies the snapshot and log over it. Commands held
 * here wait for a leader meanwhile; requesters try other members. */

static void on_storage_failed(mk__gio *io, const char *op, int rv,
                              const char *msg)
{
    mk_group *g = io->data;
    char hex[MK_ID_HEX_LEN + 1];
    snprintf(g->errmsg, sizeof g->errmsg,
             "storage failed (%s: %s): out of consensus until the data dir "
             "works again",
             op, msg);
    fprintf(stderr,
            "mosaik: group %s: STORAGE FAILED in %s: %s (libraft code %d), "
            "data dir %s: this member leaves consensus and retries every "
            "%d ms\n",
            mk_id_hex(&g->id, hex), op, msg, rv, g->data_dir, DISK_RETRY_MS);
    g->raft_started = false; /* no proposals, no routing to us */
    if (g->disk == DISK_OK && !g->closing) {
        g->disk = DISK_FAILED;
        uv_timer_start(&g->disk_timer, on_disk_timer, 0, 0);
    }
}

/* Can the data dir take a segment's worth of writes again? */
static int disk_probe(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/.mosaik-probe", dir) >=
        (int)sizeof path)
        return MK_EINVAL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = -posix_fallocate(fd, 0, DISK_PROBE_BYTES);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    unlink(path);
    return rc;
}

static void disk_restart(mk_group *g)
{
    char err[MK_ERRMSG_SIZE], hex[MK_ID_HEX_LEN + 1];
    mk_id_hex(&g->id, hex);
    int rc = mk__gfsm_restore(&g->gfsm, g->initial, g->initial_len);
    if (rc != 0) {
        mk_errf(err, rc, "cannot reset the state machine: %s",
                mk_strerror(rc));
        g->disk = DISK_REFUSED;
        goto fail;
    }
    mk__bridge_init(&g->bridge, g, g->loop);
    g->open_handles++;
    rc = raft_open(g, err);
    if (rc == 0) {
        g->disk = DISK_OK;
        g->errmsg[0] = '\0';
        fprintf(stderr,
                "mosaik: group %s: storage in %s works again: member "
                "restarted from its log\n",
                hex, g->data_dir);
        return;
    }
    if (g->raft_inited) {
        /* on_raft_closed decides: stopped (retry) or refused (lost). */
        g->disk = DISK_STOPPING;
        g->raft.data = g;
        raft_close(&g->raft, on_raft_closed);
    } else {
        mk__bridge_close_unused(&g->bridge);
        g->raft_inited = true; /* the previous instance, long closed */
        g->raft_closed = true;
        g->disk = DISK_STOPPED;
        uv_timer_start(&g->disk_timer, on_disk_timer, DISK_RETRY_MS, 0);
    }
fail:
    snprintf(g->errmsg, sizeof g->errmsg, "storage: %s", err);
    fprintf(stderr, "mosaik: group %s: restart after a storage failure "
                    "failed: %s\n", hex, err);
}

static void on_disk_timer(uv_timer_t *t)
{
    mk_group *g = t->data;
    if (g->closing)
        return;
    if (g->disk == DISK_FAILED) {
        g->disk = DISK_STOPPING;
        g->raft.data = g;
        raft_close(&g->raft, on_raft_closed);
        return;
    }
    if (g->disk != DISK_STOPPED)
        return;
    if (disk_probe(g->data_dir) != 0) {
        uv_timer_start(t, on_disk_timer, DISK_RETRY_MS, 0);
        return;
    }
    disk_restart(g);
}

static int join(const mk_group_config *cfg, mk_group **out, char *err)
{
    int rc;
    *out = NULL;
    if (!cfg->node || !cfg->fsm || cfg->fsm->version != MK_FSM_VERSION ||
        !cfg->fsm->apply || !cfg->fsm->snapshot || !cfg->fsm->restore ||
        !cfg->data_dir || cfg->n_voters == 0 || cfg->n_voters > 64)
        return mk_errf(
            err, MK_EINVAL,
            "group config needs a node, a version-1 fsm, a data dir "
            "and 1 to 64 voters");
    mk_group_params p = cfg->params;
    params_defaults(&p);
    if (p.heartbeat_ms >= p.election_timeout_ms)
        return mk_errf(err, MK_EINVAL,
                       "heartbeat must be shorter than the election timeout");
    if (p.max_voters % 2 == 0 || p.max_voters > 63) {
        /* An even count adds a voter without adding a failure it
         * survives. */
        return mk_errf(err, MK_EINVAL,
                       "max_voters must be odd and at most 63 (got %u)",
                       p.max_voters);
    }
    const mk_peer_id *self = mk_node_id(cfg->node);
    size_t self_at = cfg->n_voters;
    for (size_t i = 0; i < cfg->n_voters; i++) {
        raft_id id = mk__raft_id_of(&cfg->voters[i]);
        char hex[MK_ID_HEX_LEN + 1];
        if (id == 0)
            return mk_errf(err, MK_EINVAL, "voter %s has raft id 0",
                           mk_id_hex(&cfg->voters[i], hex));
        for (size_t j = 0; j < i; j++)
            if (mk__raft_id_of(&cfg->voters[j]) == id)
                return mk_errf(
                    err, MK_EINVAL,
                    "voters %s and another share a raft id (the first "
                    "8 bytes of their PeerIds)",
                    mk_id_hex(&cfg->voters[i], hex));
        if (mk_id_eq(&cfg->voters[i], self))
            self_at = i;
    }
    if (self_at == cfg->n_voters && !cfg->tickets)
        return mk_errf(err, MK_EINVAL,
                       "this node is not a voter of the group");
    mk_id base, gid;
    mk__proof tproof;
    base_id(cfg, &base);
    if (cfg->tickets) {
        if (mk__raft_id_of(self) == 0)
            return mk_errf(err, MK_EINVAL, "this node's raft id is 0");
        for (size_t i = 0; i < cfg->n_voters && self_at == cfg->n_voters; i++)
            if (mk__raft_id_of(&cfg->voters[i]) == mk__raft_id_of(self))
                return mk_errf(err, MK_EINVAL,
                               "this node shares a raft id with seed %zu", i);
        if ((rc = tickets_id(cfg, &base, &tproof, &gid)) != 0)
            return mk_errf(err, MK_EINVAL,
                           "ticket policy: %s (1 to %d keys, strings up to %d "
                           "bytes without ',', seeds without repeats)",
                           mk_strerror(rc), MK_GROUP_TICKET_KEYS,
                           MK_GROUP_TICKET_STR);
    } else if (mk__group_fold_voters(&base, cfg->voters, cfg->n_voters,
                                     &gid) != 0)
        return mk_errf(err, MK_EINVAL, "the voter list repeats a voter");
    mk__hub *hub = mk__hub_get(cfg->node, &rc);
    if (!hub)
        return mk_errf(err, rc, "cannot serve the group protocols: %s",
                       mk_strerror(rc));
    if (mk__hub_find(hub, &gid))
        return mk_errf(err, MK_EEXIST, "this node already runs that group");
    if ((rc = mk__make_dirs(cfg->data_dir)) != 0)
        return mk_errf(err, MK_EIO, "data dir %s: %s", cfg->data_dir,
                       mk_strerror(rc));

    /* libuv writes to sockets with writev, and a write to a connection
     * the peer closed raises SIGPIPE, which would kill the process.
     * Node.js and every libuv server ignore it; so must a process running
     * groups. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);

    mk_group *g = calloc(1, sizeof *g);
    if (!g)
        return MK_ENOMEM;
    g->node = cfg->node;
    g->loop = mk_node_loop(cfg->node);
    g->hub = hub;
    g->id = gid;
    if (cfg->tickets) {
        g->proof = tproof;
        g->tickets = true;
    } else {
        g->proof.base = base;
        g->proof.n = cfg->n_voters;
        memcpy(g->proof.voters, cfg->voters,
               cfg->n_voters * sizeof *cfg->voters);
        qsort(g->proof.voters, g->proof.n, sizeof *g->proof.voters,
              peer_cmp);
    }
    g->params = p;
    g->fsm = cfg->fsm;
    g->n_voters = g->n_seeds = cfg->n_voters;
    g->self = self_at;
    g->bonds.next = g->bonds.prev = &g->bonds;
    /* A ticket-gated table grows in place (group_tickets.c). */
    g->voters = calloc(g->tickets ? MK__TABLE_MAX : cfg->n_voters,
                       sizeof *g->voters);
    g->validators = calloc(cfg->n_validators ? cfg->n_validators : 1,
                           sizeof *g->validators);
    mk__sess *local = calloc(1, sizeof *local);
    if (!g->voters || !g->validators || !local ||
        (g->tickets && mk__proof_validator(&g->proof, &g->member_v) != 0)) {
        free(g->voters);
        free(g->validators);
        free(local);
        free(g);
        return MK_ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_voters; i++) {
        g->voters[i].peer = cfg->voters[i];
        g->voters[i].id = mk__raft_id_of(&cfg->voters[i]);
        mk_id_hex(&cfg->voters[i], g->voters[i].addr);
    }
    if (self_at == cfg->n_voters) {
        /* A ticket holder, not a seed: its own row follows them. */
        g->self = g->n_voters++;
        g->voters[g->self].peer = *self;
        g->voters[g->self].id = mk__raft_id_of(self);
        mk_id_hex(self, g->voters[g->self].addr);
    }
    for (size_t i = 0; i < cfg->n_validators; i++)
        g->validators[i] = cfg->validators[i];
    g->n_validators = cfg->n_validators;
    if (getrandom(g->session, sizeof g->session, 0) !=
        (ssize_t)sizeof g->session) {
        free(local);
        mk_ticket_validator_free(&g->member_v);
        free(g->voters);
        free(g->validators);
        free(g);
        return mk_errf(err, MK_EIO, "no randomness for a session id");
    }
    memcpy(local->id, g->session, MK__SESSION_LEN);
    local->local = true;
    g->sessions = local;

    mk__gfsm_hooks hooks = {on_applied, on_restored, g, on_note};
    mk__gfsm_init(&g->gfsm, cfg->fsm, &hooks);
    mk__feed_init(&g->feed, g);
    uv_check_init(g->loop, &g->check);
    uv_prepare_init(g->loop, &g->prepare);
    uv_timer_init(g->loop, &g->tick);
    uv_timer_init(g->loop, &g->disk_timer);
    g->check.data = g->prepare.data = g->tick.data = g;
    g->disk_timer.data = g;
    g->open_handles = 5; /* with the bridge's timer */
    mk__bridge_init(&g->bridge, g, g->loop);

    /* The empty machine, to go back to when Raft restarts after a storage
     * failure (libraft then applies the durable log over it). */
    mk_buf init;
    mk_buf_init(&init);
    rc = mk__gfsm_snapshot(&g->gfsm, &init);
    if (rc == 0 && init.err)
        rc = init.err;
    g->initial = mk_buf_detach(&init, &g->initial_len);
    g->data_dir = strdup(cfg->data_dir);
    if (rc != 0 || !g->initial || !g->data_dir) {
        mk_buf_free(&init);
        rc = rc ? rc : MK_ENOMEM;
        mk_errf(err, rc, "cannot keep the initial state: %s", mk_strerror(rc));
        goto fail;
    }
    /* Before Raft: it may append (replay) at once. teardown() stops it. */
    g->prep = mk__prep_start(g->fsm, false);
    if (g->fsm->admit)
        g->door_help = mk__prep_start(g->fsm, true);
    if ((rc = raft_open(g, err)) != 0)
        goto fail;
    if ((rc = mk__hub_add(hub, g)) != 0) {
        mk_errf(err, rc, "cannot register the group");
        goto fail;
    }
    mk_node_watch_add(g->node, on_peer_event, g, &g->node_watch);
    mk_node_add_group(g->node, &g->id);
    mk__group_metrics_add(g, cfg->name);
    uv_check_start(&g->check, on_check);
    uv_timer_start(&g->tick, on_tick, TICK_MS, TICK_MS);
    *out = g;
    return 0;

fail:
    /* Finishes asynchronously; no callback. A hub made for this group
     * alone goes with it. */
    mk__hub_remove(hub, g);
    mk__feed_close(&g->feed);
    teardown(g);
    return rc;
}

int mk_group_open(const mk_group_config *cfg, mk_group **out, char *err)
{
    int rc = join(cfg, out, err);
    /* The node's registry is made on the way in (mk__hub_get); a join that
     * failed before it had a group to remove must not leave it behind. */
    if (rc != 0 && cfg->node)
        mk__hub_release(cfg->node);
    return rc;
}

/* ---- leaving ------------------------------------------------------------- */

void mk_group_close(mk_group *g, mk_close_cb cb, void *data)
{
    if (g->closing)
        return;
    g->closing = true;
    g->close_cb = cb;
    g->close_data = data;
    /* Now, not when freed: the node may close before the group has. */
    mk__group_metrics_remove(g);
    /* Answers already computed go out as they are; everything pending is
     * cancelled. */
    done_deliver(g);
    door_forget(g);
    while (g->sessions) {
        mk__sess *s = g->sessions;
        while (s->ops) {
            mk__op *o = s->ops;
            s->ops = o->next;
            for (mk__waiter *w = o->waiters, *next; w; w = next) {
                next = w->next;
                if (w->cb)
                    w->cb(MK_ECANCELED, 0, NULL, 0, w->data);
                else if (w->srv) {
                    w->srv->refs--;
                    srv_maybe_free(w->srv);
                }
                free(w);
            }
            free(o->cmd);
            free(o);
        }
        g->sessions = s->next;
        free(s);
    }
    g->queue_head = g->queue_tail = NULL;
    g->queued = 0;
    while (g->qops) {
        mk__qop *q = g->qops;
        g->qops = q->next;
        if (q->w.cb)
            q->w.cb(MK_ECANCELED, 0, NULL, 0, q->w.data);
        else if (q->w.srv) {
            q->w.srv->refs--;
            srv_maybe_free(q->w.srv);
        }
        free(q->q);
        free(q);
    }
    done_deliver(g);
    mk_node_unwatch(g->node_watch);
    g->node_watch = NULL;
    mk_node_remove_group(g->node, &g->id);
    mk__hub_remove(g->hub, g);
    while (g->fwds) {
        mk__fwd *f = g->fwds;
        g->fwds = f->next;
        mk__rpc_close(f->rpc);
        free(f);
    }
    while (g->srvs) {
        mk__srv *s = g->srvs;
        mk_link *link = s->link;
        srv_detach(s);
        if (link)
            mk_link_close(link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
        srv_maybe_free(s);
    }
    mk__feed_close(&g->feed);
    teardown(g);
}
