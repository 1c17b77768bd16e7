/* Validation of a coalition config (co_coalition_validate).
 *
 * The derivations in identity.c refuse what they cannot fold; this adds
 * the rules that keep a published config unambiguous: one citizen per
 * stable id and per name, one confluence per fingerprint and per name, at
 * most one module of each kind. Every problem is reported with the key path
 * it sits at, which the JSON loader turns into a line number.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/identity.h"
#include "identity_check.h"

static int bad(co__diag *d, const char *what, const char *pathfmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(co__diag *d, const char *what, const char *pathfmt, ...)
{
    va_list ap;
    va_start(ap, pathfmt);
    vsnprintf(d->path, sizeof d->path, pathfmt, ap);
    va_end(ap);
    snprintf(d->what, sizeof d->what, "%s", what);
    return CO_ECONFIG;
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* The ticket-gated form (co_acl_tickets): what identity.c folds, and
 * what a JWT validator can be built from (an audience with ',' cannot). */
static int check_tickets(const co_acl_tickets *t, co__diag *d,
                         const char *prefix)
{
    char what[CO_ERRMSG_SIZE];
    bool own = t->issuer && strcmp(t->issuer, CO_ACL_TICKETS_COALITION) == 0;
    if (empty(t->issuer))
        return bad(d, "missing field: ticket-gated admission names an "
                      "issuer (\"" CO_ACL_TICKETS_COALITION "\" or a root)",
                   "%s.tickets.issuer", prefix);
    if (own && t->n_keys)
        return bad(d, "the coalition's issuer signs with its own "
                      "ticket_issuer.acl.issuers: give no keys",
                   "%s.tickets.keys", prefix);
    if (!own && (t->n_keys == 0 || t->n_keys > CO_ACL_TICKET_KEYS)) {
        snprintf(what, sizeof what,
                 "another issuer needs its 1 to %d signing keys, found %zu",
                 CO_ACL_TICKET_KEYS, t->n_keys);
        return bad(d, what, "%s.tickets.keys", prefix);
    }
    for (size_t i = 0; i < t->n_keys; i++) {
        mk_id k;
        const char *hex = t->keys ? t->keys[i] : NULL;
        if (!hex || mk_id_from_hex(&k, hex, strlen(hex)) != 0)
            return bad(d, "not an Ed25519 public key (64 hex)",
                       "%s.tickets.keys[%zu]", prefix, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->keys[j], hex) == 0)
                return bad(d, "repeats a key", "%s.tickets.keys[%zu]",
                           prefix, i);
    }
    if (t->audience && (!t->audience[0] || strchr(t->audience, ',') ||
                        strlen(t->audience) > 255))
        return bad(d, "an audience is 1 to 255 bytes without ','",
                   "%s.tickets.audience", prefix);
    return 0;
}

static int check_acl(const co_acl *acl, co__diag *d, const char *prefix)
{
    char what[CO_ERRMSG_SIZE];
    if (acl->n_issuers && !acl->issuers)
        return bad(d, "issuers list is missing", "%s.issuers", prefix);
    if (acl->n_mrtds && !acl->mrtds)
        return bad(d, "mrtds list is missing", "%s.mrtds", prefix);
    for (size_t i = 0; i < acl->n_issuers; i++)
        if (!acl->issuers[i])
            return bad(d, "issuer is missing", "%s.issuers[%zu]", prefix, i);
    for (size_t i = 0; i < acl->n_mrtds; i++) {
        uint8_t mrtd[CO_MRTD_LEN];
        const char *hex = acl->mrtds[i];
        if (!hex || mk_hex_decode(mrtd, sizeof mrtd, hex, strlen(hex)) != 0) {
            snprintf(what, sizeof what,
                     "bad hex: an MR_TD is exactly %d hex characters "
                     "(48 bytes)",
                     2 * CO_MRTD_LEN);
            return bad(d, what, "%s.mrtds[%zu]", prefix, i);
        }
    }
    return acl->tickets ? check_tickets(acl->tickets, d, prefix) : 0;
}

static int check_ref(const co_citizen_ref *r, co__diag *d, size_t ci,
                     const char *list, size_t ri)
{
    char err[CO_ERRMSG_SIZE];
    mk_id out;
    bool wrong_kind = (strcmp(list, "lattices") == 0) ? r->organism != NULL
                                                      : r->lattice != NULL;
    if (wrong_kind)
        return bad(d,
                   strcmp(list, "lattices") == 0
                       ? "an organism cannot be referenced as a lattice"
                       : "a lattice cannot be referenced as an organism",
                   "confluences[%zu].%s[%zu]", ci, list, ri);
    if (co_citizen_ref_fold(r, &out, err) < 0)
        return bad(d, err, "confluences[%zu].%s[%zu]", ci, list, ri);
    return 0;
}

static int check_confluence(const co_confluence_config *c, co__diag *d,
                            size_t i)
{
    char prefix[64], err[CO_ERRMSG_SIZE];
    int rc;
    if (empty(c->name))
        return bad(d, "missing field: a confluence needs a non-empty name",
                   "confluences[%zu].name", i);
    if (!c->content)
        return bad(d, "missing field: a confluence needs content",
                   "confluences[%zu].content", i);
    if ((c->n_lattices && !c->lattices) || (c->n_organisms && !c->organisms))
        return bad(d, "reference list is missing", "confluences[%zu]", i);
    for (size_t r = 0; r < c->n_lattices; r++)
        if ((rc = check_ref(&c->lattices[r], d, i, "lattices", r)) < 0)
            return rc;
    for (size_t r = 0; r < c->n_organisms; r++)
        if ((rc = check_ref(&c->organisms[r], d, i, "organisms", r)) < 0)
            return rc;
    snprintf(prefix, sizeof prefix, "confluences[%zu].acl", i);
    if ((rc = check_acl(&c->acl, d, prefix)) < 0)
        return rc;
    mk_id fp;
    if (co_confluence_fingerprint(c, &fp, err) < 0)
        return bad(d, err, "confluences[%zu]", i);
    return 0;
}

typedef struct seen {
    mk_id id;
    const char *name;
    const char *path;
} seen;

int co__coalition_check(const co_coalition_config *c, co__diag *d)
{
    char err[CO_ERRMSG_SIZE], what[CO_ERRMSG_SIZE];
    int rc = 0;
    memset(d, 0, sizeof *d);
    if (empty(c->name))
        return bad(d, "missing field: the coalition needs a non-empty name",
                   "name");
    if ((c->n_lattices && !c->lattices) ||
        (c->n_organisms && !c->organisms) ||
        (c->n_confluences && !c->confluences))
        return bad(d, "a list is missing its items", "%s", "");

    size_t n_cit = c->n_lattices + c->n_organisms;
    seen *cit = calloc(n_cit ? n_cit : 1, sizeof *cit);
    seen *conf = calloc(c->n_confluences ? c->n_confluences : 1,
                        sizeof *conf);
    if (!cit || !conf) {
        free(cit);
        free(conf);
        return bad(d, "out of memory", "%s", "");
    }

    for (size_t i = 0; i < c->n_lattices && rc == 0; i++) {
        const co_lattice_config *l = c->lattices[i];
        mk_id content;
        if (!l) {
            rc = bad(d, "lattice is missing", "lattices[%zu]", i);
        } else if (empty(l->name)) {
            rc = bad(d, "missing field: a lattice needs a non-empty name",
                     "lattices[%zu].name", i);
        } else if (co_lattice_stable_id(l, &cit[i].id, err) < 0) {
            rc = bad(d, err, "lattices[%zu]", i);
        } else if (co_lattice_content_hash(l, &content, err) < 0) {
            rc = bad(d, err, "lattices[%zu].fingerprints", i);
        } else {
            cit[i].name = l->name;
        }
    }
    for (size_t i = 0; i < c->n_organisms && rc == 0; i++) {
        const co_organism_ref *o = c->organisms[i];
        seen *s = &cit[c->n_lattices + i];
        if (!o) {
            rc = bad(d, "organism is missing", "organisms[%zu]", i);
        } else if (empty(o->role)) {
            rc = bad(d, "missing field: an organism needs a non-empty role",
                     "organisms[%zu].role", i);
        } else if (o->instance && o->instance[0] == '\0') {
            rc = bad(d, "instance must not be empty",
                     "organisms[%zu].instance", i);
        } else if (co_organism_stable_id(o, &s->id, err) < 0) {
            rc = bad(d, err, "organisms[%zu]", i);
        } else {
            s->name = o->instance;
        }
    }
    /* One citizen per stable id and per name: a name is how confluences in
     * the same file refer to a citizen, so it must pick exactly one. */
    for (size_t i = 0; i < n_cit && rc == 0; i++) {
        for (size_t j = 0; j < i && rc == 0; j++) {
            bool same_id = mk_id_eq(&cit[i].id, &cit[j].id);
            bool same_name = cit[i].name && cit[j].name &&
                             strcmp(cit[i].name, cit[j].name) == 0 &&
                             (i < c->n_lattices) == (j < c->n_lattices);
            if (!same_id && !same_name)
                continue;
            char hex[MK_ID_HEX_LEN + 1];
            if (same_name)
                snprintf(what, sizeof what,
                         "duplicate citizen: \"%s\" is declared twice",
                         cit[i].name);
            else
                snprintf(what, sizeof what,
                         "duplicate citizen: stable id %s is declared twice",
                         mk_id_hex(&cit[i].id, hex));
            if (i < c->n_lattices)
                rc = bad(d, what, "lattices[%zu]", i);
            else
                rc = bad(d, what, "organisms[%zu]", i - c->n_lattices);
        }
    }

    int module_at[CO_MODULE_COUNT] = {-1, -1, -1, -1};
    for (size_t i = 0; i < c->n_confluences && rc == 0; i++) {
        const co_confluence_config *cf = c->confluences[i];
        if (!cf) {
            rc = bad(d, "confluence is missing", "confluences[%zu]", i);
            break;
        }
        if ((rc = check_confluence(cf, d, i)) < 0)
            break;
        if (cf->acl.tickets && !c->ticket_issuer &&
            strcmp(cf->acl.tickets->issuer, CO_ACL_TICKETS_COALITION) == 0) {
            rc = bad(d, "tickets from the coalition's issuer, but the "
                        "coalition has no ticket_issuer",
                     "confluences[%zu].acl.tickets.issuer", i);
            break;
        }
        co_confluence_fingerprint(cf, &conf[i].id, NULL);
        conf[i].name = cf->name;
        int kind = co_module_kind_of(cf->name);
        if (kind >= 0) {
            if (module_at[kind] >= 0) {
                snprintf(what, sizeof what,
                         "two modules of one kind: \"%s\" is already "
                         "confluences[%d]",
                         cf->name, module_at[kind]);
                rc = bad(d, what, "confluences[%zu].name", i);
                break;
            }
            module_at[kind] = (int)i;
        }
        for (size_t j = 0; j < i && rc == 0; j++) {
            if (mk_id_eq(&conf[i].id, &conf[j].id))
                snprintf(what, sizeof what,
                         "duplicate confluence: same fingerprint as "
                         "confluences[%zu]",
                         j);
            else if (strcmp(conf[i].name, conf[j].name) == 0)
                snprintf(what, sizeof what,
                         "duplicate confluence: \"%s\" is already "
                         "confluences[%zu]",
                         cf->name, j);
            else
                continue;
            rc = bad(d, what, "confluences[%zu]", i);
        }
    }

    if (rc == 0 && c->ticket_issuer) {
        const co_ticket_issuer_config *t = c->ticket_issuer;
        if (empty(t->name))
            rc = bad(d, "missing field: the ticket issuer needs a non-empty "
                        "name",
                     "ticket_issuer.name");
        else if (t->acl.tickets)
            rc = bad(d, "a ticket issuer's signers are keys, not tickets",
                     "ticket_issuer.acl.tickets");
        else
            rc = check_acl(&t->acl, d, "ticket_issuer.acl");
    }
    free(cit);
    free(conf);
    return rc;
}

void co__diag_format(const co__diag *d, char *err)
{
    if (!err)
        return;
    if (d->path[0])
        snprintf(err, CO_ERRMSG_SIZE, "%s: %s", d->path, d->what);
    else
        snprintf(err, CO_ERRMSG_SIZE, "%s", d->what);
}

int co_coalition_validate(const co_coalition_config *c, char *err)
{
    co__diag d;
    int rc = co__coalition_check(c, &d);
    if (rc < 0)
        co__diag_format(&d, err);
    return rc;
}
