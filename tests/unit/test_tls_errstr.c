/* TLS error text when OpenSSL was started without its reason strings, as
 * coalitiond starts it: the packed code must still reach the message,
 * with the command that names it, and the queue must be left empty. */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mosaik/tls.h"

static void code_without_strings(void **state)
{
    (void)state;
    char buf[160];
    ERR_raise(ERR_LIB_SSL, SSL_R_NO_SHARED_CIPHER);
    unsigned long e = ERR_peek_error();
    mk__tls_errstr(buf, sizeof buf);
    char want[64];
    snprintf(want, sizeof want, "openssl errstr %08lX", e);
    assert_non_null(strstr(buf, want));
    assert_int_equal(ERR_peek_error(), 0);
}

static void empty_queue_empty_text(void **state)
{
    (void)state;
    char buf[64] = "stale";
    mk__tls_errstr(buf, sizeof buf);
    assert_string_equal(buf, "");
}

int main(void)
{
    /* Before anything else in the process starts OpenSSL. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
                            OPENSSL_INIT_NO_LOAD_CONFIG,
                        NULL);
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(code_without_strings),
        cmocka_unit_test(empty_queue_empty_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
