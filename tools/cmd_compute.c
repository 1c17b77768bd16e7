/* `coalition compute providers|submit|status`: the coalition's Compute
 * module from the command line. submit serves the image as a blob from
 * this process's own node (which therefore listens), waits for the
 * grant, prints the workload's output as it is committed, and exits with
 * the workload's status. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "coalition/compute.h"
#include "mosaik/blob.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "session.h"
#include "util.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: coalition compute providers --coalition FILE --bootstrap P@H:P\n"
        "                                   [--timeout D] [--json]\n"
        "       coalition compute submit    --coalition FILE --bootstrap P@H:P\n"
        "                                   --image FILE [--cpu N] [--ram SIZE]\n"
        "                                   [--storage SIZE] [--for DURATION]\n"
        "                                   [--tdx] [--listen HOST:PORT]\n"
        "                                   [--timeout D] [--json]\n"
        "       coalition compute status    REQUEST_ID --coalition FILE\n"
        "                                   --bootstrap P@H:P [--json]\n"
        "       coalition compute retire    --key FILE --reason TEXT ... (--help)\n"
        "\n"
        "providers: the registered providers, their capacity, what their\n"
        "grants reserve and whether they are alive.\n"
        "submit: serves FILE (an executable: a static binary or a #! script)\n"
        "as a blob named by its BLAKE3 hash, asks the Compute committee for\n"
        "--cpu cores (default 1; \"0.5\" or \"500m\" work), --ram (default\n"
        "128M), --storage (default 64M) for --for (default 60s), waits for\n"
        "the grant, prints the workload's committed output (stdout and\n"
        "stderr) as it arrives and exits with its status: its exit code,\n"
        "128+N when killed by signal N, 124 when killed at valid_to, 1 when\n"
        "it was refused, rejected or never ran (the reason on stderr).\n"
        "The node listens on --listen (default 127.0.0.1:0, or 0.0.0.0:0\n"
        "when a bootstrap peer is not on loopback) so providers can fetch.\n"
        "--timeout bounds the whole wait (default: --for plus 90s).\n"
        "status: one request's state, grant and final log.\n"
        "\n"
        "Exit status 3 when no Compute member answered before the timeout.\n");
}

/* ---- a reader that ends the session once it is up --------------------- */

typedef struct view {
    session s;
    co_compute_reader *r;
    int status;
    bool up;
} view;

static void on_view(co_compute_reader *r, int status, void *data)
{
    view *v = data;
    v->status = status;
    if (status == 0)
        v->up = true;
    if (status == 0 || status == CO_ERETIRED)
        v->s.done = true;
}

static int view_open(view *v, session_opts *o)
{
    int rc = session_open(&v->s, o, true, false);
    if (rc)
        return rc;
    char err[CO_ERRMSG_SIZE];
    rc = co_compute_read(v->s.node, v->s.coalition,
                         (uint32_t)(v->s.deadline - mk_mono_ms()), on_view, v,
                         &v->r, err);
    if (rc < 0) {
        session_close(&v->s);
        return cli_error(CLI_USAGE, "%s",
                         rc == CO_ENOTSHIPPED
                             ? "the coalition ships no Compute module"
                             : err);
    }
    return 0;
}

static void view_close(view *v)
{
    co_compute_close(v->r, NULL, NULL);
    session_close(&v->s);
}

static void res_json(json_t *o, const char *key, const co_compute_resources *r)
{
    json_t *x = json_object();
    json_object_set_new(x, "cpu_millis", json_integer((json_int_t)r->cpu_millis));
    json_object_set_new(x, "ram_mib", json_integer((json_int_t)r->ram_mib));
    json_object_set_new(x, "storage_mib",
                        json_integer((json_int_t)r->storage_mib));
    json_object_set_new(o, key, x);
}

static bool print_provider(const co_compute_provider_info *p, void *data)
{
    json_t *arr = data;
    char hex[MK_ID_HEX_LEN + 1];
    mk_id_hex(&p->card.provider, hex);
    if (arr) {
        json_t *o = json_object(), *regions = json_array();
        for (size_t i = 0; i < p->card.n_regions; i++)
            json_array_append_new(regions, json_string(p->card.regions[i]));
        json_object_set_new(o, "provider", json_string(hex));
        res_json(o, "capacity", &p->card.capacity);
        res_json(o, "used", &p->used);
        json_object_set_new(o, "regions", regions);
        json_object_set_new(o, "tdx_capable", json_boolean(p->card.tdx_capable));
        json_object_set_new(o, "alive", json_boolean(p->alive));
        json_object_set_new(o, "running", json_integer(p->running));
        json_object_set_new(o, "last_seen_ms", json_integer(p->last_seen_ms));
        json_object_set_new(o, "reason", json_string(p->reason));
        json_array_append_new(arr, o);
        return true;
    }
    printf("%-16.16s  %-5s  %6" PRIu64 "/%-6" PRIu64 "  %6" PRIu64
           "/%-6" PRIu64 "  %7" PRIu64 "/%-7" PRIu64 "  %3s  %4" PRIu32
           "  %s\n",
           hex, p->alive ? "alive" : "GONE", p->used.cpu_millis,
           p->card.capacity.cpu_millis, p->used.ram_mib,
           p->card.capacity.ram_mib, p->used.storage_mib,
           p->card.capacity.storage_mib, p->card.tdx_capable ? "yes" : "no",
           p->running, p->card.n_regions ? p->card.regions[0] : "-");
    return true;
}

static int compute_providers(session_opts *o)
{
    view v = {0};
    int rc = view_open(&v, o);
    if (rc)
        return rc;
    session_run(&v.s);
    int exit = CLI_OK;
    if (!v.up) {
        exit = cli_error(CLI_TIMEOUT,
                         "no Compute member answered (ConnectTimeout)");
    } else if (o->json) {
        json_t *arr = json_array();
        co_compute_providers_foreach(v.r, print_provider, arr);
        char *text = json_dumps(arr, JSON_INDENT(2));
        puts(text ? text : "[]");
        free(text);
        json_decref(arr);
    } else {
        printf("%-16s  %-5s  %13s  %13s  %15s  %3s  %4s  %s\n", "PROVIDER",
               "STATE", "CPU m (used)", "RAM MiB", "STORAGE MiB", "TDX",
               "RUNS", "REGION");
        co_compute_providers_foreach(v.r, print_provider, NULL);
    }
    view_close(&v);
    return exit;
}

/* ---- status ------------------------------------------------------------------ */

static json_t *status_json(const co_compute_status *s)
{
    char hex[MK_ID_HEX_LEN + 1];
    json_t *o = json_object();
    json_object_set_new(o, "request_id",
                        json_string(mk_id_hex(&s->request.request_id, hex)));
    json_object_set_new(o, "image_hash",
                        json_string(mk_id_hex(&s->request.image_hash, hex)));
    json_object_set_new(o, "submitter",
                        json_string(mk_id_hex(&s->submitter, hex)));
    json_object_set_new(o, "state",
                        json_string(co_compute_state_name(s->state)));
    json_object_set_new(o, "reason", json_string(s->reason));
    res_json(o, "min", &s->request.min);
    json_object_set_new(o, "tdx", json_boolean(s->request.tdx));
    json_object_set_new(o, "valid_for_ms",
                        json_integer((json_int_t)s->request.valid_for_ms));
    json_object_set_new(o, "granted", json_boolean(s->granted));
    if (s->granted) {
        json_t *g = json_object();
        json_object_set_new(g, "provider",
                            json_string(mk_id_hex(&s->grant.provider, hex)));
        json_object_set_new(g, "attempt", json_integer(s->grant.attempt));
        json_object_set_new(g, "granted_ms",
                            json_integer(s->grant.granted_ms));
        json_object_set_new(g, "valid_to_ms",
                            json_integer(s->grant.valid_to_ms));
        json_object_set_new(g, "bearer_peer",
                            json_string(mk_id_hex(&s->grant.bearer.peer, hex)));
        json_object_set_new(o, "grant", g);
    }
    json_object_set_new(o, "output_bytes",
                        json_integer((json_int_t)s->output_bytes));
    if (s->logged) {
        const co_compute_log *l = &s->log;
        json_t *x = json_object();
        json_object_set_new(x, "exit", json_string(co_compute_exit_name(l->exit)));
        json_object_set_new(x, "code", json_integer(l->code));
        json_object_set_new(x, "reason", json_string(l->reason));
        json_object_set_new(x, "cpu_ms", json_integer((json_int_t)l->usage.cpu_ms));
        json_object_set_new(x, "peak_rss_kib",
                            json_integer((json_int_t)l->usage.peak_rss_kib));
        json_object_set_new(x, "wall_ms", json_integer((json_int_t)l->usage.wall_ms));
        json_object_set_new(x, "output_bytes",
                            json_integer((json_int_t)l->usage.output_bytes));
        json_object_set_new(x, "output_truncated",
                            json_boolean(l->usage.output_truncated));
        json_object_set_new(x, "provider",
                            json_string(mk_id_hex(&l->provider, hex)));
        json_object_set_new(o, "log", x);
    }
    return o;
}

static void status_text(const co_compute_status *s, FILE *out)
{
    char hex[MK_ID_HEX_LEN + 1];
    fprintf(out, "request     %s\n", mk_id_hex(&s->request.request_id, hex));
    fprintf(out, "image       %s\n", mk_id_hex(&s->request.image_hash, hex));
    fprintf(out, "state       %s%s%s\n", co_compute_state_name(s->state),
            s->reason[0] ? ": " : "", s->reason);
    if (s->granted)
        fprintf(out, "grant       provider %s attempt %" PRIu32
                     " valid_to %" PRId64 "\n",
                mk_id_hex(&s->grant.provider, hex), s->grant.attempt,
                s->grant.valid_to_ms);
    if (s->logged)
        fprintf(out, "log         %s %d (%s): %" PRIu64 " ms CPU, %" PRIu64
                     " KiB peak RSS, %" PRIu64 " ms, %" PRIu64
                     " output bytes%s\n",
                co_compute_exit_name(s->log.exit), (int)s->log.code,
                s->log.reason, s->log.usage.cpu_ms, s->log.usage.peak_rss_kib,
                s->log.usage.wall_ms, s->log.usage.output_bytes,
                s->log.usage.output_truncated ? " (truncated)" : "");
}

static int compute_status(session_opts *o, const char *id_arg)
{
    mk_id id;
    if (!id_arg || mk_id_from_hex(&id, id_arg, strlen(id_arg)) != 0)
        return cli_error(CLI_USAGE, "status needs a REQUEST_ID (64 hex)");
    view v = {0};
    int rc = view_open(&v, o);
    if (rc)
        return rc;
    session_run(&v.s);
    int exit = CLI_OK;
    co_compute_status s;
    if (!v.up) {
        exit = cli_error(CLI_TIMEOUT,
                         "no Compute member answered (ConnectTimeout)");
    } else if (co_compute_status_get(v.r, &id, &s) != 0) {
        exit = cli_error(CLI_FAIL, "no such request (or pruned long after it "
                                   "finished)");
    } else if (o->json) {
        json_t *j = status_json(&s);
        char *text = json_dumps(j, JSON_INDENT(2));
        puts(text ? text : "{}");
        free(text);
        json_decref(j);
    } else {
        status_text(&s, stdout);
    }
    view_close(&v);
    return exit;
}

/* ---- submit -------------------------------------------------------------------- */

typedef struct submit_run {
    session s;
    co_compute_reader *r;
    mk_blobs *blobs;
    co_compute_request req;
    bool json, up, sent, answered, finished;
    int phase_status; /* the submission's */
    co_compute_answer answer;
    uint32_t attempt;   /* whose output is being printed */
    size_t printed;     /* chunks of it printed */
    int64_t expired_at; /* mono ms when it was seen expired without log */
    co_compute_status last;
    char err[CO_ERRMSG_SIZE];
} submit_run;

static void print_chunk(int stream, const uint8_t *bytes, size_t len,
                        void *data)
{
    submit_run *x = data;
    if (x->json)
        return;
    fwrite(bytes, 1, len, stream == 2 ? stderr : stdout);
    fflush(stream == 2 ? stderr : stdout);
}

static void follow(submit_run *x)
{
    co_compute_status s;
    if (!x->answered || co_compute_status_get(x->r, &x->req.request_id, &s))
        return;
    char hex[MK_ID_HEX_LEN + 1];
    if (s.granted && s.grant.attempt != x->attempt) {
        if (x->attempt && !x->json)
            fprintf(stderr,
                    "coalition: attempt %" PRIu32 " on provider %.16s... "
                    "ended without a log; re-matched\n",
                    x->attempt, mk_id_hex(&x->last.grant.provider, hex));
        x->attempt = s.grant.attempt;
        x->printed = 0;
        if (!x->json)
            fprintf(stderr,
                    "coalition: granted to provider %.16s... (attempt %" PRIu32
                    ", valid for %" PRId64 " ms)\n",
                    mk_id_hex(&s.grant.provider, hex), s.grant.attempt,
                    s.grant.valid_to_ms - s.grant.granted_ms);
    }
    if (s.granted && s.grant.attempt == x->attempt)
        x->printed = co_compute_output(x->r, &x->req.request_id, x->printed,
                                       print_chunk, x);
    x->last = s;
    if (s.state == CO_COMPUTE_DONE || s.state == CO_COMPUTE_REJECTED) {
        x->finished = true;
        x->s.done = true;
    } else if (s.state == CO_COMPUTE_EXPIRED && !x->expired_at) {
        /* Its provider's late log may still come: a little longer. */
        x->expired_at = mk_mono_ms();
        if (x->s.deadline > x->expired_at + 10000)
            x->s.deadline = x->expired_at + 10000;
    }
}

static void on_submit_view(co_compute_reader *r, int status, void *data)
{
    submit_run *x = data;
    if (status == 0)
        x->up = true;
    if (status == CO_ERETIRED) {
        fprintf(stderr, "coalition: the Compute module retired\n");
        x->s.done = true;
        return;
    }
    follow(x);
}

static void on_answer(int status, const co_compute_answer *a, void *data)
{
    submit_run *x = data;
    x->phase_status = status;
    x->answered = status == 0;
    if (a)
        x->answer = *a;
    if (status != 0 || a->outcome == 0)
        x->s.done = true;
    else
        follow(x);
}

static bool loopback_only(const session_opts *o)
{
    for (size_t i = 0; i < o->n_boots; i++) {
        const char *at = strchr(o->boots[i], '@');
        if (!at || (strncmp(at + 1, "127.", 4) != 0 &&
                    strncmp(at + 1, "localhost:", 10) != 0))
            return false;
    }
    return true;
}

static int exit_of(const co_compute_status *s)
{
    if (s->state != CO_COMPUTE_DONE || !s->logged)
        return CLI_FAIL;
    switch (s->log.exit) {
    case CO_COMPUTE_EXITED: return s->log.code & 0xff;
    case CO_COMPUTE_SIGNALED: return 128 + (s->log.code & 0x7f);
    case CO_COMPUTE_DEADLINE: return 124;
    default: return CLI_FAIL;
    }
}

static int compute_submit(session_opts *o, const char *image,
                          const co_compute_request *want, int64_t for_ms)
{
    if (!image)
        return cli_error(CLI_USAGE, "--image FILE is required");
    submit_run *x = calloc(1, sizeof *x);
    if (!x)
        return cli_error(CLI_FAIL, "out of memory");
    x->json = o->json;
    if (!o->listen)
        o->listen = loopback_only(o) ? "127.0.0.1:0" : "0.0.0.0:0";
    if (!o->timeout_ms)
        o->timeout_ms = for_ms + 90000;
    int rc = session_open(&x->s, o, true, false);
    if (rc) {
        free(x);
        return rc;
    }
    int exit = CLI_FAIL;
    char store[] = "/tmp/coalition-submit-XXXXXX";
    if (!mkdtemp(store)) {
        exit = cli_error(CLI_FAIL, "cannot create a temporary directory");
        goto out_session;
    }
    char err[CO_ERRMSG_SIZE];
    if (mk_blobs_new(x->s.node, store, &x->blobs, err) < 0) {
        exit = cli_error(CLI_FAIL, "%s", err);
        goto out_store;
    }
    x->req = *want;
    uint64_t size;
    if (mk_blobs_serve_file(x->blobs, image, &x->req.image_hash, &size,
                            err) < 0) {
        exit = cli_error(CLI_USAGE, "%s", err);
        goto out_store;
    }
    /* The node's key signs: its PeerId is the bearer pointer providers
     * fetch the image from, and this node is the one serving it. */
    const mk_keypair *me = mk_node_key(x->s.node);
    uint64_t nonce;
    mk_keypair k;
    mk_keypair_generate(&k);
    memcpy(&nonce, k.seed, sizeof nonce);
    co_compute_request_id(&me->pub, &x->req.image_hash, nonce,
                          &x->req.request_id);
    char hex[MK_ID_HEX_LEN + 1], rid[MK_ID_HEX_LEN + 1];
    if (!x->json)
        fprintf(stderr, "coalition: image %s (%" PRIu64 " bytes), request %s\n",
                mk_id_hex(&x->req.image_hash, hex), size,
                mk_id_hex(&x->req.request_id, rid));
    rc = co_compute_read(x->s.node, x->s.coalition,
                         (uint32_t)(x->s.deadline - mk_mono_ms()),
                         on_submit_view, x, &x->r, err);
    if (rc < 0) {
        exit = cli_error(CLI_USAGE, "%s",
                         rc == CO_ENOTSHIPPED
                             ? "the coalition ships no Compute module"
                             : err);
        goto out_store;
    }
    rc = co_compute_submit(x->s.node, x->s.coalition, &x->req, me,
                           (uint32_t)(x->s.deadline - mk_mono_ms()), on_answer,
                           x, err);
    if (rc < 0) {
        exit = cli_error(CLI_USAGE, "%s", err);
        goto out_reader;
    }
    session_run(&x->s); /* until the log is in (follow() ends it) */
    if (x->phase_status == MK_ECONNECT_TIMEOUT || (!x->answered && !x->up)) {
        exit = cli_error(CLI_TIMEOUT,
                         "no Compute member answered (ConnectTimeout)");
    } else if (x->answered && x->answer.outcome == 0) {
        exit = cli_error(CLI_FAIL, "the committee refused the request: %s",
                         x->answer.reason);
    } else if (!x->answered) {
        exit = cli_error(CLI_TIMEOUT, "the request was not answered in time");
    } else {
        const co_compute_status *s = &x->last;
        exit = exit_of(s);
        if (x->json) {
            json_t *j = status_json(s);
            char *text = json_dumps(j, JSON_INDENT(2));
            puts(text ? text : "{}");
            free(text);
            json_decref(j);
        } else if (s->state == CO_COMPUTE_REJECTED) {
            cli_error(CLI_FAIL, "rejected: %s", s->reason);
        } else if (s->state == CO_COMPUTE_DONE && s->logged) {
            fprintf(stderr,
                    "coalition: %s (%s); %" PRIu64 " ms CPU, %" PRIu64
                    " KiB peak RSS, %" PRIu64 " ms%s\n",
                    co_compute_exit_name(s->log.exit), s->log.reason,
                    s->log.usage.cpu_ms, s->log.usage.peak_rss_kib,
                    s->log.usage.wall_ms,
                    s->log.usage.output_truncated ? ", output truncated" : "");
        } else {
            cli_error(CLI_FAIL, "ended %s without a log%s%s",
                      co_compute_state_name(s->state),
                      s->reason[0] ? ": " : "", s->reason);
        }
    }
out_reader:
    co_compute_close(x->r, NULL, NULL);
out_store:
    /* Closed before the node: session_close runs the loop to the end. */
    mk_blobs_close(x->blobs, NULL, NULL);
    session_close(&x->s);
    rmdir(store);
    free(x);
    return exit;
out_session:
    session_close(&x->s);
    free(x);
    return exit;
}

int cmd_compute(int argc, char **argv)
{
    enum { O_IMAGE = 1, O_CPU, O_RAM, O_STORAGE, O_FOR, O_TDX, O_LISTEN };
    static const struct option opts[] = {
        SESSION_LONGOPTS,
        {"image", required_argument, NULL, O_IMAGE},
        {"cpu", required_argument, NULL, O_CPU},
        {"ram", required_argument, NULL, O_RAM},
        {"storage", required_argument, NULL, O_STORAGE},
        {"for", required_argument, NULL, O_FOR},
        {"tdx", no_argument, NULL, O_TDX},
        {"listen", required_argument, NULL, O_LISTEN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1], *image = NULL;
    if (strcmp(verb, "retire") == 0) /* cmd_retire.c */
        return cmd_retire("compute", argc - 1, argv + 1);
    session_opts o = {0};
    co_compute_request req = {.min = {1000, 128, 64}};
    int64_t for_ms = 60000;
    int ch, r;
    const char *why;
    optind = 1;
    while ((ch = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        if ((r = session_opt(&o, ch, optarg)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            continue;
        }
        switch (ch) {
        case O_IMAGE: image = optarg; break;
        case O_TDX: req.tdx = true; break;
        case O_LISTEN: o.listen = optarg; break;
        case O_CPU:
            if (util_parse_millicores(optarg, &req.min.cpu_millis) != 0)
                return cli_error(CLI_USAGE, "--cpu '%s': cores, like 2, 0.5 "
                                            "or 500m", optarg);
            break;
        case O_RAM:
        case O_STORAGE:
            if (util_parse_mib(optarg, ch == O_RAM ? &req.min.ram_mib
                                              : &req.min.storage_mib) != 0)
                return cli_error(CLI_USAGE, "--%s '%s': a size like 256M or "
                                            "2G", ch == O_RAM ? "ram"
                                                              : "storage",
                                 optarg);
            break;
        case O_FOR:
            if (util_parse_duration_ms(optarg, &for_ms, &why) != 0)
                return cli_error(CLI_USAGE, "--for: '%s': %s", optarg, why);
            if (for_ms < 1000)
                return cli_error(CLI_USAGE, "--for: '%s': at least 1s",
                                 optarg);
            break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    req.valid_for_ms = (uint64_t)for_ms;
    /* A workload's output may hang up on us; never die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(verb, "providers") == 0)
        return compute_providers(&o);
    if (strcmp(verb, "status") == 0)
        return compute_status(&o, optind + 1 < argc ? argv[optind + 1]
                                                    : NULL);
    if (strcmp(verb, "submit") == 0)
        return compute_submit(&o, image, &req, for_ms);
    usage(stderr);
    return cli_error(CLI_USAGE, "unknown compute command '%s'", verb);
}
