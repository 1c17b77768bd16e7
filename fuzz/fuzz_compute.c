/* libFuzzer target for the Compute state machine
 * (src/coalition/compute_internal.h): everything anyone can send a
 * committee member, and the snapshots a replica restores.
 *
 * Input: one byte choosing the mode, then:
 *  0  raw commands (u16 length, bytes; repeated), applied in order: apply
 *     never fails, answers every command with an outcome, and the
 *     machine's invariants (no provider over-committed, used = its
 *     grants, the queue exact) hold after each;
 *  1  a snapshot to restore: refused, or restored and snapshotting back
 *     to exactly the same bytes;
 *  2  a script of well-formed, correctly signed commands built from the
 *     bytes (providers registering, heartbeating, departing; requests;
 *     outputs; logs; clocks), so the fuzzer reaches matching, expiry and
 *     re-matching rather than stopping at signatures; invariants after
 *     each, and a replica restored from the final snapshot equals it;
 *  3  a command result to decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/compute_internal.h"
#include "mosaik/error.h"

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c))                                                             \
            abort();                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const co_confluence_config CFG = {
    .name = "compute",
    .content = "compute/v1;clock_ms=100;heartbeat_ms=200;missed=2;"
               "queue_ms=2000;output_max=100;keep=4",
};

/* The harness's keys, made once: deriving Ed25519 keys per input would
 * dominate the run. */
static struct {
    bool ready;
    co_module_info m;
    mk_keypair member, provs[4], user;
} K;

static void keys(void)
{
    if (K.ready)
        return;
    uint8_t seed[32];
    memset(seed, 1, sizeof seed);
    mk_keypair_from_seed(&K.member, seed);
    for (int i = 0; i < 4; i++) {
        memset(seed, 0x20 + i, sizeof seed);
        mk_keypair_from_seed(&K.provs[i], seed);
    }
    memset(seed, 0x40, sizeof seed);
    mk_keypair_from_seed(&K.user, seed);
    K.m.kind = CO_MODULE_COMPUTE;
    K.m.config = &CFG;
    mk_id_from_str(&K.m.root, "fuzz-compute");
    K.m.committee[0] = K.member.pub;
    K.m.n_committee = 1;
    K.ready = true;
}

static void apply(struct mk_fsm *f, const uint8_t *cmd, size_t len)
{
    mk_buf res;
    mk_buf_init(&res);
    int rc = f->apply(f, cmd, len, &res);
    CHECK(rc == 0 || rc == MK_ENOMEM);
    if (rc == 0)
        CHECK(res.len >= 1 && res.data[0] <= 2);
    mk_buf_free(&res);
    CHECK(co__compute_check(f) == NULL);
}

static void same_state(struct mk_fsm *a, struct mk_fsm *b)
{
    mk_buf x, y;
    mk_buf_init(&x);
    mk_buf_init(&y);
    CHECK(a->snapshot(a, &x) == 0 && b->snapshot(b, &y) == 0);
    CHECK(x.len == y.len && memcmp(x.data, y.data, x.len) == 0);
    mk_buf_free(&x);
    mk_buf_free(&y);
}

static void script(struct mk_fsm *f, const uint8_t *p, size_t n)
{
    int64_t now = 1000000, nonce = 1;
    mk_id ids[16];
    size_t n_ids = 0;
    mk_buf cmd;
    mk_buf_init(&cmd);
    for (size_t at = 0; at + 4 <= n; at += 4) {
        const uint8_t *o = p + at;
        int who = o[1] % 4;
        mk_buf_reset(&cmd);
        switch (o[0] % 7) {
        case 0: {
            co_provider_card c = {.provider = K.provs[who].pub,
                                  .capacity = {o[2] * 100u + 1, o[3] * 8u + 1,
                                               o[2] % 4 * 100u},
                                  .tdx_capable = o[3] & 1,
                                  .nonce = nonce++};
            co__compute_cmd_register(&cmd, &K.m.root, &c, &K.provs[who]);
            break;
        }
        case 1:
            co__compute_cmd_heartbeat(&cmd, &K.m.root,
                                      o[2] & 1 ? CO__COMPUTE_DEPART
                                               : CO__COMPUTE_HEARTBEAT,
                                      nonce++, &K.provs[who]);
            break;
        case 2: {
            co_compute_request q = {.min = {o[2] * 50u + 1, o[3] * 4u + 1, 0},
                                    .tdx = (o[1] & 0x10) != 0,
                                    .valid_for_ms = 1000 + o[3] * 10u};
            mk_id_from_str(&q.image_hash, "img");
            co_compute_request_id(&K.user.pub, &q.image_hash, o[2] % 16,
                                  &q.request_id);
            if (n_ids < 16)
                ids[n_ids++] = q.request_id;
            co__compute_cmd_submit(&cmd, &K.m.root, &q, &K.user);
            break;
        }
        case 3:
            if (!n_ids)
                continue;
            co__compute_cmd_output(&cmd, &K.m.root, &ids[o[2] % n_ids],
                                   1 + o[3] % 3, o[3] % 4, 1 + (o[1] & 1),
                                   "0123456789", o[2] % 11 + 1,
                                   &K.provs[who]);
            break;
        case 4: {
            if (!n_ids)
                continue;
            co_compute_log l = {.request_id = ids[o[2] % n_ids],
                                .attempt = 1 + o[3] % 3,
                                .provider = K.provs[who].pub,
                                .exit = 1 + o[3] % 7,
                                .code = o[2]};
            co__compute_cmd_log(&cmd, &K.m.root, &l, &K.provs[who]);
            break;
        }
        default:
            now += o[2] * 10 + 1;
            co__compute_cmd_clock(&cmd, &K.m.root, now, &K.member);
            break;
        }
        CHECK(cmd.err == 0);
        apply(f, cmd.data, cmd.len);
    }
    mk_buf_free(&cmd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    keys();
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct mk_fsm f, g;
    CHECK(co__compute_fsm_init(&f, &K.m) == 0);
    CHECK(co__compute_fsm_init(&g, &K.m) == 0);
    switch (data[0] % 4) {
    case 0:
        for (size_t at = 0; at + 2 <= n;) {
            size_t len = (size_t)p[at] << 8 | p[at + 1];
            at += 2;
            if (len > n - at)
                len = n - at;
            apply(&f, p + at, len);
            at += len;
        }
        break;
    case 1:
        if (f.restore(&f, p, n) == 0) {
            mk_buf b;
            mk_buf_init(&b);
            CHECK(f.snapshot(&f, &b) == 0);
            CHECK(b.len == n && memcmp(b.data, p, n) == 0);
            mk_buf_free(&b);
            CHECK(co__compute_check(&f) == NULL);
        }
        break;
    case 2: {
        script(&f, p, n);
        mk_buf snap;
        mk_buf_init(&snap);
        CHECK(f.snapshot(&f, &snap) == 0);
        CHECK(g.restore(&g, snap.data, snap.len) == 0);
        same_state(&f, &g);
        mk_buf_free(&snap);
        break;
    }
    default: {
        co_compute_answer a;
        for (uint8_t kind = 1; kind <= CO__COMPUTE_CLOCK; kind++)
            if (co__compute_answer_decode(kind, p, n, &a) == 0)
                CHECK(a.outcome <= 2);
        break;
    }
    }
    co__compute_fsm_free(&f);
    co__compute_fsm_free(&g);
    return 0;
}
