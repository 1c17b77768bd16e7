/* The test machines (mosaik/testing/fsm_test.h) under simulation: counter,
 * register and log, each against a model that is a few lines of C.
 * They carry no semantics of their own, so everything they catch is the
 * adapter's or the cluster's: a lost, doubled or reordered command shows
 * up as a wrong sum, a wrong last value or a wrong list. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/testing/fsm_test.h"
#include "sim.h"

typedef struct basic {
    const char *kind;
    int64_t counter; /* counter: the model's sum */
    mk_buf last;     /* register: the last value */
    mk_buf all;      /* log: entries joined with '\n' */
    uint64_t entries;
    uint64_t made;   /* commands generated: makes each log entry unique */
} basic;

static void *basic_setup(const char *kind)
{
    basic *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->kind = kind;
    mk_buf_init(&b->last);
    mk_buf_init(&b->all);
    return b;
}

static void *counter_setup(const sim_env *env, sim_rng *rng)
{
    return basic_setup("counter");
}

static void *register_setup(const sim_env *env, sim_rng *rng)
{
    return basic_setup("register");
}

static void *log_setup(const sim_env *env, sim_rng *rng)
{
    return basic_setup("log");
}

static void basic_teardown(void *ctx)
{
    basic *b = ctx;
    mk_buf_free(&b->last);
    mk_buf_free(&b->all);
    free(b);
}

static struct mk_fsm *basic_new(void *ctx, unsigned index)
{
    return mk_fsm_test_new(((basic *)ctx)->kind);
}

static void basic_free(void *ctx, struct mk_fsm *f)
{
    mk_fsm_test_free(f);
}

static void basic_next(void *ctx, sim_rng *rng, const sim_env *env,
                       struct mk_fsm *view, unsigned session, mk_buf *out,
                       sim_op *op)
{
    basic *b = ctx;
    char text[64];
    b->made++;
    if (b->kind[0] == 'c') {
        /* Mostly numbers; now and then something the counter answers
         * "ERR" to without changing (still applied, still counted). */
        if (sim_chance(rng, 1, 20)) {
            snprintf(text, sizeof text, "x%u", session);
            op->kind = 0;
        } else {
            op->a = (int64_t)sim_below(rng, 2001) - 1000;
            snprintf(text, sizeof text, "%" PRId64, op->a);
            op->kind = 1;
        }
    } else {
        /* Unique per command, so a doubled or misplaced one shows. */
        snprintf(text, sizeof text, "s%u-%" PRIu64 "-%" PRIu64, session,
                 b->made, sim_below(rng, 1000));
    }
    mk_put_raw(out, text, strlen(text));
}

static void basic_model(void *ctx, const sim_op *op, const uint8_t *cmd,
                        size_t len)
{
    basic *b = ctx;
    switch (b->kind[0]) {
    case 'c':
        if (op->kind == 1)
            b->counter = (int64_t)((uint64_t)b->counter + (uint64_t)op->a);
        break;
    case 'r':
        mk_buf_reset(&b->last);
        mk_put_raw(&b->last, cmd, len);
        break;
    default:
        if (b->entries++)
            mk_put_u8(&b->all, '\n');
        mk_put_raw(&b->all, cmd, len);
        break;
    }
}

static bool basic_check(void *ctx, unsigned index, struct mk_fsm *f,
                        bool at_head, char *why)
{
    basic *b = ctx;
    if (!at_head)
        return true;
    const char *q = b->kind[0] == 'l' ? "all" : "";
    mk_buf r, want;
    mk_buf_init(&r);
    mk_buf_init(&want);
    f->query(f, (const uint8_t *)q, strlen(q), &r);
    switch (b->kind[0]) {
    case 'c': {
        char text[32];
        snprintf(text, sizeof text, "%" PRId64, b->counter);
        mk_put_raw(&want, text, strlen(text));
        break;
    }
    case 'r':
        mk_put_raw(&want, b->last.data, b->last.len);
        break;
    default:
        mk_put_raw(&want, b->all.data, b->all.len);
        break;
    }
    bool ok = r.len == want.len &&
              (r.len == 0 || memcmp(r.data, want.data, r.len) == 0);
    if (!ok)
        sim_fail(why, "%s holds \"%.*s\", the model \"%.*s\"", b->kind,
                 (int)(r.len > 60 ? 60 : r.len), (const char *)r.data,
                 (int)(want.len > 60 ? 60 : want.len),
                 (const char *)want.data);
    mk_buf_free(&r);
    mk_buf_free(&want);
    return ok;
}

#define BASIC(var, label, setup_fn)                                        \
    const sim_machine var = {                                              \
        .name = label,                                                     \
        .setup = setup_fn,                                                 \
        .teardown = basic_teardown,                                        \
        .fsm_new = basic_new,                                              \
        .fsm_free = basic_free,                                            \
        .next_cmd = basic_next,                                            \
        .model_apply = basic_model,                                        \
        .check = basic_check,                                              \
    }

BASIC(sim_counter, "counter", counter_setup);
BASIC(sim_register, "register", register_setup);
BASIC(sim_log, "log", log_setup);
