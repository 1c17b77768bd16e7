/* The BIO between a link's TLS session and its buffers (link_int.h).
 *
 * libuv owns the socket, so OpenSSL cannot do its own I/O; a pair of
 * memory BIOs would work but costs every byte two more passes each way
 * (copied into the BIO, zero-filled as it grows, copied out again). This
 * BIO reads from and writes to the link's own buffers instead:
 *
 * - reading hands OpenSSL the bytes libuv just read, straight from the
 *   transport's read buffer (l->rin, only set inside the read callback),
 *   after any older bytes the link had to keep (l->held);
 * - writing appends ciphertext to l->pend, the buffer the link hands to
 *   the socket.
 *
 * The read buffer is shared by all of a transport's links and reused by
 * the next read, so what the session did not consume before the callback
 * returns (the link is paused, has no frame callback yet, or the
 * handshake ended inside the read) is copied to l->held: the one copy
 * left, and only on those paths.
 */
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/link_int.h"

static int bio_write(BIO *b, const char *in, int inl)
{
    mk_link *l = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (inl <= 0)
        return 0;
    size_t n = (size_t)inl;
    if (l->pend_off == l->pend.len)
        l->pend_off = l->pend.len = 0; /* all taken: start over */
    if (mk_buf_reserve(&l->pend, n) != 0) {
        l->pend.err = 0; /* the buffer stays usable; the session does not */
        l->bio_err = MK_ENOMEM;
        return -1; /* no retry flag: SSL_write fails for good */
    }
    memcpy(l->pend.data + l->pend.len, in, n);
    l->pend.len += n;
    l->ct_made += n;
    return inl;
}

static int bio_read(BIO *b, char *out, int outl)
{
    mk_link *l = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (outl <= 0)
        return 0;
    size_t want = (size_t)outl, n;
    if (l->held_off < l->held.len) {
        n = l->held.len - l->held_off;
        if (n > want)
            n = want;
        memcpy(out, l->held.data + l->held_off, n);
        l->held_off += n;
        if (l->held_off == l->held.len)
            l->held_off = l->held.len = 0;
    } else if (l->rin_len > 0) {
        n = l->rin_len < want ? l->rin_len : want;
        memcpy(out, l->rin, n);
        l->rin += n;
        l->rin_len -= n;
    } else {
        /* Nothing yet: "wait for the socket", never end of stream (the
         * link learns about EOF from libuv). */
        BIO_set_retry_read(b);
        return -1;
    }
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* OpenSSL flushes after each handshake flight and treats 0 as a
     * failure; the link sends pend on its own schedule. Everything else
     * (kTLS, pending counts, push/pop) is unsupported. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

BIO_METHOD *mk__link_bio_method_new(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "mosaik link");
    if (!m)
        return NULL;
    if (BIO_meth_set_write(m, bio_write) != 1 ||
        BIO_meth_set_read(m, bio_read) != 1 ||
        BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
        BIO_meth_set_create(m, bio_create) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

BIO *mk__link_bio_new(mk_link *l)
{
    BIO *b = BIO_new(l->t->bio_method);
    if (b)
        BIO_set_data(b, l);
    return b;
}

int mk__link_keep_unread(mk_link *l)
{
    size_t n = l->rin_len;
    l->rin_len = 0;
    if (n == 0)
        return 0;
    if (l->held_off > 0) {
        memmove(l->held.data, l->held.data + l->held_off,
                l->held.len - l->held_off);
        l->held.len -= l->held_off;
        l->held_off = 0;
    }
    mk_put_raw(&l->held, l->rin, n);
    if (l->held.err) {
        l->held.err = 0;
        return MK_ENOMEM;
    }
    return 0;
}
