/* `coalition ticket issue|verify`: EdDSA JWT tickets by hand.
 *
 * issue signs the token that a coalition's ticket issuer hands to a peer
 * (SPEC §4: iss is the hex of TICKETS_ROOT). verify runs the same
 * validator that components run (include/mosaik/jwt.h), so "verify says
 * yes" means "a component that recognises this root would accept it".
 */
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mosaik/error.h"
#include "mosaik/jwt.h"
#include "mosaik/key.h"

#define MAX_PUBKEYS 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: coalition ticket issue  --key FILE --issuer ROOT "
            "--sub PEERID --ttl DURATION\n"
            "                               [--aud A] [--nbf WHEN] "
            "[--jti ID]\n"
            "       coalition ticket verify --issuer ROOT --pubkey HEX "
            "[--pubkey HEX]...\n"
            "                               [--sub PEERID] [--aud A] "
            "[TOKEN|-]\n"
            "       coalition ticket request --coalition FILE "
            "--bootstrap P@H:P [--key FILE]\n"
            "\n"
            "Tickets are EdDSA (Ed25519) JWTs whose iss is the 64-hex id\n"
            "of an issuer root, such as a coalition's TICKETS_ROOT.\n"
            "Run 'coalition ticket issue --help' or\n"
            "'coalition ticket verify --help' for details.\n");
}

static void issue_usage(FILE *out)
{
    fprintf(out,
            "usage: coalition ticket issue --key FILE --issuer ROOT "
            "--sub PEERID\n"
            "                              --ttl DURATION [--aud A] "
            "[--nbf WHEN] [--jti ID]\n"
            "\n"
            "Prints a compact JWT on stdout, signed with the Ed25519 key in\n"
            "FILE (see 'coalition keygen'): header {\"alg\":\"EdDSA\",\n"
            "\"typ\":\"JWT\"}, claims iss, sub, aud, iat, nbf, exp, jti.\n"
            "\n"
            "  --key FILE      signing key (PKCS#8 PEM, mode 0600; a key\n"
            "                  readable by group or others is refused)\n"
            "  --issuer ROOT   the issuer root: 64 hex, or a name passed\n"
            "                  through id(); iss is its 64 lowercase hex\n"
            "  --sub PEERID    the peer the ticket is for (64 hex)\n"
            "  --ttl DURATION  lifetime from now: N, Ns, Nm, Nh or Nd\n"
            "                  (seconds, minutes, hours, days)\n"
            "  --aud A         audience claim\n"
            "  --nbf WHEN      not valid before WHEN: Unix seconds, or\n"
            "                  +DURATION from now\n"
            "  --jti ID        token id claim\n"
            "  --help          this text\n"
            "\n"
            "Exit status: 0 printed, 2 bad usage or input (the message names\n"
            "the argument).\n");
}

static void verify_usage(FILE *out)
{
    fprintf(out,
            "usage: coalition ticket verify --issuer ROOT --pubkey HEX "
            "[--pubkey HEX]...\n"
            "                               [--sub PEERID] [--aud A] "
            "[TOKEN|-]\n"
            "\n"
            "Validates TOKEN (or one read from stdin when TOKEN is '-' or\n"
            "absent) as a ticket of the issuer root ROOT and prints its\n"
            "claims as JSON.\n"
            "\n"
            "  --issuer ROOT   iss must be ROOT's 64 hex (ROOT: 64 hex, or a\n"
            "                  name passed through id())\n"
            "  --pubkey HEX    an issuer public key (64 hex); repeat for key\n"
            "                  rotation, any one may have signed\n"
            "  --sub PEERID    sub must be this peer (64 hex); without it sub\n"
            "                  is not checked\n"
            "  --aud A         aud must be A\n"
            "  --help          this text\n"
            "\n"
            "Exit status: 0 valid, 1 invalid (the reason on stderr), 2 bad\n"
            "usage.\n");
}

/* Digits only, at most MK_JWT_MAX_TIME; -1 for anything else. */
static int parse_seconds(const char *s, const char **end, int64_t *out)
{
    int64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (MK_JWT_MAX_TIME - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    *end = p;
    *out = v;
    return 0;
}

/* A positive number of seconds: digits and an optional s, m, h or d. */
static int parse_duration(const char *s, int64_t *out)
{
    int64_t v, unit = 1;
    const char *p;
    if (parse_seconds(s, &p, &v) < 0)
        return -1;
    switch (*p) {
    case '\0':
        break;
    case 's':
        p++;
        break;
    case 'm':
        unit = 60, p++;
        break;
    case 'h':
        unit = 3600, p++;
        break;
    case 'd':
        unit = 86400, p++;
        break;
    default:
        return -1;
    }
    if (*p != '\0' || v == 0 || v > MK_JWT_MAX_TIME / unit)
        return -1;
    *out = v * unit;
    return 0;
}

/* --nbf: "+DURATION" from `now`, or Unix seconds. */
static int parse_when(const char *s, int64_t now, int64_t *out)
{
    int64_t v;
    const char *end;
    if (s[0] == '+') {
        if (parse_duration(s + 1, &v) < 0 || v > MK_JWT_MAX_TIME - now)
            return -1;
        *out = now + v;
        return 0;
    }
    if (parse_seconds(s, &end, &v) < 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* A 64-hex peer id, or -1. */
static int parse_peer(const char *s, mk_peer_id *out)
{
    return mk_id_from_hex(out, s, strlen(s)) == 0 ? 0 : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reports a getopt failure; `argv[optind - 1]` is the offending word. */
static int bad_option(int ch, char **argv)
{
    if (ch == ':')
        return cli_error(CLI_USAGE, "%s needs a value", argv[optind - 1]);
    return cli_error(CLI_USAGE, "unknown option %s", argv[optind - 1]);
}

static int ticket_issue(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"issuer", required_argument, NULL, 'i'},
        {"sub", required_argument, NULL, 's'},
        {"ttl", required_argument, NULL, 't'},
        {"aud", required_argument, NULL, 'a'},
        {"nbf", required_argument, NULL, 'n'},
        {"jti", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *issuer = NULL, *sub = NULL, *ttl = NULL,
               *aud = NULL, *nbf = NULL, *jti = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'k': key = optarg; break;
        case 'i': issuer = optarg; break;
        case 's': sub = optarg; break;
        case 't': ttl = optarg; break;
        case 'a': aud = optarg; break;
        case 'n': nbf = optarg; break;
        case 'j': jti = optarg; break;
        case 'h':
            issue_usage(stdout);
            return CLI_OK;
        default:
            bad_option(ch, argv);
            issue_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_error(CLI_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!key)
        return cli_error(CLI_USAGE, "--key FILE is required");
    if (!issuer)
        return cli_error(CLI_USAGE, "--issuer ROOT is required");
    if (!sub)
        return cli_error(CLI_USAGE, "--sub PEERID is required");
    if (!ttl)
        return cli_error(CLI_USAGE, "--ttl DURATION is required");

    mk_peer_id peer;
    if (parse_peer(sub, &peer) < 0)
        return cli_error(CLI_USAGE,
                         "--sub: '%s' is not a peer id (64 hex characters)",
                         sub);
    if (!issuer[0])
        return cli_error(CLI_USAGE, "--issuer: empty");
    int64_t life;
    if (parse_duration(ttl, &life) < 0)
        return cli_error(CLI_USAGE,
                         "--ttl: '%s' is not a duration (N, Ns, Nm, Nh or "
                         "Nd, above zero)",
                         ttl);
    int64_t now = now_ms() / 1000;
    if (life > MK_JWT_MAX_TIME - now)
        return cli_error(CLI_USAGE, "--ttl: '%s' is too long", ttl);

    mk_jwt_claims c = {
        .sub = NULL, /* the peer's lowercase hex */
        .aud = aud,
        .jti = jti,
        .iat = now,
        .exp = now + life,
    };
    if (nbf && parse_when(nbf, now, &c.nbf) < 0)
        return cli_error(CLI_USAGE,
                         "--nbf: '%s' is neither Unix seconds nor +DURATION",
                         nbf);
    if (nbf && c.nbf >= c.exp)
        return cli_error(CLI_USAGE,
                         "--nbf: '%s' is not before the expiry; the ticket "
                         "would never be valid",
                         nbf);

    mk_id root;
    char root_hex[MK_ID_HEX_LEN + 1];
    mk_id_from_str(&root, issuer);
    c.iss = mk_id_hex(&root, root_hex);

    char err[MK_ERRMSG_SIZE];
    mk_keypair kp;
    if (mk_keypair_load(&kp, key, err) < 0)
        return cli_error(CLI_USAGE, "--key: %s", err);

    char *token;
    int rc = mk_jwt_issue(&kp, &peer, &c, &token, err);
    if (rc < 0)
        return cli_error(CLI_USAGE, "cannot issue: %s", err);
    puts(token);
    free(token);
    return CLI_OK;
}

/* Reads one token from stdin without its trailing newline. Returns its
 * length, or -1 when it is longer than any valid token. */
static long read_token(char *buf, size_t cap)
{
    size_t n = 0, got;
    while (n < cap && (got = fread(buf + n, 1, cap - n, stdin)) > 0)
        n += got;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    return n > MK_JWT_MAX_LEN ? -1 : (long)n;
}

static int ticket_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"issuer", required_argument, NULL, 'i'},
        {"pubkey", required_argument, NULL, 'p'},
        {"sub", required_argument, NULL, 's'},
        {"aud", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *issuer = NULL, *sub = NULL, *aud = NULL;
    mk_peer_id keys[MAX_PUBKEYS];
    size_t n_keys = 0;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': issuer = optarg; break;
        case 's': sub = optarg; break;
        case 'a': aud = optarg; break;
        case 'p':
            if (n_keys == MAX_PUBKEYS)
                return cli_error(CLI_USAGE, "--pubkey: more than %d keys",
                                 MAX_PUBKEYS);
            if (parse_peer(optarg, &keys[n_keys]) < 0)
                return cli_error(CLI_USAGE,
                                 "--pubkey: '%s' is not a public key (64 "
                                 "hex characters)",
                                 optarg);
            n_keys++;
            break;
        case 'h':
            verify_usage(stdout);
            return CLI_OK;
        default:
            bad_option(ch, argv);
            verify_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (argc - optind > 1)
        return cli_error(CLI_USAGE, "unexpected argument '%s'",
                         argv[optind + 1]);
    if (!issuer)
        return cli_error(CLI_USAGE, "--issuer ROOT is required");
    if (!issuer[0])
        return cli_error(CLI_USAGE, "--issuer: empty");
    if (n_keys == 0)
        return cli_error(CLI_USAGE, "--pubkey HEX is required");
    mk_peer_id peer;
    if (sub && parse_peer(sub, &peer) < 0)
        return cli_error(CLI_USAGE,
                         "--sub: '%s' is not a peer id (64 hex characters)",
                         sub);
    if (aud && (!aud[0] || strchr(aud, ',')))
        return cli_error(CLI_USAGE, "--aud: '%s' is empty or contains ','",
                         aud);

    mk_id root;
    char root_hex[MK_ID_HEX_LEN + 1];
    mk_id_from_str(&root, issuer);
    const char *issuers[] = {mk_id_hex(&root, root_hex)};
    const char *audiences[] = {aud};
    mk_jwt_config cfg = {
        .keys = keys,
        .n_keys = n_keys,
        .issuers = issuers,
        .n_issuers = 1,
        .audiences = audiences,
        .n_audiences = aud ? 1 : 0,
    };
    char err[MK_ERRMSG_SIZE];
    struct mk_ticket_validator v;
    if (mk_jwt_validator_init(&v, &cfg, err) < 0)
        return cli_error(CLI_USAGE, "%s", err);

    const char *token;
    size_t len;
    char *buf = NULL;
    if (optind == argc || strcmp(argv[optind], "-") == 0) {
        /* room for a token of the maximum length, "\r\n" and one byte
         * more, which tells a too-long token from a maximal one */
        buf = malloc(MK_JWT_MAX_LEN + 3);
        long n = buf ? read_token(buf, MK_JWT_MAX_LEN + 3) : -2;
        if (n < 0) {
            free(buf);
            mk_ticket_validator_free(&v);
            return n == -2 ? cli_error(CLI_FAIL, "out of memory")
                           : cli_error(CLI_FAIL,
                                       "invalid ticket: longer than %d "
                                       "bytes",
                                       MK_JWT_MAX_LEN);
        }
        token = buf;
        len = (size_t)n;
    } else {
        token = argv[optind];
        len = strlen(token);
    }

    char *claims = NULL;
    int64_t expires;
    int rc = mk_jwt_verify(&v, token, len, sub ? &peer : NULL, now_ms(),
                           &expires, &claims, err);
    mk_ticket_validator_free(&v);
    free(buf);
    if (rc < 0)
        return cli_error(CLI_FAIL, "invalid ticket: %s", err);

    json_t *j = json_loads(claims, 0, NULL);
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    free(claims);
    if (!text)
        return cli_error(CLI_FAIL, "out of memory");
    puts(text);
    free(text);
    if (!sub)
        fprintf(stderr, "coalition: note: sub was not checked (no --sub)\n");
    return CLI_OK;
}

int cmd_ticket(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "issue") == 0)
        return ticket_issue(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return ticket_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "request") == 0) /* cmd_issuer.c */
        return cmd_ticket_request(argc - 1, argv + 1);
    cli_error(CLI_USAGE, "unknown ticket command '%s'", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
