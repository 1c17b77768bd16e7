/* Internal: a worker thread that runs an fsm's prepare() over the commands
 * of entries as this member writes them to its log.
 *
 * A follower learns an entry when the leader replicates it and applies it
 * only once it commits, at least a round trip and a disk write later; the
 * costly, state-free part of applying (a module's signature checks) can
 * run in that gap on the other core instead of on the loop, which runs
 * Raft and every link too. The loop hands over a copy of each entry and
 * never waits: when the worker is behind by more than a bound, entries
 * are skipped and apply() does the work itself, as it always may. */
#ifndef MK_GROUP_PREPARE_H
#define MK_GROUP_PREPARE_H

#include <stddef.h>

#include "mosaik/group.h"

typedef struct mk__prep mk__prep;

/* Starts the worker for `fsm` (borrowed: it must outlive mk__prep_stop),
 * or returns NULL when `fsm` has no prepare() or no thread could start
 * (then nothing is prepared; nothing else changes). */
mk__prep *mk__prep_start(struct mk_fsm *fsm);

/* Queues a copy of one log entry's bytes (a plain or a batch envelope).
 * Never blocks on the worker. `p` may be NULL. */
void mk__prep_push(mk__prep *p, const void *entry, size_t len);

/* Stops the worker (what is queued is dropped), joins it and frees. */
void mk__prep_stop(mk__prep *p);

#endif /* MK_GROUP_PREPARE_H */
