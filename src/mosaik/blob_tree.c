/* The segment tree of a blob (blob_internal.h): BLAKE3's own Merkle tree,
 * cut at segment boundaries, so a fetcher can check each segment of a
 * file against the file's plain BLAKE3 hash as soon as it arrives.
 *
 * Only the tree mode is done here; the compression itself is the hasher's
 * (blake3/blake3_impl.h): chunks of a segment go through the same
 * many-lanes kernel, with chunk counters starting at the segment's first
 * chunk, and parents through the same single compression. The unit test
 * checks the result against mk_blake3 for sizes around every boundary.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blake3/blake3_impl.h"
#include "blob_internal.h"
#include "mosaik/error.h"

#define CHUNKS_PER_SEGMENT (MK_BLOB_SEGMENT / MK_BLAKE3_CHUNK_LEN)

static const uint32_t IV[8] = {
    MK__BLAKE3_IV0, MK__BLAKE3_IV1, MK__BLAKE3_IV2, MK__BLAKE3_IV3,
    MK__BLAKE3_IV4, MK__BLAKE3_IV5, MK__BLAKE3_IV6, MK__BLAKE3_IV7,
};

/* With a system libblake3 the project's SIMD kernels are not built; the
 * portable one (always built) does the lanes then. */
static void many(const mk__blake3_batch *b, size_t n, uint8_t *out)
{
#ifdef MK_BLAKE3_SYSTEM
    mk__blake3_many_portable(b, n, out);
#else
    mk__blake3_hash_many(b, n, out);
#endif
}

static void store_cv(const uint32_t w[8], uint8_t out[32])
{
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)w[i];
        out[4 * i + 1] = (uint8_t)(w[i] >> 8);
        out[4 * i + 2] = (uint8_t)(w[i] >> 16);
        out[4 * i + 3] = (uint8_t)(w[i] >> 24);
    }
}

static void parent_cv(const uint8_t left[32], const uint8_t right[32],
                      uint8_t flags, uint8_t out[32])
{
    uint8_t block[64];
    uint32_t w[16];
    memcpy(block, left, 32);
    memcpy(block + 32, right, 32);
    mk__blake3_compress(IV, block, 64, 0, MK__BLAKE3_PARENT | flags, w);
    store_cv(w, out);
}

/* A chunk shorter than 1 KiB (the file's last), block by block. */
static void partial_chunk_cv(const uint8_t *in, size_t len, uint64_t counter,
                             uint8_t out[32])
{
    uint32_t cv[8], w[16];
    memcpy(cv, IV, sizeof cv);
    size_t blocks = len == 0 ? 1 : (len + 63) / 64;
    for (size_t b = 0; b < blocks; b++) {
        uint8_t block[64] = {0};
        size_t take = len - b * 64 < 64 ? len - b * 64 : 64;
        memcpy(block, in + b * 64, take);
        uint8_t flags = (b == 0 ? MK__BLAKE3_CHUNK_START : 0) |
                        (b == blocks - 1 ? MK__BLAKE3_CHUNK_END : 0);
        mk__blake3_compress(cv, block, (uint8_t)take, counter, flags, w);
        memcpy(cv, w, sizeof cv);
    }
    store_cv(cv, out);
}

/* Reduces n chaining values (in place) to the chaining value of their
 * left-balanced tree, pairing neighbours level by level and lifting an
 * odd last one: the shape BLAKE3 builds, each level in parallel. */
static void reduce(uint8_t *cvs, size_t n)
{
    while (n > 1) {
        size_t pairs = n / 2;
        mk__blake3_batch parents = {
            .in = cvs,
            .stride = 64,
            .blocks = 1,
            .key = IV,
            .flags = MK__BLAKE3_PARENT,
        };
        many(&parents, pairs, cvs);
        if (n % 2)
            memmove(cvs + 32 * pairs, cvs + 32 * (n - 1), 32);
        n = pairs + n % 2;
    }
}

uint64_t mk__blob_segments(uint64_t size)
{
    return size == 0 ? 1 : (size + MK_BLOB_SEGMENT - 1) / MK_BLOB_SEGMENT;
}

size_t mk__blob_segment_len(uint64_t size, uint64_t i)
{
    uint64_t start = i * MK_BLOB_SEGMENT;
    if (start >= size)
        return 0;
    uint64_t left = size - start;
    return (size_t)(left < MK_BLOB_SEGMENT ? left : MK_BLOB_SEGMENT);
}

void mk__blob_seg_init(mk__blob_seg_hasher *h, uint64_t index)
{
    h->first = index * CHUNKS_PER_SEGMENT;
    h->n = 0;
    h->buf_len = 0;
}

/* Whole chunks are hashed in place, many at a time, as soon as they are
 * complete; only a chunk split across calls is copied. A full chunk's
 * chaining value does not depend on whether more follow (only the root
 * would, and a segment of a multi-segment blob is never the root). */
void mk__blob_seg_update(mk__blob_seg_hasher *h, const uint8_t *p, size_t n)
{
    if (h->buf_len) {
        size_t take = MK_BLAKE3_CHUNK_LEN - h->buf_len;
        if (take > n)
            take = n;
        memcpy(h->buf + h->buf_len, p, take);
        h->buf_len += take;
        p += take;
        n -= take;
        if (h->buf_len < MK_BLAKE3_CHUNK_LEN)
            return;
        partial_chunk_cv(h->buf, MK_BLAKE3_CHUNK_LEN, h->first + h->n,
                         h->cvs + 32 * h->n);
        h->n++;
        h->buf_len = 0;
    }
    size_t full = n / MK_BLAKE3_CHUNK_LEN;
    if (full > CHUNKS_PER_SEGMENT - h->n)
        full = CHUNKS_PER_SEGMENT - h->n; /* more than a segment: caller bug */
    if (full) {
        mk__blake3_batch chunks = {
            .in = p,
            .stride = MK_BLAKE3_CHUNK_LEN,
            .blocks = MK_BLAKE3_CHUNK_LEN / MK_BLAKE3_BLOCK_LEN,
            .key = IV,
            .counter = h->first + h->n,
            .counter_step = 1,
            .first_flags = MK__BLAKE3_CHUNK_START,
            .last_flags = MK__BLAKE3_CHUNK_END,
        };
        many(&chunks, full, h->cvs + 32 * h->n);
        h->n += full;
        p += full * MK_BLAKE3_CHUNK_LEN;
        n -= full * MK_BLAKE3_CHUNK_LEN;
    }
    if (n && h->n < CHUNKS_PER_SEGMENT) {
        memcpy(h->buf, p, n);
        h->buf_len = n;
    }
}

void mk__blob_seg_final(mk__blob_seg_hasher *h, uint8_t out[32])
{
    if (h->buf_len || h->n == 0) {
        partial_chunk_cv(h->buf, h->buf_len, h->first + h->n,
                         h->cvs + 32 * h->n);
        h->n++;
        h->buf_len = 0;
    }
    reduce(h->cvs, h->n);
    memcpy(out, h->cvs, 32);
}

void mk__blob_segment_cv(const uint8_t *seg, size_t len, uint64_t index,
                         uint8_t out[32])
{
    mk__blob_seg_hasher h;
    mk__blob_seg_init(&h, index);
    mk__blob_seg_update(&h, seg, len);
    mk__blob_seg_final(&h, out);
}

void mk__blob_root(const uint8_t *cvs, uint64_t n, mk_id *out)
{
    /* The hasher's stack, one segment at a time: before segment i is
     * pushed, everything left of it merges into the perfect subtrees of
     * i's binary digits (none can be the root: i comes after them). At
     * the end the subtrees join from the right, the last join being the
     * root. 64 levels cover any count. */
    uint8_t stack[64][32];
    unsigned sl = 0;
    for (uint64_t i = 0; i < n; i++) {
        while (sl > (unsigned)__builtin_popcountll(i)) {
            parent_cv(stack[sl - 2], stack[sl - 1], 0, stack[sl - 2]);
            sl--;
        }
        memcpy(stack[sl++], cvs + 32 * i, 32);
    }
    while (sl > 2) {
        parent_cv(stack[sl - 2], stack[sl - 1], 0, stack[sl - 2]);
        sl--;
    }
    if (sl == 2)
        parent_cv(stack[0], stack[1], MK__BLAKE3_ROOT, out->b);
    else
        memcpy(out->b, stack[0], 32);
}

int mk__blob_hash_fd(int fd, mk_id *hash, uint64_t *size, uint8_t **cvs)
{
    *cvs = NULL;
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0 || lseek(fd, 0, SEEK_SET) < 0)
        return -errno;
    if ((uint64_t)end > MK_BLOB_MAX_SIZE)
        return MK_EMSGSIZE;
    uint64_t n = mk__blob_segments((uint64_t)end);
    uint8_t *seg = malloc(MK_BLOB_SEGMENT);
    uint8_t *v = n > 1 ? malloc((size_t)n * 32) : NULL;
    if (!seg || (n > 1 && !v)) {
        free(seg);
        free(v);
        return MK_ENOMEM;
    }
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        size_t want = mk__blob_segment_len((uint64_t)end, i), got = 0;
        while (got < want) {
            ssize_t r = read(fd, seg + got, want - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                /* Shrunk under us: the hash would describe nothing. */
                rc = r < 0 ? -errno : MK_EIO;
                break;
            }
            got += (size_t)r;
        }
        if (rc)
            break;
        if (n > 1)
            mk__blob_segment_cv(seg, want, i, v + 32 * i);
        else
            mk_blake3_update(&h, seg, want);
    }
    free(seg);
    if (rc) {
        free(v);
        return rc;
    }
    if (n > 1) {
        mk__blob_root(v, n, hash);
        *cvs = v;
    } else {
        mk_blake3_final(&h, hash->b, MK_ID_LEN);
    }
    *size = (uint64_t)end;
    return 0;
}
