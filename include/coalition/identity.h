/* Coalition identity: every fingerprint of SPEC §2, byte for byte.
 *
 * An integrator recomputes these from a published config and compares;
 * nothing here consults the network. Functions that read a config return 0,
 * or CO_ECONFIG with a reason in `err` (when not NULL, CO_ERRMSG_SIZE bytes)
 * for a config that co_coalition_validate() would also reject.
 */
#ifndef CO_IDENTITY_H
#define CO_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "coalition/config.h"
#include "coalition/error.h"
#include "mosaik/id.h"

#define CO_CITIZEN_ID_LEN 20

/* stable_id[0..20]: the key of every cross-citizen commit. */
typedef struct co_citizen_id {
    uint8_t b[CO_CITIZEN_ID_LEN];
} co_citizen_id;

typedef enum co_module_kind {
    CO_MODULE_ATLAS,
    CO_MODULE_ALMANAC,
    CO_MODULE_CHRONICLE,
    CO_MODULE_COMPUTE,
    CO_MODULE_COUNT
} co_module_kind;

/* "atlas", "almanac", "chronicle", "compute"; NULL for anything else. */
const char *co_module_name(co_module_kind kind);

/* The kind a confluence name reserves, or -1 when it is no module's. */
int co_module_kind_of(const char *confluence_name);

/* Citizens. */
int co_lattice_stable_id(const co_lattice_config *l, mk_id *out, char *err);
/* Returns 1 and sets `out` when all six fingerprints are given, 0 when none
 * is, CO_ECONFIG when only some are. */
int co_lattice_content_hash(const co_lattice_config *l, mk_id *out,
                            char *err);
int co_organism_stable_id(const co_organism_ref *o, mk_id *out, char *err);
/* Returns 1 and sets `out` when the organism has a content hash, else 0. */
int co_organism_content_hash(const co_organism_ref *o, mk_id *out);
void co_citizen_id_of(const mk_id *stable_id, co_citizen_id *out);

/* The 32 bytes a confluence folds for one reference: the stable id, or
 * blake3(stable_id ‖ content_hash) when pinned. */
int co_citizen_ref_fold(const co_citizen_ref *r, mk_id *out, char *err);

/* ACL and ticket issuer. */
int co_acl_fingerprint(const co_acl *acl, mk_id *out, char *err);
int co_ticket_issuer_fingerprint(const co_ticket_issuer_config *t, mk_id *out,
                                 char *err);

/* Confluences: coalition-independent. */
int co_confluence_fingerprint(const co_confluence_config *c, mk_id *out,
                              char *err);
int co_confluence_committee(const co_confluence_config *c, mk_id *out,
                            char *err);

/* Coalition. COALITION = blake3("coalition|" ‖ V ‖ "|" ‖ name). */
void co_coalition_seed(const co_coalition_config *c, mk_id *out);
/* coalition_id() = COALITION_ROOT, the published handshake fingerprint. */
int co_coalition_id(const co_coalition_config *c, mk_id *out, char *err);

/* The module of that kind the coalition ships, or NULL. */
const co_confluence_config *co_coalition_module(const co_coalition_config *c,
                                                co_module_kind kind);
const co_confluence_config *co_coalition_atlas(const co_coalition_config *c);
const co_confluence_config *co_coalition_almanac(const co_coalition_config *c);
const co_confluence_config *
co_coalition_chronicle(const co_coalition_config *c);
const co_confluence_config *co_coalition_compute(const co_coalition_config *c);

/* derive(derive(COALITION_ROOT, "module"), name); CO_ENOTSHIPPED when the
 * coalition has no such module. */
int co_module_root(const co_coalition_config *c, co_module_kind kind,
                   mk_id *out, char *err);

/* derive(COALITION_ROOT, "tickets"); CO_ENOTSHIPPED without an issuer. */
int co_tickets_root(const co_coalition_config *c, mk_id *out, char *err);

/* Runtime ids below any organism, confluence or module root: the committee
 * group derive(root, "committee") and each surface derive(root, name). */
void co_committee_id(const mk_id *root, mk_id *out);
void co_surface_id(const mk_id *root, const char *surface, mk_id *out);

/* Checks everything the derivations rely on and what SPEC §3 forbids:
 * missing or empty names, both or neither of a citizen's id sources,
 * duplicate citizens or confluences, two modules of one kind, references
 * that do not resolve, pins without a content hash, bad MR_TD hex. Returns
 * 0 or CO_ECONFIG with the first problem, named by its path, in `err`. */
int co_coalition_validate(const co_coalition_config *c, char *err);

#endif /* CO_IDENTITY_H */
