/* Submitting commands to a module committee from any node (operators,
 * the CLI): one group client per submission, closed when it answers. */
#include <stdlib.h>
#include <string.h>

#include "modules_internal.h"
#include "mosaik/error.h"
#include "mosaik/group_client.h"

int co_module_committee_group(const co_coalition_config *cfg,
                              co_module_kind kind, co_module_info *m,
                              mk_id *group, char *err)
{
    static const char *const SIGS[CO_MODULE_COUNT] = {
        CO__ATLAS_SIGNATURE, CO__ALMANAC_SIGNATURE, CO__CHRONICLE_SIGNATURE,
        "coalition.compute/1"};
    int rc = co_module_info_get(cfg, kind, m, err);
    if (rc < 0)
        return rc;
    struct mk_fsm shape = {.version = MK_FSM_VERSION};
    mk_id_from_str(&shape.signature, SIGS[kind]);
    co_module_group_id(m, &shape, group);
    return 0;
}

typedef struct submission {
    mk_group_client *client;
    void (*done)(int, const uint8_t *, size_t, void *);
    void *data;
} submission;

static void on_client_closed(void *data)
{
    free(data);
}

static void on_result(int status, uint64_t applied, const uint8_t *result,
                      size_t len, void *data)
{
    submission *s = data;
    s->done(status, result, len, s->data);
    mk_group_client_close(s->client, on_client_closed, s);
}

int co__submit(mk_node *net, const mk_id *group, const mk_buf *cmd,
               uint32_t timeout_ms,
               void (*done)(int status, const uint8_t *result, size_t len,
                            void *data),
               void *data)
{
    if (cmd->err)
        return cmd->err;
    submission *s = calloc(1, sizeof *s);
    if (!s)
        return MK_ENOMEM;
    s->done = done;
    s->data = data;
    int rc = mk_group_client_open(net, group, &s->client);
    if (rc < 0) {
        free(s);
        return rc;
    }
    rc = mk_group_client_execute(s->client, cmd->data, cmd->len, timeout_ms,
                                 on_result, s);
    if (rc < 0) {
        mk_group_client_close(s->client, on_client_closed, s);
        return rc;
    }
    return 0;
}
