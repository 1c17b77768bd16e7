/* Module readers (reader.h): a replica of the module's committee group,
 * located by the GroupId the coalition config derives, with a deadline.
 *
 * Nothing here asks a registry whether the module exists: a reader whose
 * config names another coalition (a typo, a reordered citizen) derives
 * another GroupId, finds no member, and reports MK_ECONNECT_TIMEOUT at the
 * deadline — the one failure a fingerprint-addressed system can honestly
 * report. It keeps looking afterwards: "not up yet" may become "up".
 */
#include "reader.h"

#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"

static void check_retired(co__reader *r)
{
    const co_retirement *ret = r->retirement(&r->fsm);
    if (ret->retired && !r->reported_retired) {
        r->reported_retired = true;
        r->cb(r, CO_ERETIRED);
    }
}

static void on_replica(mk_replica *rep, void *data)
{
    co__reader *r = data;
    if (r->closing)
        return;
    if (!r->ready) {
        /* "Up to date" means the member's state as of our subscription,
         * not merely subscribed: a long log arrives over several reads
         * after the WELCOME. */
        if (!mk_replica_caught_up(rep))
            return;
        r->ready = true;
        uv_timer_stop(&r->deadline);
    }
    r->cb(r, 0);
    if (!r->closing)
        check_retired(r);
}

static void on_deadline(uv_timer_t *t)
{
    co__reader *r = t->data;
    if (r->ready || r->reported_timeout || r->closing)
        return;
    r->reported_timeout = true;
    r->cb(r, MK_ECONNECT_TIMEOUT);
}

int co__reader_open(co__reader *r, mk_node *net,
                    const co_coalition_config *cfg, co_module_kind kind,
                    int (*init)(struct mk_fsm *, const co_module_info *),
                    void (*fsm_free)(struct mk_fsm *),
                    const co_retirement *(*retirement)(const struct mk_fsm *),
                    uint32_t timeout_ms, co__reader_cb cb, void *owner,
                    char *err)
{
    memset(r, 0, sizeof *r);
    int rc = co_module_info_get(cfg, kind, &r->m, err);
    if (rc < 0)
        return rc;
    if ((rc = init(&r->fsm, &r->m)) < 0)
        return rc;
    r->node = net;
    r->fsm_free = fsm_free;
    r->retirement = retirement;
    r->cb = cb;
    r->owner = owner;
    mk_replica_config rc_cfg = {.node = net, .fsm = &r->fsm};
    co_module_group_id(&r->m, &r->fsm, &rc_cfg.group);
    if ((rc = mk_replica_open(&rc_cfg, &r->replica)) < 0) {
        fsm_free(&r->fsm);
        return rc;
    }
    mk_replica_watch(r->replica, on_replica, r);
    uv_timer_init(mk_node_loop(net), &r->deadline);
    r->deadline.data = r;
    uv_timer_start(&r->deadline, on_deadline, timeout_ms ? timeout_ms : 10000,
                   0);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    co__reader *r = h->data;
    void (*done)(void *) = r->done;
    void *data = r->done_data;
    r->fsm_free(&r->fsm);
    free(r->owner); /* the typed reader, which embeds r */
    if (done)
        done(data);
}

static void on_replica_closed(void *data)
{
    co__reader *r = data;
    uv_close((uv_handle_t *)&r->deadline, on_timer_closed);
}

void co__reader_close(co__reader *r, void (*done)(void *data), void *data)
{
    if (r->closing)
        return;
    r->closing = true;
    r->done = done;
    r->done_data = data;
    uv_timer_stop(&r->deadline);
    mk_replica_close(r->replica, on_replica_closed, r);
}
