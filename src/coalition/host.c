/* Hosting modules and doing a committee member's duties (host.h). */
#include "coalition/host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/almanac.h"
#include "coalition/chronicle_record.h"
#include "coalition/config_file.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/jwt.h"
#include "compute_internal.h"
#include "host_metrics.h"
#include "logline.h"
#include "module_ops.h"
#include "modules_internal.h"

#define RECONCILE_MS 500
#define DUTY_TIMEOUT_MS 5000
#define MAX_PENDING 64
/* A member signs a new Chronicle head at most once per SIGN_GAP_MS, and
 * never while its previous SIGN is in flight (chronicle_duties). */
#define SIGN_GAP_MS 25
#define MAX_RECORDS 4096

typedef struct hosted hosted;

/* A Chronicle entry this member is to append, oldest first: appends go
 * one at a time and in order, so a member never records a publication
 * before the one it replaced. */
typedef struct record {
    struct record *next;
    char kind[CO_CHRONICLE_MAX_KIND + 1];
    mk_id subject;
    uint8_t once;
    size_t len;
    uint8_t body[];
} record;

struct hosted {
    co_host *host;
    co_module_kind kind;
    /* Listed in acl.issuers: does the duties. A ticket holder of a
     * ticket-gated module only replicates (the machines count listed
     * members' signatures alone). */
    bool listed;
    co_module_info m;
    struct mk_fsm fsm;
    mk_group *group;
    uv_timer_t timer;
    uint64_t cadence_ms; /* almanac */
    bool tick_in_flight, queued_config, recording;
    record *records, **records_tail; /* chronicle */
    size_t n_records;
    /* Hashes (atlas cards) or seqs (chronicle entries) this member has a
     * signature in flight for, so reconciling does not resubmit them. */
    mk_id pending[MAX_PENDING];
    size_t n_pending;
    /* chronicle: this member's SIGN is in flight; it signs no new head
     * before sign_after (mono ms) */
    bool sign_in_flight;
    int64_t sign_after;
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
    va_list ap;
    va_start(ap, fmt);
    co__vlog(h->cfg.log, h->cfg.log_data, level, NULL, fmt, ap);
    va_end(ap);
}

static const mk_keypair *me(const hosted *x)
{
    return mk_node_key(x->host->cfg.node);
}

/* ---- records ---------------------------------------------------------- */

static hosted *chronicle_of(co_host *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->mods[i].kind == CO_MODULE_CHRONICLE && h->mods[i].group)
            return &h->mods[i];
    return NULL;
}

static void record_push(hosted *c, const char *kind, const mk_id *subject,
                        const void *body, size_t len, uint8_t once)
{
    record *r = c->n_records < MAX_RECORDS ? malloc(sizeof *r + len) : NULL;
    if (!r) {
        say(c->host, "WARN", "chronicle: %s not recorded: %zu records "
                             "already wait", kind, c->n_records);
        return;
    }
    r->next = NULL;
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    r->subject = *subject;
    r->once = once;
    r->len = len;
    memcpy(r->body, body, len);
    if (!c->records_tail)
        c->records_tail = &c->records;
    *c->records_tail = r;
    c->records_tail = &r->next;
    c->n_records++;
}

static void record_pop(hosted *c)
{
    record *r = c->records;
    if (!r)
        return;
    c->records = r->next;
    if (!c->records)
        c->records_tail = &c->records;
    c->n_records--;
    free(r);
}

/* What the state machine would refuse as said already (already_said in
 * chronicle_fsm.c), judged on this member's replica: a member replaying
 * its Atlas log after a restart then sends nothing it knows is there. */
static bool record_known(const hosted *c, const record *r)
{
    if (r->once == CO__APPEND_ALWAYS)
        return false;
    for (size_t i = co__chronicle_count(&c->fsm); i > 0; i--) {
        const co__chronicle_entry *e = co__chronicle_at(&c->fsm, i - 1);
        if (strcmp(e->kind, r->kind) != 0 ||
            !mk_id_eq(&e->subject, &r->subject))
            continue;
        bool same = e->body_len == r->len &&
                    memcmp(e->body, r->body, r->len) == 0;
        if (same || r->once == CO__APPEND_ONCE)
            return same;
    }
    return false;
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

static void on_timer(uv_timer_t *t);

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
    if (x->kind == CO_MODULE_CHRONICLE && d->kind == CO__CHRONICLE_SIGN) {
        /* The head may have moved on while it was in flight. */
        x->sign_in_flight = false;
        uv_timer_start(&x->timer, on_timer, 0, RECONCILE_MS);
    }
    if (x->kind == CO_MODULE_CHRONICLE && d->kind == CO__CHRONICLE_APPEND) {
        x->recording = false;
        /* Kept for the next pass only when it may still land: a refusal
         * at the door would block every record behind it. */
        if (x->records && (status == 0 || co__door_refused(status))) {
            if (status == 0 && len > 0 && res[0] == 1)
                say(x->host, "INFO", "chronicle: recorded %s",
                    x->records->kind);
            record_pop(x);
        }
    }
    if (status < 0 && status != MK_ECONNECT_TIMEOUT)
        say(x->host, "WARN", "%s: a duty failed: %s",
            co_module_name(x->kind), mk_strerror(status));
    free(d);
}

static int submit(hosted *x, mk_buf *cmd, uint8_t kind, const mk_id *key)
{
    duty *d = calloc(1, sizeof *d);
    if (!d || cmd->err) {
        free(d);
        return MK_ENOMEM;
    }
    d->x = x;
    d->kind = kind;
    if (key) {
        d->key = *key;
        d->keyed = true;
        if (x->n_pending < MAX_PENDING)
            x->pending[x->n_pending++] = *key;
    }
    int rc = mk_group_execute(x->group, cmd->data, cmd->len, DUTY_TIMEOUT_MS,
                              on_duty_done, d);
    if (rc < 0) {
        if (key)
            pending_drop(x, key);
        if (x->kind == CO_MODULE_ALMANAC && kind == CO__ALMANAC_TICK)
            x->tick_in_flight = false;
        if (x->kind == CO_MODULE_CHRONICLE && kind == CO__CHRONICLE_APPEND)
            x->recording = false;
        free(d);
    }
    return rc;
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

/* The content hash of every citizen the config names, by stable id:
 * lattices then organisms. Returns the count, or -1. */
typedef struct citizen_hash {
    mk_id stable, content;
    bool has;
} citizen_hash;

static int citizen_hashes(const co_coalition_config *c, citizen_hash **out)
{
    size_t n = c->n_lattices + c->n_organisms;
    citizen_hash *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < c->n_lattices; i++) {
        int has = co_lattice_content_hash(c->lattices[i], &v[i].content, NULL);
        if (co_lattice_stable_id(c->lattices[i], &v[i].stable, NULL) < 0 ||
            has < 0) {
            free(v);
            return -1;
        }
        v[i].has = has == 1;
    }
    for (size_t i = 0; i < c->n_organisms; i++) {
        citizen_hash *o = &v[c->n_lattices + i];
        if (co_organism_stable_id(c->organisms[i], &o->stable, NULL) < 0) {
            free(v);
            return -1;
        }
        o->has = co_organism_content_hash(c->organisms[i], &o->content) == 1;
    }
    *out = v;
    return (int)n;
}

/* Queues a rotation for every citizen whose content hash differs between
 * the latest config the Chronicle holds and the one this member runs.
 * Every member that starts with the new config compares the same two
 * configs (the latest recorded one, while nobody has recorded the new
 * one yet), so their records are identical and `once` keeps one. */
static void queue_rotations(hosted *x, const mk_id *coalition,
                            const char *json)
{
    const co__chronicle_entry *last = NULL;
    for (size_t i = co__chronicle_count(&x->fsm); i > 0 && !last; i--) {
        const co__chronicle_entry *e = co__chronicle_at(&x->fsm, i - 1);
        if (strcmp(e->kind, CO_RECORD_CONFIG) == 0 &&
            mk_id_eq(&e->subject, coalition))
            last = e;
    }
    if (!last || (last->body_len == strlen(json) &&
                  memcmp(last->body, json, last->body_len) == 0))
        return;
    char err[CO_ERRMSG_SIZE];
    co_config_file *f;
    if (co_config_file_parse((const char *)last->body, last->body_len,
                             "the recorded config", &f, err) < 0) {
        say(x->host, "WARN", "chronicle: no rotations recorded: %s", err);
        return;
    }
    citizen_hash *was, *now;
    int n_was = citizen_hashes(co_config_file_coalition(f), &was);
    int n_now = n_was < 0 ? -1 : citizen_hashes(x->host->cfg.coalition, &now);
    co_config_file_free(f);
    if (n_now < 0) {
        if (n_was >= 0)
            free(was);
        return;
    }
    for (int i = 0; i < n_now; i++)
        for (int j = 0; j < n_was; j++) {
            if (!mk_id_eq(&now[i].stable, &was[j].stable))
                continue;
            if (now[i].has == was[j].has &&
                (!now[i].has || mk_id_eq(&now[i].content, &was[j].content)))
                break;
            co_record_rotation r = {.has_old = was[j].has,
                                    .has_new = now[i].has,
                                    .old_hash = was[j].content,
                                    .new_hash = now[i].content};
            uint8_t body[CO_RECORD_ROTATION_LEN];
            co_record_rotation_encode(&r, body);
            record_push(x, CO_RECORD_ROTATION, &now[i].stable, body,
                        sizeof body, CO__APPEND_ONCE);
            break;
        }
    free(was);
    free(now);
}

/* Rotations then the config, once per start: a member that recorded the
 * config has recorded the rotations before it. */
static void queue_config(hosted *x, const mk_group_status *st)
{
    /* Compared against a replica that has not applied what it knows is
     * committed, an older config would give other rotations than the
     * other members record. */
    if (x->queued_config || st->applied_index < st->commit_index)
        return;
    /* The record is the config as this daemon reads it, written back
     * canonically: every member of one config records identical bytes,
     * so `once` keeps one entry per distinct config. */
    char *json, err[CO_ERRMSG_SIZE];
    const co_coalition_config *c = x->host->cfg.coalition;
    mk_id id;
    if (co_coalition_id(c, &id, err) < 0 ||
        co_config_to_json(c, &json, err) < 0) {
        say(x->host, "WARN", "chronicle: the config is not recorded: %s",
            err);
        x->queued_config = true;
        return;
    }
    queue_rotations(x, &id, json);
    record_push(x, CO_RECORD_CONFIG, &id, json, strlen(json),
                CO__APPEND_ONCE);
    free(json);
    x->queued_config = true;
}

static void record_next(hosted *x)
{
    while (x->records && !x->recording && record_known(x, x->records))
        record_pop(x);
    if (!x->records || x->recording)
        return;
    const record *r = x->records;
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__chronicle_cmd_append(&cmd, r->kind, &r->subject, r->body, r->len,
                             r->once, me(x));
    x->recording = true;
    int rc = submit(x, &cmd, CO__CHRONICLE_APPEND, NULL);
    mk_buf_free(&cmd);
    if (co__door_refused(rc)) {
        say(x->host, "WARN", "chronicle: %s refused: %s", r->kind,
            mk_strerror(rc));
        record_pop(x);
    }
}

static void chronicle_duties(hosted *x, const mk_group_status *st)
{
    const mk_keypair *kp = me(x);
    queue_config(x, st);
    record_next(x);
    /* Sign the head only. Entries are hash-chained, so a signature on
     * entry N vouches for 1..N (a reader verifies from the latest head a
     * majority signed); signing every entry cost each append three more
     * commands and nine more signature checks, which bounded appends at
     * what the CPU could verify.
     *
     * Nor every head: when appends are sparse each one is signed at once,
     * but under load a member signs at most once per SIGN_GAP_MS and never
     * with its last SIGN still in flight. Signing each batch's head put
     * three more entries, each its own disk write on every member, between
     * one batch of appends and the next, and a small window waits for
     * every one of them; now a signed head trails the newest entry by at
     * most the gap and a commit. */
    size_t n = co__chronicle_count(&x->fsm);
    if (n == 0 || x->n_pending >= MAX_PENDING || x->sign_in_flight)
        return;
    const co__chronicle_entry *head = co__chronicle_at(&x->fsm, n - 1);
    if (signed_by(head->sigs, head->n_sigs, &kp->pub) ||
        pending_has(x, &head->hash))
        return;
    int64_t now = mk_mono_ms();
    if (now < x->sign_after) {
        uv_timer_start(&x->timer, on_timer, (uint64_t)(x->sign_after - now),
                       RECONCILE_MS);
        return;
    }
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__chronicle_cmd_sign(&cmd, head, kp);
    x->sign_in_flight = true; /* before: a refusal may answer at once */
    x->sign_after = now + SIGN_GAP_MS;
    if (submit(x, &cmd, CO__CHRONICLE_SIGN, &head->hash) < 0)
        x->sign_in_flight = false;
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
    if (!st.online || !x->listed)
        return;
    switch (x->kind) {
    case CO_MODULE_ATLAS:
        atlas_duties(x);
        break;
    case CO_MODULE_ALMANAC:
        almanac_tick(x);
        break;
    case CO_MODULE_CHRONICLE:
        chronicle_duties(x, &st);
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

/* Runs inside the Atlas's apply(), on every member, for every
 * publication it applies (a restart replays them: `never said` and
 * record_known drop the repeats). Only a member of the Chronicle
 * committee too can record it: appends need a Chronicle member's key. */
static void on_card_published(const co__atlas_item *it, const mk_id *replaced,
                              void *data)
{
    hosted *x = data;
    if (!x->group)
        return;
    uv_timer_start(&x->timer, on_timer, 0, RECONCILE_MS);
    hosted *c = chronicle_of(x->host);
    if (!c)
        return;
    /* During apply() the group has not yet counted this command: its
     * number is one more, the same on every member (the count is part of
     * the replicated state), and it tells two publications of the same
     * card apart. */
    mk_group_status st;
    mk_group_status_get(x->group, &st);
    co_record_card r = {.publication = st.applied + 1,
                        .card = it->card.hash,
                        .citizen = it->card.card.citizen_id,
                        .replaced = replaced != NULL};
    if (replaced)
        r.previous = *replaced;
    uint8_t body[CO_RECORD_CARD_LEN];
    co_record_card_encode(&r, body);
    record_push(c, CO_RECORD_ATLAS_CARD, &r.citizen, body, sizeof body,
                CO__APPEND_NEVER_SAID);
    uv_timer_start(&c->timer, on_timer, 0, RECONCILE_MS);
}

/* Runs inside the apply() of a membership note, on every member of the
 * changed committee (mk_group_watch_members), for each change its leader
 * noted; a restart replays them and `never said` drops the repeats. The
 * body holds only what the note says, so every recording member writes
 * the same bytes. Only a member of the Chronicle committee too records. */
static void on_member_change(mk_group *g, const mk_group_member_event *ev,
                             void *data)
{
    hosted *x = data;
    hosted *c = chronicle_of(x->host);
    if (!c)
        return;
    co_record_committee r = {.module = (uint8_t)x->kind, .ev = *ev};
    uint8_t body[CO_RECORD_COMMITTEE_LEN];
    co_record_committee_encode(&r, body);
    record_push(c, CO_RECORD_COMMITTEE, mk_group_id(g), body, sizeof body,
                CO__APPEND_NEVER_SAID);
    uv_timer_start(&c->timer, on_timer, 0, RECONCILE_MS);
}

static void on_entry_appended(const co__chronicle_entry *e, void *data)
{
    hosted *x = data;
    if (x->group)
        uv_timer_start(&x->timer, on_timer, 0, RECONCILE_MS);
}

/* ---- lifecycle ------------------------------------------------------------ */

/* Whether this node's entry carries a ticket the module's ticket-gated
 * ACL accepts now: then it joins the committee's group, and the leader
 * adds it as a standby (mk_group_tickets). */
static bool holds_ticket(const co_module_info *m, mk_node *node)
{
    return m->ticketed && mk_group_tickets_held(&m->tickets, node, NULL);
}

static int host_one(co_host *h, co_module_kind kind, char *err)
{
    hosted *x = &h->mods[h->n];
    memset(x, 0, sizeof *x);
    x->host = h;
    x->kind = kind;
    int rc = co_module_info_get(h->cfg.coalition, kind, &x->m, err);
    if (rc < 0)
        return rc;
    x->listed = co_module_is_member(&x->m, mk_node_id(h->cfg.node));
    if (!x->listed && !holds_ticket(&x->m, h->cfg.node))
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
    /* The module's voter cap is part of its GroupId, not a local choice. */
    uint32_t max_voters = gc.params.max_voters;
    gc.params = h->cfg.params;
    if (max_voters)
        gc.params.max_voters = max_voters;
    gc.params.max_command_bytes = co__module_ops_of(kind)->max_command;
    gc.name = co_module_name(kind);
    char gerr[MK_ERRMSG_SIZE];
    rc = mk_group_open(&gc, &x->group, gerr);
    if (rc < 0) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "%s: cannot join the committee: %s",
                     co_module_name(kind), gerr);
        co__module_ops_of(kind)->fsm_free(&x->fsm);
        return rc;
    }
    mk_group_watch_members(x->group, on_member_change, x);
    co__host_metrics_add(&x->metrics, h->cfg.node, kind, &x->fsm);
    uv_timer_init(mk_node_loop(h->cfg.node), &x->timer);
    x->timer.data = x;
    uv_timer_start(&x->timer, on_timer, every, every);
    if (x->listed)
        say(h, "INFO", "%s: member of committee %s (%zu members)",
            co_module_name(kind), hex, x->m.n_committee);
    else
        say(h, "INFO", "%s: joining ticket-gated committee %s by ticket "
                       "(replicating; duties are the %zu listed members')",
            co_module_name(kind), hex, x->m.n_committee);
    h->n++;
    return 0;
}

static void fsm_free(hosted *x)
{
    while (x->records)
        record_pop(x);
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

void co_host_close(co_host *h, mk_close_cb cb, void *data)
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

int co_host_open(const co_host_config *cfg, co_host **out, char *err)
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
        co_host_close(h, NULL, NULL);
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
