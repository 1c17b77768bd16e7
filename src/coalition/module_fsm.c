/* Shared module state-machine pieces (module_fsm.h). */
#include "module_fsm.h"

#include <stdlib.h>
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/error.h"

static void retire_digest(const mk_id *module_sig, const char *reason,
                          size_t rlen, const mk_id *successor,
                          uint8_t out[32])
{
    uint8_t zero = 0, has = successor != NULL;
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, "coalition/retire/1", 18);
    mk_blake3_update(&h, module_sig->b, MK_ID_LEN);
    mk_blake3_update(&h, reason, rlen);
    mk_blake3_update(&h, &zero, 1);
    mk_blake3_update(&h, &has, 1);
    if (successor)
        mk_blake3_update(&h, successor->b, MK_ID_LEN);
    mk_blake3_final(&h, out, 32);
}

void co__cmd_retire(mk_buf *out, const mk_id *module_sig, const char *reason,
                    const mk_id *successor, const mk_keypair *member)
{
    uint8_t digest[32], sig[MK_SIG_LEN];
    if (!reason)
        reason = "";
    retire_digest(module_sig, reason, strlen(reason), successor, digest);
    mk_sign(member, digest, sizeof digest, sig);
    mk_put_u8(out, CO__CMD_RETIRE);
    mk_put_str(out, reason);
    mk_put_u8(out, successor != NULL);
    if (successor)
        mk_put_id(out, successor);
    mk_put_id(out, &member->pub);
    mk_put_raw(out, sig, MK_SIG_LEN);
}

int co__member_check(const co_module_info *m, mk__sig_cache *verified,
                     const mk_peer_id *member, const uint8_t digest[32],
                     const uint8_t *sig)
{
    if (!co_module_is_member(m, member))
        return MK_ENOT_ALLOWED;
    return mk__sig_cache_verify(verified, member, digest, 32, sig) == 0
               ? 0
               : MK_EBAD_SIGNATURE;
}

bool co__door_refused(int status)
{
    return status == MK_EDECODE || status == MK_ENOT_ALLOWED ||
           status == MK_EBAD_SIGNATURE || status == MK_EMSGSIZE;
}

void co__retirement_put(mk_buf *b, const co_retirement *ret)
{
    mk_put_u8(b, ret->retired);
    if (!ret->retired)
        return;
    mk_put_str(b, ret->reason);
    mk_put_u8(b, ret->has_successor);
    if (ret->has_successor)
        mk_put_id(b, &ret->successor);
}

/* A reason is a C string: an embedded NUL would be cut off when stored,
 * so the stored reason (and the digest signed over it) would not be the
 * bytes that were sent. Refused instead. */
static void get_reason(mk_reader *r, co_retirement *ret)
{
    size_t n;
    const uint8_t *p = mk_get_bytes(r, &n, sizeof ret->reason - 1);
    if (!p)
        return;
    if (memchr(p, 0, n)) {
        r->err = MK_EDECODE;
        return;
    }
    memcpy(ret->reason, p, n);
    ret->reason[n] = '\0';
}

/* Strict: only what co__retirement_put writes is accepted (flags 0 or 1,
 * a reason without NUL), so a restored replica snapshots the very bytes
 * it restored and every replica agrees on them. */
void co__retirement_get(mk_reader *r, co_retirement *ret)
{
    memset(ret, 0, sizeof *ret);
    uint8_t retired = mk_get_u8(r);
    if (retired > 1)
        r->err = MK_EDECODE;
    if (retired != 1 || r->err)
        return;
    ret->retired = true;
    get_reason(r, ret);
    uint8_t has = mk_get_u8(r);
    if (has > 1)
        r->err = MK_EDECODE;
    ret->has_successor = has == 1;
    if (ret->has_successor)
        mk_get_id(r, &ret->successor);
}

int co__retire_check(mk_reader *r, const co_module_info *m,
                     mk__sig_cache *verified, const mk_id *module_sig,
                     co_retirement *next)
{
    memset(next, 0, sizeof *next);
    next->retired = true;
    get_reason(r, next);
    uint8_t has = mk_get_u8(r);
    if (has > 1)
        return MK_EDECODE;
    next->has_successor = has;
    if (has)
        mk_get_id(r, &next->successor);
    mk_peer_id member;
    mk_get_id(r, &member);
    const uint8_t *sig = mk_get_raw(r, MK_SIG_LEN);
    if (!sig || mk_reader_done(r) != 0)
        return MK_EDECODE;
    uint8_t digest[32];
    retire_digest(module_sig, next->reason, strlen(next->reason),
                  has ? &next->successor : NULL, digest);
    return co__member_check(m, verified, &member, digest, sig);
}

int co__retire_apply(co_retirement *ret, const co_retirement *next,
                     mk_buf *result)
{
    /* Retirement is final: the first accepted marker stands. */
    bool ok = !ret->retired;
    if (ok)
        *ret = *next;
    mk_put_u8(result, ok);
    return result->err;
}

int co__sigs_add(co_member_sig **sigs, size_t *n, const co_module_info *m,
                 const co_member_sig *s, const uint8_t *bytes, size_t len,
                 int (*verify)(const mk_peer_id *, const uint8_t *, size_t,
                               const uint8_t *))
{
    size_t rank = 0;
    bool member = false;
    for (; rank < m->n_committee; rank++)
        if (mk_id_eq(&m->committee[rank], &s->member)) {
            member = true;
            break;
        }
    if (!member)
        return 0;
    for (size_t i = 0; i < *n; i++)
        if (mk_id_eq(&(*sigs)[i].member, &s->member))
            return 0;
    if (verify(&s->member, bytes, len, s->sig) != 0)
        return 0;
    co_member_sig *grown = realloc(*sigs, (*n + 1) * sizeof *grown);
    if (!grown)
        return MK_ENOMEM;
    *sigs = grown;
    /* Insert in committee order. */
    size_t at = 0;
    while (at < *n) {
        size_t r = 0;
        while (r < m->n_committee &&
               !mk_id_eq(&m->committee[r], &grown[at].member))
            r++;
        if (r > rank)
            break;
        at++;
    }
    memmove(grown + at + 1, grown + at, (*n - at) * sizeof *grown);
    grown[at] = *s;
    (*n)++;
    return 1;
}

void co__sigs_put(mk_buf *b, const co_member_sig *sigs, size_t n)
{
    mk_put_varint(b, n);
    for (size_t i = 0; i < n; i++) {
        mk_put_id(b, &sigs[i].member);
        mk_put_raw(b, sigs[i].sig, MK_SIG_LEN);
    }
}

co_member_sig *co__sigs_get(mk_reader *r, size_t *n)
{
    *n = mk_get_count(r, CO_MODULE_MAX_COMMITTEE, MK_ID_LEN + MK_SIG_LEN);
    if (*n == 0)
        return NULL;
    co_member_sig *v = calloc(*n, sizeof *v);
    if (!v) {
        r->err = MK_ENOMEM;
        *n = 0;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        mk_get_id(r, &v[i].member);
        const uint8_t *sig = mk_get_raw(r, MK_SIG_LEN);
        if (sig)
            memcpy(v[i].sig, sig, MK_SIG_LEN);
    }
    return v;
}

int co__refuse_malformed(int rc, mk_buf *result)
{
    if (rc != MK_EDECODE)
        return rc;
    mk_buf_reset(result);
    mk_put_u8(result, 0);
    return result->err;
}
