/* libFuzzer target for what a group member reads from others: the group
 * link messages (HELLO, REQ, RESP, a member's STATUS), Raft log entries
 * (the envelope, through the exactly-once adapter as libraft would apply
 * them) and adapter snapshots (as an InstallSnapshot would restore them).
 *
 * Input: one byte choosing the decoder, then its bytes. Decodable messages
 * must re-encode to the same bytes (one encoding per message); the adapter
 * must never fail on garbage (it ignores what is not an envelope), and a
 * snapshot it accepts must snapshot back to the same bytes. Raft messages
 * as the bridge carries them (raft_wire.c): whatever decodes re-encodes
 * to bytes that decode to the same message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/testing/fsm_test.h"
#include "mosaik/group_internal.h"

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c))                                                             \
            abort();                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const mk_buf *b, const uint8_t *p, size_t n)
{
    CHECK(!b->err && b->len == n && memcmp(b->data, p, n) == 0);
}

/* The whole message (head and payloads) as the bridge would send it. */
static void raft_message_flat(const struct raft_message *m, mk_buf *out)
{
    mk__rmsg_parts parts;
    CHECK(mk__rmsg_encode(m, out, &parts) == 0);
    for (unsigned i = 0; i < parts.n; i++)
        mk_put_raw(out, parts.entries[i].buf.base, parts.entries[i].buf.len);
    if (parts.data_len)
        mk_put_raw(out, parts.data, parts.data_len);
    CHECK(!out->err);
}

static void raft_message_roundtrip(const uint8_t *p, size_t n)
{
    struct raft_message m, again;
    if (mk__rmsg_decode(p, n, &m) != 0)
        return;
    mk_buf once, twice;
    mk_buf_init(&once);
    mk_buf_init(&twice);
    raft_message_flat(&m, &once);
    CHECK(mk__rmsg_decode(once.data, once.len, &again) == 0);
    raft_message_flat(&again, &twice);
    CHECK(once.len == twice.len &&
          memcmp(once.data, twice.data, once.len) == 0);
    mk__rmsg_free(&m);
    mk__rmsg_free(&again);
    mk_buf_free(&once);
    mk_buf_free(&twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    mk_buf b;
    mk_buf_init(&b);
    switch (which % 6) {
    case 0: {
        if (which & 0x40) {
            /* A proof of membership: one encoding, and checking it never
             * reads past what was decoded. */
            mk_reader r;
            mk__proof pf;
            mk_reader_init(&r, p, n);
            if (mk__proof_decode(&r, &pf) == 0 && mk_reader_done(&r) == 0) {
                mk__proof_encode(&b, &pf);
                same(&b, p, n);
                mk_id gid;
                mk_id_hash(&gid, p, n);
                (void)mk__proof_check(&pf, &gid, &pf.voters[0]);
            }
            break;
        }
        mk__hello h;
        if (mk__hello_decode(p, n, &h) == 0) {
            mk__hello_encode(&b, &h);
            same(&b, p, n);
        }
        break;
    }
    case 1: {
        mk__req r;
        if (mk__req_decode(p, n, &r) == 0) {
            mk__req_encode(&b, &r);
            same(&b, p, n);
        }
        break;
    }
    case 2: {
        mk__resp r;
        if (mk__resp_decode(p, n, &r) == 0) {
            mk__resp_encode(&b, &r);
            same(&b, p, n);
        }
        break;
    }
    case 3: {
        mk_member_status s;
        if (mk__status_decode(p, n, &s) == 0) {
            mk__status_encode(&b, &s);
            /* Flags are re-derived from booleans: compare decoded views. */
            mk_member_status t;
            CHECK(mk__status_decode(b.data, b.len, &t) == 0);
            CHECK(t.st.applied == s.st.applied &&
                  t.st.n_voters == s.st.n_voters);
        }
        break;
    }
    case 4: {
        /* Log entries: split the input into entries at 0xff bytes and
         * apply them all to a log machine. */
        struct mk_fsm *f = mk_fsm_test_new(which & 0x40 ? "log" : "counter");
        mk__gfsm a;
        mk__gfsm_init(&a, f, NULL);
        a.max_sessions = 4;
        a.max_results = 3;
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && p[i] != 0xff)
                continue;
            CHECK(mk__gfsm_apply(&a, p + start, i - start) == 0);
            start = i + 1;
        }
        mk__envelope e;
        if (mk__env_parse(p, n, &e) == 0) {
            uint8_t *w = malloc(mk__env_size(e.len));
            mk__env_write(w, &e);
            CHECK(memcmp(w, p, MK__ENV_HDR + e.len) == 0);
            free(w);
        }
        mk__gfsm_free(&a);
        mk_fsm_test_free(f);
        break;
    }
    default: {
        if (which & 0x80) {
            raft_message_roundtrip(p, n);
            break;
        }
        struct mk_fsm *f = mk_fsm_test_new(which & 0x40 ? "log" : "register");
        mk__gfsm a;
        mk__gfsm_init(&a, f, NULL);
        if (mk__gfsm_restore(&a, p, n) == 0) {
            CHECK(mk__gfsm_snapshot(&a, &b) == 0);
            same(&b, p, n);
        }
        mk__gfsm_free(&a);
        mk_fsm_test_free(f);
    }
    }
    mk_buf_free(&b);
    return 0;
}
