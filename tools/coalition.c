/* `coalition`: the tool integrators, operators and contributors share.
 *
 * Each subcommand lives in tools/cmd_<name>.c and parses its own options;
 * this file only dispatches and prints the overview.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "coalition/version.h"
#include "mosaik/version.h"

static const cli_command COMMANDS[] = {
    {"id", "derive and print every fingerprint of a coalition config",
     cmd_id},
    {"keygen", "generate an Ed25519 key file and print its PeerId",
     cmd_keygen},
    {"ticket", "issue, verify or request (from the coalition's issuer) a "
               "ticket",
     cmd_ticket},
    {"net", "look at the network: net peers lists what discovery knows",
     cmd_net},
    {"atlas", "list or publish citizen cards in the coalition's Atlas",
     cmd_atlas},
    {"almanac", "watch the coalition's Almanac ticks", cmd_almanac},
    {"chronicle", "read and verify, or append to, the Chronicle",
     cmd_chronicle},
    {"compute", "list providers, submit a workload, or follow a request",
     cmd_compute},
    {"confluence", "a confluence's lag, stall mode, leader and last commit",
     cmd_confluence},
    {"demo", "run a live local coalition (the main job)", cmd_demo},
    {"group", "run a command, a query or a status request on a group",
     cmd_group},
    {"map", "a map group: put, get, del, list, watch", cmd_map},
    {"set", "a set group: add, remove, has, list, watch", cmd_set},
    {"vec", "a vec group: push, pop, get, set, len, list, watch", cmd_vec},
    {"cell", "a cell group: set, get, clear, watch", cmd_cell},
    {"once", "a once group: set, get, watch", cmd_once},
    {"pq", "a priority-queue group: push, pop-min, pop-max, peek, list, "
           "watch",
     cmd_pq},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: coalition <command> [options]\n"
            "\n"
            "A coalition is a named, fingerprinted composition of mosaik\n"
            "citizens. It offers services and compels nothing.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out,
            "\n"
            "Run 'coalition <command> --help' for a command's options;\n"
            "'coalition --version' prints the versions.\n"
            "Exit status: 0 ok, 1 the answer is no, 2 bad usage or input,\n"
            "3 nothing answered before the deadline.\n");
}

int cli_error(int status, const char *fmt, ...)
{
    va_list ap;
    fputs("coalition: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    /* The tool's own version, then the libraries' as they report
     * themselves: a tool built elsewhere may run on other libraries. */
    if (strcmp(argv[1], "--version") == 0) {
        printf("coalition %s (libcoalition %s, libmosaik %s)\n", CO_VERSION,
               co_version(), mk_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0)
            return COMMANDS[i].run(argc - 1, argv + 1);
    cli_error(CLI_USAGE, "unknown command '%s'", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
