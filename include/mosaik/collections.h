/* Replicated collections: Map, Vec, Set, Cell, Once and a double-ended
 * PriorityQueue as deterministic state machines (struct mk_fsm).
 *
 * Each collection instance is one group (mosaik.md §6.1): writers are
 * group members that submit the commands encoded here through
 * mk_group_execute; readers are mk_replica instances whose fsm is one of
 * these machines (a restore(), then every committed command). Reads are
 * local (the committed state this machine has applied) or strong (a query
 * encoded here, sent through mk_group_query and answered by the leader).
 *
 * Keys, values, elements and priorities are byte strings; callers type
 * them at their API edge. Ordering is bytewise (memcmp, a proper prefix
 * sorts first), so callers that want numeric order encode integers
 * big-endian with a fixed width (and flip the sign bit of signed ones).
 * Map, Set and PriorityQueue iterate and snapshot in that order, so every
 * replica writes the same snapshot bytes for the same state (unlike
 * mosaik, which relies on hash iteration order, Appendix D.11).
 *
 * Results. apply() writes an outcome (mk_coll_outcome_decode) that says
 * how many items a command changed: unlike mosaik, which returns only a
 * version, a compare-and-swap or a Once write tells its submitter whether
 * it took effect. Queries answer with a length, an item or a page of
 * items (mk_coll_reply_*).
 *
 * Failure. Commands, queries and snapshots are decoded with bounds and
 * validated completely before anything changes: malformed input makes
 * apply()/restore()/query() return MK_EDECODE and leaves the state as it
 * was; so does MK_ENOMEM. Out-of-range operations (a Vec index past the
 * end, an update of a missing key) are well-formed commands that change
 * nothing. Our encoders never produce malformed commands, so a group that
 * sees apply() fail (which stops it, group.h) has a buggy or hostile
 * submitter.
 *
 * Lifetimes. Byte pointers returned by local reads point into the state:
 * they stay valid until the next apply(), restore() or free of that
 * collection. Pointers from the reply decoders point into the reply.
 * Nothing here is thread-safe; like every fsm it runs on the node's loop.
 */
#ifndef MK_COLLECTIONS_H
#define MK_COLLECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/codec.h"
#include "mosaik/group.h"
#include "mosaik/id.h"

/* ---- shared types -------------------------------------------------------- */

/* A borrowed byte string. Where a parameter is `const mk_coll_bytes *`,
 * NULL means "absent" (mosaik's None); {NULL, 0} is a present empty
 * string. */
typedef struct mk_coll_bytes {
    const void *p;
    size_t len;
} mk_coll_bytes;

/* One item of a collection, as reads return it and batch commands take
 * it. Fields a kind does not use are {NULL, 0} on output and ignored on
 * input:
 *   Map: key, val     Set: key     Vec, Cell, Once: val
 *   PriorityQueue: prio, key, val
 */
typedef struct mk_coll_item {
    const uint8_t *prio;
    size_t prio_len;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *val;
    size_t val_len;
} mk_coll_item;

/* Visits one item; a non-zero return stops the walk and is returned by
 * the walk. The item (and its bytes) is valid during the call only. */
typedef int (*mk_coll_visit_cb)(const mk_coll_item *item, void *data);

typedef struct mk_coll_config {
    mk_id store;      /* the StoreId: one group per store and kind */
    const char *type; /* optional label of the caller's item types (like
                         mosaik's type_name); NULL or "" for none */
    uint64_t capacity; /* PriorityQueue only: 0 = unbounded */
} mk_coll_config;

/* Signatures (struct mk_fsm.signature, folded into the GroupId):
 *
 *   s = derive(id("mosaik_collections_<kind>"), store)    kind: map, vec,
 *                                          set, cell, once, depq
 *   s = derive(s, type)                    only when type is non-empty
 *   s = derive(s, u64le(capacity))         depq only; UINT64_MAX when
 *                                          unbounded (as mosaik)
 *
 * so different kinds, stores, type labels and capacities never share a
 * GroupId. derive() is mk_id_derive; the store is its 32 raw bytes.
 */

/* ---- outcomes and replies ------------------------------------------------ */

/* What apply() wrote for the submitter.
 *   changed: items the command changed (per command below); for a
 *            compare-and-swap 1 when the comparison matched (the state
 *            now holds `desired`, even if that equals the old value) and
 *            0 when it did not; for a Once write 1 when it took the value.
 *   evicted: PriorityQueue entries evicted by the capacity bound.
 *   item:    what a pop or remove took out (Vec), when has_item. */
typedef struct mk_coll_outcome {
    uint64_t changed;
    uint64_t evicted;
    bool has_item;
    mk_coll_item item;
} mk_coll_outcome;

/* Decodes apply()'s result. Returns 0 or MK_EDECODE. Cannot allocate. */
int mk_coll_outcome_decode(const void *res, size_t len, mk_coll_outcome *out);

/* Decodes the reply to a *_query_len. Returns 0 or MK_EDECODE. */
int mk_coll_reply_len(const void *res, size_t len, uint64_t *n);

/* Decodes the reply to a query for one item (get, contains, min, max):
 * `*found`, and the item's fields when found (a contains query carries no
 * fields). Returns 0 or MK_EDECODE. */
int mk_coll_reply_item(const void *res, size_t len, bool *found,
                       mk_coll_item *out);

/* Decodes the reply to a *_query_page: validates all of it first, then
 * calls `cb` for each item in order (a non-zero return stops and is
 * returned) and sets `*more` when the collection holds items past the
 * page. Returns 0, MK_EDECODE (and calls `cb` never), or cb's value. */
int mk_coll_reply_page(const void *res, size_t len, mk_coll_visit_cb cb,
                       void *data, bool *more);

/* A page holds at most this many items, and stops early once it holds
 * more than MK_COLL_PAGE_BYTES, so replies stay bounded; ask again after
 * the last item for the rest. */
#define MK_COLL_PAGE_MAX 4096
#define MK_COLL_PAGE_BYTES (256u * 1024u)

/* ---- command encoders -----------------------------------------------------
 *
 * Every encoder appends one command to `out` and returns 0, or the
 * buffer's sticky error (MK_ENOMEM). Its arguments are copied. Batch
 * commands take `n` items; an empty batch is a valid command that changes
 * nothing (mosaik does not even commit one: callers may skip it). A
 * command must fit the group's command size limit (mk_group_execute
 * answers MK_EMSGSIZE), so split very large batches.
 */

/* ---- Map: unique keys, iterated in key order --------------------------- */

typedef struct mk_map mk_map;

/* Creates an empty map. `cfg` is read during the call only (the type
 * label is hashed, not kept). Returns 0 and `*out`, or MK_ENOMEM. The
 * other kinds' *_new behave the same. */
int mk_map_new(const mk_coll_config *cfg, mk_map **out);
/* Frees the map and its machine (NULL is ignored). The group or replica
 * using its fsm must be closed first. */
void mk_map_free(mk_map *m);
/* The machine to hand to mk_group_config / mk_replica_config; it lives as
 * long as the map. */
struct mk_fsm *mk_map_fsm(mk_map *m);

/* insert: upsert (last write wins). changed 1.
 * cas: when the key's value equals `expected` byte for byte (NULL:
 *      the key is absent), sets it to `desired` (NULL: removes it).
 * remove: remove_many of one key. remove_many: changed = keys removed;
 *      missing keys are skipped. extend: upserts in order (a later
 *      duplicate wins); changed = n. clear: changed = entries removed. */
int mk_map_cmd_insert(mk_buf *out, const void *key, size_t klen,
                      const void *val, size_t vlen);
int mk_map_cmd_cas(mk_buf *out, const void *key, size_t klen,
                   const mk_coll_bytes *expected,
                   const mk_coll_bytes *desired);
int mk_map_cmd_remove(mk_buf *out, const void *key, size_t klen);
int mk_map_cmd_remove_many(mk_buf *out, const mk_coll_item *keys, size_t n);
int mk_map_cmd_extend(mk_buf *out, const mk_coll_item *entries, size_t n);
int mk_map_cmd_clear(mk_buf *out);

size_t mk_map_len(const mk_map *m);
/* The entry for `key` into `*out` (key, val). False when absent. */
bool mk_map_get(const mk_map *m, const void *key, size_t klen,
                mk_coll_item *out);
bool mk_map_contains(const mk_map *m, const void *key, size_t klen);
/* The first entry, or the first entry with a key after `after` (which
 * need not be present): a cursor that survives mutations between calls.
 * False at the end. O(log n). */
bool mk_map_first(const mk_map *m, mk_coll_item *out);
bool mk_map_next(const mk_map *m, const void *after, size_t alen,
                 mk_coll_item *out);
/* Visits every entry in key order. O(n). */
int mk_map_foreach(const mk_map *m, mk_coll_visit_cb cb, void *data);

/* Queries (for mk_group_query). get, contains -> mk_coll_reply_item;
 * len -> mk_coll_reply_len; page -> mk_coll_reply_page with entries whose
 * key is after `after` (NULL: from the first), at most `limit` (0 or
 * above MK_COLL_PAGE_MAX: MK_COLL_PAGE_MAX). */
int mk_map_query_get(mk_buf *out, const void *key, size_t klen);
int mk_map_query_contains(mk_buf *out, const void *key, size_t klen);
int mk_map_query_len(mk_buf *out);
int mk_map_query_page(mk_buf *out, const mk_coll_bytes *after,
                      uint32_t limit);

/* ---- Set: unique elements (in the `key` field), in order --------------- */

typedef struct mk_set mk_set;

int mk_set_new(const mk_coll_config *cfg, mk_set **out);
void mk_set_free(mk_set *s);
struct mk_fsm *mk_set_fsm(mk_set *s);

/* insert: changed 1 when the element was new. extend: changed = elements
 * that were new. remove, remove_many: changed = elements removed. clear:
 * changed = elements removed. */
int mk_set_cmd_insert(mk_buf *out, const void *elem, size_t len);
int mk_set_cmd_remove(mk_buf *out, const void *elem, size_t len);
int mk_set_cmd_remove_many(mk_buf *out, const mk_coll_item *elems,
                           size_t n);
int mk_set_cmd_extend(mk_buf *out, const mk_coll_item *elems, size_t n);
int mk_set_cmd_clear(mk_buf *out);

size_t mk_set_len(const mk_set *s);
bool mk_set_contains(const mk_set *s, const void *elem, size_t len);
bool mk_set_first(const mk_set *s, mk_coll_item *out);
bool mk_set_next(const mk_set *s, const void *after, size_t alen,
                 mk_coll_item *out);
int mk_set_foreach(const mk_set *s, mk_coll_visit_cb cb, void *data);
/* True when every element of `a` is in `b`. O(|a| log |b|). */
bool mk_set_is_subset(const mk_set *a, const mk_set *b);

int mk_set_query_contains(mk_buf *out, const void *elem, size_t len);
int mk_set_query_len(mk_buf *out);
int mk_set_query_page(mk_buf *out, const mk_coll_bytes *after,
                      uint32_t limit);

/* ---- Vec: a sequence (elements in the `val` field) ---------------------- */

typedef struct mk_vec mk_vec;

int mk_vec_new(const mk_coll_config *cfg, mk_vec **out);
void mk_vec_free(mk_vec *v);
struct mk_fsm *mk_vec_fsm(mk_vec *v);

/* Out-of-range operations are no-ops with changed 0, never errors (mosaik
 * panics on insert past the end, Appendix D.3; we do not clamp either):
 *   insert(index > len), remove(index >= len), set(index >= len), swap
 *   with an index >= len or i == j, truncate(len >= current), pop on an
 *   empty vec.
 * insert(index == len) appends. pop_*, remove: the outcome carries the
 * element taken out; set replaces an element in place (changed 1) and
 * carries the one it replaced. truncate, clear: changed = elements removed.
 * extend: appends in order, changed = n. push_*: changed 1.
 * Ends are O(1); insert and remove in the middle move up to len/2
 * pointers. */
int mk_vec_cmd_push_back(mk_buf *out, const void *elem, size_t len);
int mk_vec_cmd_push_front(mk_buf *out, const void *elem, size_t len);
int mk_vec_cmd_pop_back(mk_buf *out);
int mk_vec_cmd_pop_front(mk_buf *out);
int mk_vec_cmd_insert(mk_buf *out, uint64_t index, const void *elem,
                      size_t len);
int mk_vec_cmd_remove(mk_buf *out, uint64_t index);
int mk_vec_cmd_set(mk_buf *out, uint64_t index, const void *elem,
                   size_t len);
int mk_vec_cmd_swap(mk_buf *out, uint64_t i, uint64_t j);
int mk_vec_cmd_truncate(mk_buf *out, uint64_t len);
int mk_vec_cmd_extend(mk_buf *out, const mk_coll_item *elems, size_t n);
int mk_vec_cmd_clear(mk_buf *out);

size_t mk_vec_len(const mk_vec *v);
bool mk_vec_get(const mk_vec *v, uint64_t index, mk_coll_item *out);
bool mk_vec_front(const mk_vec *v, mk_coll_item *out);
bool mk_vec_back(const mk_vec *v, mk_coll_item *out);
/* The first index holding `elem` (a linear scan). */
bool mk_vec_index_of(const mk_vec *v, const void *elem, size_t len,
                     uint64_t *index);
bool mk_vec_contains(const mk_vec *v, const void *elem, size_t len);
int mk_vec_foreach(const mk_vec *v, mk_coll_visit_cb cb, void *data);

/* get -> reply_item; len -> reply_len; page -> the elements from `start`,
 * at most `limit`. */
int mk_vec_query_get(mk_buf *out, uint64_t index);
int mk_vec_query_len(mk_buf *out);
int mk_vec_query_page(mk_buf *out, uint64_t start, uint32_t limit);

/* ---- Cell: an optional value (in `val`) --------------------------------- */

typedef struct mk_cell mk_cell;

int mk_cell_new(const mk_coll_config *cfg, mk_cell **out);
void mk_cell_free(mk_cell *c);
struct mk_fsm *mk_cell_fsm(mk_cell *c);

/* write: changed 1. clear: changed 1 when there was a value. cas: as the
 * Map's, on the one value (NULL expected: empty; NULL desired: clear). */
int mk_cell_cmd_write(mk_buf *out, const void *val, size_t len);
int mk_cell_cmd_cas(mk_buf *out, const mk_coll_bytes *expected,
                    const mk_coll_bytes *desired);
int mk_cell_cmd_clear(mk_buf *out);

bool mk_cell_get(const mk_cell *c, mk_coll_item *out);
int mk_cell_query_get(mk_buf *out);

/* ---- Once: a value written at most once (in `val`) ---------------------- */

typedef struct mk_once mk_once;

int mk_once_new(const mk_coll_config *cfg, mk_once **out);
void mk_once_free(mk_once *o);
struct mk_fsm *mk_once_fsm(mk_once *o);

/* write: takes the value only while empty (changed 1); later writes
 * still commit but change nothing (changed 0). */
int mk_once_cmd_write(mk_buf *out, const void *val, size_t len);

bool mk_once_get(const mk_once *o, mk_coll_item *out);
int mk_once_query_get(mk_buf *out);

/* ---- PriorityQueue: a double-ended priority queue over unique keys -------
 *
 * Entries are (prio, key, val) with unique keys, ordered by (prio, key):
 * min is the smallest key of the lowest priority, max the largest key of
 * the highest (mosaik leaves both arbitrary within the bucket).
 *
 * Bounded (capacity > 0): after each insert or upsert that grows the
 * queue past its capacity, the minimum (the smallest key of the lowest
 * priority) is evicted, and that may be the entry just inserted. An
 * extend behaves as its inserts one after another. Updates of existing
 * keys never evict. */

typedef struct mk_pq mk_pq;

int mk_pq_new(const mk_coll_config *cfg, mk_pq **out);
void mk_pq_free(mk_pq *q);
struct mk_fsm *mk_pq_fsm(mk_pq *q);

/* A range end for remove_range: NULL is unbounded. */
typedef struct mk_pq_bound {
    const void *prio;
    size_t len;
    bool inclusive;
} mk_pq_bound;

/* insert: upsert (moves a present key to the new priority), changed 1.
 * extend: inserts in order, changed = n. update_priority, update_value:
 * changed 1, or 0 on a missing key. cas_value: when the key is present
 * and its value equals `expected`, sets it to `desired` keeping the
 * priority (NULL desired: removes the entry); a missing key never
 * matches. remove, remove_keys: changed = entries removed.
 * remove_range: removes every entry whose priority lies between the
 * bounds (an empty or inverted range removes nothing); changed = entries
 * removed. clear: changed = entries removed. */
int mk_pq_cmd_insert(mk_buf *out, const void *prio, size_t plen,
                     const void *key, size_t klen, const void *val,
                     size_t vlen);
int mk_pq_cmd_extend(mk_buf *out, const mk_coll_item *entries, size_t n);
int mk_pq_cmd_update_priority(mk_buf *out, const void *key, size_t klen,
                              const void *prio, size_t plen);
int mk_pq_cmd_update_value(mk_buf *out, const void *key, size_t klen,
                           const void *val, size_t vlen);
int mk_pq_cmd_cas_value(mk_buf *out, const void *key, size_t klen,
                        const void *expected, size_t elen,
                        const mk_coll_bytes *desired);
int mk_pq_cmd_remove(mk_buf *out, const void *key, size_t klen);
int mk_pq_cmd_remove_keys(mk_buf *out, const mk_coll_item *keys, size_t n);
int mk_pq_cmd_remove_range(mk_buf *out, const mk_pq_bound *lo,
                           const mk_pq_bound *hi);
int mk_pq_cmd_clear(mk_buf *out);

size_t mk_pq_len(const mk_pq *q);
/* 0 when unbounded. */
uint64_t mk_pq_capacity(const mk_pq *q);
/* The entry (prio, key, val) for `key`. */
bool mk_pq_get(const mk_pq *q, const void *key, size_t klen,
               mk_coll_item *out);
bool mk_pq_contains(const mk_pq *q, const void *key, size_t klen);
bool mk_pq_min(const mk_pq *q, mk_coll_item *out);
bool mk_pq_max(const mk_pq *q, mk_coll_item *out);
/* The entry after `after` (its prio and key) in ascending (prio, key)
 * order, or before it when `descending`; a cursor like mk_map_next. NULL
 * `after` starts at the min (or the max when descending). */
bool mk_pq_next(const mk_pq *q, const mk_coll_item *after, bool descending,
                mk_coll_item *out);
/* Visits every entry in ascending or descending (prio, key) order. */
int mk_pq_foreach(const mk_pq *q, bool descending, mk_coll_visit_cb cb,
                  void *data);

/* get, min, max -> reply_item (prio, key, val); len -> reply_len; page ->
 * entries after `after` (its prio and key; NULL: from the first) in the
 * given direction. */
int mk_pq_query_get(mk_buf *out, const void *key, size_t klen);
int mk_pq_query_min(mk_buf *out);
int mk_pq_query_max(mk_buf *out);
int mk_pq_query_len(mk_buf *out);
int mk_pq_query_page(mk_buf *out, const mk_coll_item *after,
                     bool descending, uint32_t limit);

#endif /* MK_COLLECTIONS_H */
