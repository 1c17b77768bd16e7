/* `coalition atlas list|publish`: read the coalition's directory of
 * citizen cards, or publish one as a committee member. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coalition/atlas.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "session.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: coalition atlas list    --coalition FILE --bootstrap P@H:P\n"
        "                               [--timeout S] [--json]\n"
        "       coalition atlas publish --coalition FILE --bootstrap P@H:P\n"
        "                               --key FILE --citizen NAME|ID\n"
        "                               --role ROLE [--hint HOST:PORT]...\n"
        "                               [--issuance-root ID] [--mrtd HEX]...\n"
        "       coalition atlas retire  --key FILE --reason TEXT ... (--help)\n"
        "\n"
        "list: the Atlas's cards, each marked verified when a majority of\n"
        "the Atlas committee (the module's acl.issuers) signed it.\n"
        "publish: puts a card in the Atlas; --key must be a committee\n"
        "member's key. NAME is a lattice or organism of the coalition file;\n"
        "any other string is an id (64 hex, or hashed).\n"
        "\n"
        "Exit status 3 when no Atlas member answered before the timeout:\n"
        "check the coalition file (a wrong name, order or citizen derives\n"
        "another Atlas).\n");
}

typedef struct list_run {
    session s;
    int status;
    bool json;
} list_run;

static void on_list(co_atlas_reader *r, int status, void *data)
{
    list_run *l = data;
    l->status = status;
    if (status == 0 || status == CO_ERETIRED)
        l->s.done = true;
}

/* The coalition's own name for a citizen id, when it declares it. */
static const char *name_of(const co_coalition_config *c, const mk_id *id)
{
    mk_id s;
    for (size_t i = 0; i < c->n_lattices; i++)
        if (co_lattice_stable_id(c->lattices[i], &s, NULL) == 0 &&
            mk_id_eq(&s, id))
            return c->lattices[i]->name;
    for (size_t i = 0; i < c->n_organisms; i++)
        if (co_organism_stable_id(c->organisms[i], &s, NULL) == 0 &&
            mk_id_eq(&s, id))
            return c->organisms[i]->instance ? c->organisms[i]->instance
                                             : c->organisms[i]->role;
    return NULL;
}

typedef struct printer {
    const co_coalition_config *c;
    json_t *arr;
} printer;

static bool print_card(const co_card *card, bool verified, void *data)
{
    printer *p = data;
    char hex[MK_ID_HEX_LEN + 1], root[MK_ID_HEX_LEN + 1];
    const co_citizen_card *c = &card->card;
    const char *name = name_of(p->c, &c->citizen_id);
    mk_id_hex(&c->citizen_id, hex);
    if (p->arr) {
        json_t *o = json_object(), *hints = json_array();
        for (size_t i = 0; i < c->n_endpoint_hints; i++)
            json_array_append_new(hints, json_string(c->endpoint_hints[i]));
        json_object_set_new(o, "citizen_id", json_string(hex));
        json_object_set_new(o, "name", name ? json_string(name) : json_null());
        json_object_set_new(o, "role", json_string(c->role));
        json_object_set_new(o, "endpoint_hints", hints);
        json_object_set_new(o, "ticket_issuance_root",
                            json_string(mk_id_hex(&c->ticket_issuance_root,
                                                  root)));
        json_object_set_new(o, "mrtd_pins",
                            json_integer((json_int_t)c->n_mrtd_pins));
        json_object_set_new(o, "schema_version",
                            json_integer(c->schema_version));
        json_object_set_new(o, "verified", json_boolean(verified));
        json_array_append_new(p->arr, o);
        return true;
    }
    printf("%-10s  %-20s  %-10s  %s  %s\n", verified ? "verified" : "UNSIGNED",
           name ? name : "-", c->role, hex,
           c->n_endpoint_hints ? c->endpoint_hints[0] : "-");
    return true;
}

static int atlas_list(session_opts *o)
{
    list_run l = {.status = 1, .json = o->json};
    int rc = session_open(&l.s, o, true, false);
    if (rc)
        return rc;
    char err[CO_ERRMSG_SIZE];
    co_atlas_reader *r;
    rc = co_atlas_read(l.s.node, l.s.coalition, (uint32_t)(l.s.deadline -
                                                           mk_mono_ms()),
                       on_list, &l, &r, err);
    if (rc < 0) {
        session_close(&l.s);
        return cli_error(rc == CO_ENOTSHIPPED || rc == CO_ECONFIG ? CLI_USAGE
                                                                  : CLI_FAIL,
                         "%s", rc == CO_ENOTSHIPPED
                                   ? "the coalition ships no Atlas"
                                   : err);
    }
    session_run(&l.s);
    int exit = CLI_OK;
    if (!l.s.done) {
        exit = cli_error(CLI_TIMEOUT,
                         "no Atlas member answered (ConnectTimeout)");
    } else {
        printer p = {.c = l.s.coalition, .arr = o->json ? json_array() : NULL};
        if (!o->json)
            printf("%-10s  %-20s  %-10s  %-64s  %s\n", "STATUS", "CITIZEN",
                   "ROLE", "CITIZEN ID", "ENDPOINT");
        co_atlas_foreach(r, print_card, &p);
        if (p.arr) {
            char *text = json_dumps(p.arr, JSON_INDENT(2));
            puts(text ? text : "[]");
            free(text);
            json_decref(p.arr);
        }
        co_retirement ret;
        co_atlas_retirement(r, &ret);
        if (ret.retired)
            fprintf(stderr, "coalition: the Atlas retired: %s\n", ret.reason);
    }
    co_atlas_close(r, NULL, NULL);
    session_close(&l.s);
    return exit;
}

typedef struct publish_run {
    session s;
    int status;
} publish_run;

static void on_published(int status, void *data)
{
    publish_run *p = data;
    p->status = status;
    p->s.done = true;
}

/* --citizen NAME|ID: a declared citizen's stable id, or an id string. */
static void citizen_of(const co_coalition_config *c, const char *arg,
                       mk_id *out)
{
    for (size_t i = 0; i < c->n_lattices; i++)
        if (strcmp(c->lattices[i]->name, arg) == 0 &&
            co_lattice_stable_id(c->lattices[i], out, NULL) == 0)
            return;
    for (size_t i = 0; i < c->n_organisms; i++)
        if (c->organisms[i]->instance &&
            strcmp(c->organisms[i]->instance, arg) == 0 &&
            co_organism_stable_id(c->organisms[i], out, NULL) == 0)
            return;
    mk_id_from_str(out, arg);
}

#define MAX_ITEMS 16

static int atlas_publish(session_opts *o, const char *citizen,
                         const char *role, const char *const *hints,
                         size_t n_hints, const char *root,
                         uint8_t (*pins)[CO_MRTD_LEN], size_t n_pins)
{
    if (!citizen || !role)
        return cli_error(CLI_USAGE, "--citizen and --role are required");
    publish_run p = {.status = 1};
    int rc = session_open(&p.s, o, true, true);
    if (rc)
        return rc;
    co_citizen_card card = {
        .role = role,
        .endpoint_hints = hints,
        .n_endpoint_hints = n_hints,
        .mrtd_pins = (const uint8_t(*)[CO_MRTD_LEN])pins,
        .n_mrtd_pins = n_pins,
        .schema_version = CO_CARD_SCHEMA_VERSION,
    };
    citizen_of(p.s.coalition, citizen, &card.citizen_id);
    if (root)
        mk_id_from_str(&card.ticket_issuance_root, root);
    char err[CO_ERRMSG_SIZE];
    rc = co_atlas_publish(p.s.node, p.s.coalition, &card, &p.s.key,
                          (uint32_t)(p.s.deadline - mk_mono_ms()),
                          on_published, &p, err);
    if (rc < 0) {
        session_close(&p.s);
        return cli_error(CLI_USAGE, "%s", err);
    }
    session_run(&p.s);
    int exit = CLI_OK;
    if (!p.s.done || p.status == MK_ECONNECT_TIMEOUT)
        exit = cli_error(CLI_TIMEOUT,
                         "no Atlas member answered (ConnectTimeout)");
    else if (p.status == CO_ECONFIG)
        exit = cli_error(CLI_FAIL, "the Atlas refused the card (is --key a "
                                   "committee member's? is it retired?)");
    else if (p.status < 0)
        exit = cli_error(CLI_FAIL, "publish failed: %s",
                         co_strerror(p.status));
    else
        printf("published %s card for %s\n", role, citizen);
    session_close(&p.s);
    return exit;
}

int cmd_atlas(int argc, char **argv)
{
    enum { O_CITIZEN = 1, O_ROLE, O_HINT, O_ROOT, O_MRTD };
    static const struct option opts[] = {
        SESSION_LONGOPTS,
        {"citizen", required_argument, NULL, O_CITIZEN},
        {"role", required_argument, NULL, O_ROLE},
        {"hint", required_argument, NULL, O_HINT},
        {"issuance-root", required_argument, NULL, O_ROOT},
        {"mrtd", required_argument, NULL, O_MRTD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "retire") == 0) /* cmd_retire.c */
        return cmd_retire("atlas", argc - 1, argv + 1);
    session_opts o = {0};
    const char *citizen = NULL, *role = NULL, *root = NULL;
    const char *hints[MAX_ITEMS];
    uint8_t pins[MAX_ITEMS][CO_MRTD_LEN];
    size_t n_hints = 0, n_pins = 0;
    int ch, r;
    optind = 1;
    while ((ch = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        if ((r = session_opt(&o, ch, optarg)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            continue;
        }
        switch (ch) {
        case O_CITIZEN: citizen = optarg; break;
        case O_ROLE: role = optarg; break;
        case O_ROOT: root = optarg; break;
        case O_HINT:
            if (n_hints == MAX_ITEMS)
                return cli_error(CLI_USAGE, "at most %d --hint", MAX_ITEMS);
            hints[n_hints++] = optarg;
            break;
        case O_MRTD:
            if (n_pins == MAX_ITEMS ||
                mk_hex_decode(pins[n_pins], CO_MRTD_LEN, optarg,
                              strlen(optarg)) != 0)
                return cli_error(CLI_USAGE,
                                 "--mrtd '%s': an MR_TD is 96 hex characters",
                                 optarg);
            n_pins++;
            break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (strcmp(verb, "list") == 0)
        return atlas_list(&o);
    if (strcmp(verb, "publish") == 0)
        return atlas_publish(&o, citizen, role, hints, n_hints, root, pins,
                             n_pins);
    usage(stderr);
    return cli_error(CLI_USAGE, "unknown atlas command '%s'", verb);
}
