/* Peer entries: canonical sets, signing, strict decoding, departures;
 * and the codec's bounds. */
#include <stdlib.h>
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/codec.h"
#include "mosaik/entry.h"
#include "mosaik/error.h"
#include "testutil.h"

static mk_keypair key_of(uint8_t b)
{
    uint8_t seed[32];
    memset(seed, b, sizeof seed);
    mk_keypair kp;
    mk_keypair_from_seed(&kp, seed);
    return kp;
}

static void ed25519_vectors(void **state)
{
    /* The seed of 32 zero bytes (reference/mosaik.md §1.8). */
    mk_keypair kp = key_of(0);
    assert_id_hex(&kp.pub,
                  "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29");
    uint8_t sig[64];
    mk_sign(&kp, "m", 1, sig);
    assert_int_equal(mk_verify(&kp.pub, "m", 1, sig), 0);
    sig[5] ^= 1;
    assert_int_equal(mk_verify(&kp.pub, "m", 1, sig), MK_EBAD_SIGNATURE);
}

static void build(mk_peer_entry *e, const mk_keypair *kp)
{
    mk_entry_init(e, &MK_UNIVERSE, &kp->pub, 1000);
    mk_id s1, s2, g;
    mk_id_from_str(&s1, "stream-b");
    mk_id_from_str(&s2, "stream-a");
    mk_id_from_str(&g, "group");
    assert_int_equal(mk_entry_add_addr(e, "127.0.0.1:7000"), 1);
    assert_int_equal(mk_entry_add_tag(e, "zeta"), 1);
    assert_int_equal(mk_entry_add_tag(e, "alpha"), 1);
    assert_int_equal(mk_entry_add_tag(e, "alpha"), 0); /* a set */
    assert_int_equal(mk_entry_add_stream(e, &s1), 1);
    assert_int_equal(mk_entry_add_stream(e, &s2), 1);
    assert_int_equal(mk_entry_add_group(e, &g), 1);
    mk_ticket t = {.data = (uint8_t *)"jwt", .len = 3};
    mk_id_from_str(&t.class, "mosaik.tickets.jwt.v1");
    assert_int_equal(mk_entry_add_ticket(e, &t), 1);
    assert_int_equal(mk_entry_add_ticket(e, &t), 0);
}

static void sign_decode_round_trip(void **state)
{
    mk_keypair kp = key_of(7);
    mk_peer_entry e, d;
    build(&e, &kp);
    assert_string_equal(e.tags[0], "alpha"); /* kept sorted */
    assert_int_equal(mk_entry_sign(&e, &kp), 0);
    assert_int_equal(mk_entry_decode(&d, e.wire, e.wire_len), 0);
    assert_true(mk_id_eq(&d.peer, &kp.pub));
    assert_int_equal(d.n_tags, 2);
    assert_true(mk_entry_has_tag(&d, "zeta"));
    assert_int_equal(d.n_streams, 2);
    assert_int_equal(d.n_tickets, 1);
    assert_memory_equal(d.tickets[0].data, "jwt", 3);
    assert_int_equal(mk_entry_version_cmp(&d, &e), 0);

    /* Any flipped bit is refused: body (signature fails) or signature. */
    for (size_t i = 0; i < e.wire_len; i++) {
        uint8_t *w = malloc(e.wire_len);
        memcpy(w, e.wire, e.wire_len);
        w[i] ^= 0x10;
        mk_peer_entry x;
        int rc = mk_entry_decode(&x, w, e.wire_len);
        if (rc == 0)
            fail_msg("flipping byte %zu was accepted", i);
        free(w);
    }
    /* Truncated or extended. */
    mk_peer_entry x;
    assert_int_not_equal(mk_entry_decode(&x, e.wire, e.wire_len - 1), 0);
    assert_int_not_equal(mk_entry_decode(&x, e.wire, 10), 0);

    /* Someone else's key cannot sign it. */
    mk_keypair other = key_of(8);
    assert_int_equal(mk_entry_sign(&e, &other), MK_EINVAL);
    mk_entry_free(&d);
    mk_entry_free(&e);
}

static void versions_and_bump(void **state)
{
    mk_keypair kp = key_of(1);
    mk_peer_entry a, b;
    mk_entry_init(&a, &MK_UNIVERSE, &kp.pub, 500);
    mk_entry_init(&b, &MK_UNIVERSE, &kp.pub, 500);
    mk_entry_bump(&b, 100); /* clock behind: still strictly newer */
    assert_int_equal(b.update_ms, 501);
    assert_true(mk_entry_version_cmp(&a, &b) < 0);
    mk_entry_bump(&b, 9000);
    assert_int_equal(b.update_ms, 9001);
    /* A restart (newer start) wins over any update of the old one. */
    mk_peer_entry c;
    mk_entry_init(&c, &MK_UNIVERSE, &kp.pub, 501);
    assert_true(mk_entry_version_cmp(&c, &b) > 0);
    mk_entry_free(&a);
    mk_entry_free(&b);
    mk_entry_free(&c);
}

static void bad_strings_and_limits(void **state)
{
    mk_keypair kp = key_of(2);
    mk_peer_entry e;
    mk_entry_init(&e, &MK_UNIVERSE, &kp.pub, 1);
    assert_int_equal(mk_entry_add_tag(&e, ""), MK_EINVAL);
    assert_int_equal(mk_entry_add_tag(&e, "a\nb"), MK_EINVAL);
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(mk_entry_add_tag(&e, big), MK_EINVAL);
    for (int i = 0; i < MK_ENTRY_MAX_TAGS; i++) {
        char t[8];
        snprintf(t, sizeof t, "t%d", i);
        assert_int_equal(mk_entry_add_tag(&e, t), 1);
    }
    assert_int_equal(mk_entry_add_tag(&e, "one-more"), MK_EFULL);
    assert_int_equal(mk_entry_remove_tag(&e, "t3"), 1);
    assert_int_equal(mk_entry_remove_tag(&e, "t3"), 0);
    mk_entry_free(&e);
}

/* Signed bytes of an entry of `kp` with one ticket of `ticket_len`
 * bytes, encoded by hand (mk_entry_sign refuses to make one too large). */
static uint8_t *forge(const mk_keypair *kp, size_t ticket_len, size_t *len)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_u8(&b, 1);
    mk_put_id(&b, &MK_UNIVERSE);
    mk_put_id(&b, &kp->pub);
    mk_put_i64(&b, 1000);
    mk_put_i64(&b, 1000);
    for (int list = 0; list < 4; list++)
        mk_put_varint(&b, 0); /* addrs, tags, streams, groups */
    size_t n_tickets = (ticket_len + MK_ENTRY_MAX_TICKET - 1) /
                       MK_ENTRY_MAX_TICKET;
    mk_put_varint(&b, n_tickets);
    uint8_t *data = calloc(1, MK_ENTRY_MAX_TICKET);
    /* Distinct classes, written in ticket-id order (entry.h). */
    mk_id ids[8], classes[8];
    assert_true(n_tickets <= 8);
    size_t left = ticket_len;
    size_t lens[8];
    for (size_t i = 0; i < n_tickets; i++) {
        lens[i] = left > MK_ENTRY_MAX_TICKET ? MK_ENTRY_MAX_TICKET : left;
        left -= lens[i];
        memset(&classes[i], (int)i + 1, sizeof classes[i]);
        mk_ticket t = {.class = classes[i], .data = data, .len = lens[i]};
        mk_ticket_id(&t, &ids[i]);
    }
    size_t order[8];
    for (size_t i = 0; i < n_tickets; i++)
        order[i] = i;
    for (size_t i = 0; i < n_tickets; i++)
        for (size_t j = i + 1; j < n_tickets; j++)
            if (mk_id_cmp(&ids[order[j]], &ids[order[i]]) < 0) {
                size_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    for (size_t k = 0; k < n_tickets; k++) {
        mk_put_id(&b, &classes[order[k]]);
        mk_put_bytes(&b, data, lens[order[k]]);
    }
    free(data);
    uint8_t digest[32], sig[MK_SIG_LEN];
    mk_blake3(b.data, b.len, digest);
    mk_sign(kp, digest, sizeof digest, sig);
    mk_put_raw(&b, sig, sizeof sig);
    assert_int_equal(b.err, 0);
    return mk_buf_detach(&b, len);
}

/* An entry over MK_ENTRY_MAX_WIRE is refused at decode, however valid its
 * signature; one at the bound is fine; and nobody can sign one over it. */
static void oversized_entries_refused(void **state)
{
    mk_keypair kp = key_of(9);
    size_t len;
    mk_peer_entry e;
    /* The ~157 KB entries of the flood that took discovery down. */
    uint8_t *w = forge(&kp, 8 * MK_ENTRY_MAX_TICKET, &len);
    assert_true(len > 60000);
    assert_int_equal(mk_entry_decode(&e, w, len), MK_EMSGSIZE);
    free(w);
    /* Exactly at the bound, and one byte over. */
    size_t ticket = MK_ENTRY_MAX_WIRE - 400;
    w = forge(&kp, ticket, &len);
    ticket += MK_ENTRY_MAX_WIRE - len;
    free(w);
    w = forge(&kp, ticket, &len);
    assert_int_equal(len, MK_ENTRY_MAX_WIRE);
    assert_int_equal(mk_entry_decode(&e, w, len), 0);
    mk_entry_free(&e);
    free(w);
    w = forge(&kp, ticket + 1, &len);
    assert_int_equal(len, MK_ENTRY_MAX_WIRE + 1);
    assert_int_equal(mk_entry_decode(&e, w, len), MK_EMSGSIZE);
    free(w);

    /* Signing: refused, and the entry keeps no wire form. */
    mk_entry_init(&e, &MK_UNIVERSE, &kp.pub, 1);
    uint8_t *data = calloc(1, MK_ENTRY_MAX_TICKET);
    for (int i = 0; i < 2; i++) {
        mk_ticket t = {.data = data, .len = MK_ENTRY_MAX_TICKET};
        memset(&t.class, i + 1, sizeof t.class);
        assert_int_equal(mk_entry_add_ticket(&e, &t), 1);
    }
    free(data);
    assert_int_equal(mk_entry_sign(&e, &kp), MK_EMSGSIZE);
    assert_null(e.wire);
    mk_entry_remove_tickets_of(&e, &e.tickets[0].class);
    assert_int_equal(mk_entry_sign(&e, &kp), 0);
    assert_true(e.wire_len <= MK_ENTRY_MAX_WIRE);
    mk_entry_free(&e);
}

static void departures(void **state)
{
    mk_keypair kp = key_of(3);
    mk_peer_entry e;
    build(&e, &kp);
    mk_departure d, back;
    mk_departure_make(&d, &e, &kp, 12345);
    uint8_t w[MK_DEPARTURE_WIRE_LEN];
    mk_departure_encode(&d, w);
    assert_int_equal(mk_departure_decode(&back, w, sizeof w), 0);
    assert_int_equal(back.at_ms, 12345);
    assert_int_equal(back.update_ms, e.update_ms);
    w[70] ^= 1; /* the version it departs */
    assert_int_equal(mk_departure_decode(&back, w, sizeof w),
                     MK_EBAD_SIGNATURE);
    assert_int_equal(mk_departure_decode(&back, w, sizeof w - 1), MK_EDECODE);
    mk_entry_free(&e);
}

static void codec_bounds(void **state)
{
    mk_buf b;
    mk_buf_init(&b);
    mk_put_varint(&b, 0);
    mk_put_varint(&b, 300);
    mk_put_varint(&b, UINT64_MAX);
    mk_put_i64(&b, -5);
    mk_put_i64(&b, INT64_MIN);
    mk_put_str(&b, "hi");
    mk_reader r;
    mk_reader_init(&r, b.data, b.len);
    assert_int_equal(mk_get_varint(&r), 0);
    assert_int_equal(mk_get_varint(&r), 300);
    assert_true(mk_get_varint(&r) == UINT64_MAX);
    assert_int_equal(mk_get_i64(&r), -5);
    assert_true(mk_get_i64(&r) == INT64_MIN);
    char *s = mk_get_strdup(&r, 10);
    assert_string_equal(s, "hi");
    free(s);
    assert_int_equal(mk_reader_done(&r), 0);
    mk_buf_free(&b);

    /* Overlong, too long, lengths past the end, counts too big. */
    const uint8_t overlong[] = {0x80, 0x00};
    mk_reader_init(&r, overlong, 2);
    mk_get_varint(&r);
    assert_int_equal(r.err, MK_EDECODE);
    const uint8_t eleven[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 0xff, 0x01};
    mk_reader_init(&r, eleven, sizeof eleven);
    mk_get_varint(&r);
    assert_int_equal(r.err, MK_EDECODE);
    const uint8_t len_past_end[] = {0x05, 'a', 'b'};
    size_t n;
    mk_reader_init(&r, len_past_end, 3);
    assert_null(mk_get_bytes(&r, &n, 100));
    assert_int_equal(r.err, MK_EDECODE);
    const uint8_t count[] = {0x64, 0, 0, 0};
    mk_reader_init(&r, count, 4);
    assert_int_equal(mk_get_count(&r, 1000, 32), 0);
    assert_int_equal(r.err, MK_EDECODE);
    const uint8_t nul[] = {0x03, 'a', 0, 'b'};
    mk_reader_init(&r, nul, 4);
    assert_null(mk_get_strdup(&r, 10));
    /* Sticky: later reads keep failing and return zeroes. */
    assert_int_equal(mk_get_u8(&r), 0);
    assert_int_equal(mk_reader_done(&r), MK_EDECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ed25519_vectors),
        cmocka_unit_test(sign_decode_round_trip),
        cmocka_unit_test(versions_and_bump),
        cmocka_unit_test(bad_strings_and_limits),
        cmocka_unit_test(oversized_entries_refused),
        cmocka_unit_test(departures),
        cmocka_unit_test(codec_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
