/* Internal: config checks that report the failing key path separately, so
 * the JSON loader can turn the path into a line of the file. */
#ifndef CO_IDENTITY_CHECK_H
#define CO_IDENTITY_CHECK_H

#include "coalition/config.h"

typedef struct co__diag {
    char path[160]; /* "confluences[0].acl.mrtds[1]"; "" for the whole file */
    char what[320];
} co__diag;

/* 0, or CO_ECONFIG with `d` filled. */
int co__coalition_check(const co_coalition_config *c, co__diag *d);

/* Formats a diag as "path: what" into `err` (CO_ERRMSG_SIZE, may be NULL). */
void co__diag_format(const co__diag *d, char *err);

#endif /* CO_IDENTITY_CHECK_H */
