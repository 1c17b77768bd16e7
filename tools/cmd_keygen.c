/* `coalition keygen --out FILE`: a new Ed25519 identity (node key or ticket
 * signing key), written once and never replaced. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "mosaik/error.h"
#include "mosaik/key.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: coalition keygen --out FILE [--seed TEXT]\n"
            "\n"
            "Generates a fresh Ed25519 key pair, writes the secret key to\n"
            "FILE as PKCS#8 PEM with mode 0600, and prints the public key\n"
            "(the PeerId, 64 hex characters) on stdout.\n"
            "\n"
            "  --out FILE  where to write the key; an existing FILE is never\n"
            "              replaced (that would silently change an identity)\n"
            "  --seed TEXT derive the key from id(TEXT) instead of fresh\n"
            "              randomness: reproducible identities for demos\n"
            "              and tests. Anyone who knows TEXT has the key.\n"
            "  --help      this text\n"
            "\n"
            "Exit status: 0 written, 1 could not write FILE, 2 bad usage or\n"
            "FILE already exists.\n");
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *seed = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:s:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'o':
            out = optarg;
            break;
        case 's':
            seed = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        case ':':
            return cli_error(CLI_USAGE, "%s needs a value", argv[optind - 1]);
        default:
            cli_error(CLI_USAGE, "unknown option %s", argv[optind - 1]);
            usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_error(CLI_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!out || !out[0])
        return cli_error(CLI_USAGE, "--out FILE is required");

    mk_keypair kp;
    if (seed) {
        mk_id s;
        mk_id_from_str(&s, seed);
        mk_keypair_from_seed(&kp, s.b);
    } else if (mk_keypair_generate(&kp) < 0) {
        return cli_error(CLI_FAIL, "no randomness available");
    }
    char err[MK_ERRMSG_SIZE];
    int rc = mk_keypair_save(&kp, out, err);
    if (rc < 0)
        return cli_error(rc == MK_EEXIST ? CLI_USAGE : CLI_FAIL, "--out %s",
                         err);
    char hex[MK_ID_HEX_LEN + 1];
    puts(mk_id_hex(&kp.pub, hex));
    return CLI_OK;
}
