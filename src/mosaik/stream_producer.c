/* Stream producers (include/mosaik/stream.h; reference/mosaik.md §4.2-4.6).
 *
 * A producer accepts subscriptions that the node's streams service routes
 * to it, and fans every datum out to them. Fan-out is synchronous and never
 * blocks: a datum goes straight into a subscriber's link while the link has
 * little waiting for the socket; past that, subscribers get a reference to
 * one shared copy in their own ring of buffer_size entries, which their
 * link's drain callback empties. A ring that is full when a datum arrives
 * means that consumer reads slower than we produce: it misses the datum
 * and, by default, is cut with TOO_SLOW (§4.3). Memory per consumer is thus
 * bounded by the link's high-water mark plus the ring, whatever it does.
 *
 * Consumers are re-judged (catalog presence, `require`, tickets) whenever
 * their catalog entry changes and when their earliest ticket expires
 * (§4.4, §7.3).
 *
 * Re-entrancy: application callbacks run from inside these functions and
 * may call anything, including mk_producer_close. Subscriptions are
 * therefore never freed while any of our frames is on the stack (`busy`);
 * they are only marked, and swept when the outermost frame leaves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "node_internal.h"
#include "stream_internal.h"

/* Bytes a subscriber's link may hold for its socket before datums wait in
 * the ring instead: enough to keep a loopback socket busy between drain
 * callbacks, small enough that the ring (not the link) absorbs a lagging
 * consumer and so decides when it is cut. */
#define LINK_HIGH_WATER (512u * 1024u)

typedef struct item {
    uint32_t refs; /* rings holding it */
    uint32_t len;
    uint8_t data[];
} item;

typedef struct sub {
    mk_producer *p;
    mk_link *link;    /* NULL once the link's close callback ran */
    mk_peer_id peer;
    bool active;      /* subscribed: counted and fed */
    item **ring;      /* buffer_size slots, allocated on first use */
    size_t head, count;
    mk_stream_stats stats;
    int64_t connected_at_ms;
    int64_t expires_ms; /* earliest ticket expiry, MK_TICKET_NEVER */
    uint32_t code;      /* why it ended */
    bool tell_end;      /* cut during a send: tell the app after it */
} sub;

struct mk_producer {
    mk_streams *s;
    mk_node *node;
    mk_id stream;
    const mk_datum_codec *codec;
    size_t buffer_size, max_consumers, max_datum;
    bool drop_only;
    mk_peer_pred *require;
    size_t n_require;
    const struct mk_ticket_validator **validators;
    size_t n_validators;
    bool (*accept_criteria)(const mk_peer_info *, const uint8_t *, size_t,
                            void *);
    mk__cond online_when;
    mk_producer_sub_cb on_sub;
    void (*on_writable)(mk_producer *p, void *data);
    void *data;

    sub **subs; /* subscribed, plus cut ones whose links are still closing */
    size_t n_subs, cap_subs;
    size_t n_active;
    mk__whens whens;
    bool online;
    bool writable_armed;
    mk_stream_stats totals;
    mk_node_watch *watch;
    uv_timer_t timer; /* earliest ticket expiry among subscribers */
    mk_buf enc;       /* typed sends encode here */
    bool enc_busy;
    bool in_send; /* fanning out: end notifications wait (see cut) */
    int busy;
    bool dirty; /* a subscription's link ended: sweep when idle */
    bool closing, freeing;
    void (*close_cb)(void *data);
    void *close_data;
};

/* ---- lifetime ------------------------------------------------------------ */

static void item_unref(item *it)
{
    if (--it->refs == 0)
        free(it);
}

static void ring_clear(sub *s)
{
    size_t cap = s->p->buffer_size;
    while (s->count) {
        item_unref(s->ring[s->head]);
        s->head = (s->head + 1) % cap;
        s->count--;
    }
    s->head = 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    mk_producer *p = h->data;
    void (*cb)(void *) = p->close_cb;
    void *data = p->close_data;
    free(p->subs);
    free(p->require);
    free(p->validators);
    mk__cond_free(&p->online_when);
    mk__whens_free(&p->whens);
    mk_buf_free(&p->enc);
    free(p);
    if (cb)
        cb(data);
}

/* Frees the subscriptions whose links have ended; finishes closing. */
static void sweep(mk_producer *p)
{
    size_t kept = 0;
    p->dirty = false;
    for (size_t i = 0; i < p->n_subs; i++) {
        sub *s = p->subs[i];
        if (!s->link && !s->active) {
            ring_clear(s);
            free(s->ring);
            free(s);
        } else {
            p->subs[kept++] = s;
        }
    }
    p->n_subs = kept;
    if (p->closing && p->n_subs == 0 && !p->freeing) {
        p->freeing = true;
        uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    }
}

static void enter(mk_producer *p)
{
    p->busy++;
}

static void leave(mk_producer *p)
{
    /* The check keeps the per-datum path free of a walk over every
     * subscription. */
    if (--p->busy == 0 && (p->dirty || p->closing))
        sweep(p);
}

/* ---- status ----------------------------------------------------------------- */

static size_t count_matching(const mk_producer *p, const mk__cond *c)
{
    if (c->n_tags == 0 && !c->pred)
        return p->n_active;
    size_t n = 0;
    for (size_t i = 0; i < p->n_subs; i++)
        if (p->subs[i]->active &&
            mk__cond_peer_matches(c, p->node, &p->subs[i]->peer))
            n++;
    return n;
}

static bool eval(void *ctx, const mk__cond *c)
{
    const mk_producer *p = ctx;
    if (c->kind == MK_WHEN_ONLINE)
        return mk__cond_value(c, 0, p->online);
    return mk__cond_value(c, count_matching(p, c), p->online);
}

static void status_update(mk_producer *p)
{
    if (p->closing)
        return;
    p->online = eval(p, &p->online_when);
    mk__whens_update(&p->whens, eval, p);
}

static size_t backlog(const mk_producer *p)
{
    size_t most = 0;
    for (size_t i = 0; i < p->n_subs; i++)
        if (p->subs[i]->active && p->subs[i]->count > most)
            most = p->subs[i]->count;
    return most;
}

/* Only from loop callbacks, never from inside mk_producer_send: a writer
 * that sends from on_writable would otherwise recurse without bound. */
static void check_writable(mk_producer *p)
{
    if (!p->writable_armed || p->closing ||
        backlog(p) > p->buffer_size / 4)
        return;
    p->writable_armed = false;
    if (p->on_writable)
        p->on_writable(p, p->data);
}

/* ---- judging consumers -------------------------------------------------------- */

/* 0 with the ticket expiry, MK_ENOENT (not in the catalog), MK_ENOMEM, or
 * MK_ENOT_ALLOWED with a reason. */
static int judge(mk_producer *p, const mk_peer_id *peer, int64_t *expires,
                 char *why)
{
    mk_peer_info info;
    if (!mk_node_peer(p->node, peer, &info)) {
        snprintf(why, MK_ERRMSG_SIZE, "consumer is not in the catalog");
        return MK_ENOENT;
    }
    for (size_t i = 0; i < p->n_require; i++)
        if (!p->require[i].fn(&info, p->require[i].data)) {
            snprintf(why, MK_ERRMSG_SIZE, "require predicate %zu refused", i);
            return MK_ENOT_ALLOWED;
        }
    /* Re-read: a predicate is application code and the catalog may have
     * changed under it. */
    if (!mk_node_peer(p->node, peer, &info))
        return MK_ENOENT;
    int64_t now = mk_now_ms();
    int rc = mk_ticket_validate_all(p->validators, p->n_validators,
                                    info.entry->tickets,
                                    info.entry->n_tickets, peer, now,
                                    expires, why);
    if (rc == 0 && *expires <= now) {
        snprintf(why, MK_ERRMSG_SIZE, "ticket expired");
        return MK_ENOT_ALLOWED;
    }
    if (rc < 0 && rc != MK_ENOMEM)
        rc = MK_ENOT_ALLOWED;
    return rc;
}

static void on_timer(uv_timer_t *t);

static void rearm(mk_producer *p)
{
    if (p->closing)
        return;
    int64_t earliest = MK_TICKET_NEVER;
    for (size_t i = 0; i < p->n_subs; i++)
        if (p->subs[i]->active && p->subs[i]->expires_ms < earliest)
            earliest = p->subs[i]->expires_ms;
    if (earliest == MK_TICKET_NEVER)
        uv_timer_stop(&p->timer);
    else
        uv_timer_start(&p->timer, on_timer,
                       mk__stream_delay_until(earliest), 0);
}

/* ---- subscriptions --------------------------------------------------------------- */

static void notify(mk_producer *p, sub *s, bool subscribed, uint32_t code)
{
    if (!p->closing && p->on_sub)
        p->on_sub(p, &s->peer, subscribed, code, p->data);
}

static void deactivate(sub *s, uint32_t code)
{
    mk_producer *p = s->p;
    s->active = false;
    s->code = code;
    s->connected_at_ms = 0;
    ring_clear(s);
    p->n_active--;
}

/* Ends a subscription from our side. The sub stays listed until its link's
 * close callback, so the link never points at freed memory. */
static void cut(sub *s, uint32_t code, const char *reason)
{
    if (!s->active)
        return;
    deactivate(s, code);
    mk_link_on_drain(s->link, NULL);
    mk_link_close(s->link, code, reason);
    /* Inside a fan-out the application hears of it afterwards: a callback
     * that sent from here would overtake the datum being fanned out for
     * the consumers not yet served, breaking their order. */
    if (s->p->in_send)
        s->tell_end = true;
    else
        notify(s->p, s, false, code);
}

static int send_to(sub *s, const void *data, size_t len)
{
    int rc = mk_link_send(s->link, data, len);
    if (rc == 0) {
        s->stats.items++;
        s->stats.bytes += len;
        s->p->totals.items++;
        s->p->totals.bytes += len;
    } else if (rc != MK_ECLOSED) {
        /* The link refused it (memory): this consumer misses it. */
        s->stats.dropped++;
        s->p->totals.dropped++;
    }
    return rc;
}

/* Moves ring entries into the link up to its high-water mark. */
static void flush(sub *s)
{
    size_t cap = s->p->buffer_size;
    while (s->active && s->count &&
           mk_link_queued(s->link) < LINK_HIGH_WATER) {
        item *it = s->ring[s->head];
        s->head = (s->head + 1) % cap;
        s->count--;
        send_to(s, it->data, it->len);
        item_unref(it);
    }
}

static void on_sub_drain(mk_link *link, void *data)
{
    sub *s = data;
    mk_producer *p = s->p;
    enter(p);
    flush(s);
    check_writable(p);
    leave(p);
}

static void on_sub_frame(mk_link *link, const uint8_t *f, size_t len,
                         void *data)
{
    sub *s = data;
    mk_producer *p = s->p;
    enter(p);
    /* The consumer speaks once, in its handshake. */
    cut(s, MK_CLOSE_PROTOCOL_VIOLATION, "consumers send no data");
    rearm(p);
    status_update(p);
    check_writable(p);
    leave(p);
}

static void on_sub_close(mk_link *link, uint32_t code, int status,
                         void *data)
{
    sub *s = data;
    mk_producer *p = s->p;
    enter(p);
    s->link = NULL;
    p->dirty = true;
    if (s->active) {
        deactivate(s, code);
        notify(p, s, false, code);
        rearm(p);
        status_update(p);
        check_writable(p);
    }
    leave(p);
}

static int add_sub(mk_producer *p, sub *s)
{
    if (p->n_subs == p->cap_subs) {
        size_t cap = p->cap_subs ? 2 * p->cap_subs : 8;
        sub **grown = realloc(p->subs, cap * sizeof *grown);
        if (!grown)
            return MK_ENOMEM;
        p->subs = grown;
        p->cap_subs = cap;
    }
    p->subs[p->n_subs++] = s;
    return 0;
}

const mk_id *mk__producer_stream(const mk_producer *p)
{
    return &p->stream;
}

static uint32_t accept_sub(mk_producer *p, mk_link *link,
                           const mk__stream_hello *h, char *why)
{
    if (p->closing)
        return MK_CLOSE_STREAM_NOT_FOUND;
    if (p->max_consumers && p->n_active >= p->max_consumers) {
        snprintf(why, MK_ERRMSG_SIZE, "at most %zu consumers",
                 p->max_consumers);
        return MK_CLOSE_STREAM_NO_CAPACITY;
    }
    const mk_peer_id *peer = mk_link_peer(link);
    /* Sample the RTT first so `require` can judge it (mosaik does too). */
    int64_t rtt = mk_link_rtt_us(link);
    if (rtt >= 0)
        mk__node_rtt_sample(p->node, peer, rtt);
    int64_t expires = MK_TICKET_NEVER;
    int rc = judge(p, peer, &expires, why);
    if (rc == MK_ENOENT)
        return MK_CLOSE_UNKNOWN_PEER;
    if (rc == MK_ENOMEM)
        return MK_CLOSE_CANCELLED;
    if (rc < 0)
        return MK_CLOSE_STREAM_NOT_ALLOWED;
    if (p->accept_criteria) {
        mk_peer_info info;
        if (!mk_node_peer(p->node, peer, &info))
            return MK_CLOSE_UNKNOWN_PEER;
        if (!p->accept_criteria(&info, h->criteria, h->criteria_len,
                                p->data)) {
            snprintf(why, MK_ERRMSG_SIZE, "criteria refused");
            return MK_CLOSE_STREAM_NOT_ALLOWED;
        }
    }
    if (p->closing) /* a predicate closed us */
        return MK_CLOSE_STREAM_NOT_FOUND;

    sub *s = calloc(1, sizeof *s);
    if (!s || add_sub(p, s) < 0) {
        free(s);
        return MK_CLOSE_CANCELLED;
    }
    mk_buf b;
    mk_buf_init(&b);
    mk__stream_start_encode(&b, mk_node_network(p->node), &p->stream);
    rc = b.err ? b.err : mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
    if (rc < 0) {
        p->n_subs--; /* just appended, nothing refers to it */
        free(s);
        return MK_CLOSE_CANCELLED;
    }
    s->p = p;
    s->link = link;
    s->peer = *peer;
    s->active = true;
    s->connected_at_ms = mk_now_ms();
    s->expires_ms = expires;
    p->n_active++;
    mk_link_set_callbacks(link, on_sub_frame, on_sub_close, s);
    mk_link_on_drain(link, on_sub_drain);
    /* A subscriber only listens, and a stream may be quiet for hours: the
     * subscription was judged (tickets, criteria), so the link stays until
     * one side ends it. max_consumers and the transport's caps bound how
     * many there are. */
    mk_link_set_idle_timeout(link, 0);
    notify(p, s, true, 0);
    rearm(p);
    status_update(p);
    return 0;
}

uint32_t mk__producer_accept(mk_producer *p, mk_link *link,
                             const mk__stream_hello *h, char *why)
{
    enter(p);
    uint32_t code = accept_sub(p, link, h, why);
    leave(p);
    return code;
}

/* ---- re-judging ------------------------------------------------------------------- */

static void rejudge(mk_producer *p, sub *s, bool departed)
{
    char why[MK_ERRMSG_SIZE] = "";
    int64_t expires = MK_TICKET_NEVER;
    int rc = departed ? MK_ENOENT : judge(p, &s->peer, &expires, why);
    if (rc == MK_ENOMEM || !s->active)
        return; /* undecided (or cut by a predicate): keep as is */
    if (rc == MK_ENOENT)
        cut(s, MK_CLOSE_UNKNOWN_PEER, "consumer left the catalog");
    else if (rc < 0)
        cut(s, MK_CLOSE_STREAM_NOT_ALLOWED, why);
    else
        s->expires_ms = expires;
}

static void on_catalog(mk_node *node, mk_peer_event ev,
                       const mk_peer_entry *e, void *data)
{
    mk_producer *p = data;
    if (p->closing)
        return;
    enter(p);
    bool touched = false;
    for (size_t i = 0; i < p->n_subs; i++) {
        sub *s = p->subs[i];
        if (!s->active || !mk_id_eq(&s->peer, &e->peer))
            continue;
        touched = true;
        rejudge(p, s, ev == MK_PEER_DEPARTED);
    }
    if (touched) {
        /* Tags may have changed: conditions count peers by tag. */
        rearm(p);
        status_update(p);
        check_writable(p);
    }
    leave(p);
}

static void on_timer(uv_timer_t *t)
{
    mk_producer *p = t->data;
    enter(p);
    int64_t now = mk_now_ms();
    for (size_t i = 0; i < p->n_subs; i++) {
        sub *s = p->subs[i];
        if (s->active && s->expires_ms <= now)
            rejudge(p, s, false);
    }
    rearm(p);
    status_update(p);
    check_writable(p);
    leave(p);
}

/* ---- the API ---------------------------------------------------------------------- */

int mk_producer_open(mk_streams *s, const mk_producer_config *cfg,
                     mk_producer **out, char *err)
{
    static const mk_stream_cond one_consumer = {.min = 1};
    int rc;
    *out = NULL;
    if (cfg->online_when && cfg->online_when->kind != MK_WHEN_SUBSCRIBED)
        return mk_errf(err, MK_EINVAL, "online_when must count subscribers");
    for (size_t i = 0; i < cfg->n_require; i++)
        if (!cfg->require[i].fn)
            return mk_errf(err, MK_EINVAL,
                           "a require predicate has no function");
    mk_producer *p = calloc(1, sizeof *p);
    if (!p)
        return MK_ENOMEM;
    p->s = s;
    p->node = mk_streams_node(s);
    p->stream = cfg->stream;
    p->codec = cfg->codec;
    p->buffer_size = cfg->buffer_size ? cfg->buffer_size
                                      : MK_STREAM_BUFFER_DEFAULT;
    p->max_consumers = cfg->max_consumers;
    p->max_datum = cfg->max_datum ? cfg->max_datum : MK_LINK_MAX_FRAME_DEFAULT;
    p->drop_only = cfg->lagging_drop_only;
    p->accept_criteria = cfg->accept_criteria;
    p->on_sub = cfg->on_subscription;
    p->on_writable = cfg->on_writable;
    p->data = cfg->data;
    mk_buf_init(&p->enc);

    rc = MK_ENOMEM;
    if (cfg->n_require) {
        p->require = malloc(cfg->n_require * sizeof *p->require);
        if (!p->require)
            goto err_after_alloc;
        memcpy(p->require, cfg->require, cfg->n_require * sizeof *p->require);
        p->n_require = cfg->n_require;
    }
    if (cfg->n_validators) {
        p->validators = malloc(cfg->n_validators * sizeof *p->validators);
        if (!p->validators)
            goto err_after_alloc;
        memcpy(p->validators, cfg->validators,
               cfg->n_validators * sizeof *p->validators);
        p->n_validators = cfg->n_validators;
    }
    rc = mk__cond_copy(&p->online_when, cfg->online_when ? cfg->online_when
                                                         : &one_consumer);
    if (rc < 0) {
        mk_errf(err, rc, "%s",
                rc == MK_EINVAL ? "online_when has a NULL tag"
                                : "out of memory");
        goto err_after_alloc;
    }
    rc = mk__streams_add_producer(s, p);
    if (rc < 0) {
        mk_errf(err, rc, "%s",
                rc == MK_EEXIST ? "this node already produces the stream"
                                : "out of memory");
        goto err_after_cond;
    }
    rc = mk_node_watch_add(p->node, on_catalog, p, &p->watch);
    if (rc < 0)
        goto err_after_registered;
    rc = mk_node_add_stream(p->node, &p->stream);
    if (rc < 0) {
        mk_errf(err, rc, "%s", "cannot list the stream in the node's entry");
        goto err_after_watch;
    }
    uv_timer_init(mk_node_loop(p->node), &p->timer);
    p->timer.data = p;
    p->online = eval(p, &p->online_when);
    *out = p;
    return 0;

err_after_watch:
    mk_node_unwatch(p->watch);
err_after_registered:
    mk__streams_remove_producer(s, p);
err_after_cond:
    mk__cond_free(&p->online_when);
err_after_alloc:
    free(p->validators);
    free(p->require);
    free(p);
    return rc;
}

void mk_producer_close(mk_producer *p, mk_close_cb cb, void *data)
{
    if (p->closing)
        return;
    enter(p);
    p->closing = true;
    p->close_cb = cb;
    p->close_data = data;
    mk__streams_remove_producer(p->s, p);
    mk_node_remove_stream(p->node, &p->stream);
    mk_node_unwatch(p->watch);
    uv_timer_stop(&p->timer);
    for (size_t i = 0; i < p->n_subs; i++)
        cut(p->subs[i], MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
    leave(p);
}

int mk_producer_send_bytes(mk_producer *p, const void *bytes, size_t len)
{
    if (p->closing)
        return MK_ECLOSED;
    if (len > p->max_datum || len > UINT32_MAX)
        return MK_EMSGSIZE;
    if (!p->online)
        return MK_EOFFLINE;
    size_t full = 0;
    for (size_t i = 0; i < p->n_subs; i++)
        if (p->subs[i]->active && p->subs[i]->count >= p->buffer_size)
            full++;
    if (p->n_active && full == p->n_active) {
        p->writable_armed = true;
        return MK_EFULL;
    }

    enter(p);
    p->in_send = true;
    item *it = NULL;
    int sent = 0, oom = 0;
    bool cuts = false;
    for (size_t i = 0; i < p->n_subs; i++) {
        sub *s = p->subs[i];
        if (!s->active)
            continue;
        if (s->count == 0 && mk_link_queued(s->link) < LINK_HIGH_WATER) {
            if (send_to(s, bytes, len) == 0)
                sent++;
            continue;
        }
        if (s->count >= p->buffer_size) {
            s->stats.dropped++;
            p->totals.dropped++;
            if (!p->drop_only) {
                cut(s, MK_CLOSE_STREAM_TOO_SLOW, "consumer queue overflowed");
                cuts = true;
            }
            continue;
        }
        if (!it) {
            it = malloc(sizeof *it + len);
            if (!it) {
                oom = 1;
                s->stats.dropped++;
                p->totals.dropped++;
                continue;
            }
            it->refs = 0;
            it->len = (uint32_t)len;
            memcpy(it->data, bytes, len);
        }
        if (!s->ring && !(s->ring = calloc(p->buffer_size, sizeof *s->ring))) {
            oom = 1;
            s->stats.dropped++;
            p->totals.dropped++;
            continue;
        }
        s->ring[(s->head + s->count) % p->buffer_size] = it;
        s->count++;
        it->refs++;
        sent++;
        if (s->count >= p->buffer_size / 2)
            p->writable_armed = true;
    }
    if (it && it->refs == 0)
        free(it);
    p->in_send = false;
    if (cuts) {
        for (size_t i = 0; i < p->n_subs; i++)
            if (p->subs[i]->tell_end) {
                p->subs[i]->tell_end = false;
                notify(p, p->subs[i], false, p->subs[i]->code);
            }
        rearm(p);
        status_update(p);
    }
    leave(p);
    return sent == 0 && oom ? MK_ENOMEM : sent;
}

int mk_producer_send(mk_producer *p, const void *value)
{
    if (!p->codec)
        return MK_EINVAL;
    if (p->closing)
        return MK_ECLOSED;
    if (!p->online)
        return MK_EOFFLINE;
    /* A callback run by the send below may send again: it gets its own
     * buffer rather than rewriting the bytes still being fanned out. */
    mk_buf local, *b = p->enc_busy ? &local : &p->enc;
    if (b == &local)
        mk_buf_init(&local);
    mk_buf_reset(b);
    int rc = p->codec->encode(value, b);
    if (rc == 0)
        rc = b->err;
    if (rc == 0) {
        bool outer = b == &p->enc;
        if (outer)
            p->enc_busy = true;
        rc = mk_producer_send_bytes(p, b->data, b->len);
        if (outer)
            p->enc_busy = false;
    }
    if (b == &local)
        mk_buf_free(&local);
    return rc;
}

bool mk_producer_is_online(const mk_producer *p)
{
    return !p->closing && p->online;
}

const mk_id *mk_producer_stream(const mk_producer *p)
{
    return &p->stream;
}

size_t mk_producer_subscribers(const mk_producer *p)
{
    return p->n_active;
}

size_t mk_producer_backlog(const mk_producer *p)
{
    return backlog(p);
}

void mk_producer_stats(const mk_producer *p, mk_stream_stats *out)
{
    *out = p->totals;
}

size_t mk_producer_channels(const mk_producer *p, mk_stream_channel *out,
                            size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_subs; i++) {
        const sub *s = p->subs[i];
        if (!s->active)
            continue;
        if (n < cap)
            out[n] = (mk_stream_channel){
                .peer = s->peer,
                .state = MK_CHANNEL_CONNECTED,
                .stats = s->stats,
                .connected_at_ms = s->connected_at_ms,
                .queued = s->count,
            };
        n++;
    }
    return n;
}

int mk_producer_when(mk_producer *p, const mk_stream_cond *cond,
                     mk_stream_when_cb cb, void *data, mk_stream_when **out)
{
    if (p->closing)
        return MK_ECLOSED;
    return mk__whens_add(&p->whens, cond, cb, data, out, eval, p);
}

bool mk_producer_is_met(const mk_producer *p, const mk_stream_cond *cond)
{
    /* Read-only view of the caller's condition; nothing is kept. */
    mk__cond c = {
        .kind = cond->kind,
        .min = cond->min,
        .tags = (char **)cond->tags,
        .n_tags = cond->n_tags,
        .pred = cond->pred,
        .pred_data = cond->pred_data,
        .unmet = cond->unmet,
    };
    return eval((void *)p, &c);
}
