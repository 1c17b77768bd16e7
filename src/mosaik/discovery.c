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
 *    A neighbour re-announces itself on the link every announce period,
 *    so a link that says nothing for idle_timeout (three of the longest
 *    periods), or sends no hello within HELLO_TIMEOUT_MS, is closed; a
 *    remote holds at most one inbound link (a newer one replaces it), and
 *    when the inbound slots are full a remote address holding more of
 *    them than the newcomer's gives one up, so one host cannot take them
 *    all. Announce 1.1 adds anti-entropy (digests, see below) and RTT
 *    pings on the link, so that neither catalogs nor RTTs cost a new
 *    handshake per peer.
 *  - sync: a full catalog exchange, run with the bootstrap peers until
 *    one answers, with a neighbour that speaks announce 1.0 only (an
 *    older node), and when asked (mk_node_sync_with). mosaik also runs
 *    it on first contact with every peer: N² handshakes and N³ entries
 *    across a network, which digests with a few neighbours replace. Each side
 *    sends its snapshot as SNAPSHOT chunks (network, tier, count,
 *    entries: at most MK__SNAPSHOT_CHUNK_ENTRIES entries and about
 *    MK__SNAPSHOT_CHUNK_BYTES each) followed by SNAPSHOT_END (network,
 *    the number of entries sent), paced by the link's send queue, so no
 *    catalog is ever too large to answer with. Its own entry and the
 *    peers it verified come first (tier 0), then those its bootstrap
 *    peers vouched for (1), then those it only heard of (2): a receiver
 *    whose bounds cut the snapshot short keeps the peers that matter, and
 *    takes tiers 0 and 1 of a bootstrap peer's snapshot as vouched for
 *    (mk__peer.vouched). The initiator starts; the acceptor starts its
 *    answer on the first chunk, before merging it (its view, not an
 *    echo); the initiator closes with SUCCESS once both ends are through.
 *    A receiver takes at most max_peers + 1 entries and about
 *    max_catalog_bytes per exchange, and a sync link silent for
 *    SYNC_IDLE_MS is closed.
 *  - ping: the peer's current signed entry and a round-trip time, by
 *    dialling: used by dial-only nodes, and to verify peers (mk__origin)
 *    that are inbound neighbours or while the catalog is filling up.
 *
 * Entries are only ever stored after their signature verifies (entry.c),
 * so every path may pass entries along without trusting the sender.
 * Every path also goes through the catalog's rules (node.c,
 * mk__node_judge): entries larger than MK_ENTRY_MAX_WIRE break the
 * protocol, entries dated beyond the drift window ahead are refused,
 * whatever brought them, and what a remote passes on is charged to its
 * allowance of new peers.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/codec.h"
#include "mosaik/error.h"
#include "node_internal.h"

/* The tick runs every TICK_MS while discovery has work due soon (a
 * bootstrap to retry, first-contact exchanges, neighbours to find) and
 * every IDLE_TICK_MS once settled, when all that is left is purging,
 * RTT probes and timeouts, all on the scale of seconds. Ten wake-ups a
 * second cost a settled node more CPU than everything else it does but
 * its probes; whatever brings new work (a new peer, a lost neighbour)
 * calls mk__discovery_wake. */
#define TICK_MS 100
#define IDLE_TICK_MS 1000
#define MAX_SYNCS_IN_FLIGHT 8
#define MAX_PINGS_IN_FLIGHT 4
#define NEIGHBOUR_QUEUE_LIMIT (1u << 20)
#define BOOTSTRAP_BACKOFF_MAX_MS 5000
/* After a peer refused us as a neighbour (on_nbr_close). */
#define NBR_BACKOFF_MIN_MS 1000
#define NBR_BACKOFF_MAX_MS 60000
#define DEPARTURE_EXTRA_PEERS 4
/* A neighbour sends its hello as its first frame: one that has not within
 * this long (the transport's handshake already took up to 5 s) is not
 * going to. */
#define HELLO_TIMEOUT_MS 10000
/* A not-ready inbound neighbour older than this may be evicted for a
 * newcomer when the slots are full. */
#define HELLO_GRACE_MS 2000
/* A sync link on which nothing moved (no chunk in, none out) this long. */
#define SYNC_IDLE_MS 10000
/* mosaik's ping timeout (mosaik.md §3.5). */
#define PING_TIMEOUT_MS 5000
/* Inbound exchanges served at once with our whole catalog. */
#define MAX_SYNC_ACCEPTS 32
/* Past that, an exchange is answered with a referral: our own entry and
 * REFERRAL_PEERS peers picked at random, instead of the catalog. When a
 * crowd starts at once with one bootstrap, turning the overflow away
 * made each refused node retry with a growing backoff (a TLS handshake
 * wasted each time, and seconds of waiting for the last ones), alone
 * until then; with a referral it has neighbours to dial at once, and
 * their digests bring it the catalog. A referral costs a frame of a few
 * KiB; past MAX_REFERRALS at once exchanges are turned away (the dialer
 * retries a first-contact exchange a few times, a bootstrap forever). */
#define MAX_REFERRALS 128
#define REFERRAL_PEERS 16
#define MAX_PING_ACCEPTS 64
/* First-contact exchanges tried with one peer before gossip alone has to
 * do. */
#define SYNC_TRIES 3
/* A snapshot is queued while the link holds less than this unsent. */
#define SNAPSHOT_HIGH_WATER (512u << 10)
/* One anti-entropy round (a digest to one random neighbour) this often,
 * jittered by half: it only repairs what the flood missed. MK__NEWS_MS
 * (node_internal.h) is this long so that a version repaired within one
 * round of its signing floods on. */
#define AE_INTERVAL_MS 10000
/* While the catalog is still gaining peers (within AE_INTERVAL_MS of the
 * last), a round this often instead: a node that joined by a referral,
 * or whose links came up after a flood passed, can lack what its
 * neighbours lacked too when their first digests crossed, and a repair
 * of an older version is not forwarded; waiting the settled pace for it
 * made the last node of a crowd of 128 converge ten seconds after the
 * others. */
#define AE_GROWING_MS 1000

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
static int take_digest(mk_node *node, mk__neighbour *nb, mk_reader *r);
static int take_repair(mk_node *node, mk__neighbour *nb, mk_reader *r);
static int take_want(mk_node *node, mk__neighbour *nb, mk_reader *r);
static void send_digest(mk_node *node, mk_link *link, uint8_t flags,
                        const mk_peer_id *lo, const mk_peer_id *hi);

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
 * tombstoned, stale, dated ahead, of another network, from a source whose
 * allowance is spent or for a full catalog (mk__node_judge). Its header
 * is read without trusting it, which is safe because only refusals are
 * decided here: an entry that may be kept is always decoded and verified
 * first. It matters because the same entry arrives many times (a
 * snapshot repeats the whole catalog, a flood comes in from every
 * neighbour), and checking those Ed25519 signatures again was the
 * largest CPU cost of a converging node; and a flood past its allowance
 * costs a header read, not a signature check. The header is entry.h's
 * wire form: format byte 1, network, peer, start, update. */
static bool refused_unread(mk_node *node, const uint8_t *wire, size_t n,
                           const mk_peer_id *expect, const mk__origin *o,
                           int64_t *start)
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
    mk__upsert j = mk__node_judge(node, &net, &peer, start_ms, update_ms, o);
    if (j == MK__UPSERT_NEW || j == MK__UPSERT_UPDATED)
        return false;
    mk__node_count_refusal(node, j);
    /* The link is authenticated as `via`: when that is the peer and we
     * dialled it, it is verified whatever this version is worth. */
    if (o->reached && mk_id_eq(o->via, &peer))
        mk__node_verified(node, &peer);
    if (start)
        *start = start_ms;
    return true;
}

int mk__discovery_read_entry(mk_reader *r, const uint8_t **wire, size_t *n)
{
    *wire = mk_get_bytes(r, n, SIZE_MAX);
    if (!*wire)
        return MK_EDECODE;
    return *n > MK_ENTRY_MAX_WIRE ? MK_EMSGSIZE : 0;
}

int mk__snapshot_chunk_open(mk_reader *r, mk_id *network, uint8_t *tier,
                            size_t *count)
{
    mk_get_id(r, network);
    *tier = mk_get_u8(r);
    *count = mk_get_count(r, MK__SNAPSHOT_CHUNK_ENTRIES_IN, MK_SIG_LEN);
    return r->err || *tier > 2 ? MK_EDECODE : 0;
}

/* Decodes a signed entry from `r` and offers it to the catalog. The
 * entry must come from `expect` when that is not NULL; `o` says where it
 * came from; `start` and `peer` (may be NULL) receive its start_ms and the
 * PeerId it claims (only a stored entry is verified). `gossip` applies
 * mosaik's gossip rule, |now - update| within the drift (a snapshot or a
 * pong may carry entries up to purge_after old; entries ahead are
 * refused on every path by the catalog). Returns 0 or a negative code
 * for a message that breaks the protocol: MK_EMSGSIZE for an entry over
 * MK_ENTRY_MAX_WIRE, which nobody honest signs. */
static int take_entry(mk_node *node, mk_reader *r, const mk__origin *o,
                      const mk_peer_id *expect, bool gossip, int64_t *start,
                      mk_peer_id *peer)
{
    size_t n;
    const uint8_t *wire;
    int rc = mk__discovery_read_entry(r, &wire, &n);
    if (rc == MK_EMSGSIZE)
        node->stats.refused_oversize++;
    if (rc < 0)
        return rc;
    if (peer) {
        /* The claimed peer, for the caller's bookkeeping only (nothing
         * is stored unverified). */
        mk_reader h;
        mk_reader_init(&h, wire, n);
        mk_get_u8(&h);
        mk_get_id(&h, peer);
        mk_get_id(&h, peer);
    }
    if (refused_unread(node, wire, n, expect, o, start))
        return 0;
    mk_peer_entry e;
    rc = mk_entry_decode(&e, wire, n);
    if (rc < 0)
        return rc;
    if (expect && !mk_id_eq(expect, &e.peer)) {
        mk_entry_free(&e);
        return MK_EWRONG_PEER;
    }
    if (start)
        *start = e.start_ms;
    if (gossip && !within_drift(node, e.update_ms)) {
        node->stats.refused_drift++;
        if (o->reached && mk_id_eq(o->via, &e.peer))
            mk__node_verified(node, &e.peer);
        mk_entry_free(&e); /* clocks too far apart to judge freshness */
        return 0;
    }
    mk__node_upsert(node, &e, o);
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
                  rc == MK_EMSGSIZE ? "entry larger than 16 KiB"
                                    : mk_strerror(rc));
}

/* ---- exchanges watched for silence ----------------------------------------
 * Sync and ping links are listed on the node while open; the tick closes
 * those on which nothing moved for their timeout, so a remote that opens
 * an exchange and goes quiet holds nothing for long. */

static void exchange_add(mk_node *node, mk__exchange *x, mk_link *link,
                         uint32_t timeout_ms)
{
    x->link = link;
    x->active_mono = mk_mono_ms();
    x->timeout_ms = timeout_ms;
    x->expired = false;
    x->prev = NULL;
    x->next = node->exchanges;
    if (x->next)
        x->next->prev = x;
    node->exchanges = x;
}

static void exchange_remove(mk_node *node, mk__exchange *x)
{
    if (!x->link)
        return;
    if (x->prev)
        x->prev->next = x->next;
    else
        node->exchanges = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->link = NULL;
    x->prev = x->next = NULL;
}

static void expire_exchanges(mk_node *node, int64_t now)
{
    for (mk__exchange *x = node->exchanges; x; x = x->next) {
        if (x->expired || now - x->active_mono <= (int64_t)x->timeout_ms)
            continue;
        /* The close callback, which unlists it, comes later. */
        x->expired = true;
        node->stats.links_idle++;
        mk_link_close(x->link, MK_CLOSE_CANCELLED, "idle");
    }
}

/* ---- announce: neighbour links ------------------------------------------ */

static mk__neighbour *nbr_of(mk_node *node, mk_link *link)
{
    for (size_t i = 0; i < node->n_nbrs; i++)
        if (node->nbrs[i].link == link)
            return &node->nbrs[i];
    return NULL;
}

/* The ready neighbour link to `id`, or NULL. */
static mk__neighbour *nbr_ready(mk_node *node, const mk_peer_id *id)
{
    for (size_t i = 0; i < node->n_nbrs; i++)
        if (node->nbrs[i].ready && !node->nbrs[i].closing &&
            mk_id_eq(&node->nbrs[i].peer, id))
            return &node->nbrs[i];
    return NULL;
}

static bool is_neighbour(mk_node *node, const mk_peer_id *id)
{
    for (size_t i = 0; i < node->n_nbrs; i++)
        if (!node->nbrs[i].closing && mk_id_eq(&node->nbrs[i].peer, id))
            return true;
    return false;
}

/* Closes a neighbour link from our side; it stays listed (and ignored)
 * until its close callback. */
static void close_nbr(mk__neighbour *nb, const char *why)
{
    nb->closing = true;
    mk_link_close(nb->link, MK_CLOSE_SUCCESS, why);
}

static void on_nbr_frame(mk_link *link, const uint8_t *f, size_t len,
                         void *data)
{
    mk_node *node = data;
    mk__neighbour *nb = nbr_of(node, link);
    if (nb && nb->closing)
        return; /* on its way out: nothing it says matters now */
    if (!nb || len == 0) {
        mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION, "empty frame");
        return;
    }
    nb->rx_mono = mk_mono_ms();
    mk_reader r;
    mk_reader_init(&r, f, len);
    uint8_t kind = mk_get_u8(&r);
    int rc = 0;
    mk_peer_id peer = nb->peer;
    mk__origin o = {.from = link, .via = &peer, .reached = nb->outbound};
    if (kind == MK__MSG_HELLO) {
        int64_t start = -1;
        rc = take_network(node, &r);
        if (rc == 0)
            rc = take_entry(node, &r, &o, &peer, true, &start, NULL);
        /* The upsert ran watchers, which may have closed links. */
        if (rc == 0 && (nb = nbr_of(node, link))) {
            bool was_ready = nb->ready;
            nb->ready = true;
            nb->hello_start_ms = start;
            if (nb->outbound) {
                mk__node_verified(node, &peer);
                mk__peer *pp = mk__node_find(node, &peer);
                if (pp)
                    pp->nbr_backoff_ms = 0; /* took us: forget refusals */
            }
            if (!was_ready) {
                link_rtt_sample(node, link);
                replay_departures(node, link);
                mk__peer *pp = mk__node_find(node, &peer);
                if (nb->v11) {
                    /* Both ends send theirs: each then pushes what the
                     * other lacks. This is the first-contact exchange
                     * now, with a few random peers instead of all. */
                    send_digest(node, link, 0, NULL, NULL);
                } else if (nb->outbound && pp && !pp->synced &&
                           !pp->syncing) {
                    /* An older node (it turned 1.1 away) has no digests:
                     * exchange catalogs as 1.0 did. An inbound 1.0 link
                     * needs nothing: that node runs its own exchange. */
                    pp->sync_due_mono =
                        mk_mono_ms() + (int64_t)(mk__node_rand(node) % 300);
                    mk__discovery_wake(node);
                }
            }
        }
    } else if (!nb->ready) {
        rc = MK_EPROTO; /* nothing before the hello */
    } else if (nb->v11 && kind == MK__MSG_DIGEST) {
        rc = take_digest(node, nb, &r);
    } else if (nb->v11 && kind == MK__MSG_WANT) {
        rc = take_want(node, nb, &r);
    } else if (nb->v11 && kind == MK__MSG_REPAIR) {
        rc = take_repair(node, nb, &r);
    } else if (nb->v11 && kind == MK__MSG_LINK_PING) {
        uint64_t nonce = mk_get_varint(&r);
        if (r.err) {
            rc = MK_EDECODE;
        } else if (mk_link_queued(link) <= NEIGHBOUR_QUEUE_LIMIT) {
            mk_buf b;
            mk_buf_init(&b);
            mk_put_u8(&b, MK__MSG_LINK_PONG);
            mk_put_varint(&b, nonce);
            if (!b.err)
                mk_link_send(link, b.data, b.len);
            mk_buf_free(&b);
        }
    } else if (nb->v11 && kind == MK__MSG_LINK_PONG) {
        uint64_t nonce = mk_get_varint(&r);
        if (r.err) {
            rc = MK_EDECODE;
        } else if (nb->ping_nonce && nonce == nb->ping_nonce) {
            nb->ping_nonce = 0;
            mk__node_rtt_sample(node, &peer, mk_mono_us() - nb->ping_sent_us);
        }
    } else if (kind == MK__MSG_ENTRY) {
        rc = take_entry(node, &r, &o, NULL, true, NULL, NULL);
    } else if (kind == MK__MSG_DEPARTURE) {
        size_t n;
        const uint8_t *w = mk_get_bytes(&r, &n, MK_DEPARTURE_WIRE_LEN);
        mk_departure d;
        rc = w ? mk_departure_decode(&d, w, n) : MK_EDECODE;
        /* The drift and dates are judged with the catalog's rules. */
        if (rc == 0 && mk_id_eq(&d.network, &node->network) &&
            !mk_id_eq(&d.peer, &node->key.pub))
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
        /* Closed before its hello: it refused us (full). Redialling it on
         * every fast tick cost both sides a TLS handshake each time: with
         * 64 dial-only clients on three members, most of their CPU. */
        mk__peer *p = nb.outbound && !nb.ready && !node->closing
                          ? mk__node_find(node, &nb.peer)
                          : NULL;
        if (p && nb.v11 && code == MK_CLOSE_INVALID_ALPN) {
            /* An older node: it speaks announce 1.0 only. */
            p->legacy = true;
        } else if (p) {
            p->nbr_backoff_ms = p->nbr_backoff_ms
                                    ? (p->nbr_backoff_ms >= NBR_BACKOFF_MAX_MS / 2
                                           ? NBR_BACKOFF_MAX_MS
                                           : 2 * p->nbr_backoff_ms)
                                    : NBR_BACKOFF_MIN_MS;
            p->nbr_not_before = mk_mono_ms() + p->nbr_backoff_ms;
        }
        mk__discovery_wake(node); /* find a replacement soon */
        return;
    }
}

/* "ip" of "ip:port" or "[ip6]:port". */
static void host_of(const char *addr, char *out, size_t cap)
{
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, addr, n);
    out[n] = '\0';
}

static int add_nbr(mk_node *node, mk_link *link, bool outbound, bool v11)
{
    if (node->n_nbrs == node->cap_nbrs) {
        size_t cap = node->cap_nbrs ? 2 * node->cap_nbrs : 8;
        mk__neighbour *grown = realloc(node->nbrs, cap * sizeof *grown);
        if (!grown)
            return MK_ENOMEM;
        node->nbrs = grown;
        node->cap_nbrs = cap;
    }
    int64_t now = mk_mono_ms();
    mk__neighbour *nb = &node->nbrs[node->n_nbrs++];
    *nb = (mk__neighbour){.link = link,
                          .peer = *mk_link_peer(link),
                          .hello_start_ms = -1,
                          .since_mono = now,
                          .rx_mono = now,
                          .outbound = outbound,
                          .v11 = v11};
    host_of(mk_link_remote_addr(link), nb->ip, sizeof nb->ip);
    mk_link_set_callbacks(link, on_nbr_frame, on_nbr_close, node);
    send_hello(node, link);
    return 0;
}

static size_t inbound_from(const mk_node *node, const char *ip)
{
    size_t n = 0;
    for (size_t i = 0; i < node->n_nbrs; i++)
        n += !node->nbrs[i].outbound && !node->nbrs[i].closing &&
             strcmp(node->nbrs[i].ip, ip) == 0;
    return n;
}

/* The inbound neighbour to give up for a newcomer from `ip` when the
 * slots are full, or NULL to refuse the newcomer: one that has not sent
 * its hello well after connecting (the oldest), else, when some address
 * holds at least two more inbound links than the newcomer's, the
 * quietest link of the address holding the most. Links from one host can
 * therefore fill the slots only while nobody else asks for one. */
static mk__neighbour *inbound_to_evict(mk_node *node, const char *ip)
{
    int64_t now = mk_mono_ms();
    mk__neighbour *best = NULL;
    for (size_t i = 0; i < node->n_nbrs; i++) {
        mk__neighbour *nb = &node->nbrs[i];
        if (nb->outbound || nb->closing || nb->ready ||
            now - nb->since_mono < HELLO_GRACE_MS)
            continue;
        if (!best || nb->since_mono < best->since_mono)
            best = nb;
    }
    if (best)
        return best;
    size_t mine = inbound_from(node, ip), most = 0;
    const char *top = NULL;
    for (size_t i = 0; i < node->n_nbrs; i++) {
        const mk__neighbour *nb = &node->nbrs[i];
        if (nb->outbound || nb->closing)
            continue;
        size_t c = inbound_from(node, nb->ip);
        if (c > most) {
            most = c;
            top = nb->ip;
        }
    }
    if (!top || mine + 2 > most)
        return NULL;
    for (size_t i = 0; i < node->n_nbrs; i++) {
        mk__neighbour *nb = &node->nbrs[i];
        if (nb->outbound || nb->closing || strcmp(nb->ip, top) != 0)
            continue;
        if (!best || nb->rx_mono < best->rx_mono)
            best = nb;
    }
    return best;
}

static void announce_accept(mk_node *node, mk_link *link, bool v11)
{
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
    /* One inbound link per remote: a newer one replaces the older (the
     * remote restarted, or redialled over a link we have not yet seen
     * die), so however often it dials it holds one slot. */
    const mk_peer_id *peer = mk_link_peer(link);
    size_t live = 0;
    for (size_t i = 0; i < node->n_nbrs; i++) {
        mk__neighbour *nb = &node->nbrs[i];
        if (!nb->closing && !nb->outbound && mk_id_eq(&nb->peer, peer))
            close_nbr(nb, "replaced");
        live += !nb->closing;
    }
    /* Neighbour links are capped so one node cannot be everyone's hub; a
     * refused dialer picks someone else. */
    if (live >= 3 * (size_t)node->dc.neighbours) {
        char ip[64];
        host_of(mk_link_remote_addr(link), ip, sizeof ip);
        mk__neighbour *give = inbound_to_evict(node, ip);
        node->stats.nbrs_refused++;
        if (!give) {
            mk_link_close(link, MK_CLOSE_SUCCESS, "enough neighbours");
            return;
        }
        close_nbr(give, "making room");
    }
    if (add_nbr(node, link, false, v11) < 0)
        mk_link_close(link, MK_CLOSE_SUCCESS, "enough neighbours");
}

static void on_announce_accept(mk_link *link, void *data)
{
    announce_accept(data, link, false);
}

static void on_announce_accept_v11(mk_link *link, void *data)
{
    announce_accept(data, link, true);
}

/* Neighbour links that never said hello, or went silent: an honest
 * neighbour's hello is its first frame, and it re-announces itself on
 * the link every announce period. */
static void expire_neighbours(mk_node *node, int64_t now)
{
    for (size_t i = 0; i < node->n_nbrs; i++) {
        mk__neighbour *nb = &node->nbrs[i];
        if (nb->closing)
            continue;
        if (nb->ready ? now - nb->rx_mono > (int64_t)node->dc.idle_timeout_ms
                      : now - nb->since_mono > HELLO_TIMEOUT_MS) {
            node->stats.links_idle++;
            close_nbr(nb, "idle");
        }
    }
}

/* An outbound neighbour dial; the peer is marked so that one tick's
 * random picks (or the next tick's) do not dial it twice. */
typedef struct nbr_dial {
    mk_node *node;
    mk_peer_id peer;
    bool v11;
} nbr_dial;

static void on_nbr_connected(mk_link *link, int status, void *data)
{
    nbr_dial *op = data;
    mk_node *node = op->node;
    mk__peer *p = mk__node_find(node, &op->peer);
    if (p)
        p->nbr_dialing = false;
    node->nbr_dials--;
    bool v11 = op->v11;
    free(op);
    if (status < 0)
        return;
    if (node->closing || add_nbr(node, link, true, v11) < 0)
        mk_link_close(link, MK_CLOSE_SUCCESS, "closing");
}

/* Whether `p` is verified or vouched for: ranked first for exchanges,
 * probes and neighbour links. */
static bool preferred(const mk_node *node, const mk__peer *p)
{
    return p->vouched || mk__node_is_verified(node, p);
}

/* Whether the catalog is half full (in peers or bytes): from there on a
 * node verifies the peers it holds (probes), since verification decides
 * what a full catalog keeps, and prefers verified or vouched-for peers as
 * neighbours. */
static bool catalog_pressure(const mk_node *node)
{
    return node->n_peers >= node->dc.max_peers / 2 ||
           node->catalog_bytes >= node->dc.max_catalog_bytes / 2;
}

/* A random peer that could be dialled as a neighbour; NULL when there is
 * none. Under pressure (a flood may be filling the catalog) preferred
 * peers come first. Not otherwise: a node joining knows few preferred
 * peers (those its bootstrap peer verified: its own neighbours), and if
 * every newcomer dialled those first their slots would be full and the
 * overlay a star around them. */
static mk__peer *neighbour_candidate(mk_node *node)
{
    int64_t now = mk_mono_ms();
    bool rank = catalog_pressure(node);
    for (int round = 0; round < 2; round++) {
        size_t n = 0;
        for (size_t i = 0; i < node->n_peers; i++) {
            const mk__peer *p = &node->peers[i];
            n += p->entry.n_addrs && !p->nbr_dialing &&
                 p->nbr_not_before <= now &&
                 (!rank || preferred(node, p) == (round == 0)) &&
                 !is_neighbour(node, &p->entry.peer);
        }
        if (n == 0)
            continue;
        size_t k = mk__node_rand(node) % n;
        for (size_t i = 0; i < node->n_peers; i++) {
            mk__peer *p = &node->peers[i];
            if (p->entry.n_addrs && !p->nbr_dialing &&
                p->nbr_not_before <= now &&
                (!rank || preferred(node, p) == (round == 0)) &&
                !is_neighbour(node, &p->entry.peer) && k-- == 0)
                return p;
        }
    }
    return NULL;
}

/* Whether a node with these links should dial another neighbour: while
 * fewer than half of its `neighbours` links are of its own choosing, and
 * then while it has fewer in all. Inbound links count (a link carries the
 * flood both ways, and each link is a handshake: counting only our own
 * picks made every node dial all five, ten links a node and six
 * handshakes each to converge); the half we pick ourselves keeps a node
 * that strangers dial from being surrounded by them. A node that joined
 * with a crowd is dialled by those who come after it, so it gives them
 * MK__NBR_INBOUND_WAIT_MS before dialling the rest itself. */
bool mk__nbr_short(const mk_node *node, size_t outbound, size_t inbound,
                   int64_t now_mono)
{
    size_t want = node->dc.neighbours, own = outbound + node->nbr_dials;
    if (own < (want + 1) / 2)
        return true;
    return own + inbound < want &&
           now_mono - node->started_mono >= MK__NBR_INBOUND_WAIT_MS;
}

/* Dials neighbours while there are fewer than wanted. Returns true when
 * still short and some peer could yet be dialled (the tick stays fast). */
static bool top_up_neighbours(mk_node *node)
{
    size_t outbound = 0, inbound = 0;
    for (size_t i = 0; i < node->n_nbrs; i++) {
        const mk__neighbour *nb = &node->nbrs[i];
        if (nb->closing)
            continue;
        if (nb->outbound)
            outbound++;
        else
            inbound += nb->ready; /* a hello: a neighbour, not a hopeful */
    }
    int64_t now = mk_mono_ms();
    if (!mk__nbr_short(node, outbound, inbound, now) || node->n_peers == 0)
        return false;
    /* A few random picks per tick (neighbour_candidate); peers without
     * addresses (dial-only nodes) cannot be neighbours. */
    for (int tries = 0;
         tries < 8 && mk__nbr_short(node, outbound, inbound, now);
         tries++) {
        mk__peer *p = neighbour_candidate(node);
        if (!p)
            break;
        nbr_dial *op = malloc(sizeof *op);
        if (!op)
            return true;
        op->node = node;
        op->peer = p->entry.peer;
        op->v11 = !p->legacy;
        if (mk_node_dial(node, &p->entry.peer,
                         op->v11 ? MK__ALPN_ANNOUNCE_V11 : MK__ALPN_ANNOUNCE,
                         on_nbr_connected, op) == 0) {
            p->nbr_dialing = true;
            node->nbr_dials++;
        } else {
            free(op);
        }
    }
    return mk__nbr_short(node, outbound, inbound, now) &&
           neighbour_candidate(node);
}

void mk__discovery_gossip(mk_node *node, const mk_peer_entry *e,
                          mk_link *except)
{
    for (size_t i = 0; i < node->n_nbrs; i++) {
        mk__neighbour *nb = &node->nbrs[i];
        if (nb->link == except || !nb->ready || nb->closing ||
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
            !node->nbrs[i].closing &&
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
        if (!node->nbrs[i].closing && mk_id_eq(&node->nbrs[i].peer, id))
            close_nbr(&node->nbrs[i], "departed");
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

/* ---- anti-entropy: digests over neighbour links (announce 1.1) ----------
 * A node's catalog and its own entry, in PeerId order, are summarised as
 * (peer, start, update) triples, ~44 bytes each, in DIGEST frames that
 * each cover a range [lo, hi) of the id space. The receiver merges the
 * range with its own and asks (WANT) for what is newer there and its
 * catalog would take; the sender answers with REPAIR frames (signed
 * entries, verified by their own signatures like any other). Entries
 * move only when asked for, so what a full catalog turns away is not
 * sent again every round. When the sender asked (flag bit 0) and the
 * receiver holds something the sender lacks, the receiver's own digest of
 * that range follows, and the sender pulls in turn. Both ends of a new neighbour link send a digest once it is
 * ready, which is what makes a joining node whole from a few random
 * peers; after that one round every AE_INTERVAL_MS with one random
 * neighbour catches whatever the flood missed. */

/* Our catalog with our own entry merged in at its place: k in
 * [0, n_peers] (ordered by PeerId). */
static const mk_peer_entry *merged_at(const mk_node *node, size_t self_at,
                                      size_t k)
{
    if (k == self_at)
        return &node->self;
    return &node->peers[k < self_at ? k : k - 1].entry;
}

static bool id_below(const mk_peer_id *id, const mk_peer_id *hi)
{
    return !hi || mk_id_cmp(id, hi) < 0;
}

/* Sends our digest of [lo, hi) (lo NULL: from the start; hi NULL: to the
 * end), split into frames of at most MK__DIGEST_ITEMS triples. */
static void send_digest(mk_node *node, mk_link *link, uint8_t flags,
                        const mk_peer_id *lo, const mk_peer_id *hi)
{
    static const mk_peer_id zero;
    size_t self_at = mk__node_after(node, &node->self.peer);
    size_t total = node->n_peers + 1;
    size_t per = node->max_frame / 2 / 50;
    if (per > MK__DIGEST_ITEMS)
        per = MK__DIGEST_ITEMS;
    if (per == 0)
        per = 1;
    size_t k = 0;
    while (k < total && lo && mk_id_cmp(&merged_at(node, self_at, k)->peer,
                                        lo) < 0)
        k++;
    mk_peer_id from = lo ? *lo : zero;
    for (;;) {
        size_t end = k;
        while (end < total && end - k < per &&
               id_below(&merged_at(node, self_at, end)->peer, hi))
            end++;
        /* This frame's range stops where the next frame's first item
         * starts, or at the caller's hi. */
        bool more = end < total && end - k == per &&
                    id_below(&merged_at(node, self_at, end)->peer, hi);
        const mk_peer_id *upto =
            more ? &merged_at(node, self_at, end)->peer : hi;
        mk_buf b;
        mk_buf_init(&b);
        mk_put_u8(&b, MK__MSG_DIGEST);
        mk_put_u8(&b, (uint8_t)(flags | (upto ? 0 : 2)));
        mk_put_id(&b, &from);
        mk_put_id(&b, upto ? upto : &zero);
        mk_put_varint(&b, end - k);
        for (size_t i = k; i < end; i++) {
            const mk_peer_entry *e = merged_at(node, self_at, i);
            mk_put_id(&b, &e->peer);
            mk_put_i64(&b, e->start_ms);
            mk_put_i64(&b, e->update_ms);
        }
        if (!b.err)
            mk_link_send(link, b.data, b.len);
        mk_buf_free(&b);
        if (!more)
            return;
        from = *upto;
        k = end;
    }
}

/* REPAIR frames, filled by repair_add and sent by repair_flush. */
typedef struct repair {
    mk_buf body;
    size_t n;
    bool stopped; /* the link's queue is full: the next round resumes */
} repair;

static void repair_flush(mk_node *node, mk_link *link, repair *rp)
{
    if (rp->n > 0 && !rp->body.err) {
        mk_buf b;
        mk_buf_init(&b);
        mk_put_u8(&b, MK__MSG_REPAIR);
        mk_put_varint(&b, rp->n);
        mk_put_raw(&b, rp->body.data, rp->body.len);
        if (!b.err)
            mk_link_send(link, b.data, b.len);
        mk_buf_free(&b);
    }
    mk_buf_free(&rp->body);
    mk_buf_init(&rp->body);
    rp->n = 0;
    if (mk_link_queued(link) > NEIGHBOUR_QUEUE_LIMIT)
        rp->stopped = true;
}

static void repair_add(mk_node *node, mk_link *link, repair *rp,
                       const mk_peer_entry *e, int64_t cutoff)
{
    if (rp->stopped || e->update_ms < cutoff)
        return; /* the remote would refuse it as stale */
    size_t chunk_bytes = node->max_frame / 2 < MK__SNAPSHOT_CHUNK_BYTES
                             ? node->max_frame / 2
                             : MK__SNAPSHOT_CHUNK_BYTES;
    mk_put_bytes(&rp->body, e->wire, e->wire_len);
    rp->n++;
    if (rp->n >= MK__SNAPSHOT_CHUNK_ENTRIES || rp->body.len >= chunk_bytes)
        repair_flush(node, link, rp);
}

/* WANT frames: the ids a digest showed us we lack. */
typedef struct want {
    mk_buf ids;
    size_t n;
} want;

static void want_flush(mk_link *link, want *w)
{
    if (w->n > 0 && !w->ids.err) {
        mk_buf b;
        mk_buf_init(&b);
        mk_put_u8(&b, MK__MSG_WANT);
        mk_put_varint(&b, w->n);
        mk_put_raw(&b, w->ids.data, w->ids.len);
        if (!b.err)
            mk_link_send(link, b.data, b.len);
        mk_buf_free(&b);
    }
    mk_buf_free(&w->ids);
    mk_buf_init(&w->ids);
    w->n = 0;
}

int mk__digest_open(mk_reader *r, uint8_t *flags, mk_peer_id *lo,
                    mk_peer_id *hi, bool *hi_end, size_t *count)
{
    *flags = mk_get_u8(r);
    mk_get_id(r, lo);
    mk_get_id(r, hi);
    /* An item is a peer and two zigzag varints: 34 bytes at least. */
    *count = mk_get_count(r, MK__DIGEST_ITEMS_IN, 34);
    *hi_end = (*flags & 2) != 0;
    return r->err || *flags > 3 ? MK_EDECODE : 0;
}

int mk__digest_item(mk_reader *r, const mk_peer_id *lo, const mk_peer_id *hi,
                    const mk_peer_id *prev, mk_peer_id *id, int64_t *start,
                    int64_t *update)
{
    mk_get_id(r, id);
    *start = mk_get_i64(r);
    *update = mk_get_i64(r);
    if (r->err || mk_id_cmp(id, lo) < 0 || !id_below(id, hi) ||
        (prev && mk_id_cmp(id, prev) <= 0))
        return MK_EDECODE; /* out of its range, or out of order */
    return 0;
}

int mk__want_open(mk_reader *r, size_t *count)
{
    *count = mk_get_count(r, MK__DIGEST_ITEMS_IN, 32);
    return r->err ? MK_EDECODE : 0;
}

int mk__repair_open(mk_reader *r, size_t *count)
{
    *count = mk_get_count(r, MK__SNAPSHOT_CHUNK_ENTRIES_IN, MK_SIG_LEN);
    return r->err ? MK_EDECODE : 0;
}

static int take_digest(mk_node *node, mk__neighbour *nb, mk_reader *r)
{
    mk_link *link = nb->link;
    mk_peer_id via = nb->peer, lo, hi;
    uint8_t flags;
    bool hi_end;
    size_t count;
    if (mk__digest_open(r, &flags, &lo, &hi, &hi_end, &count) < 0)
        return MK_EDECODE;
    const mk_peer_id *hip = hi_end ? NULL : &hi;
    mk__origin o = {.via = &via, .reached = nb->outbound};
    int64_t cutoff = mk_now_ms() - (int64_t)node->dc.purge_after_ms;
    size_t self_at = mk__node_after(node, &node->self.peer);
    size_t total = node->n_peers + 1, k = 0;
    while (k < total &&
           mk_id_cmp(&merged_at(node, self_at, k)->peer, &lo) < 0)
        k++;
    want w = {.n = 0};
    mk_buf_init(&w.ids);
    /* `ahead`: we hold something in the range the sender lacks or holds
     * older (it may pull it once it has our digest). */
    bool ahead = false, have_prev = false;
    mk_peer_id prev;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        mk_peer_id id;
        int64_t start, update;
        if ((rc = mk__digest_item(r, &lo, hip, have_prev ? &prev : NULL, &id,
                                  &start, &update)) < 0)
            break;
        prev = id;
        have_prev = true;
        const mk_peer_entry *e;
        while (k < total &&
               mk_id_cmp(&(e = merged_at(node, self_at, k))->peer, &id) < 0) {
            ahead = ahead || (e->update_ms >= cutoff &&
                              !mk_id_eq(&e->peer, &via));
            k++;
        }
        if (k < total && mk_id_eq(&(e = merged_at(node, self_at, k))->peer,
                                  &id)) {
            k++;
            int c = start != e->start_ms ? (start < e->start_ms ? -1 : 1)
                    : update != e->update_ms ? (update < e->update_ms ? -1 : 1)
                                             : 0;
            ahead = ahead || (c < 0 && !mk_id_eq(&e->peer, &via));
            if (c <= 0)
                continue;
        }
        /* Theirs is newer or new to us: wanted if our catalog's rules
         * would take it (not tombstoned, not stale, room for it, the
         * remote's allowance not spent), so a flood kept out of a full
         * catalog is not sent again every round. */
        mk__upsert j = mk__node_judge(node, &node->network, &id, start,
                                      update, &o);
        if (j == MK__UPSERT_NEW || j == MK__UPSERT_UPDATED) {
            mk_put_id(&w.ids, &id);
            if (++w.n == MK__DIGEST_ITEMS)
                want_flush(link, &w);
        }
    }
    if (rc == 0) {
        const mk_peer_entry *e;
        for (; !ahead && k < total &&
               id_below(&(e = merged_at(node, self_at, k))->peer, hip);
             k++)
            ahead = e->update_ms >= cutoff && !mk_id_eq(&e->peer, &via);
        want_flush(link, &w);
        if ((flags & 1) && ahead &&
            mk_link_queued(link) <= NEIGHBOUR_QUEUE_LIMIT)
            send_digest(node, link, 0, &lo, hip);
    }
    mk_buf_free(&w.ids);
    return rc;
}

/* The entries a neighbour asked for, those we hold fresh. */
static int take_want(mk_node *node, mk__neighbour *nb, mk_reader *r)
{
    mk_link *link = nb->link;
    size_t n;
    if (mk__want_open(r, &n) < 0)
        return MK_EDECODE;
    int64_t cutoff = mk_now_ms() - (int64_t)node->dc.purge_after_ms;
    repair rp = {.n = 0};
    mk_buf_init(&rp.body);
    for (size_t i = 0; i < n; i++) {
        mk_peer_id id;
        mk_get_id(r, &id);
        if (r->err)
            break;
        const mk__peer *p;
        if (mk_id_eq(&id, &node->self.peer))
            repair_add(node, link, &rp, &node->self, cutoff);
        else if ((p = mk__node_find(node, &id)))
            repair_add(node, link, &rp, &p->entry, cutoff);
    }
    repair_flush(node, link, &rp);
    mk_buf_free(&rp.body);
    return r->err ? MK_EDECODE : 0;
}

static int take_repair(mk_node *node, mk__neighbour *nb, mk_reader *r)
{
    mk_peer_id via = nb->peer;
    mk__origin o = {.from = nb->link, .via = &via, .reached = nb->outbound,
                    .quiet = true};
    size_t n;
    int rc = mk__repair_open(r, &n);
    /* Snapshot rules: an entry may be up to purge_after old. */
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = take_entry(node, r, &o, NULL, false, NULL, NULL);
    return rc;
}

/* One anti-entropy round: a digest to one random ready 1.1 neighbour,
 * which answers with what we lack and asks for what it lacks. */
static void anti_entropy(mk_node *node, int64_t now)
{
    bool growing = node->grown_mono && now - node->grown_mono < AE_INTERVAL_MS;
    if (growing && node->ae_due_mono > now + 3 * AE_GROWING_MS / 2)
        node->ae_due_mono = now + jittered(node, AE_GROWING_MS, 50);
    if (now < node->ae_due_mono)
        return;
    node->ae_due_mono =
        now + jittered(node, growing ? AE_GROWING_MS : AE_INTERVAL_MS, 50);
    size_t n = 0;
    for (size_t i = 0; i < node->n_nbrs; i++)
        n += node->nbrs[i].ready && !node->nbrs[i].closing &&
             node->nbrs[i].v11;
    if (n == 0)
        return;
    size_t k = mk__node_rand(node) % n;
    for (size_t i = 0; i < node->n_nbrs; i++) {
        mk__neighbour *nb = &node->nbrs[i];
        if (nb->ready && !nb->closing && nb->v11 && k-- == 0) {
            if (mk_link_queued(nb->link) <= NEIGHBOUR_QUEUE_LIMIT)
                send_digest(node, nb->link, 1, NULL, NULL);
            return;
        }
    }
}

static void send_link_ping(mk_node *node, mk__neighbour *nb)
{
    if (++node->ping_nonce == 0)
        node->ping_nonce = 1;
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__MSG_LINK_PING);
    mk_put_varint(&b, node->ping_nonce);
    if (!b.err && mk_link_send(nb->link, b.data, b.len) == 0) {
        nb->ping_nonce = node->ping_nonce;
        nb->ping_sent_us = mk_mono_us();
    }
    mk_buf_free(&b);
}

/* ---- sync: full catalog exchange ----------------------------------------- */

typedef struct sync_op {
    mk__exchange x; /* on node->exchanges while the link is open */
    mk_node *node;
    mk_peer_id peer;
    mk__bootstrap *boot; /* the bootstrap slot this answers, or NULL */
    bool initiator;
    bool referral; /* we answer with a referral (MAX_SYNC_ACCEPTS) */
    bool sending;  /* our snapshot has started */
    bool sent_end; /* ... and is all queued, end marker included */
    bool got_end;  /* theirs arrived whole */
    /* Where our snapshot is: 0 our own entry, 1 the peers we verified,
     * 2 those vouched for, 3 the others, 4 done; `cursor` is the last
     * peer looked at in the current pass (none yet: !has_cursor). */
    int pass;
    bool has_cursor;
    mk_peer_id cursor;
    uint64_t sent, got;
    size_t got_bytes;
    int64_t started_mono;
} sync_op;

/* The snapshot tier (MK__MSG_SNAPSHOT) of a pass, and of a peer. */
static int pass_tier(int pass)
{
    return pass <= 1 ? 0 : pass - 1;
}

static int peer_tier(const mk_node *node, const mk__peer *p)
{
    return mk__node_is_verified(node, p) ? 0 : p->vouched ? 1 : 2;
}

/* Whether peer `p` goes into `op`'s snapshot in the current pass. */
static bool snapshot_wants(const sync_op *op, const mk__peer *p,
                           int64_t cutoff)
{
    const mk_node *node = op->node;
    if (p->entry.update_ms < cutoff || mk_id_eq(&p->entry.peer, &op->peer) ||
        peer_tier(node, p) != pass_tier(op->pass))
        return false;
    /* What the remote told us during this very exchange goes back only
     * as wasted bytes. */
    return !(p->has_via && mk_id_eq(&p->via, &op->peer) &&
             p->changed_mono >= op->started_mono);
}

/* Up to REFERRAL_PEERS fresh, dialable peers other than the remote,
 * picked uniformly (reservoir sampling) into `pick` (catalog indexes);
 * under catalog pressure the preferred ones first, as neighbour_candidate
 * does. Returns how many. */
static size_t referral_sample(sync_op *op, int64_t cutoff, size_t *pick)
{
    mk_node *node = op->node;
    bool rank = catalog_pressure(node);
    size_t n = 0;
    for (int round = 0; round < 2 && n < REFERRAL_PEERS; round++) {
        size_t seen = 0, first = n;
        for (size_t i = 0; i < node->n_peers; i++) {
            const mk__peer *p = &node->peers[i];
            if (p->entry.update_ms < cutoff || !p->entry.n_addrs ||
                mk_id_eq(&p->entry.peer, &op->peer) ||
                (rank && preferred(node, p) != (round == 0)))
                continue;
            if (first + seen < REFERRAL_PEERS) {
                pick[first + seen++] = i;
                continue;
            }
            size_t k = (size_t)(mk__node_rand(node) % (uint64_t)++seen);
            if (k < REFERRAL_PEERS - first)
                pick[first + k] = i;
        }
        n = first + (seen < REFERRAL_PEERS - first ? seen
                                                   : REFERRAL_PEERS - first);
        if (!rank)
            break; /* one round over everyone */
    }
    return n;
}

/* The end of a snapshot: the network and how many entries it held. */
static int send_snapshot_end(sync_op *op, mk_link *link)
{
    mk_buf end;
    mk_buf_init(&end);
    mk_put_u8(&end, MK__MSG_SNAPSHOT_END);
    mk_put_id(&end, &op->node->network);
    mk_put_varint(&end, op->sent);
    int rc = end.err ? end.err : mk_link_send(link, end.data, end.len);
    mk_buf_free(&end);
    return rc;
}

/* A referral: our own entry and a sample of peers, each in its tier, then
 * the end marker, all at once (a few KiB). */
static void referral_send(sync_op *op, mk_link *link)
{
    mk_node *node = op->node;
    int64_t cutoff = mk_now_ms() - (int64_t)node->dc.purge_after_ms;
    size_t pick[REFERRAL_PEERS];
    size_t n = referral_sample(op, cutoff, pick);
    int rc = 0;
    for (int tier = 0; tier <= 2 && rc == 0; tier++) {
        mk_buf body, b;
        mk_buf_init(&body);
        mk_buf_init(&b);
        size_t count = 0;
        if (tier == 0) {
            mk_put_bytes(&body, node->self.wire, node->self.wire_len);
            count++;
        }
        for (size_t i = 0; i < n; i++) {
            const mk__peer *p = &node->peers[pick[i]];
            if (peer_tier(node, p) == tier) {
                mk_put_bytes(&body, p->entry.wire, p->entry.wire_len);
                count++;
            }
        }
        if (count > 0) {
            mk_put_u8(&b, MK__MSG_SNAPSHOT);
            mk_put_id(&b, &node->network);
            mk_put_u8(&b, (uint8_t)tier);
            mk_put_varint(&b, count);
            mk_put_raw(&b, body.data, body.len);
            rc = body.err ? body.err
                 : b.err  ? b.err
                          : mk_link_send(link, b.data, b.len);
            op->sent += count;
        }
        mk_buf_free(&body);
        mk_buf_free(&b);
    }
    if (rc == 0)
        rc = send_snapshot_end(op, link);
    op->sent_end = true;
    op->x.active_mono = mk_mono_ms();
    if (rc < 0)
        mk_link_close(link, MK_CLOSE_CANCELLED, "cannot send");
}

/* Queues the next chunks of our snapshot while the link's send queue is
 * short, then the end marker; the drain callback calls it again. The
 * catalog may change between calls: the cursor is a PeerId, not an
 * index. */
static void snapshot_pump(sync_op *op, mk_link *link)
{
    mk_node *node = op->node;
    int64_t cutoff = mk_now_ms() - (int64_t)node->dc.purge_after_ms;
    /* Half a frame at most, should a node run with small frames. */
    size_t chunk_bytes = node->max_frame / 2 < MK__SNAPSHOT_CHUNK_BYTES
                             ? node->max_frame / 2
                             : MK__SNAPSHOT_CHUNK_BYTES;
    while (!op->sent_end && mk_link_queued(link) < SNAPSHOT_HIGH_WATER) {
        mk_buf body, b;
        mk_buf_init(&body);
        mk_buf_init(&b);
        size_t n = 0;
        int tier = pass_tier(op->pass);
        if (op->pass == 0) {
            mk_put_bytes(&body, node->self.wire, node->self.wire_len);
            n++;
            op->pass = 1;
            op->has_cursor = false;
        }
        /* One tier per chunk. */
        while (op->pass <= 3 && pass_tier(op->pass) == tier &&
               n < MK__SNAPSHOT_CHUNK_ENTRIES && body.len < chunk_bytes) {
            size_t i = mk__node_after(node, op->has_cursor ? &op->cursor
                                                           : NULL);
            bool put = false;
            for (; i < node->n_peers && !put; i++) {
                const mk__peer *p = &node->peers[i];
                op->cursor = p->entry.peer;
                op->has_cursor = true;
                if (snapshot_wants(op, p, cutoff)) {
                    mk_put_bytes(&body, p->entry.wire, p->entry.wire_len);
                    n++;
                    put = true;
                }
            }
            if (!put) {
                op->pass++;
                op->has_cursor = false;
            }
        }
        int rc = body.err;
        if (rc == 0 && n > 0) {
            mk_put_u8(&b, MK__MSG_SNAPSHOT);
            mk_put_id(&b, &node->network);
            mk_put_u8(&b, (uint8_t)tier);
            mk_put_varint(&b, n);
            mk_put_raw(&b, body.data, body.len);
            rc = b.err ? b.err : mk_link_send(link, b.data, b.len);
            op->sent += n;
        }
        if (rc == 0 && op->pass > 3) {
            rc = send_snapshot_end(op, link);
            op->sent_end = true;
        }
        mk_buf_free(&body);
        mk_buf_free(&b);
        if (rc < 0) {
            mk_link_close(link, MK_CLOSE_CANCELLED, "cannot send");
            return;
        }
        op->x.active_mono = mk_mono_ms();
    }
    if (op->sent_end && op->got_end && op->initiator)
        mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
}

static void on_sync_drain(mk_link *link, void *data)
{
    sync_op *op = data;
    if (op->sending && !op->sent_end)
        snapshot_pump(op, link);
}

static void snapshot_start(sync_op *op, mk_link *link)
{
    if (op->sending)
        return;
    op->sending = true;
    op->started_mono = mk_mono_ms();
    if (op->referral)
        referral_send(op, link);
    else
        snapshot_pump(op, link);
}

/* A catalog exchange with `id` completed; `reached`: we dialled it. */
static void mark_synced(mk_node *node, const mk_peer_id *id, bool reached)
{
    mk__peer *p = mk__node_find(node, id);
    if (p) {
        p->synced = true;
        p->sync_due_mono = 0;
    }
    if (reached)
        mk__node_exchange_result(node, id, true);
}

static void sync_finished(sync_op *op, bool ok)
{
    mk_node *node = op->node;
    mk__peer *p = mk__node_find(node, &op->peer);
    if (p) {
        p->syncing = false;
        /* A first-contact exchange that failed (the peer was busy, or
         * unreachable) is tried again a few times, further apart. */
        if (!ok && !op->boot && !p->synced && p->sync_tries < SYNC_TRIES &&
            p->entry.n_addrs > 0 && !node->closing) {
            p->sync_due_mono = mk_mono_ms() + 1000 * (int64_t)p->sync_tries +
                               (int64_t)(mk__node_rand(node) % 1000);
            mk__discovery_wake(node);
        }
    }
    if (ok) {
        node->stats.syncs++;
        mark_synced(node, &op->peer, true);
    } else
        mk__node_exchange_result(node, &op->peer, false);
    if (op->boot) {
        op->boot->trying = false;
        if (ok) {
            op->boot->done = true;
        } else {
            /* Jittered: a crowd turned away together does not come
             * back together. */
            op->boot->next_try_mono =
                mk_mono_ms() + jittered(node, op->boot->backoff_ms, 50);
            op->boot->backoff_ms = op->boot->backoff_ms * 2 >
                                           BOOTSTRAP_BACKOFF_MAX_MS
                                       ? BOOTSTRAP_BACKOFF_MAX_MS
                                       : op->boot->backoff_ms * 2;
        }
    }
    node->ops--;
}

static bool is_bootstrap(const mk_node *node, const mk_peer_id *id)
{
    for (size_t i = 0; i < node->n_boots; i++)
        if (mk_id_eq(&node->boots[i].peer, id))
            return true;
    return false;
}

/* One SNAPSHOT chunk: network, tier, count, entries, within the
 * per-exchange bound. What a bootstrap peer verified or trusts, we trust
 * a little (mk__peer.vouched). */
static int take_chunk(sync_op *op, mk_reader *r, size_t frame_len)
{
    mk_node *node = op->node;
    mk_id net;
    uint8_t tier;
    size_t n;
    int rc = mk__snapshot_chunk_open(r, &net, &tier, &n);
    if (rc < 0)
        return rc;
    if (!mk_id_eq(&net, &node->network))
        return MK_EWRONG_NETWORK;
    bool vouch = tier <= 1 && is_bootstrap(node, &op->peer);
    mk__origin o = {.via = &op->peer, .reached = op->initiator};
    op->got += n;
    op->got_bytes += frame_len;
    if (op->got > (uint64_t)node->dc.max_peers + 1 ||
        op->got_bytes >
            (size_t)node->dc.max_catalog_bytes + MK__SNAPSHOT_CHUNK_BYTES) {
        node->stats.sync_cut++;
        return MK_EMSGSIZE;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        mk_peer_id id;
        rc = take_entry(node, r, &o, NULL, false, NULL, &id);
        mk__peer *p = rc == 0 && vouch ? mk__node_find(node, &id) : NULL;
        if (p)
            p->vouched = true;
    }
    return rc;
}

static void on_sync_frame(mk_link *link, const uint8_t *f, size_t len,
                          void *data)
{
    sync_op *op = data;
    mk_node *node = op->node;
    if (op->x.expired)
        return; /* closed for silence: nothing more is wanted */
    op->x.active_mono = mk_mono_ms();
    if (op->got_end) {
        mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION, "one snapshot each");
        return;
    }
    mk_reader r;
    mk_reader_init(&r, f, len);
    uint8_t kind = mk_get_u8(&r);
    if (kind != MK__MSG_SNAPSHOT && kind != MK__MSG_SNAPSHOT_END) {
        close_for(link, MK_EPROTO);
        return;
    }
    /* The acceptor starts its answer before merging anything, so its
     * reply is its own view, not an echo of what it is being sent. */
    if (!op->initiator)
        snapshot_start(op, link);
    int rc;
    if (kind == MK__MSG_SNAPSHOT) {
        rc = take_chunk(op, &r, len);
    } else {
        rc = take_network(node, &r);
        uint64_t total = mk_get_varint(&r);
        if (rc == 0 && !r.err && total != op->got)
            rc = MK_EPROTO; /* chunks went missing: not a snapshot */
    }
    if (rc == 0)
        rc = mk_reader_done(&r);
    if (rc < 0) {
        if (rc == MK_EMSGSIZE)
            mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION,
                          "snapshot over the bound");
        else
            close_for(link, rc);
        return;
    }
    if (kind != MK__MSG_SNAPSHOT_END)
        return;
    op->got_end = true;
    mark_synced(node, &op->peer, op->initiator);
    link_rtt_sample(node, link);
    if (op->initiator && op->sent_end)
        mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
}

static void on_sync_close(mk_link *link, uint32_t code, int status,
                          void *data)
{
    sync_op *op = data;
    mk_node *node = op->node;
    exchange_remove(node, &op->x);
    if (op->initiator) {
        sync_finished(op, op->got_end);
    } else {
        node->ops--;
        if (op->referral)
            node->referrals--;
        else
            node->sync_accepts--;
    }
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
    bool referral = node->sync_accepts >= MAX_SYNC_ACCEPTS;
    if (referral && node->referrals >= MAX_REFERRALS) {
        node->stats.syncs_refused++;
        mk_link_close(link, MK_CLOSE_CANCELLED, "busy");
        return;
    }
    sync_op *op = calloc(1, sizeof *op);
    if (!op) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    op->node = node;
    op->peer = *mk_link_peer(link);
    op->referral = referral;
    node->ops++;
    if (referral) {
        node->referrals++;
        node->stats.syncs_referred++;
    } else {
        node->sync_accepts++;
    }
    exchange_add(node, &op->x, link, SYNC_IDLE_MS);
    mk_link_set_callbacks(link, on_sync_frame, on_sync_close, op);
    mk_link_on_drain(link, on_sync_drain);
}

static void on_sync_connected(mk_link *link, int status, void *data)
{
    sync_op *op = data;
    if (status < 0) {
        sync_finished(op, false);
        free(op);
        return;
    }
    exchange_add(op->node, &op->x, link, SYNC_IDLE_MS);
    mk_link_set_callbacks(link, on_sync_frame, on_sync_close, op);
    mk_link_on_drain(link, on_sync_drain);
    snapshot_start(op, link);
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
        if (p->sync_tries < UINT8_MAX)
            p->sync_tries++;
    }
    node->ops++;
    return 0;
}

/* ---- ping ------------------------------------------------------------------ */

typedef struct ping_op {
    mk__exchange x; /* on node->exchanges while the link is open */
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
    if (op->x.expired)
        return;
    op->x.active_mono = mk_mono_ms();
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
        /* The peer's own entry: it may be older than the drift window
         * (it is re-signed once per announce period) but never ahead. */
        mk__origin o = {.via = &op->peer, .reached = true};
        rc = take_entry(node, &r, &o, &op->peer, false, NULL, NULL);
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
    mk_node *node = op->node;
    mk__peer *p = mk__node_find(node, &op->peer);
    if (op->initiator && p) {
        p->pinging = false;
        p->next_ping_mono =
            mk_mono_ms() + jittered(node, node->dc.rtt_probe_interval_ms, 50);
        mk__node_exchange_result(node, &op->peer, op->answered);
    }
    if (!op->initiator)
        node->ping_accepts--;
    node->ops--;
    free(op);
}

static void on_ping_close(mk_link *link, uint32_t code, int status,
                          void *data)
{
    ping_op *op = data;
    exchange_remove(op->node, &op->x);
    ping_done(op);
}

static void on_ping_accept(mk_link *link, void *data)
{
    mk_node *node = data;
    if (node->ping_accepts >= MAX_PING_ACCEPTS) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "busy");
        return;
    }
    ping_op *op = calloc(1, sizeof *op);
    if (!op) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    op->node = node;
    op->peer = *mk_link_peer(link);
    node->ops++;
    node->ping_accepts++;
    exchange_add(node, &op->x, link, PING_TIMEOUT_MS);
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
    exchange_add(op->node, &op->x, link, PING_TIMEOUT_MS);
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
    node->stats.probes++;
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
    expire_neighbours(node, now);
    expire_exchanges(node, now);

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
    /* Peers verified or vouched for first, the rest after: under a
     * flood of made-up identities the few real peers get their exchanges
     * and probes before the slots go to addresses that never answer. */
    bool changed = false;
    for (int round = 0; round < 2 && !changed; round++) {
        for (size_t i = 0; i < node->n_peers; i++) {
            mk__peer *p = &node->peers[i];
            if (preferred(node, p) != (round == 0))
                continue;
            if (p->sync_due_mono && p->sync_due_mono <= now && !p->synced &&
                !p->syncing && syncing < MAX_SYNCS_IN_FLIGHT) {
                mk_peer_id id = p->entry.peer;
                if (mk__discovery_sync(node, &id, NULL, NULL) == 0)
                    syncing++;
                p = mk__node_find(node, &id);
                if (!p) {
                    busy = changed = true;
                    break; /* the catalog changed under us; next tick */
                }
            }
            busy = busy || (p->sync_due_mono && !p->synced);
            if (!p->entry.n_addrs || p->pinging || p->next_ping_mono > now)
                continue;
            int64_t interval = node->dc.rtt_probe_interval_ms;
            int64_t next = now + jittered(node, node->dc.rtt_probe_interval_ms,
                                          50);
            mk__neighbour *nb = nbr_ready(node, &p->entry.peer);
            if (nb) {
                /* A neighbour is measured over its link: a LINK_PING on
                 * 1.1, TCP's estimate on 1.0. No handshake either way. */
                if (!nb->v11)
                    link_rtt_sample(node, nb->link);
                else if (!nb->ping_nonce ||
                         mk_mono_us() - nb->ping_sent_us >
                             1000 * (int64_t)PING_TIMEOUT_MS)
                    send_link_ping(node, nb);
                p->next_ping_mono = next;
                /* A neighbour that dialled us proved its key, not its
                 * address: one dialled probe verifies it, so that it
                 * leads our snapshots and keeps its place when a flood
                 * fills the catalog. A few per node, not one per peer. */
                if (!nb->outbound && !mk__node_is_verified(node, p) &&
                    pinging < MAX_PINGS_IN_FLIGHT) {
                    start_ping(node, p);
                    pinging++;
                }
                continue;
            }
            /* Any other peer only by dialling it: a TLS handshake. A
             * node that listens does that only to verify peers while its
             * catalog is filling up, which is when verification decides
             * what stays (node.c); its RTT to the others comes from the
             * links it has with them (neighbours, streams, groups).
             * Probing every peer was N² handshakes per probe interval
             * across a network. A dial-only node (a client) has no
             * neighbours to ask and only its own N probes to pay: it
             * probes as before. */
            bool verified = mk__node_is_verified(node, p);
            if (node->self.n_addrs > 0 &&
                !(catalog_pressure(node) && !verified)) {
                p->next_ping_mono = next;
                continue;
            }
            if (pinging >= MAX_PINGS_IN_FLIGHT)
                continue;
            /* A probe is a TLS handshake; a peer that gave us a sample
             * within the last interval anyway (a catalog exchange, group
             * or stream traffic) does not need one. A peer not yet
             * verified is probed anyway: the probe is what verifies it
             * (mk__origin). */
            if (p->rtt_at_mono && now - p->rtt_at_mono < interval / 2 &&
                verified) {
                p->next_ping_mono =
                    p->rtt_at_mono +
                    jittered(node, node->dc.rtt_probe_interval_ms, 50);
            } else {
                start_ping(node, p);
                pinging++;
            }
        }
    }
    anti_entropy(node, now);
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
    node->started_mono = mk_mono_ms();
    uv_timer_start(&node->announce_timer, on_announce,
                   (uint64_t)jittered(node, node->dc.announce_interval_ms,
                                      node->dc.announce_jitter_pct),
                   0);
    uv_timer_start(&node->tick_timer, on_tick, 0, 0);
}

/* Neighbour links are meant to last and a neighbour that loses one
 * usually dials another peer; a catalog exchange is made once per peer
 * (a bootstrap is dialled again only when it did not answer, and then no
 * ticket was made). Neither earns back the ticket's cost, about a sixth
 * of a full handshake's CPU (docs/discovery.md); pings, which a prober
 * repeats to the same peer, keep theirs. */
int mk__discovery_serve(mk_node *node)
{
    int rc = mk_transport_serve_ex(node->transport, MK__ALPN_ANNOUNCE,
                                   MK_SERVE_NO_RESUME, on_announce_accept,
                                   node);
    if (rc == 0)
        rc = mk_transport_serve_ex(node->transport, MK__ALPN_ANNOUNCE_V11,
                                   MK_SERVE_NO_RESUME, on_announce_accept_v11,
                                   node);
    if (rc == 0)
        rc = mk_transport_serve_ex(node->transport, MK__ALPN_SYNC,
                                   MK_SERVE_NO_RESUME, on_sync_accept, node);
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
