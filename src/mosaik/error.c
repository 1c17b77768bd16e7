/* Text for the MK_E* codes (include/mosaik/error.h). */
#include "mosaik/error.h"

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
