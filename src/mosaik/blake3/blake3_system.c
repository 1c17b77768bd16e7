/* BLAKE3 through the system libblake3, built instead of blake3.c and the
 * back ends when Meson finds one (option system_blake3): the same API,
 * the upstream hasher kept inside mk_blake3_hasher's `sys` space.
 */
#include "blake3_impl.h"

#include <blake3.h>

_Static_assert(sizeof(blake3_hasher) <= sizeof(((mk_blake3_hasher *)0)->sys),
               "libblake3's hasher does not fit in mk_blake3_hasher");
_Static_assert(_Alignof(blake3_hasher) <= _Alignof(mk_blake3_hasher),
               "libblake3's hasher needs more alignment than we give");

/* The space is only ever handed to libblake3, which alone accesses it as
 * a blake3_hasher. */
static blake3_hasher *sys(mk_blake3_hasher *h)
{
    return (blake3_hasher *)(void *)h->sys;
}

void mk_blake3_init(mk_blake3_hasher *h)
{
    blake3_hasher_init(sys(h));
}

void mk_blake3_init_keyed(mk_blake3_hasher *h,
                          const uint8_t key[MK_BLAKE3_KEY_LEN])
{
    blake3_hasher_init_keyed(sys(h), key);
}

void mk_blake3_update(mk_blake3_hasher *h, const void *data, size_t len)
{
    blake3_hasher_update(sys(h), data, len);
}

void mk_blake3_final(const mk_blake3_hasher *h, uint8_t *out, size_t out_len)
{
    blake3_hasher_finalize((const blake3_hasher *)(const void *)h->sys, out,
                           out_len);
}

void mk_blake3(const void *data, size_t len, uint8_t out[MK_BLAKE3_OUT_LEN])
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, data, len);
    mk_blake3_final(&h, out, MK_BLAKE3_OUT_LEN);
}

const char *mk_blake3_impl(void)
{
    return "libblake3";
}

/* libblake3 picks its own SIMD path; there is no choice to forget. */
void mk__blake3_reset(void)
{
}

const char *mk__blake3_backend(void)
{
    return "libblake3";
}
