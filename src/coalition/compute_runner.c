/* The provider's lifecycle (include/coalition/compute_runner.h): what
 * runs, and that it runs at most once.
 *
 * Each grant is a job going FETCH → RUN → FINISH: a record is written
 * before anything else, the image arrives as a verified blob, is copied
 * (and hashed again) into a private working directory, the executor runs
 * it, and the final log is saved in the record before it is committed.
 * The record is the whole guarantee, so it is on disk (fsync'd) before
 * the step it guards: no fetch without "accepted", no commit of a log
 * that a restart could not find again.
 *
 * Nothing here knows how a workload runs; the executor reports output
 * and the end, and a kill the runner asked for (valid_to, revocation)
 * decides the exit kind, whatever the executor saw.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "coalition/error.h"
#include "compute_runner_internal.h"
#include "logline.h"
#include "mosaik/blake3.h"
#include "mosaik/blob.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"

#define RECORD_KEEP_S (8 * 24 * 3600) /* longer than any grant lives */
#define DEPART_TIMEOUT_MS 2000

enum { J_NEW, J_FETCH, J_RUN, J_FINISH };

typedef struct job job;

struct job {
    co_compute_job pub; /* first: the executor's handle is the job */
    job *next;
    co_compute_runner *r;
    co_compute_grant g;
    char hex[MK_ID_HEX_LEN + 1];
    char record[4300], work[4300], image[4400];
    int state;
    mk_blob_fetch *fetch;
    bool started, exited, released, ended;
    int kill_why; /* 0, CO_COMPUTE_DEADLINE or CO_COMPUTE_REVOKED */
    int64_t started_mono;
    uint64_t out_bytes;
    uv_timer_t timer; /* valid_to */
    co_compute_log log;
};

struct co_compute_runner {
    co_compute_runner_config cfg; /* regions and data_dir not kept */
    co__runner_sink sink;
    co_compute_provider *prov;
    mk_blobs *blobs;
    char runs_dir[4096], work_dir[4096];
    job *jobs;
    bool stopping, prov_gone, stop_called;
    void (*stop_cb)(void *);
    void *stop_data;
};

/* ---- words ---------------------------------------------------------------------- */

static void emit(const co_compute_runner *r, const char *level,
                 const char *line)
{
    if (r->cfg.log)
        r->cfg.log(level, line, r->cfg.data);
}

static void say(const job *j, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(const job *j, const char *level, const char *fmt, ...)
{
    if (!j->r->cfg.log)
        return;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "compute: %.16s attempt %" PRIu32 ": ",
             j->hex, j->g.attempt);
    va_list ap;
    va_start(ap, fmt);
    co__vlog(j->r->cfg.log, j->r->cfg.data, level, prefix, fmt, ap);
    va_end(ap);
}

/* ---- files ---------------------------------------------------------------------- */

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

/* One line appended to a job's record, on disk before we go on. */
static int record_line(const job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int record_line(const job *j, const char *fmt, ...)
{
    if (!j->record[0])
        return MK_EIO;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        n = (int)strlen(line);
    int fd = open(j->record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write(fd, line, (size_t)n) == n && fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Copies the stored blob to the working directory, hashing what it
 * writes: what runs is what was hashed. 0 or a negated errno. */
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

/* Drops records older than any grant can live: they can no longer match
 * a grant, so they no longer guard anything. */
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

/* ---- jobs ----------------------------------------------------------------------- */

static void finish(job *j);
static void check_stopped(co_compute_runner *r);

static job *find_job(co_compute_runner *r, const mk_id *id, uint32_t attempt)
{
    for (job *j = r->jobs; j; j = j->next)
        if (j->g.attempt == attempt && mk_id_eq(&j->g.request_id, id))
            return j;
    return NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    job *j = h->data;
    co_compute_runner *r = j->r;
    for (job **pp = &r->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    free(j);
    check_stopped(r);
}

static void kill_job(job *j, int why)
{
    if (!j->kill_why)
        j->kill_why = why;
    if (j->started && !j->exited && !j->released) {
        const co_compute_executor *ex = j->r->cfg.executor;
        ex->kill(&j->pub, ex->data);
    }
}

/* Releases what a job holds; it is freed once its timer closed. */
static void job_end(job *j)
{
    if (j->ended)
        return;
    j->ended = true;
    if (j->started && !j->released) {
        const co_compute_executor *ex = j->r->cfg.executor;
        if (!j->exited)
            kill_job(j, CO_COMPUTE_REVOKED);
        j->released = true;
        ex->release(&j->pub, ex->data);
    }
    if (j->work[0])
        rm_tree(j->work);
    uv_close((uv_handle_t *)&j->timer, on_timer_closed);
}

static void set_log(job *j, int exit, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_log(job *j, int exit, int code, const char *fmt, ...)
{
    co_compute_log *l = &j->log;
    l->request_id = j->g.request_id;
    l->attempt = j->g.attempt;
    l->exit = (uint8_t)exit;
    l->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->reason, sizeof l->reason, fmt, ap);
    va_end(ap);
}

/* A grant that never runs, with why. */
static void no_run(job *j, int exit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void no_run(job *j, int exit, const char *fmt, ...)
{
    char why[CO_COMPUTE_REASON_LEN + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    set_log(j, exit, 0, "%s", why);
    say(j, exit == CO_COMPUTE_REFUSED ? "WARN" : "INFO", "%s: %s",
        co_compute_exit_name(exit), why);
    finish(j);
}

static void on_logged(int status, void *data)
{
    job *j = data;
    if (status == 0) {
        record_line(j, "logged\n");
        say(j, "INFO", "logged: %s (%s)", co_compute_exit_name(j->log.exit),
            j->log.reason);
    } else if (status == CO_ECONFIG) {
        say(j, "WARN", "the committee refused its log (the grant moved on)");
    }
    if ((status == 0 || status == CO_ECONFIG) && j->r->cfg.on_logged)
        j->r->cfg.on_logged(&j->log, status, j->r->cfg.data);
    job_end(j);
}

static void finish(job *j)
{
    co_compute_runner *r = j->r;
    j->state = J_FINISH;
    uv_timer_stop(&j->timer);
    const co_compute_log *l = &j->log;
    /* Saved first: a restart commits this log rather than call it lost. */
    record_line(j,
                "log %u %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                " %d %s\n",
                l->exit, (int)l->code, l->usage.cpu_ms, l->usage.peak_rss_kib,
                l->usage.wall_ms, l->usage.output_bytes,
                l->usage.output_truncated, l->reason);
    if (r->stopping || r->sink.finish(r->sink.ctx, l, on_logged, j) < 0)
        job_end(j);
}

static void on_deadline(uv_timer_t *t)
{
    job *j = t->data;
    say(j, "INFO", "valid_to reached: killing it");
    kill_job(j, CO_COMPUTE_DEADLINE);
}

static void run(job *j, const char *blob)
{
    co_compute_runner *r = j->r;
    const co_compute_executor *ex = r->cfg.executor;
    snprintf(j->work, sizeof j->work, "%s/%s.%" PRIu32, r->work_dir, j->hex,
             j->g.attempt);
    rm_tree(j->work);
    if (make_dir(j->work) < 0) {
        j->work[0] = '\0';
        no_run(j, CO_COMPUTE_FAILED, "cannot create a working directory");
        return;
    }
    snprintf(j->image, sizeof j->image, "%s/image", j->work);
    mk_id got;
    int rc = copy_hashed(blob, j->image, &got);
    if (rc < 0) {
        no_run(j, CO_COMPUTE_FAILED, "cannot copy the image: %s",
               strerror(-rc));
        return;
    }
    if (!mk_id_eq(&got, &j->g.image_hash)) {
        char hex[MK_ID_HEX_LEN + 1];
        no_run(j, CO_COMPUTE_REFUSED,
               "the image's bytes hash to %.16s..., not the grant's image "
               "hash: refused to run it",
               mk_id_hex(&got, hex));
        return;
    }
    if (mk_now_ms() >= j->g.valid_to_ms) {
        no_run(j, CO_COMPUTE_DEADLINE, "valid_to passed before it started");
        return;
    }
    char why[CO_COMPUTE_REASON_LEN + 1] = "";
    j->pub.handle[0] = '\0';
    rc = ex->start(&j->pub, why, ex->data);
    if (rc < 0) {
        no_run(j, CO_COMPUTE_FAILED, "%s", why[0] ? why : co_strerror(rc));
        return;
    }
    j->started = true;
    j->started_mono = mk_mono_ms();
    j->state = J_RUN;
    /* The handle goes on one line of the record, whatever it holds. */
    j->pub.handle[CO_COMPUTE_HANDLE_LEN] = '\0';
    for (char *p = j->pub.handle; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    record_line(j, "started %s\n", j->pub.handle);
    int64_t left = j->g.valid_to_ms - mk_now_ms();
    uv_timer_start(&j->timer, on_deadline, left > 0 ? (uint64_t)left : 0, 0);
    say(j, "INFO", "running%s%s until %" PRId64 " (%" PRId64 " ms)",
        j->pub.handle[0] ? " as " : "", j->pub.handle, j->g.valid_to_ms,
        left);
}

static void on_fetched(mk_blob_fetch *f, int status,
                       const mk_blob_fetch_result *res, void *data)
{
    job *j = data;
    j->fetch = NULL;
    if (j->r->stopping) {
        job_end(j);
        return;
    }
    if (j->kill_why) {
        no_run(j, j->kill_why, "%s before it started",
               j->kill_why == CO_COMPUTE_DEADLINE
                   ? "valid_to passed"
                   : "the grant left this provider");
        return;
    }
    if (status == MK_EHASH_MISMATCH) {
        /* The bytes offered are not the image the grant names. */
        no_run(j, CO_COMPUTE_REFUSED,
               "image bytes do not match the grant's image hash; refused "
               "(%s)",
               res->reason);
        return;
    }
    if (status < 0) {
        no_run(j, CO_COMPUTE_FAILED, "cannot fetch the image: %s (%s)",
               mk_strerror(status), res->reason);
        return;
    }
    run(j, res->path);
}

/* Reads what an earlier process wrote for this grant: the documented
 * rule (compute_runner.h) is applied here. */
static void resume_from_record(job *j)
{
    const co_compute_executor *ex = j->r->cfg.executor;
    FILE *f = fopen(j->record, "r");
    char line[700], handle[CO_COMPUTE_HANDLE_LEN + 1] = "";
    bool logged = false, have_log = false;
    while (f && fgets(line, sizeof line, f)) {
        unsigned ex_kind, tr;
        int code, off = 0;
        co_compute_usage u = {0};
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "started ", 8) == 0) {
            snprintf(handle, sizeof handle, "%s", line + 8);
        } else if (strncmp(line, "logged", 6) == 0) {
            logged = true;
        } else if (sscanf(line,
                          "log %u %d %" SCNu64 " %" SCNu64 " %" SCNu64
                          " %" SCNu64 " %u %n",
                          &ex_kind, &code, &u.cpu_ms, &u.peak_rss_kib,
                          &u.wall_ms, &u.output_bytes, &tr, &off) == 7 &&
                   off > 0) {
            u.output_truncated = tr != 0;
            set_log(j, (int)ex_kind, code, "%s", line + off);
            j->log.usage = u;
            have_log = true;
        }
    }
    if (f)
        fclose(f);
    /* What the earlier process started may outlive it. */
    if (handle[0] && ex->orphan)
        ex->orphan(handle, ex->data);
    if (have_log) {
        say(j, "INFO", "%s: resubmitting its saved log",
            logged ? "logged before" : "finished before a restart");
        finish(j);
        return;
    }
    no_run(j, CO_COMPUTE_LOST,
           "the provider restarted while it ran; it is never run twice");
}

void co__compute_runner_grant(co_compute_runner *r, const co_compute_grant *g)
{
    if (r->stopping || find_job(r, &g->request_id, g->attempt))
        return;
    job *j = calloc(1, sizeof *j);
    if (!j) {
        emit(r, "ERROR", "compute: out of memory for a grant");
        return;
    }
    j->r = r;
    j->g = *g;
    j->pub.grant = &j->g;
    j->pub.work_dir = j->work;
    j->pub.image = j->image;
    mk_id_hex(&g->request_id, j->hex);
    snprintf(j->record, sizeof j->record, "%s/%s.%" PRIu32, r->runs_dir,
             j->hex, g->attempt);
    uv_timer_init(mk_node_loop(r->cfg.node), &j->timer);
    j->timer.data = j;
    j->next = r->jobs;
    r->jobs = j;
    char image[MK_ID_HEX_LEN + 1], peer[MK_ID_HEX_LEN + 1];
    say(j, "INFO",
        "granted: image %.16s... from %.16s..., %" PRIu64 "m cpu, %" PRIu64
        " MiB",
        mk_id_hex(&g->image_hash, image), mk_id_hex(&g->bearer.peer, peer),
        g->reserved.cpu_millis, g->reserved.ram_mib);
    /* The run-once rule: a record means this grant was taken before. */
    if (access(j->record, F_OK) == 0) {
        resume_from_record(j);
        return;
    }
    if (record_line(j, "accepted %" PRId64 "\n", mk_now_ms()) != 0) {
        j->record[0] = '\0';
        no_run(j, CO_COMPUTE_FAILED, "cannot write its record");
        return;
    }
    if (!mk_id_eq(&g->bearer.hash, &g->image_hash)) {
        no_run(j, CO_COMPUTE_REFUSED, "the bearer pointer names another "
                                      "image than the grant: refused");
        return;
    }
    j->state = J_FETCH;
    mk_blob_fetch_config fc = {.hash = g->bearer.hash,
                               .from = &g->bearer.peer,
                               .n_from = 1};
    if (mk_blob_fetch_start(r->blobs, &fc, on_fetched, j, &j->fetch) < 0)
        no_run(j, CO_COMPUTE_FAILED, "cannot start fetching the image");
}

void co__compute_runner_revoke(co_compute_runner *r, const mk_id *id,
                               uint32_t attempt, int why)
{
    job *j = find_job(r, id, attempt);
    if (!j || j->state == J_FINISH || j->ended)
        return;
    why = why ? why : CO_COMPUTE_REVOKED;
    say(j, "INFO", "%s: stopping it",
        why == CO_COMPUTE_DEADLINE ? "the committee expired the grant"
                                   : "the grant left this provider");
    if (j->state == J_FETCH && j->fetch) {
        j->kill_why = why;
        mk_blob_fetch_cancel(j->fetch); /* on_fetched reports it */
        return;
    }
    kill_job(j, why);
}

/* ---- what the executor reports ------------------------------------------------- */

void co_compute_job_output(co_compute_job *pub, int stream, const void *bytes,
                           size_t len)
{
    job *j = (job *)pub;
    co_compute_runner *r = j->r;
    if (j->state != J_RUN || j->released)
        return;
    j->out_bytes += len;
    if (!r->prov_gone && r->sink.output)
        r->sink.output(r->sink.ctx, &j->g.request_id, j->g.attempt, stream,
                       bytes, len);
}

void co_compute_job_exited(co_compute_job *pub, const co_compute_outcome *o)
{
    job *j = (job *)pub;
    if (j->state != J_RUN || j->exited || j->released)
        return;
    j->exited = true;
    uv_timer_stop(&j->timer);
    co_compute_usage *u = &j->log.usage;
    u->cpu_ms = o->cpu_ms;
    u->peak_rss_kib = o->peak_rss_kib;
    u->wall_ms = (uint64_t)(mk_mono_ms() - j->started_mono);
    u->output_bytes = j->out_bytes;
    int sig = o->exit == CO_COMPUTE_SIGNALED ? (int)o->code : 0;
    if (j->kill_why == CO_COMPUTE_DEADLINE)
        set_log(j, CO_COMPUTE_DEADLINE, sig, "killed at valid_to");
    else if (j->kill_why == CO_COMPUTE_REVOKED)
        set_log(j, CO_COMPUTE_REVOKED, sig,
                "killed: the grant left this provider");
    else if (o->exit == CO_COMPUTE_EXITED)
        set_log(j, CO_COMPUTE_EXITED, o->code, "exited with status %d",
                (int)o->code);
    else
        set_log(j, CO_COMPUTE_SIGNALED, o->code, "killed by signal %d%s%s%s",
                (int)o->code, o->note ? " (" : "", o->note ? o->note : "",
                o->note ? ")" : "");
    say(j, "INFO",
        "%s after %" PRIu64 " ms, %" PRIu64 " ms CPU, %" PRIu64
        " KiB peak RSS",
        j->log.reason, u->wall_ms, u->cpu_ms, u->peak_rss_kib);
    finish(j);
}

/* ---- the runner ---------------------------------------------------------------- */

int co__compute_runner_open(const co_compute_runner_config *cfg,
                            const co__runner_sink *sink,
                            co_compute_runner **out, char *err)
{
    const co_compute_executor *ex = cfg->executor;
    if (!ex || !ex->start || !ex->kill || !ex->release) {
        snprintf(err, CO_ERRMSG_SIZE, "an executor with start, kill "
                                      "and release is required");
        return CO_ECONFIG;
    }
    if (!cfg->data_dir || !cfg->data_dir[0]) {
        snprintf(err, CO_ERRMSG_SIZE, "a data directory is required");
        return CO_ECONFIG;
    }
    co_compute_runner *r = calloc(1, sizeof *r);
    if (!r)
        return MK_ENOMEM;
    r->cfg = *cfg;
    r->cfg.regions = NULL;
    r->cfg.data_dir = NULL;
    r->sink = *sink;
    char blobs[4300];
    snprintf(blobs, sizeof blobs, "%s/blobs", cfg->data_dir);
    snprintf(r->runs_dir, sizeof r->runs_dir, "%s/compute/runs",
             cfg->data_dir);
    snprintf(r->work_dir, sizeof r->work_dir, "%s/compute/work",
             cfg->data_dir);
    int rc = make_dir(r->runs_dir);
    const char *bad = r->runs_dir;
    if (rc == 0) {
        rc = make_dir(r->work_dir);
        bad = r->work_dir;
    }
    if (rc < 0) {
        snprintf(err, CO_ERRMSG_SIZE, "cannot create %s: %s", bad,
                 strerror(-rc));
        free(r);
        return MK_EIO;
    }
    prune_records(r->runs_dir);
    char merr[MK_ERRMSG_SIZE];
    if ((rc = mk_blobs_new(cfg->node, blobs, &r->blobs, merr)) < 0) {
        snprintf(err, CO_ERRMSG_SIZE, "%s", merr);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- bound to co_compute_provider ---------------------------------------------- */

static long prov_output(void *ctx, const mk_id *id, uint32_t attempt,
                        int stream, const void *bytes, size_t len)
{
    co_compute_runner *r = ctx;
    return co_compute_provider_output(r->prov, id, attempt, stream, bytes,
                                      len);
}

static int prov_finish(void *ctx, const co_compute_log *log,
                       void (*done)(int, void *), void *data)
{
    co_compute_runner *r = ctx;
    return r->prov ? co_compute_provider_finish(r->prov, log, done, data)
                   : MK_ECANCELED;
}

static void on_grant(co_compute_provider *p, const co_compute_grant *g,
                     void *data)
{
    co__compute_runner_grant(data, g);
}

static void on_revoke(co_compute_provider *p, const mk_id *id,
                      uint32_t attempt, int why, void *data)
{
    co__compute_runner_revoke(data, id, attempt, why);
}

static void prov_log(const char *level, const char *line, void *data)
{
    emit(data, level, line);
}

int co_compute_runner_start(const co_compute_runner_config *cfg,
                            co_compute_runner **out, char *err)
{
    /* Everything the provider could refuse is checked before the blob
     * service exists: taking that back is asynchronous. */
    co_compute_params params;
    int rc = co_compute_params_get(cfg->coalition, &params, err);
    if (rc < 0)
        return rc;
    if (!cfg->capacity.cpu_millis || !cfg->capacity.ram_mib ||
        cfg->n_regions > CO_COMPUTE_MAX_REGIONS) {
        snprintf(err, CO_ERRMSG_SIZE,
                 "a provider offers some cpu and ram, in at most %d regions",
                 CO_COMPUTE_MAX_REGIONS);
        return CO_ECONFIG;
    }
    for (size_t i = 0; i < cfg->n_regions; i++) {
        size_t len = cfg->regions[i] ? strlen(cfg->regions[i]) : 0;
        if (len == 0 || len > CO_COMPUTE_MAX_REGION_LEN) {
            snprintf(err, CO_ERRMSG_SIZE, "region \"%s\": 1 to %d bytes",
                     cfg->regions[i] ? cfg->regions[i] : "",
                     CO_COMPUTE_MAX_REGION_LEN);
            return CO_ECONFIG;
        }
    }
    co_compute_runner *r;
    co__runner_sink sink = {.output = prov_output, .finish = prov_finish};
    if ((rc = co__compute_runner_open(cfg, &sink, &r, err)) < 0)
        return rc;
    r->sink.ctx = r;
    co_compute_provider_config pc = {
        .node = cfg->node,
        .coalition = cfg->coalition,
        .capacity = cfg->capacity,
        .regions = cfg->regions,
        .n_regions = cfg->n_regions,
        .tdx_capable = cfg->tdx_capable,
        .on_grant = on_grant,
        .on_revoke = on_revoke,
        .log = prov_log,
        .data = r,
    };
    if ((rc = co_compute_provider_open(&pc, &r->prov, err)) < 0) {
        /* Only out of memory gets here (everything else was checked).
         * With no provider this only closes the blob service, which
         * frees the runner from the loop. */
        co_compute_runner_close(r, NULL, NULL);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- stopping ------------------------------------------------------------------ */

static void on_blobs_closed(void *data)
{
    co_compute_runner *r = data;
    mk_close_cb cb = r->stop_cb;
    void *cb_data = r->stop_data;
    free(r);
    if (cb)
        cb(cb_data);
}

/* The blob service goes last: a fetch it made ends with its job. */
static void check_stopped(co_compute_runner *r)
{
    if (!r->stopping || !r->prov_gone || r->jobs || r->stop_called)
        return;
    r->stop_called = true;
    mk_blobs_close(r->blobs, on_blobs_closed, r);
}

static void on_prov_stopped(void *data)
{
    co_compute_runner *r = data;
    r->prov = NULL;
    r->prov_gone = true;
    /* What still runs was killed: release it (no log: after the
     * departure the committee re-matches it elsewhere). */
    for (job *j = r->jobs; j; j = j->next) {
        if (j->state == J_FETCH && j->fetch)
            mk_blob_fetch_cancel(j->fetch); /* on_fetched ends it */
        else
            job_end(j);
    }
    check_stopped(r);
}

void co_compute_runner_close(co_compute_runner *r, mk_close_cb cb,
                             void *data)
{
    if (r->stopping)
        return;
    r->stopping = true;
    r->stop_cb = cb;
    r->stop_data = data;
    for (job *j = r->jobs; j; j = j->next)
        if (j->state == J_RUN)
            kill_job(j, CO_COMPUTE_REVOKED);
    if (r->prov) {
        emit(r, "INFO", "compute: departing (running work is re-matched)");
        co_compute_provider_close(r->prov, true, DEPART_TIMEOUT_MS,
                                  on_prov_stopped, r);
    } else {
        on_prov_stopped(r);
    }
}
