/* The Atlas state machine: the coalition's directory of citizen cards.
 *
 * Operators PUBLISH a card; each committee member then SIGNs its canonical
 * bytes, and the signature is kept only if it verifies under that
 * member's key. Verification happens inside apply() — Ed25519 verify is
 * deterministic — so every replica keeps exactly the same signatures, and
 * a reader accepts a card only with a majority of them (SPEC §4). A
 * republished card with different bytes starts with no signatures.
 *
 * Cards are keyed by citizen_id (the first 20 bytes of the stable id) and
 * kept sorted by it, so snapshots are canonical.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "module_fsm.h"

typedef struct atlas {
    co_module_info m;
    co__atlas_item *items;
    size_t n, cap;
    co_retirement ret;
    co__atlas_published_cb on_publish;
    void *on_publish_data;
} atlas;

static int verify_card(const mk_peer_id *member, const uint8_t *bytes,
                       size_t len, const uint8_t *sig)
{
    return co_card_verify(member, bytes, len, sig);
}

/* Recomputes it->verified from its signatures (see co__atlas_item). */
static void reverify(const atlas *a, co__atlas_item *it)
{
    it->verified = co_majority_signed(a->m.committee, a->m.n_committee,
                                      it->sigs, it->n_sigs, it->card.bytes,
                                      it->card.len, verify_card);
}

static size_t find_at(const atlas *a, const co_citizen_id *key, bool *found)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(a->items[mid].key.b, key->b, CO_CITIZEN_ID_LEN);
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

static void item_free(co__atlas_item *it)
{
    co_card_free(&it->card);
    free(it->sigs);
    memset(it, 0, sizeof *it);
}

static void clear(atlas *a)
{
    for (size_t i = 0; i < a->n; i++)
        item_free(&a->items[i]);
    free(a->items);
    a->items = NULL;
    a->n = a->cap = 0;
    memset(&a->ret, 0, sizeof a->ret);
}

/* Inserts or replaces the card; returns the item or NULL (MK_ENOMEM). */
static co__atlas_item *put_card(atlas *a, co_card *card, bool *changed)
{
    co_citizen_id key;
    co_citizen_id_of(&card->card.citizen_id, &key);
    bool found;
    size_t at = find_at(a, &key, &found);
    if (found) {
        co__atlas_item *it = &a->items[at];
        if (mk_id_eq(&it->card.hash, &card->hash)) {
            co_card_free(card);
            *changed = false;
            return it;
        }
        item_free(it);
        it->key = key;
        it->card = *card;
        *changed = true;
        return it;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        co__atlas_item *grown = realloc(a->items, cap * sizeof *grown);
        if (!grown)
            return NULL;
        a->items = grown;
        a->cap = cap;
    }
    memmove(a->items + at + 1, a->items + at, (a->n - at) * sizeof *a->items);
    a->n++;
    co__atlas_item *it = &a->items[at];
    memset(it, 0, sizeof *it);
    it->key = key;
    it->card = *card;
    *changed = true;
    return it;
}

static int apply_publish(atlas *a, mk_reader *r, mk_buf *result)
{
    size_t len;
    const uint8_t *bytes = mk_get_bytes(r, &len, 1u << 16);
    co_member_sig s;
    mk_get_id(r, &s.member);
    const uint8_t *sig = mk_get_raw(r, MK_SIG_LEN);
    if (!bytes || !sig || mk_reader_done(r) != 0)
        return MK_EDECODE;
    memcpy(s.sig, sig, MK_SIG_LEN);
    /* Only a committee member may put a card in the directory. */
    bool member = co_module_is_member(&a->m, &s.member) &&
                  co_card_verify(&s.member, bytes, len, s.sig) == 0;
    co_card card;
    int rc = member ? co_card_decode(&card, bytes, len) : MK_EDECODE;
    if (rc == MK_ENOMEM)
        return rc;
    if (rc < 0 || a->ret.retired) {
        /* A bad card is refused, not a bug: the submitter is told. */
        if (rc == 0)
            co_card_free(&card);
        mk_put_u8(result, 0);
        return 0;
    }
    bool changed;
    mk_id hash = card.hash;
    co__atlas_item *it = put_card(a, &card, &changed);
    if (!it) {
        co_card_free(&card);
        return MK_ENOMEM;
    }
    if (changed) {
        rc = co__sigs_add(&it->sigs, &it->n_sigs, &a->m, &s, it->card.bytes,
                          it->card.len, verify_card);
        if (rc < 0)
            return rc;
        reverify(a, it);
    }
    mk_put_u8(result, changed ? 1 : 2);
    mk_put_id(result, &hash);
    if (changed && a->on_publish)
        a->on_publish(it, a->on_publish_data);
    return 0;
}

static int apply_sign(atlas *a, mk_reader *r, mk_buf *result)
{
    co_citizen_id key;
    const uint8_t *k = mk_get_raw(r, CO_CITIZEN_ID_LEN);
    mk_id hash;
    co_member_sig s;
    mk_get_id(r, &hash);
    mk_get_id(r, &s.member);
    const uint8_t *sig = mk_get_raw(r, MK_SIG_LEN);
    if (!k || !sig || mk_reader_done(r) != 0)
        return MK_EDECODE;
    memcpy(key.b, k, sizeof key.b);
    memcpy(s.sig, sig, MK_SIG_LEN);
    bool found;
    size_t at = find_at(a, &key, &found);
    int added = 0;
    /* A signature for an older version of the card is stale: ignored. */
    if (found && mk_id_eq(&a->items[at].card.hash, &hash)) {
        co__atlas_item *it = &a->items[at];
        added = co__sigs_add(&it->sigs, &it->n_sigs, &a->m, &s,
                             it->card.bytes, it->card.len, verify_card);
        if (added < 0)
            return added;
        if (added)
            reverify(a, it);
    }
    mk_put_u8(result, (uint8_t)added);
    return 0;
}

static int atlas_apply_cmd(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                       mk_buf *result)
{
    atlas *a = fsm->data;
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    switch (mk_get_u8(&r)) {
    case CO__ATLAS_PUBLISH:
        return apply_publish(a, &r, result);
    case CO__ATLAS_SIGN:
        return apply_sign(a, &r, result);
    case CO__CMD_RETIRE:
        return co__retire_apply(&r, &a->m, &fsm->signature, &a->ret,
                                result);
    default:
        return MK_EDECODE;
    }
}


static int atlas_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                       mk_buf *result)
{
    int rc = atlas_apply_cmd(fsm, cmd, len, result);
    return co__refuse_malformed(rc, result);
}

static int atlas_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    atlas *a = fsm->data;
    co__retirement_put(out, &a->ret);
    mk_put_varint(out, a->n);
    for (size_t i = 0; i < a->n; i++) {
        mk_put_bytes(out, a->items[i].card.bytes, a->items[i].card.len);
        co__sigs_put(out, a->items[i].sigs, a->items[i].n_sigs);
    }
    return out->err;
}

static int atlas_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    atlas *a = fsm->data, next;
    memset(&next, 0, sizeof next);
    next.m = a->m;
    mk_reader r;
    mk_reader_init(&r, snap, len);
    co__retirement_get(&r, &next.ret);
    size_t n = mk_get_count(&r, 1u << 24, 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0 && !r.err; i++) {
        size_t clen;
        const uint8_t *bytes = mk_get_bytes(&r, &clen, 1u << 16);
        co_card card;
        if (!bytes || (rc = co_card_decode(&card, bytes, clen)) < 0)
            break;
        bool changed;
        co__atlas_item *it = put_card(&next, &card, &changed);
        if (!it) {
            co_card_free(&card);
            rc = MK_ENOMEM;
            break;
        }
        /* Canonical snapshots hold each citizen once, in order. */
        if (!changed || it != &next.items[next.n - 1]) {
            /* Stop here: reading on would overwrite (and leak) the
             * signatures of the item a repeated citizen hit. */
            rc = MK_EDECODE;
            break;
        }
        it->sigs = co__sigs_get(&r, &it->n_sigs);
        /* A snapshot comes from whichever member fed us: its signatures
         * are verified here, never taken on trust. */
        reverify(&next, it);
    }
    if (rc == 0 && mk_reader_done(&r) != 0)
        rc = r.err == MK_ENOMEM ? MK_ENOMEM : MK_EDECODE;
    if (rc < 0) {
        clear(&next);
        return rc;
    }
    clear(a);
    a->items = next.items;
    a->n = next.n;
    a->cap = next.cap;
    a->ret = next.ret;
    return 0;
}

int co__atlas_fsm_init(struct mk_fsm *fsm, const co_module_info *m)
{
    atlas *a = calloc(1, sizeof *a);
    if (!a)
        return MK_ENOMEM;
    a->m = *m;
    memset(fsm, 0, sizeof *fsm);
    fsm->version = MK_FSM_VERSION;
    fsm->data = a;
    mk_id_from_str(&fsm->signature, CO__ATLAS_SIGNATURE);
    fsm->apply = atlas_apply;
    fsm->snapshot = atlas_snapshot;
    fsm->restore = atlas_restore;
    return 0;
}

void co__atlas_fsm_free(struct mk_fsm *fsm)
{
    atlas *a = fsm->data;
    if (!a)
        return;
    clear(a);
    free(a);
    fsm->data = NULL;
}

void co__atlas_on_publish(struct mk_fsm *fsm, co__atlas_published_cb cb,
                          void *data)
{
    atlas *a = fsm->data;
    a->on_publish = cb;
    a->on_publish_data = data;
}

size_t co__atlas_count(const struct mk_fsm *fsm)
{
    return ((const atlas *)fsm->data)->n;
}

const co__atlas_item *co__atlas_at(const struct mk_fsm *fsm, size_t i)
{
    const atlas *a = fsm->data;
    return i < a->n ? &a->items[i] : NULL;
}

const co__atlas_item *co__atlas_find(const struct mk_fsm *fsm,
                                     const co_citizen_id *key)
{
    const atlas *a = fsm->data;
    bool found;
    size_t at = find_at(a, key, &found);
    return found ? &a->items[at] : NULL;
}

const co_retirement *co__atlas_retirement(const struct mk_fsm *fsm)
{
    return &((const atlas *)fsm->data)->ret;
}

bool co__atlas_verified(const struct mk_fsm *fsm, const co__atlas_item *it)
{
    (void)fsm;
    return it->verified;
}

void co__atlas_cmd_publish(mk_buf *out, const uint8_t *card, size_t len,
                           const mk_keypair *member)
{
    uint8_t sig[MK_SIG_LEN];
    if (co_card_sign(member, card, len, sig) < 0) {
        out->err = MK_ENOMEM;
        return;
    }
    mk_put_u8(out, CO__ATLAS_PUBLISH);
    mk_put_bytes(out, card, len);
    mk_put_id(out, &member->pub);
    mk_put_raw(out, sig, MK_SIG_LEN);
}

void co__atlas_cmd_sign(mk_buf *out, const co__atlas_item *it,
                        const mk_keypair *member)
{
    uint8_t sig[MK_SIG_LEN];
    if (co_card_sign(member, it->card.bytes, it->card.len, sig) < 0) {
        out->err = MK_ENOMEM;
        return;
    }
    mk_put_u8(out, CO__ATLAS_SIGN);
    mk_put_raw(out, it->key.b, CO_CITIZEN_ID_LEN);
    mk_put_id(out, &it->card.hash);
    mk_put_id(out, &member->pub);
    mk_put_raw(out, sig, MK_SIG_LEN);
}
