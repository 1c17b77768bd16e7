/* Hosting a coalition's modules: what an operator's daemon runs.
 *
 * For every module the coalition ships (Atlas, Almanac, Chronicle,
 * Compute) whose committee lists this node, the host joins the committee
 * group with the module's state machine (its Raft log in the node's data
 * dir) and does a member's duties:
 *  - Atlas: sign every card the committee holds that this member has not
 *    signed yet;
 *  - Almanac: while leading, commit a tick every cadence; stamp each new
 *    tick with this member's clock;
 *  - Chronicle: record the coalition config it starts with (once per
 *    distinct config), and sign every entry it has not signed;
 *  - Compute: while leading, commit the clock its state machine keeps
 *    time by, every clock_ms (compute_host.c).
 * Duties reconcile from state on a timer as well as on events, so a
 * restart, a missed event or a leader change only delays them.
 */
#ifndef CO_HOST_H
#define CO_HOST_H

#include <stddef.h>

#include "coalition/config.h"
#include "mosaik/group.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"

typedef struct co_host co_host;

typedef struct co_host_config {
    mk_node *node;                       /* borrowed */
    const co_coalition_config *coalition; /* borrowed; outlives the host */
    const char *data_dir;                /* the node's data dir */
    mk_group_params params;              /* zero: defaults */
    /* Progress and problems, one line each (may be NULL). */
    void (*log)(const char *level, const char *line, void *data);
    void *log_data;
} co_host_config;

/* Starts hosting. Returns 0 and `*out` (which may host no module at all
 * when this node is on no committee), or a negative code with `err`
 * (CO_ERRMSG_SIZE). */
int co_host_open(const co_host_config *cfg, co_host **out, char *err);

/* How many modules it hosts, and their names ("atlas", …) by index. */
size_t co_host_count(const co_host *h);
const char *co_host_module(const co_host *h, size_t i);
mk_group *co_host_group(const co_host *h, size_t i);

/* Leaves every committee group cleanly, frees, then calls `cb`. */
void co_host_close(co_host *h, mk_close_cb cb, void *data);

#endif /* CO_HOST_H */
