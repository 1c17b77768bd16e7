/* An intrusive AVL tree for the ordered collections (coll_internal.h).
 *
 * Why AVL: lookups, inserts and removals are O(log n) in the worst case,
 * whatever keys a writer chooses (a sorted array would make a writer that
 * inserts in reverse order pay O(n) per command), and it needs no
 * randomness, so nothing about a replica depends on anything but its
 * commands. The tree's shape is never observable: every output walks it
 * in order.
 *
 * The code is recursive: an AVL tree of n nodes is at most about
 * 1.44 log2(n) high, so the depth stays under 100 for any n that fits in
 * memory.
 */
#include <assert.h>
#include <string.h>

#include "coll_internal.h"

static int height(const mk__node *n)
{
    return n ? n->height : 0;
}

static void fix_height(mk__node *n)
{
    int l = height(n->kid[0]), r = height(n->kid[1]);
    n->height = 1 + (l > r ? l : r);
}

/* Lifts the child on side !dir over `n` (dir 0: rotate left). */
static mk__node *rotate(mk__node *n, int dir)
{
    mk__node *c = n->kid[!dir];
    n->kid[!dir] = c->kid[dir];
    c->kid[dir] = n;
    fix_height(n);
    fix_height(c);
    return c;
}

static mk__node *rebalance(mk__node *n)
{
    fix_height(n);
    int bal = height(n->kid[0]) - height(n->kid[1]);
    if (bal > 1) {
        if (height(n->kid[0]->kid[0]) < height(n->kid[0]->kid[1]))
            n->kid[0] = rotate(n->kid[0], 0);
        return rotate(n, 1);
    }
    if (bal < -1) {
        if (height(n->kid[1]->kid[1]) < height(n->kid[1]->kid[0]))
            n->kid[1] = rotate(n->kid[1], 1);
        return rotate(n, 0);
    }
    return n;
}

void mk__tree_init(mk__tree *t, mk__cmp_fn cmp)
{
    t->root = NULL;
    t->len = 0;
    t->cmp = cmp;
}

mk__node *mk__tree_find(const mk__tree *t, const void *probe)
{
    mk__node *n = t->root;
    while (n) {
        int c = t->cmp(probe, n);
        if (c == 0)
            return n;
        n = n->kid[c > 0];
    }
    return NULL;
}

static mk__node *put(const mk__tree *t, mk__node *n, const void *probe,
                     mk__node *node, mk__node **old)
{
    if (!n) {
        node->kid[0] = node->kid[1] = NULL;
        node->height = 1;
        return node;
    }
    int c = t->cmp(probe, n);
    if (c == 0) {
        /* Same key: the new node takes over the old one's place, so the
         * shape (and balance) is unchanged. */
        *node = *n;
        *old = n;
        return node;
    }
    int d = c > 0;
    n->kid[d] = put(t, n->kid[d], probe, node, old);
    return *old ? n : rebalance(n);
}

mk__node *mk__tree_put(mk__tree *t, const void *probe, mk__node *node)
{
    mk__node *old = NULL;
    t->root = put(t, t->root, probe, node, &old);
    if (!old)
        t->len++;
    return old;
}

static mk__node *unlink_min(mk__node *n, mk__node **min)
{
    if (!n->kid[0]) {
        *min = n;
        return n->kid[1];
    }
    n->kid[0] = unlink_min(n->kid[0], min);
    return rebalance(n);
}

static mk__node *del(const mk__tree *t, mk__node *n, const void *probe,
                     mk__node **out)
{
    if (!n)
        return NULL;
    int c = t->cmp(probe, n);
    if (c == 0) {
        *out = n;
        if (!n->kid[1])
            return n->kid[0];
        /* Replace it by its successor, the smallest node on the right. */
        mk__node *succ;
        mk__node *right = unlink_min(n->kid[1], &succ);
        succ->kid[0] = n->kid[0];
        succ->kid[1] = right;
        return rebalance(succ);
    }
    int d = c > 0;
    n->kid[d] = del(t, n->kid[d], probe, out);
    return *out ? rebalance(n) : n;
}

mk__node *mk__tree_remove(mk__tree *t, const void *probe)
{
    mk__node *out = NULL;
    t->root = del(t, t->root, probe, &out);
    if (out) {
        assert(t->len > 0);
        t->len--;
        out->kid[0] = out->kid[1] = NULL;
    }
    return out;
}

mk__node *mk__tree_seek(const mk__tree *t, const void *probe, mk__seek how)
{
    /* Walk down remembering the best candidate on the wanted side. */
    bool up = how == MK__GT || how == MK__GE;
    bool eq = how == MK__GE || how == MK__LE;
    mk__node *n = t->root, *best = NULL;
    while (n) {
        int c = t->cmp(probe, n);
        if (c == 0 && eq)
            return n;
        if (up) {
            if (c < 0) {
                best = n;
                n = n->kid[0];
            } else {
                n = n->kid[1];
            }
        } else {
            if (c > 0) {
                best = n;
                n = n->kid[1];
            } else {
                n = n->kid[0];
            }
        }
    }
    return best;
}

static mk__node *extreme(const mk__tree *t, int dir)
{
    mk__node *n = t->root;
    if (!n)
        return NULL;
    while (n->kid[dir])
        n = n->kid[dir];
    return n;
}

mk__node *mk__tree_first(const mk__tree *t)
{
    return extreme(t, 0);
}

mk__node *mk__tree_last(const mk__tree *t)
{
    return extreme(t, 1);
}

static int walk(mk__node *n, int first, int (*cb)(mk__node *n, void *data),
                void *data)
{
    while (n) {
        int rc = walk(n->kid[first], first, cb, data);
        if (rc)
            return rc;
        if ((rc = cb(n, data)) != 0)
            return rc;
        n = n->kid[!first]; /* the far side iteratively: less stack */
    }
    return 0;
}

int mk__tree_walk(const mk__tree *t, bool descending,
                  int (*cb)(mk__node *n, void *data), void *data)
{
    return walk(t->root, descending ? 1 : 0, cb, data);
}

static mk__node *build(mk__node **nodes, size_t n)
{
    if (n == 0)
        return NULL;
    size_t mid = n / 2;
    mk__node *root = nodes[mid];
    root->kid[0] = build(nodes, mid);
    root->kid[1] = build(nodes + mid + 1, n - mid - 1);
    fix_height(root);
    return root;
}

void mk__tree_build(mk__tree *t, mk__node **nodes, size_t n)
{
    assert(t->root == NULL);
    /* Halving at the middle keeps the two sides' sizes within one of each
     * other at every node, so the heights differ by at most one. */
    t->root = build(nodes, n);
    t->len = n;
}

static void drain(mk__node *n, void (*drop)(mk__node *n))
{
    while (n) {
        mk__node *right = n->kid[1];
        drain(n->kid[0], drop);
        drop(n);
        n = right;
    }
}

void mk__tree_drain(mk__tree *t, void (*drop)(mk__node *n))
{
    mk__node *root = t->root;
    t->root = NULL;
    t->len = 0;
    drain(root, drop);
}
