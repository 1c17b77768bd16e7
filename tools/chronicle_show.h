/* How `coalition chronicle log` shows an entry's body: the record kinds
 * members write (coalition/chronicle_record.h) decoded, anything else as
 * short text or a size. */
#ifndef CLI_CHRONICLE_SHOW_H
#define CLI_CHRONICLE_SHOW_H

#include <jansson.h>
#include <stddef.h>

#include "coalition/chronicle.h"

/* One line, no newline. */
void chronicle_summary(const co_chronicle_entry *e, char *out, size_t len);

/* The body's fields as an object (new reference); NULL when the body is
 * not a record this build knows, or does not decode as one. */
json_t *chronicle_record_json(const co_chronicle_entry *e);

#endif
