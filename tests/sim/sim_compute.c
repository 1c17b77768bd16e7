/* Compute (src/coalition/compute_fsm.c, docs/compute.md) under
 * simulation: providers register, heartbeat and depart, submitters ask
 * for work, members commit the clock (which jumps with the schedule),
 * providers finish what they were granted — all through the replicated
 * log, with a committee of real keys.
 *
 * Compute has no simple model (matching is a best-fit search over the
 * whole state), so its replicas are held to each other (the driver's
 * state hashes) and to the promises that matter to providers and
 * submitters, checked from outside on every replica after every change:
 *   - no provider is over-committed: the requests granted to it reserve,
 *     summed, no more than its card's capacity (and the machine's own
 *     bookkeeping, co__compute_check, agrees);
 *   - a grant is issued once: attempt k of a request goes to one
 *     provider at one committed time on every replica and forever, and a
 *     request's attempt number never goes back.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/coalition/compute_internal.h"
#include "coalition/module.h"
#include "mosaik/key.h"
#include "sim.h"

#define PROVIDERS 3
#define SUBMITTERS 2
#define MAX_REQS 512
#define MAX_ATTEMPTS 16

typedef struct grantrec {
    bool known;
    mk_peer_id provider;
    int64_t granted_ms;
} grantrec;

typedef struct cctx {
    unsigned n;
    mk_keypair members[CO_MODULE_MAX_COMMITTEE];
    mk_keypair prov[PROVIDERS], subm[SUBMITTERS];
    co_module_info info;
    uint64_t nonce;
    mk_id req_id[MAX_REQS];
    size_t n_req;
    grantrec grants[MAX_REQS][MAX_ATTEMPTS];
    uint32_t attempt_seen[8][MAX_REQS];
} cctx;

static const co_confluence_config COMPUTE_CFG = {
    .name = "compute",
    .content = "compute/v1;clock_ms=100;heartbeat_ms=200;missed=3;"
               "queue_ms=5000;output_max=64;keep=64",
};

static void key_from(sim_rng *g, mk_keypair *kp)
{
    uint8_t seed[MK_SEED_LEN];
    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)sim_next(g);
    mk_keypair_from_seed(kp, seed);
}

static void *compute_setup(const sim_env *env, sim_rng *g)
{
    cctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n = env->n_servers;
    c->info.kind = CO_MODULE_COMPUTE;
    c->info.config = &COMPUTE_CFG;
    mk_id_from_str(&c->info.root, "sim-compute");
    for (unsigned i = 0; i < c->n; i++) {
        key_from(g, &c->members[i]);
        c->info.committee[i] = c->members[i].pub;
    }
    c->info.n_committee = c->n;
    for (int i = 0; i < PROVIDERS; i++)
        key_from(g, &c->prov[i]);
    for (int i = 0; i < SUBMITTERS; i++)
        key_from(g, &c->subm[i]);
    return c;
}

static void compute_teardown(void *ctx)
{
    free(ctx);
}

static struct mk_fsm *compute_new(void *ctx, unsigned index)
{
    cctx *c = ctx;
    struct mk_fsm *f = calloc(1, sizeof *f);
    if (f && co__compute_fsm_init(f, &c->info) != 0) {
        free(f);
        return NULL;
    }
    return f;
}

static void compute_free(void *ctx, struct mk_fsm *f)
{
    co__compute_fsm_free(f);
    free(f);
}

/* A granted request of the view, and its grant; false when none. */
static bool some_grant(struct mk_fsm *view, sim_rng *g, co_compute_status *st)
{
    size_t n = co__compute_request_count(view);
    if (!n)
        return false;
    size_t start = sim_below(g, n);
    for (size_t k = 0; k < n; k++) {
        co__compute_request_at(view, (start + k) % n, st);
        if (st->state == CO_COMPUTE_GRANTED && st->granted)
            return true;
    }
    return false;
}

static void compute_next(void *ctx, sim_rng *g, const sim_env *env,
                         struct mk_fsm *view, unsigned session, mk_buf *out,
                         sim_op *op)
{
    cctx *c = ctx;
    const mk_id *root = &c->info.root;
    unsigned p = (unsigned)sim_below(g, PROVIDERS);
    op->kind = (int)sim_below(g, 10);
    co_compute_status st;
    switch (op->kind) {
    case 0:
    case 1: /* the leader's clock, as some member reads it */
        co__compute_cmd_clock(out, root, env->clock_ms,
                              &c->members[sim_below(g, c->n)]);
        break;
    case 2: { /* a provider (re)registers, maybe with another capacity */
        co_provider_card card = {.provider = c->prov[p].pub,
                                 .capacity = {1000 + 1000 * sim_below(g, 4),
                                              512 + 512 * sim_below(g, 4),
                                              1024 * (1 + sim_below(g, 3))},
                                 .tdx_capable = sim_chance(g, 1, 2),
                                 .nonce = env->clock_ms + (int64_t)c->nonce++,
                                 .n_regions = 1};
        strcpy(card.regions[0], "sim");
        co__compute_cmd_register(out, root, &card, &c->prov[p]);
        break;
    }
    case 3:
    case 4: /* heartbeat; now and then a departure */
        co__compute_cmd_heartbeat(out, root,
                                  sim_chance(g, 1, 8) ? CO__COMPUTE_DEPART
                                                      : CO__COMPUTE_HEARTBEAT,
                                  env->clock_ms + (int64_t)c->nonce++,
                                  &c->prov[p]);
        break;
    case 5:
    case 6:
    case 7: { /* work */
        co_compute_request q = {.min = {250 * (1 + sim_below(g, 8)),
                                        128 * (1 + sim_below(g, 8)),
                                        256 * (1 + sim_below(g, 4))},
                                .tdx = sim_chance(g, 1, 4),
                                .valid_for_ms = 1000 + sim_below(g, 4000)};
        unsigned u = (unsigned)sim_below(g, SUBMITTERS);
        mk_id_from_str(&q.image_hash, "sim-image");
        co_compute_request_id(&c->subm[u].pub, &q.image_hash, c->nonce++,
                              &q.request_id);
        if (c->n_req < MAX_REQS)
            c->req_id[c->n_req++] = q.request_id;
        co__compute_cmd_submit(out, root, &q, &c->subm[u]);
        break;
    }
    default: /* a provider reports the end of a grant (its own, or by a
                provider that was not given it: refused) */
        if (!some_grant(view, g, &st)) {
            co__compute_cmd_clock(out, root, env->clock_ms, &c->members[0]);
            break;
        }
        co_compute_log l = {.request_id = st.grant.request_id,
                            .attempt = st.grant.attempt,
                            .provider = st.grant.provider,
                            .exit = CO_COMPUTE_EXITED,
                            .usage = {.cpu_ms = 1, .wall_ms = 2}};
        strcpy(l.reason, "exited");
        const mk_keypair *kp = &c->prov[p];
        for (int i = 0; i < PROVIDERS; i++)
            if (mk_id_eq(&c->prov[i].pub, &st.grant.provider) &&
                !sim_chance(g, 1, 6))
                kp = &c->prov[i];
        l.provider = kp->pub;
        co__compute_cmd_log(out, root, &l, kp);
        break;
    }
}

static void compute_model(void *ctx, const sim_op *op, const uint8_t *cmd,
                          size_t len)
{
}

static int req_index(cctx *c, const mk_id *id)
{
    for (size_t i = 0; i < c->n_req; i++)
        if (mk_id_eq(&c->req_id[i], id))
            return (int)i;
    return -1;
}

static bool compute_check(void *ctx, unsigned index, struct mk_fsm *f,
                          bool at_head, char *why)
{
    cctx *c = ctx;
    const char *bad = co__compute_check(f);
    if (bad)
        return sim_fail(why, "co__compute_check: %s", bad);
    /* Reservations per provider, summed from the requests themselves. */
    co_compute_resources used[PROVIDERS];
    memset(used, 0, sizeof used);
    size_t n = co__compute_request_count(f);
    for (size_t i = 0; i < n; i++) {
        co_compute_status st;
        co__compute_request_at(f, i, &st);
        if (!st.granted)
            continue;
        int r = req_index(c, &st.request.request_id);
        uint32_t a = st.grant.attempt;
        if (r >= 0 && a < MAX_ATTEMPTS) {
            grantrec *gr = &c->grants[r][a];
            if (a < c->attempt_seen[index][r])
                return sim_fail(why, "request %d went back from attempt %u "
                                     "to %u", r, c->attempt_seen[index][r], a);
            c->attempt_seen[index][r] = a;
            if (!gr->known) {
                gr->known = true;
                gr->provider = st.grant.provider;
                gr->granted_ms = st.grant.granted_ms;
            } else if (!mk_id_eq(&gr->provider, &st.grant.provider) ||
                       gr->granted_ms != st.grant.granted_ms) {
                return sim_fail(why, "request %d attempt %u granted twice "
                                     "(another provider or time)", r, a);
            }
        }
        if (st.state != CO_COMPUTE_GRANTED)
            continue;
        for (int p = 0; p < PROVIDERS; p++) {
            if (!mk_id_eq(&c->prov[p].pub, &st.grant.provider))
                continue;
            used[p].cpu_millis += st.grant.reserved.cpu_millis;
            used[p].ram_mib += st.grant.reserved.ram_mib;
            used[p].storage_mib += st.grant.reserved.storage_mib;
        }
    }
    for (int p = 0; p < PROVIDERS; p++) {
        co_compute_provider_info pi;
        if (!co__compute_provider_find(f, &c->prov[p].pub, &pi)) {
            if (used[p].cpu_millis || used[p].ram_mib || used[p].storage_mib)
                return sim_fail(why, "provider %d holds grants but is "
                                     "unknown", p);
            continue;
        }
        const co_compute_resources *cap = &pi.card.capacity;
        if (used[p].cpu_millis > cap->cpu_millis ||
            used[p].ram_mib > cap->ram_mib ||
            used[p].storage_mib > cap->storage_mib)
            return sim_fail(why, "provider %d over-committed: %" PRIu64
                                 "/%" PRIu64 " cpu, %" PRIu64 "/%" PRIu64
                                 " ram, %" PRIu64 "/%" PRIu64 " storage",
                            p, used[p].cpu_millis, cap->cpu_millis,
                            used[p].ram_mib, cap->ram_mib,
                            used[p].storage_mib, cap->storage_mib);
    }
    return true;
}

const sim_machine sim_compute = {
    .name = "compute",
    .setup = compute_setup,
    .teardown = compute_teardown,
    .fsm_new = compute_new,
    .fsm_free = compute_free,
    .next_cmd = compute_next,
    .model_apply = compute_model,
    .check = compute_check,
};
