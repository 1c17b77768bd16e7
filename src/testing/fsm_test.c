/* The test state machines (include/mosaik/testing/fsm_test.h): a counter, a register and an
 * append-only log, each a struct mk_fsm with text commands. They exist so
 * groups can be exercised end to end (by unit tests, the multi-process
 * suite through coalitiond, and the benchmark) without a real application.
 */
#include "mosaik/testing/fsm_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/error.h"

enum { KIND_COUNTER, KIND_REGISTER, KIND_LOG };

typedef struct test_fsm {
    struct mk_fsm fsm;
    int kind;
    int64_t value;             /* counter */
    mk_buf reg;                /* register */
    mk_buf *entries;           /* log */
    size_t n, cap;
    uint8_t chain[MK_ID_LEN];  /* log: blake3(previous chain ‖ entry) */
} test_fsm;

static const char *const KINDS[] = {"counter", "register", "log"};

static int kind_of(const char *kind)
{
    for (int i = 0; i < 3; i++)
        if (kind && strcmp(kind, KINDS[i]) == 0)
            return i;
    return -1;
}

bool mk_fsm_test_known(const char *kind)
{
    return kind_of(kind) >= 0;
}

/* Decimal i64 in exactly `len` bytes (no spaces, optional sign). */
static bool parse_i64(const uint8_t *p, size_t len, int64_t *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end || end == tmp || tmp[0] == ' ' || tmp[0] == '+')
        return false;
    *out = v;
    return true;
}

static void put_i64_text(mk_buf *b, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    mk_put_raw(b, tmp, (size_t)n);
}

static void log_clear(test_fsm *t)
{
    for (size_t i = 0; i < t->n; i++)
        mk_buf_free(&t->entries[i]);
    free(t->entries);
    t->entries = NULL;
    t->n = t->cap = 0;
    memset(t->chain, 0, sizeof t->chain);
}

static int log_append(test_fsm *t, const uint8_t *p, size_t len)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        mk_buf *grown = realloc(t->entries, cap * sizeof *grown);
        if (!grown)
            return MK_ENOMEM;
        t->entries = grown;
        t->cap = cap;
    }
    mk_buf *e = &t->entries[t->n];
    mk_buf_init(e);
    mk_put_raw(e, p, len);
    if (e->err)
        return MK_ENOMEM;
    t->n++;
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, t->chain, sizeof t->chain);
    mk_blake3_update(&h, p, len);
    mk_blake3_final(&h, t->chain, sizeof t->chain);
    return 0;
}

static int t_apply(struct mk_fsm *fsm, const uint8_t *cmd, size_t len,
                   mk_buf *result)
{
    test_fsm *t = fsm->data;
    int64_t add;
    switch (t->kind) {
    case KIND_COUNTER:
        if (!parse_i64(cmd, len, &add)) {
            mk_put_raw(result, "ERR", 3);
            return 0;
        }
        /* Wrapping, like mosaik's test counter: unsigned arithmetic. */
        t->value = (int64_t)((uint64_t)t->value + (uint64_t)add);
        put_i64_text(result, t->value);
        return 0;
    case KIND_REGISTER:
        mk_put_raw(result, t->reg.data, t->reg.len);
        mk_buf_reset(&t->reg);
        mk_put_raw(&t->reg, cmd, len);
        return t->reg.err;
    default: {
        int rc = log_append(t, cmd, len);
        if (rc == 0)
            put_i64_text(result, (int64_t)t->n);
        return rc;
    }
    }
}

static int t_snapshot(struct mk_fsm *fsm, mk_buf *out)
{
    test_fsm *t = fsm->data;
    switch (t->kind) {
    case KIND_COUNTER:
        mk_put_i64(out, t->value);
        break;
    case KIND_REGISTER:
        mk_put_bytes(out, t->reg.data, t->reg.len);
        break;
    default:
        mk_put_varint(out, t->n);
        for (size_t i = 0; i < t->n; i++)
            mk_put_bytes(out, t->entries[i].data, t->entries[i].len);
    }
    return out->err;
}

static int t_restore(struct mk_fsm *fsm, const uint8_t *snap, size_t len)
{
    test_fsm *t = fsm->data;
    mk_reader r;
    mk_reader_init(&r, snap, len);
    switch (t->kind) {
    case KIND_COUNTER: {
        int64_t v = mk_get_i64(&r);
        if (mk_reader_done(&r) != 0)
            return MK_EDECODE;
        t->value = v;
        return 0;
    }
    case KIND_REGISTER: {
        size_t n;
        const uint8_t *p = mk_get_bytes(&r, &n, len);
        if (!p || mk_reader_done(&r) != 0)
            return MK_EDECODE;
        mk_buf_reset(&t->reg);
        mk_put_raw(&t->reg, p, n);
        return t->reg.err;
    }
    default: {
        /* Validate everything first so a bad snapshot changes nothing. */
        size_t n = mk_get_count(&r, SIZE_MAX / 2, 1);
        for (size_t i = 0; i < n && !r.err; i++) {
            size_t l;
            mk_get_bytes(&r, &l, len);
        }
        if (mk_reader_done(&r) != 0)
            return MK_EDECODE;
        log_clear(t);
        mk_reader_init(&r, snap, len);
        n = mk_get_count(&r, SIZE_MAX / 2, 1);
        for (size_t i = 0; i < n; i++) {
            size_t l;
            const uint8_t *p = mk_get_bytes(&r, &l, len);
            int rc = log_append(t, p, l);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    }
}

static int t_query(struct mk_fsm *fsm, const uint8_t *q, size_t len,
                   mk_buf *result)
{
    test_fsm *t = fsm->data;
    switch (t->kind) {
    case KIND_COUNTER:
        put_i64_text(result, t->value);
        break;
    case KIND_REGISTER:
        mk_put_raw(result, t->reg.data, t->reg.len);
        break;
    default:
        if (len == 4 && memcmp(q, "hash", 4) == 0) {
            char hex[2 * MK_ID_LEN + 1];
            mk_hex_encode(t->chain, sizeof t->chain, hex);
            mk_put_raw(result, hex, 2 * MK_ID_LEN);
        } else if (len == 3 && memcmp(q, "all", 3) == 0) {
            for (size_t i = 0; i < t->n; i++) {
                if (i)
                    mk_put_raw(result, "\n", 1);
                mk_put_raw(result, t->entries[i].data, t->entries[i].len);
            }
        } else if (len > 4 && memcmp(q, "get ", 4) == 0) {
            int64_t i;
            if (parse_i64(q + 4, len - 4, &i) && i >= 1 &&
                (uint64_t)i <= t->n)
                mk_put_raw(result, t->entries[i - 1].data,
                           t->entries[i - 1].len);
        } else {
            put_i64_text(result, (int64_t)t->n);
        }
    }
    return result->err;
}

struct mk_fsm *mk_fsm_test_new(const char *kind)
{
    int k = kind_of(kind);
    if (k < 0)
        return NULL;
    test_fsm *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    char label[64];
    snprintf(label, sizeof label, "mosaik.test.%s/1", kind);
    t->kind = k;
    mk_buf_init(&t->reg);
    t->fsm.version = MK_FSM_VERSION;
    t->fsm.data = t;
    mk_id_from_str(&t->fsm.signature, label);
    t->fsm.apply = t_apply;
    t->fsm.snapshot = t_snapshot;
    t->fsm.restore = t_restore;
    t->fsm.query = t_query;
    return &t->fsm;
}

void mk_fsm_test_free(struct mk_fsm *fsm)
{
    if (!fsm)
        return;
    test_fsm *t = fsm->data;
    mk_buf_free(&t->reg);
    log_clear(t);
    free(t);
}
