/* The node's group registry: one per node that runs a group.
 *
 * A transport serves an ALPN once, but a node may run several groups, so
 * the two group ALPNs are served here, on behalf of all of them: every
 * incoming link must first say which group it wants (HELLO, or SUBSCRIBE on
 * the feed ALPN) within HANDSHAKE_MS, and is then checked in this order,
 * each failure closing it with the matching code (reference/mosaik.md §5.2):
 *   the network (DIFFERENT_NETWORK), the group (GROUP_NOT_FOUND), the
 *   remote in our catalog (UNKNOWN_PEER: it syncs and retries), a listed
 *   voter with its own raft id for Raft links, and the group's validators
 *   (GROUP_NOT_ALLOWED).
 * Only then is the link handed to the group.
 *
 * The accept handlers' data is the node, not the registry, so the registry
 * can be freed with the last group: links arriving later find no group.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/group_internal.h"
#include "mosaik/node_internal.h"

#define HANDSHAKE_MS 5000

struct mk__hub {
    mk_node *node;
    mk_group **groups;
    size_t n, cap;
};

typedef struct pending {
    mk_node *node;
    mk_link *link;
    uv_timer_t timer;
    bool feed;
} pending;

static void on_pending_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* The link is someone else's now (or gone): stop watching it. */
static void pending_done(pending *p)
{
    p->link = NULL;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_pending_timer_closed);
}

static void on_pending_close(mk_link *link, uint32_t code, int status,
                             void *data)
{
    pending_done(data);
}

static void on_pending_timeout(uv_timer_t *t)
{
    pending *p = t->data;
    if (p->link)
        mk_link_close(p->link, MK_CLOSE_GROUP_TIMEOUT, "no handshake");
}

static void refuse(mk_link *link, uint32_t code, const char *why)
{
    mk_link_close(link, code, why ? why : mk_close_text(code));
}

static void on_first_frame(mk_link *link, const uint8_t *f, size_t len,
                           void *data)
{
    pending *p = data;
    mk_node *node = p->node;
    mk_id network, gid;
    uint64_t from = 0;
    mk__hello h = {0};
    if (!p->link)
        return; /* already refused; frames behind it are ignored */
    if (p->feed) {
        mk_reader r;
        mk_reader_init(&r, f, len);
        if (mk_get_u8(&r) != MK__F_SUBSCRIBE) {
            refuse(link, MK_CLOSE_GROUP_INVALID_HANDSHAKE, NULL);
            return;
        }
        mk_get_id(&r, &network);
        mk_get_id(&r, &gid);
        from = mk_get_varint(&r);
        if (mk_reader_done(&r) != 0) {
            refuse(link, MK_CLOSE_GROUP_INVALID_HANDSHAKE, NULL);
            return;
        }
    } else {
        if (mk__hello_decode(f, len, &h) != 0) {
            refuse(link, MK_CLOSE_GROUP_INVALID_HANDSHAKE, NULL);
            return;
        }
        network = h.network;
        gid = h.group;
    }
    if (!mk_id_eq(&network, mk_node_network(node))) {
        refuse(link, MK_CLOSE_DIFFERENT_NETWORK, NULL);
        return;
    }
    mk_group *g = node->groups ? mk__hub_find(node->groups, &gid) : NULL;
    if (!g || g->closing) {
        refuse(link, MK_CLOSE_GROUP_NOT_FOUND, NULL);
        return;
    }
    const mk_peer_id *peer = mk_link_peer(link);
    bool raft = !p->feed && h.kind == MK__LINK_RAFT;
    char why[MK_ERRMSG_SIZE];
    int64_t expires;
    uint32_t code = mk__group_admit(g, peer, raft, &expires, why);
    if (code == 0 && raft && h.raft_id != mk__raft_id_of(peer)) {
        code = MK_CLOSE_GROUP_NOT_ALLOWED;
        strcpy(why, "raft id does not match the peer");
    }
    if (code != 0) {
        refuse(link, code, why);
        return;
    }
    /* The link leaves `p` (freed with its timer) before its new owner
     * sets callbacks: an owner that refuses it at once (a member whose
     * Raft is stopped) must not call back into `p`. */
    mk_link_set_callbacks(link, NULL, NULL, NULL);
    pending_done(p);
    /* Admitted links are quiet on purpose: a feed waits for commits, an
     * RPC link for the next command, and libraft talks between two
     * followers only in elections. They last as long as the group keeps
     * them, bounded by the transport's caps. */
    mk_link_set_idle_timeout(link, 0);
    if (p->feed)
        mk__group_accept_feed(g, link, from);
    else if (raft)
        mk__bridge_accept(&g->bridge, link, h.raft_id);
    else
        mk__group_accept_rpc(g, link);
}

static void accept_any(mk_link *link, mk_node *node, bool feed)
{
    pending *p = calloc(1, sizeof *p);
    if (!p) {
        mk_link_close(link, MK_CLOSE_CANCELLED, "out of memory");
        return;
    }
    p->node = node;
    p->link = link;
    p->feed = feed;
    uv_timer_init(mk_node_loop(node), &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_pending_timeout, HANDSHAKE_MS, 0);
    mk_link_set_callbacks(link, on_first_frame, on_pending_close, p);
}

static void on_groups_accept(mk_link *link, void *data)
{
    accept_any(link, data, false);
}

static void on_feed_accept(mk_link *link, void *data)
{
    accept_any(link, data, true);
}

mk__hub *mk__hub_get(mk_node *node, int *rc)
{
    if (node->groups)
        return node->groups;
    mk__hub *h = calloc(1, sizeof *h);
    if (!h) {
        *rc = MK_ENOMEM;
        return NULL;
    }
    h->node = node;
    /* Served once per node lifetime: a later hub finds them served (its
     * handlers look the registry up through the node). */
    mk_transport *t = mk_node_transport(node);
    int r = mk_transport_serve(t, MK_ALPN_GROUPS, on_groups_accept, node);
    if (r == 0 || r == MK_EEXIST)
        r = mk_transport_serve(t, MK_ALPN_GROUP_FEED, on_feed_accept, node);
    if (r != 0 && r != MK_EEXIST) {
        free(h);
        *rc = r;
        return NULL;
    }
    node->groups = h;
    return h;
}

int mk__hub_add(mk__hub *h, mk_group *g)
{
    if (mk__hub_find(h, &g->id))
        return MK_EEXIST;
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 4;
        mk_group **grown = realloc(h->groups, cap * sizeof *grown);
        if (!grown)
            return MK_ENOMEM;
        h->groups = grown;
        h->cap = cap;
    }
    h->groups[h->n++] = g;
    return 0;
}

void mk__hub_release(mk_node *node)
{
    mk__hub *h = node->groups;
    if (!h || h->n > 0)
        return;
    node->groups = NULL;
    free(h->groups);
    free(h);
}

void mk__hub_remove(mk__hub *h, mk_group *g)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->groups[i] == g) {
            h->groups[i] = h->groups[--h->n];
            break;
        }
    mk__hub_release(h->node);
}

mk_group *mk__hub_find(mk__hub *h, const mk_id *gid)
{
    for (size_t i = 0; i < h->n; i++)
        if (mk_id_eq(&h->groups[i]->id, gid))
            return h->groups[i];
    return NULL;
}
