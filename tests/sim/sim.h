/* The deterministic simulator: what the driver (sim.c) and the
 * per-machine files (sim_*.c) share.
 *
 * The driver owns the cluster (libraft's in-memory fixture), the fault
 * schedule, the simulated clients and the invariants every machine gets
 * from the exactly-once adapter. A machine file says how to build its
 * state machine, what commands its clients submit, and what must hold of
 * its state; it sees commands only in the order the cluster committed
 * them (the history) and replicas only through their struct mk_fsm.
 *
 * Determinism is the whole point: every choice comes from one seeded
 * PRNG, nothing reads a clock or an address, so `sim --seed N` replays a
 * failure step for step.
 */
#ifndef MK_SIM_H
#define MK_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/codec.h"
#include "mosaik/group.h"

/* splitmix64: small, seedable, and the same everywhere. */
typedef struct sim_rng {
    uint64_t s;
} sim_rng;

uint64_t sim_next(sim_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
uint64_t sim_below(sim_rng *r, uint64_t n);
/* True with probability num/den. */
bool sim_chance(sim_rng *r, unsigned num, unsigned den);

#define SIM_WHY 256

/* What a client generated, beside the command bytes: the machine's own
 * description of the operation, so its model does not have to decode
 * the bytes it wrote. */
typedef struct sim_op {
    int kind;
    int64_t a, b, c, d;
} sim_op;

/* The run a machine is part of; what a machine may read of it. */
typedef struct sim_env {
    unsigned n_servers; /* voters: 3 or 5 */
    unsigned n_sessions;
    int64_t clock_ms;   /* the clients' wall clock (jumps with the
                           schedule), for machines that carry time */
    uint64_t seed;
} sim_env;

/* One machine family. Every function but check may assume valid input;
 * check writes what is wrong into `why` and returns false. */
typedef struct sim_machine {
    const char *name;
    /* Per-run state (keys, the model); NULL on failure. */
    void *(*setup)(const sim_env *env, sim_rng *rng);
    void (*teardown)(void *ctx);
    /* One replica's state machine, and its release. `index` is the
     * replica's server index (machines with callbacks use it). */
    struct mk_fsm *(*fsm_new)(void *ctx, unsigned index);
    void (*fsm_free)(void *ctx, struct mk_fsm *fsm);
    /* The next command of `session` into `out` (empty on entry), with
     * its description. `view` is some replica's machine, possibly stale,
     * as a real client's idea of the state would be. */
    void (*next_cmd)(void *ctx, sim_rng *rng, const sim_env *env,
                     struct mk_fsm *view, unsigned session, mk_buf *out,
                     sim_op *op);
    /* Feeds the model the next committed command, in history order. */
    void (*model_apply)(void *ctx, const sim_op *op, const uint8_t *cmd,
                        size_t len);
    /* Checks replica `index` after its state changed (an apply or a
     * restore). `at_head` when it has applied the whole history, so its
     * state must equal the model's. */
    bool (*check)(void *ctx, unsigned index, struct mk_fsm *fsm,
                  bool at_head, char *why);
    /* After a restore replaced replica `index`'s state (optional). */
    void (*restored)(void *ctx, unsigned index, struct mk_fsm *fsm);
} sim_machine;

extern const sim_machine sim_counter, sim_register, sim_log;
extern const sim_machine sim_map, sim_set, sim_vec, sim_cell, sim_once,
    sim_pq;
extern const sim_machine sim_almanac, sim_atlas, sim_chronicle;
extern const sim_machine sim_compute;

/* Formats into `why` (SIM_WHY bytes) and returns false, for checks. */
bool sim_fail(char *why, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
