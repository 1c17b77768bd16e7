/* `coalition almanac watch`: follow the coalition's clock. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "coalition/almanac.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "session.h"
#include "util.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: coalition almanac watch --coalition FILE --bootstrap P@H:P\n"
        "                               [--count N] [--timeout S] [--json]\n"
        "       coalition almanac retire --key FILE --reason TEXT ... "
        "(--help)\n"
        "\n"
        "Prints each Almanac tick as the committee commits it: its seq\n"
        "(strictly increasing, never skipped) and the members' advisory\n"
        "clock stamps. Stops after N ticks (default: run until Ctrl-C).\n"
        "--json prints one JSON object per tick.\n"
        "Exit status 3 when no Almanac member answered before the timeout.\n");
}

typedef struct watch_run {
    session s;
    uint64_t want, seen, last_seq, gaps;
    int status;
    bool json, stop;
} watch_run;

static void on_sigint(uv_signal_t *h, int sig)
{
    ((watch_run *)h->data)->stop = true;
}

static void print_tick(watch_run *w, const co_almanac_tick *t, uint64_t missed)
{
    char hex[MK_ID_HEX_LEN + 1];
    if (w->json) {
        printf("{\"seq\":%llu,\"missed\":%llu,\"stamps\":[",
               (unsigned long long)t->seq, (unsigned long long)missed);
        for (size_t i = 0; i < t->n_stamps; i++)
            printf("%s{\"member\":\"%s\",\"unix_ms\":%lld}", i ? "," : "",
                   mk_id_hex(&t->stamps[i].member, hex),
                   (long long)t->stamps[i].unix_ms);
        printf("]}\n");
    } else {
        time_t secs = (time_t)(t->stamps[0].unix_ms / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&secs, &tm);
        strftime(when, sizeof when, "%H:%M:%S", &tm);
        mk_id_hex(&t->stamps[0].member, hex);
        printf("tick %-8llu %s.%03lldZ  by %.12s…  %zu stamp%s%s\n",
               (unsigned long long)t->seq, when,
               (long long)(t->stamps[0].unix_ms % 1000), hex, t->n_stamps,
               t->n_stamps == 1 ? "" : "s",
               missed ? "  (resumed after a gap)" : "");
    }
    fflush(stdout);
}

static void on_tick(co_almanac_reader *r, int status, const co_almanac_tick *t,
                    uint64_t missed, void *data)
{
    watch_run *w = data;
    if (w->s.done)
        return; /* a burst may run past --count within one loop turn */
    w->status = status;
    if (status < 0) {
        if (status != MK_ECONNECT_TIMEOUT)
            w->s.done = true;
        return;
    }
    if (t->seq == w->last_seq)
        return; /* a stamp arriving for a tick already shown */
    if (w->last_seq && t->seq != w->last_seq + 1)
        w->gaps++;
    w->last_seq = t->seq;
    print_tick(w, t, missed);
    if (++w->seen >= w->want && w->want)
        w->s.done = true;
}

int cmd_almanac(int argc, char **argv)
{
    static const struct option opts[] = {
        SESSION_LONGOPTS,
        {"count", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && strcmp(argv[1], "retire") == 0) /* cmd_retire.c */
        return cmd_retire("almanac", argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "watch") != 0) {
        bool help = argc >= 2 && strcmp(argv[1], "--help") == 0;
        usage(help ? stdout : stderr);
        return help ? CLI_OK : CLI_USAGE;
    }
    watch_run w = {.status = 1};
    session_opts o = {0};
    int ch, r;
    optind = 1;
    while ((ch = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        if ((r = session_opt(&o, ch, optarg)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            continue;
        }
        if (ch == 'n') {
            if (util_parse_u64(optarg, &w.want) != 0 || w.want == 0)
                return cli_error(CLI_USAGE, "--count: '%s' is not a count",
                                 optarg);
        } else if (ch == 'h') {
            usage(stdout);
            return CLI_OK;
        } else {
            usage(stderr);
            return CLI_USAGE;
        }
    }
    w.json = o.json;
    int rc = session_open(&w.s, &o, true, false);
    if (rc)
        return rc;
    char err[CO_ERRMSG_SIZE];
    co_almanac_reader *rd;
    int64_t timeout = w.s.deadline - mk_mono_ms();
    rc = co_almanac_ticks(w.s.node, w.s.coalition, (uint32_t)timeout, on_tick,
                          &w, &rd, err);
    if (rc < 0) {
        session_close(&w.s);
        return cli_error(CLI_USAGE, "%s",
                         rc == CO_ENOTSHIPPED ? "the coalition ships no Almanac"
                                              : err);
    }
    uv_signal_t sigint;
    uv_signal_init(&w.s.loop, &sigint);
    sigint.data = &w;
    uv_signal_start(&sigint, on_sigint, SIGINT);
    /* Run until N ticks, Ctrl-C, retirement, or silence past the timeout
     * before the first tick. */
    int exit = CLI_OK;
    while (!w.s.done && !w.stop) {
        if (w.seen == 0 && mk_mono_ms() > w.s.deadline) {
            exit = cli_error(CLI_TIMEOUT,
                             "no Almanac member answered (ConnectTimeout)");
            break;
        }
        uv_run(&w.s.loop, UV_RUN_ONCE);
    }
    if (w.status == CO_ERETIRED)
        exit = cli_error(CLI_FAIL, "the Almanac retired");
    if (w.gaps)
        fprintf(stderr, "coalition: %llu gap(s) in the sequence\n",
                (unsigned long long)w.gaps);
    uv_close((uv_handle_t *)&sigint, NULL);
    co_almanac_close(rd, NULL, NULL);
    session_close(&w.s);
    return exit;
}
