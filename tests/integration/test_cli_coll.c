/* The collection verbs of `coalition` (tools/cmd_coll.c) against three
 * real coalitiond members hosting a map group and a pq group from one
 * node config: one-shot writes and reads, with and without --json;
 * --stdin batches from a regular file, a pipe and /dev/null; a malformed
 * batch line; pq pops; a watch that sees another process's writes, and
 * one that says why it cannot start on a state too large to send.
 *
 * The daemons start once for all tests (the group setup); every test
 * uses its own keys. Waits scale with TIME_FACTOR; nothing asserts on
 * speed.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "proc.h"

#define ND 3

static double TF = 1.0;

static struct {
    char dir[512];
    char cfg[600];
    char boot[ND][160];
    char timeout[16];
    daemon_proc d[ND];
} E;

static int ms(int base)
{
    return (int)(base * TF);
}

static void sleep_ms(int n)
{
    struct timespec ts = {n / 1000, (long)(n % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_config(void)
{
    json_t *root = json_object(), *gs = json_array();
    const char *names[] = {"kv", "jobs", "tags", "list", "flag", "first"};
    const char *kinds[] = {"map", "pq", "set", "vec", "cell", "once"};
    for (int i = 0; i < 6; i++) {
        json_t *g = json_object(), *vs = json_array(), *p = json_object();
        json_object_set_new(g, "name", json_string(names[i]));
        json_object_set_new(g, "root", json_string(names[i]));
        json_object_set_new(g, "kind", json_string(kinds[i]));
        for (int v = 0; v < ND; v++)
            json_array_append_new(vs, json_string(E.d[v].peer_id));
        json_object_set_new(g, "voters", vs);
        json_object_set_new(p, "election_timeout_ms", json_integer(ms(500)));
        json_object_set_new(p, "heartbeat_ms", json_integer(ms(50)));
        json_object_set_new(g, "params", p);
        if (i == 1)
            json_object_set_new(g, "capacity", json_integer(100));
        json_array_append_new(gs, g);
    }
    json_object_set_new(root, "groups", gs);
    assert_int_equal(json_dump_file(root, E.cfg, JSON_INDENT(1)), 0);
    json_decref(root);
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(daemon_tmpdir(E.dir, sizeof E.dir));
    for (int i = 0; i < ND; i++) {
        char name[8];
        snprintf(name, sizeof name, "m%d", i);
        assert_int_equal(daemon_prepare(&E.d[i], E.dir, name), 0);
    }
    snprintf(E.cfg, sizeof E.cfg, "%s/node.json", E.dir);
    write_config();
    for (int i = 0; i < ND; i++) {
        const char *args[2 + 2 * ND + 1] = {"--config", E.cfg};
        int n = 2;
        for (int j = 0; j < i; j++) {
            args[n++] = "--bootstrap";
            args[n++] = E.boot[j];
        }
        args[n] = NULL;
        if (daemon_start(&E.d[i], args) != 0) {
            daemon_dump_log(&E.d[i]);
            return -1;
        }
        daemon_bootstrap(&E.d[i], E.boot[i], sizeof E.boot[i]);
    }
    snprintf(E.timeout, sizeof E.timeout, "%ds", (int)(20 * TF));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int bad = 0;
    for (int i = 0; i < ND; i++)
        if (E.d[i].pid > 0 && daemon_signal_wait(&E.d[i], SIGTERM,
                                                 ms(10000)) != 0) {
            daemon_dump_log(&E.d[i]);
            bad = -1;
        }
    daemon_rmtree(E.dir);
    return bad;
}

/* Runs `coalition KIND WORDS... TARGET` with `in` on stdin (NULL: none).
 * `group` is "kv" or "jobs". */
static void cli(proc_result *pr, const char *in, const char *group, ...)
{
    char path[600];
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)build_path("coalition", path, sizeof path);
    va_list ap;
    va_start(ap, group);
    for (const char *w; (w = va_arg(ap, const char *)) && n < 20;)
        argv[n++] = (char *)w;
    va_end(ap);
    argv[n++] = "--bootstrap";
    argv[n++] = E.boot[0];
    argv[n++] = "--config";
    argv[n++] = E.cfg;
    argv[n++] = "--name";
    argv[n++] = (char *)group;
    argv[n++] = "--timeout";
    argv[n++] = E.timeout;
    argv[n] = NULL;
    assert_int_equal(proc_run(argv, in, pr), 0);
}

/* The same through sh -c, for redirections: `before` and `after` go
 * around the coalition command line (on the "kv" group). */
static void cli_sh(proc_result *pr, const char *before, const char *words,
                   const char *after)
{
    char path[600], cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s%s %s --bootstrap %s --config %s --name kv --timeout %s%s",
             before, build_path("coalition", path, sizeof path), words,
             E.boot[1], E.cfg, E.timeout, after);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(proc_run(argv, NULL, pr), 0);
}

static void expect(proc_result *pr, int status, const char *out)
{
    if (pr->status != status || (out && strcmp(pr->out, out) != 0))
        fail_msg("exit %d (want %d), stdout '%s' (want '%s'), stderr '%s'",
                 pr->status, status, pr->out, out ? out : "*", pr->err);
    proc_result_free(pr);
}

/* ---- map: one verb at a time ------------------------------------------------ */

static void map_verbs(void **state)
{
    (void)state;
    proc_result pr;
    cli(&pr, NULL, "kv", "map", "put", "alpha", "one", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "kv", "map", "put", "beta", "two words", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "kv", "map", "get", "alpha", NULL);
    expect(&pr, 0, "one\n");
    cli(&pr, NULL, "kv", "map", "get", "beta", "--weak", NULL);
    /* A weak read may lag the write; it still answers. */
    assert_true(pr.status == 0 || pr.status == 1);
    proc_result_free(&pr);

    /* --json: one object per result. */
    cli(&pr, NULL, "kv", "map", "put", "gamma", "three", "--json", NULL);
    json_t *j = json_loads(pr.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")),
                        "ok");
    assert_int_equal(json_integer_value(json_object_get(j, "changed")), 1);
    assert_true(json_integer_value(json_object_get(j, "applied")) >= 3);
    json_decref(j);
    expect(&pr, 0, NULL);
    cli(&pr, NULL, "kv", "map", "get", "gamma", "--json", NULL);
    expect(&pr, 0, "{\"found\":true,\"key\":\"gamma\",\"value\":\"three\"}\n");

    /* --hex both ways: "ab" is 6162. */
    cli(&pr, NULL, "kv", "map", "put", "--hex", "6162", "ff00", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "kv", "map", "get", "ab", "--json", NULL);
    expect(&pr, 0, "{\"found\":true,\"key\":\"ab\",\"value_hex\":\"ff00\"}\n");
    cli(&pr, NULL, "kv", "map", "get", "--hex", "6162", NULL);
    expect(&pr, 0, "ff00\n");
    cli(&pr, NULL, "kv", "map", "put", "--hex", "zz", "00", NULL);
    assert_non_null(strstr(pr.err, "not hex"));
    expect(&pr, 2, "");

    /* list: key order, text and JSON lines; --limit and --after page. */
    cli(&pr, NULL, "kv", "map", "del", "ab", NULL);
    expect(&pr, 0, "1\n");
    cli(&pr, NULL, "kv", "map", "list", NULL);
    expect(&pr, 0, "alpha\tone\nbeta\ttwo words\ngamma\tthree\n");
    cli(&pr, NULL, "kv", "map", "list", "--json", NULL);
    expect(&pr, 0,
           "{\"key\":\"alpha\",\"value\":\"one\"}\n"
           "{\"key\":\"beta\",\"value\":\"two words\"}\n"
           "{\"key\":\"gamma\",\"value\":\"three\"}\n");
    cli(&pr, NULL, "kv", "map", "list", "--limit", "2", NULL);
    expect(&pr, 0, "alpha\tone\nbeta\ttwo words\n");
    cli(&pr, NULL, "kv", "map", "list", "--after", "beta", NULL);
    expect(&pr, 0, "gamma\tthree\n");
    cli(&pr, NULL, "kv", "map", "len", NULL);
    expect(&pr, 0, "3\n");

    /* del: how many went; a missing key is "no" (exit 1). */
    cli(&pr, NULL, "kv", "map", "del", "alpha", NULL);
    expect(&pr, 0, "1\n");
    cli(&pr, NULL, "kv", "map", "del", "alpha", "--json", NULL);
    j = json_loads(pr.out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "changed")), 0);
    json_decref(j);
    expect(&pr, 0, NULL);
    cli(&pr, NULL, "kv", "map", "get", "alpha", NULL);
    assert_non_null(strstr(pr.err, "not found"));
    expect(&pr, 1, "");
    cli(&pr, NULL, "kv", "map", "get", "alpha", "--json", NULL);
    expect(&pr, 1, "{\"found\":false}\n");

    /* Usage errors name what was wrong. */
    cli(&pr, NULL, "kv", "map", "put", "onlykey", NULL);
    assert_non_null(strstr(pr.err, "put takes KEY VALUE"));
    expect(&pr, 2, "");
    cli(&pr, NULL, "kv", "map", "pop-min", NULL);
    assert_non_null(strstr(pr.err, "map has no verb 'pop-min'"));
    expect(&pr, 2, NULL);
    cli(&pr, NULL, "jobs", "map", "get", "x", NULL);
    assert_non_null(strstr(pr.err, "is a pq, not a map"));
    expect(&pr, 2, "");
}

/* ---- --stdin batches ----------------------------------------------------------- */

/* 1,000 "put" lines for keys PREFIX0000.. in `path` (and in `text`). */
static char *batch_text(const char *prefix)
{
    size_t cap = 64 * 1000, at = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    for (int i = 0; i < 1000; i++)
        at += (size_t)snprintf(t + at, cap - at, "put %s%04d value %d\n",
                               prefix, i, i);
    return t;
}

/* 1,000 JSON lines, in input order, every one ok. */
static void check_batch_out(proc_result *pr)
{
    if (pr->status != 0)
        fail_msg("batch exit %d: %s", pr->status, pr->err);
    char *line = pr->out;
    for (int i = 1; i <= 1000; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "line")), i);
        assert_string_equal(json_string_value(json_object_get(j, "status")),
                            "ok");
        assert_string_equal(json_string_value(json_object_get(j, "op")),
                            "put");
        json_decref(j);
        line = nl + 1;
    }
    assert_string_equal(line, "");
    proc_result_free(pr);
}

static void batches(void **state)
{
    (void)state;
    proc_result pr;
    char path[600];
    char *text = batch_text("file");
    snprintf(path, sizeof path, "%s/batch.txt", E.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);

    /* A regular file on stdin, a small window. */
    char redirect[700];
    snprintf(redirect, sizeof redirect, " < %s", path);
    cli_sh(&pr, "", "map --stdin --window 16", redirect);
    check_batch_out(&pr);

    /* A pipe (from a separate writer), the default window. */
    char before[700];
    snprintf(before, sizeof before, "sed s/file/pipe/ %s | ", path);
    cli_sh(&pr, before, "map --stdin", "");
    check_batch_out(&pr);

    /* The test's own pipe, with the verb on the command line. */
    text = batch_text("own");
    for (char *p = text; (p = strstr(p, "put ")); )
        memcpy(p, "    ", 4); /* lines hold only the arguments */
    cli(&pr, text, "kv", "map", "put", "--stdin", "--window", "200", NULL);
    free(text);
    check_batch_out(&pr);

    cli(&pr, NULL, "kv", "map", "get", "pipe0999", NULL);
    expect(&pr, 0, "value 999\n");
    cli(&pr, NULL, "kv", "map", "get", "own0500", NULL);
    expect(&pr, 0, "value 500\n");
    cli(&pr, NULL, "kv", "map", "list", "--after", "file", "--limit", "3",
        NULL);
    expect(&pr, 0, "file0000\tvalue 0\nfile0001\tvalue 1\nfile0002\tvalue 2\n");

    /* /dev/null: nothing to do, nothing printed. */
    cli_sh(&pr, "", "map --stdin", " < /dev/null");
    expect(&pr, 0, "");

    /* A malformed line stops the batch there: line 1 ran, line 2 is named,
     * line 3 never ran. */
    cli(&pr, "put ok1 v\nput broken\nput never v\n", "kv", "map", "--stdin",
        NULL);
    if (!strstr(pr.err, "stdin line 2: put takes KEY VALUE"))
        fail_msg("stderr: %s", pr.err);
    json_t *j = json_loads(pr.out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "line")), 1);
    json_decref(j);
    expect(&pr, 2, NULL);
    cli(&pr, "del ok1\nfrobnicate x\n", "kv", "map", "--stdin", NULL);
    if (!strstr(pr.err, "stdin line 2: 'frobnicate' is not a map write"))
        fail_msg("stderr: %s", pr.err);
    expect(&pr, 2, NULL);
    cli(&pr, NULL, "kv", "map", "get", "never", NULL);
    expect(&pr, 1, "");
    cli_sh(&pr, "", "map get ok1", "");
    expect(&pr, 1, "");
}

/* ---- pq ------------------------------------------------------------------------ */

static void pq_verbs(void **state)
{
    (void)state;
    proc_result pr;
    cli(&pr, NULL, "jobs", "pq", "push", "5", "k5", "five", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "jobs", "pq", "push", "1", "k1", "one", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "jobs", "pq", "push", "3", "k3", "three", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "jobs", "pq", "peek", NULL);
    expect(&pr, 0, "1\tk1\tone\n");
    cli(&pr, NULL, "jobs", "pq", "pop-min", NULL);
    expect(&pr, 0, "1\tk1\tone\n");
    cli(&pr, NULL, "jobs", "pq", "pop-max", "--json", NULL);
    json_t *j = json_loads(pr.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "key")), "k5");
    assert_string_equal(json_string_value(json_object_get(j, "prio")), "5");
    assert_string_equal(json_string_value(json_object_get(j, "value")),
                        "five");
    json_decref(j);
    expect(&pr, 0, NULL);
    cli(&pr, NULL, "jobs", "pq", "len", NULL);
    expect(&pr, 0, "1\n");
    cli(&pr, NULL, "jobs", "pq", "list", NULL);
    expect(&pr, 0, "3\tk3\tthree\n");
    cli(&pr, NULL, "jobs", "pq", "pop-min", NULL);
    expect(&pr, 0, "3\tk3\tthree\n");
    cli(&pr, NULL, "jobs", "pq", "pop-min", NULL);
    assert_non_null(strstr(pr.err, "empty"));
    expect(&pr, 1, "");
}

/* ---- set, vec, cell, once ------------------------------------------------------ */

static void other_kinds(void **state)
{
    (void)state;
    proc_result pr;
    cli(&pr, NULL, "tags", "set", "add", "red", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "tags", "set", "add", "blue", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "tags", "set", "has", "red", NULL);
    expect(&pr, 0, "true\n");
    cli(&pr, NULL, "tags", "set", "remove", "red", NULL);
    expect(&pr, 0, "1\n");
    cli(&pr, NULL, "tags", "set", "has", "red", "--json", NULL);
    expect(&pr, 1, "{\"found\":false}\n");
    cli(&pr, NULL, "tags", "set", "list", "--json", NULL);
    expect(&pr, 0, "{\"elem\":\"blue\"}\n");

    cli(&pr, "push a\npush b\npush c\nset 1 B\n", "list", "vec", "--stdin",
        NULL);
    expect(&pr, 0, NULL);
    cli(&pr, NULL, "list", "vec", "list", NULL);
    expect(&pr, 0, "0\ta\n1\tB\n2\tc\n");
    cli(&pr, NULL, "list", "vec", "get", "2", NULL);
    expect(&pr, 0, "c\n");
    cli(&pr, NULL, "list", "vec", "set", "7", "x", NULL);
    assert_non_null(strstr(pr.err, "no element at index 7"));
    expect(&pr, 1, "");
    cli(&pr, NULL, "list", "vec", "pop", NULL);
    expect(&pr, 0, "c\n");
    cli(&pr, NULL, "list", "vec", "len", NULL);
    expect(&pr, 0, "2\n");
    cli(&pr, NULL, "list", "vec", "list", "--start", "1", "--json", NULL);
    expect(&pr, 0, "{\"index\":1,\"value\":\"B\"}\n");

    cli(&pr, NULL, "flag", "cell", "get", NULL);
    expect(&pr, 1, "");
    cli(&pr, NULL, "flag", "cell", "set", "on", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "flag", "cell", "get", NULL);
    expect(&pr, 0, "on\n");
    cli(&pr, NULL, "flag", "cell", "clear", NULL);
    expect(&pr, 0, "1\n");

    cli(&pr, NULL, "first", "once", "set", "winner", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "first", "once", "set", "loser", NULL);
    assert_non_null(strstr(pr.err, "already holds a value"));
    expect(&pr, 1, "");
    cli(&pr, NULL, "first", "once", "get", NULL);
    expect(&pr, 0, "winner\n");
}

/* ---- watch ---------------------------------------------------------------------- */

static bool file_has(const char *path, const char *text)
{
    char buf[4096] = {0};
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

static void watch(void **state)
{
    (void)state;
    char out[600], err[600], path[600];
    snprintf(out, sizeof out, "%s/watch.out", E.dir);
    snprintf(err, sizeof err, "%s/watch.err", E.dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fo, 1);
        dup2(fe, 2);
        char *argv[] = {(char *)build_path("coalition", path, sizeof path),
                        "map", "watch", "--count", "3", "--json",
                        "--bootstrap", E.boot[2], "--config", E.cfg,
                        "--name", "kv", "--timeout", E.timeout, NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    bool ready = false;
    for (int waited = 0; !ready && waited < ms(20000); waited += 50) {
        ready = file_has(err, "coalition: watching map");
        sleep_ms(50);
    }
    if (!ready) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("watch never caught up");
    }
    proc_result pr;
    cli(&pr, NULL, "kv", "map", "put", "w1", "a", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "kv", "map", "put", "w2", "b", NULL);
    expect(&pr, 0, "OK\n");
    cli(&pr, NULL, "kv", "map", "put", "w1", "c", NULL);
    expect(&pr, 0, "OK\n");
    int st = -1;
    for (int waited = 0; waited < ms(20000); waited += 50) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        st = -1;
        sleep_ms(50);
    }
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("watch --count 3 did not end");
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char line[512];
    const char *want[3][2] = {{"w1", "a"}, {"w2", "b"}, {"w1", "c"}};
    for (int i = 0; i < 3; i++) {
        assert_non_null(fgets(line, sizeof line, f));
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "op")),
                            "put");
        assert_string_equal(json_string_value(json_object_get(j, "key")),
                            want[i][0]);
        assert_string_equal(json_string_value(json_object_get(j, "value")),
                            want[i][1]);
        json_decref(j);
    }
    assert_null(fgets(line, sizeof line, f));
    fclose(f);

    /* A deletion reads as "del" (text mode this time). */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fo, 1);
        dup2(fe, 2);
        char *argv[] = {(char *)build_path("coalition", path, sizeof path),
                        "map", "watch", "--count", "1",
                        "--bootstrap", E.boot[0], "--config", E.cfg,
                        "--name", "kv", "--timeout", E.timeout, NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    ready = false;
    for (int waited = 0; !ready && waited < ms(20000); waited += 50) {
        ready = file_has(err, "coalition: watching map");
        sleep_ms(50);
    }
    cli(&pr, NULL, "kv", "map", "del", "w2", NULL);
    expect(&pr, 0, "1\n");
    st = -1;
    for (int waited = 0; waited < ms(20000); waited += 50) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        st = -1;
        sleep_ms(50);
    }
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        for (int i = 0; i < ND; i++)
            daemon_dump_log(&E.d[i]);
        FILE *ef = fopen(err, "r");
        char el[512];
        while (ef && fgets(el, sizeof el, ef))
            fprintf(stderr, "watch: %s", el);
        if (ef)
            fclose(ef);
        fail_msg("watch --count 1 did not end");
    }
    assert_true(ready);
    assert_true(file_has(out, "del\tw2\n"));
}

/* A state larger than one link frame cannot be sent to a new replica as
 * a snapshot: the watch says so and ends, where it used to reconnect to
 * one member after another for ever, each building a snapshot it could
 * not send. About 21 MB of map, more than the members' ring of recent
 * commands (16 MiB) holds, so a watch from the start needs a snapshot. */
static void watch_too_large(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/big.txt", E.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    static char value[30001];
    memset(value, 'x', sizeof value - 1);
    for (int i = 0; i < 700; i++)
        fprintf(f, "put big%04d %s\n", i, value);
    fclose(f);
    char redirect[700];
    snprintf(redirect, sizeof redirect, " < %s > /dev/null", path);
    proc_result pr;
    cli_sh(&pr, "", "map --stdin --window 64", redirect);
    expect(&pr, 0, "");
    cli(&pr, NULL, "kv", "map", "watch", NULL);
    if (pr.status != 1 || !strstr(pr.err, "larger than one link frame"))
        fail_msg("watch of a large state: exit %d, stderr '%s'", pr.status,
                 pr.err);
    proc_result_free(&pr);
}

int main(void)
{
    const char *tf = getenv("TIME_FACTOR");
    TF = tf && atof(tf) > 0 ? atof(tf) : 1.0;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_verbs),
        cmocka_unit_test(batches),
        cmocka_unit_test(pq_verbs),
        cmocka_unit_test(other_kinds),
        cmocka_unit_test(watch),
        cmocka_unit_test(watch_too_large),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
