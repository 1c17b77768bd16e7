/* One client of the committee benchmark (bench/committee.sh): remote
 * writes into a Map group run by three coalitiond processes.
 *
 * The client is what an application outside the committee would be: an
 * ephemeral node (fresh key, no listener) that bootstraps to a member and
 * opens a group client (include/mosaik/group_client.h) on the group, so every
 * write crosses a TLS link, is forwarded to the leader if need be, goes
 * through the exactly-once table and the Raft log, and is answered over
 * the link. It writes N Map inserts of distinct keys ("c<client>-<seq>")
 * and a value of --size bytes, keeping up to --window of them in flight,
 * and prints one JSON line: acknowledged, failed, elapsed, writes/s and
 * the p50/p99 latency of a command (submit to callback).
 *
 * The driver runs many of these at once, each its own process, so the
 * scheduler and the members see independent clients. So that they all
 * measure the same interval, a client first completes one warm-up write
 * (bootstrap, catalog, links: not what is measured), creates the --ready
 * file, and starts only once the --go file exists. The run is bounded:
 * no new write after --for seconds, and the client gives up on whatever
 * is still in flight one command timeout after that.
 *
 *   bench_committee --bootstrap P@H:P --group HEX [--n N] [--window W]
 *                   [--size B] [--client I] [--for S] [--ready F --go F]
 *
 * Figures are printed, never asserted.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/codec.h"
#include "mosaik/collections.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"
#include "mosaik/node.h"

#define MAX_BOOT 8
#define MAX_VALUE (64 * 1024)
#define CMD_TIMEOUT_MS 30000
#define WARMUP_TRIES 20 /* each up to CMD_TIMEOUT_MS */
#define GO_WAIT_S 600     /* the driver starts every cell well within this */

typedef struct opts {
    const char *boots[MAX_BOOT];
    size_t n_boots;
    const char *group, *ready, *go;
    uint64_t n, window;
    size_t size;
    unsigned client;
    double for_s;
} opts;

typedef struct bench bench;

/* One write in flight: its submit instant, for its latency. */
typedef struct write_req {
    bench *b;
    int64_t t0;
} write_req;

struct bench {
    const opts *o;
    uv_loop_t loop;
    mk_node *node;
    mk_group_client *client;
    uv_timer_t timer;
    uint8_t *value;
    mk_buf cmd;
    /* 0 warm-up, 1 waiting for go, 2 measuring, 3 draining, 4 done */
    int phase;
    int warm_tries;
    uint64_t sent, acked, failed, in_flight;
    int64_t t_start, t_end, stop_at, give_up_at, go_until;
    int64_t *lat; /* microseconds, one per acknowledged write */
    int first_error;
};

static void pump(bench *b);

static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, c = *(const int64_t *)y;
    return a < c ? -1 : a > c;
}

/* Encodes the insert of write `seq`. The key carries the client index so
 * clients running side by side never write the same key. */
static int encode(bench *b, uint64_t seq)
{
    char key[48];
    int kl = snprintf(key, sizeof key, "c%u-%" PRIu64, b->o->client, seq);
    mk_buf_reset(&b->cmd);
    return mk_map_cmd_insert(&b->cmd, key, (size_t)kl, b->value, b->o->size);
}

static void finish(bench *b)
{
    if (b->phase == 4)
        return;
    b->phase = 4;
    if (!b->t_end)
        b->t_end = mk_mono_us();
    uv_timer_stop(&b->timer);
}

static void on_write(int status, uint64_t applied, const uint8_t *r,
                     size_t len, void *data)
{
    write_req *w = data;
    bench *b = w->b;
    int64_t now = mk_mono_us();
    b->in_flight--;
    if (status == 0) {
        b->lat[b->acked++] = now - w->t0;
    } else {
        b->failed++;
        if (!b->first_error)
            b->first_error = status;
    }
    free(w);
    if (b->phase == 4)
        return; /* cancelled by the close */
    b->t_end = now;
    pump(b);
}

/* Submits while the window has room and writes are left; ends the run
 * when nothing is left in flight. */
static void pump(bench *b)
{
    const opts *o = b->o;
    bool stop = b->phase == 3 || mk_mono_us() >= b->stop_at;
    if (stop && b->phase == 2)
        b->phase = 3;
    while (!stop && b->sent < o->n && b->in_flight < o->window) {
        write_req *w = malloc(sizeof *w);
        if (!w || encode(b, b->sent) != 0) {
            free(w);
            b->failed++;
            b->sent++;
            continue;
        }
        w->b = b;
        w->t0 = mk_mono_us();
        int rc = mk_group_client_execute(b->client, b->cmd.data, b->cmd.len,
                                         CMD_TIMEOUT_MS, on_write, w);
        b->sent++;
        if (rc != 0) {
            free(w);
            b->failed++;
            if (!b->first_error)
                b->first_error = rc;
            continue;
        }
        b->in_flight++;
    }
    if (b->in_flight == 0 && (stop || b->sent == o->n))
        finish(b);
}

static void on_warm(int status, uint64_t applied, const uint8_t *r,
                    size_t len, void *data);

static int warm_up(bench *b)
{
    /* Its key is outside the measured range ("w" prefix). */
    char key[48];
    int kl = snprintf(key, sizeof key, "w%u", b->o->client);
    mk_buf_reset(&b->cmd);
    if (mk_map_cmd_insert(&b->cmd, key, (size_t)kl, b->value, b->o->size))
        return MK_ENOMEM;
    return mk_group_client_execute(b->client, b->cmd.data, b->cmd.len,
                                   CMD_TIMEOUT_MS, on_warm, b);
}

static void start_measuring(bench *b)
{
    b->phase = 2;
    b->t_start = mk_mono_us();
    b->stop_at = b->t_start + (int64_t)(b->o->for_s * 1e6);
    b->give_up_at = b->stop_at + (int64_t)CMD_TIMEOUT_MS * 1000 + 5000000;
    pump(b);
}

static void on_warm(int status, uint64_t applied, const uint8_t *r,
                    size_t len, void *data)
{
    bench *b = data;
    if (b->phase != 0)
        return;
    if (status != 0) {
        /* The members may not be in the catalog yet: try again. */
        if (++b->warm_tries >= WARMUP_TRIES || warm_up(b) != 0) {
            b->first_error = status;
            finish(b);
        }
        return;
    }
    b->phase = 1;
    b->go_until = mk_mono_us() + (int64_t)GO_WAIT_S * 1000000;
    if (b->o->ready) {
        FILE *f = fopen(b->o->ready, "w");
        if (f)
            fclose(f);
    }
    if (!b->o->go)
        start_measuring(b);
}

/* Every 2 ms: the start barrier, the stop instant (a window of 1 on a
 * slow disk may not call back for a while) and the hard deadline. */
static void on_tick(uv_timer_t *t)
{
    bench *b = t->data;
    int64_t now = mk_mono_us();
    if (b->phase == 1 && access(b->o->go, F_OK) == 0)
        start_measuring(b);
    else if (b->phase == 1 && now >= b->go_until)
        finish(b);
    else if (b->phase == 2 && now >= b->stop_at)
        pump(b);
    else if (b->phase == 3 && now >= b->give_up_at)
        finish(b);
}

static void print_result(const bench *b)
{
    double el = b->t_end > b->t_start
                    ? (double)(b->t_end - b->t_start) / 1e6
                    : 0.0;
    /* Writes still unanswered at the deadline count as failed. */
    int64_t p50 = 0, p99 = 0;
    if (b->acked) {
        qsort(b->lat, b->acked, sizeof *b->lat, cmp64);
        p50 = b->lat[b->acked / 2];
        p99 = b->lat[(b->acked * 99) / 100];
    }
    printf("{\"client\":%u,\"size\":%zu,\"window\":%" PRIu64
           ",\"acknowledged\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"not_sent\":%" PRIu64 ",\"elapsed_s\":%.6f"
           ",\"writes_per_s\":%.1f,\"p50_us\":%" PRId64 ",\"p99_us\":%" PRId64
           ",\"start_us\":%" PRId64 ",\"end_us\":%" PRId64
           ",\"error\":\"%s\"}\n",
           b->o->client, b->o->size, b->o->window, b->acked,
           b->failed + b->in_flight,
           b->o->n - b->sent, el, el > 0 ? (double)b->acked / el : 0.0, p50,
           p99, b->t_start, b->t_end,
           b->first_error ? mk_err_name(b->first_error) : "");
    fflush(stdout);
}

static int run(const opts *o)
{
    bench *b = calloc(1, sizeof *b);
    char err[MK_ERRMSG_SIZE];
    mk_id gid, net = MK_UNIVERSE;
    mk_keypair key;
    int rc = 1;
    if (!b)
        return 1;
    b->o = o;
    b->lat = calloc(o->n ? o->n : 1, sizeof *b->lat);
    b->value = malloc(o->size ? o->size : 1);
    if (!b->lat || !b->value)
        goto out_free;
    /* A recognisable, incompressible-enough pattern; its content does not
     * matter to either side. */
    for (size_t i = 0; i < o->size; i++)
        b->value[i] = (uint8_t)('a' + (i * 7 + o->client) % 26);
    mk_buf_init(&b->cmd);
    if (mk_id_from_hex(&gid, o->group, strlen(o->group)) != 0) {
        fprintf(stderr, "bench_committee: --group is not 64 hex\n");
        goto out_free;
    }
    if (mk_keypair_generate(&key) < 0)
        goto out_free;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&b->loop);
    mk_node_config nc = {.loop = &b->loop, .key = &key, .network = &net,
                         .bootstrap = o->boots, .n_bootstrap = o->n_boots};
    if (mk_node_new(&nc, &b->node, err) < 0) {
        fprintf(stderr, "bench_committee: %s\n", err);
        goto out_loop;
    }
    mk_node_start(b->node);
    if (mk_group_client_open(b->node, &gid, &b->client) != 0) {
        fprintf(stderr, "bench_committee: cannot open a group client\n");
        goto out_node;
    }
    uv_timer_init(&b->loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, on_tick, 2, 2);
    if ((rc = warm_up(b)) != 0) {
        b->first_error = rc;
        finish(b);
    }
    while (b->phase != 4)
        uv_run(&b->loop, UV_RUN_ONCE);
    rc = b->phase == 4 && b->t_start ? 0 : 1;
    print_result(b);
    uv_close((uv_handle_t *)&b->timer, NULL);
    /* Cancels what is still in flight (printed above as failed: it was
     * not answered in time); their callbacks only free. */
    mk_group_client_close(b->client, NULL, NULL);
out_node:
    mk_node_close(b->node, NULL, NULL);
    uv_run(&b->loop, UV_RUN_DEFAULT);
out_loop:
    uv_loop_close(&b->loop);
out_free:
    mk_buf_free(&b->cmd);
    free(b->lat);
    free(b->value);
    free(b);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_committee --bootstrap PEERID@HOST:PORT "
               "--group GROUPID\n"
               "         [--n N] [--window W] [--size BYTES] [--client I]\n"
               "         [--for SECONDS] [--ready FILE --go FILE]\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"group", required_argument, NULL, 'g'},
        {"n", required_argument, NULL, 'n'},
        {"window", required_argument, NULL, 'w'},
        {"size", required_argument, NULL, 's'},
        {"client", required_argument, NULL, 'c'},
        {"for", required_argument, NULL, 'f'},
        {"ready", required_argument, NULL, 'r'},
        {"go", required_argument, NULL, 'G'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts o = {.n = 1000, .window = 64, .size = 64, .for_s = 60};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:g:n:w:s:c:f:r:G:h", lo, NULL)) !=
           -1) {
        switch (ch) {
        case 'b':
            if (o.n_boots < MAX_BOOT)
                o.boots[o.n_boots++] = optarg;
            break;
        case 'g': o.group = optarg; break;
        case 'n': o.n = strtoull(optarg, NULL, 10); break;
        case 'w': o.window = strtoull(optarg, NULL, 10); break;
        case 's': o.size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'c': o.client = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'f': o.for_s = atof(optarg); break;
        case 'r': o.ready = optarg; break;
        case 'G': o.go = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.n_boots || !o.group || o.window == 0 || o.size > MAX_VALUE ||
        o.for_s <= 0) {
        usage(stderr);
        return 2;
    }
    return run(&o);
}
