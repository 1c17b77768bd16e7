/* The Chronicle state machine: the coalition's tamper-evident record of
 * its own publications, rotations and retirements.
 *
 * Entries are appended in commit order; each names the hash of the one
 * before it, so the log is a hash chain, and committee members SIGN the
 * latest entry's hash as entries land (kept only if it verifies, like
 * Atlas cards; a member signs the head, not every entry: host.c). A
 * reader that trusts any signed head can verify everything before it,
 * and any rewrite of an entry breaks the chain from there on (SPEC §4).
 *
 * APPEND with `once` records a fact only if the latest entry of the same
 * kind and subject does not already say exactly that: every member
 * daemon records the config it starts with, and a restart of the same
 * config must not grow the log. With `never said` it records a fact only
 * if no entry of that kind and subject ever said it: members record each
 * Atlas publication as they apply it, and a member that lags behind
 * would otherwise re-add an older publication after a newer one landed
 * (the record's body numbers the publication, so two real ones never
 * look alike).
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/error.h"
#include "module_fsm.h"

#define ENTRY_DOMAIN "coalition/chronicle/entry/1"
#define SIGN_DOMAIN "coalition/chronicle/sign/1"
#define SIG_CACHE_SLOTS 16384

typedef struct chronicle {
    co_module_info m;
    mk__sig_cache *verified; /* appends checked at the door, then in apply */
    co__chronicle_entry *v;
    size_t n, cap;
    co_retirement ret;
    co__chronicle_appended_cb on_append;
    void *on_append_data;
} chronicle;

void co__chronicle_entry_hash(uint64_t seq, const char *kind,
                              const mk_id *subject, const uint8_t *body,
                              size_t len, const mk_id *prev, mk_id *out)
{
    uint8_t le[8], body_hash[32], zero = 0;
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(seq >> (8 * i));
    mk_blake3(body, len, body_hash);
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, ENTRY_DOMAIN, strlen(ENTRY_DOMAIN));
    mk_blake3_update(&h, le, 8);
    mk_blake3_update(&h, kind, strlen(kind));
    mk_blake3_update(&h, &zero, 1); /* kind is variable-length */
    mk_blake3_update(&h, subject->b, MK_ID_LEN);
    mk_blake3_update(&h, body_hash, 32);
    mk_blake3_update(&h, prev->b, MK_ID_LEN);
    mk_blake3_final(&h, out->b, MK_ID_LEN);
}

static void sign_msg(const uint8_t *hash, uint8_t msg[64])
{
    /* Fixed-size message: the domain (padded) then the entry hash. */
    memset(msg, 0, 64);
    memcpy(msg, SIGN_DOMAIN, strlen(SIGN_DOMAIN));
    memcpy(msg + 32, hash, 32);
}

int co__chronicle_sign_hash(const mk_keypair *kp, const mk_id *hash,
                            uint8_t sig[MK_SIG_LEN])
{
    uint8_t msg[64];
    sign_msg(hash->b, msg);
    mk_sign(kp, msg, sizeof msg, sig);
    return 0;
}

int co__chronicle_verify_sig(const mk_peer_id *member, const uint8_t *hash,
                             size_t len, const uint8_t *sig)
{
    if (len != MK_ID_LEN)
        return MK_EINVAL;
    uint8_t msg[64];
    sign_msg(hash, msg);
    return mk_verify(member, msg, sizeof msg, sig);
}

static void entry_free(co__chronicle_entry *e)
{
    free(e->body);
    free(e->sigs);
    memset(e, 0, sizeof *e);
}

static void clear(chronicle *c)
{
    for (size_t i = 0; i < c->n; i++)
        entry_free(&c->v[i]);
    free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
    memset(&c->ret, 0, sizeof c->ret);
}

static bool kind_ok(const char *k, size_t n)
{
    if (n == 0 || n > CO_CHRONICLE_MAX_KIND)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
            return false;
    return true;
}

/* Appends the next entry (seq = n + 1, chained to the last). */
static co__chronicle_entry *push(chronicle *c, const char *kind, size_t klen,
                                 const mk_id *subject, const uint8_t *body,
                                 size_t blen)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        co__chronicle_entry *grown = realloc(c->v, cap * sizeof *grown);
        if (!grown)
            return NULL;
        c->v = grown;
        c->cap = cap;
    }
    co__chronicle_entry *e = &c->v[c->n];
    memset(e, 0, sizeof *e);
    e->body = malloc(blen ? blen : 1);
    if (!e->body)
        return NULL;
    if (blen)
        memcpy(e->body, body, blen);
    e->body_len = blen;
    memcpy(e->kind, kind, klen);
    e->kind[klen] = '\0';
    e->subject = *subject;
    e->seq = c->n + 1;
    memset(e->prev.b, 0, MK_ID_LEN);
    if (c->n)
        e->prev = c->v[c->n - 1].hash;
    co__chronicle_entry_hash(e->seq, e->kind, &e->subject, e->body,
                             e->body_len, &e->prev, &e->hash);
    c->n++;
    return e;
}

/* Whether the latest entry of this kind and subject (`ever`: any of
 * them) says exactly this. */
static bool already_said(const chronicle *c, const char *kind,
                         const mk_id *subject, const uint8_t *body,
                         size_t len, bool ever)
{
    for (size_t i = c->n; i > 0; i--) {
        const co__chronicle_entry *e = &c->v[i - 1];
        if (strcmp(e->kind, kind) != 0 || !mk_id_eq(&e->subject, subject))
            continue;
        bool same = e->body_len == len && memcmp(e->body, body, len) == 0;
        if (same || !ever)
            return same;
    }
    return false;
}

/* What a member signs to ask for an append: the request, not the entry
 * (its seq and prev depend on the commit order). */
static void append_digest(const char *kind, const mk_id *subject,
                          const uint8_t *body, size_t len, uint8_t out[32])
{
    mk_id e;
    mk_id zero = {{0}};
    co__chronicle_entry_hash(0, kind, subject, body, len, &zero, &e);
    memcpy(out, e.b, 32);
}

/* A command, decoded; pointers are into the command's bytes. */
typedef struct chronicle_cmd {
    uint8_t kind;
    char entry_kind[CO_CHRONICLE_MAX_KIND + 1]; /* APPEND */
    size_t klen;
    mk_id subject;           /* APPEND */
    const uint8_t *body;     /* APPEND */
    size_t blen;
    uint8_t once;            /* APPEND: CO__APPEND_* */
    uint64_t seq;            /* SIGN */
    co_member_sig s;         /* APPEND, SIGN */
    co_retirement retire;    /* RETIRE */
} chronicle_cmd;

/* Decodes a whole command and checks what needs no state
 * (module_fsm.h). A SIGN's signature covers the hash of an entry the
 * state holds, so for SIGN only the signer's membership is checked
 * here. */
static int chronicle_check(const chronicle *c, const mk_id *module_sig,
                           const uint8_t *cmd, size_t len,
                           chronicle_cmd *out)
{
    memset(out, 0, sizeof *out);
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    out->kind = mk_get_u8(&r);
    if (out->kind == CO__CMD_RETIRE)
        return co__retire_check(&r, &c->m, c->verified, module_sig, &out->retire);
    if (out->kind == CO__CHRONICLE_SIGN) {
        out->seq = mk_get_varint(&r);
        mk_get_id(&r, &out->s.member);
        const uint8_t *sig = mk_get_raw(&r, MK_SIG_LEN);
        if (!sig || mk_reader_done(&r) != 0)
            return MK_EDECODE;
        memcpy(out->s.sig, sig, MK_SIG_LEN);
        return co_module_is_member(&c->m, &out->s.member) ? 0
                                                           : MK_ENOT_ALLOWED;
    }
    if (out->kind != CO__CHRONICLE_APPEND)
        return MK_EDECODE;
    const uint8_t *kind = mk_get_bytes(&r, &out->klen, CO_CHRONICLE_MAX_KIND);
    mk_get_id(&r, &out->subject);
    out->body = mk_get_bytes(&r, &out->blen, CO_CHRONICLE_MAX_BODY);
    uint8_t once = mk_get_u8(&r);
    mk_get_id(&r, &out->s.member);
    const uint8_t *sig = mk_get_raw(&r, MK_SIG_LEN);
    if (!kind || !out->body || !sig || once > CO__APPEND_NEVER_SAID ||
        mk_reader_done(&r) != 0 ||
        !kind_ok((const char *)kind, out->klen))
        return MK_EDECODE;
    out->once = once;
    memcpy(out->s.sig, sig, MK_SIG_LEN);
    memcpy(out->entry_kind, kind, out->klen);
    out->entry_kind[out->klen] = '\0';
    uint8_t digest[32];
    append_digest(out->entry_kind, &out->subject, out->body, out->blen,
                  digest);
    return co__member_check(&c->m, c->verified, &out->s.member, digest,
                            out->s.sig);
}

static int chronicle_admit(struct mk_fsm *fsm, const uint8_t *cmd,
                           size_t len)
{
    chronicle_cmd c;
    return chronicle_check(fsm->data, &fsm->signature, cmd, len, &c);
}

/* On the group's worker thread, as an entry reaches this member's log:
 * chronicle_check reads only the committee (fixed at init) and fills the
 * verified memo (locked), so apply() finds the append's signature
 * checked. Followers gain the most: nothing was admitted through them. */
static void chronicle_prepare(struct mk_fsm *fsm, const uint8_t *cmd,
                              size_t len)
{
    chronicle_cmd c;
    (void)chronicle_check(fsm->data, &fsm->signature, cmd, len, &c);
}

static int apply_append(chronicle *c, const chronicle_cmd *a, bool allowed,
                        mk_buf *result)
{
    if (!allowed || c->ret.retired ||
        (a->once && already_said(c, a->entry_kind, &a->subject, a->body,
                                 a->blen,
                                 a->once == CO__APPEND_NEVER_SAID))) {
        mk_put_u8(result, 0);
        mk_put_varint(result, c->n);
        return 0;
    }
    co__chronicle_entry *e = push(c, a->entry_kind, a->klen, &a->subject,
                                  a->body, a->blen);
    if (!e)
        return MK_ENOMEM;
    mk_put_u8(result, 1);
    mk_put_varint(result, e->seq);
    if (c->on_append)
        c->on_append(e, c->on_append_data);
    return 0;
}

static int apply_sign(chronicle *c, const chronicle_cmd *a, mk_buf *result)
{
    int added = 0;
    if (a->seq >= 1 && a->seq <= c->n) {
        co__chronicle_entry *e = &c->v[a->seq - 1];
        added = co__sigs_add(&e->sigs, &e->n_sigs, &c->m, &a->s, e->hash.b,
                             MK_ID_LEN, co__chronicle_verify_sig);
        if (added < 0)
            return added;
    }
    mk_put_u8(result, (uint8_t)added);
    return 0;
}

static int apply_retire(chronicle *c, const chronicle_cmd *a,
                        mk_buf *result)
{
    bool was = c->ret.retired;
    int rc = co__retire_apply(&c->ret, &a->retire, result);
    if (rc < 0 || was)
        return rc;
    /* The retirement is itself a fact the log records, last. */
    mk_id none = {{0}};
    co__chronicle_entry *e =
        push(c, "retired", 7, c->ret.has_successor ? &c->ret.successor : &none,
             (const uint8_t *)c->ret.reason, strlen(c->ret.reason));
    if (!e)
        return MK_ENOMEM;
    if (c->on_append)
        c->on_append(e, c->on_append_data);
    return 0;
}

static int chronicle_apply_cmd(struct mk_fsm *fsm, const uint8_t *cmd,
                               size_t len, mk_buf *result)
{
    chronicle *c = fsm->data;
    chronicle_cmd a;
    int rc = chronicle_check(c, &fsm->signature, cmd, len, &a);
    /* A refused APPEND still answers with the log's length; every other
     * refusal is one zero byte, as for a malformed command. */
    if (rc == MK_EDECODE || (rc < 0 && a.kind != CO__CHRONICLE_APPEND))
        return MK_EDECODE;
    switch (a.kind) {
    case CO__CHRONICLE_APPEND:
        return apply_append(c, &a, rc == 0, result);
    case CO__CHRONICLE_SIGN:
        return apply_sign(c, &a, result);
    default:
        return apply_retire(c, &a, result);
    }
}

static int chronicle_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                           mk_buf *result)
{
    int rc = chronicle_apply_cmd(fsm, cmd, len, result);
    return co__refuse_malformed(rc, result);
}

static int chronicle_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    chronicle *c = fsm->data;
    co__retirement_put(out, &c->ret);
    mk_put_varint(out, c->n);
    for (size_t i = 0; i < c->n; i++) {
        const co__chronicle_entry *e = &c->v[i];
        mk_put_str(out, e->kind);
        mk_put_id(out, &e->subject);
        mk_put_bytes(out, e->body, e->body_len);
        co__sigs_put(out, e->sigs, e->n_sigs);
    }
    return out->err;
}

static int chronicle_restore(struct mk_fsm *fsm, const uint8_t *snap,
                             size_t len)
{
    chronicle *c = fsm->data, next;
    memset(&next, 0, sizeof next);
    next.m = c->m;
    mk_reader r;
    mk_reader_init(&r, snap, len);
    co__retirement_get(&r, &next.ret);
    size_t n = mk_get_count(&r, 1u << 24, 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0 && !r.err; i++) {
        size_t klen, blen;
        const uint8_t *kind = mk_get_bytes(&r, &klen, CO_CHRONICLE_MAX_KIND);
        mk_id subject;
        mk_get_id(&r, &subject);
        const uint8_t *body = mk_get_bytes(&r, &blen, CO_CHRONICLE_MAX_BODY);
        if (!kind || !body || !kind_ok((const char *)kind, klen)) {
            rc = MK_EDECODE;
            break;
        }
        /* Hashes are recomputed, never trusted from the snapshot. */
        co__chronicle_entry *e =
            push(&next, (const char *)kind, klen, &subject, body, blen);
        if (!e) {
            rc = MK_ENOMEM;
            break;
        }
        e->sigs = co__sigs_get(&r, &e->n_sigs);
    }
    if (rc == 0 && mk_reader_done(&r) != 0)
        rc = r.err == MK_ENOMEM ? MK_ENOMEM : MK_EDECODE;
    if (rc < 0) {
        clear(&next);
        return rc;
    }
    clear(c);
    c->v = next.v;
    c->n = next.n;
    c->cap = next.cap;
    c->ret = next.ret;
    return 0;
}

int co__chronicle_fsm_init(struct mk_fsm *fsm, const co_module_info *m)
{
    chronicle *c = calloc(1, sizeof *c);
    if (!c)
        return MK_ENOMEM;
    c->m = *m;
    /* Room for every command a leader may hold between admit and apply
     * at full speed; an evicted one is verified again, nothing worse. */
    c->verified = mk__sig_cache_new(SIG_CACHE_SLOTS);
    memset(fsm, 0, sizeof *fsm);
    fsm->version = MK_FSM_VERSION;
    fsm->data = c;
    mk_id_from_str(&fsm->signature, CO__CHRONICLE_SIGNATURE);
    fsm->apply = chronicle_apply;
    fsm->prepare = chronicle_prepare;
    fsm->snapshot = chronicle_snapshot;
    fsm->restore = chronicle_restore;
    fsm->admit = chronicle_admit;
    return 0;
}

void co__chronicle_fsm_free(struct mk_fsm *fsm)
{
    chronicle *c = fsm->data;
    if (!c)
        return;
    clear(c);
    mk__sig_cache_free(c->verified);
    free(c);
    fsm->data = NULL;
}

void co__chronicle_on_append(struct mk_fsm *fsm, co__chronicle_appended_cb cb,
                             void *data)
{
    chronicle *c = fsm->data;
    c->on_append = cb;
    c->on_append_data = data;
}

size_t co__chronicle_count(const struct mk_fsm *fsm)
{
    return ((const chronicle *)fsm->data)->n;
}

const co__chronicle_entry *co__chronicle_at(const struct mk_fsm *fsm,
                                            size_t i)
{
    const chronicle *c = fsm->data;
    return i < c->n ? &c->v[i] : NULL;
}

const co_retirement *co__chronicle_retirement(const struct mk_fsm *fsm)
{
    return &((const chronicle *)fsm->data)->ret;
}

void co__chronicle_cmd_append(mk_buf *out, const char *kind,
                              const mk_id *subject, const uint8_t *body,
                              size_t len, uint8_t once,
                              const mk_keypair *member)
{
    uint8_t digest[32], sig[MK_SIG_LEN];
    append_digest(kind, subject, body, len, digest);
    mk_sign(member, digest, sizeof digest, sig);
    mk_put_u8(out, CO__CHRONICLE_APPEND);
    mk_put_str(out, kind);
    mk_put_id(out, subject);
    mk_put_bytes(out, body, len);
    mk_put_u8(out, once);
    mk_put_id(out, &member->pub);
    mk_put_raw(out, sig, MK_SIG_LEN);
}

void co__chronicle_cmd_sign(mk_buf *out, const co__chronicle_entry *e,
                            const mk_keypair *member)
{
    uint8_t sig[MK_SIG_LEN];
    co__chronicle_sign_hash(member, &e->hash, sig);
    mk_put_u8(out, CO__CHRONICLE_SIGN);
    mk_put_varint(out, e->seq);
    mk_put_id(out, &member->pub);
    mk_put_raw(out, sig, MK_SIG_LEN);
}
