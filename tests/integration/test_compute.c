/* Compute across real processes: a three-member committee and two
 * providers, each a build/coalitiond, on loopback. The test process is
 * the submitter: its own node serves the images as blobs (and can lie
 * about their bytes), follows the module with a reader and submits
 * through the committee like `coalition compute submit` does.
 *
 *  - runs_and_reports: a workload runs, its output and usage arrive,
 *    its exit status is the committed one; a log signed by anyone but the
 *    granted provider is refused;
 *  - refuses_tampered_image: bytes that do not hash to the grant's image
 *    are refused by the provider, which says so (its log, and a committed
 *    ComputeLog "refused");
 *  - kills_at_valid_to: a workload that outlives valid_to is killed;
 *  - leader_kill_loses_no_grant: SIGKILL of the Compute leader; every
 *    grant committed before is still there, new requests are granted;
 *  - provider_kill_rematches: SIGKILL of the provider running a workload;
 *    the committee declares it gone and the other provider runs attempt 2;
 *  - provider_restart_never_twice: a provider killed and restarted at
 *    once finds its grant still assigned and reports it lost instead of
 *    running it again (the workload's side effect happens once).
 *
 * Timing scales with TIME_FACTOR (3 under the sanitizers); nothing
 * asserts on speed. Every daemon must exit 0 at the end (a leak in one
 * fails the test under ASan).
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coalition/compute.h"
#include "coalition/compute_internal.h"
#include "coalition/config_file.h"
#include "coalition/modules_internal.h"
#include "daemon.h"
#include "mosaik/blob.h"
#include "mosaik/blob_internal.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"
#include "mosaik/node.h"

#define NMEM 3
#define NPROV 2
#define ND (NMEM + NPROV)

static double TF = 1.0;

static int ms(int base)
{
    return (int)(base * TF);
}

typedef struct env {
    char dir[512];
    daemon_proc d[ND]; /* members 0..2, providers 3..4 */
    char coalition[600], provider[600];
    co_config_file *file;
    const co_coalition_config *cfg;
    mk_id group;
    uv_loop_t loop;
    uv_timer_t pulse;
    mk_keypair key;
    mk_node *node;
    mk_blobs *blobs;
    co_compute_reader *r;
    bool up;
} env;

/* The fixture every test shares (set up once: starting five daemons is
 * the slow part). */
static env E;

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static void spin(int for_ms)
{
    int64_t end = mk_mono_ms() + for_ms;
    while (mk_mono_ms() < end)
        uv_run(&E.loop, UV_RUN_ONCE);
}

static bool wait_until(bool (*pred)(void *), void *arg, int timeout_ms)
{
    int64_t end = mk_mono_ms() + timeout_ms;
    while (mk_mono_ms() < end) {
        if (pred(arg))
            return true;
        spin(20);
    }
    return pred(arg);
}

static void dump_all(void)
{
    for (int i = 0; i < ND; i++)
        daemon_dump_log(&E.d[i]);
}

static bool running(int i)
{
    return E.d[i].pid > 0;
}

static void start(int i)
{
    char boot[ND][160];
    const char *args[8 + 2 * ND] = {"--coalition", E.coalition};
    int n = 2;
    if (i >= NMEM) {
        args[n++] = "--provider";
        args[n++] = E.provider;
    }
    for (int j = 0; j < ND; j++)
        if (j != i && running(j)) {
            args[n++] = "--bootstrap";
            args[n++] = daemon_bootstrap(&E.d[j], boot[j], sizeof boot[j]);
        }
    args[n] = NULL;
    if (daemon_start(&E.d[i], args) != 0) {
        dump_all();
        fail_msg("daemon %s did not start", E.d[i].name);
    }
}

static void write_coalition(void)
{
    json_t *issuers = json_array();
    for (int i = 0; i < NMEM; i++)
        json_array_append_new(issuers, json_string(E.d[i].peer_id));
    char content[256];
    /* Fast clocks; a provider is gone after 4 silent heartbeats, which
     * leaves a restarted provider time to come back first. */
    snprintf(content, sizeof content,
             "compute/v1;clock_ms=%d;heartbeat_ms=%d;missed=4;queue_ms=%d",
             ms(100), ms(400), ms(60000));
    json_t *acl = json_pack("{s:o,s:[]}", "issuers", issuers, "mrtds");
    json_t *mod = json_pack("{s:s,s:[],s:[],s:s,s:o}", "name", "compute",
                            "lattices", "organisms", "content", content,
                            "acl", acl);
    json_t *root = json_pack("{s:s,s:[],s:[],s:[o],s:n}", "name",
                             "compute.test", "lattices", "organisms",
                             "confluences", mod, "ticket_issuer");
    snprintf(E.coalition, sizeof E.coalition, "%s/coalition.json", E.dir);
    assert_int_equal(json_dump_file(root, E.coalition, JSON_INDENT(1)), 0);
    json_decref(root);
    snprintf(E.provider, sizeof E.provider, "%s/provider.json", E.dir);
    FILE *f = fopen(E.provider, "w");
    assert_non_null(f);
    fputs("{\"cpu\": \"2\", \"ram\": \"1G\", \"storage\": \"256M\", "
          "\"regions\": [\"test\"]}\n",
          f);
    fclose(f);
}

static void on_reader(co_compute_reader *r, int status, void *data)
{
    if (status == 0)
        E.up = true;
}

static int setup(void **state)
{
    TF = time_factor();
    memset(&E, 0, sizeof E);
    assert_non_null(daemon_tmpdir(E.dir, sizeof E.dir));
    for (int i = 0; i < ND; i++) {
        char name[16];
        snprintf(name, sizeof name, i < NMEM ? "m%d" : "p%d",
                 i < NMEM ? i : i - NMEM);
        assert_int_equal(daemon_prepare(&E.d[i], E.dir, name), 0);
    }
    write_coalition();
    char err[CO_ERRMSG_SIZE];
    if (co_config_file_load(E.coalition, &E.file, err) != 0)
        fail_msg("%s", err);
    E.cfg = co_config_file_coalition(E.file);
    co_module_info m;
    assert_int_equal(co__compute_group(E.cfg, &m, &E.group, err), 0);
    for (int i = 0; i < ND; i++)
        start(i);
    uv_loop_init(&E.loop);
    uv_timer_init(&E.loop, &E.pulse);
    uv_timer_start(&E.pulse, on_pulse, 5, 5);
    char boot[160];
    const char *bp[1] = {daemon_bootstrap(&E.d[0], boot, sizeof boot)};
    assert_int_equal(mk_keypair_generate(&E.key), 0);
    mk_node_config nc = {.loop = &E.loop, .key = &E.key,
                         .listen = "127.0.0.1:0", .bootstrap = bp,
                         .n_bootstrap = 1};
    assert_int_equal(mk_node_new(&nc, &E.node, err), 0);
    assert_int_equal(mk_node_start(E.node), 0);
    char store[700];
    snprintf(store, sizeof store, "%s/submitter-blobs", E.dir);
    assert_int_equal(mk_blobs_new(E.node, store, &E.blobs, err), 0);
    assert_int_equal(co_compute_read(E.node, E.cfg, (uint32_t)ms(20000),
                                     on_reader, NULL, &E.r, err),
                     0);
    return 0;
}

static int teardown(void **state)
{
    co_compute_close(E.r, NULL, NULL);
    mk_blobs_close(E.blobs, NULL, NULL);
    mk_node_close(E.node, NULL, NULL);
    uv_close((uv_handle_t *)&E.pulse, NULL);
    uv_run(&E.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&E.loop), 0);
    /* Providers first (they depart while the committee hears them). */
    int bad = -1;
    for (int i = ND - 1; i >= 0; i--)
        if (running(i) && daemon_signal_wait(&E.d[i], SIGTERM, ms(15000)) != 0 &&
            bad < 0)
            bad = i;
    if (bad >= 0)
        daemon_dump_log(&E.d[bad]);
    co_config_file_free(E.file);
    daemon_rmtree(E.dir);
    if (bad >= 0)
        fail_msg("daemon %s did not exit cleanly", E.d[bad].name);
    return 0;
}

/* ---- helpers --------------------------------------------------------------- */

typedef struct alive_count {
    size_t n;
} alive_count;

static bool count_alive(const co_compute_provider_info *p, void *data)
{
    alive_count *c = data;
    c->n += p->alive;
    return true;
}

static bool n_alive(void *arg)
{
    if (!E.up)
        return false;
    alive_count c = {0};
    co_compute_providers_foreach(E.r, count_alive, &c);
    return c.n >= (size_t)(uintptr_t)arg;
}

static void need_providers(size_t n)
{
    if (!wait_until(n_alive, (void *)(uintptr_t)n, ms(30000))) {
        dump_all();
        fail_msg("fewer than %zu providers registered and alive", n);
    }
}

/* Writes an executable script into the test directory. */
static void script(const char *name, const char *body, char *path,
                   size_t len)
{
    snprintf(path, len, "%s/%s", E.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s", body);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
}

typedef struct answer_wait {
    bool done;
    int status;
    co_compute_answer a;
} answer_wait;

static void on_answer(int status, const co_compute_answer *a, void *data)
{
    answer_wait *w = data;
    w->done = true;
    w->status = status;
    if (a)
        w->a = *a;
}

static bool answered(void *arg)
{
    return ((answer_wait *)arg)->done;
}

/* Serves `image` and submits it; returns the request id. */
static mk_id submit(const char *image, uint64_t valid_for_ms, uint64_t nonce)
{
    char err[CO_ERRMSG_SIZE];
    co_compute_request q = {.min = {500, 64, 16},
                            .valid_for_ms = valid_for_ms};
    assert_int_equal(mk_blobs_serve_file(E.blobs, image, &q.image_hash, NULL,
                                         err),
                     0);
    co_compute_request_id(&E.key.pub, &q.image_hash, nonce, &q.request_id);
    answer_wait w = {0};
    assert_int_equal(co_compute_submit(E.node, E.cfg, &q, &E.key,
                                       (uint32_t)ms(20000), on_answer, &w,
                                       err),
                     0);
    if (!wait_until(answered, &w, ms(25000)) || w.status != 0 ||
        w.a.outcome != 1) {
        dump_all();
        fail_msg("submit: status %d outcome %d (%s)", w.status, w.a.outcome,
                 w.a.reason);
    }
    return q.request_id;
}

typedef struct state_wait {
    mk_id id;
    uint8_t state;
    uint32_t attempt; /* 0: any */
    co_compute_status s;
} state_wait;

static bool in_state(void *arg)
{
    state_wait *w = arg;
    return E.up && co_compute_status_get(E.r, &w->id, &w->s) == 0 &&
           w->s.state == w->state &&
           (!w->attempt || (w->s.granted && w->s.grant.attempt == w->attempt));
}

static co_compute_status wait_state(const mk_id *id, uint8_t state,
                                    uint32_t attempt, int timeout_ms)
{
    state_wait w = {.id = *id, .state = state, .attempt = attempt};
    if (!wait_until(in_state, &w, timeout_ms)) {
        dump_all();
        fail_msg("request never reached %s (attempt %u): it is %s (%s)",
                 co_compute_state_name(state), attempt,
                 co_compute_state_name(w.s.state), w.s.reason);
    }
    return w.s;
}

typedef struct collected {
    char text[4096];
    size_t len;
} collected;

static void collect(int stream, const uint8_t *bytes, size_t len, void *data)
{
    collected *c = data;
    size_t n = len < sizeof c->text - 1 - c->len ? len
                                                 : sizeof c->text - 1 - c->len;
    memcpy(c->text + c->len, bytes, n);
    c->len += n;
    c->text[c->len] = '\0';
}

static int provider_of(const co_compute_status *s)
{
    char hex[MK_ID_HEX_LEN + 1];
    mk_id_hex(&s->grant.provider, hex);
    for (int i = NMEM; i < ND; i++)
        if (strcmp(E.d[i].peer_id, hex) == 0)
            return i;
    fail_msg("granted to an unknown provider %s", hex);
    return -1;
}

static bool log_has(const daemon_proc *d, const char *needle)
{
    FILE *f = fopen(d->log, "r");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* ---- the tests --------------------------------------------------------------- */

typedef struct raw_wait {
    bool done;
    int door; /* the group's status */
    int status;
    uint8_t outcome;
} raw_wait;

/* A LOG's outcome as a submitter sees it (a refusal at a member's door
 * is outcome 0 too). */
static void on_raw_log(int status, const uint8_t *res, size_t len,
                       void *data)
{
    raw_wait *r = data;
    co_compute_answer a;
    r->done = true;
    r->door = status;
    r->status = co__compute_answer_of(status, CO__COMPUTE_LOG, res, len, &a);
    r->outcome = a.outcome;
}

static void runs_and_reports(void **state)
{
    need_providers(NPROV);
    char image[700];
    script("hello.sh",
           "echo \"hello $COMPUTE_ATTEMPT\"\necho oops >&2\nexit 7\n", image,
           sizeof image);
    mk_id id = submit(image, (uint64_t)ms(20000), 1);
    co_compute_status s = wait_state(&id, CO_COMPUTE_DONE, 0, ms(30000));
    assert_true(s.logged);
    assert_int_equal(s.log.exit, CO_COMPUTE_EXITED);
    assert_int_equal(s.log.code, 7);
    assert_true(mk_id_eq(&s.log.provider, &s.grant.provider));
    assert_true(s.log.usage.wall_ms > 0);
    assert_int_equal(s.log.usage.output_bytes, strlen("hello 1\noops\n"));
    collected out = {0};
    co_compute_output(E.r, &id, 0, collect, &out);
    assert_non_null(strstr(out.text, "hello 1"));
    assert_non_null(strstr(out.text, "oops"));

    /* A log signed by us (naming the provider, or ourselves) is refused
     * and changes nothing: the first at the door (its signature is not
     * the provider's it names), the second by the machine (we hold no
     * grant). */
    co_module_info m;
    mk_id gid;
    char err[CO_ERRMSG_SIZE];
    assert_int_equal(co__compute_group(E.cfg, &m, &gid, err), 0);
    for (int k = 0; k < 2; k++) {
        co_compute_log forged = s.log;
        forged.code = 0;
        if (k)
            forged.provider = E.key.pub;
        mk_buf cmd;
        mk_buf_init(&cmd);
        co__compute_cmd_log(&cmd, &m.root, &forged, &E.key);
        raw_wait r = {0};
        assert_int_equal(co__submit(E.node, &gid, &cmd, (uint32_t)ms(10000),
                                    on_raw_log, &r),
                         0);
        mk_buf_free(&cmd);
        int64_t end = mk_mono_ms() + ms(15000);
        while (!r.done && mk_mono_ms() < end)
            spin(20);
        assert_true(r.done);
        assert_int_equal(r.door, k ? 0 : MK_EBAD_SIGNATURE);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.outcome, 0);
    }
    spin(ms(300));
    assert_int_equal(co_compute_status_get(E.r, &id, &s), 0);
    assert_int_equal(s.log.code, 7);
}

static void refuses_tampered_image(void **state)
{
    need_providers(NPROV);
    char image[700];
    script("tampered.sh", "echo this must never run\n", image, sizeof image);
    /* Our node serves the file with one byte flipped: bytes that do not
     * hash to the image hash the grant names. */
    mk__blobs_tamper(E.blobs, 12);
    mk_id id = submit(image, (uint64_t)ms(20000), 2);
    co_compute_status s = wait_state(&id, CO_COMPUTE_DONE, 0, ms(30000));
    mk__blobs_tamper(E.blobs, UINT64_MAX);
    assert_int_equal(s.log.exit, CO_COMPUTE_REFUSED);
    if (!strstr(s.log.reason, "do not match"))
        fail_msg("the committed log does not say why: %s", s.log.reason);
    assert_int_equal(s.log.usage.output_bytes, 0);
    int p = provider_of(&s);
    /* The provider says so in its own log, naming us. */
    char hex[MK_ID_HEX_LEN + 1];
    mk_id_hex(&E.key.pub, hex);
    assert_true(log_has(&E.d[p], "refused"));
    assert_true(log_has(&E.d[p], hex));
}

static void kills_at_valid_to(void **state)
{
    need_providers(NPROV);
    char image[700];
    script("sleeper.sh", "echo started\nsleep 600\necho never\n", image,
           sizeof image);
    int64_t t0 = mk_mono_ms();
    mk_id id = submit(image, (uint64_t)ms(2000), 3);
    co_compute_status s = wait_state(&id, CO_COMPUTE_DONE, 0, ms(30000));
    assert_int_equal(s.log.exit, CO_COMPUTE_DEADLINE);
    assert_true(mk_mono_ms() - t0 < 600000);
    collected out = {0};
    co_compute_output(E.r, &id, 0, collect, &out);
    assert_non_null(strstr(out.text, "started"));
    assert_null(strstr(out.text, "never"));
}

typedef struct leader_wait {
    bool done;
    int status;
    bool leader;
} leader_wait;

static void on_status(int status, const mk_member_status *st, void *data)
{
    leader_wait *w = data;
    w->done = true;
    w->status = status;
    w->leader = status == 0 && st->st.is_leader;
}

static int find_leader(void)
{
    mk_group_client *c;
    assert_int_equal(mk_group_client_open(E.node, &E.group, &c), 0);
    int leader = -1;
    for (int tries = 0; tries < 50 && leader < 0; tries++) {
        for (int i = 0; i < NMEM && leader < 0; i++) {
            if (!running(i))
                continue;
            mk_peer_id p;
            assert_int_equal(mk_id_from_hex(&p, E.d[i].peer_id, 64), 0);
            leader_wait w = {0};
            if (mk_group_client_status(c, &p, false, (uint32_t)ms(3000),
                                       on_status, &w) != 0)
                continue;
            while (!w.done)
                spin(10);
            if (w.leader)
                leader = i;
        }
        if (leader < 0)
            spin(ms(200));
    }
    mk_group_client_close(c, NULL, NULL);
    return leader;
}

static void leader_kill_loses_no_grant(void **state)
{
    need_providers(NPROV);
    char image[700];
    script("quick.sh", "echo quick\n", image, sizeof image);
    enum { N = 6 };
    mk_id ids[N];
    co_compute_status before[N];
    for (int i = 0; i < N; i++)
        ids[i] = submit(image, (uint64_t)ms(30000), (uint64_t)(100 + i));
    for (int i = 0; i < N; i++)
        before[i] = wait_state(&ids[i], CO_COMPUTE_DONE, 0, ms(30000));
    int leader = find_leader();
    assert_true(leader >= 0);
    daemon_kill(&E.d[leader]);
    /* A new request needs a new leader, and gets granted and run. */
    mk_id late = submit(image, (uint64_t)ms(30000), 200);
    co_compute_status s = wait_state(&late, CO_COMPUTE_DONE, 0, ms(40000));
    assert_int_equal(s.log.exit, CO_COMPUTE_EXITED);
    /* Every grant committed before is still there, unchanged. */
    for (int i = 0; i < N; i++) {
        assert_int_equal(co_compute_status_get(E.r, &ids[i], &s), 0);
        assert_int_equal(s.state, CO_COMPUTE_DONE);
        assert_true(mk_id_eq(&s.grant.provider, &before[i].grant.provider));
        assert_int_equal(s.grant.attempt, before[i].grant.attempt);
        assert_int_equal(s.grant.valid_to_ms, before[i].grant.valid_to_ms);
    }
    /* The old leader comes back from its log. */
    start(leader);
}

static void provider_kill_rematches(void **state)
{
    need_providers(NPROV);
    char image[700];
    script("slow.sh",
           "echo \"attempt $COMPUTE_ATTEMPT\"\nsleep 3\necho \"done "
           "$COMPUTE_ATTEMPT\"\n",
           image, sizeof image);
    mk_id id = submit(image, (uint64_t)ms(60000), 4);
    co_compute_status s = wait_state(&id, CO_COMPUTE_GRANTED, 1, ms(20000));
    int p = provider_of(&s);
    /* Wait until it really runs there, then kill the provider. */
    collected out = {0};
    int64_t end = mk_mono_ms() + ms(20000);
    while (!strstr(out.text, "attempt 1") && mk_mono_ms() < end) {
        spin(20);
        out.len = 0;
        out.text[0] = '\0';
        co_compute_output(E.r, &id, 0, collect, &out);
    }
    assert_non_null(strstr(out.text, "attempt 1"));
    daemon_kill(&E.d[p]);
    s = wait_state(&id, CO_COMPUTE_DONE, 2, ms(60000));
    assert_int_equal(s.log.exit, CO_COMPUTE_EXITED);
    assert_int_equal(s.log.code, 0);
    assert_int_not_equal(provider_of(&s), p);
    out.len = 0;
    out.text[0] = '\0';
    co_compute_output(E.r, &id, 0, collect, &out);
    assert_non_null(strstr(out.text, "done 2"));
    start(p);
}

static void provider_restart_never_twice(void **state)
{
    need_providers(NPROV);
    char image[700], marker[700], body[2048];
    snprintf(marker, sizeof marker, "%s/marker", E.dir);
    snprintf(body, sizeof body,
             "echo \"ran $COMPUTE_ATTEMPT\" >> %s\nsleep 600\n", marker);
    script("once.sh", body, image, sizeof image);
    mk_id id = submit(image, (uint64_t)ms(60000), 5);
    co_compute_status s = wait_state(&id, CO_COMPUTE_GRANTED, 1, ms(20000));
    int p = provider_of(&s);
    struct stat st;
    int64_t end = mk_mono_ms() + ms(20000);
    while ((stat(marker, &st) != 0 || st.st_size == 0) &&
           mk_mono_ms() < end)
        spin(20);
    assert_true(st.st_size > 0);
    /* Killed and back at once, well inside the silence it is given. */
    daemon_kill(&E.d[p]);
    start(p);
    s = wait_state(&id, CO_COMPUTE_DONE, 0, ms(30000));
    assert_int_equal(s.grant.attempt, 1);
    assert_int_equal(s.log.exit, CO_COMPUTE_LOST);
    assert_true(log_has(&E.d[p], "never run twice"));
    FILE *f = fopen(marker, "r");
    char line[128];
    int lines = 0;
    while (fgets(line, sizeof line, f))
        lines++;
    fclose(f);
    assert_int_equal(lines, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_and_reports),
        cmocka_unit_test(refuses_tampered_image),
        cmocka_unit_test(kills_at_valid_to),
        cmocka_unit_test(leader_kill_loses_no_grant),
        cmocka_unit_test(provider_kill_rematches),
        cmocka_unit_test(provider_restart_never_twice),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
