/* The Compute committee member's one duty in the module host: keep the
 * machine's clock going. Whoever leads proposes its Unix ms every
 * clock_ms; the state machine keeps it only when it moves time forward,
 * so a deposed leader's late proposal or a leader with a slow clock
 * cannot turn time back, and every replica sees time advance at exactly
 * the same commands. */
#include "compute_internal.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"

static void on_clock(int status, uint64_t applied, const uint8_t *res,
                     size_t len, void *data)
{
    /* Cancelled: the host is stopping and frees the machine next. */
    if (status == MK_ECANCELED)
        return;
    *co__compute_clock_flag(data) = false;
}

void co__compute_host_duty(mk_group *g, struct mk_fsm *fsm,
                           const mk_keypair *member)
{
    mk_group_status st;
    mk_group_status_get(g, &st);
    bool *busy = co__compute_clock_flag(fsm);
    if (!st.is_leader || *busy)
        return;
    const co_compute_params *p = co__compute_params(fsm);
    mk_buf cmd;
    mk_buf_init(&cmd);
    co__compute_cmd_clock(&cmd, &co__compute_module(fsm)->root, mk_now_ms(),
                          member);
    uint32_t timeout = (uint32_t)(p->clock_ms * 4 < 1000 ? 1000
                                                         : p->clock_ms * 4);
    if (!cmd.err &&
        mk_group_execute(g, cmd.data, cmd.len, timeout, on_clock, fsm) == 0)
        *busy = true;
    mk_buf_free(&cmd);
}
