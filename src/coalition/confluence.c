/* Confluence identity, declarations, commits and auditing
 * (coalition/confluence.h). Everything here is pure computation over a
 * config, except co_confluence_retire, which submits one command.
 *
 * Identity. The committee root is derive(fingerprint, "committee"), as
 * for every organism (SPEC §2); the GroupId then folds the state-machine
 * signature, which this SDK makes cover everything that shapes a fold
 * besides the content string: the SDK version, the machine's own
 * signature, the surface names and the stall mode and bound. Two hosts
 * that would fold the same facts differently therefore never share a
 * committee, whatever their code says about the content string. Nothing
 * here reads a coalition: a confluence is the same group under every
 * coalition that references it.
 */
#include "coalition/confluence.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/fx_correlator.h"
#include "mosaik/blake3.h"
#include "mosaik/error.h"
#include "content_param.h"
#include "modules_internal.h"

int co_clock_event_cmp(const co_clock_event *a, const co_clock_event *b)
{
    if (a->epoch != b->epoch)
        return a->epoch < b->epoch ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}

const char *co_stall_mode_name(co_stall_mode m)
{
    return m == CO_STALL_HALT ? "halt" : "partial";
}

/* ---- identity ---------------------------------------------------------- */

/* The stable id of one spanned citizen: the evidence pointers and stream
 * ids need it even when the confluence pins the content hash. */
static int ref_stable_id(const co_citizen_ref *r, mk_id *out, char *err)
{
    if (r->lattice)
        return co_lattice_stable_id(r->lattice, out, err);
    if (r->organism)
        return co_organism_stable_id(r->organism, out, err);
    if (r->stable_id) {
        mk_id_from_str(out, r->stable_id);
        return 0;
    }
    return mk_errf(err, CO_ECONFIG,
                   "a reference names none of lattice, organism or "
                   "stable_id");
}

static void put_u32le(mk_blake3_hasher *h, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};
    mk_blake3_update(h, b, 4);
}

static void machine_signature(const co_confluence_def *def, mk_id *out)
{
    static const uint8_t zero = 0;
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, CO_CONFLUENCE_SIGNATURE,
                     strlen(CO_CONFLUENCE_SIGNATURE));
    mk_blake3_update(&h, &zero, 1);
    mk_blake3_update(&h, def->machine->signature,
                     strlen(def->machine->signature));
    mk_blake3_update(&h, &zero, 1);
    uint8_t mode = (uint8_t)def->stall;
    mk_blake3_update(&h, &mode, 1);
    put_u32le(&h, def->bound_ticks);
    put_u32le(&h, (uint32_t)def->n_surfaces);
    for (size_t i = 0; i < def->n_surfaces; i++) {
        mk_blake3_update(&h, def->surfaces[i].name,
                         strlen(def->surfaces[i].name));
        mk_blake3_update(&h, &zero, 1);
    }
    mk_blake3_final(&h, out->b, MK_ID_LEN);
}

int co_confluence_info_get(const co_confluence_def *def,
                           co_confluence_info *out, char *err)
{
    memset(out, 0, sizeof *out);
    const co_confluence_config *c = def->config;
    if (!c || !c->name)
        return mk_errf(err, CO_ECONFIG, "confluence: no config");
    if (!def->machine ||
        def->machine->version != CO_CONFLUENCE_MACHINE_VERSION ||
        !def->machine->signature)
        return mk_errf(err, CO_ECONFIG,
                       "confluence %s: no state machine of version %d",
                       c->name, CO_CONFLUENCE_MACHINE_VERSION);
    size_t n = c->n_lattices + c->n_organisms;
    /* SPEC §1: a confluence folds two or more citizen references. */
    if (n < 2 || n > CO_CONFLUENCE_MAX_SOURCES)
        return mk_errf(err, CO_ECONFIG,
                       "confluence %s: spans %zu citizens; a confluence spans "
                       "2 to %d",
                       c->name, n, CO_CONFLUENCE_MAX_SOURCES);
    if (def->n_surfaces != n)
        return mk_errf(err, CO_ECONFIG,
                       "confluence %s: %zu upstream surfaces declared for %zu "
                       "spanned citizens",
                       c->name, def->n_surfaces, n);
    for (size_t i = 0; i < n; i++)
        if (!def->surfaces[i].name || !def->surfaces[i].name[0] ||
            !def->surfaces[i].event)
            return mk_errf(err, CO_ECONFIG,
                           "confluence %s: surface %zu needs a name and "
                           "a decoder",
                           c->name, i);
    int rc = co_confluence_fingerprint(c, &out->fingerprint, err);
    if (rc < 0)
        return rc;
    co_committee_id(&out->fingerprint, &out->committee_root);
    co_surface_id(&out->fingerprint, CO_CONFLUENCE_COMMITS, &out->commits);
    for (size_t i = 0; i < n; i++) {
        const co_citizen_ref *r = i < c->n_lattices
                                      ? &c->lattices[i]
                                      : &c->organisms[i - c->n_lattices];
        co_confluence_source *s = &out->src[i];
        if ((rc = ref_stable_id(r, &s->stable_id, err)) < 0)
            return rc;
        co_citizen_id_of(&s->stable_id, &s->citizen);
        mk_stream_id(&s->stable_id, def->surfaces[i].name, &s->stream);
    }
    out->n_sources = n;

    /* The committee, as for modules: acl.issuers are its PeerIds. A
     * ticket-gated committee (acl.tickets) is modules-only so far: a
     * confluence's group would silently keep the fixed list. */
    const co_acl *acl = &c->acl;
    if (acl->tickets)
        return mk_errf(err, CO_ECONFIG,
                       "confluence %s: acl.tickets (a ticket-gated committee) "
                       "is supported for modules only",
                       c->name);
    if (acl->n_issuers == 0 || acl->n_issuers > CO_MODULE_MAX_COMMITTEE)
        return mk_errf(err, CO_ECONFIG,
                       "confluence %s: acl.issuers must list its 1 to %d "
                       "committee members (PeerIds), found %zu",
                       c->name, CO_MODULE_MAX_COMMITTEE, acl->n_issuers);
    for (size_t i = 0; i < acl->n_issuers; i++) {
        mk_peer_id p;
        const char *s = acl->issuers[i];
        if (!s || mk_id_from_hex(&p, s, strlen(s)) != 0)
            return mk_errf(err, CO_ECONFIG,
                           "confluence %s: acl.issuers[%zu] is not a PeerId "
                           "(64 hex)",
                           c->name, i);
        for (size_t j = 0; j < out->n_committee; j++)
            if (mk_id_eq(&out->committee[j], &p))
                return mk_errf(err, CO_ECONFIG,
                               "confluence %s: acl.issuers[%zu] repeats a "
                               "member",
                               c->name, i);
        out->committee[out->n_committee++] = p;
    }

    machine_signature(def, &out->signature);
    struct mk_fsm shape = {.version = MK_FSM_VERSION,
                           .signature = out->signature};
    mk_group_config gc = {.root = out->committee_root, .fsm = &shape,
                          .voters = out->committee,
                          .n_voters = out->n_committee};
    mk_group_id_of(&gc, &out->group);
    return 0;
}

/* ---- content parameters ------------------------------------------------ */

int co_confluence_param(const co_confluence_config *c, const char *key,
                        char *out, size_t cap)
{
    size_t n;
    const char *v = co__content_param(c->content, key, &n);
    if (!v)
        return 0;
    if (n >= cap)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

int co_confluence_param_u64(const co_confluence_config *c, const char *key,
                            uint64_t dflt, uint64_t *out)
{
    return co__content_param_u64(c->content, key, dflt, out);
}

/* ---- commits ----------------------------------------------------------- */

int co_confluence_commit_encode(const co_confluence_commit *c, mk_buf *out)
{
    mk_put_u8(out, (uint8_t)c->kind);
    mk_put_u8(out, c->partial);
    mk_put_varint(out, c->index);
    mk_put_raw(out, c->key_citizen.b, CO_CITIZEN_ID_LEN);
    mk_put_varint(out, c->key_event.epoch);
    mk_put_varint(out, c->key_event.seq);
    mk_put_bytes(out, c->body, c->body_len);
    mk_put_varint(out, c->n_evidence);
    for (size_t i = 0; i < c->n_evidence; i++) {
        const co_evidence *e = &c->evidence[i];
        mk_put_id(out, &e->citizen);
        mk_put_id(out, &e->surface);
        mk_put_varint(out, e->event.epoch);
        mk_put_varint(out, e->event.seq);
        mk_put_id(out, &e->hash);
    }
    return out->err;
}

int co_confluence_commit_decode(co_confluence_commit *c, const uint8_t *bytes,
                                size_t len)
{
    mk_reader r;
    mk_reader_init(&r, bytes, len);
    memset(c, 0, sizeof *c);
    uint8_t kind = mk_get_u8(&r), partial = mk_get_u8(&r);
    c->index = mk_get_varint(&r);
    const uint8_t *cit = mk_get_raw(&r, CO_CITIZEN_ID_LEN);
    c->key_event.epoch = mk_get_varint(&r);
    c->key_event.seq = mk_get_varint(&r);
    c->body = mk_get_bytes(&r, &c->body_len, CO_CONFLUENCE_MAX_BODY);
    /* Each pointer takes at least 32 + 32 + 1 + 1 + 32 bytes. */
    c->n_evidence = mk_get_count(&r, CO_CONFLUENCE_MAX_SOURCES, 98);
    for (size_t i = 0; i < c->n_evidence; i++) {
        co_evidence *e = &c->evidence[i];
        mk_get_id(&r, &e->citizen);
        mk_get_id(&r, &e->surface);
        e->event.epoch = mk_get_varint(&r);
        e->event.seq = mk_get_varint(&r);
        mk_get_id(&r, &e->hash);
    }
    if (mk_reader_done(&r) != 0 || !cit || !c->body ||
        (kind != CO_COMMIT_FACT && kind != CO_COMMIT_RETIRED) ||
        partial > 1 || c->index == 0)
        return MK_EDECODE;
    c->kind = (co_commit_kind)kind;
    c->partial = partial;
    memcpy(c->key_citizen.b, cit, CO_CITIZEN_ID_LEN);
    return 0;
}

int co_confluence_retirement_of(const co_confluence_commit *c,
                                co_confluence_retirement *out)
{
    memset(out, 0, sizeof *out);
    if (c->kind != CO_COMMIT_RETIRED)
        return MK_EDECODE;
    mk_reader r;
    mk_reader_init(&r, c->body, c->body_len);
    mk_get_id(&r, &out->component);
    size_t n;
    const uint8_t *reason = mk_get_bytes(&r, &n, sizeof out->reason - 1);
    uint8_t has = mk_get_u8(&r);
    if (has == 1)
        mk_get_id(&r, &out->successor);
    if (mk_reader_done(&r) != 0 || !reason || has > 1 ||
        memchr(reason, 0, n))
        return MK_EDECODE;
    memcpy(out->reason, reason, n);
    out->reason[n] = '\0';
    out->has_successor = has;
    out->retired = true;
    return 0;
}

/* ---- auditing ---------------------------------------------------------- */

int co_confluence_match_evidence(const co_confluence_def *def,
                                 const co_confluence_info *info,
                                 const co_confluence_commit *c,
                                 const co_upstream_fact *facts, size_t n,
                                 const co_upstream_fact **matched, char *why)
{
    char hex[MK_ID_HEX_LEN + 1];
    for (size_t i = 0; i < info->n_sources; i++)
        matched[i] = NULL;
    for (size_t k = 0; k < c->n_evidence; k++) {
        const co_evidence *e = &c->evidence[k];
        size_t src = info->n_sources;
        for (size_t i = 0; i < info->n_sources; i++)
            if (mk_id_eq(&info->src[i].stable_id, &e->citizen))
                src = i;
        if (src == info->n_sources)
            return mk_errf(why, CO_EUNVERIFIED,
                           "evidence %zu names citizen %s, which the "
                           "confluence does not span",
                           k, mk_id_hex(&e->citizen, hex));
        if (!mk_id_eq(&info->src[src].stream, &e->surface))
            return mk_errf(why, CO_EUNVERIFIED,
                           "evidence %zu names another surface of citizen "
                           "%zu than the one the confluence reads",
                           k, src);
        if (matched[src])
            return mk_errf(why, CO_EUNVERIFIED,
                           "two evidence pointers for citizen %zu", src);
        /* The citizen's own data must hold a fact at that clock event,
         * with exactly the bytes the confluence says it read. */
        const co_upstream_fact *found = NULL;
        bool same_event = false;
        for (size_t j = 0; j < n && !found; j++) {
            co_clock_event ev;
            if (facts[j].src != src ||
                def->surfaces[src].event(facts[j].bytes, facts[j].len,
                                         &ev) != 0 ||
                co_clock_event_cmp(&ev, &e->event) != 0)
                continue;
            same_event = true;
            mk_id h;
            mk_id_hash(&h, facts[j].bytes, facts[j].len);
            if (mk_id_eq(&h, &e->hash))
                found = &facts[j];
        }
        if (!found && same_event)
            return mk_errf(why, MK_EHASH_MISMATCH,
                           "evidence %zu (citizen %zu, event %llu/%llu) "
                           "does not match the citizen's fact",
                           k, src, (unsigned long long)e->event.epoch,
                           (unsigned long long)e->event.seq);
        if (!found)
            return mk_errf(why, MK_ENOENT,
                           "evidence %zu: citizen %zu has no fact at event "
                           "%llu/%llu in the data given",
                           k, src, (unsigned long long)e->event.epoch,
                           (unsigned long long)e->event.seq);
        matched[src] = found;
    }
    return 0;
}

/* ---- the catalog ------------------------------------------------------- */

const co_confluence_impl *const co_confluence_builtin[] = {
    &co_fx_correlator_impl,
};
const size_t co_confluence_n_builtin =
    sizeof co_confluence_builtin / sizeof co_confluence_builtin[0];

int co_confluence_define(const co_confluence_config *cfg,
                         const co_confluence_impl *const *impls,
                         size_t n_impls, co_confluence_def *out, char *err)
{
    if (!impls) {
        impls = co_confluence_builtin;
        n_impls = co_confluence_n_builtin;
    }
    const char *content = cfg->content ? cfg->content : "";
    size_t n = strcspn(content, "/;");
    for (size_t i = 0; i < n_impls; i++)
        if (strlen(impls[i]->name) == n &&
            strncmp(impls[i]->name, content, n) == 0)
            return impls[i]->define(cfg, out, err);
    if (err)
        snprintf(err, CO_ERRMSG_SIZE,
                 "confluence %s: no implementation of \"%.*s\" here",
                 cfg->name ? cfg->name : "?", (int)n, content);
    return MK_ENOENT;
}

const co_confluence_config *co_coalition_confluence(
    const co_coalition_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_confluences; i++)
        if (c->confluences[i] && c->confluences[i]->name &&
            strcmp(c->confluences[i]->name, name) == 0)
            return c->confluences[i];
    return NULL;
}

/* ---- retiring from anywhere -------------------------------------------- */

void co_confluence_cmd_retire(mk_buf *out, const co_confluence_info *info,
                              const char *reason, const mk_id *successor,
                              const mk_keypair *member)
{
    /* The modules' retirement command, signed for this machine. */
    co__cmd_retire(out, &info->signature, reason, successor, member);
}

int co_confluence_retire(mk_node *net, const co_confluence_def *def,
                         const char *reason, const mk_id *successor,
                         const mk_keypair *member, uint32_t timeout_ms,
                         void (*done)(int status, void *data), void *data,
                         char *err)
{
    co_confluence_info info;
    int rc = co_confluence_info_get(def, &info, err);
    if (rc < 0)
        return rc;
    if (reason && strlen(reason) > 255)
        return mk_errf(err, CO_ECONFIG,
                       "a retirement reason is at most 255 bytes");
    return co__submit_retire(net, &info.group, &info.signature, reason,
                             successor, member, timeout_ms, done, data);
}
