/* Discovery: how a node fills its catalog (include/mosaik/node.h).
 *
 * Three protocols, each on its own ALPN, each starting with the network
 * id so a node of another network is turned away with
 * MK_CLOSE_DIFFERENT_NETWORK before anything it says is believed:
 *
 *  - announce: persistent links to a few random neighbours. Every entry
 *    version that is new to a node is forwarded once to its neighbours
 *    (except the one it came from), so an update floods the overlay in a
 *    few hops and each node sends it at most once per neighbour.
 *    Departures travel the same way, and since a flood passes only once,
 *    a neighbour whose link becomes ready later is sent the departures
 *    still inside the drift window (node_internal.h, mk__tombstone). A
 *    neighbour link the peer itself closes with GRACEFUL_SHUTDOWN (what
 *    its transport says when its node has departed) is evidence enough
 *    to drop that incarnation even if its departure never reached us.
 *  - sync: a full catalog exchange, run on first contact with any peer
 *    and with the bootstrap peers until one answers. It is what makes a
 *    fresh node whole at once instead of waiting for gossip.
 *  - ping: the peer's current signed entry and a round-trip time.
 *
 * Entries are only ever stored after their signature verifies (entry.c),
 * so every path may pass entries along without trusting the sender.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/codec.h"
#include "mosaik/error.h"
#include "node_internal.h"

/* The tick runs every TICK_MS while discovery has work due soon (a
 * bootstrap to retry, first-contact exchanges, neighbours to find) and
 * every IDLE_TICK_MS once settled, when all that is left is purging and
 * RTT probes, both on the scale of seconds. Ten wake-ups a second cost a
 * settled node more CPU than everything else it does but its probes;
 * whatever brings new work (a new peer, a lost neighbour) calls
 * mk__discovery_wake. */
#define TICK_MS 100
#define IDLE_TICK_MS 1000
#define MAX_SYNCS_IN_FLIGHT 8
#define MAX_PINGS_IN_FLIGHT 4
#define NEIGHBOUR_QUEUE_LIMIT (1u << 20)
#define BOOTSTRAP_BACKOFF_MAX_MS 5000
#define DEPARTURE_EXTRA_PEERS 4

/* ---- helpers ------------------------------------------------------------- */

static int64_t jittered(mk_node *node, uint32_t base_ms, uint32_t pct)
{
    /* base × U[1 - j, 1 + j] */
    int64_t span = (int64_t)base_ms * pct / 100;
    if (span <= 0)
        return base_ms;
    int64_t off = (int64_t)(mk__node_rand(node) % (uint64_t)(2 * span + 1));
    return base_ms - span + off;
}

static bool within_drift(const mk_node *node, int64_t at_ms)
{
    int64_t d = mk_now_ms() - at_ms;
    if (d < 0)
        d = -d;
    return d <= (int64_t)node->dc.max_time_drift_ms;
}

static void send_departure(mk_link *link, const mk_departure *d);
static void replay_departures(mk_node *node, mk_link *link);

/* The TCP round trip of a link that just carried an exchange, as an RTT
 * sample of its peer: mosaik samples its transport's path RTT the same
 * way (mosaik.md §3.5), and every such sample is a ping not needed. */
static void link_rtt_sample(mk_node *node, mk_link *link)
{
    int64_t us = mk_link_rtt_us(link);
    if (us > 0)
        mk__node_rtt_sample(node, mk_link_peer(link), us);
}

static void send_hello(mk_node *node, mk_link *link)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__MSG_HELLO);
    mk_put_id(&b, &node->network);
    mk_put_bytes(&b, node->self.wire, node->self.wire_len);
    if (!b.err)
        mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
}

static void send_entry(mk_link *link, const mk_peer_entry *e)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__MSG_ENTRY);
    mk_put_bytes(&b, e->wire, e->wire_len);
    if (!b.err)
        mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
}

/* Whether a signed entry can be passed over unverified because the
 * catalog would refuse it anyway: not newer than the version held, ours,
 * tombstoned, stale or of another network (mk__node_judge). Its header
 * is read without trusting it, which is safe because only refusals are
 * decided here: an entry that may be kept is always decoded and verified
 * first. It matters because the same entry arrives many times (a
 * snapshot repeats the whole catalog, a flood comes in from every
 * neighbour), and checking those Ed25519 signatures again was the
 * largest CPU cost of a converging node. The header is entry.h's wire
 * form: format byte 1, network, peer, start, update. */
static bool refused_unread(mk_node *node, const uint8_t *wire, size_t n,
                           const mk_peer_id *expect, int64_t *start)
{
    mk_reader h;
    mk_id net;
    mk_peer_id peer;
    mk_reader_init(&h, wire, n);
    uint8_t format = mk_get_u8(&h);
    mk_get_id(&h, &net);
    mk_get_id(&h, &peer);
    int64_t start_ms = mk_get_i64(&h);
    int64_t update_ms = mk_get_i64(&h);
    if (h.err || format != 1 || (expect && !mk_id_eq(expect, &peer)))
        return false; /* let the full decode say what is wrong */
    mk__upsert j = mk__node_judge(node, &net, &peer, start_ms, update_ms);
    if (j != MK__UPSERT_REFUSED && j != MK__UPSERT_NOT_NEWER)
        return false;
    if (start)
        *start = start_ms;
    return true;
}

/* Decodes a signed entry from `r` and offers it to the catalog. The
 * entry must come from `expect` when that is not NULL; `start` (may be
 * NULL) receives its start_ms. Returns 0 or a negative code for a message
 * that breaks the protocol. */
static int take_entry(mk_node *node, mk_reader *r, mk_link *from,
                      const mk_peer_id *expect, bool check_drift,
                      int64_t *start)
{
    size_t n;
    const uint8_t *wire = mk_get_bytes(r, &n, 1u << 20);
    if (!wire)
        return MK_EDECODE;
    if (refused_unread(node, wire, n, expect, start))
        return 0;
    mk_peer_entry e;
    int rc = mk_entry_decode(&e, wire, n);
    if (rc < 0)
        return rc;
    if (expect && !mk_id_eq(expect, &e.peer)) {
        mk_entry_free(&e);
        return MK_EWRONG_PEER;
    }
    if (start)
        *start = e.start_ms;
    if (check_drift) {
        int64_t d = mk_now_ms() - e.update_ms;
        if (d < 0)
            d = -d;
        if (d > (int64_t)node->dc.max_time_drift_ms) {
            mk_entry_free(&e); /* clocks too far apart to judge freshness */
            return 0;
        }
    }
    mk__node_upsert(node, &e, from);
    return 0;
}

static int take_network(mk_node *node, mk_reader *r)
{
    mk_id net;
    mk_get_id(r, &net);
    if (r->err)
        return MK_EDECODE;
    return mk_id_eq(&net, &node->network) ? 0 : MK_EWRONG_NETWORK;
}

static void close_for(mk_link *link, int rc)
{
    mk_link_close(link, rc == MK_EWRONG_NETWORK
                            ? MK_CLOSE_DIFFERENT_NETWORK
                            : MK_CLOSE_PROTOCOL_VIOLATION,
                  mk_strerror(rc));
}

/* ---- announce: neighbour links ------------------------------------------ */

static mk__neighbour *nbr_of(mk_node *node, mk_link *link)
{
    for (size_t i = 0; i < node->n_nbrs; i++)
        if (node->nbrs[i].link == link)
            return &node->nbrs[i];
    return NULL;
}

/* A ready neighbour link to `id`, or NULL. */
static mk_link *nbr_link(mk_node *node, const mk_peer_id *id)
{
    for (size_t i = 0; i < node->n_nbrs; i++)
        if (node->nbrs[i].ready && mk_id_eq(&node->nbrs[i].peer, id))
            return node->nbrs[i].link;
    return NULL;
}

static bool is_neighbour(mk_node *node, const mk_peer_id *id)
{
    for (size_t i = 0; i < node->n_nbrs; i++)
        if (mk_id_eq(&node->nbrs[i].peer, id))
            return true;
    return false;
}

static void on_nbr_frame(mk_link *link, const uint8_t *f, size_t len,
                         void *data)
{
    mk_node *node = data;
    mk__neighbour *nb = nbr_of(node, link);
    if (!nb || len == 0) {
        mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION, "empty frame");
        return;
    }
    mk_reader r;
    mk_reader_init(&r, f, len);
    uint8_t kind = mk_get_u8(&r);
    int rc = 0;
    mk_peer_id peer = nb->peer;
    if (kind == MK__MSG_HELLO) {
        int64_t start = -1;
        rc = take_network(node, &r);
        if (rc == 0)
            rc = take_entry(node, &r, link, &peer, true, &start);
        /* The upsert ran watchers, which may have closed links. */
        if (rc == 0 && (nb = nbr_of(node, link))) {
            bool was_ready = nb->ready;
            nb->ready = true;
            nb->hello_start_ms = start;
            if (!was_ready) {
                link_rtt_sample(node, link);
                replay_departures(node, link);
            }
        }
    } else if (!nb->ready) {
        rc = MK_EPROTO; /* nothing before the hello */
    } else if (kind == MK__MSG_ENTRY) {
        rc = take_entry(node, &r, link, NULL, true, NULL);
    } else if (kind == MK__MSG_DEPARTURE) {
        size_t n;
        const uint8_t *w = mk_get_bytes(&r, &n, MK_DEPARTURE_WIRE_LEN);
        mk_departure d;
        rc = w ? mk_departure_decode(&d, w, n) : MK_EDECODE;
        if (rc == 0 && mk_id_eq(&d.network, &node->network) &&
            within_drift(node, d.at_ms) && !mk_id_eq(&d.peer, &node->key.pub))
            mk__node_take_departure(node, &d, link);
    } else {
        rc = MK_EPROTO;
    }
    if (rc == 0)
        rc = mk_reader_done(&r) == 0 ? 0 : MK_EDECODE;
    if (rc < 0 && rc != MK_ENOMEM)
        close_for(link, rc);
}

static void on_nbr_close(mk_link *link, uint32_t code, int status,
                         void *data)
{
    mk_node *node = data;
    for (size_t i = 0; i < node->n_nbrs; i++) {
        if (node->nbrs[i].link != link)
            continue;
        mk__neighbour nb = node->nbrs[i];
        node->nbrs[i] = node->nbrs[--node->n_nbrs];
        /* GRACEFUL_SHUTDOWN on a neighbour link comes only from the
         * remote's transport closing, which a node does only after its
         * departure (mk_node_close): this side never closes a neighbour
         * link with that code except when its own transport closes, which
         * `closing` rules out. The link is authenticated, so this is the
         * peer itself saying it is gone; if its departure was lost or is
         * still on the way, drop the incarnation its hello announced
         * rather than keep it until purge_after. */
        if (code == MK_CLOSE_GRACEFUL_SHUTDOWN && nb.ready && !node->closing)
            mk__node_drop_peer(node, &nb.peer, nb.hello_start_ms);
        mk__discovery_wake(node); /* find a replacement soon */
        return;
    }
}

static int add_nbr(mk_node *node, mk_link *link, bool outbound)
{
    if (node->n_nbrs == node->cap_nbrs) {
        size_t cap = node->cap_nbrs ? 2 * node->cap_nbrs : 8;
        mk__neighbour *grown = realloc(node->nbrs, cap * sizeof *grown);
        if (!grown)
            return MK_ENOMEM;
        node->nbrs = grown;
        node->cap_nbrs = cap;
    }
    node->nbrs[node->n_nbrs++] = (mk__neighbour){.link = link,
                                                 .peer = *mk_link_peer(link),
                                                 .hello_start_ms = -1,
                                                 .outbound = outbound};
    mk_link_set_callbacks(link, on_nbr_frame, on_nbr_close, node);
    send_hello(node, link);
    return 0;
}

static void on_announce_accept(mk_link *link, void *data)
{
    mk_node *node = data;
    if (node->closing) {
        /* Whoever reaches us during the departure window (a node that
         * just learned of us) hears that we are leaving instead of
         * finding out at purge_after. */
        if (node->departed) {
            send_hello(node, link);
            send_departure(link, &node->departure);
        }
        mk_link_close(link, MK_CLOSE_GRACEFUL_SHUTDOWN, "departed");
        return;
    }
    /* Inbound neighbours are capped so one node cannot be everyone's hub;
     * a refused dialer picks someone else. */
    if (node->n_nbrs >= 3 * node->dc.neighbours ||
        add_nbr(node, link, false) < 0)
        mk_link_close(link, MK_CLOSE_SUCCESS, "enough neighbours");
}

/* An outbound neighbour dial; the peer is marked so that one tick's
 * random picks (or the next tick's) do not dial it twice. */
typedef struct nbr_dial {
    mk_node *node;
    mk_peer_id peer;
} nbr_dial;

static void on_nbr_connected(mk_link *link, int status, void *data)
{
    nbr_dial *op = data;
    mk_node *node = op->node;
    mk__peer *p = mk__node_find(node, &op->peer);
    if (p)
        p->nbr_dialing = false;
    node->nbr_dials--;
    free(op);
    if (status < 0)
        return;
    if (node->closing || add_nbr(node, link, true) < 0)
        mk_link_close(link, MK_CLOSE_SUCCESS, "closing");
}

/* Dials neighbours while there are fewer than wanted. Returns true when
 * still short and some peer could yet be dialled (the tick stays fast). */
static bool top_up_neighbours(mk_node *node)
{
    size_t outbound = 0;
    for (size_t i = 0; i < node->n_nbrs; i++)
        outbound += node->nbrs[i].outbound;
    size_t want = node->dc.neighbours;
    if (outbound + node->nbr_dials >= want || node->n_peers == 0)
        return false;
    /* A few random picks per tick; peers without addresses (dial-only
     * nodes) cannot be neighbours. */
    for (int tries = 0; tries < 8 && outbound + node->nbr_dials < want;
         tries++) {
        mk__peer *p = &node->peers[mk__node_rand(node) % node->n_peers];
        if (p->entry.n_addrs == 0 || p->nbr_dialing ||
            is_neighbour(node, &p->entry.peer))
            continue;
        nbr_dial *op = malloc(sizeof *op);
        if (!op)
            return true;
        op->node = node;
        op->peer = p->entry.peer;
        if (mk_node_dial(node, &p->entry.peer, MK__ALPN_ANNOUNCE,
                         on_nbr_connected, op) == 0) {
            p->nbr_dialing = true;
            node->nbr_dials++;
        } else {
            free(op);
        }
    }
    if (outbound + node->nbr_dials >= want)
        return false;
    for (size_t i = 0; i < node->n_peers; i++) {
        const mk__peer *p = &node->peers[i];
        if (p->entry.n_addrs && !p->nbr_dialing &&
            !is_neighbour(node, &p->entry.peer))
            return true;
    }
    return false;
}

void mk__discovery_gossip(mk_node *node, const mk_peer_entry *e,
                          mk_link *except)
{
    for (size_t i = 0; i < node->n_nbrs; i++) {
        mk__neighbour *nb = &node->nbrs[i];
        if (nb->link == except || !nb->ready ||
            mk_id_eq(&nb->peer, &e->peer))
            continue;
        /* A neighbour that stopped reading misses updates rather than
         * growing our memory; the periodic announce and sync repair it. */
        if (mk_link_queued(nb->link) > NEIGHBOUR_QUEUE_LIMIT)
            continue;
        send_entry(nb->link, e);
    }
}

static void send_departure(mk_link *link, const mk_departure *d)
{
    uint8_t w[MK_DEPARTURE_WIRE_LEN];
    mk_buf b;
    mk_departure_encode(d, w);
    mk_buf_init(&b);
    mk_put_u8(&b, MK__MSG_DEPARTURE);
    mk_put_bytes(&b, w, sizeof w);
    if (!b.err)
        mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
}

void mk__discovery_forward_departure(mk_node *node, const mk_departure *d,
                                     mk_link *except)
{
    /* Links not ready yet get it from replay_departures once they are. */
    for (size_t i = 0; i < node->n_nbrs; i++)
        if (node->nbrs[i].link != except && node->nbrs[i].ready &&
            !mk_id_eq(&node->nbrs[i].peer, &d->peer))
            send_departure(node->nbrs[i].link, d);
}

static void replay_departures(mk_node *node, mk_link *link)
{
    const mk_peer_id *to = mk_link_peer(link);
    int64_t mono = mk_mono_ms();
    for (size_t i = 0; i < node->n_tombs; i++) {
        const mk__tombstone *t = &node->tombs[i];
        if (t->has_dep && t->expires_mono > mono &&
            within_drift(node, t->dep.at_ms) && !mk_id_eq(&t->peer, to))
            send_departure(link, &t->dep);
    }
}

void mk__discovery_drop_neighbour(mk_node *node, const mk_peer_id *id)
{
    for (size_t i = 0; i < node->n_nbrs; i++)
        if (mk_id_eq(&node->nbrs[i].peer, id))
            mk_link_close(node->nbrs[i].link, MK_CLOSE_SUCCESS, "departed");
}

/* A departing node also tells a few non-neighbours directly, so the news
 * does not depend on the neighbour overlay alone. */
typedef struct farewell {
    mk_node *node;
    mk_departure d;
} farewell;

static void on_farewell_connected(mk_link *link, int status, void *data)
{
    farewell *fw = data;
    if (status == 0) {
        send_hello(fw->node, link);
        send_departure(link, &fw->d);
        mk_link_close(link, MK_CLOSE_GRACEFUL_SHUTDOWN, "departed");
    }
    free(fw);
}

int mk__discovery_depart(mk_node *node)
{
    mk_departure d;
    int sent = 0;
    mk_departure_make(&d, &node->self, &node->key, mk_now_ms());
    node->departure = d;
    node->departed = true;
    /* Every neighbour, ready or not: our hello was the first frame on each
     * link, so the remote reads the departure after it, and one whose
     * hello to us is still in flight is just as much a neighbour. The
     * frames are queued now and the transport's close flushes them ahead
     * of its close frames (link.h, mk_link_close), so the window does not
     * cut them off. */
    for (size_t i = 0; i < node->n_nbrs; i++) {
        send_departure(node->nbrs[i].link, &d);
        sent++;
    }
    for (int k = 0; k < DEPARTURE_EXTRA_PEERS && node->n_peers > 0; k++) {
        mk__peer *p = &node->peers[mk__node_rand(node) % node->n_peers];
        if (p->entry.n_addrs == 0 || is_neighbour(node, &p->entry.peer))
            continue;
        farewell *fw = malloc(sizeof *fw);
        if (!fw)
            break;
        fw->node = node;
        fw->d = d;
        if (mk_node_dial(node, &p->entry.peer, MK__ALPN_ANNOUNCE,
                         on_farewell_connected, fw) == 0)
            sent++;
        else
            free(fw);
    }
    return sent;
}

/* ---- sync: full catalog exchange ----------------------------------------- */

typedef struct sync_op {
    mk_node *node;
    mk_peer_id peer;
    mk__bootstrap *boot; /* the bootstrap slot this answers, or NULL */
    bool initiator, done;
} sync_op;

static void put_snapshot(mk_node *node, mk_buf *b)
{
    int64_t cutoff = mk_now_ms() - (int64_t)node->dc.purge_after_ms;
    size_t n = 1;
    for (size_t i = 0; i < node->n_peers; i++)
        n += node->peers[i].entry.update_ms >= cutoff;
    mk_put_u8(b, MK__MSG_SNAPSHOT);
    mk_put_id(b, &node->network);
    mk_put_varint(b, n);
    mk_put_bytes(b, node->self.wire, node->self.wire_len);
    for (size_t i = 0; i < node->n_peers; i++)
        if (node->peers[i].entry.update_ms >= cutoff)
            mk_put_bytes(b, node->peers[i].entry.wire,
                         node->peers[i].entry.wire_len);
}

static int send_snapshot(mk_node *node, mk_link *link)
{
    mk_buf b;
    mk_buf_init(&b);
    put_snapshot(node, &b);
    int rc = b.err ? b.err : mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
    return rc;
}

static int take_snapshot(mk_node *node, const uint8_t *f, size_t len)
{
    mk_reader r;
    mk_reader_init(&r, f, len);
    if (mk_get_u8(&r) != MK__MSG_SNAPSHOT)
        return MK_EPROTO;
    int rc = take_network(node, &r);
    if (rc < 0)
        return rc;
    size_t n = mk_get_count(&r, 1u << 16, MK_SIG_LEN);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = take_entry(node, &r, NULL, NULL, false, NULL);
    if (rc == 0)
        rc = mk_reader_done(&r);
    return rc;
}

static void mark_synced(mk_node *node, const mk_peer_id *id)
{
    mk__peer *p = mk__node_find(node, id);
    if (p) {
        p->synced = true;
        p->sync_due_mono = 0;
    }
}

static void sync_finished(sync_op *op, bool ok)
{
    mk_node *node = op->node;
    mk__peer *p = mk__node_find(node, &op->peer);
    if (p)
        p->syncing = false;
    if (ok)
        mark_synced(node, &op->peer);
    if (op->boot) {
        op->boot->trying = false;
        if (ok) {
            op->boot->done = true;
        } else {
            op->boot->next_try_mono = mk_mono_ms() + op->boot->backoff_ms;
            op->boot->backoff_ms = op->boot->backoff_ms * 2 >
                                           BOOTSTRAP_BACKOFF_MAX_MS
                                       ? BOOTSTRAP_BACKOFF_MAX_MS
                                       : op->boot->backoff_ms * 2;
        }
    }
    node->ops--;
}

static void on_sync_frame(mk_link *link, const uint8_t *f, size_t len,
                          void *data)
{
    sync_op *op = data;
    mk_node *node = op->node;
    if (op->done) {
        mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION, "one snapshot each");
        return;
    }
    /* The acceptor answers before merging, so its reply is its own view,
     * not an echo of what it was just sent. */
    if (!op->initiator && send_snapshot(node, link) < 0) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "cannot answer");
        return;
    }
    int rc = take_snapshot(node, f, len);
    if (rc < 0) {
        close_for(link, rc);
        return;
    }
    op->done = true;
    mark_synced(node, &op->peer);
    link_rtt_sample(node, link);
    if (op->initiator)
        mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
}

static void on_sync_close(mk_link *link, uint32_t code, int status,
                          void *data)
{
    sync_op *op = data;
    if (op->initiator)
        sync_finished(op, op->done);
    else
        op->node->ops--;
    free(op);
}

static void on_sync_accept(mk_link *link, void *data)
{
    mk_node *node = data;
    if (node->closing) {
        /* A departed node no longer vouches for anyone's entry, its own
         * least of all. */
        mk_link_close(link, MK_CLOSE_GRACEFUL_SHUTDOWN, "departed");
        return;
    }
    sync_op *op = calloc(1, sizeof *op);
    if (!op) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    op->node = node;
    op->peer = *mk_link_peer(link);
    node->ops++;
    mk_link_set_callbacks(link, on_sync_frame, on_sync_close, op);
}

static void on_sync_connected(mk_link *link, int status, void *data)
{
    sync_op *op = data;
    if (status < 0) {
        sync_finished(op, false);
        free(op);
        return;
    }
    mk_link_set_callbacks(link, on_sync_frame, on_sync_close, op);
    if (send_snapshot(op->node, link) < 0)
        mk_link_close(link, MK_CLOSE_CANCELLED, "cannot send");
}

int mk__discovery_sync(mk_node *node, const mk_peer_id *peer,
                       const char *addr, mk__bootstrap *boot)
{
    sync_op *op = calloc(1, sizeof *op);
    if (!op)
        return MK_ENOMEM;
    op->node = node;
    op->peer = *peer;
    op->boot = boot;
    op->initiator = true;
    int rc = addr ? mk_transport_connect(node->transport, peer, addr,
                                         MK__ALPN_SYNC, on_sync_connected, op)
                  : mk_node_dial(node, peer, MK__ALPN_SYNC, on_sync_connected,
                                 op);
    if (rc < 0) {
        free(op);
        return rc;
    }
    mk__peer *p = mk__node_find(node, peer);
    if (p) {
        p->syncing = true;
        p->sync_due_mono = 0;
    }
    node->ops++;
    return 0;
}

/* ---- ping ------------------------------------------------------------------ */

typedef struct ping_op {
    mk_node *node;
    mk_peer_id peer;
    int64_t sent_us;
    bool initiator, answered;
} ping_op;

static void on_ping_frame(mk_link *link, const uint8_t *f, size_t len,
                          void *data)
{
    ping_op *op = data;
    mk_node *node = op->node;
    mk_reader r;
    mk_reader_init(&r, f, len);
    uint8_t kind = mk_get_u8(&r);
    int rc;
    if (!op->initiator && kind == MK__MSG_PING && !op->answered) {
        rc = take_network(node, &r);
        if (rc == 0 && (rc = mk_reader_done(&r)) == 0) {
            mk_buf b;
            mk_buf_init(&b);
            mk_put_u8(&b, MK__MSG_PONG);
            mk_put_bytes(&b, node->self.wire, node->self.wire_len);
            rc = b.err ? b.err : mk_link_send(link, b.data, b.len);
            mk_buf_free(&b);
            op->answered = true;
        }
    } else if (op->initiator && kind == MK__MSG_PONG && !op->answered) {
        int64_t rtt = mk_mono_us() - op->sent_us;
        rc = take_entry(node, &r, NULL, &op->peer, false, NULL);
        if (rc == 0 && (rc = mk_reader_done(&r)) == 0) {
            mk__node_rtt_sample(node, &op->peer, rtt);
            op->answered = true;
            mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
        }
    } else {
        rc = MK_EPROTO;
    }
    if (rc < 0)
        close_for(link, rc);
}

static void ping_done(ping_op *op)
{
    mk__peer *p = mk__node_find(op->node, &op->peer);
    if (op->initiator && p) {
        p->pinging = false;
        p->next_ping_mono =
            mk_mono_ms() +
            jittered(op->node, op->node->dc.rtt_probe_interval_ms, 50);
    }
    op->node->ops--;
    free(op);
}

static void on_ping_close(mk_link *link, uint32_t code, int status,
                          void *data)
{
    ping_done(data);
}

static void on_ping_accept(mk_link *link, void *data)
{
    mk_node *node = data;
    ping_op *op = calloc(1, sizeof *op);
    if (!op) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    op->node = node;
    op->peer = *mk_link_peer(link);
    node->ops++;
    mk_link_set_callbacks(link, on_ping_frame, on_ping_close, op);
}

static void on_ping_connected(mk_link *link, int status, void *data)
{
    ping_op *op = data;
    if (status < 0) {
        ping_done(op);
        return;
    }
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__MSG_PING);
    mk_put_id(&b, &op->node->network);
    mk_link_set_callbacks(link, on_ping_frame, on_ping_close, op);
    op->sent_us = mk_mono_us();
    if (b.err || mk_link_send(link, b.data, b.len) < 0)
        mk_link_close(link, MK_CLOSE_CANCELLED, "cannot send");
    mk_buf_free(&b);
}

static void start_ping(mk_node *node, mk__peer *p)
{
    ping_op *op = calloc(1, sizeof *op);
    if (!op)
        return;
    op->node = node;
    op->peer = p->entry.peer;
    op->initiator = true;
    if (mk_node_dial(node, &p->entry.peer, MK__ALPN_PING, on_ping_connected,
                     op) < 0) {
        free(op);
        p->next_ping_mono =
            mk_mono_ms() + jittered(node, node->dc.rtt_probe_interval_ms, 50);
        return;
    }
    p->pinging = true;
    node->ops++;
}

/* ---- timers -------------------------------------------------------------- */

static void on_announce(uv_timer_t *t)
{
    mk_node *node = t->data;
    /* Re-signing keeps the entry fresh in every catalog (entries older
     * than purge_after are forgotten) and repairs missed gossip. */
    mk_entry_bump(&node->self, mk_now_ms());
    if (mk_entry_sign(&node->self, &node->key) == 0)
        mk__discovery_gossip(node, &node->self, NULL);
    uv_timer_start(&node->announce_timer, on_announce,
                   (uint64_t)jittered(node, node->dc.announce_interval_ms,
                                      node->dc.announce_jitter_pct),
                   0);
}

bool mk__discovery_tick(mk_node *node)
{
    int64_t now = mk_mono_ms();
    bool busy = false;
    mk__node_purge(node);

    for (size_t i = 0; i < node->n_boots; i++) {
        mk__bootstrap *b = &node->boots[i];
        /* Alone again (cut off for longer than purge_after, or everyone
         * left): the catalog has nobody left to dial and nobody knows to
         * dial us, so start over from the bootstrap peers, as mosaik
         * rejoins when it has lost every neighbour (mosaik.md §3.3). */
        if (b->done && node->n_peers == 0) {
            b->done = false;
            b->backoff_ms = 250;
            b->next_try_mono = now;
        }
        busy = busy || !b->done;
        if (b->done || b->trying || now < b->next_try_mono)
            continue;
        if (mk__discovery_sync(node, &b->peer, b->addr, b) == 0)
            b->trying = true;
        else
            b->next_try_mono = now + b->backoff_ms;
    }

    size_t syncing = 0, pinging = 0;
    for (size_t i = 0; i < node->n_peers; i++) {
        syncing += node->peers[i].syncing;
        pinging += node->peers[i].pinging;
    }
    for (size_t i = 0; i < node->n_peers; i++) {
        mk__peer *p = &node->peers[i];
        if (p->sync_due_mono && p->sync_due_mono <= now && !p->synced &&
            !p->syncing && syncing < MAX_SYNCS_IN_FLIGHT) {
            mk_peer_id id = p->entry.peer;
            if (mk__discovery_sync(node, &id, NULL, NULL) == 0)
                syncing++;
            p = mk__node_find(node, &id);
            if (!p) {
                busy = true;
                break; /* the catalog changed under us; next tick */
            }
        }
        busy = busy || (p->sync_due_mono && !p->synced);
        if (p->entry.n_addrs && !p->pinging && p->next_ping_mono <= now &&
            pinging < MAX_PINGS_IN_FLIGHT) {
            /* A probe is a TLS handshake; a peer that gave us a sample
             * within the last interval anyway (a catalog exchange, a
             * neighbour link, group or stream traffic) does not need
             * one. Without this every node pinged every peer within a
             * second of meeting it: N² handshakes right when the
             * first-contact exchanges had just measured the same. */
            int64_t interval = node->dc.rtt_probe_interval_ms;
            mk_link *nl = nbr_link(node, &p->entry.peer);
            if (nl)
                link_rtt_sample(node, nl); /* a neighbour: ask TCP */
            if (p->rtt_at_mono && now - p->rtt_at_mono < interval / 2) {
                p->next_ping_mono =
                    p->rtt_at_mono +
                    jittered(node, node->dc.rtt_probe_interval_ms, 50);
            } else {
                start_ping(node, p);
                pinging++;
            }
        }
    }
    return top_up_neighbours(node) || busy;
}

static void on_tick(uv_timer_t *t)
{
    mk_node *node = t->data;
    /* Armed at the idle pace first, so that work appearing during the
     * tick (mk__discovery_wake) shortens the wait instead of being
     * overridden; mk_node_close, even from a watcher, stops it. */
    uv_timer_start(&node->tick_timer, on_tick, IDLE_TICK_MS, 0);
    if (mk__discovery_tick(node))
        mk__discovery_wake(node);
}

void mk__discovery_wake(mk_node *node)
{
    if (node->started && !node->closing &&
        uv_timer_get_due_in(&node->tick_timer) > TICK_MS)
        uv_timer_start(&node->tick_timer, on_tick, TICK_MS, 0);
}

void mk__discovery_start(mk_node *node)
{
    uv_timer_start(&node->announce_timer, on_announce,
                   (uint64_t)jittered(node, node->dc.announce_interval_ms,
                                      node->dc.announce_jitter_pct),
                   0);
    uv_timer_start(&node->tick_timer, on_tick, 0, 0);
}

int mk__discovery_serve(mk_node *node)
{
    int rc = mk_transport_serve(node->transport, MK__ALPN_ANNOUNCE,
                                on_announce_accept, node);
    if (rc == 0)
        rc = mk_transport_serve(node->transport, MK__ALPN_SYNC,
                                on_sync_accept, node);
    if (rc == 0)
        rc = mk_transport_serve(node->transport, MK__ALPN_PING,
                                on_ping_accept, node);
    return rc;
}

/* ---- dialing a peer by id ------------------------------------------------- */

typedef struct dial_op {
    mk_node *node;
    mk_peer_id peer;
    char alpn[MK_ALPN_MAX];
    char **addrs;
    size_t n_addrs, next;
    mk_connect_cb cb;
    void *data;
} dial_op;

static void dial_free(dial_op *op)
{
    for (size_t i = 0; i < op->n_addrs; i++)
        free(op->addrs[i]);
    free(op->addrs);
    free(op);
}

static void on_dialled(mk_link *link, int status, void *data);

static int dial_next(dial_op *op)
{
    int rc = MK_ENOENT;
    while (op->next < op->n_addrs) {
        rc = mk_transport_connect(op->node->transport, &op->peer,
                                  op->addrs[op->next++], op->alpn, on_dialled,
                                  op);
        if (rc == 0)
            return 0;
    }
    return rc;
}

static void on_dialled(mk_link *link, int status, void *data)
{
    dial_op *op = data;
    /* Another address may work when this one refused, timed out or
     * answered with another key: an address is only where the peer was
     * last seen (a node on 0.0.0.0 lists every interface, and the same
     * private address may be another host's on our side). Only a
     * cancelled transport will not get better. */
    if (status < 0 && status != MK_ECANCELED && op->next < op->n_addrs &&
        dial_next(op) == 0)
        return;
    op->cb(link, status, op->data);
    dial_free(op);
}

int mk_node_dial(mk_node *node, const mk_peer_id *peer, const char *alpn,
                 mk_connect_cb cb, void *data)
{
    const mk__peer *p = mk__node_find(node, peer);
    if (!p || p->entry.n_addrs == 0)
        return MK_ENOENT;
    if (strlen(alpn) >= MK_ALPN_MAX)
        return MK_EINVAL;
    dial_op *op = calloc(1, sizeof *op);
    char **addrs = calloc(p->entry.n_addrs, sizeof *addrs);
    if (!op || !addrs) {
        free(op);
        free(addrs);
        return MK_ENOMEM;
    }
    op->node = node;
    op->peer = *peer;
    strcpy(op->alpn, alpn);
    op->addrs = addrs;
    op->cb = cb;
    op->data = data;
    for (size_t i = 0; i < p->entry.n_addrs; i++) {
        if (!(addrs[i] = strdup(p->entry.addrs[i]))) {
            dial_free(op);
            return MK_ENOMEM;
        }
        op->n_addrs++;
    }
    int rc = dial_next(op);
    if (rc < 0)
        dial_free(op);
    return rc;
}
