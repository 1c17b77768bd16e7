/* coalitiond --http HOST:PORT: what the daemon shows over HTTP.
 *
 *   GET /metrics     the node's metrics registry, Prometheus text 0.0.4
 *   GET /api/status  JSON: this node, its peers, the groups and modules it
 *                    runs with their Raft state, a few totals
 *   GET /            the dashboard (tools/dashboard/index.html, embedded
 *                    at build time), which polls /api/status
 *
 * Everything else is 404 (http_server.h has the limits). Off unless
 * --http is given; meant for loopback or a trusted network: it shows
 * what any peer could learn from the catalog, but needs no credential.
 */
#ifndef CO_TOOLS_DAEMON_HTTP_H
#define CO_TOOLS_DAEMON_HTTP_H

#include "daemon_groups.h"
#include "daemon_modules.h"
#include "mosaik/node.h"

typedef struct daemon_http daemon_http;

/* Serves on `addr`. `groups` and `modules` (either may be NULL) are
 * borrowed and read on every request until daemon_http_stop. 0 and *out,
 * or -1 with `err` (MK_ERRMSG_SIZE). */
int daemon_http_start(const char *addr, mk_node *node,
                      const daemon_groups *groups,
                      const daemon_modules *modules, daemon_http **out,
                      char *err);

/* The address bound ("127.0.0.1:PORT"). */
const char *daemon_http_addr(const daemon_http *h);

/* Stops serving and frees; the node and the rest may go after this. */
void daemon_http_stop(daemon_http *h);

#endif
