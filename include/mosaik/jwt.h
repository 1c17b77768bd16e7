/* JWT tickets: EdDSA (Ed25519) compact JSON Web Tokens, issued and validated.
 *
 * A JWT ticket is a ticket of class MK_JWT_CLASS whose bytes are a compact
 * JWS (RFC 7515/7519): base64url(header) "." base64url(claims) "."
 * base64url(signature). Only EdDSA over Ed25519 (RFC 8037) is issued or
 * accepted. Debian 12's libjwt cannot do it, and an own small parser lets us
 * be strict. A coalition's ticket issuer signs with keys from its ACL and
 * puts the hex of its TICKETS_ROOT in `iss` (SPEC §4). A component accepts
 * those tickets only if one of its validators names that root
 * (mk_jwt_recognise_issuer).
 *
 * Validation (reference/mosaik.md §7.2), each refusal with a reason:
 *   1. at most MK_JWT_MAX_LEN bytes, exactly three '.'-separated segments,
 *      each strict base64url: alphabet A-Z a-z 0-9 - _, no '=' padding, no
 *      whitespace, no length of 4k+1, unused trailing bits zero (so every
 *      token has one spelling);
 *   2. the header is one JSON object without duplicate keys or trailing
 *      bytes, with "alg":"EdDSA" ("none", "HS256", everything else is
 *      refused before any key is used), "typ" absent or "JWT", and no
 *      "crit";
 *   3. the 64-byte signature verifies over the first two segments with one
 *      of the configured keys (any of them: key rotation);
 *   4. the claims are one JSON object without duplicate keys or trailing
 *      bytes; iss, sub, aud and jti, when present, are strings; exp, nbf
 *      and iat, when present, are non-negative integers (whole seconds);
 *   5. iss is one of the allowed issuers (when any are configured); sub is
 *      the required subject, by default the validated peer's id as 64
 *      lowercase hex; nbf <= now; exp is present (unless non-expiring tokens
 *      are allowed) and exp > now, with no clock leeway; exp - now is at
 *      most max_lifetime (when set); aud is one of the allowed audiences
 *      (when any are configured; aud must then be a single string).
 * The ticket then expires at exp * 1000 ms, or never (MK_TICKET_NEVER).
 *
 * Validator signature (the id that goes into group ids), with id(),
 * derive() as in SPEC §2 and `s` the running value:
 *
 *   s = id("mosaik.tickets.jwt.v1")                   (= MK_JWT_CLASS)
 *   for each key k, in the order configured:
 *       s = derive(s, "EdDSA")
 *       s = derive(s, derive(id("eddsa"), k))          (k: 32 raw bytes)
 *   s = derive(s, [allow_non_expiring ? 0x01 : 0x00])  (one byte)
 *   s = derive(s, issuers joined with ",")             ("" when none)
 *   s = derive(s, audiences joined with ",")           ("" when none)
 *   s = derive(s, subject or "")                       ("" = the peer)
 *   s = derive(s, u64le(max_lifetime_s))               (0 = no limit)
 *   s = derive(s, u64le(0))                            (max_age: not offered)
 *   signature = s
 *
 * This is mosaik's chain (§7.2) with its key fingerprint rule applied to
 * EdDSA. The joins are unambiguous here because an issuer or audience may
 * not be empty or contain ',' and a configured subject may not be empty
 * (mk_jwt_validator_init refuses them).
 */
#ifndef MK_JWT_H
#define MK_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/id.h"
#include "mosaik/key.h"
#include "mosaik/ticket.h"

/* Longest token issued or accepted, in bytes. */
#define MK_JWT_MAX_LEN 8192

/* exp value that issues a token without an exp claim (never expires). */
#define MK_JWT_NO_EXP INT64_MAX

/* Largest exp, nbf or iat (seconds) whose millisecond value fits an
 * int64_t. Larger ones cannot be represented and are refused. */
#define MK_JWT_MAX_TIME (INT64_MAX / 1000)

/* id("mosaik.tickets.jwt.v1"). */
extern const mk_id MK_JWT_CLASS;

/* ---- issuing ------------------------------------------------------------ */

/* The claims of a token to issue. Strings are borrowed for the call and must
 * be UTF-8; NULL leaves the claim out. Times are Unix seconds. */
typedef struct mk_jwt_claims {
    const char *iss;
    const char *sub; /* NULL: the peer's id as 64 lowercase hex */
    const char *aud;
    const char *jti;
    int64_t iat;     /* written as given */
    int64_t nbf;     /* 0: left out (it would allow everything anyway) */
    int64_t exp;     /* MK_JWT_NO_EXP: left out, the token never expires */
} mk_jwt_claims;

/* Signs a compact JWT with header {"alg":"EdDSA","typ":"JWT"} and the claims
 * in the order iss, sub, aud, iat, nbf, exp, jti. `peer` (the subject when
 * c->sub is NULL) may be NULL otherwise. On success returns 0 and sets
 * *token to a malloc'd NUL-terminated string (caller frees). Fails with
 * MK_EINVAL (a string is not UTF-8, a time is negative or above
 * MK_JWT_MAX_TIME, no subject), MK_EMSGSIZE (longer than MK_JWT_MAX_LEN) or
 * MK_ENOMEM; *token is then NULL and `why` (may be NULL) says which. */
int mk_jwt_issue(const mk_keypair *kp, const mk_peer_id *peer,
                 const mk_jwt_claims *c, char **token, char *why);

/* mk_jwt_issue() into a ticket of class MK_JWT_CLASS whose data is the
 * token (without its NUL). Free it with mk_ticket_free(). */
int mk_jwt_issue_ticket(mk_ticket *t, const mk_keypair *kp,
                        const mk_peer_id *peer, const mk_jwt_claims *c,
                        char *why);

/* ---- validating --------------------------------------------------------- */

/* What a JWT validator accepts. Everything is copied by
 * mk_jwt_validator_init. */
typedef struct mk_jwt_config {
    const mk_peer_id *keys; /* at least one Ed25519 public key */
    size_t n_keys;
    const char *const *issuers; /* iss must be one of these; none: any */
    size_t n_issuers;
    const char *const *audiences; /* aud must be one of these; none: any */
    size_t n_audiences;
    const char *subject;     /* NULL: the validated peer's id as 64 hex */
    bool allow_non_expiring; /* accept tokens without exp */
    int64_t max_lifetime_s;  /* refuse exp - now above this; 0: no limit */
} mk_jwt_config;

/* Builds a JWT validator in `v` (caller memory): class MK_JWT_CLASS, the
 * signature documented above. Returns 0, MK_EINVAL (no key, an empty
 * issuer or audience or one containing ',', an empty subject, a negative
 * or unrepresentable max_lifetime) or MK_ENOMEM, with `v` zeroed and the
 * reason in `why` (may be NULL). Release with mk_ticket_validator_free(). */
int mk_jwt_validator_init(struct mk_ticket_validator *v,
                          const mk_jwt_config *cfg, char *why);

/* A validator that recognises the tickets of one issuer root (a coalition's
 * TICKETS_ROOT): iss must be exactly the root's 64 lowercase hex, the
 * signature must verify with one of `keys` (n >= 1, copied), and sub must
 * be the validated peer. Same returns as mk_jwt_validator_init(). */
int mk_jwt_recognise_issuer(const mk_id *root, const mk_peer_id *keys,
                            size_t n, struct mk_ticket_validator *v,
                            char *why);

/* Validates `token` (`len` bytes, no NUL needed) with JWT validator `v`, as
 * v->validate() does, and on success also hands out the verified claims
 * JSON text (malloc'd, NUL-terminated, caller frees) when `claims` is not
 * NULL. Unlike v->validate(), `peer` may be NULL: then, unless the
 * validator requires a fixed subject, sub is only type-checked (for tools
 * that inspect tokens; a component deciding about a peer always passes it).
 * Returns 0, MK_EINVAL when `v` is not a JWT validator, MK_ENOMEM, or a
 * refusal: MK_EMSGSIZE (too long), MK_EDECODE (malformed), MK_EUNSUPPORTED
 * (alg or crit), MK_EBAD_SIGNATURE, MK_EEXPIRED (exp <= now) or
 * MK_ENOT_ALLOWED (any other claim), with the reason in `why`. */
int mk_jwt_verify(const struct mk_ticket_validator *v, const char *token,
                  size_t len, const mk_peer_id *peer, int64_t now_ms,
                  int64_t *expires_ms, char **claims, char *why);

/* ---- base64url as JWTs spell it (RFC 7515 §2: no padding) -------------- */

/* Characters mk_b64url_encode writes for `n` bytes (without the NUL). */
size_t mk_b64url_encoded_len(size_t n);

/* Writes mk_b64url_encoded_len(n) characters and a NUL to `out`. */
void mk_b64url_encode(const void *in, size_t n, char *out);

/* Strictly decodes `n` characters: refuses padding, any character outside
 * the alphabet, a length of 4k+1 and non-zero unused trailing bits, so the
 * only accepted spelling is the one mk_b64url_encode writes. Returns 0
 * with the byte count in *out_len, MK_EDECODE with the position in `why`
 * (may be NULL), or MK_EMSGSIZE when the result would exceed `cap`. */
int mk_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap,
                     size_t *out_len, char *why);

#endif /* MK_JWT_H */
