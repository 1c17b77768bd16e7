/* `coalition group exec|query|status`: talk to a group as an ephemeral
 * node (a fresh key, no listener), the way tools/cmd_net.c joins.
 *
 * The group is named by its GroupId, or by a node config and a group name
 * (the same file coalitiond --config reads, so the id is derived the same
 * way). Commands go through the group's members with exactly-once retries
 * (include/mosaik/group_client.h); `--stdin` keeps one session open and runs
 * many commands, pipelined, printing one JSON line per answer: the
 * integration tests drive write loads through it.
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "daemon_groups.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"
#include "mosaik/node.h"
#include "util.h"

#define MAX_BOOT 16
#define MAX_MEMBERS 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: coalition group exec   TARGET [--via PEERID] [--json] "
            "[--] CMD...\n"
            "       coalition group exec   TARGET [--via PEERID] --stdin "
            "[--window N]\n"
            "       coalition group query  TARGET [--strong] [--json] Q...\n"
            "       coalition group status TARGET [--hash] [--json]\n"
            "       coalition group promote|demote TARGET --key MEMBER.key "
            "[--json] PEERID\n"
            "\n"
            "TARGET is --bootstrap PEERID@HOST:PORT (repeatable) and either\n"
            "--group GROUPID or --config NODE.json --name NAME; plus\n"
            "[--network ID] [--timeout D] (default 10s).\n"
            "\n"
            "exec runs one command (the words of CMD joined by spaces) and\n"
            "prints its result; --json prints {status, applied, result}.\n"
            "Options may come before or after the words; words that start\n"
            "with '-' go after \"--\".\n"
            "With --stdin it reads lines \"ID COMMAND\" and prints one JSON\n"
            "line {id, status, applied, result, code} per answer, keeping\n"
            "at most N (default 64) in flight; each command gets --timeout.\n"
            "stdin may be a pipe, a file or a terminal; a line longer than\n"
            "8 MiB is an error (exit 2).\n"
            "--via sends everything through that member (a follower\n"
            "forwards to its leader).\n"
            "query asks the member's state (weak) or the leader's after a\n"
            "barrier (--strong).\n"
            "status asks every member it can reach: leader, term, commit\n"
            "and applied indexes, voters, each member's role (--hash: a\n"
            "hash of each state).\n"
            "promote makes listed member PEERID a voter, demote makes it a\n"
            "standby (the group's max_voters and its leader stay as they\n"
            "are); the request is signed with --key, a listed member's key,\n"
            "and the command returns once the change is committed.\n"
            "\n"
            "Exit status 3 when nothing answered before the deadline.\n");
}

typedef struct target {
    const char *boots[MAX_BOOT];
    size_t n_boots;
    const char *network, *group, *config, *name;
    int64_t timeout_ms;
    mk_id gid;
} target;

typedef struct run {
    uv_loop_t loop;
    mk_node *node;
    mk_group_client *client;
    uv_timer_t timer;
    bool done;
} run;

/* The options every verb takes to name its group (parse_target reads
 * them), and their short letters for getopt_long. */
#define TARGET_OPTIONS                                                       \
    {"bootstrap", required_argument, NULL, 'b'},                             \
        {"network", required_argument, NULL, 'n'},                           \
        {"group", required_argument, NULL, 'g'},                             \
        {"config", required_argument, NULL, 'c'},                            \
        {"name", required_argument, NULL, 'N'},                              \
        {"timeout", required_argument, NULL, 't'}
#define TARGET_SHORT "b:n:g:c:N:t:"

static int parse_target(target *t, int ch, const char *arg)
{
    switch (ch) {
    case 'b':
        if (t->n_boots == MAX_BOOT)
            return cli_error(CLI_USAGE, "too many --bootstrap");
        t->boots[t->n_boots++] = arg;
        return 0;
    case 'n': t->network = arg; return 0;
    case 'g': t->group = arg; return 0;
    case 'c': t->config = arg; return 0;
    case 'N': t->name = arg; return 0;
    case 't': {
        const char *why = "must be more than zero";
        if (util_parse_duration_ms(arg, &t->timeout_ms, &why) != 0 ||
            t->timeout_ms <= 0 || t->timeout_ms > UINT32_MAX)
            return cli_error(CLI_USAGE, "--timeout: '%s': %s", arg,
                             t->timeout_ms > UINT32_MAX ? "too large" : why);
        return 0;
    }
    }
    return -1; /* not a target option */
}

static int resolve_target(target *t)
{
    if (t->n_boots == 0)
        return cli_error(CLI_USAGE, "--bootstrap is required");
    if (t->group && !t->config) {
        if (mk_id_from_hex(&t->gid, t->group, strlen(t->group)) != 0)
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
    if (daemon_config_load(t->config, &cfg, err) != 0)
        return cli_error(CLI_USAGE, "--config: %s", err);
    int rc = daemon_groups_load(cfg, &dg, err);
    daemon_config_free(cfg);
    if (rc != 0)
        return cli_error(CLI_USAGE, "--config: %s", err);
    bool found = daemon_groups_find(dg, t->name, &t->gid, NULL);
    daemon_groups_free(dg);
    if (!found)
        return cli_error(CLI_USAGE, "--config %s has no group \"%s\"",
                         t->config, t->name);
    return 0;
}

static int run_open(run *r, const target *t)
{
    mk_keypair key;
    mk_id net = MK_UNIVERSE;
    char err[MK_ERRMSG_SIZE];
    if (t->network)
        mk_id_from_str(&net, t->network);
    if (mk_keypair_generate(&key) < 0)
        return cli_error(CLI_FAIL, "no randomness for an ephemeral key");
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&r->loop);
    mk_node_config nc = {
        .loop = &r->loop,
        .key = &key,
        .network = &net,
        .bootstrap = t->boots,
        .n_bootstrap = t->n_boots,
    };
    int rc = mk_node_new(&nc, &r->node, err);
    if (rc < 0) {
        uv_loop_close(&r->loop);
        return cli_error(rc == MK_EINVAL ? CLI_USAGE : CLI_FAIL, "%s", err);
    }
    mk_node_start(r->node);
    if (mk_group_client_open(r->node, &t->gid, &r->client) != 0) {
        mk_node_close(r->node, NULL, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        return cli_error(CLI_FAIL, "cannot open a group client");
    }
    uv_timer_init(&r->loop, &r->timer);
    r->timer.data = r;
    return 0;
}

static void run_wait(run *r)
{
    while (!r->done)
        uv_run(&r->loop, UV_RUN_ONCE);
}

static void run_close(run *r)
{
    uv_close((uv_handle_t *)&r->timer, NULL);
    mk_group_client_close(r->client, NULL, NULL);
    mk_node_close(r->node, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
}

static int exit_of(int status)
{
    return status == 0                     ? CLI_OK
           : status == MK_ECONNECT_TIMEOUT ? CLI_TIMEOUT
                                           : CLI_FAIL;
}

/* A result as a JSON string: as is when it is UTF-8, else hex. */
static json_t *result_json(const uint8_t *p, size_t len)
{
    json_t *s = json_stringn((const char *)p, len);
    if (s)
        return s;
    char *hex = malloc(2 * len + 1);
    if (!hex)
        return json_null();
    mk_hex_encode(p, len, hex);
    s = json_string(hex);
    free(hex);
    return s;
}

/* Joins argv words with spaces. Caller frees. */
static char *join_words(int argc, char **argv, size_t *len)
{
    size_t n = 0;
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    *len = strlen(s);
    return s;
}

/* ---- exec and query: one request ------------------------------------------ */

typedef struct one {
    run *r;
    int status;
    uint64_t applied;
    char *result;
    size_t len;
} one;

static void on_one(int status, uint64_t applied, const uint8_t *res,
                   size_t len, void *data)
{
    one *o = data;
    o->status = status;
    o->applied = applied;
    if (len && (o->result = malloc(len)))
        memcpy(o->result, res, len);
    o->len = o->result ? len : 0;
    o->r->done = true;
}

static int print_one(const one *o, bool json)
{
    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "status",
                            json_string(o->status == 0 ? "ok"
                                        : o->status == MK_ECONNECT_TIMEOUT
                                            ? "timeout"
                                            : "error"));
        json_object_set_new(j, "applied", json_integer((json_int_t)o->applied));
        json_object_set_new(j, "result",
                            result_json((const uint8_t *)o->result, o->len));
        if (o->status)
            json_object_set_new(j, "code", json_string(mk_err_name(o->status)));
        char *text = json_dumps(j, JSON_COMPACT);
        puts(text ? text : "{}");
        free(text);
        json_decref(j);
    } else if (o->status == 0) {
        fwrite(o->result, 1, o->len, stdout);
        putchar('\n');
    }
    fflush(stdout);
    if (o->status)
        cli_error(exit_of(o->status), "%s", mk_strerror(o->status));
    return exit_of(o->status);
}

/* ---- exec --stdin: many commands, pipelined ------------------------------ */

/* The longest line --stdin takes: one command is at most 8 MiB on the
 * wire (a group's command limit), and the id is short. A longer line is an
 * error, not something to skip: the caller would never learn its command
 * did not run. */
#define STDIN_LINE_MAX ((size_t)8 << 20)
#define STDIN_READ 65536

typedef struct line_op {
    struct stream_run *s;
    char id[64];
} line_op;

/* stdin may be a pipe, a socket, a terminal, a regular file or a device
 * such as /dev/null. libuv streams only the first three (uv_pipe_open on
 * a file aborts), so files are read with uv_fs_read, one request at a
 * time, the same way the stream handles are started and stopped. */
typedef struct stream_run {
    run *r;
    bool is_file;
    union {
        uv_pipe_t pipe;
        uv_tcp_t tcp;
        uv_tty_t tty;
    } h;
    uv_fs_t fs;
    bool fs_busy;
    char *buf;
    size_t len, cap;
    size_t in_flight, window;
    uint32_t timeout_ms;
    uint64_t line_no;
    bool eof, reading, failed;
    int worst;
} stream_run;

static void stream_pump(stream_run *s);

static void worse(stream_run *s, int status)
{
    if (status > s->worst)
        s->worst = status;
}

static void print_line_result(const char *id, int status, uint64_t applied,
                              const uint8_t *res, size_t len)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(id));
    json_object_set_new(j, "status",
                        json_string(status == 0 ? "ok"
                                    : status == MK_ECONNECT_TIMEOUT
                                        ? "timeout"
                                        : "error"));
    json_object_set_new(j, "applied", json_integer((json_int_t)applied));
    json_object_set_new(j, "result", result_json(res, len));
    if (status)
        json_object_set_new(j, "code", json_string(mk_err_name(status)));
    json_object_set_new(j, "t_us", json_integer(mk_mono_us()));
    char *text = json_dumps(j, JSON_COMPACT);
    if (text) {
        puts(text);
        fflush(stdout);
    }
    free(text);
    json_decref(j);
}

static void on_line_done(int status, uint64_t applied, const uint8_t *res,
                         size_t len, void *data)
{
    line_op *lo = data;
    stream_run *s = lo->s;
    print_line_result(lo->id, status, applied, res, len);
    if (status)
        worse(s, exit_of(status));
    free(lo);
    s->in_flight--;
    stream_pump(s);
}

/* Room for at least one more read, without growing past what the longest
 * line and its newline need: 0, or -1 when memory ran out. */
static int make_room(stream_run *s)
{
    if (s->cap - s->len >= 4096 || s->cap >= STDIN_LINE_MAX + 2)
        return s->cap > s->len ? 0 : -1;
    size_t cap = s->cap ? 2 * s->cap : 16384;
    if (cap > STDIN_LINE_MAX + 2)
        cap = STDIN_LINE_MAX + 2;
    char *p = realloc(s->buf, cap);
    if (!p)
        return -1;
    s->buf = p;
    s->cap = cap;
    return 0;
}

static void on_stdin_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    stream_run *s = h->data;
    (void)hint;
    if (make_room(s) != 0) {
        b->base = NULL; /* libuv reports UV_ENOBUFS */
        b->len = 0;
        return;
    }
    b->base = s->buf + s->len;
    b->len = s->cap - s->len;
}

static void stdin_failed(stream_run *s, int rc)
{
    if (!s->failed)
        cli_error(CLI_FAIL, "reading stdin: %s", uv_strerror(rc));
    s->failed = true;
    worse(s, CLI_FAIL);
}

static void on_stdin_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    stream_run *s = st->data;
    (void)b;
    if (n > 0)
        s->len += (size_t)n;
    else if (n == UV_EOF)
        s->eof = true;
    else if (n < 0) {
        s->eof = true;
        stdin_failed(s, (int)n);
    }
    stream_pump(s);
}

static void stdin_read_file(stream_run *s);

static void on_file_read(uv_fs_t *req)
{
    stream_run *s = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    s->fs_busy = false;
    if (n > 0)
        s->len += (size_t)n;
    else if (n == 0)
        s->eof = true;
    else {
        s->eof = true;
        stdin_failed(s, (int)n);
    }
    stream_pump(s);
}

static void stdin_read_file(stream_run *s)
{
    if (make_room(s) != 0) {
        s->eof = true;
        stdin_failed(s, UV_ENOMEM);
        return;
    }
    size_t room = s->cap - s->len;
    uv_buf_t b = uv_buf_init(s->buf + s->len,
                             (unsigned)(room < STDIN_READ ? room : STDIN_READ));
    s->fs.data = s;
    /* Offset -1: read at the file position, so stdin that was partly read
     * already (or is a device) is read from where it stands. */
    int rc = uv_fs_read(&s->r->loop, &s->fs, 0, &b, 1, -1, on_file_read);
    if (rc != 0) {
        s->eof = true;
        stdin_failed(s, rc);
        return;
    }
    s->fs_busy = true;
}

static void stdin_want(stream_run *s, bool want)
{
    if (s->is_file) {
        if (want && !s->fs_busy)
            stdin_read_file(s);
        return;
    }
    if (want && !s->reading) {
        int rc = uv_read_start((uv_stream_t *)&s->h, on_stdin_alloc,
                               on_stdin_read);
        if (rc != 0) {
            s->eof = true;
            stdin_failed(s, rc);
            return;
        }
        s->reading = true;
    } else if (!want && s->reading) {
        uv_read_stop((uv_stream_t *)&s->h);
        s->reading = false;
    }
}

static void line_too_long(stream_run *s)
{
    cli_error(CLI_USAGE,
              "stdin line %llu is longer than %zu bytes (the limit for one "
              "command); nothing from it on was run",
              (unsigned long long)(s->line_no + 1), STDIN_LINE_MAX);
    s->failed = true;
    worse(s, CLI_USAGE);
}

/* Submits complete lines while the window has room; stops reading stdin
 * while it is full, and for good after a failure. */
static void stream_pump(stream_run *s)
{
    while (!s->failed && s->in_flight < s->window) {
        char *nl = s->len ? memchr(s->buf, '\n', s->len) : NULL;
        size_t ll = nl ? (size_t)(nl - s->buf) : s->len;
        if (ll > STDIN_LINE_MAX) {
            line_too_long(s);
            break;
        }
        if (!nl && !(s->eof && s->len > 0))
            break;
        s->line_no++;
        char *line = s->buf;
        size_t idl = 0;
        while (idl < ll && line[idl] != ' ')
            idl++;
        const char *cmd = idl < ll ? line + idl + 1 : line + ll;
        size_t cl = idl < ll ? ll - idl - 1 : 0;
        if (ll > 0) {
            line_op *lo = calloc(1, sizeof *lo);
            int rc = lo ? 0 : MK_ENOMEM;
            if (lo) {
                lo->s = s;
                snprintf(lo->id, sizeof lo->id, "%.*s", (int)idl, line);
                rc = mk_group_client_execute(s->r->client, cmd, cl,
                                             s->timeout_ms, on_line_done, lo);
            }
            if (rc == 0) {
                s->in_flight++;
            } else {
                /* Said on both channels: the JSON reader sees the id fail,
                 * a person sees which line and why. */
                char id[64];
                snprintf(id, sizeof id, "%.*s", (int)idl, line);
                print_line_result(id, rc, 0, NULL, 0);
                cli_error(CLI_FAIL, "stdin line %llu: %s",
                          (unsigned long long)s->line_no, mk_strerror(rc));
                worse(s, CLI_FAIL);
                free(lo);
            }
        }
        size_t used = nl ? ll + 1 : ll;
        memmove(s->buf, s->buf + used, s->len - used);
        s->len -= used;
    }
    stdin_want(s, !s->eof && !s->failed && s->in_flight < s->window);
    if ((s->eof || s->failed) && s->in_flight == 0 && !s->fs_busy &&
        (s->failed || s->len == 0))
        s->r->done = true;
}

static int exec_stdin(run *r, const target *t, uint64_t window)
{
    stream_run s = {.r = r, .window = window,
                    .timeout_ms = (uint32_t)t->timeout_ms};
    int rc = 0;
    uv_handle_type kind = uv_guess_handle(0);
    switch (kind) {
    case UV_NAMED_PIPE:
        rc = uv_pipe_init(&r->loop, &s.h.pipe, 0);
        if (rc == 0 && (rc = uv_pipe_open(&s.h.pipe, 0)) != 0)
            uv_close((uv_handle_t *)&s.h, NULL);
        break;
    case UV_TCP:
        rc = uv_tcp_init(&r->loop, &s.h.tcp);
        if (rc == 0 && (rc = uv_tcp_open(&s.h.tcp, 0)) != 0)
            uv_close((uv_handle_t *)&s.h, NULL);
        break;
    case UV_TTY:
        rc = uv_tty_init(&r->loop, &s.h.tty, 0, 0);
        break;
    case UV_FILE:
        s.is_file = true; /* regular files and devices (/dev/null) */
        break;
    default:
        return cli_error(CLI_USAGE, "--stdin: standard input is %s",
                         kind == UV_UNKNOWN_HANDLE ? "closed or unreadable"
                                                   : "not readable here");
    }
    if (rc != 0) {
        uv_run(&r->loop, UV_RUN_NOWAIT);
        return cli_error(CLI_FAIL, "--stdin: %s", uv_strerror(rc));
    }
    if (!s.is_file)
        s.h.pipe.data = &s; /* the data field every handle has */
    stream_pump(&s);
    run_wait(r);
    if (!s.is_file)
        uv_close((uv_handle_t *)&s.h, NULL);
    uv_run(&r->loop, UV_RUN_NOWAIT);
    free(s.buf);
    return s.worst;
}

/* ---- exec and query ---------------------------------------------------------- */

static int exec_or_query(int argc, char **argv, bool query)
{
    static const struct option opts[] = {
        TARGET_OPTIONS,
        {"via", required_argument, NULL, 'v'},
        {"json", no_argument, NULL, 'j'},
        {"strong", no_argument, NULL, 's'},
        {"stdin", no_argument, NULL, 'i'},
        {"window", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    target t = {.timeout_ms = 10000};
    const char *via = NULL;
    bool json = false, strong = false, from_stdin = false;
    uint64_t window = 64;
    int ch, rc;
    optind = 1;
    opterr = 0; /* unknown options are reported below, with a hint */
    /* Options are options wherever they stand, also after command words
     * (`exec TARGET add 5 --via P` sends "add 5" through P); words that
     * start with '-' go after "--". */
    while ((ch = getopt_long(argc, argv, ":" TARGET_SHORT "v:jsiw:h", opts,
                             NULL)) != -1) {
        if ((rc = parse_target(&t, ch, optarg)) > 0)
            return rc;
        if (rc == 0)
            continue;
        switch (ch) {
        case 'v': via = optarg; break;
        case 'j': json = true; break;
        case 's': strong = true; break;
        case 'i': from_stdin = true; break;
        case 'w':
            if (util_parse_u64(optarg, &window) != 0 || window == 0)
                return cli_error(CLI_USAGE, "--window: '%s' is not a count",
                                 optarg);
            break;
        case 'h': usage(stdout); return CLI_OK;
        case ':':
            return cli_error(CLI_USAGE, "%s needs a value", argv[optind - 1]);
        default:
            return cli_error(CLI_USAGE,
                             "unknown option '%s' (command words that start "
                             "with '-' go after \"--\")",
                             argv[optind - 1]);
        }
    }
    if ((rc = resolve_target(&t)) != 0)
        return rc;
    mk_peer_id via_id;
    if (via && mk_id_from_hex(&via_id, via, strlen(via)) != 0)
        return cli_error(CLI_USAGE, "--via: '%s' is not a PeerId", via);
    if (!from_stdin && optind >= argc)
        return cli_error(CLI_USAGE, "what should it %s?",
                         query ? "ask" : "run");
    if (from_stdin && (query || optind < argc))
        return cli_error(CLI_USAGE, "--stdin takes no command words");

    run r = {0};
    if ((rc = run_open(&r, &t)) != 0)
        return rc;
    if (via)
        mk_group_client_via(r.client, &via_id);
    if (from_stdin) {
        rc = exec_stdin(&r, &t, window);
        run_close(&r);
        return rc;
    }
    size_t len;
    char *words = join_words(argc - optind, argv + optind, &len);
    one o = {.r = &r};
    rc = !words ? MK_ENOMEM
         : query ? mk_group_client_query(r.client, words, len,
                                         strong ? MK_STRONG : MK_WEAK,
                                         (uint32_t)t.timeout_ms, on_one, &o)
                 : mk_group_client_execute(r.client, words, len,
                                           (uint32_t)t.timeout_ms, on_one, &o);
    free(words);
    if (rc != 0) {
        run_close(&r);
        return cli_error(CLI_FAIL, "%s", mk_strerror(rc));
    }
    run_wait(&r);
    rc = print_one(&o, json);
    free(o.result);
    run_close(&r);
    return rc;
}

/* ---- status ------------------------------------------------------------------ */

typedef struct asked {
    mk_peer_id peer;
    bool pending, ok;
    int status;
    mk_member_status st;
} asked;

typedef struct status_run {
    run *r;
    const target *t;
    bool hash;
    int64_t deadline, first_answer;
    asked a[MAX_MEMBERS];
    size_t n;
    mk_peer_id voters[MAX_MEMBERS];
    size_t n_voters;
} status_run;

typedef struct status_req {
    status_run *s;
    size_t i;
} status_req;

static void ask(status_run *s, const mk_peer_id *p);

static void on_status(int status, const mk_member_status *st, void *data)
{
    status_req *q = data;
    status_run *s = q->s;
    asked *a = &s->a[q->i];
    free(q);
    a->pending = false;
    a->status = status;
    if (status == 0) {
        a->ok = true;
        a->st = *st;
        if (!s->first_answer)
            s->first_answer = mk_mono_ms();
        if (!s->n_voters) {
            s->n_voters = st->st.n_voters < MAX_MEMBERS ? st->st.n_voters
                                                         : MAX_MEMBERS;
            memcpy(s->voters, st->voters, s->n_voters * sizeof *s->voters);
        }
    }
}

static void ask(status_run *s, const mk_peer_id *p)
{
    for (size_t i = 0; i < s->n; i++)
        if (mk_id_eq(&s->a[i].peer, p))
            return;
    if (s->n == MAX_MEMBERS)
        return;
    status_req *q = malloc(sizeof *q);
    if (!q)
        return;
    asked *a = &s->a[s->n];
    memset(a, 0, sizeof *a);
    a->peer = *p;
    a->pending = true;
    q->s = s;
    q->i = s->n++;
    int64_t left = s->deadline - mk_mono_ms();
    if (mk_group_client_status(s->r->client, p, s->hash,
                               left > 0 ? (uint32_t)left : 1, on_status,
                               q) != 0) {
        a->pending = false;
        a->status = MK_ENOMEM;
        free(q);
    }
}

static void on_status_poll(uv_timer_t *h)
{
    status_run *s = h->data;
    int64_t now = mk_mono_ms();
    mk_peer_id ms[MAX_MEMBERS];
    size_t n = mk_group_client_members(s->r->client, ms, MAX_MEMBERS);
    for (size_t i = 0; i < n; i++)
        ask(s, &ms[i]);
    bool pending = false;
    for (size_t i = 0; i < s->n; i++)
        pending |= s->a[i].pending;
    /* Done once every voter was asked and answered; a member that is
     * down (or a voter missing from the catalog) gets a grace period
     * after the first answer, not the whole deadline. */
    bool voters_asked = true;
    for (size_t v = 0; v < s->n_voters; v++) {
        bool in = false;
        for (size_t i = 0; i < s->n; i++)
            in |= mk_id_eq(&s->a[i].peer, &s->voters[v]);
        voters_asked &= in;
    }
    int64_t grace = s->t->timeout_ms / 4 > 1000 ? s->t->timeout_ms / 4 : 1000;
    bool settled = s->first_answer &&
                   ((voters_asked && !pending) ||
                    now - s->first_answer > grace);
    if (settled || now >= s->deadline) {
        s->r->done = true;
        uv_timer_stop(h);
    }
}

static int print_status(status_run *s, bool json)
{
    const asked *best = NULL;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->a[i].ok)
            continue;
        if (!best || (s->a[i].st.st.is_leader && !best->st.st.is_leader) ||
            (!best->st.st.is_leader &&
             s->a[i].st.st.term > best->st.st.term))
            best = &s->a[i];
    }
    char hex[MK_ID_HEX_LEN + 1], gid[MK_ID_HEX_LEN + 1];
    mk_id_hex(&s->t->gid, gid);
    if (!best) {
        if (json) {
            printf("{\"group\":\"%s\",\"members\":[]}\n", gid);
            fflush(stdout);
        }
        return cli_error(CLI_TIMEOUT, "no member of %s answered", gid);
    }
    const mk_group_status *bs = &best->st.st;
    if (json) {
        json_t *j = json_object(), *vs = json_array(), *ms = json_array();
        json_object_set_new(j, "group", json_string(gid));
        json_object_set_new(j, "leader",
                            bs->has_leader
                                ? json_string(mk_id_hex(&bs->leader, hex))
                                : json_null());
        json_object_set_new(j, "term", json_integer((json_int_t)bs->term));
        json_object_set_new(j, "commit_index",
                            json_integer((json_int_t)bs->commit_index));
        json_object_set_new(j, "applied_index",
                            json_integer((json_int_t)bs->applied_index));
        json_object_set_new(j, "applied", json_integer((json_int_t)bs->applied));
        for (size_t v = 0; v < best->st.st.n_voters && v < 64; v++)
            json_array_append_new(vs,
                                  json_string(mk_id_hex(&best->st.voters[v], hex)));
        json_object_set_new(j, "voters", vs);
        for (size_t i = 0; i < s->n; i++) {
            const asked *a = &s->a[i];
            json_t *m = json_object();
            json_object_set_new(m, "peer", json_string(mk_id_hex(&a->peer, hex)));
            if (!a->ok) {
                json_object_set_new(m, "error",
                                    json_string(mk_err_name(a->pending
                                                                ? MK_ECONNECT_TIMEOUT
                                                                : a->status)));
            } else {
                const mk_group_status *st = &a->st.st;
                json_object_set_new(m, "state",
                                    json_string(mk_member_role_name(a->st.role)));
                json_object_set_new(m, "online", json_boolean(st->online));
                json_object_set_new(m, "role", json_string(st->is_voter
                                                               ? "voter"
                                                               : "standby"));
                if (st->storage_failed)
                    json_object_set_new(m, "storage_failed", json_true());
                json_object_set_new(m, "is_leader", json_boolean(st->is_leader));
                json_object_set_new(m, "leader",
                                    st->has_leader
                                        ? json_string(mk_id_hex(&st->leader, hex))
                                        : json_null());
                json_object_set_new(m, "term", json_integer((json_int_t)st->term));
                json_object_set_new(m, "commit_index",
                                    json_integer((json_int_t)st->commit_index));
                json_object_set_new(m, "applied_index",
                                    json_integer((json_int_t)st->applied_index));
                json_object_set_new(m, "applied",
                                    json_integer((json_int_t)st->applied));
                json_object_set_new(
                    m, "entries_proposed",
                    json_integer((json_int_t)a->st.entries_proposed));
                json_object_set_new(
                    m, "commands_proposed",
                    json_integer((json_int_t)a->st.commands_proposed));
                if (a->st.has_hash)
                    json_object_set_new(m, "hash",
                                        json_string(mk_id_hex(&a->st.hash, hex)));
            }
            json_array_append_new(ms, m);
        }
        json_object_set_new(j, "members", ms);
        char *text = json_dumps(j, JSON_COMPACT);
        puts(text ? text : "{}");
        free(text);
        json_decref(j);
    } else {
        printf("group   %s\n", gid);
        printf("leader  %s  term %llu\n",
               bs->has_leader ? mk_id_hex(&bs->leader, hex) : "(none)",
               (unsigned long long)bs->term);
        printf("commit  %llu  applied index %llu  applied %llu\n",
               (unsigned long long)bs->commit_index,
               (unsigned long long)bs->applied_index,
               (unsigned long long)bs->applied);
        printf("voters ");
        for (size_t v = 0; v < best->st.st.n_voters && v < 64; v++)
            printf(" %s", mk_id_hex(&best->st.voters[v], hex));
        printf("\n");
        for (size_t i = 0; i < s->n; i++) {
            const asked *a = &s->a[i];
            if (!a->ok) {
                printf("member  %s  %s\n", mk_id_hex(&a->peer, hex),
                       mk_strerror(a->pending ? MK_ECONNECT_TIMEOUT
                                              : a->status));
                continue;
            }
            printf("member  %s  %-9s %-7s term %llu commit %llu applied %llu",
                   mk_id_hex(&a->peer, hex),
                   a->st.st.storage_failed ? "STORAGE-FAILED"
                                           : mk_member_role_name(a->st.role),
                   a->st.st.is_voter ? "voter" : "standby",
                   (unsigned long long)a->st.st.term,
                   (unsigned long long)a->st.st.commit_index,
                   (unsigned long long)a->st.st.applied);
            if (a->st.has_hash)
                printf(" hash %s", mk_id_hex(&a->st.hash, hex));
            printf("\n");
        }
    }
    fflush(stdout);
    return CLI_OK;
}

static int group_status(int argc, char **argv)
{
    static const struct option opts[] = {
        TARGET_OPTIONS,
        {"json", no_argument, NULL, 'j'},
        {"hash", no_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    target t = {.timeout_ms = 10000};
    bool json = false, hash = false;
    int ch, rc;
    optind = 1;
    while ((ch = getopt_long(argc, argv, TARGET_SHORT "jHh", opts, NULL)) !=
           -1) {
        if ((rc = parse_target(&t, ch, optarg)) > 0)
            return rc;
        if (rc == 0)
            continue;
        switch (ch) {
        case 'j': json = true; break;
        case 'H': hash = true; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    /* The GroupId may also be the one positional argument. */
    if (optind < argc && !t.group && !t.config)
        t.group = argv[optind++];
    if (optind != argc)
        return cli_error(CLI_USAGE, "unexpected argument '%s'", argv[optind]);
    if ((rc = resolve_target(&t)) != 0)
        return rc;
    run r = {0};
    if ((rc = run_open(&r, &t)) != 0)
        return rc;
    status_run s = {.r = &r, .t = &t, .hash = hash,
                    .deadline = mk_mono_ms() + t.timeout_ms};
    r.timer.data = &s;
    uv_timer_start(&r.timer, on_status_poll, 20, 20);
    run_wait(&r);
    rc = print_status(&s, json);
    run_close(&r);
    return rc;
}

/* ---- promote / demote -------------------------------------------------------- */

static int group_assign(int argc, char **argv, bool voter)
{
    static const struct option opts[] = {
        TARGET_OPTIONS,
        {"key", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    target t = {.timeout_ms = 10000};
    const char *key_path = NULL;
    bool json = false;
    int ch, rc;
    optind = 1;
    while ((ch = getopt_long(argc, argv, TARGET_SHORT "k:jh", opts, NULL)) !=
           -1) {
        if ((rc = parse_target(&t, ch, optarg)) > 0)
            return rc;
        if (rc == 0)
            continue;
        switch (ch) {
        case 'k': key_path = optarg; break;
        case 'j': json = true; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (optind + 1 != argc)
        return cli_error(CLI_USAGE, "%s takes one PEERID (the member)",
                         voter ? "promote" : "demote");
    mk_peer_id member;
    if (mk_id_from_hex(&member, argv[optind], strlen(argv[optind])) != 0)
        return cli_error(CLI_USAGE, "'%s' is not a PeerId (64 hex)",
                         argv[optind]);
    if (!key_path)
        return cli_error(CLI_USAGE,
                         "--key is required: a listed member's key signs "
                         "the request");
    mk_keypair key;
    char err[MK_ERRMSG_SIZE];
    if ((rc = mk_keypair_load(&key, key_path, err)) < 0)
        return cli_error(CLI_USAGE, "--key: %s", err);
    if ((rc = resolve_target(&t)) != 0)
        return rc;
    run r = {0};
    if ((rc = run_open(&r, &t)) != 0)
        return rc;
    one o = {.r = &r};
    int64_t t0_us = mk_mono_us();
    rc = mk_group_client_assign(r.client, &member, voter, &key,
                                (uint32_t)t.timeout_ms, on_one, &o);
    if (rc != 0) {
        run_close(&r);
        return cli_error(CLI_FAIL, "%s", mk_strerror(rc));
    }
    run_wait(&r);
    int64_t t_us = mk_mono_us();
    run_close(&r);
    const char *role = voter ? "voter" : "standby";
    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "status", json_string(o.status == 0 ? "ok"
                                                     : o.status ==
                                                             MK_ECONNECT_TIMEOUT
                                                         ? "timeout"
                                                         : "error"));
        json_object_set_new(j, "member", json_string(argv[optind]));
        json_object_set_new(j, "role", json_string(role));
        /* Monotonic, as exec --stdin's t_us: a benchmark lines them up. */
        json_object_set_new(j, "t0_us", json_integer(t0_us));
        json_object_set_new(j, "t_us", json_integer(t_us));
        if (o.status)
            json_object_set_new(j, "code", json_string(mk_err_name(o.status)));
        char *text = json_dumps(j, JSON_COMPACT);
        puts(text ? text : "{}");
        free(text);
        json_decref(j);
    } else if (o.status == 0) {
        printf("%s is a %s\n", argv[optind], role);
    }
    fflush(stdout);
    free(o.result);
    if (o.status == MK_EINVAL)
        return cli_error(CLI_FAIL,
                         "refused: %s is not listed, or making it a %s would "
                         "leave more than max_voters voters, none, or the "
                         "leader demoted",
                         argv[optind], role);
    if (o.status)
        return cli_error(exit_of(o.status), "%s", mk_strerror(o.status));
    return CLI_OK;
}

int cmd_group(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "exec") == 0)
        return exec_or_query(argc - 1, argv + 1, false);
    if (argc >= 2 && strcmp(argv[1], "query") == 0)
        return exec_or_query(argc - 1, argv + 1, true);
    if (argc >= 2 && strcmp(argv[1], "status") == 0)
        return group_status(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "promote") == 0)
        return group_assign(argc - 1, argv + 1, true);
    if (argc >= 2 && strcmp(argv[1], "demote") == 0)
        return group_assign(argc - 1, argv + 1, false);
    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return CLI_OK;
    }
    usage(stderr);
    return CLI_USAGE;
}
