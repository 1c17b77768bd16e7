/* Ticket-gated membership (mk_group_tickets in include/mosaik/group.h).
 *
 * A fixed committee's members are in its GroupId; a ticket-gated one's
 * cannot be, or every rotation would rename the group. So Raft's own
 * configuration is the member list, and a ticket is the right to be in
 * it: the leader adds a node that lists the GroupId in its entry and
 * holds a ticket the policy accepts (raft_add makes it a spare, then it
 * is assigned standby, after which the fixed-list rules in group.c may
 * promote it), and takes out a member whose ticket stopped passing
 * (demoted first when it votes, then raft_remove). One change at a time,
 * on the same struct raft_change as every other change, so this and
 * group.c's rotation never race.
 *
 * Why the leader judges: Raft's configuration changes go through the
 * leader anyway, and a ticket's expiry is a wall-clock fact that each
 * member would see at a slightly different instant; one judge turns it
 * into one log entry that every member then applies alike.
 *
 * The members' table (g->voters) is what the rest of the group layer
 * and the Raft bridge look members up in. Each member keeps a row for
 * every server its configuration names (mk__members_sync) plus the
 * ticket holders whose Raft links it admitted (mk__member_note): a node
 * waiting to be added must accept the leader's link before its log says
 * who leads. Rows are never moved while in use: the table is allocated
 * once at MK__TABLE_MAX and a row is only reused when it is in no
 * configuration. A row is not a right: every Raft link is admitted, and
 * re-judged every second while it lasts, by the ticket itself.
 */
#include <stdio.h>
#include <string.h>

#include "mosaik/clock.h"
#include "mosaik/error.h"
#include "mosaik/group_internal.h"

/* How often the leader re-judges the members' tickets and looks for
 * holders to add: each judgement is a signature check per member. */
#define MEMBER_CHECK_MS 250

int mk__member_ticket(const mk_group *g, const mk_peer_id *peer,
                      int64_t *expires_ms, char *why)
{
    mk_peer_info info;
    const mk_peer_entry *e;
    /* The catalog holds the others; this node's is its own entry. */
    if (mk_id_eq(peer, mk_node_id(g->node)))
        e = mk_node_entry(g->node);
    else if (mk_node_peer(g->node, peer, &info))
        e = info.entry;
    else {
        if (why)
            snprintf(why, MK_ERRMSG_SIZE, "peer not in the catalog");
        return MK_ENOENT;
    }
    int rc = mk_ticket_validate(&g->member_v, e->tickets, e->n_tickets, peer,
                                mk_now_ms(), expires_ms, why);
    return rc == 0 || rc == MK_ENOMEM ? rc : MK_ENOT_ALLOWED;
}

bool mk_group_tickets_held(const mk_group_tickets *t, mk_node *node,
                           char *why)
{
    struct mk_ticket_validator v;
    if (mk_group_tickets_validator(t, &v) != 0) {
        if (why)
            snprintf(why, MK_ERRMSG_SIZE, "the ticket policy is invalid");
        return false;
    }
    const mk_peer_entry *e = mk_node_entry(node);
    int rc = mk_ticket_validate(&v, e->tickets, e->n_tickets,
                                mk_node_id(node), mk_now_ms(), NULL, why);
    mk_ticket_validator_free(&v);
    return rc == 0;
}

static mk__voter *row_of(mk_group *g, raft_id id)
{
    return (mk__voter *)mk__group_voter_by_id(g, id);
}

static int role_in_config(const mk_group *g, raft_id id)
{
    if (!g->raft_started)
        return -1;
    const struct raft_configuration *c = &g->raft.configuration;
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return c->servers[i].role;
    return -1;
}

/* A free row: past the end, or one that is neither a seed, nor this
 * node, nor in the configuration. */
static mk__voter *row_free(mk_group *g)
{
    if (g->n_voters < MK__TABLE_MAX)
        return &g->voters[g->n_voters++];
    for (size_t i = g->n_seeds; i < g->n_voters; i++)
        if (i != g->self && role_in_config(g, g->voters[i].id) < 0)
            return &g->voters[i];
    return NULL;
}

static bool row_add(mk_group *g, const mk_peer_id *peer)
{
    raft_id id = mk__raft_id_of(peer);
    if (id == 0)
        return false;
    const mk__voter *same = mk__group_voter_by_id(g, id);
    if (same)
        return mk_id_eq(&same->peer, peer); /* else: colliding raft id */
    mk__voter *v = row_free(g);
    if (!v)
        return false;
    memset(v, 0, sizeof *v);
    v->peer = *peer;
    v->id = id;
    mk_id_hex(peer, v->addr);
    return true;
}

bool mk__member_note(mk_group *g, const mk_peer_id *peer)
{
    return row_add(g, peer);
}

void mk__members_sync(mk_group *g)
{
    if (!g->tickets || !g->raft_started || g->raft_closed)
        return;
    const struct raft_configuration *c = &g->raft.configuration;
    for (unsigned i = 0; i < c->n; i++) {
        mk_peer_id p;
        const char *a = c->servers[i].address;
        if (mk__group_voter_by_id(g, c->servers[i].id) || !a ||
            mk_id_from_hex(&p, a, strlen(a)) != 0 ||
            mk__raft_id_of(&p) != c->servers[i].id)
            continue;
        row_add(g, &p);
    }
}

size_t mk__members_in_config(const mk_group *g)
{
    return g->raft_started && !g->raft_closed ? g->raft.configuration.n : 0;
}

static void on_transfer(struct raft_transfer *req)
{
    mk_group *g = req->data;
    g->transfer_busy = false;
}

static void say(const mk_group *g, const char *what, const mk_peer_id *peer,
                const char *why)
{
    char gh[MK_ID_HEX_LEN + 1], ph[MK_ID_HEX_LEN + 1];
    fprintf(stderr, "mosaik: group %s: %s %s%s%s\n", mk_id_hex(&g->id, gh),
            what, mk_id_hex(peer, ph), why ? ": " : "", why ? why : "");
}

static bool change_started(mk_group *g, int rv)
{
    if (rv != 0)
        return false; /* libraft is still finishing one: next time */
    g->change_busy = true;
    return true;
}

/* A member whose ticket no longer passes: demoted while it votes, then
 * removed. The leader's own hands leadership on first. */
static bool take_out(mk_group *g, const struct raft_server *s,
                     const mk__voter *row, size_t voters, const char *why)
{
    g->change.data = g;
    if (s->id == g->voters[g->self].id) {
        if (voters > 1 && !g->transfer_busy) {
            g->transfer.data = g;
            if (raft_transfer(&g->raft, &g->transfer, 0, on_transfer) == 0) {
                g->transfer_busy = true;
                say(g, "handing leadership on: this member's ticket ended,",
                    &row->peer, why);
            }
        }
        return false;
    }
    if (s->role == RAFT_VOTER) {
        if (voters <= 1)
            return false;
        mk__group_note_leader_change(g, &row->peer, MK_MEMBER_DEMOTED);
        if (!change_started(g, raft_assign(&g->raft, &g->change, s->id,
                                           RAFT_STANDBY,
                                           mk__group_change_done)))
            return false;
        say(g, "demoting voter (ticket)", &row->peer, why);
        return true;
    }
    mk__group_note_leader_change(g, &row->peer, MK_MEMBER_REMOVED);
    if (!change_started(g, raft_remove(&g->raft, &g->change, s->id,
                                       mk__group_change_done)))
        return false;
    say(g, "removing member", &row->peer, why);
    return true;
}

typedef struct scan {
    mk_group *g;
    bool started;
} scan;

/* A catalog peer that lists the GroupId and is in no configuration:
 * added when its ticket (and the group's validators) pass. */
static bool consider(const mk_peer_info *p, void *data)
{
    scan *sc = data;
    mk_group *g = sc->g;
    const mk_peer_entry *e = p->entry;
    bool lists = false;
    for (size_t i = 0; i < e->n_groups && !lists; i++)
        lists = mk_id_eq(&e->groups[i], &g->id);
    raft_id id = mk__raft_id_of(&e->peer);
    if (!lists || role_in_config(g, id) >= 0)
        return true;
    int64_t exp;
    if (mk__group_admit(g, &e->peer, true, &exp, NULL) != 0)
        return true; /* mk__group_admit noted the row when it passed */
    g->change.data = g;
    const mk__voter *row = mk__group_voter_by_id(g, id);
    if (row && mk_id_eq(&row->peer, &e->peer))
        mk__group_note_leader_change(g, &e->peer, MK_MEMBER_ADDED);
    if (!row || !mk_id_eq(&row->peer, &e->peer) ||
        !change_started(g, raft_add(&g->raft, &g->change, id, row->addr,
                                    mk__group_change_done)))
        return true;
    say(g, "adding ticket holder", &e->peer, NULL);
    sc->started = true;
    return false;
}

bool mk__members_check(mk_group *g, int64_t now)
{
    if (!g->tickets || now < g->next_member_check)
        return false;
    g->next_member_check = now + MEMBER_CHECK_MS;
    mk__members_sync(g);
    const struct raft_configuration *c = &g->raft.configuration;
    size_t voters = 0;
    for (unsigned i = 0; i < c->n; i++)
        voters += c->servers[i].role == RAFT_VOTER;
    int64_t wall = mk_now_ms();
    /* Members first: a ticket that ended matters more than a new one. */
    for (unsigned i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        mk__voter *row = row_of(g, s->id);
        if (!row)
            continue;
        char why[MK_ERRMSG_SIZE];
        int64_t exp;
        int rc = mk__member_ticket(g, &row->peer, &exp, why);
        if (rc == 0) {
            row->ticket_expires_ms = exp;
            continue;
        }
        if (rc == MK_ENOMEM)
            continue;
        /* Purged from the catalog: the last expiry seen still ends it. */
        if (rc == MK_ENOENT && (row->ticket_expires_ms == 0 ||
                                    row->ticket_expires_ms > wall))
            continue;
        if (take_out(g, s, row, voters, why))
            return true;
    }
    /* A member just added is a spare: it becomes a standby, which the
     * rules for standbys then promote when a voter's place is free. */
    for (unsigned i = 0; i < c->n; i++) {
        const mk__voter *row = row_of(g, c->servers[i].id);
        if (c->servers[i].role != RAFT_SPARE || !row)
            continue;
        g->change.data = g;
        mk__group_note_leader_change(g, &row->peer, 0);
        if (change_started(g, raft_assign(&g->raft, &g->change,
                                          c->servers[i].id, RAFT_STANDBY,
                                          mk__group_change_done))) {
            say(g, "made a standby:", &row->peer, NULL);
            return true;
        }
        return false;
    }
    if (c->n >= MK__MAX_VOTERS)
        return false;
    scan sc = {g, false};
    mk_node_peers_foreach(g->node, consider, &sc);
    return sc.started;
}
