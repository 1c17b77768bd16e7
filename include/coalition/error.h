/* Error codes of the coalition layer.
 *
 * co_* calls return 0 (or a count) on success and a negative code on
 * failure: either one of the CO_E* codes below or an MK_E* code passed up
 * from the substrate (a handle that nobody answers fails with
 * MK_ECONNECT_TIMEOUT, never "not found": without a registry nobody can
 * tell "nobody runs this" from "not up yet").
 */
#ifndef CO_ERROR_H
#define CO_ERROR_H

#include "mosaik/error.h"

/* XX(name, value, message) */
#define CO_ERROR_MAP(XX)                                                      \
    XX(CONFIG, -4001, "invalid coalition configuration")                      \
    XX(NOTSHIPPED, -4002, "the coalition does not ship this component")       \
    XX(RETIRED, -4003, "component retired")                                   \
    XX(UNVERIFIED, -4004, "not enough valid committee signatures")            \
    XX(CHAIN, -4005, "hash chain does not verify")

enum {
#define CO_ERROR_ENUM(name, value, msg) CO_E##name = (value),
    CO_ERROR_MAP(CO_ERROR_ENUM)
#undef CO_ERROR_ENUM
};

/* Size of the detail buffers the co_* calls that take `err` fill: the
 * substrate's size, so a message passes between the layers whole
 * (mk_errf fills either). */
#define CO_ERRMSG_SIZE MK_ERRMSG_SIZE

/* Fixed text for a CO_E* or MK_E* code. Never NULL. */
const char *co_strerror(int code);

/* "CO_ECONFIG" style name for a CO_E* or MK_E* code. Never NULL. */
const char *co_err_name(int code);

#endif /* CO_ERROR_H */
