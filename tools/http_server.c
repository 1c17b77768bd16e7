/* The daemon's HTTP server (http_server.h).
 *
 * Why our own and not a library: Debian 12 has libmicrohttpd, which runs
 * its own threads (or its own select loop) beside ours and would need
 * locks around everything it reads from the node; h2o's library is not
 * packaged for bookworm; libonion is gone; http-parser (and llhttp, not
 * packaged) parse but serve nothing. What is needed here is GET of three
 * routes on the loop the node already runs, which is a few hundred lines
 * with limits we choose, rather than a dependency configured down to them.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mosaik/error.h"

#define HEAD_MAX 8192 /* the request line and headers together */
#define REQ_LINE_MAX 2048 /* the request line alone */
#define HEADERS_MAX 64
#define PATH_MAX_LEN 1024

typedef struct conn conn;

struct conn {
    http_server *s;
    conn *prev, *next; /* in s->conns, oldest first */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shut_req;
    mk_buf out;
    size_t len;
    bool answering, closing;
    int handles;
    char buf[HEAD_MAX];
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    http_limits lim;
    http_handler handler;
    void *data;
    conn *head, *tail;
    size_t n_conns; /* in the list, closing ones included */
    size_t n_live;  /* not closing: what the cap counts */
    bool closing;
    int handles; /* the listener's */
    char addr[64];
    void (*close_cb)(void *data);
    void *close_data;
};

static void maybe_finish(http_server *s)
{
    if (!s->closing || s->handles > 0 || s->n_conns > 0)
        return;
    void (*cb)(void *) = s->close_cb;
    void *data = s->close_data;
    free(s);
    if (cb)
        cb(data);
}

/* ---- connections --------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles > 0)
        return;
    http_server *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->tail = c->prev;
    s->n_conns--;
    mk_buf_free(&c->out);
    free(c);
    maybe_finish(s);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->s->n_live--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_deadline(uv_timer_t *t)
{
    conn_close(t->data);
}

#define LINGER_MS 2000

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

/* A close with unread bytes in the socket makes the kernel send a reset,
 * which can destroy the answer before the client reads it (a refused
 * oversized request always leaves some). So after the answer the rest is
 * read and dropped until the client closes, for a short while. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_deadline, LINGER_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

static void on_written(uv_write_t *req, int status)
{
    conn *c = req->data;
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    /* A half close, so the client reads everything before the end. */
    c->shut_req.data = c;
    if (uv_shutdown(&c->shut_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* Sends the whole answer and closes: one request per connection keeps the
 * state machine to reading, then writing. */
static void answer(conn *c, int status, const char *type, const mk_buf *body)
{
    char head[512], date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    size_t blen = body ? body->len : 0;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n"
                     "Date: %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "Content-Security-Policy: default-src 'self'; "
                     "style-src 'unsafe-inline'; script-src 'unsafe-inline'\r\n"
                     "%s"
                     "Connection: close\r\n\r\n",
                     status, reason(status), date,
                     type ? type : "text/plain; charset=utf-8", blen,
                     status == 405 ? "Allow: GET\r\n" : "");
    c->answering = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    mk_buf_reset(&c->out);
    mk_put_raw(&c->out, head, (size_t)n);
    if (blen)
        mk_put_raw(&c->out, body->data, blen);
    if (c->out.err) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_deadline, c->s->lim.write_timeout_ms, 0);
    uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_written))
        conn_close(c);
}

static void answer_error(conn *c, int status)
{
    mk_buf b;
    mk_buf_init(&b);
    char line[64];
    int n = snprintf(line, sizeof line, "%d %s\n", status, reason(status));
    mk_put_raw(&b, line, (size_t)n);
    answer(c, status, NULL, &b);
    mk_buf_free(&b);
}

/* ---- parsing ------------------------------------------------------------- */

static bool is_tchar(int ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The request head, [p, end) ending in the empty line. 0, or the status
 * to refuse it with. */
static int parse(conn *c, char *p, char *end, char *path)
{
    char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol || eol == p || eol[-1] != '\r')
        return 400;
    eol[-1] = '\0';
    /* method SP target SP version, single spaces (RFC 9112 §3). */
    char *sp1 = strchr(p, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || sp1 == p || sp2 == sp1 + 1)
        return 400;
    *sp1 = *sp2 = '\0';
    const char *method = p, *target = sp1 + 1, *version = sp2 + 1;
    for (const char *m = method; *m; m++)
        if (!is_tchar((unsigned char)*m))
            return 400;
    bool http11;
    if (strcmp(version, "HTTP/1.1") == 0)
        http11 = true;
    else if (strcmp(version, "HTTP/1.0") == 0)
        http11 = false;
    else if (strncmp(version, "HTTP/", 5) == 0)
        return 505;
    else
        return 400;

    bool host = false;
    size_t n_headers = 0;
    for (char *line = eol + 1; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl || nl == line || nl[-1] != '\r')
            return 400;
        nl[-1] = '\0';
        if (line == nl - 1) /* the empty line */
            break;
        if (++n_headers > HEADERS_MAX)
            return 431;
        char *colon = strchr(line, ':');
        /* No name, a space before the colon, or obsolete folding. */
        if (!colon || colon == line)
            return 400;
        for (char *q = line; q < colon; q++)
            if (!is_tchar((unsigned char)*q))
                return 400;
        for (char *q = colon + 1; *q; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t')
                return 400;
        *colon = '\0';
        const char *value = colon + 1 + strspn(colon + 1, " \t");
        if (strcasecmp(line, "host") == 0) {
            if (host)
                return 400;
            host = true;
        } else if (strcasecmp(line, "transfer-encoding") == 0 ||
                   (strcasecmp(line, "content-length") == 0 &&
                    strcmp(value, "0") != 0)) {
            /* A body we would not read; refusing it keeps the
             * connection from being read past the head. */
            return 400;
        }
        line = nl + 1;
    }
    if (http11 && !host)
        return 400;
    if (strcmp(method, "GET") != 0)
        return 405;
    size_t plen = strcspn(target, "?#");
    if (target[0] != '/' || plen > PATH_MAX_LEN)
        return target[0] == '/' ? 414 : 400;
    memcpy(path, target, plen);
    path[plen] = '\0';
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = h->data;
    if (c->answering) /* lingering: the bytes are dropped */
        *buf = uv_buf_init(c->buf, sizeof c->buf);
    else
        *buf = uv_buf_init(c->buf + c->len,
                           (unsigned)(sizeof c->buf - c->len));
}

/* Where the head ends (after CRLF CRLF), or NULL. */
static char *head_end(char *p, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
            p[i - 3] == '\r')
            return p + i + 1;
    return NULL;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    conn *c = st->data;
    if (n == 0)
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->answering)
        return;
    size_t before = c->len;
    c->len += (size_t)n;
    /* Look again from a little before the new bytes: CRLF CRLF may
     * straddle two reads. */
    size_t from = before > 3 ? before - 3 : 0;
    /* A bare LF is refused at once: waiting for a CRLF CRLF that such a
     * client never sends would hold the connection to its deadline. */
    for (size_t i = before; i < c->len; i++) {
        if (c->buf[i] == '\n' && (i == 0 || c->buf[i - 1] != '\r')) {
            answer_error(c, 400);
            return;
        }
    }
    char *nl = memchr(c->buf, '\n', c->len);
    if ((nl ? (size_t)(nl - c->buf) : c->len) > REQ_LINE_MAX) {
        answer_error(c, 414);
        return;
    }
    char *end = head_end(c->buf + from, c->len - from);
    if (!end) {
        if (c->len == sizeof c->buf)
            answer_error(c, 431);
        return;
    }
    char path[PATH_MAX_LEN + 1];
    int status = parse(c, c->buf, end, path);
    if (status) {
        answer_error(c, status);
        return;
    }
    http_reply r = {.status = 404};
    mk_buf_init(&r.body);
    c->s->handler(path, &r, c->s->data);
    if (r.body.err)
        answer_error(c, 500);
    else if (r.status == 200 || r.body.len)
        answer(c, r.status, r.content_type, &r.body);
    else
        answer_error(c, r.status);
    mk_buf_free(&r.body);
}

/* At the cap, the oldest connection still sending its request goes: a
 * scraper that connects now is served, and whoever holds sockets open
 * without asking anything loses them first. */
static bool make_room(http_server *s)
{
    if (s->n_live < s->lim.max_conns)
        return true;
    for (conn *c = s->head; c; c = c->next) {
        if (!c->answering && !c->closing) {
            conn_close(c);
            return true;
        }
    }
    return false;
}

static void on_connection(uv_stream_t *l, int status)
{
    http_server *s = l->data;
    if (status < 0 || s->closing)
        return;
    bool room = make_room(s);
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->s = s;
    mk_buf_init(&c->out);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->prev = s->tail;
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    s->n_conns++;
    s->n_live++;
    /* Accepted even without room, to be closed at once: left in the
     * backlog it would be retried on every turn of the loop. */
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || !room) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_deadline, s->lim.read_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* ---- the server ---------------------------------------------------------- */

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof host)
        return MK_EINVAL;
    size_t hlen = (size_t)(colon - s);
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    const char *port = colon + 1;
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen ||
        atoi(port) > 65535)
        return MK_EINVAL;
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        return uv_ip6_addr(host + 1, atoi(port),
                           (struct sockaddr_in6 *)ss) == 0 ? 0 : MK_EINVAL;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    return uv_ip4_addr(host, atoi(port), (struct sockaddr_in *)ss) == 0
               ? 0
               : MK_EINVAL;
}

static void on_listener_closed(uv_handle_t *h)
{
    http_server *s = h->data;
    s->handles--;
    maybe_finish(s);
}

int http_server_start(uv_loop_t *loop, const char *addr,
                      const http_limits *lim, http_handler handler,
                      void *data, http_server **out, char *err)
{
    struct sockaddr_storage ss;
    if (parse_addr(addr, &ss) != 0) {
        snprintf(err, MK_ERRMSG_SIZE, "'%s': not HOST:PORT", addr);
        return MK_EINVAL;
    }
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return MK_ENOMEM;
    s->loop = loop;
    s->handler = handler;
    s->data = data;
    if (lim)
        s->lim = *lim;
    if (!s->lim.max_conns)
        s->lim.max_conns = 64;
    if (!s->lim.read_timeout_ms)
        s->lim.read_timeout_ms = 5000;
    if (!s->lim.write_timeout_ms)
        s->lim.write_timeout_ms = 10000;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->handles = 1;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (rc != 0) {
        snprintf(err, MK_ERRMSG_SIZE, "%s: %s", addr, uv_strerror(rc));
        s->closing = true;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    char ip[INET6_ADDRSTRLEN] = "?";
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    int port;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        snprintf(s->addr, sizeof s->addr, "[%s]:%d", ip, port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        snprintf(s->addr, sizeof s->addr, "%s:%d", ip, port);
    }
    *out = s;
    return 0;
}

const char *http_server_addr(const http_server *s)
{
    return s->addr;
}

size_t http_server_conns(const http_server *s)
{
    return s->n_live;
}

void http_server_close(http_server *s, void (*cb)(void *data), void *data)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_data = data;
    for (conn *c = s->head; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
