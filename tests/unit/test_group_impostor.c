/* An impostor that lists a group's GroupId in its entry must not be able
 * to answer for the committee (hardening issue, defect 1).
 *
 * Three nodes in one process on loopback: A, which will be the group's
 * one voter; X, the impostor, whose self-signed entry lists the GroupId
 * and which serves both group protocols itself; and C, the integrator,
 * with a group client and a replica. The impostor does what the
 * adversarial run did: it welcomes every dialer (alternately with the bare
 * pre-proof WELCOME and with a proof that lists its own key over a made-up
 * base), answers every request "ok, applied 999999" and feeds replicas a
 * command of its own.
 *
 * While only X claims the group, C must get nothing: no result, no state,
 * and X must never see a command. Once A joins, C's command is applied by
 * the real committee and the replica follows A. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/testing/fsm_test.h"
#include "mosaik/group.h"
#include "mosaik/group_client.h"
#include "mosaik/group_internal.h"
#include "mosaik/key.h"
#include "mosaik/node.h"
#include "testutil.h"

typedef struct impostor {
    mk_node *node;
    mk_id gid;
    int accepted;      /* links on either protocol */
    int reqs_seen;     /* REQ frames: commands or queries it was sent */
    int subscriptions; /* SUBSCRIBE frames */
} impostor;

typedef struct world {
    uv_loop_t loop;
    uv_timer_t pulse;
    double tf;
    char dir[256];
    mk_keypair ka, kx, kc;
    mk_node *a, *x, *c;
    impostor imp;
    struct mk_fsm *fsm_a, *fsm_r;
    mk_group *g;
    mk_group_client *cli;
    mk_replica *rep;
    int results;
    int last_status;
    uint64_t last_applied;
    char last_result[64];
} world;

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static void spin(world *w, int for_ms)
{
    tu_spin(&w->loop, for_ms);
}

static int ms(const world *w, int base)
{
    return (int)(base * w->tf);
}

/* ---- the impostor ----------------------------------------------------- */

/* A WELCOME as an old member sent it, or one with a proof that names the
 * impostor: the strongest claim it can make without the real base. */
static void send_welcome(impostor *x, mk_link *link, bool feed)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, feed ? MK__F_WELCOME : MK__G_WELCOME);
    if (feed)
        mk_put_varint(&b, 0);
    if (x->accepted % 2 == 0) {
        mk__proof p = {.n = 1};
        mk_id_from_str(&p.base, "made-up base");
        p.voters[0] = *mk_node_id(x->node);
        mk__proof_encode(&b, &p);
    }
    mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
}

static void on_rpc_frame(mk_link *link, const uint8_t *f, size_t len,
                         void *data)
{
    impostor *x = data;
    mk__hello h;
    if (mk__hello_decode(f, len, &h) == 0) {
        send_welcome(x, link, false);
        return;
    }
    mk__req q;
    if (mk__req_decode(f, len, &q) != 0)
        return;
    x->reqs_seen++;
    mk__resp r = {.id = q.id, .op = q.op, .status = 0, .applied = 999999,
                  .seq = q.seq, .body = (const uint8_t *)"999999",
                  .len = 6};
    memcpy(r.session, q.session, MK__SESSION_LEN);
    mk_buf b;
    mk_buf_init(&b);
    mk__resp_encode(&b, &r);
    mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
}

static void on_feed_frame(mk_link *link, const uint8_t *f, size_t len,
                          void *data)
{
    impostor *x = data;
    if (len == 0 || f[0] != MK__F_SUBSCRIBE)
        return;
    x->subscriptions++;
    send_welcome(x, link, true);
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__F_CMD);
    mk_put_varint(&b, 1);
    mk_put_bytes(&b, "41", 2);
    mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
}

static void on_imp_close(mk_link *link, uint32_t code, int status, void *data)
{
    (void)link;
    (void)code;
    (void)status;
    (void)data;
}

static void on_rpc_accept(mk_link *link, void *data)
{
    impostor *x = data;
    x->accepted++;
    mk_link_set_callbacks(link, on_rpc_frame, on_imp_close, x);
}

static void on_feed_accept(mk_link *link, void *data)
{
    impostor *x = data;
    x->accepted++;
    mk_link_set_callbacks(link, on_feed_frame, on_imp_close, x);
}

/* ---- the world -------------------------------------------------------- */

static mk_node *node_new(world *w, mk_keypair *k, bool listen)
{
    return tu_node_new(&w->loop, k, listen, w->a, &w->ka);
}

static void group_config(world *w, mk_group_config *gc, char *data,
                         size_t len)
{
    snprintf(data, len, "%s/a", w->dir);
    *gc = (mk_group_config){
        .node = w->a,
        .fsm = w->fsm_a,
        .voters = &w->ka.pub,
        .n_voters = 1,
        .data_dir = data,
        .params = {.election_timeout_ms = 300, .heartbeat_ms = 30},
    };
    mk_id_from_str(&gc->root, "impostor-test");
}

static void on_result(int status, uint64_t applied, const uint8_t *res,
                      size_t len, void *data)
{
    world *w = data;
    w->results++;
    w->last_status = status;
    w->last_applied = applied;
    snprintf(w->last_result, sizeof w->last_result, "%.*s",
             (int)(len < 60 ? len : 60), res ? (const char *)res : "");
}

static void impostor_cannot_answer(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    const char *tf = getenv("TIME_FACTOR");
    w->tf = tf && atof(tf) > 1.0 ? atof(tf) : 1.0;
    snprintf(w->dir, sizeof w->dir, "/tmp/mk-impostor-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    uv_timer_init(&w->loop, &w->pulse);
    uv_timer_start(&w->pulse, on_pulse, 5, 5);
    assert_int_equal(mk_keypair_generate(&w->ka), 0);
    assert_int_equal(mk_keypair_generate(&w->kx), 0);
    assert_int_equal(mk_keypair_generate(&w->kc), 0);
    w->fsm_a = mk_fsm_test_new("counter");
    w->fsm_r = mk_fsm_test_new("counter");

    mk_group_config gc;
    char data[300];
    mk_id gid;
    group_config(w, &gc, data, sizeof data);
    mk_group_id_of(&gc, &gid);

    w->a = node_new(w, &w->ka, true);
    w->x = node_new(w, &w->kx, true);
    w->imp.node = w->x;
    w->imp.gid = gid;
    assert_int_equal(mk_node_add_group(w->x, &gid), 1);
    mk_transport *tx = mk_node_transport(w->x);
    assert_int_equal(
        mk_transport_serve(tx, MK_ALPN_GROUPS, on_rpc_accept, &w->imp), 0);
    assert_int_equal(mk_transport_serve(tx, MK_ALPN_GROUP_FEED,
                                        on_feed_accept, &w->imp),
                     0);
    w->c = node_new(w, &w->kc, false);
    int64_t end = mk_mono_ms() + ms(w, 10000);
    while (mk_mono_ms() < end && !tu_knows(w->c, &w->kx.pub))
        spin(w, 20);
    assert_true(tu_knows(w->c, &w->kx.pub));

    /* Only the impostor claims the group. */
    assert_int_equal(mk_group_client_open(w->c, &gid, &w->cli), 0);
    assert_int_equal(mk_group_client_execute(w->cli, "5", 1, ms(w, 20000),
                                             on_result, w),
                     0);
    mk_replica_config rc = {.node = w->c, .group = gid, .fsm = w->fsm_r};
    assert_int_equal(mk_replica_open(&rc, &w->rep), 0);
    spin(w, ms(w, 2500));
    assert_true(w->imp.accepted >= 2);   /* it was tried, both ways */
    assert_int_equal(w->imp.reqs_seen, 0); /* and sent nothing */
    assert_int_equal(w->results, 0);       /* no answer taken from it */
    assert_int_equal(mk_replica_applied(w->rep), 0);
    assert_false(mk_replica_online(w->rep));

    /* The real committee arrives: the same command is applied once, by it,
     * and the replica follows the voter. */
    char err[MK_ERRMSG_SIZE];
    gc.node = w->a;
    if (mk_group_open(&gc, &w->g, err) != 0)
        fail_msg("mk_group_open: %s", err);
    end = mk_mono_ms() + ms(w, 20000);
    while (mk_mono_ms() < end &&
           (w->results == 0 || mk_replica_applied(w->rep) < 1))
        spin(w, 20);
    assert_int_equal(w->results, 1);
    assert_int_equal(w->last_status, 0);
    assert_int_equal(w->last_applied, 1);
    assert_string_equal(w->last_result, "5");
    assert_int_equal(mk_replica_applied(w->rep), 1);
    mk_peer_id src;
    assert_true(mk_replica_source(w->rep, &src));
    assert_true(mk_id_eq(&src, &w->ka.pub));
    assert_int_equal(w->imp.reqs_seen, 0);

    /* The replica holds the committee's state, not the impostor's "41". */
    mk_buf q;
    mk_buf_init(&q);
    assert_int_equal(w->fsm_r->query(w->fsm_r, NULL, 0, &q), 0);
    assert_int_equal(q.len, 1);
    assert_memory_equal(q.data, "5", 1);
    mk_buf_free(&q);

    mk_replica_close(w->rep, NULL, NULL);
    mk_group_client_close(w->cli, NULL, NULL);
    mk_group_close(w->g, NULL, NULL);
    mk_node_close(w->c, NULL, NULL);
    mk_node_close(w->x, NULL, NULL);
    mk_node_close(w->a, NULL, NULL);
    spin(w, 700);
    uv_close((uv_handle_t *)&w->pulse, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    mk_fsm_test_free(w->fsm_a);
    mk_fsm_test_free(w->fsm_r);
    tu_rm_tree(w->dir);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(impostor_cannot_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
