/* The Compute runner (coalition/compute_runner.h) in one process, with a
 * fake executor and a real data directory, and no committee: grants go
 * in by hand and logs come out through a sink (compute_runner_internal.h).
 *
 *   - a grant runs once; granting it again, in the same runner or in a
 *     new one on the same directory, commits the saved log and starts
 *     nothing;
 *   - a real crash (a forked child SIGKILLs itself) with one grant
 *     mid-run and one finished but not yet committed: the next runner
 *     reports the first lost and asks the executor to end the orphan by
 *     the handle it recorded, commits the second's saved log, and starts
 *     neither;
 *   - a bearer pointer naming another image is refused before anything
 *     is fetched;
 *   - an image fetched from a peer whose bytes do not match the hash, and
 *     one whose stored copy was changed on disk, are refused and nothing
 *     is executed.
 *
 * Waits scale with TIME_FACTOR; nothing asserts on speed. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "coalition/compute_runner.h"
#include "coalition/error.h"
#include "../../src/coalition/compute_runner_internal.h"
#include "mosaik/blob.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/node.h"
#include "testutil.h"

#define MAX_JOBS 8

static const char IMAGE[] = "#!/bin/sh\necho never run by a fake\n";

/* ---- the fake executor and the sink ------------------------------------------ */

typedef struct fake {
    int starts, kills, releases;
    co_compute_job *jobs[MAX_JOBS];
    char seen[MAX_JOBS][128]; /* the image bytes each start found */
    int n_orphans;
    char orphans[MAX_JOBS][CO_COMPUTE_HANDLE_LEN + 1];
} fake;

static int fake_start(co_compute_job *job, char *err, void *data)
{
    fake *f = data;
    if (f->starts == MAX_JOBS)
        return MK_ENOMEM;
    FILE *in = fopen(job->image, "rb");
    if (in) {
        size_t n = fread(f->seen[f->starts], 1, sizeof f->seen[0] - 1, in);
        f->seen[f->starts][n] = '\0';
        fclose(in);
    }
    snprintf(job->handle, sizeof job->handle, "fake %d %d", (int)getpid(),
             f->starts);
    job->data = f;
    f->jobs[f->starts++] = job;
    return 0;
}

static void fake_kill(co_compute_job *job, void *data)
{
    ((fake *)data)->kills++;
}

static void fake_release(co_compute_job *job, void *data)
{
    fake *f = data;
    f->releases++;
    for (int i = 0; i < f->starts; i++)
        if (f->jobs[i] == job)
            f->jobs[i] = NULL;
}

static void fake_orphan(const char *handle, void *data)
{
    fake *f = data;
    if (f->n_orphans < MAX_JOBS)
        snprintf(f->orphans[f->n_orphans++], sizeof f->orphans[0], "%s",
                 handle);
}

typedef struct sink {
    int finishes, logged;
    co_compute_log last;
    void (*done)(int, void *); /* the last finish, until answered */
    void *done_data;
    uint64_t out;
} sink;

static long sink_output(void *ctx, const mk_id *id, uint32_t attempt,
                        int stream, const void *bytes, size_t len)
{
    ((sink *)ctx)->out += len;
    return (long)len;
}

static int sink_finish(void *ctx, const co_compute_log *log,
                       void (*done)(int, void *), void *data)
{
    sink *s = ctx;
    s->finishes++;
    s->last = *log;
    s->done = done;
    s->done_data = data;
    return 0;
}

static void on_logged(const co_compute_log *log, int status, void *data)
{
    ((sink *)data)->logged++;
}

/* ---- a loop, a node, a runner ---------------------------------------------- */

typedef struct env {
    uv_loop_t loop;
    uv_timer_t pulse;
    double tf;
    char dir[256], data[300];
    mk_keypair key;
    mk_node *node;
    co_compute_runner *runner;
    co_compute_executor ex;
    fake fk;
    sink sk;
    bool stopped;
} env;

static int ms(const env *e, int base)
{
    return (int)(base * e->tf);
}

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static void spin(env *e, int for_ms)
{
    tu_spin(&e->loop, for_ms);
}

#define WAIT_FOR(e, cond)                                                     \
    do {                                                                      \
        int64_t end_ = mk_mono_ms() + ms((e), 20000);                         \
        while (!(cond) && mk_mono_ms() < end_)                                \
            spin((e), 10);                                                    \
    } while (0)

static void loop_open(env *e, const char *dir)
{
    memset(e, 0, sizeof *e);
    const char *tf = getenv("TIME_FACTOR");
    e->tf = tf && atof(tf) > 1.0 ? atof(tf) : 1.0;
    snprintf(e->dir, sizeof e->dir, "%s", dir);
    snprintf(e->data, sizeof e->data, "%s/data", dir);
    uv_loop_init(&e->loop);
    uv_timer_init(&e->loop, &e->pulse);
    uv_timer_start(&e->pulse, on_pulse, 5, 5);
}

/* A node (bootstrapping from `boot` when not NULL) and a runner on it
 * over e->data. Returns 0 or the failing call's code: the crash child
 * cannot use cmocka's asserts. */
static int runner_open(env *e, const char *boot)
{
    char err[CO_ERRMSG_SIZE];
    if (mk_keypair_generate(&e->key) != 0)
        return -1;
    const char *bp[1] = {boot};
    mk_node_config nc = {.loop = &e->loop,
                         .key = &e->key,
                         .listen = "127.0.0.1:0",
                         .bootstrap = boot ? bp : NULL,
                         .n_bootstrap = boot ? 1 : 0};
    int rc = mk_node_new(&nc, &e->node, err);
    if (rc == 0)
        rc = mk_node_start(e->node);
    if (rc < 0)
        return rc;
    e->ex = (co_compute_executor){.start = fake_start,
                                  .kill = fake_kill,
                                  .release = fake_release,
                                  .orphan = fake_orphan,
                                  .data = &e->fk};
    co_compute_runner_config cfg = {
        .node = e->node,
        .data_dir = e->data,
        .capacity = {.cpu_millis = 1000, .ram_mib = 64},
        .executor = &e->ex,
        .on_logged = on_logged,
        .data = &e->sk,
    };
    co__runner_sink s = {.output = sink_output,
                         .finish = sink_finish,
                         .ctx = &e->sk};
    return co__compute_runner_open(&cfg, &s, &e->runner, err);
}

static void on_stopped(void *data)
{
    ((env *)data)->stopped = true;
}

static void runner_close(env *e)
{
    co_compute_runner_close(e->runner, on_stopped, e);
    WAIT_FOR(e, e->stopped);
    assert_true(e->stopped);
    mk_node_close(e->node, NULL, NULL);
    spin(e, 700);
    uv_close((uv_handle_t *)&e->pulse, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void make_tmp(char *dir, size_t len)
{
    snprintf(dir, len, "%s/co-runner-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Puts `bytes` in the blob store under `hash` (the store's layout:
 * blobs/<hex>), whatever they hash to. */
static void store_blob(const char *data, const mk_id *hash, const void *bytes,
                       size_t n)
{
    char path[600], hex[MK_ID_HEX_LEN + 1];
    snprintf(path, sizeof path, "%s/blobs", data);
    mkdir(data, 0700);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/blobs/%s", data, mk_id_hex(hash, hex));
    write_file(path, bytes, n);
}

static void image_hash(const char *dir, const char *text, mk_id *out)
{
    char path[600];
    snprintf(path, sizeof path, "%s/hashme", dir);
    write_file(path, text, strlen(text));
    assert_int_equal(mk_blob_hash_file(path, out, NULL), 0);
    unlink(path);
}

static co_compute_grant grant_for(const mk_peer_id *bearer, const mk_id *image,
                                  uint64_t nonce)
{
    co_compute_grant g = {0};
    co_compute_request_id(bearer, image, nonce, &g.request_id);
    g.image_hash = *image;
    g.bearer.peer = *bearer;
    g.bearer.hash = *image;
    g.attempt = 1;
    g.granted_ms = mk_now_ms();
    g.valid_to_ms = g.granted_ms + 600000;
    g.reserved = (co_compute_resources){.cpu_millis = 500, .ram_mib = 32};
    return g;
}

static bool record_has(const env *e, const co_compute_grant *g,
                       const char *prefix)
{
    char path[800], hex[MK_ID_HEX_LEN + 1], line[700];
    snprintf(path, sizeof path, "%s/compute/runs/%s.%u", e->data,
             mk_id_hex(&g->request_id, hex), g->attempt);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && fgets(line, sizeof line, f))
        found = found || strncmp(line, prefix, strlen(prefix)) == 0;
    if (f)
        fclose(f);
    return found;
}

/* ---- the tests ------------------------------------------------------------------ */

static void runs_once_then_resubmits(void **state)
{
    char dir[256];
    make_tmp(dir, sizeof dir);
    env e;
    loop_open(&e, dir);
    mk_id image;
    image_hash(dir, IMAGE, &image);
    store_blob(e.data, &image, IMAGE, strlen(IMAGE));
    assert_int_equal(runner_open(&e, NULL), 0);
    co_compute_grant g = grant_for(&e.key.pub, &image, 1);

    co__compute_runner_grant(e.runner, &g);
    WAIT_FOR(&e, e.fk.starts == 1);
    assert_int_equal(e.fk.starts, 1);
    /* What the executor got is the image, at the job's image path. */
    assert_string_equal(e.fk.seen[0], IMAGE);
    assert_true(record_has(&e, &g, "accepted "));
    assert_true(record_has(&e, &g, "started fake "));
    /* The grant reported again while it runs changes nothing. */
    co__compute_runner_grant(e.runner, &g);
    co_compute_job_output(e.fk.jobs[0], 1, "hi\n", 3);
    co_compute_outcome o = {.exit = CO_COMPUTE_EXITED, .code = 3};
    co_compute_job_exited(e.fk.jobs[0], &o);
    assert_int_equal(e.sk.finishes, 1);
    assert_int_equal(e.sk.last.exit, CO_COMPUTE_EXITED);
    assert_int_equal(e.sk.last.code, 3);
    assert_int_equal(e.sk.last.usage.output_bytes, 3);
    assert_int_equal(e.sk.out, 3);
    assert_true(record_has(&e, &g, "log 1 3 "));
    e.sk.done(0, e.sk.done_data);
    assert_int_equal(e.sk.logged, 1);
    assert_int_equal(e.fk.releases, 1);
    assert_true(record_has(&e, &g, "logged"));
    spin(&e, 50);

    /* The same grant once more (a replica a little behind): the saved
     * log goes again, nothing starts. */
    co__compute_runner_grant(e.runner, &g);
    assert_int_equal(e.sk.finishes, 2);
    assert_int_equal(e.sk.last.code, 3);
    e.sk.done(0, e.sk.done_data);
    spin(&e, 50);
    runner_close(&e);
    assert_int_equal(e.fk.starts, 1);

    /* A new process on the same directory: still only the log. */
    loop_open(&e, dir);
    assert_int_equal(runner_open(&e, NULL), 0);
    co__compute_runner_grant(e.runner, &g);
    assert_int_equal(e.sk.finishes, 1);
    assert_int_equal(e.sk.last.exit, CO_COMPUTE_EXITED);
    assert_int_equal(e.sk.last.code, 3);
    assert_int_equal(e.sk.last.usage.output_bytes, 3);
    e.sk.done(0, e.sk.done_data);
    spin(&e, 50);
    runner_close(&e);
    assert_int_equal(e.fk.starts, 0);
    tu_rm_tree(dir);
}

/* In a child: two grants, A left running and B ended but its log never
 * answered; then the child dies by SIGKILL. Exit codes say what failed
 * before that. */
static void crash_child(const char *dir, const co_compute_grant *a,
                        const co_compute_grant *b)
{
    env e;
    loop_open(&e, dir);
    if (runner_open(&e, NULL) != 0)
        _exit(2);
    co__compute_runner_grant(e.runner, a);
    WAIT_FOR(&e, e.fk.starts == 1);
    co__compute_runner_grant(e.runner, b);
    WAIT_FOR(&e, e.fk.starts == 2);
    if (e.fk.starts != 2)
        _exit(3);
    co_compute_outcome o = {.exit = CO_COMPUTE_EXITED, .code = 5};
    co_compute_job_exited(e.fk.jobs[1], &o);
    if (e.sk.finishes != 1 || e.sk.last.code != 5)
        _exit(4);
    raise(SIGKILL);
    _exit(5);
}

static void crash_resumes_by_the_record(void **state)
{
    char dir[256], data[300];
    make_tmp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    mk_id image;
    image_hash(dir, IMAGE, &image);
    store_blob(data, &image, IMAGE, strlen(IMAGE));
    mk_keypair bearer;
    assert_int_equal(mk_keypair_generate(&bearer), 0);
    co_compute_grant a = grant_for(&bearer.pub, &image, 10),
                     b = grant_for(&bearer.pub, &image, 11);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child(dir, &a, &b);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        fail_msg("the child did not crash as planned (status %d)", st);

    env e;
    loop_open(&e, dir);
    assert_int_equal(runner_open(&e, NULL), 0);
    char want[64];
    /* A: started, no log: lost, its orphan named, not run again. */
    co__compute_runner_grant(e.runner, &a);
    assert_int_equal(e.sk.finishes, 1);
    assert_int_equal(e.sk.last.exit, CO_COMPUTE_LOST);
    assert_true(mk_id_eq(&e.sk.last.request_id, &a.request_id));
    assert_non_null(strstr(e.sk.last.reason, "never run twice"));
    snprintf(want, sizeof want, "fake %d 0", (int)pid);
    assert_int_equal(e.fk.n_orphans, 1);
    assert_string_equal(e.fk.orphans[0], want);
    e.sk.done(0, e.sk.done_data);
    /* B: ended before the crash: its saved log, not a second run. */
    co__compute_runner_grant(e.runner, &b);
    assert_int_equal(e.sk.finishes, 2);
    assert_int_equal(e.sk.last.exit, CO_COMPUTE_EXITED);
    assert_int_equal(e.sk.last.code, 5);
    assert_true(mk_id_eq(&e.sk.last.request_id, &b.request_id));
    e.sk.done(0, e.sk.done_data);
    spin(&e, 50);
    assert_int_equal(e.fk.starts, 0);
    runner_close(&e);
    assert_int_equal(e.fk.starts, 0);
    tu_rm_tree(dir);
}

static void refuses_a_wrong_bearer_hash(void **state)
{
    char dir[256];
    make_tmp(dir, sizeof dir);
    env e;
    loop_open(&e, dir);
    mk_id image, other;
    image_hash(dir, IMAGE, &image);
    image_hash(dir, "#!/bin/sh\necho another image\n", &other);
    store_blob(e.data, &image, IMAGE, strlen(IMAGE));
    store_blob(e.data, &other, "#!/bin/sh\necho another image\n",
               strlen("#!/bin/sh\necho another image\n"));
    assert_int_equal(runner_open(&e, NULL), 0);
    co_compute_grant g = grant_for(&e.key.pub, &image, 20);
    g.bearer.hash = other;
    co__compute_runner_grant(e.runner, &g);
    assert_int_equal(e.sk.finishes, 1);
    assert_int_equal(e.sk.last.exit, CO_COMPUTE_REFUSED);
    assert_non_null(strstr(e.sk.last.reason, "bearer"));
    e.sk.done(0, e.sk.done_data);
    spin(&e, 100);
    assert_int_equal(e.fk.starts, 0);
    runner_close(&e);
    tu_rm_tree(dir);
}

static bool work_is_empty(const env *e)
{
    char path[600];
    snprintf(path, sizeof path, "%s/compute/work", e->data);
    DIR *d = opendir(path);
    if (!d)
        return true;
    struct dirent *x;
    int n = 0;
    while ((x = readdir(d)))
        n += x->d_name[0] != '.';
    closedir(d);
    return n == 0;
}

static void refuses_bytes_that_do_not_match(void **state)
{
    char dir[256], path[600], err[MK_ERRMSG_SIZE], boot[256];
    char hex[MK_ID_HEX_LEN + 1];
    make_tmp(dir, sizeof dir);
    env e;
    loop_open(&e, dir);

    /* A peer serving the image in place, then changing one byte of it:
     * what it sends no longer hashes to what it announced. */
    mk_keypair sk;
    assert_int_equal(mk_keypair_generate(&sk), 0);
    mk_node_config nc = {.loop = &e.loop, .key = &sk,
                         .listen = "127.0.0.1:0"};
    mk_node *server;
    mk_blobs *sb;
    assert_int_equal(mk_node_new(&nc, &server, err), 0);
    assert_int_equal(mk_node_start(server), 0);
    snprintf(path, sizeof path, "%s/store", dir);
    assert_int_equal(mk_blobs_new(server, path, &sb, err), 0);
    snprintf(path, sizeof path, "%s/served.sh", dir);
    write_file(path, IMAGE, strlen(IMAGE));
    mk_id image;
    assert_int_equal(mk_blobs_serve_file(sb, path, &image, NULL, err), 0);
    char tampered[sizeof IMAGE];
    memcpy(tampered, IMAGE, sizeof IMAGE);
    tampered[12] ^= 1;
    write_file(path, tampered, strlen(tampered));
    snprintf(boot, sizeof boot, "%s@%s", mk_id_hex(&sk.pub, hex),
             mk_node_addr(server));

    assert_int_equal(runner_open(&e, boot), 0);
    mk_peer_info pi;
    WAIT_FOR(&e, mk_node_peer(e.node, &sk.pub, &pi));
    co_compute_grant g = grant_for(&sk.pub, &image, 30);
    co__compute_runner_grant(e.runner, &g);
    WAIT_FOR(&e, e.sk.finishes == 1);
    assert_int_equal(e.sk.finishes, 1);
    assert_int_equal(e.sk.last.exit, CO_COMPUTE_REFUSED);
    if (!strstr(e.sk.last.reason, "do not match"))
        fail_msg("refused for another reason: %s", e.sk.last.reason);
    e.sk.done(0, e.sk.done_data);

    /* A blob the store holds whose bytes changed on disk since: the copy
     * the runner hashes is what would run, and it is not the image. */
    mk_id stored;
    image_hash(dir, "#!/bin/sh\necho stored\n", &stored);
    store_blob(e.data, &stored, "#!/bin/sh\necho STORED\n",
               strlen("#!/bin/sh\necho STORED\n"));
    co_compute_grant h = grant_for(&e.key.pub, &stored, 31);
    co__compute_runner_grant(e.runner, &h);
    WAIT_FOR(&e, e.sk.finishes == 2);
    assert_int_equal(e.sk.finishes, 2);
    assert_int_equal(e.sk.last.exit, CO_COMPUTE_REFUSED);
    if (!strstr(e.sk.last.reason, "refused to run it"))
        fail_msg("refused for another reason: %s", e.sk.last.reason);
    e.sk.done(0, e.sk.done_data);
    spin(&e, 100);

    /* Nothing executed, nothing left in a working directory. */
    assert_int_equal(e.fk.starts, 0);
    assert_true(work_is_empty(&e));
    mk_blobs_close(sb, NULL, NULL);
    mk_node_close(server, NULL, NULL);
    runner_close(&e);
    tu_rm_tree(dir);
}

static void on_fetch_done(mk_blob_fetch *f, int status,
                          const mk_blob_fetch_result *r, void *data)
{
    *(int *)data = status == 0 ? 1 : status;
}

/* The runner closes while its node runs on: the blob connection it was
 * serving ends, a new one is refused as for an ALPN never served, and the
 * node still serves another blob service over the same store. */
static void closes_before_its_node(void **state)
{
    char dir[256], err[MK_ERRMSG_SIZE], boot[256], path[600];
    char hex[MK_ID_HEX_LEN + 1];
    make_tmp(dir, sizeof dir);
    env e;
    loop_open(&e, dir);
    mk_id image;
    image_hash(dir, IMAGE, &image);
    store_blob(e.data, &image, IMAGE, strlen(IMAGE));
    assert_int_equal(runner_open(&e, NULL), 0);

    /* A peer that fetches from the runner's node. */
    mk_keypair pk;
    assert_int_equal(mk_keypair_generate(&pk), 0);
    snprintf(boot, sizeof boot, "%s@%s", mk_id_hex(&e.key.pub, hex),
             mk_node_addr(e.node));
    const char *bp[1] = {boot};
    mk_node_config nc = {.loop = &e.loop, .key = &pk,
                         .listen = "127.0.0.1:0", .bootstrap = bp,
                         .n_bootstrap = 1};
    mk_node *peer;
    mk_blobs *pb;
    assert_int_equal(mk_node_new(&nc, &peer, err), 0);
    assert_int_equal(mk_node_start(peer), 0);
    snprintf(path, sizeof path, "%s/peer-store", dir);
    assert_int_equal(mk_blobs_new(peer, path, &pb, err), 0);
    mk_peer_info pi;
    WAIT_FOR(&e, mk_node_peer(peer, &e.key.pub, &pi));

    tu_probe held;
    tu_probe_start(&held, peer, e.node, MK_ALPN_BLOBS);
    WAIT_FOR(&e, held.connected || held.ended);
    assert_true(held.connected);
    spin(&e, 50);

    co_compute_runner_close(e.runner, on_stopped, &e);
    e.runner = NULL;
    assert_false(e.stopped); /* from the loop only */
    WAIT_FOR(&e, e.stopped && held.ended);
    assert_true(e.stopped);
    assert_true(held.ended);
    assert_int_equal(held.code, MK_CLOSE_GRACEFUL_SHUTDOWN);

    tu_probe late;
    tu_probe_start(&late, peer, e.node, MK_ALPN_BLOBS);
    WAIT_FOR(&e, late.ended);
    assert_true(late.ended);
    assert_int_equal(late.code, MK_CLOSE_INVALID_ALPN);

    /* The node still works: blobs served anew from the runner's store. */
    mk_blobs *again;
    snprintf(path, sizeof path, "%s/blobs", e.data);
    assert_int_equal(mk_blobs_new(e.node, path, &again, err), 0);
    mk_blob_fetch_config fc = {.hash = image, .from = &e.key.pub,
                               .n_from = 1};
    int fetched = 0;
    assert_int_equal(mk_blob_fetch_start(pb, &fc, on_fetch_done, &fetched,
                                         NULL),
                     0);
    WAIT_FOR(&e, fetched != 0);
    assert_int_equal(fetched, 1);

    mk_blobs_close(again, NULL, NULL);
    mk_blobs_close(pb, NULL, NULL);
    mk_node_close(peer, NULL, NULL);
    mk_node_close(e.node, NULL, NULL);
    spin(&e, 700);
    uv_close((uv_handle_t *)&e.pulse, NULL);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
    tu_rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_once_then_resubmits),
        cmocka_unit_test(crash_resumes_by_the_record),
        cmocka_unit_test(refuses_a_wrong_bearer_hash),
        cmocka_unit_test(refuses_bytes_that_do_not_match),
        cmocka_unit_test(closes_before_its_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
