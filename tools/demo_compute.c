/* The Compute part of `coalition demo` (demo_compute.h). */
#include "demo_compute.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coalition/compute.h"
#include "coalition/config_file.h"
#include "mosaik/blob.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"

#define N_PROVIDERS 2

typedef struct provider_proc {
    uv_process_t proc;
    bool started, exited;
} provider_proc;

struct demo_compute {
    uv_loop_t *loop;
    const co_coalition_config *cfg;
    char dir[PATH_MAX], image[PATH_MAX + 32];
    provider_proc prov[N_PROVIDERS];
    mk_keypair key;
    mk_node *node;
    mk_blobs *blobs;
    co_compute_reader *reader;
    co_compute_request req;
    uv_timer_t timer; /* the overall deadline, then the kill fallback */
    bool submitted, reported, stopping;
    demo_compute_result res;
    void (*done)(const demo_compute_result *, void *);
    void *data;
    int pending; /* handles and processes still to go when stopping */
    void (*stop_cb)(void *);
    void *stop_data;
};

static const char WORKLOAD[] =
    "#!/bin/sh\n"
    "# A demo workload: run by a Compute provider as ./image in a private\n"
    "# directory, under the grant's limits.\n"
    "echo \"hello from Compute: request $COMPUTE_REQUEST_ID attempt "
    "$COMPUTE_ATTEMPT\"\n"
    "echo \"granted ${COMPUTE_CPU_MILLIS}m cpu, ${COMPUTE_RAM_MIB} MiB ram, "
    "until $COMPUTE_VALID_TO_MS\"\n"
    "exit 0\n";

static const char PROVIDER_FILE[] =
    "{\"cpu\": \"1\", \"ram\": \"512M\", \"storage\": \"256M\", "
    "\"regions\": [\"demo\"]}\n";

static void report(demo_compute *dc)
{
    if (dc->reported)
        return;
    dc->reported = true;
    uv_timer_stop(&dc->timer);
    if (dc->done)
        dc->done(&dc->res, dc->data);
}

static void first_line(int stream, const uint8_t *bytes, size_t len,
                       void *data)
{
    demo_compute *dc = data;
    if (stream != 1 || dc->res.output[0])
        return;
    size_t n = len < sizeof dc->res.output - 1 ? len
                                                : sizeof dc->res.output - 1;
    memcpy(dc->res.output, bytes, n);
    dc->res.output[n] = '\0';
    dc->res.output[strcspn(dc->res.output, "\n")] = '\0';
}

static bool count_alive(const co_compute_provider_info *p, void *data)
{
    *(int *)data += p->alive;
    return true;
}

static void on_answer(int status, const co_compute_answer *a, void *data)
{
    demo_compute *dc = data;
    if (status < 0 || a->outcome == 0) {
        snprintf(dc->res.reason, sizeof dc->res.reason, "submit: %s",
                 status < 0 ? mk_strerror(status) : a->reason);
        report(dc);
    }
}

static void submit(demo_compute *dc)
{
    char err[CO_ERRMSG_SIZE];
    const mk_keypair *me = mk_node_key(dc->node);
    dc->req = (co_compute_request){.min = {500, 64, 16},
                                   .valid_for_ms = 30000};
    if (mk_blobs_serve_file(dc->blobs, dc->image, &dc->req.image_hash, NULL,
                            err) < 0) {
        snprintf(dc->res.reason, sizeof dc->res.reason, "%s", err);
        report(dc);
        return;
    }
    co_compute_request_id(&me->pub, &dc->req.image_hash,
                          (uint64_t)mk_now_ms(), &dc->req.request_id);
    dc->submitted = true;
    /* The node's own key signs: its PeerId is the bearer pointer. */
    if (co_compute_submit(dc->node, dc->cfg, &dc->req, me, 20000, on_answer,
                          dc, err) < 0) {
        snprintf(dc->res.reason, sizeof dc->res.reason, "submit: %s", err);
        report(dc);
    }
}

static void on_reader(co_compute_reader *r, int status, void *data)
{
    demo_compute *dc = data;
    if (status < 0 || dc->stopping)
        return;
    int alive = 0;
    co_compute_providers_foreach(r, count_alive, &alive);
    dc->res.providers = alive;
    if (!dc->submitted && alive >= N_PROVIDERS)
        submit(dc);
    co_compute_status s;
    if (!dc->submitted ||
        co_compute_status_get(r, &dc->req.request_id, &s) != 0)
        return;
    if (s.granted) {
        dc->res.granted = true;
        mk_id_hex(&s.grant.provider, dc->res.provider);
        co_compute_output(r, &dc->req.request_id, 0, first_line, dc);
    }
    if (s.state == CO_COMPUTE_REJECTED) {
        snprintf(dc->res.reason, sizeof dc->res.reason, "rejected: %s",
                 s.reason);
        report(dc);
    } else if (s.state == CO_COMPUTE_DONE && s.logged) {
        dc->res.done = true;
        dc->res.exit = s.log.exit == CO_COMPUTE_EXITED ? s.log.code : -1;
        dc->res.verified_log =
            mk_id_eq(&s.log.provider, &s.grant.provider) &&
            co_compute_log_verify(dc->cfg, &s.log, NULL) == 0 &&
            dc->res.output[0] != '\0';
        if (!dc->res.verified_log)
            snprintf(dc->res.reason, sizeof dc->res.reason,
                     "the final log does not verify");
        report(dc);
    }
}

static void on_deadline(uv_timer_t *t)
{
    demo_compute *dc = t->data;
    snprintf(dc->res.reason, sizeof dc->res.reason,
             "no final log in time (%d providers alive, %s)",
             dc->res.providers, dc->res.granted ? "granted" : "not granted");
    report(dc);
}

/* ---- stopping ------------------------------------------------------------- */

static void one_gone(demo_compute *dc)
{
    if (--dc->pending > 0)
        return;
    void (*cb)(void *) = dc->stop_cb;
    void *data = dc->stop_data;
    free(dc);
    if (cb)
        cb(data);
}

static void on_handle_closed(uv_handle_t *h)
{
    one_gone(h->data);
}

static bool any_running(const demo_compute *dc)
{
    for (int i = 0; i < N_PROVIDERS; i++)
        if (dc->prov[i].started && !dc->prov[i].exited)
            return true;
    return false;
}

/* The kill fallback is only needed while a provider runs. */
static void close_timer(demo_compute *dc)
{
    if (!uv_is_closing((uv_handle_t *)&dc->timer))
        uv_close((uv_handle_t *)&dc->timer, on_handle_closed);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    demo_compute *dc = p->data;
    for (int i = 0; i < N_PROVIDERS; i++)
        if (&dc->prov[i].proc == p)
            dc->prov[i].exited = true;
    if (!dc->stopping)
        return; /* closed when stopping: pending counts it then */
    uv_close((uv_handle_t *)p, on_handle_closed);
    if (!any_running(dc))
        close_timer(dc);
}

static void on_kill(uv_timer_t *t)
{
    demo_compute *dc = t->data;
    for (int i = 0; i < N_PROVIDERS; i++)
        if (dc->prov[i].started && !dc->prov[i].exited)
            uv_process_kill(&dc->prov[i].proc, SIGKILL);
    close_timer(dc);
}

static void on_closed(void *data)
{
    one_gone(data);
}

void demo_compute_stop(demo_compute *dc, void (*cb)(void *data), void *data)
{
    if (dc->stopping)
        return;
    report(dc);
    dc->stopping = true;
    dc->stop_cb = cb;
    dc->stop_data = data;
    dc->pending = 2; /* the node and the timer */
    for (int i = 0; i < N_PROVIDERS; i++) {
        if (!dc->prov[i].started)
            continue;
        dc->pending++;
        if (!dc->prov[i].exited)
            uv_process_kill(&dc->prov[i].proc, SIGTERM);
        else /* exited before: its handle is still open */
            uv_close((uv_handle_t *)&dc->prov[i].proc, on_handle_closed);
    }
    uv_timer_stop(&dc->timer);
    if (any_running(dc))
        uv_timer_start(&dc->timer, on_kill, 5000, 0);
    else
        close_timer(dc);
    if (dc->reader)
        co_compute_close(dc->reader, NULL, NULL);
    dc->reader = NULL;
    if (dc->blobs) {
        dc->pending++;
        mk_blobs_close(dc->blobs, on_closed, dc);
        dc->blobs = NULL;
    }
    if (dc->node)
        mk_node_close(dc->node, on_closed, dc);
    else
        one_gone(dc);
}

/* ---- starting --------------------------------------------------------------- */

static int write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    size_t n = strlen(text);
    int rc = write(fd, text, n) == (ssize_t)n ? 0 : MK_EIO;
    close(fd);
    return rc == 0 && chmod(path, mode) != 0 ? -errno : rc;
}

static int spawn_provider(demo_compute *dc, int i, const char *bin_dir,
                          const char *bootstrap, const char *cfg_path,
                          const char *prov_path)
{
    char key[PATH_MAX + 64], data[PATH_MAX + 64], log[PATH_MAX + 64],
        exe[PATH_MAX + 32];
    snprintf(key, sizeof key, "%s/compute-provider%d.key", dc->dir, i);
    snprintf(data, sizeof data, "%s/compute-provider%d", dc->dir, i);
    snprintf(log, sizeof log, "%s/compute-provider%d.log", dc->dir, i);
    snprintf(exe, sizeof exe, "%s/coalitiond", bin_dir);
    mk_keypair kp;
    int rc = mk_keypair_generate(&kp);
    if (rc == 0 && (rc = mk_keypair_save(&kp, key, NULL)) == MK_EEXIST)
        rc = 0; /* kept from an earlier run in --dir */
    if (rc < 0)
        return rc;
    int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0)
        return -errno;
    char *argv[] = {exe,         "--listen",      "127.0.0.1:0",
                    "--key",     key,             "--data",
                    data,        "--coalition",   (char *)cfg_path,
                    "--provider", (char *)prov_path, "--bootstrap",
                    (char *)bootstrap, NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = logfd},
    };
    uv_process_options_t o = {.exit_cb = on_exit_cb,
                              .file = exe,
                              .args = argv,
                              .stdio = stdio,
                              .stdio_count = 3};
    dc->prov[i].proc.data = dc;
    rc = uv_spawn(dc->loop, &dc->prov[i].proc, &o);
    close(logfd);
    if (rc == 0)
        dc->prov[i].started = true;
    return rc;
}

int demo_compute_start(uv_loop_t *loop, const char *bin_dir, const char *dir,
                       const co_coalition_config *cfg, const char *bootstrap,
                       uint32_t timeout_ms,
                       void (*done)(const demo_compute_result *r, void *data),
                       void *data, demo_compute **out)
{
    demo_compute *dc = calloc(1, sizeof *dc);
    if (!dc)
        return MK_ENOMEM;
    dc->loop = loop;
    dc->cfg = cfg;
    dc->done = done;
    dc->data = data;
    dc->res.exit = -1;
    snprintf(dc->dir, sizeof dc->dir, "%s", dir);
    char cfg_path[PATH_MAX + 32], prov_path[PATH_MAX + 32],
        store[PATH_MAX + 32], err[CO_ERRMSG_SIZE];
    snprintf(cfg_path, sizeof cfg_path, "%s/compute-coalition.json", dir);
    snprintf(prov_path, sizeof prov_path, "%s/compute-provider.json", dir);
    snprintf(dc->image, sizeof dc->image, "%s/compute-workload.sh", dir);
    snprintf(store, sizeof store, "%s/compute-submitter", dir);
    int rc = co_config_save(cfg, cfg_path, err);
    if (rc == 0)
        rc = write_file(prov_path, PROVIDER_FILE, 0600);
    if (rc == 0)
        rc = write_file(dc->image, WORKLOAD, 0700);
    if (rc < 0) {
        free(dc);
        return rc;
    }
    const char *boots[1] = {bootstrap};
    mk_keypair_generate(&dc->key);
    mk_node_config nc = {.loop = loop,
                         .key = &dc->key,
                         .listen = "127.0.0.1:0",
                         .bootstrap = boots,
                         .n_bootstrap = 1};
    if ((rc = mk_node_new(&nc, &dc->node, err)) < 0) {
        free(dc);
        return rc;
    }
    mk_node_start(dc->node);
    uv_timer_init(loop, &dc->timer);
    dc->timer.data = dc;
    if ((rc = mk_blobs_new(dc->node, store, &dc->blobs, err)) == 0)
        rc = co_compute_read(dc->node, cfg, timeout_ms, on_reader, dc,
                             &dc->reader, err);
    for (int i = 0; rc == 0 && i < N_PROVIDERS; i++)
        rc = spawn_provider(dc, i, bin_dir, bootstrap, cfg_path, prov_path);
    if (rc < 0) {
        dc->done = NULL; /* an error return never calls back */
        demo_compute_stop(dc, NULL, NULL);
        return rc;
    }
    uv_timer_start(&dc->timer, on_deadline, timeout_ms, 0);
    *out = dc;
    return 0;
}

void demo_compute_get(const demo_compute *dc, demo_compute_result *out)
{
    *out = dc->res;
}
