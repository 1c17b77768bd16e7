/* EdDSA JWT tickets: issuing, the strict parser and the validator
 * (include/mosaik/jwt.h).
 *
 * A ticket arrives from a remote peer, so every byte of it is hostile until
 * the signature has verified. The order of the checks follows from that.
 * The length cap and the base64url check come first and cost nothing. The
 * header comes next, and only "alg" decides which verification runs: the
 * token never picks a key or an algorithm that we did not configure. That
 * closes the "none" and the HS256-with-the-public-key confusions. The claims
 * are base64url-decoded early, for a precise reason, but are parsed as JSON
 * only once the signature has verified.
 *
 * Every accepted token has exactly one spelling: base64url has no padding and
 * no spare bits, and JSON has no duplicate keys and no trailing bytes.
 * Otherwise two different byte strings could carry the same meaning, and
 * a duplicate key could mean one thing to us and another to a different
 * parser.
 */
#include "mosaik/jwt.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/error.h"

const mk_id MK_JWT_CLASS = {{
    0x45, 0x86, 0xea, 0xfa, 0xb5, 0x0d, 0x29, 0xf2, 0xad, 0x52, 0x12,
    0xe0, 0x8f, 0x84, 0xd0, 0xa7, 0x89, 0xcd, 0x6a, 0x56, 0x5c, 0xe8,
    0xd3, 0x44, 0x65, 0x2b, 0x1b, 0x7b, 0x60, 0x97, 0x3d, 0x8c,
}};

/* The only header we write; verification does not depend on its bytes. */
static const char HEADER[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";

/* The policy a JWT validator holds in v->data: copies of mk_jwt_config. */
typedef struct jwt_policy {
    mk_peer_id *keys;
    size_t n_keys;
    char **issuers;
    size_t n_issuers;
    char **audiences;
    size_t n_audiences;
    char *subject;
    bool allow_non_expiring;
    int64_t max_lifetime_s;
} jwt_policy;

/* Strings from a token end up in logs and on terminals: show at most 72
 * printable ASCII characters, each other byte as '?'. */
#define SHOWN_MAX 72
static const char *shown(const char *s, char out[SHOWN_MAX + 4])
{
    size_t i = 0;
    for (; s[i] && i < SHOWN_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (s[i])
        memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

/* ---- base64url ---------------------------------------------------------- */

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t mk_b64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

void mk_b64url_encode(const void *in, size_t n, char *out)
{
    const uint8_t *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
    }
    out[o] = '\0';
}

int mk_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap,
                     size_t *out_len, char *why)
{
    /* The spelling first, so that "abc=" is reported as padding rather
     * than as a length or a size. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (b64_value(c) >= 0)
            continue;
        if (c == '=')
            return mk_errf(why, MK_EDECODE,
                           "'=' at offset %zu: padding is not allowed", i);
        if (c >= 0x21 && c < 0x7f)
            return mk_errf(why, MK_EDECODE,
                           "'%c' at offset %zu is not base64url", c, i);
        return mk_errf(why, MK_EDECODE,
                       "byte 0x%02x at offset %zu is not base64url", c, i);
    }
    if (n % 4 == 1)
        return mk_errf(why, MK_EDECODE,
                       "%zu characters cannot be base64url (4k+1)", n);
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return mk_errf(why, MK_EMSGSIZE, "decodes to %zu bytes, more than %zu",
                       need, cap);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6) | (uint32_t)b64_value((unsigned char)in[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* 2 or 4 bits are left over after a partial group; they must be zero
     * or the same bytes would have several spellings. */
    if (acc != 0)
        return mk_errf(why, MK_EDECODE,
                       "last character has non-zero unused bits "
                       "(non-canonical base64url)");
    *out_len = o;
    return 0;
}

/* ---- issuing ------------------------------------------------------------ */

static int put_str(json_t *o, const char *name, const char *value, char *why)
{
    if (!value)
        return 0;
    json_t *s = json_string(value);
    if (!s)
        return mk_errf(why, MK_EINVAL, "%s is not valid UTF-8", name);
    if (json_object_set_new(o, name, s) != 0)
        return mk_errf(why, MK_ENOMEM, "out of memory");
    return 0;
}

static int put_time(json_t *o, const char *name, int64_t t, char *why)
{
    if (t < 0 || t > MK_JWT_MAX_TIME)
        return mk_errf(why, MK_EINVAL, "%s %lld is not a time in 0..%lld",
                       name, (long long)t, (long long)MK_JWT_MAX_TIME);
    if (json_object_set_new(o, name, json_integer((json_int_t)t)) != 0)
        return mk_errf(why, MK_ENOMEM, "out of memory");
    return 0;
}

/* The claims JSON text (malloc'd by jansson) or a negative code. */
static int claims_text(const mk_peer_id *peer, const mk_jwt_claims *c,
                       char **text, char *why)
{
    char hex[MK_ID_HEX_LEN + 1];
    const char *sub = c->sub;
    if (!sub) {
        if (!peer)
            return mk_errf(why, MK_EINVAL, "no subject: give sub or a peer");
        sub = mk_id_hex(peer, hex);
    }
    json_t *o = json_object();
    if (!o)
        return mk_errf(why, MK_ENOMEM, "out of memory");
    int rc = put_str(o, "iss", c->iss, why);
    if (rc == 0)
        rc = put_str(o, "sub", sub, why);
    if (rc == 0)
        rc = put_str(o, "aud", c->aud, why);
    if (rc == 0)
        rc = put_time(o, "iat", c->iat, why);
    if (rc == 0 && c->nbf != 0)
        rc = put_time(o, "nbf", c->nbf, why);
    if (rc == 0 && c->exp != MK_JWT_NO_EXP)
        rc = put_time(o, "exp", c->exp, why);
    if (rc == 0)
        rc = put_str(o, "jti", c->jti, why);
    if (rc == 0) {
        *text = json_dumps(o, JSON_COMPACT);
        if (!*text)
            rc = mk_errf(why, MK_ENOMEM, "out of memory");
    }
    json_decref(o);
    return rc;
}

int mk_jwt_issue(const mk_keypair *kp, const mk_peer_id *peer,
                 const mk_jwt_claims *c, char **token, char *why)
{
    *token = NULL;
    char *payload;
    int rc = claims_text(peer, c, &payload, why);
    if (rc < 0)
        return rc;

    size_t hlen = mk_b64url_encoded_len(sizeof HEADER - 1);
    size_t plen = mk_b64url_encoded_len(strlen(payload));
    size_t slen = mk_b64url_encoded_len(MK_SIG_LEN);
    size_t total = hlen + 1 + plen + 1 + slen;
    if (total > MK_JWT_MAX_LEN) {
        free(payload);
        return mk_errf(why, MK_EMSGSIZE, "token would be %zu bytes (limit %d)",
                       total, MK_JWT_MAX_LEN);
    }
    char *t = malloc(total + 1);
    if (!t) {
        free(payload);
        return mk_errf(why, MK_ENOMEM, "out of memory");
    }
    mk_b64url_encode(HEADER, sizeof HEADER - 1, t);
    t[hlen] = '.';
    mk_b64url_encode(payload, strlen(payload), t + hlen + 1);
    free(payload);
    t[hlen + 1 + plen] = '.';

    uint8_t sig[MK_SIG_LEN];
    mk_sign(kp, t, hlen + 1 + plen, sig);
    mk_b64url_encode(sig, sizeof sig, t + hlen + 1 + plen + 1);
    *token = t;
    return 0;
}

int mk_jwt_issue_ticket(mk_ticket *t, const mk_keypair *kp,
                        const mk_peer_id *peer, const mk_jwt_claims *c,
                        char *why)
{
    memset(t, 0, sizeof *t);
    char *token;
    int rc = mk_jwt_issue(kp, peer, c, &token, why);
    if (rc < 0)
        return rc;
    rc = mk_ticket_init(t, &MK_JWT_CLASS, token, strlen(token));
    free(token);
    return rc < 0 ? mk_errf(why, rc, "out of memory") : 0;
}

/* ---- parsing and checking ----------------------------------------------- */

/* Strictly decodes segment `name` into `out` (room for `n` bytes). */
static int segment_bytes(const char *name, const char *seg, size_t n,
                         uint8_t *out, size_t *len, char *why)
{
    char inner[MK_ERRMSG_SIZE];
    if (mk_b64url_decode(seg, n, out, n, len, inner) < 0)
        return mk_errf(why, MK_EDECODE, "%s: %s", name, inner);
    return 0;
}

/* Parses decoded segment `name` as one JSON object: no duplicate keys,
 * nothing after it. */
static int segment_json(const char *name, const uint8_t *text, size_t len,
                        json_t **out, char *why)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES,
                           &e);
    if (!j) {
        if (json_error_code(&e) == json_error_out_of_memory)
            return mk_errf(why, MK_ENOMEM, "out of memory");
        /* jansson quotes the offending input, which may be any byte */
        for (char *c = e.text; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                *c = '?';
        return mk_errf(why, MK_EDECODE, "%s is not valid JSON: %s", name,
                       e.text);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return mk_errf(why, MK_EDECODE, "%s is not a JSON object", name);
    }
    *out = j;
    return 0;
}

static int check_header(json_t *h, char *why)
{
    char buf[SHOWN_MAX + 4];
    json_t *alg = json_object_get(h, "alg");
    if (!alg)
        return mk_errf(why, MK_EUNSUPPORTED, "header has no alg");
    if (!json_is_string(alg))
        return mk_errf(why, MK_EUNSUPPORTED, "header alg is not a string");
    if (strcmp(json_string_value(alg), "EdDSA") != 0)
        return mk_errf(why, MK_EUNSUPPORTED,
                       "alg \"%s\" is not accepted (only EdDSA)",
                       shown(json_string_value(alg), buf));
    json_t *typ = json_object_get(h, "typ");
    if (typ && !(json_is_string(typ) &&
                 strcmp(json_string_value(typ), "JWT") == 0))
        return mk_errf(why, MK_EDECODE, "header typ is not \"JWT\"");
    /* We understand no extension, so a critical one can never be honoured
     * (RFC 7515 §4.1.11). */
    if (json_object_get(h, "crit"))
        return mk_errf(why, MK_EUNSUPPORTED,
                       "header has crit; no extension is supported");
    return 0;
}

/* A string claim: 1 present (in *out), 0 absent, or a refusal. */
static int str_claim(json_t *claims, const char *name, const char **out,
                     char *why)
{
    json_t *j = json_object_get(claims, name);
    *out = NULL;
    if (!j)
        return 0;
    if (!json_is_string(j))
        return mk_errf(why, MK_EDECODE, "%s is not a string", name);
    *out = json_string_value(j);
    return 1;
}

/* A NumericDate claim in whole seconds: 1 present, 0 absent, or refusal. */
static int time_claim(json_t *claims, const char *name, int64_t *out,
                      char *why)
{
    json_t *j = json_object_get(claims, name);
    *out = 0;
    if (!j)
        return 0;
    if (!json_is_integer(j))
        return mk_errf(why, MK_EDECODE,
                       "%s is not an integer number of seconds", name);
    json_int_t v = json_integer_value(j);
    if (v < 0 || v > MK_JWT_MAX_TIME)
        return mk_errf(why, MK_EDECODE, "%s %lld cannot be represented", name,
                       (long long)v);
    *out = (int64_t)v;
    return 1;
}

static int one_of(const char *s, char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Step 4 and 5 of the header comment, on verified claims. `subject` is what
 * sub must be, or NULL to only type-check it. */
static int check_claims(const jwt_policy *p, json_t *c, const char *subject,
                        int64_t now_ms, int64_t *expires_ms, char *why)
{
    char buf[SHOWN_MAX + 4], buf2[SHOWN_MAX + 4];
    const char *iss, *sub, *aud, *jti;
    int64_t exp, nbf, iat;
    int has_iss, has_sub, has_aud, has_exp, has_nbf, rc;

    if (json_is_array(json_object_get(c, "aud")))
        return mk_errf(why, MK_EDECODE,
                       "aud is an array; only a single string is accepted");
    if ((rc = has_iss = str_claim(c, "iss", &iss, why)) < 0 ||
        (rc = has_sub = str_claim(c, "sub", &sub, why)) < 0 ||
        (rc = has_aud = str_claim(c, "aud", &aud, why)) < 0 ||
        (rc = str_claim(c, "jti", &jti, why)) < 0 ||
        (rc = has_exp = time_claim(c, "exp", &exp, why)) < 0 ||
        (rc = has_nbf = time_claim(c, "nbf", &nbf, why)) < 0 ||
        (rc = time_claim(c, "iat", &iat, why)) < 0)
        return rc;

    if (p->n_issuers > 0) {
        if (!has_iss)
            return mk_errf(why, MK_ENOT_ALLOWED, "no iss claim");
        if (!one_of(iss, p->issuers, p->n_issuers))
            return mk_errf(why, MK_ENOT_ALLOWED, "iss \"%s\" is not allowed",
                           shown(iss, buf));
    }
    if (subject) {
        if (!has_sub)
            return mk_errf(why, MK_ENOT_ALLOWED, "no sub claim");
        if (strcmp(sub, subject) != 0)
            return mk_errf(why, MK_ENOT_ALLOWED,
                           "sub \"%s\" is not the expected \"%s\"",
                           shown(sub, buf), shown(subject, buf2));
    }
    if (has_nbf && nbf * 1000 > now_ms)
        return mk_errf(why, MK_ENOT_ALLOWED, "not valid before %lld (nbf)",
                       (long long)nbf);
    if (!has_exp && !p->allow_non_expiring)
        return mk_errf(why, MK_ENOT_ALLOWED,
                       "no exp claim and non-expiring tokens are not allowed");
    if (has_exp && exp * 1000 <= now_ms)
        return mk_errf(why, MK_EEXPIRED, "expired at %lld (exp)",
                       (long long)exp);
    if (p->max_lifetime_s > 0) {
        int64_t left;
        if (!has_exp)
            return mk_errf(why, MK_ENOT_ALLOWED,
                           "token never expires; max lifetime is %llds",
                           (long long)p->max_lifetime_s);
        if (__builtin_sub_overflow(exp * 1000, now_ms, &left) ||
            left > p->max_lifetime_s * 1000)
            return mk_errf(why, MK_ENOT_ALLOWED,
                           "exp %lld is further away than the max lifetime "
                           "of %llds",
                           (long long)exp, (long long)p->max_lifetime_s);
    }
    if (p->n_audiences > 0) {
        if (!has_aud)
            return mk_errf(why, MK_ENOT_ALLOWED, "no aud claim");
        if (!one_of(aud, p->audiences, p->n_audiences))
            return mk_errf(why, MK_ENOT_ALLOWED, "aud \"%s\" is not allowed",
                           shown(aud, buf));
    }
    if (expires_ms)
        *expires_ms = has_exp ? exp * 1000 : MK_TICKET_NEVER;
    return 0;
}

/* The whole validation of one token. `require_peer` says whether a missing
 * peer (with no configured subject) is an error or skips the sub check. */
static int jwt_check(const jwt_policy *p, const char *tok, size_t len,
                     const mk_peer_id *peer, int require_peer, int64_t now_ms,
                     int64_t *expires_ms, char **claims_out, char *why)
{
    if (claims_out)
        *claims_out = NULL;
    if (len > MK_JWT_MAX_LEN)
        return mk_errf(why, MK_EMSGSIZE, "token is %zu bytes (limit %d)", len,
                       MK_JWT_MAX_LEN);
    if (len == 0)
        return mk_errf(why, MK_EDECODE, "empty token");

    size_t segments = 1;
    for (size_t i = 0; i < len; i++)
        segments += tok[i] == '.';
    if (segments != 3)
        return mk_errf(why, MK_EDECODE, "token has %zu segments; a JWT has 3",
                       segments);
    const char *dot1 = memchr(tok, '.', len);
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
    const char *hseg = tok, *pseg = dot1 + 1, *sseg = dot2 + 1;
    size_t hn = (size_t)(dot1 - tok), pn = (size_t)(dot2 - pseg),
           sn = len - (size_t)(sseg - tok);

    char hex[MK_ID_HEX_LEN + 1];
    const char *subject = p->subject;
    if (!subject && peer)
        subject = mk_id_hex(peer, hex);
    if (!subject && require_peer)
        return mk_errf(why, MK_EINVAL, "no peer to match sub against");

    /* All three segments must be strict base64url before anything else:
     * decoding is harmless, and the reason is then about the spelling.
     * The decoded header and claims fit in `len` bytes together. */
    uint8_t *scratch = malloc(len);
    if (!scratch)
        return mk_errf(why, MK_ENOMEM, "out of memory");
    uint8_t *htext = scratch, *ctext = scratch + hn, sig[MK_SIG_LEN];
    size_t hlen = 0, clen = 0, siglen = 0;
    json_t *header = NULL, *claims = NULL;
    char inner[MK_ERRMSG_SIZE];
    int rc;
    if ((rc = segment_bytes("header", hseg, hn, htext, &hlen, why)) < 0 ||
        (rc = segment_bytes("claims", pseg, pn, ctext, &clen, why)) < 0)
        goto out;
    rc = mk_b64url_decode(sseg, sn, sig, sizeof sig, &siglen, inner);
    if (rc == MK_EDECODE) {
        rc = mk_errf(why, MK_EDECODE, "signature: %s", inner);
        goto out;
    }
    int sig_fits = rc == 0;

    /* The header decides nothing but "is this EdDSA": the key comes from
     * the policy, never from the token. */
    if ((rc = segment_json("header", htext, hlen, &header, why)) < 0 ||
        (rc = check_header(header, why)) < 0)
        goto out;
    if (!sig_fits || siglen != MK_SIG_LEN) {
        rc = mk_errf(why, MK_EDECODE, "signature is not %d bytes", MK_SIG_LEN);
        goto out;
    }
    size_t signed_len = (size_t)(dot2 - tok);
    rc = MK_EBAD_SIGNATURE;
    for (size_t i = 0; i < p->n_keys && rc != 0; i++)
        rc = mk_verify(&p->keys[i], tok, signed_len, sig) == 0
                 ? 0
                 : MK_EBAD_SIGNATURE;
    if (rc < 0) {
        rc = mk_errf(why, MK_EBAD_SIGNATURE,
                     "signature does not verify with any of the %zu key%s",
                     p->n_keys, p->n_keys == 1 ? "" : "s");
        goto out;
    }

    /* Only now are the claims worth parsing. */
    if ((rc = segment_json("claims", ctext, clen, &claims, why)) < 0 ||
        (rc = check_claims(p, claims, subject, now_ms, expires_ms, why)) < 0)
        goto out;
    if (claims_out) {
        /* the verified bytes themselves, not a re-encoding */
        if (!(*claims_out = malloc(clen + 1))) {
            rc = mk_errf(why, MK_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(*claims_out, ctext, clen);
        (*claims_out)[clen] = '\0';
    }
    rc = 0;
out:
    json_decref(claims);
    json_decref(header);
    free(scratch);
    return rc;
}

/* ---- the validator ------------------------------------------------------ */

static int jwt_validate(const struct mk_ticket_validator *v,
                        const uint8_t *data, size_t len,
                        const mk_peer_id *peer, int64_t now_ms,
                        int64_t *expires_ms, char *why)
{
    return jwt_check(v->data, (const char *)data, len, peer, 1, now_ms,
                     expires_ms, NULL, why);
}

static void policy_free(jwt_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->issuers && i < p->n_issuers; i++)
        free(p->issuers[i]);
    for (size_t i = 0; p->audiences && i < p->n_audiences; i++)
        free(p->audiences[i]);
    free(p->issuers);
    free(p->audiences);
    free(p->keys);
    free(p->subject);
    free(p);
}

static void jwt_free(struct mk_ticket_validator *v)
{
    policy_free(v->data);
    v->data = NULL;
}

int mk_jwt_verify(const struct mk_ticket_validator *v, const char *token,
                  size_t len, const mk_peer_id *peer, int64_t now_ms,
                  int64_t *expires_ms, char **claims, char *why)
{
    if (claims)
        *claims = NULL;
    if (!v || v->validate != jwt_validate || !v->data)
        return mk_errf(why, MK_EINVAL, "not a JWT validator");
    return jwt_check(v->data, token, len, peer, 0, now_ms, expires_ms, claims,
                     why);
}

/* Copies a list of names, refusing ones that would make the ","-join in
 * the signature ambiguous. */
static int copy_names(const char *what, const char *const *in, size_t n,
                      char ***out, size_t *n_out, char *why)
{
    if (n == 0)
        return 0;
    if (!in)
        return mk_errf(why, MK_EINVAL, "%s: NULL list", what);
    char **list = calloc(n, sizeof *list);
    if (!list)
        return mk_errf(why, MK_ENOMEM, "out of memory");
    *out = list;
    for (size_t i = 0; i < n; i++) {
        if (!in[i] || !in[i][0])
            return mk_errf(why, MK_EINVAL, "%s %zu is empty", what, i);
        if (strchr(in[i], ','))
            return mk_errf(why, MK_EINVAL, "%s %zu contains ','", what, i);
        if (!(list[i] = strdup(in[i])))
            return mk_errf(why, MK_ENOMEM, "out of memory");
        *n_out = i + 1;
    }
    return 0;
}

static void derive_joined(mk_id *s, char *const *list, size_t n)
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, s->b, MK_ID_LEN);
    for (size_t i = 0; i < n; i++) {
        if (i)
            mk_blake3_update(&h, ",", 1);
        mk_blake3_update(&h, list[i], strlen(list[i]));
    }
    mk_blake3_final(&h, s->b, MK_ID_LEN);
}

static void derive_u64le(mk_id *s, uint64_t x)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(x >> (8 * i));
    mk_id_derive(s, s, le, sizeof le);
}

/* The chain documented in jwt.h. */
static void policy_signature(const jwt_policy *p, mk_id *out)
{
    mk_id s = MK_JWT_CLASS, eddsa;
    mk_id_from_str(&eddsa, "eddsa");
    for (size_t i = 0; i < p->n_keys; i++) {
        mk_id fp;
        mk_id_derive(&fp, &eddsa, p->keys[i].b, MK_ID_LEN);
        mk_id_derive_str(&s, &s, "EdDSA");
        mk_id_derive(&s, &s, fp.b, MK_ID_LEN);
    }
    uint8_t flag = p->allow_non_expiring ? 1 : 0;
    mk_id_derive(&s, &s, &flag, 1);
    derive_joined(&s, p->issuers, p->n_issuers);
    derive_joined(&s, p->audiences, p->n_audiences);
    mk_id_derive_str(&s, &s, p->subject ? p->subject : "");
    derive_u64le(&s, (uint64_t)p->max_lifetime_s);
    derive_u64le(&s, 0); /* max_age */
    *out = s;
}

int mk_jwt_validator_init(struct mk_ticket_validator *v,
                          const mk_jwt_config *cfg, char *why)
{
    memset(v, 0, sizeof *v);
    if (cfg->n_keys == 0 || !cfg->keys)
        return mk_errf(why, MK_EINVAL,
                       "a JWT validator needs at least one key");
    if (cfg->subject && !cfg->subject[0])
        return mk_errf(why, MK_EINVAL,
                       "subject is empty (NULL means: the validated peer)");
    if (cfg->max_lifetime_s < 0 || cfg->max_lifetime_s > MK_JWT_MAX_TIME)
        return mk_errf(why, MK_EINVAL, "max_lifetime %llds is out of range",
                       (long long)cfg->max_lifetime_s);

    jwt_policy *p = calloc(1, sizeof *p);
    if (!p)
        return mk_errf(why, MK_ENOMEM, "out of memory");
    int rc = MK_ENOMEM;
    p->keys = malloc(cfg->n_keys * sizeof *p->keys);
    if (!p->keys) {
        mk_errf(why, rc, "out of memory");
        goto err;
    }
    memcpy(p->keys, cfg->keys, cfg->n_keys * sizeof *p->keys);
    p->n_keys = cfg->n_keys;
    if ((rc = copy_names("issuer", cfg->issuers, cfg->n_issuers, &p->issuers,
                         &p->n_issuers, why)) < 0 ||
        (rc = copy_names("audience", cfg->audiences, cfg->n_audiences,
                         &p->audiences, &p->n_audiences, why)) < 0)
        goto err;
    if (cfg->subject && !(p->subject = strdup(cfg->subject))) {
        rc = mk_errf(why, MK_ENOMEM, "out of memory");
        goto err;
    }
    p->allow_non_expiring = cfg->allow_non_expiring;
    p->max_lifetime_s = cfg->max_lifetime_s;

    v->version = MK_TICKET_VALIDATOR_VERSION;
    v->data = p;
    v->class = MK_JWT_CLASS;
    policy_signature(p, &v->signature);
    v->validate = jwt_validate;
    v->free = jwt_free;
    return 0;
err:
    policy_free(p);
    return rc;
}

int mk_jwt_recognise_issuer(const mk_id *root, const mk_peer_id *keys,
                            size_t n, struct mk_ticket_validator *v,
                            char *why)
{
    char hex[MK_ID_HEX_LEN + 1];
    const char *issuers[] = {mk_id_hex(root, hex)};
    mk_jwt_config cfg = {
        .keys = keys,
        .n_keys = n,
        .issuers = issuers,
        .n_issuers = 1,
    };
    return mk_jwt_validator_init(v, &cfg, why);
}
