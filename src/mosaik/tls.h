/* Internal: the TLS 1.3 context a transport authenticates links with.
 *
 * Each node presents a self-signed X.509 certificate made at start from its
 * Ed25519 key. Nobody's certificate is checked against an authority: the
 * remote's raw public key *is* its PeerId, and TLS 1.3's CertificateVerify
 * proves it holds the private half. A dialer names the PeerId it wants and
 * aborts the handshake (before sending its own Finished, so the acceptor
 * never sees a completed link) when another key answers.
 *
 * Sessions resume (TLS 1.3 tickets, one per full handshake): a dialer
 * keeps the last ticket from each PeerId it dialed (tls_cache.h) and
 * offers it only to a dial that expects that same PeerId. A resumed
 * handshake carries no certificates; the remote's key is then the one the
 * session was made with, which mk__tls_established reads and checks
 * against the expected one like a fresh handshake does.
 */
#ifndef MK_TLS_H
#define MK_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "mosaik/key.h"
#include "mosaik/tls_cache.h"

/* What the handshake learns about the remote, filled in by the
 * certificate check; one per connection, owned by the link. */
typedef struct mk__tls_auth {
    mk_peer_id peer;   /* the remote's key, valid when have_peer */
    mk_peer_id expect; /* dialer: the only key it accepts */
    bool has_expect;
    bool have_peer;
    bool wrong_peer; /* the handshake failed because peer != expect */
    bool resumed;    /* set by mk__tls_established */
    /* Dialer: where the tickets the acceptor sends go, under `expect`;
     * NULL keeps none. Borrowed. */
    mk__tls_cache *cache;
    /* Acceptor: whether a link speaking `alpn` is sent a resumption
     * ticket; NULL: every link is. Asked once, when the dialer's ALPN is
     * taken. */
    bool (*ticket_for)(void *data, const char *alpn);
    void *ticket_data;
} mk__tls_auth;

/* Makes a transport's context from `kp` (read, not kept: the context holds
 * its own copy of the key), in an OpenSSL library context of its own
 * (tls_lib.h). Returns 0 and `*out` (free with mk__tls_ctx_free) or
 * MK_ETLS / MK_ENOMEM with the reason in `err` (MK_ERRMSG_SIZE, may be
 * NULL). */
int mk__tls_ctx_new(const mk_keypair *kp, SSL_CTX **out, char *err);

/* Frees a context from mk__tls_ctx_new and its library context. Every
 * SSL, session and certificate made with it must be freed first. */
void mk__tls_ctx_free(SSL_CTX *ctx);

/* OpenSSL 3.0 reads and copies sessions (a ticket being issued or taken
 * back, one arriving at a dialer), certificate and key included, in the
 * thread's default library context rather than the SSL's, and there a
 * certificate reads four times slower (tls_lib.h). Calls that may do so
 * (SSL_do_handshake, SSL_read) run between these two, with `ctx`'s
 * library context as the thread's default; nothing else should run in
 * between, since that context holds no more than TLS needs. */
OSSL_LIB_CTX *mk__tls_enter(SSL_CTX *ctx);
void mk__tls_leave(OSSL_LIB_CTX *prev);

/* A connection doing its I/O through `bio` (both directions; the SSL
 * takes the caller's reference, also when it fails). A dialer offers
 * exactly `alpn` and, when auth->cache holds a session for auth->expect
 * made with that same key, offers to resume it; an acceptor (alpn NULL)
 * takes whatever single protocol the dialer offers and lets the transport
 * judge it. `auth` is borrowed and must outlive the SSL. NULL on
 * allocation failure. */
SSL *mk__tls_new(SSL_CTX *ctx, const char *alpn, mk__tls_auth *auth,
                 BIO *bio);

/* To call once SSL_do_handshake has succeeded, before anything more is
 * sent. A full handshake was checked as it ran (auth->peer is set); a
 * resumed one is checked here: the remote is the key of the session's
 * certificate, and a dialer refuses it unless it is auth->expect. Returns
 * 0, MK_EWRONG_PEER (auth->wrong_peer set) or MK_ETLS. */
int mk__tls_established(SSL *ssl, mk__tls_auth *auth);

/* One line of OpenSSL's error queue (emptying it) into `buf`, for logs. */
void mk__tls_errstr(char *buf, size_t size);

#endif /* MK_TLS_H */
