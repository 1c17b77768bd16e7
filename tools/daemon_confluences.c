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
        /* The caller closes `dc`, and the streams service with it. */
        snprintf(err, MK_ERRMSG_SIZE, "%s", cerr);
        *out = dc;
        return -1;
    }
    *out = dc;
    return 0;
}

static void on_streams_closed(void *data)
{
    daemon_confluences *dc = data;
    mk_close_cb cb = dc->stop_cb;
    void *cb_data = dc->stop_data;
    free(dc);
    cb(cb_data);
}

/* The members read through the streams service: it goes after them. */
static void on_host_stopped(void *data)
{
    daemon_confluences *dc = data;
    dc->host = NULL;
    mk_streams_close(dc->streams, on_streams_closed, dc);
}

void daemon_confluences_close(daemon_confluences *dc, mk_close_cb cb,
                              void *data)
{
    if (!dc) {
        cb(data);
        return;
    }
    dc->stop_cb = cb;
    dc->stop_data = data;
    if (dc->host)
        co_confluence_host_close(dc->host, on_host_stopped, dc);
    else
        on_host_stopped(dc);
}
