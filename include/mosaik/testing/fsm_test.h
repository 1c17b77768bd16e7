/* Small deterministic state machines for tests, tools and benchmarks.
 * Commands and results are text so `coalition group exec` can type them.
 *
 * Not part of libmosaik: they live in libmosaik_testing (src/testing, a
 * static library that is never installed), which the test suites,
 * fuzzers and the two programs that host or name test groups
 * (coalitiond, coalition) link. A production node carries none of them
 * unless its program links that library on purpose.
 *
 *   counter   an i64. Command: a decimal integer ("5", "-2"), added with
 *             wrapping; result: the new value. Query: the value. A command
 *             that is not an integer changes nothing and answers "ERR".
 *   register  bytes, last write wins. Command: the new value; result: the
 *             previous one. Query: the value.
 *   log       a list of entries. Command: an entry (appended); result: its
 *             1-based position. Queries: "len", "hash" (64 hex: a chain
 *             hash over every entry), "get N", "all" (entries joined with
 *             '\n').
 *
 * Signatures are id("mosaik.test.<kind>/1").
 */
#ifndef MK_FSM_TEST_H
#define MK_FSM_TEST_H

#include <stdbool.h>

#include "mosaik/group.h"

/* A new machine of `kind`, or NULL (unknown kind or no memory). The
 * caller owns it and frees it with mk_fsm_test_free (NULL is ignored)
 * once no group or replica uses it. */
struct mk_fsm *mk_fsm_test_new(const char *kind);
void mk_fsm_test_free(struct mk_fsm *fsm);
/* Whether `kind` names one of the machines above. */
bool mk_fsm_test_known(const char *kind);

#endif
