/* tpool.h - a small pool of threads for work that blocks on the disk
 * (fsync, rename, large copies), so that event loops never do.
 *
 * A job runs work(arg) on a pool thread, then done(loop, arg) on the loop
 * that submitted it (through loop_post). Jobs run in submission order per
 * thread, in no particular order across threads. */
#ifndef PORTICO_CORE_TPOOL_H
#define PORTICO_CORE_TPOOL_H

#include "core/loop.h"

typedef struct tpool tpool_t;

/* Starts n threads. Returns NULL with errno set on failure. */
tpool_t *tpool_new(int n);

/* Runs the queued jobs to the end, stops the threads, frees the pool. Their
 * done callbacks are posted to their loops as usual (a loop already gone
 * must not have jobs left: stop submitting first). */
void tpool_free(tpool_t *p);

/* Queues a job. Returns 0 or -ENOMEM. */
int tpool_submit(tpool_t *p, loop_t *l, void (*work)(void *arg),
                 void (*done)(loop_t *l, void *arg), void *arg);

#endif
