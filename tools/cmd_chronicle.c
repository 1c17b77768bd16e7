/* `coalition chronicle log|append`: read and verify the coalition's
 * provenance log, or record an entry as a committee member. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chronicle_show.h"
#include "cli.h"
#include "coalition/chronicle.h"
#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "session.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: coalition chronicle log --coalition FILE --bootstrap P@H:P\n"
        "                               [--verify] [--export OUT] [--json]\n"
        "       coalition chronicle log --coalition FILE --file LOG --verify\n"
        "       coalition chronicle append --coalition FILE --bootstrap P@H:P\n"
        "                               --key FILE --kind K --subject S\n"
        "                               [--body TEXT]\n"
        "       coalition chronicle retire --key FILE --reason TEXT ... "
        "(--help)\n"
        "\n"
        "log: prints the entries, one line each (seq, kind, subject, what\n"
        "the body says; --json adds the decoded record); --verify recomputes every hash, checks\n"
        "every link and committee signature, names the first bad entry of\n"
        "a tampered log, and says which entries a head signed by a majority\n"
        "of the committee vouches for: exit 0 only when it covers them all,\n"
        "1 otherwise (tampered, empty, no majority-signed head, or entries\n"
        "after the head). --export writes the log, signatures included, as\n"
        "JSON lines and verifies it as --verify does; --file verifies such\n"
        "a file offline, against the committee the coalition file names.\n"
        "append: records an entry; --key must be a committee member's.\n");
}

/* Says exactly what the check vouches for and returns the exit status:
 * CLI_OK only when a majority-signed head covers every entry asked
 * about. */
static int report_check(const co_chronicle_check *c)
{
    if (!c->ok) {
        if (c->status == CO_ECHAIN)
            printf("TAMPERED: entry %llu: %s\n",
                   (unsigned long long)c->first_bad, c->why);
        else
            printf("NOT VERIFIED: %s\n", c->why);
        return CLI_FAIL;
    }
    printf("verified: entries 1..%llu of %llu, head signed by %zu of %zu "
           "committee members (%zu needed)\n",
           (unsigned long long)c->signed_head,
           (unsigned long long)c->entries, c->head_signers, c->committee,
           c->needed);
    if (c->complete)
        return CLI_OK;
    printf("NOT COVERED: %s\n", c->why);
    return CLI_FAIL;
}

typedef struct log_run {
    session s;
    int status;
} log_run;

static void on_log(co_chronicle_reader *r, int status, void *data)
{
    log_run *l = data;
    l->status = status;
    if (status == 0 || status == CO_ERETIRED)
        l->s.done = true;
}

static void print_entry(const co_chronicle_entry *e, bool json)
{
    char subject[MK_ID_HEX_LEN + 1], hash[MK_ID_HEX_LEN + 1], what[256];
    mk_id_hex(&e->subject, subject);
    mk_id_hex(&e->hash, hash);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
        json_object_set_new(o, "kind", json_string(e->kind));
        json_object_set_new(o, "subject", json_string(subject));
        json_object_set_new(o, "hash", json_string(hash));
        json_object_set_new(o, "body_bytes",
                            json_integer((json_int_t)e->body_len));
        json_object_set_new(o, "signatures",
                            json_integer((json_int_t)e->n_sigs));
        json_t *rec = chronicle_record_json(e);
        if (rec)
            json_object_set_new(o, "record", rec);
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line)
            printf("%s\n", line);
        free(line);
        json_decref(o);
        return;
    }
    chronicle_summary(e, what, sizeof what);
    printf("%-5llu %-16s %.16s…  %s  [%zu sig%s]\n",
           (unsigned long long)e->seq, e->kind, subject, what, e->n_sigs,
           e->n_sigs == 1 ? "" : "s");
}

static int verify_file(const session_opts *o, const char *file)
{
    char err[CO_ERRMSG_SIZE];
    co_config_file *f;
    if (!o->coalition)
        return cli_error(CLI_USAGE, "--coalition FILE is required");
    if (co_config_file_load(o->coalition, &f, err) < 0)
        return cli_error(CLI_USAGE, "%s", err);
    co_chronicle_check c;
    uint64_t n = 0;
    int rc = co_chronicle_verify_file(co_config_file_coalition(f), file, &c,
                                      &n, err);
    co_config_file_free(f);
    if (rc < 0)
        return cli_error(CLI_USAGE, "%s", err);
    return report_check(&c);
}

static int chronicle_log(session_opts *o, bool verify, const char *export,
                         const char *file)
{
    if (file)
        return verify_file(o, file);
    log_run l = {.status = 1};
    int rc = session_open(&l.s, o, true, false);
    if (rc)
        return rc;
    char err[CO_ERRMSG_SIZE];
    co_chronicle_reader *r;
    rc = co_chronicle_read(l.s.node, l.s.coalition,
                           (uint32_t)(l.s.deadline - mk_mono_ms()), on_log, &l,
                           &r, err);
    if (rc < 0) {
        session_close(&l.s);
        return cli_error(CLI_USAGE, "%s",
                         rc == CO_ENOTSHIPPED
                             ? "the coalition ships no Chronicle"
                             : err);
    }
    session_run(&l.s);
    int exit = CLI_OK;
    if (!l.s.done) {
        exit = cli_error(CLI_TIMEOUT,
                         "no Chronicle member answered (ConnectTimeout)");
    } else {
        for (size_t i = 0; i < co_chronicle_count(r); i++) {
            co_chronicle_entry e;
            co_chronicle_at(r, i, &e);
            print_entry(&e, o->json);
        }
        if (export) {
            FILE *out = fopen(export, "w");
            if (!out || co_chronicle_export(r, out) < 0)
                exit = cli_error(CLI_FAIL, "--export %s: cannot write",
                                 export);
            if (out)
                fclose(out);
        }
        /* An export is only worth keeping for what it can prove
         * offline, so it always says how much that is. */
        if (verify || export) {
            co_chronicle_check c;
            co_chronicle_verify(r, &c);
            int v = report_check(&c);
            if (exit == CLI_OK)
                exit = v;
        }
    }
    co_chronicle_close(r, NULL, NULL);
    session_close(&l.s);
    return exit;
}

typedef struct append_run {
    session s;
    int status;
} append_run;

static void on_appended(int status, void *data)
{
    append_run *a = data;
    a->status = status;
    a->s.done = true;
}

static int chronicle_append(session_opts *o, const char *kind,
                            const char *subject, const char *body)
{
    if (!kind || !subject)
        return cli_error(CLI_USAGE, "--kind and --subject are required");
    append_run a = {.status = 1};
    int rc = session_open(&a.s, o, true, true);
    if (rc)
        return rc;
    mk_id subj;
    mk_id_from_str(&subj, subject);
    char err[CO_ERRMSG_SIZE];
    rc = co_chronicle_append(a.s.node, a.s.coalition, kind, &subj,
                             body ? body : "", body ? strlen(body) : 0, false,
                             &a.s.key, (uint32_t)(a.s.deadline - mk_mono_ms()),
                             on_appended, &a, err);
    if (rc < 0) {
        session_close(&a.s);
        return cli_error(CLI_USAGE, "%s", err);
    }
    session_run(&a.s);
    int exit = CLI_OK;
    if (!a.s.done || a.status == MK_ECONNECT_TIMEOUT)
        exit = cli_error(CLI_TIMEOUT,
                         "no Chronicle member answered (ConnectTimeout)");
    else if (a.status < 0)
        exit = cli_error(CLI_FAIL, "the Chronicle refused the entry (is "
                                   "--key a committee member's?)");
    else
        printf("recorded %s\n", kind);
    session_close(&a.s);
    return exit;
}

int cmd_chronicle(int argc, char **argv)
{
    enum { O_VERIFY = 1, O_EXPORT, O_FILE, O_KIND, O_SUBJECT, O_BODY };
    static const struct option opts[] = {
        SESSION_LONGOPTS,
        {"verify", no_argument, NULL, O_VERIFY},
        {"export", required_argument, NULL, O_EXPORT},
        {"file", required_argument, NULL, O_FILE},
        {"kind", required_argument, NULL, O_KIND},
        {"subject", required_argument, NULL, O_SUBJECT},
        {"body", required_argument, NULL, O_BODY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "retire") == 0) /* cmd_retire.c */
        return cmd_retire("chronicle", argc - 1, argv + 1);
    session_opts o = {0};
    bool verify = false;
    const char *export = NULL, *file = NULL, *kind = NULL, *subject = NULL,
               *body = NULL;
    int ch, r;
    optind = 1;
    while ((ch = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        if ((r = session_opt(&o, ch, optarg)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            continue;
        }
        switch (ch) {
        case O_VERIFY: verify = true; break;
        case O_EXPORT: export = optarg; break;
        case O_FILE: file = optarg; break;
        case O_KIND: kind = optarg; break;
        case O_SUBJECT: subject = optarg; break;
        case O_BODY: body = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (strcmp(verb, "log") == 0)
        return chronicle_log(&o, verify, export, file);
    if (strcmp(verb, "append") == 0)
        return chronicle_append(&o, kind, subject, body);
    usage(stderr);
    return cli_error(CLI_USAGE, "unknown chronicle command '%s'", verb);
}
