/* A Compute provider in coalitiond (`--provider FILE`): offers this
 * node's capacity to the coalition's Compute module and runs the
 * workloads granted to it.
 *
 * FILE is JSON; every key is optional except cpu and ram:
 *
 *   { "cpu": "2",            cores ("0.5", "1500m" or a number)
 *     "ram": "1G",           bytes with K/M/G/T (binary) or a number of MiB
 *     "storage": "4G",       as ram (default 0: no disk writes)
 *     "regions": ["local"],  at most 8, 1-63 bytes each
 *     "tdx": false,          whether it can run TDX-only requests
 *     "cgroup": "auto" }     "auto", "off", or a delegated cgroup v2
 *                            directory to put each run's cgroup under
 *
 * The image contract. An image is one executable file: a static binary or
 * a script with a #! line, named by the BLAKE3 of its bytes. For each
 * grant the provider fetches it as a blob from the grant's bearer pointer
 * (verified segment by segment against the hash, see mosaik/blob.h), then
 * copies it into a fresh private working directory, hashing the copy, and
 * refuses to run it — saying so in its log and in a committed ComputeLog
 * (exit "refused") — unless that hash is the grant's image_hash. It runs
 * it there as `./image` with no arguments, stdin from /dev/null, in its
 * own process group, with HOME and TMPDIR the working directory and
 * COMPUTE_REQUEST_ID, COMPUTE_ATTEMPT, COMPUTE_VALID_TO_MS,
 * COMPUTE_CPU_MILLIS, COMPUTE_RAM_MIB and COMPUTE_STORAGE_MIB in its
 * environment. Limits: RLIMIT_CPU (valid_for × cores, in seconds),
 * RLIMIT_AS (ram), RLIMIT_FSIZE (storage), RLIMIT_CORE 0, RLIMIT_NOFILE
 * 256; with cgroup v2 available, memory.max, cpu.max and pids.max too.
 * Its stdout and stderr are committed as output chunks (at most
 * output_max bytes, the rest counted), and a signed usage record (CPU
 * time, peak RSS, wall time, exit) ends it. It is killed (the whole
 * process group) at valid_to, when the grant moves to another provider,
 * and when the provider dies (PR_SET_PDEATHSIG).
 *
 * Never twice (the library's runner, coalition/compute_runner.h, keeps
 * this rule; this provider is its executor): before fetching, it writes
 * DATA/compute/runs/<request>.<attempt>; a grant with a record is never
 * started again. After a restart, a grant still assigned here whose record
 * shows no final log is reported "lost" (its orphaned process group, if
 * any, is killed first); one with a saved log has that log resubmitted.
 */
#ifndef CO_TOOLS_DAEMON_PROVIDER_H
#define CO_TOOLS_DAEMON_PROVIDER_H

#include <stddef.h>

#include "coalition/config.h"
#include "mosaik/node.h"

typedef struct daemon_provider daemon_provider;

/* Reads the provider file. 0, or -1 with `err` (MK_ERRMSG_SIZE) (exit status 2). */
int daemon_provider_load(const char *path, daemon_provider **out, char *err);

/* Starts providing on `node` for `coalition` (borrowed; outlives it),
 * with the blob store and records under data_dir. 0 or -1 with `err`. */
int daemon_provider_start(daemon_provider *dp, mk_node *node,
                          const co_coalition_config *coalition,
                          const char *data_dir, char *err);

/* Kills what runs (its grants are re-matched: the provider departs),
 * closes the runner and its blob service, then calls `cb`. Before the
 * node's mk_node_close. */
void daemon_provider_stop(daemon_provider *dp, mk_close_cb cb, void *data);

/* Frees what is left: after the stop's callback (the runner and its blob
 * service are gone by then), or when it never started. NULL is fine. */
void daemon_provider_free(daemon_provider *dp);

#endif
