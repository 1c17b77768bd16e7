/* Hosting a coalition's confluences in coalitiond (daemon_confluences.h).
 * The work is co_confluence_host's; this file only owns what a daemon
 * must provide it: the node's streams service and a log. */
#include "daemon_confluences.h"

#include <stdio.h>
#include <stdlib.h>

#include "coalition/confluence.h"
#include "mosaik/error.h"
#include "mosaik/stream.h"
#include "util.h"

struct daemon_confluences {
    mk_streams *streams;
    co_confluence_host *host;
    void (*stop_cb)(void *data);
    void *stop_data;
};

static void host_log(const char *level, const char *line, void *data)
{
    (void)data;
    util_log(level, "%s", line);
}

int daemon_confluences_start(mk_node *node,
                             const co_coalition_config *coalition,
                             const char *data_dir, daemon_confluences **out,
                             char *err)
{
    char cerr[CO_ERRMSG_SIZE];
    daemon_confluences *dc = calloc(1, sizeof *dc);
    if (!dc) {
        snprintf(err, MK_ERRMSG_SIZE, "out of memory");
        return -1;
    }
    int rc = mk_streams_new(node, &dc->streams);
    if (rc < 0) {
        snprintf(err, MK_ERRMSG_SIZE, "confluences: streams: %s",
                 mk_strerror(rc));
        free(dc);
        return -1;
    }
    co_confluence_host_config hc = {
        .node = node,
        .streams = dc->streams,
        .coalition = coalition,
        .data_dir = data_dir,
        .log = host_log,
    };
    if (co_confluence_host_open(&hc, &dc->host, cerr) < 0) {
        /* The streams service stays until the node closes. */
        snprintf(err, MK_ERRMSG_SIZE, "%s", cerr);
        *out = dc;
        return -1;
    }
    *out = dc;
    return 0;
}

static void on_host_stopped(void *data)
{
    daemon_confluences *dc = data;
    dc->host = NULL;
    dc->stop_cb(dc->stop_data);
}

void daemon_confluences_stop(daemon_confluences *dc, mk_close_cb cb,
                             void *data)
{
    if (!dc || !dc->host) {
        cb(data);
        return;
    }
    dc->stop_cb = cb;
    dc->stop_data = data;
    co_confluence_host_close(dc->host, on_host_stopped, dc);
}

void daemon_confluences_node_closed(daemon_confluences *dc)
{
    if (!dc)
        return;
    mk_streams_close(dc->streams, NULL, NULL);
    free(dc);
}
