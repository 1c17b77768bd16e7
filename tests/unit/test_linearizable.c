/* The register linearizability checker the group history test relies on
 * (tests/integration/linearizable.c), on histories whose answer is known.
 * The checker is compiled into this test directly: it is test code and
 * has no library of its own. */
#include <stdlib.h>
#include <string.h>

#include "../integration/linearizable.c"
#include "testutil.h"

#define W(c, r, v, p) {LIN_SWAP, (c), (r), (v), (p)}
#define R(c, r, v) {LIN_READ, (c), (r), (v), 0}

static void simple_histories(void **state)
{
    char why[128];
    lin_op seq[] = {W(0, 10, 1, 0), R(20, 30, 1), W(40, 50, 2, 1),
                    R(60, 70, 2)};
    assert_true(lin_check(seq, 4, 0, why, sizeof why));

    /* Overlapping swaps may land in either order... */
    lin_op conc[] = {W(0, 100, 1, 2), W(10, 90, 2, 0), R(110, 120, 1)};
    assert_true(lin_check(conc, 3, 0, why, sizeof why));

    /* ...but not both after the initial value. */
    lin_op both[] = {W(0, 100, 1, 0), W(10, 90, 2, 0)};
    assert_false(lin_check(both, 2, 0, why, sizeof why));

    /* A read that misses an acknowledged write (a lost or stale write). */
    lin_op stale[] = {W(0, 10, 1, 0), R(20, 30, 0)};
    assert_false(lin_check(stale, 2, 0, why, sizeof why));
    assert_non_null(strstr(why, "cannot be placed"));

    /* Reading a value nobody wrote. */
    lin_op ghost[] = {R(0, 10, 7)};
    assert_false(lin_check(ghost, 1, 0, why, sizeof why));

    /* A read overlapping the write may see either value. */
    lin_op either[] = {W(0, 100, 1, 0), R(10, 20, 0), R(30, 40, 1),
                       R(110, 120, 1)};
    assert_true(lin_check(either, 4, 0, why, sizeof why));
    /* ...but cannot go back once it saw the new one. */
    lin_op back[] = {W(0, 100, 1, 0), R(10, 20, 1), R(30, 40, 0)};
    assert_false(lin_check(back, 3, 0, why, sizeof why));
}

static void unknown_outcomes(void **state)
{
    char why[128];
    /* A timed-out swap may take effect late... */
    lin_op late[] = {W(0, LIN_NEVER, 5, 0), R(100, 110, 0), R(200, 210, 5)};
    assert_true(lin_check(late, 3, 0, why, sizeof why));
    /* ...or never... */
    lin_op never[] = {W(0, LIN_NEVER, 5, 0), R(100, 110, 0)};
    assert_true(lin_check(never, 2, 0, why, sizeof why));
    /* ...but only once, and not before it was invoked. */
    lin_op twice[] = {W(0, LIN_NEVER, 5, 0), R(100, 110, 5),
                      W(120, 130, 6, 5), R(140, 150, 5)};
    assert_false(lin_check(twice, 4, 0, why, sizeof why));
    lin_op early[] = {R(0, 10, 5), W(20, LIN_NEVER, 5, 0)};
    assert_false(lin_check(early, 2, 0, why, sizeof why));
}

/* A random sequential run of a register, each operation given an interval
 * around its real instant: always linearizable. Then one read is made to
 * lie: not linearizable. */
static void random_histories(void **state)
{
    char why[128];
    srand(7);
    for (int round = 0; round < 20; round++) {
        enum { N = 300 };
        lin_op ops[N];
        int64_t reg = 0;
        for (int i = 0; i < N; i++) {
            int64_t at = (int64_t)i * 100;
            int64_t call = at - rand() % 250, ret = at + rand() % 250;
            if (rand() % 3 == 0) {
                ops[i] = (lin_op)R(call, ret, reg);
            } else {
                ops[i] = (lin_op)W(call, ret, i + 1, reg);
                reg = i + 1;
                if (rand() % 17 == 0)
                    ops[i].ret = LIN_NEVER; /* it happened; nobody heard */
            }
        }
        assert_true(lin_check(ops, N, 0, why, sizeof why));
        /* A read that returns a value from far in the past. */
        for (int i = N - 1; i > N / 2; i--)
            if (ops[i].kind == LIN_READ && ops[i].value > 10) {
                ops[i].value = 1;
                break;
            }
        assert_false(lin_check(ops, N, 0, why, sizeof why));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_histories),
        cmocka_unit_test(unknown_outcomes),
        cmocka_unit_test(random_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
