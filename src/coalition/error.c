/* Text for the CO_E* codes; MK_E* codes are passed to the substrate's table. */
#include "coalition/error.h"

const char *co_strerror(int code)
{
    switch (code) {
#define CO_ERROR_TEXT(name, value, msg)                                       \
    case CO_E##name:                                                          \
        return msg;
        CO_ERROR_MAP(CO_ERROR_TEXT)
#undef CO_ERROR_TEXT
    default:
        return mk_strerror(code);
    }
}

const char *co_err_name(int code)
{
    switch (code) {
#define CO_ERROR_NAME(name, value, msg)                                       \
    case CO_E##name:                                                          \
        return "CO_E" #name;
        CO_ERROR_MAP(CO_ERROR_NAME)
#undef CO_ERROR_NAME
    default:
        return mk_err_name(code);
    }
}
