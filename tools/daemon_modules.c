/* Hosting a coalition's modules in coalitiond (daemon_modules.h). */
#include "daemon_modules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/config_file.h"
#include "coalition/host.h"
#include "daemon_issuer.h"
#include "mosaik/error.h"
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

int daemon_modules_load(const daemon_config *cfg, const char *coalition,
                        daemon_modules **out, char *err)
{
    *out = NULL;
    const char *path = coalition                  ? coalition
                       : cfg && cfg->coalition[0] ? cfg->coalition
                                                  : NULL;
    if (!path) {
        /* Refuses a "ticket_issuer" section without a coalition. */
        daemon_issuer *none;
        return daemon_issuer_load(cfg, NULL, &none, err);
    }
    daemon_modules *dm = calloc(1, sizeof *dm);
    if (!dm)
        return mk_errf(err, -1, "out of memory");
    if (co_config_file_load(path, &dm->file, err) < 0) {
        free(dm);
        return -1;
    }
    /* The ticket issuer is opt-in and needs this coalition (issuer.h). */
    if (daemon_issuer_load(cfg, co_config_file_coalition(dm->file),
                           &dm->issuer, err) != 0) {
        daemon_modules_free(dm);
        return -1;
    }
    *out = dm;
    return 0;
}

int daemon_modules_start(daemon_modules *dm, mk_node *node,
                         const char *data_dir, char *err)
{
    co_host_config hc = {
        .node = node,
        .coalition = co_config_file_coalition(dm->file),
        .data_dir = data_dir,
        .log = host_log,
    };
    /* The issuer first: it can be stopped without a callback chain if
     * the committees then fail to start. */
    if (dm->issuer && daemon_issuer_start(dm->issuer, node, err) != 0)
        return -1;
    if (co_host_open(&hc, &dm->host, err) < 0) {
        if (dm->issuer)
            daemon_issuer_stop(dm->issuer, NULL, NULL);
        return -1;
    }
    if (co_host_count(dm->host) == 0 && !dm->issuer)
        util_log("WARN", "this node is on none of the coalition's module "
                         "committees (their acl.issuers)");
    return 0;
}

static void stop_host(daemon_modules *dm, mk_close_cb cb, void *data)
{
    if (!dm->host) {
        cb(data);
        return;
    }
    co_host *h = dm->host;
    dm->host = NULL;
    co_host_close(h, cb, data);
}

/* The issuer stops first (no tickets from a departing node), then the
 * committees. */
static void on_issuer_stopped(void *data)
{
    daemon_modules *dm = data;
    stop_host(dm, dm->stop_cb, dm->stop_data);
}

void daemon_modules_stop(daemon_modules *dm, mk_close_cb cb, void *data)
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
