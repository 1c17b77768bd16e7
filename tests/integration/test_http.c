/* coalitiond --http against a raw socket client: three members of the
 * module tests' coalition serve /metrics and /api/status, which must show
 * the same coalition (a leader, a rising Almanac seq, the node's links
 * and peers), and the server must refuse what it is built to refuse
 * (oversized heads, other methods, paths outside its routes, a flood of
 * idle connections) while still answering a scraper. When Debian's
 * promtool is installed it checks the exposition too, and with chromium
 * the dashboard is rendered headless and read back from its DOM. A
 * daemon with metrics off answers /metrics with a 404 that says why. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "modules_env.h"
#include "proc.h"

static menv env;

static int dial(const char *addr, bool blocking)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends `req` as is and reads until the server closes (or 10 s × factor
 * pass). Returns the whole response (free it) and its status in *status
 * (0 when there was no status line). */
static char *exchange(const char *addr, const char *req, size_t len,
                      int *status)
{
    int fd = dial(addr, true);
    assert_true(fd >= 0);
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer and close mid-request */
        off += (size_t)n;
    }
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap + 1);
    int budget = (int)(10000 * time_factor());
    struct pollfd p = {fd, POLLIN, 0};
    while (budget > 0) {
        if (poll(&p, 1, 100) <= 0) {
            budget -= 100;
            continue;
        }
        if (got == cap)
            buf = realloc(buf, (cap *= 2) + 1);
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *status = 0;
    sscanf(buf, "HTTP/1.1 %d ", status);
    return buf;
}

static char *get(const char *addr, const char *path, int *status)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: test\r\n\r\n",
                     path, addr);
    return exchange(addr, req, (size_t)n, status);
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* A metric's value in an exposition, -1 when absent. */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)); p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* The sum of the values of every series of `family` whose labels
 * contain `label` (e.g. name="almanac"). */
static double sum_series(const char *text, const char *family,
                         const char *label)
{
    double sum = 0;
    size_t n = strlen(family);
    for (const char *p = text; (p = strstr(p, family)); p += n) {
        const char *nl = strchr(p, '\n');
        const char *end = strchr(p, '}');
        const char *l = strstr(p, label);
        if ((p != text && p[-1] != '\n') || p[n] != '{' || !nl || !end ||
            end > nl || !l || l > end)
            continue;
        sum += strtod(end + 2, NULL);
    }
    return sum;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    (void)state;
    if (menv_init(&env) != 0)
        return -1;
    for (int i = 0; i < MENV_MEMBERS; i++) {
        char boot[160];
        const char *args[8] = {"--config", env.node_cfg[i], "--http",
                               "127.0.0.1:0"};
        int n = 4;
        if (menv_boot(&env, i, boot, sizeof boot)) {
            args[n++] = "--bootstrap";
            args[n++] = boot;
        }
        args[n] = NULL;
        if (daemon_start(&env.d[i], args) != 0 || !env.d[i].http[0]) {
            menv_free(&env, true);
            return -1;
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MENV_MEMBERS; i++)
        assert_int_equal(menv_running(&env, i) ? 0 : 1, 0);
    menv_free(&env, false);
    return 0;
}

/* Waits until member 0 reports an Almanac seq of at least `seq`. */
static double wait_seq(double seq)
{
    double v = -1;
    for (int i = 0; i < (int)(600 * time_factor()); i++) {
        int st;
        char *r = get(env.d[0].http, "/metrics", &st);
        v = metric(body_of(r), "coalition_almanac_seq");
        free(r);
        if (v >= seq)
            break;
        sleep_ms(100);
    }
    return v;
}

static void metrics_show_the_coalition(void **state)
{
    (void)state;
    double first = wait_seq(2);
    assert_true(first >= 2);
    int st;
    char *r = get(env.d[0].http, "/metrics", &st);
    assert_int_equal(st, 200);
    assert_non_null(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4"));
    const char *b = body_of(r);
    static const char *const want[] = {
        "# TYPE mosaik_network_bytes_total counter\n",
        "# TYPE mosaik_discovery_rtt_seconds histogram\n",
        "mosaik_discovery_rtt_seconds_bucket{le=\"+Inf\"} ",
        "# TYPE mosaik_groups_term gauge\n",
        "# TYPE coalition_chronicle_length gauge\n",
        "coalition_module_retired{module=\"almanac\"} 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(b, want[i]))
            fail_msg("no \"%s\" in\n%s", want[i], b);
    assert_true(metric(b, "mosaik_discovery_peers") >= 2);
    assert_true(metric(b, "mosaik_network_links_open") >= 1);
    assert_true(metric(b, "mosaik_network_bytes_total{direction=\"in\"}") > 0);
    assert_true(metric(b, "coalition_atlas_cards") >= 0);
    free(r);

    /* Exactly one member leads the Almanac, as every member's own
     * is_leader says, and the seq keeps rising; the committee timed the
     * ticks it took. */
    int leaders = 0;
    double timed = 0;
    for (int i = 0; i < MENV_MEMBERS; i++) {
        r = get(env.d[i].http, "/metrics", &st);
        timed += sum_series(body_of(r), "mosaik_groups_command_seconds_count",
                            "name=\"almanac\"");
        const char *p = strstr(body_of(r), "mosaik_groups_is_leader{");
        for (; p; p = strstr(p + 1, "mosaik_groups_is_leader{")) {
            const char *nl = strchr(p, '\n');
            if (strstr(p, "name=\"almanac\"} 1") &&
                strstr(p, "name=\"almanac\"} 1") < nl)
                leaders++;
        }
        free(r);
    }
    assert_int_equal(leaders, 1);
    assert_true(timed >= 1);
    assert_true(wait_seq(first + 2) >= first + 2);
}

static void status_is_json_of_the_node(void **state)
{
    (void)state;
    int st;
    char *r = get(env.d[1].http, "/api/status", &st);
    assert_int_equal(st, 200);
    assert_non_null(strstr(r, "\r\nContent-Type: application/json"));
    json_error_t je;
    json_t *j = json_loads(body_of(r), 0, &je);
    if (!j)
        fail_msg("not JSON (%s): %s", je.text, r);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "node"),
                                          "peer_id")),
        env.d[1].peer_id);
    assert_true(json_array_size(json_object_get(j, "peers")) >= 2);
    json_t *mods = json_object_get(j, "modules");
    bool almanac = false;
    for (size_t i = 0; i < json_array_size(mods); i++) {
        json_t *m = json_array_get(mods, i);
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *role = json_string_value(json_object_get(m, "role"));
        assert_non_null(role);
        assert_true(json_integer_value(json_object_get(m, "term")) >= 1);
        if (strcmp(name, "almanac") != 0)
            continue;
        almanac = true;
        assert_true(json_integer_value(json_object_get(m, "seq")) >= 2);
        const char *leader = json_string_value(json_object_get(m, "leader"));
        assert_non_null(leader);
        bool member = false;
        for (int k = 0; k < MENV_MEMBERS; k++)
            member |= strcmp(leader, env.d[k].peer_id) == 0;
        assert_true(member);
    }
    assert_true(almanac);
    json_decref(j);
    free(r);

    r = get(env.d[1].http, "/", &st);
    assert_int_equal(st, 200);
    assert_non_null(strstr(r, "\r\nContent-Type: text/html"));
    assert_non_null(strstr(r, "/api/status"));
    free(r);
}

static void bad_requests_are_refused(void **state)
{
    (void)state;
    const char *a = env.d[2].http;
    char req[16384];
    int st;
    char *r;
    /* A header block past the bound. */
    int n = snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 200; i++)
        n += snprintf(req + n, sizeof req - (size_t)n,
                      "X-Filler-%03d: %060d\r\n", i, 0);
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    free(exchange(a, req, (size_t)n, &st));
    assert_int_equal(st, 431);
    /* A request line past its bound. */
    n = snprintf(req, sizeof req, "GET /%04000d HTTP/1.1\r\n", 0);
    free(exchange(a, req, (size_t)n, &st));
    assert_int_equal(st, 414);

    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
         405},
        {"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405},
        {"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404},
        {"GET /metrics/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404},
        {"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404},
        {"GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\n\r\n", 400},             /* no Host */
        {"GET /metrics HTTP/1.1\nHost: x\n\n", 400},        /* bare LF */
        {"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400}, /* space */
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
         "\r\n\r\n", 400},
        {"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /metrics HTTP/1.0\r\n\r\n", 200},
        {"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = exchange(a, cases[i].req, strlen(cases[i].req), &st);
        if (st != cases[i].status)
            fail_msg("%s: got %d, want %d:\n%s", cases[i].req, st,
                     cases[i].status, r);
        if (st == 405)
            assert_non_null(strstr(r, "\r\nAllow: GET\r\n"));
        free(r);
    }
}

static void idle_connections_do_not_lock_out(void **state)
{
    (void)state;
    const char *a = env.d[2].http;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 1200 && rl.rlim_max >= 1200) {
        rl.rlim_cur = 1200;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int want = rl.rlim_cur >= 1200 ? 1000 : (int)rl.rlim_cur - 100;
    int *fds = malloc((size_t)want * sizeof *fds), n = 0;
    for (int i = 0; i < want; i++) {
        int fd = dial(a, false);
        if (fd >= 0)
            fds[n++] = fd;
    }
    assert_true(n >= want * 9 / 10);
    /* Some of the flood send half a request and stop. */
    for (int i = 0; i < n; i += 10)
        send(fds[i], "GET /met", 8, MSG_NOSIGNAL);
    sleep_ms(200);
    int st;
    char *r = get(a, "/metrics", &st);
    assert_int_equal(st, 200);
    /* The cap held: not a thousand sockets in the daemon. */
    double conns = metric(body_of(r), "coalitiond_http_connections");
    assert_true(conns >= 1 && conns <= 64);
    free(r);
    /* Connections of the flood may still be landing (SYNs the full
     * backlog dropped are retried), each evicting the oldest idle one. */
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    /* An idle connection is closed at its deadline (5 s) by the daemon:
     * one opened once the flood is gone, that nothing else evicts. */
    int idle = dial(a, true);
    assert_true(idle >= 0);
    struct pollfd p = {idle, POLLIN, 0};
    char c;
    int budget = (int)(30000 * time_factor());
    ssize_t got = -1;
    while (budget > 0 && got < 0) {
        if (poll(&p, 1, 100) > 0)
            got = recv(idle, &c, 1, 0);
        else
            budget -= 100;
    }
    assert_int_equal(got, 0); /* the end, not a reset or an answer */
    close(idle);
    r = get(a, "/api/status", &st);
    assert_int_equal(st, 200);
    free(r);
}

/* Debian's promtool (package prometheus) parses the exposition the way
 * the Prometheus server will. */
static void promtool_accepts_the_metrics(void **state)
{
    (void)state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "promtool not installed (Debian package "
                        "prometheus): skipped\n");
        skip();
    }
    int st;
    char *r = get(env.d[0].http, "/metrics", &st);
    assert_int_equal(st, 200);
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.txt", env.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(body_of(r), f);
    fclose(f);
    free(r);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1",
             path, path);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat %s.out >&2", path);
        if (system(cmd) != 0)
            fprintf(stderr, "(no promtool output)\n");
        fail_msg("promtool check metrics failed");
    }
}

/* A free loopback port (bound, read, released: a race a test can bear). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* The one value of an instant query to the Prometheus API (-1 when there
 * is none yet). The server keeps connections open unless told. */
static double prom_query(const char *addr, const char *query)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /api/v1/query?query=%s HTTP/1.1\r\nHost: %s\r\n"
                     "Connection: close\r\n\r\n",
                     query, addr);
    /* Not listening yet (it is still starting): no value yet. */
    int probe = dial(addr, true);
    if (probe < 0)
        return -1;
    close(probe);
    int st;
    char *r = exchange(addr, req, (size_t)n, &st);
    double v = -1;
    json_t *j = st == 200 ? json_loads(body_of(r), 0, NULL) : NULL;
    json_t *res = json_object_get(json_object_get(j, "data"), "result");
    json_t *val = json_object_get(json_array_get(res, 0), "value");
    const char *s = json_string_value(json_array_get(val, 1));
    if (s)
        v = strtod(s, NULL);
    json_decref(j);
    free(r);
    return v;
}

/* A real Prometheus server (Debian's) scrapes the three members, and its
 * own API then shows every target up and the Almanac seq rising. */
static void prometheus_scrapes_the_members(void **state)
{
    (void)state;
    if (system("command -v prometheus >/dev/null 2>&1") != 0) {
        fprintf(stderr, "prometheus not installed: skipped\n");
        skip();
    }
    char cfg[600], data[600], listen[64], log[600];
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", env.dir);
    snprintf(data, sizeof data, "%s/prometheus-data", env.dir);
    snprintf(log, sizeof log, "%s/prometheus.log", env.dir);
    int port = free_port();
    assert_true(port > 0);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
               "scrape_configs:\n  - job_name: coalition\n"
               "    static_configs:\n      - targets: [");
    for (int i = 0; i < MENV_MEMBERS; i++)
        fprintf(f, "%s\"%s\"", i ? ", " : "", env.d[i].http);
    fprintf(f, "]\n");
    fclose(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char a1[700], a2[700], a3[100];
        snprintf(a1, sizeof a1, "--config.file=%s", cfg);
        snprintf(a2, sizeof a2, "--storage.tsdb.path=%s", data);
        snprintf(a3, sizeof a3, "--web.listen-address=%s", listen);
        execlp("prometheus", "prometheus", a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    double up = -1, seq1 = -1, seq2 = -1;
    for (int i = 0; i < (int)(300 * time_factor()) && up < MENV_MEMBERS;
         i++) {
        sleep_ms(100);
        up = prom_query(listen, "sum(up%7Bjob%3D%22coalition%22%7D)");
    }
    for (int i = 0; i < (int)(300 * time_factor()) && seq1 < 0; i++) {
        seq1 = prom_query(listen, "max(coalition_almanac_seq)");
        if (seq1 < 0)
            sleep_ms(100);
    }
    for (int i = 0; i < (int)(300 * time_factor()) && seq2 <= seq1; i++) {
        sleep_ms(200);
        seq2 = prom_query(listen, "max(coalition_almanac_seq)");
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (up != MENV_MEMBERS || seq1 < 0 || seq2 <= seq1) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "tail -n 20 %s >&2", log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no prometheus log)\n");
        fail_msg("prometheus: up %g of %d, almanac seq %g then %g", up,
                 MENV_MEMBERS, seq1, seq2);
    }
}

/* The tick counter and the Almanac leader as the page shows them, from
 * the DOM a headless chromium renders after letting the page poll. */
static bool render(const char *url, long *tick, char leader[16])
{
    char out[700], cmd[2400];
    snprintf(out, sizeof out, "%s/dom.html", env.dir);
    snprintf(cmd, sizeof cmd,
             "timeout 120 chromium --headless --no-sandbox --disable-gpu "
             "--user-data-dir=%s/chromium --virtual-time-budget=3000 "
             "--dump-dom %s > %s 2>/dev/null",
             env.dir, url, out);
    if (system(cmd) != 0)
        return false;
    FILE *f = fopen(out, "r");
    if (!f)
        return false;
    static char dom[1 << 20];
    size_t n = fread(dom, 1, sizeof dom - 1, f);
    fclose(f);
    dom[n] = '\0';
    const char *t = strstr(dom, "id=\"tick\"");
    const char *l = strstr(dom, "id=\"leader-almanac\">");
    if (!t || !(t = strchr(t, '>')) || !l)
        return false;
    *tick = strtol(t + 1, NULL, 10);
    l += strlen("id=\"leader-almanac\">");
    snprintf(leader, 16, "%.12s", l);
    return true;
}

static void dashboard_renders_in_chromium(void **state)
{
    (void)state;
    if (system("command -v chromium >/dev/null 2>&1") != 0) {
        fprintf(stderr, "chromium not installed (Debian package chromium, "
                        "sh scripts/deps.sh browser): skipped\n");
        skip();
    }
    char url[96], leader[16], leader2[16];
    long first = 0, second = 0;
    snprintf(url, sizeof url, "http://%s/", env.d[0].http);
    assert_true(render(url, &first, leader));
    assert_true(first >= 1);
    bool known = false;
    for (int k = 0; k < MENV_MEMBERS; k++)
        known |= strncmp(leader, env.d[k].peer_id, 12) == 0;
    if (!known)
        fail_msg("leader cell \"%s\" names no member", leader);
    /* Rising: a later load shows a later tick (the Almanac ticks every
     * cadence; waiting for it is not a speed assertion). */
    for (int i = 0; i < 20 && second <= first; i++) {
        sleep_ms(1000);
        assert_true(render(url, &second, leader2));
    }
    assert_true(second > first);
}

/* A daemon with metrics off (--no-metrics, or "metrics": false in its
 * node config) keeps no registry: /metrics says so with a 404 a scraper
 * marks down, not an empty page; /api/status says "metrics": false. A
 * "metrics" that is not a boolean is refused at start. */
static void metrics_off_answers_404(void **state)
{
    (void)state;
    char dir[256], cfg[300], bad[300];
    assert_non_null(daemon_tmpdir(dir, sizeof dir));
    snprintf(cfg, sizeof cfg, "%s/node.json", dir);
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("{\"metrics\": false}\n", f);
    fclose(f);
    assert_non_null(f = fopen(bad, "w"));
    fputs("{\"metrics\": \"no\"}\n", f);
    fclose(f);

    daemon_proc d[2];
    const char *flag[] = {"--no-metrics", "--http", "127.0.0.1:0", NULL};
    const char *file[] = {"--config", cfg, "--http", "127.0.0.1:0", NULL};
    const char *const *args[2] = {flag, file};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(daemon_prepare(&d[i], dir, i ? "file" : "flag"), 0);
        if (daemon_start(&d[i], args[i]) != 0) {
            daemon_dump_log(&d[i]);
            fail_msg("coalitiond with metrics off did not start");
        }
        int st;
        char *r = get(d[i].http, "/metrics", &st);
        assert_int_equal(st, 404);
        if (!strstr(body_of(r), "metrics are off on this node"))
            fail_msg("no reason in %s", r);
        assert_null(strstr(body_of(r), "# TYPE"));
        free(r);
        r = get(d[i].http, "/api/status", &st);
        assert_int_equal(st, 200);
        json_t *j = json_loads(body_of(r), 0, NULL);
        assert_non_null(j);
        assert_true(json_is_false(
            json_object_get(json_object_get(j, "node"), "metrics")));
        json_decref(j);
        free(r);
        assert_int_equal(daemon_signal_wait(&d[i], SIGTERM, 10000), 0);
    }

    /* The control: the coalition's members keep the default. */
    int st;
    char *r = get(env.d[0].http, "/api/status", &st);
    json_t *j = json_loads(body_of(r), 0, NULL);
    assert_non_null(j);
    assert_true(json_is_true(
        json_object_get(json_object_get(j, "node"), "metrics")));
    json_decref(j);
    free(r);

    daemon_proc b;
    const char *bad_args[] = {"--config", bad, NULL};
    assert_int_equal(daemon_prepare(&b, dir, "bad"), 0);
    assert_int_not_equal(daemon_start(&b, bad_args), 0);
    daemon_kill(&b);
    FILE *lf = fopen(b.log, "r");
    assert_non_null(lf);
    char logtext[4096] = "";
    size_t got = fread(logtext, 1, sizeof logtext - 1, lf);
    logtext[got] = '\0';
    fclose(lf);
    if (!strstr(logtext, "\"metrics\" must be true or false"))
        fail_msg("coalitiond took \"metrics\": \"no\": %s", logtext);
    daemon_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_show_the_coalition),
        cmocka_unit_test(status_is_json_of_the_node),
        cmocka_unit_test(bad_requests_are_refused),
        cmocka_unit_test(idle_connections_do_not_lock_out),
        cmocka_unit_test(promtool_accepts_the_metrics),
        cmocka_unit_test(prometheus_scrapes_the_members),
        cmocka_unit_test(dashboard_renders_in_chromium),
        cmocka_unit_test(metrics_off_answers_404),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
