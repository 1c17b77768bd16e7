/* Subscribers that ask a member for its history and never read it must
 * not hold the member's memory (group_feed.c, FEED_BUDGET).
 *
 * One node, A, is the one voter of a group whose ring holds about 11 MiB
 * of commands. Another node, S, opens SUBS feed subscriptions from 0 and
 * pauses every link at once, so nothing is ever read: the kernel takes a
 * few MiB per connection, and the rest waits in the member's queues.
 * Every subscriber used to be fed up to 4 MiB (SUBS x 4 MiB in all); the
 * queues together now stay within the budget, each subscriber's share
 * of it. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/group.h"
#include "mosaik/group_internal.h"
#include "mosaik/key.h"
#include "mosaik/node.h"
#include "mosaik/testing/fsm_test.h"
#include "testutil.h"

enum { SUBS = 24, CMDS = 360, CMD_LEN = 32 << 10 };
#define BUDGET (64u << 20) /* group_feed.c */
#define PER_SUB_SLACK (160u << 10) /* a command and its framing past the cap */

typedef struct world {
    uv_loop_t loop;
    double tf;
    int results, failures;
    int opened;
    mk_id network, gid;
} world;

static void on_result(int status, uint64_t applied, const uint8_t *res,
                      size_t len, void *data)
{
    (void)applied;
    (void)res;
    (void)len;
    world *w = data;
    w->results++;
    if (status != 0)
        w->failures++;
}

/* A subscription as replica.c opens one, then deaf: paused before
 * anything arrives. */
static void on_frame(mk_link *link, const uint8_t *f, size_t len, void *data)
{
    (void)link;
    (void)f;
    (void)len;
    (void)data;
}

static void on_close(mk_link *link, uint32_t code, int status, void *data)
{
    (void)link;
    (void)code;
    (void)status;
    (void)data;
}

static void on_dialled(mk_link *link, int status, void *data)
{
    world *w = data;
    if (status < 0)
        return;
    mk_link_set_callbacks(link, on_frame, on_close, w);
    mk_link_pause(link);
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__F_SUBSCRIBE);
    mk_put_id(&b, &w->network);
    mk_put_id(&b, &w->gid);
    mk_put_varint(&b, 0);
    assert_int_equal(b.err, 0);
    assert_int_equal(mk_link_send(link, b.data, b.len), 0);
    mk_buf_free(&b);
    w->opened++;
}

static void deaf_subscribers_stay_within_the_budget(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    const char *tf = getenv("TIME_FACTOR");
    w->tf = tf && atof(tf) > 1.0 ? atof(tf) : 1.0;
    char dir[64] = "/tmp/mk-feed-budget-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    mk_keypair ka, ks;
    assert_int_equal(mk_keypair_generate(&ka), 0);
    assert_int_equal(mk_keypair_generate(&ks), 0);
    mk_node *a = tu_node_new(&w->loop, &ka, true, NULL, NULL);
    mk_node *s = tu_node_new(&w->loop, &ks, false, a, &ka);
    w->network = *mk_node_network(a);

    struct mk_fsm *fsm = mk_fsm_test_new("register");
    char data[128];
    snprintf(data, sizeof data, "%s/a", dir);
    mk_group_config gc = {
        .node = a,
        .fsm = fsm,
        .voters = &ka.pub,
        .n_voters = 1,
        .data_dir = data,
        .params = {.election_timeout_ms = 300, .heartbeat_ms = 30},
    };
    mk_id_from_str(&gc.root, "feed-budget-test");
    mk_group *g;
    char err[MK_ERRMSG_SIZE];
    assert_int_equal(mk_group_open(&gc, &g, err), 0);
    mk_group_id_of(&gc, &w->gid);

    /* About 11 MiB of history, all of it in the ring. */
    uint8_t *cmd = malloc(CMD_LEN);
    assert_non_null(cmd);
    for (int i = 0; i < CMDS; i++) {
        memset(cmd, 'a' + i % 26, CMD_LEN);
        int rc;
        int64_t end = mk_mono_ms() + (int64_t)(10000 * w->tf);
        while ((rc = mk_group_execute(g, cmd, CMD_LEN, 0, on_result, w)) ==
                   MK_EBUSY &&
               mk_mono_ms() < end)
            tu_spin(&w->loop, 5);
        assert_int_equal(rc, 0);
    }
    free(cmd);
    int64_t end = mk_mono_ms() + (int64_t)(30000 * w->tf);
    while (w->results < CMDS && mk_mono_ms() < end)
        tu_spin(&w->loop, 20);
    assert_int_equal(w->results, CMDS);
    assert_int_equal(w->failures, 0);

    end = mk_mono_ms() + (int64_t)(10000 * w->tf);
    while (!tu_knows(s, &ka.pub) && mk_mono_ms() < end)
        tu_spin(&w->loop, 20);
    for (int i = 0; i < SUBS; i++)
        assert_int_equal(
            mk_node_dial(s, &ka.pub, MK_ALPN_GROUP_FEED, on_dialled, w), 0);
    /* Until the queues stop growing: every subscriber has been offered
     * all it asked for that fits. */
    size_t was = 0, queued = 0, peak = 0;
    end = mk_mono_ms() + (int64_t)(20000 * w->tf);
    do {
        tu_spin(&w->loop, (int)(1000 * w->tf));
        was = queued;
        queued = mk__feed_queued(&g->feed);
        if (queued > peak)
            peak = queued;
    } while ((w->opened < SUBS || queued != was) && mk_mono_ms() < end);
    print_message("%d deaf subscribers: %.1f MiB queued at the member "
                  "(peak %.1f MiB)\n",
                  w->opened, queued / 1048576.0, peak / 1048576.0);
    assert_int_equal(w->opened, SUBS);
    /* The subscribers really hold data back (else the bound says
     * nothing), and the member within its budget. */
    assert_true(peak > BUDGET / 2);
    assert_true(peak <= BUDGET + SUBS * PER_SUB_SLACK);

    mk_group_close(g, NULL, NULL);
    mk_node_close(s, NULL, NULL);
    mk_node_close(a, NULL, NULL);
    /* Until every handle is closed (the deaf links take their close
     * deadline). */
    int rc;
    end = mk_mono_ms() + (int64_t)(15000 * w->tf);
    while ((rc = uv_loop_close(&w->loop)) == UV_EBUSY && mk_mono_ms() < end)
        tu_spin(&w->loop, 50);
    assert_int_equal(rc, 0);
    mk_fsm_test_free(fsm);
    tu_rm_tree(dir);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deaf_subscribers_stay_within_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
