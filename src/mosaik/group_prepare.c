/* The prepare worker (group_prepare.h). */
#include "group_prepare.h"

#include <pthread.h>
#include <stdbool.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "group_fsm.h"

/* What may wait for the worker: beyond, entries are skipped. */
#define MAX_QUEUED_BYTES (16u << 20)
/* The entries worker's nice value: a loop wins the core about nine times
 * in ten against it (CFS weights 1024 and 110); a window-16 Chronicle run
 * on three members sharing two cores went about 15% faster with it. */
#define BACKGROUND_NICE 10

typedef struct job {
    struct job *next;
    size_t len;
    bool cmd; /* one command, not a log entry */
    uint8_t bytes[];
} job;

struct mk__prep {
    struct mk_fsm *fsm;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    job *head, *tail;
    size_t queued;
    bool door; /* a door helper: the loop's priority */
    bool stop;
};

static void prepare_one(const uint8_t *cmd, size_t len, void *data)
{
    struct mk_fsm *fsm = data;
    fsm->prepare(fsm, cmd, len);
}

static void *run(void *arg)
{
    mk__prep *p = arg;
#ifdef __linux__
    /* Entries' work is ahead of need (apply() does it anyway when this
     * falls behind), while the loop's next step is what a client waits
     * for: on a member short of cores the loop should win. Linux keeps a
     * nice value per thread. A door helper's checks are what the loop
     * waits for, so it keeps the loop's priority. */
    if (!p->door)
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
                          BACKGROUND_NICE);
#endif
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop)
            break;
        job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued -= j->len;
        pthread_mutex_unlock(&p->lock);
        if (j->cmd)
            p->fsm->prepare(p->fsm, j->bytes, j->len);
        else
            mk__entry_commands(j->bytes, j->len, prepare_one, p->fsm);
        free(j);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

mk__prep *mk__prep_start(struct mk_fsm *fsm, bool door)
{
    if (!fsm->prepare)
        return NULL;
    mk__prep *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->fsm = fsm;
    p->door = door;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

static void push(mk__prep *p, const void *bytes, size_t len, bool cmd)
{
    if (!p || len == 0)
        return;
    job *j = malloc(sizeof *j + len);
    if (!j)
        return;
    j->next = NULL;
    j->len = len;
    j->cmd = cmd;
    memcpy(j->bytes, bytes, len);
    pthread_mutex_lock(&p->lock);
    if (p->queued + len > MAX_QUEUED_BYTES) {
        pthread_mutex_unlock(&p->lock);
        free(j);
        return;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued += len;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void mk__prep_push(mk__prep *p, const void *entry, size_t len)
{
    push(p, entry, len, false);
}

void mk__prep_push_cmd(mk__prep *p, const void *cmd, size_t len)
{
    push(p, cmd, len, true);
}

static void free_jobs(job *j)
{
    for (job *next; j; j = next) {
        next = j->next;
        free(j);
    }
}

void mk__prep_drop(mk__prep *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    job *j = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
    pthread_mutex_unlock(&p->lock);
    free_jobs(j);
}

void mk__prep_stop(mk__prep *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    free_jobs(p->head);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
