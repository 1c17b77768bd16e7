/* Hosting a coalition's modules in coalitiond (daemon_modules.h). */
#include "daemon_modules.h"

#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/config_file.h"
#include "coalition/host.h"
#include "daemon_issuer.h"
#include "util.h"

struct daemon_modules {
    co_config_file *file;
    co_host *host;
    daemon_issuer *issuer; /* the node file's "ticket_issuer", or NULL */
    void (*stop_cb)(void *data);
    void *stop_data;
};

static void host_log(const char *level, const char *line, void *data)
{
    (void)data;
    util_log(level, "%s", line);
}

/* The "coalition" key of a node config, resolved against its directory. */
static int coalition_from_config(const char *config, char *out, size_t len,
                                 char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(config, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", config, je.line, je.text);
        return -1;
    }
    json_t *c = json_object_get(root, "coalition");
    int rc = 0;
    out[0] = '\0';
    if (c && !json_is_string(c)) {
        snprintf(err, errlen, "%s: \"coalition\" must be a file path",
                 config);
        rc = -1;
    } else if (c) {
        const char *p = json_string_value(c);
        if (p[0] == '/') {
            snprintf(out, len, "%s", p);
        } else {
            char *copy = strdup(config);
            snprintf(out, len, "%s/%s", copy ? dirname(copy) : ".", p);
            free(copy);
        }
    }
    json_decref(root);
    return rc;
}

int daemon_modules_load(const char *node_config, const char *coalition,
                        daemon_modules **out, char *err, size_t errlen)
{
    char path[4096] = "";
    *out = NULL;
    if (coalition)
        snprintf(path, sizeof path, "%s", coalition);
    else if (node_config &&
             coalition_from_config(node_config, path, sizeof path, err,
                                   errlen) != 0)
        return -1;
    if (!path[0]) {
        /* Refuses a "ticket_issuer" section without a coalition. */
        daemon_issuer *none;
        return daemon_issuer_load(node_config, NULL, &none, err, errlen);
    }
    daemon_modules *dm = calloc(1, sizeof *dm);
    char cerr[CO_ERRMSG_SIZE];
    if (!dm) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (co_config_file_load(path, &dm->file, cerr) < 0) {
        snprintf(err, errlen, "%s", cerr);
        free(dm);
        return -1;
    }
    /* The ticket issuer is opt-in and needs this coalition (issuer.h). */
    if (daemon_issuer_load(node_config, co_config_file_coalition(dm->file),
                           &dm->issuer, err, errlen) != 0) {
        daemon_modules_free(dm);
        return -1;
    }
    *out = dm;
    return 0;
}

int daemon_modules_start(daemon_modules *dm, mk_node *node,
                         const char *data_dir, char *err, size_t errlen)
{
    char cerr[CO_ERRMSG_SIZE];
    co_host_config hc = {
        .node = node,
        .coalition = co_config_file_coalition(dm->file),
        .data_dir = data_dir,
        .log = host_log,
    };
    /* The issuer first: it can be stopped without a callback chain if
     * the committees then fail to start. */
    if (dm->issuer && daemon_issuer_start(dm->issuer, node, err, errlen) != 0)
        return -1;
    if (co_host_start(&hc, &dm->host, cerr) < 0) {
        snprintf(err, errlen, "%s", cerr);
        if (dm->issuer)
            daemon_issuer_stop(dm->issuer, NULL, NULL);
        return -1;
    }
    if (co_host_count(dm->host) == 0 && !dm->issuer)
        util_log("WARN", "this node is on none of the coalition's module "
                         "committees (their acl.issuers)");
    return 0;
}

static void stop_host(daemon_modules *dm, void (*cb)(void *data),
                      void *data)
{
    if (!dm->host) {
        cb(data);
        return;
    }
    co_host *h = dm->host;
    dm->host = NULL;
    co_host_stop(h, cb, data);
}

/* The issuer stops first (no tickets from a departing node), then the
 * committees. */
static void on_issuer_stopped(void *data)
{
    daemon_modules *dm = data;
    stop_host(dm, dm->stop_cb, dm->stop_data);
}

void daemon_modules_stop(daemon_modules *dm, void (*cb)(void *data),
                         void *data)
{
    dm->stop_cb = cb;
    dm->stop_data = data;
    if (dm->issuer)
        daemon_issuer_stop(dm->issuer, on_issuer_stopped, dm);
    else
        stop_host(dm, cb, data);
}

void daemon_modules_free(daemon_modules *dm)
{
    if (!dm)
        return;
    /* Called after the loop ended: the node closed, so the transport no
     * longer holds the issuer's ALPN handler. */
    daemon_issuer_free(dm->issuer);
    co_config_file_free(dm->file);
    free(dm);
}

const co_coalition_config *daemon_modules_coalition(const daemon_modules *dm)
{
    return co_config_file_coalition(dm->file);
}

const co_host *daemon_modules_host(const daemon_modules *dm)
{
    return dm->host;
}
