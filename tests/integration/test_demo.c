/* `coalition demo`, the main job, end to end: with --for --json it runs a
 * whole local coalition and reports verified cards, a gapless Almanac
 * that went on ticking across a rotation of its committee, and a
 * verified Chronicle that recorded the rotation; interrupted, it stops
 * every process it started. */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coalition/identity.h"
#include "daemon.h"
#include "demo_coalition.h"
#include "proc.h"

static void json_report(void **state)
{
    char exe[1024], secs[16];
    snprintf(secs, sizeof secs, "%d", (int)(8 * time_factor()));
    char *argv[] = {(char *)build_path("coalition", exe, sizeof exe), "demo",
                    "--for", secs, "--json", NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    if (r.status != 0)
        fail_msg("demo exited %d\n%s\n%s", r.status, r.out, r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", r.out);

    mk_id id;
    char hex[MK_ID_HEX_LEN + 1];
    co_coalition_id(&DEMO_COALITION, &id, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "coalition_id")),
                        mk_id_hex(&id, hex));
    assert_int_equal(json_integer_value(json_object_get(j, "cards")), 2);
    json_t *alm = json_object_get(j, "almanac");
    assert_true(json_integer_value(json_object_get(alm, "last_seq")) >
                json_integer_value(json_object_get(alm, "first_seq")));
    assert_int_equal(json_integer_value(json_object_get(alm, "gaps")), 0);
    json_t *chr = json_object_get(j, "chronicle");
    assert_true(json_integer_value(json_object_get(chr, "entries")) >= 1);
    assert_true(json_is_true(json_object_get(chr, "verified")));
    /* Every module has a leader, and it is a committee member (the
     * Almanac's standby, once promoted, may lead it). */
    const char *members[] = {DEMO_MEMBER_0, DEMO_MEMBER_1, DEMO_MEMBER_2,
                             DEMO_MEMBER_3};
    json_t *leaders = json_object_get(j, "leaders");
    const char *mods[] = {"atlas", "almanac", "chronicle"};
    for (int m = 0; m < 3; m++) {
        const char *l = json_string_value(json_object_get(leaders, mods[m]));
        assert_non_null(l);
        bool member = false;
        for (int i = 0; i < (m == 1 ? 4 : 3); i++)
            member = member || strcmp(l, members[i]) == 0;
        assert_true(member);
    }
    /* Midway, an operator rotated the Almanac's committee: a voter out,
     * the standby in. The ticks went on across it without a gap or a
     * repeat (gaps 0 above: each reported seq is the last plus one), and
     * the Chronicle's verified head holds both changes. */
    json_t *rot = json_object_get(j, "rotation");
    if (!json_is_true(json_object_get(rot, "done")))
        fail_msg("no rotation: %s", r.out);
    assert_string_equal(json_string_value(json_object_get(rot, "module")),
                        "almanac");
    assert_string_equal(json_string_value(json_object_get(rot, "in")),
                        DEMO_MEMBER_3);
    const char *out = json_string_value(json_object_get(rot, "out"));
    assert_non_null(out);
    assert_true(strcmp(out, DEMO_MEMBER_0) == 0 ||
                strcmp(out, DEMO_MEMBER_1) == 0 ||
                strcmp(out, DEMO_MEMBER_2) == 0);
    assert_true(json_integer_value(json_object_get(rot, "seq_at")) >=
                json_integer_value(json_object_get(alm, "first_seq")));
    assert_true(json_integer_value(json_object_get(rot, "ticks_after")) >= 2);
    assert_int_equal(json_integer_value(json_object_get(alm, "last_seq")),
                     json_integer_value(json_object_get(rot, "seq_at")) +
                         json_integer_value(json_object_get(rot, "ticks_after")));
    if (!json_is_true(json_object_get(rot, "chronicle_recorded")))
        fail_msg("rotation not in the chronicle: %s", r.out);
    assert_true(json_integer_value(json_object_get(chr, "committee_changes")) >=
                2);
    /* Compute: one workload granted, run to exit 0 by one of the two
     * providers, its signed log committed and verified. */
    json_t *cmp = json_object_get(j, "compute");
    assert_true(json_is_true(json_object_get(cmp, "granted")));
    assert_int_equal(json_integer_value(json_object_get(cmp, "exit")), 0);
    assert_true(json_is_true(json_object_get(cmp, "verified_log")));
    json_decref(j);
    proc_result_free(&r);
}

/* True while any process's command line mentions `needle`. */
static bool any_process_mentions(const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;
    while (d && (e = readdir(d)) && !found) {
        char path[300], buf[4096];
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n] = '\0';
        found = strstr(buf, needle) != NULL;
    }
    if (d)
        closedir(d);
    return found;
}

static void interrupt_leaves_nothing_behind(void **state)
{
    char tmp[512], dir[600], exe[1024];
    assert_non_null(daemon_tmpdir(tmp, sizeof tmp));
    snprintf(dir, sizeof dir, "%s/demo", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(build_path("coalition", exe, sizeof exe), "coalition", "demo",
              "--dir", dir, (char *)NULL);
        _exit(127);
    }
    /* Let the whole coalition come up. */
    struct timespec ts = {(time_t)(5 * time_factor()), 0};
    nanosleep(&ts, NULL);
    assert_true(any_process_mentions(dir));
    kill(pid, SIGINT);
    int st, waited = 0;
    while (waitpid(pid, &st, WNOHANG) == 0 && waited < 30000) {
        struct timespec t = {0, 100 * 1000000};
        nanosleep(&t, NULL);
        waited += 100;
    }
    assert_true(waited < 30000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* No coalitiond (or feed) of this demo survives it. */
    assert_false(any_process_mentions(dir));
    daemon_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_report),
        cmocka_unit_test(interrupt_leaves_nothing_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
