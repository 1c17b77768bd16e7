/* A small strict HTTP/1.1 server on the daemon's loop, for reading the
 * daemon (coalitiond --http): GET of a few fixed routes, one request per
 * connection, answers built whole in memory.
 *
 * Strict because it faces whatever can reach its port: the request line
 * and the header block are bounded (414, 431), anything but GET is 405,
 * malformed requests (bare LF, folded or nameless headers, a body, a
 * missing Host in HTTP/1.1) are 400, and every connection has a deadline
 * for its request and for its answer. Connections are capped; at the cap
 * the oldest one that has not finished its request is closed to make
 * room, so idle sockets cannot lock out a scraper.
 */
#ifndef CO_TOOLS_HTTP_SERVER_H
#define CO_TOOLS_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mosaik/codec.h"

typedef struct http_limits {
    size_t max_conns;          /* [64] connections open at once */
    uint32_t read_timeout_ms;  /* [5000] from accept to a whole request */
    uint32_t write_timeout_ms; /* [10000] for the answer to leave */
} http_limits;

/* What a handler answers: status (200, 404, …), a content type (a static
 * string) and the body, which the server frees. */
typedef struct http_reply {
    int status;
    const char *content_type;
    mk_buf body;
} http_reply;

/* Answers a GET of `path` (the request target without its query, at
 * most 1 KiB, starting with '/'). Runs on the loop; r->body starts empty
 * and r->status at 404. Another status than 200 with an empty body is
 * answered with a one-line reason ("404 Not Found"); with a body, with
 * that body, which says why. */
typedef void (*http_handler)(const char *path, http_reply *r, void *data);

typedef struct http_server http_server;

/* Listens on `addr` ("host:port"; port 0: any free). 0 and *out, or a
 * negative code with `err` (MK_ERRMSG_SIZE). `lim` may be NULL. */
int http_server_start(uv_loop_t *loop, const char *addr,
                      const http_limits *lim, http_handler handler,
                      void *data, http_server **out, char *err);

/* The address bound, "127.0.0.1:8080". */
const char *http_server_addr(const http_server *s);

/* Connections open now (tests and the status page). */
size_t http_server_conns(const http_server *s);

/* Stops listening, drops every connection, frees, then calls `cb` (may
 * be NULL). */
void http_server_close(http_server *s, void (*cb)(void *data), void *data);

#endif
