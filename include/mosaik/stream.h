/* Streams: typed publish/subscribe between nodes (reference/mosaik.md §4).
 *
 * A stream is named by a StreamId. A node that produces it lists the id in
 * its signed discovery entry; every consumer of the id watches its catalog,
 * dials each eligible producer on ALPN MK_ALPN_STREAMS and sends a
 * handshake {network, stream, criteria}. The producer checks the consumer
 * (known in its catalog, same network, stream open here, capacity,
 * `require` predicates, ticket validators), answers StartStream and then
 * sends one frame per datum. There is no history: a consumer sees what is
 * sent after it subscribed, in order per producer.
 *
 * The producer never blocks. Each consumer has its own bounded queue
 * (buffer_size datums, encoded once and shared); a consumer whose queue
 * overflows misses that datum and, by default, is cut with
 * MK_CLOSE_STREAM_TOO_SLOW, so one slow reader cannot stall the others or
 * grow the producer's memory. A consumer reconnects with exponential
 * backoff after transient failures, gives up on refusals (§4.4), and
 * re-judges every producer whenever the catalog changes and when a ticket
 * expires; the producer re-judges its consumers the same way.
 *
 * Handles: one mk_streams per node (it serves the ALPN and routes
 * subscriptions), any number of mk_producer (one per StreamId per node)
 * and mk_consumer on it. Everything runs on the node's loop and is not
 * thread-safe. Closing is asynchronous: memory is released before the
 * close callback runs, and the handle must not be used after the close
 * call. Order of shutdown: close producers and consumers, then the
 * mk_streams, then the node (the mk_streams may also close after the node:
 * see mk_streams_close).
 *
 * Callbacks into the application (datum, subscription, condition) may call
 * any function of this header, including the close functions.
 */
#ifndef MK_STREAM_H
#define MK_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/codec.h"
#include "mosaik/id.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"
#include "mosaik/ticket.h"

#define MK_ALPN_STREAMS "/mosaik/streams/1.0"

/* Defaults (reference/mosaik.md §4.7, §10.3). */
#define MK_STREAM_BUFFER_DEFAULT 1024
#define MK_STREAM_CRITERIA_MAX 4096 /* bytes of handshake criteria */

/* ---- stream ids ---------------------------------------------------------- */

/* derive(owner_root, surface): how the coalition layer names its public
 * surfaces (SPEC: "each public surface derive(root, "<surface name>")").
 * `surface` is NUL-terminated. Cannot fail. */
void mk_stream_id(const mk_id *owner_root, const char *surface, mk_id *out);

/* id(name), mosaik's with_stream_id("name"): 64 hex characters are taken
 * as the id itself, anything else is hashed. Cannot fail. */
void mk_stream_id_from_str(mk_id *out, const char *name);

/* The id whose 32 bytes are `raw`. Cannot fail. */
void mk_stream_id_from_raw(mk_id *out, const uint8_t raw[MK_ID_LEN]);

/* ---- typed data ---------------------------------------------------------- */

/* How one C type of datum travels. `size` is sizeof the C value (the
 * consumer decodes into zeroed scratch memory of that size). `encode`
 * appends the wire form of *value to `out` and returns 0 or a negative
 * code (mk_buf's sticky error counts as failure). `decode` fills *out from
 * exactly `len` bytes and returns 0, or a negative code with nothing left
 * allocated (a consumer treats a datum it cannot decode as a broken
 * producer: §4.4). `clear`, may be NULL, releases what a successful decode
 * allocated inside *value. */
typedef struct mk_datum_codec {
    size_t size;
    int (*encode)(const void *value, mk_buf *out);
    int (*decode)(const uint8_t *bytes, size_t len, void *out);
    void (*clear)(void *value);
} mk_datum_codec;

/* A UTF-8 string datum whose C value is a `char *` (NUL-terminated):
 * varint length then the bytes, which is also how mosaik's postcard
 * encodes a String, so "test" is 5 bytes on the wire. decode mallocs the
 * string; clear frees it. */
extern const mk_datum_codec mk_datum_codec_string;

/* ---- conditions ("when") ------------------------------------------------- */

/* Predicates over a peer as the local catalog sees it (entry, RTT). */
typedef bool (*mk_peer_pred_fn)(const mk_peer_info *peer, void *data);
typedef struct mk_peer_pred {
    mk_peer_pred_fn fn;
    void *data; /* borrowed: must outlive the handle it is given to */
} mk_peer_pred;

typedef enum mk_stream_cond_kind {
    /* At least `min` peers connected (subscribed consumers for a producer,
     * connected producers for a consumer), counting only peers that carry
     * every tag in `tags` and pass `pred`. */
    MK_WHEN_SUBSCRIBED = 0,
    /* The handle is online (its online_when condition holds). */
    MK_WHEN_ONLINE = 1,
} mk_stream_cond_kind;

typedef struct mk_stream_cond {
    mk_stream_cond_kind kind;
    size_t min;
    const char *const *tags; /* copied when the condition is registered */
    size_t n_tags;
    bool (*pred)(const mk_peer_entry *peer, void *data); /* NULL: any */
    void *pred_data; /* borrowed */
    bool unmet;      /* inverts the whole condition (offline, unsubscribed) */
} mk_stream_cond;

/* A registered condition. The callback runs each time the condition's
 * truth value changes (both edges, with the new value), on the loop,
 * right after the change that caused it. */
typedef struct mk_stream_when mk_stream_when;
typedef void (*mk_stream_when_cb)(bool met, void *data);

/* Unregisters (safe from inside the callback). Conditions still
 * registered are released when their handle closes; do not cancel them
 * after that. NULL is fine. */
void mk_stream_when_cancel(mk_stream_when *w);

/* ---- common per-channel figures ------------------------------------------ */

typedef struct mk_stream_stats {
    uint64_t items;   /* datums sent (producer) or delivered (consumer) */
    uint64_t bytes;   /* their payload bytes, without frame headers */
    uint64_t dropped; /* producer: datums this consumer missed (overflow) */
} mk_stream_stats;

typedef enum mk_channel_state {
    MK_CHANNEL_CONNECTING = 0, /* dialing, handshaking or backing off */
    MK_CHANNEL_CONNECTED = 1,
    MK_CHANNEL_TERMINATED = 2, /* refused or gave up; re-judged on the
                                  next catalog change of that peer */
} mk_channel_state;

typedef struct mk_stream_channel {
    mk_peer_id peer;          /* the consumer (producer side) or producer */
    mk_channel_state state;
    mk_stream_stats stats;
    int64_t connected_at_ms;  /* Unix ms of the current connection; 0 */
    uint32_t last_code;       /* close code of the last disconnect; 0 */
    size_t queued;            /* datums waiting in this channel's queue */
} mk_stream_channel;

/* ---- the per-node streams service ---------------------------------------- */

typedef struct mk_streams mk_streams;

/* Serves MK_ALPN_STREAMS on `node` (borrowed). Returns 0 and `*out`,
 * MK_EEXIST when the node already has one, MK_ECLOSED when the node is
 * closing, or MK_ENOMEM. */
int mk_streams_new(mk_node *node, mk_streams **out);

/* Call it once every producer and consumer made on it is closed. Stops
 * serving MK_ALPN_STREAMS (a subscription arriving now is refused with
 * MK_CLOSE_INVALID_ALPN), closes the links still waiting for their
 * handshake, frees, then calls `cb` (may be NULL) from the loop. The node
 * may keep running. It may also be called after mk_node_close (the node
 * tells the service it is closing, and the service then leaves it alone),
 * but the loop must still run. */
void mk_streams_close(mk_streams *s, mk_close_cb cb, void *data);

mk_node *mk_streams_node(const mk_streams *s);

/* ---- producers ------------------------------------------------------------ */

typedef struct mk_producer mk_producer;

/* A consumer subscribed (`subscribed` true, code 0) or its subscription
 * ended with close `code` (sent by us, e.g. MK_CLOSE_STREAM_TOO_SLOW or
 * MK_CLOSE_STREAM_NOT_ALLOWED, or received from the consumer). */
typedef void (*mk_producer_sub_cb)(mk_producer *p, const mk_peer_id *consumer,
                                   bool subscribed, uint32_t code,
                                   void *data);

typedef struct mk_producer_config {
    mk_id stream;                /* required */
    const mk_datum_codec *codec; /* borrowed; NULL: bytes only */
    size_t buffer_size;          /* 0: MK_STREAM_BUFFER_DEFAULT datums */
    bool lagging_drop_only;      /* overflow drops without cutting */
    size_t max_consumers;        /* 0: unlimited */
    size_t max_datum;            /* 0: MK_LINK_MAX_FRAME_DEFAULT bytes */
    /* Every predicate must accept the consumer (AND), at subscription and
     * on each catalog change of that consumer. The array is copied. */
    const mk_peer_pred *require;
    size_t n_require;
    /* Every validator must accept one of the consumer's tickets (AND);
     * the array is copied, the validators are borrowed and must outlive
     * the producer. */
    const struct mk_ticket_validator *const *validators;
    size_t n_validators;
    /* Judges the handshake's criteria bytes (NULL: accept any). */
    bool (*accept_criteria)(const mk_peer_info *consumer,
                            const uint8_t *criteria, size_t len, void *data);
    /* When sending is allowed; copied. NULL: subscribed by at least one
     * consumer. Must be of kind MK_WHEN_SUBSCRIBED. */
    const mk_stream_cond *online_when;
    mk_producer_sub_cb on_subscription; /* may be NULL */
    /* The backlog (mk_producer_backlog) fell back to a quarter of
     * buffer_size after reaching half of it or after a send returned
     * MK_EFULL: a good moment to send more. May be NULL. */
    void (*on_writable)(mk_producer *p, void *data);
    void *data; /* for every callback above */
} mk_producer_config;

/* Opens the producer of cfg->stream on the streams' node and lists the
 * stream in the node's entry. Returns 0 and `*out`, MK_EEXIST when this
 * node already produces that stream, MK_EINVAL (a bad online_when), or
 * MK_ENOMEM, with a reason in `err` (MK_ERRMSG_SIZE, may be NULL). */
int mk_producer_open(mk_streams *s, const mk_producer_config *cfg,
                     mk_producer **out, char *err);

/* Unlists the stream, closes every subscription with
 * MK_CLOSE_GRACEFUL_SHUTDOWN and frees the producer, then calls `cb` (may
 * be NULL). Datums still queued are discarded. The stream id is free for
 * a new producer as soon as this returns. */
void mk_producer_close(mk_producer *p, mk_close_cb cb, void *data);

/* Sends one datum (the bytes are copied) to every subscribed consumer.
 * Returns the number of consumers it went to (queued or written), or
 * MK_EOFFLINE (online_when does not hold), MK_EFULL (every subscribed
 * consumer's queue is full: nobody could take it, nothing was dropped;
 * retry after on_writable), MK_EMSGSIZE (longer than max_datum),
 * MK_ECLOSED or MK_ENOMEM. A consumer whose queue is full while others
 * have room misses the datum (counted in its `dropped`) and, unless
 * lagging_drop_only, is cut with MK_CLOSE_STREAM_TOO_SLOW. */
int mk_producer_send_bytes(mk_producer *p, const void *bytes, size_t len);

/* Encodes *value with the producer's codec, then as
 * mk_producer_send_bytes. MK_EINVAL without a codec; the codec's error
 * when encoding fails. */
int mk_producer_send(mk_producer *p, const void *value);

bool mk_producer_is_online(const mk_producer *p);
const mk_id *mk_producer_stream(const mk_producer *p);

/* Consumers subscribed now. */
size_t mk_producer_subscribers(const mk_producer *p);

/* The most datums waiting in any one subscriber's queue. */
size_t mk_producer_backlog(const mk_producer *p);

/* Totals since open: datums and payload bytes sent (counted once per
 * consumer), and drops. */
void mk_producer_stats(const mk_producer *p, mk_stream_stats *out);

/* Fills up to `cap` entries of `out` with the subscriptions (counters
 * start at zero with each subscription) and returns how many there are. */
size_t mk_producer_channels(const mk_producer *p, mk_stream_channel *out,
                            size_t cap);

/* Registers `cond` (copied). Returns 1 when it holds now, 0 when not, or
 * MK_EINVAL / MK_ENOMEM (nothing registered). `out` may be NULL. */
int mk_producer_when(mk_producer *p, const mk_stream_cond *cond,
                     mk_stream_when_cb cb, void *data, mk_stream_when **out);

/* Whether `cond` holds now. */
bool mk_producer_is_met(const mk_producer *p, const mk_stream_cond *cond);

/* ---- consumers ------------------------------------------------------------ */

typedef struct mk_consumer mk_consumer;

/* One datum from `producer`, in that producer's order. `bytes` is the
 * payload; `value` the decoded datum when the consumer has a codec (NULL
 * otherwise). Both are valid only during the call. Return 0 when taken,
 * or MK_EAGAIN to refuse it for now: the consumer keeps it, pauses
 * (mk_consumer_pause) and offers it again after mk_consumer_resume. */
typedef struct mk_datum {
    const mk_peer_id *producer;
    const uint8_t *bytes;
    size_t len;
    const void *value;
} mk_datum;
typedef int (*mk_consumer_datum_cb)(mk_consumer *c, const mk_datum *d,
                                    void *data);

/* A producer connected (`connected` true, code 0) or its connection ended
 * with close `code` (the producer's, or ours when we dropped it). */
typedef void (*mk_consumer_producer_cb)(mk_consumer *c,
                                        const mk_peer_id *producer,
                                        bool connected, uint32_t code,
                                        void *data);

/* Reconnection backoff; zero fields take the defaults in brackets
 * (mosaik's, §4.4). A series of failed attempts waits initial, then ×
 * multiplier each time up to max_interval, each wait jittered by
 * ±jitter_pct; after max_elapsed of failures the producer is given up
 * until its next catalog change. A connection or a datum resets it. */
typedef struct mk_backoff_config {
    uint32_t initial_ms;      /* [500] */
    uint32_t multiplier_pct;  /* [150] */
    uint32_t jitter_pct;      /* [50] */
    uint32_t max_interval_ms; /* [60000] */
    uint32_t max_elapsed_ms;  /* [300000] */
} mk_backoff_config;

typedef struct mk_consumer_config {
    mk_id stream;                /* required */
    const mk_datum_codec *codec; /* borrowed; NULL: bytes only */
    mk_consumer_datum_cb on_datum; /* required */
    const uint8_t *criteria;     /* copied; at most MK_STREAM_CRITERIA_MAX */
    size_t criteria_len;
    /* As for the producer, judged on each producer's catalog entry. */
    const mk_peer_pred *require;
    size_t n_require;
    const struct mk_ticket_validator *const *validators;
    size_t n_validators;
    /* Copied; NULL: online at once (at least 0 producers). */
    const mk_stream_cond *online_when;
    /* Datums held per producer while paused (frames that were already in
     * flight when the links were paused); 0: MK_STREAM_BUFFER_DEFAULT. */
    size_t buffer_size;
    mk_backoff_config backoff;
    mk_consumer_producer_cb on_producer; /* may be NULL */
    void *data;                          /* for every callback above */
} mk_consumer_config;

/* Opens a consumer and starts subscribing to every eligible producer in
 * the catalog. Returns 0 and `*out`, MK_EINVAL (no on_datum, criteria too
 * long, a bad online_when) or MK_ENOMEM, with a reason in `err`
 * (MK_ERRMSG_SIZE, may be NULL). Several consumers of one stream may
 * coexist on a node; each gets every datum. */
int mk_consumer_open(mk_streams *s, const mk_consumer_config *cfg,
                     mk_consumer **out, char *err);

/* Closes every connection (MK_CLOSE_GRACEFUL_SHUTDOWN), waits for dials
 * in flight to end, frees the consumer and calls `cb` (may be NULL).
 * Held datums are discarded. */
void mk_consumer_close(mk_consumer *c, mk_close_cb cb, void *data);

/* Stops delivering datums and pauses every link, so TCP flow control
 * pushes back on the producers (which cut us with TOO_SLOW if we stay
 * paused long enough). Idempotent. */
void mk_consumer_pause(mk_consumer *c);

/* Delivers what was held (from the loop, not from this call), then
 * resumes the links. Idempotent. */
void mk_consumer_resume(mk_consumer *c);

bool mk_consumer_is_online(const mk_consumer *c);
const mk_id *mk_consumer_stream(const mk_consumer *c);

/* Producers connected now. */
size_t mk_consumer_producers(const mk_consumer *c);

/* Totals since open over every producer. */
void mk_consumer_stats(const mk_consumer *c, mk_stream_stats *out);

/* Fills up to `cap` entries of `out` with one channel per known producer
 * (counters cover the channel's lifetime, across reconnects) and returns
 * how many there are. */
size_t mk_consumer_channels(const mk_consumer *c, mk_stream_channel *out,
                            size_t cap);

/* As mk_producer_when / mk_producer_is_met, counting connected
 * producers. */
int mk_consumer_when(mk_consumer *c, const mk_stream_cond *cond,
                     mk_stream_when_cb cb, void *data, mk_stream_when **out);
bool mk_consumer_is_met(const mk_consumer *c, const mk_stream_cond *cond);

#endif /* MK_STREAM_H */
