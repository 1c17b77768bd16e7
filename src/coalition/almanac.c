/* Almanac handles (include/coalition/almanac.h). */
#include "coalition/almanac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules_internal.h"
#include "mosaik/error.h"
#include "reader.h"

struct co_almanac_reader {
    co__reader base;
    co_almanac_cb cb;
    void *data;
    uint64_t reported; /* last seq handed to the callback */
    size_t reported_stamps;
};

/* Ticks are reported from the replica's change notifications rather than
 * from inside apply(), so a burst (a snapshot, a backlog) is seen as the
 * latest tick plus a count of those it covered. */
static void on_reader(co__reader *base, int status)
{
    co_almanac_reader *r = base->owner;
    if (status < 0) {
        r->cb(r, status, NULL, 0, r->data);
        return;
    }
    const co_almanac_tick *t = co__almanac_latest(&base->fsm);
    if (t->seq == 0 ||
        (t->seq == r->reported && t->n_stamps == r->reported_stamps))
        return;
    uint64_t missed = 0;
    if (t->seq > r->reported + 1 && r->reported > 0)
        missed = t->seq - r->reported - 1;
    r->reported = t->seq;
    r->reported_stamps = t->n_stamps;
    r->cb(r, 0, t, missed, r->data);
}

int co_almanac_ticks(mk_node *net, const co_coalition_config *cfg,
                     uint32_t timeout_ms, co_almanac_cb cb, void *data,
                     co_almanac_reader **out, char *err)
{
    co_almanac_reader *r = calloc(1, sizeof *r);
    if (!r)
        return MK_ENOMEM;
    r->cb = cb;
    r->data = data;
    int rc = co__reader_open(&r->base, net, cfg, CO_MODULE_ALMANAC,
                             co__almanac_fsm_init, co__almanac_fsm_free,
                             co__almanac_retirement, timeout_ms, on_reader, r,
                             err);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void co_almanac_close(co_almanac_reader *r, mk_close_cb done, void *data)
{
    co__reader_close(&r->base, done, data);
}

const co_almanac_tick *co_almanac_latest(const co_almanac_reader *r)
{
    return co__almanac_latest(&r->base.fsm);
}

void co_almanac_retirement(const co_almanac_reader *r, co_retirement *out)
{
    *out = *co__almanac_retirement(&r->base.fsm);
}

int co_almanac_cadence_ms(const co_coalition_config *cfg, uint64_t *out,
                          char *err)
{
    co_module_info m;
    int rc = co_module_info_get(cfg, CO_MODULE_ALMANAC, &m, err);
    if (rc < 0)
        return rc;
    if (co_module_param_u64(&m, "cadence_ms", CO_ALMANAC_DEFAULT_CADENCE_MS,
                            out) < 0 ||
        *out < 10 || *out > 3600000) {
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "almanac content \"%s\": cadence_ms must be a number of "
                     "milliseconds from 10 to 3600000",
                     m.config->content);
        return CO_ECONFIG;
    }
    return 0;
}
