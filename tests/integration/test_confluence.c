/* The fx-correlator confluence across real processes: three coalitiond
 * members hosting a coalition's Almanac and two fx-correlator confluences
 * (stall=partial and stall=halt), two build/examples/price-feed organisms,
 * and this process as an integrator (an ephemeral node with readers,
 * stream consumers and a recording replica) and as a CLI user.
 *
 *  - one committee, one log: a second coalition file that references the
 *    same confluence config reads the same GroupId and the same commits;
 *  - swapping the spanned citizens derives a disjoint GroupId, which
 *    surfaces as ConnectTimeout (reader and CLI, exit 3);
 *  - SIGSTOPping one feed gives the declared behaviour: partial commits
 *    with evidence from the live feed only, or a halt; both recover;
 *  - replaying the recorded log into a fresh state machine reproduces
 *    every commit byte for byte, and the commits verify against the
 *    feeds' own data, while evidence that does not match is rejected;
 *  - retiring commits the marker; readers report it with the successor.
 *
 * Timing: cadences and every wait scale with TIME_FACTOR (3 under
 * ASan/UBSan); nothing asserts on speed.
 */
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coalition/config_file.h"
#include "coalition/confluence.h"
#include "coalition/fx_correlator.h"
#include "coalition/price_feed.h"
#include "daemon.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/stream.h"
#include "proc.h"

#define N_MEMBERS 3
#define MAX_FACTS 20000

static double TF = 1.0;

static int ms(int base)
{
    return (int)(base * TF);
}

/* Instance names unique to this run: a stray feed of another run on the
 * same universe can never be taken for ours. */
static char EUR[64], USD[64];

typedef struct recorded {
    uint8_t *bytes[MAX_FACTS];
    size_t len[MAX_FACTS];
    size_t n;
} recorded;

/* A replica's machine that keeps every command before applying it. */
typedef struct recorder {
    struct mk_fsm outer, inner;
    mk_buf *cmds;
    size_t n, cap;
    bool restored; /* started from a snapshot: the log is incomplete */
} recorder;

typedef struct rstate {
    co_confluence_reader *r;
    int last;
    int calls;
    bool retired;
} rstate;

static struct {
    char dir[512];
    char file_a[600], file_b[600], file_c[600];
    daemon_proc d[N_MEMBERS];
    daemon_proc feed[2];
    co_config_file *a, *b, *c;
    co_confluence_def def_a, def_strict, def_b, def_c;
    uv_loop_t loop;
    uv_timer_t pulse;
    mk_keypair key;
    mk_node *node;
    mk_streams *streams;
    mk_consumer *cons[2];
    recorded seen[2]; /* the feeds' own data, as this consumer got it */
    rstate ra, rs;    /* fx-correlator (partial) and fx-strict (halt) */
} E;

/* ---- the loop ---------------------------------------------------------- */

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static bool wait_until(bool (*pred)(void *), void *arg, int timeout_ms)
{
    int64_t end = mk_mono_ms() + timeout_ms;
    while (mk_mono_ms() < end) {
        if (pred(arg))
            return true;
        uv_run(&E.loop, UV_RUN_ONCE);
    }
    return pred(arg);
}

static void spin(int for_ms)
{
    int64_t end = mk_mono_ms() + for_ms;
    while (mk_mono_ms() < end)
        uv_run(&E.loop, UV_RUN_ONCE);
}

static void dump_logs(void)
{
    for (int i = 0; i < N_MEMBERS; i++)
        daemon_dump_log(&E.d[i]);
    for (int i = 0; i < 2; i++)
        daemon_dump_log(&E.feed[i]);
}

/* ---- processes --------------------------------------------------------- */

static const char *boot0(char *buf, size_t len)
{
    return daemon_bootstrap(&E.d[0], buf, len);
}

/* Starts a price feed like the demo does, and reads its JSON line. */
static int feed_start(daemon_proc *d, const char *instance, const char *pair,
                      const char *start)
{
    char exe[1024], boot[200], interval[16];
    build_path("examples/price-feed", exe, sizeof exe);
    snprintf(interval, sizeof interval, "%d", ms(100));
    int out[2];
    if (pipe(out) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int logfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(out[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);
        close(out[0]);
        execl(exe, exe, "--listen", "127.0.0.1:0", "--key", d->key,
              "--instance", instance, "--pair", pair, "--start", start,
              "--interval-ms", interval, "--bootstrap",
              boot0(boot, sizeof boot), (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    d->pid = pid;
    char line[512];
    size_t len = 0;
    int budget = ms(10000);
    struct pollfd p = {out[0], POLLIN, 0};
    while (len < sizeof line - 1 && budget > 0) {
        if (poll(&p, 1, 100) <= 0) {
            budget -= 100;
            continue;
        }
        if (read(out[0], line + len, 1) != 1 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(out[0]);
    json_t *j = json_loads(line, 0, NULL);
    const char *stream = json_string_value(json_object_get(j, "stream"));
    mk_id want;
    co_organism_ref ref = {.role = "oracle", .instance = instance};
    int rc = stream && co_price_feed_stream(&ref, &want, NULL) == 0 &&
                     strlen(stream) == 64
                 ? 0
                 : -1;
    if (rc == 0) {
        char hex[MK_ID_HEX_LEN + 1];
        rc = strcmp(stream, mk_id_hex(&want, hex)) == 0 ? 0 : -1;
    }
    json_decref(j);
    return rc;
}

/* ---- the coalition files ----------------------------------------------- */

static json_t *acl(void)
{
    json_t *a = json_object(), *is = json_array();
    for (int i = 0; i < N_MEMBERS; i++)
        json_array_append_new(is, json_string(E.d[i].peer_id));
    json_object_set_new(a, "issuers", is);
    json_object_set_new(a, "mrtds", json_array());
    return a;
}

static json_t *organism(const char *instance)
{
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string("oracle"));
    json_object_set_new(o, "instance", json_string(instance));
    return o;
}

static json_t *fx(const char *name, const char *first, const char *second,
                  const char *stall)
{
    char content[200];
    snprintf(content, sizeof content,
             "fx-correlator/v1;clock=test.fx;stall=%s;bound_ticks=3", stall);
    json_t *c = json_object(), *orgs = json_array();
    json_array_append_new(orgs, json_string(first));
    json_array_append_new(orgs, json_string(second));
    json_object_set_new(c, "name", json_string(name));
    json_object_set_new(c, "lattices", json_array());
    json_object_set_new(c, "organisms", orgs);
    json_object_set_new(c, "content", json_string(content));
    json_object_set_new(c, "acl", acl());
    return c;
}

static void write_coalition(const char *path, const char *name,
                            bool almanac, bool swapped)
{
    json_t *root = json_object(), *orgs = json_array(), *cs = json_array();
    json_array_append_new(orgs, organism(EUR));
    json_array_append_new(orgs, organism(USD));
    if (almanac) {
        char content[64];
        snprintf(content, sizeof content, "almanac/v1;cadence_ms=%d",
                 ms(300));
        json_t *a = json_object();
        json_object_set_new(a, "name", json_string("almanac"));
        json_object_set_new(a, "lattices", json_array());
        json_object_set_new(a, "organisms", json_array());
        json_object_set_new(a, "content", json_string(content));
        json_object_set_new(a, "acl", acl());
        json_array_append_new(cs, a);
    }
    json_array_append_new(cs, swapped ? fx("fx-correlator", USD, EUR,
                                           "partial")
                                      : fx("fx-correlator", EUR, USD,
                                           "partial"));
    if (almanac)
        json_array_append_new(cs, fx("fx-strict", EUR, USD, "halt"));
    json_object_set_new(root, "name", json_string(name));
    json_object_set_new(root, "lattices", json_array());
    json_object_set_new(root, "organisms", orgs);
    json_object_set_new(root, "confluences", cs);
    json_object_set_new(root, "ticket_issuer", json_null());
    assert_int_equal(json_dump_file(root, path, JSON_INDENT(1)), 0);
    json_decref(root);
}

static void load(const char *path, co_config_file **f, const char *name,
                 co_confluence_def *def)
{
    char err[CO_ERRMSG_SIZE];
    if (co_config_file_load(path, f, err) != 0)
        fail_msg("%s", err);
    const co_confluence_config *c =
        co_coalition_confluence(co_config_file_coalition(*f), name);
    assert_non_null(c);
    if (co_confluence_define(c, NULL, 0, def, err) != 0)
        fail_msg("%s", err);
}

/* ---- readers and consumers --------------------------------------------- */

static void on_reader(co_confluence_reader *r, int status, void *data)
{
    rstate *s = data;
    s->last = status;
    s->calls++;
    if (status == CO_ERETIRED)
        s->retired = true;
}

static void open_reader(rstate *s, const co_confluence_def *def,
                        int timeout_ms)
{
    char err[CO_ERRMSG_SIZE];
    memset(s, 0, sizeof *s);
    s->last = 1;
    if (co_confluence_read(E.node, def, (uint32_t)timeout_ms, on_reader, s,
                           &s->r, err) != 0)
        fail_msg("co_confluence_read: %s", err);
}

static int on_feed(mk_consumer *c, const mk_datum *d, void *data)
{
    recorded *r = data;
    if (r->n < MAX_FACTS && (r->bytes[r->n] = malloc(d->len))) {
        memcpy(r->bytes[r->n], d->bytes, d->len);
        r->len[r->n++] = d->len;
    }
    return 0;
}

typedef struct want_commits {
    rstate *s;
    uint64_t n;
} want_commits;

static bool has_commits(void *arg)
{
    want_commits *w = arg;
    return w->s->calls > 0 && w->s->last >= 0 &&
           co_confluence_count(w->s->r) >= w->n;
}

static uint64_t wait_commits(rstate *s, uint64_t n, int timeout_ms)
{
    want_commits w = {s, n};
    if (!wait_until(has_commits, &w, timeout_ms)) {
        dump_logs();
        fail_msg("no %llu commits (have %llu, status %d)",
                 (unsigned long long)n,
                 (unsigned long long)(s->r ? co_confluence_count(s->r) : 0),
                 s->last);
    }
    return co_confluence_count(s->r);
}

/* ---- setup ------------------------------------------------------------- */

static int setup(void **state)
{
    const char *tf = getenv("TIME_FACTOR");
    TF = tf ? atof(tf) : 1.0;
    if (TF < 1.0)
        TF = 1.0;
    signal(SIGPIPE, SIG_IGN);
    assert_non_null(daemon_tmpdir(E.dir, sizeof E.dir));
    snprintf(EUR, sizeof EUR, "test.fx.eur.%d", (int)getpid());
    snprintf(USD, sizeof USD, "test.fx.usd.%d", (int)getpid());
    for (int i = 0; i < N_MEMBERS; i++) {
        char name[8];
        snprintf(name, sizeof name, "m%d", i);
        assert_int_equal(daemon_prepare(&E.d[i], E.dir, name), 0);
    }
    assert_int_equal(daemon_prepare(&E.feed[0], E.dir, "eur"), 0);
    assert_int_equal(daemon_prepare(&E.feed[1], E.dir, "usd"), 0);
    snprintf(E.file_a, sizeof E.file_a, "%s/test.fx.json", E.dir);
    snprintf(E.file_b, sizeof E.file_b, "%s/test.analytics.json", E.dir);
    snprintf(E.file_c, sizeof E.file_c, "%s/swapped.json", E.dir);
    write_coalition(E.file_a, "test.fx", true, false);
    write_coalition(E.file_b, "test.analytics", false, false);
    write_coalition(E.file_c, "test.fx", false, true);
    load(E.file_a, &E.a, "fx-correlator", &E.def_a);
    assert_int_equal(
        co_confluence_define(co_coalition_confluence(
                                 co_config_file_coalition(E.a), "fx-strict"),
                             NULL, 0, &E.def_strict, NULL),
        0);
    load(E.file_b, &E.b, "fx-correlator", &E.def_b);
    load(E.file_c, &E.c, "fx-correlator", &E.def_c);

    char boot[200];
    const char *first[] = {"--coalition", E.file_a, NULL};
    if (daemon_start(&E.d[0], first) != 0)
        fail_msg("m0 did not start");
    const char *rest[] = {"--coalition", E.file_a, "--bootstrap",
                          boot0(boot, sizeof boot), NULL};
    for (int i = 1; i < N_MEMBERS; i++)
        if (daemon_start(&E.d[i], rest) != 0)
            fail_msg("m%d did not start", i);
    if (feed_start(&E.feed[0], EUR, "EURUSD", "1.0850") != 0 ||
        feed_start(&E.feed[1], USD, "USDCHF", "0.8800") != 0) {
        dump_logs();
        fail_msg("a price feed did not start");
    }

    uv_loop_init(&E.loop);
    uv_timer_init(&E.loop, &E.pulse);
    uv_timer_start(&E.pulse, on_pulse, 5, 5);
    assert_int_equal(mk_keypair_generate(&E.key), 0);
    const char *bp[] = {boot};
    mk_node_config nc = {.loop = &E.loop, .key = &E.key, .bootstrap = bp,
                         .n_bootstrap = 1};
    char err[MK_ERRMSG_SIZE];
    assert_int_equal(mk_node_new(&nc, &E.node, err), 0);
    assert_int_equal(mk_node_start(E.node), 0);
    assert_int_equal(mk_streams_new(E.node, &E.streams), 0);
    co_confluence_info ia;
    assert_int_equal(co_confluence_info_get(&E.def_a, &ia, NULL), 0);
    for (int i = 0; i < 2; i++) {
        mk_consumer_config cc = {.stream = ia.src[i].stream,
                                 .on_datum = on_feed,
                                 .data = &E.seen[i]};
        assert_int_equal(mk_consumer_open(E.streams, &cc, &E.cons[i], err),
                         0);
    }
    open_reader(&E.ra, &E.def_a, (uint32_t)ms(30000));
    open_reader(&E.rs, &E.def_strict, (uint32_t)ms(30000));
    return 0;
}

static void on_closed(void *data)
{
    (*(int *)data)--;
}

static void on_node_closed(void *data)
{
    mk_streams_close(E.streams, NULL, NULL);
}

static int teardown(void **state)
{
    int pending = 0;
    if (E.ra.r)
        pending++, co_confluence_close(E.ra.r, on_closed, &pending);
    if (E.rs.r)
        pending++, co_confluence_close(E.rs.r, on_closed, &pending);
    for (int i = 0; i < 2; i++)
        if (E.cons[i])
            pending++, mk_consumer_close(E.cons[i], on_closed, &pending);
    int64_t end = mk_mono_ms() + 5000;
    while (pending > 0 && mk_mono_ms() < end)
        uv_run(&E.loop, UV_RUN_ONCE);
    /* The members and feeds leave while our node still answers them. */
    for (int i = 0; i < 2; i++)
        if (E.feed[i].pid > 0)
            kill(E.feed[i].pid, SIGCONT), kill(E.feed[i].pid, SIGTERM);
    for (int i = 0; i < N_MEMBERS; i++)
        if (E.d[i].pid > 0)
            kill(E.d[i].pid, SIGTERM);
    spin(ms(1500));
    int bad = 0;
    for (int i = 0; i < N_MEMBERS; i++)
        bad |= daemon_signal_wait(&E.d[i], SIGTERM, ms(10000)) != 0;
    for (int i = 0; i < 2; i++)
        bad |= daemon_signal_wait(&E.feed[i], SIGTERM, ms(10000)) != 0;
    uv_timer_stop(&E.pulse);
    uv_close((uv_handle_t *)&E.pulse, NULL);
    mk_node_close(E.node, on_node_closed, NULL);
    uv_run(&E.loop, UV_RUN_DEFAULT);
    uv_loop_close(&E.loop);
    for (int f = 0; f < 2; f++)
        for (size_t i = 0; i < E.seen[f].n; i++)
            free(E.seen[f].bytes[i]);
    co_config_file_free(E.a);
    co_config_file_free(E.b);
    co_config_file_free(E.c);
    if (bad)
        dump_logs();
    else
        daemon_rmtree(E.dir);
    return bad ? -1 : 0;
}

/* ---- the CLI ----------------------------------------------------------- */

static json_t *cli_status(const char *file, const char *name, int want)
{
    char exe[1024], boot[200], timeout[16];
    build_path("coalition", exe, sizeof exe);
    snprintf(timeout, sizeof timeout, "%dms", ms(want == 3 ? 3000 : 20000));
    char *argv[] = {exe, "confluence", "status", "--coalition", (char *)file,
                    "--bootstrap", (char *)boot0(boot, sizeof boot),
                    "--timeout", timeout, "--json", (char *)name, NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    if (r.status != want) {
        fprintf(stderr, "%s%s", r.out, r.err);
        proc_result_free(&r);
        fail_msg("coalition confluence status %s: exit %d, want %d", name,
                 r.status, want);
    }
    json_t *j = want == 0 ? json_loads(r.out, 0, NULL) : NULL;
    if (want == 0 && !j)
        fail_msg("status printed no JSON: %s", r.out);
    proc_result_free(&r);
    return j;
}

/* ---- the tests --------------------------------------------------------- */

static void same_commit(const co_confluence_reader *x,
                        const co_confluence_reader *y, uint64_t i)
{
    const co_confluence_commit *a, *b;
    assert_int_equal(co_confluence_get(x, i, &a), 0);
    assert_int_equal(co_confluence_get(y, i, &b), 0);
    mk_buf ea, eb;
    mk_buf_init(&ea);
    mk_buf_init(&eb);
    assert_int_equal(co_confluence_commit_encode(a, &ea), 0);
    assert_int_equal(co_confluence_commit_encode(b, &eb), 0);
    assert_int_equal(ea.len, eb.len);
    assert_memory_equal(ea.data, eb.data, ea.len);
    mk_buf_free(&ea);
    mk_buf_free(&eb);
}

static void one_committee_for_two_coalitions(void **state)
{
    wait_commits(&E.ra, 5, ms(40000));
    rstate rb;
    open_reader(&rb, &E.def_b, (uint32_t)ms(20000));
    const co_confluence_info *ia = co_confluence_reader_info(E.ra.r),
                             *ib = co_confluence_reader_info(rb.r);
    /* Two coalitions (their ids differ), one confluence. */
    mk_id ca, cb;
    assert_int_equal(co_coalition_id(co_config_file_coalition(E.a), &ca, NULL),
                     0);
    assert_int_equal(co_coalition_id(co_config_file_coalition(E.b), &cb, NULL),
                     0);
    assert_false(mk_id_eq(&ca, &cb));
    assert_true(mk_id_eq(&ia->group, &ib->group));
    assert_true(mk_id_eq(&ia->fingerprint, &ib->fingerprint));
    uint64_t n = wait_commits(&rb, co_confluence_count(E.ra.r), ms(20000));
    wait_commits(&E.ra, n, ms(20000));
    for (uint64_t i = n > 20 ? n - 20 : 1; i <= n; i++)
        same_commit(E.ra.r, rb.r, i);
    co_confluence_close(rb.r, NULL, NULL);

    /* The CLI, through either file: the same group, a leader, both
     * citizens delivering. */
    json_t *ja = cli_status(E.file_a, "fx-correlator", 0),
           *jb = cli_status(E.file_b, "fx-correlator", 0);
    assert_string_equal(json_string_value(json_object_get(ja, "group")),
                        json_string_value(json_object_get(jb, "group")));
    assert_true(json_is_string(json_object_get(ja, "leader")));
    assert_true(json_integer_value(json_object_get(ja, "commits")) >= 5);
    json_t *cits = json_object_get(ja, "citizens");
    assert_int_equal(json_array_size(cits), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(cits, 0), "name")),
        EUR);
    assert_true(json_is_true(
        json_object_get(json_array_get(cits, 1), "has_fact")));
    json_decref(ja);
    json_decref(jb);
}

static void swapped_citizens_time_out(void **state)
{
    rstate rc;
    open_reader(&rc, &E.def_c, (uint32_t)ms(2000));
    const co_confluence_info *ia = co_confluence_reader_info(E.ra.r),
                             *ic = co_confluence_reader_info(rc.r);
    assert_false(mk_id_eq(&ia->group, &ic->group));
    assert_false(mk_id_eq(&ia->fingerprint, &ic->fingerprint));
    int64_t end = mk_mono_ms() + ms(10000);
    while (rc.calls == 0 && mk_mono_ms() < end)
        uv_run(&E.loop, UV_RUN_ONCE);
    assert_int_equal(rc.last, MK_ECONNECT_TIMEOUT);
    assert_int_equal(co_confluence_count(rc.r), 0);
    co_confluence_close(rc.r, NULL, NULL);
    cli_status(E.file_c, "fx-correlator", 3);
}

typedef struct stall_watch {
    uint64_t from;
    const mk_id *live;
    bool partial; /* what to look for */
} stall_watch;

/* A commit after `from` that is partial with evidence from `live` only
 * (partial) or complete with both (not partial). */
static bool found_commit(void *arg)
{
    stall_watch *w = arg;
    uint64_t n = co_confluence_count(E.ra.r);
    for (uint64_t i = w->from + 1; i <= n; i++) {
        const co_confluence_commit *c;
        if (co_confluence_get(E.ra.r, i, &c) != 0 || c->kind != CO_COMMIT_FACT)
            continue;
        if (w->partial && c->partial && c->n_evidence == 1 &&
            mk_id_eq(&c->evidence[0].citizen, w->live))
            return true;
        if (!w->partial && !c->partial && c->n_evidence == 2)
            return true;
    }
    return false;
}

static bool strict_halted(void *arg)
{
    co_confluence_status st;
    co_confluence_reader_status(E.rs.r, &st);
    return st.stalled && st.halted_ticks >= *(uint64_t *)arg;
}

static void stalled_feed_gives_the_declared_behaviour(void **state)
{
    wait_commits(&E.ra, 3, ms(30000));
    wait_commits(&E.rs, 3, ms(30000));
    const co_confluence_info *info = co_confluence_reader_info(E.ra.r);
    stall_watch w = {.from = co_confluence_count(E.ra.r),
                     .live = &info->src[0].stable_id, .partial = true};
    kill(E.feed[1].pid, SIGSTOP);
    /* partial: commits go on, with the live feed's evidence only. */
    if (!wait_until(found_commit, &w, ms(20000))) {
        kill(E.feed[1].pid, SIGCONT);
        dump_logs();
        fail_msg("no partial commit while the USD feed is stopped");
    }
    const co_confluence_commit *c;
    assert_int_equal(co_confluence_get(E.ra.r, co_confluence_count(E.ra.r),
                                       &c),
                     0);
    co_fx_spread s;
    assert_int_equal(co_fx_spread_decode(&s, c->body, c->body_len), 0);
    assert_true(s.has_price[0]);
    assert_false(s.has_price[1]);
    assert_false(s.has_spread);
    /* halt: once stalled, nothing is committed while ticks go by. */
    uint64_t one = 1;
    assert_true(wait_until(strict_halted, &one, ms(20000)));
    co_confluence_status st;
    co_confluence_reader_status(E.rs.r, &st);
    uint64_t frozen = st.commits, later = st.halted_ticks + 2;
    assert_true(wait_until(strict_halted, &later, ms(20000)));
    assert_int_equal(co_confluence_count(E.rs.r), frozen);
    json_t *j = cli_status(E.file_a, "fx-strict", 0);
    json_t *stall = json_object_get(j, "stall");
    assert_true(json_is_true(json_object_get(stall, "stalled")));
    assert_string_equal(json_string_value(json_object_get(stall, "mode")),
                        "halt");
    assert_false(json_is_true(json_object_get(
        json_array_get(json_object_get(j, "citizens"), 1), "live")));
    assert_true(json_is_true(json_object_get(
        json_array_get(json_object_get(j, "citizens"), 0), "live")));
    json_decref(j);

    /* Both recover when the feed does. */
    kill(E.feed[1].pid, SIGCONT);
    w.from = co_confluence_count(E.ra.r);
    w.partial = false;
    assert_true(wait_until(found_commit, &w, ms(20000)));
    wait_commits(&E.rs, frozen + 1, ms(20000));
    co_confluence_reader_status(E.rs.r, &st);
    assert_false(st.stalled);
}

/* ---- replay and verification ------------------------------------------- */

static int rec_apply(struct mk_fsm *f, const uint8_t *cmd, size_t len,
                     mk_buf *result)
{
    recorder *r = f->data;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        mk_buf *grown = realloc(r->cmds, cap * sizeof *grown);
        if (!grown)
            return MK_ENOMEM;
        r->cmds = grown;
        r->cap = cap;
    }
    mk_buf_init(&r->cmds[r->n]);
    mk_put_raw(&r->cmds[r->n++], cmd, len);
    return r->inner.apply(&r->inner, cmd, len, result);
}

static int rec_snapshot(struct mk_fsm *f, mk_buf *out)
{
    recorder *r = f->data;
    return r->inner.snapshot(&r->inner, out);
}

static int rec_restore(struct mk_fsm *f, const uint8_t *snap, size_t len)
{
    recorder *r = f->data;
    r->restored = true;
    return r->inner.restore(&r->inner, snap, len);
}

static bool replica_caught_up(void *arg)
{
    recorder *r = arg;
    return co_confluence_fsm_count(&r->inner) >= co_confluence_count(E.ra.r) &&
           co_confluence_count(E.ra.r) > 0;
}

/* The feed data this process recorded, as upstream facts. */
static co_upstream_fact *feed_facts(size_t *n)
{
    size_t total = E.seen[0].n + E.seen[1].n, k = 0;
    co_upstream_fact *v = calloc(total ? total : 1, sizeof *v);
    assert_non_null(v);
    for (size_t f = 0; f < 2; f++)
        for (size_t i = 0; i < E.seen[f].n; i++)
            v[k++] = (co_upstream_fact){f, E.seen[f].bytes[i],
                                        E.seen[f].len[i]};
    *n = k;
    return v;
}

static void replay_reproduces_and_commits_verify(void **state)
{
    recorder rec = {0};
    assert_int_equal(co_confluence_fsm_init(&rec.inner, &E.def_a, NULL), 0);
    rec.outer = (struct mk_fsm){.version = MK_FSM_VERSION, .data = &rec,
                                .signature = rec.inner.signature,
                                .apply = rec_apply,
                                .snapshot = rec_snapshot,
                                .restore = rec_restore};
    mk_replica_config rc = {.node = E.node,
                            .group = co_confluence_reader_info(E.ra.r)->group,
                            .fsm = &rec.outer};
    mk_replica *rep;
    assert_int_equal(mk_replica_open(&rc, &rep), 0);
    wait_commits(&E.ra, co_confluence_count(E.ra.r) + 3, ms(20000));
    assert_true(wait_until(replica_caught_up, &rec, ms(20000)));
    /* A fresh replica of a young log gets every command from the first. */
    assert_false(rec.restored);
    uint64_t n = co_confluence_fsm_count(&rec.inner);

    /* Replay: the recorded facts into a fresh machine. */
    struct mk_fsm fresh;
    assert_int_equal(co_confluence_fsm_init(&fresh, &E.def_a, NULL), 0);
    size_t facts = 0;
    for (size_t i = 0; i < rec.n; i++) {
        mk_buf res;
        mk_buf_init(&res);
        assert_int_equal(fresh.apply(&fresh, rec.cmds[i].data,
                                     rec.cmds[i].len, &res),
                         0);
        mk_buf_free(&res);
        facts += rec.cmds[i].data[0] == CO_CONFLUENCE_CMD_FACT;
    }
    assert_true(facts > 0);
    assert_int_equal(co_confluence_fsm_count(&fresh),
                     co_confluence_fsm_count(&rec.inner));
    mk_buf x, y;
    mk_buf_init(&x);
    mk_buf_init(&y);
    for (uint64_t i = 1; i <= n; i++) {
        const co_confluence_commit *a, *b;
        assert_int_equal(co_confluence_fsm_get(&fresh, i, &a), 0);
        assert_int_equal(co_confluence_fsm_get(&rec.inner, i, &b), 0);
        mk_buf_reset(&x);
        mk_buf_reset(&y);
        co_confluence_commit_encode(a, &x);
        co_confluence_commit_encode(b, &y);
        assert_int_equal(x.len, y.len);
        assert_memory_equal(x.data, y.data, x.len);
    }
    /* ... and the same bytes as the integrator's reader holds. */
    for (uint64_t i = n > 10 ? n - 10 : 1; i <= n; i++) {
        const co_confluence_commit *a, *b;
        assert_int_equal(co_confluence_fsm_get(&fresh, i, &a), 0);
        if (co_confluence_get(E.ra.r, i, &b) != 0)
            continue;
        mk_buf_reset(&x);
        mk_buf_reset(&y);
        co_confluence_commit_encode(a, &x);
        co_confluence_commit_encode(b, &y);
        assert_int_equal(x.len, y.len);
        assert_memory_equal(x.data, y.data, x.len);
    }

    /* The commits verify against the feeds' own data (those whose facts
     * this process saw), and forged evidence does not. */
    size_t nf;
    co_upstream_fact *data = feed_facts(&nf);
    int verified = 0, unseen = 0;
    char why[CO_ERRMSG_SIZE];
    const co_confluence_commit *good = NULL;
    for (uint64_t i = 1; i <= n; i++) {
        const co_confluence_commit *c;
        assert_int_equal(co_confluence_fsm_get(&fresh, i, &c), 0);
        if (c->kind != CO_COMMIT_FACT)
            continue;
        int rcv = co_fx_verify(&E.def_a, c, data, nf, why);
        if (rcv == MK_ENOENT) {
            unseen++; /* before our consumer subscribed */
            continue;
        }
        if (rcv != 0)
            fail_msg("commit %llu does not verify: %s",
                     (unsigned long long)i, why);
        verified++;
        if (!c->partial)
            good = c;
    }
    assert_true(verified >= 3);
    assert_non_null(good);
    /* The feed's data, altered at the very event a commit points at. */
    co_clock_event ev = good->evidence[1].event;
    co_price_update u;
    bool altered = false;
    for (size_t i = 0; i < nf && !altered; i++) {
        if (data[i].src != 1 ||
            co_price_update_decode(&u, data[i].bytes, data[i].len) != 0 ||
            (uint64_t)u.epoch_ms != ev.epoch || u.seq != ev.seq)
            continue;
        u.price_micro += 1;
        mk_buf_reset(&x);
        assert_int_equal(co_price_update_encode(&u, &x), 0);
        data[i].bytes = x.data;
        data[i].len = x.len;
        altered = true;
    }
    assert_true(altered);
    assert_int_equal(co_fx_verify(&E.def_a, good, data, nf, why),
                     MK_EHASH_MISMATCH);
    print_message("replayed %zu commands into %llu identical commits; "
                  "%d verified against the feeds, %d before we subscribed\n",
                  rec.n, (unsigned long long)n, verified, unseen);
    free(data);
    mk_buf_free(&x);
    mk_buf_free(&y);
    int closing = 1;
    mk_replica_close(rep, on_closed, &closing);
    while (closing > 0)
        uv_run(&E.loop, UV_RUN_ONCE);
    co_confluence_fsm_free(&fresh);
    co_confluence_fsm_free(&rec.inner);
    for (size_t i = 0; i < rec.n; i++)
        mk_buf_free(&rec.cmds[i]);
    free(rec.cmds);
}

/* ---- retirement -------------------------------------------------------- */

typedef struct retire_done {
    bool done;
    int status;
} retire_done;

static void on_retire(int status, void *data)
{
    retire_done *d = data;
    d->done = true;
    d->status = status;
}

static bool is_done(void *arg)
{
    return ((retire_done *)arg)->done;
}

static bool retired(void *arg)
{
    return ((rstate *)arg)->retired;
}

static void retirement_names_the_successor(void **state)
{
    mk_keypair member;
    char err[CO_ERRMSG_SIZE];
    assert_int_equal(mk_keypair_load(&member, E.d[1].key, err), 0);
    mk_id succ;
    mk_id_from_str(&succ, "fx-correlator/v2");
    retire_done d = {0};
    /* Not a member: refused. */
    assert_int_equal(co_confluence_retire(E.node, &E.def_a, "x", NULL, &E.key,
                                          (uint32_t)ms(10000), on_retire, &d,
                                          err),
                     0);
    assert_true(wait_until(is_done, &d, ms(15000)));
    assert_int_equal(d.status, CO_ECONFIG);
    d = (retire_done){0};
    assert_int_equal(co_confluence_retire(E.node, &E.def_a, "superseded",
                                          &succ, &member,
                                          (uint32_t)ms(10000), on_retire, &d,
                                          err),
                     0);
    assert_true(wait_until(is_done, &d, ms(15000)));
    assert_int_equal(d.status, 0);
    assert_true(wait_until(retired, &E.ra, ms(10000)));
    co_confluence_retirement r;
    co_confluence_reader_retirement(E.ra.r, &r);
    assert_true(r.retired);
    assert_string_equal(r.reason, "superseded");
    assert_true(r.has_successor);
    assert_true(mk_id_eq(&r.successor, &succ));
    assert_true(mk_id_eq(&r.component,
                         &co_confluence_reader_info(E.ra.r)->fingerprint));
    const co_confluence_commit *c;
    assert_int_equal(co_confluence_get(E.ra.r, co_confluence_count(E.ra.r),
                                       &c),
                     0);
    assert_int_equal(c->kind, CO_COMMIT_RETIRED);
    /* A reader arriving later (through the other coalition's file) is
     * told the same, instead of waiting for commits that never come. */
    rstate late;
    open_reader(&late, &E.def_b, (uint32_t)ms(15000));
    assert_true(wait_until(retired, &late, ms(15000)));
    co_confluence_close(late.r, NULL, NULL);
    /* The strict confluence is another committee: untouched. */
    co_confluence_retirement rs;
    co_confluence_reader_retirement(E.rs.r, &rs);
    assert_false(rs.retired);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_committee_for_two_coalitions),
        cmocka_unit_test(swapped_citizens_time_out),
        cmocka_unit_test(stalled_feed_gives_the_declared_behaviour),
        cmocka_unit_test(replay_reproduces_and_commits_verify),
        cmocka_unit_test(retirement_names_the_successor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
