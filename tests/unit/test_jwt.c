/* EdDSA JWT tickets: issuing, strict parsing, every refusal, key rotation,
 * recognise_issuer and the validator signature.
 *
 * Independent checks: the golden token was produced by Python's
 * `cryptography` (Ed25519) with the same claims, and the signature vectors
 * were derived with the official `b3sum`. Neither uses this code. Time is
 * always passed in explicitly, never read from the clock.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/jwt.h"
#include "testutil.h"

#define NOW_S 1700000000LL
#define NOW_MS (NOW_S * 1000)

typedef struct fixture {
    mk_keypair a, b, c; /* a, b: trusted (rotation); c: a stranger */
    mk_peer_id peer, other;
    mk_id root;
    char root_hex[MK_ID_HEX_LEN + 1];
    char peer_hex[MK_ID_HEX_LEN + 1];
} fixture;

static void seeded(mk_keypair *kp, uint8_t byte)
{
    uint8_t seed[MK_SEED_LEN];
    memset(seed, byte, sizeof seed);
    mk_keypair_from_seed(kp, seed);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    seeded(&f->a, 7);
    seeded(&f->b, 8);
    seeded(&f->c, 9);
    mk_id_from_str(&f->peer, "test-peer");
    mk_id_from_str(&f->other, "other-peer");
    mk_id_from_str(&f->root, "my-coalition");
    mk_id_hex(&f->root, f->root_hex);
    mk_id_hex(&f->peer, f->peer_hex);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Claims that validate for f->peer at NOW under base_validator(). */
static mk_jwt_claims good_claims(const fixture *f)
{
    mk_jwt_claims c = {
        .iss = f->root_hex,
        .aud = "atlas",
        .iat = NOW_S - 10,
        .nbf = NOW_S - 10,
        .exp = NOW_S + 3600,
    };
    return c;
}

/* noinline: gcc 12 otherwise takes the returned pointer for one into
 * this frame (-Wdangling-pointer false positive). */
__attribute__((noinline)) static char *issue(const mk_keypair *kp,
                                             const mk_peer_id *peer,
                                             const mk_jwt_claims *c)
{
    char *t = NULL, why[MK_ERRMSG_SIZE] = "";
    int rc = mk_jwt_issue(kp, peer, c, &t, why);
    if (rc != 0)
        fail_msg("issue: %s: %s", mk_err_name(rc), why);
    return t;
}

/* A token over arbitrary header and claims text, signed by `kp`. */
static char *craft(const mk_keypair *kp, const char *header,
                   const char *claims)
{
    size_t hn = strlen(header), cn = strlen(claims);
    size_t hl = mk_b64url_encoded_len(hn), cl = mk_b64url_encoded_len(cn);
    size_t sl = mk_b64url_encoded_len(MK_SIG_LEN);
    char *t = malloc(hl + cl + sl + 3);
    mk_b64url_encode(header, hn, t);
    t[hl] = '.';
    mk_b64url_encode(claims, cn, t + hl + 1);
    uint8_t sig[MK_SIG_LEN];
    mk_sign(kp, t, hl + 1 + cl, sig);
    t[hl + 1 + cl] = '.';
    mk_b64url_encode(sig, sizeof sig, t + hl + 1 + cl + 1);
    return t;
}

/* "{fields}" in malloc'd memory. */
static char *claims_with(const char *fields)
{
    char *s = malloc(1024);
    snprintf(s, 1024, "{%s}", fields);
    return s;
}

static void validator(struct mk_ticket_validator *v, const mk_jwt_config *cfg)
{
    char why[MK_ERRMSG_SIZE] = "";
    int rc = mk_jwt_validator_init(v, cfg, why);
    if (rc != 0)
        fail_msg("validator: %s: %s", mk_err_name(rc), why);
}

/* Keys a and b, issuer = root hex, audience atlas, subject = the peer. */
static void base_validator(const fixture *f, struct mk_ticket_validator *v)
{
    mk_peer_id keys[] = {f->a.pub, f->b.pub};
    const char *iss[] = {f->root_hex};
    const char *aud[] = {"atlas"};
    mk_jwt_config cfg = {.keys = keys, .n_keys = 2, .issuers = iss,
                         .n_issuers = 1, .audiences = aud, .n_audiences = 1};
    validator(v, &cfg);
}

/* Runs the validator the way components do (the vtable) and through
 * mk_jwt_verify, checks both agree, and that a refusal always has a reason
 * made of printable characters only. Returns the code. */
static int check(const struct mk_ticket_validator *v, const char *tok,
                 size_t len, const mk_peer_id *peer, int64_t now_ms,
                 int64_t *expires, char *why)
{
    int64_t e1 = -1, e2 = -1;
    char w2[MK_ERRMSG_SIZE] = "";
    why[0] = '\0';
    int rc = v->validate(v, (const uint8_t *)tok, len, peer, now_ms, &e1,
                         why);
    int rc2 = mk_jwt_verify(v, tok, len, peer, now_ms, &e2, NULL, w2);
    assert_int_equal(rc, rc2);
    assert_string_equal(why, w2);
    if (rc == 0) {
        assert_true(e1 == e2);
        if (expires)
            *expires = e1;
    } else {
        assert_true(why[0] != '\0');
        for (const char *p = why; *p; p++)
            assert_true((unsigned char)*p >= 0x20 &&
                        (unsigned char)*p < 0x7f);
    }
    return rc;
}

static int check_str(const struct mk_ticket_validator *v, const char *tok,
                     const mk_peer_id *peer, char *why)
{
    return check(v, tok, strlen(tok), peer, NOW_MS, NULL, why);
}

#define assert_refused(rc, code, why, needle)                                 \
    do {                                                                      \
        if ((rc) != (code) || !strstr((why), (needle)))                       \
            fail_msg("want %s with \"%s\", got %s: %s", mk_err_name(code),    \
                     (needle), mk_err_name(rc), (why));                       \
    } while (0)

/* ---- base64url ---------------------------------------------------------- */

static void b64url_vectors_and_strictness(void **state)
{
    /* RFC 4648 §10, in the URL alphabet and without padding */
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE",
                         "Zm9vYmFy"};
    char out[80]; /* 48 bytes: 64 characters and a NUL */
    uint8_t dec[64];
    size_t n;
    for (size_t i = 0; i < 7; i++) {
        mk_b64url_encode(plain[i], strlen(plain[i]), out);
        assert_string_equal(out, enc[i]);
        assert_int_equal(strlen(out), mk_b64url_encoded_len(strlen(plain[i])));
        assert_int_equal(mk_b64url_decode(enc[i], strlen(enc[i]), dec,
                                          sizeof dec, &n, NULL),
                         0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(dec, plain[i], n);
    }
    const uint8_t urlish[] = {0xfb, 0xff, 0xbf};
    mk_b64url_encode(urlish, 3, out);
    assert_string_equal(out, "-_-_");

    /* every length round-trips */
    uint8_t bytes[48];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof bytes; len++) {
        mk_b64url_encode(bytes, len, out);
        assert_int_equal(
            mk_b64url_decode(out, strlen(out), dec, sizeof dec, &n, NULL), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, bytes, len);
    }

    char why[MK_ERRMSG_SIZE];
    const char *bad[] = {"Zg==", "Zg=", "Zm9v\n", " Zm9v", "Zm+v", "Zm/v",
                         "Z",    "Zm9vY", "Zh", "Zm9", "Zm\x80v"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        int rc = mk_b64url_decode(bad[i], strlen(bad[i]), dec, sizeof dec, &n,
                                  why);
        if (rc != MK_EDECODE) /* "Zm9": "fo" is "Zm8", 9 sets spare bits */
            fail_msg("'%s' was not refused", bad[i]);
        assert_true(why[0] != '\0');
    }
    mk_b64url_decode("Zg==", 4, dec, sizeof dec, &n, why);
    assert_non_null(strstr(why, "padding"));
    mk_b64url_decode("Zh", 2, dec, sizeof dec, &n, why);
    assert_non_null(strstr(why, "non-canonical"));
    assert_int_equal(mk_b64url_decode("Zm9vYmFy", 8, dec, 5, &n, NULL),
                     MK_EMSGSIZE);
}

/* ---- issuing ------------------------------------------------------------ */

static void class_is_the_mosaik_id(void **state)
{
    mk_id id;
    mk_id_from_str(&id, "mosaik.tickets.jwt.v1");
    assert_true(mk_id_eq(&id, &MK_JWT_CLASS));
    assert_id_hex(&MK_JWT_CLASS,
                  "4586eafab50d29f2ad5212e08f84d0a789cd6a565ce8d344652b1b7b60973d8c");
}

/* Byte-identical to a token made by Python's `cryptography` from seed 7*32
 * with the same claims, so the encoding, key order and signature match an
 * independent implementation. */
static void issue_matches_independent_token(void **state)
{
    fixture *f = *state;
    assert_id_hex(&f->a.pub,
                  "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c");
    mk_jwt_claims c = {.iss = f->root_hex, .aud = "atlas", .jti = "t1",
                       .iat = NOW_S, .nbf = NOW_S, .exp = NOW_S + 3600};
    char *t = issue(&f->a, &f->a.pub, &c);
    assert_string_equal(
        t,
        "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9."
        "eyJpc3MiOiI2MjJhMzYyNGU1ZWY5Yjg4YTcxMmVjNjVhYjlhYzcwN2FiOTg1YTRmNmYw"
        "OWQ0NzcxZjJkMzM0ODQ2YWI4Njg1Iiwic3ViIjoiZWE0YTZjNjNlMjljNTIwYWJlZjU1"
        "MDdiMTMyZWM1Zjk5NTQ3NzZhZWJlYmU3YjkyNDIxZWVhNjkxNDQ2ZDIyYyIsImF1ZCI6"
        "ImF0bGFzIiwiaWF0IjoxNzAwMDAwMDAwLCJuYmYiOjE3MDAwMDAwMDAsImV4cCI6MTcw"
        "MDAwMzYwMCwianRpIjoidDEifQ."
        "9Ajs_lcN5K6__Z-WICfW3tuExumw62SM8vLf_Oj4l5VrDQICP4LAbR9_82LnYIpsbsqz"
        "nmg8g_0u-1x_yyFzCg");
    free(t);
}

static void round_trip(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    base_validator(f, &v);
    mk_jwt_claims c = good_claims(f);
    c.jti = "ticket-1";
    char *t = issue(&f->a, &f->peer, &c);

    char why[MK_ERRMSG_SIZE], *claims = NULL;
    int64_t exp = 0;
    assert_int_equal(check(&v, t, strlen(t), &f->peer, NOW_MS, &exp, why), 0);
    assert_true(exp == (NOW_S + 3600) * 1000);
    assert_int_equal(mk_jwt_verify(&v, t, strlen(t), &f->peer, NOW_MS, &exp,
                                   &claims, why),
                     0);
    char want[512];
    snprintf(want, sizeof want,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"atlas\","
             "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"jti\":\"ticket-1\"}",
             f->root_hex, f->peer_hex, NOW_S - 10, NOW_S - 10, NOW_S + 3600);
    assert_string_equal(claims, want);
    free(claims);

    /* the header is exactly the documented one */
    uint8_t h[64];
    size_t n;
    const char *dot = strchr(t, '.');
    assert_int_equal(mk_b64url_decode(t, (size_t)(dot - t), h, sizeof h, &n,
                                      NULL),
                     0);
    assert_int_equal(n, strlen("{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}"));
    assert_memory_equal(h, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", n);

    /* as a ticket */
    mk_ticket tk;
    assert_int_equal(mk_jwt_issue_ticket(&tk, &f->a, &f->peer, &c, why), 0);
    assert_true(mk_id_eq(&tk.class, &MK_JWT_CLASS));
    assert_int_equal(tk.len, strlen(t));
    assert_memory_equal(tk.data, t, tk.len);
    mk_ticket_free(&tk);
    free(t);
    mk_ticket_validator_free(&v);
}

static void issue_refusals(void **state)
{
    fixture *f = *state;
    char *t = (char *)1, why[MK_ERRMSG_SIZE];
    mk_jwt_claims c = good_claims(f);

    c.iss = "bad\xff utf8";
    assert_int_equal(mk_jwt_issue(&f->a, &f->peer, &c, &t, why), MK_EINVAL);
    assert_null(t);
    assert_non_null(strstr(why, "iss"));

    c = good_claims(f);
    c.iat = -1;
    assert_int_equal(mk_jwt_issue(&f->a, &f->peer, &c, &t, why), MK_EINVAL);
    assert_non_null(strstr(why, "iat"));

    c = good_claims(f);
    c.exp = MK_JWT_MAX_TIME + 1;
    assert_int_equal(mk_jwt_issue(&f->a, &f->peer, &c, &t, why), MK_EINVAL);
    assert_non_null(strstr(why, "exp"));

    c = good_claims(f);
    assert_int_equal(mk_jwt_issue(&f->a, NULL, &c, &t, why), MK_EINVAL);
    assert_non_null(strstr(why, "subject"));

    char *big = malloc(MK_JWT_MAX_LEN + 1);
    memset(big, 'x', MK_JWT_MAX_LEN);
    big[MK_JWT_MAX_LEN] = '\0';
    c = good_claims(f);
    c.jti = big;
    assert_int_equal(mk_jwt_issue(&f->a, &f->peer, &c, &t, why), MK_EMSGSIZE);
    assert_null(t);
    free(big);

    /* MK_JWT_NO_EXP leaves exp out: refused unless allowed */
    c = good_claims(f);
    c.exp = MK_JWT_NO_EXP;
    t = issue(&f->a, &f->peer, &c);
    struct mk_ticket_validator v;
    base_validator(f, &v);
    assert_refused(check_str(&v, t, &f->peer, why), MK_ENOT_ALLOWED, why,
                   "no exp");
    mk_ticket_validator_free(&v);
    mk_peer_id keys[] = {f->a.pub};
    mk_jwt_config cfg = {.keys = keys, .n_keys = 1,
                         .allow_non_expiring = true};
    validator(&v, &cfg);
    int64_t exp = 0;
    assert_int_equal(check(&v, t, strlen(t), &f->peer, NOW_MS, &exp, why), 0);
    assert_true(exp == MK_TICKET_NEVER);
    mk_ticket_validator_free(&v);
    free(t);
}

/* ---- signatures and keys ------------------------------------------------ */

static void key_rotation(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    base_validator(f, &v);
    mk_jwt_claims c = good_claims(f);
    char why[MK_ERRMSG_SIZE];
    char *ta = issue(&f->a, &f->peer, &c), *tb = issue(&f->b, &f->peer, &c),
         *tc = issue(&f->c, &f->peer, &c);
    assert_int_equal(check_str(&v, ta, &f->peer, why), 0);
    assert_int_equal(check_str(&v, tb, &f->peer, why), 0);
    assert_refused(check_str(&v, tc, &f->peer, why), MK_EBAD_SIGNATURE, why,
                   "2 keys");
    mk_ticket_validator_free(&v);

    /* after rotating a out, a's tokens stop verifying */
    mk_peer_id only_b[] = {f->b.pub};
    const char *iss[] = {f->root_hex};
    mk_jwt_config cfg = {.keys = only_b, .n_keys = 1, .issuers = iss,
                         .n_issuers = 1};
    validator(&v, &cfg);
    assert_refused(check_str(&v, ta, &f->peer, why), MK_EBAD_SIGNATURE, why,
                   "1 key");
    assert_int_equal(check_str(&v, tb, &f->peer, why), 0);
    mk_ticket_validator_free(&v);
    free(ta);
    free(tb);
    free(tc);
}

/* Every single-character change anywhere in a token is refused, and so is
 * every single-bit change of the decoded header, claims and signature. */
static void every_tamper_is_refused(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    base_validator(f, &v);
    mk_jwt_claims c = good_claims(f);
    char *t = issue(&f->a, &f->peer, &c);
    size_t len = strlen(t);
    char why[MK_ERRMSG_SIZE];
    assert_int_equal(check_str(&v, t, &f->peer, why), 0);

    static const char ALPHA[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *m = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        memcpy(m, t, len + 1);
        const char *at = strchr(ALPHA, t[i]);
        m[i] = at ? ALPHA[(at - ALPHA + 1) % 64] : 'A';
        int rc = check_str(&v, m, &f->peer, why);
        if (rc == 0)
            fail_msg("changing character %zu was accepted", i);
    }
    free(m);

    /* bit flips in the decoded segments, re-encoded canonically */
    const char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
    const char *seg[3] = {t, d1 + 1, d2 + 1};
    size_t seglen[3] = {(size_t)(d1 - t), (size_t)(d2 - d1 - 1),
                        len - (size_t)(d2 + 1 - t)};
    int expect[3] = {0, MK_EBAD_SIGNATURE, MK_EBAD_SIGNATURE};
    for (int s = 0; s < 3; s++) {
        uint8_t raw[1024];
        size_t n;
        assert_int_equal(
            mk_b64url_decode(seg[s], seglen[s], raw, sizeof raw, &n, NULL), 0);
        for (size_t bit = 0; bit < n * 8; bit++) {
            raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            char enc[1400], tok[4096];
            mk_b64url_encode(raw, n, enc);
            snprintf(tok, sizeof tok, "%.*s%s%.*s%s%.*s",
                     s == 0 ? (int)strlen(enc) : (int)seglen[0],
                     s == 0 ? enc : seg[0], ".",
                     s == 1 ? (int)strlen(enc) : (int)seglen[1],
                     s == 1 ? enc : seg[1], ".",
                     s == 2 ? (int)strlen(enc) : (int)seglen[2],
                     s == 2 ? enc : seg[2]);
            int rc = check_str(&v, tok, &f->peer, why);
            if (rc == 0)
                fail_msg("segment %d bit %zu flipped was accepted", s, bit);
            /* claims and signature flips fail the signature itself; header
             * flips may fail earlier (JSON, alg), never later */
            if (expect[s] && rc != expect[s])
                fail_msg("segment %d bit %zu: %s (%s)", s, bit,
                         mk_err_name(rc), why);
            if (s == 0 && rc != MK_EBAD_SIGNATURE && rc != MK_EDECODE &&
                rc != MK_EUNSUPPORTED)
                fail_msg("header bit %zu: %s (%s)", bit, mk_err_name(rc), why);
            raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
    }
    mk_ticket_validator_free(&v);
    free(t);
}

static void wrong_algorithms(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    base_validator(f, &v);
    char why[MK_ERRMSG_SIZE], claims[512];
    snprintf(claims, sizeof claims,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"atlas\",\"exp\":%lld}",
             f->root_hex, f->peer_hex, NOW_S + 60);

    /* sanity: the same claims with the right header pass */
    char *ok = craft(&f->a, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", claims);
    assert_int_equal(check_str(&v, ok, &f->peer, why), 0);
    free(ok);

    /* alg none, with an empty signature and with a real one */
    char hn[64], cn[700], tok[1024];
    const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    mk_b64url_encode(none, strlen(none), hn);
    mk_b64url_encode(claims, strlen(claims), cn);
    snprintf(tok, sizeof tok, "%s.%s.", hn, cn);
    assert_refused(check_str(&v, tok, &f->peer, why), MK_EUNSUPPORTED, why,
                   "\"none\"");
    char *signed_none = craft(&f->a, none, claims);
    assert_refused(check_str(&v, signed_none, &f->peer, why), MK_EUNSUPPORTED,
                   why, "only EdDSA");
    free(signed_none);

    /* HS256 keyed with the public key (raw and as hex): the classic
     * confusion. It must not even reach a MAC. */
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char hh[64];
    mk_b64url_encode(hs, strlen(hs), hh);
    for (int as_hex = 0; as_hex < 2; as_hex++) {
        char input[1024], sig64[64];
        snprintf(input, sizeof input, "%s.%s", hh, cn);
        uint8_t mac[32];
        unsigned int maclen = 0;
        char pubhex[MK_ID_HEX_LEN + 1];
        mk_id_hex(&f->a.pub, pubhex);
        assert_non_null(HMAC(EVP_sha256(), as_hex ? (const void *)pubhex
                                                  : (const void *)f->a.pub.b,
                             as_hex ? 64 : 32, (const uint8_t *)input,
                             strlen(input), mac, &maclen));
        mk_b64url_encode(mac, maclen, sig64);
        snprintf(tok, sizeof tok, "%s.%s", input, sig64);
        assert_refused(check_str(&v, tok, &f->peer, why), MK_EUNSUPPORTED,
                       why, "HS256");
    }

    /* near misses and missing or odd headers */
    const char *headers[] = {
        "{\"alg\":\"EDDSA\",\"typ\":\"JWT\"}", "{\"alg\":\"eddsa\"}",
        "{\"alg\":\"Ed25519\"}",               "{\"typ\":\"JWT\"}",
        "{\"alg\":null}",                      "{\"alg\":1}",
        "{\"alg\":[\"EdDSA\"]}",               "{\"alg\":\"EdDSA\\u0000\"}",
        "{\"alg\":\"ES256\"}",                 "{\"alg\":\"RS256\"}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *x = craft(&f->a, headers[i], claims);
        int rc = check_str(&v, x, &f->peer, why);
        if (rc != MK_EUNSUPPORTED && rc != MK_EDECODE)
            fail_msg("header %s: %s (%s)", headers[i], mk_err_name(rc), why);
        free(x);
    }
    char *x = craft(&f->a, "{\"alg\":\"EdDSA\",\"typ\":\"JWS\"}", claims);
    assert_refused(check_str(&v, x, &f->peer, why), MK_EDECODE, why, "typ");
    free(x);
    x = craft(&f->a, "{\"alg\":\"EdDSA\",\"crit\":[\"exp\"]}", claims);
    assert_refused(check_str(&v, x, &f->peer, why), MK_EUNSUPPORTED, why,
                   "crit");
    free(x);
    /* typ may be absent, and unknown members such as kid are ignored */
    x = craft(&f->a, "{\"alg\":\"EdDSA\",\"kid\":\"k1\"}", claims);
    assert_int_equal(check_str(&v, x, &f->peer, why), 0);
    free(x);
    mk_ticket_validator_free(&v);
}

/* ---- shape: segments, base64, JSON --------------------------------------- */

static void malformed_tokens(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    base_validator(f, &v);
    mk_jwt_claims c = good_claims(f);
    char *t = issue(&f->a, &f->peer, &c);
    char why[MK_ERRMSG_SIZE], buf[4096];
    const char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
    int h = (int)(d1 - t), p = (int)(d2 - d1 - 1);
    const char *H = t, *P = d1 + 1, *S = d2 + 1;

    /* swapped segments */
    snprintf(buf, sizeof buf, "%.*s.%.*s.%s", p, P, h, H, S);
    assert_int_not_equal(check_str(&v, buf, &f->peer, why), 0);
    snprintf(buf, sizeof buf, "%.*s.%s.%.*s", h, H, S, p, P);
    assert_int_not_equal(check_str(&v, buf, &f->peer, why), 0);
    snprintf(buf, sizeof buf, "%s.%.*s.%.*s", S, p, P, h, H);
    assert_int_not_equal(check_str(&v, buf, &f->peer, why), 0);
    snprintf(buf, sizeof buf, "%.*s.%.*s.%s", h, H, h, H, S);
    assert_int_not_equal(check_str(&v, buf, &f->peer, why), 0);

    /* padding on each segment */
    snprintf(buf, sizeof buf, "%.*s=.%.*s.%s", h, H, p, P, S);
    assert_refused(check_str(&v, buf, &f->peer, why), MK_EDECODE, why,
                   "padding");
    snprintf(buf, sizeof buf, "%.*s.%.*s==.%s", h, H, p, P, S);
    assert_refused(check_str(&v, buf, &f->peer, why), MK_EDECODE, why,
                   "claims");
    snprintf(buf, sizeof buf, "%s==", t);
    assert_refused(check_str(&v, buf, &f->peer, why), MK_EDECODE, why,
                   "signature");

    /* the signature's last character with its spare bits set decodes to the
     * same 64 bytes: only strictness refuses it */
    strcpy(buf, t);
    char *last = buf + strlen(buf) - 1;
    uint8_t sig[64];
    size_t n;
    assert_int_equal(mk_b64url_decode(S, strlen(S), sig, sizeof sig, &n, NULL),
                     0);
    assert_int_equal(n, 64);
    *last = (char)(*last + 1); /* A, Q, g or w: now a spare bit is set */
    assert_refused(check_str(&v, buf, &f->peer, why), MK_EDECODE, why,
                   "non-canonical");

    /* segment counts and stray bytes */
    const char *frames[][2] = {{"", "."},   {".", ""},  {"", ".x"},
                               {"", "\n"},  {" ", ""},  {"", " "},
                               {"", "\r\n"}, {"\t", ""}};
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s%s", frames[i][0], t, frames[i][1]);
        int rc = check_str(&v, buf, &f->peer, why);
        assert_int_equal(rc, MK_EDECODE);
    }
    snprintf(buf, sizeof buf, "%.*s.%.*s", h, H, p, P);
    assert_refused(check_str(&v, buf, &f->peer, why), MK_EDECODE, why,
                   "2 segments");
    snprintf(buf, sizeof buf, "%s.%s", t, S);
    assert_refused(check_str(&v, buf, &f->peer, why), MK_EDECODE, why,
                   "4 segments");
    assert_refused(check_str(&v, "", &f->peer, why), MK_EDECODE, why, "empty");
    assert_int_equal(check_str(&v, "..", &f->peer, why), MK_EDECODE);

    /* a NUL inside: the length, not strlen, is what counts */
    strcpy(buf, t);
    buf[h + 3] = '\0';
    assert_int_equal(check(&v, buf, strlen(t), &f->peer, NOW_MS, NULL, why),
                     MK_EDECODE);
    /* the bytes after the given length are not read */
    snprintf(buf, sizeof buf, "%sGARBAGE", t);
    assert_int_equal(check(&v, buf, strlen(t), &f->peer, NOW_MS, NULL, why),
                     0);
    free(t);
    mk_ticket_validator_free(&v);
}

static void oversized_tokens(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    base_validator(f, &v);
    char why[MK_ERRMSG_SIZE];
    /* find a jti length that makes the token exactly MK_JWT_MAX_LEN */
    char *jti = malloc(MK_JWT_MAX_LEN);
    size_t base_len;
    {
        mk_jwt_claims c = good_claims(f);
        c.jti = "";
        char *t = issue(&f->a, &f->peer, &c);
        base_len = strlen(t);
        free(t);
    }
    char *t = NULL;
    for (size_t extra = (MK_JWT_MAX_LEN - base_len) * 3 / 4 - 20;; extra++) {
        memset(jti, 'j', extra);
        jti[extra] = '\0';
        mk_jwt_claims c = good_claims(f);
        c.jti = jti;
        char *x = NULL;
        int rc = mk_jwt_issue(&f->a, &f->peer, &c, &x, why);
        if (rc == MK_EMSGSIZE)
            break;
        assert_int_equal(rc, 0);
        free(t);
        t = x;
    }
    /* the largest issuable token is at the limit and accepted */
    assert_true(strlen(t) <= MK_JWT_MAX_LEN && strlen(t) > MK_JWT_MAX_LEN - 4);
    assert_int_equal(check_str(&v, t, &f->peer, why), 0);
    free(t);

    /* one byte over is refused before anything is decoded */
    char *big = malloc(MK_JWT_MAX_LEN + 2);
    memset(big, 'A', MK_JWT_MAX_LEN + 1);
    big[10] = '.';
    big[20] = '.';
    big[MK_JWT_MAX_LEN + 1] = '\0';
    assert_refused(check_str(&v, big, &f->peer, why), MK_EMSGSIZE, why,
                   "limit");
    free(big);
    free(jti);
    mk_ticket_validator_free(&v);
}

static void duplicate_keys_and_trailing_bytes(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    base_validator(f, &v);
    char why[MK_ERRMSG_SIZE], good[512], bad[700];
    const char *hdr = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";
    snprintf(good, sizeof good,
             "\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"atlas\",\"exp\":%lld",
             f->root_hex, f->peer_hex, NOW_S + 60);

    char *x = craft(&f->a, "{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\"}", "{}");
    assert_refused(check_str(&v, x, &f->peer, why), MK_EDECODE, why,
                   "header is not valid JSON");
    free(x);

    /* a second sub, exp or iss that another parser might prefer */
    const char *dups[] = {",\"sub\":\"someone-else\"", ",\"exp\":9999999999",
                          ",\"iss\":\"x\"", ",\"aud\":\"atlas\""};
    for (size_t i = 0; i < 4; i++) {
        snprintf(bad, sizeof bad, "{%s%s}", good, dups[i]);
        x = craft(&f->a, hdr, bad);
        assert_refused(check_str(&v, x, &f->peer, why), MK_EDECODE, why,
                       "claims is not valid JSON");
        free(x);
    }

    /* trailing bytes after the JSON value */
    const char *tails[] = {"x", "{}", "]", "\"\"", "0"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(bad, sizeof bad, "{%s}%s", good, tails[i]);
        x = craft(&f->a, hdr, bad);
        assert_refused(check_str(&v, x, &f->peer, why), MK_EDECODE, why,
                       "claims is not valid JSON");
        free(x);
        char h2[128];
        snprintf(h2, sizeof h2, "%s%s", hdr, tails[i]);
        snprintf(bad, sizeof bad, "{%s}", good);
        x = craft(&f->a, h2, bad);
        assert_refused(check_str(&v, x, &f->peer, why), MK_EDECODE, why,
                       "header is not valid JSON");
        free(x);
    }
    /* not an object */
    x = craft(&f->a, hdr, "[1,2]");
    assert_refused(check_str(&v, x, &f->peer, why), MK_EDECODE, why,
                   "not a JSON object");
    free(x);
    x = craft(&f->a, "\"EdDSA\"", "{}");
    assert_int_equal(check_str(&v, x, &f->peer, why), MK_EDECODE);
    free(x);

    /* the undecorated claims pass (the failures above are not accidents) */
    snprintf(bad, sizeof bad, "{%s}", good);
    x = craft(&f->a, hdr, bad);
    assert_int_equal(check_str(&v, x, &f->peer, why), 0);
    free(x);
    mk_ticket_validator_free(&v);
}

/* ---- claims ------------------------------------------------------------- */

/* Signs {prefix fields} with key a and checks it for f->peer. */
static int claims_rc(const fixture *f, const struct mk_ticket_validator *v,
                     const char *fields, int64_t now_ms, int64_t *exp,
                     char *why)
{
    char *c = claims_with(fields);
    char *t = craft(&f->a, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", c);
    int rc = check(v, t, strlen(t), &f->peer, now_ms, exp, why);
    free(t);
    free(c);
    return rc;
}

static void expiry_and_not_before(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    mk_peer_id keys[] = {f->a.pub};
    mk_jwt_config cfg = {.keys = keys, .n_keys = 1};
    validator(&v, &cfg);
    char why[MK_ERRMSG_SIZE], fields[512];
    int64_t exp = 0;
#define SUB "\"sub\":\"%s\""

    /* exp: strictly after now, no leeway, 1-second granularity */
    snprintf(fields, sizeof fields, SUB ",\"exp\":%lld", f->peer_hex, NOW_S);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why), MK_EEXPIRED,
                   why, "expired");
    assert_int_equal(claims_rc(f, &v, fields, NOW_MS - 1, &exp, why), 0);
    assert_true(exp == NOW_MS);
    snprintf(fields, sizeof fields, SUB ",\"exp\":%lld", f->peer_hex,
             NOW_S - 3600);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why), MK_EEXPIRED,
                   why, "expired");

    /* exp missing or malformed */
    snprintf(fields, sizeof fields, SUB, f->peer_hex);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "no exp");
    const char *bad_exp[] = {"\"9999999999\"", "1.9e9", "9999999999.5",
                             "-1",             "null", "true",
                             "[9999999999]",   "9223372036854776",
                             "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_exp / sizeof bad_exp[0]; i++) {
        snprintf(fields, sizeof fields, SUB ",\"exp\":%s", f->peer_hex,
                 bad_exp[i]);
        int rc = claims_rc(f, &v, fields, NOW_MS, &exp, why);
        if (rc != MK_EDECODE)
            fail_msg("exp %s: %s (%s)", bad_exp[i], mk_err_name(rc), why);
    }
    /* the largest representable exp is fine */
    snprintf(fields, sizeof fields, SUB ",\"exp\":%lld", f->peer_hex,
             (long long)MK_JWT_MAX_TIME);
    assert_int_equal(claims_rc(f, &v, fields, NOW_MS, &exp, why), 0);
    assert_true(exp == MK_JWT_MAX_TIME * 1000);

    /* nbf: now or earlier */
    snprintf(fields, sizeof fields, SUB ",\"nbf\":%lld,\"exp\":%lld",
             f->peer_hex, NOW_S, NOW_S + 60);
    assert_int_equal(claims_rc(f, &v, fields, NOW_MS, &exp, why), 0);
    assert_refused(claims_rc(f, &v, fields, NOW_MS - 1, &exp, why),
                   MK_ENOT_ALLOWED, why, "nbf");
    snprintf(fields, sizeof fields, SUB ",\"nbf\":\"0\",\"exp\":%lld",
             f->peer_hex, NOW_S + 60);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why), MK_EDECODE,
                   why, "nbf");
    snprintf(fields, sizeof fields, SUB ",\"iat\":\"now\",\"exp\":%lld",
             f->peer_hex, NOW_S + 60);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why), MK_EDECODE,
                   why, "iat");
    mk_ticket_validator_free(&v);

    /* max lifetime counts from now */
    cfg.max_lifetime_s = 60;
    validator(&v, &cfg);
    snprintf(fields, sizeof fields, SUB ",\"exp\":%lld", f->peer_hex,
             NOW_S + 60);
    assert_int_equal(claims_rc(f, &v, fields, NOW_MS, &exp, why), 0);
    snprintf(fields, sizeof fields, SUB ",\"exp\":%lld", f->peer_hex,
             NOW_S + 61);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "max lifetime");
    assert_int_equal(claims_rc(f, &v, fields, NOW_MS + 1000, &exp, why), 0);
    mk_ticket_validator_free(&v);
    cfg.allow_non_expiring = true;
    validator(&v, &cfg);
    snprintf(fields, sizeof fields, SUB, f->peer_hex);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "never expires");
    mk_ticket_validator_free(&v);
#undef SUB
}

static void issuer_audience_subject(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    base_validator(f, &v);
    char why[MK_ERRMSG_SIZE], fields[600];
    int64_t exp;
    long long e = NOW_S + 60;
    const char *R = f->root_hex, *P = f->peer_hex;
#define FIELDS(...) snprintf(fields, sizeof fields, __VA_ARGS__)

    FIELDS("\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"atlas\",\"exp\":%lld", R,
           P, e);
    assert_int_equal(claims_rc(f, &v, fields, NOW_MS, &exp, why), 0);

    /* iss */
    FIELDS("\"iss\":\"other\",\"sub\":\"%s\",\"aud\":\"atlas\",\"exp\":%lld",
           P, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "iss \"other\" is not allowed");
    FIELDS("\"sub\":\"%s\",\"aud\":\"atlas\",\"exp\":%lld", P, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "no iss");
    FIELDS("\"iss\":7,\"sub\":\"%s\",\"aud\":\"atlas\",\"exp\":%lld", P, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why), MK_EDECODE,
                   why, "iss is not a string");

    /* aud */
    FIELDS("\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"almanac\",\"exp\":%lld",
           R, P, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "aud \"almanac\"");
    FIELDS("\"iss\":\"%s\",\"sub\":\"%s\",\"exp\":%lld", R, P, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "no aud");
    FIELDS("\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":[\"atlas\"],\"exp\":%lld",
           R, P, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why), MK_EDECODE,
                   why, "aud is an array");

    /* sub: the validated peer's lowercase hex, exactly */
    char upper[MK_ID_HEX_LEN + 1];
    for (int i = 0; i <= MK_ID_HEX_LEN; i++)
        upper[i] = (char)(P[i] >= 'a' && P[i] <= 'f' ? P[i] - 32 : P[i]);
    FIELDS("\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"atlas\",\"exp\":%lld", R,
           upper, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "is not the expected");
    FIELDS("\"iss\":\"%s\",\"aud\":\"atlas\",\"exp\":%lld", R, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "no sub");
    /* a control character in a claim is not echoed raw */
    FIELDS("\"iss\":\"%s\",\"sub\":\"x\\u001b[31m\",\"aud\":\"atlas\","
           "\"exp\":%lld",
           R, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "x?[31m");

    /* a token for peer P is refused for another peer */
    mk_jwt_claims c = good_claims(f);
    char *t = issue(&f->a, &f->peer, &c);
    assert_int_equal(check_str(&v, t, &f->peer, why), 0);
    assert_refused(check_str(&v, t, &f->other, why), MK_ENOT_ALLOWED, why,
                   "sub");
    /* the vtable needs a peer to compare with; the tool API may skip it */
    assert_refused(v.validate(&v, (const uint8_t *)t, strlen(t), NULL, NOW_MS,
                              &exp, why),
                   MK_EINVAL, why, "no peer");
    assert_int_equal(
        mk_jwt_verify(&v, t, strlen(t), NULL, NOW_MS, &exp, NULL, why), 0);
    free(t);
    mk_ticket_validator_free(&v);

    /* no issuers and no audiences configured: any (or none) is fine; a
     * fixed subject replaces the peer */
    mk_peer_id keys[] = {f->a.pub};
    mk_jwt_config cfg = {.keys = keys, .n_keys = 1, .subject = "alice"};
    validator(&v, &cfg);
    FIELDS("\"iss\":\"anyone\",\"sub\":\"alice\",\"aud\":\"x\",\"exp\":%lld",
           e);
    assert_int_equal(claims_rc(f, &v, fields, NOW_MS, &exp, why), 0);
    FIELDS("\"sub\":\"alice\",\"exp\":%lld", e);
    assert_int_equal(claims_rc(f, &v, fields, NOW_MS, &exp, why), 0);
    FIELDS("\"sub\":\"%s\",\"exp\":%lld", P, e);
    assert_refused(claims_rc(f, &v, fields, NOW_MS, &exp, why),
                   MK_ENOT_ALLOWED, why, "\"alice\"");
    assert_int_equal(
        v.validate(&v, (const uint8_t *)"", 0, NULL, NOW_MS, &exp, why),
        MK_EDECODE); /* a fixed subject needs no peer */
    mk_ticket_validator_free(&v);
#undef FIELDS
}

/* ---- recognise_issuer and signatures ------------------------------------ */

static void recognise_issuer_accepts_only_its_root(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    char why[MK_ERRMSG_SIZE];
    mk_peer_id keys[] = {f->a.pub};
    assert_int_equal(mk_jwt_recognise_issuer(&f->root, keys, 1, &v, why), 0);
    assert_true(mk_id_eq(&v.class, &MK_JWT_CLASS));
    assert_int_equal(v.version, MK_TICKET_VALIDATOR_VERSION);
    /* computed with b3sum (see the chain in jwt.h) */
    assert_id_hex(&v.signature,
                  "dc3c18fbe1ebb3b6574277610705bae70e528e8686b37ff8237eea176be9e2dc");

    mk_jwt_claims c = good_claims(f);
    c.aud = NULL;
    char *t = issue(&f->a, &f->peer, &c);
    assert_int_equal(check_str(&v, t, &f->peer, why), 0);
    free(t);

    /* another root, the root's name, upper-case hex: all refused */
    mk_id other;
    mk_id_from_str(&other, "other-coalition");
    char other_hex[MK_ID_HEX_LEN + 1], upper[MK_ID_HEX_LEN + 1];
    mk_id_hex(&other, other_hex);
    for (int i = 0; i <= MK_ID_HEX_LEN; i++)
        upper[i] = (char)(f->root_hex[i] >= 'a' && f->root_hex[i] <= 'f'
                              ? f->root_hex[i] - 32
                              : f->root_hex[i]);
    const char *wrong[] = {other_hex, "my-coalition", upper, ""};
    for (size_t i = 0; i < 4; i++) {
        c.iss = wrong[i];
        t = issue(&f->a, &f->peer, &c);
        assert_refused(check_str(&v, t, &f->peer, why), MK_ENOT_ALLOWED, why,
                       "iss");
        free(t);
    }
    c.iss = NULL;
    t = issue(&f->a, &f->peer, &c);
    assert_refused(check_str(&v, t, &f->peer, why), MK_ENOT_ALLOWED, why,
                   "no iss");
    free(t);
    /* the right root from a key outside the ACL */
    c.iss = f->root_hex;
    t = issue(&f->b, &f->peer, &c);
    assert_refused(check_str(&v, t, &f->peer, why), MK_EBAD_SIGNATURE, why,
                   "signature");
    free(t);
    mk_ticket_validator_free(&v);
    assert_null(v.data);

    assert_int_equal(mk_jwt_recognise_issuer(&f->root, keys, 0, &v, why),
                     MK_EINVAL);
}

static void signature_chain(void **state)
{
    fixture *f = *state;
    mk_peer_id zero;
    uint8_t seed0[MK_SEED_LEN] = {0};
    mk_keypair kz;
    mk_keypair_from_seed(&kz, seed0);
    zero = kz.pub;
    mk_peer_id keys[] = {f->a.pub, zero};
    const char *iss[] = {"a", "b"};
    const char *aud[] = {"atlas", "chronicle"};
    mk_jwt_config cfg = {.keys = keys, .n_keys = 2, .issuers = iss,
                         .n_issuers = 2, .audiences = aud, .n_audiences = 2,
                         .subject = "alice", .allow_non_expiring = true,
                         .max_lifetime_s = 3600};
    struct mk_ticket_validator v;
    validator(&v, &cfg);
    /* computed with b3sum */
    assert_id_hex(&v.signature,
                  "6980114f189975a204b8fd877568045e92b28944dabf413b32b29503afb5043e");

    /* the same chain step by step */
    mk_id s = MK_JWT_CLASS, eddsa, fp;
    mk_id_from_str(&eddsa, "eddsa");
    for (int i = 0; i < 2; i++) {
        mk_id_derive(&fp, &eddsa, keys[i].b, 32);
        mk_id_derive_str(&s, &s, "EdDSA");
        mk_id_derive(&s, &s, fp.b, 32);
    }
    mk_id_derive(&s, &s, "\x01", 1);
    mk_id_derive_str(&s, &s, "a,b");
    mk_id_derive_str(&s, &s, "atlas,chronicle");
    mk_id_derive_str(&s, &s, "alice");
    mk_id_derive(&s, &s, "\x10\x0e\0\0\0\0\0\0", 8);
    mk_id_derive(&s, &s, "\0\0\0\0\0\0\0\0", 8);
    assert_true(mk_id_eq(&s, &v.signature));

    /* every field moves it */
    mk_id base = v.signature;
    mk_ticket_validator_free(&v);
    mk_jwt_config variants[7];
    for (int i = 0; i < 7; i++)
        variants[i] = cfg;
    mk_peer_id swapped[] = {zero, f->a.pub};
    const char *iss2[] = {"a"};
    variants[0].keys = swapped;
    variants[1].n_keys = 1;
    variants[2].allow_non_expiring = false;
    variants[3].issuers = iss2, variants[3].n_issuers = 1;
    variants[4].n_audiences = 1;
    variants[5].subject = NULL;
    variants[6].max_lifetime_s = 3601;
    mk_id seen[8];
    seen[0] = base;
    for (int i = 0; i < 7; i++) {
        validator(&v, &variants[i]);
        for (int j = 0; j <= i; j++)
            if (mk_id_eq(&v.signature, &seen[j]))
                fail_msg("variant %d collides (%d)", i, j);
        seen[i + 1] = v.signature;
        mk_ticket_validator_free(&v);
    }
}

static void config_refusals(void **state)
{
    fixture *f = *state;
    struct mk_ticket_validator v;
    char why[MK_ERRMSG_SIZE];
    mk_peer_id keys[] = {f->a.pub};
    const char *comma[] = {"a,b"}, *empty[] = {""}, *nul[] = {NULL};
    struct {
        mk_jwt_config cfg;
        const char *needle;
    } cases[] = {
        {{.keys = keys, .n_keys = 0}, "at least one key"},
        {{.keys = NULL, .n_keys = 1}, "at least one key"},
        {{.keys = keys, .n_keys = 1, .issuers = comma, .n_issuers = 1},
         "issuer 0 contains ','"},
        {{.keys = keys, .n_keys = 1, .issuers = empty, .n_issuers = 1},
         "issuer 0 is empty"},
        {{.keys = keys, .n_keys = 1, .issuers = nul, .n_issuers = 1},
         "issuer 0 is empty"},
        {{.keys = keys, .n_keys = 1, .audiences = comma, .n_audiences = 1},
         "audience 0 contains ','"},
        {{.keys = keys, .n_keys = 1, .subject = ""}, "subject is empty"},
        {{.keys = keys, .n_keys = 1, .max_lifetime_s = -1}, "max_lifetime"},
        {{.keys = keys, .n_keys = 1, .max_lifetime_s = MK_JWT_MAX_TIME + 1},
         "max_lifetime"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&v, 0xa5, sizeof v);
        why[0] = '\0';
        assert_refused(mk_jwt_validator_init(&v, &cases[i].cfg, why),
                       MK_EINVAL, why, cases[i].needle);
        assert_null(v.data);
        assert_null(v.validate);
        mk_ticket_validator_free(&v); /* harmless on a zeroed validator */
    }

    /* mk_jwt_verify wants a JWT validator */
    struct mk_ticket_validator fake = {.version = 1};
    assert_refused(mk_jwt_verify(&fake, "a.b.c", 5, &f->peer, NOW_MS, NULL,
                                 NULL, why),
                   MK_EINVAL, why, "not a JWT validator");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(b64url_vectors_and_strictness),
        cmocka_unit_test(class_is_the_mosaik_id),
        cmocka_unit_test_setup_teardown(issue_matches_independent_token,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(key_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(every_tamper_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(wrong_algorithms, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_keys_and_trailing_bytes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(expiry_and_not_before, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(issuer_audience_subject, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(recognise_issuer_accepts_only_its_root,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(signature_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(config_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
