/* The metrics registry and its text exposition (mosaik/metrics.h). */
#include "mosaik/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"

typedef struct family family;

struct mk_metric {
    family *fam;
    mk_metric_label labels[MK_METRIC_MAX_LABELS];
    size_t n_labels;
    char *strings; /* the label names and values, one allocation */
    double value;
    double (*read)(void *data);
    void *data;
    uint64_t counts[MK_METRIC_MAX_BUCKETS + 1];
    uint64_t count;
    double sum;
};

struct family {
    mk_metrics *reg;
    char *name, *help;
    mk_metric_type type;
    double bounds[MK_METRIC_MAX_BUCKETS];
    size_t n_bounds;
    mk_metric **series;
    size_t n, cap;
};

struct mk_metrics {
    family **fams; /* sorted by name, so output needs no sort */
    size_t n, cap;
};

int mk_metrics_new(mk_metrics **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : MK_ENOMEM;
}

static void series_free(mk_metric *m)
{
    free(m->strings);
    free(m);
}

static void family_free(family *f)
{
    for (size_t i = 0; i < f->n; i++)
        series_free(f->series[i]);
    free(f->series);
    free(f->name);
    free(f->help);
    free(f);
}

void mk_metrics_free(mk_metrics *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        family_free(r->fams[i]);
    free(r->fams);
    free(r);
}

/* ---- validation ---------------------------------------------------------- */

static bool name_ok(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '_' || (colon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static int desc_check(const mk_metric_desc *d)
{
    if (!name_ok(d->name, true) || !d->help ||
        d->n_labels > MK_METRIC_MAX_LABELS || (d->n_labels && !d->labels))
        return MK_EINVAL;
    if (d->type != MK_METRIC_COUNTER && d->type != MK_METRIC_GAUGE &&
        d->type != MK_METRIC_HISTOGRAM)
        return MK_EINVAL;
    for (size_t i = 0; i < d->n_labels; i++) {
        const mk_metric_label *l = &d->labels[i];
        if (!name_ok(l->name, false) || !l->value ||
            strncmp(l->name, "__", 2) == 0)
            return MK_EINVAL;
        if (d->type == MK_METRIC_HISTOGRAM && strcmp(l->name, "le") == 0)
            return MK_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(d->labels[j].name, l->name) == 0)
                return MK_EINVAL;
    }
    if (d->type == MK_METRIC_HISTOGRAM) {
        if (d->read || d->n_buckets > MK_METRIC_MAX_BUCKETS ||
            (d->n_buckets && !d->buckets))
            return MK_EINVAL;
        for (size_t i = 0; i < d->n_buckets; i++)
            if (!isfinite(d->buckets[i]) ||
                (i > 0 && !(d->buckets[i] > d->buckets[i - 1])))
                return MK_EINVAL;
    } else if (d->n_buckets) {
        return MK_EINVAL;
    }
    return 0;
}

/* ---- adding and removing ------------------------------------------------- */

/* The index of `name`, or where it would go (*found false). */
static size_t family_find(const mk_metrics *r, const char *name, bool *found)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->fams[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static bool family_matches(const family *f, const mk_metric_desc *d)
{
    if (f->type != d->type || strcmp(f->help, d->help) != 0 ||
        f->n_bounds != d->n_buckets)
        return false;
    for (size_t i = 0; i < d->n_buckets; i++)
        if (f->bounds[i] != d->buckets[i])
            return false;
    return true;
}

static bool same_labels(const mk_metric *m, const mk_metric_desc *d)
{
    if (m->n_labels != d->n_labels)
        return false;
    for (size_t i = 0; i < d->n_labels; i++)
        if (strcmp(m->labels[i].name, d->labels[i].name) != 0 ||
            strcmp(m->labels[i].value, d->labels[i].value) != 0)
            return false;
    return true;
}

static mk_metric *series_new(const mk_metric_desc *d)
{
    mk_metric *m = calloc(1, sizeof *m);
    size_t len = 1;
    for (size_t i = 0; i < d->n_labels; i++)
        len += strlen(d->labels[i].name) + strlen(d->labels[i].value) + 2;
    if (!m || !(m->strings = malloc(len))) {
        free(m);
        return NULL;
    }
    char *p = m->strings;
    for (size_t i = 0; i < d->n_labels; i++) {
        size_t a = strlen(d->labels[i].name) + 1;
        size_t b = strlen(d->labels[i].value) + 1;
        m->labels[i].name = memcpy(p, d->labels[i].name, a);
        m->labels[i].value = memcpy(p + a, d->labels[i].value, b);
        p += a + b;
    }
    m->n_labels = d->n_labels;
    m->read = d->read;
    m->data = d->data;
    return m;
}

static family *family_new(mk_metrics *r, const mk_metric_desc *d)
{
    family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->reg = r;
    f->name = strdup(d->name);
    f->help = strdup(d->help);
    f->type = d->type;
    f->n_bounds = d->n_buckets;
    if (d->n_buckets)
        memcpy(f->bounds, d->buckets, d->n_buckets * sizeof *f->bounds);
    if (!f->name || !f->help) {
        family_free(f);
        return NULL;
    }
    return f;
}

int mk_metrics_add(mk_metrics *r, const mk_metric_desc *d, mk_metric **out)
{
    if (!r) {
        *out = NULL;
        return MK_EMETRICS_OFF;
    }
    int rc = desc_check(d);
    if (rc < 0)
        return rc;
    bool found;
    size_t at = family_find(r, d->name, &found);
    family *f = found ? r->fams[at] : NULL;
    if (f) {
        if (!family_matches(f, d))
            return MK_EINVAL;
        for (size_t i = 0; i < f->n; i++)
            if (same_labels(f->series[i], d))
                return MK_EEXIST;
    } else {
        if (r->n == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 16;
            family **p = realloc(r->fams, cap * sizeof *p);
            if (!p)
                return MK_ENOMEM;
            r->fams = p;
            r->cap = cap;
        }
        if (!(f = family_new(r, d)))
            return MK_ENOMEM;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4;
        mk_metric **p = realloc(f->series, cap * sizeof *p);
        if (!p)
            goto nomem;
        f->series = p;
        f->cap = cap;
    }
    mk_metric *m = series_new(d);
    if (!m)
        goto nomem;
    m->fam = f;
    f->series[f->n++] = m;
    if (!found) {
        memmove(r->fams + at + 1, r->fams + at, (r->n - at) * sizeof *r->fams);
        r->fams[at] = f;
        r->n++;
    }
    *out = m;
    return 0;
nomem:
    if (!found)
        family_free(f);
    return MK_ENOMEM;
}

void mk_metric_remove(mk_metric *m)
{
    if (!m)
        return;
    family *f = m->fam;
    for (size_t i = 0; i < f->n; i++) {
        if (f->series[i] != m)
            continue;
        memmove(f->series + i, f->series + i + 1,
                (f->n - i - 1) * sizeof *f->series);
        f->n--;
        break;
    }
    series_free(m);
    if (f->n)
        return;
    mk_metrics *r = f->reg;
    bool found;
    size_t at = family_find(r, f->name, &found);
    if (found) {
        memmove(r->fams + at, r->fams + at + 1,
                (r->n - at - 1) * sizeof *r->fams);
        r->n--;
    }
    family_free(f);
}

/* ---- updating ------------------------------------------------------------ */

void mk_metric_add(mk_metric *m, double n)
{
    if (m && !m->read && m->fam->type != MK_METRIC_HISTOGRAM)
        m->value += n;
}

void mk_metric_set(mk_metric *m, double v)
{
    if (m && !m->read && m->fam->type == MK_METRIC_GAUGE)
        m->value = v;
}

void mk_metric_observe(mk_metric *m, double v)
{
    if (!m || m->fam->type != MK_METRIC_HISTOGRAM)
        return;
    const family *f = m->fam;
    size_t i = 0;
    /* A linear scan: a dozen bounds, and the common small values stop
     * early. NaN lands in +Inf, as it compares false with every bound. */
    while (i < f->n_bounds && !(v <= f->bounds[i]))
        i++;
    m->counts[i]++;
    m->count++;
    m->sum += v;
}

/* ---- reading ------------------------------------------------------------- */

static void view_of(const mk_metric *m, mk_metric_view *v)
{
    const family *f = m->fam;
    *v = (mk_metric_view){
        .name = f->name,
        .help = f->help,
        .type = f->type,
        .labels = m->labels,
        .n_labels = m->n_labels,
        .value = m->read ? m->read(m->data) : m->value,
        .bounds = f->bounds,
        .counts = m->counts,
        .n_buckets = f->n_bounds,
        .count = m->count,
        .sum = m->sum,
    };
}

size_t mk_metrics_foreach(const mk_metrics *r,
                          bool (*fn)(const mk_metric_view *v, void *data),
                          void *data)
{
    size_t seen = 0;
    for (size_t i = 0; r && i < r->n; i++) {
        const family *f = r->fams[i];
        for (size_t j = 0; j < f->n; j++) {
            mk_metric_view v;
            view_of(f->series[j], &v);
            seen++;
            if (!fn(&v, data))
                return seen;
        }
    }
    return seen;
}

/* ---- the text format ----------------------------------------------------- */

static void put_str(mk_buf *b, const char *s)
{
    mk_put_raw(b, s, strlen(s));
}

/* HELP escapes backslash and newline; label values also the double
 * quote (format 0.0.4). */
static void put_escaped(mk_buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            put_str(b, "\\\\");
        else if (*s == '\n')
            put_str(b, "\\n");
        else if (quote && *s == '"')
            put_str(b, "\\\"");
        else
            mk_put_raw(b, s, 1);
    }
}

/* The shortest decimal that reads back as the same double, so 0.1 is
 * not written as 0.10000000000000001; integers come out without an
 * exponent up to 2^53. */
static void put_double(mk_buf *b, double v)
{
    char s[40];
    if (isnan(v)) {
        put_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        put_str(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(s, sizeof s, "%.0f", v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(s, sizeof s, "%.*g", prec, v);
            if (strtod(s, NULL) == v)
                break;
        }
    }
    put_str(b, s);
}

static void put_u64(mk_buf *b, uint64_t v)
{
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, v);
    put_str(b, s);
}

/* name{labels[,le="…"]} with `suffix` after the name. */
static void put_series(mk_buf *b, const mk_metric_view *v, const char *suffix,
                       const double *le)
{
    put_str(b, v->name);
    put_str(b, suffix);
    if (!v->n_labels && !le)
        return;
    mk_put_u8(b, '{');
    for (size_t i = 0; i < v->n_labels; i++) {
        if (i)
            mk_put_u8(b, ',');
        put_str(b, v->labels[i].name);
        put_str(b, "=\"");
        put_escaped(b, v->labels[i].value, true);
        mk_put_u8(b, '"');
    }
    if (le) {
        put_str(b, v->n_labels ? ",le=\"" : "le=\"");
        put_double(b, *le);
        mk_put_u8(b, '"');
    }
    mk_put_u8(b, '}');
}

typedef struct text_ctx {
    mk_buf *out;
    const char *last; /* the family whose header was written */
} text_ctx;

static bool write_one(const mk_metric_view *v, void *data)
{
    text_ctx *c = data;
    mk_buf *b = c->out;
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (!c->last || strcmp(c->last, v->name) != 0) {
        put_str(b, "# HELP ");
        put_str(b, v->name);
        mk_put_u8(b, ' ');
        put_escaped(b, v->help, false);
        put_str(b, "\n# TYPE ");
        put_str(b, v->name);
        mk_put_u8(b, ' ');
        put_str(b, types[v->type]);
        mk_put_u8(b, '\n');
        c->last = v->name;
    }
    if (v->type != MK_METRIC_HISTOGRAM) {
        put_series(b, v, "", NULL);
        mk_put_u8(b, ' ');
        put_double(b, v->value);
        mk_put_u8(b, '\n');
        return true;
    }
    uint64_t cum = 0;
    for (size_t i = 0; i <= v->n_buckets; i++) {
        double le = i < v->n_buckets ? v->bounds[i] : INFINITY;
        cum += v->counts[i];
        put_series(b, v, "_bucket", &le);
        mk_put_u8(b, ' ');
        put_u64(b, cum);
        mk_put_u8(b, '\n');
    }
    put_series(b, v, "_sum", NULL);
    mk_put_u8(b, ' ');
    put_double(b, v->sum);
    mk_put_u8(b, '\n');
    put_series(b, v, "_count", NULL);
    mk_put_u8(b, ' ');
    put_u64(b, v->count);
    mk_put_u8(b, '\n');
    return true;
}

int mk_metrics_write_text(const mk_metrics *r, mk_buf *out)
{
    if (!r)
        return MK_EMETRICS_OFF;
    text_ctx c = {.out = out};
    mk_metrics_foreach(r, write_one, &c);
    return out->err;
}
