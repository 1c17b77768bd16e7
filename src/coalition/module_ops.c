/* The table of module kinds (module_ops.h). */
#include "module_ops.h"

#include "compute_internal.h"
#include "modules_internal.h"

static const co__module_ops OPS[] = {
    [CO_MODULE_ATLAS] = {CO__ATLAS_SIGNATURE, CO__ATLAS_MAX_COMMAND,
                         co__atlas_fsm_init, co__atlas_fsm_free,
                         co__atlas_retirement},
    [CO_MODULE_ALMANAC] = {CO__ALMANAC_SIGNATURE, CO__ALMANAC_MAX_COMMAND,
                           co__almanac_fsm_init, co__almanac_fsm_free,
                           co__almanac_retirement},
    [CO_MODULE_CHRONICLE] = {CO__CHRONICLE_SIGNATURE,
                             CO__CHRONICLE_MAX_COMMAND,
                             co__chronicle_fsm_init, co__chronicle_fsm_free,
                             co__chronicle_retirement},
    [CO_MODULE_COMPUTE] = {CO__COMPUTE_SIGNATURE, CO__COMPUTE_MAX_COMMAND,
                           co__compute_fsm_init, co__compute_fsm_free,
                           co__compute_retirement},
};

/* A kind added to co_module_kind without a row here would read as a
 * zeroed one at run time; make it a build error instead. */
_Static_assert(sizeof OPS / sizeof OPS[0] == CO_MODULE_COUNT,
               "every module kind needs a row in OPS");

const co__module_ops *co__module_ops_of(co_module_kind kind)
{
    if ((int)kind < 0 || kind >= CO_MODULE_COUNT)
        return NULL;
    return &OPS[kind];
}
