/* `coalition net peers`: join as an ephemeral node, wait until the catalog
 * holds enough peers, print it, depart. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/node.h"
#include "util.h"

#define MAX_BOOT 16

static void usage(FILE *out)
{
    fprintf(out,
            "usage: coalition net peers --bootstrap PEERID@HOST:PORT\n"
            "                           [--network ID] [--wait N]\n"
            "                           [--timeout S] [--json]\n"
            "\n"
            "Joins the network as an ephemeral node (a fresh key, no\n"
            "listener), waits until its catalog holds at least N other\n"
            "peers, prints the catalog and departs.\n"
            "\n"
            "  --bootstrap P@H:P  a peer to join through (repeatable)\n"
            "  --network ID       network id (name or 64 hex; default the\n"
            "                     universe)\n"
            "  --wait N           peers to wait for (default 1)\n"
            "  --timeout S        give up after S (default 10s; 500ms, 1m …)\n"
            "  --json             one JSON array of peers\n"
            "\n"
            "Exit status 3 when fewer than N peers were known by the\n"
            "timeout (what was known is still printed).\n");
}

typedef struct peers_run {
    mk_node *node;
    uv_timer_t poll;
    uint64_t want;
    int64_t deadline, settle_until;
    bool reached, timed_out;
} peers_run;

static bool all_have_rtt(const mk_peer_info *p, void *data)
{
    bool *all = data;
    if (p->entry->n_addrs && p->rtt_us < 0)
        *all = false;
    return *all;
}

static void on_closed(void *data)
{
    peers_run *r = data;
    uv_close((uv_handle_t *)&r->poll, NULL);
}

static void on_poll(uv_timer_t *t)
{
    peers_run *r = t->data;
    int64_t now = mk_mono_ms();
    if (!r->reached && mk_node_peer_count(r->node) >= r->want) {
        r->reached = true;
        /* Give the first pings a moment so the table can show RTTs. */
        r->settle_until = now + 1500;
    }
    bool done = false;
    if (r->reached) {
        bool all = true;
        mk_node_peers_foreach(r->node, all_have_rtt, &all);
        done = all || now >= r->settle_until;
    } else if (now >= r->deadline) {
        r->timed_out = done = true;
    }
    if (done)
        uv_timer_stop(t);
}

static bool print_row(const mk_peer_info *p, void *data)
{
    char hex[MK_ID_HEX_LEN + 1], addrs[512] = "", tags[512] = "", rtt[32];
    const mk_peer_entry *e = p->entry;
    for (size_t i = 0; i < e->n_addrs; i++)
        snprintf(addrs + strlen(addrs), sizeof addrs - strlen(addrs), "%s%s",
                 i ? "," : "", e->addrs[i]);
    for (size_t i = 0; i < e->n_tags; i++)
        snprintf(tags + strlen(tags), sizeof tags - strlen(tags), "%s%s",
                 i ? "," : "", e->tags[i]);
    if (p->rtt_us >= 0)
        snprintf(rtt, sizeof rtt, "%.2fms", (double)p->rtt_us / 1000.0);
    else
        snprintf(rtt, sizeof rtt, "-");
    printf("%s  %-22s  %-20s  %6.1fs  %s\n", mk_id_hex(&e->peer, hex),
           addrs[0] ? addrs : "-", tags[0] ? tags : "-",
           (double)p->age_ms / 1000.0, rtt);
    return true;
}

static bool add_json(const mk_peer_info *p, void *data)
{
    char hex[MK_ID_HEX_LEN + 1];
    const mk_peer_entry *e = p->entry;
    json_t *o = json_object(), *a = json_array(), *t = json_array();
    for (size_t i = 0; i < e->n_addrs; i++)
        json_array_append_new(a, json_string(e->addrs[i]));
    for (size_t i = 0; i < e->n_tags; i++)
        json_array_append_new(t, json_string(e->tags[i]));
    json_object_set_new(o, "peer_id", json_string(mk_id_hex(&e->peer, hex)));
    json_object_set_new(o, "addrs", a);
    json_object_set_new(o, "tags", t);
    json_object_set_new(o, "streams", json_integer((json_int_t)e->n_streams));
    json_object_set_new(o, "groups", json_integer((json_int_t)e->n_groups));
    json_object_set_new(o, "age_ms", json_integer(p->age_ms));
    json_object_set_new(o, "rtt_us",
                        p->rtt_us >= 0 ? json_integer(p->rtt_us) : json_null());
    json_array_append_new(data, o);
    return true;
}

static int net_peers(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"network", required_argument, NULL, 'n'},
        {"wait", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *boots[MAX_BOOT];
    size_t n_boots = 0;
    const char *network = NULL;
    uint64_t want = 1;
    int64_t timeout_ms = 10000;
    int json = 0, ch;
    const char *why;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "b:n:w:t:jh", opts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            if (n_boots == MAX_BOOT)
                return cli_error(CLI_USAGE, "too many --bootstrap");
            boots[n_boots++] = optarg;
            break;
        case 'n': network = optarg; break;
        case 'w':
            if (util_parse_u64(optarg, &want) != 0)
                return cli_error(CLI_USAGE, "--wait: '%s' is not a count",
                                 optarg);
            break;
        case 't':
            if (util_parse_duration_ms(optarg, &timeout_ms, &why) != 0)
                return cli_error(CLI_USAGE, "--timeout: '%s': %s", optarg,
                                 why);
            if (timeout_ms > UINT32_MAX)
                return cli_error(CLI_USAGE, "--timeout: '%s': too large",
                                 optarg);
            break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_error(CLI_USAGE, "unexpected argument '%s'", argv[optind]);
    if (n_boots == 0) {
        usage(stderr);
        return cli_error(CLI_USAGE, "--bootstrap is required");
    }

    mk_keypair key;
    mk_id net = MK_UNIVERSE;
    char err[MK_ERRMSG_SIZE];
    if (network)
        mk_id_from_str(&net, network);
    if (mk_keypair_generate(&key) < 0)
        return cli_error(CLI_FAIL, "no randomness for an ephemeral key");
    uv_loop_t loop;
    uv_loop_init(&loop);
    peers_run r = {.want = want, .deadline = mk_mono_ms() + timeout_ms};
    mk_node_config nc = {
        .loop = &loop,
        .key = &key,
        .network = &net,
        .bootstrap = boots,
        .n_bootstrap = n_boots,
    };
    int rc = mk_node_new(&nc, &r.node, err);
    if (rc < 0) {
        uv_loop_close(&loop);
        return cli_error(rc == MK_EINVAL ? CLI_USAGE : CLI_FAIL, "%s", err);
    }
    mk_node_start(r.node);
    uv_timer_init(&loop, &r.poll);
    r.poll.data = &r;
    uv_timer_start(&r.poll, on_poll, 50, 50);
    while (uv_is_active((uv_handle_t *)&r.poll))
        uv_run(&loop, UV_RUN_ONCE);

    if (json) {
        json_t *arr = json_array();
        mk_node_peers_foreach(r.node, add_json, arr);
        char *text = json_dumps(arr, JSON_INDENT(2));
        puts(text ? text : "[]");
        free(text);
        json_decref(arr);
    } else {
        printf("%-64s  %-22s  %-20s  %7s  %s\n", "PEER ID", "ADDRESSES",
               "TAGS", "AGE", "RTT");
        mk_node_peers_foreach(r.node, print_row, NULL);
    }
    fflush(stdout);
    if (r.timed_out)
        cli_error(CLI_TIMEOUT, "knew %zu of %llu peers after %.1fs",
                  mk_node_peer_count(r.node), (unsigned long long)want,
                  (double)timeout_ms / 1000.0);
    mk_node_close(r.node, on_closed, &r);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return r.timed_out ? CLI_TIMEOUT : CLI_OK;
}

int cmd_net(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "peers") == 0)
        return net_peers(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return CLI_OK;
    }
    usage(stderr);
    return CLI_USAGE;
}
