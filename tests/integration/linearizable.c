/* The register linearizability checker (linearizable.h). */
#include "linearizable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *prev, *next;
    struct entry *match; /* call: its return; return: its call */
    size_t op;
    int64_t time;
    bool call;
} entry;

/* The memo: (placed set, register value) pairs already explored. */
typedef struct memo {
    uint64_t *keys; /* each: words of the set, then the value */
    bool *used;
    size_t cap, n, words;
} memo;

static uint64_t hash_key(const uint64_t *k, size_t words)
{
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i <= words; i++) {
        h ^= k[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    return h;
}

static bool memo_grow(memo *m)
{
    size_t cap = m->cap ? 2 * m->cap : 1024;
    size_t w = m->words + 1;
    uint64_t *keys = calloc(cap * w, sizeof *keys);
    bool *used = calloc(cap, sizeof *used);
    if (!keys || !used) {
        free(keys);
        free(used);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->used[i])
            continue;
        const uint64_t *k = m->keys + i * w;
        size_t at = hash_key(k, m->words) & (cap - 1);
        while (used[at])
            at = (at + 1) & (cap - 1);
        used[at] = true;
        memcpy(keys + at * w, k, w * sizeof *k);
    }
    free(m->keys);
    free(m->used);
    m->keys = keys;
    m->used = used;
    m->cap = cap;
    return true;
}

/* Adds `k`; false when it was there already (or no memory: then the
 * search just explores it again). */
static bool memo_add(memo *m, const uint64_t *k)
{
    size_t w = m->words + 1;
    if ((m->n + 1) * 2 > m->cap && !memo_grow(m))
        return true;
    size_t at = hash_key(k, m->words) & (m->cap - 1);
    while (m->used[at]) {
        if (memcmp(m->keys + at * w, k, w * sizeof *k) == 0)
            return false;
        at = (at + 1) & (m->cap - 1);
    }
    m->used[at] = true;
    memcpy(m->keys + at * w, k, w * sizeof *k);
    m->n++;
    return true;
}

static bool step(const lin_op *o, int64_t state, int64_t *next)
{
    if (o->kind == LIN_READ) {
        *next = state;
        return o->value == state;
    }
    *next = o->value;
    return o->ret == LIN_NEVER || o->prev == state;
}

static void lift(entry **head, entry *call)
{
    entry *ret = call->match;
    for (entry *e = call;; e = ret) {
        if (e->prev)
            e->prev->next = e->next;
        else
            *head = e->next;
        if (e->next)
            e->next->prev = e->prev;
        if (e == ret)
            break;
    }
}

/* Puts both back exactly where they were (each still knows its
 * neighbours; the return first, since the call may precede it). */
static void unlift(entry **head, entry *call)
{
    entry *ret = call->match;
    for (entry *e = ret;; e = call) {
        if (e->prev)
            e->prev->next = e;
        else
            *head = e;
        if (e->next)
            e->next->prev = e;
        if (e == call)
            break;
    }
}

static int by_time(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    /* Same instant: treat as concurrent (calls first). */
    if (x->call != y->call)
        return x->call ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

bool lin_check(const lin_op *ops, size_t n, int64_t init, char *why,
               size_t whylen)
{
    if (n == 0)
        return true;
    entry *es = calloc(2 * n, sizeof *es);
    size_t words = (n + 63) / 64;
    uint64_t *placed = calloc(words + 1, sizeof *placed);
    struct frame {
        entry *call;
        int64_t state;
    } *stack = calloc(n, sizeof *stack);
    memo m = {.words = words};
    bool ok = false;
    if (!es || !placed || !stack)
        goto out;
    for (size_t i = 0; i < n; i++) {
        es[2 * i] = (entry){.op = i, .time = ops[i].call, .call = true};
        es[2 * i + 1] = (entry){.op = i, .time = ops[i].ret, .call = false};
    }
    qsort(es, 2 * n, sizeof *es, by_time);
    /* Matching after sorting: index calls by op. */
    entry **call_of = calloc(n, sizeof *call_of);
    if (!call_of)
        goto out;
    for (size_t i = 0; i < 2 * n; i++)
        if (es[i].call)
            call_of[es[i].op] = &es[i];
    for (size_t i = 0; i < 2 * n; i++) {
        es[i].prev = i ? &es[i - 1] : NULL;
        es[i].next = i + 1 < 2 * n ? &es[i + 1] : NULL;
        if (!es[i].call) {
            es[i].match = call_of[es[i].op];
            call_of[es[i].op]->match = &es[i];
        }
    }
    free(call_of);

    entry *head = &es[0], *e = head;
    int64_t state = init;
    size_t depth = 0;
    while (head) {
        if (e->call) {
            int64_t next;
            if (step(&ops[e->op], state, &next)) {
                placed[e->op / 64] |= 1ull << (e->op % 64);
                placed[words] = (uint64_t)next;
                if (memo_add(&m, placed)) {
                    stack[depth].call = e;
                    stack[depth].state = state;
                    depth++;
                    state = next;
                    lift(&head, e);
                    e = head;
                    continue;
                }
                placed[e->op / 64] &= ~(1ull << (e->op % 64));
            }
            e = e->next;
        } else {
            /* An answer arrived before its operation could be placed. */
            if (depth == 0) {
                if (why)
                    snprintf(why, whylen,
                             "operation %zu (%s %lld) cannot be placed",
                             e->op,
                             ops[e->op].kind == LIN_READ ? "read" : "swap",
                             (long long)ops[e->op].value);
                goto out;
            }
            depth--;
            entry *c = stack[depth].call;
            state = stack[depth].state;
            placed[c->op / 64] &= ~(1ull << (c->op % 64));
            unlift(&head, c);
            e = c->next;
        }
    }
    ok = true;
out:
    free(es);
    free(placed);
    free(stack);
    free(m.keys);
    free(m.used);
    return ok;
}
