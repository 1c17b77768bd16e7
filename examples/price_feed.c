/* price-feed: a standalone price-feed organism (a citizen of the demo
 * coalition, and the upstream of the fx-correlator confluence).
 *
 * One process, one key, one public surface: the typed stream "prices",
 * named derive(stable_id, "prices") where stable_id is the organism's
 * SPEC §2 stable id, blake3("instance|" ‖ instance ‖ "|" ‖ network). Every
 * --interval-ms it publishes a PriceUpdate (coalition/price_feed.h) whose
 * price follows a random walk that a seed fixes, so two runs with the same
 * seed publish the same prices in the same order. seq counts 1, 2, 3, …
 * from each start, and every update carries the start time (epoch_ms):
 * a restarted feed is a new epoch, never a replay of the old one.
 *
 * The producer keeps the stream layer's default bounded queue per
 * consumer: a consumer that cannot keep up is cut, never buffered for.
 *
 * On start it prints {"peer_id":…,"listen":…,"stream":…} on stdout, then
 * logs to stderr. SIGINT and SIGTERM depart gracefully and exit 0.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "coalition/identity.h"
#include "coalition/price_feed.h"
#include "mosaik/blake3.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/node.h"
#include "mosaik/stream.h"

#define MAX_BOOT 16

typedef struct feed {
    uv_loop_t loop;
    mk_keypair key;
    mk_id network;
    mk_node *node;
    mk_streams *streams;
    mk_producer *producer;
    uv_timer_t timer;
    uv_signal_t sigint, sigterm;
    co_price_update u;
    uint64_t rng;
    uint64_t sent, unsent;
    bool stopping, quiet;
} feed;

static void logf_(const feed *f, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(const feed *f, const char *level, const char *fmt, ...)
{
    if (f->quiet && strcmp(level, "ERROR") != 0)
        return;
    int64_t now = mk_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    char when[32];
    gmtime_r(&secs, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03dZ price-feed %s ", when, (int)(now % 1000),
            level);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: price-feed --listen HOST:PORT --key FILE --instance NAME\n"
            "                  [--bootstrap PEERID@HOST:PORT]... [--pair "
            "EURUSD]\n"
            "                  [--interval-ms 200] [--start PRICE] [--seed "
            "S]\n"
            "                  [--network ID] [--quiet]\n"
            "\n"
            "A price-feed organism: publishes a PriceUpdate every interval\n"
            "on the stream derive(stable_id, \"prices\"), where stable_id =\n"
            "blake3(\"instance|\" NAME \"|\" network). Prints {\"peer_id\",\n"
            "\"listen\", \"stream\"} on stdout once listening, then logs to\n"
            "stderr. SIGINT or SIGTERM exits 0.\n"
            "\n"
            "  --pair P         the pair it quotes (default EURUSD)\n"
            "  --interval-ms N  publishing period (default 200)\n"
            "  --start PRICE    first price, e.g. 1.0850 (default 1.0850)\n"
            "  --seed S         the random walk's seed (default: the\n"
            "                   instance name); same seed, same prices\n");
}

/* splitmix64: small, fast, and the same on every platform. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* "1.0850" → 1085000 micro-units. 0 or -1. */
static int parse_price(const char *s, int64_t *out)
{
    int64_t whole = 0, frac = 0, scale = 1000000;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (INT64_MAX / 1000000 - 9) / 10)
            return -1;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale == 1)
                return -1; /* more than 6 decimals */
            scale /= 10;
            frac += (*p - '0') * scale;
        }
    }
    if (*p)
        return -1;
    *out = whole * 1000000 + frac;
    return *out > 0 ? 0 : -1;
}

static void on_publish(uv_timer_t *t)
{
    feed *f = t->data;
    /* A bounded walk: ±100 micro-units a step, never below 1 unit. */
    int64_t step = (int64_t)(next_rand(&f->rng) % 201) - 100;
    if (f->u.price_micro + step >= 1)
        f->u.price_micro += step;
    f->u.seq++;
    f->u.unix_ms = mk_now_ms();
    int rc = mk_producer_send(f->producer, &f->u);
    if (rc >= 0)
        f->sent++;
    else
        f->unsent++; /* nobody subscribed (MK_EOFFLINE), or all full */
    if (f->u.seq % 100 == 0)
        logf_(f, "INFO",
              "seq %" PRIu64 " price %" PRId64 " micro, %zu subscriber(s), "
              "%" PRIu64 " sent, %" PRIu64 " unsent",
              f->u.seq, f->u.price_micro, mk_producer_subscribers(f->producer),
              f->sent, f->unsent);
}

static void on_subscription(mk_producer *p, const mk_peer_id *consumer,
                            bool subscribed, uint32_t code, void *data)
{
    char hex[MK_ID_HEX_LEN + 1];
    logf_(data, "INFO", "consumer %.16s… %s (code %u)",
          mk_id_hex(consumer, hex), subscribed ? "subscribed" : "left",
          code);
}

static void on_node_closed(void *data)
{
    feed *f = data;
    uv_close((uv_handle_t *)&f->sigint, NULL);
    uv_close((uv_handle_t *)&f->sigterm, NULL);
}

static void on_producer_closed(void *data)
{
    feed *f = data;
    /* The producer was the service's last user; the node goes last. */
    mk_streams_close(f->streams, NULL, NULL);
    mk_node_close(f->node, on_node_closed, f);
}

static void on_signal(uv_signal_t *s, int signum)
{
    feed *f = s->data;
    if (f->stopping)
        return;
    f->stopping = true;
    logf_(f, "INFO", "%s: departing after %" PRIu64 " updates",
          signum == SIGINT ? "SIGINT" : "SIGTERM", f->u.seq);
    uv_close((uv_handle_t *)&f->timer, NULL);
    mk_producer_close(f->producer, on_producer_closed, f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"key", required_argument, NULL, 'k'},
        {"instance", required_argument, NULL, 'i'},
        {"bootstrap", required_argument, NULL, 'b'},
        {"pair", required_argument, NULL, 'p'},
        {"interval-ms", required_argument, NULL, 'I'},
        {"start", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},
        {"network", required_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *keyfile = NULL, *instance = NULL,
               *pair = "EURUSD", *network = NULL, *seed = NULL;
    const char *boots[MAX_BOOT];
    size_t n_boots = 0;
    long interval = 200;
    int64_t start = 1085000;
    static feed f; /* big enough that the stack is the wrong place */
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'l': listen = optarg; break;
        case 'k': keyfile = optarg; break;
        case 'i': instance = optarg; break;
        case 'p': pair = optarg; break;
        case 'n': network = optarg; break;
        case 'S': seed = optarg; break;
        case 'q': f.quiet = true; break;
        case 'b':
            if (n_boots == MAX_BOOT) {
                fprintf(stderr, "price-feed: too many --bootstrap\n");
                return 2;
            }
            boots[n_boots++] = optarg;
            break;
        case 'I':
            interval = strtol(optarg, &end, 10);
            if (*end || interval < 1 || interval > 3600000) {
                fprintf(stderr, "price-feed: --interval-ms: '%s' is not 1 "
                                "to 3600000\n",
                        optarg);
                return 2;
            }
            break;
        case 's':
            if (parse_price(optarg, &start) != 0) {
                fprintf(stderr, "price-feed: --start: '%s' is not a price "
                                "like 1.0850\n",
                        optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !listen || !keyfile || !instance) {
        fprintf(stderr, "price-feed: --listen, --key and --instance are "
                        "required\n");
        usage(stderr);
        return 2;
    }

    char err[CO_ERRMSG_SIZE], hex[MK_ID_HEX_LEN + 1], shex[MK_ID_HEX_LEN + 1];
    co_organism_ref ref = {.role = "oracle", .instance = instance,
                           .network = network};
    mk_id stream;
    if (co_price_feed_stream(&ref, &stream, err) < 0) {
        fprintf(stderr, "price-feed: %s\n", err);
        return 2;
    }
    f.u = (co_price_update){.epoch_ms = mk_now_ms(), .price_micro = start};
    if (strlen(pair) > CO_PRICE_PAIR_MAX) {
        fprintf(stderr, "price-feed: --pair: at most %d characters\n",
                CO_PRICE_PAIR_MAX);
        return 2;
    }
    strcpy(f.u.pair, pair);
    f.u.seq = 1; /* check the pair's alphabet once, up front */
    {
        mk_buf b;
        mk_buf_init(&b);
        int rc = co_price_update_encode(&f.u, &b);
        mk_buf_free(&b);
        if (rc < 0) {
            fprintf(stderr, "price-feed: --pair '%s': use A-Z 0-9 . / _ -\n",
                    pair);
            return 2;
        }
    }
    f.u.seq = 0;
    uint8_t h[MK_BLAKE3_OUT_LEN];
    const char *s = seed ? seed : instance;
    mk_blake3(s, strlen(s), h);
    memcpy(&f.rng, h, sizeof f.rng);

    if (mk_keypair_load(&f.key, keyfile, err) < 0) {
        fprintf(stderr, "price-feed: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    f.network = MK_UNIVERSE;
    if (network)
        mk_id_from_str(&f.network, network);
    uv_loop_init(&f.loop);
    mk_node_config nc = {
        .loop = &f.loop,
        .key = &f.key,
        .network = &f.network,
        .listen = listen,
        .bootstrap = boots,
        .n_bootstrap = n_boots,
    };
    int rc = mk_node_new(&nc, &f.node, err);
    if (rc < 0) {
        fprintf(stderr, "price-feed: %s\n", err);
        uv_loop_close(&f.loop);
        return rc == MK_EINVAL ? 2 : 1;
    }
    if ((rc = mk_streams_new(f.node, &f.streams)) < 0) {
        fprintf(stderr, "price-feed: streams: %s\n", mk_strerror(rc));
        return 1;
    }
    mk_producer_config pc = {
        .stream = stream,
        .codec = &co_price_update_codec,
        .on_subscription = on_subscription,
        .data = &f,
    };
    if ((rc = mk_producer_open(f.streams, &pc, &f.producer, err)) < 0) {
        fprintf(stderr, "price-feed: producer: %s\n", err);
        return 1;
    }
    uv_timer_init(&f.loop, &f.timer);
    f.timer.data = &f;
    uv_timer_start(&f.timer, on_publish, (uint64_t)interval,
                   (uint64_t)interval);
    uv_signal_init(&f.loop, &f.sigint);
    uv_signal_init(&f.loop, &f.sigterm);
    f.sigint.data = f.sigterm.data = &f;
    uv_signal_start(&f.sigint, on_signal, SIGINT);
    uv_signal_start(&f.sigterm, on_signal, SIGTERM);
    mk_node_start(f.node);

    printf("{\"peer_id\":\"%s\",\"listen\":\"%s\",\"stream\":\"%s\"}\n",
           mk_id_hex(mk_node_id(f.node), hex), mk_node_addr(f.node),
           mk_id_hex(&stream, shex));
    fflush(stdout);
    logf_(&f, "INFO",
          "%s (%s) quoting %s every %ld ms from %" PRId64 " micro, epoch %"
          PRId64,
          instance, hex, f.u.pair, interval, start, f.u.epoch_ms);

    uv_run(&f.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&f.loop) != 0)
        logf_(&f, "WARN", "loop closed with handles open");
    logf_(&f, "INFO", "stopped");
    return 0;
}
