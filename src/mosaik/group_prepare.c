/* The prepare worker (group_prepare.h). */
#include "group_prepare.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "group_fsm.h"

/* What may wait for the worker: beyond, entries are skipped. */
#define MAX_QUEUED_BYTES (16u << 20)

typedef struct job {
    struct job *next;
    size_t len;
    uint8_t bytes[];
} job;

struct mk__prep {
    struct mk_fsm *fsm;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    job *head, *tail;
    size_t queued;
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
        mk__entry_commands(j->bytes, j->len, prepare_one, p->fsm);
        free(j);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

mk__prep *mk__prep_start(struct mk_fsm *fsm)
{
    if (!fsm->prepare)
        return NULL;
    mk__prep *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->fsm = fsm;
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

void mk__prep_push(mk__prep *p, const void *entry, size_t len)
{
    if (!p || len == 0)
        return;
    job *j = malloc(sizeof *j + len);
    if (!j)
        return;
    j->next = NULL;
    j->len = len;
    memcpy(j->bytes, entry, len);
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

void mk__prep_stop(mk__prep *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    for (job *j = p->head, *next; j; j = next) {
        next = j->next;
        free(j);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
