/* Internal: what differs between module kinds, in one table indexed by
 * co_module_kind, so a path that serves every module (committee ids,
 * retirement, hosting) cannot forget one: adding a kind without a row
 * fails to compile (module_ops.c). */
#ifndef CO_MODULE_OPS_H
#define CO_MODULE_OPS_H

#include <stdint.h>

#include "coalition/module.h"
#include "mosaik/group.h"

typedef struct co__module_ops {
    /* The state machine's signature string (mk_id_from_str of it is
     * mk_fsm.signature): part of the committee's GroupId, and what a
     * retirement marker is signed for. */
    const char *signature;
    /* The largest command the machine can accept (the sums are in
     * modules_internal.h and compute_internal.h), the committee's
     * max_command_bytes: anything longer is refused at the door instead
     * of being logged by every member and then refused by apply(). */
    uint32_t max_command;
    int (*fsm_init)(struct mk_fsm *fsm, const co_module_info *m);
    void (*fsm_free)(struct mk_fsm *fsm);
    const co_retirement *(*retirement)(const struct mk_fsm *fsm);
} co__module_ops;

/* The row for `kind`, or NULL when it is no module kind. */
const co__module_ops *co__module_ops_of(co_module_kind kind);

#endif
