#include "core/workers.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct worker {
    struct group *g;
    int idx;
    loop_t *loop;
    pthread_t tid;
    int started;
};

struct group {
    const struct workers_ops *ops;
    void *arg;
    int n;
    struct worker *w;
    loop_t *main;
    int exited;           /* main thread only */
    _Atomic int start_err;
    int stops;            /* signals received so far */
};

int workers_default_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void on_worker_exit(loop_t *main, void *arg)
{
    struct group *g = arg;
    if (++g->exited == g->n)
        loop_break(main);
}

static void do_stop(loop_t *l, void *arg)
{
    struct worker *w = arg;
    w->g->ops->stop(l, w->idx, w->g->stops > 1, w->g->arg);
}

static void stop_all(struct group *g)
{
    for (int i = 0; i < g->n; i++)
        if (g->w[i].started)
            loop_post(g->w[i].loop, do_stop, &g->w[i]);
}

static void on_start_failed(loop_t *main, void *arg)
{
    (void)main;
    struct group *g = arg;
    g->stops = 2;
    stop_all(g);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct group *g = w->g;
    int rc = g->ops->start(w->loop, w->idx, g->arg);
    if (rc < 0) {
        int zero = 0;
        atomic_compare_exchange_strong(&g->start_err, &zero, rc);
        loop_post(g->main, on_start_failed, g);
    }
    /* Even after a failed start the loop runs, so that the stop request
     * posted by the main thread finds someone to break it. */
    rc = loop_run(w->loop);
    if (rc < 0)
        log_error("worker %d: event loop failed: %s", w->idx, strerror(-rc));
    if (g->ops->finish != NULL)
        g->ops->finish(w->loop, w->idx, g->arg);
    loop_post(g->main, on_worker_exit, g);
    return NULL;
}

static void on_signal(loop_t *l, int signo, void *arg)
{
    (void)l;
    struct group *g = arg;
    if (signo == SIGHUP) {
        int rc = log_reopen();
        if (rc < 0)
            log_error("cannot reopen the log file: %s", strerror(-rc));
        else
            log_info("log reopened");
        if (g->ops->reopen != NULL)
            g->ops->reopen(g->arg);
        return;
    }
    g->stops++;
    log_info("%s: %s", signo == SIGINT ? "SIGINT" : "SIGTERM",
             g->stops > 1 ? "stopping now" : "stopping gracefully");
    stop_all(g);
}

int workers_run(int n, const struct workers_ops *ops, void *arg)
{
    struct group g = { .ops = ops, .arg = arg, .n = n };
    int rc = 0;

    g.main = loop_new();
    if (g.main == NULL)
        return -errno;
    rc = loop_signals(g.main, on_signal, &g);
    if (rc < 0)
        goto out_main;
    g.w = calloc((size_t)n, sizeof *g.w);
    if (g.w == NULL) {
        rc = -ENOMEM;
        goto out_main;
    }
    for (int i = 0; i < n; i++) {
        g.w[i].g = &g;
        g.w[i].idx = i;
        g.w[i].loop = loop_new();
        if (g.w[i].loop == NULL) {
            rc = -errno;
            g.n = i;
            goto out_workers;
        }
    }
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&g.w[i].tid, NULL, worker_main, &g.w[i]);
        if (e != 0) {
            rc = -e;
            g.n = i;  /* wait only for the threads that exist */
            g.stops = 2;
            stop_all(&g);
            break;
        }
        g.w[i].started = 1;
    }
    if (g.n > 0) {
        int lr = loop_run(g.main);
        if (lr < 0 && rc == 0)
            rc = lr;
    }
    for (int i = 0; i < g.n; i++)
        pthread_join(g.w[i].tid, NULL);
    if (rc == 0)
        rc = atomic_load(&g.start_err);
    g.n = n;
out_workers:
    for (int i = 0; i < g.n; i++)
        loop_free(g.w[i].loop);
    free(g.w);
out_main:
    loop_free(g.main);
    return rc;
}
