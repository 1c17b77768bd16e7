/* Log lines (logline.h). */
#include "logline.h"

#include <stdio.h>

void co__vlog(co__log_fn log, void *data, const char *level,
              const char *prefix, const char *fmt, va_list ap)
{
    if (!log)
        return;
    char line[CO__LOG_LINE];
    int n = prefix ? snprintf(line, sizeof line, "%s", prefix) : 0;
    if (n < 0)
        n = 0;
    else if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1; /* the prefix, cut, is the whole line */
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    log(level, line, data);
}
