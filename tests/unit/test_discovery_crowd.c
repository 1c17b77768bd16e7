/* A crowd joining at once through one bootstrap node, all on one loop
 * with real sockets and TLS (as bench/nodes_host runs them). What is
 * counted, never timed: how many of the crowd's first exchanges the
 * bootstrap turned away, and what every node's catalog holds at the end.
 *
 * The bootstrap serves MAX_SYNC_ACCEPTS (32) whole-catalog exchanges at
 * once. It used to turn the rest away: each of those paid a TLS
 * handshake for nothing, sat alone (nobody else knew it) and retried
 * with a growing backoff, and the last of a crowd of a hundred waited
 * seconds. Now the overflow is answered with a referral (discovery.c,
 * MAX_REFERRALS), and nobody of the crowd is turned away. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/node.h"
#include "mosaik/node_internal.h"
#include "testutil.h"

/* Well past MAX_SYNC_ACCEPTS: on one loop every join reaches the
 * bootstrap within the same few iterations. */
enum { CROWD = 72 };

typedef struct member {
    mk_keypair key;
    mk_node *node;
} member;

static mk_node *start_node(uv_loop_t *loop, member *m, const char *boot)
{
    const char *bootstrap[1] = {boot};
    mk_node_config nc = {.loop = loop,
                         .key = &m->key,
                         .listen = "127.0.0.1:0",
                         .bootstrap = boot ? bootstrap : NULL,
                         .n_bootstrap = boot ? 1 : 0};
    char err[MK_ERRMSG_SIZE] = "";
    assert_int_equal(mk_keypair_generate(&m->key), 0);
    int rc = mk_node_new(&nc, &m->node, err);
    if (rc != 0)
        fail_msg("mk_node_new: %s (%s)", mk_strerror(rc), err);
    return m->node;
}

/* A node's ready neighbour links, those it dialled and the others. */
static void links_of(const mk_node *node, size_t *out, size_t *in)
{
    *out = *in = 0;
    for (size_t i = 0; i < node->n_nbrs; i++) {
        const mk__neighbour *nb = &node->nbrs[i];
        if (nb->ready && !nb->closing && nb->outbound)
            ++*out;
        else if (nb->ready && !nb->closing)
            ++*in;
    }
}

static size_t converged(member *ms, size_t n)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
        done += mk_node_peer_count(ms[i].node) == n - 1;
    return done;
}

static void crowd_is_served_without_turning_anyone_away(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    static member ms[CROWD];
    mk_node *boot = start_node(&loop, &ms[0], NULL);
    mk_node_start(boot);
    char hex[MK_ID_HEX_LEN + 1], addr[256];
    snprintf(addr, sizeof addr, "%s@%s", mk_id_hex(mk_node_id(boot), hex),
             mk_node_addr(boot));
    for (size_t i = 1; i < CROWD; i++)
        start_node(&loop, &ms[i], addr);
    for (size_t i = 1; i < CROWD; i++)
        mk_node_start(ms[i].node);

    /* Bounded only so that a broken build ends: nothing is asserted on
     * how long it took. */
    int64_t deadline = mk_mono_ms() + 240000;
    while (converged(ms, CROWD) < CROWD && mk_mono_ms() < deadline)
        tu_spin(&loop, 50);

    mk_discovery_stats bs;
    mk_node_discovery_stats(boot, &bs);
    uint64_t syncs = 0;
    for (size_t i = 1; i < CROWD; i++) {
        mk_discovery_stats s;
        mk_node_discovery_stats(ms[i].node, &s);
        syncs += s.syncs;
    }
    print_message("%zu of %d know everyone; the bootstrap referred %llu "
                  "exchanges and turned away %llu; the crowd completed "
                  "%llu\n",
                  converged(ms, CROWD), CROWD,
                  (unsigned long long)bs.syncs_referred,
                  (unsigned long long)bs.syncs_refused,
                  (unsigned long long)syncs);
    assert_int_equal(converged(ms, CROWD), CROWD);
    /* Nobody paid a handshake to be turned away, and each node needed
     * exactly one exchange: the one with its bootstrap. */
    assert_int_equal(bs.syncs_refused, 0);
    assert_int_equal(syncs, CROWD - 1);

    /* The overlay it settles into: every node holds at least half of its
     * five links by its own choice and five in all, counting those the
     * others dialled (mk__nbr_short). */
    size_t ok = 0, dialled = 0;
    deadline = mk_mono_ms() + 60000;
    while (ok < CROWD && mk_mono_ms() < deadline) {
        tu_spin(&loop, 100);
        ok = dialled = 0;
        for (size_t i = 0; i < CROWD; i++) {
            size_t out, in;
            links_of(ms[i].node, &out, &in);
            ok += out >= 3 && out + in >= 5;
            dialled += out;
        }
    }
    print_message("%zu of %d hold 3 links of their own and 5 in all; "
                  "%.1f dialled per node\n",
                  ok, CROWD, (double)dialled / CROWD);
    assert_int_equal(ok, CROWD);

    for (size_t i = 0; i < CROWD; i++)
        mk_node_close(ms[i].node, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The rule itself: three links of its own at once, the other two
 * counted from whoever dials it, and dialled itself only once those had
 * MK__NBR_INBOUND_WAIT_MS to come. */
static void neighbours_count_both_ways(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    member m;
    mk_node *node = start_node(&loop, &m, NULL);
    assert_int_equal(node->dc.neighbours, 5);
    node->started_mono = 1000000;
    int64_t early = node->started_mono + 10;
    int64_t late = node->started_mono + MK__NBR_INBOUND_WAIT_MS;
    for (size_t out = 0; out < 3; out++) {
        assert_true(mk__nbr_short(node, out, 0, early));
        assert_true(mk__nbr_short(node, out, 9, late)); /* own half first */
    }
    assert_false(mk__nbr_short(node, 3, 0, early)); /* waits for inbound */
    assert_true(mk__nbr_short(node, 3, 0, late));
    assert_true(mk__nbr_short(node, 3, 1, late));
    assert_false(mk__nbr_short(node, 3, 2, late)); /* five in all */
    assert_false(mk__nbr_short(node, 5, 0, late));
    node->nbr_dials = 2; /* dials on their way count as its own */
    assert_false(mk__nbr_short(node, 1, 0, early));
    assert_false(mk__nbr_short(node, 3, 0, late));
    node->nbr_dials = 0;
    mk_node_close(node, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(neighbours_count_both_ways),
        cmocka_unit_test(crowd_is_served_without_turning_anyone_away),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
