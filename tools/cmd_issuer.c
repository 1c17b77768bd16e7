/* `coalition ticket request`: ask the coalition's ticket issuer for a
 * ticket for an identity (include/coalition/issuer.h).
 *
 * The ticket's subject is whoever the request link authenticates: with
 * --key that key's PeerId (the request goes over a private transport
 * holding it, so the node it belongs to may be running), without it the
 * CLI's throwaway identity, which only tests the issuer.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coalition/issuer.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "session.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: coalition ticket request --coalition FILE "
            "--bootstrap P@H:P\n"
            "                                [--key FILE] [--timeout D] "
            "[--json]\n"
            "\n"
            "Asks a ticket issuer of the coalition (a coalitiond whose node\n"
            "file has a \"ticket_issuer\" section) for a ticket for the\n"
            "identity in --key (default: a fresh key, useful only to test\n"
            "the issuer). The ticket is checked against the coalition's\n"
            "TICKETS_ROOT and issuer keys, then printed: the compact JWT,\n"
            "or with --json {token, sub, expires_ms}.\n"
            "\n"
            "Exit status: 0 printed, 1 the issuer refused (its reason on\n"
            "stderr), 2 bad usage or input, 3 no issuer answered.\n");
}

typedef struct request_run {
    session s;
    int status;
    char *token;
    int64_t expires_ms;
    char why[512];
} request_run;

static void on_ticket(co_ticket_req *req, int status, const char *token,
                      int64_t expires_ms, const char *why, void *data)
{
    request_run *r = data;
    r->status = status;
    r->expires_ms = expires_ms;
    if (token)
        r->token = strdup(token);
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
    r->s.done = true;
}

int cmd_ticket_request(int argc, char **argv)
{
    static const struct option opts[] = {
        SESSION_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    session_opts o = {0};
    int ch, r;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((r = session_opt(&o, ch, optarg)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            continue;
        }
        if (ch == 'h') {
            usage(stdout);
            return CLI_OK;
        }
        usage(stderr);
        return CLI_USAGE;
    }
    if (optind != argc)
        return cli_error(CLI_USAGE, "unexpected argument '%s'", argv[optind]);
    request_run run = {.status = 1};
    int rc = session_open(&run.s, &o, true, false);
    if (rc)
        return rc;
    char err[CO_ERRMSG_SIZE];
    int64_t left = run.s.deadline - mk_mono_ms();
    co_ticket_request_config rq = {
        .node = run.s.node,
        .coalition = run.s.coalition,
        .timeout_ms = (uint32_t)(left > 0 ? left : 1),
        .as = o.key ? &run.s.key : NULL,
    };
    co_ticket_req *req;
    rc = co_ticket_request(&rq, on_ticket, &run, &req, err);
    if (rc < 0) {
        session_close(&run.s);
        return cli_error(CLI_USAGE, "%s",
                         rc == CO_ENOTSHIPPED
                             ? "the coalition has no ticket issuer"
                             : err);
    }
    /* The request has its own deadline; give it a moment past ours to
     * report it rather than cancelling it unheard. */
    run.s.deadline += 1000;
    if (!session_run(&run.s))
        co_ticket_request_cancel(req);
    int exit = CLI_OK;
    if (run.status == 0 && run.token) {
        char hex[MK_ID_HEX_LEN + 1];
        if (o.json)
            printf("{\"token\":\"%s\",\"sub\":\"%s\",\"expires_ms\":%lld}\n",
                   run.token,
                   mk_id_hex(o.key ? &run.s.key.pub : mk_node_id(run.s.node),
                             hex),
                   (long long)run.expires_ms);
        else
            puts(run.token);
    } else if (run.status == MK_ENOT_ALLOWED) {
        exit = cli_error(CLI_FAIL, "%s", run.why);
    } else if (run.status == MK_ECONNECT_TIMEOUT ||
               run.status == MK_ECANCELED) {
        exit = cli_error(CLI_TIMEOUT, "no ticket issuer answered "
                                      "(ConnectTimeout): %s",
                         run.why);
    } else {
        exit = cli_error(CLI_FAIL, "ticket request failed: %s%s%s",
                         mk_strerror(run.status), run.why[0] ? ": " : "",
                         run.why);
    }
    free(run.token);
    session_close(&run.s);
    return exit;
}
