/* The ticket issuer inside coalitiond (daemon_issuer.h): parses the node
 * file's "ticket_issuer" section strictly (unknown keys are errors, as
 * everywhere else in our configs) and runs co_issuer on the daemon's
 * node. */
#include "daemon_issuer.h"

#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/issuer.h"
#include "mosaik/error.h"
#include "util.h"

#define MAX_ALLOW 1024

struct daemon_issuer {
    const co_coalition_config *coalition;
    mk_keypair key;
    bool any;
    mk_peer_id *allow;
    size_t n_allow;
    uint32_t ttl_s;
    char *audience;
    co_issuer *issuer;
};

static void issuer_log(const char *level, const char *line, void *data)
{
    (void)data;
    util_log(level, "%s", line);
}

static int parse(daemon_issuer *di, json_t *s, const char *path, char *err)
{
    static const char *const KEYS[] = {"key", "allow", "ttl", "audience",
                                       NULL};
    char where[4200];
    snprintf(where, sizeof where, "%s: ticket_issuer", path);
    if (daemon_config_only_keys(s, KEYS, where, err) != 0)
        return -1;
    const char *key = json_string_value(json_object_get(s, "key"));
    if (!key)
        return mk_errf(err, -1,
                       "%s: ticket_issuer.key: the signing key file "
                       "is required",
                       path);
    /* A relative key path is relative to the node file, like "coalition". */
    char kpath[4096], kerr[MK_ERRMSG_SIZE];
    if (key[0] == '/') {
        snprintf(kpath, sizeof kpath, "%s", key);
    } else {
        char *copy = strdup(path);
        snprintf(kpath, sizeof kpath, "%s/%s", copy ? dirname(copy) : ".",
                 key);
        free(copy);
    }
    if (mk_keypair_load(&di->key, kpath, kerr) < 0)
        return mk_errf(err, -1, "%s: ticket_issuer.key: %s", path, kerr);

    json_t *allow = json_object_get(s, "allow");
    if (json_is_string(allow) && strcmp(json_string_value(allow), "any") == 0) {
        di->any = true;
    } else if (json_is_array(allow) && json_array_size(allow) <= MAX_ALLOW) {
        size_t n = json_array_size(allow), i;
        di->allow = calloc(n ? n : 1, sizeof *di->allow);
        if (!di->allow)
            return mk_errf(err, -1, "out of memory");
        json_t *p;
        json_array_foreach(allow, i, p) {
            const char *hex = json_string_value(p);
            if (!hex || mk_id_from_hex(&di->allow[i], hex, strlen(hex)) != 0)
                return mk_errf(err, -1,
                               "%s: ticket_issuer.allow[%zu]: not a "
                               "PeerId (64 hex)",
                               path, i);
        }
        di->n_allow = n;
    } else {
        /* No default: issuing to anyone must be a visible choice. */
        return mk_errf(err, -1,
                       "%s: ticket_issuer.allow: \"any\" or a list "
                       "of at most %d PeerIds is required",
                       path, MAX_ALLOW);
    }

    json_t *ttl = json_object_get(s, "ttl");
    if (ttl) {
        int64_t ms;
        if (!json_is_string(ttl) ||
            util_parse_duration_ms(json_string_value(ttl), &ms, NULL) != 0 ||
            ms < 1000 || ms / 1000 > UINT32_MAX)
            return mk_errf(err, -1,
                           "%s: ticket_issuer.ttl: a duration of at "
                           "least 1s, like \"10m\" or \"1h\"",
                           path);
        di->ttl_s = (uint32_t)(ms / 1000);
    }
    json_t *aud = json_object_get(s, "audience");
    if (aud) {
        if (!json_is_string(aud))
            return mk_errf(err, -1, "%s: ticket_issuer.audience: a string",
                           path);
        if (!(di->audience = strdup(json_string_value(aud))))
            return mk_errf(err, -1, "out of memory");
    }
    return 0;
}

int daemon_issuer_load(const daemon_config *cfg,
                       const co_coalition_config *coalition,
                       daemon_issuer **out, char *err)
{
    *out = NULL;
    json_t *s = cfg ? cfg->ticket_issuer : NULL;
    const char *node_config = cfg ? cfg->path : NULL;
    int rc = 0;
    daemon_issuer *di = NULL;
    if (!s) {
        rc = 0;
    } else if (!coalition) {
        rc = mk_errf(err, -1,
                     "%s: \"ticket_issuer\" needs a coalition "
                     "(--coalition or \"coalition\")",
                     node_config);
    } else if (!(di = calloc(1, sizeof *di))) {
        rc = mk_errf(err, -1, "out of memory");
    } else {
        di->coalition = coalition;
        rc = parse(di, s, node_config, err);
        /* The ACL check now, so a wrong key is bad input (exit 2). */
        mk_peer_id keys[CO_ISSUER_MAX_KEYS];
        size_t n = 0;
        char cerr[CO_ERRMSG_SIZE];
        bool on_acl = false;
        if (rc == 0 && co_issuer_keys(coalition, NULL, keys, &n, cerr) < 0)
            rc = mk_errf(err, -1, "%s: ticket_issuer: %s", node_config, cerr);
        for (size_t i = 0; rc == 0 && i < n; i++)
            on_acl |= mk_id_eq(&keys[i], &di->key.pub);
        if (rc == 0 && !on_acl)
            rc = mk_errf(err, -1,
                         "%s: ticket_issuer.key: its public key is "
                         "not on the coalition's "
                         "ticket_issuer.acl.issuers",
                         node_config);
    }
    if (rc != 0) {
        daemon_issuer_free(di);
        return rc;
    }
    *out = di;
    return 0;
}

int daemon_issuer_start(daemon_issuer *di, mk_node *node, char *err)
{
    co_issuer_config ic = {
        .node = node,
        .coalition = di->coalition,
        .key = &di->key,
        .policy = {.allow_any = di->any, .allow = di->allow,
                   .n_allow = di->n_allow, .ttl_s = di->ttl_s,
                   .audience = di->audience},
        .log = issuer_log,
    };
    return co_issuer_new(&ic, &di->issuer, err) < 0 ? -1 : 0;
}

void daemon_issuer_stop(daemon_issuer *di, mk_close_cb cb, void *data)
{
    if (!di->issuer) {
        if (cb)
            cb(data);
        return;
    }
    co_issuer *is = di->issuer;
    di->issuer = NULL;
    co_issuer_close(is, cb, data);
}

void daemon_issuer_free(daemon_issuer *di)
{
    if (!di)
        return;
    free(di->allow);
    free(di->audience);
    free(di);
}
