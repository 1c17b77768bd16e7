/* Joining a group that fails: every failure returns a clear error and
 * leaves nothing behind (the leak checker of the sanitized build fails the
 * test otherwise), and a later join on the same node still works.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "mosaik/error.h"
#include "mosaik/testing/fsm_test.h"
#include "mosaik/group.h"
#include "mosaik/node.h"
#include "testutil.h"

typedef struct fx {
    uv_loop_t loop;
    mk_keypair ka, kb;
    mk_node *node;
    struct mk_fsm *fsm;
    char dir[64];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uint8_t seed[MK_SEED_LEN];
    memset(seed, 0xa1, sizeof seed);
    mk_keypair_from_seed(&f->ka, seed);
    memset(seed, 0xb2, sizeof seed);
    mk_keypair_from_seed(&f->kb, seed);
    char err[MK_ERRMSG_SIZE];
    mk_node_config nc = {.loop = &f->loop, .key = &f->ka,
                         .listen = "127.0.0.1:0"};
    assert_int_equal(mk_node_new(&nc, &f->node, err), 0);
    assert_int_equal(mk_node_start(f->node), 0);
    f->fsm = mk_fsm_test_new("counter");
    assert_non_null(f->fsm);
    strcpy(f->dir, "/tmp/test_group_join.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    mk_node_close(f->node, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    mk_fsm_test_free(f->fsm);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static mk_group_config config(fx *f, const mk_peer_id *voters, size_t n,
                              const char *data_dir)
{
    mk_group_config gc = {.node = f->node,
                          .fsm = f->fsm,
                          .voters = voters,
                          .n_voters = n,
                          .data_dir = data_dir};
    mk_id_from_str(&gc.root, "join-test");
    return gc;
}

static void duplicate_voter(void **state)
{
    fx *f = *state;
    mk_peer_id voters[3] = {f->ka.pub, f->kb.pub, f->kb.pub};
    char data[128], err[MK_ERRMSG_SIZE] = "";
    snprintf(data, sizeof data, "%s/dup", f->dir);
    mk_group_config gc = config(f, voters, 3, data);
    mk_group *g = NULL;
    assert_int_equal(mk_group_open(&gc, &g, err), MK_EINVAL);
    assert_null(g);
    assert_non_null(strstr(err, "share a raft id"));
}

static void data_dir_not_a_directory(void **state)
{
    fx *f = *state;
    char file[128], data[160], err[MK_ERRMSG_SIZE] = "";
    snprintf(file, sizeof file, "%s/plain", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(data, sizeof data, "%s/sub", file);
    mk_group_config gc = config(f, &f->ka.pub, 1, data);
    mk_group *g = NULL;
    assert_int_not_equal(mk_group_open(&gc, &g, err), 0);
    assert_null(g);
    /* The reason names the directory and what is wrong with it. */
    assert_non_null(strstr(err, data));
    assert_null(strstr(err, "unknown error"));

    /* The node is unharmed: the same group joins with a usable dir. */
    snprintf(data, sizeof data, "%s/ok", f->dir);
    gc = config(f, &f->ka.pub, 1, data);
    assert_int_equal(mk_group_open(&gc, &g, err), 0);
    assert_non_null(g);
    mk_group_close(g, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(duplicate_voter, setup, teardown),
        cmocka_unit_test_setup_teardown(data_dir_not_a_directory, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
