/* Text for the MK_E* codes and the one detail formatter, mk_errf
 * (include/mosaik/error.h). */
#include "mosaik/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *mk_strerror(int code)
{
    switch (code) {
#define MK_ERROR_TEXT(name, value, msg)                                       \
    case MK_E##name:                                                          \
        return msg;
        MK_ERROR_MAP(MK_ERROR_TEXT)
#undef MK_ERROR_TEXT
    case 0:
        return "success";
    default:
        /* Every other negated errno (EROFS, ENOTDIR, EMFILE, ...) reaches
         * callers from system calls: the C library's own text says what
         * happened. Our codes sit at -3000 and below. */
        if (code < 0 && code > -3000)
            return strerror(-code);
        return "unknown error";
    }
}

const char *mk_err_name(int code)
{
    switch (code) {
#define MK_ERROR_NAME(name, value, msg)                                       \
    case MK_E##name:                                                          \
        return "MK_E" #name;
        MK_ERROR_MAP(MK_ERROR_NAME)
#undef MK_ERROR_NAME
    case 0:
        return "OK";
    default:
        return "MK_EUNKNOWN";
    }
}

int mk_errf(char *err, int rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, MK_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return rc;
}
