/* Running real coalitiond processes in tests (daemon.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "mosaik/key.h"

double time_factor(void)
{
    const char *s = getenv("TIME_FACTOR");
    double f = s ? atof(s) : 1.0;
    return f > 0 ? f : 1.0;
}

const char *daemon_tmpdir(char *buf, size_t len)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/co-test-XXXXXX", base ? base : "/tmp");
    return mkdtemp(buf);
}

int daemon_prepare(daemon_proc *d, const char *dir, const char *name)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->key, sizeof d->key, "%s/%s.key", dir, name);
    snprintf(d->data, sizeof d->data, "%s/%s.data", dir, name);
    snprintf(d->log, sizeof d->log, "%s/%s.log", dir, name);
    mk_keypair kp;
    if (mk_keypair_generate(&kp) < 0 || mk_keypair_save(&kp, d->key, NULL) < 0)
        return -1;
    mk_id_hex(&kp.pub, d->peer_id);
    return 0;
}

static const char *daemon_exe(void)
{
    static char path[1024];
    const char *b = getenv("BUILD_DIR");
    snprintf(path, sizeof path, "%s/coalitiond", b ? b : "build");
    return path;
}

int daemon_start(daemon_proc *d, const char *const *args)
{
    int out[2];
    if (pipe(out) != 0)
        return -1;
    const char *argv[64];
    int n = 0;
    argv[n++] = daemon_exe();
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--key";
    argv[n++] = d->key;
    argv[n++] = "--data";
    argv[n++] = d->data;
    for (int i = 0; args && args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* A test that dies (a failed assertion under abort_on_error, a
         * sanitizer report) must not leave its daemons running on the
         * machine: they die with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int logfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(out[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);
        close(out[0]);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    d->pid = pid;

    /* The first stdout line is {"peer_id":"…","listen":"…"}. */
    char line[512];
    size_t len = 0;
    int budget = (int)(10000 * time_factor());
    struct pollfd p = {out[0], POLLIN, 0};
    while (len < sizeof line - 1 && budget > 0) {
        if (poll(&p, 1, 100) <= 0) {
            budget -= 100;
            continue;
        }
        ssize_t r = read(out[0], line + len, 1);
        if (r <= 0)
            break;
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(out[0]);
    const char *pk = strstr(line, "\"peer_id\":\"");
    const char *ls = strstr(line, "\"listen\":\"");
    if (!pk || !ls) {
        fprintf(stderr, "daemon %s: no startup line (got \"%s\")\n", d->name,
                line);
        daemon_dump_log(d);
        daemon_kill(d);
        return -1;
    }
    pk += 11;
    ls += 10;
    const char *end = strchr(ls, '"');
    if (strncmp(pk, d->peer_id, 64) != 0 || !end ||
        (size_t)(end - ls) >= sizeof d->listen) {
        fprintf(stderr, "daemon %s: unexpected startup line %s\n", d->name,
                line);
        daemon_kill(d);
        return -1;
    }
    memcpy(d->listen, ls, (size_t)(end - ls));
    d->listen[end - ls] = '\0';
    d->http[0] = '\0';
    const char *hs = strstr(line, "\"http\":\"");
    const char *hend = hs ? strchr(hs + 8, '"') : NULL;
    if (hend && (size_t)(hend - hs - 8) < sizeof d->http) {
        memcpy(d->http, hs + 8, (size_t)(hend - hs - 8));
        d->http[hend - hs - 8] = '\0';
    }
    return 0;
}

const char *daemon_bootstrap(const daemon_proc *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s@%s", d->peer_id, d->listen);
    return buf;
}

int daemon_signal_wait(daemon_proc *d, int sig, int timeout_ms)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        int st;
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r == d->pid) {
            d->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    daemon_kill(d);
    return -1;
}

void daemon_kill(daemon_proc *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}

void daemon_dump_log(const daemon_proc *d)
{
    FILE *f = fopen(d->log, "r");
    if (!f)
        return;
    char line[1024];
    fprintf(stderr, "---- %s (%s) ----\n", d->name, d->log);
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void daemon_rmtree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
