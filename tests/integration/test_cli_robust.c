/* The CLI on awkward input: `group exec --stdin` from /dev/null, a regular
 * file, an empty pipe and a 12 MiB line; options after command words;
 * durations that are not finite, negative or too large; key paths that
 * are FIFOs or encrypted PEM; provider files with bad values; errno
 * values in messages. Every refusal exits non-zero with a message naming
 * what was wrong; nothing may crash, hang or pass silently.
 *
 * No daemon is needed: the bootstrap peer is a closed port, so a command
 * that gets as far as the network times out after --timeout (exit 3).
 * Commands that could hang run under timeout(1), so a hang shows up as
 * status 124 instead of a stuck test run.
 */
#include <errno.h>
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

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
/* A group nobody serves, through a bootstrap peer nobody answers on. */
#define TARGET "--bootstrap " HEX_A "@127.0.0.1:1 --group " HEX_A
#define TARGET_ARGS "--bootstrap", HEX_A "@127.0.0.1:1", "--group", HEX_A

typedef struct fixture {
    char coalition[4096], coalitiond[4096];
    char dir[64];
} fixture;

static fixture F;

/* `sh -c script` with $C the coalition binary and $D coalitiond. */
static proc_result sh(const char *fmt, ...)
{
    char script[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(script, sizeof script, fmt, ap);
    va_end(ap);
    setenv("C", F.coalition, 1);
    setenv("D", F.coalitiond, 1);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    return r;
}

/* Runs coalition with `stdin_text` on a pipe and up to 20 arguments. */
static proc_result cli_in(const char *stdin_text, ...)
{
    char *argv[22];
    int n = 0;
    argv[n++] = F.coalition;
    va_list ap;
    va_start(ap, stdin_text);
    for (const char *a; n < 21 && (a = va_arg(ap, const char *));)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    proc_result r;
    assert_int_equal(proc_run(argv, stdin_text, &r), 0);
    return r;
}
#define cli(...) cli_in(NULL, __VA_ARGS__, (const char *)NULL)

static void expect(proc_result *r, int status, const char *in_err)
{
    if (r->status != status || (in_err && !strstr(r->err, in_err)) ||
        strstr(r->err, "runtime error") || strstr(r->err, "Sanitizer"))
        fail_msg("want exit %d with \"%s\" on stderr; got %d\nstdout: %.2000s"
                 "\nstderr: %.2000s",
                 status, in_err ? in_err : "", r->status, r->out, r->err);
}

static const char *path(const char *name)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", F.dir, name);
    return buf[i];
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    build_path("coalition", F.coalition, sizeof F.coalition);
    build_path("coalitiond", F.coalitiond, sizeof F.coalitiond);
    strcpy(F.dir, "/tmp/co-robust-XXXXXX");
    return mkdtemp(F.dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", F.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- group exec --stdin ------------------------------------------------ */

static void stdin_dev_null(void **state)
{
    (void)state;
    proc_result r = sh("timeout 30 \"$C\" group exec " TARGET
                       " --timeout 1s --stdin < /dev/null");
    expect(&r, 0, NULL);
    assert_string_equal(r.out, "");
    proc_result_free(&r);
}

static void stdin_regular_file(void **state)
{
    (void)state;
    write_file(path("cmds"), "1 +5\n2 -3\n");
    proc_result r = sh("timeout 30 \"$C\" group exec " TARGET
                       " --timeout 1s --stdin < %s",
                       path("cmds"));
    /* Both lines were read and sent; nothing answers, so each times out. */
    expect(&r, 3, NULL);
    assert_non_null(strstr(r.out, "{\"id\":\"1\",\"status\":\"timeout\""));
    assert_non_null(strstr(r.out, "{\"id\":\"2\",\"status\":\"timeout\""));
    proc_result_free(&r);
}

static void stdin_empty_pipe(void **state)
{
    (void)state;
    proc_result r = cli_in("", "group", "exec", TARGET_ARGS, "--timeout",
                           "1s", "--stdin", (const char *)NULL);
    expect(&r, 0, NULL);
    assert_string_equal(r.out, "");
    proc_result_free(&r);
}

static void stdin_line_too_long(void **state)
{
    (void)state;
    const char *p = path("long");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("big ", f);
    for (int i = 0; i < 12 * 1024; i++) {
        char kib[1024];
        memset(kib, 'a', sizeof kib);
        fwrite(kib, 1, sizeof kib, f);
    }
    fputs("\n", f);
    fclose(f);
    proc_result r = sh("timeout 60 \"$C\" group exec " TARGET
                       " --timeout 1s --stdin < %s",
                       p);
    expect(&r, 2, "stdin line 1 is longer than 8388608 bytes");
    assert_string_equal(r.out, "");
    proc_result_free(&r);
}

/* ---- options ------------------------------------------------------------ */

static void options_after_words(void **state)
{
    (void)state;
    /* --via and --json after the words are options, not command text: the
     * answer comes as JSON (a timeout: nobody is there). */
    proc_result r = cli("group", "exec", TARGET_ARGS, "--timeout", "1s",
                        "add", "5", "--via", HEX_B, "--json");
    expect(&r, 3, NULL);
    assert_non_null(strstr(r.out, "{\"status\":\"timeout\""));
    proc_result_free(&r);

    r = sh("timeout 30 \"$C\" group exec " TARGET " --timeout 1s --via "
           HEX_B " --stdin --window 64 < /dev/null");
    expect(&r, 0, NULL);
    proc_result_free(&r);

    /* Words after them still conflict with --stdin. */
    r = sh("timeout 30 \"$C\" group exec " TARGET " --stdin run --window 8 "
           "< /dev/null");
    expect(&r, 2, "--stdin takes no command words");
    proc_result_free(&r);

    /* A word that looks like an option must follow "--". */
    r = cli("group", "exec", TARGET_ARGS, "--timeout", "1s", "-2");
    expect(&r, 2, "unknown option '-2'");
    proc_result_free(&r);
    r = cli("group", "exec", TARGET_ARGS, "--timeout", "1s", "--", "-2");
    expect(&r, 3, NULL);
    proc_result_free(&r);
    r = cli("group", "query", TARGET_ARGS, "--via");
    expect(&r, 2, "--via needs a value");
    proc_result_free(&r);
}

/* A node config is read strictly: a misspelt key is an error naming it,
 * not a default silently taken (coalitiond reads the same file). */
static void node_config_unknown_keys(void **state)
{
    (void)state;
    static const struct {
        const char *json, *why;
    } cases[] = {
        {"{\"grups\": []}", "unknown key \"grups\""},
        {"{\"groups\": [{\"name\": \"g\", \"root\": \"r\", \"kind\": "
         "\"counter\", \"voters\": [\"" HEX_B "\"], \"params\": "
         "{\"max_voter\": 3}}]}",
         "unknown key \"max_voter\""},
        {"{\"groups\": [{\"name\": \"g\", \"root\": \"r\", \"kind\": "
         "\"counter\", \"voter\": [\"" HEX_B "\"]}]}",
         "unknown key \"voter\""},
        /* Below the groups too: a validator's keys and a JWT policy's
         * (a misspelt "issuer" once dropped the issuer check). */
        {"{\"groups\": [{\"name\": \"g\", \"root\": \"r\", \"kind\": "
         "\"counter\", \"voters\": [\"" HEX_B "\"], \"validators\": "
         "[{\"jwt\": {\"keys\": [\"" HEX_B "\"]}, \"ttl\": 5}]}]}",
         "validators[0]: unknown key \"ttl\""},
        {"{\"groups\": [{\"name\": \"g\", \"root\": \"r\", \"kind\": "
         "\"counter\", \"voters\": [\"" HEX_B "\"], \"validators\": "
         "[{\"jwt\": {\"keys\": [\"" HEX_B "\"], \"issuer\": [\"x\"]}}]}]}",
         "jwt: unknown key \"issuer\""},
        /* The CLI reads the whole file as coalitiond does. */
        {"{\"metrics\": \"no\"}", "\"metrics\" must be true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *file = path("node-strict.json");
        FILE *f = fopen(file, "w");
        assert_non_null(f);
        fputs(cases[i].json, f);
        fclose(f);
        proc_result r = cli("group", "status", "--bootstrap",
                            HEX_A "@127.0.0.1:1", "--config", file, "--name",
                            "g", "--timeout", "1s");
        expect(&r, 2, cases[i].why);
        proc_result_free(&r);
        const char *key = path("strict.key");
        r = sh("[ -f %s ] || \"$C\" keygen --out %s >/dev/null; "
               "timeout 30 \"$D\" --config %s --key %s --data %s.d --listen 127.0.0.1:0 "
               "2>&1 >/dev/null; echo exit=$?",
               key, key, file, key, file);
        if (!strstr(r.out, cases[i].why))
            fail_msg("coalitiond took %s: %s", cases[i].json, r.out);
        proc_result_free(&r);
    }
}

static void bad_durations(void **state)
{
    (void)state;
    static const struct {
        const char *arg, *why;
    } cases[] = {
        {"nan", "not a finite number"},
        {"inf", "not a finite number"},
        {"-1s", "a duration cannot be negative"},
        {"1e400", "unknown unit"},
        {"99999999999999999999999d", "too large"},
        {"0", "must be more than zero"},
        {"5x", "unknown unit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "--timeout: '%s': %s", cases[i].arg,
                 cases[i].why);
        proc_result r = cli("group", "exec", TARGET_ARGS, "--timeout",
                            cases[i].arg, "--", "x");
        expect(&r, 2, want);
        assert_string_equal(r.out, "");
        proc_result_free(&r);
        if (strcmp(cases[i].arg, "0") == 0)
            continue; /* net peers takes 0 as "don't wait" */
        r = cli("net", "peers", "--bootstrap", HEX_A "@127.0.0.1:1",
                "--timeout", cases[i].arg);
        expect(&r, 2, want);
        proc_result_free(&r);
    }
}

/* ---- key files ------------------------------------------------------------ */

static void key_fifo(void **state)
{
    (void)state;
    const char *p = path("fifo.pem");
    assert_int_equal(mkfifo(p, 0600), 0);
    proc_result r = sh("timeout 20 \"$C\" ticket issue --key %s --issuer x "
                       "--sub " HEX_B " --ttl 1h < /dev/null",
                       p);
    expect(&r, 2, "is a FIFO, not a key file");
    proc_result_free(&r);
}

static void key_encrypted(void **state)
{
    (void)state;
    const char *p = path("enc.pem");
    proc_result r = sh("openssl genpkey -algorithm ed25519 -aes256 -pass "
                       "pass:secret -out %s && chmod 600 %s",
                       p, p);
    if (r.status != 0) {
        proc_result_free(&r);
        skip(); /* no openssl(1) */
    }
    proc_result_free(&r);
    /* setsid: no controlling terminal for a prompt to fall back on. */
    r = sh("timeout 20 setsid -w \"$C\" ticket issue --key %s --issuer x "
           "--sub " HEX_B " --ttl 1h < /dev/null",
           p);
    expect(&r, 2, "encrypted keys are not supported");
    proc_result_free(&r);
}

static void errno_text(void **state)
{
    (void)state;
    write_file(path("plain"), "x");
    char out[300];
    snprintf(out, sizeof out, "%s/key.pem", path("plain"));
    proc_result r = cli("keygen", "--out", out);
    char want[128];
    snprintf(want, sizeof want, "%s", strerror(ENOTDIR));
    expect(&r, r.status ? r.status : 1, want);
    assert_int_not_equal(r.status, 0);
    assert_null(strstr(r.err, "unknown error"));
    proc_result_free(&r);
}

/* ---- coalitiond --provider ------------------------------------------------ */

static void provider_errors(void **state)
{
    (void)state;
    proc_result r = cli("keygen", "--out", path("node.pem"));
    expect(&r, 0, NULL);
    proc_result_free(&r);
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"cpu\": \"abc\", \"ram\": \"1G\"}", "\"cpu\": \"abc\" is not"},
        {"{\"cpu\": \"nan\", \"ram\": \"1G\"}", "\"cpu\": \"nan\" is not"},
        {"{\"cpu\": -1, \"ram\": \"1G\"}", "\"cpu\": -1 is not"},
        {"{\"cpu\": 2, \"ram\": \"lots\"}", "\"ram\": \"lots\" is not"},
        {"{\"cpu\": 2, \"ram\": -5}", "\"ram\": -5 is not"},
        {"{\"cpu\": 2}", "\"ram\" is required"},
        {"{\"cpu\": 2, \"ram\": 64, \"tdx\": 3}", "\"tdx\": 3 is not"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path("provider.json"), cases[i].json);
        r = sh("timeout 30 \"$D\" --listen 127.0.0.1:0 --key %s --data %s "
               "--coalition \"$SOURCE_DIR/tests/data/modules.json\" "
               "--provider %s",
               path("node.pem"), path("data"), path("provider.json"));
        expect(&r, 2, cases[i].want);
        proc_result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stdin_dev_null),
        cmocka_unit_test(stdin_regular_file),
        cmocka_unit_test(stdin_empty_pipe),
        cmocka_unit_test(stdin_line_too_long),
        cmocka_unit_test(options_after_words),
        cmocka_unit_test(bad_durations),
        cmocka_unit_test(node_config_unknown_keys),
        cmocka_unit_test(key_fifo),
        cmocka_unit_test(key_encrypted),
        cmocka_unit_test(errno_text),
        cmocka_unit_test(provider_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
