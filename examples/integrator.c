/* An integrator: a program that relies on a coalition's services without
 * being part of it, using nothing but the public headers and the
 * coalition compiled in as a `static const` (examples/demo_coalition.h).
 *
 * Given one bootstrap peer it joins the network with a throwaway key and,
 * from the config alone (no registry, no lookup), binds to the
 * coalition's modules:
 *   - Atlas: reads every citizen card and counts the ones a majority of
 *     the Atlas committee signed;
 *   - Almanac: follows the ticks for --follow seconds and reports the
 *     first and last seq seen and any gap (a seq that is not the last
 *     one plus one, or ticks the reader says it missed);
 *   - Chronicle: verifies the whole hash chain and its signatures;
 * then prints one JSON object on stdout.
 *
 *   integrator --bootstrap PEERID@HOST:PORT [--follow S] [--timeout S]
 *              [--reorder]
 *
 * --reorder swaps the coalition's first two citizens before binding:
 * the config then derives another COALITION_ROOT, so every module handle
 * finds nobody and reports ConnectTimeout, which is what a typo in a
 * published config looks like from the outside (SPEC §2).
 *
 * Exit status: 0 every module answered and every check held; 1 a check
 * failed (a gap, a chronicle that does not verify) or a module retired;
 * 2 bad usage; 3 a module never answered (ConnectTimeout).
 *
 * Built twice: as examples/integrator against the demo coalition, and by
 * the tests against their own coalition (INTEGRATOR_HEADER names a header
 * that defines INTEGRATOR_COALITION).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "coalition/almanac.h"
#include "coalition/atlas.h"
#include "coalition/chronicle.h"
#include "coalition/identity.h"
#include "mosaik/node.h"

#ifdef INTEGRATOR_HEADER
#include INTEGRATOR_HEADER
#else
#include "demo_coalition.h"
#define INTEGRATOR_COALITION DEMO_COALITION
#endif

#define MAX_CITIZENS 64

/* What each module's handle said last. */
typedef enum { PENDING, READY, TIMED_OUT, RETIRED } module_state;

typedef struct app {
    uv_loop_t loop;
    mk_node *node;
    uv_timer_t timer;
    uv_signal_t sigint;
    uint64_t started, follow_ms, timeout_ms;
    uint64_t follow_from; /* loop time of the first tick; 0 before */
    bool stop;

    co_atlas_reader *atlas;
    co_almanac_reader *almanac;
    co_chronicle_reader *chronicle;
    module_state st_atlas, st_almanac, st_chronicle;

    /* Almanac record. */
    uint64_t first_seq, last_seq, ticks, gaps, missed;
    int64_t first_ms, last_ms; /* leader stamps of first and last tick */
} app;

static void print_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_id(const mk_id *id)
{
    char hex[MK_ID_HEX_LEN + 1];
    printf("\"%s\"", mk_id_hex(id, hex));
}

static bool settled(const app *a)
{
    return a->st_atlas != PENDING && a->st_almanac != PENDING &&
           a->st_chronicle != PENDING;
}

/* ---- module callbacks -------------------------------------------------- */

/* An answer (0) makes a module ready, a retirement is final, and a
 * timeout only counts while nothing answered: the handles keep looking
 * after their deadline, and a late answer wins. */
static void update(module_state *st, int status)
{
    if (status == CO_ERETIRED)
        *st = RETIRED;
    else if (status == 0 && *st != RETIRED)
        *st = READY;
    else if (status < 0 && *st == PENDING)
        *st = TIMED_OUT;
}

static void on_atlas(co_atlas_reader *r, int status, void *data)
{
    update(&((app *)data)->st_atlas, status);
}

static void on_chronicle(co_chronicle_reader *r, int status, void *data)
{
    update(&((app *)data)->st_chronicle, status);
}

static void on_tick(co_almanac_reader *r, int status, const co_almanac_tick *t,
                    uint64_t missed, void *data)
{
    app *a = data;
    update(&a->st_almanac, status);
    if (status < 0)
        return;
    if (t->seq == a->last_seq)
        return; /* more stamps on a tick already counted */
    if (!a->follow_from)
        a->follow_from = uv_now(&a->loop);
    if (a->last_seq && t->seq != a->last_seq + 1)
        a->gaps++;
    a->missed += missed;
    if (!a->first_seq) {
        a->first_seq = t->seq;
        a->first_ms = t->stamps[0].unix_ms;
    }
    a->last_seq = t->seq;
    a->last_ms = t->stamps[0].unix_ms;
    a->ticks++;
}

static void on_timer(uv_timer_t *t)
{
    app *a = t->data;
    uint64_t now = uv_now(&a->loop);
    bool followed = a->st_almanac != READY ||
                    (a->follow_from && now - a->follow_from >= a->follow_ms);
    /* Stop when every module answered (or gave up) and the clock was
     * followed long enough, or when nothing more can be expected. */
    if ((settled(a) && followed) ||
        now - a->started >= a->timeout_ms + a->follow_ms || a->stop)
        uv_stop(&a->loop);
}

static void on_sigint(uv_signal_t *s, int sig)
{
    ((app *)s->data)->stop = true;
}

/* ---- the report -------------------------------------------------------- */

static const char *state_name(module_state s)
{
    switch (s) {
    case READY: return "ok";
    case TIMED_OUT: return "timeout";
    case RETIRED: return "retired";
    default: return "pending";
    }
}

static int state_code(module_state s)
{
    return s == READY       ? 0
           : s == RETIRED   ? CO_ERETIRED
                            : MK_ECONNECT_TIMEOUT;
}

static void print_retirement(const co_retirement *ret)
{
    printf(",\"reason\":");
    print_str(ret->reason);
    printf(",\"successor\":");
    if (ret->has_successor)
        print_id(&ret->successor);
    else
        printf("null");
}

typedef struct card_walk {
    size_t n;
} card_walk;

static bool print_card(const co_card *card, bool verified, void *data)
{
    card_walk *w = data;
    printf("%s{\"citizen_id\":", w->n++ ? "," : "");
    print_id(&card->card.citizen_id);
    printf(",\"role\":");
    print_str(card->card.role);
    printf(",\"verified\":%s}", verified ? "true" : "false");
    return true;
}

/* Prints the report; returns the exit status. */
static int report(app *a, const mk_id *coalition_id, uint64_t cadence)
{
    int exit = 0;
    co_retirement ret;
    printf("{\"coalition_id\":");
    print_id(coalition_id);

    printf(",\"atlas\":{\"status\":\"%s\",\"code\":\"%s\"",
           state_name(a->st_atlas), co_err_name(state_code(a->st_atlas)));
    if (a->st_atlas == READY || a->st_atlas == RETIRED) {
        card_walk w = {0};
        printf(",\"cards\":%zu,\"verified\":%zu,\"list\":[",
               co_atlas_count(a->atlas), co_atlas_verified_count(a->atlas));
        co_atlas_foreach(a->atlas, print_card, &w);
        printf("]");
    }
    co_atlas_retirement(a->atlas, &ret);
    if (ret.retired)
        print_retirement(&ret);
    printf("}");

    printf(",\"almanac\":{\"status\":\"%s\",\"code\":\"%s\","
           "\"cadence_ms\":%llu,\"ticks\":%llu,\"first_seq\":%llu,"
           "\"last_seq\":%llu,\"gaps\":%llu,\"missed\":%llu,"
           "\"span_ms\":%lld",
           state_name(a->st_almanac), co_err_name(state_code(a->st_almanac)),
           (unsigned long long)cadence, (unsigned long long)a->ticks,
           (unsigned long long)a->first_seq, (unsigned long long)a->last_seq,
           (unsigned long long)a->gaps, (unsigned long long)a->missed,
           (long long)(a->last_ms - a->first_ms));
    co_almanac_retirement(a->almanac, &ret);
    if (ret.retired)
        print_retirement(&ret);
    printf("}");

    printf(",\"chronicle\":{\"status\":\"%s\",\"code\":\"%s\"",
           state_name(a->st_chronicle),
           co_err_name(state_code(a->st_chronicle)));
    bool chain_ok = true;
    if (a->st_chronicle == READY || a->st_chronicle == RETIRED) {
        co_chronicle_check c;
        co_chronicle_verify(a->chronicle, &c);
        chain_ok = c.ok;
        printf(",\"entries\":%llu,\"signed_head\":%llu,\"verified\":%s,"
               "\"first_bad\":%llu,\"why\":",
               (unsigned long long)c.entries,
               (unsigned long long)c.signed_head, c.ok ? "true" : "false",
               (unsigned long long)c.first_bad);
        print_str(c.why);
    }
    co_chronicle_retirement(a->chronicle, &ret);
    if (ret.retired)
        print_retirement(&ret);
    printf("}}\n");
    fflush(stdout);

    module_state all[] = {a->st_atlas, a->st_almanac, a->st_chronicle};
    for (size_t i = 0; i < 3; i++) {
        if (all[i] == TIMED_OUT || all[i] == PENDING)
            exit = 3;
        else if (all[i] == RETIRED && exit == 0)
            exit = 1;
    }
    if (exit == 0 && (!chain_ok || a->gaps || a->missed))
        exit = 1;
    return exit;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out, "usage: integrator --bootstrap PEERID@HOST:PORT "
                 "[--follow SECONDS] [--timeout SECONDS] [--reorder]\n");
}

static int seconds(const char *s, uint64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < 0 || v > 86400)
        return -1;
    *ms = (uint64_t)(v * 1000);
    return 0;
}

static void on_closed(void *data)
{
    (void)data;
}

int main(int argc, char **argv)
{
    const char *boot = NULL;
    uint64_t follow_ms = 5000, timeout_ms = 10000;
    bool reorder = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bootstrap") == 0 && i + 1 < argc)
            boot = argv[++i];
        else if (strcmp(argv[i], "--follow") == 0 && i + 1 < argc &&
                 seconds(argv[i + 1], &follow_ms) == 0)
            i++;
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc &&
                 seconds(argv[i + 1], &timeout_ms) == 0 && timeout_ms > 0)
            i++;
        else if (strcmp(argv[i], "--reorder") == 0)
            reorder = true;
        else if (strcmp(argv[i], "--help") == 0)
            return usage(stdout), 0;
        else
            return usage(stderr), 2;
    }
    if (!boot)
        return usage(stderr), 2;

    /* The coalition exactly as compiled in, or with its first two
     * citizens swapped (organisms if it has two, else lattices). */
    co_coalition_config cfg = INTEGRATOR_COALITION;
    const co_organism_ref *orgs[MAX_CITIZENS];
    const co_lattice_config *lats[MAX_CITIZENS];
    if (reorder) {
        if (cfg.n_organisms >= 2 && cfg.n_organisms <= MAX_CITIZENS) {
            memcpy(orgs, cfg.organisms, cfg.n_organisms * sizeof *orgs);
            orgs[0] = cfg.organisms[1];
            orgs[1] = cfg.organisms[0];
            cfg.organisms = orgs;
        } else if (cfg.n_lattices >= 2 && cfg.n_lattices <= MAX_CITIZENS) {
            memcpy(lats, cfg.lattices, cfg.n_lattices * sizeof *lats);
            lats[0] = cfg.lattices[1];
            lats[1] = cfg.lattices[0];
            cfg.lattices = lats;
        } else {
            fprintf(stderr, "integrator: --reorder needs two citizens of "
                            "one kind\n");
            return 2;
        }
    }
    char err[CO_ERRMSG_SIZE];
    mk_id coalition_id;
    uint64_t cadence = 0;
    if (co_coalition_id(&cfg, &coalition_id, err) < 0 ||
        co_almanac_cadence_ms(&cfg, &cadence, err) < 0) {
        fprintf(stderr, "integrator: %s\n", err);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN); /* a member hanging up must not kill us */
    app a;
    memset(&a, 0, sizeof a);
    a.follow_ms = follow_ms;
    a.timeout_ms = timeout_ms;
    mk_keypair key; /* a throwaway identity: reading needs no standing */
    if (mk_keypair_generate(&key) < 0) {
        fprintf(stderr, "integrator: no randomness for a key\n");
        return 1;
    }
    uv_loop_init(&a.loop);
    const char *boots[] = {boot};
    mk_node_config nc = {.loop = &a.loop, .key = &key, .bootstrap = boots,
                         .n_bootstrap = 1};
    if (mk_node_new(&nc, &a.node, err) < 0) {
        fprintf(stderr, "integrator: %s\n", err);
        uv_loop_close(&a.loop);
        return 2;
    }
    mk_node_start(a.node);

    uint32_t t = (uint32_t)timeout_ms;
    int rc = co_atlas_read(a.node, &cfg, t, on_atlas, &a, &a.atlas, err);
    if (rc == 0)
        rc = co_almanac_ticks(a.node, &cfg, t, on_tick, &a, &a.almanac, err);
    if (rc == 0)
        rc = co_chronicle_read(a.node, &cfg, t, on_chronicle, &a,
                               &a.chronicle, err);
    int exit = 2;
    if (rc < 0) {
        fprintf(stderr, "integrator: %s\n", rc == CO_ENOTSHIPPED
                                                ? "the coalition does not "
                                                  "ship all three modules"
                                                : err);
    } else {
        a.started = uv_now(&a.loop);
        uv_timer_init(&a.loop, &a.timer);
        a.timer.data = &a;
        uv_timer_start(&a.timer, on_timer, 50, 50);
        uv_signal_init(&a.loop, &a.sigint);
        a.sigint.data = &a;
        uv_signal_start(&a.sigint, on_sigint, SIGINT);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        exit = report(&a, &coalition_id, cadence);
        uv_close((uv_handle_t *)&a.timer, NULL);
        uv_close((uv_handle_t *)&a.sigint, NULL);
    }
    if (a.atlas)
        co_atlas_close(a.atlas, NULL, NULL);
    if (a.almanac)
        co_almanac_close(a.almanac, NULL, NULL);
    if (a.chronicle)
        co_chronicle_close(a.chronicle, NULL, NULL);
    mk_node_close(a.node, on_closed, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    return exit;
}
