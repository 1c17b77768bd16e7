/* Ids from strings, derivation and hex (include/mosaik/id.h).
 *
 * The rules are mosaik's, byte for byte: id() passes exactly-64-hex strings
 * through and hashes everything else; derive() is blake3(x ‖ label) in the
 * plain hash mode (not keyed, not derive_key).
 */
#include "mosaik/id.h"

#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/error.h"

/* blake3("mosaik.universe"), checked against id() in tests/unit/test_id.c. */
const mk_id MK_UNIVERSE = {{
    0xb8, 0x2b, 0x6f, 0x3b, 0x4a, 0x1e, 0x53, 0xd2, 0xd5, 0x65, 0x23,
    0xf5, 0xa7, 0xb1, 0x97, 0x4e, 0x38, 0x42, 0xac, 0x37, 0xa0, 0x68,
    0xcc, 0x30, 0x22, 0x86, 0x06, 0x5a, 0x88, 0x53, 0xcf, 0x43,
}};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void mk_hex_encode(const void *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = bytes;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

int mk_hex_decode(void *out, size_t len, const char *hex, size_t hex_len)
{
    if (hex_len != 2 * len)
        return MK_EINVAL;
    for (size_t i = 0; i < hex_len; i++)
        if (hexval(hex[i]) < 0)
            return MK_EINVAL;
    uint8_t *p = out;
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    return 0;
}

bool mk_id_is_hex(const char *s, size_t len)
{
    if (len != MK_ID_HEX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (hexval(s[i]) < 0)
            return false;
    return true;
}

int mk_id_from_hex(mk_id *out, const char *hex, size_t len)
{
    return mk_hex_decode(out->b, MK_ID_LEN, hex, len);
}

void mk_id_from_strn(mk_id *out, const char *s, size_t len)
{
    if (mk_id_from_hex(out, s, len) != 0)
        mk_id_hash(out, s, len);
}

void mk_id_from_str(mk_id *out, const char *s)
{
    mk_id_from_strn(out, s, strlen(s));
}

void mk_id_hash(mk_id *out, const void *data, size_t len)
{
    mk_blake3(data, len, out->b);
}

void mk_id_derive(mk_id *out, const mk_id *x, const void *label, size_t len)
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, x->b, MK_ID_LEN);
    mk_blake3_update(&h, label, len);
    mk_blake3_final(&h, out->b, MK_ID_LEN);
}

void mk_id_derive_str(mk_id *out, const mk_id *x, const char *label)
{
    mk_id_derive(out, x, label, strlen(label));
}

char *mk_id_hex(const mk_id *id, char out[MK_ID_HEX_LEN + 1])
{
    mk_hex_encode(id->b, MK_ID_LEN, out);
    return out;
}

int mk_id_cmp(const mk_id *a, const mk_id *b)
{
    return memcmp(a->b, b->b, MK_ID_LEN);
}
