/* Internal: what stream.c (the per-node service, wire messages and
 * conditions), stream_producer.c and stream_consumer.c share. */
#ifndef MK_STREAM_INTERNAL_H
#define MK_STREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mosaik/codec.h"
#include "mosaik/stream.h"

/* ---- wire messages (the first frame each way; data frames are raw) ------
 *
 *   handshake  C→P  u8 1, network[32], stream[32], bytes criteria
 *   start      P→C  u8 2, network[32], stream[32]
 *
 * mosaik's ConsumerHandshake / StartStream (reference/mosaik.md App. A)
 * with a leading kind byte, so a reader can tell them apart from each
 * other and from anything a future version adds. Decoding is strict:
 * every byte must be consumed. */
enum {
    MK__STREAM_MSG_HANDSHAKE = 1,
    MK__STREAM_MSG_START = 2,
};

typedef struct mk__stream_hello {
    mk_id network, stream;
    const uint8_t *criteria; /* points into the decoded frame */
    size_t criteria_len;
} mk__stream_hello;

/* Appends a handshake to `b` (its sticky error reports failure).
 * MK_EINVAL when criteria are longer than MK_STREAM_CRITERIA_MAX. */
int mk__stream_handshake_encode(mk_buf *b, const mk_id *network,
                                const mk_id *stream, const uint8_t *criteria,
                                size_t criteria_len);
/* 0 or MK_EDECODE. */
int mk__stream_handshake_decode(const uint8_t *p, size_t len,
                                mk__stream_hello *out);
void mk__stream_start_encode(mk_buf *b, const mk_id *network,
                             const mk_id *stream);
/* 0 or MK_EDECODE. */
int mk__stream_start_decode(const uint8_t *p, size_t len, mk_id *network,
                            mk_id *stream);

/* ---- conditions ----------------------------------------------------------- */

/* An mk_stream_cond with its tags copied. */
typedef struct mk__cond {
    mk_stream_cond_kind kind;
    size_t min;
    char **tags;
    size_t n_tags;
    bool (*pred)(const mk_peer_entry *peer, void *data);
    void *pred_data;
    bool unmet;
} mk__cond;

/* MK_EINVAL for an unknown kind, MK_ENOMEM; dst is zeroed on failure. */
int mk__cond_copy(mk__cond *dst, const mk_stream_cond *src);
void mk__cond_free(mk__cond *c);

/* Whether `peer` (looked up in `node`'s catalog) carries every tag of `c`
 * and passes its predicate. A peer missing from the catalog matches only
 * a condition that asks nothing of it. */
bool mk__cond_peer_matches(const mk__cond *c, mk_node *node,
                           const mk_peer_id *peer);

/* The condition's value given how many connected peers match it and
 * whether the handle is online. */
bool mk__cond_value(const mk__cond *c, size_t matching, bool online);

/* The registered conditions of one handle. */
typedef struct mk__whens {
    struct mk_stream_when *head;
    int dispatching; /* >0 while callbacks run: cancel defers freeing */
} mk__whens;

struct mk_stream_when {
    mk__whens *set;
    mk__cond cond;
    mk_stream_when_cb cb;
    void *data;
    bool last; /* the value the callback last reported (or registration's) */
    bool removed;
    struct mk_stream_when *next;
};

/* Evaluates a condition of the handle `ctx`. */
typedef bool (*mk__cond_eval_fn)(void *ctx, const mk__cond *c);

/* Registers; returns 1 / 0 (holds now or not) or a negative code. */
int mk__whens_add(mk__whens *ws, const mk_stream_cond *cond,
                  mk_stream_when_cb cb, void *data, mk_stream_when **out,
                  mk__cond_eval_fn eval, void *ctx);
/* Re-evaluates every condition and calls back those whose value changed. */
void mk__whens_update(mk__whens *ws, mk__cond_eval_fn eval, void *ctx);
/* Frees every registration (the handle is going away). */
void mk__whens_free(mk__whens *ws);

/* ---- the per-node service ------------------------------------------------- */

typedef struct mk__pending mk__pending;

struct mk_streams {
    mk_node *node;
    mk_producer **producers; /* open producers, one per stream id */
    size_t n_producers, cap_producers;
    size_t n_consumers;
    mk__pending *pending; /* accepted links waiting for their handshake */
    uv_timer_t timer;     /* handshake deadlines, running while pending */
    bool timer_on;
    bool closing;
    bool node_closing; /* the node began closing: never touch it again */
    bool timer_closed;
    void (*close_cb)(void *data);
    void *close_data;
};

/* 0 or MK_EEXIST (another producer has the stream) or MK_ENOMEM. */
int mk__streams_add_producer(mk_streams *s, mk_producer *p);
void mk__streams_remove_producer(mk_streams *s, mk_producer *p);

/* stream_producer.c: takes over `link` for the subscription described by
 * `h`. Returns 0 when the link is now the producer's, or the close code
 * (with a reason in `why`, MK_ERRMSG_SIZE) for the caller to refuse with. */
uint32_t mk__producer_accept(mk_producer *p, mk_link *link,
                             const mk__stream_hello *h, char *why);
const mk_id *mk__producer_stream(const mk_producer *p);

/* A uniform in [0, n) from a caller-owned xorshift state (no globals). */
uint64_t mk__stream_rand(uint64_t *state);

/* How long until the Unix-ms instant `at` (clamped to [0, a day], since
 * expiries are re-checked when they come due anyway). */
uint64_t mk__stream_delay_until(int64_t at_ms);

#endif /* MK_STREAM_INTERNAL_H */
