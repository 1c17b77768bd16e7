/* A Compute provider in coalitiond (daemon_provider.h says what it does
 * and the contract an image gets).
 *
 * Each grant is a `prun` going FETCH → RUN → DRAIN → FINISH: the image
 * arrives as a verified blob, is copied (and hashed again) into a private
 * working directory, runs as a child in its own process group under the
 * grant's limits, its output is committed as it comes, and its usage
 * record goes last. The child is forked by hand rather than with
 * uv_spawn because its limits must be set between fork and exec and its
 * usage (rusage) is only reported by wait4; a SIGCHLD watcher (and a slow
 * timer, in case signals coalesce) reaps it.
 */
#include "daemon_provider.h"

#include <dirent.h>
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
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "coalition/compute.h"
#include "mosaik/blake3.h"
#include "mosaik/blob.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "util.h"

#define REAP_MS 1000
#define DRAIN_GRACE_MS 1000
#define RECORD_KEEP_S (8 * 24 * 3600) /* longer than any grant lives */

typedef struct prun prun;

struct daemon_provider {
    co_compute_resources cap;
    char regions[CO_COMPUTE_MAX_REGIONS][CO_COMPUTE_MAX_REGION_LEN + 1];
    const char *region_ptrs[CO_COMPUTE_MAX_REGIONS];
    size_t n_regions;
    bool tdx;
    char cgroup_mode[4096]; /* "auto", "off" or a directory */

    mk_node *node;
    char runs_dir[4096], work_dir[4096];
    mk_blobs *blobs;
    co_compute_provider *prov;
    uv_signal_t sigchld;
    uv_timer_t reaper;
    bool handles_up;
    char cgroup[4096]; /* the parent of per-run cgroups, "" when off */
    prun *runs;
    bool stopping;
    int closing;
    void (*stop_cb)(void *);
    void *stop_data;
    char readbuf[65536]; /* every pipe read lands here, consumed at once */
};

enum { R_FETCH, R_RUN, R_DRAIN, R_FINISH };

struct prun {
    prun *next;
    daemon_provider *dp;
    co_compute_grant g;
    char hex[MK_ID_HEX_LEN + 1];
    char record[4300], work[4300], cgroup[4300];
    int state;
    mk_blob_fetch *fetch;
    pid_t pid;
    int64_t started_mono;
    uv_pipe_t pipe[2];
    bool pipe_open[2];
    uv_timer_t timer;
    int handles; /* libuv handles still to close */
    int kill_why; /* 0, CO_COMPUTE_DEADLINE or CO_COMPUTE_REVOKED */
    bool exited, ended;
    int wstatus;
    struct rusage ru;
    uint64_t out_bytes;
    co_compute_log log;
};

static void say(const prun *r, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(const prun *r, const char *level, const char *fmt, ...)
{
    char line[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    util_log(level, "compute: %.16s attempt %" PRIu32 ": %s", r->hex,
             r->g.attempt, line);
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

int daemon_provider_load(const char *path, daemon_provider **out, char *err,
                         size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
        return -1;
    }
    daemon_provider *dp = calloc(1, sizeof *dp);
    if (!dp) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(dp->cgroup_mode, sizeof dp->cgroup_mode, "auto");
    const char *key;
    json_t *v;
    int bad = !json_is_object(root);
    if (bad)
        snprintf(err, errlen, "%s: expected a JSON object", path);
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
            snprintf(err, errlen,
                     "%s: unknown key \"%s\" (cpu, ram, storage, regions, "
                     "tdx, cgroup)",
                     path, key);
            bad = 2;
        }
        if (bad == 1) {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            snprintf(err, errlen, "%s: \"%s\": %.60s%s is not %s", path, key,
                     text ? text : "this value",
                     text && strlen(text) > 60 ? "..." : "", want);
            free(text);
        }
    }
    json_decref(root);
    if (!bad && (!dp->cap.cpu_millis || !dp->cap.ram_mib)) {
        snprintf(err, errlen, "%s: \"%s\" is required (and above 0)", path,
                 !dp->cap.cpu_millis ? "cpu" : "ram");
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

static int make_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -errno : 0;
}

static int rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return unlink(path);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(sub);
        else
            unlink(sub);
    }
    closedir(d);
    return rmdir(path);
}

/* One line appended to a run's record, on disk before we go on: the
 * record is what keeps a grant from running twice. */
static int record_line(const prun *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int record_line(const prun *r, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        n = (int)strlen(line);
    int fd = open(r->record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write(fd, line, (size_t)n) == n && fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

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

static void cgroup_setup(prun *r)
{
    daemon_provider *dp = r->dp;
    r->cgroup[0] = '\0';
    if (!dp->cgroup[0])
        return;
    char path[4300], file[4400], val[64];
    snprintf(path, sizeof path, "%s/%.16s-%" PRIu32, dp->cgroup, r->hex,
             r->g.attempt);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        say(r, "WARN", "cgroup %s: %s; rlimits only", path, strerror(errno));
        return;
    }
    const co_compute_resources *x = &r->g.reserved;
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

static void cgroup_kill(prun *r)
{
    if (!r->cgroup[0])
        return;
    char file[4400];
    snprintf(file, sizeof file, "%s/cgroup.kill", r->cgroup);
    write_file(file, "1"); /* kernels before 5.14 lack it: the pgid does */
}

/* ---- runs ------------------------------------------------------------------------ */

static void finish(prun *r);

static prun *find_run(daemon_provider *dp, const mk_id *id, uint32_t attempt)
{
    for (prun *r = dp->runs; r; r = r->next)
        if (r->g.attempt == attempt && mk_id_eq(&r->g.request_id, id))
            return r;
    return NULL;
}

static void check_stopped(daemon_provider *dp);

static void run_free(prun *r)
{
    daemon_provider *dp = r->dp;
    for (prun **pp = &dp->runs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    free(r);
    check_stopped(dp);
}

static void on_handle_closed(uv_handle_t *h)
{
    prun *r = h->data;
    if (--r->handles == 0)
        run_free(r);
}

static void close_pipe(prun *r, int i)
{
    if (!r->pipe_open[i])
        return;
    r->pipe_open[i] = false;
    uv_close((uv_handle_t *)&r->pipe[i], on_handle_closed);
}

/* Releases what a run holds; it is freed once its handles closed. */
static void run_end(prun *r)
{
    if (r->ended)
        return;
    r->ended = true;
    if (r->work[0])
        rm_tree(r->work);
    if (r->cgroup[0])
        rmdir(r->cgroup);
    close_pipe(r, 0);
    close_pipe(r, 1);
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
}

static void set_log(prun *r, int exit, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_log(prun *r, int exit, int code, const char *fmt, ...)
{
    co_compute_log *l = &r->log;
    l->request_id = r->g.request_id;
    l->attempt = r->g.attempt;
    l->exit = (uint8_t)exit;
    l->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->reason, sizeof l->reason, fmt, ap);
    va_end(ap);
}

/* A grant that never runs, with why. */
static void no_run(prun *r, int exit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void no_run(prun *r, int exit, const char *fmt, ...)
{
    char why[CO_COMPUTE_REASON_LEN + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    set_log(r, exit, 0, "%s", why);
    say(r, exit == CO_COMPUTE_REFUSED ? "WARN" : "INFO", "%s: %s",
        co_compute_exit_name(exit), why);
    finish(r);
}

static void on_logged(int status, void *data)
{
    prun *r = data;
    if (status == 0) {
        record_line(r, "logged\n");
        say(r, "INFO", "logged: %s (%s)", co_compute_exit_name(r->log.exit),
            r->log.reason);
    } else if (status == CO_ECONFIG) {
        say(r, "WARN", "the committee refused its log (the grant moved on)");
    }
    run_end(r);
}

static void finish(prun *r)
{
    daemon_provider *dp = r->dp;
    r->state = R_FINISH;
    const co_compute_log *l = &r->log;
    /* Saved first: a restart resubmits this log rather than call it lost. */
    record_line(r,
                "log %u %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                " %d %s\n",
                l->exit, (int)l->code, l->usage.cpu_ms, l->usage.peak_rss_kib,
                l->usage.wall_ms, l->usage.output_bytes,
                l->usage.output_truncated, l->reason);
    if (dp->stopping ||
        co_compute_provider_finish(dp->prov, l, on_logged, r) < 0)
        run_end(r);
}

static void usage_log(prun *r)
{
    co_compute_usage *u = &r->log.usage;
    u->cpu_ms = (uint64_t)(r->ru.ru_utime.tv_sec + r->ru.ru_stime.tv_sec) *
                    1000 +
                (uint64_t)(r->ru.ru_utime.tv_usec + r->ru.ru_stime.tv_usec) /
                    1000;
    u->peak_rss_kib = (uint64_t)r->ru.ru_maxrss;
    u->wall_ms = (uint64_t)(mk_mono_ms() - r->started_mono);
    u->output_bytes = r->out_bytes;
    int st = r->wstatus;
    if (r->kill_why == CO_COMPUTE_DEADLINE)
        set_log(r, CO_COMPUTE_DEADLINE, WIFSIGNALED(st) ? WTERMSIG(st) : 0,
                "killed at valid_to");
    else if (r->kill_why == CO_COMPUTE_REVOKED)
        set_log(r, CO_COMPUTE_REVOKED, WIFSIGNALED(st) ? WTERMSIG(st) : 0,
                "killed: the grant left this provider");
    else if (WIFEXITED(st))
        set_log(r, CO_COMPUTE_EXITED, WEXITSTATUS(st), "exited with status %d",
                WEXITSTATUS(st));
    else
        set_log(r, CO_COMPUTE_SIGNALED, WTERMSIG(st), "killed by signal %d%s",
                WTERMSIG(st),
                WTERMSIG(st) == SIGXCPU ? " (CPU time limit)" : "");
}

static void maybe_done(prun *r)
{
    if (r->state != R_DRAIN || r->pipe_open[0] || r->pipe_open[1])
        return;
    uv_timer_stop(&r->timer);
    usage_log(r);
    say(r, "INFO", "%s after %" PRIu64 " ms, %" PRIu64 " ms CPU, %" PRIu64
                   " KiB peak RSS",
        r->log.reason, r->log.usage.wall_ms, r->log.usage.cpu_ms,
        r->log.usage.peak_rss_kib);
    finish(r);
}

static void on_drain_timeout(uv_timer_t *t)
{
    /* Something the child left behind still holds its pipes. */
    prun *r = t->data;
    close_pipe(r, 0);
    close_pipe(r, 1);
    maybe_done(r);
}

static void kill_run(prun *r, int why)
{
    if (!r->kill_why)
        r->kill_why = why;
    if (r->pid > 0 && !r->exited) {
        kill(-r->pid, SIGKILL);
        cgroup_kill(r);
    }
}

static void on_deadline(uv_timer_t *t)
{
    prun *r = t->data;
    say(r, "INFO", "valid_to reached: killing it");
    kill_run(r, CO_COMPUTE_DEADLINE);
}

static void reap(daemon_provider *dp)
{
    for (prun *r = dp->runs; r; r = r->next) {
        if (r->state != R_RUN || r->exited)
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
        r->state = R_DRAIN;
        uv_timer_stop(&r->timer);
        uv_timer_start(&r->timer, on_drain_timeout, DRAIN_GRACE_MS, 0);
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
    prun *r = h->data;
    buf->base = r->dp->readbuf;
    buf->len = sizeof r->dp->readbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    prun *r = s->data;
    int i = (uv_pipe_t *)s == &r->pipe[0] ? 0 : 1;
    if (n > 0) {
        r->out_bytes += (uint64_t)n;
        co_compute_provider_output(r->dp->prov, &r->g.request_id,
                                   r->g.attempt, i + 1, buf->base,
                                   (size_t)n);
        return;
    }
    if (n < 0) {
        close_pipe(r, i);
        maybe_done(r);
    }
}

/* Copies the stored blob to the working directory as `image`, hashing
 * what it writes: what runs is what was hashed. 0 or a negated errno. */
static int copy_hashed(const char *from, const char *to, mk_id *hash)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (out < 0) {
        int rc = -errno;
        close(in);
        return rc;
    }
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    char buf[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        mk_blake3_update(&h, buf, (size_t)n);
        if (write(out, buf, (size_t)n) != n) {
            rc = -errno;
            break;
        }
    }
    mk_blake3_final(&h, hash->b, MK_ID_LEN);
    close(in);
    if (close(out) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Between fork and exec: only async-signal-safe calls, nothing that
 * allocates. */
static void child(const prun *r, int out_w, int err_w, char *const argv[],
                  char *const envp[], const char *procs)
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
    if (chdir(r->work) != 0)
        _exit(126);
    const co_compute_resources *x = &r->g.reserved;
    int64_t left = r->g.valid_to_ms - mk_now_ms();
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

static void spawn(prun *r, const char *blob)
{
    daemon_provider *dp = r->dp;
    char image[4400];
    snprintf(r->work, sizeof r->work, "%s/%s.%" PRIu32, dp->work_dir, r->hex,
             r->g.attempt);
    rm_tree(r->work);
    if (make_dir(r->work) < 0) {
        r->work[0] = '\0';
        no_run(r, CO_COMPUTE_FAILED, "cannot create a working directory");
        return;
    }
    snprintf(image, sizeof image, "%s/image", r->work);
    mk_id got;
    int rc = copy_hashed(blob, image, &got);
    if (rc < 0) {
        no_run(r, CO_COMPUTE_FAILED, "cannot copy the image: %s",
               strerror(-rc));
        return;
    }
    if (!mk_id_eq(&got, &r->g.image_hash)) {
        char hex[MK_ID_HEX_LEN + 1];
        no_run(r, CO_COMPUTE_REFUSED,
               "the image's bytes hash to %.16s..., not the grant's image "
               "hash: refused to run it",
               mk_id_hex(&got, hex));
        return;
    }
    if (mk_now_ms() >= r->g.valid_to_ms) {
        no_run(r, CO_COMPUTE_DEADLINE, "valid_to passed before it started");
        return;
    }
    cgroup_setup(r);

    /* Everything the child needs, prepared before fork. */
    char env[8][160];
    const co_compute_resources *x = &r->g.reserved;
    snprintf(env[0], sizeof env[0], "HOME=%s", r->work);
    snprintf(env[1], sizeof env[1], "TMPDIR=%s", r->work);
    snprintf(env[2], sizeof env[2], "COMPUTE_REQUEST_ID=%s", r->hex);
    snprintf(env[3], sizeof env[3], "COMPUTE_ATTEMPT=%" PRIu32, r->g.attempt);
    snprintf(env[4], sizeof env[4], "COMPUTE_VALID_TO_MS=%" PRId64,
             r->g.valid_to_ms);
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

    int out[2], err[2];
    if (pipe(out) != 0) {
        no_run(r, CO_COMPUTE_FAILED, "pipe: %s", strerror(errno));
        return;
    }
    if (pipe(err) != 0) {
        close(out[0]);
        close(out[1]);
        no_run(r, CO_COMPUTE_FAILED, "pipe: %s", strerror(errno));
        return;
    }
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    fcntl(err[0], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0)
        child(r, out[1], err[1], argv, envp, r->cgroup[0] ? procs : NULL);
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        no_run(r, CO_COMPUTE_FAILED, "fork: %s", strerror(errno));
        return;
    }
    /* The child also does it; whoever is first wins the race for kill. */
    setpgid(pid, pid);
    r->pid = pid;
    r->started_mono = mk_mono_ms();
    r->state = R_RUN;
    record_line(r, "started %d %llu\n", (int)pid, proc_start(pid));
    int fds[2] = {out[0], err[0]};
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(mk_node_loop(dp->node), &r->pipe[i], 0);
        r->pipe[i].data = r;
        r->handles++;
        r->pipe_open[i] = true;
        if (uv_pipe_open(&r->pipe[i], fds[i]) != 0 ||
            uv_read_start((uv_stream_t *)&r->pipe[i], on_alloc, on_read) != 0)
            close_pipe(r, i);
    }
    int64_t left = r->g.valid_to_ms - mk_now_ms();
    uv_timer_start(&r->timer, on_deadline, left > 0 ? (uint64_t)left : 0, 0);
    say(r, "INFO", "running as pid %d until %" PRId64 " (%" PRId64 " ms)",
        (int)pid, r->g.valid_to_ms, left);
    reap(dp); /* it may be gone already */
}

static void on_fetched(mk_blob_fetch *f, int status,
                       const mk_blob_fetch_result *res, void *data)
{
    prun *r = data;
    r->fetch = NULL;
    if (r->dp->stopping) {
        run_end(r);
        return;
    }
    if (r->kill_why) {
        no_run(r, r->kill_why, "%s before it started",
               r->kill_why == CO_COMPUTE_DEADLINE
                   ? "valid_to passed"
                   : "the grant left this provider");
        return;
    }
    if (status == MK_EHASH_MISMATCH) {
        /* The bytes offered are not the image the grant names. */
        no_run(r, CO_COMPUTE_REFUSED,
               "image bytes do not match the grant's image hash; refused "
               "(%s)",
               res->reason);
        return;
    }
    if (status < 0) {
        no_run(r, CO_COMPUTE_FAILED, "cannot fetch the image: %s (%s)",
               mk_strerror(status), res->reason);
        return;
    }
    spawn(r, res->path);
}

/* Reads what an earlier process wrote for this grant. */
static void resume_from_record(prun *r)
{
    FILE *f = fopen(r->record, "r");
    char line[700];
    bool logged = false, have_log = false;
    pid_t pid = 0;
    unsigned long long start = 0;
    while (f && fgets(line, sizeof line, f)) {
        int p;
        unsigned long long s;
        unsigned ex, tr;
        int code, off = 0;
        co_compute_usage u = {0};
        if (sscanf(line, "started %d %llu", &p, &s) == 2) {
            pid = p;
            start = s;
        } else if (strncmp(line, "logged", 6) == 0) {
            logged = true;
        } else if (sscanf(line,
                          "log %u %d %" SCNu64 " %" SCNu64 " %" SCNu64
                          " %" SCNu64 " %u %n",
                          &ex, &code, &u.cpu_ms, &u.peak_rss_kib, &u.wall_ms,
                          &u.output_bytes, &tr, &off) == 7 &&
                   off > 0) {
            u.output_truncated = tr != 0;
            line[strcspn(line, "\n")] = '\0';
            set_log(r, (int)ex, code, "%s", line + off);
            r->log.usage = u;
            have_log = true;
        }
    }
    if (f)
        fclose(f);
    /* A workload of the previous process outliving it (PDEATHSIG covers
     * the image itself, not what it forked): kill its group. */
    if (pid > 0 && start && proc_start(pid) == start) {
        say(r, "WARN", "killing the orphaned process group %d", (int)pid);
        kill(-pid, SIGKILL);
    }
    if (have_log) {
        say(r, "INFO", "%s: resubmitting its saved log",
            logged ? "logged before" : "finished before a restart");
        finish(r);
        return;
    }
    no_run(r, CO_COMPUTE_LOST,
           "the provider restarted while it ran; it is never run twice");
}

static void on_grant(co_compute_provider *p, const co_compute_grant *g,
                     void *data)
{
    daemon_provider *dp = data;
    if (dp->stopping || find_run(dp, &g->request_id, g->attempt))
        return;
    prun *r = calloc(1, sizeof *r);
    if (!r) {
        util_log("ERROR", "compute: out of memory for a grant");
        return;
    }
    r->dp = dp;
    r->g = *g;
    mk_id_hex(&g->request_id, r->hex);
    snprintf(r->record, sizeof r->record, "%s/%s.%" PRIu32, dp->runs_dir,
             r->hex, g->attempt);
    uv_timer_init(mk_node_loop(dp->node), &r->timer);
    r->timer.data = r;
    r->handles = 1;
    r->next = dp->runs;
    dp->runs = r;
    char image[MK_ID_HEX_LEN + 1], peer[MK_ID_HEX_LEN + 1];
    say(r, "INFO", "granted: image %.16s... from %.16s..., %" PRIu64
                   "m cpu, %" PRIu64 " MiB",
        mk_id_hex(&g->image_hash, image), mk_id_hex(&g->bearer.peer, peer),
        g->reserved.cpu_millis, g->reserved.ram_mib);
    if (access(r->record, F_OK) == 0) {
        resume_from_record(r);
        return;
    }
    if (record_line(r, "accepted %" PRId64 "\n", mk_now_ms()) != 0) {
        r->record[0] = '\0';
        no_run(r, CO_COMPUTE_FAILED, "cannot write its record");
        return;
    }
    if (!mk_id_eq(&g->bearer.hash, &g->image_hash)) {
        no_run(r, CO_COMPUTE_REFUSED, "the bearer pointer names another "
                                      "image than the grant: refused");
        return;
    }
    r->state = R_FETCH;
    mk_blob_fetch_config fc = {.hash = g->bearer.hash,
                               .from = &g->bearer.peer,
                               .n_from = 1};
    if (mk_blob_fetch_start(dp->blobs, &fc, on_fetched, r, &r->fetch) < 0)
        no_run(r, CO_COMPUTE_FAILED, "cannot start fetching the image");
}

static void on_revoke(co_compute_provider *p, const mk_id *id,
                      uint32_t attempt, int why, void *data)
{
    prun *r = find_run(data, id, attempt);
    if (!r || r->state == R_FINISH)
        return;
    why = why ? why : CO_COMPUTE_REVOKED;
    say(r, "INFO", "%s: stopping it",
        why == CO_COMPUTE_DEADLINE ? "the committee expired the grant"
                                   : "the grant left this provider");
    if (r->state == R_FETCH && r->fetch) {
        r->kill_why = why;
        mk_blob_fetch_cancel(r->fetch); /* on_fetched reports it */
        return;
    }
    kill_run(r, why);
}

static void provider_log(const char *level, const char *line, void *data)
{
    util_log(level, "%s", line);
}

/* Drops records older than any grant can live: they can no longer
 * match a grant, so they no longer guard anything. */
static void prune_records(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[4400];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(p, &st) == 0 &&
            S_ISREG(st.st_mode) && now - st.st_mtime > RECORD_KEEP_S)
            unlink(p);
    }
    closedir(d);
}

int daemon_provider_start(daemon_provider *dp, mk_node *node,
                          const co_coalition_config *coalition,
                          const char *data_dir, char *err, size_t errlen)
{
    char blobs[4300], merr[CO_ERRMSG_SIZE];
    dp->node = node;
    snprintf(blobs, sizeof blobs, "%s/blobs", data_dir);
    snprintf(dp->runs_dir, sizeof dp->runs_dir, "%s/compute/runs", data_dir);
    snprintf(dp->work_dir, sizeof dp->work_dir, "%s/compute/work", data_dir);
    if (make_dir(dp->runs_dir) < 0 || make_dir(dp->work_dir) < 0) {
        snprintf(err, errlen, "compute: cannot create %s: %s", dp->runs_dir,
                 strerror(errno));
        return -1;
    }
    prune_records(dp->runs_dir);
    if (mk_blobs_new(node, blobs, &dp->blobs, merr) < 0) {
        snprintf(err, errlen, "compute: %s", merr);
        return -1;
    }
    cgroup_detect(dp);
    uv_signal_init(mk_node_loop(node), &dp->sigchld);
    uv_timer_init(mk_node_loop(node), &dp->reaper);
    dp->sigchld.data = dp->reaper.data = dp;
    dp->handles_up = true;
    uv_signal_start(&dp->sigchld, on_sigchld, SIGCHLD);
    uv_timer_start(&dp->reaper, on_reaper, REAP_MS, REAP_MS);
    co_compute_provider_config pc = {
        .node = node,
        .coalition = coalition,
        .capacity = dp->cap,
        .regions = dp->region_ptrs,
        .n_regions = dp->n_regions,
        .tdx_capable = dp->tdx,
        .on_grant = on_grant,
        .on_revoke = on_revoke,
        .log = provider_log,
        .data = dp,
    };
    if (co_compute_provider_start(&pc, &dp->prov, merr) < 0) {
        snprintf(err, errlen, "compute: %s", merr);
        return -1;
    }
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
    if (!dp->stopping || dp->runs || dp->prov || dp->closing)
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

static void on_prov_stopped(void *data)
{
    daemon_provider *dp = data;
    dp->prov = NULL;
    /* What still runs was killed: collect it (no log: after the
     * departure the committee re-matches it elsewhere). */
    for (prun *r = dp->runs, *next; r; r = next) {
        next = r->next;
        if (r->pid > 0 && !r->exited)
            waitpid(r->pid, NULL, 0);
        if (r->state == R_FETCH && r->fetch)
            mk_blob_fetch_cancel(r->fetch); /* on_fetched ends it */
        else if (r->state != R_FINISH)
            run_end(r);
    }
    check_stopped(dp);
}

void daemon_provider_stop(daemon_provider *dp, void (*cb)(void *data),
                          void *data)
{
    dp->stopping = true;
    dp->stop_cb = cb;
    dp->stop_data = data;
    for (prun *r = dp->runs; r; r = r->next)
        if (r->state == R_RUN || r->state == R_DRAIN)
            kill_run(r, CO_COMPUTE_REVOKED);
    if (dp->prov) {
        util_log("INFO", "compute: departing (running work is re-matched)");
        co_compute_provider_stop(dp->prov, true, 2000, on_prov_stopped, dp);
    } else {
        on_prov_stopped(dp);
    }
}

void daemon_provider_free(daemon_provider *dp)
{
    if (!dp)
        return;
    mk_blobs_free(dp->blobs);
    free(dp);
}
