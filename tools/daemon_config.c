/* Reading a node config once (daemon_config.h). */
#include "daemon_config.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"

int daemon_config_only_keys(json_t *o, const char *const *known,
                            const char *where, char *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i = 0;
        while (known[i] && strcmp(known[i], k) != 0)
            i++;
        if (known[i])
            continue;
        char list[256] = "";
        for (i = 0; known[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     i ? ", " : "", known[i]);
        return mk_errf(err, -1, "%s: unknown key \"%s\" (known: %s)", where, k,
                       list);
    }
    return 0;
}

/* The fields below the top level are judged by their readers; this
 * checks what is whole at this level and resolves "coalition". */
static int fill(daemon_config *c, char *err)
{
    static const char *const KEYS[] = {"groups", "coalition", "ticket_issuer",
                                       "metrics", NULL};
    json_t *root = c->root;
    if (!json_is_object(root))
        return mk_errf(err, -1, "%s: a node config is a JSON object", c->path);
    if (daemon_config_only_keys(root, KEYS, c->path, err) != 0)
        return -1;
    json_t *g = json_object_get(root, "groups");
    if (g && !json_is_array(g))
        return mk_errf(err, -1, "%s: \"groups\" must be an array", c->path);
    c->groups = g;
    json_t *t = json_object_get(root, "ticket_issuer");
    if (t && !json_is_null(t) && !json_is_object(t))
        return mk_errf(err, -1, "%s: \"ticket_issuer\" must be an object",
                       c->path);
    c->ticket_issuer = json_is_object(t) ? t : NULL;
    json_t *m = json_object_get(root, "metrics");
    if (m && !json_is_boolean(m))
        return mk_errf(err, -1, "%s: \"metrics\" must be true or false",
                       c->path);
    c->metrics_off = json_is_false(m);
    json_t *co = json_object_get(root, "coalition");
    if (co && !json_is_string(co))
        return mk_errf(err, -1, "%s: \"coalition\" must be a file path",
                       c->path);
    if (co) {
        const char *p = json_string_value(co);
        char dir[sizeof c->path];
        snprintf(dir, sizeof dir, "%s", c->path);
        snprintf(c->coalition, sizeof c->coalition, "%s%s%s",
                 p[0] == '/' ? "" : dirname(dir), p[0] == '/' ? "" : "/", p);
    }
    return 0;
}

int daemon_config_load(const char *path, daemon_config **out, char *err)
{
    *out = NULL;
    daemon_config *c = calloc(1, sizeof *c);
    if (!c)
        return mk_errf(err, -1, "out of memory");
    if (strlen(path) >= sizeof c->path) {
        free(c);
        return mk_errf(err, -1, "%s: path too long", path);
    }
    strcpy(c->path, path);
    json_error_t je;
    c->root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!c->root) {
        free(c);
        return mk_errf(err, -1, "%s:%d: %s", path, je.line, je.text);
    }
    if (fill(c, err) != 0) {
        daemon_config_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void daemon_config_free(daemon_config *c)
{
    if (!c)
        return;
    json_decref(c->root);
    free(c);
}
