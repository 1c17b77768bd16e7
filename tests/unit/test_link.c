/* Links and the transport: real TCP on 127.0.0.1 and real TLS, with every
 * transport of a test on one uv loop in this process. Misbehaving peers
 * (garbage, silence, oversized frames, the wrong key or protocol) are
 * plain libuv sockets or transports configured to break the rules.
 *
 * Nothing here asserts on elapsed time, except that a timeout did not
 * fire before its deadline (timers never fire early). A guard timer fails
 * a test that stops making progress.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "mosaik/codec.h"
#include "mosaik/error.h"
#include "mosaik/frame.h"
#include "mosaik/key.h"
#include "mosaik/link.h"
#include "mosaik/link_int.h"
#include "mosaik/transport.h"
#include "testutil.h"

#define ALPN "/test/link/1"
#define MAX_ENDS 8

/* One end of a link as the tests see it. */
typedef struct fx fx;

typedef struct end {
    fx *f;
    mk_link *link;
    int dials;      /* connect callback calls */
    int dial_status;
    int closes;     /* close callback calls */
    uint32_t code;
    int status;
    int frames;
    uint64_t bytes;
    int bad;        /* frames that did not match the script */
    bool script;    /* check frames against frame_len/frame_byte */
    int drains;
    bool pause;     /* pause as soon as accepted */
} end;

struct fx {
    uv_loop_t loop;
    uv_timer_t guard;
    bool expired;
    mk_keypair ka, kb, kc;
    mk_transport *a, *b;
    int closed; /* transport close callbacks */
    end acc[MAX_ENDS];
    int nacc;
    end dial[MAX_ENDS];
    size_t max_frame; /* the script's largest frame */
};

/* Every callback a condition waits on stops the loop: uv_run(ONCE) runs
 * timers and idle work before it polls, and would otherwise block in the
 * poll after the condition already came true. */
static void wake(fx *f)
{
    uv_stop(&f->loop);
}

static void on_guard(uv_timer_t *h)
{
    fx *f = h->data;
    f->expired = true;
    wake(f);
}

static void dump_t(const char *name, mk_transport *t)
{
    if (!t)
        return;
    for (mk__qnode *n = t->links.next; n != &t->links; n = n->next) {
        mk_link *l = MK__CONTAINER(n, mk_link, node);
        print_error("%s: link state %d dialer %d handed %d reading %d "
                    "writing %d shut %d pend %zu fly %zu stage %zu\n",
                    name, l->state, l->dialer, l->handed, l->reading,
                    l->writing, l->shut, l->pend.len, l->fly.len,
                    l->stage.len);
    }
}

static void dump(fx *f)
{
    dump_t("a", f->a);
    dump_t("b", f->b);
    uv_print_all_handles(&f->loop, stderr);
}

#define RUN_UNTIL(f, cond)                                                    \
    do {                                                                      \
        while (!(cond)) {                                                     \
            if ((f)->expired) {                                               \
                dump(f);                                                      \
                fail_msg("timed out waiting for %s", #cond);                  \
            }                                                                 \
            uv_run(&(f)->loop, UV_RUN_ONCE);                                  \
        }                                                                     \
    } while (0)

/* Runs the loop for `ms` (a quiet period, for "nothing else happens"). */
static void on_nap(uv_timer_t *h)
{
    *(bool *)h->data = true;
    uv_stop(h->loop);
}

static void nap(fx *f, uint64_t ms)
{
    uv_timer_t t;
    bool done = false;
    uv_timer_init(&f->loop, &t);
    t.data = &done;
    assert_int_equal(uv_timer_start(&t, on_nap, ms, 0), 0);
    RUN_UNTIL(f, done);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* ---- the frame script: what each test sends, checkable on arrival ---- */

#define SCRIPT_N 3004

static size_t frame_len(int i, size_t max)
{
    if (i == 0 || i == SCRIPT_N - 1)
        return 0;
    if (i == 1)
        return max;
    if (i == 2)
        return 70000; /* above a record, below max */
    return (size_t)(i % 100);
}

static uint8_t frame_byte(int i, size_t j)
{
    return (uint8_t)(i * 31 + j * 7 + 1);
}

static void fill(uint8_t *buf, int i, size_t len)
{
    for (size_t j = 0; j < len; j++)
        buf[j] = frame_byte(i, j);
}

static int send_script(fx *f, mk_link *l)
{
    uint8_t *buf = malloc(f->max_frame ? f->max_frame : 1);
    assert_non_null(buf);
    for (int i = 0; i < SCRIPT_N; i++) {
        size_t n = frame_len(i, f->max_frame);
        fill(buf, i, n);
        int rc = mk_link_send(l, buf, n);
        if (rc != 0) {
            free(buf);
            return rc;
        }
    }
    free(buf);
    return 0;
}

/* ---- callbacks ---------------------------------------------------------- */

static size_t g_script_max; /* the script's max for on_frame; set per test */

static void on_frame(mk_link *l, const uint8_t *frame, size_t len, void *data)
{
    end *e = data;
    (void)l;
    if (e->script) {
        int i = e->frames;
        bool ok = i < SCRIPT_N && len == frame_len(i, g_script_max);
        for (size_t j = 0; ok && j < len; j++)
            ok = frame[j] == frame_byte(i, j);
        if (!ok)
            e->bad++;
    }
    e->frames++;
    e->bytes += len;
    wake(e->f);
}

static void on_close(mk_link *l, uint32_t code, int status, void *data)
{
    end *e = data;
    (void)l;
    e->closes++;
    e->code = code;
    e->status = status;
    e->link = NULL;
    wake(e->f);
}

static void on_drain(mk_link *l, void *data)
{
    end *e = data;
    (void)l;
    e->drains++;
    wake(e->f);
}

static void on_accept(mk_link *l, void *data)
{
    fx *f = data;
    assert_true(f->nacc < MAX_ENDS);
    end *e = &f->acc[f->nacc++];
    e->link = l;
    e->script = true;
    mk_link_set_callbacks(l, on_frame, on_close, e);
    wake(f);
}

static void on_accept_paused(mk_link *l, void *data)
{
    fx *f = data;
    on_accept(l, data);
    mk_link_pause(l);
    f->acc[f->nacc - 1].pause = true;
}

static void on_dial(mk_link *l, int status, void *data)
{
    end *e = data;
    e->dials++;
    e->dial_status = status;
    e->link = l;
    e->script = true;
    if (l)
        mk_link_set_callbacks(l, on_frame, on_close, e);
    wake(e->f);
}

static void on_transport_closed(void *data)
{
    fx *f = data;
    f->closed++;
    wake(f);
}

/* ---- fixture ------------------------------------------------------------ */

static double time_factor(void)
{
    const char *s = getenv("TIME_FACTOR");
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

static mk_transport *new_transport(fx *f, const mk_keypair *kp,
                                   const char *listen, size_t max_frame,
                                   uint32_t connect_timeout_ms)
{
    mk_transport_config cfg = {
        .loop = &f->loop,
        .key = kp,
        .listen = listen,
        .max_frame = max_frame,
        .handshake_timeout_ms = 2000,
        .connect_timeout_ms = connect_timeout_ms,
    };
    mk_transport *t = NULL;
    char err[MK_ERRMSG_SIZE];
    int rc = mk_transport_new(&cfg, &t, err);
    if (rc != 0)
        fail_msg("mk_transport_new: %s (%s)", err, mk_err_name(rc));
    return t;
}

static void seed_key(mk_keypair *kp, uint8_t b)
{
    uint8_t seed[MK_SEED_LEN];
    memset(seed, b, sizeof seed);
    mk_keypair_from_seed(kp, seed);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->guard);
    f->guard.data = f;
    uv_timer_start(&f->guard, on_guard, (uint64_t)(15000 * time_factor()), 0);
    seed_key(&f->ka, 0xa1);
    seed_key(&f->kb, 0xb2);
    seed_key(&f->kc, 0xc3);
    for (int i = 0; i < MAX_ENDS; i++)
        f->acc[i].f = f->dial[i].f = f;
    f->max_frame = 256 * 1024;
    g_script_max = f->max_frame;
    *state = f;
    return 0;
}

/* The default pair: `a` listens and serves ALPN, `b` only dials. */
static void start_pair(fx *f, size_t max_a, size_t max_b)
{
    f->a = new_transport(f, &f->ka, "127.0.0.1:0", max_a, 0);
    f->b = new_transport(f, &f->kb, NULL, max_b, 0);
    assert_int_equal(mk_transport_serve(f->a, ALPN, on_accept, f), 0);
}

static void close_transports(fx *f)
{
    int want = f->closed;
    if (f->a) {
        mk_transport_close(f->a, on_transport_closed, f);
        want++;
    }
    if (f->b) {
        mk_transport_close(f->b, on_transport_closed, f);
        want++;
    }
    RUN_UNTIL(f, f->closed == want);
    f->a = f->b = NULL;
}

static int teardown(void **state)
{
    fx *f = *state;
    close_transports(f);
    uv_close((uv_handle_t *)&f->guard, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    /* Every handle the transports made is closed: nothing leaks. */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* Dials a from b and waits until both sides have their link. */
static end *dial_ok(fx *f, int i)
{
    int acc = f->nacc;
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub,
                                          mk_transport_listen_addr(f->a),
                                          ALPN, on_dial, &f->dial[i]),
                     0);
    RUN_UNTIL(f, f->dial[i].dials == 1 && f->nacc == acc + 1);
    assert_int_equal(f->dial[i].dial_status, 0);
    assert_non_null(f->dial[i].link);
    return &f->dial[i];
}

/* ---- tests -------------------------------------------------------------- */

static void close_text(void **state)
{
    (void)state;
    assert_string_equal(mk_close_text(MK_CLOSE_INVALID_ALPN),
                        "protocol not served here");
    assert_string_equal(mk_close_text(MK_CLOSE_GROUP_ALREADY_BONDED),
                        "already bonded");
    assert_string_equal(mk_close_text(7), "unknown close code");
}

static void handshake_learns_peers(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    const char *addr = mk_transport_listen_addr(f->a);
    assert_true(strncmp(addr, "127.0.0.1:", 10) == 0);
    assert_string_equal(mk_transport_listen_addr(f->b), "");
    assert_true(mk_id_eq(mk_transport_id(f->a), &f->ka.pub));

    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    assert_true(mk_id_eq(mk_link_peer(d->link), &f->ka.pub));
    assert_true(mk_id_eq(mk_link_peer(a->link), &f->kb.pub));
    assert_string_equal(mk_link_alpn(d->link), ALPN);
    assert_string_equal(mk_link_alpn(a->link), ALPN);
    assert_string_equal(mk_link_remote_addr(d->link), addr);
    assert_true(strncmp(mk_link_remote_addr(a->link), "127.0.0.1:", 10) == 0);
    assert_true(mk_link_rtt_us(d->link) >= 0);
    /* Nagle would hold small frames back (reference/raft-probe.md). */
    mk_link *both[2] = {d->link, a->link};
    for (int i = 0; i < 2; i++) {
        uv_os_fd_t fd;
        int on = 0;
        socklen_t len = sizeof on;
        assert_int_equal(uv_fileno((uv_handle_t *)&both[i]->tcp, &fd), 0);
        assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len),
                         0);
        assert_true(on != 0);
    }
    mk_link_set_data(d->link, f);
    assert_ptr_equal(mk_link_get_data(d->link), f);
    assert_int_equal(mk_link_queued(d->link), 0);
}

static void wrong_peer_is_refused(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    assert_int_equal(mk_transport_connect(f->b, &f->kc.pub,
                                          mk_transport_listen_addr(f->a),
                                          ALPN, on_dial, &f->dial[0]),
                     0);
    RUN_UNTIL(f, f->dial[0].dials == 1);
    assert_int_equal(f->dial[0].dial_status, MK_EWRONG_PEER);
    assert_null(f->dial[0].link);
    /* The acceptor drops its half-done link without a handler call. */
    RUN_UNTIL(f, mk__q_empty(&f->a->links));
    nap(f, 50);
    assert_int_equal(f->nacc, 0);
    assert_int_equal(f->dial[0].dials, 1);
}

/* ---- resumption ---------------------------------------------------------- */

/* Dials a from b once and waits for the session ticket a sends after the
 * handshake (a frame from a behind it says it has been read). */
static end *dial_for_ticket(fx *f, int i)
{
    end *d = dial_ok(f, i);
    end *a = &f->acc[f->nacc - 1];
    d->script = a->script = false;
    assert_int_equal(mk_link_send(a->link, "t", 1), 0);
    RUN_UNTIL(f, d->frames == 1);
    return d;
}

/* The second link to the same key resumes the first one's session, also
 * once the first is gone: no certificates are exchanged, yet each side
 * still knows the other's key, both derive the same secrets, and frames
 * flow. */
static void resumed_session_works(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    end *d0 = dial_for_ticket(f, 0);
    assert_false(SSL_session_reused(d0->link->ssl));
    assert_non_null(mk__tls_cache_get(&f->b->sessions, &f->ka.pub));
    mk_link_close(d0->link, MK_CLOSE_SUCCESS, NULL);
    RUN_UNTIL(f, d0->closes == 1 && f->acc[0].closes == 1);
    RUN_UNTIL(f, mk__q_empty(&f->a->links) && mk__q_empty(&f->b->links));

    end *d1 = dial_ok(f, 1);
    end *a1 = &f->acc[1];
    d1->script = a1->script = false;
    assert_true(SSL_session_reused(d1->link->ssl));
    assert_true(SSL_session_reused(a1->link->ssl));
    assert_true(mk_id_eq(mk_link_peer(d1->link), &f->ka.pub));
    assert_true(mk_id_eq(mk_link_peer(a1->link), &f->kb.pub));
    uint8_t x[32], y[32];
    assert_int_equal(mk_link_export(d1->link, "resumed", x), 0);
    assert_int_equal(mk_link_export(a1->link, "resumed", y), 0);
    assert_memory_equal(x, y, 32);
    assert_int_equal(mk_link_send(d1->link, "up", 2), 0);
    assert_int_equal(mk_link_send(a1->link, "down", 4), 0);
    RUN_UNTIL(f, a1->frames == 1 && d1->frames == 1);

    mk_transport_stats sa, sb;
    mk_transport_stats_get(f->a, &sa);
    mk_transport_stats_get(f->b, &sb);
    assert_int_equal(sa.links_resumed, 1);
    assert_int_equal(sb.links_resumed, 1);
    assert_int_equal(sb.links_dialed, 2);
}

/* A protocol served with MK_SERVE_NO_RESUME sends no ticket: the dialer
 * has nothing to offer next time, and its second link is a full
 * handshake too. The same transport still sends one for a protocol
 * served without the flag. */
static void no_resume_protocol_sends_no_ticket(void **state)
{
    fx *f = *state;
    f->a = new_transport(f, &f->ka, "127.0.0.1:0", 0, 0);
    f->b = new_transport(f, &f->kb, NULL, 0, 0);
    assert_int_equal(mk_transport_serve_ex(f->a, ALPN, MK_SERVE_NO_RESUME,
                                           on_accept, f),
                     0);
    assert_int_equal(mk_transport_serve_ex(f->a, ALPN, 0, on_accept, f),
                     MK_EEXIST);
    assert_int_equal(mk_transport_serve_ex(f->a, "/test/link/x", 0x80,
                                           on_accept, f),
                     MK_EINVAL);
    assert_int_equal(mk_transport_serve(f->a, "/test/link/other", on_accept,
                                        f),
                     0);
    end *d0 = dial_for_ticket(f, 0);
    assert_false(SSL_session_reused(d0->link->ssl));
    assert_null(mk__tls_cache_get(&f->b->sessions, &f->ka.pub));

    end *d1 = dial_for_ticket(f, 1);
    assert_false(SSL_session_reused(d1->link->ssl));
    assert_null(mk__tls_cache_get(&f->b->sessions, &f->ka.pub));
    mk_transport_stats sb;
    mk_transport_stats_get(f->b, &sb);
    assert_int_equal(sb.links_resumed, 0);
    assert_int_equal(sb.links_dialed, 2);

    /* The other protocol gets its ticket, and the next dial of the first
     * protocol resumes with it: a ticket is for the peer, not the
     * protocol. */
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub,
                                          mk_transport_listen_addr(f->a),
                                          "/test/link/other", on_dial,
                                          &f->dial[2]),
                     0);
    RUN_UNTIL(f, f->dial[2].dials == 1 && f->nacc == 3);
    end *a2 = &f->acc[2];
    f->dial[2].script = a2->script = false;
    assert_int_equal(mk_link_send(a2->link, "t", 1), 0);
    RUN_UNTIL(f, f->dial[2].frames == 1);
    assert_non_null(mk__tls_cache_get(&f->b->sessions, &f->ka.pub));
    end *d3 = dial_ok(f, 3);
    assert_true(SSL_session_reused(d3->link->ssl));
}

/* A session vouches only for the key it was made with. Filed under
 * another key (as a confused cache would do), it is not offered to a dial
 * expecting that key, which then meets a's certificate and refuses it as
 * after any full handshake, before the acceptor completes its side. */
static void resumed_session_is_bound_to_its_key(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    dial_for_ticket(f, 0);
    SSL_SESSION *s = mk__tls_cache_get(&f->b->sessions, &f->ka.pub);
    assert_non_null(s);
    assert_int_equal(SSL_SESSION_up_ref(s), 1);
    mk__tls_cache_put(&f->b->sessions, &f->kc.pub, s);

    assert_int_equal(mk_transport_connect(f->b, &f->kc.pub,
                                          mk_transport_listen_addr(f->a),
                                          ALPN, on_dial, &f->dial[1]),
                     0);
    RUN_UNTIL(f, f->dial[1].dials == 1);
    assert_int_equal(f->dial[1].dial_status, MK_EWRONG_PEER);
    assert_null(f->dial[1].link);
    /* Only the first link ever reached a's handler. */
    nap(f, 50);
    assert_int_equal(f->nacc, 1);
    mk_transport_stats sa, sb;
    mk_transport_stats_get(f->a, &sa);
    mk_transport_stats_get(f->b, &sb);
    assert_int_equal(sa.links_resumed, 0);
    assert_int_equal(sb.links_resumed, 0);
    /* The misfiled session is gone; a's own is still there. */
    assert_null(mk__tls_cache_get(&f->b->sessions, &f->kc.pub));
    assert_non_null(mk__tls_cache_get(&f->b->sessions, &f->ka.pub));
}

static void frames_both_ways(void **state)
{
    fx *f = *state;
    start_pair(f, f->max_frame, f->max_frame);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];

    uint8_t big[16];
    assert_int_equal(mk_link_send(d->link, big, f->max_frame + 1),
                     MK_EMSGSIZE);
    assert_int_equal(send_script(f, d->link), 0);
    assert_int_equal(send_script(f, a->link), 0);
    RUN_UNTIL(f, a->frames == SCRIPT_N && d->frames == SCRIPT_N);
    assert_int_equal(a->bad, 0);
    assert_int_equal(d->bad, 0);

    mk_link_stats sd, sa;
    mk_link_stats_get(d->link, &sd);
    mk_link_stats_get(a->link, &sa);
    assert_int_equal(sd.frames_out, SCRIPT_N);
    assert_int_equal(sa.frames_in, SCRIPT_N);
    assert_int_equal(sd.bytes_out, sa.bytes_in);
    assert_int_equal(sa.bytes_in, a->bytes);
    assert_int_equal(sa.frames_out, sd.frames_in);
    RUN_UNTIL(f, mk_link_queued(d->link) == 0 && mk_link_queued(a->link) == 0);
}

/* What an open link holds while quiet (link.c, shed): nothing. */
static bool holds_nothing(const mk_link *l)
{
    return l->in.cap == 0 && l->stage.cap == 0 && l->pend.cap == 0 &&
           l->fly.cap == 0 && l->held.cap == 0;
}

/* A link that went quiet gives its buffers back, and the next frames in
 * either direction (a big one included) arrive whole all the same. */
static void quiet_link_sheds_buffers(void **state)
{
    fx *f = *state;
    start_pair(f, f->max_frame, f->max_frame);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    a->script = d->script = true;
    g_script_max = f->max_frame;
    assert_int_equal(send_script(f, d->link), 0);
    RUN_UNTIL(f, a->frames == SCRIPT_N);
    /* The sender's send buffers grew past SMALL_BUF: kept until TRIM_MS.
     * (The receiver gave its big frame buffer back after the big frame,
     * and what it has left is small, so it may have shed already.) */
    assert_false(holds_nothing(d->link));
    /* TRIM_MS is 1 s; the watchdog runs at or after it. */
    nap(f, 1300);
    assert_true(holds_nothing(a->link));
    assert_true(holds_nothing(d->link));

    a->frames = 0; /* the script starts over */
    assert_int_equal(send_script(f, a->link), 0);
    assert_int_equal(send_script(f, d->link), 0);
    RUN_UNTIL(f, a->frames == SCRIPT_N && d->frames == SCRIPT_N);
    assert_int_equal(a->bad, 0);
    assert_int_equal(d->bad, 0);
    nap(f, 1300);
    assert_true(holds_nothing(a->link));
    assert_true(holds_nothing(d->link));
}

/* A link that carried only small frames (discovery's gossip) gives its
 * buffers back as soon as it goes quiet, not a TRIM_MS later: a flood
 * reaching every link of a node at once had each hold ~66 KiB for the
 * next second (link.c, SMALL_BUF). Sending and receiving alike. */
static void small_frames_shed_at_once(void **state)
{
    fx *f = *state;
    start_pair(f, f->max_frame, f->max_frame);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    a->script = d->script = false;
    for (int round = 1; round <= 2; round++) {
        assert_int_equal(mk_link_send(d->link, "announce", 8), 0);
        assert_int_equal(mk_link_send(a->link, "welcome!", 8), 0);
        RUN_UNTIL(f, a->frames == round && d->frames == round);
        assert_true(holds_nothing(a->link));
        assert_true(holds_nothing(d->link));
    }
}

static void on_accept_later(mk_link *l, void *data)
{
    *(mk_link **)data = l;
}

static void held_until_callbacks_set(void **state)
{
    fx *f = *state;
    f->a = new_transport(f, &f->ka, "127.0.0.1:0", 0, 0);
    f->b = new_transport(f, &f->kb, NULL, 0, 0);
    mk_link *held = NULL;
    /* A handler that installs nothing yet. */
    assert_int_equal(mk_transport_serve(f->a, ALPN, on_accept_later, &held),
                     0);
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub,
                                          mk_transport_listen_addr(f->a),
                                          ALPN, on_dial, &f->dial[0]),
                     0);
    RUN_UNTIL(f, held != NULL && f->dial[0].link != NULL);
    const char *msgs[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(mk_link_send(f->dial[0].link, msgs[i],
                                      strlen(msgs[i])),
                         0);
    nap(f, 50);
    end *e = &f->acc[0];
    f->nacc = 1;
    mk_link_set_callbacks(held, on_frame, on_close, e);
    RUN_UNTIL(f, e->frames == 3);
    assert_int_equal(e->bytes, 3 + 3 + 5);
}

/* A limit below a TLS record still holds for the small frames that are
 * copied straight into the record being filled (link.c, mk_link_send). */
static void send_keeps_a_small_limit(void **state)
{
    fx *f = *state;
    start_pair(f, 1000, 1000);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    a->script = d->script = false;
    uint8_t buf[1001] = {0};
    /* The first frame sets up the record being filled; the refused ones
     * come after it. */
    assert_int_equal(mk_link_send(d->link, buf, 1000), 0);
    assert_int_equal(mk_link_send(d->link, buf, 1001), MK_EMSGSIZE);
    mk_iov two[2] = {{buf, 500}, {buf, 501}};
    assert_int_equal(mk_link_sendv(d->link, two, 2), MK_EMSGSIZE);
    assert_int_equal(mk_link_queued(d->link), 1000);
    assert_int_equal(mk_link_send(d->link, buf, 1), 0);
    RUN_UNTIL(f, a->frames == 2 || a->closes);
    assert_int_equal(a->closes, 0);
    assert_int_equal(a->bytes, 1001);
}

static void oversized_frame_is_refused(void **state)
{
    fx *f = *state;
    /* The sender's limit is larger than the receiver's: to the receiver
     * it is a peer breaking the rules. */
    start_pair(f, 64 * 1024, 1024 * 1024);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    a->script = d->script = false;
    uint8_t *buf = calloc(1, 64 * 1024 + 1);
    assert_int_equal(mk_link_send(d->link, buf, 10), 0);
    assert_int_equal(mk_link_send(d->link, buf, 64 * 1024), 0);
    assert_int_equal(mk_link_send(d->link, buf, 64 * 1024 + 1), 0);
    free(buf);
    RUN_UNTIL(f, d->closes == 1 && a->closes == 1);
    assert_int_equal(a->frames, 2); /* what came before is delivered */
    assert_int_equal(d->code, MK_CLOSE_FRAME_TOO_LARGE);
    assert_int_equal(d->status, 0);
    assert_int_equal(a->code, MK_CLOSE_FRAME_TOO_LARGE);
    assert_int_equal(a->status, MK_EMSGSIZE);
}

/* Bytes slipped into a link's plaintext stream as they are, behind its
 * frames: a peer that speaks TLS correctly and framing wrongly. */
static void inject(mk_link *l, const void *bytes, size_t n)
{
    mk_put_raw(&l->stage, bytes, n);
    mk__transport_defer(l);
}

static void malformed_close_frames(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    end *d0 = dial_ok(f, 0);
    end *d1 = dial_ok(f, 1);
    d0->script = d1->script = f->acc[0].script = f->acc[1].script = false;
    /* A close frame whose code is an overlong varint. */
    const uint8_t bad[] = {0x80, 0, 0, 3, 0x80, 0x80, 0x00};
    assert_int_equal(mk_link_send(d0->link, "before", 6), 0);
    inject(d0->link, bad, sizeof bad);
    /* A close frame announcing more than any reason needs. */
    const uint8_t huge[] = {0x80, 0, 0x40, 0, 0xc8, 0x01};
    inject(d1->link, huge, sizeof huge);
    RUN_UNTIL(f, d0->closes && d1->closes && f->acc[0].closes &&
                     f->acc[1].closes);
    assert_int_equal(f->acc[0].frames, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->acc[i].code, MK_CLOSE_PROTOCOL_VIOLATION);
        assert_int_equal(f->acc[i].status, MK_EPROTO);
        assert_int_equal(f->dial[i].code, MK_CLOSE_PROTOCOL_VIOLATION);
        assert_int_equal(f->dial[i].status, 0);
    }
}

/* A raw TCP client that writes bytes and waits to be hung up on. */
typedef struct raw {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    size_t nout; /* bytes of `out` to send: 0 says nothing at all */
    uint8_t out[4096];
    char in[4096];
    bool ended;
    bool closed;
} raw;

static void raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    raw *r = h->data;
    (void)hint;
    buf->base = r->in;
    buf->len = sizeof r->in;
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    raw *r = s->data;
    (void)buf;
    if (n < 0) {
        r->ended = true;
        uv_read_stop(s);
    }
}

static void raw_written(uv_write_t *req, int status)
{
    (void)req;
    (void)status;
}

static void raw_connected(uv_connect_t *req, int status)
{
    raw *r = req->handle->data;
    assert_int_equal(status, 0);
    uv_buf_t b = uv_buf_init((char *)r->out, (unsigned)r->nout);
    if (r->nout > 0)
        assert_int_equal(uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1,
                                  raw_written),
                         0);
    assert_int_equal(uv_read_start((uv_stream_t *)&r->tcp, raw_alloc,
                                   raw_read),
                     0);
}

static void raw_closed(uv_handle_t *h)
{
    raw *r = h->data;
    r->closed = true;
}

static void addr_of(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    assert_int_equal(uv_ip4_addr(host, atoi(colon + 1), sa), 0);
}

static void garbage_is_dropped(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    raw *r = calloc(1, sizeof *r);
    /* Deterministic noise that cannot start a TLS record (0x16). */
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof r->out; i++) {
        x = x * 1103515245u + 12345u;
        r->out[i] = (uint8_t)(x >> 16);
    }
    r->out[0] = 0xff;
    r->nout = sizeof r->out;
    struct sockaddr_in sa;
    addr_of(mk_transport_listen_addr(f->a), &sa);
    uv_tcp_init(&f->loop, &r->tcp);
    r->tcp.data = r;
    assert_int_equal(uv_tcp_connect(&r->creq, &r->tcp,
                                     (struct sockaddr *)&sa, raw_connected),
                     0);
    RUN_UNTIL(f, r->ended);
    RUN_UNTIL(f, mk__q_empty(&f->a->links));
    uv_close((uv_handle_t *)&r->tcp, raw_closed);
    RUN_UNTIL(f, r->closed);
    free(r);
    assert_int_equal(f->nacc, 0);

    /* The transport still serves a well-behaved peer. */
    end *d = dial_ok(f, 0);
    assert_int_equal(mk_link_send(d->link, "hi", 2), 0);
    RUN_UNTIL(f, f->acc[0].frames == 1);
    assert_int_equal(f->nacc, 1);
}

static void wrong_alpn_is_closed(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub,
                                          mk_transport_listen_addr(f->a),
                                          "/not/served/1", on_dial,
                                          &f->dial[0]),
                     0);
    RUN_UNTIL(f, f->dial[0].closes == 1);
    assert_int_equal(f->dial[0].dials, 1);
    assert_int_equal(f->dial[0].dial_status, 0);
    assert_int_equal(f->dial[0].code, MK_CLOSE_INVALID_ALPN);
    assert_int_equal(f->dial[0].status, 0);
    assert_int_equal(f->nacc, 0);
}

/* A protocol no longer served is refused like one never served, while
 * the links it already has keep working; it may be served again. */
static void unserve_refuses_new_links_only(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    end *d0 = dial_ok(f, 0);
    assert_int_equal(mk_transport_unserve(f->a, ALPN), 0);
    assert_int_equal(mk_transport_unserve(f->a, ALPN), MK_ENOENT);
    assert_int_equal(mk_transport_unserve(f->a, "/never/served/1"),
                     MK_ENOENT);

    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub,
                                          mk_transport_listen_addr(f->a),
                                          ALPN, on_dial, &f->dial[1]),
                     0);
    RUN_UNTIL(f, f->dial[1].closes == 1);
    assert_int_equal(f->dial[1].code, MK_CLOSE_INVALID_ALPN);
    assert_int_equal(f->nacc, 1);

    /* The link accepted before still carries frames both ways. */
    assert_int_equal(mk_link_send(d0->link, "ping", 4), 0);
    assert_int_equal(mk_link_send(f->acc[0].link, "pong", 4), 0);
    f->acc[0].script = d0->script = false;
    RUN_UNTIL(f, f->acc[0].frames == 1 && d0->frames == 1);
    assert_int_equal(d0->closes + f->acc[0].closes, 0);

    assert_int_equal(mk_transport_serve(f->a, ALPN, on_accept, f), 0);
    dial_ok(f, 2);
    assert_int_equal(f->nacc, 2);
}

static void exporter_matches(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    end *d0 = dial_ok(f, 0);
    end *d1 = dial_ok(f, 1);
    uint8_t x0[32], y0[32], x1[32], y1[32], z0[32];
    assert_int_equal(mk_link_export(d0->link, "mosaik test", x0), 0);
    assert_int_equal(mk_link_export(f->acc[0].link, "mosaik test", y0), 0);
    assert_int_equal(mk_link_export(d1->link, "mosaik test", x1), 0);
    assert_int_equal(mk_link_export(f->acc[1].link, "mosaik test", y1), 0);
    assert_int_equal(mk_link_export(d0->link, "another label", z0), 0);
    assert_memory_equal(x0, y0, 32);
    assert_memory_equal(x1, y1, 32);
    assert_memory_not_equal(x0, x1, 32);
    assert_memory_not_equal(x0, z0, 32);
}

/* OpenSSL judges a failed SSL_read or SSL_write by the thread's error
 * queue, and links leave it alone when it is already empty (link.c,
 * err_reset). An error some other code left there must not make a link
 * take its next "no more bytes yet" for a broken session. */
static void stale_openssl_error_is_ignored(void **state)
{
    fx *f = *state;
    start_pair(f, f->max_frame, f->max_frame);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    ERR_raise(ERR_LIB_USER, ERR_R_PASSED_NULL_PARAMETER);
    assert_int_not_equal(ERR_peek_error(), 0);
    assert_int_equal(send_script(f, d->link), 0);
    assert_int_equal(send_script(f, a->link), 0);
    RUN_UNTIL(f, (a->frames == SCRIPT_N && d->frames == SCRIPT_N) ||
                     a->closes || d->closes);
    assert_int_equal(a->closes + d->closes, 0);
    assert_int_equal(a->bad + d->bad, 0);
    ERR_clear_error();
}

static void close_codes_cross(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    end *d0 = dial_ok(f, 0);
    end *d1 = dial_ok(f, 1);
    mk_link *l0 = d0->link;
    mk_link_close(l0, MK_CLOSE_STREAM_TOO_SLOW, "you are slow");
    mk_link_close(l0, MK_CLOSE_SUCCESS, NULL); /* idempotent */
    assert_int_equal(mk_link_send(l0, "x", 1), MK_ECLOSED);
    mk_link_close(f->acc[1].link, MK_CLOSE_SUCCESS, NULL);
    RUN_UNTIL(f, d0->closes && f->acc[0].closes && d1->closes &&
                     f->acc[1].closes);
    assert_int_equal(d0->code, MK_CLOSE_STREAM_TOO_SLOW);
    assert_int_equal(d0->status, 0);
    assert_int_equal(f->acc[0].code, MK_CLOSE_STREAM_TOO_SLOW);
    assert_int_equal(f->acc[0].status, 0);
    assert_int_equal(d1->code, MK_CLOSE_SUCCESS);
    assert_int_equal(d1->status, 0);
    assert_int_equal(f->acc[1].code, MK_CLOSE_SUCCESS);
    nap(f, 20);
    assert_int_equal(d0->closes + d1->closes + f->acc[0].closes +
                         f->acc[1].closes,
                     4);
}

static void close_flushes_queue(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    d->script = a->script = false;
    static uint8_t buf[100 * 1024];
    for (int i = 0; i < 3000; i++)
        assert_int_equal(mk_link_send(d->link, buf, 1000), 0);
    assert_int_equal(mk_link_send(d->link, buf, sizeof buf), 0);
    assert_true(mk_link_queued(d->link) > 0);
    mk_link_close(d->link, MK_CLOSE_SUCCESS, "done");
    RUN_UNTIL(f, a->closes == 1 && d->closes == 1);
    assert_int_equal(a->frames, 3001);
    assert_int_equal(a->bytes, 3000 * 1000 + sizeof buf);
    assert_int_equal(a->code, MK_CLOSE_SUCCESS);
    assert_int_equal(a->status, 0);
    assert_int_equal(d->status, 0);
}

static void on_tmp_closed(uv_handle_t *h)
{
    *(bool *)h->data = true;
}

static void refused(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    /* A port that was just free: bound, never listened on, closed. */
    uv_tcp_t tmp;
    bool closed = false;
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char addr[64];
    uv_tcp_init(&f->loop, &tmp);
    tmp.data = &closed;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&tmp, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&tmp, (struct sockaddr *)&ss, &len),
                     0);
    mk__addr_format((struct sockaddr *)&ss, addr);
    uv_close((uv_handle_t *)&tmp, on_tmp_closed);
    RUN_UNTIL(f, closed);

    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub, addr, ALPN,
                                          on_dial, &f->dial[0]),
                     0);
    RUN_UNTIL(f, f->dial[0].dials == 1);
    assert_int_equal(f->dial[0].dial_status, MK_ECONNREFUSED);
    assert_null(f->dial[0].link);
}

/* A listener that accepts and then never says a word. */
typedef struct hole {
    uv_tcp_t srv;
    uv_tcp_t conn[4];
    int n;
    int closed;
    char buf[4096];
    char addr[64];
} hole;

static void hole_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    hole *o = h->data;
    (void)hint;
    buf->base = o->buf;
    buf->len = sizeof o->buf;
}

static void hole_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0)
        uv_read_stop(s);
}

static void hole_conn(uv_stream_t *srv, int status)
{
    hole *o = srv->data;
    assert_int_equal(status, 0);
    assert_true(o->n < 4);
    uv_tcp_t *c = &o->conn[o->n++];
    uv_tcp_init(srv->loop, c);
    c->data = o;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)c), 0);
    uv_read_start((uv_stream_t *)c, hole_alloc, hole_read);
}

static void hole_closed(uv_handle_t *h)
{
    hole *o = h->data;
    o->closed++;
}

static hole *hole_open(fx *f)
{
    hole *o = calloc(1, sizeof *o);
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_init(&f->loop, &o->srv);
    o->srv.data = o;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&o->srv, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&o->srv, 8, hole_conn), 0);
    uv_tcp_getsockname(&o->srv, (struct sockaddr *)&ss, &len);
    mk__addr_format((struct sockaddr *)&ss, o->addr);
    return o;
}

static void hole_close(fx *f, hole *o)
{
    int want = 1 + o->n;
    for (int i = 0; i < o->n; i++)
        uv_close((uv_handle_t *)&o->conn[i], hole_closed);
    uv_close((uv_handle_t *)&o->srv, hole_closed);
    RUN_UNTIL(f, o->closed == want);
    free(o);
}

static void connect_timeout(void **state)
{
    fx *f = *state;
    const uint32_t timeout = 300;
    f->b = new_transport(f, &f->kb, NULL, 0, timeout);
    hole *o = hole_open(f);
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub, o->addr, ALPN,
                                          on_dial, &f->dial[0]),
                     0);
    RUN_UNTIL(f, f->dial[0].dials == 1);
    uv_update_time(&f->loop);
    assert_int_equal(f->dial[0].dial_status, MK_ECONNECT_TIMEOUT);
    assert_null(f->dial[0].link);
    assert_true(uv_now(&f->loop) - t0 >= timeout);
    assert_int_equal(o->n, 1); /* TCP got through; TLS never answered */
    hole_close(f, o);
}

static void close_cancels_dials(void **state)
{
    fx *f = *state;
    f->b = new_transport(f, &f->kb, NULL, 0, 60000);
    hole *o = hole_open(f);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mk_transport_connect(f->b, &f->ka.pub, o->addr,
                                              ALPN, on_dial, &f->dial[i]),
                         0);
    RUN_UNTIL(f, o->n == 3);
    mk_transport_close(f->b, on_transport_closed, f);
    f->b = NULL;
    RUN_UNTIL(f, f->closed == 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->dial[i].dials, 1);
        assert_int_equal(f->dial[i].dial_status, MK_ECANCELED);
    }
    /* Closed before TCP connected, too. */
    f->b = new_transport(f, &f->kb, NULL, 0, 60000);
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub, o->addr, ALPN,
                                          on_dial, &f->dial[3]),
                     0);
    mk_transport_close(f->b, on_transport_closed, f);
    f->b = NULL;
    RUN_UNTIL(f, f->closed == 2);
    assert_int_equal(f->dial[3].dials, 1);
    assert_int_equal(f->dial[3].dial_status, MK_ECANCELED);
    nap(f, 20);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f->dial[i].dials, 1);
    hole_close(f, o);
}

static void transport_close_closes_links(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    mk_transport_close(f->a, on_transport_closed, f);
    f->a = NULL;
    RUN_UNTIL(f, f->closed == 1);
    /* The transport's close callback comes after its links'. */
    assert_int_equal(a->closes, 1);
    assert_int_equal(a->code, MK_CLOSE_GRACEFUL_SHUTDOWN);
    assert_int_equal(a->status, 0);
    RUN_UNTIL(f, d->closes == 1);
    assert_int_equal(d->code, MK_CLOSE_GRACEFUL_SHUTDOWN);
    assert_int_equal(d->status, 0);
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub, "127.0.0.1:1",
                                          ALPN, on_dial, &f->dial[1]),
                     0);
    RUN_UNTIL(f, f->dial[1].dials == 1);
    assert_int_equal(f->dial[1].dial_status, MK_ECONNREFUSED);
}

static void stalled_reader(void **state)
{
    fx *f = *state;
    f->a = new_transport(f, &f->ka, "127.0.0.1:0", 0, 0);
    f->b = new_transport(f, &f->kb, NULL, 0, 0);
    assert_int_equal(mk_transport_serve(f->a, ALPN, on_accept_paused, f), 0);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    d->script = a->script = false;
    mk_link_on_drain(d->link, on_drain);

    /* Far more than the kernel buffers of both sockets hold. */
    enum { N = 512, SZ = 64 * 1024 };
    static uint8_t buf[SZ];
    for (int i = 0; i < N; i++)
        assert_int_equal(mk_link_send(d->link, buf, SZ), 0);
    /* The kernel may take some at once; it cannot take it all. */
    assert_true(mk_link_queued(d->link) <= (size_t)N * SZ);
    assert_true(mk_link_queued(d->link) >= (size_t)N * SZ - 16u * 1024 * 1024);

    /* Let the sockets fill until nothing moves. */
    size_t last = SIZE_MAX;
    for (int still = 0; still < 3;) {
        nap(f, 50);
        size_t q = mk_link_queued(d->link);
        still = q == last ? still + 1 : 0;
        last = q;
    }
    assert_true(last >= (size_t)N * SZ - 16u * 1024 * 1024);
    assert_int_equal(a->frames, 0);
    assert_int_equal(d->drains, 0);
    /* More sends still return at once and simply queue. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(mk_link_send(d->link, buf, SZ), 0);
    assert_int_equal(mk_link_queued(d->link), last + 10u * SZ);

    mk_link_resume(a->link);
    RUN_UNTIL(f, a->frames == N + 10 && d->drains == 1);
    assert_int_equal(a->bytes, (uint64_t)(N + 10) * SZ);
    assert_int_equal(mk_link_queued(d->link), 0);
    /* Idle for a while, the link gives its big send buffers back. */
    assert_true(d->link->pend.cap + d->link->fly.cap > 1024 * 1024);
    nap(f, 1200);
    assert_true(d->link->pend.cap <= 1024 * 1024);
    assert_true(d->link->fly.cap <= 1024 * 1024);

    /* Pause and resume again mid-stream: nothing is lost or reordered. */
    mk_link_pause(a->link);
    for (int i = 0; i < 20; i++)
        assert_int_equal(mk_link_send(d->link, buf, 1000), 0);
    nap(f, 50);
    assert_int_equal(a->frames, N + 10);
    mk_link_resume(a->link);
    RUN_UNTIL(f, a->frames == N + 30 && d->drains == 2);
}

static void silent_client_is_dropped(void **state)
{
    fx *f = *state;
    mk_transport_config cfg = {.loop = &f->loop,
                               .key = &f->ka,
                               .listen = "127.0.0.1:0",
                               .handshake_timeout_ms = 200};
    assert_int_equal(mk_transport_new(&cfg, &f->a, NULL), 0);
    assert_int_equal(mk_transport_serve(f->a, ALPN, on_accept, f), 0);
    raw *r = calloc(1, sizeof *r); /* connects, then never says a word */
    struct sockaddr_in sa;
    addr_of(mk_transport_listen_addr(f->a), &sa);
    uv_tcp_init(&f->loop, &r->tcp);
    r->tcp.data = r;
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(uv_tcp_connect(&r->creq, &r->tcp,
                                     (struct sockaddr *)&sa, raw_connected),
                     0);
    RUN_UNTIL(f, r->ended);
    uv_update_time(&f->loop);
    assert_true(uv_now(&f->loop) - t0 >= 200);
    RUN_UNTIL(f, mk__q_empty(&f->a->links));
    uv_close((uv_handle_t *)&r->tcp, raw_closed);
    RUN_UNTIL(f, r->closed);
    free(r);
    assert_int_equal(f->nacc, 0);
}

static void garbage_record_after_handshake(void **state)
{
    fx *f = *state;
    start_pair(f, 0, 0);
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    d->script = a->script = false;
    assert_int_equal(mk_link_send(d->link, "fine", 4), 0);
    RUN_UNTIL(f, a->frames == 1);
    /* An application-data record whose tag cannot verify, written under
     * the TLS session, straight onto the dialer's socket. */
    uint8_t rec[5 + 64];
    memset(rec, 0x42, sizeof rec);
    rec[0] = 0x17;
    rec[1] = rec[2] = 0x03;
    rec[3] = 0;
    rec[4] = 64;
    uv_buf_t b = uv_buf_init((char *)rec, sizeof rec);
    assert_int_equal(uv_try_write((uv_stream_t *)&d->link->tcp, &b, 1),
                     (int)sizeof rec);
    RUN_UNTIL(f, a->closes == 1 && d->closes == 1);
    assert_int_equal(a->code, MK_CLOSE_PROTOCOL_VIOLATION);
    assert_int_equal(a->status, MK_ETLS);
    assert_int_equal(a->frames, 1);
    /* The dialer learns from the alert or the hang-up; either way it is
     * not an orderly close. */
    assert_true(d->status < 0);
}


/* ---- limits: idle links, slow frames, link counts ----------------------- */

/* `a` listens with the limits in `lim` (loop, key and listen filled in),
 * `b` only dials. */
static void start_limited(fx *f, mk_transport_config lim)
{
    lim.loop = &f->loop;
    lim.key = &f->ka;
    lim.listen = "127.0.0.1:0";
    if (!lim.handshake_timeout_ms)
        lim.handshake_timeout_ms = 2000;
    char err[MK_ERRMSG_SIZE];
    int rc = mk_transport_new(&lim, &f->a, err);
    if (rc != 0)
        fail_msg("mk_transport_new: %s", err);
    f->b = new_transport(f, &f->kb, NULL, 0, 0);
    assert_int_equal(mk_transport_serve(f->a, ALPN, on_accept, f), 0);
}

static uint64_t now_ms(fx *f)
{
    uv_update_time(&f->loop);
    return uv_now(&f->loop);
}

static void idle_link_is_closed(void **state)
{
    fx *f = *state;
    start_limited(f, (mk_transport_config){.idle_timeout_ms = 300});
    uint64_t t0 = now_ms(f);
    end *quiet = dial_ok(f, 0);
    end *busy = dial_ok(f, 1);
    end *exempt = dial_ok(f, 2);
    end *reader = dial_ok(f, 3); /* only reads what `a` sends it */
    quiet->script = busy->script = exempt->script = reader->script = false;
    for (int i = 0; i < 4; i++)
        f->acc[i].script = false;
    /* A protocol that is quiet on purpose lifts the limit. */
    mk_link_set_idle_timeout(f->acc[2].link, 0);

    /* Traffic keeps a link open past several idle periods. */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(mk_link_send(busy->link, "x", 1), 0);
        assert_int_equal(mk_link_send(f->acc[3].link, "y", 1), 0);
        nap(f, 100);
    }
    RUN_UNTIL(f, quiet->closes == 1 && f->acc[0].closes == 1);
    assert_true(now_ms(f) - t0 >= 300);
    assert_int_equal(f->acc[0].code, MK_CLOSE_IDLE_TIMEOUT);
    assert_int_equal(f->acc[0].status, MK_ETIMEDOUT);
    assert_int_equal(quiet->code, MK_CLOSE_IDLE_TIMEOUT);
    assert_int_equal(quiet->status, 0); /* the remote's orderly close */
    assert_int_equal(busy->closes, 0);
    assert_int_equal(f->acc[1].frames, 8);
    assert_int_equal(reader->frames, 8);
    assert_int_equal(reader->closes, 0);
    assert_int_equal(exempt->closes, 0);
    assert_int_equal(f->acc[2].closes, 0);

    /* Once the traffic stops, the busy one goes too; the exempt one
     * stays. */
    RUN_UNTIL(f, busy->closes == 1);
    assert_int_equal(busy->code, MK_CLOSE_IDLE_TIMEOUT);
    nap(f, 400);
    assert_int_equal(exempt->closes, 0);
    /* Dialed links have no idle limit of their own. */
    assert_int_equal(f->acc[2].closes, 0);
}

static void paused_link_is_not_idle(void **state)
{
    fx *f = *state;
    start_limited(f, (mk_transport_config){.idle_timeout_ms = 200});
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    d->script = a->script = false;
    /* While we do not read, the quiet is ours. */
    mk_link_pause(a->link);
    nap(f, 600);
    assert_int_equal(a->closes, 0);
    mk_link_resume(a->link);
    RUN_UNTIL(f, a->closes == 1);
    assert_int_equal(a->code, MK_CLOSE_IDLE_TIMEOUT);
}

static void on_flag_closed(uv_handle_t *h)
{
    *(bool *)h->data = true;
}

static void on_dribble(uv_timer_t *h)
{
    end *d = h->data;
    if (d->link && d->link->state == MK__LINK_OPEN)
        inject(d->link, "z", 1);
}

/* A peer that starts a frame and sends its bytes slower than the frame
 * deadline allows is closed, however steadily it sends. */
static void dribbled_frame_is_closed(void **state)
{
    fx *f = *state;
    start_limited(f, (mk_transport_config){.idle_timeout_ms = 300,
                                           .frame_timeout_ms = 500});
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    d->script = a->script = false;
    const uint8_t hdr[] = {0, 1, 0, 0, 'a', 'b'}; /* 65536 bytes announced */
    inject(d->link, hdr, sizeof hdr);
    uint64_t t0 = now_ms(f);
    uv_timer_t drip;
    uv_timer_init(&f->loop, &drip);
    drip.data = d;
    uv_timer_start(&drip, on_dribble, 50, 50); /* well inside idle */
    RUN_UNTIL(f, a->closes == 1);
    assert_true(now_ms(f) - t0 >= 500);
    bool drip_closed = false;
    drip.data = &drip_closed;
    uv_close((uv_handle_t *)&drip, on_flag_closed);
    RUN_UNTIL(f, drip_closed);
    assert_int_equal(a->code, MK_CLOSE_IDLE_TIMEOUT);
    assert_int_equal(a->status, MK_ETIMEDOUT);
    assert_int_equal(a->frames, 0);
    RUN_UNTIL(f, d->closes == 1);
}

/* The same for a TLS record begun and never finished: no frame byte is
 * decrypted yet, but the peer holds the link all the same. */
static void partial_record_is_closed(void **state)
{
    fx *f = *state;
    start_limited(f, (mk_transport_config){
                         .idle_timeout_ms = MK_TRANSPORT_NO_TIMEOUT,
                         .frame_timeout_ms = 300});
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    d->script = a->script = false;
    uint8_t rec[5 + 10];
    memset(rec, 0x42, sizeof rec);
    rec[0] = 0x17;
    rec[1] = rec[2] = 0x03;
    rec[3] = 0x10; /* 4096 bytes announced, 10 sent */
    rec[4] = 0;
    uv_buf_t b = uv_buf_init((char *)rec, sizeof rec);
    assert_int_equal(uv_try_write((uv_stream_t *)&d->link->tcp, &b, 1),
                     (int)sizeof rec);
    RUN_UNTIL(f, a->closes == 1);
    assert_int_equal(a->code, MK_CLOSE_IDLE_TIMEOUT);
    assert_int_equal(a->status, MK_ETIMEDOUT);
}

/* A header announcing a large frame buys the sender no memory: the
 * receiver's buffer grows with the bytes that arrive. */
static void large_frame_grows_as_it_arrives(void **state)
{
    fx *f = *state;
    const size_t big = 8u << 20;
    start_limited(f, (mk_transport_config){.max_frame = big});
    end *d = dial_ok(f, 0);
    end *a = &f->acc[0];
    d->script = a->script = false;
    uint8_t *buf = calloc(1, big);
    assert_non_null(buf);
    uint8_t hdr[MK__FRAME_HDR];
    mk__frame_header(hdr, big);
    inject(d->link, hdr, sizeof hdr);
    inject(d->link, buf, 1000);
    while (mk__frame_in_buffered(&a->link->in) < sizeof hdr + 1000)
        nap(f, 10);
    assert_true(a->link->in.cap < 256 * 1024);
    /* The rest, in pieces: the frame still arrives whole and intact. */
    for (size_t at = 1000; at < big; at += 1u << 20) {
        size_t n = big - at < (1u << 20) ? big - at : (1u << 20);
        inject(d->link, buf + at, n);
        nap(f, 5);
        assert_true(a->link->in.cap <= 2 * (at + n) + 64 * 1024);
    }
    free(buf);
    RUN_UNTIL(f, a->frames == 1);
    assert_int_equal(a->bytes, big);
    assert_int_equal(a->closes, 0);
}

/* One peer may hold max_links_per_peer accepted links and everyone
 * together max_links; the next is told why it is refused. */
static void accepted_links_are_capped(void **state)
{
    fx *f = *state;
    start_limited(f, (mk_transport_config){.max_links_per_peer = 2,
                                           .max_links = 3});
    dial_ok(f, 0);
    dial_ok(f, 1);
    /* A third from b: the handshake completes, then the refusal. */
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub,
                                          mk_transport_listen_addr(f->a),
                                          ALPN, on_dial, &f->dial[2]),
                     0);
    RUN_UNTIL(f, f->dial[2].closes == 1);
    assert_int_equal(f->dial[2].dial_status, 0);
    assert_int_equal(f->dial[2].code, MK_CLOSE_TOO_MANY_LINKS);
    assert_int_equal(f->nacc, 2);

    /* Another peer still gets in, up to the total. */
    mk_transport *c = new_transport(f, &f->kc, NULL, 0, 0);
    assert_int_equal(mk_transport_connect(c, &f->ka.pub,
                                          mk_transport_listen_addr(f->a),
                                          ALPN, on_dial, &f->dial[3]),
                     0);
    RUN_UNTIL(f, f->dial[3].dials == 1 && f->nacc == 3);
    assert_int_equal(mk_transport_connect(c, &f->ka.pub,
                                          mk_transport_listen_addr(f->a),
                                          ALPN, on_dial, &f->dial[4]),
                     0);
    RUN_UNTIL(f, f->dial[4].closes == 1);
    assert_int_equal(f->dial[4].code, MK_CLOSE_TOO_MANY_LINKS);
    assert_int_equal(f->nacc, 3);

    /* A link that ends makes room again. */
    mk_link_close(f->dial[0].link, MK_CLOSE_SUCCESS, NULL);
    RUN_UNTIL(f, f->acc[0].closes == 1);
    assert_int_equal(mk_transport_connect(c, &f->ka.pub,
                                          mk_transport_listen_addr(f->a),
                                          ALPN, on_dial, &f->dial[5]),
                     0);
    RUN_UNTIL(f, f->dial[5].dials == 1 && f->nacc == 4);
    assert_int_equal(f->dial[5].closes, 0);
    mk_transport_close(c, on_transport_closed, f);
    RUN_UNTIL(f, f->closed == 1);
}

/* Connections that never handshake are dropped without TLS once the
 * accepted links reach the ceiling, long before their handshake
 * deadline: descriptors cannot pile up. */
static void connection_flood_is_bounded(void **state)
{
    fx *f = *state;
    start_limited(f, (mk_transport_config){.max_links = 4,
                                           .handshake_timeout_ms = 60000});
    enum { N = 25, CEILING = 4 + 16 };
    raw *r = calloc(N, sizeof *r);
    assert_non_null(r);
    struct sockaddr_in sa;
    addr_of(mk_transport_listen_addr(f->a), &sa);
    for (int i = 0; i < N; i++) {
        uv_tcp_init(&f->loop, &r[i].tcp);
        r[i].tcp.data = &r[i];
        assert_int_equal(uv_tcp_connect(&r[i].creq, &r[i].tcp,
                                         (struct sockaddr *)&sa,
                                         raw_connected),
                         0);
    }
    int ended = 0;
    while (ended < N - CEILING) {
        nap(f, 20);
        ended = 0;
        for (int i = 0; i < N; i++)
            ended += r[i].ended;
        assert_true(f->a->n_accepted <= CEILING);
    }
    nap(f, 100);
    ended = 0;
    for (int i = 0; i < N; i++)
        ended += r[i].ended;
    assert_int_equal(ended, N - CEILING);
    for (int i = 0; i < N; i++)
        uv_close((uv_handle_t *)&r[i].tcp, raw_closed);
    for (int i = 0; i < N; i++)
        RUN_UNTIL(f, r[i].closed);
    RUN_UNTIL(f, f->a->n_accepted == 0);
    free(r);
}

static void bad_arguments(void **state)
{
    fx *f = *state;
    mk_transport_config cfg = {.loop = &f->loop, .key = &f->ka};
    mk_transport *t = NULL;
    char err[MK_ERRMSG_SIZE];
    const char *bad[] = {"nonsense", "1.2.3.4", "[::1]80", "1.2.3.4:99999",
                         ":80", "1.2.3.4:", "::1:80", "1.2.3.4:8x",
                         "999.1.1.1:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.listen = bad[i];
        assert_int_equal(mk_transport_new(&cfg, &t, err), MK_EINVAL);
        assert_true(strlen(err) > 0);
    }
    cfg.listen = "localhost:0";
    assert_int_equal(mk_transport_new(&cfg, &f->a, err), 0);
    assert_true(strncmp(mk_transport_listen_addr(f->a), "127.0.0.1:", 10) ==
                0);
    /* The same port again is taken. */
    char again[64];
    snprintf(again, sizeof again, "%s", mk_transport_listen_addr(f->a));
    cfg.listen = again;
    assert_int_equal(mk_transport_new(&cfg, &t, err), MK_EADDRINUSE);
    cfg.listen = NULL;
    assert_int_equal(mk_transport_new(&cfg, &f->b, err), 0);

    assert_int_equal(mk_transport_serve(f->a, ALPN, on_accept, f), 0);
    assert_int_equal(mk_transport_serve(f->a, ALPN, on_accept, f), MK_EEXIST);
    assert_int_equal(mk_transport_serve(f->a, "", on_accept, f), MK_EINVAL);
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub, "127.0.0.1:0",
                                          ALPN, on_dial, &f->dial[0]),
                     MK_EINVAL);
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub, "nowhere",
                                          ALPN, on_dial, &f->dial[0]),
                     MK_EINVAL);
    char longalpn[MK_ALPN_MAX + 1];
    memset(longalpn, 'x', MK_ALPN_MAX);
    longalpn[MK_ALPN_MAX] = '\0';
    assert_int_equal(mk_transport_connect(f->b, &f->ka.pub, again, longalpn,
                                          on_dial, &f->dial[0]),
                     MK_EINVAL);
    nap(f, 10);
    assert_int_equal(f->dial[0].dials, 0);

    /* IPv6, where the machine has it. */
    cfg.listen = "[::1]:0";
    mk_transport *t6 = NULL;
    int rc = mk_transport_new(&cfg, &t6, err);
    if (rc == 0) {
        assert_true(strncmp(mk_transport_listen_addr(t6), "[::1]:", 6) == 0);
        assert_int_equal(mk_transport_serve(t6, ALPN, on_accept, f), 0);
        assert_int_equal(mk_transport_connect(f->b, &f->ka.pub,
                                              mk_transport_listen_addr(t6),
                                              ALPN, on_dial, &f->dial[1]),
                         0);
        RUN_UNTIL(f, f->dial[1].dials == 1 && f->nacc == 1);
        assert_int_equal(f->dial[1].dial_status, 0);
        mk_transport_close(t6, on_transport_closed, f);
        RUN_UNTIL(f, f->closed == 1);
    } else {
        assert_int_equal(rc, MK_EADDRNOTAVAIL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(close_text),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(handshake_learns_peers),
        T(wrong_peer_is_refused),
        T(resumed_session_works),
        T(resumed_session_is_bound_to_its_key),
        T(no_resume_protocol_sends_no_ticket),
        T(frames_both_ways),
        T(quiet_link_sheds_buffers),
        T(small_frames_shed_at_once),
        T(held_until_callbacks_set),
        T(send_keeps_a_small_limit),
        T(oversized_frame_is_refused),
        T(malformed_close_frames),
        T(garbage_is_dropped),
        T(silent_client_is_dropped),
        T(garbage_record_after_handshake),
        T(wrong_alpn_is_closed),
        T(unserve_refuses_new_links_only),
        T(exporter_matches),
        T(stale_openssl_error_is_ignored),
        T(close_codes_cross),
        T(close_flushes_queue),
        T(refused),
        T(connect_timeout),
        T(close_cancels_dials),
        T(transport_close_closes_links),
        T(stalled_reader),
        T(bad_arguments),
        T(idle_link_is_closed),
        T(paused_link_is_not_idle),
        T(dribbled_frame_is_closed),
        T(partial_record_is_closed),
        T(large_frame_grows_as_it_arrives),
        T(accepted_links_are_capped),
        T(connection_flood_is_bounded),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
