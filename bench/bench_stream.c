/* Stream fan-out on loopback: one producer to 1, 4 and 8 consumers, next
 * to the raw link ceiling measured in the same run.
 *
 * Every node (the producer, each consumer) and both ends of the raw link
 * run on a loop of their own in a thread of their own, so the raw run and
 * the one-consumer run have the same shape: one sending thread, one
 * receiving thread, one TLS link between them, frames of the same size,
 * the sender keeping up to 512 KiB queued in the link (what a producer
 * keeps per consumer before its ring takes over). With more consumers the
 * producer's thread encrypts once per consumer, as it must.
 *
 * Throughput: the sender times from its first datum until the last
 * consumer has the last one; per-consumer figures divide by each
 * consumer's own finish. The producer paces itself on its backlog (as a
 * well-behaved producer does: it stops at half a ring and resumes on
 * on_writable), so nobody is cut. Latency: afterwards, one timestamped
 * datum per millisecond for two seconds (all threads share
 * CLOCK_MONOTONIC), p50 and p99 over every consumer's samples.
 *
 * Metrics cost: last, the first size and consumer count again, with every
 * node keeping its metrics registry (the default, as in the runs above)
 * and with every node made with metrics_off, in pairs whose order
 * alternates (on-off, off-on, ...) so a machine that slows down or speeds
 * up during the run weighs on both sides. The figure is the median of the
 * pairs' on/off ratios: 1.00 is free, 0.97 a 3% cost; a second line
 * gives the same per CPU second of the process (every thread, user and
 * system), which other processes taking the cores for a while do not
 * move as they move wall-clock throughput.
 *
 * Prints figures; asserts nothing about time.
 *
 *   bench_stream [-q] [-s SIZE] [-k CONSUMERS] [-r RUNS] [-m PAIRS]
 *     -q  a tenth of the data (and 2 metrics pairs), for a smoke run
 *     -m  metrics on/off pairs (default 15: a pair takes about a second,
 *         and five left the median to the machine's noise; 0 skips them)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/link.h"
#include "mosaik/node.h"
#include "mosaik/stream.h"
#include "mosaik/transport.h"

#define RAW_ALPN "/bench/stream-raw/1"
#define HIGH_WATER (512u * 1024u)
#define MAXC 8
#define LAT_N 2000
#define MAX_PAIRS 15

enum { KIND_TPUT = 'T', KIND_LAT = 'L' };

/* What the threads share; everything else is thread-local. */
typedef struct bench {
    uv_mutex_t mu;
    uv_cond_t cv;
    int ready;      /* actors that published their address */
    int tput_done;  /* consumers that have every throughput datum */
    int lat_done;   /* consumers that have every latency datum */
    size_t size;    /* payload bytes per datum */
    uint64_t n;     /* throughput datums */
    int k;          /* consumers */
    bool latency;   /* run the latency phase after the throughput one */
    bool metrics_off; /* every node made with mk_node_config.metrics_off */
    mk_id net, stream;
    int64_t t_start_us; /* first throughput datum sent */
    int64_t cpu_start_us; /* the process's CPU time then */
    char boot[256];     /* the producer's (or raw receiver's) address */
    mk_keypair boot_key;
} bench;

typedef enum mode { RAW_RECV, RAW_SEND, PRODUCER, CONSUMER } mode;

typedef struct actor {
    mode mode;
    bench *b;
    uv_thread_t tid;
    uv_loop_t loop;
    uv_async_t stop;
    mk_keypair key;
    /* stream */
    mk_node *node;
    mk_streams *streams;
    mk_producer *p;
    mk_consumer *c;
    uint64_t sent;
    uv_timer_t lat_timer;
    int lat_sent;
    bool lat_started;
    uv_timer_t wait_timer; /* producer: polls for the consumers' progress */
    /* raw */
    mk_transport *t;
    mk_link *link;
    /* results */
    uint64_t items, bytes;
    int64_t t_last_us;
    int64_t lat[LAT_N];
    int n_lat;
    uint8_t *buf;
} actor;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_stream: %s: %s\n", what, mk_strerror(rc));
    exit(1);
}

static void bump(bench *b, int *counter)
{
    uv_mutex_lock(&b->mu);
    (*counter)++;
    uv_cond_broadcast(&b->cv);
    uv_mutex_unlock(&b->mu);
}

static int read_counter(bench *b, const int *counter)
{
    uv_mutex_lock(&b->mu);
    int v = *counter;
    uv_mutex_unlock(&b->mu);
    return v;
}

static void wait_counter(bench *b, const int *counter, int want)
{
    uv_mutex_lock(&b->mu);
    while (*counter < want)
        uv_cond_wait(&b->cv, &b->mu);
    uv_mutex_unlock(&b->mu);
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* CPU time of the whole process (every thread), user and system: what a
 * cost measured in work, not in wall time, is read from. */
static int64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
           ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* ---- raw link: one sender, one receiver ---------------------------------- */

static void raw_pump(actor *a);

static void raw_on_drain(mk_link *l, void *data)
{
    raw_pump(data);
}

static void raw_pump(actor *a)
{
    bench *b = a->b;
    while (a->sent < b->n && mk_link_queued(a->link) < HIGH_WATER) {
        a->buf[0] = KIND_TPUT;
        int rc = mk_link_send(a->link, a->buf, b->size);
        if (rc < 0)
            die("raw send", rc);
        a->sent++;
    }
}

static void raw_on_frame(mk_link *l, const uint8_t *f, size_t len, void *data)
{
    actor *a = data;
    a->items++;
    a->bytes += len;
    if (a->items == a->b->n) {
        a->t_last_us = mk_mono_us();
        bump(a->b, &a->b->tput_done);
    }
}

static void raw_on_close(mk_link *l, uint32_t code, int status, void *data)
{
    actor *a = data;
    a->link = NULL;
}

static void raw_on_accept(mk_link *l, void *data)
{
    actor *a = data;
    a->link = l;
    mk_link_set_callbacks(l, raw_on_frame, raw_on_close, a);
}

static void raw_on_connected(mk_link *l, int status, void *data)
{
    actor *a = data;
    if (status < 0)
        die("raw connect", status);
    a->link = l;
    mk_link_set_callbacks(l, raw_on_frame, raw_on_close, a);
    mk_link_on_drain(l, raw_on_drain);
    a->b->t_start_us = mk_mono_us();
    raw_pump(a);
}

/* ---- streams: the producer ----------------------------------------------- */

static void prod_pump(actor *a)
{
    bench *b = a->b;
    size_t half = MK_STREAM_BUFFER_DEFAULT / 2;
    while (a->sent < b->n && mk_producer_backlog(a->p) < half) {
        a->buf[0] = KIND_TPUT;
        int rc = mk_producer_send_bytes(a->p, a->buf, b->size);
        if (rc == MK_EFULL)
            return; /* on_writable resumes */
        if (rc < 0)
            die("producer send", rc);
        if (rc != b->k)
            fprintf(stderr, "bench_stream: datum went to %d of %d\n", rc,
                    b->k);
        a->sent++;
    }
}

static void prod_on_writable(mk_producer *p, void *data)
{
    prod_pump(data);
}

static void on_lat_tick(uv_timer_t *t)
{
    actor *a = t->data;
    if (a->lat_sent >= LAT_N) {
        uv_timer_stop(t);
        return;
    }
    a->buf[0] = KIND_LAT;
    put64(a->buf + 8, (uint64_t)mk_mono_us());
    if (mk_producer_send_bytes(a->p, a->buf, a->b->size) >= 0)
        a->lat_sent++;
}

/* Latency starts once every consumer has drained the throughput phase,
 * so no sample waits behind a backlog. */
static void on_wait_tick(uv_timer_t *t)
{
    actor *a = t->data;
    if (a->lat_started || !a->b->latency ||
        read_counter(a->b, &a->b->tput_done) < a->b->k)
        return;
    a->lat_started = true;
    uv_timer_stop(t);
    uv_timer_start(&a->lat_timer, on_lat_tick, 1, 1);
}

static void prod_on_online(bool met, void *data)
{
    actor *a = data;
    if (!met || a->sent)
        return;
    a->b->t_start_us = mk_mono_us();
    a->b->cpu_start_us = cpu_us();
    prod_pump(a);
    uv_timer_start(&a->wait_timer, on_wait_tick, 10, 10);
}

/* ---- streams: a consumer ----------------------------------------------------- */

static int cons_on_datum(mk_consumer *c, const mk_datum *d, void *data)
{
    actor *a = data;
    bench *b = a->b;
    if (d->bytes[0] == KIND_TPUT) {
        a->items++;
        a->bytes += d->len;
        if (a->items == b->n) {
            a->t_last_us = mk_mono_us();
            bump(b, &b->tput_done);
        }
    } else if (a->n_lat < LAT_N) {
        a->lat[a->n_lat++] = mk_mono_us() - (int64_t)get64(d->bytes + 8);
        if (a->n_lat == LAT_N)
            bump(b, &b->lat_done);
    }
    return 0;
}

/* ---- actor threads -------------------------------------------------------------- */

/* Shutting down in the documented order: the stream handle, then the
 * streams service, then the node. */
static void on_handle_closed(void *data)
{
    actor *a = data;
    mk_streams_close(a->streams, NULL, NULL);
    mk_node_close(a->node, NULL, NULL);
}

static void on_stop(uv_async_t *h)
{
    actor *a = h->data;
    uv_close((uv_handle_t *)&a->stop, NULL);
    if (a->mode == RAW_RECV || a->mode == RAW_SEND) {
        mk_transport_close(a->t, NULL, NULL);
        return;
    }
    uv_close((uv_handle_t *)&a->lat_timer, NULL);
    uv_close((uv_handle_t *)&a->wait_timer, NULL);
    if (a->p)
        mk_producer_close(a->p, on_handle_closed, a);
    else
        mk_consumer_close(a->c, on_handle_closed, a);
}

static void start_node(actor *a)
{
    bench *b = a->b;
    char err[MK_ERRMSG_SIZE];
    const char *boots[1] = {b->boot};
    mk_node_config cfg = {
        .loop = &a->loop,
        .key = &a->key,
        .network = &b->net,
        .listen = "127.0.0.1:0",
        .bootstrap = boots,
        .n_bootstrap = a->mode == PRODUCER ? 0 : 1,
        .discovery = {.announce_interval_ms = 1000},
        .metrics_off = b->metrics_off,
    };
    int rc = mk_node_new(&cfg, &a->node, err);
    if (rc < 0) {
        fprintf(stderr, "bench_stream: node: %s\n", err);
        exit(1);
    }
    if ((rc = mk_streams_new(a->node, &a->streams)) < 0)
        die("streams", rc);
    uv_timer_init(&a->loop, &a->lat_timer);
    uv_timer_init(&a->loop, &a->wait_timer);
    a->lat_timer.data = a->wait_timer.data = a;
    if (a->mode == PRODUCER) {
        mk_producer_config pc = {.stream = b->stream,
                                 .on_writable = prod_on_writable,
                                 .data = a};
        if ((rc = mk_producer_open(a->streams, &pc, &a->p, err)) < 0)
            die("producer", rc);
        const mk_stream_cond all = {.min = (size_t)b->k};
        mk_producer_when(a->p, &all, prod_on_online, a, NULL);
        char hex[MK_ID_HEX_LEN + 1];
        uv_mutex_lock(&b->mu);
        snprintf(b->boot, sizeof b->boot, "%s@%s", mk_id_hex(&a->key.pub, hex),
                 mk_node_addr(a->node));
        uv_mutex_unlock(&b->mu);
    } else {
        mk_consumer_config cc = {.stream = b->stream,
                                 .on_datum = cons_on_datum,
                                 .data = a};
        if ((rc = mk_consumer_open(a->streams, &cc, &a->c, err)) < 0)
            die("consumer", rc);
    }
    if ((rc = mk_node_start(a->node)) < 0)
        die("start", rc);
}

static void start_raw(actor *a)
{
    bench *b = a->b;
    char err[MK_ERRMSG_SIZE];
    mk_transport_config tc = {.loop = &a->loop, .key = &a->key,
                              .listen = a->mode == RAW_SEND ? NULL
                                                            : "127.0.0.1:0"};
    int rc = mk_transport_new(&tc, &a->t, err);
    if (rc < 0) {
        fprintf(stderr, "bench_stream: transport: %s\n", err);
        exit(1);
    }
    if (a->mode == RAW_SEND) {
        rc = mk_transport_connect(a->t, &b->boot_key.pub, b->boot, RAW_ALPN,
                                  raw_on_connected, a);
        if (rc < 0)
            die("connect", rc);
    } else {
        mk_transport_serve(a->t, RAW_ALPN, raw_on_accept, a);
        uv_mutex_lock(&b->mu);
        snprintf(b->boot, sizeof b->boot, "%s", mk_transport_listen_addr(a->t));
        uv_mutex_unlock(&b->mu);
    }
}

static void actor_main(void *arg)
{
    actor *a = arg;
    bench *b = a->b;
    uv_loop_init(&a->loop);
    uv_async_init(&a->loop, &a->stop, on_stop);
    a->stop.data = a;
    a->buf = calloc(1, b->size < 16 ? 16 : b->size);
    if (!a->buf)
        die("buffer", MK_ENOMEM);
    if (a->mode == RAW_RECV || a->mode == RAW_SEND)
        start_raw(a);
    else
        start_node(a);
    bump(b, &b->ready);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_loop_close(&a->loop);
    free(a->buf);
}

static void start_actor(actor *a, bench *b, mode m)
{
    a->b = b;
    a->mode = m;
    if (mk_keypair_generate(&a->key) != 0)
        die("keygen", MK_EIO);
    if (uv_thread_create(&a->tid, actor_main, a) != 0)
        die("thread", MK_EAGAIN);
}

static void stop_actor(actor *a)
{
    uv_async_send(&a->stop);
    uv_thread_join(&a->tid);
}

/* ---- runs ------------------------------------------------------------------------ */

static double mbps(uint64_t bytes, int64_t us)
{
    return us > 0 ? (double)bytes / (double)us : 0; /* bytes/us = MB/s */
}

/* MB/s of one sender → one receiver over a raw link. */
static double raw_run(size_t size, uint64_t n)
{
    bench *b = calloc(1, sizeof *b);
    uv_mutex_init(&b->mu);
    uv_cond_init(&b->cv);
    b->size = size;
    b->n = n;
    actor *recv = calloc(1, sizeof *recv), *send = calloc(1, sizeof *send);
    start_actor(recv, b, RAW_RECV);
    b->boot_key = recv->key;
    wait_counter(b, &b->ready, 1);
    start_actor(send, b, RAW_SEND);
    wait_counter(b, &b->tput_done, 1);
    double rate = mbps(recv->bytes, recv->t_last_us - b->t_start_us);
    stop_actor(send);
    stop_actor(recv);
    free(send);
    free(recv);
    uv_cond_destroy(&b->cv);
    uv_mutex_destroy(&b->mu);
    free(b);
    return rate;
}

static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static int cmpd(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

typedef struct result {
    double per_consumer; /* mean over consumers of each one's MB/s */
    double slowest;      /* the slowest consumer's MB/s */
    double total;        /* every consumer's bytes over the last finish */
    double per_cpu;      /* the same bytes per CPU second of the process,
                            MB/s: the work they took, whatever else runs */
    int64_t p50, p99;    /* latency, when measured */
    size_t samples;
} result;

static result stream_run(size_t size, uint64_t n, int k, bool latency,
                         bool metrics_off)
{
    result res = {0};
    bench *b = calloc(1, sizeof *b);
    uv_mutex_init(&b->mu);
    uv_cond_init(&b->cv);
    b->size = size;
    b->n = n;
    b->k = k;
    b->latency = latency;
    b->metrics_off = metrics_off;
    mk_keypair nk;
    mk_keypair_generate(&nk);
    mk_id_hash(&b->net, nk.pub.b, 32); /* a network of its own */
    mk_stream_id_from_str(&b->stream, "bench");

    actor *prod = calloc(1, sizeof *prod);
    actor *cons = calloc((size_t)k, sizeof *cons);
    start_actor(prod, b, PRODUCER);
    wait_counter(b, &b->ready, 1);
    for (int i = 0; i < k; i++)
        start_actor(&cons[i], b, CONSUMER);
    wait_counter(b, &b->tput_done, k);
    int64_t cpu = cpu_us() - b->cpu_start_us;
    int64_t last = 0;
    res.slowest = 1e18;
    for (int i = 0; i < k; i++) {
        if (cons[i].t_last_us > last)
            last = cons[i].t_last_us;
        double r = mbps(cons[i].bytes, cons[i].t_last_us - b->t_start_us);
        res.per_consumer += r / k;
        if (r < res.slowest)
            res.slowest = r;
    }
    res.total = mbps(n * size * (uint64_t)k, last - b->t_start_us);
    res.per_cpu = mbps(n * size * (uint64_t)k, cpu);

    if (latency) {
        wait_counter(b, &b->lat_done, k);
        int64_t *all = malloc(sizeof *all * LAT_N * (size_t)k);
        size_t m = 0;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < cons[i].n_lat; j++)
                all[m++] = cons[i].lat[j];
        qsort(all, m, sizeof *all, cmp64);
        res.p50 = all[m / 2];
        res.p99 = all[m * 99 / 100];
        res.samples = m;
        free(all);
    }
    for (int i = 0; i < k; i++)
        stop_actor(&cons[i]);
    stop_actor(prod);
    free(cons);
    free(prod);
    uv_cond_destroy(&b->cv);
    uv_mutex_destroy(&b->mu);
    free(b);
    return res;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmpd);
    return v[n / 2];
}

static void ratio_stats(const double *v, int n, double *med, double *lo,
                        double *hi);

/* Our stack with metrics on and off, `pairs` times each, the order
 * alternating; prints the medians and the median of the pairs' ratios,
 * of wall-clock throughput and of throughput per CPU second (the second
 * hardly moves when other processes take the cores for a while, which
 * is what makes the first noisy on a shared machine). */
static void metrics_cost(size_t size, int k, uint64_t target, int pairs)
{
    double on[MAX_PAIRS], off[MAX_PAIRS], ratio[MAX_PAIRS];
    double con[MAX_PAIRS], coff[MAX_PAIRS], cratio[MAX_PAIRS];
    for (int r = 0; r < pairs; r++) {
        uint64_t n = target / size / (uint64_t)k;
        bool off_first = r % 2;
        result first = stream_run(size, n, k, false, off_first);
        result second = stream_run(size, n, k, false, !off_first);
        const result *a = off_first ? &second : &first;
        const result *b = off_first ? &first : &second;
        on[r] = a->total;
        off[r] = b->total;
        ratio[r] = b->total > 0 ? a->total / b->total : 0;
        con[r] = a->per_cpu;
        coff[r] = b->per_cpu;
        cratio[r] = b->per_cpu > 0 ? a->per_cpu / b->per_cpu : 0;
    }
    double mr, lo, hi, cmr, clo, chi;
    ratio_stats(ratio, pairs, &mr, &lo, &hi);
    ratio_stats(cratio, pairs, &cmr, &clo, &chi);
    /* Best against best too: other processes only slow a run down. */
    double bon = 0, boff = 0;
    for (int r = 0; r < pairs; r++) {
        bon = on[r] > bon ? on[r] : bon;
        boff = off[r] > boff ? off[r] : boff;
    }
    printf("metrics on/off: %5zu B  %d consumer%s  %d pairs, order "
           "alternating | on %7.1f MB/s  off %7.1f MB/s | on/off %.3f "
           "(median of pairs %.3f..%.3f; cost %+.1f%%) | best %.3f\n",
           size, k, k == 1 ? " " : "s", pairs, median(on, pairs),
           median(off, pairs), mr, lo, hi, (1 - mr) * 100,
           boff > 0 ? bon / boff : 0);
    printf("metrics on/off per CPU second: on %7.1f MB/cpu-s  off %7.1f "
           "MB/cpu-s | on/off %.3f (median of pairs %.3f..%.3f; cost "
           "%+.1f%%)\n",
           median(con, pairs), median(coff, pairs), cmr, clo, chi,
           (1 - cmr) * 100);
    fflush(stdout);
}

/* The median and range of `n` ratios (sorts them). */
static void ratio_stats(const double *v, int n, double *med, double *lo,
                        double *hi)
{
    double c[MAX_PAIRS];
    memcpy(c, v, sizeof *c * (size_t)n);
    *med = median(c, n);
    *lo = c[0];
    *hi = c[n - 1];
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_stream [-q] [-s SIZE] [-k CONSUMERS] "
                    "[-r RUNS] [-m PAIRS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bool quick = false;
    size_t sizes[2] = {64, 4096}, n_sizes = 2;
    int ks[3] = {1, 4, 8}, n_ks = 3;
    int reps = 0, pairs = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0)
            quick = true;
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            sizes[0] = (size_t)atol(argv[++i]), n_sizes = 1;
        else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc)
            ks[0] = atoi(argv[++i]), n_ks = 1;
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            pairs = atoi(argv[++i]);
        else
            usage();
    }
    if (sizes[0] < 16 || ks[0] < 1 || ks[0] > MAXC || reps < 0 || reps > 5 ||
        pairs < -1 || pairs > MAX_PAIRS)
        usage();
    /* Bytes delivered per measurement (all consumers together), and
     * measurements per figure (the median is printed: the machine is
     * shared, and one slow scheduling decision should not be the result). */
    const uint64_t target = quick ? (32u << 20) : (256u << 20);
    if (reps == 0)
        reps = quick ? 1 : 3;
    printf("bench_stream: %d run(s) per figure, %llu MiB per run, medians\n",
           reps, (unsigned long long)(target >> 20));
    for (size_t i = 0; i < n_sizes; i++) {
        size_t size = sizes[i];
        for (int j = 0; j < n_ks; j++) {
            int k = ks[j];
            double raw[5], per[5], slow[5], total[5];
            result last = {0};
            /* Raw and stream alternate so both see the same machine. */
            for (int r = 0; r < reps; r++) {
                raw[r] = raw_run(size, target / size);
                last = stream_run(size, target / size / (uint64_t)k, k,
                                  r == reps - 1, false);
                per[r] = last.per_consumer;
                slow[r] = last.slowest;
                total[r] = last.total;
            }
            double rw = median(raw, reps), pc = median(per, reps);
            double sl = median(slow, reps), tt = median(total, reps);
            printf("%5zu B  %d consumer%s  raw link %7.1f MB/s %9.0f items/s"
                   " | per consumer %7.1f MB/s %9.0f items/s (slowest %.1f)"
                   " | total %7.1f MB/s = %.2f x raw\n",
                   size, k, k == 1 ? " " : "s", rw, rw * 1e6 / (double)size,
                   pc, pc * 1e6 / (double)size, sl, tt, tt / rw);
            printf("         latency @1000/s: p50 %5lld us  p99 %6lld us  "
                   "(%zu samples)\n",
                   (long long)last.p50, (long long)last.p99, last.samples);
            fflush(stdout);
        }
    }
    if (pairs < 0)
        pairs = quick ? 2 : 15;
    if (pairs > 0)
        metrics_cost(sizes[0], ks[0], target, pairs);
    return 0;
}
