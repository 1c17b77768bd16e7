/* Which compression back end runs: decided once per process from the
 * CPU's features, narrowed by MK_BLAKE3_IMPL when set.
 *
 * Each SIMD file is compiled with its own -m flags and must not run on a
 * CPU without them, so the choice is made here, in code built for the
 * baseline. A back end is one batch kernel and its width.
 */
#include "blake3_impl.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct backend {
    const char *name;
    size_t lanes;
    mk__blake3_many_fn *many;
} backend;

enum { PORTABLE, SSE41, AVX2, AVX512, NBACKENDS };

static const backend backends[NBACKENDS] = {
    [PORTABLE] = {"portable", 1, mk__blake3_many_portable},
#ifdef MK_BLAKE3_X86
    [SSE41] = {"sse41", 4, mk__blake3_many_sse41},
    [AVX2] = {"avx2", 8, mk__blake3_many_avx2},
    [AVX512] = {"avx512", 16, mk__blake3_many_avx512},
#endif
};

/* The one piece of process state. A race between first callers is benign:
 * each computes the same answer and stores the same pointer. */
static _Atomic(const backend *) chosen;

/* The widest back end this CPU (and its OS, which must save the wider
 * registers; __builtin_cpu_supports checks that too) can run. */
static int cpu_best(void)
{
#ifdef MK_BLAKE3_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vl"))
        return AVX512;
    if (__builtin_cpu_supports("avx2"))
        return AVX2;
    if (__builtin_cpu_supports("sse4.1"))
        return SSE41;
#endif
    return PORTABLE;
}

static const backend *choose(void)
{
    int best = cpu_best();
    const char *want = getenv("MK_BLAKE3_IMPL");
    if (want != NULL) {
        /* A path the CPU lacks, or an unknown name, leaves the best one:
         * mk_blake3_impl() then shows what really runs. */
        for (int i = 0; i <= best; i++) {
            const char *name = backends[i].name;
            if (name != NULL && strcmp(want, name) == 0)
                return &backends[i];
        }
    }
    return &backends[best];
}

static const backend *current(void)
{
    const backend *be = atomic_load_explicit(&chosen, memory_order_acquire);
    if (be == NULL) {
        be = choose();
        atomic_store_explicit(&chosen, be, memory_order_release);
    }
    return be;
}

void mk__blake3_reset(void)
{
    atomic_store_explicit(&chosen, NULL, memory_order_release);
}

const char *mk__blake3_backend(void)
{
    return current()->name;
}

void mk__blake3_hash_many(const mk__blake3_batch *b, size_t n, uint8_t *out)
{
    const backend *be = current();
    /* A group of lanes costs the same however few are real, about as much
     * as three portable compressions (measured on parents with each
     * kernel): pad a group of three or more lanes, leave one or two to
     * the portable code. */
    size_t wide = n - n % be->lanes;
    if (n - wide >= 3)
        wide = n;
    if (wide > 0)
        be->many(b, wide, out);
    if (wide < n) {
        mk__blake3_batch rest = *b;
        rest.in += wide * rest.stride;
        rest.counter += wide * rest.counter_step;
        mk__blake3_many_portable(&rest, n - wide, out + wide * 32);
    }
}
