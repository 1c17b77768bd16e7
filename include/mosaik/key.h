/* Node identity: an Ed25519 key pair. A node's PeerId is its public key.
 *
 * Key files are PKCS#8 PEM (readable by `openssl pkey`), written with mode
 * 0600 and refused when group or others can read them: a leaked key is a
 * stolen identity, and there is no registry to revoke it from.
 */
#ifndef MK_KEY_H
#define MK_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "mosaik/id.h"

#define MK_SIG_LEN 64
#define MK_SEED_LEN 32

/* A PeerId is the 32-byte Ed25519 public key, printed as 64 hex chars. */
typedef mk_id mk_peer_id;

typedef struct mk_keypair {
    uint8_t seed[MK_SEED_LEN];
    uint8_t sk[64]; /* libsodium's expanded secret key */
    mk_peer_id pub;
} mk_keypair;

/* A fresh random key pair. 0 or MK_EIO when no randomness is available. */
int mk_keypair_generate(mk_keypair *kp);

/* The key pair of a 32-byte seed (deterministic). Cannot fail. */
void mk_keypair_from_seed(mk_keypair *kp, const uint8_t seed[MK_SEED_LEN]);

/* Reads a key file. Returns 0, MK_EKEY_PERMS when group or others may read
 * it, MK_EINVAL when it is not a regular file (a FIFO, a device, a
 * directory: refused without waiting on it), MK_EMSGSIZE when it is far
 * too big for a key, MK_EUNSUPPORTED when the key is encrypted (never
 * prompts for a passphrase), MK_ENOENT/MK_EACCES/…, or MK_EDECODE when it
 * is not an Ed25519 PKCS#8 PEM key; `err` (MK_ERRMSG_SIZE, may be NULL)
 * says which. */
int mk_keypair_load(mk_keypair *kp, const char *path, char *err);

/* Writes a new key file with mode 0600. Refuses to replace an existing
 * file (MK_EEXIST): overwriting a key silently changes a node's identity. */
int mk_keypair_save(const mk_keypair *kp, const char *path, char *err);

void mk_sign(const mk_keypair *kp, const void *msg, size_t len,
             uint8_t sig[MK_SIG_LEN]);

/* 0 when `sig` is `signer`'s signature of `msg`, else MK_EBAD_SIGNATURE. */
int mk_verify(const mk_peer_id *signer, const void *msg, size_t len,
              const uint8_t sig[MK_SIG_LEN]);

#endif /* MK_KEY_H */
