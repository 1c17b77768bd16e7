/* The transport (include/mosaik/transport.h): one listener, the dialer,
 * the ALPN handlers and the loop-iteration work of every link.
 *
 * Each link knows its transport and the transport lists every link it
 * made, whatever its state, so that closing the transport can cancel
 * dials, drop half-done handshakes and close live links, and free itself
 * only once the last of them is gone.
 */
#include "mosaik/link_int.h"

#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mosaik/error.h"

#define DEFAULT_TIMEOUT_MS 5000
#define BACKLOG 128
#define DEFAULT_LINKS_PER_PEER 128
#define LINKS_MIN 16
#define LINKS_MAX 4096
#define SLACK_MIN 16

static void on_transport_handle_closed(uv_handle_t *h);

/* ---- addresses ---------------------------------------------------------- */

void mk__addr_format(const struct sockaddr *sa, char *out)
{
    char ip[MK__ADDR_LEN - 8] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof ip);
        port = ntohs(in->sin_port);
        snprintf(out, MK__ADDR_LEN, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
        snprintf(out, MK__ADDR_LEN, "[%s]:%u", ip, port);
    } else {
        snprintf(out, MK__ADDR_LEN, "?");
    }
}

/* "a.b.c.d:port", "[v6]:port" or "localhost:port" into `ss`. No name
 * lookups: peers publish addresses, not names. Port 0 only when
 * `any_port` (a listener asking for a free one). */
static int parse_addr(const char *s, bool any_port,
                      struct sockaddr_storage *ss)
{
    char host[MK__ADDR_LEN];
    const char *port;
    size_t hlen;
    bool v6 = false;

    if (!s)
        return MK_EINVAL;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return MK_EINVAL;
        hlen = (size_t)(end - s - 1);
        memcpy(host, s + 1, hlen < sizeof host ? hlen : 0);
        port = end + 2;
        v6 = true;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return MK_EINVAL;
        hlen = (size_t)(colon - s);
        memcpy(host, s, hlen < sizeof host ? hlen : 0);
        port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof host)
        return MK_EINVAL;
    host[hlen] = '\0';

    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen)
        return MK_EINVAL;
    unsigned long p = strtoul(port, NULL, 10);
    if (p > 65535 || (p == 0 && !any_port))
        return MK_EINVAL;

    memset(ss, 0, sizeof *ss);
    if (v6)
        return uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) == 0
                   ? 0
                   : MK_EINVAL;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    return uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) == 0
               ? 0
               : MK_EINVAL;
}

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in);
}

/* ---- deferred work ------------------------------------------------------ */

static void on_idle(uv_idle_t *h)
{
    mk_transport *t = h->data;
    /* Run what is queued now; links queued again while running (a frame
     * callback that sends) wait for the next iteration, which the active
     * idle handle makes immediate. */
    mk__qnode batch;
    mk__q_init(&batch);
    if (!mk__q_empty(&t->work)) {
        batch.next = t->work.next;
        batch.prev = t->work.prev;
        batch.next->prev = &batch;
        batch.prev->next = &batch;
        mk__q_init(&t->work);
    }
    while (!mk__q_empty(&batch)) {
        mk__qnode *n = batch.next;
        mk__q_remove(n);
        mk__link_run(MK__CONTAINER(n, mk_link, work));
    }
    if (mk__q_empty(&t->work))
        uv_idle_stop(&t->idle);
}

void mk__transport_defer(mk_link *l)
{
    mk_transport *t = l->t;
    if (l->work.next != &l->work || t->idle_closing)
        return; /* already queued */
    mk__q_push(&t->work, &l->work);
    uv_idle_start(&t->idle, on_idle);
}

/* ---- accepting and dialing ---------------------------------------------- */

/* Whether one more accepted link from l's peer fits; otherwise `why`
 * says which limit it hit. Counting walks the links: a handshake costs far
 * more than the walk, and a count per peer would be one more table to
 * keep in step. */
static bool within_limits(const mk_link *l, const char **why)
{
    const mk_transport *t = l->t;
    uint32_t open = 0, same = 0;
    for (const mk__qnode *n = t->links.next; n != &t->links; n = n->next) {
        const mk_link *m = MK__CONTAINER(n, mk_link, node);
        if (m == l || !m->counted || !m->handed ||
            m->state != MK__LINK_OPEN)
            continue;
        open++;
        if (mk_id_eq(&m->auth.peer, &l->auth.peer))
            same++;
    }
    if (same >= t->max_links_per_peer) {
        *why = "too many links from this peer";
        return false;
    }
    if (open >= t->max_links) {
        *why = "too many links";
        return false;
    }
    return true;
}

void mk__transport_ready(mk_link *l)
{
    mk_transport *t = l->t;
    if (l->dialer) {
        l->handed = true;
        l->connect_cb(l, 0, l->connect_data);
        return;
    }
    const char *why;
    if (!within_limits(l, &why)) {
        mk__link_close(l, MK_CLOSE_TOO_MANY_LINKS, why, MK_EBUSY);
        return;
    }
    for (size_t i = 0; i < t->nserves; i++) {
        if (strcmp(t->serves[i].alpn, l->alpn) == 0) {
            l->handed = true;
            /* The handler may lengthen, shorten or lift it. */
            mk_link_set_idle_timeout(l, t->idle_timeout_ms);
            t->serves[i].cb(l, t->serves[i].data);
            return;
        }
    }
    /* The handshake was let through so the dialer learns why it is
     * refused (src/mosaik/tls.c, select_alpn). */
    mk__link_close(l, MK_CLOSE_INVALID_ALPN,
                   mk_close_text(MK_CLOSE_INVALID_ALPN), MK_EPROTO);
}

/* Accepted links past max_links that may exist at all: handshakes (some
 * to be refused) and closings, which end within handshake_timeout_ms. */
static uint32_t slack(const mk_transport *t)
{
    return t->max_links / 4 > SLACK_MIN ? t->max_links / 4 : SLACK_MIN;
}

static void on_connection(uv_stream_t *server, int status)
{
    mk_transport *t = server->data;
    if (status < 0 || t->closing)
        return;
    mk_link *l = mk__link_new(t);
    if (!l) {
        /* Without memory there is no handle to accept into; libuv then
         * stops accepting on this listener (it resumes only with an
         * accept). Nothing better is possible here. */
        return;
    }
    l->counted = true;
    t->n_accepted++;
    int rc = uv_accept(server, (uv_stream_t *)&l->tcp);
    /* Past the limit with room for handshakes and closings: dropped before
     * any TLS is spent, the fd back at once. It must still be accepted, or
     * libuv would stop watching the listener. */
    if (rc == 0 && t->n_accepted > t->max_links + slack(t))
        rc = MK_EBUSY;
    if (rc == 0)
        rc = mk__link_start(l);
    if (rc != 0) {
        mk__link_abort(l, rc);
        return;
    }
    /* A peer that connects and never finishes its handshake would hold
     * the link (and its buffers) forever. */
    mk__link_deadline(l, t->handshake_timeout_ms);
}

static void on_connect(uv_connect_t *req, int status)
{
    mk_link *l = req->handle->data;
    if (l->state != MK__LINK_HANDSHAKE)
        return; /* aborted (timeout or transport close) while connecting */
    int rc = status < 0 ? status : mk__link_start(l);
    if (rc != 0)
        mk__link_abort(l, rc);
}

int mk_transport_connect(mk_transport *t, const mk_peer_id *expect,
                         const char *addr, const char *alpn, mk_connect_cb cb,
                         void *data)
{
    struct sockaddr_storage ss;
    if (t->closing)
        return MK_ECLOSED;
    if (!expect || !alpn || !cb || alpn[0] == '\0' ||
        strlen(alpn) >= MK_ALPN_MAX)
        return MK_EINVAL;
    int rc = parse_addr(addr, false, &ss);
    if (rc != 0)
        return rc;
    mk_link *l = mk__link_new(t);
    if (!l)
        return MK_ENOMEM;
    l->dialer = true;
    strcpy(l->alpn, alpn);
    l->auth.expect = *expect;
    l->auth.has_expect = true;
    l->connect_cb = cb;
    l->connect_data = data;
    rc = uv_tcp_connect(&l->connect_req, &l->tcp, (struct sockaddr *)&ss,
                        on_connect);
    if (rc != 0) {
        /* The caller gets the error now, so the callback must not run. */
        l->silent = true;
        mk__link_abort(l, rc);
        return rc;
    }
    mk__link_deadline(l, t->connect_timeout_ms);
    return 0;
}

/* ---- the transport ------------------------------------------------------ */

/* Half the descriptors the process may open: the other half is for dials,
 * files, libraft's sockets and the daemon's children. */
static uint32_t default_max_links(void)
{
    struct rlimit rl;
    uint64_t n = LINKS_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        n = (uint64_t)rl.rlim_cur / 2;
    if (n < LINKS_MIN)
        n = LINKS_MIN;
    if (n > LINKS_MAX)
        n = LINKS_MAX;
    return (uint32_t)n;
}

/* Binds and listens with plain syscalls before libuv sees the socket, so
 * that every failure is reported (and cleaned up) synchronously. */
static int open_listener(const struct sockaddr_storage *ss, int *out)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int on = 1;
    /* A restarted node gets its port back while the old connections
     * still sit in TIME_WAIT. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)ss, addr_len(ss)) != 0 ||
        listen(fd, BACKLOG) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

int mk_transport_new(const mk_transport_config *cfg, mk_transport **out,
                     char *err)
{
    struct sockaddr_storage ss;
    int fd = -1;
    int rc;

    if (err)
        err[0] = '\0';
    if (!cfg || !cfg->loop || !cfg->key || !out)
        return mk_errf(err, MK_EINVAL,
                       "transport: a loop and a key are needed");
    if (cfg->listen && parse_addr(cfg->listen, true, &ss) != 0)
        return mk_errf(err, MK_EINVAL, "transport: bad listen address \"%s\"",
                       cfg->listen);
    /* libuv writes with write(2), and a peer that reset its end raises
     * SIGPIPE, which by default kills the process: one rude peer must not
     * take the node down. A handler the application installed is kept. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);

    mk_transport *t = calloc(1, sizeof *t);
    if (!t)
        return mk_errf(err, MK_ENOMEM, "transport: out of memory");
    t->loop = cfg->loop;
    t->id = cfg->key->pub;
    t->max_frame = cfg->max_frame ? cfg->max_frame : MK_LINK_MAX_FRAME_DEFAULT;
    if (t->max_frame > MK__FRAME_LEN_MAX)
        t->max_frame = MK__FRAME_LEN_MAX; /* the header's top bit is taken */
    t->handshake_timeout_ms = cfg->handshake_timeout_ms
                                  ? cfg->handshake_timeout_ms
                                  : DEFAULT_TIMEOUT_MS;
    t->connect_timeout_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
    t->idle_timeout_ms = cfg->idle_timeout_ms == MK_TRANSPORT_NO_TIMEOUT ? 0
                         : cfg->idle_timeout_ms ? cfg->idle_timeout_ms
                                                : MK_TRANSPORT_IDLE_DEFAULT_MS;
    t->frame_timeout_ms = cfg->frame_timeout_ms == MK_TRANSPORT_NO_TIMEOUT
                              ? 0
                          : cfg->frame_timeout_ms ? cfg->frame_timeout_ms
                                                  : MK_TRANSPORT_FRAME_DEFAULT_MS;
    t->max_links_per_peer = cfg->max_links_per_peer ? cfg->max_links_per_peer
                                                    : DEFAULT_LINKS_PER_PEER;
    t->max_links = cfg->max_links ? cfg->max_links : default_max_links();
    mk__q_init(&t->links);
    mk__q_init(&t->work);
    t->rbuf = malloc(MK__READ_BUF);
    if (!t->rbuf) {
        rc = mk_errf(err, MK_ENOMEM, "transport: out of memory");
        goto err_after_alloc;
    }
    rc = mk__tls_ctx_new(cfg->key, &t->tls, err);
    if (rc != 0)
        goto err_after_alloc;
    mk__tls_cache_init(&t->sessions);
    t->bio_method = mk__link_bio_method_new();
    if (!t->bio_method) {
        rc = mk_errf(err, MK_ENOMEM, "transport: out of memory");
        goto err_after_tls;
    }
    if (cfg->listen) {
        rc = open_listener(&ss, &fd);
        if (rc != 0) {
            mk_errf(err, rc, "transport: cannot listen on %s: %s", cfg->listen,
                    mk_strerror(rc));
            goto err_after_tls;
        }
    }

    /* From here on handles exist, and a failure must close them (and free
     * the transport) asynchronously. */
    uv_idle_init(t->loop, &t->idle);
    t->idle.data = t;
    t->handles = 1;
    if (fd >= 0) {
        uv_tcp_init(t->loop, &t->listener);
        t->listener.data = t;
        t->handles++;
        t->listening = true;
        rc = uv_tcp_open(&t->listener, fd);
        if (rc != 0)
            close(fd); /* not adopted by the handle */
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&t->listener, BACKLOG, on_connection);
        if (rc != 0) {
            mk_errf(err, rc, "transport: cannot listen on %s: %s", cfg->listen,
                    mk_strerror(rc));
            mk_transport_close(t, NULL, NULL);
            return rc;
        }
        int len = (int)sizeof ss;
        if (uv_tcp_getsockname(&t->listener, (struct sockaddr *)&ss, &len) == 0)
            mk__addr_format((struct sockaddr *)&ss, t->listen_addr);
    }
    *out = t;
    return 0;

err_after_tls:
    BIO_meth_free(t->bio_method);
    mk__tls_ctx_free(t->tls);
err_after_alloc:
    free(t->rbuf);
    free(t);
    return rc;
}

const char *mk_transport_listen_addr(const mk_transport *t)
{
    return t->listen_addr;
}

/* Open links are counted by walking them: a scrape every few seconds
 * costs less than keeping a count right through every state change. */
void mk_transport_stats_get(const mk_transport *t, mk_transport_stats *out)
{
    *out = t->stats;
    out->links_open = 0;
    for (const mk__qnode *q = t->links.next; q != &t->links; q = q->next) {
        const mk_link *l = MK__CONTAINER(q, mk_link, node);
        if (l->state == MK__LINK_OPEN || l->state == MK__LINK_CLOSING)
            out->links_open++;
    }
}

const mk_peer_id *mk_transport_id(const mk_transport *t)
{
    return &t->id;
}

int mk_transport_serve(mk_transport *t, const char *alpn, mk_accept_cb cb,
                       void *data)
{
    return mk_transport_serve_ex(t, alpn, 0, cb, data);
}

int mk_transport_serve_ex(mk_transport *t, const char *alpn, unsigned flags,
                          mk_accept_cb cb, void *data)
{
    if (t->closing)
        return MK_ECLOSED;
    if (!alpn || !cb || alpn[0] == '\0' || strlen(alpn) >= MK_ALPN_MAX ||
        (flags & ~MK_SERVE_NO_RESUME) != 0)
        return MK_EINVAL;
    for (size_t i = 0; i < t->nserves; i++)
        if (strcmp(t->serves[i].alpn, alpn) == 0)
            return MK_EEXIST;
    mk__serve *s = realloc(t->serves, (t->nserves + 1) * sizeof *s);
    if (!s)
        return MK_ENOMEM;
    t->serves = s;
    strcpy(s[t->nserves].alpn, alpn);
    s[t->nserves].cb = cb;
    s[t->nserves].data = data;
    s[t->nserves].flags = flags;
    t->nserves++;
    return 0;
}

bool mk__transport_ticket_for(void *data, const char *alpn)
{
    const mk_transport *t = data;
    for (size_t i = 0; i < t->nserves; i++)
        if (strcmp(t->serves[i].alpn, alpn) == 0)
            return !(t->serves[i].flags & MK_SERVE_NO_RESUME);
    return false; /* refused once the handshake ends: nothing to resume */
}

int mk_transport_unserve(mk_transport *t, const char *alpn)
{
    for (size_t i = 0; alpn && i < t->nserves; i++)
        if (strcmp(t->serves[i].alpn, alpn) == 0) {
            /* Order does not matter: handlers are found by name. Links
             * mid-handshake are judged when it ends (mk__transport_ready),
             * so they are refused like any other from now on. */
            t->serves[i] = t->serves[--t->nserves];
            return 0;
        }
    return MK_ENOENT;
}

void mk_transport_close(mk_transport *t, mk_close_cb cb, void *data)
{
    if (t->closing)
        return;
    t->closing = true;
    t->close_cb = cb;
    t->close_data = data;
    if (t->listening) {
        t->listening = false;
        uv_close((uv_handle_t *)&t->listener, on_transport_handle_closed);
    }
    /* Links leave the list only from their handles' close callbacks, which
     * run later, so walking it while ending them is safe. */
    for (mk__qnode *n = t->links.next; n != &t->links; n = n->next) {
        mk_link *l = MK__CONTAINER(n, mk_link, node);
        if (l->state == MK__LINK_HANDSHAKE)
            mk__link_abort(l, MK_ECANCELED);
        else if (l->state == MK__LINK_OPEN)
            mk_link_close(l, MK_CLOSE_GRACEFUL_SHUTDOWN,
                          mk_close_text(MK_CLOSE_GRACEFUL_SHUTDOWN));
    }
    mk__transport_link_gone(t);
}

void mk__transport_link_gone(mk_transport *t)
{
    if (!t->closing || !mk__q_empty(&t->links) || t->idle_closing)
        return;
    t->idle_closing = true;
    uv_idle_stop(&t->idle);
    uv_close((uv_handle_t *)&t->idle, on_transport_handle_closed);
}

static void on_transport_handle_closed(uv_handle_t *h)
{
    mk_transport *t = h->data;
    if (--t->handles > 0)
        return;
    void (*cb)(void *) = t->close_cb;
    void *data = t->close_data;
    mk__tls_cache_free(&t->sessions);
    BIO_meth_free(t->bio_method); /* every link is gone */
    mk__tls_ctx_free(t->tls);
    free(t->serves);
    free(t->rbuf);
    free(t);
    if (cb)
        cb(data);
}
