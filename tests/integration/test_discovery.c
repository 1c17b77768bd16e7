/* Discovery across real processes (mosaik.md §11.1, the ★ tests), plus
 * the attacks a catalog must shrug off. Every node is a coalitiond on
 * loopback; what a node knows is read from its DATA/peers.json. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "mosaik/clock.h"
#include "mosaik/codec.h"
#include "mosaik/entry.h"
#include "mosaik/error.h"
#include "mosaik/transport.h"
#include "proc.h"

static char tmp[512];

static int setup(void **state)
{
    return daemon_tmpdir(tmp, sizeof tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    daemon_rmtree(tmp);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The daemon's catalog as it last wrote it (NULL before the first). */
static json_t *catalog(const daemon_proc *d)
{
    char path[600];
    snprintf(path, sizeof path, "%s/peers.json", d->data);
    return json_load_file(path, 0, NULL);
}

static json_t *find_peer(json_t *cat, const char *peer_id)
{
    json_t *peers = json_object_get(cat, "peers"), *p;
    size_t i;
    json_array_foreach(peers, i, p) {
        if (strcmp(json_string_value(json_object_get(p, "peer_id")),
                   peer_id) == 0)
            return p;
    }
    return NULL;
}

static size_t count_peers(const daemon_proc *d)
{
    json_t *c = catalog(d);
    size_t n = c ? json_array_size(json_object_get(c, "peers")) : 0;
    json_decref(c);
    return n;
}

static bool knows(const daemon_proc *d, const char *peer_id)
{
    json_t *c = catalog(d);
    bool k = c && find_peer(c, peer_id);
    json_decref(c);
    return k;
}

static void start_all(daemon_proc *d, int n, const char *const *extra)
{
    char boot[200];
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        assert_int_equal(daemon_prepare(&d[i], tmp, name), 0);
        const char *args[16] = {"--announce-interval", "2s", NULL};
        int k = 2;
        if (i > 0) {
            args[k++] = "--bootstrap";
            args[k++] = daemon_bootstrap(&d[0], boot, sizeof boot);
        }
        for (int j = 0; extra && extra[j]; j++)
            args[k++] = extra[j];
        args[k] = NULL;
        if (daemon_start(&d[i], args) != 0)
            fail_msg("daemon %s did not start", name);
    }
}

static void stop_all(daemon_proc *d, int n)
{
    for (int i = 0; i < n; i++)
        daemon_kill(&d[i]);
}

/* ★ eleven nodes bootstrapping off one converge within 10 s. */
static void eleven_converge_within_10s(void **state)
{
    enum { N = 11 };
    daemon_proc d[N];
    start_all(d, N, NULL);
    int64_t t0 = mk_mono_ms(), deadline = t0 + (int64_t)(10000 * time_factor());
    bool all = false;
    while (!all && mk_mono_ms() < deadline) {
        all = true;
        for (int i = 0; i < N && all; i++)
            all = count_peers(&d[i]) == N - 1;
        if (!all)
            sleep_ms(100);
    }
    if (!all) {
        for (int i = 0; i < N; i++)
            fprintf(stderr, "%s knows %zu\n", d[i].name, count_peers(&d[i]));
        daemon_dump_log(&d[N - 1]);
        stop_all(d, N);
        fail_msg("catalogs did not converge");
    }
    print_message("converged in %lld ms\n", (long long)(mk_mono_ms() - t0));

    /* ★ a departure is seen by all within 15 s. */
    char gone[65];
    strcpy(gone, d[5].peer_id);
    /* Exiting waits for every link's close handshake: a loaded (or
     * sanitized) run needs the same scaling as the other waits. */
    int exit_wait = (int)(5000 * time_factor());
    assert_int_equal(daemon_signal_wait(&d[5], SIGTERM, exit_wait), 0);
    deadline = mk_mono_ms() + (int64_t)(15000 * time_factor());
    bool seen = false;
    while (!seen && mk_mono_ms() < deadline) {
        seen = true;
        for (int i = 0; i < N && seen; i++)
            if (i != 5)
                seen = !knows(&d[i], gone);
        if (!seen)
            sleep_ms(100);
    }
    if (!seen)
        for (int i = 0; i < N; i++)
            if (i != 5 && knows(&d[i], gone)) {
                fprintf(stderr, "%s still knows the departed node\n",
                        d[i].name);
                daemon_dump_log(&d[i]);
            }
    stop_all(d, N);
    assert_true(seen);
}

/* ★ tags propagate, and a tag added later reaches everyone too (through
 * a restart with the tag: the newer start wins). */
static void tags_propagate(void **state)
{
    daemon_proc d[3];
    const char *extra[] = {"--tag", "oracle", "--tag", "eu-west", NULL};
    start_all(d, 2, NULL);
    char boot[200];
    assert_int_equal(daemon_prepare(&d[2], tmp, "tagged"), 0);
    const char *args[] = {"--bootstrap", daemon_bootstrap(&d[0], boot, 200),
                          extra[0], extra[1], extra[2], extra[3], NULL};
    assert_int_equal(daemon_start(&d[2], args), 0);
    int64_t deadline = mk_mono_ms() + (int64_t)(10000 * time_factor());
    bool ok = false;
    while (!ok && mk_mono_ms() < deadline) {
        json_t *c = catalog(&d[1]);
        json_t *p = c ? find_peer(c, d[2].peer_id) : NULL;
        json_t *tags = p ? json_object_get(p, "tags") : NULL;
        ok = tags && json_array_size(tags) == 2 &&
             strcmp(json_string_value(json_array_get(tags, 0)), "eu-west") ==
                 0 &&
             strcmp(json_string_value(json_array_get(tags, 1)), "oracle") == 0;
        json_decref(c);
        if (!ok)
            sleep_ms(100);
    }
    stop_all(d, 3);
    assert_true(ok);
}

/* A node of another network never appears, on either side. */
static void other_network_never_appears(void **state)
{
    daemon_proc d[3];
    start_all(d, 2, NULL);
    char boot[200];
    assert_int_equal(daemon_prepare(&d[2], tmp, "alien"), 0);
    const char *args[] = {"--bootstrap", daemon_bootstrap(&d[0], boot, 200),
                          "--network", "some.other.network", NULL};
    assert_int_equal(daemon_start(&d[2], args), 0);
    sleep_ms((int)(3000 * time_factor()));
    bool leaked = knows(&d[0], d[2].peer_id) || knows(&d[1], d[2].peer_id) ||
                  count_peers(&d[2]) > 0;
    stop_all(d, 3);
    assert_false(leaked);
}

/* ---- attacks from an in-process client ---------------------------------- */

typedef struct attacker {
    uv_loop_t loop;
    mk_transport *t;
    mk_keypair key;
    mk_link *link;
    int status;
    uint32_t closed_code;
    bool closed;
    uint8_t *last; /* the last frame received */
    size_t last_len;
    mk_peer_id watch; /* count the valid departures of this peer */
    int departures;
} attacker;

static void on_frame_keep(mk_link *l, const uint8_t *f, size_t n, void *d)
{
    attacker *a = d;
    free(a->last);
    a->last = malloc(n ? n : 1);
    memcpy(a->last, f, n);
    a->last_len = n;
    mk_reader r;
    mk_reader_init(&r, f, n);
    if (mk_get_u8(&r) != 3 /* departure */)
        return;
    size_t len;
    const uint8_t *w = mk_get_bytes(&r, &len, MK_DEPARTURE_WIRE_LEN);
    mk_departure dep;
    if (w && mk_departure_decode(&dep, w, len) == 0 &&
        mk_id_eq(&dep.peer, &a->watch))
        a->departures++;
}

static void on_attacker_close(mk_link *l, uint32_t code, int status, void *d)
{
    attacker *a = d;
    a->closed = true;
    a->closed_code = code;
    a->link = NULL;
}

static void on_attacker_connected(mk_link *link, int status, void *data)
{
    attacker *a = data;
    a->status = status;
    a->link = link;
    if (link)
        mk_link_set_callbacks(link, on_frame_keep, on_attacker_close, a);
}

static void run_for(attacker *a, int ms)
{
    int64_t until = mk_mono_ms() + ms;
    while (mk_mono_ms() < until)
        uv_run(&a->loop, UV_RUN_NOWAIT), sleep_ms(5);
}

static void attacker_dial(attacker *a, const daemon_proc *d, const char *alpn)
{
    mk_peer_id peer;
    assert_int_equal(mk_id_from_hex(&peer, d->peer_id, 64), 0);
    a->status = 1;
    a->closed = false;
    assert_int_equal(mk_transport_connect(a->t, &peer, d->listen, alpn,
                                          on_attacker_connected, a),
                     0);
    int64_t until = mk_mono_ms() + 5000;
    while (a->status == 1 && mk_mono_ms() < until)
        uv_run(&a->loop, UV_RUN_ONCE);
    assert_int_equal(a->status, 0);
}

static void send_entry_frame(attacker *a, uint8_t kind, const mk_id *net,
                             const mk_peer_entry *e)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, kind);
    if (net)
        mk_put_id(&b, net);
    mk_put_bytes(&b, e->wire, e->wire_len);
    assert_int_equal(mk_link_send(a->link, b.data, b.len), 0);
    mk_buf_free(&b);
}

static void attacker_init(attacker *a)
{
    memset(a, 0, sizeof *a);
    uv_loop_init(&a->loop);
    mk_keypair_generate(&a->key);
    mk_transport_config tc = {.loop = &a->loop, .key = &a->key};
    assert_int_equal(mk_transport_new(&tc, &a->t, NULL), 0);
}

/* Runs both clients' loops until `done` holds or `ms` pass. */
static void run_pair(attacker *a, attacker *b, int ms,
                     bool (*done)(attacker *, attacker *))
{
    int64_t until = mk_mono_ms() + ms;
    while (mk_mono_ms() < until && !(done && done(a, b))) {
        uv_run(&a->loop, UV_RUN_NOWAIT);
        uv_run(&b->loop, UV_RUN_NOWAIT);
        sleep_ms(5);
    }
}

/* Joins `d`'s announce overlay as a neighbour: dial, then our hello. */
static void attacker_join(attacker *a, const daemon_proc *d,
                          const mk_peer_entry *me)
{
    attacker_dial(a, d, "/mosaik/discovery/announce/1.0");
    send_entry_frame(a, 1 /* hello */, &MK_UNIVERSE, me);
}

static void send_departure_frame(attacker *a, const mk_departure *dep)
{
    uint8_t w[MK_DEPARTURE_WIRE_LEN];
    mk_departure_encode(dep, w);
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, 3 /* departure */);
    mk_put_bytes(&b, w, sizeof w);
    assert_int_equal(mk_link_send(a->link, b.data, b.len), 0);
    mk_buf_free(&b);
}

static void attacker_done(attacker *a)
{
    free(a->last);
    mk_transport_close(a->t, NULL, NULL);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_loop_close(&a->loop);
}

/* A forged entry (claims a victim's PeerId, signed by someone else) and
 * a replayed older version of the victim's real entry are both ignored. */
static void forged_and_replayed_entries_are_ignored(void **state)
{
    daemon_proc d[2];
    start_all(d, 2, NULL);
    int64_t deadline = mk_mono_ms() + (int64_t)(10000 * time_factor());
    while (!knows(&d[0], d[1].peer_id) && mk_mono_ms() < deadline)
        sleep_ms(100);
    assert_true(knows(&d[0], d[1].peer_id));

    attacker a;
    attacker_init(&a);
    attacker_dial(&a, &d[0], "/mosaik/discovery/announce/1.0");

    /* Our own, valid hello first so the neighbour link is accepted. */
    mk_peer_entry me;
    mk_entry_init(&me, &MK_UNIVERSE, &a.key.pub, mk_now_ms());
    assert_int_equal(mk_entry_sign(&me, &a.key), 0);
    send_entry_frame(&a, 1 /* hello */, &MK_UNIVERSE, &me);

    /* Forgery: the victim's id and a tag it never had, signed by us —
     * the signature cannot verify under the victim's key. */
    mk_peer_id victim;
    mk_id_from_hex(&victim, d[1].peer_id, 64);
    mk_peer_entry forged;
    mk_entry_init(&forged, &MK_UNIVERSE, &a.key.pub, mk_now_ms() + 1000);
    mk_entry_add_tag(&forged, "forged");
    assert_int_equal(mk_entry_sign(&forged, &a.key), 0);
    /* Rewrite the peer field in the signed bytes (offset 1 + 32). */
    memcpy(forged.wire + 33, victim.b, 32);
    send_entry_frame(&a, 2 /* entry */, NULL, &forged);
    run_for(&a, 500);

    json_t *c = catalog(&d[0]);
    json_t *p = find_peer(c, d[1].peer_id);
    assert_non_null(p);
    assert_int_equal(json_array_size(json_object_get(p, "tags")), 0);
    json_decref(c);
    assert_false(a.closed && a.closed_code == 0);

    /* Replay: record the victim's current entry (through a catalog sync
     * of our own), wait until it has re-announced a newer version (every
     * ~2 s here), then replay the recording: d0 must keep the newer one. */
    free(a.last);
    a.last = NULL;
    attacker_dial(&a, &d[0], "/mosaik/discovery/sync/1.0");
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, 4 /* snapshot */);
    mk_put_id(&b, &MK_UNIVERSE);
    mk_put_varint(&b, 1);
    mk_put_bytes(&b, me.wire, me.wire_len);
    assert_int_equal(mk_link_send(a.link, b.data, b.len), 0);
    mk_buf_free(&b);
    int64_t until = mk_mono_ms() + 5000;
    while (!a.last && mk_mono_ms() < until)
        uv_run(&a.loop, UV_RUN_ONCE);
    assert_non_null(a.last);
    mk_reader r;
    mk_reader_init(&r, a.last, a.last_len);
    assert_int_equal(mk_get_u8(&r), 4);
    mk_id net;
    mk_get_id(&r, &net);
    size_t n = mk_get_count(&r, 1000, 64);
    mk_peer_entry recorded = {0};
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *w = mk_get_bytes(&r, &len, 1 << 20);
        mk_peer_entry e;
        assert_int_equal(mk_entry_decode(&e, w, len), 0);
        if (mk_id_eq(&e.peer, &victim))
            recorded = e;
        else
            mk_entry_free(&e);
    }
    assert_non_null(recorded.wire);
    mk_link_close(a.link, 200, NULL);
    run_for(&a, 100);

    int64_t newer = 0;
    until = mk_mono_ms() + (int64_t)(10000 * time_factor());
    while (mk_mono_ms() < until) {
        json_t *cat = catalog(&d[0]);
        json_t *vp = cat ? find_peer(cat, d[1].peer_id) : NULL;
        newer = vp ? json_integer_value(json_object_get(vp, "update_ms")) : 0;
        json_decref(cat);
        if (newer > recorded.update_ms)
            break;
        sleep_ms(200);
    }
    assert_true(newer > recorded.update_ms);

    attacker_dial(&a, &d[0], "/mosaik/discovery/announce/1.0");
    send_entry_frame(&a, 1 /* hello */, &MK_UNIVERSE, &me);
    send_entry_frame(&a, 2 /* entry */, NULL, &recorded);
    run_for(&a, 1000);
    json_t *cat = catalog(&d[0]);
    json_t *vp = find_peer(cat, d[1].peer_id);
    assert_non_null(vp);
    assert_true(json_integer_value(json_object_get(vp, "update_ms")) >= newer);
    json_decref(cat);

    mk_entry_free(&recorded);
    mk_entry_free(&me);
    mk_entry_free(&forged);
    attacker_done(&a);
    stop_all(d, 2);
}

/* Regression (the eleven-node flake): a departure floods the overlay
 * once, and a node whose neighbour links came up after the flood passed
 * (typically the last node to join, still forming its links) never heard
 * of it and kept the peer until purge_after. A neighbour that joins after
 * a departure must be told of it. */
static void departure_reaches_a_late_neighbour(void **state)
{
    enum { N = 3 };
    daemon_proc d[N];
    start_all(d, N, NULL);
    int64_t deadline = mk_mono_ms() + (int64_t)(10000 * time_factor());
    bool all = false;
    while (!all && mk_mono_ms() < deadline) {
        all = true;
        for (int i = 0; i < N && all; i++)
            all = count_peers(&d[i]) == N - 1;
        if (!all)
            sleep_ms(100);
    }
    assert_true(all);
    /* Exiting waits for every link's close handshake: a loaded (or
     * sanitized) run needs the same scaling as the other waits. */
    int exit_wait = (int)(5000 * time_factor());
    assert_int_equal(daemon_signal_wait(&d[2], SIGTERM, exit_wait), 0);
    deadline = mk_mono_ms() + (int64_t)(15000 * time_factor());
    while (knows(&d[0], d[2].peer_id) && mk_mono_ms() < deadline)
        sleep_ms(100);
    assert_false(knows(&d[0], d[2].peer_id));

    /* Now a new neighbour comes up at d0: it must hear of d2's departure
     * without having been there for the flood. */
    attacker a;
    attacker_init(&a);
    mk_id_from_hex(&a.watch, d[2].peer_id, 64);
    mk_peer_entry me;
    mk_entry_init(&me, &MK_UNIVERSE, &a.key.pub, mk_now_ms());
    assert_int_equal(mk_entry_sign(&me, &a.key), 0);
    attacker_join(&a, &d[0], &me);
    int64_t until = mk_mono_ms() + (int64_t)(2000 * time_factor());
    while (a.departures == 0 && mk_mono_ms() < until) {
        uv_run(&a.loop, UV_RUN_NOWAIT);
        sleep_ms(5);
    }
    int seen = a.departures;
    mk_entry_free(&me);
    attacker_done(&a);
    stop_all(d, N);
    assert_int_equal(seen, 1);
}

static bool b_heard(attacker *a, attacker *b)
{
    return b->departures > 0;
}

/* A relay passes on a departure it has not seen even when it never knew
 * the peer (a node that is still joining may hold the entry elsewhere),
 * only once, never back to the sender, and the tombstone keeps the
 * departed version out of its catalog afterwards. */
static void unknown_departure_is_relayed_once_and_tombstoned(void **state)
{
    daemon_proc d[1];
    start_all(d, 1, NULL);
    attacker a, b;
    attacker_init(&a);
    attacker_init(&b);
    mk_peer_entry ea, eb;
    mk_entry_init(&ea, &MK_UNIVERSE, &a.key.pub, mk_now_ms());
    mk_entry_init(&eb, &MK_UNIVERSE, &b.key.pub, mk_now_ms());
    assert_int_equal(mk_entry_sign(&ea, &a.key), 0);
    assert_int_equal(mk_entry_sign(&eb, &b.key), 0);
    attacker_join(&a, &d[0], &ea);
    attacker_join(&b, &d[0], &eb);
    /* Both hellos processed: d0 lists both clients. */
    int64_t until = mk_mono_ms() + (int64_t)(5000 * time_factor());
    char ha[65], hb[65];
    mk_id_hex(&a.key.pub, ha);
    mk_id_hex(&b.key.pub, hb);
    while (!(knows(&d[0], ha) && knows(&d[0], hb)) && mk_mono_ms() < until)
        run_pair(&a, &b, 50, NULL);
    assert_true(knows(&d[0], ha) && knows(&d[0], hb));

    /* z: a peer d0 has never heard of, departing. */
    mk_keypair zk;
    mk_keypair_generate(&zk);
    mk_peer_entry ez;
    mk_entry_init(&ez, &MK_UNIVERSE, &zk.pub, mk_now_ms());
    assert_int_equal(mk_entry_sign(&ez, &zk), 0);
    mk_departure dz;
    mk_departure_make(&dz, &ez, &zk, mk_now_ms());
    a.watch = b.watch = zk.pub;
    send_departure_frame(&a, &dz);
    send_departure_frame(&a, &dz); /* a duplicate must not travel on */
    run_pair(&a, &b, (int)(2000 * time_factor()), b_heard);
    run_pair(&a, &b, 300, NULL); /* room for a wrong second copy */
    int to_b = b.departures, to_a = a.departures;

    /* The departed version cannot come back through gossip. */
    send_entry_frame(&a, 2 /* entry */, NULL, &ez);
    run_pair(&a, &b, 1000, NULL);
    char hz[65];
    mk_id_hex(&zk.pub, hz);
    bool resurrected = knows(&d[0], hz);

    mk_entry_free(&ea);
    mk_entry_free(&eb);
    mk_entry_free(&ez);
    attacker_done(&a);
    attacker_done(&b);
    stop_all(d, 1);
    assert_int_equal(to_b, 1);
    assert_int_equal(to_a, 0);
    assert_false(resurrected);
}

/* A neighbour link closed by the peer itself with GRACEFUL_SHUTDOWN (its
 * transport closing after its departure) drops that peer even when the
 * departure never arrived; an ordinary close (SUCCESS) does not, and a
 * newer version of the peer is welcome again afterwards. */
static void graceful_shutdown_close_drops_the_peer(void **state)
{
    daemon_proc d[1];
    start_all(d, 1, NULL);
    attacker a;
    attacker_init(&a);
    char ha[65];
    mk_id_hex(&a.key.pub, ha);
    mk_peer_entry me;
    mk_entry_init(&me, &MK_UNIVERSE, &a.key.pub, mk_now_ms());
    assert_int_equal(mk_entry_sign(&me, &a.key), 0);

    attacker_join(&a, &d[0], &me);
    int64_t until = mk_mono_ms() + (int64_t)(5000 * time_factor());
    while (!knows(&d[0], ha) && mk_mono_ms() < until)
        run_for(&a, 50);
    assert_true(knows(&d[0], ha));
    mk_link_close(a.link, MK_CLOSE_SUCCESS, NULL);
    run_for(&a, (int)(1000 * time_factor()));
    bool kept_after_success = knows(&d[0], ha);

    attacker_join(&a, &d[0], &me);
    run_for(&a, 300); /* the hello is read before the close */
    mk_link_close(a.link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
    until = mk_mono_ms() + (int64_t)(5000 * time_factor());
    while (knows(&d[0], ha) && mk_mono_ms() < until)
        run_for(&a, 50);
    bool dropped = !knows(&d[0], ha);

    /* A later version (a re-announcement) is welcome again: the
     * tombstone covers only what the closed incarnation had published. */
    mk_entry_bump(&me, mk_now_ms());
    assert_int_equal(mk_entry_sign(&me, &a.key), 0);
    attacker_join(&a, &d[0], &me);
    until = mk_mono_ms() + (int64_t)(5000 * time_factor());
    while (!knows(&d[0], ha) && mk_mono_ms() < until)
        run_for(&a, 50);
    bool back = knows(&d[0], ha);

    mk_entry_free(&me);
    attacker_done(&a);
    stop_all(d, 1);
    assert_true(kept_after_success);
    assert_true(dropped);
    assert_true(back);
}

/* Garbage and oversized frames from a raw TCP client are refused and the
 * node keeps serving: a `coalition net peers` afterwards still works. */
static void raw_garbage_is_refused_node_stays_healthy(void **state)
{
    daemon_proc d[1];
    start_all(d, 1, NULL);
    const char *colon = strrchr(d[0].listen, ':');
    int port = atoi(colon + 1);
    for (int round = 0; round < 3; round++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        uint8_t junk[4096];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)(rand() & 0xff);
        if (round == 1)
            memcpy(junk, "\x7f\xff\xff\xff", 4); /* a huge length */
        (void)!write(fd, junk, sizeof junk);
        /* The node must close on us within its handshake timeout. */
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t r;
        char buf[256];
        while ((r = read(fd, buf, sizeof buf)) > 0)
            ;
        assert_true(r == 0 || r < 0);
        close(fd);
    }
    char exe[1024], boot[200];
    char *argv[] = {(char *)build_path("coalition", exe, sizeof exe), "net",
                    "peers", "--bootstrap",
                    (char *)daemon_bootstrap(&d[0], boot, sizeof boot),
                    "--wait", "1", "--timeout", "10s", "--json", NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    if (r.status != 0) {
        daemon_dump_log(&d[0]);
        fail_msg("net peers failed after garbage: %d %s", r.status, r.err);
    }
    assert_non_null(strstr(r.out, d[0].peer_id));
    proc_result_free(&r);
    stop_all(d, 1);
}

/* Dialing with the wrong expected PeerId fails: net peers times out. */
static void wrong_expected_peer_times_out(void **state)
{
    daemon_proc d[1];
    start_all(d, 1, NULL);
    char exe[1024], boot[200];
    snprintf(boot, sizeof boot, "%064d@%s", 7, d[0].listen);
    char *argv[] = {(char *)build_path("coalition", exe, sizeof exe), "net",
                    "peers", "--bootstrap", boot, "--timeout", "2s", NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    stop_all(d, 1);
    assert_int_equal(r.status, 3);
    proc_result_free(&r);
}

/* Key files with loose permissions are refused; the node never starts. */
static void loose_key_permissions_refused(void **state)
{
    daemon_proc d;
    assert_int_equal(daemon_prepare(&d, tmp, "loose"), 0);
    assert_int_equal(chmod(d.key, 0644), 0);
    char exe[1024];
    char *argv[] = {(char *)build_path("coalitiond", exe, sizeof exe),
                    "--listen", "127.0.0.1:0", "--key", d.key, "--data",
                    d.data, NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "readable by group or others"));
    proc_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(loose_key_permissions_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eleven_converge_within_10s, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(departure_reaches_a_late_neighbour,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            unknown_departure_is_relayed_once_and_tombstoned, setup, teardown),
        cmocka_unit_test_setup_teardown(graceful_shutdown_close_drops_the_peer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(tags_propagate, setup, teardown),
        cmocka_unit_test_setup_teardown(other_network_never_appears, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(forged_and_replayed_entries_are_ignored,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            raw_garbage_is_refused_node_stays_healthy, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_expected_peer_times_out, setup,
                                        teardown),
    };
    /* TEST_FILTER="eleven*" runs matching tests only (for loops that chase
     * a flake). */
    const char *filter = getenv("TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
