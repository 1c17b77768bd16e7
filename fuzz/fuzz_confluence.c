/* libFuzzer target for what a confluence decodes: its commands (as any
 * client may submit them to a member, and as the state machine applies
 * them), its snapshots (as a replica restores them from a member's feed),
 * and the commit, spread and retirement bodies readers decode.
 *
 * Input: one byte choosing the decoder, then its bytes.
 *   0  raw commands, each a u16le length then bytes, applied in order:
 *      apply() must never fail on garbage (a malformed command is a
 *      refusal, not a stopped committee)
 *   1  a program of well-signed commands (so the fuzzer reaches the fold,
 *      the stall rules and retirement): op bytes then arguments; two
 *      replicas fed it must hold identical snapshots, and a restore of
 *      that snapshot must snapshot back to the same bytes
 *   2  a snapshot: restore() either refuses it (state unchanged) or takes
 *      it, and then snapshots back to the same bytes
 *   3  a commit, 4 a spread: decodable means it re-encodes to the same
 *      bytes
 *   5  a retirement marker's body
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coalition/confluence.h"
#include "coalition/fx_correlator.h"
#include "mosaik/error.h"

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c))                                                             \
            abort();                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mk_keypair keys[2];
static char hex[2][MK_ID_HEX_LEN + 1];
static const char *issuers[2];
static const co_organism_ref A = {.role = "oracle", .instance = "a"};
static const co_organism_ref B = {.role = "oracle", .instance = "b"};
static const co_citizen_ref AB[] = {{.organism = &A}, {.organism = &B}};
static co_confluence_config cfg;
static co_confluence_def def;

static void init(void)
{
    if (issuers[0])
        return;
    for (int i = 0; i < 2; i++) {
        uint8_t seed[32];
        memset(seed, 1 + i, sizeof seed);
        mk_keypair_from_seed(&keys[i], seed);
        mk_id_hex(&keys[i].pub, hex[i]);
        issuers[i] = hex[i];
    }
    cfg = (co_confluence_config){
        .name = "fx",
        CO_LIST(organisms, AB),
        .content = "fx-correlator/v1;clock=c;stall=partial;bound_ticks=2",
        .acl = {.issuers = issuers, .n_issuers = 2},
    };
    CHECK(co_fx_correlator_define(&cfg, &def, NULL) == 0);
}

static void same_snapshot(struct mk_fsm *a, struct mk_fsm *b)
{
    mk_buf x, y;
    mk_buf_init(&x);
    mk_buf_init(&y);
    CHECK(a->snapshot(a, &x) == 0 && b->snapshot(b, &y) == 0);
    CHECK(x.len == y.len && memcmp(x.data, y.data, x.len) == 0);
    mk_buf_free(&x);
    mk_buf_free(&y);
}

static void apply_both(struct mk_fsm *a, struct mk_fsm *b, mk_buf *cmd)
{
    mk_buf r;
    mk_buf_init(&r);
    CHECK(a->apply(a, cmd->data, cmd->len, &r) == 0);
    mk_buf_reset(&r);
    CHECK(b->apply(b, cmd->data, cmd->len, &r) == 0);
    mk_buf_free(&r);
    mk_buf_reset(cmd);
}

static void program(const uint8_t *p, size_t n)
{
    struct mk_fsm a, b, c;
    CHECK(co_confluence_fsm_init(&a, &def, NULL) == 0);
    CHECK(co_confluence_fsm_init(&b, &def, NULL) == 0);
    const co_confluence_info *info = co_confluence_fsm_info(&a);
    mk_buf cmd, fact;
    mk_buf_init(&cmd);
    mk_buf_init(&fact);
    for (size_t i = 0; i + 4 <= n && i < 4 * 48; i += 4) {
        uint8_t op = p[i], x = p[i + 1], y = p[i + 2], z = p[i + 3];
        const mk_keypair *who = &keys[op >> 7];
        switch (op & 3) {
        case 0:
        case 1: { /* a price update from feed op&1 */
            co_price_update u = {.epoch_ms = x >> 4, .seq = 1u + y,
                                 .unix_ms = z, .price_micro = (int8_t)z};
            memcpy(u.pair, "EURUSD", 7);
            mk_buf_reset(&fact);
            CHECK(co_price_update_encode(&u, &fact) == 0);
            co_confluence_cmd_fact(&cmd, info, op & 1, fact.data, fact.len,
                                   (int8_t)x, who);
            break;
        }
        case 2:
            co_confluence_cmd_tick(&cmd, info, (uint64_t)x << 8 | y, z, who);
            break;
        default: {
            mk_id succ;
            memset(succ.b, z, sizeof succ.b);
            co_confluence_cmd_retire(&cmd, info, x & 1 ? "r" : "",
                                     y & 1 ? &succ : NULL, who);
        }
        }
        apply_both(&a, &b, &cmd);
    }
    same_snapshot(&a, &b);
    mk_buf s;
    mk_buf_init(&s);
    CHECK(a.snapshot(&a, &s) == 0);
    CHECK(co_confluence_fsm_init(&c, &def, NULL) == 0);
    CHECK(c.restore(&c, s.data, s.len) == 0);
    same_snapshot(&a, &c);
    mk_buf_free(&s);
    mk_buf_free(&cmd);
    mk_buf_free(&fact);
    co_confluence_fsm_free(&a);
    co_confluence_fsm_free(&b);
    co_confluence_fsm_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    init();
    uint8_t which = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct mk_fsm f;
    mk_buf b;
    mk_buf_init(&b);
    switch (which % 6) {
    case 0: {
        CHECK(co_confluence_fsm_init(&f, &def, NULL) == 0);
        while (n >= 2) {
            size_t len = (size_t)p[0] | (size_t)p[1] << 8;
            p += 2;
            n -= 2;
            if (len > n)
                len = n;
            mk_buf_reset(&b);
            CHECK(f.apply(&f, p, len, &b) == 0);
            p += len;
            n -= len;
        }
        co_confluence_fsm_free(&f);
        break;
    }
    case 1:
        program(p, n);
        break;
    case 2: {
        CHECK(co_confluence_fsm_init(&f, &def, NULL) == 0);
        mk_buf before;
        mk_buf_init(&before);
        CHECK(f.snapshot(&f, &before) == 0);
        if (f.restore(&f, p, n) == 0) {
            CHECK(f.snapshot(&f, &b) == 0);
            CHECK(b.len == n && memcmp(b.data, p, n) == 0);
        } else {
            CHECK(f.snapshot(&f, &b) == 0);
            CHECK(b.len == before.len &&
                  memcmp(b.data, before.data, b.len) == 0);
        }
        mk_buf_free(&before);
        co_confluence_fsm_free(&f);
        break;
    }
    case 3: {
        co_confluence_commit c;
        if (co_confluence_commit_decode(&c, p, n) == 0) {
            CHECK(co_confluence_commit_encode(&c, &b) == 0);
            CHECK(b.len == n && memcmp(b.data, p, n) == 0);
            co_confluence_retirement r;
            (void)co_confluence_retirement_of(&c, &r);
        }
        break;
    }
    case 4: {
        co_fx_spread s;
        if (co_fx_spread_decode(&s, p, n) == 0) {
            CHECK(co_fx_spread_encode(&s, &b) == 0);
            CHECK(b.len == n && memcmp(b.data, p, n) == 0);
        }
        break;
    }
    default: {
        co_confluence_commit c = {.index = 1, .kind = CO_COMMIT_RETIRED,
                                  .body = p, .body_len = n};
        co_confluence_retirement r;
        if (co_confluence_retirement_of(&c, &r) == 0)
            CHECK(r.retired && strlen(r.reason) < sizeof r.reason);
    }
    }
    mk_buf_free(&b);
    return 0;
}
