/* Chronicle: tamper-evident provenance of the coalition's own
 * publications, rotations and retirements (SPEC §4).
 *
 * Entries {seq, kind, subject, body, prev hash} form a hash chain and are
 * signed by the committee. A reader verifies the chain from genesis (or
 * any trusted head) and every signed entry; the first entry whose hash,
 * link or signatures do not hold is named, so a rewrite anywhere is
 * caught. The signed head is the latest entry a committee majority signed;
 * entries after it are pending their signatures.
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

/* The result of verifying a chain. */
typedef struct co_chronicle_check {
    bool ok;             /* every entry up to the head holds */
    uint64_t entries;    /* entries examined */
    uint64_t signed_head; /* last entry with a committee majority (0: none) */
    uint64_t first_bad;  /* 0 when ok */
    char why[160];       /* what is wrong with first_bad */
} co_chronicle_check;

/* Verifies `n` entries as a chain from genesis against `committee`:
 * consecutive seqs from 1, each prev the hash of the one before, each
 * hash recomputed from its fields, every signature present verifying,
 * and every entry up to the signed head majority-signed. Pure. */
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
void co_chronicle_close(co_chronicle_reader *r, void (*done)(void *data),
                        void *data);

size_t co_chronicle_count(const co_chronicle_reader *r);
/* Entry i (0-based), valid until the next callback; false past the end. */
bool co_chronicle_at(const co_chronicle_reader *r, size_t i,
                     co_chronicle_entry *out);
void co_chronicle_verify(const co_chronicle_reader *r,
                         co_chronicle_check *out);
void co_chronicle_retirement(const co_chronicle_reader *r,
                             co_retirement *out);

/* Writes every entry as one JSON object per line (hex fields), the form
 * `coalition chronicle log --export` saves and --file reads back. */
int co_chronicle_export(const co_chronicle_reader *r, FILE *out);

/* Reads an exported log and verifies it against the coalition's
 * Chronicle committee. Returns 0 with `out` filled (out->ok says whether
 * it holds), or a negative code for a file that cannot be read or parsed
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
