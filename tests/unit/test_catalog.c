/* The catalog's bounds and the rules every path an entry enters by goes
 * through (docs/discovery.md): entry size, dates ahead of the drift
 * window, the catalog's size, per-source allowances and what may evict
 * whom. The first tests drive the catalog directly (node_internal.h); the
 * last one is a live node fed by a lying peer over every protocol. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mosaik/blake3.h"
#include "mosaik/clock.h"
#include "mosaik/codec.h"
#include "mosaik/entry.h"
#include "mosaik/error.h"
#include "mosaik/node.h"
#include "mosaik/transport.h"
#include "mosaik/node_internal.h"
#include "testutil.h"

#define TEN_YEARS_MS (10ll * 365 * 24 * 3600 * 1000)

static mk_node *new_node(uv_loop_t *loop, const mk_keypair *kp,
                         const mk_discovery_config *dc, const char *listen)
{
    mk_node_config cfg = {.loop = loop, .key = kp, .listen = listen};
    if (dc)
        cfg.discovery = *dc;
    mk_node *node;
    char err[MK_ERRMSG_SIZE] = "";
    int rc = mk_node_new(&cfg, &node, err);
    if (rc != 0)
        fail_msg("mk_node_new: %s (%s)", mk_strerror(rc), err);
    return node;
}

static void close_node(uv_loop_t *loop, mk_node *node)
{
    mk_node_close(node, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* A signed entry of `kp` at version (start, update), listing an address
 * and padded with about `pad` bytes of tags. */
static void make_entry(mk_peer_entry *e, const mk_keypair *kp, int64_t start,
                       int64_t update, size_t pad)
{
    mk_entry_init(e, &MK_UNIVERSE, &kp->pub, start);
    e->update_ms = update;
    assert_int_equal(mk_entry_add_addr(e, "127.0.0.1:1"), 1);
    for (int i = 0; pad > 0 && i < MK_ENTRY_MAX_TAGS; i++) {
        char t[MK_ENTRY_MAX_STR + 1];
        size_t n = pad > 200 ? 200 : pad;
        if (n < 4)
            n = 4;
        memset(t, 'a' + i % 26, n);
        t[0] = (char)('A' + i % 26);
        t[1] = (char)('A' + i / 26);
        t[n] = '\0';
        assert_int_equal(mk_entry_add_tag(e, t), 1);
        pad = pad > n ? pad - n : 0;
    }
    assert_int_equal(mk_entry_sign(e, kp), 0);
}

/* Offers a fresh entry of `kp` to the catalog, as if `via` passed it on
 * over a link we dialled (NULL: fed locally). When `via` is the entry's
 * own peer, that verifies it. */
static mk__upsert offer(mk_node *node, const mk_keypair *kp, int64_t start,
                        int64_t update, size_t pad, const mk_peer_id *via)
{
    mk_peer_entry e;
    make_entry(&e, kp, start, update, pad);
    mk__origin o = {.via = via, .reached = true};
    return mk__node_upsert(node, &e, via ? &o : NULL);
}

/* The same, from a peer that dialled us: it proves its key, not that it
 * can be reached. */
static mk__upsert offer_inbound(mk_node *node, const mk_keypair *kp,
                                int64_t start, int64_t update,
                                const mk_peer_id *via)
{
    mk_peer_entry e;
    make_entry(&e, kp, start, update, 0);
    mk__origin o = {.via = via, .reached = false};
    return mk__node_upsert(node, &e, &o);
}

static bool holds(const mk_node *node, const mk_peer_id *id)
{
    mk_peer_info info;
    return mk_node_peer(node, id, &info);
}

/* ---- entry size --------------------------------------------------------- */

/* The node's own entry: a change that would take it over the bound is an
 * error, and leaves the entry (and its version) as it was. */
static void local_entry_over_the_bound_is_an_error(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mk_keypair kp;
    mk_keypair_generate(&kp);
    mk_node *node = new_node(&loop, &kp, NULL, NULL);

    uint8_t *blob = calloc(1, MK_ENTRY_MAX_TICKET);
    mk_ticket t = {.data = blob, .len = MK_ENTRY_MAX_TICKET};
    mk_id_from_str(&t.class, "class-a");
    assert_int_equal(mk_node_set_ticket(node, &t), 1);
    const mk_peer_entry *self = mk_node_entry(node);
    int64_t version = self->update_ms;
    size_t wire_len = self->wire_len;
    assert_true(wire_len <= MK_ENTRY_MAX_WIRE);

    mk_id_from_str(&t.class, "class-b");
    assert_int_equal(mk_node_set_ticket(node, &t), MK_EMSGSIZE);
    self = mk_node_entry(node);
    assert_int_equal(self->n_tickets, 1);
    assert_int_equal(self->update_ms, version);
    assert_int_equal(self->wire_len, wire_len);

    /* Tags until it no longer fits: the one that does not is refused
     * with MK_EMSGSIZE and not kept. */
    int rc = 0, added = 0;
    for (int i = 0; i < MK_ENTRY_MAX_TAGS && rc >= 0; i++) {
        char tag[MK_ENTRY_MAX_STR + 1];
        memset(tag, 'a' + i % 26, MK_ENTRY_MAX_STR);
        tag[MK_ENTRY_MAX_STR] = '\0';
        tag[0] = (char)('A' + i);
        rc = mk_node_add_tag(node, tag);
        added += rc == 1;
    }
    assert_int_equal(rc, MK_EMSGSIZE);
    self = mk_node_entry(node);
    assert_int_equal((int)self->n_tags, added);
    assert_true(self->wire_len <= MK_ENTRY_MAX_WIRE);
    mk_peer_entry back;
    assert_int_equal(mk_entry_decode(&back, self->wire, self->wire_len), 0);
    mk_entry_free(&back);

    free(blob);
    close_node(&loop, node);
    uv_loop_close(&loop);
}

/* ---- dates ahead of the drift window ------------------------------------ */

/* Through every door the catalog has: fed locally, heard of through a
 * remote, from the peer itself (hello, pong, its own snapshot entry), a
 * start clock ahead, and departures naming a version ahead. */
static void future_dated_entries_are_refused(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mk_keypair me, p, relay;
    mk_keypair_generate(&me);
    mk_keypair_generate(&p);
    mk_keypair_generate(&relay);
    mk_node *node = new_node(&loop, &me, NULL, NULL);
    int64_t now = mk_now_ms(), ahead = now + TEN_YEARS_MS;

    mk_peer_entry e;
    make_entry(&e, &p, ahead, ahead, 0);
    assert_int_equal(mk_node_feed(node, e.wire, e.wire_len), MK_ESTALE);
    mk_entry_free(&e);
    assert_int_equal(offer(node, &p, ahead, ahead, 0, &relay.pub),
                     MK__UPSERT_FUTURE);
    assert_int_equal(offer(node, &p, ahead, ahead, 0, &p.pub),
                     MK__UPSERT_FUTURE);
    /* Only the start ahead: it would outrank every honest version. */
    assert_int_equal(offer(node, &p, ahead, now, 0, &p.pub),
                     MK__UPSERT_FUTURE);
    /* Only the update ahead. */
    assert_int_equal(offer(node, &p, now, ahead, 0, &relay.pub),
                     MK__UPSERT_FUTURE);
    /* Just past the drift window, and just inside it. */
    int64_t drift = 50000;
    assert_int_equal(offer(node, &p, now, now + drift + 5000, 0, &p.pub),
                     MK__UPSERT_FUTURE);
    assert_false(holds(node, &p.pub));
    mk_discovery_stats st;
    mk_node_discovery_stats(node, &st);
    assert_int_equal(st.refused_future, 6);

    assert_int_equal(offer(node, &p, now, now + drift - 5000, 0, &p.pub),
                     MK__UPSERT_NEW);
    assert_true(holds(node, &p.pub));

    /* A departure of a version ahead (which would tombstone every honest
     * version) and one sent from ahead are refused; the peer stays. */
    mk_peer_entry last;
    make_entry(&last, &p, ahead, ahead, 0);
    mk_departure d;
    mk_departure_make(&d, &last, &p, now);
    assert_false(mk__node_take_departure(node, &d, NULL));
    mk_entry_free(&last);
    make_entry(&last, &p, now, now + drift - 5000, 0);
    mk_departure_make(&d, &last, &p, ahead);
    assert_false(mk__node_take_departure(node, &d, NULL));
    assert_true(holds(node, &p.pub));
    mk_node_discovery_stats(node, &st);
    assert_int_equal(st.refused_future, 8);
    /* An honest departure still works. */
    mk_departure_make(&d, &last, &p, now);
    assert_true(mk__node_take_departure(node, &d, NULL));
    assert_false(holds(node, &p.pub));
    mk_entry_free(&last);

    close_node(&loop, node);
    uv_loop_close(&loop);
}

/* ---- the catalog bound -------------------------------------------------- */

/* A node with room for 64 peers, each source allowed 32 new peers a
 * minute, holds 5 peers it verified and 5 it heard of through an honest
 * source. One source floods fresh identities, then many sources do: the
 * bound holds, and not one established peer is lost. A peer that speaks
 * for itself still gets in, at the expense of the newest heard-of peer. */
static void catalog_bound_holds_and_established_peers_survive(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mk_keypair me, honest, attacker;
    mk_keypair_generate(&me);
    mk_keypair_generate(&honest);
    mk_keypair_generate(&attacker);
    mk_discovery_config dc = {.max_peers = 64,
                              .max_new_per_source = 32,
                              .source_window_ms = 60000};
    mk_node *node = new_node(&loop, &me, &dc, NULL);
    int64_t now = mk_now_ms();

    enum { ESTABLISHED = 5, FLOOD = 1000 };
    mk_keypair verified[ESTABLISHED], heard[ESTABLISHED];
    for (int i = 0; i < ESTABLISHED; i++) {
        mk_keypair_generate(&verified[i]);
        mk_keypair_generate(&heard[i]);
        assert_int_equal(offer(node, &verified[i], now, now, 100,
                               &verified[i].pub),
                         MK__UPSERT_NEW);
        assert_int_equal(offer(node, &heard[i], now, now, 100, &honest.pub),
                         MK__UPSERT_NEW);
    }

    /* One source, a thousand fresh identities: its allowance (32) gets
     * in, the rest is refused. */
    size_t limited = 0, stored = 0;
    mk_keypair unreachable; /* one that got in */
    for (int i = 0; i < FLOOD; i++) {
        mk_keypair k;
        mk_keypair_generate(&k);
        mk__upsert u = offer(node, &k, now, now, 0, &attacker.pub);
        limited += u == MK__UPSERT_LIMITED;
        stored += u == MK__UPSERT_NEW;
        if (u == MK__UPSERT_NEW)
            unreachable = k;
    }
    assert_int_equal(stored, 32);
    assert_int_equal(limited, FLOOD - 32);
    mk_discovery_stats st;
    mk_node_discovery_stats(node, &st);
    assert_int_equal(st.refused_rate, FLOOD - 32);

    /* Many sources: the catalog fills to its bound and no further. */
    size_t full = 0;
    for (int s = 0; s < 40; s++) {
        mk_keypair src;
        mk_keypair_generate(&src);
        for (int i = 0; i < 4; i++) {
            mk_keypair k;
            mk_keypair_generate(&k);
            full += offer(node, &k, now, now, 0, &src.pub) ==
                    MK__UPSERT_FULL;
        }
    }
    mk_node_discovery_stats(node, &st);
    assert_int_equal(st.peers, 64);
    assert_int_equal(mk_node_peer_count(node), 64);
    assert_int_equal(full, 40 * 4 - (64 - 2 * ESTABLISHED - 32));
    assert_int_equal(st.refused_full, full);
    for (int i = 0; i < ESTABLISHED; i++) {
        assert_true(holds(node, &verified[i].pub));
        assert_true(holds(node, &heard[i].pub));
    }

    /* A heard-of newcomer cannot displace anyone; a peer speaking for
     * itself can, and what goes is the newest heard-of peer, never an
     * established one. */
    mk_keypair late;
    mk_keypair_generate(&late);
    assert_int_equal(offer(node, &late, now, now, 0, &honest.pub),
                     MK__UPSERT_FULL);
    /* Dialling us and saying hello proves a key, which costs nothing to
     * make: it displaces only peers nobody can reach, and there are none
     * yet (every flooded entry lists an address, none failed). */
    assert_int_equal(offer_inbound(node, &late, now, now, &late.pub),
                     MK__UPSERT_FULL);
    assert_int_equal(st.evicted, 0);
    /* Once a flooded peer fails to answer us, it is fair game for it. */
    mk__node_exchange_result(node, &unreachable.pub, false);
    assert_int_equal(offer_inbound(node, &late, now, now, &late.pub),
                     MK__UPSERT_NEW);
    assert_false(holds(node, &unreachable.pub));
    mk_node_discovery_stats(node, &st);
    assert_int_equal(st.evicted, 1);
    /* A peer we reached takes the place of the newest unverified one
     * (here the one that only dialled us). */
    mk_keypair reached;
    mk_keypair_generate(&reached);
    assert_int_equal(offer(node, &reached, now, now, 0, &reached.pub),
                     MK__UPSERT_NEW);
    mk_node_discovery_stats(node, &st);
    assert_int_equal(st.evicted, 2);
    assert_int_equal(st.peers, 64);
    assert_true(holds(node, &reached.pub));
    assert_false(holds(node, &late.pub));
    for (int i = 0; i < ESTABLISHED; i++) {
        assert_true(holds(node, &verified[i].pub));
        assert_true(holds(node, &heard[i].pub));
    }

    close_node(&loop, node);
    uv_loop_close(&loop);
}

/* The byte budget (64 KiB here) against large entries: the bound holds,
 * established peers stay, a verified peer's entry may grow at a heard-of
 * peer's expense and a heard-of peer's may not grow past the bound. */
static void catalog_byte_budget_holds(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mk_keypair me, honest, attacker;
    mk_keypair_generate(&me);
    mk_keypair_generate(&honest);
    mk_keypair_generate(&attacker);
    mk_discovery_config dc = {.max_catalog_bytes = 64u << 10};
    mk_node *node = new_node(&loop, &me, &dc, NULL);
    int64_t now = mk_now_ms();

    enum { ESTABLISHED = 5 };
    mk_keypair verified[ESTABLISHED], heard[ESTABLISHED];
    for (int i = 0; i < ESTABLISHED; i++) {
        mk_keypair_generate(&verified[i]);
        mk_keypair_generate(&heard[i]);
        assert_int_equal(offer(node, &verified[i], now, now, 100,
                               &verified[i].pub),
                         MK__UPSERT_NEW);
        assert_int_equal(offer(node, &heard[i], now, now, 100, &honest.pub),
                         MK__UPSERT_NEW);
    }
    size_t stored = 0, full = 0;
    for (int i = 0; i < 100; i++) {
        mk_keypair k;
        mk_keypair_generate(&k);
        mk__upsert u = offer(node, &k, now, now, 6000, &attacker.pub);
        stored += u == MK__UPSERT_NEW;
        full += u == MK__UPSERT_FULL;
    }
    mk_discovery_stats st;
    mk_node_discovery_stats(node, &st);
    assert_true(stored > 0 && stored < 12);
    assert_int_equal(stored + full, 100);
    assert_true(st.catalog_bytes <= dc.max_catalog_bytes);
    assert_true(st.catalog_bytes > dc.max_catalog_bytes - 6500);

    assert_int_equal(offer(node, &verified[0], now, now + 1, 6000,
                           &honest.pub),
                     MK__UPSERT_UPDATED);
    mk_node_discovery_stats(node, &st);
    assert_true(st.evicted >= 1);
    assert_true(st.catalog_bytes <= dc.max_catalog_bytes);
    assert_int_equal(offer(node, &heard[0], now, now + 1, 6000, &honest.pub),
                     MK__UPSERT_FULL);
    mk_node_discovery_stats(node, &st);
    assert_true(st.catalog_bytes <= dc.max_catalog_bytes);
    for (int i = 0; i < ESTABLISHED; i++) {
        assert_true(holds(node, &verified[i].pub));
        assert_true(holds(node, &heard[i].pub));
    }
    close_node(&loop, node);
    uv_loop_close(&loop);
}

/* A source's allowance refills over its window. */
static void source_allowance_refills(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mk_keypair me, src;
    mk_keypair_generate(&me);
    mk_keypair_generate(&src);
    mk_discovery_config dc = {.max_new_per_source = 4,
                              .source_window_ms = 400};
    mk_node *node = new_node(&loop, &me, &dc, NULL);
    int64_t now = mk_now_ms();
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        mk_keypair k;
        mk_keypair_generate(&k);
        ok += offer(node, &k, now, now, 0, &src.pub) == MK__UPSERT_NEW;
    }
    assert_int_equal(ok, 4);
    uv_sleep(250); /* 100 ms per token */
    ok = 0;
    for (int i = 0; i < 8; i++) {
        mk_keypair k;
        mk_keypair_generate(&k);
        ok += offer(node, &k, now, now, 0, &src.pub) == MK__UPSERT_NEW;
    }
    assert_in_range(ok, 2, 3);
    close_node(&loop, node);
    uv_loop_close(&loop);
}

/* ---- a lying peer, over every protocol -------------------------------------
 * A node learns of peer F (honestly: its current entry, fed locally). F
 * answers the node's catalog exchange, its ping and its neighbour link
 * with entries dated ten years ahead (its own and a stranger's), and a
 * departure of a version ahead. None of it is stored, F's honest entry
 * stays, and the node keeps working. */

typedef struct liar {
    uv_loop_t *loop;
    mk_transport *t;
    mk_keypair key, stranger;
    int synced, pinged, helloed;
    uint32_t sync_close; /* how the node ended the exchange */
} liar;

static void put_future(mk_buf *b, const mk_keypair *kp)
{
    int64_t ahead = mk_now_ms() + TEN_YEARS_MS;
    mk_peer_entry e;
    make_entry(&e, kp, ahead, ahead, 0);
    mk_put_bytes(b, e.wire, e.wire_len);
    mk_entry_free(&e);
}

static void liar_send(mk_link *link, mk_buf *b)
{
    assert_int_equal(b->err, 0);
    mk_link_send(link, b->data, b->len);
    mk_buf_free(b);
    mk_buf_init(b);
}

static void on_liar_sync_frame(mk_link *link, const uint8_t *f, size_t n,
                               void *data)
{
    liar *l = data;
    if (f[0] != MK__MSG_SNAPSHOT_END)
        return;
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__MSG_SNAPSHOT);
    mk_put_id(&b, &MK_UNIVERSE);
    mk_put_u8(&b, 0); /* tier */
    mk_put_varint(&b, 2);
    put_future(&b, &l->key);
    put_future(&b, &l->stranger);
    liar_send(link, &b);
    mk_put_u8(&b, MK__MSG_SNAPSHOT_END);
    mk_put_id(&b, &MK_UNIVERSE);
    mk_put_varint(&b, 2);
    liar_send(link, &b);
    l->synced++;
}

static void on_liar_ping_frame(mk_link *link, const uint8_t *f, size_t n,
                               void *data)
{
    liar *l = data;
    if (f[0] != MK__MSG_PING)
        return;
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__MSG_PONG);
    put_future(&b, &l->key);
    liar_send(link, &b);
    l->pinged++;
}

static void on_liar_ignore(mk_link *link, const uint8_t *f, size_t n,
                           void *data)
{
}

static void on_liar_close(mk_link *link, uint32_t code, int status,
                          void *data)
{
}

static void on_liar_sync_close(mk_link *link, uint32_t code, int status,
                               void *data)
{
    liar *l = data;
    l->sync_close = code;
}

static void on_liar_sync(mk_link *link, void *data)
{
    mk_link_set_callbacks(link, on_liar_sync_frame, on_liar_sync_close,
                          data);
}

static void on_liar_ping(mk_link *link, void *data)
{
    mk_link_set_callbacks(link, on_liar_ping_frame, on_liar_close, data);
}

static void on_liar_announce(mk_link *link, void *data)
{
    liar *l = data;
    mk_link_set_callbacks(link, on_liar_ignore, on_liar_close, l);
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, MK__MSG_HELLO);
    mk_put_id(&b, &MK_UNIVERSE);
    put_future(&b, &l->key);
    liar_send(link, &b);
    /* A hello whose entry is refused still opens the link (as one
     * outside the drift window always did): what follows is judged on
     * its own account. */
    mk_put_u8(&b, MK__MSG_ENTRY);
    put_future(&b, &l->stranger);
    liar_send(link, &b);
    /* Not staying a neighbour: the node would take its RTT samples from
     * this link and never need to ping. */
    mk_link_close(link, MK_CLOSE_SUCCESS, NULL);
    l->helloed++;
}

static void future_dated_entries_refused_on_every_protocol(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    liar l = {.loop = &loop};
    mk_keypair_generate(&l.key);
    mk_keypair_generate(&l.stranger);
    mk_transport_config tc = {.loop = &loop, .key = &l.key,
                              .listen = "127.0.0.1:0"};
    assert_int_equal(mk_transport_new(&tc, &l.t, NULL), 0);
    assert_int_equal(mk_transport_serve(l.t, MK__ALPN_SYNC, on_liar_sync, &l),
                     0);
    assert_int_equal(mk_transport_serve(l.t, MK__ALPN_PING, on_liar_ping, &l),
                     0);
    assert_int_equal(
        mk_transport_serve(l.t, MK__ALPN_ANNOUNCE, on_liar_announce, &l), 0);

    mk_keypair me;
    mk_keypair_generate(&me);
    /* Probes due at once even though the exchange measured an RTT. The
     * node is dial-only: a listening node probes by dialling only while
     * its catalog fills up (discovery.c), a client always. */
    mk_discovery_config dc = {.announce_interval_ms = 60000,
                              .rtt_probe_interval_ms = 200};
    mk_node *node = new_node(&loop, &me, &dc, NULL);
    assert_int_equal(mk_node_start(node), 0);

    /* F's honest entry, with its address. */
    int64_t now = mk_now_ms();
    mk_peer_entry honest;
    mk_entry_init(&honest, &MK_UNIVERSE, &l.key.pub, now);
    assert_int_equal(mk_entry_add_addr(&honest, mk_transport_listen_addr(l.t)),
                     1);
    assert_int_equal(mk_entry_sign(&honest, &l.key), 0);
    assert_int_equal(mk_node_feed(node, honest.wire, honest.wire_len), 1);

    /* The neighbour link comes at the next tick (1.1 turned away, then
     * 1.0: F is an older node), and with it the catalog exchange an older
     * node gets; the RTT probe within 1-3 s. */
    int64_t until = mk_mono_ms() + 10000;
    while ((!l.synced || !l.pinged || !l.helloed) && mk_mono_ms() < until)
        uv_run(&loop, UV_RUN_ONCE);
    for (int64_t settle = mk_mono_ms() + 300; mk_mono_ms() < settle;)
        uv_run(&loop, UV_RUN_NOWAIT), uv_sleep(5);
    assert_true(l.synced > 0);
    /* The exchange went through (the lies were read, and refused). */
    assert_int_equal(l.sync_close, MK_CLOSE_SUCCESS);
    assert_true(l.pinged > 0);
    assert_true(l.helloed > 0);

    mk_peer_info info;
    assert_true(mk_node_peer(node, &l.key.pub, &info));
    assert_int_equal(info.entry->update_ms, honest.update_ms);
    assert_false(holds(node, &l.stranger.pub));
    mk_discovery_stats st;
    mk_node_discovery_stats(node, &st);
    /* sync: F and the stranger; ping: F; hello: F; entry: the stranger. */
    assert_true(st.refused_future >= 5);

    mk_entry_free(&honest);
    mk_node_close(node, NULL, NULL);
    mk_transport_close(l.t, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}


/* ---- repairs that are news ------------------------------------------------
 * A repair (an entry a neighbour sent because our digest lacked it) used
 * to stop where it landed. In a crowd starting together the flood of a
 * newcomer's entry passes before most links are up, so the nodes that
 * repaired it were islands and the rest waited for their own rounds of
 * anti-entropy. A version signed within MK__NEWS_MS is news: its repair
 * floods on. An older one is still old news. Counted, not timed: the
 * forward is queued on the neighbour link before mk__node_upsert
 * returns. */
static uint64_t frames_out(mk_node *node)
{
    mk_transport_stats ts;
    mk_transport_stats_get(mk_node_transport(node), &ts);
    return ts.frames_out;
}

static size_t ready_links(const mk_node *node)
{
    size_t n = 0;
    for (size_t i = 0; i < node->n_nbrs; i++)
        n += node->nbrs[i].ready && !node->nbrs[i].closing;
    return n;
}

static void repaired_news_floods_on(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mk_keypair kb, kc, kx, ky, kv;
    mk_keypair_generate(&kb);
    mk_keypair_generate(&kc);
    mk_keypair_generate(&kx);
    mk_keypair_generate(&ky);
    mk_keypair_generate(&kv);
    mk_node *b = tu_node_new(&loop, &kb, true, NULL, NULL);
    mk_node *c = tu_node_new(&loop, &kc, true, b, &kb);
    /* Until b and c are neighbours (c dials b, b may dial c). */
    int64_t until = mk_mono_ms() + 20000;
    while (mk_mono_ms() < until &&
           !(ready_links(b) >= 1 && tu_knows(c, &kb.pub) &&
             tu_knows(b, &kc.pub)))
        tu_spin(&loop, 20);
    assert_true(tu_knows(c, &kb.pub));

    /* Repairs from v (nobody in particular: neither b's neighbour nor
     * the entries' peer), as take_repair passes them. */
    mk__origin o = {.via = &kv.pub, .quiet = true};
    int64_t now = mk_now_ms();
    mk_peer_entry old, news;
    make_entry(&old, &ky, now - 3 * MK__NEWS_MS, now - 3 * MK__NEWS_MS, 0);
    uint64_t before = frames_out(b);
    assert_int_equal(mk__node_upsert(b, &old, &o), MK__UPSERT_NEW);
    assert_int_equal(frames_out(b), before);

    /* Once per neighbour link (b and c may have dialled each other). */
    size_t links = ready_links(b);
    assert_true(links >= 1);
    make_entry(&news, &kx, now - 1000, now - 500, 0);
    before = frames_out(b);
    assert_int_equal(mk__node_upsert(b, &news, &o), MK__UPSERT_NEW);
    assert_int_equal(frames_out(b), before + links);
    until = mk_mono_ms() + 10000;
    while (!tu_knows(c, &kx.pub) && mk_mono_ms() < until)
        tu_spin(&loop, 10);
    assert_true(tu_knows(c, &kx.pub));

    /* The same version again is no news to b: not forwarded twice. */
    make_entry(&news, &kx, now - 1000, now - 500, 0);
    before = frames_out(b);
    assert_int_equal(mk__node_upsert(b, &news, &o), MK__UPSERT_NOT_NEWER);
    assert_int_equal(frames_out(b), before);

    mk_node_close(c, NULL, NULL);
    close_node(&loop, b);
    uv_loop_close(&loop);
}

/* ---- memory per peer ----------------------------------------------------
 * What the catalog costs per peer a network adds, for an entry like a
 * daemon's (two addresses, two tags, two groups): the signed wire form,
 * the decoded lists and the peer's slot. Printed for the record (docs/
 * discovery.md quotes it); the bound keeps a regression from slipping in
 * unnoticed. */
static void catalog_memory_per_peer(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mk_keypair me;
    mk_keypair_generate(&me);
    mk_node *node = new_node(&loop, &me, NULL, NULL);
    enum { N = 256 };
    int64_t now = mk_now_ms();
    size_t wire = 0;
    for (int i = 0; i < N; i++) {
        mk_keypair k;
        mk_keypair_generate(&k);
        mk_peer_entry e;
        mk_entry_init(&e, &MK_UNIVERSE, &k.pub, now);
        char a[64];
        snprintf(a, sizeof a, "10.0.%d.%d:7777", i / 250, i % 250);
        assert_int_equal(mk_entry_add_addr(&e, a), 1);
        snprintf(a, sizeof a, "[fd00::%x]:7777", i);
        assert_int_equal(mk_entry_add_addr(&e, a), 1);
        assert_int_equal(mk_entry_add_tag(&e, "oracle"), 1);
        assert_int_equal(mk_entry_add_tag(&e, "eu-west"), 1);
        mk_id g;
        mk_id_from_str(&g, "group-a");
        assert_int_equal(mk_entry_add_group(&e, &g), 1);
        mk_id_from_str(&g, "group-b");
        assert_int_equal(mk_entry_add_group(&e, &g), 1);
        assert_int_equal(mk_entry_sign(&e, &k), 0);
        wire += e.wire_len;
        assert_int_equal(mk_node_feed(node, e.wire, e.wire_len), 1);
        mk_entry_free(&e);
    }
    size_t mem = mk__node_catalog_memory(node);
    print_message("catalog: %d peers, %zu bytes held, %zu per peer "
                  "(signed entry %zu, slot %zu)\n",
                  N, mem, mem / N, wire / N, sizeof(mk__peer));
    /* The wire form, its decoded copy (about as large) and the slot. */
    assert_true(mem / N <= 2 * wire / N + sizeof(mk__peer));
    close_node(&loop, node);
    uv_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(local_entry_over_the_bound_is_an_error),
        cmocka_unit_test(future_dated_entries_are_refused),
        cmocka_unit_test(catalog_bound_holds_and_established_peers_survive),
        cmocka_unit_test(catalog_byte_budget_holds),
        cmocka_unit_test(source_allowance_refills),
        cmocka_unit_test(future_dated_entries_refused_on_every_protocol),
        cmocka_unit_test(repaired_news_floods_on),
        cmocka_unit_test(catalog_memory_per_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
