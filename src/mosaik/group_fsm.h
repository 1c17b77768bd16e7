/* Internal: what goes into a group's Raft log, and the adapter that turns a
 * user state machine (struct mk_fsm) into libraft's struct raft_fsm with
 * exactly-once commands.
 *
 * Every log entry is an envelope: a fixed 40-byte header (format version,
 * kind, the command's true length, the submitter's 16-byte session id, its
 * sequence number and its acknowledgement watermark) followed by the
 * command and zero padding up to a multiple of 8 bytes; or a batch: an
 * 8-byte header (version, kind 2, count) followed by that many envelopes.
 * Batches are group commit: the leader packs what arrived together into
 * one entry, so one append and one fsync carry many commands, each still
 * with its own session and sequence number. The padding is not
 * cosmetic: libraft 0.15's on-disk log mishandles entries whose length is
 * not a multiple of 8 (reference/raft-probe.md, hazard 1: replicas diverged
 * and a restarted node never recovered), so no entry of another length is
 * ever proposed.
 *
 * The adapter keeps, deterministically and inside every snapshot:
 *   - `applied`: how many user commands reached the state machine (a retry
 *     that was already applied does not count), the number every member and
 *     replica reports;
 *   - a session table: for each submitter session the last sequence number
 *     applied, its acknowledgement watermark and the results of the
 *     commands above that watermark, so a retried command is answered with
 *     its first result instead of being applied twice.
 * A command the user machine refuses with MK_EDECODE (malformed: the same
 * bytes fail the same way everywhere, and the machine leaves its state
 * unchanged) is rejected, not fatal: its submitter gets MK_EDECODE and it
 * does not count in `applied`. Otherwise anyone allowed to submit could
 * stop a group with one bad command. Any other failure is fatal.
 * Sessions apply in sequence order. A command whose predecessors are
 * neither applied nor given up by the submitter (`ack`) is a gap: it is not
 * applied and the submitter resends from its first unanswered command. The
 * table is bounded: beyond MK__GFSM_MAX_SESSIONS the session touched least
 * recently (by the count of command entries applied, the same on every
 * replica) is forgotten, and a session keeps at most
 * MK__GFSM_MAX_RESULTS results.
 */
#ifndef MK_GROUP_FSM_H
#define MK_GROUP_FSM_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/codec.h"
#include "mosaik/group.h"

#define MK__SESSION_LEN 16
#define MK__ENV_HDR 40
#define MK__ENV_VERSION 1
#define MK__ENV_COMMAND 1
#define MK__ENV_BATCH 2
#define MK__BATCH_HDR 8
/* A note from the group layer itself (group_members.h), never a command:
 * an 8-byte header (version, kind 3, u16 0, u32 body length), the body,
 * zero padding to a multiple of 8. Builds that predate notes skip them
 * as malformed, which changes nothing else. */
#define MK__ENV_NOTE 3
#define MK__NOTE_HDR 8
/* Commands one batch entry may carry. */
#define MK__BATCH_MAX 65536
/* The largest command an envelope carries (its length is a u32, and a
 * command must fit a link frame with room for the request header). */
#define MK__CMD_MAX (8u << 20)

#define MK__GFSM_MAX_SESSIONS 4096
#define MK__GFSM_MAX_RESULTS 1024

/* Bytes an envelope of a `len`-byte command takes: header, command,
 * padding to a multiple of 8. */
static inline size_t mk__env_size(size_t len)
{
    return (MK__ENV_HDR + len + 7) & ~(size_t)7;
}

typedef struct mk__envelope {
    uint8_t session[MK__SESSION_LEN];
    uint64_t seq; /* 1-based, per session */
    uint64_t ack; /* the submitter has an outcome for every seq <= ack */
    const uint8_t *cmd;
    size_t len;
} mk__envelope;

/* Writes the envelope into `out`, which has mk__env_size(e->len) bytes
 * (padding included, zeroed). Cannot fail. */
void mk__env_write(uint8_t *out, const mk__envelope *e);

/* Parses an envelope (e->cmd points into `buf`). 0 or MK_EDECODE when the
 * length is not a multiple of 8, the version or kind is unknown, or the
 * command length overruns. */
int mk__env_parse(const void *buf, size_t len, mk__envelope *e);

/* A batch of `n` envelopes (each from mk__env_write, so each a multiple of
 * 8 bytes) starts with this header: 8 bytes at `out`. */
void mk__batch_header_write(uint8_t *out, uint32_t n);

/* Bytes a note entry with a `len`-byte body takes, and its writing
 * into `out` (that many bytes). */
static inline size_t mk__note_entry_size(size_t len)
{
    return (MK__NOTE_HDR + len + 7) & ~(size_t)7;
}
void mk__note_entry_write(uint8_t *out, const uint8_t *body, size_t len);

/* Calls `fn` for each command of a log entry (a plain envelope, or each
 * of a batch's), in order. Returns how many, or -1 (and no call) when
 * the entry is malformed. Touches no state: any thread may call it. */
long mk__entry_commands(const void *entry, size_t len,
                        void (*fn)(const uint8_t *cmd, size_t len, void *data),
                        void *data);

/* What applying one envelope did. */
typedef enum mk__apply_kind {
    MK__APPLY_NEW,   /* applied now: `applied` is its number (or rejected
                        now: status MK_EDECODE, applied 0) */
    MK__APPLY_DUP,   /* applied before: the first outcome is repeated */
    MK__APPLY_STALE, /* at or below what the submitter gave up or already
                        has, or its result was evicted: not applied now */
    MK__APPLY_GAP,   /* an earlier command of the session is missing */
    MK__APPLY_BAD,   /* not an envelope: ignored */
} mk__apply_kind;

typedef struct mk__apply_event {
    mk__apply_kind kind;
    int status;             /* NEW, DUP: 0, or MK_EDECODE when rejected */
    const uint8_t *session; /* NULL for BAD */
    uint64_t seq;
    uint64_t applied;       /* NEW, DUP */
    const uint8_t *result;  /* NEW, DUP: the machine's result */
    size_t result_len;
    const uint8_t *cmd;     /* the user command */
    size_t cmd_len;
} mk__apply_event;

typedef struct mk__gfsm_hooks {
    /* After every command entry (valid during the call only). */
    void (*applied)(void *data, const mk__apply_event *ev);
    /* After the state was replaced by a snapshot (install or restart). */
    void (*restored)(void *data);
    void *data;
    /* After every note entry (the body, valid during the call only); may
     * be NULL. Notes change no state and are not counted as applied. */
    void (*note)(void *data, const uint8_t *body, size_t len);
} mk__gfsm_hooks;

typedef struct mk__gsession mk__gsession;

typedef struct mk__gfsm {
    struct raft_fsm raft; /* handed to raft_init; raft.data = this */
    struct mk_fsm *user;  /* borrowed */
    mk__gfsm_hooks hooks;
    uint64_t applied;     /* user commands applied */
    uint64_t entries;     /* commands seen: the LRU clock */
    mk__gsession *sessions; /* sorted by session id */
    size_t n_sessions, cap_sessions;
    size_t max_sessions, max_results;
    int fatal;            /* the user machine's first failure, or 0 */
    /* Raft entries applied through libraft and their bytes: local
     * figures (not in snapshots) the group sizes its log by. */
    uint64_t raft_entries, raft_bytes;
    /* Bytes of the last snapshot taken or restored: what the next one will
     * cost, about, so the group can space snapshots by it. */
    uint64_t snapshot_bytes;
    uint64_t snapshots; /* taken here (not restored) */
    mk_buf result;        /* scratch for apply() results */
} mk__gfsm;

/* Sets up the adapter around `user` (borrowed). Cannot fail. */
void mk__gfsm_init(mk__gfsm *a, struct mk_fsm *user,
                   const mk__gfsm_hooks *hooks);
void mk__gfsm_free(mk__gfsm *a);

/* Applies one log entry, a command or a batch (what the raft_fsm apply
 * does, callable directly for tests). A malformed entry is skipped whole
 * (one BAD event), the same way everywhere. Returns 0, or the user
 * machine's failure (the group stops). */
int mk__gfsm_apply(mk__gfsm *a, const void *entry, size_t len);

/* What the table says of `session`'s command `seq`, for a leader about
 * to propose it: 1 when it is the next the session needs (propose it), 0
 * when it would be a gap (an earlier one is still missing), -1 when it is
 * at or below the session's floor (applied or given up: not to be
 * proposed again). For -1, `*res` is its kept outcome, or NULL when none
 * is kept (answer MK_ESTALE). `ack` is what the submitter says now. */
typedef struct mk__gresult mk__gresult;
int mk__gfsm_next(const mk__gfsm *a, const uint8_t *session, uint64_t seq,
                  uint64_t ack, const mk__gresult **res);
/* A kept outcome's fields. */
void mk__gresult_get(const mk__gresult *r, int *status, uint64_t *applied,
                     const uint8_t **data, size_t *len);

/* The adapter's snapshot: its own state, then the user machine's. Appends
 * to `out`; 0 or a negative code. */
int mk__gfsm_snapshot(mk__gfsm *a, mk_buf *out);
/* Replaces the state with a snapshot's. 0, MK_EDECODE, or the user
 * restore()'s code; the state is unchanged on failure. */
int mk__gfsm_restore(mk__gfsm *a, const uint8_t *snap, size_t len);

/* blake3 over (applied, user snapshot): equal on replicas that hold the
 * same state. 0 or a negative code. */
int mk__fsm_state_hash(struct mk_fsm *user, uint64_t applied, mk_id *out);

#endif
