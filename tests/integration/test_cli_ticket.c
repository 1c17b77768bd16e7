/* `coalition keygen` and `coalition ticket issue|verify` end to end: key
 * files are 0600 and never replaced, loose key files are refused, an issued
 * ticket verifies (argument and stdin), any tampering or mismatch exits 1
 * with the reason, and bad arguments exit 2 naming the argument with
 * nothing on stdout. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"

/* blake3("my-coalition"), computed with b3sum */
#define ROOT_HEX "622a3624e5ef9b88a712ec65ab9ac707ab985a4f6f09d4771f2d334846ab8685"
#define SUB "00000000000000000000000000000000000000000000000000000000000000a7"
#define OTHER "00000000000000000000000000000000000000000000000000000000000000a8"

typedef struct fixture {
    char coalition[4096];
    char dir[64];
    char key[128];  /* made by keygen in setup */
    char pub[65];
} fixture;

/* Runs `coalition` with up to 15 arguments (NULL-terminated). */
static proc_result run_in(const fixture *f, const char *stdin_text, ...)
{
    char *argv[17];
    int n = 0;
    argv[n++] = (char *)f->coalition;
    va_list ap;
    va_start(ap, stdin_text);
    for (const char *a; n < 16 && (a = va_arg(ap, const char *));)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    proc_result r;
    assert_int_equal(proc_run(argv, stdin_text, &r), 0);
    return r;
}
#define run(f, ...) run_in((f), NULL, __VA_ARGS__, (const char *)NULL)

static void expect(proc_result *r, int status, const char *in_err)
{
    if (r->status != status || (in_err && !strstr(r->err, in_err)))
        fail_msg("want exit %d with \"%s\" on stderr; got %d\nstdout: %s\n"
                 "stderr: %s",
                 status, in_err ? in_err : "", r->status, r->out, r->err);
    if (status != 0)
        assert_string_equal(r->out, "");
}

static int group_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    build_path("coalition", f->coalition, sizeof f->coalition);
    strcpy(f->dir, "/tmp/co-ticket-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->key, sizeof f->key, "%s/issuer.pem", f->dir);
    proc_result r = run(f, "keygen", "--out", f->key);
    if (r.status != 0 || strlen(r.out) != 65)
        return -1;
    memcpy(f->pub, r.out, 64);
    f->pub[64] = '\0';
    proc_result_free(&r);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* A ticket for SUB from the fixture's key; caller frees. */
static char *issue(const fixture *f, const char *ttl)
{
    proc_result r = run(f, "ticket", "issue", "--key", f->key, "--issuer",
                        "my-coalition", "--sub", SUB, "--ttl", ttl, "--aud",
                        "atlas");
    expect(&r, 0, NULL);
    size_t n = strlen(r.out);
    assert_true(n > 100 && r.out[n - 1] == '\n');
    r.out[n - 1] = '\0';
    free(r.err);
    return r.out;
}

/* The claims segment of `token`, decoded here (not by the code under
 * test) and parsed. */
static json_t *claims_of(const char *token)
{
    const char *p = strchr(token, '.'), *end;
    assert_non_null(p);
    end = strchr(++p, '.');
    assert_non_null(end);
    char text[4096];
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; p < end; p++) {
        const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
                            "wxyz0123456789-_";
        const char *at = strchr(alpha, *p);
        assert_non_null(at);
        acc = (acc << 6) | (uint32_t)(at - alpha);
        if ((bits += 6) >= 8) {
            bits -= 8;
            assert_true(n < sizeof text - 1);
            text[n++] = (char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    text[n] = '\0';
    json_t *j = json_loads(text, 0, NULL);
    if (!j)
        fail_msg("claims are not JSON: %s", text);
    return j;
}

static void keygen_writes_0600_once(void **state)
{
    fixture *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/node.pem", f->dir);
    mode_t old = umask(0); /* the mode must not depend on the umask */
    proc_result r = run(f, "keygen", "--out", path);
    umask(old);
    expect(&r, 0, NULL);
    assert_int_equal(strlen(r.out), 65);
    assert_int_equal(strspn(r.out, "0123456789abcdef"), 64);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char first[65];
    memcpy(first, r.out, 64);
    first[64] = '\0';
    proc_result_free(&r);

    /* a second keygen to the same path refuses and leaves the key alone */
    r = run(f, "keygen", "--out", path);
    expect(&r, 2, "refusing to replace");
    proc_result_free(&r);
    r = run(f, "ticket", "issue", "--key", path, "--issuer", "x", "--sub",
            first, "--ttl", "1m");
    expect(&r, 0, NULL); /* still the same, loadable key */
    proc_result_free(&r);

    /* two keys differ */
    assert_string_not_equal(first, f->pub);

    r = run(f, "keygen");
    expect(&r, 2, "--out");
    proc_result_free(&r);
    r = run(f, "keygen", "--out", "/nonexistent-dir/k.pem");
    expect(&r, 1, "/nonexistent-dir/k.pem");
    proc_result_free(&r);
    r = run(f, "keygen", "--out", path, "extra");
    expect(&r, 2, "extra");
    proc_result_free(&r);
    r = run(f, "keygen", "--help");
    expect(&r, 0, NULL);
    assert_non_null(strstr(r.out, "--out FILE"));
    proc_result_free(&r);
}

static void loose_key_is_refused(void **state)
{
    fixture *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/loose.pem", f->dir);
    proc_result r = run(f, "keygen", "--out", path);
    expect(&r, 0, NULL);
    proc_result_free(&r);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(chmod(path, i == 0 ? 0644 : 0640), 0);
        r = run(f, "ticket", "issue", "--key", path, "--issuer", "x", "--sub",
                SUB, "--ttl", "1h");
        expect(&r, 2, "--key");
        assert_non_null(strstr(r.err, "chmod 600"));
        proc_result_free(&r);
    }
    assert_int_equal(chmod(path, 0600), 0);
    r = run(f, "ticket", "issue", "--key", path, "--issuer", "x", "--sub",
            SUB, "--ttl", "1h");
    expect(&r, 0, NULL);
    proc_result_free(&r);

    /* a key that does not exist or is not a key */
    r = run(f, "ticket", "issue", "--key", "/nonexistent.pem", "--issuer",
            "x", "--sub", SUB, "--ttl", "1h");
    expect(&r, 2, "--key");
    proc_result_free(&r);
}

static void issue_then_verify(void **state)
{
    fixture *f = *state;
    char *tok = issue(f, "1h");
    /* the root by name and by its hex are the same issuer */
    const char *roots[] = {"my-coalition", ROOT_HEX};
    for (int i = 0; i < 2; i++) {
        proc_result r = run(f, "ticket", "verify", "--issuer", roots[i],
                            "--pubkey", f->pub, "--sub", SUB, "--aud",
                            "atlas", tok);
        expect(&r, 0, NULL);
        json_error_t e;
        json_t *c = json_loads(r.out, 0, &e);
        if (!c)
            fail_msg("not JSON: %s\n%s", e.text, r.out);
        assert_string_equal(json_string_value(json_object_get(c, "iss")),
                            ROOT_HEX);
        assert_string_equal(json_string_value(json_object_get(c, "sub")), SUB);
        assert_string_equal(json_string_value(json_object_get(c, "aud")),
                            "atlas");
        json_int_t iat = json_integer_value(json_object_get(c, "iat"));
        json_int_t exp = json_integer_value(json_object_get(c, "exp"));
        assert_true(iat > 1600000000);
        assert_int_equal(exp - iat, 3600);
        json_decref(c);
        proc_result_free(&r);
    }

    /* from stdin, with the newline a shell adds; '-' and no argument */
    char line[9000];
    snprintf(line, sizeof line, "%s\n", tok);
    proc_result r = run_in(f, line, "ticket", "verify", "--issuer",
                           "my-coalition", "--pubkey", f->pub, "--sub", SUB,
                           "-", (const char *)NULL);
    expect(&r, 0, NULL);
    assert_non_null(strstr(r.out, SUB));
    proc_result_free(&r);
    r = run_in(f, line, "ticket", "verify", "--issuer", "my-coalition",
               "--pubkey", f->pub, (const char *)NULL);
    expect(&r, 0, "sub was not checked");
    proc_result_free(&r);

    /* key rotation: the signing key may be any of those given */
    r = run(f, "ticket", "verify", "--issuer", "my-coalition", "--pubkey",
            OTHER, "--pubkey", f->pub, "--sub", SUB, tok);
    expect(&r, 0, NULL);
    proc_result_free(&r);

    /* TTL suffixes, read from the claims without a verify run each */
    const char *ttls[] = {"90", "90s", "15m", "2h", "7d"};
    const long secs[] = {90, 90, 900, 7200, 604800};
    for (int i = 0; i < 5; i++) {
        r = run(f, "ticket", "issue", "--key", f->key, "--issuer", "x",
                "--sub", SUB, "--ttl", ttls[i], "--jti", "j1");
        expect(&r, 0, NULL);
        json_t *c = claims_of(r.out);
        assert_int_equal(json_integer_value(json_object_get(c, "exp")) -
                             json_integer_value(json_object_get(c, "iat")),
                         secs[i]);
        assert_string_equal(json_string_value(json_object_get(c, "jti")),
                            "j1");
        json_decref(c);
        proc_result_free(&r);
    }
    free(tok);
}

static void invalid_tickets_exit_1(void **state)
{
    fixture *f = *state;
    char *tok = issue(f, "1h");
    char bad[9000];
    proc_result r;
#define VERIFY(t, ...)                                                        \
    run(f, "ticket", "verify", "--issuer", "my-coalition", "--pubkey",        \
        f->pub, __VA_ARGS__, (t))

    /* one character of the claims changed */
    strcpy(bad, tok);
    char *c = strchr(bad, '.') + 5;
    *c = *c == 'A' ? 'B' : 'A';
    r = VERIFY(bad, "--sub", SUB);
    expect(&r, 1, "invalid ticket: signature does not verify");
    proc_result_free(&r);

    /* padding, a fourth segment, a truncated signature */
    snprintf(bad, sizeof bad, "%s=", tok);
    r = VERIFY(bad, "--sub", SUB);
    expect(&r, 1, "padding");
    proc_result_free(&r);
    snprintf(bad, sizeof bad, "%s.x", tok);
    r = VERIFY(bad, "--sub", SUB);
    expect(&r, 1, "4 segments");
    proc_result_free(&r);
    snprintf(bad, sizeof bad, "%.*s", (int)strlen(tok) - 4, tok);
    r = VERIFY(bad, "--sub", SUB);
    expect(&r, 1, "invalid ticket");
    proc_result_free(&r);

    /* right token, wrong expectations */
    r = VERIFY(tok, "--sub", OTHER);
    expect(&r, 1, "sub");
    proc_result_free(&r);
    r = VERIFY(tok, "--aud", "chronicle");
    expect(&r, 1, "aud \"atlas\" is not allowed");
    proc_result_free(&r);
    r = run(f, "ticket", "verify", "--issuer", "other-coalition", "--pubkey",
            f->pub, tok);
    expect(&r, 1, "iss");
    proc_result_free(&r);
    r = run(f, "ticket", "verify", "--issuer", "my-coalition", "--pubkey",
            OTHER, tok);
    expect(&r, 1, "signature");
    proc_result_free(&r);

    /* not valid yet */
    r = run(f, "ticket", "issue", "--key", f->key, "--issuer", "my-coalition",
            "--sub", SUB, "--ttl", "2h", "--nbf", "+1h");
    expect(&r, 0, NULL);
    r.out[strlen(r.out) - 1] = '\0';
    proc_result v = VERIFY(r.out, "--sub", SUB);
    expect(&v, 1, "nbf");
    proc_result_free(&v);
    proc_result_free(&r);

    /* too long on stdin */
    char *huge = malloc(10000);
    memset(huge, 'A', 9999);
    huge[9999] = '\0';
    r = run_in(f, huge, "ticket", "verify", "--issuer", "my-coalition",
               "--pubkey", f->pub, (const char *)NULL);
    expect(&r, 1, "longer than 8192");
    proc_result_free(&r);
    free(huge);
    free(tok);
#undef VERIFY
}

static void bad_arguments_exit_2(void **state)
{
    fixture *f = *state;
    const char *K = f->key;
    struct {
        const char *argv[14];
        const char *names;
    } cases[] = {
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", "0"}, "--ttl"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", "5x"}, "--ttl: '5x'"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", "-1h"}, "--ttl"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", "1h30m"}, "--ttl"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", ""}, "--ttl"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", "99999999999999999999d"}, "--ttl"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", "abc",
          "--ttl", "1h"}, "--sub: 'abc'"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", "1h", "--nbf", "soon"}, "--nbf: 'soon'"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", "1h", "--nbf", "+2h"}, "--nbf"},
        {{"ticket", "issue", "--key", K, "--issuer", "", "--sub", SUB,
          "--ttl", "1h"}, "--issuer"},
        {{"ticket", "issue", "--issuer", "x", "--sub", SUB, "--ttl", "1h"},
         "--key"},
        {{"ticket", "issue", "--key", K, "--sub", SUB, "--ttl", "1h"},
         "--issuer"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--ttl", "1h"},
         "--sub"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB},
         "--ttl"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", "1h", "--frobnicate"}, "--frobnicate"},
        {{"ticket", "issue", "--key", K, "--issuer", "x", "--sub", SUB,
          "--ttl", "1h", "stray"}, "stray"},
        {{"ticket", "issue", "--key"}, "--key"},
        {{"ticket", "verify", "--issuer", "x", "--pubkey", "12ab"},
         "--pubkey: '12ab'"},
        {{"ticket", "verify", "--issuer", "x", "a.b.c"}, "--pubkey"},
        {{"ticket", "verify", "--pubkey", SUB, "a.b.c"}, "--issuer"},
        {{"ticket", "verify", "--issuer", "x", "--pubkey", SUB, "--sub",
          "zz", "a.b.c"}, "--sub: 'zz'"},
        {{"ticket", "verify", "--issuer", "x", "--pubkey", SUB, "--aud",
          "a,b", "a.b.c"}, "--aud"},
        {{"ticket", "verify", "--issuer", "x", "--pubkey", SUB, "a.b.c",
          "d.e.f"}, "d.e.f"},
        {{"ticket"}, "usage"},
        {{"ticket", "frob"}, "'frob'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[16] = {f->coalition};
        for (int j = 0; j < 14 && cases[i].argv[j]; j++)
            argv[j + 1] = (char *)cases[i].argv[j];
        proc_result r;
        assert_int_equal(proc_run(argv, NULL, &r), 0);
        if (r.status != 2 || !strstr(r.err, cases[i].names) || r.out[0])
            fail_msg("case %zu: want exit 2 naming %s; got %d\nstdout: %s\n"
                     "stderr: %s",
                     i, cases[i].names, r.status, r.out, r.err);
        proc_result_free(&r);
    }
}

static void help_texts(void **state)
{
    fixture *f = *state;
    proc_result r = run(f, "ticket", "--help");
    expect(&r, 0, NULL);
    assert_non_null(strstr(r.out, "ticket issue"));
    assert_non_null(strstr(r.out, "ticket verify"));
    proc_result_free(&r);
    r = run(f, "ticket", "issue", "--help");
    expect(&r, 0, NULL);
    assert_non_null(strstr(r.out, "--ttl DURATION"));
    assert_non_null(strstr(r.out, "--nbf WHEN"));
    proc_result_free(&r);
    r = run(f, "ticket", "verify", "--help");
    expect(&r, 0, NULL);
    assert_non_null(strstr(r.out, "--pubkey HEX"));
    proc_result_free(&r);
    r = run(f, "--help");
    expect(&r, 0, NULL);
    assert_non_null(strstr(r.out, "ticket"));
    assert_non_null(strstr(r.out, "keygen"));
    proc_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keygen_writes_0600_once),
        cmocka_unit_test(loose_key_is_refused),
        cmocka_unit_test(issue_then_verify),
        cmocka_unit_test(invalid_tickets_exit_1),
        cmocka_unit_test(bad_arguments_exit_2),
        cmocka_unit_test(help_texts),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
