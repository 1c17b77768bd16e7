/* The coalition's modules under simulation: Almanac, Atlas, Chronicle
 * (src/coalition/almanac_fsm.c, atlas_fsm.c, chronicle_fsm.c; docs/modules.md).
 *
 * Each run makes a committee of real Ed25519 keys (one per voter, from
 * the seed) and an outsider. Clients submit what members and intruders
 * would: ticks built from a possibly stale idea of the clock, cards and
 * signatures (some forged, some from the outsider, some cards only ever
 * signed by a minority), chronicle appends and signatures. Beside a model
 * of each machine fed the committed commands, the invariants are the
 * modules' promises:
 *   Almanac    every replica sees ticks 1, 2, 3, ... each exactly once,
 *              and tick k has the same content everywhere, across any
 *              number of leader changes;
 *   Atlas      a card is verified exactly when more than half of the
 *              committee's signatures over its bytes verify, so a card
 *              only a minority or an outsider signed never is;
 *   Chronicle  the chain verifies from entry 1 (hashes, links, every
 *              signature present) on every replica, at every step.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/coalition/modules_internal.h"
#include "coalition/card.h"
#include "coalition/chronicle.h"
#include "mosaik/key.h"
#include "sim.h"

#define MAX_REPLICAS 8
#define CITIZENS 6   /* 0-2 anyone, 3-4 a minority only, 5 outsider only */
#define VERSIONS 3
#define MAX_TICKS 4096
#define MAX_ENTRIES 48

typedef struct modctx modctx;

/* What the callbacks of replica i need. */
typedef struct repctx {
    modctx *m;
    unsigned index;
} repctx;

/* A Chronicle entry as the model sees it. */
typedef struct mentry {
    int kind, subject, body;
    unsigned sigs; /* bit per member */
} mentry;

struct modctx {
    int which; /* 'a'lmanac, a't'las, 'c'hronicle */
    unsigned n;
    mk_keypair members[CO_MODULE_MAX_COMMITTEE], outsider;
    co_module_info info;
    repctx rc[MAX_REPLICAS];
    struct mk_fsm *fsm[MAX_REPLICAS];
    char bad[SIM_WHY]; /* a violation seen inside a callback */

    /* Almanac */
    uint64_t last_tick[MAX_REPLICAS];
    bool tick_known[MAX_TICKS];
    uint64_t tick_member[MAX_TICKS];
    int64_t tick_ms[MAX_TICKS];
    uint64_t m_latest;
    unsigned m_stamps; /* bit per member */
    unsigned m_n_stamps;

    /* Atlas */
    mk_buf card[CITIZENS][VERSIONS];
    mk_id card_hash[CITIZENS][VERSIONS];
    int m_version[CITIZENS]; /* -1: absent */
    unsigned m_sigs[CITIZENS];

    /* Chronicle */
    mentry m_entries[MAX_ENTRIES * 4];
    size_t m_n;
};

/* Ops (sim_op.kind) and fields: a = signer (n: the outsider), b, c, d. */
enum {
    OP_TICK, OP_STAMP,     /* b = seq */
    OP_PUBLISH, OP_SIGN,   /* b = citizen, c = version, d = forged */
    OP_APPEND, OP_CSIGN,   /* append: b = kind*16 + subject*4 + body,
                              c = once; csign: b = seq; d = forged */
};

static const mk_keypair *signer(modctx *m, int64_t a)
{
    return a < (int64_t)m->n ? &m->members[a] : &m->outsider;
}

static int member_index(modctx *m, const mk_peer_id *p)
{
    for (unsigned i = 0; i < m->n; i++)
        if (mk_id_eq(&m->members[i].pub, p))
            return (int)i;
    return -1;
}

static void key_from(sim_rng *g, mk_keypair *kp)
{
    uint8_t seed[MK_SEED_LEN];
    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)sim_next(g);
    mk_keypair_from_seed(kp, seed);
}

static void card_encode(mk_buf *out, int citizen, int version)
{
    char id[32], role[32], hint[32];
    snprintf(id, sizeof id, "sim-citizen-%d", citizen);
    snprintf(role, sizeof role, "role-%d", citizen);
    snprintf(hint, sizeof hint, "10.0.0.%d:%d", citizen, 7000 + version);
    const char *hints[] = {hint};
    co_citizen_card c = {.role = role,
                         .endpoint_hints = hints,
                         .n_endpoint_hints = 1,
                         .schema_version = CO_CARD_SCHEMA_VERSION};
    mk_id_from_str(&c.citizen_id, id);
    mk_id_from_str(&c.ticket_issuance_root, "sim-tickets");
    if (co_card_encode(&c, out) != 0)
        out->err = MK_EINVAL;
}

static void *mod_setup(int which, const sim_env *env, sim_rng *g)
{
    modctx *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->which = which;
    m->n = env->n_servers;
    m->info.kind = which == 'a'   ? CO_MODULE_ALMANAC
                   : which == 't' ? CO_MODULE_ATLAS
                                  : CO_MODULE_CHRONICLE;
    mk_id_from_str(&m->info.root, "sim-module");
    mk_id_derive(&m->info.committee_root, &m->info.root,
                 (const uint8_t *)"committee", 9);
    for (unsigned i = 0; i < m->n; i++) {
        key_from(g, &m->members[i]);
        m->info.committee[i] = m->members[i].pub;
    }
    m->info.n_committee = m->n;
    key_from(g, &m->outsider);
    for (int c = 0; c < CITIZENS; c++) {
        m->m_version[c] = -1;
        for (int v = 0; v < VERSIONS; v++) {
            mk_buf_init(&m->card[c][v]);
            card_encode(&m->card[c][v], c, v);
            mk_id_hash(&m->card_hash[c][v], m->card[c][v].data,
                       m->card[c][v].len);
        }
    }
    return m;
}

static void *almanac_setup(const sim_env *e, sim_rng *g)
{
    return mod_setup('a', e, g);
}

static void *atlas_setup(const sim_env *e, sim_rng *g)
{
    return mod_setup('t', e, g);
}

static void *chronicle_setup(const sim_env *e, sim_rng *g)
{
    return mod_setup('c', e, g);
}

static void mod_teardown(void *ctx)
{
    modctx *m = ctx;
    for (int c = 0; c < CITIZENS; c++)
        for (int v = 0; v < VERSIONS; v++)
            mk_buf_free(&m->card[c][v]);
    free(m);
}

/* ---- Almanac: ticks as each replica sees them --------------------------- */

static void on_tick(const co_almanac_tick *t, bool stamp_only, void *data)
{
    repctx *rc = data;
    modctx *m = rc->m;
    if (stamp_only || m->bad[0])
        return;
    if (t->seq != m->last_tick[rc->index] + 1) {
        snprintf(m->bad, sizeof m->bad,
                 "server %u saw tick %" PRIu64 " after tick %" PRIu64,
                 rc->index, t->seq, m->last_tick[rc->index]);
        return;
    }
    m->last_tick[rc->index] = t->seq;
    if (t->seq >= MAX_TICKS)
        return;
    uint64_t who;
    memcpy(&who, t->stamps[0].member.b, sizeof who);
    if (!m->tick_known[t->seq]) {
        m->tick_known[t->seq] = true;
        m->tick_member[t->seq] = who;
        m->tick_ms[t->seq] = t->stamps[0].unix_ms;
    } else if (m->tick_member[t->seq] != who ||
               m->tick_ms[t->seq] != t->stamps[0].unix_ms) {
        snprintf(m->bad, sizeof m->bad,
                 "tick %" PRIu64 " on server %u is another tick than the "
                 "one other replicas committed", t->seq, rc->index);
    }
}

/* ---- machines --------------------------------------------------------------- */

static struct mk_fsm *mod_new(void *ctx, unsigned index)
{
    modctx *m = ctx;
    struct mk_fsm *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    int rc = m->which == 'a'   ? co__almanac_fsm_init(f, &m->info)
             : m->which == 't' ? co__atlas_fsm_init(f, &m->info)
                               : co__chronicle_fsm_init(f, &m->info);
    if (rc != 0) {
        free(f);
        return NULL;
    }
    m->rc[index] = (repctx){m, index};
    m->fsm[index] = f;
    if (m->which == 'a')
        co__almanac_on_tick(f, on_tick, &m->rc[index]);
    return f;
}

static void mod_free(void *ctx, struct mk_fsm *f)
{
    modctx *m = ctx;
    if (m->which == 'a')
        co__almanac_fsm_free(f);
    else if (m->which == 't')
        co__atlas_fsm_free(f);
    else
        co__chronicle_fsm_free(f);
    free(f);
}

static void mod_restored(void *ctx, unsigned index, struct mk_fsm *f)
{
    modctx *m = ctx;
    if (m->which == 'a')
        m->last_tick[index] = co__almanac_latest(f)->seq;
}

/* Flips a bit of the trailing signature: a forgery. */
static void forge(mk_buf *out)
{
    if (out->len)
        out->data[out->len - 1] ^= 0x01;
}

static void mod_next(void *ctx, sim_rng *g, const sim_env *env,
                     struct mk_fsm *view, unsigned session, mk_buf *out,
                     sim_op *op)
{
    modctx *m = ctx;
    /* One member in eight commands is the outsider. */
    op->a = sim_chance(g, 1, 8) ? (int64_t)m->n : (int64_t)sim_below(g, m->n);
    const mk_keypair *kp = signer(m, op->a);
    if (m->which == 'a') {
        uint64_t last = co__almanac_latest(view)->seq;
        op->kind = sim_chance(g, 2, 3) ? OP_TICK : OP_STAMP;
        /* A tick for what the client believes is next (its view may be
         * stale), now and then one too far ahead. */
        op->b = (int64_t)(op->kind == OP_TICK ? last + 1 + sim_chance(g, 1, 10)
                                              : last);
        co__almanac_cmd(out,
                        op->kind == OP_TICK ? CO__ALMANAC_TICK
                                            : CO__ALMANAC_STAMP,
                        (uint64_t)op->b, &kp->pub, env->clock_ms);
        return;
    }
    if (m->which == 't') {
        int c = (int)sim_below(g, CITIZENS);
        unsigned minority = (m->n - 1) / 2;
        /* Only a minority ever speaks for citizens 3 and 4, only the
         * outsider for 5: none of them may ever be verified. */
        if (c >= 3 && c <= 4 && op->a < (int64_t)m->n)
            op->a = (int64_t)sim_below(g, minority);
        if (c == 5)
            op->a = (int64_t)m->n;
        kp = signer(m, op->a);
        op->b = c;
        op->d = sim_chance(g, 1, 10);
        co_citizen_id key;
        mk_id full;
        char id[32];
        snprintf(id, sizeof id, "sim-citizen-%d", c);
        mk_id_from_str(&full, id);
        memcpy(key.b, full.b, CO_CITIZEN_ID_LEN);
        const co__atlas_item *it = co__atlas_find(view, &key);
        if (it && sim_chance(g, 3, 4)) {
            op->kind = OP_SIGN;
            op->c = -1;
            for (int v = 0; v < VERSIONS; v++)
                if (mk_id_eq(&it->card.hash, &m->card_hash[c][v]))
                    op->c = v;
            co__atlas_cmd_sign(out, it, kp);
        } else {
            op->kind = OP_PUBLISH;
            op->c = (int64_t)sim_below(g, VERSIONS);
            const mk_buf *card = &m->card[c][op->c];
            co__atlas_cmd_publish(out, card->data, card->len, kp);
        }
        if (op->d)
            forge(out);
        return;
    }
    size_t have = co__chronicle_count(view);
    op->d = sim_chance(g, 1, 10);
    if (have && (have >= MAX_ENTRIES || sim_chance(g, 2, 3))) {
        op->kind = OP_CSIGN;
        const co__chronicle_entry *e = co__chronicle_at(view, sim_below(g, have));
        op->b = (int64_t)e->seq;
        co__chronicle_cmd_sign(out, e, kp);
    } else {
        op->kind = OP_APPEND;
        int kind = (int)sim_below(g, 3), subject = (int)sim_below(g, 2),
            body = (int)sim_below(g, 4);
        op->b = kind * 16 + subject * 4 + body;
        op->c = sim_chance(g, 1, 2);
        char k[16], b[16], s[16];
        snprintf(k, sizeof k, "kind-%d", kind);
        snprintf(s, sizeof s, "subject-%d", subject);
        snprintf(b, sizeof b, "body-%d", body);
        mk_id subj;
        mk_id_from_str(&subj, s);
        co__chronicle_cmd_append(out, k, &subj, (const uint8_t *)b,
                                 strlen(b), op->c, kp);
    }
    if (op->d)
        forge(out);
}

/* ---- models ------------------------------------------------------------------- */

static void mod_model(void *ctx, const sim_op *op, const uint8_t *cmd,
                      size_t len)
{
    modctx *m = ctx;
    bool member = op->a < (int64_t)m->n && !op->d;
    unsigned bit = member ? 1u << op->a : 0;
    switch (op->kind) {
    case OP_TICK:
        if (member && (uint64_t)op->b == m->m_latest + 1) {
            m->m_latest++;
            m->m_stamps = bit;
            m->m_n_stamps = 1;
        }
        break;
    case OP_STAMP:
        if (member && (uint64_t)op->b == m->m_latest && m->m_latest &&
            !(m->m_stamps & bit) && m->m_n_stamps < CO_ALMANAC_MAX_STAMPS) {
            m->m_stamps |= bit;
            m->m_n_stamps++;
        }
        break;
    case OP_PUBLISH:
        if (member && m->m_version[op->b] != op->c) {
            m->m_version[op->b] = (int)op->c;
            m->m_sigs[op->b] = bit;
        }
        break;
    case OP_SIGN:
        if (member && m->m_version[op->b] == op->c && op->c >= 0)
            m->m_sigs[op->b] |= bit;
        break;
    case OP_APPEND: {
        int kind = (int)op->b / 16, subject = (int)(op->b / 4) % 4,
            body = (int)op->b % 4;
        if (!member)
            break;
        if (op->c) {
            /* once: not when the latest entry of (kind, subject) says
             * the same */
            for (size_t i = m->m_n; i > 0; i--) {
                mentry *e = &m->m_entries[i - 1];
                if (e->kind != kind || e->subject != subject)
                    continue;
                if (e->body == body)
                    return;
                break;
            }
        }
        if (m->m_n < sizeof m->m_entries / sizeof m->m_entries[0])
            m->m_entries[m->m_n++] = (mentry){kind, subject, body, 0};
        break;
    }
    case OP_CSIGN:
        if (member && op->b >= 1 && (size_t)op->b <= m->m_n)
            m->m_entries[op->b - 1].sigs |= bit;
        break;
    }
}

/* ---- checks --------------------------------------------------------------------- */

static unsigned sig_bits(modctx *m, const co_member_sig *sigs, size_t n,
                         char *why, bool *ok)
{
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int k = member_index(m, &sigs[i].member);
        if (k < 0) {
            *ok = sim_fail(why, "a signature by a non-member was kept");
            return 0;
        }
        bits |= 1u << k;
    }
    return bits;
}

static bool almanac_check(modctx *m, unsigned index, struct mk_fsm *f,
                          bool at_head, char *why)
{
    const co_almanac_tick *t = co__almanac_latest(f);
    if (t->seq != m->last_tick[index])
        return sim_fail(why, "latest tick %" PRIu64 ", the last one seen %"
                             PRIu64, t->seq, m->last_tick[index]);
    for (size_t i = 0; i < t->n_stamps; i++)
        if (member_index(m, &t->stamps[i].member) < 0)
            return sim_fail(why, "tick %" PRIu64 " carries an outsider's "
                                 "stamp", t->seq);
    if (!at_head)
        return true;
    bool ok = true;
    unsigned bits = 0;
    for (size_t i = 0; i < t->n_stamps; i++)
        bits |= 1u << member_index(m, &t->stamps[i].member);
    if (t->seq != m->m_latest || t->n_stamps != m->m_n_stamps ||
        bits != m->m_stamps)
        ok = sim_fail(why, "tick %" PRIu64 " with %zu stamps, the model: "
                           "tick %" PRIu64 " with %u",
                      t->seq, t->n_stamps, m->m_latest, m->m_n_stamps);
    return ok;
}

static int verify_card(const mk_peer_id *member, const uint8_t *bytes,
                       size_t len, const uint8_t *sig)
{
    return co_card_verify(member, bytes, len, sig);
}

static bool atlas_check(modctx *m, unsigned index, struct mk_fsm *f,
                        bool at_head, char *why)
{
    bool ok = true;
    size_t n = co__atlas_count(f);
    unsigned minority = (m->n - 1) / 2;
    size_t want_n = 0;
    for (int c = 0; c < CITIZENS; c++)
        want_n += m->m_version[c] >= 0;
    for (size_t i = 0; i < n && ok; i++) {
        const co__atlas_item *it = co__atlas_at(f, i);
        int c = -1, v = -1;
        for (int x = 0; x < CITIZENS; x++)
            for (int y = 0; y < VERSIONS; y++)
                if (mk_id_eq(&it->card.hash, &m->card_hash[x][y])) {
                    c = x;
                    v = y;
                }
        if (c < 0 || c == 5)
            return sim_fail(why, "a card nobody on the committee published "
                                 "is in the Atlas");
        /* Count, ourselves, the committee signatures that verify. */
        unsigned valid = 0;
        unsigned bits = sig_bits(m, it->sigs, it->n_sigs, why, &ok);
        if (!ok)
            return false;
        for (size_t k = 0; k < it->n_sigs; k++)
            valid += verify_card(&it->sigs[k].member, it->card.bytes,
                                 it->card.len, it->sigs[k].sig) == 0;
        if (valid != it->n_sigs)
            return sim_fail(why, "citizen %d keeps %zu signatures, %u verify",
                            c, it->n_sigs, valid);
        bool majority = 2 * valid > m->n;
        if (co__atlas_verified(f, it) != majority)
            return sim_fail(why, "citizen %d: verified %d with %u of %u "
                                 "signatures", c, co__atlas_verified(f, it),
                            valid, m->n);
        if (c >= 3 && (majority || valid > minority))
            return sim_fail(why, "citizen %d, signed only by a minority, has "
                                 "%u signatures", c, valid);
        if (at_head && (m->m_version[c] != v || m->m_sigs[c] != bits))
            ok = sim_fail(why, "citizen %d: version %d signed %#x, the "
                               "model version %d signed %#x",
                          c, v, bits, m->m_version[c], m->m_sigs[c]);
    }
    if (ok && at_head && n != want_n)
        ok = sim_fail(why, "%zu cards, the model %zu", n, want_n);
    return ok;
}

static bool chronicle_check(modctx *m, unsigned index, struct mk_fsm *f,
                            bool at_head, char *why)
{
    size_t n = co__chronicle_count(f);
    co_chronicle_entry *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return sim_fail(why, "out of memory");
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const co__chronicle_entry *e = co__chronicle_at(f, i);
        co__chronicle_view(e, &v[i]);
        unsigned bits = sig_bits(m, e->sigs, e->n_sigs, why, &ok);
        if (!ok)
            break;
        if (at_head && i < m->m_n) {
            const mentry *me = &m->m_entries[i];
            char k[16], b[16];
            snprintf(k, sizeof k, "kind-%d", me->kind);
            snprintf(b, sizeof b, "body-%d", me->body);
            if (strcmp(e->kind, k) != 0 || e->body_len != strlen(b) ||
                memcmp(e->body, b, e->body_len) != 0 || bits != me->sigs)
                ok = sim_fail(why, "entry %zu differs from the model's", i + 1);
        }
    }
    if (ok && at_head && n != m->m_n)
        ok = sim_fail(why, "%zu entries, the model %zu", n, m->m_n);
    if (ok) {
        co_chronicle_check chk;
        co_chronicle_verify_entries(v, n, m->info.committee, m->n, &chk);
        /* The chain must hold at every step; a head a majority signed may
         * lag (co-signatures are later commands), so "nothing vouched for
         * yet" is not a violation, tampering is. */
        if (chk.status == CO_ECHAIN || chk.status == CO_ECONFIG)
            ok = sim_fail(why, "the chain fails at entry %" PRIu64 ": %s",
                          chk.first_bad, chk.why);
    }
    free(v);
    return ok;
}

static bool mod_check(void *ctx, unsigned index, struct mk_fsm *f,
                      bool at_head, char *why)
{
    modctx *m = ctx;
    if (m->bad[0])
        return sim_fail(why, "%s", m->bad);
    switch (m->which) {
    case 'a': return almanac_check(m, index, f, at_head, why);
    case 't': return atlas_check(m, index, f, at_head, why);
    default: return chronicle_check(m, index, f, at_head, why);
    }
}

#define MODULE(var, label, setup_fn)                                       \
    const sim_machine var = {                                              \
        .name = label,                                                     \
        .setup = setup_fn,                                                 \
        .teardown = mod_teardown,                                          \
        .fsm_new = mod_new,                                                \
        .fsm_free = mod_free,                                              \
        .next_cmd = mod_next,                                              \
        .model_apply = mod_model,                                          \
        .check = mod_check,                                                \
        .restored = mod_restored,                                          \
    }

MODULE(sim_almanac, "almanac", almanac_setup);
MODULE(sim_atlas, "atlas", atlas_setup);
MODULE(sim_chronicle, "chronicle", chronicle_setup);
