/* The demo's committee rotation (demo_rotation.h).
 *
 * It goes status -> demote -> promote, and any failure (no leader yet, a
 * change in flight, a leader that moved onto the voter it chose) starts
 * again from status half a second later: each round re-reads who leads
 * and who votes, so a retry never acts on a stale picture. Once the
 * voter is demoted only the promotion is retried: demoting a second
 * voter would leave the committee without a quorum.
 */
#include "demo_rotation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "coalition/chronicle_record.h"
#include "coalition/error.h"
#include "coalition/module.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"

#define RETRY_MS 500
#define REQUEST_MS 5000

typedef enum phase {
    WAITING,   /* for the timer */
    ASKING,    /* who leads and votes */
    DEMOTING,  /* `out` */
    DEMOTED,   /* `out` is a standby; `in` is next */
    PROMOTING, /* `in` */
    DONE,
} phase;

struct demo_rotation {
    mk_node *node;
    co_module_info m;
    mk_id group;
    mk_keypair op;
    mk_peer_id ask;
    mk_group_client *client;
    uv_timer_t timer;
    phase ph;
    bool closing;
    bool demote_sent; /* res.out names the voter a demotion went for */
    size_t cap;       /* the module's voters=N */
    int64_t first_ms;
    void (*done)(void *data);
    void *data;
    demo_rotation_result res;
};

static void round_start(demo_rotation *r);

static void on_timer(uv_timer_t *t)
{
    round_start(t->data);
}

static void retry(demo_rotation *r, phase from, const char *why, int rc)
{
    if (r->closing)
        return;
    if (why)
        snprintf(r->res.reason, sizeof r->res.reason, "%s: %s", why,
                 co_strerror(rc));
    r->ph = from;
    uv_timer_start(&r->timer, on_timer, RETRY_MS, 0);
}

static void on_promoted(int status, uint64_t applied, const uint8_t *res,
                        size_t len, void *data)
{
    demo_rotation *r = data;
    if (status == MK_ECANCELED || r->closing)
        return;
    if (status < 0) {
        retry(r, DEMOTED, "promote", status);
        return;
    }
    r->ph = DONE;
    r->res.done = true;
    r->res.took_ms = mk_mono_ms() - r->first_ms;
    r->res.reason[0] = '\0';
    if (r->done)
        r->done(r->data);
}

static void promote(demo_rotation *r)
{
    r->ph = PROMOTING;
    r->res.attempts++;
    int rc = mk_group_client_assign(r->client, &r->res.in, true, &r->op,
                                    REQUEST_MS, on_promoted, r);
    if (rc < 0)
        retry(r, DEMOTED, "promote", rc);
}

static void on_demoted(int status, uint64_t applied, const uint8_t *res,
                       size_t len, void *data)
{
    demo_rotation *r = data;
    if (status == MK_ECANCELED || r->closing)
        return;
    if (status < 0) {
        retry(r, WAITING, "demote", status);
        return;
    }
    r->ph = DEMOTED;
    promote(r);
}

static bool listed_voter(const mk_member_status *st, const mk_peer_id *p)
{
    size_t n = st->st.n_voters < MK_MEMBER_STATUS_MAX_VOTERS
                   ? st->st.n_voters
                   : MK_MEMBER_STATUS_MAX_VOTERS;
    for (size_t i = 0; i < n; i++)
        if (mk_id_eq(&st->voters[i], p))
            return true;
    return false;
}

/* Picks the standby to promote and a voter, not the leader, to demote. */
static void on_status(int status, const mk_member_status *st, void *data)
{
    demo_rotation *r = data;
    if (status == MK_ECANCELED || r->closing)
        return;
    if (status < 0 || !st->st.has_leader) {
        retry(r, WAITING, "asking who leads", status < 0 ? status : MK_EBUSY);
        return;
    }
    /* A demotion whose answer was lost may still have landed: then the
     * committee is short, and only the promotion is left to do. */
    size_t voters = 0;
    for (size_t i = 0; i < r->m.n_committee; i++)
        voters += listed_voter(st, &r->m.committee[i]);
    bool demoted = r->demote_sent && voters < r->cap &&
                   !listed_voter(st, &r->res.out);
    bool have_in = false, have_out = demoted;
    for (size_t i = r->m.n_committee; i-- > 0;) {
        const mk_peer_id *p = &r->m.committee[i];
        if (!listed_voter(st, p)) {
            if (!have_in && !(demoted && mk_id_eq(p, &r->res.out))) {
                r->res.in = *p;
                have_in = true;
            }
        } else if (!mk_id_eq(p, &st->st.leader) && !have_out) {
            r->res.out = *p;
            have_out = true;
        }
    }
    if (!have_in || !have_out) {
        retry(r, WAITING, "no standby and no voter to swap", MK_EBUSY);
        return;
    }
    if (demoted) {
        promote(r);
        return;
    }
    r->ph = DEMOTING;
    r->demote_sent = true;
    r->res.attempts++;
    int rc = mk_group_client_assign(r->client, &r->res.out, false, &r->op,
                                    REQUEST_MS, on_demoted, r);
    if (rc < 0)
        retry(r, WAITING, "demote", rc);
}

static void round_start(demo_rotation *r)
{
    if (r->closing)
        return;
    if (!r->res.started) {
        r->res.started = true;
        r->first_ms = mk_mono_ms();
    }
    if (r->ph == DEMOTED) {
        promote(r);
        return;
    }
    r->ph = ASKING;
    if (mk_group_client_status(r->client, &r->ask, false, REQUEST_MS,
                               on_status, r) < 0)
        retry(r, WAITING, "asking who leads", MK_ENOMEM);
}

int demo_rotation_start(mk_node *node, const co_coalition_config *cfg,
                        co_module_kind kind, const mk_keypair *operator_key,
                        const mk_peer_id *ask, uint64_t after_ms,
                        void (*done)(void *data), void *data,
                        demo_rotation **out, char *err)
{
    demo_rotation *r = calloc(1, sizeof *r);
    if (!r)
        return MK_ENOMEM;
    int rc = co_module_committee_group(cfg, kind, &r->m, &r->group, err);
    uint64_t voters = 0;
    if (rc == 0 && (co_module_param_u64(&r->m, "voters", 0, &voters) != 0 ||
                    voters == 0 || voters >= r->m.n_committee)) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "%s: no standby to rotate in (its content caps the "
                     "voters below its %zu members with voters=N)",
                     co_module_name(kind), r->m.n_committee);
        rc = CO_ECONFIG;
    }
    if (rc == 0)
        rc = mk_group_client_open(node, &r->group, &r->client);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->node = node;
    r->cap = (size_t)voters;
    r->op = *operator_key;
    r->ask = *ask;
    r->done = done;
    r->data = data;
    uv_timer_init(mk_node_loop(node), &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_timer, after_ms, 0);
    *out = r;
    return 0;
}

void demo_rotation_check(demo_rotation *r, const co_chronicle_reader *chr)
{
    if (!chr)
        return;
    co_chronicle_check chk;
    co_chronicle_verify(chr, &chk);
    size_t n = co_chronicle_count(chr), changes = 0;
    bool saw_out = false, saw_in = false;
    for (size_t i = 0; i < n; i++) {
        co_chronicle_entry e;
        co_record_committee rec;
        if (!co_chronicle_at(chr, i, &e) ||
            strcmp(e.kind, CO_RECORD_COMMITTEE) != 0 ||
            !mk_id_eq(&e.subject, &r->group) ||
            co_record_committee_decode(e.body, e.body_len, &rec) != 0)
            continue;
        changes++;
        /* Only what the verified head vouches for counts as recorded. */
        if (!r->res.done || !chk.ok || e.seq > chk.signed_head ||
            !rec.ev.by_operator || !mk_id_eq(&rec.ev.by, &r->op.pub))
            continue;
        if (rec.ev.change == MK_MEMBER_DEMOTED &&
            mk_id_eq(&rec.ev.member, &r->res.out))
            saw_out = true;
        if (rec.ev.change == MK_MEMBER_PROMOTED &&
            mk_id_eq(&rec.ev.member, &r->res.in))
            saw_in = true;
    }
    r->res.changes = changes;
    r->res.recorded = saw_out && saw_in;
}

void demo_rotation_get(const demo_rotation *r, demo_rotation_result *out)
{
    *out = r->res;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void demo_rotation_close(demo_rotation *r)
{
    r->closing = true;
    uv_timer_stop(&r->timer);
    mk_group_client_close(r->client, NULL, NULL);
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}
