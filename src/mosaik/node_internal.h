/* Internal: the node's state, shared by node.c (lifecycle, local entry,
 * catalog and events) and discovery.c (the three discovery protocols). */
#ifndef MK_NODE_INTERNAL_H
#define MK_NODE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "mosaik/codec.h"
#include "mosaik/node.h"

#define MK__ALPN_ANNOUNCE "/mosaik/discovery/announce/1.0"
/* 1.1: 1.0 plus anti-entropy (DIGEST, REPAIR) and pings on the link
 * (LINK_PING, LINK_PONG). A node serves both and dials 1.1 first; a peer
 * that turns 1.1 away (MK_CLOSE_INVALID_ALPN) is dialled with 1.0 from
 * then on and gets the 1.0 treatment: a catalog exchange over sync. */
#define MK__ALPN_ANNOUNCE_V11 "/mosaik/discovery/announce/1.1"
/* 2.0: the snapshot travels in chunks with an end marker (discovery.c). */
#define MK__ALPN_SYNC "/mosaik/discovery/sync/2.0"
#define MK__ALPN_PING "/mosaik/discovery/ping/1.0"

/* Discovery message kinds: the first byte of every discovery frame. */
enum {
    MK__MSG_HELLO = 1,     /* network[32], signed entry */
    MK__MSG_ENTRY = 2,     /* signed entry */
    MK__MSG_DEPARTURE = 3, /* departure wire form */
    /* A chunk: network[32], tier (u8), count, signed entries. Tier 0: the
     * sender's own entry and peers it verified itself; 1: peers its
     * bootstrap peers vouched for; 2: the rest. */
    MK__MSG_SNAPSHOT = 4,
    MK__MSG_PING = 5,      /* network[32] */
    MK__MSG_PONG = 6,      /* signed entry */
    MK__MSG_SNAPSHOT_END = 7, /* network[32], entries sent in all chunks */
    /* Announce 1.1 only. A digest of the sender's catalog (its own entry
     * included) over the PeerId range [lo, hi): flags (u8; bit 0: answer
     * with your digest of this range if you lack anything; bit 1: hi is
     * the end of the id space), lo[32], hi[32], count, count × (peer[32],
     * start i64, update i64), ascending by peer. */
    MK__MSG_DIGEST = 8,
    /* The entries a WANT asked for: count, signed entries. Judged like
     * snapshot entries, and not forwarded. */
    MK__MSG_REPAIR = 9,
    MK__MSG_LINK_PING = 10, /* nonce varint */
    MK__MSG_LINK_PONG = 11, /* the ping's nonce */
    /* The peers a digest listed newer than what we hold: count, peer[32]
     * each. */
    MK__MSG_WANT = 12,
};

/* Digest items per DIGEST frame we send (at most ~44 bytes each), and
 * taken in one we receive. */
#define MK__DIGEST_ITEMS 1024
#define MK__DIGEST_ITEMS_IN 4096

/* A snapshot chunk holds at most this many entries, and its entries add
 * up to at most MK__SNAPSHOT_CHUNK_BYTES plus one entry: a frame of ~272
 * KiB at worst, far below any frame limit, whatever the catalog holds. */
#define MK__SNAPSHOT_CHUNK_ENTRIES 64
#define MK__SNAPSHOT_CHUNK_BYTES (256u << 10)
/* Chunks received may hold more entries than ours send (another version),
 * but not unboundedly many. */
#define MK__SNAPSHOT_CHUNK_ENTRIES_IN 256

typedef struct mk__peer {
    mk_peer_entry entry;
    int64_t srtt_us, rttvar_us; /* -1 before the first sample */
    int64_t rtt_at_mono;        /* when the last sample came (0: never) */
    int64_t next_ping_mono;     /* when to probe RTT next */
    int64_t sync_due_mono;      /* first-contact exchange due (0: none) */
    bool synced;                /* a catalog exchange happened */
    bool syncing;               /* one is in flight */
    bool pinging;
    bool nbr_dialing;           /* a neighbour dial to it is in flight */
    /* It refused us as a neighbour (its slots were full): not dialled as
     * one again before nbr_not_before; the wait doubles to a minute. */
    int64_t nbr_not_before;
    uint32_t nbr_backoff_ms;
    /* Provenance, for the catalog bound (node.c, make_room). */
    uint64_t added_seq;    /* order of entering the catalog */
    int64_t changed_mono;  /* when its current version was stored */
    int64_t verified_mono; /* an exchange we started last reached it
                              (0: never; mk__origin) */
    mk_peer_id via;        /* who passed its current version on */
    bool has_via;          /* false: fed locally (mk_node_feed) */
    uint8_t failures;      /* exchanges with it that failed in a row */
    /* A bootstrap peer listed it among the peers it verified or trusts
     * (tier 0 or 1 of its snapshot): a hint, not a verification, that
     * ranks it before peers merely heard of when exchanges, probes and
     * neighbours are chosen, and in our own snapshots. */
    bool vouched;
    uint8_t sync_tries;    /* first-contact exchanges tried */
    /* It turned announce 1.1 away: an older node, dialled with 1.0 and
     * sent a catalog exchange when it becomes a neighbour. */
    bool legacy;
} mk__peer;

/* A remote's allowance of new peers (token bucket, node.c). */
typedef struct mk__source {
    mk_peer_id peer;
    double tokens;
    int64_t at_mono; /* last refill */
} mk__source;

/* A peer that departed: entries at or below this version are refused
 * until the tombstone expires, so a late gossip cannot resurrect it.
 *
 * When the departure was signed (`has_dep`), the message is kept too: a
 * departure is flooded once, so a node whose neighbour links come up
 * after the flood has passed (a node still joining, a link that was not
 * ready yet) would otherwise never hear of it and keep the peer until
 * purge_after. Every neighbour that becomes ready is sent the departures
 * still inside the drift window (mosaik.md §3.3: receivers refuse older
 * ones), which is what iroh-gossip's lazy repair gives mosaik. */
typedef struct mk__tombstone {
    mk_peer_id peer;
    int64_t start_ms, update_ms, expires_mono;
    bool has_dep;
    mk_departure dep;
} mk__tombstone;

typedef struct mk__neighbour {
    mk_link *link;
    mk_peer_id peer;
    int64_t hello_start_ms; /* the incarnation its hello announced */
    int64_t since_mono;     /* when the link was added */
    int64_t rx_mono;        /* when it last delivered a frame */
    char ip[64];            /* the remote's address without the port */
    bool outbound;
    bool v11;     /* announce 1.1: digests and link pings */
    uint64_t ping_nonce;  /* the LINK_PING awaiting its pong (0: none) */
    int64_t ping_sent_us; /* when it was sent */
    bool ready;   /* its hello arrived: what it says is believed */
    bool closing; /* closed by us; gone at its close callback */
} mk__neighbour;

/* A sync or ping link, watched for silence (discovery.c). */
typedef struct mk__exchange {
    struct mk__exchange *prev, *next;
    mk_link *link;       /* NULL: not listed */
    int64_t active_mono; /* last frame in or chunk out */
    uint32_t timeout_ms;
    bool expired;        /* closed for silence */
} mk__exchange;

typedef struct mk__bootstrap {
    mk_peer_id peer;
    char addr[128];
    uint32_t backoff_ms;
    int64_t next_try_mono;
    bool done;    /* one exchange succeeded */
    bool trying;
} mk__bootstrap;

struct mk_node_watch {
    mk_node *node;
    mk_peer_event_cb cb;
    void *data;
    bool removed;
    struct mk_node_watch *next;
};

struct mk_node {
    uv_loop_t *loop;
    mk_keypair key;
    mk_id network;
    mk_discovery_config dc;
    mk_transport *transport;
    size_t max_frame; /* the transport's: snapshot chunks stay well below */
    char addr[128];

    mk_peer_entry self; /* always signed (self.wire is current) */

    mk__peer *peers; /* sorted by PeerId */
    size_t n_peers, cap_peers;
    size_t catalog_bytes; /* sum of the peers' wire_len */
    uint64_t added_seq;   /* peers ever added (mk__peer.added_seq) */
    mk__source *sources;  /* new-peer allowances, by remote */
    size_t n_sources;
    mk_discovery_stats stats;
    mk__tombstone *tombs;
    size_t n_tombs;

    mk__neighbour *nbrs;
    size_t n_nbrs, cap_nbrs;
    size_t nbr_dials; /* outbound neighbour dials in flight */

    mk__bootstrap *boots;
    size_t n_boots;

    int64_t ae_due_mono;  /* the next anti-entropy round (digest) */
    int64_t started_mono; /* discovery started (mk__discovery_start) */
    int64_t grown_mono;   /* when the catalog last gained a peer */
    uint64_t ping_nonce;  /* the last LINK_PING nonce sent */

    mk_node_watch *watches;
    int dispatching; /* >0 while watchers run: unwatch defers freeing */

    uv_timer_t announce_timer;
    uv_timer_t tick_timer; /* purge, neighbours, pings, bootstrap retries */
    uv_timer_t close_timer;
    /* Our own signed departure, made when closing starts: links that reach
     * us during the departure window are answered with it. */
    mk_departure departure;
    bool departed;
    uint64_t rng;
    bool started, closing;
    int pending_closes; /* timer handles still closing */
    size_t ops;         /* discovery exchanges in flight */
    size_t sync_accepts, ping_accepts; /* inbound ones */
    size_t referrals; /* inbound exchanges answered with a referral */
    mk__exchange *exchanges; /* sync and ping links, for their timeouts */
    void (*close_cb)(void *data);
    void *close_data;
    /* The groups running on this node (group_hub.c's registry), NULL when
     * none: the group ALPNs' accept handlers find them here. */
    void *groups;
    /* mk_node_set_extension: what layers above keep per node. */
    struct mk__ext {
        const void *key;
        void *value;
        void (*release)(void *value);
    } *exts;
    size_t n_exts;
    /* mk_node_metrics: freed last, after everything that registered in it
     * has closed. `rtt` is the one series updated on the way, not read.
     * Both NULL when the node runs with metrics off. */
    struct mk_metrics *metrics;
    struct mk_metric *rtt;
};

/* node.c */
typedef enum mk__upsert {
    MK__UPSERT_NEW,
    MK__UPSERT_UPDATED,
    MK__UPSERT_NOT_NEWER,
    MK__UPSERT_REFUSED, /* other network, too old, tombstoned, or self */
    MK__UPSERT_FUTURE,  /* dated more than max_time_drift ahead */
    MK__UPSERT_FULL,    /* the catalog is full and it may not evict */
    MK__UPSERT_LIMITED, /* its source's new-peer allowance is spent */
} mk__upsert;

/* Whether the result means the entry was turned away. */
static inline bool mk__upsert_refused(mk__upsert u)
{
    return u != MK__UPSERT_NEW && u != MK__UPSERT_UPDATED &&
           u != MK__UPSERT_NOT_NEWER;
}

/* Where an entry came from. A peer is verified when an exchange we
 * started, by dialling an address, reached it and it spoke for itself
 * (`reached` and `via` is the entry's peer): it holds the key and
 * listens where it says, which a made-up identity does not. Entries a
 * peer sends about itself over a link it dialled prove only the key. */
typedef struct mk__origin {
    mk_link *from;         /* the neighbour link it came by (not echoed
                              back), or NULL */
    const mk_peer_id *via; /* the link's authenticated remote */
    bool reached;          /* we dialled that remote */
    bool quiet;            /* a repair: forwarded only while news */
} mk__origin;

/* A version signed this recently is news: a repair of it is forwarded as
 * a flood would be (node.c, mk__node_upsert). One settled anti-entropy
 * interval: past that, whoever missed it repairs it from a neighbour. */
#define MK__NEWS_MS 10000

/* Takes ownership of `e` in every case (stored or freed). `o` is where it
 * came from (NULL: fed locally). A new peer passed on by someone else is
 * charged to that remote's allowance; when the catalog is full, only a
 * peer verified now or before may evict. Counts refusals in
 * node->stats. */
mk__upsert mk__node_upsert(mk_node *node, mk_peer_entry *e,
                           const mk__origin *o);
/* What mk__node_upsert would make of an entry with this header, without
 * the entry (so without its size: FULL is judged on the count and the
 * bytes already held): lets a receiver skip verifying what would be
 * refused. Counts nothing. */
mk__upsert mk__node_judge(const mk_node *node, const mk_id *network,
                          const mk_peer_id *peer, int64_t start_ms,
                          int64_t update_ms, const mk__origin *o);
/* Counts a refusal judged without mk__node_upsert. */
void mk__node_count_refusal(mk_node *node, mk__upsert why);

mk__peer *mk__node_find(const mk_node *node, const mk_peer_id *id);
/* Index of the first peer whose id is above `id` (all of them: NULL). */
size_t mk__node_after(const mk_node *node, const mk_peer_id *id);
/* An exchange we started reached `id` and it spoke for itself. */
void mk__node_verified(mk_node *node, const mk_peer_id *id);
/* Whether `p` has been verified within purge_after. */
bool mk__node_is_verified(const mk_node *node, const mk__peer *p);
/* An exchange we started with `id` failed (ok false) or succeeded. */
void mk__node_exchange_result(mk_node *node, const mk_peer_id *id, bool ok);
/* Whether `t` (a clock reading in an entry or departure) is more than
 * max_time_drift ahead of ours. */
bool mk__node_future(const mk_node *node, int64_t t);

/* A verified departure (signature and network already checked) arrived
 * by `from` (NULL: not by a neighbour link). It is refused (and counted)
 * when its clock is outside the drift window or the version it departs
 * is dated ahead of it. Unless it was seen
 * before (a tombstone at or above its version) or it names an older
 * incarnation than the one in the catalog, it is tombstoned, the peer is
 * removed (MK_PEER_DEPARTED) when known, and the departure is forwarded
 * to every neighbour but `from`. Relays forward departures of peers they
 * never knew too: knowing the peer is no condition for passing the news
 * on, and the tombstone stops a late entry from bringing it in. Returns
 * true when it was news. */
bool mk__node_take_departure(mk_node *node, const mk_departure *d,
                             mk_link *from);

/* Removes `id` without a signed departure. `incarnation` >= 0 means an
 * authenticated link from the peer itself said it is shutting down: the
 * entry goes only if it is that incarnation (start_ms), and is tombstoned
 * so that gossip still carrying it cannot bring it back. -1: purged for
 * silence (no tombstone: a newer announcement is welcome). */
void mk__node_drop_peer(mk_node *node, const mk_peer_id *id,
                        int64_t incarnation);
void mk__node_rtt_sample(mk_node *node, const mk_peer_id *id, int64_t us);
/* Heap bytes the catalog holds: the peer array (its capacity) and each
 * entry's decoded lists and wire form, as requested from malloc. */
size_t mk__node_catalog_memory(const mk_node *node);

/* node_metrics.c: the node's own series (links, discovery) in a new
 * registry. 0 or MK_ENOMEM. */
int mk__node_metrics_init(mk_node *node);
uint64_t mk__node_rand(mk_node *node);
void mk__node_purge(mk_node *node);

/* discovery.c */
/* Wire reading shared by every discovery message (and the fuzzer). The
 * next signed entry's bytes from `r`: 0, MK_EDECODE, or MK_EMSGSIZE when
 * it is longer than MK_ENTRY_MAX_WIRE (a protocol violation: nobody
 * honest signs one). */
int mk__discovery_read_entry(mk_reader *r, const uint8_t **wire, size_t *n);
/* A SNAPSHOT chunk after its kind byte, up to its entries: network, tier
 * (0..2) and count (at most MK__SNAPSHOT_CHUNK_ENTRIES_IN). 0 or
 * MK_EDECODE. */
int mk__snapshot_chunk_open(mk_reader *r, mk_id *network, uint8_t *tier,
                            size_t *count);
/* Announce 1.1's frames after their kind byte, read the way a node reads
 * them (and the fuzzer). A DIGEST up to its items: flags (bits 0 and 1
 * only), lo, hi and count (at most MK__DIGEST_ITEMS_IN); *hi_end is set
 * when the range runs to the end of the id space (flag bit 1). 0 or
 * MK_EDECODE. */
int mk__digest_open(mk_reader *r, uint8_t *flags, mk_peer_id *lo,
                    mk_peer_id *hi, bool *hi_end, size_t *count);
/* The next DIGEST item: MK_EDECODE when it is malformed, outside [lo, hi)
 * (hi NULL: to the end) or not above `prev` (NULL: the first). */
int mk__digest_item(mk_reader *r, const mk_peer_id *lo, const mk_peer_id *hi,
                    const mk_peer_id *prev, mk_peer_id *id, int64_t *start,
                    int64_t *update);
/* WANT and REPAIR up to their items: the count (at most
 * MK__DIGEST_ITEMS_IN ids; MK__SNAPSHOT_CHUNK_ENTRIES_IN entries). 0 or
 * MK_EDECODE. */
int mk__want_open(mk_reader *r, size_t *count);
int mk__repair_open(mk_reader *r, size_t *count);
int mk__discovery_serve(mk_node *node);
void mk__discovery_start(mk_node *node);
/* Purges, retries bootstraps, runs due exchanges and probes, tops up
 * neighbours. Returns true while work is due soon (tick fast). */
bool mk__discovery_tick(mk_node *node);
/* New work appeared: tick soon rather than at the idle pace. */
void mk__discovery_wake(mk_node *node);
/* Whether a node holding `outbound` links it dialled (node->nbr_dials
 * more on their way) and `inbound` ready ones others dialled should dial
 * another neighbour at `now_mono` (discovery.c says when). */
#define MK__NBR_INBOUND_WAIT_MS 3000
bool mk__nbr_short(const mk_node *node, size_t outbound, size_t inbound,
                   int64_t now_mono);
void mk__discovery_gossip(mk_node *node, const mk_peer_entry *e,
                          mk_link *except);
void mk__discovery_forward_departure(mk_node *node, const mk_departure *d,
                                     mk_link *except);
int mk__discovery_sync(mk_node *node, const mk_peer_id *peer,
                       const char *addr, mk__bootstrap *boot);
int mk__discovery_depart(mk_node *node); /* returns messages sent */
void mk__discovery_drop_neighbour(mk_node *node, const mk_peer_id *id);

#endif
