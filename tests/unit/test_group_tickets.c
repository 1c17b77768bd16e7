/* Ticket-gated committees (mk_group_tickets): who may join, and who is
 * taken out when a ticket ends.
 *
 * Nodes in one process on loopback, one loop, real links. The group's
 * policy names issuer key I and iss "committee-tickets"; A is its one
 * seed. Tickets are issued here with mk_jwt_issue and carried in the
 * nodes' signed entries, as coalitiond's --ticket does.
 *
 *   outsiders_cannot_join   C (no ticket), D (an expired one) and E (one
 *                           signed by another key) join the group too and
 *                           list its GroupId: the leader never adds them,
 *                           and a Raft HELLO from any of them is closed
 *                           with GROUP_NOT_ALLOWED. B, with a valid
 *                           ticket, is added as a standby, stays one, and
 *                           an operator's ASSIGN (signed by seed A)
 *                           promotes it; a group client's STATUS through B
 *                           sees the proof of a ticket-gated member.
 *   expired_member_removed  F's ticket ends a few seconds after it was
 *                           promoted to voter: the leader demotes and
 *                           removes it, and F's key is refused afterwards.
 *
 * Without ticket-gated membership none of B, F would ever be a member
 * (they are not listed) and mk_group_open would refuse them. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/group.h"
#include "mosaik/group_client.h"
#include "mosaik/group_internal.h"
#include "mosaik/jwt.h"
#include "mosaik/key.h"
#include "mosaik/node.h"
#include "mosaik/testing/fsm_test.h"
#include "testutil.h"

#define ISS "committee-tickets"
#define MAX_NODES 6

typedef struct member {
    mk_keypair k;
    mk_node *node;
    struct mk_fsm *fsm;
    mk_group *g;
} member;

typedef struct world {
    uv_loop_t loop;
    uv_timer_t pulse;
    double tf;
    char dir[256];
    mk_keypair issuer, other;
    member m[MAX_NODES];
    size_t n;
    mk_id gid;
    mk_group_tickets tickets;
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

static world *world_new(void)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    const char *tf = getenv("TIME_FACTOR");
    w->tf = tf && atof(tf) > 1.0 ? atof(tf) : 1.0;
    snprintf(w->dir, sizeof w->dir, "/tmp/mk-tickets-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    uv_timer_init(&w->loop, &w->pulse);
    uv_timer_start(&w->pulse, on_pulse, 5, 5);
    assert_int_equal(mk_keypair_generate(&w->issuer), 0);
    assert_int_equal(mk_keypair_generate(&w->other), 0);
    w->tickets = (mk_group_tickets){.keys = {w->issuer.pub}, .n_keys = 1,
                                    .issuer = ISS};
    return w;
}

/* A node with a ticket for itself signed by `by` that ends at `exp`
 * (unix seconds), or none when `by` is NULL. */
static member *node_add(world *w, const mk_keypair *by, int64_t exp)
{
    member *m = &w->m[w->n++];
    char err[MK_ERRMSG_SIZE], boot[256], hex[MK_ID_HEX_LEN + 1];
    const char *bp[1] = {boot};
    assert_int_equal(mk_keypair_generate(&m->k), 0);
    /* Raft ids are the first 8 bytes: keep them apart from zero. */
    while (mk__raft_id_of(&m->k.pub) == 0)
        assert_int_equal(mk_keypair_generate(&m->k), 0);
    mk_node_config nc = {.loop = &w->loop, .key = &m->k,
                         .listen = "127.0.0.1:0"};
    if (w->n > 1) {
        snprintf(boot, sizeof boot, "%s@%s", mk_id_hex(&w->m[0].k.pub, hex),
                 mk_node_addr(w->m[0].node));
        nc.bootstrap = bp;
        nc.n_bootstrap = 1;
    }
    if (mk_node_new(&nc, &m->node, err) != 0)
        fail_msg("mk_node_new: %s", err);
    assert_int_equal(mk_node_start(m->node), 0);
    if (by) {
        mk_ticket t;
        mk_jwt_claims c = {.iss = ISS, .iat = exp - 3600, .exp = exp};
        if (mk_jwt_issue_ticket(&t, by, &m->k.pub, &c, err) != 0)
            fail_msg("mk_jwt_issue_ticket: %s", err);
        assert_true(mk_node_set_ticket(m->node, &t) >= 0);
        mk_ticket_free(&t);
    }
    m->fsm = mk_fsm_test_new("counter");
    return m;
}

static void config(world *w, member *m, mk_group_config *gc, char *data,
                   size_t len)
{
    snprintf(data, len, "%s/%zu", w->dir, (size_t)(m - w->m));
    *gc = (mk_group_config){
        .node = m->node,
        .fsm = m->fsm,
        .voters = &w->m[0].k.pub, /* the seed */
        .n_voters = 1,
        .data_dir = data,
        .params = {.election_timeout_ms = 300, .heartbeat_ms = 30,
                   .max_voters = 3, .replace_after_ms = 60000},
        .tickets = &w->tickets,
    };
    mk_id_from_str(&gc->root, "ticket-committee");
}

static void join(world *w, member *m)
{
    mk_group_config gc;
    char data[300], err[MK_ERRMSG_SIZE];
    config(w, m, &gc, data, sizeof data);
    if (mk_group_open(&gc, &m->g, err) != 0)
        fail_msg("mk_group_open: %s", err);
    assert_true(mk_id_eq(mk_group_id(m->g), &w->gid));
}

/* The role `m` has in A's (the leader's) configuration, or -1. */
static int role_at_leader(const world *w, const member *m)
{
    const mk_group *g = w->m[0].g;
    const struct raft_configuration *c = &g->raft.configuration;
    raft_id id = mk__raft_id_of(&m->k.pub);
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return c->servers[i].role;
    return -1;
}

static bool wait_role(world *w, const member *m, int role, int for_ms)
{
    int64_t end = mk_mono_ms() + for_ms;
    while (mk_mono_ms() < end && role_at_leader(w, m) != role)
        spin(w, 20);
    return role_at_leader(w, m) == role;
}

static bool leads(const member *m)
{
    mk_group_status st;
    mk_group_status_get(m->g, &st);
    return st.is_leader;
}

/* ---- a Raft HELLO by hand ------------------------------------------------ */

typedef struct hello {
    mk_id gid, network;
    raft_id id;
    bool done;
    uint32_t code;
    bool welcomed;
} hello;

static void on_hello_frame(mk_link *link, const uint8_t *f, size_t len,
                           void *data)
{
    hello *h = data;
    if (len == 1 && f[0] == MK__G_WELCOME)
        h->welcomed = true;
    mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
}

static void on_hello_close(mk_link *link, uint32_t code, int status,
                           void *data)
{
    hello *h = data;
    h->code = code;
    h->done = true;
}

static void on_hello_dialled(mk_link *link, int status, void *data)
{
    hello *h = data;
    if (status < 0) {
        h->done = true;
        return;
    }
    mk_link_set_callbacks(link, on_hello_frame, on_hello_close, h);
    mk__hello msg = {.kind = MK__LINK_RAFT, .network = h->network,
                     .group = h->gid, .raft_id = h->id};
    mk_buf b;
    mk_buf_init(&b);
    mk__hello_encode(&b, &msg);
    assert_int_equal(mk_link_send(link, b.data, b.len), 0);
    mk_buf_free(&b);
}

/* What A answers `from`'s Raft HELLO with: the close code, 0 when it
 * welcomed it. */
static uint32_t raft_hello(world *w, member *from)
{
    hello h = {.gid = w->gid, .network = *mk_node_network(from->node),
               .id = mk__raft_id_of(&from->k.pub)};
    assert_int_equal(mk_node_dial(from->node, &w->m[0].k.pub, MK_ALPN_GROUPS,
                                  on_hello_dialled, &h),
                     0);
    int64_t end = mk_mono_ms() + ms(w, 10000);
    while (mk_mono_ms() < end && !h.done)
        spin(w, 10);
    assert_true(h.done);
    return h.welcomed ? 0 : h.code;
}

/* ---- operator and client ------------------------------------------------- */

typedef struct answer {
    bool done;
    int status;
    mk_member_status st;
} answer;

static void on_assigned(int status, uint64_t applied, const uint8_t *res,
                        size_t len, void *data)
{
    answer *a = data;
    a->done = true;
    a->status = status;
}

static void on_status(int status, const mk_member_status *st, void *data)
{
    answer *a = data;
    a->done = true;
    a->status = status;
    if (st)
        a->st = *st;
}

static void wait_answer(world *w, answer *a)
{
    int64_t end = mk_mono_ms() + ms(w, 20000);
    while (mk_mono_ms() < end && !a->done)
        spin(w, 20);
    assert_true(a->done);
}

/* An operator's promotion of `m`, signed by seed A, through a client on
 * node `via`. */
static int promote(world *w, member *via, const member *m)
{
    mk_group_client *cli;
    answer a = {0};
    assert_int_equal(mk_group_client_open(via->node, &w->gid, &cli), 0);
    assert_int_equal(mk_group_client_assign(cli, &m->k.pub, true,
                                            &w->m[0].k, ms(w, 15000),
                                            on_assigned, &a),
                     0);
    wait_answer(w, &a);
    mk_group_client_close(cli, NULL, NULL);
    return a.status;
}

/* ---- world's end --------------------------------------------------------- */

static void world_free(world *w)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->m[i].g)
            mk_group_close(w->m[i].g, NULL, NULL);
    spin(w, 100);
    for (size_t i = 0; i < w->n; i++)
        mk_node_close(w->m[i].node, NULL, NULL);
    spin(w, 700);
    uv_close((uv_handle_t *)&w->pulse, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    for (size_t i = 0; i < w->n; i++)
        mk_fsm_test_free(w->m[i].fsm);
    tu_rm_tree(w->dir);
    free(w);
}

static void start_seed(world *w, int64_t until)
{
    member *a = node_add(w, &w->issuer, until);
    mk_group_config gc;
    char data[300];
    config(w, a, &gc, data, sizeof data);
    mk_group_id_of(&gc, &w->gid);
    join(w, a);
    int64_t end = mk_mono_ms() + ms(w, 10000);
    while (mk_mono_ms() < end && !leads(a))
        spin(w, 20);
    assert_true(leads(a));
}

/* ---- the tests ----------------------------------------------------------- */

static void outsiders_cannot_join(void **state)
{
    (void)state;
    world *w = world_new();
    int64_t now = (int64_t)time(NULL);
    start_seed(w, now + 3600);
    member *b = node_add(w, &w->issuer, now + 3600);
    member *c = node_add(w, NULL, 0);
    member *d = node_add(w, &w->issuer, now - 60);
    member *e = node_add(w, &w->other, now + 3600);
    member *out[3] = {c, d, e};
    for (int i = 0; i < 3; i++)
        join(w, out[i]);

    /* Nobody without a valid ticket is added, however long they wait
     * (the leader judges every 250 ms). */
    spin(w, ms(w, 3000));
    assert_int_equal(w->m[0].g->raft.configuration.n, 1);
    for (int i = 0; i < 3; i++) {
        member *m = out[i];
        assert_int_equal(role_at_leader(w, m), -1);
        mk_group_status st;
        mk_group_status_get(m->g, &st);
        assert_false(st.online);
        assert_int_equal(st.n_members, 0);
        assert_int_equal(raft_hello(w, m), MK_CLOSE_GROUP_NOT_ALLOWED);
    }

    /* B, with a valid ticket, is added as a standby and stays one: only
     * the seed votes until someone promotes it. */
    member *k = node_add(w, NULL, 0); /* a client's node, in no group */
    join(w, b);
    assert_true(wait_role(w, b, RAFT_STANDBY, ms(w, 10000)));
    spin(w, ms(w, 1500));
    assert_int_equal(role_at_leader(w, b), RAFT_STANDBY);
    mk_group_status st;
    mk_group_status_get(w->m[0].g, &st);
    assert_int_equal(st.n_voters, 1);
    assert_int_equal(st.n_members, 2);

    /* B follows the log like any member, and proves to a client that it
     * is one. */
    int64_t end = mk_mono_ms() + ms(w, 10000);
    do {
        spin(w, 20);
        mk_group_status_get(b->g, &st);
    } while (mk_mono_ms() < end && !st.online);
    assert_true(st.online);
    assert_false(st.is_voter);
    mk_group_client *cli;
    answer a = {0};
    assert_int_equal(mk_group_client_open(k->node, &w->gid, &cli), 0);
    assert_int_equal(mk_group_client_status(cli, &b->k.pub, false,
                                            ms(w, 10000), on_status, &a),
                     0);
    wait_answer(w, &a);
    mk_group_client_close(cli, NULL, NULL);
    assert_int_equal(a.status, 0);
    assert_true(mk_id_eq(&a.st.self, &b->k.pub));
    assert_int_equal(a.st.st.n_members, 2);

    /* An operator promotes it with the existing ASSIGN. */
    assert_int_equal(promote(w, k, b), 0);
    assert_int_equal(role_at_leader(w, b), RAFT_VOTER);
    assert_int_equal(raft_hello(w, b), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(role_at_leader(w, out[i]), -1);
    world_free(w);
}

static void expired_member_removed(void **state)
{
    (void)state;
    world *w = world_new();
    int64_t now = (int64_t)time(NULL);
    start_seed(w, now + 3600);
    /* Long enough to join and be promoted on a loaded machine. */
    int64_t ends = now + (int64_t)(8 * w->tf) + 1;
    member *f = node_add(w, &w->issuer, ends);
    member *k = node_add(w, NULL, 0); /* a client's node, in no group */
    join(w, f);
    assert_true(wait_role(w, f, RAFT_STANDBY, ms(w, 6000)));
    assert_int_equal(promote(w, k, f), 0);
    assert_int_equal(role_at_leader(w, f), RAFT_VOTER);
    assert_true((int64_t)time(NULL) < ends);

    /* Its ticket ends: demoted, then removed. */
    int64_t end = mk_mono_ms() + (ends - (int64_t)time(NULL)) * 1000 +
                  ms(w, 10000);
    while (mk_mono_ms() < end && role_at_leader(w, f) != -1)
        spin(w, 20);
    assert_int_equal(role_at_leader(w, f), -1);
    assert_true((int64_t)time(NULL) >= ends);
    mk_group_status st;
    mk_group_status_get(w->m[0].g, &st);
    assert_int_equal(st.n_members, 1);
    assert_int_equal(st.n_voters, 1);

    /* And its key is refused from then on, while it still holds the
     * group and lists it. */
    assert_int_equal(raft_hello(w, f), MK_CLOSE_GROUP_NOT_ALLOWED);
    spin(w, ms(w, 1000));
    assert_int_equal(role_at_leader(w, f), -1);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(outsiders_cannot_join),
        cmocka_unit_test(expired_member_removed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
