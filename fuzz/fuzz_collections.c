/* libFuzzer target for the replicated collections' decoders.
 *
 * Input: one byte choosing the kind (and, for the PriorityQueue, a bound),
 * then chunks: a tag byte (low two bits: 0 command, 1 snapshot, 2 query,
 * 3 command; the other six bits are the high bits of the length), a length
 * byte, and that many bytes (fewer at the end of the input).
 *
 * Every chunk goes to two machines of that kind, and the properties are:
 *   - a command or snapshot either applies, or fails with MK_EDECODE and
 *     leaves the state exactly as it was (the snapshot bytes say so);
 *   - an applied command's outcome decodes;
 *   - a snapshot that restores is canonical: snapshot() gives the same
 *     bytes back;
 *   - a query changes nothing, and an answer decodes as a length, an item
 *     or a page;
 *   - both machines stay identical (determinism), and at the end
 *     snapshot -> restore into a fresh machine -> snapshot is identical.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/codec.h"
#include "mosaik/collections.h"
#include "mosaik/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct machine {
    int kind;
    void *obj;
    struct mk_fsm *f;
} machine;

static void machine_new(machine *m, int kind, uint64_t cap)
{
    mk_coll_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = cap;
    m->kind = kind;
    int rc;
    switch (kind) {
    case 0:
        rc = mk_map_new(&cfg, (mk_map **)&m->obj);
        m->f = rc ? NULL : mk_map_fsm(m->obj);
        break;
    case 1:
        rc = mk_set_new(&cfg, (mk_set **)&m->obj);
        m->f = rc ? NULL : mk_set_fsm(m->obj);
        break;
    case 2:
        rc = mk_vec_new(&cfg, (mk_vec **)&m->obj);
        m->f = rc ? NULL : mk_vec_fsm(m->obj);
        break;
    case 3:
        rc = mk_cell_new(&cfg, (mk_cell **)&m->obj);
        m->f = rc ? NULL : mk_cell_fsm(m->obj);
        break;
    case 4:
        rc = mk_once_new(&cfg, (mk_once **)&m->obj);
        m->f = rc ? NULL : mk_once_fsm(m->obj);
        break;
    default:
        rc = mk_pq_new(&cfg, (mk_pq **)&m->obj);
        m->f = rc ? NULL : mk_pq_fsm(m->obj);
    }
    if (rc)
        abort();
}

static void machine_free(machine *m)
{
    switch (m->kind) {
    case 0:
        mk_map_free(m->obj);
        break;
    case 1:
        mk_set_free(m->obj);
        break;
    case 2:
        mk_vec_free(m->obj);
        break;
    case 3:
        mk_cell_free(m->obj);
        break;
    case 4:
        mk_once_free(m->obj);
        break;
    default:
        mk_pq_free(m->obj);
    }
}

static void snap(struct mk_fsm *f, mk_buf *out)
{
    mk_buf_reset(out);
    if (f->snapshot(f, out) != 0)
        abort();
}

static bool same(const mk_buf *a, const mk_buf *b)
{
    return a->len == b->len && (a->len == 0 || !memcmp(a->data, b->data, a->len));
}

static int ignore(const mk_coll_item *it, void *data)
{
    (void)it;
    (void)data;
    return 0;
}

/* One chunk into one machine; aborts when a property fails. Returns the
 * call's code so the twin can be checked to agree. */
static int feed(machine *m, int op, const uint8_t *p, size_t n, mk_buf *before,
                mk_buf *after, mk_buf *res)
{
    snap(m->f, before);
    mk_buf_reset(res);
    int rc;
    if (op == 1) {
        rc = m->f->restore(m->f, p, n);
        snap(m->f, after);
        if (rc == 0 && (after->len != n || (n && memcmp(after->data, p, n))))
            abort(); /* accepted but not canonical */
    } else if (op == 2) {
        rc = m->f->query(m->f, p, n, res);
        snap(m->f, after);
        if (!same(before, after))
            abort(); /* a query changed the state */
        if (rc == 0) {
            uint64_t len;
            bool found, more;
            mk_coll_item it;
            if (mk_coll_reply_len(res->data, res->len, &len) != 0 &&
                mk_coll_reply_item(res->data, res->len, &found, &it) != 0 &&
                mk_coll_reply_page(res->data, res->len, ignore, NULL,
                                   &more) != 0)
                abort();
        }
    } else {
        rc = m->f->apply(m->f, p, n, res);
        snap(m->f, after);
        if (rc == 0) {
            mk_coll_outcome o;
            if (mk_coll_outcome_decode(res->data, res->len, &o) != 0)
                abort();
        }
    }
    if (rc != 0 && rc != MK_EDECODE && rc != MK_ENOMEM)
        abort();
    if (rc != 0 && !same(before, after))
        abort(); /* failed, yet changed something */
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int kind = data[0] % 6;
    uint64_t cap = kind == 5 ? (uint64_t)(data[0] / 6 % 4) : 0;
    machine a, b, c;
    machine_new(&a, kind, cap);
    machine_new(&b, kind, cap);
    mk_buf before, after, res, sa, sb;
    mk_buf_init(&before);
    mk_buf_init(&after);
    mk_buf_init(&res);
    mk_buf_init(&sa);
    mk_buf_init(&sb);

    size_t at = 1;
    while (at + 2 <= size) {
        int op = data[at] & 3;
        size_t n = (size_t)(data[at] >> 2) << 8 | data[at + 1];
        at += 2;
        if (n > size - at)
            n = size - at;
        int ra = feed(&a, op, data + at, n, &before, &after, &res);
        int rb = feed(&b, op, data + at, n, &before, &after, &res);
        if (ra != rb)
            abort();
        at += n;
    }
    snap(a.f, &sa);
    snap(b.f, &sb);
    if (!same(&sa, &sb))
        abort(); /* the same inputs gave two states */
    machine_new(&c, kind, cap);
    if (c.f->restore(c.f, sa.data, sa.len) != 0)
        abort();
    snap(c.f, &sb);
    if (!same(&sa, &sb))
        abort();

    machine_free(&a);
    machine_free(&b);
    machine_free(&c);
    mk_buf_free(&before);
    mk_buf_free(&after);
    mk_buf_free(&res);
    mk_buf_free(&sa);
    mk_buf_free(&sb);
    return 0;
}
