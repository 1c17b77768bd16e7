/* Internal: the pieces of the blob service (include/mosaik/blob.h) that
 * tests and fuzzers reach directly — the segment tree, the wire messages
 * and a fault hook. */
#ifndef MK_BLOB_INTERNAL_H
#define MK_BLOB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/blob.h"
#include "mosaik/codec.h"

/* ---- the segment tree (blob_tree.c) ----------------------------------------
 *
 * Segment i covers bytes [i·S, min((i+1)·S, size)) with S = MK_BLOB_SEGMENT,
 * which is 2^8 BLAKE3 chunks: an aligned power of two, so every full
 * segment is a complete subtree of the file's BLAKE3 tree and the last
 * (possibly partial) one is its rightmost subtree. BLAKE3's tree is
 * left-balanced, so the nodes above the segments are the same tree built
 * over their chaining values. With one segment the hash is just the
 * plain hash of the bytes and no chaining value is exchanged.
 */

/* Segments of a blob of `size` bytes (an empty blob has one, empty). */
uint64_t mk__blob_segments(uint64_t size);

/* Length of segment `i` of a blob of `size` bytes. */
size_t mk__blob_segment_len(uint64_t size, uint64_t i);

/* The (non-root) chaining value of segment `index` from its `len` bytes.
 * Only meaningful when the blob has two or more segments. */
void mk__blob_segment_cv(const uint8_t *seg, size_t len, uint64_t index,
                         uint8_t out[32]);

/* The same, incrementally: feed a segment's bytes in any pieces (at most
 * MK_BLOB_SEGMENT in all), then take its chaining value. Lives in caller
 * memory (about 9 KiB); no cleanup. */
typedef struct mk__blob_seg_hasher {
    uint64_t first; /* the segment's first chunk */
    size_t n;       /* chunk chaining values so far */
    size_t buf_len;
    uint8_t buf[1024];
    uint8_t cvs[(MK_BLOB_SEGMENT / 1024) * 32];
} mk__blob_seg_hasher;

void mk__blob_seg_init(mk__blob_seg_hasher *h, uint64_t index);
void mk__blob_seg_update(mk__blob_seg_hasher *h, const uint8_t *p, size_t n);
void mk__blob_seg_final(mk__blob_seg_hasher *h, uint8_t out[32]);

/* The blob's hash from the chaining values of its n >= 2 segments. */
void mk__blob_root(const uint8_t *cvs, uint64_t n, mk_id *out);

/* Hashes an open file from its start: the hash, the size, and (when it
 * has two or more segments) its chaining values in malloc'd `*cvs`
 * (NULL otherwise; caller frees). 0, a negated errno, MK_EMSGSIZE above
 * MK_BLOB_MAX_SIZE, or MK_ENOMEM. */
int mk__blob_hash_fd(int fd, mk_id *hash, uint64_t *size, uint8_t **cvs);

/* ---- wire (blob_wire.c) ------------------------------------------------------
 *
 * One fetch per link. The fetcher sends GET; the server answers HEADER,
 * then, when it has the blob, DATA frames carrying bytes [offset, size) in
 * order, and waits for the fetcher to close.
 *
 *   GET    u8 1, hash[32], varint offset, u8 flags (bit 0: send the
 *          chaining values)
 *   HEADER u8 2, u8 status, varint size, u8 segment shift,
 *          varint n, n × cv[32]   (n is 0 or the segment count, ≥ 2)
 *   DATA   u8 3, bytes
 */
enum {
    MK__BLOB_GET = 1,
    MK__BLOB_HEADER = 2,
    MK__BLOB_DATA = 3,
};

enum {
    MK__BLOB_OK = 0,
    MK__BLOB_NOT_FOUND = 1,
    MK__BLOB_BAD_REQUEST = 2,
};

#define MK__BLOB_WANT_TREE 1

typedef struct mk__blob_get {
    mk_id hash;
    uint64_t offset;
    uint8_t flags;
} mk__blob_get;

typedef struct mk__blob_header {
    uint8_t status;
    uint64_t size;
    uint8_t shift;
    uint64_t n_cvs;
    const uint8_t *cvs; /* points into the decoded frame */
} mk__blob_header;

void mk__blob_get_encode(mk_buf *b, const mk__blob_get *g);
/* 0 or MK_EDECODE (anything but the one encoding of a GET). */
int mk__blob_get_decode(const uint8_t *p, size_t n, mk__blob_get *g);

void mk__blob_header_encode(mk_buf *b, const mk__blob_header *h);
/* 0 or MK_EDECODE: trailing bytes, a status above BAD_REQUEST, a size
 * above MK_BLOB_MAX_SIZE, a shift other than MK_BLOB_SEGMENT_SHIFT, or a
 * count that is neither 0 nor the size's segment count (≥ 2). */
int mk__blob_header_decode(const uint8_t *p, size_t n, mk__blob_header *h);

/* ---- fault injection (tests) --------------------------------------------- */

/* Makes this node's server flip one bit of the byte at `offset` of every
 * blob it sends (a peer lying about content); UINT64_MAX turns it off. */
void mk__blobs_tamper(mk_blobs *b, uint64_t offset);

/* Makes this node's server stop sending (and close the link) once it has
 * sent `bytes` of any blob from its start: a peer dying mid-transfer.
 * UINT64_MAX turns it off. */
void mk__blobs_cut_after(mk_blobs *b, uint64_t bytes);

#endif
