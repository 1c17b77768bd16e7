/* Internal: the one way coalition objects turn a formatted message into a
 * line for the log callback their config carries (may be NULL). Each
 * object keeps a short `say` wrapper for its own prefix and callback. */
#ifndef CO_LOGLINE_H
#define CO_LOGLINE_H

#include <stdarg.h>

/* The shape of every config's `log` member. */
typedef void (*co__log_fn)(const char *level, const char *line, void *data);

/* Longer lines are cut: a log line is for people, not a record. */
#define CO__LOG_LINE 768

/* Formats `prefix` (may be NULL) then `fmt` into one line on the stack and
 * hands it to `log` with `data`; does nothing when `log` is NULL. */
void co__vlog(co__log_fn log, void *data, const char *level,
              const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

#endif /* CO_LOGLINE_H */
