/* Link throughput on loopback: mosaik links (TLS 1.3) against plain TCP
 * carrying the same frames, in the same run.
 *
 * Each run forks a receiver, so sender and receiver each have a core and
 * a loop of their own (on a 2-core machine one loop doing both would
 * measure the scheduler). The sender times from its first frame until the
 * receiver acknowledges the last byte. The plain side is as lean as libuv
 * allows and paced like a link: frames are copied into a 4 MiB batch,
 * each 256 KiB of it written as soon as it is filled (a link starts
 * writing once that much ciphertext is ready), and the batch is refilled
 * once all of it is written (a link's drain); the receiver reads up to
 * 256 KiB at a time, as a transport does, and parses frames in place,
 * moving only a frame cut by the end of a read to the front. The TLS side
 * goes through mk_link_send and the frame callback like any user. Both
 * copy each frame once before the socket and read as much per call, so
 * the ratio is the cost of TLS, not of a different pace: a plain side
 * that wrote its whole batch in one call left the receiver idle while the
 * next was copied, and one that read into the growing frame buffer made
 * 16 KiB reads where a link makes 256 KiB ones.
 *
 * With -o connect it times handshakes instead: a child listens with -c
 * transports, each its own key, and echoes; the parent dials each three
 * times, one link at a time, each carrying one frame there and back
 * before it is closed: first speaking a protocol served with
 * MK_SERVE_NO_RESUME (a full handshake that makes no ticket), then one
 * served plainly (a full handshake that leaves a ticket), then that one
 * again (resuming the ticket's session). Both sides' CPU per link is
 * printed: a ticket costs the acceptor most.
 *
 * Plain and TLS runs alternate; the ratio is the median of the ratios of
 * each pair, with the lowest and highest beside it. Prints medians;
 * asserts nothing about time.
 *
 *   bench_link [-n runs] [-m MiB per run] [-s frame size] [-o tls|plain]
 *   bench_link -o connect [-n runs] [-c peers]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "mosaik/error.h"
#include "mosaik/frame.h"
#include "mosaik/key.h"
#include "mosaik/link.h"
#include "mosaik/transport.h"
#include "proc_cpu.h"

#define ALPN "/bench/link/1"
#define ALPN_NO_TICKET "/bench/link/once"
#define BATCH (4u << 20)
#define PIECE (256u << 10)             /* link.c's EAGER_WRITE */
#define PIECES (BATCH / PIECE + 1)
#define READ (256u << 10)              /* link_int.h's MK__READ_BUF */

typedef struct run {
    bool tls;
    size_t size;    /* payload bytes per frame */
    uint64_t total; /* payload bytes per run */
    mk_keypair recv_key, send_key;
} run;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_link: %s: %s\n", what, mk_strerror(rc));
    exit(1);
}

/* ---- receiver (child) ---------------------------------------------------- */

typedef struct receiver {
    const run *r;
    uv_loop_t loop;
    uint64_t bytes;
    bool acked;
    /* tls */
    mk_transport *t;
    /* plain */
    uv_tcp_t srv, conn;
    uint8_t *rbuf; /* `rlen` bytes not yet parsed, from its start */
    size_t rcap, rlen;
    uv_write_t wreq;
    uint8_t ack[12];
} receiver;

static void recv_tls_frame(mk_link *l, const uint8_t *f, size_t len,
                           void *data)
{
    receiver *rc = data;
    (void)f;
    rc->bytes += len;
    if (!rc->acked && rc->bytes >= rc->r->total) {
        rc->acked = true;
        if (mk_link_send(l, &rc->bytes, sizeof rc->bytes) != 0)
            die("ack", MK_EIO);
    }
}

static void recv_tls_close(mk_link *l, uint32_t code, int status, void *data)
{
    receiver *rc = data;
    (void)l;
    (void)code;
    (void)status;
    mk_transport_close(rc->t, NULL, NULL);
}

static void recv_tls_accept(mk_link *l, void *data)
{
    mk_link_set_callbacks(l, recv_tls_frame, recv_tls_close, data);
}

static void plain_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    receiver *rc = h->data;
    (void)hint;
    buf->base = (char *)rc->rbuf + rc->rlen;
    buf->len = rc->rcap - rc->rlen;
}

static void plain_closed(uv_handle_t *h)
{
    (void)h;
}

static void plain_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    receiver *rc = s->data;
    (void)buf;
    if (n < 0) {
        uv_close((uv_handle_t *)&rc->conn, plain_closed);
        uv_close((uv_handle_t *)&rc->srv, plain_closed);
        return;
    }
    size_t len = rc->rlen + (size_t)n, at = 0;
    mk__frame f;
    int r;
    while ((r = mk__frame_parse(rc->rbuf + at, len - at,
                                MK_LINK_MAX_FRAME_DEFAULT, &f)) == 1) {
        rc->bytes += f.len;
        at = (size_t)(f.data - rc->rbuf) + f.len;
    }
    if (r < 0)
        die("plain frames", r);
    memmove(rc->rbuf, rc->rbuf + at, len - at);
    rc->rlen = len - at;
    if (!rc->acked && rc->bytes >= rc->r->total) {
        rc->acked = true;
        uint8_t *a = rc->ack;
        a[0] = a[1] = a[2] = 0;
        a[3] = 8;
        memcpy(a + 4, &rc->bytes, 8);
        uv_buf_t b = uv_buf_init((char *)a, sizeof rc->ack);
        if (uv_write(&rc->wreq, s, &b, 1, NULL) != 0)
            die("plain ack", MK_EIO);
    }
}

static void plain_conn(uv_stream_t *srv, int status)
{
    receiver *rc = srv->data;
    if (status < 0)
        die("accept", status);
    uv_tcp_init(&rc->loop, &rc->conn);
    rc->conn.data = rc;
    if (uv_accept(srv, (uv_stream_t *)&rc->conn) != 0)
        die("accept", MK_EIO);
    uv_tcp_nodelay(&rc->conn, 1);
    uv_read_start((uv_stream_t *)&rc->conn, plain_alloc, plain_read);
}

static void receiver_main(const run *r, int fd)
{
    receiver rc;
    memset(&rc, 0, sizeof rc);
    rc.r = r;
    uv_loop_init(&rc.loop);
    char addr[64];
    if (r->tls) {
        mk_transport_config cfg = {.loop = &rc.loop,
                                   .key = &r->recv_key,
                                   .listen = "127.0.0.1:0"};
        char err[MK_ERRMSG_SIZE];
        int e = mk_transport_new(&cfg, &rc.t, err);
        if (e != 0)
            die(err, e);
        mk_transport_serve(rc.t, ALPN, recv_tls_accept, &rc);
        snprintf(addr, sizeof addr, "%s", mk_transport_listen_addr(rc.t));
    } else {
        struct sockaddr_in sa;
        struct sockaddr_storage ss;
        int len = sizeof ss;
        /* Room for a whole frame behind a partial one. */
        rc.rcap = 2 * (MK__FRAME_HDR + r->size);
        if (rc.rcap < READ)
            rc.rcap = READ;
        rc.rbuf = malloc(rc.rcap);
        if (!rc.rbuf)
            die("receive buffer", MK_ENOMEM);
        uv_tcp_init(&rc.loop, &rc.srv);
        rc.srv.data = &rc;
        uv_ip4_addr("127.0.0.1", 0, &sa);
        if (uv_tcp_bind(&rc.srv, (struct sockaddr *)&sa, 0) != 0 ||
            uv_listen((uv_stream_t *)&rc.srv, 8, plain_conn) != 0)
            die("listen", MK_EIO);
        uv_tcp_getsockname(&rc.srv, (struct sockaddr *)&ss, &len);
        snprintf(addr, sizeof addr, "127.0.0.1:%d",
                 ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
    if (write(fd, addr, sizeof addr) != (ssize_t)sizeof addr)
        die("pipe", MK_EIO);
    close(fd);
    uv_run(&rc.loop, UV_RUN_DEFAULT);
    free(rc.rbuf);
    uv_loop_close(&rc.loop);
}

/* ---- sender (parent) ------------------------------------------------------ */

typedef struct sender {
    const run *r;
    uv_loop_t loop;
    uint8_t *payload;
    uint64_t sent;
    uint64_t t0, t1;
    bool done;
    /* tls */
    mk_transport *t;
    mk_link *link;
    /* plain */
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreqs[PIECES];
    int inflight;
    uint8_t *batch;
    mk__frame_in in;
} sender;

static void tls_fill(mk_link *l, void *data)
{
    sender *s = data;
    while (s->sent < s->r->total && mk_link_queued(l) < BATCH) {
        int rc = mk_link_send(l, s->payload, s->r->size);
        if (rc != 0)
            die("send", rc);
        s->sent += s->r->size;
    }
}

static void tls_ack(mk_link *l, const uint8_t *f, size_t len, void *data)
{
    sender *s = data;
    (void)f;
    (void)len;
    s->t1 = uv_hrtime();
    s->done = true;
    mk_link_close(l, MK_CLOSE_SUCCESS, NULL);
}

static void tls_closed(mk_link *l, uint32_t code, int status, void *data)
{
    sender *s = data;
    (void)l;
    (void)code;
    if (!s->done)
        die("link closed early", status);
    mk_transport_close(s->t, NULL, NULL);
}

static void tls_dialed(mk_link *l, int status, void *data)
{
    sender *s = data;
    if (status != 0)
        die("dial", status);
    s->link = l;
    mk_link_set_callbacks(l, tls_ack, tls_closed, s);
    mk_link_on_drain(l, tls_fill);
    s->t0 = uv_hrtime();
    tls_fill(l, s);
}

static void plain_written(uv_write_t *req, int status);

static void plain_write(sender *s, size_t from, size_t to)
{
    uv_buf_t b = uv_buf_init((char *)s->batch + from, (unsigned)(to - from));
    if (uv_write(&s->wreqs[s->inflight++], (uv_stream_t *)&s->tcp, &b, 1,
                 plain_written) != 0)
        die("write", MK_EIO);
}

static void plain_fill(sender *s)
{
    size_t at = 0, out = 0, fsz = MK__FRAME_HDR + s->r->size;
    while (s->sent < s->r->total && at + fsz <= BATCH) {
        uint32_t n = (uint32_t)s->r->size;
        uint8_t *p = s->batch + at;
        p[0] = (uint8_t)(n >> 24);
        p[1] = (uint8_t)(n >> 16);
        p[2] = (uint8_t)(n >> 8);
        p[3] = (uint8_t)n;
        memcpy(p + 4, s->payload, s->r->size);
        at += fsz;
        s->sent += s->r->size;
        if (at - out >= PIECE) {
            plain_write(s, out, at);
            out = at;
        }
    }
    if (at > out)
        plain_write(s, out, at);
}

static void plain_written(uv_write_t *req, int status)
{
    sender *s = req->handle->data;
    if (status < 0)
        die("write", status);
    if (--s->inflight == 0)
        plain_fill(s);
}

static void sender_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    sender *s = h->data;
    size_t avail;
    (void)hint;
    buf->base = (char *)mk__frame_in_space(&s->in, &avail);
    buf->len = avail;
}

static void sender_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    sender *s = st->data;
    (void)buf;
    if (n < 0)
        die("ack", (int)n);
    mk__frame_in_commit(&s->in, (size_t)n);
    mk__frame f;
    if (mk__frame_in_next(&s->in, &f) == 1) {
        s->t1 = uv_hrtime();
        s->done = true;
        uv_close((uv_handle_t *)&s->tcp, NULL);
    }
}

static void plain_connected(uv_connect_t *req, int status)
{
    sender *s = req->handle->data;
    if (status != 0)
        die("connect", status);
    uv_tcp_nodelay(&s->tcp, 1);
    uv_read_start((uv_stream_t *)&s->tcp, sender_alloc, sender_read);
    s->t0 = uv_hrtime();
    plain_fill(s);
}

typedef struct result {
    double secs;     /* first frame sent to last byte acknowledged */
    double snd_cpu;  /* CPU seconds (user + system) of each side */
    double rcv_cpu;
} result;

static double tv_secs(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}


/* Forks the other side of a run: the child calls `child(arg, fd)` with
 * the write end of a pipe, on which it reports its addresses, and exits;
 * the parent gets its pid and the read end. */
static pid_t spawn_side(void (*child)(const void *arg, int fd),
                        const void *arg, int *rfd)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe", MK_EIO);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", MK_EIO);
    if (pid == 0) {
        close(fds[0]);
        child(arg, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    *rfd = fds[0];
    return pid;
}

static void receiver_child(const void *arg, int fd)
{
    receiver_main(arg, fd);
}

static result one_run(const run *r)
{
    int rfd;
    pid_t pid = spawn_side(receiver_child, r, &rfd);
    char addr[64];
    if (read(rfd, addr, sizeof addr) != (ssize_t)sizeof addr)
        die("receiver did not start", MK_EIO);
    close(rfd);

    double cpu0 = self_cpu();
    sender s;
    memset(&s, 0, sizeof s);
    s.r = r;
    s.payload = malloc(r->size);
    memset(s.payload, 0x5a, r->size);
    uv_loop_init(&s.loop);
    if (r->tls) {
        mk_transport_config cfg = {.loop = &s.loop, .key = &r->send_key};
        char err[MK_ERRMSG_SIZE];
        int e = mk_transport_new(&cfg, &s.t, err);
        if (e != 0)
            die(err, e);
        e = mk_transport_connect(s.t, &r->recv_key.pub, addr, ALPN,
                                 tls_dialed, &s);
        if (e != 0)
            die("connect", e);
    } else {
        struct sockaddr_in sa;
        char host[64];
        char *colon = strrchr(addr, ':');
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        uv_ip4_addr(host, atoi(colon + 1), &sa);
        s.batch = malloc(BATCH);
        mk__frame_in_init(&s.in, 64);
        uv_tcp_init(&s.loop, &s.tcp);
        s.tcp.data = &s;
        uv_tcp_connect(&s.creq, &s.tcp, (struct sockaddr *)&sa,
                       plain_connected);
    }
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid || !s.done || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0)
        die("run failed", MK_EIO);
    free(s.payload);
    free(s.batch);
    mk__frame_in_free(&s.in);
    result res = {
        .secs = (double)(s.t1 - s.t0) / 1e9,
        .snd_cpu = self_cpu() - cpu0,
        .rcv_cpu = tv_secs(&ru.ru_utime) + tv_secs(&ru.ru_stime),
    };
    return res;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- handshakes (-o connect) ----------------------------------------------- */

#define PEERS_MAX 1000

static void peer_key(mk_keypair *kp, int i)
{
    uint8_t seed[MK_SEED_LEN];
    memset(seed, 3, sizeof seed);
    seed[0] = (uint8_t)i;
    seed[1] = (uint8_t)(i >> 8);
    mk_keypair_from_seed(kp, seed);
}

static void echo_frame(mk_link *l, const uint8_t *f, size_t len, void *data)
{
    (void)data;
    if (mk_link_send(l, f, len) != 0)
        die("echo", MK_EIO);
}

static void echo_close(mk_link *l, uint32_t code, int status, void *data)
{
    (void)l;
    (void)code;
    (void)status;
    (void)data;
}

static void echo_accept(mk_link *l, void *data)
{
    mk_link_set_callbacks(l, echo_frame, echo_close, data);
}

/* The child: `peers` listening transports on one loop, until killed. */
static void echo_main(int peers, int fd)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    for (int i = 0; i < peers; i++) {
        mk_keypair kp;
        peer_key(&kp, i);
        mk_transport_config cfg = {.loop = &loop, .key = &kp,
                                   .listen = "127.0.0.1:0"};
        mk_transport *t;
        char err[MK_ERRMSG_SIZE], addr[64];
        int e = mk_transport_new(&cfg, &t, err);
        if (e != 0)
            die(err, e);
        mk_transport_serve(t, ALPN, echo_accept, NULL);
        mk_transport_serve_ex(t, ALPN_NO_TICKET, MK_SERVE_NO_RESUME,
                              echo_accept, NULL);
        snprintf(addr, sizeof addr, "%s", mk_transport_listen_addr(t));
        if (write(fd, addr, sizeof addr) != (ssize_t)sizeof addr)
            die("pipe", MK_EIO);
    }
    close(fd);
    uv_run(&loop, UV_RUN_DEFAULT);
}

typedef struct dialer {
    uv_loop_t loop;
    mk_transport *t;
    const char *alpn; /* this phase's */
    int peers, next;
    bool phase_done;
    mk_keypair keys[PEERS_MAX];
    char addrs[PEERS_MAX][64];
} dialer;

static void dial_next(dialer *d);

static void dial_echoed(mk_link *l, const uint8_t *f, size_t len, void *data)
{
    dialer *d = data;
    (void)f;
    (void)len;
    mk_link_close(l, MK_CLOSE_SUCCESS, NULL);
    dial_next(d);
}

static void dial_done(mk_link *l, int status, void *data)
{
    dialer *d = data;
    if (status != 0)
        die("dial", status);
    mk_link_set_callbacks(l, dial_echoed, echo_close, d);
    if (mk_link_send(l, "ping", 4) != 0)
        die("ping", MK_EIO);
}

static void dial_next(dialer *d)
{
    if (d->next == d->peers) {
        d->phase_done = true;
        return;
    }
    int i = d->next++;
    int e = mk_transport_connect(d->t, &d->keys[i].pub, d->addrs[i],
                                 d->alpn, dial_done, d);
    if (e != 0)
        die("connect", e);
}

static void echo_child(const void *arg, int fd)
{
    echo_main(*(const int *)arg, fd);
}

#define PHASES 3


/* One run of the PHASES kinds of link (see the head of this file), each
 * as links per second and each side's CPU seconds per link. */
static void connect_run(dialer *d, const mk_keypair *key, double rate[],
                        double cpu[], double acc_cpu[], uint64_t *resumed)
{
    int rfd;
    pid_t pid = spawn_side(echo_child, &d->peers, &rfd);
    for (int i = 0; i < d->peers; i++)
        if (read(rfd, d->addrs[i], 64) != 64)
            die("echo side did not start", MK_EIO);
    close(rfd);

    uv_loop_init(&d->loop);
    mk_transport_config cfg = {.loop = &d->loop, .key = key};
    char err[MK_ERRMSG_SIZE];
    int e = mk_transport_new(&cfg, &d->t, err);
    if (e != 0)
        die(err, e);
    for (int phase = 0; phase < PHASES; phase++) {
        d->alpn = phase == 0 ? ALPN_NO_TICKET : ALPN;
        d->next = 0;
        d->phase_done = false;
        double cpu0 = self_cpu(), acc0 = proc_cpu(pid);
        uint64_t t0 = uv_hrtime();
        dial_next(d);
        while (!d->phase_done)
            uv_run(&d->loop, UV_RUN_ONCE);
        double secs = (double)(uv_hrtime() - t0) / 1e9;
        rate[phase] = d->peers / secs;
        cpu[phase] = (self_cpu() - cpu0) / d->peers;
        acc_cpu[phase] = (proc_cpu(pid) - acc0) / d->peers;
    }
    mk_transport_stats st;
    mk_transport_stats_get(d->t, &st);
    *resumed = st.links_resumed;
    mk_transport_close(d->t, NULL, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void bench_connect(int runs, int peers, const mk_keypair *key)
{
    static dialer d;
    d.peers = peers;
    for (int i = 0; i < peers; i++)
        peer_key(&d.keys[i], i);
    double rate[PHASES][99], cpu[PHASES][99], acc[PHASES][99];
    uint64_t resumed = 0;
    for (int k = 0; k < runs; k++) {
        double r[PHASES], c[PHASES], a[PHASES];
        connect_run(&d, key, r, c, a, &resumed);
        for (int ph = 0; ph < PHASES; ph++) {
            rate[ph][k] = r[ph];
            cpu[ph][k] = c[ph];
            acc[ph][k] = a[ph];
        }
    }
    printf("handshakes on loopback, %d peers dialed three times, one link "
           "at a time, median of %d runs\n",
           peers, runs);
    printf("%-15s %10s %16s %18s\n", "kind", "links/s", "dialer cpu/link",
           "acceptor cpu/link");
    const char *names[PHASES] = {"full, no ticket", "full + ticket",
                                 "resumed"};
    double med[PHASES];
    for (int ph = 0; ph < PHASES; ph++) {
        qsort(rate[ph], (size_t)runs, sizeof rate[ph][0], cmp_double);
        qsort(cpu[ph], (size_t)runs, sizeof cpu[ph][0], cmp_double);
        qsort(acc[ph], (size_t)runs, sizeof acc[ph][0], cmp_double);
        med[ph] = rate[ph][runs / 2];
        printf("%-15s %10.0f %14.0fus %16.0fus\n", names[ph], med[ph],
               cpu[ph][runs / 2] * 1e6, acc[ph][runs / 2] * 1e6);
    }
    printf("%-15s %10.2f   (resumed / full + ticket; links resumed in the "
           "last run: %llu of %d)\n",
           "ratio", med[2] / med[1], (unsigned long long)resumed, peers);
}

int main(int argc, char **argv)
{
    int runs = 5;
    double mib = 0; /* 0: per size default */
    size_t only_size = 0;
    int only_mode = -1; /* 0 plain, 1 tls, 2 handshakes */
    int peers = 200;
    int opt;
    while ((opt = getopt(argc, argv, "n:m:s:o:c:")) != -1) {
        if (opt == 'n')
            runs = atoi(optarg);
        else if (opt == 'm')
            mib = atof(optarg);
        else if (opt == 's')
            only_size = (size_t)atol(optarg);
        else if (opt == 'o')
            only_mode = strcmp(optarg, "connect") == 0 ? 2
                                                       : strcmp(optarg, "tls") == 0;
        else if (opt == 'c')
            peers = atoi(optarg);
        else {
            fprintf(stderr, "usage: bench_link [-n runs] [-m MiB per run] "
                            "[-s frame size] [-o tls|plain|connect] "
                            "[-c peers]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 99)
        runs = 5;

    run r;
    memset(&r, 0, sizeof r);
    uint8_t seed[MK_SEED_LEN];
    memset(seed, 1, sizeof seed);
    mk_keypair_from_seed(&r.recv_key, seed);
    memset(seed, 2, sizeof seed);
    mk_keypair_from_seed(&r.send_key, seed);
    if (only_mode == 2) {
        if (peers < 1 || peers > PEERS_MAX)
            peers = 200;
        bench_connect(runs, peers, &r.send_key);
        return 0;
    }

    size_t sizes[] = {64, 64 * 1024};
    const double default_mib[] = {128, 1024};
    size_t nsizes = 2;
    if (only_size) {
        sizes[0] = only_size;
        nsizes = 1;
    }
    printf("link throughput on loopback, median of %d runs "
           "(MB/s = 10^6 payload bytes/s)\n",
           runs);
    printf("%-9s %-6s %10s %14s %12s %12s\n", "frame", "mode", "MB/s",
           "frames/s", "snd cpu/GB", "rcv cpu/GB");
    for (size_t i = 0; i < nsizes; i++) {
        r.size = sizes[i];
        r.total = (uint64_t)((mib > 0 ? mib : default_mib[i]) * 1048576.0);
        r.total -= r.total % r.size;
        /* Plain and TLS runs alternate, so a machine that slows down for
         * a while slows both; the ratio is the median of each pair's. */
        double secs[2][99], scpu[2][99], rcpu[2][99], ratio[99];
        for (int k = 0; k < runs; k++) {
            for (int tls = 0; tls < 2; tls++) {
                if (only_mode >= 0 && tls != only_mode)
                    continue;
                r.tls = tls != 0;
                result res = one_run(&r);
                secs[tls][k] = res.secs;
                scpu[tls][k] = res.snd_cpu;
                rcpu[tls][k] = res.rcv_cpu;
            }
            ratio[k] = only_mode < 0 ? secs[0][k] / secs[1][k] : 0;
        }
        for (int tls = 0; tls < 2; tls++) {
            if (only_mode >= 0 && tls != only_mode)
                continue;
            qsort(secs[tls], (size_t)runs, sizeof secs[tls][0], cmp_double);
            qsort(scpu[tls], (size_t)runs, sizeof scpu[tls][0], cmp_double);
            qsort(rcpu[tls], (size_t)runs, sizeof rcpu[tls][0], cmp_double);
            double med = secs[tls][runs / 2];
            double gb = (double)r.total / 1e9;
            /* CPU seconds per GB moved: steadier than wall time on a
             * shared machine, and it says which side is the bottleneck. */
            printf("%-9zu %-6s %10.1f %14.0f %11.2fs %11.2fs\n", r.size,
                   tls ? "tls" : "plain", (double)r.total / med / 1e6,
                   (double)(r.total / r.size) / med, scpu[tls][runs / 2] / gb,
                   rcpu[tls][runs / 2] / gb);
        }
        if (only_mode < 0) {
            qsort(ratio, (size_t)runs, sizeof ratio[0], cmp_double);
            printf("%-9zu %-6s %10.2f   (median of %d paired runs; "
                   "lowest %.2f, highest %.2f)\n",
                   r.size, "ratio", ratio[runs / 2], runs, ratio[0],
                   ratio[runs - 1]);
        }
        fflush(stdout);
    }
    return 0;
}
