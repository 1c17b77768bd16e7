/* Internal: a handle on a group from a node that is not one of its
 * members: the CLI, the integration tests' load generators and the
 * benchmark use it.
 *
 * Requests go over RPC links (group_rpc.c) to a member: the one named with
 * mk_group_client_via, else the leader once a member has named it, else
 * any member in the catalog. A follower forwards to its leader. Commands
 * carry the client's own session and sequence numbers and are retried
 * with the same pair (to another member if need be) until answered or
 * their deadline passes, so they are applied at most once; the outcomes
 * are those of mk_group_execute. The group's validators decide who may
 * use it (group_hub.c).
 */
#ifndef MK_GROUP_CLIENT_H
#define MK_GROUP_CLIENT_H

#include <stdbool.h>

#include "mosaik/group.h"
#include "mosaik/group_internal.h"

typedef struct mk_group_client mk_group_client;

/* 0 and *out, or MK_ENOMEM / MK_EIO (no randomness for the session). */
int mk_group_client_open(mk_node *node, const mk_id *group,
                         mk_group_client **out);
/* Cancels what is pending (callbacks get MK_ECANCELED before this
 * returns), then frees and calls `cb` (may be NULL). */
void mk_group_client_close(mk_group_client *c, void (*cb)(void *data),
                           void *data);

/* Sends everything through `member` (copied; NULL: leader or any). */
void mk_group_client_via(mk_group_client *c, const mk_peer_id *member);

/* As mk_group_execute / mk_group_query. */
int mk_group_client_execute(mk_group_client *c, const void *cmd, size_t len,
                            uint32_t timeout_ms, mk_group_result_cb cb,
                            void *data);
int mk_group_client_query(mk_group_client *c, const void *q, size_t len,
                          mk_consistency level, uint32_t timeout_ms,
                          mk_group_result_cb cb, void *data);

/* Asks `member` (copied) about itself. `st` is valid during the call;
 * NULL with a negative status (MK_ECONNECT_TIMEOUT). `hash` asks for the
 * state hash too. */
typedef void (*mk_group_client_status_cb)(int status,
                                          const mk__member_status *st,
                                          void *data);
int mk_group_client_status(mk_group_client *c, const mk_peer_id *member,
                           bool hash, uint32_t timeout_ms,
                           mk_group_client_status_cb cb, void *data);

/* Members in the catalog (entries listing the group), up to `max`. */
size_t mk_group_client_members(mk_group_client *c, mk_peer_id *out,
                               size_t max);

#endif
