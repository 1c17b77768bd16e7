/* A node's own series: what its links carried and what discovery holds.
 *
 * Everything here is read when the registry is read, from counters the
 * transport and discovery keep anyway (mk_transport_stats,
 * mk_discovery_stats): the only series updated on the way is the RTT
 * histogram, one bucket scan per ping. */
#include <stddef.h>

#include "link_int.h"
#include "mosaik/error.h"
#include "mosaik/metrics.h"
#include "node_internal.h"

static double read_u64(void *data)
{
    return (double)*(const uint64_t *)data;
}

static double read_size(void *data)
{
    return (double)*(const size_t *)data;
}

static double read_links_open(void *data)
{
    mk_transport_stats st;
    mk_transport_stats_get(data, &st);
    return (double)st.links_open;
}

typedef struct series {
    const char *name, *help;
    mk_metric_type type;
    const char *label, *value; /* one label, or none */
    double (*read)(void *data);
    size_t offset; /* of the field in the node or transport */
    bool in_transport;
} series;

#define NODE(f) offsetof(mk_node, f), false
#define TRANSPORT(f) offsetof(mk_transport, f), true

/* Bounds for round trips on anything from loopback to another continent. */
static const double rtt_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                    0.005,  0.01,    0.025,  0.05,  0.1,
                                    0.25,   0.5,     1,      2.5};

int mk__node_metrics_init(mk_node *node)
{
    static const char bytes_help[] =
        "Payload bytes carried by this node's links.";
    static const char frames_help[] = "Frames carried by this node's links.";
    static const char links_help[] =
        "Links that completed the TLS handshake.";
    static const char refused_help[] =
        "Entries and peers discovery refused, by reason.";
    static const series all[] = {
        {"mosaik_network_bytes_total", bytes_help, MK_METRIC_COUNTER, "direction",
         "in", read_u64, TRANSPORT(stats.bytes_in)},
        {"mosaik_network_bytes_total", bytes_help, MK_METRIC_COUNTER, "direction",
         "out", read_u64, TRANSPORT(stats.bytes_out)},
        {"mosaik_network_frames_total", frames_help, MK_METRIC_COUNTER,
         "direction", "in", read_u64, TRANSPORT(stats.frames_in)},
        {"mosaik_network_frames_total", frames_help, MK_METRIC_COUNTER,
         "direction", "out", read_u64, TRANSPORT(stats.frames_out)},
        {"mosaik_network_links_total", links_help, MK_METRIC_COUNTER,
         "direction", "dialed", read_u64, TRANSPORT(stats.links_dialed)},
        {"mosaik_network_links_total", links_help, MK_METRIC_COUNTER,
         "direction", "accepted", read_u64, TRANSPORT(stats.links_accepted)},
        {"mosaik_discovery_peers", "Peers in the catalog, not counting this "
         "node.", MK_METRIC_GAUGE, NULL, NULL, read_size, NODE(n_peers)},
        {"mosaik_discovery_catalog_bytes", "Signed entry bytes the catalog "
         "holds.", MK_METRIC_GAUGE, NULL, NULL, read_size, NODE(catalog_bytes)},
        {"mosaik_discovery_entries_total", "Entries stored: new peers and new "
         "versions of known ones.", MK_METRIC_COUNTER, NULL, NULL, read_u64,
         NODE(stats.entries)},
        {"mosaik_discovery_syncs_total", "Full catalog exchanges completed.",
         MK_METRIC_COUNTER, NULL, NULL, read_u64, NODE(stats.syncs)},
        {"mosaik_discovery_evicted_total", "Unverified peers evicted to make "
         "room for others.", MK_METRIC_COUNTER, NULL, NULL, read_u64,
         NODE(stats.evicted)},
        {"mosaik_discovery_refused_total", refused_help, MK_METRIC_COUNTER,
         "reason", "oversize", read_u64, NODE(stats.refused_oversize)},
        {"mosaik_discovery_refused_total", refused_help, MK_METRIC_COUNTER,
         "reason", "future", read_u64, NODE(stats.refused_future)},
        {"mosaik_discovery_refused_total", refused_help, MK_METRIC_COUNTER,
         "reason", "drift", read_u64, NODE(stats.refused_drift)},
        {"mosaik_discovery_refused_total", refused_help, MK_METRIC_COUNTER,
         "reason", "full", read_u64, NODE(stats.refused_full)},
        {"mosaik_discovery_refused_total", refused_help, MK_METRIC_COUNTER,
         "reason", "rate", read_u64, NODE(stats.refused_rate)},
    };
    mk_metric *m;
    int rc = mk_metrics_new(&node->metrics);
    for (size_t i = 0; rc == 0 && i < sizeof all / sizeof all[0]; i++) {
        const series *s = &all[i];
        mk_metric_label l = {s->label, s->value};
        char *base = s->in_transport ? (char *)node->transport : (char *)node;
        rc = mk_metrics_add(node->metrics, &(mk_metric_desc){
            .name = s->name, .help = s->help, .type = s->type,
            .labels = s->label ? &l : NULL, .n_labels = s->label ? 1 : 0,
            .read = s->read, .data = base + s->offset}, &m);
    }
    if (rc == 0)
        rc = mk_metrics_add(node->metrics, &(mk_metric_desc){
            .name = "mosaik_network_links_open",
            .help = "Links past their handshake and not yet closed.",
            .type = MK_METRIC_GAUGE, .read = read_links_open,
            .data = node->transport}, &m);
    if (rc == 0)
        rc = mk_metrics_add(node->metrics, &(mk_metric_desc){
            .name = "mosaik_discovery_rtt_seconds",
            .help = "Round trips measured to peers (pings, handshakes).",
            .type = MK_METRIC_HISTOGRAM, .buckets = rtt_bounds,
            .n_buckets = sizeof rtt_bounds / sizeof rtt_bounds[0]},
            &node->rtt);
    if (rc != 0) {
        mk_metrics_free(node->metrics);
        node->metrics = NULL;
    }
    return rc;
}
