/* Retiring any module from any node (co_module_retire, module.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/error.h"
#include "module_ops.h"
#include "modules_internal.h"

#define MAX_REASON 255 /* what a module's state keeps (co_retirement) */

typedef struct retiring {
    void (*done)(int status, void *data);
    void *data;
} retiring;

static void on_retired(int status, const uint8_t *res, size_t len,
                       void *data)
{
    retiring *p = data;
    /* Refused by the machine, or at a member's door (not a member's
     * marker): the same verdict. */
    if ((status == 0 && (len < 1 || res[0] != 1)) || co__door_refused(status))
        status = CO_ECONFIG;
    p->done(status, p->data);
    free(p);
}

int co_module_retire(mk_node *net, const co_coalition_config *cfg,
                     co_module_kind kind, const char *reason,
                     const mk_id *successor, const mk_keypair *member,
                     uint32_t timeout_ms,
                     void (*done)(int status, void *data), void *data,
                     char *err)
{
    const co__module_ops *ops = co__module_ops_of(kind);
    if (!ops)
        return CO_ENOTSHIPPED;
    if (!reason || !reason[0] || strlen(reason) > MAX_REASON) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "a retirement reason is 1 to %d bytes", MAX_REASON);
        return MK_EINVAL;
    }
    co_module_info m;
    mk_id group, sig;
    int rc = co_module_committee_group(cfg, kind, &m, &group, err);
    if (rc < 0)
        return rc;
    mk_id_from_str(&sig, ops->signature);
    return co__submit_retire(net, &group, &sig, reason, successor, member,
                             timeout_ms, done, data);
}

int co__submit_retire(mk_node *net, const mk_id *group, const mk_id *module_sig,
                      const char *reason, const mk_id *successor,
                      const mk_keypair *member, uint32_t timeout_ms,
                      void (*done)(int status, void *data), void *data)
{
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__cmd_retire(&cmd, module_sig, reason, successor, member);
    retiring *p = malloc(sizeof *p);
    if (!p) {
        mk_buf_free(&cmd);
        return MK_ENOMEM;
    }
    *p = (retiring){done, data};
    int rc = co__submit(net, group, &cmd, timeout_ms, on_retired, p);
    mk_buf_free(&cmd);
    if (rc < 0)
        free(p);
    return rc;
}
