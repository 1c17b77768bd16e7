/* Hosting a coalition's modules in coalitiond: the coalition file comes
 * from --coalition FILE or from the "coalition" key of the --config node
 * file (a path relative to that file). */
#ifndef CO_TOOLS_DAEMON_MODULES_H
#define CO_TOOLS_DAEMON_MODULES_H

#include <stddef.h>

#include "coalition/config.h"
#include "coalition/host.h"
#include "daemon_config.h"
#include "mosaik/node.h"

typedef struct daemon_modules daemon_modules;

/* Loads the coalition file named by `coalition` (--coalition, may be
 * NULL) or else by the config's "coalition" (`cfg` may be NULL; only read
 * during the call), and the config's ticket issuer; *out stays NULL when
 * neither names a coalition. 0, or -1 with `err` (MK_ERRMSG_SIZE; exit
 * status 2: bad input). */
int daemon_modules_load(const daemon_config *cfg, const char *coalition,
                        daemon_modules **out, char *err);

/* Joins every module committee this node is on. 0 or -1 with `err`. */
int daemon_modules_start(daemon_modules *dm, mk_node *node,
                         const char *data_dir, char *err);

/* Leaves the committees, then calls `cb`. */
void daemon_modules_stop(daemon_modules *dm, mk_close_cb cb, void *data);

void daemon_modules_free(daemon_modules *dm);

/* The module host, NULL before start or once stopping. */
const co_host *daemon_modules_host(const daemon_modules *dm);

/* The loaded coalition, valid until daemon_modules_free (the confluence
 * host, daemon_confluences.h, serves the same file). */
const co_coalition_config *daemon_modules_coalition(const daemon_modules *dm);

#endif
