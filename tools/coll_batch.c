/* `coalition KIND --stdin`: one write per line, pipelined through one
 * group client (coll_cli.h).
 *
 * Up to `window` commands are in flight; they carry one session's
 * sequence numbers, so the group applies them in input order, and their
 * results are printed in input order too (a ring of `window` slots holds
 * the answers that came before an earlier line's). Reading stops while
 * the window is full, so a fast producer is held back by the pipe rather
 * than by our memory.
 *
 * stdin comes in three shapes. A pipe or a terminal is read by libuv. A
 * regular file cannot be (uv_pipe_open refuses files, and epoll cannot
 * watch one), nor can /dev/null; they never block for long, so they are
 * read with plain read() whenever the window has room.
 *
 * A malformed line stops the batch where it is: what was submitted
 * before it still finishes and is printed, then the error names the line
 * and the exit status is 2. Checking every line first would mean holding
 * all of stdin before sending anything, which a pipe from a long-running
 * producer cannot wait for.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "coll_cli.h"
#include "mosaik/error.h"

#define READ_CHUNK 65536

typedef struct slot {
    struct batch *b;
    const coll_verb *v;
    uint64_t line;
    bool done;
    json_t *result; /* once done */
} slot;

typedef struct batch {
    coll_run *r;
    const coll_verb *fixed; /* the verb on the command line, or NULL */
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
    } h;
    bool by_libuv, reading, eof;
    char *buf;
    size_t off, len, cap; /* unread bytes are buf[off, len) */
    uint64_t line;
    slot *ring;
    size_t window, head, n;
    int worst;
    bool stop;
    char why[512];
} batch;

static void pump(batch *b);

static void note(batch *b, int exit)
{
    if (exit > b->worst)
        b->worst = exit;
}

/* Prints every finished result at the head of the ring. */
static void flush_ring(batch *b)
{
    while (b->n > 0 && b->ring[b->head].done) {
        slot *s = &b->ring[b->head];
        coll_print_json(s->result);
        s->result = NULL;
        s->done = false;
        b->head = (b->head + 1) % b->window;
        b->n--;
    }
}

static void on_result(int status, uint64_t applied, const uint8_t *res,
                      size_t len, void *data)
{
    slot *s = data;
    batch *b = s->b;
    s->result = coll_outcome_json(&b->r->out, s->v, status, applied, res,
                                  len, s->line);
    s->done = true;
    note(b, coll_exit_of(status));
    if (status == 0) {
        mk_coll_outcome oc;
        if (mk_coll_outcome_decode(res, len, &oc) != 0)
            note(b, CLI_FAIL);
    }
    flush_ring(b);
    pump(b);
}

/* Splits `line` into the verb's words: separated by blanks, the last one
 * the rest of the line. Writes NULs into the line. */
static int split(const coll_verb *v, char *line, char **words, size_t *n,
                 char *why, size_t whylen)
{
    size_t want = coll_args_count(v);
    *n = 0;
    char *p = line;
    while (*n < want) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        words[(*n)++] = p;
        if (*n == want)
            break; /* the last argument keeps its blanks */
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p)
            *p++ = '\0';
    }
    if (want == 0) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p) {
            snprintf(why, whylen, "%s takes no arguments, not '%s'", v->name,
                     p);
            return -1;
        }
    }
    if (*n < want) {
        snprintf(why, whylen, "%s takes %s", v->name, v->usage);
        return -1;
    }
    return 0;
}

static void stop_at(batch *b, const char *fmt, const char *what)
{
    snprintf(b->why, sizeof b->why, "stdin line %llu: %s%s",
             (unsigned long long)b->line, fmt, what ? what : "");
    b->stop = true;
    note(b, CLI_USAGE);
}

/* The writes a batch of this kind takes, for error messages. */
static void writes_of(const coll_kind_def *k, char *out, size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < k->n_verbs && at < len; i++)
        if (k->verbs[i].cls == VERB_WRITE)
            at += (size_t)snprintf(out + at, len - at, "%s%s",
                                   at ? ", " : "", k->verbs[i].name);
}

/* Submits one line (NUL-terminated, without its newline). */
static void run_line(batch *b, char *text)
{
    const coll_kind_def *k = b->r->out.k;
    size_t tl = strlen(text);
    if (tl && text[tl - 1] == '\r')
        text[--tl] = '\0';
    char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return;
    const coll_verb *v = b->fixed;
    char why[300], writes[128];
    if (!v) {
        char *w = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p)
            *p++ = '\0';
        v = coll_verb_find(k, w);
        writes_of(k, writes, sizeof writes);
        if (!v || v->cls != VERB_WRITE) {
            snprintf(why, sizeof why, "'%s' is not a %s write (%s)", w,
                     k->name, writes);
            stop_at(b, why, NULL);
            return;
        }
    }
    char *words[4];
    size_t n;
    coll_args args;
    uint8_t *scratch[3] = {NULL, NULL, NULL};
    if (split(v, p, words, &n, why, sizeof why) != 0 ||
        coll_args_parse(v, b->r->out.hex, words, n, &args, scratch, why,
                        sizeof why) != 0) {
        for (int i = 0; i < 3; i++)
            free(scratch[i]);
        stop_at(b, why, NULL);
        return;
    }
    slot *s = &b->ring[(b->head + b->n) % b->window];
    mk_buf cmd;
    mk_buf_init(&cmd);
    int rc = v->encode(&cmd, &args);
    for (int i = 0; i < 3; i++)
        free(scratch[i]);
    s->b = b;
    s->v = v;
    s->line = b->line;
    s->done = false;
    b->n++;
    if (rc == 0)
        rc = mk_group_client_execute(b->r->client, cmd.data, cmd.len,
                                     b->r->timeout_ms, on_result, s);
    mk_buf_free(&cmd);
    if (rc != 0) {
        /* Refused at once (too large, out of memory): its result now. */
        s->result = coll_outcome_json(&b->r->out, v, rc, 0, NULL, 0, b->line);
        s->done = true;
        note(b, coll_exit_of(rc));
        flush_ring(b);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *in);

/* Room for at least READ_CHUNK more bytes; false when out of memory. */
static bool make_room(batch *b)
{
    if (b->off > 0) {
        memmove(b->buf, b->buf + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= READ_CHUNK)
        return true;
    size_t cap = b->cap ? 2 * b->cap : 2 * READ_CHUNK;
    char *p = realloc(b->buf, cap);
    if (!p)
        return false;
    b->buf = p;
    b->cap = cap;
    return true;
}

/* Reads a regular file or a character device: never blocks for long. */
static void read_plain(batch *b)
{
    if (!make_room(b)) {
        stop_at(b, "out of memory", NULL);
        return;
    }
    ssize_t n;
    do
        n = read(0, b->buf + b->len, b->cap - b->len - 1);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        b->len += (size_t)n;
    } else {
        b->eof = true;
        if (n < 0) {
            snprintf(b->why, sizeof b->why, "stdin: %s", strerror(errno));
            b->stop = true;
            note(b, CLI_FAIL);
        }
    }
}

static void pump(batch *b)
{
    while (!b->stop && b->n < b->window) {
        char *start = b->buf + b->off;
        char *nl = b->len > b->off ? memchr(start, '\n', b->len - b->off)
                                   : NULL;
        if (nl || (b->eof && b->len > b->off)) {
            size_t ll = nl ? (size_t)(nl - start) : b->len - b->off;
            if (memchr(start, '\0', ll)) {
                b->line++;
                stop_at(b, "holds a NUL byte (use --hex)", NULL);
                break;
            }
            /* The buffer always keeps a byte past the data for this. */
            start[ll] = '\0';
            b->off += nl ? ll + 1 : ll;
            b->line++;
            run_line(b, start);
            continue;
        }
        if (b->eof)
            break;
        if (b->by_libuv)
            break; /* on_read brings more */
        read_plain(b);
    }
    bool want = b->by_libuv && !b->eof && !b->stop && b->n < b->window;
    if (want && !b->reading)
        uv_read_start((uv_stream_t *)&b->h, on_alloc, on_read);
    else if (!want && b->reading)
        uv_read_stop((uv_stream_t *)&b->h);
    b->reading = want;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
    batch *b = h->data;
    (void)hint;
    if (!make_room(b)) {
        out->base = NULL;
        out->len = 0;
        return;
    }
    out->base = b->buf + b->len;
    out->len = b->cap - b->len - 1; /* one byte for a terminating NUL */
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *in)
{
    batch *b = st->data;
    (void)in;
    if (n > 0) {
        b->len += (size_t)n;
    } else if (n == UV_ENOBUFS) {
        stop_at(b, "out of memory", NULL);
    } else if (n < 0) {
        b->eof = true;
        if (n != UV_EOF) {
            snprintf(b->why, sizeof b->why, "stdin: %s", uv_strerror((int)n));
            b->stop = true;
            note(b, CLI_FAIL);
        }
    }
    pump(b);
}

int coll_batch(coll_run *r, const coll_verb *fixed, uint64_t window)
{
    batch b = {.r = r, .fixed = fixed, .window = (size_t)window};
    b.ring = calloc(b.window, sizeof *b.ring);
    if (!b.ring)
        return cli_error(CLI_FAIL, "--window %llu: out of memory",
                         (unsigned long long)window);
    if (!make_room(&b)) {
        free(b.ring);
        return cli_error(CLI_FAIL, "out of memory");
    }
    uv_handle_type t = uv_guess_handle(0);
    int rc = 0;
    if (t == UV_NAMED_PIPE) {
        rc = uv_pipe_init(&r->s.loop, &b.h.pipe, 0);
        if (rc == 0 && (rc = uv_pipe_open(&b.h.pipe, 0)) != 0)
            uv_close((uv_handle_t *)&b.h, NULL);
        b.by_libuv = rc == 0;
    } else if (t == UV_TTY) {
        rc = uv_tty_init(&r->s.loop, &b.h.tty, 0, 1);
        b.by_libuv = rc == 0;
    }
    if (rc != 0) {
        free(b.ring);
        return cli_error(CLI_FAIL, "stdin: %s", uv_strerror(rc));
    }
    if (b.by_libuv)
        b.h.pipe.data = &b;
    pump(&b);
    while (b.n > 0 || (!b.stop && !b.eof))
        uv_run(&r->s.loop, UV_RUN_ONCE);
    if (b.by_libuv)
        uv_close((uv_handle_t *)&b.h, NULL);
    uv_run(&r->s.loop, UV_RUN_NOWAIT);
    if (b.why[0])
        cli_error(b.worst, "%s", b.why);
    free(b.ring);
    free(b.buf);
    return b.worst;
}
