/* Hosting modules and doing a committee member's duties (host.h). */
#include "coalition/host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/almanac.h"
#include "coalition/config_file.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "compute_internal.h"
#include "host_metrics.h"
#include "module_ops.h"
#include "modules_internal.h"

#define RECONCILE_MS 500
#define DUTY_TIMEOUT_MS 5000
#define MAX_PENDING 64

typedef struct hosted hosted;

struct hosted {
    co_host *host;
    co_module_kind kind;
    co_module_info m;
    struct mk_fsm fsm;
    mk_group *group;
    uv_timer_t timer;
    uint64_t cadence_ms; /* almanac */
    bool tick_in_flight, recorded_config, recording;
    /* Hashes (atlas cards) or seqs (chronicle entries) this member has a
     * signature in flight for, so reconciling does not resubmit them. */
    mk_id pending[MAX_PENDING];
    size_t n_pending;
    co__host_metrics metrics;
};

struct co_host {
    co_host_config cfg;
    hosted mods[CO_MODULE_COUNT];
    size_t n;
    int closing; /* handles still to close */
    void (*stop_cb)(void *);
    void *stop_data;
};

static void say(co_host *h, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(co_host *h, const char *level, const char *fmt, ...)
{
    if (!h->cfg.log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->cfg.log(level, line, h->cfg.log_data);
}

static const mk_keypair *me(const hosted *x)
{
    return mk_node_key(x->host->cfg.node);
}

/* ---- pending signatures -------------------------------------------------- */

typedef struct duty {
    hosted *x;
    mk_id key;
    bool keyed;
    uint8_t kind;
} duty;

static bool pending_has(const hosted *x, const mk_id *k)
{
    for (size_t i = 0; i < x->n_pending; i++)
        if (mk_id_eq(&x->pending[i], k))
            return true;
    return false;
}

static void pending_drop(hosted *x, const mk_id *k)
{
    for (size_t i = 0; i < x->n_pending; i++)
        if (mk_id_eq(&x->pending[i], k)) {
            x->pending[i] = x->pending[--x->n_pending];
            return;
        }
}

static void on_duty_done(int status, uint64_t applied, const uint8_t *res,
                         size_t len, void *data)
{
    duty *d = data;
    hosted *x = d->x;
    if (status == MK_ECANCELED) {
        free(d);
        return; /* the host is stopping */
    }
    if (d->keyed)
        pending_drop(x, &d->key);
    /* Command kinds are per module: look at both. */
    if (x->kind == CO_MODULE_ALMANAC && d->kind == CO__ALMANAC_TICK)
        x->tick_in_flight = false;
    if (x->kind == CO_MODULE_CHRONICLE && d->kind == CO__CHRONICLE_APPEND) {
        x->recording = false;
        x->recorded_config = status == 0;
        if (status == 0 && len > 0 && res[0] == 1)
            say(x->host, "INFO", "chronicle: recorded the coalition config");
    }
    if (status < 0 && status != MK_ECONNECT_TIMEOUT)
        say(x->host, "WARN", "%s: a duty failed: %s",
            co_module_name(x->kind), mk_strerror(status));
    free(d);
}

static void submit(hosted *x, mk_buf *cmd, uint8_t kind, const mk_id *key)
{
    duty *d = calloc(1, sizeof *d);
    if (!d || cmd->err) {
        free(d);
        return;
    }
    d->x = x;
    d->kind = kind;
    if (key) {
        d->key = *key;
        d->keyed = true;
        if (x->n_pending < MAX_PENDING)
            x->pending[x->n_pending++] = *key;
    }
    if (mk_group_execute(x->group, cmd->data, cmd->len, DUTY_TIMEOUT_MS,
                         on_duty_done, d) < 0) {
        if (key)
            pending_drop(x, key);
        if (x->kind == CO_MODULE_ALMANAC && kind == CO__ALMANAC_TICK)
            x->tick_in_flight = false;
        if (x->kind == CO_MODULE_CHRONICLE && kind == CO__CHRONICLE_APPEND)
            x->recording = false;
        free(d);
    }
}

static bool signed_by(const co_member_sig *sigs, size_t n,
                      const mk_peer_id *who)
{
    for (size_t i = 0; i < n; i++)
        if (mk_id_eq(&sigs[i].member, who))
            return true;
    return false;
}

/* ---- duties ----------------------------------------------------------- */

static void atlas_duties(hosted *x)
{
    const mk_keypair *kp = me(x);
    for (size_t i = 0; i < co__atlas_count(&x->fsm); i++) {
        const co__atlas_item *it = co__atlas_at(&x->fsm, i);
        if (signed_by(it->sigs, it->n_sigs, &kp->pub) ||
            pending_has(x, &it->card.hash) || x->n_pending >= MAX_PENDING)
            continue;
        mk_buf cmd;
        mk_buf_init(&cmd);
        co__atlas_cmd_sign(&cmd, it, kp);
        submit(x, &cmd, CO__ATLAS_SIGN, &it->card.hash);
        mk_buf_free(&cmd);
    }
}

static void chronicle_duties(hosted *x)
{
    const mk_keypair *kp = me(x);
    if (!x->recorded_config && !x->recording) {
        /* The record is the config as this daemon reads it, written back
         * canonically: every member of one config records identical bytes,
         * so `once` keeps one entry per distinct config. */
        char *json, err[CO_ERRMSG_SIZE];
        const co_coalition_config *c = x->host->cfg.coalition;
        mk_id id;
        if (co_coalition_id(c, &id, err) == 0 &&
            co_config_to_json(c, &json, err) == 0) {
            mk_buf cmd;
            mk_buf_init(&cmd);
            co__chronicle_cmd_append(&cmd, "config", &id,
                                     (const uint8_t *)json, strlen(json),
                                     true, me(x));
            x->recording = true;
            submit(x, &cmd, CO__CHRONICLE_APPEND, NULL);
            mk_buf_free(&cmd);
            free(json);
        }
    }
    /* Sign the head only. Entries are hash-chained, so a signature on
     * entry N vouches for 1..N (a reader verifies from the latest head a
     * majority signed); signing every entry cost each append three more
     * commands and nine more signature checks, which bounded appends at
     * what the CPU could verify. Under load this signs once per pass over
     * whatever landed since; when appends are sparse, each one. */
    size_t n = co__chronicle_count(&x->fsm);
    if (n == 0 || x->n_pending >= MAX_PENDING)
        return;
    const co__chronicle_entry *head = co__chronicle_at(&x->fsm, n - 1);
    if (signed_by(head->sigs, head->n_sigs, &kp->pub) ||
        pending_has(x, &head->hash))
        return;
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__chronicle_cmd_sign(&cmd, head, kp);
    submit(x, &cmd, CO__CHRONICLE_SIGN, &head->hash);
    mk_buf_free(&cmd);
}

static void almanac_tick(hosted *x)
{
    mk_group_status st;
    mk_group_status_get(x->group, &st);
    if (!st.is_leader || x->tick_in_flight ||
        co__almanac_retirement(&x->fsm)->retired)
        return;
    /* Propose exactly last+1: if a deposed leader's proposal for the same
     * number commits first, this one is refused, never a repeat. */
    const co_almanac_tick *t = co__almanac_latest(&x->fsm);
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__almanac_cmd(&cmd, CO__ALMANAC_TICK, t->seq + 1, &me(x)->pub,
                    mk_now_ms());
    x->tick_in_flight = true;
    submit(x, &cmd, CO__ALMANAC_TICK, NULL);
    mk_buf_free(&cmd);
}

static void on_tick_applied(const co_almanac_tick *t, bool stamp_only,
                            void *data)
{
    hosted *x = data;
    if (stamp_only || !x->group)
        return;
    /* Stamp only live ticks: replaying the log after a restart must not
     * stamp history with today's clock. */
    int64_t now = mk_now_ms(), age = now - t->stamps[0].unix_ms;
    if (mk_id_eq(&t->stamps[0].member, &me(x)->pub) || age < 0 ||
        age > (int64_t)(2 * x->cadence_ms))
        return;
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__almanac_cmd(&cmd, CO__ALMANAC_STAMP, t->seq, &me(x)->pub, now);
    submit(x, &cmd, CO__ALMANAC_STAMP, NULL);
    mk_buf_free(&cmd);
}

static void on_timer(uv_timer_t *t)
{
    hosted *x = t->data;
    mk_group_status st;
    mk_group_status_get(x->group, &st);
    if (!st.online)
        return;
    switch (x->kind) {
    case CO_MODULE_ATLAS:
        atlas_duties(x);
        break;
    case CO_MODULE_ALMANAC:
        almanac_tick(x);
        break;
    case CO_MODULE_CHRONICLE:
        chronicle_duties(x);
        break;
    case CO_MODULE_COMPUTE:
        /* Compute's one duty, in compute_host.c: while leading, commit
         * the clock its state machine keeps time by. */
        co__compute_host_duty(x->group, &x->fsm, me(x));
        break;
    default:
        break;
    }
}

static void on_card_published(const co__atlas_item *it, void *data)
{
    hosted *x = data;
    if (x->group)
        uv_timer_start(&x->timer, on_timer, 0, RECONCILE_MS);
}

static void on_entry_appended(const co__chronicle_entry *e, void *data)
{
    hosted *x = data;
    if (x->group)
        uv_timer_start(&x->timer, on_timer, 0, RECONCILE_MS);
}

/* ---- lifecycle ------------------------------------------------------------ */

static int host_one(co_host *h, co_module_kind kind, char *err)
{
    hosted *x = &h->mods[h->n];
    memset(x, 0, sizeof *x);
    x->host = h;
    x->kind = kind;
    int rc = co_module_info_get(h->cfg.coalition, kind, &x->m, err);
    if (rc < 0)
        return rc;
    if (!co_module_is_member(&x->m, mk_node_id(h->cfg.node)))
        return 0;
    uint64_t every = RECONCILE_MS;
    switch (kind) {
    case CO_MODULE_ATLAS:
        rc = co__atlas_fsm_init(&x->fsm, &x->m);
        if (rc == 0)
            co__atlas_on_publish(&x->fsm, on_card_published, x);
        break;
    case CO_MODULE_ALMANAC:
        rc = co_almanac_cadence_ms(h->cfg.coalition, &x->cadence_ms, err);
        if (rc == 0)
            rc = co__almanac_fsm_init(&x->fsm, &x->m);
        if (rc == 0)
            co__almanac_on_tick(&x->fsm, on_tick_applied, x);
        every = x->cadence_ms;
        break;
    case CO_MODULE_CHRONICLE:
        rc = co__chronicle_fsm_init(&x->fsm, &x->m);
        if (rc == 0)
            co__chronicle_on_append(&x->fsm, on_entry_appended, x);
        break;
    case CO_MODULE_COMPUTE: {
        /* The timer runs at the clock cadence of its content. */
        co_compute_params cp;
        rc = co__compute_params_of(&x->m, &cp, err);
        if (rc == 0)
            rc = co__compute_fsm_init(&x->fsm, &x->m);
        every = cp.clock_ms;
        break;
    }
    default:
        return 0;
    }
    if (rc < 0)
        return rc;

    char dir[4096], hex[MK_ID_HEX_LEN + 1];
    mk_group_config gc;
    co_module_group_config(&x->m, &x->fsm, &gc);
    mk_id gid;
    mk_group_id_of(&gc, &gid);
    snprintf(dir, sizeof dir, "%s/groups/%s", h->cfg.data_dir,
             mk_id_hex(&gid, hex));
    gc.node = h->cfg.node;
    gc.data_dir = dir;
    gc.params = h->cfg.params;
    gc.params.max_command_bytes = co__module_ops_of(kind)->max_command;
    gc.name = co_module_name(kind);
    char gerr[MK_ERRMSG_SIZE];
    rc = mk_group_join(&gc, &x->group, gerr);
    if (rc < 0) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "%s: cannot join the committee: %s",
                     co_module_name(kind), gerr);
        co__module_ops_of(kind)->fsm_free(&x->fsm);
        return rc;
    }
    co__host_metrics_add(&x->metrics, h->cfg.node, kind, &x->fsm);
    uv_timer_init(mk_node_loop(h->cfg.node), &x->timer);
    x->timer.data = x;
    uv_timer_start(&x->timer, on_timer, every, every);
    say(h, "INFO", "%s: member of committee %s (%zu members)",
        co_module_name(kind), hex, x->m.n_committee);
    h->n++;
    return 0;
}

static void fsm_free(hosted *x)
{
    co__module_ops_of(x->kind)->fsm_free(&x->fsm);
}

static void one_closed(co_host *h)
{
    if (--h->closing > 0)
        return;
    for (size_t i = 0; i < h->n; i++)
        fsm_free(&h->mods[i]);
    void (*cb)(void *) = h->stop_cb;
    void *data = h->stop_data;
    free(h);
    if (cb)
        cb(data);
}

static void on_timer_closed(uv_handle_t *t)
{
    one_closed(((hosted *)t->data)->host);
}

static void on_group_closed(void *data)
{
    hosted *x = data;
    x->group = NULL;
    uv_close((uv_handle_t *)&x->timer, on_timer_closed);
}

void co_host_stop(co_host *h, void (*cb)(void *data), void *data)
{
    h->stop_cb = cb;
    h->stop_data = data;
    h->closing = (int)h->n + 1;
    for (size_t i = 0; i < h->n; i++) {
        uv_timer_stop(&h->mods[i].timer);
        co__host_metrics_remove(&h->mods[i].metrics);
        mk_group_close(h->mods[i].group, on_group_closed, &h->mods[i]);
    }
    one_closed(h);
}

int co_host_start(const co_host_config *cfg, co_host **out, char *err)
{
    co_host *h = calloc(1, sizeof *h);
    if (!h)
        return MK_ENOMEM;
    h->cfg = *cfg;
    int rc = 0;
    for (int k = CO_MODULE_ATLAS; k <= CO_MODULE_COMPUTE && rc == 0; k++)
        if (co_coalition_module(cfg->coalition, (co_module_kind)k))
            rc = host_one(h, (co_module_kind)k, err);
    if (rc < 0) {
        if (h->n == 0) {
            free(h);
            return rc;
        }
        /* Leave the committees joined so far before failing. */
        co_host_stop(h, NULL, NULL);
        return rc;
    }
    *out = h;
    return 0;
}

size_t co_host_count(const co_host *h)
{
    return h->n;
}

const char *co_host_module(const co_host *h, size_t i)
{
    return i < h->n ? co_module_name(h->mods[i].kind) : NULL;
}

mk_group *co_host_group(const co_host *h, size_t i)
{
    return i < h->n ? h->mods[i].group : NULL;
}
