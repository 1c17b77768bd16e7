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

typedef struct rwatch {
    struct rwatch *next;
    void (*cb)(mk_replica *r, void *data);
    void *data;
} rwatch;

typedef struct dial_token {
    mk_replica *r; /* NULL once the replica stopped waiting */
} dial_token;

struct mk_replica {
    mk_node *node;
    mk_id gid;
    struct mk_fsm *fsm;
    uint64_t applied;
    uint64_t welcomed; /* the source's applied count in its WELCOME */
    bool online, closing, fatal;
    size_t n_voters; /* proven (0: not yet) */
    mk_peer_id voters[MK__MAX_VOTERS];
    mk_peer_id source;
    mk_link *link;
    dial_token *dialing;
    uv_timer_t timer;
    bool timer_open;
    uint32_t backoff;
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
    if (!r->closing || r->link || r->timer_open)
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
    uv_timer_start(&r->timer, on_retry, r->backoff, 0);
}

/* ---- the subscription --------------------------------------------------- */

static void fail_source(mk_replica *r, uint32_t code, const char *why)
{
    if (r->link)
        mk_link_close(r->link, code, why);
}

static void on_frame(mk_link *link, const uint8_t *f, size_t len, void *data)
{
    mk_replica *r = data;
    if (r->closing || r->fatal)
        return;
    mk_reader rd;
    mk_reader_init(&rd, f, len);
    uint8_t kind = mk_get_u8(&rd);
    uint64_t n = mk_get_varint(&rd);
    size_t blen = 0;
    const uint8_t *body = NULL;
    mk__proof proof;
    if (kind == MK__F_SNAPSHOT || kind == MK__F_CMD)
        body = mk_get_bytes(&rd, &blen, len);
    else if (kind == MK__F_WELCOME && mk__proof_decode(&rd, &proof) != 0)
        rd.err = MK_EDECODE;
    if (mk_reader_done(&rd) != 0) {
        fail_source(r, MK_CLOSE_PROTOCOL_VIOLATION, "bad feed frame");
        return;
    }
    if ((kind == MK__F_WELCOME) == r->online) {
        fail_source(r, MK_CLOSE_PROTOCOL_VIOLATION,
                    r->online ? "second WELCOME" : "feed before WELCOME");
        return;
    }
    switch (kind) {
    case MK__F_WELCOME:
        if (mk__proof_check(&proof, &r->gid, mk_link_peer(link)) != 0) {
            avoid(r, mk_link_peer(link));
            fail_source(r, MK_CLOSE_GROUP_INVALID_PROOF,
                        "not a voter of this group");
            return;
        }
        if (r->n_voters == 0) {
            memcpy(r->voters, proof.voters, proof.n * sizeof *proof.voters);
            r->n_voters = proof.n;
        }
        r->welcomed = n;
        r->online = true;
        r->backoff = 0;
        notify(r);
        return;
    case MK__F_SNAPSHOT: {
        int rc = r->fsm->restore(r->fsm, body, blen);
        if (rc != 0) {
            avoid(r, mk_link_peer(link));
            fail_source(r, MK_CLOSE_PROTOCOL_VIOLATION, "bad snapshot");
            return;
        }
        r->applied = n;
        notify(r);
        return;
    }
    case MK__F_CMD:
        if (n <= r->applied)
            return; /* already have it */
        if (n != r->applied + 1) {
            avoid(r, mk_link_peer(link));
            fail_source(r, MK_CLOSE_PROTOCOL_VIOLATION, "gap in the feed");
            return;
        }
        mk_buf_reset(&r->scratch);
        if (r->fsm->apply(r->fsm, body, blen, &r->scratch) != 0) {
            /* The members applied it; we cannot: our machine is not
             * theirs. Stop rather than diverge. */
            r->fatal = true;
            r->online = false;
            fail_source(r, MK_CLOSE_CANCELLED, "apply failed");
            notify(r);
            return;
        }
        r->applied = n;
        notify(r);
        return;
    default:
        fail_source(r, MK_CLOSE_PROTOCOL_VIOLATION, "unknown feed frame");
    }
}

static void on_close(mk_link *link, uint32_t code, int status, void *data)
{
    mk_replica *r = data;
    r->link = NULL;
    bool was = r->online;
    r->online = false;
    if (r->closing) {
        maybe_free(r);
        return;
    }
    if (code == MK_CLOSE_UNKNOWN_PEER)
        mk_node_sync_with(r->node, &r->source, NULL);
    else if (code != MK_CLOSE_SUCCESS)
        avoid(r, &r->source);
    if (was)
        notify(r);
    if (!r->fatal && !r->closing)
        schedule_retry(r);
}

static void on_dialled(mk_link *link, int status, void *data)
{
    dial_token *t = data;
    mk_replica *r = t->r;
    free(t);
    if (!r) {
        if (link)
            mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
        return;
    }
    r->dialing = NULL;
    if (status < 0) {
        avoid(r, &r->source);
        schedule_retry(r);
        return;
    }
    r->link = link;
    mk_link_set_callbacks(link, on_frame, on_close, r);
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

typedef struct pick_ctx {
    mk_replica *r;
    const mk_peer_id *self;
    mk_peer_id found[64];
    size_t n, n_avoided;
    mk_peer_id avoided[64];
} pick_ctx;

static bool proven_voter(const mk_replica *r, const mk_peer_id *p)
{
    if (r->n_voters == 0)
        return true; /* not known yet: the WELCOME will tell */
    for (size_t i = 0; i < r->n_voters; i++)
        if (mk_id_eq(&r->voters[i], p))
            return true;
    return false;
}

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
    } else if (c->n < 64) {
        c->found[c->n++] = e->peer;
    }
    return true;
}

static void connect_next(mk_replica *r)
{
    if (r->closing || r->link || r->dialing || r->fatal)
        return;
    pick_ctx c = {.r = r, .self = mk_node_id(r->node)};
    mk_node_peers_foreach(r->node, collect, &c);
    const mk_peer_id *peer = NULL;
    /* Rotate over the healthy members; fall back on the avoided ones
     * rather than on nothing. */
    if (c.n)
        peer = &c.found[r->pick++ % c.n];
    else if (c.n_avoided)
        peer = &c.avoided[r->pick++ % c.n_avoided];
    if (!peer) {
        schedule_retry(r);
        return;
    }
    dial_token *t = malloc(sizeof *t);
    if (!t) {
        schedule_retry(r);
        return;
    }
    t->r = r;
    r->source = *peer;
    if (mk_node_dial(r->node, peer, MK_ALPN_GROUP_FEED, on_dialled, t) != 0) {
        free(t);
        avoid(r, peer);
        schedule_retry(r);
        return;
    }
    r->dialing = t;
}

static void on_peer_event(mk_node *node, mk_peer_event ev,
                          const mk_peer_entry *e, void *data)
{
    mk_replica *r = data;
    /* A member just appeared: no need to wait for the retry timer. */
    if (ev != MK_PEER_DEPARTED && !r->link && !r->dialing &&
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
    uv_timer_init(mk_node_loop(r->node), &r->timer);
    r->timer.data = r;
    r->timer_open = true;
    uv_timer_start(&r->timer, on_retry, 0, 0);
    *out = r;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    mk_replica *r = h->data;
    r->timer_open = false;
    maybe_free(r);
}

void mk_replica_close(mk_replica *r, void (*cb)(void *data), void *data)
{
    if (r->closing)
        return;
    r->closing = true;
    r->close_cb = cb;
    r->close_data = data;
    mk_node_unwatch(r->nw);
    if (r->dialing)
        r->dialing->r = NULL;
    if (r->link)
        mk_link_close(r->link, MK_CLOSE_SUCCESS, NULL);
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
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
    return r->online && r->applied >= r->welcomed;
}

bool mk_replica_source(const mk_replica *r, mk_peer_id *out)
{
    if (!r->online)
        return false;
    *out = r->source;
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
