/* Shared helpers for the cmocka unit tests. */
#ifndef CO_TESTUTIL_H
#define CO_TESTUTIL_H

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <uv.h>

#include "mosaik/id.h"
#include "mosaik/key.h"
#include "mosaik/link.h"
#include "mosaik/node.h"

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

/* A started node on `loop` with key `k` (borrowed), listening on
 * 127.0.0.1:0 when `listen`, bootstrapped from `boot` (key `boot_key`)
 * unless that is NULL. Fails the test when it cannot be made. */
mk_node *tu_node_new(uv_loop_t *loop, const mk_keypair *k, bool listen,
                     mk_node *boot, const mk_keypair *boot_key);

/* Whether `n`'s catalog holds `who`. */
bool tu_knows(mk_node *n, const mk_peer_id *who);

/* Removes `dir` and everything under it (a test's data dir), quietly. */
void tu_rm_tree(const char *dir);

/* A bare link dialed to another node's ALPN, to see whether it is
 * served: `ended` with the close `code` once the link is gone (refused
 * with MK_CLOSE_INVALID_ALPN when nothing serves it). Caller memory; it
 * must outlive the link, which the probe never closes itself. */
typedef struct tu_probe {
    mk_link *link;        /* while connected */
    bool connected, ended;
    int dial_status;      /* < 0: the dial failed, `ended` set too */
    uint32_t code;        /* the close code, once ended */
} tu_probe;

/* Dials `to` (its address) from `from`'s transport speaking `alpn`. */
void tu_probe_start(tu_probe *p, mk_node *from, mk_node *to,
                    const char *alpn);

#endif
