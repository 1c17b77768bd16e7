/* Internal: the series a module host adds for each module it hosts,
 * read from the module's state machine when the registry is read. */
#ifndef CO_HOST_METRICS_H
#define CO_HOST_METRICS_H

#include "coalition/module.h"
#include "mosaik/group.h"
#include "mosaik/metrics.h"

#define CO__HOST_METRICS 3

typedef struct co__host_metrics {
    co_module_kind kind;
    const struct mk_fsm *fsm;
    mk_metric *m[CO__HOST_METRICS];
} co__host_metrics;

/* Best effort, like the groups' own series: a module whose series could
 * not be added is hosted all the same. `hm` must stay where it is until
 * co__host_metrics_remove. */
void co__host_metrics_add(co__host_metrics *hm, mk_node *node,
                          co_module_kind kind, const struct mk_fsm *fsm);
void co__host_metrics_remove(co__host_metrics *hm);

#endif
