/* The Compute state machine (include/coalition/compute.h has the rules:
 * matching, liveness, time).
 *
 * apply() depends on nothing but the state and the command: time is the
 * committed CLOCK value, every signature is verified inside apply (Ed25519
 * verification is deterministic), iteration is always in ProviderId,
 * RequestId or submission order, and every refusal is an answer, never a
 * failure: anyone can reach the committee through a member, so a bad or
 * unauthorised command must cost its sender an error, not the coalition
 * its scheduler. A malformed command is decided before anything changes.
 *
 * State, all canonical in snapshots:
 *  - providers, sorted by ProviderId: the signed card, what live grants
 *    reserve on it, liveness (committed time and clock count since its
 *    last heartbeat);
 *  - requests, sorted by RequestId: the signed request, its state, its
 *    current grant, its final log and its committed output chunks;
 *  - the pending queue, in submission order.
 * Finished requests (done, expired, rejected) are kept up to `keep`,
 * oldest dropped first, and total output is bounded, so snapshots stay
 * far below one link frame.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute_internal.h"
#include "module_fsm.h"
#include "mosaik/blake3.h"
#include "mosaik/error.h"

#define CLOCK_MAX ((int64_t)1 << 62)

typedef struct prov {
    co_provider_card card;
    co_compute_resources used;
    bool alive;
    int64_t last_seen;
    uint64_t clocks_since;
    int64_t hb_nonce;
    uint32_t running;
    char reason[CO_COMPUTE_REASON_LEN + 1];
} prov;

typedef struct chunk {
    uint8_t stream;
    uint32_t len;
    uint8_t *data;
} chunk;

typedef struct req {
    co_compute_status st;
    int64_t queue_deadline;
    bool reserved;          /* its grant's resources are held */
    uint64_t out_seq;       /* next OUTPUT seq of the current attempt */
    uint64_t finish_order;  /* 0 while pending or granted */
    chunk *chunks;          /* st.output_chunks of them */
} req;

typedef struct pend {
    uint64_t seq;
    mk_id id;
} pend;

typedef struct compute {
    co_module_info m;
    co_compute_params p;
    int64_t now;
    uint64_t clocks, next_seq, finish_seq;
    prov *provs;
    size_t n_provs, cap_provs;
    req *reqs;
    size_t n_reqs, cap_reqs;
    pend *pending;
    size_t n_pending, cap_pending;
    size_t n_active, n_finished; /* derived */
    uint64_t out_total;          /* derived */
    co_retirement ret;
    /* Local, not replicated. */
    uint64_t epoch;
    bool clock_in_flight;
} compute;

/* ---- names and params ------------------------------------------------------ */

const char *co_compute_state_name(int state)
{
    static const char *const N[] = {"?",       "pending", "granted",
                                    "done",    "expired", "rejected"};
    return state >= 1 && state <= 5 ? N[state] : "?";
}

const char *co_compute_exit_name(int exit)
{
    static const char *const N[] = {"?",       "exited", "signaled",
                                    "deadline", "refused", "failed",
                                    "lost",    "revoked"};
    return exit >= 1 && exit <= 7 ? N[exit] : "?";
}

int co__compute_params_of(const co_module_info *m, co_compute_params *out,
                          char *err)
{
    static const struct {
        const char *key;
        uint64_t dflt, min, max;
        size_t off;
    } P[] = {
        {"clock_ms", 500, 10, 60000, offsetof(co_compute_params, clock_ms)},
        {"heartbeat_ms", 1000, 50, 3600000,
         offsetof(co_compute_params, heartbeat_ms)},
        {"missed", 3, 1, 100, offsetof(co_compute_params, missed)},
        {"queue_ms", 60000, 0, 86400000,
         offsetof(co_compute_params, queue_ms)},
        {"output_max", 32768, 0, 1u << 20,
         offsetof(co_compute_params, output_max)},
        {"keep", 256, 1, 4096, offsetof(co_compute_params, keep)},
    };
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        uint64_t *v = (uint64_t *)(void *)((char *)out + P[i].off);
        if (co_module_param_u64(m, P[i].key, P[i].dflt, v) < 0 ||
            *v < P[i].min || *v > P[i].max) {
            if (err)
                snprintf(err, CO_ERRMSG_SIZE,
                         "compute content \"%s\": %s must be a number from "
                         "%" PRIu64 " to %" PRIu64,
                         m->config->content ? m->config->content : "",
                         P[i].key, P[i].min, P[i].max);
            return CO_ECONFIG;
        }
    }
    return 0;
}

int co_compute_params_get(const co_coalition_config *cfg,
                          co_compute_params *out, char *err)
{
    co_module_info m;
    int rc = co_module_info_get(cfg, CO_MODULE_COMPUTE, &m, err);
    return rc < 0 ? rc : co__compute_params_of(&m, out, err);
}

void co_compute_request_id(const mk_peer_id *submitter, const mk_id *image,
                           uint64_t nonce, mk_id *out)
{
    uint8_t n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)(nonce >> (8 * i));
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, "coalition/compute/request-id/1", 30);
    mk_blake3_update(&h, submitter->b, MK_ID_LEN);
    mk_blake3_update(&h, image->b, MK_ID_LEN);
    mk_blake3_update(&h, n, sizeof n);
    mk_blake3_final(&h, out->b, MK_ID_LEN);
}

/* ---- canonical bytes ------------------------------------------------------------ */

static void put_res(mk_buf *b, const co_compute_resources *r)
{
    mk_put_varint(b, r->cpu_millis);
    mk_put_varint(b, r->ram_mib);
    mk_put_varint(b, r->storage_mib);
}

static void get_res(mk_reader *r, co_compute_resources *x)
{
    x->cpu_millis = mk_get_varint(r);
    x->ram_mib = mk_get_varint(r);
    x->storage_mib = mk_get_varint(r);
}

static bool get_bool(mk_reader *r)
{
    uint8_t v = mk_get_u8(r);
    if (v > 1)
        r->err = MK_EDECODE;
    return v == 1;
}

/* A string into a fixed buffer: at most `max` bytes, no NUL. */
static void get_str(mk_reader *r, char *out, size_t max)
{
    size_t n;
    const uint8_t *p = mk_get_bytes(r, &n, max);
    out[0] = '\0';
    if (!p)
        return;
    if (memchr(p, 0, n)) {
        r->err = MK_EDECODE;
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

void co__compute_card_put(mk_buf *b, const co_provider_card *c)
{
    mk_put_id(b, &c->provider);
    put_res(b, &c->capacity);
    mk_put_varint(b, c->n_regions);
    for (size_t i = 0; i < c->n_regions; i++)
        mk_put_str(b, c->regions[i]);
    mk_put_u8(b, c->tdx_capable);
    mk_put_i64(b, c->nonce);
}

void co__compute_card_get(mk_reader *r, co_provider_card *c)
{
    memset(c, 0, sizeof *c);
    mk_get_id(r, &c->provider);
    get_res(r, &c->capacity);
    c->n_regions = mk_get_count(r, CO_COMPUTE_MAX_REGIONS, 2);
    for (size_t i = 0; i < c->n_regions; i++) {
        get_str(r, c->regions[i], CO_COMPUTE_MAX_REGION_LEN);
        if (!c->regions[i][0])
            r->err = MK_EDECODE;
    }
    c->tdx_capable = get_bool(r);
    c->nonce = mk_get_i64(r);
}

void co__compute_request_put(mk_buf *b, const co_compute_request *q)
{
    mk_put_id(b, &q->request_id);
    mk_put_id(b, &q->image_hash);
    put_res(b, &q->min);
    mk_put_u8(b, q->tdx);
    mk_put_varint(b, q->valid_for_ms);
}

void co__compute_request_get(mk_reader *r, co_compute_request *q)
{
    memset(q, 0, sizeof *q);
    mk_get_id(r, &q->request_id);
    mk_get_id(r, &q->image_hash);
    get_res(r, &q->min);
    q->tdx = get_bool(r);
    q->valid_for_ms = mk_get_varint(r);
}

static void put_usage(mk_buf *b, const co_compute_usage *u)
{
    mk_put_varint(b, u->cpu_ms);
    mk_put_varint(b, u->peak_rss_kib);
    mk_put_varint(b, u->wall_ms);
    mk_put_varint(b, u->output_bytes);
    mk_put_u8(b, u->output_truncated);
}

void co__compute_log_put(mk_buf *b, const co_compute_log *l)
{
    mk_put_id(b, &l->request_id);
    mk_put_varint(b, l->attempt);
    mk_put_id(b, &l->provider);
    mk_put_u8(b, l->exit);
    mk_put_i64(b, l->code);
    put_usage(b, &l->usage);
    mk_put_str(b, l->reason);
}

void co__compute_log_get(mk_reader *r, co_compute_log *l)
{
    memset(l, 0, sizeof *l);
    mk_get_id(r, &l->request_id);
    uint64_t a = mk_get_varint(r);
    l->attempt = (uint32_t)a;
    mk_get_id(r, &l->provider);
    l->exit = mk_get_u8(r);
    int64_t code = mk_get_i64(r);
    l->code = (int32_t)code;
    l->usage.cpu_ms = mk_get_varint(r);
    l->usage.peak_rss_kib = mk_get_varint(r);
    l->usage.wall_ms = mk_get_varint(r);
    l->usage.output_bytes = mk_get_varint(r);
    l->usage.output_truncated = get_bool(r);
    get_str(r, l->reason, CO_COMPUTE_REASON_LEN);
    if (a > UINT32_MAX || code < INT32_MIN || code > INT32_MAX ||
        l->exit < CO_COMPUTE_EXITED || l->exit > CO_COMPUTE_REVOKED)
        r->err = MK_EDECODE;
}

/* ---- signing ------------------------------------------------------------------ */

static void cmd_digest(const mk_id *root, const uint8_t *body, size_t len,
                       uint8_t out[32])
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, "coalition/compute/cmd/1", 23);
    mk_blake3_update(&h, root->b, MK_ID_LEN);
    mk_blake3_update(&h, body, len);
    mk_blake3_final(&h, out, 32);
}

/* Signs out[start..] and appends the signature. */
static void sign_tail(mk_buf *out, size_t start, const mk_id *root,
                      const mk_keypair *kp)
{
    if (out->err)
        return;
    uint8_t d[32], sig[MK_SIG_LEN];
    cmd_digest(root, out->data + start, out->len - start, d);
    mk_sign(kp, d, sizeof d, sig);
    mk_put_raw(out, sig, MK_SIG_LEN);
}

static bool signed_by(const compute *c, const uint8_t *cmd, size_t body,
                      const uint8_t *sig, const mk_peer_id *signer)
{
    uint8_t d[32];
    cmd_digest(&c->m.root, cmd, body, d);
    return mk_verify(signer, d, sizeof d, sig) == 0;
}

void co__compute_cmd_register(mk_buf *out, const mk_id *root,
                              const co_provider_card *card,
                              const mk_keypair *provider)
{
    size_t start = out->len;
    mk_put_u8(out, CO__COMPUTE_REGISTER);
    co__compute_card_put(out, card);
    sign_tail(out, start, root, provider);
}

void co__compute_cmd_heartbeat(mk_buf *out, const mk_id *root, uint8_t kind,
                               int64_t nonce, const mk_keypair *provider)
{
    size_t start = out->len;
    mk_put_u8(out, kind);
    mk_put_id(out, &provider->pub);
    mk_put_i64(out, nonce);
    sign_tail(out, start, root, provider);
}

void co__compute_cmd_submit(mk_buf *out, const mk_id *root,
                            const co_compute_request *q,
                            const mk_keypair *submitter)
{
    size_t start = out->len;
    mk_put_u8(out, CO__COMPUTE_SUBMIT);
    co__compute_request_put(out, q);
    mk_put_id(out, &submitter->pub);
    sign_tail(out, start, root, submitter);
}

void co__compute_cmd_output(mk_buf *out, const mk_id *root,
                            const mk_id *request_id, uint32_t attempt,
                            uint64_t seq, uint8_t stream, const void *bytes,
                            size_t len, const mk_keypair *provider)
{
    size_t start = out->len;
    mk_put_u8(out, CO__COMPUTE_OUTPUT);
    mk_put_id(out, request_id);
    mk_put_varint(out, attempt);
    mk_put_id(out, &provider->pub);
    mk_put_varint(out, seq);
    mk_put_u8(out, stream);
    mk_put_bytes(out, bytes, len);
    sign_tail(out, start, root, provider);
}

void co__compute_cmd_log(mk_buf *out, const mk_id *root,
                         const co_compute_log *log,
                         const mk_keypair *provider)
{
    size_t start = out->len;
    mk_put_u8(out, CO__COMPUTE_LOG);
    co__compute_log_put(out, log);
    sign_tail(out, start, root, provider);
}

void co__compute_cmd_clock(mk_buf *out, const mk_id *root, int64_t unix_ms,
                           const mk_keypair *member)
{
    size_t start = out->len;
    mk_put_u8(out, CO__COMPUTE_CLOCK);
    mk_put_i64(out, unix_ms);
    mk_put_id(out, &member->pub);
    sign_tail(out, start, root, member);
}

int co__compute_log_verify(const mk_id *root, const co_compute_log *log)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, CO__COMPUTE_LOG);
    co__compute_log_put(&b, log);
    uint8_t d[32];
    int rc = b.err;
    if (rc == 0) {
        cmd_digest(root, b.data, b.len, d);
        rc = mk_verify(&log->provider, d, sizeof d, log->sig);
    }
    mk_buf_free(&b);
    return rc;
}

int co__compute_answer_decode(uint8_t kind, const uint8_t *res, size_t len,
                              co_compute_answer *out)
{
    memset(out, 0, sizeof *out);
    mk_reader r;
    mk_reader_init(&r, res, len);
    out->outcome = mk_get_u8(&r);
    if (r.at < r.len)
        get_str(&r, out->reason, CO_COMPUTE_REASON_LEN);
    if (kind == CO__COMPUTE_SUBMIT && r.at < r.len)
        out->state = mk_get_u8(&r);
    return mk_reader_done(&r) == 0 && out->outcome <= 2 ? 0 : MK_EDECODE;
}

int co__compute_answer_of(int status, uint8_t kind, const uint8_t *res,
                          size_t len, co_compute_answer *out)
{
    memset(out, 0, sizeof *out);
    if (co__door_refused(status)) {
        snprintf(out->reason, sizeof out->reason, "refused by the committee: %s",
                 mk_strerror(status));
        return 0;
    }
    if (status != 0)
        return status;
    return co__compute_answer_decode(kind, res, len, out);
}

/* ---- lookups ------------------------------------------------------------------- */

static size_t prov_find(const compute *c, const mk_peer_id *id, bool *found)
{
    size_t lo = 0, hi = c->n_provs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int k = mk_id_cmp(&c->provs[mid].card.provider, id);
        if (k == 0) {
            *found = true;
            return mid;
        }
        if (k < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static size_t req_find(const compute *c, const mk_id *id, bool *found)
{
    size_t lo = 0, hi = c->n_reqs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int k = mk_id_cmp(&c->reqs[mid].st.request.request_id, id);
        if (k == 0) {
            *found = true;
            return mid;
        }
        if (k < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static req *req_get(compute *c, const mk_id *id)
{
    bool found;
    size_t at = req_find(c, id, &found);
    return found ? &c->reqs[at] : NULL;
}

static prov *prov_get(compute *c, const mk_peer_id *id)
{
    bool found;
    size_t at = prov_find(c, id, &found);
    return found ? &c->provs[at] : NULL;
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *g = realloc(*arr, nc * size);
    if (!g)
        return MK_ENOMEM;
    *arr = g;
    *cap = nc;
    return 0;
}

static void chunks_free(req *r)
{
    for (size_t i = 0; i < r->st.output_chunks; i++)
        free(r->chunks[i].data);
    free(r->chunks);
    r->chunks = NULL;
    r->st.output_chunks = 0;
    r->st.output_bytes = 0;
}

/* ---- answers -------------------------------------------------------------------- */

static int answer(mk_buf *res, uint8_t outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int answer(mk_buf *res, uint8_t outcome, const char *fmt, ...)
{
    char reason[CO_COMPUTE_REASON_LEN + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    mk_put_u8(res, outcome);
    mk_put_str(res, reason);
    return res->err;
}

static void say(char *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, CO_COMPUTE_REASON_LEN + 1, fmt, ap);
    va_end(ap);
}

static const char *short_hex(const mk_id *id, char out[17])
{
    mk_hex_encode(id->b, 8, out);
    return out;
}

/* ---- the pending queue ----------------------------------------------------------- */

static int pending_add(compute *c, const req *r)
{
    if (grow((void **)&c->pending, &c->cap_pending, c->n_pending,
             sizeof *c->pending) < 0)
        return MK_ENOMEM;
    size_t at = c->n_pending;
    while (at > 0 && c->pending[at - 1].seq > r->st.seq)
        at--;
    memmove(c->pending + at + 1, c->pending + at,
            (c->n_pending - at) * sizeof *c->pending);
    c->pending[at] = (pend){r->st.seq, r->st.request.request_id};
    c->n_pending++;
    return 0;
}

/* ---- matching -------------------------------------------------------------------- */

static bool fits(const co_compute_resources *have,
                 const co_compute_resources *need)
{
    return have->cpu_millis >= need->cpu_millis &&
           have->ram_mib >= need->ram_mib &&
           have->storage_mib >= need->storage_mib;
}

static co_compute_resources free_of(const prov *p)
{
    co_compute_resources f = {
        p->card.capacity.cpu_millis - p->used.cpu_millis,
        p->card.capacity.ram_mib - p->used.ram_mib,
        p->card.capacity.storage_mib - p->used.storage_mib,
    };
    return f;
}

static bool may_host(const prov *p, const co_compute_request *q)
{
    return p->alive && (!q->tdx || p->card.tdx_capable);
}

/* Could any alive provider ever hold it (were it idle)? */
static bool satisfiable(const compute *c, const co_compute_request *q)
{
    for (size_t i = 0; i < c->n_provs; i++)
        if (may_host(&c->provs[i], q) && fits(&c->provs[i].card.capacity,
                                              &q->min))
            return true;
    return false;
}

/* The best fit (compute.h): least cpu left, then ram, then storage, then
 * the smallest ProviderId (providers are scanned in id order and only a
 * strictly better one replaces the choice). */
static prov *best_fit(compute *c, const co_compute_request *q)
{
    prov *best = NULL;
    co_compute_resources bl = {0};
    for (size_t i = 0; i < c->n_provs; i++) {
        prov *p = &c->provs[i];
        if (!may_host(p, q))
            continue;
        co_compute_resources f = free_of(p);
        if (!fits(&f, &q->min))
            continue;
        co_compute_resources left = {f.cpu_millis - q->min.cpu_millis,
                                     f.ram_mib - q->min.ram_mib,
                                     f.storage_mib - q->min.storage_mib};
        if (best && (left.cpu_millis > bl.cpu_millis ||
                     (left.cpu_millis == bl.cpu_millis &&
                      (left.ram_mib > bl.ram_mib ||
                       (left.ram_mib == bl.ram_mib &&
                        left.storage_mib >= bl.storage_mib)))))
            continue;
        best = p;
        bl = left;
    }
    return best;
}

static bool match_one(compute *c, req *r)
{
    prov *p = best_fit(c, &r->st.request);
    if (!p)
        return false;
    co_compute_status *s = &r->st;
    co_compute_grant *g = &s->grant;
    uint32_t attempt = s->granted ? g->attempt + 1 : 1;
    memset(g, 0, sizeof *g);
    g->request_id = s->request.request_id;
    g->provider = p->card.provider;
    g->image_hash = s->request.image_hash;
    g->granted_ms = c->now;
    g->valid_to_ms = c->now + (int64_t)s->request.valid_for_ms;
    g->bearer.peer = s->submitter;
    g->bearer.hash = s->request.image_hash;
    g->attempt = attempt;
    g->reserved = s->request.min;
    s->granted = true;
    s->state = CO_COMPUTE_GRANTED;
    s->reason[0] = '\0';
    chunks_free(r);
    r->out_seq = 0;
    r->reserved = true;
    p->used.cpu_millis += g->reserved.cpu_millis;
    p->used.ram_mib += g->reserved.ram_mib;
    p->used.storage_mib += g->reserved.storage_mib;
    p->running++;
    c->epoch++;
    return true;
}

/* Oldest first; the queue keeps what still waits. */
static void match_pending(compute *c)
{
    if (c->now == 0)
        return;
    size_t w = 0;
    for (size_t i = 0; i < c->n_pending; i++) {
        req *r = req_get(c, &c->pending[i].id);
        if (r && match_one(c, r))
            continue;
        c->pending[w++] = c->pending[i];
    }
    c->n_pending = w;
}

static void release(compute *c, req *r)
{
    if (!r->reserved)
        return;
    r->reserved = false;
    prov *p = prov_get(c, &r->st.grant.provider);
    if (!p)
        return;
    const co_compute_resources *x = &r->st.grant.reserved;
    p->used.cpu_millis -= x->cpu_millis;
    p->used.ram_mib -= x->ram_mib;
    p->used.storage_mib -= x->storage_mib;
    p->running--;
}

static void req_remove_at(compute *c, size_t at)
{
    req *r = &c->reqs[at];
    c->out_total -= r->st.output_bytes;
    chunks_free(r);
    memmove(c->reqs + at, c->reqs + at + 1,
            (c->n_reqs - at - 1) * sizeof *c->reqs);
    c->n_reqs--;
}

/* Drops the finished request that finished first. False when none. */
static bool prune_oldest(compute *c)
{
    size_t at = SIZE_MAX;
    for (size_t i = 0; i < c->n_reqs; i++)
        if (c->reqs[i].finish_order &&
            (at == SIZE_MAX ||
             c->reqs[i].finish_order < c->reqs[at].finish_order))
            at = i;
    if (at == SIZE_MAX)
        return false;
    req_remove_at(c, at);
    c->n_finished--;
    return true;
}

/* The request left the running: count it finished, keep at most `keep`.
 * May move other requests: callers look theirs up again after. */
static void finish(compute *c, req *r)
{
    if (r->finish_order)
        return;
    r->finish_order = ++c->finish_seq;
    c->n_active--;
    c->n_finished++;
    while (c->n_finished > c->p.keep && prune_oldest(c))
        ;
}

/* A provider stops counting: its unfinished grants go back to the queue. */
static int provider_gone(compute *c, prov *p, const char *why)
{
    char hex[17];
    p->alive = false;
    say(p->reason, "%s", why);
    short_hex(&p->card.provider, hex);
    for (size_t i = 0; i < c->n_reqs; i++) {
        req *r = &c->reqs[i];
        if (r->st.state != CO_COMPUTE_GRANTED ||
            !mk_id_eq(&r->st.grant.provider, &p->card.provider))
            continue;
        release(c, r);
        r->st.state = CO_COMPUTE_PENDING;
        say(r->st.reason, "provider %s %s; waiting for another", hex, why);
        r->queue_deadline = c->now + (int64_t)c->p.queue_ms;
        if (pending_add(c, r) < 0)
            return MK_ENOMEM;
    }
    c->epoch++;
    return 0;
}

/* ---- apply -------------------------------------------------------------------------- */

/* A command, decoded; pointers are into the command's bytes. */
typedef struct ccmd {
    uint8_t kind;
    co_provider_card card;  /* REGISTER */
    mk_peer_id who;         /* the signer of every other kind */
    int64_t nonce;          /* HEARTBEAT, DEPART */
    co_compute_request q;   /* SUBMIT */
    mk_id id;               /* OUTPUT */
    uint32_t attempt;       /* OUTPUT */
    uint64_t seq;           /* OUTPUT */
    uint8_t stream;         /* OUTPUT */
    const uint8_t *bytes;   /* OUTPUT */
    size_t len;             /* OUTPUT */
    co_compute_log log;     /* LOG (its sig filled in) */
    int64_t t;              /* CLOCK */
    co_retirement retire;   /* RETIRE */
} ccmd;

/* Decodes a whole command and checks what needs no state
 * (module_fsm.h): the signature under the key the command names, and
 * for CLOCK that this key is a committee member's. Providers and
 * submitters are anyone; whether they may do what they ask (a granted
 * attempt, a fresh nonce) is state. */
static int compute_check(const compute *c, const mk_id *module_sig,
                         const uint8_t *cmd, size_t len, ccmd *out)
{
    memset(out, 0, sizeof *out);
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    out->kind = mk_get_u8(&r);
    const mk_peer_id *signer = &out->who;
    switch (out->kind) {
    case CO__COMPUTE_REGISTER:
        co__compute_card_get(&r, &out->card);
        signer = &out->card.provider;
        break;
    case CO__COMPUTE_HEARTBEAT:
    case CO__COMPUTE_DEPART:
        mk_get_id(&r, &out->who);
        out->nonce = mk_get_i64(&r);
        break;
    case CO__COMPUTE_SUBMIT:
        co__compute_request_get(&r, &out->q);
        mk_get_id(&r, &out->who);
        break;
    case CO__COMPUTE_OUTPUT: {
        mk_get_id(&r, &out->id);
        uint64_t attempt = mk_get_varint(&r);
        mk_get_id(&r, &out->who);
        out->seq = mk_get_varint(&r);
        out->stream = mk_get_u8(&r);
        out->bytes = mk_get_bytes(&r, &out->len, CO_COMPUTE_CHUNK_MAX);
        if (attempt > UINT32_MAX || (out->stream != 1 && out->stream != 2))
            r.err = MK_EDECODE;
        out->attempt = (uint32_t)attempt;
        break;
    }
    case CO__COMPUTE_LOG:
        co__compute_log_get(&r, &out->log);
        signer = &out->log.provider;
        break;
    case CO__COMPUTE_CLOCK:
        out->t = mk_get_i64(&r);
        mk_get_id(&r, &out->who);
        break;
    case CO__CMD_RETIRE:
        return co__retire_check(&r, &c->m, NULL, module_sig, &out->retire);
    default:
        return MK_EDECODE;
    }
    size_t body = r.at;
    const uint8_t *sig = mk_get_raw(&r, MK_SIG_LEN);
    if (!sig || mk_reader_done(&r) != 0)
        return MK_EDECODE;
    if (out->kind == CO__COMPUTE_LOG)
        memcpy(out->log.sig, sig, MK_SIG_LEN);
    if (out->kind == CO__COMPUTE_CLOCK && !co_module_is_member(&c->m, signer))
        return MK_ENOT_ALLOWED;
    return signed_by(c, cmd, body, sig, signer) ? 0 : MK_EBAD_SIGNATURE;
}

static int compute_admit(struct mk_fsm *fsm, const uint8_t *cmd, size_t len)
{
    ccmd x;
    return compute_check(fsm->data, &fsm->signature, cmd, len, &x);
}

/* What apply answers for a command its check refused (kind known). */
static int refusal(const ccmd *x, mk_buf *res)
{
    switch (x->kind) {
    case CO__COMPUTE_REGISTER:
        return answer(res, 0, "the card is not signed by its provider");
    case CO__COMPUTE_SUBMIT:
        return answer(res, 0, "not signed by its submitter");
    case CO__COMPUTE_CLOCK:
        return answer(res, 0, "not a committee member's clock");
    case CO__CMD_RETIRE:
        mk_put_u8(res, 0);
        return res->err;
    default:
        return answer(res, 0, "not signed by the provider it names");
    }
}

static int apply_register(compute *c, const ccmd *x, mk_buf *res)
{
    co_provider_card card = x->card;
    if (c->ret.retired)
        return answer(res, 0, "the Compute module retired");
    if (!card.capacity.cpu_millis || !card.capacity.ram_mib)
        return answer(res, 0, "a card must offer some cpu and ram");
    bool found;
    size_t at = prov_find(c, &card.provider, &found);
    if (found) {
        prov *p = &c->provs[at];
        if (card.nonce <= p->card.nonce)
            return answer(res, 2, "an older card than the one held");
        if (!fits(&card.capacity, &p->used))
            return answer(res, 0,
                          "capacity below what its live grants reserve");
        p->card = card;
        p->alive = true;
        p->last_seen = c->now;
        p->clocks_since = 0;
        p->reason[0] = '\0';
    } else {
        if (c->n_provs >= CO__COMPUTE_MAX_PROVIDERS) {
            /* Make room by forgetting the longest-gone idle provider. */
            size_t out = SIZE_MAX;
            for (size_t i = 0; i < c->n_provs; i++)
                if (!c->provs[i].alive && c->provs[i].running == 0 &&
                    (out == SIZE_MAX ||
                     c->provs[i].last_seen < c->provs[out].last_seen))
                    out = i;
            if (out == SIZE_MAX)
                return answer(res, 0, "the provider table is full");
            memmove(c->provs + out, c->provs + out + 1,
                    (c->n_provs - out - 1) * sizeof *c->provs);
            c->n_provs--;
            at = prov_find(c, &card.provider, &found);
        }
        if (grow((void **)&c->provs, &c->cap_provs, c->n_provs,
                 sizeof *c->provs) < 0)
            return MK_ENOMEM;
        memmove(c->provs + at + 1, c->provs + at,
                (c->n_provs - at) * sizeof *c->provs);
        c->n_provs++;
        prov *p = &c->provs[at];
        memset(p, 0, sizeof *p);
        p->card = card;
        p->alive = true;
        p->last_seen = c->now;
        p->hb_nonce = INT64_MIN;
    }
    c->epoch++;
    match_pending(c);
    return answer(res, 1, "%s", "");
}

static int apply_heartbeat(compute *c, const ccmd *x, mk_buf *res)
{
    prov *p = prov_get(c, &x->who);
    if (!p)
        return answer(res, 0, "unknown provider: register a card first");
    if (x->nonce <= p->hb_nonce)
        return answer(res, 2, "stale");
    p->hb_nonce = x->nonce;
    if (x->kind == CO__COMPUTE_DEPART) {
        if (p->alive) {
            int rc = provider_gone(c, p, "departed");
            if (rc < 0)
                return rc;
            match_pending(c);
        }
        return answer(res, 1, "%s", "");
    }
    p->last_seen = c->now;
    p->clocks_since = 0;
    if (!p->alive) {
        /* Back after being given up on: it starts afresh (its grants
         * were re-matched; it learns so from the grants map). */
        p->alive = true;
        p->reason[0] = '\0';
        c->epoch++;
        match_pending(c);
    }
    return answer(res, 1, "%s", "");
}

static int submit_answer(compute *c, const mk_id *id, uint8_t outcome,
                         mk_buf *res)
{
    req *q = req_get(c, id);
    answer(res, outcome, "%s", q ? q->st.reason : "");
    mk_put_u8(res, q ? q->st.state : 0);
    return res->err;
}

static bool same_request(const co_compute_request *a,
                         const co_compute_request *b)
{
    return mk_id_eq(&a->request_id, &b->request_id) &&
           mk_id_eq(&a->image_hash, &b->image_hash) &&
           a->min.cpu_millis == b->min.cpu_millis &&
           a->min.ram_mib == b->min.ram_mib &&
           a->min.storage_mib == b->min.storage_mib && a->tdx == b->tdx &&
           a->valid_for_ms == b->valid_for_ms;
}

static int apply_submit(compute *c, const ccmd *x, mk_buf *res)
{
    co_compute_request q = x->q;
    mk_peer_id submitter = x->who;
    if (c->ret.retired)
        return answer(res, 0, "the Compute module retired");
    if (!q.min.cpu_millis || !q.min.ram_mib)
        return answer(res, 0, "a request must ask for some cpu and ram");
    if (q.valid_for_ms < CO__COMPUTE_MIN_VALID_MS ||
        q.valid_for_ms > CO__COMPUTE_MAX_VALID_MS)
        return answer(res, 0, "valid_for must be from 1 s to 7 days");
    bool found;
    size_t at = req_find(c, &q.request_id, &found);
    if (found) {
        const co_compute_status *s = &c->reqs[at].st;
        if (!same_request(&s->request, &q) ||
            !mk_id_eq(&s->submitter, &submitter))
            return answer(res, 0,
                          "this request_id names another request");
        /* The same request again (a retry): it changes nothing. */
        return submit_answer(c, &q.request_id, 2, res);
    }
    if (c->n_active >= CO__COMPUTE_MAX_ACTIVE)
        return answer(res, 0, "too many requests in flight; retry later");
    if (grow((void **)&c->reqs, &c->cap_reqs, c->n_reqs, sizeof *c->reqs) <
        0)
        return MK_ENOMEM;
    memmove(c->reqs + at + 1, c->reqs + at,
            (c->n_reqs - at) * sizeof *c->reqs);
    c->n_reqs++;
    c->n_active++;
    req *n = &c->reqs[at];
    memset(n, 0, sizeof *n);
    n->st.request = q;
    n->st.submitter = submitter;
    n->st.seq = ++c->next_seq;
    n->st.state = CO_COMPUTE_PENDING;
    n->st.submitted_ms = c->now;
    c->epoch++;
    if (!satisfiable(c, &q)) {
        n->st.state = CO_COMPUTE_REJECTED;
        say(n->st.reason,
            "no provider offers cpu >= %" PRIu64 "m, ram >= %" PRIu64
            " MiB, storage >= %" PRIu64 " MiB%s",
            q.min.cpu_millis, q.min.ram_mib, q.min.storage_mib,
            q.tdx ? " with TDX" : "");
        finish(c, n);
    } else if (c->now == 0) {
        say(n->st.reason, "waiting for the committee's first clock");
        if (pending_add(c, n) < 0)
            return MK_ENOMEM;
    } else {
        n->queue_deadline = c->now + (int64_t)c->p.queue_ms;
        if (!match_one(c, n)) {
            say(n->st.reason, "waiting for free capacity");
            if (pending_add(c, n) < 0)
                return MK_ENOMEM;
        }
    }
    return submit_answer(c, &q.request_id, 1, res);
}

/* The request's current attempt on `provider`, still open for records. */
static const char *open_grant(const req *q, const mk_peer_id *provider,
                              uint32_t attempt)
{
    if (!q)
        return "unknown request";
    if (!q->st.granted || !mk_id_eq(&q->st.grant.provider, provider) ||
        q->st.grant.attempt != attempt)
        return "not the granted provider and attempt";
    if (q->st.logged || (q->st.state != CO_COMPUTE_GRANTED &&
                         q->st.state != CO_COMPUTE_EXPIRED))
        return "the grant is over";
    return NULL;
}

static int apply_output(compute *c, const ccmd *x, mk_buf *res)
{
    const mk_id id = x->id;
    const uint64_t seq = x->seq;
    const size_t len = x->len;
    req *q = req_get(c, &id);
    const char *why = open_grant(q, &x->who, x->attempt);
    if (why)
        return answer(res, 0, "%s", why);
    if (seq < q->out_seq)
        return answer(res, 2, "already committed");
    if (seq > q->out_seq)
        return answer(res, 0, "out of order: expected chunk %" PRIu64,
                      q->out_seq);
    if (len == 0)
        return answer(res, 0, "an empty chunk");
    if (q->st.output_bytes + len > c->p.output_max)
        return answer(res, 0, "the request's output budget is spent");
    /* Room is made by forgetting whole finished requests, oldest first. */
    while (c->out_total + len > CO__COMPUTE_OUTPUT_TOTAL && prune_oldest(c))
        ;
    if (c->out_total + len > CO__COMPUTE_OUTPUT_TOTAL)
        return answer(res, 0, "the module's output budget is spent");
    q = req_get(c, &id);
    chunk *grown = realloc(q->chunks, (q->st.output_chunks + 1) * sizeof *grown);
    uint8_t *data = malloc(len);
    if (!grown || !data) {
        if (grown)
            q->chunks = grown;
        free(data);
        return MK_ENOMEM;
    }
    memcpy(data, x->bytes, len);
    q->chunks = grown;
    q->chunks[q->st.output_chunks++] =
        (chunk){x->stream, (uint32_t)len, data};
    q->st.output_bytes += len;
    q->out_seq++;
    c->out_total += len;
    c->epoch++;
    return answer(res, 1, "%s", "");
}

static int apply_log(compute *c, const ccmd *x, mk_buf *res)
{
    const co_compute_log log = x->log;
    req *q = req_get(c, &log.request_id);
    if (q && q->st.logged && q->st.granted &&
        mk_id_eq(&q->st.grant.provider, &log.provider) &&
        q->st.grant.attempt == log.attempt)
        return answer(res, 2, "already logged");
    const char *why = open_grant(q, &log.provider, log.attempt);
    if (why)
        return answer(res, 0, "%s", why);
    q->st.log = log;
    q->st.logged = true;
    bool was_granted = q->st.state == CO_COMPUTE_GRANTED;
    release(c, q);
    q->st.state = CO_COMPUTE_DONE;
    q->st.reason[0] = '\0';
    c->epoch++;
    if (was_granted)
        finish(c, q);
    match_pending(c);
    return answer(res, 1, "%s", "");
}

static int apply_clock(compute *c, const ccmd *x, mk_buf *res)
{
    const int64_t t = x->t;
    if (t <= c->now)
        return answer(res, 2, "the clock did not advance");
    if (t >= CLOCK_MAX)
        return answer(res, 0, "a clock beyond any plausible time");
    bool first = c->now == 0, freed = first;
    c->now = t;
    c->clocks++;
    c->epoch++;
    if (first) {
        for (size_t i = 0; i < c->n_pending; i++) {
            req *q = req_get(c, &c->pending[i].id);
            if (q)
                q->queue_deadline = t + (int64_t)c->p.queue_ms;
        }
        for (size_t i = 0; i < c->n_provs; i++)
            if (c->provs[i].last_seen == 0)
                c->provs[i].last_seen = t;
    }
    /* Grants whose time is up free their capacity (the provider kills
     * the work at valid_to by its own clock and logs it). */
    for (size_t i = 0; i < c->n_reqs;) {
        req *q = &c->reqs[i];
        if (q->st.state == CO_COMPUTE_GRANTED && q->st.grant.valid_to_ms <= t) {
            mk_id id = q->st.request.request_id;
            release(c, q);
            q->st.state = CO_COMPUTE_EXPIRED;
            say(q->st.reason, "valid_to passed before its provider's log");
            freed = true;
            finish(c, q);
            /* finish may have pruned: resume after this request. */
            bool found;
            i = req_find(c, &id, &found) + found;
            continue;
        }
        i++;
    }
    /* Silent providers (compute.h: judged by committed time and by
     * committed clocks, so an outage that stops both condemns nobody). */
    uint64_t period = c->p.missed * c->p.heartbeat_ms;
    uint64_t need = (period + c->p.clock_ms - 1) / c->p.clock_ms;
    for (size_t i = 0; i < c->n_provs; i++) {
        prov *p = &c->provs[i];
        if (!p->alive)
            continue;
        p->clocks_since++;
        if (p->clocks_since >= need && t - p->last_seen >= (int64_t)period) {
            char why[96];
            snprintf(why, sizeof why, "went silent for %" PRIu64
                                      " heartbeat periods",
                     c->p.missed);
            int rc = provider_gone(c, p, why);
            if (rc < 0)
                return rc;
            freed = true;
        }
    }
    /* Requests that waited too long. */
    for (size_t i = 0; i < c->n_pending;) {
        req *q = req_get(c, &c->pending[i].id);
        if (q && q->queue_deadline > t) {
            i++;
            continue;
        }
        memmove(c->pending + i, c->pending + i + 1,
                (c->n_pending - i - 1) * sizeof *c->pending);
        c->n_pending--;
        if (!q)
            continue;
        q->st.state = CO_COMPUTE_REJECTED;
        say(q->st.reason, "no provider took it within %" PRIu64 " ms",
            c->p.queue_ms);
        finish(c, q);
    }
    if (freed)
        match_pending(c);
    return answer(res, 1, "%s", "");
}

static int compute_apply_cmd(struct mk_fsm *fsm, const uint8_t *cmd,
                             size_t len, mk_buf *res)
{
    compute *c = fsm->data;
    ccmd x;
    int rc = compute_check(c, &fsm->signature, cmd, len, &x);
    if (rc == MK_EDECODE)
        return rc;
    if (rc < 0)
        return refusal(&x, res);
    switch (x.kind) {
    case CO__COMPUTE_REGISTER:
        return apply_register(c, &x, res);
    case CO__COMPUTE_HEARTBEAT:
    case CO__COMPUTE_DEPART:
        return apply_heartbeat(c, &x, res);
    case CO__COMPUTE_SUBMIT:
        return apply_submit(c, &x, res);
    case CO__COMPUTE_OUTPUT:
        return apply_output(c, &x, res);
    case CO__COMPUTE_LOG:
        return apply_log(c, &x, res);
    case CO__COMPUTE_CLOCK:
        return apply_clock(c, &x, res);
    default:
        return co__retire_apply(&c->ret, &x.retire, res);
    }
}

static int compute_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                         mk_buf *res)
{
    int rc = compute_apply_cmd(fsm, cmd, len, res);
    if (rc != MK_EDECODE)
        return rc;
    /* Decided before anything changed: a refusal, not a halt. */
    mk_buf_reset(res);
    return answer(res, 0, "malformed command");
}

/* ---- snapshots ------------------------------------------------------------------------ */

static void clear(compute *c)
{
    for (size_t i = 0; i < c->n_reqs; i++)
        chunks_free(&c->reqs[i]);
    free(c->reqs);
    free(c->provs);
    free(c->pending);
    c->reqs = NULL;
    c->provs = NULL;
    c->pending = NULL;
    c->n_reqs = c->cap_reqs = c->n_provs = c->cap_provs = 0;
    c->n_pending = c->cap_pending = 0;
}

static int compute_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    compute *c = fsm->data;
    mk_put_raw(out, "CMP1", 4);
    co__retirement_put(out, &c->ret);
    mk_put_i64(out, c->now);
    mk_put_varint(out, c->clocks);
    mk_put_varint(out, c->next_seq);
    mk_put_varint(out, c->finish_seq);
    mk_put_varint(out, c->n_provs);
    for (size_t i = 0; i < c->n_provs; i++) {
        const prov *p = &c->provs[i];
        co__compute_card_put(out, &p->card);
        put_res(out, &p->used);
        mk_put_u8(out, p->alive);
        mk_put_i64(out, p->last_seen);
        mk_put_varint(out, p->clocks_since);
        mk_put_i64(out, p->hb_nonce);
        mk_put_varint(out, p->running);
        mk_put_str(out, p->reason);
    }
    mk_put_varint(out, c->n_reqs);
    for (size_t i = 0; i < c->n_reqs; i++) {
        const req *q = &c->reqs[i];
        const co_compute_status *s = &q->st;
        co__compute_request_put(out, &s->request);
        mk_put_id(out, &s->submitter);
        mk_put_varint(out, s->seq);
        mk_put_u8(out, s->state);
        mk_put_str(out, s->reason);
        mk_put_i64(out, s->submitted_ms);
        mk_put_i64(out, q->queue_deadline);
        mk_put_u8(out, q->reserved);
        mk_put_varint(out, q->finish_order);
        mk_put_u8(out, s->granted);
        if (s->granted) {
            const co_compute_grant *g = &s->grant;
            mk_put_id(out, &g->provider);
            mk_put_i64(out, g->valid_to_ms);
            mk_put_id(out, &g->bearer.peer);
            mk_put_id(out, &g->bearer.hash);
            mk_put_varint(out, g->attempt);
            mk_put_i64(out, g->granted_ms);
            put_res(out, &g->reserved);
        }
        mk_put_u8(out, s->logged);
        if (s->logged) {
            co__compute_log_put(out, &s->log);
            mk_put_raw(out, s->log.sig, MK_SIG_LEN);
        }
        mk_put_varint(out, q->out_seq);
        mk_put_varint(out, s->output_chunks);
        for (size_t k = 0; k < s->output_chunks; k++) {
            mk_put_u8(out, q->chunks[k].stream);
            mk_put_bytes(out, q->chunks[k].data, q->chunks[k].len);
        }
    }
    mk_put_varint(out, c->n_pending);
    for (size_t i = 0; i < c->n_pending; i++)
        mk_put_id(out, &c->pending[i].id);
    return out->err;
}

static int restore_reqs(compute *n, mk_reader *r)
{
    size_t count = mk_get_count(r, CO__COMPUTE_MAX_ACTIVE + 4096, 64);
    if (count && !(n->reqs = calloc(count, sizeof *n->reqs)))
        return MK_ENOMEM;
    n->cap_reqs = count;
    for (size_t i = 0; i < count && !r->err; i++) {
        req *q = &n->reqs[i];
        co_compute_status *s = &q->st;
        n->n_reqs = i + 1;
        co__compute_request_get(r, &s->request);
        mk_get_id(r, &s->submitter);
        s->seq = mk_get_varint(r);
        s->state = mk_get_u8(r);
        get_str(r, s->reason, CO_COMPUTE_REASON_LEN);
        s->submitted_ms = mk_get_i64(r);
        q->queue_deadline = mk_get_i64(r);
        q->reserved = get_bool(r);
        q->finish_order = mk_get_varint(r);
        s->granted = get_bool(r);
        if (s->granted) {
            co_compute_grant *g = &s->grant;
            g->request_id = s->request.request_id;
            g->image_hash = s->request.image_hash;
            mk_get_id(r, &g->provider);
            g->valid_to_ms = mk_get_i64(r);
            mk_get_id(r, &g->bearer.peer);
            mk_get_id(r, &g->bearer.hash);
            uint64_t a = mk_get_varint(r);
            g->attempt = (uint32_t)a;
            g->granted_ms = mk_get_i64(r);
            get_res(r, &g->reserved);
            if (a == 0 || a > UINT32_MAX)
                r->err = MK_EDECODE;
        }
        s->logged = get_bool(r);
        if (s->logged) {
            co__compute_log_get(r, &s->log);
            const uint8_t *sig = mk_get_raw(r, MK_SIG_LEN);
            if (sig)
                memcpy(s->log.sig, sig, MK_SIG_LEN);
        }
        q->out_seq = mk_get_varint(r);
        size_t nc = mk_get_count(r, 1u << 20, 2);
        if (nc && !(q->chunks = calloc(nc, sizeof *q->chunks)))
            return MK_ENOMEM;
        for (size_t k = 0; k < nc && !r->err; k++) {
            size_t len;
            q->chunks[k].stream = mk_get_u8(r);
            const uint8_t *p = mk_get_bytes(r, &len, CO_COMPUTE_CHUNK_MAX);
            if (!p || !len)
                break;
            if (!(q->chunks[k].data = malloc(len)))
                return MK_ENOMEM;
            memcpy(q->chunks[k].data, p, len);
            q->chunks[k].len = (uint32_t)len;
            s->output_chunks = k + 1;
            s->output_bytes += len;
        }
        if (s->output_chunks != nc || s->state < CO_COMPUTE_PENDING ||
            s->state > CO_COMPUTE_REJECTED ||
            (i > 0 && mk_id_cmp(&n->reqs[i - 1].st.request.request_id,
                                &s->request.request_id) >= 0))
            r->err = MK_EDECODE;
        n->out_total += s->output_bytes;
        if (q->finish_order)
            n->n_finished++;
        else
            n->n_active++;
    }
    return 0;
}

static int compute_restore(struct mk_fsm *fsm, const uint8_t *snap,
                           size_t len)
{
    compute *c = fsm->data, n;
    memset(&n, 0, sizeof n);
    n.m = c->m;
    n.p = c->p;
    mk_reader r;
    mk_reader_init(&r, snap, len);
    const uint8_t *magic = mk_get_raw(&r, 4);
    if (!magic || memcmp(magic, "CMP1", 4) != 0)
        return MK_EDECODE;
    co__retirement_get(&r, &n.ret);
    n.now = mk_get_i64(&r);
    n.clocks = mk_get_varint(&r);
    n.next_seq = mk_get_varint(&r);
    n.finish_seq = mk_get_varint(&r);
    int rc = 0;
    size_t np = mk_get_count(&r, CO__COMPUTE_MAX_PROVIDERS, 40);
    if (np && !(n.provs = calloc(np, sizeof *n.provs)))
        rc = MK_ENOMEM;
    n.cap_provs = np;
    for (size_t i = 0; rc == 0 && i < np && !r.err; i++) {
        prov *p = &n.provs[i];
        co__compute_card_get(&r, &p->card);
        get_res(&r, &p->used);
        p->alive = get_bool(&r);
        p->last_seen = mk_get_i64(&r);
        p->clocks_since = mk_get_varint(&r);
        p->hb_nonce = mk_get_i64(&r);
        uint64_t running = mk_get_varint(&r);
        p->running = (uint32_t)running;
        get_str(&r, p->reason, CO_COMPUTE_REASON_LEN);
        if (running > UINT32_MAX ||
            (i > 0 && mk_id_cmp(&n.provs[i - 1].card.provider,
                                &p->card.provider) >= 0))
            r.err = MK_EDECODE;
        n.n_provs = i + 1;
    }
    if (rc == 0)
        rc = restore_reqs(&n, &r);
    size_t nq = rc == 0 ? mk_get_count(&r, CO__COMPUTE_MAX_ACTIVE, 32) : 0;
    if (nq && !(n.pending = calloc(nq, sizeof *n.pending)))
        rc = MK_ENOMEM;
    n.cap_pending = nq;
    for (size_t i = 0; rc == 0 && i < nq && !r.err; i++) {
        mk_id id;
        mk_get_id(&r, &id);
        req *q = req_get(&n, &id);
        if (!q || q->st.state != CO_COMPUTE_PENDING ||
            (i > 0 && n.pending[i - 1].seq >= q->st.seq)) {
            r.err = MK_EDECODE;
            break;
        }
        n.pending[i] = (pend){q->st.seq, id};
        n.n_pending = i + 1;
    }
    if (rc == 0 && mk_reader_done(&r) != 0)
        rc = r.err == MK_ENOMEM ? MK_ENOMEM : MK_EDECODE;
    if (rc == 0 && co__compute_check(&(struct mk_fsm){.data = &n}) != NULL)
        rc = MK_EDECODE;
    if (rc < 0) {
        clear(&n);
        return rc;
    }
    clear(c);
    n.epoch = c->epoch + 1;
    n.clock_in_flight = c->clock_in_flight;
    *c = n;
    return 0;
}

/* ---- lifecycle and accessors ---------------------------------------------------------- */

int co__compute_fsm_init(struct mk_fsm *fsm, const co_module_info *m)
{
    compute *c = calloc(1, sizeof *c);
    if (!c)
        return MK_ENOMEM;
    c->m = *m;
    if (co__compute_params_of(m, &c->p, NULL) < 0) {
        free(c);
        return CO_ECONFIG;
    }
    memset(fsm, 0, sizeof *fsm);
    fsm->version = MK_FSM_VERSION;
    fsm->data = c;
    mk_id_from_str(&fsm->signature, CO__COMPUTE_SIGNATURE);
    fsm->apply = compute_apply;
    fsm->snapshot = compute_snapshot;
    fsm->restore = compute_restore;
    fsm->admit = compute_admit;
    return 0;
}

void co__compute_fsm_free(struct mk_fsm *fsm)
{
    compute *c = fsm->data;
    if (!c)
        return;
    clear(c);
    free(c);
    fsm->data = NULL;
}

const co_retirement *co__compute_retirement(const struct mk_fsm *fsm)
{
    return &((const compute *)fsm->data)->ret;
}

const co_compute_params *co__compute_params(const struct mk_fsm *fsm)
{
    return &((const compute *)fsm->data)->p;
}

const co_module_info *co__compute_module(const struct mk_fsm *fsm)
{
    return &((const compute *)fsm->data)->m;
}

int64_t co__compute_now(const struct mk_fsm *fsm)
{
    return ((const compute *)fsm->data)->now;
}

uint64_t co__compute_epoch(const struct mk_fsm *fsm)
{
    return ((const compute *)fsm->data)->epoch;
}

bool *co__compute_clock_flag(struct mk_fsm *fsm)
{
    return &((compute *)fsm->data)->clock_in_flight;
}

static void info_of(const prov *p, co_compute_provider_info *out)
{
    out->card = p->card;
    out->used = p->used;
    out->alive = p->alive;
    out->last_seen_ms = p->last_seen;
    out->running = p->running;
    memcpy(out->reason, p->reason, sizeof out->reason);
}

size_t co__compute_provider_count(const struct mk_fsm *fsm)
{
    return ((const compute *)fsm->data)->n_provs;
}

void co__compute_provider_at(const struct mk_fsm *fsm, size_t i,
                             co_compute_provider_info *out)
{
    info_of(&((const compute *)fsm->data)->provs[i], out);
}

bool co__compute_provider_find(const struct mk_fsm *fsm, const mk_peer_id *p,
                               co_compute_provider_info *out)
{
    const compute *c = fsm->data;
    bool found;
    size_t at = prov_find(c, p, &found);
    if (found && out)
        info_of(&c->provs[at], out);
    return found;
}

size_t co__compute_request_count(const struct mk_fsm *fsm)
{
    return ((const compute *)fsm->data)->n_reqs;
}

void co__compute_request_at(const struct mk_fsm *fsm, size_t i,
                            co_compute_status *out)
{
    *out = ((const compute *)fsm->data)->reqs[i].st;
}

bool co__compute_request_find(const struct mk_fsm *fsm, const mk_id *id,
                              co_compute_status *out)
{
    const compute *c = fsm->data;
    bool found;
    size_t at = req_find(c, id, &found);
    if (found && out)
        *out = c->reqs[at].st;
    return found;
}

size_t co__compute_output(const struct mk_fsm *fsm, const mk_id *id,
                          size_t from,
                          void (*fn)(int stream, const uint8_t *bytes,
                                     size_t len, void *data),
                          void *data)
{
    const compute *c = fsm->data;
    bool found;
    size_t at = req_find(c, id, &found);
    if (!found)
        return 0;
    const req *q = &c->reqs[at];
    for (size_t i = from; fn && i < q->st.output_chunks; i++)
        fn(q->chunks[i].stream, q->chunks[i].data, q->chunks[i].len, data);
    return q->st.output_chunks;
}

const char *co__compute_check(const struct mk_fsm *fsm)
{
    const compute *c = fsm->data;
    size_t pending = 0, active = 0, finished = 0;
    for (size_t i = 0; i < c->n_provs; i++) {
        const prov *p = &c->provs[i];
        co_compute_resources sum = {0};
        uint32_t running = 0;
        for (size_t k = 0; k < c->n_reqs; k++) {
            const req *q = &c->reqs[k];
            if (!q->reserved ||
                !mk_id_eq(&q->st.grant.provider, &p->card.provider))
                continue;
            sum.cpu_millis += q->st.grant.reserved.cpu_millis;
            sum.ram_mib += q->st.grant.reserved.ram_mib;
            sum.storage_mib += q->st.grant.reserved.storage_mib;
            running++;
        }
        if (memcmp(&sum, &p->used, sizeof sum) != 0 || running != p->running)
            return "a provider's used capacity is not the sum of its grants";
        if (!fits(&p->card.capacity, &p->used))
            return "a provider is over-committed";
    }
    for (size_t k = 0; k < c->n_reqs; k++) {
        const req *q = &c->reqs[k];
        if (q->st.state == CO_COMPUTE_PENDING)
            pending++;
        if (q->reserved != (q->st.state == CO_COMPUTE_GRANTED))
            return "a grant holds capacity it should not (or the reverse)";
        if ((q->finish_order != 0) !=
            (q->st.state != CO_COMPUTE_PENDING &&
             q->st.state != CO_COMPUTE_GRANTED))
            return "a request's finished mark disagrees with its state";
        if (q->finish_order)
            finished++;
        else
            active++;
    }
    if (pending != c->n_pending)
        return "the queue does not hold exactly the pending requests";
    for (size_t i = 1; i < c->n_pending; i++)
        if (c->pending[i - 1].seq >= c->pending[i].seq)
            return "the queue is not in submission order";
    if (active != c->n_active || finished != c->n_finished)
        return "the counts of active and finished requests are off";
    if (c->n_finished > c->p.keep)
        return "more finished requests kept than `keep`";
    return NULL;
}
