/* The door two cores wide (group.c, door_defer/door_drain; issue 13).
 *
 * A requester's new command that needs the machine's admit() waits until
 * the loop's end; there the burst goes to a helper thread (prepare(),
 * newest first) while the loop checks it oldest first with admit(). None
 * of that may show to a requester, and the loop must still have had
 * admit() say yes before anything is proposed. So, with two nodes in one
 * process on loopback (A, the group's one voter; C, a requester through
 * mk_group_client) and a machine whose prepare() and admit() are one check
 * recorded in a shared memo, as a module's are:
 *   - every command is admitted on the loop thread, before apply() sees
 *     it, and never off it;
 *   - a burst is applied once per command, in the session's order;
 *   - refusals carry admit's code (negative as is, positive as
 *     MK_EINVAL), apply() never sees them, the session goes on;
 *   - the helper really works beside the loop: the loop's admit() of a
 *     burst's first command waits (bounded) until prepare() has run on a
 *     later one off the loop thread, which it can only do if the burst
 *     was handed to the helper before the loop began checking;
 *   - a member's own mk_group_execute still refuses at once;
 *   - closing the group with commands waiting at the door, or the client
 *     with its burst half answered, leaks nothing (ASan). */
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group.h"
#include "mosaik/group_client.h"
#include "mosaik/group_internal.h"
#include "mosaik/key.h"
#include "mosaik/node.h"
#include "testutil.h"

#define BURST 16
#define MAX_CMDS 64
/* How long the held admit() waits for the helper: far beyond what a
 * thread needs to start one check, short enough that a door without a
 * helper fails the test instead of hanging it. Scaled by TIME_FACTOR. */
#define HOLD_MS 5000

/* Commands are two bytes: a kind and an index (the index is the slot of
 * its answer). 'o' is ordinary; admit refuses 'x' with MK_ENOT_ALLOWED
 * and answers 5 for 'p' (a positive code: MK_EINVAL to the requester). */

typedef struct door_fsm {
    struct mk_fsm fsm;
    pthread_t loop_thread;
    double tf;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    /* The memo prepare() and admit() share, keyed by the whole command. */
    bool memo_set[1u << 16];
    int memo_rc[1u << 16];
    /* Per index, under lock. */
    int admits[MAX_CMDS];      /* admit() on the loop thread */
    int admit_hits[MAX_CMDS];  /* of which the memo answered */
    bool admitted[MAX_CMDS];   /* the loop's admit() said yes */
    int prepares[MAX_CMDS];    /* prepare() off the loop thread */
    int admit_order[4 * MAX_CMDS]; /* indices, as the loop admitted them */
    int n_admit_order;
    int admits_off_loop;       /* must stay 0 */
    int prepares_on_loop;      /* must stay 0 */
    /* The held check: admit() of index `hold` on the loop waits until
     * prepare() has run off the loop on an index in (hold, hold_end). */
    int hold, hold_end;
    bool helped;               /* that prepare() happened */
    bool hold_waited, hold_released;
    /* Loop only. */
    int applied[MAX_CMDS];
    int n_applied;
    int unchecked_applies;     /* apply() of what the loop did not admit */
} door_fsm;

static int verdict(const uint8_t *cmd)
{
    switch (cmd[0]) {
    case 'x':
        return MK_ENOT_ALLOWED;
    case 'p':
        return 5;
    default:
        return 0;
    }
}

/* The check itself, memoised; under d->lock. */
static int check(door_fsm *d, const uint8_t *cmd, bool *hit)
{
    unsigned key = (unsigned)cmd[0] << 8 | cmd[1];
    *hit = d->memo_set[key];
    if (!*hit) {
        d->memo_rc[key] = verdict(cmd);
        d->memo_set[key] = true;
    }
    return d->memo_rc[key];
}

static bool on_loop(const door_fsm *d)
{
    return pthread_equal(pthread_self(), d->loop_thread);
}

static void door_prepare(struct mk_fsm *f, const uint8_t *cmd, size_t len)
{
    door_fsm *d = f->data;
    if (len != 2 || cmd[1] >= MAX_CMDS)
        return;
    int i = cmd[1];
    bool hit;
    pthread_mutex_lock(&d->lock);
    (void)check(d, cmd, &hit); /* in the memo before anyone hears of it */
    if (on_loop(d)) {
        d->prepares_on_loop++;
    } else {
        d->prepares[i]++;
        if (d->hold >= 0 && i > d->hold && i < d->hold_end) {
            d->helped = true;
            pthread_cond_broadcast(&d->changed);
        }
    }
    pthread_mutex_unlock(&d->lock);
}

static int door_admit(struct mk_fsm *f, const uint8_t *cmd, size_t len)
{
    door_fsm *d = f->data;
    if (len != 2 || cmd[1] >= MAX_CMDS)
        return MK_EDECODE;
    int i = cmd[1];
    pthread_mutex_lock(&d->lock);
    if (!on_loop(d)) {
        d->admits_off_loop++;
        pthread_mutex_unlock(&d->lock);
        return verdict(cmd);
    }
    if (i == d->hold) {
        /* Bounded: with no helper this waits for nothing. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long wait = (long)(HOLD_MS * d->tf);
        until.tv_sec += wait / 1000;
        until.tv_nsec += (wait % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        d->hold_waited = true;
        while (!d->helped &&
               pthread_cond_timedwait(&d->changed, &d->lock, &until) == 0)
            ;
        d->hold_released = d->helped;
    }
    bool hit;
    int rc = check(d, cmd, &hit);
    d->admits[i]++;
    if (d->n_admit_order < 4 * MAX_CMDS)
        d->admit_order[d->n_admit_order++] = i;
    if (hit)
        d->admit_hits[i]++;
    if (rc == 0)
        d->admitted[i] = true;
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int door_apply(struct mk_fsm *f, const uint8_t *cmd, size_t len,
                      mk_buf *result)
{
    door_fsm *d = f->data;
    if (len != 2 || cmd[1] >= MAX_CMDS || verdict(cmd) != 0)
        return MK_EDECODE; /* what admit refuses, apply refuses too */
    pthread_mutex_lock(&d->lock);
    if (!d->admitted[cmd[1]])
        d->unchecked_applies++;
    pthread_mutex_unlock(&d->lock);
    if (d->n_applied < MAX_CMDS)
        d->applied[d->n_applied++] = cmd[1];
    mk_put_u8(result, cmd[1]);
    return result->err;
}

static int door_snapshot(struct mk_fsm *f, mk_buf *out)
{
    door_fsm *d = f->data;
    mk_put_u32be(out, (uint32_t)d->n_applied);
    for (int i = 0; i < d->n_applied; i++)
        mk_put_u8(out, (uint8_t)d->applied[i]);
    return out->err;
}

static int door_restore(struct mk_fsm *f, const uint8_t *snap, size_t len)
{
    door_fsm *d = f->data;
    mk_reader r;
    mk_reader_init(&r, snap, len);
    uint32_t n = mk_get_u32be(&r);
    if (n > MAX_CMDS)
        return MK_EDECODE;
    for (uint32_t i = 0; i < n; i++)
        d->applied[i] = mk_get_u8(&r);
    if (mk_reader_done(&r) != 0)
        return MK_EDECODE;
    d->n_applied = (int)n;
    return 0;
}

static door_fsm *door_fsm_new(double tf)
{
    door_fsm *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->loop_thread = pthread_self();
    d->tf = tf;
    d->hold = -1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->changed, NULL);
    d->fsm.version = MK_FSM_VERSION;
    d->fsm.data = d;
    mk_id_from_str(&d->fsm.signature, "door-test");
    d->fsm.apply = door_apply;
    d->fsm.snapshot = door_snapshot;
    d->fsm.restore = door_restore;
    d->fsm.admit = door_admit;
    d->fsm.prepare = door_prepare;
    return d;
}

static void door_fsm_free(door_fsm *d)
{
    pthread_cond_destroy(&d->changed);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static void hold_check(door_fsm *d, int first, int end)
{
    pthread_mutex_lock(&d->lock);
    d->hold = first;
    d->hold_end = end;
    pthread_mutex_unlock(&d->lock);
}

/* ---- the world -------------------------------------------------------- */

typedef struct answer {
    bool done;
    int status;
    int result; /* the index applied, or -1 */
} answer;

typedef struct world {
    uv_loop_t loop;
    uv_timer_t pulse;
    uv_check_t at_door; /* acts once commands wait at the door */
    void (*door_act)(struct world *w);
    int door_seen;      /* g->door_n when it acted */
    double tf;
    char dir[256];
    mk_keypair ka, kc;
    mk_node *a, *c;
    door_fsm *fsm;
    mk_group *g;
    mk_group_client *cli;
    answer answers[MAX_CMDS];
    int n_answers;
    bool closed;
} world;

typedef struct slot {
    world *w;
    int i;
} slot;

static slot slots[MAX_CMDS];

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static int ms(const world *w, int base)
{
    return (int)(base * w->tf);
}

static mk_node *node_new(world *w, mk_keypair *k, bool listen)
{
    return tu_node_new(&w->loop, k, listen, w->a, &w->ka);
}

static void on_at_door(uv_check_t *h)
{
    world *w = h->data;
    if (!w->g || w->g->door_n == 0)
        return;
    w->door_seen = (int)w->g->door_n;
    uv_check_stop(h);
    w->door_act(w);
}

static world *world_new(void)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    const char *tf = getenv("TIME_FACTOR");
    w->tf = tf && atof(tf) > 1.0 ? atof(tf) : 1.0;
    snprintf(w->dir, sizeof w->dir, "/tmp/mk-door-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    uv_timer_init(&w->loop, &w->pulse);
    uv_timer_start(&w->pulse, on_pulse, 5, 5);
    uv_check_init(&w->loop, &w->at_door);
    w->at_door.data = w;
    assert_int_equal(mk_keypair_generate(&w->ka), 0);
    assert_int_equal(mk_keypair_generate(&w->kc), 0);
    w->fsm = door_fsm_new(w->tf);
    w->a = node_new(w, &w->ka, true);
    w->c = node_new(w, &w->kc, false);

    char data[300], err[MK_ERRMSG_SIZE];
    snprintf(data, sizeof data, "%s/a", w->dir);
    mk_group_config gc = {
        .node = w->a,
        .fsm = &w->fsm->fsm,
        .voters = &w->ka.pub,
        .n_voters = 1,
        .data_dir = data,
        .params = {.election_timeout_ms = 300, .heartbeat_ms = 30},
    };
    mk_id_from_str(&gc.root, "door-test");
    mk_id gid;
    mk_group_id_of(&gc, &gid);
    if (mk_group_open(&gc, &w->g, err) != 0)
        fail_msg("mk_group_open: %s", err);
    /* The door has its helper, or test (4) below means nothing. */
    assert_non_null(w->g->door_help);
    int64_t end = mk_mono_ms() + ms(w, 10000);
    while (mk_mono_ms() < end && !tu_knows(w->c, &w->ka.pub))
        tu_spin(&w->loop, 20);
    assert_true(tu_knows(w->c, &w->ka.pub));
    assert_int_equal(mk_group_client_open(w->c, &gid, &w->cli), 0);
    return w;
}

static void on_closed(void *data)
{
    world *w = data;
    w->closed = true;
}

static void close_group(world *w)
{
    mk_group *g = w->g;
    w->g = NULL;
    mk_group_close(g, on_closed, w);
}

static void world_free(world *w)
{
    if (w->cli)
        mk_group_client_close(w->cli, NULL, NULL);
    if (w->g)
        close_group(w);
    mk_node_close(w->c, NULL, NULL);
    mk_node_close(w->a, NULL, NULL);
    tu_spin(&w->loop, 700);
    uv_close((uv_handle_t *)&w->pulse, NULL);
    uv_close((uv_handle_t *)&w->at_door, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    assert_true(w->closed);
    door_fsm_free(w->fsm);
    tu_rm_tree(w->dir);
    free(w);
}

static void on_answer(int status, uint64_t applied, const uint8_t *res,
                      size_t len, void *data)
{
    (void)applied;
    slot *s = data;
    answer *a = &s->w->answers[s->i];
    assert_false(a->done); /* one answer per command */
    a->done = true;
    a->status = status;
    a->result = status == 0 && len == 1 ? res[0] : -1;
    s->w->n_answers++;
}

static void send_cmd(world *w, char kind, int i)
{
    uint8_t cmd[2] = {(uint8_t)kind, (uint8_t)i};
    slots[i] = (slot){w, i};
    assert_int_equal(mk_group_client_execute(w->cli, cmd, 2, ms(w, 30000),
                                             on_answer, &slots[i]),
                     0);
}

static void wait_answers(world *w, int n)
{
    int64_t end = mk_mono_ms() + ms(w, 30000);
    while (mk_mono_ms() < end && w->n_answers < n)
        tu_spin(&w->loop, 10);
    assert_int_equal(w->n_answers, n);
}

/* One command through, so the link is up and A leads: what follows
 * arrives as one burst. */
static void warm_up(world *w)
{
    send_cmd(w, 'o', 0);
    wait_answers(w, 1);
    assert_int_equal(w->answers[0].status, 0);
}

/* Every command the loop admitted once, none admitted off the loop, and
 * prepare() never ran on the loop. */
static void assert_checked_on_loop(door_fsm *d, int n)
{
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < n; i++)
        assert_true(d->admits[i] >= 1);
    assert_int_equal(d->admits_off_loop, 0);
    assert_int_equal(d->prepares_on_loop, 0);
    pthread_mutex_unlock(&d->lock);
    assert_int_equal(d->unchecked_applies, 0);
}

/* (1), (2), (4): a pipelined burst, checked on both cores, applied once
 * each in order, every one admitted by the loop before it was proposed. */
static void burst_in_order(void **state)
{
    (void)state;
    world *w = world_new();
    door_fsm *d = w->fsm;
    warm_up(w);
    hold_check(d, 1, 1 + BURST);
    for (int i = 1; i <= BURST; i++)
        send_cmd(w, 'o', i);
    wait_answers(w, 1 + BURST);

    for (int i = 0; i <= BURST; i++) {
        assert_int_equal(w->answers[i].status, 0);
        assert_int_equal(w->answers[i].result, i);
    }
    assert_int_equal(d->n_applied, 1 + BURST);
    for (int i = 0; i <= BURST; i++)
        assert_int_equal(d->applied[i], i);
    assert_checked_on_loop(d, 1 + BURST);

    pthread_mutex_lock(&d->lock);
    /* The helper checked a later command while the loop was held in the
     * first one's admit(): the burst was the helper's before the loop
     * began, and the loop went on (it finished the burst) after. */
    assert_true(d->hold_waited);
    assert_true(d->hold_released);
    /* What the helper reached first, the loop's admit() found in the
     * memo; the first command was the loop's alone. */
    int hits = 0, helped = 0;
    for (int i = 2; i <= BURST; i++) {
        hits += d->admit_hits[i];
        helped += d->prepares[i] > 0;
    }
    assert_true(helped >= 1);
    assert_true(hits >= 1);
    assert_int_equal(d->admit_hits[1], 0);
    /* The loop checked the burst in its order of arrival. */
    assert_int_equal(d->n_admit_order, 1 + BURST);
    for (int i = 0; i <= BURST; i++)
        assert_int_equal(d->admit_order[i], i);
    pthread_mutex_unlock(&d->lock);
    world_free(w);
}

/* (3): refusals, in a burst (last, where no later command of the session
 * waits on them) and one at a time, keep admit's code; apply() never sees
 * them; the session goes on. */
static void refusals(void **state)
{
    (void)state;
    world *w = world_new();
    door_fsm *d = w->fsm;
    warm_up(w);
    hold_check(d, 1, 6);
    const char burst[] = "oooxp"; /* indices 1..5 */
    for (int i = 1; i <= 5; i++)
        send_cmd(w, burst[i - 1], i);
    wait_answers(w, 6);
    const char after[] = "xopo"; /* indices 6..9, one at a time */
    for (int i = 6; i <= 9; i++) {
        send_cmd(w, after[i - 6], i);
        wait_answers(w, i + 1);
    }

    const int want[] = {0, 0, 0, 0, MK_ENOT_ALLOWED, MK_EINVAL,
                        MK_ENOT_ALLOWED, 0, MK_EINVAL, 0};
    for (int i = 0; i <= 9; i++) {
        assert_int_equal(w->answers[i].status, want[i]);
        assert_int_equal(w->answers[i].result, want[i] == 0 ? i : -1);
    }
    const int applied[] = {0, 1, 2, 3, 7, 9};
    assert_int_equal(d->n_applied, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(d->applied[i], applied[i]);
    assert_checked_on_loop(d, 10);
    pthread_mutex_lock(&d->lock);
    assert_true(d->hold_released); /* the refusals went by the helper too */
    pthread_mutex_unlock(&d->lock);
    world_free(w);
}

/* A refusal inside a pipelined burst: the leader holds the command after
 * it (its predecessor never reaches the log), so the client sends that
 * one again with the ack that settles the gap as soon as everything
 * before it is answered, instead of leaving it to its attempt's expiry.
 * Counted, not timed: exactly one such resend per gap. */
static void refusal_mid_burst(void **state)
{
    (void)state;
    world *w = world_new();
    door_fsm *d = w->fsm;
    warm_up(w);
    const char burst[] = "oxoopo"; /* indices 1..6 */
    for (int i = 1; i <= 6; i++)
        send_cmd(w, burst[i - 1], i);
    wait_answers(w, 7);
    const int want[] = {0, 0, MK_ENOT_ALLOWED, 0, 0, MK_EINVAL, 0};
    for (int i = 0; i <= 6; i++) {
        assert_int_equal(w->answers[i].status, want[i]);
        assert_int_equal(w->answers[i].result, want[i] == 0 ? i : -1);
    }
    const int applied[] = {0, 1, 3, 4, 6};
    assert_int_equal(d->n_applied, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(d->applied[i], applied[i]);
    assert_int_equal(mk__group_client_gap_resends(w->cli), 2);
    world_free(w);
}

/* (5): a member's own handle is checked at once, on the loop. */
static void local_refuses_at_once(void **state)
{
    (void)state;
    world *w = world_new();
    door_fsm *d = w->fsm;
    warm_up(w);
    uint8_t bad[2] = {'x', 9}, odd[2] = {'p', 10}, good[2] = {'o', 11};
    slots[9] = (slot){w, 9};
    slots[10] = (slot){w, 10};
    slots[11] = (slot){w, 11};
    assert_int_equal(mk_group_execute(w->g, bad, 2, 0, on_answer, &slots[9]),
                     MK_ENOT_ALLOWED);
    assert_int_equal(mk_group_execute(w->g, odd, 2, 0, on_answer,
                                      &slots[10]),
                     MK_EINVAL);
    pthread_mutex_lock(&d->lock);
    assert_int_equal(d->admits[9], 1);
    assert_int_equal(d->admits[10], 1);
    pthread_mutex_unlock(&d->lock);
    assert_false(w->answers[9].done); /* refused: no callback */
    assert_int_equal(mk_group_execute(w->g, good, 2, ms(w, 10000), on_answer,
                                      &slots[11]),
                     0);
    int64_t end = mk_mono_ms() + ms(w, 10000);
    while (mk_mono_ms() < end && !w->answers[11].done)
        tu_spin(&w->loop, 10);
    assert_true(w->answers[11].done);
    assert_int_equal(w->answers[11].status, 0);
    assert_int_equal(w->answers[11].result, 11);
    assert_int_equal(d->n_applied, 2);
    assert_int_equal(d->applied[1], 11);
    assert_int_equal(d->unchecked_applies, 0);
    pthread_mutex_lock(&d->lock);
    assert_int_equal(d->admits_off_loop, 0);
    pthread_mutex_unlock(&d->lock);
    world_free(w);
}

/* (6) The group closes with a burst waiting at the door: nothing of it
 * is checked or applied, and what it held is freed. */
static void close_group_now(world *w)
{
    close_group(w);
}

static void close_with_door_waiting(void **state)
{
    (void)state;
    world *w = world_new();
    door_fsm *d = w->fsm;
    warm_up(w);
    w->door_act = close_group_now;
    uv_check_start(&w->at_door, on_at_door);
    for (int i = 1; i <= 4; i++)
        send_cmd(w, 'o', i);
    int64_t end = mk_mono_ms() + ms(w, 3000);
    while (mk_mono_ms() < end && !w->closed)
        tu_spin(&w->loop, 5);
    assert_true(w->closed);
    assert_int_equal(w->door_seen, 4);
    assert_int_equal(d->n_applied, 1);
    pthread_mutex_lock(&d->lock);
    for (int i = 1; i <= 4; i++)
        assert_int_equal(d->admits[i], 0);
    pthread_mutex_unlock(&d->lock);
    world_free(w); /* the client's four end cancelled */
    /* (w is gone; the answers were checked by on_answer's own asserts.) */
}

/* (6) The client goes while its burst waits at the door: the link the
 * waiting commands hold stays valid until the drain lets go of it. */
static void close_client_now(world *w)
{
    mk_group_client_close(w->cli, NULL, NULL);
    w->cli = NULL;
}

static void client_gone_at_door(void **state)
{
    (void)state;
    world *w = world_new();
    warm_up(w);
    w->door_act = close_client_now;
    uv_check_start(&w->at_door, on_at_door);
    for (int i = 1; i <= BURST; i++)
        send_cmd(w, 'o', i);
    int64_t end = mk_mono_ms() + ms(w, 3000);
    while (mk_mono_ms() < end && w->cli)
        tu_spin(&w->loop, 5);
    assert_null(w->cli);
    assert_int_equal(w->door_seen, BURST);
    assert_int_equal(w->n_answers, 1 + BURST); /* cancelled, each once */
    for (int i = 1; i <= BURST; i++)
        assert_int_equal(w->answers[i].status, MK_ECANCELED);
    tu_spin(&w->loop, 200); /* the group drains and answers a dead link */
    assert_checked_on_loop(w->fsm, 1);
    world_free(w);
}

/* (6) Both close with a burst half answered. */
static void close_mid_burst(void **state)
{
    (void)state;
    world *w = world_new();
    warm_up(w);
    for (int i = 1; i <= BURST; i++)
        send_cmd(w, 'o', i);
    int64_t end = mk_mono_ms() + ms(w, 10000);
    while (mk_mono_ms() < end && w->n_answers < 2)
        tu_spin(&w->loop, 1);
    assert_true(w->n_answers >= 2);
    close_group(w);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_in_order),
        cmocka_unit_test(refusals),
        cmocka_unit_test(refusal_mid_burst),
        cmocka_unit_test(local_refuses_at_once),
        cmocka_unit_test(close_with_door_waiting),
        cmocka_unit_test(client_gone_at_door),
        cmocka_unit_test(close_mid_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
