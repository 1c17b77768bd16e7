/* A confluence committee member, and the daemon-side host that runs one
 * per confluence this node is on (coalition/confluence.h, "hosting").
 *
 * A member joins the committee group with the SDK's state machine,
 * subscribes to every producer of each spanned citizen's surface and
 * follows the clock (an Almanac reader). Everything it observes goes into
 * one ring, in observation order. While it leads, it proposes from that
 * ring, in order, every observation newer than what the log already
 * folded (and than what it has in flight): the leader's observation order
 * becomes the log order. Followers only keep their ring, so that a new
 * leader picks up where the old one stopped; their observations are
 * otherwise redundant, and the state machine refuses whatever was already
 * folded, so proposing twice is harmless.
 *
 * A failed proposal (lost leadership, timeout) forgets every in-flight
 * mark: the next pass compares the ring with the log again.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "coalition/almanac.h"
#include "coalition/confluence.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "logline.h"

#define OBS_RING 256          /* observations kept (about 20 s of a demo) */
#define RECONCILE_MS 100
#define MAX_IN_FLIGHT 64
#define PROPOSE_TIMEOUT_MS 3000
#define RETIRE_TIMEOUT_MS 5000
#define CLOCK_SRC 0xff

/* Internal accessors of confluence_fsm.c. */
bool co__confluence_fsm_last(const struct mk_fsm *fsm, size_t src,
                             co_clock_event *out);
uint64_t co__confluence_fsm_tick(const struct mk_fsm *fsm);
bool co__confluence_fsm_retired(const struct mk_fsm *fsm);

typedef struct obs {
    uint8_t src; /* a spanned citizen, or CLOCK_SRC */
    co_clock_event ev;
    uint8_t *bytes; /* owned; NULL for ticks */
    size_t len;
    int64_t ms;     /* observed at (facts) or the tick's stamp */
} obs;

typedef struct upstream {
    co_confluence_member *m;
    size_t src;
    mk_consumer *c;
} upstream;

struct co_confluence_member {
    co_confluence_member_config cfg;
    co_confluence_def def;
    struct mk_fsm fsm;
    const co_confluence_info *info;
    mk_group *group;
    upstream up[CO_CONFLUENCE_MAX_SOURCES];
    co_almanac_reader *clock;
    uv_timer_t timer;
    obs ring[OBS_RING];
    size_t head, n; /* oldest at head */
    bool proposed_has[CO_CONFLUENCE_MAX_SOURCES];
    co_clock_event proposed[CO_CONFLUENCE_MAX_SOURCES];
    uint64_t proposed_tick;
    size_t in_flight;
    bool leading, stopping, clock_warned;
    int closing;
    void (*stop_cb)(void *);
    void *stop_data;
};

static void say(co_confluence_member *m, const char *level, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));

static void say(co_confluence_member *m, const char *level, const char *fmt,
                ...)
{
    if (!m->cfg.log)
        return;
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s: ", m->def.config->name);
    va_list ap;
    va_start(ap, fmt);
    co__vlog(m->cfg.log, m->cfg.log_data, level, prefix, fmt, ap);
    va_end(ap);
}

/* ---- observations ------------------------------------------------------ */

static void observe(co_confluence_member *m, uint8_t src, co_clock_event ev,
                    const uint8_t *bytes, size_t len, int64_t ms)
{
    uint8_t *copy = NULL;
    if (bytes) {
        if (!(copy = malloc(len ? len : 1)))
            return; /* another member, or a later datum, will do */
        memcpy(copy, bytes, len);
    }
    obs *o;
    if (m->n == OBS_RING) {
        o = &m->ring[m->head];
        free(o->bytes);
        m->head = (m->head + 1) % OBS_RING;
    } else {
        o = &m->ring[(m->head + m->n++) % OBS_RING];
    }
    *o = (obs){src, ev, copy, len, ms};
}

static void forget_marks(co_confluence_member *m)
{
    memset(m->proposed_has, 0, sizeof m->proposed_has);
    m->proposed_tick = 0;
}

typedef struct proposal {
    co_confluence_member *m;
} proposal;

static void on_proposed(int status, uint64_t applied, const uint8_t *res,
                        size_t len, void *data)
{
    proposal *p = data;
    co_confluence_member *m = p->m;
    free(p);
    m->in_flight--;
    if (status < 0 && status != MK_ECANCELED)
        forget_marks(m); /* compare the ring with the log afresh */
}

static bool submit(co_confluence_member *m, mk_buf *cmd)
{
    proposal *p = malloc(sizeof *p);
    if (!p || cmd->err) {
        free(p);
        return false;
    }
    p->m = m;
    if (mk_group_execute(m->group, cmd->data, cmd->len, PROPOSE_TIMEOUT_MS,
                         on_proposed, p) < 0) {
        free(p);
        return false;
    }
    m->in_flight++;
    return true;
}

/* While leading: propose, in observation order, what the log lacks. */
static void pump(co_confluence_member *m)
{
    if (m->stopping || !m->group)
        return;
    mk_group_status st;
    mk_group_status_get(m->group, &st);
    if (!st.is_leader || !st.online) {
        m->leading = false;
        return;
    }
    if (!m->leading) {
        m->leading = true;
        forget_marks(m);
        say(m, "INFO", "leading the committee: proposing observations");
    }
    if (co__confluence_fsm_retired(&m->fsm))
        return;
    const mk_keypair *kp = mk_node_key(m->cfg.node);
    mk_buf cmd;
    mk_buf_init(&cmd);
    for (size_t k = 0; k < m->n && m->in_flight < MAX_IN_FLIGHT; k++) {
        obs *o = &m->ring[(m->head + k) % OBS_RING];
        mk_buf_reset(&cmd);
        if (o->src == CLOCK_SRC) {
            uint64_t bar = co__confluence_fsm_tick(&m->fsm);
            if (m->proposed_tick > bar)
                bar = m->proposed_tick;
            if (o->ev.seq <= bar)
                continue;
            co_confluence_cmd_tick(&cmd, m->info, o->ev.seq, o->ms, kp);
            if (!submit(m, &cmd))
                break;
            m->proposed_tick = o->ev.seq;
            continue;
        }
        co_clock_event last;
        if (co__confluence_fsm_last(&m->fsm, o->src, &last) &&
            co_clock_event_cmp(&o->ev, &last) <= 0)
            continue;
        if (m->proposed_has[o->src] &&
            co_clock_event_cmp(&o->ev, &m->proposed[o->src]) <= 0)
            continue;
        co_confluence_cmd_fact(&cmd, m->info, o->src, o->bytes, o->len,
                               o->ms, kp);
        if (!submit(m, &cmd))
            break;
        m->proposed_has[o->src] = true;
        m->proposed[o->src] = o->ev;
    }
    mk_buf_free(&cmd);
}

static int on_datum(mk_consumer *c, const mk_datum *d, void *data)
{
    upstream *u = data;
    co_confluence_member *m = u->m;
    co_clock_event ev;
    /* What the surface's decoder refuses would be refused by the log
     * too; drop it here. */
    if (m->stopping || d->len > CO_CONFLUENCE_MAX_FACT ||
        m->def.surfaces[u->src].event(d->bytes, d->len, &ev) != 0)
        return 0;
    observe(m, (uint8_t)u->src, ev, d->bytes, d->len, mk_now_ms());
    pump(m);
    return 0;
}

static void on_tick(co_almanac_reader *r, int status, const co_almanac_tick *t,
                    uint64_t missed, void *data)
{
    co_confluence_member *m = data;
    if (status < 0) {
        if (!m->clock_warned)
            say(m, "WARN", "clock (the Almanac of %s): %s", m->def.clock,
                co_strerror(status));
        m->clock_warned = true;
        return;
    }
    if (m->stopping || !t || t->seq == 0 || t->n_stamps == 0)
        return;
    co_clock_event ev = {0, t->seq};
    /* A stamp added to a tick already seen comes back with the same seq;
     * the first stamp (the proposer's) is the one every member sees. */
    if (m->n > 0) {
        const obs *last = &m->ring[(m->head + m->n - 1) % OBS_RING];
        if (last->src == CLOCK_SRC && last->ev.seq >= t->seq)
            return;
    }
    observe(m, CLOCK_SRC, ev, NULL, 0, t->stamps[0].unix_ms);
    pump(m);
}

static void on_group_change(mk_group *g, void *data)
{
    pump(data);
}

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

/* ---- lifecycle --------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    co_confluence_member *m = h->data;
    void (*cb)(void *) = m->stop_cb;
    void *data = m->stop_data;
    for (size_t k = 0; k < m->n; k++)
        free(m->ring[(m->head + k) % OBS_RING].bytes);
    co_confluence_fsm_free(&m->fsm);
    free(m);
    if (cb)
        cb(data);
}

static void one_closed(void *data)
{
    co_confluence_member *m = data;
    if (--m->closing == 0)
        uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}

static void on_group_closed(void *data)
{
    co_confluence_member *m = data;
    m->group = NULL;
    one_closed(m);
}

/* Releases everything that is open, in reverse order of acquisition. */
static void teardown(co_confluence_member *m)
{
    m->stopping = true;
    uv_timer_stop(&m->timer);
    m->closing = 1; /* held until every close below is issued */
    for (size_t i = 0; i < m->info->n_sources; i++)
        if (m->up[i].c) {
            m->closing++;
            mk_consumer_close(m->up[i].c, one_closed, m);
            m->up[i].c = NULL;
        }
    if (m->clock) {
        m->closing++;
        co_almanac_close(m->clock, one_closed, m);
        m->clock = NULL;
    }
    if (m->group) {
        m->closing++;
        mk_group_close(m->group, on_group_closed, m);
    }
    one_closed(m);
}

static void on_retired(int status, uint64_t applied, const uint8_t *res,
                       size_t len, void *data)
{
    co_confluence_member *m = data;
    if (status == 0 && len > 0 && res[0] == 1)
        say(m, "INFO", "retired: the marker is committed");
    else
        say(m, "WARN", "retirement not committed: %s",
            status < 0 ? co_strerror(status) : "refused (already retired?)");
    teardown(m);
}

void co_confluence_member_close(co_confluence_member *m,
                                const co_confluence_retire_req *retire,
                                mk_close_cb cb, void *data)
{
    m->stop_cb = cb;
    m->stop_data = data;
    m->stopping = true;
    if (retire && m->group) {
        /* SPEC §5: the component commits its retirement marker on its
         * own surface before going away. */
        mk_buf cmd;
        mk_buf_init(&cmd);
        co_confluence_cmd_retire(&cmd, m->info, retire->reason,
                                 retire->successor, mk_node_key(m->cfg.node));
        int rc = cmd.err ? cmd.err
                         : mk_group_execute(m->group, cmd.data, cmd.len,
                                            RETIRE_TIMEOUT_MS, on_retired, m);
        mk_buf_free(&cmd);
        if (rc == 0)
            return;
        say(m, "WARN", "cannot submit the retirement: %s", co_strerror(rc));
    }
    teardown(m);
}

int co_confluence_member_open(const co_confluence_member_config *cfg,
                              co_confluence_member **out, char *err)
{
    char gerr[MK_ERRMSG_SIZE], hex[MK_ID_HEX_LEN + 1], dir[4096];
    const co_confluence_def *def = cfg->def;
    const char *name = def->config && def->config->name ? def->config->name
                                                        : "?";
    if (def->clock[0] &&
        (!cfg->clock || !cfg->clock->name ||
         strcmp(cfg->clock->name, def->clock) != 0 ||
         !co_coalition_almanac(cfg->clock))) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: its clock is the Almanac of \"%s\"; "
                     "this host follows %s",
                     name, def->clock,
                     cfg->clock && cfg->clock->name ? cfg->clock->name
                                                    : "no coalition");
        return MK_EINVAL;
    }
    if (!cfg->streams) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: a member needs the node's streams", name);
        return MK_EINVAL;
    }
    co_confluence_member *m = calloc(1, sizeof *m);
    if (!m)
        return MK_ENOMEM;
    m->cfg = *cfg;
    m->def = *def;
    m->cfg.def = &m->def;
    int rc = co_confluence_fsm_init(&m->fsm, &m->def, err);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->info = co_confluence_fsm_info(&m->fsm);
    bool member = false;
    for (size_t i = 0; i < m->info->n_committee; i++)
        member |= mk_id_eq(&m->info->committee[i], mk_node_id(cfg->node));
    if (!member) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: this node is not on its committee "
                     "(acl.issuers)",
                     name);
        co_confluence_fsm_free(&m->fsm);
        free(m);
        return MK_EINVAL;
    }

    /* The group first: it is the one step that fails for reasons an
     * operator must see (a data dir it cannot use), and undoing it is
     * asynchronous anyway. */
    mk_group_config gc = {
        .node = cfg->node,
        .root = m->info->committee_root,
        .fsm = &m->fsm,
        .voters = m->info->committee,
        .n_voters = m->info->n_committee,
        .data_dir = dir,
        /* Nothing a member proposes is longer (confluence.h): larger
         * commands are refused before they are logged. */
        .params = {.max_command_bytes = CO_CONFLUENCE_MAX_COMMAND},
        .name = m->def.config ? m->def.config->name : NULL,
    };
    snprintf(dir, sizeof dir, "%s/groups/%s", cfg->data_dir,
             mk_id_hex(&m->info->group, hex));
    if ((rc = mk_group_open(&gc, &m->group, gerr)) < 0) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: cannot join the committee: %s", name,
                     gerr);
        co_confluence_fsm_free(&m->fsm);
        free(m);
        return rc;
    }
    uv_timer_init(mk_node_loop(cfg->node), &m->timer);
    m->timer.data = m;
    for (size_t i = 0; i < m->info->n_sources && rc == 0; i++) {
        m->up[i] = (upstream){m, i, NULL};
        mk_consumer_config cc = {
            .stream = m->info->src[i].stream,
            .on_datum = on_datum,
            .data = &m->up[i],
        };
        char serr[MK_ERRMSG_SIZE];
        if ((rc = mk_consumer_open(cfg->streams, &cc, &m->up[i].c, serr)) < 0 &&
            err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: cannot subscribe to citizen %zu: %s",
                     name, i, serr);
    }
    if (rc == 0 && def->clock[0])
        rc = co_almanac_ticks(cfg->node, cfg->clock, 0, on_tick, m,
                              &m->clock, err);
    if (rc == 0)
        rc = mk_group_watch(m->group, on_group_change, m);
    if (rc < 0) {
        teardown(m); /* frees m once everything has closed */
        return rc;
    }
    uv_timer_start(&m->timer, on_timer, RECONCILE_MS, RECONCILE_MS);
    say(m, "INFO", "member of committee %s (%zu members), %s after %u ticks",
        hex, m->info->n_committee, co_stall_mode_name(def->stall),
        def->bound_ticks);
    *out = m;
    return 0;
}

mk_group *co_confluence_member_group(const co_confluence_member *m)
{
    return m->group;
}

const struct mk_fsm *co_confluence_member_fsm(const co_confluence_member *m)
{
    return &m->fsm;
}

/* ---- the host ---------------------------------------------------------- */

struct co_confluence_host {
    co_confluence_host_config cfg;
    co_confluence_member **members;
    size_t n;
    int closing;
    void (*cb)(void *);
    void *data;
};

static void host_say(const co_confluence_host *h, const char *level,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void host_say(const co_confluence_host *h, const char *level,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    co__vlog(h->cfg.log, h->cfg.log_data, level, NULL, fmt, ap);
    va_end(ap);
}

static void host_one_stopped(void *data)
{
    co_confluence_host *h = data;
    if (--h->closing > 0)
        return;
    void (*cb)(void *) = h->cb;
    void *cbdata = h->data;
    free(h->members);
    free(h);
    if (cb)
        cb(cbdata);
}

void co_confluence_host_close(co_confluence_host *h, mk_close_cb cb,
                              void *data)
{
    h->cb = cb;
    h->data = data;
    h->closing = (int)h->n + 1;
    for (size_t i = 0; i < h->n; i++)
        co_confluence_member_close(h->members[i], NULL, host_one_stopped, h);
    host_one_stopped(h);
}

int co_confluence_host_open(const co_confluence_host_config *cfg,
                            co_confluence_host **out, char *err)
{
    const co_coalition_config *c = cfg->coalition;
    co_confluence_host *h = calloc(1, sizeof *h);
    if (h)
        h->members = calloc(c->n_confluences + 1, sizeof *h->members);
    if (!h || !h->members) {
        free(h);
        return MK_ENOMEM;
    }
    h->cfg = *cfg;
    char why[CO_ERRMSG_SIZE];
    int rc = 0;
    for (size_t i = 0; i < c->n_confluences && rc == 0; i++) {
        const co_confluence_config *cf = c->confluences[i];
        if (co_module_kind_of(cf->name) >= 0)
            continue; /* modules are co_host's */
        co_confluence_def def;
        co_confluence_info info;
        int d = co_confluence_define(cf, cfg->impls, cfg->n_impls, &def, why);
        if (d == 0)
            d = co_confluence_info_get(&def, &info, why);
        if (d < 0) {
            host_say(h, d == MK_ENOENT ? "INFO" : "WARN",
                     "%s; not hosting it", why);
            continue;
        }
        bool member = false;
        for (size_t k = 0; k < info.n_committee; k++)
            member |= mk_id_eq(&info.committee[k], mk_node_id(cfg->node));
        if (!member)
            continue;
        if (def.clock[0] && (strcmp(def.clock, c->name) != 0 ||
                             !co_coalition_almanac(c))) {
            /* Hosting it here would follow another clock than the one
             * its content names. Its committee runs where that coalition
             * is hosted. */
            host_say(h, "WARN",
                     "confluence %s: its clock is the Almanac of \"%s\", "
                     "not of this coalition; not hosting it",
                     cf->name, def.clock);
            continue;
        }
        co_confluence_member_config mc = {
            .node = cfg->node,
            .streams = cfg->streams,
            .def = &def,
            .clock = c,
            .data_dir = cfg->data_dir,
            .log = cfg->log,
            .log_data = cfg->log_data,
        };
        rc = co_confluence_member_open(&mc, &h->members[h->n], err);
        if (rc == 0)
            h->n++;
    }
    if (rc < 0) {
        co_confluence_host_close(h, NULL, NULL);
        return rc;
    }
    *out = h;
    return 0;
}

size_t co_confluence_host_count(const co_confluence_host *h)
{
    return h->n;
}

co_confluence_member *co_confluence_host_member(const co_confluence_host *h,
                                                size_t i)
{
    return i < h->n ? h->members[i] : NULL;
}
