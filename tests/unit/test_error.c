/* Error texts: every negated errno reads as the C library's text, the
 * substrate's and the coalition layer's codes as their tables say. */
#include <errno.h>
#include <string.h>

#include "coalition/error.h"
#include "mosaik/error.h"
#include "testutil.h"

static void errno_values_have_text(void **state)
{
    (void)state;
    const int codes[] = {EROFS, ENOTDIR, EISDIR, EMFILE, ENFILE, ENOSPC,
                         ELOOP, ENAMETOOLONG, ETXTBSY, EXDEV, EPERM};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *want = strerror(codes[i]);
        assert_string_equal(mk_strerror(-codes[i]), want);
        assert_string_equal(co_strerror(-codes[i]), want);
        assert_string_not_equal(mk_strerror(-codes[i]), "unknown error");
    }
}

static void table_codes_keep_their_text(void **state)
{
    (void)state;
    assert_string_equal(mk_strerror(MK_ENOMEM), "out of memory");
    assert_string_equal(mk_strerror(MK_ETLS), "TLS failure");
    assert_string_equal(mk_strerror(0), "success");
    assert_string_equal(mk_err_name(MK_ETIMEDOUT), "MK_ETIMEDOUT");
    /* Not errno and not in any table. */
    assert_string_equal(mk_strerror(-3999), "unknown error");
    assert_string_equal(mk_strerror(12345), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errno_values_have_text),
        cmocka_unit_test(table_codes_keep_their_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
