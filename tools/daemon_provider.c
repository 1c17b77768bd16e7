/* A Compute provider in coalitiond (daemon_provider.h says what it does
 * and the contract an image gets).
 *
 * The library's runner (coalition/compute_runner.h) decides what runs
 * and keeps each grant to one run: records, the bearer check, the
 * verified fetch, the copy hashed into a working directory, valid_to,
 * revocations, the signed log. This file is its executor: each started
 * job is a child in its own process group under the grant's limits,
 * whose output is handed on as it comes. The child is forked by hand
 * rather than with uv_spawn because its limits must be set between fork
 * and exec and its usage (rusage) is only reported by wait4; a SIGCHLD
 * watcher (and a slow timer, in case signals coalesce) reaps it.
 */
#include "daemon_provider.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "coalition/compute.h"
#include "coalition/compute_runner.h"
#include "mosaik/clock.h"
#include "util.h"

#define REAP_MS 1000
#define DRAIN_GRACE_MS 1000

typedef struct xrun xrun;

struct daemon_provider {
    co_compute_resources cap;
    char regions[CO_COMPUTE_MAX_REGIONS][CO_COMPUTE_MAX_REGION_LEN + 1];
    const char *region_ptrs[CO_COMPUTE_MAX_REGIONS];
    size_t n_regions;
    bool tdx;
    char cgroup_mode[4096]; /* "auto", "off" or a directory */

    mk_node *node;
    co_compute_executor ex;
    co_compute_runner *runner;
    uv_signal_t sigchld;
    uv_timer_t reaper;
    bool handles_up;
    char cgroup[4096]; /* the parent of per-run cgroups, "" when off */
    xrun *runs;        /* started children, until their handles closed */
    bool stopping, runner_stopped;
    int closing;
    void (*stop_cb)(void *);
    void *stop_data;
    char readbuf[65536]; /* every pipe read lands here, consumed at once */
};

/* One started job: its child, pipes and drain timer. */
struct xrun {
    xrun *next;
    daemon_provider *dp;
    co_compute_job *job;        /* NULL once released */
    const co_compute_grant *g;  /* the job's, valid until released */
    uint32_t attempt;
    char hex[MK_ID_HEX_LEN + 1];
    char cgroup[4300];
    pid_t pid;
    uv_pipe_t pipe[2];
    bool pipe_open[2];
    uv_timer_t drain;
    int handles; /* libuv handles still to close */
    bool exited, reported;
    int wstatus;
    struct rusage ru;
};

static void say(const xrun *r, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(const xrun *r, const char *level, const char *fmt, ...)
{
    char line[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    util_log(level, "compute: %.16s attempt %" PRIu32 ": %s", r->hex,
             r->attempt, line);
}

/* ---- the provider file -------------------------------------------------------- */

/* Numbers are cores (cpu) or MiB (sizes); strings as util.h reads them. */
static int parse_cpu(json_t *v, uint64_t *out)
{
    if (json_is_number(v) && json_number_value(v) > 0) {
        *out = (uint64_t)(json_number_value(v) * 1000 + 0.5);
        return *out ? 0 : -1;
    }
    return json_is_string(v) ? util_parse_millicores(json_string_value(v), out)
                             : -1;
}

static int parse_mib(json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    return json_is_string(v) ? util_parse_mib(json_string_value(v), out) : -1;
}

int daemon_provider_load(const char *path, daemon_provider **out, char *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, MK_ERRMSG_SIZE, "%s:%d: %s", path, je.line, je.text);
        return -1;
    }
    daemon_provider *dp = calloc(1, sizeof *dp);
    if (!dp) {
        json_decref(root);
        snprintf(err, MK_ERRMSG_SIZE, "out of memory");
        return -1;
    }
    snprintf(dp->cgroup_mode, sizeof dp->cgroup_mode, "auto");
    const char *key;
    json_t *v;
    int bad = !json_is_object(root);
    if (bad)
        snprintf(err, MK_ERRMSG_SIZE, "%s: expected a JSON object", path);
    json_object_foreach(root, key, v)
    {
        if (bad)
            break;
        /* What the key takes, for the message when the value is bad. */
        const char *want = "";
        if (strcmp(key, "cpu") == 0) {
            /* parse_* return -1: a failure must count as bad (1), or the
             * error would go out with an empty message. */
            bad = parse_cpu(v, &dp->cap.cpu_millis) != 0;
            want = "a number of cores above 0 (2, 0.5) or millicores "
                   "(\"1500m\")";
        } else if (strcmp(key, "ram") == 0) {
            bad = parse_mib(v, &dp->cap.ram_mib) != 0;
            want = "MiB as a whole number, or a size like \"512M\", "
                   "\"2G\", \"1.5GiB\"";
        } else if (strcmp(key, "storage") == 0) {
            bad = parse_mib(v, &dp->cap.storage_mib) != 0;
            want = "MiB as a whole number, or a size like \"512M\", "
                   "\"2G\", \"1.5GiB\"";
        } else if (strcmp(key, "tdx") == 0) {
            bad = !json_is_boolean(v);
            dp->tdx = json_is_true(v);
            want = "true or false";
        } else if (strcmp(key, "cgroup") == 0) {
            bad = !json_is_string(v) || !json_string_length(v);
            want = "a non-empty string";
            if (!bad)
                snprintf(dp->cgroup_mode, sizeof dp->cgroup_mode, "%s",
                         json_string_value(v));
        } else if (strcmp(key, "regions") == 0) {
            want = "an array of non-empty region names";
            bad = !json_is_array(v) ||
                  json_array_size(v) > CO_COMPUTE_MAX_REGIONS;
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                if (bad || !json_is_string(e) || !json_string_length(e) ||
                    json_string_length(e) > CO_COMPUTE_MAX_REGION_LEN) {
                    bad = 1;
                    break;
                }
                snprintf(dp->regions[i], sizeof dp->regions[i], "%s",
                         json_string_value(e));
                dp->region_ptrs[i] = dp->regions[i];
                dp->n_regions = i + 1;
            }
        } else {
            snprintf(err, MK_ERRMSG_SIZE,
                     "%s: unknown key \"%s\" (cpu, ram, storage, regions, "
                     "tdx, cgroup)",
                     path, key);
            bad = 2;
        }
        if (bad == 1) {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            snprintf(err, MK_ERRMSG_SIZE, "%s: \"%s\": %.60s%s is not %s",
                     path, key, text ? text : "this value",
                     text && strlen(text) > 60 ? "..." : "", want);
            free(text);
        }
    }
    json_decref(root);
    if (!bad && (!dp->cap.cpu_millis || !dp->cap.ram_mib)) {
        snprintf(err, MK_ERRMSG_SIZE, "%s: \"%s\" is required (and above 0)",
                 path, !dp->cap.cpu_millis ? "cpu" : "ram");
        bad = 1;
    }
    if (bad) {
        free(dp);
        return -1;
    }
    *out = dp;
    return 0;
}


/* ---- files ------------------------------------------------------------------ */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = strlen(text);
    int rc = write(fd, text, n) == (ssize_t)n ? 0 : -errno;
    close(fd);
    return rc;
}

/* The start time (clock ticks since boot) of `pid`, field 22 of its
 * stat: with the pid, it names one process for ever. 0 when gone. */
static unsigned long long proc_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long start = 0;
    /* after ")": state is field 3, starttime field 22 */
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (p)
        start = strtoull(p + 1, NULL, 10);
    return start;
}

/* ---- cgroups ------------------------------------------------------------------ */

static bool has_words(const char *file, const char *const *words, size_t n)
{
    char buf[512] = "";
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[k > 0 ? k : 0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *p = buf;
        size_t len = strlen(words[i]);
        bool found = false;
        while ((p = strstr(p, words[i]))) {
            if ((p == buf || p[-1] == ' ') &&
                (p[len] == ' ' || p[len] == '\n' || p[len] == '\0'))
                found = true;
            p += len;
        }
        if (!found)
            return false;
    }
    return true;
}

/* Uses cgroup v2 when the machine lets us: a delegated directory given
 * in the provider file, or (auto) a pure v2 hierarchy whose root we may
 * write as root. Anything else falls back to rlimits alone, and says so. */
static void cgroup_detect(daemon_provider *dp)
{
    static const char *const CTRL[] = {"memory", "cpu", "pids"};
    dp->cgroup[0] = '\0';
    if (strcmp(dp->cgroup_mode, "off") == 0)
        return;
    char parent[4096] = "";
    if (strcmp(dp->cgroup_mode, "auto") != 0) {
        snprintf(parent, sizeof parent, "%s", dp->cgroup_mode);
    } else {
        /* Pure v2: /proc/self/cgroup is the single line "0::/...". */
        FILE *f = fopen("/proc/self/cgroup", "r");
        char line[512];
        int lines = 0;
        bool v2 = false;
        while (f && fgets(line, sizeof line, f)) {
            lines++;
            v2 = strncmp(line, "0::", 3) == 0;
        }
        if (f)
            fclose(f);
        if (lines != 1 || !v2 || geteuid() != 0) {
            util_log("INFO", "compute: no cgroup v2 to use (hybrid or v1 "
                             "hierarchy, or not root): limits by rlimit only");
            return;
        }
        const char *root = "/sys/fs/cgroup";
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/cgroup.subtree_control", root);
        if (!has_words(sub, CTRL, 3))
            write_file(sub, "+memory +cpu +pids");
        if (!has_words(sub, CTRL, 3)) {
            util_log("INFO", "compute: cgroup v2 controllers not available "
                             "at %s: limits by rlimit only",
                     root);
            return;
        }
        snprintf(parent, sizeof parent, "%s/coalition-compute", root);
        mkdir(parent, 0755);
    }
    char ctl[4300];
    snprintf(ctl, sizeof ctl, "%s/cgroup.subtree_control", parent);
    if (!has_words(ctl, CTRL, 3))
        write_file(ctl, "+memory +cpu +pids");
    if (!has_words(ctl, CTRL, 3)) {
        util_log("WARN", "compute: cgroup %s lacks memory, cpu or pids in "
                         "cgroup.subtree_control: limits by rlimit only",
                 parent);
        return;
    }
    snprintf(dp->cgroup, sizeof dp->cgroup, "%s", parent);
    util_log("INFO", "compute: runs get cgroups under %s", dp->cgroup);
}

static void cgroup_setup(xrun *r)
{
    daemon_provider *dp = r->dp;
    r->cgroup[0] = '\0';
    if (!dp->cgroup[0])
        return;
    char path[4300], file[4400], val[64];
    snprintf(path, sizeof path, "%s/%.16s-%" PRIu32, dp->cgroup, r->hex,
             r->g->attempt);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        say(r, "WARN", "cgroup %s: %s; rlimits only", path, strerror(errno));
        return;
    }
    const co_compute_resources *x = &r->g->reserved;
    snprintf(file, sizeof file, "%s/memory.max", path);
    snprintf(val, sizeof val, "%" PRIu64, x->ram_mib << 20);
    int rc = write_file(file, val);
    snprintf(file, sizeof file, "%s/cpu.max", path);
    snprintf(val, sizeof val, "%" PRIu64 " 100000", x->cpu_millis * 100);
    rc = rc ? rc : write_file(file, val);
    snprintf(file, sizeof file, "%s/pids.max", path);
    rc = rc ? rc : write_file(file, "256");
    if (rc) {
        say(r, "WARN", "cgroup %s: cannot set limits: %s; rlimits only",
            path, strerror(-rc));
        rmdir(path);
        return;
    }
    snprintf(r->cgroup, sizeof r->cgroup, "%s", path);
}

static void cgroup_kill(xrun *r)
{
    if (!r->cgroup[0])
        return;
    char file[4400];
    snprintf(file, sizeof file, "%s/cgroup.kill", r->cgroup);
    write_file(file, "1"); /* kernels before 5.14 lack it: the pgid does */
}


/* ---- the executor ------------------------------------------------------------------ */

static void check_stopped(daemon_provider *dp);

static void on_handle_closed(uv_handle_t *h)
{
    xrun *r = h->data;
    if (--r->handles > 0)
        return;
    daemon_provider *dp = r->dp;
    for (xrun **pp = &dp->runs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    free(r);
    check_stopped(dp);
}

static void close_pipe(xrun *r, int i)
{
    if (!r->pipe_open[i])
        return;
    r->pipe_open[i] = false;
    uv_close((uv_handle_t *)&r->pipe[i], on_handle_closed);
}

/* Reports the end once the child is reaped and its pipes are drained. */
static void maybe_done(xrun *r)
{
    if (!r->exited || r->reported || !r->job || r->pipe_open[0] ||
        r->pipe_open[1])
        return;
    r->reported = true;
    uv_timer_stop(&r->drain);
    int st = r->wstatus;
    co_compute_outcome o = {
        .exit = WIFEXITED(st) ? CO_COMPUTE_EXITED : CO_COMPUTE_SIGNALED,
        .code = WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
        .cpu_ms = (uint64_t)(r->ru.ru_utime.tv_sec + r->ru.ru_stime.tv_sec) *
                      1000 +
                  (uint64_t)(r->ru.ru_utime.tv_usec + r->ru.ru_stime.tv_usec) /
                      1000,
        .peak_rss_kib = (uint64_t)r->ru.ru_maxrss,
        .note = WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU ? "CPU time limit"
                                                           : NULL,
    };
    co_compute_job_exited(r->job, &o); /* may release r before returning */
}

static void on_drain_timeout(uv_timer_t *t)
{
    /* Something the child left behind still holds its pipes. */
    xrun *r = t->data;
    close_pipe(r, 0);
    close_pipe(r, 1);
    maybe_done(r);
}

static void reap(daemon_provider *dp)
{
    for (xrun *r = dp->runs, *next; r; r = next) {
        next = r->next;
        if (r->exited || !r->job)
            continue;
        /* Looked at without reaping first: while the child is a zombie
         * its pid (and so its process group id) cannot be reused, so
         * killing what it left behind cannot hit anyone else. */
        siginfo_t info = {0};
        if (waitid(P_PID, (id_t)r->pid, &info, WEXITED | WNOHANG | WNOWAIT) !=
                0 ||
            info.si_pid != r->pid)
            continue;
        kill(-r->pid, SIGKILL);
        cgroup_kill(r);
        int st;
        struct rusage ru;
        if (wait4(r->pid, &st, 0, &ru) != r->pid)
            continue;
        r->exited = true;
        r->wstatus = st;
        r->ru = ru;
        uv_timer_start(&r->drain, on_drain_timeout, DRAIN_GRACE_MS, 0);
        maybe_done(r);
    }
}

static void on_sigchld(uv_signal_t *s, int signum)
{
    reap(s->data);
}

static void on_reaper(uv_timer_t *t)
{
    reap(t->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    xrun *r = h->data;
    buf->base = r->dp->readbuf;
    buf->len = sizeof r->dp->readbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    xrun *r = s->data;
    int i = (uv_pipe_t *)s == &r->pipe[0] ? 0 : 1;
    if (n > 0) {
        if (r->job)
            co_compute_job_output(r->job, i + 1, buf->base, (size_t)n);
        return;
    }
    if (n < 0) {
        close_pipe(r, i);
        maybe_done(r);
    }
}

/* Between fork and exec: only async-signal-safe calls, nothing that
 * allocates. */
static void child(const xrun *r, const char *work, int out_w, int err_w,
                  char *const argv[], char *const envp[], const char *procs)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    if (procs) {
        int fd = open(procs, O_WRONLY);
        if (fd >= 0) {
            if (write(fd, "0", 1) < 0) {
                /* Limits fall back to rlimits; nothing to report here. */
            }
            close(fd);
        }
    }
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0 || dup2(out_w, 1) < 0 ||
        dup2(err_w, 2) < 0)
        _exit(126);
    if (syscall(SYS_close_range, 3, ~0u, 0) != 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    if (chdir(work) != 0)
        _exit(126);
    const co_compute_resources *x = &r->g->reserved;
    int64_t left = r->g->valid_to_ms - mk_now_ms();
    if (left < 1000)
        left = 1000;
    /* CPU seconds: the grant's share of cores over its lifetime. */
    rlim_t cpu = (rlim_t)(((uint64_t)left * x->cpu_millis + 999999) /
                          1000000) + 1;
    struct rlimit lim[] = {
        {cpu, cpu + 1},
        {(rlim_t)x->ram_mib << 20, (rlim_t)x->ram_mib << 20},
        {(rlim_t)x->storage_mib << 20, (rlim_t)x->storage_mib << 20},
        {0, 0},
        {256, 256},
    };
    const int which[] = {RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_CORE,
                         RLIMIT_NOFILE};
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++)
        if (setrlimit(which[i], &lim[i]) != 0)
            _exit(126);
    signal(SIGPIPE, SIG_DFL);
    execve("./image", argv, envp);
    static const char msg[] = "coalitiond: cannot exec the image (is it an "
                              "executable with a #! line or an ELF?)\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* stderr is gone too */
    }
    _exit(127);
}

static int ex_start(co_compute_job *job, char *err, void *data)
{
    daemon_provider *dp = data;
    const co_compute_grant *g = job->grant;
    if (dp->stopping) {
        snprintf(err, CO_COMPUTE_REASON_LEN + 1, "the provider is stopping");
        return -1;
    }
    xrun *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, CO_COMPUTE_REASON_LEN + 1, "out of memory");
        return -1;
    }
    r->dp = dp;
    r->job = job;
    r->g = g;
    r->attempt = g->attempt;
    mk_id_hex(&g->request_id, r->hex);
    cgroup_setup(r);

    /* Everything the child needs, prepared before fork. */
    char env[8][160];
    const co_compute_resources *x = &g->reserved;
    snprintf(env[0], sizeof env[0], "HOME=%s", job->work_dir);
    snprintf(env[1], sizeof env[1], "TMPDIR=%s", job->work_dir);
    snprintf(env[2], sizeof env[2], "COMPUTE_REQUEST_ID=%s", r->hex);
    snprintf(env[3], sizeof env[3], "COMPUTE_ATTEMPT=%" PRIu32, g->attempt);
    snprintf(env[4], sizeof env[4], "COMPUTE_VALID_TO_MS=%" PRId64,
             g->valid_to_ms);
    snprintf(env[5], sizeof env[5], "COMPUTE_CPU_MILLIS=%" PRIu64,
             x->cpu_millis);
    snprintf(env[6], sizeof env[6], "COMPUTE_RAM_MIB=%" PRIu64, x->ram_mib);
    snprintf(env[7], sizeof env[7], "COMPUTE_STORAGE_MIB=%" PRIu64,
             x->storage_mib);
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", env[0], env[1],
                    env[2], env[3], env[4], env[5], env[6], env[7], NULL};
    char *argv[] = {"./image", NULL};
    char procs[4400];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", r->cgroup);

    int out[2], errp[2];
    if (pipe(out) != 0) {
        snprintf(err, CO_COMPUTE_REASON_LEN + 1, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (pipe(errp) != 0) {
        snprintf(err, CO_COMPUTE_REASON_LEN + 1, "pipe: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        goto fail;
    }
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    fcntl(errp[0], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0)
        child(r, job->work_dir, out[1], errp[1], argv, envp,
              r->cgroup[0] ? procs : NULL);
    close(out[1]);
    close(errp[1]);
    if (pid < 0) {
        snprintf(err, CO_COMPUTE_REASON_LEN + 1, "fork: %s", strerror(errno));
        close(out[0]);
        close(errp[0]);
        goto fail;
    }
    /* The child also does it; whoever is first wins the race for kill. */
    setpgid(pid, pid);
    r->pid = pid;
    /* Pid and start time name this process for ever: a restart ends it
     * through ex_orphan. */
    snprintf(job->handle, sizeof job->handle, "%d %llu", (int)pid,
             proc_start(pid));
    job->data = r;
    uv_loop_t *loop = mk_node_loop(dp->node);
    uv_timer_init(loop, &r->drain);
    r->drain.data = r;
    r->handles = 1;
    r->next = dp->runs;
    dp->runs = r;
    int fds[2] = {out[0], errp[0]};
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(loop, &r->pipe[i], 0);
        r->pipe[i].data = r;
        r->handles++;
        r->pipe_open[i] = true;
        if (uv_pipe_open(&r->pipe[i], fds[i]) != 0 ||
            uv_read_start((uv_stream_t *)&r->pipe[i], on_alloc, on_read) != 0)
            close_pipe(r, i);
    }
    say(r, "INFO", "running as pid %d", (int)pid);
    return 0;

fail:
    if (r->cgroup[0])
        rmdir(r->cgroup);
    free(r);
    return -1;
}

static void ex_kill(co_compute_job *job, void *data)
{
    xrun *r = job->data;
    if (r->pid > 0 && !r->exited) {
        kill(-r->pid, SIGKILL);
        cgroup_kill(r);
    }
}

static void ex_release(co_compute_job *job, void *data)
{
    xrun *r = job->data;
    /* Not reaped yet: the runner killed it first; collect it now. */
    if (r->pid > 0 && !r->exited) {
        waitpid(r->pid, NULL, 0);
        r->exited = true;
    }
    r->job = NULL;
    r->g = NULL;
    if (r->cgroup[0])
        rmdir(r->cgroup);
    close_pipe(r, 0);
    close_pipe(r, 1);
    uv_close((uv_handle_t *)&r->drain, on_handle_closed);
}

/* A workload of an earlier process outliving it (PDEATHSIG covers the
 * image itself, not what it forked): kill its group, if the pid still
 * names the process that process started. */
static void ex_orphan(const char *handle, void *data)
{
    int pid = 0;
    unsigned long long start = 0;
    if (sscanf(handle, "%d %llu", &pid, &start) != 2 || pid <= 0 || !start)
        return;
    if (proc_start(pid) == start) {
        util_log("WARN", "compute: killing the orphaned process group %d",
                 pid);
        kill(-pid, SIGKILL);
    }
}

static void runner_log(const char *level, const char *line, void *data)
{
    util_log(level, "%s", line);
}

int daemon_provider_start(daemon_provider *dp, mk_node *node,
                          const co_coalition_config *coalition,
                          const char *data_dir, char *err)
{
    char merr[CO_ERRMSG_SIZE];
    dp->node = node;
    dp->ex = (co_compute_executor){.start = ex_start,
                                   .kill = ex_kill,
                                   .release = ex_release,
                                   .orphan = ex_orphan,
                                   .data = dp};
    co_compute_runner_config rc = {
        .node = node,
        .coalition = coalition,
        .data_dir = data_dir,
        .capacity = dp->cap,
        .regions = dp->region_ptrs,
        .n_regions = dp->n_regions,
        .tdx_capable = dp->tdx,
        .executor = &dp->ex,
        .log = runner_log,
        .data = dp,
    };
    if (co_compute_runner_start(&rc, &dp->runner, merr) < 0) {
        snprintf(err, MK_ERRMSG_SIZE, "compute: %s", merr);
        return -1;
    }
    cgroup_detect(dp);
    uv_signal_init(mk_node_loop(node), &dp->sigchld);
    uv_timer_init(mk_node_loop(node), &dp->reaper);
    dp->sigchld.data = dp->reaper.data = dp;
    dp->handles_up = true;
    uv_signal_start(&dp->sigchld, on_sigchld, SIGCHLD);
    uv_timer_start(&dp->reaper, on_reaper, REAP_MS, REAP_MS);
    util_log("INFO", "compute: providing %" PRIu64 "m cpu, %" PRIu64
                     " MiB ram, %" PRIu64 " MiB storage%s",
             dp->cap.cpu_millis, dp->cap.ram_mib, dp->cap.storage_mib,
             dp->tdx ? ", TDX" : "");
    return 0;
}

/* ---- stopping ----------------------------------------------------------------------- */

static void on_stop_handle_closed(uv_handle_t *h)
{
    daemon_provider *dp = h->data;
    if (--dp->closing == 0 && dp->stop_cb)
        dp->stop_cb(dp->stop_data);
}

static void check_stopped(daemon_provider *dp)
{
    if (!dp->stopping || !dp->runner_stopped || dp->runs || dp->closing)
        return;
    if (!dp->handles_up) {
        if (dp->stop_cb)
            dp->stop_cb(dp->stop_data);
        return;
    }
    dp->handles_up = false;
    dp->closing = 2;
    uv_close((uv_handle_t *)&dp->sigchld, on_stop_handle_closed);
    uv_close((uv_handle_t *)&dp->reaper, on_stop_handle_closed);
}

static void on_runner_stopped(void *data)
{
    daemon_provider *dp = data;
    dp->runner_stopped = true;
    check_stopped(dp);
}

void daemon_provider_stop(daemon_provider *dp, mk_close_cb cb, void *data)
{
    dp->stopping = true;
    dp->stop_cb = cb;
    dp->stop_data = data;
    if (dp->runner)
        co_compute_runner_close(dp->runner, on_runner_stopped, dp);
    else
        on_runner_stopped(dp);
}

void daemon_provider_free(daemon_provider *dp)
{
    if (!dp)
        return;
    free(dp);
}
