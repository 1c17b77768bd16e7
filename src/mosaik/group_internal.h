/* Internal: the pieces of a group (include/mosaik/group.h) and how they
 * talk to each other.
 *
 *   group.c        mk_group: joining, libraft, commands, queries, forwarding
 *   group_hub.c    one per node: serves the group ALPNs and hands each
 *                  incoming link to the group it names, after checking it
 *   raft_bridge.c  carries libraft's messages on authenticated links
 *                  (libraft never opens a socket)
 *   raft_wire.c    those messages as bytes
 *   group_rpc.c    request links to members (forwarding, clients)
 *   group_wire.c   the messages on those links
 *   group_feed.c   the commit feed a member serves to replicas
 *   replica.c      mk_replica
 *   group_client.c a non-member's handle on a group (tools, tests, bench)
 *   group_fsm.c    the log envelope and the exactly-once adapter
 *
 * Protocol on MK_ALPN_GROUPS. The dialer's first frame is HELLO
 * {kind, network[32], group[32], u64be raft id}; the acceptor answers
 * WELCOME or closes with a code (mosaik.md §8): DIFFERENT_NETWORK,
 * GROUP_NOT_FOUND, UNKNOWN_PEER (the dialer syncs its catalog and retries),
 * GROUP_NOT_ALLOWED (not a listed voter, wrong raft id, or validators
 * refuse). After WELCOME a RAFT link carries Raft messages (raft_wire.c),
 * one per frame or split over several (raft_bridge.c); an RPC link
 * carries REQ/RESP messages. RAFT links are kind 3: kind 1 carried
 * libraft's own byte stream through a socketpair and is refused, so a
 * member of the old kind and one of the new never half-talk.
 *
 * An RPC WELCOME carries the member's proof of membership (below).
 *
 * Protocol on MK_ALPN_GROUP_FEED: SUBSCRIBE {network, group, from}; the
 * member answers WELCOME {its applied, proof}, then SNAPSHOT {applied,
 * bytes} and/or CMD {applied, bytes}, one per applied command, in order,
 * forever. Interleaved, LEADER {has, [PeerId]} says whom the member
 * believes leads: right after WELCOME and whenever that changes (replicas
 * move to the leader, which applies a commit first).
 *
 * Proof of membership. Any peer can list a GroupId in its self-signed
 * entry, so the catalog says only who claims to serve a group. The GroupId
 * folds the voter set last (mk_group_id_of): GroupId = derive(base,
 * "voters" ‖ u32le n ‖ voters in ascending byte order). A member proves it
 * is one by sending `base` and the voter list; the dialer recomputes the
 * fold, checks it gives the GroupId it asked for and that the key the TLS
 * handshake authenticated is in the list. Finding another (base, list)
 * that folds to the same GroupId and holds an attacker's key is a BLAKE3
 * second preimage. Nothing is sent to (no command, no query) and nothing
 * is accepted from (no answer, no feed) a peer before its proof checks.
 */
#ifndef MK_GROUP_INTERNAL_H
#define MK_GROUP_INTERNAL_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "mosaik/error.h"
#include "mosaik/group.h"
#include "mosaik/group_client.h"
#include "mosaik/group_fsm.h"
#include "mosaik/group_io.h"
#include "mosaik/group_members.h"

/* ---- wire (group_wire.c) -------------------------------------------------- */

enum {
    MK__G_HELLO = 1,
    MK__G_WELCOME = 2,
    MK__G_REQ = 3,
    MK__G_RESP = 4,
};
enum { MK__LINK_RPC = 2, MK__LINK_RAFT = 3 };
enum { MK__OP_EXEC = 1, MK__OP_QUERY = 2, MK__OP_STATUS = 3, MK__OP_ASSIGN = 4 };
/* ASSIGN's body: the member's PeerId, 1 (voter) or 0 (standby), the
 * signer's PeerId (a listed member), u64le unix ms, and the signer's
 * signature of mk__assign_digest. The requester's link key does not
 * matter: an operator signs with a member's key file from anywhere. */
#define MK__ASSIGN_LEN (MK_ID_LEN + 1 + MK_ID_LEN + 8 + MK_SIG_LEN)
/* How far the signed time may be from the leader's clock. */
#define MK__ASSIGN_SKEW_MS 60000
void mk__assign_digest(const mk_id *group, const uint8_t *body,
                       uint8_t out[32]);
enum {
    MK__F_SUBSCRIBE = 1,
    MK__F_SNAPSHOT = 2,
    MK__F_CMD = 3,
    MK__F_WELCOME = 4, /* {member's applied}: the subscription is accepted */
    MK__F_LEADER = 5,  /* {has, [leader]}: whom the member believes leads */
};
/* A member says something on every subscription at least this often
 * (LEADER again when nothing else went), and a replica lets go of a
 * source it has not heard from for MK__FEED_SILENCE_MS: a member that is
 * stopped, wedged or cut off with its TCP connection still up would
 * otherwise hold its replicas, silent, for as long as the connection
 * lasts (group_feed.c, replica.c). */
#define MK__FEED_KEEPALIVE_MS 1000
#define MK__FEED_SILENCE_MS 5000
#define MK__STATUS_WANT_HASH 1

typedef struct mk__hello {
    uint8_t kind;
    mk_id network, group;
    uint64_t raft_id;
} mk__hello;

void mk__hello_encode(mk_buf *b, const mk__hello *h);
int mk__hello_decode(const uint8_t *p, size_t n, mk__hello *h);

/* ---- proof of membership (group_proof.c) ---------------------------------- */

/* The most voters a group may have (a proof lists them all). */
#define MK__MAX_VOTERS 64

typedef struct mk__proof {
    mk_id base;  /* the GroupId before the voter set is folded in */
    size_t n;
    mk_peer_id voters[MK__MAX_VOTERS]; /* ascending byte order, distinct */
    /* Ticket-gated (mk_group_tickets): `voters` are the seeds, and a
     * member proves it is one by holding a ticket this policy accepts
     * (checked against its entry in the dialer's catalog). */
    bool tickets;
    uint32_t max_voters;
    mk_group_tickets policy;
} mk__proof;

/* The fold that ends every GroupId (the order of `voters` does not
 * matter). MK_EINVAL for a duplicate, none, or more than MK__MAX_VOTERS. */
int mk__group_fold_voters(const mk_id *base, const mk_peer_id *voters,
                          size_t n, mk_id *out);
void mk__proof_encode(mk_buf *b, const mk__proof *p);
/* Reads a proof from `r` (strict: ascending, distinct, bounded). */
int mk__proof_decode(mk_reader *r, mk__proof *p);
/* 0 when `p` folds to `gid` and lists `member`, else MK_ENOT_ALLOWED.
 * For a fixed member list only (p->tickets false). */
int mk__proof_check(const mk__proof *p, const mk_id *gid,
                    const mk_peer_id *member);

/* Ticket-gated groups. The membership validator a proof's policy names
 * (a JWT validator; caller memory, release with
 * mk_ticket_validator_free): 0, MK_EINVAL or MK_ENOMEM. */
int mk__proof_validator(const mk__proof *p, struct mk_ticket_validator *v);
/* The fold that ends a ticket-gated GroupId: derive(base, "tickets" ‖
 * u32le max_voters ‖ the validator's signature ‖ u32le n ‖ seeds in
 * ascending byte order). MK_EINVAL as mk__group_fold_voters. */
int mk__group_fold_tickets(const mk__proof *p, const mk_id *policy,
                           mk_id *out);
/* Either form: 0 when `p` folds to `gid` and `member` is one (listed, or
 * holding a ticket its policy accepts, by `node`'s catalog at `now_ms`),
 * else MK_ENOT_ALLOWED (MK_ENOMEM: undecided). */
int mk__proof_check_member(const mk__proof *p, const mk_id *gid,
                           mk_node *node, const mk_peer_id *member);

typedef struct mk__req {
    uint64_t id;
    uint8_t op;
    uint32_t timeout_ms;
    uint8_t session[MK__SESSION_LEN]; /* EXEC */
    uint64_t seq, ack;                /* EXEC */
    uint8_t level;                    /* QUERY: mk_consistency */
    uint8_t flags;                    /* STATUS */
    const uint8_t *body;              /* EXEC: command, QUERY: query */
    size_t len;
} mk__req;

void mk__req_encode(mk_buf *b, const mk__req *r);
int mk__req_decode(const uint8_t *p, size_t n, mk__req *r);

/* A response. EXEC answers echo the session and seq so the requester
 * finds its command without a table of request ids. `leader` is a hint
 * (has_leader) on MK_ENOT_LEADER. */
typedef struct mk__resp {
    uint64_t id;
    uint8_t op;
    int status;
    uint64_t applied;
    uint8_t session[MK__SESSION_LEN];
    uint64_t seq;
    bool has_leader;
    mk_peer_id leader;
    const uint8_t *body;
    size_t len;
} mk__resp;

void mk__resp_encode(mk_buf *b, const mk__resp *r);
int mk__resp_decode(const uint8_t *p, size_t n, mk__resp *r);

/* What a member says about itself (the body of a STATUS answer). */
/* A STATUS answer is an mk_member_status (group_client.h). Its role byte
 * keeps the numbering it was first written with, libraft's (0
 * unavailable, 1 follower, 2 candidate, 3 leader): members and clients
 * built before the role became a type of ours read the same bytes. An
 * unknown byte reads as unavailable, as tools always printed it. */
void mk__status_encode(mk_buf *b, const mk_member_status *s);
int mk__status_decode(const uint8_t *p, size_t n, mk_member_status *s);

/* Is a status code one a requester should retry (elsewhere or later)? */
bool mk__status_retryable(int status);

/* ---- the node's registry (group_hub.c) ------------------------------------ */

typedef struct mk__hub mk__hub;

/* The node's hub, created (and the ALPNs served) on first use. NULL on
 * MK_ENOMEM or when the ALPNs cannot be served (*rc says). */
mk__hub *mk__hub_get(mk_node *node, int *rc);
int mk__hub_add(mk__hub *h, mk_group *g);
/* Frees the hub with its last group. */
void mk__hub_remove(mk__hub *h, mk_group *g);
/* Frees the node's hub if it has one holding no group: a join that failed
 * after mk__hub_get must not leave an empty one behind. */
void mk__hub_release(mk_node *node);
mk_group *mk__hub_find(mk__hub *h, const mk_id *gid);

/* ---- bonds: links whose peer must keep passing the validators ------------ */

typedef struct mk__bond {
    struct mk__bond *prev, *next;
    mk_link *link;
    mk_peer_id peer;
    int64_t expires_ms;
    bool voter; /* must also be a listed voter */
} mk__bond;

/* Whether `peer` may use group `g`: 0, or the close code to refuse with
 * (MK_CLOSE_UNKNOWN_PEER, MK_CLOSE_GROUP_NOT_ALLOWED). Fills *expires_ms
 * (when it must be checked again) and `why` (MK_ERRMSG_SIZE, may be NULL). */
uint32_t mk__group_admit(mk_group *g, const mk_peer_id *peer, bool voter,
                         int64_t *expires_ms, char *why);
void mk__group_bond_add(mk_group *g, mk__bond *b);
void mk__group_bond_remove(mk_group *g, mk__bond *b);

/* Incoming links the hub accepted for `g` (HELLO checked, WELCOME not yet
 * sent). */
void mk__group_accept_rpc(mk_group *g, mk_link *link);
void mk__group_accept_feed(mk_group *g, mk_link *link, uint64_t from);

/* ---- Raft messages on the wire (raft_wire.c) ---------------------------- */

/* What an encoded message carries after its head: the entries' payloads
 * (AppendEntries) or the snapshot data (InstallSnapshot), borrowed from
 * the message. */
typedef struct mk__rmsg_parts {
    const struct raft_entry *entries;
    unsigned n;
    const void *data;
    size_t data_len;
    size_t payload; /* bytes after the head, in all */
} mk__rmsg_parts;

/* Appends the head of `m` to `head` and says in `parts` what follows it.
 * 0, MK_EINVAL (unknown type) or MK_ENOMEM. */
int mk__rmsg_encode(const struct raft_message *m, mk_buf *head,
                    mk__rmsg_parts *parts);
/* Decodes one whole message (head and payloads) into `m`, allocating with
 * raft_malloc what libraft will own and free (entries and their batch, a
 * configuration, snapshot data). server_id and server_address are left
 * for the caller. 0, MK_EDECODE (and nothing allocated) or MK_ENOMEM. */
int mk__rmsg_decode(const uint8_t *p, size_t len, struct raft_message *m);
/* Frees what a decoded message owns, when libraft did not take it. */
void mk__rmsg_free(struct raft_message *m);

/* ---- the raft transport (raft_bridge.c) ---------------------------------- */

typedef struct mk__rlink mk__rlink;
typedef struct mk__rpeer mk__rpeer;
typedef struct mk__rsend mk__rsend;

typedef struct mk__bridge {
    struct raft_uv_transport t; /* t.impl = this; raft_uv never sends on it */
    mk_group *g;
    uv_loop_t *loop;
    mk__gio *gio;      /* where received messages go; NULL when nowhere */
    mk__rlink *links;  /* every link, dialled or accepted */
    mk__rpeer *peers;  /* members we have sent to */
    mk__rsend *done_head, *done_tail; /* answered, callback not yet made */
    uv_timer_t timer;  /* makes the callbacks; closed last */
    uint32_t retry_ms; /* between failed dials to one member */
    mk_buf scratch;    /* a message's head, reused */
    bool listening, closing, cancelled;
    raft_uv_transport_close_cb close_cb;
} mk__bridge;

void mk__bridge_init(mk__bridge *b, mk_group *g, uv_loop_t *loop);
/* Carries `gio`'s messages from now on (sets its sender). */
void mk__bridge_attach(mk__bridge *b, mk__gio *gio, uint32_t retry_ms);
/* Closes a bridge libraft never closed (it calls mk__group_bridge_closed
 * when done, as a closed one does). */
void mk__bridge_close_unused(mk__bridge *b);
/* The bridge's last handle is closed. */
void mk__group_bridge_closed(mk_group *g);
/* A validated RAFT link from voter `id`: WELCOME it and read its
 * messages. Closes the link when libraft is not listening. */
void mk__bridge_accept(mk__bridge *b, mk_link *link, raft_id id);

/* ---- request links (group_rpc.c) ----------------------------------------- */

typedef struct mk__rpc mk__rpc;

typedef struct mk__rpc_events {
    /* `c` is welcomed by a proven voter (may be NULL): `p` lists the
     * group's voters (valid during the call). */
    void (*welcome)(void *data, mk__rpc *c, const mk__proof *p);
    /* A response arrived on `c`. */
    void (*reply)(void *data, mk__rpc *c, const mk__resp *r);
    /* `c` is gone (refused, failed or closed): requests sent on it will
     * get no answer. It is freed after this returns. */
    void (*down)(void *data, mk__rpc *c);
    void *data;
} mk__rpc_events;

/* Opens (asynchronously) an RPC link to `peer` for group `gid`. NULL when
 * the peer cannot be dialled now (not in the catalog, no memory). */
mk__rpc *mk__rpc_open(mk_node *node, const mk_id *gid, const mk_peer_id *peer,
                      const mk__rpc_events *ev);
/* Queues an encoded REQ (sent once the link is welcomed). 0, MK_ECLOSED,
 * MK_EFULL (too much queued) or MK_ENOMEM. */
int mk__rpc_send(mk__rpc *c, const uint8_t *frame, size_t len);
/* Closes; `down` is not called after this. */
void mk__rpc_close(mk__rpc *c);
const mk_peer_id *mk__rpc_peer(const mk__rpc *c);
/* How the link ended (MK_CLOSE_*; 0 when it never connected), for the
 * `down` callback. */
uint32_t mk__rpc_close_code(const mk__rpc *c);
bool mk__rpc_ready(const mk__rpc *c);

/* Commands a group client sent again, at once, because the one before
 * each was refused at a door and the leader would otherwise hold it
 * (group_client.c, release_held); for tests. */
uint64_t mk__group_client_gap_resends(const mk_group_client *c);

/* ---- the commit feed a member serves (group_feed.c) ---------------------- */

typedef struct mk__feed_sub mk__feed_sub;

typedef struct mk__feed {
    mk_group *g;
    /* Ring of the most recently applied commands: applied numbers
     * [first, first + n). */
    struct mk__feed_item {
        uint8_t *cmd;
        size_t len;
    } *ring;
    size_t cap, head, n, bytes;
    uint64_t first;
    mk__feed_sub *subs;
    /* The leader subscribers were last told of (mk__feed_leader). */
    bool told_has;
    mk_peer_id told;
    int64_t keepalive_due; /* next look for quiet subscriptions */
    size_t n_subs;
    size_t q_total;    /* queued on subscriber links, as last seen */
    size_t snap_bytes; /* snapshot frames queued, not yet drained */
} mk__feed;

void mk__feed_init(mk__feed *f, mk_group *g);
/* A command was applied as number `applied`. */
void mk__feed_push(mk__feed *f, uint64_t applied, const uint8_t *cmd,
                   size_t len);
/* The state was replaced (snapshot install): the ring restarts. */
void mk__feed_reset(mk__feed *f);
/* The member's view of the leader now (called after every loop
 * iteration): subscribers are told when it changed. */
void mk__feed_leader(mk__feed *f, const mk_group_status *st);
/* The group's tick: LEADER again on subscriptions quiet for
 * MK__FEED_KEEPALIVE_MS. */
void mk__feed_tick(mk__feed *f, int64_t now);
/* Closes every subscriber and frees the ring. */
void mk__feed_close(mk__feed *f);
/* Unsent bytes queued on all subscriber links; for tests. */
size_t mk__feed_queued(const mk__feed *f);

/* ---- the group ---------------------------------------------------------- */

typedef struct mk__voter {
    mk_peer_id peer;
    raft_id id;
    char addr[MK_ID_HEX_LEN + 1];
    int64_t heard_ms; /* mono ms of the last Raft message from it */
    /* Ticket-gated: when its ticket was last seen to expire (unix ms; 0
     * not yet judged), to remove a member purged from the catalog. */
    int64_t ticket_expires_ms;
} mk__voter;

/* The members' table of a ticket-gated group has room for this many:
 * seeds, this node, everyone in Raft's configuration, and the ticket
 * holders Raft links were admitted from. Allocated once, so the bridge's
 * pointers into it stay valid during its calls. */
#define MK__TABLE_MAX (2 * MK__MAX_VOTERS)

/* libraft's storage for one run of Raft: raft_uv (`io`), wrapped by gio
 * (what libraft is given), and the data dir path gio keeps. Allocated
 * apart from the group because it must outlive it a little (group.c,
 * store_reap). */
typedef struct mk__store {
    struct raft_io io;
    mk__gio gio;
    uv_timer_t reap;
    char dir[];
} mk__store;

typedef struct mk__op mk__op;
typedef struct mk__qop mk__qop;
typedef struct mk__sess mk__sess;
typedef struct mk__srv mk__srv;
typedef struct mk__done mk__done;
typedef struct mk__gwatch mk__gwatch;
typedef struct mk__fwd mk__fwd;

#define MK__GROUP_METRICS 15

struct mk_group {
    mk_node *node;
    uv_loop_t *loop;
    mk__hub *hub;
    mk_id id;
    mk__proof proof; /* what this member shows dialers (group_proof.c) */
    mk_group_params params;
    struct mk_fsm *fsm;
    mk__voter *voters;
    /* The table: the listed members (the seeds, when ticket-gated) are
     * its first n_seeds rows and never move; a ticket-gated group adds
     * rows after them. */
    size_t n_voters, self, n_seeds;
    const struct mk_ticket_validator **validators;
    size_t n_validators;
    /* Ticket-gated membership (group_tickets.c), or members fixed by
     * the GroupId when `tickets` is false: then `voters` is the list. */
    bool tickets;
    struct mk_ticket_validator member_v; /* the proof's policy */
    int64_t next_member_check;           /* mono ms */
    char errmsg[MK_ERRMSG_SIZE];

    struct raft raft;
    mk__store *store; /* raft_uv wrapped by gio, apart: see group.c */
    char *data_dir;
    /* Storage (group.c "storage"): OK, or failed and Raft stopping,
     * stopped (probing the disk until it works), or refused (the log lost
     * entries: never restarted). */
    int disk;
    uv_timer_t disk_timer;
    uint8_t *initial; /* the adapter's snapshot before anything applied */
    size_t initial_len;
    mk__bridge bridge;
    mk__gfsm gfsm;
    mk__feed feed;
    bool raft_inited, raft_started, raft_closed;
    bool closing;

    /* This handle's session. */
    uint8_t session[MK__SESSION_LEN];
    uint64_t next_seq;

    /* Commands in progress here, by session. */
    mk__sess *sessions;
    size_t remote_ops, remote_bytes; /* those of other sessions */
    /* Leader: commands waiting for room in the in-flight window. */
    mk__op *queue_head, *queue_tail;
    size_t queued;
    size_t inflight_bytes; /* proposed, not yet applied */
    /* size_log: when it looks next, what it saw, what it set. */
    int64_t next_size_log;
    /* No waiter's deadline comes before this (mono ms): the tick walks
     * the ops for expired waiters only then, not every time, since tens
     * of thousands may be in flight. 0: unknown, walk at the next tick. */
    int64_t expire_at;
    uint64_t sized_entries, sized_bytes;
    uint64_t sized_avg;       /* entry bytes seen at the last sizing */
    uint64_t sized_snapshots; /* gfsm.snapshots at the last sizing */
    unsigned log_threshold;
    /* Counters: raft entries and commands this member proposed. */
    uint64_t entries_proposed, commands_proposed;
    /* Strong queries in progress. */
    mk__qop *qops;
    struct raft_barrier barrier;
    bool barrier_busy;
    uint64_t barrier_gen;
    /* Request links to the leader, one per peer. */
    mk__fwd *fwds;
    uint64_t next_req_id;
    /* Accepted request links. */
    mk__srv *srvs;
    /* Links to check when peers change or tickets expire. */
    mk__bond bonds;
    int64_t next_bond_check;
    /* Completions delivered on the next loop iteration. */
    mk__done *done_head, *done_tail;

    /* Membership (group.c "membership"): a configuration change in
     * flight, and when this member last became leader. */
    struct raft_change change;
    bool change_busy;
    /* What the leader keeps between passes (group_members.h). */
    mk__mstate mstate;
    /* The change in flight, as its note will tell it (group_members.h),
     * and who watches the notes applied here. */
    mk_group_member_event note;
    mk_group_member_cb member_cb;
    void *member_data;
    /* A leader whose own ticket ended hands leadership on. */
    struct raft_transfer transfer;
    bool transfer_busy;
    /* The requester of the change in flight, when an operator asked for
     * it (ASSIGN), to answer when libraft is done; NULL otherwise. */
    mk__srv *assign_srv;
    mk__req assign_req;

    /* The fsm's prepare() worker, or NULL (group_prepare.h). */
    struct mk__prep *prep;
    /* The door's: requesters' new commands wait in door_q (newest first)
     * from their arrival to the loop's end, then are checked as one
     * burst, here and on door_help at once (door_drain in group.c). */
    struct mk__prep *door_help;
    struct mk__door_wait *door_q;
    size_t door_n, door_bytes;
    bool door_draining;

    mk__gwatch *watches;
    mk_node_watch *node_watch;
    /* What the watchers last saw. */
    mk_group_status last;
    bool was_leader;
    raft_term seen_term;
    raft_id last_leader;

    /* Its series in the node's registry (group_metrics.c). */
    struct mk__gmetric {
        mk_group *g;
        int field;
        struct mk_metric *m;
    } metrics[MK__GROUP_METRICS];
    struct mk_metric *latency; /* commands taken here, until answered */
    /* mk__group_metrics_clock's reading in this loop iteration, 0 before
     * the first; forgotten after I/O (mk__group_metrics_tick). */
    int64_t metrics_now_us;

    uv_check_t check;     /* after I/O: state changes, completions */
    uv_prepare_t prepare; /* before polling: propose what was queued */
    uv_timer_t tick;      /* deadlines, retries, ticket expiry */
    int open_handles;
    void (*close_cb)(void *data);
    void *close_data;
};

/* group_metrics.c: adds the group's series to its node's registry,
 * labelled with the GroupId and `name` (may be NULL), and removes them. */
void mk__group_metrics_add(mk_group *g, const char *name);
void mk__group_metrics_remove(mk_group *g);
/* Now, for a command's latency: mk_mono_us() as first read in this loop
 * iteration, or 0 (not timed) when the group has no latency series, as
 * on a node with metrics off, so that node reads no clock for it. */
int64_t mk__group_metrics_clock(mk_group *g);
/* Once per loop iteration, after I/O: the next reading is fresh. */
void mk__group_metrics_tick(mk_group *g);
/* A command this member took (from its own handle or a requester)
 * was answered `us` microseconds later. */
void mk__group_metrics_latency(mk_group *g, int64_t us);

/* ---- ticket-gated membership (group_tickets.c) --------------------------- */

/* Whether `peer`'s tickets, in `node`'s catalog, pass the membership
 * policy: 0 with *expires_ms, MK_ENOT_ALLOWED with `why`, or
 * MK_ENOENT when the peer is not in the catalog. */
int mk__member_ticket(const mk_group *g, const mk_peer_id *peer,
                      int64_t *expires_ms, char *why);
/* Puts `peer` in the members' table (it passed the policy); false when
 * its raft id is 0 or another member's, or the table is full. */
bool mk__member_note(mk_group *g, const mk_peer_id *peer);
/* The leader's part, from the tick: adds ticket holders that list the
 * GroupId as standbys, demotes and removes members whose tickets no
 * longer pass, one configuration change at a time. Returns true when it
 * started a change (the fixed-list rules then wait). */
bool mk__members_check(mk_group *g, int64_t now);
/* Every server in Raft's configuration gets a row in the table (each
 * member follows the configuration as the log brings it). */
void mk__members_sync(mk_group *g);
/* The configuration's servers (0 before Raft started). */
size_t mk__members_in_config(const mk_group *g);

/* group.c, for group_tickets.c: whether this member leads now, and the
 * callback of every configuration change (g->change). */
bool mk__group_leading(mk_group *g);
void mk__group_change_done(struct raft_change *req, int status);
/* The note the membership change about to start leaves in the log once it
 * commits (group_members.h), by the leader's own word: `change` is an
 * mk_member_change, or 0 for a change worth no note. */
void mk__group_note_leader_change(mk_group *g, const mk_peer_id *member,
                                  int change);

/* For the bridge: is `peer` a listed voter? Its raft id in *id. */
bool mk__group_voter(const mk_group *g, const mk_peer_id *peer, raft_id *id);
/* The voter with raft id `id`, or NULL. */
const mk__voter *mk__group_voter_by_id(const mk_group *g, raft_id id);
/* The raft id of a PeerId: its first 8 bytes, big-endian. */
raft_id mk__raft_id_of(const mk_peer_id *peer);

#endif
