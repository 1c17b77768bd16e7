/* The coalition's ticket issuer: tickets under TICKETS_ROOT (SPEC §4).
 *
 * A coalition that configures a ticket issuer names the Ed25519 keys
 * allowed to sign its tickets (ticket_issuer.acl.issuers) and thereby a
 * TICKETS_ROOT = derive(COALITION_ROOT, "tickets"). An operator holding
 * one of those keys runs an issuer (co_issuer_new, or coalitiond with a
 * "ticket_issuer" section in its node config): it serves the ALPN
 * CO_ALPN_TICKETS and hands any peer that asks, and that its policy
 * allows, an EdDSA JWT whose iss is the hex of TICKETS_ROOT and whose sub
 * is that peer. A peer can only ask for itself: the subject is the
 * PeerId the link authenticated, never something the request names.
 *
 * Nothing is required to recognise these tickets. A component opts in by
 * adding co_tickets_recognise's validator (mk_jwt_recognise_issuer over
 * the root and the ACL keys) to its group or stream validators; a peer
 * carries its ticket in its signed entry (mk_node_set_ticket, which
 * co_ticket_request does for it when asked to).
 *
 * How requesters find an issuer: it adds the tag CO_TICKETS_TAG_PREFIX ‖
 * hex(TICKETS_ROOT) to its node's entry, and requesters dial peers
 * carrying that tag. No registry is consulted: an issuer nobody runs, or
 * a coalition config that derives another root, ends in
 * MK_ECONNECT_TIMEOUT. A requester checks every ticket it is handed
 * against the config's root and keys before using it, so a peer that
 * merely claims the tag can withhold tickets but never hand out bad ones.
 *
 * Wire (one request and one answer per link, mk_codec encoding):
 *   request  u8 version (1) ‖ TICKETS_ROOT[32]
 *   answer   u8 0 ‖ bytes token        (issued)
 *          | u8 1 ‖ str reason         (refused)
 * after which the issuer closes the link.
 *
 * Everything runs on the node's loop.
 */
#ifndef CO_ISSUER_H
#define CO_ISSUER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coalition/config.h"
#include "coalition/error.h"
#include "mosaik/lifecycle.h"
#include "mosaik/node.h"
#include "mosaik/ticket.h"

#define CO_ALPN_TICKETS "/coalition/tickets/1"
#define CO_TICKETS_TAG_PREFIX "coalition.tickets/"
#define CO_ISSUER_MAX_KEYS 16
#define CO_ISSUER_DEFAULT_TTL_S 3600

/* TICKETS_ROOT and the issuer's signing keys from the coalition config.
 * Returns 0, CO_ENOTSHIPPED (no ticket issuer), or CO_ECONFIG with the
 * reason in `err` (CO_ERRMSG_SIZE, may be NULL) when acl.issuers is empty,
 * longer than CO_ISSUER_MAX_KEYS or holds anything but 64-hex keys.
 * `keys` has room for CO_ISSUER_MAX_KEYS; `root`, `keys`, `n` may be NULL. */
int co_issuer_keys(const co_coalition_config *cfg, mk_id *root,
                   mk_peer_id *keys, size_t *n, char *err);

/* Builds in `v` (caller memory) the validator a component adds to
 * recognise the coalition's tickets: iss = hex(TICKETS_ROOT), signed by
 * one of the ACL keys, sub = the peer being judged, unexpired. Returns 0,
 * or a code of co_issuer_keys / mk_jwt_recognise_issuer with `err`.
 * Release with mk_ticket_validator_free. `cfg` is read during the call. */
int co_tickets_recognise(const co_coalition_config *cfg,
                         struct mk_ticket_validator *v, char *err);

/* ---- running an issuer ---------------------------------------------------- */

/* Who gets a ticket and what it says. */
typedef struct co_issuer_policy {
    bool allow_any;          /* any peer that asks */
    const mk_peer_id *allow; /* else only these (copied) */
    size_t n_allow;
    uint32_t ttl_s;          /* lifetime of each ticket; 0: default */
    const char *audience;    /* aud claim (copied); NULL: none */
} co_issuer_policy;

typedef struct co_issuer_config {
    mk_node *node;                        /* borrowed; outlives the issuer */
    const co_coalition_config *coalition; /* read during start only */
    const mk_keypair *key;                /* copied; on the issuer's ACL */
    co_issuer_policy policy;
    /* One line per ticket issued or refused (may be NULL). */
    void (*log)(const char *level, const char *line, void *data);
    void *log_data;
} co_issuer_config;

typedef struct co_issuer co_issuer;

/* Serves CO_ALPN_TICKETS on the node and advertises the issuer tag.
 * Returns 0 and `*out`, or a negative code with `err` (CO_ERRMSG_SIZE):
 * CO_ENOTSHIPPED (the coalition has no ticket issuer), CO_ECONFIG (the
 * key is not on its ACL, a bad ACL, a TTL over ten years), MK_EEXIST (the
 * node already serves the ALPN: one issuer per node), MK_ENOMEM. */
int co_issuer_new(const co_issuer_config *cfg, co_issuer **out, char *err);

/* Stops issuing: stops serving CO_ALPN_TICKETS (a request arriving now
 * is refused with MK_CLOSE_INVALID_ALPN), drops the requests in progress
 * and the tag, frees, then calls `cb` (may be NULL) on the loop. Call it
 * before the node's mk_node_close. */
void co_issuer_close(co_issuer *is, mk_close_cb cb, void *data);

/* Tickets issued and requests refused since start. */
uint64_t co_issuer_issued(const co_issuer *is);
uint64_t co_issuer_refused(const co_issuer *is);

/* ---- asking for a ticket --------------------------------------------------- */

typedef struct co_ticket_req co_ticket_req;

/* status 0 with the token (valid during the call; checked against the
 * config's root and keys for this node) and its expiry in Unix ms;
 * MK_ENOT_ALLOWED when the issuer's policy refused (its reason in `why`);
 * MK_ECONNECT_TIMEOUT when no issuer answered by the deadline (`why` says
 * what was tried); MK_ECANCELED after co_ticket_request_cancel. */
typedef void (*co_ticket_cb)(co_ticket_req *req, int status,
                             const char *token, int64_t expires_ms,
                             const char *why, void *data);

typedef struct co_ticket_request_config {
    mk_node *node;                        /* borrowed; finds the issuer */
    const co_coalition_config *coalition; /* read during the call only */
    uint32_t timeout_ms;                  /* 0: 10 s */
    /* On success, mk_node_set_ticket before the callback (which replaces
     * any other JWT ticket the node carries: one JWT per node). */
    bool install;
    /* NULL: the ticket is for the node itself. Else (copied) for this
     * key's PeerId: the request then goes over a private dial-only
     * transport holding the key, so a tool can ask for a running node's
     * identity without a second node of that PeerId joining discovery
     * (its entry and departure would shadow the real one). Not with
     * `install`. */
    const mk_keypair *as;
} co_ticket_request_config;

/* Asks an issuer of the coalition for a ticket for cfg->node (or
 * cfg->as). Returns 0 (and `*out` when not NULL; the request is freed
 * after its callback) and calls `cb` exactly once, or a negative code
 * (CO_ENOTSHIPPED, CO_ECONFIG with `err`, MK_EINVAL for `as` with
 * `install`, MK_ENOMEM, a transport error) and never calls it. Cancel it
 * before closing the node. */
int co_ticket_request(const co_ticket_request_config *cfg, co_ticket_cb cb,
                      void *data, co_ticket_req **out, char *err);

/* Ends a pending request: its callback runs now with MK_ECANCELED. */
void co_ticket_request_cancel(co_ticket_req *req);

#endif /* CO_ISSUER_H */
