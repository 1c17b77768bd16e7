/* CLI sessions (session.h). */
#include "session.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "util.h"

int session_opt(session_opts *o, int ch, const char *arg)
{
    switch (ch) {
    case SESSION_OPT_BASE + 'b':
        if (o->n_boots == SESSION_MAX_BOOT)
            return cli_error(CLI_USAGE, "too many --bootstrap"), -1;
        o->boots[o->n_boots++] = arg;
        return 1;
    case SESSION_OPT_BASE + 'n':
        o->network = arg;
        return 1;
    case SESSION_OPT_BASE + 'c':
        o->coalition = arg;
        return 1;
    case SESSION_OPT_BASE + 'k':
        o->key = arg;
        return 1;
    case SESSION_OPT_BASE + 't': {
        const char *why = "too large";
        if (util_parse_duration_ms(arg, &o->timeout_ms, &why) != 0 ||
            o->timeout_ms > UINT32_MAX)
            return cli_error(CLI_USAGE, "--timeout: '%s': %s", arg, why),
                   -1;
        return 1;
    }
    case SESSION_OPT_BASE + 'j':
        o->json = true;
        return 1;
    default:
        return 0;
    }
}

int session_open(session *s, const session_opts *o, bool need_coalition,
                 bool need_key)
{
    char err[CO_ERRMSG_SIZE];
    memset(s, 0, sizeof *s);
    if (o->n_boots == 0)
        return cli_error(CLI_USAGE, "--bootstrap PEERID@HOST:PORT is required");
    if (need_coalition && !o->coalition)
        return cli_error(CLI_USAGE, "--coalition FILE is required");
    if (need_key && !o->key)
        return cli_error(CLI_USAGE,
                         "--key FILE is required (a committee member's key)");
    if (o->coalition) {
        if (co_config_file_load(o->coalition, &s->file, err) < 0)
            return cli_error(CLI_USAGE, "%s", err);
        s->coalition = co_config_file_coalition(s->file);
    }
    int rc = o->key ? mk_keypair_load(&s->key, o->key, err)
                    : mk_keypair_generate(&s->key);
    if (rc < 0) {
        co_config_file_free(s->file);
        return cli_error(CLI_USAGE, "%s",
                         o->key ? err : "no randomness for a key");
    }
    /* The node always gets a throwaway identity; --key only signs
     * (publish, append, retire). A member's key usually belongs to a
     * running coalitiond: a second node with that PeerId would replace
     * the daemon's entry in every catalog, and its departure on exit
     * would make every peer forget the daemon until it re-announces. */
    mk_keypair node_key;
    if (mk_keypair_generate(&node_key) < 0) {
        co_config_file_free(s->file);
        return cli_error(CLI_FAIL, "no randomness for a key");
    }
    mk_id net = MK_UNIVERSE;
    if (o->network)
        mk_id_from_str(&net, o->network);
    uv_loop_init(&s->loop);
    mk_node_config nc = {
        .loop = &s->loop,
        .key = &node_key,
        .network = &net,
        .bootstrap = o->boots,
        .n_bootstrap = o->n_boots,
        .listen = o->listen,
    };
    if ((rc = mk_node_new(&nc, &s->node, err)) < 0) {
        uv_loop_close(&s->loop);
        co_config_file_free(s->file);
        return cli_error(rc == MK_EINVAL ? CLI_USAGE : CLI_FAIL, "%s", err);
    }
    mk_node_start(s->node);
    s->deadline = mk_mono_ms() + (o->timeout_ms ? o->timeout_ms : 10000);
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    session *s = t->data;
    if (s->done || mk_mono_ms() >= s->deadline)
        uv_timer_stop(t);
}

bool session_run(session *s)
{
    uv_timer_t t;
    uv_timer_init(&s->loop, &t);
    t.data = s;
    uv_timer_start(&t, on_tick, 20, 20);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(&s->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    return s->done;
}

static void on_node_closed(void *data)
{
    (void)data;
}

void session_close(session *s)
{
    mk_node_close(s->node, on_node_closed, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    co_config_file_free(s->file);
}
