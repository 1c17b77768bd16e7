/* Stream consumers (include/mosaik/stream.h; reference/mosaik.md §4.2,
 * §4.4, §7.3).
 *
 * A consumer keeps one channel per producer it has judged eligible: the
 * producer's catalog entry lists the stream, every `require` predicate
 * accepts it and every ticket validator accepts one of its tickets. A
 * channel dials, handshakes, and then delivers datums in order. When its
 * link ends, the close code decides what happens next (§4.4): refusals
 * and shutdowns terminate the channel until the producer's entry changes;
 * UNKNOWN_PEER syncs catalogs with the producer and retries; anything else
 * retries with jittered exponential backoff, given up after max_elapsed.
 * Every catalog change of a peer re-judges it, and a timer re-judges each
 * producer when its earliest ticket expires.
 *
 * Flow control: delivery is a synchronous callback. An application that
 * cannot take a datum returns MK_EAGAIN (or calls mk_consumer_pause): the
 * consumer keeps that datum and pauses every link, so TCP pushes back on
 * the producers instead of memory growing here (mosaik's consumer buffers
 * without bound, App. D.8). Only frames already in flight are held, up to
 * buffer_size per producer.
 *
 * Channels are freed only when none of our frames is on the stack, for
 * the same re-entrancy reasons as the producer's subscriptions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "stream_internal.h"

typedef enum chan_state {
    CH_WAIT,      /* backing off until retry_at */
    CH_DIALING,   /* mk_node_dial in flight */
    CH_HANDSHAKE, /* handshake sent, waiting for StartStream */
    CH_CONNECTED,
    CH_TERMINATED,
} chan_state;

typedef struct held {
    struct held *next;
    size_t len;
    uint8_t data[];
} held;

typedef struct chan {
    mk_consumer *c;
    mk_peer_id peer;
    mk_link *link;
    chan_state st;
    bool removed;    /* no longer eligible: freed once link and dial end */
    bool we_closed;  /* the link's end is ours: ignore its close code */
    bool retry_after_close; /* ...and then back off and retry */
    int64_t retry_at;       /* mono ms, CH_WAIT */
    int64_t series_start;   /* mono ms of the first failure in a row; 0 */
    uint32_t interval_ms;
    int64_t expires_ms; /* the producer's earliest ticket expiry */
    uint32_t last_code;
    int64_t connected_at_ms;
    mk_stream_stats stats;
    held *held_head, *held_tail;
    size_t n_held;
} chan;

struct mk_consumer {
    mk_streams *s;
    mk_node *node;
    mk_id stream;
    const mk_datum_codec *codec;
    mk_consumer_datum_cb on_datum;
    mk_consumer_producer_cb on_producer;
    void *data;
    uint8_t *criteria;
    size_t criteria_len;
    mk_peer_pred *require;
    size_t n_require;
    const struct mk_ticket_validator **validators;
    size_t n_validators;
    mk__cond online_when;
    size_t buffer_size;
    mk_backoff_config bo;

    chan **chans;
    size_t n_chans, cap_chans;
    size_t n_connected;
    mk__whens whens;
    bool online;
    mk_stream_stats totals;
    void *scratch; /* codec->size bytes to decode into */
    mk_node_watch *watch;
    uv_timer_t timer; /* retries, ticket expiry, redelivery after resume */
    uint64_t rng;
    bool paused;
    bool redeliver;
    int busy;
    bool dirty; /* a channel may be done: sweep when idle */
    bool closing, freeing;
    void (*close_cb)(void *data);
    void *close_data;
};

static void rearm(mk_consumer *c);

/* ---- lifetime ------------------------------------------------------------ */

static void held_clear(chan *ch)
{
    while (ch->held_head) {
        held *h = ch->held_head;
        ch->held_head = h->next;
        free(h);
    }
    ch->held_tail = NULL;
    ch->n_held = 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    mk_consumer *c = h->data;
    void (*cb)(void *) = c->close_cb;
    void *data = c->close_data;
    free(c->chans);
    free(c->criteria);
    free(c->require);
    free(c->validators);
    free(c->scratch);
    mk__cond_free(&c->online_when);
    mk__whens_free(&c->whens);
    free(c);
    if (cb)
        cb(data);
}

static void sweep(mk_consumer *c)
{
    size_t kept = 0;
    c->dirty = false;
    for (size_t i = 0; i < c->n_chans; i++) {
        chan *ch = c->chans[i];
        if (ch->removed && !ch->link && ch->st != CH_DIALING) {
            held_clear(ch);
            free(ch);
        } else {
            c->chans[kept++] = ch;
        }
    }
    c->n_chans = kept;
    if (c->closing && c->n_chans == 0 && !c->freeing) {
        c->freeing = true;
        c->s->n_consumers--;
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    }
}

static void enter(mk_consumer *c)
{
    c->busy++;
}

static void leave(mk_consumer *c)
{
    /* The check keeps the per-datum path free of a walk over every
     * channel. */
    if (--c->busy == 0 && (c->dirty || c->closing))
        sweep(c);
}

/* ---- status ----------------------------------------------------------------- */

static bool eval(void *ctx, const mk__cond *cond)
{
    const mk_consumer *c = ctx;
    if (cond->kind == MK_WHEN_ONLINE)
        return mk__cond_value(cond, 0, c->online);
    size_t n = c->n_connected;
    if (cond->n_tags || cond->pred) {
        n = 0;
        for (size_t i = 0; i < c->n_chans; i++)
            if (c->chans[i]->st == CH_CONNECTED &&
                mk__cond_peer_matches(cond, c->node, &c->chans[i]->peer))
                n++;
    }
    return mk__cond_value(cond, n, c->online);
}

static void status_update(mk_consumer *c)
{
    if (c->closing)
        return;
    c->online = eval(c, &c->online_when);
    mk__whens_update(&c->whens, eval, c);
}

static void notify(mk_consumer *c, chan *ch, bool connected, uint32_t code)
{
    if (!c->closing && c->on_producer)
        c->on_producer(c, &ch->peer, connected, code, c->data);
}

/* Leaves CH_CONNECTED, accounting and telling the application. */
static void disconnected(chan *ch, uint32_t code)
{
    mk_consumer *c = ch->c;
    if (ch->st != CH_CONNECTED)
        return;
    ch->st = CH_TERMINATED; /* the caller sets what comes next */
    ch->connected_at_ms = 0;
    ch->last_code = code;
    c->n_connected--;
    notify(c, ch, false, code);
}

/* ---- judging producers ------------------------------------------------------- */

/* Whether `peer` is an eligible producer now: 0 with its ticket expiry,
 * MK_ENOENT (gone or not producing the stream), MK_ENOT_ALLOWED or
 * MK_ENOMEM. */
static int judge(mk_consumer *c, const mk_peer_id *peer, int64_t *expires)
{
    mk_peer_info info;
    if (!mk_node_peer(c->node, peer, &info) ||
        !mk_entry_has_stream(info.entry, &c->stream))
        return MK_ENOENT;
    for (size_t i = 0; i < c->n_require; i++)
        if (!c->require[i].fn(&info, c->require[i].data))
            return MK_ENOT_ALLOWED;
    if (!mk_node_peer(c->node, peer, &info)) /* predicates are app code */
        return MK_ENOENT;
    int64_t now = mk_now_ms();
    int rc = mk_ticket_validate_all(c->validators, c->n_validators,
                                    info.entry->tickets,
                                    info.entry->n_tickets, peer, now,
                                    expires, NULL);
    if (rc == 0 && *expires <= now)
        return MK_ENOT_ALLOWED;
    if (rc < 0 && rc != MK_ENOMEM)
        rc = MK_ENOT_ALLOWED;
    return rc;
}

/* ---- channels ------------------------------------------------------------------- */

static chan *find_chan(mk_consumer *c, const mk_peer_id *peer)
{
    for (size_t i = 0; i < c->n_chans; i++)
        if (!c->chans[i]->removed && mk_id_eq(&c->chans[i]->peer, peer))
            return c->chans[i];
    return NULL;
}

static void backoff_reset(chan *ch)
{
    ch->series_start = 0;
    ch->interval_ms = ch->c->bo.initial_ms;
}

/* Schedules the next attempt, or gives the producer up (terminated until
 * its next catalog change) once failures have lasted max_elapsed. */
static void retry_later(chan *ch)
{
    mk_consumer *c = ch->c;
    const mk_backoff_config *bo = &c->bo;
    int64_t now = mk_mono_ms();
    if (!ch->series_start) {
        ch->series_start = now;
        ch->interval_ms = bo->initial_ms;
    }
    if (now - ch->series_start >= (int64_t)bo->max_elapsed_ms) {
        ch->st = CH_TERMINATED;
        return;
    }
    uint64_t span = (uint64_t)ch->interval_ms * bo->jitter_pct / 100;
    uint64_t delay = ch->interval_ms - span +
                     mk__stream_rand(&c->rng) % (2 * span + 1);
    uint64_t next = (uint64_t)ch->interval_ms * bo->multiplier_pct / 100;
    ch->interval_ms = next > bo->max_interval_ms ? bo->max_interval_ms
                                                 : (uint32_t)next;
    ch->st = CH_WAIT;
    ch->retry_at = now + (int64_t)delay;
    rearm(c);
}

/* Ends the channel's link from our side. */
static void close_link(chan *ch, uint32_t code, const char *why, bool retry)
{
    if (!ch->link)
        return;
    ch->we_closed = true;
    ch->retry_after_close = retry;
    mk_link_close(ch->link, code, why);
}

/* The producer no longer qualifies (or we are closing): drop it. */
static void drop(chan *ch, uint32_t code)
{
    disconnected(ch, code);
    ch->removed = true;
    ch->c->dirty = true;
    ch->st = ch->st == CH_DIALING ? CH_DIALING : CH_TERMINATED;
    close_link(ch, code, NULL, false);
}

static void on_chan_frame(mk_link *link, const uint8_t *f, size_t len,
                          void *data);
static void on_chan_close(mk_link *link, uint32_t code, int status,
                          void *data);

static void on_dialled(mk_link *link, int status, void *data)
{
    chan *ch = data;
    mk_consumer *c = ch->c;
    enter(c);
    ch->st = CH_TERMINATED;
    c->dirty = true;
    if (status < 0) {
        if (!ch->removed && !c->closing)
            retry_later(ch);
        goto out;
    }
    ch->link = link;
    ch->we_closed = false;
    mk_link_set_callbacks(link, on_chan_frame, on_chan_close, ch);
    if (ch->removed || c->closing) {
        close_link(ch, MK_CLOSE_CANCELLED, NULL, false);
        goto out;
    }
    mk_buf b;
    mk_buf_init(&b);
    int rc = mk__stream_handshake_encode(&b, mk_node_network(c->node),
                                         &c->stream, c->criteria,
                                         c->criteria_len);
    if (rc == 0)
        rc = mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
    ch->st = CH_HANDSHAKE;
    if (rc < 0)
        close_link(ch, MK_CLOSE_CANCELLED, "cannot send the handshake", true);
out:
    leave(c);
}

static void start_chan(chan *ch)
{
    mk_consumer *c = ch->c;
    ch->retry_at = 0;
    ch->st = CH_DIALING;
    int rc = mk_node_dial(c->node, &ch->peer, MK_ALPN_STREAMS, on_dialled, ch);
    if (rc == MK_ENOENT)
        ch->st = CH_TERMINATED; /* no address: wait for a catalog change */
    else if (rc < 0)
        retry_later(ch);
}

static chan *new_chan(mk_consumer *c, const mk_peer_id *peer)
{
    if (c->n_chans == c->cap_chans) {
        size_t cap = c->cap_chans ? 2 * c->cap_chans : 4;
        chan **grown = realloc(c->chans, cap * sizeof *grown);
        if (!grown)
            return NULL;
        c->chans = grown;
        c->cap_chans = cap;
    }
    chan *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->c = c;
    ch->peer = *peer;
    ch->st = CH_TERMINATED;
    ch->expires_ms = MK_TICKET_NEVER;
    backoff_reset(ch);
    c->chans[c->n_chans++] = ch;
    return ch;
}

/* ---- delivery -------------------------------------------------------------------- */

static int hold(chan *ch, const uint8_t *f, size_t len)
{
    if (ch->n_held >= ch->c->buffer_size)
        return MK_EFULL;
    held *h = malloc(sizeof *h + len);
    if (!h)
        return MK_ENOMEM;
    h->next = NULL;
    h->len = len;
    if (len)
        memcpy(h->data, f, len);
    if (ch->held_tail)
        ch->held_tail->next = h;
    else
        ch->held_head = h;
    ch->held_tail = h;
    ch->n_held++;
    return 0;
}

static void pause_links(mk_consumer *c)
{
    for (size_t i = 0; i < c->n_chans; i++)
        if (c->chans[i]->link && c->chans[i]->st == CH_CONNECTED)
            mk_link_pause(c->chans[i]->link);
}

/* Hands one datum to the application: 1 taken, 0 refused for now (the
 * consumer is paused), or a negative code when it cannot be decoded. */
static int deliver(chan *ch, const uint8_t *f, size_t len)
{
    mk_consumer *c = ch->c;
    const void *value = NULL;
    if (c->codec) {
        memset(c->scratch, 0, c->codec->size);
        int rc = c->codec->decode(f, len, c->scratch);
        if (rc < 0)
            return rc;
        value = c->scratch;
    }
    mk_datum d = {.producer = &ch->peer, .bytes = f, .len = len,
                  .value = value};
    int rc = c->on_datum(c, &d, c->data);
    if (value && c->codec->clear)
        c->codec->clear(c->scratch);
    if (rc == MK_EAGAIN) {
        if (!c->paused) {
            c->paused = true;
            pause_links(c);
        }
        return 0;
    }
    ch->stats.items++;
    ch->stats.bytes += len;
    c->totals.items++;
    c->totals.bytes += len;
    backoff_reset(ch);
    return 1;
}

/* A datum the producer sent that we cannot read means the producer is
 * broken, not the link: give it up (§4.4). */
static void undecodable(chan *ch)
{
    disconnected(ch, MK_CLOSE_PROTOCOL_VIOLATION);
    ch->st = CH_TERMINATED;
    close_link(ch, MK_CLOSE_PROTOCOL_VIOLATION, "datum does not decode",
               false);
}

static void on_datum_frame(chan *ch, const uint8_t *f, size_t len)
{
    mk_consumer *c = ch->c;
    if (c->paused || ch->n_held) {
        /* Keep order behind what is held already. */
        if (hold(ch, f, len) < 0) {
            disconnected(ch, MK_CLOSE_CANCELLED);
            close_link(ch, MK_CLOSE_CANCELLED, "consumer buffer full", true);
            status_update(c);
        }
        return;
    }
    int rc = deliver(ch, f, len);
    if (rc < 0) {
        undecodable(ch);
        status_update(c);
    } else if (rc == 0 && hold(ch, f, len) < 0) {
        disconnected(ch, MK_CLOSE_CANCELLED);
        close_link(ch, MK_CLOSE_CANCELLED, "consumer buffer full", true);
        status_update(c);
    }
}

static void on_start_frame(chan *ch, const uint8_t *f, size_t len)
{
    mk_consumer *c = ch->c;
    mk_id net, stream;
    if (mk__stream_start_decode(f, len, &net, &stream) != 0) {
        ch->st = CH_TERMINATED;
        close_link(ch, MK_CLOSE_PROTOCOL_VIOLATION, "bad StartStream", false);
        return;
    }
    if (!mk_id_eq(&net, mk_node_network(c->node)) ||
        !mk_id_eq(&stream, &c->stream)) {
        ch->st = CH_TERMINATED;
        close_link(ch,
                   mk_id_eq(&net, mk_node_network(c->node))
                       ? MK_CLOSE_STREAM_NOT_FOUND
                       : MK_CLOSE_DIFFERENT_NETWORK,
                   NULL, false);
        return;
    }
    ch->st = CH_CONNECTED;
    ch->connected_at_ms = mk_now_ms();
    ch->last_code = 0;
    backoff_reset(ch);
    c->n_connected++;
    if (c->paused)
        mk_link_pause(ch->link);
    notify(c, ch, true, 0);
    status_update(c);
}

static void on_chan_frame(mk_link *link, const uint8_t *f, size_t len,
                          void *data)
{
    chan *ch = data;
    mk_consumer *c = ch->c;
    if (ch->we_closed)
        return;
    enter(c);
    if (ch->st == CH_HANDSHAKE)
        on_start_frame(ch, f, len);
    else if (ch->st == CH_CONNECTED)
        on_datum_frame(ch, f, len);
    leave(c);
}

/* What a producer's close code means for us (§4.4). */
static bool unrecoverable(uint32_t code)
{
    switch (code) {
    case MK_CLOSE_STREAM_NOT_ALLOWED:
    case MK_CLOSE_GRACEFUL_SHUTDOWN:
    case MK_CLOSE_STREAM_NOT_FOUND:
    case MK_CLOSE_DIFFERENT_NETWORK:
        return true;
    default:
        return false;
    }
}

static void on_chan_close(mk_link *link, uint32_t code, int status,
                          void *data)
{
    chan *ch = data;
    mk_consumer *c = ch->c;
    enter(c);
    ch->link = NULL;
    c->dirty = true;
    if (ch->we_closed) {
        ch->we_closed = false;
        if (ch->retry_after_close && !ch->removed && !c->closing)
            retry_later(ch);
        goto out;
    }
    bool was = ch->st == CH_CONNECTED;
    disconnected(ch, code);
    ch->last_code = code;
    if (ch->removed || c->closing) {
        ch->st = CH_TERMINATED;
    } else if (unrecoverable(code)) {
        ch->st = CH_TERMINATED;
    } else {
        if (code == MK_CLOSE_UNKNOWN_PEER)
            /* The producer does not know us yet: give it our entry (and
             * take its latest), then try again after the backoff. */
            mk_node_sync_with(c->node, &ch->peer, NULL);
        retry_later(ch);
    }
    if (was)
        status_update(c);
out:
    leave(c);
}

/* (Re)starts a channel for an eligible producer. */
static void admit(mk_consumer *c, const mk_peer_id *peer, int64_t expires)
{
    chan *ch = find_chan(c, peer);
    if (!ch) {
        ch = new_chan(c, peer);
        if (!ch)
            return; /* retried on the next catalog change */
        ch->expires_ms = expires;
        start_chan(ch);
        return;
    }
    ch->expires_ms = expires;
    if (ch->st == CH_TERMINATED && !ch->link) {
        /* Refused or given up before: the catalog changed, try afresh. */
        backoff_reset(ch);
        start_chan(ch);
    }
}

static void judge_peer(mk_consumer *c, const mk_peer_id *peer)
{
    int64_t expires = MK_TICKET_NEVER;
    int rc = judge(c, peer, &expires);
    if (rc == MK_ENOMEM)
        return; /* undecided: leave things as they are */
    if (rc == 0) {
        admit(c, peer, expires);
        return;
    }
    chan *ch = find_chan(c, peer);
    if (ch)
        drop(ch, MK_CLOSE_CANCELLED);
}

static void on_catalog(mk_node *node, mk_peer_event ev,
                       const mk_peer_entry *e, void *data)
{
    mk_consumer *c = data;
    if (c->closing)
        return;
    enter(c);
    if (ev == MK_PEER_DEPARTED) {
        chan *ch = find_chan(c, &e->peer);
        if (ch)
            drop(ch, MK_CLOSE_CANCELLED);
    } else {
        judge_peer(c, &e->peer);
    }
    rearm(c);
    /* Tags may have changed: conditions count producers by tag. */
    status_update(c);
    leave(c);
}

/* ---- the timer: retries, expiries, redelivery ----------------------------------- */

static void redeliver(mk_consumer *c)
{
    for (size_t i = 0; i < c->n_chans && !c->paused && !c->closing; i++) {
        chan *ch = c->chans[i];
        while (ch->held_head && !c->paused && !c->closing) {
            held *h = ch->held_head;
            int rc = ch->removed ? 1 : deliver(ch, h->data, h->len);
            if (rc == 0)
                break; /* refused again: paused */
            ch->held_head = h->next;
            if (!ch->held_head)
                ch->held_tail = NULL;
            ch->n_held--;
            free(h);
            if (rc < 0) {
                held_clear(ch);
                undecodable(ch);
                status_update(c);
            }
        }
    }
    if (c->paused || c->closing)
        return;
    for (size_t i = 0; i < c->n_chans; i++)
        if (c->chans[i]->link && c->chans[i]->st == CH_CONNECTED)
            mk_link_resume(c->chans[i]->link);
}

static void on_timer(uv_timer_t *t)
{
    mk_consumer *c = t->data;
    enter(c);
    if (c->redeliver) {
        c->redeliver = false;
        redeliver(c);
    }
    int64_t mono = mk_mono_ms(), now = mk_now_ms();
    for (size_t i = 0; i < c->n_chans && !c->closing; i++) {
        chan *ch = c->chans[i];
        if (ch->removed)
            continue;
        if (ch->expires_ms <= now && ch->st != CH_TERMINATED) {
            /* A refreshed ticket may have arrived with a catalog update
             * we judged already; judge again rather than assume. */
            mk_peer_id peer = ch->peer;
            judge_peer(c, &peer);
            continue;
        }
        if (ch->st == CH_WAIT && ch->retry_at <= mono)
            start_chan(ch);
    }
    rearm(c);
    status_update(c);
    leave(c);
}

static void rearm(mk_consumer *c)
{
    if (c->closing)
        return;
    if (c->redeliver) {
        uv_timer_start(&c->timer, on_timer, 0, 0);
        return;
    }
    int64_t mono = mk_mono_ms();
    uint64_t delay = UINT64_MAX;
    for (size_t i = 0; i < c->n_chans; i++) {
        const chan *ch = c->chans[i];
        if (ch->removed)
            continue;
        if (ch->st == CH_WAIT) {
            uint64_t d = ch->retry_at > mono ? (uint64_t)(ch->retry_at - mono)
                                             : 0;
            if (d < delay)
                delay = d;
        }
        /* A terminated channel has nothing to cut at expiry. */
        if (ch->expires_ms != MK_TICKET_NEVER && ch->st != CH_TERMINATED) {
            uint64_t d = mk__stream_delay_until(ch->expires_ms);
            if (d < delay)
                delay = d;
        }
    }
    if (delay == UINT64_MAX)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, delay, 0);
}

/* ---- the API ----------------------------------------------------------------------- */

static bool collect(const mk_peer_info *p, void *data)
{
    mk_consumer *c = data;
    if (mk_entry_has_stream(p->entry, &c->stream) &&
        !find_chan(c, &p->entry->peer))
        new_chan(c, &p->entry->peer); /* judged after the walk */
    return true;
}

static void defaults(mk_backoff_config *bo)
{
#define DEF(f, v)                                                             \
    if (bo->f == 0)                                                           \
    bo->f = (v)
    DEF(initial_ms, 500);
    DEF(multiplier_pct, 150);
    DEF(jitter_pct, 50);
    DEF(max_interval_ms, 60000);
    DEF(max_elapsed_ms, 300000);
#undef DEF
    if (bo->jitter_pct > 100)
        bo->jitter_pct = 100;
    if (bo->multiplier_pct < 100)
        bo->multiplier_pct = 100;
}

int mk_consumer_open(mk_streams *s, const mk_consumer_config *cfg,
                     mk_consumer **out, char *err)
{
    static const mk_stream_cond at_once = {.min = 0};
    int rc;
    *out = NULL;
    if (!cfg->on_datum)
        return mk_errf(err, MK_EINVAL, "a consumer needs on_datum");
    if (cfg->criteria_len > MK_STREAM_CRITERIA_MAX)
        return mk_errf(err, MK_EINVAL,
                       "criteria longer than MK_STREAM_CRITERIA_MAX");
    if (cfg->online_when && cfg->online_when->kind != MK_WHEN_SUBSCRIBED)
        return mk_errf(err, MK_EINVAL, "online_when must count producers");
    if (cfg->codec && (!cfg->codec->decode || cfg->codec->size == 0))
        return mk_errf(err, MK_EINVAL, "the codec has no decode or no size");
    for (size_t i = 0; i < cfg->n_require; i++)
        if (!cfg->require[i].fn)
            return mk_errf(err, MK_EINVAL,
                           "a require predicate has no function");
    mk_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return MK_ENOMEM;
    c->s = s;
    c->node = mk_streams_node(s);
    c->stream = cfg->stream;
    c->codec = cfg->codec;
    c->on_datum = cfg->on_datum;
    c->on_producer = cfg->on_producer;
    c->data = cfg->data;
    c->buffer_size = cfg->buffer_size ? cfg->buffer_size
                                      : MK_STREAM_BUFFER_DEFAULT;
    c->bo = cfg->backoff;
    defaults(&c->bo);
    c->rng = (uint64_t)mk_mono_us() ^ (uint64_t)(uintptr_t)c ^
             ((uint64_t)mk_node_id(c->node)->b[0] << 56);

    rc = MK_ENOMEM;
    if (cfg->criteria_len) {
        if (!(c->criteria = malloc(cfg->criteria_len)))
            goto err_after_alloc;
        memcpy(c->criteria, cfg->criteria, cfg->criteria_len);
        c->criteria_len = cfg->criteria_len;
    }
    if (cfg->n_require) {
        if (!(c->require = malloc(cfg->n_require * sizeof *c->require)))
            goto err_after_alloc;
        memcpy(c->require, cfg->require, cfg->n_require * sizeof *c->require);
        c->n_require = cfg->n_require;
    }
    if (cfg->n_validators) {
        c->validators = malloc(cfg->n_validators * sizeof *c->validators);
        if (!c->validators)
            goto err_after_alloc;
        memcpy(c->validators, cfg->validators,
               cfg->n_validators * sizeof *c->validators);
        c->n_validators = cfg->n_validators;
    }
    if (c->codec && !(c->scratch = calloc(1, c->codec->size)))
        goto err_after_alloc;
    rc = mk__cond_copy(&c->online_when,
                       cfg->online_when ? cfg->online_when : &at_once);
    if (rc < 0) {
        mk_errf(err, rc, "%s",
                rc == MK_EINVAL ? "online_when has a NULL tag"
                                : "out of memory");
        goto err_after_alloc;
    }
    rc = mk_node_watch_add(c->node, on_catalog, c, &c->watch);
    if (rc < 0)
        goto err_after_cond;
    uv_timer_init(mk_node_loop(c->node), &c->timer);
    c->timer.data = c;
    s->n_consumers++;

    /* Subscribe to the producers already known; later ones arrive as
     * catalog events. Judging happens after the walk because predicates
     * are application code that must not run inside the catalog's. */
    enter(c);
    mk_node_peers_foreach(c->node, collect, c);
    for (size_t i = 0; i < c->n_chans; i++) {
        mk_peer_id peer = c->chans[i]->peer;
        int64_t expires = MK_TICKET_NEVER;
        chan *ch = c->chans[i];
        if (judge(c, &peer, &expires) == 0) {
            ch->expires_ms = expires;
            start_chan(ch);
        } else {
            ch->removed = true;
            c->dirty = true;
        }
    }
    rearm(c);
    c->online = eval(c, &c->online_when);
    leave(c);
    *out = c;
    return 0;

err_after_cond:
    mk__cond_free(&c->online_when);
err_after_alloc:
    free(c->scratch);
    free(c->validators);
    free(c->require);
    free(c->criteria);
    free(c);
    return rc;
}

void mk_consumer_close(mk_consumer *c, mk_close_cb cb, void *data)
{
    if (c->closing)
        return;
    enter(c);
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    mk_node_unwatch(c->watch);
    uv_timer_stop(&c->timer);
    for (size_t i = 0; i < c->n_chans; i++)
        if (!c->chans[i]->removed)
            drop(c->chans[i], MK_CLOSE_GRACEFUL_SHUTDOWN);
    leave(c);
}

void mk_consumer_pause(mk_consumer *c)
{
    if (c->paused || c->closing)
        return;
    c->paused = true;
    pause_links(c);
}

void mk_consumer_resume(mk_consumer *c)
{
    if (!c->paused || c->closing)
        return;
    c->paused = false;
    /* From the loop, so a resume called inside on_datum does not
     * re-enter it. */
    c->redeliver = true;
    rearm(c);
}

bool mk_consumer_is_online(const mk_consumer *c)
{
    return !c->closing && c->online;
}

const mk_id *mk_consumer_stream(const mk_consumer *c)
{
    return &c->stream;
}

size_t mk_consumer_producers(const mk_consumer *c)
{
    return c->n_connected;
}

void mk_consumer_stats(const mk_consumer *c, mk_stream_stats *out)
{
    *out = c->totals;
}

size_t mk_consumer_channels(const mk_consumer *c, mk_stream_channel *out,
                            size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_chans; i++) {
        const chan *ch = c->chans[i];
        if (ch->removed)
            continue;
        if (n < cap)
            out[n] = (mk_stream_channel){
                .peer = ch->peer,
                .state = ch->st == CH_CONNECTED    ? MK_CHANNEL_CONNECTED
                         : ch->st == CH_TERMINATED ? MK_CHANNEL_TERMINATED
                                                   : MK_CHANNEL_CONNECTING,
                .stats = ch->stats,
                .connected_at_ms = ch->connected_at_ms,
                .last_code = ch->last_code,
                .queued = ch->n_held,
            };
        n++;
    }
    return n;
}

int mk_consumer_when(mk_consumer *c, const mk_stream_cond *cond,
                     mk_stream_when_cb cb, void *data, mk_stream_when **out)
{
    if (c->closing)
        return MK_ECLOSED;
    return mk__whens_add(&c->whens, cond, cb, data, out, eval, c);
}

bool mk_consumer_is_met(const mk_consumer *c, const mk_stream_cond *cond)
{
    mk__cond k = {
        .kind = cond->kind,
        .min = cond->min,
        .tags = (char **)cond->tags,
        .n_tags = cond->n_tags,
        .pred = cond->pred,
        .pred_data = cond->pred_data,
        .unmet = cond->unmet,
    };
    return eval((void *)c, &k);
}
