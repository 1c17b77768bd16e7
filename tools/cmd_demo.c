/* `coalition demo`: a live local coalition, the project's main job.
 *
 * On loopback, as separate processes: a three-member committee running
 * the Atlas, Almanac and Chronicle of the demo coalition
 * (examples/demo_coalition.h, compiled in exactly as an integrator would),
 * a fourth member that stands by in the Almanac's committee only, and
 * the two price-feed organisms that are its citizens. Then, as an
 * integrator in this process: publish a card per citizen, read the Atlas,
 * follow the Almanac, verify the Chronicle and watch the feeds, printing
 * a live summary. Midway through, as an operator, it rotates the
 * Almanac's committee (demo_rotation.h) and shows the ticks going on and
 * the Chronicle recording the change. Ctrl-C (or --for) stops every
 * process cleanly.
 *
 * The committee's keys come from fixed seeds, so the coalition_id is the
 * same on every run and every machine.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "coalition/almanac.h"
#include "coalition/atlas.h"
#include "coalition/chronicle.h"
#include "coalition/config_file.h"
#include "coalition/fx_correlator.h"
#include "coalition/price_feed.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"
#include "mosaik/node.h"
#include "mosaik/stream.h"
#include "demo_coalition.h" /* demo_coalition_dep, examples/meson.build */
#include "demo_compute.h"
#include "demo_rotation.h"
#include "util.h"

/* member0..2 are the committee of every module; member3 is listed in
 * the Almanac's only, as its standby (voters=3). */
#define N_MEMBERS 4
/* Without --for, when the rotation happens. */
#define ROTATE_AFTER_MS 15000
/* With --for, how long past it the run may wait for a late rotation to
 * reach the Chronicle (a slow start on a loaded machine). */
#define ROTATION_GRACE_MS 10000
#define N_FEEDS 2
#define N_CHILDREN (N_MEMBERS + N_FEEDS)

static const char *const FEEDS[N_FEEDS] = {"price-feed.eur",
                                           "price-feed.usd"};
static const char *const PAIRS[N_FEEDS] = {"EURUSD", "USDCHF"};
static const char *const STARTS[N_FEEDS] = {"1.0842", "0.9120"};

static void usage(FILE *out)
{
    fprintf(out,
        "usage: coalition demo [--for SECONDS] [--json] [--dir DIR]\n"
        "\n"
        "Runs the demo coalition \"demo.euro-fx\" on loopback: a three-member\n"
        "committee (Atlas, Almanac every 500 ms, Chronicle, Compute), a\n"
        "standby member of the Almanac's, two price-feed organisms and two\n"
        "Compute providers, each its own process; then publishes a card per\n"
        "citizen and, as an integrator, reads the cards, follows the ticks,\n"
        "verifies the chronicle, watches the feeds and runs one small\n"
        "workload on a provider, printing a live summary. Midway (at half of\n"
        "--for, else after 15 s; once the Almanac ticks) an operator rotates\n"
        "the Almanac's committee: a voter is demoted, the standby promoted,\n"
        "the ticks go on and the Chronicle records both changes. Ctrl-C\n"
        "stops everything and leaves no process.\n"
        "\n"
        "  --for S    stop after S seconds (default: run until Ctrl-C); a\n"
        "             rotation not yet in the Chronicle then gets up to\n"
        "             10 s more\n"
        "  --json     at the end print one JSON object: coalition_id,\n"
        "             cards, almanac {first_seq,last_seq,gaps}, chronicle\n"
        "             {entries,verified,committee_changes}, leaders,\n"
        "             feeds, compute {granted,exit,verified_log}, rotation\n"
        "             {module,done,out,in,at_ms,seq_at,ticks_after,\n"
        "             chronicle_recorded} (and no live lines)\n"
        "  --dir DIR  keep keys, data and logs there (default: a temporary\n"
        "             directory, removed afterwards)\n");
}

typedef struct demo demo;

typedef struct child {
    demo *d;
    uv_process_t proc;
    uv_pipe_t out;
    char name[32];
    char line[512];
    size_t len;
    char peer_id[MK_ID_HEX_LEN + 1];
    char listen[64];
    char http[64]; /* members: their --http address */
    bool started, ready, exited;
    int64_t status;
} child;

struct demo {
    uv_loop_t loop;
    char dir[PATH_MAX];
    bool keep_dir, json, interactive;
    int64_t run_ms, started_ms;
    char bin_dir[PATH_MAX];
    child kids[N_CHILDREN];
    int live_kids;
    mk_keypair member_keys[N_MEMBERS];
    mk_keypair me;
    mk_node *node;
    mk_streams *streams;
    mk_consumer *feeds[N_FEEDS];
    uint64_t feed_items[N_FEEDS];
    char feed_last[N_FEEDS][64];
    co_confluence_def fx_def;
    co_confluence_reader *fx;
    int fx_status;
    co_atlas_reader *atlas;
    co_almanac_reader *almanac;
    co_chronicle_reader *chronicle;
    int atlas_status, almanac_status, chronicle_status;
    int published, publish_failed;
    uint64_t first_seq, last_seq, gaps, ticks;
    mk_group_client *status_client[3];
    char leaders[3][MK_ID_HEX_LEN + 1];
    uv_timer_t summary, stop_timer, kill_timer;
    uv_signal_t sigint, sigterm;
    int feeds_closing;
    bool stopping, integrator_started;
    size_t final_cards; /* verified cards when it stopped */
    int exit_code;
    demo_compute *compute; /* the Compute part (demo_compute.h) */
    bool compute_ok;       /* its workload ran and its log verified */
    bool rotation_ok;      /* rotated, recorded, and ticks went on */
    demo_rotation *rotation; /* the Almanac's rotation (demo_rotation.h) */
    bool rotated, rotation_shown, no_rotation;
    int64_t stop_deadline_ms; /* --for's end plus ROTATION_GRACE_MS */
    int64_t rotated_ms;   /* since started */
    uint64_t rotated_seq; /* the latest tick seen when it committed */
    uint64_t ticks_after; /* ticks seen since */
};

static const char *MODULES[3] = {"atlas", "almanac", "chronicle"};

/* ---- child processes ------------------------------------------------------ */

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    child *c = p->data;
    c->exited = true;
    c->status = sig ? 128 + sig : status;
    c->d->live_kids--;
    uv_close((uv_handle_t *)p, NULL);
    /* Its stdout pipe was only read for the first line. */
    if (!uv_is_closing((uv_handle_t *)&c->out))
        uv_close((uv_handle_t *)&c->out, NULL);
    if (!c->d->stopping && !c->d->json)
        fprintf(stderr, "demo: %s exited (%lld) — see %s/%s.log\n", c->name,
                (long long)c->status, c->d->dir, c->name);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    child *c = h->data;
    size_t room = sizeof c->line - 1 - c->len;
    buf->base = c->line + c->len;
    buf->len = room ? room : 1;
}

static void start_integrator(demo *d);

static void on_child_line(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    child *c = s->data;
    if (n <= 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, NULL);
        return;
    }
    c->len += (size_t)n;
    c->line[c->len] = '\0';
    char *nl = strchr(c->line, '\n');
    if (!nl || c->ready)
        return;
    *nl = '\0';
    json_t *j = json_loads(c->line, 0, NULL);
    const char *pid = json_string_value(json_object_get(j, "peer_id"));
    const char *ls = json_string_value(json_object_get(j, "listen"));
    const char *http = json_string_value(json_object_get(j, "http"));
    if (pid && ls) {
        snprintf(c->peer_id, sizeof c->peer_id, "%s", pid);
        snprintf(c->listen, sizeof c->listen, "%s", ls);
        snprintf(c->http, sizeof c->http, "%s", http ? http : "");
        c->ready = true;
    }
    json_decref(j);
    uv_read_stop(s);
    start_integrator(c->d);
}

static int spawn(demo *d, child *c, const char *exe, char **args)
{
    char path[PATH_MAX + 64], log[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", d->bin_dir, exe);
    if (access(path, X_OK) != 0)
        return MK_ENOENT;
    snprintf(log, sizeof log, "%s/%s.log", d->dir, c->name);
    int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0)
        return -errno;
    char *argv[32];
    int n = 0;
    argv[n++] = path;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    uv_pipe_init(&d->loop, &c->out, 0);
    c->out.data = c;
    c->proc.data = c;
    c->d = d;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_INHERIT_FD, .data.fd = logfd},
    };
    uv_process_options_t o = {
        .exit_cb = on_child_exit,
        .file = path,
        .args = argv,
        .stdio = stdio,
        .stdio_count = 3,
    };
    int rc = uv_spawn(&d->loop, &c->proc, &o);
    close(logfd);
    if (rc < 0) {
        uv_close((uv_handle_t *)&c->out, NULL);
        return rc;
    }
    c->started = true;
    d->live_kids++;
    uv_read_start((uv_stream_t *)&c->out, on_alloc, on_child_line);
    return 0;
}

/* Writes a seeded key file (kept across runs in --dir). */
static int seeded_key(demo *d, const char *seed, const char *file,
                      mk_keypair *kp)
{
    char path[PATH_MAX + 64];
    mk_id s;
    mk_id_from_str(&s, seed);
    mk_keypair_from_seed(kp, s.b);
    snprintf(path, sizeof path, "%s/%s", d->dir, file);
    int rc = mk_keypair_save(kp, path, NULL);
    return rc == MK_EEXIST ? 0 : rc;
}

static int spawn_members(demo *d)
{
    char cfg[PATH_MAX + 32], key[PATH_MAX + 32], data[PATH_MAX + 32],
        seed[64], boot[160];
    snprintf(cfg, sizeof cfg, "%s/coalition.json", d->dir);
    for (int i = 0; i < N_MEMBERS; i++) {
        child *c = &d->kids[i];
        snprintf(c->name, sizeof c->name, "member%d", i);
        snprintf(seed, sizeof seed, "coalition.demo/member/%d", i);
        snprintf(key, sizeof key, "member%d.key", i);
        int rc = seeded_key(d, seed, key, &d->member_keys[i]);
        if (rc < 0)
            return rc;
        snprintf(key, sizeof key, "%s/member%d.key", d->dir, i);
        snprintf(data, sizeof data, "%s/member%d", d->dir, i);
        /* Every member serves its dashboard on loopback; any one shows
         * the whole coalition, so one URL is printed. */
        char *args[16] = {"--listen", "127.0.0.1:0", "--key", key, "--data",
                          data, "--coalition", cfg, "--quiet", "--http",
                          "127.0.0.1:0", NULL};
        /* Members bootstrap off member0 once it prints its address; the
         * first starts alone. */
        if (i > 0) {
            snprintf(boot, sizeof boot, "%s@%s", d->kids[0].peer_id,
                     d->kids[0].listen);
            args[11] = "--bootstrap";
            args[12] = boot;
            args[13] = NULL;
        }
        if ((rc = spawn(d, c, "coalitiond", args)) < 0)
            return rc;
        if (i == 0) {
            /* Wait for member0's address before the others start. */
            while (!c->ready && !c->exited)
                uv_run(&d->loop, UV_RUN_ONCE);
            if (!c->ready)
                return MK_EIO;
            if (c->http[0] && !d->json) {
                printf("demo: dashboard at http://%s/\n", c->http);
                fflush(stdout);
            }
        }
    }
    return 0;
}

static void spawn_feeds(demo *d)
{
    char key[PATH_MAX + 32], seed[64], boot[160];
    snprintf(boot, sizeof boot, "%s@%s", d->kids[0].peer_id,
             d->kids[0].listen);
    for (int i = 0; i < N_FEEDS; i++) {
        child *c = &d->kids[N_MEMBERS + i];
        mk_keypair kp;
        snprintf(c->name, sizeof c->name, "%s", FEEDS[i]);
        snprintf(seed, sizeof seed, "coalition.demo/%s", FEEDS[i]);
        snprintf(key, sizeof key, "%s.key", FEEDS[i]);
        if (seeded_key(d, seed, key, &kp) < 0)
            continue;
        snprintf(key, sizeof key, "%s/%s.key", d->dir, FEEDS[i]);
        char *args[] = {"--listen", "127.0.0.1:0", "--key", key,
                        "--instance", (char *)FEEDS[i], "--pair",
                        (char *)PAIRS[i], "--start", (char *)STARTS[i],
                        "--bootstrap", boot, NULL};
        if (spawn(d, c, "examples/price-feed", args) == MK_ENOENT &&
            !d->json)
            fprintf(stderr, "demo: examples/price-feed not built; the feeds "
                            "are skipped\n");
    }
}

/* ---- the integrator -------------------------------------------------------- */

static void on_atlas(co_atlas_reader *r, int status, void *data)
{
    ((demo *)data)->atlas_status = status;
}

static void start_rotation(demo *d);

static void on_tick(co_almanac_reader *r, int status, const co_almanac_tick *t,
                    uint64_t missed, void *data)
{
    demo *d = data;
    d->almanac_status = status;
    if (status < 0 || !t || t->seq == d->last_seq)
        return;
    if (d->first_seq == 0)
        d->first_seq = t->seq;
    else if (t->seq != d->last_seq + 1)
        d->gaps++;
    d->last_seq = t->seq;
    d->ticks++;
    if (d->rotated)
        d->ticks_after++;
    /* A rotation before the committee ticks would show nothing going on. */
    if (d->ticks == 2 && !d->rotation && !d->stopping)
        start_rotation(d);
}

static void on_chronicle(co_chronicle_reader *r, int status, void *data)
{
    ((demo *)data)->chronicle_status = status;
}

static void on_published(int status, void *data)
{
    demo *d = data;
    if (status == 0)
        d->published++;
    else
        d->publish_failed++;
}

static void on_fx(co_confluence_reader *r, int status, void *data)
{
    ((demo *)data)->fx_status = status;
}

static int on_feed(mk_consumer *c, const mk_datum *dt, void *data)
{
    demo *d = data;
    co_price_update u;
    for (int i = 0; i < N_FEEDS; i++)
        if (d->feeds[i] == c) {
            d->feed_items[i]++;
            if (co_price_update_decode(&u, dt->bytes, dt->len) == 0)
                snprintf(d->feed_last[i], sizeof d->feed_last[i],
                         "%s %.5f", u.pair, (double)u.price_micro / 1e6);
        }
    return 0;
}

static void publish_cards(demo *d)
{
    char err[CO_ERRMSG_SIZE];
    for (int i = 0; i < N_FEEDS; i++) {
        const co_organism_ref *o = DEMO_COALITION.organisms[i];
        const char *hint = d->kids[N_MEMBERS + i].ready
                               ? d->kids[N_MEMBERS + i].listen
                               : NULL;
        co_citizen_card card = {
            .role = o->role,
            .endpoint_hints = hint ? &hint : NULL,
            .n_endpoint_hints = hint ? 1 : 0,
            .schema_version = CO_CARD_SCHEMA_VERSION,
        };
        co_organism_stable_id(o, &card.citizen_id, NULL);
        co_tickets_root(&DEMO_COALITION, &card.ticket_issuance_root, NULL);
        /* Any committee member may publish; member0's operator does. */
        if (co_atlas_publish(d->node, &DEMO_COALITION, &card,
                             &d->member_keys[0], 15000, on_published, d,
                             err) < 0)
            d->publish_failed++;
    }
}

typedef struct leader_ask {
    demo *d;
    int module;
} leader_ask;

static void on_leader(int status, const mk_member_status *st, void *data)
{
    leader_ask *a = data;
    if (st && st->st.has_leader)
        mk_id_hex(&st->st.leader, a->d->leaders[a->module]);
    free(a);
}

static void ask_leaders(demo *d)
{
    mk_peer_id member;
    mk_id_from_hex(&member, d->kids[0].peer_id, 64);
    for (int m = 0; m < 3; m++) {
        if (!d->status_client[m])
            continue;
        leader_ask *a = malloc(sizeof *a);
        if (!a)
            return;
        *a = (leader_ask){d, m};
        if (mk_group_client_status(d->status_client[m], &member, false, 2000,
                                   on_leader, a) < 0)
            free(a);
    }
}

/* "member2 (1a49a509…)" for a member's PeerId. */
static const char *member_name(demo *d, const mk_peer_id *p, char *buf,
                               size_t len)
{
    char hex[MK_ID_HEX_LEN + 1];
    mk_id_hex(p, hex);
    for (int i = 0; i < N_MEMBERS; i++)
        if (mk_id_eq(&d->member_keys[i].pub, p)) {
            snprintf(buf, len, "member%d (%.8s…)", i, hex);
            return buf;
        }
    snprintf(buf, len, "%.8s…", hex);
    return buf;
}

static void on_rotated(void *data)
{
    demo *d = data;
    d->rotated = true;
    d->rotated_ms = mk_mono_ms() - d->started_ms;
    d->rotated_seq = d->last_seq;
    if (d->json)
        return;
    demo_rotation_result r;
    char out[64], in[64];
    demo_rotation_get(d->rotation, &r);
    printf("[%5.1fs] rotation: the Almanac's voter %s is now a standby and "
           "its standby %s a voter (operator requests signed by member0, "
           "%d sent, %lld ms); ticks go on from seq %llu\n",
           (double)d->rotated_ms / 1000.0,
           member_name(d, &r.out, out, sizeof out),
           member_name(d, &r.in, in, sizeof in), r.attempts,
           (long long)r.took_ms, (unsigned long long)d->rotated_seq);
    fflush(stdout);
}

static void start_rotation(demo *d)
{
    char err[CO_ERRMSG_SIZE];
    int64_t at = d->run_ms > 0 ? d->run_ms / 2 : ROTATE_AFTER_MS;
    int64_t now = mk_mono_ms() - d->started_ms;
    mk_peer_id ask;
    mk_id_from_hex(&ask, d->kids[0].peer_id, 64);
    if (demo_rotation_start(d->node, &DEMO_COALITION, CO_MODULE_ALMANAC,
                            &d->member_keys[0], &ask,
                            (uint64_t)(at > now ? at - now : 0), on_rotated,
                            d, &d->rotation, err) < 0) {
        d->no_rotation = true;
        if (!d->json)
            fprintf(stderr, "demo: no rotation: %s\n", err);
    }
}

static void start_integrator(demo *d)
{
    for (int i = 0; i < N_MEMBERS; i++)
        if (!d->kids[i].ready)
            return;
    if (d->integrator_started)
        return;
    d->integrator_started = true;
    spawn_feeds(d);

    char err[CO_ERRMSG_SIZE], boot[160];
    const char *boots[1] = {boot};
    snprintf(boot, sizeof boot, "%s@%s", d->kids[0].peer_id,
             d->kids[0].listen);
    mk_keypair_generate(&d->me);
    mk_node_config nc = {.loop = &d->loop, .key = &d->me, .bootstrap = boots,
                         .n_bootstrap = 1};
    if (mk_node_new(&nc, &d->node, err) < 0) {
        fprintf(stderr, "demo: %s\n", err);
        return;
    }
    mk_node_start(d->node);
    co_atlas_read(d->node, &DEMO_COALITION, 20000, on_atlas, d, &d->atlas,
                  err);
    co_almanac_ticks(d->node, &DEMO_COALITION, 20000, on_tick, d, &d->almanac,
                     err);
    co_chronicle_read(d->node, &DEMO_COALITION, 20000, on_chronicle, d,
                      &d->chronicle, err);
    /* The confluence is read from its own config: it belongs to no
     * coalition (SPEC §5), the demo's merely references it. */
    if (co_fx_correlator_define(&DEMO_FX_CORRELATOR, &d->fx_def, err) == 0)
        co_confluence_read(d->node, &d->fx_def, 20000, on_fx, d, &d->fx,
                           err);
    if (mk_streams_new(d->node, &d->streams) == 0)
        for (int i = 0; i < N_FEEDS; i++) {
            mk_id stable;
            co_organism_stable_id(DEMO_COALITION.organisms[i], &stable, NULL);
            mk_consumer_config cc = {.on_datum = on_feed, .data = d};
            mk_stream_id(&stable, "prices", &cc.stream);
            mk_consumer_open(d->streams, &cc, &d->feeds[i], NULL);
        }
    for (int m = 0; m < 3; m++) {
        co_module_info info;
        mk_id gid;
        if (co_module_committee_group(&DEMO_COALITION, (co_module_kind)m,
                                      &info, &gid, NULL) == 0)
            mk_group_client_open(d->node, &gid, &d->status_client[m]);
    }
    publish_cards(d);
    /* Two Compute providers and one workload (demo_compute.h). */
    if (demo_compute_start(&d->loop, d->bin_dir, d->dir, &DEMO_COALITION,
                           boot, 60000, NULL, NULL, &d->compute) < 0 &&
        !d->json)
        fprintf(stderr, "demo: cannot start the Compute providers\n");
}

/* ---- the live summary ----------------------------------------------------- */

typedef struct chron_state {
    size_t entries;
    bool verified;
    uint64_t signed_head;
} chron_state;

static chron_state chronicle_state(demo *d)
{
    chron_state c = {0};
    if (d->chronicle && d->chronicle_status == 0) {
        co_chronicle_check chk;
        c.entries = co_chronicle_count(d->chronicle);
        co_chronicle_verify(d->chronicle, &chk);
        /* A majority-signed head vouches for 1..signed_head; later
         * entries are still collecting their signatures. */
        c.verified = chk.ok;
        c.signed_head = chk.signed_head;
    }
    return c;
}

static size_t verified_cards(demo *d)
{
    return d->atlas && d->atlas_status == 0
               ? co_atlas_verified_count(d->atlas)
               : 0;
}

/* The confluence's latest spread, when it has committed one. */
static bool last_spread(demo *d, uint64_t *count, co_fx_spread *sp,
                        bool *partial)
{
    const co_confluence_commit *c;
    *count = d->fx && d->fx_status == 0 ? co_confluence_count(d->fx) : 0;
    for (uint64_t i = *count; i > 0 && i + 16 > *count; i--)
        if (co_confluence_get(d->fx, i, &c) == 0 &&
            c->kind == CO_COMMIT_FACT &&
            co_fx_spread_decode(sp, c->body, c->body_len) == 0) {
            *partial = c->partial;
            return true;
        }
    return false;
}

/* Once, when the Chronicle's verified head holds both changes. */
static void show_recorded(demo *d, double t)
{
    demo_rotation_result r;
    if (!d->rotation || d->rotation_shown)
        return;
    demo_rotation_get(d->rotation, &r);
    if (!r.recorded)
        return;
    d->rotation_shown = true;
    printf("[%5.1fs] chronicle: the rotation is recorded, verified "
           "(%zu committee.change entr%s for the Almanac; `coalition "
           "chronicle log` prints them)\n",
           t, r.changes, r.changes == 1 ? "y" : "ies");
}

static void print_summary(demo *d)
{
    chron_state c = chronicle_state(d);
    double t = (double)(mk_mono_ms() - d->started_ms) / 1000.0;
    printf("[%5.1fs] atlas %zu/%d cards verified | almanac seq %llu "
           "(%llu gaps) | chronicle %zu entr%s%s",
           t, verified_cards(d), N_FEEDS, (unsigned long long)d->last_seq,
           (unsigned long long)d->gaps, c.entries,
           c.entries == 1 ? "y" : "ies", c.verified ? ", verified" : "");
    if (c.verified && c.signed_head < c.entries)
        printf(" 1..%llu", (unsigned long long)c.signed_head);
    printf("\n");
    show_recorded(d, t);
    printf("         feeds %s (%llu) %s (%llu)",
           d->feed_last[0][0] ? d->feed_last[0] : "-",
           (unsigned long long)d->feed_items[0],
           d->feed_last[1][0] ? d->feed_last[1] : "-",
           (unsigned long long)d->feed_items[1]);
    uint64_t n;
    co_fx_spread sp;
    bool partial;
    if (last_spread(d, &n, &sp, &partial) && sp.has_spread)
        printf(" | fx-correlator %llu commits, tick %llu spread %+.5f%s",
               (unsigned long long)n, (unsigned long long)sp.tick,
               (double)sp.spread_micro / 1e6, partial ? " (partial)" : "");
    else
        printf(" | fx-correlator %llu commits", (unsigned long long)n);
    printf("\n");
    fflush(stdout);
}

static void on_summary(uv_timer_t *t)
{
    demo *d = t->data;
    ask_leaders(d);
    if (d->rotation)
        demo_rotation_check(d->rotation, d->chronicle_status == 0
                                             ? d->chronicle
                                             : NULL);
    if (!d->json && d->integrator_started)
        print_summary(d);
}

static void print_json(demo *d)
{
    char hex[MK_ID_HEX_LEN + 1];
    mk_id id;
    co_coalition_id(&DEMO_COALITION, &id, NULL);
    chron_state c = chronicle_state(d);
    json_t *o = json_object(), *alm = json_object(), *chr = json_object(),
           *lead = json_object(), *feeds = json_object();
    json_object_set_new(o, "coalition_id", json_string(mk_id_hex(&id, hex)));
    json_object_set_new(o, "cards", json_integer((json_int_t)verified_cards(d)));
    json_object_set_new(alm, "first_seq", json_integer((json_int_t)d->first_seq));
    json_object_set_new(alm, "last_seq", json_integer((json_int_t)d->last_seq));
    json_object_set_new(alm, "gaps", json_integer((json_int_t)d->gaps));
    json_object_set_new(o, "almanac", alm);
    json_object_set_new(chr, "entries", json_integer((json_int_t)c.entries));
    json_object_set_new(chr, "verified", json_boolean(c.verified));
    demo_rotation_result rr = {0};
    if (d->rotation)
        demo_rotation_get(d->rotation, &rr);
    json_object_set_new(chr, "committee_changes",
                        json_integer((json_int_t)rr.changes));
    json_object_set_new(o, "chronicle", chr);
    json_t *rot = json_object();
    json_object_set_new(rot, "module", json_string("almanac"));
    json_object_set_new(rot, "done", json_boolean(rr.done));
    json_object_set_new(rot, "out",
                        rr.done ? json_string(mk_id_hex(&rr.out, hex))
                                : json_null());
    json_object_set_new(rot, "in",
                        rr.done ? json_string(mk_id_hex(&rr.in, hex))
                                : json_null());
    json_object_set_new(rot, "at_ms",
                        rr.done ? json_integer((json_int_t)d->rotated_ms)
                                : json_null());
    json_object_set_new(rot, "seq_at",
                        json_integer((json_int_t)d->rotated_seq));
    json_object_set_new(rot, "ticks_after",
                        json_integer((json_int_t)d->ticks_after));
    json_object_set_new(rot, "attempts", json_integer(rr.attempts));
    json_object_set_new(rot, "chronicle_recorded", json_boolean(rr.recorded));
    if (rr.reason[0] && !rr.done)
        json_object_set_new(rot, "reason", json_string(rr.reason));
    json_object_set_new(o, "rotation", rot);
    for (int m = 0; m < 3; m++)
        json_object_set_new(lead, MODULES[m],
                            d->leaders[m][0] ? json_string(d->leaders[m])
                                             : json_null());
    json_object_set_new(o, "leaders", lead);
    if (d->kids[0].http[0]) {
        char url[96];
        snprintf(url, sizeof url, "http://%s/", d->kids[0].http);
        json_object_set_new(o, "dashboard", json_string(url));
    }
    for (int i = 0; i < N_FEEDS; i++)
        json_object_set_new(feeds, FEEDS[i],
                            json_integer((json_int_t)d->feed_items[i]));
    json_object_set_new(o, "feeds", feeds);
    uint64_t n_fx;
    co_fx_spread sp;
    bool partial = false;
    bool has = last_spread(d, &n_fx, &sp, &partial);
    json_t *fx = json_object();
    json_object_set_new(fx, "commits", json_integer((json_int_t)n_fx));
    json_object_set_new(fx, "last_tick",
                        has ? json_integer((json_int_t)sp.tick) : json_null());
    json_object_set_new(fx, "partial", json_boolean(has && partial));
    json_object_set_new(o, "fx_correlator", fx);
    demo_compute_result cr = {.exit = -1};
    if (d->compute)
        demo_compute_get(d->compute, &cr);
    json_t *cmp = json_object();
    json_object_set_new(cmp, "providers", json_integer(cr.providers));
    json_object_set_new(cmp, "granted", json_boolean(cr.granted));
    json_object_set_new(cmp, "exit",
                        cr.done && cr.exit >= 0 ? json_integer(cr.exit)
                                                : json_null());
    json_object_set_new(cmp, "verified_log", json_boolean(cr.verified_log));
    json_object_set_new(cmp, "output", json_string(cr.output));
    if (cr.reason[0])
        json_object_set_new(cmp, "reason", json_string(cr.reason));
    json_object_set_new(o, "compute", cmp);
    char *text = json_dumps(o, JSON_INDENT(2));
    puts(text ? text : "{}");
    free(text);
    json_decref(o);
}

/* ---- stopping -------------------------------------------------------------- */

static void on_kill_timer(uv_timer_t *t)
{
    demo *d = t->data;
    /* Children that did not leave after SIGTERM: no process left behind. */
    for (int i = 0; i < N_CHILDREN; i++)
        if (d->kids[i].started && !d->kids[i].exited)
            uv_process_kill(&d->kids[i].proc, SIGKILL);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_node_closed(void *data)
{
    demo *d = data;
    d->node = NULL;
    for (int i = 0; i < N_CHILDREN; i++)
        if (d->kids[i].started && !d->kids[i].exited)
            uv_process_kill(&d->kids[i].proc, SIGTERM);
    uv_timer_start(&d->kill_timer, on_kill_timer, 5000, 0);
}

/* Consumers close asynchronously; the node departs after the last. */
static void on_feed_closed(void *data)
{
    demo *d = data;
    if (--d->feeds_closing != 0)
        return;
    /* The consumers were its last users: the service, then the node. */
    if (d->streams)
        mk_streams_close(d->streams, NULL, NULL);
    d->streams = NULL;
    mk_node_close(d->node, on_node_closed, d);
}

/* The rotation is in the Chronicle's verified head and the committee
 * ticked twice since. */
static bool rotation_settled(demo *d)
{
    demo_rotation_result r;
    if (!d->rotation)
        return d->no_rotation;
    demo_rotation_check(d->rotation,
                        d->chronicle_status == 0 ? d->chronicle : NULL);
    demo_rotation_get(d->rotation, &r);
    return r.recorded && d->ticks_after >= 2;
}

static void stop(demo *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    uv_timer_stop(&d->summary);
    uv_timer_stop(&d->stop_timer);
    d->final_cards = verified_cards(d);
    if (d->compute) {
        demo_compute_result cr;
        demo_compute_get(d->compute, &cr);
        d->compute_ok = cr.verified_log && cr.exit == 0;
        if (!d->json)
            printf("compute: %d providers, %s, exit %d, log %s%s%s\n",
                   cr.providers, cr.granted ? "granted" : "not granted",
                   cr.exit, cr.verified_log ? "verified" : "not verified",
                   cr.output[0] ? " — " : "", cr.output);
    }
    d->rotation_ok = d->rotation && rotation_settled(d);
    if (d->json)
        print_json(d);
    else if (d->integrator_started)
        print_summary(d);
    /* The providers depart while the committee still runs. */
    if (d->compute)
        demo_compute_stop(d->compute, NULL, NULL);
    d->compute = NULL;
    close_handle((uv_handle_t *)&d->summary);
    close_handle((uv_handle_t *)&d->stop_timer);
    close_handle((uv_handle_t *)&d->sigint);
    close_handle((uv_handle_t *)&d->sigterm);
    if (!d->node) {
        on_node_closed(d);
        return;
    }
    /* The readers are gone after this: nothing may read them again. */
    if (d->atlas)
        co_atlas_close(d->atlas, NULL, NULL);
    if (d->almanac)
        co_almanac_close(d->almanac, NULL, NULL);
    if (d->chronicle)
        co_chronicle_close(d->chronicle, NULL, NULL);
    if (d->fx)
        co_confluence_close(d->fx, NULL, NULL);
    d->atlas = NULL;
    d->almanac = NULL;
    d->chronicle = NULL;
    d->fx = NULL;
    for (int m = 0; m < 3; m++)
        if (d->status_client[m])
            mk_group_client_close(d->status_client[m], NULL, NULL);
    if (d->rotation)
        demo_rotation_close(d->rotation);
    d->rotation = NULL;
    d->feeds_closing = 1;
    for (int i = 0; i < N_FEEDS; i++)
        if (d->feeds[i]) {
            d->feeds_closing++;
            mk_consumer_close(d->feeds[i], on_feed_closed, d);
            d->feeds[i] = NULL;
        }
    on_feed_closed(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    demo *d = s->data;
    if (!d->json)
        printf("\n%s: stopping the coalition…\n",
               signum == SIGINT ? "Ctrl-C" : "SIGTERM");
    stop(d);
}

static void on_stop_timer(uv_timer_t *t)
{
    demo *d = t->data;
    /* --for ends the run unless the rotation is still under way, and
     * then at most ROTATION_GRACE_MS later. */
    if (!rotation_settled(d) && mk_mono_ms() < d->stop_deadline_ms) {
        uv_timer_start(&d->stop_timer, on_stop_timer, 250, 0);
        return;
    }
    stop(d);
}

static int rmtree_cb(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw);

static void walk_open(uv_handle_t *h, void *arg)
{
    fprintf(stderr, "demo: handle still open: %s\n",
            uv_handle_type_name(uv_handle_get_type(h)));
}

/* ---- main ------------------------------------------------------------------- */

static int write_coalition(demo *d)
{
    char path[PATH_MAX + 32], err[CO_ERRMSG_SIZE];
    snprintf(path, sizeof path, "%s/coalition.json", d->dir);
    if (co_config_save(&DEMO_COALITION, path, err) < 0) {
        fprintf(stderr, "demo: %s\n", err);
        return -1;
    }
    return 0;
}

static void find_bin_dir(demo *d)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(d->bin_dir, sizeof d->bin_dir, "build");
        return;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(d->bin_dir, sizeof d->bin_dir, "%s", self);
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"for", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    demo *d = calloc(1, sizeof *d);
    if (!d)
        return cli_error(CLI_FAIL, "out of memory");
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "f:jd:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': {
            const char *why;
            if (util_parse_duration_ms(optarg, &d->run_ms, &why) != 0) {
                free(d);
                return cli_error(CLI_USAGE, "--for: '%s': %s", optarg, why);
            }
            break;
        }
        case 'j': d->json = true; break;
        case 'd':
            snprintf(d->dir, sizeof d->dir, "%s", optarg);
            d->keep_dir = true;
            break;
        case 'h': usage(stdout); free(d); return CLI_OK;
        default: usage(stderr); free(d); return CLI_USAGE;
        }
    }
    if (optind != argc) {
        free(d);
        return cli_error(CLI_USAGE, "unexpected argument '%s'", argv[optind]);
    }
    if (d->keep_dir) {
        if (mkdir(d->dir, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            free(d);
            return cli_error(CLI_USAGE, "--dir: %s", strerror(e));
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(d->dir, sizeof d->dir, "%s/coalition-demo-XXXXXX",
                 tmp ? tmp : "/tmp");
        if (!mkdtemp(d->dir)) {
            free(d);
            return cli_error(CLI_FAIL, "cannot create a temporary directory");
        }
    }
    find_bin_dir(d);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&d->loop);
    uv_timer_init(&d->loop, &d->summary);
    uv_timer_init(&d->loop, &d->stop_timer);
    uv_timer_init(&d->loop, &d->kill_timer);
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_init(&d->loop, &d->sigterm);
    d->summary.data = d->stop_timer.data = d->kill_timer.data = d;
    d->sigint.data = d->sigterm.data = d;
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    d->started_ms = mk_mono_ms();

    char hex[MK_ID_HEX_LEN + 1];
    mk_id id;
    co_coalition_id(&DEMO_COALITION, &id, NULL);
    if (!d->json)
        printf("coalition demo.euro-fx  %s\n"
               "  committee: 3 members (Atlas, Almanac every 500 ms, "
               "Chronicle, Compute) and an Almanac standby; citizens: "
               "price-feed.eur, price-feed.usd; 2 compute providers\n"
               "  working in %s (logs: <process>.log)\n\n",
               mk_id_hex(&id, hex), d->dir);
    fflush(stdout);

    int rc = write_coalition(d);
    if (rc == 0 && (rc = spawn_members(d)) < 0)
        fprintf(stderr, "demo: cannot start the committee: %s\n",
                mk_strerror(rc));
    if (rc < 0) {
        d->exit_code = CLI_FAIL;
        stop(d);
    } else {
        uv_timer_start(&d->summary, on_summary, 1000, 1000);
        if (d->run_ms > 0) {
            d->stop_deadline_ms =
                mk_mono_ms() + d->run_ms + ROTATION_GRACE_MS;
            uv_timer_start(&d->stop_timer, on_stop_timer,
                           (uint64_t)d->run_ms, 0);
        }
    }
    /* Runs until every child has exited and every handle is closed. */
    while (uv_run(&d->loop, UV_RUN_DEFAULT) != 0 || d->live_kids > 0)
        ;
    close_handle((uv_handle_t *)&d->kill_timer);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d->loop) != 0)
        uv_walk(&d->loop, walk_open, NULL);
    if (!d->keep_dir)
        nftw(d->dir, rmtree_cb, 16, FTW_DEPTH | FTW_PHYS);
    int code = d->exit_code;
    if (code == 0 && d->run_ms > 0 &&
        (d->final_cards < N_FEEDS || d->gaps || d->ticks == 0 ||
         !d->compute_ok || !d->rotation_ok))
        code = CLI_FAIL;
    free(d);
    return code;
}

static int rmtree_cb(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}
