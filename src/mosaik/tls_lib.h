/* Internal: the OpenSSL library context the transports' TLS runs in.
 *
 * OpenSSL 3.0 parses a certificate's public key through its decoder
 * framework, and builds the decoder chain afresh for every key: it
 * gathers every decoder (about forty in the default provider) and every
 * key manager its context offers, walking every method the context has
 * made of any kind to do it, and tries to link them up. For the one
 * Ed25519 leaf of a handshake that was a fifth of either side's CPU in a
 * full handshake, and it happens again whenever a session is read back.
 * Writing our own key into our certificate goes the same way through the
 * encoders.
 *
 * A library context of our own fixes the choice: it holds the default
 * provider's algorithms, but of decoders and encoders only DER
 * SubjectPublicKeyInfo to and from Ed25519 (the only key a peer may
 * present), and of key managers, ciphers and digests only what TLS 1.3
 * with our suites uses. Everything it holds is the default provider's own
 * code, run with its own provider context. The default provider itself
 * lives in a second, private context, so its full lists are never seen
 * by the transports'.
 */
#ifndef MK_TLS_LIB_H
#define MK_TLS_LIB_H

#include <openssl/types.h>

typedef struct mk__tls_lib mk__tls_lib;

/* One context serves every transport of the process, as OpenSSL's own
 * default one would: it holds algorithms, no keys, and OpenSSL makes it
 * safe to share between threads. Made for its first holder and freed
 * with its last, because it is not small: about 2.3 ms to build and
 * 330 KiB, which 64 nodes in one process each paid when every transport
 * had its own.
 *
 * Takes a hold on it. Returns 0 and `*out`, or MK_ETLS when the default
 * provider lacks an algorithm to keep (an OpenSSL other than the one this
 * was written for; the caller may then use OpenSSL's default context,
 * slower but just as correct), or MK_ENOMEM. */
int mk__tls_lib_hold(mk__tls_lib **out);

/* The context to make SSL_CTX, keys and certificates in. */
OSSL_LIB_CTX *mk__tls_lib_ctx(const mk__tls_lib *lib);

/* Gives a hold back. Every object its holder made in the context (SSL_CTX,
 * SSL, session, certificate, key) must be gone first. NULL is a no-op. */
void mk__tls_lib_release(mk__tls_lib *lib);

#endif /* MK_TLS_LIB_H */
