/* Groups across real processes: the ★ group tests of mosaik.md §11.2 that
 * apply to a static-voter design, plus what mosaik gets wrong (Appendix D):
 * no acknowledged write is ever lost, an isolated minority never commits,
 * strong reads are linearizable.
 *
 * Every member is a build/coalitiond hosting groups from a JSON node
 * config on loopback, killed with SIGKILL/SIGSTOP and restarted from its
 * data dir. The test process itself is an ephemeral node on the same
 * network: it reaches members through the group client (the code behind
 * `coalition group`), follows them with replicas, and asks them for their
 * status and state hashes.
 *
 * Timing: Raft timeouts and every wait scale with TIME_FACTOR (3 under
 * ASan/UBSan); nothing asserts on speed.
 */
#define _GNU_SOURCE /* unshare(2) */
#include <jansson.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "linearizable.h"
#include "mosaik/blake3.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/testing/fsm_test.h"
#include "mosaik/group_client.h"
#include "mosaik/node.h"
#include "proc.h"

#define MAXD 6
#define MAXG 3

static double TF = 1.0;

static int ms(int base)
{
    return (int)(base * TF);
}

/* ---- the environment: daemons and the test's own node --------------------- */

typedef struct gspec {
    const char *name, *root, *kind;
    uint32_t election_ms, heartbeat_ms, snapshot_threshold;
    uint32_t max_voters, replace_after_ms; /* 0: the defaults */
    int voters[MAXD]; /* daemon indexes, -1 terminated */
} gspec;

typedef struct env {
    char dir[512];
    daemon_proc d[MAXD];
    int nd;
    char cfg[MAXD][600];
    struct {
        gspec spec;
        mk_id id;
        mk_group_client *cli;
    } g[MAXG];
    int ng;
    uv_loop_t loop;
    uv_timer_t pulse;
    mk_node *node;
    mk_keypair key;
} env;

/* The environment of the running test, until env_close: when an assertion
 * fails mid-test (cmocka jumps out), the teardown still stops its daemons
 * and says what they logged. */
static env *current;
static void unmount_all(void);

static int teardown_env(void **state)
{
    env *e = current;
    current = NULL;
    if (!e)
        return 0;
    for (int i = 0; i < e->nd; i++)
        if (e->d[i].pid > 0) {
            kill(e->d[i].pid, SIGCONT);
            daemon_kill(&e->d[i]);
        }
    for (int i = 0; i < e->nd; i++)
        daemon_dump_log(&e->d[i]);
    unmount_all();
    daemon_rmtree(e->dir);
    return 0;
}

static void on_pulse(uv_timer_t *t)
{
    (void)t; /* keeps UV_RUN_ONCE from blocking for long */
}

static void spin(env *e, int for_ms)
{
    int64_t end = mk_mono_ms() + for_ms;
    while (mk_mono_ms() < end)
        uv_run(&e->loop, UV_RUN_ONCE);
}

static bool wait_until(env *e, bool (*pred)(env *, void *), void *arg,
                       int timeout_ms)
{
    int64_t end = mk_mono_ms() + timeout_ms;
    while (mk_mono_ms() < end) {
        if (pred(e, arg))
            return true;
        spin(e, 20);
    }
    return pred(e, arg);
}

static void gid_of(const gspec *s, const daemon_proc *d, mk_id *out)
{
    struct mk_fsm *f = mk_fsm_test_new(s->kind);
    assert_non_null(f);
    mk_peer_id voters[MAXD];
    size_t n = 0;
    for (; n < MAXD && s->voters[n] >= 0; n++)
        assert_int_equal(mk_id_from_hex(&voters[n], d[s->voters[n]].peer_id,
                                        MK_ID_HEX_LEN),
                         0);
    mk_group_config cfg = {.fsm = f, .voters = voters, .n_voters = n};
    mk_id_from_str(&cfg.root, s->root);
    cfg.params.election_timeout_ms = s->election_ms;
    cfg.params.heartbeat_ms = s->heartbeat_ms;
    cfg.params.max_voters = s->max_voters;
    mk_group_id_of(&cfg, out);
    mk_fsm_test_free(f);
}

/* Default timing: deliberate election timeouts (raft-probe hazard 5),
 * scaled for sanitized runs. */
static gspec spec(const char *name, const char *kind, uint32_t snap)
{
    gspec s = {.name = name, .root = name, .kind = kind,
               .election_ms = (uint32_t)ms(500),
               .heartbeat_ms = (uint32_t)ms(50), .snapshot_threshold = snap,
               .voters = {0, 1, 2, -1}};
    return s;
}

static void write_config(const char *path, const gspec *specs, int n,
                         const daemon_proc *d)
{
    json_t *root = json_object(), *gs = json_array();
    for (int i = 0; i < n; i++) {
        const gspec *s = &specs[i];
        json_t *g = json_object(), *vs = json_array(), *p = json_object();
        json_object_set_new(g, "name", json_string(s->name));
        json_object_set_new(g, "root", json_string(s->root));
        json_object_set_new(g, "kind", json_string(s->kind));
        for (int v = 0; v < MAXD && s->voters[v] >= 0; v++)
            json_array_append_new(vs, json_string(d[s->voters[v]].peer_id));
        json_object_set_new(g, "voters", vs);
        json_object_set_new(p, "election_timeout_ms",
                            json_integer(s->election_ms));
        json_object_set_new(p, "heartbeat_ms", json_integer(s->heartbeat_ms));
        if (s->snapshot_threshold)
            json_object_set_new(p, "snapshot_threshold",
                                json_integer(s->snapshot_threshold));
        if (s->max_voters)
            json_object_set_new(p, "max_voters", json_integer(s->max_voters));
        if (s->replace_after_ms)
            json_object_set_new(p, "replace_after_ms",
                                json_integer(s->replace_after_ms));
        json_object_set_new(g, "params", p);
        json_array_append_new(gs, g);
    }
    json_object_set_new(root, "groups", gs);
    assert_int_equal(json_dump_file(root, path, JSON_INDENT(1)), 0);
    json_decref(root);
}

/* Prepares `nd` daemons and one config for all of them; the test's
 * groups are `specs` (whose GroupIds the test tracks). */
static void env_init(env *e, int nd, const gspec *specs, int ng)
{
    memset(e, 0, sizeof *e);
    assert_non_null(daemon_tmpdir(e->dir, sizeof e->dir));
    current = e;
    e->nd = nd;
    /* A copy of the directory: gcc cannot tell e->dir and e->cfg apart. */
    char dir[sizeof e->dir];
    memcpy(dir, e->dir, sizeof dir);
    for (int i = 0; i < nd; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        assert_int_equal(daemon_prepare(&e->d[i], dir, name), 0);
        snprintf(e->cfg[i], sizeof e->cfg[i], "%s/node.json", dir);
    }
    write_config(e->cfg[0], specs, ng, e->d);
    e->ng = ng;
    for (int i = 0; i < ng; i++) {
        e->g[i].spec = specs[i];
        gid_of(&specs[i], e->d, &e->g[i].id);
    }
    uv_loop_init(&e->loop);
    uv_timer_init(&e->loop, &e->pulse);
    uv_timer_start(&e->pulse, on_pulse, 5, 5);
}

/* A config of its own for daemon `i` (e.g. a different view). */
static void env_own_config(env *e, int i, const gspec *specs, int n)
{
    snprintf(e->cfg[i], sizeof e->cfg[i], "%s/node-%d.json", e->dir, i);
    write_config(e->cfg[i], specs, n, e->d);
}

static bool running(const env *e, int i)
{
    return e->d[i].pid > 0;
}

/* Starts (or restarts) daemon `i`, bootstrapping from every other running
 * daemon: one of them may be on its way out. */
static void start(env *e, int i)
{
    char boot[MAXD][160];
    const char *args[4 + 2 * MAXD] = {"--config", e->cfg[i]};
    int n = 2;
    for (int j = 0; j < e->nd; j++)
        if (j != i && running(e, j)) {
            args[n++] = "--bootstrap";
            args[n++] = daemon_bootstrap(&e->d[j], boot[j], sizeof boot[j]);
        }
    args[n] = NULL;
    if (daemon_start(&e->d[i], args) != 0) {
        daemon_dump_log(&e->d[i]);
        fail_msg("daemon m%d did not start", i);
    }
}

static void open_node(env *e)
{
    char boots[MAXD][160];
    const char *bp[MAXD];
    size_t nb = 0;
    for (int i = 0; i < e->nd; i++)
        if (running(e, i))
            bp[nb] = daemon_bootstrap(&e->d[i], boots[nb], sizeof boots[nb]),
            nb++;
    assert_int_equal(mk_keypair_generate(&e->key), 0);
    mk_node_config nc = {.loop = &e->loop, .key = &e->key,
                         .bootstrap = bp, .n_bootstrap = nb};
    char err[MK_ERRMSG_SIZE];
    assert_int_equal(mk_node_new(&nc, &e->node, err), 0);
    assert_int_equal(mk_node_start(e->node), 0);
    for (int i = 0; i < e->ng; i++)
        assert_int_equal(
            mk_group_client_open(e->node, &e->g[i].id, &e->g[i].cli), 0);
}

static void env_dump(env *e)
{
    for (int i = 0; i < e->nd; i++)
        daemon_dump_log(&e->d[i]);
}

/* Waits for a daemon that was already signalled (a second SIGTERM could
 * land after it closed its handlers and kill it). Its exit status, or -1
 * (then it is killed). */
static int wait_exit(daemon_proc *d, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    daemon_kill(d);
    return -1;
}

/* SIGTERM for one member while this process keeps serving its own links
 * (a member leaving waits for its peers, us included, to hang up). Its
 * exit status, or -1. */
static int stop_member(env *e, int i, int timeout_ms)
{
    daemon_proc *d = &e->d[i];
    kill(d->pid, SIGTERM);
    int64_t end = mk_mono_ms() + timeout_ms;
    while (mk_mono_ms() < end) {
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        spin(e, 20);
    }
    daemon_kill(d);
    return -1;
}

static void env_close(env *e, bool dump)
{
    current = NULL;
    if (dump)
        env_dump(e);
    for (int i = 0; i < e->ng; i++)
        if (e->g[i].cli)
            mk_group_client_close(e->g[i].cli, NULL, NULL);
    if (e->node)
        mk_node_close(e->node, NULL, NULL);
    uv_close((uv_handle_t *)&e->pulse, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    /* Members leave gracefully and must exit 0: under the sanitizers a
     * leak or an error in a daemon fails the test here. */
    for (int i = 0; i < e->nd; i++)
        if (running(e, i)) {
            kill(e->d[i].pid, SIGCONT);
            kill(e->d[i].pid, SIGTERM);
        }
    int bad = -1;
    for (int i = 0; i < e->nd; i++)
        if (running(e, i) && wait_exit(&e->d[i], ms(10000)) != 0 && bad < 0)
            bad = i;
    if (bad >= 0 && !dump)
        daemon_dump_log(&e->d[bad]);
    unmount_all();
    daemon_rmtree(e->dir);
    if (bad >= 0 && !dump)
        fail_msg("daemon m%d did not exit cleanly", bad);
}

/* ---- asking members ------------------------------------------------------ */

typedef struct st_wait {
    bool done;
    int status;
    mk_member_status st;
} st_wait;

static void on_st(int status, const mk_member_status *st, void *data)
{
    st_wait *w = data;
    w->done = true;
    w->status = status;
    if (st)
        w->st = *st;
}

static bool st_done(env *e, void *arg)
{
    return ((st_wait *)arg)->done;
}

static mk_peer_id peer_of(const env *e, int i)
{
    mk_peer_id p;
    mk_id_from_hex(&p, e->d[i].peer_id, 64);
    return p;
}

static int member_status(env *e, int g, int i, bool hash,
                         mk_member_status *out, int timeout_ms)
{
    st_wait w = {0};
    mk_peer_id p = peer_of(e, i);
    assert_int_equal(mk_group_client_status(e->g[g].cli, &p, hash,
                                            (uint32_t)timeout_ms, on_st, &w),
                     0);
    wait_until(e, st_done, &w, timeout_ms + ms(1000));
    if (!w.done)
        return MK_ECONNECT_TIMEOUT;
    if (w.status == 0)
        *out = w.st;
    return w.status;
}

static int index_of(const env *e, const mk_peer_id *p)
{
    char hex[65];
    mk_id_hex(p, hex);
    for (int i = 0; i < e->nd; i++)
        if (strcmp(e->d[i].peer_id, hex) == 0)
            return i;
    return -1;
}

typedef struct leader_q {
    int g;
    const int *members;
    int n;
    int found;
} leader_q;

/* True when every listed member answers and they agree on one leader that
 * says it is the leader, and no one else does. */
static bool agree(env *e, void *arg)
{
    leader_q *q = arg;
    int leader = -1, leaders = 0;
    for (int k = 0; k < q->n; k++) {
        mk_member_status s;
        if (member_status(e, q->g, q->members[k], false, &s, ms(1000)) != 0 ||
            !s.st.has_leader || !s.st.online)
            return false;
        int l = index_of(e, &s.st.leader);
        if (leader >= 0 && l != leader)
            return false;
        leader = l;
        leaders += s.st.is_leader;
    }
    q->found = leader;
    return leader >= 0 && leaders == 1;
}

static int wait_leader(env *e, int g, const int *members, int n,
                       int timeout_ms)
{
    leader_q q = {.g = g, .members = members, .n = n, .found = -1};
    int64_t t0 = mk_mono_ms();
    if (!wait_until(e, agree, &q, timeout_ms)) {
        /* Say what each member thought, for the failure report. */
        print_message("no agreed leader after %lld ms:\n",
                      (long long)(mk_mono_ms() - t0));
        for (int k = 0; k < n; k++) {
            mk_member_status s = {0};
            int rc = member_status(e, g, members[k], false, &s, ms(1000));
            print_message("  m%d: %s online %d leader %d is_leader %d term "
                          "%llu state %s\n",
                          members[k], rc ? mk_err_name(rc) : "ok",
                          s.st.online, rc ? -1 : index_of(e, &s.st.leader),
                          s.st.is_leader, (unsigned long long)s.st.term,
                          mk_member_role_name(s.role));
        }
        return -1;
    }
    return q.found;
}

typedef struct same_q {
    int g;
    const int *members;
    int n;
    uint64_t applied;
    mk_id hash;
} same_q;

/* Every listed member has applied the same commands to the same state. */
static bool same_state(env *e, void *arg)
{
    same_q *q = arg;
    for (int k = 0; k < q->n; k++) {
        mk_member_status s;
        if (member_status(e, q->g, q->members[k], true, &s, ms(1000)) != 0 ||
            !s.has_hash)
            return false;
        if (k == 0) {
            q->applied = s.st.applied;
            q->hash = s.hash;
        } else if (s.st.applied != q->applied || !mk_id_eq(&s.hash, &q->hash)) {
            return false;
        }
    }
    return true;
}

/* ---- commands and queries --------------------------------------------------- */

typedef struct res {
    bool done;
    int status;
    uint64_t applied;
    char *text; /* NUL-terminated; the next call or res_free releases it */
    size_t len;
} res;

static void res_free(res *r)
{
    free(r->text);
    r->text = NULL;
}

static void on_res(int status, uint64_t applied, const uint8_t *r, size_t len,
                   void *data)
{
    res *x = data;
    x->done = true;
    x->status = status;
    x->applied = applied;
    x->text = malloc(len + 1);
    assert_non_null(x->text);
    x->len = len;
    if (len)
        memcpy(x->text, r, len);
    x->text[len] = '\0';
}

static bool res_done(env *e, void *arg)
{
    return ((res *)arg)->done;
}

/* Runs one command through member `via` (-1: the leader or anyone). */
static int exec_sync(env *e, int g, int via, const char *cmd, int timeout_ms,
                     res *r)
{
    res_free(r);
    memset(r, 0, sizeof *r);
    mk_peer_id p = via >= 0 ? peer_of(e, via) : (mk_peer_id){{0}};
    mk_group_client_via(e->g[g].cli, via >= 0 ? &p : NULL);
    assert_int_equal(mk_group_client_execute(e->g[g].cli, cmd, strlen(cmd),
                                             (uint32_t)timeout_ms, on_res, r),
                     0);
    wait_until(e, res_done, r, timeout_ms + ms(2000));
    assert_true(r->done);
    return r->status;
}

static int query_sync(env *e, int g, int via, const char *q,
                      mk_consistency level, int timeout_ms, res *r)
{
    res_free(r);
    memset(r, 0, sizeof *r);
    mk_peer_id p = via >= 0 ? peer_of(e, via) : (mk_peer_id){{0}};
    mk_group_client_via(e->g[g].cli, via >= 0 ? &p : NULL);
    assert_int_equal(mk_group_client_query(e->g[g].cli, q, strlen(q), level,
                                           (uint32_t)timeout_ms, on_res, r),
                     0);
    wait_until(e, res_done, r, timeout_ms + ms(2000));
    assert_true(r->done);
    return r->status;
}

/* ---- election, forwarding, queries, restarts, outsiders ----------------- */

static const int ALL3[] = {0, 1, 2};

static int others(int leader, int out[2])
{
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (i != leader)
            out[n++] = i;
    return n;
}

static void membership(void **state)
{
    static env e; /* outlives a failed assertion: see teardown_env */
    gspec specs[1] = {spec("cnt", "counter", 0)};
    env_init(&e, 5, specs, 1);
    /* m3 lists itself as a fourth voter (same root, kind and timing): the
     * voter set is in the GroupId, so it runs another group, which the
     * real voters never serve, and it cannot answer for theirs. m4 uses
     * different timing, hence another GroupId, and must never bond. */
    gspec outsider = specs[0];
    int four[] = {0, 1, 2, 3, -1};
    memcpy(outsider.voters, four, sizeof four);
    env_own_config(&e, 3, &outsider, 1);
    gspec other = specs[0];
    other.election_ms = specs[0].election_ms + 100;
    int with4[] = {0, 1, 2, 4, -1};
    memcpy(other.voters, with4, sizeof with4);
    env_own_config(&e, 4, &other, 1);
    mk_id other_id;
    gid_of(&other, e.d, &other_id);
    assert_false(mk_id_eq(&other_id, &e.g[0].id));

    for (int i = 0; i < 5; i++)
        start(&e, i);
    open_node(&e);

    /* Election: one leader all three agree on. */
    int leader = wait_leader(&e, 0, ALL3, 3, ms(15000));
    if (leader < 0)
        goto fail;
    int fol[2];
    others(leader, fol);

    /* Execute on the leader and through a follower (forwarded). */
    res r = {0};
    assert_int_equal(exec_sync(&e, 0, leader, "5", ms(5000), &r), 0);
    assert_string_equal(r.text, "5");
    assert_int_equal(r.applied, 1);
    assert_int_equal(exec_sync(&e, 0, fol[0], "-2", ms(5000), &r), 0);
    assert_string_equal(r.text, "3");
    assert_int_equal(r.applied, 2);
    /* A strong query through the other follower sees both writes at once
     * (the leader answers after a barrier). */
    assert_int_equal(query_sync(&e, 0, fol[1], "", MK_STRONG, ms(5000), &r),
                     0);
    assert_string_equal(r.text, "3");
    assert_true(r.applied >= 2);
    /* Weak queries read each member's own state: once caught up, the
     * same everywhere. */
    same_q sq = {.g = 0, .members = ALL3, .n = 3};
    assert_true(wait_until(&e, same_state, &sq, ms(5000)));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(query_sync(&e, 0, i, "", MK_WEAK, ms(3000), &r), 0);
        assert_string_equal(r.text, "3");
    }

    /* The outsiders: m3 does not serve the real group (asked for it, it
     * answers nothing), m4 runs another group alone. */
    mk_member_status s;
    assert_int_equal(member_status(&e, 0, 3, false, &s, ms(2000)),
                     MK_ECONNECT_TIMEOUT);

    /* The CLI: status names the leader; a group nobody runs times out
     * (exit 3). */
    char bootarg[160], path[600];
    daemon_bootstrap(&e.d[leader], bootarg, sizeof bootarg);
    char *argv1[] = {(char *)build_path("coalition", path, sizeof path),
                     "group", "status", "--bootstrap", bootarg, "--config",
                     e.cfg[0], "--name", "cnt", "--json", "--timeout",
                     TF > 1 ? "15s" : "5s", NULL};
    proc_result pr;
    assert_int_equal(proc_run(argv1, NULL, &pr), 0);
    assert_int_equal(pr.status, 0);
    json_t *j = json_loads(pr.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "leader")),
                        e.d[leader].peer_id);
    assert_int_equal(json_array_size(json_object_get(j, "voters")), 3);
    json_decref(j);
    proc_result_free(&pr);
    char *argv2[] = {(char *)build_path("coalition", path, sizeof path),
                     "group", "status", "--bootstrap", bootarg, "--group",
                     "00000000000000000000000000000000000000000000000000000"
                     "00000000000",
                     "--timeout", "1s", NULL};
    assert_int_equal(proc_run(argv2, NULL, &pr), 0);
    assert_int_equal(pr.status, 3);
    proc_result_free(&pr);

    /* Failover: kill -9 the leader; the two others elect exactly one new
     * leader, which keeps the state and takes commands. */
    daemon_kill(&e.d[leader]);
    int nl = wait_leader(&e, 0, fol, 2, ms(15000));
    if (nl < 0)
        goto fail;
    assert_int_not_equal(nl, leader);
    assert_int_equal(exec_sync(&e, 0, -1, "10", ms(10000), &r), 0);
    assert_string_equal(r.text, "13");
    assert_int_equal(r.applied, 3);

    /* The old leader restarts from its durable log and catches up. */
    start(&e, leader);
    assert_true(wait_until(&e, same_state, &sq, ms(15000)));
    assert_int_equal(sq.applied, 3);
    assert_int_equal(query_sync(&e, 0, leader, "", MK_WEAK, ms(3000), &r), 0);
    assert_string_equal(r.text, "13");
    assert_int_equal(wait_leader(&e, 0, ALL3, 3, ms(10000)), nl);
    res_free(&r);

    /* Commits never needed the outsiders. */
    assert_int_equal(member_status(&e, 0, 3, false, &s, ms(2000)),
                     MK_ECONNECT_TIMEOUT);
    mk_group_client *oc;
    assert_int_equal(mk_group_client_open(e.node, &other_id, &oc), 0);
    st_wait w = {0};
    mk_peer_id p4 = peer_of(&e, 4);
    assert_int_equal(mk_group_client_status(oc, &p4, false,
                                            (uint32_t)ms(2000), on_st, &w),
                     0);
    wait_until(&e, st_done, &w, ms(4000));
    assert_int_equal(w.status, 0);
    assert_false(w.st.st.online);
    assert_false(w.st.st.has_leader);
    mk_group_client_close(oc, NULL, NULL);
    env_close(&e, false);
    return;
fail:
    env_close(&e, true);
    fail_msg("no leader");
}

/* ---- catch-up after a long absence: a snapshot install ------------------ */

static void snapshot_catchup(void **state)
{
    static env e; /* outlives a failed assertion: see teardown_env */
    gspec specs[1] = {spec("snap", "log", 16)};
    env_init(&e, 3, specs, 1);
    for (int i = 0; i < 3; i++)
        start(&e, i);
    open_node(&e);
    int leader = wait_leader(&e, 0, ALL3, 3, ms(15000));
    if (leader < 0) {
        env_close(&e, true);
        fail_msg("no leader");
    }
    int fol[2];
    others(leader, fol);
    res r = {0};
    char cmd[32];
    for (int i = 1; i <= 5; i++) {
        snprintf(cmd, sizeof cmd, "a%d", i);
        assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(5000), &r), 0);
    }
    /* A follower goes away while the others commit far past the
     * snapshot threshold (the leader's log no longer has what it missed). */
    daemon_kill(&e.d[fol[1]]);
    for (int i = 6; i <= 120; i++) {
        snprintf(cmd, sizeof cmd, "a%d", i);
        assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(5000), &r), 0);
        assert_int_equal(r.applied, (uint64_t)i);
    }
    start(&e, fol[1]);
    same_q sq = {.g = 0, .members = ALL3, .n = 3};
    assert_true(wait_until(&e, same_state, &sq, ms(20000)));
    assert_int_equal(sq.applied, 120);
    assert_int_equal(query_sync(&e, 0, fol[1], "get 120", MK_WEAK, ms(3000),
                                &r),
                     0);
    assert_string_equal(r.text, "a120");
    /* And it takes part in commits again. */
    assert_int_equal(exec_sync(&e, 0, fol[1], "a121", ms(5000), &r), 0);
    assert_int_equal(r.applied, 121);
    res_free(&r);
    env_close(&e, false);
}

/* ---- a pipelined client: each command proposed once -------------------- */

typedef struct window_run {
    size_t acked, failed;
    int first_error;
} window_run;

static void on_windowed(int status, uint64_t applied, const uint8_t *out,
                        size_t len, void *data)
{
    window_run *w = data;
    (void)applied;
    (void)out;
    (void)len;
    if (status == 0) {
        w->acked++;
    } else {
        w->failed++;
        if (!w->first_error)
            w->first_error = status;
    }
}

/* 10,000 commands with 4,096 in flight through one client: every one is
 * acknowledged, the committee's log grows by at most one entry per
 * command (group commit makes it far less), and, while the leader stays
 * the same, no command is proposed twice. Counts, not timings. */
static void pipelined_window(void **state)
{
    static env e; /* outlives a failed assertion: see teardown_env */
    gspec specs[1] = {spec("win", "counter", 0)};
    enum { TOTAL = 10000, WINDOW = 4096 };
    env_init(&e, 3, specs, 1);
    for (int i = 0; i < 3; i++)
        start(&e, i);
    open_node(&e);
    int leader = wait_leader(&e, 0, ALL3, 3, ms(15000));
    if (leader < 0) {
        env_close(&e, true);
        fail_msg("no leader");
    }
    mk_member_status before;
    assert_int_equal(member_status(&e, 0, leader, false, &before, ms(3000)),
                     0);

    window_run w = {0};
    size_t sent = 0;
    int64_t end = mk_mono_ms() + ms(120000);
    while (w.acked + w.failed < TOTAL && mk_mono_ms() < end) {
        while (sent < TOTAL && sent - w.acked - w.failed < WINDOW) {
            assert_int_equal(mk_group_client_execute(e.g[0].cli, "1", 1,
                                                     (uint32_t)ms(60000),
                                                     on_windowed, &w),
                             0);
            sent++;
        }
        uv_run(&e.loop, UV_RUN_ONCE);
    }
    if (w.failed)
        fail_msg("%zu of %d failed (first: %s)", w.failed, TOTAL,
                 mk_strerror(w.first_error));
    assert_int_equal(w.acked, TOTAL);

    mk_member_status after;
    assert_int_equal(member_status(&e, 0, leader, false, &after, ms(3000)),
                     0);
    assert_int_equal(after.st.applied, before.st.applied + TOTAL);
    uint64_t entries = after.st.commit_index - before.st.commit_index;
    printf("window %d: %d commands acknowledged in %" PRIu64
           " raft entries; %" PRIu64 " proposals in term %" PRIu64 "\n",
           WINDOW, TOTAL, entries,
           after.commands_proposed - before.commands_proposed, after.st.term);
    assert_true(entries <= TOTAL);
    if (after.st.term == before.st.term && after.st.is_leader)
        assert_int_equal(after.commands_proposed - before.commands_proposed,
                         TOTAL);
    env_close(&e, false);
}

/* ---- an isolated minority never commits ----------------------------------- */

static void isolated_minority(void **state)
{
    static env e; /* outlives a failed assertion: see teardown_env */
    gspec specs[1] = {spec("iso", "counter", 0)};
    env_init(&e, 3, specs, 1);
    for (int i = 0; i < 3; i++)
        start(&e, i);
    open_node(&e);
    int leader = wait_leader(&e, 0, ALL3, 3, ms(15000));
    if (leader < 0) {
        env_close(&e, true);
        fail_msg("no leader");
    }
    res r = {0};
    assert_int_equal(exec_sync(&e, 0, -1, "1", ms(5000), &r), 0);
    int fol[2];
    others(leader, fol);
    /* Freeze both followers: the leader alone is a minority. */
    kill(e.d[fol[0]].pid, SIGSTOP);
    kill(e.d[fol[1]].pid, SIGSTOP);
    mk_member_status before, after;
    assert_int_equal(member_status(&e, 0, leader, false, &before, ms(2000)),
                     0);
    assert_int_equal(exec_sync(&e, 0, leader, "100", ms(3000), &r),
                     MK_ECONNECT_TIMEOUT);
    assert_int_equal(member_status(&e, 0, leader, false, &after, ms(2000)),
                     0);
    assert_int_equal(after.st.commit_index, before.st.commit_index);
    assert_int_equal(after.st.applied, 1);
    /* It noticed it lost its majority and stepped down. */
    assert_false(after.st.is_leader);
    kill(e.d[fol[0]].pid, SIGCONT);
    kill(e.d[fol[1]].pid, SIGCONT);
    if (wait_leader(&e, 0, ALL3, 3, ms(15000)) < 0) {
        env_close(&e, true);
        fail_msg("no recovery");
    }
    assert_int_equal(exec_sync(&e, 0, -1, "10", ms(5000), &r), 0);
    /* The timed-out command is applied at most once. */
    assert_true(strcmp(r.text, "11") == 0 || strcmp(r.text, "111") == 0);
    same_q sq = {.g = 0, .members = ALL3, .n = 3};
    assert_true(wait_until(&e, same_state, &sq, ms(10000)));
    assert_int_equal(sq.applied, strcmp(r.text, "11") == 0 ? 2 : 3);
    res_free(&r);
    env_close(&e, false);
}

/* ---- membership: standbys replace a silent voter ------------------------ */

/* The member ahead of the others in PeerId order `rank` (0 = lowest). */
static int by_rank(const env *e, const int *members, int n, int rank)
{
    for (int k = 0; k < n; k++) {
        int below = 0;
        for (int j = 0; j < n; j++)
            below += strcmp(e->d[members[j]].peer_id,
                            e->d[members[k]].peer_id) < 0;
        if (below == rank)
            return members[k];
    }
    return -1;
}

static int assign_sync(env *e, int g, const mk_peer_id *member, bool voter,
                       const mk_keypair *signer, res *r)
{
    res_free(r);
    memset(r, 0, sizeof *r);
    mk_group_client_via(e->g[g].cli, NULL);
    assert_int_equal(mk_group_client_assign(e->g[g].cli, member, voter,
                                            signer, (uint32_t)ms(10000),
                                            on_res, r),
                     0);
    wait_until(e, res_done, r, ms(12000));
    assert_true(r->done);
    return r->status;
}

typedef struct roles_q {
    int g, leader, gone, standby;
    int max_seen; /* the most voters any answer reported */
} roles_q;

/* The leader reports three voters, among them the former standby and not
 * the silent one; every answer seen on the way is checked for the cap. */
static bool replaced(env *e, void *arg)
{
    roles_q *q = arg;
    mk_member_status s;
    if (member_status(e, q->g, q->leader, false, &s, ms(1000)) != 0)
        return false;
    if ((int)s.st.n_voters > q->max_seen)
        q->max_seen = (int)s.st.n_voters;
    bool has_standby = false, has_gone = false;
    for (size_t v = 0; v < s.st.n_voters; v++) {
        int i = index_of(e, &s.voters[v]);
        has_standby |= i == q->standby;
        has_gone |= i == q->gone;
    }
    mk_member_status t;
    return s.st.is_leader && s.st.n_voters == 3 && has_standby && !has_gone &&
           member_status(e, q->g, q->standby, false, &t, ms(1000)) == 0 &&
           t.st.is_voter;
}

/* ---- key rotation without downtime ----------------------------------- */

enum { DEMOTE, PROMOTE, REMOVE };

#define ROT_WINDOW 4
#define ROT_MAX_WRITES 4096

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* An operator's request, while a client keeps ROT_WINDOW writes in
 * flight without pause: every write must be acknowledged (no downtime),
 * and the acknowledged sequence numbers must be exactly the next ones
 * (none lost, none repeated). The request's status. */
static int change_while_writing(env *e, int g, int what,
                                const mk_peer_id *member,
                                const mk_keypair *signer, uint64_t *writes)
{
    mk_group_client *cli = e->g[g].cli;
    mk_group_client_via(cli, NULL);
    static res w[ROT_WINDOW];
    static uint64_t got[ROT_MAX_WRITES];
    bool busy[ROT_WINDOW] = {false};
    size_t n = 0;
    int after = 0;
    for (int k = 0; k < ROT_WINDOW; k++) {
        memset(&w[k], 0, sizeof w[k]);
        assert_int_equal(mk_group_client_execute(cli, "1", 1,
                                                 (uint32_t)ms(5000), on_res,
                                                 &w[k]),
                         0);
        busy[k] = true;
    }
    res a = {0};
    int rc = what == REMOVE
                 ? mk_group_client_remove(cli, member, signer,
                                          (uint32_t)ms(10000), on_res, &a)
                 : mk_group_client_assign(cli, member, what == PROMOTE,
                                          signer, (uint32_t)ms(10000),
                                          on_res, &a);
    assert_int_equal(rc, 0);
    int64_t t0 = mk_mono_ms();
    for (;;) {
        bool any = false;
        for (int k = 0; k < ROT_WINDOW; k++) {
            if (busy[k] && w[k].done) {
                if (w[k].status != 0)
                    fail_msg("a write failed during the change: %s",
                             mk_strerror(w[k].status));
                assert_true(n < ROT_MAX_WRITES);
                got[n++] = w[k].applied;
                res_free(&w[k]);
                busy[k] = false;
                after += a.done;
            }
            /* At least a few writes after the answer: the new
             * configuration must take them. */
            if (!busy[k] && after < 3) {
                memset(&w[k], 0, sizeof w[k]);
                assert_int_equal(mk_group_client_execute(cli, "1", 1,
                                                         (uint32_t)ms(5000),
                                                         on_res, &w[k]),
                                 0);
                busy[k] = true;
            }
            any |= busy[k];
        }
        if (a.done && after >= 3 && !any)
            break;
        if (mk_mono_ms() - t0 > ms(30000))
            fail_msg("the change or the writes did not finish");
        spin(e, 2);
    }
    qsort(got, n, sizeof got[0], cmp_u64);
    for (size_t i = 0; i < n; i++)
        if (got[i] != *writes + 1 + i)
            fail_msg("write %zu of %zu acknowledged at %llu, wanted %llu", i,
                     n, (unsigned long long)got[i],
                     (unsigned long long)(*writes + 1 + i));
    *writes += n;
    print_message("%s: %zu writes acknowledged, %d of them in flight "
                  "when it was asked, %d after its answer\n",
                  what == DEMOTE ? "demote" : what == PROMOTE ? "promote"
                                                              : "remove",
                  n, ROT_WINDOW, after);
    int status = a.status;
    res_free(&a);
    return status;
}

/* A member's key is rotated: its new key runs as a standby, the old voter
 * is demoted, the new key promoted, the old node stopped and its key
 * removed, while a client writes throughout. Every acknowledged write is
 * on every remaining member, and the removed key is refused afterwards:
 * its signature no longer counts and it cannot be promoted back. */
static void key_rotation_without_downtime(void **state)
{
    static env e; /* outlives a failed assertion: see teardown_env */
    gspec specs[1] = {spec("keyrot", "counter", 0)};
    int four[] = {0, 1, 2, 3, -1};
    memcpy(specs[0].voters, four, sizeof four);
    specs[0].max_voters = 3;
    /* The leader must not fill the place itself mid-rotation. */
    specs[0].replace_after_ms = (uint32_t)ms(60000);
    env_init(&e, 4, specs, 1);
    for (int i = 0; i < 4; i++)
        start(&e, i);
    open_node(&e);
    const int all4[] = {0, 1, 2, 3};
    int fresh = by_rank(&e, all4, 4, 3); /* the new key, a standby */
    int voters[3], nv = 0;
    for (int i = 0; i < 4; i++)
        if (i != fresh)
            voters[nv++] = i;
    int leader = wait_leader(&e, 0, voters, 3, ms(15000));
    if (leader < 0) {
        env_close(&e, true);
        fail_msg("no leader");
    }
    int old = voters[0] == leader ? voters[1] : voters[0];
    int third = 0;
    for (int i = 0; i < 4; i++)
        if (i != leader && i != old && i != fresh)
            third = i;
    mk_keypair op, old_key;
    char kerr[MK_ERRMSG_SIZE];
    assert_int_equal(mk_keypair_load(&op, e.d[leader].key, kerr), 0);
    assert_int_equal(mk_keypair_load(&old_key, e.d[old].key, kerr), 0);
    mk_peer_id old_p = peer_of(&e, old), fresh_p = peer_of(&e, fresh);
    uint64_t writes = 0;
    res r = {0};
    assert_int_equal(exec_sync(&e, 0, -1, "1", ms(5000), &r), 0);
    writes = r.applied;

    /* A voter cannot be removed: it must be demoted first. */
    mk_group_client_via(e.g[0].cli, NULL);
    res rv = {0};
    assert_int_equal(mk_group_client_remove(e.g[0].cli, &old_p, &op,
                                            (uint32_t)ms(10000), on_res, &rv),
                     0);
    wait_until(&e, res_done, &rv, ms(12000));
    assert_int_equal(rv.status, MK_EINVAL);
    res_free(&rv);

    /* The rotation: demote the old key, promote the new, stop the old
     * node, remove its key. */
    assert_int_equal(change_while_writing(&e, 0, DEMOTE, &old_p, &op,
                                          &writes), 0);
    assert_int_equal(change_while_writing(&e, 0, PROMOTE, &fresh_p, &op,
                                          &writes), 0);
    mk_member_status s;
    assert_int_equal(member_status(&e, 0, fresh, false, &s, ms(2000)), 0);
    assert_true(s.st.is_voter);
    assert_true(stop_member(&e, old, ms(10000)) >= 0);
    assert_int_equal(change_while_writing(&e, 0, REMOVE, &old_p, &op,
                                          &writes), 0);

    /* The removed key is refused: its signature no longer counts, and
     * nothing brings it back. */
    mk_peer_id third_p = peer_of(&e, third);
    assert_int_equal(assign_sync(&e, 0, &third_p, false, &old_key, &r),
                     MK_ENOT_ALLOWED);
    assert_int_equal(assign_sync(&e, 0, &old_p, true, &op, &r), MK_EINVAL);
    assert_int_equal(assign_sync(&e, 0, &old_p, false, &op, &r), MK_EINVAL);

    /* Nothing acknowledged was lost: the three members left hold every
     * write, and only those. */
    assert_int_equal(member_status(&e, 0, leader, false, &s, ms(2000)), 0);
    assert_int_equal(s.st.n_members, 4);
    assert_int_equal(s.st.n_voters, 3);
    const int left[] = {leader, third, fresh};
    same_q sq = {.g = 0, .members = left, .n = 3};
    assert_true(wait_until(&e, same_state, &sq, ms(20000)));
    assert_int_equal(sq.applied, writes);
    assert_int_equal(exec_sync(&e, 0, -1, "1", ms(5000), &r), 0);
    assert_int_equal(r.applied, writes + 1);
    res_free(&r);
    env_close(&e, false);
}

static void standby_replaces_silent_voter(void **state)
{
    static env e; /* outlives a failed assertion: see teardown_env */
    gspec specs[1] = {spec("rot", "counter", 0)};
    int four[] = {0, 1, 2, 3, -1};
    memcpy(specs[0].voters, four, sizeof four);
    specs[0].max_voters = 3;
    specs[0].replace_after_ms = (uint32_t)ms(1500);
    env_init(&e, 4, specs, 1);
    /* max_voters is in the GroupId when the list is longer: the same four
     * members with the default (5) name another group. */
    gspec dflt = specs[0];
    dflt.max_voters = 0;
    mk_id dflt_id;
    gid_of(&dflt, e.d, &dflt_id);
    assert_false(mk_id_eq(&dflt_id, &e.g[0].id));

    for (int i = 0; i < 4; i++)
        start(&e, i);
    open_node(&e);
    const int all4[] = {0, 1, 2, 3};
    int standby = by_rank(&e, all4, 4, 3);
    int voters[3], nv = 0;
    for (int i = 0; i < 4; i++)
        if (i != standby)
            voters[nv++] = i;
    int leader = wait_leader(&e, 0, voters, 3, ms(15000));
    if (leader < 0) {
        env_close(&e, true);
        fail_msg("no leader");
    }
    /* The highest PeerId stands by: it follows, answers, does not vote. */
    mk_member_status s;
    assert_int_equal(member_status(&e, 0, standby, false, &s, ms(2000)), 0);
    assert_false(s.st.is_voter);
    assert_int_equal(s.st.n_voters, 3);
    assert_int_equal(s.st.n_members, 4);
    res r = {0};
    assert_int_equal(exec_sync(&e, 0, standby, "1", ms(5000), &r), 0);

    /* A voter falls silent (not the leader): once replace_after_ms has
     * passed the standby takes its place, and writes go on meanwhile. */
    int gone = voters[0] == leader ? voters[1] : voters[0];
    kill(e.d[gone].pid, SIGKILL);
    waitpid(e.d[gone].pid, NULL, 0);
    e.d[gone].pid = 0;
    roles_q q = {.g = 0, .leader = leader, .gone = gone, .standby = standby};
    int64_t t0 = mk_mono_ms();
    int writes = 0;
    while (!replaced(&e, &q) && mk_mono_ms() - t0 < ms(30000)) {
        assert_int_equal(exec_sync(&e, 0, -1, "1", ms(5000), &r), 0);
        writes++;
    }
    if (!replaced(&e, &q)) {
        env_close(&e, true);
        fail_msg("the standby was not promoted in %d ms", ms(30000));
    }
    assert_true(q.max_seen <= 3);
    print_message("standby promoted %lld ms after the voter went silent, "
                  "%d writes meanwhile\n",
                  (long long)(mk_mono_ms() - t0), writes);

    /* The silent member comes back as a standby and catches up. */
    start(&e, gone);
    int now3[3] = {leader, standby, 0};
    for (int i = 0; i < 4; i++)
        if (i != leader && i != standby && i != gone)
            now3[2] = i;
    assert_int_equal(exec_sync(&e, 0, -1, "1", ms(5000), &r), 0);
    const int back[] = {leader, standby, now3[2], gone};
    same_q sq = {.g = 0, .members = back, .n = 4};
    assert_true(wait_until(&e, same_state, &sq, ms(20000)));
    assert_int_equal(member_status(&e, 0, gone, false, &s, ms(2000)), 0);
    assert_false(s.st.is_voter);
    assert_int_equal(s.st.n_voters, 3);
    assert_int_equal(sq.applied, (uint64_t)writes + 2);

    /* An operator's rotation, signed with a member's key: the refused
     * ones first (a fourth voter, the leader demoted, an outsider's
     * signature), then demote a voter and promote the standby. */
    mk_keypair mkey, outsider;
    char kerr[MK_ERRMSG_SIZE];
    assert_int_equal(mk_keypair_load(&mkey, e.d[leader].key, kerr), 0);
    assert_int_equal(mk_keypair_generate(&outsider), 0);
    mk_peer_id gone_p = peer_of(&e, gone), leader_p = peer_of(&e, leader);
    assert_int_equal(assign_sync(&e, 0, &gone_p, true, &mkey, &r), MK_EINVAL);
    assert_int_equal(assign_sync(&e, 0, &leader_p, false, &mkey, &r),
                     MK_EINVAL);
    mk_peer_id third = peer_of(&e, now3[2]);
    assert_int_equal(assign_sync(&e, 0, &third, false, &outsider, &r),
                     MK_ENOT_ALLOWED);
    int64_t r0 = mk_mono_ms();
    assert_int_equal(assign_sync(&e, 0, &third, false, &mkey, &r), 0);
    assert_int_equal(assign_sync(&e, 0, &gone_p, true, &mkey, &r), 0);
    print_message("operator rotation (demote, promote): %lld ms\n",
                  (long long)(mk_mono_ms() - r0));
    assert_int_equal(member_status(&e, 0, gone, false, &s, ms(2000)), 0);
    assert_true(s.st.is_voter);
    assert_int_equal(s.st.n_voters, 3);
    assert_int_equal(member_status(&e, 0, now3[2], false, &s, ms(2000)), 0);
    assert_false(s.st.is_voter);
    assert_int_equal(exec_sync(&e, 0, -1, "1", ms(5000), &r), 0);

    /* And back, from the shell: the CLI signs with a member's key file
     * and returns once the change is committed. */
    char bootarg[160], path[600];
    daemon_bootstrap(&e.d[leader], bootarg, sizeof bootarg);
    const char *verbs[2][2] = {{"demote", e.d[gone].peer_id},
                               {"promote", e.d[now3[2]].peer_id}};
    for (int k = 0; k < 2; k++) {
        char *argv[] = {(char *)build_path("coalition", path, sizeof path),
                        "group", (char *)verbs[k][0], "--bootstrap", bootarg,
                        "--config", e.cfg[0], "--name", "rot", "--key",
                        e.d[leader].key, "--json", "--timeout",
                        TF > 1 ? "30s" : "10s", (char *)verbs[k][1], NULL};
        proc_result pr;
        assert_int_equal(proc_run(argv, NULL, &pr), 0);
        if (pr.status != 0)
            print_message("coalition group %s: %s%s", verbs[k][0], pr.out,
                          pr.err);
        assert_int_equal(pr.status, 0);
        json_t *j = json_loads(pr.out, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "status")),
                            "ok");
        json_decref(j);
        proc_result_free(&pr);
    }
    assert_int_equal(member_status(&e, 0, now3[2], false, &s, ms(2000)), 0);
    assert_true(s.st.is_voter);
    assert_int_equal(member_status(&e, 0, gone, false, &s, ms(2000)), 0);
    assert_false(s.st.is_voter);
    res_free(&r);
    env_close(&e, false);
}

/* ---- no acknowledged write is ever lost; the register is linearizable ---- */

#define LOG_CLIENTS 2
#define REG_CLIENTS 3
#define MAX_OPS 4096
#define MAX_HIST 8192

typedef struct log_load {
    env *e;
    mk_group_client *cli;
    int id;
    int in_flight, window;
    int next;
    bool stop;
    int64_t next_us, every_us;
    /* per write: 0 pending, 1 acked at position pos, 2 unknown */
    int outcome[MAX_OPS];
    uint64_t pos[MAX_OPS];
} log_load;

typedef struct log_req {
    log_load *l;
    int n;
} log_req;

static void log_submit(log_load *l);

static void on_log_done(int status, uint64_t applied, const uint8_t *r,
                        size_t len, void *data)
{
    log_req *q = data;
    log_load *l = q->l;
    if (status == 0) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(len < 31 ? len : 31),
                 (const char *)r);
        l->outcome[q->n] = 1;
        l->pos[q->n] = strtoull(tmp, NULL, 10);
    } else {
        l->outcome[q->n] = 2;
    }
    free(q);
    l->in_flight--;
    log_submit(l);
}

static void log_submit(log_load *l)
{
    while (!l->stop && l->in_flight < l->window && l->next < MAX_OPS &&
           mk_mono_us() >= l->next_us) {
        l->next_us = mk_mono_us() + l->every_us;
        log_req *q = malloc(sizeof *q);
        q->l = l;
        q->n = l->next++;
        char cmd[32];
        snprintf(cmd, sizeof cmd, "w%d-%d", l->id, q->n);
        if (mk_group_client_execute(l->cli, cmd, strlen(cmd),
                                    (uint32_t)ms(4000), on_log_done, q) != 0) {
            free(q);
            l->outcome[--l->next] = 0;
            return;
        }
        l->in_flight++;
    }
}

typedef struct reg_load {
    env *e;
    mk_group_client *cli;
    int in_flight, window;
    bool stop;
    int64_t next_us, every_us;
    int64_t *next_value; /* shared across clients: values are unique */
    lin_op *ops;
    size_t *n_ops;
} reg_load;

typedef struct reg_req {
    reg_load *l;
    size_t op;
} reg_req;

static void reg_submit(reg_load *l);

static int64_t parse_reg(const uint8_t *r, size_t len)
{
    char tmp[32];
    if (len == 0)
        return 0; /* the empty initial value */
    snprintf(tmp, sizeof tmp, "%.*s", (int)(len < 31 ? len : 31),
             (const char *)r);
    return strtoll(tmp, NULL, 10);
}

static void on_reg_done(int status, uint64_t applied, const uint8_t *r,
                        size_t len, void *data)
{
    reg_req *q = data;
    reg_load *l = q->l;
    lin_op *o = &l->ops[q->op];
    if (status == 0) {
        o->ret = mk_mono_us();
        if (o->kind == LIN_SWAP)
            o->prev = parse_reg(r, len);
        else
            o->value = parse_reg(r, len);
    } else {
        /* Unknown: a swap may still take effect; a read tells nothing. */
        o->ret = LIN_NEVER;
        if (o->kind == LIN_READ)
            o->call = -1; /* dropped from the history */
    }
    free(q);
    l->in_flight--;
    reg_submit(l);
}

static void reg_submit(reg_load *l)
{
    while (!l->stop && l->in_flight < l->window && *l->n_ops < MAX_HIST &&
           mk_mono_us() >= l->next_us) {
        l->next_us = mk_mono_us() + l->every_us;
        reg_req *q = malloc(sizeof *q);
        q->l = l;
        q->op = (*l->n_ops)++;
        lin_op *o = &l->ops[q->op];
        memset(o, 0, sizeof *o);
        o->call = mk_mono_us();
        int rc;
        if (rand() % 3 == 0) {
            o->kind = LIN_READ;
            rc = mk_group_client_query(l->cli, "", 0, MK_STRONG,
                                       (uint32_t)ms(4000), on_reg_done, q);
        } else {
            o->kind = LIN_SWAP;
            o->value = (*l->next_value)++;
            char cmd[32];
            snprintf(cmd, sizeof cmd, "%lld", (long long)o->value);
            rc = mk_group_client_execute(l->cli, cmd, strlen(cmd),
                                         (uint32_t)ms(4000), on_reg_done, q);
        }
        if (rc != 0) {
            free(q);
            (*l->n_ops)--;
            return;
        }
        l->in_flight++;
    }
}

typedef struct all_loads {
    log_load ll[LOG_CLIENTS];
    reg_load rl[REG_CLIENTS];
} all_loads;

static bool loads_idle(env *e, void *arg)
{
    all_loads *a = arg;
    for (int i = 0; i < LOG_CLIENTS; i++)
        if (a->ll[i].in_flight)
            return false;
    for (int i = 0; i < REG_CLIENTS; i++)
        if (a->rl[i].in_flight)
            return false;
    return true;
}

/* Paces the loads so they span the whole run (kills included) instead of
 * spending their budget in the first seconds. */
static void on_pace(uv_timer_t *t)
{
    all_loads *a = t->data;
    for (int i = 0; i < LOG_CLIENTS; i++)
        log_submit(&a->ll[i]);
    for (int i = 0; i < REG_CLIENTS; i++)
        reg_submit(&a->rl[i]);
}

static void no_acknowledged_write_lost(void **state)
{
    static env e; /* outlives a failed assertion: see teardown_env */
    gspec specs[2] = {spec("hlog", "log", 256), spec("hreg", "register", 256)};
    env_init(&e, 3, specs, 2);
    for (int i = 0; i < 3; i++)
        start(&e, i);
    open_node(&e);
    int leader = wait_leader(&e, 0, ALL3, 3, ms(15000));
    if (leader < 0 || wait_leader(&e, 1, ALL3, 3, ms(15000)) < 0) {
        env_close(&e, true);
        fail_msg("no leader");
    }
    int fol[2];
    others(leader, fol);

    static all_loads L;
    static lin_op hist[MAX_HIST];
    size_t n_hist = 0;
    int64_t next_value = 1;
    memset(&L, 0, sizeof L);
    srand(11);
    for (int i = 0; i < LOG_CLIENTS; i++) {
        log_load *l = &L.ll[i];
        l->e = &e;
        l->id = i;
        l->window = 4;
        l->every_us = ms(4) * 1000;
        assert_int_equal(mk_group_client_open(e.node, &e.g[0].id, &l->cli),
                         0);
        /* One client goes through a follower (forwarded), the other finds
         * the leader (direct). */
        if (i == 0) {
            mk_peer_id p = peer_of(&e, fol[0]);
            mk_group_client_via(l->cli, &p);
        }
        log_submit(l);
    }
    for (int i = 0; i < REG_CLIENTS; i++) {
        reg_load *l = &L.rl[i];
        l->e = &e;
        l->window = 1 + i % 2;
        l->every_us = ms(8) * 1000;
        l->next_value = &next_value;
        l->ops = hist;
        l->n_ops = &n_hist;
        assert_int_equal(mk_group_client_open(e.node, &e.g[1].id, &l->cli),
                         0);
        if (i == 0) {
            mk_peer_id p = peer_of(&e, fol[1]);
            mk_group_client_via(l->cli, &p);
        }
        reg_submit(l);
    }

    uv_timer_t pace;
    uv_timer_init(&e.loop, &pace);
    pace.data = &L;
    uv_timer_start(&pace, on_pace, 2, 2);

    /* Kill the leader of the log group three times, restarting it each
     * time, while the writes go on. */
    int kills = 0;
    spin(&e, ms(1500));
    for (int k = 0; k < 3; k++) {
        int lead = wait_leader(&e, 0, ALL3, 3, ms(15000));
        if (lead < 0)
            break;
        daemon_kill(&e.d[lead]);
        kills++;
        spin(&e, ms(1500));
        start(&e, lead);
        spin(&e, ms(1500));
    }
    spin(&e, ms(1000));
    for (int i = 0; i < LOG_CLIENTS; i++)
        L.ll[i].stop = true;
    for (int i = 0; i < REG_CLIENTS; i++)
        L.rl[i].stop = true;
    assert_true(wait_until(&e, loads_idle, &L, ms(15000)));
    uv_close((uv_handle_t *)&pace, NULL);
    assert_int_equal(kills, 3);

    /* Every member ends with the same state in both groups. */
    same_q sq0 = {.g = 0, .members = ALL3, .n = 3};
    same_q sq1 = {.g = 1, .members = ALL3, .n = 3};
    if (!wait_until(&e, same_state, &sq0, ms(20000)) ||
        !wait_until(&e, same_state, &sq1, ms(20000))) {
        env_close(&e, true);
        fail_msg("members did not converge");
    }

    /* The log: every acknowledged write is there exactly once, at the
     * position it was acknowledged with, on every member. */
    size_t acked = 0, unknown = 0;
    for (int m = 0; m < 3; m++) {
        res r = {0};
        assert_int_equal(query_sync(&e, 0, m, "all", MK_WEAK, ms(5000), &r),
                         0);
        size_t n_entries = 0;
        char *save = NULL;
        static char seen[LOG_CLIENTS][MAX_OPS];
        memset(seen, 0, sizeof seen);
        for (char *tok = r.len ? strtok_r(r.text, "\n", &save) : NULL; tok;
             tok = strtok_r(NULL, "\n", &save)) {
            n_entries++;
            int c, n;
            assert_int_equal(sscanf(tok, "w%d-%d", &c, &n), 2);
            assert_true(c >= 0 && c < LOG_CLIENTS && n >= 0 && n < MAX_OPS);
            /* never twice */
            assert_int_equal(seen[c][n], 0);
            seen[c][n] = 1;
            if (L.ll[c].outcome[n] == 1)
                assert_int_equal(L.ll[c].pos[n], n_entries);
            else
                assert_int_not_equal(L.ll[c].outcome[n], 0);
        }
        res_free(&r);
        assert_int_equal(n_entries, sq0.applied);
        acked = unknown = 0;
        for (int c = 0; c < LOG_CLIENTS; c++)
            for (int n = 0; n < L.ll[c].next; n++) {
                if (L.ll[c].outcome[n] == 1) {
                    assert_int_equal(seen[c][n], 1);
                    acked++;
                } else {
                    unknown++;
                }
            }
    }
    print_message("history: %zu writes acknowledged, %zu unknown, %zu "
                  "register operations\n",
                  acked, unknown, n_hist);
    assert_true(acked > 20);

    /* The register: its history (swaps and strong reads) linearizes. */
    size_t kept = 0;
    for (size_t i = 0; i < n_hist; i++)
        if (hist[i].call >= 0)
            hist[kept++] = hist[i];
    char why[256] = "";
    bool lin = lin_check(hist, kept, 0, why, sizeof why);
    if (!lin)
        fail_msg("register history not linearizable: %s", why);
    for (int i = 0; i < LOG_CLIENTS; i++)
        mk_group_client_close(L.ll[i].cli, NULL, NULL);
    for (int i = 0; i < REG_CLIENTS; i++)
        mk_group_client_close(L.rl[i].cli, NULL, NULL);
    env_close(&e, false);
}

/* ---- replicas ---------------------------------------------------------------- */

typedef struct follower {
    mk_replica *r;
    struct mk_fsm *fsm;
    uint64_t applied;
    /* (applied, chain hash) after each change */
    uint64_t *at;
    char (*hash)[65];
    size_t n, cap;
    int sources;
    mk_peer_id source;
    bool first_was_restore;
} follower;

static void on_replica(mk_replica *r, void *data)
{
    follower *f = data;
    mk_peer_id src;
    if (mk_replica_source(r, &src) &&
        (f->sources == 0 || !mk_id_eq(&src, &f->source))) {
        f->sources++;
        f->source = src;
    }
    uint64_t a = mk_replica_applied(r);
    if (a == f->applied)
        return;
    if (f->n == 0 && a > 1)
        f->first_was_restore = true;
    f->applied = a;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 256;
        f->at = realloc(f->at, f->cap * sizeof *f->at);
        f->hash = realloc(f->hash, f->cap * sizeof *f->hash);
    }
    mk_buf b;
    mk_buf_init(&b);
    f->fsm->query(f->fsm, (const uint8_t *)"hash", 4, &b);
    f->at[f->n] = a;
    snprintf(f->hash[f->n], 65, "%.*s", (int)b.len, (const char *)b.data);
    f->n++;
    mk_buf_free(&b);
}

static void follower_open(env *e, follower *f, const mk_id *gid)
{
    memset(f, 0, sizeof *f);
    f->fsm = mk_fsm_test_new("log");
    mk_replica_config rc = {.node = e->node, .group = *gid, .fsm = f->fsm};
    assert_int_equal(mk_replica_open(&rc, &f->r), 0);
    assert_int_equal(mk_replica_watch(f->r, on_replica, f), 0);
}

static void follower_close(env *e, follower *f)
{
    mk_replica_close(f->r, NULL, NULL);
    spin(e, 50);
    mk_fsm_test_free(f->fsm);
    free(f->at);
    free(f->hash);
}

typedef struct caught_q {
    follower *f;
    uint64_t applied;
} caught_q;

static bool caught_up(env *e, void *arg)
{
    caught_q *q = arg;
    return q->f->applied >= q->applied;
}

typedef struct follows_q {
    follower *f;
    int member;
} follows_q;

static bool follows(env *e, void *arg)
{
    follows_q *q = arg;
    return index_of(e, &q->f->source) == q->member;
}

/* Each recorded state is the members' state after that many commands:
 * chain hashes of their log's prefixes. */
static void check_sequence(const follower *f, char (*chain)[65], size_t n)
{
    assert_true(f->n > 0);
    for (size_t i = 0; i < f->n; i++) {
        assert_true(f->at[i] >= 1 && f->at[i] <= n);
        assert_string_equal(f->hash[i], chain[f->at[i] - 1]);
        if (i > 0)
            assert_true(f->at[i] > f->at[i - 1]);
    }
}

static void replicas(void **state)
{
    static env e; /* outlives a failed assertion: see teardown_env */
    gspec specs[1] = {spec("rlog", "log", 32)};
    env_init(&e, 3, specs, 1);
    for (int i = 0; i < 3; i++)
        start(&e, i);
    open_node(&e);
    if (wait_leader(&e, 0, ALL3, 3, ms(15000)) < 0) {
        env_close(&e, true);
        fail_msg("no leader");
    }
    follower f1, f2;
    follower_open(&e, &f1, &e.g[0].id);
    res r = {0};
    char cmd[32];
    int n = 0;
    for (; n < 40; n++) {
        snprintf(cmd, sizeof cmd, "r%d", n + 1);
        assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(5000), &r), 0);
    }
    caught_q q1 = {&f1, 40};
    assert_true(wait_until(&e, caught_up, &q1, ms(10000)));
    assert_true(mk_replica_online(f1.r));

    /* The member it follows dies: it switches and resumes where it was. */
    int src = index_of(&e, &f1.source);
    assert_true(src >= 0);
    daemon_kill(&e.d[src]);
    for (; n < 80; n++) {
        snprintf(cmd, sizeof cmd, "r%d", n + 1);
        assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(10000), &r), 0);
    }
    q1.applied = 80;
    assert_true(wait_until(&e, caught_up, &q1, ms(15000)));
    assert_true(f1.sources >= 2);
    start(&e, src);
    same_q back = {.g = 0, .members = ALL3, .n = 3};
    assert_true(wait_until(&e, same_state, &back, ms(15000)));

    /* The leader stops without a word (SIGSTOP: its kernel keeps the
     * connections up, so nothing closes), once the replica follows it
     * and our client has sent it commands. Past their silence limits the
     * replica goes elsewhere and misses nothing, and the client's
     * commands go to the new leader. Both used to wait on their
     * connection for good: the replica forever, each command until its
     * deadline. */
    int hung = wait_leader(&e, 0, ALL3, 3, ms(15000));
    assert_true(hung >= 0);
    follows_q fq = {&f1, hung};
    assert_true(wait_until(&e, follows, &fq, ms(10000)));
    snprintf(cmd, sizeof cmd, "r%d", ++n);
    assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(10000), &r), 0);
    int sources = f1.sources;
    kill(e.d[hung].pid, SIGSTOP);
    for (int k = 0; k < 10; k++, n++) {
        snprintf(cmd, sizeof cmd, "r%d", n + 1);
        assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(20000), &r), 0);
    }
    q1.applied = (uint64_t)n;
    bool moved_on = wait_until(&e, caught_up, &q1, ms(20000));
    kill(e.d[hung].pid, SIGCONT);
    assert_true(moved_on);
    assert_true(f1.sources > sources);
    assert_true(wait_until(&e, same_state, &back, ms(15000)));

    /* Restart every member (their feeds then start at their snapshot), and
     * open a second replica: it begins with a snapshot, then follows.
     * Each restarted member is back in the group before the next goes. */
    for (int m = 0; m < 3; m++) {
        if (m == src)
            continue;
        assert_int_equal(stop_member(&e, m, ms(15000)), 0);
        start(&e, m);
        for (int k = 0; k < 20; k++, n++) {
            snprintf(cmd, sizeof cmd, "r%d", n + 1);
            assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(10000), &r), 0);
        }
        assert_true(wait_until(&e, same_state, &back, ms(15000)));
    }
    follower_open(&e, &f2, &e.g[0].id);
    for (int k = 0; k < 20; k++, n++) {
        snprintf(cmd, sizeof cmd, "r%d", n + 1);
        assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(10000), &r), 0);
    }
    q1.applied = (uint64_t)n;
    caught_q q2 = {&f2, (uint64_t)n};
    assert_true(wait_until(&e, caught_up, &q1, ms(15000)));
    assert_true(wait_until(&e, caught_up, &q2, ms(15000)));
    assert_true(f2.first_was_restore);

    /* Both went through exactly the members' states. */
    same_q sq = {.g = 0, .members = ALL3, .n = 3};
    assert_true(wait_until(&e, same_state, &sq, ms(15000)));
    assert_int_equal(sq.applied, (uint64_t)n);
    assert_int_equal(query_sync(&e, 0, 0, "all", MK_WEAK, ms(5000), &r), 0);
    char (*chain)[65] = calloc((size_t)n, sizeof *chain);
    uint8_t h[32] = {0};
    size_t k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(r.text, "\n", &save); tok && k < (size_t)n;
         tok = strtok_r(NULL, "\n", &save), k++) {
        mk_blake3_hasher hs;
        mk_blake3_init(&hs);
        mk_blake3_update(&hs, h, sizeof h);
        mk_blake3_update(&hs, tok, strlen(tok));
        mk_blake3_final(&hs, h, sizeof h);
        mk_hex_encode(h, sizeof h, chain[k]);
    }
    assert_int_equal(k, (size_t)n);
    check_sequence(&f1, chain, k);
    check_sequence(&f2, chain, k);
    /* The first replica saw (nearly) every state one command at a time:
     * it only jumps if a member it switched to no longer had what it
     * needed. */
    assert_true(f1.n > (size_t)n / 2);
    free(chain);
    res_free(&r);
    follower_close(&e, &f1);
    follower_close(&e, &f2);
    env_close(&e, false);
}

/* ---- storage: a full disk, a lost segment ------------------------------- */

/* tmpfs mounts a test made (root only), unmounted by the teardown too. */
static char mounts[MAXD][600];

/* The mounts go into a mount namespace of the test's own (its daemons,
 * forked later, share it), so a run killed before its teardown leaves
 * nothing mounted on the host: the namespace ends with its last process.
 * Mounting already needs CAP_SYS_ADMIN, which is all unshare asks for;
 * should it fail anyway, the mounts are made where we are, as before. */
static void private_mounts(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        fprintf(stderr, "test_groups: no private mount namespace (%s): "
                        "tmpfs mounts are made on the host's\n",
                strerror(errno));
}

static void unmount_all(void)
{
    for (int i = 0; i < MAXD; i++)
        if (mounts[i][0]) {
            umount2(mounts[i], MNT_DETACH);
            mounts[i][0] = '\0';
        }
}

/* Puts daemon i's group data (<data>/groups) on a tmpfs of `mib` MiB. */
static void mount_groups(env *e, int i, int mib)
{
    char opts[64];
    private_mounts();
    snprintf(mounts[i], sizeof mounts[i], "%s/groups", e->d[i].data);
    mkdir(e->d[i].data, 0700);
    mkdir(mounts[i], 0700);
    snprintf(opts, sizeof opts, "size=%dm,mode=0700", mib);
    if (mount("tmpfs", mounts[i], "tmpfs", 0, opts) != 0) {
        mounts[i][0] = '\0';
        fail_msg("mount tmpfs: %s", strerror(errno));
    }
}

/* Resizes daemon i's tmpfs to what it holds now plus `free_mib`. */
static void resize_groups(env *e, int i, int free_mib)
{
    struct statvfs sv;
    assert_int_equal(statvfs(mounts[i], &sv), 0);
    unsigned long long used =
        (unsigned long long)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
    char opts[64];
    snprintf(opts, sizeof opts, "size=%llu",
             used + ((unsigned long long)free_mib << 20));
    if (mount("tmpfs", mounts[i], "tmpfs", MS_REMOUNT, opts) != 0)
        fail_msg("remount tmpfs: %s", strerror(errno));
    (void)e;
}

static bool log_says(const daemon_proc *d, const char *what)
{
    FILE *f = fopen(d->log, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

static bool alive(daemon_proc *d)
{
    int st;
    return d->pid > 0 && waitpid(d->pid, &st, WNOHANG) == 0;
}

typedef struct storage_q {
    int g, member;
    bool want;
} storage_q;

static bool storage_is(env *e, void *arg)
{
    storage_q *q = arg;
    mk_member_status s;
    return member_status(e, q->g, q->member, false, &s, ms(1000)) == 0 &&
           s.st.storage_failed == q->want;
}

/* Fills member `full`'s disk with 512 KiB commands until it says so;
 * the other two go on committing every one of them. */
static int fill_disk(env *e, int full, int *next)
{
    size_t big = 512 << 10;
    char *cmd = malloc(big + 1);
    assert_non_null(cmd);
    res r = {0};
    int sent = 0;
    storage_q q = {.g = 0, .member = full, .want = true};
    for (int k = 0; k < 60 && !storage_is(e, &q); k++, sent++) {
        int n = snprintf(cmd, 32, "e%d:", (*next)++);
        memset(cmd + n, 'a' + k % 26, big - (size_t)n);
        cmd[big] = '\0';
        int rc = exec_sync(e, 0, -1, cmd, ms(30000), &r);
        if (rc != 0) {
            free(cmd);
            res_free(&r);
            fail_msg("command %d: %s", *next - 1, mk_err_name(rc));
        }
        assert_int_equal(r.applied, (uint64_t)(*next - 1));
    }
    free(cmd);
    res_free(&r);
    return sent;
}

static void full_disk(void **state)
{
    static env e;
    if (geteuid() != 0)
        skip(); /* mounting tmpfs needs root; CI runs as root */
    gspec specs[1] = {spec("disk", "log", 0)};
    env_init(&e, 3, specs, 1);
    for (int i = 0; i < 3; i++)
        mount_groups(&e, i, 1024);
    for (int i = 0; i < 3; i++)
        start(&e, i);
    open_node(&e);
    int leader = wait_leader(&e, 0, ALL3, 3, ms(15000));
    assert_true(leader >= 0);
    int fol[2];
    others(leader, fol);
    int next = 1;
    res r = {0};
    assert_int_equal(exec_sync(&e, 0, -1, "e1:first", ms(5000), &r), 0);
    next = 2;

    /* A follower's disk fills: it stops loudly, the others commit; once
     * it has room again it catches up to the same state. */
    int victims[2] = {fol[0], leader};
    for (int v = 0; v < 2; v++) {
        int full = victims[v];
        if (v == 1) {
            /* Then the leader's (whoever leads now). */
            full = wait_leader(&e, 0, ALL3, 3, ms(15000));
            assert_true(full >= 0);
        }
        resize_groups(&e, full, 6);
        int sent = fill_disk(&e, full, &next);
        print_message("m%d (%s) full after %d commands\n", full,
                      v ? "leader" : "follower", sent);
        storage_q q = {.g = 0, .member = full, .want = true};
        assert_true(wait_until(&e, storage_is, &q, ms(10000)));
        assert_true(alive(&e.d[full]));
        assert_true(log_says(&e.d[full], "STORAGE FAILED"));
        int rest[2], n = others(full, rest);
        /* The two others agree and keep committing. */
        assert_int_equal(exec_sync(&e, 0, rest[0], "after", ms(20000), &r),
                         0);
        next++;
        same_q two = {.g = 0, .members = rest, .n = n};
        assert_true(wait_until(&e, same_state, &two, ms(10000)));
        /* Room again: it restarts from its log and catches up. */
        resize_groups(&e, full, 512);
        q.want = false;
        assert_true(wait_until(&e, storage_is, &q, ms(20000)));
        same_q all = {.g = 0, .members = ALL3, .n = 3};
        assert_true(wait_until(&e, same_state, &all, ms(30000)));
        assert_int_equal(all.applied, (uint64_t)(next - 1));
        assert_true(alive(&e.d[full]));
    }
    res_free(&r);
    env_close(&e, false);
}

/* Daemon i's only group dir (<data>/groups/<GroupId hex>). */
static void group_dir(env *e, int i, char *out, size_t len)
{
    char hex[MK_ID_HEX_LEN + 1];
    snprintf(out, len, "%s/groups/%s", e->d[i].data, mk_id_hex(&e->g[0].id, hex));
}

/* The closed segment of daemon i's log holding the highest index. */
static bool last_segment(env *e, int i, char *out, size_t len)
{
    char dir[700];
    group_dir(e, i, dir, sizeof dir);
    DIR *d = opendir(dir);
    assert_non_null(d);
    unsigned long long best = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long a, b;
        char tail;
        if (sscanf(de->d_name, "%llu-%llu%c", &a, &b, &tail) == 2 && b > best) {
            best = b;
            snprintf(out, len, "%s/%s", dir, de->d_name);
        }
    }
    closedir(d);
    return best > 1;
}

static void lost_segment(void **state)
{
    static env e;
    gspec specs[1] = {spec("lost", "log", 0)};
    env_init(&e, 3, specs, 1);
    for (int i = 0; i < 3; i++)
        start(&e, i);
    open_node(&e);
    int leader = wait_leader(&e, 0, ALL3, 3, ms(15000));
    assert_true(leader >= 0);
    int fol[2];
    others(leader, fol);
    int victim = fol[0];
    res r = {0};
    char cmd[32];
    for (int i = 1; i <= 20; i++) {
        snprintf(cmd, sizeof cmd, "w%d", i);
        assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(5000), &r), 0);
    }
    same_q all = {.g = 0, .members = ALL3, .n = 3};
    assert_true(wait_until(&e, same_state, &all, ms(10000)));

    /* Twice: the segment deleted (the log loads, shorter), then emptied
     * (libraft finds it corrupt). Either way the member must refuse. */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(stop_member(&e, victim, ms(10000)), 0);
        char seg[800];
        assert_true(last_segment(&e, victim, seg, sizeof seg));
        if (round == 0)
            assert_int_equal(unlink(seg), 0);
        else
            assert_int_equal(truncate(seg, 0), 0);
        /* It starts (other groups could run) but not this one, and says
         * why; twice, so nothing was set aside to start without it. */
        for (int again = 0; again < 2; again++) {
            start(&e, victim);
            mk_member_status s;
            spin(&e, ms(1500));
            assert_true(alive(&e.d[victim]));
            assert_true(log_says(&e.d[victim], "NOT RUNNING"));
            assert_int_not_equal(
                member_status(&e, 0, victim, false, &s, ms(1000)), 0);
            assert_int_equal(stop_member(&e, victim, ms(10000)), 0);
        }
        if (round == 0)
            assert_true(log_says(&e.d[victim], "lost entries"));
        /* The group goes on and has every acknowledged write. */
        snprintf(cmd, sizeof cmd, "x%d", round);
        assert_int_equal(exec_sync(&e, 0, -1, cmd, ms(10000), &r), 0);
        assert_int_equal(query_sync(&e, 0, -1, "get 20", MK_STRONG, ms(5000),
                                    &r),
                         0);
        assert_string_equal(r.text, "w20");
        if (round == 0) {
            /* Repair as the message says: an empty data dir catches up. */
            char dir[700];
            group_dir(&e, victim, dir, sizeof dir);
            daemon_rmtree(dir);
            start(&e, victim);
            assert_true(wait_until(&e, same_state, &all, ms(20000)));
        }
    }
    res_free(&r);
    env_close(&e, false);
}

int main(void)
{
    const char *tf = getenv("TIME_FACTOR");
    TF = tf && atof(tf) > 0 ? atof(tf) : 1.0;
    signal(SIGPIPE, SIG_IGN);
    /* GROUPS_TEST=name runs one test (cmocka's filter pattern). */
    if (getenv("GROUPS_TEST"))
        cmocka_set_test_filter(getenv("GROUPS_TEST"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(membership, teardown_env),
        cmocka_unit_test_teardown(snapshot_catchup, teardown_env),
        cmocka_unit_test_teardown(pipelined_window, teardown_env),
        cmocka_unit_test_teardown(isolated_minority, teardown_env),
        cmocka_unit_test_teardown(standby_replaces_silent_voter, teardown_env),
        cmocka_unit_test_teardown(key_rotation_without_downtime,
                                  teardown_env),
        cmocka_unit_test_teardown(no_acknowledged_write_lost, teardown_env),
        cmocka_unit_test_teardown(replicas, teardown_env),
        cmocka_unit_test_teardown(full_disk, teardown_env),
        cmocka_unit_test_teardown(lost_segment, teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
