/* `coalition id FILE [--json]`: every fingerprint a coalition config
 * derives, for integrators to compare with what an operator published. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coalition/config_file.h"
#include "coalition/identity.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: coalition id FILE [--json]\n"
            "\n"
            "Loads the coalition config FILE (JSON, SPEC section 3),\n"
            "validates it and prints every id derived from it: the\n"
            "COALITION seed and coalition_id, each citizen's stable and\n"
            "citizen id, each confluence's fingerprint and committee,\n"
            "module roots and the tickets root.\n"
            "\n"
            "  --json   print one JSON object with exactly the keys\n"
            "           coalition, coalition_id, lattices, organisms,\n"
            "           confluences, modules, tickets_root\n"
            "  --help   this text\n"
            "\n"
            "A bad config exits 2 with the file, line, key path and the\n"
            "problem on stderr, and prints nothing on stdout.\n");
}

typedef struct derived {
    const co_coalition_config *c;
    mk_id seed, root;
    int has_tickets;
    mk_id tickets;
} derived;

static const char *hex(const mk_id *id, char buf[MK_ID_HEX_LEN + 1])
{
    return mk_id_hex(id, buf);
}

static const char *citizen_hex(const mk_id *stable, char buf[41])
{
    co_citizen_id cid;
    co_citizen_id_of(stable, &cid);
    mk_hex_encode(cid.b, sizeof cid.b, buf);
    return buf;
}

static json_t *id_json(const mk_id *id)
{
    char buf[MK_ID_HEX_LEN + 1];
    return json_string(mk_id_hex(id, buf));
}

static int print_json(const derived *d)
{
    const co_coalition_config *c = d->c;
    char cid[41];
    json_t *o = json_object(), *lat = json_array(), *org = json_array(),
           *conf = json_array(), *mods = json_object();
    json_object_set_new(o, "coalition", id_json(&d->seed));
    json_object_set_new(o, "coalition_id", id_json(&d->root));
    for (size_t i = 0; i < c->n_lattices; i++) {
        mk_id s;
        co_lattice_stable_id(c->lattices[i], &s, NULL);
        json_t *l = json_object();
        json_object_set_new(l, "name", json_string(c->lattices[i]->name));
        json_object_set_new(l, "stable_id", id_json(&s));
        json_object_set_new(l, "citizen_id", json_string(citizen_hex(&s, cid)));
        json_array_append_new(lat, l);
    }
    for (size_t i = 0; i < c->n_organisms; i++) {
        const co_organism_ref *r = c->organisms[i];
        mk_id s, ch;
        co_organism_stable_id(r, &s, NULL);
        json_t *l = json_object();
        json_object_set_new(l, "role", json_string(r->role));
        if (r->instance)
            json_object_set_new(l, "instance", json_string(r->instance));
        json_object_set_new(l, "stable_id", id_json(&s));
        json_object_set_new(l, "content_hash",
                            co_organism_content_hash(r, &ch) ? id_json(&ch)
                                                             : json_null());
        json_object_set_new(l, "citizen_id", json_string(citizen_hex(&s, cid)));
        json_array_append_new(org, l);
    }
    for (size_t i = 0; i < c->n_confluences; i++) {
        const co_confluence_config *cf = c->confluences[i];
        mk_id fp, committee, mroot;
        co_confluence_fingerprint(cf, &fp, NULL);
        co_confluence_committee(cf, &committee, NULL);
        int kind = co_module_kind_of(cf->name);
        json_t *l = json_object();
        json_object_set_new(l, "name", json_string(cf->name));
        json_object_set_new(l, "fingerprint", id_json(&fp));
        json_object_set_new(l, "committee", id_json(&committee));
        json_object_set_new(l, "module", json_boolean(kind >= 0));
        json_object_set_new(
            l, "module_root",
            kind >= 0 && co_module_root(c, (co_module_kind)kind, &mroot,
                                        NULL) == 0
                ? id_json(&mroot)
                : json_null());
        json_array_append_new(conf, l);
    }
    for (int k = 0; k < CO_MODULE_COUNT; k++) {
        mk_id m;
        json_object_set_new(mods, co_module_name((co_module_kind)k),
                            co_module_root(c, (co_module_kind)k, &m, NULL) == 0
                                ? id_json(&m)
                                : json_null());
    }
    json_object_set_new(o, "lattices", lat);
    json_object_set_new(o, "organisms", org);
    json_object_set_new(o, "confluences", conf);
    json_object_set_new(o, "modules", mods);
    json_object_set_new(o, "tickets_root",
                        d->has_tickets ? id_json(&d->tickets) : json_null());
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!text)
        return cli_error(CLI_FAIL, "out of memory");
    puts(text);
    free(text);
    return CLI_OK;
}

static int width_of(size_t n, const char *(*name)(const co_coalition_config *,
                                                  size_t),
                    const co_coalition_config *c, int min)
{
    int w = min;
    for (size_t i = 0; i < n; i++) {
        int len = (int)strlen(name(c, i));
        if (len > w)
            w = len;
    }
    return w;
}

static const char *lattice_name(const co_coalition_config *c, size_t i)
{
    return c->lattices[i]->name;
}

static const char *organism_name(const co_coalition_config *c, size_t i)
{
    const co_organism_ref *r = c->organisms[i];
    return r->instance ? r->instance : "-";
}

static const char *confluence_name(const co_coalition_config *c, size_t i)
{
    return c->confluences[i]->name;
}

static void print_table(const derived *d)
{
    const co_coalition_config *c = d->c;
    char a[MK_ID_HEX_LEN + 1], b[MK_ID_HEX_LEN + 1], e[MK_ID_HEX_LEN + 1];
    char cid[41];
    printf("coalition     %s\n", c->name);
    printf("COALITION     %s\n", hex(&d->seed, a));
    printf("coalition_id  %s\n", hex(&d->root, a));
    printf("tickets_root  %s\n", d->has_tickets ? hex(&d->tickets, a) : "-");

    int w = width_of(c->n_lattices, lattice_name, c, 7);
    printf("\n%-*s  %-64s  %s\n", w, "LATTICE", "STABLE ID", "CITIZEN ID");
    for (size_t i = 0; i < c->n_lattices; i++) {
        mk_id s;
        co_lattice_stable_id(c->lattices[i], &s, NULL);
        printf("%-*s  %s  %s\n", w, c->lattices[i]->name, hex(&s, a),
               citizen_hex(&s, cid));
    }
    if (c->n_lattices == 0)
        printf("(none)\n");

    w = width_of(c->n_organisms, organism_name, c, 8);
    printf("\n%-*s  %-10s  %-64s  %-40s  %s\n", w, "ORGANISM", "ROLE",
           "STABLE ID", "CITIZEN ID", "CONTENT HASH");
    for (size_t i = 0; i < c->n_organisms; i++) {
        const co_organism_ref *r = c->organisms[i];
        mk_id s, ch;
        co_organism_stable_id(r, &s, NULL);
        int has = co_organism_content_hash(r, &ch);
        printf("%-*s  %-10s  %s  %s  %s\n", w, organism_name(c, i), r->role,
               hex(&s, a), citizen_hex(&s, cid), has ? hex(&ch, b) : "-");
    }
    if (c->n_organisms == 0)
        printf("(none)\n");

    w = width_of(c->n_confluences, confluence_name, c, 10);
    printf("\n%-*s  %-64s  %-64s  %s\n", w, "CONFLUENCE", "FINGERPRINT",
           "COMMITTEE", "MODULE ROOT");
    for (size_t i = 0; i < c->n_confluences; i++) {
        const co_confluence_config *cf = c->confluences[i];
        mk_id fp, committee, mroot;
        co_confluence_fingerprint(cf, &fp, NULL);
        co_confluence_committee(cf, &committee, NULL);
        int kind = co_module_kind_of(cf->name);
        printf("%-*s  %s  %s  %s\n", w, cf->name, hex(&fp, a),
               hex(&committee, b),
               kind >= 0 && co_module_root(c, (co_module_kind)kind, &mroot,
                                           NULL) == 0
                   ? hex(&mroot, e)
                   : "-");
    }
    if (c->n_confluences == 0)
        printf("(none)\n");

    printf("\nMODULE     ROOT\n");
    for (int k = 0; k < CO_MODULE_COUNT; k++) {
        mk_id m;
        printf("%-9s  %s\n", co_module_name((co_module_kind)k),
               co_module_root(c, (co_module_kind)k, &m, NULL) == 0
                   ? hex(&m, a)
                   : "- (not shipped)");
    }
}

int cmd_id(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return CLI_USAGE;
    }

    char err[CO_ERRMSG_SIZE];
    co_config_file *f;
    if (co_config_file_load(argv[optind], &f, err) < 0)
        return cli_error(CLI_USAGE, "%s", err);

    derived d = {.c = co_config_file_coalition(f)};
    co_coalition_seed(d.c, &d.seed);
    int rc = co_coalition_id(d.c, &d.root, err);
    if (rc == 0) {
        rc = co_tickets_root(d.c, &d.tickets, NULL);
        d.has_tickets = rc == 0;
        rc = 0;
    }
    if (rc < 0) {
        co_config_file_free(f);
        return cli_error(CLI_USAGE, "%s: %s", argv[optind], err);
    }
    if (json)
        rc = print_json(&d);
    else
        print_table(&d), rc = CLI_OK;
    co_config_file_free(f);
    return rc;
}
