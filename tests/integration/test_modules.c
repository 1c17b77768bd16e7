/* The coalition comes alive: its modules across real processes.
 *
 * Three build/coalitiond members run the Atlas, Almanac and Chronicle of
 * the tests' own coalition (tests/data/modules.json, seeded keys; member
 * 0 also runs the ticket issuer). The test drives them with the CLI, with
 * the integrator (examples/integrator.c built against the compiled-in
 * twin of that file, tests/data/modules_coalition.h), and with readers
 * and nodes of its own on its own loop:
 *
 *   integrator_reads_everything   cards, ticks, chronicle from the static
 *                                 const alone, every card verified
 *   flood_is_refused_at_the_door  an anonymous node sends 30 commands of
 *                                 1 MiB and a batch of badly signed,
 *                                 outsider-signed and garbled Chronicle
 *                                 appends: each is refused with its code,
 *                                 and no member's Raft log grows
 *   reordered_config_times_out    one citizen moved: exit 3 from the CLI,
 *                                 MK_ECONNECT_TIMEOUT from co_atlas_read
 *   tampered_chronicle_is_named   an exported log with a flipped body,
 *                                 hash or signature byte, a dropped entry,
 *                                 a rewrite with a recomputed hash; every
 *                                 signature stripped, the last entry's
 *                                 stripped, an empty file
 *   issued_ticket_opens_a_stream  the issuer's policy, the CLI, and a
 *                                 stream that recognises TICKETS_ROOT
 *   killing_a_member_loses_nothing  the Almanac leader, then a follower:
 *                                 every card and entry stays verified and
 *                                 the ticks a reader records stay
 *                                 strictly consecutive across both kills
 *   minority_card_is_unverified   a non-member's card is refused; a card
 *                                 only one member signed (the others
 *                                 stopped, one muted in this process) is
 *                                 held but reported unverified, until
 *                                 the members return and sign
 *   chronicle_records_what_members_see  two card publications on a live
 *                                 coalition give one atlas.card entry
 *                                 each, chained by what they replaced; a
 *                                 member restarted with a citizen's content
 *                                 rotated gives one citizen.rotation entry;
 *                                 the log reads and verifies
 *   retired_atlas_names_successor the last test: a member retires the
 *                                 Atlas; readers report CO_ERETIRED and
 *                                 the successor
 *
 * The tests share one set of daemons and run in this order. Waits scale
 * with TIME_FACTOR (3 under ASan/UBSan); nothing asserts on speed.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coalition/atlas.h"
#include "coalition/almanac.h"
#include "coalition/chronicle.h"
#include "coalition/config_file.h"
#include "coalition/issuer.h"
#include "coalition/modules_internal.h"
#include "daemon.h"
#include "modules_env.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"
#include "mosaik/jwt.h"
#include "mosaik/stream.h"
#include "proc.h"

static double TF = 1.0;

static int ms(int base)
{
    return (int)(base * TF);
}

/* Shared by every test: the daemons, the configs, the test's own loop
 * and a reader node on it. */
static menv E;
static co_config_file *CFG_FILE, *REORDERED_FILE;
static const co_coalition_config *CFG, *REORDERED;
static uv_loop_t LOOP;
static uv_timer_t PULSE;
static mk_node *READER;

static void on_pulse(uv_timer_t *t)
{
    (void)t; /* keeps UV_RUN_ONCE from blocking for long */
}

static void spin(int for_ms)
{
    int64_t end = mk_mono_ms() + for_ms;
    while (mk_mono_ms() < end)
        uv_run(&LOOP, UV_RUN_ONCE);
}

/* What the helpers run while a program of theirs works: this process's
 * nodes (a reader, a muted member) keep answering. */
static void idle_spin(void)
{
    spin(20);
}

static bool wait_until(bool (*pred)(void *), void *arg, int timeout_ms)
{
    int64_t end = mk_mono_ms() + timeout_ms;
    while (mk_mono_ms() < end) {
        if (pred(arg))
            return true;
        spin(20);
    }
    return pred(arg);
}

static const char *boot(int not)
{
    static char buf[4][160];
    static int k;
    k = (k + 1) % 4;
    const char *b = menv_boot(&E, not, buf[k], sizeof buf[k]);
    assert_non_null(b);
    return b;
}

static mk_node *open_node(const mk_keypair *key, bool listen)
{
    const char *bp[] = {boot(-1)};
    mk_node_config nc = {.loop = &LOOP, .key = key, .bootstrap = bp,
                         .n_bootstrap = 1,
                         .listen = listen ? "127.0.0.1:0" : NULL};
    char err[MK_ERRMSG_SIZE];
    mk_node *n;
    if (mk_node_new(&nc, &n, err) < 0)
        fail_msg("mk_node_new: %s", err);
    assert_int_equal(mk_node_start(n), 0);
    return n;
}

/* ---- JSON and processes ------------------------------------------------- */

static json_t *path(json_t *j, const char *a, const char *b)
{
    json_t *x = json_object_get(j, a);
    return b ? json_object_get(x, b) : x;
}

static long long jint(json_t *j, const char *a, const char *b)
{
    json_t *x = path(j, a, b);
    return json_is_integer(x) ? json_integer_value(x) : -1;
}

static const char *jstr(json_t *j, const char *a, const char *b)
{
    const char *s = json_string_value(path(j, a, b));
    return s ? s : "";
}

static bool jtrue(json_t *j, const char *a, const char *b)
{
    return json_is_true(path(j, a, b));
}

/* Runs the CLI, failing the test (with its output) unless it exits
 * `want`. Returns the result for further checks (caller frees). */
static proc_result cli_expect(int want, const char *what, ...)
    __attribute__((sentinel));

static proc_result cli_expect(int want, const char *what, ...)
{
    const char *a[40];
    int n = 0;
    va_list ap;
    va_start(ap, what);
    while (n < 39 && (a[n] = va_arg(ap, const char *)))
        n++;
    va_end(ap);
    a[n] = NULL;
    proc_result r;
    assert_int_equal(menv_cliv(&r, a), 0);
    if (r.status != want)
        fail_msg("%s: exit %d, wanted %d\nstdout: %s\nstderr: %s", what,
                 r.status, want, r.out, r.err);
    return r;
}

/* Publishes a card as a member, retrying while the committee has no
 * leader yet (exit 3). */
static void publish(const char *key, const char *citizen, const char *role)
{
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%ds", ms(15));
    for (int attempt = 0;; attempt++) {
        proc_result r;
        assert_int_equal(menv_cli(&r, "atlas", "publish", "--coalition",
                                  E.coalition, "--bootstrap", boot(-1),
                                  "--key", key, "--citizen", citizen,
                                  "--role", role, "--hint",
                                  "127.0.0.1:9999", "--timeout", timeout,
                                  NULL),
                         0);
        int st = r.status;
        if (st != 0 && (st != 3 || attempt == 2))
            fail_msg("atlas publish %s: exit %d\n%s%s", citizen, st, r.out,
                     r.err);
        proc_result_free(&r);
        if (st == 0)
            return;
    }
}

typedef bool (*report_pred)(json_t *j);

/* Runs the integrator until its report satisfies `pred` (or the time is
 * up); returns the last report (caller decrefs). */
static json_t *integrator_until(report_pred pred, const char *follow,
                                int timeout_ms, int *status)
{
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%d", ms(10));
    int64_t end = mk_mono_ms() + timeout_ms;
    json_t *j = NULL;
    do {
        json_decref(j);
        j = menv_integrator(status, "--bootstrap", boot(-1), "--follow",
                            follow, "--timeout", timeout, NULL);
        if (j && pred(j))
            break;
        spin(200);
    } while (mk_mono_ms() < end);
    assert_non_null(j);
    return j;
}

/* Every card verified and every chronicle entry signed by a majority. */
static size_t WANT_CARDS;

static bool all_verified(json_t *j)
{
    return jint(j, "atlas", "cards") == (long long)WANT_CARDS &&
           jint(j, "atlas", "verified") == (long long)WANT_CARDS &&
           jtrue(j, "chronicle", "verified") &&
           jint(j, "chronicle", "entries") >= 2 &&
           jint(j, "chronicle", "signed_head") ==
               jint(j, "chronicle", "entries") &&
           jint(j, "almanac", "ticks") >= 2;
}

static char *dump(json_t *j)
{
    static char buf[8192];
    char *s = json_dumps(j, JSON_COMPACT);
    snprintf(buf, sizeof buf, "%s", s ? s : "(null)");
    free(s);
    return buf;
}

/* ---- setup ------------------------------------------------------------------ */

static int setup(void **state)
{
    TF = time_factor();
    char err[CO_ERRMSG_SIZE];
    if (menv_init(&E) != 0 ||
        co_config_file_load(E.coalition, &CFG_FILE, err) < 0 ||
        co_config_file_load(E.reordered, &REORDERED_FILE, err) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    CFG = co_config_file_coalition(CFG_FILE);
    REORDERED = co_config_file_coalition(REORDERED_FILE);
    for (int i = 0; i < MENV_MEMBERS; i++)
        if (menv_start(&E, i) != 0)
            return -1;
    signal(SIGPIPE, SIG_IGN);
    menv_set_idle(idle_spin);
    uv_loop_init(&LOOP);
    uv_timer_init(&LOOP, &PULSE);
    uv_timer_start(&PULSE, on_pulse, 5, 5);
    mk_keypair k;
    if (mk_keypair_generate(&k) < 0)
        return -1;
    READER = open_node(&k, false);
    return 0;
}

static int teardown(void **state)
{
    if (READER)
        mk_node_close(READER, NULL, NULL);
    uv_close((uv_handle_t *)&PULSE, NULL);
    uv_run(&LOOP, UV_RUN_DEFAULT);
    uv_loop_close(&LOOP);
    co_config_file_free(CFG_FILE);
    co_config_file_free(REORDERED_FILE);
    return 0;
}

/* ---- 1. an integrator reads everything ------------------------------------- */

static void integrator_reads_everything(void **state)
{
    publish(E.d[0].key, "feed.alpha", "oracle");
    publish(E.d[1].key, "feed.beta", "oracle");
    publish(E.d[2].key, "testnet.alpha", "lattice");
    WANT_CARDS = 3;
    proc_result r = cli_expect(0, "chronicle append", "chronicle", "append",
                               "--coalition", E.coalition, "--bootstrap",
                               boot(-1), "--key", E.d[1].key, "--kind",
                               "rotation", "--subject", "feed.alpha",
                               "--body", "mrtd v2", NULL);
    proc_result_free(&r);

    int status;
    json_t *j = integrator_until(all_verified, "2", ms(60000), &status);
    if (!all_verified(j) || status != 0)
        fail_msg("integrator (exit %d): %s", status, dump(j));
    /* The compiled-in config is the published file, byte for byte in
     * every fingerprint. */
    r = cli_expect(0, "id --json", "id", "--json", E.coalition, NULL);
    json_t *id = json_loads(r.out, 0, NULL);
    assert_non_null(id);
    assert_string_equal(jstr(j, "coalition_id", NULL),
                        jstr(id, "coalition_id", NULL));
    json_decref(id);
    proc_result_free(&r);
    assert_string_equal(jstr(j, "almanac", "status"), "ok");
    assert_int_equal(jint(j, "almanac", "cadence_ms"), 250);
    assert_int_equal(jint(j, "almanac", "gaps"), 0);
    assert_int_equal(jint(j, "almanac", "missed"), 0);
    assert_int_equal(jint(j, "almanac", "last_seq") -
                         jint(j, "almanac", "first_seq") + 1,
                     jint(j, "almanac", "ticks"));
    json_decref(j);

    /* The CLI sees the same directory. */
    r = cli_expect(0, "atlas list", "atlas", "list", "--coalition",
                   E.coalition, "--bootstrap", boot(-1), "--json", NULL);
    json_t *list = json_loads(r.out, 0, NULL);
    assert_true(json_is_array(list));
    assert_int_equal(json_array_size(list), 3);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) assert_true(
        json_is_true(json_object_get(c, "verified")));
    json_decref(list);
    proc_result_free(&r);
}

/* ---- 1b. what the Chronicle refuses never reaches its log -------------------- */

static void on_closed_flag(void *data);
static bool flag_set(void *arg);

typedef struct member_poll {
    int calls;
    int status;
    uint64_t commit;
} member_poll;

static void on_member_status(int status, const mk_member_status *st,
                             void *data)
{
    member_poll *p = data;
    p->status = status;
    p->commit = st ? st->st.commit_index : 0;
    p->calls++;
}

static bool poll_done(void *arg)
{
    return ((member_poll *)arg)->calls > 0;
}

/* Every committee member's Raft commit index, asked of each member. */
static void commit_indexes(mk_group_client *c, const co_module_info *m,
                           uint64_t *out)
{
    for (size_t i = 0; i < m->n_committee; i++) {
        member_poll p = {0};
        assert_int_equal(mk_group_client_status(c, &m->committee[i], false,
                                                (uint32_t)ms(5000),
                                                on_member_status, &p),
                         0);
        assert_true(wait_until(poll_done, &p, ms(8000)));
        if (p.status != 0)
            fail_msg("status of member %zu: %s", i, mk_strerror(p.status));
        out[i] = p.commit;
    }
}

typedef struct flood {
    size_t answered, sent;
    int want;
    int wrong;    /* answers with another status */
    int example;  /* one of those */
} flood;

static void on_flood(int status, uint64_t applied, const uint8_t *res,
                     size_t len, void *data)
{
    flood *f = data;
    f->answered++;
    if (status != f->want) {
        f->wrong++;
        f->example = status;
    }
}

static bool flood_done(void *arg)
{
    flood *f = arg;
    return f->answered == f->sent;
}

static void send_all(mk_group_client *c, flood *f, mk_buf *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(cmds[i].err, 0);
        assert_int_equal(mk_group_client_execute(c, cmds[i].data, cmds[i].len,
                                                 (uint32_t)ms(20000),
                                                 on_flood, f),
                         0);
        f->sent++;
    }
    assert_true(wait_until(flood_done, f, ms(40000)));
    if (f->wrong)
        fail_msg("%d of %zu answered %s, not %s", f->wrong, f->sent,
                 mk_err_name(f->example), mk_err_name(f->want));
}

static void flood_is_refused_at_the_door(void **state)
{
    char err[CO_ERRMSG_SIZE];
    co_module_info m;
    mk_id gid;
    assert_int_equal(co_module_committee_group(CFG, CO_MODULE_CHRONICLE, &m,
                                               &gid, err),
                     0);
    /* READER is on no committee: an anonymous client. */
    mk_group_client *c;
    assert_int_equal(mk_group_client_open(READER, &gid, &c), 0);

    /* Wait for a quiet log (members finish signing what came before). */
    uint64_t before[MENV_MEMBERS], again[MENV_MEMBERS];
    commit_indexes(c, &m, before);
    for (int tries = 0;; tries++) {
        spin(ms(1000));
        commit_indexes(c, &m, again);
        if (memcmp(before, again, sizeof before) == 0)
            break;
        memcpy(before, again, sizeof before);
        assert_true(tries < 30);
    }

    /* 30 commands of exactly 1 MiB (the group layer's default limit):
     * appends of a body far over CO_CHRONICLE_MAX_BODY. */
    mk_keypair outsider, member0;
    assert_int_equal(mk_keypair_load(&outsider, E.outsider_key, NULL), 0);
    assert_int_equal(mk_keypair_load(&member0, E.d[0].key, NULL), 0);
    mk_id subject;
    mk_id_from_str(&subject, "flood");
    enum { BIG = 30, SMALL = 40 };
    mk_buf *cmds = calloc(BIG, sizeof *cmds);
    assert_non_null(cmds);
    size_t body = (1u << 20) - (1 + 1 + 5 + 32 + 3 + 1 + 32 + 64);
    uint8_t *junk = malloc(body);
    assert_non_null(junk);
    memset(junk, 'x', body);
    for (size_t i = 0; i < BIG; i++) {
        mk_buf_init(&cmds[i]);
        junk[0] = (uint8_t)i; /* distinct commands */
        co__chronicle_cmd_append(&cmds[i], "flood", &subject, junk, body,
                                 false, &outsider);
        assert_int_equal(cmds[i].len, 1u << 20);
    }
    free(junk);
    flood f = {.want = MK_EMSGSIZE};
    send_all(c, &f, cmds, BIG);
    for (size_t i = 0; i < BIG; i++)
        mk_buf_free(&cmds[i]);

    /* Small appends naming a member with a broken signature, signed by an
     * outsider, and cut short. */
    cmds = realloc(cmds, SMALL * sizeof *cmds);
    assert_non_null(cmds);
    for (size_t i = 0; i < SMALL; i++) {
        char note[32];
        snprintf(note, sizeof note, "forged %zu", i);
        mk_buf_init(&cmds[i]);
        co__chronicle_cmd_append(&cmds[i], "rotation", &subject,
                                 (const uint8_t *)note, strlen(note), false,
                                 &member0);
        cmds[i].data[cmds[i].len - 1 - i % 64] ^= 0x20;
    }
    f = (flood){.want = MK_EBAD_SIGNATURE};
    send_all(c, &f, cmds, SMALL);
    /* Well signed by a key on no committee; the same cut short. */
    for (size_t i = 0; i < SMALL; i++) {
        char note[32];
        snprintf(note, sizeof note, "outside %zu", i);
        mk_buf_reset(&cmds[i]);
        co__chronicle_cmd_append(&cmds[i], "rotation", &subject,
                                 (const uint8_t *)note, strlen(note), false,
                                 &outsider);
    }
    f = (flood){.want = MK_ENOT_ALLOWED};
    send_all(c, &f, cmds, SMALL);
    for (size_t i = 0; i < SMALL; i++)
        cmds[i].len -= 1 + i;
    f = (flood){.want = MK_EDECODE};
    send_all(c, &f, cmds, SMALL);
    for (size_t i = 0; i < SMALL; i++)
        mk_buf_free(&cmds[i]);
    free(cmds);

    /* Through the CLI, an outsider's append is refused in words. */
    proc_result r = cli_expect(1, "chronicle append (outsider)", "chronicle",
                               "append", "--coalition", E.coalition,
                               "--bootstrap", boot(-1), "--key",
                               E.outsider_key, "--kind", "rotation",
                               "--subject", "flood", "--body", "x", NULL);
    assert_non_null(strstr(r.err, "refused"));
    proc_result_free(&r);

    /* Nothing of it reached any member's log. */
    spin(ms(1000));
    uint64_t after[MENV_MEMBERS];
    commit_indexes(c, &m, after);
    for (int i = 0; i < MENV_MEMBERS; i++)
        if (after[i] != before[i])
            fail_msg("member %d: commit index %" PRIu64 " -> %" PRIu64, i,
                     before[i], after[i]);
    bool closed = false;
    mk_group_client_close(c, on_closed_flag, &closed);
    assert_true(wait_until(flag_set, &closed, ms(5000)));
}

/* ---- 2. a reordered config derives another Atlas ----------------------- */

typedef struct read_wait {
    int calls, status;
} read_wait;

static void on_read(co_atlas_reader *r, int status, void *data)
{
    read_wait *w = data;
    if (!w->calls++ || status == 0)
        w->status = status;
}

static bool called(void *arg)
{
    return ((read_wait *)arg)->calls > 0;
}

static void reordered_config_times_out(void **state)
{
    /* The CLI: exit 3, naming ConnectTimeout. */
    proc_result r = cli_expect(3, "atlas list (reordered)", "atlas", "list",
                               "--coalition", E.reordered, "--bootstrap",
                               boot(-1), "--timeout", "2s", NULL);
    assert_non_null(strstr(r.err, "ConnectTimeout"));
    proc_result_free(&r);

    /* The library: the same handle with the right and the reordered
     * config, side by side on one node. */
    char err[CO_ERRMSG_SIZE];
    read_wait good = {0}, bad = {0};
    co_atlas_reader *rg, *rb;
    assert_int_equal(co_atlas_read(READER, CFG, (uint32_t)ms(20000), on_read,
                                   &good, &rg, err),
                     0);
    assert_int_equal(co_atlas_read(READER, REORDERED, 1500, on_read, &bad,
                                   &rb, err),
                     0);
    wait_until(called, &bad, 1500 + ms(5000));
    wait_until(called, &good, ms(20000));
    assert_int_equal(good.status, 0);
    assert_int_equal(co_atlas_verified_count(rg), WANT_CARDS);
    assert_int_equal(bad.status, MK_ECONNECT_TIMEOUT);
    assert_int_equal(co_atlas_count(rb), 0);
    co_atlas_close(rg, NULL, NULL);
    co_atlas_close(rb, NULL, NULL);
    spin(50);

    /* The integrator, with its compiled-in config reordered: every module
     * times out. */
    int status;
    json_t *j = menv_integrator(&status, "--bootstrap", boot(-1),
                                "--reorder", "--timeout", "2", "--follow",
                                "0", NULL);
    assert_non_null(j);
    assert_int_equal(status, 3);
    assert_string_equal(jstr(j, "atlas", "code"), "MK_ECONNECT_TIMEOUT");
    assert_string_equal(jstr(j, "almanac", "code"), "MK_ECONNECT_TIMEOUT");
    assert_string_equal(jstr(j, "chronicle", "code"), "MK_ECONNECT_TIMEOUT");
    json_decref(j);
}

/* ---- 3. a tampered chronicle is detected ---------------------------------- */

static json_t **read_lines(const char *file, size_t *n)
{
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    json_t **v = calloc(64, sizeof *v);
    char line[1 << 16];
    *n = 0;
    while (*n < 64 && fgets(line, sizeof line, f))
        if (line[0] != '\n')
            assert_non_null(v[(*n)++] = json_loads(line, 0, NULL));
    fclose(f);
    return v;
}

static void write_lines(const char *file, json_t **v, size_t n, size_t skip)
{
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        if (i == skip)
            continue;
        char *s = json_dumps(v[i], JSON_COMPACT);
        fprintf(f, "%s\n", s);
        free(s);
    }
    fclose(f);
}

/* Flips one hex digit of a string field of `o`. */
static void flip(json_t *o, const char *key, size_t at)
{
    const char *s = json_string_value(json_object_get(o, key));
    assert_non_null(s);
    assert_true(strlen(s) > at);
    char *t = strdup(s);
    t[at] = t[at] == '0' ? '1' : '0';
    json_object_set_new(o, key, json_string(t));
    free(t);
}

/* Verifies `file` offline; expects exit `want` and, when failing, the
 * entry named and a phrase of the reason. */
static void verify_file(const char *file, int want, int entry,
                        const char *why)
{
    proc_result r = cli_expect(want, "chronicle log --file --verify",
                               "chronicle", "log", "--coalition",
                               E.coalition, "--file", file, "--verify",
                               NULL);
    if (want == 0) {
        assert_non_null(strstr(r.out, "verified:"));
    } else {
        char named[64];
        snprintf(named, sizeof named, "TAMPERED: entry %d:", entry);
        if (!strstr(r.out, named) || !strstr(r.out, why))
            fail_msg("wanted \"%s …%s…\", got: %s", named, why, r.out);
    }
    proc_result_free(&r);
}

/* Verifies `file` offline; expects exit `want` and both phrases (the
 * second may be NULL) in what it prints. */
static void verify_file_says(const char *file, int want, const char *a,
                             const char *b)
{
    proc_result r = cli_expect(want, "chronicle log --file --verify",
                               "chronicle", "log", "--coalition",
                               E.coalition, "--file", file, "--verify",
                               NULL);
    if (!strstr(r.out, a) || (b && !strstr(r.out, b)))
        fail_msg("wanted \"%s\" and \"%s\", got: %s", a, b ? b : "", r.out);
    proc_result_free(&r);
}

static void tampered_chronicle_is_named(void **state)
{
    char file[700], bad[700];
    snprintf(file, sizeof file, "%s/chronicle.jsonl", E.dir);
    snprintf(bad, sizeof bad, "%s/tampered.jsonl", E.dir);
    proc_result r = cli_expect(0, "chronicle log --export", "chronicle",
                               "log", "--coalition", E.coalition,
                               "--bootstrap", boot(-1), "--export", file,
                               "--verify", NULL);
    assert_non_null(strstr(r.out, "verified:"));
    proc_result_free(&r);
    verify_file(file, 0, 0, NULL);
    verify_file_says(file, 0, "verified: entries 1..",
                     "head signed by 3 of 3 committee members");

    size_t n;
    json_t **v = read_lines(file, &n);
    assert_true(n >= 2); /* the recorded config, the records after it */
    /* Members sign the head as entries land, so which later entries
     * carry signatures depends on timing: tamper with the first that
     * does (the last one always does: the log verified). */
    size_t at = 1;
    while (at < n - 1 &&
           json_array_size(json_object_get(v[at], "sigs")) == 0)
        at++;
    json_t *e2 = v[at];
    int seq2 = (int)at + 1;
    json_t *orig = json_deep_copy(e2), *orig1 = json_deep_copy(v[0]);

    /* A byte of a body. */
    flip(e2, "body", 3);
    write_lines(bad, v, n, SIZE_MAX);
    verify_file(bad, 1, seq2, "hash does not match");
    json_object_update(e2, orig);

    /* A byte of a hash: that entry no longer matches its contents. */
    flip(v[0], "hash", 10);
    write_lines(bad, v, n, SIZE_MAX);
    verify_file(bad, 1, 1, "hash does not match");
    json_object_update(v[0], orig1);
    json_decref(orig1);

    /* A byte of a signature. */
    json_t *sig = json_array_get(json_object_get(e2, "sigs"), 0);
    assert_non_null(sig);
    flip(sig, "sig", 20);
    write_lines(bad, v, n, SIZE_MAX);
    verify_file(bad, 1, seq2, "signature does not verify");
    json_object_update(e2, orig);
    json_decref(orig);

    /* A dropped entry. */
    write_lines(bad, v, n, 0);
    verify_file(bad, 1, 1, "not consecutive");

    /* A rewrite that recomputes the hash (the formula is public): the
     * members' signatures over the old hash give it away, and so does the
     * next entry's link. */
    const char *kind = json_string_value(json_object_get(v[0], "kind"));
    char *body = strdup(json_string_value(json_object_get(v[0], "body")));
    size_t blen = strlen(body) / 2;
    uint8_t *raw = malloc(blen + 1);
    assert_int_equal(mk_hex_decode(raw, blen, body, strlen(body)), 0);
    raw[0] ^= 1;
    mk_id subject, prev, hash;
    const char *sh = json_string_value(json_object_get(v[0], "subject"));
    const char *ph = json_string_value(json_object_get(v[0], "prev"));
    assert_int_equal(mk_id_from_hex(&subject, sh, strlen(sh)), 0);
    assert_int_equal(mk_id_from_hex(&prev, ph, strlen(ph)), 0);
    co__chronicle_entry_hash(1, kind, &subject, raw, blen, &prev, &hash);
    char *nb = malloc(2 * blen + 1), hex[MK_ID_HEX_LEN + 1];
    mk_hex_encode(raw, blen, nb);
    json_object_set_new(v[0], "body", json_string(nb));
    json_object_set_new(v[0], "hash", json_string(mk_id_hex(&hash, hex)));
    write_lines(bad, v, n, SIZE_MAX);
    verify_file(bad, 1, 1, "signature does not verify");
    free(nb);
    free(raw);
    free(body);

    /* Every signature stripped: the hashes and links still hold, but
     * nobody vouches for any of it. */
    json_t **w = read_lines(file, &n);
    for (size_t i = 0; i < n; i++)
        json_object_set_new(w[i], "sigs", json_array());
    write_lines(bad, w, n, SIZE_MAX);
    verify_file_says(bad, 1, "NOT VERIFIED: no signed head",
                     "the most is 0");

    /* Only the last entry unsigned: everything before it is vouched
     * for, it is not, and the exit says not everything was. */
    for (size_t i = 0; i < n; i++)
        json_decref(w[i]);
    free(w);
    w = read_lines(file, &n);
    json_object_set_new(w[n - 1], "sigs", json_array());
    write_lines(bad, w, n, SIZE_MAX);
    char covered[96];
    snprintf(covered, sizeof covered, "verified: entries 1..%zu of %zu,",
             n - 1, n);
    verify_file_says(bad, 1, covered, "not covered by a signed head");
    for (size_t i = 0; i < n; i++)
        json_decref(w[i]);
    free(w);

    /* An empty export vouches for nothing. */
    write_lines(bad, v, 0, SIZE_MAX);
    verify_file_says(bad, 1, "NOT VERIFIED: the log is empty", NULL);

    for (size_t i = 0; i < n; i++)
        json_decref(v[i]);
    free(v);
}

/* ---- 4. the ticket issuer ------------------------------------------------- */

typedef struct asked {
    bool done;
    int status;
    char why[256];
} asked;

static void on_ticket(co_ticket_req *req, int status, const char *token,
                      int64_t expires_ms, const char *why, void *data)
{
    asked *a = data;
    a->done = true;
    a->status = status;
    snprintf(a->why, sizeof a->why, "%s", why);
}

static bool ticket_done(void *arg)
{
    return ((asked *)arg)->done;
}

typedef struct sub {
    size_t datums;
    uint32_t refused; /* a close code from the producer */
    bool connected;
} sub;

static int on_datum(mk_consumer *c, const mk_datum *d, void *data)
{
    ((sub *)data)->datums++;
    return 0;
}

static void on_producer(mk_consumer *c, const mk_peer_id *p, bool connected,
                        uint32_t code, void *data)
{
    sub *s = data;
    s->connected = connected;
    if (!connected && code)
        s->refused = code;
}

typedef struct peer_has_ticket {
    mk_node *at;
    mk_peer_id who;
} peer_has_ticket;

static bool has_ticket(void *arg)
{
    peer_has_ticket *p = arg;
    mk_peer_info info;
    if (!mk_node_peer(p->at, &p->who, &info))
        return false;
    for (size_t i = 0; i < info.entry->n_tickets; i++)
        if (mk_id_eq(&info.entry->tickets[i].class, &MK_JWT_CLASS))
            return true;
    return false;
}

typedef struct flow {
    mk_producer *p;
    mk_consumer *outsider_c;
    sub *holder, *outsider;
} flow;

static bool flowed(void *arg)
{
    flow *f = arg;
    /* Keep producing: the holder must receive, the outsider never. A
     * refused subscription never connects, so the refusal shows in the
     * channel, not in on_producer. */
    mk_producer_send_bytes(f->p, "tick", 4);
    mk_stream_channel ch[4];
    size_t n = mk_consumer_channels(f->outsider_c, ch, 4);
    for (size_t i = 0; i < n && i < 4; i++)
        if (ch[i].state == MK_CHANNEL_TERMINATED && ch[i].last_code)
            f->outsider->refused = ch[i].last_code;
    return f->holder->datums >= 3 && f->outsider->refused;
}

static void on_closed_flag(void *data)
{
    *(bool *)data = true;
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

static void issued_ticket_opens_a_stream(void **state)
{
    char err[CO_ERRMSG_SIZE], root_hex[MK_ID_HEX_LEN + 1],
        key_hex[MK_ID_HEX_LEN + 1];
    mk_id root;
    mk_peer_id keys[CO_ISSUER_MAX_KEYS];
    size_t nk;
    assert_int_equal(co_issuer_keys(CFG, &root, keys, &nk, err), 0);
    mk_id_hex(&root, root_hex);
    mk_id_hex(&keys[0], key_hex);

    /* The CLI: a ticket for the holder that `ticket verify` accepts as
     * one of TICKETS_ROOT for that peer; the outsider is refused. */
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%ds", ms(15));
    proc_result r = cli_expect(0, "ticket request", "ticket", "request",
                               "--coalition", E.coalition, "--bootstrap",
                               boot(-1), "--key", E.holder_key, "--timeout",
                               timeout, NULL);
    char token[8192];
    snprintf(token, sizeof token, "%s", r.out);
    token[strcspn(token, "\n")] = '\0';
    proc_result_free(&r);
    r = cli_expect(0, "ticket verify", "ticket", "verify", "--issuer",
                   root_hex, "--pubkey", key_hex, "--sub", E.holder_hex,
                   token, NULL);
    assert_non_null(strstr(r.out, root_hex));
    proc_result_free(&r);
    r = cli_expect(1, "ticket request (outsider)", "ticket", "request",
                   "--coalition", E.coalition, "--bootstrap", boot(-1),
                   "--key", E.outsider_key, "--timeout", timeout, NULL);
    assert_non_null(strstr(r.err, "policy does not allow"));
    proc_result_free(&r);

    /* Nodes of this process: a producer whose stream recognises the
     * coalition's tickets, the holder and the outsider as consumers. */
    mk_keypair kp, kh, ko;
    assert_int_equal(mk_keypair_generate(&kp), 0);
    assert_int_equal(mk_keypair_load(&kh, E.holder_key, NULL), 0);
    assert_int_equal(mk_keypair_load(&ko, E.outsider_key, NULL), 0);
    mk_node *np = open_node(&kp, true), *nh = open_node(&kh, true),
            *no = open_node(&ko, true);

    asked ah = {0}, ao = {0};
    co_ticket_request_config rq = {.node = nh, .coalition = CFG,
                                   .timeout_ms = (uint32_t)ms(15000),
                                   .install = true};
    assert_int_equal(co_ticket_request(&rq, on_ticket, &ah, NULL, err), 0);
    rq.node = no;
    assert_int_equal(co_ticket_request(&rq, on_ticket, &ao, NULL, err), 0);
    wait_until(ticket_done, &ah, ms(20000));
    wait_until(ticket_done, &ao, ms(20000));
    if (ah.status != 0)
        fail_msg("holder's ticket: %s: %s", mk_strerror(ah.status), ah.why);
    assert_int_equal(ao.status, MK_ENOT_ALLOWED);
    assert_non_null(strstr(ao.why, "policy"));

    /* The producer judges the holder on the entry it gossiped: wait until
     * its ticket is there. */
    peer_has_ticket pt = {np, kh.pub};
    assert_true(wait_until(has_ticket, &pt, ms(20000)));

    struct mk_ticket_validator v;
    assert_int_equal(co_tickets_recognise(CFG, &v, err), 0);
    const struct mk_ticket_validator *vp[] = {&v};
    mk_streams *sp, *sh, *so;
    assert_int_equal(mk_streams_new(np, &sp), 0);
    assert_int_equal(mk_streams_new(nh, &sh), 0);
    assert_int_equal(mk_streams_new(no, &so), 0);
    mk_id sid;
    mk_stream_id(&root, "test/members-only", &sid);
    mk_producer_config pc = {.stream = sid, .validators = vp,
                             .n_validators = 1};
    mk_producer *p;
    assert_int_equal(mk_producer_open(sp, &pc, &p, err), 0);
    sub holder = {0}, outsider = {0};
    mk_consumer_config cc = {.stream = sid, .on_datum = on_datum,
                             .on_producer = on_producer, .data = &holder};
    mk_consumer *ch, *co;
    assert_int_equal(mk_consumer_open(sh, &cc, &ch, err), 0);
    cc.data = &outsider;
    assert_int_equal(mk_consumer_open(so, &cc, &co, err), 0);

    flow f = {p, co, &holder, &outsider};
    wait_until(flowed, &f, ms(30000));
    if (holder.datums < 3 || outsider.refused != MK_CLOSE_STREAM_NOT_ALLOWED ||
        outsider.datums != 0)
        fail_msg("holder got %zu datums; outsider got %zu, refused with %u",
                 holder.datums, outsider.datums, outsider.refused);

    mk_consumer_close(ch, NULL, NULL);
    mk_consumer_close(co, NULL, NULL);
    mk_producer_close(p, NULL, NULL);
    bool c1 = false, c2 = false, c3 = false;
    mk_node_close(np, on_closed_flag, &c1);
    mk_node_close(nh, on_closed_flag, &c2);
    mk_node_close(no, on_closed_flag, &c3);
    wait_until(flag_set, &c1, ms(10000));
    wait_until(flag_set, &c2, ms(10000));
    wait_until(flag_set, &c3, ms(10000));
    mk_streams_close(sp, NULL, NULL);
    mk_streams_close(sh, NULL, NULL);
    mk_streams_close(so, NULL, NULL);
    mk_ticket_validator_free(&v);
    spin(50);
}

/* ---- 5. killing any one member loses nothing ------------------------------ */

typedef struct recorder {
    uint64_t seqs[4096];
    size_t n;
    uint64_t missed;
    int errors;
} recorder;

static void on_record(co_almanac_reader *r, int status,
                      const co_almanac_tick *t, uint64_t missed, void *data)
{
    recorder *rec = data;
    if (status < 0) {
        rec->errors += status != MK_ECONNECT_TIMEOUT;
        return;
    }
    if (rec->n && t->seq == rec->seqs[rec->n - 1])
        return; /* a stamp on the same tick */
    rec->missed += missed;
    if (rec->n < sizeof rec->seqs / sizeof rec->seqs[0])
        rec->seqs[rec->n++] = t->seq;
}

typedef struct tick_goal {
    recorder *rec;
    uint64_t seq;
} tick_goal;

static bool reached(void *arg)
{
    tick_goal *g = arg;
    return g->rec->n && g->rec->seqs[g->rec->n - 1] >= g->seq;
}

static uint64_t last_seq(const recorder *rec)
{
    return rec->n ? rec->seqs[rec->n - 1] : 0;
}

/* The leader of a module's committee, by `coalition group status`. */
static int leader_of(co_module_kind kind)
{
    co_module_info m;
    mk_id gid;
    char err[CO_ERRMSG_SIZE], hex[MK_ID_HEX_LEN + 1];
    assert_int_equal(co_module_committee_group(CFG, kind, &m, &gid, err), 0);
    for (int attempt = 0; attempt < 10; attempt++) {
        proc_result r;
        assert_int_equal(menv_cli(&r, "group", "status", "--bootstrap",
                                  boot(-1), "--group", mk_id_hex(&gid, hex),
                                  "--json", NULL),
                         0);
        json_t *j = r.status == 0 ? json_loads(r.out, 0, NULL) : NULL;
        const char *leader = json_string_value(json_object_get(j, "leader"));
        int found = -1;
        for (int i = 0; leader && i < MENV_MEMBERS; i++)
            if (strcmp(E.d[i].peer_id, leader) == 0)
                found = i;
        json_decref(j);
        proc_result_free(&r);
        if (found >= 0)
            return found;
        spin(ms(500));
    }
    fail_msg("no leader for the %s", co_module_name(kind));
    return -1;
}

static bool same_everything(json_t *j)
{
    return all_verified(j) && jint(j, "chronicle", "entries") >= 2;
}

static void kill_and_check(recorder *rec, int victim, long long entries)
{
    tick_goal g = {rec, last_seq(rec) + 3};
    assert_true(wait_until(reached, &g, ms(20000)));
    menv_stop(&E, victim, true);
    uint64_t at_kill = last_seq(rec);
    /* The survivors elect a leader and count on from where it stopped. */
    g.seq = at_kill + 8;
    if (!wait_until(reached, &g, ms(40000)))
        fail_msg("the Almanac stopped at %llu after member %d died",
                 (unsigned long long)last_seq(rec), victim);

    int status;
    json_t *j = integrator_until(same_everything, "1", ms(40000), &status);
    if (!same_everything(j) || jint(j, "chronicle", "entries") != entries)
        fail_msg("with member %d dead (exit %d): %s", victim, status,
                 dump(j));
    json_decref(j);
    if (menv_start(&E, victim) != 0)
        fail_msg("member %d did not restart", victim);
}

static void killing_a_member_loses_nothing(void **state)
{
    int status;
    json_t *j = integrator_until(same_everything, "1", ms(30000), &status);
    assert_true(same_everything(j));
    long long entries = jint(j, "chronicle", "entries");
    json_decref(j);

    recorder *rec = calloc(1, sizeof *rec);
    char err[CO_ERRMSG_SIZE];
    co_almanac_reader *ar;
    assert_int_equal(co_almanac_ticks(READER, CFG, (uint32_t)ms(20000),
                                      on_record, rec, &ar, err),
                     0);
    /* The Almanac's leader first (its ticks must survive a leader
     * change), then a member that does not lead it. */
    int leader = leader_of(CO_MODULE_ALMANAC);
    kill_and_check(rec, leader, entries);
    /* The ticks went on, so the survivors elected a leader; by now the
     * victim is back, and any member but the current leader follows. */
    int follower = (leader_of(CO_MODULE_ALMANAC) + 1) % MENV_MEMBERS;
    kill_and_check(rec, follower, entries);
    tick_goal g = {rec, last_seq(rec) + 3};
    assert_true(wait_until(reached, &g, ms(20000)));
    co_almanac_close(ar, NULL, NULL);
    spin(50);

    /* Strictly consecutive across both kills and restarts. */
    assert_true(rec->n >= 20);
    for (size_t i = 1; i < rec->n; i++)
        if (rec->seqs[i] != rec->seqs[i - 1] + 1)
            fail_msg("tick %llu followed %llu",
                     (unsigned long long)rec->seqs[i],
                     (unsigned long long)rec->seqs[i - 1]);
    assert_int_equal(rec->missed, 0);
    assert_int_equal(rec->errors, 0);
    free(rec);
}

/* ---- 6. a card needs a majority of the committee --------------------------- */

typedef struct card_state {
    co_atlas_reader *r;
    mk_id citizen;
    int want;
} card_state;

static void on_atlas_quiet(co_atlas_reader *r, int status, void *data)
{
    (void)r;
    (void)status;
    (void)data;
}

static bool card_is(void *arg)
{
    card_state *c = arg;
    const co_card *card;
    return co_atlas_get(c->r, &c->citizen, &card) == c->want;
}

static void minority_card_is_unverified(void **state)
{
    char err[CO_ERRMSG_SIZE], hex[MK_ID_HEX_LEN + 1];
    /* Someone outside the committee cannot put a card in at all. */
    proc_result r = cli_expect(1, "atlas publish (outsider)", "atlas",
                               "publish", "--coalition", E.coalition,
                               "--bootstrap", boot(-1), "--key",
                               E.outsider_key, "--citizen", "seq.gamma",
                               "--role", "sequencer", NULL);
    assert_non_null(strstr(r.err, "refused"));
    proc_result_free(&r);

    card_state cs = {.want = CO_EUNVERIFIED};
    assert_int_equal(co_organism_stable_id(CFG->organisms[2], &cs.citizen,
                                           err),
                     0);
    assert_int_equal(co_atlas_read(READER, CFG, (uint32_t)ms(20000),
                                   on_atlas_quiet, NULL, &cs.r, err),
                     0);
    spin(ms(2000));
    const co_card *card;
    assert_int_equal(co_atlas_get(cs.r, &cs.citizen, &card), MK_ENOENT);

    /* Members 1 and 2 stop; member 1's identity comes back in this
     * process as a voter that keeps the log but never signs anything. */
    menv_stop(&E, 1, false);
    menv_stop(&E, 2, false);
    mk_keypair k1;
    assert_int_equal(mk_keypair_load(&k1, E.d[1].key, NULL), 0);
    mk_node *n1 = open_node(&k1, true);
    co_module_info m;
    assert_int_equal(co_module_info_get(CFG, CO_MODULE_ATLAS, &m, err), 0);
    struct mk_fsm fsm;
    assert_int_equal(co__atlas_fsm_init(&fsm, &m), 0);
    mk_group_config gc;
    co_module_group_config(&m, &fsm, &gc);
    mk_id gid;
    mk_group_id_of(&gc, &gid);
    char dir[1200], gerr[MK_ERRMSG_SIZE];
    snprintf(dir, sizeof dir, "%s/groups/%s", E.d[1].data,
             mk_id_hex(&gid, hex));
    gc.node = n1;
    gc.data_dir = dir; /* member 1's own Raft log, as its daemon left it */
    mk_group *g;
    if (mk_group_open(&gc, &g, gerr) < 0)
        fail_msg("mute member: %s", gerr);

    /* Member 0 publishes (its signature is the first); the mute member
     * commits it with member 0 and signs nothing. */
    publish(E.d[0].key, "seq.gamma", "sequencer");
    assert_true(wait_until(card_is, &cs, ms(20000)));
    spin(ms(2000)); /* duties run every 500 ms: nobody else can sign */
    assert_int_equal(co_atlas_get(cs.r, &cs.citizen, &card), CO_EUNVERIFIED);
    assert_string_equal(card->card.role, "sequencer");
    r = cli_expect(0, "atlas list", "atlas", "list", "--coalition",
                   E.coalition, "--bootstrap", boot(-1), "--json", NULL);
    json_t *list = json_loads(r.out, 0, NULL);
    size_t i, unverified = 0;
    json_t *c;
    json_array_foreach(list, i, c) unverified +=
        !json_is_true(json_object_get(c, "verified"));
    assert_int_equal(json_array_size(list), WANT_CARDS + 1);
    assert_int_equal(unverified, 1);
    json_decref(list);
    proc_result_free(&r);

    /* The real members return and sign: now a majority. */
    bool closed = false;
    mk_group_close(g, on_closed_flag, &closed);
    wait_until(flag_set, &closed, ms(10000));
    co__atlas_fsm_free(&fsm);
    closed = false;
    mk_node_close(n1, on_closed_flag, &closed);
    wait_until(flag_set, &closed, ms(10000));
    assert_int_equal(menv_start(&E, 1), 0);
    assert_int_equal(menv_start(&E, 2), 0);
    cs.want = 0;
    assert_true(wait_until(card_is, &cs, ms(40000)));
    WANT_CARDS++;
    co_atlas_close(cs.r, NULL, NULL);
    spin(50);
}

/* ---- 6b. the Chronicle records what members see ----------------------------- */

/* The log as `chronicle log --json --verify` gives it: the entries (caller
 * decrefs) and whether the verification covered them all. */
static json_t *chronicle_json(bool *verified)
{
    proc_result r;
    assert_int_equal(menv_cli(&r, "chronicle", "log", "--coalition",
                              E.coalition, "--bootstrap", boot(-1), "--json",
                              "--verify", NULL),
                     0);
    json_t *v = json_array();
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] == '{')
            json_array_append_new(v, json_loads(line, 0, NULL));
    *verified = r.status == 0;
    proc_result_free(&r);
    return v;
}

static size_t count_kind(json_t *log, const char *kind, const char *subject)
{
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(log, i, e) n +=
        strcmp(jstr(e, "kind", NULL), kind) == 0 &&
        (!subject || strcmp(jstr(e, "subject", NULL), subject) == 0);
    return n;
}

typedef struct log_goal {
    const char *kind, *subject;
    size_t want;
} log_goal;

/* Until the log holds `want` entries of the kind (and subject) and a
 * majority-signed head covers every entry. */
static bool log_has(void *arg)
{
    const log_goal *g = arg;
    bool verified;
    json_t *log = chronicle_json(&verified);
    bool ok = verified && count_kind(log, g->kind, g->subject) >= g->want;
    json_decref(log);
    return ok;
}

static void chronicle_records_what_members_see(void **state)
{
    char err[CO_ERRMSG_SIZE], beta[MK_ID_HEX_LEN + 1],
        alpha[MK_ID_HEX_LEN + 1];
    mk_id id;
    assert_int_equal(co_organism_stable_id(CFG->organisms[1], &id, err), 0);
    mk_id_hex(&id, beta);
    assert_int_equal(co_organism_stable_id(CFG->organisms[0], &id, err), 0);
    mk_id_hex(&id, alpha);

    /* Two publications for feed.beta, each replacing the card before it
     * (test 1 published the first): three members apply each, one entry
     * each. */
    publish(E.d[1].key, "feed.beta", "oracle-v2");
    publish(E.d[2].key, "feed.beta", "oracle-v3");
    log_goal g = {"atlas.card", beta, 3};
    if (!wait_until(log_has, &g, ms(30000)))
        fail_msg("the Chronicle did not record both publications");
    spin(ms(3000)); /* long enough for any member's late record to land */
    bool verified;
    json_t *log = chronicle_json(&verified);
    assert_true(verified);
    if (count_kind(log, "atlas.card", beta) != 3)
        fail_msg("wanted 3 atlas.card entries for feed.beta: %s", dump(log));
    /* Every publication once: test 1's three cards, the minority test's
     * seq.gamma card, these two. */
    assert_int_equal(count_kind(log, "atlas.card", NULL), 6);
    size_t i;
    json_t *e;
    const char *prev = NULL;
    long long last_pub = 0;
    json_array_foreach(log, i, e)
    {
        if (strcmp(jstr(e, "kind", NULL), "atlas.card") != 0 ||
            strcmp(jstr(e, "subject", NULL), beta) != 0)
            continue;
        json_t *rec = json_object_get(e, "record");
        assert_non_null(rec);
        assert_string_equal(jstr(rec, "citizen", NULL), beta);
        json_t *replaced = json_object_get(rec, "replaced");
        if (prev)
            assert_string_equal(json_string_value(replaced), prev);
        else
            assert_true(json_is_null(replaced));
        assert_true(jint(rec, "publication", NULL) > last_pub);
        last_pub = jint(rec, "publication", NULL);
        prev = jstr(rec, "card", NULL);
    }
    json_decref(log);

    /* Member 2 restarts with feed.alpha's content hash rotated. */
    char rotated[700], text[1200];
    snprintf(rotated, sizeof rotated, "%s/modules-rotated.json", E.dir);
    json_t *cfg = json_load_file(E.coalition, 0, NULL);
    assert_non_null(cfg);
    json_object_set_new(json_array_get(json_object_get(cfg, "organisms"), 0),
                        "content_hash",
                        json_string("feed.alpha/content-v2"));
    assert_int_equal(json_dump_file(cfg, rotated, JSON_INDENT(2)), 0);
    json_decref(cfg);
    co_config_file *rf;
    assert_int_equal(co_config_file_load(rotated, &rf, err), 0);
    mk_id content, same;
    assert_int_equal(
        co_organism_content_hash(co_config_file_coalition(rf)->organisms[0],
                                 &content),
        1);
    /* A rotation leaves the coalition what it was. */
    assert_int_equal(co_coalition_id(co_config_file_coalition(rf), &id, err),
                     0);
    assert_int_equal(co_coalition_id(CFG, &same, err), 0);
    assert_true(mk_id_eq(&id, &same));
    co_config_file_free(rf);
    char content_hex[MK_ID_HEX_LEN + 1];
    mk_id_hex(&content, content_hex);
    snprintf(text, sizeof text, "{\"coalition\": \"%s\"}\n", rotated);
    FILE *f = fopen(E.node_cfg[2], "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    menv_stop(&E, 2, false);
    assert_int_equal(menv_start(&E, 2), 0);

    g = (log_goal){"citizen.rotation", alpha, 1};
    if (!wait_until(log_has, &g, ms(30000)))
        fail_msg("the Chronicle did not record the rotation");
    g = (log_goal){"config", NULL, 2};
    assert_true(wait_until(log_has, &g, ms(20000)));
    spin(ms(2000));
    log = chronicle_json(&verified);
    assert_true(verified);
    assert_int_equal(count_kind(log, "citizen.rotation", NULL), 1);
    assert_int_equal(count_kind(log, "config", NULL), 2);
    json_array_foreach(log, i, e)
    {
        if (strcmp(jstr(e, "kind", NULL), "citizen.rotation") != 0)
            continue;
        json_t *rec = json_object_get(e, "record");
        assert_true(json_is_null(json_object_get(rec, "old")));
        assert_string_equal(jstr(rec, "new", NULL), content_hex);
    }
    json_decref(log);

    /* The readable log: one line per entry that says what it records. */
    proc_result r = cli_expect(0, "chronicle log --verify", "chronicle",
                               "log", "--coalition", E.coalition,
                               "--bootstrap", boot(-1), "--verify", NULL);
    char want[128];
    snprintf(want, sizeof want, "citizen.rotation %.16s…  content none -> "
                                "%.16s…",
             alpha, content_hex);
    if (!strstr(r.out, want) || !strstr(r.out, "replaces") ||
        !strstr(r.out, "(publication ") ||
        !strstr(r.out, "coalition \"test.modules\", 4 citizens") ||
        !strstr(r.out, "verified: entries 1.."))
        fail_msg("wanted readable lines (\"%s\"), got:\n%s", want, r.out);
    proc_result_free(&r);
}

/* An operator demotes an Almanac voter and promotes it back, each by
 * `coalition group demote|promote` signed with a member's key: every
 * member on both committees records both changes, once each, with the
 * operator's signature, and the log still verifies. */
static void chronicle_records_committee_changes(void **state)
{
    char err[CO_ERRMSG_SIZE], gid_hex[MK_ID_HEX_LEN + 1];
    co_module_info m;
    assert_int_equal(co_module_info_get(CFG, CO_MODULE_ALMANAC, &m, err), 0);
    struct mk_fsm fsm;
    assert_int_equal(co__almanac_fsm_init(&fsm, &m), 0);
    mk_id gid;
    co_module_group_id(&m, &fsm, &gid);
    co__almanac_fsm_free(&fsm);
    mk_id_hex(&gid, gid_hex);

    /* The leader may not be demoted: the first member that is not the
     * leader is. */
    int who = -1;
    for (int i = 0; i < MENV_MEMBERS && who < 0; i++) {
        proc_result r;
        assert_int_equal(menv_cli(&r, "group", "demote", "--group", gid_hex,
                                  "--bootstrap", boot(-1), "--key",
                                  E.d[0].key, "--timeout", "10s",
                                  E.d[i].peer_id, NULL),
                         0);
        if (r.status == 0)
            who = i;
        proc_result_free(&r);
    }
    assert_true(who >= 0);
    proc_result r = cli_expect(0, "group promote", "group", "promote",
                               "--group", gid_hex, "--bootstrap", boot(-1),
                               "--key", E.d[0].key, "--timeout", "10s",
                               E.d[who].peer_id, NULL);
    proc_result_free(&r);

    log_goal g = {"committee.change", gid_hex, 2};
    if (!wait_until(log_has, &g, ms(30000)))
        fail_msg("the Chronicle did not record both committee changes");
    spin(ms(2000)); /* any member's late record would land by now */
    bool verified;
    json_t *log = chronicle_json(&verified);
    assert_true(verified);
    if (count_kind(log, "committee.change", NULL) != 2)
        fail_msg("wanted 2 committee.change entries: %s", dump(log));
    const char *changes[2] = {"demoted", "promoted"};
    long long last = 0;
    int k = 0;
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e)
    {
        if (strcmp(jstr(e, "kind", NULL), "committee.change") != 0)
            continue;
        json_t *rec = json_object_get(e, "record");
        assert_non_null(rec);
        assert_string_equal(jstr(rec, "module", NULL), "almanac");
        assert_string_equal(jstr(rec, "change", NULL), changes[k++]);
        assert_string_equal(jstr(rec, "member", NULL), E.d[who].peer_id);
        assert_string_equal(jstr(rec, "by", NULL), E.d[0].peer_id);
        assert_true(json_is_true(json_object_get(rec, "by_operator")));
        assert_true(json_is_string(json_object_get(rec, "signature")));
        assert_true(jint(rec, "index", NULL) > last);
        last = jint(rec, "index", NULL);
    }
    json_decref(log);
    r = cli_expect(0, "chronicle log", "chronicle", "log", "--coalition",
                   E.coalition, "--bootstrap", boot(-1), "--verify", NULL);
    char want[128];
    snprintf(want, sizeof want, "almanac: %.16s… demoted, by operator %.16s…",
             E.d[who].peer_id, E.d[0].peer_id);
    if (!strstr(r.out, want) || !strstr(r.out, "promoted, by operator"))
        fail_msg("wanted \"%s\" in:\n%s", want, r.out);
    proc_result_free(&r);
}

/* ---- 7. retirement --------------------------------------------------------- */

static void retired_atlas_names_successor(void **state)
{
    char timeout[32], hex[MK_ID_HEX_LEN + 1], err[CO_ERRMSG_SIZE];
    snprintf(timeout, sizeof timeout, "%ds", ms(15));
    proc_result r = cli_expect(1, "atlas retire (outsider)", "atlas",
                               "retire", "--coalition", E.coalition,
                               "--bootstrap", boot(-1), "--key",
                               E.outsider_key, "--reason", "hostile",
                               "--timeout", timeout, NULL);
    proc_result_free(&r);
    r = cli_expect(0, "atlas retire", "atlas", "retire", "--coalition",
                   E.coalition, "--bootstrap", boot(-1), "--key",
                   E.d[2].key, "--reason", "moved to atlas v2",
                   "--successor", "test.modules/atlas-v2", "--timeout",
                   timeout, NULL);
    proc_result_free(&r);
    /* Final: a second marker is refused, and so are new cards. */
    r = cli_expect(1, "atlas retire (again)", "atlas", "retire",
                   "--coalition", E.coalition, "--bootstrap", boot(-1),
                   "--key", E.d[0].key, "--reason", "again", "--timeout",
                   timeout, NULL);
    proc_result_free(&r);
    r = cli_expect(1, "atlas publish (retired)", "atlas", "publish",
                   "--coalition", E.coalition, "--bootstrap", boot(-1),
                   "--key", E.d[0].key, "--citizen", "feed.alpha", "--role",
                   "oracle", "--timeout", timeout, NULL);
    proc_result_free(&r);

    mk_id successor;
    mk_id_from_str(&successor, "test.modules/atlas-v2");
    mk_id_hex(&successor, hex);

    /* A reader of this process. */
    read_wait w = {0};
    co_atlas_reader *rd;
    assert_int_equal(co_atlas_read(READER, CFG, (uint32_t)ms(20000), on_read,
                                   &w, &rd, err),
                     0);
    int64_t end = mk_mono_ms() + ms(20000);
    co_retirement ret = {0};
    while (mk_mono_ms() < end) {
        co_atlas_retirement(rd, &ret);
        if (ret.retired)
            break;
        spin(20);
    }
    assert_true(ret.retired);
    assert_string_equal(ret.reason, "moved to atlas v2");
    assert_true(ret.has_successor);
    assert_true(mk_id_eq(&ret.successor, &successor));
    /* The cards stay readable: retirement stops writes, not history. */
    assert_int_equal(co_atlas_count(rd), WANT_CARDS);
    co_atlas_close(rd, NULL, NULL);
    spin(50);

    /* The integrator reports it with the successor. */
    int status;
    json_t *j = menv_integrator(&status, "--bootstrap", boot(-1), "--follow",
                                "1", "--timeout", "20", NULL);
    assert_non_null(j);
    assert_int_equal(status, 1);
    assert_string_equal(jstr(j, "atlas", "status"), "retired");
    assert_string_equal(jstr(j, "atlas", "code"), "CO_ERETIRED");
    assert_string_equal(jstr(j, "atlas", "successor"), hex);
    assert_string_equal(jstr(j, "almanac", "status"), "ok");
    json_decref(j);
}

/* ---- the daemons leave cleanly ---------------------------------------------- */

static void members_exit_cleanly(void **state)
{
    /* Under the sanitizers a leak or an error in a daemon (the issuer's
     * included) turns into a non-zero exit here. */
    for (int i = 0; i < MENV_MEMBERS; i++) {
        int st = daemon_signal_wait(&E.d[i], SIGTERM, ms(15000));
        if (st != 0) {
            daemon_dump_log(&E.d[i]);
            fail_msg("member %d exited with %d", i, st);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integrator_reads_everything),
        cmocka_unit_test(flood_is_refused_at_the_door),
        cmocka_unit_test(reordered_config_times_out),
        cmocka_unit_test(tampered_chronicle_is_named),
        cmocka_unit_test(issued_ticket_opens_a_stream),
        cmocka_unit_test(killing_a_member_loses_nothing),
        cmocka_unit_test(minority_card_is_unverified),
        cmocka_unit_test(chronicle_records_what_members_see),
        cmocka_unit_test(chronicle_records_committee_changes),
        cmocka_unit_test(retired_atlas_names_successor),
        cmocka_unit_test(members_exit_cleanly),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    menv_free(&E, failed != 0);
    return failed;
}
