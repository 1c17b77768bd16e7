/* `coalition id` end to end: the tool reproduces the golden vectors, its
 * --json has exactly the documented keys, a bad file exits 2 with nothing
 * on stdout, and for mixed compositions every printed id matches an
 * independent computation done by the official `b3sum` tool. */
#include <jansson.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

static char coalition[4096];

static const char *vector(const char *name)
{
    static char path[4096];
    const char *dir = getenv("VECTORS_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "../shared/vectors",
             name);
    return path;
}

static const char *data(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/%s", getenv("SOURCE_DIR"),
             name);
    return path;
}

static json_t *run_json(const char *file)
{
    char *argv[] = {coalition, "id", "--json", (char *)file, NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    if (r.status != 0)
        fail_msg("coalition id %s: exit %d: %s", file, r.status, r.err);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    if (!j)
        fail_msg("not JSON: %s\n%s", e.text, r.out);
    proc_result_free(&r);
    return j;
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("key %s is not a string", key);
    return json_string_value(v);
}

static void json_matches_golden_vectors(void **state)
{
    json_t *got = run_json(vector("ethereum.superchain.json"));
    json_error_t e;
    json_t *vec = json_load_file(vector("identity.json"), 0, &e);
    assert_non_null(vec);
    json_t *want = json_object_get(vec, "expected");

    /* Exactly the documented keys, nothing else. */
    const char *keys[] = {"coalition",   "coalition_id", "lattices",
                          "organisms",   "confluences",  "modules",
                          "tickets_root"};
    assert_int_equal(json_object_size(got), 7);
    for (size_t i = 0; i < 7; i++)
        assert_non_null(json_object_get(got, keys[i]));

    assert_string_equal(str(got, "coalition"), str(want, "coalition"));
    assert_string_equal(str(got, "coalition_id"), str(want, "coalition_id"));
    assert_true(json_is_null(json_object_get(got, "tickets_root")));

    json_t *gl = json_object_get(got, "lattices"),
           *wl = json_object_get(want, "lattices");
    assert_int_equal(json_array_size(gl), json_array_size(wl));
    for (size_t i = 0; i < json_array_size(wl); i++) {
        json_t *g = json_array_get(gl, i), *w = json_array_get(wl, i);
        assert_int_equal(json_object_size(g), 3);
        assert_string_equal(str(g, "name"), str(w, "name"));
        assert_string_equal(str(g, "stable_id"), str(w, "stable_id"));
        assert_string_equal(str(g, "citizen_id"), str(w, "citizen_id"));
    }
    json_t *go = json_array_get(json_object_get(got, "organisms"), 0),
           *wo = json_array_get(json_object_get(want, "organisms"), 0);
    assert_string_equal(str(go, "role"), "oracle");
    assert_string_equal(str(go, "instance"), str(wo, "instance"));
    assert_string_equal(str(go, "stable_id"), str(wo, "stable_id"));
    assert_string_equal(str(go, "content_hash"), str(wo, "content_hash"));
    assert_string_equal(str(go, "citizen_id"),
                        "3fec36213c5196c06109ad480c9d6cc989aa2e45");

    json_t *gc = json_object_get(got, "confluences"),
           *wc = json_object_get(want, "confluences");
    for (size_t i = 0; i < json_array_size(wc); i++) {
        json_t *g = json_array_get(gc, i), *w = json_array_get(wc, i);
        assert_string_equal(str(g, "name"), str(w, "name"));
        assert_string_equal(str(g, "fingerprint"), str(w, "fingerprint"));
        assert_string_equal(str(g, "committee"), str(w, "committee"));
        bool module = json_object_get(w, "module_root") != NULL;
        assert_int_equal(json_is_true(json_object_get(g, "module")), module);
        if (module)
            assert_string_equal(str(g, "module_root"), str(w, "module_root"));
        else
            assert_true(json_is_null(json_object_get(g, "module_root")));
    }
    json_t *gm = json_object_get(got, "modules");
    assert_string_equal(str(gm, "atlas"),
                        str(json_object_get(want, "modules"), "atlas"));
    assert_true(json_is_null(json_object_get(gm, "almanac")));
    assert_true(json_is_null(json_object_get(gm, "chronicle")));
    assert_true(json_is_null(json_object_get(gm, "compute")));
    json_decref(got);
    json_decref(vec);
}

static void table_and_help(void **state)
{
    proc_result r;
    char *table[] = {coalition, "id", (char *)vector("ethereum.superchain.json"),
                     NULL};
    assert_int_equal(proc_run(table, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "coalition_id  6892a299737d4bcee3ec2de4d210fca8"
                                  "7ff37e6f822edeee60850b787f4af6bf"));
    assert_non_null(strstr(r.out, "almanac    - (not shipped)"));
    proc_result_free(&r);

    char *help[] = {coalition, "--help", NULL};
    assert_int_equal(proc_run(help, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "id "));
    proc_result_free(&r);

    char *idhelp[] = {coalition, "id", "--help", NULL};
    assert_int_equal(proc_run(idhelp, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--json"));
    proc_result_free(&r);

    char *bogus[] = {coalition, "id", "--frobnicate", "x.json", NULL};
    assert_int_equal(proc_run(bogus, NULL, &r), 0);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    proc_result_free(&r);
}

static void bad_config_exits_2_and_prints_nothing(void **state)
{
    char path[] = "/tmp/co-bad-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "{\"name\": \"x\",\n \"lattices\": [\n  {\"name\": "
                       "\"l\", \"chain_id\": \"one\"}]}\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    for (int json = 0; json < 2; json++) {
        char *argv[] = {coalition, "id", json ? "--json" : path,
                        json ? path : NULL, NULL};
        proc_result r;
        assert_int_equal(proc_run(argv, NULL, &r), 0);
        assert_int_equal(r.status, 2);
        assert_string_equal(r.out, "");
        char want[256];
        snprintf(want, sizeof want,
                 "coalition: %s:3: lattices[0].chain_id: wrong type: "
                 "expected an integer, found a string\n",
                 path);
        assert_string_equal(r.err, want);
        proc_result_free(&r);
    }
    unlink(path);
}

static void example_program_prints_the_vector(void **state)
{
    char exe[4096];
    char *argv[] = {(char *)build_path("examples/superchain", exe, sizeof exe),
                    NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_string_equal(
        r.out,
        "coalition_id 6892a299737d4bcee3ec2de4d210fca87ff37e6f822edeee60850b787f4af6bf\n"
        "atlas        dddff1eb5a8b09db10cb15f0cc5d6596845073ccc33bca9c71eda896fe4f5c5d\n"
        "almanac      not shipped\n");
    proc_result_free(&r);
}

/* ---- an independent derivation with the official b3sum ------------------ */

typedef struct bytes {
    uint8_t b[4096];
    size_t n;
} bytes;

static void put(bytes *x, const void *p, size_t n)
{
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void put_s(bytes *x, const char *s)
{
    put(x, s, strlen(s));
}

static void put_hex(bytes *x, const char *hex)
{
    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
        unsigned v;
        sscanf(hex + i, "%2x", &v);
        x->b[x->n++] = (uint8_t)v;
    }
}

/* hex of b3sum over the bytes, via a temporary file. */
static void b3sum(const bytes *x, char out[65])
{
    char path[] = "/tmp/co-b3-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    if (x->n)
        assert_int_equal(write(fd, x->b, x->n), (ssize_t)x->n);
    close(fd);
    char *argv[] = {"/usr/bin/b3sum", "--no-names", path, NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    memcpy(out, r.out, 64);
    out[64] = '\0';
    proc_result_free(&r);
    unlink(path);
}

static void b3sum_str(const char *s, char out[65])
{
    bytes x = {.n = 0};
    put_s(&x, s);
    b3sum(&x, out);
}

static void seed_of(const char *name, char out[65])
{
    bytes x = {.n = 0};
    put_s(&x, "coalition|\x01|");
    put_s(&x, name);
    b3sum(&x, out);
}

static void lattice_id(const char *name, uint64_t chain, char out[65])
{
    bytes x = {.n = 0};
    put_s(&x, "builder|");
    put_s(&x, name);
    put_s(&x, "|chain=");
    for (int i = 0; i < 8; i++)
        x.b[x.n++] = (uint8_t)(chain >> (8 * i));
    b3sum(&x, out);
}

static void organism_id(const char *instance, const char *net_hex,
                        char out[65])
{
    bytes x = {.n = 0};
    put_s(&x, "instance|");
    put_s(&x, instance);
    put_s(&x, "|");
    put_hex(&x, net_hex);
    b3sum(&x, out);
}

static void root_of(const char *seed, const char *const *ids, size_t n,
                    char out[65])
{
    bytes x = {.n = 0};
    put_hex(&x, seed);
    for (size_t i = 0; i < n; i++)
        put_hex(&x, ids[i]);
    b3sum(&x, out);
}

static const char *UNIVERSE_HEX =
    "b82b6f3b4a1e53d2d56523f5a7b1974e3842ac37a068cc302286065a8853cf43";

static void organisms_only_matches_b3sum(void **state)
{
    json_t *got = run_json(data("organisms-only.json"));
    char seed[65], eur[65], chf[65], net[65], root[65];
    seed_of("signals.euro-fx", seed);
    organism_id("price-feed.eur", UNIVERSE_HEX, eur);
    b3sum_str("testnet", net);
    organism_id("price-feed.chf", net, chf);
    const char *published =
        "3fec36213c5196c06109ad480c9d6cc989aa2e45913c919d51b1e85ed7caf8c8";
    const char *ids[] = {eur, chf, published};
    root_of(seed, ids, 3, root);

    assert_string_equal(str(got, "coalition"), seed);
    assert_string_equal(str(got, "coalition_id"), root);
    json_t *orgs = json_object_get(got, "organisms");
    for (int i = 0; i < 3; i++)
        assert_string_equal(str(json_array_get(orgs, (size_t)i), "stable_id"),
                            ids[i]);
    /* The third has no instance: the key is absent, not null. */
    assert_null(json_object_get(json_array_get(orgs, 2), "instance"));
    assert_true(json_is_null(
        json_object_get(json_array_get(orgs, 1), "content_hash")));
    assert_int_equal(json_array_size(json_object_get(got, "lattices")), 0);
    json_decref(got);
}

static void lattices_only_matches_b3sum(void **state)
{
    json_t *got = run_json(data("lattices-only.json"));
    char seed[65], a[65], b[65], c[65], root[65];
    seed_of("chains", seed);
    lattice_id("ethereum.mainnet", 1, a);
    lattice_id("big.chain", 18446744073709551ull, b);
    b3sum_str("operator-published-id", c);
    const char *ids[] = {a, b, c};
    root_of(seed, ids, 3, root);
    assert_string_equal(str(got, "coalition_id"), root);
    json_t *lat = json_object_get(got, "lattices");
    for (int i = 0; i < 3; i++) {
        json_t *l = json_array_get(lat, (size_t)i);
        assert_string_equal(str(l, "stable_id"), ids[i]);
        assert_int_equal(strlen(str(l, "citizen_id")), 40);
        assert_memory_equal(str(l, "citizen_id"), ids[i], 40);
    }
    json_decref(got);
}

static void both_with_issuer_matches_b3sum(void **state)
{
    json_t *got = run_json(data("both.json"));
    char seed[65], eth[65], uni[65], eur[65], root[65];
    seed_of("both", seed);
    lattice_id("ethereum.mainnet", 1, eth);
    lattice_id("unichain.mainnet", 130, uni);
    organism_id("price-feed.eur", UNIVERSE_HEX, eur);

    /* acl fingerprints */
    char empty_acl[65], ops_acl[65], k1_acl[65], h[65];
    bytes x = {.n = 0};
    put(&x, "acl|\x01\0\0\0\0\0\0\0\0", 13);
    b3sum(&x, empty_acl);
    x.n = 0;
    put(&x, "acl|\x01\x01\0\0\0", 9);
    b3sum_str("ops-key", h);
    put_hex(&x, h);
    put(&x, "\0\0\0\0", 4);
    b3sum(&x, ops_acl);
    x.n = 0;
    put(&x, "acl|\x01\x01\0\0\0", 9);
    b3sum_str("k1", h);
    put_hex(&x, h);
    put(&x, "\0\0\0\0", 4);
    b3sum(&x, k1_acl);

    /* almanac: no references */
    char almanac[65], fx[65], pinned[65], content[65], issuer[65];
    x.n = 0;
    put_s(&x, "confluence|\x01|almanac");
    b3sum_str("almanac/cadence=1000ms", content);
    put_hex(&x, content);
    put_hex(&x, empty_acl);
    b3sum(&x, almanac);

    /* fx-correlator: one lattice, one pinned organism */
    x.n = 0;
    put_hex(&x,
            "3fec36213c5196c06109ad480c9d6cc989aa2e45913c919d51b1e85ed7caf8c7");
    b3sum_str("price-feed.eur/content-v1", h);
    put_hex(&x, h);
    b3sum(&x, pinned);
    x.n = 0;
    put_s(&x, "confluence|\x01|fx-correlator");
    put_hex(&x, eth);
    put_hex(&x, pinned);
    b3sum_str("fx-correlator/v1", content);
    put_hex(&x, content);
    put_hex(&x, ops_acl);
    b3sum(&x, fx);

    x.n = 0;
    put_s(&x, "tickets|\x01|both-tickets");
    put_hex(&x, k1_acl);
    b3sum(&x, issuer);

    const char *ids[] = {eth, uni, eur, almanac, fx, issuer};
    root_of(seed, ids, 6, root);
    assert_string_equal(str(got, "coalition_id"), root);

    json_t *conf = json_object_get(got, "confluences");
    assert_string_equal(str(json_array_get(conf, 0), "fingerprint"), almanac);
    assert_string_equal(str(json_array_get(conf, 1), "fingerprint"), fx);

    /* module root and tickets root: derive chains over the root */
    char mod[65], alm[65], tickets[65];
    x.n = 0;
    put_hex(&x, root);
    put_s(&x, "module");
    b3sum(&x, mod);
    x.n = 0;
    put_hex(&x, mod);
    put_s(&x, "almanac");
    b3sum(&x, alm);
    assert_string_equal(str(json_object_get(got, "modules"), "almanac"), alm);
    assert_true(json_is_null(json_object_get(json_object_get(got, "modules"),
                                             "atlas")));
    x.n = 0;
    put_hex(&x, root);
    put_s(&x, "tickets");
    b3sum(&x, tickets);
    assert_string_equal(str(got, "tickets_root"), tickets);
    json_decref(got);
}

/* The in-tree copy of the vectors must not drift from ../shared. */
static void vectors_match_shared_copy(void **state)
{
    const char *names[] = {"identity.json", "ethereum.superchain.json"};
    for (int i = 0; i < 2; i++) {
        char shared[4096];
        snprintf(shared, sizeof shared, "%s/../shared/vectors/%s",
                 getenv("SOURCE_DIR"), names[i]);
        if (access(shared, R_OK) != 0)
            continue; /* a clone without ../shared beside it */
        char *argv[] = {"/usr/bin/cmp", shared, (char *)vector(names[i]),
                        NULL};
        proc_result r;
        assert_int_equal(proc_run(argv, NULL, &r), 0);
        if (r.status != 0)
            fail_msg("%s differs from %s: %s", vector(names[i]), shared,
                     r.out);
        proc_result_free(&r);
    }
}

int main(void)
{
    build_path("coalition", coalition, sizeof coalition);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors_match_shared_copy),
        cmocka_unit_test(json_matches_golden_vectors),
        cmocka_unit_test(table_and_help),
        cmocka_unit_test(bad_config_exits_2_and_prints_nothing),
        cmocka_unit_test(example_program_prints_the_vector),
        cmocka_unit_test(organisms_only_matches_b3sum),
        cmocka_unit_test(lattices_only_matches_b3sum),
        cmocka_unit_test(both_with_issuer_matches_b3sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
