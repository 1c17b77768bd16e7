/* The daemon's HTTP routes (daemon_http.h). */
#include "daemon_http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/host.h"
#include "coalition/version.h"
#include "http_server.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/metrics.h"

/* tools/dashboard/index.html, made a C string by tools/embed.c. */
extern const unsigned char dashboard_html[];
extern const size_t dashboard_html_len;

struct daemon_http {
    http_server *server;
    mk_node *node;
    const daemon_groups *groups;
    const daemon_modules *modules;
    int64_t started_ms;
    mk_metric *conns; /* in the node's registry while serving */
};

/* ---- /api/status --------------------------------------------------------- */

static const char *role_of(const mk_group_status *st)
{
    if (st->storage_failed)
        return "storage-failed";
    if (st->is_leader)
        return "leader";
    if (!st->is_voter)
        return "standby";
    return st->online ? "follower" : "candidate";
}

static json_t *group_json(const mk_group *g)
{
    char hex[MK_ID_HEX_LEN + 1];
    mk_group_status st;
    mk_group_status_get(g, &st);
    json_t *o = json_object();
    json_object_set_new(o, "group", json_string(mk_id_hex(mk_group_id(g), hex)));
    json_object_set_new(o, "role", json_string(role_of(&st)));
    json_object_set_new(o, "is_leader", json_boolean(st.is_leader));
    json_object_set_new(o, "online", json_boolean(st.online));
    json_object_set_new(o, "leader", st.has_leader
                                         ? json_string(mk_id_hex(&st.leader, hex))
                                         : json_null());
    json_object_set_new(o, "term", json_integer((json_int_t)st.term));
    json_object_set_new(o, "commit_index",
                        json_integer((json_int_t)st.commit_index));
    json_object_set_new(o, "applied_index",
                        json_integer((json_int_t)st.applied_index));
    json_object_set_new(o, "applied", json_integer((json_int_t)st.applied));
    json_object_set_new(o, "voters", json_integer((json_int_t)st.n_voters));
    json_object_set_new(o, "members", json_integer((json_int_t)st.n_members));
    return o;
}

static bool peer_json(const mk_peer_info *p, void *data)
{
    char hex[MK_ID_HEX_LEN + 1];
    json_t *o = json_object(), *tags = json_array();
    for (size_t i = 0; i < p->entry->n_tags; i++)
        json_array_append_new(tags, json_string(p->entry->tags[i]));
    json_object_set_new(o, "peer_id", json_string(mk_id_hex(&p->entry->peer, hex)));
    json_object_set_new(o, "addr", p->entry->n_addrs
                                       ? json_string(p->entry->addrs[0])
                                       : json_null());
    json_object_set_new(o, "rtt_us", p->rtt_us >= 0 ? json_integer(p->rtt_us)
                                                    : json_null());
    json_object_set_new(o, "age_ms", json_integer(p->age_ms));
    json_object_set_new(o, "groups",
                        json_integer((json_int_t)p->entry->n_groups));
    json_object_set_new(o, "tags", tags);
    json_array_append_new(data, o);
    return true;
}

/* The module state the host publishes as metrics (coalition_*: the
 * Almanac's seq, the Chronicle's length, …) goes into "state" under the
 * module's name, so the page reads one source of truth with Prometheus;
 * and a few of the node's totals into "totals". */
typedef struct fold {
    json_t *modules; /* name -> object */
    json_t *totals;
} fold;

static const struct {
    const char *metric, *module, *key;
} module_values[] = {
    {"coalition_almanac_seq", "almanac", "seq"},
    {"coalition_chronicle_length", "chronicle", "length"},
    {"coalition_atlas_cards", "atlas", "cards"},
    {"coalition_atlas_cards_verified", "atlas", "cards_verified"},
    {"coalition_compute_providers", "compute", "providers"},
    {"coalition_compute_requests", "compute", "requests"},
};

static bool fold_metric(const mk_metric_view *v, void *data)
{
    fold *f = data;
    for (size_t i = 0; i < sizeof module_values / sizeof module_values[0];
         i++) {
        if (strcmp(v->name, module_values[i].metric) != 0)
            continue;
        json_t *m = json_object_get(f->modules, module_values[i].module);
        if (m)
            json_object_set_new(m, module_values[i].key,
                                json_integer((json_int_t)v->value));
        return true;
    }
    if (strcmp(v->name, "coalition_module_retired") == 0 && v->n_labels) {
        json_t *m = json_object_get(f->modules, v->labels[0].value);
        if (m)
            json_object_set_new(m, "retired", json_boolean(v->value != 0));
        return true;
    }
    if (strncmp(v->name, "mosaik_network_", 15) == 0 ||
        strcmp(v->name, "mosaik_discovery_peers") == 0) {
        char key[96];
        snprintf(key, sizeof key, "%s%s%s", v->name + 7,
                 v->n_labels ? "_" : "", v->n_labels ? v->labels[0].value : "");
        json_object_set_new(f->totals, key,
                            json_integer((json_int_t)v->value));
    }
    return true;
}

static json_t *status_json(daemon_http *h)
{
    char hex[MK_ID_HEX_LEN + 1];
    json_t *root = json_object(), *peers = json_array(),
           *groups = json_array(), *modules = json_array();
    json_t *by_name = json_object();
    json_t *node = json_object();
    json_object_set_new(node, "peer_id",
                        json_string(mk_id_hex(mk_node_id(h->node), hex)));
    json_object_set_new(node, "listen", json_string(mk_node_addr(h->node)));
    json_object_set_new(node, "version", json_string(CO_VERSION));
    json_object_set_new(node, "unix_ms", json_integer(mk_now_ms()));
    json_object_set_new(node, "uptime_ms",
                        json_integer(mk_mono_ms() - h->started_ms));
    /* false: no registry, so no module state or totals below. */
    json_object_set_new(node, "metrics",
                        json_boolean(mk_node_metrics(h->node) != NULL));
    json_object_set_new(root, "node", node);
    mk_node_peers_foreach(h->node, peer_json, peers);
    json_object_set_new(root, "peers", peers);

    size_t n = h->groups ? daemon_groups_count(h->groups) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name, *kind;
        mk_group *g = daemon_groups_at(h->groups, i, &name, &kind);
        if (!g)
            continue;
        json_t *o = group_json(g);
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "kind", json_string(kind));
        json_array_append_new(groups, o);
    }
    const co_host *host = h->modules ? daemon_modules_host(h->modules) : NULL;
    for (size_t i = 0; host && i < co_host_count(host); i++) {
        json_t *o = group_json(co_host_group(host, i));
        json_object_set_new(o, "name", json_string(co_host_module(host, i)));
        json_array_append(modules, o);
        json_object_set_new(by_name, co_host_module(host, i), o);
    }
    fold f = {by_name, json_object()};
    mk_metrics_foreach(mk_node_metrics(h->node), fold_metric, &f);
    json_decref(by_name);
    json_object_set_new(root, "groups", groups);
    json_object_set_new(root, "modules", modules);
    json_object_set_new(root, "totals", f.totals);
    return root;
}

/* ---- routes -------------------------------------------------------------- */

static void route(const char *path, http_reply *r, void *data)
{
    daemon_http *h = data;
    if (strcmp(path, "/metrics") == 0) {
        if (mk_metrics_write_text(mk_node_metrics(h->node), &r->body) ==
            MK_EMETRICS_OFF) {
            /* Not an empty page: a scraper would record a healthy target
             * with no series. 404 with the reason marks the target down
             * and says why. */
            static const char off[] =
                "404 Not Found: metrics are off on this node (coalitiond "
                "--no-metrics, or \"metrics\": false in its --config)\n";
            mk_put_raw(&r->body, off, sizeof off - 1);
            r->status = 404;
            return;
        }
        r->status = 200;
        r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(path, "/api/status") == 0) {
        json_t *st = status_json(h);
        char *s = json_dumps(st, JSON_COMPACT);
        json_decref(st);
        if (!s) {
            r->status = 500;
            return;
        }
        mk_put_raw(&r->body, s, strlen(s));
        free(s);
        r->status = 200;
        r->content_type = "application/json";
    } else if (strcmp(path, "/") == 0) {
        mk_put_raw(&r->body, dashboard_html, dashboard_html_len);
        r->status = 200;
        r->content_type = "text/html; charset=utf-8";
    }
}

static double read_conns(void *data)
{
    const daemon_http *h = data;
    return (double)http_server_conns(h->server);
}

int daemon_http_start(const char *addr, mk_node *node,
                      const daemon_groups *groups,
                      const daemon_modules *modules, daemon_http **out,
                      char *err)
{
    daemon_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, MK_ERRMSG_SIZE, "out of memory");
        return -1;
    }
    h->node = node;
    h->groups = groups;
    h->modules = modules;
    h->started_ms = mk_mono_ms();
    if (http_server_start(mk_node_loop(node), addr, NULL, route, h,
                          &h->server, err) != 0) {
        free(h);
        return -1;
    }
    /* Shows the connection cap at work: a flood of idle sockets leaves
     * this at the cap, not at the size of the flood. */
    mk_metrics_add(mk_node_metrics(node), &(mk_metric_desc){
        .name = "coalitiond_http_connections",
        .help = "Connections the --http server holds open.",
        .type = MK_METRIC_GAUGE, .read = read_conns, .data = h}, &h->conns);
    *out = h;
    return 0;
}

const char *daemon_http_addr(const daemon_http *h)
{
    return http_server_addr(h->server);
}

static void on_closed(void *data)
{
    free(data);
}

void daemon_http_stop(daemon_http *h)
{
    if (!h)
        return;
    mk_metric_remove(h->conns);
    http_server_close(h->server, on_closed, h);
}
