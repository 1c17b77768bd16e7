/* Discovery at cluster scale: N coalitiond processes on loopback, one
 * bootstrap, everyone else given only the bootstrap's address.
 *
 * Each run starts the bootstrap, then the other N-1 at once, and measures:
 *
 *  - convergence: from the moment the N-1 are spawned until every node
 *    knows all N-1 others. A node's time is that of the (N-1)th "peer
 *    discovered" line it logged (coalitiond logs each catalog addition
 *    the moment it happens, with millisecond timestamps; peers.json is
 *    debounced by 100 ms, so it would blur the figure). The cluster's
 *    time is its slowest node; the spread is min / median / max over
 *    nodes. "own med" is the median from each node's own "listening"
 *    line instead (process start-up left out). The CPU all nodes spent
 *    until then is reported too: their start-up (about 20 ms each) and
 *    what the first-contact exchanges cost.
 *  - idle memory: VmRSS of every node after the cluster has settled.
 *  - idle CPU: utime + stime of every node over a quiet window, as a
 *    share of one core; measured in the last run only, over 60 s by
 *    default, so the window holds a couple of RTT-probe periods (15-45 s)
 *    and about one re-announcement (22.5-67.5 s) per node.
 *  - shutdown: from SIGTERM to all N exited (each departs, waits its
 *    departure window and closes its links).
 *
 * Prints medians over the runs; asserts nothing about time.
 *
 *   bench_discovery [-n nodes] [-r runs] [-i idle seconds] BUILD_DIR
 *
 * (defaults: 32 nodes, 5 runs, 60 s)
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mosaik/error.h"
#include "mosaik/key.h"

#define MAX_NODES 256
#define SETTLE_MS 3000
#define CONVERGE_LIMIT_MS 60000

typedef struct node {
    pid_t pid;
    char dir[600]; /* key, data, logs */
    char listen[64];
    char peer_id[65];
    int64_t done_ms;  /* realtime of its last needed discovery, or -1 */
    int64_t start_ms; /* realtime of its "listening" line */
} node;

typedef struct run_result {
    double converge_ms, node_min, node_med, node_max;
    double own_med; /* median of each node's time from its own start */
    double converge_cpu_s;     /* all nodes, spawn to converged */
    double rss_med_kib, rss_min_kib, rss_max_kib;
    double cpu_med_pct, cpu_max_pct, cpu_total_pct; /* idle; -1: not run */
    double exit_ms;
} run_result;

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
            if (!g) {
                free(s);
                s = NULL;
            }
            s = g;
        }
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
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

/* Scans a node's log: its start, and when it had discovered `want`
 * peers (-1 while it has not). */
static void scan_log(node *n, int want)
{
    char path[700];
    snprintf(path, sizeof path, "%s/err.log", n->dir);
    char *s = slurp(path);
    if (!s)
        return;
    int found = 0;
    for (char *line = s; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(line, " listening on "))
            n->start_ms = log_time(line);
        else if (strstr(line, " peer discovered ") && ++found == want)
            n->done_ms = log_time(line);
        line = nl ? nl + 1 : NULL;
    }
    free(s);
}

/* The first stdout line, {"peer_id":"…","listen":"…"}. */
static bool read_listen(node *n)
{
    char path[700];
    snprintf(path, sizeof path, "%s/out.json", n->dir);
    char *s = slurp(path);
    const char *ls = s ? strstr(s, "\"listen\":\"") : NULL;
    const char *end = ls ? strchr(ls + 10, '"') : NULL;
    bool ok = end && (size_t)(end - ls - 10) < sizeof n->listen;
    if (ok) {
        memcpy(n->listen, ls + 10, (size_t)(end - ls - 10));
        n->listen[end - ls - 10] = '\0';
    }
    free(s);
    return ok;
}

static void spawn(node *n, const char *exe, const char *bootstrap)
{
    char key[700], data[700], out[700], err[700];
    snprintf(key, sizeof key, "%s/key", n->dir);
    snprintf(data, sizeof data, "%s/data", n->dir);
    snprintf(out, sizeof out, "%s/out.json", n->dir);
    snprintf(err, sizeof err, "%s/err.log", n->dir);
    const char *argv[12] = {exe, "--listen", "127.0.0.1:0", "--key", key,
                            "--data", data};
    int k = 7;
    if (bootstrap) {
        argv[k++] = "--bootstrap";
        argv[k++] = bootstrap;
    }
    argv[k] = NULL;
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
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    n->pid = pid;
    n->done_ms = n->start_ms = -1;
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

static long rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *s = slurp(path);
    const char *p = s ? strstr(s, "VmRSS:") : NULL;
    long kib = p ? strtol(p + 6, NULL, 10) : -1;
    free(s);
    return kib;
}

static void stop_all(node *nodes, int n, double *exit_ms)
{
    int64_t t0 = now_real_ms();
    for (int i = 0; i < n; i++)
        if (nodes[i].pid > 0)
            kill(nodes[i].pid, SIGTERM);
    int left = n;
    while (left > 0 && now_real_ms() - t0 < 10000) {
        left = 0;
        for (int i = 0; i < n; i++) {
            if (nodes[i].pid <= 0)
                continue;
            if (waitpid(nodes[i].pid, NULL, WNOHANG) == nodes[i].pid)
                nodes[i].pid = 0;
            else
                left++;
        }
        if (left)
            sleep_ms(5);
    }
    *exit_ms = (double)(now_real_ms() - t0);
    for (int i = 0; i < n; i++)
        if (nodes[i].pid > 0) {
            kill(nodes[i].pid, SIGKILL);
            waitpid(nodes[i].pid, NULL, 0);
            nodes[i].pid = 0;
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

/* One cluster from start to shutdown; the idle window only when
 * idle_s > 0. */
static bool one_run(const char *exe, int n, int idle_s, run_result *res)
{
    static node nodes[MAX_NODES];
    char root[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/mk-disc-bench-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(root))
        die("mkdtemp");
    for (int i = 0; i < n; i++) {
        node *nd = &nodes[i];
        memset(nd, 0, sizeof *nd);
        snprintf(nd->dir, sizeof nd->dir, "%s/n%d", root, i);
        if (mkdir(nd->dir, 0700) != 0)
            die("mkdir");
        char key[700];
        snprintf(key, sizeof key, "%s/key", nd->dir);
        mk_keypair kp;
        if (mk_keypair_generate(&kp) < 0 || mk_keypair_save(&kp, key, NULL) < 0)
            die("key");
        mk_id_hex(&kp.pub, nd->peer_id);
    }

    spawn(&nodes[0], exe, NULL);
    int64_t until = now_real_ms() + 10000;
    while (!read_listen(&nodes[0]) && now_real_ms() < until)
        sleep_ms(5);
    if (!nodes[0].listen[0]) {
        fprintf(stderr, "bench_discovery: the bootstrap did not start\n");
        double ignored;
        stop_all(nodes, 1, &ignored);
        rmtree(root);
        return false;
    }
    char boot[200];
    snprintf(boot, sizeof boot, "%s@%s", nodes[0].peer_id, nodes[0].listen);
    long long cpu0 = cpu_ticks(nodes[0].pid);

    int64_t t0 = now_real_ms();
    for (int i = 1; i < n; i++)
        spawn(&nodes[i], exe, boot);

    /* Converged when every log has its (n-1)th discovery. */
    bool all = false;
    long long cpu_at = 0;
    while (!all && now_real_ms() - t0 < CONVERGE_LIMIT_MS) {
        sleep_ms(20);
        all = true;
        for (int i = 0; i < n; i++) {
            if (nodes[i].done_ms < 0)
                scan_log(&nodes[i], n - 1);
            all = all && nodes[i].done_ms >= 0;
        }
        if (all)
            for (int i = 0; i < n; i++)
                cpu_at += cpu_ticks(nodes[i].pid);
    }
    if (!all) {
        int missing = 0;
        for (int i = 0; i < n; i++)
            missing += nodes[i].done_ms < 0;
        fprintf(stderr,
                "bench_discovery: %d of %d nodes had not converged after "
                "%d s\n",
                missing, n, CONVERGE_LIMIT_MS / 1000);
        double ignored;
        stop_all(nodes, n, &ignored);
        rmtree(root);
        return false;
    }
    double per[MAX_NODES];
    res->converge_ms = 0;
    for (int i = 0; i < n; i++) {
        per[i] = (double)(nodes[i].done_ms - t0);
        if (per[i] > res->converge_ms)
            res->converge_ms = per[i];
    }
    res->node_med = median(per, n); /* sorts per[] */
    res->node_min = per[0];
    res->node_max = per[n - 1];
    for (int i = 0; i < n; i++)
        per[i] = (double)(nodes[i].done_ms - nodes[i].start_ms);
    res->own_med = median(per, n);
    long tck = sysconf(_SC_CLK_TCK);
    res->converge_cpu_s = (double)(cpu_at - cpu0) / (double)tck;

    /* Settle, then memory, then a quiet window for CPU. */
    sleep_ms(SETTLE_MS);
    double rss[MAX_NODES];
    for (int i = 0; i < n; i++)
        rss[i] = (double)rss_kib(nodes[i].pid);
    res->rss_med_kib = median(rss, n);
    res->rss_min_kib = rss[0];
    res->rss_max_kib = rss[n - 1];

    res->cpu_total_pct = res->cpu_med_pct = res->cpu_max_pct = -1;
    if (idle_s > 0) {
        long long before[MAX_NODES];
        for (int i = 0; i < n; i++)
            before[i] = cpu_ticks(nodes[i].pid);
        int64_t w0 = now_real_ms();
        sleep_ms(idle_s * 1000);
        double window_s = (double)(now_real_ms() - w0) / 1000.0;
        double pct[MAX_NODES], total = 0;
        for (int i = 0; i < n; i++) {
            pct[i] = 100.0 * (double)(cpu_ticks(nodes[i].pid) - before[i]) /
                     (double)tck / window_s;
            total += pct[i];
        }
        res->cpu_total_pct = total;
        res->cpu_med_pct = median(pct, n);
        res->cpu_max_pct = pct[n - 1];
    }

    stop_all(nodes, n, &res->exit_ms);
    rmtree(root);
    return true;
}

int main(int argc, char **argv)
{
    int n = 32, runs = 5, idle_s = 60, opt;
    while ((opt = getopt(argc, argv, "n:r:i:")) != -1) {
        switch (opt) {
        case 'n': n = atoi(optarg); break;
        case 'r': runs = atoi(optarg); break;
        case 'i': idle_s = atoi(optarg); break;
        default: optind = argc + 1; break;
        }
    }
    if (optind != argc - 1 || n < 2 || n > MAX_NODES || runs < 1 ||
        idle_s < 1) {
        fprintf(stderr, "usage: bench_discovery [-n nodes] [-r runs] "
                        "[-i idle seconds] BUILD_DIR\n");
        return 2;
    }
    char exe[1024];
    snprintf(exe, sizeof exe, "%s/coalitiond", argv[optind]);
    if (access(exe, X_OK) != 0)
        die(exe);

    run_result r[64];
    if (runs > 64)
        runs = 64;
    int ok = 0;
    printf("discovery: %d coalitiond on loopback, one bootstrap; %d runs; "
           "idle CPU over %d s in the last\n",
           n, runs, idle_s);
    printf("%-4s %10s %24s %9s %9s %10s %8s\n", "run", "converge",
           "per node min/med/max", "own med", "conv CPU", "RSS med", "exit");
    const run_result *idle = NULL;
    for (int i = 0; i < runs; i++) {
        if (!one_run(exe, n, i == runs - 1 ? idle_s : 0, &r[ok]))
            continue;
        run_result *x = &r[ok++];
        printf("%-4d %8.0fms %8.0f/%5.0f/%5.0fms %7.0fms %8.2fs %7.1fMiB "
               "%6.0fms\n",
               i + 1, x->converge_ms, x->node_min, x->node_med, x->node_max,
               x->own_med, x->converge_cpu_s, x->rss_med_kib / 1024.0,
               x->exit_ms);
        fflush(stdout);
        if (x->cpu_total_pct >= 0)
            idle = x;
    }
    if (ok == 0)
        return 1;
    /* Medians over the runs, field by field. */
    double conv[64], nmin[64], nmed[64], nmax[64], own[64], ccpu[64],
        rss[64], rmin[64], rmax[64], ex[64];
    for (int i = 0; i < ok; i++) {
        conv[i] = r[i].converge_ms;
        nmin[i] = r[i].node_min;
        nmed[i] = r[i].node_med;
        nmax[i] = r[i].node_max;
        own[i] = r[i].own_med;
        ccpu[i] = r[i].converge_cpu_s;
        rss[i] = r[i].rss_med_kib;
        rmin[i] = r[i].rss_min_kib;
        rmax[i] = r[i].rss_max_kib;
        ex[i] = r[i].exit_ms;
    }
    printf("median of %d runs:\n", ok);
    printf("  convergence (all %d know each other)  %8.0f ms\n", n,
           median(conv, ok));
    printf("  per node, from spawn                  min %.0f / med %.0f / "
           "max %.0f ms\n",
           median(nmin, ok), median(nmed, ok), median(nmax, ok));
    printf("  per node, from its own start (med)    %8.0f ms\n",
           median(own, ok));
    printf("  CPU to converge, all nodes            %8.2f s\n",
           median(ccpu, ok));
    printf("  idle RSS per node                     med %.1f MiB "
           "(min %.1f, max %.1f)\n",
           median(rss, ok) / 1024.0, median(rmin, ok) / 1024.0,
           median(rmax, ok) / 1024.0);
    if (idle) {
        printf("  idle CPU per node (last run)          med %.2f%% "
               "(max %.2f%%) of a core\n",
               idle->cpu_med_pct, idle->cpu_max_pct);
        printf("  idle CPU, all %d nodes (last run)     %8.2f%% of a core\n",
               n, idle->cpu_total_pct);
    }
    printf("  SIGTERM to all exited                 %8.0f ms\n",
           median(ex, ok));
    return 0;
}
