/* The integrator's confluence handle (co_confluence_read): a read-only
 * replica of the committee's group, located by the GroupId the
 * definition derives, with a deadline.
 *
 * As for modules (reader.c), nothing asks a registry whether the
 * confluence exists: a definition whose spanned citizens are wrong, in
 * another order, or whose content or committee differ derives another
 * GroupId, finds no member, and reports MK_ECONNECT_TIMEOUT at the
 * deadline. It keeps looking afterwards. Retirement is read from the log
 * itself: the marker is the last commit, so a reader that follows the
 * log reports CO_ERETIRED, with the successor, instead of timing out.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "coalition/confluence.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"

struct co_confluence_reader {
    mk_node *node;
    struct mk_fsm fsm;
    mk_replica *replica;
    uv_timer_t deadline;
    co_confluence_cb cb;
    void *data;
    bool ready, reported_timeout, reported_retired, closing;
    uint64_t reported; /* commits seen by the last callback */
    void (*done)(void *data);
    void *done_data;
};

static void on_replica(mk_replica *rep, void *data)
{
    co_confluence_reader *r = data;
    if (r->closing)
        return;
    if (!r->ready) {
        if (!mk_replica_online(rep))
            return;
        r->ready = true;
        uv_timer_stop(&r->deadline);
        r->reported = co_confluence_fsm_count(&r->fsm);
        r->cb(r, 0, r->data);
    } else if (co_confluence_fsm_count(&r->fsm) != r->reported) {
        r->reported = co_confluence_fsm_count(&r->fsm);
        r->cb(r, 0, r->data);
    }
    co_confluence_retirement ret;
    co_confluence_fsm_retirement(&r->fsm, &ret);
    if (!r->closing && ret.retired && !r->reported_retired) {
        r->reported_retired = true;
        r->cb(r, CO_ERETIRED, r->data);
    }
}

static void on_deadline(uv_timer_t *t)
{
    co_confluence_reader *r = t->data;
    if (r->ready || r->reported_timeout || r->closing)
        return;
    r->reported_timeout = true;
    r->cb(r, MK_ECONNECT_TIMEOUT, r->data);
}

int co_confluence_read(mk_node *net, const co_confluence_def *def,
                       uint32_t timeout_ms, co_confluence_cb cb, void *data,
                       co_confluence_reader **out, char *err)
{
    co_confluence_reader *r = calloc(1, sizeof *r);
    if (!r)
        return MK_ENOMEM;
    int rc = co_confluence_fsm_init(&r->fsm, def, err);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->node = net;
    r->cb = cb;
    r->data = data;
    mk_replica_config rc_cfg = {
        .node = net,
        .group = co_confluence_fsm_info(&r->fsm)->group,
        .fsm = &r->fsm,
    };
    if ((rc = mk_replica_open(&rc_cfg, &r->replica)) < 0) {
        co_confluence_fsm_free(&r->fsm);
        free(r);
        return rc;
    }
    mk_replica_watch(r->replica, on_replica, r);
    uv_timer_init(mk_node_loop(net), &r->deadline);
    r->deadline.data = r;
    uv_timer_start(&r->deadline, on_deadline, timeout_ms ? timeout_ms : 10000,
                   0);
    *out = r;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    co_confluence_reader *r = h->data;
    void (*done)(void *) = r->done;
    void *data = r->done_data;
    co_confluence_fsm_free(&r->fsm);
    free(r);
    if (done)
        done(data);
}

static void on_replica_closed(void *data)
{
    co_confluence_reader *r = data;
    uv_close((uv_handle_t *)&r->deadline, on_timer_closed);
}

void co_confluence_close(co_confluence_reader *r, mk_close_cb done, void *data)
{
    if (r->closing)
        return;
    r->closing = true;
    r->done = done;
    r->done_data = data;
    uv_timer_stop(&r->deadline);
    mk_replica_close(r->replica, on_replica_closed, r);
}

const co_confluence_info *co_confluence_reader_info(
    const co_confluence_reader *r)
{
    return co_confluence_fsm_info(&r->fsm);
}

uint64_t co_confluence_count(const co_confluence_reader *r)
{
    return co_confluence_fsm_count(&r->fsm);
}

int co_confluence_get(const co_confluence_reader *r, uint64_t index,
                      const co_confluence_commit **out)
{
    return co_confluence_fsm_get(&r->fsm, index, out);
}

void co_confluence_reader_status(const co_confluence_reader *r,
                                 co_confluence_status *out)
{
    co_confluence_fsm_status(&r->fsm, mk_now_ms(), out);
}

void co_confluence_reader_retirement(const co_confluence_reader *r,
                                     co_confluence_retirement *out)
{
    co_confluence_fsm_retirement(&r->fsm, out);
}
