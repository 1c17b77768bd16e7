/* CPU a benchmark's child process has used, read from /proc: how the
 * link and blob benchmarks charge each side of a transfer. */
#ifndef BENCH_PROC_CPU_H
#define BENCH_PROC_CPU_H

#include <sys/types.h>

/* Seconds of user + system CPU this process has used so far. */
double self_cpu(void);

/* Seconds of user + system CPU `pid` has used so far, in clock ticks
 * (10 ms here); readable until the child is waited for, also as a
 * zombie. 0 when it cannot be read. */
double proc_cpu(pid_t pid);

#endif /* BENCH_PROC_CPU_H */
