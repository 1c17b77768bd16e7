/* mk_id: id() with the hex passthrough, derive, hex, compare, UNIVERSE.
 * Expected values come from ../shared/vectors/identity.json and from the
 * mosaik vectors (computed with b3sum; reference/mosaik.md §1.8). */
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/id.h"
#include "testutil.h"

static void primitives_from_vectors(void **state)
{
    json_t *v = tu_load_vectors("identity.json");
    json_t *p = json_object_get(v, "primitives");
    mk_id id;

    mk_id_from_str(&id, "mosaik.universe");
    assert_id_hex(&id, json_string_value(json_object_get(
                           p, "id(\"mosaik.universe\")")));
    assert_true(mk_id_eq(&id, &MK_UNIVERSE));

    mk_id_from_str(&id, "");
    assert_id_hex(&id, json_string_value(json_object_get(p, "id(\"\")")));

    const char *hex =
        "0123456789abcdef0123456789abcdef0123456789ABCDEF0123456789abcdef";
    char key[128];
    snprintf(key, sizeof key, "id(\"%s\")", hex);
    mk_id_from_str(&id, hex);
    assert_id_hex(&id, json_string_value(json_object_get(p, key)));

    mk_id_derive_str(&id, &MK_UNIVERSE, "module");
    assert_id_hex(&id, json_string_value(json_object_get(
                           p, "derive(UNIVERSE, \"module\")")));
    json_decref(v);
}

static void mosaik_vectors(void **state)
{
    mk_id id, net;
    mk_id_from_str(&net, "my-network");
    assert_id_hex(&net,
                  "3a15da9332ddf3c130882c97f6674a45edf90ecbe482c92f51b1822ec7dcf0d5");
    /* 63 hex characters are not an id: they are hashed. */
    mk_id_from_str(&id,
                   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde");
    assert_id_hex(&id,
                  "c3057f3c98aee9501593ebe9ed6e1f204bca4e29534cd675bfa4585913a9d887");
    mk_id_derive_str(&id, &net, "sub-identifier");
    assert_id_hex(&id,
                  "6cc668ea945234753ba9147fc0fc7b82de35f2193dadf7d29d61b190c7cecd59");
    mk_id_hash(&id, net.b, sizeof net.b);
    assert_id_hex(&id,
                  "1db7b64ae321313036750abd8b8cbe8ee10438b7a50984ef88f8daceeedea5e4");
    mk_id_from_str(&id, "mosaik.example.group-chat");
    mk_id_derive_str(&id, &id, "lobby"); /* out aliases x */
    assert_id_hex(&id,
                  "877442de48f7be078d296b2cd6fbb650ad0c9fc057972139bd32e0acef0970af");
}

static void passthrough_edges(void **state)
{
    const char *h64 =
        "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    char buf[80];
    mk_id a, b;

    mk_id_from_str(&a, h64);
    assert_int_equal(a.b[0], 0x00);
    assert_int_equal(a.b[31], 0xff);

    /* 65 characters, a 0x prefix, whitespace and a non-hex character all
     * fall through to hashing. */
    snprintf(buf, sizeof buf, "%s0", h64);
    mk_id_from_str(&b, buf);
    mk_id_hash(&a, buf, strlen(buf));
    assert_true(mk_id_eq(&a, &b));

    snprintf(buf, sizeof buf, "0x%.62s", h64);
    mk_id_from_str(&b, buf);
    mk_id_hash(&a, buf, strlen(buf));
    assert_true(mk_id_eq(&a, &b));

    snprintf(buf, sizeof buf, " %.63s", h64);
    mk_id_from_str(&b, buf);
    mk_id_hash(&a, buf, strlen(buf));
    assert_true(mk_id_eq(&a, &b));

    snprintf(buf, sizeof buf, "%.63sg", h64);
    assert_false(mk_id_is_hex(buf, strlen(buf)));
    mk_id_from_str(&b, buf);
    mk_id_hash(&a, buf, strlen(buf));
    assert_true(mk_id_eq(&a, &b));

    /* from_strn does not need a terminator. */
    mk_id_from_strn(&a, "mosaik.universe-and-more", 15);
    assert_true(mk_id_eq(&a, &MK_UNIVERSE));
}

static void hex_roundtrip_and_errors(void **state)
{
    char hex[MK_ID_HEX_LEN + 1];
    mk_id a, b;
    mk_id_hash(&a, "x", 1);
    mk_id_hex(&a, hex);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(mk_id_from_hex(&b, hex, 64), 0);
    assert_true(mk_id_eq(&a, &b));

    mk_id untouched = b;
    assert_int_equal(mk_id_from_hex(&b, hex, 63), MK_EINVAL);
    hex[10] = 'z';
    assert_int_equal(mk_id_from_hex(&b, hex, 64), MK_EINVAL);
    assert_true(mk_id_eq(&b, &untouched));

    uint8_t raw[3];
    assert_int_equal(mk_hex_decode(raw, 3, "0aFf10", 6), 0);
    assert_int_equal(raw[1], 0xff);
    assert_int_equal(mk_hex_decode(raw, 3, "0aFf1", 5), MK_EINVAL);
}

static void compare_orders_bytes(void **state)
{
    mk_id a = {{0}}, b = {{0}};
    b.b[31] = 1;
    assert_true(mk_id_cmp(&a, &b) < 0);
    assert_true(mk_id_cmp(&b, &a) > 0);
    a.b[0] = 1;
    assert_true(mk_id_cmp(&a, &b) > 0);
    assert_false(mk_id_eq(&a, &b));
}

static void error_table(void **state)
{
    assert_string_equal(mk_err_name(MK_ECONNECT_TIMEOUT),
                        "MK_ECONNECT_TIMEOUT");
    assert_string_equal(mk_strerror(MK_EINVAL), "invalid argument");
    assert_string_equal(mk_err_name(-99999), "MK_EUNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(primitives_from_vectors),
        cmocka_unit_test(mosaik_vectors),
        cmocka_unit_test(passthrough_edges),
        cmocka_unit_test(hex_roundtrip_and_errors),
        cmocka_unit_test(compare_orders_bytes),
        cmocka_unit_test(error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
