/* Internal: what a transport and its links share (link.c, transport.c).
 *
 * A link is one uv_tcp_t, one timer and one TLS session. The transport
 * makes links (by dialing or accepting), hands them over once the
 * handshake is done, and runs the work links defer to the end of a loop
 * iteration: encrypting what was sent since, so that a burst of small
 * frames becomes a few full TLS records and a single write.
 */
#ifndef MK_LINK_INT_H
#define MK_LINK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mosaik/codec.h"
#include "mosaik/frame.h"
#include "mosaik/link.h"
#include "mosaik/tls.h"
#include "mosaik/transport.h"

/* An intrusive doubly linked list; a lone node points at itself. */
typedef struct mk__qnode {
    struct mk__qnode *prev, *next;
} mk__qnode;

static inline void mk__q_init(mk__qnode *q)
{
    q->prev = q->next = q;
}

static inline bool mk__q_empty(const mk__qnode *q)
{
    return q->next == q;
}

static inline void mk__q_push(mk__qnode *head, mk__qnode *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void mk__q_remove(mk__qnode *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    mk__q_init(n);
}

#define MK__CONTAINER(ptr, type, field)                                      \
    ((type *)(void *)((char *)(ptr)-offsetof(type, field)))

/* One read's buffer, shared by every link of a transport: libuv calls
 * alloc and read back to back, and the TLS session decrypts from it
 * before the callback returns (what it leaves is copied to the link's
 * `held`, link_bio.c). */
#define MK__READ_BUF (256u * 1024u)

#define MK__ADDR_LEN 64 /* "[v6 with scope]:port" */

/* Once the socket has taken `ct` bytes of a link's ciphertext, `payload`
 * bytes of its frames' payload are out (mk_link_queued). */
typedef struct mk__mark {
    uint64_t ct, payload;
} mk__mark;

enum mk__link_state {
    MK__LINK_HANDSHAKE, /* connecting or in the TLS handshake */
    MK__LINK_OPEN,      /* frames flow */
    MK__LINK_CLOSING,   /* a close frame is queued; waiting for the end */
    MK__LINK_DEAD,      /* handles are closing; the link is freed after */
};

struct mk_link {
    uv_tcp_t tcp; /* tcp.data and timer.data point back here */
    uv_timer_t timer; /* handshake deadline; while open, the watchdog
                         (link.c, rearm): idle and frame deadlines and the
                         trim of big send buffers; while closing, the close
                         deadline */
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    mk_transport *t;
    mk__qnode node; /* in t->links while the link exists */
    mk__qnode work; /* in t->work while it has deferred work */
    enum mk__link_state state;
    int handles; /* open libuv handles; the link is freed at 0 */

    bool dialer;
    bool handed;     /* the user owns it: the close callback is theirs */
    bool silent;     /* a failed dial whose caller already got an error */
    bool reading;    /* uv_read_start is in effect */
    bool paused;
    bool writing;    /* write_req is in flight with `fly` */
    bool shut;       /* uv_shutdown was issued */
    bool close_staged;
    bool want_pump; /* deferred: deliver held frames, read more */
    bool had_queued; /* queued went above 0 since the last drain */
    bool counted;    /* an accepted link in t->n_accepted */
    bool partial;    /* part of a frame (or TLS record) has arrived */

    /* The watchdog's inputs, in uv_now() milliseconds: the last bytes
     * read or taken by the socket, when the partial frame (or the last whole one) began, and when
     * big send buffers are due to be trimmed (0: not due). */
    uint64_t last_io, partial_since, trim_at;
    /* quiet()'s budget: small buffers shed at once `sheds` times in the
     * TRIM_MS window that began at `shed_window`. */
    uint64_t shed_window;
    unsigned sheds;
    uint32_t idle_ms; /* 0: no idle limit */

    SSL *ssl; /* its BIO is link_bio.c's, on the buffers below */
    mk__tls_auth auth;
    int bio_err; /* why the BIO failed a write (MK_ENOMEM), else 0 */
    /* Received ciphertext not yet decrypted: `rin_len` bytes at `rin` in
     * the transport's read buffer (only inside the read callback), after
     * `held` (from held_off), what earlier reads left. */
    const uint8_t *rin;
    size_t rin_len;
    mk_buf held;
    size_t held_off;

    mk_connect_cb connect_cb;
    void *connect_data;

    mk_link_frame_cb on_frame;
    mk_link_close_cb on_close;
    mk_link_drain_cb on_drain;
    void *cb_data;
    void *user_data;

    uint32_t close_code;
    int status;

    mk__frame_in in; /* decrypted bytes, parsed in place */
    /* Sending: plaintext waits in `stage` until it fills a record or the
     * loop iteration ends; ciphertext in `pend` (from pend_off) until the
     * socket takes it, or until the one write in flight (`fly`, fly_len
     * bytes) completes. */
    mk_buf stage, pend, fly;
    size_t pend_off, fly_len;
    size_t stage_payload; /* payload bytes in `stage` */
    /* Totals for mk_link_queued: payload accepted, encrypted and known to
     * be out; ciphertext made and taken by the socket; and the marks
     * relating the two (link.c, mark_push). */
    uint64_t payload_in, payload_enc, payload_out;
    uint64_t ct_made, ct_done;
    uint64_t ct_marked; /* ct_made at the last mark_push */
    mk__mark *marks;
    size_t mark0, nmarks, markcap;

    mk_link_stats stats;
    char alpn[MK_ALPN_MAX];
    char remote[MK__ADDR_LEN];
};

typedef struct mk__serve {
    char alpn[MK_ALPN_MAX];
    mk_accept_cb cb;
    void *data;
    unsigned flags; /* MK_SERVE_* */
} mk__serve;

struct mk_transport {
    uv_loop_t *loop;
    SSL_CTX *tls;
    BIO_METHOD *bio_method; /* link_bio.c; outlives every link */
    mk__tls_cache sessions; /* to resume, by the PeerId dialed */
    mk_peer_id id;
    uv_tcp_t listener;
    uv_idle_t idle; /* runs deferred link work, active only while needed */
    bool listening;
    bool closing;
    bool idle_closing;
    int handles; /* listener + idle, while open */
    size_t max_frame;
    uint32_t handshake_timeout_ms;
    uint32_t connect_timeout_ms;
    uint32_t idle_timeout_ms;  /* for accepted links; 0: none */
    uint32_t frame_timeout_ms; /* 0: none */
    uint32_t max_links, max_links_per_peer;
    uint32_t n_accepted; /* accepted links alive, in any state */
    /* Totals for mk_transport_stats; links_open is counted when asked. */
    mk_transport_stats stats;
    mk__serve *serves;
    size_t nserves;
    mk__qnode links;
    mk__qnode work;
    uint8_t *rbuf;
    char listen_addr[MK__ADDR_LEN];
    void (*close_cb)(void *data);
    void *close_data;
};

/* Whether an accepted link speaking `alpn` is sent a resumption ticket
 * (mk__tls_auth.ticket_for; `t` is the transport): not for a protocol
 * served with MK_SERVE_NO_RESUME, nor for one not served at all. */
bool mk__transport_ticket_for(void *t, const char *alpn);

/* ---- link.c, for the transport ---------------------------------------- */

/* A link in HANDSHAKE state with its tcp and timer handles initialised and
 * listed in t->links, or NULL (MK_ENOMEM). */
mk_link *mk__link_new(mk_transport *t);

/* Starts TLS on a connected socket: a dialer (l->dialer, l->alpn set)
 * sends its ClientHello, an acceptor waits for one. 0 or a negative code;
 * on error the caller aborts the link. */
int mk__link_start(mk_link *l);

/* Arms the link's deadline: a link still in its handshake when it fires
 * is aborted (MK_ECONNECT_TIMEOUT for a dial). */
void mk__link_deadline(mk_link *l, uint64_t ms);

/* Ends a link that was never handed over: its handles close, and a dial
 * reports `status` to its callback unless l->silent. Idempotent. */
void mk__link_abort(mk_link *l, int status);

/* The close path for the transport's own reasons (ALPN not served): like
 * mk_link_close but with a local status. */
void mk__link_close(mk_link *l, uint32_t code, const char *reason,
                    int status);

/* Runs a link's deferred work (called from the transport's idle). */
void mk__link_run(mk_link *l);

/* ---- link_bio.c ----------------------------------------------------- */

/* The BIO method of link_bio.c, one per transport (BIO_meth_free). NULL
 * on allocation failure. */
BIO_METHOD *mk__link_bio_method_new(void);

/* A BIO on `l`'s buffers (rin/held to read, pend to write), or NULL. */
BIO *mk__link_bio_new(mk_link *l);

/* Copies what the session left of the current read (rin) to `held`, so
 * the transport's read buffer can be reused; rin is empty after. 0 or
 * MK_ENOMEM. */
int mk__link_keep_unread(mk_link *l);

/* ---- transport.c, for links ------------------------------------------- */

/* The handshake of `l` completed (state OPEN, peer and ALPN known): hand
 * it to the dial callback or the ALPN's handler, or refuse it. */
void mk__transport_ready(mk_link *l);

/* Queues `l` for mk__link_run at the end of this loop iteration. */
void mk__transport_defer(mk_link *l);

/* `l` was unlisted and freed: finish closing the transport if it waits. */
void mk__transport_link_gone(mk_transport *t);

/* "ip:port" or "[ip6]:port" of `sa` into out (MK__ADDR_LEN). */
void mk__addr_format(const struct sockaddr *sa, char *out);

#endif /* MK_LINK_INT_H */
