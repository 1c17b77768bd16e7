/* A Compute provider's side of the protocol (include/coalition/compute.h):
 * follow the committee's state, keep this node's card registered and its
 * heartbeat going, report the grants made to it, and commit what its
 * runs produce — output chunks in order, then one signed final log.
 * Running the work is the caller's business (coalitiond's provider).
 *
 * Every command goes through one group client, so they apply in the
 * order sent. Each run has at most one command in flight: an OUTPUT
 * whose answer was lost (a leader change) is sent again with the same
 * sequence number, which the machine answers "already committed" if the
 * first one landed, so output is never doubled or reordered; the final
 * LOG goes only after every queued chunk.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute_internal.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"
#include "logline.h"
#include "reader.h"

#define CMD_TIMEOUT_MS 5000

typedef struct piece {
    struct piece *next;
    uint8_t stream;
    size_t len;
    uint8_t data[CO_COMPUTE_CHUNK_MAX];
} piece;

typedef struct run run;

struct run {
    run *next;
    mk_id id;
    uint32_t attempt;
    piece *head, *tail;
    uint64_t seq;      /* the next OUTPUT's */
    uint64_t accepted; /* bytes taken for sending */
    bool truncated;    /* some output did not fit the budget */
    bool dead;         /* output refused: send no more */
    bool sending, revoked;
    bool finishing, logging;
    /* Its log was answered; kept until the replica shows it too, so a
     * replica a little behind does not report the grant again. */
    bool closed;
    co_compute_log log;
    void (*done)(int, void *);
    void *done_data;
};

struct co_compute_provider {
    co__reader base; /* first: co__reader_close frees the whole struct */
    co_compute_provider_config cfg;
    co_provider_card card; /* the card this node wants held */
    co_compute_params params;
    mk_id group;
    mk_group_client *client;
    uv_timer_t timer;
    bool ready, registering, beating, stopping, timer_closing;
    int64_t nonce;
    uint64_t seen_epoch;
    run *runs;
    void (*stop_cb)(void *);
    void *stop_data;
};

typedef struct op {
    co_compute_provider *p;
    uint8_t kind;
    run *r;
} op;

static void say(co_compute_provider *p, const char *level, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));

static void say(co_compute_provider *p, const char *level, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    co__vlog(p->cfg.log, p->cfg.data, level, NULL, fmt, ap);
    va_end(ap);
}

static const mk_keypair *key(const co_compute_provider *p)
{
    return mk_node_key(p->cfg.node);
}

static int64_t next_nonce(co_compute_provider *p)
{
    int64_t now = mk_now_ms();
    p->nonce = now > p->nonce ? now : p->nonce + 1;
    return p->nonce;
}

static run *find_run(const co_compute_provider *p, const mk_id *id,
                     uint32_t attempt)
{
    for (run *r = p->runs; r; r = r->next)
        if (r->attempt == attempt && mk_id_eq(&r->id, id))
            return r;
    return NULL;
}

static void free_run(co_compute_provider *p, run *r)
{
    for (run **pp = &p->runs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    while (r->head) {
        piece *x = r->head;
        r->head = x->next;
        free(x);
    }
    free(r);
}

static void on_op(int status, uint64_t applied, const uint8_t *res,
                  size_t len, void *data);
static void stop_rest(co_compute_provider *p);

static int send_cmd(co_compute_provider *p, mk_buf *cmd, uint8_t kind,
                    run *r, uint32_t timeout_ms)
{
    if (cmd->err)
        return cmd->err;
    op *o = malloc(sizeof *o);
    if (!o)
        return MK_ENOMEM;
    *o = (op){p, kind, r};
    int rc = mk_group_client_execute(p->client, cmd->data, cmd->len,
                                     timeout_ms, on_op, o);
    if (rc < 0)
        free(o);
    return rc;
}

/* Sends what a run has next: its oldest chunk, or, once they are all
 * committed, its log. One command in flight per run. */
static void pump(co_compute_provider *p, run *r)
{
    if (p->stopping || r->sending || r->logging)
        return;
    mk_buf cmd;
    mk_buf_init(&cmd);
    if (r->head && !r->dead) {
        co__compute_cmd_output(&cmd, &p->base.m.root, &r->id, r->attempt,
                               r->seq, r->head->stream, r->head->data,
                               r->head->len, key(p));
        r->sending = send_cmd(p, &cmd, CO__COMPUTE_OUTPUT, r,
                              CMD_TIMEOUT_MS) == 0;
    } else if (r->finishing) {
        co__compute_cmd_log(&cmd, &p->base.m.root, &r->log, key(p));
        r->logging = send_cmd(p, &cmd, CO__COMPUTE_LOG, r, CMD_TIMEOUT_MS) ==
                     0;
    }
    mk_buf_free(&cmd);
}

static void end_run(co_compute_provider *p, run *r, int status)
{
    void (*done)(int, void *) = r->done;
    void *data = r->done_data;
    /* Called once: a closed run is ended again by a stop that comes
     * before the replica shows its log, and its caller is gone by then. */
    r->done = NULL;
    if (p->stopping)
        free_run(p, r);
    else
        r->closed = true; /* scan() frees it */
    if (done)
        done(status, data);
}

static void on_op(int status, uint64_t applied, const uint8_t *res,
                  size_t len, void *data)
{
    op *o = data;
    co_compute_provider *p = o->p;
    run *r = o->r;
    uint8_t kind = o->kind;
    free(o);
    if (status == MK_ECANCELED)
        return; /* stopping: runs are dropped by the stop */
    co_compute_answer a;
    status = co__compute_answer_of(status, kind, res, len, &a);
    switch (kind) {
    case CO__COMPUTE_REGISTER:
        p->registering = false;
        if (status == 0 && a.outcome == 0)
            say(p, "WARN", "compute: the committee refused this card: %s",
                a.reason);
        else if (status == 0 && a.outcome == 1)
            say(p, "INFO", "compute: card registered");
        break;
    case CO__COMPUTE_HEARTBEAT:
        p->beating = false;
        break;
    case CO__COMPUTE_DEPART:
        break;
    case CO__COMPUTE_OUTPUT:
        r->sending = false;
        if (status == 0 && a.outcome != 0) {
            piece *x = r->head;
            r->head = x->next;
            if (!r->head)
                r->tail = NULL;
            free(x);
            r->seq++;
        } else if (status == 0) {
            /* The grant is over or the budget spent: drop the rest. */
            say(p, "WARN", "compute: output refused: %s", a.reason);
            r->dead = true;
            r->truncated = true;
        }
        pump(p, r);
        break;
    case CO__COMPUTE_LOG:
        r->logging = false;
        if (status == 0) {
            if (a.outcome == 0)
                say(p, "WARN", "compute: log refused: %s", a.reason);
            end_run(p, r, a.outcome == 0 ? CO_ECONFIG : 0);
            return;
        }
        pump(p, r); /* lost in a leader change: again */
        break;
    default:
        break;
    }
    if (kind == CO__COMPUTE_DEPART && p->stopping)
        stop_rest(p);
}

/* ---- the card and the heartbeat ------------------------------------------- */

static bool same_card(const co_provider_card *a, const co_provider_card *b)
{
    if (memcmp(&a->capacity, &b->capacity, sizeof a->capacity) != 0 ||
        a->tdx_capable != b->tdx_capable || a->n_regions != b->n_regions)
        return false;
    for (size_t i = 0; i < a->n_regions; i++)
        if (strcmp(a->regions[i], b->regions[i]) != 0)
            return false;
    return true;
}

static void check_card(co_compute_provider *p)
{
    if (!p->ready || p->registering || p->stopping)
        return;
    co_compute_provider_info info;
    if (co__compute_provider_find(&p->base.fsm, &p->card.provider, &info) &&
        same_card(&info.card, &p->card))
        return;
    p->card.nonce = next_nonce(p);
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_register(&cmd, &p->base.m.root, &p->card, key(p));
    p->registering = send_cmd(p, &cmd, CO__COMPUTE_REGISTER, NULL,
                              CMD_TIMEOUT_MS) == 0;
    mk_buf_free(&cmd);
}

static void on_timer(uv_timer_t *t)
{
    co_compute_provider *p = t->data;
    check_card(p);
    if (p->beating || !p->ready || p->stopping)
        return;
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_heartbeat(&cmd, &p->base.m.root, CO__COMPUTE_HEARTBEAT,
                              next_nonce(p), key(p));
    uint32_t timeout = (uint32_t)p->params.heartbeat_ms * 2;
    p->beating = send_cmd(p, &cmd, CO__COMPUTE_HEARTBEAT, NULL,
                          timeout < 1000 ? 1000 : timeout) == 0;
    mk_buf_free(&cmd);
}

/* ---- watching grants --------------------------------------------------------- */

static void scan(co_compute_provider *p)
{
    const struct mk_fsm *f = &p->base.fsm;
    uint64_t epoch = co__compute_epoch(f);
    if (epoch == p->seen_epoch)
        return;
    p->seen_epoch = epoch;
    const mk_peer_id *me = &p->card.provider;
    co_compute_status s;
    size_t n = co__compute_request_count(f);
    for (size_t i = 0; i < n && !p->stopping; i++) {
        co__compute_request_at(f, i, &s);
        if (s.state != CO_COMPUTE_GRANTED || !s.granted || s.logged ||
            !mk_id_eq(&s.grant.provider, me) ||
            find_run(p, &s.request.request_id, s.grant.attempt))
            continue;
        run *r = calloc(1, sizeof *r);
        if (!r) {
            say(p, "ERROR", "compute: out of memory for a grant");
            return;
        }
        r->id = s.request.request_id;
        r->attempt = s.grant.attempt;
        r->next = p->runs;
        p->runs = r;
        if (p->cfg.on_grant)
            p->cfg.on_grant(p, &s.grant, p->cfg.data);
    }
    for (run *r = p->runs, *next; r && !p->stopping; r = next) {
        next = r->next;
        bool held = co__compute_request_find(f, &r->id, &s) && s.granted &&
                    mk_id_eq(&s.grant.provider, me) &&
                    s.grant.attempt == r->attempt;
        if (r->closed) {
            if (!held || s.logged || s.state != CO_COMPUTE_GRANTED)
                free_run(p, r);
            continue;
        }
        if (r->revoked)
            continue;
        int why = -1;
        if (!held)
            why = CO_COMPUTE_REVOKED;
        else if (s.state == CO_COMPUTE_EXPIRED && !s.logged)
            why = CO_COMPUTE_DEADLINE;
        if (why < 0)
            continue;
        r->revoked = true;
        if (p->cfg.on_revoke)
            p->cfg.on_revoke(p, &r->id, r->attempt, why, p->cfg.data);
    }
}

static void on_reader(co__reader *base, int status)
{
    co_compute_provider *p = base->owner;
    if (p->stopping)
        return;
    if (status == MK_ECONNECT_TIMEOUT) {
        say(p, "WARN", "compute: no committee member answered yet "
                       "(ConnectTimeout); still trying");
        return;
    }
    if (status == CO_ERETIRED) {
        say(p, "WARN", "compute: the module retired");
        return;
    }
    if (!p->ready) {
        p->ready = true;
        say(p, "INFO", "compute: following the committee");
        uv_timer_start(&p->timer, on_timer, 0, p->params.heartbeat_ms);
    }
    check_card(p);
    scan(p);
}

/* ---- the API ------------------------------------------------------------------- */

int co_compute_provider_open(const co_compute_provider_config *cfg,
                             co_compute_provider **out, char *err)
{
    co_module_info m;
    mk_id group;
    int rc = co__compute_group(cfg->coalition, &m, &group, err);
    if (rc < 0)
        return rc;
    if (!cfg->capacity.cpu_millis || !cfg->capacity.ram_mib ||
        cfg->n_regions > CO_COMPUTE_MAX_REGIONS) {
        snprintf(err, CO_ERRMSG_SIZE,
                 "a provider offers some cpu and ram, in at most %d regions",
                 CO_COMPUTE_MAX_REGIONS);
        return CO_ECONFIG;
    }
    co_compute_provider *p = calloc(1, sizeof *p);
    if (!p)
        return MK_ENOMEM;
    p->cfg = *cfg;
    p->cfg.regions = NULL;
    p->group = group;
    co__compute_params_of(&m, &p->params, NULL);
    p->card.provider = mk_node_key(cfg->node)->pub;
    p->card.capacity = cfg->capacity;
    p->card.tdx_capable = cfg->tdx_capable;
    for (size_t i = 0; i < cfg->n_regions; i++) {
        size_t len = strlen(cfg->regions[i]);
        if (len == 0 || len > CO_COMPUTE_MAX_REGION_LEN) {
            snprintf(err, CO_ERRMSG_SIZE,
                     "region \"%s\": 1 to %d bytes", cfg->regions[i],
                     CO_COMPUTE_MAX_REGION_LEN);
            free(p);
            return CO_ECONFIG;
        }
        memcpy(p->card.regions[i], cfg->regions[i], len + 1);
    }
    p->card.n_regions = cfg->n_regions;
    if ((rc = mk_group_client_open(cfg->node, &group, &p->client)) < 0) {
        free(p);
        return rc;
    }
    rc = co__reader_open(&p->base, cfg->node, cfg->coalition,
                         CO_MODULE_COMPUTE, co__compute_fsm_init,
                         co__compute_fsm_free, co__compute_retirement, 0,
                         on_reader, p, err);
    if (rc < 0) {
        mk_group_client_close(p->client, NULL, NULL);
        free(p);
        return rc;
    }
    uv_timer_init(mk_node_loop(cfg->node), &p->timer);
    p->timer.data = p;
    *out = p;
    return 0;
}

long co_compute_provider_output(co_compute_provider *p,
                                const mk_id *request_id, uint32_t attempt,
                                int stream, const void *bytes, size_t len)
{
    run *r = find_run(p, request_id, attempt);
    if (!r || r->finishing || r->closed)
        return MK_ENOENT;
    uint64_t room = p->params.output_max > r->accepted
                        ? p->params.output_max - r->accepted
                        : 0;
    size_t take = r->dead ? 0 : len < room ? len : (size_t)room;
    if (take < len)
        r->truncated = true;
    const uint8_t *in = bytes;
    size_t left = take;
    while (left > 0) {
        piece *t = r->tail;
        if (!t || t->stream != stream || t->len == CO_COMPUTE_CHUNK_MAX ||
            (t == r->head && r->sending)) {
            /* The chunk in flight is frozen: its bytes are signed. */
            if (!(t = malloc(sizeof *t)))
                break;
            t->next = NULL;
            t->stream = (uint8_t)stream;
            t->len = 0;
            if (r->tail)
                r->tail->next = t;
            else
                r->head = t;
            r->tail = t;
        }
        size_t n = CO_COMPUTE_CHUNK_MAX - t->len;
        if (n > left)
            n = left;
        memcpy(t->data + t->len, in, n);
        t->len += n;
        in += n;
        left -= n;
    }
    r->accepted += take - left;
    pump(p, r);
    return (long)(take - left);
}

int co_compute_provider_finish(co_compute_provider *p,
                               const co_compute_log *log,
                               void (*done)(int status, void *data),
                               void *data)
{
    run *r = find_run(p, &log->request_id, log->attempt);
    if (!r) {
        /* Not reported in this process (say, found in the caller's
         * records after a restart): track it just for the log. */
        if (!(r = calloc(1, sizeof *r)))
            return MK_ENOMEM;
        r->id = log->request_id;
        r->attempt = log->attempt;
        r->revoked = true;
        r->next = p->runs;
        p->runs = r;
    }
    if (r->finishing || r->closed)
        return MK_EBUSY;
    r->log = *log;
    r->log.provider = p->card.provider;
    if (r->truncated)
        r->log.usage.output_truncated = true;
    r->finishing = true;
    r->done = done;
    r->done_data = data;
    pump(p, r);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    co_compute_provider *p = h->data;
    co__reader_close(&p->base, p->stop_cb, p->stop_data);
}

static void stop_rest(co_compute_provider *p)
{
    if (p->timer_closing)
        return;
    p->timer_closing = true;
    mk_group_client *c = p->client;
    p->client = NULL;
    mk_group_client_close(c, NULL, NULL); /* in-flight ops: ECANCELED */
    while (p->runs) {
        run *r = p->runs;
        end_run(p, r, r->finishing ? MK_ECANCELED : 0);
    }
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

void co_compute_provider_close(co_compute_provider *p, bool depart,
                               uint32_t timeout_ms, mk_close_cb cb, void *data)
{
    if (p->stopping)
        return;
    p->stopping = true;
    p->stop_cb = cb;
    p->stop_data = data;
    uv_timer_stop(&p->timer);
    if (depart) {
        mk_buf cmd;
        mk_buf_init(&cmd);
        co__compute_cmd_heartbeat(&cmd, &p->base.m.root, CO__COMPUTE_DEPART,
                                  next_nonce(p), key(p));
        int rc = send_cmd(p, &cmd, CO__COMPUTE_DEPART, NULL,
                          timeout_ms ? timeout_ms : 2000);
        mk_buf_free(&cmd);
        if (rc == 0)
            return; /* on_op continues with stop_rest */
    }
    stop_rest(p);
}
