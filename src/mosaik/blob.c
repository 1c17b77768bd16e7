/* Content-addressed blobs (include/mosaik/blob.h): the store, the server
 * side of MK_ALPN_BLOBS and fetches.
 *
 * A fetch walks its list of peers. With each it opens one link, asks for
 * the hash from the offset where its verified bytes end, and checks what
 * comes back segment by segment (blob_tree.c): the chaining values
 * against the hash first, then each segment against its chaining value
 * the moment its last byte arrives. Bytes go straight to a temporary file
 * in the store as they pass through the hasher (nothing is held in
 * memory); a segment that does not match is cut off the file again, and
 * only when every segment matched is the file renamed to the hash's
 * name. A peer that sends bytes that do not match is blamed and dropped;
 * a peer that fails otherwise (hangs up, stalls, does not have it) is
 * just dropped. Either way the next peer continues from the same offset.
 *
 * Files are read and written with plain blocking calls on the loop: they
 * are local disk in page cache, and every call is bounded (one frame).
 */
#include "blob_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "mosaik/blake3.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/fsdir.h"
#include "mosaik/link.h"
#include "mosaik/transport.h"

/* Bytes of blob per DATA frame. */
#define FRAME_DATA (128u << 10)
/* A server keeps up to this much queued on its link, topping it up after
 * every loop iteration (the fetcher's TCP window pushes back beyond it). */
#define SERVER_HIGH_WATER (4u << 20)
#define DEFAULT_STALL_MS 10000
#define CATALOG_RETRY_MS 200
#define MAX_FROM 64

typedef struct served {
    mk_id hash;
    char *path;
    uint64_t size;
    uint8_t *cvs; /* NULL for a single segment */
} served;

typedef struct srv srv;

struct mk_blobs {
    mk_node *node;
    char *dir;
    served *served;
    size_t n_served;
    srv *srvs;         /* server connections alive (or closing) */
    uint64_t tamper_at; /* fault hooks (blob_internal.h) */
    uint64_t cut_at;
    /* Closed by mk_blobs_close: its callback is the one step that is
     * always asynchronous, even with no connection to wait for. */
    uv_idle_t closer;
    bool closing, closer_closed;
    bool node_closing; /* the node began closing: never touch it again */
    mk_close_cb close_cb;
    void *close_data;
};

/* One connection a peer opened to fetch from us. */
struct srv {
    srv *next, **prev;
    mk_blobs *b; /* outlived by nothing: the service waits for each srv */
    mk_link *link;
    int fd;
    uint64_t pos, end;
    bool got_get;
    uint8_t *buf; /* 1 + FRAME_DATA */
    /* Tops the link's queue up after each loop iteration while there is
     * more to send: the link only reports a queue drained to empty, and
     * refilling from empty would leave the socket idle while we read and
     * encrypt. */
    uv_check_t pump;
    bool pumping;
};

/* ---- paths and files ------------------------------------------------------- */

static void store_path(const mk_blobs *b, const mk_id *hash, const char *ext,
                       char *out, size_t len)
{
    char hex[MK_ID_HEX_LEN + 1];
    snprintf(out, len, "%s/%s%s", b->dir, mk_id_hex(hash, hex), ext);
}


static int write_all(int fd, const void *p, size_t n, uint64_t at)
{
    const uint8_t *c = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, c, n, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : MK_EIO;
        c += w;
        n -= (size_t)w;
        at += (uint64_t)w;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n, uint64_t at)
{
    uint8_t *c = p;
    while (n > 0) {
        ssize_t r = pread(fd, c, n, (off_t)at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : MK_EIO;
        c += r;
        n -= (size_t)r;
        at += (uint64_t)r;
    }
    return 0;
}

/* A file written whole under a temporary name, then renamed: readers see
 * all of it or none. */
static int write_file_atomic(const char *path, const void *p, size_t n)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, p, n, 0);
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

int mk_blob_hash_file(const char *path, mk_id *hash, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint8_t *cvs;
    uint64_t sz;
    int rc = mk__blob_hash_fd(fd, hash, &sz, &cvs);
    close(fd);
    free(cvs);
    if (rc == 0 && size)
        *size = sz;
    return rc;
}

/* ---- the service -------------------------------------------------------------- */

static void on_accept(mk_link *link, void *data);

/* The key of the node extension through which the node tells the
 * service it is closing: after that the node may be freed before
 * mk_blobs_close, which must then leave it alone. */
static const char node_key;

static void on_node_closing(void *value)
{
    mk_blobs *b = value;
    b->node_closing = true;
}

int mk_blobs_new(mk_node *node, const char *dir, mk_blobs **out, char *err)
{
    *out = NULL;
    int rc = mk__make_dirs(dir);
    if (rc < 0)
        return mk_errf(err, rc, "blob store %s: %s", dir, mk_strerror(rc));
    mk_blobs *b = calloc(1, sizeof *b);
    if (!b || !(b->dir = strdup(dir))) {
        free(b);
        return MK_ENOMEM;
    }
    b->node = node;
    b->tamper_at = b->cut_at = UINT64_MAX;
    rc = mk_node_set_extension(node, &node_key, b, on_node_closing);
    if (rc == 0) {
        rc = mk_transport_serve(mk_node_transport(node), MK_ALPN_BLOBS,
                                on_accept, b);
        if (rc < 0)
            mk_node_remove_extension(node, &node_key);
    }
    if (rc < 0) {
        mk_errf(err, rc, "cannot serve %s: %s", MK_ALPN_BLOBS,
                mk_strerror(rc));
        free(b->dir);
        free(b);
        return rc;
    }
    uv_idle_init(mk_node_loop(node), &b->closer);
    b->closer.data = b;
    *out = b;
    return 0;
}

/* Frees once nothing refers to `b`: the closer handle has closed and
 * every server connection has freed itself (srv_free unlinks it). */
static void maybe_freed(mk_blobs *b)
{
    if (!b->closing || !b->closer_closed || b->srvs)
        return;
    mk_close_cb cb = b->close_cb;
    void *data = b->close_data;
    for (size_t i = 0; i < b->n_served; i++) {
        free(b->served[i].path);
        free(b->served[i].cvs);
    }
    free(b->served);
    free(b->dir);
    free(b);
    if (cb)
        cb(data);
}

static void on_closer_closed(uv_handle_t *h)
{
    mk_blobs *b = h->data;
    b->closer_closed = true;
    maybe_freed(b);
}

void mk_blobs_close(mk_blobs *b, mk_close_cb cb, void *data)
{
    if (b->closing)
        return;
    b->closing = true;
    b->close_cb = cb;
    b->close_data = data;
    /* From here no new link reaches `b`. Once the node is closing its
     * transport ends the connections itself, and it may already be gone. */
    if (!b->node_closing) {
        mk_transport_unserve(mk_node_transport(b->node), MK_ALPN_BLOBS);
        mk_node_remove_extension(b->node, &node_key);
    }
    /* `next` first: a link that cannot stage its close ends at once. */
    for (srv *s = b->srvs, *next; s; s = next) {
        next = s->next;
        if (s->link)
            mk_link_close(s->link, MK_CLOSE_GRACEFUL_SHUTDOWN,
                          "blobs closed");
    }
    uv_close((uv_handle_t *)&b->closer, on_closer_closed);
}

const char *mk_blobs_dir(const mk_blobs *b)
{
    return b->dir;
}

void mk__blobs_tamper(mk_blobs *b, uint64_t offset)
{
    b->tamper_at = offset;
}

void mk__blobs_cut_after(mk_blobs *b, uint64_t bytes)
{
    b->cut_at = bytes;
}

bool mk_blobs_has(const mk_blobs *b, const mk_id *hash, char *path,
                  size_t len)
{
    char p[4200];
    store_path(b, hash, "", p, sizeof p);
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    if (path)
        snprintf(path, len, "%s", p);
    return true;
}

static served *find_served(const mk_blobs *b, const mk_id *hash)
{
    for (size_t i = 0; i < b->n_served; i++)
        if (mk_id_eq(&b->served[i].hash, hash))
            return &b->served[i];
    return NULL;
}

int mk_blobs_serve_file(mk_blobs *b, const char *path, mk_id *hash,
                        uint64_t *size, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return mk_errf(err, rc, "%s: %s", path, strerror(errno));
    }
    served s = {0};
    int rc = mk__blob_hash_fd(fd, &s.hash, &s.size, &s.cvs);
    close(fd);
    if (rc < 0)
        return mk_errf(err, rc, "%s: %s", path, mk_strerror(rc));
    served *old = find_served(b, &s.hash);
    if (old) {
        /* The same bytes under another path: serve the newest. */
        char *p = strdup(path);
        if (!p) {
            free(s.cvs);
            return MK_ENOMEM;
        }
        free(old->path);
        old->path = p;
        free(s.cvs);
    } else {
        served *grown = realloc(b->served, (b->n_served + 1) * sizeof *grown);
        s.path = strdup(path);
        if (!grown || !s.path) {
            if (grown)
                b->served = grown;
            free(s.path);
            free(s.cvs);
            return MK_ENOMEM;
        }
        b->served = grown;
        b->served[b->n_served++] = s;
    }
    *hash = s.hash;
    if (size)
        *size = s.size;
    return 0;
}

void mk_blobs_unserve(mk_blobs *b, const mk_id *hash)
{
    served *s = find_served(b, hash);
    if (!s)
        return;
    free(s->path);
    free(s->cvs);
    *s = b->served[--b->n_served];
}

int mk_blobs_import(mk_blobs *b, const char *path, mk_id *hash,
                    uint64_t *size, char *err)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        int rc = -errno;
        return mk_errf(err, rc, "%s: %s", path, strerror(errno));
    }
    uint8_t *cvs;
    uint64_t sz;
    int rc = mk__blob_hash_fd(in, hash, &sz, &cvs);
    if (rc < 0) {
        close(in);
        return mk_errf(err, rc, "%s: %s", path, mk_strerror(rc));
    }
    char dst[4200], tmp[4300];
    store_path(b, hash, "", dst, sizeof dst);
    if (!mk_blobs_has(b, hash, NULL, 0)) {
        /* Copied as read, then the copy renamed into place. The source is
         * hashed again on the way: it could change between the passes. */
        snprintf(tmp, sizeof tmp, "%s.import.%ld", dst, (long)getpid());
        int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        uint8_t *buf = malloc(FRAME_DATA);
        mk_blake3_hasher h;
        mk_blake3_init(&h);
        rc = out < 0 ? -errno : !buf ? MK_ENOMEM : 0;
        for (uint64_t at = 0; rc == 0 && at < sz;) {
            size_t n = sz - at < FRAME_DATA ? (size_t)(sz - at) : FRAME_DATA;
            if ((rc = read_all(in, buf, n, at)) == 0 &&
                (rc = write_all(out, buf, n, at)) == 0)
                mk_blake3_update(&h, buf, n);
            at += n;
        }
        mk_id again;
        mk_blake3_final(&h, again.b, MK_ID_LEN);
        if (rc == 0 && !mk_id_eq(&again, hash))
            rc = MK_EHASH_MISMATCH;
        free(buf);
        if (out >= 0)
            close(out);
        if (rc == 0 && rename(tmp, dst) != 0)
            rc = -errno;
        if (rc < 0) {
            unlink(tmp);
            mk_errf(err, rc, "%s: importing into %s: %s", path, b->dir,
                    mk_strerror(rc));
        }
    }
    close(in);
    if (rc == 0 && cvs) {
        char tree[4300];
        store_path(b, hash, ".tree", tree, sizeof tree);
        write_file_atomic(tree, cvs, (size_t)mk__blob_segments(sz) * 32);
    }
    free(cvs);
    if (rc == 0 && size)
        *size = sz;
    return rc;
}

/* ---- serving ---------------------------------------------------------------------- */

static void maybe_freed(mk_blobs *b);

static void srv_free(uv_handle_t *h)
{
    srv *s = h->data;
    mk_blobs *b = s->b;
    *s->prev = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s->buf);
    free(s);
    maybe_freed(b);
}

static void srv_closed(mk_link *l, uint32_t code, int status, void *data)
{
    srv *s = data;
    if (s->fd >= 0)
        close(s->fd);
    s->link = NULL;
    uv_close((uv_handle_t *)&s->pump, srv_free);
}

static void srv_pump(srv *s)
{
    mk_blobs *b = s->b;
    if (!s->link)
        return;
    if (s->pos >= s->end && s->pumping) {
        uv_check_stop(&s->pump);
        s->pumping = false;
    }
    while (s->pos < s->end && mk_link_queued(s->link) < SERVER_HIGH_WATER) {
        if (s->pos >= b->cut_at) {
            mk_link_close(s->link, MK_CLOSE_CANCELLED, "cut (fault hook)");
            return;
        }
        uint64_t left = s->end - s->pos;
        size_t n = left < FRAME_DATA ? (size_t)left : FRAME_DATA;
        if (b->cut_at > s->pos && b->cut_at - s->pos < n)
            n = (size_t)(b->cut_at - s->pos);
        s->buf[0] = MK__BLOB_DATA;
        if (read_all(s->fd, s->buf + 1, n, s->pos) != 0) {
            /* Shrunk or unreadable: the fetcher will try elsewhere. */
            mk_link_close(s->link, MK_CLOSE_CANCELLED, "blob unreadable");
            return;
        }
        if (b->tamper_at >= s->pos && b->tamper_at - s->pos < n)
            s->buf[1 + (b->tamper_at - s->pos)] ^= 1;
        if (mk_link_send(s->link, s->buf, n + 1) != 0)
            return;
        s->pos += n;
    }
}

static void srv_drained(mk_link *l, void *data)
{
    srv_pump(data);
}

static void srv_check(uv_check_t *c)
{
    srv_pump(c->data);
}

/* The chaining values of a stored blob: its .tree file, or computed (and
 * kept) when missing. A stored file that no longer matches its name is
 * not served: better "not found" than bytes every fetcher will reject. */
static int stored_tree(mk_blobs *b, const mk_id *hash, int fd, uint64_t size,
                       uint8_t **cvs)
{
    uint64_t n = mk__blob_segments(size);
    *cvs = NULL;
    if (n < 2)
        return 0;
    char tree[4300];
    store_path(b, hash, ".tree", tree, sizeof tree);
    uint8_t *v = malloc((size_t)n * 32);
    if (!v)
        return MK_ENOMEM;
    int tfd = open(tree, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (tfd >= 0 && fstat(tfd, &st) == 0 && (uint64_t)st.st_size == n * 32 &&
        read_all(tfd, v, (size_t)n * 32, 0) == 0) {
        close(tfd);
        mk_id root;
        mk__blob_root(v, n, &root);
        if (mk_id_eq(&root, hash)) {
            *cvs = v;
            return 0;
        }
    } else if (tfd >= 0) {
        close(tfd);
    }
    free(v);
    mk_id got;
    uint64_t sz;
    int rc = mk__blob_hash_fd(fd, &got, &sz, &v);
    if (rc < 0)
        return rc;
    if (!mk_id_eq(&got, hash) || sz != size) {
        free(v);
        return MK_EHASH_MISMATCH;
    }
    write_file_atomic(tree, v, (size_t)n * 32);
    *cvs = v;
    return 0;
}

static void srv_answer(srv *s, const mk__blob_get *g)
{
    mk_blobs *b = s->b;
    mk__blob_header h = {.status = MK__BLOB_NOT_FOUND,
                         .shift = MK_BLOB_SEGMENT_SHIFT};
    uint8_t *owned = NULL;
    const served *sv = find_served(b, &g->hash);
    char path[4200];
    if (sv)
        snprintf(path, sizeof path, "%s", sv->path);
    else
        store_path(b, &g->hash, "", path, sizeof path);
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s->fd >= 0 && fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode)) {
        h.status = MK__BLOB_OK;
        h.size = (uint64_t)st.st_size;
        if (sv && sv->size != h.size)
            h.status = MK__BLOB_NOT_FOUND; /* changed since it was hashed */
    }
    if (h.status == MK__BLOB_OK && g->offset > h.size)
        h.status = MK__BLOB_BAD_REQUEST;
    if (h.status == MK__BLOB_OK && (g->flags & MK__BLOB_WANT_TREE) &&
        mk__blob_segments(h.size) > 1) {
        if (sv) {
            h.cvs = sv->cvs;
        } else if (stored_tree(b, &g->hash, s->fd, h.size, &owned) == 0) {
            h.cvs = owned;
        } else {
            h.status = MK__BLOB_NOT_FOUND;
        }
        if (h.cvs)
            h.n_cvs = mk__blob_segments(h.size);
    }
    if (h.status != MK__BLOB_OK)
        h.size = 0;
    mk_buf out;
    mk_buf_init(&out);
    mk__blob_header_encode(&out, &h);
    free(owned);
    if (out.err || mk_link_send(s->link, out.data, out.len) != 0) {
        mk_buf_free(&out);
        mk_link_close(s->link, MK_CLOSE_CANCELLED, "cannot answer");
        return;
    }
    mk_buf_free(&out);
    if (h.status != MK__BLOB_OK)
        return; /* the fetcher hangs up */
    s->pos = g->offset;
    s->end = h.size;
    s->buf = malloc(1 + FRAME_DATA);
    if (!s->buf) {
        mk_link_close(s->link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    mk_link_on_drain(s->link, srv_drained);
    uv_check_start(&s->pump, srv_check);
    s->pumping = true;
    srv_pump(s);
}

static void srv_frame(mk_link *l, const uint8_t *frame, size_t len,
                      void *data)
{
    srv *s = data;
    mk__blob_get g;
    if (s->got_get || mk__blob_get_decode(frame, len, &g) != 0) {
        mk_link_close(l, MK_CLOSE_PROTOCOL_VIOLATION, "expected one GET");
        return;
    }
    s->got_get = true;
    srv_answer(s, &g);
}

static void on_accept(mk_link *link, void *data)
{
    mk_blobs *b = data;
    srv *s = calloc(1, sizeof *s);
    if (!s) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    s->b = b;
    s->link = link;
    s->fd = -1;
    uv_check_init(mk_node_loop(b->node), &s->pump);
    s->pump.data = s;
    s->next = b->srvs;
    s->prev = &b->srvs;
    if (b->srvs)
        b->srvs->prev = &s->next;
    b->srvs = s;
    mk_link_set_callbacks(link, srv_frame, srv_closed, s);
}

/* ---- fetching ------------------------------------------------------------------------ */

struct mk_blob_fetch {
    mk_blobs *b;
    mk_blob_fetch_config cfg;
    mk_peer_id from[MAX_FROM];
    size_t cur;             /* index of the peer being tried */
    mk_blob_fetch_cb cb;
    void *data;
    uv_timer_t timer;       /* stalls, catalog retries, deferred calls */
    mk_link *link;          /* the current peer's link, or NULL */
    bool dialing;           /* a connect callback is still to come */
    bool done, timer_closed;
    int64_t peer_deadline;  /* mono ms: give up waiting for this peer */
    bool header;            /* the current peer answered */
    /* What is known: the size (trusted once chaining values or verified
     * bytes vouch for it) and the segments' chaining values. */
    bool size_known;
    uint64_t size, nseg;
    uint8_t *cvs;
    uint64_t verified;      /* bytes written and verified */
    size_t seg_have;        /* bytes of the next segment written, not yet
                               verified */
    mk__blob_seg_hasher seg; /* its chaining value so far (≥ 2 segments) */
    mk_blake3_hasher whole;  /* or the blob's hash (one segment) */
    int fd;
    char tmp[4300];
    uint64_t received;
    bool peer_used;         /* the current peer sent verified bytes */
    size_t peers_used;
    mk_blob_fetch_result res;
    int last_err;
    char reason[1024];
};

static void fetch_next(mk_blob_fetch *f);

static void note(mk_blob_fetch *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a sentence to the reason (kept when the fetch fails). */
static void note(mk_blob_fetch *f, const char *fmt, ...)
{
    size_t at = strlen(f->reason);
    if (at + 3 >= sizeof f->reason)
        return;
    if (at) {
        strcpy(f->reason + at, "; ");
        at += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->reason + at, sizeof f->reason - at, fmt, ap);
    va_end(ap);
}

static const char *cur_hex(const mk_blob_fetch *f, char hex[MK_ID_HEX_LEN + 1])
{
    return mk_id_hex(&f->from[f->cur], hex);
}

static void ignore_close(mk_link *l, uint32_t code, int status, void *data)
{
}

static void drop_link(mk_blob_fetch *f, uint32_t code, const char *why)
{
    if (!f->link)
        return;
    mk_link *l = f->link;
    f->link = NULL;
    mk_link_set_callbacks(l, NULL, ignore_close, NULL);
    mk_link_close(l, code, why);
}

static void maybe_free(mk_blob_fetch *f)
{
    if (!f->done || f->dialing || !f->timer_closed)
        return;
    free(f->cvs);
    free(f);
}

static void timer_closed(uv_handle_t *h)
{
    mk_blob_fetch *f = h->data;
    f->timer_closed = true;
    maybe_free(f);
}

static void finish(mk_blob_fetch *f, int status)
{
    if (f->done)
        return;
    f->done = true;
    drop_link(f, MK_CLOSE_SUCCESS, NULL);
    uv_timer_stop(&f->timer);
    char path[4200] = "";
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
        if (status == 0) {
            store_path(f->b, &f->cfg.hash, "", path, sizeof path);
            if (rename(f->tmp, path) != 0) {
                status = MK_EIO;
                note(f, "cannot store it: %s", strerror(errno));
                path[0] = '\0';
            }
        }
        if (status != 0)
            unlink(f->tmp);
    } else if (status == 0) {
        store_path(f->b, &f->cfg.hash, "", path, sizeof path);
    }
    if (status == 0 && f->cvs) {
        char tree[4300];
        store_path(f->b, &f->cfg.hash, ".tree", tree, sizeof tree);
        write_file_atomic(tree, f->cvs, (size_t)f->nseg * 32);
    }
    f->res.path = status == 0 ? path : NULL;
    f->res.size = f->size_known ? f->size : 0;
    f->res.received = f->received;
    f->res.peers_used = f->peers_used;
    f->res.reason = status == 0 ? "" : f->reason;
    f->cb(f, status, &f->res, f->data);
    uv_close((uv_handle_t *)&f->timer, timer_closed);
}

/* Unverified bytes of a peer we leave are forgotten: the next peer
 * sends the segment again from its start. */
static void drop_unverified(mk_blob_fetch *f)
{
    if (f->seg_have && f->fd >= 0 && ftruncate(f->fd, (off_t)f->verified))
        note(f, "cannot truncate %s: %s", f->tmp, strerror(errno));
    f->seg_have = 0;
}

static void blame(mk_blob_fetch *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The current peer sent something that contradicts the hash. */
static void blame(mk_blob_fetch *f, const char *fmt, ...)
{
    char hex[MK_ID_HEX_LEN + 1], what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    note(f, "peer %s sent %s", cur_hex(f, hex), what);
    if (f->res.n_bad < MK_BLOB_MAX_BLAME)
        f->res.bad[f->res.n_bad++] = f->from[f->cur];
    f->last_err = MK_EHASH_MISMATCH;
    drop_link(f, MK_CLOSE_PROTOCOL_VIOLATION, "content does not match hash");
    drop_unverified(f);
    f->cur++;
    fetch_next(f);
}

/* The current peer failed without lying: try the next. */
static void give_up_peer(mk_blob_fetch *f, int err, const char *why)
{
    char hex[MK_ID_HEX_LEN + 1];
    note(f, "peer %s: %s", cur_hex(f, hex), why);
    if (f->last_err != MK_EHASH_MISMATCH)
        f->last_err = err;
    drop_link(f, MK_CLOSE_CANCELLED, why);
    drop_unverified(f);
    f->cur++;
    fetch_next(f);
}

/* The segment being received is complete: its bytes are on disk (in the
 * temporary file, under no hash's name); keep them only if they match. */
static int segment_done(mk_blob_fetch *f)
{
    uint64_t i = f->verified / MK_BLOB_SEGMENT;
    bool ok;
    if (f->nseg == 1) {
        mk_id h;
        mk_blake3_final(&f->whole, h.b, MK_ID_LEN);
        ok = mk_id_eq(&h, &f->cfg.hash);
    } else {
        uint8_t cv[32];
        mk__blob_seg_final(&f->seg, cv);
        ok = memcmp(cv, f->cvs + 32 * i, 32) == 0;
    }
    if (!ok) {
        blame(f, "segment %" PRIu64 " (bytes %" PRIu64 "..%" PRIu64
                 ") that does not match the hash",
              i, f->verified, f->verified + f->seg_have);
        return -1;
    }
    /* A single segment is the whole blob: its bytes vouch for the size. */
    f->size_known = true;
    f->verified += f->seg_have;
    f->received += f->seg_have;
    f->seg_have = 0;
    if (!f->peer_used) {
        f->peer_used = true;
        f->peers_used++;
    }
    if (f->verified == f->size) {
        finish(f, 0);
        return -1;
    }
    return 0;
}

/* Bytes of the current segment: written where they belong and hashed as
 * they pass, without being held. */
static int segment_bytes(mk_blob_fetch *f, const uint8_t *p, size_t n)
{
    if (f->seg_have == 0) {
        if (f->nseg == 1)
            mk_blake3_init(&f->whole);
        else
            mk__blob_seg_init(&f->seg, f->verified / MK_BLOB_SEGMENT);
    }
    int rc = write_all(f->fd, p, n, f->verified + f->seg_have);
    if (rc < 0) {
        note(f, "cannot write %s: %s", f->tmp, mk_strerror(rc));
        finish(f, MK_EIO);
        return -1;
    }
    if (f->nseg == 1)
        mk_blake3_update(&f->whole, p, n);
    else
        mk__blob_seg_update(&f->seg, p, n);
    f->seg_have += n;
    return 0;
}

static void on_header(mk_blob_fetch *f, const uint8_t *frame, size_t len)
{
    mk__blob_header h;
    if (mk__blob_header_decode(frame, len, &h) != 0) {
        give_up_peer(f, MK_EPROTO, "malformed answer");
        return;
    }
    if (h.status == MK__BLOB_NOT_FOUND) {
        give_up_peer(f, MK_ENOENT, "does not have it");
        return;
    }
    if (h.status != MK__BLOB_OK) {
        give_up_peer(f, MK_EPROTO, "refused the request");
        return;
    }
    if (f->size_known && h.size != f->size) {
        blame(f, "a size of %" PRIu64 " bytes (it is %" PRIu64 ")", h.size,
              f->size);
        return;
    }
    uint64_t max = f->cfg.max_size ? f->cfg.max_size : MK_BLOB_MAX_SIZE;
    if (h.size > max) {
        give_up_peer(f, MK_EMSGSIZE, "offers more bytes than allowed");
        return;
    }
    uint64_t nseg = mk__blob_segments(h.size);
    if (nseg > 1 && !f->cvs) {
        if (h.n_cvs != nseg) {
            give_up_peer(f, MK_EPROTO, "sent no chaining values");
            return;
        }
        mk_id root;
        mk__blob_root(h.cvs, nseg, &root);
        if (!mk_id_eq(&root, &f->cfg.hash)) {
            blame(f, "chaining values that do not match the hash");
            return;
        }
        if (!(f->cvs = malloc((size_t)nseg * 32))) {
            finish(f, MK_ENOMEM);
            return;
        }
        memcpy(f->cvs, h.cvs, (size_t)nseg * 32);
        f->size_known = true; /* the tree vouches for it */
    }
    f->size = h.size;
    f->nseg = nseg;
    f->header = true;
    if (h.size == 0) {
        /* The empty blob: its one (empty) segment is checked as any. */
        mk_blake3_init(&f->whole);
        segment_done(f);
    }
}

static void on_frame(mk_link *l, const uint8_t *frame, size_t len,
                     void *data)
{
    mk_blob_fetch *f = data;
    uv_timer_again(&f->timer);
    if (!f->header) {
        on_header(f, frame, len);
        return;
    }
    if (len < 1 || frame[0] != MK__BLOB_DATA) {
        give_up_peer(f, MK_EPROTO, "sent a malformed frame");
        return;
    }
    const uint8_t *p = frame + 1;
    size_t n = len - 1;
    while (n > 0) {
        uint64_t i = f->verified / MK_BLOB_SEGMENT;
        if (i >= f->nseg) {
            blame(f, "bytes past the end of the blob");
            return;
        }
        size_t want = mk__blob_segment_len(f->size, i);
        size_t take = want - f->seg_have < n ? want - f->seg_have : n;
        if (segment_bytes(f, p, take) != 0)
            return;
        p += take;
        n -= take;
        if (f->seg_have == want && segment_done(f) != 0)
            return; /* blamed, finished or moved on */
    }
}

static void on_link_closed(mk_link *l, uint32_t code, int status, void *data)
{
    mk_blob_fetch *f = data;
    f->link = NULL;
    give_up_peer(f, status ? status : MK_ECONNRESET,
                 "hung up before sending everything");
}

static void on_stall(uv_timer_t *t)
{
    mk_blob_fetch *f = t->data;
    if (f->link)
        give_up_peer(f, MK_ECONNECT_TIMEOUT, "stalled");
    else if (!f->dialing)
        fetch_next(f); /* waiting for the peer to reach the catalog */
}

static void on_connected(mk_link *link, int status, void *data)
{
    mk_blob_fetch *f = data;
    f->dialing = false;
    if (f->done) {
        if (link)
            mk_link_close(link, MK_CLOSE_CANCELLED, NULL);
        maybe_free(f);
        return;
    }
    if (!link) {
        give_up_peer(f, status, mk_strerror(status));
        return;
    }
    f->link = link;
    f->header = false;
    f->peer_used = false;
    mk_link_set_callbacks(link, on_frame, on_link_closed, f);
    mk__blob_get g = {.hash = f->cfg.hash,
                      .offset = f->verified,
                      .flags = f->cvs ? 0 : MK__BLOB_WANT_TREE};
    mk_buf b;
    mk_buf_init(&b);
    mk__blob_get_encode(&b, &g);
    int rc = b.err ? b.err : mk_link_send(link, b.data, b.len);
    mk_buf_free(&b);
    if (rc < 0) {
        give_up_peer(f, rc, "cannot send the request");
        return;
    }
    uint32_t stall = f->cfg.stall_timeout_ms;
    uv_timer_start(&f->timer, on_stall, stall, stall);
}

/* Dials the current peer, or the next one, or ends the fetch. */
static void fetch_next(mk_blob_fetch *f)
{
    if (f->done)
        return;
    uv_timer_stop(&f->timer);
    if (f->cur >= f->cfg.n_from) {
        if (f->res.n_bad > 0)
            f->last_err = MK_EHASH_MISMATCH;
        finish(f, f->last_err ? f->last_err : MK_ENOENT);
        return;
    }
    int64_t now = mk_mono_ms();
    if (f->peer_deadline == 0)
        f->peer_deadline = now + f->cfg.stall_timeout_ms;
    int rc = mk_node_dial(f->b->node, &f->from[f->cur], MK_ALPN_BLOBS,
                          on_connected, f);
    if (rc == 0) {
        f->dialing = true;
        f->peer_deadline = 0;
        return;
    }
    if (rc == MK_ENOENT && now < f->peer_deadline) {
        /* Not in the catalog yet (it may have just joined): wait. */
        uv_timer_start(&f->timer, on_stall, CATALOG_RETRY_MS, 0);
        return;
    }
    f->peer_deadline = 0;
    give_up_peer(f, rc == MK_ENOENT ? MK_ECONNECT_TIMEOUT : rc,
                 rc == MK_ENOENT ? "never appeared in the catalog"
                                 : mk_strerror(rc));
}

static void on_start(uv_timer_t *t)
{
    mk_blob_fetch *f = t->data;
    if (mk_blobs_has(f->b, &f->cfg.hash, NULL, 0)) {
        finish(f, 0);
        return;
    }
    store_path(f->b, &f->cfg.hash, "", f->tmp, sizeof f->tmp);
    size_t at = strlen(f->tmp);
    snprintf(f->tmp + at, sizeof f->tmp - at, ".part.%ld.%p", (long)getpid(),
             (void *)f);
    f->fd = open(f->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        note(f, "cannot create %s: %s", f->tmp, strerror(errno));
        finish(f, MK_EIO);
        return;
    }
    fetch_next(f);
}

int mk_blob_fetch_start(mk_blobs *b, const mk_blob_fetch_config *cfg,
                        mk_blob_fetch_cb cb, void *data, mk_blob_fetch **out)
{
    if (!cfg->n_from || cfg->n_from > MAX_FROM || !cb)
        return MK_EINVAL;
    mk_blob_fetch *f = calloc(1, sizeof *f);
    if (!f)
        return MK_ENOMEM;
    f->b = b;
    f->cfg = *cfg;
    memcpy(f->from, cfg->from, cfg->n_from * sizeof *f->from);
    f->cfg.from = f->from;
    if (!f->cfg.stall_timeout_ms)
        f->cfg.stall_timeout_ms = DEFAULT_STALL_MS;
    f->cb = cb;
    f->data = data;
    f->fd = -1;
    uv_timer_init(mk_node_loop(b->node), &f->timer);
    f->timer.data = f;
    /* Even an immediate answer comes from the loop, never from here. */
    uv_timer_start(&f->timer, on_start, 0, 0);
    if (out)
        *out = f;
    return 0;
}

void mk_blob_fetch_cancel(mk_blob_fetch *f)
{
    if (f->done)
        return;
    note(f, "canceled");
    finish(f, MK_ECANCELED);
}

void mk_blob_fetch_progress(const mk_blob_fetch *f, uint64_t *verified,
                            uint64_t *size)
{
    *verified = f->verified;
    *size = f->size_known ? f->size : 0;
}
