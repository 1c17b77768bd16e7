/* Blobs: the segment tree against plain BLAKE3, the wire messages, and
 * fetches between real nodes in one process (three nodes on loopback,
 * real TLS links): a clean fetch, a peer that flips a byte (caught at the
 * end of its segment and named), the same with an honest second peer
 * (the fetch resumes there at the verified offset), a peer that hangs up
 * mid-transfer, and a hash nobody has.
 *
 * Waits scale with TIME_FACTOR; nothing asserts on speed. */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "mosaik/blake3.h"
#include "mosaik/blob.h"
#include "mosaik/blob_internal.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/node.h"
#include "testutil.h"

/* ---- the tree ------------------------------------------------------------ */

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* The hash rebuilt from segment chaining values is BLAKE3's, for sizes on
 * and around every boundary that matters: a chunk, a block, a segment,
 * powers of two of segments and their neighbours. */
static void tree_matches_blake3(void **state)
{
    const uint64_t S = MK_BLOB_SEGMENT;
    const uint64_t sizes[] = {0,         1,          63,        64,
                              1023,      1024,       1025,      S - 1,
                              S,         S + 1,      S + 1024,  2 * S - 1,
                              2 * S,     2 * S + 1,  3 * S,     3 * S + 777,
                              4 * S,     4 * S + 1,  5 * S - 3, 7 * S + 64,
                              8 * S,     9 * S + 5,  13 * S};
    uint8_t *buf = malloc(13 * S + 1);
    assert_non_null(buf);
    fill(buf, 13 * S + 1, 7);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t size = sizes[k], n = mk__blob_segments(size);
        mk_id want, got;
        mk_blake3(buf, (size_t)size, want.b);
        if (n == 1)
            continue; /* no tree: the plain hash is the check */
        uint8_t *cvs = malloc((size_t)n * 32);
        for (uint64_t i = 0; i < n; i++)
            mk__blob_segment_cv(buf + i * S, mk__blob_segment_len(size, i),
                                i, cvs + 32 * i);
        mk__blob_root(cvs, n, &got);
        if (!mk_id_eq(&want, &got))
            fail_msg("size %llu: segment tree root differs from BLAKE3",
                     (unsigned long long)size);
        /* One wrong byte changes exactly its segment's chaining value. */
        uint64_t at = size / 2;
        buf[at] ^= 0x40;
        uint8_t cv[32];
        uint64_t i = at / S;
        mk__blob_segment_cv(buf + i * S, mk__blob_segment_len(size, i), i,
                            cv);
        assert_memory_not_equal(cv, cvs + 32 * i, 32);
        buf[at] ^= 0x40;
        free(cvs);
    }
    /* The file hasher agrees with both. */
    char path[] = "/tmp/mk-blob-tree-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, 5 * S + 99), (ssize_t)(5 * S + 99));
    mk_id h, want;
    uint64_t size;
    uint8_t *cvs;
    assert_int_equal(mk__blob_hash_fd(fd, &h, &size, &cvs), 0);
    mk_blake3(buf, 5 * S + 99, want.b);
    assert_true(mk_id_eq(&h, &want));
    assert_int_equal(size, 5 * S + 99);
    assert_non_null(cvs);
    free(cvs);
    close(fd);
    assert_int_equal(mk_blob_hash_file(path, &h, NULL), 0);
    assert_true(mk_id_eq(&h, &want));
    unlink(path);
    free(buf);
}

static void wire_is_strict(void **state)
{
    mk_buf b;
    mk_buf_init(&b);
    mk__blob_get g = {.offset = 12345, .flags = MK__BLOB_WANT_TREE}, g2;
    mk_id_from_str(&g.hash, "x");
    mk__blob_get_encode(&b, &g);
    assert_int_equal(mk__blob_get_decode(b.data, b.len, &g2), 0);
    assert_true(mk_id_eq(&g.hash, &g2.hash));
    assert_int_equal(g2.offset, 12345);
    mk_put_u8(&b, 0);
    assert_int_equal(mk__blob_get_decode(b.data, b.len, &g2), MK_EDECODE);
    mk_buf_reset(&b);

    uint8_t cvs[3 * 32];
    fill(cvs, sizeof cvs, 1);
    mk__blob_header h = {.status = MK__BLOB_OK,
                         .size = 2 * MK_BLOB_SEGMENT + 1,
                         .shift = MK_BLOB_SEGMENT_SHIFT,
                         .n_cvs = 3,
                         .cvs = cvs},
                    h2;
    mk__blob_header_encode(&b, &h);
    assert_int_equal(mk__blob_header_decode(b.data, b.len, &h2), 0);
    assert_int_equal(h2.n_cvs, 3);
    assert_memory_equal(h2.cvs, cvs, sizeof cvs);
    /* A count that is not the size's segment count is refused. */
    mk_buf_reset(&b);
    h.size = MK_BLOB_SEGMENT;
    mk__blob_header_encode(&b, &h);
    assert_int_equal(mk__blob_header_decode(b.data, b.len, &h2), MK_EDECODE);
    mk_buf_free(&b);
}

/* ---- live fetches ------------------------------------------------------------ */

typedef struct live {
    uv_loop_t loop;
    uv_timer_t pulse;
    double tf;
    char dir[256];
    mk_keypair k[3];
    mk_node *n[3]; /* 0 and 1 serve, 2 fetches */
    mk_blobs *b[3];
    /* the outcome of the last fetch */
    bool done;
    int status;
    mk_blob_fetch_result res;
    mk_peer_id bad[MK_BLOB_MAX_BLAME];
    char reason[1024];
    char path[4200];
} live;

static int ms(const live *l, int base)
{
    return (int)(base * l->tf);
}

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static void spin(live *l, int for_ms)
{
    tu_spin(&l->loop, for_ms);
}

static bool knows_servers(live *l)
{
    mk_peer_info pi;
    return mk_node_peer(l->n[2], &l->k[0].pub, &pi) &&
           mk_node_peer(l->n[2], &l->k[1].pub, &pi);
}

static void live_open(live *l)
{
    memset(l, 0, sizeof *l);
    const char *tf = getenv("TIME_FACTOR");
    l->tf = tf ? atof(tf) : 1.0;
    if (l->tf < 1.0)
        l->tf = 1.0;
    snprintf(l->dir, sizeof l->dir, "/tmp/mk-blob-XXXXXX");
    assert_non_null(mkdtemp(l->dir));
    assert_int_equal(uv_loop_init(&l->loop), 0);
    uv_timer_init(&l->loop, &l->pulse);
    uv_timer_start(&l->pulse, on_pulse, 5, 5);
    char err[MK_ERRMSG_SIZE], boot[256], hex[MK_ID_HEX_LEN + 1];
    const char *bp[1] = {boot};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mk_keypair_generate(&l->k[i]), 0);
        mk_node_config nc = {.loop = &l->loop, .key = &l->k[i],
                             .listen = "127.0.0.1:0"};
        if (i > 0) {
            nc.bootstrap = bp;
            nc.n_bootstrap = 1;
        }
        assert_int_equal(mk_node_new(&nc, &l->n[i], err), 0);
        assert_int_equal(mk_node_start(l->n[i]), 0);
        if (i == 0)
            snprintf(boot, sizeof boot, "%s@%s", mk_id_hex(&l->k[0].pub, hex),
                     mk_node_addr(l->n[0]));
        char d[300];
        snprintf(d, sizeof d, "%s/store%d", l->dir, i);
        if (mk_blobs_new(l->n[i], d, &l->b[i], err) != 0)
            fail_msg("mk_blobs_new: %s", err);
    }
    int64_t end = mk_mono_ms() + ms(l, 10000);
    while (!knows_servers(l) && mk_mono_ms() < end)
        spin(l, 20);
    assert_true(knows_servers(l));
}

static void live_close(live *l)
{
    for (int i = 0; i < 3; i++)
        mk_node_close(l->n[i], NULL, NULL);
    spin(l, 700);
    /* The nodes are gone by now: the services were told when their node
     * began closing, and close without touching it. */
    for (int i = 0; i < 3; i++)
        mk_blobs_close(l->b[i], NULL, NULL);
    uv_close((uv_handle_t *)&l->pulse, NULL);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&l->loop), 0);
    tu_rm_tree(l->dir);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void on_fetched(mk_blob_fetch *f, int status,
                       const mk_blob_fetch_result *r, void *data)
{
    live *l = data;
    l->done = true;
    l->status = status;
    l->res = *r;
    memcpy(l->bad, r->bad, sizeof l->bad);
    snprintf(l->reason, sizeof l->reason, "%s", r->reason);
    snprintf(l->path, sizeof l->path, "%s", r->path ? r->path : "");
    l->res.reason = l->reason;
    l->res.path = l->path;
}

static int fetch(live *l, const mk_id *hash, const int *from, size_t n)
{
    mk_peer_id peers[3];
    for (size_t i = 0; i < n; i++)
        peers[i] = l->k[from[i]].pub;
    mk_blob_fetch_config cfg = {.hash = *hash,
                                .from = peers,
                                .n_from = n,
                                .stall_timeout_ms = (uint32_t)ms(l, 5000)};
    l->done = false;
    assert_int_equal(mk_blob_fetch_start(l->b[2], &cfg, on_fetched, l, NULL),
                     0);
    int64_t end = mk_mono_ms() + ms(l, 30000);
    while (!l->done && mk_mono_ms() < end)
        spin(l, 10);
    assert_true(l->done);
    return l->status;
}

static void same_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *got = malloc(n + 1);
    assert_int_equal(fread(got, 1, n + 1, f), n);
    fclose(f);
    assert_memory_equal(got, p, n);
    free(got);
}

static void fetches_verify_and_resume(void **state)
{
    live l;
    live_open(&l);
    const size_t big = 5 * MK_BLOB_SEGMENT + 4321, small = 3000;
    uint8_t *data = malloc(big);
    fill(data, big, 42);
    char src[400], err[MK_ERRMSG_SIZE];
    snprintf(src, sizeof src, "%s/image.bin", l.dir);
    write_file(src, data, big);
    mk_id hbig, hsmall, want;
    uint64_t size;
    /* Node 0 serves the file in place, node 1 from its store. */
    assert_int_equal(mk_blobs_serve_file(l.b[0], src, &hbig, &size, err), 0);
    assert_int_equal(size, big);
    mk_blake3(data, big, want.b);
    assert_true(mk_id_eq(&hbig, &want));
    assert_int_equal(mk_blobs_import(l.b[1], src, &hbig, NULL, err), 0);
    assert_true(mk_blobs_has(l.b[1], &hbig, NULL, 0));

    /* A clean fetch lands in the store under the hash's name. */
    int from0[] = {0}, from1[] = {1}, both[] = {0, 1};
    assert_int_equal(fetch(&l, &hbig, from0, 1), 0);
    assert_int_equal(l.res.received, big);
    assert_int_equal(l.res.n_bad, 0);
    same_file(l.path, data, big);

    /* A small blob (one segment, no tree) from the store. */
    char small_path[400];
    snprintf(small_path, sizeof small_path, "%s/small.bin", l.dir);
    write_file(small_path, data, small);
    assert_int_equal(mk_blobs_import(l.b[1], small_path, &hsmall, NULL, err),
                     0);
    assert_int_equal(fetch(&l, &hsmall, from1, 1), 0);
    same_file(l.path, data, small);

    /* Already held: answered at once, nothing received. */
    assert_int_equal(fetch(&l, &hsmall, from0, 1), 0);
    assert_int_equal(l.res.received, 0);

    /* Node 0 flips a byte in the fourth segment. Alone, it fails the
     * fetch, and is named; nothing lands in the store. */
    unlink(l.path); /* drop both fetched copies to fetch again */
    assert_false(mk_blobs_has(l.b[2], &hsmall, NULL, 0));
    char stored[4200];
    assert_true(mk_blobs_has(l.b[2], &hbig, stored, sizeof stored));
    unlink(stored);
    uint64_t bad_at = 3 * MK_BLOB_SEGMENT + 10;
    mk__blobs_tamper(l.b[0], bad_at);
    assert_int_equal(fetch(&l, &hbig, from0, 1), MK_EHASH_MISMATCH);
    assert_int_equal(l.res.n_bad, 1);
    assert_true(mk_id_eq(&l.bad[0], &l.k[0].pub));
    char hex0[MK_ID_HEX_LEN + 1];
    mk_id_hex(&l.k[0].pub, hex0);
    if (!strstr(l.reason, hex0) || !strstr(l.reason, "segment 3"))
        fail_msg("the reason does not name the peer and segment: %s",
                 l.reason);
    assert_false(mk_blobs_has(l.b[2], &hbig, NULL, 0));

    /* With an honest second peer the fetch resumes there, from the end of
     * the three segments node 0 sent correctly, and succeeds — still
     * naming node 0. */
    assert_int_equal(fetch(&l, &hbig, both, 2), 0);
    assert_int_equal(l.res.n_bad, 1);
    assert_true(mk_id_eq(&l.bad[0], &l.k[0].pub));
    assert_int_equal(l.res.peers_used, 2);
    same_file(l.path, data, big);
    mk__blobs_tamper(l.b[0], UINT64_MAX);

    /* Node 0 hangs up after 600 KiB: resumed at 512 KiB (the verified
     * segments) from node 1, nobody blamed. */
    unlink(l.path);
    mk__blobs_cut_after(l.b[0], 600u << 10);
    assert_int_equal(fetch(&l, &hbig, both, 2), 0);
    assert_int_equal(l.res.n_bad, 0);
    assert_int_equal(l.res.peers_used, 2);
    same_file(l.path, data, big);
    mk__blobs_cut_after(l.b[0], UINT64_MAX);

    /* Nobody has it. */
    unlink(l.path);
    mk_id none;
    mk_id_from_str(&none, "nobody has this");
    assert_int_equal(fetch(&l, &none, both, 2), MK_ENOENT);

    /* Unserved in place: node 0 no longer has it. */
    mk_blobs_unserve(l.b[0], &hbig);
    assert_int_equal(fetch(&l, &hbig, from0, 1), MK_ENOENT);
    free(data);
    live_close(&l);
}

static void on_flag(void *data)
{
    *(bool *)data = true;
}

static void closes_before_its_node(void **state)
{
    live l;
    live_open(&l);
    uint8_t data[3000];
    fill(data, sizeof data, 7);
    char src[400], err[MK_ERRMSG_SIZE];
    snprintf(src, sizeof src, "%s/small.bin", l.dir);
    write_file(src, data, sizeof data);
    mk_id hash;
    assert_int_equal(mk_blobs_import(l.b[0], src, &hash, NULL, err), 0);

    /* A connection node 0 is serving when its service closes. */
    tu_probe held;
    tu_probe_start(&held, l.n[2], l.n[0], MK_ALPN_BLOBS);
    int64_t end = mk_mono_ms() + ms(&l, 5000);
    while (!held.connected && !held.ended && mk_mono_ms() < end)
        spin(&l, 10);
    assert_true(held.connected);
    spin(&l, 50); /* accepted on node 0's side too */

    bool closed = false;
    mk_blobs_close(l.b[0], on_flag, &closed);
    l.b[0] = NULL;
    assert_false(closed); /* from the loop, never from the call */
    end = mk_mono_ms() + ms(&l, 5000);
    while ((!closed || !held.ended) && mk_mono_ms() < end)
        spin(&l, 10);
    assert_true(closed);
    assert_true(held.ended);
    assert_int_equal(held.code, MK_CLOSE_GRACEFUL_SHUTDOWN);

    /* The node runs on without the ALPN: a new connection is refused. */
    tu_probe late;
    tu_probe_start(&late, l.n[2], l.n[0], MK_ALPN_BLOBS);
    end = mk_mono_ms() + ms(&l, 5000);
    while (!late.ended && mk_mono_ms() < end)
        spin(&l, 10);
    assert_true(late.ended);
    assert_int_equal(late.code, MK_CLOSE_INVALID_ALPN);

    /* ...and can serve blobs again, from the same store. */
    char d[300];
    snprintf(d, sizeof d, "%s/store0", l.dir);
    assert_int_equal(mk_blobs_new(l.n[0], d, &l.b[0], err), 0);
    int from0[] = {0};
    assert_int_equal(fetch(&l, &hash, from0, 1), 0);
    same_file(l.path, data, sizeof data);
    live_close(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tree_matches_blake3),
        cmocka_unit_test(wire_is_strict),
        cmocka_unit_test(fetches_verify_and_resume),
        cmocka_unit_test(closes_before_its_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
