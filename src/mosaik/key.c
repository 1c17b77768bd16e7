/* Ed25519 node keys (include/mosaik/key.h).
 *
 * Signing uses libsodium, whose API is the clearest for raw Ed25519; the
 * file format is OpenSSL's PKCS#8 PEM so operators can inspect keys with
 * standard tools. TLS certificates are made from the same seed elsewhere
 * (src/mosaik/tls.c).
 */
#include "mosaik/key.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mosaik/error.h"

static int sodium_ready(void)
{
    /* sodium_init is idempotent and thread-safe; it picks the fastest
     * implementations once per process. */
    return sodium_init() < 0 ? MK_EIO : 0;
}

void mk_keypair_from_seed(mk_keypair *kp, const uint8_t seed[MK_SEED_LEN])
{
    (void)sodium_ready();
    memcpy(kp->seed, seed, MK_SEED_LEN);
    crypto_sign_seed_keypair(kp->pub.b, kp->sk, seed);
}

int mk_keypair_generate(mk_keypair *kp)
{
    if (sodium_ready() < 0)
        return MK_EIO;
    uint8_t seed[MK_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    mk_keypair_from_seed(kp, seed);
    sodium_memzero(seed, sizeof seed);
    return 0;
}

void mk_sign(const mk_keypair *kp, const void *msg, size_t len,
             uint8_t sig[MK_SIG_LEN])
{
    crypto_sign_detached(sig, NULL, msg, len, kp->sk);
}

int mk_verify(const mk_peer_id *signer, const void *msg, size_t len,
              const uint8_t sig[MK_SIG_LEN])
{
    if (sodium_ready() < 0)
        return MK_EIO;
    return crypto_sign_verify_detached(sig, msg, len, signer->b) == 0
               ? 0
               : MK_EBAD_SIGNATURE;
}

/* A PEM key file is a few hundred bytes; anything this big is not one. */
#define KEY_FILE_MAX 65536

/* OpenSSL's default for an encrypted PEM is to prompt on the terminal,
 * which would hang a daemon or a script: refuse instead, and remember
 * that a passphrase was wanted so the error can say so. */
static int refuse_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(int *)u = 1;
    return -1;
}

/* The whole file into buf (KEY_FILE_MAX): its length, or a negative code
 * with the reason in err. */
static int read_key_file(const char *path, char *buf, char *err)
{
    /* O_NONBLOCK: opening a FIFO for reading otherwise waits for a
     * writer, forever; O_NOCTTY: a terminal device must not become ours.
     * Only after fstat says it is a regular file is it read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int rc = -errno;
        return mk_errf(err, rc, "%s: %s", path, mk_strerror(rc));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return mk_errf(err, rc, "%s: %s", path, mk_strerror(rc));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mk_errf(err, MK_EINVAL, "%s: %s", path,
                       S_ISDIR(st.st_mode) ? "is a directory, not a key file"
                       : S_ISFIFO(st.st_mode) ? "is a FIFO, not a key file"
                                              : "is not a regular file");
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return mk_errf(
            err, MK_EKEY_PERMS,
            "%s: key file is readable by group or others; run chmod 600 on it",
            path);
    }
    if (st.st_size > KEY_FILE_MAX) {
        close(fd);
        return mk_errf(err, MK_EMSGSIZE, "%s: far too large for a key file",
                       path);
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, KEY_FILE_MAX - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int rc = -errno;
            close(fd);
            return mk_errf(err, rc, "%s: %s", path, mk_strerror(rc));
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == KEY_FILE_MAX) { /* it grew since fstat */
            close(fd);
            return mk_errf(err, MK_EMSGSIZE,
                           "%s: far too large for a key file", path);
        }
    }
    close(fd);
    return (int)n;
}

/* The one PKCS#8 an Ed25519 seed has without attributes or a public key
 * (RFC 8410 §7): what mk_keypair_save and `openssl genpkey` write. */
static const uint8_t PKCS8_ED25519_PREFIX[16] = {
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
    0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};

/* The seed of a key file in exactly that form, read without OpenSSL's
 * decoders: PEM_read_bio_PrivateKey tries every decoder the providers
 * offer and was a third of a daemon's start (about 3 ms, which every CLI
 * command pays too). Anything else, valid or not, is left to OpenSSL
 * (false). `text` is NUL-terminated. */
static bool seed_from_pem(const char *text, uint8_t seed[MK_SEED_LEN])
{
    static const char begin[] = "-----BEGIN PRIVATE KEY-----";
    static const char end[] = "-----END PRIVATE KEY-----";
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (strncmp(p, begin, sizeof begin - 1) != 0)
        return false;
    p += sizeof begin - 1;
    const char *q = strstr(p, end);
    if (!q)
        return false;
    /* One block and nothing after it; a second BEGIN before the END
     * would stop the base64 below. */
    for (const char *r = q + sizeof end - 1; *r; r++)
        if (*r != ' ' && *r != '\t' && *r != '\r' && *r != '\n')
            return false;
    uint8_t der[64];
    size_t len = 0;
    const char *stop = NULL;
    if (sodium_base642bin(der, sizeof der, p, (size_t)(q - p), " \t\r\n",
                          &len, &stop, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        stop != q || len != sizeof PKCS8_ED25519_PREFIX + MK_SEED_LEN ||
        memcmp(der, PKCS8_ED25519_PREFIX, sizeof PKCS8_ED25519_PREFIX) != 0) {
        sodium_memzero(der, sizeof der);
        return false;
    }
    memcpy(seed, der + sizeof PKCS8_ED25519_PREFIX, MK_SEED_LEN);
    sodium_memzero(der, sizeof der);
    return true;
}

int mk_keypair_load(mk_keypair *kp, const char *path, char *err)
{
    char *buf = malloc(KEY_FILE_MAX);
    if (!buf)
        return mk_errf(err, MK_ENOMEM, "%s: out of memory", path);
    int n = read_key_file(path, buf, err);
    if (n < 0) {
        free(buf);
        return n;
    }
    uint8_t seed[MK_SEED_LEN];
    buf[n] = '\0'; /* n < KEY_FILE_MAX */
    if (sodium_ready() == 0 && seed_from_pem(buf, seed)) {
        OPENSSL_cleanse(buf, KEY_FILE_MAX);
        free(buf);
        mk_keypair_from_seed(kp, seed);
        sodium_memzero(seed, sizeof seed);
        return 0;
    }
    int wanted_passphrase = 0;
    EVP_PKEY *pk = NULL;
    BIO *bio = BIO_new_mem_buf(buf, n);
    if (bio) {
        pk = PEM_read_bio_PrivateKey(bio, NULL, refuse_passphrase,
                                     &wanted_passphrase);
        BIO_free(bio);
    }
    ERR_clear_error();
    /* Checked on the text as well: whether OpenSSL asks the callback for
     * a passphrase depends on the PEM flavour. */
    bool encrypted = wanted_passphrase || strstr(buf, "ENCRYPTED") != NULL;
    OPENSSL_cleanse(buf, KEY_FILE_MAX);
    free(buf);
    if (!bio) {
        EVP_PKEY_free(pk);
        return mk_errf(err, MK_ENOMEM, "%s: out of memory", path);
    }
    size_t len = sizeof seed;
    int ok = pk && EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519 &&
             EVP_PKEY_get_raw_private_key(pk, seed, &len) == 1 &&
             len == sizeof seed;
    EVP_PKEY_free(pk);
    if (!ok && encrypted)
        return mk_errf(
            err, MK_EUNSUPPORTED,
            "%s: encrypted keys are not supported (no passphrase is ever "
            "asked for); store it unencrypted with mode 0600",
            path);
    if (!ok)
        return mk_errf(err, MK_EDECODE,
                       "%s: not an Ed25519 private key in PKCS#8 PEM", path);
    mk_keypair_from_seed(kp, seed);
    sodium_memzero(seed, sizeof seed);
    return 0;
}

int mk_keypair_save(const mk_keypair *kp, const char *path, char *err)
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
                                                kp->seed, MK_SEED_LEN);
    if (!pk)
        return mk_errf(err, MK_ENOMEM, "%s: cannot build the key", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = -errno;
        EVP_PKEY_free(pk);
        return mk_errf(err, rc, "%s: %s", path,
                       rc == MK_EEXIST ? "exists; refusing to replace a key"
                                       : mk_strerror(rc));
    }
    /* O_CREAT honours the umask; the mode must be exactly 0600. */
    if (fchmod(fd, 0600) != 0) {
        int rc = -errno;
        close(fd);
        unlink(path);
        EVP_PKEY_free(pk);
        return mk_errf(err, rc, "%s: %s", path, mk_strerror(rc));
    }
    FILE *fp = fdopen(fd, "w");
    int ok = fp && PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    if (fp)
        ok = (fclose(fp) == 0) && ok;
    else
        close(fd);
    EVP_PKEY_free(pk);
    if (!ok) {
        unlink(path);
        return mk_errf(err, MK_EIO, "%s: cannot write the key", path);
    }
    return 0;
}
