/* JSON coalition configs: strict loading with errors that name the file,
 * line, key path and problem; writing back; atomic saves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coalition/config_file.h"
#include "coalition/identity.h"
#include "testutil.h"

typedef struct bad_case {
    const char *what;
    const char *json;
    const char *message; /* the exact message after "bad.json:" */
} bad_case;

/* Each config is wrong in exactly one way; lines are counted from 1. */
static const bad_case BAD[] = {
    {"not JSON", "{\"name\": \"x\",\n  \"lattices\": [\n}",
     "3:1: not valid JSON: unexpected token near '}'"},
    {"empty file", "", "1:1: not valid JSON: '[' or '{' expected near end "
                       "of file"},
    {"top level is an array", "[]",
     "1: wrong type: a coalition config is a JSON object, found an array"},
    {"missing name", "{\n  \"lattices\": []\n}",
     "1: name: missing field \"name\""},
    {"name of the wrong type", "{\n  \"name\": 7\n}",
     "2: name: wrong type: expected a string, found an integer"},
    {"empty name", "{\"name\": \"\"}", "1: name: must not be empty"},
    {"unknown top-level key", "{\"name\": \"x\",\n \"lattice\": []}",
     "2: lattice: unknown key \"lattice\" (allowed: name, lattices, "
     "organisms, confluences, ticket_issuer)"},
    {"duplicate key", "{\"name\": \"x\",\n \"name\": \"y\"}",
     "2:7: not valid JSON: duplicate object key near '\"name\"'"},
    {"lattices not an array", "{\"name\": \"x\", \"lattices\": {}}",
     "1: lattices: wrong type: expected an array, found an object"},
    {"lattice without name",
     "{\"name\": \"x\",\n \"lattices\": [\n  {\"chain_id\": 1}]}",
     "3: lattices[0].name: missing field \"name\""},
    {"chain id as a string",
     "{\"name\": \"x\", \"lattices\": [\n {\"name\": \"l\",\n  \"chain_id\": "
     "\"1\"}]}",
     "3: lattices[0].chain_id: wrong type: expected an integer, found a "
     "string"},
    {"negative chain id",
     "{\"name\": \"x\", \"lattices\": [{\"name\": \"l\", \"chain_id\": -1}]}",
     "1: lattices[0].chain_id: a chain id is not negative"},
    {"chain id and stable id",
     "{\"name\": \"x\", \"lattices\": [{\"name\": \"l\", \"chain_id\": 1, "
     "\"stable_id\": \"s\"}]}",
     "1: lattices[0].chain_id: give chain_id or stable_id, not both"},
    {"neither chain id nor stable id",
     "{\"name\": \"x\", \"lattices\": [\n\n {\"name\": \"l\"}]}",
     "3: lattices[0]: missing field \"chain_id\" (or \"stable_id\")"},
    {"partial lattice fingerprints",
     "{\"name\": \"x\", \"lattices\": [{\"name\": \"l\", \"chain_id\": 1,\n"
     " \"fingerprints\": {\"zipnet\": \"z\"}}]}",
     "2: lattices[0].fingerprints.unseal: missing field \"unseal\""},
    {"organism without role",
     "{\"name\": \"x\", \"organisms\": [{\"instance\": \"i\"}]}",
     "1: organisms[0].role: missing field \"role\""},
    {"organism with instance and stable id",
     "{\"name\": \"x\", \"organisms\": [{\"role\": \"r\", \"instance\": "
     "\"i\",\n \"stable_id\": \"s\"}]}",
     "2: organisms[0].stable_id: give instance or stable_id, not both"},
    {"organism network without instance",
     "{\"name\": \"x\", \"organisms\": [{\"role\": \"r\", \"stable_id\": "
     "\"s\", \"network\": \"n\"}]}",
     "1: organisms[0].network: network only applies with instance"},
    {"duplicate citizen",
     "{\"name\": \"x\", \"lattices\": [\n {\"name\": \"l\", \"chain_id\": "
     "1},\n {\"name\": \"l\", \"chain_id\": 2}]}",
     "3: lattices[1]: duplicate citizen: \"l\" is declared twice"},
    {"reference to an undeclared citizen",
     "{\"name\": \"x\", \"confluences\": [{\"name\": \"c\",\n \"lattices\": "
     "[\"ethereum.mainnet\"], \"content\": \"c\",\n \"acl\": {\"issuers\": "
     "[], \"mrtds\": []}}]}",
     "2: confluences[0].lattices[0]: reference to an undeclared citizen: no "
     "lattice named \"ethereum.mainnet\" in this file"},
    {"reference of the wrong kind",
     "{\"name\": \"x\", \"organisms\": [{\"role\": \"r\", \"instance\": "
     "\"feed\"}],\n \"confluences\": [{\"name\": \"c\", \"lattices\": "
     "[\"feed\"],\n \"content\": \"c\", \"acl\": {\"issuers\": [], "
     "\"mrtds\": []}}]}",
     "2: confluences[0].lattices[0]: \"feed\" is an organism, list it under "
     "\"organisms\""},
    {"confluence without content",
     "{\"name\": \"x\", \"confluences\": [\n {\"name\": \"c\", \"acl\": "
     "{\"issuers\": [], \"mrtds\": []}}]}",
     "2: confluences[0].content: missing field \"content\""},
    {"confluence without acl",
     "{\"name\": \"x\", \"confluences\": [\n {\"name\": \"c\", \"content\": "
     "\"c\"}]}",
     "2: confluences[0].acl: missing field \"acl\""},
    {"unknown confluence key",
     "{\"name\": \"x\", \"confluences\": [{\"name\": \"c\", \"content\": "
     "\"c\",\n \"acl\": {\"issuers\": [], \"mrtds\": []},\n \"committee\": "
     "3}]}",
     "3: confluences[0].committee: unknown key \"committee\" (allowed: "
     "name, lattices, organisms, content, acl)"},
    {"bad MR_TD hex",
     "{\"name\": \"x\", \"confluences\": [{\"name\": \"c\", \"content\": "
     "\"c\",\n \"acl\": {\"issuers\": [],\n  \"mrtds\": [\"00zz\"]}}]}",
     "3: confluences[0].acl.mrtds[0]: bad hex: an MR_TD is exactly 96 hex "
     "characters (48 bytes)"},
    {"issuers not a list",
     "{\"name\": \"x\", \"confluences\": [{\"name\": \"c\", \"content\": "
     "\"c\",\n \"acl\": {\"issuers\": \"k\", \"mrtds\": []}}]}",
     "2: confluences[0].acl.issuers: wrong type: expected an array, found a "
     "string"},
    {"two modules of one kind",
     "{\"name\": \"x\", \"confluences\": [\n {\"name\": \"atlas\", "
     "\"content\": \"a\", \"acl\": {\"issuers\": [], \"mrtds\": []}},\n "
     "{\"name\": \"atlas\", \"content\": \"b\", \"acl\": {\"issuers\": [], "
     "\"mrtds\": []}}]}",
     "3: confluences[1].name: two modules of one kind: \"atlas\" is already "
     "confluences[0]"},
    {"duplicate confluence",
     "{\"name\": \"x\", \"confluences\": [\n {\"name\": \"r\", \"content\": "
     "\"a\", \"acl\": {\"issuers\": [], \"mrtds\": []}},\n {\"name\": "
     "\"r\", \"content\": \"a\", \"acl\": {\"issuers\": [], \"mrtds\": "
     "[]}}]}",
     "3: confluences[1]: duplicate confluence: same fingerprint as "
     "confluences[0]"},
    {"reference object without stable id",
     "{\"name\": \"x\", \"confluences\": [{\"name\": \"c\", \"content\": "
     "\"c\",\n \"organisms\": [{\"content_hash\": \"h\"}],\n \"acl\": "
     "{\"issuers\": [], \"mrtds\": []}}]}",
     "2: confluences[0].organisms[0].stable_id: missing field "
     "\"stable_id\""},
    {"reference of the wrong type",
     "{\"name\": \"x\", \"confluences\": [{\"name\": \"c\", \"content\": "
     "\"c\",\n \"organisms\": [17], \"acl\": {\"issuers\": [], \"mrtds\": "
     "[]}}]}",
     "2: confluences[0].organisms[0]: wrong type: expected a citizen name "
     "or an object with stable_id, found an integer"},
    {"ticket issuer without name",
     "{\"name\": \"x\",\n \"ticket_issuer\": {\"acl\": {\"issuers\": [], "
     "\"mrtds\": []}}}",
     "2: ticket_issuer.name: missing field \"name\""},
    {"ticket issuer of the wrong type",
     "{\"name\": \"x\", \"ticket_issuer\": true}",
     "1: ticket_issuer: wrong type: expected an object or null, found a "
     "boolean"},
    {"NUL inside a string", "{\"name\": \"a\\u0000b\"}",
     "1:"},
};

static void malformed_configs_are_named(void **state)
{
    char err[CO_ERRMSG_SIZE], want[CO_ERRMSG_SIZE];
    size_t n = sizeof BAD / sizeof BAD[0];
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        co_config_file *f = (co_config_file *)&err; /* must become NULL */
        int rc = co_config_file_parse(BAD[i].json, strlen(BAD[i].json),
                                      "bad.json", &f, err);
        if (rc != CO_ECONFIG || f != NULL)
            fail_msg("case \"%s\": accepted (rc %d)", BAD[i].what, rc);
        if (!BAD[i].message)
            continue;
        snprintf(want, sizeof want, "bad.json:%s", BAD[i].message);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("case \"%s\":\n got  %s\n want %s", BAD[i].what, err,
                     want);
    }
}

static void duplicate_stable_id_names_the_id(void **state)
{
    char err[CO_ERRMSG_SIZE], json[512], hex[MK_ID_HEX_LEN + 1];
    co_organism_ref o = {.role = "r", .instance = "i"};
    mk_id s;
    co_organism_stable_id(&o, &s, NULL);
    snprintf(json, sizeof json,
             "{\"name\": \"x\", \"organisms\": [\n {\"role\": \"r\", "
             "\"instance\": \"i\"},\n {\"role\": \"q\", \"stable_id\": "
             "\"%s\"}]}",
             mk_id_hex(&s, hex));
    co_config_file *f;
    assert_int_equal(co_config_file_parse(json, strlen(json), "bad.json", &f,
                                          err),
                     CO_ECONFIG);
    char want[256];
    snprintf(want, sizeof want,
             "bad.json:3: organisms[1]: duplicate citizen: stable id %s is "
             "declared twice",
             hex);
    assert_string_equal(err, want);
}

static void missing_file_is_named(void **state)
{
    char err[CO_ERRMSG_SIZE];
    co_config_file *f;
    assert_int_equal(co_config_file_load("/nonexistent/c.json", &f, err),
                     MK_ENOENT);
    assert_null(f);
    assert_string_equal(err, "/nonexistent/c.json: cannot open: no such file "
                             "or directory");
}

/* load → write → load keeps every fingerprint, and writing is stable. */
static void write_back_round_trips(void **state)
{
    char err[CO_ERRMSG_SIZE];
    co_config_file *a, *b;
    int rc = co_config_file_load(tu_vector_path("ethereum.superchain.json"),
                                 &a, err);
    if (rc < 0)
        fail_msg("%s", err);
    char *text1, *text2;
    assert_int_equal(co_config_to_json(co_config_file_coalition(a), &text1,
                                       err),
                     0);
    assert_int_equal(co_config_file_parse(text1, strlen(text1), "rt.json",
                                          &b, err),
                     0);
    assert_int_equal(co_config_to_json(co_config_file_coalition(b), &text2,
                                       err),
                     0);
    assert_string_equal(text1, text2);

    mk_id x, y;
    co_coalition_id(co_config_file_coalition(a), &x, NULL);
    co_coalition_id(co_config_file_coalition(b), &y, NULL);
    assert_true(mk_id_eq(&x, &y));
    /* Names stay names: the reference is written as the citizen's name. */
    assert_non_null(strstr(text1, "\"ethereum.mainnet\""));
    free(text1);
    free(text2);
    co_config_file_free(a);
    co_config_file_free(b);
}

/* A compiled config with pinned pointer references and a citizen outside
 * the coalition writes to JSON that reloads to the same fingerprints. */
static void compiled_config_writes_explicit_references(void **state)
{
    static const co_organism_ref FEED = {.role = "oracle", .instance = "f",
                                         .content_hash = "v1"};
    static const co_lattice_config OUTSIDE = {.name = "other", .chain_id = 9};
    static const co_citizen_ref L[] = {{.lattice = &OUTSIDE}};
    static const co_citizen_ref O[] = {{.organism = &FEED, .pin = true}};
    static const co_confluence_config CF = {
        .name = "corr", CO_LIST(lattices, L), CO_LIST(organisms, O),
        .content = "c1"};
    static const co_organism_ref *const ORGS[] = {&FEED};
    static const co_confluence_config *const CONFS[] = {&CF};
    static const co_coalition_config C = {
        .name = "k", CO_LIST(organisms, ORGS), CO_LIST(confluences, CONFS)};

    char err[CO_ERRMSG_SIZE], *text;
    assert_int_equal(co_config_to_json(&C, &text, err), 0);
    co_config_file *f;
    int rc = co_config_file_parse(text, strlen(text), "w.json", &f, err);
    if (rc < 0)
        fail_msg("%s\n%s", err, text);
    mk_id x, y;
    co_coalition_id(&C, &x, NULL);
    co_coalition_id(co_config_file_coalition(f), &y, NULL);
    assert_true(mk_id_eq(&x, &y));
    co_config_file_free(f);
    free(text);
}

static void save_is_atomic_and_refuses_bad_configs(void **state)
{
    char dir[] = "/tmp/co-config-XXXXXX", path[256], err[CO_ERRMSG_SIZE];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/c.json", dir);

    static const co_coalition_config GOOD = {.name = "good"};
    assert_int_equal(co_config_save(&GOOD, path, err), 0);
    struct stat st_before, st_after;
    assert_int_equal(stat(path, &st_before), 0);

    /* An invalid config is refused and the old file survives intact. */
    static const co_coalition_config BAD_CFG = {.name = ""};
    assert_int_equal(co_config_save(&BAD_CFG, path, err), CO_ECONFIG);
    assert_int_equal(stat(path, &st_after), 0);
    assert_int_equal(st_before.st_size, st_after.st_size);
    co_config_file *f;
    assert_int_equal(co_config_file_load(path, &f, err), 0);
    assert_string_equal(co_config_file_coalition(f)->name, "good");
    co_config_file_free(f);

    /* A directory that does not exist is an error naming the path. */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/c.json", dir);
    assert_true(co_config_save(&GOOD, missing, err) < 0);
    assert_non_null(strstr(err, missing));

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_configs_are_named),
        cmocka_unit_test(duplicate_stable_id_names_the_id),
        cmocka_unit_test(missing_file_is_named),
        cmocka_unit_test(write_back_round_trips),
        cmocka_unit_test(compiled_config_writes_explicit_references),
        cmocka_unit_test(save_is_atomic_and_refuses_bad_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
