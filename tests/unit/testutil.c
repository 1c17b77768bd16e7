/* Shared helpers for the cmocka unit tests (testutil.h). */
#define _XOPEN_SOURCE 700
#include "testutil.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/error.h"
#include "mosaik/transport.h"

const char *tu_vector_path(const char *name)
{
    static char path[4096];
    const char *dir = getenv("VECTORS_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "../shared/vectors",
             name);
    return path;
}

json_t *tu_load_vectors(const char *name)
{
    json_error_t e;
    json_t *v = json_load_file(tu_vector_path(name), 0, &e);
    if (!v)
        fail_msg("cannot load %s: %s (line %d)", tu_vector_path(name), e.text,
                 e.line);
    return v;
}

void tu_assert_id_hex(const mk_id *id, const char *hex, const char *file,
                      int line)
{
    char got[MK_ID_HEX_LEN + 1];
    mk_id_hex(id, got);
    if (!hex || strcmp(got, hex) != 0) {
        print_error("id %s, expected %s\n", got, hex ? hex : "(null)");
        _fail(file, line);
    }
}

/* Walks "a.b[2].c" through objects and arrays. */
const char *tu_json_str(json_t *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = root;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save)) {
        char *br = strchr(tok, '[');
        if (br)
            *br = '\0';
        /* Keys may contain dots only in the vectors' "primitives"; those
         * are looked up directly by the tests, not through here. */
        cur = json_object_get(cur, tok);
        while (br && cur) {
            long idx = strtol(br + 1, &br, 10);
            cur = json_array_get(cur, (size_t)idx);
            br = strchr(br, '[');
        }
    }
    if (!cur || !json_is_string(cur))
        fail_msg("vector %s is not a string", path);
    return json_string_value(cur);
}

static void spin_over(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

void tu_spin(uv_loop_t *loop, int ms)
{
    uv_timer_t t;
    bool over = false;
    uv_timer_init(loop, &t);
    t.data = &over;
    uv_timer_start(&t, spin_over, ms > 0 ? (uint64_t)ms : 0, 0);
    while (!over)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* the close completes before t goes */
}

static void probe_frame(mk_link *link, const uint8_t *frame, size_t len,
                        void *data)
{
}

static void probe_closed(mk_link *link, uint32_t code, int status,
                         void *data)
{
    tu_probe *p = data;
    p->link = NULL;
    p->code = code;
    p->ended = true;
}

static void probe_connected(mk_link *link, int status, void *data)
{
    tu_probe *p = data;
    p->dial_status = status;
    if (status < 0) {
        p->ended = true;
        return;
    }
    p->connected = true;
    p->link = link;
    mk_link_set_callbacks(link, probe_frame, probe_closed, p);
}

void tu_probe_start(tu_probe *p, mk_node *from, mk_node *to,
                    const char *alpn)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(mk_transport_connect(mk_node_transport(from),
                                          mk_node_id(to), mk_node_addr(to),
                                          alpn, probe_connected, p),
                     0);
}

mk_node *tu_node_new(uv_loop_t *loop, const mk_keypair *k, bool listen,
                     mk_node *boot, const mk_keypair *boot_key)
{
    char err[MK_ERRMSG_SIZE], addr[256], hex[MK_ID_HEX_LEN + 1];
    const char *bp[1] = {addr};
    mk_node_config nc = {.loop = loop, .key = k};
    if (listen)
        nc.listen = "127.0.0.1:0";
    if (boot) {
        snprintf(addr, sizeof addr, "%s@%s", mk_id_hex(&boot_key->pub, hex),
                 mk_node_addr(boot));
        nc.bootstrap = bp;
        nc.n_bootstrap = 1;
    }
    mk_node *n;
    if (mk_node_new(&nc, &n, err) != 0)
        fail_msg("mk_node_new: %s", err);
    assert_int_equal(mk_node_start(n), 0);
    return n;
}

typedef struct knows_ctx {
    const mk_peer_id *who;
    bool found;
} knows_ctx;

static bool knows_one(const mk_peer_info *p, void *data)
{
    knows_ctx *k = data;
    if (mk_id_eq(&p->entry->peer, k->who))
        k->found = true;
    return !k->found;
}

bool tu_knows(mk_node *n, const mk_peer_id *who)
{
    knows_ctx k = {who, false};
    mk_node_peers_foreach(n, knows_one, &k);
    return k.found;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
