/* Streams: the per-node service, the two handshake messages, stream ids,
 * the string codec and the condition machinery that producers and
 * consumers share (include/mosaik/stream.h).
 *
 * The service exists because a transport serves each ALPN once and a
 * subscription only names its stream in its first frame: one accept
 * handler per node reads that handshake and hands the link to the producer
 * of the stream it names (reference/mosaik.md §4.2).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "stream_internal.h"

/* A consumer that connects and never says which stream it wants holds a
 * socket and a TLS session; it gets this long. */
#define HANDSHAKE_TIMEOUT_MS 10000
#define SWEEP_MS 1000

/* ---- ids ------------------------------------------------------------------ */

void mk_stream_id(const mk_id *owner_root, const char *surface, mk_id *out)
{
    mk_id_derive_str(out, owner_root, surface);
}

void mk_stream_id_from_str(mk_id *out, const char *name)
{
    mk_id_from_str(out, name);
}

void mk_stream_id_from_raw(mk_id *out, const uint8_t raw[MK_ID_LEN])
{
    memcpy(out->b, raw, MK_ID_LEN);
}

/* ---- the string codec ----------------------------------------------------- */

static int str_encode(const void *value, mk_buf *out)
{
    const char *s = *(char *const *)value;
    if (!s)
        return MK_EINVAL;
    mk_put_str(out, s);
    return out->err;
}

static int str_decode(const uint8_t *bytes, size_t len, void *out)
{
    mk_reader r;
    mk_reader_init(&r, bytes, len);
    char *s = mk_get_strdup(&r, len);
    if (!s)
        return r.err ? r.err : MK_ENOMEM;
    if (mk_reader_done(&r) != 0) {
        free(s);
        return MK_EDECODE;
    }
    *(char **)out = s;
    return 0;
}

static void str_clear(void *value)
{
    free(*(char **)value);
    *(char **)value = NULL;
}

const mk_datum_codec mk_datum_codec_string = {
    .size = sizeof(char *),
    .encode = str_encode,
    .decode = str_decode,
    .clear = str_clear,
};

/* ---- wire messages --------------------------------------------------------- */

int mk__stream_handshake_encode(mk_buf *b, const mk_id *network,
                                const mk_id *stream, const uint8_t *criteria,
                                size_t criteria_len)
{
    if (criteria_len > MK_STREAM_CRITERIA_MAX)
        return MK_EINVAL;
    mk_put_u8(b, MK__STREAM_MSG_HANDSHAKE);
    mk_put_id(b, network);
    mk_put_id(b, stream);
    mk_put_bytes(b, criteria, criteria_len);
    return b->err;
}

int mk__stream_handshake_decode(const uint8_t *p, size_t len,
                                mk__stream_hello *out)
{
    mk_reader r;
    mk_reader_init(&r, p, len);
    if (mk_get_u8(&r) != MK__STREAM_MSG_HANDSHAKE)
        return MK_EDECODE;
    mk_get_id(&r, &out->network);
    mk_get_id(&r, &out->stream);
    out->criteria =
        mk_get_bytes(&r, &out->criteria_len, MK_STREAM_CRITERIA_MAX);
    if (!out->criteria || mk_reader_done(&r) != 0)
        return MK_EDECODE;
    return 0;
}

void mk__stream_start_encode(mk_buf *b, const mk_id *network,
                             const mk_id *stream)
{
    mk_put_u8(b, MK__STREAM_MSG_START);
    mk_put_id(b, network);
    mk_put_id(b, stream);
}

int mk__stream_start_decode(const uint8_t *p, size_t len, mk_id *network,
                            mk_id *stream)
{
    mk_reader r;
    mk_reader_init(&r, p, len);
    if (mk_get_u8(&r) != MK__STREAM_MSG_START)
        return MK_EDECODE;
    mk_get_id(&r, network);
    mk_get_id(&r, stream);
    return mk_reader_done(&r) == 0 ? 0 : MK_EDECODE;
}

/* ---- small helpers ---------------------------------------------------------- */

uint64_t mk__stream_rand(uint64_t *state)
{
    /* xorshift64*: jitter only, never security. */
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

uint64_t mk__stream_delay_until(int64_t at_ms)
{
    const int64_t day = 24 * 3600 * 1000;
    int64_t d = at_ms - mk_now_ms();
    if (d < 0)
        return 0;
    return (uint64_t)(d > day ? day : d);
}

/* ---- conditions --------------------------------------------------------------- */

int mk__cond_copy(mk__cond *dst, const mk_stream_cond *src)
{
    memset(dst, 0, sizeof *dst);
    if (src->kind != MK_WHEN_SUBSCRIBED && src->kind != MK_WHEN_ONLINE)
        return MK_EINVAL;
    if (src->n_tags) {
        dst->tags = calloc(src->n_tags, sizeof *dst->tags);
        if (!dst->tags)
            return MK_ENOMEM;
        for (size_t i = 0; i < src->n_tags; i++) {
            if (!src->tags[i] || !(dst->tags[i] = strdup(src->tags[i]))) {
                dst->n_tags = i;
                mk__cond_free(dst);
                return src->tags[i] ? MK_ENOMEM : MK_EINVAL;
            }
        }
    }
    dst->n_tags = src->n_tags;
    dst->kind = src->kind;
    dst->min = src->min;
    dst->pred = src->pred;
    dst->pred_data = src->pred_data;
    dst->unmet = src->unmet;
    return 0;
}

void mk__cond_free(mk__cond *c)
{
    for (size_t i = 0; i < c->n_tags; i++)
        free(c->tags[i]);
    free(c->tags);
    memset(c, 0, sizeof *c);
}

bool mk__cond_peer_matches(const mk__cond *c, mk_node *node,
                           const mk_peer_id *peer)
{
    if (c->n_tags == 0 && !c->pred)
        return true;
    mk_peer_info info;
    if (!mk_node_peer(node, peer, &info))
        return false;
    for (size_t i = 0; i < c->n_tags; i++)
        if (!mk_entry_has_tag(info.entry, c->tags[i]))
            return false;
    return !c->pred || c->pred(info.entry, c->pred_data);
}

bool mk__cond_value(const mk__cond *c, size_t matching, bool online)
{
    bool v = c->kind == MK_WHEN_ONLINE ? online : matching >= c->min;
    return c->unmet ? !v : v;
}

int mk__whens_add(mk__whens *ws, const mk_stream_cond *cond,
                  mk_stream_when_cb cb, void *data, mk_stream_when **out,
                  mk__cond_eval_fn eval, void *ctx)
{
    if (!cond || !cb)
        return MK_EINVAL;
    mk_stream_when *w = calloc(1, sizeof *w);
    if (!w)
        return MK_ENOMEM;
    int rc = mk__cond_copy(&w->cond, cond);
    if (rc < 0) {
        free(w);
        return rc;
    }
    w->set = ws;
    w->cb = cb;
    w->data = data;
    w->last = eval(ctx, &w->cond);
    /* Appended: callbacks run in registration order. */
    mk_stream_when **pp = &ws->head;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
    if (out)
        *out = w;
    return w->last ? 1 : 0;
}

static void whens_sweep(mk__whens *ws)
{
    mk_stream_when **pp = &ws->head;
    while (*pp) {
        mk_stream_when *w = *pp;
        if (w->removed) {
            *pp = w->next;
            mk__cond_free(&w->cond);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

void mk__whens_update(mk__whens *ws, mk__cond_eval_fn eval, void *ctx)
{
    ws->dispatching++;
    for (mk_stream_when *w = ws->head; w; w = w->next) {
        if (w->removed)
            continue;
        bool v = eval(ctx, &w->cond);
        if (v == w->last)
            continue;
        w->last = v;
        w->cb(v, w->data);
    }
    if (--ws->dispatching == 0)
        whens_sweep(ws);
}

void mk__whens_free(mk__whens *ws)
{
    for (mk_stream_when *w = ws->head, *next; w; w = next) {
        next = w->next;
        mk__cond_free(&w->cond);
        free(w);
    }
    ws->head = NULL;
}

void mk_stream_when_cancel(mk_stream_when *w)
{
    if (!w)
        return;
    w->removed = true;
    if (w->set->dispatching == 0)
        whens_sweep(w->set);
}

/* ---- the service: routing subscriptions ------------------------------------- */

struct mk__pending {
    mk_streams *s;
    mk_link *link;
    int64_t deadline_mono;
    bool closing; /* refused: waiting for the link to end */
    mk__pending *next;
};

static void pending_unlink(mk__pending *pd)
{
    for (mk__pending **pp = &pd->s->pending; *pp; pp = &(*pp)->next)
        if (*pp == pd) {
            *pp = pd->next;
            return;
        }
}

static void refuse(mk__pending *pd, uint32_t code, const char *why)
{
    pd->closing = true;
    /* Last use of `pd` here: the close callback frees it. */
    mk_link_close(pd->link, code, why);
}

static void maybe_freed(mk_streams *s);

static void on_pending_close(mk_link *link, uint32_t code, int status,
                             void *data)
{
    mk__pending *pd = data;
    mk_streams *s = pd->s;
    pending_unlink(pd);
    free(pd);
    maybe_freed(s);
}

static void on_pending_frame(mk_link *link, const uint8_t *f, size_t len,
                             void *data)
{
    mk__pending *pd = data;
    mk_streams *s = pd->s;
    if (pd->closing)
        return;
    mk__stream_hello h;
    if (mk__stream_handshake_decode(f, len, &h) != 0) {
        refuse(pd, MK_CLOSE_PROTOCOL_VIOLATION, "bad stream handshake");
        return;
    }
    if (!mk_id_eq(&h.network, mk_node_network(s->node))) {
        refuse(pd, MK_CLOSE_DIFFERENT_NETWORK, NULL);
        return;
    }
    mk_producer *p = NULL;
    for (size_t i = 0; i < s->n_producers; i++)
        if (mk_id_eq(mk__producer_stream(s->producers[i]), &h.stream))
            p = s->producers[i];
    if (!p) {
        refuse(pd, MK_CLOSE_STREAM_NOT_FOUND, NULL);
        return;
    }
    char why[MK_ERRMSG_SIZE] = "";
    uint32_t code = mk__producer_accept(p, link, &h, why);
    if (code) {
        refuse(pd, code, why[0] ? why : NULL);
        return;
    }
    /* The producer installed its own callbacks; this record is done. */
    pending_unlink(pd);
    free(pd);
}

static void on_sweep(uv_timer_t *t)
{
    mk_streams *s = t->data;
    int64_t now = mk_mono_ms();
    for (mk__pending *pd = s->pending, *next; pd; pd = next) {
        next = pd->next;
        if (!pd->closing && pd->deadline_mono <= now)
            refuse(pd, MK_CLOSE_PROTOCOL_VIOLATION, "no stream handshake");
    }
    if (!s->pending) {
        uv_timer_stop(&s->timer);
        s->timer_on = false;
    }
}

static void on_accept(mk_link *link, void *data)
{
    mk_streams *s = data;
    mk__pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    pd->s = s;
    pd->link = link;
    pd->deadline_mono = mk_mono_ms() + HANDSHAKE_TIMEOUT_MS;
    pd->next = s->pending;
    s->pending = pd;
    mk_link_set_callbacks(link, on_pending_frame, on_pending_close, pd);
    /* Judged before the handshake is read (mosaik's acceptor does the
     * same): an unknown consumer learns it must sync its catalog with us
     * first, and then retries (§4.4). */
    mk_peer_info info;
    if (s->closing || !mk_node_peer(s->node, mk_link_peer(link), &info)) {
        refuse(pd, s->closing ? MK_CLOSE_STREAM_NOT_FOUND
                              : MK_CLOSE_UNKNOWN_PEER,
               NULL);
        return;
    }
    if (!s->timer_on) {
        uv_timer_start(&s->timer, on_sweep, SWEEP_MS, SWEEP_MS);
        s->timer_on = true;
    }
}

/* The key of the node extension through which the node tells the
 * service it is closing: after that the node may be freed before
 * mk_streams_close, which must then leave it alone. */
static const char node_key;

static void on_node_closing(void *value)
{
    mk_streams *s = value;
    s->node_closing = true;
}

int mk_streams_new(mk_node *node, mk_streams **out)
{
    *out = NULL;
    mk_streams *s = calloc(1, sizeof *s);
    if (!s)
        return MK_ENOMEM;
    s->node = node;
    int rc = mk_node_set_extension(node, &node_key, s, on_node_closing);
    if (rc == 0) {
        rc = mk_transport_serve(mk_node_transport(node), MK_ALPN_STREAMS,
                                on_accept, s);
        if (rc < 0)
            mk_node_remove_extension(node, &node_key);
    }
    if (rc < 0) {
        free(s);
        return rc;
    }
    uv_timer_init(mk_node_loop(node), &s->timer);
    s->timer.data = s;
    *out = s;
    return 0;
}

mk_node *mk_streams_node(const mk_streams *s)
{
    return s->node;
}

/* Frees once nothing refers to `s`: its timer has closed and every
 * pending link has run its close callback (which unlinks the record). */
static void maybe_freed(mk_streams *s)
{
    if (!s->closing || !s->timer_closed || s->pending)
        return;
    mk_close_cb cb = s->close_cb;
    void *data = s->close_data;
    free(s->producers);
    free(s);
    if (cb)
        cb(data);
}

static void on_timer_closed(uv_handle_t *h)
{
    mk_streams *s = h->data;
    s->timer_closed = true;
    maybe_freed(s);
}

void mk_streams_close(mk_streams *s, mk_close_cb cb, void *data)
{
    if (s->closing)
        return;
    /* A producer or consumer still open would point at freed memory. */
    assert(s->n_producers == 0 && s->n_consumers == 0);
    s->closing = true;
    s->close_cb = cb;
    s->close_data = data;
    /* From here no new link reaches `s`. Once the node is closing its
     * transport ends the pending links itself, and the node may already
     * be gone. */
    if (!s->node_closing) {
        mk_transport_unserve(mk_node_transport(s->node), MK_ALPN_STREAMS);
        mk_node_remove_extension(s->node, &node_key);
    }
    /* `next` first: a link that cannot stage its close ends at once. */
    for (mk__pending *pd = s->pending, *next; pd; pd = next) {
        next = pd->next;
        if (!pd->closing)
            refuse(pd, MK_CLOSE_GRACEFUL_SHUTDOWN, "streams closed");
    }
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

int mk__streams_add_producer(mk_streams *s, mk_producer *p)
{
    const mk_id *id = mk__producer_stream(p);
    for (size_t i = 0; i < s->n_producers; i++)
        if (mk_id_eq(mk__producer_stream(s->producers[i]), id))
            return MK_EEXIST;
    if (s->n_producers == s->cap_producers) {
        size_t cap = s->cap_producers ? 2 * s->cap_producers : 4;
        mk_producer **grown = realloc(s->producers, cap * sizeof *grown);
        if (!grown)
            return MK_ENOMEM;
        s->producers = grown;
        s->cap_producers = cap;
    }
    s->producers[s->n_producers++] = p;
    return 0;
}

void mk__streams_remove_producer(mk_streams *s, mk_producer *p)
{
    for (size_t i = 0; i < s->n_producers; i++)
        if (s->producers[i] == p) {
            s->producers[i] = s->producers[--s->n_producers];
            return;
        }
}
