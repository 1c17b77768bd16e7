/* Key files: a saved key loads back, and every file that is not a plain
 * key is refused at once with a reason: loose permissions, a FIFO (which
 * would block a reader forever), a directory, a device, an encrypted key
 * (which OpenSSL would otherwise answer with a passphrase prompt). An
 * alarm turns a hang into a failure instead of a stuck test run.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "mosaik/error.h"
#include "mosaik/key.h"
#include "mosaik/sig_cache.h"
#include "testutil.h"

typedef struct fx {
    char dir[64];
    char path[128];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/test_key.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    /* Nothing here may take more than a moment. */
    alarm(20);
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    alarm(0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static const char *at(fx *f, const char *name)
{
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, name);
    return f->path;
}

static void saved_key_loads(void **state)
{
    fx *f = *state;
    mk_keypair a, b;
    char err[MK_ERRMSG_SIZE];
    assert_int_equal(mk_keypair_generate(&a), 0);
    assert_int_equal(mk_keypair_save(&a, at(f, "k.pem"), err), 0);
    assert_int_equal(mk_keypair_load(&b, f->path, err), 0);
    assert_memory_equal(a.pub.b, b.pub.b, sizeof a.pub.b);
    chmod(f->path, 0644);
    assert_int_equal(mk_keypair_load(&b, f->path, err), MK_EKEY_PERMS);
}

static void fifo_is_refused_without_blocking(void **state)
{
    fx *f = *state;
    mk_keypair k;
    char err[MK_ERRMSG_SIZE] = "";
    assert_int_equal(mkfifo(at(f, "fifo"), 0600), 0);
    /* Nobody ever writes to it: a blocking open would never return. */
    assert_int_equal(mk_keypair_load(&k, f->path, err), MK_EINVAL);
    assert_non_null(strstr(err, "FIFO"));
    assert_non_null(strstr(err, f->path));
}

static void directory_and_device_are_refused(void **state)
{
    fx *f = *state;
    mk_keypair k;
    char err[MK_ERRMSG_SIZE] = "";
    assert_int_equal(mk_keypair_load(&k, f->dir, err), MK_EINVAL);
    assert_non_null(strstr(err, "directory"));
    assert_int_equal(mk_keypair_load(&k, "/dev/zero", err), MK_EINVAL);
    assert_non_null(strstr(err, "not a regular file"));
}

static void encrypted_key_is_refused_without_prompting(void **state)
{
    fx *f = *state;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm ed25519 -aes256 -pass pass:secret "
             "-out %s 2>/dev/null && chmod 600 %s",
             at(f, "enc.pem"), f->path);
    if (system(cmd) != 0)
        skip(); /* no openssl(1) here */
    /* With a terminal attached, OpenSSL's default would prompt on it;
     * whether or not one is, the answer must be a refusal. */
    mk_keypair k;
    char err[MK_ERRMSG_SIZE] = "";
    assert_int_equal(mk_keypair_load(&k, f->path, err), MK_EUNSUPPORTED);
    assert_non_null(strstr(err, "encrypted keys are not supported"));
}

static void garbage_is_not_a_key(void **state)
{
    fx *f = *state;
    int fd = open(at(f, "junk.pem"), O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello\n", 6), 6);
    close(fd);
    mk_keypair k;
    char err[MK_ERRMSG_SIZE] = "";
    assert_int_equal(mk_keypair_load(&k, f->path, err), MK_EDECODE);
    assert_non_null(strstr(err, "Ed25519"));
}

/* A PEM "PRIVATE KEY" file of `der`, lines of 64 ending in `eol`. */
static void write_pem(fx *f, const char *name, const uint8_t *der, size_t n,
                      const char *eol)
{
    char b64[256], text[512];
    sodium_bin2base64(b64, sizeof b64, der, n, sodium_base64_VARIANT_ORIGINAL);
    size_t len = (size_t)snprintf(text, sizeof text,
                                  "-----BEGIN PRIVATE KEY-----%s", eol);
    for (size_t at = 0; b64[at]; at += 64)
        len += (size_t)snprintf(text + len, sizeof text - len, "%.64s%s",
                                b64 + at, eol);
    len += (size_t)snprintf(text + len, sizeof text - len,
                            "-----END PRIVATE KEY-----%s", eol);
    int fd = open(at(f, name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* mk_keypair_load reads the one PKCS#8 form an Ed25519 seed has by
 * itself and hands anything else to OpenSSL: both must give the same
 * key, and nothing but an Ed25519 key may load. */
static void pem_forms_load_alike(void **state)
{
    fx *f = *state;
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(7 * i + 1);
    mk_keypair want, k;
    mk_keypair_from_seed(&want, seed);
    char err[MK_ERRMSG_SIZE] = "";

    /* RFC 8410's v1 form, as mk_keypair_save and openssl genpkey write
     * it, with Unix and with DOS line ends. */
    uint8_t v1[48] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                      0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
    memcpy(v1 + 16, seed, 32);
    write_pem(f, "v1.pem", v1, sizeof v1, "\n");
    assert_int_equal(mk_keypair_load(&k, f->path, err), 0);
    assert_memory_equal(k.pub.b, want.pub.b, 32);
    write_pem(f, "v1dos.pem", v1, sizeof v1, "\r\n");
    assert_int_equal(mk_keypair_load(&k, f->path, err), 0);
    assert_memory_equal(k.pub.b, want.pub.b, 32);

    /* Text before the block (as `openssl pkcs12` writes "Bag Attributes"
     * lines) is not the form read directly: OpenSSL reads it, alike. */
    char text[512];
    int fd = open(at(f, "v1.pem"), O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    assert_true(n > 0);
    text[n] = '\0';
    fd = open(at(f, "bag.pem"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "Bag Attributes\n", 15), 15);
    assert_int_equal(write(fd, text, (size_t)n), n);
    close(fd);
    assert_int_equal(mk_keypair_load(&k, f->path, err), 0);
    assert_memory_equal(k.pub.b, want.pub.b, 32);

    /* v2 (RFC 5958) adds the public key; OpenSSL 3.0 reads no v2 key, and
     * neither path takes it. */
    uint8_t v2[83] = {0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03,
                      0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
    memcpy(v2 + 16, seed, 32);
    v2[48] = 0x81;
    v2[49] = 0x21;
    v2[50] = 0x00;
    memcpy(v2 + 51, want.pub.b, 32);
    write_pem(f, "v2.pem", v2, sizeof v2, "\n");
    assert_int_equal(mk_keypair_load(&k, f->path, err), MK_EDECODE);

    /* An X25519 key (OID 1.3.101.110) of the same shape, and a v1 key one
     * byte short, are not Ed25519 keys. */
    uint8_t x25519[48];
    memcpy(x25519, v1, sizeof v1);
    x25519[11] = 0x6e;
    write_pem(f, "x.pem", x25519, sizeof x25519, "\n");
    assert_int_equal(mk_keypair_load(&k, f->path, err), MK_EDECODE);
    assert_non_null(strstr(err, "Ed25519"));
    write_pem(f, "short.pem", v1, sizeof v1 - 1, "\n");
    assert_int_equal(mk_keypair_load(&k, f->path, err), MK_EDECODE);
}

/* The memo answers only for the exact triple that verified: a changed
 * message, signer or signature is verified afresh (and fails), failures
 * are never remembered, and an evicted triple is verified again. */
static void sig_cache_remembers_only_what_verified(void **state)
{
    (void)state;
    uint8_t seed[MK_SEED_LEN] = {7}, other_seed[MK_SEED_LEN] = {8};
    mk_keypair kp, other;
    mk_keypair_from_seed(&kp, seed);
    mk_keypair_from_seed(&other, other_seed);
    uint8_t msg[32] = "a command's digest", sig[MK_SIG_LEN];
    mk_sign(&kp, msg, sizeof msg, sig);

    mk__sig_cache *c = mk__sig_cache_new(2);
    assert_non_null(c);
    uint64_t hits, verifies;
    assert_int_equal(mk__sig_cache_verify(c, &kp.pub, msg, sizeof msg, sig), 0);
    assert_int_equal(mk__sig_cache_verify(c, &kp.pub, msg, sizeof msg, sig), 0);
    mk__sig_cache_stats(c, &hits, &verifies);
    assert_int_equal(hits, 1);
    assert_int_equal(verifies, 1);

    uint8_t bad[MK_SIG_LEN];
    memcpy(bad, sig, sizeof bad);
    bad[5] ^= 1;
    for (int i = 0; i < 2; i++)
        assert_int_equal(mk__sig_cache_verify(c, &kp.pub, msg, sizeof msg, bad),
                         MK_EBAD_SIGNATURE);
    assert_int_equal(
        mk__sig_cache_verify(c, &other.pub, msg, sizeof msg, sig),
        MK_EBAD_SIGNATURE);
    uint8_t msg2[32] = "another digest";
    assert_int_equal(mk__sig_cache_verify(c, &kp.pub, msg2, sizeof msg2, sig),
                     MK_EBAD_SIGNATURE);
    mk__sig_cache_stats(c, &hits, &verifies);
    assert_int_equal(hits, 1);
    assert_int_equal(verifies, 5);

    /* Fill the two slots with other triples until the first is pushed
     * out: it is then verified, not answered from memory. */
    for (int i = 0; i < 64; i++) {
        uint8_t m[32] = {(uint8_t)i, 1}, s2[MK_SIG_LEN];
        mk_sign(&kp, m, sizeof m, s2);
        assert_int_equal(mk__sig_cache_verify(c, &kp.pub, m, sizeof m, s2), 0);
    }
    mk__sig_cache_stats(c, &hits, &verifies);
    uint64_t h0 = hits, v0 = verifies;
    assert_int_equal(mk__sig_cache_verify(c, &kp.pub, msg, sizeof msg, sig), 0);
    mk__sig_cache_stats(c, &hits, &verifies);
    assert_int_equal(hits, h0);
    assert_int_equal(verifies, v0 + 1);
    mk__sig_cache_free(c);

    /* No cache: a plain verify. */
    assert_int_equal(mk__sig_cache_verify(NULL, &kp.pub, msg, sizeof msg, sig),
                     0);
    assert_int_equal(
        mk__sig_cache_verify(NULL, &kp.pub, msg, sizeof msg, bad),
        MK_EBAD_SIGNATURE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(saved_key_loads),
        T(fifo_is_refused_without_blocking),
        T(directory_and_device_are_refused),
        T(encrypted_key_is_refused_without_prompting),
        T(garbage_is_not_a_key),
        T(pem_forms_load_alike),
#undef T
        cmocka_unit_test(sig_cache_remembers_only_what_verified),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
