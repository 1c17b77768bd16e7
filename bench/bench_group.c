/* Group benchmark: a 3-member committee on loopback, through our stack
 * (mk_group: envelopes, exactly-once table, batching, Raft messages on
 * authenticated links) and through raw libraft over its plain TCP
 * transport (raft_uv_tcp_init), in the same run, with the same state
 * machine and data dirs on the same disk.
 *
 * Every member is a process of its own (this binary in a member role), so
 * each has a loop and the scheduler shares the two cores as it would in
 * production. The driver tells the leader what to run over its stdin and
 * reads figures from its stdout; the workload runs inside the leader, the
 * same way for both stacks:
 *   - throughput: N commands of 64 B and of 1 KiB kept pipelined up to a
 *     window (ours: the handle queues, the group proposes at most
 *     max_in_flight entries, each a batch; raw: 256 single-entry raft_apply in
 *     flight, the probe's best unbatched setting);
 *   - latency: commands one at a time, p50/p99/max;
 *   - failover: SIGKILL the leader; the survivors try to commit; the time
 *     to the first commit;
 *   - replica lag (ours only): a replica in another process; for each
 *     command, the instant it is visible there minus the instant the
 *     leader applied it (CLOCK_MONOTONIC is shared by the processes);
 *   - metrics cost (ours only): rounds of two runs, one on a committee
 *     keeping metrics (the default, as above) and one on a committee
 *     whose members run with mk_node_config.metrics_off, each started
 *     fresh for its run, the order alternating from round to round, so
 *     both sides see the same machine. Each run: the 64 B throughput and
 *     latency workloads. The ratios on/off are the medians of the rounds'
 *     own ratios; next to them, the CPU time the three members used per
 *     pipelined command, which other processes taking the cores move
 *     less than wall-clock figures.
 * Figures are printed, never asserted.
 *
 *   bench_group [--dir DIR] [--n N] [--lat N] [--election MS] [--rounds R]
 *     --rounds  metrics on/off rounds (default 5; 0 skips them)
 *   BENCH_SCRAPE_MS=N bench_group …   the same, each member of our stack
 *                                     writing its /metrics text every N ms
 *   BENCH_METRICS_AA=1 bench_group …  the metrics phase with metrics on
 *                                     on both sides: its noise floor
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <raft.h>
#include <raft/uv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group.h"
#include "mosaik/metrics.h"
#include "mosaik/node.h"

#define LAG_MAX 20000
#define LAG_N 2000 /* commands in the lag run */
#define BASE_PORT_ENV "BENCH_GROUP_PORT"
/* Set (milliseconds): every member of our stack writes its whole metrics
 * registry as Prometheus text that often, as a scraper would make it, so
 * two runs give the figures with the registry read and without. */
#define SCRAPE_ENV "BENCH_SCRAPE_MS"
/* Set: the metrics cost phase runs both sides with metrics on, which
 * shows how far apart two identical sides land on this machine. */
#define METRICS_AA_ENV "BENCH_METRICS_AA"

/* ---- the state machine both stacks run ---------------------------------- */

typedef struct bfsm {
    uint64_t count, hash;
    int64_t *lag_at; /* apply instant per seq while measuring lag */
    size_t lag_n;
} bfsm;

static void bfsm_apply(bfsm *b, const uint8_t *p, size_t len)
{
    /* FNV-1a over the command: some work per byte, as a real machine. */
    uint64_t h = b->hash ^ 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    b->hash = h;
    b->count++;
    if (b->lag_at && len >= 9 && p[0] == 'L') {
        uint64_t seq = 0;
        memcpy(&seq, p + 1, 8);
        if (seq < LAG_MAX)
            b->lag_at[seq] = mk_mono_us();
    }
}

static int mk_apply(struct mk_fsm *f, const uint8_t *cmd, size_t len,
                    mk_buf *result)
{
    bfsm_apply(f->data, cmd, len);
    return 0;
}

static int mk_snap(struct mk_fsm *f, mk_buf *out)
{
    bfsm *b = f->data;
    mk_put_varint(out, b->count);
    mk_put_varint(out, b->hash);
    return out->err;
}

static int mk_restore(struct mk_fsm *f, const uint8_t *s, size_t len)
{
    bfsm *b = f->data;
    mk_reader r;
    mk_reader_init(&r, s, len);
    uint64_t c = mk_get_varint(&r), h = mk_get_varint(&r);
    if (mk_reader_done(&r) != 0)
        return MK_EDECODE;
    b->count = c;
    b->hash = h;
    return 0;
}

static int raw_apply(struct raft_fsm *f, const struct raft_buffer *buf,
                     void **result)
{
    *result = NULL;
    bfsm_apply(f->data, buf->base, buf->len);
    return 0;
}

static int raw_snap(struct raft_fsm *f, struct raft_buffer *bufs[],
                    unsigned *n)
{
    bfsm *b = f->data;
    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].base = raft_malloc(16);
    (*bufs)[0].len = 16;
    memcpy((*bufs)[0].base, &b->count, 8);
    memcpy((char *)(*bufs)[0].base + 8, &b->hash, 8);
    *n = 1;
    return 0;
}

static int raw_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
    bfsm *b = f->data;
    if (buf->len != 16)
        return RAFT_MALFORMED;
    memcpy(&b->count, buf->base, 8);
    memcpy(&b->hash, (char *)buf->base + 8, 8);
    raft_free(buf->base);
    return 0;
}

/* ---- a member --------------------------------------------------------------- */

typedef struct member member;

typedef struct job {
    member *m;
    size_t size;
    uint64_t n, sent, done, window, failed;
    int64_t t0, t_sent;
    int64_t *lat; /* one-at-a-time: per command */
    bool one_at_a_time, lag;
} job;

struct member {
    uv_loop_t loop;
    bool raw;
    int index;
    bfsm state;
    /* ours */
    mk_node *node;
    mk_group *g;
    struct mk_fsm fsm;
    mk_replica *replica;
    /* raw */
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport tcp;
    struct raft_fsm rfsm;
    /* control */
    uv_pipe_t in;
    char buf[4096];
    size_t len;
    uv_timer_t poll;
    uv_timer_t scrape; /* BENCH_SCRAPE_MS */
    size_t scraped_bytes;
    bool said_leader, probing, probed, quitting;
    job job;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static bool is_leader(member *m)
{
    if (m->raw)
        return raft_state(&m->raft) == RAFT_LEADER;
    mk_group_status st;
    mk_group_status_get(m->g, &st);
    return st.is_leader;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void job_submit(member *m);

static void job_finished(member *m)
{
    job *j = &m->job;
    int64_t el = mk_mono_us() - j->t0;
    if (j->lag) {
        say("lagdone %" PRIu64, j->done);
    } else if (j->one_at_a_time) {
        qsort(j->lat, j->done, sizeof *j->lat, cmp64);
        say("lat %zu %" PRId64 " %" PRId64 " %" PRId64 " %" PRIu64, j->size,
            j->lat[j->done / 2], j->lat[j->done * 99 / 100],
            j->lat[j->done - 1], j->failed);
    } else {
        say("tput %zu %" PRIu64 " %" PRId64 " %" PRIu64, j->size, j->done, el,
            j->failed);
    }
    free(j->lat);
    j->lat = NULL;
    j->n = 0;
}

static void one_done(member *m, int status)
{
    job *j = &m->job;
    if (status != 0)
        j->failed++;
    if (j->one_at_a_time && j->lat && status == 0)
        j->lat[j->done] = mk_mono_us() - j->t_sent;
    if (status == 0 || j->one_at_a_time)
        j->done++;
    else
        j->sent--; /* resend it */
    if (j->done == j->n)
        job_finished(m);
    else
        job_submit(m);
}

static void on_mk_done(int status, uint64_t applied, const uint8_t *r,
                       size_t len, void *data)
{
    one_done(data, status);
}

typedef struct raw_req {
    struct raft_apply req;
    member *m;
} raw_req;

static void on_raw_done(struct raft_apply *req, int status, void *result)
{
    raw_req *r = req->data;
    member *m = r->m;
    free(r);
    one_done(m, status);
}

static void fill(uint8_t *p, size_t size, uint64_t seq, bool lag)
{
    memset(p, 'x', size);
    if (lag && size >= 9) {
        p[0] = 'L';
        memcpy(p + 1, &seq, 8);
    }
}

static void job_submit(member *m)
{
    job *j = &m->job;
    while (j->sent < j->n && j->sent - j->done < j->window) {
        uint64_t seq = j->sent++;
        j->t_sent = mk_mono_us();
        if (m->raw) {
            /* libraft needs lengths that are multiples of 8 (raft-probe
             * hazard 1); 64 and 1024 already are. */
            size_t sz = (j->size + 7) & ~(size_t)7;
            raw_req *r = malloc(sizeof *r);
            struct raft_buffer b = {raft_malloc(sz), sz};
            fill(b.base, sz, seq, j->lag);
            r->m = m;
            r->req.data = r;
            if (raft_apply(&m->raft, &r->req, &b, 1, on_raw_done) != 0) {
                raft_free(b.base);
                free(r);
                j->sent--;
                j->failed++;
                return; /* not leader: the poll timer retries */
            }
        } else {
            uint8_t cmd[2048];
            fill(cmd, j->size, seq, j->lag);
            if (mk_group_execute(m->g, cmd, j->size, 30000, on_mk_done, m) !=
                0) {
                j->sent--;
                return;
            }
        }
    }
}

static void job_start(member *m, size_t size, uint64_t n, uint64_t window,
                      bool one, bool lag)
{
    job *j = &m->job;
    memset(j, 0, sizeof *j);
    j->m = m;
    j->size = size;
    j->n = n;
    j->window = one ? 1 : window;
    j->one_at_a_time = one;
    j->lag = lag;
    if (one)
        j->lat = calloc(n, sizeof *j->lat);
    j->t0 = mk_mono_us();
    job_submit(m);
}

/* Failover: try to commit until it works, print when. */
static void on_probe_mk(int status, uint64_t applied, const uint8_t *r,
                        size_t len, void *data)
{
    member *m = data;
    if (status == 0) {
        m->probed = true;
        say("committed %" PRId64, mk_mono_us());
        return;
    }
    uint8_t cmd[64];
    fill(cmd, sizeof cmd, 0, false);
    mk_group_execute(m->g, cmd, sizeof cmd, 30000, on_probe_mk, m);
}

static void on_probe_raw(struct raft_apply *req, int status, void *result)
{
    raw_req *r = req->data;
    member *m = r->m;
    free(r);
    if (status == 0 && !m->probed) {
        m->probed = true;
        say("committed %" PRId64, mk_mono_us());
    }
    m->probing = !m->probed;
}

static void on_poll(uv_timer_t *t)
{
    member *m = t->data;
    if (m->quitting)
        return;
    bool lead = is_leader(m);
    if (lead && !m->said_leader)
        say("leader %d", m->index);
    m->said_leader = lead;
    if (m->raw && m->probing && lead && !m->probed) {
        m->probing = false; /* one attempt in flight at a time */
        raw_req *r = malloc(sizeof *r);
        struct raft_buffer b = {raft_malloc(64), 64};
        fill(b.base, 64, 0, false);
        r->m = m;
        r->req.data = r;
        if (raft_apply(&m->raft, &r->req, &b, 1, on_probe_raw) != 0) {
            raft_free(b.base);
            free(r);
            m->probing = true;
        }
    }
    if (m->raw && m->job.n && m->job.done < m->job.n && lead)
        job_submit(m);
}

static void on_closed_all(void *data)
{
    member *m = data;
    uv_close((uv_handle_t *)&m->in, NULL);
    uv_close((uv_handle_t *)&m->poll, NULL);
}

static void on_group_closed(void *data)
{
    member *m = data;
    mk_node_close(m->node, on_closed_all, m);
}

static void on_raw_closed(struct raft *r)
{
    member *m = r->data;
    raft_uv_close(&m->io);
    raft_uv_tcp_close(&m->tcp);
    on_closed_all(m);
}

static void on_replica_closed(void *data)
{
    member *m = data;
    mk_node_close(m->node, on_closed_all, m);
}

static void quit(member *m)
{
    if (m->quitting)
        return;
    m->quitting = true;
    uv_read_stop((uv_stream_t *)&m->in);
    if (m->replica)
        mk_replica_close(m->replica, on_replica_closed, m);
    else if (m->raw)
        raft_close(&m->raft, on_raw_closed);
    else
        mk_group_close(m->g, on_group_closed, m);
}

static void command(member *m, char *line)
{
    char what[16];
    unsigned long long a = 0, b = 0, c = 0;
    int n = sscanf(line, "%15s %llu %llu %llu", what, &a, &b, &c);
    if (n < 1)
        return;
    if (strcmp(what, "tput") == 0 && n == 4)
        job_start(m, a, b, c, false, false);
    else if (strcmp(what, "lat") == 0 && n == 3)
        job_start(m, a, b, 1, true, false);
    else if (strcmp(what, "lag") == 0 && n == 2)
        job_start(m, 64, a, 1, true, true);
    else if (strcmp(what, "probe") == 0) {
        m->probing = true;
        if (!m->raw) {
            uint8_t cmd[64];
            fill(cmd, sizeof cmd, 0, false);
            mk_group_execute(m->g, cmd, sizeof cmd, 30000, on_probe_mk, m);
        }
    } else if (strcmp(what, "dump") == 0) {
        /* Apply instants of the lag run, one line. */
        size_t max = LAG_N < m->state.lag_n ? LAG_N : m->state.lag_n;
        printf("lagtimes");
        for (size_t i = 0; i < max; i++)
            printf(" %" PRId64, m->state.lag_at ? m->state.lag_at[i] : 0);
        putchar('\n');
        fflush(stdout);
    } else if (strcmp(what, "cpu") == 0) {
        /* This process's CPU time so far, user and system. */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        say("cpu %lld",
            (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    } else if (strcmp(what, "quit") == 0) {
        quit(m);
    }
}

static void on_in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    member *m = h->data;
    b->base = m->buf + m->len;
    b->len = sizeof m->buf - m->len - 1;
}

static void on_in(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    member *m = s->data;
    if (n < 0) {
        quit(m);
        return;
    }
    m->len += (size_t)n;
    char *nl;
    while ((nl = memchr(m->buf, '\n', m->len))) {
        *nl = '\0';
        command(m, m->buf);
        size_t used = (size_t)(nl - m->buf) + 1;
        memmove(m->buf, m->buf + used, m->len - used);
        m->len -= used;
    }
}

typedef struct member_args {
    bool raw, replica;
    bool metrics_off; /* --no-metrics: mk_node_config.metrics_off */
    int index;
    const char *dir;
    int port[3];
    mk_keypair keys[3];
    uint32_t election;
} member_args;

static void on_scrape(uv_timer_t *t)
{
    member *m = t->data;
    mk_buf b;
    mk_buf_init(&b);
    mk_metrics_write_text(mk_node_metrics(m->node), &b);
    m->scraped_bytes += b.len;
    mk_buf_free(&b);
}

static int run_member(const member_args *a)
{
    member *m = calloc(1, sizeof *m);
    char err[MK_ERRMSG_SIZE], path[1024];
    m->raw = a->raw;
    m->index = a->index;
    m->state.lag_at = calloc(LAG_MAX, sizeof *m->state.lag_at);
    m->state.lag_n = LAG_MAX;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&m->loop);
    snprintf(path, sizeof path, "%s/m%d", a->dir, a->index);
    mkdir(a->dir, 0700);
    mkdir(path, 0700);
    if (a->raw) {
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", a->port[a->index]);
        m->rfsm = (struct raft_fsm){.version = 1, .data = &m->state,
                                    .apply = raw_apply, .snapshot = raw_snap,
                                    .restore = raw_restore};
        if (raft_uv_tcp_init(&m->tcp, &m->loop) != 0 ||
            raft_uv_init(&m->io, &m->loop, path, &m->tcp) != 0 ||
            raft_init(&m->raft, &m->io, &m->rfsm, (raft_id)a->index + 1,
                      addr) != 0) {
            fprintf(stderr, "raw init failed\n");
            return 1;
        }
        m->raft.data = m;
        raft_set_election_timeout(&m->raft, a->election);
        raft_set_heartbeat_timeout(&m->raft, a->election / 10);
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (int i = 0; i < 3; i++) {
            snprintf(addr, sizeof addr, "127.0.0.1:%d", a->port[i]);
            raft_configuration_add(&conf, (raft_id)i + 1, addr, RAFT_VOTER);
        }
        raft_bootstrap(&m->raft, &conf);
        raft_configuration_close(&conf);
        if (raft_start(&m->raft) != 0) {
            fprintf(stderr, "raw start: %s\n", raft_errmsg(&m->raft));
            return 1;
        }
    } else {
        char listen[64], boot[160], hex[65];
        const char *bp[1];
        snprintf(listen, sizeof listen, "127.0.0.1:%d", a->port[a->index]);
        snprintf(boot, sizeof boot, "%s@127.0.0.1:%d",
                 mk_id_hex(&a->keys[0].pub, hex), a->port[0]);
        bp[0] = boot;
        mk_keypair kp;
        if (a->replica)
            mk_keypair_generate(&kp);
        else
            kp = a->keys[a->index];
        mk_node_config nc = {.loop = &m->loop, .key = &kp,
                             .listen = a->replica ? NULL : listen,
                             .bootstrap = bp,
                             .n_bootstrap = a->index == 0 ? 0 : 1,
                             .metrics_off = a->metrics_off};
        if (a->replica)
            nc.n_bootstrap = 1;
        if (mk_node_new(&nc, &m->node, err) != 0) {
            fprintf(stderr, "node: %s\n", err);
            return 1;
        }
        mk_node_start(m->node);
        m->fsm = (struct mk_fsm){.version = MK_FSM_VERSION,
                                 .data = &m->state, .apply = mk_apply,
                                 .snapshot = mk_snap, .restore = mk_restore};
        mk_id_from_str(&m->fsm.signature, "bench.group/1");
        mk_peer_id voters[3] = {a->keys[0].pub, a->keys[1].pub,
                                a->keys[2].pub};
        mk_group_config gc = {.node = m->node, .fsm = &m->fsm,
                              .voters = voters, .n_voters = 3,
                              .data_dir = path,
                              .params = {.election_timeout_ms = a->election,
                                         .heartbeat_ms = a->election / 10}};
        mk_id_from_str(&gc.root, "bench");
        if (a->replica) {
            mk_replica_config rc = {.node = m->node, .fsm = &m->fsm};
            mk_group_id_of(&gc, &rc.group);
            if (mk_replica_open(&rc, &m->replica) != 0)
                return 1;
        } else if (mk_group_open(&gc, &m->g, err) != 0) {
            fprintf(stderr, "join: %s\n", err);
            return 1;
        }
    }
    uv_pipe_init(&m->loop, &m->in, 0);
    m->in.data = m;
    uv_pipe_open(&m->in, 0);
    uv_read_start((uv_stream_t *)&m->in, on_in_alloc, on_in);
    uv_timer_init(&m->loop, &m->poll);
    m->poll.data = m;
    if (!a->replica)
        uv_timer_start(&m->poll, on_poll, 1, 1);
    const char *scrape = getenv(SCRAPE_ENV);
    uv_timer_init(&m->loop, &m->scrape);
    m->scrape.data = m;
    if (!a->raw && scrape && atoi(scrape) > 0)
        uv_timer_start(&m->scrape, on_scrape, (uint64_t)atoi(scrape),
                       (uint64_t)atoi(scrape));
    say("ready");
    uv_run(&m->loop, UV_RUN_DEFAULT);
    uv_loop_close(&m->loop);
    free(m->state.lag_at);
    free(m);
    return 0;
}

/* ---- the driver ---------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int in, out;
    char buf[1 << 20];
    size_t len;
} child;

/* kids[0..2]: the committee running; kids[3]: the replica. */
#define NKIDS 4
static child kids[NKIDS];
static const char *self_exe;

static void spawn(child *k, char *const argv[])
{
    int in[2], out[2];
    if (pipe(in) || pipe(out)) {
        perror("pipe");
        exit(1);
    }
    k->pid = fork();
    if (k->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execv(self_exe, argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    k->in = in[1];
    k->out = out[0];
    k->len = 0;
}

static void send_line(child *k, const char *s)
{
    if (k->pid <= 0)
        return;
    if (write(k->in, s, strlen(s)) < 0 || write(k->in, "\n", 1) < 0)
        perror("write");
}

/* The next line from any of `ks` (NULL: all live children) that starts
 * with `prefix`, or NULL after `timeout_ms`. *who: which child. */
static char *read_line(const char *prefix, int timeout_ms, int *who)
{
    static char line[1 << 20];
    int64_t end = mk_mono_ms() + timeout_ms;
    for (;;) {
        for (int i = 0; i < NKIDS; i++) {
            child *k = &kids[i];
            char *nl;
            while (k->pid > 0 && (nl = memchr(k->buf, '\n', k->len))) {
                size_t l = (size_t)(nl - k->buf);
                memcpy(line, k->buf, l);
                line[l] = '\0';
                memmove(k->buf, nl + 1, k->len - l - 1);
                k->len -= l + 1;
                if (strncmp(line, prefix, strlen(prefix)) == 0) {
                    if (who)
                        *who = i;
                    return line;
                }
            }
        }
        int64_t left = end - mk_mono_ms();
        if (left <= 0)
            return NULL;
        struct pollfd p[NKIDS];
        int np = 0, map[NKIDS];
        for (int i = 0; i < NKIDS; i++)
            if (kids[i].pid > 0) {
                p[np].fd = kids[i].out;
                p[np].events = POLLIN;
                map[np++] = i;
            }
        if (poll(p, (nfds_t)np, (int)(left > 100 ? 100 : left)) <= 0)
            continue;
        for (int j = 0; j < np; j++) {
            child *k = &kids[map[j]];
            if (!(p[j].revents & (POLLIN | POLLHUP)))
                continue;
            ssize_t r = read(k->out, k->buf + k->len, sizeof k->buf - k->len);
            if (r > 0)
                k->len += (size_t)r;
        }
    }
}

static void reap(child *k, bool hard)
{
    if (k->pid <= 0)
        return;
    if (hard)
        kill(k->pid, SIGKILL);
    else
        send_line(k, "quit");
    int st;
    for (int i = 0; i < 500 && waitpid(k->pid, &st, WNOHANG) == 0; i++)
        usleep(10000);
    if (waitpid(k->pid, &st, WNOHANG) == 0) {
        kill(k->pid, SIGKILL);
        waitpid(k->pid, &st, 0);
    }
    close(k->in);
    close(k->out);
    k->pid = 0;
}

typedef struct figures {
    double tput64, tput1k;
    double p50_64, p99_64, max_64, p50_1k, p99_1k, max_1k;
    double failover_ms;
    double lag_p50, lag_p99;
    bool have_lag;
} figures;

static int pick_port(void)
{
    const char *env = getenv(BASE_PORT_ENV);
    if (env)
        return atoi(env);
    srand((unsigned)getpid());
    return 10000 + rand() % 22000; /* below the ephemeral range */
}

typedef struct committee {
    char sub[900], ports[64], keylist[3200], el[16];
    int first;  /* its members are kids[first..first+2] */
    int leader; /* the kid that leads */
} committee;

/* Starts three members (fresh keys and data under `sub`, ports base to
 * base+2) in kids[first..first+2] and waits for one of them to lead. */
static void start_committee(committee *c, bool raw, bool metrics_off,
                            const char *sub, int base, uint32_t election,
                            int first)
{
    char idx[8];
    snprintf(c->sub, sizeof c->sub, "%s", sub);
    snprintf(c->ports, sizeof c->ports, "%d,%d,%d", base, base + 1,
             base + 2);
    snprintf(c->el, sizeof c->el, "%u", election);
    c->first = first;
    /* A fresh committee every run: an old log would keep its old voters. */
    char rm[1000];
    snprintf(rm, sizeof rm, "rm -rf '%s'", sub);
    if (system(rm) != 0)
        fprintf(stderr, "could not clear %s\n", sub);
    mkdir(sub, 0700);
    char keys[3][1024];
    for (int i = 0; i < 3; i++) {
        snprintf(keys[i], sizeof keys[i], "%s/k%d.pem", sub, i);
        mk_keypair kp;
        unlink(keys[i]);
        mk_keypair_generate(&kp);
        mk_keypair_save(&kp, keys[i], NULL);
    }
    snprintf(c->keylist, sizeof c->keylist, "%s,%s,%s", keys[0], keys[1],
             keys[2]);
    for (int i = 0; i < 3; i++) {
        snprintf(idx, sizeof idx, "%d", i);
        char *argv[] = {(char *)self_exe, "--member", raw ? "raw" : "mk",
                        "--index", idx, "--dir", c->sub, "--ports", c->ports,
                        "--keys", c->keylist, "--election", c->el,
                        metrics_off ? "--no-metrics" : NULL, NULL};
        spawn(&kids[first + i], argv);
        if (!read_line("ready", 10000, NULL)) {
            fprintf(stderr, "member %d did not start\n", i);
            exit(1);
        }
    }
    /* Another committee's members may announce leaders too. */
    int64_t end = mk_mono_ms() + 20000;
    c->leader = -1;
    while (c->leader < first || c->leader > first + 2) {
        int64_t left = end - mk_mono_ms();
        if (left <= 0 || !read_line("leader", (int)left, &c->leader)) {
            fprintf(stderr, "no leader\n");
            exit(1);
        }
    }
}

static void run_stack(bool raw, const char *dir, uint64_t n, uint64_t nlat,
                      uint32_t election, figures *f)
{
    char sub[900], idx[8];
    snprintf(sub, sizeof sub, "%s/%s", dir, raw ? "raw" : "mk");
    committee c;
    start_committee(&c, raw, false, sub, pick_port(), election, 0);
    int leader = c.leader;
    char *l;
    child *lk = &kids[leader];
    char cmd[128];
    unsigned long long sz, ops, us, failed;
    long long p50, p99, mx;
    /* Warm up (segments allocated, links up), then measure. */
    send_line(lk, "tput 64 2000 256");
    read_line("tput", 60000, NULL);
    uint64_t window = raw ? 256 : 1024;
    for (int k = 0; k < 2; k++) {
        size_t size = k ? 1024 : 64;
        snprintf(cmd, sizeof cmd, "tput %zu %" PRIu64 " %" PRIu64, size, n,
                 window);
        send_line(lk, cmd);
        l = read_line("tput", 120000, NULL);
        if (l && sscanf(l, "tput %llu %llu %llu %llu", &sz, &ops, &us,
                        &failed) == 4) {
            double t = (double)ops * 1e6 / (double)us;
            if (k)
                f->tput1k = t;
            else
                f->tput64 = t;
        }
        snprintf(cmd, sizeof cmd, "lat %zu %" PRIu64, size, nlat);
        send_line(lk, cmd);
        l = read_line("lat", 120000, NULL);
        if (l && sscanf(l, "lat %llu %lld %lld %lld %llu", &sz, &p50, &p99,
                        &mx, &failed) == 5) {
            if (k) {
                f->p50_1k = (double)p50;
                f->p99_1k = (double)p99;
                f->max_1k = (double)mx;
            } else {
                f->p50_64 = (double)p50;
                f->p99_64 = (double)p99;
                f->max_64 = (double)mx;
            }
        }
    }
    if (!raw) {
        /* Replica lag: a replica in its own process follows the group. */
        snprintf(idx, sizeof idx, "3");
        char *argv[] = {(char *)self_exe, "--member", "mk", "--replica",
                        "--index", idx, "--dir", c.sub, "--ports", c.ports,
                        "--keys", c.keylist, "--election", c.el, NULL};
        spawn(&kids[3], argv);
        read_line("ready", 10000, NULL);
        usleep(1500000); /* subscribed and caught up */
        snprintf(cmd, sizeof cmd, "lag %d", LAG_N);
        send_line(lk, cmd);
        read_line("lagdone", 120000, NULL);
        usleep(300000);
        send_line(lk, "dump");
        char *a = read_line("lagtimes", 10000, NULL);
        int64_t *at = calloc(LAG_N, sizeof *at);
        int64_t *lags = calloc(LAG_N, sizeof *lags);
        size_t nl = 0;
        if (a) {
            char *p = a + 8;
            for (size_t i = 0; i < LAG_N; i++)
                at[i] = strtoll(p, &p, 10);
        }
        send_line(&kids[3], "dump");
        char *b = read_line("lagtimes", 10000, NULL);
        if (a && b) {
            char *p = b + 8;
            for (size_t i = 0; i < LAG_N; i++) {
                int64_t seen = strtoll(p, &p, 10);
                if (seen && at[i])
                    lags[nl++] = seen - at[i];
            }
        }
        if (nl) {
            qsort(lags, nl, sizeof *lags, cmp64);
            f->lag_p50 = (double)lags[nl / 2];
            f->lag_p99 = (double)lags[nl * 99 / 100];
            f->have_lag = true;
        }
        free(at);
        free(lags);
        reap(&kids[3], false);
    }
    /* Failover: kill -9 the leader; the others try to commit. */
    int64_t t_kill = mk_mono_us();
    reap(lk, true);
    for (int i = 0; i < 3; i++)
        if (i != leader)
            send_line(&kids[i], "probe");
    l = read_line("committed", 60000, NULL);
    long long t_commit;
    if (l && sscanf(l, "committed %lld", &t_commit) == 1)
        f->failover_ms = (double)(t_commit - t_kill) / 1000.0;
    for (int i = 0; i < 3; i++)
        reap(&kids[i], false);
}

/* One workload on the leader `k`: commands/s, or the p50 in us; 0 when
 * it did not answer. */
static double run_tput(child *k, size_t size, uint64_t n, uint64_t window)
{
    char cmd[128];
    unsigned long long sz, ops, us, failed;
    snprintf(cmd, sizeof cmd, "tput %zu %" PRIu64 " %" PRIu64, size, n,
             window);
    send_line(k, cmd);
    char *l = read_line("tput", 120000, NULL);
    if (l && sscanf(l, "tput %llu %llu %llu %llu", &sz, &ops, &us,
                    &failed) == 4 && us > 0)
        return (double)ops * 1e6 / (double)us;
    return 0;
}

static double run_lat_p50(child *k, size_t size, uint64_t n)
{
    char cmd[128];
    unsigned long long sz, failed;
    long long p50, p99, mx;
    snprintf(cmd, sizeof cmd, "lat %zu %" PRIu64, size, n);
    send_line(k, cmd);
    char *l = read_line("lat", 120000, NULL);
    if (l && sscanf(l, "lat %llu %lld %lld %lld %llu", &sz, &p50, &p99, &mx,
                    &failed) == 5)
        return (double)p50;
    return 0;
}

/* The CPU time the three members of a committee have used, in us. */
static double committee_cpu(const committee *c)
{
    double sum = 0;
    for (int i = 0; i < 3; i++) {
        long long us = 0;
        send_line(&kids[c->first + i], "cpu");
        char *l = read_line("cpu", 10000, NULL);
        if (l && sscanf(l, "cpu %lld", &us) == 1)
            sum += (double)us;
    }
    return sum;
}

static double median_of(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n ? v[n / 2] : 0;
}

#define MAX_ROUNDS 15

typedef struct cost {
    int rounds;
    uint64_t n, nlat;
    double tput_on, tput_off, tput_ratio; /* 64 B commands/s */
    double p50_on, p50_off, p50_ratio;    /* 64 B one at a time, us */
    double tput_lo, tput_hi, p50_lo, p50_hi; /* the rounds' ratios */
    /* CPU time of the three members per pipelined command, us: the
     * work, which other processes on the machine hardly move. */
    double cpu_on, cpu_off, cpu_ratio, cpu_lo, cpu_hi;
    /* The best round of each side against the other's best: noise from
     * other processes only slows a run down, so the best runs are the
     * least disturbed. */
    double tput_best, p50_best, cpu_best;
    bool aa; /* BENCH_METRICS_AA: both sides had metrics on */
} cost;

static double best(const double *v, int n, bool highest)
{
    double b = n ? v[0] : 0;
    for (int i = 1; i < n; i++)
        if (highest ? v[i] > b : v[i] < b)
            b = v[i];
    return b;
}

static void range(const double *v, int n, double *lo, double *hi)
{
    *lo = *hi = n ? v[0] : 0;
    for (int i = 1; i < n; i++) {
        if (v[i] < *lo)
            *lo = v[i];
        if (v[i] > *hi)
            *hi = v[i];
    }
}

/* Our stack with metrics on and off (see the top). Each run gets a
 * committee of its own, started fresh and stopped after: two committees
 * kept for the whole phase differed by up to 20% with metrics on in
 * both (where their leaders and processes happened to land), far more
 * than what is measured here. */
static void run_metrics_cost(const char *dir, uint64_t n, uint64_t nlat,
                             uint32_t election, int rounds, cost *out)
{
    /* Both sides with metrics on: the same figures then show the noise
     * floor of the measurement on this machine. */
    bool aa = getenv(METRICS_AA_ENV) != NULL;
    int base = pick_port() + 3; /* clear of the ports just closed */
    double t[2][MAX_ROUNDS], p[2][MAX_ROUNDS], tr[MAX_ROUNDS], pr[MAX_ROUNDS];
    double cpu[2][MAX_ROUNDS], cr[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 2; i++) {
            int s = (r + i) % 2; /* 0 on, 1 off; who goes first alternates */
            char sub[900];
            committee c;
            snprintf(sub, sizeof sub, "%s/metrics-%s", dir, s ? "off" : "on");
            start_committee(&c, false, s == 1 && !aa, sub, base + 3 * s,
                            election, 0);
            child *lk = &kids[c.leader];
            run_tput(lk, 64, 2000, 256); /* warm up */
            double before = committee_cpu(&c);
            t[s][r] = run_tput(lk, 64, n, 1024);
            cpu[s][r] = (committee_cpu(&c) - before) / (double)n;
            p[s][r] = run_lat_p50(lk, 64, nlat);
            for (int k = 0; k < 3; k++)
                reap(&kids[c.first + k], false);
        }
        tr[r] = t[1][r] > 0 ? t[0][r] / t[1][r] : 0;
        pr[r] = p[1][r] > 0 ? p[0][r] / p[1][r] : 0;
        cr[r] = cpu[1][r] > 0 ? cpu[0][r] / cpu[1][r] : 0;
    }
    out->rounds = rounds;
    out->n = n;
    out->nlat = nlat;
    range(tr, rounds, &out->tput_lo, &out->tput_hi);
    range(pr, rounds, &out->p50_lo, &out->p50_hi);
    range(cr, rounds, &out->cpu_lo, &out->cpu_hi);
    out->cpu_on = median_of(cpu[0], rounds);
    out->cpu_off = median_of(cpu[1], rounds);
    out->cpu_ratio = median_of(cr, rounds);
    out->tput_best = best(t[0], rounds, true) / best(t[1], rounds, true);
    out->p50_best = best(p[0], rounds, false) / best(p[1], rounds, false);
    out->cpu_best = best(cpu[0], rounds, false) / best(cpu[1], rounds, false);
    out->tput_on = median_of(t[0], rounds);
    out->tput_off = median_of(t[1], rounds);
    out->tput_ratio = median_of(tr, rounds);
    out->p50_on = median_of(p[0], rounds);
    out->p50_off = median_of(p[1], rounds);
    out->p50_ratio = median_of(pr, rounds);
    out->aa = aa;
}

static void print_cost(const cost *c)
{
    printf("\nmetrics cost: mk_group with metrics on (the default) and off "
           "(mk_node_config.metrics_off)%s,\n%d rounds, each a fresh "
           "committee per side running %" PRIu64 " pipelined and %" PRIu64
           " one-at-a-time\n64 B commands, the order alternating; "
           "medians\n\n",
           c->aa ? " [BENCH_METRICS_AA: both on]" : "", c->rounds, c->n,
           c->nlat);
    printf("%-34s %14s %14s %8s  %-12s %s\n", "", "metrics on",
           "metrics off", "on/off", "rounds", "best");
    printf("%-34s %14.0f %14.0f %8.3f  %.3f..%.3f  %.3f\n",
           "throughput 64 B (commands/s)", c->tput_on, c->tput_off,
           c->tput_ratio, c->tput_lo, c->tput_hi, c->tput_best);
    printf("%-34s %14.0f %14.0f %8.3f  %.3f..%.3f  %.3f\n",
           "latency 64 B p50 (us)", c->p50_on, c->p50_off, c->p50_ratio,
           c->p50_lo, c->p50_hi, c->p50_best);
    printf("%-34s %14.2f %14.2f %8.3f  %.3f..%.3f  %.3f\n",
           "CPU per 64 B command (us, 3 members)", c->cpu_on, c->cpu_off,
           c->cpu_ratio, c->cpu_lo, c->cpu_hi, c->cpu_best);
    printf("\non/off: the median of the rounds' own ratios; rounds: their "
           "range; best: the best\nround on against the best round off. "
           "Median on/off: throughput %.3f = %+.1f%% cost,\nlatency %.3f "
           "= %+.1f%%, CPU per command %.3f = %+.1f%%. Wall-clock figures "
           "move with\nwhatever else the machine runs; CPU per command "
           "much less.\n",
           c->tput_ratio, (1 - c->tput_ratio) * 100, c->p50_ratio,
           (c->p50_ratio - 1) * 100, c->cpu_ratio,
           (c->cpu_ratio - 1) * 100);
    fflush(stdout);
}

static int parse_member(int argc, char **argv)
{
    member_args a = {.index = -1, .election = 1000};
    const char *keys = NULL, *ports = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--member") && i + 1 < argc)
            a.raw = !strcmp(argv[++i], "raw");
        else if (!strcmp(argv[i], "--replica"))
            a.replica = true;
        else if (!strcmp(argv[i], "--no-metrics"))
            a.metrics_off = true;
        else if (!strcmp(argv[i], "--index") && i + 1 < argc)
            a.index = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            a.dir = argv[++i];
        else if (!strcmp(argv[i], "--ports") && i + 1 < argc)
            ports = argv[++i];
        else if (!strcmp(argv[i], "--keys") && i + 1 < argc)
            keys = argv[++i];
        else if (!strcmp(argv[i], "--election") && i + 1 < argc)
            a.election = (uint32_t)atoi(argv[++i]);
    }
    if (!ports || !keys || !a.dir || a.index < 0)
        return 2;
    sscanf(ports, "%d,%d,%d", &a.port[0], &a.port[1], &a.port[2]);
    char *dup = strdup(keys), *save = NULL;
    int k = 0;
    for (char *t = strtok_r(dup, ",", &save); t && k < 3;
         t = strtok_r(NULL, ",", &save), k++)
        if (mk_keypair_load(&a.keys[k], t, NULL) != 0)
            return 2;
    free(dup);
    return run_member(&a);
}

static void print_figures(const figures *r, const figures *m, uint64_t n,
                          uint64_t nlat, uint32_t election)
{
    printf("\ngroup benchmark: 3 voters on loopback, one process each, "
           "data dirs on the same disk\n");
    printf("(%" PRIu64 " commands per throughput run, %" PRIu64
           " one-at-a-time; election %u ms, heartbeat %u ms)\n\n",
           n, nlat, election, election / 10);
    printf("%-34s %14s %14s %8s\n", "", "raw libraft", "mk_group", "ratio");
    printf("%-34s %14.0f %14.0f %8.2f\n", "throughput 64 B (commands/s)",
           r->tput64, m->tput64, m->tput64 / r->tput64);
    printf("%-34s %14.0f %14.0f %8.2f\n", "throughput 1 KiB (commands/s)",
           r->tput1k, m->tput1k, m->tput1k / r->tput1k);
    printf("%-34s %14.0f %14.0f %8.2f\n", "latency 64 B p50 (us)", r->p50_64,
           m->p50_64, m->p50_64 / r->p50_64);
    printf("%-34s %14.0f %14.0f %8.2f\n", "latency 64 B p99 (us)", r->p99_64,
           m->p99_64, m->p99_64 / r->p99_64);
    printf("%-34s %14.0f %14.0f\n", "latency 64 B max (us)", r->max_64,
           m->max_64);
    printf("%-34s %14.0f %14.0f %8.2f\n", "latency 1 KiB p50 (us)", r->p50_1k,
           m->p50_1k, m->p50_1k / r->p50_1k);
    printf("%-34s %14.0f %14.0f %8.2f\n", "latency 1 KiB p99 (us)", r->p99_1k,
           m->p99_1k, m->p99_1k / r->p99_1k);
    printf("%-34s %14.0f %14.0f\n", "latency 1 KiB max (us)", r->max_1k,
           m->max_1k);
    printf("%-34s %14.0f %14.0f\n", "failover kill -9 -> commit (ms)",
           r->failover_ms, m->failover_ms);
    if (m->have_lag)
        printf("%-34s %14s %7.0f/%-6.0f\n", "replica lag p50/p99 (us)", "-",
               m->lag_p50, m->lag_p99);
    printf("\nraw: stock TCP transport (no TLS, no TCP_NODELAY), 256 "
           "single-entry proposals in flight;\nmk_group: Raft messages on TLS "
           "links, envelopes + exactly-once table, handle window "
           "1024,\n  group commit (the default window of 64 entries, each a batch "
           "of commands). Ratios: ours / raw.\n");
}

int main(int argc, char **argv)
{
    self_exe = argv[0];
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--member"))
            return parse_member(argc, argv);
    const char *dir = "bench-group-data";
    uint64_t n = 20000, nlat = 2000;
    uint32_t election = 500;
    int rounds = 5;
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"n", required_argument, NULL, 'n'},
        {"lat", required_argument, NULL, 'l'},
        {"election", required_argument, NULL, 'e'},
        {"rounds", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "d:n:l:e:r:", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': dir = optarg; break;
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 'l': nlat = strtoull(optarg, NULL, 10); break;
        case 'e': election = (uint32_t)atoi(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        default:
            rounds = -1;
        }
        if (rounds < 0 || rounds > MAX_ROUNDS) {
            fprintf(stderr, "usage: bench_group [--dir DIR] [--n N] "
                            "[--lat N] [--election MS] [--rounds 0..%d]\n",
                    MAX_ROUNDS);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    mkdir(dir, 0700);
    figures raw = {0}, mk = {0};
    run_stack(true, dir, n, nlat, election, &raw);
    run_stack(false, dir, n, nlat, election, &mk);
    print_figures(&raw, &mk, n, nlat, election);
    if (rounds > 0) {
        cost c = {0};
        /* Five times the commands of a throughput run above: at a few
         * hundred thousand a second, 20000 is too short a run to tell 3%
         * from the machine's noise. */
        run_metrics_cost(dir, 5 * n, nlat, election, rounds, &c);
        print_cost(&c);
    }
    return 0;
}
