/* The committee rotation of `coalition demo` (tools/cmd_demo.c): midway
 * through the run an operator rotates a module committee, and the
 * Chronicle records it.
 *
 * The demo's Almanac lists four members and takes three voters
 * ("voters=3" in its content), so one member is a standby. Acting as an
 * operator (a member's key signs, as `coalition group demote|promote`
 * does), the rotation asks a member who leads and who votes, demotes a
 * voter that does not lead, then promotes the standby: two signed ASSIGN
 * requests, one change at a time. The committee keeps ticking throughout.
 * Each change is noted in the committee's log and the members that also
 * run the Chronicle record it there as a `committee.change`
 * (docs/modules.md); demo_rotation_check looks for both records inside
 * the Chronicle's verified head.
 *
 * How the demo calls it, all on the node's loop:
 *
 *   demo_rotation_start(node, &DEMO_COALITION, CO_MODULE_ALMANAC,
 *                       &member_key, &member0_id, after_ms, done, d, &r)
 *       once the integrator's node is up;
 *   demo_rotation_check(r, chronicle_reader)
 *       whenever it looks at the Chronicle (cheap: a walk of its entries);
 *   demo_rotation_get(r, &res)
 *       for the figures (the JSON's "rotation" object);
 *   demo_rotation_close(r)
 *       before the node closes: pending requests are cancelled and the
 *       rest is freed as the loop runs.
 */
#ifndef CO_TOOLS_DEMO_ROTATION_H
#define CO_TOOLS_DEMO_ROTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/chronicle.h"
#include "coalition/config.h"
#include "mosaik/key.h"
#include "mosaik/node.h"

typedef struct demo_rotation demo_rotation;

typedef struct demo_rotation_result {
    bool started;     /* the first request went out */
    bool done;        /* both changes committed */
    mk_peer_id out;   /* the voter demoted (valid once done) */
    mk_peer_id in;    /* the standby promoted (valid once done) */
    int64_t took_ms;  /* from the first request to the promotion */
    int attempts;     /* requests sent, retries included */
    size_t changes;   /* committee.change entries about this committee */
    bool recorded;    /* both changes are in the Chronicle's verified head */
    char reason[160]; /* the last refusal or failure, if any */
} demo_rotation_result;

/* Schedules the rotation of the coalition's module `kind` `after_ms`
 * from now. `operator_key` (a committee member's key) and `ask` (a
 * member to ask who leads and votes) are copied; `cfg` and `node` are
 * borrowed until demo_rotation_close. `done` (may be NULL) runs once,
 * when the promotion has committed. Returns 0, MK_ENOMEM, or the
 * CO_ECONFIG of a module that has no standby to promote (reason in
 * `err`, CO_ERRMSG_SIZE). Failures after that are retried every half
 * second until it is closed. */
int demo_rotation_start(mk_node *node, const co_coalition_config *cfg,
                        co_module_kind kind, const mk_keypair *operator_key,
                        const mk_peer_id *ask, uint64_t after_ms,
                        void (*done)(void *data), void *data,
                        demo_rotation **out, char *err);

/* Looks for the two committee.change records in `chronicle` (may be
 * NULL: nothing to look at yet). */
void demo_rotation_check(demo_rotation *r, const co_chronicle_reader *chronicle);

void demo_rotation_get(const demo_rotation *r, demo_rotation_result *out);

/* Cancels what is pending; frees once its handles have closed. */
void demo_rotation_close(demo_rotation *r);

#endif
