/* The transport's TLS 1.3 context (src/mosaik/tls.h).
 *
 * Both sides present a certificate and both sides check the other's the
 * same way: the leaf must carry an Ed25519 key and be signed by it. No
 * chain, no names, no validity dates matter; identity is the key alone
 * (reference/mosaik.md §2.4: remote_id() is the authenticated peer key).
 */
#include "mosaik/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/id.h"
#include "mosaik/tls_lib.h"

/* mk_errf with OpenSSL's reason appended; the error queue is emptied
 * either way, so a later failure does not report this one's cause. */
static int tls_fail(char *err, int rc, const char *what)
{
    char detail[160];
    mk__tls_errstr(detail, sizeof detail);
    return mk_errf(err, rc, "tls: %s%s%s", what, detail[0] ? ": " : "",
                   detail);
}

/* A program may start OpenSSL without its reason strings (coalitiond
 * does, to save their half MiB per process); then the packed code is all
 * there is, and `openssl errstr` turns it into the text. */
void mk__tls_errstr(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        buf[0] = '\0';
    else if (ERR_reason_error_string(e))
        ERR_error_string_n(e, buf, size);
    else
        snprintf(buf, size, "OpenSSL error %08lX (`openssl errstr %08lX` "
                            "names it)", e, e);
    ERR_clear_error();
}

/* The self-signed certificate that carries the node's key. Its fields are
 * only there because X.509 demands them: the subject names the PeerId for
 * whoever looks at a capture, and the validity never ends (RFC 5280
 * §4.1.2.5's 99991231235959Z) because nobody checks it. */
static X509 *make_cert(OSSL_LIB_CTX *libctx, EVP_PKEY *pkey,
                       const mk_peer_id *id)
{
    X509 *x = X509_new_ex(libctx, NULL);
    if (!x)
        return NULL;
    char hex[MK_ID_HEX_LEN + 1];
    mk_id_hex(id, hex);
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_set_version(x, X509_VERSION_3) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -24 * 3600) ||
        ASN1_TIME_set_string(X509_getm_notAfter(x), "99991231235959Z") != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)hex, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, pkey) != 1 ||
        /* Ed25519 signs the message itself: no digest is named. */
        X509_sign(x, pkey, NULL) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* The PeerId a certificate carries: its Ed25519 key, raw. */
static bool cert_key(X509 *cert, mk_peer_id *out)
{
    EVP_PKEY *pk = cert ? X509_get0_pubkey(cert) : NULL;
    size_t rawlen = MK_ID_LEN;
    return pk && EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519 &&
           EVP_PKEY_get_raw_public_key(pk, out->b, &rawlen) == 1 &&
           rawlen == MK_ID_LEN;
}

/* Replaces OpenSSL's chain verification (which would look for a trusted
 * issuer we do not have). Runs on both sides, on the remote's leaf, in
 * full handshakes only: a resumed one has no certificates to check.
 * The certificate only carries the remote's Ed25519 key: what proves the
 * remote holds that key is its CertificateVerify, a signature over this
 * handshake that TLS 1.3 checks right after us, so the certificate's own
 * self-signature proves nothing more and is not checked (an Ed25519
 * verify in OpenSSL, ~80 us here, on both sides of every handshake). */
static int check_cert(X509_STORE_CTX *xs, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs,
                                          SSL_get_ex_data_X509_STORE_CTX_idx());
    mk__tls_auth *auth = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get0_cert(xs);
    mk_peer_id peer;

    if (!auth || !cert_key(cert, &peer)) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    auth->peer = peer;
    auth->have_peer = true;
    if (auth->has_expect && !mk_id_eq(&auth->peer, &auth->expect)) {
        /* Refuse here, before CertificateVerify and our Finished: the
         * acceptor's handshake then fails too and no handler runs. */
        auth->wrong_peer = true;
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

/* A dialer received a ticket (after the handshake, so the remote is
 * proven to be auth->expect). Returning 1 keeps the reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    mk__tls_auth *auth = SSL_get_app_data(ssl);
    if (!auth || !auth->cache || !auth->has_expect || !auth->have_peer ||
        !mk_id_eq(&auth->peer, &auth->expect))
        return 0;
    mk__tls_cache_put(auth->cache, &auth->expect, sess);
    return 1;
}

/* Whether `sess` may be offered to a dial expecting `expect`: it was made
 * with exactly that key. The cache is keyed by it already; this keeps a
 * misfiled session from ever vouching for another key. */
static bool session_is_for(SSL_SESSION *sess, const mk_peer_id *expect)
{
    mk_peer_id peer;
    return SSL_SESSION_is_resumable(sess) &&
           cert_key(SSL_SESSION_get0_peer(sess), &peer) &&
           mk_id_eq(&peer, expect);
}

/* The acceptor takes the first protocol offered. Refusing unknown ones
 * here would end the handshake with a bare alert; completing it lets the
 * transport send a close frame with MK_CLOSE_INVALID_ALPN, which the
 * dialer can act on (reference/mosaik.md §8). */
static int select_alpn(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)arg;
    if (inlen < 2 || in[0] == 0 || (unsigned)in[0] + 1 > inlen)
        return SSL_TLSEXT_ERR_NOACK;
    *out = in + 1;
    *outlen = in[0];
    /* A ticket adds about a sixth to a full handshake's CPU, both sides
     * together (OpenSSL 3.0 encodes the session, decodes it again,
     * certificate and key included, and seals it; the dialer copies its
     * session, certificate again included); protocols whose dialers do
     * not come back spare it (mk_transport_serve_ex). Tickets are sent
     * after our Finished, so it is not too late to decide here. */
    mk__tls_auth *auth = SSL_get_app_data(ssl);
    if (auth && auth->ticket_for) {
        char alpn[256];
        memcpy(alpn, in + 1, in[0]);
        alpn[in[0]] = '\0';
        if (!auth->ticket_for(auth->ticket_data, alpn))
            SSL_set_num_tickets(ssl, 0);
    }
    return SSL_TLSEXT_ERR_OK;
}

int mk__tls_ctx_new(const mk_keypair *kp, SSL_CTX **out, char *err)
{
    int rc = MK_ETLS;
    SSL_CTX *ctx = NULL;
    X509 *cert = NULL;
    EVP_PKEY *pkey = NULL;
    mk__tls_lib *lib = NULL;
    /* Without our context (an OpenSSL whose default provider lacks an
     * algorithm the filter keeps), OpenSSL's default one does the same
     * work, only slower. */
    rc = mk__tls_lib_hold(&lib);
    if (rc == MK_ENOMEM)
        return mk_errf(err, rc, "tls: out of memory");
    OSSL_LIB_CTX *libctx = lib ? mk__tls_lib_ctx(lib) : NULL;
    pkey = EVP_PKEY_new_raw_private_key_ex(libctx, "ED25519", NULL, kp->seed,
                                           MK_SEED_LEN);
    if (!pkey) {
        rc = tls_fail(err, MK_ETLS, "cannot load the Ed25519 key");
        goto err_after_lib;
    }
    cert = make_cert(libctx, pkey, &kp->pub);
    if (!cert) {
        rc = tls_fail(err, MK_ETLS, "cannot make the certificate");
        goto err_after_pkey;
    }
    ctx = SSL_CTX_new_ex(libctx, NULL, TLS_method());
    if (!ctx) {
        rc = tls_fail(err, MK_ENOMEM, "cannot make a context");
        goto err_after_cert;
    }
    /* AES-128-GCM first, ChaCha20-Poly1305 for peers without AES-NI.
     * Measured on the 2-core development VM (AES-NI, VAES, AVX-512;
     * OpenSSL 3.0), each suite alone, 64 KiB frames, medians of three
     * interleaved `bench_link -n 5 -s 65536 -o tls -m 512`:
     *
     *   suite           MB/s   sender cpu/GB   receiver cpu/GB
     *   AES-128-GCM      313       0.77 s          0.73 s
     *   AES-256-GCM      380       0.76 s          0.67 s
     *   ChaCha20-Poly    340       0.81 s          0.69 s
     *
     * and `openssl speed -bytes 16384` (one record): 4.36, 4.36 and
     * 4.23 GB/s. The machine was shared and the spread between runs
     * (±30%) is larger than any gap here: no suite is measurably faster.
     * AES-128 stays first since it does the least work per block for a
     * strength the link does not need to exceed. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:"
                                      "TLS_CHACHA20_POLY1305_SHA256:"
                                      "TLS_AES_256_GCM_SHA384") != 1 ||
        SSL_CTX_set1_sigalgs_list(ctx, "ed25519") != 1 ||
        SSL_CTX_set1_client_sigalgs_list(ctx, "ed25519") != 1) {
        rc = tls_fail(err, MK_ETLS, "cannot configure TLS 1.3");
        goto err_after_ctx;
    }
    /* One ticket per handshake, kept by the dialer only (tls_cache.h),
     * through our callback rather than OpenSSL's internal cache. The
     * acceptor keeps nothing: TLS 1.3 tickets are stateless, sealed with
     * a key that lives and dies with this context. A ticket's session
     * holds the client's certificate, so an acceptor learns the remote's
     * key from it on resumption. The session id context is required by
     * OpenSSL for resuming sessions that had a client certificate. */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                            SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    if (SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"mosaik",
                                       6) != 1) {
        rc = tls_fail(err, MK_ETLS, "cannot configure resumption");
        goto err_after_ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_cert_verify_callback(ctx, check_cert, NULL);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    if (SSL_CTX_use_certificate(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        rc = tls_fail(err, MK_ETLS, "cannot install the certificate");
        goto err_after_ctx;
    }
    /* The context holds its own references now. */
    X509_free(cert);
    EVP_PKEY_free(pkey);
    SSL_CTX_set_app_data(ctx, lib); /* for mk__tls_ctx_free */
    *out = ctx;
    return 0;

err_after_ctx:
    SSL_CTX_free(ctx);
err_after_cert:
    X509_free(cert);
err_after_pkey:
    EVP_PKEY_free(pkey);
err_after_lib:
    mk__tls_lib_release(lib);
    return rc;
}

OSSL_LIB_CTX *mk__tls_enter(SSL_CTX *ctx)
{
    mk__tls_lib *lib = SSL_CTX_get_app_data(ctx);
    return lib ? OSSL_LIB_CTX_set0_default(mk__tls_lib_ctx(lib)) : NULL;
}

void mk__tls_leave(OSSL_LIB_CTX *prev)
{
    if (prev)
        OSSL_LIB_CTX_set0_default(prev);
}

void mk__tls_ctx_free(SSL_CTX *ctx)
{
    if (!ctx)
        return;
    mk__tls_lib *lib = SSL_CTX_get_app_data(ctx);
    SSL_CTX_free(ctx);
    mk__tls_lib_release(lib);
}

SSL *mk__tls_new(SSL_CTX *ctx, const char *alpn, mk__tls_auth *auth,
                 BIO *bio)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl) {
        BIO_free(bio);
        return NULL;
    }
    SSL_set_bio(ssl, bio, bio); /* the SSL owns it now */
    SSL_set_app_data(ssl, auth);
    if (alpn) {
        unsigned char wire[1 + 255];
        size_t n = strlen(alpn);
        if (n == 0 || n > 255)
            goto err;
        wire[0] = (unsigned char)n;
        memcpy(wire + 1, alpn, n);
        /* Unlike most of OpenSSL, 0 means success here. */
        if (SSL_set_alpn_protos(ssl, wire, (unsigned)(n + 1)) != 0)
            goto err;
        if (auth->cache && auth->has_expect) {
            SSL_SESSION *sess = mk__tls_cache_get(auth->cache, &auth->expect);
            if (sess && !session_is_for(sess, &auth->expect))
                mk__tls_cache_drop(auth->cache, &auth->expect);
            else if (sess && SSL_set_session(ssl, sess) != 1)
                goto err;
        }
        SSL_set_connect_state(ssl);
    } else {
        SSL_set_accept_state(ssl);
    }
    return ssl;

err:
    SSL_free(ssl);
    return NULL;
}

int mk__tls_established(SSL *ssl, mk__tls_auth *auth)
{
    auth->resumed = SSL_session_reused(ssl) != 0;
    if (!auth->resumed)
        return auth->have_peer ? 0 : MK_ETLS;
    /* The session's certificate was checked by the full handshake that
     * made it, and only its two parties know the secret that resumed it;
     * what is left is to read who that was and, for a dialer, whether it
     * is who we meant to reach. */
    mk_peer_id peer;
    if (!cert_key(SSL_get0_peer_certificate(ssl), &peer))
        return MK_ETLS;
    auth->peer = peer;
    auth->have_peer = true;
    if (auth->has_expect && !mk_id_eq(&peer, &auth->expect)) {
        auth->wrong_peer = true;
        return MK_EWRONG_PEER;
    }
    return 0;
}
