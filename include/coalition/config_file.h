/* Coalition configs as JSON files (SPEC §3), the form tools read.
 *
 * Loading is strict: unknown keys, duplicate keys, wrong types, missing
 * fields, bad hex, duplicate citizens, two modules of one kind and
 * references to undeclared citizens are all errors, reported as
 * "FILE:LINE: KEY.PATH: what is wrong". Nothing is guessed.
 */
#ifndef CO_CONFIG_FILE_H
#define CO_CONFIG_FILE_H

#include <stddef.h>

#include "coalition/config.h"
#include "coalition/error.h"

/* A loaded coalition: owns the config and every string it points at. */
typedef struct co_config_file co_config_file;

/* Largest config file accepted, so a wrong path cannot exhaust memory. */
#define CO_CONFIG_MAX_BYTES (16u << 20)

/* Reads and validates `path`. Returns 0 and sets `*out` (free it with
 * co_config_file_free), or a negative code with `err` (CO_ERRMSG_SIZE
 * bytes) naming the file, line, key path and problem, and `*out` NULL:
 * CO_ECONFIG for bad content, MK_E* for a file that cannot be read. */
int co_config_file_load(const char *path, co_config_file **out, char *err);

/* The same over `len` bytes of JSON; `source` names them in messages. */
int co_config_file_parse(const char *json, size_t len, const char *source,
                         co_config_file **out, char *err);

/* The loaded config; valid until co_config_file_free. */
const co_coalition_config *co_config_file_coalition(const co_config_file *f);

/* Frees everything; NULL is fine. */
void co_config_file_free(co_config_file *f);

/* Writes `c` as JSON that co_config_file_parse reads back to the same
 * fingerprints. Returns 0 and a malloc'd NUL-terminated text in `*json`
 * (the caller frees it), or CO_ECONFIG (invalid config, reason in `err`) or
 * MK_ENOMEM. */
int co_config_to_json(const co_coalition_config *c, char **json, char *err);

/* co_config_to_json into `path`, replaced atomically (write, fsync,
 * rename): a failure leaves any previous file untouched. */
int co_config_save(const co_coalition_config *c, const char *path,
                   char *err);

#endif /* CO_CONFIG_FILE_H */
