/* Tickets and how validators compose (include/mosaik/ticket.h).
 *
 * The two composition rules come from mosaik (reference/mosaik.md §7.1):
 * within one class the best ticket wins (a renewed ticket extends access,
 * an old one still in the entry does not cut it short); across validators
 * the worst one wins (every policy must hold, and access ends when the first
 * of them lapses).
 */
#include "mosaik/ticket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaik/blake3.h"
#include "mosaik/error.h"

int mk_ticket_init(mk_ticket *t, const mk_id *class, const void *data,
                   size_t len)
{
    memset(t, 0, sizeof *t);
    uint8_t *copy = malloc(len + 1);
    if (!copy)
        return MK_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    t->class = *class;
    t->data = copy;
    t->len = len;
    return 0;
}

void mk_ticket_free(mk_ticket *t)
{
    if (!t)
        return;
    free(t->data);
    t->data = NULL;
    t->len = 0;
}

void mk_ticket_id(const mk_ticket *t, mk_id *out)
{
    mk_blake3_hasher h;
    mk_blake3_init(&h);
    mk_blake3_update(&h, t->class.b, MK_ID_LEN);
    if (t->len)
        mk_blake3_update(&h, t->data, t->len);
    mk_blake3_final(&h, out->b, MK_ID_LEN);
}

void mk_ticket_validator_free(struct mk_ticket_validator *v)
{
    if (!v)
        return;
    if (v->free)
        v->free(v);
    memset(v, 0, sizeof *v);
}

static int say(char *why, int rc, const char *what)
{
    if (why)
        snprintf(why, MK_ERRMSG_SIZE, "%s", what);
    return rc;
}

static int check_validator(const struct mk_ticket_validator *v, char *why)
{
    if (!v || !v->validate)
        return say(why, MK_EINVAL, "validator has no validate function");
    if (v->version != MK_TICKET_VALIDATOR_VERSION) {
        if (why)
            snprintf(why, MK_ERRMSG_SIZE,
                     "validator version %d is not supported (expected %d)",
                     v->version, MK_TICKET_VALIDATOR_VERSION);
        return MK_EINVAL;
    }
    return 0;
}

int mk_ticket_validate(const struct mk_ticket_validator *v,
                       const mk_ticket *tickets, size_t n,
                       const mk_peer_id *peer, int64_t now_ms,
                       int64_t *expires_ms, char *why)
{
    int rc = check_validator(v, why);
    if (rc < 0)
        return rc;

    /* The candidates' reasons go to a scratch buffer so that a later
     * success leaves `why` untouched by earlier refusals. */
    char last[MK_ERRMSG_SIZE] = "";
    size_t tried = 0;
    int found = 0;
    int64_t best = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (!mk_id_eq(&tickets[i].class, &v->class))
            continue;
        tried++;
        int64_t exp = 0;
        last[0] = '\0';
        rc = v->validate(v, tickets[i].data, tickets[i].len, peer, now_ms,
                         &exp, last);
        if (rc == MK_ENOMEM)
            return say(why, rc, last[0] ? last : "out of memory");
        if (rc < 0)
            continue;
        found = 1;
        if (exp > best)
            best = exp;
    }
    if (found) {
        if (expires_ms)
            *expires_ms = best;
        return 0;
    }

    char cls[MK_ID_HEX_LEN + 1];
    mk_id_hex(&v->class, cls);
    if (why) {
        if (tried == 0)
            snprintf(why, MK_ERRMSG_SIZE, "no ticket of class %.16s...", cls);
        else
            snprintf(why, MK_ERRMSG_SIZE,
                     "no valid ticket of class %.16s... (%zu refused; "
                     "last: %s)",
                     cls, tried, last[0] ? last : "no reason given");
    }
    return MK_ENOT_ALLOWED;
}

int mk_ticket_validate_all(const struct mk_ticket_validator *const *vs,
                           size_t nv, const mk_ticket *tickets, size_t n,
                           const mk_peer_id *peer, int64_t now_ms,
                           int64_t *expires_ms, char *why)
{
    int64_t earliest = MK_TICKET_NEVER;
    for (size_t i = 0; i < nv; i++) {
        char inner[MK_ERRMSG_SIZE] = "";
        int64_t exp = MK_TICKET_NEVER;
        int rc = mk_ticket_validate(vs[i], tickets, n, peer, now_ms, &exp,
                                    inner);
        if (rc < 0) {
            if (why)
                snprintf(why, MK_ERRMSG_SIZE, "validator %zu: %s", i, inner);
            return rc;
        }
        if (exp < earliest)
            earliest = exp;
    }
    if (expires_ms)
        *expires_ms = earliest;
    return 0;
}
