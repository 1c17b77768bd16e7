/* The transports' OpenSSL library context (src/mosaik/tls_lib.h): it
 * keeps only the algorithms TLS 1.3 with our suites needs, one context
 * serves every holder, and a peer's certificate still reads in it (and a
 * key of any other kind does not). */
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mosaik/error.h"
#include "mosaik/tls.h"
#include "mosaik/tls_lib.h"

static void count_decoder(OSSL_DECODER *d, void *arg)
{
    int *n = arg;
    assert_true(OSSL_DECODER_is_a(d, "ED25519"));
    (*n)++;
}

static void count_encoder(OSSL_ENCODER *e, void *arg)
{
    int *n = arg;
    assert_true(OSSL_ENCODER_is_a(e, "ED25519"));
    (*n)++;
}

static void count_keymgmt(EVP_KEYMGMT *k, void *arg)
{
    (void)k;
    (*(int *)arg)++;
}

static void count_cipher(EVP_CIPHER *c, void *arg)
{
    (void)c;
    (*(int *)arg)++;
}

static void count_digest(EVP_MD *m, void *arg)
{
    (void)m;
    (*(int *)arg)++;
}

/* Each extra method of any kind costs every certificate read: the
 * context must not quietly grow back to the default provider's. */
static void keeps_only_what_tls_uses(void **state)
{
    (void)state;
    mk__tls_lib *lib;
    assert_int_equal(mk__tls_lib_hold(&lib), 0);
    OSSL_LIB_CTX *ctx = mk__tls_lib_ctx(lib);
    int decoders = 0, encoders = 0, keymgmts = 0, ciphers = 0, digests = 0;
    OSSL_DECODER_do_all_provided(ctx, count_decoder, &decoders);
    OSSL_ENCODER_do_all_provided(ctx, count_encoder, &encoders);
    EVP_KEYMGMT_do_all_provided(ctx, count_keymgmt, &keymgmts);
    EVP_CIPHER_do_all_provided(ctx, count_cipher, &ciphers);
    EVP_MD_do_all_provided(ctx, count_digest, &digests);
    assert_int_equal(decoders, 1);
    assert_int_equal(encoders, 1);
    assert_int_equal(keymgmts, 3);
    assert_int_equal(ciphers, 4);
    assert_int_equal(digests, 6);
    /* What is kept is what TLS asks for by name. */
    EVP_CIPHER *gcm = EVP_CIPHER_fetch(ctx, "AES-128-GCM", NULL);
    EVP_MD *sha = EVP_MD_fetch(ctx, "SHA256", NULL);
    assert_non_null(gcm);
    assert_non_null(sha);
    EVP_CIPHER_free(gcm);
    EVP_MD_free(sha);
    EVP_CIPHER *cbc = EVP_CIPHER_fetch(ctx, "AES-128-CBC", NULL);
    assert_null(cbc);
    mk__tls_lib_release(lib);
}

static void one_context_for_every_holder(void **state)
{
    (void)state;
    mk__tls_lib *a, *b, *c;
    assert_int_equal(mk__tls_lib_hold(&a), 0);
    assert_int_equal(mk__tls_lib_hold(&b), 0);
    assert_ptr_equal(a, b);
    mk__tls_lib_release(a);
    /* b still holds it: still usable. */
    EVP_MD *sha = EVP_MD_fetch(mk__tls_lib_ctx(b), "SHA2-384", NULL);
    assert_non_null(sha);
    EVP_MD_free(sha);
    mk__tls_lib_release(b);
    /* Freed with its last holder (ASan would report a leak otherwise);
     * the next holder gets a working one again. */
    assert_int_equal(mk__tls_lib_hold(&c), 0);
    int decoders = 0;
    OSSL_DECODER_do_all_provided(mk__tls_lib_ctx(c), count_decoder,
                                 &decoders);
    assert_int_equal(decoders, 1);
    mk__tls_lib_release(c);
    mk__tls_lib_release(NULL);
}

/* A self-signed certificate for a new key of `type`, DER-encoded. */
static int cert_der(const char *type, const char *param, unsigned char **der)
{
    EVP_PKEY *pk = param ? EVP_PKEY_Q_keygen(NULL, NULL, type, param)
                         : EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(pk);
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, pk), 1);
    assert_true(X509_sign(x, pk, param ? EVP_sha256() : NULL) > 0);
    *der = NULL;
    int n = i2d_X509(x, der);
    assert_true(n > 0);
    X509_free(x);
    EVP_PKEY_free(pk);
    return n;
}

static X509 *read_in(OSSL_LIB_CTX *ctx, const unsigned char *der, int n)
{
    X509 *x = X509_new_ex(ctx, NULL);
    assert_non_null(x);
    const unsigned char *p = der;
    assert_non_null(d2i_X509(&x, &p, n));
    return x;
}

static void peer_keys_read_and_only_ed25519(void **state)
{
    (void)state;
    mk__tls_lib *lib;
    assert_int_equal(mk__tls_lib_hold(&lib), 0);
    OSSL_LIB_CTX *ctx = mk__tls_lib_ctx(lib);

    unsigned char *der;
    int n = cert_der("ED25519", NULL, &der);
    X509 *x = read_in(ctx, der, n);
    X509 *y = read_in(NULL, der, n);
    EVP_PKEY *k = X509_get0_pubkey(x);
    assert_non_null(k);
    assert_true(EVP_PKEY_is_a(k, "ED25519"));
    unsigned char raw[32], want[32];
    size_t len = sizeof raw, wlen = sizeof want;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &len), 1);
    assert_int_equal(EVP_PKEY_get_raw_public_key(X509_get0_pubkey(y), want,
                                                 &wlen),
                     1);
    assert_int_equal(len, 32);
    assert_memory_equal(raw, want, 32);
    /* The certificate's own signature checks out with the key read here:
     * the signature code runs on the kept key manager's keys. */
    assert_int_equal(X509_verify(x, k), 1);
    X509_free(x);
    X509_free(y);
    OPENSSL_free(der);

    /* A P-256 certificate is still a certificate, but its key does not
     * read: the handshake's check finds no key and refuses the peer. */
    n = cert_der("EC", "P-256", &der);
    x = read_in(ctx, der, n);
    assert_null(X509_get0_pubkey(x));
    X509_free(x);
    OPENSSL_free(der);
    ERR_clear_error();
    mk__tls_lib_release(lib);
}

/* Transports' contexts share one library context, and the last freed
 * takes it along. */
static void contexts_share_and_free(void **state)
{
    (void)state;
    mk_keypair k1, k2;
    mk_keypair_generate(&k1);
    mk_keypair_generate(&k2);
    SSL_CTX *a, *b;
    char err[MK_ERRMSG_SIZE];
    assert_int_equal(mk__tls_ctx_new(&k1, &a, err), 0);
    assert_int_equal(mk__tls_ctx_new(&k2, &b, err), 0);
    mk__tls_lib *lib;
    assert_int_equal(mk__tls_lib_hold(&lib), 0);
    /* Each holds the one library context (tls.c keeps it as app data). */
    assert_ptr_equal(SSL_CTX_get_app_data(a), lib);
    assert_ptr_equal(SSL_CTX_get_app_data(b), lib);
    mk__tls_lib_release(lib);
    mk__tls_ctx_free(a);
    mk__tls_ctx_free(b);
    mk__tls_ctx_free(NULL);
}

/* Between mk__tls_enter and mk__tls_leave the thread's default context
 * is the transports' (where OpenSSL 3.0 reads sessions back); after, it
 * is what it was. */
static void enter_and_leave_swap_the_default(void **state)
{
    (void)state;
    mk_keypair k;
    mk_keypair_generate(&k);
    SSL_CTX *ctx;
    assert_int_equal(mk__tls_ctx_new(&k, &ctx, NULL), 0);
    EVP_CIPHER *cbc = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    assert_non_null(cbc); /* OpenSSL's default context has it */
    EVP_CIPHER_free(cbc);

    OSSL_LIB_CTX *prev = mk__tls_enter(ctx);
    assert_non_null(prev);
    cbc = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    assert_null(cbc); /* ours does not */
    ERR_clear_error();
    unsigned char *der;
    int n = cert_der("ED25519", NULL, &der); /* made and read in ours */
    X509 *x = read_in(NULL, der, n);
    assert_non_null(X509_get0_pubkey(x));
    mk__tls_leave(prev);

    cbc = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    assert_non_null(cbc);
    EVP_CIPHER_free(cbc);
    X509_free(x); /* made in the transports' context, freed before it */
    OPENSSL_free(der);
    mk__tls_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_only_what_tls_uses),
        cmocka_unit_test(one_context_for_every_holder),
        cmocka_unit_test(peer_keys_read_and_only_ed25519),
        cmocka_unit_test(contexts_share_and_free),
        cmocka_unit_test(enter_and_leave_swap_the_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
