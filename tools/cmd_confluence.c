/* `coalition confluence status|retire`: look at a confluence the
 * coalition file references — per-citizen lag, its stall behaviour and
 * whether it is stalled now, the committee's leader, the last commit — or
 * retire it as a committee member. The confluence is found by name in the
 * file and its implementation by its content ("fx-correlator/v1;…"), so
 * the ids are exactly those its committee derives. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coalition/confluence.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"
#include "session.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: coalition confluence status --coalition FILE --bootstrap "
        "P@H:P\n"
        "                                   [--timeout S] [--json] NAME\n"
        "       coalition confluence retire --coalition FILE --bootstrap "
        "P@H:P\n"
        "                                   --key FILE --reason TEXT\n"
        "                                   [--successor ID] NAME\n"
        "\n"
        "status: the confluence NAME of the coalition file: its ids, the\n"
        "committee's leader, each spanned citizen's lag (the last fact\n"
        "folded, how many clock ticks ago, how old), the stall behaviour\n"
        "and whether a citizen is stalled now, and the last commit.\n"
        "retire: commits the retirement marker; --key must be a committee\n"
        "member's. Readers then report \"retired\" with the successor.\n"
        "\n"
        "Exit status 3 when no committee member answered before the\n"
        "timeout: a wrong name, citizen, order, content or committee in the\n"
        "file derives another confluence, which surfaces exactly so.\n"
        "Exit status 1 when the confluence is retired (status) or the\n"
        "retirement was refused (retire).\n");
}

/* Resolves NAME in the file into a definition. 0 or a CLI exit status. */
static int resolve(const session *s, const char *name, co_confluence_def *def)
{
    char err[CO_ERRMSG_SIZE];
    const co_confluence_config *cf =
        co_coalition_confluence(s->coalition, name);
    if (!cf)
        return cli_error(CLI_USAGE, "the coalition has no confluence \"%s\"",
                         name);
    if (co_module_kind_of(name) >= 0)
        return cli_error(CLI_USAGE,
                         "\"%s\" is a module: see 'coalition %s --help'",
                         name, name);
    if (co_confluence_define(cf, NULL, 0, def, err) < 0)
        return cli_error(CLI_USAGE, "%s", err);
    return 0;
}

/* The name a spanned citizen has in the file. */
static void citizen_name(const co_confluence_config *c, size_t i, char *out,
                         size_t cap, const co_confluence_source *src)
{
    const co_citizen_ref *r = i < c->n_lattices
                                  ? &c->lattices[i]
                                  : &c->organisms[i - c->n_lattices];
    char hex[MK_ID_HEX_LEN + 1];
    if (r->lattice)
        snprintf(out, cap, "%s", r->lattice->name);
    else if (r->organism && r->organism->instance)
        snprintf(out, cap, "%s", r->organism->instance);
    else
        snprintf(out, cap, "%.16s…", mk_id_hex(&src->stable_id, hex));
}

/* ---- status ------------------------------------------------------------ */

typedef struct status_run {
    session s;
    int status;
    bool ready;
    mk_group_client *client;
    int asked, answered;
    bool has_leader;
    mk_peer_id leader;
    uint64_t term;
} status_run;

static void on_reader(co_confluence_reader *r, int status, void *data)
{
    status_run *st = data;
    if (status == MK_ECONNECT_TIMEOUT)
        return; /* the session's own deadline decides */
    st->status = status;
    st->ready = true;
}

static void on_member_status(int status, const mk_member_status *ms,
                             void *data)
{
    status_run *st = data;
    st->answered++;
    /* The highest term a member reports names the current leader. */
    if (status == 0 && ms->st.has_leader &&
        (!st->has_leader || ms->st.term > st->term)) {
        st->has_leader = true;
        st->leader = ms->st.leader;
        st->term = ms->st.term;
    }
}

static json_t *event_json(const co_clock_event *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "epoch", json_integer((json_int_t)e->epoch));
    json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
    return o;
}

static json_t *commit_json(const co_confluence_def *def,
                           const co_confluence_commit *c)
{
    char hex[MK_ID_HEX_LEN + 1], body[1024];
    json_t *o = json_object(), *key = json_object(), *ev = json_array();
    json_object_set_new(o, "index", json_integer((json_int_t)c->index));
    json_object_set_new(o, "kind", json_string(c->kind == CO_COMMIT_RETIRED
                                                   ? "retired"
                                                   : "fact"));
    json_object_set_new(o, "partial", json_boolean(c->partial));
    mk_hex_encode(c->key_citizen.b, CO_CITIZEN_ID_LEN, hex);
    json_object_set_new(key, "citizen_id", json_string(hex));
    json_object_set_new(key, "event", event_json(&c->key_event));
    json_object_set_new(o, "key", key);
    json_t *parsed = NULL;
    if (c->kind == CO_COMMIT_FACT && def->machine->describe &&
        def->machine->describe(c->body, c->body_len, body, sizeof body) == 0)
        parsed = json_loads(body, 0, NULL);
    if (!parsed) {
        char *h = malloc(2 * c->body_len + 1);
        if (h)
            mk_hex_encode(c->body, c->body_len, h);
        parsed = h ? json_string(h) : json_null();
        free(h);
    }
    json_object_set_new(o, "body", parsed);
    for (size_t i = 0; i < c->n_evidence; i++) {
        const co_evidence *e = &c->evidence[i];
        json_t *x = json_object();
        json_object_set_new(x, "citizen", json_string(mk_id_hex(&e->citizen,
                                                                hex)));
        json_object_set_new(x, "surface", json_string(mk_id_hex(&e->surface,
                                                                hex)));
        json_object_set_new(x, "event", event_json(&e->event));
        json_object_set_new(x, "hash", json_string(mk_id_hex(&e->hash, hex)));
        json_array_append_new(ev, x);
    }
    json_object_set_new(o, "evidence", ev);
    return o;
}

static json_t *status_json(const co_confluence_def *def,
                           const co_confluence_reader *r, const status_run *st)
{
    char hex[MK_ID_HEX_LEN + 1], name[80];
    const co_confluence_info *info = co_confluence_reader_info(r);
    co_confluence_status s;
    co_confluence_retirement ret;
    co_confluence_reader_status(r, &s);
    co_confluence_reader_retirement(r, &ret);
    json_t *o = json_object(), *comm = json_array(), *cits = json_array();
    json_object_set_new(o, "name", json_string(def->config->name));
    json_object_set_new(o, "content", json_string(def->config->content));
    json_object_set_new(o, "fingerprint",
                        json_string(mk_id_hex(&info->fingerprint, hex)));
    json_object_set_new(o, "group", json_string(mk_id_hex(&info->group, hex)));
    for (size_t i = 0; i < info->n_committee; i++)
        json_array_append_new(comm, json_string(mk_id_hex(&info->committee[i],
                                                          hex)));
    json_object_set_new(o, "committee", comm);
    json_object_set_new(o, "leader", st->has_leader
                                         ? json_string(mk_id_hex(&st->leader,
                                                                 hex))
                                         : json_null());
    json_t *clock = json_object();
    json_object_set_new(clock, "almanac_of",
                        def->clock[0] ? json_string(def->clock) : json_null());
    json_object_set_new(clock, "tick", json_integer((json_int_t)s.tick));
    json_object_set_new(o, "clock", clock);
    json_t *stall = json_object();
    json_object_set_new(stall, "mode",
                        json_string(co_stall_mode_name(s.stall)));
    json_object_set_new(stall, "bound_ticks", json_integer(s.bound_ticks));
    json_object_set_new(stall, "stalled", json_boolean(s.stalled));
    json_object_set_new(stall, "stalled_since",
                        s.stalled ? json_integer((json_int_t)s.stalled_since)
                                  : json_null());
    json_object_set_new(stall, "partial_commits",
                        json_integer((json_int_t)s.partial_commits));
    json_object_set_new(stall, "halted_ticks",
                        json_integer((json_int_t)s.halted_ticks));
    json_object_set_new(o, "stall", stall);
    json_object_set_new(o, "commits", json_integer((json_int_t)s.commits));
    for (size_t i = 0; i < s.n_sources; i++) {
        const co_confluence_lag *l = &s.lag[i];
        json_t *c = json_object();
        citizen_name(def->config, i, name, sizeof name, &info->src[i]);
        json_object_set_new(c, "name", json_string(name));
        json_object_set_new(c, "stable_id", json_string(mk_id_hex(
                                                &info->src[i].stable_id, hex)));
        json_object_set_new(c, "surface", json_string(mk_id_hex(
                                              &info->src[i].stream, hex)));
        json_object_set_new(c, "has_fact", json_boolean(l->has_fact));
        json_object_set_new(c, "last", l->has_fact ? event_json(&l->last)
                                                   : json_null());
        json_object_set_new(c, "facts", json_integer((json_int_t)l->facts));
        json_object_set_new(c, "ticks_behind",
                            l->has_fact ? json_integer((json_int_t)
                                                           l->ticks_behind)
                                        : json_null());
        json_object_set_new(c, "age_ms", l->has_fact
                                             ? json_integer(l->age_ms)
                                             : json_null());
        json_object_set_new(c, "live", json_boolean(l->live));
        json_array_append_new(cits, c);
    }
    json_object_set_new(o, "citizens", cits);
    const co_confluence_commit *last = NULL;
    if (s.commits && co_confluence_get(r, s.commits, &last) == 0)
        json_object_set_new(o, "last_commit", commit_json(def, last));
    else
        json_object_set_new(o, "last_commit", json_null());
    if (ret.retired) {
        json_t *x = json_object();
        json_object_set_new(x, "reason", json_string(ret.reason));
        json_object_set_new(x, "successor",
                            ret.has_successor
                                ? json_string(mk_id_hex(&ret.successor, hex))
                                : json_null());
        json_object_set_new(o, "retired", x);
    } else {
        json_object_set_new(o, "retired", json_null());
    }
    return o;
}

/* The text form is the JSON form, laid out for people. */
static void print_text(json_t *o)
{
    json_t *stall = json_object_get(o, "stall"),
           *clock = json_object_get(o, "clock"),
           *leader = json_object_get(o, "leader");
    printf("confluence %s  (%s)\n", json_string_value(json_object_get(o,
                                                                      "name")),
           json_string_value(json_object_get(o, "content")));
    printf("  fingerprint  %s\n",
           json_string_value(json_object_get(o, "fingerprint")));
    printf("  group        %s\n",
           json_string_value(json_object_get(o, "group")));
    printf("  committee    %zu members, leader %s\n",
           json_array_size(json_object_get(o, "committee")),
           json_is_string(leader) ? json_string_value(leader) : "unknown");
    if (json_is_string(json_object_get(clock, "almanac_of")))
        printf("  clock        the Almanac of %s, tick %" JSON_INTEGER_FORMAT
               "\n",
               json_string_value(json_object_get(clock, "almanac_of")),
               json_integer_value(json_object_get(clock, "tick")));
    bool stalled = json_is_true(json_object_get(stall, "stalled"));
    const char *mode = json_string_value(json_object_get(stall, "mode"));
    printf("  stall        %s after %" JSON_INTEGER_FORMAT " ticks; ", mode,
           json_integer_value(json_object_get(stall, "bound_ticks")));
    if (stalled)
        printf("STALLED since tick %" JSON_INTEGER_FORMAT " (%s)\n",
               json_integer_value(json_object_get(stall, "stalled_since")),
               strcmp(mode, "halt") == 0 ? "committing nothing"
                                         : "committing partial evidence");
    else
        printf("every citizen delivering\n");
    printf("  commits      %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT
           " partial, %" JSON_INTEGER_FORMAT " ticks halted)\n",
           json_integer_value(json_object_get(o, "commits")),
           json_integer_value(json_object_get(stall, "partial_commits")),
           json_integer_value(json_object_get(stall, "halted_ticks")));
    printf("  citizens\n");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(o, "citizens"), i, c)
    {
        json_t *last = json_object_get(c, "last");
        if (!json_is_true(json_object_get(c, "has_fact"))) {
            printf("    %-18s nothing folded yet\n",
                   json_string_value(json_object_get(c, "name")));
            continue;
        }
        printf("    %-18s %-7s last %" JSON_INTEGER_FORMAT "/%"
               JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT
               " tick(s) behind, %" JSON_INTEGER_FORMAT " ms old, %"
               JSON_INTEGER_FORMAT " facts\n",
               json_string_value(json_object_get(c, "name")),
               json_is_true(json_object_get(c, "live")) ? "live" : "STALLED",
               json_integer_value(json_object_get(last, "epoch")),
               json_integer_value(json_object_get(last, "seq")),
               json_integer_value(json_object_get(c, "ticks_behind")),
               json_integer_value(json_object_get(c, "age_ms")),
               json_integer_value(json_object_get(c, "facts")));
    }
    json_t *lc = json_object_get(o, "last_commit");
    if (json_is_object(lc)) {
        char *body = json_dumps(json_object_get(lc, "body"), JSON_COMPACT);
        json_t *key = json_object_get(lc, "key");
        printf("  last commit  #%" JSON_INTEGER_FORMAT " %s%s key (%.16s…, %"
               JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT ") %s, %zu "
               "evidence pointer(s)\n",
               json_integer_value(json_object_get(lc, "index")),
               json_string_value(json_object_get(lc, "kind")),
               json_is_true(json_object_get(lc, "partial")) ? " (partial)"
                                                            : "",
               json_string_value(json_object_get(key, "citizen_id")),
               json_integer_value(
                   json_object_get(json_object_get(key, "event"), "epoch")),
               json_integer_value(
                   json_object_get(json_object_get(key, "event"), "seq")),
               body ? body : "", json_array_size(json_object_get(lc,
                                                                 "evidence")));
        free(body);
    }
    json_t *ret = json_object_get(o, "retired");
    if (json_is_object(ret)) {
        json_t *succ = json_object_get(ret, "successor");
        printf("  RETIRED      %s; successor %s\n",
               json_string_value(json_object_get(ret, "reason")),
               json_is_string(succ) ? json_string_value(succ) : "none");
    }
}

static int confluence_status(session_opts *o, const char *name)
{
    status_run st = {.status = 1};
    int rc = session_open(&st.s, o, true, false);
    if (rc)
        return rc;
    co_confluence_def def;
    if ((rc = resolve(&st.s, name, &def)) != 0) {
        session_close(&st.s);
        return rc;
    }
    char err[CO_ERRMSG_SIZE];
    co_confluence_reader *r;
    rc = co_confluence_read(st.s.node, &def,
                            (uint32_t)(st.s.deadline - mk_mono_ms()),
                            on_reader, &st, &r, err);
    if (rc < 0) {
        session_close(&st.s);
        return cli_error(CLI_USAGE, "%s", err);
    }
    /* Up to date first; then ask the members it found who leads. */
    while (!st.ready && mk_mono_ms() < st.s.deadline)
        uv_run(&st.s.loop, UV_RUN_ONCE);
    int exit = CLI_OK;
    if (!st.ready) {
        exit = cli_error(CLI_TIMEOUT,
                         "no member of confluence %s answered "
                         "(ConnectTimeout): check the coalition file",
                         name);
    } else {
        const co_confluence_info *info = co_confluence_reader_info(r);
        mk_peer_id members[CO_MODULE_MAX_COMMITTEE];
        if (mk_group_client_open(st.s.node, &info->group, &st.client) == 0) {
            size_t n = mk_group_client_members(st.client, members,
                                               CO_MODULE_MAX_COMMITTEE);
            for (size_t i = 0; i < n; i++)
                if (mk_group_client_status(st.client, &members[i], false,
                                           2000, on_member_status, &st) == 0)
                    st.asked++;
            int64_t until = mk_mono_ms() + 2500;
            while (st.answered < st.asked && mk_mono_ms() < until)
                uv_run(&st.s.loop, UV_RUN_ONCE);
        }
        json_t *out = status_json(&def, r, &st);
        if (o->json) {
            char *text = json_dumps(out, JSON_INDENT(2));
            puts(text ? text : "{}");
            free(text);
        } else {
            print_text(out);
        }
        json_decref(out);
        if (st.status == CO_ERETIRED)
            exit = CLI_FAIL;
    }
    if (st.client)
        mk_group_client_close(st.client, NULL, NULL);
    co_confluence_close(r, NULL, NULL);
    session_close(&st.s);
    return exit;
}

/* ---- retire ------------------------------------------------------------ */

typedef struct retire_run {
    session s;
    int status;
} retire_run;

static void on_retired(int status, void *data)
{
    retire_run *rr = data;
    rr->status = status;
    rr->s.done = true;
}

static int confluence_retire(session_opts *o, const char *name,
                             const char *reason, const char *successor)
{
    if (!reason)
        return cli_error(CLI_USAGE, "--reason is required");
    if (strlen(reason) > 255)
        return cli_error(CLI_USAGE, "--reason: at most 255 bytes");
    retire_run rr = {.status = 1};
    int rc = session_open(&rr.s, o, true, true);
    if (rc)
        return rc;
    co_confluence_def def;
    if ((rc = resolve(&rr.s, name, &def)) != 0) {
        session_close(&rr.s);
        return rc;
    }
    mk_id succ;
    if (successor)
        mk_id_from_str(&succ, successor);
    char err[CO_ERRMSG_SIZE];
    rc = co_confluence_retire(rr.s.node, &def, reason,
                              successor ? &succ : NULL, &rr.s.key,
                              (uint32_t)(rr.s.deadline - mk_mono_ms()),
                              on_retired, &rr, err);
    if (rc < 0) {
        session_close(&rr.s);
        return cli_error(CLI_USAGE, "%s", err);
    }
    session_run(&rr.s);
    int exit = CLI_OK;
    if (!rr.s.done || rr.status == MK_ECONNECT_TIMEOUT)
        exit = cli_error(CLI_TIMEOUT,
                         "no member of confluence %s answered "
                         "(ConnectTimeout)",
                         name);
    else if (rr.status == CO_ECONFIG)
        exit = cli_error(CLI_FAIL, "refused: is --key a committee member's? "
                                   "is it retired already?");
    else if (rr.status < 0)
        exit = cli_error(CLI_FAIL, "retire failed: %s",
                         co_strerror(rr.status));
    else
        printf("retired %s\n", name);
    session_close(&rr.s);
    return exit;
}

int cmd_confluence(int argc, char **argv)
{
    enum { O_REASON = 1, O_SUCCESSOR };
    static const struct option opts[] = {
        SESSION_LONGOPTS,
        {"reason", required_argument, NULL, O_REASON},
        {"successor", required_argument, NULL, O_SUCCESSOR},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1], *reason = NULL, *successor = NULL;
    session_opts o = {0};
    int ch, r;
    optind = 1;
    while ((ch = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        if ((r = session_opt(&o, ch, optarg)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            continue;
        }
        switch (ch) {
        case O_REASON: reason = optarg; break;
        case O_SUCCESSOR: successor = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (optind + 1 != argc - 1) {
        usage(stderr);
        return cli_error(CLI_USAGE, "name exactly one confluence");
    }
    const char *name = argv[1 + optind];
    if (strcmp(verb, "status") == 0)
        return confluence_status(&o, name);
    if (strcmp(verb, "retire") == 0)
        return confluence_retire(&o, name, reason, successor);
    usage(stderr);
    return cli_error(CLI_USAGE, "unknown confluence command '%s'", verb);
}
