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
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/group_internal.h"

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
}

int mk__proof_decode(mk_reader *r, mk__proof *p)
{
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
    return r->err ? MK_EDECODE : 0;
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
