/* The storage wrapper (src/mosaik/group_io.c) around a scripted inner
 * raft_io: after the first failure nothing more reaches the disk, nothing
 * is reported to libraft until it closes the io, it cannot vote; and the
 * durable watermark refuses a log that lost entries, follows appends and
 * is lowered before a truncate reaches the disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mosaik/error.h"
#include "mosaik/group_io.h"

/* ---- a scripted inner io ---------------------------------------------------- */

typedef struct stub {
    struct raft_io io;
    struct raft_io_append *appends[16];
    int n_appends;
    int votes, terms, truncates;
    raft_index truncated_at;
    raft_index load_start;
    size_t load_n;
    raft_io_close_cb close_cb;
} stub;

static int s_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                  struct raft_snapshot **snapshot, raft_index *start_index,
                  struct raft_entry *entries[], size_t *n_entries)
{
    stub *s = (stub *)io;
    *term = 1;
    *voted_for = 0;
    *snapshot = NULL;
    *start_index = s->load_start;
    *n_entries = s->load_n;
    *entries = NULL;
    if (!s->load_n)
        return 0;
    /* One batch holding every entry, as raft_uv loads them. */
    uint8_t *batch = raft_malloc(8 * s->load_n);
    *entries = raft_malloc(s->load_n * sizeof **entries);
    assert_non_null(batch);
    assert_non_null(*entries);
    for (size_t i = 0; i < s->load_n; i++) {
        (*entries)[i] = (struct raft_entry){
            .term = 1, .type = RAFT_COMMAND,
            .buf = {.base = batch + 8 * i, .len = 8}, .batch = batch};
    }
    return 0;
}

static int s_append(struct raft_io *io, struct raft_io_append *req,
                    const struct raft_entry entries[], unsigned n,
                    raft_io_append_cb cb)
{
    stub *s = (stub *)io;
    (void)entries;
    (void)n;
    req->cb = cb;
    s->appends[s->n_appends++] = req;
    return 0;
}

static int s_truncate(struct raft_io *io, raft_index index)
{
    stub *s = (stub *)io;
    s->truncates++;
    s->truncated_at = index;
    return 0;
}

static int s_set_term(struct raft_io *io, raft_term term)
{
    (void)term;
    ((stub *)io)->terms++;
    return 0;
}

static int s_set_vote(struct raft_io *io, raft_id id)
{
    (void)id;
    ((stub *)io)->votes++;
    return 0;
}

static void s_close(struct raft_io *io, raft_io_close_cb cb)
{
    stub *s = (stub *)io;
    s->close_cb = cb;
}

static void stub_init(stub *s, raft_index start, size_t n)
{
    memset(s, 0, sizeof *s);
    s->io.version = 2;
    s->io.load = s_load;
    s->io.append = s_append;
    s->io.truncate = s_truncate;
    s->io.set_term = s_set_term;
    s->io.set_vote = s_set_vote;
    s->io.close = s_close;
    s->load_start = start;
    s->load_n = n;
}

/* The inner io completes its i-th append. */
static void stub_complete(stub *s, int i, int status)
{
    s->appends[i]->cb(s->appends[i], status);
}

/* ---- what libraft would see --------------------------------------------------- */

typedef struct seen {
    int order[16];
    int status[16];
    int n;
    int fails;
    char op[16];
    bool closed;
    int appends_before_close;
} seen;

static seen S;

typedef struct outer_req {
    struct raft_io_append req;
    int id;
} outer_req;

static void on_append(struct raft_io_append *req, int status)
{
    outer_req *o = (outer_req *)req;
    S.order[S.n] = o->id;
    S.status[S.n++] = status;
}

static void on_fail(mk__gio *g, const char *op, int rv, const char *msg)
{
    (void)g;
    (void)rv;
    (void)msg;
    S.fails++;
    snprintf(S.op, sizeof S.op, "%s", op);
}

static void on_closed(struct raft_io *io)
{
    (void)io;
    S.closed = true;
    S.appends_before_close = S.n;
}

static void load(mk__gio *g)
{
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap;
    raft_index start;
    struct raft_entry *entries;
    size_t n;
    assert_int_equal(g->io.load(&g->io, &term, &vote, &snap, &start, &entries,
                                &n),
                     0);
    /* What raft_start would do with them: free. */
    if (n) {
        raft_free(entries[0].batch);
        raft_free(entries);
    }
}

static struct raft_entry one[1] = {{.term = 1, .type = RAFT_COMMAND}};

static void append(mk__gio *g, outer_req *o, int id)
{
    o->id = id;
    assert_int_equal(g->io.append(&g->io, &o->req, one, 1, on_append), 0);
}

/* ---- tests ------------------------------------------------------------------ */

static void holds_after_a_failure(void **state)
{
    (void)state;
    memset(&S, 0, sizeof S);
    stub s;
    stub_init(&s, 1, 0);
    mk__gio g;
    mk__gio_init(&g, &s.io, NULL, on_fail, NULL);
    load(&g);
    outer_req a, b, c;
    append(&g, &a, 1);
    append(&g, &b, 2);
    assert_int_equal(s.n_appends, 2);
    stub_complete(&s, 0, RAFT_NOSPACE);
    /* Reported to the owner once, not to libraft. */
    assert_int_equal(S.fails, 1);
    assert_string_equal(S.op, "append");
    assert_int_equal(g.failed, RAFT_NOSPACE);
    assert_int_equal(S.n, 0);
    /* A later success is held too: it may sit behind the lost write. */
    stub_complete(&s, 1, 0);
    assert_int_equal(S.n, 0);
    /* Nothing more reaches the disk; no vote, no term. */
    append(&g, &c, 3);
    assert_int_equal(s.n_appends, 2);
    assert_int_equal(g.io.set_vote(&g.io, 7), RAFT_IOERR);
    assert_int_equal(g.io.set_term(&g.io, 9), RAFT_IOERR);
    assert_int_equal(s.votes + s.terms, 0);
    assert_int_equal(g.io.truncate(&g.io, 1), 0);
    assert_int_equal(s.truncates, 0);
    assert_int_equal(S.fails, 1);
    /* libraft closes: everything is delivered, in order, before the close
     * callback, as status 0 (a leader would truncate on anything else). */
    g.io.close(&g.io, on_closed);
    assert_int_equal(S.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(S.order[i], i + 1);
        assert_int_equal(S.status[i], 0);
    }
    assert_false(S.closed);
    s.close_cb(&s.io);
    assert_true(S.closed);
    assert_int_equal(S.appends_before_close, 3);
}

static void healthy_passes_through(void **state)
{
    (void)state;
    memset(&S, 0, sizeof S);
    stub s;
    stub_init(&s, 1, 0);
    mk__gio g;
    mk__gio_init(&g, &s.io, NULL, on_fail, NULL);
    load(&g);
    outer_req a;
    append(&g, &a, 1);
    stub_complete(&s, 0, 0);
    assert_int_equal(S.n, 1);
    assert_int_equal(g.io.set_vote(&g.io, 7), 0);
    assert_int_equal(s.votes, 1);
    /* An append still in flight when libraft closes is answered before
     * the close callback. */
    outer_req b;
    append(&g, &b, 2);
    g.io.close(&g.io, on_closed);
    s.close_cb(&s.io);
    assert_true(S.closed);
    assert_int_equal(S.appends_before_close, 2);
    assert_int_equal(S.fails, 0);
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/mk-gio-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rmdir_all(char *d)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", d, MK__MARK_FILE);
    unlink(p);
    rmdir(d);
    free(d);
}

static void watermark_refuses_a_shorter_log(void **state)
{
    (void)state;
    char *dir = tmpdir();
    assert_int_equal(mk__mark_write(dir, 10), 0);
    stub s;
    stub_init(&s, 1, 3); /* entries 1..3 */
    mk__gio g;
    mk__gio_init(&g, &s.io, dir, on_fail, NULL);
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap;
    raft_index start;
    struct raft_entry *entries;
    size_t n;
    assert_int_equal(
        g.io.load(&g.io, &term, &vote, &snap, &start, &entries, &n),
        RAFT_CORRUPT);
    assert_true(g.lost);
    assert_int_equal(n, 0);
    assert_null(entries);
    assert_non_null(strstr(g.io.errmsg, "up to index 10"));
    assert_non_null(strstr(g.io.errmsg, "only up to 3"));

    /* A log that has everything the watermark vouches for loads. */
    assert_int_equal(mk__mark_write(dir, 3), 0);
    mk__gio_init(&g, &s.io, dir, on_fail, NULL);
    load(&g);
    assert_false(g.lost);

    /* A damaged watermark is no watermark (never a false alarm). */
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, MK__MARK_FILE);
    FILE *f = fopen(p, "r+");
    assert_non_null(f);
    fseek(f, 9, SEEK_SET);
    fputc(0x7f, f);
    fclose(f);
    uint64_t m;
    assert_int_equal(mk__mark_read(dir, &m), MK_ENOENT);
    mk__gio_init(&g, &s.io, dir, on_fail, NULL);
    load(&g);
    assert_false(g.lost);
    rmdir_all(dir);
}

static void watermark_follows_the_log(void **state)
{
    (void)state;
    memset(&S, 0, sizeof S);
    char *dir = tmpdir();
    stub s;
    stub_init(&s, 1, 3);
    mk__gio g;
    mk__gio_init(&g, &s.io, dir, on_fail, NULL);
    load(&g);
    uint64_t m = 0;
    outer_req a, b;
    append(&g, &a, 4); /* index 4 */
    append(&g, &b, 5); /* index 5 */
    stub_complete(&s, 0, 0);
    mk__gio_flush_mark(&g, 0);
    assert_int_equal(mk__mark_read(dir, &m), 0);
    assert_int_equal(m, 4);
    /* A truncate from 3 while index 5 is still being written: the
     * watermark drops to 2 before the truncate reaches the disk, and the
     * late completion does not raise it past what the log keeps. */
    assert_int_equal(g.io.truncate(&g.io, 3), 0);
    assert_int_equal(s.truncated_at, 3);
    assert_int_equal(mk__mark_read(dir, &m), 0);
    assert_int_equal(m, 2);
    stub_complete(&s, 1, 0);
    mk__gio_flush_mark(&g, 0);
    assert_int_equal(mk__mark_read(dir, &m), 0);
    assert_int_equal(m, 2);
    /* The next append is index 3 again. */
    outer_req c;
    append(&g, &c, 3);
    stub_complete(&s, 2, 0);
    mk__gio_flush_mark(&g, 0);
    assert_int_equal(mk__mark_read(dir, &m), 0);
    assert_int_equal(m, 3);
    g.io.close(&g.io, on_closed);
    s.close_cb(&s.io);
    rmdir_all(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(holds_after_a_failure),
        cmocka_unit_test(healthy_passes_through),
        cmocka_unit_test(watermark_refuses_a_shorter_log),
        cmocka_unit_test(watermark_follows_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
