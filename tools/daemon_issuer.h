/* Running the coalition's ticket issuer in coalitiond.
 *
 * Opt-in, from the "ticket_issuer" section of the --config node file:
 *
 *   "ticket_issuer": {
 *     "key": "tickets.key",        signing key file (relative to the node
 *                                  file); its public key must be on the
 *                                  coalition's ticket_issuer.acl.issuers
 *     "allow": "any" | ["<PeerId hex>", ...],   who gets a ticket
 *     "ttl": "1h",                 lifetime of each ticket (default 1h)
 *     "audience": "..."            optional aud claim
 *   }
 *
 * The coalition is the one the daemon hosts modules for (--coalition or
 * the node file's "coalition"). See include/coalition/issuer.h.
 */
#ifndef CO_TOOLS_DAEMON_ISSUER_H
#define CO_TOOLS_DAEMON_ISSUER_H

#include <stddef.h>

#include "coalition/config.h"
#include "daemon_config.h"
#include "mosaik/node.h"

typedef struct daemon_issuer daemon_issuer;

/* Reads the config's section (`cfg` may be NULL; no section: *out stays
 * NULL, returns 0) and checks it against `coalition` (borrowed; must
 * outlive the issuer). 0, or -1 with `err` (MK_ERRMSG_SIZE): bad input,
 * the daemon exits 2. */
int daemon_issuer_load(const daemon_config *cfg,
                       const co_coalition_config *coalition,
                       daemon_issuer **out, char *err);

/* Starts issuing on `node`. 0 or -1 with `err`. */
int daemon_issuer_start(daemon_issuer *di, mk_node *node, char *err);

/* Stops issuing, then calls `cb` (at once when it never started). */
void daemon_issuer_stop(daemon_issuer *di, mk_close_cb cb, void *data);

/* Frees the parsed section (after stop's callback, or if never
 * started). NULL is fine. */
void daemon_issuer_free(daemon_issuer *di);

#endif
