/* The log envelope and the exactly-once adapter between libraft and a
 * user state machine (group_fsm.h says what and why).
 *
 * Everything here must be deterministic: every member applies the same
 * entries in the same order and must end in the same state, the session
 * table included (it decides what a retried command gets back). So the
 * table is a sorted array (its snapshot order is its memory order), its
 * eviction clock is the count of entries applied, and nothing reads time,
 * randomness or addresses.
 */
#include "group_fsm.h"

#include <stdlib.h>
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/error.h"

/* ---- the envelope ---------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Layout (little-endian):
 *   0  u8  version (1)        1  u8  kind (1: command)
 *   2  u16 reserved (0)       4  u32 command length
 *   8  session[16]            24 u64 seq          32 u64 ack
 *   40 command, then zeroes to a multiple of 8 */
void mk__env_write(uint8_t *out, const mk__envelope *e)
{
    size_t total = mk__env_size(e->len);
    memset(out, 0, MK__ENV_HDR);
    out[0] = MK__ENV_VERSION;
    out[1] = MK__ENV_COMMAND;
    put_le32(out + 4, (uint32_t)e->len);
    memcpy(out + 8, e->session, MK__SESSION_LEN);
    mk_store_le64(out + 24, e->seq);
    mk_store_le64(out + 32, e->ack);
    if (e->len)
        memcpy(out + MK__ENV_HDR, e->cmd, e->len);
    memset(out + MK__ENV_HDR + e->len, 0, total - MK__ENV_HDR - e->len);
}

int mk__env_parse(const void *buf, size_t len, mk__envelope *e)
{
    const uint8_t *p = buf;
    if (len < MK__ENV_HDR || len % 8 != 0 || p[0] != MK__ENV_VERSION ||
        p[1] != MK__ENV_COMMAND || p[2] != 0 || p[3] != 0)
        return MK_EDECODE;
    size_t n = get_le32(p + 4);
    if (n > len - MK__ENV_HDR || mk__env_size(n) != len)
        return MK_EDECODE;
    /* One encoding per entry: the padding is zeroes. */
    for (size_t i = MK__ENV_HDR + n; i < len; i++)
        if (p[i] != 0)
            return MK_EDECODE;
    memcpy(e->session, p + 8, MK__SESSION_LEN);
    e->seq = mk_load_le64(p + 24);
    e->ack = mk_load_le64(p + 32);
    e->cmd = p + MK__ENV_HDR;
    e->len = n;
    return 0;
}

/* Batch header: u8 version, u8 kind (2), u16 reserved (0), u32 count;
 * then `count` envelopes back to back. */
void mk__batch_header_write(uint8_t *out, uint32_t n)
{
    memset(out, 0, MK__BATCH_HDR);
    out[0] = MK__ENV_VERSION;
    out[1] = MK__ENV_BATCH;
    put_le32(out + 4, n);
}

void mk__note_entry_write(uint8_t *out, const uint8_t *body, size_t len)
{
    size_t total = mk__note_entry_size(len);
    memset(out, 0, total);
    out[0] = MK__ENV_VERSION;
    out[1] = MK__ENV_NOTE;
    put_le32(out + 4, (uint32_t)len);
    memcpy(out + MK__NOTE_HDR, body, len);
}

/* The body of a note entry, or NULL when it is not one. */
static const uint8_t *note_body(const uint8_t *p, size_t len, size_t *blen)
{
    if (len < MK__NOTE_HDR || len % 8 != 0 || p[0] != MK__ENV_VERSION ||
        p[1] != MK__ENV_NOTE || p[2] != 0 || p[3] != 0)
        return NULL;
    size_t n = get_le32(p + 4);
    if (n > len - MK__NOTE_HDR || mk__note_entry_size(n) != len)
        return NULL;
    for (size_t i = MK__NOTE_HDR + n; i < len; i++)
        if (p[i] != 0)
            return NULL;
    *blen = n;
    return p + MK__NOTE_HDR;
}

/* The length of the envelope at `p` (at most `avail` bytes), or 0 when no
 * valid envelope starts there. */
static size_t env_span(const uint8_t *p, size_t avail)
{
    if (avail < MK__ENV_HDR)
        return 0;
    size_t n = get_le32(p + 4);
    if (n > avail - MK__ENV_HDR)
        return 0;
    size_t span = mk__env_size(n);
    return span <= avail ? span : 0;
}

/* ---- the session table ------------------------------------------------------ */

struct mk__gresult {
    uint64_t seq, applied;
    int status;
    uint8_t *data;
    size_t len;
};

struct mk__gsession {
    uint8_t id[MK__SESSION_LEN];
    uint64_t last;    /* highest seq applied */
    uint64_t ack;     /* highest watermark seen */
    uint64_t touched; /* entries counter at the last envelope */
    mk__gresult *res; /* ring of results with seq in (ack, last] */
    size_t head, n, cap;
};

static void session_free(mk__gsession *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->res[(s->head + i) % s->cap].data);
    free(s->res);
    s->res = NULL;
    s->head = s->n = s->cap = 0;
}

static void sessions_free(mk__gsession *ss, size_t n)
{
    for (size_t i = 0; i < n; i++)
        session_free(&ss[i]);
    free(ss);
}

static size_t session_find(const mk__gfsm *a, const uint8_t *id, bool *found)
{
    size_t lo = 0, hi = a->n_sessions;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(a->sessions[mid].id, id, MK__SESSION_LEN);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Forgets the session touched least recently. Ties cannot happen: each
 * envelope touches exactly one session with a fresh clock value. */
static void evict_one(mk__gfsm *a)
{
    size_t victim = 0;
    for (size_t i = 1; i < a->n_sessions; i++)
        if (a->sessions[i].touched < a->sessions[victim].touched)
            victim = i;
    session_free(&a->sessions[victim]);
    memmove(a->sessions + victim, a->sessions + victim + 1,
            (a->n_sessions - victim - 1) * sizeof *a->sessions);
    a->n_sessions--;
}

static mk__gsession *session_get(mk__gfsm *a, const uint8_t *id)
{
    bool found;
    size_t at = session_find(a, id, &found);
    if (found)
        return &a->sessions[at];
    if (a->n_sessions >= a->max_sessions) {
        evict_one(a);
        at = session_find(a, id, &found);
    }
    if (a->n_sessions == a->cap_sessions) {
        size_t cap = a->cap_sessions ? 2 * a->cap_sessions : 16;
        mk__gsession *grown = realloc(a->sessions, cap * sizeof *grown);
        if (!grown)
            return NULL;
        a->sessions = grown;
        a->cap_sessions = cap;
    }
    memmove(a->sessions + at + 1, a->sessions + at,
            (a->n_sessions - at) * sizeof *a->sessions);
    a->n_sessions++;
    mk__gsession *s = &a->sessions[at];
    memset(s, 0, sizeof *s);
    memcpy(s->id, id, MK__SESSION_LEN);
    return s;
}

/* Drops results the submitter no longer needs (seq <= ack). */
static void session_trim(mk__gsession *s)
{
    while (s->n > 0 && s->res[s->head].seq <= s->ack) {
        free(s->res[s->head].data);
        s->head = (s->head + 1) % s->cap;
        s->n--;
    }
}

static const mk__gresult *session_result(const mk__gsession *s, uint64_t seq)
{
    for (size_t i = s->n; i-- > 0;) {
        const mk__gresult *r = &s->res[(s->head + i) % s->cap];
        if (r->seq == seq)
            return r;
        if (r->seq < seq)
            break;
    }
    return NULL;
}

/* Appends a result, evicting the oldest beyond max. 0 or MK_ENOMEM. */
static int session_keep(mk__gsession *s, size_t max, uint64_t seq,
                        uint64_t applied, int status, const uint8_t *data,
                        size_t len)
{
    if (s->n == max) {
        free(s->res[s->head].data);
        s->head = (s->head + 1) % s->cap;
        s->n--;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 4;
        mk__gresult *grown = malloc(cap * sizeof *grown);
        if (!grown)
            return MK_ENOMEM;
        for (size_t i = 0; i < s->n; i++)
            grown[i] = s->res[(s->head + i) % s->cap];
        free(s->res);
        s->res = grown;
        s->head = 0;
        s->cap = cap;
    }
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return MK_ENOMEM;
        memcpy(copy, data, len);
    }
    s->res[(s->head + s->n) % s->cap] =
        (mk__gresult){.seq = seq, .applied = applied, .status = status,
                      .data = copy, .len = len};
    s->n++;
    return 0;
}

/* ---- applying ------------------------------------------------------------- */

static void emit(mk__gfsm *a, const mk__apply_event *ev)
{
    if (a->hooks.applied)
        a->hooks.applied(a->hooks.data, ev);
}

static int apply_one(mk__gfsm *a, const mk__envelope *ep)
{
    mk__envelope e = *ep;
    mk__apply_event ev = {.kind = MK__APPLY_BAD};
    ev.session = e.session;
    ev.seq = e.seq;
    ev.cmd = e.cmd;
    ev.cmd_len = e.len;

    mk__gsession *s = session_get(a, e.session);
    if (!s)
        return a->fatal = MK_ENOMEM;
    a->entries++;
    s->touched = a->entries;
    if (e.ack > s->ack) {
        s->ack = e.ack;
        session_trim(s);
    }
    uint64_t floor = s->last > s->ack ? s->last : s->ack;
    if (e.seq <= floor) {
        const mk__gresult *r = e.seq > s->ack ? session_result(s, e.seq)
                                              : NULL;
        if (r) {
            ev.kind = MK__APPLY_DUP;
            ev.status = r->status;
            ev.applied = r->applied;
            ev.result = r->data;
            ev.result_len = r->len;
        } else {
            ev.kind = MK__APPLY_STALE;
        }
        emit(a, &ev);
        return 0;
    }
    if (e.seq != floor + 1) {
        ev.kind = MK__APPLY_GAP;
        emit(a, &ev);
        return 0;
    }

    mk_buf_reset(&a->result);
    int rc = a->user->apply(a->user, e.cmd, e.len, &a->result);
    if (rc == 0 && a->result.err)
        rc = a->result.err;
    if (rc == MK_EDECODE) {
        /* Malformed: refused the same way everywhere, state untouched. */
        mk_buf_reset(&a->result);
    } else if (rc != 0) {
        return a->fatal = rc < 0 ? rc : MK_EIO;
    } else {
        a->applied++;
    }
    s->last = e.seq;
    if (session_keep(s, a->max_results, e.seq, rc ? 0 : a->applied, rc,
                     a->result.data, a->result.len) != 0)
        return a->fatal = MK_ENOMEM;
    ev.kind = MK__APPLY_NEW;
    ev.status = rc;
    ev.applied = rc ? 0 : a->applied;
    ev.result = a->result.data;
    ev.result_len = a->result.len;
    emit(a, &ev);
    return 0;
}

/* Checks a whole batch before applying any of it, so a malformed batch is
 * skipped whole rather than half-applied. Returns the count, or -1. */
static long batch_check(const uint8_t *p, size_t len)
{
    if (len < MK__BATCH_HDR || len % 8 != 0 || p[0] != MK__ENV_VERSION ||
        p[1] != MK__ENV_BATCH || p[2] != 0 || p[3] != 0)
        return -1;
    uint32_t n = get_le32(p + 4);
    if (n == 0 || n > MK__BATCH_MAX)
        return -1;
    size_t at = MK__BATCH_HDR;
    for (uint32_t i = 0; i < n; i++) {
        mk__envelope e;
        size_t span = env_span(p + at, len - at);
        if (span == 0 || mk__env_parse(p + at, span, &e) != 0)
            return -1;
        at += span;
    }
    return at == len ? (long)n : -1;
}

long mk__entry_commands(const void *entry, size_t len,
                        void (*fn)(const uint8_t *cmd, size_t len, void *data),
                        void *data)
{
    const uint8_t *p = entry;
    mk__envelope e;
    if (len >= 2 && p[1] == MK__ENV_BATCH) {
        long n = batch_check(p, len);
        size_t at = MK__BATCH_HDR;
        for (long i = 0; i < n; i++) {
            size_t span = env_span(p + at, len - at);
            mk__env_parse(p + at, span, &e);
            fn(e.cmd, e.len, data);
            at += span;
        }
        return n;
    }
    if (mk__env_parse(entry, len, &e) != 0)
        return -1;
    fn(e.cmd, e.len, data);
    return 1;
}

int mk__gfsm_apply(mk__gfsm *a, const void *entry, size_t len)
{
    const uint8_t *p = entry;
    mk__envelope e;
    if (a->fatal)
        return a->fatal;
    if (len >= 2 && p[1] == MK__ENV_NOTE) {
        size_t blen;
        const uint8_t *body = note_body(p, len, &blen);
        if (!body)
            goto bad;
        if (a->hooks.note)
            a->hooks.note(a->hooks.data, body, blen);
        return 0;
    }
    if (len >= 2 && p[1] == MK__ENV_BATCH) {
        long n = batch_check(p, len);
        if (n < 0)
            goto bad;
        size_t at = MK__BATCH_HDR;
        for (long i = 0; i < n; i++) {
            size_t span = env_span(p + at, len - at);
            mk__env_parse(p + at, span, &e);
            int rc = apply_one(a, &e);
            if (rc != 0)
                return rc;
            at += span;
        }
        return 0;
    }
    if (mk__env_parse(entry, len, &e) != 0)
        goto bad;
    return apply_one(a, &e);
bad:;
    /* Nobody we know proposes these; skipping is the same everywhere. */
    mk__apply_event ev = {.kind = MK__APPLY_BAD};
    emit(a, &ev);
    return 0;
}

int mk__gfsm_next(const mk__gfsm *a, const uint8_t *session, uint64_t seq,
                  uint64_t ack, const mk__gresult **res)
{
    bool found;
    size_t at = session_find(a, session, &found);
    uint64_t last = 0, sack = 0;
    const mk__gsession *s = found ? &a->sessions[at] : NULL;
    if (s) {
        last = s->last;
        sack = s->ack;
    }
    if (ack > sack)
        sack = ack;
    uint64_t floor = last > sack ? last : sack;
    *res = NULL;
    if (seq <= floor) {
        if (s && seq > s->ack)
            *res = session_result(s, seq);
        return -1;
    }
    return seq == floor + 1 ? 1 : 0;
}

void mk__gresult_get(const mk__gresult *r, int *status, uint64_t *applied,
                     const uint8_t **data, size_t *len)
{
    *status = r->status;
    *applied = r->applied;
    *data = r->data;
    *len = r->len;
}

/* ---- snapshots --------------------------------------------------------------
 * "MKG1", varint applied, varint entries, varint n_sessions, then per
 * session (in id order): id[16], varint last, ack, touched, n_results, and
 * per result varint seq, varint applied, zigzag status, bytes result;
 * finally the user machine's snapshot as bytes. */

static const uint8_t SNAP_MAGIC[4] = {'M', 'K', 'G', '1'};

int mk__gfsm_snapshot(mk__gfsm *a, mk_buf *out)
{
    mk_buf user;
    mk_buf_init(&user);
    int rc = a->user->snapshot(a->user, &user);
    if (rc == 0 && user.err)
        rc = user.err;
    if (rc != 0) {
        mk_buf_free(&user);
        return rc < 0 ? rc : MK_EIO;
    }
    mk_put_raw(out, SNAP_MAGIC, sizeof SNAP_MAGIC);
    mk_put_varint(out, a->applied);
    mk_put_varint(out, a->entries);
    mk_put_varint(out, a->n_sessions);
    for (size_t i = 0; i < a->n_sessions; i++) {
        const mk__gsession *s = &a->sessions[i];
        mk_put_raw(out, s->id, MK__SESSION_LEN);
        mk_put_varint(out, s->last);
        mk_put_varint(out, s->ack);
        mk_put_varint(out, s->touched);
        mk_put_varint(out, s->n);
        for (size_t j = 0; j < s->n; j++) {
            const mk__gresult *r = &s->res[(s->head + j) % s->cap];
            mk_put_varint(out, r->seq);
            mk_put_varint(out, r->applied);
            mk_put_i64(out, r->status);
            mk_put_bytes(out, r->data, r->len);
        }
    }
    mk_put_bytes(out, user.data, user.len);
    mk_buf_free(&user);
    return out->err;
}

int mk__gfsm_restore(mk__gfsm *a, const uint8_t *snap, size_t len)
{
    mk_reader r;
    mk_reader_init(&r, snap, len);
    const uint8_t *magic = mk_get_raw(&r, sizeof SNAP_MAGIC);
    if (!magic || memcmp(magic, SNAP_MAGIC, sizeof SNAP_MAGIC) != 0)
        return MK_EDECODE;
    uint64_t applied = mk_get_varint(&r);
    uint64_t entries = mk_get_varint(&r);
    size_t n = mk_get_count(&r, a->max_sessions, MK__SESSION_LEN + 4);
    mk__gsession *ss = n ? calloc(n, sizeof *ss) : NULL;
    int rc = 0;
    if (n && !ss)
        return MK_ENOMEM;
    size_t built = 0;
    for (; built < n && !r.err && rc == 0; built++) {
        mk__gsession *s = &ss[built];
        const uint8_t *id = mk_get_raw(&r, MK__SESSION_LEN);
        if (!id)
            break;
        memcpy(s->id, id, MK__SESSION_LEN);
        /* Sorted and unique, or it is not one of our snapshots. */
        if (built > 0 && memcmp(ss[built - 1].id, s->id, MK__SESSION_LEN) >= 0)
            rc = MK_EDECODE;
        s->last = mk_get_varint(&r);
        s->ack = mk_get_varint(&r);
        s->touched = mk_get_varint(&r);
        size_t nr = mk_get_count(&r, a->max_results, 4);
        for (size_t j = 0; j < nr && !r.err && rc == 0; j++) {
            uint64_t seq = mk_get_varint(&r), ap = mk_get_varint(&r);
            int64_t st = mk_get_i64(&r);
            size_t rl;
            const uint8_t *rd = mk_get_bytes(&r, &rl, len);
            if (st != 0 && st != MK_EDECODE)
                rc = MK_EDECODE; /* only rejections are remembered */
            else if (rd)
                rc = session_keep(s, a->max_results, seq, ap, (int)st, rd,
                                  rl);
        }
    }
    size_t ulen = 0;
    const uint8_t *user = rc == 0 ? mk_get_bytes(&r, &ulen, len) : NULL;
    if (rc == 0 && (!user || mk_reader_done(&r) != 0))
        rc = MK_EDECODE;
    if (rc == 0) {
        rc = a->user->restore(a->user, user, ulen);
        if (rc > 0)
            rc = MK_EIO;
    }
    if (rc != 0) {
        sessions_free(ss, n); /* calloc'd: unbuilt ones are empty */
        return rc;
    }
    sessions_free(a->sessions, a->n_sessions);
    a->sessions = ss;
    a->n_sessions = a->cap_sessions = n;
    a->applied = applied;
    a->entries = entries;
    if (a->hooks.restored)
        a->hooks.restored(a->hooks.data);
    return 0;
}

/* ---- the raft_fsm face --------------------------------------------------- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                         void **result)
{
    mk__gfsm *a = fsm->data;
    *result = NULL; /* outcomes travel through the hooks, not raft */
    a->raft_entries++;
    a->raft_bytes += buf->len;
    /* libraft wants its own positive codes; any failure stops applying. */
    return mk__gfsm_apply(a, buf->base, buf->len) == 0 ? 0 : RAFT_INVALID;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                            unsigned *n_bufs)
{
    mk__gfsm *a = fsm->data;
    mk_buf b;
    mk_buf_init(&b);
    /* About the size of the last one: a big state is not copied again
     * and again as the buffer doubles its way up. */
    if (a->snapshot_bytes)
        mk_buf_reserve(&b, a->snapshot_bytes + a->snapshot_bytes / 8);
    int rc = mk__gfsm_snapshot(a, &b);
    if (rc != 0) {
        mk_buf_free(&b);
        return rc == MK_ENOMEM ? RAFT_NOMEM : RAFT_INVALID;
    }
    /* Version 1 semantics: raft releases both with raft_free once the
     * snapshot is stored. raft_free is free() unless a program installs
     * its own heap (raft_heap_set), which this library never does
     * (docs/groups.md), so the serialised state is handed over as it is:
     * copying it into raft_malloc memory was an eighth of a big Map
     * leader's CPU. */
    struct raft_buffer *arr = raft_malloc(sizeof *arr);
    if (!arr) {
        mk_buf_free(&b);
        return RAFT_NOMEM;
    }
    size_t len;
    arr[0].base = mk_buf_detach(&b, &len);
    arr[0].len = len;
    a->snapshot_bytes = len;
    a->snapshots++;
    *bufs = arr;
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    mk__gfsm *a = fsm->data;
    int rc = mk__gfsm_restore(a, buf->base, buf->len);
    if (rc != 0)
        return rc == MK_ENOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
    a->snapshot_bytes = buf->len;
    /* On success the buffer is ours to release (libraft's contract). */
    raft_free(buf->base);
    return 0;
}

void mk__gfsm_init(mk__gfsm *a, struct mk_fsm *user,
                   const mk__gfsm_hooks *hooks)
{
    memset(a, 0, sizeof *a);
    a->user = user;
    if (hooks)
        a->hooks = *hooks;
    a->max_sessions = MK__GFSM_MAX_SESSIONS;
    a->max_results = MK__GFSM_MAX_RESULTS;
    mk_buf_init(&a->result);
    a->raft.version = 1;
    a->raft.data = a;
    a->raft.apply = fsm_apply;
    a->raft.snapshot = fsm_snapshot;
    a->raft.restore = fsm_restore;
}

void mk__gfsm_free(mk__gfsm *a)
{
    sessions_free(a->sessions, a->n_sessions);
    a->sessions = NULL;
    a->n_sessions = a->cap_sessions = 0;
    mk_buf_free(&a->result);
}

int mk__fsm_state_hash(struct mk_fsm *user, uint64_t applied, mk_id *out)
{
    mk_buf b;
    mk_buf_init(&b);
    int rc = user->snapshot(user, &b);
    if (rc == 0 && b.err)
        rc = b.err;
    if (rc == 0) {
        uint8_t le[8];
        mk_store_le64(le, applied);
        mk_blake3_hasher h;
        mk_blake3_init(&h);
        mk_blake3_update(&h, le, sizeof le);
        mk_blake3_update(&h, b.data, b.len);
        mk_blake3_final(&h, out->b, MK_ID_LEN);
    }
    mk_buf_free(&b);
    return rc > 0 ? MK_EIO : rc;
}
