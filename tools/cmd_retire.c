/* `coalition <module> retire`: a committee member commits
 * the module's retirement marker {reason, successor?} (SPEC §5). Readers
 * then report "retired" with the successor instead of timing out. The
 * first accepted marker stands: retirement is final.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "coalition/identity.h"
#include "coalition/module.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "session.h"

#define MAX_REASON 255 /* what a module's state keeps (co_retirement) */

static void usage(FILE *out, const char *module)
{
    fprintf(out,
            "usage: coalition %s retire --coalition FILE --bootstrap P@H:P\n"
            "                       --key FILE --reason TEXT "
            "[--successor ID]\n"
            "\n"
            "Retires the coalition's %s: --key must be a committee\n"
            "member's key. The marker is final; readers then report the\n"
            "retirement and the successor (an id: 64 hex, or a name that\n"
            "is hashed) instead of timing out.\n"
            "Exit status: 0 retired, 1 refused (not a member, or already\n"
            "retired), 2 bad usage, 3 no member answered.\n",
            module, module);
}

typedef struct retire_run {
    session s;
    int status;
} retire_run;

static void on_retired(int status, void *data)
{
    retire_run *r = data;
    r->status = status;
    r->s.done = true;
}

int cmd_retire(const char *module, int argc, char **argv)
{
    enum { O_REASON = 1, O_SUCCESSOR };
    static const struct option opts[] = {
        SESSION_LONGOPTS,
        {"reason", required_argument, NULL, O_REASON},
        {"successor", required_argument, NULL, O_SUCCESSOR},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int kind = co_module_kind_of(module);
    if (kind < 0)
        return cli_error(CLI_USAGE, "%s cannot be retired from here", module);
    session_opts o = {0};
    const char *reason = NULL, *successor = NULL;
    int ch, r;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((r = session_opt(&o, ch, optarg)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            continue;
        }
        switch (ch) {
        case O_REASON: reason = optarg; break;
        case O_SUCCESSOR: successor = optarg; break;
        case 'h': usage(stdout, module); return CLI_OK;
        default: usage(stderr, module); return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_error(CLI_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!reason || !reason[0] || strlen(reason) > MAX_REASON)
        return cli_error(CLI_USAGE, "--reason: 1 to %d bytes are required",
                         MAX_REASON);
    retire_run run = {.status = 1};
    int rc = session_open(&run.s, &o, true, true);
    if (rc)
        return rc;
    char err[CO_ERRMSG_SIZE];
    mk_id succ;
    if (successor)
        mk_id_from_str(&succ, successor);
    int64_t left = run.s.deadline - mk_mono_ms();
    rc = co_module_retire(run.s.node, run.s.coalition, (co_module_kind)kind,
                          reason, successor ? &succ : NULL, &run.s.key,
                          (uint32_t)(left > 0 ? left : 1), on_retired, &run,
                          err);
    if (rc == CO_ENOTSHIPPED || rc == CO_ECONFIG) {
        session_close(&run.s);
        return cli_error(CLI_USAGE, "%s",
                         rc == CO_ENOTSHIPPED ? "the coalition does not "
                                                "ship that module"
                                              : err);
    }
    if (rc < 0) {
        session_close(&run.s);
        return cli_error(CLI_FAIL, "cannot submit: %s", mk_strerror(rc));
    }
    /* The submission answers by its own deadline; let it. */
    run.s.deadline += 1000;
    session_run(&run.s);
    int exit = CLI_OK;
    if (!run.s.done || run.status == MK_ECONNECT_TIMEOUT)
        exit = cli_error(CLI_TIMEOUT, "no %s member answered "
                                      "(ConnectTimeout)",
                         module);
    else if (run.status == CO_ECONFIG)
        exit = cli_error(CLI_FAIL, "the %s refused the retirement (is --key "
                                   "a committee member's? is it already "
                                   "retired?)",
                         module);
    else if (run.status < 0)
        exit = cli_error(CLI_FAIL, "retire failed: %s",
                         co_strerror(run.status));
    else
        printf("retired the %s: %s\n", module, reason);
    session_close(&run.s);
    return exit;
}
