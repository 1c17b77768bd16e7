/* The metrics registry and its text exposition: the exact bytes for a
 * small registry, the escaping the format demands, and what it refuses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/metrics.h"
#include "testutil.h"

static char *text_of(const mk_metrics *r)
{
    mk_buf b;
    mk_buf_init(&b);
    assert_int_equal(mk_metrics_write_text(r, &b), 0);
    mk_put_u8(&b, 0);
    size_t len;
    return (char *)mk_buf_detach(&b, &len);
}

static double read_seven(void *data)
{
    int *calls = data;
    (*calls)++;
    return 7;
}

static void exposition_is_exact(void **state)
{
    (void)state;
    mk_metrics *r;
    mk_metric *c1, *c2, *g, *h, *cb;
    int calls = 0;
    assert_int_equal(mk_metrics_new(&r), 0);
    /* Added out of name order: families come out sorted, series of one
     * family in the order they were added. */
    const mk_metric_label out[] = {{"dir", "out"}};
    const mk_metric_label in[] = {{"dir", "in"}};
    assert_int_equal(mk_metrics_add(r, &(mk_metric_desc){
        .name = "zz_bytes_total", .help = "Bytes moved.",
        .type = MK_METRIC_COUNTER, .labels = out, .n_labels = 1}, &c1), 0);
    assert_int_equal(mk_metrics_add(r, &(mk_metric_desc){
        .name = "zz_bytes_total", .help = "Bytes moved.",
        .type = MK_METRIC_COUNTER, .labels = in, .n_labels = 1}, &c2), 0);
    assert_int_equal(mk_metrics_add(r, &(mk_metric_desc){
        .name = "aa_temp", .help = "A gauge.", .type = MK_METRIC_GAUGE},
        &g), 0);
    const double bounds[] = {0.001, 0.1, 1};
    assert_int_equal(mk_metrics_add(r, &(mk_metric_desc){
        .name = "mm_seconds", .help = "Latency.",
        .type = MK_METRIC_HISTOGRAM, .buckets = bounds, .n_buckets = 3},
        &h), 0);
    assert_int_equal(mk_metrics_add(r, &(mk_metric_desc){
        .name = "bb_read", .help = "Read when scraped.",
        .type = MK_METRIC_GAUGE, .read = read_seven, .data = &calls}, &cb),
        0);
    mk_metric_add(c1, 1500);
    mk_metric_add(c2, 3);
    mk_metric_add(c2, 4);
    mk_metric_set(g, -2.5);
    mk_metric_set(cb, 99); /* ignored: the callback owns the value */
    mk_metric_observe(h, 0.0005);
    mk_metric_observe(h, 0.1); /* on the bound: that bucket */
    mk_metric_observe(h, 0.5);
    mk_metric_observe(h, 30);
    char *t = text_of(r);
    assert_string_equal(t,
        "# HELP aa_temp A gauge.\n"
        "# TYPE aa_temp gauge\n"
        "aa_temp -2.5\n"
        "# HELP bb_read Read when scraped.\n"
        "# TYPE bb_read gauge\n"
        "bb_read 7\n"
        "# HELP mm_seconds Latency.\n"
        "# TYPE mm_seconds histogram\n"
        "mm_seconds_bucket{le=\"0.001\"} 1\n"
        "mm_seconds_bucket{le=\"0.1\"} 2\n"
        "mm_seconds_bucket{le=\"1\"} 3\n"
        "mm_seconds_bucket{le=\"+Inf\"} 4\n"
        "mm_seconds_sum 30.6005\n"
        "mm_seconds_count 4\n"
        "# HELP zz_bytes_total Bytes moved.\n"
        "# TYPE zz_bytes_total counter\n"
        "zz_bytes_total{dir=\"out\"} 1500\n"
        "zz_bytes_total{dir=\"in\"} 7\n");
    free(t);
    assert_int_equal(calls, 1);

    /* Removing the last series of a family removes the family. */
    mk_metric_remove(c1);
    mk_metric_remove(c2);
    mk_metric_remove(h);
    mk_metric_remove(cb);
    t = text_of(r);
    assert_string_equal(t, "# HELP aa_temp A gauge.\n"
                           "# TYPE aa_temp gauge\n"
                           "aa_temp -2.5\n");
    free(t);
    mk_metrics_free(r);
}

static void escaping_follows_the_format(void **state)
{
    (void)state;
    mk_metrics *r;
    mk_metric *m, *h;
    assert_int_equal(mk_metrics_new(&r), 0);
    const mk_metric_label l[] = {{"path", "C:\\dir\n\"q\""}, {"b", ""}};
    assert_int_equal(mk_metrics_add(r, &(mk_metric_desc){
        .name = "x", .help = "back\\slash\nnew \"line\"",
        .type = MK_METRIC_GAUGE, .labels = l, .n_labels = 2}, &m), 0);
    mk_metric_set(m, 0.1);
    const double b[] = {0.25};
    const mk_metric_label hl[] = {{"group", "g\"1"}};
    assert_int_equal(mk_metrics_add(r, &(mk_metric_desc){
        .name = "y", .help = "", .type = MK_METRIC_HISTOGRAM,
        .labels = hl, .n_labels = 1, .buckets = b, .n_buckets = 1}, &h), 0);
    mk_metric_observe(h, NAN);
    char *t = text_of(r);
    /* HELP escapes only backslash and newline; label values also '"'. */
    assert_string_equal(t,
        "# HELP x back\\\\slash\\nnew \"line\"\n"
        "# TYPE x gauge\n"
        "x{path=\"C:\\\\dir\\n\\\"q\\\"\",b=\"\"} 0.1\n"
        "# HELP y \n"
        "# TYPE y histogram\n"
        "y_bucket{group=\"g\\\"1\",le=\"0.25\"} 0\n"
        "y_bucket{group=\"g\\\"1\",le=\"+Inf\"} 1\n"
        "y_sum{group=\"g\\\"1\"} NaN\n"
        "y_count{group=\"g\\\"1\"} 1\n");
    free(t);
    mk_metrics_free(r); /* frees the series still in it */
}

static bool count_views(const mk_metric_view *v, void *data)
{
    size_t *n = data;
    (*n)++;
    return strcmp(v->name, "b") != 0;
}

static void refusals_and_iteration(void **state)
{
    (void)state;
    mk_metrics *r;
    mk_metric *m;
    assert_int_equal(mk_metrics_new(&r), 0);
    const mk_metric_label le[] = {{"le", "1"}};
    const mk_metric_label dunder[] = {{"__x", "1"}};
    const mk_metric_label twice[] = {{"a", "1"}, {"a", "2"}};
    const double down[] = {1, 0.5};
    const mk_metric_desc bad[] = {
        {.name = "1abc", .help = "", .type = MK_METRIC_GAUGE},
        {.name = "a-b", .help = "", .type = MK_METRIC_GAUGE},
        {.name = "ok", .help = NULL, .type = MK_METRIC_GAUGE},
        {.name = "h", .help = "", .type = MK_METRIC_HISTOGRAM,
         .labels = le, .n_labels = 1},
        {.name = "h", .help = "", .type = MK_METRIC_HISTOGRAM,
         .buckets = down, .n_buckets = 2},
        {.name = "g", .help = "", .type = MK_METRIC_GAUGE,
         .labels = dunder, .n_labels = 1},
        {.name = "g", .help = "", .type = MK_METRIC_GAUGE,
         .labels = twice, .n_labels = 2},
        {.name = "g", .help = "", .type = MK_METRIC_GAUGE,
         .buckets = down, .n_buckets = 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mk_metrics_add(r, &bad[i], &m), MK_EINVAL);

    const mk_metric_label a[] = {{"k", "v"}};
    mk_metric_desc d = {.name = "b", .help = "h", .type = MK_METRIC_COUNTER,
                        .labels = a, .n_labels = 1};
    assert_int_equal(mk_metrics_add(r, &d, &m), 0);
    assert_int_equal(mk_metrics_add(r, &d, &m), MK_EEXIST);
    d.type = MK_METRIC_GAUGE; /* same name, another type */
    d.n_labels = 0;
    assert_int_equal(mk_metrics_add(r, &d, &m), MK_EINVAL);
    assert_int_equal(mk_metrics_add(r, &(mk_metric_desc){
        .name = "a", .help = "", .type = MK_METRIC_GAUGE}, &m), 0);
    assert_int_equal(mk_metrics_add(r, &(mk_metric_desc){
        .name = "c", .help = "", .type = MK_METRIC_GAUGE}, &m), 0);
    size_t n = 0;
    /* Stops after "b", the second in name order. */
    assert_int_equal(mk_metrics_foreach(r, count_views, &n), 2);
    assert_int_equal(n, 2);
    mk_metrics_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exposition_is_exact),
        cmocka_unit_test(escaping_follows_the_format),
        cmocka_unit_test(refusals_and_iteration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
