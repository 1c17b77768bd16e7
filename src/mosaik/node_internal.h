/* Internal: the node's state, shared by node.c (lifecycle, local entry,
 * catalog and events) and discovery.c (the three discovery protocols). */
#ifndef MK_NODE_INTERNAL_H
#define MK_NODE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "mosaik/node.h"

#define MK__ALPN_ANNOUNCE "/mosaik/discovery/announce/1.0"
#define MK__ALPN_SYNC "/mosaik/discovery/sync/1.0"
#define MK__ALPN_PING "/mosaik/discovery/ping/1.0"

/* Discovery message kinds: the first byte of every discovery frame. */
enum {
    MK__MSG_HELLO = 1,     /* network[32], signed entry */
    MK__MSG_ENTRY = 2,     /* signed entry */
    MK__MSG_DEPARTURE = 3, /* departure wire form */
    MK__MSG_SNAPSHOT = 4,  /* network[32], count, signed entries */
    MK__MSG_PING = 5,      /* network[32] */
    MK__MSG_PONG = 6,      /* signed entry */
};

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
} mk__peer;

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
    bool outbound;
    bool ready; /* its hello arrived: what it says is believed */
} mk__neighbour;

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
    char addr[128];

    mk_peer_entry self; /* always signed (self.wire is current) */

    mk__peer *peers; /* sorted by PeerId */
    size_t n_peers, cap_peers;
    mk__tombstone *tombs;
    size_t n_tombs;

    mk__neighbour *nbrs;
    size_t n_nbrs, cap_nbrs;
    size_t nbr_dials; /* outbound neighbour dials in flight */

    mk__bootstrap *boots;
    size_t n_boots;

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
};

/* node.c */
typedef enum mk__upsert {
    MK__UPSERT_NEW,
    MK__UPSERT_UPDATED,
    MK__UPSERT_NOT_NEWER,
    MK__UPSERT_REFUSED, /* other network, too old, tombstoned, or self */
} mk__upsert;

/* Takes ownership of `e` in every case (stored or freed). `from` is the
 * neighbour link it came by (not echoed back), or NULL. */
mk__upsert mk__node_upsert(mk_node *node, mk_peer_entry *e, mk_link *from);
/* What mk__node_upsert would make of an entry with this header, without
 * the entry: lets a receiver skip verifying what would be refused. */
mk__upsert mk__node_judge(const mk_node *node, const mk_id *network,
                          const mk_peer_id *peer, int64_t start_ms,
                          int64_t update_ms);
mk__peer *mk__node_find(const mk_node *node, const mk_peer_id *id);

/* A verified departure (signature, network and drift already checked)
 * arrived by `from` (NULL: not by a neighbour link). Unless it was seen
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
uint64_t mk__node_rand(mk_node *node);
void mk__node_purge(mk_node *node);

/* discovery.c */
int mk__discovery_serve(mk_node *node);
void mk__discovery_start(mk_node *node);
/* Purges, retries bootstraps, runs due exchanges and probes, tops up
 * neighbours. Returns true while work is due soon (tick fast). */
bool mk__discovery_tick(mk_node *node);
/* New work appeared: tick soon rather than at the idle pace. */
void mk__discovery_wake(mk_node *node);
void mk__discovery_gossip(mk_node *node, const mk_peer_entry *e,
                          mk_link *except);
void mk__discovery_forward_departure(mk_node *node, const mk_departure *d,
                                     mk_link *except);
int mk__discovery_sync(mk_node *node, const mk_peer_id *peer,
                       const char *addr, mk__bootstrap *boot);
int mk__discovery_depart(mk_node *node); /* returns messages sent */
void mk__discovery_drop_neighbour(mk_node *node, const mk_peer_id *id);

#endif
