/* The commit feed a member serves (MK_ALPN_GROUP_FEED): what replicas
 * follow.
 *
 * A member keeps the most recently applied user commands in a ring
 * (bounded by count and bytes). A replica subscribes with the number of
 * commands it has applied, `from`; the member answers WELCOME, then sends
 * CMD {n, command} for every n from from+1 it still holds, or, when
 * from+1 is older than the ring, SNAPSHOT {applied, state} and the commands
 * after it; then every command as it is applied. A replica thus goes
 * through exactly the members' sequence of states (a snapshot jumps over a
 * stretch of it, never away from it).
 *
 * Nothing here buffers without bound: a subscriber is fed only while its
 * link holds less than SUB_QUEUE_MAX unsent bytes and all of them
 * together less than FEED_BUDGET (one with nothing queued always gets a
 * frame, so a newcomer is never shut out), and resumes from the ring (or
 * a snapshot, if the ring moved past it) when the link drains. A
 * snapshot is one frame of the whole state, so snapshots still queued
 * count against SNAP_BUDGET too, and one past it waits for another to
 * drain. Without the budgets every subscriber that asked for history and
 * never read held 4 MiB of the member, and as many snapshots: a few
 * hundred identities, which cost nothing to make, held gigabytes.
 *
 * The total is kept from what each subscriber's link held when last
 * looked at (q_seen), so bytes that left since are counted until that
 * subscriber is pumped again or drains: an overestimate, never an
 * underestimate.
 *
 * The member also tells its subscribers whom it believes leads (LEADER).
 * A follower applies a command only once the leader's next message says
 * it is committed, up to a heartbeat after the leader applied it; a
 * replica that follows the leader does not inherit that lag, so replicas
 * use this to move there (replica.c).
 *
 * A quiet group sends nothing, and a member that stops (SIGSTOP, a
 * wedged disk, a cut cable with the connection still up) sends nothing
 * either; its kernel may even go on acknowledging. So a subscription on
 * which nothing went for MK__FEED_KEEPALIVE_MS gets LEADER again (a
 * repeat changes nothing for the replica), and a replica that hears
 * nothing for MK__FEED_SILENCE_MS goes elsewhere. The other way round, a
 * subscriber that stops reading (stopped, or never meant to read) takes
 * nothing from the link for STUCK_MS while we keep offering: it is
 * closed, and gives back the up to SUB_QUEUE_MAX bytes queued for it.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_internal.h"

#define RING_MAX_ITEMS 8192
#define RING_MAX_BYTES (16u << 20)
#define SUB_QUEUE_MAX (4u << 20)
#define FEED_BUDGET (64u << 20)
#define SNAP_BUDGET (64u << 20)
#define STUCK_MS 30000

struct mk__feed_sub {
    mk__feed_sub *prev, *next;
    mk__feed *f; /* NULL once detached */
    mk_link *link;
    uint64_t next_n; /* the next command number to send */
    int64_t sent_mono; /* when a frame was last queued on the link */
    size_t snap_len;   /* a snapshot of this size is queued, not drained */
    size_t q_seen;     /* what its link held when last looked at */
    bool waiting;      /* stopped by a budget, not by its own queue */
    mk__bond bond;
    bool bonded;
};

static void pump(mk__feed_sub *s);

/* Brings the total up to date with what `s`'s link holds now (`q`). */
static void note_queued(mk__feed *f, mk__feed_sub *s, size_t q)
{
    f->q_total = f->q_total - s->q_seen + q;
    s->q_seen = q;
}

/* `s`'s link drained, or `s` is gone (q 0): what it held leaves the
 * budgets, and the subscribers those stopped try again. */
static void released(mk__feed *f, mk__feed_sub *s)
{
    bool freed = s->q_seen > 0 || s->snap_len > 0;
    note_queued(f, s, 0);
    f->snap_bytes -= s->snap_len;
    s->snap_len = 0;
    if (!freed)
        return;
    for (mk__feed_sub *w = f->subs, *next; w; w = next) {
        next = w->next;
        if (w->waiting && w != s)
            pump(w);
    }
}

void mk__feed_init(mk__feed *f, mk_group *g)
{
    memset(f, 0, sizeof *f);
    f->g = g;
    f->first = 1;
}

static void ring_clear(mk__feed *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->ring[(f->head + i) % f->cap].cmd);
    f->head = f->n = f->bytes = 0;
}

static void ring_drop_oldest(mk__feed *f)
{
    struct mk__feed_item *it = &f->ring[f->head];
    f->bytes -= it->len;
    free(it->cmd);
    f->head = (f->head + 1) % f->cap;
    f->n--;
    f->first++;
}

static void sub_detach(mk__feed_sub *s)
{
    mk__feed *f = s->f;
    if (!f)
        return;
    if (s->bonded) {
        mk__group_bond_remove(f->g, &s->bond);
        s->bonded = false;
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        f->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->f = NULL;
    f->n_subs--;
    released(f, s);
}

static int send_snapshot(mk__feed_sub *s, mk_group *g)
{
    mk_buf user, b;
    mk_buf_init(&user);
    mk_buf_init(&b);
    int rc = g->fsm->snapshot(g->fsm, &user);
    if (rc == 0 && user.err)
        rc = user.err;
    if (rc == 0) {
        mk_put_u8(&b, MK__F_SNAPSHOT);
        mk_put_varint(&b, g->gfsm.applied);
        mk_put_bytes(&b, user.data, user.len);
        rc = b.err ? b.err : mk_link_send(s->link, b.data, b.len);
        if (rc == 0) {
            s->snap_len += b.len;
            s->f->snap_bytes += b.len;
        }
    }
    mk_buf_free(&user);
    mk_buf_free(&b);
    return rc > 0 ? MK_EIO : rc;
}

static void pump(mk__feed_sub *s)
{
    mk__feed *f = s->f;
    if (!f || !s->link)
        return;
    mk_group *g = f->g;
    uint64_t applied = g->gfsm.applied;
    mk_buf b;
    mk_buf_init(&b);
    s->waiting = false;
    for (;;) {
        size_t q = mk_link_queued(s->link);
        note_queued(f, s, q);
        if (s->next_n > applied || q >= SUB_QUEUE_MAX)
            break;
        if (q > 0 && f->q_total >= FEED_BUDGET) {
            s->waiting = true;
            break;
        }
        int rc;
        if (f->n && s->next_n >= f->first && s->next_n < f->first + f->n) {
            const struct mk__feed_item *it =
                &f->ring[(f->head + (s->next_n - f->first)) % f->cap];
            mk_buf_reset(&b);
            mk_put_u8(&b, MK__F_CMD);
            mk_put_varint(&b, s->next_n);
            mk_put_bytes(&b, it->cmd, it->len);
            rc = b.err ? b.err : mk_link_send(s->link, b.data, b.len);
            s->next_n++;
        } else {
            /* Older than what we kept: the whole state instead, once the
             * snapshots already queued leave room. */
            if (f->snap_bytes >= SNAP_BUDGET) {
                s->waiting = true;
                break;
            }
            rc = send_snapshot(s, g);
            s->next_n = applied + 1;
        }
        if (rc == MK_EMSGSIZE) {
            /* The whole state does not fit a frame: say so, so the
             * replica need not ask every member in turn for ever. */
            mk_link_close(s->link, MK_CLOSE_FRAME_TOO_LARGE,
                          "state larger than a frame");
            break;
        }
        if (rc != 0) {
            mk_link_close(s->link, MK_CLOSE_CANCELLED, mk_strerror(rc));
            break;
        }
        s->sent_mono = mk_mono_ms();
    }
    mk_buf_free(&b);
}

void mk__feed_push(mk__feed *f, uint64_t applied, const uint8_t *cmd,
                   size_t len)
{
    if (!f->g)
        return; /* closed */
    if (f->n && applied != f->first + f->n)
        ring_clear(f); /* not contiguous: start over */
    if (f->n == 0)
        f->first = applied;
    while (f->n > 0 &&
           (f->n >= RING_MAX_ITEMS || f->bytes + len > RING_MAX_BYTES))
        ring_drop_oldest(f);
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        struct mk__feed_item *grown = malloc(cap * sizeof *grown);
        if (!grown) {
            ring_clear(f);
            goto fed;
        }
        for (size_t i = 0; i < f->n; i++)
            grown[i] = f->ring[(f->head + i) % f->cap];
        free(f->ring);
        f->ring = grown;
        f->head = 0;
        f->cap = cap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        ring_clear(f); /* subscribers get a snapshot instead */
        goto fed;
    }
    if (len)
        memcpy(copy, cmd, len);
    f->ring[(f->head + f->n) % f->cap] =
        (struct mk__feed_item){.cmd = copy, .len = len};
    f->n++;
    f->bytes += len;
fed:
    for (mk__feed_sub *s = f->subs, *next; s; s = next) {
        next = s->next;
        pump(s);
    }
}

static int send_leader(mk_link *link, bool has, const mk_peer_id *leader)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__F_LEADER);
    mk_put_varint(&b, has);
    if (has)
        mk_put_id(&b, leader);
    int rc = b.err ? b.err : mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
    return rc;
}

void mk__feed_leader(mk__feed *f, const mk_group_status *st)
{
    if (!f->g || (st->has_leader == f->told_has &&
                  (!st->has_leader || mk_id_eq(&st->leader, &f->told))))
        return;
    f->told_has = st->has_leader;
    f->told = st->leader;
    /* A few bytes per election, sent past the SUB_QUEUE_MAX pause: a
     * slow subscriber should learn where to go all the more. */
    for (mk__feed_sub *s = f->subs, *next; s; s = next) {
        next = s->next;
        if (s->link && send_leader(s->link, st->has_leader, &st->leader) != 0)
            mk_link_close(s->link, MK_CLOSE_CANCELLED, NULL);
        else
            s->sent_mono = mk_mono_ms();
    }
}

void mk__feed_tick(mk__feed *f, int64_t now)
{
    if (!f->g || now < f->keepalive_due)
        return;
    /* Looked at twice a period, so no subscription waits much past one. */
    f->keepalive_due = now + MK__FEED_KEEPALIVE_MS / 2;
    for (mk__feed_sub *s = f->subs, *next; s; s = next) {
        next = s->next;
        /* Bytes still waiting say enough once they go. */
        if (!s->link || now - s->sent_mono < MK__FEED_KEEPALIVE_MS ||
            mk_link_queued(s->link) > 0)
            continue;
        if (send_leader(s->link, f->told_has, &f->told) != 0)
            mk_link_close(s->link, MK_CLOSE_CANCELLED, NULL);
        else
            s->sent_mono = now;
    }
}

void mk__feed_reset(mk__feed *f)
{
    if (!f->g)
        return;
    ring_clear(f);
    f->first = f->g->gfsm.applied + 1;
    for (mk__feed_sub *s = f->subs, *next; s; s = next) {
        next = s->next;
        pump(s);
    }
}

void mk__feed_close(mk__feed *f)
{
    /* Nobody is fed any more: nothing to wait for. */
    for (mk__feed_sub *s = f->subs; s; s = s->next)
        s->snap_len = s->q_seen = 0;
    f->snap_bytes = f->q_total = 0;
    while (f->subs) {
        mk__feed_sub *s = f->subs;
        mk_link *link = s->link;
        sub_detach(s);
        if (link)
            mk_link_close(link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
        else
            free(s);
    }
    ring_clear(f);
    free(f->ring);
    f->ring = NULL;
    f->cap = 0;
    f->g = NULL;
}

size_t mk__feed_queued(const mk__feed *f)
{
    size_t n = 0;
    for (const mk__feed_sub *s = f->subs; s; s = s->next)
        if (s->link)
            n += mk_link_queued(s->link);
    return n;
}

/* ---- subscribers ----------------------------------------------------------- */

static void on_sub_frame(mk_link *link, const uint8_t *p, size_t len,
                         void *data)
{
    /* A subscriber only listens. */
    mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION, "feed is one-way");
}

static void on_sub_close(mk_link *link, uint32_t code, int status,
                         void *data)
{
    mk__feed_sub *s = data;
    sub_detach(s);
    free(s);
}

static void on_sub_drain(mk_link *link, void *data)
{
    mk__feed_sub *s = data;
    if (s->f)
        released(s->f, s);
    pump(s);
}

void mk__group_accept_feed(mk_group *g, mk_link *link, uint64_t from)
{
    mk__feed *f = &g->feed;
    mk__feed_sub *s = calloc(1, sizeof *s);
    if (!s || !f->g) {
        free(s);
        mk_link_close(link, MK_CLOSE_CANCELLED, NULL);
        return;
    }
    s->f = f;
    s->link = link;
    s->next_n = from + 1;
    s->sent_mono = mk_mono_ms(); /* WELCOME goes below */
    f->n_subs++;
    s->next = f->subs;
    if (f->subs)
        f->subs->prev = s;
    f->subs = s;
    s->bond.link = link;
    s->bond.peer = *mk_link_peer(link);
    mk__group_admit(g, &s->bond.peer, false, &s->bond.expires_ms, NULL);
    mk__group_bond_add(g, &s->bond);
    s->bonded = true;
    mk_link_set_callbacks(link, on_sub_frame, on_sub_close, s);
    mk_link_on_drain(link, on_sub_drain);
    /* A subscriber only listens, so the link is idle only when what we
     * send stops leaving: with LEADER at least every second, that is a
     * subscriber that stopped reading. */
    mk_link_set_idle_timeout(link, STUCK_MS);
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__F_WELCOME);
    mk_put_varint(&b, g->gfsm.applied);
    mk__proof_encode(&b, &g->proof);
    /* Our view now, not the one last broadcast (a loop iteration old). */
    mk_group_status st;
    mk_group_status_get(g, &st);
    if (b.err || mk_link_send(link, b.data, b.len) != 0 ||
        send_leader(link, st.has_leader, &st.leader) != 0) {
        mk_buf_free(&b);
        mk_link_close(link, MK_CLOSE_CANCELLED, NULL);
        return;
    }
    mk_buf_free(&b);
    pump(s);
}
