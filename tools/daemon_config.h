/* The node config of coalitiond and the CLI (--config FILE), read once.
 *
 * One JSON object; every key is optional:
 *
 *   "groups":        the groups this node hosts (daemon_groups.h)
 *   "coalition":     a coalition file, relative to this one
 *                    (daemon_modules.h)
 *   "ticket_issuer": the ticket issuer section (daemon_issuer.h)
 *   "metrics":       false to keep no metrics registry
 *
 * Reading is strict: duplicate keys, unknown keys (at any depth the
 * readers know) and wrong types are errors naming the key, so a misspelt
 * setting never silently takes its default.
 */
#ifndef CO_TOOLS_DAEMON_CONFIG_H
#define CO_TOOLS_DAEMON_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

typedef struct daemon_config {
    char path[4096];       /* the file, as given */
    json_t *root;          /* owned: the whole document */
    json_t *groups;        /* borrowed from root: an array, or NULL */
    json_t *ticket_issuer; /* borrowed from root: an object, or NULL */
    char coalition[4096];  /* "coalition" resolved against the file's
                              directory, or "" */
    bool metrics_off;      /* "metrics": false */
} daemon_config;

/* Reads and checks the top level of `path`. 0 and *out (free it with
 * daemon_config_free), or -1 with `err` (MK_ERRMSG_SIZE): bad input. */
int daemon_config_load(const char *path, daemon_config **out, char *err);

void daemon_config_free(daemon_config *c);

/* -1 with `err` ("WHERE: unknown key "K" (known: ...)") when object `o`
 * holds a key not in the NULL-terminated `known`; 0 otherwise. */
int daemon_config_only_keys(json_t *o, const char *const *known,
                            const char *where, char *err);

#endif
