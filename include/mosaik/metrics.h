/* Metrics: counters, gauges and fixed-bucket histograms a node keeps
 * about itself, cheap enough to leave on.
 *
 * A registry (mk_metrics) holds metric families, each a name, help text
 * and type, and in each family one series per distinct label set. A node
 * owns one (mk_node_metrics); the objects built on it register their
 * series there and remove them when they close. Like everything on a
 * node, a registry belongs to one loop and takes no locks.
 *
 * A series either holds its value (updated where the event happens:
 * mk_metric_add, mk_metric_set, mk_metric_observe) or reads it when the
 * registry is read, through a callback: a value the code already keeps
 * (a catalog size, a Raft term) then costs nothing between scrapes.
 *
 * An embedder reads the registry with mk_metrics_foreach and exports it
 * its own way, or writes it in the Prometheus text exposition format
 * 0.0.4 with mk_metrics_write_text.
 *
 * A node made with metrics_off (mosaik/node.h) has no registry: its
 * mk_node_metrics is NULL, and the calls below take that NULL as "off",
 * so code that registers series needs no second path.
 */
#ifndef MK_METRICS_H
#define MK_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mosaik/codec.h"

typedef enum mk_metric_type {
    MK_METRIC_COUNTER,   /* only goes up (or restarts from zero) */
    MK_METRIC_GAUGE,     /* goes up and down */
    MK_METRIC_HISTOGRAM, /* observations counted into fixed buckets */
} mk_metric_type;

typedef struct mk_metric_label {
    const char *name;
    const char *value;
} mk_metric_label;

/* At most this many labels per series and buckets per histogram. */
#define MK_METRIC_MAX_LABELS 8
#define MK_METRIC_MAX_BUCKETS 32

typedef struct mk_metric_desc {
    /* [a-zA-Z_:][a-zA-Z0-9_:]*; counters by convention end in _total. */
    const char *name;
    const char *help; /* any text; escaped on output */
    mk_metric_type type;
    /* Label names are [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__";
     * a histogram may not use "le". Values are any text. */
    const mk_metric_label *labels;
    size_t n_labels;
    /* Histograms: the buckets' upper bounds, strictly ascending and
     * finite; the +Inf bucket is implied. */
    const double *buckets;
    size_t n_buckets;
    /* Counters and gauges (may be NULL): the value, read whenever the
     * registry is read. Runs on the loop; must not change the registry. */
    double (*read)(void *data);
    void *data;
} mk_metric_desc;

typedef struct mk_metrics mk_metrics;
typedef struct mk_metric mk_metric;

/* A new empty registry. 0 or MK_ENOMEM. */
int mk_metrics_new(mk_metrics **out);

/* Frees the registry and every series still in it: pointers to them are
 * dangling afterwards. NULL is fine. */
void mk_metrics_free(mk_metrics *r);

/* Adds a series; everything in `d` is copied. A series joins the family
 * of its name when the type, help text and buckets are the same
 * (MK_EINVAL otherwise, or for a malformed name, label or bucket list);
 * MK_EEXIST when that family already has a series with the same labels
 * (in the same order). Returns 0 and `*out` (owned by the registry until
 * mk_metric_remove), or MK_ENOMEM. A NULL registry (a node running with
 * metrics off, mk_node_metrics) gives MK_EMETRICS_OFF and *out = NULL,
 * which every call below takes as a series that ignores its updates. */
int mk_metrics_add(mk_metrics *r, const mk_metric_desc *d, mk_metric **out);

/* Removes and frees one series (its family goes with its last series).
 * NULL is fine. */
void mk_metric_remove(mk_metric *m);

/* Counters: adds `n`. Gauges: adds `n` (may be negative through
 * mk_metric_set). Ignored for a series with a read callback. These three
 * do nothing for NULL: with metrics off, an update is one test. */
void mk_metric_add(mk_metric *m, double n);
/* Gauges: sets the value. */
void mk_metric_set(mk_metric *m, double v);
/* Histograms: counts `v` into the first bucket whose bound is >= v. */
void mk_metric_observe(mk_metric *m, double v);

/* One series as read: valid only during the callback. */
typedef struct mk_metric_view {
    const char *name, *help;
    mk_metric_type type;
    const mk_metric_label *labels;
    size_t n_labels;
    double value; /* counters and gauges */
    /* Histograms: bucket i counts the observations <= bounds[i] (not
     * cumulative); counts[n_buckets] is the +Inf bucket. */
    const double *bounds;
    const uint64_t *counts;
    size_t n_buckets;
    uint64_t count;
    double sum;
} mk_metric_view;

/* Calls `fn` for every series, families in name order and series in the
 * order they were added; stop early by returning false. Read callbacks
 * run as their series is reached. Series count is returned; a NULL
 * registry (metrics off) has none and returns 0 without calling `fn`:
 * mk_metrics_write_text or the NULL itself tells that apart from a
 * registry that is merely empty. */
size_t mk_metrics_foreach(const mk_metrics *r,
                          bool (*fn)(const mk_metric_view *v, void *data),
                          void *data);

/* Appends the registry in the Prometheus text exposition format 0.0.4
 * (served as "text/plain; version=0.0.4"): per family "# HELP" and
 * "# TYPE", then one line per series, histograms as cumulative
 * _bucket{le=…} lines, _sum and _count. 0 or MK_ENOMEM (out->err);
 * MK_EMETRICS_OFF, appending nothing, for a NULL registry, so an
 * exporter does not serve an empty page as if all were well. */
int mk_metrics_write_text(const mk_metrics *r, mk_buf *out);

#endif /* MK_METRICS_H */
