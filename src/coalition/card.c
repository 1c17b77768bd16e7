/* Citizen cards: canonical bytes, signatures, majority checks
 * (include/coalition/card.h). */
#include "coalition/card.h"

#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"

#define CARD_DOMAIN "coalition/atlas/card/1"

static bool str_ok(const char *s)
{
    return s && s[0] && strlen(s) <= CO_CARD_MAX_STR;
}

int co_card_encode(const co_citizen_card *c, mk_buf *out)
{
    if (!str_ok(c->role) || c->n_endpoint_hints > CO_CARD_MAX_HINTS ||
        c->n_mrtd_pins > CO_CARD_MAX_PINS)
        return CO_ECONFIG;
    for (size_t i = 0; i < c->n_endpoint_hints; i++)
        if (!str_ok(c->endpoint_hints[i]))
            return CO_ECONFIG;
    mk_put_id(out, &c->citizen_id);
    mk_put_str(out, c->role);
    mk_put_varint(out, c->n_endpoint_hints);
    for (size_t i = 0; i < c->n_endpoint_hints; i++)
        mk_put_str(out, c->endpoint_hints[i]);
    mk_put_id(out, &c->ticket_issuance_root);
    mk_put_varint(out, c->n_mrtd_pins);
    for (size_t i = 0; i < c->n_mrtd_pins; i++)
        mk_put_raw(out, c->mrtd_pins[i], CO_MRTD_LEN);
    mk_put_varint(out, c->schema_version);
    return out->err;
}

void co_card_free(co_card *c)
{
    if (!c)
        return;
    free((char *)c->card.role);
    for (size_t i = 0; i < c->card.n_endpoint_hints; i++)
        free((char *)c->card.endpoint_hints[i]);
    free((void *)c->card.endpoint_hints);
    free((void *)c->card.mrtd_pins);
    free(c->bytes);
    memset(c, 0, sizeof *c);
}

int co_card_decode(co_card *out, const uint8_t *bytes, size_t len)
{
    co_card c;
    memset(&c, 0, sizeof c);
    mk_reader r;
    mk_reader_init(&r, bytes, len);
    int rc = 0;
    mk_get_id(&r, &c.card.citizen_id);
    c.card.role = mk_get_strdup(&r, CO_CARD_MAX_STR);
    size_t n = mk_get_count(&r, CO_CARD_MAX_HINTS, 1);
    if (n) {
        char **hints = calloc(n, sizeof *hints);
        c.card.endpoint_hints = (const char *const *)hints;
        if (!hints)
            rc = MK_ENOMEM;
        for (size_t i = 0; rc == 0 && i < n && !r.err; i++) {
            hints[i] = mk_get_strdup(&r, CO_CARD_MAX_STR);
            if (hints[i])
                c.card.n_endpoint_hints++;
        }
    }
    mk_get_id(&r, &c.card.ticket_issuance_root);
    n = mk_get_count(&r, CO_CARD_MAX_PINS, CO_MRTD_LEN);
    if (n && rc == 0) {
        uint8_t(*pins)[CO_MRTD_LEN] = malloc(n * CO_MRTD_LEN);
        c.card.mrtd_pins = (const uint8_t(*)[CO_MRTD_LEN])pins;
        if (!pins)
            rc = MK_ENOMEM;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const uint8_t *p = mk_get_raw(&r, CO_MRTD_LEN);
            if (!p)
                break;
            memcpy(pins[i], p, CO_MRTD_LEN);
            c.card.n_mrtd_pins++;
        }
    }
    uint64_t v = mk_get_varint(&r);
    c.card.schema_version = (uint32_t)v;
    if (rc == 0 && (mk_reader_done(&r) != 0 || v > UINT32_MAX ||
                    !str_ok(c.card.role)))
        rc = MK_EDECODE;
    for (size_t i = 0; rc == 0 && i < c.card.n_endpoint_hints; i++)
        if (!c.card.endpoint_hints[i][0])
            rc = MK_EDECODE;
    if (rc == 0) {
        c.bytes = malloc(len ? len : 1);
        if (!c.bytes)
            rc = MK_ENOMEM;
        else
            memcpy(c.bytes, bytes, c.len = len);
    }
    if (rc < 0) {
        co_card_free(&c);
        return rc;
    }
    mk_id_hash(&c.hash, bytes, len);
    *out = c;
    return 0;
}

/* Ed25519 over domain ‖ bytes: built in one buffer because the signature
 * covers the whole message, not a hash of it. */
static uint8_t *domain_msg(const uint8_t *bytes, size_t len, size_t *n)
{
    size_t d = strlen(CARD_DOMAIN);
    uint8_t *m = malloc(d + len + 1);
    if (!m)
        return NULL;
    memcpy(m, CARD_DOMAIN, d);
    if (len)
        memcpy(m + d, bytes, len);
    *n = d + len;
    return m;
}

int co_card_sign(const mk_keypair *kp, const uint8_t *bytes, size_t len,
                 uint8_t sig[MK_SIG_LEN])
{
    size_t n;
    uint8_t *m = domain_msg(bytes, len, &n);
    if (!m)
        return MK_ENOMEM;
    mk_sign(kp, m, n, sig);
    free(m);
    return 0;
}

int co_card_verify(const mk_peer_id *member, const uint8_t *bytes,
                   size_t len, const uint8_t sig[MK_SIG_LEN])
{
    size_t n;
    uint8_t *m = domain_msg(bytes, len, &n);
    if (!m)
        return MK_ENOMEM;
    int rc = mk_verify(member, m, n, sig);
    free(m);
    return rc;
}

bool co_majority_signed(const mk_peer_id *committee, size_t n_committee,
                        const co_member_sig *sigs, size_t n_sigs,
                        const uint8_t *bytes, size_t len,
                        int (*verify)(const mk_peer_id *, const uint8_t *,
                                      size_t, const uint8_t *))
{
    if (n_committee == 0)
        return false;
    size_t good = 0;
    for (size_t m = 0; m < n_committee; m++) {
        /* At most one counted signature per committee member. */
        for (size_t s = 0; s < n_sigs; s++) {
            if (!mk_id_eq(&sigs[s].member, &committee[m]))
                continue;
            if (verify(&committee[m], bytes, len, sigs[s].sig) == 0) {
                good++;
                break;
            }
        }
    }
    return good * 2 > n_committee;
}
