/* The verbs of each collection kind (coll_cli.h): one table, so adding a
 * verb is one row and the parser, --help, batches and output all follow
 * it. Each row names the collections.h encoder it sends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll_cli.h"
#include "mosaik/error.h"
#include "mosaik/id.h"

#define ITEM_KEY(a) (a)->item.key, (a)->item.key_len
#define ITEM_VAL(a) (a)->item.val, (a)->item.val_len
#define ITEM_PRIO(a) (a)->item.prio, (a)->item.prio_len

/* ---- encoders: coll_args to collections.h ------------------------------- */

static int map_put(mk_buf *o, const coll_args *a)
{
    return mk_map_cmd_insert(o, ITEM_KEY(a), ITEM_VAL(a));
}
static int map_del(mk_buf *o, const coll_args *a)
{
    return mk_map_cmd_remove(o, ITEM_KEY(a));
}
static int map_get(mk_buf *o, const coll_args *a)
{
    return mk_map_query_get(o, ITEM_KEY(a));
}
static int map_len(mk_buf *o, const coll_args *a)
{
    (void)a;
    return mk_map_query_len(o);
}

static int set_add(mk_buf *o, const coll_args *a)
{
    return mk_set_cmd_insert(o, ITEM_KEY(a));
}
static int set_remove(mk_buf *o, const coll_args *a)
{
    return mk_set_cmd_remove(o, ITEM_KEY(a));
}
static int set_has(mk_buf *o, const coll_args *a)
{
    return mk_set_query_contains(o, ITEM_KEY(a));
}
static int set_len(mk_buf *o, const coll_args *a)
{
    (void)a;
    return mk_set_query_len(o);
}

static int vec_push(mk_buf *o, const coll_args *a)
{
    return mk_vec_cmd_push_back(o, ITEM_VAL(a));
}
static int vec_pop(mk_buf *o, const coll_args *a)
{
    (void)a;
    return mk_vec_cmd_pop_back(o);
}
static int vec_set(mk_buf *o, const coll_args *a)
{
    return mk_vec_cmd_set(o, a->index, ITEM_VAL(a));
}
static int vec_get(mk_buf *o, const coll_args *a)
{
    return mk_vec_query_get(o, a->index);
}
static int vec_len(mk_buf *o, const coll_args *a)
{
    (void)a;
    return mk_vec_query_len(o);
}

static int cell_set(mk_buf *o, const coll_args *a)
{
    return mk_cell_cmd_write(o, ITEM_VAL(a));
}
static int cell_clear(mk_buf *o, const coll_args *a)
{
    (void)a;
    return mk_cell_cmd_clear(o);
}
static int cell_get(mk_buf *o, const coll_args *a)
{
    (void)a;
    return mk_cell_query_get(o);
}

static int once_set(mk_buf *o, const coll_args *a)
{
    return mk_once_cmd_write(o, ITEM_VAL(a));
}
static int once_get(mk_buf *o, const coll_args *a)
{
    (void)a;
    return mk_once_query_get(o);
}

static int pq_push(mk_buf *o, const coll_args *a)
{
    return mk_pq_cmd_insert(o, ITEM_PRIO(a), ITEM_KEY(a), ITEM_VAL(a));
}
static int pq_del(mk_buf *o, const coll_args *a)
{
    return mk_pq_cmd_remove(o, ITEM_KEY(a));
}
static int pq_peek(mk_buf *o, const coll_args *a)
{
    (void)a;
    return mk_pq_query_min(o);
}
static int pq_len(mk_buf *o, const coll_args *a)
{
    (void)a;
    return mk_pq_query_len(o);
}

/* ---- the table ------------------------------------------------------------- */

#define K COLL_F_KEY
#define V COLL_F_VAL
#define P COLL_F_PRIO
#define I COLL_F_INDEX

static const coll_verb MAP_VERBS[] = {
    {"put", "KEY VALUE", VERB_WRITE, K | V, SAY_OK, map_put, false},
    {"get", "KEY", VERB_GET, K, SAY_OK, map_get, false},
    {"del", "KEY", VERB_WRITE, K, SAY_COUNT, map_del, false},
    {"len", "", VERB_LEN, 0, SAY_OK, map_len, false},
    {"list", "", VERB_LIST, 0, SAY_OK, NULL, false},
    {"watch", "", VERB_WATCH, 0, SAY_OK, NULL, false},
};

static const coll_verb SET_VERBS[] = {
    {"add", "ELEM", VERB_WRITE, K, SAY_OK, set_add, false},
    {"remove", "ELEM", VERB_WRITE, K, SAY_COUNT, set_remove, false},
    {"has", "ELEM", VERB_HAS, K, SAY_OK, set_has, false},
    {"len", "", VERB_LEN, 0, SAY_OK, set_len, false},
    {"list", "", VERB_LIST, 0, SAY_OK, NULL, false},
    {"watch", "", VERB_WATCH, 0, SAY_OK, NULL, false},
};

static const coll_verb VEC_VERBS[] = {
    {"push", "VALUE", VERB_WRITE, V, SAY_OK, vec_push, false},
    {"pop", "", VERB_WRITE, 0, SAY_ITEM, vec_pop, false},
    {"get", "INDEX", VERB_GET, I, SAY_OK, vec_get, false},
    {"set", "INDEX VALUE", VERB_WRITE, I | V, SAY_INDEX, vec_set, false},
    {"len", "", VERB_LEN, 0, SAY_OK, vec_len, false},
    {"list", "", VERB_LIST, 0, SAY_OK, NULL, false},
    {"watch", "", VERB_WATCH, 0, SAY_OK, NULL, false},
};

static const coll_verb CELL_VERBS[] = {
    {"set", "VALUE", VERB_WRITE, V, SAY_OK, cell_set, false},
    {"get", "", VERB_GET, 0, SAY_OK, cell_get, false},
    {"clear", "", VERB_WRITE, 0, SAY_COUNT, cell_clear, false},
    {"watch", "", VERB_WATCH, 0, SAY_OK, NULL, false},
};

static const coll_verb ONCE_VERBS[] = {
    {"set", "VALUE", VERB_WRITE, V, SAY_TOOK, once_set, false},
    {"get", "", VERB_GET, 0, SAY_OK, once_get, false},
    {"watch", "", VERB_WATCH, 0, SAY_OK, NULL, false},
};

static const coll_verb PQ_VERBS[] = {
    {"push", "PRIO KEY VALUE", VERB_WRITE, P | K | V, SAY_OK, pq_push, false},
    {"pop-min", "", VERB_POP, 0, SAY_OK, NULL, false},
    {"pop-max", "", VERB_POP, 0, SAY_OK, NULL, true},
    {"peek", "", VERB_GET, 0, SAY_OK, pq_peek, false},
    {"del", "KEY", VERB_WRITE, K, SAY_COUNT, pq_del, false},
    {"len", "", VERB_LEN, 0, SAY_OK, pq_len, false},
    {"list", "", VERB_LIST, 0, SAY_OK, NULL, false},
    {"watch", "", VERB_WATCH, 0, SAY_OK, NULL, false},
};

#undef K
#undef V
#undef P
#undef I

#define VERBS(t) t, sizeof t / sizeof t[0]

static const coll_kind_def KINDS[] = {
    {"map", "a replicated map: put, get, del, len, list, watch", COLL_MAP,
     COLL_F_KEY | COLL_F_VAL, "key", VERBS(MAP_VERBS)},
    {"set", "a replicated set: add, remove, has, len, list, watch", COLL_SET,
     COLL_F_KEY, "elem", VERBS(SET_VERBS)},
    {"vec", "a replicated vector: push, pop, get, set, len, list, watch", COLL_VEC,
     COLL_F_INDEX | COLL_F_VAL, "index", VERBS(VEC_VERBS)},
    {"cell", "a replicated cell: set, get, clear, watch", COLL_CELL,
     COLL_F_VAL, "value", VERBS(CELL_VERBS)},
    {"once", "a write-once cell: set, get, watch", COLL_ONCE, COLL_F_VAL,
     "value", VERBS(ONCE_VERBS)},
    {"pq", "a priority queue: push, pop-min, pop-max, peek, del, len, list, "
           "watch",
     COLL_PQ, COLL_F_PRIO | COLL_F_KEY | COLL_F_VAL, "key", VERBS(PQ_VERBS)},
};

const coll_kind_def *coll_kind_find(const char *name)
{
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (strcmp(KINDS[i].name, name) == 0)
            return &KINDS[i];
    return NULL;
}

const coll_kind_def *coll_kind_at(coll_kind k)
{
    return &KINDS[k];
}

const coll_verb *coll_verb_find(const coll_kind_def *k, const char *name)
{
    for (size_t i = 0; i < k->n_verbs; i++)
        if (strcmp(k->verbs[i].name, name) == 0)
            return &k->verbs[i];
    return NULL;
}

int coll_query_page(const coll_kind_def *k, mk_buf *out,
                    const mk_coll_item *after, uint64_t start,
                    uint32_t limit)
{
    mk_coll_bytes a = {after ? after->key : NULL, after ? after->key_len : 0};
    switch (k->kind) {
    case COLL_MAP: return mk_map_query_page(out, after ? &a : NULL, limit);
    case COLL_SET: return mk_set_query_page(out, after ? &a : NULL, limit);
    case COLL_VEC: return mk_vec_query_page(out, start, limit);
    case COLL_PQ: return mk_pq_query_page(out, after, false, limit);
    default: return MK_EINVAL;
    }
}

int coll_query_end(mk_buf *out, bool max)
{
    return max ? mk_pq_query_max(out) : mk_pq_query_min(out);
}

int coll_cmd_claim(mk_buf *out, const mk_coll_item *it)
{
    return mk_pq_cmd_cas_value(out, it->key, it->key_len, it->val,
                               it->val_len, NULL);
}

/* ---- arguments ------------------------------------------------------------- */

size_t coll_args_count(const coll_verb *v)
{
    size_t n = 0;
    for (unsigned f = 1; f <= COLL_F_INDEX; f <<= 1)
        n += (v->args & f) != 0;
    return n;
}

static const char *arg_name(unsigned f)
{
    return f == COLL_F_INDEX ? "INDEX"
           : f == COLL_F_PRIO ? "PRIO"
           : f == COLL_F_KEY  ? "KEY"
                              : "VALUE";
}

/* A byte argument: as given, or decoded from hex into `*buf`. */
static int arg_bytes(const char *w, bool hex, const uint8_t **p, size_t *len,
                     uint8_t **buf, unsigned f, char *why, size_t whylen)
{
    size_t n = strlen(w);
    if (!hex) {
        *p = (const uint8_t *)w;
        *len = n;
        return 0;
    }
    if (n % 2 != 0 || !(*buf = malloc(n / 2 + 1)) ||
        mk_hex_decode(*buf, n / 2, w, n) != 0) {
        snprintf(why, whylen, "%s: '%s' is not hex (--hex)", arg_name(f), w);
        return -1;
    }
    *p = *buf;
    *len = n / 2;
    return 0;
}

int coll_args_parse(const coll_verb *v, bool hex, char *const *words,
                    size_t n, coll_args *a, uint8_t *scratch[3], char *why,
                    size_t whylen)
{
    memset(a, 0, sizeof *a);
    size_t want = coll_args_count(v);
    if (n != want) {
        snprintf(why, whylen, "%s takes %s, not %zu word%s", v->name,
                 want ? v->usage : "no arguments", n, n == 1 ? "" : "s");
        return -1;
    }
    size_t w = 0, s = 0;
    if (v->args & COLL_F_INDEX) {
        const char *x = words[w++];
        char *end;
        unsigned long long i = strtoull(x, &end, 10);
        if (!*x || *end || *x == '-') {
            snprintf(why, whylen, "INDEX: '%s' is not a number", x);
            return -1;
        }
        a->index = i;
    }
    if ((v->args & COLL_F_PRIO) &&
        arg_bytes(words[w++], hex, &a->item.prio, &a->item.prio_len,
                  &scratch[s++], COLL_F_PRIO, why, whylen) != 0)
        return -1;
    if ((v->args & COLL_F_KEY) &&
        arg_bytes(words[w++], hex, &a->item.key, &a->item.key_len,
                  &scratch[s++], COLL_F_KEY, why, whylen) != 0)
        return -1;
    if ((v->args & COLL_F_VAL) &&
        arg_bytes(words[w++], hex, &a->item.val, &a->item.val_len,
                  &scratch[s++], COLL_F_VAL, why, whylen) != 0)
        return -1;
    return 0;
}
