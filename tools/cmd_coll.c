/* `coalition map|set|vec|cell|once|pq VERB`: a collection group driven
 * from the shell (coll_cli.h has the map of files).
 *
 * The group is named as `coalition group` names it (--group ID, or the
 * node config and group name coalitiond reads), and is reached the same
 * way: an ephemeral node and a group client, which retries a command
 * with the same session and sequence number until it is answered, so
 * every write here is applied at most once. Reads are strong (the leader
 * answers after a barrier) unless --weak asks a member's own state.
 *
 * A PriorityQueue has no pop command: pop-min reads the minimum and then
 * removes that key only if its value is still the one read (cas_value),
 * trying again when another client got there first; so two concurrent
 * pops never both take the same entry.
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coll_cli.h"
#include "daemon_groups.h"
#include "mosaik/error.h"
#include "util.h"

/* How many times pop tries to claim an entry before giving up: each
 * failure means another client took the entry it read first. */
#define POP_TRIES 32

static void usage(FILE *out, const coll_kind_def *k)
{
    fprintf(out, "usage:");
    for (size_t i = 0; i < k->n_verbs; i++)
        fprintf(out, "%s coalition %s %s TARGET%s%s\n", i ? "      " : "",
                k->name, k->verbs[i].name, *k->verbs[i].usage ? " " : "",
                k->verbs[i].usage);
    fprintf(out, "       coalition %s TARGET --stdin [--window N]\n", k->name);
    fprintf(out,
            "\n"
            "TARGET is --bootstrap PEERID@HOST:PORT (repeatable) and either\n"
            "--group GROUPID or --config NODE.json --name NAME (the config\n"
            "coalitiond runs the group from; the group must be a %s); plus\n"
            "[--network ID] [--timeout D] (default 10s) and [--via PEERID]\n"
            "to send everything through that member.\n"
            "\n"
            "Keys and values are taken as given (UTF-8 text); with --hex\n"
            "they are given and printed as hex.\n"
            "\n"
            "Output: writes print OK (del, remove, clear: how many items\n"
            "went); get prints the value; list prints one item per line,\n"
            "fields separated by tabs. With --json every result is one\n"
            "JSON object on its own line, and list prints JSON lines (one\n"
            "object per item, no enclosing array). A key or value that is\n"
            "not UTF-8 comes as \"<field>_hex\".\n"
            "\n"
            "Reads (get, has, len, list, peek) ask the leader after a\n"
            "barrier; --weak asks one member's state (with --via, that\n"
            "one). list reads pages of up to 4096 items, each page on its\n"
            "own (not one snapshot); --limit N stops after N items and\n"
            "--after KEY (map, set) or --start INDEX (vec) starts later.\n"
            "\n"
            "--stdin runs one write per line, \"VERB ARGS\" (e.g. \"put KEY\n"
            "VALUE\", \"del KEY\"; after `coalition %s VERB --stdin` lines\n"
            "hold only the arguments); the last argument is the rest of the\n"
            "line, empty lines are skipped. It keeps up to N (default 64)\n"
            "in flight through one client and prints one JSON line per\n"
            "result, in input order, with its \"line\" number. A malformed\n"
            "line stops the batch: the lines before it still finish and\n"
            "are printed, and the exit status is 2. stdin may be a pipe, a\n"
            "file or /dev/null.\n"
            "\n"
            "watch follows the group with a replica and prints each change\n"
            "as it is applied (\"put\"/\"del\", \"add\"/\"remove\",\n"
            "\"insert\"/\"remove\" with the index, \"set\"/\"clear\"), from the\n"
            "moment it has caught up (it then says \"watching\" on stderr),\n"
            "until Ctrl-C or --count N changes. A pq watch needs the\n"
            "queue's capacity: from --config, or --capacity N with --group.\n"
            "\n"
            "Exit status: 0 ok; 1 the answer is no (not found, empty, once\n"
            "already set, a failed command); 2 bad usage or input; 3 nothing\n"
            "answered before the deadline.\n",
            k->name, k->name);
}

/* ---- the target group ------------------------------------------------------ */

typedef struct target {
    const char *group, *config, *name, *via;
} target;

static int resolve(coll_run *r, const target *t)
{
    const coll_kind_def *k = r->out.k;
    if (t->group && !t->config && !t->name) {
        if (mk_id_from_hex(&r->gid, t->group, strlen(t->group)) != 0)
            return cli_error(CLI_USAGE, "--group: '%s' is not 64 hex",
                             t->group);
        return 0;
    }
    if (!t->config || !t->name || t->group)
        return cli_error(CLI_USAGE,
                         "name the group with --group ID, or with --config "
                         "FILE --name NAME");
    daemon_config *cfg;
    daemon_groups *dg;
    char err[MK_ERRMSG_SIZE];
    const char *kind = NULL;
    if (daemon_config_load(t->config, &cfg, err) != 0)
        return cli_error(CLI_USAGE, "--config: %s", err);
    int loaded = daemon_groups_load(cfg, &dg, err);
    daemon_config_free(cfg);
    if (loaded != 0)
        return cli_error(CLI_USAGE, "--config: %s", err);
    bool found = daemon_groups_find(dg, t->name, &r->gid, &kind);
    int rc = CLI_OK;
    if (!found)
        rc = cli_error(CLI_USAGE, "--config %s has no group \"%s\"",
                       t->config, t->name);
    else if (strcmp(kind, k->name) != 0)
        rc = cli_error(CLI_USAGE, "group \"%s\" in %s is a %s, not a %s",
                       t->name, t->config, kind, k->name);
    if (rc == CLI_OK && k->kind == COLL_PQ && !r->have_capacity) {
        r->capacity = daemon_groups_capacity(dg, t->name);
        r->have_capacity = true;
    }
    daemon_groups_free(dg);
    return rc;
}

/* ---- one request at a time ------------------------------------------------- */

typedef struct answer {
    coll_run *r;
    bool done;
    int status;
    uint64_t applied;
    uint8_t *res;
    size_t len;
} answer;

static void on_answer(int status, uint64_t applied, const uint8_t *res,
                      size_t len, void *data)
{
    answer *a = data;
    a->status = status;
    a->applied = applied;
    free(a->res);
    a->res = NULL;
    a->len = 0;
    if (len && (a->res = malloc(len))) {
        memcpy(a->res, res, len);
        a->len = len;
    } else if (len) {
        a->status = MK_ENOMEM;
    }
    a->done = true;
}

/* Sends `req` as a command (`query` false) or a query, and waits for the
 * answer. The group client keeps its own deadline, so this returns. */
static int ask(coll_run *r, const mk_buf *req, bool query,
               mk_consistency level, answer *a)
{
    a->r = r;
    a->done = false;
    int rc = query ? mk_group_client_query(r->client, req->data, req->len,
                                           level, r->timeout_ms, on_answer, a)
                   : mk_group_client_execute(r->client, req->data, req->len,
                                             r->timeout_ms, on_answer, a);
    if (rc != 0) {
        a->status = rc;
        return rc;
    }
    while (!a->done)
        uv_run(&r->s.loop, UV_RUN_ONCE);
    return a->status;
}

/* Prints why a request failed; the exit status. */
static int failed(const coll_run *r, const coll_verb *v, int status)
{
    if (r->out.json)
        coll_print_json(coll_outcome_json(&r->out, v, status, 0, NULL, 0, 0));
    if (status == MK_EDECODE)
        return cli_error(CLI_FAIL,
                         "%s: the group refused it as malformed; is it a %s "
                         "group?",
                         v->name, r->out.k->name);
    return cli_error(coll_exit_of(status), "%s: %s", v->name,
                     mk_strerror(status));
}

static int run_write(coll_run *r, const coll_verb *v, const coll_args *args)
{
    mk_buf req;
    answer a = {0};
    mk_buf_init(&req);
    int rc = v->encode(&req, args);
    if (rc == 0)
        rc = ask(r, &req, false, MK_STRONG, &a);
    mk_buf_free(&req);
    if (rc != 0) {
        free(a.res);
        return failed(r, v, rc);
    }
    mk_coll_outcome oc;
    int exit = CLI_OK;
    if (mk_coll_outcome_decode(a.res, a.len, &oc) != 0) {
        free(a.res);
        return cli_error(CLI_FAIL, "%s: the outcome did not decode", v->name);
    }
    if (r->out.json)
        coll_print_json(
            coll_outcome_json(&r->out, v, 0, a.applied, a.res, a.len, 0));
    switch (v->said) {
    case SAY_OK:
        if (!r->out.json)
            puts("OK");
        break;
    case SAY_COUNT:
        if (!r->out.json)
            printf("%llu\n", (unsigned long long)oc.changed);
        break;
    case SAY_ITEM:
        if (!oc.has_item)
            exit = cli_error(CLI_FAIL, "the %s is empty", r->out.k->name);
        else if (!r->out.json)
            coll_print_item(&r->out, NULL, &oc.item, 0,
                            r->out.k->fields & ~COLL_F_INDEX);
        break;
    case SAY_TOOK:
    case SAY_INDEX:
        if (oc.changed == 0 && v->said == SAY_TOOK)
            exit = cli_error(CLI_FAIL, "the %s already holds a value",
                             r->out.k->name);
        else if (oc.changed == 0)
            exit = cli_error(CLI_FAIL, "no element at index %llu",
                             (unsigned long long)args->index);
        else if (!r->out.json)
            puts("OK");
        break;
    }
    fflush(stdout);
    free(a.res);
    return exit;
}

static int run_read(coll_run *r, const coll_verb *v, const coll_args *args,
                    mk_consistency level)
{
    mk_buf req;
    answer a = {0};
    mk_buf_init(&req);
    int rc = v->encode(&req, args);
    if (rc == 0)
        rc = ask(r, &req, true, level, &a);
    mk_buf_free(&req);
    if (rc != 0) {
        free(a.res);
        return failed(r, v, rc);
    }
    int exit = CLI_OK;
    uint64_t n;
    bool found;
    mk_coll_item it;
    if (v->cls == VERB_LEN) {
        if (mk_coll_reply_len(a.res, a.len, &n) != 0)
            goto bad;
        if (r->out.json) {
            json_t *j = json_object();
            json_object_set_new(j, "len", json_integer((json_int_t)n));
            coll_print_json(j);
        } else {
            printf("%llu\n", (unsigned long long)n);
        }
    } else {
        if (mk_coll_reply_item(a.res, a.len, &found, &it) != 0)
            goto bad;
        if (r->out.json) {
            json_t *j = json_object();
            json_object_set_new(j, "found", json_boolean(found));
            if (found && v->cls == VERB_GET) {
                if (v->args & COLL_F_INDEX)
                    json_object_set_new(j, "index",
                                        json_integer((json_int_t)args->index));
                if (r->out.k->fields & COLL_F_PRIO)
                    coll_json_bytes(&r->out, j, "prio", it.prio, it.prio_len);
                if (r->out.k->fields & COLL_F_KEY)
                    coll_json_bytes(&r->out, j, r->out.k->key_name, it.key,
                                    it.key_len);
                coll_json_bytes(&r->out, j, "value", it.val, it.val_len);
            }
            coll_print_json(j);
        } else if (v->cls == VERB_HAS) {
            puts(found ? "true" : "false");
        } else if (found) {
            /* The fields the command line did not already give. */
            coll_print_item(&r->out, NULL, &it, 0,
                            r->out.k->fields & ~v->args & ~COLL_F_INDEX);
        }
        if (!found)
            exit = v->cls == VERB_HAS ? CLI_FAIL
                   : v->args          ? cli_error(CLI_FAIL, "not found")
                                      : cli_error(CLI_FAIL, "the %s is empty",
                                                  r->out.k->name);
    }
    fflush(stdout);
    free(a.res);
    return exit;
bad:
    free(a.res);
    return cli_error(CLI_FAIL, "%s: the reply did not decode", v->name);
}

/* ---- list ------------------------------------------------------------------- */

typedef struct lister {
    coll_run *r;
    uint64_t index;       /* vec: of the next item */
    uint64_t printed;
    uint8_t *last_prio, *last_key; /* the cursor: the last item printed */
    size_t last_plen, last_klen;
} lister;

static int dup_bytes(uint8_t **dst, size_t *dlen, const uint8_t *p,
                     size_t len)
{
    free(*dst);
    *dst = malloc(len ? len : 1);
    if (!*dst)
        return MK_ENOMEM;
    if (len)
        memcpy(*dst, p, len);
    *dlen = len;
    return 0;
}

static int on_list_item(const mk_coll_item *it, void *data)
{
    lister *l = data;
    coll_print_item(&l->r->out, NULL, it, l->index++, l->r->out.k->fields);
    l->printed++;
    if (dup_bytes(&l->last_key, &l->last_klen, it->key, it->key_len) != 0 ||
        dup_bytes(&l->last_prio, &l->last_plen, it->prio, it->prio_len) != 0)
        return MK_ENOMEM;
    return 0;
}

static int run_list(coll_run *r, const coll_verb *v, mk_consistency level,
                    uint64_t limit, const char *after, uint64_t start)
{
    lister l = {.r = r, .index = start};
    int rc = 0;
    bool more = true;
    if (after && dup_bytes(&l.last_key, &l.last_klen,
                           (const uint8_t *)after, strlen(after)) != 0)
        return cli_error(CLI_FAIL, "out of memory");
    while (more && (limit == 0 || l.printed < limit)) {
        uint64_t left = limit ? limit - l.printed : MK_COLL_PAGE_MAX;
        uint32_t page = left < MK_COLL_PAGE_MAX ? (uint32_t)left
                                                : MK_COLL_PAGE_MAX;
        mk_coll_item cur = {.prio = l.last_prio, .prio_len = l.last_plen,
                            .key = l.last_key, .key_len = l.last_klen};
        mk_buf req;
        answer a = {0};
        mk_buf_init(&req);
        rc = coll_query_page(r->out.k, &req, l.last_key ? &cur : NULL,
                             l.index, page);
        if (rc == 0)
            rc = ask(r, &req, true, level, &a);
        mk_buf_free(&req);
        if (rc != 0) {
            free(a.res);
            rc = failed(r, v, rc);
            break;
        }
        uint64_t before = l.printed;
        rc = mk_coll_reply_page(a.res, a.len, on_list_item, &l, &more);
        free(a.res);
        if (rc != 0) {
            rc = cli_error(CLI_FAIL, "list: the reply did not decode");
            break;
        }
        if (l.printed == before)
            break; /* an empty page cannot move the cursor */
    }
    if (rc == 0 && more && !r->out.json)
        cli_error(CLI_OK, "more items follow (stopped at --limit %llu)",
                  (unsigned long long)limit);
    free(l.last_key);
    free(l.last_prio);
    return rc;
}

/* ---- pq pop ------------------------------------------------------------------ */

static int run_pop(coll_run *r, const coll_verb *v)
{
    for (int attempt = 0; attempt < POP_TRIES; attempt++) {
        mk_buf req;
        answer a = {0};
        mk_buf_init(&req);
        int rc = coll_query_end(&req, v->max);
        if (rc == 0)
            rc = ask(r, &req, true, MK_STRONG, &a);
        mk_buf_reset(&req);
        if (rc != 0) {
            mk_buf_free(&req);
            free(a.res);
            return failed(r, v, rc);
        }
        bool found;
        mk_coll_item it;
        if (mk_coll_reply_item(a.res, a.len, &found, &it) != 0) {
            mk_buf_free(&req);
            free(a.res);
            return cli_error(CLI_FAIL, "%s: the reply did not decode",
                             v->name);
        }
        if (!found) {
            mk_buf_free(&req);
            free(a.res);
            if (r->out.json) {
                json_t *j = json_object();
                json_object_set_new(j, "op", json_string(v->name));
                json_object_set_new(j, "found", json_false());
                coll_print_json(j);
            }
            return cli_error(CLI_FAIL, "the pq is empty");
        }
        /* `it` points into a.res, which stays until the claim is done. */
        answer c = {0};
        rc = coll_cmd_claim(&req, &it);
        if (rc == 0)
            rc = ask(r, &req, false, MK_STRONG, &c);
        mk_buf_free(&req);
        mk_coll_outcome oc;
        if (rc == 0 && mk_coll_outcome_decode(c.res, c.len, &oc) != 0)
            rc = MK_EDECODE;
        free(c.res);
        if (rc != 0) {
            free(a.res);
            return failed(r, v, rc);
        }
        if (oc.changed == 1) {
            if (r->out.json) {
                json_t *j = json_object();
                json_object_set_new(j, "op", json_string(v->name));
                json_object_set_new(j, "found", json_true());
                json_object_set_new(j, "applied",
                                    json_integer((json_int_t)c.applied));
                coll_json_bytes(&r->out, j, "prio", it.prio, it.prio_len);
                coll_json_bytes(&r->out, j, "key", it.key, it.key_len);
                coll_json_bytes(&r->out, j, "value", it.val, it.val_len);
                coll_print_json(j);
            } else {
                coll_print_item(&r->out, NULL, &it, 0, r->out.k->fields);
            }
            free(a.res);
            return CLI_OK;
        }
        free(a.res); /* someone else took it: read the new end */
    }
    return cli_error(CLI_FAIL, "%s: other clients took %d entries in a row; "
                               "try again",
                     v->name, POP_TRIES);
}

/* ---- entry --------------------------------------------------------------------- */

enum {
    OPT_GROUP = 'g', OPT_CONFIG = 'c', OPT_NAME = 'N', OPT_VIA = 'v',
    OPT_HEX = 'x', OPT_WEAK = 'W', OPT_STDIN = 'i', OPT_WINDOW = 'w',
    OPT_LIMIT = 'l', OPT_AFTER = 'a', OPT_START = 's', OPT_COUNT = 'C',
    OPT_CAPACITY = 'P', OPT_HELP = 'h',
};

static int parse_count(const char *opt, const char *arg, uint64_t *out,
                       bool zero_ok)
{
    if (util_parse_u64(arg, out) != 0 || (!zero_ok && *out == 0))
        return cli_error(CLI_USAGE, "%s: '%s' is not a %scount", opt, arg,
                         zero_ok ? "" : "positive ");
    return 0;
}

static int coll_main(const coll_kind_def *k, int argc, char **argv)
{
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, SESSION_OPT_BASE + 'b'},
        {"network", required_argument, NULL, SESSION_OPT_BASE + 'n'},
        {"timeout", required_argument, NULL, SESSION_OPT_BASE + 't'},
        {"json", no_argument, NULL, SESSION_OPT_BASE + 'j'},
        {"group", required_argument, NULL, OPT_GROUP},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"name", required_argument, NULL, OPT_NAME},
        {"via", required_argument, NULL, OPT_VIA},
        {"hex", no_argument, NULL, OPT_HEX},
        {"weak", no_argument, NULL, OPT_WEAK},
        {"stdin", no_argument, NULL, OPT_STDIN},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"after", required_argument, NULL, OPT_AFTER},
        {"start", required_argument, NULL, OPT_START},
        {"count", required_argument, NULL, OPT_COUNT},
        {"capacity", required_argument, NULL, OPT_CAPACITY},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    session_opts so = {.timeout_ms = 10000};
    target t = {0};
    coll_run r = {.out = {.k = k}};
    bool weak = false, from_stdin = false;
    uint64_t window = 64, limit = 0, start = 0, count = 0;
    const char *after = NULL;
    int ch, rc;
    optind = 1;
    opterr = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((rc = session_opt(&so, ch, optarg)) < 0)
            return CLI_USAGE;
        if (rc > 0)
            continue;
        switch (ch) {
        case OPT_GROUP: t.group = optarg; break;
        case OPT_CONFIG: t.config = optarg; break;
        case OPT_NAME: t.name = optarg; break;
        case OPT_VIA: t.via = optarg; break;
        case OPT_HEX: r.out.hex = true; break;
        case OPT_WEAK: weak = true; break;
        case OPT_STDIN: from_stdin = true; break;
        case OPT_WINDOW:
            if (parse_count("--window", optarg, &window, false))
                return CLI_USAGE;
            /* A member holds at most 65536 requesters' commands. */
            if (window > 65536)
                return cli_error(CLI_USAGE, "--window: at most 65536");
            break;
        case OPT_LIMIT:
            if (parse_count("--limit", optarg, &limit, false))
                return CLI_USAGE;
            break;
        case OPT_AFTER: after = optarg; break;
        case OPT_START:
            if (parse_count("--start", optarg, &start, true))
                return CLI_USAGE;
            break;
        case OPT_COUNT:
            if (parse_count("--count", optarg, &count, false))
                return CLI_USAGE;
            break;
        case OPT_CAPACITY:
            if (parse_count("--capacity", optarg, &r.capacity, true))
                return CLI_USAGE;
            r.have_capacity = true;
            break;
        case OPT_HELP: usage(stdout, k); return CLI_OK;
        default: usage(stderr, k); return CLI_USAGE;
        }
    }
    r.out.json = so.json;
    if (so.timeout_ms <= 0 || so.timeout_ms > UINT32_MAX)
        return cli_error(CLI_USAGE, "--timeout: out of range");
    r.timeout_ms = (uint32_t)so.timeout_ms;

    const coll_verb *v = NULL;
    if (optind < argc) {
        v = coll_verb_find(k, argv[optind]);
        if (!v) {
            cli_error(CLI_USAGE, "%s has no verb '%s'", k->name,
                      argv[optind]);
            usage(stderr, k);
            return CLI_USAGE;
        }
        optind++;
    } else if (!from_stdin) {
        usage(stderr, k);
        return CLI_USAGE;
    }
    if (from_stdin && v && v->cls != VERB_WRITE)
        return cli_error(CLI_USAGE, "--stdin runs writes; %s %s is not one",
                         k->name, v->name);
    if (from_stdin && optind < argc)
        return cli_error(CLI_USAGE,
                         "--stdin takes its arguments from stdin, not '%s'",
                         argv[optind]);
    if (after && k->kind != COLL_MAP && k->kind != COLL_SET)
        return cli_error(CLI_USAGE, "--after is for map and set lists");
    if (start && k->kind != COLL_VEC)
        return cli_error(CLI_USAGE, "--start is for vec lists");
    if (count && (!v || v->cls != VERB_WATCH))
        return cli_error(CLI_USAGE, "--count is for watch");

    coll_args args = {0};
    uint8_t *scratch[3] = {NULL, NULL, NULL};
    char why[256];
    if (v && !from_stdin &&
        coll_args_parse(v, r.out.hex, argv + optind, (size_t)(argc - optind),
                        &args, scratch, why, sizeof why) != 0) {
        rc = cli_error(CLI_USAGE, "%s %s: %s", k->name, v->name, why);
        goto out_args;
    }
    if ((rc = resolve(&r, &t)) != 0)
        goto out_args;
    if (v && v->cls == VERB_WATCH && k->kind == COLL_PQ && !r.have_capacity) {
        rc = cli_error(CLI_USAGE, "pq watch with --group needs --capacity N "
                                  "(0: unbounded), as the group was made");
        goto out_args;
    }
    mk_peer_id via;
    if (t.via && mk_id_from_hex(&via, t.via, strlen(t.via)) != 0) {
        rc = cli_error(CLI_USAGE, "--via: '%s' is not a PeerId", t.via);
        goto out_args;
    }

    signal(SIGPIPE, SIG_IGN);
    if ((rc = session_open(&r.s, &so, false, false)) != 0)
        goto out_args;
    if (!(v && v->cls == VERB_WATCH) &&
        mk_group_client_open(r.s.node, &r.gid, &r.client) != 0) {
        rc = cli_error(CLI_FAIL, "cannot open a group client");
        goto out_session;
    }
    if (r.client && t.via)
        mk_group_client_via(r.client, &via);
    mk_consistency level = weak ? MK_WEAK : MK_STRONG;
    if (from_stdin)
        rc = coll_batch(&r, v, window);
    else if (v->cls == VERB_WRITE)
        rc = run_write(&r, v, &args);
    else if (v->cls == VERB_LIST)
        rc = run_list(&r, v, level, limit, after, start);
    else if (v->cls == VERB_POP)
        rc = run_pop(&r, v);
    else if (v->cls == VERB_WATCH)
        rc = coll_watch(&r, count);
    else
        rc = run_read(&r, v, &args, level);
    if (r.client)
        mk_group_client_close(r.client, NULL, NULL);
out_session:
    session_close(&r.s);
out_args:
    for (int i = 0; i < 3; i++)
        free(scratch[i]);
    return rc;
}

#define KIND_CMD(fn, name)                                                     \
    int fn(int argc, char **argv)                                              \
    {                                                                          \
        return coll_main(coll_kind_find(name), argc, argv);                    \
    }
KIND_CMD(cmd_map, "map")
KIND_CMD(cmd_set, "set")
KIND_CMD(cmd_vec, "vec")
KIND_CMD(cmd_cell, "cell")
KIND_CMD(cmd_once, "once")
KIND_CMD(cmd_pq, "pq")
#undef KIND_CMD
