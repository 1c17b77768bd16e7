/* A handle on a group from a node that is not one of its members: the
 * CLI, load generators and benchmarks use it.
 *
 * Requests go over RPC links to a member: the one named with
 * mk_group_client_via, else the leader once a member has named it, else
 * any member in the catalog. A follower forwards to its leader. Commands
 * carry the client's own session and sequence numbers and are retried
 * with the same pair (to another member if need be) until answered or
 * their deadline passes, so they are applied at most once; the outcomes
 * are those of mk_group_execute. The group's validators decide who may
 * use it.
 *
 * Nothing here names the consensus library: a member's role is reported
 * as an mk_member_role, so callers need only this header and group.h.
 * Every call runs on the node's loop.
 */
#ifndef MK_GROUP_CLIENT_H
#define MK_GROUP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/group.h"
#include "mosaik/lifecycle.h"

/* Opaque; owned by whoever opened it until mk_group_client_close. */
typedef struct mk_group_client mk_group_client;

/* 0 and *out, or MK_ENOMEM / MK_EIO (no randomness for the session).
 * `node` is borrowed and must outlive the client; `group` is copied. */
int mk_group_client_open(mk_node *node, const mk_id *group,
                         mk_group_client **out);
/* Cancels what is pending (callbacks get MK_ECANCELED before this
 * returns), then frees and calls `cb` (may be NULL). */
void mk_group_client_close(mk_group_client *c, mk_close_cb cb, void *data);

/* Sends everything through `member` (copied; NULL: leader or any). */
void mk_group_client_via(mk_group_client *c, const mk_peer_id *member);

/* As mk_group_execute / mk_group_query; `cmd` and `q` are copied. */
int mk_group_client_execute(mk_group_client *c, const void *cmd, size_t len,
                            uint32_t timeout_ms, mk_group_result_cb cb,
                            void *data);
int mk_group_client_query(mk_group_client *c, const void *q, size_t len,
                          mk_consistency level, uint32_t timeout_ms,
                          mk_group_result_cb cb, void *data);

/* ---- asking one member about itself ------------------------------------- */

/* What a member is doing in consensus right now. */
typedef enum mk_member_role {
    MK_MEMBER_UNAVAILABLE, /* not taking part: stopped, or not started */
    MK_MEMBER_FOLLOWER,
    MK_MEMBER_CANDIDATE,
    MK_MEMBER_LEADER,
} mk_member_role;

/* "follower", "candidate", "leader"; "unavailable" for anything else. */
const char *mk_member_role_name(mk_member_role role);

#define MK_MEMBER_STATUS_MAX_VOTERS 64

typedef struct mk_member_status {
    mk_peer_id self;
    mk_group_status st;
    mk_member_role role;
    /* The first min(st.n_voters, MK_MEMBER_STATUS_MAX_VOTERS) are set. */
    mk_peer_id voters[MK_MEMBER_STATUS_MAX_VOTERS];
    bool has_hash;
    mk_id hash; /* a digest of its state machine's state, when asked */
    /* What this member proposed as leader (since it started): raft
     * entries and the commands in them. Their ratio is the batching;
     * commands proposed over commands applied is the re-proposal rate. */
    uint64_t entries_proposed, commands_proposed;
} mk_member_status;

/* `st` is borrowed for the call; NULL with a negative status
 * (MK_ECONNECT_TIMEOUT, MK_EDECODE, MK_ECANCELED). */
typedef void (*mk_group_client_status_cb)(int status,
                                          const mk_member_status *st,
                                          void *data);

/* Asks `member` (copied) about itself; `hash` asks for the state hash
 * too. 0 and `cb` later, once, or MK_ENOMEM / MK_ECLOSED and never. */
int mk_group_client_status(mk_group_client *c, const mk_peer_id *member,
                           bool hash, uint32_t timeout_ms,
                           mk_group_client_status_cb cb, void *data);

/* Asks the leader to make listed member `member` (copied) a voter
 * (`voter` true) or a standby: an operator's rotation, one change at a
 * time. The request is signed with `signer` (borrowed for the call), the
 * key of a listed member, and dated: the leader refuses it a minute
 * either side of its clock, so a captured request cannot be replayed
 * later. `cb` gets 0 once the change is committed; MK_EINVAL when it
 * would break a limit (more than max_voters voters, no voter left,
 * demoting the leader: move leadership away first) or `member` is not
 * listed; MK_ENOT_ALLOWED when `signer` is not a member (or the clocks
 * are a minute apart); MK_EBUSY while another change is in flight; a
 * timeout otherwise. Returns 0, or MK_ENOMEM / MK_ECLOSED and never calls
 * `cb`. */
int mk_group_client_assign(mk_group_client *c, const mk_peer_id *member,
                           bool voter, const mk_keypair *signer,
                           uint32_t timeout_ms, mk_group_result_cb cb,
                           void *data);

/* Asks the leader to take standby `member` out of the configuration for
 * good: the last step of rotating a key (promote the new key's standby,
 * demote the old key, remove it). Signed and answered as an assign;
 * MK_EINVAL when `member` is a voter (demote it first) or already out.
 * A removed member no longer votes, receives the log, or signs requests
 * (its assigns are refused with MK_ENOT_ALLOWED); the member list is
 * fixed by the GroupId, so nothing brings it back. Members that predate
 * removal refuse the request as malformed. */
int mk_group_client_remove(mk_group_client *c, const mk_peer_id *member,
                           const mk_keypair *signer, uint32_t timeout_ms,
                           mk_group_result_cb cb, void *data);

/* Members in the catalog (entries listing the group), up to `max`;
 * returns how many were written to `out`. */
size_t mk_group_client_members(mk_group_client *c, mk_peer_id *out,
                               size_t max);

#endif /* MK_GROUP_CLIENT_H */
