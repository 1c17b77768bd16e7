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
    int64_t next_ping_mono;     /* when to probe RTT next */
    int64_t sync_due_mono;      /* first-contact exchange due (0: none) */
    bool synced;                /* a catalog exchange happened */
    bool syncing;               /* one is in flight */
    bool pinging;
} mk__peer;

/* A peer that departed: entries at or below this version are refused
 * until the tombstone expires, so a late gossip cannot resurrect it. */
typedef struct mk__tombstone {
    mk_peer_id peer;
    int64_t start_ms, update_ms, expires_mono;
} mk__tombstone;

typedef struct mk__neighbour {
    mk_link *link;
    mk_peer_id peer;
    bool outbound;
    bool ready; /* hello exchanged */
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
    uint64_t rng;
    bool started, closing;
    int pending_closes; /* timer handles still closing */
    size_t ops;         /* discovery exchanges in flight */
    void (*close_cb)(void *data);
    void *close_data;
    /* The groups running on this node (group_hub.c's registry), NULL when
     * none: the group ALPNs' accept handlers find them here. */
    void *groups;
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
mk__peer *mk__node_find(const mk_node *node, const mk_peer_id *id);
void mk__node_depart_peer(mk_node *node, const mk_peer_id *id,
                          const mk_departure *d);
void mk__node_rtt_sample(mk_node *node, const mk_peer_id *id, int64_t us);
uint64_t mk__node_rand(mk_node *node);
void mk__node_purge(mk_node *node);

/* discovery.c */
int mk__discovery_serve(mk_node *node);
void mk__discovery_start(mk_node *node);
void mk__discovery_tick(mk_node *node);
void mk__discovery_gossip(mk_node *node, const mk_peer_entry *e,
                          mk_link *except);
void mk__discovery_forward_departure(mk_node *node, const mk_departure *d,
                                     mk_link *except);
int mk__discovery_sync(mk_node *node, const mk_peer_id *peer,
                       const char *addr, mk__bootstrap *boot);
int mk__discovery_depart(mk_node *node); /* returns messages sent */
void mk__discovery_drop_neighbour(mk_node *node, const mk_peer_id *id);

#endif
