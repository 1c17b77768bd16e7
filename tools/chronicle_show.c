/* Readable Chronicle bodies (chronicle_show.h). */
#include "chronicle_show.h"

#include <stdio.h>
#include <string.h>

#include "coalition/chronicle_record.h"
#include "coalition/config_file.h"
#include "coalition/error.h"
#include "coalition/identity.h"

static bool is(const co_chronicle_entry *e, const char *kind)
{
    return strcmp(e->kind, kind) == 0;
}

static bool printable(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] < 0x20 || b[i] > 0x7e)
            return false;
    return true;
}

/* Sixteen hex characters: enough to tell cards and hashes apart by eye. */
static const char *short_hex(const mk_id *id, char buf[MK_ID_HEX_LEN + 1])
{
    mk_id_hex(id, buf);
    buf[16] = '\0';
    return buf;
}

static bool all_zero(const mk_id *id)
{
    for (size_t i = 0; i < MK_ID_LEN; i++)
        if (id->b[i])
            return false;
    return true;
}

static const char *change_word(mk_member_change c)
{
    switch (c) {
    case MK_MEMBER_PROMOTED:
        return "promoted";
    case MK_MEMBER_DEMOTED:
        return "demoted";
    case MK_MEMBER_ADDED:
        return "added";
    default:
        return "removed";
    }
}

static const char *module_word(uint8_t module, char buf[16])
{
    const char *name = co_module_name((co_module_kind)module);
    if (name)
        return name;
    snprintf(buf, 16, "module %u", module);
    return buf;
}

void chronicle_summary(const co_chronicle_entry *e, char *out, size_t len)
{
    char a[MK_ID_HEX_LEN + 1], b[MK_ID_HEX_LEN + 1];
    co_record_card c;
    co_record_rotation r;
    if (is(e, CO_RECORD_ATLAS_CARD) &&
        co_record_card_decode(e->body, e->body_len, &c) == 0) {
        if (c.replaced)
            snprintf(out, len, "card %s… replaces %s… (publication %llu)",
                     short_hex(&c.card, a), short_hex(&c.previous, b),
                     (unsigned long long)c.publication);
        else
            snprintf(out, len, "card %s… published (publication %llu)",
                     short_hex(&c.card, a),
                     (unsigned long long)c.publication);
        return;
    }
    if (is(e, CO_RECORD_ROTATION) &&
        co_record_rotation_decode(e->body, e->body_len, &r) == 0) {
        snprintf(out, len, "content %s%s -> %s%s",
                 r.has_old ? short_hex(&r.old_hash, a) : "none",
                 r.has_old ? "…" : "",
                 r.has_new ? short_hex(&r.new_hash, b) : "none",
                 r.has_new ? "…" : "");
        return;
    }
    co_record_committee m;
    if (is(e, CO_RECORD_COMMITTEE) &&
        co_record_committee_decode(e->body, e->body_len, &m) == 0) {
        char mod[16];
        snprintf(out, len, "%s: %s… %s, by %s %s… (index %llu)",
                 module_word(m.module, mod), short_hex(&m.ev.member, a),
                 change_word(m.ev.change),
                 m.ev.by_operator ? "operator" : "leader",
                 short_hex(&m.ev.by, b), (unsigned long long)m.ev.index);
        return;
    }
    if (is(e, CO_RECORD_CONFIG)) {
        co_config_file *f;
        char err[CO_ERRMSG_SIZE];
        if (co_config_file_parse((const char *)e->body, e->body_len,
                                 "the recorded config", &f, err) == 0) {
            const co_coalition_config *k = co_config_file_coalition(f);
            snprintf(out, len, "coalition \"%s\", %zu citizens, %zu "
                               "confluences",
                     k->name, k->n_lattices + k->n_organisms,
                     k->n_confluences);
            co_config_file_free(f);
            return;
        }
    }
    if (is(e, CO_RECORD_RETIRED) && printable(e->body, e->body_len)) {
        snprintf(out, len, "retired: \"%.*s\"%s%s%s", (int)e->body_len,
                 (const char *)e->body,
                 all_zero(&e->subject) ? "" : ", successor ",
                 all_zero(&e->subject) ? "" : short_hex(&e->subject, a),
                 all_zero(&e->subject) ? "" : "…");
        return;
    }
    if (printable(e->body, e->body_len) && e->body_len <= 60)
        snprintf(out, len, "\"%.*s\"", (int)e->body_len,
                 (const char *)e->body);
    else
        snprintf(out, len, "%zu bytes", e->body_len);
}

static json_t *hex_or_null(bool present, const mk_id *id)
{
    char h[MK_ID_HEX_LEN + 1];
    return present ? json_string(mk_id_hex(id, h)) : json_null();
}

json_t *chronicle_record_json(const co_chronicle_entry *e)
{
    co_record_card c;
    co_record_rotation r;
    co_record_committee m;
    json_t *o = NULL;
    if (is(e, CO_RECORD_ATLAS_CARD) &&
        co_record_card_decode(e->body, e->body_len, &c) == 0) {
        o = json_object();
        json_object_set_new(o, "card", hex_or_null(true, &c.card));
        json_object_set_new(o, "citizen", hex_or_null(true, &c.citizen));
        json_object_set_new(o, "replaced",
                            hex_or_null(c.replaced, &c.previous));
        json_object_set_new(o, "publication",
                            json_integer((json_int_t)c.publication));
    } else if (is(e, CO_RECORD_ROTATION) &&
               co_record_rotation_decode(e->body, e->body_len, &r) == 0) {
        o = json_object();
        json_object_set_new(o, "old", hex_or_null(r.has_old, &r.old_hash));
        json_object_set_new(o, "new", hex_or_null(r.has_new, &r.new_hash));
    } else if (is(e, CO_RECORD_COMMITTEE) &&
               co_record_committee_decode(e->body, e->body_len, &m) == 0) {
        char mod[16], sig[2 * MK_SIG_LEN + 1];
        o = json_object();
        json_object_set_new(o, "module",
                            json_string(module_word(m.module, mod)));
        json_object_set_new(o, "change",
                            json_string(change_word(m.ev.change)));
        json_object_set_new(o, "member", hex_or_null(true, &m.ev.member));
        json_object_set_new(o, "by", hex_or_null(true, &m.ev.by));
        json_object_set_new(o, "by_operator",
                            json_boolean(m.ev.by_operator));
        json_object_set_new(o, "index", json_integer((json_int_t)m.ev.index));
        for (size_t i = 0; i < MK_SIG_LEN; i++)
            snprintf(sig + 2 * i, 3, "%02x", m.ev.sig[i]);
        json_object_set_new(o, "at_unix_ms",
                            m.ev.by_operator
                                ? json_integer((json_int_t)m.ev.at_unix_ms)
                                : json_null());
        json_object_set_new(o, "signature", m.ev.by_operator
                                                ? json_string(sig)
                                                : json_null());
    } else if (is(e, CO_RECORD_CONFIG)) {
        o = json_loadb((const char *)e->body, e->body_len, 0, NULL);
    } else if (is(e, CO_RECORD_RETIRED)) {
        o = json_object();
        json_object_set_new(o, "reason",
                            json_stringn((const char *)e->body, e->body_len));
        json_object_set_new(o, "successor",
                            hex_or_null(!all_zero(&e->subject), &e->subject));
    }
    return o;
}
