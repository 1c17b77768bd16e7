/* The transports' OpenSSL library context (tls_lib.h).
 *
 * The context holds one provider of ours, a filter: its algorithms are
 * the default provider's own tables, handed out as they are, except that
 * of decoders and encoders it offers only the one each a handshake
 * needs, and of key managers, ciphers and digests only those TLS 1.3
 * with our suites uses. Its provider context *is* the default provider's, so the default
 * provider's functions run with exactly the state they expect; the
 * default provider is loaded into a second context that only the filter
 * reads from.
 *
 * Measured on the development VM (OpenSSL 3.0.19, callgrind): reading a
 * peer's certificate took 1.08 M instructions in OpenSSL's default
 * context and 0.25 M here. 100 full handshakes and 50 resumed cost the
 * dialer's SSL_do_handshake 641 M before and 551 M now, the acceptor's
 * 823 M and 609 M (with mk__tls_enter, tls.h).
 */
#include "mosaik/tls_lib.h"

#include <openssl/core_dispatch.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"

#define FILTER_NAME "mosaik-tls"

struct mk__tls_lib {
    OSSL_LIB_CTX *outer; /* the transports': the filter alone */
    OSSL_LIB_CTX *inner; /* the default provider, for the filter */
    OSSL_PROVIDER *deflt;
    OSSL_PROVIDER *filter;
};

/* What the filter hands out: the default provider's entry points and the
 * algorithms it keeps. These are addresses of functions and tables inside
 * libcrypto, the same for every instance of the default provider, so
 * they are read once, from the first instance, under lib_lock. */
static struct {
    OSSL_FUNC_provider_query_operation_fn *query;
    OSSL_DISPATCH dispatch[5];
    OSSL_ALGORITHM decoders[2]; /* the one kept, then the end mark */
    OSSL_ALGORITHM encoders[2];
    OSSL_ALGORITHM keymgmts[4];
    OSSL_ALGORITHM ciphers[5];
    OSSL_ALGORITHM digests[7];
    bool ok;
} shared;

/* The algorithms kept of the kinds that weigh. Listing every method of
 * one kind, which the decoder does for key managers on every key, walks
 * all the methods the context has made, of every kind: with the default
 * provider's 124 ciphers and 22 digests in it that was 350 k instructions
 * per certificate. So these kinds are cut to what TLS 1.3 with our suites
 * uses:
 * - keys: Ed25519 for certificates, X25519 for the key exchange (libssl
 *   then offers only that group, the one it would pick anyway) and HMAC,
 *   which binds a resumed session's ticket to the handshake (a key of its
 *   own in OpenSSL 3.0);
 * - ciphers: the three suites' AEADs, and AES-256-CBC, which seals
 *   tickets;
 * - digests: the suites' hashes, SHA-512 for Ed25519, and MD5 and SHA-1,
 *   without which libssl refuses to make a context at all. */
static const char *const keep_keys[] = {"ED25519", "X25519", "HMAC"};
static const char *const keep_ciphers[] = {
    "AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305", "AES-256-CBC"};
static const char *const keep_digests[] = {"SHA2-256", "SHA2-384", "SHA2-512",
                                           "SHA1", "MD5", "MD5-SHA1"};

/* The one context of the process, its holders, and the default provider
 * a filter being loaded adopts: a provider's init function is given
 * nothing of its loader's, and OSSL_PROVIDER_load runs it at once, so
 * `loading` is set just around that call. All three under `lib_lock`. */
static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;
static mk__tls_lib *lib_one;
static unsigned lib_holders;
static OSSL_PROVIDER *loading;

/* What the filter keeps of operation `op`, or NULL for all of it. */
static const OSSL_ALGORITHM *kept(int op)
{
    switch (op) {
    case OSSL_OP_DECODER:
        return shared.decoders;
    case OSSL_OP_ENCODER:
        return shared.encoders;
    case OSSL_OP_KEYMGMT:
        return shared.keymgmts;
    case OSSL_OP_CIPHER:
        return shared.ciphers;
    case OSSL_OP_DIGEST:
        return shared.digests;
    default:
        return NULL;
    }
}

static const OSSL_ALGORITHM *filter_query(void *provctx, int op,
                                          int *no_cache)
{
    const OSSL_ALGORITHM *k = kept(op);
    if (!k)
        return shared.query(provctx, op, no_cache);
    *no_cache = 0;
    return k;
}

/* Whether the comma-separated property definition `defn` holds `prop`. */
static bool has_prop(const char *defn, const char *prop)
{
    size_t n = strlen(prop);
    for (const char *p = defn; p; p = strchr(p, ',')) {
        if (*p == ',')
            p++;
        if (strncmp(p, prop, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    }
    return false;
}

/* Whether `a` is first named `name` (names are colon-separated). */
static bool named(const OSSL_ALGORITHM *a, const char *name)
{
    size_t n = strlen(name);
    return strncmp(a->algorithm_names, name, n) == 0 &&
           (a->algorithm_names[n] == ':' || a->algorithm_names[n] == '\0');
}

/* The decoder (`dir` "input") or encoder ("output") between an Ed25519
 * key and the DER SubjectPublicKeyInfo of a certificate: a peer's key is
 * read with the one, our own written into our certificate with the
 * other. */
static const OSSL_ALGORITHM *find_spki(const OSSL_ALGORITHM *a,
                                       const char *dir)
{
    char want[16];
    snprintf(want, sizeof want, "%s=der", dir);
    for (; a && a->algorithm_names; a++)
        if (named(a, "ED25519") && a->property_definition &&
            has_prop(a->property_definition, want) &&
            has_prop(a->property_definition,
                     "structure=SubjectPublicKeyInfo"))
            return a;
    return NULL;
}

/* Copies into `out` (room for `room`, end mark included) the entries of
 * `all` named by `names`, in their order; whether all were found. */
static bool keep(const OSSL_ALGORITHM *all, const char *const *names,
                 size_t nnames, OSSL_ALGORITHM *out, size_t room)
{
    size_t n = 0;
    for (size_t i = 0; i < nnames; i++) {
        for (const OSSL_ALGORITHM *a = all; a && a->algorithm_names; a++) {
            if (named(a, names[i]) && n + 1 < room) {
                out[n++] = *a;
                break;
            }
        }
    }
    memset(&out[n], 0, sizeof out[n]);
    return n == nnames;
}

static void read_shared(void)
{
    size_t n = 0;
    for (const OSSL_DISPATCH *d = OSSL_PROVIDER_get0_dispatch(loading);
         d && d->function_id != 0; d++) {
        switch (d->function_id) {
        case OSSL_FUNC_PROVIDER_QUERY_OPERATION:
            shared.query = (OSSL_FUNC_provider_query_operation_fn *)d->function;
            break;
        case OSSL_FUNC_PROVIDER_GETTABLE_PARAMS:
        case OSSL_FUNC_PROVIDER_GET_PARAMS:
        case OSSL_FUNC_PROVIDER_GET_CAPABILITIES: /* TLS groups, for libssl */
            if (n + 2 < sizeof shared.dispatch / sizeof shared.dispatch[0])
                shared.dispatch[n++] = *d; /* room left for query, end */
            break;
        default: /* teardown is the loader's business, unquery unused */
            break;
        }
    }
    if (!shared.query)
        return;
    shared.dispatch[n++] = (OSSL_DISPATCH){
        OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))filter_query};
    shared.dispatch[n] = (OSSL_DISPATCH){0, NULL};
    void *provctx = OSSL_PROVIDER_get0_provider_ctx(loading);
    int no_cache = 0;
    const OSSL_ALGORITHM *dec = find_spki(
        shared.query(provctx, OSSL_OP_DECODER, &no_cache), "input");
    const OSSL_ALGORITHM *enc = find_spki(
        shared.query(provctx, OSSL_OP_ENCODER, &no_cache), "output");
    if (!dec || !enc)
        return;
    shared.decoders[0] = *dec;
    shared.encoders[0] = *enc;
#define KEEP(op, names, out)                                                  \
    keep(shared.query(provctx, op, &no_cache), names,                         \
         sizeof names / sizeof names[0], out, sizeof out / sizeof out[0])
    shared.ok = KEEP(OSSL_OP_KEYMGMT, keep_keys, shared.keymgmts) &&
                KEEP(OSSL_OP_CIPHER, keep_ciphers, shared.ciphers) &&
                KEEP(OSSL_OP_DIGEST, keep_digests, shared.digests);
#undef KEEP
}

static int filter_init(const OSSL_CORE_HANDLE *handle,
                       const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                       void **provctx)
{
    (void)handle;
    (void)in;
    if (!loading)
        return 0;
    if (!shared.ok)
        read_shared();
    if (!shared.ok)
        return 0;
    *out = shared.dispatch;
    *provctx = OSSL_PROVIDER_get0_provider_ctx(loading);
    return 1;
}

static void lib_free(mk__tls_lib *lib)
{
    /* The filter runs on the default provider's context: it goes first. */
    if (lib->filter)
        OSSL_PROVIDER_unload(lib->filter);
    OSSL_LIB_CTX_free(lib->outer);
    if (lib->deflt)
        OSSL_PROVIDER_unload(lib->deflt);
    OSSL_LIB_CTX_free(lib->inner);
    free(lib);
}

static int lib_new(mk__tls_lib **out)
{
    mk__tls_lib *lib = calloc(1, sizeof *lib);
    if (!lib)
        return MK_ENOMEM;
    int rc = MK_ENOMEM;
    lib->inner = OSSL_LIB_CTX_new();
    lib->outer = OSSL_LIB_CTX_new();
    if (!lib->inner || !lib->outer)
        goto fail;
    rc = MK_ETLS;
    lib->deflt = OSSL_PROVIDER_load(lib->inner, "default");
    if (!lib->deflt ||
        OSSL_PROVIDER_add_builtin(lib->outer, FILTER_NAME, filter_init) != 1)
        goto fail;
    loading = lib->deflt;
    lib->filter = OSSL_PROVIDER_load(lib->outer, FILTER_NAME);
    loading = NULL;
    if (!lib->filter)
        goto fail;
    *out = lib;
    return 0;

fail:
    ERR_clear_error();
    lib_free(lib);
    return rc;
}

int mk__tls_lib_hold(mk__tls_lib **out)
{
    int rc = 0;
    pthread_mutex_lock(&lib_lock);
    if (lib_holders == 0)
        rc = lib_new(&lib_one);
    if (rc == 0) {
        lib_holders++;
        *out = lib_one;
    }
    pthread_mutex_unlock(&lib_lock);
    return rc;
}

OSSL_LIB_CTX *mk__tls_lib_ctx(const mk__tls_lib *lib)
{
    return lib->outer;
}

void mk__tls_lib_release(mk__tls_lib *lib)
{
    if (!lib)
        return;
    pthread_mutex_lock(&lib_lock);
    if (--lib_holders == 0) {
        lib_free(lib_one);
        lib_one = NULL;
    }
    pthread_mutex_unlock(&lib_lock);
}
