/* The transport: one node's TLS listener, its dialer and the per-protocol
 * accept handlers (include/mosaik/link.h describes the links it makes).
 *
 * It owns the node's TLS context (a self-signed certificate made from the
 * node's Ed25519 key at start) and one listening TCP socket. Incoming
 * links are handed to the handler registered for their ALPN; a link whose
 * ALPN nobody handles is closed with MK_CLOSE_INVALID_ALPN. A peer that
 * never finishes its handshake is dropped after handshake_timeout_ms.
 *
 * Accepted links are bounded so that remotes cannot exhaust the process's
 * file descriptors: at most max_links_per_peer from one PeerId and
 * max_links in all; one past either limit is closed with
 * MK_CLOSE_TOO_MANY_LINKS right after its handshake. Connections arriving
 * while a quarter (at least 16) more than max_links exist (handshakes,
 * closings) are dropped before any TLS is spent on them. Dialed links are not counted:
 * the node chose to open them.
 */
#ifndef MK_TRANSPORT_H
#define MK_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mosaik/key.h"
#include "mosaik/lifecycle.h"
#include "mosaik/link.h"

typedef struct mk_transport mk_transport;

typedef struct mk_transport_config {
    uv_loop_t *loop;          /* borrowed; outlives the transport */
    const mk_keypair *key;    /* copied */
    const char *listen;       /* "host:port" (port 0: any), NULL: don't
                                 listen (a dial-only node) */
    size_t max_frame;         /* 0: MK_LINK_MAX_FRAME_DEFAULT */
    uint32_t handshake_timeout_ms; /* 0: 5000 */
    uint32_t connect_timeout_ms;   /* 0: 5000, TCP connect + handshake */
    /* Accepted links' idle timeout (mk_link_set_idle_timeout); 0:
     * MK_TRANSPORT_IDLE_DEFAULT_MS, MK_TRANSPORT_NO_TIMEOUT: none. */
    uint32_t idle_timeout_ms;
    /* Every link: a frame whose first byte arrived must be whole within
     * this; 0: MK_TRANSPORT_FRAME_DEFAULT_MS, MK_TRANSPORT_NO_TIMEOUT:
     * none. */
    uint32_t frame_timeout_ms;
    uint32_t max_links_per_peer; /* accepted; 0: 128 */
    uint32_t max_links; /* accepted; 0: half the soft RLIMIT_NOFILE, at
                           least 16 and at most 4096 */
} mk_transport_config;

#define MK_TRANSPORT_IDLE_DEFAULT_MS 120000u
#define MK_TRANSPORT_FRAME_DEFAULT_MS 60000u
#define MK_TRANSPORT_NO_TIMEOUT UINT32_MAX

/* Creates the TLS context and binds/listens. Returns 0 and `*out`, or a
 * negative code (MK_EADDRINUSE-style negated errno, MK_ETLS, MK_EINVAL for
 * a bad address) with the reason in `err` (MK_ERRMSG_SIZE, may be NULL). */
int mk_transport_new(const mk_transport_config *cfg, mk_transport **out,
                     char *err);

/* The address actually bound ("127.0.0.1:40123"), or "" when not
 * listening. Valid until the transport is freed. */
const char *mk_transport_listen_addr(const mk_transport *t);

const mk_peer_id *mk_transport_id(const mk_transport *t);

/* An accepted link, handshake done, remote authenticated. The handler owns
 * it from here: it must set callbacks or close it. */
typedef void (*mk_accept_cb)(mk_link *link, void *data);

/* Serves `alpn` (copied, at most MK_ALPN_MAX-1 bytes) with `cb`.
 * MK_EEXIST when it is already served. */
int mk_transport_serve(mk_transport *t, const char *alpn, mk_accept_cb cb,
                       void *data);

/* mk_transport_serve with options: 0 or MK_SERVE_* flags (MK_EINVAL for
 * any other bit).
 *
 * MK_SERVE_NO_RESUME: the protocol's dialers seldom dial this node again
 * (one-shot exchanges, links meant to last), so its links are sent no
 * resumption ticket. A full handshake that issues one costs both ends
 * together about a sixth more CPU (OpenSSL 3.0; `bench_link -o
 * connect`), which only a later dial from the same remote earns back.
 * Such a dialer's next link to us is a full handshake, unless a link of
 * another protocol left it a ticket. */
#define MK_SERVE_NO_RESUME 0x1u
int mk_transport_serve_ex(mk_transport *t, const char *alpn, unsigned flags,
                          mk_accept_cb cb, void *data);

/* Stops serving `alpn`, so that a service may close before its node: a
 * link whose handshake ends from now on is refused with
 * MK_CLOSE_INVALID_ALPN, as for a protocol never served. Links already
 * handed to the handler stay open and stay the handler's to close; the
 * transport never calls it again. 0, or MK_ENOENT when `alpn` is not
 * served. It may be served again afterwards. */
int mk_transport_unserve(mk_transport *t, const char *alpn);

/* The dial finished: `link` is ready (status 0), or NULL with a negative
 * status: MK_ECONNECT_TIMEOUT, MK_ECONNREFUSED, MK_EWRONG_PEER (the remote
 * key is not `expect`), MK_ETLS, MK_ECANCELED (transport closing), … */
typedef void (*mk_connect_cb)(mk_link *link, int status, void *data);

/* Dials `addr` ("host:port") speaking `alpn`, expecting the remote to be
 * `expect` (copied). Returns 0 and later calls `cb` exactly once, or a
 * negative code (MK_EINVAL for a bad address) and never calls it. */
int mk_transport_connect(mk_transport *t, const mk_peer_id *expect,
                         const char *addr, const char *alpn, mk_connect_cb cb,
                         void *data);

/* What the transport's links carried, summed over every link since the
 * transport started (mk_link_stats per link), and the links open now. */
typedef struct mk_transport_stats {
    uint64_t frames_in, frames_out, bytes_in, bytes_out; /* payload */
    uint64_t links_dialed, links_accepted; /* that completed the handshake */
    /* Of those, the ones that resumed an earlier session instead of a
     * full handshake (a dialer offers the last ticket from the PeerId it
     * dials; both sides count). */
    uint64_t links_resumed;
    size_t links_open;                     /* past the handshake, alive */
} mk_transport_stats;

void mk_transport_stats_get(const mk_transport *t, mk_transport_stats *out);

/* Stops listening, cancels pending dials (their callbacks get
 * MK_ECANCELED), closes every live link with MK_CLOSE_GRACEFUL_SHUTDOWN
 * (their close callbacks fire), then frees everything and calls `cb`. */
void mk_transport_close(mk_transport *t, mk_close_cb cb, void *data);

#endif /* MK_TRANSPORT_H */
