/* Helpers the CLI and the daemon share (util.h). */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *log_prog = "coalition";
static bool log_quiet;

/* Process-wide by nature: one process writes one stderr. */
void util_log_set_prog(const char *prog)
{
    log_prog = prog;
}

void util_log_set_quiet(bool quiet)
{
    log_quiet = quiet;
}

void util_log(const char *level, const char *fmt, ...)
{
    if (log_quiet && strcmp(level, "ERROR") != 0)
        return;
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One write per line so concurrent processes don't interleave. */
    fprintf(stderr, "%s.%03ldZ %s %s %s\n", stamp, ts.tv_nsec / 1000000,
            log_prog, level, line);
}

int util_parse_u64(const char *s, uint64_t *out)
{
    /* strtoull alone would take " 7", "-7" (wrapped) and clamp overflow to
     * the largest value without a word. */
    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

int util_parse_duration_ms(const char *s, int64_t *ms, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!s || !*s)
        return *why = "empty", -1;
    if (*s == '-')
        return *why = "a duration cannot be negative", -1;
    /* Digits with an optional fraction, then the unit: strtod alone would
     * also take "nan", "inf", "1e999" and hex floats. */
    size_t i = strspn(s, "0123456789");
    size_t whole = i;
    if (s[i] == '.')
        i += 1 + strspn(s + i + 1, "0123456789");
    if (whole == 0 && i <= 1) {
        if (strncasecmp(s, "nan", 3) == 0 || strncasecmp(s, "inf", 3) == 0 ||
            strncasecmp(s, "+inf", 4) == 0)
            return *why = "not a finite number", -1;
        return *why = "not a number (like 250ms, 10s, 5m, 1h or 2d)", -1;
    }
    const char *unit = s + i;
    double scale;
    if (*unit == '\0' || strcmp(unit, "s") == 0)
        scale = 1000;
    else if (strcmp(unit, "ms") == 0)
        scale = 1;
    else if (strcmp(unit, "m") == 0)
        scale = 60e3;
    else if (strcmp(unit, "h") == 0)
        scale = 3600e3;
    else if (strcmp(unit, "d") == 0)
        scale = 86400e3;
    else
        return *why = "unknown unit (use ms, s, m, h or d)", -1;
    double total = strtod(s, NULL) * scale;
    /* 2^63 ms is about 292 million years; anything near it is a typo. */
    if (!isfinite(total) || total >= 9.2e18)
        return *why = "too large", -1;
    *ms = (int64_t)total;
    return 0;
}

int util_parse_millicores(const char *s, uint64_t *out)
{
    char *end;
    double x = strtod(s, &end);
    if (end == s || !(x > 0) || x > 1e9)
        return -1;
    if (strcmp(end, "m") == 0)
        *out = (uint64_t)(x + 0.5);
    else if (*end == '\0')
        *out = (uint64_t)(x * 1000 + 0.5);
    else
        return -1;
    return *out ? 0 : -1;
}

int util_parse_mib(const char *s, uint64_t *out)
{
    char *end;
    double x = strtod(s, &end);
    if (end == s || !(x >= 0) || x > 1e12)
        return -1;
    double scale;
    switch (*end) {
    case '\0': case 'M': case 'm': scale = 1; break;
    case 'K': case 'k': scale = 1.0 / 1024; break;
    case 'G': case 'g': scale = 1024; break;
    case 'T': case 't': scale = 1024.0 * 1024; break;
    default: return -1;
    }
    if (*end && end[1] && strcmp(end + 1, "i") != 0 &&
        strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
        return -1;
    *out = (uint64_t)(x * scale + 0.5);
    return 0;
}
