/* Internal: a member's storage, made safe to fail.
 *
 * libraft 0.15 handles a failed disk write badly. A follower whose append
 * fails keeps the entries in memory, and libuv storage later writes the
 * next batches where the failed ones should have been, so the log on disk
 * is shifted (a forked replica after a restart). A leader truncates its
 * in-memory log once per failed append, and with two appends in flight the
 * second truncate starts past the end of the log (its assertions are
 * compiled out), freeing command buffers twice. And nothing is logged.
 *
 * So libraft never sees a storage failure. mk__gio is a struct raft_io
 * that forwards every call to the real one (raft_uv) and watches what
 * writes the log: append, truncate, snapshot_put, set_term, set_vote. On
 * the first failure it freezes: nothing more reaches the disk, no append
 * or snapshot completion is reported to libraft (so it acknowledges and
 * counts nothing it did not persist), set_term and set_vote fail (so it
 * votes for no one), and `on_fail` tells the owner, which must stop the
 * raft instance (raft_close) and may start a new one from the durable log
 * later. The held completions are delivered when libraft closes the io,
 * once it is RAFT_UNAVAILABLE and only releases what they reference.
 *
 * It also keeps the durable watermark (group_mark.c): the highest log
 * index this member is known to have written. load() compares it with what
 * libraft found on disk, and refuses (RAFT_CORRUPT, with the indexes in
 * errmsg) a log that lost entries this member had: such a member could
 * vote for a candidate missing acknowledged writes.
 */
#ifndef MK_GROUP_IO_H
#define MK_GROUP_IO_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct mk__gio mk__gio;
typedef struct mk__gio_req mk__gio_req;

/* The first storage failure: `op` names the operation ("append",
 * "truncate", "snapshot", "term", "vote"), `rv` is libraft's code and
 * `msg` its message. Called once, on the loop, possibly from inside a
 * raft_uv callback: the owner must defer raft_close to a later turn. */
typedef void (*mk__gio_fail_cb)(mk__gio *io, const char *op, int rv,
                                const char *msg);

struct mk__gio {
    struct raft_io io;     /* handed to raft_init; io.impl = this */
    struct raft_io *inner; /* borrowed: the real storage */
    void *data;            /* the owner's */
    mk__gio_fail_cb on_fail;

    /* The first failure (a RAFT_* code), 0 while healthy. */
    int failed;
    char failed_op[16];
    char failed_msg[RAFT_ERRMSG_BUF_SIZE];
    /* load() refused a log that lost entries (errmsg says which). */
    bool lost;

    /* The watermark, when `dir` is set: next is the index the next
     * appended entry gets (as raft_uv counts it), durable the highest
     * index written, marked what the watermark file says. */
    const char *dir; /* borrowed; NULL: no watermark */
    raft_index next, durable, marked;
    uint64_t mark_ms; /* when the file was last written (mono ms) */

    mk__gio_req *reqs;       /* forwarded, not yet completed by `inner` */
    mk__gio_req *held_head;  /* completed (or never forwarded) after the */
    mk__gio_req *held_tail;  /* failure, not yet delivered to libraft */
    bool closing;
    bool inner_closed; /* the inner io's close callback came (once) */

    raft_io_tick_cb tick;
    raft_io_recv_cb recv;
    /* May be set by the owner: every Raft message received, by sender,
     * before libraft sees it (the leader's view of who is alive). */
    void (*on_heard)(mk__gio *io, raft_id from);
    /* May be set by the owner: entries as they are handed to storage (on
     * the leader and on followers alike), valid during the call. */
    void (*on_append)(mk__gio *io, const struct raft_entry *entries,
                      unsigned n);
    raft_io_close_cb close_cb;
    /* May be set by the owner before raft_start: who carries messages.
     * With `send` set, libraft's sends go to it instead of the inner io,
     * and messages come back through mk__gio_deliver; `cancel` is called
     * once, when libraft closes the io, and must answer every send it
     * still holds (RAFT_CANCELED) before it returns. */
    struct {
        int (*send)(void *data, struct raft_io_send *req,
                    const struct raft_message *m, raft_io_send_cb cb);
        void (*cancel)(void *data);
        void *data;
    } sender;
};

/* A message for libraft from the owner's sender. Returns true when
 * libraft took it (and with it the entries, configuration and snapshot
 * data the message owns); false when it cannot take it now (not started,
 * closing), and the caller frees the message. */
bool mk__gio_deliver(mk__gio *g, struct raft_message *m);

/* Wraps `inner` (initialised, not yet given to raft_init). `dir` (may be
 * NULL) keeps the watermark; it must outlive the wrapper. Cannot fail. */
void mk__gio_init(mk__gio *g, struct raft_io *inner, const char *dir,
                  mk__gio_fail_cb on_fail, void *data);

/* Writes the watermark if it moved (at most every `every_ms`): call it
 * now and then, and with 0 before a clean stop. */
void mk__gio_flush_mark(mk__gio *g, uint64_t every_ms);

/* ---- the watermark file (group_mark.c) ----------------------------------- */

#define MK__MARK_FILE "mosaik-durable"

/* Reads the watermark in `dir`: 0 and *index, MK_ENOENT when there is
 * none (or it is unreadable or damaged: a missing watermark only weakens
 * the check), or another negative code. */
int mk__mark_read(const char *dir, uint64_t *index);
/* Writes it in place (no new blocks once the file exists, so it works on
 * a full disk) with a checksum; not fsynced: the entries it vouches for
 * are, and a stale, lower watermark is never a false alarm. 0 or a
 * negative code. */
int mk__mark_write(const char *dir, uint64_t index);
/* Removes it. */
void mk__mark_remove(const char *dir);

#endif
