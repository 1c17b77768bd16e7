/* A struct raft_io around the real storage that fails safely and keeps the
 * durable watermark (group_io.h says why).
 *
 * Every request libraft makes that writes the log (append, snapshot_put)
 * gets a record of ours, forwarded to the inner io with our callback. While
 * healthy, a completion passes straight through (a failed one first trips
 * the failure). Once failed, completions are held in a FIFO and requests
 * are not forwarded at all; the FIFO is emptied when libraft closes the io.
 *
 * Holding is what keeps libraft honest: a follower reports entries stored
 * (and so lets the leader count it) only from its append callback, and a
 * leader counts its own copy the same way; with the callbacks held, nothing
 * this member did not persist is ever acknowledged.
 *
 * Delivery at close: libraft is RAFT_UNAVAILABLE by then. A follower's
 * append callback and an install's snapshot callback only release memory in
 * that state, whatever the status. A leader's append callback truncates its
 * in-memory log on a non-zero status, once per request, and the second of
 * two such truncates runs past the end of the log; given status 0 it only
 * releases the entries. So held appends are delivered with 0 (nothing reads
 * "stored" after close), and snapshots with their status or RAFT_CANCELED.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_io.h"

#define TICKS_PER_HEARTBEAT 4
#define TICK_MIN_MS 5

enum { REQ_APPEND, REQ_SNAPSHOT };

struct mk__gio_req {
    mk__gio_req *prev, *next; /* in g->reqs, or (next only) the held FIFO */
    mk__gio *g;
    int kind;
    int status;         /* the inner completion's, once it came */
    raft_index last;    /* append: index of its last entry (clamped by a
                           truncate or install issued after it) */
    raft_index snap;    /* snapshot: its index */
    bool install;       /* snapshot with trailing 0: replaces the log */
    union {
        struct raft_io_append append;
        struct raft_io_snapshot_put put;
    } in;
    union {
        struct raft_io_append *append;
        struct raft_io_snapshot_put *put;
    } out;
    union {
        raft_io_append_cb append;
        raft_io_snapshot_put_cb put;
    } cb;
};

static mk__gio *of(struct raft_io *io)
{
    return io->impl;
}

static void copy_errmsg(mk__gio *g)
{
    snprintf(g->io.errmsg, sizeof g->io.errmsg, "%s", g->inner->errmsg);
}

static void trip(mk__gio *g, const char *op, int rv, const char *msg)
{
    if (g->failed)
        return;
    g->failed = rv ? rv : RAFT_IOERR;
    snprintf(g->failed_op, sizeof g->failed_op, "%s", op);
    snprintf(g->failed_msg, sizeof g->failed_msg, "%s",
             msg && msg[0] ? msg : raft_strerror(g->failed));
    if (g->on_fail)
        g->on_fail(g, g->failed_op, g->failed, g->failed_msg);
}

/* ---- the watermark -------------------------------------------------------- */

void mk__gio_flush_mark(mk__gio *g, uint64_t every_ms)
{
    if (!g->dir || g->durable <= g->marked)
        return;
    uint64_t now = (uint64_t)mk_mono_ms();
    if (every_ms && now - g->mark_ms < every_ms)
        return;
    g->mark_ms = now;
    /* Failing to raise it only weakens the check. */
    if (mk__mark_write(g->dir, g->durable) == 0)
        g->marked = g->durable;
}

/* The log is about to lose everything above `keep`: the watermark must
 * say so before the disk does, or a restart would cry wolf. */
static int lower_mark(mk__gio *g, raft_index keep)
{
    if (g->durable > keep)
        g->durable = keep;
    for (mk__gio_req *r = g->reqs; r; r = r->next)
        if (r->kind == REQ_APPEND && r->last > keep)
            r->last = keep;
    if (!g->dir || g->marked <= keep)
        return 0;
    if (mk__mark_write(g->dir, keep) == 0) {
        g->marked = keep;
        return 0;
    }
    /* Cannot write it (the disk is failing): no watermark at all is
     * still safe. */
    mk__mark_remove(g->dir);
    uint64_t left;
    if (mk__mark_read(g->dir, &left) == MK_ENOENT) {
        g->marked = 0;
        return 0;
    }
    return RAFT_IOERR;
}

/* ---- requests ------------------------------------------------------------- */

static void req_unlink(mk__gio *g, mk__gio_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        g->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_link(mk__gio *g, mk__gio_req *r)
{
    r->prev = NULL;
    r->next = g->reqs;
    if (g->reqs)
        g->reqs->prev = r;
    g->reqs = r;
}

static void hold(mk__gio *g, mk__gio_req *r)
{
    r->next = NULL;
    if (g->held_tail)
        g->held_tail->next = r;
    else
        g->held_head = r;
    g->held_tail = r;
}

/* Tells libraft and frees the record. */
static void deliver(mk__gio_req *r, int status)
{
    if (r->kind == REQ_APPEND) {
        struct raft_io_append *out = r->out.append;
        raft_io_append_cb cb = r->cb.append;
        free(r);
        cb(out, status);
    } else {
        struct raft_io_snapshot_put *out = r->out.put;
        raft_io_snapshot_put_cb cb = r->cb.put;
        free(r);
        cb(out, status);
    }
}

/* What a held or late record reports once libraft is closing. */
static int closing_status(const mk__gio_req *r)
{
    if (r->kind == REQ_APPEND)
        return 0;
    return r->status ? r->status : RAFT_CANCELED;
}

static void deliver_held(mk__gio *g)
{
    while (g->held_head) {
        mk__gio_req *r = g->held_head;
        g->held_head = r->next;
        if (!g->held_head)
            g->held_tail = NULL;
        deliver(r, closing_status(r));
    }
}

static void completed(mk__gio_req *r, int status)
{
    mk__gio *g = r->g;
    req_unlink(g, r);
    r->status = status;
    if (status != 0 && !g->closing)
        trip(g, r->kind == REQ_APPEND ? "append" : "snapshot", status,
             g->inner->errmsg);
    if (g->closing) {
        deliver(r, closing_status(r));
        return;
    }
    if (g->failed) {
        hold(g, r);
        return;
    }
    if (r->kind == REQ_APPEND) {
        if (r->last > g->durable)
            g->durable = r->last;
    } else if (r->install) {
        g->durable = r->snap;
    }
    deliver(r, 0);
}

static void append_done(struct raft_io_append *req, int status)
{
    completed(req->data, status);
}

static void snapshot_done(struct raft_io_snapshot_put *req, int status)
{
    completed(req->data, status);
}

static int gio_append(struct raft_io *io, struct raft_io_append *req,
                      const struct raft_entry entries[], unsigned n,
                      raft_io_append_cb cb)
{
    mk__gio *g = of(io);
    mk__gio_req *r = calloc(1, sizeof *r);
    if (!r)
        return RAFT_NOMEM;
    r->g = g;
    r->kind = REQ_APPEND;
    r->out.append = req;
    r->cb.append = cb;
    r->last = g->next + n - 1;
    g->next += n;
    if (g->failed) {
        hold(g, r);
        return 0;
    }
    if (g->on_append)
        g->on_append(g, entries, n);
    r->in.append.data = r;
    req_link(g, r);
    int rv = g->inner->append(g->inner, &r->in.append, entries, n,
                              append_done);
    if (rv != 0) {
        /* raft_uv may have queued it before failing (and would call back
         * later), and libraft's own error path would then free what is
         * still queued. Keep the record until the inner io is done with
         * it, and tell libraft nothing. */
        copy_errmsg(g);
        trip(g, "append", rv, g->inner->errmsg);
    }
    return 0;
}

static int gio_truncate(struct raft_io *io, raft_index index)
{
    mk__gio *g = of(io);
    if (g->failed)
        return 0; /* nothing reaches the disk any more */
    g->next = index;
    int rv = lower_mark(g, index - 1);
    if (rv == 0)
        rv = g->inner->truncate(g->inner, index);
    if (rv != 0) {
        copy_errmsg(g);
        trip(g, "truncate", rv, g->inner->errmsg);
    }
    return 0;
}

static int gio_snapshot_put(struct raft_io *io, unsigned trailing,
                            struct raft_io_snapshot_put *req,
                            const struct raft_snapshot *snapshot,
                            raft_io_snapshot_put_cb cb)
{
    mk__gio *g = of(io);
    mk__gio_req *r = calloc(1, sizeof *r);
    if (!r)
        return RAFT_NOMEM;
    r->g = g;
    r->kind = REQ_SNAPSHOT;
    r->out.put = req;
    r->cb.put = cb;
    r->snap = snapshot->index;
    r->install = trailing == 0;
    if (g->failed) {
        hold(g, r);
        return 0;
    }
    int rv = 0;
    if (r->install) {
        /* Replaces the whole log: raft_uv restarts its count there. */
        g->next = snapshot->index + 1;
        rv = lower_mark(g, snapshot->index);
    }
    r->in.put.data = r;
    req_link(g, r);
    if (rv == 0)
        rv = g->inner->snapshot_put(g->inner, trailing, &r->in.put, snapshot,
                                    snapshot_done);
    if (rv != 0) {
        copy_errmsg(g);
        trip(g, "snapshot", rv, g->inner->errmsg);
    }
    return 0;
}

static int gio_set_term(struct raft_io *io, raft_term term)
{
    mk__gio *g = of(io);
    int rv = g->failed ? RAFT_IOERR : g->inner->set_term(g->inner, term);
    if (rv != 0 && !g->failed) {
        copy_errmsg(g);
        trip(g, "term", rv, g->inner->errmsg);
    }
    if (rv != 0)
        snprintf(io->errmsg, sizeof io->errmsg, "storage failed");
    return rv;
}

static int gio_set_vote(struct raft_io *io, raft_id server_id)
{
    mk__gio *g = of(io);
    int rv = g->failed ? RAFT_IOERR : g->inner->set_vote(g->inner, server_id);
    if (rv != 0 && !g->failed) {
        copy_errmsg(g);
        trip(g, "vote", rv, g->inner->errmsg);
    }
    if (rv != 0)
        snprintf(io->errmsg, sizeof io->errmsg, "storage failed");
    return rv;
}

/* ---- loading -------------------------------------------------------------- */

static void free_loaded(struct raft_snapshot *snap, struct raft_entry *entries,
                        size_t n)
{
    if (snap) {
        raft_configuration_close(&snap->configuration);
        for (unsigned i = 0; i < snap->n_bufs; i++)
            raft_free(snap->bufs[i].base);
        raft_free(snap->bufs);
        raft_free(snap);
    }
    void *batch = NULL;
    for (size_t i = 0; i < n; i++)
        if (entries[i].batch && entries[i].batch != batch) {
            batch = entries[i].batch;
            raft_free(batch);
        } else if (!entries[i].batch) {
            raft_free(entries[i].buf.base);
        }
    raft_free(entries);
}

/* Segments libraft set aside as corrupt (it renames them "corrupt-*" and
 * starts without them): never silently. */
static void report_set_aside(mk__gio *g)
{
    DIR *d = g->dir ? opendir(g->dir) : NULL;
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "corrupt-", 8) == 0)
            fprintf(stderr,
                    "mosaik: storage %s: segment %s was set aside as corrupt; "
                    "entries it held are gone from this member\n",
                    g->dir, e->d_name);
    closedir(d);
}

static int gio_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                    struct raft_snapshot **snapshot, raft_index *start_index,
                    struct raft_entry *entries[], size_t *n_entries)
{
    mk__gio *g = of(io);
    int rv = g->inner->load(g->inner, term, voted_for, snapshot, start_index,
                            entries, n_entries);
    report_set_aside(g);
    if (rv != 0) {
        copy_errmsg(g);
        return rv;
    }
    raft_index snap = *snapshot ? (*snapshot)->index : 0;
    raft_index last = *start_index + *n_entries - 1;
    if (snap > last)
        last = snap;
    g->next = *start_index + *n_entries;
    g->durable = last;
    uint64_t mark;
    if (!g->dir || mk__mark_read(g->dir, &mark) != 0) {
        g->marked = 0;
        return 0;
    }
    g->marked = mark;
    if (mark <= last)
        return 0;
    snprintf(io->errmsg, sizeof io->errmsg,
             "the log in %s lost entries: it held entries up to index %llu, "
             "now only up to %llu (snapshot %llu); this member must not vote "
             "with it. Repair: once the other members are known healthy, "
             "stop this member, empty its data dir and start it again (it "
             "catches up from them)",
             g->dir, (unsigned long long)mark, (unsigned long long)last,
             (unsigned long long)snap);
    g->lost = true;
    free_loaded(*snapshot, *entries, *n_entries);
    *snapshot = NULL;
    *entries = NULL;
    *n_entries = 0;
    return RAFT_CORRUPT;
}

static int gio_bootstrap(struct raft_io *io,
                         const struct raft_configuration *conf)
{
    mk__gio *g = of(io);
    int rv = g->inner->bootstrap(g->inner, conf);
    if (rv != 0) {
        copy_errmsg(g);
        return rv;
    }
    /* raft_uv wrote entry 1 as a closed segment. */
    g->durable = 1;
    mk__gio_flush_mark(g, 0);
    return 0;
}

/* ---- pass-through --------------------------------------------------------- */

static int gio_init_io(struct raft_io *io, raft_id id, const char *address)
{
    mk__gio *g = of(io);
    int rv = g->inner->init(g->inner, id, address);
    if (rv != 0)
        copy_errmsg(g);
    return rv;
}

static void on_tick(struct raft_io *inner)
{
    mk__gio *g = inner->data;
    g->tick(&g->io);
}

static void on_recv(struct raft_io *inner, struct raft_message *m)
{
    mk__gio *g = inner->data;
    if (g->on_heard)
        g->on_heard(g, m->server_id);
    g->recv(&g->io, m);
}

static int gio_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                     raft_io_recv_cb recv)
{
    mk__gio *g = of(io);
    g->tick = tick;
    g->recv = recv;
    /* libraft asks to be ticked every heartbeat, and on each tick sends a
     * heartbeat to a follower only when a full heartbeat has passed since
     * the last message to it: a message sent just after a tick pushes the
     * next heartbeat two ticks out. Followers learn that an entry
     * committed from the next message, so an idle commit reached their
     * state machines up to two heartbeats late (an Atlas card waited
     * ~190 ms for its followers' signatures). A tick four times as often
     * makes it at most 1.25 heartbeats; a tick costs a pass over the
     * progress array. */
    unsigned every = msecs / TICKS_PER_HEARTBEAT;
    int rv = g->inner->start(g->inner, every < TICK_MIN_MS ? TICK_MIN_MS
                                                           : every,
                             on_tick, on_recv);
    if (rv != 0)
        copy_errmsg(g);
    return rv;
}

static int gio_recover(struct raft_io *io,
                       const struct raft_configuration *conf)
{
    mk__gio *g = of(io);
    int rv = g->inner->recover(g->inner, conf);
    if (rv != 0)
        copy_errmsg(g);
    return rv;
}

bool mk__gio_deliver(mk__gio *g, struct raft_message *m)
{
    if (g->closing || !g->recv)
        return false;
    if (g->on_heard)
        g->on_heard(g, m->server_id);
    g->recv(&g->io, m);
    return true;
}

static int gio_send(struct raft_io *io, struct raft_io_send *req,
                    const struct raft_message *m, raft_io_send_cb cb)
{
    mk__gio *g = of(io);
    if (g->sender.send)
        return g->sender.send(g->sender.data, req, m, cb);
    int rv = g->inner->send(g->inner, req, m, cb);
    if (rv != 0)
        copy_errmsg(g);
    return rv;
}

static int gio_snapshot_get(struct raft_io *io,
                            struct raft_io_snapshot_get *req,
                            raft_io_snapshot_get_cb cb)
{
    mk__gio *g = of(io);
    int rv = g->inner->snapshot_get(g->inner, req, cb);
    if (rv != 0)
        copy_errmsg(g);
    return rv;
}

static raft_time gio_time(struct raft_io *io)
{
    return of(io)->inner->time(of(io)->inner);
}

static int gio_random(struct raft_io *io, int min, int max)
{
    return of(io)->inner->random(of(io)->inner, min, max);
}

static int gio_async_work(struct raft_io *io, struct raft_io_async_work *req,
                          raft_io_async_work_cb cb)
{
    mk__gio *g = of(io);
    int rv = g->inner->async_work(g->inner, req, cb);
    if (rv != 0)
        copy_errmsg(g);
    return rv;
}

static void inner_closed(struct raft_io *inner)
{
    mk__gio *g = inner->data;
    /* libraft 0.15's raft_uv may call this twice (group.c, store_reap):
     * the first is the close. */
    if (g->inner_closed)
        return;
    g->inner_closed = true;
    /* Whatever the inner io never called back (a request it refused after
     * queueing nothing) is answered now, before libraft frees its log. */
    while (g->reqs) {
        mk__gio_req *r = g->reqs;
        req_unlink(g, r);
        deliver(r, closing_status(r));
    }
    if (g->durable > g->marked && !g->failed)
        mk__gio_flush_mark(g, 0);
    if (g->close_cb)
        g->close_cb(&g->io);
}

static void gio_close(struct raft_io *io, raft_io_close_cb cb)
{
    mk__gio *g = of(io);
    g->closing = true;
    g->close_cb = cb;
    if (g->sender.cancel)
        g->sender.cancel(g->sender.data);
    deliver_held(g);
    g->inner->close(g->inner, inner_closed);
}

void mk__gio_init(mk__gio *g, struct raft_io *inner, const char *dir,
                  mk__gio_fail_cb on_fail, void *data)
{
    memset(g, 0, sizeof *g);
    g->inner = inner;
    g->dir = dir;
    g->on_fail = on_fail;
    g->data = data;
    g->next = 1;
    inner->data = g;
    struct raft_io *io = &g->io;
    io->version = inner->version;
    io->impl = g;
    io->init = gio_init_io;
    io->close = gio_close;
    io->load = gio_load;
    io->start = gio_start;
    io->bootstrap = gio_bootstrap;
    io->recover = gio_recover;
    io->set_term = gio_set_term;
    io->set_vote = gio_set_vote;
    io->send = gio_send;
    io->append = gio_append;
    io->truncate = gio_truncate;
    io->snapshot_put = gio_snapshot_put;
    io->snapshot_get = gio_snapshot_get;
    io->time = gio_time;
    io->random = gio_random;
    io->async_work = inner->version >= 2 ? gio_async_work : NULL;
}
