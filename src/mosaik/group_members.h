/* Internal: the membership logic of a group, apart from the loop and the
 * links, so the deterministic simulator (tests/sim) drives the very code
 * a leader runs.
 *
 * Three pieces:
 *   - when a leader may propose a configuration change at all
 *     (mk__members_may_change): one at a time, and only once it has
 *     committed an entry of its own term. The second rule is what makes
 *     one-server-at-a-time changes safe across leader changes: without
 *     it, a new leader's change can commit next to a deposed leader's
 *     uncommitted one and two majorities of different configurations
 *     can elect two leaders (Ongaro, "bug in single-server membership
 *     changes", raft-dev 2015);
 *   - what the leader changes by itself (mk__members_plan): a voter
 *     silent for replace_after_ms is demoted once a standby it hears
 *     from can take its place, then a standby is promoted;
 *   - the membership note: after a change commits, the leader writes
 *     what it was and who asked for it (an operator's signed ASSIGN, or
 *     itself) into the log as an entry of its own kind (group_fsm.h,
 *     MK__ENV_NOTE), so every member learns the same facts at the same
 *     place in the log (mk_group_watch_members).
 */
#ifndef MK_GROUP_MEMBERS_H
#define MK_GROUP_MEMBERS_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/group.h"

/* ---- when ------------------------------------------------------------- */

/* Whether `r` may propose a configuration change now: it leads, no change
 * is uncommitted in its log, and its commit index is at an entry of its
 * current term. */
bool mk__members_may_change(const struct raft *r);

/* The term of entry `index` in `r`'s log (or of its last snapshot), 0
 * when the log no longer or not yet holds it. */
raft_term mk__members_term_at(const struct raft *r, raft_index index);

/* ---- what ------------------------------------------------------------- */

/* One listed member as the leader sees it. */
typedef struct mk__mview {
    int role;         /* RAFT_VOTER, RAFT_STANDBY, or -1: not configured */
    int64_t heard_ms; /* monotonic ms of its last Raft message */
    bool self;        /* the leader itself */
} mk__mview;

/* What the leader keeps between passes: since when it leads, since when
 * fewer than max_voters vote (0: not), and whether it demoted a silent
 * voter itself and owes a promotion. */
typedef struct mk__mstate {
    int64_t leading_since, short_since;
    bool refill;
} mk__mstate;

typedef struct mk__mparams {
    unsigned max_voters;
    int64_t replace_after_ms;
    int64_t alive_ms; /* a standby heard within this is alive */
} mk__mparams;

/* The change to make now, if any: member index `member` (-1: none) to
 * `role`. */
typedef struct mk__mplan {
    int member;
    int role;
} mk__mplan;

/* One pass, for a member that leads and may change (see above); `st`
 * is updated. A leader that has not led for replace_after_ms yet has
 * heard from no one and plans nothing. */
mk__mplan mk__members_plan(mk__mstate *st, const mk__mview *v, size_t n,
                           const mk__mparams *p, int64_t now);
/* After acting on a plan: `started` when libraft took the change. */
void mk__members_planned(mk__mstate *st, const mk__mplan *plan,
                         bool started);

/* Whether an operator may move member `i` to `role` (-1: out of the
 * configuration): 1 when it has that role already, 0 when it may,
 * MK_EINVAL when it would break a limit: more than max_voters voters,
 * none, the leader demoted or removed (move leadership first), a voter
 * removed (demote it first), or a member already out. */
int mk__members_assign_check(const mk__mview *v, size_t n, size_t i,
                             int role, unsigned max_voters);

/* ---- the note ------------------------------------------------------------ */

/* Body of a note: u8 version (1) ‖ u8 change (mk_member_change) ‖
 * u8 by_operator ‖ u8 0 ‖ u64le index ‖ member[32] ‖ by[32] ‖
 * u64le at_unix_ms ‖ signature[64] (zeros when the leader acted). */
#define MK__NOTE_LEN (4 + 8 + 32 + 32 + 8 + 64)
#define MK__NOTE_VERSION 1

void mk__note_encode(const mk_group_member_event *ev,
                     uint8_t out[MK__NOTE_LEN]);
/* 0, or MK_EDECODE for anything mk__note_encode would not write. */
int mk__note_decode(const uint8_t *body, size_t len,
                    mk_group_member_event *out);

/* The ASSIGN role byte an operator signed for `change` (1 voter,
 * 0 standby, 2 removed), or -1 for a change no operator asks for. */
int mk__note_assign_role(mk_member_change change);

#endif /* MK_GROUP_MEMBERS_H */
