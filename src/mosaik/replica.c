/* Read-only replicas (include/mosaik/group.h): a state machine that follows
 * a group's commit feed (group_feed.c) without joining Raft.
 *
 * A replica finds members in its node's catalog (entries listing the
 * GroupId), subscribes to one with the number of commands it has applied,
 * and applies what it is sent: a snapshot when it is too far behind, then
 * each command in order. When the member goes away or refuses, it picks
 * another (avoiding for a while the ones that just failed) and resumes from
 * where it stopped. Since members apply the same commands in the same
 * order and number them alike, the replica passes through exactly their
 * sequence of states whichever member it follows.
 *
 * Only a voter is followed: the member's WELCOME carries its proof of
 * membership (group_proof.c), checked against the GroupId and the key
 * the link authenticated before a single command is applied; once one
 * proof is seen, only the voters it lists are dialled.
 *
 * It prefers the leader. A follower applies a command only when the
 * leader's next message says it is committed, up to a heartbeat after the
 * leader applied it; a replica of a follower inherits that lag. Members
 * say on the feed whom they believe leads (LEADER), so:
 *
 *   - Make before break. Told of a leader other than its source, the
 *     replica also subscribes to it (the candidate) from its applied count
 *     and applies whatever either link brings first: both carry the same
 *     numbered commands, a number it already has is skipped, and each link
 *     is contiguous from a point at or below what the replica held. The
 *     source is let go once the candidate welcomed it and the replica holds
 *     the candidate's state as of then, so online and caught_up never
 *     blink; if the source fails first, a welcomed candidate takes over.
 *   - Hysteresis. A move starts only when the source has named the same
 *     leader for MOVE_STABLE_MS and the replica is caught up; a candidate
 *     not usable within CANDIDATE_MS is dropped, and that leader is not
 *     tried again for a backoff that doubles up to MOVE_BACKOFF_MAX_MS.
 *   - Fallback. When it must connect from scratch it tries the last leader
 *     it was told of first, then any member.
 *
 * A member speaks on the feed at least every MK__FEED_KEEPALIVE_MS, so a
 * source (or a candidate) silent for MK__FEED_SILENCE_MS is let go as if
 * it had closed, and avoided for a while: a member that stopped without a
 * word (SIGSTOP, a wedged disk, a cut cable with the connection still
 * up) otherwise kept its replicas waiting, silent, for as long as the
 * connection lasted, while the others went on committing.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_internal.h"

#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 2000
#define AVOID_MS 3000
#define MAX_AVOID 16
#define MOVE_TICK_MS 50
#define MOVE_STABLE_MS 150
#define CANDIDATE_MS 3000
#define MOVE_BACKOFF_MIN_MS 500
#define MOVE_BACKOFF_MAX_MS 30000
/* Between tries once a member said its state does not fit a frame:
 * every try costs a member a snapshot of all of it. */
#define TOO_LARGE_RETRY_MS 30000

typedef struct rwatch {
    struct rwatch *next;
    void (*cb)(mk_replica *r, void *data);
    void *data;
} rwatch;

/* One subscription: the source, or a candidate to move to. */
typedef struct sub {
    mk_replica *r; /* NULL once the replica let it go */
    mk_link *link; /* NULL while dialling */
    mk_peer_id peer;
    bool welcomed;
    uint64_t welcomed_n; /* the member's applied count in its WELCOME */
    bool has_leader;     /* what it last said in LEADER */
    mk_peer_id leader;
    int64_t leader_since;
    int64_t started;
    int64_t heard; /* the last frame from it, or when its link came up */
} sub;

struct mk_replica {
    mk_node *node;
    mk_id gid;
    struct mk_fsm *fsm;
    uint64_t applied;
    bool online, closing, fatal;
    int error; /* mk_replica_error */
    size_t n_voters; /* proven (0: not yet) */
    mk_peer_id voters[MK__MAX_VOTERS];
    sub *src, *cand;
    bool has_hint; /* the last leader any member named */
    mk_peer_id hint;
    uv_timer_t timer, mover;
    int timers_open;
    uint32_t backoff;
    mk_peer_id move_failed; /* the last leader a move to failed */
    int64_t move_not_before;
    uint32_t move_backoff;
    struct avoid_slot {
        mk_peer_id peer;
        int64_t until;
    } avoid[MAX_AVOID];
    size_t n_avoid;
    uint64_t pick;
    rwatch *watches;
    mk_node_watch *nw;
    mk_buf scratch;
    void (*close_cb)(void *data);
    void *close_data;
};

static void connect_next(mk_replica *r);

static void on_retry(uv_timer_t *t)
{
    connect_next(t->data);
}

static void notify(mk_replica *r)
{
    for (rwatch *w = r->watches; w && !r->closing; w = w->next)
        w->cb(r, w->data);
}

static void maybe_free(mk_replica *r)
{
    if (!r->closing || r->src || r->cand || r->timers_open)
        return;
    void (*cb)(void *) = r->close_cb;
    void *data = r->close_data;
    while (r->watches) {
        rwatch *w = r->watches;
        r->watches = w->next;
        free(w);
    }
    mk_buf_free(&r->scratch);
    free(r);
    if (cb)
        cb(data);
}

static void avoid(mk_replica *r, const mk_peer_id *peer)
{
    int64_t now = mk_mono_ms();
    size_t kept = 0;
    for (size_t i = 0; i < r->n_avoid; i++)
        if (r->avoid[i].until > now && !mk_id_eq(&r->avoid[i].peer, peer))
            r->avoid[kept++] = r->avoid[i];
    r->n_avoid = kept;
    if (r->n_avoid < MAX_AVOID)
        r->avoid[r->n_avoid++] = (struct avoid_slot){*peer, now + AVOID_MS};
}

static bool avoided(const mk_replica *r, const mk_peer_id *peer)
{
    int64_t now = mk_mono_ms();
    for (size_t i = 0; i < r->n_avoid; i++)
        if (r->avoid[i].until > now && mk_id_eq(&r->avoid[i].peer, peer))
            return true;
    return false;
}

static void schedule_retry(mk_replica *r)
{
    if (r->closing)
        return;
    r->backoff = r->backoff ? r->backoff * 2 : RETRY_MIN_MS;
    if (r->backoff > RETRY_MAX_MS)
        r->backoff = RETRY_MAX_MS;
    uv_timer_start(&r->timer, on_retry,
                   r->error == MK_EMSGSIZE ? TOO_LARGE_RETRY_MS : r->backoff,
                   0);
}

static bool proven_voter(const mk_replica *r, const mk_peer_id *p)
{
    if (r->n_voters == 0)
        return true; /* not known yet: the WELCOME will tell */
    for (size_t i = 0; i < r->n_voters; i++)
        if (mk_id_eq(&r->voters[i], p))
            return true;
    return false;
}

/* ---- subscriptions ----------------------------------------------------- */

static void fail_sub(sub *s, uint32_t code, const char *why)
{
    if (s->link)
        mk_link_close(s->link, code, why);
}

/* The candidate becomes the source (the source is closed). */
static void promote(mk_replica *r)
{
    sub *old = r->src;
    r->src = r->cand;
    r->cand = NULL;
    r->online = true;
    r->backoff = 0;
    r->move_backoff = 0;
    if (old) {
        old->r = NULL; /* its close no longer concerns us */
        if (old->link)
            mk_link_close(old->link, MK_CLOSE_SUCCESS, NULL);
        else
            free(old); /* still dialling: on_dialled frees it */
    }
    notify(r);
}

/* After anything was applied: a welcomed candidate whose state we now
 * hold can take over. */
static void maybe_promote(mk_replica *r)
{
    if (r->cand && r->cand->welcomed && r->applied >= r->cand->welcomed_n)
        promote(r);
}

static void drop_candidate(mk_replica *r, bool failed)
{
    sub *c = r->cand;
    if (!c)
        return;
    r->cand = NULL;
    if (failed) {
        r->move_failed = c->peer;
        r->move_backoff = r->move_backoff ? r->move_backoff * 2
                                          : MOVE_BACKOFF_MIN_MS;
        if (r->move_backoff > MOVE_BACKOFF_MAX_MS)
            r->move_backoff = MOVE_BACKOFF_MAX_MS;
        r->move_not_before = mk_mono_ms() + r->move_backoff;
    }
    c->r = NULL;
    if (c->link)
        mk_link_close(c->link, MK_CLOSE_SUCCESS, NULL);
    /* else on_dialled frees it */
}

static int on_welcome(mk_replica *r, sub *s, const mk__proof *proof,
                      uint64_t n)
{
    if (mk__proof_check_member(proof, &r->gid, r->node, &s->peer) != 0) {
        avoid(r, &s->peer);
        fail_sub(s, MK_CLOSE_GROUP_INVALID_PROOF, "not a voter of this group");
        return -1;
    }
    /* A ticket-gated group's members change: only a fixed list narrows
     * whom to dial (each WELCOME is checked either way). */
    if (r->n_voters == 0 && !proof->tickets) {
        memcpy(r->voters, proof->voters, proof->n * sizeof *proof->voters);
        r->n_voters = proof->n;
    }
    s->welcomed = true;
    s->welcomed_n = n;
    if (n <= r->applied)
        r->error = 0; /* nothing it cannot send us */
    if (s == r->src) {
        r->online = true;
        r->backoff = 0;
        notify(r);
    } else {
        maybe_promote(r);
    }
    return 0;
}

static void on_leader(mk_replica *r, sub *s, bool has, const mk_peer_id *l)
{
    if (has != s->has_leader || (has && !mk_id_eq(l, &s->leader)))
        s->leader_since = mk_mono_ms();
    s->has_leader = has;
    if (has) {
        s->leader = *l;
        r->has_hint = true;
        r->hint = *l;
    }
}

static void on_frame(mk_link *link, const uint8_t *f, size_t len, void *data)
{
    sub *s = data;
    mk_replica *r = s->r;
    if (!r || r->closing || r->fatal)
        return;
    s->heard = mk_mono_ms();
    mk_reader rd;
    mk_reader_init(&rd, f, len);
    uint8_t kind = mk_get_u8(&rd);
    uint64_t n = mk_get_varint(&rd);
    size_t blen = 0;
    const uint8_t *body = NULL;
    mk__proof proof;
    mk_peer_id leader;
    if (kind == MK__F_SNAPSHOT || kind == MK__F_CMD)
        body = mk_get_bytes(&rd, &blen, len);
    else if (kind == MK__F_WELCOME && mk__proof_decode(&rd, &proof) != 0)
        rd.err = MK_EDECODE;
    else if (kind == MK__F_LEADER && n == 1)
        mk_get_id(&rd, &leader);
    if (mk_reader_done(&rd) != 0 || (kind == MK__F_LEADER && n > 1)) {
        fail_sub(s, MK_CLOSE_PROTOCOL_VIOLATION, "bad feed frame");
        return;
    }
    if ((kind == MK__F_WELCOME) == s->welcomed) {
        fail_sub(s, MK_CLOSE_PROTOCOL_VIOLATION,
                 s->welcomed ? "second WELCOME" : "feed before WELCOME");
        return;
    }
    switch (kind) {
    case MK__F_WELCOME:
        on_welcome(r, s, &proof, n);
        return;
    case MK__F_LEADER:
        on_leader(r, s, n == 1, &leader);
        return;
    case MK__F_SNAPSHOT: {
        if (n <= r->applied)
            return; /* the other link got us there already */
        int rc = r->fsm->restore(r->fsm, body, blen);
        if (rc != 0) {
            avoid(r, &s->peer);
            fail_sub(s, MK_CLOSE_PROTOCOL_VIOLATION, "bad snapshot");
            return;
        }
        r->applied = n;
        r->error = 0;
        notify(r);
        maybe_promote(r);
        return;
    }
    case MK__F_CMD:
        if (n <= r->applied)
            return; /* already have it */
        if (n != r->applied + 1) {
            avoid(r, &s->peer);
            fail_sub(s, MK_CLOSE_PROTOCOL_VIOLATION, "gap in the feed");
            return;
        }
        mk_buf_reset(&r->scratch);
        if (r->fsm->apply(r->fsm, body, blen, &r->scratch) != 0) {
            /* The members applied it; we cannot: our machine is not
             * theirs. Stop rather than diverge. */
            r->fatal = true;
            r->online = false;
            if (r->cand)
                drop_candidate(r, false);
            fail_sub(s, MK_CLOSE_CANCELLED, "apply failed");
            notify(r);
            return;
        }
        r->applied = n;
        r->error = 0;
        notify(r);
        if (!r->closing)
            maybe_promote(r);
        return;
    default:
        fail_sub(s, MK_CLOSE_PROTOCOL_VIOLATION, "unknown feed frame");
    }
}

/* The source is gone (r->src is NULL already): a live candidate takes
 * over, else the replica is offline until it connects again. */
static void source_lost(mk_replica *r)
{
    if (r->cand && r->cand->welcomed && !r->fatal) {
        /* The candidate is live: it simply becomes the source (a replica
         * behind its WELCOME catches up on that link). */
        r->src = r->cand;
        r->cand = NULL;
        notify(r);
        return;
    }
    bool was = r->online;
    r->online = false;
    if (was)
        notify(r);
    if (!r->fatal && !r->closing)
        schedule_retry(r);
}

/* Nothing from the source for MK__FEED_SILENCE_MS. Its close would wait
 * for a goodbye that a stopped member never sends, so it is let go now
 * (its on_close only frees it) and the replica moves on at once. */
static void source_silent(mk_replica *r)
{
    sub *s = r->src;
    avoid(r, &s->peer);
    r->src = NULL;
    s->r = NULL;
    mk_link_close(s->link, MK_CLOSE_IDLE_TIMEOUT, "no word from the member");
    source_lost(r);
}

static void on_close(mk_link *link, uint32_t code, int status, void *data)
{
    sub *s = data;
    mk_replica *r = s->r;
    s->link = NULL;
    if (!r) {
        free(s); /* let go earlier */
        return;
    }
    bool too_large = code == MK_CLOSE_FRAME_TOO_LARGE && s->welcomed;
    if (code == MK_CLOSE_UNKNOWN_PEER)
        mk_node_sync_with(r->node, &s->peer, NULL);
    else if (code != MK_CLOSE_SUCCESS && !r->closing)
        avoid(r, &s->peer);
    if (s == r->cand) {
        drop_candidate(r, !r->closing); /* s->link is NULL: it stays ours */
        free(s);
        maybe_free(r);
        return;
    }
    r->src = NULL;
    free(s);
    if (r->closing) {
        maybe_free(r);
        return;
    }
    if (too_large && r->error != MK_EMSGSIZE) {
        r->error = MK_EMSGSIZE;
        notify(r);
        if (r->closing)
            return;
    }
    source_lost(r);
}

static void on_dialled(mk_link *link, int status, void *data)
{
    sub *s = data;
    mk_replica *r = s->r;
    if (!r) {
        if (link)
            mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
        free(s);
        return;
    }
    if (status < 0) {
        avoid(r, &s->peer);
        if (s == r->cand) {
            drop_candidate(r, true);
            free(s);
        } else {
            r->src = NULL;
            free(s);
            schedule_retry(r);
        }
        return;
    }
    s->link = link;
    s->heard = mk_mono_ms();
    mk_link_set_callbacks(link, on_frame, on_close, s);
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__F_SUBSCRIBE);
    mk_put_id(&b, mk_node_network(r->node));
    mk_put_id(&b, &r->gid);
    mk_put_varint(&b, r->applied);
    if (b.err || mk_link_send(link, b.data, b.len) != 0)
        mk_link_close(link, MK_CLOSE_CANCELLED, NULL);
    mk_buf_free(&b);
}

/* Dials `peer`; NULL when that cannot start now. */
static sub *subscribe(mk_replica *r, const mk_peer_id *peer)
{
    sub *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->r = r;
    s->peer = *peer;
    s->started = mk_mono_ms();
    if (mk_node_dial(r->node, peer, MK_ALPN_GROUP_FEED, on_dialled, s) != 0) {
        free(s);
        avoid(r, peer);
        return NULL;
    }
    return s;
}

typedef struct pick_ctx {
    mk_replica *r;
    const mk_peer_id *self;
    mk_peer_id found[64];
    size_t n, n_avoided;
    mk_peer_id avoided[64];
    bool hint_known;
} pick_ctx;

static bool collect(const mk_peer_info *p, void *data)
{
    pick_ctx *c = data;
    const mk_peer_entry *e = p->entry;
    if (!mk_entry_has_group(e, &c->r->gid) || e->n_addrs == 0 ||
        mk_id_eq(&e->peer, c->self) || !proven_voter(c->r, &e->peer))
        return true;
    if (avoided(c->r, &e->peer)) {
        if (c->n_avoided < 64)
            c->avoided[c->n_avoided++] = e->peer;
        return true;
    }
    if (c->r->has_hint && mk_id_eq(&e->peer, &c->r->hint))
        c->hint_known = true;
    if (c->n < 64)
        c->found[c->n++] = e->peer;
    return true;
}

static void connect_next(mk_replica *r)
{
    if (r->closing || r->src || r->fatal)
        return;
    if (r->cand) {
        /* A move was under way: the candidate is the source now. */
        r->src = r->cand;
        r->cand = NULL;
        return;
    }
    pick_ctx c = {.r = r, .self = mk_node_id(r->node)};
    mk_node_peers_foreach(r->node, collect, &c);
    const mk_peer_id *peer = NULL;
    /* The leader first; else rotate over the healthy members; fall back on
     * the avoided ones rather than on nothing. */
    if (c.hint_known)
        peer = &r->hint;
    else if (c.n)
        peer = &c.found[r->pick++ % c.n];
    else if (c.n_avoided)
        peer = &c.avoided[r->pick++ % c.n_avoided];
    if (!peer) {
        schedule_retry(r);
        return;
    }
    r->src = subscribe(r, peer);
    if (!r->src)
        schedule_retry(r);
}

/* ---- moving to the leader ------------------------------------------------ */

typedef struct find_ctx {
    const mk_id *gid;
    const mk_peer_id *peer;
    bool found;
} find_ctx;

static bool find_member(const mk_peer_info *p, void *data)
{
    find_ctx *f = data;
    if (mk_id_eq(&p->entry->peer, f->peer) && p->entry->n_addrs &&
        mk_entry_has_group(p->entry, f->gid))
        f->found = true;
    return !f->found;
}

static void on_move_tick(uv_timer_t *t)
{
    mk_replica *r = t->data;
    if (r->closing || r->fatal)
        return;
    int64_t now = mk_mono_ms();
    if (r->cand && !r->cand->welcomed && now - r->cand->started > CANDIDATE_MS)
        drop_candidate(r, true);
    if (r->cand && r->cand->link && now - r->cand->heard > MK__FEED_SILENCE_MS)
        drop_candidate(r, true);
    if (r->src && r->src->link && now - r->src->heard > MK__FEED_SILENCE_MS)
        source_silent(r);
    sub *s = r->src;
    if (r->cand || !s || !s->welcomed || !s->has_leader ||
        mk_id_eq(&s->leader, &s->peer) ||
        mk_id_eq(&s->leader, mk_node_id(r->node)) ||
        now - s->leader_since < MOVE_STABLE_MS ||
        r->applied < s->welcomed_n || !proven_voter(r, &s->leader) ||
        avoided(r, &s->leader))
        return;
    if (now < r->move_not_before && mk_id_eq(&r->move_failed, &s->leader))
        return;
    find_ctx f = {&r->gid, &s->leader, false};
    mk_node_peers_foreach(r->node, find_member, &f);
    if (f.found)
        r->cand = subscribe(r, &s->leader);
}

static void on_peer_event(mk_node *node, mk_peer_event ev,
                          const mk_peer_entry *e, void *data)
{
    mk_replica *r = data;
    /* A member just appeared: no need to wait for the retry timer. */
    if (ev != MK_PEER_DEPARTED && !r->src && !r->closing &&
        mk_entry_has_group(e, &r->gid)) {
        uv_timer_stop(&r->timer);
        r->backoff = 0;
        uv_timer_start(&r->timer, on_retry, 0, 0);
    }
}

/* ---- the handle ----------------------------------------------------------- */

int mk_replica_open(const mk_replica_config *cfg, mk_replica **out)
{
    *out = NULL;
    if (!cfg->node || !cfg->fsm || cfg->fsm->version != MK_FSM_VERSION)
        return MK_EINVAL;
    mk_replica *r = calloc(1, sizeof *r);
    if (!r)
        return MK_ENOMEM;
    r->node = cfg->node;
    r->gid = cfg->group;
    r->fsm = cfg->fsm;
    mk_buf_init(&r->scratch);
    if (mk_node_watch_add(r->node, on_peer_event, r, &r->nw) != 0) {
        free(r);
        return MK_ENOMEM;
    }
    uv_loop_t *loop = mk_node_loop(r->node);
    uv_timer_init(loop, &r->timer);
    uv_timer_init(loop, &r->mover);
    r->timer.data = r->mover.data = r;
    r->timers_open = 2;
    uv_timer_start(&r->timer, on_retry, 0, 0);
    uv_timer_start(&r->mover, on_move_tick, MOVE_TICK_MS, MOVE_TICK_MS);
    *out = r;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    mk_replica *r = h->data;
    r->timers_open--;
    maybe_free(r);
}

static void let_go(mk_replica *r, sub *s)
{
    if (!s)
        return;
    if (s->link) {
        mk_link_close(s->link, MK_CLOSE_SUCCESS, NULL); /* on_close frees */
    } else {
        s->r = NULL; /* on_dialled frees */
        if (s == r->src)
            r->src = NULL;
        else
            r->cand = NULL;
    }
}

void mk_replica_close(mk_replica *r, mk_close_cb cb, void *data)
{
    if (r->closing)
        return;
    r->closing = true;
    r->close_cb = cb;
    r->close_data = data;
    mk_node_unwatch(r->nw);
    let_go(r, r->src);
    let_go(r, r->cand);
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
    uv_close((uv_handle_t *)&r->mover, on_timer_closed);
}

uint64_t mk_replica_applied(const mk_replica *r)
{
    return r->applied;
}

bool mk_replica_online(const mk_replica *r)
{
    return r->online;
}

bool mk_replica_caught_up(const mk_replica *r)
{
    return r->online && r->src && r->applied >= r->src->welcomed_n;
}

int mk_replica_error(const mk_replica *r)
{
    return r->error;
}

bool mk_replica_source(const mk_replica *r, mk_peer_id *out)
{
    if (!r->online || !r->src)
        return false;
    *out = r->src->peer;
    return true;
}

int mk_replica_watch(mk_replica *r, void (*cb)(mk_replica *r, void *data),
                     void *data)
{
    rwatch *w = calloc(1, sizeof *w);
    if (!w)
        return MK_ENOMEM;
    w->cb = cb;
    w->data = data;
    w->next = r->watches;
    r->watches = w;
    return 0;
}
