/* A ticket-gated committee run by real coalitiond processes: the node
 * file's group "tickets" section and coalitiond --ticket FILE.
 *
 * A is the group's one seed; B carries a ticket from the group's issuer,
 * C none, E one signed by another key. All four load the same node file.
 * B joins, is added as a standby and promoted by the leader's standby
 * rules (max_voters 3, replace_after_ms 1 s); C and E do not join and are
 * never members; `coalition group status` sees exactly A and B. Bad input
 * is refused naming what was wrong: an unknown key under "tickets", and a
 * --ticket file that is no JWT. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "mosaik/id.h"
#include "mosaik/jwt.h"
#include "mosaik/key.h"
#include "proc.h"

#define ISS "ticket-committee"

static int ms(int base)
{
    return (int)(base * time_factor());
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A ticket for `d` signed by `by`, written to <dir>/<name>.jwt. */
static void ticket_for(const daemon_proc *d, const mk_keypair *by,
                       const char *dir, char *path, size_t len)
{
    mk_peer_id sub;
    char *token, why[256];
    assert_int_equal(mk_id_from_hex(&sub, d->peer_id, 64), 0);
    int64_t now = (int64_t)time(NULL);
    mk_jwt_claims c = {.iss = ISS, .iat = now, .exp = now + 3600};
    if (mk_jwt_issue(by, &sub, &c, &token, why) != 0)
        fail_msg("mk_jwt_issue: %s", why);
    snprintf(path, len, "%s/%s.jwt", dir, d->name);
    write_file(path, token);
    free(token);
}

static void write_config(const char *path, const char *seed,
                         const mk_peer_id *issuer, const char *extra)
{
    char hex[MK_ID_HEX_LEN + 1], text[2048];
    snprintf(text, sizeof text,
             "{\"groups\": [{\"name\": \"t\", \"root\": \"ticket-cmt\", "
             "\"kind\": \"counter\", \"voters\": [\"%s\"], "
             "\"params\": {\"election_timeout_ms\": %d, \"heartbeat_ms\": %d, "
             "\"max_voters\": 3, \"replace_after_ms\": 1000}, "
             "\"tickets\": {\"keys\": [\"%s\"], \"issuer\": \"" ISS "\"%s}}]}",
             seed, ms(500), ms(50), mk_id_hex(issuer, hex), extra);
    write_file(path, text);
}

/* `coalition group status` as JSON, or NULL when nothing answered. */
static json_t *status(const daemon_proc *via, const char *cfg)
{
    char boot[160], path[600];
    daemon_bootstrap(via, boot, sizeof boot);
    char *argv[] = {(char *)build_path("coalition", path, sizeof path),
                    "group", "status", "--bootstrap", boot, "--config",
                    (char *)cfg, "--name", "t", "--json", "--timeout", "3s",
                    NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    json_t *j = r.status == 0 ? json_loads(r.out, 0, NULL) : NULL;
    proc_result_free(&r);
    return j;
}

/* The role ("voter", "standby") `peer` reports in `j`, or NULL. */
static const char *role_of(json_t *j, const char *peer)
{
    json_t *ms = json_object_get(j, "members");
    for (size_t i = 0; i < json_array_size(ms); i++) {
        json_t *m = json_array_get(ms, i);
        const char *p = json_string_value(json_object_get(m, "peer"));
        if (p && strcmp(p, peer) == 0)
            return json_string_value(json_object_get(m, "role"));
    }
    return NULL;
}

static bool file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

static void holder_joins_outsiders_do_not(void **state)
{
    (void)state;
    char dir[256], cfg[600], boot[160];
    char ta[600], tb[600], te[600];
    daemon_tmpdir(dir, sizeof dir);
    daemon_proc a = {0}, b = {0}, c = {0}, e = {0};
    mk_keypair issuer, other;
    assert_int_equal(mk_keypair_generate(&issuer), 0);
    assert_int_equal(mk_keypair_generate(&other), 0);
    assert_int_equal(daemon_prepare(&a, dir, "a"), 0);
    assert_int_equal(daemon_prepare(&b, dir, "b"), 0);
    assert_int_equal(daemon_prepare(&c, dir, "c"), 0);
    assert_int_equal(daemon_prepare(&e, dir, "e"), 0);
    snprintf(cfg, sizeof cfg, "%s/node.json", dir);
    write_config(cfg, a.peer_id, &issuer.pub, "");
    ticket_for(&a, &issuer, dir, ta, sizeof ta);
    ticket_for(&b, &issuer, dir, tb, sizeof tb);
    ticket_for(&e, &other, dir, te, sizeof te);

    const char *aa[] = {"--config", cfg, "--ticket", ta, NULL};
    assert_int_equal(daemon_start(&a, aa), 0);
    daemon_bootstrap(&a, boot, sizeof boot);
    const char *ab[] = {"--config", cfg, "--ticket", tb, "--bootstrap", boot,
                        NULL};
    const char *ac[] = {"--config", cfg, "--bootstrap", boot, NULL};
    const char *ae[] = {"--config", cfg, "--ticket", te, "--bootstrap", boot,
                        NULL};
    assert_int_equal(daemon_start(&c, ac), 0);
    assert_int_equal(daemon_start(&e, ae), 0);
    assert_int_equal(daemon_start(&b, ab), 0);

    /* B: added as a standby, then promoted by the leader (a voter's
     * place is free and it answers). */
    bool promoted = false;
    json_t *j = NULL;
    for (int waited = 0; !promoted && waited < ms(30000); waited += 250) {
        usleep(250 * 1000);
        json_decref(j);
        j = status(&c, cfg);
        const char *r = j ? role_of(j, b.peer_id) : NULL;
        promoted = r && strcmp(r, "voter") == 0;
    }
    if (!promoted) {
        daemon_dump_log(&a);
        daemon_dump_log(&b);
        fail_msg("B was never promoted");
    }
    assert_true(file_has(a.log, "adding ticket holder"));
    assert_true(file_has(a.log, "promoting standby"));
    /* Exactly A and B answer for the group; C and E said why not. */
    assert_int_equal(json_array_size(json_object_get(j, "members")), 2);
    assert_string_equal(role_of(j, a.peer_id), "voter");
    assert_null(role_of(j, c.peer_id));
    assert_null(role_of(j, e.peer_id));
    json_decref(j);
    assert_true(file_has(c.log, "not a seed and no ticket it accepts"));
    assert_true(file_has(e.log, "not a seed and no ticket it accepts"));

    assert_int_equal(daemon_signal_wait(&b, SIGTERM, ms(10000)), 0);
    assert_int_equal(daemon_signal_wait(&e, SIGTERM, ms(10000)), 0);
    assert_int_equal(daemon_signal_wait(&c, SIGTERM, ms(10000)), 0);
    assert_int_equal(daemon_signal_wait(&a, SIGTERM, ms(10000)), 0);
    daemon_rmtree(dir);
}

static void bad_input_is_named(void **state)
{
    (void)state;
    char dir[256], cfg[600], bad[600], path[600];
    daemon_tmpdir(dir, sizeof dir);
    daemon_proc a = {0};
    mk_keypair issuer;
    assert_int_equal(mk_keypair_generate(&issuer), 0);
    assert_int_equal(daemon_prepare(&a, dir, "a"), 0);
    snprintf(cfg, sizeof cfg, "%s/node.json", dir);
    snprintf(bad, sizeof bad, "%s/bad.jwt", dir);
    write_file(bad, "not a token\n");

    write_config(cfg, a.peer_id, &issuer.pub, ", \"issuers\": []");
    char *argv[] = {(char *)build_path("coalitiond", path, sizeof path),
                    "--listen", "127.0.0.1:0", "--key", a.key, "--data",
                    a.data, "--config", cfg, NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "tickets"));
    assert_non_null(strstr(r.err, "\"issuers\""));
    proc_result_free(&r);

    write_config(cfg, a.peer_id, &issuer.pub, "");
    char *argv2[] = {(char *)build_path("coalitiond", path, sizeof path),
                     "--listen", "127.0.0.1:0", "--key", a.key, "--data",
                     a.data, "--config", cfg, "--ticket", bad, NULL};
    assert_int_equal(proc_run(argv2, NULL, &r), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--ticket"));
    assert_non_null(strstr(r.err, "not a compact JWT"));
    proc_result_free(&r);
    daemon_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(holder_joins_outsiders_do_not),
        cmocka_unit_test(bad_input_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
