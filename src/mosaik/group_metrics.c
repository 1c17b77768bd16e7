/* A group's series: everything but command latency is read from its
 * status when the registry is read, so consensus pays for being watched
 * only a bucket scan per command and a clock read or two per loop
 * iteration; on a node with metrics off, not even those.
 *
 * Why the clock is read once per iteration (mk__group_metrics_clock) and
 * not per command: pipelined small commands cost a leader a few
 * microseconds each, and on a VM's clock (kvm-clock here) a clock read
 * costs about 0.1 us, so two per command were several percent of the
 * work. Commands taken or answered in one iteration share a reading:
 * their latency is off by at most that iteration's work, tens of
 * microseconds, below the histogram's first bucket (100 us). */
#include <stdio.h>

#include "group_internal.h"
#include "mosaik/clock.h"
#include "mosaik/metrics.h"

enum {
    F_LEADER, F_ONLINE, F_VOTER, F_STORAGE, F_TERM, F_COMMIT, F_APPLIED_INDEX,
    F_APPLIED, F_ENTRIES, F_COMMANDS, F_VOTERS, F_MEMBERS, F_SNAPSHOTS,
    F_SNAPSHOT_BYTES, F_LOG_THRESHOLD,
};

static const struct {
    const char *name, *help;
    mk_metric_type type;
} fields[MK__GROUP_METRICS] = {
    [F_LEADER] = {"mosaik_groups_is_leader", "1 while this member leads.",
                  MK_METRIC_GAUGE},
    [F_ONLINE] = {"mosaik_groups_online", "1 while a leader is known and "
                  "this member follows it.", MK_METRIC_GAUGE},
    [F_VOTER] = {"mosaik_groups_is_voter", "1 while this member votes, 0 "
                 "while it is a standby.", MK_METRIC_GAUGE},
    [F_STORAGE] = {"mosaik_groups_storage_failed", "1 while this member's "
                   "storage failed and it is out of consensus.",
                   MK_METRIC_GAUGE},
    [F_TERM] = {"mosaik_groups_term", "Raft term.", MK_METRIC_GAUGE},
    [F_COMMIT] = {"mosaik_groups_commit_index", "Raft commit index.",
                  MK_METRIC_GAUGE},
    [F_APPLIED_INDEX] = {"mosaik_groups_applied_index", "Raft applied "
                         "index.", MK_METRIC_GAUGE},
    [F_APPLIED] = {"mosaik_groups_commands_applied_total", "Commands "
                   "applied to the state machine.", MK_METRIC_COUNTER},
    [F_ENTRIES] = {"mosaik_groups_entries_proposed_total", "Raft entries "
                   "this member proposed while leading.", MK_METRIC_COUNTER},
    [F_COMMANDS] = {"mosaik_groups_commands_proposed_total", "Commands "
                    "this member proposed while leading.",
                    MK_METRIC_COUNTER},
    [F_VOTERS] = {"mosaik_groups_voters", "Voters in the current "
                  "configuration.", MK_METRIC_GAUGE},
    [F_MEMBERS] = {"mosaik_groups_members", "Members listed: voters and "
                   "standbys.", MK_METRIC_GAUGE},
    [F_SNAPSHOTS] = {"mosaik_groups_snapshots_total", "Snapshots of the "
                     "state machine this member took.", MK_METRIC_COUNTER},
    [F_SNAPSHOT_BYTES] = {"mosaik_groups_snapshot_bytes", "Size of the last "
                          "snapshot taken or restored.", MK_METRIC_GAUGE},
    [F_LOG_THRESHOLD] = {"mosaik_groups_snapshot_threshold_entries",
                         "Entries applied between snapshots, as the group "
                         "sized it last.", MK_METRIC_GAUGE},
};

static double read_field(void *data)
{
    const struct mk__gmetric *gm = data;
    const mk_group *g = gm->g;
    mk_group_status st;
    mk_group_status_get(g, &st);
    switch (gm->field) {
    case F_LEADER: return st.is_leader;
    case F_ONLINE: return st.online;
    case F_VOTER: return st.is_voter;
    case F_STORAGE: return st.storage_failed;
    case F_TERM: return (double)st.term;
    case F_COMMIT: return (double)st.commit_index;
    case F_APPLIED_INDEX: return (double)st.applied_index;
    case F_APPLIED: return (double)st.applied;
    case F_ENTRIES: return (double)g->entries_proposed;
    case F_COMMANDS: return (double)g->commands_proposed;
    case F_VOTERS: return (double)st.n_voters;
    case F_SNAPSHOTS: return (double)g->gfsm.snapshots;
    case F_SNAPSHOT_BYTES: return (double)g->gfsm.snapshot_bytes;
    case F_LOG_THRESHOLD: return (double)g->log_threshold;
    default: return (double)st.n_members;
    }
}

/* From a loopback committee's sub-millisecond commits to a leader
 * change's seconds. */
static const double latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001,
                                        0.0025, 0.005,   0.01,   0.025,
                                        0.05,   0.1,     0.25,   0.5,
                                        1,      2.5,     5,      10};

int64_t mk__group_metrics_clock(mk_group *g)
{
    if (!g->latency)
        return 0;
    if (!g->metrics_now_us)
        g->metrics_now_us = mk_mono_us();
    return g->metrics_now_us;
}

void mk__group_metrics_tick(mk_group *g)
{
    g->metrics_now_us = 0;
}

void mk__group_metrics_latency(mk_group *g, int64_t us)
{
    mk_metric_observe(g->latency, (double)us / 1e6);
}

/* Best effort: a group whose series could not be added (no memory, a
 * name the registry refuses) runs unobserved rather than not at all. */
void mk__group_metrics_add(mk_group *g, const char *name)
{
    mk_metrics *r = mk_node_metrics(g->node);
    char hex[MK_ID_HEX_LEN + 1];
    mk_metric_label l[2] = {{"group", mk_id_hex(&g->id, hex)},
                            {"name", name}};
    for (int i = 0; r && i < MK__GROUP_METRICS; i++) {
        struct mk__gmetric *gm = &g->metrics[i];
        gm->g = g;
        gm->field = i;
        if (mk_metrics_add(r, &(mk_metric_desc){
                .name = fields[i].name, .help = fields[i].help,
                .type = fields[i].type, .labels = l,
                .n_labels = name ? 2 : 1, .read = read_field, .data = gm},
                &gm->m) != 0) {
            mk__group_metrics_remove(g);
            return;
        }
    }
    if (r && mk_metrics_add(r, &(mk_metric_desc){
            .name = "mosaik_groups_command_seconds",
            .help = "Commands this member took, from its own handle or a "
                    "requester, until their answer (applied ones only).",
            .type = MK_METRIC_HISTOGRAM, .labels = l,
            .n_labels = name ? 2 : 1, .buckets = latency_bounds,
            .n_buckets = sizeof latency_bounds / sizeof latency_bounds[0]},
            &g->latency) != 0)
        mk__group_metrics_remove(g);
}

void mk__group_metrics_remove(mk_group *g)
{
    for (int i = 0; i < MK__GROUP_METRICS; i++) {
        mk_metric_remove(g->metrics[i].m);
        g->metrics[i].m = NULL;
    }
    mk_metric_remove(g->latency);
    g->latency = NULL;
}
