/* Compute benchmark, in one run:
 *
 *   blobs      fetching a file of --mib MiB by hash from another process
 *              (TLS link, segment-by-segment BLAKE3 verification, written
 *              to the store), against plain TCP carrying the same file
 *              from file to file in the same run; MB/s, median of --runs,
 *              and their ratio.
 *   latency    a three-member committee and one provider (real coalitiond
 *              processes on loopback); --jobs small workloads, one at a
 *              time: submit → grant visible to a reader, and submit → the
 *              first committed line of output (fetch, start, first
 *              output chunk committed); p50/p99.
 *   matching   --providers fake providers registered (cards only), then
 *              --requests requests kept pipelined through one client:
 *              grants committed per second (each SUBMIT is matched inside
 *              apply against every provider, on every member).
 *
 * Figures are printed, never asserted. --blobs-only stops after the
 * first part (no committee is started).
 *
 *   bench_compute [--dir DIR] [--mib N] [--runs N] [--jobs N]
 *                 [--providers N] [--requests N] [--window N]
 *                 [--blobs-only]
 *
 * coalitiond is taken from $BUILD_DIR (bench/compute.sh sets it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "coalition/compute.h"
#include "coalition/compute_internal.h"
#include "coalition/config_file.h"
#include "daemon.h"
#include "mosaik/blake3.h"
#include "mosaik/blob.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"
#include "mosaik/node.h"
#include "proc_cpu.h"

#define MEMBERS 3
#define CHUNK (128u << 10)

typedef struct opts {
    const char *dir;
    unsigned mib, runs, jobs, providers, requests, window;
} opts;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bench_compute: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    return v[k ? k - 1 : 0];
}

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

/* ---- blobs against plain TCP ------------------------------------------------ */



/* One transfer: its speed, and each side's CPU per GB while it ran. */
typedef struct transfer {
    double mbs, rcv_cpu, snd_cpu;
} transfer;

static void make_file(const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("%s: %s", path, strerror(errno));
    uint8_t *buf = malloc(CHUNK);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint64_t at = 0; at < size; at += CHUNK) {
        for (size_t i = 0; i < CHUNK; i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(buf + i, &x, 8);
        }
        size_t n = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
        if (write(fd, buf, n) != (ssize_t)n)
            die("write: %s", strerror(errno));
    }
    free(buf);
    close(fd);
}

/* The serving side, in a child: a node serving the file as a blob, or a
 * plain TCP socket copying it out. Writes "peer@addr" or the port to
 * `ready`, then serves until killed. */
static void serve_blob(const char *file, const char *store, int ready)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mk_keypair kp;
    mk_keypair_generate(&kp);
    mk_node_config nc = {.loop = &loop, .key = &kp, .listen = "127.0.0.1:0"};
    mk_node *node;
    mk_blobs *b;
    mk_id hash;
    char err[MK_ERRMSG_SIZE], hex[MK_ID_HEX_LEN + 1], hh[MK_ID_HEX_LEN + 1],
        line[256];
    if (mk_node_new(&nc, &node, err) < 0 || mk_node_start(node) < 0 ||
        mk_blobs_new(node, store, &b, err) < 0 ||
        mk_blobs_serve_file(b, file, &hash, NULL, err) < 0)
        die("blob server: %s", err);
    int n = snprintf(line, sizeof line, "%s@%s %s\n", mk_id_hex(&kp.pub, hex),
                     mk_node_addr(node), mk_id_hex(&hash, hh));
    if (write(ready, line, (size_t)n) != n)
        _exit(1);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
}

static void serve_plain(const char *file, int ready)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s, 1) != 0 || getsockname(s, (struct sockaddr *)&a, &len) != 0)
        die("plain server: %s", strerror(errno));
    char line[32];
    int n = snprintf(line, sizeof line, "%u\n", ntohs(a.sin_port));
    if (write(ready, line, (size_t)n) != n)
        _exit(1);
    int c = accept(s, NULL, NULL);
    int fd = open(file, O_RDONLY);
    uint8_t *buf = malloc(CHUNK);
    ssize_t r;
    while ((r = read(fd, buf, CHUNK)) > 0)
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(c, buf + off, (size_t)(r - off));
            if (w <= 0)
                _exit(1);
            off += w;
        }
    close(c);
    _exit(0);
}

static pid_t fork_server(void (*fn)(const char *, const char *, int),
                         const char *file, const char *store, char *line,
                         size_t len)
{
    int p[2];
    if (pipe(p) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        fn(file, store, p[1]);
        _exit(0);
    }
    close(p[1]);
    size_t got = 0;
    while (got < len - 1) {
        ssize_t r = read(p[0], line + got, 1);
        if (r <= 0 || line[got] == '\n')
            break;
        got++;
    }
    line[got] = '\0';
    close(p[0]);
    return pid;
}

static void plain_adapter(const char *file, const char *store, int ready)
{
    (void)store;
    serve_plain(file, ready);
}

static transfer fetch_plain(const char *file, const char *out, uint64_t size)
{
    char line[64];
    pid_t pid = fork_server(plain_adapter, file, NULL, line, sizeof line);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)atoi(line)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    double c0 = self_cpu(), s0 = proc_cpu(pid);
    int64_t t0 = mk_mono_us();
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect: %s", strerror(errno));
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    uint8_t *buf = malloc(CHUNK);
    uint64_t got = 0;
    while (got < size) {
        ssize_t r = read(s, buf, CHUNK);
        if (r <= 0)
            die("plain read: %s", strerror(errno));
        if (write(fd, buf, (size_t)r) != r)
            die("plain write: %s", strerror(errno));
        got += (uint64_t)r;
    }
    close(fd);
    double secs = (double)(mk_mono_us() - t0) / 1e6;
    double gb = (double)size / 1e9;
    transfer x = {.mbs = (double)size / 1e6 / secs,
                  .rcv_cpu = (self_cpu() - c0) / gb};
    free(buf);
    close(s);
    x.snd_cpu = (proc_cpu(pid) - s0) / gb; /* it has written all */
    waitpid(pid, NULL, 0);
    unlink(out);
    return x;
}

typedef struct fetch_wait {
    bool done;
    int status;
    int64_t end_us;
    char reason[512];
} fetch_wait;

static void on_fetched(mk_blob_fetch *f, int status,
                       const mk_blob_fetch_result *r, void *data)
{
    fetch_wait *w = data;
    w->done = true;
    w->status = status;
    w->end_us = mk_mono_us();
    snprintf(w->reason, sizeof w->reason, "%s", r->reason);
    if (r->path)
        unlink(r->path);
}

static void serve_blob_adapter(const char *file, const char *store,
                               int ready)
{
    serve_blob(file, store, ready);
}

static transfer fetch_blob(const char *file, const char *dir, uint64_t size)
{
    char line[256], sstore[600], fstore[600];
    snprintf(sstore, sizeof sstore, "%s/server-store", dir);
    snprintf(fstore, sizeof fstore, "%s/fetch-store", dir);
    pid_t pid = fork_server(serve_blob_adapter, file, sstore, line,
                            sizeof line);
    char *sp = strchr(line, ' ');
    if (!sp)
        die("blob server did not start");
    *sp = '\0';
    mk_id hash;
    mk_id_from_hex(&hash, sp + 1, 64);
    uv_loop_t loop;
    uv_timer_t pulse;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &pulse);
    uv_timer_start(&pulse, on_pulse, 5, 5);
    mk_keypair kp;
    mk_keypair_generate(&kp);
    const char *boots[1] = {line};
    mk_node_config nc = {.loop = &loop, .key = &kp, .bootstrap = boots,
                         .n_bootstrap = 1};
    mk_node *node;
    mk_blobs *b;
    char err[MK_ERRMSG_SIZE];
    if (mk_node_new(&nc, &node, err) < 0 || mk_node_start(node) < 0 ||
        mk_blobs_new(node, fstore, &b, err) < 0)
        die("fetcher: %s", err);
    mk_peer_id server;
    mk_id_from_hex(&server, line, 64);
    mk_peer_info pi;
    int64_t end = mk_mono_ms() + 10000;
    while (!mk_node_peer(node, &server, &pi) && mk_mono_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    fetch_wait w = {0};
    mk_blob_fetch_config fc = {.hash = hash, .from = &server, .n_from = 1};
    double c0 = self_cpu(), s0 = proc_cpu(pid);
    int64_t t0 = mk_mono_us();
    if (mk_blob_fetch_start(b, &fc, on_fetched, &w, NULL) < 0)
        die("fetch start");
    while (!w.done)
        uv_run(&loop, UV_RUN_ONCE);
    if (w.status != 0)
        die("fetch: %s (%s)", mk_strerror(w.status), w.reason);
    double gb = (double)size / 1e9;
    transfer x = {.mbs = (double)size / 1e6 / ((double)(w.end_us - t0) / 1e6),
                  .rcv_cpu = (self_cpu() - c0) / gb,
                  .snd_cpu = (proc_cpu(pid) - s0) / gb};
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    mk_blobs_close(b, NULL, NULL);
    mk_node_close(node, NULL, NULL);
    uv_close((uv_handle_t *)&pulse, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return x;
}

static void bench_blobs(const opts *o)
{
    char file[600], out[600];
    snprintf(file, sizeof file, "%s/blob.bin", o->dir);
    snprintf(out, sizeof out, "%s/plain.out", o->dir);
    uint64_t size = (uint64_t)o->mib << 20;
    make_file(file, size);
    double blob[16], plain[16], brcv[16], bsnd[16], prcv[16], psnd[16];
    unsigned runs = o->runs > 16 ? 16 : o->runs;
    for (unsigned i = 0; i < runs; i++) {
        transfer p = fetch_plain(file, out, size);
        transfer b = fetch_blob(file, o->dir, size);
        plain[i] = p.mbs;
        prcv[i] = p.rcv_cpu;
        psnd[i] = p.snd_cpu;
        blob[i] = b.mbs;
        brcv[i] = b.rcv_cpu;
        bsnd[i] = b.snd_cpu;
    }
    double pb = pct(blob, runs, 50), pp = pct(plain, runs, 50);
    printf("blob fetch      %u MiB: %.0f MB/s (verified, TLS, stored)   "
           "plain TCP %.0f MB/s   ratio %.2f   (median of %u, BLAKE3 %s)\n",
           o->mib, pb, pp, pb / pp, runs, mk_blake3_impl());
    /* Which side bounds it: CPU per GB moved, each side, while it ran. */
    printf("                cpu/GB: fetcher %.2f s, server %.2f s   "
           "plain: reader %.2f s, writer %.2f s   (medians)\n",
           pct(brcv, runs, 50), pct(bsnd, runs, 50), pct(prcv, runs, 50),
           pct(psnd, runs, 50));
    unlink(file);
}

/* ---- a committee and a provider ------------------------------------------------- */

typedef struct env {
    char dir[600], coalition[700], provider[700];
    daemon_proc d[MEMBERS + 1];
    co_config_file *file;
    const co_coalition_config *cfg;
    uv_loop_t loop;
    uv_timer_t pulse;
    mk_keypair key;
    mk_node *node;
    mk_blobs *blobs;
    co_compute_reader *r;
    mk_group_client *client;
    co_module_info m;
    mk_id group;
} env;

static void spin(env *e, int ms)
{
    int64_t end = mk_mono_ms() + ms;
    while (mk_mono_ms() < end)
        uv_run(&e->loop, UV_RUN_ONCE);
}

static void on_reader(co_compute_reader *r, int status, void *data)
{
    (void)r;
    (void)status;
    (void)data;
}

static void start_env(env *e, const opts *o)
{
    snprintf(e->dir, sizeof e->dir, "%s/committee", o->dir);
    mkdir(e->dir, 0700);
    for (int i = 0; i <= MEMBERS; i++) {
        char name[16];
        snprintf(name, sizeof name, i < MEMBERS ? "m%d" : "p%d", i);
        if (daemon_prepare(&e->d[i], e->dir, name) != 0)
            die("keys");
    }
    snprintf(e->coalition, sizeof e->coalition, "%s/coalition.json", e->dir);
    FILE *f = fopen(e->coalition, "w");
    /* Fake providers never heartbeat: give them 100 periods of 1000 s. */
    fprintf(f,
            "{\"name\": \"bench.compute\", \"lattices\": [], "
            "\"organisms\": [], \"confluences\": [{\"name\": \"compute\", "
            "\"lattices\": [], \"organisms\": [], \"content\": "
            "\"compute/v1;clock_ms=200;heartbeat_ms=1000000;missed=100;"
            "keep=4096\", \"acl\": {\"issuers\": [\"%s\", \"%s\", \"%s\"], "
            "\"mrtds\": []}}], \"ticket_issuer\": null}\n",
            e->d[0].peer_id, e->d[1].peer_id, e->d[2].peer_id);
    fclose(f);
    snprintf(e->provider, sizeof e->provider, "%s/provider.json", e->dir);
    f = fopen(e->provider, "w");
    fprintf(f, "{\"cpu\": \"2\", \"ram\": \"1G\", \"storage\": \"1G\"}\n");
    fclose(f);
    char err[CO_ERRMSG_SIZE], boot[MEMBERS][160];
    if (co_config_file_load(e->coalition, &e->file, err) < 0)
        die("%s", err);
    e->cfg = co_config_file_coalition(e->file);
    for (int i = 0; i <= MEMBERS; i++) {
        const char *args[16] = {"--coalition", e->coalition, "--quiet"};
        int n = 3;
        if (i == MEMBERS) {
            args[n++] = "--provider";
            args[n++] = e->provider;
        }
        for (int j = 0; j < i && j < MEMBERS; j++) {
            args[n++] = "--bootstrap";
            args[n++] = daemon_bootstrap(&e->d[j], boot[j], sizeof boot[j]);
        }
        args[n] = NULL;
        if (daemon_start(&e->d[i], args) != 0)
            die("coalitiond %d did not start (is $BUILD_DIR set?)", i);
    }
    uv_loop_init(&e->loop);
    uv_timer_init(&e->loop, &e->pulse);
    uv_timer_start(&e->pulse, on_pulse, 2, 2);
    mk_keypair_generate(&e->key);
    const char *bp[1] = {boot[0]};
    mk_node_config nc = {.loop = &e->loop, .key = &e->key,
                         .listen = "127.0.0.1:0", .bootstrap = bp,
                         .n_bootstrap = 1};
    char store[700];
    snprintf(store, sizeof store, "%s/submitter", e->dir);
    if (mk_node_new(&nc, &e->node, err) < 0 || mk_node_start(e->node) < 0 ||
        mk_blobs_new(e->node, store, &e->blobs, err) < 0 ||
        co_compute_read(e->node, e->cfg, 30000, on_reader, e, &e->r, err) <
            0 ||
        co__compute_group(e->cfg, &e->m, &e->group, err) < 0 ||
        mk_group_client_open(e->node, &e->group, &e->client) < 0)
        die("bench node: %s", err);
    /* Until the real provider is registered. */
    int64_t end = mk_mono_ms() + 30000;
    while (co_compute_provider_count(e->r) < 1 && mk_mono_ms() < end)
        spin(e, 20);
    if (co_compute_provider_count(e->r) < 1)
        die("the provider never registered");
}

static void stop_env(env *e)
{
    mk_group_client_close(e->client, NULL, NULL);
    co_compute_close(e->r, NULL, NULL);
    mk_blobs_close(e->blobs, NULL, NULL);
    mk_node_close(e->node, NULL, NULL);
    uv_close((uv_handle_t *)&e->pulse, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_loop_close(&e->loop);
    for (int i = MEMBERS; i >= 0; i--)
        daemon_signal_wait(&e->d[i], SIGTERM, 15000);
    co_config_file_free(e->file);
}

typedef struct answer {
    bool done;
    int status;
    co_compute_answer a;
} answer;

static void on_answer(int status, const co_compute_answer *a, void *data)
{
    answer *w = data;
    w->done = true;
    w->status = status;
    if (a)
        w->a = *a;
}

static void bench_latency(env *e, const opts *o)
{
    char image[800], err[CO_ERRMSG_SIZE];
    snprintf(image, sizeof image, "%s/job.sh", e->dir);
    FILE *f = fopen(image, "w");
    fputs("#!/bin/sh\necho first line\nexit 0\n", f);
    fclose(f);
    chmod(image, 0755);
    co_compute_request q = {.min = {100, 16, 1}, .valid_for_ms = 30000};
    if (mk_blobs_serve_file(e->blobs, image, &q.image_hash, NULL, err) < 0)
        die("%s", err);
    double *grant = calloc(o->jobs, sizeof *grant),
           *first = calloc(o->jobs, sizeof *first),
           *ans = calloc(o->jobs, sizeof *ans);
    size_t ng = 0, nf = 0, na = 0;
    for (unsigned j = 0; j < o->jobs; j++) {
        co_compute_request_id(&e->key.pub, &q.image_hash, j + 1,
                              &q.request_id);
        answer w = {0};
        int64_t t0 = mk_mono_us(), tg = 0, tf = 0, ta = 0;
        if (co_compute_submit(e->node, e->cfg, &q, &e->key, 10000, on_answer,
                              &w, err) < 0)
            die("submit: %s", err);
        int64_t end = mk_mono_ms() + 30000;
        co_compute_status s = {0};
        while (mk_mono_ms() < end) {
            uv_run(&e->loop, UV_RUN_ONCE);
            if (!ta && w.done)
                ta = mk_mono_us();
            if (co_compute_status_get(e->r, &q.request_id, &s) != 0)
                continue;
            if (!tg && s.granted)
                tg = mk_mono_us();
            if (!tf && s.output_chunks > 0)
                tf = mk_mono_us();
            if (s.state == CO_COMPUTE_DONE || s.state == CO_COMPUTE_REJECTED)
                break;
        }
        if (ta)
            ans[na++] = (double)(ta - t0) / 1000.0;
        if (tg)
            grant[ng++] = (double)(tg - t0) / 1000.0;
        if (tf)
            first[nf++] = (double)(tf - t0) / 1000.0;
    }
    printf("submit -> answer         p50 %7.2f ms  p99 %7.2f ms  (the "
           "committee's reply to the submitter)\n",
           pct(ans, na, 50), pct(ans, na, 99));
    printf("submit -> grant          p50 %7.2f ms  p99 %7.2f ms  (%zu of %u "
           "jobs, seen by a reader)\n",
           pct(grant, ng, 50), pct(grant, ng, 99), ng, o->jobs);
    printf("submit -> first output   p50 %7.2f ms  p99 %7.2f ms  (fetch, "
           "start, output committed)\n",
           pct(first, nf, 50), pct(first, nf, 99));
    free(grant);
    free(first);
    free(ans);
}

typedef struct pipe_run {
    env *e;
    unsigned sent, done, total, window, granted;
    mk_buf cmd;
} pipe_run;

static void send_more(pipe_run *p);

static void on_matched(int status, uint64_t applied, const uint8_t *res,
                       size_t len, void *data)
{
    pipe_run *p = data;
    co_compute_answer a;
    p->done++;
    if (status == 0 &&
        co__compute_answer_decode(CO__COMPUTE_SUBMIT, res, len, &a) == 0 &&
        a.state == CO_COMPUTE_GRANTED)
        p->granted++;
    send_more(p);
}

static void send_more(pipe_run *p)
{
    while (p->sent < p->total && p->sent - p->done < p->window) {
        co_compute_request q = {.min = {1, 1, 0},
                                .tdx = true, /* fake providers only */
                                .valid_for_ms = 3600000};
        mk_id_from_str(&q.image_hash, "bench image");
        co_compute_request_id(&p->e->key.pub, &q.image_hash,
                              1000000 + p->sent, &q.request_id);
        mk_buf_reset(&p->cmd);
        co__compute_cmd_submit(&p->cmd, &p->e->m.root, &q, &p->e->key);
        if (mk_group_client_execute(p->e->client, p->cmd.data, p->cmd.len,
                                    30000, on_matched, p) < 0)
            die("execute");
        p->sent++;
    }
}

static void on_registered(int status, uint64_t applied, const uint8_t *res,
                          size_t len, void *data)
{
    (*(unsigned *)data)++;
}

static void bench_matching(env *e, const opts *o)
{
    unsigned registered = 0;
    mk_buf cmd;
    mk_buf_init(&cmd);
    for (unsigned i = 0; i < o->providers; i++) {
        mk_keypair kp;
        mk_keypair_generate(&kp);
        co_provider_card c = {.provider = kp.pub,
                              .capacity = {1000000, 1000000, 1000000},
                              .tdx_capable = true,
                              .nonce = 1};
        mk_buf_reset(&cmd);
        co__compute_cmd_register(&cmd, &e->m.root, &c, &kp);
        if (mk_group_client_execute(e->client, cmd.data, cmd.len, 30000,
                                    on_registered, &registered) < 0)
            die("register");
    }
    int64_t end = mk_mono_ms() + 60000;
    while (registered < o->providers && mk_mono_ms() < end)
        uv_run(&e->loop, UV_RUN_ONCE);
    mk_buf_free(&cmd);
    pipe_run p = {.e = e, .total = o->requests, .window = o->window};
    mk_buf_init(&p.cmd);
    int64_t t0 = mk_mono_us();
    send_more(&p);
    end = mk_mono_ms() + 300000;
    while (p.done < p.total && mk_mono_ms() < end)
        uv_run(&e->loop, UV_RUN_ONCE);
    double secs = (double)(mk_mono_us() - t0) / 1e6;
    printf("matching                 %.0f grants committed/s  (%u of %u "
           "requests granted, %u providers registered, window %u)\n",
           (double)p.granted / secs, p.granted, p.total, o->providers + 1,
           o->window);
    mk_buf_free(&p.cmd);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"dir", required_argument, NULL, 'd'},
        {"mib", required_argument, NULL, 'm'},
        {"runs", required_argument, NULL, 'r'},
        {"jobs", required_argument, NULL, 'j'},
        {"providers", required_argument, NULL, 'p'},
        {"requests", required_argument, NULL, 'q'},
        {"window", required_argument, NULL, 'w'},
        {"blobs-only", no_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    opts o = {.dir = "bench-compute-data", .mib = 256, .runs = 3, .jobs = 40,
              .providers = 100, .requests = 2000, .window = 256};
    int ch;
    bool blobs_only = false;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': o.dir = optarg; break;
        case 'm': o.mib = (unsigned)atoi(optarg); break;
        case 'r': o.runs = (unsigned)atoi(optarg); break;
        case 'j': o.jobs = (unsigned)atoi(optarg); break;
        case 'p': o.providers = (unsigned)atoi(optarg); break;
        case 'q': o.requests = (unsigned)atoi(optarg); break;
        case 'w': o.window = (unsigned)atoi(optarg); break;
        case 'b': blobs_only = true; break;
        default: die("usage: bench_compute [--dir D] [--mib N] [--runs N] "
                     "[--jobs N] [--providers N] [--requests N] "
                     "[--window N] [--blobs-only]");
        }
    }
    if (!o.mib || !o.runs || !o.jobs || !o.requests || !o.window)
        die("counts must be positive");
    signal(SIGPIPE, SIG_IGN);
    mkdir(o.dir, 0700);
    bench_blobs(&o);
    if (blobs_only)
        return 0;
    env e;
    memset(&e, 0, sizeof e);
    start_env(&e, &o);
    bench_latency(&e, &o);
    bench_matching(&e, &o);
    stop_env(&e);
    daemon_rmtree(e.dir);
    return 0;
}
