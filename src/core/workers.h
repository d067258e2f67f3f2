/* workers.h - N threads, each running its own loop, and a main thread that
 * owns the signals.
 *
 * SIGINT/SIGTERM ask every worker to stop gracefully (ops->stop with
 * force = 0); a second one asks again with force = 1. SIGHUP reopens the
 * log. A worker leaves by calling loop_break() on its own loop. */
#ifndef PORTICO_CORE_WORKERS_H
#define PORTICO_CORE_WORKERS_H

#include "core/loop.h"

struct workers_ops {
    /* In worker `idx`'s thread, before its loop runs. Returns 0 or -errno;
     * a failure stops every worker and workers_run() returns it. */
    int (*start)(loop_t *l, int idx, void *arg);
    /* In the worker's thread when a stop is requested. Must lead to
     * loop_break() (at once, or when open work is done). */
    void (*stop)(loop_t *l, int idx, int force, void *arg);
    /* In the worker's thread after its loop returned: release what start
     * made. May be NULL. */
    void (*finish)(loop_t *l, int idx, void *arg);
    /* In the main thread on SIGHUP, after the log was reopened: reopen
     * other files (an access log). May be NULL. */
    void (*reopen)(void *arg);
};

/* Number of CPUs this process may run on (at least 1). */
int workers_default_count(void);

/* Starts n workers and waits for all of them to end. Call
 * loop_block_signals() first. Returns 0, or the first start error. */
int workers_run(int n, const struct workers_ops *ops, void *arg);

#endif
