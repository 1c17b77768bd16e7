/* Submitting commands to a module committee from any node (operators,
 * the CLI): one group client per submission, closed when it answers. */
#include <stdlib.h>
#include <string.h>

#include "module_ops.h"
#include "modules_internal.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"

int co_module_committee_group(const co_coalition_config *cfg,
                              co_module_kind kind, co_module_info *m,
                              mk_id *group, char *err)
{
    int rc = co_module_info_get(cfg, kind, m, err);
    if (rc < 0)
        return rc;
    /* Only the signature shapes the id; no machine is built. */
    struct mk_fsm shape = {.version = MK_FSM_VERSION};
    mk_id_from_str(&shape.signature, co__module_ops_of(kind)->signature);
    co_module_group_id(m, &shape, group);
    return 0;
}

/* Submissions reuse one group client per committee and node: a client
 * per call cost a TLS handshake and a fresh session per command, which
 * capped Chronicle appends at a few hundred a second; one client
 * pipelines them into the leader's group commit. The clients hang off the
 * node (mk_node_set_extension) and are closed with it, or after IDLE_MS
 * without use. */

#define IDLE_MS 30000
#define MAX_CLIENTS 16

typedef struct cached {
    mk_id group;
    mk_group_client *client;
    size_t pending;
    int64_t last_used;
} cached;

typedef struct submitter {
    mk_node *node;
    cached v[MAX_CLIENTS];
    size_t n;
    uv_timer_t idle;
} submitter;

static const char SUBMITTER_KEY = 0;

static void on_submitter_closed(uv_handle_t *h)
{
    free(h->data);
}

static void release_submitter(void *value)
{
    submitter *sm = value;
    for (size_t i = 0; i < sm->n; i++)
        mk_group_client_close(sm->v[i].client, NULL, NULL);
    sm->n = 0;
    uv_close((uv_handle_t *)&sm->idle, on_submitter_closed);
}

static void drop(submitter *sm, size_t i)
{
    mk_group_client_close(sm->v[i].client, NULL, NULL);
    sm->v[i] = sm->v[--sm->n];
}

static void on_idle_check(uv_timer_t *t)
{
    submitter *sm = t->data;
    int64_t now = mk_mono_ms();
    for (size_t i = sm->n; i-- > 0;)
        if (sm->v[i].pending == 0 && now - sm->v[i].last_used >= IDLE_MS)
            drop(sm, i);
}

static submitter *submitter_of(mk_node *net)
{
    submitter *sm = mk_node_extension(net, &SUBMITTER_KEY);
    if (sm)
        return sm;
    sm = calloc(1, sizeof *sm);
    if (!sm)
        return NULL;
    sm->node = net;
    if (mk_node_set_extension(net, &SUBMITTER_KEY, sm, release_submitter) !=
        0) {
        free(sm);
        return NULL;
    }
    uv_timer_init(mk_node_loop(net), &sm->idle);
    sm->idle.data = sm;
    uv_timer_start(&sm->idle, on_idle_check, IDLE_MS, IDLE_MS);
    uv_unref((uv_handle_t *)&sm->idle); /* keeps no loop alive */
    return sm;
}

static cached *client_for(submitter *sm, const mk_id *group)
{
    for (size_t i = 0; i < sm->n; i++)
        if (mk_id_eq(&sm->v[i].group, group))
            return &sm->v[i];
    if (sm->n == MAX_CLIENTS) {
        /* Full: let the least recently used idle one go. */
        size_t victim = MAX_CLIENTS;
        for (size_t i = 0; i < sm->n; i++)
            if (sm->v[i].pending == 0 &&
                (victim == MAX_CLIENTS ||
                 sm->v[i].last_used < sm->v[victim].last_used))
                victim = i;
        if (victim == MAX_CLIENTS)
            return NULL;
        drop(sm, victim);
    }
    cached *c = &sm->v[sm->n];
    memset(c, 0, sizeof *c);
    c->group = *group;
    if (mk_group_client_open(sm->node, group, &c->client) < 0)
        return NULL;
    sm->n++;
    return c;
}

typedef struct submission {
    submitter *sm;
    mk_id group;
    void (*done)(int, const uint8_t *, size_t, void *);
    void *data;
} submission;

static void on_result(int status, uint64_t applied, const uint8_t *result,
                      size_t len, void *data)
{
    submission *s = data;
    (void)applied;
    for (size_t i = 0; i < s->sm->n; i++)
        if (mk_id_eq(&s->sm->v[i].group, &s->group)) {
            s->sm->v[i].pending--;
            s->sm->v[i].last_used = mk_mono_ms();
            break;
        }
    s->done(status, result, len, s->data);
    free(s);
}

int co__submit(mk_node *net, const mk_id *group, const mk_buf *cmd,
               uint32_t timeout_ms,
               void (*done)(int status, const uint8_t *result, size_t len,
                            void *data),
               void *data)
{
    if (cmd->err)
        return cmd->err;
    submitter *sm = submitter_of(net);
    if (!sm)
        return MK_ENOMEM;
    cached *c = client_for(sm, group);
    if (!c)
        return MK_EBUSY;
    submission *s = calloc(1, sizeof *s);
    if (!s)
        return MK_ENOMEM;
    *s = (submission){sm, *group, done, data};
    int rc = mk_group_client_execute(c->client, cmd->data, cmd->len,
                                     timeout_ms, on_result, s);
    if (rc < 0) {
        free(s);
        return rc;
    }
    c->pending++;
    c->last_used = mk_mono_ms();
    return 0;
}
