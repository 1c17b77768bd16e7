/* Request links to a group member (the dialing side of an RPC link).
 *
 * A follower forwards commands and strong queries to the leader over one
 * of these; a non-member client sends everything over them. Each is one
 * mk_link on MK_ALPN_GROUPS that opens with HELLO {RPC} and is usable once
 * the member answers WELCOME with its proof of membership (group_proof.c).
 * Requests sent before that wait in a bounded outbox, in order, and are
 * sent only once the proof checks: a peer that merely lists the GroupId
 * never sees a command. Responses are matched by the owner (the link carries
 * no state about what it was asked). When the member refuses with
 * UNKNOWN_PEER we exchange catalogs at once, so the owner's retry (after
 * its backoff) is welcomed.
 */
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/group_internal.h"

/* Requests queued before WELCOME, and unsent bytes on the link, beyond
 * which a send is refused: a member that stopped reading must not make us
 * buffer without bound. */
#define OUTBOX_MAX (8u << 20)
#define LINK_MAX (32u << 20)

enum { DIALING, HELLO, READY, DEAD };

struct mk__rpc {
    mk_node *node;
    mk_id gid;
    mk_peer_id peer;
    mk__rpc_events ev;
    mk_link *link;
    int state;
    bool owner_closed;
    uint32_t close_code; /* how the link ended (MK_CLOSE_*), once DEAD */
    mk_buf outbox; /* u32be length, frame; repeated */
};

static void rpc_free(mk__rpc *c)
{
    mk_buf_free(&c->outbox);
    free(c);
}

static void rpc_down(mk__rpc *c)
{
    c->state = DEAD;
    if (!c->owner_closed && c->ev.down)
        c->ev.down(c->ev.data, c);
}

static void flush_outbox(mk__rpc *c)
{
    mk_reader r;
    mk_reader_init(&r, c->outbox.data, c->outbox.len);
    while (r.at < r.len && !r.err) {
        uint32_t n = mk_get_u32be(&r);
        const uint8_t *f = mk_get_raw(&r, n);
        if (!f || mk_link_send(c->link, f, n) != 0) {
            mk_link_close(c->link, MK_CLOSE_CANCELLED, NULL);
            break;
        }
    }
    mk_buf_free(&c->outbox);
}

static void on_frame(mk_link *link, const uint8_t *f, size_t len, void *data)
{
    mk__rpc *c = data;
    if (c->state == HELLO) {
        mk_reader rd;
        mk__proof proof;
        mk_reader_init(&rd, f, len);
        if (mk_get_u8(&rd) != MK__G_WELCOME ||
            mk__proof_decode(&rd, &proof) != 0 ||
            mk_reader_done(&rd) != 0) {
            mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION,
                          "expected WELCOME with a proof");
            return;
        }
        if (mk__proof_check_member(&proof, &c->gid, c->node, &c->peer) != 0) {
            mk_link_close(link, MK_CLOSE_GROUP_INVALID_PROOF,
                          "not a voter of this group");
            return;
        }
        c->state = READY;
        if (!c->owner_closed && c->ev.welcome)
            c->ev.welcome(c->ev.data, c, &proof);
        if (!c->owner_closed)
            flush_outbox(c);
        return;
    }
    if (c->state != READY)
        return;
    mk__resp r;
    if (mk__resp_decode(f, len, &r) != 0) {
        mk_link_close(link, MK_CLOSE_PROTOCOL_VIOLATION, "bad response");
        return;
    }
    if (!c->owner_closed && c->ev.reply)
        c->ev.reply(c->ev.data, c, &r);
}

static void on_close(mk_link *link, uint32_t code, int status, void *data)
{
    mk__rpc *c = data;
    c->link = NULL;
    c->close_code = code;
    if (code == MK_CLOSE_UNKNOWN_PEER && !c->owner_closed)
        mk_node_sync_with(c->node, &c->peer, NULL);
    rpc_down(c);
    rpc_free(c);
}

static void on_dialled(mk_link *link, int status, void *data)
{
    mk__rpc *c = data;
    if (status < 0) {
        rpc_down(c);
        rpc_free(c);
        return;
    }
    if (c->owner_closed) {
        mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
        rpc_free(c);
        return;
    }
    c->link = link;
    c->state = HELLO;
    mk_link_set_callbacks(link, on_frame, on_close, c);
    mk__hello h = {.kind = MK__LINK_RPC,
                   .network = *mk_node_network(c->node),
                   .group = c->gid};
    mk_buf b;
    mk_buf_init(&b);
    mk__hello_encode(&b, &h);
    if (b.err || mk_link_send(link, b.data, b.len) != 0)
        mk_link_close(link, MK_CLOSE_CANCELLED, NULL);
    mk_buf_free(&b);
}

mk__rpc *mk__rpc_open(mk_node *node, const mk_id *gid, const mk_peer_id *peer,
                      const mk__rpc_events *ev)
{
    mk__rpc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->node = node;
    c->gid = *gid;
    c->peer = *peer;
    c->ev = *ev;
    c->state = DIALING;
    mk_buf_init(&c->outbox);
    if (mk_node_dial(node, peer, MK_ALPN_GROUPS, on_dialled, c) != 0) {
        /* Perhaps only missing from the catalog so far. */
        mk_node_sync_with(node, peer, NULL);
        rpc_free(c);
        return NULL;
    }
    return c;
}

int mk__rpc_send(mk__rpc *c, const uint8_t *frame, size_t len)
{
    if (c->owner_closed || c->state == DEAD)
        return MK_ECLOSED;
    if (c->state == READY) {
        if (mk_link_queued(c->link) > LINK_MAX)
            return MK_EFULL;
        return mk_link_send(c->link, frame, len);
    }
    if (c->outbox.len + len + 4 > OUTBOX_MAX)
        return MK_EFULL;
    size_t was = c->outbox.len;
    mk_put_u32be(&c->outbox, (uint32_t)len);
    mk_put_raw(&c->outbox, frame, len);
    if (c->outbox.err) {
        c->outbox.err = 0;
        c->outbox.len = was; /* no half-queued request */
        return MK_ENOMEM;
    }
    return 0;
}

void mk__rpc_close(mk__rpc *c)
{
    if (c->owner_closed)
        return;
    c->owner_closed = true;
    /* Dialling: on_dialled frees. Linked: on_close frees. */
    if (c->link)
        mk_link_close(c->link, MK_CLOSE_SUCCESS, NULL);
}

uint32_t mk__rpc_close_code(const mk__rpc *c)
{
    return c->close_code;
}

const mk_peer_id *mk__rpc_peer(const mk__rpc *c)
{
    return &c->peer;
}

bool mk__rpc_ready(const mk__rpc *c)
{
    return c->state == READY && !c->owner_closed;
}
