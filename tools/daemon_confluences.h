/* Hosting a coalition's confluences in coalitiond: a committee member for
 * every confluence (modules aside) whose implementation this build knows
 * (co_confluence_builtin) and whose committee (acl.issuers) lists the
 * node. Members read the citizens' streams, so this also owns the node's
 * streams service; both go in daemon_confluences_close, before the node. */
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

/* Leaves the committees and unsubscribes, closes the streams service,
 * frees `dc`, then calls `cb` (at once when `dc` is NULL). Before the
 * node's mk_node_close. */
void daemon_confluences_close(daemon_confluences *dc, mk_close_cb cb,
                              void *data);

#endif
