/* BLAKE3 throughput, one thread: each of our SIMD paths side by side with
 * the official `b3sum --num-threads 1` on the same input. Prints figures;
 * never asserts on time.
 *
 *   bench_blake3 [FILE]      (bench/blake3.sh passes a file in $TMPDIR)
 *
 * In memory: a 1 MiB buffer hashed SMALL_REPS times, and a 1 GiB buffer.
 * With FILE, which it fills with 1 GiB (plus FILE.1m and FILE.0, removed
 * at the end): the files hashed by us and by b3sum in turn. b3sum maps
 * files into memory, so our "file" figures map them too (read() in 1 MiB
 * pieces is shown beside, for 1 GiB). Each b3sum run is timed with its
 * start-up, an empty file's run, taken off. Both read the same
 * page-cached file, so the ratio compares hashing plus the same I/O.
 *
 * Every figure is the median of SAMPLES runs, in MB/s (10^6 bytes/s). The
 * machine may be shared: "cpu ratio" compares CPU time instead of wall
 * clock, which other processes taking the CPU do not skew.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mosaik/blake3.h"
#include "mosaik/blake3/blake3_impl.h"

#define SAMPLES 5
#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)
#define SMALL_REPS 256 /* 1 MiB hashes per sample */
#define READ_BUF MIB

extern char **environ;

static const char *const paths[] = {"portable", "sse41", "avx2", "avx512"};
#define NPATHS (sizeof paths / sizeof paths[0])

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return v[n / 2];
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double mbps(size_t bytes, double seconds)
{
    return (double)bytes / seconds / 1e6;
}

/* Keeps the compiler from dropping a hash nobody reads. */
static volatile uint8_t sink;

static void consume(const uint8_t out[MK_BLAKE3_OUT_LEN])
{
    for (int i = 0; i < MK_BLAKE3_OUT_LEN; i++)
        sink ^= out[i];
}

static double time_mem(const uint8_t *buf, size_t len, size_t reps)
{
    double t[SAMPLES];
    for (int s = 0; s < SAMPLES; s++) {
        uint8_t out[MK_BLAKE3_OUT_LEN];
        double t0 = now();
        for (size_t r = 0; r < reps; r++) {
            mk_blake3(buf, len, out);
            consume(out);
        }
        t[s] = now() - t0;
    }
    return mbps(len * reps, median(t, SAMPLES));
}

static int hash_read(const char *file, uint8_t *buf, uint8_t out[32])
{
    int fd = open(file, O_RDONLY);
    if (fd < 0)
        return -1;
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    for (;;) {
        ssize_t n = read(fd, buf, READ_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        mk_blake3_update(&h, buf, (size_t)n);
    }
    close(fd);
    mk_blake3_final(&h, out, MK_BLAKE3_OUT_LEN);
    return 0;
}

static int hash_mmap(const char *file, size_t len, uint8_t out[32])
{
    int fd = open(file, O_RDONLY);
    if (fd < 0)
        return -1;
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return -1;
    madvise(p, len, MADV_SEQUENTIAL);
    mk_blake3(p, len, out);
    munmap(p, len);
    return 0;
}

/* Seconds for one `b3sum --num-threads 1 --no-names` over `nfiles`
 * copies of `file`, the first hash it prints in `hex` (65 bytes); a
 * negative value if it could not run. Spawned, not forked: copying this
 * process's page tables (it holds 1 GiB) would cost more than b3sum's
 * start-up. */
static double time_b3sum(const char *file, size_t nfiles, char *hex,
                         double *cpu)
{
    char **args = calloc(nfiles + 5, sizeof *args);
    int fds[2];
    if (args == NULL || pipe(fds) != 0) {
        free(args);
        return -1;
    }
    args[0] = "b3sum";
    args[1] = "--num-threads";
    args[2] = "1";
    args[3] = "--no-names";
    for (size_t i = 0; i < nfiles; i++)
        args[4 + i] = (char *)file;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    double t0 = now();
    int rc = posix_spawnp(&pid, "b3sum", &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(args);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    /* Keep the first hash, drain the rest. */
    char got[64], chunk[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0) {
        size_t take = (size_t)n < sizeof got - len ? (size_t)n
                                                   : sizeof got - len;
        memcpy(got + len, chunk, take);
        len += take;
    }
    close(fds[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0 || len < 64)
        return -1;
    double t = now() - t0;
    *cpu = tv_seconds(ru.ru_utime) + tv_seconds(ru.ru_stime);
    memcpy(hex, got, 64);
    hex[64] = '\0';
    return t;
}

static void to_hex(const uint8_t *b, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int write_all(const char *file, const uint8_t *buf, size_t len)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return close(fd);
}

static int use_path(const char *name)
{
    setenv("MK_BLAKE3_IMPL", name, 1);
    mk__blake3_reset();
    return strcmp(mk_blake3_impl(), name) == 0;
}

static void check_hash(const char *path, const char *what,
                       const uint8_t out[32], const char *b3hex)
{
    char hex[65];
    to_hex(out, hex);
    if (b3hex[0] != '\0' && strcmp(hex, b3hex) != 0)
        printf("  !! %s, %s: %s but b3sum says %s\n", path, what, hex,
               b3hex);
}

/* One input size against b3sum on the same file: ours by mmap and by
 * read() (the latter only for the big file), b3sum right after, so that
 * both meet the same machine when it is shared and noisy. b3sum's time
 * has that of an empty run (its start-up) taken off, sample by sample.
 * The ratios are given by wall clock and by CPU time; the latter does not
 * see other processes taking the CPU, or page-cache misses. */
typedef struct vs {
    double mmap, read, b3sum; /* MB/s, wall clock */
    double cpu_ratio;         /* ours by mmap / b3sum, CPU time */
} vs;

static int compare(const char *path, const char *file, const char *empty,
                   size_t len, size_t nfiles, uint8_t *buf, vs *v)
{
    double tm[SAMPLES], tr[SAMPLES], tb[SAMPLES], cm[SAMPLES], cb[SAMPLES];
    char b3hex[65] = "";
    uint8_t out[32];
    int b3ok = 1;
    if (hash_read(file, buf, out) != 0) /* into the page cache */
        return -1;
    for (int s = 0; s < SAMPLES; s++) {
        double t0 = now(), c0 = cpu_now();
        for (size_t i = 0; i < nfiles; i++)
            if (hash_mmap(file, len, out) != 0)
                return -1;
        tm[s] = now() - t0;
        cm[s] = cpu_now() - c0;
        tr[s] = 0;
        if (nfiles == 1) {
            t0 = now();
            if (hash_read(file, buf, out) != 0)
                return -1;
            tr[s] = now() - t0;
        }
        double c_empty = 0, c_full = 0;
        double t_empty = b3ok ? time_b3sum(empty, 1, b3hex, &c_empty) : -1;
        double t_full =
            t_empty >= 0 ? time_b3sum(file, nfiles, b3hex, &c_full) : -1;
        b3ok = t_full >= 0;
        tb[s] = t_full - t_empty;
        cb[s] = c_full - c_empty;
    }
    check_hash(path, nfiles == 1 ? "big file" : "small file", out,
               b3ok ? b3hex : "");
    v->mmap = mbps(len * nfiles, median(tm, SAMPLES));
    v->read = nfiles == 1 ? mbps(len, median(tr, SAMPLES)) : 0;
    double b3 = median(tb, SAMPLES), b3cpu = median(cb, SAMPLES);
    v->b3sum = b3ok && b3 > 0 ? mbps(len * nfiles, b3) : 0;
    v->cpu_ratio = b3ok && b3cpu > 0 ? b3cpu / median(cm, SAMPLES) : 0;
    return 0;
}

int main(int argc, char **argv)
{
    const char *file = argc > 1 ? argv[1] : NULL;
    uint8_t *big = malloc(GIB), *rbuf = malloc(READ_BUF);
    if (big == NULL || rbuf == NULL) {
        fprintf(stderr, "bench_blake3: out of memory\n");
        return 1;
    }
    uint64_t x = 0x243F6A8885A308D3u;
    for (size_t i = 0; i < GIB; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(big + i, &x, 8);
    }

    /* The files: 1 GiB, 1 MiB (hashed SMALL_REPS times: by b3sum as that
     * many arguments of one run), and an empty one for b3sum's start-up. */
    char small_file[4096], empty_file[4096], tmp[65];
    int have_b3sum = 0;
    if (file != NULL) {
        snprintf(small_file, sizeof small_file, "%s.1m", file);
        snprintf(empty_file, sizeof empty_file, "%s.0", file);
        if (write_all(file, big, GIB) != 0 ||
            write_all(small_file, big, MIB) != 0 ||
            write_all(empty_file, big, 0) != 0) {
            fprintf(stderr, "bench_blake3: cannot write %s: %s\n", file,
                    strerror(errno));
            return 1;
        }
        double cpu;
        have_b3sum = time_b3sum(empty_file, 1, tmp, &cpu) >= 0;
        if (!have_b3sum)
            fprintf(stderr, "bench_blake3: b3sum did not run (Debian "
                            "package b3sum); only our figures follow\n");
    }

    printf("BLAKE3, one thread, median of %d runs, MB/s = 10^6 bytes/s.\n"
           "Default path here: %s.\n",
           SAMPLES, mk_blake3_impl());
    if (have_b3sum)
        printf("b3sum: `b3sum --num-threads 1` on the same page-cached "
               "file, run right after ours,\nless its start-up (an empty "
               "file). b3sum maps files; \"file\" is ours by mmap too.\n"
               "1 MiB file: hashed %d times (b3sum: one run with %d "
               "arguments).\nratio = ours / b3sum by wall clock (cpu: by "
               "CPU time, blind to other load).\n",
               SMALL_REPS, SMALL_REPS);
    printf("\n%-8s  %-41s  %s\n", "",
           "----------------- 1 MiB -----------------",
           "-------------------------- 1 GiB --------------------------");
    printf("%-8s  %7s %7s %7s %6s %9s  %7s %7s %7s %7s %6s %9s\n", "path",
           "memory", "file", "b3sum", "ratio", "cpu ratio", "memory",
           "read()", "file", "b3sum", "ratio", "cpu ratio");

    int rows = 0;
    for (size_t p = 0; p < NPATHS; p++) {
        if (use_path(paths[p])) {
            rows++;
        } else if (strcmp(mk_blake3_impl(), "libblake3") == 0 && rows == 0) {
            rows++; /* the system library: one row, under its name */
        } else {
            printf("%-8s  (not on this CPU: %s runs instead)\n", paths[p],
                   mk_blake3_impl());
            continue;
        }
        const char *name = mk_blake3_impl();
        double mem1 = time_mem(big, MIB, SMALL_REPS);
        double mem = time_mem(big, GIB, 1);
        vs small = {0, 0, 0, 0}, large = {0, 0, 0, 0};
        if (file != NULL &&
            (compare(name, small_file, empty_file, MIB, SMALL_REPS, rbuf,
                     &small) != 0 ||
             compare(name, file, empty_file, GIB, 1, rbuf, &large) != 0)) {
            fprintf(stderr, "bench_blake3: cannot read %s\n", file);
            return 1;
        }
        printf("%-8s  %7.0f %7.0f %7.0f %6.2f %9.2f  %7.0f %7.0f %7.0f "
               "%7.0f %6.2f %9.2f\n",
               name, mem1, small.mmap, small.b3sum,
               small.b3sum > 0 ? small.mmap / small.b3sum : 0,
               small.cpu_ratio, mem, large.read, large.mmap, large.b3sum,
               large.b3sum > 0 ? large.mmap / large.b3sum : 0,
               large.cpu_ratio);
    }
    if (file != NULL) {
        unlink(small_file);
        unlink(empty_file);
    }
    unsetenv("MK_BLAKE3_IMPL");
    mk__blake3_reset();
    free(big);
    free(rbuf);
    return 0;
}
