/* Internal: the state machines of the Atlas, Almanac and Chronicle
 * modules and the commands they take. Handles (atlas.c, almanac.c,
 * chronicle.c) and the daemon's module host use these; integrators see
 * only the typed handles in include/coalition/. */
#ifndef CO_MODULES_INTERNAL_H
#define CO_MODULES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/almanac.h"
#include "coalition/card.h"
#include "coalition/chronicle.h"
#include "coalition/module.h"
#include "mosaik/group.h"

/* Each module's state-machine signature: part of its GroupId, the same
 * for every instance of that shape (SPEC: "every Atlas has the same
 * Config signature"). */
#define CO__ATLAS_SIGNATURE "coalition.atlas/1"
#define CO__ALMANAC_SIGNATURE "coalition.almanac/1"
#define CO__CHRONICLE_SIGNATURE "coalition.chronicle/1"

/* Submits one command to the module's committee from any node (through
 * a member, forwarded to the leader). `done` gets the status and the
 * state machine's result. Returns 0 (done follows) or a negative code. */
int co__submit(mk_node *net, const mk_id *group, const mk_buf *cmd,
               uint32_t timeout_ms,
               void (*done)(int status, const uint8_t *result, size_t len,
                            void *data),
               void *data);

/* Command kinds shared by every module. */
enum {
    CO__CMD_RETIRE = 0x7f, /* reason, has successor, successor[32] */
};

/* Whether a command's status says a member refused it at the door
 * (mk_fsm.admit, or over the group's max_command_bytes): it never
 * reached the log. Handles report it as the refusal it is, never as a
 * failure worth retrying. */
bool co__door_refused(int status);

/* The largest command each module's committee takes at the door
 * (mk_group_params.max_command_bytes), summed from the encodings below:
 * a varint of a value below 2^7k takes k bytes, a string or byte field
 * is a varint length then the bytes, ids are 32 bytes, signatures 64.
 * Anything longer cannot be a command the machine would accept, so it is
 * refused before it costs every member a log write.
 *
 * RETIRE: kind, reason (at most 255: 2 + 255), flag, successor, member,
 * signature. */
#define CO__RETIRE_MAX_COMMAND (1 + (2 + 255) + 1 + 32 + 32 + 64)

/* Encodes the retirement command any module takes, signed by `member`
 * (a committee member: nobody else may retire a module). `module_sig` is
 * the module's state-machine signature, so a retirement signed for one
 * module cannot be replayed against another. */
void co__cmd_retire(mk_buf *out, const mk_id *module_sig, const char *reason,
                    const mk_id *successor, const mk_keypair *member);

/* Submits that command to the committee `group` and calls `done` with 0
 * when the machine took it, CO_ECONFIG when it refused it (a signer who is
 * not a member, or already retired) or the submission's error. The
 * reason's bounds are the caller's to check. For modules and confluences
 * alike. */
int co__submit_retire(mk_node *net, const mk_id *group, const mk_id *module_sig,
                      const char *reason, const mk_id *successor,
                      const mk_keypair *member, uint32_t timeout_ms,
                      void (*done)(int status, void *data), void *data);

/* ---- Atlas ---------------------------------------------------------------- */

enum {
    CO__ATLAS_PUBLISH = 1, /* card bytes, member, member's card sig */
    CO__ATLAS_SIGN = 2,    /* citizen_id[20], card hash[32], member, sig */
};

typedef struct co__atlas_item {
    co_citizen_id key;
    co_card card;
    co_member_sig *sigs;
    size_t n_sigs;
    /* A committee majority signed card.bytes: computed (signatures
     * verified) whenever sigs change, in apply and restore, so readers
     * do not pay an Ed25519 verify per signature on every read. Not part
     * of the snapshot. */
    bool verified;
} co__atlas_item;

/* Called after a PUBLISH changed a card (members then sign it and record
 * it in the Chronicle), with the hash of the card it replaced (NULL for a
 * citizen's first card). Not part of the replicated state. */
typedef void (*co__atlas_published_cb)(const co__atlas_item *item,
                                       const mk_id *replaced, void *data);

int co__atlas_fsm_init(struct mk_fsm *fsm, const co_module_info *m);
void co__atlas_fsm_free(struct mk_fsm *fsm);
void co__atlas_on_publish(struct mk_fsm *fsm, co__atlas_published_cb cb,
                          void *data);
size_t co__atlas_count(const struct mk_fsm *fsm);
const co__atlas_item *co__atlas_at(const struct mk_fsm *fsm, size_t i);
const co__atlas_item *co__atlas_find(const struct mk_fsm *fsm,
                                     const co_citizen_id *key);
const co_retirement *co__atlas_retirement(const struct mk_fsm *fsm);
/* True when a majority of the committee signed the item's card. */
bool co__atlas_verified(const struct mk_fsm *fsm, const co__atlas_item *it);

/* A card at its largest (card.h, co_card_decode): citizen_id, role
 * (2 + 255), CO_CARD_MAX_HINTS hints of 2 + 255, issuance root, the
 * pins, a u32 schema version (a 5-byte varint). The counts fit a byte. */
#define CO__CARD_MAX_BYTES                                                    \
    (32 + (2 + CO_CARD_MAX_STR) + 1 + CO_CARD_MAX_HINTS * (2 + CO_CARD_MAX_STR) \
     + 32 + 1 + CO_CARD_MAX_PINS * CO_MRTD_LEN + 5)
/* PUBLISH, the Atlas's largest command: kind, the card as bytes (its
 * length below 2^14: 2 bytes), member, signature. SIGN is 149 bytes. */
#define CO__ATLAS_MAX_COMMAND (1 + 2 + CO__CARD_MAX_BYTES + 32 + 64)

/* A publication must come from a committee member: its card signature is
 * the first of the majority. */
void co__atlas_cmd_publish(mk_buf *out, const uint8_t *card, size_t len,
                           const mk_keypair *member);
void co__atlas_cmd_sign(mk_buf *out, const co__atlas_item *it,
                        const mk_keypair *member);

/* ---- Almanac -------------------------------------------------------------- */

enum {
    CO__ALMANAC_TICK = 1,  /* seq, member, unix ms */
    CO__ALMANAC_STAMP = 2, /* seq, member, unix ms */
};

/* TICK and STAMP are 1 + 10 (seq) + 32 + 8 bytes: the Almanac's largest
 * command is RETIRE. */
#define CO__ALMANAC_MAX_COMMAND CO__RETIRE_MAX_COMMAND

/* Called after a TICK advanced the sequence, and after a STAMP was added
 * to the latest tick. */
typedef void (*co__almanac_tick_cb)(const co_almanac_tick *t, bool stamp_only,
                                    void *data);

int co__almanac_fsm_init(struct mk_fsm *fsm, const co_module_info *m);
void co__almanac_fsm_free(struct mk_fsm *fsm);
void co__almanac_on_tick(struct mk_fsm *fsm, co__almanac_tick_cb cb,
                         void *data);
const co_almanac_tick *co__almanac_latest(const struct mk_fsm *fsm);
const co_retirement *co__almanac_retirement(const struct mk_fsm *fsm);
void co__almanac_cmd(mk_buf *out, uint8_t kind, uint64_t seq,
                     const mk_peer_id *member, int64_t unix_ms);

/* ---- Chronicle ------------------------------------------------------------ */

enum {
    CO__CHRONICLE_APPEND = 1, /* kind, subject, body, once, member, sig */
    CO__CHRONICLE_SIGN = 2,   /* seq, member, sig */
};

#define CO_CHRONICLE_MAX_KIND 64
#define CO_CHRONICLE_MAX_BODY (64u << 10)
/* APPEND, the Chronicle's largest command: kind, the entry's kind (1 +
 * 64), subject, body (a 3-byte length: the body is at most 2^16), once,
 * member, signature. */
#define CO__CHRONICLE_MAX_COMMAND                                             \
    (1 + (1 + CO_CHRONICLE_MAX_KIND) + 32 + (3 + CO_CHRONICLE_MAX_BODY) + 1 + \
     32 + 64)

typedef struct co__chronicle_entry {
    uint64_t seq;
    char kind[CO_CHRONICLE_MAX_KIND + 1];
    mk_id subject;
    uint8_t *body;
    size_t body_len;
    mk_id prev, hash;
    co_member_sig *sigs;
    size_t n_sigs;
} co__chronicle_entry;

typedef void (*co__chronicle_appended_cb)(const co__chronicle_entry *e,
                                          void *data);

int co__chronicle_fsm_init(struct mk_fsm *fsm, const co_module_info *m);
void co__chronicle_fsm_free(struct mk_fsm *fsm);
void co__chronicle_on_append(struct mk_fsm *fsm, co__chronicle_appended_cb cb,
                             void *data);
size_t co__chronicle_count(const struct mk_fsm *fsm);
const co__chronicle_entry *co__chronicle_at(const struct mk_fsm *fsm,
                                            size_t i);
/* The public view of a stored entry (pointers into it, no copies). */
void co__chronicle_view(const co__chronicle_entry *e, co_chronicle_entry *out);
const co_retirement *co__chronicle_retirement(const struct mk_fsm *fsm);
/* An APPEND's `once` byte: add always; only when the latest entry of the
 * kind and subject says otherwise; only when no entry of the kind and
 * subject ever said it. A member with a build older than the third
 * refuses it (MK_EDECODE) where a newer one applies it: every member of
 * a Chronicle committee must run a build that knows it before any of
 * them records Atlas publications (docs/modules.md). */
enum {
    CO__APPEND_ALWAYS = 0,
    CO__APPEND_ONCE = 1,
    CO__APPEND_NEVER_SAID = 2,
};

/* Only committee members write the record; `member` signs the request. */
void co__chronicle_cmd_append(mk_buf *out, const char *kind,
                              const mk_id *subject, const uint8_t *body,
                              size_t len, uint8_t once,
                              const mk_keypair *member);
void co__chronicle_cmd_sign(mk_buf *out, const co__chronicle_entry *e,
                            const mk_keypair *member);

/* The entry hash: blake3("coalition/chronicle/entry/1" ‖ u64le seq ‖
 * kind ‖ 0x00 ‖ subject ‖ blake3(body) ‖ prev). */
void co__chronicle_entry_hash(uint64_t seq, const char *kind,
                              const mk_id *subject, const uint8_t *body,
                              size_t len, const mk_id *prev, mk_id *out);
int co__chronicle_sign_hash(const mk_keypair *kp, const mk_id *hash,
                            uint8_t sig[MK_SIG_LEN]);
int co__chronicle_verify_sig(const mk_peer_id *member, const uint8_t *hash,
                             size_t len, const uint8_t *sig);

#endif
