/* Helpers shared by the collection tests (test_collections*.c): drive a
 * machine through its struct mk_fsm exactly as a group or replica would. */
#ifndef CO_COLL_UTIL_H
#define CO_COLL_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "mosaik/codec.h"
#include "mosaik/collections.h"
#include "mosaik/error.h"
#include "testutil.h"

/* A string literal as (pointer, length), without its NUL. */
#define S(lit) (lit), (sizeof(lit) - 1)

/* One machine with a command buffer and the last outcome. */
typedef struct cu_harness {
    struct mk_fsm *f;
    mk_buf cmd;
    mk_buf res;
    mk_coll_outcome out; /* points into res until the next command */
} cu_harness;

static inline void cu_init(cu_harness *h, struct mk_fsm *f)
{
    h->f = f;
    mk_buf_init(&h->cmd);
    mk_buf_init(&h->res);
    memset(&h->out, 0, sizeof h->out);
}

static inline void cu_fini(cu_harness *h)
{
    mk_buf_free(&h->cmd);
    mk_buf_free(&h->res);
}

/* Applies the command an encoder just wrote into h->cmd (its return code
 * is `enc`): asserts it applies and its outcome decodes, and returns the
 * outcome's `changed`. */
#define cu_run(h, enc) cu_run_at((h), (enc), __FILE__, __LINE__)
static inline uint64_t cu_run_at(cu_harness *h, int enc, const char *file,
                                 int line)
{
    if (enc != 0)
        fail_msg("%s:%d: encoder failed: %d", file, line, enc);
    mk_buf_reset(&h->res);
    int rc = h->f->apply(h->f, h->cmd.data, h->cmd.len, &h->res);
    if (rc != 0)
        fail_msg("%s:%d: apply failed: %s", file, line, mk_err_name(rc));
    if (mk_coll_outcome_decode(h->res.data, h->res.len, &h->out) != 0)
        fail_msg("%s:%d: outcome does not decode", file, line);
    mk_buf_reset(&h->cmd);
    return h->out.changed;
}

/* Runs a query the encoder wrote into h->cmd; the reply is in h->res. */
static inline void cu_query(cu_harness *h, int enc)
{
    assert_int_equal(enc, 0);
    mk_buf_reset(&h->res);
    assert_int_equal(h->f->query(h->f, h->cmd.data, h->cmd.len, &h->res),
                     0);
    mk_buf_reset(&h->cmd);
}

/* The machine's snapshot into `out` (reset first). */
static inline void cu_snap(struct mk_fsm *f, mk_buf *out)
{
    mk_buf_reset(out);
    assert_int_equal(f->snapshot(f, out), 0);
}

/* Asserts two machines write identical snapshots. */
static inline void cu_assert_same(struct mk_fsm *a, struct mk_fsm *b)
{
    mk_buf x, y;
    mk_buf_init(&x);
    mk_buf_init(&y);
    cu_snap(a, &x);
    cu_snap(b, &y);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    mk_buf_free(&x);
    mk_buf_free(&y);
}

/* Big-endian u32: numeric order is byte order. */
static inline const uint8_t *cu_be32(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
    return out;
}

static inline uint32_t cu_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* Compares an item field with a string literal. */
#define cu_assert_bytes(p, n, lit)                                            \
    do {                                                                      \
        assert_int_equal((n), sizeof(lit) - 1);                               \
        if ((n))                                                              \
            assert_memory_equal((p), (lit), (n));                             \
    } while (0)

/* splitmix64: a seeded, reproducible stream for the randomized tests. */
typedef struct cu_rng {
    uint64_t s;
} cu_rng;

static inline uint64_t cu_next(cu_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static inline uint64_t cu_below(cu_rng *r, uint64_t n)
{
    return n ? cu_next(r) % n : 0;
}

#endif
