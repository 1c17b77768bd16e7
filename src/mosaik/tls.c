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
#include <stdio.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/id.h"

static int say(char *err, int rc, const char *what)
{
    if (err) {
        char detail[160];
        mk__tls_errstr(detail, sizeof detail);
        snprintf(err, MK_ERRMSG_SIZE, "tls: %s%s%s", what,
                 detail[0] ? ": " : "", detail);
    } else {
        ERR_clear_error();
    }
    return rc;
}

void mk__tls_errstr(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        buf[0] = '\0';
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
}

/* The self-signed certificate that carries the node's key. Its fields are
 * only there because X.509 demands them: the subject names the PeerId for
 * whoever looks at a capture, and the validity never ends (RFC 5280
 * §4.1.2.5's 99991231235959Z) because nobody checks it. */
static X509 *make_cert(EVP_PKEY *pkey, const mk_peer_id *id)
{
    X509 *x = X509_new();
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

/* Replaces OpenSSL's chain verification (which would look for a trusted
 * issuer we do not have). Runs on both sides, on the remote's leaf. */
static int check_cert(X509_STORE_CTX *xs, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs,
                                          SSL_get_ex_data_X509_STORE_CTX_idx());
    mk__tls_auth *auth = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get0_cert(xs);
    EVP_PKEY *pk = cert ? X509_get0_pubkey(cert) : NULL;
    uint8_t raw[MK_ID_LEN];
    size_t rawlen = sizeof raw;

    if (!auth || !pk || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519 ||
        EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1 ||
        rawlen != MK_ID_LEN || X509_verify(cert, pk) != 1) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    memcpy(auth->peer.b, raw, MK_ID_LEN);
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

/* The acceptor takes the first protocol offered. Refusing unknown ones
 * here would end the handshake with a bare alert; completing it lets the
 * transport send a close frame with MK_CLOSE_INVALID_ALPN, which the
 * dialer can act on (reference/mosaik.md §8). */
static int select_alpn(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    if (inlen < 2 || in[0] == 0 || (unsigned)in[0] + 1 > inlen)
        return SSL_TLSEXT_ERR_NOACK;
    *out = in + 1;
    *outlen = in[0];
    return SSL_TLSEXT_ERR_OK;
}

int mk__tls_ctx_new(const mk_keypair *kp, SSL_CTX **out, char *err)
{
    int rc = MK_ETLS;
    SSL_CTX *ctx = NULL;
    X509 *cert = NULL;
    EVP_PKEY *pkey =
        EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, kp->seed,
                                     MK_SEED_LEN);
    if (!pkey)
        return say(err, MK_ETLS, "cannot load the Ed25519 key");
    cert = make_cert(pkey, &kp->pub);
    if (!cert) {
        rc = say(err, MK_ETLS, "cannot make the certificate");
        goto err_after_pkey;
    }
    ctx = SSL_CTX_new(TLS_method());
    if (!ctx) {
        rc = say(err, MK_ENOMEM, "cannot make a context");
        goto err_after_cert;
    }
    /* AES-128-GCM first: with AES-NI it is the fastest AEAD here and as
     * strong as the link needs; the others stay for peers without it. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:"
                                      "TLS_CHACHA20_POLY1305_SHA256:"
                                      "TLS_AES_256_GCM_SHA384") != 1 ||
        SSL_CTX_set1_sigalgs_list(ctx, "ed25519") != 1 ||
        SSL_CTX_set1_client_sigalgs_list(ctx, "ed25519") != 1) {
        rc = say(err, MK_ETLS, "cannot configure TLS 1.3");
        goto err_after_ctx;
    }
    /* Every link is a fresh, fully authenticated handshake: resumption
     * would only add state to keep and a second way in. */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_cert_verify_callback(ctx, check_cert, NULL);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    if (SSL_CTX_use_certificate(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        rc = say(err, MK_ETLS, "cannot install the certificate");
        goto err_after_ctx;
    }
    /* The context holds its own references now. */
    X509_free(cert);
    EVP_PKEY_free(pkey);
    *out = ctx;
    return 0;

err_after_ctx:
    SSL_CTX_free(ctx);
err_after_cert:
    X509_free(cert);
err_after_pkey:
    EVP_PKEY_free(pkey);
    return rc;
}

SSL *mk__tls_new(SSL_CTX *ctx, const char *alpn, mk__tls_auth *auth,
                 BIO **rbio, BIO **wbio)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    BIO *r = BIO_new(BIO_s_mem());
    BIO *w = BIO_new(BIO_s_mem());
    if (!r || !w) {
        BIO_free(r);
        BIO_free(w);
        SSL_free(ssl);
        return NULL;
    }
    /* An empty read BIO means "wait for the socket", not end of stream:
     * the link learns about EOF from libuv, never from the BIO. */
    BIO_set_mem_eof_return(r, -1);
    BIO_set_mem_eof_return(w, -1);
    SSL_set_bio(ssl, r, w); /* the SSL owns both now */
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
        SSL_set_connect_state(ssl);
    } else {
        SSL_set_accept_state(ssl);
    }
    *rbio = r;
    *wbio = w;
    return ssl;

err:
    SSL_free(ssl);
    return NULL;
}
