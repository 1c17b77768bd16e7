/* What Chronicle entries the committee members record, and how their
 * bodies are encoded (docs/modules.md, "Entry kinds").
 *
 * Members record facts they can all derive from committed state, so every
 * member that records one writes the very same bytes and the Chronicle
 * keeps one entry per fact however many members record it. Bodies are
 * fixed-size byte strings, not JSON: they are hashed into the chain, and
 * one encoding per fact is what makes the members' records identical.
 *
 * kind "atlas.card" (subject: the citizen's 32-byte id), 106 bytes:
 *   u8 version (1) ‖ u8 flags (bit 0: it replaced a card) ‖
 *   u64le publication ‖ card hash[32] ‖ citizen id[32] ‖
 *   replaced card hash[32] (zeros when flags bit 0 is clear)
 * `publication` is the Atlas committee's count of applied commands at the
 * PUBLISH (its sequence number in the group, mk_group_execute): the same
 * on every member, and different for two publications of the same card.
 *
 * kind "citizen.rotation" (subject: the citizen's 32-byte stable id),
 * 66 bytes:
 *   u8 version (1) ‖ u8 flags (bit 0: old hash present, bit 1: new hash
 *   present) ‖ old content hash[32] ‖ new content hash[32]
 * (zeros where absent): a citizen's content hash differs between the
 * latest recorded config and the config a member starts with.
 *
 * kind "committee.change" (subject: the GroupId of the committee),
 * 149 bytes:
 *   u8 version (1) ‖ u8 module (co_module_kind) ‖ u8 change (1 promoted,
 *   2 demoted, 3 added, 4 removed) ‖ u8 by (0: the leader replaced a
 *   silent voter, 1: an operator asked) ‖ u8 0 ‖ u64le index ‖
 *   member[32] ‖ by key[32] ‖ u64le operator's unix ms ‖
 *   operator's signature[64]
 * (time and signature zeros when the leader acted). `index` is the Raft
 * index of the configuration change, the same on every member; the
 * signature is the operator's signed request, which anyone holding the
 * GroupId can check again (mk_group_assign_verify).
 *
 * kind "config" (subject: coalition_id): the coalition config as
 * canonical JSON (co_config_to_json). kind "retired" (subject: the
 * successor, zeros for none): the retirement's reason, as text.
 */
#ifndef CO_CHRONICLE_RECORD_H
#define CO_CHRONICLE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/group.h"
#include "mosaik/id.h"

#define CO_RECORD_CONFIG "config"
#define CO_RECORD_RETIRED "retired"
#define CO_RECORD_ATLAS_CARD "atlas.card"
#define CO_RECORD_ROTATION "citizen.rotation"
#define CO_RECORD_COMMITTEE "committee.change"

#define CO_RECORD_VERSION 1
#define CO_RECORD_CARD_LEN 106
#define CO_RECORD_ROTATION_LEN 66
#define CO_RECORD_COMMITTEE_LEN 149

typedef struct co_record_card {
    uint64_t publication;
    mk_id card;     /* blake3 of the card's canonical bytes */
    mk_id citizen;  /* the card's citizen_id */
    bool replaced;  /* it took the place of another card */
    mk_id previous; /* that card's hash */
} co_record_card;

typedef struct co_record_rotation {
    bool has_old, has_new;
    mk_id old_hash, new_hash;
} co_record_rotation;

/* A committee change: which module's committee, and the change as the
 * group noted it (mosaik/group.h, mk_group_watch_members). */
typedef struct co_record_committee {
    uint8_t module; /* co_module_kind */
    mk_group_member_event ev;
} co_record_committee;

void co_record_card_encode(const co_record_card *r,
                           uint8_t out[CO_RECORD_CARD_LEN]);
/* 0, or MK_EDECODE for anything co_record_card_encode would not write. */
int co_record_card_decode(const uint8_t *body, size_t len,
                          co_record_card *out);

void co_record_rotation_encode(const co_record_rotation *r,
                               uint8_t out[CO_RECORD_ROTATION_LEN]);
int co_record_rotation_decode(const uint8_t *body, size_t len,
                              co_record_rotation *out);

void co_record_committee_encode(const co_record_committee *r,
                                uint8_t out[CO_RECORD_COMMITTEE_LEN]);
int co_record_committee_decode(const uint8_t *body, size_t len,
                               co_record_committee *out);

#endif /* CO_CHRONICLE_RECORD_H */
