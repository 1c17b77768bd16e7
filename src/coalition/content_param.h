/* Internal: the `key=value` parameters of a content string.
 *
 * Modules and confluences carry their tuning in the content string of
 * their config ("fx-correlator/v1;stall=partial;bound_ticks=4"): a
 * prefix, then `;key=value` pairs. Both read them here, so a value one
 * of them refuses the other refuses too.
 */
#ifndef CO_CONTENT_PARAM_H
#define CO_CONTENT_PARAM_H

#include <stddef.h>
#include <stdint.h>

/* The value of the first `key` in `content` (may be NULL) and its length
 * in `*len`; NULL when absent. Borrowed from `content`. */
const char *co__content_param(const char *content, const char *key,
                              size_t *len);

/* `key` as a decimal u64: 0 and the value (`dflt` when absent), or -1
 * when present but empty, not all digits or past UINT64_MAX. */
int co__content_param_u64(const char *content, const char *key, uint64_t dflt,
                          uint64_t *out);

#endif /* CO_CONTENT_PARAM_H */
