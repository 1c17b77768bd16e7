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

    for (size_t i = 0; i < CROWD; i++)
        mk_node_close(ms[i].node, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crowd_is_served_without_turning_anyone_away),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
