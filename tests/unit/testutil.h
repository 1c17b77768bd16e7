/* Shared helpers for the cmocka unit tests. */
#ifndef CO_TESTUTIL_H
#define CO_TESTUTIL_H

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <uv.h>

#include "mosaik/id.h"

/* $VECTORS_DIR/<name> parsed; fails the test when missing. Caller decrefs. */
json_t *tu_load_vectors(const char *name);

/* Path of a file under $VECTORS_DIR, in a static buffer. */
const char *tu_vector_path(const char *name);

/* Asserts `id` prints as `hex` (64 lowercase characters). */
#define assert_id_hex(id, hex) tu_assert_id_hex((id), (hex), __FILE__, __LINE__)
void tu_assert_id_hex(const mk_id *id, const char *hex, const char *file,
                      int line);

/* The string at a path like "expected.confluences[0].fingerprint". */
const char *tu_json_str(json_t *root, const char *path);

/* Runs `loop` for `ms` milliseconds of its timers, whatever else is on
 * it, so a test can wait on a real committee or link in its own loop. */
void tu_spin(uv_loop_t *loop, int ms);

#endif
