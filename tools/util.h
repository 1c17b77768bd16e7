/* Helpers the CLI and the daemon share: durations, logging, hex. */
#ifndef CO_TOOLS_UTIL_H
#define CO_TOOLS_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* "250ms", "10s", "5m", "1h", "2d", or a bare number of seconds ("1.5").
 * Returns 0 and milliseconds in *ms, or -1 with *why (static text, when
 * `why` is not NULL) saying what is wrong: negative, not finite ("nan",
 * "inf"), too large, not a number or an unknown unit. */
int util_parse_duration_ms(const char *s, int64_t *ms, const char **why);

/* Decimal digits only, fitting in *out; -1 otherwise (signs, blanks and
 * overflow included). */
int util_parse_u64(const char *s, uint64_t *out);

/* CPU as cores: "2", "0.5", or millicores "1500m". Returns 0 and
 * millicores (at least 1) in *out, or -1. */
int util_parse_millicores(const char *s, uint64_t *out);

/* A size: "512M", "2G", "1.5GiB", "64K", or a bare number of MiB.
 * Returns 0 and MiB (rounded) in *out, or -1. */
int util_parse_mib(const char *s, uint64_t *out);

/* One line to stderr: "2026-11-26T12:00:00.123Z <prog> <LEVEL> <msg>". */
void util_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void util_log_set_prog(const char *prog);
void util_log_set_quiet(bool quiet);

#endif
