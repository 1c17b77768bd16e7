/* Writing coalition configs as JSON (co_config_to_json, co_config_save).
 *
 * The output is the SPEC §3 shape with keys in a fixed order, so the same
 * config always writes the same bytes. Id-like fields are written as the
 * strings they were given (a name stays a name), which keeps published
 * files readable and makes load → write → load an identity.
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coalition/config_file.h"
#include "coalition/identity.h"

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *acl_json(const co_acl *acl)
{
    json_t *o = json_object(), *iss = json_array(), *mr = json_array();
    for (size_t i = 0; i < acl->n_issuers; i++)
        json_array_append_new(iss, json_string(acl->issuers[i]));
    for (size_t i = 0; i < acl->n_mrtds; i++)
        json_array_append_new(mr, json_string(acl->mrtds[i]));
    json_object_set_new(o, "issuers", iss);
    json_object_set_new(o, "mrtds", mr);
    const co_acl_tickets *t = acl->tickets;
    if (t) {
        json_t *to = json_object();
        json_object_set_new(to, "issuer", json_string(t->issuer));
        if (t->n_keys) {
            json_t *keys = json_array();
            for (size_t i = 0; i < t->n_keys; i++)
                json_array_append_new(keys, json_string(t->keys[i]));
            json_object_set_new(to, "keys", keys);
        }
        if (t->audience)
            json_object_set_new(to, "audience", json_string(t->audience));
        if (t->max_lifetime_s)
            json_object_set_new(to, "max_lifetime_s",
                                json_integer(t->max_lifetime_s));
        json_object_set_new(o, "tickets", to);
    }
    return o;
}

static json_t *lattice_json(const co_lattice_config *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(l->name));
    if (l->stable_id)
        json_object_set_new(o, "stable_id", json_string(l->stable_id));
    else
        json_object_set_new(o, "chain_id",
                            json_integer((json_int_t)l->chain_id));
    const co_lattice_organisms *f = &l->organisms;
    if (f->zipnet) {
        json_t *fp = json_object();
        json_object_set_new(fp, "zipnet", json_string(f->zipnet));
        json_object_set_new(fp, "unseal", json_string(f->unseal));
        json_object_set_new(fp, "offer", json_string(f->offer));
        json_object_set_new(fp, "atelier", json_string(f->atelier));
        json_object_set_new(fp, "relay", json_string(f->relay));
        json_object_set_new(fp, "tally", json_string(f->tally));
        json_object_set_new(o, "fingerprints", fp);
    }
    return o;
}

static json_t *organism_json(const co_organism_ref *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(r->role));
    if (r->instance)
        json_object_set_new(o, "instance", json_string(r->instance));
    if (r->network)
        json_object_set_new(o, "network", json_string(r->network));
    if (r->stable_id)
        json_object_set_new(o, "stable_id", json_string(r->stable_id));
    if (r->content_hash)
        json_object_set_new(o, "content_hash", json_string(r->content_hash));
    return o;
}

/* The name this file declares the referenced citizen under, when it
 * declares it (a confluence may span citizens the coalition does not). */
static const char *declared_name(const co_coalition_config *c,
                                 const co_citizen_ref *r)
{
    mk_id want, have;
    if (r->lattice) {
        if (co_lattice_stable_id(r->lattice, &want, NULL) < 0)
            return NULL;
        for (size_t i = 0; i < c->n_lattices; i++)
            if (co_lattice_stable_id(c->lattices[i], &have, NULL) == 0 &&
                mk_id_eq(&want, &have) &&
                strcmp(c->lattices[i]->name, r->lattice->name) == 0)
                return c->lattices[i]->name;
    } else if (r->organism && r->organism->instance) {
        if (co_organism_stable_id(r->organism, &want, NULL) < 0)
            return NULL;
        for (size_t i = 0; i < c->n_organisms; i++)
            if (c->organisms[i]->instance &&
                co_organism_stable_id(c->organisms[i], &have, NULL) == 0 &&
                mk_id_eq(&want, &have))
                return c->organisms[i]->instance;
    }
    return NULL;
}

static json_t *ref_json(const co_coalition_config *c, const co_citizen_ref *r)
{
    char hex[MK_ID_HEX_LEN + 1];
    json_t *o;
    if (r->stable_id) {
        o = json_object();
        json_object_set_new(o, "stable_id", json_string(r->stable_id));
        if (r->content_hash)
            json_object_set_new(o, "content_hash",
                                json_string(r->content_hash));
        return o;
    }
    const char *name = declared_name(c, r);
    if (name && !r->pin)
        return json_string(name);
    /* Not declared here, or pinned: the explicit form says the same. */
    mk_id stable, content;
    int has_content;
    if (r->lattice) {
        co_lattice_stable_id(r->lattice, &stable, NULL);
        has_content = co_lattice_content_hash(r->lattice, &content, NULL);
    } else {
        co_organism_stable_id(r->organism, &stable, NULL);
        has_content = co_organism_content_hash(r->organism, &content);
    }
    o = json_object();
    json_object_set_new(o, "stable_id", json_string(mk_id_hex(&stable, hex)));
    if (r->pin && has_content == 1)
        json_object_set_new(o, "content_hash",
                            json_string(mk_id_hex(&content, hex)));
    return o;
}

static json_t *confluence_json(const co_coalition_config *c,
                               const co_confluence_config *cf)
{
    json_t *o = json_object(), *lat = json_array(), *org = json_array();
    for (size_t i = 0; i < cf->n_lattices; i++)
        json_array_append_new(lat, ref_json(c, &cf->lattices[i]));
    for (size_t i = 0; i < cf->n_organisms; i++)
        json_array_append_new(org, ref_json(c, &cf->organisms[i]));
    json_object_set_new(o, "name", json_string(cf->name));
    json_object_set_new(o, "lattices", lat);
    json_object_set_new(o, "organisms", org);
    json_object_set_new(o, "content", str_or_null(cf->content));
    json_object_set_new(o, "acl", acl_json(&cf->acl));
    return o;
}

int co_config_to_json(const co_coalition_config *c, char **json, char *err)
{
    *json = NULL;
    int rc = co_coalition_validate(c, err);
    if (rc < 0)
        return rc;
    json_t *root = json_object(), *lat = json_array(), *org = json_array(),
           *conf = json_array();
    for (size_t i = 0; i < c->n_lattices; i++)
        json_array_append_new(lat, lattice_json(c->lattices[i]));
    for (size_t i = 0; i < c->n_organisms; i++)
        json_array_append_new(org, organism_json(c->organisms[i]));
    for (size_t i = 0; i < c->n_confluences; i++)
        json_array_append_new(conf, confluence_json(c, c->confluences[i]));
    json_object_set_new(root, "name", json_string(c->name));
    json_object_set_new(root, "lattices", lat);
    json_object_set_new(root, "organisms", org);
    json_object_set_new(root, "confluences", conf);
    if (c->ticket_issuer) {
        json_t *t = json_object();
        json_object_set_new(t, "name", json_string(c->ticket_issuer->name));
        json_object_set_new(t, "acl", acl_json(&c->ticket_issuer->acl));
        json_object_set_new(root, "ticket_issuer", t);
    } else {
        json_object_set_new(root, "ticket_issuer", json_null());
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!text) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "out of memory");
        return MK_ENOMEM;
    }
    /* Files end with a newline like every other text file. */
    size_t n = strlen(text);
    char *out = malloc(n + 2);
    if (!out) {
        free(text);
        return MK_ENOMEM;
    }
    memcpy(out, text, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    free(text);
    *json = out;
    return 0;
}

int co_config_save(const co_coalition_config *c, const char *path,
                   char *err)
{
    char *text;
    int rc = co_config_to_json(c, &text, err);
    if (rc < 0)
        return rc;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        free(text);
        return MK_ENOMEM;
    }
    snprintf(tmp, plen + 16, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    rc = fd < 0 ? -errno : 0;
    size_t len = strlen(text), done = 0;
    while (rc == 0 && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno != EINTR)
            rc = -errno;
        else if (w > 0)
            done += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        if (err)
            snprintf(err, CO_ERRMSG_SIZE, "%s: cannot write: %s", path,
                     mk_strerror(rc));
    }
    free(tmp);
    free(text);
    return rc;
}
