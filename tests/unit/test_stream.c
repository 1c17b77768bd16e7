/* Streams (reference/mosaik.md §11.3-§11.4, the ★ tests): real nodes with
 * real TLS links on 127.0.0.1, all on one uv loop in this process, finding
 * each other by discovery (bootstrapping off the first node, with short
 * announce timers). One test forks a producer process.
 *
 * No assertion is about speed. Waits are deadlines scaled by TIME_FACTOR
 * (3 under the sanitizers) that fail a test which stops making progress;
 * "nothing happens" checks run the loop for a fixed, scaled quiet period.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/jwt.h"
#include "mosaik/node.h"
#include "mosaik/stream.h"
#include "mosaik/ticket.h"
#include "mosaik/stream_internal.h"
#include "testutil.h"

#define MAXN 12
#define MAXH 32

/* ---- fixture ---------------------------------------------------------------- */

typedef struct fx {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps UV_RUN_ONCE returning while we poll state */
    double tf;
    mk_id net;
    mk_keypair keys[MAXN];
    mk_node *nodes[MAXN];
    mk_streams *streams[MAXN];
    int n;
    mk_producer *prods[MAXH];
    mk_consumer *cons[MAXH];
    int closed; /* close callbacks seen */
} fx;

static double time_factor(void)
{
    const char *s = getenv("TIME_FACTOR");
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

#define WAIT(f, cond, ms)                                                     \
    do {                                                                      \
        int64_t dl_ = mk_mono_ms() + (int64_t)((ms) * (f)->tf);               \
        while (!(cond)) {                                                     \
            if (mk_mono_ms() > dl_)                                           \
                fail_msg("%s:%d: timed out waiting for %s", __FILE__,         \
                         __LINE__, #cond);                                    \
            uv_run(&(f)->loop, UV_RUN_ONCE);                                  \
        }                                                                     \
    } while (0)

/* Runs the loop for a quiet period. */
static void nap(fx *f, int ms)
{
    int64_t until = mk_mono_ms() + (int64_t)(ms * f->tf);
    while (mk_mono_ms() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void on_closed(void *data)
{
    ((fx *)data)->closed++;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    f->tf = time_factor();
    uint8_t rnd[16];
    mk_keypair k;
    mk_keypair_generate(&k);
    memcpy(rnd, k.pub.b, sizeof rnd);
    mk_id_hash(&f->net, rnd, sizeof rnd); /* a fresh network per test */
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 5, 5);
    *state = f;
    return 0;
}

static void close_producer(fx *f, mk_producer *p)
{
    for (int i = 0; i < MAXH; i++)
        if (f->prods[i] == p)
            f->prods[i] = NULL;
    int want = f->closed + 1;
    mk_producer_close(p, on_closed, f);
    WAIT(f, f->closed >= want, 10000);
}

static void close_consumer(fx *f, mk_consumer *c)
{
    for (int i = 0; i < MAXH; i++)
        if (f->cons[i] == c)
            f->cons[i] = NULL;
    int want = f->closed + 1;
    mk_consumer_close(c, on_closed, f);
    WAIT(f, f->closed >= want, 10000);
}

/* Closes node i (its producers and consumers must be closed already) and
 * its streams service, in the documented order. */
static void close_node(fx *f, int i)
{
    int want = f->closed + 1;
    mk_node_close(f->nodes[i], on_closed, f);
    WAIT(f, f->closed >= want, 10000);
    want = f->closed + 1;
    mk_streams_close(f->streams[i], on_closed, f);
    WAIT(f, f->closed >= want, 10000);
    f->nodes[i] = NULL;
    f->streams[i] = NULL;
}

static int teardown(void **state)
{
    fx *f = *state;
    int want = f->closed;
    for (int i = 0; i < MAXH; i++) {
        if (f->cons[i]) {
            mk_consumer_close(f->cons[i], on_closed, f);
            want++;
        }
        if (f->prods[i]) {
            mk_producer_close(f->prods[i], on_closed, f);
            want++;
        }
    }
    int64_t dl = mk_mono_ms() + 20000;
    while (f->closed < want && mk_mono_ms() < dl)
        uv_run(&f->loop, UV_RUN_ONCE);
    want = f->closed;
    for (int i = 0; i < f->n; i++)
        if (f->nodes[i]) {
            mk_node_close(f->nodes[i], on_closed, f);
            want++;
        }
    while (f->closed < want && mk_mono_ms() < dl)
        uv_run(&f->loop, UV_RUN_ONCE);
    want = f->closed;
    for (int i = 0; i < f->n; i++)
        if (f->streams[i]) {
            mk_streams_close(f->streams[i], on_closed, f);
            want++;
        }
    while (f->closed < want && mk_mono_ms() < dl)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    /* Every handle was closed: nothing the streams made outlived them. */
    int rc = uv_loop_close(&f->loop);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Node i, listening on loopback, bootstrapping off node `boot` (or none). */
static int add_node_key(fx *f, const mk_keypair *key, const char *const *tags,
                        size_t n_tags, int boot, bool start)
{
    int i = f->n++;
    assert_true(i < MAXN);
    f->keys[i] = *key;
    char bootstr[256], hex[MK_ID_HEX_LEN + 1], err[MK_ERRMSG_SIZE];
    const char *boots[1] = {bootstr};
    mk_node_config cfg = {
        .loop = &f->loop,
        .key = &f->keys[i],
        .network = &f->net,
        .listen = "127.0.0.1:0",
        .tags = tags,
        .n_tags = n_tags,
        .discovery = {.announce_interval_ms = 500},
    };
    if (boot >= 0) {
        snprintf(bootstr, sizeof bootstr, "%s@%s",
                 mk_id_hex(mk_node_id(f->nodes[boot]), hex),
                 mk_node_addr(f->nodes[boot]));
        cfg.bootstrap = boots;
        cfg.n_bootstrap = 1;
    }
    int rc = mk_node_new(&cfg, &f->nodes[i], err);
    if (rc != 0)
        fail_msg("mk_node_new: %s (%s)", mk_strerror(rc), err);
    assert_int_equal(mk_streams_new(f->nodes[i], &f->streams[i]), 0);
    if (start)
        assert_int_equal(mk_node_start(f->nodes[i]), 0);
    return i;
}

static int add_node(fx *f, const char *const *tags, size_t n_tags, int boot)
{
    mk_keypair k;
    assert_int_equal(mk_keypair_generate(&k), 0);
    return add_node_key(f, &k, tags, n_tags, boot, true);
}

/* Whether node i's catalog knows node j with an entry listing `stream`
 * (or just knows it, when stream is NULL). */
static bool knows(fx *f, int i, int j, const mk_id *stream)
{
    mk_peer_info info;
    if (!mk_node_peer(f->nodes[i], mk_node_id(f->nodes[j]), &info))
        return false;
    return !stream || mk_entry_has_stream(info.entry, stream);
}

/* ---- producers as the tests see them ------------------------------------------ */

typedef struct tx {
    fx *f;
    mk_producer *p;
    int subs, unsubs;
    uint32_t last_code;
    mk_peer_id last_peer;
    int writable;
} tx;

static void tx_on_sub(mk_producer *p, const mk_peer_id *consumer,
                      bool subscribed, uint32_t code, void *data)
{
    tx *t = data;
    if (subscribed) {
        t->subs++;
    } else {
        t->unsubs++;
        t->last_code = code;
    }
    t->last_peer = *consumer;
}

static void tx_on_writable(mk_producer *p, void *data)
{
    ((tx *)data)->writable++;
}

static void track_producer(fx *f, mk_producer *p)
{
    for (int i = 0; i < MAXH; i++)
        if (!f->prods[i]) {
            f->prods[i] = p;
            return;
        }
    fail_msg("too many producers");
}

static void track_consumer(fx *f, mk_consumer *c)
{
    for (int i = 0; i < MAXH; i++)
        if (!f->cons[i]) {
            f->cons[i] = c;
            return;
        }
    fail_msg("too many consumers");
}

/* Opens a producer of `stream` on node `node`; `cfg` may carry options
 * (its stream and callbacks are overwritten). */
static void tx_open(fx *f, tx *t, int node, const mk_id *stream,
                    mk_producer_config *cfg)
{
    mk_producer_config def = {0};
    if (!cfg)
        cfg = &def;
    memset(t, 0, sizeof *t);
    t->f = f;
    cfg->stream = *stream;
    cfg->on_subscription = tx_on_sub;
    cfg->on_writable = tx_on_writable;
    cfg->data = t;
    char err[MK_ERRMSG_SIZE];
    int rc = mk_producer_open(f->streams[node], cfg, &t->p, err);
    if (rc != 0)
        fail_msg("mk_producer_open: %s (%s)", mk_strerror(rc), err);
    track_producer(f, t->p);
}

/* ---- consumers as the tests see them ------------------------------------------- */

typedef struct rx {
    fx *f;
    mk_consumer *c;
    int items;
    uint64_t bytes;
    uint32_t next_seq; /* datums carry a big-endian sequence number */
    int out_of_order;
    bool check_seq;
    bool refuse; /* answer MK_EAGAIN */
    int refused;
    int connects, disconnects;
    uint32_t last_code;
    char last_str[64]; /* typed (string) consumers */
} rx;

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int rx_on_datum(mk_consumer *c, const mk_datum *d, void *data)
{
    rx *r = data;
    if (r->refuse) {
        r->refused++;
        return MK_EAGAIN;
    }
    if (r->check_seq) {
        if (d->len < 4 || get_be32(d->bytes) != r->next_seq)
            r->out_of_order++;
        r->next_seq = d->len >= 4 ? get_be32(d->bytes) + 1 : r->next_seq;
    }
    if (d->value)
        snprintf(r->last_str, sizeof r->last_str, "%s",
                 *(char *const *)d->value);
    r->items++;
    r->bytes += d->len;
    return 0;
}

static void rx_on_producer(mk_consumer *c, const mk_peer_id *producer,
                           bool connected, uint32_t code, void *data)
{
    rx *r = data;
    if (connected) {
        r->connects++;
    } else {
        r->disconnects++;
        r->last_code = code;
    }
}

/* Short backoff so retries happen within a test's time. */
static const mk_backoff_config quick = {
    .initial_ms = 100, .max_interval_ms = 500, .max_elapsed_ms = 60000};

static void rx_open(fx *f, rx *r, int node, const mk_id *stream,
                    mk_consumer_config *cfg)
{
    mk_consumer_config def = {0};
    if (!cfg)
        cfg = &def;
    memset(r, 0, sizeof *r);
    r->f = f;
    cfg->stream = *stream;
    cfg->on_datum = rx_on_datum;
    cfg->on_producer = rx_on_producer;
    cfg->data = r;
    if (!cfg->backoff.initial_ms)
        cfg->backoff = quick;
    char err[MK_ERRMSG_SIZE];
    int rc = mk_consumer_open(f->streams[node], cfg, &r->c, err);
    if (rc != 0)
        fail_msg("mk_consumer_open: %s (%s)", mk_strerror(rc), err);
    track_consumer(f, r->c);
}

static int send_seq(mk_producer *p, uint32_t seq, size_t len)
{
    uint8_t buf[256];
    assert_true(len >= 4 && len <= sizeof buf);
    memset(buf, (int)seq, len);
    put_be32(buf, seq);
    return mk_producer_send_bytes(p, buf, len);
}

/* A require predicate: the peer carries the tag in `data`. */
static bool has_tag(const mk_peer_info *peer, void *data)
{
    return mk_entry_has_tag(peer->entry, data);
}

/* ---- the wire messages ----------------------------------------------------------- */

static void wire_round_trip_and_strictness(void **state)
{
    (void)state;
    mk_id net, stream, n2, s2;
    mk_id_from_str(&net, "net");
    mk_stream_id_from_str(&stream, "s");
    mk_buf b;
    mk_buf_init(&b);
    assert_int_equal(mk__stream_handshake_encode(&b, &net, &stream,
                                                 (const uint8_t *)"ab", 2),
                     0);
    mk__stream_hello h;
    assert_int_equal(mk__stream_handshake_decode(b.data, b.len, &h), 0);
    assert_true(mk_id_eq(&h.network, &net) && mk_id_eq(&h.stream, &stream));
    assert_int_equal(h.criteria_len, 2);
    assert_memory_equal(h.criteria, "ab", 2);
    /* Truncated, extended, or of the other kind: refused. */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(mk__stream_handshake_decode(b.data, n, &h),
                         MK_EDECODE);
    mk_put_u8(&b, 0);
    assert_int_equal(mk__stream_handshake_decode(b.data, b.len, &h),
                     MK_EDECODE);
    assert_int_equal(mk__stream_start_decode(b.data, 65, &n2, &s2),
                     MK_EDECODE);
    mk_buf_reset(&b);
    uint8_t big[MK_STREAM_CRITERIA_MAX + 1] = {0};
    assert_int_equal(mk__stream_handshake_encode(&b, &net, &stream, big,
                                                 sizeof big),
                     MK_EINVAL);
    mk_buf_reset(&b);
    mk__stream_start_encode(&b, &net, &stream);
    assert_int_equal(b.len, 65);
    assert_int_equal(mk__stream_start_decode(b.data, b.len, &n2, &s2), 0);
    assert_true(mk_id_eq(&n2, &net) && mk_id_eq(&s2, &stream));
    assert_int_equal(mk__stream_start_decode(b.data, b.len - 1, &n2, &s2),
                     MK_EDECODE);
    mk_buf_free(&b);

    /* derive(root, surface) is how the coalition names its surfaces. */
    mk_id root, a, want;
    mk_id_from_str(&root, "my-network");
    mk_stream_id(&root, "sub-identifier", &a);
    mk_id_derive_str(&want, &root, "sub-identifier");
    assert_true(mk_id_eq(&a, &want));
    assert_id_hex(&a, "6cc668ea945234753ba9147fc0fc7b82de35f2193dadf7d29d61b1"
                      "90c7cecd59");
    uint8_t raw[32];
    memset(raw, 7, sizeof raw);
    mk_stream_id_from_raw(&a, raw);
    assert_memory_equal(a.b, raw, 32);

    /* The string codec is postcard's String: "test" is 5 bytes. */
    mk_buf_init(&b);
    const char *s = "test";
    assert_int_equal(mk_datum_codec_string.encode(&s, &b), 0);
    assert_int_equal(b.len, 5);
    char *out = NULL;
    assert_int_equal(mk_datum_codec_string.decode(b.data, b.len, &out), 0);
    assert_string_equal(out, "test");
    mk_datum_codec_string.clear(&out);
    assert_int_equal(mk_datum_codec_string.decode(b.data, 4, &out),
                     MK_EDECODE);
    mk_buf_free(&b);
}

/* The fuzzer's corpus (seeds and any crash it ever found) replayed through
 * the decoders: each input is refused or decodes to what re-encodes to it. */
static void replay_fuzz_corpus(void **state)
{
    (void)state;
    const char *src = getenv("SOURCE_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/stream", src ? src : "..");
    DIR *d = opendir(dir);
    if (!d)
        skip();
    int files = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        static uint8_t buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        files++;
        mk_buf b;
        mk_buf_init(&b);
        mk__stream_hello h;
        int rc = mk__stream_handshake_decode(buf, n, &h);
        if (rc == 0) {
            assert_int_equal(mk__stream_handshake_encode(
                                 &b, &h.network, &h.stream, h.criteria,
                                 h.criteria_len),
                             0);
            assert_int_equal(b.len, n);
            assert_memory_equal(b.data, buf, n);
        } else {
            assert_int_equal(rc, MK_EDECODE);
        }
        mk_id net, stream;
        rc = mk__stream_start_decode(buf, n, &net, &stream);
        assert_true(rc == 0 || rc == MK_EDECODE);
        char *str = NULL;
        rc = mk_datum_codec_string.decode(buf, n, &str);
        assert_true(rc == 0 || rc == MK_EDECODE);
        if (rc == 0)
            mk_datum_codec_string.clear(&str);
        mk_buf_free(&b);
    }
    closedir(d);
    assert_true(files > 0);
}

/* ---- ★ late producer, late consumer ------------------------------------------------ */

static void late_producer_and_late_consumer(void **state)
{
    fx *f = *state;
    int n0 = add_node(f, NULL, 0, -1);
    int n1 = add_node(f, NULL, 0, n0);
    int n2 = add_node(f, NULL, 0, n0);
    mk_id s1, s2;
    mk_stream_id_from_str(&s1, "late-consumer");
    mk_stream_id_from_str(&s2, "late-producer");

    /* s1: the producer exists and is known before the consumer opens. */
    tx p1;
    tx_open(f, &p1, n0, &s1, NULL);
    assert_false(mk_producer_is_online(p1.p));
    assert_int_equal(send_seq(p1.p, 0, 8), MK_EOFFLINE);
    WAIT(f, knows(f, n1, n0, &s1), 5000);
    rx c1;
    rx_open(f, &c1, n1, &s1, NULL);
    c1.check_seq = true;
    /* s2: the consumer waits for a producer that does not exist yet. */
    rx c2;
    rx_open(f, &c2, n1, &s2, NULL);
    c2.check_seq = true;
    assert_true(mk_consumer_is_online(c2.c)); /* default: at once */
    nap(f, 200);
    assert_int_equal(mk_consumer_producers(c2.c), 0);
    tx p2;
    tx_open(f, &p2, n2, &s2, NULL);

    WAIT(f, mk_producer_is_online(p1.p) && mk_producer_is_online(p2.p),
         5000);
    for (uint32_t i = 0; i < 50; i++) {
        assert_int_equal(send_seq(p1.p, i, 16), 1);
        assert_int_equal(send_seq(p2.p, i, 16), 1);
    }
    WAIT(f, c1.items == 50 && c2.items == 50, 5000);
    assert_int_equal(c1.out_of_order + c2.out_of_order, 0);
    assert_int_equal(c1.connects, 1);
    assert_int_equal(c2.connects, 1);
    /* Streams do not cross: each consumer has one producer. */
    assert_int_equal(mk_consumer_producers(c1.c), 1);
    assert_int_equal(mk_consumer_producers(c2.c), 1);

    /* A second producer of the same stream on the same node is refused. */
    mk_producer *dup;
    mk_producer_config cfg = {.stream = s1};
    assert_int_equal(mk_producer_open(f->streams[n0], &cfg, &dup, NULL),
                     MK_EEXIST);
}

/* ---- ★ fan-out: every consumer gets everything, in order; exact stats ------------- */

static void fan_out_and_stats(void **state)
{
    fx *f = *state;
    enum { C = 5, N = 200 };
    int n0 = add_node(f, NULL, 0, -1);
    int nc[C];
    for (int i = 0; i < C; i++)
        nc[i] = add_node(f, NULL, 0, n0);
    mk_id s;
    mk_stream_id_from_str(&s, "fan-out");
    mk_producer_config pc = {.codec = &mk_datum_codec_string};
    tx p;
    tx_open(f, &p, n0, &s, &pc);
    rx r[C];
    mk_consumer_config cc = {.codec = &mk_datum_codec_string};
    for (int i = 0; i < C - 1; i++) {
        mk_consumer_config c = cc;
        rx_open(f, &r[i], nc[i], &s, &c);
    }
    const mk_stream_cond four = {.min = C - 1};
    WAIT(f, mk_producer_is_met(p.p, &four), 8000);

    /* Datums "d0".."d199": postcard strings, 1 length byte + text. */
    uint64_t want_bytes = 0;
    for (int i = 0; i < N; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "d%d", i);
        const char *v = buf;
        assert_int_equal(mk_producer_send(p.p, &v), C - 1);
        want_bytes += 1 + strlen(buf);
    }
    WAIT(f, r[0].items == N && r[1].items == N && r[2].items == N &&
                r[3].items == N,
         8000);
    for (int i = 0; i < C - 1; i++) {
        assert_string_equal(r[i].last_str, "d199");
        mk_stream_stats st;
        mk_consumer_stats(r[i].c, &st);
        assert_int_equal(st.items, N);
        assert_int_equal(st.bytes, want_bytes);
        mk_stream_channel ch[2];
        assert_int_equal(mk_consumer_channels(r[i].c, ch, 2), 1);
        assert_int_equal(ch[0].state, MK_CHANNEL_CONNECTED);
        assert_true(mk_id_eq(&ch[0].peer, mk_node_id(f->nodes[n0])));
        assert_int_equal(ch[0].stats.items, N);
        assert_int_equal(ch[0].stats.bytes, want_bytes);
    }
    mk_stream_stats agg;
    mk_producer_stats(p.p, &agg);
    assert_int_equal(agg.items, (uint64_t)N * (C - 1));
    assert_int_equal(agg.bytes, want_bytes * (C - 1));
    assert_int_equal(agg.dropped, 0);

    /* A consumer that joins later starts its counters at zero and sees
     * only what is sent after it subscribed (no history). */
    mk_consumer_config c = cc;
    rx_open(f, &r[C - 1], nc[C - 1], &s, &c);
    const mk_stream_cond five = {.min = C};
    WAIT(f, mk_producer_is_met(p.p, &five), 8000);
    const char *v = "test";
    assert_int_equal(mk_producer_send(p.p, &v), C);
    WAIT(f, r[C - 1].items == 1 && r[0].items == N + 1, 5000);
    mk_stream_channel chans[C];
    assert_int_equal(mk_producer_channels(p.p, chans, C), C);
    for (int i = 0; i < C; i++) {
        bool late = mk_id_eq(&chans[i].peer, mk_node_id(f->nodes[nc[C - 1]]));
        assert_int_equal(chans[i].stats.items, late ? 1 : N + 1);
        assert_int_equal(chans[i].stats.bytes,
                         late ? 5 : want_bytes + 5); /* "test" = 5 */
        assert_int_equal(chans[i].stats.dropped, 0);
    }
    assert_string_equal(r[C - 1].last_str, "test");
}

/* ---- ★ a slow consumer is cut with TOO_SLOW; the others never stall -------------- */

static void slow_consumer_is_cut(void **state)
{
    fx *f = *state;
    enum { ITEM = 16384, WINDOW = 24, MAXSEND = 20000 };
    int n0 = add_node(f, NULL, 0, -1);
    int n1 = add_node(f, NULL, 0, n0);
    int n2 = add_node(f, NULL, 0, n0);
    int n3 = add_node(f, NULL, 0, n0);
    mk_id s;
    mk_stream_id_from_str(&s, "slow");
    /* A small ring so the cut comes after ~the kernel's socket buffers. */
    mk_producer_config pc = {.buffer_size = 64};
    tx p;
    tx_open(f, &p, n0, &s, &pc);
    rx fast[2], slow;
    rx_open(f, &fast[0], n1, &s, NULL);
    rx_open(f, &fast[1], n2, &s, NULL);
    rx_open(f, &slow, n3, &s, NULL);
    fast[0].check_seq = fast[1].check_seq = true;
    slow.refuse = true; /* takes nothing: its links get paused */
    const mk_stream_cond three = {.min = 3};
    WAIT(f, mk_producer_is_met(p.p, &three), 8000);
    const mk_peer_id *slow_id = mk_node_id(f->nodes[n3]);

    uint8_t *buf = calloc(1, ITEM);
    assert_non_null(buf);
    uint32_t sent = 0;
    int64_t dl = mk_mono_ms() + (int64_t)(30000 * f->tf);
    /* Send as fast as the fast consumers read (never faster than they
     * can, so only the paused one can fall behind). */
    while (p.unsubs == 0) {
        if (sent >= MAXSEND || mk_mono_ms() > dl)
            fail_msg("the paused consumer was never cut (sent %u)", sent);
        int least = fast[0].items < fast[1].items ? fast[0].items
                                                  : fast[1].items;
        if ((int)sent - least < WINDOW) {
            put_be32(buf, sent);
            int rc = mk_producer_send_bytes(p.p, buf, ITEM);
            assert_true(rc >= 2);
            sent++;
            continue;
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    free(buf);
    assert_int_equal(p.last_code, MK_CLOSE_STREAM_TOO_SLOW);
    assert_true(mk_id_eq(&p.last_peer, slow_id));
    assert_int_equal(mk_producer_subscribers(p.p), 2);
    /* The fast ones got everything, in order, nothing dropped. */
    WAIT(f, fast[0].items == (int)sent && fast[1].items == (int)sent, 10000);
    assert_int_equal(fast[0].out_of_order + fast[1].out_of_order, 0);
    mk_stream_channel ch[3];
    assert_int_equal(mk_producer_channels(p.p, ch, 3), 2);
    assert_int_equal(ch[0].stats.dropped + ch[1].stats.dropped, 0);
    assert_int_equal(ch[0].stats.items, sent);
    mk_stream_stats agg;
    mk_producer_stats(p.p, &agg);
    assert_true(agg.dropped >= 1);
    assert_true(slow.refused >= 1);

    /* Once it reads again it finds the cut, which is recoverable: it
     * reconnects and is fed again. */
    slow.refuse = false;
    mk_consumer_resume(slow.c);
    WAIT(f, slow.disconnects == 1, 10000);
    assert_int_equal(slow.last_code, MK_CLOSE_STREAM_TOO_SLOW);
    WAIT(f, mk_producer_subscribers(p.p) == 3, 10000);
    int before = slow.items;
    assert_int_equal(send_seq(p.p, 1u << 30, 8), 3);
    WAIT(f, slow.items == before + 1, 5000);
}

/* Nobody can take more: MK_EFULL without cutting anyone, and on_writable
 * once the backlog drains. */
static void full_sink_and_writable(void **state)
{
    fx *f = *state;
    int n0 = add_node(f, NULL, 0, -1);
    int n1 = add_node(f, NULL, 0, n0);
    mk_id s;
    mk_stream_id_from_str(&s, "full");
    mk_producer_config pc = {.buffer_size = 8, .lagging_drop_only = true};
    tx p;
    tx_open(f, &p, n0, &s, &pc);
    rx r;
    rx_open(f, &r, n1, &s, NULL);
    r.refuse = true;
    WAIT(f, mk_producer_is_online(p.p), 8000);
    static uint8_t big[60000];
    int rc = 0;
    int64_t dl = mk_mono_ms() + (int64_t)(20000 * f->tf);
    uint32_t n = 0;
    while ((rc = mk_producer_send_bytes(p.p, big, sizeof big)) != MK_EFULL) {
        assert_int_equal(rc, 1);
        n++;
        /* Let the socket fill up until the ring does. */
        if (n % 8 == 0)
            uv_run(&f->loop, UV_RUN_NOWAIT);
        if (mk_mono_ms() > dl)
            fail_msg("never full");
    }
    assert_int_equal(mk_producer_backlog(p.p), 8);
    assert_int_equal(mk_producer_subscribers(p.p), 1);
    mk_stream_stats agg;
    mk_producer_stats(p.p, &agg);
    assert_int_equal(agg.dropped, 0);
    r.refuse = false;
    mk_consumer_resume(r.c);
    WAIT(f, p.writable >= 1, 10000);
    assert_true(mk_producer_backlog(p.p) <= 2);
    WAIT(f, r.items == (int)n, 10000);
}

typedef struct edge {
    int up, down;
} edge;

static void on_edge(bool met, void *data)
{
    edge *e = data;
    if (met)
        e->up++;
    else
        e->down++;
}

/* ---- ★ max_consumers --------------------------------------------------------------- */

static void max_consumers(void **state)
{
    fx *f = *state;
    enum { C = 7 };
    int n0 = add_node(f, NULL, 0, -1);
    int nc[C];
    for (int i = 0; i < C; i++)
        nc[i] = add_node(f, NULL, 0, n0);
    mk_id s;
    mk_stream_id_from_str(&s, "capacity");
    mk_producer_config pc = {.max_consumers = 3};
    tx p;
    tx_open(f, &p, n0, &s, &pc);
    rx r[C];
    for (int i = 0; i < C; i++)
        rx_open(f, &r[i], nc[i], &s, NULL);
    WAIT(f, mk_producer_subscribers(p.p) == 3, 8000);
    nap(f, 300); /* let the three StartStreams arrive */
    /* Refused consumers keep retrying; still three. */
    nap(f, 1500);
    assert_int_equal(mk_producer_subscribers(p.p), 3);
    int connected = 0, subscribed_at = -1;
    for (int i = 0; i < C; i++)
        if (mk_consumer_producers(r[i].c) == 1) {
            connected++;
            subscribed_at = i;
        }
    assert_int_equal(connected, 3);
    mk_stream_channel ch;
    for (int i = 0; i < C; i++)
        if (mk_consumer_producers(r[i].c) == 0) {
            assert_int_equal(mk_consumer_channels(r[i].c, &ch, 1), 1);
            assert_int_equal(ch.last_code, MK_CLOSE_STREAM_NO_CAPACITY);
        }

    /* One subscriber leaves: its slot goes to a waiting consumer. */
    bool was[C];
    for (int i = 0; i < C; i++)
        was[i] = mk_consumer_producers(r[i].c) == 1;
    const mk_stream_cond unmet = {.min = 3, .unmet = true};
    edge e = {0};
    assert_int_equal(mk_producer_when(p.p, &unmet, on_edge, &e, NULL), 0);
    close_consumer(f, r[subscribed_at].c);
    WAIT(f, e.up == 1, 5000);
    WAIT(f, mk_producer_subscribers(p.p) == 3, 8000);
    assert_int_equal(e.down, 1);
    /* The producer counts a subscriber as soon as it answers; the
     * consumer once the answer arrives. */
    int originals = 0, total = 0;
    int64_t dl = mk_mono_ms() + (int64_t)(5000 * f->tf);
    while (total != 3) {
        if (mk_mono_ms() > dl)
            fail_msg("consumers connected: %d", total);
        uv_run(&f->loop, UV_RUN_ONCE);
        originals = total = 0;
        for (int i = 0; i < C; i++) {
            if (i == subscribed_at)
                continue;
            if (mk_consumer_producers(r[i].c) == 1) {
                total++;
                originals += was[i];
            }
        }
    }
    assert_int_equal(originals, 2);
}

/* ---- ★ online_when and the when() conditions --------------------------------------- */

static bool entry_is_trusted(const mk_peer_entry *e, void *data)
{
    (void)data;
    return mk_entry_has_tag(e, "trusted");
}

static void online_when_and_conditions(void **state)
{
    fx *f = *state;
    const char *t2[] = {"tag2"};
    const char *t12[] = {"tag1", "tag2"};
    int n0 = add_node(f, NULL, 0, -1);
    int plain = add_node(f, NULL, 0, n0);
    int tagged1 = add_node(f, t2, 1, n0);
    int tagged2 = add_node(f, t2, 1, n0);
    mk_id s, st, sd;
    mk_stream_id_from_str(&s, "min-two");
    mk_stream_id_from_str(&st, "tagged-two");
    mk_stream_id_from_str(&sd, "default");

    const mk_stream_cond two = {.min = 2};
    const mk_stream_cond two_tagged = {.min = 2, .tags = t2, .n_tags = 1};
    mk_producer_config pc = {.online_when = &two};
    tx p;
    tx_open(f, &p, n0, &s, &pc);
    mk_producer_config pct = {.online_when = &two_tagged};
    tx pt;
    tx_open(f, &pt, n0, &st, &pct);
    tx pd;
    tx_open(f, &pd, n0, &sd, NULL);

    /* Edge-triggered watchers: both edges, registration says the now. */
    edge e_two = {0}, e_unsub = {0}, e_online = {0}, e_offline = {0};
    const mk_stream_cond unsub = {.min = 1, .unmet = true};
    const mk_stream_cond online = {.kind = MK_WHEN_ONLINE};
    const mk_stream_cond offline = {.kind = MK_WHEN_ONLINE, .unmet = true};
    assert_int_equal(mk_producer_when(p.p, &two, on_edge, &e_two, NULL), 0);
    assert_int_equal(mk_producer_when(p.p, &unsub, on_edge, &e_unsub, NULL),
                     1);
    assert_int_equal(mk_producer_when(p.p, &online, on_edge, &e_online, NULL),
                     0);
    assert_int_equal(
        mk_producer_when(p.p, &offline, on_edge, &e_offline, NULL), 1);

    rx a, b, c, d;
    rx_open(f, &a, plain, &s, NULL);
    rx_open(f, &b, plain, &st, NULL);
    rx_open(f, &c, plain, &sd, NULL);
    /* Default producer: online with one consumer. */
    WAIT(f, mk_producer_is_online(pd.p), 8000);
    assert_true(send_seq(pd.p, 0, 8) == 1);
    /* min 2 with one: offline, and sending says so. */
    WAIT(f, mk_producer_subscribers(p.p) == 1 &&
                mk_producer_subscribers(pt.p) == 1,
         8000);
    assert_false(mk_producer_is_online(p.p));
    assert_int_equal(send_seq(p.p, 0, 8), MK_EOFFLINE);
    assert_int_equal(e_unsub.down, 1); /* no longer unsubscribed */
    assert_int_equal(e_two.up, 0);

    /* Tagged consumers: the untagged one never counted for `pt`. */
    rx_open(f, &d, tagged1, &s, NULL);
    rx e1, e2;
    rx_open(f, &e1, tagged1, &st, NULL);
    WAIT(f, mk_producer_is_online(p.p), 8000);
    assert_int_equal(e_two.up, 1);
    assert_int_equal(e_online.up, 1);
    assert_int_equal(e_offline.down, 1);
    assert_int_equal(send_seq(p.p, 1, 8), 2);
    WAIT(f, mk_producer_subscribers(pt.p) == 2, 8000);
    assert_false(mk_producer_is_online(pt.p)); /* 2 subscribed, 1 tagged */
    rx_open(f, &e2, tagged2, &st, NULL);
    WAIT(f, mk_producer_is_online(pt.p), 8000);
    assert_true(mk_producer_is_met(pt.p, &two_tagged));
    const mk_stream_cond three = {.min = 3};
    assert_true(mk_producer_is_met(pt.p, &three));
    const mk_stream_cond pred = {.min = 1, .pred = entry_is_trusted};
    assert_false(mk_producer_is_met(pt.p, &pred));

    /* A tagged consumer leaves: offline again; edges fire again. */
    close_consumer(f, e2.c);
    WAIT(f, !mk_producer_is_online(pt.p), 8000);
    close_consumer(f, d.c);
    WAIT(f, !mk_producer_is_online(p.p), 8000);
    assert_int_equal(e_two.down, 1);
    assert_int_equal(e_offline.up, 1);
    assert_int_equal(send_seq(p.p, 2, 8), MK_EOFFLINE);
    /* ... and re-arm: a new second consumer brings it back. */
    rx_open(f, &d, tagged2, &s, NULL);
    WAIT(f, mk_producer_is_online(p.p), 8000);
    assert_int_equal(e_two.up, 2);

    /* Consumer side: online_when counts tagged producers. */
    const mk_stream_cond cons_two = {.min = 2, .tags = t12, .n_tags = 2};
    int pa = add_node(f, t12, 2, n0);
    int pb = add_node(f, t12, 2, n0);
    mk_id sc;
    mk_stream_id_from_str(&sc, "consumer-online");
    mk_consumer_config cc = {.online_when = &cons_two};
    rx cr;
    rx_open(f, &cr, plain, &sc, &cc);
    edge ce = {0};
    assert_int_equal(mk_consumer_when(cr.c, &online, on_edge, &ce, NULL), 0);
    assert_false(mk_consumer_is_online(cr.c));
    tx q1, q2;
    tx_open(f, &q1, pa, &sc, NULL);
    WAIT(f, mk_consumer_producers(cr.c) == 1, 8000);
    assert_false(mk_consumer_is_online(cr.c));
    tx_open(f, &q2, pb, &sc, NULL);
    WAIT(f, mk_consumer_is_online(cr.c), 8000);
    assert_int_equal(ce.up, 1);
    close_producer(f, q2.p);
    WAIT(f, !mk_consumer_is_online(cr.c), 8000);
    assert_int_equal(ce.down, 1);
    const mk_stream_cond cone = {.min = 1};
    assert_true(mk_consumer_is_met(cr.c, &cone));
}

/* ---- ★ send fails while offline ------------------------------------------------------ */

static void send_fails_if_offline(void **state)
{
    fx *f = *state;
    int n0 = add_node(f, NULL, 0, -1);
    int n1 = add_node(f, NULL, 0, n0);
    mk_id s;
    mk_stream_id_from_str(&s, "offline");
    tx p;
    tx_open(f, &p, n0, &s, NULL);
    assert_int_equal(send_seq(p.p, 0, 8), MK_EOFFLINE);
    rx r;
    rx_open(f, &r, n1, &s, NULL);
    WAIT(f, mk_producer_is_online(p.p), 8000);
    assert_int_equal(send_seq(p.p, 0, 8), 1);
    WAIT(f, r.items == 1, 5000);
    assert_int_equal(p.subs, 1);
    close_consumer(f, r.c);
    WAIT(f, !mk_producer_is_online(p.p), 5000);
    assert_int_equal(p.last_code, MK_CLOSE_GRACEFUL_SHUTDOWN);
    assert_int_equal(send_seq(p.p, 1, 8), MK_EOFFLINE);
}

/* ---- ★ require chaining and tags, both sides ------------------------------------------ */

static void require_chaining_and_tags(void **state)
{
    fx *f = *state;
    const char *t1[] = {"tag1"};
    const char *t12[] = {"tag1", "tag2"};
    const char *t2[] = {"tag2"};
    int n0 = add_node(f, NULL, 0, -1);
    int both = add_node(f, t12, 2, n0);
    int one = add_node(f, t1, 1, n0);
    int none = add_node(f, NULL, 0, n0);
    int open_p = add_node(f, NULL, 0, n0);
    int tag2_p = add_node(f, t2, 1, n0);

    /* Producer side: tag1 AND tag2. */
    mk_id s;
    mk_stream_id_from_str(&s, "chained");
    mk_peer_pred preds[] = {{has_tag, "tag1"}, {has_tag, "tag2"}};
    mk_producer_config pc = {.require = preds, .n_require = 2};
    tx p;
    tx_open(f, &p, n0, &s, &pc);
    rx rb, r1, rn;
    rx_open(f, &rb, both, &s, NULL);
    rx_open(f, &r1, one, &s, NULL);
    rx_open(f, &rn, none, &s, NULL);
    WAIT(f, mk_producer_subscribers(p.p) == 1, 8000);
    mk_stream_channel ch;
    WAIT(f, mk_consumer_channels(r1.c, &ch, 1) == 1 &&
                ch.state == MK_CHANNEL_TERMINATED &&
                mk_consumer_channels(rn.c, &ch, 1) == 1 &&
                ch.state == MK_CHANNEL_TERMINATED,
         8000);
    assert_int_equal(ch.last_code, MK_CLOSE_STREAM_NOT_ALLOWED);
    WAIT(f, mk_consumer_producers(rb.c) == 1, 5000);
    assert_int_equal(mk_consumer_producers(r1.c), 0);
    assert_int_equal(mk_consumer_producers(rn.c), 0);

    /* Consumer side: one consumer requires tag2 of its producers, another
     * requires nothing; two producers, one tagged. */
    mk_id s2;
    mk_stream_id_from_str(&s2, "by-tag");
    tx po, pt;
    tx_open(f, &po, open_p, &s2, NULL);
    tx_open(f, &pt, tag2_p, &s2, NULL);
    mk_peer_pred need2[] = {{has_tag, "tag2"}};
    mk_consumer_config cc = {.require = need2, .n_require = 1};
    rx picky, any;
    rx_open(f, &picky, none, &s2, &cc);
    rx_open(f, &any, one, &s2, NULL);
    WAIT(f, mk_consumer_producers(any.c) == 2 &&
                mk_consumer_producers(picky.c) == 1,
         8000);
    assert_int_equal(mk_consumer_channels(picky.c, &ch, 1), 1);
    assert_true(mk_id_eq(&ch.peer, mk_node_id(f->nodes[tag2_p])));
    nap(f, 500);
    assert_int_equal(mk_consumer_producers(picky.c), 1);
    assert_int_equal(mk_producer_subscribers(po.p), 1);
}

/* ---- ★ dynamic re-evaluation on catalog changes ---------------------------------------- */

static void dynamic_tag_reevaluation(void **state)
{
    fx *f = *state;
    const char *leader[] = {"leader"};
    const char *trusted[] = {"trusted"};
    int n0 = add_node(f, NULL, 0, -1);
    int n1 = add_node(f, leader, 1, n0);
    int n2 = add_node(f, NULL, 0, n0);
    int cn = add_node(f, trusted, 1, n0);
    mk_id s;
    mk_stream_id_from_str(&s, "leader-stream");
    tx p1, p2;
    tx_open(f, &p1, n1, &s, NULL);
    tx_open(f, &p2, n2, &s, NULL);
    mk_peer_pred need[] = {{has_tag, "leader"}};
    mk_consumer_config cc = {.require = need, .n_require = 1};
    rx r;
    rx_open(f, &r, cn, &s, &cc);
    WAIT(f, r.connects == 1, 8000); /* the consumer side: StartStream in */
    assert_int_equal(mk_producer_subscribers(p1.p), 1);
    assert_int_equal(mk_producer_subscribers(p2.p), 0);

    /* The leader tag moves from n1 to n2: the consumer follows it. */
    assert_int_equal(mk_node_remove_tag(f->nodes[n1], "leader"), 1);
    WAIT(f, mk_producer_subscribers(p1.p) == 0, 8000);
    assert_int_equal(r.last_code, MK_CLOSE_CANCELLED); /* dropped by us */
    assert_int_equal(mk_node_add_tag(f->nodes[n2], "leader"), 1);
    WAIT(f, mk_producer_subscribers(p2.p) == 1, 8000);
    WAIT(f, mk_consumer_producers(r.c) == 1, 5000);

    /* Producer side: it requires "trusted" of its consumers; the consumer
     * loses the tag and is cut with NOT_ALLOWED. */
    mk_id s2;
    mk_stream_id_from_str(&s2, "trusted-only");
    mk_peer_pred need_t[] = {{has_tag, "trusted"}};
    mk_producer_config pc = {.require = need_t, .n_require = 1};
    tx pt;
    tx_open(f, &pt, n0, &s2, &pc);
    rx rt;
    rx_open(f, &rt, cn, &s2, NULL);
    WAIT(f, rt.connects == 1, 8000);
    assert_int_equal(mk_node_remove_tag(f->nodes[cn], "trusted"), 1);
    WAIT(f, mk_producer_subscribers(pt.p) == 0, 8000);
    assert_int_equal(pt.last_code, MK_CLOSE_STREAM_NOT_ALLOWED);
    WAIT(f, rt.disconnects == 1, 5000);
    assert_int_equal(rt.last_code, MK_CLOSE_STREAM_NOT_ALLOWED);
    /* A refusal is final for the connection; the consumer tries again
     * on the producer's next catalog change (its re-announcements), and
     * is refused again while it is not trusted... */
    nap(f, 1000);
    assert_int_equal(mk_producer_subscribers(pt.p), 0);
    /* ... and accepted once it is. */
    assert_int_equal(mk_node_add_tag(f->nodes[cn], "trusted"), 1);
    WAIT(f, mk_producer_subscribers(pt.p) == 1, 8000);
}

/* ---- ★ producer restart, consumer reconnect ----------------------------------------------- */

static void producer_restart_and_reconnect(void **state)
{
    fx *f = *state;
    int n0 = add_node(f, NULL, 0, -1);
    int n1 = add_node(f, NULL, 0, n0);
    mk_keypair pk;
    assert_int_equal(mk_keypair_generate(&pk), 0);
    int n2 = add_node_key(f, &pk, NULL, 0, n0, true);
    mk_id s;
    mk_stream_id_from_str(&s, "restart");
    tx p;
    tx_open(f, &p, n2, &s, NULL);
    rx r;
    rx_open(f, &r, n1, &s, NULL);
    WAIT(f, mk_producer_is_online(p.p), 8000);
    assert_int_equal(send_seq(p.p, 0, 8), 1);
    WAIT(f, r.items == 1, 5000);

    /* The producer closes and reopens on the same node. */
    close_producer(f, p.p);
    WAIT(f, r.disconnects == 1, 5000);
    /* Its close frame and its entry update (stream gone) race on two
     * links: the consumer hears one or the other first. */
    assert_true(r.last_code == MK_CLOSE_GRACEFUL_SHUTDOWN ||
                r.last_code == MK_CLOSE_CANCELLED);
    assert_int_equal(mk_consumer_producers(r.c), 0);
    tx_open(f, &p, n2, &s, NULL);
    WAIT(f, mk_producer_is_online(p.p), 8000);
    assert_int_equal(send_seq(p.p, 1, 8), 1);
    WAIT(f, r.items == 2, 5000);
    assert_int_equal(r.connects, 2);

    /* The whole producer node restarts (same key, new port, new start
     * clock): the consumer finds the new incarnation. */
    close_producer(f, p.p);
    close_node(f, n2);
    WAIT(f, r.disconnects == 2, 5000);
    int n3 = add_node_key(f, &pk, NULL, 0, n0, true);
    tx_open(f, &p, n3, &s, NULL);
    WAIT(f, mk_producer_is_online(p.p), 10000);
    assert_int_equal(send_seq(p.p, 2, 8), 1);
    WAIT(f, r.items == 3, 5000);
    assert_int_equal(r.connects, 3);
}

/* ---- ★ a subscription triggers a catalog sync (UNKNOWN_PEER) ------------------------------- */

static void subscription_triggers_catalog_sync(void **state)
{
    fx *f = *state;
    const char *tags[] = {"tag1", "tag2", "tag3"};
    mk_keypair kp, kc;
    assert_int_equal(mk_keypair_generate(&kp), 0);
    assert_int_equal(mk_keypair_generate(&kc), 0);
    /* Neither node runs discovery: nobody learns anything by itself. */
    int np = add_node_key(f, &kp, tags, 3, -1, false);
    int nc = add_node_key(f, &kc, NULL, 0, -1, false);
    mk_id s;
    mk_stream_id_from_str(&s, "sync-me");
    tx p;
    tx_open(f, &p, np, &s, NULL);
    /* The consumer is handed the producer's entry; the producer has never
     * heard of the consumer. */
    const mk_peer_entry *e = mk_node_entry(f->nodes[np]);
    assert_int_equal(mk_node_feed(f->nodes[nc], e->wire, e->wire_len), 1);
    assert_false(knows(f, np, nc, NULL));
    rx r;
    rx_open(f, &r, nc, &s, NULL);
    /* Refused with UNKNOWN_PEER, the consumer syncs and retries. */
    WAIT(f, mk_producer_subscribers(p.p) == 1, 10000);
    assert_true(knows(f, np, nc, NULL));
    WAIT(f, r.connects == 1, 5000);
    mk_peer_info info;
    assert_true(mk_node_peer(f->nodes[nc], mk_node_id(f->nodes[np]), &info));
    assert_int_equal(info.entry->n_tags, 3);
    assert_int_equal(send_seq(p.p, 0, 8), 1);
    WAIT(f, r.items == 1, 5000);
}

/* ---- the acceptor's refusals, spoken to by hand -------------------------------------- */

typedef struct probe {
    const uint8_t *msg; /* first frame to send */
    size_t len;
    bool then_data;     /* send a datum after the StartStream arrives */
    int frames;
    bool closed;
    uint32_t code;
} probe;

static void probe_frame(mk_link *l, const uint8_t *f, size_t len, void *data)
{
    probe *pr = data;
    if (pr->frames++ == 0 && pr->then_data)
        mk_link_send(l, "x", 1); /* consumers must not talk after hello */
}

static void probe_close(mk_link *l, uint32_t code, int status, void *data)
{
    probe *pr = data;
    pr->closed = true;
    pr->code = code;
}

static void probe_connected(mk_link *l, int status, void *data)
{
    probe *pr = data;
    if (status < 0) {
        pr->closed = true;
        return;
    }
    mk_link_set_callbacks(l, probe_frame, probe_close, pr);
    mk_link_send(l, pr->msg, pr->len);
}

static bool let_me_in(const mk_peer_info *consumer, const uint8_t *criteria,
                      size_t len, void *data)
{
    (void)consumer;
    (void)data;
    return len == 9 && memcmp(criteria, "let-me-in", 9) == 0;
}

static void handshake_refusals(void **state)
{
    fx *f = *state;
    int n0 = add_node(f, NULL, 0, -1);
    int n1 = add_node(f, NULL, 0, n0);
    mk_id s, other, wrong_net;
    mk_stream_id_from_str(&s, "guarded");
    mk_stream_id_from_str(&other, "nobody-produces-this");
    mk_id_from_str(&wrong_net, "another-network");
    mk_producer_config pc = {.accept_criteria = let_me_in};
    tx p;
    tx_open(f, &p, n0, &s, &pc);
    WAIT(f, knows(f, n1, n0, &s) && knows(f, n0, n1, NULL), 5000);

    struct {
        const char *what;
        const mk_id *net, *stream;
        const char *criteria;
        bool raw_garbage, then_data;
        uint32_t want;
    } cases[] = {
        {"wrong network", &wrong_net, &s, "let-me-in", false, false,
         MK_CLOSE_DIFFERENT_NETWORK},
        {"unknown stream", &f->net, &other, "let-me-in", false, false,
         MK_CLOSE_STREAM_NOT_FOUND},
        {"garbage", NULL, NULL, NULL, true, false,
         MK_CLOSE_PROTOCOL_VIOLATION},
        {"criteria refused", &f->net, &s, "knock", false, false,
         MK_CLOSE_STREAM_NOT_ALLOWED},
        {"talks after hello", &f->net, &s, "let-me-in", false, true,
         MK_CLOSE_PROTOCOL_VIOLATION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mk_buf b;
        mk_buf_init(&b);
        if (cases[i].raw_garbage)
            mk_put_raw(&b, "\x07garbage", 8);
        else
            assert_int_equal(mk__stream_handshake_encode(
                                 &b, cases[i].net, cases[i].stream,
                                 (const uint8_t *)cases[i].criteria,
                                 strlen(cases[i].criteria)),
                             0);
        probe pr = {.msg = b.data, .len = b.len,
                    .then_data = cases[i].then_data};
        assert_int_equal(mk_node_dial(f->nodes[n1], mk_node_id(f->nodes[n0]),
                                      MK_ALPN_STREAMS, probe_connected, &pr),
                         0);
        WAIT(f, pr.closed, 5000);
        if (pr.code != cases[i].want)
            fail_msg("%s: closed with %u, expected %u", cases[i].what,
                     pr.code, cases[i].want);
        mk_buf_free(&b);
    }
    /* The criteria that pass, through a real consumer. */
    mk_consumer_config cc = {.criteria = (const uint8_t *)"let-me-in",
                             .criteria_len = 9};
    rx r;
    rx_open(f, &r, n1, &s, &cc);
    WAIT(f, r.connects == 1, 5000);
    assert_int_equal(p.subs, 2); /* the "talks after hello" probe, and r */
}

/* ---- ★ tickets ------------------------------------------------------------------------------ */

/* A ticket from `issuer` (iss `iss`) for node i, expiring `exp_in_s` from
 * now (negative: already expired). */
static void give_ticket(fx *f, int i, const mk_keypair *issuer,
                        const char *iss, int64_t exp_in_s)
{
    int64_t now = mk_now_ms() / 1000;
    mk_jwt_claims c = {.iss = iss, .iat = now - 7200, .exp = now + exp_in_s};
    mk_ticket t;
    char why[MK_ERRMSG_SIZE];
    int rc = mk_jwt_issue_ticket(&t, issuer, mk_node_id(f->nodes[i]), &c, why);
    if (rc != 0)
        fail_msg("issue: %s", why);
    assert_true(mk_node_set_ticket(f->nodes[i], &t) >= 0);
    mk_ticket_free(&t);
}

static void jwt_validator(struct mk_ticket_validator *v, const mk_keypair *k,
                          const char *iss)
{
    const char *issuers[] = {iss};
    mk_jwt_config cfg = {.keys = &k->pub, .n_keys = 1, .issuers = issuers,
                         .n_issuers = 1};
    char why[MK_ERRMSG_SIZE];
    if (mk_jwt_validator_init(v, &cfg, why) != 0)
        fail_msg("validator: %s", why);
}

/* A second class of ticket for the AND tests. node.h replaces an entry's
 * tickets by class (mk_node_set_ticket), so an entry holds one JWT; a
 * token of another class stands in for a second issuer. It is valid when
 * its bytes are "ok". */
static int token_validate(const struct mk_ticket_validator *v,
                          const uint8_t *data, size_t len,
                          const mk_peer_id *peer, int64_t now_ms,
                          int64_t *expires_ms, char *why)
{
    (void)v;
    (void)peer;
    (void)now_ms;
    if (len == 2 && memcmp(data, "ok", 2) == 0) {
        *expires_ms = MK_TICKET_NEVER;
        return 0;
    }
    if (why)
        snprintf(why, MK_ERRMSG_SIZE, "token is not ok");
    return MK_ENOT_ALLOWED;
}

static void token_validator(struct mk_ticket_validator *v)
{
    memset(v, 0, sizeof *v);
    v->version = MK_TICKET_VALIDATOR_VERSION;
    mk_id_from_str(&v->class, "mosaik.test.token.v1");
    v->signature = v->class;
    v->validate = token_validate;
}

static void give_token(fx *f, int i)
{
    mk_ticket t;
    mk_id cls;
    mk_id_from_str(&cls, "mosaik.test.token.v1");
    assert_int_equal(mk_ticket_init(&t, &cls, "ok", 2), 0);
    assert_true(mk_node_set_ticket(f->nodes[i], &t) >= 0);
    mk_ticket_free(&t);
}

static void tickets_gate_subscriptions(void **state)
{
    fx *f = *state;
    mk_keypair k1, k2;
    assert_int_equal(mk_keypair_generate(&k1), 0);
    assert_int_equal(mk_keypair_generate(&k2), 0);
    struct mk_ticket_validator v1, v2;
    jwt_validator(&v1, &k1, "iss1");
    token_validator(&v2);
    const struct mk_ticket_validator *just1[] = {&v1};
    const struct mk_ticket_validator *both[] = {&v1, &v2};

    int n0 = add_node(f, NULL, 0, -1);
    int valid = add_node(f, NULL, 0, n0);
    int expired = add_node(f, NULL, 0, n0);
    int wrong = add_node(f, NULL, 0, n0);
    int nothing = add_node(f, NULL, 0, n0);
    int dual = add_node(f, NULL, 0, n0);
    give_ticket(f, valid, &k1, "iss1", 3600);
    give_ticket(f, expired, &k1, "iss1", -10);
    give_ticket(f, wrong, &k2, "iss1", 3600); /* iss1 not signed by k1 */
    give_ticket(f, dual, &k1, "iss1", 3600);
    give_token(f, dual);

    /* Producer side: one validator, then two (AND). */
    mk_id s1, s2;
    mk_stream_id_from_str(&s1, "ticketed");
    mk_stream_id_from_str(&s2, "double-ticketed");
    mk_producer_config pc1 = {.validators = just1, .n_validators = 1};
    mk_producer_config pc2 = {.validators = both, .n_validators = 2};
    tx p1, p2;
    tx_open(f, &p1, n0, &s1, &pc1);
    tx_open(f, &p2, n0, &s2, &pc2);
    int who[] = {valid, expired, wrong, nothing, dual};
    rx r1[5], r2[5];
    for (int i = 0; i < 5; i++) {
        rx_open(f, &r1[i], who[i], &s1, NULL);
        rx_open(f, &r2[i], who[i], &s2, NULL);
    }
    WAIT(f, mk_producer_subscribers(p1.p) == 2 &&
                mk_producer_subscribers(p2.p) == 1,
         8000);
    mk_stream_channel ch;

    for (int i = 1; i < 4; i++)
        WAIT(f, mk_consumer_channels(r1[i].c, &ch, 1) == 1 &&
                    ch.state == MK_CHANNEL_TERMINATED &&
                    ch.last_code == MK_CLOSE_STREAM_NOT_ALLOWED,
             8000);
    WAIT(f, mk_consumer_producers(r1[0].c) == 1 &&
                mk_consumer_producers(r1[4].c) == 1 &&
                mk_consumer_producers(r2[4].c) == 1,
         5000);
    assert_int_equal(mk_consumer_producers(r2[0].c), 0);

    /* Consumer side: only the producer holding a valid ticket. */
    mk_id s3;
    mk_stream_id_from_str(&s3, "consumer-checks");
    tx q[4];
    int prod[] = {valid, expired, wrong, nothing};
    for (int i = 0; i < 4; i++)
        tx_open(f, &q[i], prod[i], &s3, NULL);
    mk_consumer_config cc = {.validators = just1, .n_validators = 1};
    rx picky;
    rx_open(f, &picky, n0, &s3, &cc);
    WAIT(f, mk_consumer_producers(picky.c) == 1, 8000);
    nap(f, 500);
    assert_int_equal(mk_consumer_producers(picky.c), 1);
    assert_int_equal(mk_producer_subscribers(q[0].p), 1);
    assert_int_equal(send_seq(q[0].p, 0, 8), 1);
    WAIT(f, picky.items == 1, 5000);
    for (int i = 1; i < 4; i++)
        assert_int_equal(mk_producer_subscribers(q[i].p), 0);

    /* The validators are the test's; close what uses them first. */
    for (int i = 0; i < 5; i++) {
        close_consumer(f, r1[i].c);
        close_consumer(f, r2[i].c);
    }
    close_consumer(f, picky.c);
    close_producer(f, p1.p);
    close_producer(f, p2.p);
    mk_ticket_validator_free(&v1);
    mk_ticket_validator_free(&v2);
}

static void ticket_expiry_disconnects(void **state)
{
    fx *f = *state;
    mk_keypair k1;
    assert_int_equal(mk_keypair_generate(&k1), 0);
    struct mk_ticket_validator v1;
    jwt_validator(&v1, &k1, "iss1");
    const struct mk_ticket_validator *just1[] = {&v1};
    int n0 = add_node(f, NULL, 0, -1);
    int cons_node = add_node(f, NULL, 0, n0);
    int prod_node = add_node(f, NULL, 0, n0);
    /* Both tickets end in about 3 s (scaled: the setup must finish
     * first; JWT exp has 1 s granularity). */
    int64_t life = (int64_t)(3 * f->tf) + 1;
    give_ticket(f, cons_node, &k1, "iss1", life);
    give_ticket(f, prod_node, &k1, "iss1", life);

    /* Producer-side expiry: the producer drops the consumer. */
    mk_id s1, s2;
    mk_stream_id_from_str(&s1, "consumer-ticket-expires");
    mk_stream_id_from_str(&s2, "producer-ticket-expires");
    mk_producer_config pc = {.validators = just1, .n_validators = 1};
    tx p1;
    tx_open(f, &p1, n0, &s1, &pc);
    rx r1;
    rx_open(f, &r1, cons_node, &s1, NULL);
    /* Consumer-side expiry: the consumer drops the producer. */
    tx p2;
    tx_open(f, &p2, prod_node, &s2, NULL);
    mk_consumer_config cc = {.validators = just1, .n_validators = 1};
    rx r2;
    rx_open(f, &r2, n0, &s2, &cc);

    WAIT(f, mk_producer_is_online(p1.p) && mk_producer_is_online(p2.p),
         2000);
    assert_int_equal(send_seq(p1.p, 0, 8), 1);
    assert_int_equal(send_seq(p2.p, 0, 8), 1);
    WAIT(f, r1.items == 1 && r2.items == 1, 500);

    WAIT(f, mk_producer_subscribers(p1.p) == 0, 6000);
    assert_int_equal(p1.last_code, MK_CLOSE_STREAM_NOT_ALLOWED);
    WAIT(f, mk_producer_subscribers(p2.p) == 0, 6000);
    assert_int_equal(mk_consumer_producers(r2.c), 0);
    assert_int_equal(r2.last_code, MK_CLOSE_CANCELLED);
    /* Neither comes back with the expired ticket. */
    nap(f, 500);
    assert_int_equal(mk_producer_subscribers(p1.p), 0);
    assert_int_equal(mk_producer_subscribers(p2.p), 0);
    /* A renewed ticket (a catalog change) lets the consumer back in. */
    give_ticket(f, cons_node, &k1, "iss1", 3600);
    WAIT(f, mk_producer_subscribers(p1.p) == 1, 8000);

    close_consumer(f, r1.c);
    close_consumer(f, r2.c);
    close_producer(f, p1.p);
    mk_ticket_validator_free(&v1);
}

/* ---- ★ across processes ------------------------------------------------------------------- */

/* The child: a node with a producer that sends 100 datums to its first
 * subscriber and exits once that subscriber leaves. Plain exit codes, no
 * cmocka: this is a separate process. */
typedef struct child {
    uv_loop_t loop;
    mk_producer *p;
    int sent;
    bool done;
    bool left;
} child;

static void child_on_sub(mk_producer *p, const mk_peer_id *c, bool sub,
                         uint32_t code, void *data)
{
    child *ch = data;
    if (!sub)
        ch->left = true;
}

static void child_on_online(bool met, void *data)
{
    child *ch = data;
    if (!met || ch->sent)
        return;
    for (int i = 0; i < 100; i++) {
        uint8_t b[12];
        memset(b, 0xab, sizeof b);
        put_be32(b, (uint32_t)i);
        if (mk_producer_send_bytes(ch->p, b, sizeof b) == 1)
            ch->sent++;
    }
}

static void child_closed(void *data)
{
    ((child *)data)->done = true;
}

static void child_tick(uv_timer_t *t)
{
    (void)t;
}

static int run_child(int wfd, const mk_id *net, double tf)
{
    child ch = {0};
    mk_keypair k;
    mk_node *node;
    mk_streams *s;
    if (uv_loop_init(&ch.loop) != 0 || mk_keypair_generate(&k) != 0)
        return 10;
    mk_node_config cfg = {.loop = &ch.loop, .key = &k, .network = net,
                          .listen = "127.0.0.1:0",
                          .discovery = {.announce_interval_ms = 500}};
    if (mk_node_new(&cfg, &node, NULL) != 0 || mk_streams_new(node, &s) != 0)
        return 11;
    mk_node_start(node);
    mk_id sid;
    mk_stream_id_from_str(&sid, "across-processes");
    mk_producer_config pc = {.stream = sid, .on_subscription = child_on_sub,
                             .data = &ch};
    if (mk_producer_open(s, &pc, &ch.p, NULL) != 0)
        return 12;
    const mk_stream_cond online = {.kind = MK_WHEN_ONLINE};
    mk_producer_when(ch.p, &online, child_on_online, &ch, NULL);
    char line[256], hex[MK_ID_HEX_LEN + 1];
    int n = snprintf(line, sizeof line, "%s@%s\n", mk_id_hex(&k.pub, hex),
                     mk_node_addr(node));
    if (write(wfd, line, (size_t)n) != n)
        return 13;
    close(wfd);
    uv_timer_t tick;
    uv_timer_init(&ch.loop, &tick);
    uv_timer_start(&tick, child_tick, 10, 10);
    int64_t dl = mk_mono_ms() + (int64_t)(20000 * tf);
    while (!ch.left && mk_mono_ms() < dl)
        uv_run(&ch.loop, UV_RUN_ONCE);
    if (!ch.left)
        return 14;
    mk_producer_close(ch.p, NULL, NULL);
    mk_node_close(node, child_closed, &ch);
    while (!ch.done)
        uv_run(&ch.loop, UV_RUN_ONCE);
    ch.done = false;
    mk_streams_close(s, child_closed, &ch);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&ch.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&ch.loop) != 0)
        return 15;
    return ch.sent == 100 ? 0 : 16;
}

static void across_processes(void **state)
{
    fx *f = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        /* The parent's loop is not ours to touch: only _exit. */
        _exit(run_child(fds[1], &f->net, f->tf));
    }
    close(fds[1]);
    char line[256] = {0};
    size_t got = 0;
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    while (got < sizeof line - 1 && !memchr(line, '\n', got)) {
        if (poll(&pfd, 1, (int)(10000 * f->tf)) <= 0)
            break;
        ssize_t k = read(fds[0], line + got, sizeof line - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fds[0]);
    char *nl = memchr(line, '\n', got);
    if (!nl) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the child never said where it listens");
    }
    *nl = '\0';

    /* Our node bootstraps off the child. */
    mk_keypair k;
    assert_int_equal(mk_keypair_generate(&k), 0);
    int i = f->n++;
    f->keys[i] = k;
    const char *boots[] = {line};
    mk_node_config cfg = {.loop = &f->loop, .key = &f->keys[i],
                          .network = &f->net, .listen = "127.0.0.1:0",
                          .bootstrap = boots, .n_bootstrap = 1,
                          .discovery = {.announce_interval_ms = 500}};
    assert_int_equal(mk_node_new(&cfg, &f->nodes[i], NULL), 0);
    assert_int_equal(mk_streams_new(f->nodes[i], &f->streams[i]), 0);
    assert_int_equal(mk_node_start(f->nodes[i]), 0);
    mk_id sid;
    mk_stream_id_from_str(&sid, "across-processes");
    rx r;
    rx_open(f, &r, i, &sid, NULL);
    r.check_seq = true;
    WAIT(f, r.items == 100, 15000);
    assert_int_equal(r.out_of_order, 0);
    assert_int_equal(r.bytes, 1200);
    close_consumer(f, r.c);

    int status = -1;
    int64_t dl = mk_mono_ms() + (int64_t)(15000 * f->tf);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (mk_mono_ms() > dl) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("the child did not exit");
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The service closes while its node runs on: a subscription waiting for
 * its handshake is ended, a new one is refused as for an ALPN never
 * served, and the node can serve streams again. */
static void closes_before_its_node(void **state)
{
    fx *f = *state;
    int a = add_node(f, NULL, 0, -1);
    int b = add_node(f, NULL, 0, a);
    WAIT(f, knows(f, a, b, NULL), 10000);

    tu_probe held;
    tu_probe_start(&held, f->nodes[b], f->nodes[a], MK_ALPN_STREAMS);
    WAIT(f, held.connected || held.ended, 10000);
    assert_true(held.connected);
    nap(f, 50); /* accepted on a's side: pending its handshake */
    assert_false(held.ended);

    int want = f->closed + 1;
    mk_streams_close(f->streams[a], on_closed, f);
    f->streams[a] = NULL;
    assert_int_equal(f->closed, want - 1); /* from the loop only */
    WAIT(f, f->closed == want && held.ended, 10000);
    assert_int_equal(held.code, MK_CLOSE_GRACEFUL_SHUTDOWN);

    tu_probe late;
    tu_probe_start(&late, f->nodes[b], f->nodes[a], MK_ALPN_STREAMS);
    WAIT(f, late.ended, 10000);
    assert_int_equal(late.code, MK_CLOSE_INVALID_ALPN);

    /* The node still works: it serves streams again. */
    assert_int_equal(mk_streams_new(f->nodes[a], &f->streams[a]), 0);
    tu_probe again;
    tu_probe_start(&again, f->nodes[b], f->nodes[a], MK_ALPN_STREAMS);
    WAIT(f, again.connected || again.ended, 10000);
    nap(f, 100);
    assert_true(again.connected);
    assert_false(again.ended);
    mk_link_close(again.link, MK_CLOSE_GRACEFUL_SHUTDOWN, NULL);
    WAIT(f, again.ended, 10000);
}

int main(void)
{
    /* A peer that vanishes mid-write must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wire_round_trip_and_strictness),
        cmocka_unit_test(replay_fuzz_corpus),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(late_producer_and_late_consumer),
        T(fan_out_and_stats),
        T(slow_consumer_is_cut),
        T(full_sink_and_writable),
        T(max_consumers),
        T(online_when_and_conditions),
        T(send_fails_if_offline),
        T(require_chaining_and_tags),
        T(dynamic_tag_reevaluation),
        T(producer_restart_and_reconnect),
        T(subscription_triggers_catalog_sync),
        T(handshake_refusals),
        T(tickets_gate_subscriptions),
        T(ticket_expiry_disconnects),
        T(across_processes),
        T(closes_before_its_node),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
