/* Chronicle handles and chain verification (include/coalition/chronicle.h).
 *
 * Verification never trusts a stored hash: every entry's hash is
 * recomputed from its fields, every link is checked against the hash of
 * the entry before it, and every signature present must verify under its
 * member's key. A log that was rewritten anywhere fails at the first
 * rewritten entry. Recomputing hashes is not enough on its own, since
 * the formula is public: anyone can build a well-formed chain. What makes
 * it the committee's is the signed head (the latest entry a committee
 * majority signed), which vouches for itself and everything before it
 * through the chain, and for nothing after it.
 */
#include "coalition/chronicle.h"
#include "coalition/chronicle_record.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "modules_internal.h"
#include "mosaik/error.h"
#include "reader.h"

struct co_chronicle_reader {
    co__reader base;
    co_chronicle_cb cb;
    void *data;
};

void co__chronicle_view(const co__chronicle_entry *e, co_chronicle_entry *out)
{
    *out = (co_chronicle_entry){
        .seq = e->seq,
        .kind = e->kind,
        .subject = e->subject,
        .body = e->body,
        .body_len = e->body_len,
        .prev = e->prev,
        .hash = e->hash,
        .sigs = e->sigs,
        .n_sigs = e->n_sigs,
    };
}

/* Records a failure: nothing is vouched for, whatever was seen before. */
static void refuse(co_chronicle_check *out, int status, uint64_t seq,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void refuse(co_chronicle_check *out, int status, uint64_t seq,
                   const char *fmt, ...)
{
    out->ok = out->complete = false;
    out->status = status;
    out->first_bad = seq;
    out->signed_head = 0;
    out->head_signers = 0;
    memset(&out->head_hash, 0, sizeof out->head_hash);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof out->why, fmt, ap);
    va_end(ap);
}

static size_t committee_index(const mk_peer_id *committee, size_t n,
                              const mk_peer_id *key)
{
    size_t m = 0;
    while (m < n && !mk_id_eq(&committee[m], key))
        m++;
    return m;
}

/* Distinct committee members whose signature on `e` holds, or -1 (out
 * filled) when a signature is by an outsider or does not verify: the
 * committee only ever signs the hash it computed, so either is a sign
 * the entry, or its signatures, were changed. */
static long count_signers(const co_chronicle_entry *e,
                          const mk_peer_id *committee, size_t n_committee,
                          co_chronicle_check *out)
{
    bool counted[CO_MODULE_MAX_COMMITTEE] = {false};
    long good = 0;
    char who[MK_ID_HEX_LEN + 1];
    for (size_t s = 0; s < e->n_sigs; s++) {
        const mk_peer_id *key = &e->sigs[s].member;
        size_t m = committee_index(committee, n_committee, key);
        mk_id_hex(key, who);
        if (m == n_committee) {
            refuse(out, CO_ECHAIN, e->seq,
                   "signed by a key outside the committee: signature %zu "
                   "of %zu, by %.16s…",
                   s + 1, e->n_sigs, who);
            return -1;
        }
        if (co__chronicle_verify_sig(key, e->hash.b, MK_ID_LEN,
                                     e->sigs[s].sig) != 0) {
            refuse(out, CO_ECHAIN, e->seq,
                   "signature does not verify: signature %zu of %zu, by "
                   "committee member %zu (%.16s…)",
                   s + 1, e->n_sigs, m + 1, who);
            return -1;
        }
        if (!counted[m]) {
            counted[m] = true;
            good++;
        }
    }
    return good;
}

/* A recorded committee change must decode, and an operator's must carry
 * that operator's signature of the request for that group (the subject):
 * members record only what the group's leader noted, so anything else is
 * a record no member should have signed. */
static bool committee_change_holds(const co_chronicle_entry *e,
                                   co_chronicle_check *out)
{
    if (strcmp(e->kind, CO_RECORD_COMMITTEE) != 0)
        return true;
    co_record_committee r;
    if (co_record_committee_decode(e->body, e->body_len, &r) != 0) {
        refuse(out, CO_ECHAIN, e->seq,
               "a committee.change record that does not decode (%zu bytes)",
               e->body_len);
        return false;
    }
    if (r.ev.by_operator &&
        mk_group_assign_verify(&e->subject, &r.ev) != 0) {
        char who[MK_ID_HEX_LEN + 1];
        refuse(out, CO_ECHAIN, e->seq,
               "committee change: the operator's signature (by %.16s…) "
               "does not verify for that committee",
               mk_id_hex(&r.ev.by, who));
        return false;
    }
    return true;
}

void co_chronicle_verify_entries(const co_chronicle_entry *v, size_t n,
                                 const mk_peer_id *committee,
                                 size_t n_committee, co_chronicle_check *out)
{
    memset(out, 0, sizeof *out);
    out->entries = n;
    out->committee = n_committee;
    out->needed = n_committee / 2 + 1;
    if (n_committee == 0 || n_committee > CO_MODULE_MAX_COMMITTEE) {
        refuse(out, CO_ECONFIG, 0,
               "the committee must have 1 to %d members, given %zu",
               CO_MODULE_MAX_COMMITTEE, n_committee);
        return;
    }
    for (size_t i = 1; i < n_committee; i++)
        if (committee_index(committee, i, &committee[i]) < i) {
            /* A repeated key would let one member count twice. */
            refuse(out, CO_ECONFIG, 0,
                   "committee member %zu repeats an earlier member", i + 1);
            return;
        }
    if (n == 0) {
        refuse(out, CO_EUNVERIFIED, 0,
               "the log is empty: no signed head, nothing is vouched for");
        return;
    }
    mk_id prev = {{0}};
    uint64_t head = 0, most_at = 0;
    long head_k = 0, most = -1;
    mk_id head_hash = {{0}};
    for (size_t i = 0; i < n; i++) {
        const co_chronicle_entry *e = &v[i];
        uint64_t want = (uint64_t)i + 1;
        if (e->seq != want) {
            if (i == 0)
                refuse(out, CO_ECHAIN, 1,
                       "missing: the log starts at seq %llu (sequence "
                       "numbers are not consecutive from 1)",
                       (unsigned long long)e->seq);
            else
                refuse(out, CO_ECHAIN, want,
                       "missing: entry %llu is followed by seq %llu "
                       "(sequence numbers are not consecutive from 1)",
                       (unsigned long long)i, (unsigned long long)e->seq);
            return;
        }
        if (!mk_id_eq(&e->prev, &prev)) {
            refuse(out, CO_ECHAIN, want,
                   i == 0 ? "prev of the first entry is not zero"
                          : "prev does not link to the entry before it");
            return;
        }
        if (!e->kind) {
            refuse(out, CO_ECHAIN, want, "the entry has no kind");
            return;
        }
        mk_id h;
        co__chronicle_entry_hash(e->seq, e->kind, &e->subject, e->body,
                                 e->body_len, &e->prev, &h);
        if (!mk_id_eq(&h, &e->hash)) {
            refuse(out, CO_ECHAIN, want,
                   "hash does not match the entry's contents");
            return;
        }
        if (!committee_change_holds(e, out))
            return;
        long k = count_signers(e, committee, n_committee, out);
        if (k < 0)
            return;
        if ((size_t)k >= out->needed) {
            head = want;
            head_k = k;
            head_hash = h;
        }
        if (k >= most) {
            most = k;
            most_at = want;
        }
        prev = h;
    }
    if (head == 0) {
        refuse(out, CO_EUNVERIFIED, 0,
               "no signed head: no entry has valid signatures from %zu of "
               "the %zu committee members (the most is %ld, on entry %llu "
               "of %zu)",
               out->needed, n_committee, most, (unsigned long long)most_at,
               n);
        return;
    }
    out->ok = true;
    out->signed_head = head;
    out->head_hash = head_hash;
    out->head_signers = (size_t)head_k;
    out->complete = head == n;
    if (!out->complete) {
        if (head + 1 == n)
            snprintf(out->why, sizeof out->why,
                     "entry %zu is present but not covered by a signed "
                     "head", n);
        else
            snprintf(out->why, sizeof out->why,
                     "entries %llu..%zu are present but not covered by a "
                     "signed head",
                     (unsigned long long)head + 1, n);
    }
}

/* ---- the reader --------------------------------------------------------- */

static void on_reader(co__reader *base, int status)
{
    co_chronicle_reader *r = base->owner;
    r->cb(r, status, r->data);
}

int co_chronicle_read(mk_node *net, const co_coalition_config *cfg,
                      uint32_t timeout_ms, co_chronicle_cb cb, void *data,
                      co_chronicle_reader **out, char *err)
{
    co_chronicle_reader *r = calloc(1, sizeof *r);
    if (!r)
        return MK_ENOMEM;
    r->cb = cb;
    r->data = data;
    int rc = co__reader_open(&r->base, net, cfg, CO_MODULE_CHRONICLE,
                             co__chronicle_fsm_init, co__chronicle_fsm_free,
                             co__chronicle_retirement, timeout_ms, on_reader,
                             r, err);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void co_chronicle_close(co_chronicle_reader *r, mk_close_cb done, void *data)
{
    co__reader_close(&r->base, done, data);
}

size_t co_chronicle_count(const co_chronicle_reader *r)
{
    return co__chronicle_count(&r->base.fsm);
}

bool co_chronicle_at(const co_chronicle_reader *r, size_t i,
                     co_chronicle_entry *out)
{
    const co__chronicle_entry *e = co__chronicle_at(&r->base.fsm, i);
    if (!e)
        return false;
    co__chronicle_view(e, out);
    return true;
}

void co_chronicle_verify(const co_chronicle_reader *r,
                         co_chronicle_check *out)
{
    size_t n = co__chronicle_count(&r->base.fsm);
    co_chronicle_entry *v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        memset(out, 0, sizeof *out);
        refuse(out, MK_ENOMEM, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        co__chronicle_view(co__chronicle_at(&r->base.fsm, i), &v[i]);
    co_chronicle_verify_entries(v, n, r->base.m.committee,
                                r->base.m.n_committee, out);
    free(v);
}

void co_chronicle_retirement(const co_chronicle_reader *r, co_retirement *out)
{
    *out = *co__chronicle_retirement(&r->base.fsm);
}

/* ---- export and offline verification ----------------------------------- */

static json_t *hex_json(const void *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    if (!s)
        return NULL;
    mk_hex_encode(p, n, s);
    json_t *j = json_string(s);
    free(s);
    return j;
}

int co_chronicle_export(const co_chronicle_reader *r, FILE *out)
{
    for (size_t i = 0; i < co__chronicle_count(&r->base.fsm); i++) {
        const co__chronicle_entry *e = co__chronicle_at(&r->base.fsm, i);
        json_t *o = json_object(), *sigs = json_array();
        json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
        json_object_set_new(o, "kind", json_string(e->kind));
        json_object_set_new(o, "subject", hex_json(e->subject.b, 32));
        json_object_set_new(o, "body", hex_json(e->body, e->body_len));
        json_object_set_new(o, "prev", hex_json(e->prev.b, 32));
        json_object_set_new(o, "hash", hex_json(e->hash.b, 32));
        for (size_t s = 0; s < e->n_sigs; s++) {
            json_t *sg = json_object();
            json_object_set_new(sg, "member", hex_json(e->sigs[s].member.b,
                                                       32));
            json_object_set_new(sg, "sig", hex_json(e->sigs[s].sig,
                                                    MK_SIG_LEN));
            json_array_append_new(sigs, sg);
        }
        json_object_set_new(o, "sigs", sigs);
        char *line = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!line)
            return MK_ENOMEM;
        int w = fprintf(out, "%s\n", line);
        free(line);
        if (w < 0)
            return MK_EIO;
    }
    return fflush(out) == 0 ? 0 : MK_EIO;
}

typedef struct loaded {
    co_chronicle_entry *v;
    size_t n, cap;
} loaded;

static void loaded_free(loaded *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->v[i].kind);
        free((uint8_t *)l->v[i].body);
        free((co_member_sig *)l->v[i].sigs);
    }
    free(l->v);
}

static int hex_field(json_t *o, const char *key, void *out, size_t n)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && mk_hex_decode(out, n, s, strlen(s)) == 0 ? 0 : -1;
}

static int parse_line(const char *line, co_chronicle_entry *e, char *why)
{
    json_error_t je;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
    int rc = -1;
    memset(e, 0, sizeof *e);
    if (!o) {
        snprintf(why, 128, "not JSON: %s", je.text);
        return -1;
    }
    json_t *seq = json_object_get(o, "seq"), *sigs = json_object_get(o, "sigs");
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *body = json_string_value(json_object_get(o, "body"));
    if (!json_is_integer(seq) || json_integer_value(seq) < 1 || !kind ||
        !body || !json_is_array(sigs) || strlen(body) % 2 ||
        json_array_size(sigs) > CO_MODULE_MAX_COMMITTEE ||
        hex_field(o, "subject", e->subject.b, 32) ||
        hex_field(o, "prev", e->prev.b, 32) ||
        hex_field(o, "hash", e->hash.b, 32)) {
        snprintf(why, 128, "missing or malformed field");
        goto out;
    }
    e->seq = (uint64_t)json_integer_value(seq);
    e->kind = strdup(kind);
    e->body_len = strlen(body) / 2;
    uint8_t *b = malloc(e->body_len + 1);
    co_member_sig *sv = calloc(json_array_size(sigs) + 1, sizeof *sv);
    e->body = b;
    e->sigs = sv;
    if (!e->kind || !b || !sv ||
        mk_hex_decode(b, e->body_len, body, strlen(body)) != 0) {
        snprintf(why, 128, "bad body");
        goto out;
    }
    size_t i;
    json_t *sg;
    json_array_foreach(sigs, i, sg) {
        if (hex_field(sg, "member", sv[i].member.b, 32) ||
            hex_field(sg, "sig", sv[i].sig, MK_SIG_LEN)) {
            snprintf(why, 128, "bad signature field");
            goto out;
        }
        e->n_sigs++;
    }
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int co_chronicle_verify_file(const co_coalition_config *cfg,
                             const char *path, co_chronicle_check *out,
                             uint64_t *count, char *err)
{
    co_module_info m;
    int rc = co_module_info_get(cfg, CO_MODULE_CHRONICLE, &m, err);
    if (rc < 0)
        return rc;
    FILE *f = fopen(path, "r");
    if (!f) {
        rc = -errno;
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "%s: %s", path, mk_strerror(rc));
        return rc;
    }
    loaded l = {0};
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    rc = 0;
    while (rc == 0 && (got = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (got == 1 && line[0] == '\n')
            continue;
        if (l.n == l.cap) {
            size_t nc = l.cap ? 2 * l.cap : 64;
            co_chronicle_entry *g = realloc(l.v, nc * sizeof *g);
            if (!g) {
                rc = MK_ENOMEM;
                break;
            }
            l.v = g;
            l.cap = nc;
        }
        char why[128];
        if (parse_line(line, &l.v[l.n], why) < 0) {
            l.n++; /* owns what parse_line allocated */
            if (err)
                snprintf(err, CO_ERRMSG_SIZE, "%s:%zu: %s", path, lineno,
                         why);
            rc = MK_EDECODE;
            break;
        }
        l.n++;
    }
    free(line);
    fclose(f);
    if (rc == 0) {
        co_chronicle_verify_entries(l.v, l.n, m.committee, m.n_committee,
                                    out);
        if (count)
            *count = l.n;
    }
    loaded_free(&l);
    return rc;
}

/* ---- append ------------------------------------------------------------ */

typedef struct appending {
    void (*done)(int, void *);
    void *data;
    bool refusable; /* not `once`: a 0 answer means refused */
} appending;

static void on_appended(int status, const uint8_t *res, size_t len,
                        void *data)
{
    appending *a = data;
    /* The Chronicle answers 0 for a request it refused; a `once` append
     * it skipped as already recorded is not a failure. A member refuses
     * at its door what it can tell without the state (not a member's,
     * malformed, too large). */
    if ((status == 0 && len >= 1 && res[0] == 0 && a->refusable) ||
        co__door_refused(status))
        status = CO_ECONFIG;
    a->done(status, a->data);
    free(a);
}

int co_chronicle_append(mk_node *net, const co_coalition_config *cfg,
                        const char *kind, const mk_id *subject,
                        const void *body, size_t len, bool once,
                        const mk_keypair *member, uint32_t timeout_ms,
                        void (*done)(int status, void *data), void *data,
                        char *err)
{
    co_module_info m;
    mk_id group;
    int rc =
        co_module_committee_group(cfg, CO_MODULE_CHRONICLE, &m, &group, err);
    if (rc < 0)
        return rc;
    size_t klen = strlen(kind);
    bool kind_ok = klen > 0 && klen <= CO_CHRONICLE_MAX_KIND;
    for (size_t i = 0; kind_ok && i < klen; i++)
        kind_ok = kind[i] > 0x20 && kind[i] < 0x7f;
    if (!kind_ok || len > CO_CHRONICLE_MAX_BODY) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "kind must be 1-%d printable characters without "
                     "spaces and the body at most %u bytes",
                     CO_CHRONICLE_MAX_KIND, CO_CHRONICLE_MAX_BODY);
        return CO_ECONFIG;
    }
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__chronicle_cmd_append(&cmd, kind, subject, body, len, once, member);
    appending *a = malloc(sizeof *a);
    if (!a) {
        mk_buf_free(&cmd);
        return MK_ENOMEM;
    }
    *a = (appending){done, data, !once};
    rc = co__submit(net, &group, &cmd, timeout_ms, on_appended, a);
    mk_buf_free(&cmd);
    if (rc < 0)
        free(a);
    return rc;
}
