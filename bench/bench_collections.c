/* Collection state machines without the network: apply throughput per
 * kind (one command per item, and one extend of every item), then
 * snapshot and restore speed over the resulting state.
 *
 * Usage: bench_collections [-n items] [-r runs]   (100000 items, 3 runs)
 *
 * Keys are scrambled 4-byte big-endian integers so trees rebalance as
 * they would under real writers; values are 16 bytes; priorities take 97
 * distinct values. Each figure is the best of the runs. Prints figures
 * only: nothing here asserts on time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mosaik/collections.h"

enum { MAP, SET, VEC, CELL, ONCE, PQ, BPQ, N_KINDS };
static const char *const names[] = {"map", "set",  "vec",        "cell",
                                    "once", "pq", "pq(cap n/10)"};

typedef struct machine {
    int kind;
    void *obj;
    struct mk_fsm *f;
} machine;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_collections: %s\n", what);
    exit(1);
}

static machine machine_new(int kind, size_t n)
{
    mk_coll_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mk_id_from_str(&cfg.store, "bench");
    machine m = {.kind = kind};
    int rc;
    switch (kind) {
    case MAP:
        rc = mk_map_new(&cfg, (mk_map **)&m.obj);
        m.f = rc ? NULL : mk_map_fsm(m.obj);
        break;
    case SET:
        rc = mk_set_new(&cfg, (mk_set **)&m.obj);
        m.f = rc ? NULL : mk_set_fsm(m.obj);
        break;
    case VEC:
        rc = mk_vec_new(&cfg, (mk_vec **)&m.obj);
        m.f = rc ? NULL : mk_vec_fsm(m.obj);
        break;
    case CELL:
        rc = mk_cell_new(&cfg, (mk_cell **)&m.obj);
        m.f = rc ? NULL : mk_cell_fsm(m.obj);
        break;
    case ONCE:
        rc = mk_once_new(&cfg, (mk_once **)&m.obj);
        m.f = rc ? NULL : mk_once_fsm(m.obj);
        break;
    default:
        cfg.capacity = kind == BPQ ? (n / 10 ? n / 10 : 1) : 0;
        rc = mk_pq_new(&cfg, (mk_pq **)&m.obj);
        m.f = rc ? NULL : mk_pq_fsm(m.obj);
    }
    if (rc)
        die("out of memory");
    return m;
}

static void machine_free(machine *m)
{
    switch (m->kind) {
    case MAP:
        mk_map_free(m->obj);
        break;
    case SET:
        mk_set_free(m->obj);
        break;
    case VEC:
        mk_vec_free(m->obj);
        break;
    case CELL:
        mk_cell_free(m->obj);
        break;
    case ONCE:
        mk_once_free(m->obj);
        break;
    default:
        mk_pq_free(m->obj);
    }
}

/* The n items: key, priority and value bytes for item i. */
typedef struct items {
    uint8_t *bytes; /* 24 per item: key[4], prio[4], val[16] */
    mk_coll_item *it;
    size_t n;
} items;

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static items make_items(size_t n)
{
    items x = {calloc(n, 24), calloc(n, sizeof(mk_coll_item)), n};
    if (!x.bytes || !x.it)
        die("out of memory");
    for (size_t i = 0; i < n; i++) {
        uint8_t *k = x.bytes + 24 * i, *p = k + 4, *v = k + 8;
        be32(k, (uint32_t)(i * 2654435761u));
        be32(p, (uint32_t)(i % 97));
        memset(v, (int)(i & 0xff), 16);
        x.it[i] = (mk_coll_item){p, 4, k, 4, v, 16};
    }
    return x;
}

/* One command per item, back to back in `cmds`, ends in `ends`. */
static void encode_each(int kind, const items *x, mk_buf *cmds, size_t *ends)
{
    for (size_t i = 0; i < x->n; i++) {
        const mk_coll_item *it = &x->it[i];
        switch (kind) {
        case MAP:
            mk_map_cmd_insert(cmds, it->key, 4, it->val, 16);
            break;
        case SET:
            mk_set_cmd_insert(cmds, it->key, 4);
            break;
        case VEC:
            mk_vec_cmd_push_back(cmds, it->val, 16);
            break;
        case CELL:
            mk_cell_cmd_write(cmds, it->val, 16);
            break;
        case ONCE:
            mk_once_cmd_write(cmds, it->val, 16);
            break;
        default:
            mk_pq_cmd_insert(cmds, it->prio, 4, it->key, 4, it->val, 16);
        }
        ends[i] = cmds->len;
    }
    if (cmds->err)
        die("out of memory");
}

/* The whole set as one command, or 0 when the kind has no batch. */
static int encode_extend(int kind, const items *x, mk_buf *cmd)
{
    switch (kind) {
    case MAP:
        return mk_map_cmd_extend(cmd, x->it, x->n) ? -1 : 1;
    case SET:
        return mk_set_cmd_extend(cmd, x->it, x->n) ? -1 : 1;
    case VEC:
        return mk_vec_cmd_extend(cmd, x->it, x->n) ? -1 : 1;
    case PQ:
    case BPQ:
        return mk_pq_cmd_extend(cmd, x->it, x->n) ? -1 : 1;
    default:
        return 0;
    }
}

int main(int argc, char **argv)
{
    size_t n = 100000;
    int runs = 3, opt;
    while ((opt = getopt(argc, argv, "n:r:")) != -1) {
        if (opt == 'n')
            n = strtoul(optarg, NULL, 10);
        else if (opt == 'r')
            runs = atoi(optarg);
        else
            die("usage: bench_collections [-n items] [-r runs]");
    }
    if (n == 0 || runs < 1)
        die("usage: bench_collections [-n items] [-r runs]");
    items x = make_items(n);
    size_t *ends = calloc(n, sizeof *ends);
    if (!ends)
        die("out of memory");
    mk_buf cmds, res, snap;
    mk_buf_init(&cmds);
    mk_buf_init(&res);
    mk_buf_init(&snap);

    printf("collections: %zu items, best of %d runs\n", n, runs);
    printf("%-13s %12s %12s %8s %14s %13s\n", "kind", "apply op/s",
           "extend it/s", "snap MB", "snapshot MB/s", "restore MB/s");
    for (int k = 0; k < N_KINDS; k++) {
        double best_apply = 0, best_ext = 0, best_snap = 0, best_rest = 0;
        mk_buf_reset(&cmds);
        encode_each(k, &x, &cmds, ends);
        for (int r = 0; r < runs; r++) {
            /* One command per item, as a writer inserting one by one. */
            machine m = machine_new(k, n);
            double t0 = now();
            for (size_t i = 0; i < n; i++) {
                size_t start = i ? ends[i - 1] : 0;
                mk_buf_reset(&res);
                if (m.f->apply(m.f, cmds.data + start, ends[i] - start,
                               &res) != 0)
                    die("apply failed");
            }
            double dt = now() - t0;
            if (n / dt > best_apply)
                best_apply = (double)n / dt;

            /* Snapshot and restore of that state. */
            mk_buf_reset(&snap);
            t0 = now();
            if (m.f->snapshot(m.f, &snap) != 0)
                die("snapshot failed");
            dt = now() - t0;
            if (snap.len / dt > best_snap)
                best_snap = (double)snap.len / dt;
            machine m2 = machine_new(k, n);
            t0 = now();
            if (m2.f->restore(m2.f, snap.data, snap.len) != 0)
                die("restore failed");
            dt = now() - t0;
            if (snap.len / dt > best_rest)
                best_rest = (double)snap.len / dt;
            machine_free(&m);
            machine_free(&m2);

            /* The same items as one extend. */
            mk_buf ext;
            mk_buf_init(&ext);
            if (encode_extend(k, &x, &ext) == 1) {
                machine m3 = machine_new(k, n);
                mk_buf_reset(&res);
                t0 = now();
                if (m3.f->apply(m3.f, ext.data, ext.len, &res) != 0)
                    die("extend failed");
                dt = now() - t0;
                if (n / dt > best_ext)
                    best_ext = (double)n / dt;
                machine_free(&m3);
            }
            mk_buf_free(&ext);
        }
        char ext_s[32];
        if (best_ext > 0)
            snprintf(ext_s, sizeof ext_s, "%.0f", best_ext);
        else
            snprintf(ext_s, sizeof ext_s, "-");
        printf("%-13s %12.0f %12s %8.2f %14.0f %13.0f\n", names[k],
               best_apply, ext_s, (double)snap.len / 1e6, best_snap / 1e6,
               best_rest / 1e6);
    }
    mk_buf_free(&cmds);
    mk_buf_free(&res);
    mk_buf_free(&snap);
    free(ends);
    free(x.bytes);
    free(x.it);
    return 0;
}
