/* Chronicle: tamper-evident provenance of the coalition's own
 * publications, rotations and retirements (SPEC §4).
 *
 * Entries {seq, kind, subject, body, prev hash} form a hash chain and are
 * signed by the committee. A reader verifies the chain from genesis and
 * every signature on it; the first entry whose hash, link or signatures
 * do not hold is named, so a rewrite anywhere is caught. The signed head
 * is the latest entry a committee majority signed: it vouches for itself
 * and everything before it, and for nothing after it (those entries are
 * pending their signatures, or were added by someone else).
 */
#ifndef CO_CHRONICLE_H
#define CO_CHRONICLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "coalition/card.h"
#include "coalition/config.h"
#include "coalition/module.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"

typedef struct co_chronicle_entry {
    uint64_t seq;          /* 1-based */
    const char *kind;      /* "config", "rotation", "retired", … */
    mk_id subject;
    const uint8_t *body;
    size_t body_len;
    mk_id prev, hash;
    const co_member_sig *sigs;
    size_t n_sigs;
} co_chronicle_entry;

/* What verifying a chain vouches for.
 *
 * Only a head signed by a strict majority of the committee vouches for
 * anything: entries 1..signed_head are then verified, because the head
 * signs its hash and every hash folds the one before it. Entries after
 * the head may be well formed, but nobody with authority has vouched
 * for them yet (members sign as entries land), so they are "present but
 * not covered", never "verified". A chain that does not hold anywhere,
 * an empty log and a log without a majority-signed head vouch for
 * nothing: ok is false and signed_head is 0. */
typedef struct co_chronicle_check {
    bool ok;              /* entries 1..signed_head are vouched for */
    bool complete;        /* ok, and the head covers every entry */
    int status;           /* 0 when ok; CO_ECHAIN (the chain does not hold
                           * at first_bad), CO_EUNVERIFIED (empty, or no
                           * majority-signed head), CO_ECONFIG (the
                           * committee given is unusable) */
    uint64_t entries;     /* entries examined */
    uint64_t signed_head; /* H: latest entry a majority signed (0: none) */
    mk_id head_hash;      /* its hash, recomputed */
    size_t head_signers;  /* distinct members whose signature on it holds */
    size_t committee;     /* committee size */
    size_t needed;        /* signatures a head needs: committee / 2 + 1 */
    uint64_t first_bad;   /* the entry the chain breaks at (CO_ECHAIN) */
    char why[256];        /* what is wrong; when ok but not complete,
                           * which entries are not covered */
} co_chronicle_check;

/* Verifies `n` entries as a chain from genesis against `committee` (the
 * Chronicle's acl.issuers, co_module_info_get): consecutive seqs from 1,
 * each prev the hash of the one before, each hash recomputed from its
 * fields, and every signature present by a committee member and
 * verifying (one that does not is tampering, wherever it sits). A
 * member's repeated signature counts once. The head is the latest entry
 * with valid signatures from more than half of the committee; without
 * one nothing is verified. Pure: the stored hashes are never trusted. */
void co_chronicle_verify_entries(const co_chronicle_entry *v, size_t n,
                                 const mk_peer_id *committee,
                                 size_t n_committee, co_chronicle_check *out);

typedef struct co_chronicle_reader co_chronicle_reader;

/* status 0 when up to date (first call) or when entries or signatures
 * arrived; negative as for co_atlas_cb. */
typedef void (*co_chronicle_cb)(co_chronicle_reader *r, int status,
                                void *data);

int co_chronicle_read(mk_node *net, const co_coalition_config *cfg,
                      uint32_t timeout_ms, co_chronicle_cb cb, void *data,
                      co_chronicle_reader **out, char *err);
void co_chronicle_close(co_chronicle_reader *r, mk_close_cb done, void *data);

size_t co_chronicle_count(const co_chronicle_reader *r);
/* Entry i (0-based), valid until the next callback; false past the end. */
bool co_chronicle_at(const co_chronicle_reader *r, size_t i,
                     co_chronicle_entry *out);
/* co_chronicle_verify_entries over what the reader holds, against the
 * committee its coalition config names. */
void co_chronicle_verify(const co_chronicle_reader *r,
                         co_chronicle_check *out);
void co_chronicle_retirement(const co_chronicle_reader *r,
                             co_retirement *out);

/* Writes every entry as one JSON object per line (hex fields), each with
 * the committee signatures it carries: the signed head's signatures are
 * those of its entry, so the file verifies offline on its own. The form
 * `coalition chronicle log --export` saves and --file reads back. */
int co_chronicle_export(const co_chronicle_reader *r, FILE *out);

/* Reads an exported log and verifies it against the coalition's
 * Chronicle committee. Returns 0 with `out` filled (out->ok and
 * out->signed_head say what is vouched for; an empty file vouches for
 * nothing), or a negative code for a file that cannot be read or parsed
 * (reason in err). */
int co_chronicle_verify_file(const co_coalition_config *cfg,
                             const char *path, co_chronicle_check *out,
                             uint64_t *count, char *err);

/* Appends an entry (an operator's record), requested by `member`, whose
 * key must be on the Chronicle committee. `once` skips it when the latest
 * entry of that kind and subject already says exactly this. `done` gets
 * 0, MK_ECONNECT_TIMEOUT, or CO_ECONFIG when the Chronicle refused it. */
int co_chronicle_append(mk_node *net, const co_coalition_config *cfg,
                        const char *kind, const mk_id *subject,
                        const void *body, size_t len, bool once,
                        const mk_keypair *member, uint32_t timeout_ms,
                        void (*done)(int status, void *data), void *data,
                        char *err);

#endif /* CO_CHRONICLE_H */
