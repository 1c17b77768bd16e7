/* Replicated collections: the semantics of every command of every kind
 * (the type-specific cases of mosaik.md §11.5), queries, signatures, and
 * refusal of malformed commands and snapshots without partial changes.
 * Randomized properties (models, determinism, round trips at size) live
 * in test_collections_props.c. */
#include <stdio.h>

#include "coll_util.h"

static mk_coll_config config(const char *store)
{
    mk_coll_config c;
    memset(&c, 0, sizeof c);
    mk_id_from_str(&c.store, store);
    return c;
}

/* ---- Map ------------------------------------------------------------------ */

typedef struct collect {
    char text[512]; /* "k=v," for each item */
} collect;

static int collect_kv(const mk_coll_item *it, void *data)
{
    collect *c = data;
    size_t at = strlen(c->text);
    snprintf(c->text + at, sizeof c->text - at, "%.*s=%.*s,",
             (int)it->key_len, (const char *)it->key, (int)it->val_len,
             (const char *)it->val);
    return 0;
}

static const char *map_text(const mk_map *m, collect *c)
{
    c->text[0] = '\0';
    assert_int_equal(mk_map_foreach(m, collect_kv, c), 0);
    return c->text;
}

static void map_smoke(void **state)
{
    mk_coll_config cfg = config("map-smoke");
    mk_map *m;
    assert_int_equal(mk_map_new(&cfg, &m), 0);
    cu_harness h;
    cu_init(&h, mk_map_fsm(m));
    collect c;
    mk_coll_item it;

    /* The whole read API on an empty map. */
    assert_int_equal(mk_map_len(m), 0);
    assert_false(mk_map_get(m, S("a"), &it));
    assert_false(mk_map_contains(m, S("a")));
    assert_false(mk_map_first(m, &it));
    assert_string_equal(map_text(m, &c), "");

    assert_int_equal(cu_run(&h, mk_map_cmd_insert(&h.cmd, S("b"), S("2"))),
                     1);
    assert_int_equal(cu_run(&h, mk_map_cmd_insert(&h.cmd, S("a"), S("1"))),
                     1);
    assert_int_equal(cu_run(&h, mk_map_cmd_insert(&h.cmd, S("c"), S("3"))),
                     1);
    assert_int_equal(mk_map_len(m), 3);
    /* Overwrite: last write wins, the length stays. */
    assert_int_equal(
        cu_run(&h, mk_map_cmd_insert(&h.cmd, S("a"), S("one"))), 1);
    assert_int_equal(mk_map_len(m), 3);
    assert_true(mk_map_get(m, S("a"), &it));
    cu_assert_bytes(it.key, it.key_len, "a");
    cu_assert_bytes(it.val, it.val_len, "one");
    assert_null(it.prio);
    assert_string_equal(map_text(m, &c), "a=one,b=2,c=3,");

    mk_coll_item ext[] = {
        {.key = (const uint8_t *)"d", .key_len = 1,
         .val = (const uint8_t *)"4", .val_len = 1},
        {.key = (const uint8_t *)"e", .key_len = 1,
         .val = (const uint8_t *)"5", .val_len = 1},
    };
    assert_int_equal(cu_run(&h, mk_map_cmd_extend(&h.cmd, ext, 2)), 2);
    assert_true(mk_map_contains(m, S("e")));
    assert_string_equal(map_text(m, &c), "a=one,b=2,c=3,d=4,e=5,");

    /* The cursor walks in key order and survives a removal of the key it
     * stands on. */
    assert_true(mk_map_first(m, &it));
    cu_assert_bytes(it.key, it.key_len, "a");
    assert_true(mk_map_next(m, S("b"), &it));
    cu_assert_bytes(it.key, it.key_len, "c");
    assert_int_equal(cu_run(&h, mk_map_cmd_remove(&h.cmd, S("c"))), 1);
    assert_true(mk_map_next(m, S("c"), &it));
    cu_assert_bytes(it.key, it.key_len, "d");
    assert_false(mk_map_next(m, S("e"), &it));

    assert_int_equal(cu_run(&h, mk_map_cmd_clear(&h.cmd)), 4);
    assert_int_equal(mk_map_len(m), 0);
    assert_int_equal(cu_run(&h, mk_map_cmd_clear(&h.cmd)), 0);
    cu_fini(&h);
    mk_map_free(m);
}

static void map_key_order(void **state)
{
    mk_coll_config cfg = config("map-order");
    mk_map *m;
    assert_int_equal(mk_map_new(&cfg, &m), 0);
    cu_harness h;
    cu_init(&h, mk_map_fsm(m));
    /* Bytewise order: a proper prefix first, the empty key before all,
     * bytes unsigned (0xff after 'z'), NUL bytes allowed. */
    const char *keys[] = {"b", "", "ab", "a", "\xff", "a\0", "z"};
    size_t lens[] = {1, 0, 2, 1, 1, 2, 1};
    for (size_t i = 0; i < 7; i++)
        cu_run(&h, mk_map_cmd_insert(&h.cmd, keys[i], lens[i], S("v")));
    const char *want[] = {"", "a", "a\0", "ab", "b", "z", "\xff"};
    size_t wlen[] = {0, 1, 2, 2, 1, 1, 1};
    mk_coll_item it;
    bool ok = mk_map_first(m, &it);
    for (size_t i = 0; i < 7; i++) {
        assert_true(ok);
        assert_int_equal(it.key_len, wlen[i]);
        if (wlen[i])
            assert_memory_equal(it.key, want[i], wlen[i]);
        ok = mk_map_next(m, it.key, it.key_len, &it);
    }
    assert_false(ok);
    cu_fini(&h);
    mk_map_free(m);
}

static void map_extend_overlap_and_remove(void **state)
{
    mk_coll_config cfg = config("map-extend");
    mk_map *m;
    assert_int_equal(mk_map_new(&cfg, &m), 0);
    cu_harness h;
    cu_init(&h, mk_map_fsm(m));
    collect c;
    cu_run(&h, mk_map_cmd_insert(&h.cmd, S("a"), S("old")));
    cu_run(&h, mk_map_cmd_insert(&h.cmd, S("b"), S("old")));
    /* Overlapping keys update values; a duplicate within the batch: the
     * later one wins, as two inserts would. */
    mk_coll_item ext[] = {
        {.key = (const uint8_t *)"b", .key_len = 1,
         .val = (const uint8_t *)"x", .val_len = 1},
        {.key = (const uint8_t *)"c", .key_len = 1,
         .val = (const uint8_t *)"y", .val_len = 1},
        {.key = (const uint8_t *)"b", .key_len = 1,
         .val = (const uint8_t *)"z", .val_len = 1},
    };
    assert_int_equal(cu_run(&h, mk_map_cmd_extend(&h.cmd, ext, 3)), 3);
    assert_string_equal(map_text(m, &c), "a=old,b=z,c=y,");
    /* An empty extend is a valid command that changes nothing. */
    assert_int_equal(cu_run(&h, mk_map_cmd_extend(&h.cmd, NULL, 0)), 0);
    assert_string_equal(map_text(m, &c), "a=old,b=z,c=y,");

    /* Removing what is not there is a no-op; remove_many counts only what
     * it removed, and an empty list changes nothing. */
    assert_int_equal(cu_run(&h, mk_map_cmd_remove(&h.cmd, S("nope"))), 0);
    mk_coll_item keys[] = {
        {.key = (const uint8_t *)"a", .key_len = 1},
        {.key = (const uint8_t *)"missing", .key_len = 7},
        {.key = (const uint8_t *)"c", .key_len = 1},
        {.key = (const uint8_t *)"a", .key_len = 1},
    };
    assert_int_equal(cu_run(&h, mk_map_cmd_remove_many(&h.cmd, keys, 4)), 2);
    assert_string_equal(map_text(m, &c), "b=z,");
    assert_int_equal(cu_run(&h, mk_map_cmd_remove_many(&h.cmd, NULL, 0)), 0);
    /* Remove all entries, then rebuild. */
    assert_int_equal(cu_run(&h, mk_map_cmd_remove(&h.cmd, S("b"))), 1);
    assert_int_equal(mk_map_len(m), 0);
    cu_run(&h, mk_map_cmd_insert(&h.cmd, S("n"), S("1")));
    assert_string_equal(map_text(m, &c), "n=1,");
    cu_fini(&h);
    mk_map_free(m);
}

static void map_cas(void **state)
{
    mk_coll_config cfg = config("map-cas");
    mk_map *m;
    assert_int_equal(mk_map_new(&cfg, &m), 0);
    cu_harness h;
    cu_init(&h, mk_map_fsm(m));
    collect c;
    mk_coll_bytes v1 = {"1", 1}, v2 = {"2", 1}, v3 = {"3", 1};
    mk_coll_bytes wrong = {"9", 1}, empty = {NULL, 0};

    /* None -> None on an empty map matches and changes nothing. */
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("k"), NULL, NULL)),
                     1);
    assert_int_equal(mk_map_len(m), 0);
    /* Mismatch on a missing key. */
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("k"), &v1, &v2)),
                     0);
    assert_int_equal(mk_map_len(m), 0);
    /* Chained None -> 1 -> 2 -> 3 -> None. */
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("k"), NULL, &v1)),
                     1);
    assert_string_equal(map_text(m, &c), "k=1,");
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("k"), &v1, &v2)),
                     1);
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("k"), &v2, &v3)),
                     1);
    assert_string_equal(map_text(m, &c), "k=3,");
    /* Mismatches: a wrong expected value, and None on a present key. */
    assert_int_equal(
        cu_run(&h, mk_map_cmd_cas(&h.cmd, S("k"), &wrong, &v1)), 0);
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("k"), NULL, &v1)),
                     0);
    /* An empty present value is not None. */
    assert_int_equal(
        cu_run(&h, mk_map_cmd_cas(&h.cmd, S("k"), &empty, &v1)), 0);
    assert_string_equal(map_text(m, &c), "k=3,");
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("k"), &v3, NULL)),
                     1);
    assert_int_equal(mk_map_len(m), 0);

    /* Multiple keys, mixed with inserts and removes; binary values are
     * compared byte for byte. */
    mk_coll_bytes bin = {"\0\1\0", 3}, bin2 = {"\0\1", 2};
    cu_run(&h, mk_map_cmd_insert(&h.cmd, S("x"), "\0\1\0", 3));
    cu_run(&h, mk_map_cmd_insert(&h.cmd, S("y"), S("1")));
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("x"), &bin2, &v2)),
                     0);
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("x"), &bin, &v2)),
                     1);
    cu_run(&h, mk_map_cmd_remove(&h.cmd, S("y")));
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("y"), &v1, &v2)),
                     0);
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("y"), NULL, &empty)),
                     1);
    assert_string_equal(map_text(m, &c), "x=2,y=,");
    /* The same value in and out still reports a match. */
    assert_int_equal(cu_run(&h, mk_map_cmd_cas(&h.cmd, S("x"), &v2, &v2)),
                     1);
    cu_fini(&h);
    mk_map_free(m);
}

/* Collects a page reply's items as text into a `collect`. */
static void page_text(const cu_harness *h, collect *c, bool *more)
{
    c->text[0] = '\0';
    assert_int_equal(
        mk_coll_reply_page(h->res.data, h->res.len, collect_kv, c, more), 0);
}

static void map_queries(void **state)
{
    mk_coll_config cfg = config("map-query");
    mk_map *m;
    assert_int_equal(mk_map_new(&cfg, &m), 0);
    cu_harness h;
    cu_init(&h, mk_map_fsm(m));
    collect c;
    bool found, more;
    mk_coll_item it;
    uint64_t n;

    cu_query(&h, mk_map_query_len(&h.cmd));
    assert_int_equal(mk_coll_reply_len(h.res.data, h.res.len, &n), 0);
    assert_int_equal(n, 0);
    cu_query(&h, mk_map_query_get(&h.cmd, S("a")));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_false(found);
    cu_query(&h, mk_map_query_page(&h.cmd, NULL, 0));
    page_text(&h, &c, &more);
    assert_string_equal(c.text, "");
    assert_false(more);

    for (char k = 'a'; k <= 'e'; k++)
        cu_run(&h, mk_map_cmd_insert(&h.cmd, &k, 1, &k, 1));
    cu_query(&h, mk_map_query_get(&h.cmd, S("c")));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_true(found);
    cu_assert_bytes(it.key, it.key_len, "c");
    cu_assert_bytes(it.val, it.val_len, "c");
    cu_query(&h, mk_map_query_contains(&h.cmd, S("e")));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_true(found);
    assert_null(it.val);
    cu_query(&h, mk_map_query_len(&h.cmd));
    assert_int_equal(mk_coll_reply_len(h.res.data, h.res.len, &n), 0);
    assert_int_equal(n, 5);

    /* Pages of two: a, b | c, d | e. */
    cu_query(&h, mk_map_query_page(&h.cmd, NULL, 2));
    page_text(&h, &c, &more);
    assert_string_equal(c.text, "a=a,b=b,");
    assert_true(more);
    mk_coll_bytes after = {"b", 1};
    cu_query(&h, mk_map_query_page(&h.cmd, &after, 2));
    page_text(&h, &c, &more);
    assert_string_equal(c.text, "c=c,d=d,");
    assert_true(more);
    after.p = "d";
    cu_query(&h, mk_map_query_page(&h.cmd, &after, 2));
    page_text(&h, &c, &more);
    assert_string_equal(c.text, "e=e,");
    assert_false(more);
    /* The cursor need not be a present key. */
    after.p = "bb";
    after.len = 2;
    cu_query(&h, mk_map_query_page(&h.cmd, &after, 0));
    page_text(&h, &c, &more);
    assert_string_equal(c.text, "c=c,d=d,e=e,");

    /* Queries change nothing and malformed ones are refused. */
    mk_buf_reset(&h.res);
    uint8_t bad[] = {0x91, 0x05, 'a'}; /* get with a length past the end */
    assert_int_equal(h.f->query(h.f, bad, sizeof bad, &h.res), MK_EDECODE);
    uint8_t other[] = {0xA0}; /* a Vec query */
    assert_int_equal(h.f->query(h.f, other, 1, &h.res), MK_EDECODE);
    assert_int_equal(mk_map_len(m), 5);
    cu_fini(&h);
    mk_map_free(m);
}

/* ---- Set ------------------------------------------------------------------ */

static int collect_key(const mk_coll_item *it, void *data)
{
    collect *c = data;
    size_t at = strlen(c->text);
    snprintf(c->text + at, sizeof c->text - at, "%.*s,", (int)it->key_len,
             (const char *)it->key);
    return 0;
}

static const char *set_text(const mk_set *s, collect *c)
{
    c->text[0] = '\0';
    assert_int_equal(mk_set_foreach(s, collect_key, c), 0);
    return c->text;
}

static mk_coll_item K(const char *s)
{
    mk_coll_item it;
    memset(&it, 0, sizeof it);
    it.key = (const uint8_t *)s;
    it.key_len = strlen(s);
    return it;
}

static mk_coll_item V(const char *s)
{
    mk_coll_item it;
    memset(&it, 0, sizeof it);
    it.val = (const uint8_t *)s;
    it.val_len = strlen(s);
    return it;
}

static void set_semantics(void **state)
{
    mk_coll_config cfg = config("set");
    mk_set *s, *t;
    assert_int_equal(mk_set_new(&cfg, &s), 0);
    assert_int_equal(mk_set_new(&cfg, &t), 0);
    cu_harness h, ht;
    cu_init(&h, mk_set_fsm(s));
    cu_init(&ht, mk_set_fsm(t));
    collect c;

    assert_int_equal(mk_set_len(s), 0);
    assert_false(mk_set_contains(s, S("a")));
    assert_int_equal(cu_run(&h, mk_set_cmd_insert(&h.cmd, S("b"))), 1);
    /* A duplicate leaves the size alone. */
    assert_int_equal(cu_run(&h, mk_set_cmd_insert(&h.cmd, S("b"))), 0);
    assert_int_equal(mk_set_len(s), 1);
    /* Extend with duplicates, inside the batch and against the set. */
    mk_coll_item ext[] = {K("c"), K("a"), K("b"), K("c"), K("d")};
    assert_int_equal(cu_run(&h, mk_set_cmd_extend(&h.cmd, ext, 5)), 3);
    assert_string_equal(set_text(s, &c), "a,b,c,d,");
    assert_int_equal(cu_run(&h, mk_set_cmd_extend(&h.cmd, NULL, 0)), 0);
    assert_true(mk_set_contains(s, S("d")));

    /* Subsets. */
    assert_true(mk_set_is_subset(t, s)); /* empty */
    mk_coll_item sub[] = {K("a"), K("d")};
    cu_run(&ht, mk_set_cmd_extend(&ht.cmd, sub, 2));
    assert_true(mk_set_is_subset(t, s));
    assert_false(mk_set_is_subset(s, t));
    cu_run(&ht, mk_set_cmd_insert(&ht.cmd, S("zz")));
    assert_false(mk_set_is_subset(t, s));
    assert_true(mk_set_is_subset(s, s));

    /* Removals: nonexistent, many (with missing and repeated). */
    assert_int_equal(cu_run(&h, mk_set_cmd_remove(&h.cmd, S("q"))), 0);
    mk_coll_item rm[] = {K("a"), K("q"), K("a"), K("c")};
    assert_int_equal(cu_run(&h, mk_set_cmd_remove_many(&h.cmd, rm, 4)), 2);
    assert_string_equal(set_text(s, &c), "b,d,");
    mk_coll_item it;
    assert_true(mk_set_first(s, &it));
    cu_assert_bytes(it.key, it.key_len, "b");
    assert_true(mk_set_next(s, S("b"), &it));
    cu_assert_bytes(it.key, it.key_len, "d");
    assert_false(mk_set_next(s, S("d"), &it));

    /* Queries. */
    bool found, more;
    uint64_t n;
    cu_query(&h, mk_set_query_contains(&h.cmd, S("d")));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_true(found);
    cu_query(&h, mk_set_query_contains(&h.cmd, S("a")));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_false(found);
    cu_query(&h, mk_set_query_len(&h.cmd));
    assert_int_equal(mk_coll_reply_len(h.res.data, h.res.len, &n), 0);
    assert_int_equal(n, 2);
    mk_coll_bytes after = {"b", 1};
    cu_query(&h, mk_set_query_page(&h.cmd, &after, 10));
    c.text[0] = '\0';
    assert_int_equal(mk_coll_reply_page(h.res.data, h.res.len, collect_key,
                                        &c, &more),
                     0);
    assert_string_equal(c.text, "d,");
    assert_false(more);

    /* Remove all, clear, rebuild. */
    assert_int_equal(cu_run(&h, mk_set_cmd_clear(&h.cmd)), 2);
    assert_int_equal(mk_set_len(s), 0);
    cu_run(&h, mk_set_cmd_insert(&h.cmd, S("new")));
    assert_string_equal(set_text(s, &c), "new,");
    cu_fini(&h);
    cu_fini(&ht);
    mk_set_free(s);
    mk_set_free(t);
}

/* ---- Vec ------------------------------------------------------------------ */

static int collect_val(const mk_coll_item *it, void *data)
{
    collect *c = data;
    size_t at = strlen(c->text);
    snprintf(c->text + at, sizeof c->text - at, "%.*s,", (int)it->val_len,
             (const char *)it->val);
    return 0;
}

static const char *vec_text(const mk_vec *v, collect *c)
{
    c->text[0] = '\0';
    assert_int_equal(mk_vec_foreach(v, collect_val, c), 0);
    return c->text;
}

static void vec_smoke(void **state)
{
    /* mosaik's vec smoke_no_catchup, checking the exact contents after
     * each step. */
    mk_coll_config cfg = config("vec");
    mk_vec *v;
    assert_int_equal(mk_vec_new(&cfg, &v), 0);
    cu_harness h;
    cu_init(&h, mk_vec_fsm(v));
    collect c;
    mk_coll_item it;
    uint64_t idx;

    assert_int_equal(mk_vec_len(v), 0);
    assert_false(mk_vec_front(v, &it));
    assert_false(mk_vec_back(v, &it));
    assert_false(mk_vec_get(v, 0, &it));
    cu_run(&h, mk_vec_cmd_push_back(&h.cmd, S("1")));
    cu_run(&h, mk_vec_cmd_push_back(&h.cmd, S("2")));
    cu_run(&h, mk_vec_cmd_push_front(&h.cmd, S("0")));
    assert_string_equal(vec_text(v, &c), "0,1,2,");
    mk_coll_item ext[] = {V("3"), V("4"), V("5")};
    assert_int_equal(cu_run(&h, mk_vec_cmd_extend(&h.cmd, ext, 3)), 3);
    assert_string_equal(vec_text(v, &c), "0,1,2,3,4,5,");
    assert_int_equal(cu_run(&h, mk_vec_cmd_insert(&h.cmd, 2, S("x"))), 1);
    assert_string_equal(vec_text(v, &c), "0,1,x,2,3,4,5,");
    assert_true(mk_vec_contains(v, S("x")));
    assert_true(mk_vec_index_of(v, S("x"), &idx));
    assert_int_equal(idx, 2);
    assert_false(mk_vec_contains(v, S("y")));
    assert_int_equal(cu_run(&h, mk_vec_cmd_swap(&h.cmd, 0, 5)), 1);
    assert_string_equal(vec_text(v, &c), "4,1,x,2,3,0,5,");
    assert_true(mk_vec_front(v, &it));
    cu_assert_bytes(it.val, it.val_len, "4");
    assert_true(mk_vec_back(v, &it));
    cu_assert_bytes(it.val, it.val_len, "5");

    /* Pops and removes hand back what they took. */
    assert_int_equal(cu_run(&h, mk_vec_cmd_pop_back(&h.cmd)), 1);
    assert_true(h.out.has_item);
    cu_assert_bytes(h.out.item.val, h.out.item.val_len, "5");
    assert_int_equal(cu_run(&h, mk_vec_cmd_pop_front(&h.cmd)), 1);
    cu_assert_bytes(h.out.item.val, h.out.item.val_len, "4");
    assert_string_equal(vec_text(v, &c), "1,x,2,3,0,");
    assert_int_equal(cu_run(&h, mk_vec_cmd_remove(&h.cmd, 1)), 1);
    cu_assert_bytes(h.out.item.val, h.out.item.val_len, "x");
    assert_string_equal(vec_text(v, &c), "1,2,3,0,");
    assert_int_equal(cu_run(&h, mk_vec_cmd_truncate(&h.cmd, 2)), 2);
    assert_string_equal(vec_text(v, &c), "1,2,");
    assert_int_equal(cu_run(&h, mk_vec_cmd_clear(&h.cmd)), 2);
    assert_int_equal(mk_vec_len(v), 0);
    cu_fini(&h);
    mk_vec_free(v);
}

static void vec_edges(void **state)
{
    mk_coll_config cfg = config("vec-edges");
    mk_vec *v;
    assert_int_equal(mk_vec_new(&cfg, &v), 0);
    cu_harness h;
    cu_init(&h, mk_vec_fsm(v));
    collect c;

    /* Popping an empty vec is a no-op, not a failure. */
    assert_int_equal(cu_run(&h, mk_vec_cmd_pop_back(&h.cmd)), 0);
    assert_false(h.out.has_item);
    assert_int_equal(cu_run(&h, mk_vec_cmd_pop_front(&h.cmd)), 0);
    /* Insert at positions: empty, front, end == len, middle, past end. */
    assert_int_equal(cu_run(&h, mk_vec_cmd_insert(&h.cmd, 1, S("no"))), 0);
    assert_int_equal(mk_vec_len(v), 0);
    assert_int_equal(cu_run(&h, mk_vec_cmd_insert(&h.cmd, 0, S("b"))), 1);
    assert_int_equal(cu_run(&h, mk_vec_cmd_insert(&h.cmd, 0, S("a"))), 1);
    assert_int_equal(cu_run(&h, mk_vec_cmd_insert(&h.cmd, 2, S("d"))), 1);
    assert_int_equal(cu_run(&h, mk_vec_cmd_insert(&h.cmd, 2, S("c"))), 1);
    assert_string_equal(vec_text(v, &c), "a,b,c,d,");
    assert_int_equal(cu_run(&h, mk_vec_cmd_insert(&h.cmd, 5, S("no"))), 0);
    assert_int_equal(
        cu_run(&h, mk_vec_cmd_insert(&h.cmd, UINT64_MAX, S("no"))), 0);
    assert_string_equal(vec_text(v, &c), "a,b,c,d,");
    /* Swaps: same index and out of bounds are no-ops. */
    assert_int_equal(cu_run(&h, mk_vec_cmd_swap(&h.cmd, 1, 1)), 0);
    assert_int_equal(cu_run(&h, mk_vec_cmd_swap(&h.cmd, 0, 4)), 0);
    assert_int_equal(cu_run(&h, mk_vec_cmd_swap(&h.cmd, 9, 0)), 0);
    assert_int_equal(cu_run(&h, mk_vec_cmd_swap(&h.cmd, 3, 0)), 1);
    assert_string_equal(vec_text(v, &c), "d,b,c,a,");
    /* Set replaces in place and hands back the old element; past the
     * end it is a no-op. */
    assert_int_equal(cu_run(&h, mk_vec_cmd_set(&h.cmd, 1, S("B"))), 1);
    assert_true(h.out.has_item);
    cu_assert_bytes(h.out.item.val, h.out.item.val_len, "b");
    assert_int_equal(cu_run(&h, mk_vec_cmd_set(&h.cmd, 4, S("no"))), 0);
    assert_false(h.out.has_item);
    assert_string_equal(vec_text(v, &c), "d,B,c,a,");
    assert_int_equal(cu_run(&h, mk_vec_cmd_set(&h.cmd, 1, S("b"))), 1);
    /* Remove out of bounds; truncate at or past the length. */
    assert_int_equal(cu_run(&h, mk_vec_cmd_remove(&h.cmd, 4)), 0);
    assert_false(h.out.has_item);
    assert_int_equal(cu_run(&h, mk_vec_cmd_truncate(&h.cmd, 4)), 0);
    assert_int_equal(cu_run(&h, mk_vec_cmd_truncate(&h.cmd, 100)), 0);
    assert_string_equal(vec_text(v, &c), "d,b,c,a,");
    assert_int_equal(cu_run(&h, mk_vec_cmd_truncate(&h.cmd, 0)), 4);
    assert_int_equal(mk_vec_len(v), 0);

    /* Front/back ordering across the ring's wrap-around: alternate
     * pushes at both ends past several growths. */
    for (int i = 0; i < 40; i++) {
        char e[4];
        snprintf(e, sizeof e, "%c", 'A' + i % 26);
        cu_run(&h, mk_vec_cmd_push_front(&h.cmd, e, 1));
        cu_run(&h, mk_vec_cmd_pop_back(&h.cmd));
        cu_run(&h, mk_vec_cmd_push_back(&h.cmd, e, 1));
    }
    /* Each round pushes at the front, pops the back, pushes the back. */
    assert_int_equal(mk_vec_len(v), 40);
    mk_coll_item it;
    assert_true(mk_vec_back(v, &it));
    cu_assert_bytes(it.val, it.val_len, "N"); /* i = 39: 'A' + 13 */

    /* Queries. */
    bool found, more;
    uint64_t n;
    cu_query(&h, mk_vec_query_len(&h.cmd));
    assert_int_equal(mk_coll_reply_len(h.res.data, h.res.len, &n), 0);
    assert_int_equal(n, 40);
    cu_query(&h, mk_vec_query_get(&h.cmd, 39));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_true(found);
    cu_assert_bytes(it.val, it.val_len, "N");
    cu_query(&h, mk_vec_query_get(&h.cmd, 40));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_false(found);
    cu_query(&h, mk_vec_query_page(&h.cmd, 37, 2));
    c.text[0] = '\0';
    assert_int_equal(mk_coll_reply_page(h.res.data, h.res.len, collect_val,
                                        &c, &more),
                     0);
    assert_int_equal(strlen(c.text), 4);
    assert_true(more);
    cu_query(&h, mk_vec_query_page(&h.cmd, UINT64_MAX, 2));
    assert_int_equal(mk_coll_reply_page(h.res.data, h.res.len, collect_val,
                                        &c, &more),
                     0);
    assert_false(more);
    cu_fini(&h);
    mk_vec_free(v);
}

/* ---- Cell and Once --------------------------------------------------------- */

static void cell_semantics(void **state)
{
    mk_coll_config cfg = config("cell");
    mk_cell *cell;
    assert_int_equal(mk_cell_new(&cfg, &cell), 0);
    cu_harness h;
    cu_init(&h, mk_cell_fsm(cell));
    mk_coll_item it;
    mk_coll_bytes v1 = {"1", 1}, v2 = {"2", 1}, v3 = {"3", 1};
    mk_coll_bytes wrong = {"x", 1};

    assert_false(mk_cell_get(cell, &it));
    /* Clearing an empty cell is fine and changes nothing. */
    assert_int_equal(cu_run(&h, mk_cell_cmd_clear(&h.cmd)), 0);
    /* CAS mismatch on empty; None -> None on empty matches. */
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, &v1, &v2)), 0);
    assert_false(mk_cell_get(cell, &it));
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, NULL, NULL)), 1);
    assert_false(mk_cell_get(cell, &it));
    /* Write, overwrite keeps the latest. */
    assert_int_equal(cu_run(&h, mk_cell_cmd_write(&h.cmd, S("a"))), 1);
    assert_int_equal(cu_run(&h, mk_cell_cmd_write(&h.cmd, S("b"))), 1);
    assert_true(mk_cell_get(cell, &it));
    cu_assert_bytes(it.val, it.val_len, "b");
    assert_int_equal(cu_run(&h, mk_cell_cmd_clear(&h.cmd)), 1);
    assert_false(mk_cell_get(cell, &it));
    /* An empty value is a value. */
    assert_int_equal(cu_run(&h, mk_cell_cmd_write(&h.cmd, "", 0)), 1);
    assert_true(mk_cell_get(cell, &it));
    assert_int_equal(it.val_len, 0);
    assert_non_null(it.val);
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, NULL, &v1)), 0);
    cu_run(&h, mk_cell_cmd_clear(&h.cmd));
    /* Chained None -> 1 -> 2 -> 3 -> None with mismatches between. */
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, NULL, &v1)), 1);
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, NULL, &v2)), 0);
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, &v1, &v2)), 1);
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, &wrong, &v1)), 0);
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, &v2, &v3)), 1);
    assert_true(mk_cell_get(cell, &it));
    cu_assert_bytes(it.val, it.val_len, "3");
    /* A conditional clear. */
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, &v3, NULL)), 1);
    assert_false(mk_cell_get(cell, &it));
    /* Mixed with write and clear. */
    cu_run(&h, mk_cell_cmd_write(&h.cmd, S("2")));
    assert_int_equal(cu_run(&h, mk_cell_cmd_cas(&h.cmd, &v2, &v1)), 1);

    bool found;
    cu_query(&h, mk_cell_query_get(&h.cmd));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_true(found);
    cu_assert_bytes(it.val, it.val_len, "1");
    cu_fini(&h);
    mk_cell_free(cell);
}

static void once_semantics(void **state)
{
    mk_coll_config cfg = config("once");
    mk_once *o, *late;
    assert_int_equal(mk_once_new(&cfg, &o), 0);
    assert_int_equal(mk_once_new(&cfg, &late), 0);
    cu_harness h;
    cu_init(&h, mk_once_fsm(o));
    mk_coll_item it;
    bool found;

    assert_false(mk_once_get(o, &it));
    cu_query(&h, mk_once_query_get(&h.cmd));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_false(found);
    /* The first write wins; the second and third commit, change nothing,
     * and say so. */
    assert_int_equal(cu_run(&h, mk_once_cmd_write(&h.cmd, S("first"))), 1);
    assert_int_equal(cu_run(&h, mk_once_cmd_write(&h.cmd, S("second"))), 0);
    assert_int_equal(cu_run(&h, mk_once_cmd_write(&h.cmd, S("first"))), 0);
    assert_true(mk_once_get(o, &it));
    cu_assert_bytes(it.val, it.val_len, "first");
    /* A late replica restored from a snapshot sees only the first value
     * and ignores its own write. */
    mk_buf snap;
    mk_buf_init(&snap);
    cu_snap(mk_once_fsm(o), &snap);
    struct mk_fsm *lf = mk_once_fsm(late);
    assert_int_equal(lf->restore(lf, snap.data, snap.len), 0);
    cu_harness hl;
    cu_init(&hl, lf);
    assert_int_equal(cu_run(&hl, mk_once_cmd_write(&hl.cmd, S("late"))), 0);
    assert_true(mk_once_get(late, &it));
    cu_assert_bytes(it.val, it.val_len, "first");
    cu_query(&h, mk_once_query_get(&h.cmd));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_true(found);
    cu_assert_bytes(it.val, it.val_len, "first");
    mk_buf_free(&snap);
    cu_fini(&h);
    cu_fini(&hl);
    mk_once_free(o);
    mk_once_free(late);
}

/* ---- PriorityQueue --------------------------------------------------------- */

/* Inserts (prio, key, key as value). */
static uint64_t pq_put(cu_harness *h, uint32_t prio, const char *key)
{
    uint8_t p[4];
    cu_be32(p, prio);
    return cu_run(h, mk_pq_cmd_insert(&h->cmd, p, 4, key, strlen(key), key,
                                      strlen(key)));
}

static int collect_pq(const mk_coll_item *it, void *data)
{
    collect *c = data;
    size_t at = strlen(c->text);
    assert_int_equal(it->prio_len, 4);
    snprintf(c->text + at, sizeof c->text - at, "%u:%.*s=%.*s,",
             cu_get_be32(it->prio), (int)it->key_len, (const char *)it->key,
             (int)it->val_len, (const char *)it->val);
    return 0;
}

static const char *pq_text(const mk_pq *q, bool desc, collect *c)
{
    c->text[0] = '\0';
    assert_int_equal(mk_pq_foreach(q, desc, collect_pq, c), 0);
    return c->text;
}

static mk_pq *pq_new(uint64_t cap)
{
    mk_coll_config cfg = config("pq");
    cfg.capacity = cap;
    mk_pq *q;
    assert_int_equal(mk_pq_new(&cfg, &q), 0);
    assert_int_equal(mk_pq_capacity(q), cap);
    return q;
}

static void pq_upsert_and_updates(void **state)
{
    mk_pq *q = pq_new(0);
    cu_harness h;
    cu_init(&h, mk_pq_fsm(q));
    collect c;
    mk_coll_item it;
    uint8_t p[4];

    assert_false(mk_pq_min(q, &it));
    assert_false(mk_pq_max(q, &it));
    pq_put(&h, 10, "a");
    pq_put(&h, 30, "b");
    pq_put(&h, 20, "c");
    assert_string_equal(pq_text(q, false, &c), "10:a=a,20:c=c,30:b=b,");
    assert_string_equal(pq_text(q, true, &c), "30:b=b,20:c=c,10:a=a,");
    /* An upsert moves the key to its new priority. */
    assert_int_equal(pq_put(&h, 40, "a"), 1);
    assert_int_equal(mk_pq_len(q), 3);
    assert_string_equal(pq_text(q, false, &c), "20:c=c,30:b=b,40:a=a,");
    assert_true(mk_pq_min(q, &it));
    cu_assert_bytes(it.key, it.key_len, "c");
    assert_true(mk_pq_max(q, &it));
    cu_assert_bytes(it.key, it.key_len, "a");

    /* update_priority / update_value; both no-ops on a missing key. */
    assert_int_equal(cu_run(&h, mk_pq_cmd_update_priority(
                                    &h.cmd, S("b"), cu_be32(p, 5), 4)),
                     1);
    assert_int_equal(cu_run(&h, mk_pq_cmd_update_value(&h.cmd, S("c"),
                                                       S("C"))),
                     1);
    assert_string_equal(pq_text(q, false, &c), "5:b=b,20:c=C,40:a=a,");
    assert_int_equal(cu_run(&h, mk_pq_cmd_update_priority(
                                    &h.cmd, S("zz"), cu_be32(p, 1), 4)),
                     0);
    assert_int_equal(
        cu_run(&h, mk_pq_cmd_update_value(&h.cmd, S("zz"), S("v"))), 0);
    assert_int_equal(mk_pq_len(q), 3);
    assert_true(mk_pq_get(q, S("c"), &it));
    assert_int_equal(cu_get_be32(it.prio), 20);
    cu_assert_bytes(it.val, it.val_len, "C");
    assert_true(mk_pq_contains(q, S("b")));
    assert_false(mk_pq_contains(q, S("zz")));

    /* Removal by keys, with missing ones. */
    assert_int_equal(cu_run(&h, mk_pq_cmd_remove(&h.cmd, S("zz"))), 0);
    mk_coll_item rm[] = {K("b"), K("nope")};
    assert_int_equal(cu_run(&h, mk_pq_cmd_remove_keys(&h.cmd, rm, 2)), 1);
    assert_string_equal(pq_text(q, false, &c), "20:c=C,40:a=a,");

    /* Extend (with an overwrite), then clear and rebuild. */
    uint8_t p1[4], p2[4];
    mk_coll_item ext[] = {
        {.prio = cu_be32(p1, 1), .prio_len = 4, .key = (const uint8_t *)"a",
         .key_len = 1, .val = (const uint8_t *)"A", .val_len = 1},
        {.prio = cu_be32(p2, 2), .prio_len = 4, .key = (const uint8_t *)"d",
         .key_len = 1, .val = (const uint8_t *)"D", .val_len = 1},
    };
    assert_int_equal(cu_run(&h, mk_pq_cmd_extend(&h.cmd, ext, 2)), 2);
    assert_string_equal(pq_text(q, false, &c), "1:a=A,2:d=D,20:c=C,");
    assert_int_equal(cu_run(&h, mk_pq_cmd_extend(&h.cmd, NULL, 0)), 0);
    assert_int_equal(cu_run(&h, mk_pq_cmd_clear(&h.cmd)), 3);
    assert_int_equal(mk_pq_len(q), 0);
    pq_put(&h, 7, "x");
    assert_string_equal(pq_text(q, false, &c), "7:x=x,");
    cu_fini(&h);
    mk_pq_free(q);
}

static void pq_same_bucket(void **state)
{
    mk_pq *q = pq_new(0);
    cu_harness h;
    cu_init(&h, mk_pq_fsm(q));
    mk_coll_item it;
    pq_put(&h, 5, "m");
    pq_put(&h, 5, "b");
    pq_put(&h, 9, "a");
    pq_put(&h, 9, "z");
    pq_put(&h, 5, "x");
    /* min: the smallest key of the lowest bucket; max: the largest key of
     * the highest (mosaik: any key in the bucket). */
    assert_true(mk_pq_min(q, &it));
    assert_int_equal(cu_get_be32(it.prio), 5);
    cu_assert_bytes(it.key, it.key_len, "b");
    assert_true(mk_pq_max(q, &it));
    assert_int_equal(cu_get_be32(it.prio), 9);
    cu_assert_bytes(it.key, it.key_len, "z");
    /* The cursor walks (prio, key) both ways. */
    assert_true(mk_pq_next(q, NULL, false, &it));
    cu_assert_bytes(it.key, it.key_len, "b");
    assert_true(mk_pq_next(q, &it, false, &it));
    cu_assert_bytes(it.key, it.key_len, "m");
    assert_true(mk_pq_next(q, NULL, true, &it));
    cu_assert_bytes(it.key, it.key_len, "z");
    assert_true(mk_pq_next(q, &it, true, &it));
    cu_assert_bytes(it.key, it.key_len, "a");
    assert_true(mk_pq_next(q, &it, true, &it));
    cu_assert_bytes(it.key, it.key_len, "x");

    /* Queries: min, max, get, len, pages in both directions. */
    bool found, more;
    uint64_t n;
    collect c;
    cu_query(&h, mk_pq_query_min(&h.cmd));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_true(found);
    cu_assert_bytes(it.key, it.key_len, "b");
    assert_int_equal(cu_get_be32(it.prio), 5);
    cu_query(&h, mk_pq_query_max(&h.cmd));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    cu_assert_bytes(it.key, it.key_len, "z");
    cu_query(&h, mk_pq_query_get(&h.cmd, S("m")));
    assert_int_equal(mk_coll_reply_item(h.res.data, h.res.len, &found, &it),
                     0);
    assert_true(found);
    cu_assert_bytes(it.val, it.val_len, "m");
    cu_query(&h, mk_pq_query_len(&h.cmd));
    assert_int_equal(mk_coll_reply_len(h.res.data, h.res.len, &n), 0);
    assert_int_equal(n, 5);
    cu_query(&h, mk_pq_query_page(&h.cmd, NULL, true, 3));
    c.text[0] = '\0';
    assert_int_equal(mk_coll_reply_page(h.res.data, h.res.len, collect_pq,
                                        &c, &more),
                     0);
    assert_string_equal(c.text, "9:z=z,9:a=a,5:x=x,");
    assert_true(more);
    uint8_t p[4];
    mk_coll_item after = {.prio = cu_be32(p, 5), .prio_len = 4,
                          .key = (const uint8_t *)"x", .key_len = 1};
    cu_query(&h, mk_pq_query_page(&h.cmd, &after, true, 3));
    c.text[0] = '\0';
    assert_int_equal(mk_coll_reply_page(h.res.data, h.res.len, collect_pq,
                                        &c, &more),
                     0);
    assert_string_equal(c.text, "5:m=m,5:b=b,");
    assert_false(more);
    cu_fini(&h);
    mk_pq_free(q);
}

static uint64_t pq_range(cu_harness *h, const uint32_t *lo, bool lo_incl,
                         const uint32_t *hi, bool hi_incl)
{
    uint8_t a[4], b[4];
    mk_pq_bound l = {lo ? cu_be32(a, *lo) : NULL, 4, lo_incl};
    mk_pq_bound u = {hi ? cu_be32(b, *hi) : NULL, 4, hi_incl};
    return cu_run(h, mk_pq_cmd_remove_range(&h->cmd, lo ? &l : NULL,
                                            hi ? &u : NULL));
}

static void pq_fill5(cu_harness *h)
{
    cu_run(h, mk_pq_cmd_clear(&h->cmd));
    pq_put(h, 10, "a");
    pq_put(h, 20, "b");
    pq_put(h, 30, "c");
    pq_put(h, 40, "d");
    pq_put(h, 50, "e");
}

static void pq_remove_range(void **state)
{
    mk_pq *q = pq_new(0);
    cu_harness h;
    cu_init(&h, mk_pq_fsm(q));
    collect c;
    uint32_t v25 = 25, v45 = 45, v20 = 20, v40 = 40, v30 = 30, v10 = 10;

    /* ..25 removes 10 and 20. */
    pq_fill5(&h);
    assert_int_equal(pq_range(&h, NULL, false, &v25, false), 2);
    assert_string_equal(pq_text(q, false, &c), "30:c=c,40:d=d,50:e=e,");
    /* 45.. removes 50. */
    pq_fill5(&h);
    assert_int_equal(pq_range(&h, &v45, true, NULL, false), 1);
    assert_string_equal(pq_text(q, false, &c),
                        "10:a=a,20:b=b,30:c=c,40:d=d,");
    /* 20..=40 */
    pq_fill5(&h);
    assert_int_equal(pq_range(&h, &v20, true, &v40, true), 3);
    assert_string_equal(pq_text(q, false, &c), "10:a=a,50:e=e,");
    /* 20..40 (end excluded), (20..40] (start excluded). */
    pq_fill5(&h);
    assert_int_equal(pq_range(&h, &v20, true, &v40, false), 2);
    assert_string_equal(pq_text(q, false, &c), "10:a=a,40:d=d,50:e=e,");
    pq_fill5(&h);
    assert_int_equal(pq_range(&h, &v20, false, &v40, true), 2);
    assert_string_equal(pq_text(q, false, &c), "10:a=a,20:b=b,50:e=e,");
    /* A whole bucket of shared priorities goes. */
    pq_fill5(&h);
    pq_put(&h, 30, "c2");
    pq_put(&h, 30, "c0");
    assert_int_equal(pq_range(&h, &v30, true, &v30, true), 3);
    assert_string_equal(pq_text(q, false, &c),
                        "10:a=a,20:b=b,40:d=d,50:e=e,");
    /* Empty and inverted ranges remove nothing. */
    pq_fill5(&h);
    assert_int_equal(pq_range(&h, &v30, false, &v30, true), 0);
    assert_int_equal(pq_range(&h, &v30, true, &v30, false), 0);
    assert_int_equal(pq_range(&h, &v40, true, &v10, true), 0);
    assert_int_equal(pq_range(&h, &v20, false, &v25, false), 0);
    assert_int_equal(mk_pq_len(q), 5);
    /* .. clears. */
    assert_int_equal(pq_range(&h, NULL, false, NULL, false), 5);
    assert_int_equal(mk_pq_len(q), 0);
    /* On an empty queue. */
    assert_int_equal(pq_range(&h, NULL, false, NULL, false), 0);
    cu_fini(&h);
    mk_pq_free(q);
}

static void pq_cas_value(void **state)
{
    mk_pq *q = pq_new(0);
    cu_harness h;
    cu_init(&h, mk_pq_fsm(q));
    collect c;
    mk_coll_item it;
    mk_coll_bytes v2 = {"2", 1}, v3 = {"3", 1};
    uint8_t p[4];

    cu_run(&h, mk_pq_cmd_insert(&h.cmd, cu_be32(p, 5), 4, S("k"), S("1")));
    cu_run(&h, mk_pq_cmd_insert(&h.cmd, cu_be32(p, 9), 4, S("j"), S("1")));
    /* Success keeps the priority; a chain; a mismatch; a missing key. */
    assert_int_equal(
        cu_run(&h, mk_pq_cmd_cas_value(&h.cmd, S("k"), S("1"), &v2)), 1);
    assert_int_equal(
        cu_run(&h, mk_pq_cmd_cas_value(&h.cmd, S("k"), S("1"), &v3)), 0);
    assert_int_equal(
        cu_run(&h, mk_pq_cmd_cas_value(&h.cmd, S("k"), S("2"), &v3)), 1);
    assert_int_equal(
        cu_run(&h, mk_pq_cmd_cas_value(&h.cmd, S("nope"), S("1"), &v3)), 0);
    assert_true(mk_pq_get(q, S("k"), &it));
    assert_int_equal(cu_get_be32(it.prio), 5);
    cu_assert_bytes(it.val, it.val_len, "3");
    assert_string_equal(pq_text(q, false, &c), "5:k=3,9:j=1,");
    /* Removing through CAS moves the min; mixed with other mutations. */
    assert_true(mk_pq_min(q, &it));
    cu_assert_bytes(it.key, it.key_len, "k");
    assert_int_equal(
        cu_run(&h, mk_pq_cmd_cas_value(&h.cmd, S("k"), S("3"), NULL)), 1);
    assert_true(mk_pq_min(q, &it));
    cu_assert_bytes(it.key, it.key_len, "j");
    cu_run(&h, mk_pq_cmd_update_priority(&h.cmd, S("j"), cu_be32(p, 1), 4));
    assert_int_equal(
        cu_run(&h, mk_pq_cmd_cas_value(&h.cmd, S("j"), S("1"), &v2)), 1);
    assert_string_equal(pq_text(q, false, &c), "1:j=2,");
    cu_fini(&h);
    mk_pq_free(q);
}

static void pq_bounded(void **state)
{
    mk_pq *q = pq_new(3);
    cu_harness h;
    cu_init(&h, mk_pq_fsm(q));
    collect c;
    uint8_t p[4];

    pq_put(&h, 10, "a");
    pq_put(&h, 20, "b");
    pq_put(&h, 30, "c");
    assert_int_equal(h.out.evicted, 0);
    /* A 4th entry evicts priority 10. */
    pq_put(&h, 40, "d");
    assert_int_equal(h.out.evicted, 1);
    assert_string_equal(pq_text(q, false, &c), "20:b=b,30:c=c,40:d=d,");
    /* An entry lower than all is itself evicted. */
    assert_int_equal(pq_put(&h, 5, "low"), 1);
    assert_int_equal(h.out.evicted, 1);
    assert_false(mk_pq_contains(q, S("low")));
    assert_string_equal(pq_text(q, false, &c), "20:b=b,30:c=c,40:d=d,");
    /* In-place updates and upserts of present keys never evict. */
    cu_run(&h, mk_pq_cmd_update_priority(&h.cmd, S("b"), cu_be32(p, 1), 4));
    assert_int_equal(h.out.evicted, 0);
    pq_put(&h, 2, "c");
    assert_int_equal(h.out.evicted, 0);
    assert_string_equal(pq_text(q, false, &c), "1:b=b,2:c=c,40:d=d,");
    /* Extend evicts several, one insert at a time: the same as inserts. */
    uint8_t p1[4], p2[4], p3[4];
    mk_coll_item ext[] = {
        {.prio = cu_be32(p1, 50), .prio_len = 4,
         .key = (const uint8_t *)"e", .key_len = 1,
         .val = (const uint8_t *)"e", .val_len = 1},
        {.prio = cu_be32(p2, 60), .prio_len = 4,
         .key = (const uint8_t *)"f", .key_len = 1,
         .val = (const uint8_t *)"f", .val_len = 1},
        {.prio = cu_be32(p3, 0), .prio_len = 4,
         .key = (const uint8_t *)"g", .key_len = 1,
         .val = (const uint8_t *)"g", .val_len = 1},
    };
    assert_int_equal(cu_run(&h, mk_pq_cmd_extend(&h.cmd, ext, 3)), 3);
    assert_int_equal(h.out.evicted, 3);
    assert_string_equal(pq_text(q, false, &c), "40:d=d,50:e=e,60:f=f,");
    /* Within the lowest bucket the smallest key goes first. */
    cu_run(&h, mk_pq_cmd_clear(&h.cmd));
    pq_put(&h, 7, "m");
    pq_put(&h, 7, "c");
    pq_put(&h, 7, "x");
    pq_put(&h, 8, "a");
    assert_string_equal(pq_text(q, false, &c), "7:m=m,7:x=x,8:a=a,");

    /* A bounded queue's snapshot never holds more than its capacity. */
    mk_buf snap;
    mk_buf_init(&snap);
    mk_pq *big = pq_new(0);
    cu_harness hb;
    cu_init(&hb, mk_pq_fsm(big));
    pq_put(&hb, 0, "k0");
    pq_put(&hb, 1, "k1");
    pq_put(&hb, 2, "k2");
    pq_put(&hb, 3, "k3");
    cu_snap(mk_pq_fsm(big), &snap);
    assert_int_equal(mk_pq_len(big), 4);
    struct mk_fsm *f = mk_pq_fsm(q);
    assert_int_equal(f->restore(f, snap.data, snap.len), MK_EDECODE);
    assert_string_equal(pq_text(q, false, &c), "7:m=m,7:x=x,8:a=a,");
    mk_buf_free(&snap);
    cu_fini(&hb);
    mk_pq_free(big);
    cu_fini(&h);
    mk_pq_free(q);
}

/* ---- signatures ----------------------------------------------------------- */

static void signatures(void **state)
{
    mk_coll_config a = config("store-a"), b = config("store-b");
    mk_map *m1, *m2;
    mk_set *s1;
    mk_vec *v1;
    mk_cell *c1;
    mk_once *o1;
    mk_pq *q1, *q2;
    assert_int_equal(mk_map_new(&a, &m1), 0);
    assert_int_equal(mk_map_new(&b, &m2), 0);
    assert_int_equal(mk_set_new(&a, &s1), 0);
    assert_int_equal(mk_vec_new(&a, &v1), 0);
    assert_int_equal(mk_cell_new(&a, &c1), 0);
    assert_int_equal(mk_once_new(&a, &o1), 0);
    assert_int_equal(mk_pq_new(&a, &q1), 0);
    mk_coll_config bounded = a;
    bounded.capacity = 10;
    assert_int_equal(mk_pq_new(&bounded, &q2), 0);

    /* The documented chain, computed by hand for the map. */
    mk_id want;
    mk_id_from_str(&want, "mosaik_collections_map");
    mk_id_derive(&want, &want, a.store.b, MK_ID_LEN);
    assert_true(mk_id_eq(&mk_map_fsm(m1)->signature, &want));
    /* ... and for the unbounded depq (u64::MAX little-endian). */
    uint8_t max[8];
    memset(max, 0xff, sizeof max);
    mk_id_from_str(&want, "mosaik_collections_depq");
    mk_id_derive(&want, &want, a.store.b, MK_ID_LEN);
    mk_id_derive(&want, &want, max, sizeof max);
    assert_true(mk_id_eq(&mk_pq_fsm(q1)->signature, &want));

    /* Every kind, store and capacity differs. */
    const mk_id *ids[] = {
        &mk_map_fsm(m1)->signature, &mk_map_fsm(m2)->signature,
        &mk_set_fsm(s1)->signature, &mk_vec_fsm(v1)->signature,
        &mk_cell_fsm(c1)->signature, &mk_once_fsm(o1)->signature,
        &mk_pq_fsm(q1)->signature,  &mk_pq_fsm(q2)->signature,
    };
    for (size_t i = 0; i < 8; i++)
        for (size_t j = i + 1; j < 8; j++)
            assert_false(mk_id_eq(ids[i], ids[j]));
    /* A type label separates same-store same-kind collections; "" is the
     * same as none. */
    mk_coll_config typed = a, blank = a;
    typed.type = "u64->String";
    blank.type = "";
    mk_map *m3, *m4;
    assert_int_equal(mk_map_new(&typed, &m3), 0);
    assert_int_equal(mk_map_new(&blank, &m4), 0);
    assert_false(mk_id_eq(&mk_map_fsm(m3)->signature, ids[0]));
    assert_true(mk_id_eq(&mk_map_fsm(m4)->signature, ids[0]));
    assert_int_equal(mk_map_fsm(m1)->version, MK_FSM_VERSION);
    assert_ptr_equal(mk_map_fsm(m1)->data, m1);

    mk_map_free(m1);
    mk_map_free(m2);
    mk_map_free(m3);
    mk_map_free(m4);
    mk_set_free(s1);
    mk_vec_free(v1);
    mk_cell_free(c1);
    mk_once_free(o1);
    mk_pq_free(q1);
    mk_pq_free(q2);
    mk_map_free(NULL); /* free(NULL) semantics */
}

/* ---- malformed input ---------------------------------------------------- */

/* One machine of each kind, with some state. */
typedef struct zoo {
    mk_map *m;
    mk_set *s;
    mk_vec *v;
    mk_cell *c;
    mk_once *o;
    mk_pq *q;
    struct mk_fsm *f[6];
} zoo;

static void zoo_new(zoo *z)
{
    mk_coll_config cfg = config("zoo");
    cfg.capacity = 100;
    assert_int_equal(mk_map_new(&cfg, &z->m), 0);
    assert_int_equal(mk_set_new(&cfg, &z->s), 0);
    assert_int_equal(mk_vec_new(&cfg, &z->v), 0);
    assert_int_equal(mk_cell_new(&cfg, &z->c), 0);
    assert_int_equal(mk_once_new(&cfg, &z->o), 0);
    assert_int_equal(mk_pq_new(&cfg, &z->q), 0);
    z->f[0] = mk_map_fsm(z->m);
    z->f[1] = mk_set_fsm(z->s);
    z->f[2] = mk_vec_fsm(z->v);
    z->f[3] = mk_cell_fsm(z->c);
    z->f[4] = mk_once_fsm(z->o);
    z->f[5] = mk_pq_fsm(z->q);
    cu_harness h;
    uint8_t p[4];
    for (int i = 0; i < 6; i++) {
        cu_init(&h, z->f[i]);
        for (uint32_t j = 0; j < 5; j++) {
            char k[2] = {(char)('a' + j), 0};
            switch (i) {
            case 0:
                cu_run(&h, mk_map_cmd_insert(&h.cmd, k, 1, S("v")));
                break;
            case 1:
                cu_run(&h, mk_set_cmd_insert(&h.cmd, k, 1));
                break;
            case 2:
                cu_run(&h, mk_vec_cmd_push_back(&h.cmd, k, 1));
                break;
            case 3:
                cu_run(&h, mk_cell_cmd_write(&h.cmd, k, 1));
                break;
            case 4:
                cu_run(&h, mk_once_cmd_write(&h.cmd, k, 1));
                break;
            default:
                cu_run(&h, mk_pq_cmd_insert(&h.cmd, cu_be32(p, j % 2), 4, k,
                                            1, S("v")));
            }
        }
        cu_fini(&h);
    }
}

static void zoo_free(zoo *z)
{
    mk_map_free(z->m);
    mk_set_free(z->s);
    mk_vec_free(z->v);
    mk_cell_free(z->c);
    mk_once_free(z->o);
    mk_pq_free(z->q);
}

/* Asserts `bytes` as a command to `f` fails with MK_EDECODE and changes
 * nothing. */
static void refuse_cmd(struct mk_fsm *f, const uint8_t *bytes, size_t len)
{
    mk_buf before, after, res;
    mk_buf_init(&before);
    mk_buf_init(&after);
    mk_buf_init(&res);
    cu_snap(f, &before);
    int rc = f->apply(f, bytes, len, &res);
    if (rc != MK_EDECODE)
        fail_msg("a malformed command of %zu bytes (first %02x) gave %s",
                 len, len ? bytes[0] : 0, mk_err_name(rc));
    cu_snap(f, &after);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    mk_buf_free(&before);
    mk_buf_free(&after);
    mk_buf_free(&res);
}

/* Every valid command of kind `i` that the tests below mutilate. */
static void valid_cmds(int i, mk_buf *out, size_t *ends, size_t *n)
{
    mk_coll_item ks[] = {K("a"), K("zz")};
    mk_coll_item vs[] = {V("a"), V("b")};
    mk_coll_bytes one = {"1", 1};
    uint8_t p[4];
    mk_coll_item es[] = {
        {.prio = cu_be32(p, 3), .prio_len = 4, .key = (const uint8_t *)"q",
         .key_len = 1, .val = (const uint8_t *)"v", .val_len = 1},
    };
    mk_coll_item kvs[] = {{.key = (const uint8_t *)"k", .key_len = 1,
                           .val = (const uint8_t *)"v", .val_len = 1}};
    mk_pq_bound lo = {p, 4, true};
    *n = 0;
#define ADD(call) (assert_int_equal((call), 0), ends[(*n)++] = out->len)
    switch (i) {
    case 0:
        ADD(mk_map_cmd_insert(out, S("k"), S("v")));
        ADD(mk_map_cmd_cas(out, S("a"), &one, NULL));
        ADD(mk_map_cmd_remove_many(out, ks, 2));
        ADD(mk_map_cmd_extend(out, kvs, 1));
        ADD(mk_map_cmd_clear(out));
        break;
    case 1:
        ADD(mk_set_cmd_insert(out, S("k")));
        ADD(mk_set_cmd_remove_many(out, ks, 2));
        ADD(mk_set_cmd_extend(out, ks, 2));
        ADD(mk_set_cmd_clear(out));
        break;
    case 2:
        ADD(mk_vec_cmd_push_back(out, S("x")));
        ADD(mk_vec_cmd_push_front(out, S("x")));
        ADD(mk_vec_cmd_pop_back(out));
        ADD(mk_vec_cmd_pop_front(out));
        ADD(mk_vec_cmd_insert(out, 1, S("x")));
        ADD(mk_vec_cmd_remove(out, 300));
        ADD(mk_vec_cmd_swap(out, 0, 1));
        ADD(mk_vec_cmd_truncate(out, 1));
        ADD(mk_vec_cmd_extend(out, vs, 2));
        ADD(mk_vec_cmd_clear(out));
        break;
    case 3:
        ADD(mk_cell_cmd_write(out, S("x")));
        ADD(mk_cell_cmd_cas(out, &one, &one));
        ADD(mk_cell_cmd_clear(out));
        break;
    case 4:
        ADD(mk_once_cmd_write(out, S("x")));
        break;
    default:
        ADD(mk_pq_cmd_insert(out, p, 4, S("k"), S("v")));
        ADD(mk_pq_cmd_extend(out, es, 1));
        ADD(mk_pq_cmd_update_priority(out, S("a"), p, 4));
        ADD(mk_pq_cmd_update_value(out, S("a"), S("w")));
        ADD(mk_pq_cmd_cas_value(out, S("a"), S("v"), &one));
        ADD(mk_pq_cmd_remove_keys(out, ks, 2));
        ADD(mk_pq_cmd_remove_range(out, &lo, NULL));
        ADD(mk_pq_cmd_clear(out));
    }
#undef ADD
}

/* A caller that wants no result (a replica may not) passes NULL; every
 * command still applies, identically. */
static void apply_without_result(void **state)
{
    zoo a, b;
    zoo_new(&a);
    zoo_new(&b);
    mk_buf cmds, res;
    mk_buf_init(&cmds);
    mk_buf_init(&res);
    size_t ends[16], n;
    for (int i = 0; i < 6; i++) {
        mk_buf_reset(&cmds);
        valid_cmds(i, &cmds, ends, &n);
        for (size_t c = 0; c < n; c++) {
            size_t start = c ? ends[c - 1] : 0;
            assert_int_equal(a.f[i]->apply(a.f[i], cmds.data + start,
                                           ends[c] - start, NULL),
                             0);
            mk_buf_reset(&res);
            assert_int_equal(b.f[i]->apply(b.f[i], cmds.data + start,
                                           ends[c] - start, &res),
                             0);
            cu_assert_same(a.f[i], b.f[i]);
        }
    }
    mk_buf_free(&cmds);
    mk_buf_free(&res);
    zoo_free(&a);
    zoo_free(&b);
}

static void malformed_commands(void **state)
{
    zoo z;
    zoo_new(&z);
    mk_buf cmds, copy;
    mk_buf_init(&cmds);
    mk_buf_init(&copy);
    size_t ends[16], n;
    for (int i = 0; i < 6; i++) {
        struct mk_fsm *f = z.f[i];
        mk_buf_reset(&cmds);
        valid_cmds(i, &cmds, ends, &n);
        /* Empty input and an unknown opcode. */
        refuse_cmd(f, (const uint8_t *)"", 0);
        refuse_cmd(f, (const uint8_t *)"\x0f", 1);
        for (size_t c = 0; c < n; c++) {
            size_t start = c ? ends[c - 1] : 0, len = ends[c] - start;
            const uint8_t *cmd = cmds.data + start;
            /* Every proper prefix is refused... */
            for (size_t cut = 0; cut < len; cut++)
                refuse_cmd(f, cmd, cut);
            /* ... and so is a trailing byte. */
            mk_buf_reset(&copy);
            mk_put_raw(&copy, cmd, len);
            mk_put_u8(&copy, 0);
            refuse_cmd(f, copy.data, copy.len);
            /* The command is refused by every other kind. */
            for (int j = 0; j < 6; j++)
                if (j != i)
                    refuse_cmd(z.f[j], cmd, len);
        }
    }
    /* Field-level checks: an option tag other than 0/1, a range bound
     * kind above 2, an overlong varint, a count larger than the bytes. */
    refuse_cmd(z.f[0], (const uint8_t *)"\x12\x01k\x02", 4);
    refuse_cmd(z.f[3], (const uint8_t *)"\x42\x00\x07", 3);
    refuse_cmd(z.f[5], (const uint8_t *)"\x67\x03\x00", 3);
    refuse_cmd(z.f[2], (const uint8_t *)"\x26\x80\x00", 3);
    refuse_cmd(z.f[0], (const uint8_t *)"\x14\xff\xff\x03", 4);
    refuse_cmd(z.f[1], (const uint8_t *)"\x32\x05\x00\x00", 4);
    mk_buf_free(&cmds);
    mk_buf_free(&copy);
    zoo_free(&z);
}

static void refuse_snap(struct mk_fsm *f, const uint8_t *bytes, size_t len)
{
    mk_buf before, after;
    mk_buf_init(&before);
    mk_buf_init(&after);
    cu_snap(f, &before);
    int rc = f->restore(f, bytes, len);
    if (rc != MK_EDECODE)
        fail_msg("a malformed snapshot of %zu bytes gave %s", len,
                 mk_err_name(rc));
    cu_snap(f, &after);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    mk_buf_free(&before);
    mk_buf_free(&after);
}

static void malformed_snapshots(void **state)
{
    zoo z, other;
    zoo_new(&z);
    zoo_new(&other);
    /* Give `other` different state so a restore would show. */
    cu_harness h;
    for (int i = 0; i < 6; i++) {
        cu_init(&h, other.f[i]);
        switch (i) {
        case 0:
            cu_run(&h, mk_map_cmd_clear(&h.cmd));
            break;
        case 1:
            cu_run(&h, mk_set_cmd_insert(&h.cmd, S("other")));
            break;
        case 2:
            cu_run(&h, mk_vec_cmd_pop_front(&h.cmd));
            break;
        case 3:
            cu_run(&h, mk_cell_cmd_clear(&h.cmd));
            break;
        case 4:
            break;
        default:
            cu_run(&h, mk_pq_cmd_remove(&h.cmd, S("a")));
        }
        cu_fini(&h);
    }
    mk_buf snap, copy;
    mk_buf_init(&snap);
    mk_buf_init(&copy);
    for (int i = 0; i < 6; i++) {
        cu_snap(z.f[i], &snap);
        for (size_t cut = 0; cut < snap.len; cut++)
            refuse_snap(other.f[i], snap.data, cut);
        mk_buf_reset(&copy);
        mk_put_raw(&copy, snap.data, snap.len);
        mk_put_u8(&copy, 0);
        refuse_snap(other.f[i], copy.data, copy.len);
        /* A wrong version byte. */
        copy.data[1] = 2;
        refuse_snap(other.f[i], copy.data, snap.len);
        for (int j = 0; j < 6; j++)
            if (j != i)
                refuse_snap(other.f[j], snap.data, snap.len);
        /* The intact snapshot restores. */
        assert_int_equal(other.f[i]->restore(other.f[i], snap.data, snap.len),
                         0);
        cu_assert_same(z.f[i], other.f[i]);
    }
    /* Canonical order only: unsorted and duplicate keys, a present flag
     * of 2, a PriorityQueue permutation that repeats or points past the
     * end, entries out of (prio, key) order. */
#define BAD(kind, lit) {kind, (const uint8_t *)(lit), sizeof(lit) - 1}
    const struct {
        int kind;
        const uint8_t *bytes;
        size_t len;
    } bad[] = {
        BAD(0, "\x1f\x01\x02\x01" "b\x00\x01" "a\x00"),
        BAD(0, "\x1f\x01\x02\x01" "a\x00\x01" "a\x00"),
        BAD(1, "\x3f\x01\x02\x01" "b\x01" "a"),
        BAD(1, "\x3f\x01\x02\x00\x00"),
        BAD(3, "\x4f\x01\x02"),
        BAD(4, "\x5f\x01\x01"),
        BAD(5, "\x6f\x01\x01\x00\x00\x00\x01"),
        BAD(5, "\x6f\x01\x02\x00\x01" "a\x00\x00\x01" "b\x00\x00\x00"),
        BAD(5, "\x6f\x01\x02\x00\x01" "b\x00\x00\x01" "a\x00\x00\x01"),
        BAD(5, "\x6f\x01\x02\x01" "b\x01" "a\x00\x01" "a\x01" "b\x00\x01\x00"),
        /* prio a < b, but the keys along the permutation are b, a */
        BAD(5, "\x6f\x01\x02\x01" "a\x01" "b\x00\x01" "b\x01" "a\x00\x00\x01"),
    };
#undef BAD
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        refuse_snap(other.f[bad[i].kind], bad[i].bytes, bad[i].len);
    /* The good twin of the last: (a, b) and (b, a), keys in order through
     * the permutation 1, 0. */
    static const char good[] = "\x6f\x01\x02\x01" "a\x01" "b\x00\x01" "b\x01"
                               "a\x00\x01\x00";
    assert_int_equal(other.f[5]->restore(other.f[5], (const uint8_t *)good,
                                         sizeof good - 1),
                     0);
    mk_coll_item it;
    assert_true(mk_pq_min(other.q, &it));
    cu_assert_bytes(it.key, it.key_len, "b");
    mk_buf_free(&snap);
    mk_buf_free(&copy);
    zoo_free(&z);
    zoo_free(&other);
}

static void malformed_replies(void **state)
{
    mk_coll_outcome o;
    bool found, more;
    mk_coll_item it;
    uint64_t n;
    /* Outcomes: truncated, trailing, unknown flags, fields without found. */
    assert_int_equal(mk_coll_outcome_decode("", 0, &o), MK_EDECODE);
    assert_int_equal(mk_coll_outcome_decode("\x01\x00", 2, &o), MK_EDECODE);
    assert_int_equal(mk_coll_outcome_decode("\x01\x00\x00\x00", 4, &o),
                     MK_EDECODE);
    assert_int_equal(mk_coll_outcome_decode("\x01\x00\x10", 3, &o),
                     MK_EDECODE);
    assert_int_equal(mk_coll_outcome_decode("\x01\x00\x08\x00", 4, &o),
                     MK_EDECODE);
    assert_int_equal(mk_coll_outcome_decode("\x01\x02\x09\x01z", 5, &o), 0);
    assert_int_equal(o.changed, 1);
    assert_int_equal(o.evicted, 2);
    assert_true(o.has_item);
    cu_assert_bytes(o.item.val, o.item.val_len, "z");
    assert_int_equal(mk_coll_reply_len("\x80", 1, &n), MK_EDECODE);
    assert_int_equal(mk_coll_reply_item("\x01\x00", 2, &found, &it),
                     MK_EDECODE);
    /* Pages: a count past the bytes, fields flagged FOUND, more > 1. */
    collect c;
    c.text[0] = '\0';
    assert_int_equal(mk_coll_reply_page("\x04\x00\x00\x00\x09\x01z", 7,
                                        collect_key, &c, &more),
                     MK_EDECODE);
    assert_int_equal(mk_coll_reply_page("\x05\x00\x00\x00\x00\x00", 6,
                                        collect_key, &c, &more),
                     MK_EDECODE);
    assert_int_equal(mk_coll_reply_page("\x04\x00\x00\x00\x00\x02", 6,
                                        collect_key, &c, &more),
                     MK_EDECODE);
    assert_int_equal(mk_coll_reply_page("\x04\x00\x00\x00\x01\x01z\x00", 8,
                                        collect_key, &c, &more),
                     0);
    assert_string_equal(c.text, "z,");
    /* A bad page never calls back, even after good items. */
    c.text[0] = '\0';
    assert_int_equal(mk_coll_reply_page("\x04\x00\x00\x00\x02\x01z\x01", 8,
                                        collect_key, &c, &more),
                     MK_EDECODE);
    assert_string_equal(c.text, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_smoke),
        cmocka_unit_test(map_key_order),
        cmocka_unit_test(map_extend_overlap_and_remove),
        cmocka_unit_test(map_cas),
        cmocka_unit_test(map_queries),
        cmocka_unit_test(set_semantics),
        cmocka_unit_test(vec_smoke),
        cmocka_unit_test(vec_edges),
        cmocka_unit_test(cell_semantics),
        cmocka_unit_test(once_semantics),
        cmocka_unit_test(pq_upsert_and_updates),
        cmocka_unit_test(pq_same_bucket),
        cmocka_unit_test(pq_remove_range),
        cmocka_unit_test(pq_cas_value),
        cmocka_unit_test(pq_bounded),
        cmocka_unit_test(signatures),
        cmocka_unit_test(apply_without_result),
        cmocka_unit_test(malformed_commands),
        cmocka_unit_test(malformed_snapshots),
        cmocka_unit_test(malformed_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
