/* The module tests' environment (modules_env.h). */
#include "modules_env.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mosaik/id.h"

#define MAX_ARGS 48

static const char *const SEEDS[MENV_MEMBERS] = {
    "coalition.test/modules/member/0",
    "coalition.test/modules/member/1",
    "coalition.test/modules/member/2",
};

const char *menv_member_seed(int i)
{
    return i >= 0 && i < MENV_MEMBERS ? SEEDS[i] : NULL;
}

int menv_seeded_key(const char *path, const char *seed, char hex[65])
{
    mk_id s;
    mk_keypair kp;
    mk_id_from_str(&s, seed);
    mk_keypair_from_seed(&kp, s.b);
    if (mk_keypair_save(&kp, path, NULL) < 0)
        return -1;
    if (hex)
        mk_id_hex(&kp.pub, hex);
    return 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int menv_init(menv *e)
{
    memset(e, 0, sizeof *e);
    const char *src = getenv("SOURCE_DIR");
    snprintf(e->coalition, sizeof e->coalition, "%s/tests/data/modules.json",
             src ? src : ".");
    snprintf(e->reordered, sizeof e->reordered,
             "%s/tests/data/modules-reordered.json", src ? src : ".");
    if (!daemon_tmpdir(e->dir, sizeof e->dir))
        return -1;
    /* A copy of the directory: gcc cannot tell e->dir and e->d apart. */
    char dir[sizeof e->dir];
    memcpy(dir, e->dir, sizeof dir);
    for (int i = 0; i < MENV_MEMBERS; i++) {
        daemon_proc *d = &e->d[i];
        snprintf(d->name, sizeof d->name, "m%d", i);
        snprintf(d->key, sizeof d->key, "%s/m%d.key", dir, i);
        snprintf(d->data, sizeof d->data, "%s/m%d.data", dir, i);
        snprintf(d->log, sizeof d->log, "%s/m%d.log", dir, i);
        if (menv_seeded_key(d->key, SEEDS[i], d->peer_id) < 0)
            return -1;
    }
    snprintf(e->outsider_key, sizeof e->outsider_key, "%s/outsider.key",
             e->dir);
    snprintf(e->holder_key, sizeof e->holder_key, "%s/holder.key", e->dir);
    snprintf(e->tickets_key, sizeof e->tickets_key, "%s/tickets.key",
             e->dir);
    if (menv_seeded_key(e->outsider_key, "coalition.test/modules/outsider",
                        NULL) < 0 ||
        menv_seeded_key(e->holder_key, "coalition.test/modules/holder",
                        e->holder_hex) < 0 ||
        menv_seeded_key(e->tickets_key, "coalition.test/modules/tickets",
                        NULL) < 0)
        return -1;
    /* Member 0 also issues tickets, to the holder only; the others host
     * the modules and nothing else. */
    for (int i = 0; i < MENV_MEMBERS; i++) {
        char text[2048];
        snprintf(e->node_cfg[i], sizeof e->node_cfg[i], "%s/node%d.json",
                 dir, i);
        if (i == 0)
            snprintf(text, sizeof text,
                     "{\"coalition\": \"%s\",\n"
                     " \"ticket_issuer\": {\"key\": \"tickets.key\", "
                     "\"allow\": [\"%s\"], \"ttl\": \"10m\"}}\n",
                     e->coalition, e->holder_hex);
        else
            snprintf(text, sizeof text, "{\"coalition\": \"%s\"}\n",
                     e->coalition);
        if (write_text(e->node_cfg[i], text) < 0)
            return -1;
    }
    return 0;
}

bool menv_running(const menv *e, int i)
{
    return e->d[i].pid > 0;
}

const char *menv_boot(const menv *e, int not, char *buf, size_t len)
{
    for (int i = 0; i < MENV_MEMBERS; i++)
        if (i != not && menv_running(e, i))
            return daemon_bootstrap(&e->d[i], buf, len);
    return NULL;
}

int menv_start(menv *e, int i)
{
    char boot[160];
    const char *args[6] = {"--config", e->node_cfg[i]};
    int n = 2;
    if (menv_boot(e, i, boot, sizeof boot)) {
        args[n++] = "--bootstrap";
        args[n++] = boot;
    }
    args[n] = NULL;
    return daemon_start(&e->d[i], args);
}

void menv_stop(menv *e, int i, bool kill9)
{
    if (kill9)
        daemon_kill(&e->d[i]);
    else
        daemon_signal_wait(&e->d[i], SIGTERM, (int)(10000 * time_factor()));
}

void menv_free(menv *e, bool dump)
{
    for (int i = 0; i < MENV_MEMBERS; i++) {
        daemon_kill(&e->d[i]);
        if (dump)
            daemon_dump_log(&e->d[i]);
    }
    if (e->dir[0] && !dump)
        daemon_rmtree(e->dir);
    else if (e->dir[0])
        fprintf(stderr, "test files kept in %s\n", e->dir);
}

static void (*IDLE)(void);

void menv_set_idle(void (*idle)(void))
{
    IDLE = idle;
}

static char *slurp(const char *file)
{
    FILE *f = fopen(file, "r");
    size_t len = 0, cap = 4096;
    char *b = malloc(cap);
    if (!b) {
        if (f)
            fclose(f);
        return NULL;
    }
    size_t got;
    while (f && (got = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *g = realloc(b, cap * 2);
            if (!g)
                break;
            b = g;
            cap *= 2;
        }
    }
    b[len] = '\0';
    if (f)
        fclose(f);
    return b;
}

/* Like proc_run, but the program's output goes to files and the wait
 * calls IDLE, so the caller's event loop keeps turning. */
static int run_argv(const char *rel, proc_result *r, const char *const *args)
{
    static unsigned seq;
    char exe[1024], out[512], err[512];
    char *argv[MAX_ARGS];
    int n = 0;
    argv[n++] = (char *)build_path(rel, exe, sizeof exe);
    for (size_t i = 0; args[i] && n < MAX_ARGS - 1; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    const char *tmp = getenv("TMPDIR");
    snprintf(out, sizeof out, "%s/menv-%d-%u.out", tmp ? tmp : "/tmp",
             (int)getpid(), seq);
    snprintf(err, sizeof err, "%s/menv-%d-%u.err", tmp ? tmp : "/tmp",
             (int)getpid(), seq++);
    memset(r, 0, sizeof *r);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fi = open("/dev/null", O_RDONLY);
        if (fo < 0 || fe < 0 || fi < 0)
            _exit(127);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return -1;
        if (IDLE) {
            IDLE();
        } else {
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->out = slurp(out);
    r->err = slurp(err);
    unlink(out);
    unlink(err);
    return r->out && r->err ? 0 : -1;
}

static int run_va(const char *rel, proc_result *r, va_list ap)
{
    const char *args[MAX_ARGS];
    int n = 0;
    while (n < MAX_ARGS - 1 && (args[n] = va_arg(ap, const char *)))
        n++;
    args[n] = NULL;
    return run_argv(rel, r, args);
}

int menv_cliv(proc_result *r, const char *const *args)
{
    return run_argv("coalition", r, args);
}

int menv_cli(proc_result *r, ...)
{
    va_list ap;
    va_start(ap, r);
    int rc = run_va("coalition", r, ap);
    va_end(ap);
    return rc;
}

json_t *menv_integrator(int *status, ...)
{
    proc_result r;
    va_list ap;
    va_start(ap, status);
    int rc = run_va("tests/integration/integrator_modules", &r, ap);
    va_end(ap);
    *status = -1;
    if (rc < 0)
        return NULL;
    *status = r.status;
    json_t *j = json_loads(r.out, 0, NULL);
    if (!j)
        fprintf(stderr, "integrator (exit %d) printed no report:\n%s\n%s\n",
                r.status, r.out, r.err);
    proc_result_free(&r);
    return j;
}
