/* coalitiond: the operator's daemon. One node, one key, one data dir.
 *
 * It joins the network (discovery), and hosts whatever components its
 * configuration names. On start it prints one JSON line with its PeerId
 * and listen address on stdout (scripts read it), then logs to stderr.
 * SIGINT and SIGTERM depart gracefully and exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "coalition/version.h"
#include "mosaik/error.h"
#include "mosaik/jwt.h"
#include "daemon_config.h"
#include "daemon_groups.h"
#include "daemon_confluences.h"
#include "daemon_http.h"
#include "daemon_modules.h"
#include "daemon_provider.h"
#include "mosaik/node.h"
#include "mosaik/version.h"
#include "util.h"

#define MAX_LIST 32

typedef struct daemon_opts {
    const char *listen, *key, *data, *network, *config, *coalition;
    const char *provider;
    const char *http; /* --http HOST:PORT, or NULL */
    const char *ticket; /* --ticket FILE: a JWT for this node's entry */
    const char *bootstrap[MAX_LIST];
    size_t n_bootstrap;
    const char *tags[MAX_LIST];
    size_t n_tags;
    mk_discovery_config disc;
    bool quiet;
    bool no_metrics; /* --no-metrics, or "metrics": false in --config */
} daemon_opts;

typedef struct daemon {
    uv_loop_t loop;
    mk_keypair key;
    mk_id network;
    mk_node *node;
    daemon_groups *groups; /* --config's groups, or NULL */
    daemon_modules *modules; /* the coalition's modules, or NULL */
    daemon_confluences *confluences; /* its confluences, or NULL */
    daemon_provider *provider; /* --provider: a Compute provider, or NULL */
    daemon_http *http; /* --http, or NULL */
    uv_signal_t sigint, sigterm, sighup;
    const char *ticket; /* --ticket FILE, re-read on SIGHUP */
    uv_timer_t catalog_timer; /* debounces DATA/peers.json */
    uint64_t catalog_at;      /* loop time of its last rewrite */
    uv_timer_t stats_timer;   /* rewrites it when only the counters moved */
    mk_discovery_stats stats_written; /* the counters it holds */
    uv_timer_t trim_timer; /* gives the heap's free pages back */
    const char *data;
    bool stopping;
} daemon;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: coalitiond --listen HOST:PORT --key FILE --data DIR\n"
            "                  [--bootstrap PEERID@HOST:PORT]... [--tag T]...\n"
            "                  [--network ID] [--config FILE]\n"
            "                  [--coalition FILE [--provider FILE]]\n"
            "                  [--http HOST:PORT] [--no-metrics] [--quiet]\n"
            "\n"
            "Runs one mosaik node: joins the network through the bootstrap\n"
            "peers and keeps its catalog. Prints {\"peer_id\":…,\"listen\":…}\n"
            "on stdout once listening, then logs to stderr. SIGINT or\n"
            "SIGTERM departs gracefully and exits 0.\n"
            "\n"
            "  --listen HOST:PORT    address to listen on (port 0: any free)\n"
            "  --key FILE            Ed25519 key (coalition keygen --out FILE);\n"
            "                        refused when group/others can read it\n"
            "  --data DIR            the node's data directory (created 0700)\n"
            "  --bootstrap P@H:P     a peer to join through (repeatable)\n"
            "  --tag T               a tag in this node's entry (repeatable)\n"
            "  --network ID          network id (a name or 64 hex; default\n"
            "                        the universe, id(\"mosaik.universe\"))\n"
            "  --config FILE         JSON node config: the groups this node\n"
            "                        hosts (docs/groups.md) and, under\n"
            "                        \"coalition\", a coalition file\n"
            "  --coalition FILE      host the modules of this coalition\n"
            "                        whose committees list this node\n"
            "  --provider FILE       offer this node's capacity to the\n"
            "                        coalition's Compute module and run the\n"
            "                        images granted to it. FILE is JSON:\n"
            "                        {\"cpu\": \"2\", \"ram\": \"1G\",\n"
            "                         \"storage\": \"4G\", \"regions\": [\"eu\"],\n"
            "                         \"tdx\": false, \"cgroup\": \"auto\"}\n"
            "                        (cpu and ram required; tools/\n"
            "                        daemon_provider.h has the image\n"
            "                        contract: a static binary or #! script,\n"
            "                        run under rlimits/cgroups, killed at\n"
            "                        valid_to, never run twice)\n"
            "  --ticket FILE         carry the JWT in FILE (e.g. from 'coalition\n"
            "                        ticket issue|request') in this node's\n"
            "                        entry: what ticket-gated committees and\n"
            "                        validators judge it by. Re-read on SIGHUP\n"
            "                        (renewal without a restart)\n"
            "  --http HOST:PORT      serve /metrics (Prometheus text), /api/status\n"
            "                        (JSON) and a dashboard at / over plain\n"
            "                        HTTP (port 0: any free; off by default;\n"
            "                        no authentication: bind it to loopback or\n"
            "                        a trusted network). docs/observability.md\n"
            "  --no-metrics          keep no metrics registry (as \"metrics\":\n"
            "                        false in --config): /metrics answers 404;\n"
            "                        docs/observability.md has what it saves\n"
            "\n"
            "discovery tuning (durations like 500ms, 10s, 5m):\n"
            "  --announce-interval D re-announce period (default 45s)\n"
            "  --purge-after D       forget silent peers after (default 300s)\n"
            "  --quiet               log errors only\n"
            "  --version             print the versions and exit\n");
}

/* Reads --ticket FILE: one compact JWT (surrounding whitespace ignored)
 * into a ticket of MK_JWT_CLASS. Its signature and claims are for the
 * components that judge it; here only its shape is checked, so a wrong
 * file is named now rather than found out as a refusal later. */
static int load_ticket(const char *path, mk_ticket *t, char *err, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return snprintf(err, len, "--ticket %s: %s", path, strerror(errno)),
               -1;
    static char buf[MK_JWT_MAX_LEN + 2];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool more = !feof(f);
    fclose(f);
    buf[n] = '\0';
    char *p = buf;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    size_t m = strlen(p);
    while (m && (p[m - 1] == ' ' || p[m - 1] == '\t' || p[m - 1] == '\n' ||
                 p[m - 1] == '\r'))
        p[--m] = '\0';
    size_t dots = 0, bad = 0;
    for (size_t i = 0; i < m; i++) {
        dots += p[i] == '.';
        bad += !(p[i] == '.' || p[i] == '-' || p[i] == '_' ||
                 (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z') ||
                 (p[i] >= 'A' && p[i] <= 'Z'));
    }
    if (more || m > MK_JWT_MAX_LEN)
        return snprintf(err, len, "--ticket %s: longer than %d bytes", path,
                        MK_JWT_MAX_LEN),
               -1;
    if (m == 0 || dots != 2 || bad)
        return snprintf(err, len,
                        "--ticket %s: not a compact JWT (three base64url "
                        "parts joined by '.')",
                        path),
               -1;
    if (mk_ticket_init(t, &MK_JWT_CLASS, p, m) != 0)
        return snprintf(err, len, "--ticket: out of memory"), -1;
    return 0;
}

static int parse_args(int argc, char **argv, daemon_opts *o)
{
    enum { OPT_ANNOUNCE = 256, OPT_PURGE, OPT_HTTP, OPT_NO_METRICS, OPT_TICKET };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"key", required_argument, NULL, 'k'},
        {"data", required_argument, NULL, 'd'},
        {"bootstrap", required_argument, NULL, 'b'},
        {"tag", required_argument, NULL, 't'},
        {"network", required_argument, NULL, 'n'},
        {"config", required_argument, NULL, 'c'},
        {"coalition", required_argument, NULL, 'C'},
        {"provider", required_argument, NULL, 'P'},
        {"http", required_argument, NULL, OPT_HTTP},
        {"no-metrics", no_argument, NULL, OPT_NO_METRICS},
        {"ticket", required_argument, NULL, OPT_TICKET},
        {"announce-interval", required_argument, NULL, OPT_ANNOUNCE},
        {"purge-after", required_argument, NULL, OPT_PURGE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    int64_t ms;
    while ((ch = getopt_long(argc, argv, "l:k:d:b:t:n:c:qh", opts, NULL)) !=
           -1) {
        switch (ch) {
        case 'l': o->listen = optarg; break;
        case 'k': o->key = optarg; break;
        case 'd': o->data = optarg; break;
        case 'n': o->network = optarg; break;
        case 'c': o->config = optarg; break;
        case 'C': o->coalition = optarg; break;
        case 'P': o->provider = optarg; break;
        case OPT_HTTP: o->http = optarg; break;
        case OPT_NO_METRICS: o->no_metrics = true; break;
        case OPT_TICKET: o->ticket = optarg; break;
        case 'q': o->quiet = true; break;
        case 'b':
            if (o->n_bootstrap == MAX_LIST)
                return fprintf(stderr, "coalitiond: too many --bootstrap\n"),
                       -1;
            o->bootstrap[o->n_bootstrap++] = optarg;
            break;
        case 't':
            if (o->n_tags == MAX_LIST)
                return fprintf(stderr, "coalitiond: too many --tag\n"), -1;
            o->tags[o->n_tags++] = optarg;
            break;
        case OPT_ANNOUNCE:
        case OPT_PURGE: {
            const char *why = "must be more than zero";
            if (util_parse_duration_ms(optarg, &ms, &why) != 0 || ms <= 0 ||
                ms > UINT32_MAX) {
                fprintf(stderr, "coalitiond: --%s: '%s': %s\n",
                        ch == OPT_ANNOUNCE ? "announce-interval"
                                           : "purge-after",
                        optarg, ms > UINT32_MAX ? "too large" : why);
                return -1;
            }
            if (ch == OPT_ANNOUNCE)
                o->disc.announce_interval_ms = (uint32_t)ms;
            else
                o->disc.purge_after_ms = (uint32_t)ms;
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("coalitiond %s (libcoalition %s, libmosaik %s)\n",
                   CO_VERSION, co_version(), mk_version());
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "coalitiond: unexpected argument '%s'\n",
                argv[optind]);
        return -1;
    }
    const char *missing = !o->listen ? "--listen"
                          : !o->key  ? "--key"
                          : !o->data ? "--data"
                                     : NULL;
    if (missing) {
        fprintf(stderr, "coalitiond: %s is required\n", missing);
        usage(stderr);
        return -1;
    }
    return 0;
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return MK_EINVAL;
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : MK_EEXIST;
}

/* DATA/peers.json: what this node's catalog holds, rewritten (atomically)
 * shortly after every change, for operators and tests to read; at most
 * once every CATALOG_GAP_MS. Its discovery counters can move with the
 * catalog still (links closed for silence, a flood refused): they are
 * looked at every STATS_CHECK_MS and the file rewritten when they did. */
#define CATALOG_GAP_MS 1000
#define STATS_CHECK_MS 5000
/* The counters, zeroed first: check_stats compares two copies whole. */
static void read_stats(const daemon *d, mk_discovery_stats *st)
{
    memset(st, 0, sizeof *st);
    mk_node_discovery_stats(d->node, st);
}

static bool peer_json(const mk_peer_info *p, void *data)
{
    char hex[MK_ID_HEX_LEN + 1];
    const mk_peer_entry *e = p->entry;
    json_t *o = json_object(), *a = json_array(), *t = json_array(),
           *s = json_array(), *g = json_array();
    for (size_t i = 0; i < e->n_addrs; i++)
        json_array_append_new(a, json_string(e->addrs[i]));
    for (size_t i = 0; i < e->n_tags; i++)
        json_array_append_new(t, json_string(e->tags[i]));
    for (size_t i = 0; i < e->n_streams; i++)
        json_array_append_new(s, json_string(mk_id_hex(&e->streams[i], hex)));
    for (size_t i = 0; i < e->n_groups; i++)
        json_array_append_new(g, json_string(mk_id_hex(&e->groups[i], hex)));
    json_object_set_new(o, "peer_id", json_string(mk_id_hex(&e->peer, hex)));
    json_object_set_new(o, "addrs", a);
    json_object_set_new(o, "tags", t);
    json_object_set_new(o, "streams", s);
    json_object_set_new(o, "groups", g);
    json_object_set_new(o, "start_ms", json_integer(e->start_ms));
    json_object_set_new(o, "update_ms", json_integer(e->update_ms));
    json_object_set_new(o, "rtt_us",
                        p->rtt_us >= 0 ? json_integer(p->rtt_us) : json_null());
    json_array_append_new(data, o);
    return true;
}

static void write_catalog(uv_timer_t *t)
{
    daemon *d = t->data;
    d->catalog_at = uv_now(&d->loop);
    char hex[MK_ID_HEX_LEN + 1], path[4096], tmp[4200];
    json_t *root = json_object(), *peers = json_array();
    mk_node_peers_foreach(d->node, peer_json, peers);
    json_object_set_new(root, "peer_id",
                        json_string(mk_id_hex(mk_node_id(d->node), hex)));
    json_object_set_new(root, "peers", peers);
    /* What discovery refused so far: a flood shows here first. */
    mk_discovery_stats st;
    read_stats(d, &st);
    d->stats_written = st;
    json_t *ds = json_object();
#define STAT(f) json_object_set_new(ds, #f, json_integer((json_int_t)st.f))
    STAT(catalog_bytes);
    STAT(refused_oversize);
    STAT(refused_future);
    STAT(refused_drift);
    STAT(refused_full);
    STAT(refused_rate);
    STAT(evicted);
    STAT(sync_cut);
    STAT(links_idle);
    STAT(nbrs_refused);
    STAT(syncs);
    STAT(syncs_referred);
    STAT(syncs_refused);
    STAT(probes);
#undef STAT
    json_object_set_new(root, "discovery", ds);
    snprintf(path, sizeof path, "%s/peers.json", d->data);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(root, tmp, JSON_INDENT(1)) == 0 && rename(tmp, path))
        util_log("WARN", "cannot write %s", path);
    json_decref(root);
}

/* Peers remembered from the last run's DATA/peers.json join the
 * bootstrap list, so a node whose only --bootstrap is gone for good
 * still finds the network through anyone it knew. At most REMEMBERED of
 * them, the most recently updated first; unreachable ones only cost
 * retries with backoff. */
#define REMEMBERED 8
static char remembered[REMEMBERED][MK_ID_HEX_LEN + 1 + 256];

static int by_update_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(
                   json_object_get(*(json_t *const *)a, "update_ms")),
               y = json_integer_value(
                   json_object_get(*(json_t *const *)b, "update_ms"));
    return x < y ? 1 : x > y ? -1 : 0;
}

static void remember_peers(daemon_opts *o)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/peers.json", o->data);
    json_t *root = json_load_file(path, 0, NULL);
    json_t *peers = json_object_get(root, "peers");
    size_t n = json_is_array(peers) ? json_array_size(peers) : 0;
    json_t **v = n ? calloc(n, sizeof *v) : NULL;
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_array_get(peers, i);
    if (v)
        qsort(v, n, sizeof *v, by_update_desc);
    size_t added = 0;
    for (size_t i = 0; v && i < n && added < REMEMBERED &&
                       o->n_bootstrap < MAX_LIST;
         i++) {
        const char *id = json_string_value(json_object_get(v[i], "peer_id"));
        const char *addr =
            json_string_value(json_array_get(json_object_get(v[i], "addrs"), 0));
        mk_id peer;
        if (!id || !addr || mk_id_from_hex(&peer, id, strlen(id)) != 0 ||
            strlen(addr) > 255)
            continue;
        bool listed = false;
        for (size_t j = 0; j < o->n_bootstrap && !listed; j++)
            listed = strncmp(o->bootstrap[j], id, MK_ID_HEX_LEN) == 0;
        if (listed)
            continue;
        snprintf(remembered[added], sizeof remembered[added], "%s@%s", id,
                 addr);
        o->bootstrap[o->n_bootstrap++] = remembered[added++];
    }
    if (added)
        util_log("INFO", "bootstrap: %zu peer(s) remembered from %s", added,
                 path);
    free(v);
    json_decref(root);
}

/* An idle node's heap is mostly free space: what the first-contact
 * exchanges and the links' buffers used at their busiest (links give
 * theirs back once quiet, link.c), left as holes that glibc returns to
 * the system only from the top of the heap. malloc_trim returns the free
 * pages wherever they are; at 128 peers that is about 2 MiB of the
 * daemon's 4-5 MiB of heap. It runs TRIM_QUIET_MS after the catalog last
 * gained or lost a peer (by then the links that carried the change have
 * gone quiet) and every TRIM_EVERY_MS after. */
#define TRIM_QUIET_MS 2000
#define TRIM_EVERY_MS 30000

static void trim_heap(uv_timer_t *t)
{
    (void)t;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* 100 ms after a change, and at most once a second: the file is the
 * whole catalog, so rewriting it every 100 ms while a large network
 * converges cost each node O(peers) every 100 ms, more CPU than
 * discovery itself. */
static void catalog_soon(daemon *dm)
{
    if (uv_is_active((uv_handle_t *)&dm->catalog_timer))
        return;
    uint64_t now = uv_now(&dm->loop), due = 100;
    if (dm->catalog_at && dm->catalog_at + CATALOG_GAP_MS > now + due)
        due = dm->catalog_at + CATALOG_GAP_MS - now;
    uv_timer_start(&dm->catalog_timer, write_catalog, due, 0);
}

static void check_stats(uv_timer_t *t)
{
    daemon *dm = t->data;
    if (dm->stopping || !dm->node)
        return;
    mk_discovery_stats st;
    read_stats(dm, &st);
    if (memcmp(&st, &dm->stats_written, sizeof st) != 0)
        catalog_soon(dm);
}

static void on_peer_event(mk_node *node, mk_peer_event ev,
                          const mk_peer_entry *e, void *data)
{
    daemon *dm = data;
    catalog_soon(dm);
    /* Not on UPDATED: in a large network some peer re-announces every
     * fraction of a second, and would put the trim off for ever. */
    if (!dm->stopping && ev != MK_PEER_UPDATED)
        uv_timer_start(&dm->trim_timer, trim_heap, TRIM_QUIET_MS,
                       TRIM_EVERY_MS);
    char hex[MK_ID_HEX_LEN + 1];
    mk_id_hex(&e->peer, hex);
    if (ev == MK_PEER_DISCOVERED)
        util_log("INFO", "peer discovered %s at %s", hex,
                 e->n_addrs ? e->addrs[0] : "(no address)");
    else if (ev == MK_PEER_DEPARTED)
        util_log("INFO", "peer departed %s", hex);
}

static void on_node_closed(void *data)
{
    daemon *d = data;
    d->node = NULL;
    /* Closing the last handle of a signal restores its default action: a
     * second SIGTERM arriving now must not kill a clean exit. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->catalog_timer, NULL);
    uv_close((uv_handle_t *)&d->stats_timer, NULL);
    uv_close((uv_handle_t *)&d->trim_timer, NULL);
}

/* Groups leave before the node departs: their Raft logs close cleanly. */
static void on_groups_stopped(void *data)
{
    daemon *d = data;
    mk_node_close(d->node, on_node_closed, d);
}

static void on_modules_stopped(void *data)
{
    daemon *d = data;
    if (d->groups)
        daemon_groups_stop(d->groups, on_groups_stopped, d);
    else
        mk_node_close(d->node, on_node_closed, d);
}

/* Confluence members leave first: they read the modules (the Almanac
 * is their clock), never the other way round. */
static void on_confluences_stopped(void *data)
{
    daemon *d = data;
    d->confluences = NULL; /* freed by its close */
    if (d->modules)
        daemon_modules_stop(d->modules, on_modules_stopped, d);
    else
        on_modules_stopped(d);
}

/* The Compute provider departs first, while the committee can still
 * hear it: its running work is re-matched at once. */
static void on_provider_stopped(void *data)
{
    daemon *d = data;
    daemon_provider_free(d->provider);
    d->provider = NULL;
    daemon_confluences_close(d->confluences, on_confluences_stopped, d);
}

/* SIGHUP: the --ticket file again, e.g. after a renewal. A bad file
 * keeps the ticket the node carries. */
static void on_sighup(uv_signal_t *s, int signum)
{
    daemon *d = s->data;
    char err[256];
    mk_ticket t;
    if (d->stopping || !d->ticket)
        return;
    if (load_ticket(d->ticket, &t, err, sizeof err) != 0) {
        util_log("ERROR", "SIGHUP: %s (keeping the ticket carried)", err);
        return;
    }
    int rc = mk_node_set_ticket(d->node, &t);
    mk_ticket_free(&t);
    if (rc < 0)
        util_log("ERROR", "SIGHUP: --ticket: %s", mk_strerror(rc));
    else
        util_log("INFO", "SIGHUP: ticket re-read from %s", d->ticket);
}

static void on_signal(uv_signal_t *s, int signum)
{
    daemon *d = s->data;
    if (d->stopping)
        return;
    d->stopping = true;
    util_log("INFO", "%s: departing", signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_timer_stop(&d->catalog_timer);
    uv_timer_stop(&d->stats_timer);
    uv_timer_stop(&d->trim_timer);
    /* First: its pages read the groups and the node about to go. */
    daemon_http_stop(d->http);
    d->http = NULL;
    if (d->provider)
        daemon_provider_stop(d->provider, on_provider_stopped, d);
    else
        on_provider_stopped(d);
}

/* OpenSSL is started without its reason strings and without openssl.cnf,
 * before anything else touches it (it starts only once per process).
 * The strings are a table of every reason text, about 0.45 MiB of each
 * daemon's resident memory, which counts when a machine runs hundreds of
 * nodes; a TLS error then carries OpenSSL's packed code instead, which
 * `openssl errstr` names. The config file holds nothing a node uses (the
 * suites, versions and signature algorithms are fixed in tls.c), and a
 * host's file should not change what a node's links accept. */
static void lean_openssl(void)
{
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
                            OPENSSL_INIT_NO_LOAD_CONFIG,
                        NULL);
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS, NULL);
}

int main(int argc, char **argv)
{
    daemon_opts o = {0};
    daemon d = {0};
    daemon_config *cfg = NULL;
    mk_ticket ticket = {0};
    char err[MK_ERRMSG_SIZE], hex[MK_ID_HEX_LEN + 1];
    int rc, status = 2; /* bad input until the node runs */

    util_log_set_prog("coalitiond");
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    lean_openssl();
    util_log_set_quiet(o.quiet);
    if ((rc = mk_keypair_load(&d.key, o.key, err)) < 0) {
        fprintf(stderr, "coalitiond: %s\n", err);
        if (rc == MK_ENOENT)
            fprintf(stderr, "coalitiond: create one with: coalition keygen "
                            "--out %s\n",
                    o.key);
        return 2;
    }
    if ((rc = make_dirs(o.data)) < 0) {
        fprintf(stderr, "coalitiond: --data %s: %s\n", o.data,
                mk_strerror(rc));
        return 2;
    }
    remember_peers(&o);
    /* The node config is read once; each part takes what it needs. */
    if (o.config && (daemon_config_load(o.config, &cfg, err) != 0 ||
                     daemon_groups_load(cfg, &d.groups, err) != 0)) {
        fprintf(stderr, "coalitiond: --config: %s\n", err);
        goto out;
    }
    if (cfg && cfg->metrics_off)
        o.no_metrics = true;
    if (daemon_modules_load(cfg, o.coalition, &d.modules, err) != 0) {
        fprintf(stderr, "coalitiond: %s\n", err);
        goto out;
    }
    if (o.provider && (!d.modules || daemon_provider_load(
                                         o.provider, &d.provider, err) != 0)) {
        fprintf(stderr, "coalitiond: --provider: %s\n",
                d.modules ? err : "needs a coalition (--coalition FILE)");
        goto out;
    }
    if (o.ticket && load_ticket(o.ticket, &ticket, err, sizeof err) != 0) {
        fprintf(stderr, "coalitiond: %s\n", err);
        goto out;
    }
    /* A peer that hangs up makes libuv's next write raise SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    d.network = MK_UNIVERSE;
    if (o.network)
        mk_id_from_str(&d.network, o.network);

    uv_loop_init(&d.loop);
    mk_node_config nc = {
        .loop = &d.loop,
        .key = &d.key,
        .network = &d.network,
        .listen = o.listen,
        .bootstrap = o.bootstrap,
        .n_bootstrap = o.n_bootstrap,
        .tags = o.tags,
        .n_tags = o.n_tags,
        .discovery = o.disc,
        .metrics_off = o.no_metrics,
    };
    if ((rc = mk_node_new(&nc, &d.node, err)) < 0) {
        fprintf(stderr, "coalitiond: %s\n", err);
        status = rc == MK_EINVAL ? 2 : 1;
        goto out_loop;
    }
    status = 1; /* from here a failure is one to start */
    d.data = o.data;
    uv_timer_init(&d.loop, &d.catalog_timer);
    d.catalog_timer.data = &d;
    uv_timer_init(&d.loop, &d.stats_timer);
    d.stats_timer.data = &d;
    uv_timer_start(&d.stats_timer, check_stats, STATS_CHECK_MS,
                   STATS_CHECK_MS);
    uv_timer_init(&d.loop, &d.trim_timer);
    uv_timer_start(&d.trim_timer, trim_heap, TRIM_EVERY_MS, TRIM_EVERY_MS);
    mk_node_watch_add(d.node, on_peer_event, &d, NULL);
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sighup);
    d.sigint.data = d.sigterm.data = d.sighup.data = &d;
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sighup, on_sighup, SIGHUP);
    /* Before anything is hosted: ticket-gated committees judge this
     * node by the entry it starts with. */
    d.ticket = o.ticket;
    if (o.ticket && (rc = mk_node_set_ticket(d.node, &ticket)) < 0)
        util_log("ERROR", "--ticket: %s (starting without it)",
                 mk_strerror(rc));
    mk_node_start(d.node);
    /* Each part starts after those it reads, and a failure unwinds from
     * the part that failed (the shutdown chain, from there on). */
    if (d.groups && daemon_groups_start(d.groups, d.node, o.data, err) != 0) {
        util_log("ERROR", "%s", err);
        d.stopping = true;
        daemon_groups_stop(d.groups, on_groups_stopped, &d);
        goto run;
    }
    if (d.modules &&
        daemon_modules_start(d.modules, d.node, o.data, err) != 0) {
        util_log("ERROR", "%s", err);
        d.stopping = true;
        on_modules_stopped(&d);
        goto run;
    }
    /* Members of the coalition's confluences whose committees list this
     * node (daemon_confluences.h). */
    if (d.modules &&
        daemon_confluences_start(d.node, daemon_modules_coalition(d.modules),
                                 o.data, &d.confluences, err) != 0) {
        util_log("ERROR", "%s", err);
        d.stopping = true;
        daemon_confluences_close(d.confluences, on_confluences_stopped, &d);
        goto run;
    }
    /* A Compute provider (daemon_provider.h), after the modules: the
     * node may itself be on the Compute committee. */
    if (d.provider &&
        daemon_provider_start(d.provider, d.node,
                              daemon_modules_coalition(d.modules), o.data,
                              err) != 0) {
        util_log("ERROR", "%s", err);
        d.stopping = true;
        daemon_provider_stop(d.provider, on_provider_stopped, &d);
        goto run;
    }
    /* Last, so it never shows a node half started; a port already taken
     * is a failure to start like any other. */
    if (o.http && daemon_http_start(o.http, d.node, d.groups, d.modules,
                                    &d.http, err) != 0) {
        fprintf(stderr, "coalitiond: --http %s\n", err);
        raise(SIGTERM);
        goto run;
    }
    if (d.http)
        printf("{\"peer_id\":\"%s\",\"listen\":\"%s\",\"http\":\"%s\"}\n",
               mk_id_hex(mk_node_id(d.node), hex), mk_node_addr(d.node),
               daemon_http_addr(d.http));
    else
        printf("{\"peer_id\":\"%s\",\"listen\":\"%s\"}\n",
               mk_id_hex(mk_node_id(d.node), hex), mk_node_addr(d.node));
    fflush(stdout);
    util_log("INFO", "node %s listening on %s%s", hex, mk_node_addr(d.node),
             o.no_metrics ? " (metrics off)" : "");
    status = 0;

run:
    uv_run(&d.loop, UV_RUN_DEFAULT);
out_loop:
    rc = uv_loop_close(&d.loop);
    if (rc != 0 && status == 0)
        util_log("WARN", "loop closed with handles open: %s",
                 uv_strerror(rc));
out:
    mk_ticket_free(&ticket);
    daemon_config_free(cfg);
    daemon_groups_free(d.groups);
    daemon_modules_free(d.modules);
    /* NULL once stopped (on_provider_stopped frees it); set here only
     * when the daemon never got as far as starting it. */
    daemon_provider_free(d.provider);
    if (status == 0)
        util_log("INFO", "stopped");
    return status;
}
