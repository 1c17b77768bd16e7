/* One etcd client of the committee benchmark (bench/committee.sh): the
 * same writes as bench_committee, sent to an etcd cluster.
 *
 * Debian's etcd-client ships etcdctl but not etcd's `benchmark` tool, and
 * etcdctl runs one request per process, so this is a small driver that
 * speaks etcd's own client protocol: gRPC (KV.Put) over one cleartext
 * HTTP/2 connection (nghttp2). That makes it comparable to
 * bench_committee point by point: one connection per client process, up
 * to --window unary Puts in flight on it as concurrent streams (our
 * client: up to --window commands pipelined on one link), distinct keys
 * "c<client>-<seq>" with the same --size value, a write counted only when
 * the server answered grpc-status 0 (committed by a majority and
 * applied), latency from submit to that answer, and the same warm-up,
 * start barrier, time bound and JSON line. It talks to one endpoint (the
 * driver gives it the leader, as our client ends up at ours).
 *
 *   bench_etcd --endpoint HOST:PORT [--n N] [--window W] [--size B]
 *              [--client I] [--for S] [--ready F --go F]
 *
 * Figures are printed, never asserted.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_VALUE (64 * 1024)
#define CONNECT_TRIES 50 /* 100 ms apart */
#define GIVE_UP_S 35     /* after --for: as bench_committee's command timeout */
#define WARMUP_S 30
#define GO_WAIT_S 600 /* the driver starts every cell well within this */

typedef struct opts {
    const char *endpoint, *ready, *go;
    uint64_t n, window;
    size_t size;
    unsigned client;
    double for_s;
} opts;

typedef struct bench bench;

typedef struct put_req {
    bench *b;
    int64_t t0;
    uint8_t *body; /* the gRPC message: flag, length, PutRequest */
    size_t len, off;
    int grpc_status; /* -1 until a grpc-status header arrived */
    bool http_ok, warm;
} put_req;

struct bench {
    const opts *o;
    int fd;
    nghttp2_session *h2;
    char authority[128];
    uint8_t *value;
    /* 0 warm-up, 1 waiting for go, 2 measuring, 3 draining, 4 done */
    int phase;
    bool warm_pending, broken;
    uint64_t sent, acked, failed, in_flight;
    int64_t t_start, t_end, stop_at, give_up_at, warm_until;
    int64_t *lat;
    char error[64];
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, c = *(const int64_t *)y;
    return a < c ? -1 : a > c;
}

static void set_error(bench *b, const char *what)
{
    if (!b->error[0])
        snprintf(b->error, sizeof b->error, "%s", what);
}

/* ---- protobuf and gRPC framing ------------------------------------------ */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* PutRequest {1: key bytes, 2: value bytes} behind gRPC's 5-byte prefix
 * (uncompressed, big-endian length). Caller frees. */
static uint8_t *put_body(const char *key, size_t klen, const uint8_t *val,
                         size_t vlen, size_t *len)
{
    uint8_t *p = malloc(5 + 1 + 10 + klen + 1 + 10 + vlen);
    if (!p)
        return NULL;
    size_t at = 5;
    p[at++] = 0x0a;
    at += put_varint(p + at, klen);
    memcpy(p + at, key, klen);
    at += klen;
    p[at++] = 0x12;
    at += put_varint(p + at, vlen);
    memcpy(p + at, val, vlen);
    at += vlen;
    uint32_t m = (uint32_t)(at - 5);
    p[0] = 0;
    p[1] = (uint8_t)(m >> 24);
    p[2] = (uint8_t)(m >> 16);
    p[3] = (uint8_t)(m >> 8);
    p[4] = (uint8_t)m;
    *len = at;
    return p;
}

/* ---- HTTP/2 callbacks -------------------------------------------------- */

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len,
                       int flags, void *ud)
{
    bench *b = ud;
    ssize_t n = send(b->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return NGHTTP2_ERR_WOULDBLOCK;
    b->broken = true;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static ssize_t on_body_read(nghttp2_session *s, int32_t sid, uint8_t *buf,
                            size_t length, uint32_t *flags,
                            nghttp2_data_source *src, void *ud)
{
    put_req *r = src->ptr;
    size_t n = r->len - r->off < length ? r->len - r->off : length;
    memcpy(buf, r->body + r->off, n);
    r->off += n;
    if (r->off == r->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f,
                     const uint8_t *name, size_t nlen, const uint8_t *value,
                     size_t vlen, uint8_t flags, void *ud)
{
    put_req *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!r)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        r->http_ok = vlen == 3 && memcmp(value, "200", 3) == 0;
    else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
        r->grpc_status = atoi((const char *)value); /* NUL-terminated */
    return 0;
}

static void warm_done(bench *b, bool ok);

/* A stream ends: the Put's outcome is known (or the stream failed). */
static int on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    bench *b = ud;
    put_req *r = nghttp2_session_get_stream_user_data(s, sid);
    if (!r)
        return 0;
    bool ok = code == 0 && r->http_ok && r->grpc_status == 0;
    if (r->warm) {
        warm_done(b, ok);
    } else {
        int64_t t = now_us();
        b->in_flight--;
        if (ok) {
            b->lat[b->acked++] = t - r->t0;
        } else {
            char why[64];
            snprintf(why, sizeof why, "grpc-status %d, h2 error %u",
                     r->grpc_status, code);
            set_error(b, why);
            b->failed++;
        }
        if (b->phase != 4)
            b->t_end = t;
    }
    free(r->body);
    free(r);
    return 0;
}

/* ---- requests ---------------------------------------------------------- */

static int submit_put(bench *b, const char *key, size_t klen, bool warm)
{
    put_req *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->b = b;
    r->warm = warm;
    r->grpc_status = -1;
    r->body = put_body(key, klen, b->value, b->o->size, &r->len);
    if (!r->body) {
        free(r);
        return -1;
    }
#define NV(n, v)                                                             \
    {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),              \
     NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv hdrs[] = {
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":path", "/etcdserverpb.KV/Put"),
        NV(":authority", b->authority),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
    };
#undef NV
    nghttp2_data_provider dp = {.source.ptr = r, .read_callback = on_body_read};
    r->t0 = now_us();
    int32_t sid = nghttp2_submit_request(b->h2, NULL, hdrs,
                                         sizeof hdrs / sizeof hdrs[0], &dp, r);
    if (sid < 0) {
        free(r->body);
        free(r);
        return -1;
    }
    return 0;
}

static void pump(bench *b)
{
    const opts *o = b->o;
    bool stop = b->phase == 3 || now_us() >= b->stop_at;
    if (stop && b->phase == 2)
        b->phase = 3;
    while (!stop && b->sent < o->n && b->in_flight < o->window) {
        char key[48];
        int kl = snprintf(key, sizeof key, "c%u-%" PRIu64, o->client, b->sent);
        b->sent++;
        if (submit_put(b, key, (size_t)kl, false) != 0) {
            set_error(b, "submit failed");
            b->failed++;
            continue;
        }
        b->in_flight++;
    }
    if (b->in_flight == 0 && (stop || b->sent == o->n)) {
        b->phase = 4;
        if (!b->t_end)
            b->t_end = now_us();
    }
}

static void start_measuring(bench *b)
{
    b->phase = 2;
    b->t_start = now_us();
    b->stop_at = b->t_start + (int64_t)(b->o->for_s * 1e6);
    b->give_up_at = b->stop_at + (int64_t)GIVE_UP_S * 1000000;
    pump(b);
}

static void warm_up(bench *b)
{
    char key[48];
    int kl = snprintf(key, sizeof key, "w%u", b->o->client);
    b->warm_pending = submit_put(b, key, (size_t)kl, true) == 0;
}

static void warm_done(bench *b, bool ok)
{
    b->warm_pending = false;
    if (!ok)
        return; /* the loop tries again until warm_until */
    b->phase = 1;
    if (b->o->ready) {
        FILE *f = fopen(b->o->ready, "w");
        if (f)
            fclose(f);
    }
    if (!b->o->go)
        start_measuring(b);
}

/* ---- the connection ---------------------------------------------------- */

static int dial(bench *b)
{
    char host[96], *colon;
    snprintf(host, sizeof host, "%s", b->o->endpoint);
    if (!(colon = strrchr(host, ':')))
        return -1;
    *colon = '\0';
    snprintf(b->authority, sizeof b->authority, "%s", b->o->endpoint);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (int i = 0; i < CONNECT_TRIES; i++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
        usleep(100000);
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    b->fd = fd;
    return 0;
}

static int h2_open(bench *b)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    int rc = nghttp2_session_client_new(&b->h2, cbs, b);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        return -1;
    /* Answers are small; a large receive window keeps flow control out of
     * the measurement, as a gRPC client's BDP estimation would. */
    nghttp2_settings_entry s[] = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(b->h2, NGHTTP2_FLAG_NONE, s, 2) != 0)
        return -1;
    nghttp2_session_set_local_window_size(b->h2, NGHTTP2_FLAG_NONE, 0,
                                          1 << 30);
    return 0;
}

/* One round: send what can be sent, wait up to 2 ms for bytes, feed them
 * to nghttp2. False once the connection is gone. */
static bool h2_round(bench *b)
{
    if (nghttp2_session_send(b->h2) != 0 || b->broken)
        return false;
    struct pollfd p = {b->fd, POLLIN, 0};
    if (nghttp2_session_want_write(b->h2))
        p.events |= POLLOUT;
    if (poll(&p, 1, 2) <= 0)
        return true;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        uint8_t buf[65536];
        for (;;) {
            ssize_t n = recv(b->fd, buf, sizeof buf, 0);
            if (n > 0) {
                if (nghttp2_session_mem_recv(b->h2, buf, (size_t)n) < 0)
                    return false;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            return false; /* closed or failed */
        }
    }
    return true;
}

static void print_result(const bench *b)
{
    double el = b->t_end > b->t_start
                    ? (double)(b->t_end - b->t_start) / 1e6
                    : 0.0;
    int64_t p50 = 0, p99 = 0;
    if (b->acked) {
        qsort(b->lat, b->acked, sizeof *b->lat, cmp64);
        p50 = b->lat[b->acked / 2];
        p99 = b->lat[(b->acked * 99) / 100];
    }
    /* Writes still unanswered at the deadline count as failed. */
    printf("{\"client\":%u,\"size\":%zu,\"window\":%" PRIu64
           ",\"acknowledged\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"not_sent\":%" PRIu64 ",\"elapsed_s\":%.6f"
           ",\"writes_per_s\":%.1f,\"p50_us\":%" PRId64 ",\"p99_us\":%" PRId64
           ",\"start_us\":%" PRId64 ",\"end_us\":%" PRId64
           ",\"error\":\"%s\"}\n",
           b->o->client, b->o->size, b->o->window, b->acked,
           b->failed + b->in_flight, b->o->n - b->sent, el,
           el > 0 ? (double)b->acked / el : 0.0, p50, p99, b->t_start,
           b->t_end, b->error);
    fflush(stdout);
}

static int run(const opts *o)
{
    bench *b = calloc(1, sizeof *b);
    int rc = 1;
    if (!b)
        return 1;
    b->o = o;
    b->fd = -1;
    b->lat = calloc(o->n ? o->n : 1, sizeof *b->lat);
    b->value = malloc(o->size ? o->size : 1);
    if (!b->lat || !b->value)
        goto out;
    for (size_t i = 0; i < o->size; i++)
        b->value[i] = (uint8_t)('a' + (i * 7 + o->client) % 26);
    if (dial(b) != 0) {
        set_error(b, "cannot connect");
        goto out_print;
    }
    if (h2_open(b) != 0) {
        set_error(b, "nghttp2 setup failed");
        goto out_print;
    }
    b->warm_until = now_us() + (int64_t)WARMUP_S * 1000000;
    while (b->phase != 4) {
        int64_t t = now_us();
        if (b->phase == 0 && !b->warm_pending) {
            if (t >= b->warm_until) {
                set_error(b, "warm-up write failed");
                break;
            }
            warm_up(b);
        } else if (b->phase == 1 && access(o->go, F_OK) == 0) {
            start_measuring(b);
        } else if (b->phase == 1 &&
                   t >= b->warm_until + (int64_t)GO_WAIT_S * 1000000) {
            set_error(b, "no go");
            break;
        } else if (b->phase == 2 || b->phase == 3) {
            if (b->phase == 3 && t >= b->give_up_at)
                break;
            pump(b);
        }
        if (b->phase != 4 && !h2_round(b)) {
            set_error(b, "connection lost");
            break;
        }
    }
    if (b->phase == 2 || b->phase == 3)
        b->t_end = b->t_end ? b->t_end : now_us();
    rc = b->t_start ? 0 : 1;
out_print:
    print_result(b);
out:
    if (b->h2)
        nghttp2_session_del(b->h2); /* before b: it may call on_close */
    if (b->fd >= 0)
        close(b->fd);
    free(b->lat);
    free(b->value);
    free(b);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_etcd --endpoint HOST:PORT [--n N] [--window W]\n"
               "         [--size BYTES] [--client I] [--for SECONDS]\n"
               "         [--ready FILE --go FILE]\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"endpoint", required_argument, NULL, 'e'},
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
    while ((ch = getopt_long(argc, argv, "e:n:w:s:c:f:r:G:h", lo, NULL)) !=
           -1) {
        switch (ch) {
        case 'e': o.endpoint = optarg; break;
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
    if (!o.endpoint || o.window == 0 || o.size > MAX_VALUE || o.for_s <= 0) {
        usage(stderr);
        return 2;
    }
    return run(&o);
}
