/* A module's committee as a group: root, voters, state machine
 * (include/coalition/module.h). Kept apart from module.c so that code
 * which only reads configs does not pull in the group layer. */
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
}

void co_module_group_id(const co_module_info *m, struct mk_fsm *fsm,
                        mk_id *out)
{
    mk_group_config gc;
    co_module_group_config(m, fsm, &gc);
    mk_group_id_of(&gc, out);
}
