/* Internal: a worker thread that runs an fsm's prepare() over the commands
 * of entries as this member writes them to its log, or over commands a
 * member's door is about to check.
 *
 * A follower learns an entry when the leader replicates it and applies it
 * only once it commits, at least a round trip and a disk write later; the
 * costly, state-free part of applying (a module's signature checks) can
 * run in that gap on the other core instead of on the loop, which runs
 * Raft and every link too. The loop hands over a copy of each entry and
 * never waits: when the worker is behind by more than a bound, entries
 * are skipped and apply() does the work itself, as it always may.
 *
 * A second worker may serve as a member's door helper, taking single
 * commands (mk__prep_push_cmd): the loop checks a burst of requests from
 * the oldest on while the helper, handed them newest first, works back
 * towards it, so the two meet in the middle whatever share of the other
 * core the helper gets. */
#ifndef MK_GROUP_PREPARE_H
#define MK_GROUP_PREPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "mosaik/group.h"

typedef struct mk__prep mk__prep;

/* Starts the worker for `fsm` (borrowed: it must outlive mk__prep_stop),
 * or returns NULL when `fsm` has no prepare() or no thread could start
 * (then nothing is prepared; nothing else changes). A door helper (`door`)
 * runs at the loop's priority, an entries worker below it. */
mk__prep *mk__prep_start(struct mk_fsm *fsm, bool door);

/* Queues a copy of one log entry's bytes (a plain or a batch envelope).
 * Never blocks on the worker. `p` may be NULL. */
void mk__prep_push(mk__prep *p, const void *entry, size_t len);

/* Queues a copy of one command. */
void mk__prep_push_cmd(mk__prep *p, const void *cmd, size_t len);

/* Drops what is queued and not yet started: the loop has checked it. */
void mk__prep_drop(mk__prep *p);

/* Stops the worker (what is queued is dropped), joins it and frees. */
void mk__prep_stop(mk__prep *p);

#endif /* MK_GROUP_PREPARE_H */
