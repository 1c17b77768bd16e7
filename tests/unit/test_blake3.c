/* Tests for BLAKE3 (include/mosaik/blake3.h): every back end the CPU can
 * run, against the official `b3sum`.
 *
 * The reference answers come from b3sum itself, computed once per group:
 * the inputs (byte i = i % 251; every length 0..2049, then chunk, subtree
 * and run boundaries up to 5 MiB + 17) are written into a temporary
 * directory and each b3sum mode runs once over all of them, so there are
 * four b3sum processes, not thousands. Then each back end, forced through
 * MK_BLAKE3_IMPL exactly as a user would, must reproduce every answer:
 * one-shot, keyed, extendable output, and streamed in random pieces. The
 * batch kernels are also checked against the portable one where b3sum
 * cannot reach (chunk counters past 2^32).
 *
 * The random splits use a seeded generator; the seed is printed and
 * MK_BLAKE3_SEED=<n> replays it. b3sum comes from the Debian package
 * b3sum; without it the group setup fails, saying so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mosaik/blake3.h"
#include "mosaik/blake3/blake3_impl.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* Lengths beyond 0..SMALL_MAX: chunk and subtree boundaries, the edges of
 * a 256-chunk run, and inputs long enough for a deep tree. */
#define SMALL_MAX 2049
static const size_t big_lens[] = {
    3 * KIB - 1, 3 * KIB, 3 * KIB + 1, 4 * KIB - 1, 4 * KIB, 4 * KIB + 1,
    8 * KIB - 1, 8 * KIB, 8 * KIB + 1, 16 * KIB - 1, 16 * KIB,
    16 * KIB + 1, 31 * KIB, 32 * KIB - 1, 32 * KIB, 32 * KIB + 1,
    64 * KIB - 1, 64 * KIB, 64 * KIB + 1, 100 * KIB + 7, 255 * KIB,
    256 * KIB - 1, 256 * KIB, 256 * KIB + 1, 257 * KIB, 513 * KIB + 100,
    MIB - 1, MIB, MIB + 1, 5 * MIB + 17,
};
#define NBIG (sizeof big_lens / sizeof big_lens[0])
#define NLENS (SMALL_MAX + 1 + NBIG)
#define MAX_LEN (5 * MIB + 17)

/* Extendable output: b3sum gives XOF_LEN bytes for these inputs, and
 * every shorter output must be a prefix of them. */
#define XOF_LEN 1100
static const size_t xof_lens[] = {0, 1, 63, 64, 65, 1023, 1024, 1025,
                                  2048, 2049, 4 * KIB, 8 * KIB + 1, MIB + 1};
#define NXOF (sizeof xof_lens / sizeof xof_lens[0])
static const size_t xof_outs[] = {1,  31,  32,  33,   63,   64,  65,
                                  127, 128, 129, 1000, 1099, XOF_LEN};

/* Longest output compared at once: a 40-lane batch of chaining values. */
#define MAX_CHECK (40 * 32)

static const char *const paths[] = {"portable", "sse41", "avx2", "avx512"};
#define NPATHS (sizeof paths / sizeof paths[0])

typedef struct expected {
    size_t len;
    uint8_t plain[32];
    uint8_t keyed[32];
} expected;

static struct fixture {
    uint8_t *input; /* MAX_LEN bytes of the pattern */
    uint8_t key[MK_BLAKE3_KEY_LEN];
    expected want[NLENS];
    uint8_t xof_plain[NXOF][XOF_LEN];
    uint8_t xof_keyed[NXOF][XOF_LEN];
    uint64_t seed;
} fx;

/* ---- b3sum ----------------------------------------------------------- */

static char tmpdir[256];

static void file_name(char *buf, size_t size, size_t len)
{
    snprintf(buf, size, "%zu", len);
}

static int write_file(const char *dir, size_t len)
{
    char path[320], name[32];
    file_name(name, sizeof name, len);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = fwrite(fx.input, 1, len, f);
    return (fclose(f) == 0 && n == len) ? 0 : -1;
}

/* Runs b3sum with `args` plus one file per length in `lens`, in tmpdir,
 * feeding `in` on its standard input. Returns its standard output
 * (malloc'd, NUL-terminated) or NULL, with a message, on any failure. */
static char *b3sum(const char *const *args, const size_t *lens, size_t nlens,
                   const uint8_t *in, size_t in_len)
{
    size_t argc = 0;
    while (args[argc] != NULL)
        argc++;
    char **argv = calloc(argc + nlens + 2, sizeof *argv);
    char *names = malloc(nlens * 24);
    char *out = NULL;
    int to[2] = {-1, -1}, from[2] = {-1, -1};
    if (argv == NULL || names == NULL || pipe(to) != 0 || pipe(from) != 0)
        goto done;
    argv[0] = "b3sum";
    for (size_t i = 0; i < argc; i++)
        argv[1 + i] = (char *)args[i];
    for (size_t i = 0; i < nlens; i++) {
        file_name(names + 24 * i, 24, lens[i]);
        argv[1 + argc + i] = names + 24 * i;
    }

    pid_t pid = fork();
    if (pid < 0)
        goto done;
    if (pid == 0) {
        if (chdir(tmpdir) != 0 || dup2(to[0], 0) < 0 || dup2(from[1], 1) < 0)
            _exit(126);
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        execvp("b3sum", argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    to[0] = from[1] = -1;
    /* The key is 32 bytes, far below a pipe's capacity: writing it all
     * before reading cannot deadlock. */
    if (in_len > 0 && write(to[1], in, in_len) != (ssize_t)in_len)
        fprintf(stderr, "b3sum: short write to stdin\n");
    close(to[1]);
    to[1] = -1;

    size_t cap = 1 << 16, len = 0;
    out = malloc(cap);
    for (;;) {
        if (out == NULL)
            break;
        if (len + 1 == cap) {
            char *bigger = realloc(out, cap *= 2);
            if (bigger == NULL) {
                free(out);
                out = NULL;
                break;
            }
            out = bigger;
        }
        ssize_t n = read(from[0], out + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (out != NULL)
        out[len] = '\0';
    int status = 0;
    pid_t waited;
    while ((waited = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (waited != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr,
                "b3sum failed (exit %d%s); it comes from the Debian package "
                "b3sum\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                WIFEXITED(status) && WEXITSTATUS(status) == 127
                    ? ": not found"
                    : "");
        free(out);
        out = NULL;
    }
done:
    for (int i = 0; i < 2; i++) {
        if (to[i] >= 0)
            close(to[i]);
        if (from[i] >= 0)
            close(from[i]);
    }
    free(names);
    free(argv);
    return out;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* Parses one line of `n` bytes in hex per input, in order. */
static int parse_lines(char *text, size_t count, size_t n, uint8_t *out,
                       size_t out_stride)
{
    char *line = text;
    for (size_t i = 0; i < count; i++) {
        char *end = strchr(line, '\n');
        if (end == NULL || (size_t)(end - line) != 2 * n ||
            unhex(line, out + i * out_stride, n) != 0)
            return -1;
        line = end + 1;
    }
    return *line == '\0' ? 0 : -1;
}

static void all_lens(size_t lens[NLENS])
{
    size_t k = 0;
    for (size_t len = 0; len <= SMALL_MAX; len++)
        lens[k++] = len;
    for (size_t i = 0; i < NBIG; i++)
        lens[k++] = big_lens[i];
}

static int ask_b3sum(void)
{
    static size_t lens[NLENS];
    all_lens(lens);
    for (size_t i = 0; i < NLENS; i++)
        if (write_file(tmpdir, lens[i]) != 0) {
            fprintf(stderr, "cannot write test input %zu in %s: %s\n",
                    lens[i], tmpdir, strerror(errno));
            return -1;
        }

    static uint8_t plain[NLENS][32], keyed[NLENS][32];
    const char *plain_args[] = {"--no-names", NULL};
    const char *keyed_args[] = {"--no-names", "--keyed", NULL};
    char len_arg[32];
    snprintf(len_arg, sizeof len_arg, "%d", XOF_LEN);
    const char *xof_args[] = {"--no-names", "--length", len_arg, NULL};
    const char *xof_keyed_args[] = {"--no-names", "--keyed", "--length",
                                    len_arg, NULL};
    struct {
        const char *const *args;
        const size_t *lens;
        size_t count, n;
        int keyed;
        uint8_t *out;
    } runs[] = {
        {plain_args, lens, NLENS, 32, 0, &plain[0][0]},
        {keyed_args, lens, NLENS, 32, 1, &keyed[0][0]},
        {xof_args, xof_lens, NXOF, XOF_LEN, 0, &fx.xof_plain[0][0]},
        {xof_keyed_args, xof_lens, NXOF, XOF_LEN, 1, &fx.xof_keyed[0][0]},
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        char *text = b3sum(runs[r].args, runs[r].lens, runs[r].count,
                           runs[r].keyed ? fx.key : NULL,
                           runs[r].keyed ? sizeof fx.key : 0);
        if (text == NULL)
            return -1;
        int rc = parse_lines(text, runs[r].count, runs[r].n, runs[r].out,
                             runs[r].n);
        free(text);
        if (rc != 0) {
            fprintf(stderr, "b3sum printed something unexpected\n");
            return -1;
        }
    }
    for (size_t i = 0; i < NLENS; i++) {
        fx.want[i].len = lens[i];
        memcpy(fx.want[i].plain, plain[i], 32);
        memcpy(fx.want[i].keyed, keyed[i], 32);
    }
    return 0;
}

static void remove_tmpdir(void)
{
    size_t lens[NLENS];
    all_lens(lens);
    for (size_t i = 0; i < NLENS; i++) {
        char path[320], name[32];
        file_name(name, sizeof name, lens[i]);
        snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        unlink(path);
    }
    rmdir(tmpdir);
}

static int group_setup(void **state)
{
    (void)state;
    fx.input = malloc(MAX_LEN);
    if (fx.input == NULL)
        return -1;
    for (size_t i = 0; i < MAX_LEN; i++)
        fx.input[i] = (uint8_t)(i % 251);
    for (size_t i = 0; i < sizeof fx.key; i++)
        fx.key[i] = (uint8_t)(0xA5 ^ (7 * i + 3));

    const char *seed = getenv("MK_BLAKE3_SEED");
    fx.seed = seed != NULL ? strtoull(seed, NULL, 0)
                           : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    printf("blake3: random splits use MK_BLAKE3_SEED=%" PRIu64 "\n", fx.seed);

    /* A b3sum that dies early must fail the setup, not kill us with
     * SIGPIPE while we write its key. */
    signal(SIGPIPE, SIG_IGN);
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mkb3.XXXXXX",
             base != NULL && *base != '\0' ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return -1;
    }
    int rc = ask_b3sum();
    remove_tmpdir();
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    free(fx.input);
    unsetenv("MK_BLAKE3_IMPL");
    mk__blake3_reset();
    return 0;
}

/* ---- helpers --------------------------------------------------------- */

/* Forces back end `name` as MK_BLAKE3_IMPL would; false if this CPU (or a
 * system libblake3) means something else runs. */
static int use_path(const char *name)
{
    setenv("MK_BLAKE3_IMPL", name, 1);
    mk__blake3_reset();
    return strcmp(mk_blake3_impl(), name) == 0;
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void check(const char *path, const char *what, size_t len,
                  const uint8_t *got, const uint8_t *want, size_t n)
{
    if (memcmp(got, want, n) == 0)
        return;
    char g[2 * MAX_CHECK + 1], w[2 * MAX_CHECK + 1];
    assert_true(n <= MAX_CHECK);
    hex(got, n, g);
    hex(want, n, w);
    fail_msg("%s, %s, input length %zu, output length %zu:\n  got  %s\n"
             "  want %s (b3sum)",
             path, what, len, n, g, w);
}

/* Every test body runs once per back end this machine has. `best` tells
 * the one a user gets by default: the keyed and streaming tests give only
 * it the multi-MiB input, as they would take most of the time budget
 * under the sanitizers and test the back ends no better than the one-shot
 * test does on every path. */
typedef void path_fn(const char *path, int best);

static int heavy(size_t len)
{
    return len > MIB + 1;
}

static void for_each_path(path_fn *fn)
{
    unsetenv("MK_BLAKE3_IMPL");
    mk__blake3_reset();
    char best[32];
    snprintf(best, sizeof best, "%s", mk_blake3_impl());
    int ran = 0;
    for (size_t p = 0; p < NPATHS; p++) {
        if (!use_path(paths[p])) {
            if (strcmp(mk_blake3_impl(), "libblake3") == 0) {
                if (ran++ == 0)
                    fn("libblake3", 1);
                continue;
            }
            print_message("blake3: %s not available on this CPU, skipped\n",
                          paths[p]);
            continue;
        }
        fn(paths[p], strcmp(paths[p], best) == 0);
        ran++;
    }
    assert_true(ran > 0);
    unsetenv("MK_BLAKE3_IMPL");
    mk__blake3_reset();
}

/* ---- tests ----------------------------------------------------------- */

static void path_oneshot(const char *path, int best)
{
    (void)best;
    for (size_t i = 0; i < NLENS; i++) {
        uint8_t out[32];
        mk_blake3(fx.input, fx.want[i].len, out);
        check(path, "hash", fx.want[i].len, out, fx.want[i].plain, 32);
    }
    print_message("blake3: %s matches b3sum on %zu lengths\n", path,
                  (size_t)NLENS);
}

static void test_oneshot(void **state)
{
    (void)state;
    for_each_path(path_oneshot);
}

static void path_keyed(const char *path, int best)
{
    for (size_t i = 0; i < NLENS; i++) {
        if (heavy(fx.want[i].len) && !best)
            continue;
        mk_blake3_hasher h;
        uint8_t out[32];
        mk_blake3_init_keyed(&h, fx.key);
        mk_blake3_update(&h, fx.input, fx.want[i].len);
        mk_blake3_final(&h, out, sizeof out);
        check(path, "keyed hash", fx.want[i].len, out, fx.want[i].keyed, 32);
    }
}

static void test_keyed(void **state)
{
    (void)state;
    for_each_path(path_keyed);
}

static void path_xof(const char *path, int best)
{
    (void)best;
    for (size_t i = 0; i < NXOF; i++) {
        for (int k = 0; k < 2; k++) {
            mk_blake3_hasher h;
            if (k)
                mk_blake3_init_keyed(&h, fx.key);
            else
                mk_blake3_init(&h);
            mk_blake3_update(&h, fx.input, xof_lens[i]);
            for (size_t o = 0; o < sizeof xof_outs / sizeof xof_outs[0];
                 o++) {
                uint8_t out[XOF_LEN];
                mk_blake3_final(&h, out, xof_outs[o]);
                check(path, k ? "keyed XOF" : "XOF", xof_lens[i], out,
                      k ? fx.xof_keyed[i] : fx.xof_plain[i], xof_outs[o]);
            }
        }
    }
}

static void test_xof(void **state)
{
    (void)state;
    for_each_path(path_xof);
}

/* One piece of a random split: mostly small or odd sizes, often whole
 * chunks (which take the run path and leave the stack unmerged), now and
 * then everything that is left. */
static size_t piece(uint64_t *rng, size_t left)
{
    uint64_t r = rng_next(rng);
    size_t n;
    switch (r % 5) {
    case 0:
        n = 1 + (r >> 8) % 64;
        break;
    case 1:
        n = 1 + (r >> 8) % (3 * KIB);
        break;
    case 2:
    case 3:
        n = KIB * (1 + (r >> 8) % 300);
        break;
    default:
        n = left;
        break;
    }
    return n < left ? n : left;
}

static void stream_one(const char *path, uint64_t *rng, const expected *e)
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    size_t done = 0;
    while (done < e->len) {
        size_t n = piece(rng, e->len - done);
        mk_blake3_update(&h, fx.input + done, n);
        done += n;
    }
    uint8_t out[32];
    mk_blake3_final(&h, out, sizeof out);
    check(path, "random pieces", e->len, out, e->plain, 32);
}

static void path_stream(const char *path, int best)
{
    uint64_t rng = fx.seed;
    for (size_t i = 0; i < NLENS; i++)
        if (!heavy(fx.want[i].len) || best)
            stream_one(path, &rng, &fx.want[i]);

    /* Every two-piece split of the longest small input (every 7th but
     * for the default path). */
    const expected *e = &fx.want[SMALL_MAX];
    for (size_t cut = 0; cut <= e->len; cut += best ? 1 : 7) {
        mk_blake3_hasher h;
        uint8_t out[32];
        mk_blake3_init(&h);
        mk_blake3_update(&h, fx.input, cut);
        mk_blake3_update(&h, fx.input + cut, e->len - cut);
        mk_blake3_final(&h, out, sizeof out);
        check(path, "two pieces", e->len, out, e->plain, 32);
    }

    /* Chunk by chunk then the rest, and byte by byte near block edges
     * (every length would be slow under the sanitizers, and tells no
     * more). */
    for (size_t i = 0; i < NLENS; i++) {
        e = &fx.want[i];
        if (e->len > 33 * KIB)
            continue;
        mk_blake3_hasher h;
        uint8_t out[32];
        mk_blake3_init(&h);
        for (size_t b = 0; b < e->len; b += KIB)
            mk_blake3_update(&h, fx.input + b,
                             e->len - b < KIB ? e->len - b : KIB);
        mk_blake3_final(&h, out, sizeof out);
        check(path, "chunk by chunk", e->len, out, e->plain, 32);

        if (e->len > 9 * KIB ||
            (e->len > 65 && (e->len + 1) % 64 > 2))
            continue;
        mk_blake3_init(&h);
        for (size_t b = 0; b < e->len; b++)
            mk_blake3_update(&h, fx.input + b, 1);
        mk_blake3_final(&h, out, sizeof out);
        check(path, "byte by byte", e->len, out, e->plain, 32);
    }
}

static void test_stream(void **state)
{
    (void)state;
    for_each_path(path_stream);
}

/* final() leaves the hasher as it was, and a copy is independent. */
static void test_final_and_copy(void **state)
{
    (void)state;
    const expected *a = NULL, *b = NULL;
    for (size_t i = 0; i < NLENS; i++) {
        if (fx.want[i].len == 64 * KIB)
            a = &fx.want[i];
        if (fx.want[i].len == MIB + 1)
            b = &fx.want[i];
    }
    assert_non_null(a);
    assert_non_null(b);

    mk_blake3_hasher h, copy;
    uint8_t out[32];
    mk_blake3_init(&h);
    mk_blake3_update(&h, fx.input, a->len);
    copy = h;
    mk_blake3_final(&h, out, sizeof out);
    check("default", "final twice (1)", a->len, out, a->plain, 32);
    mk_blake3_final(&h, out, sizeof out);
    check("default", "final twice (2)", a->len, out, a->plain, 32);

    mk_blake3_update(&h, fx.input + a->len, b->len - a->len);
    mk_blake3_final(&h, out, sizeof out);
    check("default", "update after final", b->len, out, b->plain, 32);

    mk_blake3_final(&copy, out, sizeof out);
    check("default", "copy", a->len, out, a->plain, 32);
    mk_blake3_update(&copy, fx.input + a->len, b->len - a->len);
    mk_blake3_final(&copy, out, sizeof out);
    check("default", "copy continued", b->len, out, b->plain, 32);
}

/* An unknown or unavailable MK_BLAKE3_IMPL falls back to the best path,
 * and mk_blake3_impl() says which. */
static void test_env_fallback(void **state)
{
    (void)state;
    unsetenv("MK_BLAKE3_IMPL");
    mk__blake3_reset();
    char best[32];
    snprintf(best, sizeof best, "%s", mk_blake3_impl());
    print_message("blake3: default path here is %s\n", best);

    setenv("MK_BLAKE3_IMPL", "no-such-path", 1);
    mk__blake3_reset();
    assert_string_equal(mk_blake3_impl(), best);
    if (strcmp(best, "libblake3") != 0) {
        setenv("MK_BLAKE3_IMPL", "portable", 1);
        mk__blake3_reset();
        assert_string_equal(mk_blake3_impl(), "portable");
    }
    unsetenv("MK_BLAKE3_IMPL");
    mk__blake3_reset();
}

#ifndef MK_BLAKE3_SYSTEM
/* The batch kernels against the portable one directly, where b3sum cannot
 * reach: chunk counters crossing 2^32 (inputs past 4 TiB), and lane
 * counts that exercise each kernel's padding and the dispatcher's split of
 * leftover lanes: every count from 1 to 40 for parents, fewer for the
 * sixteen times longer chunks. */
static void path_kernels(const char *path, int best)
{
    (void)best;
    static const uint64_t counters[] = {0xFFFFFFF0u, 0x123456789Au};
    uint64_t rng = fx.seed ^ 0x5EEDu;
    for (size_t c = 0; c < 2; c++) {
        for (size_t n = 1; n <= 40; n++) {
            for (int parent = 0; parent < 2; parent++) {
                if (!parent && n > 18 && n != 31 && n != 33 && n != 40)
                    continue;
                uint32_t key[8];
                for (int i = 0; i < 8; i++)
                    key[i] = (uint32_t)rng_next(&rng);
                mk__blake3_batch b = {
                    .in = fx.input + 3,
                    .stride = parent ? 64 : KIB,
                    .blocks = parent ? 1 : KIB / 64,
                    .key = key,
                    .counter = parent ? 0 : counters[c],
                    .counter_step = parent ? 0 : 1,
                    .flags = parent ? MK__BLAKE3_PARENT : 0,
                    .first_flags = parent ? 0 : MK__BLAKE3_CHUNK_START,
                    .last_flags = parent ? 0 : MK__BLAKE3_CHUNK_END,
                };
                uint8_t got[40 * 32], want[40 * 32];
                char what[64];
                snprintf(what, sizeof what,
                         "%s batch of %zu, counter %#" PRIx64,
                         parent ? "parent" : "chunk", n, b.counter);
                mk__blake3_hash_many(&b, n, got);
                mk__blake3_many_portable(&b, n, want);
                check(path, what, n * b.stride, got, want, 32 * n);
            }
        }
    }
}

static void test_kernels(void **state)
{
    (void)state;
    for_each_path(path_kernels);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oneshot),
        cmocka_unit_test(test_keyed),
        cmocka_unit_test(test_xof),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_final_and_copy),
        cmocka_unit_test(test_env_fallback),
#ifndef MK_BLAKE3_SYSTEM
        cmocka_unit_test(test_kernels),
#endif
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
