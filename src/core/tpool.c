#include "core/tpool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>

struct job {
    struct job *next;
    loop_t *loop;
    void (*work)(void *);
    void (*done)(loop_t *, void *);
    void *arg;
};

struct tpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, **tail;
    int stopping;
    int n;
    pthread_t *threads;
};

static void *tpool_main(void *arg)
{
    tpool_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        struct job *j = p->head;
        if (j == NULL) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        p->head = j->next;
        if (p->head == NULL)
            p->tail = &p->head;
        pthread_mutex_unlock(&p->lock);
        j->work(j->arg);
        /* A failed post would lose the completion: retry rather than drop
         * it, since the submitter is waiting for it to free its state. */
        while (loop_post(j->loop, j->done, j->arg) < 0)
            sched_yield();
        free(j);
    }
}

tpool_t *tpool_new(int n)
{
    tpool_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->threads = calloc((size_t)n, sizeof *p->threads);
    if (p->threads == NULL) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->tail = &p->head;
    /* Pool threads take no signals: those belong to the loops' signalfd. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&p->threads[i], NULL, tpool_main, p);
        if (rc != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            p->n = i;
            tpool_free(p);
            errno = rc;
            return NULL;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    p->n = n;
    return p;
}

void tpool_free(tpool_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p);
}

int tpool_submit(tpool_t *p, loop_t *l, void (*work)(void *), void (*done)(loop_t *, void *),
                 void *arg)
{
    struct job *j = malloc(sizeof *j);
    if (j == NULL)
        return -ENOMEM;
    j->next = NULL;
    j->loop = l;
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&p->lock);
    *p->tail = j;
    p->tail = &j->next;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return 0;
}
