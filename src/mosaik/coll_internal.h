/* Internals shared by the collection state machines (coll_*.c).
 *
 * The ordered kinds (Map, Set, PriorityQueue) keep their items in an
 * intrusive AVL tree: nodes live inside the items, so once a command has
 * allocated its items, linking and unlinking them cannot fail. That is
 * how every apply() stays all-or-nothing: decode and validate, allocate,
 * then mutate with nothing left that can fail.
 *
 * Wire layout (our own, built on codec.h):
 *   command   u8 (kind << 4 | op), fields
 *   query     u8 (0x80 | kind << 4 | q), fields
 *   snapshot  u8 (kind << 4 | 0x0f), u8 version (1), body
 *   outcome   varint changed, varint evicted, item
 *   item      u8 flags (FOUND, PRIO, KEY, VAL), then the flagged fields
 *             as byte strings in that order
 *   page      u8 field flags, u32be count, count items' fields, u8 more
 * Opcodes are disjoint across kinds so a command sent to the wrong kind
 * fails to decode instead of meaning something else.
 */
#ifndef MK_COLL_INTERNAL_H
#define MK_COLL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/codec.h"
#include "mosaik/collections.h"

#define MK__CONTAINER_OF(ptr, type, member)                                   \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

enum {
    MK__KIND_MAP = 1,
    MK__KIND_VEC = 2,
    MK__KIND_SET = 3,
    MK__KIND_CELL = 4,
    MK__KIND_ONCE = 5,
    MK__KIND_PQ = 6,
};

#define MK__CMD(kind, op) ((uint8_t)((kind) << 4 | (op)))
#define MK__QUERY(kind, q) ((uint8_t)(0x80 | (kind) << 4 | (q)))
#define MK__SNAP_TAG(kind) ((uint8_t)((kind) << 4 | 0x0f))
#define MK__SNAP_VERSION 1

/* Item flags, in replies and outcomes. */
enum {
    MK__ITEM_FOUND = 1,
    MK__ITEM_PRIO = 2,
    MK__ITEM_KEY = 4,
    MK__ITEM_VAL = 8,
};

/* ---- ordering ------------------------------------------------------------ */

/* memcmp order; a proper prefix sorts first. */
int mk__bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                  size_t blen);

/* ---- intrusive AVL tree -------------------------------------------------- */

typedef struct mk__node {
    struct mk__node *kid[2];
    int height;
} mk__node;

/* Compares a probe (whatever the tree's owner searches by) with a node:
 * <0, 0, >0. */
typedef int (*mk__cmp_fn)(const void *probe, const mk__node *n);

typedef struct mk__tree {
    mk__node *root;
    size_t len;
    mk__cmp_fn cmp;
} mk__tree;

typedef enum mk__seek {
    MK__GT, /* the first node after the probe */
    MK__GE, /* the first node at or after it */
    MK__LT, /* the last node before it */
    MK__LE, /* the last node at or before it */
} mk__seek;

void mk__tree_init(mk__tree *t, mk__cmp_fn cmp);
mk__node *mk__tree_find(const mk__tree *t, const void *probe);
/* Links `node` (found by `probe`); when an equal node is present, `node`
 * takes its place and the old node is returned for the caller to free.
 * Cannot fail. */
mk__node *mk__tree_put(mk__tree *t, const void *probe, mk__node *node);
/* Unlinks and returns the node equal to `probe`, or NULL. */
mk__node *mk__tree_remove(mk__tree *t, const void *probe);
mk__node *mk__tree_seek(const mk__tree *t, const void *probe, mk__seek how);
mk__node *mk__tree_first(const mk__tree *t);
mk__node *mk__tree_last(const mk__tree *t);
/* In-order walk (reverse when `descending`); a non-zero return from `cb`
 * stops it and is returned. The callback must not change the tree. */
int mk__tree_walk(const mk__tree *t, bool descending,
                  int (*cb)(mk__node *n, void *data), void *data);
/* Replaces an empty tree by a balanced one over `nodes`, which must be in
 * strictly increasing order. O(n). */
void mk__tree_build(mk__tree *t, mk__node **nodes, size_t n);
/* Unlinks every node, calling `drop` on each (children first). O(n). */
void mk__tree_drain(mk__tree *t, void (*drop)(mk__node *n));

/* ---- key/value items (Map, Set) ----------------------------------------- */

/* A key and a value in one allocation: the node, then key bytes, then
 * value bytes. */
typedef struct mk__kv {
    mk__node node;
    size_t klen, vlen;
    uint8_t bytes[];
} mk__kv;

/* A probe for mk__kv trees. */
typedef struct mk__probe {
    const uint8_t *p;
    size_t len;
} mk__probe;

mk__kv *mk__kv_new(const uint8_t *key, size_t klen, const uint8_t *val,
                   size_t vlen);
int mk__kv_cmp(const void *probe, const mk__node *n);
void mk__kv_drop(mk__node *n);
static inline mk__kv *mk__kv_of(const mk__node *n)
{
    return MK__CONTAINER_OF(n, mk__kv, node);
}
static inline const uint8_t *mk__kv_key(const mk__kv *kv)
{
    return kv->bytes;
}
static inline const uint8_t *mk__kv_val(const mk__kv *kv)
{
    return kv->bytes + kv->klen;
}

/* ---- optional values (Cell, Once) ---------------------------------------- */

typedef struct mk__value {
    uint8_t *p; /* malloc'd; NULL when empty or when len is 0 */
    size_t len;
    bool set;
} mk__value;

/* Replaces the value by a copy of (p, len). Returns 0 or MK_ENOMEM with
 * the value unchanged. */
int mk__value_set(mk__value *v, const uint8_t *p, size_t len);
void mk__value_clear(mk__value *v);
bool mk__value_get(const mk__value *v, mk_coll_item *out);
/* Snapshot: u8 tag, u8 version, u8 set (0 or 1), [bytes value]. */
int mk__value_snapshot(const mk__value *v, int kind, mk_buf *out);
int mk__value_restore(mk__value *v, int kind, const uint8_t *snap,
                      size_t len);

/* ---- shared encoding ----------------------------------------------------- */

/* The signature chain of collections.h. */
void mk__coll_signature(mk_id *out, const char *kind,
                        const mk_coll_config *cfg, bool with_capacity);

/* An optional byte string: u8 0, or u8 1 then the bytes. */
void mk__put_opt(mk_buf *b, const mk_coll_bytes *v);
/* Reads one; *present tells which. NULL with the reader's error set on a
 * malformed input, else a pointer (possibly to zero bytes). */
const uint8_t *mk__get_opt(mk_reader *r, bool *present, size_t *len);

/* Size bound of an encoded byte string of `n` bytes. */
static inline size_t mk__bytes_size(size_t n)
{
    return n + 10;
}

/* An item with the fields given by `flags` (MK__ITEM_*; without FOUND
 * only the flags byte is written). */
void mk__put_item(mk_buf *b, unsigned flags, const mk_coll_item *it);
/* The outcome of a command; `item` (with the MK__ITEM_* `fields`) may be
 * NULL, and so may `b` (nobody wants the result). Reserve first
 * (mk__outcome_reserve) so writing cannot fail after a mutation. */
void mk__put_outcome(mk_buf *b, uint64_t changed, uint64_t evicted,
                     const mk_coll_item *item, unsigned fields);
/* Reserves room for an outcome carrying up to `item_bytes` of fields.
 * `b` may be NULL (a caller that wants no result). Returns 0 or
 * MK_ENOMEM. */
int mk__outcome_reserve(mk_buf *b, size_t item_bytes);

/* Query reply helpers. */
void mk__put_len_reply(mk_buf *b, uint64_t n);

/* A page being written: header first, items, then finish. */
typedef struct mk__page {
    mk_buf *b;
    size_t count_at; /* where the u32be count goes, patched at the end */
    size_t start;    /* where the page starts in b */
    size_t count;
    size_t limit;
    unsigned fields;
} mk__page;

void mk__page_begin(mk__page *pg, mk_buf *b, unsigned fields,
                    uint64_t limit);
/* Adds one item; false when the page is full (the item was not added). */
bool mk__page_add(mk__page *pg, const mk_coll_item *it);
/* Writes `more` and patches the count. Returns the buffer's error. */
int mk__page_end(mk__page *pg, bool more);

/* Reads and checks a snapshot's two-byte header. */
void mk__get_snap_header(mk_reader *r, int kind);
void mk__put_snap_header(mk_buf *b, int kind);

/* Default and maximum page limits (0 or too large asks for the max). */
static inline size_t mk__page_limit(uint64_t limit)
{
    return limit == 0 || limit > MK_COLL_PAGE_MAX ? MK_COLL_PAGE_MAX
                                                  : (size_t)limit;
}

#endif /* MK_COLL_INTERNAL_H */
