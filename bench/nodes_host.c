/* nodes_host: K discovery nodes in one process, on one libuv loop.
 *
 * bench_discovery runs a cluster of coalitiond processes, one node each;
 * on two cores that stops being possible somewhere past 128 nodes (each
 * process has its own loop, its own TLS library state and its own share of
 * the scheduler). This program lets the same benchmark reach 512 nodes: it
 * hosts K nodes side by side, each made exactly as coalitiond makes a
 * plain member (mk_node_config with its own key, its own listener on
 * 127.0.0.1:0, the given bootstrap, metrics on, default discovery
 * timers), and runs nothing but discovery on them. What it leaves out of
 * coalitiond: the peers.json file and the log line per discovered peer
 * (operator conveniences, not discovery), signals other than SIGTERM and
 * SIGINT, and every module, group and HTTP page (a plain member has none).
 *
 * Keys are made in memory: a coalitiond starts with a key file made
 * beforehand (`coalition keygen`), and creating and fsyncing 64 of them
 * one after another in the start loop delayed the last nodes' starts by
 * ~3 ms each, which the benchmark counted as discovery.
 *
 * It talks to the benchmark through stdout, one line per event, each
 * with the realtime clock in milliseconds so times compare across
 * processes:
 *
 *   node I PEERID ADDR T     node I is listening (its start)
 *   done I T                 node I knows WANT peers (first time only)
 *   links I D A R F B        then what its transport had done by then:
 *                            links dialled, accepted, resumed (full
 *                            handshakes are the convergence's main cost),
 *                            frames and payload bytes received
 *   ready K                  all K are started
 *
 * Like coalitiond it gives the heap's free pages back (malloc_trim) 2 s
 * after a node last gained or lost a peer and every 30 s, one timer for the
 * process.
 *
 * SIGTERM or SIGINT closes every node (each departs, as coalitiond does)
 * and exits 0 once all are closed.
 *
 *   nodes_host -k K -b PEERID@HOST:PORT [-w WANT] [-i FIRST]
 *
 * FIRST numbers the nodes (the benchmark's global index of node 0 here).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h> /* first: it tells whether this is glibc */
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "mosaik/error.h"
#include "mosaik/key.h"
#include "mosaik/node.h"

typedef struct hosted {
    struct host *h;
    mk_node *node;
    mk_keypair key;
    int index;
    bool done;
} hosted;

typedef struct host {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t trim; /* as coalitiond's trim_timer */
    hosted *nodes;
    int k, open, first;
    size_t want;
    bool stopping;
} host;

static int64_t now_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The benchmark polls this file: every line goes out whole and at once. */
static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void trim_heap(uv_timer_t *t)
{
    (void)t;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void on_peer_event(mk_node *node, mk_peer_event ev,
                          const mk_peer_entry *e, void *data)
{
    (void)e;
    hosted *n = data;
    if (!n->h->stopping && ev != MK_PEER_UPDATED)
        uv_timer_start(&n->h->trim, trim_heap, 2000, 30000);
    if (ev != MK_PEER_DISCOVERED || n->done ||
        mk_node_peer_count(node) < n->h->want)
        return;
    n->done = true;
    emit("done %d %lld\n", n->index, (long long)now_real_ms());
    mk_transport_stats ts;
    mk_transport_stats_get(mk_node_transport(node), &ts);
    mk_discovery_stats ds;
    mk_node_discovery_stats(node, &ds);
    emit("links %d %llu %llu %llu %llu %llu %llu\n", n->index,
         (unsigned long long)ts.links_dialed,
         (unsigned long long)ts.links_accepted,
         (unsigned long long)ts.links_resumed,
         (unsigned long long)ts.frames_in, (unsigned long long)ts.bytes_in,
         (unsigned long long)ds.entries);
}

static void on_node_closed(void *data)
{
    hosted *n = data;
    host *h = n->h;
    n->node = NULL;
    if (--h->open > 0)
        return;
    uv_close((uv_handle_t *)&h->sigterm, NULL);
    uv_close((uv_handle_t *)&h->sigint, NULL);
    uv_close((uv_handle_t *)&h->trim, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    host *h = s->data;
    if (h->stopping)
        return;
    h->stopping = true;
    uv_timer_stop(&h->trim);
    if (h->open == 0) {
        uv_close((uv_handle_t *)&h->sigterm, NULL);
        uv_close((uv_handle_t *)&h->sigint, NULL);
        uv_close((uv_handle_t *)&h->trim, NULL);
        return;
    }
    /* All depart at once, as K daemons told to stop together would. */
    for (int i = 0; i < h->k; i++)
        if (h->nodes[i].node)
            mk_node_close(h->nodes[i].node, on_node_closed, &h->nodes[i]);
}

static int start_one(host *h, hosted *n, const char *boot)
{
    char err[MK_ERRMSG_SIZE], hex[MK_ID_HEX_LEN + 1];
    if (mk_keypair_generate(&n->key) < 0) {
        fprintf(stderr, "nodes_host: cannot make a key\n");
        return -1;
    }
    const char *bootstrap[1] = {boot};
    mk_node_config nc = {
        .loop = &h->loop,
        .key = &n->key,
        .network = NULL, /* MK_UNIVERSE, as coalitiond without --network */
        .listen = "127.0.0.1:0",
        .bootstrap = bootstrap,
        .n_bootstrap = 1,
    };
    int rc = mk_node_new(&nc, &n->node, err);
    if (rc < 0) {
        fprintf(stderr, "nodes_host: node %d: %s\n", n->index, err);
        return -1;
    }
    h->open++;
    mk_node_watch_add(n->node, on_peer_event, n, NULL);
    mk_node_start(n->node);
    emit("node %d %s %s %lld\n", n->index,
         mk_id_hex(mk_node_id(n->node), hex), mk_node_addr(n->node),
         (long long)now_real_ms());
    return 0;
}

int main(int argc, char **argv)
{
    host h = {0};
    const char *boot = NULL;
    int opt;
    h.k = 1;
    while ((opt = getopt(argc, argv, "k:b:w:i:")) != -1) {
        switch (opt) {
        case 'k': h.k = atoi(optarg); break;
        case 'b': boot = optarg; break;
        case 'w': h.want = (size_t)strtoul(optarg, NULL, 10); break;
        case 'i': h.first = atoi(optarg); break;
        default: boot = NULL; break;
        }
    }
    if (!boot || h.k < 1 || optind != argc) {
        fprintf(stderr, "usage: nodes_host -k K -b PEERID@HOST:PORT "
                        "[-w WANT] [-i FIRST]\n");
        return 2;
    }
    h.nodes = calloc((size_t)h.k, sizeof *h.nodes);
    if (!h.nodes || uv_loop_init(&h.loop) != 0)
        return 1;
    uv_timer_init(&h.loop, &h.trim);
    uv_timer_start(&h.trim, trim_heap, 30000, 30000);
    uv_signal_init(&h.loop, &h.sigterm);
    uv_signal_init(&h.loop, &h.sigint);
    h.sigterm.data = h.sigint.data = &h;
    uv_signal_start(&h.sigterm, on_signal, SIGTERM);
    uv_signal_start(&h.sigint, on_signal, SIGINT);
    for (int i = 0; i < h.k; i++) {
        h.nodes[i].h = &h;
        h.nodes[i].index = h.first + i;
        if (start_one(&h, &h.nodes[i], boot) != 0) {
            uv_signal_t *s = &h.sigterm;
            on_signal(s, SIGTERM);
            uv_run(&h.loop, UV_RUN_DEFAULT);
            uv_loop_close(&h.loop);
            free(h.nodes);
            return 1;
        }
    }
    emit("ready %d\n", h.k);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&h.loop);
    free(h.nodes);
    return rc == 0 ? 0 : 1;
}
