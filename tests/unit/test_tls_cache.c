/* The dialer's table of resumable sessions (src/mosaik/tls_cache.h): one
 * session per remote key, bounded, and when full it keeps a share of the
 * peers rather than the latest ones, so that a node probing more peers
 * than it has room for, in turn, still resumes most of what it can hold.
 * ASan checks that every session given to the table is released once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mosaik/tls_cache.h"

static mk_peer_id peer(uint32_t i)
{
    mk_peer_id p;
    memset(&p, 0, sizeof p);
    memcpy(p.b, &i, sizeof i);
    return p;
}

static void one_session_per_peer(void **state)
{
    (void)state;
    mk__tls_cache c;
    mk__tls_cache_init(&c);
    mk_peer_id a = peer(1), b = peer(2);
    SSL_SESSION *s1 = SSL_SESSION_new(), *s2 = SSL_SESSION_new();
    mk__tls_cache_put(&c, &a, s1);
    assert_ptr_equal(mk__tls_cache_get(&c, &a), s1);
    assert_null(mk__tls_cache_get(&c, &b));
    /* A newer session replaces the older one (which is released). */
    mk__tls_cache_put(&c, &a, s2);
    assert_ptr_equal(mk__tls_cache_get(&c, &a), s2);
    assert_int_equal(c.n, 1);
    mk__tls_cache_drop(&c, &a);
    assert_null(mk__tls_cache_get(&c, &a));
    mk__tls_cache_drop(&c, &b); /* nothing to drop */
    mk__tls_cache_free(&c);
}

static void bounded(void **state)
{
    (void)state;
    mk__tls_cache c;
    mk__tls_cache_init(&c);
    for (uint32_t i = 0; i < 4 * MK__TLS_CACHE_MAX; i++) {
        mk_peer_id p = peer(i);
        mk__tls_cache_put(&c, &p, SSL_SESSION_new());
    }
    assert_int_equal(c.n, MK__TLS_CACHE_MAX);
    size_t held = 0;
    for (uint32_t i = 0; i < 4 * MK__TLS_CACHE_MAX; i++) {
        mk_peer_id p = peer(i);
        held += mk__tls_cache_get(&c, &p) != NULL;
    }
    assert_int_equal(held, MK__TLS_CACHE_MAX);
    /* A peer it holds still gets its newer session, full or not. */
    mk_peer_id p = c.e[7].peer;
    SSL_SESSION *s = SSL_SESSION_new();
    mk__tls_cache_put(&c, &p, s);
    assert_ptr_equal(mk__tls_cache_get(&c, &p), s);
    mk__tls_cache_free(&c);
}

/* What a dial-only node does: each peer in turn, each dial leaving a new
 * session whether it resumed or not. Evicting the oldest resumed none of
 * them past MK__TLS_CACHE_MAX peers. */
static double probe_in_turn(uint32_t peers)
{
    mk__tls_cache c;
    mk__tls_cache_init(&c);
    size_t resumed = 0, dials = 0;
    for (int round = 0; round < 12; round++) {
        for (uint32_t i = 0; i < peers; i++) {
            mk_peer_id p = peer(i);
            if (round >= 6) {
                resumed += mk__tls_cache_get(&c, &p) != NULL;
                dials++;
            }
            mk__tls_cache_put(&c, &p, SSL_SESSION_new());
        }
    }
    mk__tls_cache_free(&c);
    return (double)resumed / (double)dials;
}

static void probing_in_turn_resumes_a_share(void **state)
{
    (void)state;
    assert_true(probe_in_turn(MK__TLS_CACHE_MAX) == 1.0);
    double r512 = probe_in_turn(2 * MK__TLS_CACHE_MAX);
    double r1024 = probe_in_turn(4 * MK__TLS_CACHE_MAX);
    print_message("resumed in turn: %.0f%% of %d peers, %.0f%% of %d "
                  "(at most 50%%, 25%%)\n",
                  100 * r512, 2 * MK__TLS_CACHE_MAX, 100 * r1024,
                  4 * MK__TLS_CACHE_MAX);
    assert_true(r512 >= 0.35 && r512 <= 0.5);
    assert_true(r1024 >= 0.15 && r1024 <= 0.25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_session_per_peer),
        cmocka_unit_test(bounded),
        cmocka_unit_test(probing_in_turn_resumes_a_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
