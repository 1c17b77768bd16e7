/* What every module shares: how its runtime identity and committee come
 * from the coalition config, and retirement.
 *
 * A module is a coalition-scoped organism (SPEC §2, §4). Its root is
 * derive(derive(COALITION_ROOT, "module"), name); its committee group is
 * named by derive(root, "committee") together with the module's state
 * machine; each public surface is derive(root, "<surface>"). The
 * committee's members are the module's acl.issuers, read as Ed25519
 * PeerIds: the coalition fingerprint thereby commits to who may sign for
 * the module, and a reader that compiled the config in knows whose
 * signatures to count. (This project's reading of SPEC §2's "issuer roots
 * or signer keys"; modules have no other use for the ACL.)
 *
 * Module content strings may carry parameters after a ';', e.g.
 * "almanac/v1;cadence_ms=1000": the content id hashes the whole string,
 * so the parameters are folded into every fingerprint.
 */
#ifndef CO_MODULE_H
#define CO_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/config.h"
#include "coalition/identity.h"
#include "mosaik/group.h"
#include "mosaik/key.h"
#include "mosaik/node.h"

#define CO_MODULE_MAX_COMMITTEE 15

typedef struct co_module_info {
    co_module_kind kind;
    const co_confluence_config *config; /* borrowed from the coalition */
    mk_id root;           /* module root */
    mk_id committee_root; /* derive(root, "committee") */
    mk_peer_id committee[CO_MODULE_MAX_COMMITTEE];
    size_t n_committee;
    /* A ticket-gated ACL (acl.tickets): `committee` are then the seeds,
     * and any node holding a ticket `tickets` accepts may join the
     * committee's group as a standby (mk_group_tickets). Signatures the
     * state machines count are still the listed committee's. */
    bool ticketed;
    mk_group_tickets tickets;
} co_module_info;

/* Fills `out` for the coalition's module of `kind`. CO_ENOTSHIPPED when
 * the coalition has none; CO_ECONFIG (reason in err) when its acl.issuers
 * are not 1..15 distinct 64-hex PeerIds, or its acl.tickets name the
 * coalition's issuer and the coalition has none (or a bad one). */
int co_module_info_get(const co_coalition_config *c, co_module_kind kind,
                       co_module_info *out, char *err);

/* A `key=value` parameter of the module's content string, as an
 * unsigned integer; `dflt` when absent. -1 when present but malformed. */
int co_module_param_u64(const co_module_info *m, const char *key,
                        uint64_t dflt, uint64_t *out);

/* True when `peer` is on the committee. */
bool co_module_is_member(const co_module_info *m, const mk_peer_id *peer);

/* The group config a member or reader uses: root, voters, fsm, and the
 * ticket policy when ticket-gated (pointing into `m`, which must outlive
 * the config's use). The caller fills node, data_dir and params. */
void co_module_group_config(const co_module_info *m, struct mk_fsm *fsm,
                            mk_group_config *out);

/* The committee GroupId for this module and fsm. */
void co_module_group_id(const co_module_info *m, struct mk_fsm *fsm,
                        mk_id *out);

/* The committee GroupId of the coalition's module of `kind`, with its
 * module info: what tools use to ask a module's members about their
 * group (status, leader). 0, CO_ENOTSHIPPED or CO_ECONFIG (err). */
int co_module_committee_group(const co_coalition_config *cfg,
                              co_module_kind kind, co_module_info *m,
                              mk_id *group, char *err);

/* ---- retirement (SPEC §5) ------------------------------------------------ */

typedef struct co_retirement {
    bool retired;
    char reason[256];
    bool has_successor;
    mk_id successor;
} co_retirement;

/* Asks the committee of the coalition's module of `kind` (any kind) to
 * retire it: a member commits the marker {reason, successor?}, signed
 * for that module's state machine so it cannot be replayed against
 * another. The first accepted marker stands; readers then report the
 * retirement instead of timing out. `member` (borrowed for the call)
 * must be a committee member's key; `reason` is 1 to 255 bytes;
 * `successor` may be NULL. `net` is borrowed and must outlive the call's
 * answer.
 *
 * Returns 0, and `done` follows once with: 0 when the marker was
 * committed, CO_ECONFIG when refused (not a member's, or the module had
 * already retired), MK_ECONNECT_TIMEOUT when no member answered by
 * `timeout_ms`, or another negative code. Otherwise returns, without
 * calling `done`: CO_ENOTSHIPPED, CO_ECONFIG (a committee the config
 * does not name; `err`), MK_EINVAL (a bad reason; `err`), or what the
 * submission failed with (MK_ENOMEM, MK_EBUSY). */
int co_module_retire(mk_node *net, const co_coalition_config *cfg,
                     co_module_kind kind, const char *reason,
                     const mk_id *successor, const mk_keypair *member,
                     uint32_t timeout_ms,
                     void (*done)(int status, void *data), void *data,
                     char *err);

#endif /* CO_MODULE_H */
