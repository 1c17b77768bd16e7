/* A module's committee as a group: root, voters, state machine
 * (include/coalition/module.h). Kept apart from module.c so that code
 * which only reads configs does not pull in the group layer. */
#include <stdint.h>
#include <string.h>

#include "coalition/module.h"

void co_module_group_config(const co_module_info *m, struct mk_fsm *fsm,
                            mk_group_config *out)
{
    memset(out, 0, sizeof *out);
    out->root = m->committee_root;
    out->fsm = fsm;
    out->voters = m->committee;
    out->n_voters = m->n_committee;
    out->tickets = m->ticketed ? &m->tickets : NULL;
    /* The content's voters=N caps the committee's Raft voters; the members
     * listed beyond it are standbys. It shapes the GroupId once the list
     * is longer, so members and readers alike take it from here, never
     * from a local setting (co_module_info_get checked it). */
    uint64_t v;
    if (m->config && co_module_param_u64(m, "voters", 0, &v) == 0 && v &&
        v <= UINT32_MAX)
        out->params.max_voters = (uint32_t)v;
}

void co_module_group_id(const co_module_info *m, struct mk_fsm *fsm,
                        mk_id *out)
{
    mk_group_config gc;
    co_module_group_config(m, fsm, &gc);
    mk_group_id_of(&gc, out);
}
