/* Links: authenticated, encrypted, framed connections between two nodes.
 *
 * A link is one TCP connection carrying TLS 1.3, mutually authenticated by
 * the nodes' Ed25519 keys (self-signed certificates made from the key at
 * start). The dialer names the PeerId it expects and the handshake fails on
 * any other; the acceptor learns the remote PeerId from the handshake. The
 * ALPN names the protocol the link speaks (one per protocol).
 *
 * On the wire, after the handshake, every message is a frame: a u32
 * big-endian header then the payload. The header's top bit marks a close
 * frame, whose payload is a varint close code and a reason string; a data
 * frame's length is at most the transport's max_frame (default 16 MiB).
 * A peer that breaks these rules is closed with the matching code and the
 * node keeps serving everyone else.
 *
 * A link holds a socket and buffers, so nothing a remote does may hold
 * one for free: a frame that has started must finish within the
 * transport's frame_timeout_ms (a peer dribbling a large frame is closed
 * with MK_CLOSE_IDLE_TIMEOUT), its buffer grows only as its bytes arrive,
 * and a link may have an idle timeout (mk_link_set_idle_timeout). Accepted
 * links start with the transport's idle_timeout_ms; a protocol whose links
 * are quiet on purpose turns it off once the remote has proved who it is.
 *
 * Links live on their transport's event loop and are not thread-safe.
 * Every link ends exactly once in its close callback; the link's memory is
 * released after that callback returns.
 */
#ifndef MK_LINK_H
#define MK_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "mosaik/key.h"

/* Close codes (mosaik's table, SPEC'd in reference/mosaik.md §8). */
#define MK_CLOSE_MAP(XX)                                                      \
    XX(INVALID_ALPN, 100, "protocol not served here")                        \
    XX(DIFFERENT_NETWORK, 101, "remote is on another network")               \
    XX(CANCELLED, 102, "cancelled")                                          \
    XX(UNEXPECTED, 103, "connection ended without a close frame")            \
    XX(SUCCESS, 200, "done")                                                  \
    XX(GRACEFUL_SHUTDOWN, 204, "shutting down")                              \
    XX(PROTOCOL_VIOLATION, 400, "malformed message")                          \
    XX(UNKNOWN_PEER, 401, "peer is not in the catalog")                      \
    XX(IDLE_TIMEOUT, 408, "idle or too slow for too long")                  \
    XX(FRAME_TOO_LARGE, 413, "frame larger than the maximum")                \
    XX(TOO_MANY_LINKS, 429, "too many links")                                 \
    XX(STREAM_NOT_ALLOWED, 10403, "not allowed to subscribe")                \
    XX(STREAM_NOT_FOUND, 10404, "no such stream")                            \
    XX(STREAM_TOO_SLOW, 10413, "consumer fell behind")                       \
    XX(STREAM_NO_CAPACITY, 10509, "producer has no capacity")                \
    XX(GROUP_INVALID_HANDSHAKE, 30400, "bad group handshake")                \
    XX(GROUP_NOT_ALLOWED, 30403, "not allowed in the group")                 \
    XX(GROUP_NOT_FOUND, 30404, "no such group")                              \
    XX(GROUP_INVALID_PROOF, 30405, "group proof does not verify")            \
    XX(GROUP_TIMEOUT, 30408, "group peer timed out")                         \
    XX(GROUP_ALREADY_BONDED, 30429, "already bonded")

enum {
#define MK_CLOSE_ENUM(name, code, text) MK_CLOSE_##name = (code),
    MK_CLOSE_MAP(MK_CLOSE_ENUM)
#undef MK_CLOSE_ENUM
};

/* Text for a close code; never NULL. */
const char *mk_close_text(uint32_t code);

#define MK_LINK_MAX_FRAME_DEFAULT (16u << 20)
#define MK_ALPN_MAX 64

typedef struct mk_link mk_link;

/* A frame arrived. `frame` is valid only during the call. */
typedef void (*mk_link_frame_cb)(mk_link *link, const uint8_t *frame,
                                 size_t len, void *data);

/* The link ended. `code` is the close code: the remote's when it sent a
 * close frame, the local one when mk_link_close was called, or
 * MK_CLOSE_UNEXPECTED when the connection just ended. `status` is 0 for
 * an orderly close (either side's close frame) or a negative MK_E* code
 * saying what broke. Called exactly once; the link is freed after. */
typedef void (*mk_link_close_cb)(mk_link *link, uint32_t code, int status,
                                 void *data);

/* Installs the callbacks (replacing earlier ones). Frames that arrive
 * before any frame callback is set are held, in order, and delivered when
 * it is set, so an accept handler may install them late. */
void mk_link_set_callbacks(mk_link *link, mk_link_frame_cb on_frame,
                           mk_link_close_cb on_close, void *data);

/* Queues one data frame (the bytes are copied or encrypted before this
 * returns, so `frame` may be reused at once; frames sent in one loop
 * iteration are encrypted together, into full TLS records, before the loop
 * next waits for I/O). Returns 0, MK_EMSGSIZE when longer than max_frame,
 * MK_ECLOSED once the link is closing, or MK_ENOMEM.
 * Never blocks; mk_link_queued tells how much waits for the socket. */
int mk_link_send(mk_link *link, const void *frame, size_t len);

/* One piece of a frame for mk_link_sendv. */
typedef struct mk_iov {
    const void *base;
    size_t len;
} mk_iov;

/* Queues one data frame made of `n` pieces, in order, as mk_link_send
 * would queue their concatenation (without building it first). */
int mk_link_sendv(mk_link *link, const mk_iov *parts, size_t n);

/* Bytes accepted by mk_link_send that the socket has not yet taken. */
size_t mk_link_queued(const mk_link *link);

/* Called once each time the queue drains to empty after having held data
 * (for producers that pause when a consumer is slow). NULL to stop. */
typedef void (*mk_link_drain_cb)(mk_link *link, void *data);
void mk_link_on_drain(mk_link *link, mk_link_drain_cb cb);

/* Stops / resumes delivering frames (TCP flow control pushes back on the
 * sender while paused). */
void mk_link_pause(mk_link *link);
void mk_link_resume(mk_link *link);

/* Sends a close frame with `code` and `reason` (may be NULL), flushes what
 * was queued before it, then closes the connection; the close callback
 * follows with this code. Idempotent. */
void mk_link_close(mk_link *link, uint32_t code, const char *reason);

/* The authenticated remote PeerId. */
const mk_peer_id *mk_link_peer(const mk_link *link);

/* The protocol the link speaks. */
const char *mk_link_alpn(const mk_link *link);

/* "ip:port" of the remote end. */
const char *mk_link_remote_addr(const mk_link *link);

/* 32 bytes both ends derive from the TLS session (RFC 8446 exporter, with
 * the ALPN as context): the same on both sides of one link, different on
 * every other link. 0 or MK_ETLS. */
int mk_link_export(const mk_link *link, const char *label, uint8_t out[32]);

/* Smoothed RTT of the TCP connection in microseconds (TCP_INFO), or -1. */
int64_t mk_link_rtt_us(const mk_link *link);

/* Totals of payload bytes and frames, each direction. */
typedef struct mk_link_stats {
    uint64_t frames_in, frames_out, bytes_in, bytes_out;
} mk_link_stats;
void mk_link_stats_get(const mk_link *link, mk_link_stats *out);

/* Closes the link with MK_CLOSE_IDLE_TIMEOUT (its close callback gets
 * status MK_ETIMEDOUT) once, for `ms` while the link was reading, nothing
 * has arrived from the remote and nothing sent to it has left (a remote
 * reading a long answer is busy, not idle); 0 turns the limit off. Time spent
 * paused or without a frame callback does not count: the quiet is then
 * ours, not the remote's. The clock restarts at every call. Accepted links
 * start with their transport's idle_timeout_ms, dialed links with none.
 * A protocol whose links are quiet on purpose (a subscription, a Raft
 * bridge) calls this with 0 once the remote has passed its handshake;
 * request/response protocols may shorten it. */
void mk_link_set_idle_timeout(mk_link *link, uint32_t ms);

/* A user pointer, untouched by the link. */
void mk_link_set_data(mk_link *link, void *data);
void *mk_link_get_data(const mk_link *link);

#endif /* MK_LINK_H */
