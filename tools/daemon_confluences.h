/* Hosting a coalition's confluences in coalitiond: a committee member for
 * every confluence (modules aside) whose implementation this build knows
 * (co_confluence_builtin) and whose committee (acl.issuers) lists the
 * node. Members read the citizens' streams, so this also owns the node's
 * streams service, which must outlive the node: call
 * daemon_confluences_node_closed from the node's close callback. */
#ifndef CO_TOOLS_DAEMON_CONFLUENCES_H
#define CO_TOOLS_DAEMON_CONFLUENCES_H

#include <stddef.h>

#include "coalition/config.h"
#include "mosaik/node.h"

typedef struct daemon_confluences daemon_confluences;

/* Starts the members (possibly none). `coalition` is borrowed and must
 * outlive the object. 0 and *out, or -1 with `err` (MK_ERRMSG_SIZE). */
int daemon_confluences_start(mk_node *node,
                             const co_coalition_config *coalition,
                             const char *data_dir, daemon_confluences **out,
                             char *err);

/* Leaves the committees and unsubscribes, then calls `cb` (at once when
 * `dc` is NULL or hosts nothing). */
void daemon_confluences_stop(daemon_confluences *dc, mk_close_cb cb,
                             void *data);

/* Releases the streams service and frees `dc`; only once the node has
 * closed (from its close callback: the service needs the loop). NULL is
 * fine. */
void daemon_confluences_node_closed(daemon_confluences *dc);

#endif
