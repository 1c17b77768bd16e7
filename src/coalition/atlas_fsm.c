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
/* `replaced` gets the hash of the card this one takes the place of, when
 * there was one (the Chronicle records what a card replaced). */
static co__atlas_item *put_card(atlas *a, co_card *card, bool *changed,
                                mk_id *replaced, bool *had)
{
    *had = false;
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
        *replaced = it->card.hash;
        *had = true;
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

/* A command, decoded (the card is owned while kind is PUBLISH). */
typedef struct atlas_cmd {
    uint8_t kind;
    co_card card;         /* PUBLISH */
    co_citizen_id key;    /* SIGN */
    mk_id hash;           /* SIGN: the card version signed */
    co_member_sig s;      /* PUBLISH, SIGN */
    co_retirement retire; /* RETIRE */
} atlas_cmd;

static void cmd_free(atlas_cmd *c)
{
    if (c->kind == CO__ATLAS_PUBLISH)
        co_card_free(&c->card);
}

/* Decodes a whole command and checks what needs no state
 * (module_fsm.h). A SIGN's signature covers the card bytes the state
 * holds, so for SIGN only the signer's membership is checked here. */
static int atlas_check(const atlas *a, const mk_id *module_sig,
                       const uint8_t *cmd, size_t len, atlas_cmd *out)
{
    memset(out, 0, sizeof *out);
    mk_reader r;
    mk_reader_init(&r, cmd, len);
    uint8_t kind = mk_get_u8(&r);
    if (kind == CO__CMD_RETIRE) {
        out->kind = kind;
        return co__retire_check(&r, &a->m, NULL, module_sig, &out->retire);
    }
    if (kind != CO__ATLAS_PUBLISH && kind != CO__ATLAS_SIGN)
        return MK_EDECODE;
    size_t clen = 0;
    const uint8_t *bytes = NULL, *k = NULL;
    if (kind == CO__ATLAS_PUBLISH) {
        bytes = mk_get_bytes(&r, &clen, CO__CARD_MAX_BYTES);
    } else {
        k = mk_get_raw(&r, CO_CITIZEN_ID_LEN);
        mk_get_id(&r, &out->hash);
    }
    mk_get_id(&r, &out->s.member);
    const uint8_t *sig = mk_get_raw(&r, MK_SIG_LEN);
    if ((kind == CO__ATLAS_PUBLISH ? !bytes : !k) || !sig ||
        mk_reader_done(&r) != 0)
        return MK_EDECODE;
    memcpy(out->s.sig, sig, MK_SIG_LEN);
    /* Only committee members put cards in the directory or sign them. */
    if (!co_module_is_member(&a->m, &out->s.member))
        return MK_ENOT_ALLOWED;
    if (kind == CO__ATLAS_SIGN) {
        memcpy(out->key.b, k, sizeof out->key.b);
        out->kind = kind;
        return 0;
    }
    int rc = co_card_verify(&out->s.member, bytes, clen, out->s.sig);
    if (rc == MK_ENOMEM)
        return rc;
    if (rc != 0)
        return MK_EBAD_SIGNATURE;
    rc = co_card_decode(&out->card, bytes, clen);
    if (rc == 0)
        out->kind = kind; /* from here on the card is owned */
    return rc;
}

static int atlas_admit(struct mk_fsm *fsm, const uint8_t *cmd, size_t len)
{
    atlas_cmd c;
    int rc = atlas_check(fsm->data, &fsm->signature, cmd, len, &c);
    cmd_free(&c);
    return rc;
}

static int apply_publish(atlas *a, atlas_cmd *c, mk_buf *result)
{
    if (a->ret.retired) {
        mk_put_u8(result, 0);
        return 0;
    }
    bool changed, had;
    mk_id hash = c->card.hash, replaced;
    co__atlas_item *it = put_card(a, &c->card, &changed, &replaced, &had);
    if (!it)
        return MK_ENOMEM; /* the card is still the command's */
    c->kind = 0;          /* put_card took it (or freed a duplicate) */
    if (changed) {
        int rc = co__sigs_add(&it->sigs, &it->n_sigs, &a->m, &c->s,
                              it->card.bytes, it->card.len, verify_card);
        if (rc < 0)
            return rc;
        reverify(a, it);
    }
    mk_put_u8(result, changed ? 1 : 2);
    mk_put_id(result, &hash);
    if (changed && a->on_publish)
        a->on_publish(it, had ? &replaced : NULL, a->on_publish_data);
    return 0;
}

static int apply_sign(atlas *a, const atlas_cmd *c, mk_buf *result)
{
    bool found;
    size_t at = find_at(a, &c->key, &found);
    int added = 0;
    /* A signature for an older version of the card is stale: ignored. */
    if (found && mk_id_eq(&a->items[at].card.hash, &c->hash)) {
        co__atlas_item *it = &a->items[at];
        added = co__sigs_add(&it->sigs, &it->n_sigs, &a->m, &c->s,
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
    atlas_cmd c;
    int rc = atlas_check(a, &fsm->signature, cmd, len, &c);
    if (rc == MK_ENOMEM)
        return rc;
    if (rc < 0) {
        /* Refused alike on every replica, whatever the reason: one zero
         * byte, as for a malformed command. */
        cmd_free(&c);
        return MK_EDECODE;
    }
    switch (c.kind) {
    case CO__ATLAS_PUBLISH:
        rc = apply_publish(a, &c, result);
        break;
    case CO__ATLAS_SIGN:
        rc = apply_sign(a, &c, result);
        break;
    default:
        rc = co__retire_apply(&a->ret, &c.retire, result);
    }
    cmd_free(&c);
    return rc;
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
        bool changed, had;
        mk_id replaced;
        co__atlas_item *it = put_card(&next, &card, &changed, &replaced, &had);
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
    fsm->admit = atlas_admit;
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
