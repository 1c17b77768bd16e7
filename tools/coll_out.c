/* Printing collection items and outcomes (coll_cli.h).
 *
 * Keys and values are byte strings. Text mode writes them as they are
 * (tab-separated fields, one item per line), or as hex under --hex. JSON
 * has no byte strings: a field that is valid UTF-8 is a JSON string, one
 * that is not becomes "<name>_hex" so nothing is lost or mangled, and
 * --hex makes every byte field hex under its own name.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coll_cli.h"
#include "mosaik/error.h"
#include "mosaik/id.h"

static char *hex_of(const uint8_t *p, size_t len)
{
    char *h = malloc(2 * len + 1);
    if (h)
        mk_hex_encode(p, len, h);
    return h;
}

void coll_json_bytes(const coll_out *o, json_t *obj, const char *name,
                     const uint8_t *p, size_t len)
{
    json_t *s = o->hex ? NULL : json_stringn((const char *)p, len);
    if (s) {
        json_object_set_new(obj, name, s);
        return;
    }
    char field[64];
    snprintf(field, sizeof field, o->hex ? "%s" : "%s_hex", name);
    char *h = hex_of(p, len);
    json_object_set_new(obj, field, h ? json_string(h) : json_null());
    free(h);
}

void coll_print_json(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text)
        puts(text);
    free(text);
    json_decref(j);
    fflush(stdout);
}

static void text_bytes(const coll_out *o, const uint8_t *p, size_t len)
{
    if (!o->hex) {
        fwrite(p, 1, len, stdout);
        return;
    }
    char *h = hex_of(p, len);
    if (h)
        fputs(h, stdout);
    free(h);
}

static void item_json(const coll_out *o, json_t *j, const mk_coll_item *it,
                      uint64_t index, unsigned fields)
{
    if (fields & COLL_F_INDEX)
        json_object_set_new(j, "index", json_integer((json_int_t)index));
    if (fields & COLL_F_PRIO)
        coll_json_bytes(o, j, "prio", it->prio, it->prio_len);
    if (fields & COLL_F_KEY)
        coll_json_bytes(o, j, o->k->key_name, it->key, it->key_len);
    if (fields & COLL_F_VAL)
        coll_json_bytes(o, j, "value", it->val, it->val_len);
}

void coll_print_item(const coll_out *o, const char *op,
                     const mk_coll_item *it, uint64_t index, unsigned fields)
{
    if (o->json) {
        json_t *j = json_object();
        if (op)
            json_object_set_new(j, "op", json_string(op));
        item_json(o, j, it, index, fields);
        coll_print_json(j);
        return;
    }
    bool first = true;
    if (op) {
        fputs(op, stdout);
        first = false;
    }
    if (fields & COLL_F_INDEX) {
        printf("%s%llu", first ? "" : "\t", (unsigned long long)index);
        first = false;
    }
    static const unsigned order[] = {COLL_F_PRIO, COLL_F_KEY, COLL_F_VAL};
    for (size_t i = 0; i < 3; i++) {
        if (!(fields & order[i]))
            continue;
        if (!first)
            putchar('\t');
        first = false;
        if (order[i] == COLL_F_PRIO)
            text_bytes(o, it->prio, it->prio_len);
        else if (order[i] == COLL_F_KEY)
            text_bytes(o, it->key, it->key_len);
        else
            text_bytes(o, it->val, it->val_len);
    }
    putchar('\n');
    fflush(stdout);
}

int coll_exit_of(int status)
{
    return status == 0                     ? CLI_OK
           : status == MK_ECONNECT_TIMEOUT ? CLI_TIMEOUT
                                           : CLI_FAIL;
}

const char *coll_status_name(int status)
{
    return status == 0                     ? "ok"
           : status == MK_ECONNECT_TIMEOUT ? "timeout"
                                           : "error";
}

json_t *coll_outcome_json(const coll_out *o, const coll_verb *v, int status,
                          uint64_t applied, const uint8_t *res, size_t len,
                          uint64_t line)
{
    json_t *j = json_object();
    if (line)
        json_object_set_new(j, "line", json_integer((json_int_t)line));
    json_object_set_new(j, "op", json_string(v->name));
    json_object_set_new(j, "status", json_string(coll_status_name(status)));
    if (status != 0) {
        json_object_set_new(j, "code", json_string(mk_err_name(status)));
        json_object_set_new(j, "error", json_string(mk_strerror(status)));
        return j;
    }
    json_object_set_new(j, "applied", json_integer((json_int_t)applied));
    mk_coll_outcome oc;
    if (mk_coll_outcome_decode(res, len, &oc) != 0) {
        json_object_set_new(j, "error",
                            json_string("the outcome did not decode"));
        return j;
    }
    json_object_set_new(j, "changed", json_integer((json_int_t)oc.changed));
    if (oc.evicted)
        json_object_set_new(j, "evicted",
                            json_integer((json_int_t)oc.evicted));
    if (oc.has_item)
        item_json(o, j, &oc.item, 0, o->k->fields & ~COLL_F_INDEX);
    return j;
}
