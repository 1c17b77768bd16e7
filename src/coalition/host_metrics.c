/* The coalition modules' series (host_metrics.h). */
#include "host_metrics.h"

#include "compute_internal.h"
#include "module_ops.h"
#include "modules_internal.h"

static double almanac_seq(void *data)
{
    const co__host_metrics *hm = data;
    return (double)co__almanac_latest(hm->fsm)->seq;
}

static double chronicle_length(void *data)
{
    const co__host_metrics *hm = data;
    return (double)co__chronicle_count(hm->fsm);
}

static double atlas_cards(void *data)
{
    const co__host_metrics *hm = data;
    return (double)co__atlas_count(hm->fsm);
}

/* A scan, at scrape time only: the Atlas keeps no running count. */
static double atlas_verified(void *data)
{
    const co__host_metrics *hm = data;
    size_t n = co__atlas_count(hm->fsm), v = 0;
    for (size_t i = 0; i < n; i++)
        v += co__atlas_at(hm->fsm, i)->verified;
    return (double)v;
}

static double compute_providers(void *data)
{
    const co__host_metrics *hm = data;
    return (double)co__compute_provider_count(hm->fsm);
}

static double compute_requests(void *data)
{
    const co__host_metrics *hm = data;
    return (double)co__compute_request_count(hm->fsm);
}

static double retired(void *data)
{
    const co__host_metrics *hm = data;
    const co_retirement *r = co__module_ops_of(hm->kind)->retirement(hm->fsm);
    return r && r->retired;
}

typedef struct series {
    co_module_kind kind;
    const char *name, *help;
    double (*read)(void *data);
} series;

static const series all[] = {
    {CO_MODULE_ALMANAC, "coalition_almanac_seq",
     "The latest Almanac tick's sequence number (0 before any).",
     almanac_seq},
    {CO_MODULE_CHRONICLE, "coalition_chronicle_length",
     "Entries in the Chronicle.", chronicle_length},
    {CO_MODULE_ATLAS, "coalition_atlas_cards", "Citizen cards in the Atlas.",
     atlas_cards},
    {CO_MODULE_ATLAS, "coalition_atlas_cards_verified",
     "Atlas cards a committee majority signed.", atlas_verified},
    {CO_MODULE_COMPUTE, "coalition_compute_providers",
     "Providers registered with the Compute module.", compute_providers},
    {CO_MODULE_COMPUTE, "coalition_compute_requests",
     "Requests the Compute module holds.", compute_requests},
};

void co__host_metrics_add(co__host_metrics *hm, mk_node *node,
                          co_module_kind kind, const struct mk_fsm *fsm)
{
    mk_metrics *r = mk_node_metrics(node);
    size_t n = 0;
    *hm = (co__host_metrics){.kind = kind, .fsm = fsm};
    if (!r)
        return; /* metrics off: the module runs unobserved */
    const mk_metric_label l = {"module", co_module_name(kind)};
    int rc = mk_metrics_add(r, &(mk_metric_desc){
        .name = "coalition_module_retired",
        .help = "1 once the module's committee committed its retirement.",
        .type = MK_METRIC_GAUGE, .labels = &l, .n_labels = 1,
        .read = retired, .data = hm}, &hm->m[n++]);
    for (size_t i = 0; rc == 0 && i < sizeof all / sizeof all[0]; i++)
        if (all[i].kind == kind && n < CO__HOST_METRICS)
            rc = mk_metrics_add(r, &(mk_metric_desc){
                .name = all[i].name, .help = all[i].help,
                .type = MK_METRIC_GAUGE, .read = all[i].read, .data = hm},
                &hm->m[n++]);
    if (rc != 0)
        co__host_metrics_remove(hm);
}

void co__host_metrics_remove(co__host_metrics *hm)
{
    for (size_t i = 0; i < CO__HOST_METRICS; i++) {
        mk_metric_remove(hm->m[i]);
        hm->m[i] = NULL;
    }
}
