/* Links (include/mosaik/link.h): one TCP connection, TLS 1.3 and frames.
 *
 * libuv owns the socket and OpenSSL only transforms bytes, through a BIO
 * of our own (link_bio.c): SSL_read takes received bytes straight from
 * the buffer libuv read them into and decrypts them into the frame buffer
 * (src/mosaik/frame.h), where frames are parsed in place; frames to send
 * are staged as plaintext and SSL_write appends their records to a buffer
 * we own. What the kernel takes at once goes with uv_try_write, the rest
 * with one uv_write; while that is in flight new ciphertext collects in
 * one buffer, so a burst of frames costs few syscalls.
 *
 * Sent frames are not encrypted one by one: their bytes are staged until
 * they fill a TLS record or the loop iteration ends (the transport's idle
 * runs mk__link_run), so many small frames share one record's header, tag
 * and AEAD call instead of paying for them each, and a large frame's whole
 * records are encrypted straight from the caller's buffer. Every record
 * but the last of an iteration is full.
 *
 * Closing is a close frame, then a half-close once everything queued
 * before it is written, then waiting for the other side to hang up: closing
 * the socket with unread bytes in it would reset the connection and could
 * destroy the very close frame we sent. The wait is bounded by the
 * transport's handshake_timeout_ms without progress.
 *
 * An open link's one timer is a watchdog over three deadlines: the idle
 * limit (no byte received and none of ours taken by the socket), the
 * frame limit (a frame, or a TLS record,
 * begun and not finished: the slow-dribble attack) and the trim of big
 * send buffers. Reads only note the time; the timer is armed for the
 * nearest deadline and, when it fires early because bytes came since,
 * re-armed for what is left, so a busy link costs no timer work per read.
 *
 * A link that goes quiet sheds its buffers: once nothing has moved for
 * TRIM_MS and nothing is half received or unsent, the frame buffer, the
 * send buffers, OpenSSL's record buffers and the memory BIOs' storage are
 * all given back (shed). Most links of a node are like that most of the
 * time (discovery's neighbours speak once per announce period), and the
 * 100-odd KiB each held for its busiest moment was most of an idle
 * node's heap. They are allocated again by the next byte.
 *
 * Small buffers go back at once, not after TRIM_MS: a discovery node's
 * links are quiet on average but not for a second at a time, since a
 * gossip flood reaches every link of a node within one loop iteration and
 * floods come every second or two in a 32-node network (every node
 * re-announces each 45 s or so). Each flood then had every link hold its
 * ~66 KiB (staging record, frame buffer, OpenSSL's two record buffers)
 * for the next second: half the time all of them, ~0.8 MiB at 12 links.
 * Giving back buffers below SMALL_BUF costs a malloc and a free each,
 * mostly from the heap's own free memory, sometimes page faults when the
 * heap's top was trimmed; at most SHED_BUDGET times per TRIM_MS per link
 * (a flood is a send and a receive per link), so a busy request/response
 * link does not pay it per iteration. Big buffers keep the TRIM_MS rule
 * (see KEEP_MAX).
 */
#include "mosaik/link_int.h"

#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mosaik/error.h"

/* The plaintext of one full TLS record (RFC 8446 §5.1). */
#define RECORD (16u * 1024u)
/* SSL_write is fed this much at a time so the write BIO stays small. */
#define ENC_CHUNK (256u * 1024u)
/* Start writing without waiting for the end of the iteration once this
 * much ciphertext is ready and the socket is idle: the peer starts working
 * while a long burst is still being encrypted. Measured on loopback, 64 KiB
 * woke the receiver too often and 1 MiB left it idle; 256 KiB was best. */
#define EAGER_WRITE (256u * 1024u)
/* Send buffers larger than this are given back once the link has sent
 * nothing for TRIM_MS, and every buffer once it has been quiet that long. Not sooner: a streaming link that frees and regrows its
 * buffers per burst pays page faults and zeroing for every byte, which
 * doubled the sender's CPU per GB in the benchmark. */
#define KEEP_MAX (1024u * 1024u)
#define TRIM_MS 1000
/* A quiet link whose buffers are all at most this big sheds them as soon
 * as it goes quiet, up to SHED_BUDGET times per TRIM_MS: below glibc's
 * mmap threshold they come from and go back to the heap. */
#define SMALL_BUF (64u * 1024u)
#define SHED_BUDGET 10

const char *mk_close_text(uint32_t code)
{
    switch (code) {
#define MK_CLOSE_TEXT(name, value, text)                                      \
    case MK_CLOSE_##name:                                                     \
        return text;
        MK_CLOSE_MAP(MK_CLOSE_TEXT)
#undef MK_CLOSE_TEXT
    default:
        return "unknown close code";
    }
}

static void on_handle_closed(uv_handle_t *h);
static void on_timer(uv_timer_t *h);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);
static void on_shutdown(uv_shutdown_t *req, int status);
static void pump(mk_link *l);
static void rearm(mk_link *l);
static void quiet(mk_link *l);

/* ---- lifetime ----------------------------------------------------------- */

mk_link *mk__link_new(mk_transport *t)
{
    mk_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (uv_tcp_init(t->loop, &l->tcp) != 0) {
        free(l);
        return NULL;
    }
    uv_timer_init(t->loop, &l->timer); /* cannot fail */
    l->tcp.data = l;
    l->timer.data = l;
    l->handles = 2;
    l->t = t;
    l->state = MK__LINK_HANDSHAKE;
    mk__q_init(&l->work);
    mk__q_push(&t->links, &l->node);
    mk__frame_in_init(&l->in, t->max_frame);
    mk_buf_init(&l->stage);
    mk_buf_init(&l->pend);
    mk_buf_init(&l->fly);
    mk_buf_init(&l->held);
    return l;
}

/* Closes both handles; on_handle_closed frees the link after the second.
 * Everything that ends a link comes through here exactly once. */
static void teardown(mk_link *l)
{
    if (l->state == MK__LINK_DEAD)
        return;
    l->state = MK__LINK_DEAD;
    mk__q_remove(&l->work);
    uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&l->timer, on_handle_closed);
}

static void on_handle_closed(uv_handle_t *h)
{
    mk_link *l = h->data;
    if (--l->handles > 0)
        return;
    mk_transport *t = l->t;
    mk__q_remove(&l->node);
    if (l->counted)
        t->n_accepted--;
    if (l->handed) {
        if (l->on_close)
            l->on_close(l, l->close_code, l->status, l->cb_data);
    } else if (l->dialer && !l->silent) {
        l->connect_cb(NULL, l->status, l->connect_data);
    }
    /* Links end with close frames, never TLS's close_notify, and OpenSSL
     * takes an SSL freed without one for a broken session: it would spoil
     * the ticket this link left in the transport's cache. Only a failure
     * of TLS itself should. */
    if (l->ssl && l->status != MK_ETLS && SSL_is_init_finished(l->ssl))
        SSL_set_shutdown(l->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(l->ssl);
    mk__frame_in_free(&l->in);
    mk_buf_free(&l->stage);
    mk_buf_free(&l->pend);
    mk_buf_free(&l->fly);
    mk_buf_free(&l->held);
    free(l->marks);
    free(l);
    mk__transport_link_gone(t);
}

void mk__link_abort(mk_link *l, int status)
{
    if (l->state == MK__LINK_DEAD)
        return;
    if (l->status == 0)
        l->status = status;
    teardown(l);
}

/* The link ends now. An open link takes `code` and `status`; a closing one
 * keeps its own code and its first status. */
static void end_link(mk_link *l, uint32_t code, int status)
{
    switch (l->state) {
    case MK__LINK_HANDSHAKE:
        mk__link_abort(l, status);
        return;
    case MK__LINK_OPEN:
        l->close_code = code;
        l->status = status;
        break;
    case MK__LINK_CLOSING:
        if (l->status == 0)
            l->status = status;
        break;
    case MK__LINK_DEAD:
        return;
    }
    teardown(l);
}

/* Everything up to and including our close frame reached the socket. */
static bool flushed(const mk_link *l)
{
    return l->close_staged && !l->writing && l->fly.len == 0 &&
           l->pend_off == l->pend.len && l->stage.len == 0;
}

/* The connection broke or ended (`err`, UV_EOF for a plain end). After our
 * own close frame went out that is the expected ending, not a failure. */
static void io_end(mk_link *l, int err)
{
    if (err == UV_EOF)
        err = MK_ECONNRESET;
    if (l->state == MK__LINK_CLOSING && flushed(l))
        err = 0;
    end_link(l, MK_CLOSE_UNEXPECTED, err);
}

static void update_reading(mk_link *l)
{
    bool want = false;
    switch (l->state) {
    case MK__LINK_HANDSHAKE:
        want = l->ssl != NULL;
        break;
    case MK__LINK_OPEN:
        /* Without a frame callback or while paused, bytes stay in the
         * kernel: TCP's window pushes back on the sender. */
        want = l->on_frame != NULL && !l->paused;
        break;
    case MK__LINK_CLOSING:
        want = true; /* to see the other side hang up */
        break;
    case MK__LINK_DEAD:
        return;
    }
    if (want && !l->reading) {
        int rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
        if (rc != 0) {
            io_end(l, rc);
            return;
        }
        l->reading = true;
        if (l->state == MK__LINK_OPEN) {
            /* Quiet while we were not reading was ours, not the peer's. */
            l->last_io = uv_now(l->t->loop);
            rearm(l);
        }
    } else if (!want && l->reading) {
        uv_read_stop((uv_stream_t *)&l->tcp);
        l->reading = false;
    }
}

/* ---- sending ------------------------------------------------------------ */

/* mk_link_queued counts payload, but the socket takes ciphertext, and a
 * write may end in the middle of a record. Each batch of ciphertext gets a
 * mark: "once the socket has taken `ct` bytes, `payload` bytes of payload
 * are out". Marks past MARKS_MAX are merged into the last one, which only
 * makes the count lag a little while the queue is huge. */
#define MARKS_MAX 4096

static void mark_push(mk_link *l)
{
    if (l->nmarks > 0) {
        mk__mark *last = &l->marks[l->mark0 + l->nmarks - 1];
        if (last->payload == l->payload_enc)
            return; /* handshake or close bytes: nothing to account */
        if (l->nmarks >= MARKS_MAX) {
            last->ct = l->ct_made;
            last->payload = l->payload_enc;
            return;
        }
    }
    if (l->mark0 + l->nmarks == l->markcap) {
        if (l->mark0 > 0) {
            memmove(l->marks, l->marks + l->mark0,
                    l->nmarks * sizeof *l->marks);
            l->mark0 = 0;
        } else {
            size_t cap = l->markcap ? l->markcap * 2 : 16;
            mk__mark *m = realloc(l->marks, cap * sizeof *m);
            if (!m) {
                /* Merge instead: still correct, only coarser. */
                l->marks[l->nmarks - 1].ct = l->ct_made;
                l->marks[l->nmarks - 1].payload = l->payload_enc;
                return;
            }
            l->marks = m;
            l->markcap = cap;
        }
    }
    mk__mark *m = &l->marks[l->mark0 + l->nmarks++];
    m->ct = l->ct_made;
    m->payload = l->payload_enc;
}

/* The socket took `n` more bytes of ciphertext. */
static void taken(mk_link *l, size_t n)
{
    l->ct_done += n;
    while (l->nmarks > 0 && l->marks[l->mark0].ct <= l->ct_done) {
        l->payload_out = l->marks[l->mark0].payload;
        l->mark0++;
        l->nmarks--;
    }
    if (l->nmarks == 0)
        l->mark0 = 0;
    /* The peer is reading what we send: it is not idle, however long it
     * stays silent (a blob being fetched, a long answer). */
    if (n > 0)
        l->last_io = uv_now(l->t->loop);
    /* Progress: a closing link's deadline counts from the last of it. */
    if (n > 0 && l->state == MK__LINK_CLOSING)
        uv_timer_start(&l->timer, on_timer, l->t->handshake_timeout_ms, 0);
}

/* Accounts for the ciphertext the session appended to `pend` since the
 * last call (link_bio.c writes it there). */
static void note_made(mk_link *l)
{
    if (l->ct_made == l->ct_marked)
        return;
    l->ct_marked = l->ct_made;
    mark_push(l);
}

/* SSL_get_error judges a failed call by the thread's error queue, which
 * must be empty before the call. Emptying it unconditionally costs more
 * than it sounds (OpenSSL 3.0 resets all 16 slots, a free() each): two
 * per record were 3% of a receiver's time. Every failure path here empties
 * it after itself, so it is nearly always empty already; look first. */
static void err_reset(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static int ssl_write(mk_link *l, const uint8_t *p, size_t n)
{
    err_reset();
    /* Our BIO never asks to retry, so SSL_write takes all of the bytes
     * or fails for good. */
    if (SSL_write(l->ssl, p, (int)n) != (int)n) {
        ERR_clear_error();
        return l->bio_err ? l->bio_err : MK_ETLS;
    }
    return 0;
}

static int encrypt_stage(mk_link *l)
{
    if (l->stage.len > 0) {
        /* At most a record, plus a close frame behind it. */
        int rc = ssl_write(l, l->stage.data, l->stage.len);
        if (rc != 0)
            return rc;
        l->stage.len = 0;
        l->payload_enc += l->stage_payload;
        l->stage_payload = 0;
    }
    note_made(l); /* also handshake or post-handshake output */
    return 0;
}

/* Payload bytes encrypted without staging, in chunks so that the write
 * BIO stays small. */
static int encrypt_direct(mk_link *l, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = n > ENC_CHUNK ? ENC_CHUNK : n;
        int rc = ssl_write(l, p, k);
        if (rc != 0)
            return rc;
        l->payload_enc += k;
        note_made(l);
        p += k;
        n -= k;
    }
    return 0;
}

/* Appends bytes to the plaintext stream so that every record is full: the
 * stage is encrypted whenever it holds a record, and the whole records of
 * a long run of payload are encrypted from the caller's buffer. The stage
 * has RECORD bytes reserved, so only encryption can fail. */
static int put(mk_link *l, const uint8_t *p, size_t n, bool payload)
{
    while (n > 0) {
        size_t k;
        int rc;
        if (payload && l->stage.len == 0 && n >= RECORD) {
            k = n - n % RECORD;
            rc = encrypt_direct(l, p, k);
        } else {
            k = RECORD - l->stage.len;
            if (k > n)
                k = n;
            mk_put_raw(&l->stage, p, k);
            if (payload)
                l->stage_payload += k;
            rc = l->stage.len == RECORD ? encrypt_stage(l) : 0;
        }
        if (rc != 0)
            return rc;
        p += k;
        n -= k;
    }
    return 0;
}

/* Hands `pend` to the socket: what the kernel takes right now goes with
 * uv_try_write (so a long burst of sends keeps the peer busy while the
 * rest is encrypted), the remainder with one uv_write. Further ciphertext
 * waits in `pend` until that write completes. */
static int kick(mk_link *l)
{
    if (l->writing || l->state == MK__LINK_DEAD ||
        l->pend_off == l->pend.len)
        return 0;
    uv_buf_t ub;
    ub.base = (char *)l->pend.data + l->pend_off;
    ub.len = l->pend.len - l->pend_off;
    int r = uv_try_write((uv_stream_t *)&l->tcp, &ub, 1);
    if (r < 0 && r != UV_EAGAIN)
        return r;
    if (r > 0) {
        l->pend_off += (size_t)r;
        taken(l, (size_t)r);
        if (l->pend_off == l->pend.len) {
            l->pend_off = l->pend.len = 0;
            return 0;
        }
    }
    mk_buf b = l->fly; /* empty: no write is in flight */
    l->fly = l->pend;
    l->pend = b;
    ub.base = (char *)l->fly.data + l->pend_off;
    ub.len = l->fly.len - l->pend_off;
    l->pend_off = 0;
    int rc = uv_write(&l->write_req, (uv_stream_t *)&l->tcp, &ub, 1, on_write);
    if (rc != 0)
        return rc;
    l->writing = true;
    l->fly_len = ub.len;
    return 0;
}

static void maybe_shutdown(mk_link *l)
{
    if (l->state != MK__LINK_CLOSING || l->shut || !flushed(l))
        return;
    l->shut = true;
    /* Our side is done: the FIN tells a peer that is not reading frames
     * (or not speaking our protocol at all) that nothing more comes. */
    int rc = uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp,
                         on_shutdown);
    if (rc != 0)
        io_end(l, rc);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    /* Nothing to do: the end comes as EOF or an error on the read side,
     * or as the close deadline. */
    (void)req;
    (void)status;
}

/* After the socket took bytes: a closing link may half-close now, an open
 * one tells its producer when the queue ran dry. Never called from inside
 * mk_link_send, so the drain callback cannot recurse into it. */
static void after_progress(mk_link *l)
{
    if (l->state == MK__LINK_OPEN && !l->writing &&
        (l->fly.cap > KEEP_MAX || l->pend.cap > KEEP_MAX)) {
        l->trim_at = uv_now(l->t->loop) + TRIM_MS;
        rearm(l);
    } else if (l->state == MK__LINK_OPEN && !l->writing &&
               l->pend_off == l->pend.len) {
        quiet(l);
    }
    if (l->state == MK__LINK_CLOSING) {
        maybe_shutdown(l);
        return;
    }
    if (l->state == MK__LINK_OPEN && l->had_queued &&
        mk_link_queued(l) == 0) {
        l->had_queued = false;
        if (l->on_drain)
            l->on_drain(l, l->cb_data);
    }
}

/* Encrypts what is staged and writes it. On failure the link ends. */
static int flush(mk_link *l)
{
    int rc = encrypt_stage(l);
    if (rc == 0)
        rc = kick(l);
    if (rc != 0) {
        end_link(l, MK_CLOSE_UNEXPECTED, rc);
        return rc;
    }
    after_progress(l);
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    mk_link *l = req->handle->data;
    l->writing = false;
    if (l->state == MK__LINK_DEAD)
        return; /* cancelled by uv_close */
    if (status < 0) {
        io_end(l, status);
        return;
    }
    l->fly.len = 0;
    taken(l, l->fly_len);
    int rc = kick(l);
    if (rc != 0) {
        io_end(l, rc);
        return;
    }
    after_progress(l);
}

/* A frame of `len` payload bytes is in the stream: count it, and have
 * the loop's end encrypt and write it. */
static inline void queued_frame(mk_link *l, size_t len)
{
    l->stats.frames_out++;
    l->stats.bytes_out += len;
    l->t->stats.frames_out++;
    l->t->stats.bytes_out += len;
    if (len > 0)
        l->had_queued = true;
    if (mk__q_empty(&l->work))
        mk__transport_defer(l);
}

int mk_link_sendv(mk_link *l, const mk_iov *parts, size_t n)
{
    if (l->state != MK__LINK_OPEN)
        return MK_ECLOSED;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > l->t->max_frame - len)
            return MK_EMSGSIZE;
        len += parts[i].len;
    }
    if (l->stage.cap < RECORD &&
        mk_buf_reserve(&l->stage, RECORD - l->stage.len) != 0) {
        l->stage.err = 0; /* nothing was queued; the buffer stays usable */
        return MK_ENOMEM;
    }
    l->payload_in += len;
    int rc = 0;
    if (l->stage.len + MK__FRAME_HDR + len < RECORD) {
        /* The common small frame fits the record being filled: copied
         * once, with no record to close. */
        uint8_t *p = l->stage.data + l->stage.len;
        mk__frame_header(p, len);
        p += MK__FRAME_HDR;
        for (size_t i = 0; i < n; i++) {
            if (parts[i].len > 0)
                memcpy(p, parts[i].base, parts[i].len);
            p += parts[i].len;
        }
        l->stage.len += MK__FRAME_HDR + len;
        l->stage_payload += len;
    } else {
        uint8_t hdr[MK__FRAME_HDR];
        mk__frame_header(hdr, len);
        rc = put(l, hdr, sizeof hdr, false);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = put(l, parts[i].base, parts[i].len, true);
    }
    if (rc == 0 && l->pend.len - l->pend_off >= EAGER_WRITE)
        rc = kick(l);
    if (rc != 0) {
        /* Part of a frame may be in the stream already: the link is lost,
         * and its close callback will say why. */
        end_link(l, MK_CLOSE_UNEXPECTED, rc);
        return rc == MK_ENOMEM ? MK_ENOMEM : MK_ECLOSED;
    }
    queued_frame(l, len);
    return 0;
}

/* One frame, from one buffer. A small frame that fits the record being
 * filled is the common case (every frame of a chatty protocol) and is
 * copied right here: at 64-byte frames the general path's bookkeeping
 * cost as much per byte as the copy and the header together. */
int mk_link_send(mk_link *l, const void *frame, size_t len)
{
    if (l->state == MK__LINK_OPEN && len <= l->t->max_frame &&
        l->stage.cap >= RECORD &&
        l->stage.len + MK__FRAME_HDR + len < RECORD) {
        uint8_t *p = l->stage.data + l->stage.len;
        mk__frame_header(p, len);
        if (len > 0)
            memcpy(p + MK__FRAME_HDR, frame, len);
        l->stage.len += MK__FRAME_HDR + len;
        l->stage_payload += len;
        l->payload_in += len;
        queued_frame(l, len);
        return 0;
    }
    mk_iov one = {frame, len};
    return mk_link_sendv(l, &one, 1);
}

size_t mk_link_queued(const mk_link *l)
{
    return (size_t)(l->payload_in - l->payload_out);
}

void mk_link_on_drain(mk_link *l, mk_link_drain_cb cb)
{
    l->on_drain = cb;
}

/* ---- closing ------------------------------------------------------------ */

void mk__link_close(mk_link *l, uint32_t code, const char *reason,
                    int status)
{
    if (l->state != MK__LINK_OPEN)
        return;
    l->state = MK__LINK_CLOSING;
    l->close_code = code;
    l->status = status;
    l->paused = false;
    /* Behind whatever was sent before: the peer reads those first. */
    mk__close_encode(&l->stage, code, reason);
    if (l->stage.err) {
        end_link(l, code, MK_ENOMEM);
        return;
    }
    l->close_staged = true;
    uv_timer_start(&l->timer, on_timer, l->t->handshake_timeout_ms, 0);
    if (flush(l) != 0)
        return;
    update_reading(l);
}

void mk_link_close(mk_link *l, uint32_t code, const char *reason)
{
    mk__link_close(l, code, reason, 0);
}

void mk__link_deadline(mk_link *l, uint64_t ms)
{
    if (l->state != MK__LINK_DEAD)
        uv_timer_start(&l->timer, on_timer, ms, 0);
}

/* ---- the watchdog ------------------------------------------------------- */

static bool idle_counts(const mk_link *l)
{
    return l->idle_ms > 0 && l->reading;
}

static bool holds_buffers(const mk_link *l)
{
    return l->in.cap || l->stage.cap || l->pend.cap || l->fly.cap ||
           l->held.cap;
}

/* Gives every buffer back when nothing is held in any of them: no frame
 * half received or waiting to be delivered (a paused link keeps its),
 * nothing staged, unsent or in flight, no TLS record half read. */
static void shed(mk_link *l)
{
    if (l->writing || l->partial || l->stage.len > 0 ||
        l->pend_off != l->pend.len || mk__frame_in_buffered(&l->in) > 0 ||
        l->held_off < l->held.len || SSL_has_pending(l->ssl))
        return;
    mk__frame_in_free(&l->in);
    mk_buf_free(&l->stage);
    mk_buf_free(&l->pend);
    mk_buf_free(&l->fly);
    mk_buf_free(&l->held);
    l->pend_off = l->held_off = 0;
    /* OpenSSL allocates its record buffers again when it needs them; it
     * refuses (and keeps them) while they hold anything. */
    (void)SSL_free_buffers(l->ssl);
}

static bool buffers_small(const mk_link *l)
{
    return l->in.cap <= SMALL_BUF && l->pend.cap <= SMALL_BUF &&
           l->fly.cap <= SMALL_BUF && l->held.cap <= SMALL_BUF;
}

/* The link just ran dry (all read, all sent): shed small buffers now
 * (within the budget), others if it stays so for TRIM_MS. A trim already
 * due keeps its time. */
static void quiet(mk_link *l)
{
    if (l->state != MK__LINK_OPEN || !holds_buffers(l))
        return;
    uint64_t now = uv_now(l->t->loop);
    if (now - l->shed_window >= TRIM_MS) {
        l->shed_window = now;
        l->sheds = 0;
    }
    if (buffers_small(l) && l->sheds < SHED_BUDGET) {
        shed(l);
        if (!holds_buffers(l)) {
            l->sheds++;
            return;
        }
    }
    if (l->trim_at)
        return;
    l->trim_at = now + TRIM_MS;
    rearm(l);
}

/* Arms an open link's timer for the nearest of its deadlines, or stops
 * it when none is pending. */
static void rearm(mk_link *l)
{
    if (l->state != MK__LINK_OPEN)
        return;
    uint64_t due = UINT64_MAX;
    uint32_t frame_ms = l->t->frame_timeout_ms;
    if (l->trim_at)
        due = l->trim_at;
    if (idle_counts(l) && l->last_io + l->idle_ms < due)
        due = l->last_io + l->idle_ms;
    if (l->partial && frame_ms && l->partial_since + frame_ms < due)
        due = l->partial_since + frame_ms;
    if (due == UINT64_MAX) {
        uv_timer_stop(&l->timer);
        return;
    }
    uint64_t now = uv_now(l->t->loop);
    uv_timer_start(&l->timer, on_timer, due > now ? due - now : 0, 0);
}

static void watchdog(mk_link *l)
{
    uint64_t now = uv_now(l->t->loop);
    uint32_t frame_ms = l->t->frame_timeout_ms;
    if (l->partial && frame_ms && now - l->partial_since >= frame_ms) {
        mk__link_close(l, MK_CLOSE_IDLE_TIMEOUT,
                       "frame not completed in time", MK_ETIMEDOUT);
        return;
    }
    if (idle_counts(l) && now - l->last_io >= l->idle_ms) {
        mk__link_close(l, MK_CLOSE_IDLE_TIMEOUT, "idle for too long",
                       MK_ETIMEDOUT);
        return;
    }
    if (l->trim_at && now >= l->trim_at) {
        l->trim_at = 0;
        /* Give back big send buffers unless they are in use (a write in
         * flight rearms the trim when it completes). */
        if (!l->writing) {
            if (l->fly.cap > KEEP_MAX)
                mk_buf_free(&l->fly);
            if (l->pend.cap > KEEP_MAX && l->pend_off == l->pend.len) {
                mk_buf_free(&l->pend);
                l->pend_off = 0;
            }
        }
        /* Bytes moved since the link went quiet: look again once they
         * have stopped for long enough. */
        if (now - l->last_io >= TRIM_MS)
            shed(l);
        else if (holds_buffers(l))
            l->trim_at = l->last_io + TRIM_MS;
    }
    rearm(l);
}

void mk_link_set_idle_timeout(mk_link *l, uint32_t ms)
{
    l->idle_ms = ms;
    l->last_io = uv_now(l->t->loop);
    rearm(l);
}

static void on_timer(uv_timer_t *h)
{
    mk_link *l = h->data;
    switch (l->state) {
    case MK__LINK_HANDSHAKE:
        mk__link_abort(l, l->dialer ? MK_ECONNECT_TIMEOUT : MK_ETIMEDOUT);
        break;
    case MK__LINK_OPEN:
        watchdog(l);
        break;
    case MK__LINK_CLOSING:
        /* The peer stopped reading or never hung up. If our close frame
         * got out the close was still orderly. */
        io_end(l, MK_ETIMEDOUT);
        break;
    default:
        break;
    }
}

/* ---- receiving ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    mk_link *l = h->data;
    (void)hint;
    buf->base = (char *)l->t->rbuf;
    buf->len = MK__READ_BUF;
}

/* Sends what the TLS session produced outside of SSL_write (handshake
 * flights, alerts) right away. */
static int send_tls_output(mk_link *l)
{
    note_made(l);
    return kick(l);
}

static void handshake(mk_link *l)
{
    ERR_clear_error();
    OSSL_LIB_CTX *prev = mk__tls_enter(l->t->tls);
    int r = SSL_do_handshake(l->ssl);
    mk__tls_leave(prev);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(l->ssl, r);
    ERR_clear_error();
    int rc = 0;
    if (e == SSL_ERROR_NONE) {
        /* Before our last flight leaves: a resumed session's peer is only
         * known now, and refusing it here keeps our Finished from the
         * acceptor, as for a full handshake. */
        rc = mk__tls_established(l->ssl, &l->auth);
        if (rc != 0) {
            if (l->dialer)
                mk__tls_cache_drop(&l->t->sessions, &l->auth.expect);
            mk__link_abort(l, rc);
            return;
        }
    }
    /* Alerts too: a refused peer should learn why before the socket
     * closes. */
    rc = send_tls_output(l);
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
        mk__link_abort(l, l->auth.wrong_peer ? MK_EWRONG_PEER : MK_ETLS);
        return;
    }
    if (rc != 0) {
        mk__link_abort(l, rc);
        return;
    }
    if (e == SSL_ERROR_WANT_READ)
        return;

    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(l->ssl, &p, &n);
    if (l->dialer) {
        if (n != strlen(l->alpn) || memcmp(p, l->alpn, n) != 0) {
            mk__link_abort(l, MK_EPROTO);
            return;
        }
    } else if (n > 0 && n < MK_ALPN_MAX && !memchr(p, '\0', n)) {
        memcpy(l->alpn, p, n);
        l->alpn[n] = '\0';
    } /* else: "" which nobody serves */
    l->state = MK__LINK_OPEN;
    if (l->auth.resumed)
        l->t->stats.links_resumed++;
    if (l->dialer)
        l->t->stats.links_dialed++;
    else
        l->t->stats.links_accepted++;
    uv_timer_stop(&l->timer);
    l->last_io = uv_now(l->t->loop);
    mk__transport_ready(l);
    /* Frames may have come right behind the handshake's last flight. */
    if (l->state == MK__LINK_OPEN)
        pump(l);
    else
        update_reading(l);
}

static void deliver(mk_link *l, const mk__frame *f)
{
    if (f->close) {
        uint32_t code;
        const uint8_t *reason;
        size_t rlen;
        if (mk__close_decode(f->data, f->len, &code, &reason, &rlen) != 0) {
            mk__link_close(l, MK_CLOSE_PROTOCOL_VIOLATION,
                           "malformed close frame", MK_EPROTO);
            return;
        }
        /* The peer is done and waits for us to hang up; what we still
         * had queued has nobody to read it. */
        end_link(l, code, 0);
        return;
    }
    l->stats.frames_in++;
    l->stats.bytes_in += f->len;
    l->t->stats.frames_in++;
    l->t->stats.bytes_in += f->len;
    l->on_frame(l, f->data, f->len, l->cb_data);
}

/* Delivers buffered frames and decrypts more until the read BIO is empty,
 * the link is paused or has no frame callback, or it ends. Callbacks may
 * pause, close or send; the state is checked after each. */
/* The read side ran dry: whatever bytes are held now (unparsed frame
 * bytes, a TLS record not yet whole) are a frame the peer has begun and
 * must finish within the frame deadline, which counts from the later of
 * its first bytes and the last whole frame. */
static void note_partial(mk_link *l, bool delivered)
{
    bool partial = mk__frame_in_buffered(&l->in) > 0 ||
                   l->held_off < l->held.len || SSL_has_pending(l->ssl);
    if (!partial) {
        l->partial = false; /* the watchdog finds nothing due */
        quiet(l);
        return;
    }
    if (l->partial && !delivered)
        return;
    bool was = l->partial;
    l->partial = true;
    l->partial_since = uv_now(l->t->loop);
    if (!was)
        rearm(l);
}

static void pump(mk_link *l)
{
    bool delivered = false, dry = false;
    while (l->state == MK__LINK_OPEN && l->on_frame && !l->paused) {
        mk__frame f = {NULL, 0, false}; /* set when r == 1; GCC can't tell */
        int r = mk__frame_in_next(&l->in, &f);
        if (r == 1) {
            delivered = true;
            deliver(l, &f);
            continue;
        }
        if (r == MK_EMSGSIZE) {
            mk__link_close(l, MK_CLOSE_FRAME_TOO_LARGE,
                           mk_close_text(MK_CLOSE_FRAME_TOO_LARGE),
                           MK_EMSGSIZE);
            break;
        }
        if (r < 0) {
            mk__link_close(l, MK_CLOSE_PROTOCOL_VIOLATION,
                           "close frame too long", MK_EPROTO);
            break;
        }
        size_t avail;
        uint8_t *p = mk__frame_in_space(&l->in, &avail);
        if (!p) {
            end_link(l, MK_CLOSE_UNEXPECTED, MK_ENOMEM);
            break;
        }
        err_reset();
        OSSL_LIB_CTX *prev = mk__tls_enter(l->t->tls);
        int n = SSL_read(l->ssl, p, avail > INT_MAX ? INT_MAX : (int)avail);
        mk__tls_leave(prev);
        if (n > 0) {
            mk__frame_in_commit(&l->in, (size_t)n);
            continue;
        }
        int e = SSL_get_error(l->ssl, n);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ) {
            dry = true;
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* TLS close_notify without our close frame. */
            end_link(l, MK_CLOSE_UNEXPECTED, MK_ECONNRESET);
        } else {
            /* A record that does not decrypt: garbage or tampering. The
             * session is unusable, so no close frame; the alert is all
             * the peer gets. */
            send_tls_output(l);
            end_link(l, MK_CLOSE_PROTOCOL_VIOLATION, MK_ETLS);
        }
        break;
    }
    if (l->state == MK__LINK_OPEN) {
        if (dry)
            note_partial(l, delivered);
        else
            l->partial = false; /* paused or unclaimed: we hold it up */
    }
    /* SSL_read may have answered something (a KeyUpdate). */
    if (l->state == MK__LINK_OPEN && l->ct_made != l->ct_marked)
        mk__transport_defer(l);
    update_reading(l);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    mk_link *l = s->data;
    if (n == 0)
        return;
    if (n < 0) {
        io_end(l, (int)n);
        return;
    }
    l->last_io = uv_now(l->t->loop);
    if (l->state != MK__LINK_HANDSHAKE && l->state != MK__LINK_OPEN)
        return; /* closing: only the end of the stream matters now */
    l->rin = (const uint8_t *)buf->base;
    l->rin_len = (size_t)n;
    if (l->state == MK__LINK_HANDSHAKE)
        handshake(l);
    else
        pump(l);
    /* The link may be closing or dead now, but is not freed before the
     * loop runs its close callbacks. Bytes it did not take wait in `held`
     * (a closing link will not read them). */
    int rc = l->state == MK__LINK_HANDSHAKE || l->state == MK__LINK_OPEN
                 ? mk__link_keep_unread(l)
                 : 0;
    l->rin = NULL;
    l->rin_len = 0;
    if (rc != 0)
        end_link(l, MK_CLOSE_UNEXPECTED, rc);
}

int mk__link_start(mk_link *l)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    int rc = uv_tcp_nodelay(&l->tcp, 1);
    if (rc != 0)
        return rc;
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) == 0)
        mk__addr_format((struct sockaddr *)&ss, l->remote);
    BIO *bio = mk__link_bio_new(l);
    if (!bio)
        return MK_ENOMEM;
    if (l->dialer) {
        l->auth.cache = &l->t->sessions;
    } else {
        l->auth.ticket_for = mk__transport_ticket_for;
        l->auth.ticket_data = l->t;
    }
    l->ssl = mk__tls_new(l->t->tls, l->dialer ? l->alpn : NULL, &l->auth,
                         bio);
    if (!l->ssl)
        return MK_ENOMEM;
    update_reading(l);
    if (l->state != MK__LINK_HANDSHAKE)
        return 0;
    if (l->dialer)
        handshake(l); /* the ClientHello */
    return 0;
}

/* ---- deferred work and controls ---------------------------------------- */

void mk__link_run(mk_link *l)
{
    if (l->want_pump) {
        l->want_pump = false;
        if (l->state == MK__LINK_OPEN)
            pump(l);
    }
    if (l->state == MK__LINK_OPEN || l->state == MK__LINK_CLOSING)
        flush(l);
}

void mk_link_set_callbacks(mk_link *l, mk_link_frame_cb on_frame,
                           mk_link_close_cb on_close, void *data)
{
    l->on_frame = on_frame;
    l->on_close = on_close;
    l->cb_data = data;
    if (l->state != MK__LINK_OPEN)
        return;
    if (on_frame) {
        /* Held frames are delivered from the loop, not from inside this
         * call, so the caller finishes setting up first. */
        l->want_pump = true;
        mk__transport_defer(l);
    } else {
        update_reading(l);
    }
}

void mk_link_pause(mk_link *l)
{
    if (l->paused || l->state != MK__LINK_OPEN)
        return;
    l->paused = true;
    update_reading(l);
}

void mk_link_resume(mk_link *l)
{
    if (!l->paused)
        return;
    l->paused = false;
    if (l->state != MK__LINK_OPEN)
        return;
    l->want_pump = true;
    mk__transport_defer(l);
}

/* ---- accessors ---------------------------------------------------------- */

const mk_peer_id *mk_link_peer(const mk_link *l)
{
    return &l->auth.peer;
}

const char *mk_link_alpn(const mk_link *l)
{
    return l->alpn;
}

const char *mk_link_remote_addr(const mk_link *l)
{
    return l->remote;
}

int mk_link_export(const mk_link *l, const char *label, uint8_t out[32])
{
    if (!l->ssl || !label || !SSL_is_init_finished(l->ssl))
        return MK_ETLS;
    ERR_clear_error();
    if (SSL_export_keying_material(l->ssl, out, 32, label, strlen(label),
                                   (const unsigned char *)l->alpn,
                                   strlen(l->alpn), 1) != 1) {
        ERR_clear_error();
        return MK_ETLS;
    }
    return 0;
}

int64_t mk_link_rtt_us(const mk_link *l)
{
    uv_os_fd_t fd;
    if (l->state == MK__LINK_DEAD ||
        uv_fileno((const uv_handle_t *)&l->tcp, &fd) != 0)
        return -1;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return -1;
    return (int64_t)ti.tcpi_rtt;
}

void mk_link_stats_get(const mk_link *l, mk_link_stats *out)
{
    *out = l->stats;
}

void mk_link_set_data(mk_link *l, void *data)
{
    l->user_data = data;
}

void *mk_link_get_data(const mk_link *l)
{
    return l->user_data;
}
