/* Typed collection verbs: `coalition map|set|vec|cell|once|pq VERB`.
 *
 * A collection is one group (collections.h); these verbs are its typed
 * face in the shell, as etcdctl is etcd's. The pieces:
 *
 *   coll_verbs.c   the table: every kind's verbs, what arguments they take,
 *                  the command or query each encodes, how a list pages
 *   cmd_coll.c     options, the target group, one verb run to completion
 *   coll_out.c     printing items and outcomes as text or JSON
 *   coll_batch.c   --stdin: one write per line, pipelined
 *   coll_watch.c   watch: a replica, and the changes it applies
 */
#ifndef CO_TOOLS_COLL_CLI_H
#define CO_TOOLS_COLL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mosaik/collections.h"
#include "mosaik/group_client.h"
#include "session.h"

typedef enum coll_kind {
    COLL_MAP,
    COLL_SET,
    COLL_VEC,
    COLL_CELL,
    COLL_ONCE,
    COLL_PQ,
} coll_kind;

/* What a verb does, which decides how it is sent and printed. */
typedef enum coll_class {
    VERB_WRITE, /* one command; the outcome is printed */
    VERB_GET,   /* a query answered with one item, or none */
    VERB_HAS,   /* a query answered with found or not */
    VERB_LEN,   /* a query answered with a count */
    VERB_LIST,  /* page queries until the end or --limit */
    VERB_POP,   /* PriorityQueue: read the min or max, then claim it */
    VERB_WATCH, /* follow with a replica */
} coll_class;

/* How a write's outcome reads in text mode. */
typedef enum coll_said {
    SAY_OK,    /* "OK" */
    SAY_COUNT, /* the number of items changed (del, remove, clear) */
    SAY_ITEM,  /* the item taken out (vec pop); none: exit 1 */
    SAY_TOOK,  /* "OK" when it changed something, else exit 1 (once set) */
    SAY_INDEX, /* "OK", or exit 1: no element at that index (vec set) */
} coll_said;

/* Item fields, for arguments and output. */
enum {
    COLL_F_PRIO = 1,
    COLL_F_KEY = 2,
    COLL_F_VAL = 4,
    COLL_F_INDEX = 8,
};

/* A verb's arguments, parsed: the byte strings named by the verb's
 * `args` fields (borrowed from argv, a line, or a hex decoding), and an
 * index. */
typedef struct coll_args {
    mk_coll_item item;
    uint64_t index;
} coll_args;

typedef struct coll_verb {
    const char *name;
    const char *usage;  /* the argument words, for --help and errors */
    coll_class cls;
    unsigned args;      /* COLL_F_*: what the command line gives, in the
                           order INDEX, PRIO, KEY, VALUE */
    coll_said said;
    /* The command or query. NULL for list, pop and watch. */
    int (*encode)(mk_buf *out, const coll_args *a);
    bool max; /* pop-max (else pop-min) */
} coll_verb;

typedef struct coll_kind_def {
    const char *name;
    const char *what; /* one line for `coalition --help` */
    coll_kind kind;
    unsigned fields;  /* what an item of this kind has */
    const char *key_name; /* the JSON name of the key field */
    const coll_verb *verbs;
    size_t n_verbs;
} coll_kind_def;

const coll_kind_def *coll_kind_find(const char *name);
const coll_kind_def *coll_kind_at(coll_kind k);
const coll_verb *coll_verb_find(const coll_kind_def *k, const char *name);

/* A page query: items after `after` (map, set, pq; NULL from the first)
 * or from index `start` (vec). */
int coll_query_page(const coll_kind_def *k, mk_buf *out,
                    const mk_coll_item *after, uint64_t start,
                    uint32_t limit);
/* pq pop: min or max, and the claim (remove if the value is unchanged). */
int coll_query_end(mk_buf *out, bool max);
int coll_cmd_claim(mk_buf *out, const mk_coll_item *it);

/* ---- output (coll_out.c) --------------------------------------------- */

typedef struct coll_out {
    const coll_kind_def *k;
    bool json, hex;
} coll_out;

/* One item as a line: text fields `fields` separated by tabs, or a JSON
 * object with `op` (may be NULL) and the item's fields. `index` is
 * printed when `fields` has COLL_F_INDEX. */
void coll_print_item(const coll_out *o, const char *op,
                     const mk_coll_item *it, uint64_t index,
                     unsigned fields);
/* The JSON object for an outcome or failure of verb `v`: op, status,
 * applied, changed, evicted, the item taken out; `line` (> 0) for
 * batches. Caller decrefs. */
struct json_t *coll_outcome_json(const coll_out *o, const coll_verb *v,
                                 int status, uint64_t applied,
                                 const uint8_t *res, size_t len,
                                 uint64_t line);
/* Adds a byte field: a string when it is UTF-8 (and not --hex), else
 * `name`_hex (or `name` under --hex) with lowercase hex. */
void coll_json_bytes(const coll_out *o, struct json_t *obj, const char *name,
                     const uint8_t *p, size_t len);
/* Prints one JSON value as a compact line and flushes. Consumes `j`. */
void coll_print_json(struct json_t *j);
/* CLI exit status for a group status (0, MK_ECONNECT_TIMEOUT, else). */
int coll_exit_of(int status);
const char *coll_status_name(int status);

/* ---- arguments --------------------------------------------------------- */

/* Fills `a` from `n` words for verb `v`. Under --hex, byte words are
 * decoded into `scratch` (3 buffers the caller frees). Returns 0, or -1
 * with the reason in `why`. */
int coll_args_parse(const coll_verb *v, bool hex, char *const *words,
                    size_t n, coll_args *a, uint8_t *scratch[3], char *why,
                    size_t whylen);
/* How many words a verb takes. */
size_t coll_args_count(const coll_verb *v);

/* ---- a running verb ---------------------------------------------------- */

typedef struct coll_run {
    session s;
    mk_group_client *client;
    mk_id gid;
    coll_out out;
    uint32_t timeout_ms;
    uint64_t capacity;  /* pq: for the replica's machine */
    bool have_capacity;
    volatile bool stop; /* SIGINT */
} coll_run;

/* --stdin (coll_batch.c): runs every line; the exit status. */
int coll_batch(coll_run *r, const coll_verb *dflt, uint64_t window);

/* watch (coll_watch.c): the exit status. */
int coll_watch(coll_run *r, uint64_t count);

#endif
