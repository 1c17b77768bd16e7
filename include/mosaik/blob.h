/* Blobs: files named by their BLAKE3 hash, served by any node and fetched
 * with verification (ALPN MK_ALPN_BLOBS).
 *
 * A node's blob service keeps a store directory (coalitiond uses
 * DATA/blobs) holding one file per blob, named by the 64-hex hash, and may
 * also serve files in place. Any peer that can reach the node may fetch
 * any blob it serves: a hash is the whole capability, so never serve
 * what must stay secret.
 *
 * Verification is incremental. A blob is cut into segments of
 * MK_BLOB_SEGMENT bytes; because BLAKE3 is a Merkle tree whose aligned
 * subtrees are exactly these segments, the hash of the whole file is a
 * function of the segments' chaining values. A fetcher first receives
 * that list and checks it against the hash it asked for, then checks
 * every segment as soon as its last byte arrives. A wrong byte anywhere
 * is caught at the end of its segment and blamed on the peer that sent
 * it; the fetch then resumes, at the byte offset where verified data
 * ends, from the next peer offered, and fails (naming every peer that
 * sent bad bytes) only when no peer is left. Bytes are written to a
 * temporary file as they are hashed; the blob reaches the store by rename
 * once every segment verified, so nobody ever sees unverified bytes under
 * a hash's name.
 *
 * Memory is bounded on both sides: a fetch holds the chaining values (32
 * bytes per segment) and one segment's hashing state (9 KiB), a server
 * one read buffer per connection plus what its link queues (kept under a
 * few MiB).
 *
 * Everything runs on the node's loop; nothing here is thread-safe.
 */
#ifndef MK_BLOB_H
#define MK_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/id.h"
#include "mosaik/key.h"
#include "mosaik/node.h"

#define MK_ALPN_BLOBS "/mosaik/blobs/1"

/* The verification unit: 2^8 BLAKE3 chunks. */
#define MK_BLOB_SEGMENT_SHIFT 18
#define MK_BLOB_SEGMENT ((uint64_t)1 << MK_BLOB_SEGMENT_SHIFT)

/* The largest blob served or fetched (its chaining values must fit one
 * link frame). */
#define MK_BLOB_MAX_SIZE ((uint64_t)16 << 30)

typedef struct mk_blobs mk_blobs;

/* Serves MK_ALPN_BLOBS on `node` (borrowed) with `dir` (copied; created
 * 0700 if missing) as the store. Returns 0 and `*out`, MK_EEXIST when the
 * node already serves blobs, MK_ECLOSED when it is closing, or a negative
 * code with `err` (MK_ERRMSG_SIZE, may be NULL) for a store it cannot
 * create. */
int mk_blobs_new(mk_node *node, const char *dir, mk_blobs **out, char *err);

/* Call it once every fetch made on it has called back. Stops serving
 * MK_ALPN_BLOBS (a fetcher connecting now is refused with
 * MK_CLOSE_INVALID_ALPN), closes the connections being served, frees,
 * then calls `cb` (may be NULL) from the loop. The node may keep running.
 * As for mk_streams_close, it may also come after mk_node_close, as long
 * as the loop still runs. */
void mk_blobs_close(mk_blobs *b, mk_close_cb cb, void *data);

/* The store directory. */
const char *mk_blobs_dir(const mk_blobs *b);

/* Hashes the file at `path` and copies it into the store (nothing is
 * copied when the store already holds that hash). Returns 0 with the hash
 * in `*hash` (and the size in `*size`, may be NULL), or a negative code
 * with `err` (MK_ERRMSG_SIZE, may be NULL): MK_ENOENT and friends for the
 * file, MK_EMSGSIZE above MK_BLOB_MAX_SIZE. */
int mk_blobs_import(mk_blobs *b, const char *path, mk_id *hash,
                    uint64_t *size, char *err);

/* Serves the file at `path` (copied) in place, without copying it:
 * hashes it now and remembers its chaining values. The file must not
 * change while served; if it does, fetchers detect it and blame this
 * node. Same returns as mk_blobs_import. */
int mk_blobs_serve_file(mk_blobs *b, const char *path, mk_id *hash,
                        uint64_t *size, char *err);

/* Stops serving a file given to mk_blobs_serve_file (connections already
 * reading it finish). No-op for any other hash. */
void mk_blobs_unserve(mk_blobs *b, const mk_id *hash);

/* Whether the store holds `hash`; when it does and `path` is not NULL,
 * writes its path there (truncated to `len`). The store holds only what
 * was verified on the way in, but a disk can still change it: whoever
 * executes a blob re-hashes what it runs. */
bool mk_blobs_has(const mk_blobs *b, const mk_id *hash, char *path,
                  size_t len);

/* The BLAKE3 hash of a file (what b3sum prints), and its size (may be
 * NULL). 0 or a negated errno. */
int mk_blob_hash_file(const char *path, mk_id *hash, uint64_t *size);

/* ---- fetching -------------------------------------------------------------- */

typedef struct mk_blob_fetch mk_blob_fetch;

#define MK_BLOB_MAX_BLAME 16

typedef struct mk_blob_fetch_result {
    const char *path;        /* the stored blob (status 0), else NULL */
    uint64_t size;           /* its size, when known */
    uint64_t received;       /* verified bytes received by this fetch (0
                                when the store already held it) */
    size_t peers_used;       /* peers that sent verified bytes */
    /* Peers that sent bytes (or chaining values) that do not match the
     * hash, in the order they were caught. */
    mk_peer_id bad[MK_BLOB_MAX_BLAME];
    size_t n_bad;
    /* What went wrong, naming the peers involved ("" on success). */
    const char *reason;
} mk_blob_fetch_result;

/* Called once: status 0 (the blob is in the store), or a negative code:
 * MK_EHASH_MISMATCH (every peer was tried and at least one sent bytes
 * that do not match; r->bad names them), MK_ENOENT (no peer offered has
 * it), MK_ECONNECT_TIMEOUT (none answered in time), MK_EMSGSIZE (larger
 * than allowed), MK_EIO (the store cannot be written), MK_ECANCELED.
 * `r` is valid during the call; the request is freed after it returns. */
typedef void (*mk_blob_fetch_cb)(mk_blob_fetch *f, int status,
                                 const mk_blob_fetch_result *r, void *data);

typedef struct mk_blob_fetch_config {
    mk_id hash;
    /* Peers believed to hold the blob, tried in this order (copied, at
     * most 64). A peer not yet in the catalog is waited for up to the
     * stall timeout. */
    const mk_peer_id *from;
    size_t n_from;
    /* A peer that sends nothing for this long is dropped for the next
     * one. 0: 10 s. */
    uint32_t stall_timeout_ms;
    /* Refuse blobs larger than this. 0: MK_BLOB_MAX_SIZE. */
    uint64_t max_size;
} mk_blob_fetch_config;

/* Fetches cfg->hash into the store (calling back at once, from the loop,
 * when it is already there). Returns 0 and later calls `cb` once (`*out`,
 * may be NULL, is the request until then), or a negative code and never
 * calls it: MK_EINVAL (no peer, too many), MK_ENOMEM. */
int mk_blob_fetch_start(mk_blobs *b, const mk_blob_fetch_config *cfg,
                        mk_blob_fetch_cb cb, void *data,
                        mk_blob_fetch **out);

/* Abandons a fetch: its callback runs with MK_ECANCELED before this
 * returns (unless it already ran). */
void mk_blob_fetch_cancel(mk_blob_fetch *f);

/* Progress: verified bytes so far and the size (0 until known). */
void mk_blob_fetch_progress(const mk_blob_fetch *f, uint64_t *verified,
                            uint64_t *size);

#endif /* MK_BLOB_H */
