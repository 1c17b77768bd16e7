/* The deterministic simulator: every group state machine, through the
 * exactly-once adapter (src/mosaik/group_fsm.h), inside libraft's
 * in-memory cluster (raft/fixture.h), under a seeded schedule of faults
 * and of client behaviour.
 *
 * Why a simulator when the unit tests already drive the fixture: those
 * tests script one scenario each, and the bugs that matter in replicated
 * state machines live in interleavings nobody scripts — a retry that
 * lands after a leader change, an acknowledgement followed by a crash, a
 * snapshot installed while a duplicate is in flight. Here one 64-bit seed
 * chooses the cluster (3 or 5 voters, snapshot cadence, pre-vote), every
 * fault (partitions, kills, saturated links, latencies, disk errors,
 * election-timer skew, clock jumps, deposed leaders) and every client
 * move (new commands, retries of the same (session, seq), reordered
 * resends, give-ups), and the invariants are checked after every fixture
 * event. Nothing reads a clock, so `sim --seed N` replays a failure event
 * for event; ranges run each seed in a child process so one abort (a
 * libraft assertion, a sanitizer report) costs one seed, not the run.
 *
 * What the adapter must guarantee, checked here for every machine:
 *   - replicas agree: the commands a replica applies, in order, are a
 *     prefix of one history (the first replica to apply position k
 *     defines it, every other must apply the same (session, seq, bytes)
 *     there), and replicas at the same position hold the same state hash;
 *   - nothing is applied twice: a (session, seq) appears once in the
 *     history, and a session's commands appear in increasing seq order;
 *   - what a client saw acknowledged is in the history at the position
 *     it was told, and stays there through every later fault; at the end,
 *     with the faults healed, every replica reaches the whole history;
 *   - nothing is applied that was not committed (last_applied never
 *     passes commit_index) or not submitted (bytes equal the client's).
 * The machine files (sim_*.c) add their own invariants and models.
 */
#include <raft.h>
#include <raft/fixture.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mosaik/error.h"
#include "mosaik/group_fsm.h"
#include "mosaik/group_members.h"
#include "sim.h"

#define MAX_SERVERS 5
#define MAX_SESSIONS 4
#define MAX_BATCH 8

/* ---- the PRNG ------------------------------------------------------------ */

uint64_t sim_next(sim_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

uint64_t sim_below(sim_rng *r, uint64_t n)
{
    return n ? sim_next(r) % n : 0;
}

bool sim_chance(sim_rng *r, unsigned num, unsigned den)
{
    return sim_below(r, den) < num;
}

bool sim_fail(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, SIM_WHY, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- log entries ----------------------------------------------------------
 *
 * The one place that knows how client commands become Raft log entries.
 * Today the group log carries one command per envelope and one envelope
 * per entry; when it carries batches, only this function changes: it
 * returns fewer entries, each covering a run of tuples. */

typedef struct sim_tuple {
    const uint8_t *session; /* MK__SESSION_LEN bytes */
    uint64_t seq, ack;
    const uint8_t *cmd;
    size_t len;
} sim_tuple;

/* Encodes `n` tuples into entries: out[e] is a raft_malloc'd buffer (the
 * caller hands it to raft_apply or frees it) and first[e] the index of
 * the first tuple entry e carries (entry e carries first[e] up to
 * first[e + 1], or n). Returns the number of entries, 0 on no memory. */
static size_t sim_entry_encode(const sim_tuple *t, size_t n,
                               struct raft_buffer *out, size_t *first)
{
    /* Both forms the leader proposes (group.c): a run of tuples as one
     * batch entry, or one plain envelope per tuple. Which one follows from
     * the first sequence number, so it is part of the seed's schedule. */
    bool batch = n > 1 && t[0].seq % 2 == 0;
    size_t ne = batch ? 1 : n;
    for (size_t i = 0; i < ne; i++) {
        size_t from = batch ? 0 : i, to = batch ? n : i + 1;
        size_t len = batch ? MK__BATCH_HDR : 0;
        for (size_t k = from; k < to; k++)
            len += mk__env_size(t[k].len);
        out[i].len = len;
        out[i].base = raft_malloc(len);
        if (!out[i].base) {
            while (i--)
                raft_free(out[i].base);
            return 0;
        }
        uint8_t *at = out[i].base;
        if (batch) {
            mk__batch_header_write(at, (uint32_t)n);
            at += MK__BATCH_HDR;
        }
        for (size_t k = from; k < to; k++) {
            mk__envelope e = {.seq = t[k].seq, .ack = t[k].ack,
                              .cmd = t[k].cmd, .len = t[k].len};
            memcpy(e.session, t[k].session, MK__SESSION_LEN);
            mk__env_write(at, &e);
            at += mk__env_size(t[k].len);
        }
        first[i] = from;
    }
    return ne;
}

/* ---- state ----------------------------------------------------------------- */

enum { OUT_NONE, OUT_ACKED, OUT_REJECTED, OUT_GAVE_UP };

/* One command a client generated (seq = its index + 1). */
typedef struct cmdrec {
    mk_buf bytes;
    sim_op op;
    int outcome;
    uint64_t pos;      /* acknowledged history position */
    uint64_t hist_pos; /* where it is in the history; 0: nowhere */
    unsigned in_flight;
    unsigned tries;
    raft_time sent_at;
    /* The adapter's latest answer for it, per server. */
    bool seen[MAX_SERVERS];
    mk__apply_kind kind[MAX_SERVERS];
    int status[MAX_SERVERS];
    uint64_t applied[MAX_SERVERS];
} cmdrec;

typedef struct session {
    uint8_t id[MK__SESSION_LEN];
    cmdrec *cmds;
    size_t n, cap;
    uint64_t ack;      /* outcome known for every seq <= ack */
    uint64_t last_seq; /* highest seq in the history */
    unsigned window;   /* unanswered commands it allows itself */
    bool resend;       /* told of a gap: resend everything unanswered */
} session;

/* One position of the agreed history. */
typedef struct hent {
    unsigned session;
    uint64_t seq;
    bool hashed;
    mk_id hash; /* the state hash of a replica that stood here */
} hent;

typedef struct sim sim;

typedef struct replica {
    sim *s;
    unsigned index;
    struct mk_fsm *fsm;
    mk__gfsm ad;
    uint64_t count; /* commands applied, by our own count */
    bool dirty;     /* state changed since the last check */
} replica;

typedef struct proposal {
    struct raft_apply req;
    sim *s;
    unsigned server;
    unsigned session;
    uint64_t seqs[MAX_BATCH];
    size_t n;
} proposal;

typedef struct sim_opts {
    const char *machine; /* NULL: chosen by the seed */
    unsigned steps;      /* fixture events under faults */
    unsigned servers;    /* 0: chosen by the seed */
    bool verbose;
    bool no_io_faults;
    unsigned fault_mask; /* bit k enables fault kind k (fault_step) */
    bool members;        /* membership changes (see "membership") */
    bool no_remove;      /* ... without the operator's removals */
} sim_opts;

struct sim {
    uint64_t seed;
    sim_rng rng;
    const sim_opts *o;
    const sim_machine *m;
    void *mctx;
    sim_env env;
    struct raft_fixture f;
    unsigned n;
    replica rep[MAX_SERVERS];
    session sess[MAX_SESSIONS];
    hent *hist;
    size_t hist_len, hist_cap;
    bool cut[MAX_SERVERS][MAX_SERVERS];
    bool sat[MAX_SERVERS][MAX_SERVERS];
    bool down[MAX_SERVERS];
    /* libraft 0.15 turns a server whose disk failed RAFT_UNAVAILABLE for
     * good (there is no restart in the fixture), so disk errors go only
     * to a minority chosen at the start: the rest must still make
     * progress once the network heals. */
    bool io_faulty[MAX_SERVERS];
    unsigned election[MAX_SERVERS];
    unsigned max_cmds;
    uint64_t step;
    bool failed, closing;
    char why[SIM_WHY + 64];
    /* counters for the report */
    unsigned faults, acked, rejected, gave_up, restores, leaders;
    raft_id last_leader;
    struct members *mb; /* --members: the membership state, else NULL */
};

static void trace(sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void trace(sim *s, const char *fmt, ...)
{
    if (!s->o->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%6" PRIu64 " t=%6llu] ", s->step,
            (unsigned long long)s->f.time);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Records the first violation; later ones are consequences. */
static void violation(sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void violation(sim *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    int at = snprintf(s->why, sizeof s->why, "step %" PRIu64 ": ", s->step);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why + at, sizeof s->why - (size_t)at, fmt, ap);
    va_end(ap);
}

static int session_of(sim *s, const uint8_t *id)
{
    for (unsigned i = 0; i < s->env.n_sessions; i++)
        if (memcmp(s->sess[i].id, id, MK__SESSION_LEN) == 0)
            return (int)i;
    return -1;
}

/* ---- the adapter's hooks ----------------------------------------------------- */

static void hist_push(sim *s, unsigned sess, uint64_t seq)
{
    if (s->hist_len == s->hist_cap) {
        s->hist_cap = s->hist_cap ? s->hist_cap * 2 : 256;
        s->hist = realloc(s->hist, s->hist_cap * sizeof *s->hist);
        if (!s->hist) {
            fprintf(stderr, "sim: out of memory\n");
            exit(2);
        }
    }
    s->hist[s->hist_len++] = (hent){.session = sess, .seq = seq};
}

/* A replica applied command k (1-based) of its own sequence: it must be
 * command k of the history, or extend the history by one. */
static void on_new(sim *s, replica *r, unsigned si, uint64_t seq,
                   uint64_t k)
{
    session *ss = &s->sess[si];
    cmdrec *c = &ss->cmds[seq - 1];
    if (k != r->count + 1) {
        violation(s, "server %u applied command %" PRIu64
                     " right after %" PRIu64, r->index, k, r->count);
        return;
    }
    r->count = k;
    if (k <= s->hist_len) {
        hent *h = &s->hist[k - 1];
        if (h->session != si || h->seq != seq)
            violation(s, "server %u applied (session %u, seq %" PRIu64
                         ") at %" PRIu64 " where the history has "
                         "(session %u, seq %" PRIu64 ")",
                      r->index, si, seq, k, h->session, h->seq);
        return;
    }
    if (k != s->hist_len + 1) {
        violation(s, "server %u applied %" PRIu64 " past the history (%zu)",
                  r->index, k, s->hist_len);
        return;
    }
    if (c->hist_pos)
        violation(s, "(session %u, seq %" PRIu64 ") applied twice: at %"
                     PRIu64 " and at %" PRIu64,
                  si, seq, c->hist_pos, k);
    if (seq <= ss->last_seq)
        violation(s, "session %u: seq %" PRIu64 " applied after seq %"
                     PRIu64, si, seq, ss->last_seq);
    hist_push(s, si, seq);
    c->hist_pos = k;
    ss->last_seq = seq;
    s->m->model_apply(s->mctx, &c->op, c->bytes.data, c->bytes.len);
}

static void rep_applied(void *data, const mk__apply_event *ev)
{
    replica *r = data;
    sim *s = r->s;
    if (s->failed)
        return;
    if (ev->kind == MK__APPLY_BAD) {
        violation(s, "server %u: a well-formed entry was refused", r->index);
        return;
    }
    int si = session_of(s, ev->session);
    if (si < 0 || ev->seq == 0 || ev->seq > s->sess[si].n) {
        violation(s, "server %u applied an unknown (session, seq %" PRIu64
                     ")", r->index, ev->seq);
        return;
    }
    cmdrec *c = &s->sess[si].cmds[ev->seq - 1];
    if (ev->cmd_len != c->bytes.len ||
        (ev->cmd_len && memcmp(ev->cmd, c->bytes.data, ev->cmd_len) != 0)) {
        violation(s, "server %u: (session %d, seq %" PRIu64
                     ") carries other bytes than were submitted",
                  r->index, si, ev->seq);
        return;
    }
    c->seen[r->index] = true;
    c->kind[r->index] = ev->kind;
    c->status[r->index] = ev->status;
    c->applied[r->index] = ev->applied;
    switch (ev->kind) {
    case MK__APPLY_NEW:
        if (ev->status == 0) {
            on_new(s, r, (unsigned)si, ev->seq, ev->applied);
            r->dirty = true;
        } else if (ev->status != MK_EDECODE || c->hist_pos) {
            violation(s, "server %u: (session %d, seq %" PRIu64
                         ") refused with %d after it was applied at %"
                         PRIu64, r->index, si, ev->seq, ev->status,
                      c->hist_pos);
        }
        break;
    case MK__APPLY_DUP:
        if (ev->status == 0 && ev->applied != c->hist_pos)
            violation(s, "server %u answered (session %d, seq %" PRIu64
                         ") as a duplicate of %" PRIu64
                         "; it is at %" PRIu64 " in the history",
                      r->index, si, ev->seq, ev->applied, c->hist_pos);
        break;
    default:
        break;
    }
    if (r->ad.applied != r->count)
        violation(s, "server %u: the adapter counts %" PRIu64
                     " applied, we saw %" PRIu64, r->index, r->ad.applied,
                  r->count);
}

static void rep_restored(void *data)
{
    replica *r = data;
    sim *s = r->s;
    s->restores++;
    r->count = r->ad.applied;
    r->dirty = true;
    trace(s, "server %u restored a snapshot at %" PRIu64, r->index,
          r->count);
    if (r->count > s->hist_len)
        violation(s, "server %u restored a snapshot at %" PRIu64
                     ", past the history (%zu)", r->index, r->count,
                  s->hist_len);
    if (s->m->restored)
        s->m->restored(s->mctx, r->index, r->fsm);
}

/* ---- clients ------------------------------------------------------------------ */

static void advance_ack(session *ss)
{
    while (ss->ack < ss->n && ss->cmds[ss->ack].outcome != OUT_NONE)
        ss->ack++;
}

/* What the client learns from server `sv` about one command it proposed
 * there, once raft says the entry was applied. */
static void learn(sim *s, unsigned sv, unsigned si, uint64_t seq)
{
    session *ss = &s->sess[si];
    cmdrec *c = &ss->cmds[seq - 1];
    if (!c->seen[sv]) {
        violation(s, "server %u acknowledged (session %u, seq %" PRIu64
                     ") it never applied", sv, si, seq);
        return;
    }
    switch (c->kind[sv]) {
    case MK__APPLY_NEW:
    case MK__APPLY_DUP:
        if (c->status[sv] != 0) {
            if (c->outcome == OUT_NONE) {
                c->outcome = OUT_REJECTED;
                s->rejected++;
            }
            break;
        }
        if (c->outcome == OUT_ACKED && c->pos != c->applied[sv]) {
            violation(s, "(session %u, seq %" PRIu64 ") acknowledged at %"
                         PRIu64 ", then at %" PRIu64, si, seq, c->pos,
                      c->applied[sv]);
            break;
        }
        if (c->applied[sv] == 0 || c->applied[sv] > s->hist_len ||
            s->hist[c->applied[sv] - 1].session != si ||
            s->hist[c->applied[sv] - 1].seq != seq) {
            violation(s, "(session %u, seq %" PRIu64 ") acknowledged at %"
                         PRIu64 ", which the history does not hold",
                      si, seq, c->applied[sv]);
            break;
        }
        if (c->outcome == OUT_NONE) {
            c->outcome = OUT_ACKED;
            c->pos = c->applied[sv];
            s->acked++;
        }
        break;
    case MK__APPLY_GAP:
        ss->resend = true;
        break;
    case MK__APPLY_STALE:
        /* Fine when the client gave it up (or already has an answer);
         * otherwise the adapter lost a result it promised to keep. */
        if (c->outcome == OUT_NONE && seq > ss->ack)
            violation(s, "(session %u, seq %" PRIu64
                         ") answered stale while still awaited", si, seq);
        break;
    default:
        break;
    }
    advance_ack(ss);
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    proposal *p = req->data;
    sim *s = p->s;
    (void)result;
    if (!s->closing && !s->failed) {
        session *ss = &s->sess[p->session];
        for (size_t i = 0; i < p->n; i++) {
            cmdrec *c = &ss->cmds[p->seqs[i] - 1];
            if (c->in_flight)
                c->in_flight--;
        }
        if (status == 0) {
            /* libraft answers a request once its first entry applied;
             * an entry carries our whole batch (sim_entry_encode). */
            for (size_t i = 0; i < p->n; i++)
                learn(s, p->server, p->session, p->seqs[i]);
        } else {
            trace(s, "server %u: proposal failed: %s", p->server,
                  raft_strerror(status));
        }
    }
    free(p);
}

/* Proposes commands `seqs` of session `si` on server `sv`. */
static void propose(sim *s, unsigned sv, unsigned si, const uint64_t *seqs,
                    size_t n)
{
    session *ss = &s->sess[si];
    sim_tuple t[MAX_BATCH];
    struct raft_buffer bufs[MAX_BATCH];
    size_t first[MAX_BATCH];
    for (size_t i = 0; i < n; i++) {
        cmdrec *c = &ss->cmds[seqs[i] - 1];
        t[i] = (sim_tuple){.session = ss->id, .seq = seqs[i], .ack = ss->ack,
                           .cmd = c->bytes.data, .len = c->bytes.len};
        c->tries++;
        c->sent_at = s->f.time;
    }
    size_t ne = sim_entry_encode(t, n, bufs, first);
    struct raft *r = raft_fixture_get(&s->f, sv);
    for (size_t e = 0; e < ne; e++) {
        size_t end = e + 1 < ne ? first[e + 1] : n;
        proposal *p = calloc(1, sizeof *p);
        if (!p) {
            fprintf(stderr, "sim: out of memory\n");
            exit(2);
        }
        p->s = s;
        p->server = sv;
        p->session = si;
        for (size_t i = first[e]; i < end; i++)
            p->seqs[p->n++] = seqs[i];
        p->req.data = p;
        int rv = raft_apply(r, &p->req, &bufs[e], 1, on_applied);
        if (rv != 0) {
            /* libraft 0.15 frees what it had appended when a later step
             * fails (client.c, err_after_log_append): only a refusal as
             * NOT_LEADER leaves the buffer ours. */
            if (rv == RAFT_NOTLEADER)
                raft_free(bufs[e].base);
            free(p);
            continue;
        }
        for (size_t i = 0; i < p->n; i++)
            ss->cmds[p->seqs[i] - 1].in_flight++;
        trace(s, "session %u -> server %u: seq %" PRIu64 "..%" PRIu64
                 " (ack %" PRIu64 ")", si, sv, p->seqs[0],
              p->seqs[p->n - 1], ss->ack);
    }
}

static cmdrec *new_cmd(sim *s, unsigned si)
{
    session *ss = &s->sess[si];
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 64;
        ss->cmds = realloc(ss->cmds, ss->cap * sizeof *ss->cmds);
        if (!ss->cmds) {
            fprintf(stderr, "sim: out of memory\n");
            exit(2);
        }
    }
    cmdrec *c = &ss->cmds[ss->n++];
    memset(c, 0, sizeof *c);
    mk_buf_init(&c->bytes);
    /* A client's picture of the state is some replica's, maybe stale. */
    unsigned v = (unsigned)sim_below(&s->rng, s->n);
    s->m->next_cmd(s->mctx, &s->rng, &s->env, s->rep[v].fsm, si, &c->bytes,
                   &c->op);
    if (c->bytes.err) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    return c;
}

/* Where a client sends: usually the leader it knows of, sometimes any
 * server (which refuses unless it leads). */
static unsigned pick_target(sim *s)
{
    unsigned l = raft_fixture_leader_index(&s->f);
    if (l < s->n && !sim_chance(&s->rng, 1, 10))
        return l;
    return (unsigned)sim_below(&s->rng, s->n);
}

#define RETRY_MS 600  /* a client resends an unanswered command */
#define GIVE_UP_TRIES 6

static void client_step(sim *s, unsigned si, bool heal)
{
    session *ss = &s->sess[si];
    sim_rng *g = &s->rng;
    unsigned sv = pick_target(s);
    if (s->down[sv])
        return;
    uint64_t seqs[MAX_BATCH];
    size_t n = 0;

    /* Told of a gap: everything unanswered, in order, in one go. */
    if (ss->resend) {
        ss->resend = false;
        for (uint64_t q = ss->ack + 1; q <= ss->n && n < MAX_BATCH; q++)
            if (ss->cmds[q - 1].outcome == OUT_NONE)
                seqs[n++] = q;
        if (n)
            propose(s, sv, si, seqs, n);
        return;
    }

    /* Give up on a command retried too often (never while healing, so
     * the final state says what became of everything). */
    if (!heal && sim_chance(g, 1, 30)) {
        for (uint64_t q = ss->ack + 1; q <= ss->n; q++) {
            cmdrec *c = &ss->cmds[q - 1];
            if (c->outcome == OUT_NONE && c->tries >= GIVE_UP_TRIES) {
                c->outcome = OUT_GAVE_UP;
                s->gave_up++;
                trace(s, "session %u gives up on seq %" PRIu64, si, q);
                advance_ack(ss);
                break;
            }
        }
    }

    /* Reordered resubmission: one unanswered command out of turn, or an
     * answered one again (a duplicate the network might deliver). */
    if (!heal && ss->n > ss->ack && sim_chance(g, 1, 12)) {
        uint64_t q = ss->ack + 1 + sim_below(g, ss->n - ss->ack);
        propose(s, sv, si, &q, 1);
        return;
    }
    if (!heal && ss->n && sim_chance(g, 1, 25)) {
        uint64_t q = 1 + sim_below(g, ss->n);
        propose(s, sv, si, &q, 1);
        return;
    }

    /* Retries: the unanswered ones whose last try is old. */
    unsigned unanswered = 0;
    for (uint64_t q = ss->ack + 1; q <= ss->n; q++) {
        cmdrec *c = &ss->cmds[q - 1];
        if (c->outcome != OUT_NONE)
            continue;
        unanswered++;
        if (s->f.time - c->sent_at >= RETRY_MS || c->tries == 0)
            if (n < MAX_BATCH)
                seqs[n++] = q;
    }
    if (n) {
        propose(s, sv, si, seqs, n);
        return;
    }

    /* Something new, within the window. */
    if (!heal && unanswered < ss->window && ss->n < s->max_cmds) {
        new_cmd(s, si);
        uint64_t q = ss->n;
        propose(s, sv, si, &q, 1);
    }
}

/* ---- faults ------------------------------------------------------------------- */

/* Cuts and saturation are separate in the fixture: a cut link fails
 * sends, a saturated one drops them. kill/revive saturate and desaturate
 * every link of the server, so we cut with disconnect/reconnect (which
 * kill and revive leave alone) and only saturate links between live
 * servers. (Debian's libraft is built without asserts, so the fixture's
 * own checks of these rules are silent: the rules are kept here.) */
static void link_set(sim *s, unsigned i, unsigned j, bool cut)
{
    s->cut[i][j] = cut;
    if (cut)
        raft_fixture_disconnect(&s->f, i, j);
    else
        raft_fixture_reconnect(&s->f, i, j);
}

/* libraft's fixture (0.15) saturates or desaturates every link of a
 * server it kills or revives, and asserts each is connected; in Debian's
 * build, without asserts, a cut link there corrupted its memory. So cuts
 * touching `x` are lifted around kill and revive and put back after
 * (`keep` remembers them). */
static void lift_cuts(sim *s, unsigned x, bool keep[MAX_SERVERS][2])
{
    for (unsigned y = 0; y < s->n; y++) {
        keep[y][0] = s->cut[x][y];
        keep[y][1] = s->cut[y][x];
        if (keep[y][0])
            link_set(s, x, y, false);
        if (keep[y][1])
            link_set(s, y, x, false);
    }
}

static void restore_cuts(sim *s, unsigned x, bool keep[MAX_SERVERS][2])
{
    for (unsigned y = 0; y < s->n; y++) {
        if (keep[y][0])
            link_set(s, x, y, true);
        if (keep[y][1])
            link_set(s, y, x, true);
    }
}

static unsigned n_down(sim *s)
{
    unsigned k = 0;
    for (unsigned i = 0; i < s->n; i++)
        k += s->down[i];
    return k;
}

static bool any_cut(sim *s)
{
    for (unsigned i = 0; i < s->n; i++)
        for (unsigned j = 0; j < s->n; j++)
            if (s->cut[i][j] || s->sat[i][j])
                return true;
    return n_down(s) > 0;
}

static void heal_links(sim *s)
{
    for (unsigned i = 0; i < s->n; i++)
        for (unsigned j = 0; j < s->n; j++) {
            if (i == j)
                continue;
            if (s->cut[i][j])
                link_set(s, i, j, false);
            if (s->sat[i][j] && !s->down[i] && !s->down[j])
                raft_fixture_desaturate(&s->f, i, j);
            s->sat[i][j] = false;
        }
}

static void members_fault(sim *s);
static bool out_of_config(sim *s, unsigned i);

static void fault_step(sim *s)
{
    sim_rng *g = &s->rng;
    unsigned i = (unsigned)sim_below(g, s->n);
    unsigned j = (unsigned)sim_below(g, s->n);
    unsigned kind = (unsigned)sim_below(g, s->mb ? 12 : 11);
    if (!(s->o->fault_mask >> kind & 1))
        return;
    s->faults++;
    switch (kind) {
    case 0: { /* partition: a random side against the rest */
        uint64_t side = sim_below(g, (1u << s->n) - 2) + 1;
        for (unsigned a = 0; a < s->n; a++)
            for (unsigned b = 0; b < s->n; b++)
                if (a != b && ((side >> a) & 1) != ((side >> b) & 1))
                    link_set(s, a, b, true);
        trace(s, "partition %#" PRIx64, side);
        break;
    }
    case 1:
        heal_links(s);
        trace(s, "heal");
        break;
    case 2: /* one-way loss */
        if (i != j) {
            link_set(s, i, j, !s->cut[i][j]);
            trace(s, "link %u->%u %s", i, j, s->cut[i][j] ? "cut" : "up");
        }
        break;
    case 3: /* crash: the fixture stops the server, keeping its log */
        if (!s->down[i] && n_down(s) < s->n - 1) {
            bool keep[MAX_SERVERS][2];
            lift_cuts(s, i, keep);
            raft_fixture_kill(&s->f, i);
            restore_cuts(s, i, keep);
            s->down[i] = true;
            trace(s, "kill %u", i);
        }
        break;
    case 4:
        for (unsigned k = 0; k < s->n; k++) {
            unsigned x = (i + k) % s->n;
            if (s->down[x] && !out_of_config(s, x)) {
                bool keep[MAX_SERVERS][2];
                lift_cuts(s, x, keep);
                raft_fixture_revive(&s->f, x);
                restore_cuts(s, x, keep);
                s->down[x] = false;
                for (unsigned y = 0; y < s->n; y++)
                    s->sat[x][y] = s->sat[y][x] = false;
                trace(s, "revive %u", x);
                break;
            }
        }
        break;
    case 5: /* saturation: messages wait, then flow again */
        if (i != j && !s->down[i] && !s->down[j] && !s->cut[i][j]) {
            if (s->sat[i][j])
                raft_fixture_desaturate(&s->f, i, j);
            else
                raft_fixture_saturate(&s->f, i, j);
            s->sat[i][j] = !s->sat[i][j];
            trace(s, "link %u->%u %s", i, j,
                  s->sat[i][j] ? "saturated" : "desaturated");
        }
        break;
    case 6: {
        unsigned ms = 1 + (unsigned)sim_below(g, 250);
        raft_fixture_set_network_latency(&s->f, i, ms);
        trace(s, "server %u network latency %u", i, ms);
        break;
    }
    case 7: {
        unsigned ms = 1 + (unsigned)sim_below(g, 120);
        raft_fixture_set_disk_latency(&s->f, i, ms);
        trace(s, "server %u disk latency %u", i, ms);
        break;
    }
    case 8: /* a disk (or send) error a few I/O calls from now */
        if (!s->o->no_io_faults && s->io_faulty[i]) {
            int delay = (int)sim_below(g, 30), repeat = 1 + (int)sim_below(g, 2);
            raft_fixture_io_fault(&s->f, i, delay, repeat);
            trace(s, "server %u io fault in %d, %d times", i, delay, repeat);
        }
        break;
    case 9: /* clock trouble: this server's timer runs early or late, and
             * the clients' wall clock jumps (either way) */
        /* libraft keeps a randomized timeout within [T, 2T] (T = 1000
         * here) and asserts it: skew inside that range. */
        s->election[i] = 1000 + (unsigned)sim_below(g, 1001);
        raft_fixture_set_randomized_election_timeout(&s->f, i, s->election[i]);
        s->env.clock_ms += (int64_t)sim_below(g, 20000) - 5000;
        trace(s, "server %u election timeout %u, clock %" PRId64, i,
              s->election[i], s->env.clock_ms);
        break;
    case 10: /* depose the leader (only on a clean network: the fixture's
              * helper asserts it succeeds) */
        if (!any_cut(s) && s->f.leader_id != 0 &&
            raft_state(raft_fixture_get(&s->f, (unsigned)s->f.leader_id - 1)) ==
                RAFT_LEADER) {
            trace(s, "depose %llu", (unsigned long long)s->f.leader_id - 1);
            raft_fixture_depose(&s->f);
            for (unsigned k = 0; k < s->n; k++)
                raft_fixture_set_randomized_election_timeout(&s->f, k,
                                                             s->election[k]);
        }
        break;
    case 11: /* --members: an operator's request, or the leader's death */
        members_fault(s);
        break;
    }
}

static void heal_all(sim *s)
{
    heal_links(s);
    for (unsigned i = 0; i < s->n; i++) {
        if (s->down[i] && !out_of_config(s, i)) {
            raft_fixture_revive(&s->f, i);
            s->down[i] = false;
        }
    }
    for (unsigned i = 0; i < s->n; i++) {
        raft_fixture_io_fault(&s->f, i, -1, 0);
        raft_fixture_set_network_latency(&s->f, i, 15);
        raft_fixture_set_disk_latency(&s->f, i, 10);
        s->election[i] = 1000 + 100 * i;
        raft_fixture_set_randomized_election_timeout(&s->f, i, s->election[i]);
    }
}

/* ---- invariants ------------------------------------------------------------------ */

static void check_step(sim *s)
{
    char why[SIM_WHY];
    for (unsigned i = 0; i < s->n && !s->failed; i++) {
        replica *r = &s->rep[i];
        struct raft *rf = raft_fixture_get(&s->f, i);
        if (rf->last_applied > rf->commit_index)
            violation(s, "server %u applied %llu past its commit index %llu",
                      i, (unsigned long long)rf->last_applied,
                      (unsigned long long)rf->commit_index);
        if (r->ad.fatal)
            violation(s, "server %u: the machine failed: %s", i,
                      mk_err_name(r->ad.fatal));
        if (r->ad.applied != r->count || r->count > s->hist_len)
            violation(s, "server %u at %" PRIu64 " (we count %" PRIu64
                         ", history %zu)", i, r->ad.applied, r->count,
                      s->hist_len);
        if (!r->dirty || s->failed)
            continue;
        r->dirty = false;
        if (r->count) {
            mk_id h;
            if (mk__fsm_state_hash(r->fsm, r->count, &h) != 0) {
                violation(s, "server %u: no state hash", i);
                break;
            }
            hent *e = &s->hist[r->count - 1];
            if (!e->hashed) {
                e->hash = h;
                e->hashed = true;
            } else if (!mk_id_eq(&e->hash, &h)) {
                violation(s, "server %u: state at %" PRIu64
                             " differs from another replica's there",
                          i, r->count);
            }
        }
        if (!s->m->check(s->mctx, i, r->fsm, r->count == s->hist_len, why))
            violation(s, "%s, server %u at %" PRIu64 " of %zu: %s",
                      s->m->name, i, r->count, s->hist_len, why);
    }
    if (s->f.leader_id && s->f.leader_id != s->last_leader) {
        s->leaders++;
        s->last_leader = s->f.leader_id;
        trace(s, "leader %llu", (unsigned long long)s->f.leader_id - 1);
    }
}

static bool unavailable(sim *s, unsigned i)
{
    return raft_state(raft_fixture_get(&s->f, i)) == RAFT_UNAVAILABLE;
}

/* After healing: every command has an outcome, every replica holds the
 * whole history, and everything acknowledged is where it was said to be. */
static void check_end(sim *s)
{
    for (unsigned si = 0; si < s->env.n_sessions && !s->failed; si++) {
        session *ss = &s->sess[si];
        for (size_t q = 0; q < ss->n; q++) {
            cmdrec *c = &ss->cmds[q];
            if (c->outcome == OUT_NONE)
                violation(s, "after healing, (session %u, seq %zu) never "
                             "got an answer", si, q + 1);
            else if (c->outcome == OUT_ACKED && c->hist_pos != c->pos)
                violation(s, "(session %u, seq %zu) acknowledged at %" PRIu64
                             " is at %" PRIu64, si, q + 1, c->pos,
                          c->hist_pos);
        }
    }
    for (unsigned i = 0; i < s->n; i++) {
        if (unavailable(s, i) && !s->io_faulty[i])
            violation(s, "server %u became unavailable without a disk error",
                      i);
    }
    for (unsigned i = 0; i < s->n && !s->failed; i++)
        if (s->rep[i].count != s->hist_len && !unavailable(s, i) &&
            !out_of_config(s, i))
            violation(s, "after healing, server %u holds %" PRIu64
                         " of %zu commands", i, s->rep[i].count,
                      s->hist_len);
}

/* ---- membership ------------------------------------------------------------------
 *
 * With --members the cluster has five servers of which three vote (the
 * first three; two standbys), and the leader runs the group's own
 * membership logic (src/mosaik/group_members.h) every event: it replaces
 * a voter it has not heard from for MB_REPLACE_MS with a standby it
 * hears from, demoting first, and only when mk__members_may_change says
 * a change may start. An operator fault asks the leader for a random
 * promotion, demotion or (once) a standby's removal, refused as the
 * group refuses it (mk__members_assign_check); another kills the leader.
 * After each change commits, its leader proposes the note a group writes
 * (MK__ENV_NOTE), and every replica checks the note against the
 * configuration committed at its index.
 *
 * What must hold, after every event:
 *   - at most one configuration change is pending: no server's log holds
 *     two change entries above the highest commit index any server has;
 *   - committed entries stay committed: every server, at every index up
 *     to its commit index that its log still holds, has the term the
 *     first server to commit that index had there;
 *   - one configuration per committed configuration index, on every
 *     server; at most max_voters voters and at least one in any;
 *   - at most one leader per term. */

#define MB_VOTERS 3
#define MB_REPLACE_MS 3000

typedef struct mchange {
    struct raft_change req;
    sim *s;
    unsigned server;
    bool busy;
    mk_group_member_event note;
} mchange;

typedef struct cconf {
    raft_index index;
    int roles[MAX_SERVERS];
} cconf;

struct members {
    mk__mstate st[MAX_SERVERS];
    raft_time heard[MAX_SERVERS][MAX_SERVERS]; /* [leader][member] */
    mchange chg[MAX_SERVERS];
    bool removed[MAX_SERVERS];
    unsigned removals;
    raft_term *cterm; /* the committed term at each index, 0: unseen */
    size_t cterm_cap;
    cconf *confs;
    size_t n_confs, cap_confs;
    raft_id *leader_of; /* by term */
    size_t leader_cap;
    unsigned started, committed, by_operator, notes, leader_kills;
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need < *cap)
        return p;
    size_t c = *cap ? *cap : 256;
    while (c <= need)
        c *= 2;
    uint8_t *q = realloc(p, c * size);
    if (!q) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    memset(q + *cap * size, 0, (c - *cap) * size);
    *cap = c;
    return q;
}

static mk_peer_id fake_peer(unsigned i)
{
    mk_peer_id p = {{0}};
    p.b[0] = (uint8_t)(i + 1);
    return p;
}

static int role_in(const struct raft_configuration *c, unsigned i)
{
    for (unsigned k = 0; k < c->n; k++)
        if (c->servers[k].id == i + 1)
            return c->servers[k].role;
    return -1;
}

static const struct raft_entry *entry_at(const struct raft *r,
                                         raft_index index)
{
    const struct raft_log *l = &r->log;
    size_t n = l->back >= l->front ? l->back - l->front
                                   : l->size - l->front + l->back;
    if (index <= l->offset || index > l->offset + n)
        return NULL;
    return &l->entries[(l->front + (size_t)(index - l->offset - 1)) %
                       l->size];
}

static bool out_of_config(sim *s, unsigned i)
{
    return s->mb && s->mb->removed[i];
}

static void on_note_proposed(struct raft_apply *req, int status, void *res)
{
    (void)status;
    (void)res;
    free(req);
}

/* What group.c does when a change commits: its note into the log. */
static void note_propose(sim *s, mchange *c)
{
    uint8_t body[MK__NOTE_LEN];
    mk__note_encode(&c->note, body);
    struct raft_apply *req = calloc(1, sizeof *req);
    struct raft_buffer buf = {.len = mk__note_entry_size(sizeof body)};
    buf.base = req ? raft_malloc(buf.len) : NULL;
    if (!buf.base) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    mk__note_entry_write(buf.base, body, sizeof body);
    int rv = raft_apply(raft_fixture_get(&s->f, c->server), req, &buf, 1,
                        on_note_proposed);
    if (rv != 0) {
        if (rv == RAFT_NOTLEADER)
            raft_free(buf.base);
        free(req);
    }
}

static void on_change(struct raft_change *req, int status)
{
    mchange *c = req->data;
    sim *s = c->s;
    c->busy = false;
    if (s->closing || s->failed || status != 0) {
        if (!s->closing)
            trace(s, "server %u: change failed: %s", c->server,
                  raft_strerror(status));
        return;
    }
    s->mb->committed++;
    c->note.index = raft_fixture_get(&s->f, c->server)->configuration_index;
    trace(s, "server %u: change committed at %llu", c->server,
          (unsigned long long)c->note.index);
    note_propose(s, c);
}

/* Leader `l` moves member `i` to `role` (-1: out); false when libraft
 * did not take it. */
static bool change_start(sim *s, unsigned l, unsigned i, int role,
                         bool operator)
{
    struct members *mb = s->mb;
    struct raft *r = raft_fixture_get(&s->f, l);
    mchange *c = &mb->chg[l];
    if (c->busy || !mk__members_may_change(r))
        return false;
    /* Nothing else may be pending anywhere a change could still commit
     * from: checked by members_check after the event. */
    c->req.data = c;
    c->s = s;
    c->server = l;
    int rv = role < 0 ? raft_remove(r, &c->req, i + 1, on_change)
                      : raft_assign(r, &c->req, i + 1, role, on_change);
    if (rv != 0)
        return false;
    c->busy = true;
    memset(&c->note, 0, sizeof c->note);
    c->note.member = fake_peer(i);
    c->note.change = role < 0               ? MK_MEMBER_REMOVED
                     : role == RAFT_VOTER   ? MK_MEMBER_PROMOTED
                                            : MK_MEMBER_DEMOTED;
    c->note.by_operator = operator;
    c->note.by = fake_peer(l);
    if (operator) {
        /* Not a real signature: the simulator checks placement, not
         * cryptography (tests/unit does). */
        c->note.at_unix_ms = (uint64_t)s->env.clock_ms;
        memset(c->note.sig, 0xa5, sizeof c->note.sig);
    }
    mb->started++;
    mb->by_operator += operator;
    if (role < 0) {
        mb->removed[i] = true;
        mb->removals++;
    }
    trace(s, "server %u: %s %u%s", l,
          role < 0 ? "remove" : role == RAFT_VOTER ? "promote" : "demote", i,
          operator ? " (operator)" : "");
    return true;
}

static size_t views_of(sim *s, unsigned l, mk__mview *v)
{
    const struct raft *r = raft_fixture_get(&s->f, l);
    for (unsigned i = 0; i < s->n; i++)
        v[i] = (mk__mview){.role = role_in(&r->configuration, i),
                           .heard_ms = (int64_t)s->mb->heard[l][i],
                           .self = i == l};
    return s->n;
}

/* Every event: who hears whom, and each leader's pass. */
static void members_step(sim *s)
{
    struct members *mb = s->mb;
    raft_time now = s->f.time;
    for (unsigned l = 0; l < s->n; l++) {
        if (s->down[l])
            continue;
        for (unsigned i = 0; i < s->n; i++)
            if (i == l || (!s->down[i] && !s->cut[i][l] && !s->cut[l][i] &&
                           !s->sat[i][l]))
                mb->heard[l][i] = now;
    }
    for (unsigned l = 0; l < s->n; l++) {
        struct raft *r = raft_fixture_get(&s->f, l);
        if (s->down[l] || raft_state(r) != RAFT_LEADER) {
            memset(&mb->st[l], 0, sizeof mb->st[l]);
            continue;
        }
        if (!mb->st[l].leading_since)
            mb->st[l].leading_since = (int64_t)now;
        if (mb->chg[l].busy || !mk__members_may_change(r))
            continue;
        mk__mview v[MAX_SERVERS];
        size_t n = views_of(s, l, v);
        mk__mparams p = {.max_voters = MB_VOTERS,
                         .replace_after_ms = MB_REPLACE_MS,
                         .alive_ms = 2000};
        mk__mplan plan = mk__members_plan(&mb->st[l], v, n, &p, (int64_t)now);
        if (plan.member < 0)
            continue;
        bool ok = change_start(s, l, (unsigned)plan.member, plan.role, false);
        mk__members_planned(&mb->st[l], &plan, ok);
    }
}

/* The operator's fault: a random request to the leader, or its death. */
static void members_fault(sim *s)
{
    sim_rng *g = &s->rng;
    struct members *mb = s->mb;
    unsigned l = raft_fixture_leader_index(&s->f);
    if (l >= s->n || s->down[l])
        return;
    if (sim_chance(g, 1, 3)) {
        if (n_down(s) >= s->n - 1)
            return;
        bool keep[MAX_SERVERS][2];
        lift_cuts(s, l, keep);
        raft_fixture_kill(&s->f, l);
        restore_cuts(s, l, keep);
        s->down[l] = true;
        mb->leader_kills++;
        trace(s, "kill leader %u", l);
        return;
    }
    unsigned i = (unsigned)sim_below(g, s->n);
    int role = sim_chance(g, 1, 2) ? RAFT_VOTER : RAFT_STANDBY;
    if (!s->o->no_remove && mb->removals == 0 && sim_chance(g, 1, 6))
        role = -1;
    mk__mview v[MAX_SERVERS];
    size_t n = views_of(s, l, v);
    if (mk__members_assign_check(v, n, i, role, MB_VOTERS) != 0)
        return;
    /* An operator stops the old key's node before removing it, and it
     * stays stopped (revive and heal_all leave it alone). */
    if (role < 0 && !s->down[i]) {
        bool keep[MAX_SERVERS][2];
        lift_cuts(s, i, keep);
        raft_fixture_kill(&s->f, i);
        restore_cuts(s, i, keep);
        s->down[i] = true;
    }
    change_start(s, l, i, role, true);
}

static void rep_note(void *data, const uint8_t *body, size_t len)
{
    replica *r = data;
    sim *s = r->s;
    if (s->failed || !s->mb)
        return;
    mk_group_member_event ev;
    if (mk__note_decode(body, len, &ev) != 0) {
        violation(s, "server %u applied a note that does not decode",
                  r->index);
        return;
    }
    s->mb->notes++;
    const struct raft *rf = raft_fixture_get(&s->f, r->index);
    const struct raft_entry *e = entry_at(rf, ev.index);
    if (ev.index == 0 || (e && e->type != RAFT_CHANGE)) {
        violation(s, "server %u: a note names index %llu, not a change",
                  r->index, (unsigned long long)ev.index);
        return;
    }
    unsigned m = (unsigned)ev.member.b[0] - 1;
    int want = ev.change == MK_MEMBER_PROMOTED  ? RAFT_VOTER
               : ev.change == MK_MEMBER_DEMOTED ? RAFT_STANDBY
                                                : -1;
    for (size_t k = 0; k < s->mb->n_confs; k++)
        if (s->mb->confs[k].index == ev.index &&
            s->mb->confs[k].roles[m] != want)
            violation(s, "server %u: the note at %llu says member %u is "
                         "now %d, the configuration says %d",
                      r->index, (unsigned long long)ev.index, m, want,
                      s->mb->confs[k].roles[m]);
}

static void members_check(sim *s)
{
    struct members *mb = s->mb;
    raft_index top = 0;
    for (unsigned i = 0; i < s->n; i++) {
        raft_index c = raft_fixture_get(&s->f, i)->commit_index;
        if (c > top)
            top = c;
    }
    for (unsigned i = 0; i < s->n && !s->failed; i++) {
        const struct raft *r = raft_fixture_get(&s->f, i);
        const struct raft_log *l = &r->log;
        raft_index last = raft_last_index((struct raft *)r);
        /* At most one change pending. */
        unsigned pending = 0;
        for (raft_index k = top + 1; k <= last; k++) {
            const struct raft_entry *e = entry_at(r, k);
            pending += e && e->type == RAFT_CHANGE;
        }
        if (pending > 1)
            violation(s, "server %u holds %u configuration changes above "
                         "the commit index %llu", i, pending,
                      (unsigned long long)top);
        /* Committed entries stay committed. */
        mb->cterm = grow(mb->cterm, &mb->cterm_cap, r->commit_index + 1,
                         sizeof *mb->cterm);
        for (raft_index k = l->offset; k <= r->commit_index && !s->failed;
             k++) {
            /* offset itself only when the snapshot ends there */
            raft_term t = k ? mk__members_term_at(r, k) : 0;
            if (!t)
                continue;
            if (!mb->cterm[k])
                mb->cterm[k] = t;
            else if (mb->cterm[k] != t)
                violation(s, "server %u: entry %llu was committed in term "
                             "%llu, it now holds term %llu there",
                          i, (unsigned long long)k,
                          (unsigned long long)mb->cterm[k],
                          (unsigned long long)t);
        }
        /* One configuration per committed configuration index. */
        const struct raft_configuration *c = &r->configuration;
        unsigned voters = 0;
        for (unsigned k = 0; k < c->n; k++)
            voters += c->servers[k].role == RAFT_VOTER;
        if (c->n && (voters == 0 || voters > MB_VOTERS))
            violation(s, "server %u: %u voters in its configuration", i,
                      voters);
        /* libraft 0.15 leaves configuration_index uninitialised after
         * some snapshot installs (ASan's 0xbe fill showed it): an index
         * past the commit index is not one it knows. */
        if (c->n && r->configuration_index &&
            r->configuration_index <= r->commit_index &&
            !r->configuration_uncommitted_index) {
            cconf now = {.index = r->configuration_index};
            for (unsigned k = 0; k < s->n; k++)
                now.roles[k] = role_in(c, k);
            size_t k = 0;
            while (k < mb->n_confs && mb->confs[k].index != now.index)
                k++;
            if (k == mb->n_confs) {
                mb->confs = grow(mb->confs, &mb->cap_confs, mb->n_confs,
                                 sizeof *mb->confs);
                mb->confs[mb->n_confs++] = now;
            } else if (memcmp(mb->confs[k].roles, now.roles,
                              sizeof now.roles) != 0) {
                violation(s, "server %u: another configuration committed "
                             "at %llu: roles %d%d%d%d%d, first seen "
                             "%d%d%d%d%d (uncommitted %llu, commit %llu, "
                             "last %llu)", i, (unsigned long long)now.index,
                          now.roles[0], now.roles[1], now.roles[2],
                          now.roles[3], now.roles[4], mb->confs[k].roles[0],
                          mb->confs[k].roles[1], mb->confs[k].roles[2],
                          mb->confs[k].roles[3], mb->confs[k].roles[4],
                          (unsigned long long)
                              r->configuration_uncommitted_index,
                          (unsigned long long)r->commit_index,
                          (unsigned long long)last);
            }
        }
        /* One leader per term. */
        if (raft_state((struct raft *)r) == RAFT_LEADER) {
            mb->leader_of = grow(mb->leader_of, &mb->leader_cap,
                                 r->current_term, sizeof *mb->leader_of);
            raft_id *who = &mb->leader_of[r->current_term];
            if (*who && *who != r->id)
                violation(s, "two leaders in term %llu: %llu and %llu",
                          (unsigned long long)r->current_term,
                          (unsigned long long)*who,
                          (unsigned long long)r->id);
            *who = r->id;
        }
    }
}

static void members_free(sim *s)
{
    if (!s->mb)
        return;
    free(s->mb->cterm);
    free(s->mb->confs);
    free(s->mb->leader_of);
    free(s->mb);
    s->mb = NULL;
}

/* ---- one run -------------------------------------------------------------------------- */

static const sim_machine *const machines[] = {
    &sim_counter, &sim_register, &sim_log, &sim_map, &sim_set, &sim_vec,
    &sim_cell,    &sim_once,     &sim_pq,  &sim_almanac, &sim_atlas,
    &sim_chronicle, &sim_compute,
};
#define N_MACHINES (sizeof machines / sizeof machines[0])

static const sim_machine *machine_named(const char *name)
{
    for (size_t i = 0; i < N_MACHINES; i++)
        if (strcmp(machines[i]->name, name) == 0)
            return machines[i];
    return NULL;
}

static bool all_answered(sim *s)
{
    for (unsigned si = 0; si < s->env.n_sessions; si++)
        if (s->sess[si].ack < s->sess[si].n)
            return false;
    for (unsigned i = 0; i < s->n; i++)
        if (s->rep[i].count != s->hist_len && !unavailable(s, i) &&
            !out_of_config(s, i))
            return false;
    return true;
}

static void one_step(sim *s, bool heal)
{
    for (unsigned si = 0; si < s->env.n_sessions; si++)
        if (sim_chance(&s->rng, 1, 6))
            client_step(s, si, heal);
    s->step++;
    raft_fixture_step(&s->f);
    s->env.clock_ms += 1;
    if (s->mb)
        members_step(s);
    check_step(s);
    if (s->mb && !s->failed)
        members_check(s);
}

/* A failure the run itself reported (anything else from a child is a
 * crash: ASan exits 1, an abort is a signal). */
#define SIM_FAILED 3

/* Runs one seed; 0 passed, SIM_FAILED (with the reason printed). */
static int run_seed(uint64_t seed, const sim_opts *o)
{
    static sim s0;
    sim *s = &s0;
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->o = o;
    s->rng.s = seed * 0x2545f4914f6cdd1du + 1;
    sim_rng *g = &s->rng;
    s->m = o->machine ? machine_named(o->machine)
                      : machines[sim_below(g, N_MACHINES)];
    s->n = o->servers ? o->servers : (sim_chance(g, 1, 2) ? 3 : 5);
    if (o->members) {
        s->n = 5;
        s->mb = calloc(1, sizeof *s->mb);
        if (!s->mb)
            exit(2);
    }
    s->env.n_servers = s->n;
    s->env.n_sessions = 2 + (unsigned)sim_below(g, MAX_SESSIONS - 1);
    s->env.clock_ms = 1700000000000 + (int64_t)sim_below(g, 1000000);
    s->env.seed = seed;
    s->max_cmds = 30 + (unsigned)sim_below(g, 50);
    for (unsigned k = 0; k < (s->n - 1) / 2; k++)
        s->io_faulty[sim_below(g, s->n)] = true;
    for (unsigned si = 0; si < s->env.n_sessions; si++) {
        for (size_t b = 0; b < MK__SESSION_LEN; b++)
            s->sess[si].id[b] = (uint8_t)sim_next(g);
        s->sess[si].window = 1 + (unsigned)sim_below(g, 4);
    }
    s->mctx = s->m->setup(&s->env, g);
    if (!s->mctx) {
        fprintf(stderr, "sim: %s: setup failed\n", s->m->name);
        exit(2);
    }

    if (raft_fixture_initialize(&s->f) != 0)
        exit(2);
    for (unsigned i = 0; i < s->n; i++) {
        replica *r = &s->rep[i];
        r->s = s;
        r->index = i;
        r->fsm = s->m->fsm_new(s->mctx, i);
        if (!r->fsm)
            exit(2);
        mk__gfsm_hooks h = {rep_applied, rep_restored, r, rep_note};
        mk__gfsm_init(&r->ad, r->fsm, &h);
        if (raft_fixture_grow(&s->f, &r->ad.raft) != 0)
            exit(2);
    }
    struct raft_configuration conf;
    if (raft_fixture_configuration(&s->f, s->n, &conf) != 0)
        exit(2);
    for (unsigned i = MB_VOTERS; s->mb && i < conf.n; i++)
        conf.servers[i].role = RAFT_STANDBY;
    if (raft_fixture_bootstrap(&s->f, &conf) != 0)
        exit(2);
    raft_configuration_close(&conf);
    static const unsigned thresholds[] = {4, 8, 16, 64, 1024};
    unsigned threshold = thresholds[sim_below(g, 5)];
    unsigned trailing = 1 + (unsigned)sim_below(g, threshold / 2 + 1);
    bool pre_vote = sim_chance(g, 1, 2);
    for (unsigned i = 0; i < s->n; i++) {
        struct raft *r = raft_fixture_get(&s->f, i);
        raft_set_snapshot_threshold(r, threshold);
        raft_set_snapshot_trailing(r, trailing);
        raft_set_pre_vote(r, pre_vote);
        s->election[i] = 1000 + 100 * i;
    }
    if (raft_fixture_start(&s->f) != 0)
        exit(2);
    trace(s, "%s, %u voters, %u sessions, snapshots every %u (%u kept), "
             "pre-vote %s", s->m->name, s->n, s->env.n_sessions, threshold,
          trailing, pre_vote ? "on" : "off");

    /* Faults while the clients work, then a healed network until every
     * command has an answer and every replica the whole history. */
    for (unsigned k = 0; k < o->steps && !s->failed; k++) {
        if (sim_chance(g, 1, 40))
            fault_step(s);
        one_step(s, false);
    }
    heal_all(s);
    trace(s, "healed");
    unsigned extra = 0;
    while (!s->failed && !all_answered(s) && extra < 40000) {
        one_step(s, true);
        extra++;
        if (extra % 5000 == 0)
            for (unsigned i = 0; i < s->n; i++) {
                struct raft *rf = raft_fixture_get(&s->f, i);
                trace(s, "server %u: state %d term %llu last %llu commit "
                         "%llu applied %llu alive %d",
                      i, raft_state(rf), (unsigned long long)rf->current_term,
                      (unsigned long long)raft_last_index(rf),
                      (unsigned long long)rf->commit_index,
                      (unsigned long long)rf->last_applied,
                      raft_fixture_alive(&s->f, i));
                for (unsigned j = 0; j < s->n; j++)
                    if (j != i && raft_fixture_saturated(&s->f, i, j))
                        trace(s, "  %u->%u saturated", i, j);
            }
    }
    /* Every replica re-checked at the end, whatever changed. */
    for (unsigned i = 0; i < s->n; i++)
        s->rep[i].dirty = true;
    check_step(s);
    if (s->mb && !s->failed)
        members_check(s);
    if (!s->failed)
        check_end(s);

    s->closing = true;
    raft_fixture_close(&s->f);
    for (unsigned i = 0; i < s->n; i++) {
        mk__gfsm_free(&s->rep[i].ad);
        s->m->fsm_free(s->mctx, s->rep[i].fsm);
    }
    s->m->teardown(s->mctx);
    struct members mb = s->mb ? *s->mb : (struct members){0};
    members_free(s);
    for (unsigned si = 0; si < s->env.n_sessions; si++) {
        for (size_t q = 0; q < s->sess[si].n; q++)
            mk_buf_free(&s->sess[si].cmds[q].bytes);
        free(s->sess[si].cmds);
    }
    free(s->hist);

    if (s->failed) {
        printf("seed %" PRIu64 " FAILED (%s, %u voters): %s\n", seed,
               s->m->name, s->n, s->why);
        printf("  replay: sim --seed %" PRIu64 " -v\n", seed);
        return SIM_FAILED;
    }
    if (o->verbose || o->machine)
        printf("seed %" PRIu64 " ok (%s, %u voters): %" PRIu64
               " events, %zu commands, %u acknowledged, %u rejected, %u "
               "given up, %u faults, %u leaders, %u snapshot installs\n",
               seed, s->m->name, s->n, s->step, s->hist_len, s->acked,
               s->rejected, s->gave_up, s->faults, s->leaders, s->restores);
    if ((o->verbose || o->machine) && o->members)
        printf("  membership: %u changes started (%u by the operator), %u "
               "committed, %u notes applied, %u leaders killed\n",
               mb.started, mb.by_operator, mb.committed, mb.notes,
               mb.leader_kills);
    return 0;
}

/* ---- the command line ----------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: sim [--seed N | --seeds A..B] [--machine NAME] "
            "[--steps N] [--servers 3|5] [--faults MASK] [--no-io-faults] "
            "[--members [--no-remove]] [-v]\n"
            "machines:");
    for (size_t i = 0; i < N_MACHINES; i++)
        fprintf(stderr, " %s", machines[i]->name);
    fputc('\n', stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    sim_opts o = {.steps = 3000, .fault_mask = ~0u};
    uint64_t lo = 1, hi = 100;
    bool single = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--seed") == 0 && v) {
            lo = hi = strtoull(v, NULL, 10);
            single = true;
            i++;
        } else if (strcmp(a, "--seeds") == 0 && v) {
            char *end;
            lo = strtoull(v, &end, 10);
            if (end[0] != '.' || end[1] != '.')
                usage();
            hi = strtoull(end + 2, NULL, 10);
            i++;
        } else if (strcmp(a, "--machine") == 0 && v) {
            if (!machine_named(v))
                usage();
            o.machine = v;
            i++;
        } else if (strcmp(a, "--steps") == 0 && v) {
            o.steps = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--servers") == 0 && v) {
            o.servers = (unsigned)strtoul(v, NULL, 10);
            if (o.servers != 3 && o.servers != 5)
                usage();
            i++;
        } else if (strcmp(a, "--faults") == 0 && v) {
            o.fault_mask = (unsigned)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--members") == 0) {
            o.members = true;
        } else if (strcmp(a, "--no-remove") == 0) {
            o.no_remove = true;
        } else if (strcmp(a, "--no-io-faults") == 0) {
            o.no_io_faults = true;
        } else if (strcmp(a, "-v") == 0) {
            o.verbose = true;
        } else {
            usage();
        }
    }
    if (hi < lo)
        usage();
    if (single)
        return run_seed(lo, &o) ? 1 : 0;

    /* One child per seed: an abort inside libraft or a sanitizer report
     * fails that seed and the range goes on. */
    unsigned passed = 0, failed = 0;
    for (uint64_t seed = lo; seed <= hi; seed++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0)
            exit(run_seed(seed, &o));
        int st;
        if (waitpid(pid, &st, 0) < 0) {
            perror("waitpid");
            return 2;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            passed++;
        } else {
            failed++;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != SIM_FAILED)
                printf("seed %" PRIu64 " FAILED: the run crashed (%s %d)\n"
                       "  replay: sim --seed %" PRIu64 " -v\n",
                       seed, WIFEXITED(st) ? "exit" : "signal",
                       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), seed);
        }
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
