/* collapse.h - request collapsing: concurrent cache misses for one key,
 * from any worker, make one upstream request.
 *
 * The first miss for a key becomes its leader and goes upstream; later
 * ones join as waiters. When the leader is done (its response stored or
 * found uncacheable, or failed), every waiter is woken on its own loop
 * (loop_post) to look the store up again: a hit is served from it, a miss
 * goes upstream on its own. Thread-safe: one mutex over a small table. */
#ifndef PORTICO_PROXY_COLLAPSE_H
#define PORTICO_PROXY_COLLAPSE_H

#include "core/loop.h"
#include "core/slice.h"

typedef struct collapse collapse_t;

collapse_t *collapse_new(void);
void collapse_free(collapse_t *c);

/* Joins key: returns 1 when the caller is the leader (call
 * collapse_done(key) when finished), 0 when it was queued as a waiter:
 * wake(arg) will run on loop l, or -1 when out of memory (go alone). */
int collapse_join(collapse_t *c, slice_t key, loop_t *l, void (*wake)(loop_t *, void *), void *arg);

/* The leader of key is done: wakes its waiters. */
void collapse_done(collapse_t *c, slice_t key);

#endif
