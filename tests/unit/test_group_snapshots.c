/* When a group snapshots (docs/groups.md, "Snapshot"): left to itself it
 * spaces snapshots by the state's size, so a big state is not serialised
 * again every 1024 entries; an explicit snapshot_threshold is kept.
 *
 * One voter on loopback with libraft's disk log in a temporary directory
 * and a machine whose state is a fixed 3 MiB block. Commands are written
 * one after another, so each is an entry of its own, past the first
 * snapshot (1024 entries); the group's metrics then say how many
 * snapshots it took, how big the last was and how many entries it now
 * leaves between them. Counts, not timings. */
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
#include "testutil.h"

#define STATE_BYTES (3u << 20)
#define CMD_BYTES 1024
#define N_CMDS 1200

/* ---- a machine with a big state ----------------------------------------- */

typedef struct block {
    uint8_t *state;
    uint64_t applied;
} block;

static int block_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                       mk_buf *result)
{
    (void)result;
    block *b = fsm->data;
    size_t at = (size_t)(b->applied * CMD_BYTES) % STATE_BYTES;
    for (size_t i = 0; i < len && at + i < STATE_BYTES; i++)
        b->state[at + i] ^= cmd[i];
    b->applied++;
    return 0;
}

static int block_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    block *b = fsm->data;
    uint8_t le[8];
    mk_store_le64(le, b->applied);
    mk_put_raw(out, le, sizeof le);
    mk_put_raw(out, b->state, STATE_BYTES);
    return out->err;
}

static int block_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    block *b = fsm->data;
    if (len != 8 + STATE_BYTES)
        return MK_EDECODE;
    b->applied = mk_load_le64(snap);
    memcpy(b->state, snap + 8, STATE_BYTES);
    return 0;
}

/* ---- the run ------------------------------------------------------------ */

typedef struct fx {
    uv_loop_t loop;
    double tf;
    char dir[64];
    mk_keypair key;
    mk_node *node;
    block blk;
    struct mk_fsm fsm;
    mk_group *g;
    uint8_t cmd[CMD_BYTES];
    int sent, done, failed, closed;
} fx;

static void spin(fx *f, int for_ms)
{
    int64_t end = mk_mono_ms() + for_ms;
    while (mk_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_NOWAIT), usleep(1000);
}

static void send_next(fx *f);

static void on_result(int status, uint64_t applied, const uint8_t *res,
                      size_t len, void *data)
{
    (void)applied, (void)res, (void)len;
    fx *f = data;
    f->done++;
    if (status != 0)
        f->failed++;
    if (f->sent < N_CMDS)
        send_next(f);
}

/* One at a time: the next only once the last is answered, so no two
 * share an entry. */
static void send_next(fx *f)
{
    f->cmd[0] = (uint8_t)f->sent;
    f->sent++;
    if (mk_group_execute(f->g, f->cmd, sizeof f->cmd,
                         (uint32_t)(10000 * f->tf), on_result, f) != 0) {
        f->done++;
        f->failed++;
    }
}

typedef struct figures {
    double snapshots, bytes, threshold;
} figures;

static bool read_figures(const mk_metric_view *v, void *data)
{
    figures *fg = data;
    if (strcmp(v->name, "mosaik_groups_snapshots_total") == 0)
        fg->snapshots = v->value;
    else if (strcmp(v->name, "mosaik_groups_snapshot_bytes") == 0)
        fg->bytes = v->value;
    else if (strcmp(v->name, "mosaik_groups_snapshot_threshold_entries") == 0)
        fg->threshold = v->value;
    return true;
}

static void on_closed(void *data)
{
    (*(int *)data)++;
}

/* Writes N_CMDS one by one into a one-voter group with these params and
 * returns its snapshot figures. */
static figures run(uint32_t snapshot_threshold)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tf = getenv("TIME_FACTOR");
    f->tf = tf && atof(tf) > 1 ? atof(tf) : 1;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    strcpy(f->dir, "/tmp/test_group_snapshots.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->blk.state = calloc(1, STATE_BYTES);
    assert_non_null(f->blk.state);
    f->fsm = (struct mk_fsm){.version = MK_FSM_VERSION, .data = &f->blk,
                             .apply = block_apply,
                             .snapshot = block_snapshot,
                             .restore = block_restore};
    mk_id_from_str(&f->fsm.signature, "test/block/1");
    memset(f->cmd, 0x5a, sizeof f->cmd);

    char err[MK_ERRMSG_SIZE];
    uint8_t seed[MK_SEED_LEN];
    memset(seed, 0x77, sizeof seed);
    mk_keypair_from_seed(&f->key, seed);
    mk_node_config nc = {.loop = &f->loop, .key = &f->key,
                         .listen = "127.0.0.1:0"};
    assert_int_equal(mk_node_new(&nc, &f->node, err), 0);
    assert_int_equal(mk_node_start(f->node), 0);
    mk_group_config gc = {.node = f->node, .fsm = &f->fsm,
                          .voters = &f->key.pub, .n_voters = 1,
                          .data_dir = f->dir, .name = "snapshots",
                          .params = {.election_timeout_ms = 300,
                                     .heartbeat_ms = 30,
                                     .snapshot_threshold =
                                         snapshot_threshold}};
    mk_id_from_str(&gc.root, "group-snapshots-test");
    assert_int_equal(mk_group_join(&gc, &f->g, err), 0);

    int64_t end = mk_mono_ms() + (int64_t)(20000 * f->tf);
    mk_group_status st = {0};
    while (!st.is_leader && mk_mono_ms() < end) {
        spin(f, 10);
        mk_group_status_get(f->g, &st);
    }
    assert_true(st.is_leader);

    send_next(f);
    end = mk_mono_ms() + (int64_t)(120000 * f->tf);
    while (f->done < N_CMDS && mk_mono_ms() < end)
        spin(f, 5);
    assert_int_equal(f->done, N_CMDS);
    assert_int_equal(f->failed, 0);
    /* A tick later, the threshold follows the last snapshot. */
    spin(f, 100);

    figures fg = {0};
    mk_metrics_foreach(mk_node_metrics(f->node), read_figures, &fg);

    mk_group_close(f->g, on_closed, &f->closed);
    end = mk_mono_ms() + (int64_t)(10000 * f->tf);
    while (f->closed < 1 && mk_mono_ms() < end)
        spin(f, 10);
    assert_int_equal(f->closed, 1);
    mk_node_close(f->node, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f->blk.state);
    free(f);
    return fg;
}

/* The default: the first snapshot comes at 1024 entries, and then the
 * group leaves room for about a snapshot's bytes of log before the next:
 * 3 MiB at a little over 1 KiB an entry is well over 2,000 entries. */
static void default_spaces_snapshots_by_state(void **state)
{
    (void)state;
    figures fg = run(0);
    assert_true(fg.snapshots == 1);
    assert_true(fg.bytes >= STATE_BYTES);
    assert_true(fg.threshold > 2048);
    assert_true(fg.threshold < 4096);
}

/* An explicit count is what libraft gets. 500 entries: two snapshots in
 * 1,200 commands whatever the state's size. */
static void explicit_threshold_is_kept(void **state)
{
    (void)state;
    figures fg = run(500);
    assert_true(fg.snapshots == 2);
    assert_true(fg.threshold == 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_spaces_snapshots_by_state),
        cmocka_unit_test(explicit_threshold_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
