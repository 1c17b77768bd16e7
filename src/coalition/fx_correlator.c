/* fx-correlator, the example confluence (coalition/fx_correlator.h).
 *
 * The machine is stateless: every fact it needs is the latest price
 * update of each feed, which the SDK already keeps (and snapshots) along
 * with the hashes its evidence pointers carry. fold() has nothing to do;
 * tick() reads the two latest updates that still count and emits one
 * spread. The stall rule itself (who counts, partial or halt) is the
 * SDK's, declared here from the content string.
 */
#include "coalition/fx_correlator.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mosaik/error.h"

#define FLAG_P0 1u
#define FLAG_P1 2u
#define FLAG_SPREAD 4u

static bool spread_of(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_sub_overflow(a, b, out);
}

int co_fx_spread_encode(const co_fx_spread *s, mk_buf *out)
{
    uint8_t flags = (uint8_t)((s->has_price[0] ? FLAG_P0 : 0) |
                              (s->has_price[1] ? FLAG_P1 : 0) |
                              (s->has_spread ? FLAG_SPREAD : 0));
    mk_put_u8(out, 1);
    mk_put_varint(out, s->tick);
    mk_put_u8(out, flags);
    for (int i = 0; i < 2; i++)
        if (s->has_price[i])
            mk_put_i64(out, s->price_micro[i]);
    if (s->has_spread)
        mk_put_i64(out, s->spread_micro);
    return out->err;
}

int co_fx_spread_decode(co_fx_spread *s, const uint8_t *bytes, size_t len)
{
    mk_reader r;
    mk_reader_init(&r, bytes, len);
    memset(s, 0, sizeof *s);
    uint8_t v = mk_get_u8(&r);
    s->tick = mk_get_varint(&r);
    uint8_t flags = mk_get_u8(&r);
    for (int i = 0; i < 2; i++)
        if ((s->has_price[i] = flags & (i ? FLAG_P1 : FLAG_P0)))
            s->price_micro[i] = mk_get_i64(&r);
    if ((s->has_spread = flags & FLAG_SPREAD))
        s->spread_micro = mk_get_i64(&r);
    if (mk_reader_done(&r) != 0 || v != 1 || (flags & ~7u))
        return MK_EDECODE;
    /* One meaning per value: a spread exactly when both prices are there
     * and their difference fits. */
    int64_t d;
    bool both = s->has_price[0] && s->has_price[1] &&
                spread_of(s->price_micro[0], s->price_micro[1], &d);
    if (s->has_spread != both || (both && d != s->spread_micro))
        return MK_EDECODE;
    return 0;
}

/* ---- the machine ------------------------------------------------------- */

/* The surface decoder: a price update's clock event is (start epoch,
 * seq). */
static int price_event(const uint8_t *fact, size_t len, co_clock_event *out)
{
    co_price_update u;
    if (co_price_update_decode(&u, fact, len) != 0)
        return MK_EDECODE;
    out->epoch = (uint64_t)u.epoch_ms;
    out->seq = u.seq;
    return 0;
}

/* The spread a tick commits from the updates that count (NULL: none). */
static void compute(uint64_t tick, const co_price_update *u[2],
                    co_fx_spread *s)
{
    memset(s, 0, sizeof *s);
    s->tick = tick;
    for (int i = 0; i < 2; i++)
        if (u[i]) {
            s->has_price[i] = true;
            s->price_micro[i] = u[i]->price_micro;
        }
    s->has_spread = u[0] && u[1] &&
                    spread_of(u[0]->price_micro, u[1]->price_micro,
                              &s->spread_micro);
    if (!s->has_spread)
        s->spread_micro = 0;
}

static int fx_tick(void *state, co_confluence_ctx *ctx, uint64_t seq)
{
    co_price_update upd[2];
    const co_price_update *u[2] = {NULL, NULL};
    uint32_t evidence = 0;
    for (size_t i = 0; i < 2; i++) {
        const uint8_t *fact;
        size_t len;
        if (!co_confluence_latest(ctx, i, &fact, &len, NULL))
            continue;
        /* The surface decoder accepted these bytes already. */
        if (co_price_update_decode(&upd[i], fact, len) != 0)
            return MK_EDECODE;
        u[i] = &upd[i];
        evidence |= 1u << i;
    }
    co_fx_spread s;
    compute(seq, u, &s);
    mk_buf b;
    mk_buf_init(&b);
    int rc = co_fx_spread_encode(&s, &b);
    co_clock_event key = {0, seq};
    if (rc == 0)
        rc = co_confluence_emit(ctx, 0, key, b.data, b.len, evidence);
    mk_buf_free(&b);
    return rc;
}

static int fx_describe(const uint8_t *body, size_t len, char *out, size_t cap)
{
    co_fx_spread s;
    if (co_fx_spread_decode(&s, body, len) != 0)
        return MK_EDECODE;
    char p0[32] = "null", p1[32] = "null", sp[32] = "null";
    if (s.has_price[0])
        snprintf(p0, sizeof p0, "%" PRId64, s.price_micro[0]);
    if (s.has_price[1])
        snprintf(p1, sizeof p1, "%" PRId64, s.price_micro[1]);
    if (s.has_spread)
        snprintf(sp, sizeof sp, "%" PRId64, s.spread_micro);
    int n = snprintf(out, cap,
                     "{\"tick\":%" PRIu64 ",\"price0_micro\":%s,"
                     "\"price1_micro\":%s,\"spread_micro\":%s}",
                     s.tick, p0, p1, sp);
    return n < 0 || (size_t)n >= cap ? MK_EMSGSIZE : 0;
}

static const struct co_confluence_machine FX_MACHINE = {
    .version = CO_CONFLUENCE_MACHINE_VERSION,
    .signature = CO_FX_SIGNATURE,
    .tick = fx_tick,
    .describe = fx_describe,
};

int co_fx_correlator_define(const co_confluence_config *cfg,
                            co_confluence_def *out, char *err)
{
    memset(out, 0, sizeof *out);
    const char *name = cfg->name ? cfg->name : "?";
    const char *content = cfg->content ? cfg->content : "";
    size_t plen = strlen(CO_FX_NAME);
    if (strncmp(content, CO_FX_NAME, plen) != 0 || content[plen] != '/') {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: content \"%s\" is not an "
                     "fx-correlator's",
                     name, content);
        return CO_ECONFIG;
    }
    if (cfg->n_lattices + cfg->n_organisms != 2) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: an fx-correlator spans exactly two "
                     "price feeds, not %zu citizens",
                     name, cfg->n_lattices + cfg->n_organisms);
        return CO_ECONFIG;
    }
    char mode[16];
    uint64_t bound;
    int m = co_confluence_param(cfg, "stall", mode, sizeof mode);
    if (m < 0 || (m == 1 && strcmp(mode, "partial") != 0 &&
                  strcmp(mode, "halt") != 0)) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: stall= must be partial or halt", name);
        return CO_ECONFIG;
    }
    if (co_confluence_param_u64(cfg, "bound_ticks", CO_FX_DEFAULT_BOUND,
                                &bound) < 0 ||
        bound < 1 || bound > 1000) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: bound_ticks= must be 1 to 1000", name);
        return CO_ECONFIG;
    }
    /* The clock is named inside the content string (see the header), so
     * the value lives there; point into it rather than copy. */
    size_t clen = 0;
    const char *clock = strstr(content, ";clock=");
    if (clock) {
        clock += 7;
        clen = strcspn(clock, ";");
    }
    if (!clock || clen == 0 || clen >= sizeof out->clock) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "confluence %s: content needs clock=<coalition name> "
                     "(whose Almanac ticks it aligns to)",
                     name);
        return CO_ECONFIG;
    }
    out->config = cfg;
    out->machine = &FX_MACHINE;
    out->n_surfaces = 2;
    for (size_t i = 0; i < 2; i++)
        out->surfaces[i] = (co_confluence_surface){CO_PRICE_SURFACE,
                                                   price_event};
    out->stall = m == 1 && strcmp(mode, "halt") == 0 ? CO_STALL_HALT
                                                      : CO_STALL_PARTIAL;
    out->bound_ticks = (uint32_t)bound;
    memcpy(out->clock, clock, clen);
    out->clock[clen] = '\0';
    return 0;
}

const co_confluence_impl co_fx_correlator_impl = {
    .name = CO_FX_NAME,
    .define = co_fx_correlator_define,
};

/* ---- the verifier ------------------------------------------------------ */

static int reject(char *why, int code, const char *msg)
{
    if (why)
        snprintf(why, CO_ERRMSG_SIZE, "%s", msg);
    return code;
}

int co_fx_verify(const co_confluence_def *def, const co_confluence_commit *c,
                 const co_upstream_fact *facts, size_t n, char *why)
{
    co_confluence_info info;
    int rc = co_confluence_info_get(def, &info, why);
    if (rc < 0)
        return rc;
    if (c->kind != CO_COMMIT_FACT)
        return reject(why, CO_EUNVERIFIED, "not a spread commit");
    const co_upstream_fact *matched[CO_CONFLUENCE_MAX_SOURCES];
    if ((rc = co_confluence_match_evidence(def, &info, c, facts, n, matched,
                                           why)) < 0)
        return rc;
    co_fx_spread got, want;
    if (co_fx_spread_decode(&got, c->body, c->body_len) != 0)
        return reject(why, MK_EDECODE, "the body is not a spread");
    co_price_update upd[2];
    const co_price_update *u[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++)
        if (matched[i]) {
            if (co_price_update_decode(&upd[i], matched[i]->bytes,
                                       matched[i]->len) != 0)
                return reject(why, MK_EDECODE,
                              "an upstream fact is not a price update");
            u[i] = &upd[i];
        }
    if (memcmp(c->key_citizen.b, info.src[0].citizen.b, CO_CITIZEN_ID_LEN) ||
        c->key_event.epoch != 0 || c->key_event.seq != got.tick)
        return reject(why, CO_EUNVERIFIED,
                      "the key is not (first feed, tick)");
    if (c->partial != !(u[0] && u[1]))
        return reject(why, CO_EUNVERIFIED,
                      "the partial flag disagrees with the evidence");
    compute(got.tick, u, &want);
    mk_buf a, b;
    mk_buf_init(&a);
    mk_buf_init(&b);
    co_fx_spread_encode(&got, &a);
    co_fx_spread_encode(&want, &b);
    bool same = !a.err && !b.err && a.len == b.len &&
                memcmp(a.data, b.data, a.len) == 0;
    mk_buf_free(&a);
    mk_buf_free(&b);
    if (!same)
        return reject(why, CO_EUNVERIFIED,
                      "the prices or spread are not what the feeds' "
                      "updates give");
    return 0;
}
