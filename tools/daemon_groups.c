/* Hosting groups in coalitiond (daemon_groups.h).
 *
 * A node config names each group by a committee root, a state machine
 * kind, the voters and optional parameters and ticket validators; those
 * derive its GroupId exactly as mk_group_id_of does, so the CLI can name
 * the same group from the same file. Each group keeps its Raft log in
 * <data>/groups/<GroupId hex>: restarting the daemon with the same data
 * dir resumes from the durable log.
 */
#include "daemon_groups.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/collections.h"
#include "mosaik/error.h"
#include "mosaik/testing/fsm_test.h"
#include "mosaik/jwt.h"
#include "util.h"

#define MAX_VALIDATORS 8

typedef struct dg_group {
    char name[64];
    char kind[32];
    mk_id root;
    mk_peer_id *voters;
    size_t n_voters;
    mk_group_params params;
    struct mk_ticket_validator vals[MAX_VALIDATORS];
    const struct mk_ticket_validator *valp[MAX_VALIDATORS];
    size_t n_vals;
    bool ticketed; /* "tickets": voters are the seeds */
    mk_group_tickets tickets;
    struct mk_fsm *fsm;
    void *obj; /* what owns fsm */
    const struct kind_def *def;
    mk_id id;
    uint64_t capacity; /* "capacity", 0 when none */
    mk_group *g;
    mk_group_status last;
} dg_group;

struct daemon_groups {
    dg_group *groups;
    size_t n;
    size_t closing;
    void (*stop_cb)(void *data);
    void *stop_data;
};

/* ---- state machine kinds -------------------------------------------------
 * The test machines (fsm_test.h) and the collections (collections.h),
 * whose StoreId is the group's root, as in mosaik (§6.1). */

typedef struct kind_def {
    const char *name;
    int (*make)(const mk_coll_config *cfg, const char *kind, void **obj,
                struct mk_fsm **fsm);
    void (*free)(void *obj);
} kind_def;

static int make_test(const mk_coll_config *cfg, const char *kind, void **obj,
                     struct mk_fsm **fsm)
{
    (void)cfg;
    *fsm = mk_fsm_test_new(kind);
    *obj = *fsm;
    return *fsm ? 0 : MK_ENOMEM;
}

static void free_test(void *obj)
{
    mk_fsm_test_free(obj);
}

#define COLL_KIND(k)                                                          \
    static int make_##k(const mk_coll_config *cfg, const char *kind,          \
                        void **obj, struct mk_fsm **fsm)                      \
    {                                                                         \
        (void)kind;                                                           \
        mk_##k *c;                                                            \
        int rc = mk_##k##_new(cfg, &c);                                       \
        if (rc == 0) {                                                        \
            *obj = c;                                                         \
            *fsm = mk_##k##_fsm(c);                                           \
        }                                                                     \
        return rc;                                                            \
    }                                                                         \
    static void free_##k(void *obj)                                           \
    {                                                                         \
        mk_##k##_free(obj);                                                   \
    }
COLL_KIND(map)
COLL_KIND(set)
COLL_KIND(vec)
COLL_KIND(cell)
COLL_KIND(once)
COLL_KIND(pq)
#undef COLL_KIND

static const kind_def KINDS[] = {
    {"counter", make_test, free_test}, {"register", make_test, free_test},
    {"log", make_test, free_test},     {"map", make_map, free_map},
    {"set", make_set, free_set},       {"vec", make_vec, free_vec},
    {"cell", make_cell, free_cell},    {"once", make_once, free_once},
    {"pq", make_pq, free_pq},
};

static const kind_def *kind_of(const char *name)
{
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (strcmp(KINDS[i].name, name) == 0)
            return &KINDS[i];
    return NULL;
}

/* ---- parsing ---------------------------------------------------------------- */

static int get_u32(json_t *obj, const char *key, uint32_t *out, char *err,
                   const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > UINT32_MAX)
        return mk_errf(err, -1, "%s: \"%s\" must be a positive integer", where,
                       key);
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

/* {"keys": [hex...], "issuers": [...], "audiences": [...],
 * "allow_non_expiring": bool}: a JWT validator (mk_jwt_validator_init). */
static int parse_jwt(dg_group *gr, json_t *v, char *err, const char *where)
{
    static const char *const KEYS[] = {"keys", "issuers", "audiences",
                                       "allow_non_expiring", NULL};
    char sub[128];
    snprintf(sub, sizeof sub, "%s: jwt", where);
    if (daemon_config_only_keys(v, KEYS, sub, err) != 0)
        return -1;
    json_t *keys = json_object_get(v, "keys");
    json_t *iss = json_object_get(v, "issuers");
    json_t *aud = json_object_get(v, "audiences");
    mk_peer_id k[8];
    const char *issuers[8], *audiences[8];
    size_t nk = 0, ni = 0, na = 0;
    if (!json_is_array(keys) || json_array_size(keys) == 0 ||
        json_array_size(keys) > 8)
        return mk_errf(err, -1, "%s: jwt needs \"keys\": 1 to 8 hex keys",
                       where);
    for (size_t i = 0; i < json_array_size(keys); i++) {
        const char *s = json_string_value(json_array_get(keys, i));
        if (!s || mk_id_from_hex(&k[nk++], s, strlen(s)) != 0)
            return mk_errf(err, -1, "%s: jwt key %zu is not 64 hex", where, i);
    }
    for (size_t i = 0; json_is_array(iss) && i < json_array_size(iss) && i < 8;
         i++)
        if ((issuers[ni] = json_string_value(json_array_get(iss, i))))
            ni++;
    for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud) && i < 8;
         i++)
        if ((audiences[na] = json_string_value(json_array_get(aud, i))))
            na++;
    mk_jwt_config jc = {
        .keys = k, .n_keys = nk, .issuers = issuers, .n_issuers = ni,
        .audiences = audiences, .n_audiences = na,
        .allow_non_expiring =
            json_is_true(json_object_get(v, "allow_non_expiring")),
    };
    char why[MK_ERRMSG_SIZE];
    if (mk_jwt_validator_init(&gr->vals[gr->n_vals], &jc, why) != 0)
        return mk_errf(err, -1, "%s: jwt: %s", where, why);
    gr->valp[gr->n_vals] = &gr->vals[gr->n_vals];
    gr->n_vals++;
    return 0;
}

/* "tickets": {"keys": [hex...], "issuer": ISS, "audience": AUD,
 * "max_lifetime_s": N}: ticket-gated membership (mk_group_tickets). */
static int parse_tickets(dg_group *gr, json_t *t, char *err, const char *where)
{
    static const char *const KEYS[] = {"keys", "issuer", "audience",
                                       "max_lifetime_s", NULL};
    char sub[128];
    snprintf(sub, sizeof sub, "%s: tickets", where);
    if (!json_is_object(t))
        return mk_errf(err, -1, "%s: \"tickets\" must be an object", where);
    if (daemon_config_only_keys(t, KEYS, sub, err) != 0)
        return -1;
    mk_group_tickets *g = &gr->tickets;
    json_t *keys = json_object_get(t, "keys");
    if (!json_is_array(keys) || json_array_size(keys) == 0 ||
        json_array_size(keys) > MK_GROUP_TICKET_KEYS)
        return mk_errf(err, -1,
                       "%s: \"keys\" must list 1 to %d issuer keys "
                       "(64 hex)",
                       sub, MK_GROUP_TICKET_KEYS);
    for (size_t i = 0; i < json_array_size(keys); i++) {
        const char *s = json_string_value(json_array_get(keys, i));
        if (!s || mk_id_from_hex(&g->keys[i], s, strlen(s)) != 0)
            return mk_errf(err, -1, "%s: keys[%zu] is not 64 hex", sub, i);
    }
    g->n_keys = json_array_size(keys);
    const char *names[2] = {"issuer", "audience"};
    char *dst[2] = {g->issuer, g->audience};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(t, names[i]);
        const char *s = json_string_value(v);
        if (!v)
            continue;
        if (!s || !*s || strlen(s) > MK_GROUP_TICKET_STR || strchr(s, ','))
            return mk_errf(err, -1,
                           "%s: \"%s\" must be a string of 1 to %d "
                           "bytes without ','",
                           sub, names[i], MK_GROUP_TICKET_STR);
        snprintf(dst[i], MK_GROUP_TICKET_STR + 1, "%s", s);
    }
    json_t *life = json_object_get(t, "max_lifetime_s");
    if (life &&
        get_u32(t, "max_lifetime_s", &g->max_lifetime_s, err, sub) != 0)
        return -1;
    gr->ticketed = true;
    return 0;
}

static int parse_group(dg_group *gr, json_t *o, size_t idx, char *err)
{
    char where[96];
    snprintf(where, sizeof where, "groups[%zu]", idx);
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *root = json_string_value(json_object_get(o, "root"));
    const char *kind = json_string_value(json_object_get(o, "kind"));
    json_t *voters = json_object_get(o, "voters");
    if (!json_is_object(o) || !name || !*name || strlen(name) >= sizeof gr->name)
        return mk_errf(err, -1, "%s: \"name\" (1 to 63 bytes) is required",
                       where);
    snprintf(where, sizeof where, "group \"%s\"", name);
    snprintf(gr->name, sizeof gr->name, "%s", name);
    static const char *const GROUP_KEYS[] = {
        "name", "root", "kind", "voters", "params", "validators",
        "capacity", "type", "tickets", NULL};
    if (daemon_config_only_keys(o, GROUP_KEYS, where, err) != 0)
        return -1;
    if (!root)
        return mk_errf(err, -1, "%s: \"root\" (an id string) is required",
                       where);
    mk_id_from_str(&gr->root, root);
    if (!kind || strlen(kind) >= sizeof gr->kind)
        return mk_errf(err, -1, "%s: \"kind\" is required", where);
    snprintf(gr->kind, sizeof gr->kind, "%s", kind);
    if (!json_is_array(voters) || json_array_size(voters) == 0 ||
        json_array_size(voters) > 64)
        return mk_errf(err, -1, "%s: \"voters\" must list 1 to 64 PeerIds",
                       where);
    gr->n_voters = json_array_size(voters);
    gr->voters = calloc(gr->n_voters, sizeof *gr->voters);
    if (!gr->voters)
        return mk_errf(err, -1, "out of memory");
    for (size_t i = 0; i < gr->n_voters; i++) {
        const char *s = json_string_value(json_array_get(voters, i));
        if (!s || mk_id_from_hex(&gr->voters[i], s, strlen(s)) != 0)
            return mk_errf(err, -1, "%s: voter %zu is not a PeerId (64 hex)",
                           where, i);
        for (size_t j = 0; j < i; j++)
            if (mk_id_eq(&gr->voters[j], &gr->voters[i]))
                return mk_errf(err, -1, "%s: voter %zu repeats voter %zu",
                               where, i, j);
    }
    json_t *p = json_object_get(o, "params");
    if (p && !json_is_object(p))
        return mk_errf(err, -1, "%s: \"params\" must be an object", where);
    static const char *const PARAM_KEYS[] = {
        "election_timeout_ms", "heartbeat_ms", "snapshot_threshold",
        "max_in_flight", "max_voters", "replace_after_ms", NULL};
    if (p && daemon_config_only_keys(p, PARAM_KEYS, where, err) != 0)
        return -1;
    if (p &&
        (get_u32(p, "election_timeout_ms", &gr->params.election_timeout_ms,
                 err, where) ||
         get_u32(p, "heartbeat_ms", &gr->params.heartbeat_ms, err, where) ||
         get_u32(p, "snapshot_threshold", &gr->params.snapshot_threshold, err,
                 where) ||
         get_u32(p, "max_in_flight", &gr->params.max_in_flight, err, where) ||
         get_u32(p, "max_voters", &gr->params.max_voters, err, where) ||
         get_u32(p, "replace_after_ms", &gr->params.replace_after_ms, err,
                 where)))
        return -1;
    json_t *vs = json_object_get(o, "validators");
    if (vs && !json_is_array(vs))
        return mk_errf(err, -1, "%s: \"validators\" must be an array", where);
    for (size_t i = 0; json_is_array(vs) && i < json_array_size(vs); i++) {
        json_t *v = json_array_get(vs, i);
        json_t *jwt = json_object_get(v, "jwt");
        static const char *const VALIDATOR_KEYS[] = {"jwt", NULL};
        char vwhere[128];
        snprintf(vwhere, sizeof vwhere, "%s: validators[%zu]", where, i);
        if (json_is_object(v) &&
            daemon_config_only_keys(v, VALIDATOR_KEYS, vwhere, err) != 0)
            return -1;
        if (gr->n_vals == MAX_VALIDATORS)
            return mk_errf(err, -1, "%s: at most %d validators", where,
                           MAX_VALIDATORS);
        if (!json_is_object(jwt))
            return mk_errf(err, -1,
                           "%s: validator %zu: only {\"jwt\": {...}} "
                           "is known",
                           where, i);
        if (parse_jwt(gr, jwt, err, where) != 0)
            return -1;
    }
    json_t *tk = json_object_get(o, "tickets");
    if (tk && parse_tickets(gr, tk, err, where) != 0)
        return -1;
    gr->def = kind_of(kind);
    if (!gr->def)
        return mk_errf(err, -1,
                       "%s: unknown kind \"%s\" (counter, register, log, map, "
                       "set, vec, cell, once, pq)",
                       where, kind);
    json_t *cap = json_object_get(o, "capacity");
    mk_coll_config cc = {
        .store = gr->root,
        .type = json_string_value(json_object_get(o, "type")),
        .capacity = json_is_integer(cap) && json_integer_value(cap) > 0
                        ? (uint64_t)json_integer_value(cap)
                        : 0,
    };
    gr->capacity = cc.capacity;
    if (gr->def->make(&cc, kind, &gr->obj, &gr->fsm) != 0) {
        gr->def = NULL;
        return mk_errf(err, -1, "%s: cannot make a \"%s\"", where, kind);
    }
    mk_group_config cfg = {
        .root = gr->root,
        .fsm = gr->fsm,
        .voters = gr->voters,
        .n_voters = gr->n_voters,
        .params = gr->params,
        .validators = gr->valp,
        .n_validators = gr->n_vals,
        .tickets = gr->ticketed ? &gr->tickets : NULL,
    };
    mk_group_id_of(&cfg, &gr->id);
    return 0;
}

int daemon_groups_load(const daemon_config *cfg, daemon_groups **out,
                       char *err)
{
    *out = NULL;
    daemon_groups *dg = calloc(1, sizeof *dg);
    if (!dg)
        return mk_errf(err, -1, "out of memory");
    json_t *gs = cfg->groups;
    size_t n = gs ? json_array_size(gs) : 0;
    int rc = 0;
    if (n > 0 && !(dg->groups = calloc(n, sizeof *dg->groups)))
        rc = mk_errf(err, -1, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        dg->n++;
        rc = parse_group(&dg->groups[i], json_array_get(gs, i), i, err);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(dg->groups[j].name, dg->groups[i].name) == 0)
                rc = mk_errf(err, -1, "two groups are called \"%s\"",
                             dg->groups[i].name);
    }
    if (rc != 0) {
        daemon_groups_free(dg);
        return rc;
    }
    *out = dg;
    return 0;
}

uint64_t daemon_groups_capacity(const daemon_groups *dg, const char *name)
{
    for (size_t i = 0; i < dg->n; i++)
        if (strcmp(dg->groups[i].name, name) == 0)
            return dg->groups[i].capacity;
    return 0;
}

size_t daemon_groups_count(const daemon_groups *dg)
{
    return dg->n;
}

mk_group *daemon_groups_at(const daemon_groups *dg, size_t i,
                           const char **name, const char **kind)
{
    if (i >= dg->n)
        return NULL;
    *name = dg->groups[i].name;
    *kind = dg->groups[i].kind;
    return dg->groups[i].g;
}

bool daemon_groups_find(const daemon_groups *dg, const char *name, mk_id *id,
                        const char **kind)
{
    for (size_t i = 0; i < dg->n; i++)
        if (strcmp(dg->groups[i].name, name) == 0) {
            if (id)
                *id = dg->groups[i].id;
            if (kind)
                *kind = dg->groups[i].kind;
            return true;
        }
    return false;
}

/* ---- running -------------------------------------------------------------- */

static void on_change(mk_group *g, void *data)
{
    dg_group *gr = data;
    mk_group_status st;
    mk_group_status_get(g, &st);
    /* Log leadership and online changes, not every applied command. */
    if (st.is_leader != gr->last.is_leader ||
        st.has_leader != gr->last.has_leader ||
        !mk_id_eq(&st.leader, &gr->last.leader) ||
        st.online != gr->last.online) {
        char hex[MK_ID_HEX_LEN + 1];
        util_log("INFO", "group %s: %s, leader %s, term %llu, applied %llu",
                 gr->name,
                 st.is_leader ? "leader" : st.online ? "follower" : "offline",
                 st.has_leader ? mk_id_hex(&st.leader, hex) : "(none)",
                 (unsigned long long)st.term,
                 (unsigned long long)st.applied);
    }
    gr->last = st;
}

/* Whether this node carries a ticket the group's policy accepts: then
 * it joins, and the leader adds it as a standby. (The group judges it
 * again, and for as long as it is a member; this only avoids joining,
 * and listing the GroupId, for nothing.) */
static bool holds_ticket(const dg_group *gr, mk_node *node)
{
    char why[MK_ERRMSG_SIZE];
    if (mk_group_tickets_held(&gr->tickets, node, why))
        return true;
    util_log("INFO", "group %s: ticket: %s", gr->name, why);
    return false;
}

int daemon_groups_start(daemon_groups *dg, mk_node *node, const char *data_dir,
                        char *err)
{
    const mk_peer_id *self = mk_node_id(node);
    for (size_t i = 0; i < dg->n; i++) {
        dg_group *gr = &dg->groups[i];
        char hex[MK_ID_HEX_LEN + 1], dir[4096], why[MK_ERRMSG_SIZE];
        mk_id_hex(&gr->id, hex);
        bool voter = false;
        for (size_t v = 0; v < gr->n_voters; v++)
            voter |= mk_id_eq(&gr->voters[v], self);
        if (!voter && !(gr->ticketed && holds_ticket(gr, node))) {
            util_log("INFO", "group %s (%s): not a %s, not joining",
                     gr->name, hex,
                     gr->ticketed ? "seed and no ticket it accepts" : "voter");
            continue;
        }
        snprintf(dir, sizeof dir, "%s/groups/%s", data_dir, hex);
        mk_group_config cfg = {
            .node = node,
            .root = gr->root,
            .fsm = gr->fsm,
            .voters = gr->voters,
            .n_voters = gr->n_voters,
            .data_dir = dir,
            .params = gr->params,
            .validators = gr->valp,
            .n_validators = gr->n_vals,
            .tickets = gr->ticketed ? &gr->tickets : NULL,
            .name = gr->name,
        };
        int rc = mk_group_open(&cfg, &gr->g, why);
        if (rc == MK_EIO) {
            /* Its storage is unusable (e.g. the log lost entries): this
             * group must not run here, but the node's others may. */
            util_log("ERROR", "group %s (%s): NOT RUNNING: %s", gr->name,
                     hex, why);
            continue;
        }
        if (rc != 0)
            return mk_errf(err, -1, "group %s: %s", gr->name, why);
        mk_group_watch(gr->g, on_change, gr);
        util_log("INFO", "group %s: joined %s (%s, %zu %s)", gr->name, hex,
                 gr->kind, gr->n_voters, gr->ticketed ? "seeds" : "voters");
    }
    return 0;
}

static void on_group_closed(void *data)
{
    daemon_groups *dg = data;
    if (--dg->closing == 0 && dg->stop_cb)
        dg->stop_cb(dg->stop_data);
}

void daemon_groups_stop(daemon_groups *dg, mk_close_cb cb, void *data)
{
    dg->stop_cb = cb;
    dg->stop_data = data;
    dg->closing = 1; /* held until every close is under way */
    for (size_t i = 0; i < dg->n; i++) {
        if (!dg->groups[i].g)
            continue;
        dg->closing++;
        mk_group *g = dg->groups[i].g;
        dg->groups[i].g = NULL;
        mk_group_close(g, on_group_closed, dg);
    }
    on_group_closed(dg);
}

void daemon_groups_free(daemon_groups *dg)
{
    if (!dg)
        return;
    for (size_t i = 0; i < dg->n; i++) {
        dg_group *gr = &dg->groups[i];
        free(gr->voters);
        for (size_t v = 0; v < gr->n_vals; v++)
            mk_ticket_validator_free(&gr->vals[v]);
        if (gr->def)
            gr->def->free(gr->obj);
    }
    free(dg->groups);
    free(dg);
}
