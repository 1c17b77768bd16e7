/* Test helper: run real coalitiond processes. Each daemon gets a fresh
 * key and data dir under a per-test temporary directory; its stderr goes
 * to <dir>/<name>.log so a failing test can show what the daemon said. */
#ifndef CO_TEST_DAEMON_H
#define CO_TEST_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct daemon_proc {
    pid_t pid;
    char name[32];
    char peer_id[65];
    char listen[64];   /* what it printed: "127.0.0.1:PORT" */
    char http[64];     /* with --http: the address it serves on, else "" */
    char key[512];     /* key file path */
    char data[512];    /* data dir */
    char log[512];     /* stderr */
} daemon_proc;

/* A fresh temporary directory for one test (mkdtemp under $TMPDIR). */
const char *daemon_tmpdir(char *buf, size_t len);

/* Writes a new key file <dir>/<name>.key (mode 0600); fills d->key,
 * d->data, d->log and d->peer_id. */
int daemon_prepare(daemon_proc *d, const char *dir, const char *name);

/* Starts coalitiond with --listen 127.0.0.1:0 --key --data plus `args`
 * (NULL-terminated, may be NULL) and waits (up to 10 s × TIME_FACTOR) for
 * its JSON line. Returns 0 or -1 (the log says why). */
int daemon_start(daemon_proc *d, const char *const *args);

/* "PEERID@HOST:PORT" of a started daemon, in a static-per-call buffer. */
const char *daemon_bootstrap(const daemon_proc *d, char *buf, size_t len);

/* Sends `sig` and waits up to `timeout_ms` for exit. Returns the exit
 * status (or 128 + signal), or -1 if it did not exit (then SIGKILLs it). */
int daemon_signal_wait(daemon_proc *d, int sig, int timeout_ms);

/* SIGKILL and reap; a no-op for a daemon that is not running. */
void daemon_kill(daemon_proc *d);

/* Prints the daemon's log to stderr (for failures). */
void daemon_dump_log(const daemon_proc *d);

/* TIME_FACTOR from the environment (sanitized runs are slower). */
double time_factor(void);

/* Recursively removes a test directory. */
void daemon_rmtree(const char *dir);

#endif
