/* Module benchmark: the Atlas, Almanac and Chronicle of a coalition run
 * by three real coalitiond members on loopback, measured from a reader
 * and an operator in this process (the same public handles integrators
 * and the CLI use):
 *
 *   Atlas      publish → visible: for each of --cards publishes (one at a
 *              time, each by a committee member), the time until a reader
 *              holds the card and until it holds it majority-signed;
 *              then co_atlas_get from the reader's local replica in a
 *              loop (reads/s).
 *   Almanac    tick jitter: |interval − cadence| between consecutive
 *              ticks over --ticks ticks, by the leader's stamps (when the
 *              committee proposed) and by the reader's clock (when it saw
 *              them).
 *   Chronicle  appends/s with --window appends in flight (16, then 256,
 *              unless --window is given, once or more; every append of
 *              the process distinct, so no signature is found already
 *              checked: on 2 cores both windows are bound by the CPU the
 *              members spend on Ed25519, one check per append on each
 *              and the appender's signature), beside what one durable write
 *              costs on that disk, the disk's share of an append's
 *              latency; and offline,
 *              co_chronicle_verify_entries over a synthetic chain (every
 *              entry signed by two of three members), in MB/s of bodies
 *              and entries/s, for small and for maximal bodies.
 *
 * The committee's keys are fresh each run (the coalition file is written
 * here), so runs never share state. Figures are printed, never asserted.
 *
 *   bench_modules [--dir DIR] [--cards N] [--ticks N] [--cadence MS]
 *                 [--appends N] [--window N] [--offline]
 *
 * coalitiond is taken from $BUILD_DIR (bench/modules.sh sets it).
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "coalition/almanac.h"
#include "coalition/atlas.h"
#include "coalition/chronicle.h"
#include "coalition/config_file.h"
#include "coalition/identity.h"
#include "coalition/modules_internal.h"
#include "daemon.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/node.h"

#define MEMBERS 3
#define MAX_SAMPLES 100000

typedef struct opts {
    const char *dir;
    size_t cards, ticks, appends;
    size_t windows[8], n_windows;
    uint64_t cadence_ms;
    bool offline;
} opts;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bench_modules: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* ---- statistics ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted samples. */
static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    return v[(k > n ? n : k) - 1];
}

static void report(const char *what, double *v, size_t n, const char *unit)
{
    qsort(v, n, sizeof *v, cmp_double);
    printf("  %-44s p50 %8.2f %s   p99 %8.2f %s   max %8.2f %s   (n=%zu)\n",
           what, pct(v, n, 50), unit, pct(v, n, 99), unit,
           n ? v[n - 1] : 0.0, unit, n);
}

/* ---- the environment: members and this process's node ------------------- */

typedef struct env {
    char dir[512], coalition_path[600];
    daemon_proc d[MEMBERS];
    mk_keypair member[MEMBERS];
    char hex[MEMBERS][MK_ID_HEX_LEN + 1];
    const char *committee[MEMBERS];
    char almanac_content[64];
    co_organism_ref org;
    co_citizen_ref atlas_orgs[1];
    co_confluence_config atlas, almanac, chronicle;
    const co_confluence_config *confs[3];
    const co_organism_ref *orgs[1];
    co_coalition_config cfg;
    uv_loop_t loop;
    uv_timer_t pulse;
    mk_node *node;
} env;

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static bool spin_until(env *e, bool (*pred)(void *), void *arg,
                       int64_t timeout_ms)
{
    int64_t end = mk_mono_ms() + timeout_ms;
    while (!pred(arg) && mk_mono_ms() < end)
        uv_run(&e->loop, UV_RUN_ONCE);
    return pred(arg);
}

/* A coalition of one organism and the three modules, all run by the
 * same three fresh members. */
static void make_coalition(env *e, const opts *o)
{
    for (int i = 0; i < MEMBERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        if (daemon_prepare(&e->d[i], e->dir, name) != 0 ||
            mk_keypair_load(&e->member[i], e->d[i].key, NULL) < 0)
            die("cannot write a key in %s", e->dir);
        mk_id_hex(&e->member[i].pub, e->hex[i]);
        e->committee[i] = e->hex[i];
    }
    snprintf(e->almanac_content, sizeof e->almanac_content,
             "almanac/v1;cadence_ms=%llu", (unsigned long long)o->cadence_ms);
    e->org = (co_organism_ref){.role = "oracle", .instance = "bench.feed"};
    e->orgs[0] = &e->org;
    e->atlas_orgs[0] = (co_citizen_ref){.organism = &e->org};
    co_acl acl = {.issuers = e->committee, .n_issuers = MEMBERS};
    e->atlas = (co_confluence_config){.name = "atlas", .content = "atlas/v1",
                                      .organisms = e->atlas_orgs,
                                      .n_organisms = 1, .acl = acl};
    e->almanac = (co_confluence_config){.name = "almanac",
                                        .content = e->almanac_content,
                                        .acl = acl};
    e->chronicle = (co_confluence_config){.name = "chronicle",
                                          .content = "chronicle/v1",
                                          .acl = acl};
    e->confs[0] = &e->atlas;
    e->confs[1] = &e->almanac;
    e->confs[2] = &e->chronicle;
    e->cfg = (co_coalition_config){.name = "bench.modules",
                                   .organisms = e->orgs, .n_organisms = 1,
                                   .confluences = e->confs,
                                   .n_confluences = 3};
    char err[CO_ERRMSG_SIZE];
    snprintf(e->coalition_path, sizeof e->coalition_path,
             "%s/coalition.json", e->dir);
    if (co_config_save(&e->cfg, e->coalition_path, err) < 0)
        die("%s", err);
}

static void start_members(env *e)
{
    char boot[160];
    for (int i = 0; i < MEMBERS; i++) {
        const char *args[6] = {"--coalition", e->coalition_path, "--quiet"};
        if (i > 0) {
            args[3] = "--bootstrap";
            args[4] = daemon_bootstrap(&e->d[0], boot, sizeof boot);
        }
        if (daemon_start(&e->d[i], args) != 0)
            die("member %s did not start", e->d[i].name);
    }
    uv_loop_init(&e->loop);
    uv_timer_init(&e->loop, &e->pulse);
    uv_timer_start(&e->pulse, on_pulse, 2, 2);
    mk_keypair k;
    char err[MK_ERRMSG_SIZE];
    if (mk_keypair_generate(&k) < 0)
        die("%s", "no randomness");
    const char *bp[] = {daemon_bootstrap(&e->d[1], boot, sizeof boot)};
    mk_node_config nc = {.loop = &e->loop, .key = &k, .bootstrap = bp,
                         .n_bootstrap = 1};
    if (mk_node_new(&nc, &e->node, err) < 0)
        die("%s", err);
    mk_node_start(e->node);
}

static void stop_members(env *e)
{
    mk_node_close(e->node, NULL, NULL);
    uv_close((uv_handle_t *)&e->pulse, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_loop_close(&e->loop);
    for (int i = 0; i < MEMBERS; i++)
        daemon_signal_wait(&e->d[i], SIGTERM, 10000);
}

/* ---- Atlas ------------------------------------------------------------------ */

typedef struct atlas_run {
    co_atlas_reader *r;
    bool ready;
    int published; /* status of the last publish; 1 while pending */
    mk_id citizen;
    int64_t t0, held_us, verified_us;
} atlas_run;

static void on_atlas(co_atlas_reader *r, int status, void *data)
{
    atlas_run *a = data;
    if (status == 0)
        a->ready = true;
    if (!a->t0 || a->verified_us)
        return;
    /* Changes arrive as the replica applies them: note the first instant
     * the card is held and the first it is majority-signed. */
    const co_card *card;
    int rc = co_atlas_get(r, &a->citizen, &card);
    int64_t now = mk_mono_us();
    if (rc != MK_ENOENT && !a->held_us)
        a->held_us = now;
    if (rc == 0)
        a->verified_us = now;
}

static void on_published(int status, void *data)
{
    ((atlas_run *)data)->published = status;
}

static bool atlas_ready(void *arg)
{
    return ((atlas_run *)arg)->ready;
}

static bool card_done(void *arg)
{
    atlas_run *a = arg;
    return a->verified_us && a->published != 1;
}

static void bench_atlas(env *e, const opts *o)
{
    char err[CO_ERRMSG_SIZE];
    atlas_run a = {0};
    if (co_atlas_read(e->node, &e->cfg, 30000, on_atlas, &a, &a.r, err) < 0)
        die("%s", err);
    if (!spin_until(e, atlas_ready, &a, 30000))
        die("%s", "no Atlas member answered");
    double *held = calloc(o->cards, sizeof *held);
    double *verified = calloc(o->cards, sizeof *verified);
    size_t n = 0;
    /* One card first, not timed: a reader can be caught up before the
     * committee has elected its first leader, and that election (about
     * an election timeout) is not what this measures. */
    for (size_t i = 0, warm = 1; i < o->cards + warm; i++) {
        bool warming = i == 0;
        char name[64];
        if (warming)
            snprintf(name, sizeof name, "bench/warm-up");
        else
            snprintf(name, sizeof name, "bench/citizen/%zu", i - warm);
        co_citizen_card card = {.role = "oracle",
                                .schema_version = CO_CARD_SCHEMA_VERSION};
        mk_id_from_str(&card.citizen_id, name);
        a.citizen = card.citizen_id;
        a.held_us = a.verified_us = 0;
        a.published = 1;
        a.t0 = mk_mono_us();
        if (co_atlas_publish(e->node, &e->cfg, &card, &e->member[i % MEMBERS],
                             10000, on_published, &a, err) < 0)
            die("%s", err);
        if (!spin_until(e, card_done, &a, 20000) || a.published != 0) {
            fprintf(stderr, "bench_modules: card %zu not verified in time "
                            "(publish: %s)\n",
                    i, mk_strerror(a.published));
            continue;
        }
        if (warming)
            continue;
        held[n] = (double)(a.held_us - a.t0) / 1000.0;
        verified[n] = (double)(a.verified_us - a.t0) / 1000.0;
        n++;
    }
    a.t0 = 0;
    printf("atlas (%zu publishes, one at a time)\n", n);
    report("publish -> reader holds the card", held, n, "ms");
    report("publish -> reader holds it majority-signed", verified, n, "ms");

    /* Reads from the local replica: no network in the loop. */
    mk_id ids[64];
    size_t nid = o->cards < 64 ? o->cards : 64;
    for (size_t i = 0; i < nid; i++) {
        char name[64];
        snprintf(name, sizeof name, "bench/citizen/%zu", i);
        mk_id_from_str(&ids[i], name);
    }
    size_t reads = 0, found = 0;
    int64_t start = mk_mono_us(), end = start + 1000000;
    while (nid && mk_mono_us() < end)
        for (size_t k = 0; k < 4096; k++, reads++) {
            const co_card *c;
            found += co_atlas_get(a.r, &ids[reads % nid], &c) == 0;
        }
    double secs = (double)(mk_mono_us() - start) / 1e6;
    printf("  co_atlas_get from the local replica          %12.0f reads/s "
           "(%zu cards, %zu of %zu reads verified)\n",
           secs > 0 ? (double)reads / secs : 0.0, co_atlas_count(a.r), found,
           reads);
    co_atlas_close(a.r, NULL, NULL);
    free(held);
    free(verified);
}

/* ---- Almanac ---------------------------------------------------------------- */

typedef struct almanac_run {
    size_t n, want;
    uint64_t last_seq, gaps;
    int64_t *stamp_ms, *seen_us;
} almanac_run;

static void on_tick(co_almanac_reader *r, int status, const co_almanac_tick *t,
                    uint64_t missed, void *data)
{
    almanac_run *a = data;
    if (status < 0 || t->seq == a->last_seq || a->n >= a->want)
        return;
    if (a->last_seq && t->seq != a->last_seq + 1)
        a->gaps++;
    /* Only ticks seen live: the backlog a replica replays on joining
     * arrives in a burst that says nothing about the cadence. */
    bool live = mk_now_ms() - t->stamps[0].unix_ms < 2000;
    a->last_seq = t->seq;
    if (!live)
        return;
    a->stamp_ms[a->n] = t->stamps[0].unix_ms;
    a->seen_us[a->n] = mk_mono_us();
    a->n++;
}

static bool ticks_done(void *arg)
{
    almanac_run *a = arg;
    return a->n >= a->want;
}

static void bench_almanac(env *e, const opts *o)
{
    char err[CO_ERRMSG_SIZE];
    almanac_run a = {.want = o->ticks + 1};
    a.stamp_ms = calloc(a.want, sizeof *a.stamp_ms);
    a.seen_us = calloc(a.want, sizeof *a.seen_us);
    co_almanac_reader *r;
    if (co_almanac_ticks(e->node, &e->cfg, 30000, on_tick, &a, &r, err) < 0)
        die("%s", err);
    int64_t budget = (int64_t)(a.want * o->cadence_ms * 3) + 30000;
    spin_until(e, ticks_done, &a, budget);
    co_almanac_close(r, NULL, NULL);
    size_t n = a.n > 1 ? a.n - 1 : 0;
    double *by_stamp = calloc(n + 1, sizeof *by_stamp);
    double *by_reader = calloc(n + 1, sizeof *by_reader);
    double cad = (double)o->cadence_ms;
    for (size_t i = 0; i < n; i++) {
        double ds = (double)(a.stamp_ms[i + 1] - a.stamp_ms[i]);
        double dr = (double)(a.seen_us[i + 1] - a.seen_us[i]) / 1000.0;
        by_stamp[i] = ds > cad ? ds - cad : cad - ds;
        by_reader[i] = dr > cad ? dr - cad : cad - dr;
    }
    printf("almanac (cadence %llu ms, %zu intervals, %llu gaps)\n",
           (unsigned long long)o->cadence_ms, n,
           (unsigned long long)a.gaps);
    report("|interval - cadence|, leader's stamps", by_stamp, n, "ms");
    report("|interval - cadence|, reader's clock", by_reader, n, "ms");
    free(by_stamp);
    free(by_reader);
    free(a.stamp_ms);
    free(a.seen_us);
}

/* ---- Chronicle: appends ------------------------------------------------------ */

typedef struct append_run {
    env *e;
    const opts *o;
    size_t window;
    size_t sent, done, failed, in_flight;
    uint64_t first; /* appends made before this run, by earlier runs */
    uint8_t body[256];
} append_run;

static void send_more(append_run *a);

static void on_appended(int status, void *data)
{
    append_run *a = data;
    a->in_flight--;
    a->done++;
    a->failed += status != 0;
    send_more(a);
}

static void send_more(append_run *a)
{
    char err[CO_ERRMSG_SIZE];
    while (a->sent < a->o->appends && a->in_flight < a->window) {
        mk_id subject;
        char name[64];
        /* Every append of the process is distinct: a repeated one would
         * carry the same deterministic Ed25519 signature, which members
         * find in their memo of checked signatures instead of verifying
         * (a second run once measured twice the first's rate that way). */
        uint64_t k = a->first + a->sent;
        snprintf(name, sizeof name, "bench/subject/%llu",
                 (unsigned long long)k);
        memcpy(a->body, &k, sizeof k);
        mk_id_from_str(&subject, name);
        if (co_chronicle_append(a->e->node, &a->e->cfg, "bench", &subject,
                                a->body, sizeof a->body, false,
                                &a->e->member[a->sent % MEMBERS], 20000,
                                on_appended, a, err) < 0)
            die("%s", err);
        a->sent++;
        a->in_flight++;
    }
}

/* What one durable 4 KiB write costs in the members' data dir (O_DIRECT
 * | O_DSYNC into fresh, preallocated space, as libraft writes its log
 * segments; rewriting blocks already written skips ext4's conversion of
 * unwritten extents and read lower): the disk's share of an append's
 * latency. An append is durable on the leader and one follower before it
 * is answered, and a command arriving while a write is under way waits
 * for it, so an append takes at least one and up to about two such
 * writes; on a busy machine (p50 2-4 ms here) that bounds a small window,
 * on a quiet one (0.2 ms) the time of an append goes elsewhere. */
static void disk_floor(const char *dir)
{
    enum { N = 200, SZ = 4096 };
    char path[600];
    snprintf(path, sizeof path, "%s/disk-probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_DSYNC,
                  0600);
    void *buf = NULL;
    if (fd < 0 || posix_memalign(&buf, SZ, SZ) != 0) {
        printf("  (no disk probe: %s)\n", fd < 0 ? "open failed" : "no memory");
        if (fd >= 0)
            close(fd);
        return;
    }
    memset(buf, 0xab, SZ);
    int rc = posix_fallocate(fd, 0, (off_t)N * SZ);
    if (rc != 0) {
        printf("  (no disk probe: fallocate: %s)\n", strerror(rc));
        close(fd);
        unlink(path);
        free(buf);
        return;
    }
    double v[N];
    size_t n = 0;
    for (; n < N; n++) {
        int64_t t0 = mk_mono_us();
        if (pwrite(fd, buf, SZ, (off_t)n * SZ) != SZ)
            break;
        v[n] = (double)(mk_mono_us() - t0) / 1000.0;
    }
    close(fd);
    unlink(path);
    free(buf);
    report("durable 4 KiB log write in the data dir", v, n, "ms");
}

static bool appends_done(void *arg)
{
    append_run *a = arg;
    return a->done >= a->o->appends;
}

static void bench_appends(env *e, const opts *o, size_t window)
{
    static uint64_t made; /* by earlier runs in this process */
    append_run a = {.e = e, .o = o, .window = window, .first = made};
    memset(a.body, 'x', sizeof a.body);
    int64_t t0 = mk_mono_us();
    send_more(&a);
    spin_until(e, appends_done, &a, 120000);
    double secs = (double)(mk_mono_us() - t0) / 1e6;
    made += a.sent;
    double rate = secs > 0 ? (double)a.done / secs : 0.0;
    printf("  appends (256 B bodies, %4zu in flight)         %9.0f "
           "appends/s (%zu done, %zu failed; %.2f ms each)\n",
           window, rate, a.done, a.failed,
           rate > 0 ? (double)window * 1000.0 / rate : 0.0);
}

/* ---- Chronicle: verification ----------------------------------------------- */

static void bench_verify(size_t n, size_t body_len)
{
    mk_keypair kp[MEMBERS];
    mk_peer_id committee[MEMBERS];
    for (int i = 0; i < MEMBERS; i++) {
        uint8_t seed[32];
        memset(seed, 0x40 + i, sizeof seed);
        mk_keypair_from_seed(&kp[i], seed);
        committee[i] = kp[i].pub;
    }
    co_chronicle_entry *v = calloc(n, sizeof *v);
    co_member_sig *sigs = calloc(2 * n, sizeof *sigs);
    uint8_t *body = malloc(body_len);
    if (!v || !sigs || !body)
        die("%s", "out of memory");
    for (size_t i = 0; i < body_len; i++)
        body[i] = (uint8_t)(i * 31 + 7);
    mk_id prev = {{0}}, subject;
    mk_id_from_str(&subject, "bench/subject");
    /* One body shared by every entry: the hash covers it once per entry
     * all the same, and memory stays small. */
    for (size_t i = 0; i < n; i++) {
        co_chronicle_entry *e = &v[i];
        e->seq = i + 1;
        e->kind = "bench";
        e->subject = subject;
        e->body = body;
        e->body_len = body_len;
        e->prev = prev;
        co__chronicle_entry_hash(e->seq, e->kind, &e->subject, body,
                                 body_len, &prev, &e->hash);
        for (int s = 0; s < 2; s++) {
            sigs[2 * i + s].member = kp[s].pub;
            co__chronicle_sign_hash(&kp[s], &e->hash, sigs[2 * i + s].sig);
        }
        e->sigs = &sigs[2 * i];
        e->n_sigs = 2;
        prev = e->hash;
    }
    co_chronicle_check c;
    int64_t t0 = mk_mono_us();
    co_chronicle_verify_entries(v, n, committee, MEMBERS, &c);
    double secs = (double)(mk_mono_us() - t0) / 1e6;
    if (!c.ok || c.signed_head != n)
        die("synthetic chain did not verify: %s", c.why);
    double mb = (double)n * (double)body_len / 1e6;
    char what[64];
    snprintf(what, sizeof what, "verify %zu entries of %zu B", n, body_len);
    printf("  %-44s %9.1f MB/s of bodies  %9.0f entries/s\n", what,
           secs > 0 ? mb / secs : 0.0, secs > 0 ? (double)n / secs : 0.0);
    free(v);
    free(sigs);
    free(body);
}

/* ---- main ------------------------------------------------------------------- */

static size_t count_arg(const char *s, const char *name)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || v == 0 || v > MAX_SAMPLES)
        die("--%s: a count from 1 to 100000 is required", name);
    return (size_t)v;
}

int main(int argc, char **argv)
{
    opts o = {.dir = NULL, .cards = 50, .ticks = 120, .cadence_ms = 100,
              .appends = 5000};
    static const struct option lo[] = {
        {"dir", required_argument, NULL, 'd'},
        {"cards", required_argument, NULL, 'c'},
        {"ticks", required_argument, NULL, 't'},
        {"cadence", required_argument, NULL, 'C'},
        {"appends", required_argument, NULL, 'a'},
        {"window", required_argument, NULL, 'w'},
        {"offline", no_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': o.dir = optarg; break;
        case 'c': o.cards = count_arg(optarg, "cards"); break;
        case 't': o.ticks = count_arg(optarg, "ticks"); break;
        case 'C': o.cadence_ms = count_arg(optarg, "cadence"); break;
        case 'a': o.appends = count_arg(optarg, "appends"); break;
        case 'w':
            if (o.n_windows == sizeof o.windows / sizeof o.windows[0])
                die("%s", "--window: at most 8");
            o.windows[o.n_windows++] = count_arg(optarg, "window");
            break;
        case 'o': o.offline = true; break;
        default:
            fprintf(stderr, "usage: bench_modules [--dir DIR] [--cards N] "
                            "[--ticks N] [--cadence MS] [--appends N] "
                            "[--window N] [--offline]\n");
            return 2;
        }
    }
    if (o.n_windows == 0) {
        o.windows[o.n_windows++] = 16;
        o.windows[o.n_windows++] = 256;
    }
    if (o.cadence_ms < 10)
        die("%s", "--cadence: at least 10 ms");
    signal(SIGPIPE, SIG_IGN);

    if (!o.offline) {
        env *e = calloc(1, sizeof *e);
        if (!e)
            die("%s", "out of memory");
        if (o.dir) {
            mkdir(o.dir, 0700);
            snprintf(e->dir, sizeof e->dir, "%s", o.dir);
        } else if (!daemon_tmpdir(e->dir, sizeof e->dir)) {
            die("%s", "no temporary directory");
        }
        make_coalition(e, &o);
        start_members(e);
        printf("3 coalitiond members on loopback, data in %s\n", e->dir);
        bench_atlas(e, &o);
        bench_almanac(e, &o);
        printf("chronicle\n");
        disk_floor(e->dir);
        for (size_t i = 0; i < o.n_windows; i++)
            bench_appends(e, &o, o.windows[i]);
        stop_members(e);
        if (!o.dir)
            daemon_rmtree(e->dir);
        free(e);
    } else {
        printf("chronicle\n");
    }
    bench_verify(20000, 256);
    bench_verify(2000, CO_CHRONICLE_MAX_BODY);
    return 0;
}
