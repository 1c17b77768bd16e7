/* BLAKE3 hasher: the chunk state and the Merkle tree of chaining values
 * (include/mosaik/blake3.h), over the compression back ends chosen in
 * blake3_dispatch.c.
 *
 * Input is cut into 1 KiB chunks, chunk i compressed with counter i; pairs
 * of subtrees are joined by parent nodes, the left one always the largest
 * power of two of chunks that leaves the right one some, and the one node
 * that covers everything is compressed again with ROOT for the output:
 * BLAKE3's tree mode.
 *
 * Two paths feed the tree. Bytes that do not make whole chunks go through
 * the open chunk, one block at a time. Runs of whole chunks in one update
 * skip it: up to RUN_CHUNKS of them are compressed in parallel by the back
 * end, then reduced level by level, every level's parents again in
 * parallel. What the run cannot finish (nodes whose sibling is already on
 * the stack or still to come) is pushed onto the stack.
 *
 * Only the node covering all the input may carry ROOT, and until the input
 * ends nobody knows which node that is. So the stack is merged lazily: a
 * node is pushed unmerged, and merged into its left neighbours only when
 * something further right proves it is not the last (the next push, or
 * bytes entering the open chunk). A run never computes the node covering
 * all input so far, and a lone first chunk stays open.
 */
#include "blake3_impl.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

/* Chunks compressed in parallel before their subtree is handed to the
 * stack: 256 KiB of input, 8 KiB of chaining values on the stack. Larger
 * runs barely help, as the parent levels inside a run are already
 * parallel. */
#define RUN_CHUNKS 256

static const uint32_t IV[8] = {
    MK__BLAKE3_IV0, MK__BLAKE3_IV1, MK__BLAKE3_IV2, MK__BLAKE3_IV3,
    MK__BLAKE3_IV4, MK__BLAKE3_IV5, MK__BLAKE3_IV6, MK__BLAKE3_IV7,
};

static inline uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void store32(uint8_t *p, uint32_t w)
{
    p[0] = (uint8_t)w;
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)(w >> 16);
    p[3] = (uint8_t)(w >> 24);
}

/* A node whose last compression is still to do: the open chunk's final
 * block, or a parent. Done for its chaining value, or with ROOT for the
 * output. */
typedef struct node {
    uint32_t cv[8];
    uint8_t block[64];
    uint8_t block_len;
    uint64_t counter;
    uint8_t flags;
} node;

static void node_cv(const node *n, uint8_t out[32])
{
    uint32_t w[16];
    mk__blake3_compress(n->cv, n->block, n->block_len, n->counter, n->flags,
                        w);
    for (int i = 0; i < 8; i++)
        store32(out + 4 * i, w[i]);
}

static void parent_node(const mk_blake3_hasher *h, const uint8_t left[32],
                        const uint8_t right[32], node *n)
{
    memcpy(n->cv, h->key, 32);
    memcpy(n->block, left, 32);
    memcpy(n->block + 32, right, 32);
    n->block_len = MK_BLAKE3_BLOCK_LEN;
    n->counter = 0;
    n->flags = h->flags | MK__BLAKE3_PARENT;
}

/* ---- the open chunk ---------------------------------------------------- */

static size_t chunk_len(const mk_blake3_hasher *h)
{
    return (size_t)h->blocks_done * MK_BLAKE3_BLOCK_LEN + h->buf_len;
}

static uint8_t chunk_start_flag(const mk_blake3_hasher *h)
{
    return h->blocks_done == 0 ? MK__BLAKE3_CHUNK_START : 0;
}

static void chunk_open(mk_blake3_hasher *h, uint64_t counter)
{
    memcpy(h->cv, h->key, 32);
    h->counter = counter;
    h->buf_len = 0;
    h->blocks_done = 0;
}

static void chunk_absorb(mk_blake3_hasher *h, const uint8_t *in, size_t len)
{
    while (len > 0) {
        /* A full buffer is compressed only once more input exists, so the
         * chunk's last block is always left for chunk_node. */
        if (h->buf_len == MK_BLAKE3_BLOCK_LEN) {
            uint32_t w[16];
            mk__blake3_compress(h->cv, h->buf, MK_BLAKE3_BLOCK_LEN,
                                h->counter, h->flags | chunk_start_flag(h), w);
            memcpy(h->cv, w, 32);
            h->blocks_done++;
            h->buf_len = 0;
        }
        size_t take = MK_BLAKE3_BLOCK_LEN - h->buf_len;
        if (take > len)
            take = len;
        memcpy(h->buf + h->buf_len, in, take);
        h->buf_len = (uint8_t)(h->buf_len + take);
        in += take;
        len -= take;
    }
}

static void chunk_node(const mk_blake3_hasher *h, node *n)
{
    memcpy(n->cv, h->cv, 32);
    memset(n->block, 0, 64);
    memcpy(n->block, h->buf, h->buf_len);
    n->block_len = h->buf_len;
    n->counter = h->counter;
    n->flags = h->flags | chunk_start_flag(h) | MK__BLAKE3_CHUNK_END;
}

/* ---- the stack of subtrees ---------------------------------------------- */

/* Merges the top pairs until `keep` entries remain. Entries cover chunks
 * [0, c) in order; merged down to popcount(c) entries they are the
 * perfect subtrees of c's binary digits, the shape the final tree needs. */
static void stack_merge(mk_blake3_hasher *h, unsigned keep)
{
    while (h->stack_len > keep) {
        uint8_t *left = h->stack + 32 * (h->stack_len - 2);
        node n;
        parent_node(h, left, left + 32, &n);
        node_cv(&n, left);
        h->stack_len--;
    }
}

static unsigned popcount64(uint64_t x)
{
    return (unsigned)__builtin_popcountll(x);
}

/* Pushes the chaining value of a node that starts at chunk `start`; its
 * size is a power of two dividing `start`. Everything already on the stack
 * lies left of it, so none of that is the root: merge it first. */
static void stack_push(mk_blake3_hasher *h, const uint8_t cv[32],
                       uint64_t start)
{
    stack_merge(h, popcount64(start));
    memcpy(h->stack + 32 * h->stack_len, cv, 32);
    h->stack_len++;
}

/* ---- runs of whole chunks ----------------------------------------------- */

/* Hashes chunks [c, c + n) from `in` (n <= RUN_CHUNKS; the open chunk is
 * empty with counter c) into the tree. `last` says the input may end with
 * them; then the node covering all of [0, c + n), which would be the root,
 * is left as two children on the stack for mk_blake3_final to join. */
static void run_hash(mk_blake3_hasher *h, const uint8_t *in, uint64_t c,
                     size_t n, bool last)
{
    uint8_t cvs[RUN_CHUNKS * 32];
    mk__blake3_batch chunks = {
        .in = in,
        .stride = MK_BLAKE3_CHUNK_LEN,
        .blocks = MK_BLAKE3_CHUNK_LEN / MK_BLAKE3_BLOCK_LEN,
        .key = h->key,
        .counter = c,
        .counter_step = 1,
        .flags = h->flags,
        .first_flags = MK__BLAKE3_CHUNK_START,
        .last_flags = MK__BLAKE3_CHUNK_END,
    };
    mk__blake3_hash_many(&chunks, n, cvs);

    /* Level by level: nodes [a, b) of size 2^level, chaining values at
     * cur[0..]. A node left over at the right end of a level waits in
     * `rest` until everything left of it has been pushed. */
    uint8_t rest[16][32]; /* at most one per level: log2(RUN_CHUNKS) + 1 */
    uint64_t rest_start[16];
    unsigned nrest = 0;
    uint64_t a = c, b = c + n;
    uint8_t *cur = cvs;
    for (unsigned level = 0; a < b; level++) {
        if (a & 1) {
            /* Its left sibling is on the stack. */
            stack_push(h, cur, a << level);
            cur += 32;
            a++;
        }
        if ((b - a) & 1) {
            b--;
            memcpy(rest[nrest], cur + 32 * (b - a), 32);
            rest_start[nrest++] = b << level;
        }
        if (a == b)
            break;
        if (last && a == 0 && b == 2 && nrest == 0) {
            /* Their parent would cover all input so far: maybe the root. */
            stack_push(h, cur, 0);
            stack_push(h, cur + 32, (uint64_t)1 << level);
            break;
        }
        mk__blake3_batch parents = {
            .in = cur,
            .stride = 2 * MK_BLAKE3_OUT_LEN,
            .blocks = 1,
            .key = h->key,
            .flags = h->flags | MK__BLAKE3_PARENT,
        };
        mk__blake3_hash_many(&parents, (size_t)(b - a) / 2, cur);
        a /= 2;
        b /= 2;
    }
    while (nrest > 0) {
        nrest--;
        stack_push(h, rest[nrest], rest_start[nrest]);
    }
    chunk_open(h, c + n);
}

/* ---- public API --------------------------------------------------------- */

static void hasher_init(mk_blake3_hasher *h, const uint32_t key[8],
                        uint8_t flags)
{
    memcpy(h->key, key, 32);
    h->flags = flags;
    h->stack_len = 0;
    chunk_open(h, 0);
}

void mk_blake3_init(mk_blake3_hasher *h)
{
    hasher_init(h, IV, 0);
}

void mk_blake3_init_keyed(mk_blake3_hasher *h,
                          const uint8_t key[MK_BLAKE3_KEY_LEN])
{
    uint32_t k[8];
    for (int i = 0; i < 8; i++)
        k[i] = load32(key + 4 * i);
    hasher_init(h, k, MK__BLAKE3_KEYED_HASH);
}

void mk_blake3_update(mk_blake3_hasher *h, const void *data, size_t len)
{
    const uint8_t *in = data;
    while (len > 0) {
        size_t have = chunk_len(h);
        if (have == MK_BLAKE3_CHUNK_LEN) {
            /* More input follows, so the open chunk is not the root. */
            node n;
            uint8_t cv[32];
            chunk_node(h, &n);
            node_cv(&n, cv);
            stack_push(h, cv, h->counter);
            chunk_open(h, h->counter + 1);
            have = 0;
        }
        if (have == 0) {
            uint64_t c = h->counter;
            size_t n = len / MK_BLAKE3_CHUNK_LEN;
            /* Runs end on a multiple of RUN_CHUNKS when they can, so that
             * the next run starts aligned and reduces to a single node. */
            if (n > RUN_CHUNKS - c % RUN_CHUNKS)
                n = RUN_CHUNKS - c % RUN_CHUNKS;
            bool last = n * MK_BLAKE3_CHUNK_LEN == len;
            if (n > 0 && !(last && c + n == 1)) {
                run_hash(h, in, c, n, last);
                in += n * MK_BLAKE3_CHUNK_LEN;
                len -= n * MK_BLAKE3_CHUNK_LEN;
                continue;
            }
            /* Bytes entering the chunk prove the stack is not the end. */
            stack_merge(h, popcount64(c));
        }
        size_t take = MK_BLAKE3_CHUNK_LEN - have;
        if (take > len)
            take = len;
        chunk_absorb(h, in, take);
        in += take;
        len -= take;
    }
}

void mk_blake3_final(const mk_blake3_hasher *h, uint8_t *out, size_t out_len)
{
    node n;
    size_t i = h->stack_len;
    if (chunk_len(h) > 0 || h->counter == 0) {
        /* The open chunk is the rightmost node (or the whole empty input);
         * the stack was merged when its first byte came. */
        chunk_node(h, &n);
    } else {
        /* The input ended with a run: the stack's top two entries are the
         * rightmost nodes. Joining from the right needs no merging first,
         * since each entry is no larger than the one before it. */
        assert(i >= 2);
        i -= 2;
        parent_node(h, h->stack + 32 * i, h->stack + 32 * (i + 1), &n);
    }
    for (; i > 0; i--) {
        uint8_t cv[32];
        node_cv(&n, cv);
        parent_node(h, h->stack + 32 * (i - 1), cv, &n);
    }

    uint64_t block = 0;
    while (out_len > 0) {
        uint32_t w[16];
        uint8_t bytes[64];
        mk__blake3_compress(n.cv, n.block, n.block_len, block++,
                            n.flags | MK__BLAKE3_ROOT, w);
        for (int k = 0; k < 16; k++)
            store32(bytes + 4 * k, w[k]);
        size_t take = out_len < 64 ? out_len : 64;
        memcpy(out, bytes, take);
        out += take;
        out_len -= take;
    }
}

void mk_blake3(const void *data, size_t len, uint8_t out[MK_BLAKE3_OUT_LEN])
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, data, len);
    mk_blake3_final(&h, out, MK_BLAKE3_OUT_LEN);
}

const char *mk_blake3_impl(void)
{
    return mk__blake3_backend();
}
