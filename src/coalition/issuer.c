/* The coalition's ticket issuer and the request that asks it for a ticket
 * (include/coalition/issuer.h).
 *
 * An issuer is an ALPN handler on its node's transport: each accepted
 * link carries one request, gets one answer, and is closed. The subject
 * of every ticket is the link's authenticated remote, so the request
 * needs to name nothing but the root it expects (a requester that
 * compiled in another coalition is told so instead of being handed a
 * ticket nobody it cares about recognises).
 *
 * A requester finds issuers by their tag in the catalog, dials one,
 * and checks the answer with the very validator components use
 * (co_tickets_recognise), so what it installs is what they accept.
 */
#include "coalition/issuer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "coalition/identity.h"
#include "mosaik/clock.h"
#include "mosaik/codec.h"
#include "mosaik/entry.h"
#include "mosaik/error.h"
#include "mosaik/jwt.h"
#include "logline.h"

#define WIRE_VERSION 1
#define ANSWER_ISSUED 0
#define ANSWER_REFUSED 1
#define REQUEST_WAIT_MS 5000  /* a link that sends no request is dropped */
#define SWEEP_MS 1000
#define MAX_TTL_S (10LL * 365 * 86400)
#define RETRY_MS 100          /* requester: look for an issuer again */
#define AVOID_MS 1000         /* requester: after an issuer failed us */
#define MAX_AVOID 16
#define MAX_REASON 200

int co_issuer_keys(const co_coalition_config *cfg, mk_id *root,
                   mk_peer_id *keys, size_t *n, char *err)
{
    mk_id r;
    int rc = co_tickets_root(cfg, &r, err);
    if (rc < 0)
        return rc;
    const co_acl *acl = &cfg->ticket_issuer->acl;
    if (acl->n_issuers == 0 || acl->n_issuers > CO_ISSUER_MAX_KEYS)
        return mk_errf(err, CO_ECONFIG,
                       "ticket_issuer: acl.issuers must list 1 to %d "
                       "signing keys, found %zu",
                       CO_ISSUER_MAX_KEYS, acl->n_issuers);
    for (size_t i = 0; i < acl->n_issuers; i++) {
        const char *s = acl->issuers[i];
        mk_peer_id k;
        /* A key must be the key itself: id() would hash any other string
         * into 32 bytes that no signature can ever verify under. */
        if (mk_id_from_hex(&k, s, strlen(s)) != 0)
            return mk_errf(err, CO_ECONFIG,
                           "ticket_issuer: acl.issuers[%zu] \"%s\" is not "
                           "an Ed25519 public key (64 hex)",
                           i, s);
        if (keys)
            keys[i] = k;
    }
    if (root)
        *root = r;
    if (n)
        *n = acl->n_issuers;
    return 0;
}

int co_tickets_recognise(const co_coalition_config *cfg,
                         struct mk_ticket_validator *v, char *err)
{
    mk_id root;
    mk_peer_id keys[CO_ISSUER_MAX_KEYS];
    size_t n;
    memset(v, 0, sizeof *v);
    int rc = co_issuer_keys(cfg, &root, keys, &n, err);
    if (rc < 0)
        return rc;
    char why[MK_ERRMSG_SIZE] = "";
    rc = mk_jwt_recognise_issuer(&root, keys, n, v, why);
    if (rc < 0)
        mk_errf(err, rc, "ticket validator: %s", why);
    return rc;
}

static void tag_of(const mk_id *root, char *out, size_t len)
{
    char hex[MK_ID_HEX_LEN + 1];
    snprintf(out, len, "%s%s", CO_TICKETS_TAG_PREFIX, mk_id_hex(root, hex));
}

/* ---- the issuer ------------------------------------------------------------ */

typedef struct conn conn;

struct co_issuer {
    mk_node *node;
    mk_keypair key;
    mk_id root;
    char root_hex[MK_ID_HEX_LEN + 1];
    char tag[128];
    bool allow_any;
    mk_peer_id *allow;
    size_t n_allow;
    int64_t ttl_s;
    char *audience;
    void (*log)(const char *, const char *, void *);
    void *log_data;
    uv_timer_t sweep;
    conn *conns; /* links waiting for or getting an answer */
    bool stopped, sweep_closed;
    uint64_t issued, refused, counter;
    int64_t started_ms;
    mk_close_cb close_cb;
    void *close_data;
};

struct conn {
    conn *next;
    co_issuer *is;
    mk_link *link;
    int64_t deadline;
    bool answered;
};

static void say(co_issuer *is, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(co_issuer *is, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    co__vlog(is->log, is->log_data, level, NULL, fmt, ap);
    va_end(ap);
}

static void conn_unlink(conn *c)
{
    for (conn **p = &c->is->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            return;
        }
}

static void answer(conn *c, uint8_t kind, const void *bytes, size_t len)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, kind);
    mk_put_bytes(&b, bytes, len);
    c->answered = true;
    if (!b.err)
        mk_link_send(c->link, b.data, b.len);
    mk_buf_free(&b);
    /* The close frame follows the answer: the requester reads both. */
    mk_link_close(c->link, MK_CLOSE_SUCCESS, NULL);
}

static void refuse(conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void refuse(conn *c, const char *fmt, ...)
{
    char why[MAX_REASON], hex[MK_ID_HEX_LEN + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    c->is->refused++;
    say(c->is, "INFO", "tickets: refused %s: %s",
        mk_id_hex(mk_link_peer(c->link), hex), why);
    answer(c, ANSWER_REFUSED, why, strlen(why));
}

static bool allowed(const co_issuer *is, const mk_peer_id *peer)
{
    if (is->allow_any)
        return true;
    for (size_t i = 0; i < is->n_allow; i++)
        if (mk_id_eq(&is->allow[i], peer))
            return true;
    return false;
}

static void issue(conn *c)
{
    co_issuer *is = c->is;
    const mk_peer_id *peer = mk_link_peer(c->link);
    char jti[48], why[MK_ERRMSG_SIZE] = "", hex[MK_ID_HEX_LEN + 1];
    int64_t now = mk_now_ms() / 1000;
    /* jti: unique per issuer run, so an auditor can tell tickets apart. */
    snprintf(jti, sizeof jti, "%.16s-%llx-%llu",
             mk_id_hex(&is->key.pub, hex),
             (unsigned long long)is->started_ms,
             (unsigned long long)++is->counter);
    mk_jwt_claims claims = {
        .iss = is->root_hex,
        .sub = NULL, /* the authenticated remote, as 64 hex */
        .aud = is->audience,
        .jti = jti,
        .iat = now,
        .exp = now + is->ttl_s,
    };
    char *token = NULL;
    int rc = mk_jwt_issue(&is->key, peer, &claims, &token, why);
    if (rc < 0) {
        refuse(c, "cannot issue: %s", why);
        return;
    }
    is->issued++;
    say(is, "INFO", "tickets: issued a ticket to %s, valid %llds",
        mk_id_hex(peer, hex), (long long)is->ttl_s);
    answer(c, ANSWER_ISSUED, token, strlen(token));
    free(token);
}

static void on_request(mk_link *link, const uint8_t *f, size_t len,
                       void *data)
{
    conn *c = data;
    if (c->answered || c->is->stopped)
        return;
    mk_reader r;
    mk_reader_init(&r, f, len);
    uint8_t version = mk_get_u8(&r);
    mk_id root;
    mk_get_id(&r, &root);
    if (mk_reader_done(&r) != 0 || version != WIRE_VERSION) {
        refuse(c, "malformed request (this issuer speaks version %d)",
               WIRE_VERSION);
        return;
    }
    if (!mk_id_eq(&root, &c->is->root)) {
        refuse(c, "this issuer serves TICKETS_ROOT %s: the requester's "
                  "coalition config derives another root",
               c->is->root_hex);
        return;
    }
    if (!allowed(c->is, mk_link_peer(link))) {
        refuse(c, "the issuer's policy does not allow this peer");
        return;
    }
    issue(c);
}

static void maybe_freed(co_issuer *is);

static void on_conn_closed(mk_link *link, uint32_t code, int status,
                           void *data)
{
    conn *c = data;
    co_issuer *is = c->is;
    conn_unlink(c);
    free(c);
    if (is->stopped)
        maybe_freed(is);
}

static void on_accept(mk_link *link, void *data)
{
    co_issuer *is = data;
    conn *c = is->stopped ? NULL : calloc(1, sizeof *c);
    if (!c) {
        mk_link_close(link, MK_CLOSE_GRACEFUL_SHUTDOWN,
                      is->stopped ? "issuer stopped" : "out of memory");
        return;
    }
    c->is = is;
    c->link = link;
    c->deadline = mk_mono_ms() + REQUEST_WAIT_MS;
    c->next = is->conns;
    is->conns = c;
    mk_link_set_callbacks(link, on_request, on_conn_closed, c);
}

static void on_sweep(uv_timer_t *t)
{
    co_issuer *is = t->data;
    int64_t now = mk_mono_ms();
    /* Closing only queues the close: the list does not change here. */
    for (conn *c = is->conns; c; c = c->next)
        if (!c->answered && now > c->deadline) {
            c->answered = true;
            mk_link_close(c->link, MK_CLOSE_CANCELLED, "no request in time");
        }
}

int co_issuer_new(const co_issuer_config *cfg, co_issuer **out, char *err)
{
    mk_peer_id keys[CO_ISSUER_MAX_KEYS];
    size_t n;
    mk_id root;
    int rc = co_issuer_keys(cfg->coalition, &root, keys, &n, err);
    if (rc < 0)
        return rc;
    bool on_acl = false;
    for (size_t i = 0; i < n; i++)
        on_acl |= mk_id_eq(&keys[i], &cfg->key->pub);
    if (!on_acl) {
        char hex[MK_ID_HEX_LEN + 1];
        return mk_errf(err, CO_ECONFIG,
                       "ticket issuer key %s is not on the coalition's "
                       "ticket_issuer.acl.issuers: nobody would recognise "
                       "its tickets",
                       mk_id_hex(&cfg->key->pub, hex));
    }
    const co_issuer_policy *p = &cfg->policy;
    int64_t ttl = p->ttl_s ? p->ttl_s : CO_ISSUER_DEFAULT_TTL_S;
    if (ttl > MAX_TTL_S)
        return mk_errf(err, CO_ECONFIG,
                       "ticket issuer: a TTL of %lld s is over ten years",
                       (long long)ttl);
    if (p->audience && (!p->audience[0] || strchr(p->audience, ',')))
        return mk_errf(err, CO_ECONFIG,
                       "ticket issuer: audience \"%s\" is empty or holds "
                       "a ',' (validators could not name it)",
                       p->audience);

    co_issuer *is = calloc(1, sizeof *is);
    if (!is)
        return MK_ENOMEM;
    is->node = cfg->node;
    is->key = *cfg->key;
    is->root = root;
    mk_id_hex(&root, is->root_hex);
    tag_of(&root, is->tag, sizeof is->tag);
    is->allow_any = p->allow_any;
    is->ttl_s = ttl;
    is->log = cfg->log;
    is->log_data = cfg->log_data;
    is->started_ms = mk_now_ms();
    if (!p->allow_any && p->n_allow) {
        is->allow = calloc(p->n_allow, sizeof *is->allow);
        if (!is->allow)
            goto nomem;
        memcpy(is->allow, p->allow, p->n_allow * sizeof *is->allow);
        is->n_allow = p->n_allow;
    }
    if (p->audience && !(is->audience = strdup(p->audience)))
        goto nomem;
    /* The tag first: it is the cheaper one to take back. */
    rc = mk_node_add_tag(cfg->node, is->tag);
    if (rc < 0) {
        mk_errf(err, rc, "ticket issuer: cannot advertise its tag: %s",
                mk_strerror(rc));
        goto fail;
    }
    rc = mk_transport_serve(mk_node_transport(cfg->node), CO_ALPN_TICKETS,
                            on_accept, is);
    if (rc < 0) {
        mk_errf(err, rc, "ticket issuer: cannot serve %s: %s", CO_ALPN_TICKETS,
                mk_strerror(rc));
        mk_node_remove_tag(cfg->node, is->tag);
        goto fail;
    }
    uv_timer_init(mk_node_loop(cfg->node), &is->sweep);
    is->sweep.data = is;
    uv_timer_start(&is->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    say(is, "INFO", "tickets: issuing under %s (%s, %llds tickets)",
        is->root_hex, is->allow_any ? "any peer" : "allow-list",
        (long long)ttl);
    *out = is;
    return 0;
nomem:
    rc = MK_ENOMEM;
fail:
    free(is->allow);
    free(is->audience);
    free(is);
    return rc;
}

/* Frees once nothing refers to `is`: the sweep timer is closed and every
 * link it held has run its close callback (which unlinks the conn). */
static void maybe_freed(co_issuer *is)
{
    if (!is->sweep_closed || is->conns)
        return;
    mk_close_cb cb = is->close_cb;
    void *data = is->close_data;
    free(is->allow);
    free(is->audience);
    free(is);
    if (cb)
        cb(data);
}

static void on_sweep_closed(uv_handle_t *h)
{
    co_issuer *is = h->data;
    is->sweep_closed = true;
    maybe_freed(is);
}

void co_issuer_close(co_issuer *is, mk_close_cb cb, void *data)
{
    if (is->stopped)
        return;
    is->stopped = true;
    is->close_cb = cb;
    is->close_data = data;
    /* No link for the ALPN reaches `is` from here on: it may go before
     * the node. */
    mk_transport_unserve(mk_node_transport(is->node), CO_ALPN_TICKETS);
    mk_node_remove_tag(is->node, is->tag);
    for (conn *c = is->conns; c; c = c->next) {
        c->answered = true;
        mk_link_close(c->link, MK_CLOSE_GRACEFUL_SHUTDOWN, "issuer stopped");
    }
    uv_close((uv_handle_t *)&is->sweep, on_sweep_closed);
}

uint64_t co_issuer_issued(const co_issuer *is)
{
    return is->issued;
}

uint64_t co_issuer_refused(const co_issuer *is)
{
    return is->refused;
}

/* ---- the request ------------------------------------------------------------ */

typedef struct avoid {
    mk_peer_id peer;
    int64_t until;
} avoid;

struct co_ticket_req {
    mk_node *node;
    mk_id root;
    char tag[128];
    struct mk_ticket_validator v;
    bool install;
    co_ticket_cb cb;
    void *data;
    uv_timer_t timer;
    int64_t deadline;
    mk_transport *tp;   /* with `as`: the private transport, else NULL */
    mk_peer_id subject; /* whom the ticket is for */
    char addr[MK_ENTRY_MAX_STR + 1];
    unsigned attempts;
    mk_link *link;
    bool dialing, finished, answered;
    int refs; /* timer, transport, dial in flight, link: freed when all
                 are gone */
    mk_peer_id current;
    avoid avoided[MAX_AVOID];
    size_t n_avoided;
    char why[MAX_REASON + 160];
};

static void req_unref(co_ticket_req *q)
{
    if (--q->refs > 0)
        return;
    mk_ticket_validator_free(&q->v);
    free(q);
}

static void on_req_timer_closed(uv_handle_t *h)
{
    req_unref(h->data);
}

static void on_tp_closed(void *data)
{
    req_unref(data);
}

static void finish(co_ticket_req *q, int status, const char *token,
                   int64_t expires_ms)
{
    if (q->finished)
        return;
    q->finished = true;
    if (q->link)
        mk_link_close(q->link, MK_CLOSE_SUCCESS, NULL);
    uv_timer_stop(&q->timer);
    q->refs++; /* the callback may not free us from under our feet */
    q->cb(q, status, token, expires_ms, status ? q->why : "", q->data);
    uv_close((uv_handle_t *)&q->timer, on_req_timer_closed);
    if (q->tp)
        mk_transport_close(q->tp, on_tp_closed, q);
    req_unref(q);
}

static void avoid_peer(co_ticket_req *q, const mk_peer_id *p)
{
    int64_t until = mk_mono_ms() + AVOID_MS;
    for (size_t i = 0; i < q->n_avoided; i++)
        if (mk_id_eq(&q->avoided[i].peer, p)) {
            q->avoided[i].until = until;
            return;
        }
    size_t at = q->n_avoided < MAX_AVOID ? q->n_avoided++ : 0;
    q->avoided[at] = (avoid){*p, until};
}

static bool is_avoided(const co_ticket_req *q, const mk_peer_id *p)
{
    int64_t now = mk_mono_ms();
    for (size_t i = 0; i < q->n_avoided; i++)
        if (q->avoided[i].until > now && mk_id_eq(&q->avoided[i].peer, p))
            return true;
    return false;
}

static void on_answer(mk_link *link, const uint8_t *f, size_t len,
                      void *data)
{
    co_ticket_req *q = data;
    if (q->finished || q->answered)
        return;
    q->answered = true;
    char hex[MK_ID_HEX_LEN + 1];
    mk_id_hex(&q->current, hex);
    mk_reader r;
    mk_reader_init(&r, f, len);
    uint8_t kind = mk_get_u8(&r);
    size_t n;
    const uint8_t *p = mk_get_bytes(&r, &n, MK_JWT_MAX_LEN);
    if (mk_reader_done(&r) != 0 || kind > ANSWER_REFUSED) {
        snprintf(q->why, sizeof q->why, "issuer %.16s… sent a malformed "
                                        "answer", hex);
        avoid_peer(q, &q->current);
        return;
    }
    if (kind == ANSWER_REFUSED) {
        snprintf(q->why, sizeof q->why, "issuer %.16s… refused: %.*s", hex,
                 (int)n, (const char *)p);
        finish(q, MK_ENOT_ALLOWED, NULL, 0);
        return;
    }
    char *token = malloc(n + 1);
    if (!token) {
        snprintf(q->why, sizeof q->why, "out of memory");
        finish(q, MK_ENOMEM, NULL, 0);
        return;
    }
    memcpy(token, p, n);
    token[n] = '\0';
    /* Judge it exactly as a component would, before using it. */
    char why[MK_ERRMSG_SIZE] = "";
    int64_t expires = 0;
    int rc = mk_jwt_verify(&q->v, token, n, &q->subject, mk_now_ms(),
                           &expires, NULL, why);
    if (rc < 0) {
        snprintf(q->why, sizeof q->why,
                 "issuer %.16s… handed a ticket this coalition does not "
                 "recognise: %s",
                 hex, why);
        avoid_peer(q, &q->current);
        free(token);
        return;
    }
    if (q->install) {
        mk_ticket t;
        rc = mk_ticket_init(&t, &MK_JWT_CLASS, token, n);
        if (rc == 0) {
            rc = mk_node_set_ticket(q->node, &t);
            mk_ticket_free(&t);
        }
        if (rc < 0) {
            snprintf(q->why, sizeof q->why, "cannot carry the ticket: %s",
                     mk_strerror(rc));
            free(token);
            finish(q, rc, NULL, 0);
            return;
        }
    }
    finish(q, 0, token, expires);
    free(token);
}

static void on_req_link_closed(mk_link *link, uint32_t code, int status,
                               void *data)
{
    co_ticket_req *q = data;
    q->link = NULL;
    if (!q->finished && !q->answered) {
        char hex[MK_ID_HEX_LEN + 1];
        snprintf(q->why, sizeof q->why,
                 "issuer %.16s… closed without answering: %s",
                 mk_id_hex(&q->current, hex), mk_close_text(code));
        avoid_peer(q, &q->current);
    }
    req_unref(q);
}

static void on_dialled(mk_link *link, int status, void *data)
{
    co_ticket_req *q = data;
    q->dialing = false;
    if (status < 0 || q->finished) {
        if (link)
            mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
        if (status < 0 && !q->finished) {
            char hex[MK_ID_HEX_LEN + 1];
            snprintf(q->why, sizeof q->why, "cannot reach issuer %.16s…: %s",
                     mk_id_hex(&q->current, hex), mk_strerror(status));
            avoid_peer(q, &q->current);
        }
        req_unref(q);
        return;
    }
    /* The dial's reference passes to the link. */
    q->link = link;
    q->answered = false;
    mk_link_set_callbacks(link, on_answer, on_req_link_closed, q);
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, WIRE_VERSION);
    mk_put_id(&b, &q->root);
    if (b.err || mk_link_send(link, b.data, b.len) != 0)
        mk_link_close(link, MK_CLOSE_CANCELLED, NULL);
    mk_buf_free(&b);
}

typedef struct pick {
    co_ticket_req *q;
    const mk_peer_id *found;
} pick;

static bool pick_issuer(const mk_peer_info *p, void *data)
{
    pick *k = data;
    if (!mk_entry_has_tag(p->entry, k->q->tag) ||
        is_avoided(k->q, &p->entry->peer))
        return true;
    k->found = &p->entry->peer;
    /* A private transport dials addresses, not peers: rotate through
     * the issuer's, one per attempt. */
    if (p->entry->n_addrs)
        snprintf(k->q->addr, sizeof k->q->addr, "%s",
                 p->entry->addrs[k->q->attempts % p->entry->n_addrs]);
    else
        k->q->addr[0] = '\0';
    return false;
}

static void on_req_timer(uv_timer_t *t)
{
    co_ticket_req *q = t->data;
    if (q->finished)
        return;
    if (mk_mono_ms() >= q->deadline) {
        if (!q->why[0])
            snprintf(q->why, sizeof q->why,
                     "no peer advertising this coalition's ticket issuer "
                     "(tag %.40s…) answered",
                     q->tag);
        finish(q, MK_ECONNECT_TIMEOUT, NULL, 0);
        return;
    }
    if (q->dialing || q->link)
        return;
    pick k = {q, NULL};
    mk_node_peers_foreach(q->node, pick_issuer, &k);
    if (!k.found)
        return;
    q->current = *k.found;
    q->dialing = true;
    q->refs++;
    q->attempts++;
    int rc = !q->tp ? mk_node_dial(q->node, &q->current, CO_ALPN_TICKETS,
                                   on_dialled, q)
             : q->addr[0] ? mk_transport_connect(q->tp, &q->current, q->addr,
                                                 CO_ALPN_TICKETS, on_dialled,
                                                 q)
                          : MK_ENOENT;
    if (rc < 0) {
        q->dialing = false;
        q->refs--;
        avoid_peer(q, &q->current);
    }
}

int co_ticket_request(const co_ticket_request_config *cfg, co_ticket_cb cb,
                      void *data, co_ticket_req **out, char *err)
{
    if (cfg->as && cfg->install)
        return mk_errf(err, MK_EINVAL,
                       "a ticket for another identity "
                       "cannot be installed on this node");
    co_ticket_req *q = calloc(1, sizeof *q);
    if (!q)
        return MK_ENOMEM;
    int rc = co_tickets_recognise(cfg->coalition, &q->v, err);
    if (rc < 0) {
        free(q);
        return rc;
    }
    q->subject = cfg->as ? cfg->as->pub : *mk_node_id(cfg->node);
    if (cfg->as) {
        char terr[MK_ERRMSG_SIZE] = "";
        mk_transport_config tc = {.loop = mk_node_loop(cfg->node),
                                  .key = cfg->as};
        rc = mk_transport_new(&tc, &q->tp, terr);
        if (rc < 0) {
            mk_errf(err, rc,
                    "cannot make a transport for the subject "
                    "key: %s",
                    terr);
            mk_ticket_validator_free(&q->v);
            free(q);
            return rc;
        }
    }
    co_tickets_root(cfg->coalition, &q->root, NULL);
    tag_of(&q->root, q->tag, sizeof q->tag);
    q->node = cfg->node;
    q->install = cfg->install;
    q->cb = cb;
    q->data = data;
    q->deadline = mk_mono_ms() + (cfg->timeout_ms ? cfg->timeout_ms : 10000);
    q->refs = q->tp ? 2 : 1; /* the timer, the transport */
    uv_timer_init(mk_node_loop(cfg->node), &q->timer);
    q->timer.data = q;
    uv_timer_start(&q->timer, on_req_timer, 0, RETRY_MS);
    if (out)
        *out = q;
    return 0;
}

void co_ticket_request_cancel(co_ticket_req *req)
{
    snprintf(req->why, sizeof req->why, "cancelled");
    finish(req, MK_ECANCELED, NULL, 0);
}
