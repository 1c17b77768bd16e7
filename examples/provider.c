/* A Compute provider in a page: the demo coalition compiled in, the
 * library's runner (coalition/compute_runner.h) deciding what runs and
 * keeping each grant to one run, and an executor of a few lines that runs
 * the granted image as a shell script with libuv. Nothing but the public
 * headers; coalitiond's provider is the same runner with fork, rlimits
 * and cgroups as its executor.
 *
 *   provider --bootstrap PEERID@HOST:PORT --data DIR [--grants N]
 *            [--timeout S]
 *
 * Its key is DIR/provider.key (made on first use), so a restarted
 * provider is the same ProviderId and its run records in DIR still hold:
 * a grant it took before a restart is reported, never run again.
 * The image runs as `/bin/sh ./image` in the grant's fresh working
 * directory with COMPUTE_REQUEST_ID and COMPUTE_ATTEMPT set, and no
 * limits of its own (this executor has none: that is coalitiond's job).
 * Each committed log is printed as one JSON line; after N of them (0:
 * never) it departs and exits.
 *
 * Exit status: 0 N grants were logged; 1 it could not start; 2 bad
 * usage; 3 the timeout passed first.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "coalition/compute.h"
#include "coalition/compute_runner.h"
#include "coalition/error.h"
#include "demo_coalition.h"
#include "mosaik/key.h"
#include "mosaik/node.h"

typedef struct app {
    uv_loop_t loop;
    mk_node *node;
    co_compute_runner *runner;
    uv_timer_t timer;
    uv_signal_t sig;
    unsigned long grants, logged;
    int exit;
    bool stopping;
} app;

/* ---- the executor: one shell process per job ---------------------------------- */

typedef struct run {
    co_compute_job *job; /* NULL once released */
    uv_process_t proc;
    uv_pipe_t pipe[2]; /* stdout, stderr */
    int open;          /* pipes not yet at EOF */
    int handles;       /* handles not yet closed */
    bool exited, reported;
    int64_t status;
    int signal;
} run;

static void on_run_closed(uv_handle_t *h)
{
    run *r = h->data;
    if (--r->handles == 0)
        free(r);
}

/* The end is reported once the process exited and its output drained. */
static void maybe_report(run *r)
{
    if (!r->job || !r->exited || r->open > 0 || r->reported)
        return;
    r->reported = true;
    co_compute_outcome o = {
        .exit = r->signal ? CO_COMPUTE_SIGNALED : CO_COMPUTE_EXITED,
        .code = r->signal ? r->signal : (int32_t)r->status,
    };
    co_compute_job_exited(r->job, &o);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signal)
{
    run *r = p->data;
    r->exited = true;
    r->status = status;
    r->signal = signal;
    maybe_report(r);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    run *r = s->data;
    if (n > 0 && r->job)
        co_compute_job_output(r->job, s == (uv_stream_t *)&r->pipe[0] ? 1 : 2,
                              buf->base, (size_t)n);
    free(buf->base);
    if (n < 0) {
        uv_read_stop(s);
        r->open--;
        maybe_report(r);
    }
}

static int ex_start(co_compute_job *job, char *err, void *data)
{
    app *a = data;
    run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, CO_COMPUTE_REASON_LEN + 1, "out of memory");
        return -1;
    }
    char id[MK_ID_HEX_LEN + 1], env_id[100], env_attempt[40];
    snprintf(env_id, sizeof env_id, "COMPUTE_REQUEST_ID=%s",
             mk_id_hex(&job->grant->request_id, id));
    snprintf(env_attempt, sizeof env_attempt, "COMPUTE_ATTEMPT=%u",
             (unsigned)job->grant->attempt);
    char *args[] = {"/bin/sh", "./image", NULL};
    char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", env_id, env_attempt,
                   NULL};
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE}};
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(&a->loop, &r->pipe[i], 0);
        r->pipe[i].data = r;
        stdio[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        stdio[i + 1].data.stream = (uv_stream_t *)&r->pipe[i];
    }
    uv_process_options_t po = {.exit_cb = on_exit_cb,
                               .file = args[0],
                               .args = args,
                               .env = env,
                               .cwd = job->work_dir,
                               .stdio_count = 3,
                               .stdio = stdio};
    r->proc.data = r;
    r->handles = 3;
    int rc = uv_spawn(&a->loop, &r->proc, &po);
    if (rc < 0) {
        snprintf(err, CO_COMPUTE_REASON_LEN + 1, "cannot run /bin/sh: %s",
                 uv_strerror(rc));
        /* A failed uv_spawn still initialised the handle. */
        uv_close((uv_handle_t *)&r->proc, on_run_closed);
        for (int i = 0; i < 2; i++)
            uv_close((uv_handle_t *)&r->pipe[i], on_run_closed);
        return -1;
    }
    r->open = 2;
    for (int i = 0; i < 2; i++)
        uv_read_start((uv_stream_t *)&r->pipe[i], on_alloc, on_read);
    r->job = job;
    job->data = r;
    snprintf(job->handle, sizeof job->handle, "pid %d", r->proc.pid);
    return 0;
}

static void ex_kill(co_compute_job *job, void *data)
{
    run *r = job->data;
    if (!r->exited)
        uv_process_kill(&r->proc, SIGKILL);
}

static void ex_release(co_compute_job *job, void *data)
{
    run *r = job->data;
    r->job = NULL;
    uv_close((uv_handle_t *)&r->proc, on_run_closed);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&r->pipe[i], on_run_closed);
}

/* ---- the provider ---------------------------------------------------------------- */

static void on_runner_stopped(void *data)
{
    app *a = data;
    uv_close((uv_handle_t *)&a->timer, NULL);
    uv_close((uv_handle_t *)&a->sig, NULL);
    mk_node_close(a->node, NULL, NULL);
}

static void stop(app *a, int exit)
{
    if (a->stopping)
        return;
    a->stopping = true;
    a->exit = exit;
    co_compute_runner_close(a->runner, on_runner_stopped, a);
}

static void on_logged(const co_compute_log *log, int status, void *data)
{
    app *a = data;
    char id[MK_ID_HEX_LEN + 1];
    printf("{\"request_id\":\"%s\",\"attempt\":%u,\"committed\":%s,"
           "\"exit\":\"%s\",\"code\":%d,\"output_bytes\":%llu}\n",
           mk_id_hex(&log->request_id, id), (unsigned)log->attempt,
           status == 0 ? "true" : "false", co_compute_exit_name(log->exit),
           (int)log->code, (unsigned long long)log->usage.output_bytes);
    fflush(stdout);
    if (status == 0 && ++a->logged == a->grants)
        stop(a, 0);
}

static void on_line(const char *level, const char *line, void *data)
{
    fprintf(stderr, "%s %s\n", level, line);
}

static void on_timeout(uv_timer_t *t)
{
    fprintf(stderr, "provider: the timeout passed\n");
    stop(t->data, 3);
}

static void on_signal(uv_signal_t *s, int signum)
{
    stop(s->data, 0);
}

static int usage(FILE *out)
{
    fprintf(out, "usage: provider --bootstrap PEERID@HOST:PORT --data DIR "
                 "[--grants N] [--timeout S]\n");
    return out == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    const char *boot = NULL, *data = NULL;
    unsigned long grants = 0, timeout_s = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bootstrap") == 0 && i + 1 < argc)
            boot = argv[++i];
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--grants") == 0 && i + 1 < argc)
            grants = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout_s = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--help") == 0)
            return usage(stdout);
        else
            return usage(stderr);
    }
    if (!boot || !data)
        return usage(stderr);

    char err[CO_ERRMSG_SIZE], keyfile[4200];
    mkdir(data, 0700);
    snprintf(keyfile, sizeof keyfile, "%s/provider.key", data);
    mk_keypair key;
    struct stat st;
    if (stat(keyfile, &st) == 0 ? mk_keypair_load(&key, keyfile, err) < 0
                                : mk_keypair_generate(&key) < 0 ||
                                      mk_keypair_save(&key, keyfile, err) < 0) {
        fprintf(stderr, "provider: %s: %s\n", keyfile, err);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN); /* a peer hanging up must not kill us */
    app a;
    memset(&a, 0, sizeof a);
    a.grants = grants;
    uv_loop_init(&a.loop);
    const char *boots[] = {boot};
    mk_node_config nc = {.loop = &a.loop, .key = &key, .bootstrap = boots,
                         .n_bootstrap = 1};
    if (mk_node_new(&nc, &a.node, err) < 0) {
        fprintf(stderr, "provider: %s\n", err);
        uv_loop_close(&a.loop);
        return 2;
    }
    mk_node_start(a.node);

    co_compute_executor ex = {.start = ex_start,
                              .kill = ex_kill,
                              .release = ex_release,
                              .data = &a};
    static const char *const regions[] = {"example"};
    co_compute_runner_config rc = {
        .node = a.node,
        .coalition = &DEMO_COALITION,
        .data_dir = data,
        .capacity = {.cpu_millis = 1000, .ram_mib = 256, .storage_mib = 64},
        .regions = regions,
        .n_regions = 1,
        .executor = &ex,
        .on_logged = on_logged,
        .log = on_line,
        .data = &a,
    };
    if (co_compute_runner_start(&rc, &a.runner, err) < 0) {
        fprintf(stderr, "provider: %s\n", err);
        mk_node_close(a.node, NULL, NULL);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        uv_loop_close(&a.loop);
        return 1;
    }
    char id[MK_ID_HEX_LEN + 1];
    fprintf(stderr, "provider: %s providing to the demo coalition\n",
            mk_id_hex(&key.pub, id));

    uv_timer_init(&a.loop, &a.timer);
    a.timer.data = &a;
    if (timeout_s)
        uv_timer_start(&a.timer, on_timeout, timeout_s * 1000, 0);
    uv_signal_init(&a.loop, &a.sig);
    a.sig.data = &a;
    uv_signal_start(&a.sig, on_signal, SIGTERM);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    return a.exit;
}
