/* A node: lifecycle, the local entry, the catalog and its events
 * (include/mosaik/node.h). The discovery protocols that fill the catalog
 * are in discovery.c.
 *
 * The catalog is a PeerId-sorted array: nodes know tens to hundreds of
 * peers, and a sorted array gives ordered iteration (deterministic
 * output, stable tests) and binary search without a hash table.
 *
 * It is bounded (max_peers, max_catalog_bytes), and what may take a place
 * depends on where an entry came from (mk__origin, docs/discovery.md): a
 * peer an exchange of ours reached at its address is verified and may
 * evict the newest unverified peer when the catalog is full; one that
 * dialled us only proves its key and may evict only peers nobody could
 * reach; a peer only heard of is refused then, and each remote may
 * introduce only so many new peers per window. Every entry dated more
 * than max_time_drift ahead is refused, whatever the path, so every
 * stored entry purges in time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/metrics.h"
#include "node_internal.h"

uint64_t mk__node_rand(mk_node *node)
{
    /* xorshift64*: cheap, good enough for jitter and neighbour choice. */
    uint64_t x = node->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    node->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int mk_parse_peer_addr(const char *s, mk_peer_id *peer, char *addr,
                       size_t addr_len)
{
    const char *at = strchr(s, '@');
    if (!at || mk_id_from_hex(peer, s, (size_t)(at - s)) != 0)
        return MK_EINVAL;
    const char *hp = at + 1;
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp || colon[1] == '\0' ||
        strlen(hp) >= addr_len)
        return MK_EINVAL;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return MK_EINVAL;
    strcpy(addr, hp);
    return 0;
}

static void defaults(mk_discovery_config *d)
{
#define DEF(f, v)                                                             \
    if (d->f == 0)                                                            \
    d->f = (v)
    DEF(announce_interval_ms, 45000);
    DEF(announce_jitter_pct, 50);
    DEF(purge_after_ms, 300000);
    DEF(max_time_drift_ms, 50000);
    DEF(rtt_probe_interval_ms, 30000);
    DEF(departure_window_ms, 500);
    DEF(neighbours, 5);
    DEF(max_peers, 4096);
    DEF(max_catalog_bytes, 16u << 20);
    DEF(max_new_per_source, 1024);
    DEF(source_window_ms, 60000);
#undef DEF
    if (d->announce_jitter_pct > 100)
        d->announce_jitter_pct = 100;
    if (d->max_catalog_bytes < 4 * MK_ENTRY_MAX_WIRE)
        d->max_catalog_bytes = 4 * MK_ENTRY_MAX_WIRE;
    if (d->idle_timeout_ms == 0) {
        /* An honest neighbour re-announces itself on every neighbour link
         * at least once per announce period, at most interval × (1 + j):
         * three of those missed in a row is a dead or silent link. */
        uint64_t longest = (uint64_t)d->announce_interval_ms *
                           (100 + d->announce_jitter_pct) / 100;
        uint64_t t = 3 * longest;
        d->idle_timeout_ms = t < 10000        ? 10000
                             : t > UINT32_MAX ? UINT32_MAX
                                              : (uint32_t)t;
    }
}

/* Whether the interface address `ifa` may be advertised for a listener
 * on the IPv4 (`v4`) or IPv6 (`v6`) wildcard. IPv6 link-local addresses
 * need a scope id that means nothing on another host, so they are left
 * out. A [::] listener takes IPv4 too (Linux's bindv6only is 0 by
 * default), so it advertises both families. */
static bool advertisable(const uv_interface_address_t *ifa, bool v4, bool v6)
{
    if (ifa->address.address4.sin_family == AF_INET)
        return v4 || v6;
    if (ifa->address.address6.sin6_family != AF_INET6 || !v6)
        return false;
    const uint8_t *b = ifa->address.address6.sin6_addr.s6_addr;
    return !(b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

/* The addresses peers can reach us at: the bound address, or, when bound
 * to a wildcard, the address of every interface, leaving out loopback
 * unless there is nothing else. A loopback address in an entry would
 * send a peer on another host to itself (or to whichever local process
 * owns that port). Sets node->addr (what mk_node_addr reports) to the
 * first address advertised, so that it is one a peer can dial. */
static int advertise_addrs(mk_node *node, const char *bound)
{
    const char *colon = strrchr(bound, ':');
    if (!colon)
        return 0;
    const char *port = colon + 1;
    bool v4 = strncmp(bound, "0.0.0.0:", 8) == 0;
    bool v6 = strncmp(bound, "[::]:", 5) == 0;
    if (!v4 && !v6)
        return mk_entry_add_addr(&node->self, bound) < 0 ? MK_ENOMEM : 0;
    uv_interface_address_t *ifs;
    int n;
    if (uv_interface_addresses(&ifs, &n) != 0)
        return MK_EIO;
    char first[sizeof node->addr] = "";
    /* Pass 0: real interfaces; pass 1: loopback, only if pass 0 found
     * none (a host with no network still serves local peers). */
    for (int pass = 0; pass < 2 && first[0] == '\0'; pass++) {
        for (int i = 0; i < n; i++) {
            if ((ifs[i].is_internal != 0) != (pass == 1) ||
                !advertisable(&ifs[i], v4, v6))
                continue;
            char ip[64], a[96];
            if (ifs[i].address.address4.sin_family == AF_INET) {
                uv_ip4_name(&ifs[i].address.address4, ip, sizeof ip);
                snprintf(a, sizeof a, "%s:%s", ip, port);
            } else {
                uv_ip6_name(&ifs[i].address.address6, ip, sizeof ip);
                snprintf(a, sizeof a, "[%s]:%s", ip, port);
            }
            int rc = mk_entry_add_addr(&node->self, a);
            if (rc == MK_EFULL)
                break; /* plenty to try already */
            if (rc < 0) {
                uv_free_interface_addresses(ifs, n);
                return rc;
            }
            if (first[0] == '\0')
                snprintf(first, sizeof first, "%s", a);
        }
    }
    uv_free_interface_addresses(ifs, n);
    if (first[0])
        snprintf(node->addr, sizeof node->addr, "%s", first);
    return 0;
}

int mk_node_new(const mk_node_config *cfg, mk_node **out, char *err)
{
    char detail[MK_ERRMSG_SIZE];
    int rc;
    *out = NULL;
    if (!cfg->loop || !cfg->key)
        return mk_errf(err, MK_EINVAL, "node config needs a loop and a key");
    mk_node *node = calloc(1, sizeof *node);
    if (!node)
        return MK_ENOMEM;
    node->loop = cfg->loop;
    node->key = *cfg->key;
    node->network = cfg->network ? *cfg->network : MK_UNIVERSE;
    node->dc = cfg->discovery;
    defaults(&node->dc);
    node->max_frame = cfg->max_frame ? cfg->max_frame
                                     : MK_LINK_MAX_FRAME_DEFAULT;
    node->rng = (uint64_t)mk_mono_us() ^ ((uint64_t)node->key.pub.b[0] << 56 |
                                          (uint64_t)node->key.pub.b[1] << 48) ^
                0x9E3779B97F4A7C15ull;
    if (node->rng == 0)
        node->rng = 1;

    node->boots = calloc(cfg->n_bootstrap ? cfg->n_bootstrap : 1,
                         sizeof *node->boots);
    if (!node->boots) {
        rc = MK_ENOMEM;
        goto err_after_node;
    }
    for (size_t i = 0; i < cfg->n_bootstrap; i++) {
        mk__bootstrap *b = &node->boots[node->n_boots];
        if (mk_parse_peer_addr(cfg->bootstrap[i], &b->peer, b->addr,
                               sizeof b->addr) != 0) {
            rc = mk_errf(err, MK_EINVAL,
                         "bad bootstrap peer: \"%s\" is not PEERID@HOST:PORT "
                         "(PEERID: 64 hex)",
                         cfg->bootstrap[i]);
            goto err_after_boots;
        }
        if (mk_id_eq(&b->peer, &node->key.pub))
            continue; /* bootstrapping off ourselves is a no-op */
        b->backoff_ms = 250;
        node->n_boots++;
    }

    /* Accepted links default to an idle limit that spares neighbour links:
     * each neighbour re-announces itself at most 2 × announce_interval
     * apart (jitter is at most 100%), so three intervals never cut a live
     * one. Discovery may set tighter limits on its own links (sync, ping:
     * mk_link_set_idle_timeout). */
    uint64_t idle = 3 * (uint64_t)node->dc.announce_interval_ms;
    if (idle < MK_TRANSPORT_IDLE_DEFAULT_MS)
        idle = MK_TRANSPORT_IDLE_DEFAULT_MS;
    if (idle >= MK_TRANSPORT_NO_TIMEOUT)
        idle = MK_TRANSPORT_NO_TIMEOUT - 1;
    mk_transport_config tc = {
        .loop = cfg->loop,
        .key = cfg->key,
        .listen = cfg->listen,
        .max_frame = cfg->max_frame,
        .idle_timeout_ms = (uint32_t)idle,
    };
    rc = mk_transport_new(&tc, &node->transport, detail);
    if (rc < 0) {
        mk_errf(err, rc, "cannot start the transport: %s", detail);
        goto err_after_boots;
    }
    snprintf(node->addr, sizeof node->addr, "%s",
             mk_transport_listen_addr(node->transport));

    mk_entry_init(&node->self, &node->network, &node->key.pub, mk_now_ms());
    rc = advertise_addrs(node, node->addr);
    for (size_t i = 0; rc == 0 && i < cfg->n_tags; i++) {
        int r = mk_entry_add_tag(&node->self, cfg->tags[i]);
        if (r < 0) {
            rc = mk_errf(err, r,
                         "bad tag (1 to 255 printable bytes, at most 32 "
                         "tags): \"%s\"",
                         cfg->tags[i]);
        }
    }
    if (rc == 0) {
        rc = mk_entry_sign(&node->self, &node->key);
        if (rc == MK_EMSGSIZE)
            mk_errf(err, rc,
                    "too many addresses and tags for one node: its signed "
                    "entry would exceed %u bytes",
                    (unsigned)MK_ENTRY_MAX_WIRE);
    }
    if (rc == 0 && !cfg->metrics_off)
        rc = mk__node_metrics_init(node);
    if (rc == 0)
        rc = mk__discovery_serve(node);
    if (rc < 0)
        goto err_after_transport;

    uv_timer_init(node->loop, &node->announce_timer);
    uv_timer_init(node->loop, &node->tick_timer);
    uv_timer_init(node->loop, &node->close_timer);
    node->announce_timer.data = node->tick_timer.data =
        node->close_timer.data = node;
    *out = node;
    return 0;

err_after_transport:
    mk_metrics_free(node->metrics);
    mk_entry_free(&node->self);
    /* The transport has no links yet; closing it only frees. */
    mk_transport_close(node->transport, NULL, NULL);
err_after_boots:
    free(node->boots);
err_after_node:
    free(node);
    return rc;
}

int mk_node_sync_with(mk_node *node, const mk_peer_id *peer,
                      const char *addr)
{
    if (node->closing)
        return MK_ECLOSED;
    return mk__discovery_sync(node, peer, addr, NULL);
}

int mk_node_start(mk_node *node)
{
    if (node->started || node->closing)
        return MK_EINVAL;
    node->started = true;
    mk__discovery_start(node);
    return 0;
}

uv_loop_t *mk_node_loop(const mk_node *node)
{
    return node->loop;
}

const mk_peer_id *mk_node_id(const mk_node *node)
{
    return &node->key.pub;
}

struct mk_metrics *mk_node_metrics(const mk_node *node)
{
    return node->metrics;
}

const mk_id *mk_node_network(const mk_node *node)
{
    return &node->network;
}

const mk_keypair *mk_node_key(const mk_node *node)
{
    return &node->key;
}

mk_transport *mk_node_transport(mk_node *node)
{
    return node->transport;
}

const char *mk_node_addr(const mk_node *node)
{
    return node->addr;
}

const mk_peer_entry *mk_node_entry(const mk_node *node)
{
    return &node->self;
}

/* ---- the local entry ---------------------------------------------------- */

/* Applies `op` to a copy of the local entry and, when that changed
 * something, bumps, signs and adopts the copy: a change that cannot be
 * signed (MK_EMSGSIZE: the entry would be larger than peers accept)
 * leaves the entry exactly as it was instead of half-applied. */
typedef int (*self_op)(mk_peer_entry *e, const void *arg);

static int self_change(mk_node *node, self_op op, const void *arg)
{
    mk_peer_entry next;
    int rc = mk_entry_copy(&next, &node->self);
    if (rc < 0)
        return rc;
    rc = op(&next, arg);
    if (rc > 0) {
        mk_entry_bump(&next, mk_now_ms());
        int s = mk_entry_sign(&next, &node->key);
        rc = s < 0 ? s : 1;
    }
    if (rc <= 0) {
        mk_entry_free(&next);
        return rc;
    }
    mk_entry_free(&node->self);
    node->self = next;
    if (node->started && !node->closing)
        mk__discovery_gossip(node, &node->self, NULL);
    return 1;
}

static int op_add_tag(mk_peer_entry *e, const void *a)
{
    return mk_entry_add_tag(e, a);
}

static int op_remove_tag(mk_peer_entry *e, const void *a)
{
    return mk_entry_remove_tag(e, a);
}

static int op_add_stream(mk_peer_entry *e, const void *a)
{
    return mk_entry_add_stream(e, a);
}

static int op_remove_stream(mk_peer_entry *e, const void *a)
{
    return mk_entry_remove_stream(e, a);
}

static int op_add_group(mk_peer_entry *e, const void *a)
{
    return mk_entry_add_group(e, a);
}

static int op_remove_group(mk_peer_entry *e, const void *a)
{
    return mk_entry_remove_group(e, a);
}

static int op_set_ticket(mk_peer_entry *e, const void *a)
{
    /* Replace, not add: a renewed ticket must not leave the expired one
     * behind for validators to trip over. */
    const mk_ticket *t = a;
    int removed = mk_entry_remove_tickets_of(e, &t->class);
    int rc = mk_entry_add_ticket(e, t);
    return rc < 0 ? rc : (rc > 0 || removed);
}

static int op_remove_tickets(mk_peer_entry *e, const void *a)
{
    return mk_entry_remove_tickets_of(e, a);
}

int mk_node_add_tag(mk_node *node, const char *tag)
{
    return self_change(node, op_add_tag, tag);
}

int mk_node_remove_tag(mk_node *node, const char *tag)
{
    return self_change(node, op_remove_tag, tag);
}

int mk_node_add_stream(mk_node *node, const mk_id *stream)
{
    return self_change(node, op_add_stream, stream);
}

int mk_node_remove_stream(mk_node *node, const mk_id *stream)
{
    return self_change(node, op_remove_stream, stream);
}

int mk_node_add_group(mk_node *node, const mk_id *group)
{
    return self_change(node, op_add_group, group);
}

int mk_node_remove_group(mk_node *node, const mk_id *group)
{
    return self_change(node, op_remove_group, group);
}

int mk_node_set_ticket(mk_node *node, const mk_ticket *t)
{
    /* Always re-signed, as before: setting the same ticket again renews
     * the announcement. */
    int rc = self_change(node, op_set_ticket, t);
    return rc < 0 ? rc : 1;
}

int mk_node_remove_tickets(mk_node *node, const mk_id *cls)
{
    return self_change(node, op_remove_tickets, cls);
}

/* ---- the catalog -------------------------------------------------------- */

static size_t find_at(const mk_node *node, const mk_peer_id *id, int *found)
{
    size_t lo = 0, hi = node->n_peers;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = mk_id_cmp(&node->peers[mid].entry.peer, id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

mk__peer *mk__node_find(const mk_node *node, const mk_peer_id *id)
{
    int found;
    size_t at = find_at(node, id, &found);
    return found ? &node->peers[at] : NULL;
}

size_t mk__node_after(const mk_node *node, const mk_peer_id *id)
{
    if (!id)
        return 0;
    int found;
    size_t at = find_at(node, id, &found);
    return found ? at + 1 : at;
}

static void emit(mk_node *node, mk_peer_event ev, const mk_peer_entry *e)
{
    node->dispatching++;
    for (mk_node_watch *w = node->watches; w; w = w->next)
        if (!w->removed)
            w->cb(node, ev, e, w->data);
    if (--node->dispatching == 0) {
        mk_node_watch **pp = &node->watches;
        while (*pp) {
            mk_node_watch *w = *pp;
            if (w->removed) {
                *pp = w->next;
                free(w);
            } else {
                pp = &w->next;
            }
        }
    }
}

/* (a_start, a_update) versus (b_start, b_update), like
 * mk_entry_version_cmp. */
static int version_cmp(int64_t as, int64_t au, int64_t bs, int64_t bu)
{
    if (as != bs)
        return as < bs ? -1 : 1;
    return au < bu ? -1 : au > bu;
}

static const mk__tombstone *tomb_of(const mk_node *node, const mk_peer_id *id)
{
    if (node->n_tombs == 0)
        return NULL;
    int64_t mono = mk_mono_ms();
    for (size_t i = 0; i < node->n_tombs; i++)
        if (mk_id_eq(&node->tombs[i].peer, id) &&
            node->tombs[i].expires_mono > mono)
            return &node->tombs[i];
    return NULL;
}

bool mk__node_future(const mk_node *node, int64_t t)
{
    return t > mk_now_ms() + (int64_t)node->dc.max_time_drift_ms;
}

bool mk__node_is_verified(const mk_node *node, const mk__peer *p)
{
    return p->verified_mono != 0 &&
           mk_mono_ms() - p->verified_mono < (int64_t)node->dc.purge_after_ms;
}

void mk__node_verified(mk_node *node, const mk_peer_id *id)
{
    mk__peer *p = mk__node_find(node, id);
    if (p) {
        p->verified_mono = mk_mono_ms();
        p->failures = 0;
    }
}

void mk__node_exchange_result(mk_node *node, const mk_peer_id *id, bool ok)
{
    mk__peer *p = mk__node_find(node, id);
    if (!p)
        return;
    if (ok)
        mk__node_verified(node, id);
    else if (p->failures < UINT8_MAX)
        p->failures++;
}

/* ---- new-peer allowances, per source --------------------------------------
 * A token bucket per remote that passes entries on: max_new_per_source
 * tokens, refilled at max_new_per_source per source_window_ms, one token
 * per peer it introduces. A fresh remote starts full, so a first sync
 * with a bootstrap peer brings a whole (bounded) catalog at once, while
 * a flood of made-up identities through one link dries up after the
 * burst. The table is bounded too; a full table gives up the remote
 * with the fullest bucket, which loses nothing it would not regain. */
#define MAX_SOURCES 256

static double source_level(const mk_node *node, const mk__source *s,
                           int64_t now)
{
    double burst = node->dc.max_new_per_source;
    double refill = (double)(now - s->at_mono) * burst /
                    (double)node->dc.source_window_ms;
    double t = s->tokens + (refill > 0 ? refill : 0);
    return t > burst ? burst : t;
}

static mk__source *source_of(const mk_node *node, const mk_peer_id *id)
{
    for (size_t i = 0; i < node->n_sources; i++)
        if (mk_id_eq(&node->sources[i].peer, id))
            return &node->sources[i];
    return NULL;
}

static mk__source *source_add(mk_node *node, const mk_peer_id *id)
{
    mk__source *s = source_of(node, id);
    if (s)
        return s;
    int64_t now = mk_mono_ms();
    if (node->n_sources == MAX_SOURCES) {
        size_t best = 0;
        for (size_t i = 1; i < node->n_sources; i++)
            if (source_level(node, &node->sources[i], now) >
                source_level(node, &node->sources[best], now))
                best = i;
        s = &node->sources[best];
    } else {
        if (!node->sources &&
            !(node->sources = calloc(MAX_SOURCES, sizeof *node->sources)))
            return NULL;
        s = &node->sources[node->n_sources++];
    }
    *s = (mk__source){.peer = *id,
                      .tokens = node->dc.max_new_per_source,
                      .at_mono = now};
    return s;
}

static bool source_allows(const mk_node *node, const mk_peer_id *via)
{
    const mk__source *s = source_of(node, via);
    return !s || source_level(node, s, mk_mono_ms()) >= 1.0;
}

static void source_take(mk_node *node, const mk_peer_id *via)
{
    mk__source *s = source_add(node, via);
    if (!s)
        return;
    int64_t now = mk_mono_ms();
    s->tokens = source_level(node, s, now) - 1.0;
    s->at_mono = now;
}

void mk__node_count_refusal(mk_node *node, mk__upsert why)
{
    switch (why) {
    case MK__UPSERT_FUTURE:
        node->stats.refused_future++;
        break;
    case MK__UPSERT_FULL:
        node->stats.refused_full++;
        break;
    case MK__UPSERT_LIMITED:
        node->stats.refused_rate++;
        break;
    default:
        break;
    }
}

static bool catalog_full(const mk_node *node, size_t more_bytes)
{
    return node->n_peers >= node->dc.max_peers ||
           node->catalog_bytes + more_bytes > node->dc.max_catalog_bytes;
}

/* The catalog's rules, in one place: REFUSED for another network, our
 * own id, older than purge_after, or at or below a tombstone; FUTURE for
 * a version dated beyond the drift window (either clock: a start far
 * ahead would outrank every honest later version); then NOT_NEWER or
 * UPDATED against what is held; a peer not held is LIMITED when its
 * source's allowance is spent, FULL when the catalog is and the entry
 * does not come from the peer itself (whether that may evict anyone is
 * mk__node_upsert's to say), else NEW. */
mk__upsert mk__node_judge(const mk_node *node, const mk_id *network,
                          const mk_peer_id *peer, int64_t start_ms,
                          int64_t update_ms, const mk__origin *o)
{
    const mk_peer_id *via = o ? o->via : NULL;
    const mk__tombstone *t;
    if (!mk_id_eq(network, &node->network) || mk_id_eq(peer, &node->key.pub) ||
        update_ms < mk_now_ms() - (int64_t)node->dc.purge_after_ms)
        return MK__UPSERT_REFUSED;
    if (mk__node_future(node, start_ms) || mk__node_future(node, update_ms))
        return MK__UPSERT_FUTURE;
    if ((t = tomb_of(node, peer)) &&
        version_cmp(start_ms, update_ms, t->start_ms, t->update_ms) <= 0)
        return MK__UPSERT_REFUSED;
    const mk__peer *p = mk__node_find(node, peer);
    if (p)
        return version_cmp(start_ms, update_ms, p->entry.start_ms,
                           p->entry.update_ms) <= 0
                   ? MK__UPSERT_NOT_NEWER
                   : MK__UPSERT_UPDATED;
    bool direct = via && mk_id_eq(via, peer);
    if (via && !direct && !source_allows(node, via))
        return MK__UPSERT_LIMITED;
    if (!direct && catalog_full(node, 0))
        return MK__UPSERT_FULL;
    return MK__UPSERT_NEW;
}

/* Removes the peer at `at`. Its entry moves to `keep` when not NULL
 * (the caller frees it), else it is freed. */
static void remove_at(mk_node *node, size_t at, mk_peer_entry *keep)
{
    node->catalog_bytes -= node->peers[at].entry.wire_len;
    if (keep)
        *keep = node->peers[at].entry;
    else
        mk_entry_free(&node->peers[at].entry);
    memmove(node->peers + at, node->peers + at + 1,
            (node->n_peers - at - 1) * sizeof *node->peers);
    node->n_peers--;
}

static bool is_protected(const mk_node *node, const mk__peer *p)
{
    if (mk__node_is_verified(node, p))
        return true;
    for (size_t i = 0; i < node->n_nbrs; i++)
        if (mk_id_eq(&node->nbrs[i].peer, &p->entry.peer))
            return true;
    for (size_t i = 0; i < node->n_boots; i++)
        if (mk_id_eq(&node->boots[i].peer, &p->entry.peer))
            return true;
    return false;
}

/* Evicted entries wait here until the entry that displaced them is
 * stored, and are announced as departed after. */
typedef struct victims {
    mk_peer_entry *v;
    size_t n;
} victims;

/* Whether `p` may be evicted: never a protected peer nor `keep`; with
 * `suspects_only`, only a peer that failed to answer an exchange of ours
 * or that lists no address (nobody can reach it to check). */
static bool evictable(const mk_node *node, const mk__peer *p,
                      const mk_peer_id *keep, bool suspects_only)
{
    if (is_protected(node, p) || mk_id_eq(&p->entry.peer, keep))
        return false;
    return !suspects_only || p->failures > 0 || p->entry.n_addrs == 0;
}

/* Makes room for `need_slot` (a new peer) and `delta` more bytes by
 * evicting unverified peers that are no neighbour or bootstrap peer
 * (evictable): those that failed to answer first, then the most recently
 * added (a flood is the newest thing in a catalog; what was there before
 * it stays). False, evicting nothing, when even every evictable peer
 * would not make enough room. */
static bool make_room(mk_node *node, const mk_peer_id *keep, bool need_slot,
                      int64_t delta, bool suspects_only, victims *out)
{
    size_t n_evictable = 0, evictable_bytes = 0;
    for (size_t i = 0; i < node->n_peers; i++) {
        const mk__peer *p = &node->peers[i];
        if (evictable(node, p, keep, suspects_only)) {
            n_evictable++;
            evictable_bytes += p->entry.wire_len;
        }
    }
    if ((need_slot && node->n_peers - n_evictable >= node->dc.max_peers) ||
        (int64_t)(node->catalog_bytes - evictable_bytes) + delta >
            (int64_t)node->dc.max_catalog_bytes)
        return false;
    while ((need_slot && node->n_peers >= node->dc.max_peers) ||
           (int64_t)node->catalog_bytes + delta >
               (int64_t)node->dc.max_catalog_bytes) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < node->n_peers; i++) {
            const mk__peer *p = &node->peers[i];
            if (!evictable(node, p, keep, suspects_only))
                continue;
            const mk__peer *b = best == SIZE_MAX ? NULL : &node->peers[best];
            if (!b || p->failures > b->failures ||
                (p->failures == b->failures && p->added_seq > b->added_seq))
                best = i;
        }
        if (best == SIZE_MAX)
            return false; /* cannot happen after the count above */
        mk_peer_entry *grown =
            realloc(out->v, (out->n + 1) * sizeof *out->v);
        if (!grown)
            return false;
        out->v = grown;
        remove_at(node, best, &out->v[out->n++]);
        node->stats.evicted++;
    }
    return true;
}

static void announce_victims(mk_node *node, victims *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        emit(node, MK_PEER_DEPARTED, &vs->v[i]);
        mk_entry_free(&vs->v[i]);
    }
    free(vs->v);
    vs->v = NULL;
    vs->n = 0;
}

mk__upsert mk__node_upsert(mk_node *node, mk_peer_entry *e,
                           const mk__origin *o)
{
    mk_link *from = o ? o->from : NULL;
    const mk_peer_id *via = o ? o->via : NULL;
    bool direct = via && mk_id_eq(via, &e->peer);
    bool reached = direct && o->reached;
    victims vs = {0};
    mk__upsert res = mk__node_judge(node, &e->network, &e->peer, e->start_ms,
                                    e->update_ms, o);
    if (reached)
        mk__node_verified(node, &e->peer); /* held: whatever the version */
    if (mk__upsert_refused(res))
        mk__node_count_refusal(node, res);
    if (res != MK__UPSERT_NEW && res != MK__UPSERT_UPDATED)
        goto done;

    int found;
    size_t at = find_at(node, &e->peer, &found);
    int64_t delta =
        (int64_t)e->wire_len - (found ? (int64_t)node->peers[at].entry.wire_len
                                      : 0);
    if ((!found && node->n_peers >= node->dc.max_peers) ||
        (int64_t)node->catalog_bytes + delta >
            (int64_t)node->dc.max_catalog_bytes) {
        /* A peer verifying itself now, or a new version of a peer
         * verified before, may displace any unprotected peer; a peer that
         * dialled us and spoke for itself (it holds the key, which costs
         * nothing to make) only peers nobody could reach; an entry merely
         * passed on, nobody. */
        bool any =
            reached || (found && mk__node_is_verified(node, &node->peers[at]));
        if (!(any || direct) ||
            !make_room(node, &e->peer, !found, delta, !any, &vs)) {
            res = MK__UPSERT_FULL;
            mk__node_count_refusal(node, res);
            goto done;
        }
        at = find_at(node, &e->peer, &found);
    }
    int64_t now = mk_mono_ms();
    if (found) {
        mk__peer *p = &node->peers[at];
        node->catalog_bytes -= p->entry.wire_len;
        mk_entry_free(&p->entry);
        p->entry = *e;
        res = MK__UPSERT_UPDATED;
    } else {
        if (node->n_peers == node->cap_peers) {
            size_t cap = node->cap_peers ? 2 * node->cap_peers : 16;
            mk__peer *grown = realloc(node->peers, cap * sizeof *grown);
            if (!grown) {
                res = MK__UPSERT_REFUSED;
                goto done;
            }
            node->peers = grown;
            node->cap_peers = cap;
        }
        memmove(node->peers + at + 1, node->peers + at,
                (node->n_peers - at) * sizeof *node->peers);
        node->n_peers++;
        mk__peer *p = &node->peers[at];
        memset(p, 0, sizeof *p);
        p->entry = *e;
        p->srtt_us = p->rttvar_us = -1;
        p->added_seq = ++node->added_seq;
        if (reached)
            p->verified_mono = now;
        else if (via && !direct)
            source_take(node, via);
        /* Probe RTT soon after first contact, then at the jittered
         * interval. Not at once: the first-contact exchange usually
         * brings a sample first, and then the probe is skipped
         * (discovery.c, mk__discovery_tick). */
        p->next_ping_mono = now + 1000 + (int64_t)(mk__node_rand(node) % 2000);
        res = MK__UPSERT_NEW;
    }
    mk__peer *p = &node->peers[at];
    node->catalog_bytes += p->entry.wire_len;
    p->changed_mono = now;
    p->has_via = via != NULL;
    if (via)
        p->via = *via;
    /* Stored: the caller's struct is now ours. */
    memset(e, 0, sizeof *e);
    mk_peer_id id = p->entry.peer;
    node->stats.entries++;
    emit(node, res == MK__UPSERT_NEW ? MK_PEER_DISCOVERED : MK_PEER_UPDATED,
         &p->entry);
    /* A watcher may have fed more entries; look the peer up again. */
    p = mk__node_find(node, &id);
    /* No catalog exchange on first contact any more: that was one TLS
     * handshake and two whole catalogs per pair of nodes, N² in all.
     * A new peer reaches everyone by this flood over the neighbour
     * links, and what a flood missed, the digests repair (discovery.c).
     * A repair of an old version is old news everywhere else and goes no
     * further; one of a version signed within MK__NEWS_MS is news the
     * flood missed on its way here, likely missed around here too (a
     * crowd starting together: links come up after the flood passed),
     * so it floods on from here. Either way a node forwards a version
     * at most once: the first time it stores it. */
    if (p && node->started && !node->closing &&
        (!(o && o->quiet) ||
         mk_now_ms() - p->entry.update_ms < MK__NEWS_MS)) {
        mk__discovery_gossip(node, &p->entry, from);
        if (res == MK__UPSERT_NEW)
            mk__discovery_wake(node); /* a neighbour candidate, maybe */
    }
    if (res == MK__UPSERT_NEW) {
        node->grown_mono = now; /* anti-entropy paces up (discovery.c) */
    }
    announce_victims(node, &vs);
    return res;
done:
    mk_entry_free(e);
    announce_victims(node, &vs);
    return res;
}

/* Tombstones live for purge_after; this many at most, so a flood of
 * validly signed departures from throwaway keys cannot grow them without
 * bound (the oldest goes first). */
#define MAX_TOMBSTONES 1024

/* Records that `peer` departed at version (start, update), with the
 * signed departure when there is one; replaces an older tombstone of the
 * same peer. */
static void add_tomb(mk_node *node, const mk_peer_id *peer, int64_t start_ms,
                     int64_t update_ms, const mk_departure *d)
{
    int64_t mono = mk_mono_ms();
    size_t kept = 0;
    for (size_t i = 0; i < node->n_tombs; i++)
        if (node->tombs[i].expires_mono > mono &&
            !mk_id_eq(&node->tombs[i].peer, peer))
            node->tombs[kept++] = node->tombs[i];
    node->n_tombs = kept;
    if (node->n_tombs == MAX_TOMBSTONES) {
        size_t oldest = 0;
        for (size_t i = 1; i < node->n_tombs; i++)
            if (node->tombs[i].expires_mono < node->tombs[oldest].expires_mono)
                oldest = i;
        node->tombs[oldest] = node->tombs[--node->n_tombs];
    }
    mk__tombstone *grown =
        realloc(node->tombs, (node->n_tombs + 1) * sizeof *grown);
    if (!grown)
        return; /* only loses replay protection for this peer */
    node->tombs = grown;
    mk__tombstone *t = &grown[node->n_tombs++];
    memset(t, 0, sizeof *t);
    t->peer = *peer;
    t->start_ms = start_ms;
    t->update_ms = update_ms;
    t->expires_mono = mono + node->dc.purge_after_ms;
    if (d) {
        t->has_dep = true;
        t->dep = *d;
    }
}

/* Removes the peer at `at`, then tells the watchers with its last entry. */
static void remove_and_emit(mk_node *node, size_t at)
{
    mk_peer_entry last;
    /* The entry outlives its slot for the event. */
    remove_at(node, at, &last);
    mk_peer_id id = last.peer;
    mk__discovery_drop_neighbour(node, &id);
    emit(node, MK_PEER_DEPARTED, &last);
    mk_entry_free(&last);
}

bool mk__node_take_departure(mk_node *node, const mk_departure *d,
                             mk_link *from)
{
    /* Its own clock within the drift window, as gossip; and the version
     * it departs not ahead of it, or the tombstone would refuse every
     * honest version of the peer until it expired. */
    int64_t off = mk_now_ms() - d->at_ms;
    if (off < 0)
        off = -off;
    if (mk__node_future(node, d->start_ms) ||
        mk__node_future(node, d->update_ms) ||
        mk__node_future(node, d->at_ms)) {
        node->stats.refused_future++;
        return false;
    }
    if (off > (int64_t)node->dc.max_time_drift_ms) {
        node->stats.refused_drift++;
        return false;
    }
    const mk__tombstone *t = tomb_of(node, &d->peer);
    if (t) {
        int c = version_cmp(t->start_ms, t->update_ms, d->start_ms,
                            d->update_ms);
        /* Seen (the flood stops here), or older than a departure already
         * recorded. At the same version without the message (dropped on
         * a GRACEFUL_SHUTDOWN close) it is still news: keep it for
         * replay and pass it on. */
        if (c > 0 || (c == 0 && t->has_dep))
            return false;
    }
    int found;
    size_t at = find_at(node, &d->peer, &found);
    if (found && version_cmp(d->start_ms, d->update_ms,
                             node->peers[at].entry.start_ms,
                             node->peers[at].entry.update_ms) < 0)
        return false; /* departs an older incarnation than the one we know */
    add_tomb(node, &d->peer, d->start_ms, d->update_ms, d);
    if (found)
        remove_and_emit(node, at);
    if (node->started && !node->closing)
        mk__discovery_forward_departure(node, d, from);
    return true;
}

void mk__node_drop_peer(mk_node *node, const mk_peer_id *id,
                        int64_t incarnation)
{
    int found;
    size_t at = find_at(node, id, &found);
    if (!found)
        return;
    const mk_peer_entry *e = &node->peers[at].entry;
    if (incarnation >= 0) {
        if (e->start_ms != incarnation)
            return; /* it has restarted since: the new one is not leaving */
        add_tomb(node, id, e->start_ms, e->update_ms, NULL);
    }
    remove_and_emit(node, at);
}

void mk__node_rtt_sample(mk_node *node, const mk_peer_id *id, int64_t us)
{
    mk__peer *p = mk__node_find(node, id);
    if (!p || us < 0)
        return;
    p->rtt_at_mono = mk_mono_ms();
    mk_metric_observe(node->rtt, (double)us / 1e6);
    if (p->srtt_us < 0) {
        p->srtt_us = us;
        p->rttvar_us = us / 2;
    } else {
        int64_t diff = p->srtt_us > us ? p->srtt_us - us : us - p->srtt_us;
        p->rttvar_us = (3 * p->rttvar_us + diff) / 4;
        p->srtt_us = (7 * p->srtt_us + us) / 8;
    }
}

static size_t strings_bytes(char *const *v, size_t n)
{
    size_t b = n * sizeof *v;
    for (size_t i = 0; i < n; i++)
        b += strlen(v[i]) + 1;
    return b;
}

size_t mk__node_catalog_memory(const mk_node *node)
{
    size_t b = node->cap_peers * sizeof *node->peers;
    for (size_t i = 0; i < node->n_peers; i++) {
        const mk_peer_entry *e = &node->peers[i].entry;
        b += e->wire_len + strings_bytes(e->addrs, e->n_addrs) +
             strings_bytes(e->tags, e->n_tags) +
             (e->n_streams + e->n_groups) * sizeof(mk_id) +
             e->n_tickets * sizeof *e->tickets;
        for (size_t t = 0; t < e->n_tickets; t++)
            b += e->tickets[t].len + 1;
    }
    return b;
}

size_t mk_node_peer_count(const mk_node *node)
{
    return node->n_peers;
}

static void info_of(const mk__peer *p, mk_peer_info *out)
{
    out->entry = &p->entry;
    out->rtt_us = p->srtt_us;
    out->age_ms = mk_now_ms() - p->entry.update_ms;
}

bool mk_node_peer(const mk_node *node, const mk_peer_id *peer,
                  mk_peer_info *out)
{
    const mk__peer *p = mk__node_find(node, peer);
    if (!p)
        return false;
    info_of(p, out);
    return true;
}

void mk_node_peers_foreach(const mk_node *node,
                           bool (*fn)(const mk_peer_info *p, void *data),
                           void *data)
{
    for (size_t i = 0; i < node->n_peers; i++) {
        mk_peer_info info;
        info_of(&node->peers[i], &info);
        if (!fn(&info, data))
            return;
    }
}

int mk_node_watch_add(mk_node *node, mk_peer_event_cb cb, void *data,
                      mk_node_watch **out)
{
    mk_node_watch *w = calloc(1, sizeof *w);
    if (!w)
        return MK_ENOMEM;
    w->node = node;
    w->cb = cb;
    w->data = data;
    /* Appended, so watchers see events in registration order. */
    mk_node_watch **pp = &node->watches;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
    if (out)
        *out = w;
    return 0;
}

void mk_node_unwatch(mk_node_watch *w)
{
    if (!w)
        return;
    mk_node *node = w->node;
    w->removed = true;
    if (node->dispatching)
        return; /* freed after the dispatch loop */
    for (mk_node_watch **pp = &node->watches; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            free(w);
            return;
        }
}

int mk_node_feed(mk_node *node, const uint8_t *wire, size_t len)
{
    mk_peer_entry e;
    int rc = mk_entry_decode(&e, wire, len);
    if (rc == MK_EMSGSIZE)
        node->stats.refused_oversize++;
    if (rc < 0)
        return rc;
    if (!mk_id_eq(&e.network, &node->network)) {
        mk_entry_free(&e);
        return MK_EWRONG_NETWORK;
    }
    switch (mk__node_upsert(node, &e, NULL)) {
    case MK__UPSERT_NEW:
    case MK__UPSERT_UPDATED:
        return 1;
    case MK__UPSERT_NOT_NEWER:
        return 0;
    case MK__UPSERT_FULL:
    case MK__UPSERT_LIMITED:
        return MK_EFULL;
    default:
        return MK_ESTALE;
    }
}

void mk_node_discovery_stats(const mk_node *node, mk_discovery_stats *out)
{
    *out = node->stats;
    out->peers = node->n_peers;
    out->catalog_bytes = node->catalog_bytes;
}

/* ---- purging, called from the discovery tick ---------------------------- */

void mk__node_purge(mk_node *node)
{
    int64_t cutoff = mk_now_ms() - (int64_t)node->dc.purge_after_ms;
    int64_t mono = mk_mono_ms();
    size_t kept = 0;
    for (size_t i = 0; i < node->n_tombs; i++)
        if (node->tombs[i].expires_mono > mono)
            node->tombs[kept++] = node->tombs[i];
    if (kept == 0 && node->n_tombs > 0) {
        free(node->tombs);
        node->tombs = NULL;
    }
    node->n_tombs = kept;
    for (size_t i = 0; i < node->n_peers;) {
        if (node->peers[i].entry.update_ms >= cutoff) {
            i++;
            continue;
        }
        mk_peer_id id = node->peers[i].entry.peer;
        mk__node_drop_peer(node, &id, -1);
    }
}

/* ---- closing ------------------------------------------------------------ */

static void on_timer_closed(uv_handle_t *h)
{
    mk_node *node = h->data;
    if (--node->pending_closes > 0)
        return;
    void (*cb)(void *) = node->close_cb;
    void *data = node->close_data;
    for (size_t i = 0; i < node->n_peers; i++)
        mk_entry_free(&node->peers[i].entry);
    free(node->peers);
    free(node->sources);
    free(node->tombs);
    free(node->nbrs);
    free(node->boots);
    for (mk_node_watch *w = node->watches, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    mk_entry_free(&node->self);
    mk_metrics_free(node->metrics);
    free(node);
    if (cb)
        cb(data);
}

static void on_transport_closed(void *data)
{
    mk_node *node = data;
    node->pending_closes = 3;
    uv_close((uv_handle_t *)&node->announce_timer, on_timer_closed);
    uv_close((uv_handle_t *)&node->tick_timer, on_timer_closed);
    uv_close((uv_handle_t *)&node->close_timer, on_timer_closed);
}

static void on_departure_window(uv_timer_t *t)
{
    mk_node *node = t->data;
    mk_transport_close(node->transport, on_transport_closed, node);
}

int mk_node_set_extension(mk_node *node, const void *key, void *value,
                          void (*release)(void *value))
{
    if (node->closing)
        return MK_ECLOSED;
    if (mk_node_extension(node, key))
        return MK_EEXIST;
    struct mk__ext *grown =
        realloc(node->exts, (node->n_exts + 1) * sizeof *grown);
    if (!grown)
        return MK_ENOMEM;
    node->exts = grown;
    node->exts[node->n_exts++] = (struct mk__ext){key, value, release};
    return 0;
}

void mk_node_remove_extension(mk_node *node, const void *key)
{
    for (size_t i = 0; i < node->n_exts; i++)
        if (node->exts[i].key == key) {
            /* Kept in order: they are released last-set first. */
            memmove(&node->exts[i], &node->exts[i + 1],
                    (node->n_exts - i - 1) * sizeof *node->exts);
            node->n_exts--;
            return;
        }
}

void *mk_node_extension(const mk_node *node, const void *key)
{
    for (size_t i = 0; i < node->n_exts; i++)
        if (node->exts[i].key == key)
            return node->exts[i].value;
    return NULL;
}

void mk_node_close(mk_node *node, mk_close_cb cb, void *data)
{
    if (node->closing)
        return;
    node->closing = true;
    /* Layers above let go first, while links still work. */
    for (size_t i = node->n_exts; i-- > 0;)
        if (node->exts[i].release)
            node->exts[i].release(node->exts[i].value);
    free(node->exts);
    node->exts = NULL;
    node->n_exts = 0;
    node->close_cb = cb;
    node->close_data = data;
    uv_timer_stop(&node->announce_timer);
    uv_timer_stop(&node->tick_timer);
    uint64_t wait = 0;
    if (node->started && mk__discovery_depart(node) > 0)
        wait = node->dc.departure_window_ms;
    uv_timer_start(&node->close_timer, on_departure_window, wait, 0);
}
