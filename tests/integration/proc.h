/* Test helper: run a program to completion and capture what it printed. */
#ifndef CO_TEST_PROC_H
#define CO_TEST_PROC_H

#include <stddef.h>

typedef struct proc_result {
    int status;   /* exit status, or 128 + signal */
    char *out;    /* everything on stdout, NUL-terminated (caller frees) */
    char *err;    /* everything on stderr, NUL-terminated (caller frees) */
} proc_result;

/* Runs argv[0] (a path) with `stdin_text` (may be NULL) on its stdin.
 * Returns 0 and fills `r`, or -1 when it could not be started. */
int proc_run(char *const argv[], const char *stdin_text, proc_result *r);

void proc_result_free(proc_result *r);

/* $BUILD_DIR/<rel>, in a static buffer per call site's copy. */
const char *build_path(const char *rel, char *buf, size_t len);

#endif
