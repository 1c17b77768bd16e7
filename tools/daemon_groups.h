/* The groups a coalitiond hosts, from the "groups" array of its JSON node
 * config (daemon_config.h; docs/groups.md has the format), and the same
 * parsing for the CLI, which names a group by config file and name. */
#ifndef CO_TOOLS_DAEMON_GROUPS_H
#define CO_TOOLS_DAEMON_GROUPS_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon_config.h"
#include "mosaik/group.h"
#include "mosaik/lifecycle.h"

typedef struct daemon_groups daemon_groups;

/* Parses the config's "groups" (`cfg` is only read during the call).
 * Returns 0 and *out, or -1 with the reason in `err` (MK_ERRMSG_SIZE). A
 * config without "groups" hosts none. */
int daemon_groups_load(const daemon_config *cfg, daemon_groups **out,
                       char *err);

size_t daemon_groups_count(const daemon_groups *dg);

/* Group i (of daemon_groups_count): its name and kind, and the running
 * group, NULL when this node does not run it (not a voter, not started,
 * stopped). */
mk_group *daemon_groups_at(const daemon_groups *dg, size_t i,
                           const char **name, const char **kind);

/* The "capacity" of the group called `name`; 0 when none or no such
 * group (a pq replica must evict as the members do). */
uint64_t daemon_groups_capacity(const daemon_groups *dg, const char *name);

/* The GroupId and kind of the group called `name`; false if none. */
bool daemon_groups_find(const daemon_groups *dg, const char *name, mk_id *id,
                        const char **kind);

/* Joins every group this node is a voter of (data in
 * <data_dir>/groups/<GroupId hex>); groups it is not a voter of are
 * skipped with a log line. 0, or -1 with `err`. */
int daemon_groups_start(daemon_groups *dg, mk_node *node, const char *data_dir,
                        char *err);

/* Leaves every joined group, then calls `cb`. */
void daemon_groups_stop(daemon_groups *dg, mk_close_cb cb, void *data);

/* Frees the config (after stop's callback, or if never started). */
void daemon_groups_free(daemon_groups *dg);

#endif
