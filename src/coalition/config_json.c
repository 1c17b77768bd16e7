/* Loading coalition configs from JSON (include/coalition/config_file.h).
 *
 * jansson parses (rejecting duplicate keys); this walks the tree into the
 * same structs an integrator writes as static consts, copying every string
 * into one arena the loaded file owns. Each object's keys are checked
 * against the set SPEC §3 allows, so a misspelt key is an error rather
 * than a silently different fingerprint. Problems are collected as a key
 * path plus a reason; jsonpos turns the path into the line to report.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/config_file.h"
#include "coalition/identity.h"
#include "identity_check.h"
#include "jsonpos.h"

/* ---- arena: every allocation lives as long as the loaded file ---------- */

typedef struct block {
    struct block *next;
    size_t used, cap;
    max_align_t data[];
} block;

struct co_config_file {
    co_coalition_config cfg;
    block *blocks;
};

static void *arena_alloc(co_config_file *f, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    block *b = f->blocks;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 4096 ? size : 4096;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = f->blocks;
        f->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

static char *arena_strdup(co_config_file *f, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(f, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void co_config_file_free(co_config_file *f)
{
    if (!f)
        return;
    for (block *b = f->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(f);
}

const co_coalition_config *co_config_file_coalition(const co_config_file *f)
{
    return &f->cfg;
}

/* ---- walking the tree ---------------------------------------------------- */

typedef struct loader {
    co_config_file *f;
    co__diag d;
    int failed; /* 0, CO_ECONFIG or MK_ENOMEM */
} loader;

static int problem(loader *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int problem(loader *ld, const char *path, const char *fmt, ...)
{
    if (ld->failed)
        return ld->failed;
    snprintf(ld->d.path, sizeof ld->d.path, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->d.what, sizeof ld->d.what, fmt, ap);
    va_end(ap);
    ld->failed = CO_ECONFIG;
    return ld->failed;
}

static int oom(loader *ld)
{
    if (!ld->failed) {
        ld->d.path[0] = '\0';
        snprintf(ld->d.what, sizeof ld->d.what, "out of memory");
        ld->failed = MK_ENOMEM;
    }
    return ld->failed;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static void join(char *out, size_t cap, const char *path, const char *key)
{
    snprintf(out, cap, "%s%s%s", path, path[0] ? "." : "", key);
}

/* Refuses keys outside `allowed` (a NULL-terminated list). */
static int only_keys(loader *ld, json_t *obj, const char *path,
                     const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(key, *a) == 0;
        if (!ok) {
            char sub[160], list[160] = "";
            join(sub, sizeof sub, path, key);
            for (const char *const *a = allowed; *a; a++)
                snprintf(list + strlen(list), sizeof list - strlen(list),
                         "%s%s", a == allowed ? "" : ", ", *a);
            return problem(ld, sub, "unknown key \"%s\" (allowed: %s)", key,
                           list);
        }
    }
    return 0;
}

/* A string member: required or optional. Returns 1 when present. */
static int get_string(loader *ld, json_t *obj, const char *path,
                      const char *key, bool required, const char **out)
{
    char sub[160];
    join(sub, sizeof sub, path, key);
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            return problem(ld, sub, "missing field \"%s\"", key);
        return 0;
    }
    if (!json_is_string(v))
        return problem(ld, sub, "wrong type: expected a string, found %s",
                       type_name(v));
    if (json_string_length(v) == 0)
        return problem(ld, sub, "must not be empty");
    if (!(*out = arena_strdup(ld->f, json_string_value(v))))
        return oom(ld);
    return 1;
}

static json_t *get_typed(loader *ld, json_t *obj, const char *path,
                         const char *key, json_type type, bool required)
{
    char sub[160];
    join(sub, sizeof sub, path, key);
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            problem(ld, sub, "missing field \"%s\"", key);
        return NULL;
    }
    if (json_typeof(v) != type) {
        problem(ld, sub, "wrong type: expected %s, found %s",
                type == JSON_ARRAY ? "an array" : "an object", type_name(v));
        return NULL;
    }
    return v;
}

static int load_string_list(loader *ld, json_t *arr, const char *path,
                            const char *const **out, size_t *n)
{
    size_t count = json_array_size(arr);
    const char **v = arena_alloc(ld->f, (count ? count : 1) * sizeof *v);
    if (!v)
        return oom(ld);
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_array_get(arr, i);
        char sub[160];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        if (!json_is_string(item))
            return problem(ld, sub, "wrong type: expected a string, found %s",
                           type_name(item));
        if (json_string_length(item) == 0)
            return problem(ld, sub, "must not be empty");
        if (!(v[i] = arena_strdup(ld->f, json_string_value(item))))
            return oom(ld);
    }
    *out = v;
    *n = count;
    return 0;
}

/* "tickets": {"issuer": "coalition" | ROOT, "keys": [...], "audience":
 * "...", "max_lifetime_s": N}, the ticket-gated form (co_acl_tickets). */
static int load_tickets(loader *ld, json_t *acl_v, const char *path,
                        co_acl *acl)
{
    static const char *const keys[] = {"issuer", "keys", "audience",
                                       "max_lifetime_s", NULL};
    char sub[160], lp[160];
    json_t *v = get_typed(ld, acl_v, path, "tickets", JSON_OBJECT, false);
    if (!v)
        return ld->failed;
    join(sub, sizeof sub, path, "tickets");
    co_acl_tickets *t = arena_alloc(ld->f, sizeof *t);
    if (!t)
        return oom(ld);
    if (only_keys(ld, v, sub, keys) ||
        get_string(ld, v, sub, "issuer", true, &t->issuer) < 0 ||
        get_string(ld, v, sub, "audience", false, &t->audience) < 0)
        return ld->failed;
    json_t *k = get_typed(ld, v, sub, "keys", JSON_ARRAY, false);
    if (ld->failed)
        return ld->failed;
    join(lp, sizeof lp, sub, "keys");
    if (k && load_string_list(ld, k, lp, &t->keys, &t->n_keys))
        return ld->failed;
    json_t *life = json_object_get(v, "max_lifetime_s");
    if (life) {
        join(lp, sizeof lp, sub, "max_lifetime_s");
        if (!json_is_integer(life) || json_integer_value(life) < 0 ||
            json_integer_value(life) > UINT32_MAX)
            return problem(ld, lp, "expected seconds: an integer from 0 to "
                                   "4294967295");
        t->max_lifetime_s = (uint32_t)json_integer_value(life);
    }
    acl->tickets = t;
    return 0;
}

static int load_acl(loader *ld, json_t *obj, const char *path, co_acl *acl)
{
    static const char *const keys[] = {"issuers", "mrtds", "tickets", NULL};
    char sub[160];
    json_t *acl_v = get_typed(ld, obj, path, "acl", JSON_OBJECT, true);
    if (!acl_v)
        return ld->failed;
    join(sub, sizeof sub, path, "acl");
    if (only_keys(ld, acl_v, sub, keys))
        return ld->failed;
    char lp[160];
    json_t *issuers = get_typed(ld, acl_v, sub, "issuers", JSON_ARRAY, true);
    if (!issuers)
        return ld->failed;
    join(lp, sizeof lp, sub, "issuers");
    if (load_string_list(ld, issuers, lp, &acl->issuers, &acl->n_issuers))
        return ld->failed;
    json_t *mrtds = get_typed(ld, acl_v, sub, "mrtds", JSON_ARRAY, true);
    if (!mrtds)
        return ld->failed;
    join(lp, sizeof lp, sub, "mrtds");
    if (load_string_list(ld, mrtds, lp, &acl->mrtds, &acl->n_mrtds))
        return ld->failed;
    return load_tickets(ld, acl_v, sub, acl);
}

static int load_lattice(loader *ld, json_t *v, const char *path,
                        co_lattice_config *l)
{
    static const char *const keys[] = {"name", "chain_id", "stable_id",
                                       "fingerprints", NULL};
    static const char *const fkeys[] = {"zipnet", "unseal", "offer",
                                        "atelier", "relay", "tally", NULL};
    char sub[160];
    if (!json_is_object(v))
        return problem(ld, path, "wrong type: expected an object, found %s",
                       type_name(v));
    if (only_keys(ld, v, path, keys) ||
        get_string(ld, v, path, "name", true, &l->name) < 0 ||
        get_string(ld, v, path, "stable_id", false, &l->stable_id) < 0)
        return ld->failed;
    json_t *chain = json_object_get(v, "chain_id");
    join(sub, sizeof sub, path, "chain_id");
    if (chain && l->stable_id)
        return problem(ld, sub, "give chain_id or stable_id, not both");
    if (!chain && !l->stable_id)
        return problem(ld, path, "missing field \"chain_id\" (or "
                                 "\"stable_id\")");
    if (chain) {
        if (!json_is_integer(chain))
            return problem(ld, sub,
                           "wrong type: expected an integer, found %s",
                           type_name(chain));
        if (json_integer_value(chain) < 0)
            return problem(ld, sub, "a chain id is not negative");
        l->chain_id = (uint64_t)json_integer_value(chain);
    }
    json_t *fp = get_typed(ld, v, path, "fingerprints", JSON_OBJECT, false);
    if (ld->failed || !fp)
        return ld->failed;
    join(sub, sizeof sub, path, "fingerprints");
    if (only_keys(ld, fp, sub, fkeys))
        return ld->failed;
    const char **slot[] = {&l->organisms.zipnet,  &l->organisms.unseal,
                           &l->organisms.offer,   &l->organisms.atelier,
                           &l->organisms.relay,   &l->organisms.tally};
    for (int i = 0; i < 6; i++)
        if (get_string(ld, fp, sub, fkeys[i], true, slot[i]) < 0)
            return ld->failed;
    return 0;
}

static int load_organism(loader *ld, json_t *v, const char *path,
                         co_organism_ref *o)
{
    static const char *const keys[] = {"role", "instance", "network",
                                       "stable_id", "content_hash", NULL};
    char sub[160];
    if (!json_is_object(v))
        return problem(ld, path, "wrong type: expected an object, found %s",
                       type_name(v));
    if (only_keys(ld, v, path, keys) ||
        get_string(ld, v, path, "role", true, &o->role) < 0 ||
        get_string(ld, v, path, "instance", false, &o->instance) < 0 ||
        get_string(ld, v, path, "network", false, &o->network) < 0 ||
        get_string(ld, v, path, "stable_id", false, &o->stable_id) < 0 ||
        get_string(ld, v, path, "content_hash", false, &o->content_hash) < 0)
        return ld->failed;
    if (o->instance && o->stable_id) {
        join(sub, sizeof sub, path, "stable_id");
        return problem(ld, sub, "give instance or stable_id, not both");
    }
    if (!o->instance && !o->stable_id)
        return problem(ld, path, "missing field \"instance\" (or "
                                 "\"stable_id\")");
    if (o->network && !o->instance) {
        join(sub, sizeof sub, path, "network");
        return problem(ld, sub, "network only applies with instance");
    }
    return 0;
}

static const co_lattice_config *find_lattice(const co_coalition_config *c,
                                             const char *name)
{
    for (size_t i = 0; i < c->n_lattices; i++)
        if (strcmp(c->lattices[i]->name, name) == 0)
            return c->lattices[i];
    return NULL;
}

static const co_organism_ref *find_organism(const co_coalition_config *c,
                                            const char *name)
{
    for (size_t i = 0; i < c->n_organisms; i++)
        if (c->organisms[i]->instance &&
            strcmp(c->organisms[i]->instance, name) == 0)
            return c->organisms[i];
    return NULL;
}

static int load_ref(loader *ld, json_t *v, const char *path, bool lattice,
                    co_citizen_ref *r)
{
    static const char *const keys[] = {"stable_id", "content_hash", NULL};
    const co_coalition_config *c = &ld->f->cfg;
    if (json_is_string(v)) {
        const char *name = json_string_value(v);
        if (lattice)
            r->lattice = find_lattice(c, name);
        else
            r->organism = find_organism(c, name);
        if (r->lattice || r->organism)
            return 0;
        bool other = lattice ? find_organism(c, name) != NULL
                             : find_lattice(c, name) != NULL;
        if (other)
            return problem(ld, path,
                           "\"%s\" is %s, list it under \"%s\"", name,
                           lattice ? "an organism" : "a lattice",
                           lattice ? "organisms" : "lattices");
        return problem(ld, path,
                       "reference to an undeclared citizen: no %s named "
                       "\"%s\" in this file",
                       lattice ? "lattice" : "organism", name);
    }
    if (!json_is_object(v))
        return problem(ld, path,
                       "wrong type: expected a citizen name or an object "
                       "with stable_id, found %s",
                       type_name(v));
    if (only_keys(ld, v, path, keys) ||
        get_string(ld, v, path, "stable_id", true, &r->stable_id) < 0 ||
        get_string(ld, v, path, "content_hash", false, &r->content_hash) < 0)
        return ld->failed;
    return 0;
}

static int load_refs(loader *ld, json_t *obj, const char *path,
                     const char *key, const co_citizen_ref **out, size_t *n)
{
    char sub[160];
    json_t *arr = get_typed(ld, obj, path, key, JSON_ARRAY, false);
    if (ld->failed || !arr)
        return ld->failed;
    join(sub, sizeof sub, path, key);
    size_t count = json_array_size(arr);
    co_citizen_ref *refs = arena_alloc(ld->f, (count ? count : 1) *
                                                  sizeof *refs);
    if (!refs)
        return oom(ld);
    for (size_t i = 0; i < count; i++) {
        char item[160];
        snprintf(item, sizeof item, "%s[%zu]", sub, i);
        if (load_ref(ld, json_array_get(arr, i), item,
                     strcmp(key, "lattices") == 0, &refs[i]))
            return ld->failed;
    }
    *out = refs;
    *n = count;
    return 0;
}

static int load_confluence(loader *ld, json_t *v, const char *path,
                           co_confluence_config *cf)
{
    static const char *const keys[] = {"name", "lattices", "organisms",
                                       "content", "acl", NULL};
    if (!json_is_object(v))
        return problem(ld, path, "wrong type: expected an object, found %s",
                       type_name(v));
    if (only_keys(ld, v, path, keys) ||
        get_string(ld, v, path, "name", true, &cf->name) < 0 ||
        load_refs(ld, v, path, "lattices", &cf->lattices, &cf->n_lattices) ||
        load_refs(ld, v, path, "organisms", &cf->organisms,
                  &cf->n_organisms) ||
        get_string(ld, v, path, "content", true, &cf->content) < 0)
        return ld->failed;
    return load_acl(ld, v, path, &cf->acl);
}

static int load_issuer(loader *ld, json_t *v, co_ticket_issuer_config *t)
{
    static const char *const keys[] = {"name", "acl", NULL};
    const char *path = "ticket_issuer";
    if (!json_is_object(v))
        return problem(ld, path,
                       "wrong type: expected an object or null, found %s",
                       type_name(v));
    if (only_keys(ld, v, path, keys) ||
        get_string(ld, v, path, "name", true, &t->name) < 0)
        return ld->failed;
    return load_acl(ld, v, path, &t->acl);
}

/* Each top-level list is an array of pointers into the arena, as an
 * integrator's static const would be. Items are counted as they load so
 * that a confluence can refer to the citizens declared before it. */
#define LOAD_LIST(ld, root, key, type, loadfn, field, count)                  \
    do {                                                                      \
        json_t *arr_ = get_typed(ld, root, "", key, JSON_ARRAY, false);       \
        if ((ld)->failed || !arr_)                                            \
            break;                                                            \
        size_t n_ = json_array_size(arr_);                                    \
        const type **ptrs_ = arena_alloc((ld)->f, (n_ ? n_ : 1) *             \
                                                      sizeof *ptrs_);         \
        if (!ptrs_) {                                                         \
            oom(ld);                                                          \
            break;                                                            \
        }                                                                     \
        (field) = ptrs_;                                                      \
        for (size_t i_ = 0; i_ < n_; i_++) {                                  \
            char path_[160];                                                  \
            type *item_ = arena_alloc((ld)->f, sizeof *item_);                \
            if (!item_) {                                                     \
                oom(ld);                                                      \
                break;                                                        \
            }                                                                 \
            snprintf(path_, sizeof path_, "%s[%zu]", key, i_);                \
            ptrs_[i_] = item_;                                                \
            (count) = i_ + 1;                                                 \
            if (loadfn(ld, json_array_get(arr_, i_), path_, item_))           \
                break;                                                        \
        }                                                                     \
    } while (0)

static int load_root(loader *ld, json_t *root)
{
    static const char *const keys[] = {"name", "lattices", "organisms",
                                       "confluences", "ticket_issuer", NULL};
    co_coalition_config *c = &ld->f->cfg;
    if (!json_is_object(root))
        return problem(ld, "", "wrong type: a coalition config is a JSON "
                               "object, found %s",
                       type_name(root));
    if (only_keys(ld, root, "", keys) ||
        get_string(ld, root, "", "name", true, &c->name) < 0)
        return ld->failed;
    LOAD_LIST(ld, root, "lattices", co_lattice_config, load_lattice,
              c->lattices, c->n_lattices);
    if (ld->failed)
        return ld->failed;
    LOAD_LIST(ld, root, "organisms", co_organism_ref, load_organism,
              c->organisms, c->n_organisms);
    if (ld->failed)
        return ld->failed;
    LOAD_LIST(ld, root, "confluences", co_confluence_config, load_confluence,
              c->confluences, c->n_confluences);
    if (ld->failed)
        return ld->failed;
    json_t *issuer = json_object_get(root, "ticket_issuer");
    if (issuer && !json_is_null(issuer)) {
        co_ticket_issuer_config *t = arena_alloc(ld->f, sizeof *t);
        if (!t)
            return oom(ld);
        c->ticket_issuer = t;
        return load_issuer(ld, issuer, t);
    }
    return 0;
}

static void report(const char *source, const co__jsonpos *pos,
                   const co__diag *d, char *err)
{
    if (!err)
        return;
    int line = pos ? co__jsonpos_line(pos, d->path) : 1;
    if (d->path[0])
        snprintf(err, CO_ERRMSG_SIZE, "%s:%d: %s: %s", source, line, d->path,
                 d->what);
    else
        snprintf(err, CO_ERRMSG_SIZE, "%s:%d: %s", source, line, d->what);
}

int co_config_file_parse(const char *json, size_t len, const char *source,
                         co_config_file **out, char *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "%s:%d:%d: not valid JSON: %s",
                     source, je.line < 1 ? 1 : je.line,
                     je.column < 1 ? 1 : je.column, je.text);
        return CO_ECONFIG;
    }
    loader ld = {0};
    ld.f = calloc(1, sizeof *ld.f);
    if (!ld.f) {
        json_decref(root);
        return MK_ENOMEM;
    }
    int rc = load_root(&ld, root);
    json_decref(root);
    if (rc == 0)
        rc = co__coalition_check(&ld.f->cfg, &ld.d);
    if (rc < 0) {
        co__jsonpos *pos = co__jsonpos_scan(json, len);
        report(source, pos, &ld.d, err);
        co__jsonpos_free(pos);
        co_config_file_free(ld.f);
        return rc;
    }
    *out = ld.f;
    return 0;
}

int co_config_file_load(const char *path, co_config_file **out, char *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int rc = -errno;
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "%s: cannot open: %s", path,
                     mk_strerror(rc));
        return rc;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0)
            break;
        if (len > CO_CONFIG_MAX_BYTES) {
            rc = MK_EMSGSIZE;
            break;
        }
        if (len == cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    if (!buf)
        rc = MK_ENOMEM;
    else if (rc == 0 && ferror(fp))
        rc = MK_EIO;
    fclose(fp);
    if (rc < 0) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "%s: cannot read: %s", path,
                     rc == MK_EMSGSIZE ? "larger than 16 MiB"
                                       : mk_strerror(rc));
        free(buf);
        return rc;
    }
    rc = co_config_file_parse(buf, len, path, out, err);
    free(buf);
    return rc;
}
