/* A CLI session: one event loop and one node joined to the network
 * through bootstrap peers, optionally with a coalition config loaded.
 * Subcommands that talk to the network (net, atlas, almanac, chronicle,
 * group, …) run inside one. */
#ifndef CO_TOOLS_SESSION_H
#define CO_TOOLS_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "coalition/config_file.h"
#include "mosaik/node.h"

#define SESSION_MAX_BOOT 16

typedef struct session_opts {
    const char *boots[SESSION_MAX_BOOT];
    size_t n_boots;
    const char *network;   /* NULL: the universe */
    const char *coalition; /* a coalition JSON file, or NULL */
    const char *key;       /* a key file, or NULL for a fresh key */
    int64_t timeout_ms;    /* default 10 s */
    bool json;
    const char *listen;    /* "host:port" to be reachable at (a command
                              that serves something, e.g. compute submit);
                              NULL: dial-only */
} session_opts;

typedef struct session {
    uv_loop_t loop;
    mk_keypair key;       /* --key (it signs), else a fresh one; never
                             the node's identity (session.c says why) */
    mk_node *node;
    co_config_file *file; /* when opts.coalition was given */
    const co_coalition_config *coalition;
    int64_t deadline;     /* mk_mono_ms() + timeout */
    bool done;            /* set by callbacks to end session_run */
} session;

/* Parses the options every session command shares; returns 1 when `ch`
 * (from getopt_long with SESSION_LONGOPTS) was one of them, 0 when not,
 * or -1 after printing a usage error. */
int session_opt(session_opts *o, int ch, const char *arg);

#define SESSION_OPT_BASE 1000
#define SESSION_LONGOPTS                                                      \
    {"bootstrap", required_argument, NULL, SESSION_OPT_BASE + 'b'},           \
        {"network", required_argument, NULL, SESSION_OPT_BASE + 'n'},         \
        {"coalition", required_argument, NULL, SESSION_OPT_BASE + 'c'},       \
        {"key", required_argument, NULL, SESSION_OPT_BASE + 'k'},             \
        {"timeout", required_argument, NULL, SESSION_OPT_BASE + 't'},         \
        {"json", no_argument, NULL, SESSION_OPT_BASE + 'j'}

/* Starts the node. Returns 0, or prints why and returns a CLI exit
 * status (2 for bad input). `need_coalition` refuses a missing
 * --coalition; `need_key` a missing --key. */
int session_open(session *s, const session_opts *o, bool need_coalition,
                 bool need_key);

/* Runs the loop until s->done or the deadline; true when done. */
bool session_run(session *s);

/* Departs and frees everything. */
void session_close(session *s);

#endif
