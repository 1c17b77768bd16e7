/* Metrics off (mk_node_config.metrics_off): the registry calls say so
 * with MK_EMETRICS_OFF instead of answering empty, a node made that way
 * has no registry, and a group whose members run without one still
 * commits, locally and for requesters, exactly as with metrics on.
 *
 * The committee is three real nodes on loopback in one loop (TLS links,
 * libraft's disk log in a temporary directory): A keeps the default
 * (metrics on) as the control, B and C run with metrics off. Waits scale
 * with TIME_FACTOR; nothing asserts on speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group.h"
#include "mosaik/metrics.h"
#include "mosaik/node.h"
#include "mosaik/testing/fsm_test.h"
#include "testutil.h"

#define N_CMDS 40 /* per member */

static bool never_called(const mk_metric_view *v, void *data)
{
    (void)v;
    *(bool *)data = true;
    return true;
}

static void registry_calls_say_off(void **state)
{
    (void)state;
    mk_metric *m = (mk_metric *)&m; /* anything but NULL */
    mk_metric_desc d = {.name = "x_total", .help = "x",
                        .type = MK_METRIC_COUNTER};
    assert_int_equal(mk_metrics_add(NULL, &d, &m), MK_EMETRICS_OFF);
    assert_null(m);
    /* Updates and removal of the NULL series are no-ops. */
    mk_metric_add(m, 1);
    mk_metric_set(m, 1);
    mk_metric_observe(m, 1);
    mk_metric_remove(m);

    mk_buf b;
    mk_buf_init(&b);
    assert_int_equal(mk_metrics_write_text(NULL, &b), MK_EMETRICS_OFF);
    assert_int_equal(b.len, 0);
    mk_buf_free(&b);
    bool called = false;
    assert_int_equal(mk_metrics_foreach(NULL, never_called, &called), 0);
    assert_false(called);

    assert_string_equal(mk_strerror(MK_EMETRICS_OFF),
                        "metrics are off on this node");
    assert_string_equal(mk_err_name(MK_EMETRICS_OFF), "MK_EMETRICS_OFF");
}

/* ---- a committee with two members running without metrics -------------- */

typedef struct member {
    mk_keypair key;
    mk_node *node;
    struct mk_fsm *fsm;
    mk_group *g;
} member;

typedef struct fx {
    uv_loop_t loop;
    double tf;
    char dir[64];
    member m[3];
    int done, failed;
    long long highest; /* the largest counter value a command answered */
    char query[32];    /* a strong query's answer */
    int closed;        /* groups closed */
} fx;

static void on_closed(void *data)
{
    (*(int *)data)++;
}

static void spin(fx *f, int for_ms)
{
    tu_spin(&f->loop, for_ms);
}

static bool all_online(fx *f)
{
    int leaders = 0;
    for (int i = 0; i < 3; i++) {
        mk_group_status st;
        mk_group_status_get(f->m[i].g, &st);
        if (!st.online)
            return false;
        leaders += st.is_leader;
    }
    return leaders == 1;
}

static void on_result(int status, uint64_t applied, const uint8_t *res,
                      size_t len, void *data)
{
    (void)applied;
    fx *f = data;
    f->done++;
    if (status != 0) {
        f->failed++;
        return;
    }
    char s[32] = "";
    memcpy(s, res, len < sizeof s - 1 ? len : sizeof s - 1);
    long long v = atoll(s);
    if (v > f->highest)
        f->highest = v;
}

static void on_query(int status, uint64_t applied, const uint8_t *res,
                     size_t len, void *data)
{
    (void)applied;
    fx *f = data;
    if (status == 0)
        memcpy(f->query, res, len < sizeof f->query - 1 ? len
                                                        : sizeof f->query - 1);
    else
        snprintf(f->query, sizeof f->query, "error %d", status);
}

typedef struct hist {
    uint64_t count;
    bool seen;
} hist;

static bool find_latency(const mk_metric_view *v, void *data)
{
    hist *h = data;
    if (strcmp(v->name, "mosaik_groups_command_seconds") == 0) {
        h->count = v->count;
        h->seen = true;
    }
    return true;
}

static void committee_commits_without_metrics(void **state)
{
    (void)state;
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tf = getenv("TIME_FACTOR");
    f->tf = tf && atof(tf) > 1 ? atof(tf) : 1;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    strcpy(f->dir, "/tmp/test_metrics_off.XXXXXX");
    assert_non_null(mkdtemp(f->dir));

    char boot[160], hex[MK_ID_HEX_LEN + 1], err[MK_ERRMSG_SIZE];
    const char *boots[1] = {boot};
    mk_peer_id voters[3];
    for (int i = 0; i < 3; i++) {
        member *m = &f->m[i];
        uint8_t seed[MK_SEED_LEN];
        memset(seed, 0x51 + i, sizeof seed);
        mk_keypair_from_seed(&m->key, seed);
        voters[i] = m->key.pub;
        mk_node_config nc = {.loop = &f->loop, .key = &m->key,
                             .listen = "127.0.0.1:0", .bootstrap = boots,
                             .n_bootstrap = i ? 1 : 0,
                             .metrics_off = i != 0};
        assert_int_equal(mk_node_new(&nc, &m->node, err), 0);
        assert_int_equal(mk_node_start(m->node), 0);
        if (i == 0)
            snprintf(boot, sizeof boot, "%s@%s", mk_id_hex(&m->key.pub, hex),
                     mk_node_addr(m->node));
    }
    /* The switch: the default keeps a registry, metrics_off has none. */
    assert_non_null(mk_node_metrics(f->m[0].node));
    assert_null(mk_node_metrics(f->m[1].node));
    assert_null(mk_node_metrics(f->m[2].node));

    for (int i = 0; i < 3; i++) {
        member *m = &f->m[i];
        char data[128];
        snprintf(data, sizeof data, "%s/m%d", f->dir, i);
        m->fsm = mk_fsm_test_new("counter");
        assert_non_null(m->fsm);
        mk_group_config gc = {.node = m->node, .fsm = m->fsm,
                              .voters = voters, .n_voters = 3,
                              .data_dir = data, .name = "off-test",
                              .params = {.election_timeout_ms = 300,
                                         .heartbeat_ms = 30}};
        mk_id_from_str(&gc.root, "metrics-off-test");
        assert_int_equal(mk_group_open(&gc, &m->g, err), 0);
    }
    int64_t end = mk_mono_ms() + (int64_t)(20000 * f->tf);
    while (!all_online(f) && mk_mono_ms() < end)
        spin(f, 10);
    assert_true(all_online(f));
    /* Still nothing registered on the nodes without a registry. */
    assert_null(mk_node_metrics(f->m[1].node));

    /* Every member takes commands from its own handle; the followers'
     * reach the leader as a requester's, whichever member leads. */
    for (int k = 0; k < N_CMDS; k++)
        for (int i = 0; i < 3; i++)
            assert_int_equal(mk_group_execute(f->m[i].g, "1", 1,
                                              (uint32_t)(10000 * f->tf),
                                              on_result, f),
                             0);
    end = mk_mono_ms() + (int64_t)(30000 * f->tf);
    while (f->done < 3 * N_CMDS && mk_mono_ms() < end)
        spin(f, 10);
    assert_int_equal(f->done, 3 * N_CMDS);
    assert_int_equal(f->failed, 0);
    assert_int_equal(f->highest, 3 * N_CMDS);

    /* A strong read through a member without metrics sees them all. */
    assert_int_equal(mk_group_query(f->m[2].g, "v", 1, MK_STRONG,
                                    (uint32_t)(10000 * f->tf), on_query, f),
                     0);
    end = mk_mono_ms() + (int64_t)(10000 * f->tf);
    while (!f->query[0] && mk_mono_ms() < end)
        spin(f, 10);
    char want[32];
    snprintf(want, sizeof want, "%d", 3 * N_CMDS);
    assert_string_equal(f->query, want);

    /* The control: with metrics on, A timed the commands it took. */
    hist h = {0};
    mk_metrics_foreach(mk_node_metrics(f->m[0].node), find_latency, &h);
    assert_true(h.seen);
    assert_true(h.count >= N_CMDS);

    for (int i = 0; i < 3; i++)
        mk_group_close(f->m[i].g, on_closed, &f->closed);
    end = mk_mono_ms() + (int64_t)(10000 * f->tf);
    while (f->closed < 3 && mk_mono_ms() < end)
        spin(f, 10);
    assert_int_equal(f->closed, 3);
    for (int i = 0; i < 3; i++)
        mk_node_close(f->m[i].node, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (int i = 0; i < 3; i++)
        mk_fsm_test_free(f->m[i].fsm);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_calls_say_off),
        cmocka_unit_test(committee_commits_without_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
