/* Proof of membership: how a client or a replica tells a group's voter
 * from a peer that merely lists the GroupId in its entry.
 *
 * Entries are self-signed, so anyone can claim to serve any group; before
 * this, a fresh key that advertised a module's GroupId received clients'
 * commands and answered them. The voter set is therefore the last thing a
 * GroupId folds (group.c, mk_group_id_of), and a member shows the id it
 * folded it into together with the list (group_internal.h has the
 * protocol). The list is sent in one canonical order, ascending bytes with
 * no repeats, so a proof has exactly one encoding.
 *
 * A ticket-gated group (mk_group_tickets) cannot fold its members: they
 * change. It folds the seeds and the policy a member's ticket must pass
 * instead, and its proof carries that policy after the seeds:
 *   u8 1 ‖ varint max_voters ‖ varint n_keys ‖ keys ‖ str issuer ‖
 *   str audience ‖ varint max_lifetime_s          ("" = not required)
 * The dialer rebuilds the validator from it, checks that its signature
 * with the seeds folds to the GroupId it asked for, and that the entry of
 * the key the TLS handshake authenticated carries a ticket it accepts. A
 * fixed-list proof ends after the voters, as it always did.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_internal.h"
#include "mosaik/jwt.h"

static int by_bytes(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(mk_peer_id));
}

int mk__group_fold_voters(const mk_id *base, const mk_peer_id *voters,
                          size_t n, mk_id *out)
{
    if (n == 0 || n > MK__MAX_VOTERS)
        return MK_EINVAL;
    mk_peer_id sorted[MK__MAX_VOTERS];
    memcpy(sorted, voters, n * sizeof *voters);
    qsort(sorted, n, sizeof *sorted, by_bytes);
    for (size_t i = 1; i < n; i++)
        if (mk_id_eq(&sorted[i - 1], &sorted[i]))
            return MK_EINVAL;
    uint8_t label[6 + 4 + MK__MAX_VOTERS * MK_ID_LEN];
    memcpy(label, "voters", 6);
    for (int i = 0; i < 4; i++)
        label[6 + i] = (uint8_t)(n >> (8 * i));
    for (size_t i = 0; i < n; i++)
        memcpy(label + 10 + i * MK_ID_LEN, sorted[i].b, MK_ID_LEN);
    mk_id_derive(out, base, label, 10 + n * MK_ID_LEN);
    return 0;
}

void mk__proof_encode(mk_buf *b, const mk__proof *p)
{
    mk_put_id(b, &p->base);
    mk_put_varint(b, p->n);
    for (size_t i = 0; i < p->n; i++)
        mk_put_id(b, &p->voters[i]);
    if (!p->tickets)
        return;
    mk_put_u8(b, 1);
    mk_put_varint(b, p->max_voters);
    mk_put_varint(b, p->policy.n_keys);
    for (size_t i = 0; i < p->policy.n_keys; i++)
        mk_put_id(b, &p->policy.keys[i]);
    mk_put_str(b, p->policy.issuer);
    mk_put_str(b, p->policy.audience);
    mk_put_varint(b, p->policy.max_lifetime_s);
}

int mk_group_tickets_validator(const mk_group_tickets *t,
                               struct mk_ticket_validator *v)
{
    const char *iss[1] = {t->issuer}, *aud[1] = {t->audience};
    if (t->n_keys == 0 || t->n_keys > MK_GROUP_TICKET_KEYS ||
        !memchr(t->issuer, 0, sizeof t->issuer) ||
        !memchr(t->audience, 0, sizeof t->audience))
        return MK_EINVAL;
    mk_jwt_config jc = {
        .keys = t->keys,
        .n_keys = t->n_keys,
        .issuers = iss,
        .n_issuers = t->issuer[0] ? 1 : 0,
        .audiences = aud,
        .n_audiences = t->audience[0] ? 1 : 0,
        /* A membership that never ends could never be taken back. */
        .allow_non_expiring = false,
        .max_lifetime_s = t->max_lifetime_s,
    };
    return mk_jwt_validator_init(v, &jc, NULL);
}

int mk__proof_validator(const mk__proof *p, struct mk_ticket_validator *v)
{
    return mk_group_tickets_validator(&p->policy, v);
}

int mk__group_fold_tickets(const mk__proof *p, const mk_id *policy,
                           mk_id *out)
{
    size_t n = p->n;
    if (n == 0 || n > MK__MAX_VOTERS)
        return MK_EINVAL;
    mk_peer_id sorted[MK__MAX_VOTERS];
    memcpy(sorted, p->voters, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, by_bytes);
    for (size_t i = 1; i < n; i++)
        if (mk_id_eq(&sorted[i - 1], &sorted[i]))
            return MK_EINVAL;
    uint8_t label[7 + 4 + MK_ID_LEN + 4 + MK__MAX_VOTERS * MK_ID_LEN];
    size_t at = 0;
    memcpy(label, "tickets", 7);
    at = 7;
    for (int i = 0; i < 4; i++)
        label[at++] = (uint8_t)(p->max_voters >> (8 * i));
    memcpy(label + at, policy->b, MK_ID_LEN);
    at += MK_ID_LEN;
    for (int i = 0; i < 4; i++)
        label[at++] = (uint8_t)(n >> (8 * i));
    for (size_t i = 0; i < n; i++, at += MK_ID_LEN)
        memcpy(label + at, sorted[i].b, MK_ID_LEN);
    mk_id_derive(out, &p->base, label, at);
    return 0;
}

int mk__proof_check_member(const mk__proof *p, const mk_id *gid,
                           mk_node *node, const mk_peer_id *member)
{
    if (!p->tickets)
        return mk__proof_check(p, gid, member);
    struct mk_ticket_validator v;
    int rc = mk__proof_validator(p, &v);
    if (rc != 0)
        return rc == MK_ENOMEM ? rc : MK_ENOT_ALLOWED;
    mk_id folded;
    mk_peer_info info;
    if (mk__group_fold_tickets(p, &v.signature, &folded) != 0 ||
        !mk_id_eq(&folded, gid) || !mk_node_peer(node, member, &info))
        rc = MK_ENOT_ALLOWED;
    else
        rc = mk_ticket_validate(&v, info.entry->tickets,
                                info.entry->n_tickets, member, mk_now_ms(),
                                NULL, NULL);
    mk_ticket_validator_free(&v);
    if (rc != 0 && rc != MK_ENOMEM)
        rc = MK_ENOT_ALLOWED;
    return rc;
}

int mk__proof_decode(mk_reader *r, mk__proof *p)
{
    p->tickets = false;
    mk_get_id(r, &p->base);
    uint64_t n = mk_get_varint(r);
    if (r->err || n == 0 || n > MK__MAX_VOTERS)
        return MK_EDECODE;
    p->n = (size_t)n;
    for (size_t i = 0; i < p->n; i++) {
        mk_get_id(r, &p->voters[i]);
        if (i && memcmp(p->voters[i - 1].b, p->voters[i].b, MK_ID_LEN) >= 0)
            return MK_EDECODE;
    }
    /* The proof ends its frame: more bytes are a ticket policy. */
    if (r->err || r->at == r->len)
        return r->err ? MK_EDECODE : 0;
    if (mk_get_u8(r) != 1)
        return MK_EDECODE;
    p->tickets = true;
    uint64_t mv = mk_get_varint(r);
    uint64_t nk = mk_get_varint(r);
    if (r->err || mv == 0 || mv > 63 || nk == 0 || nk > MK_GROUP_TICKET_KEYS)
        return MK_EDECODE;
    p->max_voters = (uint32_t)mv;
    p->policy.n_keys = (size_t)nk;
    for (size_t i = 0; i < p->policy.n_keys; i++)
        mk_get_id(r, &p->policy.keys[i]);
    char *strs[2] = {p->policy.issuer, p->policy.audience};
    for (int i = 0; i < 2; i++) {
        size_t len;
        const uint8_t *s = mk_get_bytes(r, &len, MK_GROUP_TICKET_STR);
        if (!s || memchr(s, 0, len))
            return MK_EDECODE;
        memcpy(strs[i], s, len);
        strs[i][len] = '\0';
    }
    uint64_t life = mk_get_varint(r);
    if (r->err || life > UINT32_MAX)
        return MK_EDECODE;
    p->policy.max_lifetime_s = (uint32_t)life;
    return 0;
}

int mk__proof_check(const mk__proof *p, const mk_id *gid,
                    const mk_peer_id *member)
{
    mk_id folded;
    if (mk__group_fold_voters(&p->base, p->voters, p->n, &folded) != 0 ||
        !mk_id_eq(&folded, gid))
        return MK_ENOT_ALLOWED;
    for (size_t i = 0; i < p->n; i++)
        if (mk_id_eq(&p->voters[i], member))
            return 0;
    return MK_ENOT_ALLOWED;
}
