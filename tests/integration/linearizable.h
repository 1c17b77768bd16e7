/* A linearizability checker for the history of one register.
 *
 * Operations are a swap (write `value`, answered with the previous value)
 * and a read. Each has the interval in which it happened, as the client
 * saw it: invoked at `call`, answered at `ret`. An operation whose outcome
 * is unknown (it timed out: it may have taken effect at any time after it
 * was invoked, or never) has ret = LIN_NEVER and no observed value; a read
 * that timed out tells nothing and should be left out.
 *
 * The check is Wing & Gong's search with Lowe's memoisation (as in
 * Knossos and Porcupine): try to place each operation, in an order that
 * respects real time, at a point where the register model accepts what it
 * observed; backtrack when an operation's answer arrives before it could
 * be placed; remember (set of placed operations, register value) pairs
 * already explored.
 */
#ifndef CO_TEST_LINEARIZABLE_H
#define CO_TEST_LINEARIZABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIN_NEVER INT64_MAX

typedef enum lin_kind { LIN_SWAP, LIN_READ } lin_kind;

typedef struct lin_op {
    lin_kind kind;
    int64_t call, ret; /* ret == LIN_NEVER: outcome unknown */
    int64_t value;     /* SWAP: written; READ: observed */
    int64_t prev;      /* SWAP with a known outcome: the previous value */
} lin_op;

/* True when the history (any order) of a register starting at `init` is
 * linearizable. When it is not, `why` (may be NULL) says which operation
 * could never be placed. */
bool lin_check(const lin_op *ops, size_t n, int64_t init, char *why,
               size_t whylen);

#endif
