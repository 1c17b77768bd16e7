/* Atlas handles (include/coalition/atlas.h): the integrator's reader and
 * the operator's publish. */
#include "coalition/atlas.h"

#include <stdlib.h>
#include <string.h>

#include "modules_internal.h"
#include "mosaik/error.h"
#include "reader.h"

struct co_atlas_reader {
    co__reader base;
    co_atlas_cb cb;
    void *data;
};

static void on_reader(co__reader *base, int status)
{
    co_atlas_reader *r = base->owner;
    r->cb(r, status, r->data);
}

int co_atlas_read(mk_node *net, const co_coalition_config *cfg,
                  uint32_t timeout_ms, co_atlas_cb cb, void *data,
                  co_atlas_reader **out, char *err)
{
    co_atlas_reader *r = calloc(1, sizeof *r);
    if (!r)
        return MK_ENOMEM;
    r->cb = cb;
    r->data = data;
    int rc = co__reader_open(&r->base, net, cfg, CO_MODULE_ATLAS,
                             co__atlas_fsm_init, co__atlas_fsm_free,
                             co__atlas_retirement, timeout_ms, on_reader, r,
                             err);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void co_atlas_close(co_atlas_reader *r, mk_close_cb done, void *data)
{
    co__reader_close(&r->base, done, data);
}

size_t co_atlas_count(const co_atlas_reader *r)
{
    return co__atlas_count(&r->base.fsm);
}

size_t co_atlas_verified_count(const co_atlas_reader *r)
{
    size_t n = 0;
    for (size_t i = 0; i < co__atlas_count(&r->base.fsm); i++)
        n += co__atlas_verified(&r->base.fsm, co__atlas_at(&r->base.fsm, i));
    return n;
}

int co_atlas_get(const co_atlas_reader *r, const mk_id *stable_id,
                 const co_card **out)
{
    co_citizen_id key;
    co_citizen_id_of(stable_id, &key);
    const co__atlas_item *it = co__atlas_find(&r->base.fsm, &key);
    /* The key is only the first 20 bytes: the card must name the very
     * citizen asked for. */
    if (!it || !mk_id_eq(&it->card.card.citizen_id, stable_id))
        return MK_ENOENT;
    *out = &it->card;
    return co__atlas_verified(&r->base.fsm, it) ? 0 : CO_EUNVERIFIED;
}

void co_atlas_foreach(const co_atlas_reader *r,
                      bool (*fn)(const co_card *card, bool verified,
                                 void *data),
                      void *data)
{
    for (size_t i = 0; i < co__atlas_count(&r->base.fsm); i++) {
        const co__atlas_item *it = co__atlas_at(&r->base.fsm, i);
        if (!fn(&it->card, co__atlas_verified(&r->base.fsm, it), data))
            return;
    }
}

void co_atlas_retirement(const co_atlas_reader *r, co_retirement *out)
{
    *out = *co__atlas_retirement(&r->base.fsm);
}

/* ---- publish ---------------------------------------------------------- */

typedef struct publish {
    void (*done)(int, void *);
    void *data;
} publish;

static void on_published(int status, const uint8_t *res, size_t len,
                         void *data)
{
    publish *p = data;
    /* The Atlas answers 0 for a card it refused (retired), and a member
     * refuses at its door what it can tell without the state (not a
     * member's, malformed, too large). */
    if ((status == 0 && (len < 1 || res[0] == 0)) || co__door_refused(status))
        status = CO_ECONFIG;
    p->done(status, p->data);
    free(p);
}

int co_atlas_publish(mk_node *net, const co_coalition_config *cfg,
                     const co_citizen_card *card, const mk_keypair *member,
                     uint32_t timeout_ms,
                     void (*done)(int status, void *data), void *data,
                     char *err)
{
    co_module_info m;
    mk_id group;
    int rc = co_module_committee_group(cfg, CO_MODULE_ATLAS, &m, &group, err);
    if (rc < 0)
        return rc;
    mk_buf bytes, cmd;
    mk_buf_init(&bytes);
    mk_buf_init(&cmd);
    if ((rc = co_card_encode(card, &bytes)) < 0) {
        mk_buf_free(&bytes);
        if (err)
            snprintf(err, CO_ERRMSG_SIZE,
                     "card: role must be 1-255 bytes, at most %d endpoint "
                     "hints and %d MR_TD pins",
                     CO_CARD_MAX_HINTS, CO_CARD_MAX_PINS);
        return rc;
    }
    co__atlas_cmd_publish(&cmd, bytes.data, bytes.len, member);
    mk_buf_free(&bytes);
    publish *p = malloc(sizeof *p);
    if (!p) {
        mk_buf_free(&cmd);
        return MK_ENOMEM;
    }
    *p = (publish){done, data};
    rc = co__submit(net, &group, &cmd, timeout_ms, on_published, p);
    mk_buf_free(&cmd);
    if (rc < 0)
        free(p);
    return rc;
}
