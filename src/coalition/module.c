/* Module identity and committees (include/coalition/module.h). */
#include "coalition/module.h"
#include "coalition/issuer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content_param.h"

static int bad_tickets(char *err, co_module_kind kind, const char *what)
{
    return mk_errf(err, CO_ECONFIG, "module %s: acl.tickets: %s",
                   co_module_name(kind), what);
}

/* The group policy an ACL's ticket-gated form names: the issuer's keys
 * and, as iss, its root in hex (TICKETS_ROOT for the coalition's own). */
static int ticket_policy(const co_coalition_config *c, co_module_kind kind,
                         const co_acl_tickets *t, co_module_info *out,
                         char *err)
{
    mk_group_tickets *g = &out->tickets;
    mk_id root;
    char why[CO_ERRMSG_SIZE];
    if (!t->issuer || !t->issuer[0])
        return bad_tickets(err, kind, "no issuer");
    if (strcmp(t->issuer, CO_ACL_TICKETS_COALITION) == 0) {
        if (t->n_keys)
            return bad_tickets(err, kind, "the coalition's issuer takes no "
                                          "keys here");
        if (co_issuer_keys(c, &root, g->keys, &g->n_keys, why) < 0)
            return bad_tickets(err, kind, why);
    } else {
        if (t->n_keys == 0 || t->n_keys > MK_GROUP_TICKET_KEYS)
            return bad_tickets(err, kind, "another issuer needs 1 to 16 "
                                          "keys");
        for (size_t i = 0; i < t->n_keys; i++) {
            const char *s = t->keys[i];
            if (mk_id_from_hex(&g->keys[i], s, strlen(s)) != 0)
                return bad_tickets(err, kind, "a key is not 64 hex");
        }
        g->n_keys = t->n_keys;
        mk_id_from_str(&root, t->issuer);
    }
    mk_id_hex(&root, g->issuer);
    if (t->audience) {
        if (strlen(t->audience) > MK_GROUP_TICKET_STR ||
            strchr(t->audience, ','))
            return bad_tickets(err, kind, "an audience is at most 255 bytes "
                                          "without ','");
        snprintf(g->audience, sizeof g->audience, "%s", t->audience);
    }
    g->max_lifetime_s = t->max_lifetime_s;
    out->ticketed = true;
    return 0;
}

int co_module_info_get(const co_coalition_config *c, co_module_kind kind,
                       co_module_info *out, char *err)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->config = co_coalition_module(c, kind);
    int rc = co_module_root(c, kind, &out->root, err);
    if (rc < 0)
        return rc;
    co_committee_id(&out->root, &out->committee_root);
    const co_acl *acl = &out->config->acl;
    if (acl->n_issuers == 0 || acl->n_issuers > CO_MODULE_MAX_COMMITTEE) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "module %s: acl.issuers must list its 1 to %d committee "
                     "members (PeerIds), found %zu",
                     co_module_name(kind), CO_MODULE_MAX_COMMITTEE,
                     acl->n_issuers);
        return CO_ECONFIG;
    }
    for (size_t i = 0; i < acl->n_issuers; i++) {
        const char *s = acl->issuers[i];
        mk_peer_id p;
        if (mk_id_from_hex(&p, s, strlen(s)) != 0) {
            if (err)
                snprintf(err, CO_ERRMSG_SIZE,
                         "module %s: acl.issuers[%zu] \"%s\" is not a PeerId "
                         "(64 hex)",
                         co_module_name(kind), i, s);
            return CO_ECONFIG;
        }
        for (size_t j = 0; j < out->n_committee; j++)
            if (mk_id_eq(&out->committee[j], &p)) {
                if (err)
                    snprintf(err, CO_ERRMSG_SIZE,
                             "module %s: acl.issuers[%zu] repeats a member",
                             co_module_name(kind), i);
                return CO_ECONFIG;
            }
        out->committee[out->n_committee++] = p;
    }
    /* voters=N must be what the group layer takes (odd), and no more than
     * a committee can list. */
    uint64_t v;
    if (co_module_param_u64(out, "voters", UINT64_MAX, &v) < 0 ||
        (v != UINT64_MAX && (v % 2 == 0 || v > CO_MODULE_MAX_COMMITTEE))) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "module %s: content \"%s\": voters must be an odd "
                     "number from 1 to %d",
                     co_module_name(kind), out->config->content,
                     CO_MODULE_MAX_COMMITTEE);
        return CO_ECONFIG;
    }
    return acl->tickets ? ticket_policy(c, kind, acl->tickets, out, err) : 0;
}

int co_module_param_u64(const co_module_info *m, const char *key,
                        uint64_t dflt, uint64_t *out)
{
    return co__content_param_u64(m->config->content, key, dflt, out);
}

bool co_module_is_member(const co_module_info *m, const mk_peer_id *peer)
{
    for (size_t i = 0; i < m->n_committee; i++)
        if (mk_id_eq(&m->committee[i], peer))
            return true;
    return false;
}
