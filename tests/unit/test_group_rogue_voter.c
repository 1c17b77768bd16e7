/* A listed voter that turns hostile must cost the committee nothing but
 * the links it abuses.
 *
 * Three nodes in one process on loopback: A and B are honest members of a
 * three-voter group; R holds the third listed key, so it passes every
 * admission check, but it runs no Raft. Instead it dials A and B on
 * MK_ALPN_GROUPS with a correct HELLO (kind RAFT, its own raft id) and,
 * once welcomed, sends one bad thing per link:
 *   an empty frame, a frame of an unknown kind, a truncated AppendEntries,
 *   an AppendEntries claiming more payload than it carries, a first piece
 *   announcing over 1 GiB, a next piece with no first, a first piece
 *   announcing 10 MiB and then silence (then a whole frame in the middle
 *   of that message), and a RequestVote naming B as the candidate.
 * Each time the honest member must close that link with
 * PROTOCOL_VIOLATION, which R sees as the close code. A and B hold quorum
 * (two of three), so commands submitted through mk_group_execute on both
 * keep committing during and after the attack, exactly once each.
 *
 * R also sends a well-formed AppendEntries with a higher term. R is a
 * listed voter, so Raft takes it (it is not byzantine-tolerant), but as
 * coming from R: the sender is the link, never the bytes. The target
 * follows R for a moment, answers R (R's own acceptor sees the rejection)
 * and the honest pair re-elect. At no point is any member's leader an id
 * other than A, B or R. An AppendEntries or InstallSnapshot in the term
 * the target itself leads (a second leader in one term, which libraft
 * holds impossible and which crashed the leader) must close the link.
 *
 * R's own node serves the groups ALPN as a black hole: it welcomes the
 * Raft links A and B dial to it and reads what they send, so the honest
 * leader treats it as a lagging follower, as it would a real silent one. */
#define _XOPEN_SOURCE 700
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
/* From ASan's allocator interface (its header is not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#else
#include <malloc.h>
#endif

#include "mosaik/clock.h"
#include "mosaik/group.h"
#include "mosaik/group_internal.h"
#include "mosaik/key.h"
#include "mosaik/node.h"
#include "mosaik/testing/fsm_test.h"
#include "testutil.h"

#define IN_FLIGHT 4

/* One link R dials to an honest member. */
typedef struct attack {
    mk_link *link;
    int dial_status;
    bool dialled, welcomed, closed;
    uint32_t code;
} attack;

typedef struct world {
    uv_loop_t loop;
    uv_timer_t pulse, driver;
    double tf;
    char dir[256];
    mk_id gid;
    mk_keypair ka, kb, kr;
    mk_node *a, *b, *r;
    struct mk_fsm *fsm_a, *fsm_b;
    mk_group *ga, *gb;
    raft_id id_a, id_b, id_r;

    /* Commands through the group API, alternately on A and B. */
    int submitted, ok, failed, in_flight, last_failure;
    bool driving;

    /* What the members' Raft said about the leader, checked every turn. */
    int foreign_leader; /* a leader id that is none of A, B, R */
    bool r_led[2];      /* A, B followed R at some point */

    /* R's black hole: AppendEntries results A and B sent R. */
    int ae_results;
    mk_peer_id last_result_from;
    uint64_t last_result_term;
    bool last_result_rejected;
} world;

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static int ms(const world *w, int base)
{
    return (int)(base * w->tf);
}

static void watch_leader(world *w, mk_group *g, int who)
{
    if (!g)
        return;
    raft_id id;
    const char *addr;
    raft_leader(&g->raft, &id, &addr);
    if (id == 0)
        return;
    if (id != w->id_a && id != w->id_b && id != w->id_r)
        w->foreign_leader++;
    if (id == w->id_r)
        w->r_led[who] = true;
}

static void spin(world *w, int for_ms)
{
    int64_t end = mk_mono_ms() + for_ms;
    while (mk_mono_ms() < end) {
        uv_run(&w->loop, UV_RUN_ONCE);
        watch_leader(w, w->ga, 0);
        watch_leader(w, w->gb, 1);
    }
}

/* Spins until *flag or the deadline; returns *flag. */
static bool spin_until(world *w, const bool *flag, int for_ms)
{
    int64_t end = mk_mono_ms() + for_ms;
    while (!*flag && mk_mono_ms() < end)
        spin(w, 5);
    return *flag;
}

/* ---- the honest workload ------------------------------------------------- */

static void on_cmd(int status, uint64_t applied, const uint8_t *res,
                   size_t len, void *data)
{
    world *w = data;
    (void)applied;
    (void)res;
    (void)len;
    w->in_flight--;
    if (status == 0)
        w->ok++;
    else {
        w->failed++;
        w->last_failure = status;
    }
}

static void on_drive(uv_timer_t *t)
{
    world *w = t->data;
    if (!w->driving || w->in_flight >= IN_FLIGHT)
        return;
    mk_group *g = w->submitted % 2 ? w->gb : w->ga;
    int rc = mk_group_execute(g, "1", 1, (uint32_t)ms(w, 60000), on_cmd, w);
    if (rc != 0)
        fail_msg("mk_group_execute: %d", rc);
    w->submitted++;
    w->in_flight++;
}

/* Waits until `n` more commands than now have committed. */
static void expect_progress(world *w, int n, const char *when)
{
    int want = w->ok + n;
    int64_t end = mk_mono_ms() + ms(w, 30000);
    while (w->ok < want && mk_mono_ms() < end)
        spin(w, 10);
    if (w->ok < want)
        fail_msg("no commits %s: %d of %d (failed %d)", when, w->ok, want,
                 w->failed);
}

/* ---- R's black hole: the Raft links A and B dial to R ------------------ */

static void on_hole_frame(mk_link *link, const uint8_t *f, size_t len,
                          void *data)
{
    world *w = data;
    mk__hello h;
    if (mk__hello_decode(f, len, &h) == 0) {
        if (h.kind != MK__LINK_RAFT) {
            /* A command forwarded to R while it looked like the leader. */
            mk_link_close(link, MK_CLOSE_GROUP_NOT_FOUND, NULL);
            return;
        }
        uint8_t welcome = MK__G_WELCOME;
        mk_link_send(link, &welcome, 1);
        return;
    }
    struct raft_message m;
    if (len < 1 || f[0] != 0 || mk__rmsg_decode(f + 1, len - 1, &m) != 0)
        return;
    if (m.type == RAFT_IO_APPEND_ENTRIES_RESULT) {
        w->ae_results++;
        w->last_result_from = *mk_link_peer(link);
        w->last_result_term = m.append_entries_result.term;
        w->last_result_rejected = m.append_entries_result.rejected != 0;
    }
    mk__rmsg_free(&m);
}

static void on_hole_close(mk_link *link, uint32_t code, int status,
                          void *data)
{
    (void)link;
    (void)code;
    (void)status;
    (void)data;
}

static void on_hole_accept(mk_link *link, void *data)
{
    mk_link_set_idle_timeout(link, 0);
    mk_link_set_callbacks(link, on_hole_frame, on_hole_close, data);
}

/* ---- R's attack links ------------------------------------------------------ */

static world *the_world; /* for attack callbacks, which carry the attack */

static void on_attack_frame(mk_link *link, const uint8_t *f, size_t len,
                            void *data)
{
    attack *x = data;
    (void)link;
    if (!x->welcomed && len == 1 && f[0] == MK__G_WELCOME)
        x->welcomed = true;
}

static void on_attack_close(mk_link *link, uint32_t code, int status,
                            void *data)
{
    attack *x = data;
    (void)link;
    (void)status;
    x->closed = true;
    x->code = code;
    x->link = NULL;
}

static void on_attack_dialled(mk_link *link, int status, void *data)
{
    attack *x = data;
    world *w = the_world;
    x->dialled = true;
    x->dial_status = status;
    if (status < 0) {
        x->closed = true;
        return;
    }
    x->link = link;
    mk_link_set_callbacks(link, on_attack_frame, on_attack_close, x);
    mk__hello h = {.kind = MK__LINK_RAFT,
                   .network = *mk_node_network(w->r),
                   .group = w->gid,
                   .raft_id = w->id_r};
    mk_buf hb;
    mk_buf_init(&hb);
    mk__hello_encode(&hb, &h);
    assert_int_equal(hb.err, 0);
    assert_int_equal(mk_link_send(link, hb.data, hb.len), 0);
    mk_buf_free(&hb);
}

/* Dials `target` as R and waits for WELCOME. */
static void attack_open(world *w, attack *x, const mk_peer_id *target)
{
    memset(x, 0, sizeof *x);
    assert_int_equal(
        mk_node_dial(w->r, target, MK_ALPN_GROUPS, on_attack_dialled, x), 0);
    int64_t end = mk_mono_ms() + ms(w, 10000);
    while (!x->welcomed && !x->closed && mk_mono_ms() < end)
        spin(w, 5);
    if (!x->welcomed)
        fail_msg("R was not welcomed (dial %d, closed %d code %u)",
                 x->dial_status, x->closed, x->code);
}

static void attack_send(attack *x, const mk_buf *frame)
{
    assert_int_equal(frame->err, 0);
    assert_non_null(x->link);
    const void *bytes = frame->len ? (const void *)frame->data : "";
    assert_int_equal(mk_link_send(x->link, bytes, frame->len), 0);
}

/* The honest member must close the link as a protocol violation. */
static void expect_violation(world *w, attack *x, const char *what)
{
    if (!spin_until(w, &x->closed, ms(w, 10000)))
        fail_msg("%s: the link stayed open", what);
    if (x->code != MK_CLOSE_PROTOCOL_VIOLATION)
        fail_msg("%s: closed with %u, not PROTOCOL_VIOLATION", what,
                 x->code);
}

/* One link, one frame, one close; then the group must still commit. */
static void attack_once(world *w, const mk_peer_id *target,
                        const mk_buf *frame, const char *what)
{
    attack x;
    attack_open(w, &x, target);
    attack_send(&x, frame);
    expect_violation(w, &x, what);
    expect_progress(w, 2, what);
}

/* ---- frames R sends -------------------------------------------------------- */

static void put_append_head(mk_buf *b, uint64_t term)
{
    mk_put_u8(b, 0); /* WHOLE */
    mk_put_u8(b, RAFT_IO_APPEND_ENTRIES);
    mk_put_varint(b, term);
    mk_put_varint(b, 3); /* prev index */
    mk_put_varint(b, term);
    mk_put_varint(b, 3); /* commit */
}

static void put_message(mk_buf *b, const struct raft_message *m)
{
    mk__rmsg_parts parts;
    mk_put_u8(b, 0); /* WHOLE */
    assert_int_equal(mk__rmsg_encode(m, b, &parts), 0);
    assert_int_equal(parts.n, 0);
    assert_int_equal(parts.data_len, 0);
}

static uint64_t term_of(mk_group *g)
{
    mk_group_status st;
    mk_group_status_get(g, &st);
    return st.term;
}

/* Which honest member leads (0 A, 1 B), waiting for one. */
static int leader_index(world *w)
{
    int64_t until = mk_mono_ms() + ms(w, 10000);
    for (;;) {
        mk_group_status st;
        mk_group_status_get(w->ga, &st);
        if (st.is_leader)
            return 0;
        mk_group_status_get(w->gb, &st);
        if (st.is_leader)
            return 1;
        if (mk_mono_ms() > until)
            fail_msg("no honest leader");
        spin(w, 10);
    }
}

/* Bytes the process holds on its heap now. */
static size_t live_bytes(void)
{
#ifdef HAVE_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

/* ---- the world -------------------------------------------------------------- */

static mk_node *node_new(world *w, mk_keypair *k)
{
    return tu_node_new(&w->loop, k, true, w->a, &w->ka);
}

static bool all_know(world *w)
{
    return tu_knows(w->a, &w->kb.pub) && tu_knows(w->a, &w->kr.pub) &&
           tu_knows(w->b, &w->ka.pub) && tu_knows(w->b, &w->kr.pub) &&
           tu_knows(w->r, &w->ka.pub) && tu_knows(w->r, &w->kb.pub);
}

static mk_group *join(world *w, mk_node *n, struct mk_fsm *fsm,
                      const char *sub)
{
    const mk_peer_id voters[3] = {w->ka.pub, w->kb.pub, w->kr.pub};
    char data[300], err[MK_ERRMSG_SIZE];
    snprintf(data, sizeof data, "%s/%s", w->dir, sub);
    mk_group_config gc = {
        .node = n,
        .fsm = fsm,
        .voters = voters,
        .n_voters = 3,
        .data_dir = data,
        .params = {.election_timeout_ms = (uint32_t)ms(w, 300),
                   .heartbeat_ms = (uint32_t)ms(w, 30)},
    };
    mk_id_from_str(&gc.root, "rogue-voter-test");
    mk_group_id_of(&gc, &w->gid);
    mk_group *g;
    if (mk_group_open(&gc, &g, err) != 0)
        fail_msg("mk_group_open: %s", err);
    return g;
}

static int64_t counter_of(struct mk_fsm *fsm)
{
    mk_buf q;
    mk_buf_init(&q);
    assert_int_equal(fsm->query(fsm, NULL, 0, &q), 0);
    char text[32];
    snprintf(text, sizeof text, "%.*s", (int)q.len, (const char *)q.data);
    mk_buf_free(&q);
    return atoll(text);
}

static void rogue_voter_is_contained(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    the_world = w;
    const char *tf = getenv("TIME_FACTOR");
    w->tf = tf && atof(tf) > 1.0 ? atof(tf) : 1.0;
    snprintf(w->dir, sizeof w->dir, "/tmp/mk-rogue-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    uv_timer_init(&w->loop, &w->pulse);
    uv_timer_start(&w->pulse, on_pulse, 5, 5);
    assert_int_equal(mk_keypair_generate(&w->ka), 0);
    assert_int_equal(mk_keypair_generate(&w->kb), 0);
    assert_int_equal(mk_keypair_generate(&w->kr), 0);
    w->id_a = mk__raft_id_of(&w->ka.pub);
    w->id_b = mk__raft_id_of(&w->kb.pub);
    w->id_r = mk__raft_id_of(&w->kr.pub);
    w->fsm_a = mk_fsm_test_new("counter");
    w->fsm_b = mk_fsm_test_new("counter");

    w->a = node_new(w, &w->ka);
    w->b = node_new(w, &w->kb);
    w->r = node_new(w, &w->kr);
    assert_int_equal(mk_transport_serve(mk_node_transport(w->r),
                                        MK_ALPN_GROUPS, on_hole_accept, w),
                     0);
    int64_t end = mk_mono_ms() + ms(w, 15000);
    while (mk_mono_ms() < end && !all_know(w))
        spin(w, 20);
    assert_true(all_know(w));

    w->ga = join(w, w->a, w->fsm_a, "a");
    w->gb = join(w, w->b, w->fsm_b, "b");
    assert_int_equal(mk_node_add_group(w->r, &w->gid), 1);

    uv_timer_init(&w->loop, &w->driver);
    w->driver.data = w;
    w->driving = true;
    uv_timer_start(&w->driver, on_drive, 10, 10);
    expect_progress(w, 3, "before the attack");

    const mk_peer_id *honest[2] = {&w->ka.pub, &w->kb.pub};
    mk_buf f;
    mk_buf_init(&f);

    /* An empty frame, then a frame of a kind that does not exist. */
    attack_once(w, honest[0], &f, "empty frame");
    mk_put_u8(&f, 7);
    mk_put_varint(&f, 1);
    attack_once(w, honest[1], &f, "unknown frame kind");

    /* An AppendEntries cut off before its entry count. */
    uint64_t t = term_of(w->ga);
    mk_buf_reset(&f);
    put_append_head(&f, t);
    attack_once(w, honest[0], &f, "truncated AppendEntries");

    /* One entry of 64 bytes announced, 8 present. */
    mk_buf_reset(&f);
    put_append_head(&f, t);
    mk_put_varint(&f, 1);
    mk_put_varint(&f, t);
    mk_put_u8(&f, RAFT_COMMAND);
    mk_put_varint(&f, 64);
    mk_put_raw(&f, "12345678", 8);
    attack_once(w, honest[1], &f, "AppendEntries short of its payload");

    /* A first piece announcing one byte over 1 GiB. */
    mk_buf_reset(&f);
    mk_put_u8(&f, 1);
    mk_put_varint(&f, ((uint64_t)1 << 30) + 1);
    mk_put_raw(&f, "abcdefgh", 8);
    attack_once(w, honest[0], &f, "first piece over 1 GiB");

    /* A next piece with no first. */
    mk_buf_reset(&f);
    mk_put_u8(&f, 2);
    mk_put_raw(&f, "abcdefgh", 8);
    attack_once(w, honest[1], &f, "next piece without a first");

    /* A first piece announcing 10 MiB, 100 bytes of it, then silence. The
     * member must not reserve the 10 MiB: its buffer grows with what
     * arrives (it starts at 1 MiB). It keeps the link (the frame was
     * whole; a slow message is not a violation) and keeps committing. */
    {
        attack x;
        attack_open(w, &x, honest[0]);
        spin(w, ms(w, 200));
        size_t before = live_bytes();
        mk_buf_reset(&f);
        mk_put_u8(&f, 1);
        mk_put_varint(&f, 10u << 20);
        for (int i = 0; i < 100; i++)
            mk_put_u8(&f, (uint8_t)i);
        attack_send(&x, &f);
        spin(w, ms(w, 300));
        size_t after = live_bytes();
        long long grew = (long long)after - (long long)before;
        print_message("heap after a 10 MiB first piece: %+lld bytes\n", grew);
        assert_true(grew < (long long)(4u << 20));
        expect_progress(w, 4, "while a 10 MiB message waits");
        assert_false(x.closed);
        /* A whole message in the middle of that one. */
        mk_buf_reset(&f);
        mk_put_u8(&f, 0);
        mk_put_u8(&f, RAFT_IO_TIMEOUT_NOW);
        mk_put_varint(&f, 1);
        mk_put_varint(&f, 1);
        mk_put_varint(&f, 1);
        attack_send(&x, &f);
        expect_violation(w, &x, "whole frame inside a message");
        expect_progress(w, 2, "after the 10 MiB piece");
    }

    /* A RequestVote from R's link naming B as the candidate. */
    mk_buf_reset(&f);
    struct raft_message rv = {.type = RAFT_IO_REQUEST_VOTE};
    rv.request_vote.term = term_of(w->ga) + 1;
    rv.request_vote.candidate_id = w->id_b;
    rv.request_vote.last_log_index = 1u << 20;
    rv.request_vote.last_log_term = term_of(w->ga) + 1;
    rv.request_vote.disrupt_leader = true;
    put_message(&f, &rv);
    attack_once(w, honest[0], &f, "RequestVote for another voter");

    /* A well-formed AppendEntries with a higher term, to the leader. It
     * is R's to send, so it is taken, as R's: the target follows R, answers
     * R with a rejection (R's log does not match), and the honest pair
     * elect again. */
    {
        int target = leader_index(w);
        mk_group *tg = target ? w->gb : w->ga;
        uint64_t high = term_of(tg) + 10;
        int results = w->ae_results;
        int64_t until;
        attack x;
        attack_open(w, &x, honest[target]);
        mk_buf_reset(&f);
        struct raft_message ae = {.type = RAFT_IO_APPEND_ENTRIES};
        ae.append_entries.term = high;
        ae.append_entries.prev_log_index = 1u << 20;
        ae.append_entries.prev_log_term = high;
        ae.append_entries.leader_commit = 1u << 20;
        put_message(&f, &ae);
        attack_send(&x, &f);
        until = mk_mono_ms() + ms(w, 10000);
        while (mk_mono_ms() < until &&
               !(w->ae_results > results && w->last_result_term >= high &&
                 mk_id_eq(&w->last_result_from, honest[target])))
            spin(w, 5);
        assert_true(term_of(tg) >= high);
        assert_true(w->r_led[target]);
        assert_true(w->ae_results > results);
        assert_true(mk_id_eq(&w->last_result_from, honest[target]));
        assert_true(w->last_result_rejected);
        assert_false(x.closed);
        mk_link_close(x.link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
        assert_true(spin_until(w, &x.closed, ms(w, 5000)));
        expect_progress(w, 4, "after R's higher term");
    }

    /* An AppendEntries, then an InstallSnapshot, in the very term the
     * target leads: a second leader in one term, which libraft takes for
     * impossible (it used to overwrite its leader state and crash). */
    for (int i = 0; i < 2; i++) {
        int target = leader_index(w);
        mk_group *tg = target ? w->gb : w->ga;
        uint64_t now = term_of(tg);
        struct raft_message m = {.type = i ? RAFT_IO_INSTALL_SNAPSHOT
                                           : RAFT_IO_APPEND_ENTRIES};
        if (i) {
            m.install_snapshot.term = now;
            m.install_snapshot.last_index = 1u << 20;
            m.install_snapshot.last_term = now;
            m.install_snapshot.conf_index = 1;
        } else {
            m.append_entries.term = now;
            m.append_entries.prev_log_index = 1u << 20;
            m.append_entries.prev_log_term = now;
        }
        mk_buf_reset(&f);
        put_message(&f, &m);
        attack x;
        attack_open(w, &x, honest[target]);
        if (term_of(tg) != now || leader_index(w) != target) {
            i--; /* an election in between: aim again */
            mk_link_close(x.link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
            assert_true(spin_until(w, &x.closed, ms(w, 5000)));
            continue;
        }
        attack_send(&x, &f);
        int64_t until = mk_mono_ms() + ms(w, 10000);
        while (!x.closed && term_of(tg) == now && mk_mono_ms() < until)
            spin(w, 5);
        if (!x.closed && term_of(tg) != now) {
            i--; /* the term moved before it arrived: aim again */
            mk_link_close(x.link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
            assert_true(spin_until(w, &x.closed, ms(w, 5000)));
            continue;
        }
        expect_violation(w, &x, i ? "InstallSnapshot in the leader's term"
                                  : "AppendEntries in the leader's term");
        expect_progress(w, 4, "after a second leader's message");
    }
    mk_buf_free(&f);

    /* Everything submitted commits, once, on both members. */
    w->driving = false;
    end = mk_mono_ms() + ms(w, 60000);
    while (w->in_flight > 0 && mk_mono_ms() < end)
        spin(w, 10);
    assert_int_equal(w->in_flight, 0);
    if (w->failed)
        fail_msg("%d commands failed, the last with %d", w->failed,
                 w->last_failure);
    assert_int_equal(w->ok, w->submitted);
    end = mk_mono_ms() + ms(w, 10000);
    while (mk_mono_ms() < end && (counter_of(w->fsm_a) != w->submitted ||
                                  counter_of(w->fsm_b) != w->submitted))
        spin(w, 10);
    assert_int_equal(counter_of(w->fsm_a), w->submitted);
    assert_int_equal(counter_of(w->fsm_b), w->submitted);
    assert_int_equal(w->foreign_leader, 0);
    print_message("%d commands committed through the attack\n", w->ok);

    uv_timer_stop(&w->driver);
    uv_close((uv_handle_t *)&w->driver, NULL);
    mk_group_close(w->ga, NULL, NULL);
    mk_group_close(w->gb, NULL, NULL);
    w->ga = w->gb = NULL;
    spin(w, 300);
    mk_node_close(w->r, NULL, NULL);
    mk_node_close(w->b, NULL, NULL);
    mk_node_close(w->a, NULL, NULL);
    spin(w, 700);
    uv_close((uv_handle_t *)&w->pulse, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    mk_fsm_test_free(w->fsm_a);
    mk_fsm_test_free(w->fsm_b);
    tu_rm_tree(w->dir);
    the_world = NULL;
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rogue_voter_is_contained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
