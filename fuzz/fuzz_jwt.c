/* libFuzzer target for the JWT ticket parser and validator.
 *
 * The first input byte picks what the rest is:
 *   mode 0  a whole token, verified as it comes (shape, base64url, header,
 *           signature: nearly everything random stops at the signature);
 *   mode 1  claims JSON, signed here under a fixed EdDSA header, so the
 *           fuzzer reaches the claim checks behind the signature;
 *   mode 2  "header NUL claims", both signed here, for the header checks.
 * Bits 2 and 3 of that byte switch allow_non_expiring and a max lifetime.
 *
 * Nothing may crash or leak. A refusal must come with a printable reason,
 * an acceptance with an expiry after "now", and base64url must have exactly
 * one spelling: whatever decodes must re-encode to the same characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/jwt.h"

#define NOW_MS 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_b64(const uint8_t *data, size_t size)
{
    if (size > MK_JWT_MAX_LEN)
        return;
    uint8_t *dec = malloc(size + 1);
    char *enc = malloc(size + 4);
    size_t n;
    if (mk_b64url_decode((const char *)data, size, dec, size, &n, NULL) == 0) {
        mk_b64url_encode(dec, n, enc);
        if (strlen(enc) != size || memcmp(enc, data, size) != 0)
            abort(); /* two spellings of the same bytes */
    }
    free(enc);
    free(dec);
}

/* A token over `header` and `claims` (not NUL-terminated), signed by kp. */
static char *sign(const mk_keypair *kp, const char *header, size_t hn,
                  const char *claims, size_t cn)
{
    size_t hl = mk_b64url_encoded_len(hn), cl = mk_b64url_encoded_len(cn);
    char *t = malloc(hl + cl + mk_b64url_encoded_len(MK_SIG_LEN) + 3);
    if (!t)
        return NULL;
    mk_b64url_encode(header, hn, t);
    t[hl] = '.';
    mk_b64url_encode(claims, cn, t + hl + 1);
    uint8_t sig[MK_SIG_LEN];
    mk_sign(kp, t, hl + 1 + cl, sig);
    t[hl + 1 + cl] = '.';
    mk_b64url_encode(sig, sizeof sig, t + hl + 1 + cl + 1);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++, size--;
    check_b64(data, size);

    uint8_t seed[MK_SEED_LEN];
    memset(seed, 0x2a, sizeof seed);
    mk_keypair kp;
    mk_keypair_from_seed(&kp, seed);
    mk_peer_id peer;
    memset(peer.b, 0x11, sizeof peer.b);
    const char *issuers[] = {"fuzz-issuer"};
    const char *audiences[] = {"fuzz-aud"};
    mk_jwt_config cfg = {
        .keys = &kp.pub,
        .n_keys = 1,
        .issuers = issuers,
        .n_issuers = 1,
        .audiences = audiences,
        .n_audiences = 1,
        .allow_non_expiring = (mode & 4) != 0,
        .max_lifetime_s = (mode & 8) ? 3600 : 0,
    };
    struct mk_ticket_validator v;
    char why[MK_ERRMSG_SIZE];
    if (mk_jwt_validator_init(&v, &cfg, why) != 0)
        abort();

    char *token = NULL;
    const char *tok = (const char *)data;
    size_t len = size;
    if ((mode & 3) == 1) {
        static const char H[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";
        token = sign(&kp, H, sizeof H - 1, (const char *)data, size);
    } else if ((mode & 3) == 2) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t hn = nul ? (size_t)(nul - data) : size;
        const char *c = nul ? (const char *)nul + 1 : "";
        size_t cn = nul ? size - hn - 1 : 0;
        token = sign(&kp, (const char *)data, hn, c, cn);
    }
    if (token) {
        tok = token;
        len = strlen(token);
    } else if ((mode & 3) == 1 || (mode & 3) == 2) {
        mk_ticket_validator_free(&v);
        return 0; /* out of memory */
    }

    int64_t exp = 0;
    char *claims = NULL;
    why[0] = '\0';
    int rc = mk_jwt_verify(&v, tok, len, &peer, NOW_MS, &exp, &claims, why);
    if (rc == 0) {
        if (exp <= NOW_MS || !claims)
            abort();
        if (exp == MK_TICKET_NEVER && !(mode & 4))
            abort();
    } else {
        if (claims || why[0] == '\0')
            abort();
        for (const char *p = why; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                abort();
    }
    free(claims);

    /* the vtable path agrees */
    int64_t exp2 = 0;
    int rc2 = v.validate(&v, (const uint8_t *)tok, len, &peer, NOW_MS, &exp2,
                         why);
    if (rc2 != rc || (rc == 0 && exp2 != exp))
        abort();

    free(token);
    mk_ticket_validator_free(&v);
    return 0;
}
