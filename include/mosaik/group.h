/* Groups: Raft committees that run a deterministic state machine.
 *
 * A group is named by its GroupId, derived from the committee root and the
 * state machine's signature (and the consensus parameters and ticket
 * validators, so members that disagree on any of them never meet), and
 * has a fixed list of voters from configuration. Members find each other
 * through discovery (the GroupId is in their PeerEntry). Consensus is
 * Canonical raft (libraft) with its durable libuv storage in the member's
 * data directory; Raft traffic flows only over authenticated links
 * (ALPN "/mosaik/groups/1") between listed voters whose tickets pass the
 * group's validators.
 *
 * Commands are exactly-once: each carries the submitter's session id and
 * sequence number, and a retried command (after a timeout or a leader
 * change) is applied at most once and answered with the first result.
 * Commands sent to a follower are forwarded to the leader. Queries are
 * weak (this member's state) or strong (answered by the leader after a
 * barrier, so they see every write acknowledged before they were asked).
 *
 * Anyone may hold a read-only replica (mk_replica) that follows a member's
 * commit feed without joining Raft: a snapshot, then every committed
 * command in order.
 */
#ifndef MK_GROUP_H
#define MK_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/codec.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"
#include "mosaik/ticket.h"

#define MK_ALPN_GROUPS "/mosaik/groups/1"
#define MK_ALPN_GROUP_FEED "/mosaik/groups/feed/1"

#define MK_FSM_VERSION 1

/* A deterministic state machine (a versioned vtable, like raft_fsm).
 * Every function runs on the node's loop. */
struct mk_fsm {
    int version;      /* MK_FSM_VERSION */
    void *data;       /* the implementation's state */
    mk_id signature;  /* what this machine is; folds into the GroupId */

    /* Applies one committed command and may write a result for the
     * submitter. Must depend only on the state and the command: every
     * replica applies the same commands in the same order. MK_EDECODE
     * (a malformed command; the state must be left as it was) rejects the
     * command: its submitter gets MK_EDECODE and it does not count as
     * applied. Any other non-zero return is a bug that stops the group. */
    int (*apply)(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                 mk_buf *result);
    /* Writes the whole state; restore() of those bytes must give back the
     * same state. */
    int (*snapshot)(struct mk_fsm *fsm, mk_buf *out);
    int (*restore)(struct mk_fsm *fsm, const uint8_t *snap, size_t len);
    /* Answers a read without changing anything. May be NULL. */
    int (*query)(struct mk_fsm *fsm, const uint8_t *q, size_t len,
                 mk_buf *result);
    /* May be NULL. A check that needs no state (the command decodes, its
     * signatures verify), run by the member a command first reaches,
     * before anything is replicated: a non-zero return (MK_EDECODE,
     * MK_EBAD_SIGNATURE, MK_ENOT_ALLOWED) refuses the command with that
     * code and it never reaches the log. apply() must still refuse what
     * admit() would: a member with an older build may not have run it. */
    int (*admit)(struct mk_fsm *fsm, const uint8_t *cmd, size_t len);
    /* May be NULL. Called on a worker thread of the group, for each
     * command as its entry is written to this member's log (so before it
     * commits and is applied here), to do ahead of time, in parallel with
     * the loop, what apply() will need and can remember: verifying a
     * signature into a memo, say. It must only read what never changes
     * after the machine is built and may only write what is safe to share
     * with the loop thread; apply() must not depend on it having run (it
     * may not have, or not yet). */
    void (*prepare)(struct mk_fsm *fsm, const uint8_t *cmd, size_t len);
};

typedef struct mk_group_params {
    uint32_t election_timeout_ms; /* [1000] */
    uint32_t heartbeat_ms;        /* [50] */
    /* [0] entries between snapshots; 0 lets the group space them by the
     * state's size: a snapshot once the log since the last one holds
     * twice as many bytes as it did (at least 1 MiB and 1024 entries).
     * Either way the log kept in memory stays under 64 MiB. */
    uint32_t snapshot_threshold;
    uint32_t max_in_flight;       /* [64] log entries awaiting commit */
    /* [1 MiB] the largest command taken at the door; larger ones are
     * refused with MK_EMSGSIZE before they are replicated. At most
     * MK_GROUP_COMMAND_MAX. */
    uint32_t max_command_bytes;
    /* [5] voters at most, odd. The members listed beyond it are standbys:
     * they hold the log, answer clients, and take the place of a voter the
     * leader has not heard from for replace_after_ms. Folded into the
     * GroupId only when the list is longer (then members must agree on
     * it), so a committee of at most five names the same group as ever. */
    uint32_t max_voters;
    /* [10000] how long a voter may stay silent before the leader demotes
     * it to standby and promotes a standby it hears from (one change at a
     * time, the standby caught up first). A local choice of each member,
     * used while it leads. */
    uint32_t replace_after_ms;
} mk_group_params;

/* The largest command any group takes (it must fit a link frame). */
#define MK_GROUP_COMMAND_MAX (8u << 20)

/* Ticket-gated membership: besides the listed members, any node holding a
 * valid EdDSA JWT ticket (mosaik/jwt.h) signed by one of `keys` may join
 * the committee. It joins as a standby (the leader adds it to Raft's
 * configuration once it lists the GroupId in its entry and its ticket
 * checks) and is promoted like any standby: by the leader when a voter's
 * place is free, or by an operator's ASSIGN. When its ticket expires or
 * stops validating (a new entry without it), the leader demotes and
 * removes it, and its Raft links are refused from then on.
 *
 * In this form the listed members (mk_group_config.voters) are the seeds:
 * they bootstrap the log, and they too need a valid ticket to be members.
 * The GroupId folds the policy below (keys, issuer, audience, lifetime),
 * max_voters and the seeds, never who holds a ticket, so members rotate
 * without changing any id. */
#define MK_GROUP_TICKET_KEYS 16
#define MK_GROUP_TICKET_STR 255
/* A plain value (no pointers), so a struct holding one can be copied. */
typedef struct mk_group_tickets {
    mk_peer_id keys[MK_GROUP_TICKET_KEYS]; /* the first n_keys are used */
    size_t n_keys;                         /* 1..MK_GROUP_TICKET_KEYS */
    /* The iss and aud every ticket must carry ("": any); no ','. */
    char issuer[MK_GROUP_TICKET_STR + 1];
    char audience[MK_GROUP_TICKET_STR + 1];
    uint32_t max_lifetime_s; /* refuse tickets living longer; 0: no limit */
} mk_group_tickets;

/* Fills `v` with the validator of this policy (JWTs signed by one of its
 * keys, with its issuer and audience, expiring, and living no longer
 * than max_lifetime_s). 0, MK_EINVAL for a policy with no key or an
 * unterminated string, or MK_ENOMEM; release with
 * mk_ticket_validator_free. */
int mk_group_tickets_validator(const mk_group_tickets *t,
                               struct mk_ticket_validator *v);

/* Whether `node`'s own entry carries a ticket the policy accepts now:
 * whether it is worth joining the group (the leader judges it again, and
 * for as long as it is a member). When not, `why` (MK_ERRMSG_SIZE, may
 * be NULL) says why. */
bool mk_group_tickets_held(const mk_group_tickets *t, mk_node *node,
                           char *why);

typedef struct mk_group_config {
    mk_node *node;              /* borrowed */
    mk_id root;                 /* the committee root (e.g. a module root) */
    struct mk_fsm *fsm;         /* borrowed; outlives the group */
    /* The members (copied; this node must be one): the first max_voters of
     * them in ascending PeerId order start as voters, the rest as
     * standbys (params.max_voters). */
    const mk_peer_id *voters;
    size_t n_voters;
    const char *data_dir;       /* created if missing; holds the Raft log */
    mk_group_params params;     /* zero fields take the defaults */
    /* Tickets every other member must hold (borrowed). */
    const struct mk_ticket_validator *const *validators;
    size_t n_validators;
    /* NULL: the members are `voters`, fixed by the GroupId. Else members
     * are admitted by ticket, and `voters` are the seeds that start the
     * log; this node need not be one of them. */
    const mk_group_tickets *tickets;
    /* What operators call the group (copied, may be NULL): the `name`
     * label of its series in the node's metrics (mosaik/metrics.h), next
     * to `group`, the GroupId in hex. Not part of the GroupId. */
    const char *name;
} mk_group_config;

/* The GroupId a config names, computed without joining: readers and
 * tools use it to find a group. Only the fields that shape the id are
 * read (root, fsm signature, election/heartbeat params, validators, the
 * members or the seeds and ticket policy, max_voters). */
void mk_group_id_of(const mk_group_config *cfg, mk_id *out);

typedef struct mk_group mk_group;

/* Joins as a voting member: opens (or creates and bootstraps) the Raft
 * log in data_dir and starts serving. Returns 0 and `*out`, or a negative
 * code with `err` (MK_ERRMSG_SIZE): MK_EINVAL when this node is not a
 * listed voter, MK_EEXIST when it already runs that group, MK_EIO for a
 * data dir it cannot use, including a log that lost entries this member
 * once held (a truncated or deleted segment): such a member must not vote
 * until repaired, and `err` says how.
 * A storage failure while running (ENOSPC, EIO) stops this member's Raft
 * (loudly, on stderr) instead of letting it diverge; it restarts from its
 * durable log by itself once a probe write into data_dir succeeds. */
int mk_group_open(const mk_group_config *cfg, mk_group **out, char *err);

/* Leaves: stops Raft cleanly (the log stays on disk), fails pending
 * requests with MK_ECANCELED, frees, then calls `cb` (may be NULL). */
void mk_group_close(mk_group *g, mk_close_cb cb, void *data);

const mk_id *mk_group_id(const mk_group *g);

typedef struct mk_group_status {
    bool online;        /* a leader is known and this member follows it */
    bool is_leader;
    bool has_leader;
    mk_peer_id leader;
    uint64_t term;
    uint64_t commit_index;  /* Raft's */
    uint64_t applied_index; /* Raft's */
    uint64_t applied;       /* commands applied to the state machine */
    size_t n_voters;        /* voters in the current configuration */
    size_t n_members;       /* members: voters and standbys (ticket-gated:
                               those in the current configuration) */
    bool is_voter;          /* this member votes (else it is a standby) */
    /* This member's storage failed (a full disk, an I/O error) or lost
     * entries: it is out of consensus (no votes, no acknowledgements)
     * until its disk works again, when it restarts from its log. */
    bool storage_failed;
} mk_group_status;

void mk_group_status_get(const mk_group *g, mk_group_status *out);

/* Called after any change of leader, term, online state or applied count
 * (coalesced: at most once per loop iteration). */
typedef void (*mk_group_change_cb)(mk_group *g, void *data);
int mk_group_watch(mk_group *g, mk_group_change_cb cb, void *data);

/* ---- membership changes ------------------------------------------------------
 *
 * After a change of a member's role commits, the leader that made it
 * writes a note into the log saying what changed and on whose word, so
 * every member learns the same facts at the same place in the log (a
 * member replaying its log after a restart learns them again). A leader
 * that loses office between the change and its note leaves that change
 * unnoted; the change itself stands. */

typedef enum mk_member_change {
    MK_MEMBER_PROMOTED = 1, /* standby to voter */
    MK_MEMBER_DEMOTED = 2,  /* voter to standby */
    MK_MEMBER_ADDED = 3,    /* into the configuration (not made yet) */
    MK_MEMBER_REMOVED = 4,  /* out of it: an operator's remove */
} mk_member_change;

typedef struct mk_group_member_event {
    uint64_t index; /* the Raft index of the configuration change */
    mk_peer_id member;
    mk_member_change change;
    /* true: an operator's signed request (mk_group_client_assign,
     * mk_group_client_remove), `by` its signer, with the time and
     * signature it sent (mk_group_assign_verify checks them); false:
     * the leader `by` replaced a silent voter by itself, and `at_unix_ms`
     * and `sig` are zeros. */
    bool by_operator;
    mk_peer_id by;
    uint64_t at_unix_ms;
    uint8_t sig[MK_SIG_LEN];
} mk_group_member_event;

/* Called on the loop for each note this member applies (`ev` borrowed
 * for the call). One watcher per group: a second call replaces it; `cb`
 * NULL removes it. Returns 0. */
typedef void (*mk_group_member_cb)(mk_group *g, const mk_group_member_event *ev,
                                   void *data);
int mk_group_watch_members(mk_group *g, mk_group_member_cb cb, void *data);

/* Whether an operator's change carries a good signature of its signer
 * for group `group` (the ASSIGN digest, docs/groups.md): 0, MK_EINVAL
 * for a change no operator asks for, or MK_EBAD_SIGNATURE. The time is
 * not checked: the leader did that when it took the request. */
int mk_group_assign_verify(const mk_id *group, const mk_group_member_event *ev);

/* A command's outcome: status 0 with the command's sequence number in
 * the group (`applied`, 1-based) and the state machine's result (valid
 * during the call), or a negative status: MK_ECONNECT_TIMEOUT when no
 * leader took it before the deadline (it was then not applied, or will
 * be applied exactly once if a retry reaches the leader), MK_ECANCELED. */
typedef void (*mk_group_result_cb)(int status, uint64_t applied,
                                   const uint8_t *result, size_t len,
                                   void *data);

/* Submits a command (copied). Returns 0 and later calls `cb` once, or a
 * negative code and never calls it: MK_EMSGSIZE (over max_command_bytes),
 * MK_ECLOSED, or what the machine's admit() refused it with. Commands
 * submitted through one group handle are applied in submission order.
 * `timeout_ms` 0 means 10 s. The status may also be MK_ESTALE: the
 * command was applied earlier but its result is no longer kept. */
int mk_group_execute(mk_group *g, const void *cmd, size_t len,
                     uint32_t timeout_ms, mk_group_result_cb cb, void *data);

typedef enum mk_consistency { MK_WEAK, MK_STRONG } mk_consistency;

/* Runs a query; same contract as mk_group_execute (applied = the state's
 * applied count when it was answered). */
int mk_group_query(mk_group *g, const void *q, size_t len,
                   mk_consistency level, uint32_t timeout_ms,
                   mk_group_result_cb cb, void *data);

/* ---- read-only replicas ---------------------------------------------------- */

typedef struct mk_replica mk_replica;

typedef struct mk_replica_config {
    mk_node *node;      /* borrowed */
    mk_id group;        /* the GroupId to follow (mk_group_id_of) */
    struct mk_fsm *fsm; /* borrowed; receives restore() and apply() */
} mk_replica_config;

/* Starts following: finds members in the catalog (entries listing the
 * GroupId), subscribes to one, and switches to another when it fails.
 * Returns 0 or MK_ENOMEM. */
int mk_replica_open(const mk_replica_config *cfg, mk_replica **out);
void mk_replica_close(mk_replica *r, mk_close_cb cb, void *data);

/* Commands applied so far (the same count members report). */
uint64_t mk_replica_applied(const mk_replica *r);
/* True while subscribed to a member. */
bool mk_replica_online(const mk_replica *r);
/* True while subscribed and holding at least the state the member had
 * when it welcomed us. A member sends its backlog right after WELCOME,
 * but a large one arrives over several reads: a reader that must answer
 * "everything as of now" waits for this, not for online. */
bool mk_replica_caught_up(const mk_replica *r);
/* The member currently followed, when online. */
bool mk_replica_source(const mk_replica *r, mk_peer_id *out);
/* Why the replica cannot catch up, or 0. MK_EMSGSIZE: it is further
 * behind than any member's log of recent commands and the members'
 * state is larger than one link frame (the transport's max_frame, 16 MiB
 * by default), so no member can send it a snapshot. It goes on trying,
 * a member every 30 s (the state may shrink); watchers are called when
 * this is first seen. Cleared once a member welcomes it with something
 * it can apply. */
int mk_replica_error(const mk_replica *r);

/* Called after every applied command or restore, on online changes, and
 * when mk_replica_error becomes non-zero. */
int mk_replica_watch(mk_replica *r, void (*cb)(mk_replica *r, void *data),
                     void *data);

#endif /* MK_GROUP_H */
