/* Discovery at cluster scale: N nodes on loopback, one bootstrap,
 * everyone else given only the bootstrap's address.
 *
 * Three ways to run the N nodes, all measured the same way:
 *
 *  - proc (-k 0): one coalitiond process per node, as operators run them.
 *    The honest figure for a node's memory, but on two cores it does not
 *    go much past 128 nodes.
 *  - host (-k K): node 0 is a coalitiond (the bootstrap); node 1 is alone
 *    in a nodes_host process (bench/nodes_host.c), the one-node baseline;
 *    the other N-2 are hosted K to a nodes_host process, all on one loop
 *    each. The nodes are made as coalitiond makes a plain member and run
 *    discovery alone. This is what reaches 512 here.
 *  - serf (when `serf` is on PATH and -s is not 0): N serf agents, agent 0
 *    the one every other joins, for comparison.
 *
 * Each run starts the bootstrap, then everything else at once (t0), and
 * measures:
 *
 *  - convergence: from t0 until every node knows all N-1 others. A node's
 *    time: coalitiond logs each catalog addition with a millisecond
 *    timestamp (its (N-1)th "peer discovered" line); nodes_host prints
 *    "done I T" the moment a node's catalog holds N-1 peers; serf logs
 *    "EventMemberJoin" per member, itself included, with one-second
 *    timestamps only, so a serf agent's time is when this program saw its
 *    log show all N alive (joins less EventMemberFailed, -Leave and -Reap:
 *    under load members flap, and a join line counted twice is no member;
 *    the logs are polled every 20 ms), once `serf members -status=alive`
 *    at that agent agrees (asked at most once a second per agent). The cluster's time is
 *    its slowest node; the spread is min / median / max over nodes. "own
 *    med" is the median from each node's own start (coalitiond's
 *    "listening" line, nodes_host's "node" line; not for serf). The CPU of
 *    every process of the cluster (utime + stime from /proc), from just
 *    before t0 until converged, summed.
 *  - links (nodes_host only): the TLS links each node had dialled by the
 *    time it converged, the share of link ends that resumed a
 *    session instead of a full handshake, and the frames and payload
 *    bytes it had received; full handshakes and entry
 *    signatures are most of the CPU to converge.
 *  - idle memory, 5 s (-w) after convergence (coalitiond gives its heap's
 *    free pages back 2 s after its catalog last gained a peer), from
 *    /proc/PID/status (VmRSS, RssAnon) and smaps_rollup (Pss: shared
 *    library pages divided among the processes that map them). proc and serf: per process = per node,
 *    median and max. host: the host processes' RSS divided by the nodes
 *    each holds ("amortised"), the one-node process's RSS ("1-node"), and
 *    what one more node adds to a process ((RSS_K - RSS_1) / (K - 1),
 *    "marginal"); a standalone node costs about 1-node, a hosted one
 *    about marginal.
 *  - idle CPU: utime + stime of every process over a quiet window, summed,
 *    as a share of one core; in the last run of each size only (60 s by
 *    default, so the window holds a couple of RTT-probe periods, 15-45 s,
 *    and about one re-announcement, 22.5-67.5 s, per node).
 *  - shutdown: from SIGTERM (SIGINT for serf: its graceful leave) to all
 *    processes exited.
 *
 * Prints medians over the runs; asserts nothing about time.
 *
 *   bench_discovery [-n N[,N...]] [-k K] [-r runs] [-i idle-s] [-s 0|1]
 *                   [-t limit-s] [-w settle-s] BUILD_DIR
 *
 * -n takes a list (32,64,128,256,512); default 32. -k: nodes per host
 * process; default 0 (proc) when every N is at most 128, else 64. -s 0
 * skips serf even when it is installed; serf runs only with -s 1 or when
 * the sweep has more than one size. -t: give a run up after this many
 * seconds without convergence (120 s or 0.6 s a node, the longer).
 * Defaults: 5 runs, 60 s.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mosaik/error.h"
#include "mosaik/key.h"

#define MAX_NODES 1024
#define MAX_SIZES 16
#define POLL_MS 20

enum mode { MODE_PROC, MODE_HOST, MODE_SERF };
static const char *const mode_name[] = {"coalitiond", "nodes_host",
                                        "serf"};

/* A process of the cluster: a coalitiond, a nodes_host or a serf agent. */
typedef struct proc {
    pid_t pid;
    char dir[600];
    char out[700], err[700]; /* its stdout and stderr files */
    long out_off, err_off;   /* how far they have been parsed */
    int first, count;        /* the nodes it holds */
    int joins;               /* serf: EventMemberJoin lines seen */
    /* serf: the members its log says are alive (by index: agent i is
     * "s<i>"), how many, when it last reached N, and when `serf members`
     * was last asked to confirm. */
    unsigned char *alive;
    int n_alive;
    int64_t full_ms, asked_ms;
    long long cpu0;          /* ticks just before t0 */
} proc;

typedef struct node {
    int proc;
    char peer_id[65];
    char listen[64];
    char rpc[64];     /* serf: its RPC address */
    int64_t done_ms;  /* realtime when it knew everyone, or -1 */
    int64_t start_ms; /* realtime of its start, or -1 */
    /* nodes_host: its links when it converged ("links"), and the
     * entries it had stored (each one a signature verified), or -1. */
    long long dialed, accepted, resumed, frames_in, bytes_in, entries;
} node;

typedef struct run_result {
    double converge_ms, node_min, node_med, node_max;
    double own_med; /* -1: not known (serf) */
    double converge_cpu_s;
    double rss_med, rss_max, anon_med, pss_med; /* KiB per node */
    double base_rss, marginal, host_rss_med, boot_rss; /* host mode */
    double cpu_total_pct; /* idle, all processes; -1: not run */
    double exit_ms;
    /* Links dialled per node by convergence, and the share of all links
     * (both ends count) that resumed a session; -1: not known. */
    double dialed_per_node, resumed_share;
    /* Frames and payload KiB received per node by convergence, and the
     * entries stored (new peers and new versions) per node, over N - 1:
     * 1.0 means each peer's entry was verified once, the floor. */
    double frames_per_node, kib_per_node, entries_per_peer;
} run_result;

/* How long a cluster may take to converge before the run is given up:
 * -t seconds, else 120 s or 600 ms a node, whichever is longer (a loaded
 * two-core machine needs minutes for 512). */
static int64_t converge_limit_ms;
/* -w: how long after convergence idle memory is read (5 s). */
static int settle_ms = 5000;

static proc procs[MAX_NODES];
static node nodes[MAX_NODES];
static int nprocs;

static void die(const char *what)
{
    fprintf(stderr, "bench_discovery: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int64_t now_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Reads a whole (small) file; NULL when absent. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    size_t r;
    while (s && (r = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (cap - len < 1024) {
            char *g = realloc(s, cap *= 2);
            if (!g)
                free(s);
            s = g;
        }
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
}

/* Calls `fn` on each whole line of `path` past *off, and moves *off past
 * them; a line still being written waits for the next call. */
static void tail_lines(const char *path, long *off,
                       void (*fn)(proc *p, char *line), proc *p)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fseek(f, *off, SEEK_SET) != 0) {
        fclose(f);
        return;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n')
            break; /* partial (or absurdly long: skipped next time) */
        *off += (long)n;
        line[n - 1] = '\0';
        fn(p, line);
    }
    fclose(f);
}

/* "2026-01-02T03:04:05.678Z" at the start of a log line, as Unix ms. */
static int64_t log_time(const char *line)
{
    struct tm tm = {0};
    int ms;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static int want_peers; /* N-1 */

/* coalitiond's stderr: its start, then one line per discovered peer. */
static void on_daemon_line(proc *p, char *line)
{
    node *n = &nodes[p->first];
    if (strstr(line, " listening on "))
        n->start_ms = log_time(line);
    else if (strstr(line, " peer discovered ") && ++p->joins == want_peers)
        n->done_ms = log_time(line);
}

/* coalitiond's stdout: {"peer_id":"…","listen":"…"}. */
static void on_daemon_out(proc *p, char *line)
{
    node *n = &nodes[p->first];
    const char *id = strstr(line, "\"peer_id\":\"");
    const char *ls = strstr(line, "\"listen\":\"");
    const char *end = ls ? strchr(ls + 10, '"') : NULL;
    if (!id || !end || (size_t)(end - ls - 10) >= sizeof n->listen)
        return;
    memcpy(n->peer_id, id + 11, 64);
    n->peer_id[64] = '\0';
    memcpy(n->listen, ls + 10, (size_t)(end - ls - 10));
    n->listen[end - ls - 10] = '\0';
}

/* nodes_host's stdout (bench/nodes_host.c). */
static void on_host_line(proc *p, char *line)
{
    int i;
    long long t, d, a, r, fi = -1, bi = -1, en = -1;
    char id[65], addr[64];
    if (sscanf(line, "node %d %64s %63s %lld", &i, id, addr, &t) == 4 &&
        i >= p->first && i < p->first + p->count) {
        nodes[i].start_ms = t;
        strcpy(nodes[i].peer_id, id);
        strcpy(nodes[i].listen, addr);
    } else if (sscanf(line, "done %d %lld", &i, &t) == 2 && i >= p->first &&
               i < p->first + p->count) {
        nodes[i].done_ms = t;
    } else if (sscanf(line, "links %d %lld %lld %lld %lld %lld %lld", &i, &d,
                      &a, &r, &fi, &bi, &en) >= 4 &&
               i >= p->first && i < p->first + p->count) {
        nodes[i].dialed = d;
        nodes[i].accepted = a;
        nodes[i].resumed = r;
        nodes[i].frames_in = fi;
        nodes[i].bytes_in = bi;
        nodes[i].entries = en;
    }
}

/* Sums the "links" lines of the nodes that printed one (nodes_host's;
 * coalitiond and serf say nothing of their links). */
static void links_at_convergence(int n, run_result *res)
{
    long long d = 0, a = 0, r = 0, fi = 0, bi = 0, en = 0;
    int known = 0;
    for (int i = 0; i < n; i++)
        if (nodes[i].dialed >= 0) {
            d += nodes[i].dialed;
            a += nodes[i].accepted;
            r += nodes[i].resumed;
            fi += nodes[i].frames_in > 0 ? nodes[i].frames_in : 0;
            bi += nodes[i].bytes_in > 0 ? nodes[i].bytes_in : 0;
            en += nodes[i].entries > 0 ? nodes[i].entries : 0;
            known++;
        }
    res->dialed_per_node = res->resumed_share = -1;
    res->frames_per_node = res->kib_per_node = res->entries_per_peer = -1;
    if (known == 0 || n < 2)
        return;
    res->dialed_per_node = (double)d / known;
    res->resumed_share = d + a > 0 ? (double)r / (double)(d + a) : 0;
    res->frames_per_node = (double)fi / known;
    res->kib_per_node = (double)bi / 1024.0 / known;
    res->entries_per_peer = (double)en / known / (n - 1);
}

/* A serf agent's log: EventMemberJoin per member, itself included, and
 * EventMemberFailed / EventMemberLeave / EventMemberReap when one goes
 * (under load memberlist suspects live agents, and they join again).
 * Counting join lines was not honest: a member failed and joined again
 * counted twice. The log only nominates: an agent whose log shows all N
 * members alive is asked (`serf members`, confirm_serf). */
static void on_serf_line(proc *p, char *line)
{
    static const char *const ev[] = {"serf: EventMemberJoin: ",
                                     "serf: EventMemberFailed: ",
                                     "serf: EventMemberLeave: ",
                                     "serf: EventMemberReap: "};
    for (int k = 0; k < 4; k++) {
        const char *at = strstr(line, ev[k]);
        int i;
        if (!at || sscanf(at + strlen(ev[k]), "s%d", &i) != 1 || i < 0 ||
            i > want_peers || !p->alive)
            continue;
        p->joins += k == 0;
        if (k == 0 && !p->alive[i]) {
            p->alive[i] = 1;
            p->n_alive++;
        } else if (k > 0 && p->alive[i]) {
            p->alive[i] = 0;
            p->n_alive--;
        }
        if (p->n_alive == want_peers + 1 && p->full_ms < 0)
            p->full_ms = now_real_ms();
        else if (p->n_alive <= want_peers)
            p->full_ms = -1;
    }
}

/* Members `serf members` lists alive at agent `i`'s RPC address; -1 when
 * it could not be asked. */
static int serf_alive(int i)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "serf members -rpc-addr=%s -status=alive 2>/dev/null",
             nodes[i].rpc);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += line[0] != '\n';
    return pclose(f) == 0 ? n : -1;
}

/* An agent whose log shows all N alive is done once `serf members` agrees
 * (asked at most once a second per agent), at the time its log got
 * there; the confirmation costs a process per agent, so it is asked only
 * of nominated agents. */
static void confirm_serf(int n)
{
    int64_t now = now_real_ms();
    for (int i = 0; i < n; i++) {
        proc *p = &procs[nodes[i].proc];
        if (nodes[i].done_ms >= 0 || p->full_ms < 0 ||
            now - p->asked_ms < 1000)
            continue;
        p->asked_ms = now;
        if (serf_alive(i) == n)
            nodes[i].done_ms = p->full_ms;
    }
}

static pid_t spawn(const char *const *argv, const char *out, const char *err)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0)
            _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static proc *new_proc(const char *root, int first, int count)
{
    proc *p = &procs[nprocs++];
    free(p->alive); /* the previous run's */
    memset(p, 0, sizeof *p);
    p->full_ms = -1;
    char dir[sizeof p->dir];
    snprintf(dir, sizeof dir, "%s/p%d", root, nprocs - 1);
    if (mkdir(dir, 0700) != 0)
        die("mkdir");
    memcpy(p->dir, dir, sizeof dir);
    snprintf(p->out, sizeof p->out, "%s/out", dir);
    snprintf(p->err, sizeof p->err, "%s/err.log", dir);
    p->first = first;
    p->count = count;
    for (int i = first; i < first + count; i++) {
        memset(&nodes[i], 0, sizeof nodes[i]);
        nodes[i].proc = nprocs - 1;
        nodes[i].done_ms = nodes[i].start_ms = -1;
        nodes[i].dialed = nodes[i].accepted = nodes[i].resumed = -1;
        nodes[i].frames_in = nodes[i].bytes_in = nodes[i].entries = -1;
    }
    return p;
}

/* A coalitiond's key file, made as `coalition keygen` would before the
 * operator starts it (and so before a run's clock starts). */
static void make_key(proc *p)
{
    char key[700];
    snprintf(key, sizeof key, "%s/key", p->dir);
    mk_keypair kp;
    if (mk_keypair_generate(&kp) < 0 || mk_keypair_save(&kp, key, NULL) < 0)
        die("key");
}

static void spawn_daemon(proc *p, const char *exe, const char *boot)
{
    char key[700], data[700];
    snprintf(key, sizeof key, "%s/key", p->dir);
    snprintf(data, sizeof data, "%s/data", p->dir);
    const char *argv[12] = {exe, "--listen", "127.0.0.1:0", "--key", key,
                            "--data", data};
    int k = 7;
    if (boot) {
        argv[k++] = "--bootstrap";
        argv[k++] = boot;
    }
    argv[k] = NULL;
    p->pid = spawn(argv, p->out, p->err);
}

static void spawn_host(proc *p, const char *exe, const char *boot)
{
    char k[16], w[16], i[16];
    snprintf(k, sizeof k, "%d", p->count);
    snprintf(w, sizeof w, "%d", want_peers);
    snprintf(i, sizeof i, "%d", p->first);
    const char *argv[] = {exe, "-k", k, "-b", boot, "-w", w, "-i", i, NULL};
    p->pid = spawn(argv, p->out, p->err);
}

/* A port free for both TCP and UDP on 127.0.0.1 (serf's memberlist uses
 * both), or for TCP alone; 0 when none was found. Another program may
 * take it before serf binds: the run then fails and says so. */
static int free_port(bool udp_too)
{
    for (int tries = 0; tries < 50; tries++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(s, (struct sockaddr *)&a, &len) != 0) {
            if (s >= 0)
                close(s);
            continue;
        }
        int ok = 1;
        if (udp_too) {
            int u = socket(AF_INET, SOCK_DGRAM, 0);
            ok = u >= 0 && bind(u, (struct sockaddr *)&a, sizeof a) == 0;
            if (u >= 0)
                close(u);
        }
        close(s);
        if (ok)
            return ntohs(a.sin_port);
    }
    return 0;
}

static void spawn_serf(proc *p, int index, const char *join)
{
    char name[32], bind[64], rpc[64], joinarg[80];
    int port = free_port(true), rport = free_port(false);
    if (!port || !rport)
        die("no free port for serf");
    snprintf(name, sizeof name, "-node=s%d", index);
    snprintf(bind, sizeof bind, "-bind=127.0.0.1:%d", port);
    snprintf(rpc, sizeof rpc, "-rpc-addr=127.0.0.1:%d", rport);
    snprintf(nodes[index].rpc, sizeof nodes[index].rpc, "127.0.0.1:%d",
             rport);
    if (!(p->alive = calloc((size_t)want_peers + 1, 1)))
        die("calloc");
    snprintf(nodes[index].listen, sizeof nodes[index].listen,
             "127.0.0.1:%d", port);
    const char *argv[8] = {"serf", "agent", name, bind, rpc,
                           "-log-level=info"};
    if (join) {
        snprintf(joinarg, sizeof joinarg, "-join=%s", join);
        argv[6] = joinarg;
    }
    p->pid = spawn(argv, p->out, p->err);
    nodes[index].start_ms = -1; /* not known to the millisecond */
}

/* utime + stime of `pid` in clock ticks; -1 when unreadable. */
static long long cpu_ticks(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *s = slurp(path);
    if (!s)
        return -1;
    /* Fields after the command name, which may hold spaces: state is
     * field 3, utime 14, stime 15. */
    const char *p = strrchr(s, ')');
    long long ut = -1, st = -1;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld",
               &ut, &st);
    free(s);
    return ut < 0 || st < 0 ? -1 : ut + st;
}

static long long cpu_all(void)
{
    long long sum = 0;
    for (int i = 0; i < nprocs; i++) {
        long long t = cpu_ticks(procs[i].pid);
        sum += t > 0 ? t : 0;
    }
    return sum;
}

/* A "Key:   123 kB" field of a /proc file, in KiB; -1 when absent. */
static long proc_kib(pid_t pid, const char *file, const char *key)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    char *s = slurp(path);
    const char *p = s ? strstr(s, key) : NULL;
    long kib = p ? strtol(p + strlen(key), NULL, 10) : -1;
    free(s);
    return kib;
}

static void stop_all(int sig, double *exit_ms)
{
    int64_t t0 = now_real_ms();
    for (int i = 0; i < nprocs; i++)
        if (procs[i].pid > 0)
            kill(procs[i].pid, sig);
    int left = nprocs;
    while (left > 0 && now_real_ms() - t0 < 20000) {
        left = 0;
        for (int i = 0; i < nprocs; i++) {
            if (procs[i].pid <= 0)
                continue;
            if (waitpid(procs[i].pid, NULL, WNOHANG) == procs[i].pid)
                procs[i].pid = 0;
            else
                left++;
        }
        if (left)
            sleep_ms(5);
    }
    *exit_ms = (double)(now_real_ms() - t0);
    for (int i = 0; i < nprocs; i++)
        if (procs[i].pid > 0) {
            kill(procs[i].pid, SIGKILL);
            waitpid(procs[i].pid, NULL, 0);
            procs[i].pid = 0;
        }
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rmtree(const char *dir)
{
    if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "bench_discovery: could not remove %s\n", dir);
}

/* Parses whatever the processes wrote since the last poll. */
static void poll_all(enum mode m)
{
    for (int i = 0; i < nprocs; i++) {
        proc *p = &procs[i];
        if (m == MODE_SERF) {
            tail_lines(p->out, &p->out_off, on_serf_line, p);
        } else if (p->count == 1 && i == 0) {
            tail_lines(p->out, &p->out_off, on_daemon_out, p);
            tail_lines(p->err, &p->err_off, on_daemon_line, p);
        } else if (m == MODE_PROC) {
            tail_lines(p->out, &p->out_off, on_daemon_out, p);
            tail_lines(p->err, &p->err_off, on_daemon_line, p);
        } else {
            tail_lines(p->out, &p->out_off, on_host_line, p);
        }
    }
}

/* One cluster from start to shutdown; the idle window only when
 * idle_s > 0. */
static bool one_run(enum mode m, const char *build, int n, int k, int idle_s,
                    run_result *res)
{
    char root[512], daemon_exe[1024], host_exe[1024];
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/mk-disc-bench-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(root))
        die("mkdtemp");
    snprintf(daemon_exe, sizeof daemon_exe, "%s/coalitiond", build);
    snprintf(host_exe, sizeof host_exe, "%s/bench/nodes_host", build);
    nprocs = 0;
    want_peers = n - 1;

    /* The bootstrap, alone first. */
    proc *b = new_proc(root, 0, 1);
    if (m == MODE_SERF) {
        spawn_serf(b, 0, NULL);
    } else {
        make_key(b);
        spawn_daemon(b, daemon_exe, NULL);
    }
    char boot[200] = "";
    int64_t until = now_real_ms() + 10000;
    while (now_real_ms() < until) {
        if (m == MODE_SERF) {
            /* Ready once its RPC and its own join are up. */
            poll_all(m);
            if (b->joins > 0)
                break;
        } else {
            tail_lines(b->out, &b->out_off, on_daemon_out, b);
            if (nodes[0].listen[0])
                break;
        }
        sleep_ms(5);
    }
    if (m == MODE_SERF ? b->joins == 0 : !nodes[0].listen[0]) {
        fprintf(stderr, "bench_discovery: the bootstrap did not start\n");
        double ignored;
        stop_all(SIGKILL, &ignored);
        rmtree(root);
        return false;
    }
    if (m == MODE_SERF)
        snprintf(boot, sizeof boot, "%s", nodes[0].listen);
    else
        snprintf(boot, sizeof boot, "%s@%s", nodes[0].peer_id,
                 nodes[0].listen);
    b->cpu0 = cpu_ticks(b->pid);
    long long cpu0 = b->cpu0;

    /* What a node is given before it starts (a directory, and a
     * coalitiond its key file, fsynced) is made before t0: provisioning
     * keys is not discovery, and made one after another inside the run
     * it delayed the last starts by a few ms per node. */
    int first_spawn = nprocs;
    if (m == MODE_HOST) {
        /* Node 1 alone: the one-node baseline. Then K at a time. */
        new_proc(root, 1, 1);
        for (int i = 2; i < n; i += k)
            new_proc(root, i, i + k <= n ? k : n - i);
    } else {
        for (int i = 1; i < n; i++) {
            proc *p = new_proc(root, i, 1);
            if (m == MODE_PROC)
                make_key(p);
        }
    }
    int64_t t0 = now_real_ms();
    for (int j = first_spawn; j < nprocs; j++) {
        proc *p = &procs[j];
        if (m == MODE_HOST)
            spawn_host(p, host_exe, boot);
        else if (m == MODE_SERF)
            spawn_serf(p, p->first, boot);
        else
            spawn_daemon(p, daemon_exe, boot);
    }

    bool all = false;
    long long cpu_at = 0;
    int64_t limit = converge_limit_ms ? converge_limit_ms
                    : n * 600 > 120000 ? n * 600 : 120000;
    while (!all && now_real_ms() - t0 < limit) {
        sleep_ms(POLL_MS);
        poll_all(m);
        if (m == MODE_SERF)
            confirm_serf(n);
        all = true;
        for (int i = 0; i < n && all; i++)
            all = nodes[i].done_ms >= 0;
        if (all)
            cpu_at = cpu_all();
    }
    if (!all) {
        int missing = 0;
        for (int i = 0; i < n; i++)
            missing += nodes[i].done_ms < 0;
        fprintf(stderr,
                "bench_discovery: %s: %d of %d nodes had not converged "
                "after %d s (logs kept in %s)\n",
                mode_name[m], missing, n, (int)(limit / 1000), root);
        double ignored;
        stop_all(m == MODE_SERF ? SIGINT : SIGTERM, &ignored);
        return false;
    }
    static double per[MAX_NODES];
    res->converge_ms = 0;
    for (int i = 0; i < n; i++) {
        per[i] = (double)(nodes[i].done_ms - t0);
        if (per[i] > res->converge_ms)
            res->converge_ms = per[i];
    }
    res->node_med = median(per, n); /* sorts per[] */
    res->node_min = per[0];
    res->node_max = per[n - 1];
    res->own_med = -1;
    if (m != MODE_SERF) {
        for (int i = 0; i < n; i++)
            per[i] = (double)(nodes[i].done_ms - nodes[i].start_ms);
        res->own_med = median(per, n);
    }
    long tck = sysconf(_SC_CLK_TCK);
    res->converge_cpu_s = (double)(cpu_at - cpu0) / (double)tck;
    links_at_convergence(n, res);

    /* Settle, then memory, then a quiet window for CPU. */
    sleep_ms(settle_ms);
    static double rss[MAX_NODES], anon[MAX_NODES], pss[MAX_NODES];
    int nm = 0;
    res->base_rss = res->marginal = res->host_rss_med = res->boot_rss = -1;
    res->boot_rss = (double)proc_kib(procs[0].pid, "status", "VmRSS:");
    if (m == MODE_HOST) {
        /* procs[1] holds one node; procs[2..] K (the last maybe fewer). */
        double base = (double)proc_kib(procs[1].pid, "status", "VmRSS:");
        double marg[MAX_NODES], whole[MAX_NODES];
        int nmarg = 0;
        for (int i = 2; i < nprocs; i++) {
            double r = (double)proc_kib(procs[i].pid, "status", "VmRSS:");
            double c = procs[i].count;
            rss[nm] = r / c;
            anon[nm] = (double)proc_kib(procs[i].pid, "status",
                                        "RssAnon:") / c;
            pss[nm] = (double)proc_kib(procs[i].pid, "smaps_rollup",
                                       "Pss:") / c;
            whole[nm++] = r;
            if (c > 1)
                marg[nmarg++] = (r - base) / (c - 1);
        }
        if (nm == 0) { /* n == 2: only the baseline */
            rss[0] = base;
            anon[0] = (double)proc_kib(procs[1].pid, "status", "RssAnon:");
            pss[0] = (double)proc_kib(procs[1].pid, "smaps_rollup", "Pss:");
            whole[0] = base;
            nm = 1;
        }
        res->base_rss = base;
        res->host_rss_med = median(whole, nm);
        res->marginal = nmarg ? median(marg, nmarg) : -1;
    } else {
        for (int i = 0; i < nprocs; i++, nm++) {
            rss[nm] = (double)proc_kib(procs[i].pid, "status", "VmRSS:");
            anon[nm] = (double)proc_kib(procs[i].pid, "status", "RssAnon:");
            pss[nm] = (double)proc_kib(procs[i].pid, "smaps_rollup", "Pss:");
        }
    }
    res->rss_med = median(rss, nm);
    res->rss_max = rss[nm - 1];
    res->anon_med = median(anon, nm);
    res->pss_med = median(pss, nm);

    res->cpu_total_pct = -1;
    if (idle_s > 0) {
        long long before = cpu_all();
        int64_t w0 = now_real_ms();
        sleep_ms(idle_s * 1000);
        double window_s = (double)(now_real_ms() - w0) / 1000.0;
        res->cpu_total_pct = 100.0 * (double)(cpu_all() - before) /
                             (double)tck / window_s;
    }

    stop_all(m == MODE_SERF ? SIGINT : SIGTERM, &res->exit_ms);
    rmtree(root);
    return true;
}

static int parse_sizes(const char *s, int *out)
{
    int n = 0;
    for (const char *p = s; *p && n < MAX_SIZES;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 2 || v > MAX_NODES)
            return -1;
        out[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return n;
}

/* Medians over the runs of one size, and the row that prints them. */
static void report(enum mode m, int n, int k, const run_result *r, int ok,
                   int idle_s)
{
    double v[9][64];
    const run_result *idle = NULL;
    for (int i = 0; i < ok; i++) {
        v[0][i] = r[i].converge_ms;
        v[1][i] = r[i].node_med;
        v[2][i] = r[i].own_med;
        v[3][i] = r[i].converge_cpu_s;
        v[4][i] = r[i].rss_med;
        v[5][i] = r[i].rss_max;
        v[6][i] = r[i].pss_med;
        v[7][i] = r[i].base_rss;
        v[8][i] = r[i].marginal;
        if (r[i].cpu_total_pct >= 0)
            idle = &r[i];
    }
    double conv = median(v[0], ok), nmed = median(v[1], ok),
           own = median(v[2], ok), cpu = median(v[3], ok),
           rss = median(v[4], ok), rmax = median(v[5], ok),
           pss = median(v[6], ok);
    printf("%-10s %4d %8.0fms %7.0fms ", mode_name[m], n, conv, nmed);
    if (own >= 0)
        printf("%7.0fms", own);
    else
        printf("%9s", "-");
    printf(" %7.2fs %6.1fms %7.2f%%", cpu, 1000.0 * cpu / n,
           idle ? idle->cpu_total_pct : -1.0);
    if (m == MODE_HOST)
        printf("  %5.1f amortised (K=%d), 1-node %.1f, marginal %.1f, "
               "PSS %.1f MiB\n",
               rss / 1024.0, k, median(v[7], ok) / 1024.0,
               median(v[8], ok) / 1024.0, pss / 1024.0);
    else
        printf("  %5.1f med, %.1f max, PSS %.1f MiB\n", rss / 1024.0,
               rmax / 1024.0, pss / 1024.0);
    (void)idle_s;
    fflush(stdout);
}

static void run_size(enum mode m, const char *build, int n, int k, int runs,
                     int idle_s, bool verbose)
{
    run_result r[64];
    int ok = 0;
    for (int i = 0; i < runs; i++) {
        if (!one_run(m, build, n, k, i == runs - 1 ? idle_s : 0, &r[ok]))
            continue;
        run_result *x = &r[ok++];
        if (verbose) {
            printf("  run %d: converge %.0f ms (per node %.0f/%.0f/%.0f), "
                   "CPU %.2f s, RSS med %.1f MiB (anon %.1f, PSS %.1f)",
                   i + 1, x->converge_ms, x->node_min, x->node_med,
                   x->node_max, x->converge_cpu_s, x->rss_med / 1024.0,
                   x->anon_med / 1024.0, x->pss_med / 1024.0);
            if (m == MODE_HOST)
                printf(", host %.1f MiB, bootstrap %.1f MiB",
                       x->host_rss_med / 1024.0, x->boot_rss / 1024.0);
            if (x->dialed_per_node >= 0)
                printf(", links dialled %.1f per node by convergence "
                       "(%.0f%% of link ends resumed; %.0f frames, %.0f KiB "
                       "received; entries stored %.2f per peer)",
                       x->dialed_per_node, 100.0 * x->resumed_share,
                       x->frames_per_node, x->kib_per_node,
                       x->entries_per_peer);
            printf(", exit %.0f ms\n", x->exit_ms);
            fflush(stdout);
        }
    }
    if (ok == 0) {
        printf("%-10s %4d   did not converge (see stderr)\n", mode_name[m],
               n);
        return;
    }
    report(m, n, k, r, ok, idle_s);
}

static bool have_serf(void)
{
    const char *path = getenv("PATH");
    char buf[4096];
    if (!path || strlen(path) >= sizeof buf)
        return false;
    strcpy(buf, path);
    for (char *d = strtok(buf, ":"); d; d = strtok(NULL, ":")) {
        char exe[4200];
        snprintf(exe, sizeof exe, "%s/serf", d);
        if (access(exe, X_OK) == 0)
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    int sizes[MAX_SIZES] = {32}, nsizes = 1, runs = 5, idle_s = 60, k = -1;
    int serf = -1, opt;
    while ((opt = getopt(argc, argv, "n:r:i:k:s:t:w:")) != -1) {
        switch (opt) {
        case 'n': nsizes = parse_sizes(optarg, sizes); break;
        case 'r': runs = atoi(optarg); break;
        case 'i': idle_s = atoi(optarg); break;
        case 'k': k = atoi(optarg); break;
        case 's': serf = atoi(optarg); break;
        case 'w': settle_ms = 1000 * atoi(optarg); break;
        case 't': converge_limit_ms = 1000 * (int64_t)atoi(optarg); break;
        default: optind = argc + 1; break;
        }
    }
    if (optind != argc - 1 || nsizes < 1 || runs < 1 || runs > 64 ||
        idle_s < 1) {
        fprintf(stderr, "usage: bench_discovery [-n N[,N...]] [-k K] "
                        "[-r runs] [-i idle seconds] [-s 0|1] [-t limit "
                        "seconds] [-w settle seconds] BUILD_DIR\n");
        return 2;
    }
    const char *build = argv[optind];
    int biggest = 0;
    for (int i = 0; i < nsizes; i++)
        biggest = sizes[i] > biggest ? sizes[i] : biggest;
    if (k < 0)
        k = biggest <= 128 ? 0 : 64;
    enum mode m = k == 0 ? MODE_PROC : MODE_HOST;
    char exe[1100];
    snprintf(exe, sizeof exe, "%s/%s", build,
             m == MODE_PROC ? "coalitiond" : "bench/nodes_host");
    if (access(exe, X_OK) != 0)
        die(exe);
    bool with_serf = serf == 1 || (serf == -1 && nsizes > 1);
    if (with_serf && !have_serf()) {
        printf("serf: not on PATH, left out (scripts/deps.sh bench "
               "installs it)\n");
        with_serf = false;
    }

    printf("discovery on loopback, one bootstrap; %d run(s) per size, "
           "medians; idle CPU over %d s in the last\n",
           runs, idle_s);
    if (m == MODE_PROC)
        printf("coalitiond: one process per node; RSS per process\n");
    else
        printf("nodes_host: node 0 a coalitiond (bootstrap), node 1 alone "
               "in a nodes_host (1-node), the rest %d per nodes_host on one "
               "loop; RSS per node = host VmRSS / nodes held (amortised); "
               "marginal = (VmRSS_K - VmRSS_1) / (K - 1)\n",
               k);
    if (with_serf)
        printf("serf: one agent per node; converged when each agent's log "
               "shows N members alive (joins less failures and leaves, "
               "seen by polling every %d ms) and `serf members` agrees; "
               "RSS per process\n",
               POLL_MS);
    printf("CPU: utime+stime of every process, summed (to converge: "
           "total and per node; idle: %% of one core)\n");
    printf("%-10s %4s %10s %9s %9s %8s %8s %8s  %s\n", "system", "N",
           "converge", "node med", "own med", "CPU", "CPU/node", "idle CPU",
           "idle RSS per node");
    bool verbose = runs > 1 || nsizes == 1;
    for (int i = 0; i < nsizes; i++) {
        run_size(m, build, sizes[i], k, runs, idle_s, verbose);
        if (with_serf)
            run_size(MODE_SERF, build, sizes[i], k, runs, idle_s, verbose);
    }
    return 0;
}
