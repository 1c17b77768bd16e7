/* The `coalition` command-line tool: one file per subcommand. */
#ifndef CO_TOOLS_CLI_H
#define CO_TOOLS_CLI_H

#include <stdio.h>

/* Exit statuses every subcommand shares. */
enum {
    CLI_OK = 0,
    CLI_FAIL = 1,    /* the command ran and the answer is "no" */
    CLI_USAGE = 2,   /* bad arguments or bad input: nothing was done */
    CLI_TIMEOUT = 3, /* nothing answered before the deadline */
};

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

int cmd_id(int argc, char **argv);
int cmd_ticket(int argc, char **argv);
/* `coalition ticket request` (cmd_issuer.c). */
int cmd_ticket_request(int argc, char **argv);
/* `coalition <module> retire` (cmd_retire.c); `module` is a module name
 * (co_module_name), argv[0] is "retire". */
int cmd_retire(const char *module, int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_net(int argc, char **argv);
int cmd_atlas(int argc, char **argv);
int cmd_almanac(int argc, char **argv);
int cmd_chronicle(int argc, char **argv);
int cmd_compute(int argc, char **argv);
int cmd_confluence(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_group(int argc, char **argv);
/* `coalition map|set|vec|cell|once|pq VERB` (cmd_coll.c). */
int cmd_map(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_vec(int argc, char **argv);
int cmd_cell(int argc, char **argv);
int cmd_once(int argc, char **argv);
int cmd_pq(int argc, char **argv);

/* Prints "coalition: <msg>" to stderr; returns `status`. */
int cli_error(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
