/* Coalition identity (include/coalition/identity.h, SPEC §2).
 *
 * Every fingerprint is one streamed BLAKE3 over plain concatenation, in the
 * order SPEC §2 gives; ids are folded as their 32 raw bytes, strings as
 * their UTF-8 bytes with no length or terminator, integers little-endian.
 * The coalition folds citizens by stable id only, so a citizen's content
 * rotation never moves coalition_id; confluences choose per reference.
 */
#include "coalition/identity.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "identity_check.h"
#include "mosaik/blake3.h"
#include "mosaik/codec.h"

static const char *const MODULE_NAMES[CO_MODULE_COUNT] = {
    "atlas", "almanac", "chronicle", "compute"};

static const uint8_t V = CO_SCHEMA_VERSION;

static void put_u32le(uint8_t b[4], uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static void hash_str(mk_blake3_hasher *h, const char *s)
{
    mk_blake3_update(h, s, strlen(s));
}

static void hash_id(mk_blake3_hasher *h, const mk_id *id)
{
    mk_blake3_update(h, id->b, MK_ID_LEN);
}

static void hash_end(const mk_blake3_hasher *h, mk_id *out)
{
    mk_blake3_final(h, out->b, MK_ID_LEN);
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

const char *co_module_name(co_module_kind kind)
{
    if ((int)kind < 0 || kind >= CO_MODULE_COUNT)
        return NULL;
    return MODULE_NAMES[kind];
}

int co_module_kind_of(const char *name)
{
    for (int k = 0; name && k < CO_MODULE_COUNT; k++)
        if (strcmp(name, MODULE_NAMES[k]) == 0)
            return k;
    return -1;
}

/* ---- citizens ---------------------------------------------------------- */

int co_lattice_stable_id(const co_lattice_config *l, mk_id *out, char *err)
{
    if (empty(l->name))
        return mk_errf(err, CO_ECONFIG, "lattice has no name");
    if (l->stable_id) {
        if (l->chain_id != 0)
            return mk_errf(err, CO_ECONFIG,
                           "lattice \"%s\" gives both chain_id and "
                           "stable_id",
                           l->name);
        mk_id_from_str(out, l->stable_id);
        return 0;
    }
    /* blake3("builder|" ‖ name ‖ "|chain=" ‖ u64le(chain_id)) */
    uint8_t chain[8];
    mk_blake3_hasher h;
    mk_store_le64(chain, l->chain_id);
    mk_blake3_init(&h);
    hash_str(&h, "builder|");
    hash_str(&h, l->name);
    hash_str(&h, "|chain=");
    mk_blake3_update(&h, chain, sizeof chain);
    hash_end(&h, out);
    return 0;
}

int co_lattice_content_hash(const co_lattice_config *l, mk_id *out, char *err)
{
    const co_lattice_organisms *o = &l->organisms;
    const char *fp[6] = {o->zipnet, o->unseal,  o->offer,
                         o->atelier, o->relay, o->tally};
    int given = 0;
    for (int i = 0; i < 6; i++)
        given += fp[i] != NULL;
    if (given == 0)
        return 0;
    if (given != 6)
        return mk_errf(err, CO_ECONFIG,
                       "lattice \"%s\" gives %d of the six organism "
                       "fingerprints; give all six or none",
                       l->name ? l->name : "", given);
    mk_id stable;
    int rc = co_lattice_stable_id(l, &stable, err);
    if (rc < 0)
        return rc;
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    hash_id(&h, &stable);
    for (int i = 0; i < 6; i++) {
        mk_id id;
        mk_id_from_str(&id, fp[i]);
        hash_id(&h, &id);
    }
    hash_end(&h, out);
    return 1;
}

int co_organism_stable_id(const co_organism_ref *o, mk_id *out, char *err)
{
    if (o->stable_id) {
        if (o->instance || o->network)
            return mk_errf(err, CO_ECONFIG,
                           "organism gives stable_id together with "
                           "instance/network; give one or the other");
        mk_id_from_str(out, o->stable_id);
        return 0;
    }
    if (empty(o->instance))
        return mk_errf(err, CO_ECONFIG,
                       "organism has neither instance nor stable_id");
    /* blake3("instance|" ‖ instance ‖ "|" ‖ network_id) */
    mk_id net = MK_UNIVERSE;
    if (o->network)
        mk_id_from_str(&net, o->network);
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    hash_str(&h, "instance|");
    hash_str(&h, o->instance);
    hash_str(&h, "|");
    hash_id(&h, &net);
    hash_end(&h, out);
    return 0;
}

int co_organism_content_hash(const co_organism_ref *o, mk_id *out)
{
    if (!o->content_hash)
        return 0;
    mk_id_from_str(out, o->content_hash);
    return 1;
}

void co_citizen_id_of(const mk_id *stable_id, co_citizen_id *out)
{
    memcpy(out->b, stable_id->b, CO_CITIZEN_ID_LEN);
}

static void fold_pinned(const mk_id *stable, const mk_id *content,
                        mk_id *out)
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    hash_id(&h, stable);
    hash_id(&h, content);
    hash_end(&h, out);
}

int co_citizen_ref_fold(const co_citizen_ref *r, mk_id *out, char *err)
{
    int targets = (r->lattice != NULL) + (r->organism != NULL) +
                  (r->stable_id != NULL);
    if (targets != 1)
        return mk_errf(err, CO_ECONFIG,
                       "a reference names exactly one of lattice, "
                       "organism or stable_id (this one names %d)",
                       targets);
    mk_id stable, content;
    int rc, has_content;
    if (r->stable_id) {
        if (r->pin)
            return mk_errf(err, CO_ECONFIG,
                           "a direct reference is pinned by giving "
                           "content_hash, not pin");
        mk_id_from_str(&stable, r->stable_id);
        if (!r->content_hash) {
            *out = stable;
            return 0;
        }
        mk_id_from_str(&content, r->content_hash);
        fold_pinned(&stable, &content, out);
        return 0;
    }
    if (r->content_hash)
        return mk_errf(err, CO_ECONFIG,
                       "a reference to a declared citizen pins with pin, "
                       "not content_hash");
    if (r->lattice) {
        if ((rc = co_lattice_stable_id(r->lattice, &stable, err)) < 0)
            return rc;
        has_content = co_lattice_content_hash(r->lattice, &content, err);
    } else {
        if ((rc = co_organism_stable_id(r->organism, &stable, err)) < 0)
            return rc;
        has_content = co_organism_content_hash(r->organism, &content);
    }
    if (has_content < 0)
        return has_content;
    if (!r->pin) {
        *out = stable;
        return 0;
    }
    if (!has_content)
        return mk_errf(err, CO_ECONFIG,
                       "reference pins a citizen that has no content "
                       "hash");
    fold_pinned(&stable, &content, out);
    return 0;
}

/* ---- ACL, issuer, confluence ------------------------------------------- */

/* The ticket-gated form appends, after the lists (whose counts fix where
 * the plain form ends, so no plain preimage is a prefix of another):
 *   "tickets|" ‖ u8 source ‖ [source 1: root ‖ u32le(k) ‖ keys…] ‖
 *   u32le(max_lifetime_s) ‖ u32le(len(audience)) ‖ audience
 * source 0 is the coalition's own issuer (its root and keys are folded
 * into COALITION_ROOT by issuer_fp), 1 another issuer. */
static int hash_acl_tickets(mk_blake3_hasher *h, const co_acl_tickets *t,
                            char *err)
{
    uint8_t n[4];
    bool own = t->issuer && strcmp(t->issuer, CO_ACL_TICKETS_COALITION) == 0;
    uint8_t source = own ? 0 : 1;
    if (empty(t->issuer))
        return mk_errf(err, CO_ECONFIG, "acl tickets name no issuer");
    if (own && t->n_keys)
        return mk_errf(err, CO_ECONFIG,
                       "acl tickets from the coalition's issuer take its "
                       "keys; list none");
    if (!own && (t->n_keys == 0 || t->n_keys > CO_ACL_TICKET_KEYS))
        return mk_errf(err, CO_ECONFIG,
                       "acl tickets from issuer \"%s\" need 1 to %d keys, "
                       "found %zu",
                       t->issuer, CO_ACL_TICKET_KEYS, t->n_keys);
    hash_str(h, "tickets|");
    mk_blake3_update(h, &source, 1);
    if (!own) {
        mk_id root;
        mk_id_from_str(&root, t->issuer);
        hash_id(h, &root);
        put_u32le(n, (uint32_t)t->n_keys);
        mk_blake3_update(h, n, 4);
        for (size_t i = 0; i < t->n_keys; i++) {
            mk_id k;
            const char *hex = t->keys ? t->keys[i] : NULL;
            if (!hex || mk_id_from_hex(&k, hex, strlen(hex)) != 0)
                return mk_errf(err, CO_ECONFIG,
                               "acl tickets key %zu is not an Ed25519 "
                               "public key (64 hex)",
                               i);
            hash_id(h, &k);
        }
    }
    put_u32le(n, t->max_lifetime_s);
    mk_blake3_update(h, n, 4);
    const char *aud = t->audience ? t->audience : "";
    put_u32le(n, (uint32_t)strlen(aud));
    mk_blake3_update(h, n, 4);
    hash_str(h, aud);
    return 0;
}

int co_acl_fingerprint(const co_acl *acl, mk_id *out, char *err)
{
    /* blake3("acl|" ‖ V ‖ u32le(n) ‖ issuers… ‖ u32le(m) ‖ mrtds…
     *        [‖ the ticket-gated form, hash_acl_tickets]) */
    int rc;
    uint8_t n[4];
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    hash_str(&h, "acl|");
    mk_blake3_update(&h, &V, 1);
    put_u32le(n, (uint32_t)acl->n_issuers);
    mk_blake3_update(&h, n, 4);
    for (size_t i = 0; i < acl->n_issuers; i++) {
        mk_id id;
        if (!acl->issuers[i])
            return mk_errf(err, CO_ECONFIG, "acl issuer %zu is missing", i);
        mk_id_from_str(&id, acl->issuers[i]);
        hash_id(&h, &id);
    }
    put_u32le(n, (uint32_t)acl->n_mrtds);
    mk_blake3_update(&h, n, 4);
    for (size_t i = 0; i < acl->n_mrtds; i++) {
        uint8_t mrtd[CO_MRTD_LEN];
        const char *hex = acl->mrtds[i];
        if (!hex || mk_hex_decode(mrtd, sizeof mrtd, hex, strlen(hex)) != 0)
            return mk_errf(err, CO_ECONFIG,
                           "acl mrtd %zu is not %d hex characters", i,
                           2 * CO_MRTD_LEN);
        mk_blake3_update(&h, mrtd, sizeof mrtd);
    }
    if (acl->tickets && (rc = hash_acl_tickets(&h, acl->tickets, err)) < 0)
        return rc;
    hash_end(&h, out);
    return 0;
}

int co_ticket_issuer_fingerprint(const co_ticket_issuer_config *t, mk_id *out,
                                 char *err)
{
    if (empty(t->name))
        return mk_errf(err, CO_ECONFIG, "ticket issuer has no name");
    mk_id acl;
    int rc = co_acl_fingerprint(&t->acl, &acl, err);
    if (rc < 0)
        return rc;
    /* blake3("tickets|" ‖ V ‖ "|" ‖ name ‖ acl_fp) */
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    hash_str(&h, "tickets|");
    mk_blake3_update(&h, &V, 1);
    hash_str(&h, "|");
    hash_str(&h, t->name);
    hash_id(&h, &acl);
    hash_end(&h, out);
    return 0;
}

int co_confluence_fingerprint(const co_confluence_config *c, mk_id *out,
                              char *err)
{
    if (empty(c->name))
        return mk_errf(err, CO_ECONFIG, "confluence has no name");
    if (!c->content)
        return mk_errf(err, CO_ECONFIG, "confluence \"%s\" has no content",
                       c->name);
    mk_id acl, content, ref;
    int rc = co_acl_fingerprint(&c->acl, &acl, err);
    if (rc < 0)
        return rc;
    mk_id_from_str(&content, c->content);

    /* blake3("confluence|" ‖ V ‖ "|" ‖ name ‖ lattice refs… ‖ organism
     *        refs… ‖ content ‖ acl_fp) */
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    hash_str(&h, "confluence|");
    mk_blake3_update(&h, &V, 1);
    hash_str(&h, "|");
    hash_str(&h, c->name);
    for (size_t i = 0; i < c->n_lattices; i++) {
        if ((rc = co_citizen_ref_fold(&c->lattices[i], &ref, err)) < 0)
            return rc;
        hash_id(&h, &ref);
    }
    for (size_t i = 0; i < c->n_organisms; i++) {
        if ((rc = co_citizen_ref_fold(&c->organisms[i], &ref, err)) < 0)
            return rc;
        hash_id(&h, &ref);
    }
    hash_id(&h, &content);
    hash_id(&h, &acl);
    hash_end(&h, out);
    return 0;
}

void co_committee_id(const mk_id *root, mk_id *out)
{
    mk_id_derive_str(out, root, "committee");
}

void co_surface_id(const mk_id *root, const char *surface, mk_id *out)
{
    mk_id_derive_str(out, root, surface);
}

int co_confluence_committee(const co_confluence_config *c, mk_id *out,
                            char *err)
{
    mk_id fp;
    int rc = co_confluence_fingerprint(c, &fp, err);
    if (rc < 0)
        return rc;
    co_committee_id(&fp, out);
    return 0;
}

/* ---- coalition --------------------------------------------------------- */

void co_coalition_seed(const co_coalition_config *c, mk_id *out)
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    hash_str(&h, "coalition|");
    mk_blake3_update(&h, &V, 1);
    hash_str(&h, "|");
    if (c->name)
        hash_str(&h, c->name);
    hash_end(&h, out);
}

int co_coalition_id(const co_coalition_config *c, mk_id *out, char *err)
{
    if (empty(c->name))
        return mk_errf(err, CO_ECONFIG, "coalition has no name");
    mk_id seed, id;
    int rc;
    co_coalition_seed(c, &seed);

    /* blake3(COALITION ‖ lattice stable ids… ‖ organism stable ids… ‖
     *        confluence fingerprints… ‖ issuer_fp?) */
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    hash_id(&h, &seed);
    for (size_t i = 0; i < c->n_lattices; i++) {
        if ((rc = co_lattice_stable_id(c->lattices[i], &id, err)) < 0)
            return rc;
        hash_id(&h, &id);
    }
    for (size_t i = 0; i < c->n_organisms; i++) {
        if ((rc = co_organism_stable_id(c->organisms[i], &id, err)) < 0)
            return rc;
        hash_id(&h, &id);
    }
    for (size_t i = 0; i < c->n_confluences; i++) {
        rc = co_confluence_fingerprint(c->confluences[i], &id, err);
        if (rc < 0)
            return rc;
        hash_id(&h, &id);
    }
    if (c->ticket_issuer) {
        rc = co_ticket_issuer_fingerprint(c->ticket_issuer, &id, err);
        if (rc < 0)
            return rc;
        hash_id(&h, &id);
    }
    hash_end(&h, out);
    return 0;
}

const co_confluence_config *co_coalition_module(const co_coalition_config *c,
                                                co_module_kind kind)
{
    const char *name = co_module_name(kind);
    for (size_t i = 0; name && i < c->n_confluences; i++)
        if (c->confluences[i]->name &&
            strcmp(c->confluences[i]->name, name) == 0)
            return c->confluences[i];
    return NULL;
}

const co_confluence_config *co_coalition_atlas(const co_coalition_config *c)
{
    return co_coalition_module(c, CO_MODULE_ATLAS);
}

const co_confluence_config *co_coalition_almanac(const co_coalition_config *c)
{
    return co_coalition_module(c, CO_MODULE_ALMANAC);
}

const co_confluence_config *
co_coalition_chronicle(const co_coalition_config *c)
{
    return co_coalition_module(c, CO_MODULE_CHRONICLE);
}

const co_confluence_config *co_coalition_compute(const co_coalition_config *c)
{
    return co_coalition_module(c, CO_MODULE_COMPUTE);
}

int co_module_root(const co_coalition_config *c, co_module_kind kind,
                   mk_id *out, char *err)
{
    if (!co_coalition_module(c, kind)) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "coalition ships no %s module",
                     co_module_name(kind) ? co_module_name(kind) : "such");
        return CO_ENOTSHIPPED;
    }
    mk_id root;
    int rc = co_coalition_id(c, &root, err);
    if (rc < 0)
        return rc;
    mk_id_derive_str(out, &root, "module");
    mk_id_derive_str(out, out, co_module_name(kind));
    return 0;
}

int co_tickets_root(const co_coalition_config *c, mk_id *out, char *err)
{
    if (!c->ticket_issuer) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "coalition has no ticket issuer");
        return CO_ENOTSHIPPED;
    }
    mk_id root;
    int rc = co_coalition_id(c, &root, err);
    if (rc < 0)
        return rc;
    mk_id_derive_str(out, &root, "tickets");
    return 0;
}
