/* When a group snapshots (docs/groups.md, "Snapshot"): left to itself it
 * spaces snapshots by the state's size, so a big state is not serialised
 * again every 1024 entries; an explicit snapshot_threshold is kept; and a
 * member that joins after the log was compacted gets the state as a
 * snapshot bigger than one Raft frame (raft_bridge.c sends it in pieces
 * straight from libraft's buffers).
 *
 * Voters on loopback in one loop, libraft's disk log in a temporary
 * directory, and a machine whose state is a fixed 3 MiB block. Commands
 * are written one after another, so each is an entry of its own, past
 * the first snapshot (1024 entries); the group's metrics then say how many
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

#define MAX_MEMBERS 3

typedef struct member {
    mk_keypair key;
    mk_node *node;
    block blk;
    struct mk_fsm fsm;
    mk_group *g;
} member;

typedef struct fx {
    uv_loop_t loop;
    double tf;
    char dir[64];
    member m[MAX_MEMBERS];
    size_t n;
    mk_group *g; /* where commands are sent: the leader */
    uint8_t cmd[CMD_BYTES];
    int sent, done, failed, closed;
} fx;

static void spin(fx *f, int for_ms)
{
    tu_spin(&f->loop, for_ms);
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

static void setup(fx *f, size_t n)
{
    const char *tf = getenv("TIME_FACTOR");
    f->tf = tf && atof(tf) > 1 ? atof(tf) : 1;
    f->n = n;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    strcpy(f->dir, "/tmp/test_group_snapshots.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    memset(f->cmd, 0x5a, sizeof f->cmd);
    char err[MK_ERRMSG_SIZE], boot[160], hex[MK_ID_HEX_LEN + 1];
    const char *boots[1] = {boot};
    for (size_t i = 0; i < n; i++) {
        member *m = &f->m[i];
        m->blk.state = malloc(STATE_BYTES);
        assert_non_null(m->blk.state);
        /* No two neighbouring bytes alike, so a snapshot that arrived
         * with a byte lost, doubled or moved cannot pass for the state. */
        for (size_t k = 0; k < STATE_BYTES; k++)
            m->blk.state[k] = (uint8_t)(k * 131u + (k >> 8));
        m->fsm = (struct mk_fsm){.version = MK_FSM_VERSION, .data = &m->blk,
                                 .apply = block_apply,
                                 .snapshot = block_snapshot,
                                 .restore = block_restore};
        mk_id_from_str(&m->fsm.signature, "test/block/1");
        uint8_t seed[MK_SEED_LEN];
        memset(seed, 0x70 + (int)i, sizeof seed);
        mk_keypair_from_seed(&m->key, seed);
        mk_node_config nc = {.loop = &f->loop, .key = &m->key,
                             .listen = "127.0.0.1:0", .bootstrap = boots,
                             .n_bootstrap = i ? 1 : 0};
        assert_int_equal(mk_node_new(&nc, &m->node, err), 0);
        assert_int_equal(mk_node_start(m->node), 0);
        if (i == 0)
            snprintf(boot, sizeof boot, "%s@%s", mk_id_hex(&m->key.pub, hex),
                     mk_node_addr(m->node));
    }
}

static void join(fx *f, size_t i, uint32_t snapshot_threshold)
{
    mk_peer_id voters[MAX_MEMBERS];
    for (size_t k = 0; k < f->n; k++)
        voters[k] = f->m[k].key.pub;
    member *m = &f->m[i];
    char err[MK_ERRMSG_SIZE], data[128];
    snprintf(data, sizeof data, "%s/m%zu", f->dir, i);
    mk_group_config gc = {.node = m->node, .fsm = &m->fsm,
                          .voters = voters, .n_voters = f->n,
                          .data_dir = data, .name = "snapshots",
                          .params = {.election_timeout_ms = 300,
                                     .heartbeat_ms = 30,
                                     .snapshot_threshold =
                                         snapshot_threshold}};
    mk_id_from_str(&gc.root, "group-snapshots-test");
    assert_int_equal(mk_group_open(&gc, &m->g, err), 0);
}

/* Waits for a leader among the members joined so far. */
static void find_leader(fx *f)
{
    int64_t end = mk_mono_ms() + (int64_t)(20000 * f->tf);
    for (f->g = NULL; !f->g && mk_mono_ms() < end;) {
        spin(f, 10);
        for (size_t i = 0; i < f->n; i++) {
            mk_group_status st = {0};
            if (f->m[i].g)
                mk_group_status_get(f->m[i].g, &st);
            if (st.is_leader)
                f->g = f->m[i].g;
        }
    }
    assert_non_null(f->g);
}

/* Writes N_CMDS one by one through the leader. */
static void write_all(fx *f)
{
    send_next(f);
    int64_t end = mk_mono_ms() + (int64_t)(120000 * f->tf);
    while (f->done < N_CMDS && mk_mono_ms() < end)
        spin(f, 5);
    assert_int_equal(f->done, N_CMDS);
    assert_int_equal(f->failed, 0);
    /* A tick later, the threshold follows the last snapshot. */
    spin(f, 100);
}

static figures figures_of(member *m)
{
    figures fg = {0};
    mk_metrics_foreach(mk_node_metrics(m->node), read_figures, &fg);
    return fg;
}

static void teardown(fx *f)
{
    size_t joined = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->m[i].g) {
            mk_group_close(f->m[i].g, on_closed, &f->closed);
            joined++;
        }
    int64_t end = mk_mono_ms() + (int64_t)(10000 * f->tf);
    while ((size_t)f->closed < joined && mk_mono_ms() < end)
        spin(f, 10);
    assert_int_equal(f->closed, (int)joined);
    for (size_t i = 0; i < f->n; i++)
        mk_node_close(f->m[i].node, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    for (size_t i = 0; i < f->n; i++)
        free(f->m[i].blk.state);
    free(f);
}

/* Writes N_CMDS one by one into a one-voter group with this threshold
 * and returns its snapshot figures. */
static figures run(uint32_t snapshot_threshold)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    setup(f, 1);
    join(f, 0, snapshot_threshold);
    find_leader(f);
    write_all(f);
    figures fg = figures_of(&f->m[0]);
    teardown(f);
    return fg;
}

/* The default: the first snapshot comes at 1024 entries, and then the
 * group leaves room for twice a snapshot's bytes of log before the next:
 * 6 MiB at a little over 1 KiB an entry is well over 4,000 entries. */
static void default_spaces_snapshots_by_state(void **state)
{
    (void)state;
    figures fg = run(0);
    assert_true(fg.snapshots == 1);
    assert_true(fg.bytes >= STATE_BYTES);
    assert_true(fg.threshold > 4096);
    assert_true(fg.threshold < 8192);
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

/* Two of three voters commit past a snapshot and compact their logs; the
 * third joins then, and can only be caught up by the 3 MiB snapshot,
 * which travels in several pieces. It ends with the leader's state. */
static void late_member_gets_big_snapshot(void **state)
{
    (void)state;
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    setup(f, 3);
    join(f, 0, 0);
    join(f, 1, 0);
    find_leader(f);
    write_all(f);
    member *leader = f->g == f->m[0].g ? &f->m[0] : &f->m[1];
    assert_true(figures_of(leader).snapshots >= 1);

    join(f, 2, 0);
    member *late = &f->m[2];
    int64_t end = mk_mono_ms() + (int64_t)(60000 * f->tf);
    while (late->blk.applied < leader->blk.applied && mk_mono_ms() < end)
        spin(f, 10);
    assert_int_equal(late->blk.applied, leader->blk.applied);
    assert_memory_equal(late->blk.state, leader->blk.state, STATE_BYTES);
    /* It got there by a snapshot, not by replaying the log. */
    assert_true(figures_of(late).bytes >= STATE_BYTES);
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_spaces_snapshots_by_state),
        cmocka_unit_test(explicit_threshold_is_kept),
        cmocka_unit_test(late_member_gets_big_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
