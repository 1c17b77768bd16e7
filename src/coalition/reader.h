/* Internal: what the Atlas, Almanac and Chronicle readers share — binding
 * a replica of a module's committee group from the coalition config, the
 * connect deadline, and retirement reporting. */
#ifndef CO_READER_H
#define CO_READER_H

#include <stdbool.h>
#include <uv.h>

#include "coalition/module.h"
#include "mosaik/group.h"

typedef struct co__reader co__reader;

/* Called on the loop: status 0 (ready, or changed after ready),
 * MK_ECONNECT_TIMEOUT (once, at the deadline, if not ready by then), or
 * CO_ERETIRED (once, when the module's state says so). */
typedef void (*co__reader_cb)(co__reader *r, int status);

struct co__reader {
    mk_node *node;
    co_module_info m;
    struct mk_fsm fsm;
    void (*fsm_free)(struct mk_fsm *fsm);
    const co_retirement *(*retirement)(const struct mk_fsm *fsm);
    mk_replica *replica;
    uv_timer_t deadline;
    co__reader_cb cb;
    void *owner; /* the typed reader */
    bool ready, reported_timeout, reported_retired, closing;
    void (*done)(void *data);
    void *done_data;
};

/* Derives the module, builds its fsm with `init`, opens the replica and
 * arms the deadline. 0, or a negative code with `err` (CO_ERRMSG_SIZE). */
int co__reader_open(co__reader *r, mk_node *net,
                    const co_coalition_config *cfg, co_module_kind kind,
                    int (*init)(struct mk_fsm *, const co_module_info *),
                    void (*fsm_free)(struct mk_fsm *),
                    const co_retirement *(*retirement)(const struct mk_fsm *),
                    uint32_t timeout_ms, co__reader_cb cb, void *owner,
                    char *err);

/* Closes; once everything is released the typed reader (`owner`, which
 * must be malloc'd and embed `r`) is freed and `done(data)` runs. */
void co__reader_close(co__reader *r, void (*done)(void *data), void *data);

#endif
