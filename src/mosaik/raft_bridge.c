/* The Raft transport: libraft's connections carried by authenticated links.
 *
 * libraft's libuv backend (raft_uv) talks to other servers through a
 * struct raft_uv_transport that hands it connected uv streams. Its stock
 * TCP transport authenticates nothing: an unauthenticated socket sending a
 * forged RequestVote with a higher term deposes the leader
 * (reference/raft-probe.md, hazard 2). So this transport never gives
 * libraft a network socket. For each Raft connection it makes a local
 * socketpair, gives libraft one end as a uv_pipe_t, and pumps the other end
 * to and from an mk_link (TLS 1.3, both ends authenticated by their node
 * keys, ALPN MK_ALPN_GROUPS) on the same loop:
 *
 *   libraft --uv stream-- [socketpair] --pipe-- mk_link ==TLS== remote
 *
 * A link is only made with a listed voter whose tickets pass the group's
 * validators, and only accepted from one (group_hub.c checks the HELLO).
 * libraft's byte stream is carried as is, chunked into frames of whatever
 * size a read returned; the receiving side writes the frames back into its
 * socketpair in order, so libraft sees exactly the bytes it sent.
 *
 * Flow control both ways, so a slow peer bounds memory instead of growing
 * it: when the link holds more than LINK_HIGH unsent bytes we stop reading
 * what libraft writes (the socketpair then fills and libraft's own writes
 * wait) until the link drains; when more than PIPE_HIGH bytes wait to be
 * written into the socketpair we pause the link (TCP pushes back on the
 * sender) until they fall below PIPE_LOW.
 *
 * Lifetimes. libraft owns the streams it is given (it uv_close()s them and
 * frees them with raft_free, so they come from raft_malloc). A pipe ends
 * when either side ends: libraft closing its end (we see EOF) closes the
 * link; the link closing closes our end (libraft sees EOF, or EPIPE on its
 * next write, and reconnects after its retry delay). On transport close,
 * pipes and dials in flight are detached: they finish on their own and
 * never touch the bridge again.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mosaik/error.h"
#include "mosaik/group_internal.h"

#define READ_CHUNK (64u * 1024u)
#define LINK_HIGH (8u << 20)
#define PIPE_HIGH (8u << 20)
#define PIPE_LOW (2u << 20)

struct mk__pipe {
    mk__pipe *prev, *next;
    mk__bridge *b; /* NULL once detached */
    mk_link *link; /* NULL after its close callback */
    uv_pipe_t ours;
    bool ours_open, ours_closing;
    bool read_paused, link_paused;
    size_t writing; /* bytes in uv_write requests on `ours` */
    uint8_t *rbuf;
    mk__bond bond;
    bool bonded;
};

struct mk__dial {
    mk__dial *prev, *next;
    mk__bridge *b; /* NULL once orphaned by close */
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    raft_id id;
    mk_peer_id peer;
    mk_node *node;
    mk_link *link; /* connected, waiting for WELCOME */
};

typedef struct pipe_write {
    uv_write_t req;
    mk__pipe *p;
    size_t len;
    uint8_t data[];
} pipe_write;

/* ---- lists ---------------------------------------------------------------- */

#define LIST_PUSH(head, x)                                                    \
    do {                                                                      \
        (x)->prev = NULL;                                                     \
        (x)->next = (head);                                                   \
        if (head)                                                             \
            (head)->prev = (x);                                               \
        (head) = (x);                                                         \
    } while (0)

#define LIST_REMOVE(head, x)                                                  \
    do {                                                                      \
        if ((x)->prev)                                                        \
            (x)->prev->next = (x)->next;                                      \
        else                                                                  \
            (head) = (x)->next;                                               \
        if ((x)->next)                                                        \
            (x)->next->prev = (x)->prev;                                      \
        (x)->prev = (x)->next = NULL;                                         \
    } while (0)

/* ---- pipes ------------------------------------------------------------------ */

static void pipe_maybe_free(mk__pipe *p)
{
    if (p->link || p->ours_open)
        return;
    free(p->rbuf);
    free(p);
}

static void pipe_detach(mk__pipe *p)
{
    if (!p->b)
        return;
    if (p->bonded) {
        mk__group_bond_remove(p->b->g, &p->bond);
        p->bonded = false;
    }
    LIST_REMOVE(p->b->pipes, p);
    p->b = NULL;
}

static void on_ours_closed(uv_handle_t *h)
{
    mk__pipe *p = h->data;
    p->ours_open = false;
    pipe_maybe_free(p);
}

/* Ends the pipe from our side: both the link and our socket end. */
static void pipe_end(mk__pipe *p, uint32_t code)
{
    pipe_detach(p);
    if (p->link)
        mk_link_close(p->link, code, NULL);
    if (p->ours_open && !p->ours_closing) {
        p->ours_closing = true;
        uv_close((uv_handle_t *)&p->ours, on_ours_closed);
    }
}

static void on_ours_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    mk__pipe *p = h->data;
    (void)hint;
    buf->base = (char *)p->rbuf;
    buf->len = READ_CHUNK;
}

/* Bytes libraft wrote: one frame each. */
static void on_ours_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    mk__pipe *p = s->data;
    if (n == 0)
        return;
    if (n < 0 || !p->link) {
        /* libraft closed its end (or the link is gone): done. */
        pipe_end(p, MK_CLOSE_SUCCESS);
        return;
    }
    if (mk_link_send(p->link, buf->base, (size_t)n) != 0) {
        pipe_end(p, MK_CLOSE_UNEXPECTED);
        return;
    }
    if (mk_link_queued(p->link) > LINK_HIGH && !p->read_paused) {
        uv_read_stop(s);
        p->read_paused = true;
    }
}

static void on_link_drain(mk_link *link, void *data)
{
    mk__pipe *p = data;
    if (p->read_paused && p->ours_open && !p->ours_closing) {
        p->read_paused = false;
        if (uv_read_start((uv_stream_t *)&p->ours, on_ours_alloc,
                          on_ours_read) != 0)
            pipe_end(p, MK_CLOSE_UNEXPECTED);
    }
}

static void on_pipe_written(uv_write_t *req, int status)
{
    pipe_write *w = (pipe_write *)req;
    mk__pipe *p = w->p;
    p->writing -= w->len;
    free(w);
    if (status < 0) {
        pipe_end(p, MK_CLOSE_UNEXPECTED);
        return;
    }
    if (p->link_paused && p->writing < PIPE_LOW && p->link) {
        p->link_paused = false;
        mk_link_resume(p->link);
    }
}

/* A frame from the remote: libraft's bytes, in order. */
static void on_link_frame(mk_link *link, const uint8_t *f, size_t len,
                          void *data)
{
    mk__pipe *p = data;
    if (!p->ours_open || p->ours_closing || len == 0)
        return;
    size_t done = 0;
    if (p->writing == 0) {
        uv_buf_t ub = uv_buf_init((char *)f, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&p->ours, &ub, 1);
        if (n > 0)
            done = (size_t)n;
        else if (n != UV_EAGAIN) {
            pipe_end(p, MK_CLOSE_UNEXPECTED);
            return;
        }
    }
    if (done == len)
        return;
    pipe_write *w = malloc(sizeof *w + (len - done));
    if (!w) {
        pipe_end(p, MK_CLOSE_CANCELLED);
        return;
    }
    w->p = p;
    w->len = len - done;
    memcpy(w->data, f + done, w->len);
    uv_buf_t ub = uv_buf_init((char *)w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&p->ours, &ub, 1,
                 on_pipe_written) != 0) {
        free(w);
        pipe_end(p, MK_CLOSE_UNEXPECTED);
        return;
    }
    p->writing += w->len;
    if (p->writing > PIPE_HIGH && !p->link_paused) {
        p->link_paused = true;
        mk_link_pause(link);
    }
}

static void on_link_close(mk_link *link, uint32_t code, int status,
                          void *data)
{
    mk__pipe *p = data;
    p->link = NULL;
    pipe_end(p, code);
    pipe_maybe_free(p);
}

static void free_raft_handle(uv_handle_t *h)
{
    raft_free(h);
}

/* Makes the socketpair, gives libraft its end in *stream, and starts
 * pumping. On failure returns a negative code and leaves `link` alone. */
static int pipe_open(mk__bridge *b, mk_link *link, const mk_peer_id *peer,
                     struct uv_stream_s **stream)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    mk__pipe *p = calloc(1, sizeof *p);
    uv_pipe_t *theirs = raft_malloc(sizeof *theirs);
    uint8_t *rbuf = malloc(READ_CHUNK);
    if (!p || !theirs || !rbuf) {
        free(p);
        raft_free(theirs);
        free(rbuf);
        close(sv[0]);
        close(sv[1]);
        return MK_ENOMEM;
    }
    uv_pipe_init(b->loop, theirs, 0);
    uv_pipe_init(b->loop, &p->ours, 0);
    p->ours.data = p;
    p->ours_open = true;
    p->rbuf = rbuf;
    int rc = uv_pipe_open(theirs, sv[0]);
    if (rc != 0) {
        close(sv[0]);
        close(sv[1]);
    } else if ((rc = uv_pipe_open(&p->ours, sv[1])) != 0) {
        close(sv[1]);
    } else {
        rc = uv_read_start((uv_stream_t *)&p->ours, on_ours_alloc,
                           on_ours_read);
    }
    if (rc != 0) {
        /* Both handles are initialised: close them the libuv way. */
        uv_close((uv_handle_t *)theirs, free_raft_handle);
        p->ours_closing = true;
        uv_close((uv_handle_t *)&p->ours, on_ours_closed);
        return rc;
    }
    p->b = b;
    p->link = link;
    LIST_PUSH(b->pipes, p);
    p->bond.link = link;
    p->bond.peer = *peer;
    p->bond.voter = true;
    p->bond.expires_ms = MK_TICKET_NEVER;
    mk__group_admit(b->g, peer, true, &p->bond.expires_ms, NULL);
    mk__group_bond_add(b->g, &p->bond);
    p->bonded = true;
    mk_link_set_callbacks(link, on_link_frame, on_link_close, p);
    mk_link_on_drain(link, on_link_drain);
    *stream = (struct uv_stream_s *)theirs;
    return 0;
}

/* ---- accepting ------------------------------------------------------------ */

void mk__bridge_accept(mk__bridge *b, mk_link *link, raft_id id)
{
    const mk__voter *v = mk__group_voter_by_id(b->g, id);
    if (!b->listening || b->closing || !b->accept_cb || !v) {
        mk_link_close(link, MK_CLOSE_GROUP_NOT_FOUND, "not serving yet");
        return;
    }
    uint8_t welcome = MK__G_WELCOME;
    if (mk_link_send(link, &welcome, 1) != 0)
        return; /* closing already */
    struct uv_stream_s *stream;
    if (pipe_open(b, link, &v->peer, &stream) != 0) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "no socketpair");
        return;
    }
    b->accept_cb(&b->t, id, v->addr, stream);
}

/* ---- dialing ---------------------------------------------------------------- */

static void dial_finish(mk__dial *d, struct uv_stream_s *stream, int status)
{
    if (d->b) {
        LIST_REMOVE(d->b->dials, d);
        d->b = NULL;
        d->cb(d->req, stream, status);
    }
    free(d);
}

static void on_dial_frame(mk_link *link, const uint8_t *f, size_t len,
                          void *data)
{
    mk__dial *d = data;
    if (!d->b) {
        mk_link_close(link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
        return;
    }
    if (len != 1 || f[0] != MK__G_WELCOME) {
        mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION, "expected WELCOME");
        return;
    }
    struct uv_stream_s *stream;
    if (pipe_open(d->b, link, &d->peer, &stream) != 0) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "no socketpair");
        return; /* on_dial_close reports the failure */
    }
    d->link = NULL; /* the pipe owns it now */
    dial_finish(d, stream, 0);
}

static void on_dial_close(mk_link *link, uint32_t code, int status,
                          void *data)
{
    mk__dial *d = data;
    /* The acceptor does not know us yet: exchange catalogs, so libraft's
     * next attempt (after its retry delay) is welcomed. */
    if (code == MK_CLOSE_UNKNOWN_PEER)
        mk_node_sync_with(d->node, &d->peer, NULL);
    d->link = NULL;
    dial_finish(d, NULL, d->b ? RAFT_NOCONNECTION : RAFT_CANCELED);
}

static void on_dialled(mk_link *link, int status, void *data)
{
    mk__dial *d = data;
    if (status < 0) {
        dial_finish(d, NULL, d->b ? RAFT_NOCONNECTION : RAFT_CANCELED);
        return;
    }
    if (!d->b) {
        mk_link_close(link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
        free(d);
        return;
    }
    mk_group *g = d->b->g;
    d->link = link;
    mk_link_set_callbacks(link, on_dial_frame, on_dial_close, d);
    mk__hello h = {.kind = MK__LINK_RAFT,
                   .network = *mk_node_network(g->node),
                   .group = g->id,
                   .raft_id = g->voters[g->self].id};
    mk_buf b;
    mk_buf_init(&b);
    mk__hello_encode(&b, &h);
    if (b.err || mk_link_send(link, b.data, b.len) != 0)
        mk_link_close(link, MK_CLOSE_CANCELLED, NULL);
    mk_buf_free(&b);
}

/* ---- the raft_uv_transport vtable ----------------------------------------- */

static int t_init(struct raft_uv_transport *t, raft_id id,
                  const char *address)
{
    (void)t;
    (void)id;
    (void)address;
    return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    mk__bridge *b = t->impl;
    b->accept_cb = cb;
    b->listening = true;
    return 0;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                     raft_id id, const char *address, raft_uv_connect_cb cb)
{
    mk__bridge *b = t->impl;
    mk_group *g = b->g;
    const mk__voter *v = mk__group_voter_by_id(g, id);
    if (b->closing)
        return RAFT_CANCELED;
    /* Only listed voters, named consistently, passing the validators. */
    if (!v || strcmp(v->addr, address) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "server %llu is not a voter",
                 (unsigned long long)id);
        return RAFT_NOCONNECTION;
    }
    char why[MK_ERRMSG_SIZE];
    int64_t expires;
    uint32_t code = mk__group_admit(g, &v->peer, true, &expires, why);
    if (code != 0) {
        if (code == MK_CLOSE_UNKNOWN_PEER)
            mk_node_sync_with(g->node, &v->peer, NULL);
        snprintf(t->errmsg, sizeof t->errmsg, "%s", why);
        return RAFT_NOCONNECTION;
    }
    mk__dial *d = calloc(1, sizeof *d);
    if (!d)
        return RAFT_NOMEM;
    d->req = req;
    d->cb = cb;
    d->id = id;
    d->peer = v->peer;
    d->node = g->node;
    d->b = b;
    int rc = mk_node_dial(g->node, &v->peer, MK_ALPN_GROUPS, on_dialled, d);
    if (rc != 0) {
        free(d);
        snprintf(t->errmsg, sizeof t->errmsg, "dial: %s", mk_strerror(rc));
        return RAFT_NOCONNECTION;
    }
    LIST_PUSH(b->dials, d);
    return 0;
}

static void on_bridge_timer_closed(uv_handle_t *h)
{
    mk__bridge *b = h->data;
    if (b->close_cb)
        b->close_cb(&b->t);
    mk__group_bridge_closed(b->g);
}

void mk__bridge_close_unused(mk__bridge *b)
{
    b->closing = true;
    uv_close((uv_handle_t *)&b->timer, on_bridge_timer_closed);
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    mk__bridge *b = t->impl;
    b->closing = true;
    b->listening = false;
    b->close_cb = cb;
    /* Pending connects are cancelled now: libraft expects RAFT_CANCELED
     * for each once its clients are closing. */
    while (b->dials) {
        mk__dial *d = b->dials;
        LIST_REMOVE(b->dials, d);
        d->b = NULL;
        d->cb(d->req, NULL, RAFT_CANCELED);
        if (d->link)
            mk_link_close(d->link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
    }
    while (b->pipes)
        pipe_end(b->pipes, MK_CLOSE_GRACEFUL_SHUTDOWN);
    /* Asynchronous, as libraft's own transports are. */
    uv_close((uv_handle_t *)&b->timer, on_bridge_timer_closed);
}

void mk__bridge_init(mk__bridge *b, mk_group *g, uv_loop_t *loop)
{
    memset(b, 0, sizeof *b);
    b->g = g;
    b->loop = loop;
    b->t.impl = b;
    b->t.init = t_init;
    b->t.listen = t_listen;
    b->t.connect = t_connect;
    b->t.close = t_close;
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
}
