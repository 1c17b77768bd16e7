/* The confluence state machine: what every committee member and replica
 * of a confluence folds (coalition/confluence.h, "replay").
 *
 * Commands are facts as the leader observed them: FACT {citizen, bytes}
 * and TICK {seq} (the clock), each signed by the committee member that
 * proposed it, and RETIRE. The machine keeps, per spanned citizen, the
 * last fact folded; hands facts and ticks to the contributor's machine;
 * applies the declared stall behaviour on every tick; and appends what
 * the contributor emits to the log with evidence pointers it builds
 * itself from the facts it holds, so a commit can only ever point at a
 * fact that was really folded, with that fact's real hash.
 *
 * Dedup is by clock event: a fact is folded only when its event is newer
 * than the last one folded from that citizen, a tick only when its seq
 * is newer than the last tick. A new leader re-proposing what the old one
 * already committed is therefore refused, never folded twice; that is
 * what lets every member propose from its own observations without
 * coordinating.
 *
 * A malformed command is refused (result byte 0) rather than failing
 * apply(): anyone who can reach a member can submit, and one bad command
 * must not stop the committee. Only the contributor's machine failing
 * with something other than MK_EDECODE stops it (that is a bug).
 */
#include <stdlib.h>
#include <string.h>

#include "coalition/confluence.h"
#include "mosaik/blake3.h"
#include "mosaik/error.h"
#include "module_fsm.h"

/* Facts arrive at a few per source per tick: a small memo suffices. */
#define SIG_CACHE_SLOTS 1024

typedef struct src_state {
    bool has;
    co_clock_event last;
    uint8_t *fact; /* owned */
    size_t len;
    mk_id hash;    /* blake3(fact) */
    uint64_t facts;
    uint64_t at_tick;  /* the latest tick's seq when it was folded */
    uint64_t at_count; /* ticks folded before it: what ages it */
    int64_t observed_ms;
} src_state;

typedef struct cfl {
    co_confluence_def def;
    co_confluence_info info;
    co_module_info m; /* the committee, for the modules' retirement rule */
    mk__sig_cache *verified; /* facts and ticks checked at admit and apply */
    void *ms;         /* the contributor machine's state */
    src_state src[CO_CONFLUENCE_MAX_SOURCES];
    uint64_t tick, ticks;
    int64_t tick_ms;
    bool stalled;
    uint64_t stalled_since, partial_commits, halted_ticks;
    uint64_t count; /* commits ever; the last index */
    /* The last min(count, KEEP) commits; index i lives at (i-1) % KEEP.
     * Bodies are owned. Grown on demand. */
    co_confluence_commit *ring;
    size_t ring_cap;
    co_retirement ret;
} cfl;

struct co_confluence_ctx {
    cfl *f;
    bool in_tick;
    uint32_t live; /* citizens whose latest fact counts now */
    size_t n;
    co_confluence_commit staged[CO_CONFLUENCE_MAX_EMIT]; /* bodies owned */
};

/* ---- the context the contributor sees ---------------------------------- */

bool co_confluence_latest(const co_confluence_ctx *ctx, size_t src,
                          const uint8_t **fact, size_t *len,
                          co_clock_event *event)
{
    const cfl *f = ctx->f;
    if (src >= f->info.n_sources || !(ctx->live & (1u << src)))
        return false;
    const src_state *s = &f->src[src];
    if (fact)
        *fact = s->fact;
    if (len)
        *len = s->len;
    if (event)
        *event = s->last;
    return true;
}

uint64_t co_confluence_clock(const co_confluence_ctx *ctx)
{
    return ctx->f->tick;
}

int co_confluence_emit(co_confluence_ctx *ctx, size_t key_src,
                       co_clock_event key, const void *body, size_t len,
                       uint32_t evidence)
{
    cfl *f = ctx->f;
    if (key_src >= f->info.n_sources || len > CO_CONFLUENCE_MAX_BODY ||
        (evidence & ~ctx->live) != 0 || ctx->n == CO_CONFLUENCE_MAX_EMIT)
        return MK_EINVAL;
    co_confluence_commit *c = &ctx->staged[ctx->n];
    memset(c, 0, sizeof *c);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return MK_ENOMEM;
    if (len)
        memcpy(copy, body, len);
    c->kind = CO_COMMIT_FACT;
    c->key_citizen = f->info.src[key_src].citizen;
    c->key_event = key;
    c->body = copy;
    c->body_len = len;
    /* Evidence is built here, from what was folded, never taken from the
     * contributor: a commit cannot point at a fact the log lacks. */
    for (size_t i = 0; i < f->info.n_sources; i++) {
        if (!(evidence & (1u << i)))
            continue;
        co_evidence *e = &c->evidence[c->n_evidence++];
        e->citizen = f->info.src[i].stable_id;
        e->surface = f->info.src[i].stream;
        e->event = f->src[i].last;
        e->hash = f->src[i].hash;
    }
    ctx->n++;
    return 0;
}

static void discard(co_confluence_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n; i++)
        free((void *)ctx->staged[i].body);
    ctx->n = 0;
}

/* ---- the log ----------------------------------------------------------- */

/* Makes room for `n` more commits, so that appending them cannot fail
 * half way. While the ring grows every index is below its capacity, so
 * the slot (index-1) % cap stays the same across a growth. */
static int ring_reserve(cfl *f, size_t n)
{
    if (f->ring_cap == CO_CONFLUENCE_KEEP ||
        f->count + n <= (uint64_t)f->ring_cap)
        return 0;
    size_t cap = f->ring_cap ? f->ring_cap : 16;
    while (cap < CO_CONFLUENCE_KEEP && f->count + n > (uint64_t)cap)
        cap *= 2;
    if (cap > CO_CONFLUENCE_KEEP)
        cap = CO_CONFLUENCE_KEEP;
    co_confluence_commit *grown = realloc(f->ring, cap * sizeof *grown);
    if (!grown)
        return MK_ENOMEM;
    memset(grown + f->ring_cap, 0, (cap - f->ring_cap) * sizeof *grown);
    f->ring = grown;
    f->ring_cap = cap;
    return 0;
}

/* Appends one commit, taking its body; room was reserved. */
static void append(cfl *f, co_confluence_commit *c)
{
    c->index = ++f->count;
    co_confluence_commit *slot = &f->ring[(c->index - 1) % f->ring_cap];
    free((void *)slot->body);
    *slot = *c;
}

static void flush(cfl *f, co_confluence_ctx *ctx, bool partial)
{
    for (size_t i = 0; i < ctx->n; i++) {
        ctx->staged[i].partial = partial;
        append(f, &ctx->staged[i]);
    }
    if (partial)
        f->partial_commits += ctx->n;
    ctx->n = 0;
}

static const co_confluence_commit *get(const cfl *f, uint64_t index)
{
    uint64_t kept = f->count < f->ring_cap ? f->count : f->ring_cap;
    if (index == 0 || index > f->count || index <= f->count - kept)
        return NULL;
    return &f->ring[(index - 1) % f->ring_cap];
}

/* ---- command digests --------------------------------------------------- */

static void u64le(uint8_t b[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static void fact_digest(const mk_id *sig, uint64_t src, int64_t observed,
                        const uint8_t *fact, size_t len, uint8_t out[32])
{
    uint8_t a[8], b[8];
    u64le(a, src);
    u64le(b, (uint64_t)observed);
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, "coalition/confluence/fact/1", 27);
    mk_blake3_update(&h, sig->b, MK_ID_LEN);
    mk_blake3_update(&h, a, 8);
    mk_blake3_update(&h, b, 8);
    mk_blake3_update(&h, fact, len);
    mk_blake3_final(&h, out, 32);
}

static void tick_digest(const mk_id *sig, uint64_t seq, int64_t stamp,
                        uint8_t out[32])
{
    uint8_t a[8], b[8];
    u64le(a, seq);
    u64le(b, (uint64_t)stamp);
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, "coalition/confluence/tick/1", 27);
    mk_blake3_update(&h, sig->b, MK_ID_LEN);
    mk_blake3_update(&h, a, 8);
    mk_blake3_update(&h, b, 8);
    mk_blake3_final(&h, out, 32);
}

void co_confluence_cmd_fact(mk_buf *out, const co_confluence_info *info,
                            size_t src, const uint8_t *fact, size_t len,
                            int64_t observed_ms, const mk_keypair *member)
{
    uint8_t d[32], sig[MK_SIG_LEN];
    fact_digest(&info->signature, src, observed_ms, fact, len, d);
    mk_sign(member, d, sizeof d, sig);
    mk_put_u8(out, CO_CONFLUENCE_CMD_FACT);
    mk_put_varint(out, src);
    mk_put_bytes(out, fact, len);
    mk_put_i64(out, observed_ms);
    mk_put_id(out, &member->pub);
    mk_put_raw(out, sig, MK_SIG_LEN);
}

void co_confluence_cmd_tick(mk_buf *out, const co_confluence_info *info,
                            uint64_t seq, int64_t stamp_ms,
                            const mk_keypair *member)
{
    uint8_t d[32], sig[MK_SIG_LEN];
    tick_digest(&info->signature, seq, stamp_ms, d);
    mk_sign(member, d, sizeof d, sig);
    mk_put_u8(out, CO_CONFLUENCE_CMD_TICK);
    mk_put_varint(out, seq);
    mk_put_i64(out, stamp_ms);
    mk_put_id(out, &member->pub);
    mk_put_raw(out, sig, MK_SIG_LEN);
}

/* ---- applying ---------------------------------------------------------- */

static uint32_t have_mask(const cfl *f)
{
    uint32_t m = 0;
    for (size_t i = 0; i < f->info.n_sources; i++)
        if (f->src[i].has)
            m |= 1u << i;
    return m;
}

/* A command, decoded; pointers are into the command's bytes. */
typedef struct cfl_cmd {
    uint8_t kind;
    uint64_t src;           /* FACT */
    const uint8_t *fact;    /* FACT */
    size_t len;
    int64_t observed;       /* FACT */
    co_clock_event ev;      /* FACT: what its surface reads in it */
    uint64_t seq;           /* TICK */
    int64_t stamp;          /* TICK */
    co_retirement retire;   /* RETIRE */
} cfl_cmd;

/* Decodes a whole command and checks what needs no state (module_fsm.h):
 * a fact its surface can read, for a source the confluence spans, and
 * every command signed by a committee member. Whether a fact or tick is
 * newer than what was folded is state. */
static int cfl_check(const cfl *f, const mk_id *module_sig,
                     const uint8_t *cmd, size_t len, cfl_cmd *out)
{
    memset(out, 0, sizeof *out);
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    out->kind = mk_get_u8(&r);
    uint8_t d[32];
    switch (out->kind) {
    case CO_CONFLUENCE_CMD_FACT:
        out->src = mk_get_varint(&r);
        out->fact = mk_get_bytes(&r, &out->len, CO_CONFLUENCE_MAX_FACT);
        out->observed = mk_get_i64(&r);
        break;
    case CO_CONFLUENCE_CMD_TICK:
        out->seq = mk_get_varint(&r);
        out->stamp = mk_get_i64(&r);
        break;
    case CO_CONFLUENCE_CMD_RETIRE:
        /* The modules' rule: a committee member's signed marker. */
        return co__retire_check(&r, &f->m, f->verified, module_sig, &out->retire);
    default:
        return MK_EDECODE;
    }
    mk_peer_id member;
    mk_get_id(&r, &member);
    const uint8_t *sig = mk_get_raw(&r, MK_SIG_LEN);
    if (mk_reader_done(&r) != 0 || !sig)
        return MK_EDECODE;
    if (out->kind == CO_CONFLUENCE_CMD_TICK) {
        tick_digest(&f->info.signature, out->seq, out->stamp, d);
        return co__member_check(&f->m, f->verified, &member, d, sig);
    }
    if (!out->fact || out->src >= f->info.n_sources ||
        f->def.surfaces[out->src].event(out->fact, out->len, &out->ev) != 0)
        return MK_EDECODE;
    fact_digest(&f->info.signature, out->src, out->observed, out->fact,
                out->len, d);
    return co__member_check(&f->m, f->verified, &member, d, sig);
}

static int cfl_admit(struct mk_fsm *fsm, const uint8_t *cmd, size_t len)
{
    cfl_cmd c;
    return cfl_check(fsm->data, &fsm->signature, cmd, len, &c);
}

static int apply_fact(cfl *f, const cfl_cmd *c, bool *ok)
{
    const size_t src = (size_t)c->src, len = c->len;
    const uint8_t *fact = c->fact;
    const co_clock_event ev = c->ev;
    src_state *s = &f->src[src];
    if (f->ret.retired || (s->has && co_clock_event_cmp(&ev, &s->last) <= 0))
        return 0; /* refused: *ok stays false */

    uint8_t *copy = malloc(len ? len : 1);
    if (!copy || ring_reserve(f, CO_CONFLUENCE_MAX_EMIT) < 0) {
        free(copy);
        return MK_ENOMEM;
    }
    memcpy(copy, fact, len);
    src_state before = *s;
    s->has = true;
    s->last = ev;
    s->fact = copy;
    s->len = len;
    mk_id_hash(&s->hash, fact, len);
    s->facts++;
    s->at_tick = f->tick;
    s->at_count = f->ticks;
    s->observed_ms = c->observed;

    co_confluence_ctx ctx = {.f = f, .live = have_mask(f)};
    int rc = f->def.machine->fold
                 ? f->def.machine->fold(f->ms, &ctx, src, fact, len)
                 : 0;
    if (rc != 0) {
        discard(&ctx);
        free(copy);
        *s = before;
        /* The contributor refused the fact: a refusal, not a failure. */
        return rc == MK_EDECODE ? 0 : rc;
    }
    free(before.fact);
    flush(f, &ctx, f->stalled);
    *ok = true;
    return 0;
}

static int apply_tick(cfl *f, const cfl_cmd *c, bool *ok)
{
    const uint64_t seq = c->seq;
    const int64_t stamp = c->stamp;
    if (f->ret.retired || seq <= f->tick)
        return 0;

    /* Who counts at this tick: a citizen whose latest fact is at most
     * bound_ticks ticks old. Age is counted in ticks this confluence
     * folded (this one included), not in milliseconds, so every replica
     * judges alike, and not in Almanac seqs, so a confluence that starts
     * late or misses ticks does not age what it just read. */
    uint32_t live = 0, all = 0;
    for (size_t i = 0; i < f->info.n_sources; i++) {
        const src_state *s = &f->src[i];
        all |= 1u << i;
        if (s->has && (f->def.bound_ticks == 0 ||
                       f->ticks + 1 - s->at_count <= f->def.bound_ticks))
            live |= 1u << i;
    }
    bool complete = live == all;
    bool halt = live == 0 || (!complete && f->def.stall == CO_STALL_HALT);
    if (ring_reserve(f, CO_CONFLUENCE_MAX_EMIT) < 0)
        return MK_ENOMEM;
    co_confluence_ctx ctx = {.f = f, .in_tick = true, .live = live};
    if (!halt && f->def.machine->tick) {
        int rc = f->def.machine->tick(f->ms, &ctx, seq);
        if (rc != 0) {
            discard(&ctx);
            return rc == MK_EDECODE ? 0 : rc;
        }
    }
    flush(f, &ctx, !complete);
    f->tick = seq;
    f->tick_ms = stamp;
    f->ticks++;
    if (!complete && !f->stalled)
        f->stalled_since = seq;
    f->stalled = !complete;
    if (halt)
        f->halted_ticks++;
    *ok = true;
    return 0;
}

static int marker(cfl *f)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_id(&b, &f->info.fingerprint);
    mk_put_str(&b, f->ret.reason);
    mk_put_u8(&b, f->ret.has_successor);
    if (f->ret.has_successor)
        mk_put_id(&b, &f->ret.successor);
    if (b.err) {
        mk_buf_free(&b);
        return MK_ENOMEM;
    }
    co_confluence_commit c = {.kind = CO_COMMIT_RETIRED,
                              .key_event = {0, f->tick}};
    memcpy(c.key_citizen.b, f->info.fingerprint.b, CO_CITIZEN_ID_LEN);
    if (ring_reserve(f, 1) < 0) {
        mk_buf_free(&b);
        return MK_ENOMEM;
    }
    size_t len;
    c.body = mk_buf_detach(&b, &len);
    c.body_len = len;
    append(f, &c);
    return 0;
}

static int apply_cmd(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                     mk_buf *result)
{
    cfl *f = fsm->data;
    cfl_cmd c;
    int rc = cfl_check(f, &fsm->signature, cmd, len, &c);
    bool ok = false;
    if (rc == MK_EDECODE)
        return rc;
    if (rc < 0) {
        /* Refused: answered with the log's length, like a stale fact. */
        rc = 0;
    } else if (c.kind == CO_CONFLUENCE_CMD_FACT) {
        rc = apply_fact(f, &c, &ok);
    } else if (c.kind == CO_CONFLUENCE_CMD_TICK) {
        rc = apply_tick(f, &c, &ok);
    } else {
        bool was = f->ret.retired;
        mk_buf scratch;
        mk_buf_init(&scratch);
        /* The first marker wins; it then becomes the log's last commit. */
        rc = co__retire_apply(&f->ret, &c.retire, &scratch);
        mk_buf_free(&scratch);
        if (rc == 0 && !was && f->ret.retired) {
            rc = marker(f);
            if (rc < 0)
                f->ret.retired = false;
            ok = rc == 0;
        }
    }
    if (rc != 0)
        return rc;
    mk_put_u8(result, ok);
    mk_put_varint(result, f->count);
    return result->err;
}

static int cfl_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                     mk_buf *result)
{
    return co__refuse_malformed(apply_cmd(fsm, cmd, len, result), result);
}

/* ---- snapshots --------------------------------------------------------- */

static int cfl_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    cfl *f = fsm->data;
    mk_put_raw(out, "CFL1", 4);
    mk_put_varint(out, f->info.n_sources);
    for (size_t i = 0; i < f->info.n_sources; i++) {
        const src_state *s = &f->src[i];
        mk_put_u8(out, s->has);
        if (!s->has)
            continue;
        mk_put_varint(out, s->last.epoch);
        mk_put_varint(out, s->last.seq);
        mk_put_bytes(out, s->fact, s->len);
        mk_put_varint(out, s->facts);
        mk_put_varint(out, s->at_tick);
        mk_put_varint(out, s->at_count);
        mk_put_i64(out, s->observed_ms);
    }
    mk_put_varint(out, f->tick);
    mk_put_i64(out, f->tick_ms);
    mk_put_varint(out, f->ticks);
    mk_put_u8(out, f->stalled);
    mk_put_varint(out, f->stalled_since);
    mk_put_varint(out, f->partial_commits);
    mk_put_varint(out, f->halted_ticks);
    mk_put_varint(out, f->count);
    uint64_t kept = f->count < f->ring_cap ? f->count : f->ring_cap;
    mk_put_varint(out, kept);
    mk_buf one;
    mk_buf_init(&one);
    for (uint64_t i = f->count - kept + 1; i <= f->count; i++) {
        mk_buf_reset(&one);
        co_confluence_commit_encode(get(f, i), &one);
        mk_put_bytes(out, one.data, one.len);
    }
    if (one.err)
        out->err = one.err;
    mk_buf_free(&one);
    co__retirement_put(out, &f->ret);
    mk_buf ms;
    mk_buf_init(&ms);
    int rc = f->def.machine->snapshot ? f->def.machine->snapshot(f->ms, &ms)
                                      : 0;
    if (rc == 0 && ms.err)
        rc = ms.err;
    mk_put_bytes(out, ms.data, ms.len);
    mk_buf_free(&ms);
    return rc ? rc : out->err;
}

static void free_sources(src_state *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].fact);
        v[i].fact = NULL;
    }
}

static void free_ring(co_confluence_commit *ring, size_t cap)
{
    for (size_t i = 0; ring && i < cap; i++)
        free((void *)ring[i].body);
    free(ring);
}

/* Restores into fresh structures and swaps only when everything parsed,
 * the contributor's state included: a bad snapshot leaves the state
 * as it was. */
static int cfl_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    cfl *f = fsm->data;
    cfl t;
    memset(&t, 0, sizeof t);
    mk_reader r;
    mk_reader_init(&r, snap, len);
    const uint8_t *magic = mk_get_raw(&r, 4);
    int rc = MK_EDECODE;
    if (!magic || memcmp(magic, "CFL1", 4) != 0 ||
        mk_get_varint(&r) != f->info.n_sources)
        goto fail;
    for (size_t i = 0; i < f->info.n_sources; i++) {
        src_state *s = &t.src[i];
        uint8_t has = mk_get_u8(&r);
        if (has > 1)
            goto fail;
        if (!has)
            continue;
        s->has = true;
        s->last.epoch = mk_get_varint(&r);
        s->last.seq = mk_get_varint(&r);
        size_t n;
        const uint8_t *p = mk_get_bytes(&r, &n, CO_CONFLUENCE_MAX_FACT);
        s->facts = mk_get_varint(&r);
        s->at_tick = mk_get_varint(&r);
        s->at_count = mk_get_varint(&r);
        s->observed_ms = mk_get_i64(&r);
        co_clock_event ev;
        if (!p || f->def.surfaces[i].event(p, n, &ev) != 0 ||
            co_clock_event_cmp(&ev, &s->last) != 0)
            goto fail;
        if (!(s->fact = malloc(n ? n : 1))) {
            rc = MK_ENOMEM;
            goto fail;
        }
        memcpy(s->fact, p, n);
        s->len = n;
        mk_id_hash(&s->hash, p, n);
    }
    t.tick = mk_get_varint(&r);
    t.tick_ms = mk_get_i64(&r);
    t.ticks = mk_get_varint(&r);
    uint8_t stalled = mk_get_u8(&r);
    t.stalled = stalled == 1;
    t.stalled_since = mk_get_varint(&r);
    t.partial_commits = mk_get_varint(&r);
    t.halted_ticks = mk_get_varint(&r);
    t.count = mk_get_varint(&r);
    uint64_t kept = mk_get_count(&r, CO_CONFLUENCE_KEEP, 1);
    /* An honest snapshot keeps exactly the last min(count, KEEP). */
    if (r.err || stalled > 1 ||
        kept != (t.count < CO_CONFLUENCE_KEEP ? t.count : CO_CONFLUENCE_KEEP))
        goto fail;
    if (kept) {
        /* As ring_reserve would have grown it: every index below the
         * capacity until the ring is full. */
        t.ring_cap = 16;
        while (t.ring_cap < CO_CONFLUENCE_KEEP && t.count > t.ring_cap)
            t.ring_cap *= 2;
        if (t.ring_cap > CO_CONFLUENCE_KEEP)
            t.ring_cap = CO_CONFLUENCE_KEEP;
        if (!(t.ring = calloc(t.ring_cap, sizeof *t.ring))) {
            rc = MK_ENOMEM;
            goto fail;
        }
    }
    for (uint64_t i = t.count - kept + 1; i <= t.count; i++) {
        size_t n;
        const uint8_t *p = mk_get_bytes(&r, &n, 1u << 20);
        co_confluence_commit c;
        if (!p || co_confluence_commit_decode(&c, p, n) != 0 || c.index != i)
            goto fail;
        uint8_t *body = malloc(c.body_len ? c.body_len : 1);
        if (!body) {
            rc = MK_ENOMEM;
            goto fail;
        }
        memcpy(body, c.body, c.body_len);
        c.body = body;
        t.ring[(i - 1) % t.ring_cap] = c;
    }
    co__retirement_get(&r, &t.ret);
    if (r.err)
        goto fail;
    size_t mlen;
    const uint8_t *mstate = mk_get_bytes(&r, &mlen, len);
    if (mk_reader_done(&r) != 0 || !mstate)
        goto fail;
    if (f->def.machine->restore)
        rc = f->def.machine->restore(f->ms, mstate, mlen);
    else
        rc = mlen == 0 ? 0 : MK_EDECODE;
    if (rc != 0)
        goto fail;

    free_sources(f->src, f->info.n_sources);
    free_ring(f->ring, f->ring_cap);
    memcpy(f->src, t.src, sizeof f->src);
    f->tick = t.tick;
    f->tick_ms = t.tick_ms;
    f->ticks = t.ticks;
    f->stalled = t.stalled;
    f->stalled_since = t.stalled_since;
    f->partial_commits = t.partial_commits;
    f->halted_ticks = t.halted_ticks;
    f->count = t.count;
    f->ring = t.ring;
    f->ring_cap = t.ring_cap;
    f->ret = t.ret;
    return 0;

fail:
    free_sources(t.src, f->info.n_sources);
    free_ring(t.ring, t.ring_cap);
    return rc == 0 ? MK_EDECODE : rc;
}

/* ---- lifecycle and views ----------------------------------------------- */

int co_confluence_fsm_init(struct mk_fsm *fsm, const co_confluence_def *def,
                           char *err)
{
    memset(fsm, 0, sizeof *fsm);
    cfl *f = calloc(1, sizeof *f);
    if (!f)
        return MK_ENOMEM;
    f->def = *def;
    int rc = co_confluence_info_get(def, &f->info, err);
    if (rc < 0) {
        free(f);
        return rc;
    }
    f->m.config = def->config;
    f->m.root = f->info.fingerprint;
    f->m.committee_root = f->info.committee_root;
    memcpy(f->m.committee, f->info.committee, sizeof f->m.committee);
    f->m.n_committee = f->info.n_committee;
    if (def->machine->init && (rc = def->machine->init(&f->ms, def)) < 0) {
        free(f);
        return rc;
    }
    f->verified = mk__sig_cache_new(SIG_CACHE_SLOTS);
    fsm->version = MK_FSM_VERSION;
    fsm->data = f;
    fsm->signature = f->info.signature;
    fsm->apply = cfl_apply;
    fsm->snapshot = cfl_snapshot;
    fsm->restore = cfl_restore;
    fsm->admit = cfl_admit;
    return 0;
}

void co_confluence_fsm_free(struct mk_fsm *fsm)
{
    cfl *f = fsm->data;
    if (!f)
        return;
    if (f->def.machine->free)
        f->def.machine->free(f->ms);
    free_sources(f->src, f->info.n_sources);
    free_ring(f->ring, f->ring_cap);
    mk__sig_cache_free(f->verified);
    free(f);
    fsm->data = NULL;
}

const co_confluence_info *co_confluence_fsm_info(const struct mk_fsm *fsm)
{
    return &((const cfl *)fsm->data)->info;
}

uint64_t co_confluence_fsm_count(const struct mk_fsm *fsm)
{
    return ((const cfl *)fsm->data)->count;
}

int co_confluence_fsm_get(const struct mk_fsm *fsm, uint64_t index,
                          const co_confluence_commit **out)
{
    const co_confluence_commit *c = get(fsm->data, index);
    if (!c)
        return MK_ENOENT;
    *out = c;
    return 0;
}

void co_confluence_fsm_status(const struct mk_fsm *fsm, int64_t now_ms,
                              co_confluence_status *out)
{
    const cfl *f = fsm->data;
    memset(out, 0, sizeof *out);
    out->stall = f->def.stall;
    out->bound_ticks = f->def.bound_ticks;
    out->tick = f->tick;
    out->commits = f->count;
    out->partial_commits = f->partial_commits;
    out->halted_ticks = f->halted_ticks;
    out->stalled = f->stalled;
    out->stalled_since = f->stalled ? f->stalled_since : 0;
    out->retired = f->ret.retired;
    out->n_sources = f->info.n_sources;
    for (size_t i = 0; i < f->info.n_sources; i++) {
        const src_state *s = &f->src[i];
        co_confluence_lag *l = &out->lag[i];
        l->has_fact = s->has;
        if (!s->has)
            continue;
        l->last = s->last;
        l->facts = s->facts;
        l->at_tick = s->at_tick;
        l->ticks_behind = f->ticks - s->at_count;
        l->observed_ms = s->observed_ms;
        l->age_ms = now_ms - s->observed_ms;
        l->live = f->def.bound_ticks == 0 ||
                  l->ticks_behind <= f->def.bound_ticks;
    }
}

void co_confluence_fsm_retirement(const struct mk_fsm *fsm,
                                  co_confluence_retirement *out)
{
    const cfl *f = fsm->data;
    memset(out, 0, sizeof *out);
    if (!f->ret.retired)
        return;
    out->retired = true;
    out->component = f->info.fingerprint;
    memcpy(out->reason, f->ret.reason, sizeof out->reason);
    out->has_successor = f->ret.has_successor;
    out->successor = f->ret.successor;
}

/* The last event folded from `src` and the last tick: what a member's
 * leader compares its observations with before proposing them. */
bool co__confluence_fsm_last(const struct mk_fsm *fsm, size_t src,
                             co_clock_event *out);
bool co__confluence_fsm_last(const struct mk_fsm *fsm, size_t src,
                             co_clock_event *out)
{
    const cfl *f = fsm->data;
    if (src >= f->info.n_sources || !f->src[src].has)
        return false;
    *out = f->src[src].last;
    return true;
}

uint64_t co__confluence_fsm_tick(const struct mk_fsm *fsm);
uint64_t co__confluence_fsm_tick(const struct mk_fsm *fsm)
{
    return ((const cfl *)fsm->data)->tick;
}

bool co__confluence_fsm_retired(const struct mk_fsm *fsm);
bool co__confluence_fsm_retired(const struct mk_fsm *fsm)
{
    return ((const cfl *)fsm->data)->ret.retired;
}
