/* Confluences: the SDK for cross-citizen organisms (SPEC §1, §5).
 *
 * A confluence is an organism whose identity folds two or more citizen
 * references. It reads the public surfaces of the citizens it spans,
 * folds what it reads through a deterministic state machine run by its
 * own committee, and commits facts of its own, keyed by
 * (citizen_id, clock event), each carrying evidence pointers back to the
 * upstream facts it read, so anyone can audit a commit against the
 * citizens' own data. Nothing about it depends on a coalition: two
 * coalitions that reference the same ConfluenceConfig name the same
 * committee and the same log.
 *
 * A contributor declares a confluence as a co_confluence_def:
 *   - the ConfluenceConfig (name, ordered spanned citizens, content, ACL;
 *     coalition/config.h); the committee is acl.issuers, read as PeerIds,
 *     exactly as for modules (coalition/module.h);
 *   - one upstream surface per spanned citizen, in the config's order
 *     (lattices, then organisms): a surface name, whose StreamId is
 *     derive(citizen stable id, name), and a decoder that validates a
 *     datum and names its clock event; the SDK subscribes to every
 *     producer of each;
 *   - a state machine (struct co_confluence_machine): fold one upstream
 *     fact, act on one clock tick, emit commits;
 *   - its stall behaviour: when a spanned citizen's last fact is more
 *     than `bound_ticks` clock ticks old (in ticks the confluence folded
 *     since the fact, the current one included), commit with the evidence
 *     of the citizens still delivering (CO_STALL_PARTIAL) or commit
 *     nothing until it is back (CO_STALL_HALT);
 *   - optionally a clock: the Almanac of a named coalition, whose ticks
 *     enter the log as facts (SPEC §4: confluences may key facts by tick).
 *
 * The SDK derives every id from the config: the fingerprint
 * (co_confluence_fingerprint), the committee root derive(fp, "committee"),
 * the GroupId from that root and the state-machine signature, and each
 * public surface derive(fp, name) (the one surface the SDK gives every
 * confluence is "commits", the log of its commits, read through
 * co_confluence_read). A typo anywhere derives other ids and surfaces as
 * MK_ECONNECT_TIMEOUT, never "not found".
 *
 * How facts reach the log: every committee member subscribes to the
 * upstream surfaces and to the clock and keeps what it observes; the
 * leader proposes its observations, in the order it observed them, as
 * signed commands (followers' observations are redundant; a new leader
 * proposes what it holds that the log does not). The state machine
 * accepts a fact only when its clock event is newer than the last one
 * folded from that citizen, so re-proposals after a leader change are
 * harmless. The log order is the one order every replica folds in.
 *
 * Everything runs on the node's loop; callbacks arrive there. Nothing is
 * thread-safe.
 */
#ifndef CO_CONFLUENCE_H
#define CO_CONFLUENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/config.h"
#include "coalition/identity.h"
#include "coalition/module.h"
#include "mosaik/codec.h"
#include "mosaik/group.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"
#include "mosaik/stream.h"

#define CO_CONFLUENCE_MAX_SOURCES 8     /* spanned citizens */
#define CO_CONFLUENCE_MAX_FACT 1024     /* bytes of one upstream fact */
#define CO_CONFLUENCE_MAX_BODY 1024     /* bytes of one commit body */
#define CO_CONFLUENCE_MAX_EMIT 8        /* commits per fold or tick */
/* Commits a replica keeps (older ones are counted, not kept): a replica's
 * snapshot must fit one link frame. Consumers that need every commit
 * follow the log continuously. */
#define CO_CONFLUENCE_KEEP 1024
#define CO_CONFLUENCE_MACHINE_VERSION 1
/* The SDK's part of every confluence's state-machine signature. */
#define CO_CONFLUENCE_SIGNATURE "coalition.confluence/1"
/* The public surface every confluence has: its commits. */
#define CO_CONFLUENCE_COMMITS "commits"

/* A clock event: the position of a fact in its citizen's own clock.
 * Ordered by epoch, then seq. Almanac ticks are {0, tick seq}. */
typedef struct co_clock_event {
    uint64_t epoch;
    uint64_t seq;
} co_clock_event;

/* <0, 0, >0. */
int co_clock_event_cmp(const co_clock_event *a, const co_clock_event *b);

typedef enum co_stall_mode {
    CO_STALL_PARTIAL = 0, /* commit with the live citizens' evidence */
    CO_STALL_HALT = 1,    /* commit nothing while one is stalled */
} co_stall_mode;

/* "partial" or "halt". */
const char *co_stall_mode_name(co_stall_mode m);

/* One spanned citizen's upstream surface. */
typedef struct co_confluence_surface {
    const char *name; /* e.g. "prices"; borrowed */
    /* Validates one datum (exactly `len` bytes) and gives its clock event.
     * 0, or MK_EDECODE for a datum the confluence must not fold. Pure: it
     * runs on every replica. */
    int (*event)(const uint8_t *fact, size_t len, co_clock_event *out);
} co_confluence_surface;

/* ---- the contributor's state machine ----------------------------------- */

/* What a fold or tick sees and emits through; valid only during the
 * call. */
typedef struct co_confluence_ctx co_confluence_ctx;

typedef struct co_confluence_def co_confluence_def;

/* A versioned vtable, in the style of struct mk_fsm. Every function must
 * depend only on its state and arguments: every replica runs it on the
 * same inputs in the same order. Functions that may be NULL say so. */
struct co_confluence_machine {
    int version;           /* CO_CONFLUENCE_MACHINE_VERSION */
    const char *signature; /* e.g. "fx-correlator/1"; folds into the
                              GroupId, so two implementations never share
                              a committee */
    /* Creates the per-replica state (*state may stay NULL for a stateless
     * machine). 0 or a negative code. May be NULL. */
    int (*init)(void **state, const co_confluence_def *def);
    void (*free)(void *state); /* may be NULL */
    /* One upstream fact from spanned citizen `src`, already validated by
     * its surface's decoder; co_confluence_latest(ctx, src) already
     * returns it. May emit. MK_EDECODE refuses the fact (the SDK forgets
     * it and anything emitted; the machine must not have changed its
     * state); any other non-zero return is a bug that stops the group.
     * May be NULL. */
    int (*fold)(void *state, co_confluence_ctx *ctx, size_t src,
                const uint8_t *fact, size_t len);
    /* One clock tick. co_confluence_latest(ctx, i) returns only citizens
     * within the stall bound; the SDK has already applied the stall mode
     * (under CO_STALL_HALT tick() is not called while one is stalled). May
     * emit; a non-zero return stops the group. May be NULL. */
    int (*tick)(void *state, co_confluence_ctx *ctx, uint64_t seq);
    /* The machine's own state, for snapshots (NULL for stateless). */
    int (*snapshot)(void *state, mk_buf *out);
    int (*restore)(void *state, const uint8_t *snap, size_t len);
    /* Writes a commit body as one JSON object (for tools). May be NULL. */
    int (*describe)(const uint8_t *body, size_t len, char *out, size_t cap);
};

/* The latest fact of spanned citizen `src` that counts now: true with
 * its bytes and clock event (valid during the call); false when it has
 * none or, during tick(), when it is past the stall bound. */
bool co_confluence_latest(const co_confluence_ctx *ctx, size_t src,
                          const uint8_t **fact, size_t *len,
                          co_clock_event *event);

/* The clock's latest tick seq (0 before any). */
uint64_t co_confluence_clock(const co_confluence_ctx *ctx);

/* Emits one commit keyed by (citizen_id of spanned citizen `key_src`,
 * `key`) with `body` (copied) and, for every bit i set in `evidence`, an
 * evidence pointer to the latest fact of citizen i (which must count now:
 * see co_confluence_latest). Returns 0, MK_EINVAL (bad source, a bit for
 * a citizen with no counting fact, a body over CO_CONFLUENCE_MAX_BODY, or
 * more than CO_CONFLUENCE_MAX_EMIT commits in one call) or MK_ENOMEM.
 * The commit lands in the log only when the call that emitted it
 * succeeds. */
int co_confluence_emit(co_confluence_ctx *ctx, size_t key_src,
                       co_clock_event key, const void *body, size_t len,
                       uint32_t evidence);

/* ---- the declaration --------------------------------------------------- */

struct co_confluence_def {
    const co_confluence_config *config;          /* borrowed */
    const struct co_confluence_machine *machine; /* borrowed */
    /* One per spanned citizen, lattices then organisms, config order. */
    co_confluence_surface surfaces[CO_CONFLUENCE_MAX_SOURCES];
    size_t n_surfaces;
    co_stall_mode stall;
    uint32_t bound_ticks; /* 0: a citizen never counts as stalled */
    /* The coalition whose Almanac is the clock, by name; "" for a
     * confluence without a clock. Only hosts use it: it decides which
     * Almanac members follow, never an id. */
    char clock[128];
};

/* Everything derived from a definition. */
typedef struct co_confluence_source {
    mk_id stable_id;       /* full 32 bytes, for evidence pointers */
    co_citizen_id citizen; /* stable_id[0..20], the commit key */
    mk_id stream;          /* derive(stable_id, surface name) */
} co_confluence_source;

typedef struct co_confluence_info {
    mk_id fingerprint;    /* co_confluence_fingerprint */
    mk_id committee_root; /* derive(fingerprint, "committee") */
    mk_id signature;      /* the state machine's: SDK, machine, surfaces,
                             stall mode and bound */
    mk_id group;          /* the committee's GroupId */
    mk_id commits;        /* derive(fingerprint, "commits") */
    mk_peer_id committee[CO_MODULE_MAX_COMMITTEE];
    size_t n_committee;
    co_confluence_source src[CO_CONFLUENCE_MAX_SOURCES];
    size_t n_sources;
} co_confluence_info;

/* Derives `out` from `def`. 0, or CO_ECONFIG (reason in err,
 * CO_ERRMSG_SIZE, may be NULL): fewer than two spanned citizens, a
 * surface count that does not match them, acl.issuers that are not 1..15
 * distinct PeerIds, no machine or one of another version. */
int co_confluence_info_get(const co_confluence_def *def,
                           co_confluence_info *out, char *err);

/* A `key=value` parameter of the confluence's content string
 * ("fx-correlator/v1;stall=partial;bound_ticks=4"). The string form
 * returns 1 and copies the value (NUL-terminated) when present, 0 when
 * absent, -1 when it does not fit `cap`. The number form returns 0 (the
 * value, or `dflt` when absent) or -1 when malformed. */
int co_confluence_param(const co_confluence_config *c, const char *key,
                        char *out, size_t cap);
int co_confluence_param_u64(const co_confluence_config *c, const char *key,
                            uint64_t dflt, uint64_t *out);

/* ---- commits ----------------------------------------------------------- */

typedef enum co_commit_kind {
    CO_COMMIT_FACT = 1,    /* a fact the machine emitted */
    CO_COMMIT_RETIRED = 2, /* the retirement marker, always the last */
} co_commit_kind;

/* {full stable id, surface, clock event, blake3 of the fact's bytes}. */
typedef struct co_evidence {
    mk_id citizen;
    mk_id surface;
    co_clock_event event;
    mk_id hash;
} co_evidence;

typedef struct co_confluence_commit {
    uint64_t index; /* 1-based position in the confluence's log */
    co_commit_kind kind;
    bool partial;   /* emitted while a spanned citizen was stalled */
    co_citizen_id key_citizen;
    co_clock_event key_event;
    const uint8_t *body;
    size_t body_len;
    co_evidence evidence[CO_CONFLUENCE_MAX_SOURCES];
    size_t n_evidence;
} co_confluence_commit;

/* The canonical bytes of a commit (what "identical commits" compares):
 *   u8 kind ‖ u8 partial ‖ varint index ‖ citizen[20] ‖ varint epoch ‖
 *   varint seq ‖ bytes body ‖ varint n ‖ n × (citizen[32] surface[32]
 *   varint epoch varint seq hash[32])
 * Returns 0 or out->err. */
int co_confluence_commit_encode(const co_confluence_commit *c, mk_buf *out);

/* Decodes exactly `len` bytes; body points into `bytes`. 0 or
 * MK_EDECODE. */
int co_confluence_commit_decode(co_confluence_commit *c, const uint8_t *bytes,
                                size_t len);

/* The retirement marker's body: {component, reason, successor?}. */
typedef struct co_confluence_retirement {
    bool retired;
    mk_id component; /* the confluence's fingerprint */
    char reason[256];
    bool has_successor;
    mk_id successor;
} co_confluence_retirement;

/* Reads a CO_COMMIT_RETIRED commit's body. 0 or MK_EDECODE. */
int co_confluence_retirement_of(const co_confluence_commit *c,
                                co_confluence_retirement *out);

/* ---- lag and stall state ----------------------------------------------- */

typedef struct co_confluence_lag {
    bool has_fact;          /* anything folded from this citizen yet */
    co_clock_event last;    /* the last fact folded */
    uint64_t facts;         /* facts folded */
    uint64_t at_tick;       /* the clock's seq when it was folded */
    uint64_t ticks_behind;  /* ticks folded since: how many ticks old the
                               fact is; stalled above bound_ticks */
    int64_t observed_ms;    /* the proposer's clock when it observed the
                               fact (advisory) */
    int64_t age_ms;         /* now - observed_ms, by the caller's clock */
    bool live;              /* within the stall bound at the latest tick */
} co_confluence_lag;

typedef struct co_confluence_status {
    co_stall_mode stall;
    uint32_t bound_ticks;
    uint64_t tick;            /* the latest tick folded (0: none) */
    uint64_t commits;         /* commits ever (the last index) */
    uint64_t partial_commits;
    uint64_t halted_ticks;    /* ticks that committed nothing */
    bool stalled;             /* the latest tick had a citizen past the
                                 bound (partial: committed without it;
                                 halt: committed nothing) */
    uint64_t stalled_since;   /* first tick of the current stall */
    bool retired;
    size_t n_sources;
    co_confluence_lag lag[CO_CONFLUENCE_MAX_SOURCES];
} co_confluence_status;

/* ---- reading (integrators) --------------------------------------------- */

typedef struct co_confluence_reader co_confluence_reader;

/* status 0: up to date (first call) or new commits (later calls).
 * MK_ECONNECT_TIMEOUT: no committee member answered by the deadline (a
 * wrong name, citizen, order, content or committee derives another
 * GroupId, which surfaces exactly so); the reader keeps trying and may
 * still call with 0 later. CO_ERETIRED: the retirement marker was
 * committed (co_confluence_reader_retirement names any successor). */
typedef void (*co_confluence_cb)(co_confluence_reader *r, int status,
                                 void *data);

/* Follows the confluence's log as a read-only replica of its committee.
 * `def` is copied (what it points to is borrowed and must outlive the
 * reader). Returns 0 and *out (the callback follows), or a negative code
 * and never calls it: CO_ECONFIG (reason in err), MK_ENOMEM. */
int co_confluence_read(mk_node *net, const co_confluence_def *def,
                       uint32_t timeout_ms, co_confluence_cb cb, void *data,
                       co_confluence_reader **out, char *err);

/* Stops following; `done` (may be NULL) runs once it is freed. */
void co_confluence_close(co_confluence_reader *r, mk_close_cb done,
                         void *data);

const co_confluence_info *co_confluence_reader_info(
    const co_confluence_reader *r);
/* Commits ever made (the last index; 0 before any). */
uint64_t co_confluence_count(const co_confluence_reader *r);
/* Commit `index` when still kept: 0 with *out (valid until the next
 * callback), or MK_ENOENT. */
int co_confluence_get(const co_confluence_reader *r, uint64_t index,
                      const co_confluence_commit **out);
void co_confluence_reader_status(const co_confluence_reader *r,
                                 co_confluence_status *out);
void co_confluence_reader_retirement(const co_confluence_reader *r,
                                     co_confluence_retirement *out);

/* Asks the committee to retire the confluence: it commits the marker
 * {fingerprint, reason, successor?} as its last commit and folds nothing
 * more. `member` must be on the committee. `done` gets 0 once committed,
 * CO_ECONFIG when refused (not a member, already retired),
 * MK_ECONNECT_TIMEOUT. Returns 0 (done follows) or a negative code. */
int co_confluence_retire(mk_node *net, const co_confluence_def *def,
                         const char *reason, const mk_id *successor,
                         const mk_keypair *member, uint32_t timeout_ms,
                         void (*done)(int status, void *data), void *data,
                         char *err);

/* ---- auditing ---------------------------------------------------------- */

/* One upstream fact as a consumer holds it from the citizen itself. */
typedef struct co_upstream_fact {
    size_t src; /* which spanned citizen */
    const uint8_t *bytes;
    size_t len;
} co_upstream_fact;

/* Matches every evidence pointer of `c` to one of `facts`: the pointer
 * must name a spanned citizen and its surface, at most once each, and a
 * fact of that citizen with the same clock event must be among `facts`
 * and hash to the pointer's hash. On success matched[i] is the fact for
 * citizen i, or NULL when the commit has no evidence from it. Returns 0,
 * MK_ENOENT (no such fact given), MK_EHASH_MISMATCH (the evidence does
 * not match the upstream fact) or CO_EUNVERIFIED (a pointer to something
 * the confluence does not span), with a reason in `why` (may be NULL,
 * else CO_ERRMSG_SIZE). */
int co_confluence_match_evidence(const co_confluence_def *def,
                                 const co_confluence_info *info,
                                 const co_confluence_commit *c,
                                 const co_upstream_fact *facts, size_t n,
                                 const co_upstream_fact **matched,
                                 char *why);

/* ---- replay -----------------------------------------------------------------
 * The SDK's state machine as an mk_fsm: what committee members, replicas
 * and auditors run. Replaying a confluence's log (its commands, in order)
 * through a fresh one reproduces its commits byte for byte. */

/* 0, CO_ECONFIG (err) or MK_ENOMEM. co_confluence_fsm_free releases. */
int co_confluence_fsm_init(struct mk_fsm *fsm, const co_confluence_def *def,
                           char *err);
void co_confluence_fsm_free(struct mk_fsm *fsm);
const co_confluence_info *co_confluence_fsm_info(const struct mk_fsm *fsm);
uint64_t co_confluence_fsm_count(const struct mk_fsm *fsm);
/* As co_confluence_get. */
int co_confluence_fsm_get(const struct mk_fsm *fsm, uint64_t index,
                          const co_confluence_commit **out);
void co_confluence_fsm_status(const struct mk_fsm *fsm, int64_t now_ms,
                              co_confluence_status *out);
void co_confluence_fsm_retirement(const struct mk_fsm *fsm,
                                  co_confluence_retirement *out);

/* Command kinds (the first byte of every command). */
enum {
    CO_CONFLUENCE_CMD_FACT = 1, /* src, fact, observed_ms, member, sig */
    CO_CONFLUENCE_CMD_TICK = 2, /* seq, stamp_ms, member, sig */
    CO_CONFLUENCE_CMD_RETIRE = 0x7f, /* as every module's retirement */
};

/* The largest command a confluence committee takes at the door (its
 * group's max_command_bytes): a FACT of CO_CONFLUENCE_MAX_FACT bytes —
 * kind, src (a varint, at most 10), the fact (2-byte length),
 * observed_ms, member, signature. TICK is 115 bytes, RETIRE 387. */
#define CO_CONFLUENCE_MAX_COMMAND                                             \
    (1 + 10 + (2 + CO_CONFLUENCE_MAX_FACT) + 8 + 32 + 64)

/* Encodes the commands a member proposes, signed by `member` for the
 * machine `info->signature` (a command signed for one confluence cannot
 * be replayed into another). Results of applying them: u8 1 (folded) or
 * 0 (refused: not a member, bad signature, not newer than what was
 * folded, retired, malformed), then varint commits. What needs no state
 * (malformed, a fact its surface cannot read, a signer off the
 * committee, a bad signature) is refused at the member it reaches
 * first, before it is logged: the status is then MK_EDECODE,
 * MK_ENOT_ALLOWED or MK_EBAD_SIGNATURE. */
void co_confluence_cmd_fact(mk_buf *out, const co_confluence_info *info,
                            size_t src, const uint8_t *fact, size_t len,
                            int64_t observed_ms, const mk_keypair *member);
void co_confluence_cmd_tick(mk_buf *out, const co_confluence_info *info,
                            uint64_t seq, int64_t stamp_ms,
                            const mk_keypair *member);
void co_confluence_cmd_retire(mk_buf *out, const co_confluence_info *info,
                              const char *reason, const mk_id *successor,
                              const mk_keypair *member);

/* ---- the catalog of commissioned confluences --------------------------- */

/* How a host or a tool finds the implementation of a confluence it meets
 * in a coalition file: by the first component of its content string
 * ("fx-correlator/v1;…" → "fx-correlator"). */
typedef struct co_confluence_impl {
    const char *name; /* the content prefix before '/' */
    /* Fills `out` from the config (parsing its content parameters).
     * 0 or CO_ECONFIG (err). */
    int (*define)(const co_confluence_config *cfg, co_confluence_def *out,
                  char *err);
} co_confluence_impl;

/* The implementations this library ships (fx-correlator). */
extern const co_confluence_impl *const co_confluence_builtin[];
extern const size_t co_confluence_n_builtin;

/* Defines `cfg` with the implementation its content names among `impls`
 * (NULL: the built-ins). 0, MK_ENOENT (no implementation: err says which
 * name was looked for) or CO_ECONFIG. */
int co_confluence_define(const co_confluence_config *cfg,
                         const co_confluence_impl *const *impls,
                         size_t n_impls, co_confluence_def *out, char *err);

/* The coalition's confluence called `name` (modules included), or NULL. */
const co_confluence_config *co_coalition_confluence(
    const co_coalition_config *c, const char *name);

/* ---- hosting (committee members) --------------------------------------- */

typedef struct co_confluence_member co_confluence_member;

typedef struct co_confluence_member_config {
    mk_node *node;          /* borrowed */
    mk_streams *streams;    /* borrowed: the node's streams service */
    const co_confluence_def *def; /* copied; its pointers borrowed */
    /* The coalition whose Almanac is the clock (borrowed); required when
     * def->clock is not empty, and must carry that name and an Almanac. */
    const co_coalition_config *clock;
    /* The node's; the Raft log goes under groups/<GroupId>. Consensus
     * timing is always the default: it folds into the GroupId, and
     * readers derive the id with the defaults. */
    const char *data_dir;
    void (*log)(const char *level, const char *line, void *data);
    void *log_data;
} co_confluence_member_config;

/* Joins the committee (this node must be on it), subscribes to every
 * spanned citizen's surface and to the clock, and proposes observations
 * while it leads. 0 and *out, or a negative code with err: CO_ECONFIG,
 * MK_EINVAL (not a member; a clock that is missing or misnamed), or the
 * group's join error. */
int co_confluence_member_open(const co_confluence_member_config *cfg,
                              co_confluence_member **out, char *err);

mk_group *co_confluence_member_group(const co_confluence_member *m);
const struct mk_fsm *co_confluence_member_fsm(const co_confluence_member *m);

/* What to commit on the way out. */
typedef struct co_confluence_retire_req {
    const char *reason;
    const mk_id *successor; /* NULL: none */
} co_confluence_retire_req;

/* Stops: when `retire` is given, first commits the retirement marker
 * (waiting at most a few seconds for the committee), then unsubscribes,
 * leaves the group (its log stays), frees and calls `cb` (may be NULL). */
void co_confluence_member_close(co_confluence_member *m,
                                const co_confluence_retire_req *retire,
                                mk_close_cb cb, void *data);

/* A daemon's view: every confluence of a coalition (modules aside) whose
 * implementation is known and whose committee lists this node. */
typedef struct co_confluence_host co_confluence_host;

typedef struct co_confluence_host_config {
    mk_node *node;                        /* borrowed */
    mk_streams *streams;                  /* borrowed */
    const co_coalition_config *coalition; /* borrowed; also the clock */
    const char *data_dir;
    const co_confluence_impl *const *impls; /* NULL: the built-ins */
    size_t n_impls;
    void (*log)(const char *level, const char *line, void *data);
    void *log_data;
} co_confluence_host_config;

/* Starts a member for each such confluence (logging why any other is
 * skipped). 0 and *out (possibly hosting none), or a negative code with
 * err when one it should host cannot start. */
int co_confluence_host_open(const co_confluence_host_config *cfg,
                            co_confluence_host **out, char *err);
size_t co_confluence_host_count(const co_confluence_host *h);
co_confluence_member *co_confluence_host_member(const co_confluence_host *h,
                                                size_t i);
void co_confluence_host_close(co_confluence_host *h, mk_close_cb cb,
                              void *data);

#endif /* CO_CONFLUENCE_H */
