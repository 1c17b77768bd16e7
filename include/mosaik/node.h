/* A node: one identity on one network, with discovery running.
 *
 * A node owns a transport (mosaik/transport.h) and keeps the catalog:
 * the signed entries of every peer it knows on its network, its own
 * included. It finds peers from nothing but its key, a network id and one
 * bootstrap peer: a full catalog exchange on first contact with any peer,
 * gossip of every new entry version over a few persistent neighbour links,
 * periodic re-announcement (which keeps entries fresh), pings for RTT, and
 * a signed departure on shutdown. Entries of other networks never enter
 * the catalog; entries that stop being refreshed are purged.
 *
 * Groups, streams and modules build on a node: they add their ids to its
 * entry and watch its catalog. Everything runs on the loop given in the
 * config; a node is not thread-safe.
 */
#ifndef MK_NODE_H
#define MK_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mosaik/entry.h"
#include "mosaik/key.h"
#include "mosaik/lifecycle.h"
#include "mosaik/link.h"
#include "mosaik/transport.h"

/* Discovery timers and bounds; zero fields take the defaults in brackets.
 *
 * The catalog is bounded (docs/discovery.md): at most max_peers entries
 * and max_catalog_bytes of signed entries. When it is full, a peer this
 * node verified (an exchange it started, dialling the peer's address,
 * reached the peer: a catalog exchange, a ping, an outbound neighbour)
 * takes the place of the most recently added unverified peer; a peer
 * that dialled us and spoke for itself only that of a peer nobody could
 * reach; an entry only heard of is refused. Neighbours, bootstrap peers
 * and verified peers are never evicted. Each remote that passes entries
 * on may introduce at most max_new_per_source new peers per
 * source_window_ms (a token bucket: that many at once, refilled over the
 * window). */
typedef struct mk_discovery_config {
    uint32_t announce_interval_ms; /* [45000] re-sign and re-announce */
    uint32_t announce_jitter_pct;  /* [50] interval × U[1-j, 1+j] */
    uint32_t purge_after_ms;       /* [300000] forget silent peers */
    uint32_t max_time_drift_ms;    /* [50000] refuse gossip this far off,
                                      and any entry this far ahead */
    uint32_t rtt_probe_interval_ms; /* [30000] ping every peer, jittered */
    uint32_t departure_window_ms;  /* [500] let the departure propagate */
    uint32_t neighbours;           /* [5] persistent gossip links */
    uint32_t max_peers;            /* [4096] catalog entries */
    uint32_t max_catalog_bytes;    /* [16 MiB] signed entry bytes held */
    uint32_t max_new_per_source;   /* [1024] new peers one remote brings */
    uint32_t source_window_ms;     /* [60000] ... per this window */
    /* [3 × the longest announce period, at least 10 s] a neighbour link
     * that delivers nothing for this long is closed: an honest neighbour
     * re-announces itself on it every period. */
    uint32_t idle_timeout_ms;
} mk_discovery_config;

typedef struct mk_node_config {
    uv_loop_t *loop;         /* borrowed */
    const mk_keypair *key;   /* copied */
    const mk_id *network;    /* copied; NULL: MK_UNIVERSE */
    const char *listen;      /* "host:port"; NULL: dial-only (ephemeral) */
    /* "PEERID@host:port" strings (copied). */
    const char *const *bootstrap;
    size_t n_bootstrap;
    const char *const *tags; /* copied */
    size_t n_tags;
    mk_discovery_config discovery;
    size_t max_frame;        /* 0: MK_LINK_MAX_FRAME_DEFAULT */
    /* true: the node keeps no metrics registry (mk_node_metrics returns
     * NULL, and the registry calls given it say MK_EMETRICS_OFF). What
     * runs on the node then updates nothing and skips the clock reads
     * taken only for histograms (a group's command latency). Metrics are
     * on by default; docs/observability.md says what they cost. */
    bool metrics_off;
} mk_node_config;

typedef struct mk_node mk_node;

/* Creates the node (binding its listener); discovery starts with
 * mk_node_start. Returns 0 and `*out`, or a negative code with `err`
 * (MK_ERRMSG_SIZE, may be NULL) saying what was wrong, e.g. a malformed
 * bootstrap string. */
int mk_node_new(const mk_node_config *cfg, mk_node **out, char *err);

/* Starts discovery: contacts the bootstrap peers (retrying with backoff
 * until one answers) and arms the timers. */
int mk_node_start(mk_node *node);

/* Departs: broadcasts a signed departure, waits the departure window,
 * closes every link and frees the node, then calls `cb` (may be NULL). */
void mk_node_close(mk_node *node, mk_close_cb cb, void *data);

uv_loop_t *mk_node_loop(const mk_node *node);

/* Per-node state of layers above (a cache of group clients, say), so
 * they need no global state. `key` identifies the owner (the address of
 * a static in its file). `release` (may be NULL) runs once when the node
 * starts closing, while its loop and links still work. MK_EEXIST when the
 * key is taken, MK_ECLOSED once the node is closing, MK_ENOMEM. */
int mk_node_set_extension(mk_node *node, const void *key, void *value,
                          void (*release)(void *value));
/* Drops `key` without calling its release: for a layer that closes
 * before the node. No-op when the key is not set or the node is already
 * closing (release has run then). */
void mk_node_remove_extension(mk_node *node, const void *key);
/* The value set for `key`, or NULL. */
void *mk_node_extension(const mk_node *node, const void *key);
const mk_peer_id *mk_node_id(const mk_node *node);
/* The node's metrics registry (mosaik/metrics.h): links, discovery, and
 * whatever runs on the node (groups, modules) while it runs. Owned by the
 * node and freed with it; objects that register series remove them when
 * they close, which they do before the node. docs/observability.md lists
 * the families. NULL when the node was made with metrics_off: the
 * registry calls then answer MK_EMETRICS_OFF rather than empty output. */
struct mk_metrics *mk_node_metrics(const mk_node *node);
const mk_id *mk_node_network(const mk_node *node);
const mk_keypair *mk_node_key(const mk_node *node);
mk_transport *mk_node_transport(mk_node *node);
/* The address peers reach this node at ("" when dial-only). */
const char *mk_node_addr(const mk_node *node);

/* ---- the local entry ----------------------------------------------------
 * Each mutation that changes something bumps the version, re-signs and
 * gossips the entry. Return 1 (changed), 0 (no change) or a negative code;
 * a mutation that would make the signed entry larger than
 * MK_ENTRY_MAX_WIRE fails with MK_EMSGSIZE and changes nothing.
 */
int mk_node_add_tag(mk_node *node, const char *tag);
int mk_node_remove_tag(mk_node *node, const char *tag);
int mk_node_add_stream(mk_node *node, const mk_id *stream);
int mk_node_remove_stream(mk_node *node, const mk_id *stream);
int mk_node_add_group(mk_node *node, const mk_id *group);
int mk_node_remove_group(mk_node *node, const mk_id *group);
/* Replaces every ticket of t->class with `t` (copied). */
int mk_node_set_ticket(mk_node *node, const mk_ticket *t);
int mk_node_remove_tickets(mk_node *node, const mk_id *cls);
const mk_peer_entry *mk_node_entry(const mk_node *node);

/* ---- the catalog -------------------------------------------------------- */

typedef struct mk_peer_info {
    const mk_peer_entry *entry;
    int64_t rtt_us;     /* smoothed RTT (RFC 6298), -1 before any sample */
    int64_t age_ms;     /* since its version's update clock, by our clock */
} mk_peer_info;

/* Peers known, not counting this node. */
size_t mk_node_peer_count(const mk_node *node);

/* Fills `out` for `peer`; false when unknown. Pointers stay valid until
 * control returns to the loop. */
bool mk_node_peer(const mk_node *node, const mk_peer_id *peer,
                  mk_peer_info *out);

/* Calls `fn` for every peer (not this node) in PeerId order; stop early
 * by returning false. The catalog must not be changed from `fn`. */
void mk_node_peers_foreach(const mk_node *node,
                           bool (*fn)(const mk_peer_info *p, void *data),
                           void *data);

typedef enum mk_peer_event {
    MK_PEER_DISCOVERED,
    MK_PEER_UPDATED,
    MK_PEER_DEPARTED, /* a signed departure, or purged for silence */
} mk_peer_event;

/* `entry` is the new entry (DISCOVERED, UPDATED) or the last one known
 * (DEPARTED); valid only during the call. */
typedef void (*mk_peer_event_cb)(mk_node *node, mk_peer_event ev,
                                 const mk_peer_entry *entry, void *data);

typedef struct mk_node_watch mk_node_watch;

/* Registers `cb` until mk_node_unwatch. Events are delivered in the order
 * they happen, on the loop. Returns 0 or MK_ENOMEM. */
int mk_node_watch_add(mk_node *node, mk_peer_event_cb cb, void *data,
                      mk_node_watch **out);
void mk_node_unwatch(mk_node_watch *w);

/* What discovery refused and cut, since the node started. */
typedef struct mk_discovery_stats {
    uint64_t refused_oversize; /* entries over MK_ENTRY_MAX_WIRE */
    uint64_t refused_future;   /* dated beyond max_time_drift ahead */
    uint64_t refused_drift;    /* gossip/departures outside the drift */
    uint64_t refused_full;     /* new peers that could not get a place */
    uint64_t refused_rate;     /* past a source's max_new_per_source */
    uint64_t evicted;          /* unverified peers evicted for others */
    uint64_t sync_cut;         /* snapshots cut at the per-exchange bound */
    uint64_t links_idle;       /* discovery links closed for silence */
    uint64_t nbrs_refused;     /* inbound neighbour links refused/evicted */
    uint64_t entries;          /* entries stored: new peers, new versions */
    uint64_t syncs;            /* catalog exchanges completed */
    /* Inbound exchanges past the full-exchange limit answered with a
     * referral (our entry and a sample of peers), and those turned away
     * because even the referrals were at their limit. */
    uint64_t syncs_referred, syncs_refused;
    uint64_t probes;           /* RTT probes that dialled the peer */
    size_t peers, catalog_bytes; /* held now */
} mk_discovery_stats;

void mk_node_discovery_stats(const mk_node *node, mk_discovery_stats *out);

/* Offers a signed entry learned elsewhere (a group peer's update, a ping
 * reply). Returns 1 when it was new or newer, 0 when not, or a negative
 * code (MK_EDECODE, MK_EMSGSIZE, MK_EBAD_SIGNATURE, MK_EWRONG_NETWORK,
 * MK_ESTALE for too old, dated ahead or tombstoned, MK_EFULL when the
 * catalog is full). It counts as heard of, not verified. */
int mk_node_feed(mk_node *node, const uint8_t *wire, size_t len);

/* Exchanges catalogs with `peer` now (e.g. after a remote closed with
 * MK_CLOSE_UNKNOWN_PEER). `addr` may be NULL to use the catalog's. */
int mk_node_sync_with(mk_node *node, const mk_peer_id *peer,
                      const char *addr);

/* Dials `peer` speaking `alpn`, trying the addresses in its catalog entry
 * in turn. Same contract as mk_transport_connect; MK_ENOENT (returned, cb
 * not called) when the peer is not in the catalog. */
int mk_node_dial(mk_node *node, const mk_peer_id *peer, const char *alpn,
                 mk_connect_cb cb, void *data);

/* Parses "PEERID@host:port" (PeerId as 64 hex). 0 or MK_EINVAL. */
int mk_parse_peer_addr(const char *s, mk_peer_id *peer, char *addr,
                       size_t addr_len);

#endif /* MK_NODE_H */
